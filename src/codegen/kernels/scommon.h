/*
 * scommon.h: helpers shared by the float32 kernels (sgemm.c, sconv.c,
 * sdwconv.c, sfunc.c): the matrix-multiply tile driver and its 6 x 16
 * microkernel with the fused epilogue (bias, clamp), the valid output
 * columns of a convolution tap, and the vectorized exp.
 *
 * Three variants: with __AVX512F__ a 6 x 64 microkernel (24 zmm
 * accumulators, masked loads and stores at the column edge); with __AVX2__
 * alone the 6 x 16 AVX2+FMA one; else plain C loops for baseline x86-64
 * (the compiler vectorizes them with SSE).  All read the same packed
 * layouts (a 64-column strip of packed B is 4 adjacent 16-column panels),
 * so a blob packed by one runs on the others.
 *
 * Float numerics: sums use FMA and a fixed order that depends only on the
 * shapes (K blocks of a length chosen from the shapes, at most SK_KC or the
 * caller's limit, k ascending inside a block; each block's partial sum is
 * added to y), never
 * on how the tasks were split.  The bias enters with the first block.
 * Clamp: y = min(max(v, lo), hi) with NaN kept.
 */
#ifndef OCTET_SCOMMON_H
#define OCTET_SCOMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "octk.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

#define SK_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Before a microkernel's k loop: clang unrolling it hoists the next step's
 * broadcasts above this step's FMAs and spills accumulators. */
#ifdef __clang__
#define SK_NO_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define SK_NO_UNROLL
#endif

enum {
    SK_MR = 6,    /* rows of a microtile (the broadcast side) */
    SK_NR = 16,   /* columns of a microtile (the vector side); packed panel width */
    SK_KC = 256,  /* K block: a kc x 16 panel of b is 16 KiB, it stays in L1 */
};

/* A matrix product y[m][n] = clamp(sum_k A(m,k) * B(k,n) + bias, lo, hi).
 *   A: a_packed ? panels of SK_MR rows [ceil(M/6)][K][6] (zero padded)
 *               : row-major a[m*lda + k];
 *   B: b_packed ? panels of SK_NR columns [ceil(N/16)][K][16] (zero padded)
 *               : row-major b[k*ldb + n]; b_masked says that columns past N
 *                 may not be read (the last panel is partial and unpadded);
 *   bias: NULL, or bias[m] if bias_per_row, else bias[n]. */
typedef struct sk_mm {
    int64_t M, N, K;
    const float *a;
    int64_t lda;
    int a_packed;
    const float *b;
    int64_t ldb;
    int b_packed, b_masked;
    float *y;
    int64_t ldy;
    const float *bias;
    int bias_per_row;
    float lo, hi;
    int64_t kc;   /* K block length (> 0) */
} sk_mm;

static inline int64_t sk_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t sk_max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t sk_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* K block length: blocks of equal length (a multiple of 8 when possible)
 * not above limit; 1 when K = 0. */
static inline int64_t sk_balanced_kc(int64_t K, int64_t limit)
{
    if (K <= limit)
        return K > 0 ? K : 1;
    const int64_t nb = sk_ceil_div(K, limit);
    const int64_t kc = sk_ceil_div(sk_ceil_div(K, nb), 8) * 8;
    return kc <= limit ? kc : limit;
}

/* First and one-past-last ow whose input column ow*SW - PL + off lies in
 * [0, W). */
static inline void sconv_valid_ow(const octk_conv_shape *s, int64_t off, int64_t *lo,
                                  int64_t *hi)
{
    int64_t a = 0, b = s->OW;
    while (a < b && a * s->SW - s->PL + off < 0)
        a++;
    while (b > a && (b - 1) * s->SW - s->PL + off >= s->W)
        b--;
    *lo = a;
    *hi = b;
}

