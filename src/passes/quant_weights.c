/*
 * quant_weights.c: parameters and quantized data for constant tensors:
 * weights (per tensor, per channel or per block), int32 biases, and
 * constant operands quantized like activations.
 *
 * Ranges come from the format table (src/ir/qformats.def).  Numeric rules
 * (the contract in DESIGN.md):
 *   integer weights: symmetric narrow range, s = max|w| / qmax over the
 *     scale's slice (a slice of zeros gets s = 1), q = clamp(
 *     round_half_even(w / s), -qmax, qmax) (int8: 127), zero point 0,
 *     w / s computed in float32 as QuantizeLinear does;
 *   float8 weights: s = max|w| / fmax (448 for E4M3FN, 57344 for E5M2),
 *     q = fp8(w / s) round to nearest even, saturating;
 *   bias: s_b[c] = s_x * s_w[c] in float32, q = clamp(round_half_even(b /
 *     s_b), INT32_MIN, INT32_MAX) with the division in double.
 */
#include <math.h>
#include <string.h>

#include "passes/quant.h"
#include "ops/ops.h"

/* How a constant splits into scale slices: dims = outer x ch x inner, with
 * the scale axis in the middle; blocked: ch is cut into blocks of bs. */
typedef struct layout {
    int64_t outer, ch, inner, bs, nblk;
} layout;

static layout layout_of(const ir_tensor *t, int axis, int64_t block_size)
{
    layout L = {1, 1, 1, 0, 1};
    if (axis < 0) {
        L.inner = (int64_t)t->nelems;
        return L;
    }
    for (int d = 0; d < axis; d++)
        L.outer *= t->dims[d];
    L.ch = t->dims[axis];
    for (int d = axis + 1; d < t->rank; d++)
        L.inner *= t->dims[d];
    if (block_size > 0) {
        L.bs = block_size;
        L.nblk = (L.ch + block_size - 1) / block_size;
    }
    return L;
}

static int64_t n_slices(const layout *L, int axis)
{
    if (axis < 0)
        return 1;
    return L->bs ? L->outer * L->nblk * L->inner : L->ch;
}

/* Scale index of element (o, c, i). */
static inline int64_t slice_of(const layout *L, int axis, int64_t o, int64_t c,
                               int64_t i)
{
    if (axis < 0)
        return 0;
    if (!L->bs)
        return c;
    return (o * L->nblk + c / L->bs) * L->inner + i;
}

/* w on a symmetric narrow integer grid: clamp(round_half_even(w / s),
 * -qmax, qmax), in float32. */
static inline float quant_int_sym(float w, float s, float qmax)
{
    float q = nearbyintf(w / s);
    return q < -qmax ? -qmax : q > qmax ? qmax : q;
}

/* Scales of a constant for the given format: slice absmax over the
 * format's largest magnitude (qmax or fmax). */
static oct_status slice_scales(oct_ctx *ctx, quant_tensor *e, ir_qformat format,
                               float **out)
{
    const ir_tensor *t = e->value->init;
    layout L = layout_of(t, e->axis, e->block_size);
    int64_t ns = n_slices(&L, e->axis);
    float *s = ir_alloc_array(ctx, (size_t)ns, sizeof *s);
    if (!s)
        return OCT_EINTERNAL;
    const float *w = t->data;
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t c = 0; c < L.ch; c++)
            for (int64_t i = 0; i < L.inner; i++) {
                float a = fabsf(w[(o * L.ch + c) * L.inner + i]);
                int64_t k = slice_of(&L, e->axis, o, c, i);
                if (a > s[k])
                    s[k] = a;
            }
    float top = (float)ir_qformat_absmax(ir_qformat_info(format));
    for (int64_t k = 0; k < ns; k++) {
        float v = (float)((double)s[k] / top);
        s[k] = v > 0 && isfinite(v) ? v : 1.0f;
    }
    *out = s;
    e->n_scales = (size_t)ns;
    return OCT_OK;
}

