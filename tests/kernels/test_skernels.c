/*
 * test_skernels.c: the float32 GEMM and convolution kernels of octk.h
 * (sgemm, sconv, sdwconv; the element-wise ones are in
 * test_skernels_eltwise.c) against plain scalar twins written here
 * straight from their definitions, accumulating in double.
 *
 * Tolerance: |y - ref| <= 1e-5 * max(1, max|ref|).  Every kernel is also
 * run with its task range split in several ways (one call, one task at a
 * time in random order, random pieces from the end), which must give
 * identical bytes, with the work buffer filled with garbage first
 * (skernel_twins.h).  Sizes are awkward on purpose: they leave remainders
 * in every blocking of the kernels.
 *
 * FP8 weights (w8_type): the widened weight must be exactly
 * (float)value(code) * scale, value from the format's definition (fp8_twin);
 * kernels that pass every code through unchanged (1 x w + 0 x finite) show
 * each widened weight, for all 256 codes of E5M2 and the 254 non-NaN codes
 * of E4M3FN, on the vector and the remainder paths of the widening.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skernel_twins.h"

static double clampd(double v, float lo, float hi)
{
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return v;
}

static const float clamp_lo[3] = {-INFINITY, 0.0f, 0.0f};
static const float clamp_hi[3] = {INFINITY, INFINITY, 6.0f};   /* none, Relu, Clip 0..6 */

/* ---- FP8 weights ------------------------------------------------------------ */

/* The value of FP8 code b from the format's definition: E4M3FN has bias 7,
 * 3 mantissa bits, S.1111.111 NaN and no Inf; E5M2 bias 15, 2 mantissa
 * bits, exponent 31 Inf (mantissa 0) or NaN. */
static double fp8_value(uint8_t b, int type)
{
    const int e4 = type == OCTK_FP8_E4M3FN, mbits = e4 ? 3 : 2, bias = e4 ? 7 : 15;
    const int e = (b & 0x7f) >> mbits, m = b & ((1 << mbits) - 1);
    const double sign = (b & 0x80) ? -1.0 : 1.0;
    if (e4 && (b & 0x7f) == 0x7f)
        return NAN;
    if (!e4 && e == 31)
        return m ? NAN : sign * INFINITY;
    if (e == 0)
        return sign * ldexp(m, 1 - bias - mbits);
    return sign * ldexp((1 << mbits) + m, e - bias - mbits);
}

/* DequantizeLinear of one code: the exact value times scale, one float32
 * multiplication. */
static float fp8_twin(uint8_t b, int type, float scale)
{
    return (float)fp8_value(b, type) * scale;
}

/* The codes the kernels accept: all 256 for E5M2 (or its finite ones),
 * all but the NaN codes 0x7f and 0xff for E4M3FN.  Returns their count. */
static int fp8_codes(int type, int finite_only, uint8_t *codes)
{
    int n = 0;
    for (int b = 0; b < 256; b++)
        if (type == OCTK_FP8_E5M2 ? !finite_only || isfinite(fp8_value((uint8_t)b, type))
                                  : (b & 0x7f) != 0x7f)
            codes[n++] = (uint8_t)b;
    return n;
}

/* Largest finite magnitude of type. */
static float fp8_max(int type)
{
    return type == OCTK_FP8_E4M3FN ? 448.0f : 57344.0f;
}

/* A random code of type with a finite value. */
static uint8_t fp8_random_finite(rng *r, int type)
{
    for (;;) {
        const uint8_t b = (uint8_t)rng_below(r, 256);
        if (isfinite(fp8_value(b, type)))
            return b;
    }
}

/* A widened weight must be its twin exactly (NaN for NaN; +0 and -0 are
 * not told apart: a sum of 0 and -0 is +0). */
static void check_widened(const char *what, int64_t idx, float got, float want)
{
    if (isnan(want) ? isnan(got) : got == want)
        return;
    fprintf(stderr, "%s[%lld]: got %.9g want %.9g\n", what, (long long)idx, (double)got,
            (double)want);
    fail();
}

/* Scales of the widening tests: 1, an ordinary one, one just above
 * FLT_MIN (small codes give subnormal products, rounded), one that makes
 * the largest codes overflow to Inf (last: the designs that sum a widened
 * weight with 0 x the others skip it, 0 x Inf being NaN); scale * 256 stays
 * finite and normal.  Scale -1 stands for random scales per output channel. */
static const float fp8_scales[] = {1.0f, 0.3712f, 1.37e-38f, -1.0f, 1e36f};
enum { FP8_N_SCALES = sizeof fp8_scales / sizeof fp8_scales[0] };

/* n per-channel scales: all fp8_scales[si], or random in [0.01, 10). */
static float *fp8_scale_vec(rng *r, int si, int64_t n)
{
    float *s = rand_vec(r, (size_t)n, 0.01f, 10.0f);
    for (int64_t i = 0; fp8_scales[si] > 0 && i < n; i++)
        s[i] = fp8_scales[si];
    return s;
}

static const int fp8_types[2] = {OCTK_FP8_E4M3FN, OCTK_FP8_E5M2};

/* ---- sgemm ------------------------------------------------------------------- */