/* Scalar clamp keeping NaN: comparisons with NaN are false. */
static inline float sk_clampf(float v, float lo, float hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* Arguments of one microtile call. */
typedef struct sk_tile {
    const float *a;          /* A(m0, k0) */
    int64_t a_rs, a_ks;      /* element steps of A between rows and between k */
    const float *b;          /* B(k0, n0) */
    int64_t ldb;             /* step of B between k */
    int64_t kc;              /* k steps */
    int64_t ldp;             /* step of B between 16-column vectors (6 x 64 tile) */
    int ncols;               /* valid columns, 1..16 (1..64 for the 6 x 64 tile) */
    float *y;                /* y(m0, n0) */
    int64_t ldy;
    const float *bias_row;   /* bias of row m0 or NULL */
    const float *bias_col;   /* bias of column n0 or NULL */
    int first, last;         /* first K block (start from bias) / last */
    int clamp;               /* last block and [lo, hi] not [-Inf, +Inf]: clamp */
    float lo, hi;
} sk_tile;

#ifdef __AVX2__

static inline __m256i sk_mask8(int n)
{
    /* lanes i < n set (n clamped to 0..8) */
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

/* Stores lanes [0, n) of v at d, n < 8, by 4-, 2- and 1-float stores:
 * vmaskmovps stores are slow on AMD cores (Zen 3: several times a plain
 * store), and short partial rows are common in convolutions. */
static inline void sk_store_part8(float *d, __m256 v, int n)
{
    __m128 h = _mm256_castps256_ps128(v);
    if (n & 4) {
        _mm_storeu_ps(d, h);
        h = _mm256_extractf128_ps(v, 1);
        d += 4;
    }
    if (n & 2) {
        _mm_storel_pi((__m64 *)(void *)d, h);
        h = _mm_movehl_ps(h, h);
        d += 2;
    }
    if (n & 1)
        _mm_store_ss(d, h);
}

/* Stores lanes [0, n) of v at d, 0 <= n <= 8. */
static inline void sk_store_upto8(float *d, __m256 v, int n)
{
    if (n >= 8)
        _mm256_storeu_ps(d, v);
    else
        sk_store_part8(d, v, n);
}

/* NaN-keeping clamp: max_ps/min_ps return their second operand on NaN. */
static inline __m256 sk_clamp8(__m256 v, __m256 lo, __m256 hi)
{
    return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

/* Epilogue of one microtile row: + bias (first K block) or + y so far,
 * clamp on the last block, store (only the first ncols floats when
 * ncols < 16). */
SK_ALWAYS_INLINE void sk_epi_row(const sk_tile *t, int r, __m256 v0, __m256 v1, __m256 bc0,
                                 __m256 bc1, __m256i m0, __m256i m1)
{
    float *yr = t->y + r * t->ldy;
    const int full = t->ncols == SK_NR;
    if (t->first) {
        if (t->bias_row) {
            const __m256 br = _mm256_broadcast_ss(t->bias_row + r);
            v0 = _mm256_add_ps(v0, br);
            v1 = _mm256_add_ps(v1, br);
        } else {
            v0 = _mm256_add_ps(v0, bc0);
            v1 = _mm256_add_ps(v1, bc1);
        }
    } else if (full) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(yr));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(yr + 8));
    } else {
        v0 = _mm256_add_ps(v0, _mm256_maskload_ps(yr, m0));
        v1 = _mm256_add_ps(v1, _mm256_maskload_ps(yr + 8, m1));
    }
    if (t->clamp) {
        const __m256 lo = _mm256_set1_ps(t->lo), hi = _mm256_set1_ps(t->hi);
        v0 = sk_clamp8(v0, lo, hi);
        v1 = sk_clamp8(v1, lo, hi);
    }
    if (full) {
        _mm256_storeu_ps(yr, v0);
        _mm256_storeu_ps(yr + 8, v1);
    } else if (t->ncols >= 8) {
        _mm256_storeu_ps(yr, v0);
        sk_store_part8(yr + 8, v1, t->ncols - 8);
    } else {
        sk_store_part8(yr, v0, t->ncols);
    }
}

/* Loads row k of the B panel (16 floats, masked past ncols if masked). */
SK_ALWAYS_INLINE void sk_load_b(const float *bk, int masked, __m256i m0, __m256i m1, __m256 *b0,
                                __m256 *b1)
{
    if (masked) {
        *b0 = _mm256_maskload_ps(bk, m0);
        *b1 = _mm256_maskload_ps(bk + 8, m1);
    } else {
        *b0 = _mm256_loadu_ps(bk);
        *b1 = _mm256_loadu_ps(bk + 8);
    }
}

/* R x 16 microtile: R (1..6) and masked are constants after inlining.
 * masked: B columns >= ncols may not be read.  The 12 accumulators are
 * named locals (an array would be spilled by gcc). */
