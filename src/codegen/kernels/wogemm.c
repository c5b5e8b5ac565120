/*
 * wogemm.c: MatMul with a constant weight-only INT4 operand (octk.h,
 * "weight-only INT4 MatMul"): the weight stays 4-bit in the library and is
 * unpacked where it is used.
 *
 * Why two paths.  Decode (a few rows) is bound by the bytes of weight read:
 * the GEMV streams each panel's bytes once, widens 16 columns' nibbles to
 * int32 lanes in registers (the low nibble is one AND, the high one a shift
 * of the zero-extended byte), converts them to float and keeps, per row and
 * panel, one FMA chain for low and one for high nibbles, so several chains
 * hide the FMA latency.  The zero point leaves the inner loop:
 *   sum_k a*(q - z)*s = s * sum_k a*q - (z*s) * sum_k a,
 * with sum_k a over the block (asum) computed once per row in phase 0.
 * Prefill (many rows) is bound by arithmetic: a task widens 64-column
 * chunks (exactly the DequantizeLinear values) straight into the float
 * GEMM's packed panels in its own buffer (K x 64 floats, 1 MiB at K = 4096,
 * about one L2) and runs octk_sgemm on it, so the float weight never exists
 * whole.  64 columns are one row of the AVX-512 microtile (6 x 64; with 32
 * half of each tile's FMAs went to padding), and the copy of a that the
 * GEMM's phase 0 makes is done once per task, not per chunk (2.6x faster at
 * 128 x 4096 x 4096 on Zen 5).
 * Int8 activations (act_int8, MatMulNBits accuracy_level 4) are the third
 * path, in wogemm_i8.c: decode at memory speed, prefill on integer products.
 *
 * One generic body serves the three builds through a vector type wv and
 * WH vectors per 16-column panel (wovec.h, shared with wofmt.c): AVX-512
 * (one zmm), AVX2 (two ymm) and baseline C (16 floats, vectorized by the
 * compiler).  Register tiles:
 * rows R x panels P with 3*R*P*WH accumulators (low, high, output), at most
 * 24 zmm or 12 ymm.
 */
#include <math.h>
#include <string.h>

#include "octk.h"
#include "wovec.h"
#include "wocommon.h"



/* ---- packed layout ------------------------------------------------------- */

static inline int64_t wg_block_bytes(int64_t len, int has_zp)
{
    return 4 * WG_NR + (has_zp ? WG_NR : 0) + wg_div_up(len, 2) * WG_NR;
}

static inline int64_t wg_panel_bytes(int64_t K, int64_t bs, int has_zp)
{
    if (K <= 0)
        return 0;
    int64_t nb = wg_div_up(K, bs);
    return (nb - 1) * wg_block_bytes(bs, has_zp) + wg_block_bytes(K - (nb - 1) * bs, has_zp);
}

size_t octk_wogemm_packed_b_size(int64_t K, int64_t N, int64_t bs, int has_zp)
{
    return (size_t)(wg_div_up(N, WG_NR) * wg_panel_bytes(K, bs, has_zp));
}

void octk_wogemm_pack_b(uint8_t *dst, const uint8_t *q, const uint8_t *zp, const float *scale,
                        int64_t K, int64_t N, int64_t bs)
{
    int64_t np = wg_div_up(N, WG_NR), nb = wg_div_up(K, bs);
    uint8_t *o = dst;
    for (int64_t p = 0; p < np; p++)
        for (int64_t j = 0; j < nb; j++) {
            int64_t k0 = j * bs, len = wg_min(bs, K - k0);
            o = wg_pack_block_head(o, zp, scale, N, p, j);
            for (int64_t i = 0; i < wg_div_up(len, 2); i++)
                for (int c = 0; c < WG_NR; c++) {
                    int64_t n = p * WG_NR + c, k = k0 + 2 * i;
                    unsigned lo = n < N ? q[k * N + n] & 15u : 0;
                    unsigned hi = n < N && 2 * i + 1 < len ? q[(k + 1) * N + n] & 15u : 0;
                    *o++ = (uint8_t)(lo | hi << 4);
                }
        }
}

int octk_wogemm_is_gemv(int64_t M)
{
    return M <= OCTK_WO_GEMV_ROWS;
}

/* ---- code conversions of this build (the vector layer: wovec.h) -------- */

