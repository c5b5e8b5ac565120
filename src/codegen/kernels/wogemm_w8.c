/*
 * wogemm_w8.c: the int8-rows path of the weight-only INT4 MatMul
 * (octk_wogemm with act_int8 = OCTK_WO_INT8_ROWS; arithmetic in octk.h, the
 * interpreter's twin in src/ref/wo_int8.c): at packing the 4-bit blocks
 * become int8 per column, so phase 1 is a plain integer GEMM with one
 * float step per output instead of one per output and block of K.
 *
 * Packed b: per panel of WG_NR columns the columns' float scales c[16],
 * then ceil(K/4) groups of 64 bytes, byte 4*col + t = w8(k0 + t) + 128 (an
 * unsigned byte for vpdpbusd; 128, a zero weight, past K).  Work: per row
 * the int8 codes qa (K rounded up to 4, zeros past K), the row's scale sa
 * and 128 * -sum(qa), so that sum qa * (w8 + 128) plus it is d (int32
 * wrapping in between, exact at the end: |d| <= 127 * 127 * K < 2^31).
 * Phase 0 quantizes a row per task; phase 1 runs tasks of
 * WG_PANELS_PER_TASK panels (256 KB of weights at K = 4096, which stay in
 * L2 while every row passes over them), tiles of up to 6 rows x 4 panels.
 */
#include <math.h>
#include <string.h>

#include "octk.h"
#include "wocommon.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

enum { W8_KG = 4, W8_GROUP_BYTES = W8_KG * WG_NR, W8_RMAX = 6 };

static inline int64_t w8_panel_bytes(int64_t K)
{
    return 4 * WG_NR + wg_div_up(K, W8_KG) * W8_GROUP_BYTES;
}

size_t octk_wogemm_packed_b_w8_size(int64_t K, int64_t N)
{
    return (size_t)(wg_div_up(N, WG_NR) * w8_panel_bytes(K));
}

void octk_wogemm_pack_b_w8(uint8_t *dst, const uint8_t *q, const uint8_t *zp, int32_t zero,
                           const float *scale, int64_t K, int64_t N, int64_t bs, void *tmp)
{
    float *v = tmp;
    int8_t *w8 = (int8_t *)(v + K);
    int64_t np = wg_div_up(N, WG_NR), gk = wg_div_up(K, W8_KG);
    for (int64_t p = 0; p < np; p++) {
        uint8_t *o = dst + p * w8_panel_bytes(K);
        memset(o, 0, 4 * WG_NR);
        memset(o + 4 * WG_NR, 128, (size_t)(gk * W8_GROUP_BYTES));
        for (int c = 0; c < WG_NR && p * WG_NR + c < N; c++) {
            int64_t n = p * WG_NR + c;
            for (int64_t k = 0; k < K; k++) {
                int32_t z = zp ? zp[(k / bs) * N + n] : zero;
                v[k] = (float)((int32_t)q[k * N + n] - z) * scale[(k / bs) * N + n];
            }
            int32_t unused;
            float cs = wg_quantize_i8(v, K, w8, &unused);
            memcpy(o + 4 * c, &cs, 4);
            for (int64_t k = 0; k < K; k++)
                o[4 * WG_NR + (k / W8_KG) * W8_GROUP_BYTES + 4 * c + k % W8_KG] =
                    (uint8_t)(w8[k] + 128);
        }
    }
}

static inline int64_t w8_row_bytes(const octk_wogemm *p)
{
    return wg_round64(wg_div_up(p->K, W8_KG) * W8_KG + 8);
}

