/*
 * quant_calib.c: calibration (pass 1: streaming summaries of every planned
 * activation), the choice of ranges and precision, and the exact error
 * measurement behind it (pass 2: each candidate grid's squared error on the
 * calibration data, accumulated per tensor without keeping activations).
 *
 * The samples run through a calibration engine (quant.h): the reference
 * interpreter by default (defined here), or one the caller injects.  The
 * passes quant_calibrate and quant_choose (the end of this file) run these
 * steps on the context's quantization session.
 *
 * Every candidate is a family of quant_opts (a pair of formats of the
 * table, src/ir/qformats.def); activations use the family's act format.
 * Fake quantization here follows the numeric contract of QuantizeLinear and
 * DequantizeLinear (src/ref/quant.c) in float32, with the format's range:
 *   integer: q = saturate_[qmin,qmax](round_half_even(x / s) + zp),
 *            x' = (q - zp) * s
 *   float8:  q = fp8(x / s) rounded to nearest even, saturating at fmax;
 *            x' = q * s
 */
#include <math.h>
#include <string.h>

#include "passes/quant.h"
#include "ops/ops.h"

/* ---- fake quantization ---------------------------------------------------- */

typedef struct grid {
    const ir_qformat_traits *f; /* the format: element type, range */
    float scale;
    int32_t zp;
    float qmin, qmax;           /* integer formats */
    float fmax;                 /* float formats */
} grid;

static grid make_grid(calib_range r, ir_qformat format)
{
    calib_qparams qp = calib_qparams_for(r, format);
    const ir_qformat_traits *f = ir_qformat_info(format);
    grid g = {.f = f, .scale = qp.scale, .zp = qp.zero_point,
              .qmin = (float)f->qmin, .qmax = (float)f->qmax, .fmax = (float)f->fmax};
    return g;
}

/* x quantized and dequantized on grid g; *clipped set if x saturated. */
static inline float fake_quant(float x, const grid *g, bool *clipped)
{
    if (!g->f->is_float) {
        float q = nearbyintf(x / g->scale) + (float)g->zp;
        *clipped = q < g->qmin || q > g->qmax;
        q = q < g->qmin ? g->qmin : q > g->qmax ? g->qmax : q;
        return (q - (float)g->zp) * g->scale;
    }
    float y = x / g->scale;
    uint8_t bits = ops_f32_to_fp8(g->f->dtype, y, true);
    float q = ops_fp8_to_f32(g->f->dtype, bits);
    /* saturated: beyond the largest finite value (E4M3FN 448, E5M2 57344) */
    *clipped = fabsf(y) > g->fmax;
    return q * g->scale;
}

/* ---- running the samples ---------------------------------------------- */

typedef struct calib_run {
    quant_plan *plan;
    const quant_opts *opts;
    int pass;               /* 1: summaries, 2: error measurement */
    grid *grids[QUANT_MAX_FAMILIES]; /* per family, per plan entry (pass 2) */
} calib_run;

static void observe_values(calib_run *cr, int idx, const float *x, uint64_t n)
{
    quant_tensor *e = &cr->plan->t[idx];
    if (cr->pass == 1) {
        calib_hist_add(e->hist, x, n);
        return;
    }
    int n_fam = cr->opts->n_families;
    double signal = 0, noise[QUANT_MAX_FAMILIES] = {0};
    uint64_t clipped[QUANT_MAX_FAMILIES] = {0};
    for (uint64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        signal += (double)v * v;
        for (int k = 0; k < n_fam; k++) {
            bool c;
            float d = fake_quant(v, &cr->grids[k][idx], &c) - v;
            noise[k] += (double)d * d;
            clipped[k] += c;
        }
    }
    e->signal += signal;
    for (int k = 0; k < n_fam; k++) {
        e->noise[k] += noise[k];
        e->n_clipped[k] += clipped[k];
    }
    e->n_values += n;
}

static void observer(void *user, const ir_value *v, const ir_tensor *t)
{
    calib_run *cr = user;
    if (v->id >= cr->plan->n_values || t->dtype != IR_DT_FLOAT)
        return;
    int idx = cr->plan->of_value[v->id];
    if (idx < 0 || cr->plan->t[idx].kind != QKIND_ACT)
        return;
    observe_values(cr, idx, (const float *)t->data, t->nelems);
    if (cr->pass == 1) /* --bias-correction's channel means */
        quant_biascorr_observe(&cr->plan->t[idx], t);
}

