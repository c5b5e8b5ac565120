/*
 * test_pool.c: the thread pool of runtime/octet_runtime.c.  Every task of
 * every parallel_for runs exactly once, whatever the thread count, the
 * task count and how quickly calls follow each other (the job hand-over is
 * the subtle part: a worker waking late must never take a task of a newer
 * job), and the pool starts and stops cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "octet_runtime.h"

typedef struct job_state {
    atomic_int *runs;     /* per task: how many times it ran */
    int64_t n;
    atomic_int bad_range; /* a range outside [0, n) or empty */
} job_state;

static void count_tasks(void *arg, int64_t begin, int64_t end)
{
    job_state *s = arg;
    if (begin < 0 || end > s->n || begin >= end)
        atomic_fetch_add(&s->bad_range, 1);
    for (int64_t i = begin; i < end && i < s->n && i >= 0; i++)
        atomic_fetch_add(&s->runs[i], 1);
}

/* Runs n tasks on pool and fails unless each ran exactly once, within
 * [0, n); runs holds at least n counters. */
static void run_each_once(octrt_pool *pool, atomic_int *runs, int64_t n, int threads, int call)
{
    for (int64_t i = 0; i < n; i++)
        atomic_store(&runs[i], 0);
    job_state s = {runs, n, 0};
    pool->parallel_for(pool, count_tasks, &s, n);
    assert_int_equal(atomic_load(&s.bad_range), 0);
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&runs[i]) != 1)
            fail_msg("threads %d call %d: task %lld of %lld ran %d times", threads, call,
                     (long long)i, (long long)n, atomic_load(&runs[i]));
}

static void every_task_runs_once_on_any_thread_count(void **state)
{
    (void)state;
    enum { MAX_N = 257, CALLS = 3000 };
    static atomic_int runs[MAX_N];
    for (int threads = 1; threads <= 4; threads++) {
        octrt_pool *pool = octrt_pool_create(threads);
        assert_non_null(pool);
        assert_int_equal(pool->n_threads, threads);
        uint64_t seed = 12345u + (uint64_t)threads;
        for (int call = 0; call < CALLS; call++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            int64_t n = (int64_t)((seed >> 33) % MAX_N); /* 0 .. 256, often small */
            run_each_once(pool, runs, n, threads, call);
        }
        octrt_pool_destroy(pool);
    }
}

/* Millions of tasks (more than the chunk counters could count one by one):
 * every task still runs once, taken from both ends. */
static void millions_of_tasks_run_once(void **state)
{
    (void)state;
    const int64_t n = (1 << 21) + 7;
    atomic_int *runs = calloc((size_t)n, sizeof *runs);
    assert_non_null(runs);
    for (int threads = 2; threads <= 3; threads++) {
        octrt_pool *pool = octrt_pool_create(threads);
        assert_non_null(pool);
        run_each_once(pool, runs, n, threads, 0);
        octrt_pool_destroy(pool);
    }
    free(runs);
}

static void bad_thread_counts_are_refused(void **state)
{
    (void)state;
    assert_null(octrt_pool_create(0));
    assert_null(octrt_pool_create(-3));
    octrt_pool_destroy(NULL); /* a no-op */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_task_runs_once_on_any_thread_count),
        cmocka_unit_test(millions_of_tasks_run_once),
        cmocka_unit_test(bad_thread_counts_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
