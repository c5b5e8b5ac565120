/*
 * sgemm.c: float32 GEMM of the LLVM backend,
 *   y[m][n] = clamp(sum_k a[m][k] * b'(k, n) + bias[n], y_lo, y_hi)
 * with a at run time (row stride lda), b' = alpha * b constant and packed at
 * compile time in panels of 16 columns ([ceil(N/16)][K][16], zero padded),
 * y with row stride ldy.  With ldb > 0, b is instead a run-time row-major
 * matrix (a batched MatMul's operand), read in place with masked loads
 * past column N.
 *
 * Phase 0 prepares work: FP8 weights (w8_type, octk.h) come in the same
 * panels as bytes and are widened into float panels, a task per group of
 * panels (a panel's 16 columns have their 16 scales); with packed b and
 * M > 1, a is copied into panels of SK_MR rows ([ceil(M/6)][K][6], zero
 * padded, after the widened panels), a task per group of panels.  The
 * copy costs M*K moves against M*N*K FMAs and makes the microkernel's
 * broadcasts one contiguous stream: read in place, the 6 rows of a tile
 * are lda apart, and with lda a multiple of 1024 floats (a Llama-shaped
 * model's 2048 or 5632 = 5.5 * 1024) every row's load hits the same L1 set
 * and 4K-aliases the others.  The run-time-b form (ldb > 0: batched
 * MatMul, attention, which pass no work) reads a in place.
 * Phase 1: one task per block of SGEMM_MB rows x SGEMM_NB columns; each
 * block runs the microkernel of scommon.h (6 x 64 with AVX-512, 6 x 16
 * with AVX2) over K blocks of at most SGEMM_KC (FMA, sums in an order
 * fixed by M and K alone).  M = 1 (batch-1 Gemm) takes the same path with one K
 * block: a gemv streaming each packed panel once, the one-row microkernel
 * keeping 4 FMA chains.
 */
#include "octk.h"
#include "scommon.h"

enum {
    SGEMM_MB = 72,    /* rows per task: 12 row tiles share each B panel */
#ifdef __AVX512F__
    SGEMM_NB = 256,   /* columns per task: a kc x 256 slice of B (512 KiB) in L2 */
    SGEMM_KC = 512,   /* K block: the 6-row slice of a (12 KiB) stays in L1, and
                       * y is read back half as often as with SK_KC */
#else
    SGEMM_NB = 64,    /* columns per task: 4 panels, each reused from L1 */
    SGEMM_KC = SK_KC,
#endif
    SGEMM_PACK_TASK = 16384,   /* elements of a copied per phase-0 task (about) */
};

size_t octk_sgemm_packed_b_size(int64_t K, int64_t N)
{
    return (size_t)sk_ceil_div(N, SK_NR) * SK_NR * (size_t)K * sizeof(float);
}

/* Packs alpha * b(k, n) into panels: dst[(n/16)*K*16 + k*16 + n%16]; the
 * product alpha * b is one float multiplication (alpha = 1 is exact). */
void octk_sgemm_pack_b(float *dst, const float *b, float alpha, int64_t K, int64_t N,
                       int64_t stride_k, int64_t stride_n)
{
    const int64_t panels = sk_ceil_div(N, SK_NR);
    for (int64_t j = 0; j < panels; j++) {
        float *panel = dst + j * K * SK_NR;
        for (int64_t k = 0; k < K; k++) {
            for (int64_t c = 0; c < SK_NR; c++) {
                const int64_t n = j * SK_NR + c;
                panel[k * SK_NR + c] = n < N ? alpha * b[k * stride_k + n * stride_n] : 0.0f;
            }
        }
    }
}

size_t octk_sgemm_packed_b8_size(int64_t K, int64_t N)
{
    return (size_t)sk_ceil_div(N, SK_NR) * SK_NR * (size_t)K;
}

/* dst[(n/16)*K*16 + k*16 + n%16] = b(k, n), columns past N 0. */
void octk_sgemm_pack_b8(uint8_t *dst, const uint8_t *b, int64_t K, int64_t N, int64_t stride_k,
                        int64_t stride_n)
{
    const int64_t panels = sk_ceil_div(N, SK_NR);
    for (int64_t j = 0; j < panels; j++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < SK_NR; c++) {
                const int64_t n = j * SK_NR + c;
                dst[(j * K + k) * SK_NR + c] = n < N ? b[k * stride_k + n * stride_n] : 0;
            }
}

