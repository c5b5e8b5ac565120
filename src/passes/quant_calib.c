/*
 * quant_calib.c: calibration (pass 1: streaming summaries of every planned
 * activation), the choice of ranges and precision, and the exact error
 * measurement behind it (pass 2: each candidate grid's squared error on the
 * calibration data, accumulated per tensor without keeping activations).
 *
 * The samples run through a calibration engine (quant.h): the reference
 * interpreter by default (defined here), or one the caller injects.
 *
 * Fake quantization here follows the numeric contract of QuantizeLinear and
 * DequantizeLinear (src/ref/quant.c) in float32:
 *   integer: q = saturate(round_half_even(x / s) + zp), x' = (q - zp) * s
 *   float8:  q = fp8(x / s) rounded to nearest even, saturating; x' = q * s
 */
#include <math.h>
#include <string.h>

#include "passes/quant.h"
#include "ops/ops.h"

/* ---- fake quantization ---------------------------------------------------- */

typedef struct grid {
    ir_dtype type;     /* UINT8, INT8, FLOAT8E4M3FN or FLOAT8E5M2 */
    float scale;
    int32_t zp;
    int32_t qmin, qmax;
} grid;

static grid make_grid(calib_range r, calib_target t)
{
    calib_qparams qp = calib_qparams_for(r, t);
    grid g = {.scale = qp.scale, .zp = qp.zero_point};
    switch (t) {
    case CALIB_U8_ASYM:
        g.type = IR_DT_UINT8, g.qmin = 0, g.qmax = 255;
        break;
    case CALIB_S8_SYM:
        g.type = IR_DT_INT8, g.qmin = -128, g.qmax = 127;
        break;
    case CALIB_FP8_E4M3:
        g.type = IR_DT_FLOAT8E4M3FN;
        break;
    case CALIB_FP8_E5M2:
        g.type = IR_DT_FLOAT8E5M2;
        break;
    }
    return g;
}

/* x quantized and dequantized on grid g; *clipped set if x saturated. */
static inline float fake_quant(float x, const grid *g, bool *clipped)
{
    if (g->type == IR_DT_UINT8 || g->type == IR_DT_INT8) {
        float q = nearbyintf(x / g->scale) + (float)g->zp;
        *clipped = q < (float)g->qmin || q > (float)g->qmax;
        q = q < (float)g->qmin ? (float)g->qmin : q > (float)g->qmax ? (float)g->qmax : q;
        return (q - (float)g->zp) * g->scale;
    }
    float y = x / g->scale;
    uint8_t bits = ops_f32_to_fp8(g->type, y, true);
    float q = ops_fp8_to_f32(g->type, bits);
    /* saturated: beyond the largest finite value (E4M3FN 448, E5M2 57344) */
    *clipped = fabsf(y) > (g->type == IR_DT_FLOAT8E5M2 ? 57344.0f : 448.0f);
    return q * g->scale;
}

static calib_target int8_target(const quant_opts *o)
{
    return o->act_symmetric ? CALIB_S8_SYM : CALIB_U8_ASYM;
}

static calib_target fp8_target(const quant_opts *o)
{
    return o->fp8_e5m2 ? CALIB_FP8_E5M2 : CALIB_FP8_E4M3;
}

/* ---- running the samples ---------------------------------------------- */

typedef struct calib_run {
    quant_plan *plan;
    const quant_opts *opts;
    int pass;               /* 1: summaries, 2: error measurement */
    grid *int8_grid;        /* per plan entry (pass 2) */
    grid *fp8_grid;
} calib_run;

static void observe_values(calib_run *cr, int idx, const float *x, uint64_t n)
{
    quant_tensor *e = &cr->plan->t[idx];
    if (cr->pass == 1) {
        calib_hist_add(e->hist, x, n);
        return;
    }
    const grid *gi = &cr->int8_grid[idx], *gf = &cr->fp8_grid[idx];
    double signal = 0, ni = 0, nf = 0;
    uint64_t clipped_i = 0, clipped_f = 0;
    for (uint64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        bool ci, cf;
        float a = fake_quant(v, gi, &ci) - v;
        float b = fake_quant(v, gf, &cf) - v;
        signal += (double)v * v;
        ni += (double)a * a;
        nf += (double)b * b;
        clipped_i += ci;
        clipped_f += cf;
    }
    e->signal += signal;
    e->noise_int8 += ni;
    e->noise_fp8 += nf;
    e->n_clipped_int8 += clipped_i;
    e->n_clipped_fp8 += clipped_f;
    e->n_values += n;
}

