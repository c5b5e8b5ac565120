/*
 * wofmt.c: MatMul with a constant weight in one of the weight-only block
 * formats other than plain INT4 (octk.h, "weight-only block formats"):
 * NVFP4 and MXFP4 (FP4 E2M1 codes), Q4_K-like (UINT4 codes and zero
 * points), INT2/UINT2 blocks, Q8_0, Q6_K-like and INT8/UINT8 blocks (8-bit
 * codes).  The weight stays in its code width in the library.
 *
 * Why one kernel for all of them: once the scales are float32 per block
 * and column (the packer's input), the formats differ only in how a code
 * becomes a value.  A code narrower than a byte indexes a 16-entry float
 * table held in registers (AVX-512: one vpermps of a zmm; AVX2: two 8-entry
 * permutes and a blend on bit 3; C: a load), which costs what INT4's
 * int-to-float conversion costs, so FP4 and Q4_K run at INT4's speed per
 * byte read.  2-bit codes use the same table built modulo 4 (the index's
 * upper bits, the next code, then select a copy of the same value), so no
 * mask is needed.  8-bit codes are signed bytes widened and converted
 * (unsigned codes and zero points reach the packer shifted by 128).
 *
 * The GEMV body follows wogemm.c: each panel's bytes are streamed once,
 * two FMA chains per row and panel (even and odd k) hide the FMA latency,
 * and a narrow code's zero point leaves the inner loop:
 *   sum_k a*(v(q) - v(z))*s = s * sum_k a*v(q) - (v(z)*s) * sum_k a,
 * with sum_k a over the block (asum) computed in phase 0.  An 8-bit zero
 * point is subtracted from the codes in int32 instead (one integer
 * subtraction, exact): it can be as large as the codes, and a column whose
 * codes all equal their zero points (a zero column, asymmetric) would
 * leave the difference of two sums of 128 * a as its result.  Rows go in
 * groups of OCTK_WO_GEMV_ROWS; more rows (prefill) re-read the packed
 * weight once per group, which keeps the weight packed at every M.
 */
#include <string.h>

#include "octk.h"
#include "wocommon.h"
#include "wovec.h"


#define WF_INLINE static inline __attribute__((always_inline))

enum { WF_NR = OCTK_WO_NR, WF_ROWS = OCTK_WO_GEMV_ROWS, WF_PANELS_PER_TASK = 4 };

static inline int64_t wf_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t wf_div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t wf_round64(int64_t v) { return (v + 63) / 64 * 64; }

/* ---- packed layout ------------------------------------------------------- */

static inline int64_t wf_block_bytes(int64_t len, int bits, int has_zp)
{
    return 4 * WF_NR + (has_zp ? WF_NR : 0) + wf_div_up(len, 8 / bits) * WF_NR;
}

static inline int64_t wf_panel_bytes(int64_t K, int64_t bs, int bits, int has_zp)
{
    if (K <= 0)
        return 0;
    int64_t nb = wf_div_up(K, bs);
    return (nb - 1) * wf_block_bytes(bs, bits, has_zp) +
           wf_block_bytes(K - (nb - 1) * bs, bits, has_zp);
}

size_t octk_wofmt_packed_b_size(int64_t K, int64_t N, int64_t bs, int bits, int has_zp)
{
    return (size_t)(wf_div_up(N, WF_NR) * wf_panel_bytes(K, bs, bits, has_zp));
}

/* Byte i of column n's codes in the block starting at k0 (len rows). */
static uint8_t wf_pack_byte(const uint8_t *q, int64_t N, int64_t n, int64_t k0, int64_t len,
                            int64_t i, int bits)
{
    int per = 8 / bits;
    unsigned mask = (1u << bits) - 1u, v = 0;
    for (int j = 0; j < per; j++) {
        int64_t r = per * i + j;
        if (r < len)
            v |= (q[(k0 + r) * N + n] & mask) << (bits * j);
    }
    return (uint8_t)v;
}

