/*
 * layout.c: more data-movement ops, each a view of its input: Expand
 * (numpy broadcast to a shape), Tile, DepthToSpace, SpaceToDepth (6-D
 * transposes), GatherElements, Trilu (zeroing a triangle) and Range.
 *
 * Like movement.c they work for every dtype through the helpers of
 * movement.h.  Shape rules read shape-carrying inputs (Expand's shape, Tile's
 * repeats, Range's scalars) from in_const and report unknown dims otherwise.
 */
#include <math.h>
#include <string.h>

#include "ref/movement.h"

static void unknown_dims(ref_shape *out, ir_dtype dt, int rank)
{
    out->dtype = dt;
    out->rank = rank;
    for (int k = 0; k < rank && k < REF_MAX_RANK; k++)
        out->dims[k] = -1;
}

/* C-order strides of a tensor, in elements. */
static void strides_of(const ir_tensor *t, int64_t *strides)
{
    int64_t s = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        strides[k] = s;
        s *= t->dims[k];
    }
}

/* Reads a 1-D int64 shape-like input i as a ref_shape of `dims` (its
 * values).  Returns 1 if known, 0 if unknown (out->rank = its length if
 * that is known, else -1), -1 after a diagnostic. */
static int const_shape(ref_infer *inf, int i, ref_shape *out)
{
    const ir_tensor *c = inf->in_const[i];
    const ref_shape *s = &inf->in[i];
    memset(out, 0, sizeof *out);
    if (!c) {
        unknown_dims(out, IR_DT_UNDEFINED,
                     s->rank == 1 && s->dims[0] >= 0 && s->dims[0] <= REF_MAX_RANK
                         ? (int)s->dims[0] : -1);
        return 0;
    }
    if (c->rank != 1 || c->dtype != IR_DT_INT64 ||
        (out->rank = ref_const_ints(c, out->dims, REF_MAX_RANK)) < 0) {
        oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                        "must be a 1-D int64 tensor of at most %d elements",
                        REF_MAX_RANK);
        return -1;
    }
    return 1;
}

/* ---- Expand ------------------------------------------------------------- */

oct_status shape_expand(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    ref_shape s;
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
    if (!ref_broadcast(inf, x, &s, &inf->out[0]))
        return OCT_EINPUT;
    inf->out[0].dtype = x->dtype;
    return OCT_OK;
}

oct_status ref_expand(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int64_t xs[REF_MAX_RANK], ss[REF_MAX_RANK];
    strides_of(x, xs);
    int off = y->rank - x->rank;
    for (int k = 0; k < y->rank; k++) {
        int kx = k - off;
        ss[k] = kx < 0 || x->dims[kx] == 1 ? 0 : xs[kx];
    }
    return ref_strided_gather(call->ctx, y, x, y->rank, y->dims, ss, 0);
}

/* ---- Tile --------------------------------------------------------------- */

