/*
 * wo_int8.c: the arithmetic of a 4-bit blocked weight-only MatMul computed
 * with int8 activations, the scheme of ONNX Runtime's MatMulNBits
 * accuracy_level 4 and llama.cpp's Q4_0 x Q8_0, defined here so that the
 * interpreter and the compiled kernel (octk_wogemm act_int8,
 * src/codegen/kernels/wogemm_i8.c) give the same bits.  For row m and block j
 * of bs values along K (the last may be short):
 *   amax = max |a[k]|; bad = some a[k] of the block is NaN or infinite;
 *   sa   = bad ? NaN : amax / 127 (float32);
 *   inv  = bad or sa == 0 ? 0 : 1 / sa;
 *   qa[k] = bad ? 0 : rint(a[k] * inv), half to even, in -127..127
 *          (a * inv <= 127 * (1 + 3 ulp));
 *   d    = sum_k qa[k] * q[k][n] - z[j][n] * sum_k qa[k]   (exact integer);
 *   y    = y + (float)d * (sa * s[j][n]), blocks in ascending order from
 *          y = 0, each operation a rounded float32 one (no FMA).
 * A bad block makes the row's outputs NaN.  The error against the float
 * product is that of rounding a to 8 bits per block (about 0.4% of the
 * block's largest value per element), hence opt-in only.
 */
#include <math.h>

#include "ref/wo_int8.h"

/* a[k0, k1) (a row's block, a whole row or a weight column): quantizes
 * into qa, returns the scale and the sum of the codes. */
static float quant_block(const float *a, int64_t k0, int64_t k1, int8_t *qa, int32_t *sum)
{
    float amax = 0.0f;
    int bad = 0;
    for (int64_t k = k0; k < k1; k++) {
        bad |= !isfinite(a[k]);
        amax = fmaxf(amax, fabsf(a[k]));
    }
    float sa = bad ? NAN : amax / 127.0f;
    float inv = bad || sa == 0.0f ? 0.0f : 1.0f / sa;
    *sum = 0;
    for (int64_t k = k0; k < k1; k++) {
        qa[k - k0] = bad ? 0 : (int8_t)rintf(a[k] * inv);
        *sum += qa[k - k0];
    }
    return sa;
}

void ref_wo_int8(const float *a, int64_t M, int64_t K, int64_t N, int64_t bs, const uint8_t *q,
                 const uint8_t *z, const float *s, float *y)
{
    int8_t qa[128]; /* bs <= 128 (ops_mnb_act_int8) */
    int64_t nb = (K + bs - 1) / bs;
    for (int64_t m = 0; m < M; m++) {
        float *ym = y + m * N;
        for (int64_t n = 0; n < N; n++)
            ym[n] = 0.0f;
        for (int64_t j = 0; j < nb; j++) {
            int64_t k0 = j * bs, k1 = k0 + bs < K ? k0 + bs : K;
            int32_t sum;
            float sa = quant_block(a + m * K, k0, k1, qa, &sum);
            for (int64_t n = 0; n < N; n++) {
                int32_t d = -(int32_t)z[j * N + n] * sum;
                for (int64_t k = k0; k < k1; k++)
                    d += qa[k - k0] * (int32_t)q[k * N + n];
                ym[n] = ym[n] + (float)d * (sa * s[j * N + n]);
            }
        }
    }
}

/*
 * Per row (ref_wo_int8_rows; pass mnb_int8_rows): with quant(x[0..n))
 * quant_block above applied to n values at once (amax / 127,
 * rint(x * inv); a NaN or infinity anywhere: scale NaN, codes 0),
 *   v(k, n)      = (float)(q[k][n] - z[j][n]) * s[j][n]  (j = k / bs: the
 *                  DequantizeLinear value, one rounding)
 *   c[n], w8     = quant(v(0..K, n))           the weight, int8 per column
 *   sa[m], qa    = quant(a[m][0..K))           the activations, per row
 *   d            = sum_k qa[k] * w8[k][n]      (exact: |d| <= 127^2 K)
 *   y[m][n]      = (float)d * (sa[m] * c[n])   (two roundings, no FMA).
 * Against the float product the error is that of rounding a to 8 bits per
 * row plus the weight's second rounding (at most c / 2 per weight): larger
 * than the per-block arithmetic's when a row holds a few large values.
 */
size_t ref_wo_int8_rows_tmp(int64_t K, int64_t N)
{
    return (size_t)(K * N + K) + (size_t)(K + N) * sizeof(float);
}

void ref_wo_int8_rows(const float *a, int64_t M, int64_t K, int64_t N, int64_t bs,
                      const uint8_t *q, const uint8_t *z, const float *s, float *y, void *tmp)
{
    float *v = tmp, *c = v + K;
    int8_t *w8 = (int8_t *)(c + N), *qa = w8 + K * N; /* w8[n*K + k]: columns */
    int32_t sum; /* unused: no zero points here */
    for (int64_t n = 0; n < N; n++) {
        for (int64_t k = 0; k < K; k++) {
            int64_t b = (k / bs) * N + n;
            v[k] = (float)((int32_t)q[k * N + n] - (int32_t)z[b]) * s[b];
        }
        c[n] = quant_block(v, 0, K, w8 + n * K, &sum);
    }
    for (int64_t m = 0; m < M; m++) {
        float sa = quant_block(a + m * K, 0, K, qa, &sum);
        for (int64_t n = 0; n < N; n++) {
            int32_t d = 0;
            for (int64_t k = 0; k < K; k++)
                d += qa[k] * (int32_t)w8[n * K + k];
            y[m * N + n] = (float)d * (sa * c[n]);
        }
    }
}
