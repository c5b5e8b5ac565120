/*
 * skernel_twins.h: what the tests of the float32 kernels share
 * (test_skernels.c, test_skernels_eltwise.c): a fixed-seed PRNG, buffers
 * of exact size (for AddressSanitizer) or aligned, running a kernel with
 * its task range split in several ways with garbage in the work buffer
 * (which must give identical bytes), and the tolerance check.  Include
 * after <cmocka.h>.
 */
#ifndef OCTET_TESTS_SKERNEL_TWINS_H
#define OCTET_TESTS_SKERNEL_TWINS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octk.h"

/* ---- fixed-seed PRNG (xorshift64*) --------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

static inline int64_t rng_below(rng *r, int64_t n) { return (int64_t)(rng_next(r) % (uint64_t)n); }

/* uniform in [lo, hi) */
static inline float rng_float(rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rng_next(r) >> 40) / 16777216.0);
}

static inline float *rand_vec(rng *r, size_t n, float lo, float hi)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = rng_float(r, lo, hi);
    return v;
}

/* Outputs get exactly their size (so that ASan sees any write past the
 * end); work and packed blobs 64-byte alignment. */
static inline void *exact_buf(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

static inline void *aligned_buf(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    assert_non_null(p);
    return p;
}

/* ---- running a kernel with its tasks split in different ways ------------- */

typedef struct kernel_ops {
    int64_t (*tasks)(const void *p, int phase);
    void (*run)(const void *p, int phase, int64_t begin, int64_t end);
} kernel_ops;

enum { SPLIT_ONE_CALL, SPLIT_SHUFFLED_TASKS, SPLIT_RANDOM_PIECES, SPLIT_MODES };

/* Runs phase 0 then phase 1, each split according to mode. */
static inline void run_split(const kernel_ops *ops, const void *p, int mode, rng *r)
{
    for (int phase = 0; phase < OCTK_PHASES; phase++) {
        const int64_t n = ops->tasks(p, phase);
        assert_true(n >= 0);
        if (n == 0)
            continue;
        if (mode == SPLIT_ONE_CALL) {
            ops->run(p, phase, 0, n);
        } else if (mode == SPLIT_SHUFFLED_TASKS) {
            int64_t *order = malloc((size_t)n * sizeof *order);
            assert_non_null(order);
            for (int64_t i = 0; i < n; i++)
                order[i] = i;
            for (int64_t i = n - 1; i > 0; i--) {
                int64_t j = rng_below(r, i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            for (int64_t i = 0; i < n; i++)
                ops->run(p, phase, order[i], order[i] + 1);
            free(order);
        } else {
            int64_t end = n;
            while (end > 0) {
                int64_t len = 1 + rng_below(r, end < 7 ? end : 7);
                ops->run(p, phase, end - len, end);
                end -= len;
            }
        }
    }
}

/* Runs the kernel in every split mode into y (y_bytes, prefilled with a
 * 0x7f pattern each time, work with 0xff = NaN garbage) and checks that all
 * modes write identical bytes; y keeps the result of the last mode. */
static inline void run_all_splits(const kernel_ops *ops, const void *p, void *work,
                                  size_t work_bytes, void *y, size_t y_bytes, rng *r)
{
    unsigned char *first = malloc(y_bytes ? y_bytes : 1);
    assert_non_null(first);
    for (int mode = 0; mode < SPLIT_MODES; mode++) {
        memset(y, 0x7f, y_bytes);
        if (work_bytes)
            memset(work, 0xff, work_bytes);
        run_split(ops, p, mode, r);
        if (mode == 0)
            memcpy(first, y, y_bytes);
        else
            assert_memory_equal(first, y, y_bytes);
    }
    free(first);
}

/* |got - want| <= tol * scale, printing the place of the first failure. */
static inline void check_close(const char *what, int64_t idx, float got, double want, double tol)
{
    if (!(fabs((double)got - want) <= tol)) {
        fprintf(stderr, "%s[%lld]: got %.9g want %.9g (tol %.3g)\n", what, (long long)idx,
                (double)got, want, tol);
        fail();
    }
}

#endif
