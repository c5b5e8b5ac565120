/*
 * test_wokernels.c: the weight-only INT4 MatMul kernel (octk_wogemm) against
 * a scalar twin written here from the definition of blocked
 * DequantizeLinear: w(k, n) = (float)(q - z) * s with s, z those of block
 * k / bs of column n, y = sum_k a * w accumulated in double.
 *
 * Built three times (CMakeLists.txt of this folder): against the kernels
 * for this machine (the AVX-512 path where it has AVX-512), for AVX2 and
 * for baseline x86-64, so every vector path of the GEMV and of the widening
 * path is compared with the same twin.  Shapes: M in {1, 3, 8} (GEMV) and
 * {17, 128} (widen + float GEMM), K not a multiple of the block (and odd,
 * so a short block ends on a lone low nibble), N odd (a partial panel and
 * a partial chunk); signed INT4 (codes q + 8, z = 8), UINT4 with zero
 * points, UINT4 without (z = 0).  Tolerance |y - ref| <= 1e-5 * max(1,
 * max|ref|).  Each run is repeated with the tasks one at a time in
 * reverse order over a work buffer filled with garbage: identical bytes.
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

#include "octk.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static float rng_float(float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rng_next() >> 40) / 16777216.0);
}

static void *aligned_buf(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    assert_non_null(p);
    return p;
}

enum { KIND_SIGNED, KIND_ZP, KIND_UNSIGNED };

static void run_tasks(const octk_wogemm *p, int reverse)
{
    for (int phase = 0; phase < OCTK_PHASES; phase++) {
        int64_t n = octk_wogemm_tasks(p, phase);
        if (!reverse) {
            octk_wogemm_run(p, phase, 0, n);
            continue;
        }
        for (int64_t t = n - 1; t >= 0; t--)
            octk_wogemm_run(p, phase, t, t + 1);
    }
}

static void check_case(int64_t M, int64_t K, int64_t N, int64_t bs, int kind)
{
    int64_t nb = (K + bs - 1) / bs;
    uint8_t *q = malloc((size_t)(K * N));
    uint8_t *zp = kind == KIND_ZP ? malloc((size_t)(nb * N)) : NULL;
    float *s = malloc((size_t)(nb * N) * sizeof *s);
    float *a = malloc((size_t)(M * K) * sizeof *a);
    float *y = malloc((size_t)(M * N) * sizeof *y), *y2 = malloc((size_t)(M * N) * sizeof *y2);
    double *ref = malloc((size_t)(M * N) * sizeof *ref);
    assert_true(q && s && a && y && y2 && ref && (kind != KIND_ZP || zp));
    for (int64_t i = 0; i < K * N; i++)
        q[i] = (uint8_t)(rng_next() & 15u);
    for (int64_t i = 0; i < nb * N; i++) {
        s[i] = rng_float(0.001f, 0.05f);
        if (zp)
            zp[i] = (uint8_t)(rng_next() & 15u);
    }
    for (int64_t i = 0; i < M * K; i++)
        a[i] = rng_float(-2.0f, 2.0f);
    int32_t zero = kind == KIND_SIGNED ? 8 : 0;
    double big = 1.0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) {
                int64_t at = (k / bs) * N + n;
                int32_t z = zp ? zp[at] : zero;
                float w = (float)((int32_t)q[k * N + n] - z) * s[at];
                acc += (double)a[m * K + k] * (double)w;
            }
            ref[m * N + n] = acc;
            big = fmax(big, fabs(acc));
        }
    size_t psize = octk_wogemm_packed_b_size(K, N, bs, zp != NULL);
    uint8_t *packed = aligned_buf(psize);
    octk_wogemm_pack_b(packed, q, zp, s, K, N, bs);
    octk_wogemm p = {.M = M, .N = N, .K = K, .bs = bs, .lda = K, .ldy = N,
                     .has_zp = zp != NULL, .zero = zero, .a = a, .y = y, .b = packed};
    size_t wsize = octk_wogemm_work_size(&p);
    p.work = aligned_buf(wsize);
    memset(p.work, 0xa5, wsize);
    run_tasks(&p, 0);
    double worst = 0;
    for (int64_t i = 0; i < M * N; i++)
        worst = fmax(worst, fabs((double)y[i] - ref[i]));
    if (!(worst <= 1e-5 * big))
        fail_msg("M=%lld K=%lld N=%lld bs=%lld kind=%d: max error %g > 1e-5 * %g",
                 (long long)M, (long long)K, (long long)N, (long long)bs, kind, worst, big);
    memset(p.work, 0x5a, wsize);
    p.y = y2;
    run_tasks(&p, 1);
    assert_memory_equal(y, y2, (size_t)(M * N) * sizeof *y);
    free(p.work);
    free(packed);
    free(q);
    free(zp);
    free(s);
    free(a);
    free(y);
    free(y2);
    free(ref);
}

static void wogemm_matches_twin_every_row_count(void **state)
{
    static const int64_t rows[] = {1, 2, 3, 4, 5, 8, 9, 17, 128};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        for (int kind = 0; kind < 3; kind++)
            check_case(rows[i], 100, 37, 32, kind);
}

static void wogemm_matches_twin_every_block_size(void **state)
{
    static const int64_t blocks[] = {16, 32, 64, 128};
    static const int64_t ks[] = {77, 200, 1};
    for (size_t b = 0; b < 4; b++)
        for (size_t k = 0; k < 3; k++)
            for (int kind = 0; kind < 3; kind++) {
                check_case(1, ks[k], 53, blocks[b], kind);
                check_case(3, ks[k], 5, blocks[b], kind);
                check_case(17, ks[k], 67, blocks[b], kind);
            }
}

static void wogemm_gemv_rows_are_independent(void **state)
{
    /* a GEMV row does not depend on which rows share its tile */
    int64_t K = 96, N = 33, bs = 32, nb = 3;
    uint8_t q[96 * 33];
    float s[3 * 33], a[8 * 96], y8[8 * 33], y1[33];
    for (size_t i = 0; i < sizeof q; i++)
        q[i] = (uint8_t)(rng_next() & 15u);
    for (int64_t i = 0; i < nb * N; i++)
        s[i] = rng_float(0.01f, 0.1f);
    for (int64_t i = 0; i < 8 * K; i++)
        a[i] = rng_float(-1.0f, 1.0f);
    uint8_t *packed = aligned_buf(octk_wogemm_packed_b_size(K, N, bs, 0));
    octk_wogemm_pack_b(packed, q, NULL, s, K, N, bs);
    octk_wogemm p = {.M = 8, .N = N, .K = K, .bs = bs, .lda = K, .ldy = N, .zero = 8,
                     .a = a, .y = y8, .b = packed};
    p.work = aligned_buf(octk_wogemm_work_size(&p));
    run_tasks(&p, 0);
    for (int64_t m = 0; m < 8; m++) {
        octk_wogemm one = p;
        one.M = 1;
        one.a = a + m * K;
        one.y = y1;
        run_tasks(&one, 0);
        for (int64_t n = 0; n < N; n++)
            assert_true(fabsf(y1[n] - y8[m * N + n]) <= 1e-5f * fmaxf(1.0f, fabsf(y1[n])));
    }
    free(p.work);
    free(packed);
}

