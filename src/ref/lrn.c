/*
 * lrn.c: kernel of LRN (local response normalization across
 * channels), as the ONNX spec defines it for input (N, C, D1, ..., Dk):
 *   square_sum[n, c, d] = sum of X[n, i, d]^2 for i from
 *       max(0, c - floor((size - 1) / 2)) to min(C - 1, c + ceil((size - 1) / 2))
 *   Y[n, c, d] = X[n, c, d] / (bias + alpha / size * square_sum[n, c, d])^beta
 * Defaults alpha 1e-4, beta 0.75, bias 1; size is required.  The sum and
 * the power are computed in double and rounded once to the output type.
 *
 * The shape and type rules of these ops are in src/ops/shape_lrn.c.
 */
#include <math.h>

#include "ref/eltwise.h"

oct_status ref_lrn(ref_call *call)
{
    const ir_node *node = call->node;
    const ir_tensor *tx = call->in[0];
    ir_tensor *to = call->out[0];
    double alpha = ir_attr_float(node, "alpha", 1e-4f);
    double beta = ir_attr_float(node, "beta", 0.75f);
    double bias = ir_attr_float(node, "bias", 1.0f);
    int64_t size = ir_attr_int(node, "size", 1);
    int64_t before = (size - 1) / 2, after = size - 1 - before; /* floor, ceil */
    int64_t batch = tx->dims[0], channels = tx->dims[1], inner = 1;
    for (int d = 2; d < tx->rank; d++)
        inner *= tx->dims[d];
    for (int64_t b = 0; b < batch; b++)
        for (int64_t c = 0; c < channels; c++)
            for (int64_t k = 0; k < inner; k++) {
                int64_t c0 = c - before < 0 ? 0 : c - before;
                int64_t c1 = c + after > channels - 1 ? channels - 1 : c + after;
                double sum = 0;
                for (int64_t j = c0; j <= c1; j++) {
                    double v = ops_get(tx, (uint64_t)((b * channels + j) * inner + k));
                    sum += v * v;
                }
                uint64_t at = (uint64_t)((b * channels + c) * inner + k);
                ops_set(to, at, ops_get(tx, at) / pow(bias + alpha / (double)size * sum, beta));
            }
    return OCT_OK;
}
