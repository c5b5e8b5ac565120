/*
 * movement.h: element-moving helpers shared by the data-movement kernels
 * (movement.c defines them; layout.c uses them too).  They work for every
 * dtype: elements of 8 bits or more move as raw bytes, sub-byte types field
 * by field in their packed layout, STRING elements are deep-copied into the
 * context's arena.
 */
#ifndef OCTET_REF_MOVEMENT_H
#define OCTET_REF_MOVEMENT_H

#include "ref/ref.h"

/* Copies n consecutive elements src[si..] to dst[di..] (same dtype).  Fails
 * only when copying strings runs out of memory (diagnostic recorded). */
bool ref_copy_elems(oct_ctx *ctx, ir_tensor *dst, uint64_t di,
                    const ir_tensor *src, uint64_t si, uint64_t n);

/* Fills dst (rank `rank`, dims odims, C order) with the src elements at
 * base + sum_k idx[k] * sstride[k] (strides in elements, may be negative or
 * 0; rank at most 2 * OPS_MAX_RANK).  OCT_EINTERNAL only when copying
 * strings runs out of memory. */
oct_status ref_strided_gather(oct_ctx *ctx, ir_tensor *dst,
                              const ir_tensor *src, int rank,
                              const int64_t *odims, const int64_t *sstride,
                              int64_t base);

#endif
