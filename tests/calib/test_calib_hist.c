/*
 * test_calib_hist.c: the streaming calibration summary and range methods.
 * Expected values come from exact computations on the raw data in the test
 * (sorting, counting), never from the histogram code itself.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "passes/calib.h"

/* Deterministic normal samples (Box-Muller over a fixed LCG). */
static uint64_t rng = 12345;
static double uniform01(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}
static float normal(void)
{
    return (float)(sqrt(-2 * log(uniform01())) * cos(6.283185307179586 * uniform01()));
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void merge_of_two_streams_equals_one_stream(void **state)
{
    enum { N = 5000 };
    static float a[N], b[N];
    for (int i = 0; i < N; i++) {
        a[i] = normal() * 0.01f;         /* narrow: small bin width */
        b[i] = normal() * 30.0f + 5.0f;  /* wide: forces many doublings */
    }
    static calib_hist one, ha, hb;
    calib_hist_init(&one);
    calib_hist_init(&ha);
    calib_hist_init(&hb);
    calib_hist_add(&one, a, N);
    calib_hist_add(&one, b, N);
    calib_hist_add(&ha, a, N);
    calib_hist_add(&hb, b, N);
    calib_hist_merge(&ha, &hb);
    assert_int_equal(ha.count, one.count);
    assert_true(ha.min == one.min && ha.max == one.max);
    assert_int_equal(ha.width_log2, one.width_log2);
    assert_memory_equal(ha.bins, one.bins, sizeof one.bins);

    /* and in the other order */
    calib_hist_init(&ha);
    calib_hist_add(&ha, a, N);
    calib_hist_merge(&hb, &ha);
    assert_memory_equal(hb.bins, one.bins, sizeof one.bins);
}

static void every_value_lands_in_the_bin_that_contains_it(void **state)
{
    float x[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.75f, -0.001f, 3.0f};
    static calib_hist h;
    calib_hist_init(&h);
    calib_hist_add(&h, x, 7);
    double w = ldexp(1.0, h.width_log2);
    for (int i = 0; i < 7; i++) {
        int bin = (int)floor(x[i] / w) + CALIB_BINS / 2;
        assert_true(h.bins[bin] > 0);
    }
    assert_true(3.0 < w * CALIB_BINS / 2); /* range covers the max */
    assert_true(3.0 >= w * CALIB_BINS / 4); /* and is the tightest that does */
    uint64_t total = 0;
    for (int i = 0; i < CALIB_BINS; i++)
        total += h.bins[i];
    assert_int_equal(total, 7);
}

static void nonfinite_values_are_counted_not_binned(void **state)
{
    float x[] = {NAN, INFINITY, -INFINITY, 2.0f};
    static calib_hist h;
    calib_hist_init(&h);
    calib_hist_add(&h, x, 4);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.nonfinite, 3);
    assert_true(h.min == 2.0 && h.max == 2.0);
}

static void minmax_range_always_contains_zero(void **state)
{
    float x[] = {2.0f, 3.0f, 5.0f};
    static calib_hist h;
    calib_hist_init(&h);
    calib_hist_add(&h, x, 3);
    calib_range r = calib_choose_range(&h, CALIB_MINMAX, CALIB_U8_ASYM, 0);
    assert_true(r.lo == 0 && r.hi == 5);
    r = calib_choose_range(&h, CALIB_MINMAX, CALIB_S8_SYM, 0);
    assert_true(r.lo == -5 && r.hi == 5);
}

static void percentile_matches_sorted_data_within_a_bin(void **state)
{
    enum { N = 20000 };
    static float x[N], sorted[N];
    for (int i = 0; i < N; i++)
        x[i] = sorted[i] = normal();
    qsort(sorted, N, sizeof *sorted, cmp_float);
    static calib_hist h;
    calib_hist_init(&h);
    calib_hist_add(&h, x, N);
    double w = ldexp(1.0, h.width_log2);
    calib_range r = calib_choose_range(&h, CALIB_PERCENTILE, CALIB_U8_ASYM, 99.0);
    assert_true(fabs(r.hi - sorted[(int)(0.99 * N)]) <= 2 * w);
    assert_true(fabs(r.lo - sorted[(int)(0.01 * N)]) <= 2 * w);
}

