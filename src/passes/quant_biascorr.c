/*
 * quant_biascorr.c: empirical bias correction (Nagel et al. 2019, "Data-Free
 * Quantization Through Weight Equalization and Bias Correction", section
 * 4.2, with the expectation measured on the calibration data instead of
 * taken from BatchNormalization statistics), `octet quantize
 * --bias-correction`.
 *
 * A layer y = W x + b whose weight is quantized to W' computes
 * y' = W' x + b, off by (W' - W) x; its mean over the data is
 * (W' - W) E[x], a shift of every output channel that rounding does not
 * average away (the same rounded weights meet every input).  Subtracting
 * it from b makes E[y'] = E[y].  For a Conv, E[x] is the mean of each
 * input channel over the calibration samples and positions, so border
 * positions that read the zero padding are counted as if they read the
 * mean: exact for 1x1 convolutions and Gemm, close for the others.
 *
 * The correction lives in the plan (quant_tensor.bias_delta) and reaches
 * the model when quant_rewrite starts, so the budget's trials, which
 * rewrite fresh copies of the model from the plan, see it too.  With
 * --load-stats the channel means are not in the statistics file: no bias
 * is corrected (a note says so).
 */
#include <string.h>

#include "passes/quant.h"

/* The layers corrected: Conv and Gemm (not transposed input, beta 1, which
 * quant_plan_build requires of a quantized bias) with their bias entry. */
static bool bc_layer(const quant_plan *plan, const quant_tensor *e)
{
    if (e->kind != QKIND_BIAS || e->weight < 0 || !e->node || !e->node->in[0])
        return false;
    const ir_node *n = e->node;
    if (n->op == IR_OP_GEMM)
        return !ir_attr_int(n, "transA", 0) && n->in[0]->type.rank == 2;
    (void)plan;
    return n->op == IR_OP_CONV && n->in[1]->init->rank >= 3;
}

/* The plan entry observing the layer's input, or -1. */
static int bc_input(const quant_plan *plan, const quant_tensor *e)
{
    const ir_value *x = e->node->in[0];
    int idx = x->id < plan->n_values ? plan->of_value[x->id] : -1;
    return idx >= 0 && plan->t[idx].kind == QKIND_ACT ? idx : -1;
}

oct_status quant_biascorr_plan(quant_plan *plan, oct_ctx *ctx)
{
    for (size_t i = 0; i < plan->n; i++) {
        const quant_tensor *e = &plan->t[i];
        int x = bc_layer(plan, e) ? bc_input(plan, e) : -1;
        if (x < 0 || plan->t[x].ch_sum)
            continue;
        const ir_type *ty = &plan->t[x].value->type;
        if (ty->rank < 2 || ty->dims[1].value < 1)
            continue;
        quant_tensor *a = &plan->t[x];
        a->n_ch = ty->dims[1].value;
        a->ch_sum = oct_malloc(ctx, (size_t)a->n_ch * sizeof *a->ch_sum);
        if (!a->ch_sum)
            return OCT_EINTERNAL;
        memset(a->ch_sum, 0, (size_t)a->n_ch * sizeof *a->ch_sum);
    }
    return OCT_OK;
}

void quant_biascorr_observe(quant_tensor *e, const ir_tensor *t)
{
    if (!e->ch_sum || t->rank < 2 || t->dims[1] != e->n_ch)
        return;
    const float *x = t->data;
    int64_t outer = t->dims[0], inner = 1;
    for (int d = 2; d < t->rank; d++)
        inner *= t->dims[d];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < e->n_ch; c++) {
            const float *p = x + (o * e->n_ch + c) * inner;
            double s = 0;
            for (int64_t i = 0; i < inner; i++)
                s += p[i];
            e->ch_sum[c] += s;
        }
    e->ch_count += (uint64_t)(outer * inner);
}

/* delta[o] = sum over the weights w[o, ...] of their rounding error times
 * the mean of the input channel each one reads (alpha scales a Gemm). */
