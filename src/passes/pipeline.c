/*
 * pipeline.c: the pass registry built from passes.def, the default pipeline
 * written out as a list, and the pipeline runner: a pipeline given as text
 * ("shape_infer,fold") run with the options LLVM's opt offers (verify after
 * each pass, hand the text IR after chosen passes to a callback, time each
 * pass), after checking that every pass finds the analyses it requires
 * current (passes.def says which analyses each pass requires and
 * preserves).  Nothing here prints: text and timings go to caller
 * callbacks, problems to diagnostics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passes/passes.h"
#include "passes/quant.h"

static const pass_info registry[] = {
#define PASS(name, fn, requires, preserves, summary) \
    {#name, fn, requires, preserves, summary},
#include "passes/passes.def"
#undef PASS
};
#define N_PASSES (sizeof registry / sizeof registry[0])

enum { MAX_PIPELINE = 64, MAX_PASS_NAME = 64 };

const pass_info *pass_registry(size_t *count)
{
    *count = N_PASSES;
    return registry;
}

static const pass_info *find_in(const pass_info *list, size_t n,
                                const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i].name) == len && !memcmp(list[i].name, name, len))
            return &list[i];
    return NULL;
}

const pass_info *pass_find(const char *name)
{
    return find_in(registry, N_PASSES, name, strlen(name));
}

const char *pass_analysis_names(unsigned set, char *buf, size_t size)
{
    static const struct { unsigned bit; const char *name; } names[] = {
#define A(e, bit, name, what) {PASS_A_##e, name},
        PASS_ANALYSES(A)
#undef A
    };
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(set & names[i].bit))
            continue;
        int n = snprintf(buf + off, size - off, "%s%s", off ? "," : "",
                         names[i].name);
        if (n < 0 || (size_t)n >= size - off)
            break;
        off += (size_t)n;
    }
    if (!off)
        snprintf(buf, size, "-");
    return buf;
}

oct_status pass_run(ir_model *m, const pass_info *p, oct_ctx *ctx)
{
    struct ir_model *saved = ctx->model;
    ctx->model = m;
    oct_status st = p->fn(m->graph, ctx);
    ctx->model = saved;
    return st;
}

/* The default pipeline, in order.  Shape inference first (it reports
 * unsupported ops once), folding (which re-infers each node as it goes, so
 * shapes made static by folded Reshape/Shape chains propagate), then shape
 * inference again so every value carries the final types. */
oct_status pass_run_default(ir_model *m, oct_ctx *ctx)
{
    return pass_run_pipeline(m, "shape_infer,"
                                "fold,"
                                "shape_infer",
                             NULL, ctx);
}

oct_status pass_run_list(ir_model *m, const char *names, oct_ctx *ctx)
{
    return pass_run_pipeline(m, names, NULL, ctx);
}

/* The unknown-name diagnostic: names the bad one and lists the valid. */
static oct_status unknown_pass(oct_ctx *ctx, const char *what, const char *name,
                               size_t len, const pass_info *list, size_t n)
{
    char valid[512];
    size_t off = 0;
    valid[0] = '\0';
    for (size_t i = 0; i < n && off < sizeof valid; i++) {
        int w = snprintf(valid + off, sizeof valid - off, "%s%s", i ? ", " : "",
                         list[i].name);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return oct_error(ctx, OCT_EUSAGE, "unknown pass '%.*s' in %s (valid passes: %s)",
                     (int)(len > MAX_PASS_NAME ? MAX_PASS_NAME : len), name, what,
                     valid);
}

/* Splits a comma-separated list of pass names and looks each one up;
 * stores them in out[0..*n_out).  Spaces around names are ignored and
 * empty entries skipped. */
static oct_status parse_names(oct_ctx *ctx, const char *what, const char *text,
                              const pass_info *list, size_t n,
                              const pass_info **out, size_t *n_out)
{
    *n_out = 0;
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *name = p;
        size_t name_len = len;
        while (name_len && (*name == ' ' || *name == '\t')) {
            name++;
            name_len--;
        }
        while (name_len && (name[name_len - 1] == ' ' || name[name_len - 1] == '\t'))
            name_len--;
        if (name_len) {
            const pass_info *found = find_in(list, n, name, name_len);
            if (!found)
                return unknown_pass(ctx, what, name, name_len, list, n);
            if (*n_out == MAX_PIPELINE)
                return oct_error(ctx, OCT_EUSAGE, "more than %d passes in %s",
                                 MAX_PIPELINE, what);
            out[(*n_out)++] = found;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return OCT_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prints the model as text into memory and hands it to the callback. */
static oct_status print_after(const ir_model *m, const pass_pipeline_opts *o,
                              const char *pass, size_t index, oct_ctx *ctx)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return oct_error(ctx, OCT_EINTERNAL, "cannot open a memory stream");
    ir_print_text(m, mem);
    bool failed = ferror(mem) != 0;
    if (fclose(mem) != 0 || failed) {
        free(buf);
        return oct_error(ctx, OCT_EINTERNAL,
                         "out of memory printing the model after pass '%s'", pass);
    }
    o->print(o->print_user, pass, index, buf, len);
    free(buf);
    return OCT_OK;
}

static bool in_list(const pass_info *const *list, size_t n, const pass_info *p)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == p)
            return true;
    return false;
}

