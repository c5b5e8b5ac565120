/*
 * qlinear_elem.h: the numeric contract of the integer element-wise ops
 * (ONNX Runtime's com.microsoft QLinearAdd, QLinearMul, QLinearConcat,
 * QLinearAveragePool, QLinearGlobalAveragePool), shared by the reference
 * kernels (src/ref/qlinear_elem.c) and the compiled lowerings
 * (src/codegen/lower_qlinear_elem.c), which must produce the same bits.
 *
 * Every input is 8-bit per tensor: a value q stands for (q - z) * s.  The
 * ops work on the exact integers d = q - z (and their exact int32 sums and
 * products) and requantize once to the output's scale sy and zero point zy:
 *   QLinearAdd:   v = (float)da * Ma + (float)db * Mb,   Ma = sa / sy, Mb = sb / sy
 *   QLinearMul:   v = (float)(da * db) * M,              M = (sa * sb) / sy
 *   QLinearConcat: v = (float)dx * Mx per input,          Mx = sx / sy
 *   QLinear(Global)AveragePool:
 *                 v = ((float)sum * M) / (float)count,   M = sx / sy
 *                 sum = sum of dx over the window's taps inside the input
 *                 (int32), count = the taps counted (AveragePool's rule)
 *   y = saturate(round_half_to_even(v) + zy) to [-128, 127] or [0, 255]
 * Each multiplier and each operation of v is one float32 operation rounded
 * to nearest even (no fused multiply-add: the reference file builds with
 * -ffp-contract=off, the compiled code emits plain fmul/fadd/fdiv), so the
 * interpreter and the compiled code agree bit for bit.  ONNX Runtime
 * computes the same quantities in float32 (dequantize, operate, quantize),
 * in a different order for some ops; the results differ by at most one
 * step of the output scale.  A multiplier that is not finite (a scale
 * ratio overflowing float32) is rejected by the shape rule.
 */
#ifndef OCTET_OPS_QLINEAR_ELEM_H
#define OCTET_OPS_QLINEAR_ELEM_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

/* Ma = sa / sy (and Mx, and M of the pools): one float32 division. */
static inline float ops_qelem_ratio(float s, float sy)
{
    return s / sy;
}

/* QLinearMul's M = (sa * sb) / sy: a float32 product, then a float32
 * division. */
static inline float ops_qmul_multiplier(float sa, float sb, float sy)
{
    float prod = sa * sb;
    return prod / sy;
}

/* saturate(round_half_to_even(v) + zy) into [lo, hi].  v is finite for
 * finite multipliers (the integers involved are below 2^31). */
static inline int32_t ops_qelem_out(float v, int32_t zy, int32_t lo, int32_t hi)
{
    float r = nearbyintf(v);
    float flo = (float)(lo - zy), fhi = (float)(hi - zy);
    r = r < flo ? flo : r > fhi ? fhi : r;
    return (int32_t)r + zy;
}

/* v of QLinearAdd for da = a - za, db = b - zb. */
static inline float ops_qadd_value(int32_t da, int32_t db, float ma, float mb)
{
    float va = (float)da * ma;
    float vb = (float)db * mb;
    return va + vb;
}

/* v of the average pools: ((float)sum * m) / (float)count. */
static inline float ops_qavg_value(int32_t sum, float m, int64_t count)
{
    float scaled = (float)sum * m;
    return scaled / (float)count;
}

#endif
