/*
 * sgemm.h: the reference interpreter's float32 matrix product, used by
 * Conv (after im2col), ConvTranspose, Gemm and MatMul.  Cache-blocked with
 * packed panels and a 6x16 register-blocked micro-kernel (AVX2+FMA
 * intrinsics when the build targets AVX2, plain C otherwise).  The plain C
 * kernel is always compiled so tests can compare the two.
 *
 * Rounding: each output is a float32 sum of float32 products accumulated in
 * K order within a block of REF_SGEMM_KC terms, blocks added in order; with
 * FMA each product is not rounded separately.  Results therefore differ from
 * a naive double-precision sum by a few ulp times sqrt(K); callers compare
 * with a relative tolerance, never bit for bit.
 */
#ifndef OCTET_REF_SGEMM_H
#define OCTET_REF_SGEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* A strided read-only matrix: element (i, j) is p[i * rs + j * cs].  A
 * transposed operand is the same memory with rs and cs swapped. */
typedef struct ref_fmat {
    const float *p;
    int64_t rs, cs;
} ref_fmat;

/* Which micro-kernel to run: the fastest the build supports, or the plain
 * C one (for tests and for comparison). */
typedef enum ref_sgemm_kernel {
    REF_SGEMM_FAST = 0,
    REF_SGEMM_PORTABLE = 1,
} ref_sgemm_kernel;

/* C (M x N, row stride ldc, contiguous rows) = bias + A (M x K) * B (K x N),
 * or C += bias + A * B when accumulate is set; bias is row_bias[i] for row
 * i, or 0 when row_bias is NULL (the sum starts from it, so it costs no
 * extra pass).  K == 0 gives just the bias (added to C if accumulating).  Packing buffers come from ctx; returns
 * OCT_EINTERNAL (with a diagnostic) if they cannot be allocated, in which
 * case C is unspecified.  M, N, K >= 0. */
oct_status ref_sgemm(oct_ctx *ctx, int64_t M, int64_t N, int64_t K,
                     ref_fmat A, ref_fmat B, float *C, int64_t ldc,
                     bool accumulate, const float *row_bias);
oct_status ref_sgemm_with(oct_ctx *ctx, ref_sgemm_kernel kernel, int64_t M,
                          int64_t N, int64_t K, ref_fmat A, ref_fmat B,
                          float *C, int64_t ldc, bool accumulate,
                          const float *row_bias);

#endif