int octk_sgemm_tile_cols(void)
{
#ifdef __AVX512F__
    return 64;
#else
    return SK_NR;
#endif
}

/* Is a copied into row panels in work (phase 0)? */
static inline int sgemm_packs_a(const octk_sgemm *p)
{
    return p->ldb <= 0 && p->M > 1 && p->K > 0 && p->N > 0;
}

/* Bytes of work before the packed a: the widened FP8 panels, 64-aligned. */
static inline size_t sgemm_a_offset(const octk_sgemm *p)
{
    return p->w8_type ? (octk_sgemm_packed_b_size(p->K, p->N) + 63) / 64 * 64 : 0;
}

size_t octk_sgemm_work_size(const octk_sgemm *p)
{
    const size_t a_bytes = sgemm_packs_a(p) ? (size_t)sk_ceil_div(p->M, SK_MR) * SK_MR *
                                                  (size_t)p->K * sizeof(float)
                                            : 0;
    return a_bytes ? sgemm_a_offset(p) + a_bytes : sgemm_a_offset(p);
}

static inline int64_t sgemm_row_blocks(const octk_sgemm *p) { return sk_ceil_div(p->M, SGEMM_MB); }
static inline int64_t sgemm_col_blocks(const octk_sgemm *p) { return sk_ceil_div(p->N, SGEMM_NB); }

/* FP8 panels widened per phase-0 task. */
static inline int64_t sgemm_widen_panels(const octk_sgemm *p)
{
    return sk_max64(1, SK_WIDEN_TASK / sk_max64(1, p->K * SK_NR));
}

/* Row panels of a copied per phase-0 task. */
static inline int64_t sgemm_pack_panels(const octk_sgemm *p)
{
    return sk_max64(1, SGEMM_PACK_TASK / sk_max64(1, p->K * SK_MR));
}

static inline int64_t sgemm_widen_tasks(const octk_sgemm *p)
{
    return p->w8_type && p->K > 0 ? sk_ceil_div(sk_ceil_div(p->N, SK_NR), sgemm_widen_panels(p))
                                  : 0;
}

static inline int64_t sgemm_pack_tasks(const octk_sgemm *p)
{
    return sgemm_packs_a(p) ? sk_ceil_div(sk_ceil_div(p->M, SK_MR), sgemm_pack_panels(p)) : 0;
}

int64_t octk_sgemm_tasks(const octk_sgemm *p, int phase)
{
    if (p->M <= 0 || p->N <= 0)
        return 0;
    if (phase == 0)
        return sgemm_widen_tasks(p) + sgemm_pack_tasks(p);
    if (phase != 1)
        return 0;
    return sgemm_row_blocks(p) * sgemm_col_blocks(p);
}

/* Widens FP8 panels [j0, j1) into work (column n's scale; padding 0). */
static void sgemm_widen(const octk_sgemm *p, int64_t j0, int64_t j1)
{
    const int e4m3 = p->w8_type == OCTK_FP8_E4M3FN;
    const int64_t len = p->K * SK_NR;
    for (int64_t j = j0; j < j1; j++) {
        float mult[SK_NR];
        for (int c = 0; c < SK_NR; c++) {
            const int64_t n = j * SK_NR + c;
            mult[c] = n < p->N ? sk_fp8_mult(p->w8_scale[n], e4m3) : 0.0f;
        }
        sk_widen_fp8((float *)p->work + j * len, p->w8 + j * len, len, mult, SK_NR, e4m3);
    }
}

#ifdef __AVX2__
/* v[i] (row i) becomes v[j] (column j) of an 8 x 8 block. */
static inline void sgemm_transpose8(__m256 v[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
    }
    /* u[4h + j], 128-bit lane l: column j + 4l of rows 4h .. 4h + 3 */
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xee);
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xee);
    }
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        v[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}
#endif

