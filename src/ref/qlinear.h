/*
 * qlinear.h: what the integer linear ops of the reference share: the
 * matmuls (qlinear.c: MatMulInteger, QLinearMatMul, QGemm,
 * MatMulIntegerToFloat) and the convolutions (qconv.c: ConvInteger,
 * QLinearConv).  The numeric contract is described in qlinear.c; both files
 * build with -ffp-contract=off.
 */
#ifndef OCTET_REF_QLINEAR_H
#define OCTET_REF_QLINEAR_H

#include <math.h>

#include "ref.h"

static inline bool is_8bit_int(ir_dtype dt)
{
    return dt == IR_DT_UINT8 || dt == IR_DT_INT8;
}

static inline int32_t load8(const ir_tensor *t, uint64_t i)
{
    return t->dtype == IR_DT_UINT8 ? ((const uint8_t *)t->data)[i]
                                   : ((const int8_t *)t->data)[i];
}

static inline int32_t wrap_i32(int64_t v)
{
    return (int32_t)(uint32_t)(uint64_t)v;
}

static inline bool is_float_scale(ir_dtype dt)
{
    return dt == IR_DT_FLOAT || dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16;
}

static inline bool is_f32(ir_dtype dt) { return dt == IR_DT_FLOAT; }
static inline bool is_i32(ir_dtype dt) { return dt == IR_DT_INT32; }

/* Rounds v to float type dt (nearest even). */
static inline double round_to(ir_dtype dt, double v)
{
    if (dt == IR_DT_FLOAT16)
        return ref_f16_to_f32(ref_f32_to_f16((float)v));
    if (dt == IR_DT_BFLOAT16)
        return ref_bf16_to_f32(ref_f32_to_bf16((float)v));
    return (float)v;
}

/* M = (sx * sw) / sy in type dt, each operation rounded to dt. */
static inline double requant_multiplier(ir_dtype dt, double sx, double sw,
                                        double sy)
{
    return round_to(dt, round_to(dt, sx * sw) / sy);
}

/* yq = saturate(round_half_to_even((float)acc * (float)m) + zy) for an
 * 8-bit yq; the product is a float32 (see the file comment). */
static inline int64_t requantize(int32_t acc, double m, int64_t zy,
                                 ir_dtype out)
{
    return ref_quantize_int((float)acc * (float)m, zy, out == IR_DT_INT8 ? -128 : 0,
                            out == IR_DT_INT8 ? 127 : 255);
}

static inline void store8(ir_tensor *t, uint64_t i, int64_t v)
{
    if (t->dtype == IR_DT_UINT8)
        ((uint8_t *)t->data)[i] = (uint8_t)v;
    else
        ((int8_t *)t->data)[i] = (int8_t)v;
}

/* Input i's type checked with ok (an undefined type passes). */
oct_status qlin_check_type(ref_infer *inf, int i, bool (*ok)(ir_dtype), const char *what);
/* The scales of QLinearMatMul / QLinearConv (inputs 1, 4 and 6) are
 * required; an omitted one ("" in the model) is reported. */
oct_status qlin_require_scales(oct_ctx *ctx, const ir_node *node, int n_in);
/* Output type of the requantizing ops: y_zero_point's type, or the first
 * input's when the zero point is omitted (as the ONNX reference does). */
ir_dtype qlin_requant_out_type(const ref_infer *inf);
/* Scales positive and finite, as QuantizeLinear requires. */
oct_status qlin_check_scale_values(oct_ctx *ctx, const ir_node *node, int i,
                                   const ir_tensor *t);

#endif
