/*
 * pipeline.c: the pass registry built from passes.def, the default pipeline
 * written out as a list, and running passes by name ("-passes=a,b").
 */
#include <string.h>

#include "passes/passes.h"

static const pass_info registry[] = {
#define PASS(name, fn, summary) {#name, fn, summary},
#include "passes/passes.def"
#undef PASS
};
#define N_PASSES (sizeof registry / sizeof registry[0])

const pass_info *pass_registry(size_t *count)
{
    *count = N_PASSES;
    return registry;
}

const pass_info *pass_find(const char *name)
{
    for (size_t i = 0; i < N_PASSES; i++)
        if (strcmp(registry[i].name, name) == 0)
            return &registry[i];
    return NULL;
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
    static const char *const pipeline[] = {
        "shape_infer",
        "fold",
        "shape_infer",
    };
    for (size_t i = 0; i < sizeof pipeline / sizeof pipeline[0]; i++) {
        const pass_info *p = pass_find(pipeline[i]);
        OCT_ASSERT(p != NULL);
        oct_status st = pass_run(m, p, ctx);
        if (st != OCT_OK)
            return st;
    }
    return OCT_OK;
}

oct_status pass_run_list(ir_model *m, const char *names, oct_ctx *ctx)
{
    enum { MAX_LIST = 64 };
    const pass_info *list[MAX_LIST];
    size_t n = 0;
    const char *p = names;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len) {
            char name[64];
            const pass_info *found = NULL;
            if (len < sizeof name) {
                memcpy(name, p, len);
                name[len] = '\0';
                found = pass_find(name);
            }
            if (!found)
                return oct_error(ctx, OCT_EUSAGE, "unknown pass '%.*s'", (int)len, p);
            if (n == MAX_LIST)
                return oct_error(ctx, OCT_EUSAGE, "more than %d passes", MAX_LIST);
            list[n++] = found;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    for (size_t i = 0; i < n; i++) {
        oct_status st = pass_run(m, list[i], ctx);
        if (st != OCT_OK)
            return st;
    }
    return OCT_OK;
}