/* ---- int8 activations (act_int8) ------------------------------------------
 * The twin follows octk.h's definition step by step in plain C: per row and
 * block the activations' absolute maximum, sa = amax / 127, inv = 1 / sa,
 * qa = nearest (half to even, rintf) of a * inv, the exact integer sum of
 * qa * (q - z), then y = y + (float)d * (sa * s) in block order.  The
 * kernel must give the same bits (every vector path), and the same bits
 * again with the tasks run one at a time in reverse. */
static void int8_twin(const float *a, const uint8_t *q, const uint8_t *zp, int32_t zero,
                      const float *s, int64_t M, int64_t K, int64_t N, int64_t bs, float *y)
{
    int64_t nb = (K + bs - 1) / bs;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < nb; j++) {
                int64_t k0 = j * bs, k1 = k0 + bs < K ? k0 + bs : K;
                float amax = 0.0f;
                int bad = 0;
                for (int64_t k = k0; k < k1; k++) {
                    bad |= !isfinite(a[m * K + k]);
                    amax = fmaxf(amax, fabsf(a[m * K + k]));
                }
                float sa = bad ? NAN : amax / 127.0f;
                float inv = bad || sa == 0.0f ? 0.0f : 1.0f / sa;
                int32_t d = 0, z = zp ? zp[j * N + n] : zero;
                for (int64_t k = k0; k < k1; k++) {
                    int32_t qa = bad ? 0 : (int32_t)rintf(a[m * K + k] * inv);
                    assert_true(qa >= -127 && qa <= 127);
                    d += qa * ((int32_t)q[k * N + n] - z);
                }
                acc = acc + (float)d * (sa * s[j * N + n]);
            }
            y[m * N + n] = acc;
        }
}

/* 1: every code 15 and every activation +-1 (|qa| = 127 throughout): the
 * largest sums the AVX2 path keeps in int16 lanes (8 pairs of 15 * 127 * 2
 * = 30480 per 32 k), so a saturation or wrap would show. */
static int int8_extreme;