static void bc_delta(const quant_tensor *w, const float *wq, const quant_tensor *x,
                     float *delta, int64_t n_out)
{
    const ir_node *n = w->node;
    const ir_tensor *t = w->value->init;
    const float *wf = t->data;
    double inv = 1.0 / (double)x->ch_count;
    if (n->op == IR_OP_GEMM) {
        bool trans = ir_attr_int(n, "transB", 0) != 0;
        int64_t K = trans ? t->dims[1] : t->dims[0];
        double alpha = ir_attr_float(n, "alpha", 1.0f);
        for (int64_t o = 0; o < n_out; o++) {
            double d = 0;
            for (int64_t k = 0; k < K; k++) {
                int64_t at = trans ? o * K + k : k * n_out + o;
                d += ((double)wq[at] - wf[at]) * x->ch_sum[k] * inv;
            }
            delta[o] = (float)(alpha * d);
        }
        return;
    }
    int64_t cpg = t->dims[1], per = (int64_t)t->nelems / t->dims[0] / cpg;
    int64_t groups = x->n_ch / cpg, opg = t->dims[0] / groups;
    for (int64_t o = 0; o < n_out; o++) {
        double d = 0;
        for (int64_t c = 0; c < cpg; c++) {
            double mean = x->ch_sum[(o / opg) * cpg + c] * inv;
            for (int64_t j = 0; j < per; j++) {
                int64_t at = (o * cpg + c) * per + j;
                d += ((double)wq[at] - wf[at]) * mean;
            }
        }
        delta[o] = (float)d;
    }
}

/* Whether the shapes of layer e, its weight and its input agree. */
static bool bc_shapes(const quant_tensor *e, const quant_tensor *w, const quant_tensor *x)
{
    const ir_tensor *t = w->value->init;
    int64_t n_out = (int64_t)e->value->init->nelems;
    if (e->node->op == IR_OP_GEMM) {
        bool trans = ir_attr_int(e->node, "transB", 0) != 0;
        return t->rank == 2 && (trans ? t->dims[0] : t->dims[1]) == n_out &&
               (trans ? t->dims[1] : t->dims[0]) == x->n_ch;
    }
    int64_t cpg = t->dims[1];
    return t->dims[0] == n_out && cpg > 0 && x->n_ch % cpg == 0 &&
           n_out % (x->n_ch / cpg) == 0;
}

oct_status quant_biascorr_choose(quant_plan *plan, oct_ctx *ctx)
{
    size_t done = 0, missing = 0;
    for (size_t i = 0; i < plan->n; i++) {
        quant_tensor *e = &plan->t[i];
        e->bias_delta = NULL;
        int xi = bc_layer(plan, e) ? bc_input(plan, e) : -1;
        if (xi < 0)
            continue;
        const quant_tensor *w = &plan->t[e->weight], *x = &plan->t[xi];
        if (w->keep_float || !w->format || !bc_shapes(e, w, x))
            continue;
        if (!x->ch_sum || !x->ch_count) {
            missing++;
            continue;
        }
        int64_t n_out = (int64_t)e->value->init->nelems;
        float *wq = quant_weight_roundtrip(ctx, w);
        e->bias_delta = ir_alloc_array(ctx, (size_t)n_out + 1, sizeof *e->bias_delta);
        if (!wq || !e->bias_delta)
            return OCT_EINTERNAL;
        bc_delta(w, wq, x, e->bias_delta, n_out);
        done++;
    }
    if (missing)
        oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL, "bias-correction: %zu "
                  "layers not corrected: no channel means (statistics loaded from a "
                  "file do not keep them)", missing);
    (void)done;
    return OCT_OK;
}

oct_status quant_biascorr_apply(quant_plan *plan, oct_ctx *ctx)
{
    for (size_t i = 0; i < plan->n; i++) {
        quant_tensor *e = &plan->t[i];
        if (!e->bias_delta || plan->t[e->weight].keep_float)
            continue;
        const ir_tensor *b = e->value->init;
        ir_tensor *nb = ir_tensor_new(ctx, IR_DT_FLOAT, b->rank, b->dims);
        if (!nb)
            return OCT_EINTERNAL;
        const float *src = b->data;
        float *dst = nb->data;
        for (uint64_t k = 0; k < b->nelems; k++)
            dst[k] = src[k] - e->bias_delta[k];
        nb->name = b->name;
        e->value->init = nb;
    }
    return OCT_OK;
}