static int64_t sgemm_tasks_v(const void *p, int ph) { return octk_sgemm_tasks(p, ph); }
static void sgemm_run_v(const void *p, int ph, int64_t b, int64_t e) { octk_sgemm_run(p, ph, b, e); }
static const kernel_ops sgemm_ops = {sgemm_tasks_v, sgemm_run_v};

/* One Gemm case: y[m][n] = clamp(sum_k a[m][k] * alpha * b(k, n) + bias[n]).
 * With w8_type, b is random finite FP8 codes times per-column scales
 * (alpha must be 1) and the kernel widens them. */
/* Row strides lda >= K, ldy >= N.  Tolerance: with k_bound, the a-priori
 * bound of a float sum, per element: the packed weight alpha * b rounds
 * once, each of the K products enters by one FMA, each K block's partial
 * sum is added to y once and the bias once, so every term meets at most
 * K + 3 roundings of relative size u = 2^-24 and
 *   |y - ref| <= (K + 3) u (sum_k |a b alpha| + |bias|)   (+ 1e-37)
 * whatever the order of the sums (clamping only shrinks the error); a
 * missed, doubled or misplaced term is far larger.  Otherwise
 * 1e-5 * max(1, max|ref|). */
static void sgemm_case_ld(rng *r, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldy,
                          int trans_b, float alpha, int with_bias, int act, int w8_type,
                          int k_bound)
{
    float *a = rand_vec(r, (size_t)(M * lda), -1, 1);
    float *b = rand_vec(r, (size_t)(K * N), -1, 1);
    float *bias = with_bias ? rand_vec(r, (size_t)N, -2, 2) : NULL;
    const int64_t stride_k = trans_b ? 1 : N, stride_n = trans_b ? K : 1;
    float *pb = aligned_buf(octk_sgemm_packed_b_size(K, N));
    octk_sgemm_pack_b(pb, b, alpha, K, N, stride_k, stride_n);
    uint8_t *codes = NULL, *pb8 = NULL;
    float *w8_scale = NULL;
    if (w8_type) {
        assert_true(alpha == 1.0f);
        codes = exact_buf((size_t)(K * N));
        /* weights of magnitude at most 1, as in the float cases */
        w8_scale = rand_vec(r, (size_t)N, 0.5f / fp8_max(w8_type), 1.0f / fp8_max(w8_type));
        for (int64_t k = 0; k < K; k++)
            for (int64_t n = 0; n < N; n++) {
                const int64_t i = k * stride_k + n * stride_n;
                codes[i] = fp8_random_finite(r, w8_type);
                b[i] = fp8_twin(codes[i], w8_type, w8_scale[n]);
            }
        pb8 = aligned_buf(octk_sgemm_packed_b8_size(K, N));
        octk_sgemm_pack_b8(pb8, codes, K, N, stride_k, stride_n);
        memset(pb, 0xff, octk_sgemm_packed_b_size(K, N));   /* must not be read */
    }
    const size_t y_bytes = (size_t)(M * ldy) * sizeof(float);
    float *y = exact_buf(y_bytes);
    octk_sgemm p = {.M = M, .N = N, .K = K, .lda = lda, .ldy = ldy, .y_lo = clamp_lo[act],
                    .y_hi = clamp_hi[act], .a = a, .y = y, .b = pb, .bias = bias,
                    .w8_type = w8_type, .w8 = pb8, .w8_scale = w8_scale};
    const size_t work_bytes = octk_sgemm_work_size(&p);
    p.work = aligned_buf(work_bytes);
    run_all_splits(&sgemm_ops, &p, p.work, work_bytes, y, y_bytes, r);

    double *ref = malloc((size_t)(M * N) * sizeof(double));
    assert_non_null(ref);
    double *bound = malloc((size_t)(M * N) * sizeof(double));
    assert_non_null(ref);
    assert_non_null(bound);
    double scale = 1.0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double acc = bias ? bias[n] : 0.0, mag = fabs(acc);
            for (int64_t k = 0; k < K; k++) {
                const double t = (double)a[m * lda + k] * (double)alpha *
                                 (double)b[k * stride_k + n * stride_n];
                acc += t;
                mag += fabs(t);
            }
            ref[m * N + n] = clampd(acc, clamp_lo[act], clamp_hi[act]);
            bound[m * N + n] = (double)(K + 3) * 0x1p-24 * mag + 1e-37;
            scale = fmax(scale, fabs(ref[m * N + n]));
        }
    uint32_t pattern;
    memset(&pattern, 0x7f, sizeof pattern);
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++)
            check_close("sgemm", m * N + n, y[m * ldy + n], ref[m * N + n],
                        k_bound ? bound[m * N + n] : 1e-5 * scale);
        for (int64_t n = N; n < ldy; n++) {   /* the row gaps stay untouched */
            uint32_t bits;
            memcpy(&bits, &y[m * ldy + n], sizeof bits);
            assert_int_equal(bits, pattern);
        }
    }
    free(ref), free(bound), free(a), free(b), free(bias), free(pb), free(y), free(p.work);
    free(codes), free(pb8), free(w8_scale);
}