void octk_wofmt_pack_b(uint8_t *dst, const uint8_t *q, const uint8_t *zp, const float *scale,
                       int64_t K, int64_t N, int64_t bs, int bits)
{
    int64_t np = wf_div_up(N, WF_NR), nb = wf_div_up(K, bs);
    uint8_t *o = dst;
    for (int64_t p = 0; p < np; p++)
        for (int64_t j = 0; j < nb; j++) {
            int64_t k0 = j * bs, len = wf_min(bs, K - k0);
            o = wg_pack_block_head(o, zp, scale, N, p, j);
            for (int64_t i = 0; i < wf_div_up(len, 8 / bits); i++)
                for (int c = 0; c < WF_NR; c++) {
                    int64_t n = p * WF_NR + c;
                    *o++ = n < N ? wf_pack_byte(q, N, n, k0, len, i, bits) : 0;
                }
        }
}

/* ---- code conversions of this build (the vector layer: wovec.h) -------- */

#if WO_AVX512
typedef __m512i wi;
typedef struct wlut { __m512 t; } wlut;
enum { WF_RMAX = 8 };
WF_INLINE wlut wl_load(const float *lut) { return (wlut){_mm512_loadu_ps(lut)}; }
/* The 16 bytes of one code row as int32 lanes. */
WF_INLINE wi wi_bytes(const uint8_t *p, int h)
{
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
}
/* Values of the codes at bit `shift` of each lane (vpermps reads 4 bits). */
#define WF_TABLE 0
WF_INLINE wv wv_lut(wi x, int shift, wlut L)
{
    return _mm512_permutexvar_ps(shift ? _mm512_srli_epi32(x, (unsigned)shift) : x, L.t);
}
WF_INLINE wi wi_int8(const uint8_t *p, int h)
{
    return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p));
}
WF_INLINE wi wi_zero(void) { return _mm512_setzero_si512(); }
/* (q - z) of signed bytes, exact in int32, as floats. */
WF_INLINE wv wv_int8(const uint8_t *p, int h, wi z)
{
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(wi_int8(p, h), z));
}
#elif WO_AVX2
typedef __m256i wi;
/* lo, hi: the float table; b: the int8 table of wf_int_table in both lanes */
typedef struct wlut { __m256 lo, hi; __m256i b; } wlut;
enum { WF_RMAX = 2 };
#define WF_TABLE 1
WF_INLINE wlut wl_load(const float *lut)
{
    return (wlut){_mm256_loadu_ps(lut), _mm256_loadu_ps(lut + 8), _mm256_setzero_si256()};
}
/* The 8 bytes of one code row, byte c in byte 3 of lane c (bytes 0-2: 0). */
WF_INLINE wi wi_row_t(const uint8_t *p, int h)
{
    wi x = _mm256_set1_epi64x(*(const long long *)(const void *)(p + 8 * h));
    return _mm256_shuffle_epi8(x, _mm256_setr_epi32(0x00808080, 0x01808080, 0x02808080,
                                                    0x03808080, 0x04808080, 0x05808080,
                                                    0x06808080, 0x07808080));
}
/* m * 2^24 for the codes at bit `shift` of byte 3 (wf_int_table): byte 3's
 * index is the code (its upper bits the next codes: the table repeats,
 * or 0; bit 7 clear after the AND or a shift); bytes 0-2 hold 0, a bit 7,
 * or a lower code shifted to bits 2-7 (a multiple of 4: 2-bit tables are
 * 0 there) and look up 0: the lane is m * 2^24 exactly. */
WF_INLINE wv wv_lut_t(wi y, int shift, wlut L)
{
    wi idx = shift ? _mm256_srli_epi32(y, shift) : _mm256_and_si256(y, _mm256_set1_epi32(0x0f000000));
    return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(L.b, idx));
}
WF_INLINE wi wi_bytes(const uint8_t *p, int h)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * h)));
}
/* vpermps reads 3 bits: both halves of the table, bit 3 picks one. */
WF_INLINE wv wv_lut(wi x, int shift, wlut L)
{
    wi idx = shift ? _mm256_srli_epi32(x, shift) : x;
    wv lo = _mm256_permutevar8x32_ps(L.lo, idx), hi = _mm256_permutevar8x32_ps(L.hi, idx);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}
