/*
 * qlinear_lut.c: reference kernels of ONNX Runtime's table contrib ops
 * QLinearSigmoid, QLinearLeakyRelu (each byte through a 256-entry table)
 * and QLinearSoftmax (a float32 exp table, float32 sums and divisions), on
 * int8 or uint8 data.  The tables and the arithmetic are the contract of
 * ops/qlinear_elem.h (built in src/ops/qlinear_lut.c); the compiled
 * lowerings (src/codegen/lower_qlinear_lut.c) use the same tables.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/qlinear_elem.h"
#include "ops/rules.h"
#include "ref/qlinear.h"

static int32_t zero_in(const ref_call *call, int i)
{
    return i < call->n_in && call->in[i] ? load8(call->in[i], 0) : 0;
}

static float scale_in(const ref_call *call, int i)
{
    return ((const float *)call->in[i]->data)[0];
}

oct_status ref_qlinearlut(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    uint8_t table[256];
    ops_qlut_fn fn = call->node->op == IR_OP_QLINEARSIGMOID ? OPS_QLUT_SIGMOID : OPS_QLUT_LEAKYRELU;
    ops_qlut_table(fn, ir_attr_float(call->node, "alpha", 0.01f), scale_in(call, 1),
                   zero_in(call, 2), scale_in(call, 3), zero_in(call, 4),
                   x->dtype == IR_DT_INT8, table);
    const uint8_t *xb = x->data;
    uint8_t *yb = y->data;
    for (uint64_t i = 0; i < y->nelems; i++)
        yb[i] = table[xb[i]];
    return OCT_OK;
}

/* One group of len elements, step `inner` apart, from offset `at`. */
static void softmax_group(const ir_tensor *x, ir_tensor *y, uint64_t at, uint64_t len,
                          uint64_t inner, const float *table, float c, int32_t zy)
{
    bool sgn = x->dtype == IR_DT_INT8;
    int32_t xmax = -129;
    for (uint64_t k = 0; k < len; k++) {
        int32_t v = load8(x, at + k * inner);
        xmax = v > xmax ? v : xmax;
    }
    float sum = 0.0f; /* in order, as ONNX Runtime's */
    for (uint64_t k = 0; k < len; k++)
        sum += table[ops_qsoftmax_index(load8(x, at + k * inner), xmax, sgn)];
    /* the group's largest element reads a table value of at least 1:
     * never 0; ONNX Runtime would leave the group unwritten */
    if (sum == 0.0f)
        return;
    for (uint64_t k = 0; k < len; k++) {
        float e = table[ops_qsoftmax_index(load8(x, at + k * inner), xmax, sgn)];
        store8(y, at + k * inner, ops_qsoftmax_out(e, c, sum, zy, sgn));
    }
}

oct_status ref_qlinearsoftmax(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int axis;
    uint64_t outer, len, inner;
    if (!ops_softmax_geometry(call->node, ir_attr_int(call->node, "opset", 13), (int)x->rank,
                              x->dims, &axis, &outer, &len, &inner))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "axis out of range");
    float table[256];
    ops_qsoftmax_table(scale_in(call, 1), len, x->dtype == IR_DT_INT8, table);
    float c = ops_qsoftmax_scale(scale_in(call, 3));
    int32_t zy = zero_in(call, 4);
    memset(y->data, 0, y->nelems);
    for (uint64_t o = 0; o < outer; o++)
        for (uint64_t i = 0; i < inner; i++)
            softmax_group(x, y, o * len * inner + i, len, inner, table, c, zy);
    return OCT_OK;
}
