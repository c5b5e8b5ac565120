/*
 * quant_hessian.c: the Hessians of weight-only quantization's layers from
 * the calibration samples, split from quant_gptq.c.  For each observed
 * input X (last dimension K) of a MatMul/Gemm layer, H = X^T X (K x K,
 * accumulated in double over every row of every sample: the upper
 * triangle while the samples run, mirrored at the end) and, for AWQ, the
 * mean |x| per input channel (quant_wo_hessians).
 *
 * --gptq-float-target (quant_hessians_float_target) runs the samples
 * twice: first through the float model (its caller swaps the float
 * weights in and back), keeping every sample's X as Xf; then through the
 * model as it is, accumulating H and C = X^T Xf (full K x K) from the same
 * rows of the same sample.
 */
#include <string.h>

#include "passes/quant.h"

typedef struct hess_acc {
    ir_value **x;               /* observed inputs */
    int64_t *K;
    double **h;                 /* K x K each (upper triangle accumulated) */
    double **absmean;           /* K each: sum |x| (NULL: not wanted) */
    uint64_t *rows;
    size_t n;
    oct_ctx *ctx;
    oct_status st;
    /* --gptq-float-target: the float model's inputs of every layer,
     * xf[i][sample] (rows x K each), kept by a first pass (keep) and
     * read by the second, which adds c[i] += x^T xf (K x K, full) */
    float ***xf;
    uint64_t **xf_rows;
    double **c;
    size_t sample;
    bool keep;
} hess_acc;

/* The float pass: sample a->sample's input i kept. */
static void hess_keep(hess_acc *a, size_t i, const float *x, uint64_t rows)
{
    size_t bytes = (size_t)rows * (size_t)a->K[i] * sizeof(float);
    float *copy = oct_malloc(a->ctx, bytes);
    if (!copy) {
        a->st = a->st ? a->st : OCT_EINTERNAL;
        return;
    }
    memcpy(copy, x, bytes);
    a->xf[i][a->sample] = copy;
    a->xf_rows[i][a->sample] = rows;
}

/* c[i] += x^T xf over the rows of this sample (the same rows in both
 * models: one sample, one graph). */
static void cross_add(hess_acc *a, size_t i, const float *x, uint64_t rows)
{
    int64_t K = a->K[i];
    const float *xf = a->xf[i][a->sample];
    if (!xf || a->xf_rows[i][a->sample] != rows) {
        if (!a->st)
            a->st = oct_error(a->ctx, OCT_EINTERNAL, "gptq: the float and quantized models "
                              "disagree on the rows of '%s'", a->x[i]->name);
        return;
    }
    double *c = a->c[i];
    for (uint64_t r = 0; r < rows; r++) {
        const float *xr = x + r * (uint64_t)K, *fr = xf + r * (uint64_t)K;
        for (int64_t p = 0; p < K; p++) {
            double v = xr[p];
            if (v == 0)
                continue;
            for (int64_t q = 0; q < K; q++)
                c[p * K + q] += v * (double)fr[q];
        }
    }
}

static void hess_add(hess_acc *a, size_t i, const ir_tensor *t)
{
    int64_t K = a->K[i];
    if (t->dtype != IR_DT_FLOAT || t->nelems % (uint64_t)K) {
        if (!a->st)
            a->st = oct_error(a->ctx, OCT_EINPUT, "gptq: input '%s' of a layer is not "
                              "float with last dimension %lld", a->x[i]->name, (long long)K);
        return;
    }
    const float *x = t->data;
    uint64_t rows = t->nelems / (uint64_t)K;
    if (a->keep) {
        hess_keep(a, i, x, rows);
        return;
    }
    if (a->c)
        cross_add(a, i, x, rows);
    double *h = a->h[i];
    for (uint64_t r = 0; r < rows; r++) {
        const float *xr = x + r * (uint64_t)K;
        for (int64_t p = 0; p < K; p++) {
            double v = xr[p];
            if (a->absmean)
                a->absmean[i][p] += fabs(v);
            if (v == 0)
                continue;
            for (int64_t q = p; q < K; q++)
                h[p * K + q] += v * (double)xr[q];
        }
    }
    a->rows[i] += rows;
}

static void hess_observe(void *user, const ir_value *v, const ir_tensor *t)
{
    hess_acc *a = user;
    for (size_t i = 0; i < a->n; i++)
        if (a->x[i] == v)
            hess_add(a, i, t);
}

