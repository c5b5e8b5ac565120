/*
 * test_qkernels.c: the integer GEMM kernels of src/codegen/kernels
 * (octk_qgemm_*, octk_qpacked_path; its float and int32 outputs; octk_lut8)
 * against plain scalar twins written from the formula of octk.h:
 *   acc = wrap_int32(bias + sum (x - x_zero) * (w - w_zero))   (int64, then wrap)
 *   y   = clamp(nearbyintf((float)acc * mult) + y_zero, y_lo, y_hi),
 * with the path choices GEMM and convolution share; the convolutions are
 * in test_qkernels_conv.c, the twins and case runners in qkernel_twins.h.
 * Every comparison is bit for bit.  Data are random from a fixed-seed PRNG;
 * shapes are awkward sizes; every run is also split over tasks in several
 * ways (one range, one task at a time backwards, random pieces in random
 * order) with garbage in the workspace, and must give identical bytes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "qkernel_twins.h"

static const int64_t awkward[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 100};
enum { N_AWKWARD = sizeof awkward / sizeof awkward[0] };

static void qgemm_matches_scalar_twin_on_awkward_sizes(void **state)
{
    rng r = {1};
    for (int i = 0; i < N_AWKWARD; i++)
        for (int j = 0; j < N_AWKWARD; j++) {
            int64_t K = rng_pick(&r, awkward, N_AWKWARD);
            gemm_case(&r, awkward[i], awkward[j], K, random_qparams(&r), (int)rng_range(&r, 0, 1),
                      (int)rng_range(&r, 0, 1), NULL);
        }
}

static void qgemm_large_shapes_match_scalar_twin(void **state)
{
    rng r = {2};
    gemm_case(&r, 130, 257, 300, random_qparams(&r), 1, 0, NULL);
    qparams q = random_qparams(&r);
    q.small_w = 1;
    gemm_case(&r, 67, 201, 517, q, 1, 1, NULL);
}

/* Weights with |w| <= 64 and zero points 0 run on U8S8, a pair of 127s
 * forces S16; both exact. */
