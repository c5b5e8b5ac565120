/*
 * shape_layout.c: the shape and type rules of Expand, Tile, DepthToSpace,
 * SpaceToDepth, GatherElements, Trilu and Range. Shared by the shape-
 * inference pass and the interpreter, whose kernels are in src/ref/layout.c.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static void unknown_dims(ops_shape *out, ir_dtype dt, int rank)
{
    out->dtype = dt;
    out->rank = rank;
    for (int k = 0; k < rank && k < OPS_MAX_RANK; k++)
        out->dims[k] = -1;
}

/* Reads a 1-D int64 shape-like input i as a ops_shape of `dims` (its
 * values).  Returns 1 if known, 0 if unknown (out->rank = its length if
 * that is known, else -1), -1 after a diagnostic. */
static int const_shape(ops_infer *inf, int i, ops_shape *out)
{
    const ir_tensor *c = inf->in_const[i];
    const ops_shape *s = &inf->in[i];
    memset(out, 0, sizeof *out);
    if (!c) {
        unknown_dims(out, IR_DT_UNDEFINED,
                     s->rank == 1 && s->dims[0] >= 0 && s->dims[0] <= OPS_MAX_RANK
                         ? (int)s->dims[0] : -1);
        return 0;
    }
    if (c->rank != 1 || c->dtype != IR_DT_INT64 ||
        (out->rank = ops_const_ints(c, out->dims, OPS_MAX_RANK)) < 0) {
        oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                        "must be a 1-D int64 tensor of at most %d elements",
                        OPS_MAX_RANK);
        return -1;
    }
    return 1;
}

oct_status ops_shape_expand(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_shape s;
    int known = const_shape(inf, 1, &s);
    if (known < 0)
        return OCT_EINPUT;
    if (!known) {
        int rank = s.rank < 0 || x->rank < 0 ? -1
                   : s.rank > x->rank        ? s.rank
                                             : x->rank;
        unknown_dims(&inf->out[0], x->dtype, rank);
        return OCT_OK;
    }
    for (int k = 0; k < s.rank; k++)
        if (s.dims[k] < 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                                   "dim %d is negative", k);
    if (!ops_broadcast(inf, x, &s, &inf->out[0]))
        return OCT_EINPUT;
    inf->out[0].dtype = x->dtype;
    return OCT_OK;
}

oct_status ops_shape_tile(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_shape r;
    int known = const_shape(inf, 1, &r);
    if (known < 0)
        return OCT_EINPUT;
    if (!known || x->rank < 0) {
        unknown_dims(&inf->out[0], x->dtype, x->rank);
        return OCT_OK;
    }
    if (r.rank != x->rank)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                               "has %d repeats for an input of rank %d",
                               r.rank, x->rank);
    unknown_dims(&inf->out[0], x->dtype, x->rank);
    for (int k = 0; k < x->rank; k++) {
        if (r.dims[k] < 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                                   "repeat %d is negative", k);
        if (x->dims[k] >= 0)
            inf->out[0].dims[k] = x->dims[k] * r.dims[k];
    }
    return OCT_OK;
}

static bool block_of(ops_infer *inf, int64_t *b)
{
    *b = ir_attr_int(inf->node, "blocksize", 0);
    if (*b > 0)
        return true;
    oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                   "blocksize must be a positive integer");
    return false;
}

/* DepthToSpace mode CRD (else the default DCR); compares the attribute's
 * bytes directly so a calibration loop does not grow the arena. */
bool ops_crd_mode(const ir_node *node)
{
    const ir_attr *a = ir_node_attr(node, "mode");
    return a && a->type == IR_ATTR_STRING && a->s.len == 3 &&
           !memcmp(a->s.data, "CRD", 3);
}