static bool all_finite(const ir_tensor *t)
{
    if (t->dtype != IR_DT_FLOAT)
        return true;
    const float *x = t->data;
    for (uint64_t i = 0; i < t->nelems; i++)
        if (!isfinite(x[i]))
            return false;
    return true;
}

static size_t n_model_inputs(const ir_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        n += !m->graph->inputs[i]->init;
    return n;
}

/* ---- the context's engine ------------------------------------------------ */

/* State of the default calibration engine, which runs the graph through
 * the context's evaluation engine (ctx->engine: the reference interpreter
 * in contexts made by oct_ctx_new): the model and which value ids are
 * observed (the engine reports every node output; only those pass). */
typedef struct ctx_engine {
    const ir_engine *eng;
    const ir_model *m;
    bool *observed;          /* by value id */
    size_t n_values;
    quant_observe_fn observe;
    void *observe_user;
} ctx_engine;

static void ctx_engine_filter(void *user, const ir_value *v, const ir_tensor *t)
{
    ctx_engine *ce = user;
    if (v->id < ce->n_values && ce->observed[v->id])
        ce->observe(ce->observe_user, v, t);
}

static oct_status ctx_engine_prepare(const quant_engine *eng, ir_model *m,
                                     ir_value *const *observed, size_t n_observed,
                                     void **state, oct_ctx *ctx)
{
    (void)eng;
    *state = NULL;
    const ir_engine *ie = ir_ctx_engine(ctx, "calibration");
    if (!ie)
        return OCT_EINTERNAL;
    ctx_engine *ce = oct_malloc(ctx, sizeof *ce);
    *state = ce;
    if (!ce)
        return OCT_EINTERNAL;
    memset(ce, 0, sizeof *ce);
    ce->eng = ie;
    ce->m = m;
    ce->n_values = m->graph->n_values;
    ce->observed = oct_malloc(ctx, ce->n_values + 1);
    if (!ce->observed)
        return OCT_EINTERNAL;
    memset(ce->observed, 0, ce->n_values + 1);
    for (size_t i = 0; i < n_observed; i++)
        if (observed[i]->id < ce->n_values)
            ce->observed[observed[i]->id] = true;
    return OCT_OK;
}

/* Observed values come in node order, as the engine computes them. */
static oct_status ctx_engine_run(void *state, const ir_tensor *const *inputs,
                                 size_t n_inputs, quant_observe_fn observe,
                                 void *observe_user, oct_ctx *ctx)
{
    ctx_engine *ce = state;
    size_t n_out = ce->m->graph->n_outputs;
    ir_tensor **outputs = oct_malloc(ctx, (n_out + 1) * sizeof *outputs);
    if (!outputs)
        return OCT_EINTERNAL;
    memset(outputs, 0, (n_out + 1) * sizeof *outputs);
    ce->observe = observe;
    ce->observe_user = observe_user;
    oct_status st = ce->eng->run(ctx, ce->m, inputs, n_inputs, outputs, n_out,
                                 ctx_engine_filter, ce);
    for (size_t i = 0; i < n_out; i++)
        ir_heap_tensor_free(ctx, outputs[i]);
    oct_free(ctx, outputs, (n_out + 1) * sizeof *outputs);
    return st;
}

static void ctx_engine_free(void *state, oct_ctx *ctx)
{
    ctx_engine *ce = state;
    if (!ce)
        return;
    if (ce->observed)
        oct_free(ctx, ce->observed, ce->n_values + 1);
    oct_free(ctx, ce, sizeof *ce);
}

const quant_engine *quant_engine_ctx(void)
{
    static const quant_engine eng = {
        .name = "ctx",
        .prepare = ctx_engine_prepare,
        .run = ctx_engine_run,
        .free = ctx_engine_free,
    };
    return &eng;
}

/* The node outputs the plan observes (activation entries), in node order;
 * graph inputs are observed by run_pass itself. */
static oct_status observed_values(const ir_model *m, const quant_plan *plan,
                                  ir_value ***out, size_t *n_out, oct_ctx *ctx)
{
    const ir_graph *g = m->graph;
    size_t n = 0;
    ir_value **list = ir_alloc_array(ctx, g->n_values + 1, sizeof *list);
    if (!list)
        return OCT_EINTERNAL;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *node = g->nodes[k];
        for (int o = 0; o < node->n_out; o++) {
            ir_value *v = node->out[o];
            if (!v || !v->name[0] || v->id >= plan->n_values)
                continue;
            int idx = plan->of_value[v->id];
            if (idx >= 0 && plan->t[idx].kind == QKIND_ACT && n < g->n_values)
                list[n++] = v;
        }
    }
    *out = list;
    *n_out = n;
    return OCT_OK;
}

