/*
 * shape_qlinear_elem.c: the shape and type rules of ONNX Runtime's integer
 * element-wise contrib ops QLinearAdd, QLinearMul, QLinearConcat,
 * QLinearAveragePool and QLinearGlobalAveragePool, and of its table ops
 * QLinearSigmoid, QLinearLeakyRelu and QLinearSoftmax.  Shared by the
 * shape-inference pass and the interpreter, whose kernels are in
 * src/ref/qlinear_elem.c and src/ref/qlinear_lut.c; the arithmetic is in
 * ops/qlinear_elem.h.
 *
 * Checked here: data and zero points int8 or uint8, all of one type (the
 * output's); scales float32, per tensor, positive and finite; zero points
 * per tensor; the requantization multipliers finite; channels_last = 0
 * (the NHWC form is not supported).
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/qlinear_elem.h"
#include "ops/rules.h"

/* Input i (scale or zero point; may be omitted when optional) is per
 * tensor: one element. */
static oct_status per_tensor(ops_infer *inf, int i)
{
    int64_t n = i < inf->n_in && inf->node->in[i] ? ops_shape_known_elems(&inf->in[i]) : 1;
    if (n == 0)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                               "scale or zero point has no element");
    if (n > 1)
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, i,
                               "only per-tensor scales and zero points are supported");
    return OCT_OK;
}

/* Input i is 8-bit data or zero point of type *dt (the first seen sets
 * it). */
static oct_status same_8bit(ops_infer *inf, int i, ir_dtype *dt)
{
    if (i >= inf->n_in || !inf->node->in[i])
        return OCT_OK;
    oct_status st = ops_qlin_check_type(inf, i, ops_is_8bit_int, "int8 or uint8");
    ir_dtype t = inf->in[i].dtype;
    if (st != OCT_OK || t == IR_DT_UNDEFINED)
        return st;
    if (*dt != IR_DT_UNDEFINED && t != *dt)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                               "type %s differs from %s: every quantized input, zero "
                               "point and the output share one type",
                               ir_dtype_name(t), ir_dtype_name(*dt));
    *dt = t;
    return OCT_OK;
}

/* Input i is a required float32 per-tensor scale, positive and finite
 * when known; its value goes to *s (or NaN when unknown). */
static oct_status scale_in(ops_infer *inf, int i, float *s)
{
    *s = NAN;
    if (i >= inf->n_in || !inf->node->in[i])
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "input %d (a scale) is required", i);
    oct_status st = ops_qlin_check_type(inf, i, ops_is_f32, "float scale");
    if (st == OCT_OK)
        st = per_tensor(inf, i);
    if (st == OCT_OK && inf->in_const[i]) {
        st = ops_qlin_check_scale_values(inf->ctx, inf->node, i, inf->in_const[i]);
        if (st == OCT_OK && inf->in_const[i]->nelems == 1)
            *s = ((const float *)inf->in_const[i]->data)[0];
    }
    return st;
}

/* A multiplier formed from known scales must be finite and nonzero. */
static oct_status multiplier_ok(ops_infer *inf, float m)
{
    if (!isnan(m) && (!isfinite(m) || m == 0.0f))
        return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                              "scale ratio %g is out of float32 range", (double)m);
    return OCT_OK;
}

static oct_status no_channels_last(ops_infer *inf)
{
    if (ir_attr_int(inf->node, "channels_last", 0) != 0)
        return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                              "channels_last=1 (NHWC) is not supported");
    return OCT_OK;
}

/* QLinearAdd / QLinearMul: A, A_scale, A_zp?, B, B_scale, B_zp?, C_scale,
 * C_zp?; the output broadcasts A and B (numpy). */
oct_status ops_shape_qlinearbinary(ops_infer *inf)
{
    static const int data[5] = {0, 2, 3, 5, 7};
    ir_dtype dt = IR_DT_UNDEFINED;
    float sa, sb, sy;
    oct_status st = OCT_OK;
    for (int j = 0; j < 5 && st == OCT_OK; j++) /* omitted zero points pass */
        st = same_8bit(inf, data[j], &dt);
    for (int j = 0; j < 2 && st == OCT_OK; j++)
        if (3 * j >= inf->n_in || !inf->node->in[3 * j])
            st = oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "input %d is required", 3 * j);
    if (st == OCT_OK)
        st = scale_in(inf, 1, &sa);
    if (st == OCT_OK)
        st = scale_in(inf, 4, &sb);
    if (st == OCT_OK)
        st = scale_in(inf, 6, &sy);
    for (int j = 1; j < 5 && st == OCT_OK; j += 2)
        st = per_tensor(inf, data[j]);
    if (st == OCT_OK && inf->node->op == IR_OP_QLINEARMUL)
        st = multiplier_ok(inf, ops_qmul_multiplier(sa, sb, sy));
    else if (st == OCT_OK && (st = multiplier_ok(inf, ops_qelem_ratio(sa, sy))) == OCT_OK)
        st = multiplier_ok(inf, ops_qelem_ratio(sb, sy));
    if (st != OCT_OK)
        return st;
    ops_shape *y = &inf->out[0];
    if (inf->in[0].rank < 0 || inf->in[3].rank < 0) {
        memset(y, 0, sizeof *y);
        y->rank = -1;
    } else if (!ops_broadcast(inf, &inf->in[0], &inf->in[3], y)) {
        return OCT_EINPUT;
    }
    y->dtype = dt;
    return OCT_OK;
}

