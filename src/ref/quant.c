/*
 * quant.c: reference kernels of QuantizeLinear,
 * DequantizeLinear and DynamicQuantizeLinear (every opset from 10 to 25).
 *
 * Granularity is resolved once (ops_quant_gran_resolve) from the shapes of x,
 * the scale and the zero point, for the static shape rule (dims may be
 * unknown) and again in the kernels:
 *   per-tensor  scale has one element (rank 0, or any rank with one element);
 *   per-axis    scale is 1-D, its length the extent of x along `axis`
 *               (default 1, negative counts from the back);
 *   blocked     block_size B > 0 (opset 21+): scale has x's rank, equal dims
 *               except along `axis`, where it has ceil(D / B) entries.
 * The zero point, when given, has the scale's shape (or both are single
 * elements).  Scales must be positive and finite (the ONNX spec requires a
 * positive scale): a scale that is not is a diagnostic on the scale input,
 * checked in the shape rule when the scale is a known constant and again by
 * the kernel.
 *
 * Numeric contract (docs/design.md), implemented below:
 *   QuantizeLinear, integer outputs:
 *     q = saturate(round_half_to_even(x / scale) + zero_point)
 *   QuantizeLinear, float8 outputs: q = cast(x / scale [+ zero_point]),
 *     round to nearest even; saturate=1 clamps out-of-range values to the
 *     largest finite value; NaN stays NaN.  float4 E2M1 always saturates
 *     (it has no Inf or NaN).  The division x / scale is done in the type
 *     chosen by ops_quantize_div_type (float32 for float32 x and scale), never
 *     as a multiplication by the reciprocal.
 *   DequantizeLinear: y = (x - zero_point) * scale.
 *
 * The shape and type rules of these ops are in src/ops/shape_quant.c.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/qformat.h"
#include "ref/ref.h"

/* ---- granularity --------------------------------------------------------- */

/* Index into the scale / zero point for x element (o, a, i) of the
 * [outer, dim, inner] view. */
static inline uint64_t quant_param_index(const ops_quant_gran *g, uint64_t o,
                                         uint64_t a, uint64_t i)
{
    switch (g->kind) {
    case QG_AXIS:
        return a;
    case QG_BLOCK:
        return (o * g->sdim + a / (uint64_t)g->block) * g->inner + i;
    default:
        return 0;
    }
}

/* ---- QuantizeLinear -------------------------------------------------------- */

/* Rounds v to the division type dt (round to nearest even). */
static inline double round_to_type(ir_dtype dt, double v)
{
    switch (dt) {
    case IR_DT_FLOAT:    return (float)v;
    case IR_DT_FLOAT16:  return ops_f16_to_f32(ops_f32_to_f16((float)v));
    case IR_DT_BFLOAT16: return ops_bf16_to_f32(ops_f32_to_bf16((float)v));
    default:             return v;
    }
}

/* x / s in type dt: both operands rounded to dt, quotient rounded to dt.
 * For float16 and bfloat16 the quotient is formed in float32 and rounded
 * once more, which is the correctly rounded result (float32 has more than
 * twice their precision plus two bits). */
static inline double quantize_divide(ir_dtype dt, double x, double s)
{
    if (dt == IR_DT_DOUBLE)
        return x / s;
    float xf = (float)round_to_type(dt, x), sf = (float)round_to_type(dt, s);
    return round_to_type(dt, xf / sf);
}

/* Loads the n scales as doubles (exact for every scale type) and the zero
 * points as int64 (integer types) or double (float types; 0 when absent). */
typedef struct quant_params {
    uint64_t n;
    double *scale;
    int64_t *zp_int;
    double *zp_float;
} quant_params;

static void quant_params_free(oct_ctx *ctx, quant_params *p)
{
    oct_free(ctx, p->scale, p->n * sizeof *p->scale);
    oct_free(ctx, p->zp_int, p->n * sizeof *p->zp_int);
    oct_free(ctx, p->zp_float, p->n * sizeof *p->zp_float);
}

