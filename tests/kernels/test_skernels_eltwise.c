/*
 * test_skernels_eltwise.c: the float32 element-wise kernels of octk.h
 * (sunary, ssoftmax; split from test_skernels.c) against plain scalar
 * twins written here straight from their definitions, in double.
 *
 * Tolerance: |y - ref| <= 1e-6 |ref| + 2e-38 (the absolute part only
 * matters in the subnormal range), and Inf / NaN / the sign of 0 must
 * match exactly.  Every kernel is also run with its task range split in
 * several ways, which must give identical bytes (skernel_twins.h).
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

/* ---- sunary ------------------------------------------------------------------- */

static int64_t sunary_tasks_v(const void *p, int ph) { return octk_sunary_tasks(p, ph); }
static void sunary_run_v(const void *p, int ph, int64_t b, int64_t e) { octk_sunary_run(p, ph, b, e); }
static const kernel_ops sunary_ops = {sunary_tasks_v, sunary_run_v};

static double unary_ref(int op, float x, float alpha, float beta)
{
    const double d = x;
    switch (op) {
    case OCTK_EXP: return exp(d);
    case OCTK_SIGMOID: return 1.0 / (1.0 + exp(-d));
    case OCTK_TANH: return tanh(d);
    default: return fmax(0.0, fmin(1.0, (double)alpha * d + (double)beta));
    }
}

/* Compares one result with the twin: NaN for NaN, Inf and the sign of 0
 * exactly (the twin rounded to float), else 1e-6 relative + 2e-38. */
static void check_func(const char *what, int64_t i, float x, float got, double want)
{
    if (isnan(x) || isnan(want)) {
        if (!isnan(got)) {
            fprintf(stderr, "%s[%lld] x=%g: got %g want NaN\n", what, (long long)i, (double)x,
                    (double)got);
            fail();
        }
        return;
    }
    const float wantf = (float)want;
    if (isinf(wantf) || wantf == 0.0f) {
        if (isinf(wantf) ? got != wantf : !(fabs((double)got) <= 2e-38)) {
            fprintf(stderr, "%s[%lld] x=%g: got %g want %g\n", what, (long long)i, (double)x,
                    (double)got, want);
            fail();
        }
        if (wantf == 0.0f && want == 0.0 && got == 0.0f && !signbit(got) != !signbit(want)) {
            fprintf(stderr, "%s[%lld] x=%g: sign of 0 differs\n", what, (long long)i, (double)x);
            fail();
        }
        return;
    }
    check_close(what, i, got, want, 1e-6 * fabs(want) + 2e-38);
}

static void sunary_check(rng *r, int op, const float *x, int64_t n, float alpha, float beta,
                         int in_place)
{
    float *y = exact_buf((size_t)n * sizeof(float));
    float *xin = aligned_buf((size_t)n * sizeof(float));
    memcpy(xin, x, (size_t)n * sizeof(float));
    octk_sunary p = {.n = n, .op = op, .alpha = alpha, .beta = beta, .x = xin, .y = y};
    assert_int_equal(octk_sunary_work_size(&p), 0);
    run_all_splits(&sunary_ops, &p, NULL, 0, y, (size_t)n * sizeof(float), r);
    if (in_place) {
        float *y2 = aligned_buf((size_t)n * sizeof(float));
        memcpy(y2, x, (size_t)n * sizeof(float));
        p.x = y2;
        p.y = y2;
        run_split(&sunary_ops, &p, SPLIT_RANDOM_PIECES, r);
        assert_memory_equal(y2, y, (size_t)n * sizeof(float));
        free(y2);
    }
    static const char *names[] = {"", "exp", "sigmoid", "tanh", "hardsigmoid"};
    for (int64_t i = 0; i < n; i++)
        check_func(names[op], i, x[i], y[i], unary_ref(op, x[i], alpha, beta));
    free(y), free(xin);
}

/* Random values over several ranges plus the special and threshold ones. */
static float *unary_inputs(rng *r, int64_t *n_out)
{
    static const float special[] = {
        0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1e-30f, -1e-30f, 1e-40f, -1e-40f,
        1e-8f, -1e-8f, 0.5f, -0.5f, 0.625f, -0.625f, 0.62499994f, -0.62499994f, 1.0f, -1.0f,
        9.0f, -9.0f, 10.0f, -10.0f, 20.0f, -20.0f, 87.0f, -87.0f, 87.33f, -87.34f, 88.0f,
        -88.0f, 88.72f, 88.7228f, 88.73f, 89.0f, -89.0f, 100.0f, -100.0f, -103.0f, -103.97f,
        -104.0f, -105.0f, 1e10f, -1e10f, 3.4e38f, -3.4e38f};
    const int64_t ns = (int64_t)(sizeof special / sizeof special[0]);
    const int64_t n = ns + 4 * 1000 + 13;
    float *x = malloc((size_t)n * sizeof(float));
    assert_non_null(x);
    memcpy(x, special, sizeof special);
    for (int64_t i = ns; i < n; i++) {
        switch ((i - ns) % 4) {
        case 0: x[i] = rng_float(r, -1.0f, 1.0f); break;
        case 1: x[i] = rng_float(r, -12.0f, 12.0f); break;
        case 2: x[i] = rng_float(r, -110.0f, 95.0f); break;
        default: x[i] = ldexpf(rng_float(r, -1.0f, 1.0f), (int)rng_below(r, 40) - 35); break;
        }
    }
    *n_out = n;
    return x;
}