/* One pass over the data set with the given observer state, run by
 * opts->engine (the reference interpreter if NULL). */
static oct_status run_pass(ir_model *m, calib_run *cr, const quant_samples *data,
                           quant_progress_fn progress, void *progress_user,
                           oct_ctx *ctx)
{
    const quant_engine *eng = cr->opts->engine ? cr->opts->engine : quant_engine_ctx();
    size_t n_in = n_model_inputs(m);
    ir_value **observed = NULL;
    size_t n_observed = 0;
    void *state = NULL;
    ir_tensor **inputs = oct_malloc(ctx, (n_in + 1) * sizeof *inputs);
    oct_status st = inputs ? OCT_OK : OCT_EINTERNAL;
    if (!st)
        st = observed_values(m, cr->plan, &observed, &n_observed, ctx);
    if (!st)
        st = eng->prepare(eng, m, observed, n_observed, &state, ctx);
    uint64_t used = 0;
    for (size_t s = 0; !st && s < data->n; s++) {
        memset(inputs, 0, (n_in + 1) * sizeof *inputs);
        st = data->get(data->user, s, inputs, ctx);
        bool finite = true;
        for (size_t i = 0; !st && i < n_in; i++)
            finite &= all_finite(inputs[i]);
        if (!st && !finite) {
            if (!cr->opts->ignore_nonfinite)
                st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, data->name,
                               "calibration sample %zu contains NaN or Inf "
                               "(pass --ignore-nonfinite to skip such samples)", s);
            else if (cr->pass == 1)
                oct_diagf(ctx, OCT_SEV_WARNING, OCT_OK, NULL, 0, -1, data->name,
                          "calibration sample %zu contains NaN or Inf: skipped", s);
        } else if (!st) {
            /* graph inputs are activations too: observe them directly */
            size_t k = 0;
            for (size_t i = 0; i < m->graph->n_inputs; i++) {
                const ir_value *v = m->graph->inputs[i];
                if (v->init)
                    continue;
                observer(cr, v, inputs[k++]);
            }
            st = eng->run(state, (const ir_tensor *const *)inputs, n_in, observer, cr, ctx);
            used++;
        }
        for (size_t i = 0; i < n_in; i++)
            ir_heap_tensor_free(ctx, inputs[i]);
        if (progress && !st)
            progress(progress_user, cr->pass, s + 1, data->n);
    }
    eng->free(state, ctx);
    if (inputs)
        oct_free(ctx, inputs, (n_in + 1) * sizeof *inputs);
    if (!st && !used)
        st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, data->name,
                       "no usable calibration sample");
    if (cr->pass == 1)
        cr->plan->n_samples = used;
    return st;
}

oct_status quant_calibrate(ir_model *m, quant_plan *plan, const quant_opts *opts,
                           const quant_samples *data, quant_progress_fn progress,
                           void *progress_user, oct_ctx *ctx)
{
    if (!data->n)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, data->name,
                         "the calibration data set is empty");
    calib_run cr = {.plan = plan, .opts = opts, .pass = 1};
    for (size_t i = 0; i < plan->n; i++) /* a second run starts afresh */
        if (plan->t[i].ch_sum) {
            memset(plan->t[i].ch_sum, 0, (size_t)plan->t[i].n_ch * sizeof(double));
            plan->t[i].ch_count = 0;
        }
    return run_pass(m, &cr, data, progress, progress_user, ctx);
}

/* ---- choosing ------------------------------------------------------------ */

static double sqnr_db(double signal, double noise)
{
    if (noise <= 0)
        return signal > 0 ? 200.0 : 0.0; /* exact: report a ceiling */
    if (signal <= 0)
        return 0.0;
    return 10.0 * log10(signal / noise);
}

/* Range of a group: the members' summaries merged. */
static calib_range group_range(quant_plan *plan, int rep, calib_method method,
                               calib_target target, double percentile,
                               calib_hist *scratch)
{
    calib_hist_init(scratch);
    for (size_t i = 0; i < plan->n; i++) {
        quant_tensor *e = &plan->t[i];
        if (e->hist && quant_group_of(plan, (int)i) == rep)
            calib_hist_merge(scratch, e->hist);
    }
    return calib_choose_range(scratch, method, target, percentile);
}