/* Squared error of the constant quantized with scales s in format. */
static double weight_noise(const quant_tensor *e, ir_qformat format, const float *s,
                           double *signal)
{
    const ir_qformat_traits *f = ir_qformat_info(format);
    float qmax = (float)f->qmax;
    const ir_tensor *t = e->value->init;
    layout L = layout_of(t, e->axis, e->block_size);
    const float *w = t->data;
    double noise = 0, sig = 0;
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t c = 0; c < L.ch; c++)
            for (int64_t i = 0; i < L.inner; i++) {
                float x = w[(o * L.ch + c) * L.inner + i];
                float sc = s[slice_of(&L, e->axis, o, c, i)];
                float y = !f->is_float
                    ? quant_int_sym(x, sc, qmax) * sc
                    : ops_fp8_to_f32(f->dtype, ops_f32_to_fp8(f->dtype, x / sc, true)) * sc;
                noise += (double)(x - y) * (x - y);
                sig += (double)x * x;
            }
    *signal = sig;
    return noise;
}

static double db(double signal, double noise)
{
    if (noise <= 0)
        return signal > 0 ? 200.0 : 0.0;
    return signal > 0 ? 10.0 * log10(signal / noise) : 0.0;
}

static oct_status set_scale_shape(oct_ctx *ctx, quant_tensor *e)
{
    const ir_tensor *t = e->value->init;
    if (e->axis < 0) {
        e->scale_rank = 0;
        return OCT_OK;
    }
    if (!e->block_size) {
        e->scale_rank = 1;
        e->scale_dims = ir_alloc(ctx, sizeof *e->scale_dims);
        if (!e->scale_dims)
            return OCT_EINTERNAL;
        e->scale_dims[0] = (int64_t)e->n_scales;
        return OCT_OK;
    }
    e->scale_rank = t->rank;
    e->scale_dims = ir_alloc_array(ctx, (size_t)t->rank, sizeof *e->scale_dims);
    if (!e->scale_dims)
        return OCT_EINTERNAL;
    memcpy(e->scale_dims, t->dims, (size_t)t->rank * sizeof *t->dims);
    e->scale_dims[e->axis] = (t->dims[e->axis] + e->block_size - 1) / e->block_size;
    return OCT_OK;
}

/* A weight's scale shape must be one its candidate format allows (the
 * table's granularities column). */
static oct_status check_granularity(oct_ctx *ctx, const quant_tensor *e,
                                    ir_qformat format)
{
    const ir_qformat_traits *f = ir_qformat_info(format);
    unsigned need = e->block_size ? IR_QG_BLOCK : e->axis >= 0 ? IR_QG_CHANNEL
                                                               : IR_QG_TENSOR;
    if (f->granularities & need)
        return OCT_OK;
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, e->node, 0, e->input,
                     e->value->name, "format %s does not allow %s scales", f->name,
                     e->block_size ? "per-block" : e->axis >= 0 ? "per-channel"
                                                                : "per-tensor");
}

oct_status quant_choose_weight(oct_ctx *ctx, quant_tensor *e, const quant_opts *opts)
{
    const ir_tensor *t = e->value->init;
    if (opts->weight_granularity == QGRAN_BLOCK && e->axis >= 0 &&
        (e->node->op == IR_OP_GEMM || e->node->op == IR_OP_MATMUL))
        e->block_size = opts->block_size
            ? opts->block_size
            : ir_qformat_info(opts->families[0].weight)->block_size;
    if (e->block_size && t->dims[e->axis] < e->block_size)
        e->block_size = 0; /* one block: per channel of the other axis */
    for (int k = 0; k < opts->n_families; k++) {
        oct_status st = check_granularity(ctx, e, opts->families[k].weight);
        if (st)
            return st;
    }
    /* every candidate family's scales and exact error, then the choice */
    float *scales[QUANT_MAX_FAMILIES] = {0};
    double signal = 0;
    for (int k = 0; k < opts->n_families; k++) {
        ir_qformat f = opts->families[k].weight;
        oct_status st = slice_scales(ctx, e, f, &scales[k]);
        if (st)
            return st;
        e->noise[k] = weight_noise(e, f, scales[k], &signal);
        e->sqnr_of[k] = db(signal, e->noise[k]);
    }
    e->signal = signal;
    bool keep_float;
    int k = quant_pick_family(ctx, opts, e->force, e->force_reason, e->sqnr_of,
                              &e->reason, &keep_float);
    e->keep_float |= keep_float;
    e->family = k;
    e->format = opts->families[k].weight;
    e->scales = scales[k];
    e->sqnr = e->sqnr_of[k];
    e->zero_points = ir_alloc_array(ctx, e->n_scales, sizeof *e->zero_points);
    if (!e->zero_points)
        return OCT_EINTERNAL;
    return set_scale_shape(ctx, e);
}