WF_INLINE wi wi_int8(const uint8_t *p, int h)
{
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * h)));
}
WF_INLINE wi wi_zero(void) { return _mm256_setzero_si256(); }
WF_INLINE wv wv_int8(const uint8_t *p, int h, wi z)
{
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(wi_int8(p, h), z));
}
#else
typedef int wi;
typedef struct wlut { const float *t; } wlut;
enum { WF_RMAX = 1 };
WF_INLINE wlut wl_load(const float *lut) { return (wlut){lut}; }
WF_INLINE wi wi_bytes(const uint8_t *p, int h) { return p[h]; }
#define WF_TABLE 0
WF_INLINE wv wv_lut(wi x, int shift, wlut L) { return L.t[(x >> shift) & 15]; }
WF_INLINE wi wi_int8(const uint8_t *p, int h) { return (int8_t)p[h]; }
WF_INLINE wi wi_zero(void) { return 0; }
WF_INLINE wv wv_int8(const uint8_t *p, int h, wi z) { return (float)(wi_int8(p, h) - z); }
#endif

#if !WF_TABLE /* named by the tile's untaken branches */
WF_INLINE wi wi_row_t(const uint8_t *p, int h) { return wi_bytes(p, h); }
WF_INLINE wv wv_lut_t(wi y, int shift, wlut L) { return wv_lut(y, shift, L); }
#endif

/* The int8 table (AVX2, where a float table lookup costs two vpermps and a
 * blend per 8 codes): when every code value is m * 2^-k, m an integer in
 * [-128, 127] and k in 0..7 (FP4 E2M1: k = 1; INT4, UINT4, INT2, UINT2:
 * k = 0), and the indices wv_lut_t looks up outside byte 3 hold 0, one
 * vpshufb gives m * 2^24 per lane, converted exactly; the sums then carry
 * the factor 2^(24+k) and the scale takes unit = 2^-(24+k) (powers of two:
 * the same roundings as with the float values, barring overflow, which
 * wf_rows_small rules out).  Sets L->b and *unit; 0: the float table. */
static int wf_int_table(const float *lut, int bits, wlut *L, float *unit)
{
#if WF_TABLE
    if (lut[0] != 0.0f || (bits == 2 && (lut[4] != 0.0f || lut[8] != 0.0f || lut[12] != 0.0f)))
        return 0;
    for (int k = 0; k < 8; k++) {
        int8_t m[16];
        int ok = 1;
        for (int c = 0; c < 16 && ok; c++) {
            float v = lut[c] * (float)(1 << k);
            ok = v >= -128.0f && v <= 127.0f && v == (float)(int)v; /* NaN: not ok */
            m[c] = ok ? (int8_t)(int)v : 0;
        }
        if (ok) {
            __m128i t;
            memcpy(&t, m, sizeof t);
            L->b = _mm256_broadcastsi128_si256(t);
            *unit = 1.0f / 16777216.0f / (float)(1 << k);
            return 1;
        }
    }
#else
    (void)lut, (void)bits, (void)L, (void)unit;
#endif
    return 0;
}

/* Whether rows [m0, m1) have every |a| < 2^60 (no NaN or Inf): the sums
 * scaled by at most 2^31 * 127 stay far from overflow. */
static int wf_rows_small(const octk_wofmt *p, int64_t m0, int64_t m1)
{
    uint32_t top = 0;
    for (int64_t m = m0; m < m1; m++)
        for (int64_t k = 0; k < p->K; k++) {
            uint32_t b;
            memcpy(&b, &p->a[m * p->lda + k], 4);
            b &= 0x7fffffffu;
            top = b > top ? b : top;
        }
    return top < (uint32_t)(127 + 60) << 23;
}

