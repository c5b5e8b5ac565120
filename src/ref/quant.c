/*
 * quant.c: shape rules and reference kernels of QuantizeLinear,
 * DequantizeLinear and DynamicQuantizeLinear (every opset from 10 to 25).
 *
 * Granularity is resolved once (quant_gran_resolve) from the shapes of x,
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
 * Numeric contract (../shared/DESIGN.md), implemented below:
 *   QuantizeLinear, integer outputs:
 *     q = saturate(round_half_to_even(x / scale) + zero_point)
 *   QuantizeLinear, float8 outputs: q = cast(x / scale [+ zero_point]),
 *     round to nearest even; saturate=1 clamps out-of-range values to the
 *     largest finite value; NaN stays NaN.  float4 E2M1 always saturates
 *     (it has no Inf or NaN).  The division x / scale is done in the type
 *     chosen by quantize_div_type (float32 for float32 x and scale), never
 *     as a multiplication by the reciprocal.
 *   DequantizeLinear: y = (x - zero_point) * scale.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/qformat.h"
#include "ref.h"

/* ---- granularity --------------------------------------------------------- */

typedef enum { QG_UNKNOWN, QG_TENSOR, QG_AXIS, QG_BLOCK } quant_kind;

typedef struct quant_gran {
    quant_kind kind;
    int axis;              /* normalized; valid for QG_AXIS and QG_BLOCK */
    int64_t block;         /* block size for QG_BLOCK */
    /* x viewed as [outer, dim, inner] around the axis (kernels only) */
    uint64_t outer, dim, inner;
    uint64_t sdim;         /* scale extent along the axis */
} quant_gran;

/* "[2, 3]" ("?" for an unknown dim) into buf, truncated to size. */
static const char *shape_text(const ref_shape *s, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->rank && len < size; i++) {
        if (s->dims[i] < 0)
            len += (size_t)snprintf(buf + len, size - len, "%s?", i ? ", " : "");
        else
            len += (size_t)snprintf(buf + len, size - len, "%s%lld",
                                    i ? ", " : "", (long long)s->dims[i]);
    }
    if (len < size)
        snprintf(buf + len, size - len, "]");
    return buf;
}

/* Resolves the quantization granularity of node for x, scale (input
 * scale_idx) and zero point (input zp_idx, zp may be NULL or have rank -1
 * when unknown).  Reports bad axis, block_size and scale/zero-point shapes
 * against the node and its inputs; returns OCT_EINPUT then.  With unknown
 * shapes the kind may stay QG_UNKNOWN.  Fills outer/dim/inner when x's dims
 * are all known. */
