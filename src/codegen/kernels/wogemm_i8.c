/*
 * wogemm_i8.c: the int8-activation path of the weight-only INT4 MatMul
 * (octk_wogemm with act_int8, MatMulNBits accuracy_level 4; layout and
 * arithmetic in octk.h, the interpreter's twin in src/ref/wo_int8.c): the
 * packing of b for it, the per-row quantization of a (phase 0) and the
 * integer tiles (phase 1) for AVX-512 VNNI, AVX2 and baseline C.  The
 * float paths and the calling convention, which sends act_int8 here, are
 * in wogemm.c.
 */
#include <math.h>
#include <string.h>

#include "octk.h"
#include "wocommon.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

/* ---- int8 activations (act_int8) ---------------------------------------------
 * Layout and arithmetic: octk.h.  Why this path reaches the read bandwidth
 * at decode: a 64-byte load holds 8 k x 16 columns, and two vpdpbusd
 * (4 k each, u8 codes x the row's 4 broadcast s8 activations) consume it,
 * so the integer work per weight byte is a fraction of the float path's
 * (widen, convert, one FMA per weight).  With 1 or 2 rows nothing amortizes
 * unpacking, so the high nibbles stay in place (x & 0xf0 = 16 * code, one
 * AND instead of a shift and an AND) in their own sums, divided by 16
 * exactly at the block's end; 4 panels (4 streams, prefetched) per tile
 * keep 8 independent sums in flight.  More rows (prefill) unpack once per
 * group and reuse the codes for 6 rows x 2 panels.
 * Work: per row, the quantized bytes qa
 * [nb * bs] (the short last block padded with 0), then sa [nb] floats and
 * nasum [nb] int32 (minus the block's sum of qa, |sum| <= 127 * 128 so its
 * low 16 bits are the int16 of it: the zero point's correction
 * d += z * nasum is one vpdpwssd / vpmaddwd on z widened to int32 lanes
 * whose high halves are 0); with one zero point for every column (no zp
 * array) phase 0 stores z * nasum instead, the sums' starting value as it
 * is (|z * nasum| <= 15 * 127 * bs): an imul and a broadcast from a general
 * register per row and block in the tile became a broadcast load. */

enum { WI_GROUP = 8, WI_GROUP_BYTES = WI_GROUP * WG_NR / 2 }; /* 8 k x 16 columns of nibbles */

static inline int64_t wi_block_bytes(int64_t len, int has_zp)
{
    return 4 * WG_NR + (has_zp ? WG_NR : 0) + wg_div_up(len, WI_GROUP) * WI_GROUP_BYTES;
}

static inline int64_t wi_panel_bytes(int64_t K, int64_t bs, int has_zp)
{
    if (K <= 0)
        return 0;
    int64_t nb = wg_div_up(K, bs);
    return (nb - 1) * wi_block_bytes(bs, has_zp) + wi_block_bytes(K - (nb - 1) * bs, has_zp);
}

size_t octk_wogemm_packed_b_i8_size(int64_t K, int64_t N, int64_t bs, int has_zp)
{
    return (size_t)(wg_div_up(N, WG_NR) * wi_panel_bytes(K, bs, has_zp));
}

void octk_wogemm_pack_b_i8(uint8_t *dst, const uint8_t *q, const uint8_t *zp, const float *scale,
                           int64_t K, int64_t N, int64_t bs)
{
    int64_t np = wg_div_up(N, WG_NR), nb = wg_div_up(K, bs);
    uint8_t *o = dst;
    for (int64_t p = 0; p < np; p++)
        for (int64_t j = 0; j < nb; j++) {
            int64_t k0 = j * bs, len = wg_min(bs, K - k0);
            o = wg_pack_block_head(o, zp, scale, N, p, j);
            for (int64_t g = 0; g < wg_div_up(len, WI_GROUP); g++, o += WI_GROUP_BYTES)
                for (int c = 0; c < WG_NR; c++)
                    for (int t = 0; t < 4; t++) {
                        int64_t n = p * WG_NR + c, k = g * WI_GROUP + t;
                        unsigned lo = n < N && k < len ? q[(k0 + k) * N + n] & 15u : 0;
                        unsigned hi = n < N && k + 4 < len ? q[(k0 + k + 4) * N + n] & 15u : 0;
                        o[4 * c + t] = (uint8_t)(lo | hi << 4);
                    }
        }
}