#if WO_AVX512
enum { WG_RMAX = 8 };
/* The 16 bytes of a k pair: low and high nibbles as floats. */
WG_INLINE void wv_codes(const uint8_t *p, int h, wv *lo, wv *hi)
{
    __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    *lo = _mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(15)));
    *hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(x, 4));
}
WG_INLINE wv wv_bytes(const uint8_t *p, int h)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
#elif WO_AVX2
enum { WG_RMAX = 2 };
WG_INLINE void wv_codes(const uint8_t *p, int h, wv *lo, wv *hi)
{
    __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * h)));
    *lo = _mm256_cvtepi32_ps(_mm256_and_si256(x, _mm256_set1_epi32(15)));
    *hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(x, 4));
}
WG_INLINE wv wv_bytes(const uint8_t *p, int h)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * h))));
}
#else
enum { WG_RMAX = 1 };
WG_INLINE void wv_codes(const uint8_t *p, int h, wv *lo, wv *hi)
{
    *lo = (float)(p[h] & 15u);
    *hi = (float)(p[h] >> 4);
}
WG_INLINE wv wv_bytes(const uint8_t *p, int h) { return (float)p[h]; }
#endif

/* Panels per tile for R rows (3*R*P*WH accumulators fit the registers). */
static inline int wg_panels_for(int R)
{
#if WO_AVX512
    return R == 1 ? 4 : R == 2 ? 2 : 1;
#elif WO_AVX2
    return R == 1 ? 2 : 1;
#else
    return 1;
#endif
}

/* ---- GEMV: rows [m0, m0+R) x panels [p0, p0+P) --------------------------- */

WG_INLINE void wg_tile(const octk_wogemm *p, int64_t m0, int64_t p0, const int R, const int P)
{
    const int64_t K = p->K, bs = p->bs, nb = wg_div_up(K, bs), N = p->N;
    const int64_t pbytes = wg_panel_bytes(K, bs, p->has_zp);
    const float *asum = (const float *)p->work + m0 * nb;
    const float *a[OCTK_WO_GEMV_ROWS];
    const uint8_t *src[4];
    wv y[4][OCTK_WO_GEMV_ROWS][WH];
    for (int r = 0; r < R; r++)
        a[r] = p->a + (m0 + r) * p->lda;
    for (int i = 0; i < P; i++) {
        src[i] = p->b + (p0 + i) * pbytes;
        for (int r = 0; r < R; r++)
            for (int h = 0; h < WH; h++)
                y[i][r][h] = wv_zero();
    }
    const wv zero_default = wv_bcast((float)p->zero);
    for (int64_t j = 0; j < nb; j++) {
        const int64_t k0 = j * bs, len = wg_min(bs, K - k0), pairs = len / 2;
        wv s[4][WH], zs[4][WH];
        for (int i = 0; i < P; i++) {
            for (int h = 0; h < WH; h++) {
                s[i][h] = wv_loadf((const float *)src[i], h);
                wv z = p->has_zp ? wv_bytes(src[i] + 4 * WG_NR, h) : zero_default;
                zs[i][h] = wv_mul(z, s[i][h]);
            }
            src[i] += 4 * WG_NR + (p->has_zp ? WG_NR : 0);
        }
        wv lo_acc[4][OCTK_WO_GEMV_ROWS][WH], hi_acc[4][OCTK_WO_GEMV_ROWS][WH];
        for (int i = 0; i < P; i++)
            for (int r = 0; r < R; r++)
                for (int h = 0; h < WH; h++)
                    lo_acc[i][r][h] = hi_acc[i][r][h] = wv_zero();
        for (int64_t kp = 0; kp < pairs; kp++) {
            wv a0[OCTK_WO_GEMV_ROWS], a1[OCTK_WO_GEMV_ROWS];
            for (int r = 0; r < R; r++) {
                a0[r] = wv_bcast(a[r][k0 + 2 * kp]);
                a1[r] = wv_bcast(a[r][k0 + 2 * kp + 1]);
            }
            for (int i = 0; i < P; i++)
                for (int h = 0; h < WH; h++) {
                    wv lo, hi;
                    wv_codes(src[i] + kp * WG_NR, h, &lo, &hi);
                    for (int r = 0; r < R; r++) {
                        lo_acc[i][r][h] = wv_fma(lo, a0[r], lo_acc[i][r][h]);
                        hi_acc[i][r][h] = wv_fma(hi, a1[r], hi_acc[i][r][h]);
                    }
                }
        }
        if (len & 1) /* the short last block's odd row: its low nibbles */
            for (int i = 0; i < P; i++)
                for (int h = 0; h < WH; h++) {
                    wv lo, hi;
                    wv_codes(src[i] + pairs * WG_NR, h, &lo, &hi);
                    for (int r = 0; r < R; r++)
                        lo_acc[i][r][h] = wv_fma(lo, wv_bcast(a[r][k0 + len - 1]), lo_acc[i][r][h]);
                }
        for (int i = 0; i < P; i++) {
            for (int r = 0; r < R; r++) {
                wv as = wv_bcast(asum[r * nb + j]);
                for (int h = 0; h < WH; h++) {
                    wv acc = wv_add(lo_acc[i][r][h], hi_acc[i][r][h]);
                    y[i][r][h] = wv_fnma(zs[i][h], as, wv_fma(s[i][h], acc, y[i][r][h]));
                }
            }
            src[i] += wg_div_up(len, 2) * WG_NR;
        }
    }
    for (int i = 0; i < P; i++) {
        int64_t n0 = (p0 + i) * WG_NR, cnt = N - n0;
        for (int r = 0; r < R; r++)
            for (int h = 0; h < WH; h++)
                wv_store(p->y + (m0 + r) * p->ldy + n0, h, y[i][r][h], cnt);
    }
}

