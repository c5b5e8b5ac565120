/*
 * passes.c: the pass manager in the public API: verifying a model, running
 * a pipeline with LLVM opt's options (verify after each pass, print the IR
 * after some or all passes, time them, give the quant passes options and
 * samples), and listing the registered passes and the analyses they
 * require and preserve.
 */
#include <string.h>

#include "api/api.h"
#include "passes/passes.h"

struct oct_pass_options {
    oct_ctx *ctx;
    pass_pipeline_opts po;
    oct_pass_print_fn print;
    void *print_user;
    oct_pass_time_fn time;
    void *time_user;
    /* the quant passes' options and samples, or NULL */
    const oct_quant_options *quant;
    const oct_samples *samples;
};

oct_status oct_model_verify(oct_ctx *ctx, const oct_model *m)
{
    if (!ctx || !m)
        return OCT_EUSAGE;
    return ir_verify(m->ir, ctx);
}

oct_status oct_pass_options_new(oct_ctx *ctx, oct_pass_options **out)
{
    if (!ctx || !out)
        return OCT_EUSAGE;
    oct_pass_options *o = ir_alloc(ctx, sizeof *o);
    if (!(*out = o))
        return OCT_EINTERNAL;
    o->ctx = ctx;
    return OCT_OK;
}

oct_status oct_pass_options_set(oct_pass_options *o, const char *key, const char *value)
{
    if (!o || !key || !value)
        return OCT_EUSAGE;
    bool on = strcmp(value, "0") != 0;
    if (!strcmp(key, "verify-each")) {
        o->po.verify_each = on;
    } else if (!strcmp(key, "print-after-all")) {
        o->po.print_after_all = on;
    } else if (!strcmp(key, "print-after")) {
        /* repeated keys add to the list */
        const char *old = o->po.print_after;
        char *joined = old ? ir_sprintf(o->ctx, "%s,%s", old, value) : ir_strdup(o->ctx, value);
        if (!joined)
            return OCT_EINTERNAL;
        o->po.print_after = joined;
    } else {
        return oct_error(o->ctx, OCT_EUSAGE, "unknown pass option '%s'", key);
    }
    return OCT_OK;
}

static void print_adapter(void *user, const char *pass, size_t index, const char *text,
                          size_t len)
{
    const oct_pass_options *o = user;
    o->print(o->print_user, pass, index, text, len);
}

static void time_adapter(void *user, const char *pass, size_t index, double seconds)
{
    const oct_pass_options *o = user;
    o->time(o->time_user, pass, index, seconds);
}

void oct_pass_options_set_print(oct_pass_options *o, oct_pass_print_fn fn, void *user)
{
    o->print = fn;
    o->print_user = user;
    o->po.print = fn ? print_adapter : NULL;
    o->po.print_user = o;
}

void oct_pass_options_set_timer(oct_pass_options *o, oct_pass_time_fn fn, void *user)
{
    o->time = fn;
    o->time_user = user;
    o->po.time = fn ? time_adapter : NULL;
    o->po.time_user = o;
}

void oct_pass_options_set_quant(oct_pass_options *o, const oct_quant_options *q,
                                const oct_samples *samples)
{
    o->quant = q;
    o->samples = samples;
}

oct_status oct_run_pipeline(oct_ctx *ctx, oct_model *m, const char *pipeline,
                            const oct_pass_options *o)
{
    if (!ctx || !m || !pipeline)
        return OCT_EUSAGE;
    if (!strcmp(pipeline, "default") && !o)
        return pass_run_default(m->ir, ctx);
    if (!o || (!o->quant && !o->samples))
        return pass_run_pipeline(m->ir, pipeline, o ? &o->po : NULL, ctx);
    /* a session for this run; its state stays in the model's quant lines */
    quant_session session;
    api_samples adapter;
    quant_samples data;
    oct_status st = api_quant_session(ctx, o->quant, o->samples, m->ir, &session,
                                      &adapter, &data);
    struct quant_session *saved = ctx->quant;
    ctx->quant = &session;
    if (!st)
        st = pass_run_pipeline(m->ir, pipeline, &o->po, ctx);
    ctx->quant = saved;
    quant_session_free(&session, ctx);
    return st;
}

size_t oct_pass_count(void)
{
    size_t n;
    pass_registry(&n);
    return n;
}

oct_status oct_pass_get(size_t index, oct_pass_desc *out)
{
    size_t n;
    const pass_info *reg = pass_registry(&n);
    if (!out || index >= n)
        return OCT_EUSAGE;
    out->name = reg[index].name;
    out->summary = reg[index].summary;
    pass_analysis_names(reg[index].requires, out->requires, sizeof out->requires);
    pass_analysis_names(reg[index].preserves, out->preserves, sizeof out->preserves);
    return OCT_OK;
}

static const struct { const char *name, *what; } analyses[] = {
#define A(e, bit, name, what) {name, what},
    PASS_ANALYSES(A)
#undef A
};

size_t oct_analysis_count(void)
{
    return sizeof analyses / sizeof analyses[0];
}

oct_status oct_analysis_get(size_t index, const char **name, const char **what)
{
    if (index >= oct_analysis_count() || !name || !what)
        return OCT_EUSAGE;
    *name = analyses[index].name;
    *what = analyses[index].what;
    return OCT_OK;
}
