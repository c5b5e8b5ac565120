/*
 * quant_smooth.c: `octet quantize --smooth=ALPHA` (SmoothQuant: Xiao et
 * al., "SmoothQuant: Accurate and Efficient Post-Training Quantization for
 * Large Language Models", 2023) before static or dynamic W8A8.
 *
 * A transformer's linear-layer inputs have a few channels far larger than
 * the rest (after a norm gain that grew them in training); one activation
 * scale per tensor (or per row) is then set by those channels and the
 * others keep few levels.  Weights have no such outliers.  With
 * Y = X W = (X / s)(s W), per input channel k
 *     s_k = max|x_k|^alpha / max|w_k|^(1 - alpha)
 * (max|x_k| over the calibration rows, max|w_k| over row k of every weight
 * reading X) moves part of the range from X into W: alpha 1 flattens X
 * entirely, alpha 0 flattens W; 0.5 splits the difficulty evenly.  Maxima
 * below 1e-5 count as 1e-5 so that a dead channel gets a finite factor.
 *
 * The division costs nothing: it is folded into the op producing X exactly
 * as AWQ folds its scales (quant_fold_groups / quant_fold_apply of
 * quant_awq.c: a norm gain, a previous MatMul's columns, or through
 * SwiGLU's product), and a group without such a fold is left as it is; no
 * op is ever inserted.  The float model computes what it did before, so
 * the quantizer that runs next (static, whose calibration sees the smoothed
 * tensors, or dynamic) simply meets flatter activations.  Statistics come
 * from one pass of the samples through the float model; each fold changes
 * only its own group's input, so the other groups' maxima stay valid.
 *
 * --smooth=auto searches alpha per group instead (0, 0.1, ..., 1): the
 * same pass keeps up to SMOOTH_ROWS rows of the group's input, spread over
 * the samples, and each alpha is scored by the squared error of the
 * group's layers on those rows with W8A8 simulated as the quantizer will
 * run it: activations asymmetric 8-bit over the rows' range (per row for
 * dynamic per-token, per tensor otherwise), weights symmetric 8-bit per
 * output column.  The smallest error wins (ties: the smaller alpha).
 */
#include <string.h>

#include "passes/quant.h"

enum { SMOOTH_ROWS = 128, SMOOTH_STEPS = 10 };

/* ---- running samples --------------------------------------------------------- */

oct_status quant_observe_samples(ir_model *m, ir_value *const *obs, size_t n_obs,
                                 const quant_samples *data, quant_observe_fn observe,
                                 void *user, oct_ctx *ctx)
{
    const quant_engine *eng = quant_engine_ctx();
    size_t n_in = 0, n_nodes = 0;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        n_in += !m->graph->inputs[i]->init;
    ir_value **computed = ir_alloc_array(ctx, n_obs + 1, sizeof *computed);
    ir_tensor **in = ir_alloc_array(ctx, n_in + 1, sizeof *in);
    if (!computed || !in)
        return OCT_EINTERNAL;
    if (!data || !data->n)
        return oct_error(ctx, OCT_EUSAGE, "quantize: no calibration samples");
    for (size_t i = 0; i < n_obs; i++)
        if (obs[i]->producer)
            computed[n_nodes++] = obs[i];
    void *state = NULL;
    oct_status st = eng->prepare(eng, m, computed, n_nodes, &state, ctx);
    for (size_t s = 0; !st && s < data->n; s++) {
        memset(in, 0, (n_in + 1) * sizeof *in);
        st = data->get(data->user, s, in, ctx);
        /* an observed value may be a graph input */
        for (size_t i = 0, k = 0; !st && i < m->graph->n_inputs; i++) {
            const ir_value *v = m->graph->inputs[i];
            if (v->init)
                continue;
            for (size_t j = 0; j < n_obs; j++)
                if (obs[j] == v)
                    observe(user, v, in[k]);
            k++;
        }
        if (!st)
            st = eng->run(state, (const ir_tensor *const *)in, n_in, observe, user, ctx);
        for (size_t i = 0; i < n_in; i++)
            ir_heap_tensor_free(ctx, in[i]);
    }
    eng->free(state, ctx);
    return st;
}

