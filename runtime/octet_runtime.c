/*
 * octet_runtime.c: the runtime library (see octet_runtime.h).
 */
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