oct_status quant_choose_bias(oct_ctx *ctx, quant_plan *plan, quant_tensor *e)
{
    const quant_tensor *x = &plan->t[e->act], *w = &plan->t[e->weight];
    bool x_int = x->format && !ir_qformat_info(x->format)->is_float;
    bool w_int = w->format && !ir_qformat_info(w->format)->is_float;
    if (!x_int || !w_int || w->block_size || x->keep_float || w->keep_float) {
        e->keep_float = true;
        e->reason = "bias stays FP32: input or weight not INT8";
        return OCT_OK;
    }
    const ir_tensor *b = e->value->init;
    int64_t n = (int64_t)b->nelems;
    if (w->n_scales != 1 && (int64_t)w->n_scales != n) {
        e->keep_float = true;
        e->reason = "bias stays FP32: its length does not match the weight's channels";
        return OCT_OK;
    }
    e->format = IR_QF_INT32;
    e->family = w->family;
    e->n_scales = w->n_scales;
    e->scales = ir_alloc_array(ctx, e->n_scales, sizeof *e->scales);
    e->zero_points = ir_alloc_array(ctx, e->n_scales, sizeof *e->zero_points);
    if (!e->scales || !e->zero_points)
        return OCT_EINTERNAL;
    for (size_t c = 0; c < e->n_scales; c++)
        e->scales[c] = x->scales[0] * w->scales[c]; /* float32 product */
    e->axis = e->n_scales > 1 ? b->rank - 1 : -1;
    e->reason = "int32 bias, scale s_x * s_w";
    const float *bv = b->data;
    double sig = 0, noise = 0;
    uint64_t clipped = 0;
    for (int64_t i = 0; i < n; i++) {
        float s = e->scales[e->n_scales > 1 ? i : 0];
        double q = nearbyint((double)bv[i] / s);
        if (q > INT32_MAX || q < INT32_MIN) {
            clipped++;
            q = q > 0 ? INT32_MAX : INT32_MIN;
        }
        double d = bv[i] - q * s;
        sig += (double)bv[i] * bv[i];
        noise += d * d;
    }
    e->signal = sig;
    e->noise[e->family] = noise;
    e->sqnr = e->sqnr_of[e->family] = db(sig, noise);
    e->n_values = (uint64_t)n;
    e->n_clipped[e->family] = clipped;
    e->clipped = n ? (double)clipped / (double)n : 0;
    if (clipped)
        oct_diagf(ctx, OCT_SEV_WARNING, OCT_OK, e->node, 0, e->input, e->value->name,
                  "%llu bias values saturate int32 at scale s_x * s_w",
                  (unsigned long long)clipped);
    if (e->n_scales == 1)
        e->scale_rank = 0;
    else {
        e->scale_rank = 1;
        e->scale_dims = ir_alloc(ctx, sizeof *e->scale_dims);
        if (!e->scale_dims)
            return OCT_EINTERNAL;
        e->scale_dims[0] = (int64_t)e->n_scales;
    }
    return OCT_OK;
}