/* The tile of R rows and P panels, R and P constants in each call. */
static void wg_tile_dispatch(const octk_wogemm *p, int64_t m0, int64_t p0, int R, int P)
{
    switch (R * 8 + P) {
    case 8 + 1: wg_tile(p, m0, p0, 1, 1); break;
#if WO_AVX512 || WO_AVX2
    case 8 + 2: wg_tile(p, m0, p0, 1, 2); break;
    case 16 + 1: wg_tile(p, m0, p0, 2, 1); break;
#endif
#if WO_AVX512
    case 8 + 3: wg_tile(p, m0, p0, 1, 3); break;
    case 8 + 4: wg_tile(p, m0, p0, 1, 4); break;
    case 16 + 2: wg_tile(p, m0, p0, 2, 2); break;
    case 24 + 1: wg_tile(p, m0, p0, 3, 1); break;
    case 32 + 1: wg_tile(p, m0, p0, 4, 1); break;
    case 40 + 1: wg_tile(p, m0, p0, 5, 1); break;
    case 48 + 1: wg_tile(p, m0, p0, 6, 1); break;
    case 56 + 1: wg_tile(p, m0, p0, 7, 1); break;
    case 64 + 1: wg_tile(p, m0, p0, 8, 1); break;
#endif
    default: break;
    }
}

/* Phase 1 of the GEMV: panels [q0, q1), every row. */
static void wg_gemv_panels(const octk_wogemm *p, int64_t q0, int64_t q1)
{
    for (int64_t m0 = 0; m0 < p->M; m0 += WG_RMAX) {
        int R = (int)wg_min(WG_RMAX, p->M - m0), P = wg_panels_for(R);
        for (int64_t pn = q0; pn < q1; pn += P)
            wg_tile_dispatch(p, m0, pn, R, (int)wg_min(P, q1 - pn));
    }
}

/* ---- many rows: widen chunks, float GEMM ---------------------------------- */

static inline int64_t wg_chunks(const octk_wogemm *p) { return wg_div_up(p->N, OCTK_WO_CHUNK); }
static inline int64_t wg_slots(const octk_wogemm *p) { return wg_min(OCTK_WO_SLOTS, wg_chunks(p)); }

/* The float GEMM of one chunk (columns [c0, c0 + nc)) on widened b. */
static octk_sgemm wg_chunk_gemm(const octk_wogemm *p, int64_t c0, float *b, void *work)
{
    octk_sgemm g;
    memset(&g, 0, sizeof g);
    g.M = p->M;
    g.N = wg_min(OCTK_WO_CHUNK, p->N - c0);
    g.K = p->K;
    g.lda = p->lda;
    g.ldy = p->ldy;
    g.y_lo = -INFINITY;
    g.y_hi = INFINITY;
    g.a = p->a;
    g.y = p->y + c0;
    g.b = b;
    g.work = work;
    return g;
}

/* The chunk in the float GEMM's own packed layout (octk_sgemm_pack_b):
 * panels of 16 columns, [K][16] each, the panels of this kernel's b. */
static int64_t wg_packed_bytes(const octk_wogemm *p)
{
    return wg_round64((int64_t)octk_sgemm_packed_b_size(p->K, OCTK_WO_CHUNK));
}

/* A slot: the widened chunk, the GEMM's workspace. */
static int64_t wg_slot_bytes(const octk_wogemm *p)
{
    octk_sgemm g = wg_chunk_gemm(p, 0, NULL, NULL);
    return wg_packed_bytes(p) + wg_round64((int64_t)octk_sgemm_work_size(&g));
}

/* d[c] = (float)(code - z[c]) * s[c] for the 16 codes of one k. */
static inline void wg_widen_row(float *restrict d, const uint8_t *restrict row, int shift,
                                const float *restrict z, const float *restrict s)
{
    for (int c = 0; c < WG_NR; c++)
        d[c] = ((float)((row[c] >> shift) & 15u) - z[c]) * s[c];
}

/* The chunk's columns widened, (float)(q - z) * s, straight into the
 * float GEMM's panels: packed[pc][k][c] (0 past N). */