static oct_status quant_gran_resolve(oct_ctx *ctx, const ir_node *node,
                                     const ref_shape *x, const ref_shape *scale,
                                     const ref_shape *zp, int scale_idx,
                                     int zp_idx, quant_gran *g)
{
    memset(g, 0, sizeof *g);
    g->kind = QG_UNKNOWN;
    int64_t axis_attr = ir_attr_int(node, "axis", 1);
    int64_t block = ir_attr_int(node, "block_size", 0);
    if (block < 0)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "block_size = %lld must not be negative",
                              (long long)block);
    if (zp && zp->rank >= 0 && scale->rank >= 0) {
        int64_t ns = ref_shape_known_elems(scale), nz = ref_shape_known_elems(zp);
        bool both_single = ns == 1 && nz == 1;
        bool same = zp->rank == scale->rank;
        for (int i = 0; same && i < zp->rank; i++)
            if (zp->dims[i] >= 0 && scale->dims[i] >= 0 &&
                zp->dims[i] != scale->dims[i])
                same = false;
        if (!both_single && !same) {
            char zs[96], ss[96];
            return oct_input_error(ctx, OCT_EINPUT, node, zp_idx,
                                   "zero point shape %s differs from the "
                                   "scale's shape %s",
                                   shape_text(zp, zs, sizeof zs),
                                   shape_text(scale, ss, sizeof ss));
        }
    }
    if (scale->rank < 0)
        return OCT_OK;
    int64_t n_scale = ref_shape_known_elems(scale);
    if (n_scale == 1) {
        g->kind = QG_TENSOR;
    } else if (block == 0) {
        if (scale->rank != 1)
            return oct_input_error(ctx, OCT_EINPUT, node, scale_idx,
                                   "scale must be a scalar or a 1-D per-axis "
                                   "vector without block_size, got rank %d",
                                   scale->rank);
        if (x->rank >= 0) {
            if (!ref_norm_axis(axis_attr, x->rank, &g->axis))
                return oct_node_error(ctx, OCT_EINPUT, node,
                                      "axis = %lld is out of range for an "
                                      "input of rank %d",
                                      (long long)axis_attr, x->rank);
            int64_t d = x->dims[g->axis];
            if (d >= 0 && scale->dims[0] >= 0 && d != scale->dims[0])
                return oct_input_error(ctx, OCT_EINPUT, node, scale_idx,
                                       "per-axis scale has %lld elements but "
                                       "input dim %d (axis) is %lld",
                                       (long long)scale->dims[0], g->axis,
                                       (long long)d);
            g->kind = QG_AXIS;
        }
    } else {
        if (x->rank < 0)
            return OCT_OK;
        if (!ref_norm_axis(axis_attr, x->rank, &g->axis))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "axis = %lld is out of range for an input "
                                  "of rank %d", (long long)axis_attr, x->rank);
        if (scale->rank != x->rank)
            return oct_input_error(ctx, OCT_EINPUT, node, scale_idx,
                                   "blocked scale must have the input's rank "
                                   "%d, got %d", x->rank, scale->rank);
        for (int i = 0; i < x->rank; i++) {
            int64_t d = x->dims[i], s = scale->dims[i];
            if (d < 0 || s < 0)
                continue;
            int64_t want = i == g->axis ? (d + block - 1) / block : d;
            if (s != want)
                return oct_input_error(
                    ctx, OCT_EINPUT, node, scale_idx,
                    "blocked scale dim %d is %lld, expected %lld (input dim "
                    "%lld%s, block_size %lld)", i, (long long)s,
                    (long long)want, (long long)d,
                    i == g->axis ? " on the blocked axis" : "",
                    (long long)block);
        }
        g->kind = QG_BLOCK;
        g->block = block;
        g->sdim = (uint64_t)(scale->dims[g->axis] < 0 ? 0 : scale->dims[g->axis]);
    }
    if (ref_shape_known_elems(x) >= 0) {
        g->outer = 1;
        g->dim = 1;
        g->inner = 1;
        if (g->kind == QG_AXIS || g->kind == QG_BLOCK) {
            for (int i = 0; i < g->axis; i++)
                g->outer *= (uint64_t)x->dims[i];
            g->dim = (uint64_t)x->dims[g->axis];
            for (int i = g->axis + 1; i < x->rank; i++)
                g->inner *= (uint64_t)x->dims[i];
        } else {
            g->inner = (uint64_t)ref_shape_known_elems(x);
        }
    }
    return OCT_OK;
}

/* Index into the scale / zero point for x element (o, a, i) of the
 * [outer, dim, inner] view. */