static void observer(void *user, const ir_value *v, const ir_tensor *t)
{
    calib_run *cr = user;
    if (v->id >= cr->plan->n_values || t->dtype != IR_DT_FLOAT)
        return;
    int idx = cr->plan->of_value[v->id];
    if (idx >= 0 && cr->plan->t[idx].kind == QKIND_ACT)
        observe_values(cr, idx, (const float *)t->data, t->nelems);
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

static oct_status set_params(oct_ctx *ctx, quant_tensor *e, const grid *g)
{
    e->qtype = g->type;
    e->n_scales = 1;
    e->scales = ir_alloc(ctx, sizeof *e->scales);
    e->zero_points = ir_alloc(ctx, sizeof *e->zero_points);
    if (!e->scales || !e->zero_points)
        return OCT_EINTERNAL;
    e->scales[0] = g->scale;
    e->zero_points[0] = g->zp;
    return OCT_OK;
}

/* Activation groups: ranges for both candidate grids, pass 2 to measure
 * them, then the decision. */
static oct_status choose_activations(ir_model *m, quant_plan *plan,
                                     const quant_opts *opts,
                                     const quant_samples *data,
                                     quant_progress_fn progress, void *pu,
                                     oct_ctx *ctx)
{
    size_t n = plan->n;
    grid *gi = ir_alloc_array(ctx, n + 1, sizeof *gi);
    grid *gf = ir_alloc_array(ctx, n + 1, sizeof *gf);
    calib_range *rf = ir_alloc_array(ctx, n + 1, sizeof *rf);
    calib_hist *scratch = oct_malloc(ctx, sizeof *scratch);
    if (!gi || !gf || !rf || !scratch) {
        oct_free(ctx, scratch, sizeof *scratch);
        return OCT_EINTERNAL;
    }
    for (size_t i = 0; i < n; i++) {
        quant_tensor *e = &plan->t[i];
        if (!e->hist)
            continue;
        int rep = quant_group_of(plan, (int)i);
        if (rep == (int)i) {
            calib_range ri = group_range(plan, rep, opts->method, int8_target(opts),
                                         opts->percentile, scratch);
            rf[i] = group_range(plan, rep, opts->method, fp8_target(opts),
                                opts->percentile, scratch);
            gi[i] = make_grid(ri, int8_target(opts));
            gf[i] = make_grid(rf[i], fp8_target(opts));
            e->range = ri;
        }
    }
    /* members take their representative's grids */
    for (size_t i = 0; i < n; i++) {
        if (!plan->t[i].hist)
            continue;
        int rep = quant_group_of(plan, (int)i);
        gi[i] = gi[rep];
        gf[i] = gf[rep];
        rf[i] = rf[rep];
        plan->t[i].range = plan->t[rep].range;
    }
    oct_free(ctx, scratch, sizeof *scratch);

    calib_run cr = {.plan = plan, .opts = opts, .pass = 2,
                    .int8_grid = gi, .fp8_grid = gf};
    oct_status st = run_pass(m, &cr, data, progress, pu, ctx);
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
        quant_tensor *e = &plan->t[i];
        if (!e->hist || quant_group_of(plan, (int)i) != (int)i)
            continue;
        double sig = 0, ni = 0, nf = 0;
        for (size_t j = 0; j < n; j++)
            if (plan->t[j].hist && quant_group_of(plan, (int)j) == (int)i) {
                sig += plan->t[j].signal;
                ni += plan->t[j].noise_int8;
                nf += plan->t[j].noise_fp8;
            }
        bool fp8;
        const char *reason = NULL;
        quant_force force = QFORCE_NONE;
        for (size_t j = 0; j < n && !force; j++)
            if (plan->t[j].hist && quant_group_of(plan, (int)j) == (int)i && plan->t[j].force) {
                force = plan->t[j].force;
                reason = plan->t[j].force_reason;
            }
        switch (force ? QPREC_BUDGET + (int)force : (int)opts->precision) {
        case QPREC_BUDGET + QFORCE_FP32:
        case QPREC_BUDGET + QFORCE_INT8:
            fp8 = false;
            break;
        case QPREC_BUDGET + QFORCE_FP8:
            fp8 = true;
            break;
        case QPREC_FP8:
            fp8 = true, reason = "--precision=fp8";
            break;
        case QPREC_INT8:
            fp8 = false, reason = "--precision=int8";
            break;
        default:
            fp8 = sqnr_db(sig, nf) > sqnr_db(sig, ni);
            reason = fp8 ? "auto: FP8 SQNR higher than INT8"
                         : "auto: INT8 SQNR at least FP8's";
            break;
        }
        for (size_t j = 0; j < n; j++) {
            quant_tensor *m_e = &plan->t[j];
            if (!m_e->hist || quant_group_of(plan, (int)j) != (int)i)
                continue;
            m_e->reason = reason;
            m_e->keep_float = force == QFORCE_FP32;
            if (fp8)
                m_e->range = rf[j];
            st = set_params(ctx, m_e, fp8 ? &gf[j] : &gi[j]);
            if (st)
                return st;
            m_e->sqnr_int8 = sqnr_db(m_e->signal, m_e->noise_int8);
            m_e->sqnr_fp8 = sqnr_db(m_e->signal, m_e->noise_fp8);
            m_e->sqnr = fp8 ? m_e->sqnr_fp8 : m_e->sqnr_int8;
            uint64_t clipped = fp8 ? m_e->n_clipped_fp8 : m_e->n_clipped_int8;
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
    return st;
}