static void wg_widen_chunk(const octk_wogemm *p, int64_t c0, float *restrict packed)
{
    const int64_t K = p->K, bs = p->bs, nb = wg_div_up(K, bs), N = p->N;
    const int64_t pbytes = wg_panel_bytes(K, bs, p->has_zp);
    const int has_zp = p->has_zp;
    const float zero = (float)p->zero;
    for (int pc = 0; pc < OCTK_WO_CHUNK / WG_NR; pc++) {
        int64_t pn = c0 / WG_NR + pc;
        float *panel = packed + pc * K * WG_NR;
        if (pn * WG_NR >= N) {
            memset(panel, 0, (size_t)(K * WG_NR) * sizeof(float));
            continue;
        }
        const uint8_t *src = p->b + pn * pbytes;
        for (int64_t j = 0; j < nb; j++) {
            int64_t k0 = j * bs, len = wg_min(bs, K - k0);
            float s[WG_NR], z[WG_NR];
            memcpy(s, src, sizeof s);
            src += 4 * WG_NR;
            for (int c = 0; c < WG_NR; c++)
                z[c] = has_zp ? (float)src[c] : zero;
            src += has_zp ? WG_NR : 0;
            for (int64_t k = 0; k < len; k++)
                wg_widen_row(panel + (k0 + k) * WG_NR, src + (k / 2) * WG_NR, (int)(k & 1) * 4, z,
                             s);
            src += wg_div_up(len, 2) * WG_NR;
        }
    }
}

/* Task t of the widen path: chunks [t*n/T, (t+1)*n/T) in slot t. */
static void wg_widen_task(const octk_wogemm *p, int64_t t)
{
    int64_t n = wg_chunks(p), T = wg_slots(p);
    uint8_t *slot = (uint8_t *)p->work + t * wg_slot_bytes(p);
    float *packed = (float *)slot;
    for (int64_t c = t * n / T; c < (t + 1) * n / T; c++) {
        wg_widen_chunk(p, c * OCTK_WO_CHUNK, packed);
        octk_sgemm g = wg_chunk_gemm(p, c * OCTK_WO_CHUNK, packed, slot + wg_packed_bytes(p));
        /* phase 0 only copies a into the workspace (float b, octk.h), the
         * same for every chunk: once per task */
        for (int phase = c == t * n / T ? 0 : 1; phase < OCTK_PHASES; phase++)
            octk_sgemm_run(&g, phase, 0, octk_sgemm_tasks(&g, phase));
    }
}
/* ---- calling convention ----------------------------------------------------- */

size_t octk_wogemm_work_size(const octk_wogemm *p)
{
    if (p->act_int8 == OCTK_WO_INT8_ROWS)
        return octk_wogemm_w8_work_size(p);
    if (p->act_int8)
        return octk_wogemm_i8_work_size(p);
    if (octk_wogemm_is_gemv(p->M))
        return (size_t)wg_round64(p->M * wg_div_up(wg_max(p->K, 1), p->bs) * (int64_t)sizeof(float));
    return (size_t)(wg_slots(p) * wg_slot_bytes(p));
}

/* The float prefill widens in slots (phase 1 only); the GEMV and both
 * int8 paths prepare a row per phase-0 task (block sums or int8 codes) and
 * run WG_PANELS_PER_TASK panels per phase-1 task. */
int64_t octk_wogemm_tasks(const octk_wogemm *p, int phase)
{
    if (p->M <= 0 || p->N <= 0)
        return 0;
    if (!p->act_int8 && !octk_wogemm_is_gemv(p->M))
        return phase == 1 ? wg_slots(p) : 0;
    if (phase == 0)
        return p->M;
    return phase == 1 ? wg_div_up(wg_div_up(p->N, WG_NR), WG_PANELS_PER_TASK) : 0;
}

void octk_wogemm_run(const octk_wogemm *p, int phase, int64_t begin, int64_t end)
{
    const int rows = p->act_int8 == OCTK_WO_INT8_ROWS, blocks = p->act_int8 && !rows;
    int gemv = octk_wogemm_is_gemv(p->M);
    int64_t np = wg_div_up(p->N, WG_NR);
    for (int64_t t = begin; t < end; t++) {
        int64_t q0 = t * WG_PANELS_PER_TASK, q1 = wg_min(np, q0 + WG_PANELS_PER_TASK);
        if (!gemv && !p->act_int8)
            wg_widen_task(p, t);
        else if (phase == 0 && rows)
            octk_wogemm_w8_row(p, t);
        else if (phase == 0 && blocks)
            octk_wogemm_i8_row(p, t);
        else if (phase == 0)
            wo_block_sums(p->a + t * p->lda, p->K, p->bs,
                          (float *)p->work + t * wg_div_up(p->K, p->bs));
        else if (rows)
            octk_wogemm_w8_panels(p, q0, q1);
        else if (blocks)
            octk_wogemm_i8_panels(p, q0, q1);
        else
            wg_gemv_panels(p, q0, q1);
    }
}