oct_status ops_shape_depthtospace(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    int64_t b;
    if (!block_of(inf, &b))
        return OCT_EINPUT;
    bool d2s = inf->node->op == IR_OP_DEPTHTOSPACE;
    const ir_attr *mode = ir_node_attr(inf->node, "mode");
    if (d2s && mode && !ops_crd_mode(inf->node) &&
        !(mode->type == IR_ATTR_STRING && mode->s.len == 3 &&
          !memcmp(mode->s.data, "DCR", 3)))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "mode must be DCR or CRD");
    if (x->rank >= 0 && x->rank != 4)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "must have rank 4, not %d", x->rank);
    unknown_dims(&inf->out[0], x->dtype, 4);
    if (x->rank < 0)
        return OCT_OK;
    ops_shape *o = &inf->out[0];
    o->dims[0] = x->dims[0];
    int64_t c = x->dims[1], h = x->dims[2], w = x->dims[3];
    if (d2s) {
        if (c >= 0 && c % (b * b))
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                                   "channels %lld not divisible by %lld",
                                   (long long)c, (long long)(b * b));
        o->dims[1] = c < 0 ? -1 : c / (b * b);
        o->dims[2] = h < 0 ? -1 : h * b;
        o->dims[3] = w < 0 ? -1 : w * b;
    } else {
        if ((h >= 0 && h % b) || (w >= 0 && w % b))
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                                   "height and width must be divisible by "
                                   "%lld", (long long)b);
        o->dims[1] = c < 0 ? -1 : c * b * b;
        o->dims[2] = h < 0 ? -1 : h / b;
        o->dims[3] = w < 0 ? -1 : w / b;
    }
    return OCT_OK;
}

oct_status ops_shape_spacetodepth(ops_infer *inf) { return ops_shape_depthtospace(inf); }

oct_status ops_shape_gatherelements(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0], *ind = &inf->in[1];
    if (ind->dtype != IR_DT_UNDEFINED && ind->dtype != IR_DT_INT32 &&
        ind->dtype != IR_DT_INT64)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                               "indices must be int32 or int64");
    if (x->rank >= 0 && ind->rank >= 0) {
        int axis;
        if (x->rank != ind->rank)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                                   "rank %d differs from the data's %d",
                                   ind->rank, x->rank);
        if (!ops_norm_axis(ir_attr_int(inf->node, "axis", 0), x->rank, &axis))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis out of range");
    }
    inf->out[0] = *ind;
    inf->out[0].dtype = x->dtype;
    return OCT_OK;
}

oct_status ops_shape_trilu(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (x->rank >= 0 && x->rank < 2)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "rank %d is below 2", x->rank);
    inf->out[0] = *x;
    return OCT_OK;
}

/* Range(start, limit, delta): max(ceil((limit - start) / delta), 0)
 * elements start + i * delta, computed in double for float types and
 * exactly in int64 for integer ones. */
static bool range_count(const ir_tensor *s, const ir_tensor *l,
                        const ir_tensor *d, int64_t *n)
{
    bool fl = ir_dtype_info(s->dtype)->kind == IR_DK_FLOAT;
    if (fl) {
        double st = ops_get(s, 0), li = ops_get(l, 0), de = ops_get(d, 0);
        if (de == 0 || !isfinite(st) || !isfinite(li) || !isfinite(de))
            return false;
        double c = ceil((li - st) / de);
        if (!(c < 9.2e18)) /* check before converting: too big is UB */
            return false;
        *n = c > 0 ? (int64_t)c : 0;
        return true;
    }
    int64_t st = ops_get_i64(s, 0), li = ops_get_i64(l, 0), de = ops_get_i64(d, 0);
    if (de == 0)
        return false;
    /* ceil of the exact quotient, done in 128-bit to avoid overflow */
    __int128 num = (__int128)li - st;
    __int128 q = num / de;
    if (q * de != num && ((num > 0) == (de > 0)))
        q++;
    *n = q > 0 ? (int64_t)q : 0;
    return true;
}

oct_status ops_shape_range(ops_infer *inf)
{
    ir_dtype dt = inf->in[0].dtype;
    for (int i = 0; i < 3; i++) {
        if (inf->in[i].rank > 0 && !(inf->in[i].rank == 1 && inf->in[i].dims[0] == 1))
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                                   "must be a scalar");
        if (inf->in[i].dtype != IR_DT_UNDEFINED && dt != IR_DT_UNDEFINED &&
            inf->in[i].dtype != dt)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                                   "dtype differs from start's");
    }
    unknown_dims(&inf->out[0], dt, 1);
    const ir_tensor *const *c = inf->in_const;
    if (!c[0] || !c[1] || !c[2])
        return OCT_OK;
    int64_t n;
    if (c[0]->nelems != 1 || c[1]->nelems != 1 || c[2]->nelems != 1 ||
        !range_count(c[0], c[1], c[2], &n))
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 2,
                               "delta is 0, a value is not finite, or the "
                               "range is too long");
    inf->out[0].dims[0] = n;
    return OCT_OK;
}
