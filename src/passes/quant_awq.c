/*
 * quant_awq.c: `octet quantize --weights-only --algo=awq --calib DATA`:
 * activation-aware weight scaling (Lin et al., "AWQ: Activation-aware
 * Weight Quantization for LLM Compression and Acceleration", 2023) before
 * round to nearest with the clip search.
 *
 * For the MatMul layers reading one input X (q, k and v of an attention;
 * gate and up of a SwiGLU) with X's K channels: Y = X W = (X / s)(s W) for
 * any positive s (one per channel).  Rounding s W instead of W protects the
 * channels where |x| is large.  s_k = mean|x_k|^alpha (mean over the
 * calibration rows; a mean below 1e-4 counts as 1e-4), divided by
 * sqrt(max s * min s), with alpha = i / 19, i = 0..19, the one of least
 * output error summed over the group's layers:
 *   sum_n (w_n - q(s w)_n / s)^T H (w_n - q(s w)_n / s),  H = X^T X,
 * which is ||X W - X W_q||^2 on the calibration data (q: round to nearest
 * in the output format and blocks, without the clip search; for the block
 * formats of quant_wo_lowbit.c (NVFP4, MXFP4, MXFP8, Q8_0, Q6_K, Q4_K)
 * their own scale rules, second-level scales included, through its
 * quant_wo_lowbit_fake: what the writer will store; alpha = 0 is plain
 * rounding, so the choice never does worse than it on that measure; ties
 * keep the smaller alpha).  The integer formats then round s W with the
 * clip search; the block formats have none (their scales follow their
 * rules), so what was scored is what is written.
 *
 * X / s must cost nothing: s is folded exactly into the op producing X, and
 * a group is left as it is when there is no such fold (no op is ever
 * inserted).  Folds, X being read by the group's MatMuls only:
 *   X = Mul(z, c), c a constant of K values read only there (the gain of an
 *     RMSNorm or LayerNorm without bias): c /= s;
 *   X = MatMul(z, V), V a constant [*, K] read only there: column k of V
 *     divided by s_k;
 *   X = Mul(a, b), a and b not constant: the fold of a (or else b) if that
 *     operand is read only by this Mul and has one of these folds itself
 *     (SwiGLU's up projection: X = silu(gate) * (z U), U's columns).
 * The float model after the folds computes what it did before, within
 * float rounding.  Statistics (H and mean|x| of every group's input) come
 * from one pass of the samples through the float model; a fold scales
 * only the input of its own group, so the later groups' statistics stay
 * valid.  Memory: one K x K Hessian per group input at once.
 */
#include <string.h>

#include "passes/quant.h"

enum { AWQ_GRID = 20 };

typedef quant_fold_group awq_group;

/* The constant whose K channels fold 1/s of value v (read by `uses`
 * readers that all take the scaled value), or NULL. */
static ir_tensor *fold_target(const ir_graph *g, const ir_value *v, int64_t K, bool *columns)
{
    const ir_node *p = v->producer;
    if (!p || p->n_in != 2 || (v->flags & IR_VAL_OUTPUT) || !p->in[0] || !p->in[1])
        return NULL;
    const ir_value *a = p->in[0], *b = p->in[1];
    if (p->op == IR_OP_MATMUL && b->init && b->init->dtype == IR_DT_FLOAT &&
        b->init->rank == 2 && b->init->dims[1] == K && ir_value_use_count(g, b) == 1) {
        *columns = true;
        return b->init;
    }
    if (p->op != IR_OP_MUL)
        return NULL;
    for (int i = 0; i < 2; i++) {
        const ir_value *c = i ? a : b;
        if (c->init) {
            const ir_tensor *t = c->init;
            bool ok = t->dtype == IR_DT_FLOAT && t->rank >= 1 && t->dims[t->rank - 1] == K &&
                      (int64_t)t->nelems == K && ir_value_use_count(g, c) == 1;
            *columns = false;
            return ok ? c->init : NULL;
        }
    }
    for (int i = 0; i < 2; i++) {
        const ir_value *c = i ? b : a;
        ir_tensor *t;
        if (ir_value_use_count(g, c) == 1 && (t = fold_target(g, c, K, columns)))
            return t;
    }
    return NULL;
}

/* Weight k x N of MatMul layer e as floats (rows k contiguous). */
static const float *weight(const quant_wo_weight *e)
{
    return e->node->in[e->input]->init->data;
}