/* Panels per tile for R rows (the accumulators fit the registers). */
static inline int wf_panels_for(int R)
{
#if WO_AVX512
    return R == 1 ? 4 : R == 2 ? 2 : 1;
#elif WO_AVX2
    return R == 1 ? 2 : 1;
#else
    return 1;
#endif
}

/* Values of code r (0-based row of k within the block) of one panel;
 * 8-bit codes minus their zero points z. */
WF_INLINE wv wf_value(const uint8_t *codes, int64_t r, int h, const int BITS, wlut L, wi z,
                      const int T)
{
    if (BITS == 8)
        return wv_int8(codes + r * WF_NR, h, z);
    int per = 8 / BITS;
    if (T)
        return wv_lut_t(wi_row_t(codes + (r / per) * WF_NR, h), (int)(r % per) * BITS, L);
    return wv_lut(wi_bytes(codes + (r / per) * WF_NR, h), (int)(r % per) * BITS, L);
}

/* ---- GEMV: rows [m0, m0+R) x panels [p0, p0+P) --------------------------- */

/* T: the int8 table L->b, sums in units of `unit` (wf_int_table). */
WF_INLINE void wf_tile(const octk_wofmt *p, int64_t m0, int64_t p0, const int R, const int P,
                       const int BITS, const int T, const wlut *Lp, float unit)
{
    const int64_t K = p->K, bs = p->bs, nb = wf_div_up(K, bs), N = p->N;
    const int has_zp = p->has_zp, per = 8 / BITS, step = BITS == 8 ? 2 : per;
    const int64_t pbytes = wf_panel_bytes(K, bs, BITS, has_zp);
    const float *asum = (const float *)p->work + m0 * nb;
    const wlut L = *Lp;
    const float *a[WF_ROWS];
    const uint8_t *src[4];
    wv y[4][WF_ROWS][WH];
    for (int r = 0; r < R; r++)
        a[r] = p->a + (m0 + r) * p->lda;
    for (int i = 0; i < P; i++) {
        src[i] = p->b + (p0 + i) * pbytes;
        for (int r = 0; r < R; r++)
            for (int h = 0; h < WH; h++)
                y[i][r][h] = wv_zero();
    }
    for (int64_t j = 0; j < nb; j++) {
        const int64_t k0 = j * bs, len = wf_min(bs, K - k0), steps = len / step;
        /* one byte per column, the zero point's code: 8-bit ones are
         * subtracted from the codes in int32 (exact; an asymmetric 8-bit
         * block's zero point reaches +-128, where the sum trick would
         * cancel away 1e-4 of the result), narrow ones through asum */
        wv s[4][WH], zs[4][WH];
        wi z8[4][WH];
        for (int i = 0; i < P; i++) {
            for (int h = 0; h < WH; h++) {
                s[i][h] = wv_loadf((const float *)src[i], h);
                z8[i][h] = BITS == 8 && has_zp ? wi_int8(src[i] + 4 * WF_NR, h) : wi_zero();
                zs[i][h] = BITS != 8 && has_zp
                    ? wv_mul(wf_value(src[i] + 4 * WF_NR, 0, h, 4, L, z8[i][h], 0), s[i][h])
                    : wv_zero();
                if (T) /* after zs: the zero point's value is a float */
                    s[i][h] = wv_mul(s[i][h], wv_bcast(unit));
            }
            src[i] += 4 * WF_NR + (has_zp ? WF_NR : 0);
        }
        wv acc[2][4][WF_ROWS][WH];
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < P; i++)
                for (int r = 0; r < R; r++)
                    for (int h = 0; h < WH; h++)
                        acc[c][i][r][h] = wv_zero();
        for (int64_t st = 0; st < steps; st++) {
            const int64_t kk = st * step;
            for (int i = 0; i < P; i++)
                for (int h = 0; h < WH; h++) {
                    wi x = T ? wi_row_t(src[i] + st * WF_NR, h)
                             : wi_bytes(src[i] + (BITS == 8 ? 0 : st * WF_NR), h);
                    for (int jj = 0; jj < step; jj++) {
                        wv v = BITS == 8 ? wv_int8(src[i] + (kk + jj) * WF_NR, h, z8[i][h])
                               : T       ? wv_lut_t(x, jj * BITS, L)
                                         : wv_lut(x, jj * BITS, L);
                        for (int r = 0; r < R; r++)
                            acc[jj & 1][i][r][h] =
                                wv_fma(v, wv_bcast(a[r][k0 + kk + jj]), acc[jj & 1][i][r][h]);
                    }
                }
        }
        for (int64_t kk = steps * step; kk < len; kk++) /* the short block's tail */
            for (int i = 0; i < P; i++)
                for (int h = 0; h < WH; h++) {
                    wv v = wf_value(src[i], kk, h, BITS, L, z8[i][h], T);
                    for (int r = 0; r < R; r++)
                        acc[0][i][r][h] = wv_fma(v, wv_bcast(a[r][k0 + kk]), acc[0][i][r][h]);
                }
        for (int i = 0; i < P; i++) {
            for (int r = 0; r < R; r++)
                for (int h = 0; h < WH; h++) {
                    wv sum = wv_add(acc[0][i][r][h], acc[1][i][r][h]);
                    y[i][r][h] = wv_fma(s[i][h], sum, y[i][r][h]);
                    if (has_zp && BITS != 8)
                        y[i][r][h] = wv_fnma(zs[i][h], wv_bcast(asum[r * nb + j]), y[i][r][h]);
                }
            src[i] += wf_div_up(len, per) * WF_NR;
        }
    }
    for (int i = 0; i < P; i++) {
        int64_t n0 = (p0 + i) * WF_NR, cnt = N - n0;
        for (int r = 0; r < R; r++)
            for (int h = 0; h < WH; h++)
                wv_store(p->y + (m0 + r) * p->ldy + n0, h, y[i][r][h], cnt);
    }
}