static oct_status set_params(oct_ctx *ctx, quant_tensor *e, ir_qformat format,
                             const grid *g)
{
    e->format = format;
    e->n_scales = 1;
    e->scales = ir_alloc(ctx, sizeof *e->scales);
    e->zero_points = ir_alloc(ctx, sizeof *e->zero_points);
    if (!e->scales || !e->zero_points)
        return OCT_EINTERNAL;
    e->scales[0] = g->scale;
    e->zero_points[0] = g->zp;
    return OCT_OK;
}

/* Activation groups: a range and grid per candidate family, pass 2 to
 * measure them, then the decision. */
static oct_status choose_activations(ir_model *m, quant_plan *plan,
                                     const quant_opts *opts,
                                     const quant_samples *data,
                                     quant_progress_fn progress, void *pu,
                                     oct_ctx *ctx)
{
    size_t n = plan->n;
    int n_fam = opts->n_families;
    calib_run cr = {.plan = plan, .opts = opts, .pass = 2};
    calib_range *ranges[QUANT_MAX_FAMILIES] = {0};
    calib_hist *scratch = oct_malloc(ctx, sizeof *scratch);
    if (!scratch)
        return OCT_EINTERNAL;
    for (int k = 0; k < n_fam; k++) {
        cr.grids[k] = ir_alloc_array(ctx, n + 1, sizeof *cr.grids[k]);
        ranges[k] = ir_alloc_array(ctx, n + 1, sizeof *ranges[k]);
        if (!cr.grids[k] || !ranges[k]) {
            oct_free(ctx, scratch, sizeof *scratch);
            return OCT_EINTERNAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!plan->t[i].hist || quant_group_of(plan, (int)i) != (int)i)
            continue;
        for (int k = 0; k < n_fam; k++) {
            ir_qformat f = opts->families[k].act;
            ranges[k][i] = group_range(plan, (int)i, opts->method, f,
                                       opts->percentile, scratch);
            cr.grids[k][i] = make_grid(ranges[k][i], f);
        }
    }
    /* members take their representative's grids */
    for (size_t i = 0; i < n; i++) {
        if (!plan->t[i].hist)
            continue;
        int rep = quant_group_of(plan, (int)i);
        for (int k = 0; k < n_fam; k++) {
            cr.grids[k][i] = cr.grids[k][rep];
            ranges[k][i] = ranges[k][rep];
        }
    }
    oct_free(ctx, scratch, sizeof *scratch);

    /* no samples (a fixed precision only): nothing is measured */
    oct_status st = data ? run_pass(m, &cr, data, progress, pu, ctx) : OCT_OK;
    if (st)
        return st;
    /* constants are measured on their own values */
    for (size_t i = 0; i < n; i++) {
        quant_tensor *e = &plan->t[i];
        if (e->kind == QKIND_CONST)
            observe_values(&cr, (int)i, (const float *)e->value->init->data,
                           e->value->init->nelems);
    }
    /* decide per group: the sums of its members' errors */
    for (size_t i = 0; i < n; i++) {
        if (!plan->t[i].hist || quant_group_of(plan, (int)i) != (int)i)
            continue;
        double sig = 0, noise[QUANT_MAX_FAMILIES] = {0}, sqnr[QUANT_MAX_FAMILIES];
        int force = QFORCE_NONE;
        const char *force_reason = NULL;
        for (size_t j = 0; j < n; j++) {
            const quant_tensor *m_e = &plan->t[j];
            if (!m_e->hist || quant_group_of(plan, (int)j) != (int)i)
                continue;
            sig += m_e->signal;
            for (int k = 0; k < n_fam; k++)
                noise[k] += m_e->noise[k];
            if (!force && m_e->force) {
                force = m_e->force;
                force_reason = m_e->force_reason;
            }
        }
        for (int k = 0; k < n_fam; k++)
            sqnr[k] = sqnr_db(sig, noise[k]);
        const char *reason;
        bool keep_float;
        int best = quant_pick_family(ctx, opts, force, force_reason, sqnr, &reason,
                                     &keep_float);
        for (size_t j = 0; j < n; j++) {
            quant_tensor *m_e = &plan->t[j];
            if (!m_e->hist || quant_group_of(plan, (int)j) != (int)i)
                continue;
            m_e->reason = reason;
            m_e->keep_float = keep_float;
            m_e->family = best;
            m_e->range = ranges[best][j];
            st = set_params(ctx, m_e, opts->families[best].act, &cr.grids[best][j]);
            if (st)
                return st;
            for (int k = 0; k < n_fam; k++)
                m_e->sqnr_of[k] = sqnr_db(m_e->signal, m_e->noise[k]);
            m_e->sqnr = m_e->sqnr_of[best];
            uint64_t clipped = m_e->n_clipped[best];
            m_e->clipped = m_e->n_values ? (double)clipped / (double)m_e->n_values : 0;
        }
    }
    return OCT_OK;
}

