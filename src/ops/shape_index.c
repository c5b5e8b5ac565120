/*
 * shape_index.c: the shape and type rules of the index ops: CumSum
 * (output like x; the axis is input 1), Hardmax (output like x), OneHot
 * (indices' shape with a `depth` axis inserted at `axis`, the values'
 * type), EyeLike (x's 2-D shape, the `dtype` attribute's type or x's),
 * GatherND, ScatterND, ScatterElements (output like data) and TopK (x with
 * the axis k long; values and INT64 indices).
 * The helpers declared in rules.h (the axis split, CumSum's and Hardmax's
 * axes, OneHot's depth) are what the interpreter (src/ref/index.c) and
 * the compiler (src/codegen/lower_index.c) read the same geometry with.
 */
#include "ops/ops.h"
#include <string.h>

#include "ops/rules.h"

void ops_axis_split(int rank, const int64_t *dims, int axis, bool flatten, int64_t *outer,
                    int64_t *len, int64_t *inner)
{
    *outer = *len = *inner = 1;
    for (int d = 0; d < rank; d++) {
        if (d < axis)
            *outer *= dims[d];
        else if (d == axis || flatten)
            *len *= dims[d];
        else
            *inner *= dims[d];
    }
}

bool ops_cumsum_axis(const ir_tensor *t, int rank, int *axis)
{
    if (!t || t->nelems != 1 || (t->dtype != IR_DT_INT64 && t->dtype != IR_DT_INT32))
        return false;
    return ops_norm_axis(ops_get_i64(t, 0), rank, axis);
}

bool ops_hardmax_axis(const ir_node *node, int64_t opset, int rank, int *axis)
{
    return ops_norm_axis(ir_attr_int(node, "axis", opset >= 13 ? -1 : 1), rank, axis);
}

int64_t ops_onehot_depth(const ir_tensor *t)
{
    if (!t || t->nelems != 1 || t->dtype == IR_DT_BOOL)
        return -1;
    double d = ops_dt_is_float(t->dtype) ? trunc(ops_get(t, 0)) : (double)ops_get_i64(t, 0);
    return d >= 1 && d <= 9.0e15 ? (int64_t)d : -1;
}

static bool numeric(ir_dtype dt)
{
    const ir_dtype_traits *tr = ir_dtype_info(dt);
    return dt == IR_DT_UNDEFINED || (tr->kind == IR_DK_FLOAT && tr->bits >= 16) ||
           ((tr->kind == IR_DK_SINT || tr->kind == IR_DK_UINT) && tr->bits >= 8);
}

static oct_status bad_type(ops_infer *inf, int i)
{
    return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, i,
                           "element type %s is not supported by %s",
                           ir_dtype_name(inf->in[i].dtype), inf->node->op_type);
}

oct_status ops_shape_cumsum(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (!numeric(x->dtype))
        return bad_type(inf, 0);
    if (inf->in[1].dtype != IR_DT_UNDEFINED && inf->in[1].dtype != IR_DT_INT32 &&
        inf->in[1].dtype != IR_DT_INT64)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1, "axis must be INT32 or INT64");
    const ir_tensor *a = inf->in_const[1];
    int axis;
    if (a && x->rank >= 0 && !ops_cumsum_axis(a, x->rank, &axis))
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                               "axis must be one integer in [-%d, %d)", x->rank, x->rank);
    inf->out[0] = *x;
    return OCT_OK;
}

oct_status ops_shape_hardmax(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (x->dtype != IR_DT_UNDEFINED && !ops_dt_is_float(x->dtype))
        return bad_type(inf, 0);
    int axis;
    if (x->rank >= 0 && !ops_hardmax_axis(inf->node, inf->opset, x->rank, &axis))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "axis %lld is out of range "
                              "for rank %d", (long long)ir_attr_int(inf->node, "axis", 0),
                              x->rank);
    inf->out[0] = *x;
    return OCT_OK;
}

