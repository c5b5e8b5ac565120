/*
 * qlinear.h: what the integer linear ops of the reference share: the
 * matmuls (qlinear.c: MatMulInteger, QLinearMatMul, QGemm,
 * MatMulIntegerToFloat) and the convolutions (qconv.c: ConvInteger,
 * QLinearConv): 8-bit loads and stores and int32 wrap-around.  The numeric
 * contract is described in qlinear.c; the requantization step itself is
 * ops_requantize (ops/ops.h).  Both files build with -ffp-contract=off.
 */
#ifndef OCTET_REF_QLINEAR_H
#define OCTET_REF_QLINEAR_H

#include <math.h>

#include "ref/ref.h"

static inline int32_t load8(const ir_tensor *t, uint64_t i)
{
    return t->dtype == IR_DT_UINT8 ? ((const uint8_t *)t->data)[i]
                                   : ((const int8_t *)t->data)[i];
}

static inline int32_t wrap_i32(int64_t v)
{
    return (int32_t)(uint32_t)(uint64_t)v;
}

static inline void store8(ir_tensor *t, uint64_t i, int64_t v)
{
    if (t->dtype == IR_DT_UINT8)
        ((uint8_t *)t->data)[i] = (uint8_t)v;
    else
        ((int8_t *)t->data)[i] = (int8_t)v;
}

#endif