static void sgemm_case_w8(rng *r, int64_t M, int64_t N, int64_t K, int64_t lda_extra,
                          int64_t ldy_extra, int trans_b, float alpha, int with_bias, int act,
                          int w8_type)
{
    sgemm_case_ld(r, M, N, K, K + lda_extra, N + ldy_extra, trans_b, alpha, with_bias, act,
                  w8_type, 0);
}

static void sgemm_case(rng *r, int64_t M, int64_t N, int64_t K, int64_t lda_extra,
                       int64_t ldy_extra, int trans_b, float alpha, int with_bias, int act)
{
    sgemm_case_w8(r, M, N, K, lda_extra, ldy_extra, trans_b, alpha, with_bias, act,
                  OCTK_FP8_NONE);
}

static void sgemm_matches_twin_on_awkward_shapes(void **state)
{
    (void)state;
    rng r = {0x5eed0001u};
    static const int64_t sizes[] = {1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 65, 100};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    int case_no = 0;
    for (int im = 0; im < ns; im++)
        for (int in = 0; in < ns; in++) {
            /* a few K per (M, N) pair, cycling through the options */
            for (int rep = 0; rep < 2; rep++, case_no++) {
                const int64_t K = sizes[(im * 5 + in * 3 + rep * 7) % ns];
                sgemm_case(&r, sizes[im], sizes[in], K, case_no % 3 == 0 ? 0 : 3,
                           case_no % 4 == 1 ? 0 : 5, case_no % 5 == 2, case_no % 2 ? 1.0f : -0.75f,
                           case_no % 3 != 1, case_no % 3);
            }
        }
}

/* The microkernel of the kernel library linked in (native, AVX2 alone for
 * NAME_avx2, baseline for NAME_generic). */
static const char *sgemm_path(void)
{
    return octk_sgemm_tile_cols() == 64 ? "AVX-512 6 x 64"
           : (octk_build_isa() & OCTK_ISA_AVX2) ? "AVX2 6 x 16" : "baseline 6 x 16";
}

/* Every (M, N, K) of an awkward set (remainders of the 6-row tiles, the 16-
 * and 64-column strips and the K blocks), both layouts of b, row strides
 * wider than the rows, including lda = 2048 and 5632 (the Llama-shaped
 * model's, whose rows alias in L1 and in the 4K store buffer check) and
 * K past one K block, against the double reference within the K-derived
 * bound of sgemm_case_ld. */
static void sgemm_matches_double_reference_within_k_bound(void **state)
{
    (void)state;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f"))
        printf("note: this CPU lacks avx512f; the AVX-512 6 x 64 path is not exercised, "
               "only the %s one\n", sgemm_path());
#endif
    printf("sgemm microkernel of this build: %s\n", sgemm_path());
    rng r = {0x5eed0512u};
    static const int64_t sizes[] = {1, 3, 17, 31, 33, 64, 130};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    int case_no = 0;
    for (int im = 0; im < ns; im++)
        for (int in = 0; in < ns; in++)
            for (int ik = 0; ik < ns; ik++, case_no++) {
                const int64_t M = sizes[im], N = sizes[in], K = sizes[ik];
                const int64_t lda = case_no % 4 == 0 ? 2048 : K + case_no % 3;
                sgemm_case_ld(&r, M, N, K, lda, N + case_no % 2 * 5, case_no % 2,
                              case_no % 3 ? 1.0f : -0.75f, case_no % 5 != 0, case_no % 3 == 2,
                              OCTK_FP8_NONE, 1);
            }
    /* several K blocks, strips and row blocks; lda = 5632 */
    sgemm_case_ld(&r, 130, 200, 600, 5632, 200, 0, 1.0f, 1, 0, OCTK_FP8_NONE, 1);
    sgemm_case_ld(&r, 77, 130, 2048, 2048, 131, 1, 1.0f, 0, 0, OCTK_FP8_NONE, 1);
    sgemm_case_ld(&r, 150, 64, 257, 2048, 64, 1, 0.5f, 1, 1, OCTK_FP8_NONE, 1);
}

static void sgemm_long_k_accumulates_over_k_blocks(void **state)
{
    (void)state;
    rng r = {0x5eed0002u};
    sgemm_case(&r, 13, 37, 600, 1, 2, 0, 0.5f, 1, 0);
    sgemm_case(&r, 65, 33, 257, 0, 0, 1, 2.0f, 1, 2);
    sgemm_case(&r, 6, 16, 1000, 0, 0, 0, 1.0f, 0, 1);
    sgemm_case(&r, 4, 5, 0, 0, 1, 0, 1.0f, 1, 2);   /* K = 0: y = clamp(bias) */
}

static void sgemm_batch1_gemv_matches_twin(void **state)
{
    (void)state;
    rng r = {0x5eed0003u};
    sgemm_case(&r, 1, 1000, 1024, 0, 0, 1, 1.0f, 1, 0);
    sgemm_case(&r, 1, 17, 333, 0, 7, 0, -1.25f, 0, 1);
    sgemm_case(&r, 1, 1, 1, 0, 0, 0, 3.0f, 1, 2);
    sgemm_case(&r, 2, 129, 515, 4, 0, 0, 1.0f, 1, 0);
}