static void sunary_exp_matches_twin_with_overflow_underflow_nan(void **state)
{
    (void)state;
    rng r = {0x5eed0006u};
    int64_t n;
    float *x = unary_inputs(&r, &n);
    sunary_check(&r, OCTK_EXP, x, n, 0, 0, 1);
    free(x);
}

static void sunary_sigmoid_matches_twin(void **state)
{
    (void)state;
    rng r = {0x5eed0007u};
    int64_t n;
    float *x = unary_inputs(&r, &n);
    sunary_check(&r, OCTK_SIGMOID, x, n, 0, 0, 1);
    free(x);
}

static void sunary_tanh_matches_twin_and_keeps_sign_of_zero(void **state)
{
    (void)state;
    rng r = {0x5eed0008u};
    int64_t n;
    float *x = unary_inputs(&r, &n);
    sunary_check(&r, OCTK_TANH, x, n, 0, 0, 1);
    free(x);
}

static void sunary_hardsigmoid_matches_twin(void **state)
{
    (void)state;
    rng r = {0x5eed0009u};
    int64_t n;
    float *x = unary_inputs(&r, &n);
    sunary_check(&r, OCTK_HARDSIGMOID, x, n, 0.2f, 0.5f, 1);
    sunary_check(&r, OCTK_HARDSIGMOID, x, n, 1.0f / 6.0f, 0.5f, 0);
    free(x);
}

static void sunary_large_n_splits_identically(void **state)
{
    (void)state;
    rng r = {0x5eed000au};
    const int64_t n = 3 * 4096 + 1001;
    float *x = rand_vec(&r, (size_t)n, -30, 30);
    for (int op = OCTK_EXP; op <= OCTK_HARDSIGMOID; op++)
        sunary_check(&r, op, x, n, 0.3f, 0.4f, 0);
    free(x);
}

/* ---- ssoftmax ---------------------------------------------------------------- */

static int64_t ssm_tasks_v(const void *p, int ph) { return octk_ssoftmax_tasks(p, ph); }
static void ssm_run_v(const void *p, int ph, int64_t b, int64_t e) { octk_ssoftmax_run(p, ph, b, e); }
static const kernel_ops ssm_ops = {ssm_tasks_v, ssm_run_v};

static void ssoftmax_check(rng *r, const float *x, int64_t rows, int64_t cols, int log_)
{
    const size_t bytes = (size_t)(rows * cols) * sizeof(float);
    float *y = exact_buf(bytes);
    octk_ssoftmax p = {.rows = rows, .cols = cols, .log = log_, .x = x, .y = y};
    assert_int_equal(octk_ssoftmax_work_size(&p), 0);
    run_all_splits(&ssm_ops, &p, NULL, 0, y, bytes, r);
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * cols;
        double m = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < cols; j++)
            m = fmax(m, xr[j]);
        /* d = x - max is the float subtraction of the definition: its
         * rounding (|d| ulp / 2) is the input of exp, not a kernel error */
        for (int64_t j = 0; j < cols; j++)
            sum += exp((double)(xr[j] - (float)m));
        for (int64_t j = 0; j < cols; j++) {
            const double d = (double)(xr[j] - (float)m);
            const double want = log_ ? d - log(sum) : exp(d) / sum;
            if (log_) {
                if (isnan(want))   /* a row of -Inf only */
                    assert_true(isnan(y[i * cols + j]));
                else if (isinf(want))
                    assert_true(y[i * cols + j] == (float)want);
                else   /* 1e-6 relative to max(1, |ref|): y near 0 is a difference */
                    check_close("logsoftmax", i * cols + j, y[i * cols + j], want,
                                1e-6 * fmax(1.0, fabs(want)));
            } else {
                check_func("softmax", i * cols + j, xr[j], y[i * cols + j], want);
            }
        }
    }
    free(y);
}

static void ssoftmax_matches_twin_with_inf_and_large_values(void **state)
{
    (void)state;
    rng r = {0x5eed000bu};
    static const int64_t cols_list[] = {1, 2, 3, 7, 8, 15, 16, 17, 33, 100, 1000, 5000};
    for (size_t c = 0; c < sizeof cols_list / sizeof cols_list[0]; c++) {
        const int64_t cols = cols_list[c], rows = cols >= 1000 ? 3 : 31;
        float *x = rand_vec(&r, (size_t)(rows * cols), -10, 10);
        for (int64_t i = 0; i < rows; i++) {
            float *xr = x + i * cols;
            switch (i % 5) {
            case 1: xr[rng_below(&r, cols)] = 1e4f; break;          /* one dominates */
            case 2: xr[rng_below(&r, cols)] = -INFINITY; break;      /* a zero term */
            case 3:
                for (int64_t j = 0; j < cols; j++)
                    xr[j] = xr[j] * 10.0f + 1e3f;                   /* large values */
                break;
            case 4:
                for (int64_t j = 0; j < cols; j += 2)
                    xr[j] = -3e38f;
                break;
            default: break;
            }
        }
        ssoftmax_check(&r, x, rows, cols, 0);
        ssoftmax_check(&r, x, rows, cols, 1);
        free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sunary_exp_matches_twin_with_overflow_underflow_nan),
        cmocka_unit_test(sunary_sigmoid_matches_twin),
        cmocka_unit_test(sunary_tanh_matches_twin_and_keeps_sign_of_zero),
        cmocka_unit_test(sunary_hardsigmoid_matches_twin),
        cmocka_unit_test(sunary_large_n_splits_identically),
        cmocka_unit_test(ssoftmax_matches_twin_with_inf_and_large_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
