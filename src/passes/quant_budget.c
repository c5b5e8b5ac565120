/*
 * quant_budget.c: --precision=budget:DB.  Starting from the per-tensor
 * choice of `auto`, the most sensitive tensors (lowest SQNR of their own
 * quantization, measured on the calibration data) go back to FP32 until
 * the end-to-end output SQNR against FP32 on the calibration data reaches
 * DB (the lowest over the model's float outputs).
 *
 * The candidates (activation groups and weights still quantized) are
 * ranked by sensitivity once; keeping the first k of the ranking in FP32
 * is one trial, and the smallest k that meets the budget is found by
 * bisection (k = 0 first, then log2 of the number of candidates trials),
 * which is what taking them back one at a time finds when the SQNR grows
 * with k.  The FP32 outputs are computed once; each trial runs only its
 * quantized copy.  Both run on the context's engine (the reference
 * interpreter), not the JIT that may run the calibration: a trial's model
 * is new each time, and compiling it costs more than interpreting the
 * samples (squeezenet1.1, 34 samples: 20 to 50 s per compiled trial, about
 * 2 s interpreted).
 *
 * Each trial rewrites a fresh copy of the prepared model in a context of
 * its own (freed after the trial), so memory does not grow with the number
 * of trials.  The fresh copy comes from the same load and passes as the
 * plan's model, so its values and nodes have the same ids: the plan is
 * carried over by id.
 */
#include <math.h>
#include <string.h>

#include "passes/quant.h"

/* The plan with values and nodes replaced by those of `to` (same ids). */
static oct_status remap(const quant_plan *plan, const ir_model *to, quant_plan *out,
                        oct_ctx *ctx)
{
    *out = *plan;
    out->t = ir_alloc_array(ctx, plan->n + 1, sizeof *out->t);
    if (!out->t)
        return OCT_EINTERNAL;
    memcpy(out->t, plan->t, plan->n * sizeof *out->t);
    const ir_graph *g = to->graph;
    for (size_t i = 0; i < plan->n; i++) {
        quant_tensor *e = &out->t[i];
        uint32_t vid = e->value->id;
        if (vid >= g->n_values || strcmp(g->values[vid]->name, e->value->name) != 0)
            return oct_error(ctx, OCT_EINTERNAL, "budget: the model copy differs "
                             "from the calibrated one at '%s'", e->value->name);
        e->value = g->values[vid];
        e->hist = NULL;
        if (e->node) {
            ir_node *found = NULL;
            for (size_t k = 0; k < g->n_nodes && !found; k++)
                if (g->nodes[k]->id == e->node->id)
                    found = g->nodes[k];
            if (!found)
                return oct_error(ctx, OCT_EINTERNAL, "budget: node missing in the copy");
            e->node = found;
        }
    }
    return OCT_OK;
}

/* The float outputs of a model, for the trials: the graph outputs made by
 * nodes, in node order (the order an engine observes them), and the
 * FP32 model's values of each on every sample. */
typedef struct budget_ref {
    size_t n_out;
    const char **name;  /* the outputs' names (a quantized copy gives its
                           DequantizeLinear output the FP32 name) */
    float **val;        /* [sample * n_out + o], NULL if not a float output */
    uint64_t *len;
    size_t cells;       /* samples x n_out */
    size_t sample;      /* the sample being run */
    double *signal, *noise;
    bool oom;
    oct_ctx *ctx;
} budget_ref;

/* The graph outputs of m that nodes produce, in node order. */
static ir_value **node_outputs(const ir_model *m, size_t *n, oct_ctx *ctx)
{
    const ir_graph *g = m->graph;
    ir_value **list = ir_alloc_array(ctx, g->n_outputs + 1, sizeof *list);
    *n = 0;
    for (size_t k = 0; list && k < g->n_nodes; k++)
        for (int o = 0; o < g->nodes[k]->n_out; o++) {
            ir_value *v = g->nodes[k]->out[o];
            if (v && (v->flags & IR_VAL_OUTPUT) && *n < g->n_outputs)
                list[(*n)++] = v;
        }
    return list;
}

