/*
 * index.c: the interpreter's kernels of the index ops CumSum, Hardmax,
 * OneHot and EyeLike (shape rules and shared geometry in
 * src/ops/shape_index.c).
 *
 * CumSum sums along its axis in the input's order (reversed with
 * `reverse`), each output the sum before (`exclusive`) or including its
 * element: FLOAT accumulates in float, the other float types in double
 * rounded at each store, integers in int64 wrapping to the type (two's
 * complement), so the compiled code (lower_index.c) can do the same.
 * Hardmax gives 1 at the first largest element of each row along the axis
 * (NaN never compares larger) and 0 elsewhere.  OneHot writes values[1]
 * where the output's axis coordinate equals the index (negative ones
 * counted from depth; an index still outside [0, depth), or a float index
 * that is not an integer, gives a row of values[0]: the spec says float
 * indices are cast, but ONNX Runtime and onnx.reference compare exactly,
 * and so do we).  EyeLike writes 1 on the
 * k-th diagonal (j - i == k) and 0 elsewhere.
 */
#include "ref/eltwise.h"
#include "ops/rules.h"

oct_status ref_cumsum(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int axis;
    if (!ops_cumsum_axis(call->in[1], x->rank, &axis))
        return oct_input_error(call->ctx, OCT_EINPUT, call->node, 1, "bad CumSum axis");
    bool exclusive = ir_attr_int(call->node, "exclusive", 0) != 0;
    bool reverse = ir_attr_int(call->node, "reverse", 0) != 0;
    int64_t outer, len, inner;
    ops_axis_split(x->rank, x->dims, axis, false, &outer, &len, &inner);
    bool is_f32 = x->dtype == IR_DT_FLOAT, is_float = ops_dt_is_float(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            float sf = 0;
            double sd = 0;
            int64_t si = 0;
            for (int64_t k = 0; k < len; k++) {
                int64_t kk = reverse ? len - 1 - k : k;
                uint64_t at = (uint64_t)((o * len + kk) * inner + i);
                if (is_f32) {
                    float v = ((const float *)x->data)[at];
                    if (!exclusive)
                        sf += v;
                    ((float *)y->data)[at] = sf;
                    if (exclusive)
                        sf += v;
                } else if (is_float) {
                    double v = ops_get(x, at);
                    if (!exclusive)
                        sd += v;
                    ops_set(y, at, sd);
                    if (exclusive)
                        sd += v;
                } else {
                    int64_t v = ops_get_i64(x, at);
                    if (!exclusive)
                        si = (int64_t)((uint64_t)si + (uint64_t)v);
                    ops_set_i64(y, at, ref_wrap_int(x->dtype, si));
                    if (exclusive)
                        si = (int64_t)((uint64_t)si + (uint64_t)v);
                }
            }
        }
    return OCT_OK;
}

oct_status ref_hardmax(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int axis;
    if (!ops_hardmax_axis(call->node, call->opset, x->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad Hardmax axis");
    int64_t outer, len, inner;
    ops_axis_split(x->rank, x->dims, axis, call->opset < 13, &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            double bv = len ? ops_get(x, (uint64_t)(o * len * inner + i)) : 0;
            for (int64_t k = 1; k < len; k++) {
                double v = ops_get(x, (uint64_t)((o * len + k) * inner + i));
                if (v > bv || (isnan(bv) && !isnan(v))) {
                    bv = v;
                    best = k;
                }
            }
            for (int64_t k = 0; k < len; k++)
                ops_set(y, (uint64_t)((o * len + k) * inner + i), k == best ? 1.0 : 0.0);
        }
    return OCT_OK;
}

oct_status ref_onehot(ref_call *call)
{
    const ir_tensor *ind = call->in[0], *vals = call->in[2];
    ir_tensor *y = call->out[0];
    int64_t depth = ops_onehot_depth(call->in[1]);
    int axis;
    if (depth < 0 || vals->nelems != 2 ||
        !ops_norm_axis(ir_attr_int(call->node, "axis", -1), ind->rank + 1, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad OneHot depth, values "
                              "or axis");
    /* the indices split at the output's axis: outer dims before it, inner after */
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ind->rank; d++)
        *(d < axis ? &outer : &inner) *= ind->dims[d];
    bool is_float = ops_dt_is_float(ind->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            uint64_t at = (uint64_t)(o * inner + i);
            /* exact comparison: a non-integral index matches nothing */
            double v = is_float ? ops_get(ind, at) : (double)ops_get_i64(ind, at);
            if (v < 0)
                v += (double)depth;
            for (int64_t d = 0; d < depth; d++) {
                uint64_t to = (uint64_t)((o * depth + d) * inner + i);
                if (ops_dt_is_float(y->dtype))
                    ops_set(y, to, ops_get(vals, (double)d == v));
                else
                    ops_set_i64(y, to, ops_get_i64(vals, (double)d == v));
            }
        }
    return OCT_OK;
}

oct_status ref_eyelike(ref_call *call)
{
    ir_tensor *y = call->out[0];
    int64_t k = ir_attr_int(call->node, "k", 0);
    int64_t rows = y->dims[0], cols = y->dims[1];
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            ops_set(y, (uint64_t)(i * cols + j), j - i == k ? 1.0 : 0.0);
    return OCT_OK;
}
