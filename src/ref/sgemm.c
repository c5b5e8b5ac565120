/*
 * sgemm.c: cache-blocked float32 GEMM (see sgemm.h for the contract).
 *
 * Blocking in the usual three levels: B is packed KC x NC at a time (a
 * panel sized for the L2/L3 cache) into NR-wide column strips, A MC x KC at
 * a time into MR-high row strips; the micro-kernel multiplies one A strip by
 * one B strip, keeping the MR x NR block of C in registers.  Strips are
 * zero-padded to full MR / NR so the kernel always runs its fixed trip
 * counts; a partial tile is written back through a small local buffer.
 */
#include <string.h>

#include "ref/sgemm.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

enum {
    SG_MR = 6,
    SG_NR = 16,
    SG_KC = 256,
    SG_MC = 120, /* multiple of SG_MR */
    SG_NC = 2048, /* multiple of SG_NR */
};

/* Multiplies an MR-row strip of A by an NR-column strip of B over kc terms
 * and writes the mr x nr corner into c (adding to it if acc).  init, when
 * not NULL, holds mr per-row starting values for the accumulators. */
typedef void sg_kernel_fn(int64_t kc, const float *a, const float *b,
                          float *c, int64_t ldc, int mr, int nr, bool acc,
                          const float *init);

static inline int64_t sg_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t sg_roundup(int64_t a, int64_t m)
{
    return (a + m - 1) / m * m;
}

/* Writes the MR x NR tile t into C (mr x nr of it), adding to C if acc. */
static void sg_store_tile(const float t[SG_MR][SG_NR], float *c, int64_t ldc,
                          int mr, int nr, bool acc)
{
    for (int i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        if (acc)
            for (int j = 0; j < nr; j++)
                row[j] += t[i][j];
        else
            for (int j = 0; j < nr; j++)
                row[j] = t[i][j];
    }
}

/* Plain C micro-kernel: a is kc x MR (MR values per k), b is kc x NR. */
static void sg_kernel_portable(int64_t kc, const float *a, const float *b,
                               float *c, int64_t ldc, int mr, int nr, bool acc,
                               const float *init)
{
    float t[SG_MR][SG_NR];
    for (int i = 0; i < SG_MR; i++)
        for (int j = 0; j < SG_NR; j++)
            t[i][j] = init && i < mr ? init[i] : 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        const float *ap = a + p * SG_MR, *bp = b + p * SG_NR;
        for (int i = 0; i < SG_MR; i++) {
            float ai = ap[i];
            for (int j = 0; j < SG_NR; j++)
                t[i][j] += ai * bp[j];
        }
    }
    sg_store_tile((const float(*)[SG_NR])t, c, ldc, mr, nr, acc);
}

#if defined(__AVX2__) && defined(__FMA__)
/* AVX2+FMA micro-kernel: 12 ymm accumulators (6 rows x 2 vectors). */
static void sg_kernel_avx2(int64_t kc, const float *a, const float *b,
                           float *c, int64_t ldc, int mr, int nr, bool acc,
                           const float *init)
{
    float iv[SG_MR] = {0};
    if (init)
        for (int i = 0; i < mr; i++)
            iv[i] = init[i];
    __m256 c00 = _mm256_set1_ps(iv[0]), c01 = c00;
    __m256 c10 = _mm256_set1_ps(iv[1]), c11 = c10;
    __m256 c20 = _mm256_set1_ps(iv[2]), c21 = c20;
    __m256 c30 = _mm256_set1_ps(iv[3]), c31 = c30;
    __m256 c40 = _mm256_set1_ps(iv[4]), c41 = c40;
    __m256 c50 = _mm256_set1_ps(iv[5]), c51 = c50;
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 av;
        av = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
        a += SG_MR;
        b += SG_NR;
    }
    if (mr == SG_MR && nr == SG_NR) {
        __m256 r[SG_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                              {c30, c31}, {c40, c41}, {c50, c51}};
        for (int i = 0; i < SG_MR; i++) {
            float *row = c + i * ldc;
            if (acc) {
                r[i][0] = _mm256_add_ps(r[i][0], _mm256_loadu_ps(row));
                r[i][1] = _mm256_add_ps(r[i][1], _mm256_loadu_ps(row + 8));
            }
            _mm256_storeu_ps(row, r[i][0]);
            _mm256_storeu_ps(row + 8, r[i][1]);
        }
        return;
    }
    float t[SG_MR][SG_NR];
    _mm256_storeu_ps(t[0], c00);
    _mm256_storeu_ps(t[0] + 8, c01);
    _mm256_storeu_ps(t[1], c10);
    _mm256_storeu_ps(t[1] + 8, c11);
    _mm256_storeu_ps(t[2], c20);
    _mm256_storeu_ps(t[2] + 8, c21);
    _mm256_storeu_ps(t[3], c30);
    _mm256_storeu_ps(t[3] + 8, c31);
    _mm256_storeu_ps(t[4], c40);
    _mm256_storeu_ps(t[4] + 8, c41);
    _mm256_storeu_ps(t[5], c50);
    _mm256_storeu_ps(t[5] + 8, c51);
    sg_store_tile((const float(*)[SG_NR])t, c, ldc, mr, nr, acc);
}
#define SG_FAST_KERNEL sg_kernel_avx2
#else
#define SG_FAST_KERNEL sg_kernel_portable
#endif

