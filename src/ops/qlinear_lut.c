/*
 * qlinear_lut.c: the tables of ONNX Runtime's QLinearSigmoid,
 * QLinearLeakyRelu and QLinearSoftmax (contract in ops/qlinear_elem.h),
 * shared by the reference kernels (src/ref/qlinear_lut.c) and the
 * compiled lowerings (src/codegen/lower_qlinear_lut.c), which build the
 * same table at compile time: so the two agree bit for bit.  Builds with
 * -ffp-contract=off: the only fused multiply-adds are the explicit fmaf of
 * the logistic polynomial.
 */
#include <float.h>
#include <math.h>

#include "ops/qlinear_elem.h"

/* ONNX Runtime's logistic (MLAS): x clamped to [-18, 18], an odd degree-9
 * polynomial over an even degree-10 one in x (Horner steps in x^2, each a
 * fused multiply-add as its FMA3 kernel does), plus 1/2, clamped to
 * [0, 1].  The coefficients are MLAS's published constants. */
static float mlas_logistic(float x)
{
    x = x < -18.0f ? -18.0f : x > 18.0f ? 18.0f : x;
    float x2 = x * x;
    float p = fmaf(x2, 4.37031012579801e-11f, 1.15627324459942e-07f);
    p = fmaf(p, x2, 6.08574864600143e-05f);
    p = fmaf(p, x2, 8.51377133304701e-03f);
    p = fmaf(p, x2, 2.48287947061529e-01f);
    p = p * x;
    float q = fmaf(x2, 6.10247389755681e-13f, 5.76102136993427e-09f);
    q = fmaf(q, x2, 6.29106785017040e-06f);
    q = fmaf(q, x2, 1.70198817374094e-03f);
    q = fmaf(q, x2, 1.16817656904453e-01f);
    q = fmaf(q, x2, 9.93151921023180e-01f);
    float y = p / q + 0.5f;
    return y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
}

void ops_qlut_table(ops_qlut_fn fn, float alpha, float sx, int32_t zx, float sy, int32_t zy,
                    bool sgn, uint8_t table[256])
{
    int32_t lo = sgn ? -128 : 0, hi = sgn ? 127 : 255;
    for (int b = 0; b < 256; b++) {
        int32_t q = sgn ? (int32_t)(int8_t)(uint8_t)b : b;
        float x = sx * (float)(q - zx);
        float y = fn == OPS_QLUT_SIGMOID ? mlas_logistic(x) : x >= 0.0f ? x : x * alpha;
        table[b] = (uint8_t)ops_qelem_out(y / sy, zy, lo, hi);
    }
}

void ops_qsoftmax_table(float sx, uint64_t d, bool sgn, float table[256])
{
    /* keeps the sum of d table values finite (five nats spare) */
    double k = log((double)(FLT_MAX / (float)(d ? d : 1))) - 5.0;
    k = (k > 0.0 ? k : 0.0) / (double)sx;
    for (int i = 0; i < 256; i++)
        table[(uint8_t)(sgn ? i - 128 : i)] = (float)exp(((double)i - 255.0 + k) * (double)sx);
}