oct_status shape_tile(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    ref_shape r;
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

/* Output dim k is (repeat, i) in C order, so Tile is a strided view of rank
 * 2 * rank with stride 0 on the repeat axes. */
oct_status ref_tile(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int64_t xs[REF_MAX_RANK], vd[2 * REF_MAX_RANK], vs[2 * REF_MAX_RANK];
    strides_of(x, xs);
    int n = 0;
    for (int k = 0; k < x->rank; k++) {
        int64_t rep = x->dims[k] ? y->dims[k] / x->dims[k] : 0;
        vd[n] = rep;
        vs[n++] = 0;
        vd[n] = x->dims[k];
        vs[n++] = xs[k];
    }
    return ref_strided_gather(call->ctx, y, x, n, vd, vs, 0);
}

/* ---- DepthToSpace / SpaceToDepth ---------------------------------------- */

static bool block_of(ref_infer *inf, int64_t *b)
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
static bool crd_mode(const ir_node *node)
{
    const ir_attr *a = ir_node_attr(node, "mode");
    return a && a->type == IR_ATTR_STRING && a->s.len == 3 &&
           !memcmp(a->s.data, "CRD", 3);
}

oct_status shape_depthtospace(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    int64_t b;
    if (!block_of(inf, &b))
        return OCT_EINPUT;
    bool d2s = inf->node->op == IR_OP_DEPTHTOSPACE;
    const ir_attr *mode = ir_node_attr(inf->node, "mode");
    if (d2s && mode && !crd_mode(inf->node) &&
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
    ref_shape *o = &inf->out[0];
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

/* Both are transposes of a 6-D view of the input (ONNX spec):
 *   DepthToSpace DCR: [N, b, b, C', H, W] perm (0, 3, 4, 1, 5, 2)
 *   DepthToSpace CRD: [N, C', b, b, H, W] perm (0, 1, 4, 2, 5, 3)
 *   SpaceToDepth:     [N, C, H', b, W', b] perm (0, 3, 5, 1, 2, 4) */
oct_status ref_depthtospace(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    int64_t b = ir_attr_int(call->node, "blocksize", 1);
    int64_t n = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    int64_t view[6], perm[6];
    if (call->node->op == IR_OP_SPACETODEPTH) {
        int64_t v[6] = {n, c, h / b, b, w / b, b}, p[6] = {0, 3, 5, 1, 2, 4};
        memcpy(view, v, sizeof v);
        memcpy(perm, p, sizeof p);
    } else if (crd_mode(call->node)) {
        int64_t v[6] = {n, c / (b * b), b, b, h, w}, p[6] = {0, 1, 4, 2, 5, 3};
        memcpy(view, v, sizeof v);
        memcpy(perm, p, sizeof p);
    } else {
        int64_t v[6] = {n, b, b, c / (b * b), h, w}, p[6] = {0, 3, 4, 1, 5, 2};
        memcpy(view, v, sizeof v);
        memcpy(perm, p, sizeof p);
    }
    int64_t vs[6], od[6], ss[6], s = 1;
    for (int k = 5; k >= 0; k--) {
        vs[k] = s;
        s *= view[k];
    }
    for (int k = 0; k < 6; k++) {
        od[k] = view[perm[k]];
        ss[k] = vs[perm[k]];
    }
    return ref_strided_gather(call->ctx, call->out[0], x, 6, od, ss, 0);
}

oct_status shape_spacetodepth(ref_infer *inf) { return shape_depthtospace(inf); }
oct_status ref_spacetodepth(ref_call *call) { return ref_depthtospace(call); }

/* ---- GatherElements ----------------------------------------------------- */

oct_status shape_gatherelements(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0], *ind = &inf->in[1];
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
        if (!ref_norm_axis(ir_attr_int(inf->node, "axis", 0), x->rank, &axis))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis out of range");
    }
    inf->out[0] = *ind;
    inf->out[0].dtype = x->dtype;
    return OCT_OK;
}

oct_status ref_gatherelements(ref_call *call)
{
    const ir_tensor *x = call->in[0], *ind = call->in[1];
    ir_tensor *y = call->out[0];
    int axis;
    if (!ref_norm_axis(ir_attr_int(call->node, "axis", 0), x->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad axis");
    int64_t xs[REF_MAX_RANK], idx[REF_MAX_RANK] = {0};
    strides_of(x, xs);
    int64_t dim = x->dims[axis];
    for (int k = 0; k < x->rank; k++)
        if (k != axis && ind->dims[k] > x->dims[k])
            return oct_input_error(call->ctx, OCT_EINPUT, call->node, 1,
                                   "dim %d is %lld, larger than the data's",
                                   k, (long long)ind->dims[k]);
    for (uint64_t e = 0; e < ind->nelems; e++) {
        int64_t v = ind->dtype == IR_DT_INT32 ? ((const int32_t *)ind->data)[e]
                                              : ((const int64_t *)ind->data)[e];
        if (v < -dim || v >= dim)
            return oct_input_error(call->ctx, OCT_EINPUT, call->node, 1,
                                   "index %lld out of range for an axis of "
                                   "size %lld", (long long)v, (long long)dim);
        if (v < 0)
            v += dim;
        int64_t src = 0;
        for (int k = 0; k < x->rank; k++)
            src += (k == axis ? v : idx[k]) * xs[k];
        if (!ref_copy_elems(call->ctx, y, e, x, (uint64_t)src, 1))
            return OCT_EINTERNAL;
        for (int k = x->rank - 1; k >= 0; k--) {
            if (++idx[k] < ind->dims[k])
                break;
            idx[k] = 0;
        }
    }
    return OCT_OK;
}

/* ---- Trilu -------------------------------------------------------------- */

oct_status shape_trilu(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    if (x->rank >= 0 && x->rank < 2)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "rank %d is below 2", x->rank);
    inf->out[0] = *x;
    return OCT_OK;
}

/* Keeps the elements with j - i >= k (upper, default) or j - i <= k
 * (lower) of every matrix in the last two dims; the rest become zero bits
 * (empty strings). */
oct_status ref_trilu(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int64_t k = 0;
    if (call->n_in > 1 && call->in[1]) {
        const ir_tensor *kt = call->in[1];
        if (kt->nelems != 1 || kt->dtype != IR_DT_INT64)
            return oct_input_error(call->ctx, OCT_EINPUT, call->node, 1,
                                   "k must be an int64 scalar");
        k = *(const int64_t *)kt->data;
    }
    bool upper = ir_attr_int(call->node, "upper", 1) != 0;
    if (!ref_copy_elems(call->ctx, y, 0, x, 0, x->nelems))
        return OCT_EINTERNAL;
    uint64_t rows = (uint64_t)x->dims[x->rank - 2];
    uint64_t cols = (uint64_t)x->dims[x->rank - 1];
    uint64_t mats = rows != 0 && cols != 0 ? x->nelems / (rows * cols) : 0;
    unsigned bits = ir_dtype_info(y->dtype)->bits;
    for (uint64_t m = 0; m < mats; m++)
        for (uint64_t i = 0; i < rows; i++)
            for (uint64_t j = 0; j < cols; j++) {
                int64_t d = (int64_t)j - (int64_t)i;
                if (upper ? d >= k : d <= k)
                    continue;
                uint64_t e = (m * rows + i) * cols + j;
                if (y->dtype == IR_DT_STRING) {
                    ((ir_blob *)y->data)[e] = (ir_blob){NULL, 0};
                } else if (bits >= 8) {
                    memset((uint8_t *)y->data + e * (bits / 8), 0, bits / 8);
                } else {
                    uint8_t *p = (uint8_t *)y->data + e * bits / 8;
                    unsigned sh = (unsigned)(e * bits % 8);
                    *p = (uint8_t)(*p & ~(((1u << bits) - 1) << sh));
                }
            }
    return OCT_OK;
}

/* ---- Range -------------------------------------------------------------- */

/* Range(start, limit, delta): max(ceil((limit - start) / delta), 0)
 * elements start + i * delta, computed in double for float types and
 * exactly in int64 for integer ones. */
static bool range_count(const ir_tensor *s, const ir_tensor *l,
                        const ir_tensor *d, int64_t *n)
{
    bool fl = ir_dtype_info(s->dtype)->kind == IR_DK_FLOAT;
    if (fl) {
        double st = ref_get(s, 0), li = ref_get(l, 0), de = ref_get(d, 0);
        if (de == 0 || !isfinite(st) || !isfinite(li) || !isfinite(de))
            return false;
        double c = ceil((li - st) / de);
        if (!(c < 9.2e18)) /* check before converting: too big is UB */
            return false;
        *n = c > 0 ? (int64_t)c : 0;
        return true;
    }
    int64_t st = ref_get_i64(s, 0), li = ref_get_i64(l, 0), de = ref_get_i64(d, 0);
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

oct_status shape_range(ref_infer *inf)
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

oct_status ref_range(ref_call *call)
{
    const ir_tensor *s = call->in[0], *d = call->in[2];
    ir_tensor *y = call->out[0];
    if (ir_dtype_info(y->dtype)->kind == IR_DK_FLOAT) {
        double st = ref_get(s, 0), de = ref_get(d, 0);
        for (uint64_t i = 0; i < y->nelems; i++)
            ref_set(y, i, st + (double)i * de);
        return OCT_OK;
    }
    int64_t st = ref_get_i64(s, 0), de = ref_get_i64(d, 0);
    for (uint64_t i = 0; i < y->nelems; i++)
        ref_set_i64(y, i, (int64_t)((uint64_t)st + i * (uint64_t)de));
    return OCT_OK;
}
