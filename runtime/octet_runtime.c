/*
 * octet_runtime.c: the runtime library (see octet_runtime.h): aligned
 * buffers and the thread pool.
 *
 * The pool: n_threads - 1 worker threads watch a generation counter (a
 * short spin, then a condition variable); parallel_for publishes (fn, arg,
 * n), bumps the generation, and every thread, the caller included, takes
 * chunks of tasks until none is left; the caller then waits for the
 * workers' last chunks.  The caller takes chunks from the front, the
 * workers from the back: with two threads each keeps to its own end of
 * the task range, so when consecutive kernels number their tasks in the
 * same order (pixel rows first), a thread mostly reads what it wrote
 * itself, from its own cache, while the split stays dynamic.  Kernel tasks
 * write disjoint bytes that do not depend on which thread runs them, so
 * any number of threads, and any interleaving, gives the same output.
 */
#include <pthread.h>
#include <sched.h>
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
    pthread_mutex_t mu;          /* publishing a job, joining one, sleeping */
    pthread_cond_t work_cv;
    pthread_t *workers;
    int n_started;
    atomic_ulong generation;     /* bumped once per parallel_for */
    atomic_int active;           /* workers inside a job */
    atomic_int sleepers;         /* workers blocked on work_cv */
    atomic_int stop;
    /* the chunks taken: job number (low JOB_BITS of the generation) in the
     * high bits, then the number taken from the front and the number taken
     * from the back (CHUNK_BITS each), so a worker still holding an old job
     * can never take a chunk of a newer one */
    atomic_ullong next;
    octrt_task_fn fn;            /* the job (written under mu) */
    void *arg;
    int64_t n, chunk;
} pool_impl;

enum { CHUNK_BITS = 20, JOB_BITS = 24 };
#define CHUNK_MASK ((1ull << CHUNK_BITS) - 1)

/* A job as a worker copied it (under mu): n tasks in n_chunks chunks of
 * `chunk` tasks (the last one shorter). */
typedef struct job {
    unsigned long long id;
    octrt_task_fn fn;
    void *arg;
    int64_t n, chunk, n_chunks;
} job;

/* Spins before blocking: a model calls parallel_for a few dozen times per
 * run, microseconds apart, and a condition-variable wake-up costs tens of
 * microseconds; a worker that finds no job within the spin sleeps. */
enum { SPIN = 4000 };

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Takes chunks of job j, from the front or the back, until none is left
 * or the job changed. */
static void take_tasks(pool_impl *p, const job *j, int from_back)
{
    unsigned long long v = atomic_load_explicit(&p->next, memory_order_relaxed);
    for (;;) {
        if (v >> (2 * CHUNK_BITS) != j->id)
            return;
        int64_t front = (int64_t)((v >> CHUNK_BITS) & CHUNK_MASK), back = (int64_t)(v & CHUNK_MASK);
        if (front + back >= j->n_chunks)
            return;
        unsigned long long taken = from_back ? v + 1 : v + (1ull << CHUNK_BITS);
        if (!atomic_compare_exchange_weak_explicit(&p->next, &v, taken, memory_order_relaxed,
                                                   memory_order_relaxed))
            continue; /* v now holds the current value */
        int64_t c = from_back ? j->n_chunks - 1 - back : front;
        int64_t begin = c * j->chunk, end = begin + j->chunk < j->n ? begin + j->chunk : j->n;
        j->fn(j->arg, begin, end);
        v = atomic_load_explicit(&p->next, memory_order_relaxed);
    }
}

static unsigned long long job_id(unsigned long generation)
{
    return generation & ((1ull << JOB_BITS) - 1);
}

static void *worker_main(void *arg)
{
    pool_impl *p = arg;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int spin = 0; g == seen && spin < SPIN && !atomic_load(&p->stop); spin++) {
            cpu_relax();
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        pthread_mutex_lock(&p->mu);
        if (g == seen) {
            atomic_fetch_add(&p->sleepers, 1);
            while (!atomic_load(&p->stop) &&
                   (g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->work_cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
        }
        if (atomic_load(&p->stop)) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        g = atomic_load_explicit(&p->generation, memory_order_acquire);
        job j = {job_id(g), p->fn, p->arg, p->n, p->chunk, (p->n + p->chunk - 1) / p->chunk};
        atomic_fetch_add_explicit(&p->active, 1, memory_order_acq_rel);
        pthread_mutex_unlock(&p->mu);
        seen = g;
        take_tasks(p, &j, 1);
        atomic_fetch_sub_explicit(&p->active, 1, memory_order_acq_rel);
    }
    return NULL;
}

/* Tasks are handed out in chunks from a shared counter, the calling thread
 * taking its share: if a worker is slow to wake (or the machine has fewer
 * free cores than threads), the caller does the work instead of waiting.
 * Which thread runs a task never changes what the task writes. */
static void pool_parallel_for(octrt_pool *pub, octrt_task_fn fn, void *arg, int64_t n)
{
    pool_impl *p = (pool_impl *)pub;
    if (n <= 0)
        return;
    if (p->n_started == 0 || n == 1) {
        fn(arg, 0, n);
        return;
    }
    /* about 8 chunks a thread: at most 8 * 1024 + 1 in all, well inside
     * CHUNK_BITS (or n of one task each, when n is smaller) */
    int64_t chunk = n / (8 * (int64_t)p->pub.n_threads);
    if (chunk < 1)
        chunk = 1;
    pthread_mutex_lock(&p->mu);
    unsigned long g = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    job j = {job_id(g), fn, arg, n, chunk, (n + chunk - 1) / chunk};
    atomic_store_explicit(&p->next, j.id << (2 * CHUNK_BITS), memory_order_relaxed);
    atomic_store_explicit(&p->generation, g, memory_order_release);
    if (atomic_load(&p->sleepers) > 0)
        pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    take_tasks(p, &j, 0);
    /* wait for the workers still running a chunk */
    for (int spin = 0; atomic_load_explicit(&p->active, memory_order_acquire) > 0; spin++) {
        if (spin < SPIN)
            cpu_relax();
        else
            sched_yield();
    }
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
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        octrt_pool_destroy(&p->pub);
        return NULL;
    }
    for (int t = 1; t < n_threads; t++) {
        if (pthread_create(&p->workers[t - 1], NULL, worker_main, p)) {
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
    free(p->workers);
    free(p);
}