/* The analyses current after pass p ran with `current` current: those it
 * preserves and were current, and those it computes (preserves without
 * requiring them). */
static unsigned after_pass(unsigned current, const pass_info *p)
{
    return (current & p->preserves) | (p->preserves & ~p->requires);
}

/* Checks, before anything runs, that each pass of run[0..n) finds what it
 * requires current; `current` is what is current at the start. */
static oct_status check_analyses(oct_ctx *ctx, const pass_info *const *run, size_t n,
                                 unsigned current, const pass_info *reg, size_t n_reg)
{
    for (size_t i = 0; i < n; i++) {
        unsigned missing = run[i]->requires & ~current;
        if (missing) {
            unsigned first = missing & -missing;
            const char *producer = NULL;
            for (size_t k = 0; k < n_reg && !producer; k++)
                if (reg[k].preserves & ~reg[k].requires & first)
                    producer = reg[k].name;
            char name[64];
            pass_analysis_names(first, name, sizeof name);
            if (producer)
                return oct_error(ctx, OCT_EUSAGE, "pass '%s' requires %s; run %s first",
                                 run[i]->name, name, producer);
            return oct_error(ctx, OCT_EUSAGE, "pass '%s' requires %s, which no pass "
                             "computes", run[i]->name, name);
        }
        current = after_pass(current, run[i]);
    }
    return OCT_OK;
}

/* Runs the parsed pipeline with the analyses `current` current at the
 * start; *current follows the passes that ran. */
static oct_status run_passes(ir_model *m, const pass_pipeline_opts *o,
                             const pass_info *const *run, size_t n_run,
                             const pass_info *const *printed, size_t n_printed,
                             unsigned *current, oct_ctx *ctx)
{
    oct_status st;
    if (o->verify_each && ir_verify(m, ctx) != OCT_OK)
        return oct_error(ctx, OCT_EINPUT,
                         "the input does not verify (before any pass ran)");
    for (size_t i = 0; i < n_run; i++) {
        const pass_info *p = run[i];
        double start = o->time ? now_seconds() : 0;
        st = pass_run(m, p, ctx);
        if (o->time)
            o->time(o->time_user, p->name, i, now_seconds() - start);
        if (st != OCT_OK)
            return st;
        *current = after_pass(*current, p);
        if (o->verify_each && ir_verify(m, ctx) != OCT_OK)
            return oct_error(ctx, OCT_EINTERNAL,
                             "the graph no longer verifies after pass '%s' "
                             "(pass %zu of the pipeline)", p->name, i + 1);
        if (o->print_after_all || in_list(printed, n_printed, p)) {
            /* the quant state is printed with the graph */
            if ((st = quant_session_sync(ctx, m, *current)) != OCT_OK ||
                (st = print_after(m, o, p->name, i, ctx)) != OCT_OK)
                return st;
        }
    }
    return OCT_OK;
}

oct_status pass_run_pipeline(ir_model *m, const char *pipeline,
                             const pass_pipeline_opts *opts, oct_ctx *ctx)
{
    static const pass_pipeline_opts none = {0};
    const pass_pipeline_opts *o = opts ? opts : &none;
    const pass_info *reg = o->passes ? o->passes : registry;
    size_t n_reg = o->passes ? o->n_passes : N_PASSES;

    const pass_info *run[MAX_PIPELINE], *printed[MAX_PIPELINE];
    size_t n_run = 0, n_printed = 0;
    oct_status st = parse_names(ctx, "the pipeline", pipeline, reg, n_reg, run,
                                &n_run);
    if (st == OCT_OK && o->print_after)
        st = parse_names(ctx, "--print-after", o->print_after, reg, n_reg,
                         printed, &n_printed);
    if (st != OCT_OK)
        return st;
    if ((n_printed || o->print_after_all) && !o->print)
        return oct_error(ctx, OCT_EUSAGE,
                         "printing after passes asked for without a print callback");

    /* the quantization session: the caller's (unless it is another
     * model's: a pipeline run inside a pass, on a copy), or one for this
     * run */
    quant_session local, *saved = ctx->quant;
    bool own = !saved || (saved->model && saved->model != m);
    if (own) {
        quant_session_init(&local, NULL);
        ctx->quant = &local;
    }
    unsigned current = PASS_A_SHAPES;
    st = quant_session_begin(ctx, m, &current);
    if (st == OCT_OK)
        st = check_analyses(ctx, run, n_run, current, reg, n_reg);
    if (st == OCT_OK) {
        st = run_passes(m, o, run, n_run, printed, n_printed, &current, ctx);
        oct_status synced = quant_session_sync(ctx, m, current);
        if (st == OCT_OK)
            st = synced;
    }
    if (own) {
        quant_session_free(&local, ctx);
        ctx->quant = saved;
    }
    return st;
}