/* Packs rows [0, mc) x cols [0, kc) of A (already offset to the block) into
 * MR-row strips: strip s holds, for each k, MR consecutive values. */
static void sg_pack_a(int64_t mc, int64_t kc, ref_fmat A, float *dst)
{
    for (int64_t i0 = 0; i0 < mc; i0 += SG_MR) {
        int rows = (int)sg_min(SG_MR, mc - i0);
        const float *src = A.p + i0 * A.rs;
        if (A.cs == 1) {
            for (int64_t p = 0; p < kc; p++) {
                int i = 0;
                for (; i < rows; i++)
                    dst[p * SG_MR + i] = src[i * A.rs + p];
                for (; i < SG_MR; i++)
                    dst[p * SG_MR + i] = 0.0f;
            }
        } else {
            for (int64_t p = 0; p < kc; p++) {
                int i = 0;
                for (; i < rows; i++)
                    dst[p * SG_MR + i] = src[i * A.rs + p * A.cs];
                for (; i < SG_MR; i++)
                    dst[p * SG_MR + i] = 0.0f;
            }
        }
        dst += kc * SG_MR;
    }
}

/* Packs rows [0, kc) x cols [0, nc) of B into NR-column strips: strip s
 * holds, for each k, NR consecutive values. */
static void sg_pack_b(int64_t kc, int64_t nc, ref_fmat B, float *dst)
{
    for (int64_t j0 = 0; j0 < nc; j0 += SG_NR) {
        int cols = (int)sg_min(SG_NR, nc - j0);
        const float *src = B.p + j0 * B.cs;
        for (int64_t p = 0; p < kc; p++) {
            float *d = dst + p * SG_NR;
            const float *s = src + p * B.rs;
            int j = 0;
            if (B.cs == 1) {
                if (cols == SG_NR) {
                    memcpy(d, s, SG_NR * sizeof *d);
                    continue;
                }
                for (; j < cols; j++)
                    d[j] = s[j];
            } else {
                for (; j < cols; j++)
                    d[j] = s[j * B.cs];
            }
            for (; j < SG_NR; j++)
                d[j] = 0.0f;
        }
        dst += kc * SG_NR;
    }
}

oct_status ref_sgemm_with(oct_ctx *ctx, ref_sgemm_kernel kernel, int64_t M,
                          int64_t N, int64_t K, ref_fmat A, ref_fmat B,
                          float *C, int64_t ldc, bool accumulate,
                          const float *row_bias)
{
    OCT_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0)
        return OCT_OK;
    if (K == 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                C[i * ldc + j] = (accumulate ? C[i * ldc + j] : 0.0f) +
                                 (row_bias ? row_bias[i] : 0.0f);
        return OCT_OK;
    }
    sg_kernel_fn *kern = kernel == REF_SGEMM_PORTABLE ? sg_kernel_portable
                                                      : SG_FAST_KERNEL;
    int64_t kc_max = sg_min(K, SG_KC);
    size_t a_elems = (size_t)(sg_roundup(sg_min(M, SG_MC), SG_MR) * kc_max);
    size_t b_elems = (size_t)(kc_max * sg_roundup(sg_min(N, SG_NC), SG_NR));
    size_t bytes = (a_elems + b_elems) * sizeof(float);
    float *pa = oct_malloc(ctx, bytes);
    if (!pa)
        return OCT_EINTERNAL;
    float *pb = pa + a_elems;

    for (int64_t jc = 0; jc < N; jc += SG_NC) {
        int64_t nc = sg_min(SG_NC, N - jc);
        for (int64_t pc = 0; pc < K; pc += SG_KC) {
            int64_t kc = sg_min(SG_KC, K - pc);
            bool acc = accumulate || pc > 0;
            ref_fmat Bblk = {B.p + pc * B.rs + jc * B.cs, B.rs, B.cs};
            sg_pack_b(kc, nc, Bblk, pb);
            for (int64_t ic = 0; ic < M; ic += SG_MC) {
                int64_t mc = sg_min(SG_MC, M - ic);
                ref_fmat Ablk = {A.p + ic * A.rs + pc * A.cs, A.rs, A.cs};
                sg_pack_a(mc, kc, Ablk, pa);
                for (int64_t jr = 0; jr < nc; jr += SG_NR) {
                    int nr = (int)sg_min(SG_NR, nc - jr);
                    for (int64_t ir = 0; ir < mc; ir += SG_MR) {
                        int mr = (int)sg_min(SG_MR, mc - ir);
                        const float *init =
                            row_bias && pc == 0 ? row_bias + ic + ir : NULL;
                        kern(kc, pa + ir * kc, pb + jr * kc,
                             C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, acc,
                             init);
                    }
                }
            }
        }
    }
    oct_free(ctx, pa, bytes);
    return OCT_OK;
}

oct_status ref_sgemm(oct_ctx *ctx, int64_t M, int64_t N, int64_t K,
                     ref_fmat A, ref_fmat B, float *C, int64_t ldc,
                     bool accumulate, const float *row_bias)
{
    return ref_sgemm_with(ctx, REF_SGEMM_FAST, M, N, K, A, B, C, ldc,
                          accumulate, row_bias);
}