static inline int64_t wi_row_bytes(const octk_wogemm *p)
{
    int64_t nb = wg_div_up(p->K, p->bs);
    return wg_round64(nb * p->bs + 8 * nb);
}

/* Phase 0: row m of a quantized per block (octk.h). */
void octk_wogemm_i8_row(const octk_wogemm *p, int64_t m)
{
    const int64_t K = p->K, bs = p->bs, nb = wg_div_up(K, bs);
    int8_t *qa = (int8_t *)((uint8_t *)p->work + m * wi_row_bytes(p));
    float *sa = (float *)(qa + nb * bs);
    int32_t *nasum = (int32_t *)(sa + nb);
    const float *a = p->a + m * p->lda;
    for (int64_t j = 0; j < nb; j++) {
        const int64_t k0 = j * bs, len = wg_min(bs, K - k0);
        /* the common full block of 32 with a constant length: unrolled */
        sa[j] = len == 32 ? wg_quantize_i8(a + k0, 32, qa + k0, &nasum[j])
                          : wg_quantize_i8(a + k0, len, qa + k0, &nasum[j]);
        if (!p->has_zp)
            nasum[j] *= p->zero;
        for (int64_t k = len; k < bs; k++)
            qa[k0 + k] = 0;
    }
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define WI_VEC 1
typedef __m512i iv;
typedef __m512 fv;
/* up to WI_SPLIT_ROWS rows: high nibbles in place (iv_codes16) */
enum { IH = 1, WI_RMAX = 6, WI_SPLIT_ROWS = 2 };
WG_INLINE iv iv_zero(void) { return _mm512_setzero_si512(); }
/* The 64 bytes of a group: low nibbles (k0..k0+3) and high (k0+4..k0+7). */
WG_INLINE void iv_codes(const uint8_t *g, int h, iv *lo, iv *hi)
{
    iv x = _mm512_loadu_si512((const void *)g), m = _mm512_set1_epi8(15);
    *lo = _mm512_and_si512(x, m);
    *hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m);
}
/* The same with the high nibbles left in place (16 * code, at most 240):
 * two ANDs and no shift, for the rows that do not amortize the shift; their
 * sums are 16 times the true ones (|sum| <= 64 * 240 * 127 < 2^21 in a
 * block of 128: no overflow) and are divided exactly by iv_sum16. */
WG_INLINE void iv_codes16(const uint8_t *g, int h, iv *lo, iv *hi16)
{
    iv x = _mm512_loadu_si512((const void *)g);
    *lo = _mm512_and_si512(x, _mm512_set1_epi8(15));
    *hi16 = _mm512_and_si512(x, _mm512_set1_epi8((char)0xf0));
}
WG_INLINE iv iv_sum16(iv acc, iv acc16) { return _mm512_add_epi32(acc, _mm512_srai_epi32(acc16, 4)); }
WG_INLINE iv iv_dot(iv acc, iv w, int32_t a4) { return _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32(a4)); }
WG_INLINE iv iv_zfix(iv acc, iv z, int32_t nas) { return _mm512_dpwssd_epi32(acc, z, _mm512_set1_epi32(nas)); }
WG_INLINE iv iv_zload(const uint8_t *z, int h) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)z)); }
WG_INLINE iv iv_bcast(int32_t x) { return _mm512_set1_epi32(x); }
WG_INLINE fv fv_zero(void) { return _mm512_setzero_ps(); }
WG_INLINE fv fv_load(const float *p, int h) { return _mm512_loadu_ps(p); }
WG_INLINE fv fv_bcast(float x) { return _mm512_set1_ps(x); }
/* y + (float)d * (sa * s): three roundings, as the reference */
WG_INLINE fv fv_step(fv y, iv d, fv sa, fv s)
{
    return _mm512_add_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(sa, s)));
}
WG_INLINE void fv_store(float *y, int h, fv v, int64_t cnt)
{
    if (cnt >= 16)
        _mm512_storeu_ps(y, v);
    else
        _mm512_mask_storeu_ps(y, (__mmask16)((1u << cnt) - 1u), v);
}
#elif defined(__AVX2__)
#define WI_AVX2 1
#endif