/* b unpacked at run time (ldb > 0, a batched MatMul's operand): row-major
 * with row stride ldb >= N; the gaps past column N hold NaN (a read that
 * reached the sums would show) and the buffer ends right after column N-1
 * of the last row (ASan sees any read past it). */
static void sgemm_unpacked_b_case(rng *r, int64_t M, int64_t N, int64_t K, int64_t ldb)
{
    float *a = rand_vec(r, (size_t)(M * K), -1, 1);
    const size_t b_elems = (size_t)(K > 0 ? (K - 1) * ldb + N : 1);
    float *b = exact_buf(b_elems * sizeof(float));
    for (size_t i = 0; i < b_elems; i++)
        b[i] = (int64_t)(i % (size_t)ldb) < N ? rng_float(r, -1, 1) : NAN;
    const size_t y_bytes = (size_t)(M * N) * sizeof(float);
    float *y = exact_buf(y_bytes);
    octk_sgemm p = {.M = M, .N = N, .K = K, .lda = K, .ldy = N, .y_lo = -INFINITY,
                    .y_hi = INFINITY, .a = a, .y = y, .b = b, .ldb = ldb};
    const size_t work_bytes = octk_sgemm_work_size(&p);
    p.work = aligned_buf(work_bytes);
    run_all_splits(&sgemm_ops, &p, p.work, work_bytes, y, y_bytes, r);
    double scale = 1.0, *ref = malloc((size_t)(M * N) * sizeof(double));
    assert_non_null(ref);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)a[m * K + k] * (double)b[k * ldb + n];
            ref[m * N + n] = acc;
            scale = fmax(scale, fabs(acc));
        }
    for (int64_t i = 0; i < M * N; i++)
        check_close("sgemm unpacked b", i, y[i], ref[i], 1e-5 * scale);
    free(ref), free(a), free(b), free(y), free(p.work);
}

static void sgemm_unpacked_b_matches_twin(void **state)
{
    (void)state;
    rng r = {0x5eed0013u};
    static const int64_t sizes[] = {1, 5, 16, 17, 40};
    for (int im = 0; im < 5; im++)
        for (int in = 0; in < 5; in++) {
            sgemm_unpacked_b_case(&r, sizes[im], sizes[in], 7 + 9 * im, sizes[in]);
            sgemm_unpacked_b_case(&r, sizes[im], sizes[in], 33, sizes[in] + 3);
        }
    sgemm_unpacked_b_case(&r, 75, 70, 300, 70);   /* several K blocks and tasks */
}

static void sgemm_clamp_keeps_nan_and_saturates(void **state)
{
    (void)state;
    /* 1 x 2 x 1: y = a * b; a = NaN gives NaN through Relu; 100 clips to 6 */
    float a[2] = {NAN, 100.0f}, b[2] = {1.0f, -1.0f};
    float *pb = aligned_buf(octk_sgemm_packed_b_size(1, 2));
    octk_sgemm_pack_b(pb, b, 1.0f, 1, 2, 2, 1);
    float y[4];
    octk_sgemm p = {.M = 2, .N = 2, .K = 1, .lda = 1, .ldy = 2, .y_lo = 0, .y_hi = 6,
                    .a = a, .y = y, .b = pb};
    p.work = aligned_buf(octk_sgemm_work_size(&p) + 1);   /* phase 0 copies a */
    run_split(&sgemm_ops, &p, SPLIT_ONE_CALL, NULL);
    assert_true(isnan(y[0]) && isnan(y[1]));
    assert_true(y[2] == 6.0f && y[3] == 0.0f);
    free(p.work);
    free(pb);
}

/* y = a x b with b widened from FP8 codes and a = identity (M = K rows;
 * K = 1: a = [1]): y[m][n] is the widened b(m, n) exactly.  codes[i] goes
 * to b(k, n) with i = n * K + k, cycling through the n_codes codes. */
static void sgemm_w8_shows_each_weight(rng *r, int type, const uint8_t *codes, int n_codes,
                                       int64_t K, int si)
{
    const int64_t N = (n_codes + K - 1) / K;
    uint8_t *b8 = exact_buf((size_t)(K * N));
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            b8[k * N + n] = codes[(n * K + k) % n_codes];
    float *scale = fp8_scale_vec(r, si, N), *a = exact_buf((size_t)(K * K) * sizeof(float));
    for (int64_t i = 0; i < K * K; i++)
        a[i] = i % (K + 1) == 0 ? 1.0f : 0.0f;
    uint8_t *pb8 = aligned_buf(octk_sgemm_packed_b8_size(K, N));
    octk_sgemm_pack_b8(pb8, b8, K, N, N, 1);
    const size_t y_bytes = (size_t)(K * N) * sizeof(float);
    float *y = exact_buf(y_bytes);
    octk_sgemm p = {.M = K, .N = N, .K = K, .lda = K, .ldy = N, .y_lo = -INFINITY,
                    .y_hi = INFINITY, .a = a, .y = y, .w8_type = type, .w8 = pb8,
                    .w8_scale = scale};
    const size_t work_bytes = octk_sgemm_work_size(&p);
    p.work = aligned_buf(work_bytes);
    run_all_splits(&sgemm_ops, &p, p.work, work_bytes, y, y_bytes, r);
    for (int64_t i = 0; i < K * N; i++)
        check_widened("sgemm w8", i, y[i], fp8_twin(b8[i], type, scale[i % N]));
    free(b8), free(scale), free(a), free(pb8), free(y), free(p.work);
}

