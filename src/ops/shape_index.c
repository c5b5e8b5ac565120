/*
 * shape_index.c: the shape and type rules of the index ops: CumSum
 * (output like x; the axis is input 1), Hardmax (output like x), OneHot
 * (indices' shape with a `depth` axis inserted at `axis`, the values'
 * type) and EyeLike (x's 2-D shape, the `dtype` attribute's type or x's).
 * The helpers declared in rules.h (the axis split, CumSum's and Hardmax's
 * axes, OneHot's depth) are what the interpreter (src/ref/index.c) and
 * the compiler (src/codegen/lower_index.c) read the same geometry with.
 */
#include "ops/ops.h"
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
