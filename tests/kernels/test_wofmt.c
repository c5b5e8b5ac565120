/*
 * test_wofmt.c: the weight-only block-format MatMul kernel (octk_wofmt)
 * against a scalar twin written here from the definition of blocked
 * DequantizeLinear: w(k, n) = (v(q) - v(z)) * s with s, z those of block
 * k / bs of column n, v(q) the code's value (int8 for 8-bit codes, the
 * table for narrower ones), y = sum_k a * w accumulated in double.
 *
 * Built three times (CMakeLists.txt of this folder): AVX-512 where the
 * machine has it, AVX2 and baseline x86-64, so each vector path is
 * compared with the same twin.  Code widths: 8 (signed, with and without
 * zero points), 4 (the FP4 E2M1 table without zero points as NVFP4/MXFP4,
 * the identity table with zero points as Q4_K) and 2 (two's-complement
 * INT2, its table modulo 4 as the lowering builds it, with and without
 * zero points).  Shapes: M in {1, 2, 3, 8} (one row group) and {9, 17}
 * (several), K not a multiple of the block (a short last block, odd
 * lengths so tails of every code position run), N odd (a partial panel).
 * Tolerance |y - ref| <= 1e-5 * max(1, max|ref|); with 8-bit zero points a
 * column whose codes equal its zero points must give exactly 0 (the
 * kernel subtracts them exactly).  Each run is repeated
 * with the tasks one at a time in reverse order over a work buffer filled
 * with garbage: identical bytes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "octk.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

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

/* The FP4 E2M1 values of the OCP MX specification, codes 0..15. */
static const float fp4_values[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6,
                                     -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};

typedef struct fmt_case {
    const char *name;
    int bits, zp;
} fmt_case;

static const fmt_case cases[] = {
    {"int8", 8, 0}, {"int8+zp", 8, 1}, {"fp4", 4, 0}, {"uint4+zp", 4, 1},
    {"int2", 2, 0}, {"int2+zp", 2, 1},
};

/* The table of a case: FP4 values, UINT4 identity, INT2 modulo 4. */
static void fill_lut(const fmt_case *c, float *lut)
{
    for (int i = 0; i < 16; i++)
        lut[i] = c->bits == 4 ? (c->zp ? (float)i : fp4_values[i])
                              : (float)((i & 3) < 2 ? (i & 3) : (i & 3) - 4);
}

static float value_of(const fmt_case *c, const float *lut, uint8_t q)
{
    return c->bits == 8 ? (float)(int8_t)q : lut[q];
}

static void run_tasks(const octk_wofmt *p, int reverse)
{
    for (int phase = 0; phase < OCTK_PHASES; phase++) {
        int64_t n = octk_wofmt_tasks(p, phase);
        if (!reverse) {
            octk_wofmt_run(p, phase, 0, n);
            continue;
        }
        for (int64_t t = n - 1; t >= 0; t--)
            octk_wofmt_run(p, phase, t, t + 1);
    }
}

/* Activations' magnitude: around and above 2^60, where the AVX2 kernel's
 * int8 table (sums scaled by up to 2^31) gives way to the float table. */
static float a_scale = 1.0f;

static void check_case(int64_t M, int64_t K, int64_t N, int64_t bs, const fmt_case *c)
{
    int64_t nb = (K + bs - 1) / bs;
    unsigned mask = c->bits == 8 ? 255u : (1u << c->bits) - 1u;
    uint8_t *q = malloc((size_t)(K * N) + 1);
    uint8_t *zp = c->zp ? malloc((size_t)(nb * N)) : NULL;
    float *s = malloc((size_t)(nb * N) * sizeof *s);
    float *a = malloc((size_t)(M * K) * sizeof *a);
    float *y = malloc((size_t)(M * N) * sizeof *y), *y2 = malloc((size_t)(M * N) * sizeof *y2);
    double *ref = malloc((size_t)(M * N) * sizeof *ref);
    float lut[16];
    assert_true(q && s && a && y && y2 && ref && (!c->zp || zp));
    fill_lut(c, lut);
    for (int64_t i = 0; i < K * N; i++)
        q[i] = (uint8_t)(rng_next() & mask);
    for (int64_t i = 0; i < nb * N; i++) {
        s[i] = rng_float(0.001f, 0.05f);
        if (zp)
            zp[i] = (uint8_t)(rng_next() & mask);
    }
    for (int64_t i = 0; i < M * K; i++)
        a[i] = a_scale * rng_float(-2.0f, 2.0f);
    /* 8-bit with zero points: column 0's codes equal its zero points (an
     * all-zero column of an asymmetric weight), whose output is exactly 0
     * in the definition and must be in the kernel, at any zero point */
    bool zero_col = c->bits == 8 && zp;
    for (int64_t k = 0; zero_col && k < K; k++)
        q[k * N] = zp[(k / bs) * N];
    double big = 1.0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) {
                int64_t at = (k / bs) * N + n;
                float z = zp ? value_of(c, lut, zp[at]) : 0.0f;
                float w = (value_of(c, lut, q[k * N + n]) - z) * s[at];
                acc += (double)a[m * K + k] * (double)w;
            }
            ref[m * N + n] = acc;
            big = fmax(big, fabs(acc));
        }
    size_t psize = octk_wofmt_packed_b_size(K, N, bs, c->bits, c->zp);
    uint8_t *packed = aligned_buf(psize);
    octk_wofmt_pack_b(packed, q, zp, s, K, N, bs, c->bits);
    octk_wofmt p = {.M = M, .N = N, .K = K, .bs = bs, .lda = K, .ldy = N, .bits = c->bits,
                    .has_zp = c->zp, .a = a, .y = y, .b = packed};
    memcpy(p.lut, lut, sizeof lut);
    size_t wsize = octk_wofmt_work_size(&p);
    p.work = aligned_buf(wsize);
    memset(p.work, 0xa5, wsize);
    run_tasks(&p, 0);
    double worst = 0;
    for (int64_t i = 0; i < M * N; i++)
        worst = fmax(worst, fabs((double)y[i] - ref[i]));
    for (int64_t m = 0; zero_col && m < M; m++)
        if (y[m * N] != 0.0f)
            fail_msg("%s M=%lld K=%lld bs=%lld: the column of codes equal to their zero points "
                     "gives %g, not 0", c->name, (long long)M, (long long)K, (long long)bs,
                     (double)y[m * N]);
    if (!(worst <= 1e-5 * big))
        fail_msg("%s M=%lld K=%lld N=%lld bs=%lld: max error %g > 1e-5 * %g", c->name,
                 (long long)M, (long long)K, (long long)N, (long long)bs, worst, big);
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