static oct_status quant_params_load(oct_ctx *ctx, const ir_tensor *scale,
                                    const ir_tensor *zp, quant_params *p)
{
    memset(p, 0, sizeof *p);
    p->n = scale->nelems;
    if (zp && zp->nelems != p->n)
        return OCT_EINTERNAL; /* ops_quant_gran_resolve checked the shapes */
    uint64_t n = p->n ? p->n : 1;
    p->scale = oct_malloc(ctx, n * sizeof *p->scale);
    p->zp_int = oct_malloc(ctx, n * sizeof *p->zp_int);
    p->zp_float = oct_malloc(ctx, n * sizeof *p->zp_float);
    p->n = n;
    if (!p->scale || !p->zp_int || !p->zp_float) {
        quant_params_free(ctx, p);
        return OCT_EINTERNAL;
    }
    bool int_zp = zp && ir_dtype_info(zp->dtype)->kind != IR_DK_FLOAT;
    for (uint64_t i = 0; i < scale->nelems; i++) {
        p->scale[i] = ops_get(scale, i);
        p->zp_int[i] = int_zp ? ops_get_i64(zp, i) : 0;
        p->zp_float[i] = zp ? ops_get(zp, i) : 0.0;
    }
    return OCT_OK;
}

/* Writes float4 E2M1 code `nibble` as element i (two per byte, low nibble
 * first, the raw_data layout of ir.h). */
static inline void store_nibble(ir_tensor *t, uint64_t i, uint8_t nibble)
{
    uint8_t *b = (uint8_t *)t->data + i / 2;
    if (i % 2)
        *b = (uint8_t)((*b & 0x0F) | (nibble << 4));
    else
        *b = (uint8_t)((*b & 0xF0) | (nibble & 0x0F));
}

/* Fast path: float32 x and scale, 8-bit integer output.  Same rule as the
 * generic path: q = saturate(nearbyint(x / s) + zp), division in float32. */
static void quantize_f32_to_8bit(const ops_quant_gran *g, const quant_params *p,
                                 const float *x, ir_tensor *y)
{
    bool is_signed = y->dtype == IR_DT_INT8;
    int64_t lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
    uint64_t e = 0;
    for (uint64_t o = 0; o < g->outer; o++)
        for (uint64_t a = 0; a < g->dim; a++) {
            if (g->kind != QG_BLOCK) {
                uint64_t k = quant_param_index(g, o, a, 0);
                float s = (float)p->scale[k];
                int64_t zp = p->zp_int[k];
                for (uint64_t i = 0; i < g->inner; i++, e++) {
                    int64_t q = ops_quantize_int(x[e] / s, zp, lo, hi);
                    if (is_signed)
                        ((int8_t *)y->data)[e] = (int8_t)q;
                    else
                        ((uint8_t *)y->data)[e] = (uint8_t)q;
                }
                continue;
            }
            for (uint64_t i = 0; i < g->inner; i++, e++) {
                uint64_t k = quant_param_index(g, o, a, i);
                int64_t q = ops_quantize_int(x[e] / (float)p->scale[k],
                                         p->zp_int[k], lo, hi);
                if (is_signed)
                    ((int8_t *)y->data)[e] = (int8_t)q;
                else
                    ((uint8_t *)y->data)[e] = (uint8_t)q;
            }
        }
}

