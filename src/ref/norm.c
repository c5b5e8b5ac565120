/*
 * norm.c: BatchNormalization, InstanceNormalization, LayerNormalization,
 * RMSNormalization.
 *
 * BatchNormalization: inference mode for every opset,
 *   y = (x - mean) / sqrt(var + epsilon) * scale + B, per channel (dim 1),
 * computed as y = x * a + b with ONNX Runtime's folded factors
 * (ops_bn_fold_f32: float32 steps; this file is built without FMA
 * contraction, as ONNX Runtime's kernel rounds the multiply and the add);
 * with opset < 9 and spatial = 0 the parameters may instead hold one value
 * per element of dims[1:].  training_mode = 1 (opset 14+) computes the
 * batch mean and population variance over every axis but 1, normalizes
 * with them, and returns running_mean = mean * momentum + batch_mean * (1 -
 * momentum) (same for var), as the ONNX reference does.  Old-opset training
 * outputs (opset < 14 with more than one output) are unsupported.
 *
 * InstanceNormalization: per (n, c), mean and population variance over the
 * spatial dims; y = scale[c] * (x - mean) / sqrt(var + epsilon) + B[c].
 *
 * LayerNormalization: normalizes over dims[axis:] (axis default -1), with
 * Scale and optional B broadcast to those dims; optional outputs Mean and
 * InvStdDev have the input's shape with dims[axis:] set to 1 and the type
 * stash_type (1 = float, default; 11 = double).
 *
 * All statistics are accumulated in double; float32 data is read and written
 * directly, other float types through ops_get/ops_set.
 *
 * RMSNormalization: y = x / sqrt(mean(x^2 over dims[axis:]) + epsilon) *
 * scale (its rule is in src/ops/shape_attention.c).
 *
 * The shape and type rules of the others are in src/ops/shape_norm.c.
 */
#include <math.h>
#include <string.h>

#include "ref/ref.h"

static inline double get_f(const ir_tensor *t, uint64_t i)
{
    return t->dtype == IR_DT_FLOAT ? ((const float *)t->data)[i] : ops_get(t, i);
}

static inline void set_f(ir_tensor *t, uint64_t i, double v)
{
    if (t->dtype == IR_DT_FLOAT)
        ((float *)t->data)[i] = (float)v;
    else
        ops_set(t, i, v);
}

/* ---- BatchNormalization -------------------------------------------------- */

oct_status ref_batchnorm(ref_call *call)
{
    const ir_tensor *x = call->in[0], *scale = call->in[1], *bias = call->in[2],
                    *mean = call->in[3], *var = call->in[4];
    ir_tensor *y = call->out[0];
    double eps = ir_attr_float(call->node, "epsilon", 1e-5f);
    uint64_t n = x->rank > 0 ? (uint64_t)x->dims[0] : 1;
    uint64_t c = x->rank > 1 ? (uint64_t)x->dims[1] : 1;
    uint64_t inner = 1;
    for (int k = 2; k < x->rank; k++)
        inner *= (uint64_t)x->dims[k];
    /* spatial = 0 (opset < 9): one parameter per element of dims[1:]. */
    bool per_elem = scale->nelems != c && scale->nelems == c * inner;
    if (per_elem) {
        c *= inner;
        inner = 1;
    }
    for (int i = 1; i < 5; i++)
        if (call->in[i]->nelems != c)
            return oct_input_error(call->ctx, OCT_EINPUT, call->node, i,
                                   "has %llu elements, expected %llu",
                                   (unsigned long long)call->in[i]->nelems,
                                   (unsigned long long)c);
    bool train = ops_bn_training(call->node, call->opset);
    double momentum = ir_attr_float(call->node, "momentum", 0.9f);
    for (uint64_t ch = 0; ch < c; ch++) {
        double m = get_f(mean, ch), v = get_f(var, ch);
        if (train) {
            double sum = 0, sq = 0, cnt = (double)(n * inner);
            for (uint64_t b = 0; b < n; b++)
                for (uint64_t k = 0; k < inner; k++)
                    sum += get_f(x, (b * c + ch) * inner + k);
            double bm = cnt ? sum / cnt : 0;
            for (uint64_t b = 0; b < n; b++)
                for (uint64_t k = 0; k < inner; k++) {
                    double d = get_f(x, (b * c + ch) * inner + k) - bm;
                    sq += d * d;
                }
            double bv = cnt ? sq / cnt : 0;
            if (call->n_out > 1 && call->out[1])
                set_f(call->out[1], ch, m * momentum + bm * (1 - momentum));
            if (call->n_out > 2 && call->out[2])
                set_f(call->out[2], ch, v * momentum + bv * (1 - momentum));
            m = bm;
            v = bv;
        }
        double a, b0;
        ops_bn_fold_f64(get_f(scale, ch), get_f(bias, ch), m, v, eps, &a, &b0);
        if (x->dtype == IR_DT_FLOAT) {
            float af = (float)a, bf = (float)b0;
            if (!train) /* ONNX Runtime's factors, folded in float */
                ops_bn_fold_f32((float)get_f(scale, ch), (float)get_f(bias, ch), (float)m,
                                (float)v, (float)eps, &af, &bf);
            for (uint64_t b = 0; b < n; b++) {
                const float *src = (const float *)x->data + (b * c + ch) * inner;
                float *dst = (float *)y->data + (b * c + ch) * inner;
                for (uint64_t k = 0; k < inner; k++)
                    dst[k] = src[k] * af + bf;
            }
        } else {
            for (uint64_t b = 0; b < n; b++)
                for (uint64_t k = 0; k < inner; k++) {
                    uint64_t i = (b * c + ch) * inner + k;
                    ops_set(y, i, ops_get(x, i) * a + b0);
                }
        }
    }
    return OCT_OK;
}