static void qgemm_path_choice_is_exact_both_ways(void **state)
{
    rng r = {3};
    int path;
    for (int sgn = 0; sgn < 2; sgn++) {
        qparams q = random_qparams(&r);
        q.small_w = 1;
        q.w_signed = 1;
        q.x_signed = sgn;
        q.x_zero = zero_of(&r, sgn);
        gemm_case(&r, 33, 65, 63, q, 1, 0, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
    }
    /* a pair of 127s: 255 * 254 > 32767 */
    int64_t K = 8, N = 3;
    int8_t b[24];
    int32_t bz[3] = {0, 0, 0};
    for (int i = 0; i < 24; i++)
        b[i] = (int8_t)((i * 7) % 9 - 4);
    b[2 * N + 1] = 127; /* b(2, 1) */
    b[3 * N + 1] = 127; /* b(3, 1): the pair (2, 3) of column 1 */
    uint8_t pb[4096];
    assert_true(octk_qgemm_packed_b_size(K, N) <= sizeof pb);
    octk_qgemm_pack_b(pb, b, 1, bz, K, N, N, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    /* same pair but in different pairs (k = 1 and 2): still U8S8 */
    int8_t b2[24];
    memcpy(b2, b, sizeof b2);
    b2[3 * N + 1] = 0;
    b2[1 * N + 1] = 127;
    b2[0 * N + 1] = 1;
    octk_qgemm_pack_b(pb, b2, 1, bz, K, N, N, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);
    /* exactness on the S16 side: a big case with full-range weights */
    qparams q = random_qparams(&r);
    q.small_w = 0;
    q.w_signed = 1;
    gemm_case(&r, 17, 33, 101, q, 1, 0, &path);
    assert_true(path == OCTK_PATH_S16 || (BUILD_ISA & OCTK_ISA_VNNI));
}

/* acc beyond int32 wraps around (K large, extreme values), on both paths. */
static void qgemm_accumulator_wraps_int32(void **state)
{
    rng r = {4};
    for (int small = 0; small < 2; small++) {
        int64_t M = 2, N = 3, K = small ? 140001 : 40001;
        uint8_t *a = malloc((size_t)(M * K)), *b = malloc((size_t)(K * N));
        assert_true(a && b);
        for (int64_t i = 0; i < M * K; i++)
            a[i] = (uint8_t)(rng_range(&r, 0, 9) ? 255 : rng_next(&r));
        for (int64_t i = 0; i < K * N; i++)
            b[i] = small ? (uint8_t)(int8_t)(rng_range(&r, 0, 9) ? 64 : -64)
                         : (uint8_t)(rng_range(&r, 0, 9) ? 0 : rng_next(&r));
        int32_t bz[3] = {small ? 0 : 255, small ? 0 : 255, small ? 0 : 254};
        int32_t bias[3] = {INT32_MAX, INT32_MIN, 12345};
        float mult[3] = {1e-7f, 3e-8f, 2.5e-8f};
        int w_signed = small;
        void *pb = malloc(octk_qgemm_packed_b_size(K, N));
        assert_non_null(pb);
        octk_qgemm_pack_b(pb, b, w_signed, bz, K, N, N, 1, BUILD_ISA);
        assert_int_equal(octk_qpacked_path(pb), small ? OCTK_PATH_U8S8 : OCTK_PATH_S16);
        uint8_t y[6], expect[12];
        int wrapped = 0;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                int64_t s = bias[n];
                for (int64_t k = 0; k < K; k++)
                    s += (int64_t)a[m * K + k] * (ld8(b, w_signed, k * N + n) - bz[n]);
                wrapped |= s != (int64_t)ref_wrap(s);
                expect[2 * (m * N + n)] = (uint8_t)ref_requant(ref_wrap(s), mult[n], 0, -128, 127);
                expect[2 * (m * N + n) + 1] = 1;
            }
        assert_true(wrapped);
        octk_qgemm p = {.M = M, .N = N, .K = K, .lda = K, .ldy = N, .a_signed = 0, .a_zero = 0,
                        .y_signed = 1, .y_zero = 0, .y_lo = -128, .y_hi = 127, .a = a, .y = y,
                        .b = pb, .bias = bias, .mult = mult};
        void *yp = y;
        check_all_splits(&p, &p.work, octk_qgemm_work_size(&p), &yp, 6, expect, qgemm_tasks_v,
                         qgemm_run_v, &r);
        free(a), free(b), free(pb);
    }
}

/* Pairs with |w0| + |w1| == 128 (the largest vpmaddubsw cannot saturate on)
 * take U8S8 and stay exact with extreme activations; 129 takes S16. */
static void u8s8_boundary_pairs_are_exact(void **state)
{
    rng r = {11};
    for (int i = 0; i < 8; i++) {
        qparams q = random_qparams(&r);
        q.small_w = 2;
        q.w_signed = 1;
        int path;
        gemm_case(&r, 5 + i, 31 + 3 * i, 64 + 7 * i, q, i & 1, i & 2, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
        conv_geom g = {5 + i, 9, 8 + i, 7 + 5 * i, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &g, q, i & 1, 0, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
    }
    int8_t b[4] = {64, 0, 65, 0}; /* K = 2, N = 2: column 0 pair (64, 65) */
    int32_t bz[2] = {0, 0};
    uint8_t pb[1024];
    octk_qgemm_pack_b(pb, b, 1, bz, 2, 2, 2, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    b[2] = -64;
    octk_qgemm_pack_b(pb, b, 1, bz, 2, 2, 2, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);
    int8_t w[4] = {-128, 1, 0, 0};
    octk_qconv_pack_w(pb, w, 1, bz, 2, 2, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    w[1] = 0;
    octk_qconv_pack_w(pb, w, 1, bz, 2, 2, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);
}

/* ---- requantization edge cases through a 1-element GEMM ------------------------------- */

/* y for acc = bias only (K = 1 with a == a_zero), one multiplier. */
static void requantize_rounds_half_even_and_saturates(void **state)
{
    rng r = {9};
    static const int32_t accs[] = {0, 1, -1, 2, 3, 5, -5, 7, 16777217, -16777217, INT32_MAX,
                                   INT32_MIN, 1000000, -1000000, 123456789};
    static const float mults[] = {0.5f, 0.25f, 1.0f, 1e-30f, 1e30f, 3e38f, 1e3f, 0.0078125f,
                                  1.5f, 1e-9f};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sizeof accs / sizeof accs[0]; i++)
            for (size_t j = 0; j < sizeof mults / sizeof mults[0]; j++) {
                /* 9 columns so both the vector and the scalar epilogue run */
                enum { N = 9 };
                int8_t b[N];
                int32_t bz[N], bias[N];
                float mult[N];
                uint8_t a = 7, y[N], expect[2 * N];
                int32_t zy = s ? -3 : 250, lo = s ? -128 : 0, hi = s ? 127 : 255;
                for (int n = 0; n < N; n++) {
                    b[n] = 1;
                    bz[n] = 0;
                    bias[n] = accs[(i + (size_t)n) % (sizeof accs / sizeof accs[0])];
                    mult[n] = mults[j];
                    expect[2 * n] = (uint8_t)ref_requant(bias[n], mult[n], zy, lo, hi);
                    expect[2 * n + 1] = 1;
                }
                uint8_t pb[1024];
                octk_qgemm_pack_b(pb, b, 1, bz, 1, N, N, 1, BUILD_ISA);
                octk_qgemm p = {.M = 1, .N = N, .K = 1, .lda = 1, .ldy = N, .a_signed = 0,
                                .a_zero = 7, .y_signed = s, .y_zero = zy, .y_lo = lo, .y_hi = hi,
                                .a = &a, .y = y, .b = pb, .bias = bias, .mult = mult};
                void *yp = y;
                check_all_splits(&p, &p.work, octk_qgemm_work_size(&p), &yp, N, expect,
                                 qgemm_tasks_v, qgemm_run_v, &r);
            }
}

/* Larger problem: each split mode gives the same bytes (and the twin's). */
static void split_over_tasks_gives_identical_bytes(void **state)
{
    rng r = {10};
    qparams q = random_qparams(&r);
    gemm_case(&r, 200, 300, 70, q, 1, 0, NULL);
    conv_geom g = {24, 30, 30, 72, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    conv_case(&r, &g, random_qparams(&r), 1, 0, NULL);
    conv_geom d = {5, 40, 41, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1};
    conv_case(&r, &d, random_qparams(&r), 1, 1, NULL);
    /* enough tasks to balance two threads */
    octk_qgemm p = {.M = 256, .N = 256, .K = 64};
    assert_true(octk_qgemm_tasks(&p, 1) >= 8);
}

/* With VNNI (vpdpbusd: four exact u8 x s8 products into int32) any int8
 * weights with zero points 0 take the u8 x s8 path, full range included,
 * and stay exact: extreme activations against +-127/-128 weights. */
static void vnni_takes_full_range_int8_weights_exactly(void **state)
{
    uint8_t pb[4096];
    int8_t b[8] = {127, 127, -128, -128, 127, -128, 1, 0};
    int32_t bz[2] = {0, 0};
    octk_qgemm_pack_b(pb, b, 1, bz, 4, 2, 2, 1, OCTK_ISA_AVX2 | OCTK_ISA_VNNI);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);
    octk_qgemm_pack_b(pb, b, 1, bz, 4, 2, 2, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    octk_qgemm_pack_b(pb, b, 1, bz, 4, 2, 2, 1, 0);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    if (!(BUILD_ISA & OCTK_ISA_VNNI))
        return; /* running VNNI-packed weights needs a VNNI build */
    rng r = {21};
    for (int i = 0; i < 6; i++) {
        qparams q = random_qparams(&r);
        q.small_w = 3;
        q.w_signed = 1;
        int path;
        gemm_case(&r, 3 + 5 * i, 17 + 9 * i, 31 + 40 * i, q, i & 1, i & 2, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
        conv_geom g = {5 + i, 9, 8 + i, 7 + 5 * i, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &g, q, i & 1, 0, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
    }
}

/* y_float (MatMulIntegerToFloat): y = (float)acc * mult[n] (+ fbias[n]),
 * each a float32 operation, against a scalar twin, byte for byte, with and
 * without the float bias, on both packings the build may choose. */
static void qgemm_float_output_matches_scalar_twin(void **state)
{
    rng r = {31};
    static const int64_t shapes[][3] = {{1, 10, 784}, {5, 33, 17}, {64, 24, 100}, {7, 1, 3}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int variant = 0; variant < 4; variant++) {
            int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
            int a_signed = variant & 1, with_bias = (variant >> 1) & 1;
            int32_t a_zero = zero_of(&r, a_signed);
            uint8_t *a = malloc((size_t)(M * K)), *b = malloc((size_t)(K * N));
            int32_t *bz = malloc(sizeof(int32_t) * (size_t)N);
            float *mult = malloc(sizeof(float) * (size_t)N), *fb = malloc(sizeof(float) * (size_t)N);
            float *y = malloc(sizeof(float) * (size_t)(M * N)), *want = malloc(sizeof(float) * (size_t)(M * N));
            assert_true(a && b && bz && mult && fb && y && want);
            random_bytes(&r, a, M * K);
            random_bytes(&r, b, K * N);
            for (int64_t n = 0; n < N; n++) {
                bz[n] = variant == 3 ? zero_of(&r, 1) : 0;
                mult[n] = (float)(1e-4 * (1 + rng_range(&r, 0, 1000)));
                fb[n] = (float)((int64_t)rng_range(&r, 0, 2000) - 1000) / 7.0f;
            }
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    int64_t acc = 0;
                    for (int64_t k = 0; k < K; k++)
                        acc += (int64_t)(ld8(a, a_signed, m * K + k) - a_zero) *
                               (ld8(b, 1, k * N + n) - bz[n]);
                    float v = (float)(int32_t)(uint32_t)acc * mult[n];
                    want[m * N + n] = with_bias ? v + fb[n] : v;
                }
            void *pb = malloc(octk_qgemm_packed_b_size(K, N));
            assert_non_null(pb);
            octk_qgemm_pack_b(pb, b, 1, bz, K, N, N, 1, BUILD_ISA);
            octk_qgemm p;
            memset(&p, 0, sizeof p);
            p.M = M; p.N = N; p.K = K; p.lda = K; p.ldy = N;
            p.a_signed = a_signed; p.a_zero = a_zero; p.y_float = 1;
            p.a = a; p.y = y; p.b = pb; p.mult = mult; p.fbias = with_bias ? fb : NULL;
            p.work = malloc(octk_qgemm_work_size(&p) + 1);
            assert_non_null(p.work);
            for (int phase = 0; phase < OCTK_PHASES; phase++)
                octk_qgemm_run(&p, phase, 0, octk_qgemm_tasks(&p, phase));
            assert_memory_equal(y, want, sizeof(float) * (size_t)(M * N));
            free(p.work); free(pb); free(a); free(b); free(bz); free(mult); free(fb);
            free(y); free(want);
        }
}

/* OCTK_QGEMM_Y_INT32 (MatMulInteger): y = wrap_int32(bias[n] + sum (a -
 * a_zero) * (b - b_zero[n])) against a scalar twin, exactly, on both
 * packings the build may choose (b_zero all 0 allows U8S8). */
static void qgemm_int32_output_matches_scalar_twin(void **state)
{
    (void)state;
    rng r = {37};
    static const int64_t shapes[][3] = {{1, 10, 784}, {5, 33, 17}, {64, 24, 100}, {7, 1, 3}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int variant = 0; variant < 4; variant++) {
            int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
            int a_signed = variant & 1, with_bias = (variant >> 1) & 1;
            int32_t a_zero = zero_of(&r, a_signed);
            uint8_t *a = malloc((size_t)(M * K)), *b = malloc((size_t)(K * N));
            int32_t *bz = malloc(sizeof(int32_t) * (size_t)N);
            int32_t *bias = malloc(sizeof(int32_t) * (size_t)N);
            int32_t *y = malloc(sizeof(int32_t) * (size_t)(M * N));
            int32_t *want = malloc(sizeof(int32_t) * (size_t)(M * N));
            assert_true(a && b && bz && bias && y && want);
            random_bytes(&r, a, M * K);
            random_bytes(&r, b, K * N);
            for (int64_t n = 0; n < N; n++) {
                bz[n] = variant == 3 ? zero_of(&r, 1) : 0;
                bias[n] = (int32_t)((int64_t)rng_range(&r, 0, 2000000) - 1000000);
            }
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    int64_t acc = with_bias ? bias[n] : 0;
                    for (int64_t k = 0; k < K; k++)
                        acc += (int64_t)(ld8(a, a_signed, m * K + k) - a_zero) *
                               (ld8(b, 1, k * N + n) - bz[n]);
                    want[m * N + n] = (int32_t)(uint32_t)acc;
                }
            void *pb = malloc(octk_qgemm_packed_b_size(K, N));
            assert_non_null(pb);
            octk_qgemm_pack_b(pb, b, 1, bz, K, N, N, 1, BUILD_ISA);
            octk_qgemm p;
            memset(&p, 0, sizeof p);
            p.M = M; p.N = N; p.K = K; p.lda = K; p.ldy = N;
            p.a_signed = a_signed; p.a_zero = a_zero; p.y_float = OCTK_QGEMM_Y_INT32;
            p.a = a; p.y = y; p.b = pb; p.bias = with_bias ? bias : NULL;
            p.work = malloc(octk_qgemm_work_size(&p) + 1);
            assert_non_null(p.work);
            for (int phase = 0; phase < OCTK_PHASES; phase++)
                octk_qgemm_run(&p, phase, 0, octk_qgemm_tasks(&p, phase));
            assert_memory_equal(y, want, sizeof(int32_t) * (size_t)(M * N));
            free(p.work); free(pb); free(a); free(b); free(bz); free(bias); free(y); free(want);
        }
}

/* One U8S8 case with float32 (y_float 1, fbias if with_bias) or int32
 * (OCTK_QGEMM_Y_INT32, bias if with_bias) output against the twin of the
 * two tests above, through check_all_splits: the 4-byte outputs, with a
 * garbage margin of 0 to 2 elements past each row that must stay. */
static void gemm_wide_case(rng *r, int64_t M, int64_t N, int64_t K, int a_signed, int y_float,
                           int with_bias)
{
    int64_t lda = K + rng_range(r, 0, 3), ldy = N + rng_range(r, 0, 2);
    int32_t a_zero = zero_of(r, a_signed);
    uint8_t *a = malloc((size_t)(M * lda + 1)), *b = malloc((size_t)(K * N + 1));
    int32_t *bz = calloc((size_t)N, 4), *bias = malloc((size_t)N * 4);
    float *mult = malloc((size_t)N * 4), *fb = malloc((size_t)N * 4);
    size_t ny = (size_t)(M * ldy) * 4;
    uint8_t *expect = calloc(2 * ny + 2, 1), *y = malloc(ny + 1);
    assert_true(a && b && bz && bias && mult && fb && expect && y);
    random_bytes(r, a, M * lda);
    /* int8 weights the build's U8S8 path takes: full range with VNNI */
    for (int64_t i = 0; i < K * N; i++)
        b[i] = (uint8_t)(BUILD_ISA & OCTK_ISA_VNNI ? rng_range(r, -128, 127)
                                                   : rng_range(r, -64, 64));
    for (int64_t n = 0; n < N; n++) {
        bias[n] = (int32_t)((int64_t)rng_range(r, 0, 2000000) - 1000000);
        mult[n] = (float)(1e-4 * (1 + rng_range(r, 0, 1000)));
        fb[n] = (float)((int64_t)rng_range(r, 0, 2000) - 1000) / 7.0f;
    }
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            int64_t acc = with_bias && y_float == OCTK_QGEMM_Y_INT32 ? bias[n] : 0;
            for (int64_t k = 0; k < K; k++)
                acc += (int64_t)(ld8(a, a_signed, m * lda + k) - a_zero) * ld8(b, 1, k * N + n);
            int32_t acc32 = (int32_t)(uint32_t)acc;
            float v = (float)acc32 * mult[n];
            v = with_bias ? v + fb[n] : v;
            uint8_t bytes[4];
            memcpy(bytes, y_float == OCTK_QGEMM_Y_INT32 ? (void *)&acc32 : (void *)&v, 4);
            for (int i = 0; i < 4; i++) {
                expect[2 * (4 * (m * ldy + n) + i)] = bytes[i];
                expect[2 * (4 * (m * ldy + n) + i) + 1] = 1;
            }
        }
    void *pb = malloc(octk_qgemm_packed_b_size(K, N));
    assert_non_null(pb);
    octk_qgemm_pack_b(pb, b, 1, bz, K, N, N, 1, BUILD_ISA);
    if (BUILD_ISA)
        assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);
    octk_qgemm p = {.M = M, .N = N, .K = K, .lda = lda, .ldy = ldy, .a_signed = a_signed,
                    .a_zero = a_zero, .y_float = y_float, .a = a, .y = y, .b = pb,
                    .bias = with_bias && y_float == OCTK_QGEMM_Y_INT32 ? bias : NULL,
                    .mult = mult, .fbias = with_bias && y_float == 1 ? fb : NULL};
    check_all_splits(&p, &p.work, octk_qgemm_work_size(&p), &p.y, ny, expect, qgemm_tasks_v,
                     qgemm_run_v, r);
    free(a), free(b), free(bz), free(bias), free(mult), free(fb), free(expect), free(y), free(pb);
}

/* The U8S8 path (with VNNI: blocks of 16 rows of a against 24-column
 * panels, two blocks x 12 columns or one x 24, the epilogue on columns and
 * then transposed to rows) on row counts around the block, column counts
 * around the panel and its half, K around the k quad, signed and unsigned
 * activations and the three outputs, every task split.  From 8 panels on
 * (N >= 169) tiles have 32 or 64 rows: pairs of blocks, the second one
 * partial with M = 57. */
static void qgemm_u8s8_block_edges_match_scalar_twin(void **state)
{
    (void)state;
    rng r = {43};
    static const int64_t Ms[] = {1, 7, 15, 16, 17, 31, 33, 57, 69, 100};
    static const int64_t Ns[] = {23, 24, 48, 50, 175, 180, 190};
    static const int64_t Ks[] = {1, 3, 5, 63, 130};
    for (size_t i = 0; i < sizeof Ms / sizeof Ms[0]; i++)
        for (size_t j = 0; j < sizeof Ns / sizeof Ns[0]; j++)
            for (size_t k = 0; k < sizeof Ks / sizeof Ks[0]; k++) {
                int a_signed = (int)((i + j + k) & 1), with_bias = (int)((i + k) & 1);
                qparams q = random_qparams(&r);
                q.x_signed = a_signed;
                q.x_zero = zero_of(&r, a_signed);
                q.w_signed = 1;
                q.small_w = BUILD_ISA & OCTK_ISA_VNNI ? 3 : 1;
                gemm_case(&r, Ms[i], Ns[j], Ks[k], q, with_bias, (int)(j & 1), NULL);
                gemm_wide_case(&r, Ms[i], Ns[j], Ks[k], a_signed, 1, with_bias);
                gemm_wide_case(&r, Ms[i], Ns[j], Ks[k], a_signed, OCTK_QGEMM_Y_INT32, with_bias);
            }
}

/* octk_lut8: y[i] = table[x[i]] on lengths around the vector widths, every
 * byte value present, split over tasks at every boundary the kernel offers;
 * nothing past n is written. */
static void lut8_maps_every_byte_through_the_table(void **state)
{
    rng r = {41};
    uint8_t table[256];
    random_bytes(&r, table, 256);
    static const int64_t lens[] = {1, 31, 32, 33, 63, 64, 65, 256, 1000, 4097, 70001};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int64_t n = lens[li];
        uint8_t *x = malloc((size_t)n), *y = malloc((size_t)n + 64);
        assert_true(x && y);
        random_bytes(&r, x, n);
        for (int64_t i = 0; i < n && i < 256; i++)
            x[i] = (uint8_t)(255 - i);
        memset(y, 0xa5, (size_t)n + 64);
        octk_lut8 p = {.n = n, .table = table, .x = x, .y = y};
        int64_t tasks = octk_lut8_tasks(&p, 0);
        assert_int_equal(octk_lut8_tasks(&p, 1) + octk_lut8_tasks(&p, 2), 0);
        for (int64_t t = 0; t < tasks; t++) /* one task at a time, last first */
            octk_lut8_run(&p, 0, tasks - 1 - t, tasks - t);
        for (int64_t i = 0; i < n; i++)
            assert_int_equal(y[i], table[x[i]]);
        for (int64_t i = n; i < n + 64; i++)
            assert_int_equal(y[i], 0xa5);
        free(x);
        free(y);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qgemm_matches_scalar_twin_on_awkward_sizes),
        cmocka_unit_test(qgemm_large_shapes_match_scalar_twin),
        cmocka_unit_test(qgemm_path_choice_is_exact_both_ways),
        cmocka_unit_test(qgemm_accumulator_wraps_int32),
        cmocka_unit_test(u8s8_boundary_pairs_are_exact),
        cmocka_unit_test(requantize_rounds_half_even_and_saturates),
        cmocka_unit_test(split_over_tasks_gives_identical_bytes),
        cmocka_unit_test(vnni_takes_full_range_int8_weights_exactly),
        cmocka_unit_test(qgemm_float_output_matches_scalar_twin),
        cmocka_unit_test(qgemm_int32_output_matches_scalar_twin),
        cmocka_unit_test(qgemm_u8s8_block_edges_match_scalar_twin),
        cmocka_unit_test(lut8_maps_every_byte_through_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