oct_status ref_quantizelinear(ref_call *call)
{
    oct_ctx *ctx = call->ctx;
    const ir_node *node = call->node;
    const ir_tensor *x = call->in[0], *scale = call->in[1];
    const ir_tensor *zp = call->n_in > 2 ? call->in[2] : NULL;
    ir_tensor *y = call->out[0];
    ops_shape xs, ss, zs;
    ops_shape_of(x, &xs);
    ops_shape_of(scale, &ss);
    if (zp)
        ops_shape_of(zp, &zs);
    ops_quant_gran g;
    ir_dtype div_dt = IR_DT_UNDEFINED;
    oct_status st = ops_quant_gran_resolve(ctx, node, &xs, &ss, zp ? &zs : NULL, 1,
                                       2, &g);
    if (st == OCT_OK)
        st = ops_quant_check_scales(ctx, node, 1, scale);
    if (st == OCT_OK)
        st = ops_quantize_div_type(ctx, node, x->dtype, scale->dtype, &div_dt);
    if (st != OCT_OK)
        return st;
    if (g.kind == QG_UNKNOWN || y->nelems != x->nelems)
        return oct_node_error(ctx, OCT_EINTERNAL, node,
                              "quantization shapes unresolved at run time");
    quant_params p;
    if ((st = quant_params_load(ctx, scale, zp, &p)) != OCT_OK)
        return st;

    int64_t lo = 0, hi = 0;
    bool int_out = ops_quant_int_range(y->dtype, &lo, &hi);
    bool saturate = ir_attr_int(node, "saturate", 1) != 0;
    if (x->dtype == IR_DT_FLOAT && div_dt == IR_DT_FLOAT &&
        (y->dtype == IR_DT_UINT8 || y->dtype == IR_DT_INT8)) {
        quantize_f32_to_8bit(&g, &p, (const float *)x->data, y);
        quant_params_free(ctx, &p);
        return OCT_OK;
    }
    uint64_t e = 0;
    for (uint64_t o = 0; o < g.outer; o++)
        for (uint64_t a = 0; a < g.dim; a++)
            for (uint64_t i = 0; i < g.inner; i++, e++) {
                uint64_t k = quant_param_index(&g, o, a, i);
                double v = quantize_divide(div_dt, ops_get(x, e), p.scale[k]);
                if (int_out) {
                    ops_set_i64(y, e, ops_quantize_int(v, p.zp_int[k], lo, hi));
                    continue;
                }
                /* Float targets: the zero point (normally 0) is added in
                 * the division type.  As in the ONNX reference (the
                 * conformance oracle), float4 always adds it, so -0 + 0
                 * gives +0, while float8 skips a zero zero point and keeps
                 * the sign of -0. */
                if (p.zp_float[k] != 0.0 || y->dtype == IR_DT_FLOAT4E2M1)
                    v = round_to_type(div_dt, v + p.zp_float[k]);
                if (y->dtype == IR_DT_FLOAT4E2M1)
                    store_nibble(y, e, ops_f32_to_fp4((float)v, true));
                else
                    ((uint8_t *)y->data)[e] =
                        ops_f32_to_fp8(y->dtype, (float)v, saturate);
            }
    quant_params_free(ctx, &p);
    return OCT_OK;
}

/* ---- DequantizeLinear ------------------------------------------------------ */

/* Stores float32 v as element e of the float output (round to nearest even
 * for float16 and bfloat16). */
static inline void store_float(ir_tensor *y, uint64_t e, float v)
{
    if (y->dtype == IR_DT_FLOAT)
        ((float *)y->data)[e] = v;
    else if (y->dtype == IR_DT_FLOAT16)
        ((uint16_t *)y->data)[e] = ops_f32_to_f16(v);
    else
        ((uint16_t *)y->data)[e] = ops_f32_to_bf16(v);
}

/* y = (x - zero_point) * scale.  Integer inputs: the difference is exact
 * (int64), converted to float32 (exact for every type narrower than int32;
 * int32 beyond 2^24 rounds to nearest even), multiplied by the scale in
 * float32 (the scale is exact in float32 for every scale type), rounded once
 * more to nearest even for a float16/bfloat16 output.  Float8/float4
 * inputs: the decoded value minus the zero point (normally 0, then skipped
 * so -0 keeps its sign), times the scale, in float32. */