oct_status ops_shape_onehot(ops_infer *inf)
{
    const ops_shape *ind = &inf->in[0], *vals = &inf->in[2];
    for (int i = 0; i < 2; i++)
        if (!numeric(inf->in[i].dtype))
            return bad_type(inf, i);
    if (vals->rank >= 0 && ops_shape_known_elems(vals) >= 0 && ops_shape_elems(vals) != 2)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 2,
                               "values must hold two elements (off, on)");
    ops_shape *y = &inf->out[0];
    y->dtype = vals->dtype;
    if (ind->rank < 0) {
        y->rank = -1;
        return OCT_OK;
    }
    if (ind->rank + 1 > OPS_MAX_RANK)
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, 0, "rank too large");
    int axis;
    if (!ops_norm_axis(ir_attr_int(inf->node, "axis", -1), ind->rank + 1, &axis))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "axis out of range for "
                              "output rank %d", ind->rank + 1);
    int64_t depth = -1;
    if (inf->in_const[1]) {
        depth = ops_onehot_depth(inf->in_const[1]);
        if (depth < 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                                   "depth must be one positive number");
    }
    y->rank = ind->rank + 1;
    for (int d = 0, s = 0; d < y->rank; d++)
        y->dims[d] = d == axis ? depth : ind->dims[s++];
    return OCT_OK;
}

oct_status ops_shape_eyelike(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (x->rank >= 0 && x->rank != 2)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0, "must be 2-D, is rank %d",
                               x->rank);
    ir_dtype dt = x->dtype;
    const ir_attr *a = ir_node_attr(inf->node, "dtype");
    if (a) {
        if (a->type != IR_ATTR_INT || !ir_dtype_valid((int)a->i) ||
            (!numeric((ir_dtype)a->i) && a->i != IR_DT_BOOL))
            return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                                  "dtype %lld is not supported", (long long)a->i);
        dt = (ir_dtype)a->i;
    } else if (!numeric(dt) && dt != IR_DT_BOOL) {
        return bad_type(inf, 0);
    }
    inf->out[0] = *x;
    inf->out[0].dtype = dt;
    return OCT_OK;
}

/* ---- GatherND, ScatterND, ScatterElements, TopK ---------------------------- */

bool ops_scatter_reduction(const ir_node *node, ops_reduction *red)
{
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    const ir_attr *a = ir_node_attr(node, "reduction");
    *red = OPS_RED_NONE;
    if (!a)
        return true;
    if (a->type != IR_ATTR_STRING)
        return false;
    for (int k = 0; k < 5; k++)
        if (a->s.len == strlen(names[k]) && !memcmp(a->s.data, names[k], a->s.len)) {
            *red = (ops_reduction)k;
            return true;
        }
    return false;
}

int64_t ops_topk_k(const ir_node *node, int64_t opset, const ir_tensor *t)
{
    if (opset < 10)
        return ir_attr_int(node, "k", -1);
    if (!t || t->nelems != 1 || t->dtype != IR_DT_INT64)
        return -1;
    int64_t k = ops_get_i64(t, 0);
    return k >= 0 ? k : -1;
}

bool ops_gathernd_plan_of(int r, const int64_t *ddims, int q, const int64_t *idims,
                          int64_t batch_dims, ops_gathernd_plan *p)
{
    if (q < 1 || r < 1 || batch_dims < 0 || batch_dims >= q || batch_dims >= r)
        return false;
    int b = (int)batch_dims;
    p->last = idims[q - 1];
    if (p->last < 1 || b + p->last > r)
        return false;
    p->batch = p->n = p->slice = p->data_batch = 1;
    for (int d = 0; d < b; d++) {
        if (idims[d] != ddims[d])
            return false;
        p->batch *= idims[d];
    }
    for (int d = b; d < q - 1; d++)
        p->n *= idims[d];
    for (int d = b + (int)p->last; d < r; d++)
        p->slice *= ddims[d];
    for (int d = b; d < r; d++)
        p->data_batch *= ddims[d];
    return true;
}

static bool known_shape(const ops_shape *s)
{
    return ops_shape_known_elems(s) >= 0;
}

static oct_status index_type(ops_infer *inf, int i)
{
    ir_dtype dt = inf->in[i].dtype;
    if (dt != IR_DT_UNDEFINED && dt != IR_DT_INT64 && dt != IR_DT_INT32)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i, "indices must be INT32 or "
                               "INT64");
    return OCT_OK;
}

/* Element types the index ops move: whole bytes. */
static oct_status moved_type(ops_infer *inf, int i)
{
    ir_dtype dt = inf->in[i].dtype;
    if (dt != IR_DT_UNDEFINED && ir_dtype_info(dt)->bits % 8 != 0)
        return bad_type(inf, i);
    return OCT_OK;
}