static int ref_slot(const budget_ref *r, const ir_value *v)
{
    for (size_t o = 0; o < r->n_out; o++)
        if (!strcmp(r->name[o], v->name))
            return (int)o;
    return -1;
}

static void keep_ref(void *user, const ir_value *v, const ir_tensor *t)
{
    budget_ref *r = user;
    int o = ref_slot(r, v);
    if (o < 0 || t->dtype != IR_DT_FLOAT)
        return;
    size_t at = r->sample * r->n_out + (size_t)o;
    r->val[at] = oct_malloc(r->ctx, (t->nelems + 1) * sizeof(float));
    if (!r->val[at]) {
        r->oom = true;
        return;
    }
    memcpy(r->val[at], t->data, t->nelems * sizeof(float));
    r->len[at] = t->nelems;
}

static void compare_ref(void *user, const ir_value *v, const ir_tensor *t)
{
    budget_ref *r = user;
    int o = ref_slot(r, v);
    size_t at = r->sample * r->n_out + (size_t)o;
    if (o < 0 || t->dtype != IR_DT_FLOAT || !r->val[at] || r->len[at] != t->nelems)
        return;
    const float *a = r->val[at], *b = t->data;
    for (uint64_t i = 0; i < t->nelems; i++) {
        double d = (double)a[i] - b[i];
        r->signal[o] += (double)a[i] * a[i];
        r->noise[o] += d * d;
    }
}

/* Runs every sample through m on engine eng (contexts: ectx for the
 * engine, ctx for the samples), calling observe on m's outputs. */
static oct_status run_outputs(const quant_engine *eng, ir_model *m, budget_ref *r,
                              const quant_samples *data, quant_observe_fn observe,
                              oct_ctx *ectx, oct_ctx *ctx)
{
    size_t n_obs, n_in = 0;
    ir_value **obs = node_outputs(m, &n_obs, ectx);
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        n_in += !m->graph->inputs[i]->init;
    ir_tensor **in = ir_alloc_array(ctx, n_in + 1, sizeof *in);
    if (!obs || !in)
        return OCT_EINTERNAL;
    void *state = NULL;
    oct_status st = eng->prepare(eng, m, obs, n_obs, &state, ectx);
    for (size_t s = 0; !st && s < data->n; s++) {
        memset(in, 0, (n_in + 1) * sizeof *in);
        st = data->get(data->user, s, in, ctx);
        r->sample = s;
        if (!st)
            st = eng->run(state, (const ir_tensor *const *)in, n_in, observe, r, ectx);
        for (size_t i = 0; i < n_in; i++)
            ir_heap_tensor_free(ctx, in[i]);
        if (!st && r->oom)
            st = oct_error(ctx, OCT_EINTERNAL, "out of memory keeping the FP32 outputs");
    }
    eng->free(state, ectx);
    return st;
}

static oct_status ref_init(budget_ref *r, const ir_model *fp32, const quant_opts *opts,
                           const quant_samples *data, oct_ctx *ctx)
{
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    ir_model *copy; /* the engine wants a model it may hold */
    oct_status st = ir_model_clone(ctx, fp32, &copy);
    if (st)
        return st;
    ir_value **obs = node_outputs(copy, &r->n_out, ctx);
    r->cells = data->n * r->n_out;
    r->name = ir_alloc_array(ctx, r->n_out + 1, sizeof *r->name);
    r->val = ir_alloc_array(ctx, r->cells + 1, sizeof *r->val);
    r->len = ir_alloc_array(ctx, r->cells + 1, sizeof *r->len);
    r->signal = ir_alloc_array(ctx, r->n_out + 1, sizeof *r->signal);
    r->noise = ir_alloc_array(ctx, r->n_out + 1, sizeof *r->noise);
    if (!obs || !r->name || !r->val || !r->len || !r->signal || !r->noise)
        return OCT_EINTERNAL;
    for (size_t o = 0; o < r->n_out; o++)
        r->name[o] = obs[o]->name;
    return run_outputs(quant_engine_ctx(), copy, r, data, keep_ref, ctx, ctx);
}