#if WI_VEC
enum { WI_PREFETCH = 1024, WI_PMAX = 8 }; /* bytes ahead in each panel's stream */
/* Panels per tile for R rows: accumulators 2*R*P*IH plus 2*P*IH codes. */
static inline int wi_panels_for(int R)
{
    return IH == 1 ? (R <= 2 ? 4 : 2) : 1;
}

/* Rows [m0, m0+R) x panels [p0, p0+P). */
WG_INLINE void wi_tile(const octk_wogemm *p, int64_t m0, int64_t p0, const int R, const int P)
{
    const int64_t K = p->K, bs = p->bs, nb = wg_div_up(K, bs), N = p->N;
    const int64_t pbytes = wi_panel_bytes(K, bs, p->has_zp), rb = wi_row_bytes(p);
    const int has_zp = p->has_zp, split = R <= WI_SPLIT_ROWS;
    const int8_t *qa[WI_RMAX];
    const float *sa[WI_RMAX];
    const int32_t *nas[WI_RMAX];
    for (int r = 0; r < R; r++) {
        qa[r] = (const int8_t *)((const uint8_t *)p->work + (m0 + r) * rb);
        sa[r] = (const float *)(qa[r] + nb * bs);
        nas[r] = (const int32_t *)(sa[r] + nb);
    }
    const uint8_t *src[WI_PMAX];
    fv y[WI_PMAX][WI_RMAX][IH];
    for (int i = 0; i < P; i++) {
        src[i] = p->b + (p0 + i) * pbytes;
        for (int r = 0; r < R; r++)
            for (int h = 0; h < IH; h++)
                y[i][r][h] = fv_zero();
    }
    for (int64_t j = 0; j < nb; j++) {
        const int64_t len = wg_min(bs, K - j * bs), groups = wg_div_up(len, WI_GROUP);
        const uint8_t *hdr[WI_PMAX];
        iv acc[WI_PMAX][WI_RMAX][IH], acc16[WI_PMAX][WI_RMAX][IH];
        /* one zero point for all columns: its correction z * nasum
         * starts the sums (one broadcast per row instead of a vpdpwssd per
         * vector); the same integer either way */
        iv init[WI_RMAX];
        for (int r = 0; r < R; r++)
            init[r] = has_zp ? iv_zero() : iv_bcast(nas[r][j]); /* z * nasum */
        for (int i = 0; i < P; i++) {
            hdr[i] = src[i];
            src[i] += 4 * WG_NR + (has_zp ? WG_NR : 0);
            for (int r = 0; r < R; r++)
                for (int h = 0; h < IH; h++) {
                    acc[i][r][h] = init[r];
                    acc16[i][r][h] = iv_zero();
                }
        }
        for (int64_t g = 0; g < groups; g++) {
            iv lo[WI_PMAX][IH], hi[WI_PMAX][IH];
            for (int i = 0; i < P; i++) {
                /* the panels are P streams far apart: fetch ahead */
                _mm_prefetch((const char *)src[i] + g * WI_GROUP_BYTES + WI_PREFETCH, _MM_HINT_T0);
                for (int h = 0; h < IH; h++)
                    if (split)
                        iv_codes16(src[i] + g * WI_GROUP_BYTES, h, &lo[i][h], &hi[i][h]);
                    else
                        iv_codes(src[i] + g * WI_GROUP_BYTES, h, &lo[i][h], &hi[i][h]);
            }
            for (int r = 0; r < R; r++) {
                int32_t a_lo, a_hi;
                memcpy(&a_lo, qa[r] + j * bs + g * WI_GROUP, 4);
                memcpy(&a_hi, qa[r] + j * bs + g * WI_GROUP + 4, 4);
                for (int i = 0; i < P; i++)
                    for (int h = 0; h < IH; h++) {
                        acc[i][r][h] = iv_dot(acc[i][r][h], lo[i][h], a_lo);
                        if (split)
                            acc16[i][r][h] = iv_dot(acc16[i][r][h], hi[i][h], a_hi);
                        else
                            acc[i][r][h] = iv_dot(acc[i][r][h], hi[i][h], a_hi);
                    }
            }
        }
        for (int i = 0; i < P; i++) {
            src[i] += groups * WI_GROUP_BYTES;
            for (int h = 0; h < IH; h++) {
                fv s = fv_load((const float *)hdr[i], h);
                iv z = has_zp ? iv_zload(hdr[i] + 4 * WG_NR, h) : iv_zero();
                for (int r = 0; r < R; r++) {
                    iv d = split ? iv_sum16(acc[i][r][h], acc16[i][r][h]) : acc[i][r][h];
                    y[i][r][h] = fv_step(y[i][r][h], has_zp ? iv_zfix(d, z, nas[r][j]) : d,
                                         fv_bcast(sa[r][j]), s);
                }
            }
        }
    }
    for (int i = 0; i < P; i++) {
        int64_t n0 = (p0 + i) * WG_NR, cnt = N - n0;
        for (int r = 0; r < R; r++)
            for (int h = 0; h < IH; h++)
                fv_store(p->y + (m0 + r) * p->ldy + n0, h, y[i][r][h], cnt);
    }
}