static void entropy_clips_rare_outliers(void **state)
{
    enum { N = 100000 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = normal();
    x[0] = 60.0f; /* one outlier far out */
    static calib_hist h;
    calib_hist_init(&h);
    calib_hist_add(&h, x, N);
    calib_range r = calib_choose_range(&h, CALIB_ENTROPY, CALIB_S8_SYM, 0);
    assert_true(r.hi < 20.0);  /* far below the outlier */
    assert_true(r.hi > 2.0);   /* but keeps the bulk of a unit normal */
    assert_true(r.lo == -r.hi);
}

static void mse_range_beats_minmax_on_its_own_error(void **state)
{
    enum { N = 50000 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = normal();
    x[0] = 40.0f;
    static calib_hist h;
    calib_hist_init(&h);
    calib_hist_add(&h, x, N);
    calib_range mm = calib_choose_range(&h, CALIB_MINMAX, CALIB_S8_SYM, 0);
    calib_range ms = calib_choose_range(&h, CALIB_MSE, CALIB_S8_SYM, 0);
    /* Exact squared error on the raw data with each range. */
    double err[2] = {0, 0};
    calib_range rs[2] = {mm, ms};
    for (int k = 0; k < 2; k++) {
        double s = calib_qparams_for(rs[k], CALIB_S8_SYM).scale;
        for (int i = 0; i < N; i++) {
            double q = fmin(fmax(nearbyint(x[i] / s), -127), 127) * s;
            err[k] += (x[i] - q) * (x[i] - q);
        }
    }
    assert_true(ms.hi < mm.hi);
    assert_true(err[1] < err[0]);
}

static void clipped_fraction_counts_values_outside(void **state)
{
    enum { N = 10000 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)i / N; /* uniform on [0, 1) */
    static calib_hist h;
    calib_hist_init(&h);
    calib_hist_add(&h, x, N);
    calib_range r = {0, 0.75};
    assert_true(fabs(calib_clipped_fraction(&h, r) - 0.25) < 0.002);
    r.hi = 1.0;
    assert_true(calib_clipped_fraction(&h, r) == 0);
}

static void constant_or_zero_tensor_gets_a_valid_scale(void **state)
{
    calib_range zero = {0, 0};
    calib_qparams qp = calib_qparams_for(zero, CALIB_U8_ASYM);
    assert_true(qp.scale > 0 && isfinite(qp.scale));
    assert_int_equal(qp.zero_point, 0);
    qp = calib_qparams_for(zero, CALIB_S8_SYM);
    assert_true(qp.scale > 0);
    qp = calib_qparams_for(zero, CALIB_FP8_E4M3);
    assert_true(qp.scale > 0);

    float five[] = {5.0f, 5.0f};
    static calib_hist h;
    calib_hist_init(&h);
    calib_hist_add(&h, five, 2);
    calib_range r = calib_choose_range(&h, CALIB_MINMAX, CALIB_U8_ASYM, 0);
    qp = calib_qparams_for(r, CALIB_U8_ASYM);
    assert_true(qp.scale == (float)(5.0 / 255));
    assert_int_equal(qp.zero_point, 0);
}

static void asymmetric_zero_point_rounds_half_to_even(void **state)
{
    /* lo = -2.5 s and hi chosen so scale is exactly 1: zp = rint(2.5) = 2 */
    calib_range r = {-2.5, 252.5};
    calib_qparams qp = calib_qparams_for(r, CALIB_U8_ASYM);
    assert_true(qp.scale == 1.0f);
    assert_int_equal(qp.zero_point, 2);
    r.lo = -3.5;
    r.hi = 251.5;
    assert_int_equal(calib_qparams_for(r, CALIB_U8_ASYM).zero_point, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(merge_of_two_streams_equals_one_stream),
        cmocka_unit_test(every_value_lands_in_the_bin_that_contains_it),
        cmocka_unit_test(nonfinite_values_are_counted_not_binned),
        cmocka_unit_test(minmax_range_always_contains_zero),
        cmocka_unit_test(percentile_matches_sorted_data_within_a_bin),
        cmocka_unit_test(entropy_clips_rare_outliers),
        cmocka_unit_test(mse_range_beats_minmax_on_its_own_error),
        cmocka_unit_test(clipped_fraction_counts_values_outside),
        cmocka_unit_test(constant_or_zero_tensor_gets_a_valid_scale),
        cmocka_unit_test(asymmetric_zero_point_rounds_half_to_even),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