static void ref_free(budget_ref *r)
{
    for (size_t i = 0; r->val && i < r->cells; i++)
        if (r->val[i])
            oct_free(r->ctx, r->val[i], (r->len[i] + 1) * sizeof(float));
}

/* End-to-end SQNR of the plan as it stands: the lowest over the float
 * outputs, against the FP32 outputs kept in r. */
static oct_status trial(budget_ref *r, const quant_plan *plan, const quant_opts *opts,
                        const quant_samples *data, quant_fresh_model_fn fresh,
                        void *user, double *db, oct_ctx *ctx)
{
    oct_ctx *tctx = ir_ctx_new();
    if (!tctx)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    tctx->limits = ctx->limits; /* the user's limits hold for trials too */
    tctx->engine = ctx->engine; /* and so does the user's engine */
    ir_model *copy;
    quant_plan rp;
    oct_status st = fresh(user, tctx, &copy);
    if (!st)
        st = remap(plan, copy, &rp, tctx);
    if (!st)
        st = quant_rewrite(copy, &rp, opts, tctx);
    /* the copy is only run: its weights dequantized once, not per sample
     * (on an MLP that was two thirds of a trial's time) */
    if (!st) {
        tctx->model = copy;
        st = pass_fold_eval(copy->graph, tctx);
        tctx->model = NULL;
    }
    memset(r->signal, 0, r->n_out * sizeof *r->signal);
    memset(r->noise, 0, r->n_out * sizeof *r->noise);
    if (!st) /* the samples belong to the data set's context: fetched and
              * freed in ctx, the copy run in tctx */
        st = run_outputs(quant_engine_ctx(), copy, r, data, compare_ref, tctx, ctx);
    *db = INFINITY;
    for (size_t o = 0; !st && o < r->n_out; o++)
        if (r->signal[o] > 0) {
            double v = r->noise[o] > 0 ? 10.0 * log10(r->signal[o] / r->noise[o]) : 200.0;
            *db = fmin(*db, v);
        }
    if (st) { /* carry the trial's diagnostics over */
        for (size_t i = 0; i < oct_diag_count(tctx); i++) {
            const oct_diag *d = oct_diag_get(tctx, i);
            oct_diagf(ctx, d->severity, d->status, NULL, 0, -1, d->tensor,
                      "budget trial: %s", d->message);
        }
    }
    oct_ctx_free(tctx);
    return st;
}

/* Keeps plan entry `idx` in FP32: a whole activation group, or one
 * weight; then the int32 biases that relied on either. */
static void keep_float(quant_plan *plan, int idx, const char *reason)
{
    if (plan->t[idx].kind == QKIND_WEIGHT) {
        plan->t[idx].keep_float = true;
        plan->t[idx].reason = reason;
    }
    for (size_t i = 0; plan->t[idx].hist && i < plan->n; i++) {
        quant_tensor *e = &plan->t[i];
        if (e->hist && quant_group_of(plan, (int)i) == idx) {
            e->keep_float = true;
            e->reason = reason;
        }
    }
    for (size_t i = 0; i < plan->n; i++) {
        quant_tensor *e = &plan->t[i];
        if (e->kind == QKIND_BIAS && !e->keep_float &&
            (plan->t[e->act].keep_float || plan->t[e->weight].keep_float)) {
            e->keep_float = true;
            e->reason = "bias stays FP32: its input or weight stays FP32 (budget)";
        }
    }
}

/* A candidate for FP32: an activation group (by its representative) or a
 * weight, still quantized. */
static bool candidate(quant_plan *plan, size_t i)
{
    const quant_tensor *e = &plan->t[i];
    if (e->keep_float)
        return false;
    if (e->kind == QKIND_WEIGHT)
        return true;
    return e->hist && quant_group_of(plan, (int)i) == (int)i;
}

/* The plan's decisions that a trial changes, to go back to. */
typedef struct budget_state {
    bool *keep;
    const char **reason;
} budget_state;