SK_ALWAYS_INLINE void sk_micro(const sk_tile *t, const int R, const int masked)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const __m256i m0 = sk_mask8(t->ncols), m1 = sk_mask8(t->ncols - 8);
    const float *a = t->a, *b = t->b;
    const int64_t a_rs = t->a_rs, a_ks = t->a_ks, ldb = t->ldb, kc = t->kc;
    int64_t k = 0;
    if (R == 1) {
        /* one row (batch-1 Gemm): 4 independent chains hide FMA latency */
        for (; k + 4 <= kc; k += 4) {
            const float *bk = b + k * ldb, *ak = a + k * a_ks;
            __m256 b00, b01, b10, b11, b20, b21, b30, b31;
            sk_load_b(bk, masked, m0, m1, &b00, &b01);
            sk_load_b(bk + ldb, masked, m0, m1, &b10, &b11);
            sk_load_b(bk + 2 * ldb, masked, m0, m1, &b20, &b21);
            sk_load_b(bk + 3 * ldb, masked, m0, m1, &b30, &b31);
            const __m256 a0 = _mm256_broadcast_ss(ak), a1 = _mm256_broadcast_ss(ak + a_ks);
            const __m256 a2 = _mm256_broadcast_ss(ak + 2 * a_ks);
            const __m256 a3 = _mm256_broadcast_ss(ak + 3 * a_ks);
            c00 = _mm256_fmadd_ps(a0, b00, c00);
            c01 = _mm256_fmadd_ps(a0, b01, c01);
            c10 = _mm256_fmadd_ps(a1, b10, c10);
            c11 = _mm256_fmadd_ps(a1, b11, c11);
            c20 = _mm256_fmadd_ps(a2, b20, c20);
            c21 = _mm256_fmadd_ps(a2, b21, c21);
            c30 = _mm256_fmadd_ps(a3, b30, c30);
            c31 = _mm256_fmadd_ps(a3, b31, c31);
        }
        c00 = _mm256_add_ps(_mm256_add_ps(c00, c10), _mm256_add_ps(c20, c30));
        c01 = _mm256_add_ps(_mm256_add_ps(c01, c11), _mm256_add_ps(c21, c31));
        c10 = c11 = c20 = c21 = c30 = c31 = _mm256_setzero_ps();
    }
    for (; k < kc; k++) {
        __m256 b0, b1, av;
        sk_load_b(b + k * ldb, masked, m0, m1, &b0, &b1);
        const float *ak = a + k * a_ks;
        av = _mm256_broadcast_ss(ak);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        if (R > 1) {
            av = _mm256_broadcast_ss(ak + a_rs);
            c10 = _mm256_fmadd_ps(av, b0, c10);
            c11 = _mm256_fmadd_ps(av, b1, c11);
        }
        if (R > 2) {
            av = _mm256_broadcast_ss(ak + 2 * a_rs);
            c20 = _mm256_fmadd_ps(av, b0, c20);
            c21 = _mm256_fmadd_ps(av, b1, c21);
        }
        if (R > 3) {
            av = _mm256_broadcast_ss(ak + 3 * a_rs);
            c30 = _mm256_fmadd_ps(av, b0, c30);
            c31 = _mm256_fmadd_ps(av, b1, c31);
        }
        if (R > 4) {
            av = _mm256_broadcast_ss(ak + 4 * a_rs);
            c40 = _mm256_fmadd_ps(av, b0, c40);
            c41 = _mm256_fmadd_ps(av, b1, c41);
        }
        if (R > 5) {
            av = _mm256_broadcast_ss(ak + 5 * a_rs);
            c50 = _mm256_fmadd_ps(av, b0, c50);
            c51 = _mm256_fmadd_ps(av, b1, c51);
        }
    }
    __m256 bc0 = _mm256_setzero_ps(), bc1 = _mm256_setzero_ps();
    if (t->first && t->bias_col) {
        bc0 = _mm256_maskload_ps(t->bias_col, m0);
        bc1 = _mm256_maskload_ps(t->bias_col + 8, m1);
    }
    sk_epi_row(t, 0, c00, c01, bc0, bc1, m0, m1);
    if (R > 1)
        sk_epi_row(t, 1, c10, c11, bc0, bc1, m0, m1);
    if (R > 2)
        sk_epi_row(t, 2, c20, c21, bc0, bc1, m0, m1);
    if (R > 3)
        sk_epi_row(t, 3, c30, c31, bc0, bc1, m0, m1);
    if (R > 4)
        sk_epi_row(t, 4, c40, c41, bc0, bc1, m0, m1);
    if (R > 5)
        sk_epi_row(t, 5, c50, c51, bc0, bc1, m0, m1);
}