static inline uint64_t quant_param_index(const quant_gran *g, uint64_t o,
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

/* Checks that every scale is positive and finite (ONNX requires a positive
 * scale; zero, negative, NaN and Inf are bad input). */
static oct_status quant_check_scales(oct_ctx *ctx, const ir_node *node,
                                     int idx, const ir_tensor *scale)
{
    for (uint64_t i = 0; i < scale->nelems; i++) {
        double s = ref_get(scale, i);
        if (!(s > 0.0) || !isfinite(s))
            return oct_input_error(ctx, OCT_EINPUT, node, idx,
                                   "scale element %llu is %g: scales must be "
                                   "positive and finite",
                                   (unsigned long long)i, s);
    }
    return OCT_OK;
}

static bool is_scale_type(ir_dtype dt, bool allow_int32)
{
    return dt == IR_DT_FLOAT || dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16 ||
           dt == IR_DT_FLOAT8E8M0 || (allow_int32 && dt == IR_DT_INT32);
}

/* A float8 format of the table (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ). */
static bool is_float8(ir_dtype dt)
{
    const ir_qformat_traits *f = ir_qformat_info(ir_qformat_of_dtype(dt));
    return f->is_float && f->bits == 8;
}

/* Integer range of a quantized integer type (QuantizeLinear's integer
 * outputs: 2, 4, 8 and 16 bits), from the format table (qformats.def);
 * false for other types, int32 included (a DequantizeLinear input only). */
static bool quant_int_range(ir_dtype dt, int64_t *lo, int64_t *hi)
{
    const ir_qformat_traits *f = ir_qformat_info(ir_qformat_of_dtype(dt));
    if (!f->bits || f->is_float || f->bits > 16)
        return false;
    *lo = f->qmin;
    *hi = f->qmax;
    return true;
}

/* A QuantizeLinear output type (T3 of opset 25). */
static bool is_quant_out_type(ir_dtype dt)
{
    int64_t lo, hi;
    return quant_int_range(dt, &lo, &hi) || is_float8(dt) ||
           dt == IR_DT_FLOAT4E2M1;
}

/* ---- QuantizeLinear -------------------------------------------------------- */

/* Output type of QuantizeLinear: the zero point's type if given, else the
 * output_dtype attribute (opset 21+), else uint8.  UNDEFINED if the zero
 * point is present with an unknown type.  Reports a conflict. */
static oct_status quantize_out_type(oct_ctx *ctx, const ir_node *node,
                                    bool has_zp, ir_dtype zp_dt, ir_dtype *out)
{
    int64_t attr = ir_attr_int(node, "output_dtype", 0);
    if (attr != 0 && !is_quant_out_type((ir_dtype)attr))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "output_dtype %lld (%s) is not a quantized type",
                              (long long)attr, ir_dtype_name((int)attr));
    if (has_zp) {
        if (zp_dt != IR_DT_UNDEFINED && !is_quant_out_type(zp_dt))
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "zero point type %s is not a quantized "
                                   "type", ir_dtype_name(zp_dt));
        if (attr != 0 && zp_dt != IR_DT_UNDEFINED && attr != (int64_t)zp_dt)
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "zero point type %s differs from "
                                   "output_dtype %s", ir_dtype_name(zp_dt),
                                   ir_dtype_name((int)attr));
        *out = zp_dt != IR_DT_UNDEFINED ? zp_dt : (ir_dtype)attr;
    } else {
        *out = attr != 0 ? (ir_dtype)attr : IR_DT_UINT8;
    }
    return OCT_OK;
}

/* Type in which x / scale is computed.  The `precision` attribute (opset
 * 23+) when set; otherwise the type numpy (the ONNX reference
 * implementation, which produced the conformance data) gives the division:
 * int32 x -> double; x and scale of the same float type -> that type (the
 * spec: the scale's type sets the precision); mixed float types -> float32. */
static oct_status quantize_div_type(oct_ctx *ctx, const ir_node *node,
                                    ir_dtype x, ir_dtype s, ir_dtype *out)
{
    int64_t p = ir_attr_int(node, "precision", 0);
    if (p != 0) {
        if (p != IR_DT_FLOAT && p != IR_DT_FLOAT16 && p != IR_DT_BFLOAT16 &&
            p != IR_DT_DOUBLE)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "precision %lld (%s) is not a float type",
                                  (long long)p, ir_dtype_name((int)p));
        *out = (ir_dtype)p;
    } else if (x == IR_DT_INT32 || s == IR_DT_INT32) {
        *out = IR_DT_DOUBLE;
    } else if (x == s) {
        *out = x;
    } else {
        *out = IR_DT_FLOAT;
    }
    return OCT_OK;
}