/* ---- channel maxima ---------------------------------------------------------- */

typedef struct smooth_acc {
    const quant_fold_group *grs;
    size_t n;
    double **amax;              /* K per group */
    float **rows;               /* auto: SMOOTH_ROWS x K per group, or NULL */
    int64_t *n_rows;
    int64_t quota;              /* rows kept per sample */
    oct_ctx *ctx;
    oct_status st;
} smooth_acc;

/* Keeps up to quota rows of this sample's input of group i, evenly
 * spaced, while the group's SMOOTH_ROWS are not full. */
static void keep_rows(smooth_acc *a, size_t i, const float *x, int64_t n)
{
    int64_t K = a->grs[i].K, room = SMOOTH_ROWS - a->n_rows[i];
    int64_t take = a->quota < room ? a->quota : room;
    if (take > n)
        take = n;
    for (int64_t j = 0; j < take; j++)
        memcpy(a->rows[i] + (a->n_rows[i] + j) * K, x + (j * n / take) * K,
               (size_t)K * sizeof *x);
    a->n_rows[i] += take;
}

static void observe_max(void *user, const ir_value *v, const ir_tensor *t)
{
    smooth_acc *a = user;
    for (size_t i = 0; i < a->n; i++) {
        if (a->grs[i].x != v)
            continue;
        int64_t K = a->grs[i].K;
        if (t->dtype != IR_DT_FLOAT || t->nelems % (uint64_t)K) {
            if (!a->st)
                a->st = oct_error(a->ctx, OCT_EINPUT, "smooth: input '%s' of a layer is "
                                  "not float with last dimension %lld", v->name,
                                  (long long)K);
            return;
        }
        const float *x = t->data;
        double *m = a->amax[i];
        for (uint64_t e = 0; e < t->nelems; e++) {
            double mag = fabs((double)x[e]);
            int64_t k = (int64_t)(e % (uint64_t)K);
            if (mag > m[k])
                m[k] = mag;
        }
        if (a->rows)
            keep_rows(a, i, x, (int64_t)(t->nelems / (uint64_t)K));
    }
}

/* ---- the pass ------------------------------------------------------------- */

/* The MatMuls with a constant [K, N] float weight that the filters pass. */
static oct_status select_layers(ir_graph *g, const quant_opts *opts, quant_wo_weight *sel,
                                size_t *n, oct_ctx *ctx)
{
    quant_filter f;
    oct_status st = quant_filter_init(&f, opts, ctx);
    if (st)
        return st;
    *n = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        ir_node *nd = g->nodes[i];
        const ir_value *w = nd->n_in == 2 ? nd->in[1] : NULL;
        if (nd->op != IR_OP_MATMUL || !nd->in[0] || !w || !w->init ||
            w->init->dtype != IR_DT_FLOAT || w->init->rank != 2 ||
            !quant_filter_pass(&f, nd, true))
            continue;
        sel[(*n)++] = (quant_wo_weight){.node = nd, .input = 1, .axis = 1};
    }
    quant_filter_free(&f);
    return OCT_OK;
}

/* s of group gr from its input maxima (overwritten by s). */
static void factors(const quant_fold_group *gr, const quant_wo_weight *sel, size_t n,
                    double alpha, double *xs)
{
    for (int64_t k = 0; k < gr->K; k++) {
        double wmax = 0;
        for (size_t i = gr->first; i < n; i++) {
            if (sel[i].node->in[0] != gr->x)
                continue;
            const ir_tensor *t = sel[i].node->in[1]->init;
            const float *w = t->data;
            for (int64_t c = 0; c < t->dims[1]; c++)
                wmax = fmax(wmax, fabs((double)w[k * t->dims[1] + c]));
        }
        xs[k] = pow(fmax(xs[k], 1e-5), alpha) / pow(fmax(wmax, 1e-5), 1 - alpha);
    }
}