static void wi_tile_dispatch(const octk_wogemm *p, int64_t m0, int64_t p0, int R, int P)
{
    switch (R * 8 + P) {
#define WI_CASE(r, pp) case r * 8 + pp: wi_tile(p, m0, p0, r, pp); break;
    WI_CASE(1, 1) WI_CASE(2, 1)
    WI_CASE(1, 2) WI_CASE(1, 3) WI_CASE(1, 4) WI_CASE(2, 2) WI_CASE(2, 3) WI_CASE(2, 4)
    WI_CASE(3, 1) WI_CASE(3, 2) WI_CASE(4, 1) WI_CASE(4, 2) WI_CASE(5, 1) WI_CASE(5, 2)
    WI_CASE(6, 1) WI_CASE(6, 2)
#undef WI_CASE
    default: break;
    }
}

/* Phase 1: panels [q0, q1), every row. */
void octk_wogemm_i8_panels(const octk_wogemm *p, int64_t q0, int64_t q1)
{
    for (int64_t m0 = 0; m0 < p->M; m0 += WI_RMAX) {
        int R = (int)wg_min(WI_RMAX, p->M - m0), P = wi_panels_for(R);
        for (int64_t pn = q0; pn < q1; pn += P)
            wi_tile_dispatch(p, m0, pn, R, (int)wg_min(P, q1 - pn));
    }
}
#elif WI_AVX2
/* AVX2 without VNNI: vpmaddubsw, u8 codes x s8 activations, pairs into
 * int16, |pair| <= 2 * 15 * 127 = 3810; int16 lanes sum the lows and highs
 * of up to WI_FLUSH = 4 groups (32 k), |sum| <= 8 * 3810 = 30480 < 2^15: no
 * saturation or wrap, then one vpmaddwd by 1 into int32 (the same integer
 * d).  A vector of codes costs a vpmaddubsw and a vpaddw per row.  Tiles:
 * 2 * R * P <= 8 int16 sums, the outputs in a stack tile yb; decode 1 x 4
 * (four streams), prefill 4 x 1 (one unpack of the codes serves 4 rows). */
enum { WI_RMAX = 4, WI_PMAX = 4, WI_FLUSH = 4, WI_PREFETCH = 1024 };
/* s16 + codes lo (k0..k0+3) and hi (k0+4..k0+7) x int8 activations a[0..7] */
WG_INLINE __m256i iv_set(int32_t x) { return _mm256_set1_epi32(x); }
WG_INLINE __m256i wi_dot2(__m256i s16, __m256i lo, __m256i hi, const int8_t *a)
{
    int32_t a4[2];
    memcpy(a4, a, 8);
    __m256i t = _mm256_maddubs_epi16(lo, _mm256_set1_epi32(a4[0]));
    t = _mm256_add_epi16(t, _mm256_maddubs_epi16(hi, _mm256_set1_epi32(a4[1])));
    return _mm256_add_epi16(s16, t);
}