/* The tile of R rows and P panels of BITS-wide codes, all constants in each
 * call so the loops unroll. */
#if WO_AVX512
#define WF_TILES(B, T)                                                                     \
    case 8 + 1: wf_tile(p, m0, p0, 1, 1, B, T, L, u); break;                                     \
    case 8 + 2: wf_tile(p, m0, p0, 1, 2, B, T, L, u); break;                                     \
    case 8 + 3: wf_tile(p, m0, p0, 1, 3, B, T, L, u); break;                                     \
    case 8 + 4: wf_tile(p, m0, p0, 1, 4, B, T, L, u); break;                                     \
    case 16 + 1: wf_tile(p, m0, p0, 2, 1, B, T, L, u); break;                                    \
    case 16 + 2: wf_tile(p, m0, p0, 2, 2, B, T, L, u); break;                                    \
    case 24 + 1: wf_tile(p, m0, p0, 3, 1, B, T, L, u); break;                                    \
    case 32 + 1: wf_tile(p, m0, p0, 4, 1, B, T, L, u); break;                                    \
    case 40 + 1: wf_tile(p, m0, p0, 5, 1, B, T, L, u); break;                                    \
    case 48 + 1: wf_tile(p, m0, p0, 6, 1, B, T, L, u); break;                                    \
    case 56 + 1: wf_tile(p, m0, p0, 7, 1, B, T, L, u); break;                                    \
    case 64 + 1: wf_tile(p, m0, p0, 8, 1, B, T, L, u); break;
#elif WO_AVX2
#define WF_TILES(B, T)                                                                     \
    case 8 + 1: wf_tile(p, m0, p0, 1, 1, B, T, L, u); break;                                     \
    case 8 + 2: wf_tile(p, m0, p0, 1, 2, B, T, L, u); break;                                     \
    case 16 + 1: wf_tile(p, m0, p0, 2, 1, B, T, L, u); break;
