/*
 * octet_runtime.h: the runtime library compiled models link against
 * (octet_runtime).  Generated code does not call into it yet (every kernel
 * is inlined into the model); it gives programs that run compiled models a
 * correctly aligned scratch buffer.  Allocation happens here, never inside
 * NAME_run.
 */
#ifndef OCTET_RUNTIME_H
#define OCTET_RUNTIME_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Allocates `size` bytes (at least 1) aligned to `alignment` (a power of
 * two, at least sizeof(void *)), zero-filled; NULL on failure.  Free with
 * octrt_free. */
void *octrt_alloc(size_t size, size_t alignment);
void octrt_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