oct_status ops_shape_gathernd(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0], *ind = &inf->in[1];
    oct_status st = moved_type(inf, 0);
    if (st || (st = index_type(inf, 1)))
        return st;
    ops_shape *y = &inf->out[0];
    y->dtype = x->dtype;
    y->rank = -1;
    if (!known_shape(x) || !known_shape(ind))
        return OCT_OK;
    int64_t b = ir_attr_int(inf->node, "batch_dims", 0);
    ops_gathernd_plan p;
    if (!ops_gathernd_plan_of(x->rank, x->dims, ind->rank, ind->dims, b, &p))
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1, "indices of shape rank %d "
                               "do not fit data of rank %d with batch_dims %lld", ind->rank,
                               x->rank, (long long)b);
    y->rank = 0;
    for (int d = 0; d < ind->rank - 1; d++)
        y->dims[y->rank++] = ind->dims[d];
    for (int d = (int)(b + p.last); d < x->rank; d++)
        y->dims[y->rank++] = x->dims[d];
    return OCT_OK;
}

static oct_status scatter_common(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0], *u = &inf->in[2];
    oct_status st = moved_type(inf, 0);
    if (st || (st = index_type(inf, 1)))
        return st;
    ops_reduction red;
    if (!ops_scatter_reduction(inf->node, &red))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "reduction must be none, add, "
                              "mul, max or min");
    if (u->dtype != IR_DT_UNDEFINED && x->dtype != IR_DT_UNDEFINED && u->dtype != x->dtype)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 2, "updates' type differs "
                               "from data's");
    if (red != OPS_RED_NONE && !numeric(x->dtype))
        return bad_type(inf, 0);
    inf->out[0] = *x;
    return OCT_OK;
}

oct_status ops_shape_scatternd(ops_infer *inf)
{
    oct_status st = scatter_common(inf);
    const ops_shape *x = &inf->in[0], *ind = &inf->in[1], *u = &inf->in[2];
    if (st || !known_shape(x) || !known_shape(ind) || !known_shape(u))
        return st;
    int q = ind->rank;
    int64_t last = q ? ind->dims[q - 1] : -1;
    bool ok = q >= 1 && last >= 1 && last <= x->rank && u->rank == q - 1 + x->rank - last;
    for (int d = 0; ok && d < u->rank; d++)
        ok = u->dims[d] == (d < q - 1 ? ind->dims[d] : x->dims[d - (q - 1) + last]);
    if (!ok)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 2, "updates' shape does not "
                               "fit data and indices");
    return OCT_OK;
}

oct_status ops_shape_scatterelements(ops_infer *inf)
{
    oct_status st = scatter_common(inf);
    const ops_shape *x = &inf->in[0], *ind = &inf->in[1], *u = &inf->in[2];
    if (st || !known_shape(x) || !known_shape(ind) || !known_shape(u))
        return st;
    int axis;
    if (!ops_norm_axis(ir_attr_int(inf->node, "axis", 0), x->rank, &axis))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "axis out of range");
    bool ok = ind->rank == x->rank && u->rank == x->rank;
    for (int d = 0; ok && d < x->rank; d++)
        ok = u->dims[d] == ind->dims[d] && (d == axis || ind->dims[d] <= x->dims[d]);
    if (!ok)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1, "indices and updates do "
                               "not fit data");
    return OCT_OK;
}

oct_status ops_shape_topk(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (!numeric(x->dtype))
        return bad_type(inf, 0);
    inf->out[0] = *x;
    inf->out[1] = *x;
    inf->out[1].dtype = IR_DT_INT64;
    if (x->rank < 0)
        return OCT_OK;
    int axis;
    if (!ops_norm_axis(ir_attr_int(inf->node, "axis", -1), x->rank, &axis))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "axis out of range");
    int64_t k = -1;
    if (inf->opset < 10 || (inf->n_in > 1 && inf->in_const[1])) {
        k = ops_topk_k(inf->node, inf->opset, inf->n_in > 1 ? inf->in_const[1] : NULL);
        if (k < 0 || (x->dims[axis] >= 0 && k > x->dims[axis]))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "k must be one INT64 in "
                                  "[0, %lld]", (long long)x->dims[axis]);
    }
    inf->out[0].dims[axis] = inf->out[1].dims[axis] = k;
    return OCT_OK;
}