/* ---- InstanceNormalization ----------------------------------------------- */

oct_status ref_instancenorm(ref_call *call)
{
    const ir_tensor *x = call->in[0], *scale = call->in[1], *bias = call->in[2];
    ir_tensor *y = call->out[0];
    double eps = ir_attr_float(call->node, "epsilon", 1e-5f);
    uint64_t n = (uint64_t)x->dims[0], c = (uint64_t)x->dims[1], inner = 1;
    for (int k = 2; k < x->rank; k++)
        inner *= (uint64_t)x->dims[k];
    if (scale->nelems != c || bias->nelems != c)
        return oct_node_error(call->ctx, OCT_EINPUT, call->node,
                              "scale and B must have %llu elements",
                              (unsigned long long)c);
    for (uint64_t b = 0; b < n; b++)
        for (uint64_t ch = 0; ch < c; ch++) {
            uint64_t base = (b * c + ch) * inner;
            double sum = 0, sq = 0;
            for (uint64_t k = 0; k < inner; k++)
                sum += get_f(x, base + k);
            double m = inner ? sum / (double)inner : 0;
            for (uint64_t k = 0; k < inner; k++) {
                double d = get_f(x, base + k) - m;
                sq += d * d;
            }
            double v = inner ? sq / (double)inner : 0;
            double a = get_f(scale, ch) / sqrt(v + eps);
            double b0 = get_f(bias, ch) - m * a;
            for (uint64_t k = 0; k < inner; k++)
                set_f(y, base + k, get_f(x, base + k) * a + b0);
        }
    return OCT_OK;
}

/* ---- LayerNormalization ------------------------------------------------- */

/* Index into a parameter tensor p broadcast over the normalized dims nd[]
 * (nr of them) for normalized element j. */
static uint64_t bcast_index(const ir_tensor *p, const int64_t *nd, int nr,
                            uint64_t j)
{
    if ((int64_t)p->nelems == 1)
        return 0;
    uint64_t idx = 0, stride = 1;
    for (int k = nr - 1, pk = p->rank - 1; k >= 0; k--, pk--) {
        uint64_t coord = j % (uint64_t)nd[k];
        j /= (uint64_t)nd[k];
        if (pk < 0)
            continue;
        if (p->dims[pk] != 1)
            idx += coord * stride;
        stride *= (uint64_t)p->dims[pk];
    }
    return idx;
}

/* y = (x - mean) * inv * scale + bias over dims[axis:] (center: LayerNorm)
 * or y = x * inv * scale (RMSNorm: no mean, no bias), inv = 1 / sqrt(var +
 * epsilon) with var the mean of the (centred) squares, accumulated in
 * double.  With stash_type 1 (float, the default) the statistics are
 * rounded to float as ONNX's reference does.  LayerNorm's optional outputs
 * Mean and InvStdDev are written when present. */
static oct_status normalize_rows(ref_call *call, int axis, bool center)
{
    const ir_tensor *x = call->in[0], *scale = call->in[1];
    const ir_tensor *bias = center && call->n_in > 2 ? call->in[2] : NULL;
    ir_tensor *y = call->out[0];
    double eps = ir_attr_float(call->node, "epsilon", 1e-5f);
    bool stash_f32 = ir_attr_int(call->node, "stash_type", 1) == IR_DT_FLOAT;
    uint64_t outer = 1, len = 1;
    for (int k = 0; k < x->rank; k++)
        if (k < axis)
            outer *= (uint64_t)x->dims[k];
        else
            len *= (uint64_t)x->dims[k];
    const int64_t *nd = x->dims + axis;
    int nr = x->rank - axis;
    bool direct_s = scale->nelems == len;
    bool direct_b = !bias || bias->nelems == len;
    ir_tensor *mean_out = center && call->n_out > 1 ? call->out[1] : NULL;
    ir_tensor *inv_out = center && call->n_out > 2 ? call->out[2] : NULL;
    for (uint64_t o = 0; o < outer; o++) {
        uint64_t base = o * len;
        double m = 0, sq = 0;
        if (center && len) {
            for (uint64_t j = 0; j < len; j++)
                m += get_f(x, base + j);
            m /= (double)len;
        }
        for (uint64_t j = 0; j < len; j++) {
            double d = get_f(x, base + j) - m;
            sq += d * d;
        }
        double v = len ? sq / (double)len : 0;
        double inv = 1.0 / sqrt(v + eps);
        if (stash_f32) { /* stash_type float: statistics rounded to f32 */
            m = (float)m;
            inv = (float)(1.0 / sqrt((float)v + (float)eps));
        }
        if (mean_out)
            set_f(mean_out, o, m);
        if (inv_out)
            set_f(inv_out, o, inv);
        for (uint64_t j = 0; j < len; j++) {
            uint64_t si = direct_s ? j : bcast_index(scale, nd, nr, j);
            double r = (get_f(x, base + j) - m) * inv * get_f(scale, si);
            if (bias)
                r += get_f(bias, direct_b ? j : bcast_index(bias, nd, nr, j));
            set_f(y, base + j, r);
        }
    }
    return OCT_OK;
}

oct_status ref_layernorm(ref_call *call)
{
    int axis;
    if (!ops_ln_axis(call->node, call->in[0]->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad axis");
    return normalize_rows(call, axis, true);
}

/* ---- RMSNormalization ---------------------------------------------------- */

/* RMSNormalization: normalize_rows without the mean; Y has the scale's
 * type. */
oct_status ref_rmsnorm(ref_call *call)
{
    int axis;
    if (!ops_rms_axis(call->node, call->in[0]->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad axis");
    return normalize_rows(call, axis, false);
}