#else /* baseline x86-64: plain loops */

/* One row of 16 (or ncols when masked) accumulators at a time: the
 * compiler keeps them in 4 SSE registers; the kc x 16 panel of B is read
 * from L1 once per row. */
SK_ALWAYS_INLINE void sk_micro(const sk_tile *t, const int R, const int masked)
{
    const int64_t kc = t->kc, a_ks = t->a_ks, ldb = t->ldb;
    for (int r = 0; r < R; r++) {
        float acc[SK_NR];
        for (int c = 0; c < SK_NR; c++)
            acc[c] = 0.0f;
        const float *ar = t->a + r * t->a_rs;
        if (masked && t->ncols < SK_NR) {
            const int nc = t->ncols;
            for (int64_t k = 0; k < kc; k++)
                for (int c = 0; c < nc; c++)
                    acc[c] += ar[k * a_ks] * t->b[k * ldb + c];
        } else {
            for (int64_t k = 0; k < kc; k++) {
                const float av = ar[k * a_ks];
                const float *bk = t->b + k * ldb;
                for (int c = 0; c < SK_NR; c++)
                    acc[c] += av * bk[c];
            }
        }
        float *yr = t->y + r * t->ldy;
        for (int c = 0; c < t->ncols; c++) {
            float v = acc[c];
            if (t->first)
                v += t->bias_row ? t->bias_row[r] : t->bias_col ? t->bias_col[c] : 0.0f;
            else
                v += yr[c];
            yr[c] = t->clamp ? sk_clampf(v, t->lo, t->hi) : v;
        }
    }
}

#endif

#ifdef __AVX512F__