/* ---- --smooth=auto ------------------------------------------------------------ */

/* Quantize-dequantize n values of x in place, asymmetric 8-bit over their
 * range (which includes 0). */
static void qdq_asym(float *x, int64_t n)
{
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++)
        lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    if (hi == lo)
        return;
    float sc = (hi - lo) / 255.0f, zp = nearbyintf(-lo / sc);
    for (int64_t i = 0; i < n; i++)
        x[i] = (fminf(fmaxf(nearbyintf(x[i] / sc) + zp, 0), 255) - zp) * sc;
}

/* y (R x N) = x (R x K) * w (K x N), float sums in k order. */
static void matmul_rows(const float *x, const float *w, float *y, int64_t R, int64_t K,
                        int64_t N)
{
    for (int64_t r = 0; r < R; r++) {
        float *yr = y + r * N;
        memset(yr, 0, (size_t)N * sizeof *yr);
        for (int64_t k = 0; k < K; k++) {
            float a = x[r * K + k];
            const float *wk = w + k * N;
            for (int64_t n = 0; n < N; n++)
                yr[n] += a * wk[n];
        }
    }
}

/* The squared error of group gr's layers on rows X (R x K) with factors
 * s, W8A8 simulated (the file comment); work: R*K + K*N + 2*R*N floats. */
static double smoothed_error(const quant_fold_group *gr, const quant_wo_weight *sel,
                             size_t n, const float *X, int64_t R, const double *s,
                             bool per_row, float *work)
{
    int64_t K = gr->K;
    float *xq = work;
    for (int64_t r = 0; r < R; r++)
        for (int64_t k = 0; k < K; k++)
            xq[r * K + k] = (float)(X[r * K + k] / s[k]);
    for (int64_t r = 0; r < (per_row ? R : 1); r++)
        qdq_asym(xq + r * K, per_row ? K : R * K);
    double err = 0;
    for (size_t i = gr->first; i < n; i++) {
        if (sel[i].node->in[0] != gr->x)
            continue;
        const ir_tensor *t = sel[i].node->in[1]->init;
        const float *w = t->data;
        int64_t N = t->dims[1];
        float *wq = xq + R * K, *yq = wq + K * N, *y = yq + R * N;
        for (int64_t c = 0; c < N; c++) {
            double mx = 0;
            for (int64_t k = 0; k < K; k++)
                mx = fmax(mx, fabs(s[k] * w[k * N + c]));
            float sc = mx > 0 ? (float)(mx / 127) : 1.0f;
            for (int64_t k = 0; k < K; k++)
                wq[k * N + c] = fminf(fmaxf(nearbyintf((float)(s[k] * w[k * N + c]) / sc),
                                            -127), 127) * sc;
        }
        matmul_rows(xq, wq, yq, R, K, N);
        matmul_rows(X, w, y, R, K, N);
        for (int64_t e = 0; e < R * N; e++)
            err += ((double)yq[e] - y[e]) * ((double)yq[e] - y[e]);
    }
    return err;
}

/* The alpha of 0, 0.1, ..., 1 with the least smoothed_error on the kept
 * rows; amax: the group's input maxima (left unchanged). */