/* q(v) in place for v = s W of layer e (K x N, row k contiguous): the
 * floats the written model would compute with, by the output format's
 * own rules (col: K floats of scratch).  The integer grids: per column
 * and block of bs rows, the range's scale (no clip search); the block
 * formats: quant_wo_lowbit.c's fit and rounding, so that the search
 * scores exactly what the writer will produce from these weights. */
static oct_status round_scaled(oct_ctx *ctx, const quant_wo_grid *g, const quant_wo_weight *e,
                               int64_t K, float *v, float *col)
{
    const ir_tensor *t = e->node->in[e->input]->init;
    if (quant_wo_is_lowbit(g->f))
        return quant_wo_lowbit_fake(ctx, g->f, t, e->axis, v, v);
    int64_t N = t->dims[1], bs = e->bs ? e->bs : K;
    for (int64_t n = 0; n < N; n++)
        for (int64_t lo = 0; lo < K; lo += bs) {
            int64_t hi = lo + bs < K ? lo + bs : K;
            for (int64_t k = lo; k < hi; k++)
                col[k - lo] = v[k * N + n];
            float sc;
            int32_t z;
            quant_wo_slice_fit(g, false, col, hi - lo, 1, &sc, &z);
            for (int64_t k = lo; k < hi; k++)
                v[k * N + n] = (float)(quant_wo_code(g, col[k - lo], sc, z) - z) * sc;
        }
    return OCT_OK;
}

/* *err = the output error of layer e (K x N) on H with scales s:
 * W_q = q(s W) / s.  d: K N doubles, v: K N floats, col: K floats. */
static oct_status layer_error(oct_ctx *ctx, const quant_wo_grid *g, const quant_wo_weight *e,
                              int64_t K, const double *h, const double *s, double *d, float *v,
                              float *col, double *err)
{
    int64_t N = e->node->in[e->input]->init->dims[1];
    const float *w = weight(e);
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++)
            v[k * N + n] = (float)(s[k] * (double)w[k * N + n]);
    oct_status st = round_scaled(ctx, g, e, K, v, col);
    if (st)
        return st;
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++)
            d[k * N + n] = (double)w[k * N + n] - (double)v[k * N + n] / s[k];
    *err = 0;
    for (int64_t p = 0; p < K; p++)
        for (int64_t q = 0; q < K; q++) {
            double hpq = h[p * K + q], acc = 0;
            if (hpq == 0)
                continue;
            for (int64_t n = 0; n < N; n++)
                acc += d[p * N + n] * d[q * N + n];
            *err += hpq * acc;
        }
    return OCT_OK;
}

/* The best scales of group gr (sel entries reading gr->x) into best[K]. */
static oct_status search(oct_ctx *ctx, const awq_group *gr, const quant_wo_weight *sel,
                         size_t n, const quant_wo_grid *g, const double *h,
                         const double *absmean, double *best)
{
    int64_t K = gr->K, maxN = 0;
    for (size_t i = gr->first; i < n; i++)
        if (sel[i].node->in[0] == gr->x && sel[i].node->in[sel[i].input]->init->dims[1] > maxN)
            maxN = sel[i].node->in[sel[i].input]->init->dims[1];
    size_t bytes = (size_t)(K * maxN + K) * sizeof(double) +
                   (size_t)(K * maxN + K) * sizeof(float);
    double *d = oct_malloc(ctx, bytes);
    if (!d)
        return OCT_EINTERNAL;
    double *s = d + K * maxN, best_err = 0;
    float *v = (float *)(s + K), *col = v + K * maxN;
    oct_status st = OCT_OK;
    for (int a = 0; a < AWQ_GRID && !st; a++) {
        double alpha = (double)a / (AWQ_GRID - 1), lo = INFINITY, hi = 0;
        for (int64_t k = 0; k < K; k++) {
            s[k] = pow(fmax(absmean[k], 1e-4), alpha);
            lo = fmin(lo, s[k]), hi = fmax(hi, s[k]);
        }
        for (int64_t k = 0; k < K; k++)
            s[k] /= sqrt(lo * hi);
        double err = 0, e1;
        for (size_t i = gr->first; i < n && !st; i++)
            if (sel[i].node->in[0] == gr->x &&
                !(st = layer_error(ctx, g, &sel[i], K, h, s, d, v, col, &e1)))
                err += e1;
        if (!st && (a == 0 || err < best_err)) {
            best_err = err;
            memcpy(best, s, (size_t)K * sizeof *best);
        }
    }
    oct_free(ctx, d, bytes);
    return st;
}

