/*
 * fuzz_common.h: helpers the libFuzzer targets share (header-only, static
 * inline).  Each target makes a fresh context per input with tight limits,
 * so a fuzzed size field is a diagnostic rather than a multi-gigabyte
 * allocation that libFuzzer would report as out-of-memory, and frees it
 * before returning (LeakSanitizer checks every run).  Diagnostics are
 * expected and dropped; only crashes, sanitizer reports, leaks and
 * timeouts are findings.
 */
#ifndef OCTET_FUZZ_COMMON_H
#define OCTET_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "ref/ref.h"

/* A context with fuzzing limits: 64 MiB live, 4 Mi elements per tensor,
 * 16 MiB of initializers, 4096 nodes, depth 8, rank 8. */
static inline oct_ctx *fuzz_ctx(void)
{
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx)
        return NULL;
    oct_limits *l = oct_ctx_limits(ctx);
    l->max_alloc_bytes = 64u << 20;
    l->max_tensor_elems = 4u << 20;
    l->max_total_init_bytes = 16u << 20;
    l->max_file_bytes = 16u << 20;
    l->max_nodes = 4096;
    l->max_subgraph_depth = 8;
    l->max_rank = 8;
    return ctx;
}

/* The model in data (as "fuzz.onnx") loaded, verified and through the
 * default passes: the start of every pipeline target. */
static inline oct_status fuzz_load_model(oct_ctx *ctx, const uint8_t *data, size_t size,
                                         ir_model **m)
{
    fe_load_opts lo = {0};
    oct_status st = fe_load_memory(ctx, data, size, "fuzz.onnx", NULL, &lo, m);
    if (!st)
        st = ir_verify(*m, ctx);
    if (!st)
        st = pass_run_default(*m, ctx);
    return st;
}

/* Deterministic filler: an xorshift stream seeded from the input bytes. */
static inline uint64_t fuzz_seed(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    return h ? h : 1;
}

static inline uint64_t fuzz_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Makes one input tensor for graph input v when its type is fully static
 * and small (at most max_elems elements), filled with small values of its
 * type; NULL otherwise (or out of memory). */
static inline ir_tensor *fuzz_input(oct_ctx *ctx, const ir_value *v,
                                    uint64_t max_elems, uint64_t *seed)
{
    const ir_type *ty = &v->type;
    if (!v->has_type || ty->rank < 0 || ty->rank > 8 ||
        !ir_dtype_valid(ty->dtype) || ty->dtype == IR_DT_STRING ||
        ty->dtype == IR_DT_UNDEFINED)
        return NULL;
    int64_t dims[8];
    uint64_t n = 1;
    for (int i = 0; i < ty->rank; i++) {
        int64_t d = ty->dims ? ty->dims[i].value : -1;
        if (d < 0)
            d = 1; /* symbolic dims: batch 1 */
        dims[i] = d;
        if (d && n > max_elems / (uint64_t)d)
            return NULL;
        n *= (uint64_t)d;
    }
    if (n > max_elems)
        return NULL;
    ir_tensor *t = ir_heap_tensor_new(ctx, ty->dtype, ty->rank, dims);
    if (!t)
        return NULL;
    for (uint64_t i = 0; i < t->nelems; i++)
        ops_set(t, i, (double)((int)(fuzz_next(seed) % 17) - 8) / 4.0);
    t->name = v->name;
    return t;
}

#endif