/* Rounds v to the division type dt (round to nearest even). */
static inline double round_to_type(ir_dtype dt, double v)
{
    switch (dt) {
    case IR_DT_FLOAT:    return (float)v;
    case IR_DT_FLOAT16:  return ref_f16_to_f32(ref_f32_to_f16((float)v));
    case IR_DT_BFLOAT16: return ref_bf16_to_f32(ref_f32_to_bf16((float)v));
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

oct_status shape_quantizelinear(ref_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ref_shape *x = &inf->in[0], *s = &inf->in[1];
    bool has_zp = inf->n_in > 2 && node->in[2];
    const ref_shape *zp = has_zp ? &inf->in[2] : NULL;
    if (x->dtype != IR_DT_UNDEFINED && x->dtype != IR_DT_FLOAT &&
        x->dtype != IR_DT_FLOAT16 && x->dtype != IR_DT_BFLOAT16 &&
        x->dtype != IR_DT_INT32)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "input type %s cannot be quantized (float, "
                               "float16, bfloat16 or int32 expected)",
                               ir_dtype_name(x->dtype));
    if (s->dtype != IR_DT_UNDEFINED && !is_scale_type(s->dtype, true))
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "scale type %s is not a scale type",
                               ir_dtype_name(s->dtype));
    ir_dtype out_dt = IR_DT_UNDEFINED, div_dt = IR_DT_UNDEFINED;
    oct_status st = quantize_out_type(ctx, node, has_zp,
                                      zp ? zp->dtype : IR_DT_UNDEFINED, &out_dt);
    if (st == OCT_OK)
        st = quantize_div_type(ctx, node, x->dtype, s->dtype, &div_dt);
    quant_gran g;
    if (st == OCT_OK)
        st = quant_gran_resolve(ctx, node, x, s, zp, 1, 2, &g);
    if (st == OCT_OK && inf->in_const[1])
        st = quant_check_scales(ctx, node, 1, inf->in_const[1]);
    if (st != OCT_OK)
        return st;
    inf->out[0] = *x;
    inf->out[0].dtype = out_dt;
    return OCT_OK;
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
        return OCT_EINTERNAL; /* quant_gran_resolve checked the shapes */
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
        p->scale[i] = ref_get(scale, i);
        p->zp_int[i] = int_zp ? ref_get_i64(zp, i) : 0;
        p->zp_float[i] = zp ? ref_get(zp, i) : 0.0;
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
static void quantize_f32_to_8bit(const quant_gran *g, const quant_params *p,
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
                    int64_t q = ref_quantize_int(x[e] / s, zp, lo, hi);
                    if (is_signed)
                        ((int8_t *)y->data)[e] = (int8_t)q;
                    else
                        ((uint8_t *)y->data)[e] = (uint8_t)q;
                }
                continue;
            }
            for (uint64_t i = 0; i < g->inner; i++, e++) {
                uint64_t k = quant_param_index(g, o, a, i);
                int64_t q = ref_quantize_int(x[e] / (float)p->scale[k],
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
    ref_shape xs, ss, zs;
    ref_shape_of(x, &xs);
    ref_shape_of(scale, &ss);
    if (zp)
        ref_shape_of(zp, &zs);
    quant_gran g;
    ir_dtype div_dt = IR_DT_UNDEFINED;
    oct_status st = quant_gran_resolve(ctx, node, &xs, &ss, zp ? &zs : NULL, 1,
                                       2, &g);
    if (st == OCT_OK)
        st = quant_check_scales(ctx, node, 1, scale);
    if (st == OCT_OK)
        st = quantize_div_type(ctx, node, x->dtype, scale->dtype, &div_dt);
    if (st != OCT_OK)
        return st;
    if (g.kind == QG_UNKNOWN || y->nelems != x->nelems)
        return oct_node_error(ctx, OCT_EINTERNAL, node,
                              "quantization shapes unresolved at run time");
    quant_params p;
    if ((st = quant_params_load(ctx, scale, zp, &p)) != OCT_OK)
        return st;

    int64_t lo = 0, hi = 0;
    bool int_out = quant_int_range(y->dtype, &lo, &hi);
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
                double v = quantize_divide(div_dt, ref_get(x, e), p.scale[k]);
                if (int_out) {
                    ref_set_i64(y, e, ref_quantize_int(v, p.zp_int[k], lo, hi));
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
                    store_nibble(y, e, ref_f32_to_fp4((float)v, true));
                else
                    ((uint8_t *)y->data)[e] =
                        ref_f32_to_fp8(y->dtype, (float)v, saturate);
            }
    quant_params_free(ctx, &p);
    return OCT_OK;
}

/* ---- DequantizeLinear ------------------------------------------------------ */

static bool is_dequant_in_type(ir_dtype dt)
{
    return dt == IR_DT_INT32 || is_quant_out_type(dt);
}

static bool is_dequant_out_type(ir_dtype dt)
{
    return dt == IR_DT_FLOAT || dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16;
}

oct_status shape_dequantizelinear(ref_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ref_shape *x = &inf->in[0], *s = &inf->in[1];
    bool has_zp = inf->n_in > 2 && node->in[2];
    const ref_shape *zp = has_zp ? &inf->in[2] : NULL;
    if (x->dtype != IR_DT_UNDEFINED && !is_dequant_in_type(x->dtype))
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "input type %s is not a quantized type",
                               ir_dtype_name(x->dtype));
    if (s->dtype != IR_DT_UNDEFINED && !is_scale_type(s->dtype, false))
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "scale type %s is not a scale type",
                               ir_dtype_name(s->dtype));
    if (zp && zp->dtype != IR_DT_UNDEFINED && x->dtype != IR_DT_UNDEFINED &&
        zp->dtype != x->dtype)
        return oct_input_error(ctx, OCT_EINPUT, node, 2,
                               "zero point type %s differs from the input "
                               "type %s", ir_dtype_name(zp->dtype),
                               ir_dtype_name(x->dtype));
    /* Output type: output_dtype (opset 23+), else the scale's type. */
    int64_t attr = ir_attr_int(node, "output_dtype", 0);
    ir_dtype out_dt = attr != 0 ? (ir_dtype)attr : s->dtype;
    if (out_dt != IR_DT_UNDEFINED && !is_dequant_out_type(out_dt))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "output type %s is not float, float16 or "
                              "bfloat16%s", ir_dtype_name(out_dt),
                              attr ? "" : " (set output_dtype)");
    quant_gran g;
    oct_status st = quant_gran_resolve(ctx, node, x, s, zp, 1, 2, &g);
    if (st == OCT_OK && inf->in_const[1])
        st = quant_check_scales(ctx, node, 1, inf->in_const[1]);
    if (st != OCT_OK)
        return st;
    inf->out[0] = *x;
    inf->out[0].dtype = out_dt;
    return OCT_OK;
}

