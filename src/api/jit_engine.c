/*
 * jit_engine.c: the JIT calibration engine of `octet quantize --engine=jit`
 * (a quant_engine, passes/quant.h), built on codegen's in-process JIT
 * (codegen/jit.h).  It lives in the API layer because it joins the two:
 * it runs shape inference on the copy it compiles, which codegen may not.
 *
 * The engine copies the calibration graph (ir_model_clone, so the caller's
 * model is never touched), makes every observed value a graph output as
 * well, binds the sample's input shapes, compiles the copy, and per sample
 * runs it and hands the output buffers to the observer as ir_tensor views
 * (no copies).  A sample with other input shapes than the compiled ones
 * triggers a recompilation for those shapes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jit_engine.h"
#include "codegen/jit.h"
#include "ops/ops.h"
#include "passes/passes.h"
#include "passes/quant.h"

typedef struct jit_engine {
    ir_model *m;                 /* the caller's model (inputs, names) */
    ir_value *const *observed;   /* the caller's values */
    size_t n_observed;
    char *key;                   /* m's text form (malloc): the cache key */
    size_t n_key;
    size_t n_in;                 /* non-initializer graph inputs */
    /* the compiled copy, for the input shapes in `bound` */
    cg_jit *jit;
    ir_tensor **bound;           /* n_in shape holders (no data) */
    size_t n_out;
    ir_tensor **outs;            /* output buffers as tensors (views) */
    int *out_of_observed;        /* observed index -> output index */
    const void **in_ptrs;
    void **out_ptrs;
    void *scratch;
    bool cached;                 /* owned by an engine instance's cache */
} jit_engine;

/* An engine instance's cache: the last prepared state, kept compiled so
 * the second calibration pass over the same graph does not recompile. */
typedef struct jit_cache {
    jit_engine *kept;
} jit_cache;

/* Drops the compiled copy and its buffers. */
static void drop_compiled(jit_engine *je, oct_ctx *ctx)
{
    cg_jit_free(je->jit);
    je->jit = NULL;
    for (size_t i = 0; je->outs && i < je->n_out; i++)
        ir_heap_tensor_free(ctx, je->outs[i]);
    free(je->outs);
    free(je->out_ptrs);
    free(je->scratch);
    je->outs = NULL;
    je->out_ptrs = NULL;
    je->scratch = NULL;
    je->n_out = 0;
}

static bool same_shape(const ir_tensor *a, const ir_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank)
        return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d])
            return false;
    return true;
}

/* Compiles a copy of je->m for the input types of `shapes` (one per
 * non-initializer input) with every observed value as an extra output. */
