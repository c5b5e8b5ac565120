/*
 * octet_runtime.c: the runtime library (see octet_runtime.h): aligned
 * buffers and the thread pool.
 *
 * The pool: n_threads - 1 worker threads watch a generation counter (a
 * short spin, then a condition variable); parallel_for publishes (fn, arg,
 * n), bumps the generation, runs range 0 itself and waits (spin, then the
 * condition variable) until every worker has finished its range.  Range t of [0, n) over T threads is
 * [n*t/T, n*(t+1)/T): it depends only on n and T, so a kernel whose tasks
 * are independent gives the same bytes on any number of threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "octet_runtime.h"

void *octrt_alloc(size_t size, size_t alignment)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)))
        return NULL;
    size_t rounded = size ? (size + alignment - 1) / alignment * alignment : alignment;
    if (rounded < size)
        return NULL;
    void *p = aligned_alloc(alignment, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void octrt_free(void *p)
{
    free(p);
}

typedef struct pool_impl {
    octrt_pool pub;              /* first: generated code reads it */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    pthread_t *workers;
    int n_started;
    atomic_ulong generation;     /* bumped once per parallel_for */
    atomic_int pending;          /* workers still running the current job */
    atomic_int sleepers;         /* workers blocked on work_cv */
    atomic_int stop;
    octrt_task_fn fn;            /* the job, published by the generation bump */
    void *arg;
    int64_t n;
} pool_impl;

typedef struct worker_start {
    pool_impl *pool;
    int index;                   /* 1..n_threads-1; the caller is 0 */
} worker_start;

/* Spins before blocking: a model calls parallel_for a few dozen times per
 * run, microseconds apart, and a condition-variable wake-up costs tens of
 * microseconds; a worker that finds no job within the spin sleeps. */
enum { SPIN = 20000 };

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_range(pool_impl *p, int t)
{
    int64_t n = p->n, T = p->pub.n_threads;
    int64_t begin = n * t / T, end = n * (t + 1) / T;
    if (begin < end)
        p->fn(p->arg, begin, end);
}

static void *worker_main(void *start_arg)
{
    worker_start ws = *(worker_start *)start_arg;
    free(start_arg);
    pool_impl *p = ws.pool;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int spin = 0; g == seen && spin < SPIN && !atomic_load(&p->stop); spin++) {
            cpu_relax();
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (!atomic_load(&p->stop) &&
                   (g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->work_cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            break;
        seen = g;
        run_range(p, ws.index);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

static void pool_parallel_for(octrt_pool *pub, octrt_task_fn fn, void *arg, int64_t n)
{
    pool_impl *p = (pool_impl *)pub;
    if (n <= 0)
        return;
    if (p->n_started == 0 || n == 1) {
        fn(arg, 0, n);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store_explicit(&p->pending, p->n_started, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_range(p, 0);
    for (int spin = 0; spin < SPIN; spin++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

octrt_pool *octrt_pool_create(int n_threads)
{
    if (n_threads < 1 || n_threads > 1024)
        return NULL;
    pool_impl *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->pub.n_threads = n_threads;
    p->pub.parallel_for = pool_parallel_for;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        octrt_pool_destroy(&p->pub);
        return NULL;
    }
    for (int t = 1; t < n_threads; t++) {
        worker_start *ws = malloc(sizeof *ws);
        if (!ws || (ws->pool = p, ws->index = t,
                    pthread_create(&p->workers[t - 1], NULL, worker_main, ws))) {
            free(ws);
            octrt_pool_destroy(&p->pub);
            return NULL;
        }
        p->n_started++;
    }
    return &p->pub;
}

void octrt_pool_destroy(octrt_pool *pub)
{
    if (!pub)
        return;
    pool_impl *p = (pool_impl *)pub;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->n_started; t++)
        pthread_join(p->workers[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->workers);
    free(p);
}