static void check_int8(int64_t M, int64_t K, int64_t N, int64_t bs, int kind, int poison)
{
    int64_t nb = (K + bs - 1) / bs;
    uint8_t *q = malloc((size_t)(K * N)), *zp = kind == KIND_ZP ? malloc((size_t)(nb * N)) : NULL;
    float *s = malloc((size_t)(nb * N) * sizeof *s), *a = malloc((size_t)(M * K) * sizeof *a);
    float *y = malloc((size_t)(M * N) * sizeof *y), *y2 = malloc((size_t)(M * N) * sizeof *y2);
    float *ref = malloc((size_t)(M * N) * sizeof *ref);
    assert_true(q && s && a && y && y2 && ref && (kind != KIND_ZP || zp));
    for (int64_t i = 0; i < K * N; i++)
        q[i] = (uint8_t)(rng_next() & 15u);
    for (int64_t i = 0; i < nb * N; i++) {
        s[i] = rng_float(0.001f, 0.05f);
        if (zp)
            zp[i] = (uint8_t)(rng_next() & 15u);
    }
    for (int64_t i = 0; i < M * K; i++)
        a[i] = rng_float(-3.0f, 3.0f);
    for (int64_t i = 0; int8_extreme && i < K * N; i++)
        q[i] = 15;
    for (int64_t i = 0; int8_extreme && i < M * K; i++)
        a[i] = (i / K) % 2 ? -1.0f : 1.0f;
    if (K > 2 * bs && !int8_extreme)
        for (int64_t k = bs; k < 2 * bs; k++)
            a[k] = 0.0f; /* an all-zero block: sa = 0 */
    if (poison && M > 1)
        a[K + K / 2] = poison == 1 ? NAN : INFINITY; /* row 1: a bad block */
    int32_t zero = kind == KIND_SIGNED ? 8 : 0;
    int8_twin(a, q, zp, zero, s, M, K, N, bs, ref);
    size_t psize = octk_wogemm_packed_b_i8_size(K, N, bs, zp != NULL);
    uint8_t *packed = aligned_buf(psize);
    octk_wogemm_pack_b_i8(packed, q, zp, s, K, N, bs);
    octk_wogemm p = {.M = M, .N = N, .K = K, .bs = bs, .lda = K, .ldy = N, .act_int8 = 1,
                     .has_zp = zp != NULL, .zero = zero, .a = a, .y = y, .b = packed};
    size_t wsize = octk_wogemm_work_size(&p);
    p.work = aligned_buf(wsize);
    memset(p.work, 0xa5, wsize);
    run_tasks(&p, 0);
    for (int64_t i = 0; i < M * N; i++)
        if (memcmp(&y[i], &ref[i], 4) && !(isnan(y[i]) && isnan(ref[i])))
            fail_msg("int8 M=%lld K=%lld N=%lld bs=%lld kind=%d: y[%lld] = %.9g, twin %.9g",
                     (long long)M, (long long)K, (long long)N, (long long)bs, kind,
                     (long long)i, y[i], ref[i]);
    if (poison && M > 1)
        for (int64_t n = 0; n < N; n++)
            assert_true(isnan(y[N + n]));
    memset(p.work, 0x5a, wsize);
    p.y = y2;
    run_tasks(&p, 1);
    assert_memory_equal(y, y2, (size_t)(M * N) * sizeof *y);
    free(p.work);
    free(packed);
    free(q);
    free(zp);
    free(s);
    free(a);
    free(y);
    free(y2);
    free(ref);
}

static void wogemm_int8_equals_twin_bitwise(void **state)
{
    static const int64_t rows[] = {1, 2, 3, 5, 6, 7, 13, 64};
    static const int64_t blocks[] = {16, 32, 64, 128};
    static const int64_t ks[] = {1, 77, 200, 256};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        for (int kind = 0; kind < 3; kind++)
            check_int8(rows[i], 100, 37, 32, kind, 0);
    for (size_t b = 0; b < 4; b++)
        for (size_t k = 0; k < 4; k++)
            for (int kind = 0; kind < 3; kind++) {
                check_int8(1, ks[k], 83, blocks[b], kind, 0);
                check_int8(6, ks[k], 19, blocks[b], kind, 0);
            }
}

static void wogemm_int8_largest_sums_exact(void **state)
{
    static const int64_t rows[] = {1, 2, 4, 5, 9};
    static const int64_t blocks[] = {16, 32, 64, 128};
    int8_extreme = 1;
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
        for (size_t b = 0; b < 4; b++)
            for (int kind = 0; kind < 3; kind++)
                check_int8(rows[r], 300, 70, blocks[b], kind, 0);
    int8_extreme = 0;
}

static void wogemm_int8_bad_block_gives_nan(void **state)
{
    check_int8(3, 200, 37, 32, KIND_SIGNED, 1);
    check_int8(3, 200, 37, 32, KIND_ZP, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wogemm_matches_twin_every_row_count),
        cmocka_unit_test(wogemm_matches_twin_every_block_size),
        cmocka_unit_test(wogemm_gemv_rows_are_independent),
        cmocka_unit_test(wogemm_int8_equals_twin_bitwise),
        cmocka_unit_test(wogemm_int8_largest_sums_exact),
        cmocka_unit_test(wogemm_int8_bad_block_gives_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