/* Copies rows [i0*6, i1*6) of a into row panels: dst[(i*K + k)*6 + r] =
 * a[(i*6 + r)*lda + k], rows past M 0.  8 k at a time as an 8 x 8
 * transpose (rows 6 and 7 zero) whose columns are stored 6 floats apart,
 * each store's 2 extra zeros overwritten by the next and the last one cut
 * to 6: element by element the copy took 60% of a 64 x 10 x 512 product
 * and 7% of 64 x 512 x 512. */
_Static_assert(SK_MR == 6, "sgemm_pack_a transposes the 6 rows of a panel as 8");
static void sgemm_pack_a(const octk_sgemm *p, int64_t i0, int64_t i1)
{
    float *dst = (float *)((char *)p->work + sgemm_a_offset(p));
    const int64_t K = p->K;
    for (int64_t i = i0; i < i1; i++) {
        float *panel = dst + i * K * SK_MR;
        const int nr = (int)sk_min64(SK_MR, p->M - i * SK_MR);
        const float *row[SK_MR];
        for (int r = 0; r < nr; r++)
            row[r] = p->a + (i * SK_MR + r) * p->lda;
        int64_t k = 0;
#ifdef __AVX2__
        for (; k + 8 <= K; k += 8) {
            __m256 v[8];
            for (int r = 0; r < SK_MR; r++)
                v[r] = r < nr ? _mm256_loadu_ps(row[r] + k) : _mm256_setzero_ps();
            v[6] = v[7] = _mm256_setzero_ps();
            sgemm_transpose8(v);
            float *d = panel + k * SK_MR;
            for (int j = 0; j < 7; j++)
                _mm256_storeu_ps(d + j * SK_MR, v[j]);
            _mm_storeu_ps(d + 7 * SK_MR, _mm256_castps256_ps128(v[7]));
            _mm_storel_pi((__m64 *)(d + 7 * SK_MR + 4), _mm256_extractf128_ps(v[7], 1));
        }
#endif
        for (; k < K; k++)
            for (int r = 0; r < SK_MR; r++)
                panel[k * SK_MR + r] = r < nr ? row[r][k] : 0.0f;
    }
}

/* Task t computes rows [mb*MB, ...) x columns [nb*NB, ...) with
 * t = nb * row_blocks + mb (consecutive tasks share the same B columns). */
void octk_sgemm_run(const octk_sgemm *p, int phase, int64_t begin, int64_t end)
{
    if (phase == 0) {
        /* tasks [0, widen_tasks): FP8 panels; then row panels of a */
        const int64_t per = sgemm_widen_panels(p), panels = sk_ceil_div(p->N, SK_NR);
        const int64_t wt = sgemm_widen_tasks(p), aper = sgemm_pack_panels(p);
        const int64_t apanels = sk_ceil_div(p->M, SK_MR);
        for (int64_t t = begin; t < end; t++) {
            if (t < wt)
                sgemm_widen(p, t * per, sk_min64(panels, (t + 1) * per));
            else
                sgemm_pack_a(p, (t - wt) * aper, sk_min64(apanels, (t - wt + 1) * aper));
        }
        return;
    }
    if (phase != 1)
        return;
    sk_mm mm = {
        .M = p->M, .N = p->N, .K = p->K,
        .a = sgemm_packs_a(p) ? (const float *)((const char *)p->work + sgemm_a_offset(p)) : p->a,
        .lda = p->lda, .a_packed = sgemm_packs_a(p),
        .b = p->w8_type ? (const float *)p->work : p->b,
        .ldb = p->ldb > 0 ? p->ldb : SK_NR, .b_packed = p->ldb <= 0,
        .b_masked = p->ldb > 0,
        .y = p->y, .ldy = p->ldy,
        .bias = p->bias, .bias_per_row = 0,
        .lo = p->y_lo, .hi = p->y_hi,
        .kc = p->M == 1 ? sk_max64(1, p->K) : sk_balanced_kc(p->K, SGEMM_KC),
    };
    const int64_t rb = sgemm_row_blocks(p);
    for (int64_t t = begin; t < end; t++) {
        const int64_t mb = t % rb, nb = t / rb;
        const int64_t m0 = mb * SGEMM_MB, n0 = nb * SGEMM_NB;
        sk_mm_block(&mm, m0, sk_min64(p->M, m0 + SGEMM_MB), n0, sk_min64(p->N, n0 + SGEMM_NB));
    }
}