#else
#define WF_TILES(B, T) case 8 + 1: wf_tile(p, m0, p0, 1, 1, B, T, L, u); break;
#endif

static void wf_tile_8(const octk_wofmt *p, int64_t m0, int64_t p0, int R, int P,
                      const wlut *L, float u)
{
    switch (R * 8 + P) {
    WF_TILES(8, 0)
    default: break;
    }
}

static void wf_tile_4(const octk_wofmt *p, int64_t m0, int64_t p0, int R, int P, int T,
                      const wlut *L, float u)
{
    if (WF_TABLE && T)
        switch (R * 8 + P) {
        WF_TILES(4, 1)
        default: break;
        }
    else
        switch (R * 8 + P) {
        WF_TILES(4, 0)
        default: break;
        }
}

static void wf_tile_2(const octk_wofmt *p, int64_t m0, int64_t p0, int R, int P, int T,
                      const wlut *L, float u)
{
    if (WF_TABLE && T)
        switch (R * 8 + P) {
        WF_TILES(2, 1)
        default: break;
        }
    else
        switch (R * 8 + P) {
        WF_TILES(2, 0)
        default: break;
        }
}

static inline int64_t wf_panel_tasks(const octk_wofmt *p)
{
    return wf_div_up(wf_div_up(p->N, WF_NR), WF_PANELS_PER_TASK);
}

/* Phase 1, task t: row group t / panel tasks, panel group t % panel tasks. */
static void wf_task(const octk_wofmt *p, int64_t t)
{
    int64_t npt = wf_panel_tasks(p), np = wf_div_up(p->N, WF_NR);
    int64_t g = t / npt, q0 = (t % npt) * WF_PANELS_PER_TASK;
    int64_t q1 = wf_min(np, q0 + WF_PANELS_PER_TASK), r1 = wf_min(p->M, (g + 1) * WF_ROWS);
    wlut L = wl_load(p->lut);
    float u = 1.0f;
    int T = p->bits != 8 && wf_int_table(p->lut, p->bits, &L, &u) &&
            wf_rows_small(p, g * WF_ROWS, r1);
    for (int64_t m0 = g * WF_ROWS; m0 < r1; m0 += WF_RMAX) {
        int R = (int)wf_min(WF_RMAX, r1 - m0), P = wf_panels_for(R);
        for (int64_t pn = q0; pn < q1; pn += P) {
            int pp = (int)wf_min(P, q1 - pn);
            if (p->bits == 8)
                wf_tile_8(p, m0, pn, R, pp, &L, u);
            else if (p->bits == 4)
                wf_tile_4(p, m0, pn, R, pp, T, &L, u);
            else
                wf_tile_2(p, m0, pn, R, pp, T, &L, u);
        }
    }
}

/* ---- calling convention ----------------------------------------------------- */

size_t octk_wofmt_work_size(const octk_wofmt *p)
{
    int64_t nb = wf_div_up(p->K > 0 ? p->K : 1, p->bs);
    return (size_t)wf_round64(p->has_zp ? p->M * nb * (int64_t)sizeof(float) : 4);
}

int64_t octk_wofmt_tasks(const octk_wofmt *p, int phase)
{
    if (p->M <= 0 || p->N <= 0)
        return 0;
    if (phase == 0)
        return p->has_zp && p->bits != 8 ? p->M : 0;
    return phase == 1 ? wf_div_up(p->M, WF_ROWS) * wf_panel_tasks(p) : 0;
}

void octk_wofmt_run(const octk_wofmt *p, int phase, int64_t begin, int64_t end)
{
    for (int64_t t = begin; t < end; t++) {
        if (phase == 0)
            wo_block_sums(p->a + t * p->lda, p->K, p->bs,
                          (float *)p->work + t * wf_div_up(p->K, p->bs));
        else
            wf_task(p, t);
    }
}
