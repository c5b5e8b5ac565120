/*
 * wocommon.h: what the two files of the weight-only INT4 MatMul share
 * (octk_wogemm, octk.h): wogemm.c holds the float-activation paths (GEMV,
 * widening into the float GEMM) and the calling convention, wogemm_i8.c
 * the int8-activation path (act_int8), whose entry points below the
 * calling convention calls.  The panels of both layouts are OCTK_WO_NR
 * columns wide.
 */
#ifndef OCTET_WOCOMMON_H
#define OCTET_WOCOMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "octk.h"

#define WG_INLINE static inline __attribute__((always_inline))

/* columns per panel; panels per phase-1 task of the GEMV-like paths */
enum { WG_NR = OCTK_WO_NR, WG_PANELS_PER_TASK = 4 };

static inline int64_t wg_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t wg_max(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t wg_div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t wg_round64(int64_t v) { return (v + 63) / 64 * 64; }

/* The head of block j of panel p in every packed weight-only layout
 * (wogemm.c, wogemm_i8.c, wofmt.c): the panel's WG_NR float scales, then
 * with zp its WG_NR zero-point bytes, columns past N 0; returns the byte
 * after it. */
static inline uint8_t *wg_pack_block_head(uint8_t *o, const uint8_t *zp, const float *scale,
                                          int64_t N, int64_t p, int64_t j)
{
    for (int c = 0; c < WG_NR; c++) {
        int64_t n = p * WG_NR + c;
        float s = n < N ? scale[j * N + n] : 0.0f;
        memcpy(o + 4 * c, &s, 4);
    }
    o += 4 * WG_NR;
    for (int c = 0; zp && c < WG_NR; c++) {
        int64_t n = p * WG_NR + c;
        *o++ = n < N ? zp[j * N + n] : 0;
    }
    return o;
}

/* len values of a quantized to int8 with one scale (octk.h: a block of a
 * row for act_int8 = 1, a whole row or a weight column for 2); returns the
 * scale and stores minus the sum of the codes in *nasum.
 * Written for the vectorizer: the largest |a| as the largest of the
 * magnitudes' bit patterns (an integer max, exact; above that of FLT_MAX
 * is +-Inf or NaN), the rounding by the magic number (half to even). */
WG_INLINE float wg_quantize_i8(const float *restrict a, int64_t len, int8_t *restrict qa,
                               int32_t *nasum)
{
    uint32_t top = 0;
    for (int64_t k = 0; k < len; k++) {
        uint32_t b;
        memcpy(&b, &a[k], 4);
        b &= 0x7fffffffu;
        top = b > top ? b : top;
    }
    float amax;
    memcpy(&amax, &top, 4);
    int bad = top > 0x7f7fffffu;
    float s = bad ? NAN : amax / 127.0f;
    float inv = bad || s == 0.0f ? 0.0f : 1.0f / s;
    int32_t sum = 0;
    for (int64_t k = 0; k < len; k++) {
        /* |a * inv| <= 127 (1 + 3 ulp), so the rounding gives -127..127;
         * a bad block gives 0s (inv = 0; 0 * Inf is NaN, hence the select) */
        float x = bad ? 0.0f : a[k] * inv;
        int32_t v = (int32_t)((x + 12582912.0f) - 12582912.0f);
        qa[k] = (int8_t)v;
        sum += v;
    }
    *nasum = -sum;
    return s;
}

/* act_int8 = 1 (wogemm_i8.c) and 2 (wogemm_w8.c), called by wogemm.c's
 * calling convention: the work size, phase 0's row m and phase 1's panels
 * [q0, q1) (at most WG_PANELS_PER_TASK) for every row. */
size_t octk_wogemm_i8_work_size(const octk_wogemm *p);
void octk_wogemm_i8_row(const octk_wogemm *p, int64_t m);
void octk_wogemm_i8_panels(const octk_wogemm *p, int64_t q0, int64_t q1);
size_t octk_wogemm_w8_work_size(const octk_wogemm *p);
void octk_wogemm_w8_row(const octk_wogemm *p, int64_t m);
void octk_wogemm_w8_panels(const octk_wogemm *p, int64_t q0, int64_t q1);

#endif