/* Every sample of data through m, each observed input of a given to it. */
static oct_status hess_run(ir_model *m, hess_acc *a, const quant_samples *data, oct_ctx *ctx)
{
    const quant_engine *eng = quant_engine_ctx();
    size_t n_in = 0, n_obs = 0, n = a->n;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        n_in += !m->graph->inputs[i]->init;
    ir_value **obs = ir_alloc_array(ctx, n + 1, sizeof *obs);
    ir_tensor **in = ir_alloc_array(ctx, n_in + 1, sizeof *in);
    if (!obs || !in)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < n; i++)
        if (a->x[i]->producer)
            obs[n_obs++] = a->x[i];
    void *state = NULL;
    oct_status st = eng->prepare(eng, m, obs, n_obs, &state, ctx);
    for (size_t s = 0; !st && s < data->n; s++) {
        memset(in, 0, (n_in + 1) * sizeof *in);
        a->sample = s;
        st = data->get(data->user, s, in, ctx);
        /* a layer may read a graph input directly */
        for (size_t i = 0, k = 0; !st && i < m->graph->n_inputs; i++) {
            const ir_value *v = m->graph->inputs[i];
            if (!v->init)
                hess_observe(a, v, in[k++]);
        }
        if (!st)
            st = eng->run(state, (const ir_tensor *const *)in, n_in, hess_observe, a, ctx);
        for (size_t i = 0; i < n_in; i++)
            ir_heap_tensor_free(ctx, in[i]);
        if (!st)
            st = a->st;
    }
    eng->free(state, ctx);
    return st;
}

/* The accumulated upper triangles mirrored, the means divided. */
static oct_status hess_finish(const hess_acc *a, const quant_samples *data, oct_ctx *ctx)
{
    for (size_t i = 0; i < a->n; i++) {
        int64_t k = a->K[i];
        double *h = a->h[i];
        for (int64_t p = 0; p < k; p++)
            for (int64_t q = 0; q < p; q++)
                h[p * k + q] = h[q * k + p];
        for (int64_t p = 0; a->absmean && p < k; p++)
            a->absmean[i][p] /= a->rows[i] ? (double)a->rows[i] : 1.0;
        if (!a->rows[i])
            return oct_error(ctx, OCT_EINPUT, "%s: the input '%s' of a layer was never "
                             "computed", data->name ? data->name : "samples", a->x[i]->name);
    }
    return OCT_OK;
}

oct_status quant_wo_hessians(ir_model *m, ir_value **x, const int64_t *K, size_t n,
                             const quant_samples *data, double **h, double **absmean,
                             oct_ctx *ctx)
{
    uint64_t *rows = ir_alloc_array(ctx, n + 1, sizeof *rows);
    if (!rows)
        return OCT_EINTERNAL;
    hess_acc acc = {.x = x, .K = (int64_t *)K, .h = h, .absmean = absmean, .rows = rows,
                    .n = n, .ctx = ctx};
    oct_status st = hess_run(m, &acc, data, ctx);
    return st ? st : hess_finish(&acc, data, ctx);
}

oct_status quant_hessians_float_target(ir_model *m, ir_value **xs, const int64_t *ks,
                                      size_t nx, const quant_samples *data, double **hs,
                                      double **cs, void (*to_float)(void *user), void *user,
                                      oct_ctx *ctx)
{
    uint64_t *rows = ir_alloc_array(ctx, nx + 1, sizeof *rows);
    float ***xf = ir_alloc_array(ctx, nx + 1, sizeof *xf);
    uint64_t **xf_rows = ir_alloc_array(ctx, nx + 1, sizeof *xf_rows);
    if (!rows || !xf || !xf_rows)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    for (size_t i = 0; !st && i < nx; i++) {
        size_t bytes = (size_t)(ks[i] * ks[i]) * sizeof(double);
        xf[i] = ir_alloc_array(ctx, data->n + 1, sizeof **xf);
        xf_rows[i] = ir_alloc_array(ctx, data->n + 1, sizeof **xf_rows);
        if (!xf[i] || !xf_rows[i] || !(cs[i] = oct_malloc(ctx, bytes)))
            st = OCT_EINTERNAL;
        else
            memset(cs[i], 0, bytes);
    }
    hess_acc acc = {.x = xs, .K = (int64_t *)ks, .h = hs, .rows = rows, .n = nx, .ctx = ctx,
                    .xf = xf, .xf_rows = xf_rows, .c = cs, .keep = true};
    if (!st) {
        to_float(user);
        st = hess_run(m, &acc, data, ctx);
        to_float(user);
    }
    acc.keep = false;
    if (!st)
        st = hess_run(m, &acc, data, ctx);
    if (!st)
        st = hess_finish(&acc, data, ctx);
    for (size_t i = 0; i < nx; i++)
        for (size_t k = 0; xf[i] && k < data->n; k++)
            oct_free(ctx, xf[i][k], (size_t)xf_rows[i][k] * (size_t)ks[i] * sizeof(float));
    return st;
}