/* Phase 0: row m quantized with one scale. */
void octk_wogemm_w8_row(const octk_wogemm *p, int64_t m)
{
    const int64_t K = p->K, kp = wg_div_up(K, W8_KG) * W8_KG;
    int8_t *qa = (int8_t *)((uint8_t *)p->work + m * w8_row_bytes(p));
    int32_t nasum;
    float sa = wg_quantize_i8(p->a + m * p->lda, K, qa, &nasum);
    for (int64_t k = K; k < kp; k++)
        qa[k] = 0;
    int32_t corr = (int32_t)((uint32_t)nasum * 128u);
    memcpy(qa + kp, &sa, 4);
    memcpy(qa + kp + 4, &corr, 4);
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
/* Rows [m0, m0+R) x panels [p0, p0+P). */
static inline __attribute__((always_inline)) void w8_tile(const octk_wogemm *p, int64_t m0,
                                                          int64_t p0, const int R, const int P)
{
    const int64_t K = p->K, gk = wg_div_up(K, W8_KG), kp = gk * W8_KG, rb = w8_row_bytes(p);
    const int64_t pbytes = w8_panel_bytes(K);
    const uint8_t *a0 = (const uint8_t *)p->work + m0 * rb;
    const uint8_t *b0 = p->b + p0 * pbytes + 4 * WG_NR;
    __m512i acc[4][W8_RMAX];
    for (int r = 0; r < R; r++) {
        int32_t corr;
        memcpy(&corr, a0 + r * rb + kp + 4, 4);
        for (int i = 0; i < P; i++)
            acc[i][r] = _mm512_set1_epi32(corr);
    }
    for (int64_t g = 0; g < gk; g++) {
        __m512i w[4];
        for (int i = 0; i < P; i++)
            w[i] = _mm512_loadu_si512((const void *)(b0 + i * pbytes + g * W8_GROUP_BYTES));
        for (int r = 0; r < R; r++) {
            int32_t a4;
            memcpy(&a4, a0 + r * rb + g * W8_KG, 4);
            __m512i av = _mm512_set1_epi32(a4);
            for (int i = 0; i < P; i++)
                acc[i][r] = _mm512_dpbusd_epi32(acc[i][r], w[i], av);
        }
    }
    for (int i = 0; i < P; i++) {
        int64_t n0 = (p0 + i) * WG_NR, cnt = p->N - n0;
        __m512 c = _mm512_loadu_ps((const float *)(b0 + i * pbytes - 4 * WG_NR));
        __mmask16 mask = cnt >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cnt) - 1u);
        for (int r = 0; r < R; r++) {
            float sa;
            memcpy(&sa, a0 + r * rb + kp, 4);
            /* (float)d * (sa * c): two roundings, as the reference */
            __m512 f = _mm512_mul_ps(_mm512_set1_ps(sa), c);
            _mm512_mask_storeu_ps(p->y + (m0 + r) * p->ldy + n0, mask,
                                  _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i][r]), f));
        }
    }
}

/* Four panels x R rows; fewer panels (the last task of a width that is
 * not a multiple of 64) one at a time, in tiles of 6 rows or 1 (eight
 * copies of the tile in all: the code size stays that of the other paths). */
static void w8_tile_dispatch(const octk_wogemm *p, int64_t m0, int64_t p0, int R, int P)
{
    if (P == 4) {
        switch (R) {
        case 1: w8_tile(p, m0, p0, 1, 4); break;
        case 2: w8_tile(p, m0, p0, 2, 4); break;
        case 3: w8_tile(p, m0, p0, 3, 4); break;
        case 4: w8_tile(p, m0, p0, 4, 4); break;
        case 5: w8_tile(p, m0, p0, 5, 4); break;
        default: w8_tile(p, m0, p0, 6, 4); break;
        }
        return;
    }
    for (int i = 0; i < P; i++) {
        if (R == W8_RMAX)
            w8_tile(p, m0, p0 + i, W8_RMAX, 1);
        else
            for (int r = 0; r < R; r++)
                w8_tile(p, m0 + r, p0 + i, 1, 1);
    }
}

/* Phase 1: panels [q0, q1) (at most 4), every row. */
void octk_wogemm_w8_panels(const octk_wogemm *p, int64_t q0, int64_t q1)
{
    for (int64_t m0 = 0; m0 < p->M; m0 += W8_RMAX)
        w8_tile_dispatch(p, m0, q0, (int)wg_min(W8_RMAX, p->M - m0), (int)(q1 - q0));
}
#elif defined(__AVX2__)
/* AVX2: vpmaddubsw takes u8 x s8 pairs, and (w8 + 128) x qa could
 * saturate, so the signed weight's magnitude (<= 127) meets qa with the
 * weight's sign: pair sums <= 2 * 127 * 127, then vpmaddwd into int32,
 * the same d (no correction: the sums start at 0).  Tiles: R rows x one
 * panel (two vectors of 8 columns x 4 k). */