static oct_status search_alpha(const quant_fold_group *gr, const quant_wo_weight *sel,
                               size_t n, const double *amax, const float *X, int64_t R,
                               bool per_row, double *alpha, oct_ctx *ctx)
{
    int64_t K = gr->K, N = 0;
    for (size_t i = gr->first; i < n; i++)
        if (sel[i].node->in[0] == gr->x && sel[i].node->in[1]->init->dims[1] > N)
            N = sel[i].node->in[1]->init->dims[1];
    size_t nw = (size_t)(R * K + K * N + 2 * R * N), ns = (size_t)K;
    float *work = oct_malloc(ctx, (nw + 1) * sizeof *work);
    double *s = oct_malloc(ctx, (ns + 1) * sizeof *s);
    double best = INFINITY;
    oct_status st = work && s ? OCT_OK : OCT_EINTERNAL;
    *alpha = 0.5;
    for (int step = 0; step <= SMOOTH_STEPS && !st; step++) {
        double a = (double)step / SMOOTH_STEPS;
        memcpy(s, amax, ns * sizeof *s);
        factors(gr, sel, n, a, s);
        double err = smoothed_error(gr, sel, n, X, R, s, per_row, work);
        if (err < best)
            best = err, *alpha = a;
    }
    oct_free(ctx, work, (nw + 1) * sizeof *work);
    oct_free(ctx, s, (ns + 1) * sizeof *s);
    return st;
}

oct_status quant_smooth(ir_model *m, const quant_opts *opts, const quant_samples *data,
                        oct_ctx *ctx)
{
    ir_graph *g = m->graph;
    bool automatic = opts->smooth_alpha == QUANT_SMOOTH_AUTO;
    if (!automatic && !(opts->smooth_alpha >= 0 && opts->smooth_alpha <= 1))
        return oct_error(ctx, OCT_EUSAGE, "smooth: alpha must be in [0, 1] or auto");
    quant_wo_weight *sel = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *sel);
    quant_fold_group *grs = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *grs);
    ir_value **xs = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *xs);
    double **amax = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *amax);
    float **rows = automatic ? ir_alloc_array(ctx, g->n_nodes + 1, sizeof *rows) : NULL;
    int64_t *n_rows = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *n_rows);
    size_t n = 0;
    if (!sel || !grs || !xs || !amax || !n_rows || (automatic && !rows))
        return OCT_EINTERNAL;
    oct_status st = select_layers(g, opts, sel, &n, ctx);
    if (st)
        return st;
    size_t ng = quant_fold_groups(g, sel, n, grs);
    for (size_t i = 0; i < ng; i++) {
        xs[i] = grs[i].x;
        if (!(amax[i] = ir_alloc_array(ctx, (size_t)grs[i].K, sizeof **amax)))
            return OCT_EINTERNAL;
        if (rows && !(rows[i] = ir_alloc_array(ctx, (size_t)(SMOOTH_ROWS * grs[i].K),
                                              sizeof **rows)))
            return OCT_EINTERNAL;
    }
    if (!ng) {
        oct_diagf(ctx, OCT_SEV_WARNING, OCT_OK, NULL, 0, -1, NULL, "smooth: no MatMul "
                  "input has a norm gain or linear layer to fold factors into; nothing "
                  "smoothed");
        return OCT_OK;
    }
    int64_t quota = data && data->n ? (int64_t)((SMOOTH_ROWS + data->n - 1) / data->n) : 0;
    smooth_acc acc = {grs, ng, amax, rows, n_rows, quota, ctx, OCT_OK};
    st = quant_observe_samples(m, xs, ng, data, observe_max, &acc, ctx);
    st = st ? st : acc.st;
    for (size_t i = 0; i < ng && !st; i++) {
        double alpha = opts->smooth_alpha;
        if (automatic && n_rows[i] > 0) { /* no rows seen: the default alpha */
            st = search_alpha(&grs[i], sel, n, amax[i], rows[i], n_rows[i],
                              opts->dynamic && opts->dynamic_rows, &alpha, ctx);
            if (st)
                break;
            oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, grs[i].x->name,
                      "smooth: alpha %.1f for '%s' (searched on %lld rows)", alpha,
                      grs[i].x->name, (long long)n_rows[i]);
        }
        factors(&grs[i], sel, n, alpha, amax[i]);
        quant_fold_apply(&grs[i], sel, n, amax[i]);
    }
    return st;
}