static void sgemm_fp8_widening_matches_twin_for_every_code(void **state)
{
    (void)state;
    rng r = {0x5eed0011u};
    uint8_t all[256], finite[256];
    for (int t = 0; t < 2; t++) {
        const int n_all = fp8_codes(fp8_types[t], 0, all);
        const int n_finite = fp8_codes(fp8_types[t], 1, finite);
        assert_int_equal(n_all, t ? 256 : 254);
        for (int si = 0; si < FP8_N_SCALES; si++) {
            sgemm_w8_shows_each_weight(&r, fp8_types[t], all, n_all, 1, si);
            if (si < FP8_N_SCALES - 1)
                sgemm_w8_shows_each_weight(&r, fp8_types[t], finite, n_finite, 7, si);
        }
    }
}

static void sgemm_fp8_weights_match_twin_on_awkward_shapes(void **state)
{
    (void)state;
    rng r = {0x5eed0012u};
    static const int64_t shapes[][3] = {   /* M, N, K */
        {1, 1, 1}, {7, 5, 13}, {1, 1000, 300}, {13, 37, 600}, {65, 33, 257}, {2, 17, 3},
        {100, 16, 31}, {3, 0, 5}, {4, 5, 0}};
    int case_no = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 0; t < 2; t++, case_no++)
            sgemm_case_w8(&r, shapes[i][0], shapes[i][1], shapes[i][2], case_no % 3 ? 3 : 0,
                          case_no % 4 == 1 ? 0 : 5, case_no % 5 == 2, 1.0f, case_no % 3 != 1,
                          case_no % 3, fp8_types[t]);
}

/* ---- sconv ------------------------------------------------------------------- */

static int64_t sconv_tasks_v(const void *p, int ph) { return octk_sconv_tasks(p, ph); }
static void sconv_run_v(const void *p, int ph, int64_t b, int64_t e) { octk_sconv_run(p, ph, b, e); }
static const kernel_ops sconv_ops = {sconv_tasks_v, sconv_run_v};
static int64_t sdw_tasks_v(const void *p, int ph) { return octk_sdwconv_tasks(p, ph); }
static void sdw_run_v(const void *p, int ph, int64_t b, int64_t e) { octk_sdwconv_run(p, ph, b, e); }
static const kernel_ops sdw_ops = {sdw_tasks_v, sdw_run_v};

typedef struct conv_case {
    int64_t C, H, W, M, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
    int with_bias, act;
} conv_case;

static octk_conv_shape conv_shape(const conv_case *c)
{
    octk_conv_shape s = {.C = c->C, .H = c->H, .W = c->W, .M = c->M, .KH = c->KH, .KW = c->KW,
                         .SH = c->SH, .SW = c->SW, .DH = c->DH, .DW = c->DW, .PT = c->PT,
                         .PL = c->PL};
    s.OH = (c->H + c->PT + c->PB - c->DH * (c->KH - 1) - 1) / c->SH + 1;
    s.OW = (c->W + c->PL + c->PR - c->DW * (c->KW - 1) - 1) / c->SW + 1;
    return s;
}

/* The twin, from the definition: y[m][oh][ow] = clamp(bias[m] + sum over
 * (c, kh, kw) of w * x[c][ih][iw], padding = 0), w[m][c][kh][kw], or for
 * depthwise (C == M) channel m alone with w[m][kh][kw]. */
static double conv_ref(const octk_conv_shape *s, const float *x, const float *w,
                       const float *bias, int depthwise, int64_t m, int64_t oh, int64_t ow)
{
    double acc = bias ? bias[m] : 0.0;
    const int64_t c0 = depthwise ? m : 0, c1 = depthwise ? m + 1 : s->C;
    for (int64_t c = c0; c < c1; c++)
        for (int64_t kh = 0; kh < s->KH; kh++)
            for (int64_t kw = 0; kw < s->KW; kw++) {
                const int64_t ih = oh * s->SH - s->PT + kh * s->DH;
                const int64_t iw = ow * s->SW - s->PL + kw * s->DW;
                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
                    continue;
                const int64_t wi = depthwise ? (m * s->KH + kh) * s->KW + kw
                                             : ((m * s->C + c) * s->KH + kh) * s->KW + kw;
                acc += (double)w[wi] * (double)x[(c * s->H + ih) * s->W + iw];
            }
    return acc;
}

/* One convolution against conv_ref.  With w8_type the weights are random
 * finite FP8 codes times per-channel scales, widened by the kernel. */