ir_tensor *quant_constant_data(oct_ctx *ctx, const quant_tensor *e)
{
    const ir_qformat_traits *f = ir_qformat_info(e->format);
    const ir_tensor *t = e->value->init;
    ir_tensor *q = ir_tensor_new(ctx, f->dtype, t->rank, t->dims);
    if (!q)
        return NULL;
    /* weights: symmetric narrow range [-qmax, qmax]; constant operands
     * quantized like activations: the full [qmin, qmax] */
    float lo = e->kind == QKIND_WEIGHT && f->symmetric ? -(float)f->qmax : (float)f->qmin;
    float hi = (float)f->qmax;
    layout L = layout_of(t, e->axis, e->block_size);
    const float *w = t->data;
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t c = 0; c < L.ch; c++)
            for (int64_t i = 0; i < L.inner; i++) {
                int64_t at = (o * L.ch + c) * L.inner + i;
                int64_t k = slice_of(&L, e->axis, o, c, i);
                float s = e->scales[e->n_scales > 1 ? k : 0];
                int32_t zp = e->zero_points[e->n_scales > 1 ? k : 0];
                float x = w[at];
                switch (f->dtype) {
                case IR_DT_INT8:
                case IR_DT_UINT8: {
                    /* QuantizeLinear: saturate(round_half_even(x / s) + zp) */
                    float v = nearbyintf(x / s) + (float)zp;
                    v = v < lo ? lo : v > hi ? hi : v;
                    if (f->dtype == IR_DT_INT8)
                        ((int8_t *)q->data)[at] = (int8_t)v;
                    else
                        ((uint8_t *)q->data)[at] = (uint8_t)v;
                    break;
                }
                case IR_DT_INT32: {
                    /* the division in double: float32 would lose bits */
                    double v = nearbyint((double)x / s);
                    v = v > f->qmax ? (double)f->qmax : v < f->qmin ? (double)f->qmin : v;
                    ((int32_t *)q->data)[at] = (int32_t)v;
                    break;
                }
                case IR_DT_FLOAT8E4M3FN:
                case IR_DT_FLOAT8E5M2:
                    ((uint8_t *)q->data)[at] = ops_f32_to_fp8(f->dtype, x / s, true);
                    break;
                default: /* no family stores another format yet */
                    OCT_ASSERT(!"quant_constant_data: format without a store");
                }
            }
    return q;
}

float *quant_weight_roundtrip(oct_ctx *ctx, const quant_tensor *e)
{
    const ir_qformat_traits *f = ir_qformat_info(e->format);
    const ir_tensor *t = e->value->init;
    ir_tensor *q = quant_constant_data(ctx, e);
    float *w = q ? ir_alloc_array(ctx, t->nelems + 1, sizeof *w) : NULL;
    if (!w)
        return NULL;
    layout L = layout_of(t, e->axis, e->block_size);
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t c = 0; c < L.ch; c++)
            for (int64_t i = 0; i < L.inner; i++) {
                int64_t at = (o * L.ch + c) * L.inner + i;
                int64_t k = slice_of(&L, e->axis, o, c, i);
                float s = e->scales[e->n_scales > 1 ? k : 0];
                int32_t zp = e->zero_points[e->n_scales > 1 ? k : 0];
                float v;
                switch (f->dtype) {
                case IR_DT_INT8:
                    v = (float)((const int8_t *)q->data)[at] - (float)zp;
                    break;
                case IR_DT_UINT8:
                    v = (float)((const uint8_t *)q->data)[at] - (float)zp;
                    break;
                case IR_DT_FLOAT8E4M3FN:
                case IR_DT_FLOAT8E5M2:
                    v = ops_fp8_to_f32(f->dtype, ((const uint8_t *)q->data)[at]);
                    break;
                default:
                    OCT_ASSERT(!"quant_weight_roundtrip: not a weight format");
                    v = 0;
                }
                w[at] = v * s; /* DequantizeLinear */
            }
    return w;
}