/* ONE: bs <= 32, one int16 sum per block (no int32 sums live in the loop) */
WG_INLINE void wi_tile(const octk_wogemm *p, int64_t m0, int64_t p0, const int R, const int P,
                       const int ONE)
{
    const int64_t K = p->K, bs = p->bs, nb = wg_div_up(K, bs), N = p->N;
    const int64_t pbytes = wi_panel_bytes(K, bs, p->has_zp), rb = wi_row_bytes(p);
    const int has_zp = p->has_zp, hbytes = 4 * WG_NR + (has_zp ? WG_NR : 0);
    const __m256i mask = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    const int8_t *qa[WI_RMAX];
    const float *sa[WI_RMAX];
    const int32_t *nas[WI_RMAX];
    for (int r = 0; r < R; r++) {
        qa[r] = (const int8_t *)((const uint8_t *)p->work + (m0 + r) * rb);
        sa[r] = (const float *)(qa[r] + nb * bs);
        nas[r] = (const int32_t *)(sa[r] + nb);
    }
    const uint8_t *src[WI_PMAX];
    float yb[WI_RMAX][WI_PMAX][WG_NR] __attribute__((aligned(32)));
    for (int i = 0; i < P; i++)
        src[i] = p->b + (p0 + i) * pbytes;
    for (int64_t j = 0; j < nb; j++) {
        const int64_t len = wg_min(bs, K - j * bs), groups = wg_div_up(len, WI_GROUP);
        __m256i d[WI_RMAX][WI_PMAX][2];
        memset(d, 0, sizeof d); /* set at g0 = 0; for the compiler's warning */
        for (int64_t g0 = 0; g0 < (ONE ? 1 : groups); g0 += WI_FLUSH) {
            __m256i s16[WI_RMAX][WI_PMAX][2];
            memset(s16, 0, sizeof s16);
            for (int64_t g = g0; g < (ONE ? groups : wg_min(groups, g0 + WI_FLUSH)); g++) {
                const int64_t ak = j * bs + g * WI_GROUP;
                __m256i lo[WI_PMAX][2], hi[WI_PMAX][2];
                for (int i = 0; i < P; i++)
                    for (int h = 0; h < 2; h++) {
                        const uint8_t *c = src[i] + hbytes + g * WI_GROUP_BYTES + 32 * h;
                        if (P > 1 && h == 0)
                            _mm_prefetch((const char *)c + WI_PREFETCH, _MM_HINT_T0);
                        __m256i x = _mm256_loadu_si256((const __m256i *)c);
                        lo[i][h] = _mm256_and_si256(x, mask);
                        hi[i][h] = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
                        if (R == 1) /* decode: each vector of codes used at once */
                            s16[0][i][h] = wi_dot2(s16[0][i][h], lo[i][h], hi[i][h], qa[0] + ak);
                    }
                for (int r = 0; R > 1 && r < R; r++)
                    for (int i = 0; i < P; i++)
                        for (int h = 0; h < 2; h++)
                            s16[r][i][h] = wi_dot2(s16[r][i][h], lo[i][h], hi[i][h], qa[r] + ak);
            }
            for (int r = 0; r < R; r++) /* z * nasum starts the sums (one zero point) */
                for (int i = 0; i < P; i++)
                    for (int h = 0; h < 2; h++)
                        d[r][i][h] = _mm256_add_epi32(
                            g0 ? d[r][i][h] : _mm256_set1_epi32(has_zp ? 0 : nas[r][j]),
                            _mm256_madd_epi16(s16[r][i][h], ones));
        }
        for (int i = 0; i < P; i++) {
            for (int h = 0; h < 2; h++) {
                __m256 s = _mm256_loadu_ps((const float *)src[i] + 8 * h);
                __m256i z = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(
                    src[i] + (has_zp ? 4 * WG_NR + 8 * h : 0))));
                for (int r = 0; r < R; r++) {
                    __m256i dd = d[r][i][h];
                    if (has_zp) /* |nasum| <= 127 * bs fits the low int16 half */
                        dd = _mm256_add_epi32(dd, _mm256_madd_epi16(z, iv_set(nas[r][j])));
                    /* y + (float)d * (sa * s): three roundings, as the reference */
                    __m256 y = j ? _mm256_load_ps(&yb[r][i][8 * h]) : _mm256_setzero_ps();
                    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(dd),
                                             _mm256_mul_ps(_mm256_set1_ps(sa[r][j]), s));
                    _mm256_store_ps(&yb[r][i][8 * h], _mm256_add_ps(y, f));
                }
            }
            src[i] += hbytes + groups * WI_GROUP_BYTES;
        }
    }
    for (int i = 0; i < P; i++)
        for (int r = 0; r < R; r++)
            memcpy(p->y + (m0 + r) * p->ldy + (p0 + i) * WG_NR, yb[r][i],
                   (size_t)wg_min(WG_NR, N - (p0 + i) * WG_NR) * sizeof(float));
}