static void conv_run_case_w8(rng *r, const conv_case *cc, int depthwise, int w8_type)
{
    const octk_conv_shape s = conv_shape(cc);
    const int64_t taps = s.KH * s.KW, K = depthwise ? taps : s.C * taps, P = s.OH * s.OW;
    float *x = rand_vec(r, (size_t)(s.C * s.H * s.W), -1, 1);
    float *w = rand_vec(r, (size_t)(s.M * K), -1, 1);
    float *bias = cc->with_bias ? rand_vec(r, (size_t)s.M, -1, 1) : NULL;
    uint8_t *codes = NULL, *pw8 = NULL;
    float *w8_scale = NULL;
    if (w8_type) {
        codes = exact_buf((size_t)(s.M * K));
        w8_scale = rand_vec(r, (size_t)s.M, 0.5f / fp8_max(w8_type), 1.0f / fp8_max(w8_type));
        for (int64_t i = 0; i < s.M * K; i++) {
            codes[i] = fp8_random_finite(r, w8_type);
            w[i] = fp8_twin(codes[i], w8_type, w8_scale[i / K]);
        }
        pw8 = aligned_buf(depthwise ? octk_sdwconv_packed_w8_size(s.C, taps)
                                    : octk_sconv_packed_w8_size(s.M, K));
        if (depthwise)
            octk_sdwconv_pack_w8(pw8, codes, s.C, taps);
        else
            octk_sconv_pack_w8(pw8, codes, s.M, K);
    }
    float *pw;
    if (depthwise) {
        pw = aligned_buf(octk_sdwconv_packed_w_size(s.C, taps));
        octk_sdwconv_pack_w(pw, w, s.C, taps);
    } else {
        pw = aligned_buf(octk_sconv_packed_w_size(s.M, K));
        octk_sconv_pack_w(pw, w, s.M, K);
    }
    if (w8_type)   /* the float weights must not be read */
        memset(pw, 0xff, depthwise ? octk_sdwconv_packed_w_size(s.C, taps)
                                   : octk_sconv_packed_w_size(s.M, K));
    const size_t y_bytes = (size_t)(s.M * P) * sizeof(float);
    float *y = exact_buf(y_bytes);
    octk_sconv p = {.s = s, .y_lo = clamp_lo[cc->act], .y_hi = clamp_hi[cc->act], .x = x,
                    .y = y, .w = pw, .bias = bias, .w8_type = w8_type, .w8 = pw8,
                    .w8_scale = w8_scale};
    const size_t work_bytes = depthwise ? octk_sdwconv_work_size(&p) : octk_sconv_work_size(&p);
    p.work = aligned_buf(work_bytes);
    run_all_splits(depthwise ? &sdw_ops : &sconv_ops, &p, p.work, work_bytes, y, y_bytes, r);

    double *ref = malloc((size_t)(s.M * P) * sizeof(double));
    assert_non_null(ref);
    double scale = 1.0;
    for (int64_t m = 0; m < s.M; m++)
        for (int64_t q = 0; q < P; q++) {
            const double v = conv_ref(&s, x, w, bias, depthwise, m, q / s.OW, q % s.OW);
            ref[m * P + q] = clampd(v, clamp_lo[cc->act], clamp_hi[cc->act]);
            scale = fmax(scale, fabs(ref[m * P + q]));
        }
    for (int64_t i = 0; i < s.M * P; i++)
        check_close(depthwise ? "sdwconv" : "sconv", i, y[i], ref[i], 1e-5 * scale);
    free(ref), free(x), free(w), free(bias), free(pw), free(y), free(p.work);
    free(codes), free(pw8), free(w8_scale);
}

static void conv_run_case(rng *r, const conv_case *cc, int depthwise)
{
    conv_run_case_w8(r, cc, depthwise, OCTK_FP8_NONE);
}

