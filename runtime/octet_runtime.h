/*
 * octet_runtime.h: the runtime library compiled models link against
 * (octet_runtime).  Compiled code needs nothing from it to run on one
 * thread; it gives programs an aligned scratch buffer and the optional
 * thread pool that NAME_run_threads splits its kernels over.  Allocation
 * and thread creation happen here, never inside NAME_run.
 *
 * Generated code sees a pool only through the two leading fields of
 * struct octrt_pool (their layout is part of the ABI):
 *   if (pool && pool->n_threads > 1) pool->parallel_for(pool, fn, arg, n);
 *   else fn(arg, 0, n);
 * parallel_for runs fn(arg, begin, end) over a split of [0, n) into at
 * most n_threads contiguous ranges (the calling thread takes one) and
 * returns when all have finished.  The split depends only on n and
 * n_threads.
 */
#ifndef OCTET_RUNTIME_H
#define OCTET_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Allocates `size` bytes (at least 1) aligned to `alignment` (a power of
 * two, at least sizeof(void *)), zero-filled; NULL on failure.  Free with
 * octrt_free. */
void *octrt_alloc(size_t size, size_t alignment);
void octrt_free(void *p);

typedef void (*octrt_task_fn)(void *arg, int64_t begin, int64_t end);

typedef struct octrt_pool octrt_pool;
struct octrt_pool {
    int32_t n_threads;
    void (*parallel_for)(octrt_pool *pool, octrt_task_fn fn, void *arg, int64_t n);
};

/* A pool of n_threads threads in all (the caller counts as one, so
 * n_threads - 1 workers are started); NULL if n_threads < 1 or on
 * failure.  A pool runs one parallel_for at a time. */
octrt_pool *octrt_pool_create(int n_threads);
void octrt_pool_destroy(octrt_pool *pool);

#ifdef __cplusplus
}
#endif
#endif