/* lanes i < n of 16 set (n clamped to 0..16) */
static inline __mmask16 sk_mask16(int n)
{
    return n <= 0 ? 0 : n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* A 16-float vector of B or y: plain when the tile is full, else masked
 * (lanes past ncols are neither read nor written, so a strip may end
 * inside a row-major matrix or after the last packed panel). */
SK_ALWAYS_INLINE __m512 sk_ld16(const float *p, int masked, __mmask16 m)
{
    return masked ? _mm512_maskz_loadu_ps(m, p) : _mm512_loadu_ps(p);
}

SK_ALWAYS_INLINE void sk_st16(float *p, int masked, __mmask16 m, __m512 v)
{
    if (masked)
        _mm512_mask_storeu_ps(p, m, v);
    else
        _mm512_storeu_ps(p, v);
}

/* Epilogue of one row of the 6 x 64 tile (see sk_epi_row). */
SK_ALWAYS_INLINE void sk_epi_row64(const sk_tile *t, int r, const int masked, __m512 *v,
                                   const __m512 *bc, const __mmask16 *m)
{
    float *yr = t->y + r * t->ldy;
    const __m512 lo = _mm512_set1_ps(t->lo), hi = _mm512_set1_ps(t->hi);
    const __m512 br = t->bias_row ? _mm512_set1_ps(t->bias_row[r]) : _mm512_setzero_ps();
    for (int j = 0; j < 4; j++) {
        if (t->first)
            v[j] = _mm512_add_ps(v[j], t->bias_row ? br : bc[j]);
        else
            v[j] = _mm512_add_ps(v[j], sk_ld16(yr + 16 * j, masked, m[j]));
        if (t->clamp)   /* NaN kept: max/min return their second operand on NaN */
            v[j] = _mm512_min_ps(hi, _mm512_max_ps(lo, v[j]));
        sk_st16(yr + 16 * j, masked, m[j], v[j]);
    }
}

/* R x 64 microtile, R (1..6) and masked constant after inlining: per k,
 * 4 vectors of B and R broadcasts of A feed 4R FMAs into independent
 * accumulators (24 at R = 6: 4 FMA latencies of a 2-pipe core covered).
 * masked: ncols < 64, every B and y access masked (vectors wholly past
 * ncols read nothing and point at the first). */
SK_ALWAYS_INLINE void sk_micro64(const sk_tile *t, const int R, const int masked)
{
    __m512 c[6][4];
    for (int r = 0; r < 6; r++)
        for (int j = 0; j < 4; j++)
            c[r][j] = _mm512_setzero_ps();
    __mmask16 m[4];
    const float *bp[4];
    for (int j = 0; j < 4; j++) {
        m[j] = sk_mask16(t->ncols - 16 * j);
        bp[j] = 16 * j < t->ncols ? t->b + j * t->ldp : t->b;
    }
    const float *a = t->a;
    const int64_t a_rs = t->a_rs, a_ks = t->a_ks, ldb = t->ldb, kc = t->kc;
    SK_NO_UNROLL
    for (int64_t k = 0; k < kc; k++) {
        __m512 b[4];
        for (int j = 0; j < 4; j++)
            b[j] = sk_ld16(bp[j] + k * ldb, masked, m[j]);
        const float *ak = a + k * a_ks;
        for (int r = 0; r < R; r++) {
            const __m512 av = _mm512_set1_ps(ak[r * a_rs]);
            for (int j = 0; j < 4; j++)
                c[r][j] = _mm512_fmadd_ps(av, b[j], c[r][j]);
        }
    }
    __m512 bc[4];
    for (int j = 0; j < 4; j++)
        bc[j] = t->first && t->bias_col ? _mm512_maskz_loadu_ps(m[j], t->bias_col + 16 * j)
                                        : _mm512_setzero_ps();
    for (int r = 0; r < R; r++)
        sk_epi_row64(t, r, masked, c[r], bc, m);
}

/* Dispatches a 6 x 64 microtile of R rows (runtime) to its constant instance. */
static inline void sk_micro64_any(const sk_tile *t, int R)
{
    const int masked = t->ncols < 64;
    if (masked) {
        switch (R) {
        case 6: sk_micro64(t, 6, 1); break;
        case 5: sk_micro64(t, 5, 1); break;
        case 4: sk_micro64(t, 4, 1); break;
        case 3: sk_micro64(t, 3, 1); break;
        case 2: sk_micro64(t, 2, 1); break;
        default: sk_micro64(t, 1, 1); break;
        }
    } else {
        switch (R) {
        case 6: sk_micro64(t, 6, 0); break;
        case 5: sk_micro64(t, 5, 0); break;
        case 4: sk_micro64(t, 4, 0); break;
        case 3: sk_micro64(t, 3, 0); break;
        case 2: sk_micro64(t, 2, 0); break;
        default: sk_micro64(t, 1, 0); break;
        }
    }
}

#endif

/* Dispatches a microtile of R rows (runtime) to its constant instance. */
static inline void sk_micro_any(const sk_tile *t, int R, int masked)
{
    if (masked) {
        switch (R) {
        case 6: sk_micro(t, 6, 1); break;
        case 5: sk_micro(t, 5, 1); break;
        case 4: sk_micro(t, 4, 1); break;
        case 3: sk_micro(t, 3, 1); break;
        case 2: sk_micro(t, 2, 1); break;
        default: sk_micro(t, 1, 1); break;
        }
    } else {
        switch (R) {
        case 6: sk_micro(t, 6, 0); break;
        case 5: sk_micro(t, 5, 0); break;
        case 4: sk_micro(t, 4, 0); break;
        case 3: sk_micro(t, 3, 0); break;
        case 2: sk_micro(t, 2, 0); break;
        default: sk_micro(t, 1, 0); break;
        }
    }
}

/* The fields of a microtile that depend on the K block and the columns
 * [n, n + ncols) only. */
static inline void sk_tile_cols(const sk_mm *mm, sk_tile *t, int64_t kb, int64_t nkb, int64_t n,
                                int64_t ncols)
{
    const int64_t k0 = kb * mm->kc;
    t->ncols = (int)ncols;
    t->ldb = mm->b_packed ? SK_NR : mm->ldb;
    t->ldp = mm->b_packed ? mm->K * SK_NR : SK_NR;
    t->b = mm->b_packed ? mm->b + n * mm->K + k0 * SK_NR : mm->b + k0 * mm->ldb + n;
    t->kc = sk_min64(mm->kc, mm->K - k0);
    t->first = kb == 0;
    t->last = kb == nkb - 1;
    /* clamping to [-Inf, +Inf] changes nothing (NaN kept): skipped, it
     * cost a max and a min per vector, a quarter of the epilogue */
    t->clamp = t->last && !(mm->lo == -__builtin_inff() && mm->hi == __builtin_inff());
    t->lo = mm->lo;
    t->hi = mm->hi;
    t->ldy = mm->ldy;
    t->bias_col = mm->bias && !mm->bias_per_row ? mm->bias + n : NULL;
}

/* The fields of a microtile that depend on its first row m. */
static inline void sk_tile_rows(const sk_mm *mm, sk_tile *t, int64_t kb, int64_t m, int64_t n)
{
    const int64_t k0 = kb * mm->kc;
    if (mm->a_packed) {
        t->a = mm->a + m * mm->K + k0 * SK_MR;
        t->a_rs = 1;
        t->a_ks = SK_MR;
    } else {
        t->a = mm->a + m * mm->lda + k0;
        t->a_rs = mm->lda;
        t->a_ks = 1;
    }
    t->y = mm->y + m * mm->ldy + n;
    t->bias_row = mm->bias && mm->bias_per_row ? mm->bias + m : NULL;
}

/* Computes the block y[m0, m1) x [n0, n1) of mm completely (all K blocks,
 * bias, clamp).  m0 is a multiple of SK_MR when A is packed, n0 a multiple
 * of SK_NR.  The value of each output depends only on mm, never on the
 * block bounds.  Loop order: K block, then
 *   6 x 16 tiles: 16-column panel, then 6-row tile, so a kc x 16 panel of B
 *     is reused from L1 by every row tile;
 *   6 x 64 tiles (AVX-512): 6-row tile, then 64-column strip, so the kc x 6
 *     slice of A stays in L1 while the block's kc x (n1 - n0) slice of B
 *     streams from L2. */
static inline void sk_mm_block(const sk_mm *mm, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    const int64_t nkb = mm->K > 0 ? sk_ceil_div(mm->K, mm->kc) : 1;
    sk_tile t;
    for (int64_t kb = 0; kb < nkb; kb++) {
#ifdef __AVX512F__
        for (int64_t m = m0; m < m1; m += SK_MR) {
            const int R = (int)sk_min64(SK_MR, m1 - m);
            for (int64_t n = n0; n < n1; n += 64) {
                sk_tile_cols(mm, &t, kb, nkb, n, sk_min64(64, n1 - n));
                sk_tile_rows(mm, &t, kb, m, n);
                sk_micro64_any(&t, R);
            }
        }
#else
        for (int64_t n = n0; n < n1; n += SK_NR) {
            sk_tile_cols(mm, &t, kb, nkb, n, sk_min64(SK_NR, mm->N - n));
            const int masked = mm->b_masked && t.ncols < SK_NR;
            for (int64_t m = m0; m < m1; m += SK_MR) {
                sk_tile_rows(mm, &t, kb, m, n);
                sk_micro_any(&t, (int)sk_min64(SK_MR, m1 - m), masked);
            }
        }
#endif
    }
}

/* ---- FP8 weights widened to float (octk.h, "FP8 weights") ---------------- */

enum {
    SK_WIDEN_TASK = 8192,   /* weights widened per phase-0 task (about) */
};

/* The fp16 bit pattern of an FP8 code: E5M2 is the high half of the fp16
 * of the same value; for E4M3FN (not NaN) the exponent and mantissa move
 * to the fp16 fields with the exponent bias 7 -> 15, which is the fp16 of
 * value * 2^-8, subnormals included (0.mmm * 2^-6 -> 0.mmm * 2^-14). */
static inline uint16_t sk_fp8_half(uint8_t b, int e4m3)
{
    return e4m3 ? (uint16_t)(((b & 0x80u) << 8) | ((b & 0x7fu) << 7)) : (uint16_t)(b << 8);
}

/* fp16 -> float32, exact (vcvtph2ps's result: NaN quieted, payload kept). */
static inline float sk_half_float(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 0x3ffu;
    uint32_t bits;
    if (e == 0) {
        /* zero or subnormal: m * 2^-24, exact in float32 */
        const float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31)
        bits = sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u);
    else
        bits = sign | ((e + 112u) << 23) | (m << 13);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* The multiplier of a widened FP8 weight: its scale, times 256 for E4M3FN
 * (whose fp16 is value * 2^-8; exact by the precondition of octk.h). */
static inline float sk_fp8_mult(float scale, int e4m3)
{
    return e4m3 ? scale * 256.0f : scale;
}

/* dst[i] = half(src[i]) * mult[i % period] for 0 <= i < n, period 8, 16 or
 * 24 (mult holds `period` floats): one exact widening and one float32
 * multiplication per weight, the same bits on every variant. */
static inline void sk_widen_fp8(float *dst, const uint8_t *src, int64_t n, const float *mult,
                                int period, int e4m3)
{
    int64_t i = 0;
#if defined(__AVX2__) && defined(__F16C__)
    const __m256 m0 = _mm256_loadu_ps(mult);
    const __m256 m1 = period > 8 ? _mm256_loadu_ps(mult + 8) : m0;
    const __m256 m2 = period > 16 ? _mm256_loadu_ps(mult + 16) : m0;
    const __m128i sign = _mm_set1_epi16(0x80), mag = _mm_set1_epi16(0x7f);
    for (; i + period <= n; i += period) {
        for (int v = 0; v < period; v += 8) {
            const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(src + i + v)));
            const __m128i h = e4m3 ? _mm_or_si128(_mm_slli_epi16(_mm_and_si128(w, sign), 8),
                                                  _mm_slli_epi16(_mm_and_si128(w, mag), 7))
                                   : _mm_slli_epi16(w, 8);
            const __m256 mv = v == 0 ? m0 : v == 8 ? m1 : m2;
            _mm256_storeu_ps(dst + i + v, _mm256_mul_ps(_mm256_cvtph_ps(h), mv));
        }
    }