/* C, H, W, M, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR, bias, act */
static const conv_case conv_cases[] = {
    {3, 7, 7, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0},        /* 1x1: x read in place */
    {64, 16, 16, 17, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},    /* 1x1, P = 256: x copied */
    {300, 5, 5, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 2},      /* 1x1 in place, 2 K blocks */
    {5, 15, 17, 7, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1, 0},      /* 1x1 stride 2 */
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0},
    {3, 17, 17, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1},
    {7, 15, 31, 33, 3, 3, 2, 2, 1, 1, 1, 0, 0, 1, 1, 2},     /* asymmetric pads */
    {2, 33, 33, 6, 5, 5, 1, 1, 2, 2, 2, 3, 3, 2, 1, 1},      /* dilation 2 */
    {16, 5, 31, 65, 1, 7, 1, 1, 1, 1, 0, 3, 0, 3, 1, 0},     /* 1x7 */
    {33, 31, 31, 100, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},   /* K = 297: 2 K blocks */
    {2, 3, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 1, 2},        /* rows all padding */
    {4, 63, 2, 2, 3, 3, 2, 1, 1, 1, 1, 0, 1, 1, 0, 0},
    {1, 65, 65, 31, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 1, 1},
    /* im2col rows by 16-column masked loads (AVX-512, stride 1): 14 wide
     * (mnist-8), exactly 16, pads wider than the kernel */
    {8, 14, 14, 16, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1},
    {3, 4, 16, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
    {2, 5, 40, 5, 3, 3, 1, 1, 1, 1, 0, 4, 0, 4, 1, 0},
    /* im2col rows as shifted planes (stride 1, OW == W), both by row and
     * 16 positions down many rows (AVX-512): rows narrower than a vector,
     * dilation 2 with pads of 2 (ultraface's), pads on one side only */
    {16, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {8, 6, 12, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 0},
    {3, 10, 21, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 0, 2},
    {8, 7, 10, 5, 3, 3, 1, 1, 1, 1, 1, 2, 1, 0, 1, 1},
    {2, 7, 10, 5, 3, 3, 1, 1, 1, 1, 0, 0, 2, 2, 1, 0},
};

static void sconv_matches_twin_on_awkward_shapes(void **state)
{
    (void)state;
    rng r = {0x5eed0004u};
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        conv_run_case(&r, &conv_cases[i], 0);
}

static void sdwconv_matches_twin_on_awkward_shapes(void **state)
{
    (void)state;
    rng r = {0x5eed0005u};
    /* C = M; KH x KW of 1x1, 3x3, 5x5, 1x7; strides 1/2; dilation 2 */
    static const conv_case dw[] = {
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0},
        {3, 7, 7, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1},
        {16, 17, 17, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2},
        {17, 15, 33, 17, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0, 1, 1},
        {5, 31, 16, 5, 5, 5, 1, 1, 2, 2, 4, 3, 4, 5, 1, 0},
        {33, 5, 65, 33, 1, 7, 1, 1, 1, 1, 0, 3, 0, 3, 0, 0},
        {2, 100, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 2},
        {7, 2, 2, 7, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 1, 0},
        {4, 9, 9, 4, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},    /* stride 3 */
        {3, 5, 31, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1},   /* stride 3, OW = 11 */
        /* AVX-512 tiles of R rows x V vectors of 16: OW = 10 (R = 4, then
         * 4 and 1 rows), 64 (V = 4 exactly), 81 at stride 2 (V = 4 + 2),
         * 200 (V = 4 + 4 + 4 + 1); asymmetric pads at stride 2; stride 2
         * with dilation 2; 5x5 at stride 2 */
        {8, 9, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {4, 13, 64, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {3, 7, 161, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 2},
        {5, 30, 40, 5, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1, 0},
        {2, 6, 200, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {3, 5, 40, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 0},
        {6, 21, 37, 6, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 1, 1},
        /* AVX2 3x3 tiles of 8-pixel vectors without padding: OW = 24 (plain
         * tiles of 2 vectors, then 1), 17 at stride 2 (plain, then edge) */
        {2, 11, 26, 2, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
        {3, 9, 35, 3, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 2},
        /* AVX-512 3x3 with a left pad of 1, row tiles of 4, 2, 1 rows:
         * stride 1 (OW == W) on rows narrower than a vector, exactly one,
         * 33 wide (a last vector of 1), top pad 2 and bottom 0 (padding
         * rows skipped); stride 2 on odd widths (inner vectors, then a
         * masked one; none inner at W = 9), W = 64 (all inner), top pad 2 */
        {5, 6, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {3, 7, 16, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 2},
        {7, 5, 33, 7, 3, 3, 1, 1, 1, 1, 2, 1, 0, 1, 1, 0},
        {9, 9, 47, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1},
        {3, 11, 9, 3, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0, 2},
        {2, 8, 64, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0},
        {4, 6, 161, 4, 3, 3, 2, 2, 1, 1, 2, 1, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof dw / sizeof dw[0]; i++)
        conv_run_case(&r, &dw[i], 1);
}

/* A convolution that passes each FP8 weight through: w[m][c] (C = K
 * channels, M channels of codes cycling through n_codes) on a 1 x C image
 * whose channel c is one-hot at pixel c, so y[m][p] = widened w[m][p]
 * (C = 1: the plain remainder path of the widening; C = 5: 24 weights per
 * vector step and 6 left). */
static void sconv_w8_shows_each_weight(rng *r, int type, const uint8_t *codes, int n_codes,
                                       int64_t C, int si)
{
    const int64_t M = (n_codes + C - 1) / C;
    const conv_case cc = {C, 1, C, M, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    const octk_conv_shape s = conv_shape(&cc);
    uint8_t *w8 = exact_buf((size_t)(M * C));
    for (int64_t i = 0; i < M * C; i++)
        w8[i] = codes[i % n_codes];
    float *scale = fp8_scale_vec(r, si, M), *x = exact_buf((size_t)(C * C) * sizeof(float));
    for (int64_t i = 0; i < C * C; i++)
        x[i] = i % (C + 1) == 0 ? 1.0f : 0.0f;
    uint8_t *pw8 = aligned_buf(octk_sconv_packed_w8_size(M, C));
    octk_sconv_pack_w8(pw8, w8, M, C);
    const size_t y_bytes = (size_t)(M * C) * sizeof(float);
    float *y = exact_buf(y_bytes);
    octk_sconv p = {.s = s, .y_lo = -INFINITY, .y_hi = INFINITY, .x = x, .y = y,
                    .w8_type = type, .w8 = pw8, .w8_scale = scale};
    const size_t work_bytes = octk_sconv_work_size(&p);
    p.work = aligned_buf(work_bytes);
    run_all_splits(&sconv_ops, &p, p.work, work_bytes, y, y_bytes, r);
    for (int64_t i = 0; i < M * C; i++)
        check_widened("sconv w8", i, y[i], fp8_twin(w8[i], type, scale[i / C]));
    free(w8), free(scale), free(x), free(pw8), free(y), free(p.work);
}

/* Depthwise: C channels of taps codes; taps = 1 (x = 1, y = w), or 3 x 3
 * on a 3 x 3 image one-hot at its centre with padding 1, so output pixel
 * (oh, ow) is tap (2 - oh, 2 - ow) (every other tap reads 0 or padding):
 * 8 weights per vector step and 1 left. */
static void sdw_w8_shows_each_weight(rng *r, int type, const uint8_t *codes, int n_codes,
                                     int three, int si)
{
    const int64_t taps = three ? 9 : 1, C = (n_codes + taps - 1) / taps;
    const conv_case cc = three ? (conv_case){C, 3, 3, C, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}
                               : (conv_case){C, 1, 1, C, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    const octk_conv_shape s = conv_shape(&cc);
    uint8_t *w8 = exact_buf((size_t)(C * taps));
    for (int64_t i = 0; i < C * taps; i++)
        w8[i] = codes[i % n_codes];
    float *scale = fp8_scale_vec(r, si, C), *x = exact_buf((size_t)(C * taps) * sizeof(float));
    for (int64_t i = 0; i < C * taps; i++)
        x[i] = !three || i % 9 == 4 ? 1.0f : 0.0f;
    uint8_t *pw8 = aligned_buf(octk_sdwconv_packed_w8_size(C, taps));
    octk_sdwconv_pack_w8(pw8, w8, C, taps);
    const size_t y_bytes = (size_t)(C * taps) * sizeof(float);
    float *y = exact_buf(y_bytes);
    octk_sconv p = {.s = s, .y_lo = -INFINITY, .y_hi = INFINITY, .x = x, .y = y,
                    .w8_type = type, .w8 = pw8, .w8_scale = scale};
    const size_t work_bytes = octk_sdwconv_work_size(&p);
    p.work = aligned_buf(work_bytes);
    run_all_splits(&sdw_ops, &p, p.work, work_bytes, y, y_bytes, r);
    for (int64_t c = 0; c < C; c++)
        for (int64_t q = 0; q < taps; q++) {
            const int64_t tap = three ? 8 - q : 0;
            check_widened("sdwconv w8", c * taps + q, y[c * taps + q],
                          fp8_twin(w8[c * taps + tap], type, scale[c]));
        }
    free(w8), free(scale), free(x), free(pw8), free(y), free(p.work);
}

static void sconv_fp8_widening_matches_twin_for_every_code(void **state)
{
    (void)state;
    rng r = {0x5eed0013u};
    uint8_t all[256], finite[256];
    for (int t = 0; t < 2; t++) {
        const int n_all = fp8_codes(fp8_types[t], 0, all);
        const int n_finite = fp8_codes(fp8_types[t], 1, finite);
        for (int si = 0; si < FP8_N_SCALES; si++) {
            sconv_w8_shows_each_weight(&r, fp8_types[t], all, n_all, 1, si);
            sdw_w8_shows_each_weight(&r, fp8_types[t], all, n_all, 0, si);
            if (si < FP8_N_SCALES - 1) {
                sconv_w8_shows_each_weight(&r, fp8_types[t], finite, n_finite, 5, si);
                sdw_w8_shows_each_weight(&r, fp8_types[t], finite, n_finite, 1, si);
            }
        }
    }
}

static void sconv_fp8_weights_match_twin_on_awkward_shapes(void **state)
{
    (void)state;
    rng r = {0x5eed0014u};
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        conv_run_case_w8(&r, &conv_cases[i], 0, fp8_types[i % 2]);
    static const conv_case dw[] = {
        {16, 17, 17, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2},
        {17, 15, 33, 17, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0, 1, 1},
        {5, 31, 16, 5, 5, 5, 1, 1, 2, 2, 4, 3, 4, 5, 1, 0},
        {1200, 3, 3, 1200, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},   /* several widening tasks */
    };
    for (size_t i = 0; i < sizeof dw / sizeof dw[0]; i++)
        for (int t = 0; t < 2; t++)
            conv_run_case_w8(&r, &dw[i], 1, fp8_types[t]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sgemm_matches_twin_on_awkward_shapes),
        cmocka_unit_test(sgemm_long_k_accumulates_over_k_blocks),
        cmocka_unit_test(sgemm_batch1_gemv_matches_twin),
        cmocka_unit_test(sgemm_clamp_keeps_nan_and_saturates),
        cmocka_unit_test(sgemm_matches_double_reference_within_k_bound),
        cmocka_unit_test(sgemm_unpacked_b_matches_twin),
        cmocka_unit_test(sconv_matches_twin_on_awkward_shapes),
        cmocka_unit_test(sdwconv_matches_twin_on_awkward_shapes),
        cmocka_unit_test(sgemm_fp8_widening_matches_twin_for_every_code),
        cmocka_unit_test(sgemm_fp8_weights_match_twin_on_awkward_shapes),
        cmocka_unit_test(sconv_fp8_widening_matches_twin_for_every_code),
        cmocka_unit_test(sconv_fp8_weights_match_twin_on_awkward_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
