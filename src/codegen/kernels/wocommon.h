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

/* act_int8 (wogemm_i8.c): octk_wogemm_work_size, _tasks and _run for it. */
size_t octk_wogemm_i8_work_size(const octk_wogemm *p);
int64_t octk_wogemm_i8_tasks(const octk_wogemm *p, int phase);
void octk_wogemm_i8_run(const octk_wogemm *p, int phase, int64_t begin, int64_t end);

#endif