oct_status ref_dequantizelinear(ref_call *call)
{
    oct_ctx *ctx = call->ctx;
    const ir_node *node = call->node;
    const ir_tensor *x = call->in[0], *scale = call->in[1];
    const ir_tensor *zp = call->n_in > 2 ? call->in[2] : NULL;
    ir_tensor *y = call->out[0];
    ops_shape xs, ss, zs;
    ops_shape_of(x, &xs);
    ops_shape_of(scale, &ss);
    if (zp)
        ops_shape_of(zp, &zs);
    ops_quant_gran g;
    oct_status st = ops_quant_gran_resolve(ctx, node, &xs, &ss, zp ? &zs : NULL, 1,
                                       2, &g);
    if (st == OCT_OK)
        st = ops_quant_check_scales(ctx, node, 1, scale);
    if (st != OCT_OK)
        return st;
    if (g.kind == QG_UNKNOWN || y->nelems != x->nelems ||
        !ops_is_dequant_out_type(y->dtype))
        return oct_node_error(ctx, OCT_EINTERNAL, node,
                              "dequantization shapes unresolved at run time");
    quant_params p;
    if ((st = quant_params_load(ctx, scale, zp, &p)) != OCT_OK)
        return st;
    bool float_in = ir_dtype_info(x->dtype)->kind == IR_DK_FLOAT;
    uint64_t e = 0;
    if (x->dtype == IR_DT_UINT8 || x->dtype == IR_DT_INT8) {
        /* Fast path: 8-bit input, same arithmetic as below. */
        for (uint64_t o = 0; o < g.outer; o++)
            for (uint64_t a = 0; a < g.dim; a++)
                for (uint64_t i = 0; i < g.inner; i++, e++) {
                    uint64_t k = quant_param_index(&g, o, a, i);
                    int32_t q = x->dtype == IR_DT_UINT8
                                    ? ((const uint8_t *)x->data)[e]
                                    : ((const int8_t *)x->data)[e];
                    float v = (float)(q - (int32_t)p.zp_int[k]) *
                              (float)p.scale[k];
                    store_float(y, e, v);
                }
        quant_params_free(ctx, &p);
        return OCT_OK;
    }
    for (uint64_t o = 0; o < g.outer; o++)
        for (uint64_t a = 0; a < g.dim; a++)
            for (uint64_t i = 0; i < g.inner; i++, e++) {
                uint64_t k = quant_param_index(&g, o, a, i);
                float d;
                if (float_in) {
                    d = (float)ops_get(x, e);
                    if (p.zp_float[k] != 0.0)
                        d -= (float)p.zp_float[k];
                } else {
                    d = (float)(ops_get_i64(x, e) - p.zp_int[k]);
                }
                store_float(y, e, d * (float)p.scale[k]);
            }
    quant_params_free(ctx, &p);
    return OCT_OK;
}

/* ---- DynamicQuantizeLinear ------------------------------------------------- */

/* Per the spec (uint8, qmin 0, qmax 255), all in float32:
 *   lo = min(0, min(x)), hi = max(0, max(x))   (NaN elements are skipped)
 *   scale = (hi == lo ? 1 : hi - lo) / 255
 *   zp = round_half_to_even(saturate_[0,255](0 - lo / scale))
 *   y = saturate_[0,255](round_half_to_even(x / scale) + zp)
 * (the `hi == lo` case only arises for an all-zero or empty x; the float
 * expression follows the ONNX reference implementation). */
oct_status ref_dynamicquantizelinear(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    const float *xv = (const float *)x->data;
    float lo = 0.0f, hi = 0.0f;
    for (uint64_t i = 0; i < x->nelems; i++) {
        if (xv[i] < lo)
            lo = xv[i];
        if (xv[i] > hi)
            hi = xv[i];
    }
    float scale = (hi == lo ? 1.0f : hi - lo) / 255.0f;
    float zpf = 0.0f - lo / scale;
    zpf = zpf < 0.0f ? 0.0f : zpf > 255.0f ? 255.0f : zpf;
    int64_t zp = (int64_t)nearbyintf(zpf);
    ir_tensor *y = call->out[0];
    for (uint64_t i = 0; y && i < x->nelems; i++) /* y may be named "" */
        ((uint8_t *)y->data)[i] = (uint8_t)ops_quantize_int(xv[i] / scale, zp, 0, 255);
    if (call->n_out > 1 && call->out[1])
        *(float *)call->out[1]->data = scale;
    if (call->n_out > 2 && call->out[2])
        *(uint8_t *)call->out[2]->data = (uint8_t)zp;
    return OCT_OK;
}