static void state_save(const quant_plan *plan, budget_state *s)
{
    for (size_t i = 0; i < plan->n; i++) {
        s->keep[i] = plan->t[i].keep_float;
        s->reason[i] = plan->t[i].reason;
    }
}

static void state_restore(quant_plan *plan, const budget_state *s)
{
    for (size_t i = 0; i < plan->n; i++) {
        plan->t[i].keep_float = s->keep[i];
        plan->t[i].reason = s->reason[i];
    }
}

/* The plan with the first k candidates of the ranking kept in FP32. */
static oct_status keep_first(quant_plan *plan, const budget_state *s, const int *rank,
                             size_t n_rank, size_t k, oct_ctx *ctx)
{
    state_restore(plan, s);
    for (size_t j = 0; j < k; j++) {
        const char *reason = ir_sprintf(ctx, "budget: kept FP32, most sensitive %zu of "
                                        "%zu (%.2f dB alone)", j + 1, n_rank,
                                        plan->t[rank[j]].sqnr);
        if (!reason)
            return OCT_EINTERNAL;
        keep_float(plan, rank[j], reason);
    }
    return OCT_OK;
}

/* The smallest k whose plan meets the budget, by bisection over the
 * ranking; the plan is left with it. */
static oct_status search(budget_ref *ref, quant_plan *plan, const budget_state *s,
                         const int *rank, size_t n, const quant_opts *opts,
                         const quant_samples *data, quant_fresh_model_fn fresh,
                         void *user, double *achieved_db, oct_ctx *ctx)
{
    double db = 0;
    oct_status st = trial(ref, plan, opts, data, fresh, user, &db, ctx);
    if (st || db >= opts->budget_db) {
        *achieved_db = db;
        return st;
    }
    /* lo fails; hi meets the budget (all n in FP32, assumed until seen) */
    size_t lo = 0, hi = n;
    double hi_db = NAN;
    while (!st && hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        st = keep_first(plan, s, rank, n, mid, ctx);
        if (!st)
            st = trial(ref, plan, opts, data, fresh, user, &db, ctx);
        if (!st && db >= opts->budget_db)
            hi = mid, hi_db = db;
        else
            lo = mid;
    }
    if (!st)
        st = keep_first(plan, s, rank, n, hi, ctx);
    if (!st && isnan(hi_db))
        st = trial(ref, plan, opts, data, fresh, user, &hi_db, ctx);
    if (st)
        return st;
    *achieved_db = hi_db;
    if (hi_db < opts->budget_db)
        oct_diagf(ctx, OCT_SEV_WARNING, OCT_OK, NULL, 0, -1, NULL,
                  "budget: %.2f dB not reached with every tensor in FP32 "
                  "(%.2f dB)", opts->budget_db, hi_db);
    return OCT_OK;
}

oct_status quant_budget(const ir_model *fp32, quant_plan *plan, const quant_opts *opts,
                        const quant_samples *data, quant_fresh_model_fn fresh,
                        void *user, double *achieved_db, oct_ctx *ctx)
{
    /* the ranking: candidates by their own SQNR, lowest first (ties: plan
     * order), as one at a time would take them */
    int *rank = ir_alloc_array(ctx, plan->n + 1, sizeof *rank);
    budget_state s = {ir_alloc_array(ctx, plan->n + 1, sizeof *s.keep),
                      ir_alloc_array(ctx, plan->n + 1, sizeof *s.reason)};
    if (!rank || !s.keep || !s.reason)
        return OCT_EINTERNAL;
    size_t n = 0;
    for (size_t i = 0; i < plan->n; i++)
        if (candidate(plan, i)) {
            size_t j = n++;
            for (; j > 0 && plan->t[rank[j - 1]].sqnr > plan->t[i].sqnr; j--)
                rank[j] = rank[j - 1];
            rank[j] = (int)i;
        }
    state_save(plan, &s);
    budget_ref ref;
    oct_status st = ref_init(&ref, fp32, opts, data, ctx);
    if (!st)
        st = search(&ref, plan, &s, rank, n, opts, data, fresh, user, achieved_db, ctx);
    ref_free(&ref);
    return st;
}
