/*
 * wo_int8.h: the reference of the weight-only INT4 MatMul with int8
 * activations (wo_int8.c).
 */
#ifndef OCTET_REF_WO_INT8_H
#define OCTET_REF_WO_INT8_H

#include <stddef.h>
#include <stdint.h>

/* y[m][n] = the int8-activation product of a [M][K] and the weight
 * (q - z) * s given as codes q[k*N + n] (0..15), zero points z and scales
 * s [(k/bs)*N + n]: the arithmetic of wo_int8.c's comment. */
void ref_wo_int8(const float *a, int64_t M, int64_t K, int64_t N, int64_t bs, const uint8_t *q,
                 const uint8_t *z, const float *s, float *y);

/* The same product computed per row (pass mnb_int8_rows, `--int8-rows`):
 * the arithmetic of wo_int8.c's second comment.  tmp holds
 * ref_wo_int8_rows_tmp(K, N) bytes; K <= OPS_MNB_ROWS_MAX_K. */
size_t ref_wo_int8_rows_tmp(int64_t K, int64_t N);
void ref_wo_int8_rows(const float *a, int64_t M, int64_t K, int64_t N, int64_t bs,
                      const uint8_t *q, const uint8_t *z, const float *s, float *y, void *tmp);

#endif