#endif
    for (; i < n; i++)
        dst[i] = sk_half_float(sk_fp8_half(src[i], e4m3)) * mult[i % period];
}

/* ---- exp ------------------------------------------------------------------ */

/* exp(x) after Cephes expf: n = round(x / ln2), r = x - n*ln2 (in two
 * parts), exp(r) by a degree-6 polynomial on |r| <= ln2/2 (about 1 ulp),
 * times 2^n applied as two exact power-of-two factors so that results in
 * the subnormal range round once more (gradual underflow) and results past
 * FLT_MAX become +Inf.  x is clamped to [-104, 89] first (exp(-104) rounds
 * to 0, exp(89) overflows); NaN propagates through the clamp. */
#define SK_EXP_LO (-104.0f)
#define SK_EXP_HI 89.0f
#define SK_LOG2E 1.44269504088896341f
#define SK_LN2_HI 0.693359375f
#define SK_LN2_LO (-2.12194440e-4f)
#define SK_EXP_P0 1.9875691500E-4f
#define SK_EXP_P1 1.3981999507E-3f
#define SK_EXP_P2 8.3334519073E-3f
#define SK_EXP_P3 4.1665795894E-2f
#define SK_EXP_P4 1.6666665459E-1f
#define SK_EXP_P5 5.0000001201E-1f