enum { N_CASES = sizeof cases / sizeof *cases };

static void wofmt_matches_twin_every_row_count(void **state)
{
    static const int64_t rows[] = {1, 2, 3, 4, 5, 8, 9, 17};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        for (int c = 0; c < N_CASES; c++)
            check_case(rows[i], 100, 37, 32, &cases[c]);
}

static void wofmt_matches_twin_every_block_size(void **state)
{
    static const int64_t blocks[] = {16, 32, 64, 128, 256, 7};
    static const int64_t ks[] = {77, 200, 1, 259};
    for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++)
        for (size_t k = 0; k < sizeof ks / sizeof *ks; k++)
            for (int c = 0; c < N_CASES; c++) {
                check_case(1, ks[k], 53, blocks[b], &cases[c]);
                check_case(3, ks[k], 5, blocks[b], &cases[c]);
            }
}

static void wofmt_large_activations_stay_finite(void **state)
{
    static const float scales[] = {1e15f, 1e20f, 1e30f};
    for (size_t i = 0; i < sizeof scales / sizeof *scales; i++) {
        a_scale = scales[i];
        for (int c = 0; c < N_CASES; c++)
            check_case(2, 200, 37, 32, &cases[c]);
    }
    a_scale = 1.0f;
}

static void wofmt_rows_are_independent(void **state)
{
    /* a row does not depend on which rows share its tile or row group */
    int64_t K = 96, N = 33, bs = 16;
    for (int c = 0; c < N_CASES; c++) {
        const fmt_case *fc = &cases[c];
        int64_t nb = K / bs;
        uint8_t q[96 * 33], zp[6 * 33];
        float s[6 * 33], a[11 * 96], y11[11 * 33], y1[33];
        unsigned mask = fc->bits == 8 ? 255u : (1u << fc->bits) - 1u;
        for (size_t i = 0; i < sizeof q; i++)
            q[i] = (uint8_t)(rng_next() & mask);
        for (int64_t i = 0; i < nb * N; i++) {
            s[i] = rng_float(0.01f, 0.1f);
            zp[i] = (uint8_t)(rng_next() & mask);
        }
        for (int64_t i = 0; i < 11 * K; i++)
            a[i] = rng_float(-1.0f, 1.0f);
        uint8_t *packed = aligned_buf(octk_wofmt_packed_b_size(K, N, bs, fc->bits, fc->zp));
        octk_wofmt_pack_b(packed, q, fc->zp ? zp : NULL, s, K, N, bs, fc->bits);
        octk_wofmt p = {.M = 11, .N = N, .K = K, .bs = bs, .lda = K, .ldy = N,
                        .bits = fc->bits, .has_zp = fc->zp, .a = a, .y = y11, .b = packed};
        fill_lut(fc, p.lut);
        p.work = aligned_buf(octk_wofmt_work_size(&p));
        run_tasks(&p, 0);
        for (int64_t m = 0; m < 11; m++) {
            octk_wofmt one = p;
            one.M = 1;
            one.a = a + m * K;
            one.y = y1;
            run_tasks(&one, 0);
            for (int64_t n = 0; n < N; n++)
                assert_true(fabsf(y1[n] - y11[m * N + n]) <=
                            1e-5f * fmaxf(1.0f, fabsf(y1[n])));
        }
        free(p.work);
        free(packed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wofmt_matches_twin_every_row_count),
        cmocka_unit_test(wofmt_matches_twin_every_block_size),
        cmocka_unit_test(wofmt_rows_are_independent),
        cmocka_unit_test(wofmt_large_activations_stay_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