oct_status quant_choose(ir_model *m, quant_plan *plan, const quant_opts *opts,
                        const quant_samples *data, quant_progress_fn progress,
                        void *progress_user, oct_ctx *ctx)
{
    oct_status st = choose_activations(m, plan, opts, data, progress,
                                       progress_user, ctx);
    for (size_t i = 0; !st && i < plan->n; i++)
        if (plan->t[i].kind == QKIND_WEIGHT)
            st = quant_choose_weight(ctx, &plan->t[i], opts);
    for (size_t i = 0; !st && i < plan->n; i++)
        if (plan->t[i].kind == QKIND_BIAS)
            st = quant_choose_bias(ctx, plan, &plan->t[i]);
    if (!st && opts->bias_correction)
        st = quant_biascorr_choose(plan, ctx);
    return st;
}

/* ---- the passes ------------------------------------------------------------ */

/* quant_calibrate: the session's samples into fresh summaries of the
 * planned activations, or the statistics of --load-stats; then
 * --save-stats. */
oct_status pass_quant_calibrate(ir_graph *g, oct_ctx *ctx)
{
    quant_session *s = ctx->quant;
    ir_model *m = ctx->model;
    OCT_ASSERT(s && m && m->graph == g && s->model == m);
    oct_status st;
    if (s->load_stats) {
        st = quant_stats_load(m, &s->plan, s->load_stats, ctx);
    } else if (!s->data) {
        return oct_error(ctx, OCT_EUSAGE, "pass 'quant_calibrate' has no calibration "
                         "samples (give --calib FILE, or --load-stats FILE)");
    } else {
        for (size_t i = 0; i < s->plan.n; i++) /* a second run starts afresh */
            if (s->plan.t[i].kind == QKIND_ACT)
                calib_hist_init(s->plan.t[i].hist);
        st = quant_calibrate(m, &s->plan, &s->opts, s->data, s->progress,
                             s->progress_user, ctx);
    }
    if (!st && s->save_stats)
        st = quant_stats_save(m, &s->plan, s->save_stats, ctx);
    if (!st)
        s->have |= PASS_A_QSTATS;
    return st;
}

/* Budget trials start from copies of the model as quant_choose sees it
 * (the plan's model: the same ids) when the session gives no other. */
static oct_status clone_model(void *user, oct_ctx *ctx, ir_model **out)
{
    return ir_model_clone(ctx, user, out);
}

/* quant_choose: formats and parameters; with the samples, each candidate
 * measured on them (needed by --precision=auto and budget:DB, which then
 * spends its budget here). */
oct_status pass_quant_choose(ir_graph *g, oct_ctx *ctx)
{
    quant_session *s = ctx->quant;
    ir_model *m = ctx->model;
    OCT_ASSERT(s && m && m->graph == g && s->model == m);
    const quant_samples *data = s->data && s->data->n ? s->data : NULL;
    if (!data && s->opts.precision != QPREC_FIXED)
        return oct_error(ctx, OCT_EUSAGE, "pass 'quant_choose': --precision=%s "
                         "measures every candidate on the calibration samples; "
                         "give --calib FILE",
                         s->opts.precision == QPREC_AUTO ? "auto" : "budget:DB");
    oct_status st = quant_choose(m, &s->plan, &s->opts, data, s->progress,
                                 s->progress_user, ctx);
    if (!st && s->opts.precision == QPREC_BUDGET) {
        const ir_model *fp32 = s->fp32;
        quant_fresh_model_fn fresh = s->fresh ? s->fresh : clone_model;
        void *user = s->fresh ? s->fresh_user : m;
        ir_model *copy = NULL;
        if (!fp32 && !(st = ir_model_clone(ctx, m, &copy)))
            fp32 = copy;
        double achieved;
        if (!st)
            st = quant_budget(fp32, &s->plan, &s->opts, data, fresh, user, &achieved, ctx);
        if (!st)
            oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL,
                      "budget: output SQNR %.2f dB on the calibration data (target "
                      "%.2f dB)", achieved, s->opts.budget_db);
    }
    if (!st)
        s->have |= PASS_A_QFORMATS;
    return st;
}
