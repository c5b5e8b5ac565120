/*
 * quant_budget.c: --precision=budget:DB.  Starting from the per-tensor
 * choice of `auto`, the most sensitive activation (lowest SQNR of its own
 * quantization, measured on the calibration data) goes back to FP32, one
 * group at a time, until the end-to-end output SQNR against FP32 on the
 * calibration data reaches DB (the lowest over the model's float outputs).
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

/* End-to-end SQNR of the plan as it stands: the lowest over the outputs. */
static oct_status trial(const ir_model *fp32, const quant_plan *plan,
                        const quant_opts *opts, const quant_samples *data,
                        quant_fresh_model_fn fresh, void *user, double *db,
                        oct_ctx *ctx)
{
    oct_ctx *tctx = ir_ctx_new();
    if (!tctx)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    tctx->limits = ctx->limits; /* the user's limits hold for trials too */
    tctx->engine = ctx->engine; /* and so does the user's engine */
    ir_model *copy;
    quant_plan rp;
    quant_report rep;
    oct_status st = fresh(user, tctx, &copy);
    if (!st)
        st = remap(plan, copy, &rp, tctx);
    if (!st)
        st = quant_rewrite(copy, &rp, opts, tctx);
    /* the samples belong to the data set's context, so the measuring run
     * (which frees them) is the caller's */
    if (!st)
        st = quant_report_pair(fp32, copy, data, &rep, ctx);
    *db = INFINITY;
    for (size_t o = 0; !st && o < rep.n_outputs; o++)
        if (rep.outputs[o].signal > 0 && rep.outputs[o].sqnr < *db)
            *db = rep.outputs[o].sqnr;
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

oct_status quant_budget(const ir_model *fp32, quant_plan *plan, const quant_opts *opts,
                        const quant_samples *data, quant_fresh_model_fn fresh,
                        void *user, double *achieved_db, oct_ctx *ctx)
{
    for (;;) {
        double db = 0;
        oct_status st = trial(fp32, plan, opts, data, fresh, user, &db, ctx);
        if (st)
            return st;
        *achieved_db = db;
        if (db >= opts->budget_db)
            return OCT_OK;
        /* the most sensitive tensor still quantized */
        int worst = -1;
        for (size_t i = 0; i < plan->n; i++)
            if (candidate(plan, i) && (worst < 0 || plan->t[i].sqnr < plan->t[worst].sqnr))
                worst = (int)i;
        if (worst < 0) {
            oct_diagf(ctx, OCT_SEV_WARNING, OCT_OK, NULL, 0, -1, NULL,
                      "budget: %.2f dB not reached with every tensor in FP32 "
                      "(%.2f dB)", opts->budget_db, db);
            return OCT_OK;
        }
        const char *reason = ir_sprintf(ctx, "budget: kept FP32, most sensitive "
                                        "left (%.2f dB alone; model at %.2f dB)",
                                        plan->t[worst].sqnr, db);
        if (!reason)
            return OCT_EINTERNAL;
        keep_float(plan, worst, reason);
    }
}