static oct_status compile_copy(jit_engine *je, const ir_tensor *const *shapes,
                               oct_ctx *ctx)
{
    drop_compiled(je, ctx);
    ir_model *c;
    oct_status st = ir_model_clone(ctx, je->m, &c);
    if (st == OCT_OK)
        st = ir_verify(c, ctx);
    ir_graph *g = st == OCT_OK ? c->graph : NULL;
    for (size_t i = 0, k = 0; st == OCT_OK && i < g->n_inputs; i++) {
        if (g->inputs[i]->init)
            continue;
        const ir_tensor *t = shapes[k++];
        st = pass_bind_input_type(ctx, g->inputs[i], t->dtype, t->rank, t->dims);
    }
    if (st != OCT_OK)
        return st;
    /* outputs: the model's, then each observed value not already one */
    size_t cap = g->n_outputs + je->n_observed;
    ir_value **outputs = ir_alloc_array(ctx, cap + 1, sizeof *outputs);
    if (!je->out_of_observed)
        je->out_of_observed = calloc(je->n_observed + 1, sizeof *je->out_of_observed);
    if (!outputs || !je->out_of_observed)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    size_t n_out = g->n_outputs;
    memcpy(outputs, g->outputs, n_out * sizeof *outputs);
    for (size_t j = 0; j < je->n_observed; j++) {
        ir_value *v = ir_graph_find(g, je->observed[j]->name);
        if (!v)
            return oct_error(ctx, OCT_EINTERNAL, "jit: observed value '%s' lost in the "
                             "copy of the graph", je->observed[j]->name);
        size_t o = 0;
        while (o < n_out && outputs[o] != v)
            o++;
        if (o == n_out) {
            outputs[n_out++] = v;
            v->flags |= IR_VAL_OUTPUT;
        }
        je->out_of_observed[j] = (int)o;
    }
    g->outputs = outputs;
    g->n_outputs = n_out;
    if ((st = pass_run_list(c, "shape_infer", ctx)) != OCT_OK)
        return st;
    cg_options o = {.name = "octet_calib", .opt_level = 1};
    if ((st = cg_jit_create(ctx, c, &o, &je->jit)) != OCT_OK) {
        if (st == OCT_EUNSUPPORTED)
            oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL,
                      "calibration with --engine=jit compiles the graph; "
                      "--engine=ref runs it with the reference interpreter");
        return st;
    }
    /* output buffers as tensors; their data is what NAME_run writes */
    je->n_out = n_out;
    je->outs = calloc(n_out + 1, sizeof *je->outs);
    je->out_ptrs = calloc(n_out + 1, sizeof *je->out_ptrs);
    uint64_t ss = cg_jit_scratch_size(je->jit);
    je->scratch = aligned_alloc(CG_ALIGN, (size_t)((ss + CG_ALIGN - 1) / CG_ALIGN + 1) * CG_ALIGN);
    if (!je->outs || !je->out_ptrs || !je->scratch)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    for (size_t i = 0; i < n_out; i++) {
        const ir_type *ty = &outputs[i]->type;
        int64_t dims[OPS_MAX_RANK];
        for (int d = 0; d < ty->rank && d < OPS_MAX_RANK; d++)
            dims[d] = ty->dims[d].value;
        if (!(je->outs[i] = ir_heap_tensor_new(ctx, ty->dtype, ty->rank, dims)))
            return oct_error(ctx, OCT_EINTERNAL, "out of memory");
        je->out_ptrs[i] = je->outs[i]->data;
    }
    /* remember the shapes compiled for */
    for (size_t k = 0; k < je->n_in; k++) {
        ir_heap_tensor_free(ctx, je->bound[k]);
        je->bound[k] = ir_heap_tensor_new(ctx, shapes[k]->dtype, shapes[k]->rank,
                                      shapes[k]->dims);
        if (!je->bound[k])
            return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    }
    return OCT_OK;
}

static void free_state(jit_engine *je, oct_ctx *ctx);

/* The cache key of m: its text form (ir_print_text), which names every
 * node, value, type and attribute and carries a 64-bit FNV-1a hash of every
 * tensor's bytes.  *key is malloc'ed. */
static oct_status model_key(const ir_model *m, char **key, size_t *n_key, oct_ctx *ctx)
{
    *key = NULL;
    *n_key = 0;
    FILE *f = open_memstream(key, n_key);
    if (!f)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    ir_print_text(m, f);
    if (fclose(f) != 0 || !*key) {
        free(*key);
        *key = NULL;
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    }
    return OCT_OK;
}

/* Whether kept was prepared for the same graph (same text form) and the
 * same observed values (same names, same order). */
static bool same_preparation(const jit_engine *kept, const char *key, size_t n_key,
                             ir_value *const *observed, size_t n_observed)
{
    if (kept->n_key != n_key || memcmp(kept->key, key, n_key) ||
        kept->n_observed != n_observed)
        return false;
    for (size_t j = 0; j < n_observed; j++)
        if (strcmp(kept->observed[j]->name, observed[j]->name))
            return false;
    return true;
}