static inline __attribute__((always_inline)) void w8_tile(const octk_wogemm *p, int64_t m0,
                                                          int64_t pn, const int R)
{
    const int64_t K = p->K, gk = wg_div_up(K, W8_KG), kp = gk * W8_KG, rb = w8_row_bytes(p);
    const uint8_t *a0 = (const uint8_t *)p->work + m0 * rb;
    const uint8_t *panel = p->b + pn * w8_panel_bytes(K);
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    __m256i acc[4][2];
    for (int r = 0; r < R; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int64_t g = 0; g < gk; g++) {
        __m256i ws[2], wa[2];
        for (int h = 0; h < 2; h++) {
            ws[h] = _mm256_xor_si256(
                _mm256_loadu_si256((const __m256i *)(panel + 4 * WG_NR + g * W8_GROUP_BYTES + 32 * h)),
                flip);
            wa[h] = _mm256_abs_epi8(ws[h]);
        }
        for (int r = 0; r < R; r++) {
            int32_t a4;
            memcpy(&a4, a0 + r * rb + g * W8_KG, 4);
            __m256i av = _mm256_set1_epi32(a4);
            for (int h = 0; h < 2; h++) {
                __m256i t = _mm256_maddubs_epi16(wa[h], _mm256_sign_epi8(av, ws[h]));
                acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_madd_epi16(t, ones));
            }
        }
    }
    for (int r = 0; r < R; r++) {
        float sa, yv[WG_NR];
        memcpy(&sa, a0 + r * rb + kp, 4);
        for (int h = 0; h < 2; h++) {
            __m256 c = _mm256_loadu_ps((const float *)panel + 8 * h);
            __m256 f = _mm256_mul_ps(_mm256_set1_ps(sa), c);
            _mm256_storeu_ps(yv + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][h]), f));
        }
        memcpy(p->y + (m0 + r) * p->ldy + pn * WG_NR, yv,
               (size_t)wg_min(WG_NR, p->N - pn * WG_NR) * sizeof(float));
    }
}

void octk_wogemm_w8_panels(const octk_wogemm *p, int64_t q0, int64_t q1)
{
    for (int64_t m0 = 0; m0 < p->M; m0 += 4)
        for (int64_t pn = q0; pn < q1; pn++)
            switch (wg_min(4, p->M - m0)) {
            case 1: w8_tile(p, m0, pn, 1); break;
            case 2: w8_tile(p, m0, pn, 2); break;
            case 3: w8_tile(p, m0, pn, 3); break;
            default: w8_tile(p, m0, pn, 4); break;
            }
}
#else
/* Baseline C: one panel at a time, the same integer d. */
void octk_wogemm_w8_panels(const octk_wogemm *p, int64_t q0, int64_t q1)
{
    const int64_t K = p->K, gk = wg_div_up(K, W8_KG), kp = gk * W8_KG, rb = w8_row_bytes(p);
    const int64_t pbytes = w8_panel_bytes(K);
    for (int64_t m = 0; m < p->M; m++) {
        const int8_t *qa = (const int8_t *)((const uint8_t *)p->work + m * rb);
        float sa;
        memcpy(&sa, qa + kp, 4);
        for (int64_t pn = q0; pn < q1; pn++) {
            const uint8_t *panel = p->b + pn * pbytes;
            int32_t d[WG_NR] = {0};
            for (int64_t g = 0; g < gk; g++)
                for (int c = 0; c < WG_NR; c++)
                    for (int t = 0; t < W8_KG; t++)
                        d[c] += qa[g * W8_KG + t] *
                                ((int32_t)panel[4 * WG_NR + g * W8_GROUP_BYTES + 4 * c + t] - 128);
            for (int c = 0; c < WG_NR && pn * WG_NR + c < p->N; c++) {
                float cs;
                memcpy(&cs, panel + 4 * c, 4);
                p->y[m * p->ldy + pn * WG_NR + c] = (float)d[c] * (sa * cs);
            }
        }
    }
}
#endif

/* ---- entry points (wocommon.h) ---------------------------------------------- */

size_t octk_wogemm_w8_work_size(const octk_wogemm *p)
{
    return (size_t)(p->M * w8_row_bytes(p));
}
