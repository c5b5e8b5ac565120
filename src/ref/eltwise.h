/*
 * eltwise.h: private helpers of the element-wise kernels (eltwise_*.c):
 * an N-ary broadcast iterator over an output shape and two's-complement
 * wrapping of integers to a dtype's width (the dtype class tests are
 * ops_dt_is_float / ops_dt_is_int in ops/ops.h).
 */
#ifndef OCTET_REF_ELTWISE_H
#define OCTET_REF_ELTWISE_H

#include <string.h>

#include "ref/ref.h"

#define REF_BCAST_MAX_IN 8

/* Walks the output elements in C order, keeping for each input the element
 * offset that numpy broadcasting maps to the current output element.  An
 * input dim of 1 (or a missing leading dim) has stride 0.  Inputs beyond
 * REF_BCAST_MAX_IN are handled by the callers pairwise. */
typedef struct ref_bcast_iter {
    int rank, n;
    int64_t dims[OPS_MAX_RANK];
    int64_t idx[OPS_MAX_RANK];
    int64_t stride[REF_BCAST_MAX_IN][OPS_MAX_RANK];
    uint64_t off[REF_BCAST_MAX_IN];
} ref_bcast_iter;

/* Input shapes must broadcast to `out` (checked by the shape rule). */
static inline void ref_bcast_init(ref_bcast_iter *it, const ops_shape *out,
                                  int n, const ops_shape *const *in)
{
    memset(it, 0, sizeof *it);
    it->rank = out->rank;
    it->n = n;
    for (int d = 0; d < out->rank; d++)
        it->dims[d] = out->dims[d];
    for (int k = 0; k < n; k++) {
        int64_t s = 1;
        for (int d = out->rank - 1; d >= 0; d--) {
            int j = d - (out->rank - in[k]->rank);
            if (j < 0)
                continue;
            it->stride[k][d] = in[k]->dims[j] == 1 ? 0 : s;
            s *= in[k]->dims[j];
        }
    }
}

/* Advances to the next output element (no-op past the end). */
static inline void ref_bcast_next(ref_bcast_iter *it)
{
    for (int d = it->rank - 1; d >= 0; d--) {
        if (++it->idx[d] < it->dims[d]) {
            for (int k = 0; k < it->n; k++)
                it->off[k] += (uint64_t)it->stride[k][d];
            return;
        }
        for (int k = 0; k < it->n; k++)
            it->off[k] -= (uint64_t)(it->stride[k][d] * (it->dims[d] - 1));
        it->idx[d] = 0;
    }
}

/* Reduces v modulo 2^bits of dt (two's complement for signed types, plain
 * modulo for unsigned ones); bool becomes v != 0.  The result is in range
 * for ops_set_i64.  64-bit types keep the bit pattern. */
static inline int64_t ref_wrap_int(ir_dtype dt, int64_t v)
{
    const ir_dtype_traits *tr = ir_dtype_info(dt);
    if (tr->kind == IR_DK_BOOL)
        return v != 0;
    unsigned bits = tr->bits;
    if (bits >= 64 || bits == 0)
        return v;
    uint64_t mask = ((uint64_t)1 << bits) - 1, u = (uint64_t)v & mask;
    if (tr->kind == IR_DK_SINT && (u >> (bits - 1)))
        return (int64_t)(u | ~mask);
    return (int64_t)u;
}

#endif