static oct_status jit_prepare(const quant_engine *eng, ir_model *m,
                              ir_value *const *observed, size_t n_observed,
                              void **state, oct_ctx *ctx)
{
    jit_cache *cache = eng->user;
    *state = NULL;
    char *key;
    size_t n_key;
    oct_status st = model_key(m, &key, &n_key, ctx);
    if (st != OCT_OK)
        return st;
    if (cache && cache->kept &&
        same_preparation(cache->kept, key, n_key, observed, n_observed)) {
        free(key);
        jit_engine *je = cache->kept;
        je->m = m;
        je->observed = observed;
        *state = je;
        return OCT_OK;
    }
    jit_engine *je = calloc(1, sizeof *je);
    *state = je;
    if (!je) {
        free(key);
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    }
    je->key = key;
    je->n_key = n_key;
    je->m = m;
    je->observed = observed;
    je->n_observed = n_observed;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        je->n_in += !m->graph->inputs[i]->init;
    je->bound = calloc(je->n_in + 1, sizeof *je->bound);
    je->in_ptrs = calloc(je->n_in + 1, sizeof *je->in_ptrs);
    if (!je->bound || !je->in_ptrs)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    if (cache) {
        free_state(cache->kept, ctx);
        cache->kept = je;
        je->cached = true;
    }
    return OCT_OK;
}

static oct_status jit_run(void *state, const ir_tensor *const *inputs, size_t n_inputs,
                          quant_observe_fn observe, void *observe_user, oct_ctx *ctx)
{
    jit_engine *je = state;
    if (n_inputs != je->n_in)
        return oct_error(ctx, OCT_EINPUT, "calibration sample has %zu inputs, the model %zu",
                         n_inputs, je->n_in);
    bool same = je->jit != NULL;
    for (size_t k = 0; same && k < n_inputs; k++)
        same = je->bound[k] && same_shape(je->bound[k], inputs[k]);
    oct_status st;
    if (!same && (st = compile_copy(je, inputs, ctx)) != OCT_OK) {
        drop_compiled(je, ctx);
        return st;
    }
    for (size_t k = 0; k < n_inputs; k++)
        je->in_ptrs[k] = inputs[k]->data;
    int rc = cg_jit_run(je->jit)(je->in_ptrs, je->out_ptrs, je->scratch);
    if (rc != 0)
        return oct_error(ctx, OCT_EINTERNAL, "jit: the compiled calibration graph "
                         "returned %d", rc);
    for (size_t j = 0; j < je->n_observed; j++)
        observe(observe_user, je->observed[j], je->outs[je->out_of_observed[j]]);
    return OCT_OK;
}

static void free_state(jit_engine *je, oct_ctx *ctx)
{
    if (!je)
        return;
    drop_compiled(je, ctx);
    for (size_t k = 0; je->bound && k < je->n_in; k++)
        ir_heap_tensor_free(ctx, je->bound[k]);
    free(je->bound);
    free(je->in_ptrs);
    free(je->out_of_observed);
    free(je->key);
    free(je);
}

/* A cached state stays with its engine instance. */
static void jit_free(void *state, oct_ctx *ctx)
{
    jit_engine *je = state;
    if (je && !je->cached)
        free_state(je, ctx);
}

quant_engine *cg_jit_quant_engine_new(void)
{
    quant_engine *eng = calloc(1, sizeof *eng);
    jit_cache *cache = calloc(1, sizeof *cache);
    if (!eng || !cache) {
        free(eng);
        free(cache);
        return NULL;
    }
    *eng = (quant_engine){.name = "jit", .prepare = jit_prepare, .run = jit_run,
                          .free = jit_free, .user = cache};
    return eng;
}

void cg_jit_quant_engine_free(quant_engine *eng, oct_ctx *ctx)
{
    if (!eng)
        return;
    jit_cache *cache = eng->user;
    if (cache)
        free_state(cache->kept, ctx);
    free(cache);
    free(eng);
}