static inline float sk_pow2i(int32_t e)
{
    /* 2^e for e in [-126, 127] */
    uint32_t bits = (uint32_t)(e + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Scalar twin of sk_exp8 (same steps). */
static inline float sk_expf(float x)
{
    x = x < SK_EXP_LO ? SK_EXP_LO : x;
    x = x > SK_EXP_HI ? SK_EXP_HI : x;
    /* round to nearest even by the 1.5 * 2^23 trick (|x log2e| < 2^22):
     * rintf would be a libm call on baseline x86-64 */
    float fn = (x * SK_LOG2E + 12582912.0f) - 12582912.0f;
    float r = x - fn * SK_LN2_HI;
    r = r - fn * SK_LN2_LO;
    float z = r * r;
    float p = SK_EXP_P0;
    p = p * r + SK_EXP_P1;
    p = p * r + SK_EXP_P2;
    p = p * r + SK_EXP_P3;
    p = p * r + SK_EXP_P4;
    p = p * r + SK_EXP_P5;
    p = p * z + r + 1.0f;
    int32_t n = x == x ? (int32_t)fn : 0;
    int32_t n1 = n >> 1, n2 = n - n1;    /* both in [-75, 64] */
    return p * sk_pow2i(n1) * sk_pow2i(n2);
}

#ifdef __AVX2__
static inline __m256 sk_exp8(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(SK_EXP_LO), x);   /* NaN kept */
    x = _mm256_min_ps(_mm256_set1_ps(SK_EXP_HI), x);
    __m256 fn = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(SK_LOG2E)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(SK_LN2_HI), x);
    r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(SK_LN2_LO), r);
    __m256 z = _mm256_mul_ps(r, r);
    __m256 p = _mm256_set1_ps(SK_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SK_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SK_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SK_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SK_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SK_EXP_P5));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, z, r), _mm256_set1_ps(1.0f));
    /* NaN lanes convert to INT_MIN; their p is NaN whatever the scale */
    __m256i n = _mm256_cvtps_epi32(fn);
    __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
#endif

#endif