/* Stores float32 v as element e of the float output (round to nearest even
 * for float16 and bfloat16). */
static inline void store_float(ir_tensor *y, uint64_t e, float v)
{
    if (y->dtype == IR_DT_FLOAT)
        ((float *)y->data)[e] = v;
    else if (y->dtype == IR_DT_FLOAT16)
        ((uint16_t *)y->data)[e] = ref_f32_to_f16(v);
    else
        ((uint16_t *)y->data)[e] = ref_f32_to_bf16(v);
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
    ref_shape xs, ss, zs;
    ref_shape_of(x, &xs);
    ref_shape_of(scale, &ss);
    if (zp)
        ref_shape_of(zp, &zs);
    quant_gran g;
    oct_status st = quant_gran_resolve(ctx, node, &xs, &ss, zp ? &zs : NULL, 1,
                                       2, &g);
    if (st == OCT_OK)
        st = quant_check_scales(ctx, node, 1, scale);
    if (st != OCT_OK)
        return st;
    if (g.kind == QG_UNKNOWN || y->nelems != x->nelems ||
        !is_dequant_out_type(y->dtype))
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
                    d = (float)ref_get(x, e);
                    if (p.zp_float[k] != 0.0)
                        d -= (float)p.zp_float[k];
                } else {
                    d = (float)(ref_get_i64(x, e) - p.zp_int[k]);
                }
                store_float(y, e, d * (float)p.scale[k]);
            }
    quant_params_free(ctx, &p);
    return OCT_OK;
}

/* ---- DynamicQuantizeLinear ------------------------------------------------- */

oct_status shape_dynamicquantizelinear(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    if (x->dtype != IR_DT_UNDEFINED && x->dtype != IR_DT_FLOAT)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "input type %s: DynamicQuantizeLinear takes "
                               "float", ir_dtype_name(x->dtype));
    inf->out[0] = *x;
    inf->out[0].dtype = IR_DT_UINT8;
    if (inf->n_out > 1) {
        memset(&inf->out[1], 0, sizeof inf->out[1]);
        inf->out[1].dtype = IR_DT_FLOAT;
    }
    if (inf->n_out > 2) {
        memset(&inf->out[2], 0, sizeof inf->out[2]);
        inf->out[2].dtype = IR_DT_UINT8;
    }
    return OCT_OK;
}

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
        ((uint8_t *)y->data)[i] = (uint8_t)ref_quantize_int(xv[i] / scale, zp, 0, 255);
    if (call->n_out > 1 && call->out[1])
        *(float *)call->out[1]->data = scale;
    if (call->n_out > 2 && call->out[2])
        *(uint8_t *)call->out[2]->data = (uint8_t)zp;
    return OCT_OK;
}