void octk_wogemm_i8_panels(const octk_wogemm *p, int64_t q0, int64_t q1)
{
    for (int64_t m0 = 0; m0 < p->M; m0 += WI_RMAX) {
        int R = (int)wg_min(WI_RMAX, p->M - m0), P = R == 1 ? 4 : 1;
        for (int64_t pn = q0; pn < q1; pn += P)
            switch (R * 8 + (int)wg_min(P, q1 - pn)) {
#define WI_CASE(r, q) \
    case r * 8 + q: p->bs <= 32 ? wi_tile(p, m0, pn, r, q, 1) : wi_tile(p, m0, pn, r, q, 0); break;
            WI_CASE(1, 1) WI_CASE(1, 2) WI_CASE(1, 3) WI_CASE(1, 4) WI_CASE(2, 1)
            WI_CASE(3, 1) WI_CASE(4, 1)
#undef WI_CASE
            default: break;
            }
    }
}
#else
/* Baseline C: one column at a time, the same sums. */
void octk_wogemm_i8_panels(const octk_wogemm *p, int64_t q0, int64_t q1)
{
    const int64_t K = p->K, bs = p->bs, nb = wg_div_up(K, bs), N = p->N;
    const int64_t pbytes = wi_panel_bytes(K, bs, p->has_zp), rb = wi_row_bytes(p);
    for (int64_t m = 0; m < p->M; m++) {
        const int8_t *qa = (const int8_t *)((const uint8_t *)p->work + m * rb);
        const float *sa = (const float *)(qa + nb * bs);
        const int32_t *nas = (const int32_t *)(sa + nb);
        for (int64_t pn = q0; pn < q1; pn++)
            for (int c = 0; c < WG_NR && pn * WG_NR + c < N; c++) {
                const uint8_t *src = p->b + pn * pbytes;
                float y = 0.0f;
                for (int64_t j = 0; j < nb; j++) {
                    int64_t len = wg_min(bs, K - j * bs);
                    float s;
                    memcpy(&s, src + 4 * c, 4);
                    int32_t z = p->has_zp ? src[4 * WG_NR + c] : 1; /* nas: z * nasum */
                    src += 4 * WG_NR + (p->has_zp ? WG_NR : 0);
                    int32_t d = 0;
                    for (int64_t k = 0; k < len; k++) {
                        uint8_t b = src[(k / WI_GROUP) * WI_GROUP_BYTES + 4 * c + (k & 3)];
                        d += qa[j * bs + k] * (int32_t)((k & 4) ? b >> 4 : b & 15u);
                    }
                    d += z * nas[j];
                    y = y + (float)d * (sa[j] * s);
                    src += wg_div_up(len, WI_GROUP) * WI_GROUP_BYTES;
                }
                p->y[m * p->ldy + pn * WG_NR + c] = y;
            }
    }
}
#endif

/* ---- entry points (wocommon.h) ---------------------------------------------- */

size_t octk_wogemm_i8_work_size(const octk_wogemm *p)
{
    return (size_t)(p->M * wi_row_bytes(p));
}
