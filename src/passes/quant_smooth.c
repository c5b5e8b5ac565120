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
 */
#include <string.h>

#include "passes/quant.h"

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
    oct_ctx *ctx;
    oct_status st;
} smooth_acc;

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

oct_status quant_smooth(ir_model *m, const quant_opts *opts, const quant_samples *data,
                        oct_ctx *ctx)
{
    ir_graph *g = m->graph;
    if (!(opts->smooth_alpha >= 0 && opts->smooth_alpha <= 1))
        return oct_error(ctx, OCT_EUSAGE, "smooth: alpha must be in [0, 1]");
    quant_wo_weight *sel = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *sel);
    quant_fold_group *grs = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *grs);
    ir_value **xs = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *xs);
    double **amax = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *amax);
    size_t n = 0;
    if (!sel || !grs || !xs || !amax)
        return OCT_EINTERNAL;
    oct_status st = select_layers(g, opts, sel, &n, ctx);
    if (st)
        return st;
    size_t ng = quant_fold_groups(g, sel, n, grs);
    for (size_t i = 0; i < ng; i++) {
        xs[i] = grs[i].x;
        if (!(amax[i] = ir_alloc_array(ctx, (size_t)grs[i].K, sizeof **amax)))
            return OCT_EINTERNAL;
    }
    if (!ng) {
        oct_diagf(ctx, OCT_SEV_WARNING, OCT_OK, NULL, 0, -1, NULL, "smooth: no MatMul "
                  "input has a norm gain or linear layer to fold factors into; nothing "
                  "smoothed");
        return OCT_OK;
    }
    smooth_acc acc = {grs, ng, amax, ctx, OCT_OK};
    st = quant_observe_samples(m, xs, ng, data, observe_max, &acc, ctx);
    st = st ? st : acc.st;
    for (size_t i = 0; i < ng && !st; i++) {
        factors(&grs[i], sel, n, opts->smooth_alpha, amax[i]);
        quant_fold_apply(&grs[i], sel, n, amax[i]);
    }
    return st;
}