/* W's rows times s (every layer of the group) and the fold divided. */
void quant_fold_apply(const awq_group *gr, const quant_wo_weight *sel, size_t n, const double *s)
{
    int64_t K = gr->K;
    for (size_t i = gr->first; i < n; i++) {
        if (sel[i].node->in[0] != gr->x)
            continue;
        ir_tensor *t = sel[i].node->in[sel[i].input]->init;
        float *w = t->data;
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < t->dims[1]; c++)
                w[k * t->dims[1] + c] = (float)((double)w[k * t->dims[1] + c] * s[k]);
    }
    float *f = gr->fold->data;
    int64_t rows = gr->fold_columns ? gr->fold->dims[0] : 1;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < K; k++)
            f[r * K + k] = (float)((double)f[r * K + k] / s[k]);
}

/* The groups: MatMul layers by input, those whose input every reader is
 * one of them and that have a fold. */
size_t quant_fold_groups(const ir_graph *g, const quant_wo_weight *sel, size_t n,
                          awq_group *grs)
{
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        const ir_node *nd = sel[i].node;
        if (nd->op != IR_OP_MATMUL || sel[i].input != 1 || !nd->in[0])
            continue;
        ir_value *x = nd->in[0];
        bool seen = false;
        size_t members = 0;
        for (size_t j = 0; j < n; j++) {
            seen |= j < i && sel[j].node->in[0] == x && sel[j].node->op == IR_OP_MATMUL;
            members += sel[j].node->op == IR_OP_MATMUL && sel[j].input == 1 &&
                       sel[j].node->in[0] == x && sel[j].node->in[1] != x;
        }
        if (seen || ir_value_use_count(g, x) != members)
            continue;
        awq_group *gr = &grs[ng];
        gr->x = x, gr->first = i, gr->K = nd->in[1]->init->dims[0];
        if ((gr->fold = fold_target(g, x, gr->K, &gr->fold_columns)))
            ng++;
    }
    return ng;
}

oct_status quant_awq(ir_model *m, quant_wo_weight *sel, size_t n, const quant_wo_grid *g,
                     const quant_opts *opts, const quant_samples *data,
                     quant_progress_fn progress, void *progress_user, oct_ctx *ctx)
{
    (void)opts;
    awq_group *grs = ir_alloc_array(ctx, n + 1, sizeof *grs);
    ir_value **xs = ir_alloc_array(ctx, n + 1, sizeof *xs);
    int64_t *ks = ir_alloc_array(ctx, n + 1, sizeof *ks);
    double **hs = ir_alloc_array(ctx, n + 1, sizeof *hs);
    double **am = ir_alloc_array(ctx, n + 1, sizeof *am);
    if (!grs || !xs || !ks || !hs || !am)
        return OCT_EINTERNAL;
    size_t ng = quant_fold_groups(m->graph, sel, n, grs);
    oct_status st = OCT_OK;
    for (size_t i = 0; i < ng && !st; i++) {
        xs[i] = grs[i].x, ks[i] = grs[i].K;
        size_t kk = (size_t)(grs[i].K * grs[i].K);
        hs[i] = oct_malloc(ctx, kk * sizeof(double));
        am[i] = oct_malloc(ctx, (size_t)grs[i].K * sizeof(double));
        if (!hs[i] || !am[i])
            st = OCT_EINTERNAL;
        else {
            memset(hs[i], 0, kk * sizeof(double));
            memset(am[i], 0, (size_t)grs[i].K * sizeof(double));
        }
    }
    if (progress)
        progress(progress_user, 3, 0, ng);
    if (!st && ng)
        st = quant_wo_hessians(m, xs, ks, ng, data, hs, am, ctx);
    for (size_t i = 0; i < ng && !st; i++) {
        double *s = ir_alloc_array(ctx, (size_t)grs[i].K, sizeof *s);
        if (!s || (st = search(ctx, &grs[i], sel, n, g, hs[i], am[i], s)))
            st = st ? st : OCT_EINTERNAL;
        else
            quant_fold_apply(&grs[i], sel, n, s);
        if (progress && !st)
            progress(progress_user, 3, i + 1, ng);
    }
    for (size_t i = 0; i < ng; i++) {
        oct_free(ctx, hs[i], (size_t)(ks[i] * ks[i]) * sizeof(double));
        oct_free(ctx, am[i], (size_t)ks[i] * sizeof(double));
    }
    return st;
}