/* QLinearConcat: Y_scale, Y_zp, then (X, X_scale, X_zp) per input; the
 * shapes as Concat's. */
oct_status ops_shape_qlinearconcat(ops_infer *inf)
{
    if (inf->n_in < 5 || (inf->n_in - 2) % 3 != 0)
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "expected Y_scale, Y_zero_point and (X, X_scale, "
                              "X_zero_point) per input, got %d inputs", inf->n_in);
    ir_dtype dt = IR_DT_UNDEFINED;
    float sy, sx;
    oct_status st = scale_in(inf, 0, &sy);
    if (st == OCT_OK && !inf->node->in[1])
        st = oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                            "input 1 (Y_zero_point) is required");
    if (st == OCT_OK)
        st = same_8bit(inf, 1, &dt);
    if (st == OCT_OK)
        st = per_tensor(inf, 1);
    int n_data = (inf->n_in - 2) / 3;
    ops_shape data[OPS_MAX_IO];
    for (int k = 0; k < n_data && st == OCT_OK; k++) {
        int x = 2 + 3 * k;
        if (!inf->node->in[x] || !inf->node->in[x + 2])
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "inputs %d and %d (data and zero point) are required",
                                  x, x + 2);
        st = same_8bit(inf, x, &dt);
        if (st == OCT_OK)
            st = same_8bit(inf, x + 2, &dt);
        if (st == OCT_OK)
            st = per_tensor(inf, x + 2);
        if (st == OCT_OK)
            st = scale_in(inf, x + 1, &sx);
        if (st == OCT_OK)
            st = multiplier_ok(inf, ops_qelem_ratio(sx, sy));
        data[k] = inf->in[x];
    }
    if (st != OCT_OK)
        return st;
    /* the geometry is Concat's: run its rule on the data inputs alone */
    ops_infer sub = *inf;
    sub.n_in = n_data;
    sub.in = data;
    st = ops_shape_concat(&sub);
    inf->out[0].dtype = dt;
    return st;
}

/* QLinearAveragePool: X, x_scale, x_zp?, y_scale, y_zp?; AveragePool's
 * geometry on X. */
static oct_status qpool_common(ops_infer *inf)
{
    ir_dtype dt = IR_DT_UNDEFINED;
    float sx, sy;
    oct_status st = no_channels_last(inf);
    if (st == OCT_OK)
        st = same_8bit(inf, 0, &dt);
    for (int i = 2; i < 5 && st == OCT_OK; i += 2)
        if ((st = same_8bit(inf, i, &dt)) == OCT_OK)
            st = per_tensor(inf, i);
    if (st == OCT_OK)
        st = scale_in(inf, 1, &sx);
    if (st == OCT_OK)
        st = scale_in(inf, 3, &sy);
    if (st == OCT_OK)
        st = multiplier_ok(inf, ops_qelem_ratio(sx, sy));
    return st;
}

/* The pools' geometry rule (shape_pool.c) run on X alone as a float
 * tensor, then the output typed 8-bit. */
static oct_status qpool_shape(ops_infer *inf, oct_status (*rule)(ops_infer *))
{
    ops_shape x = inf->in[0];
    ir_dtype dt = x.dtype;
    x.dtype = IR_DT_FLOAT;
    ops_infer sub = *inf;
    sub.n_in = 1;
    sub.in = &x;
    sub.n_out = 1;
    oct_status st = rule(&sub);
    inf->out[0].dtype = dt;
    return st;
}

oct_status ops_shape_qlinearavgpool(ops_infer *inf)
{
    oct_status st = qpool_common(inf);
    return st != OCT_OK ? st : qpool_shape(inf, ops_shape_pool);
}

oct_status ops_shape_qlinearglobalavgpool(ops_infer *inf)
{
    oct_status st = qpool_common(inf);
    return st != OCT_OK ? st : qpool_shape(inf, ops_shape_globalpool);
}

/* QLinearSigmoid / QLinearLeakyRelu: X, x_scale, x_zp?, y_scale, y_zp?
 * (the pools' operands); the output has X's shape. */
oct_status ops_shape_qlinearlut(ops_infer *inf)
{
    oct_status st = qpool_common(inf);
    ir_dtype dt = inf->in[0].dtype;
    inf->out[0] = inf->in[0];
    inf->out[0].dtype = dt;
    return st;
}

/* QLinearSoftmax: the same operands; the opset attribute (which ONNX
 * Runtime requires) picks Softmax's axis rule: below 13 the group is
 * every dim from the axis on. */
oct_status ops_shape_qlinearsoftmax(ops_infer *inf)
{
    if (!ir_node_attr(inf->node, "opset"))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "attribute opset is required (ONNX Runtime's rule)");
    oct_status st = qpool_common(inf);
    const ops_shape *x = &inf->in[0];
    if (st == OCT_OK && x->rank >= 0) {
        int axis;
        uint64_t o, l, in;
        if (!ops_softmax_geometry(inf->node, ir_attr_int(inf->node, "opset", 13), x->rank,
                                  x->dims, &axis, &o, &l, &in))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis out of range for rank %d", x->rank);
    }
    inf->out[0] = *x;
    return st;
}
