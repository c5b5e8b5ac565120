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

/* ---- table ops (src/ops/qlinear_lut.c) ---------------------------------
 * QLinearSigmoid and QLinearLeakyRelu map each input byte through a
 * 256-entry table built as ONNX Runtime builds it: for every byte b,
 * x = sx * (float)(b as T - zx) (one float32 product), f(x), then
 * QuantizeLinear's saturate(round_half_to_even(f(x) / sy) + zy).  f is
 * ONNX Runtime's logistic (the rational polynomial of its MLAS library,
 * each multiply-add fused, clamped to [0, 1]) or x >= 0 ? x : x * alpha.
 *
 * QLinearSoftmax is ONNX Runtime's table softmax over groups of length D
 * (the axis; with the node's opset attribute below 13, every dim from the
 * axis on): a float32 table of exp values e[i] = (float)exp(((i - 255) +
 * k) * sx) in double, k = max(0, log(FLT_MAX / D) - 5) / sx (the shift
 * that keeps the sum of D values finite), indexed so that the group's
 * largest byte reads e[255]; the float32 sum S of the group's table values
 * in order; each output is round_half_to_even((e * c) / S) in float32,
 * c = floor(1 / sy) in float32, plus zy, saturated above (at 255 or 127;
 * it is never below the type's range).  The input zero point does not
 * enter. */
typedef enum ops_qlut_fn { OPS_QLUT_SIGMOID, OPS_QLUT_LEAKYRELU } ops_qlut_fn;

/* table[b] for every byte b of a T = int8 (sgn) or uint8 input. */
void ops_qlut_table(ops_qlut_fn fn, float alpha, float sx, int32_t zx, float sy, int32_t zy,
                    bool sgn, uint8_t table[256]);

/* QLinearSoftmax's exp table for groups of length d, indexed by the byte
 * (x - max + 255) for uint8 and (uint8)(x - max + 127) for int8. */
void ops_qsoftmax_table(float sx, uint64_t d, bool sgn, float table[256]);

/* c = floor(1 / sy) in float32. */
static inline float ops_qsoftmax_scale(float sy)
{
    return floorf(1.0f / sy);
}

/* The table index of byte x in a group whose largest byte is xmax. */
static inline uint8_t ops_qsoftmax_index(int32_t x, int32_t xmax, bool sgn)
{
    return (uint8_t)(x + (sgn ? 127 : 255) - xmax);
}

/* The stored byte (as int32: 0..255 for uint8, -128..127 for int8) of a
 * table value e in a group whose sum is s (s > 0, e <= s). */
static inline int32_t ops_qsoftmax_out(float e, float c, float s, int32_t zy, bool sgn)
{
    float prod = e * c;
    float r = nearbyintf(prod / s);
    /* r is at most c; every r above 255 saturates the same way */
    int32_t v = (int32_t)(r < 65535.0f ? r : 65535.0f) + zy;
    int32_t hi = sgn ? 127 : 255;
    return v > hi ? hi : v;
}

#endif
