/*
 * ctx.c: the compilation context: limits, counted allocation with a byte
 * budget and the fail-Nth-allocation test hook, and the arena that owns the
 * IR.  Every allocation Octet makes for a model goes through oct_malloc, so
 * the out-of-memory test (tests/unit) can fail each one in turn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

oct_limits oct_default_limits(void)
{
    oct_limits l = {
        .max_file_bytes = 2ull << 30,          /* protobuf's own 2 GiB cap */
        .max_tensor_elems = 1ull << 32,
        .max_total_init_bytes = 4ull << 30,
        .max_nodes = 1000000,
        .max_subgraph_depth = 16,
        .max_rank = 16,
        .max_alloc_bytes = 16ull << 30,
    };
    return l;
}

oct_ctx *ir_ctx_new(void)
{
    oct_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->limits = oct_default_limits();
    return ctx;
}

void oct_ctx_free(oct_ctx *ctx)
{
    if (!ctx)
        return;
    ir_arena_release(ctx);
    oct_diag_release(ctx);
    free(ctx->diags);
    for (size_t i = 0; i < ctx->n_noted_inputs; i++)
        free(ctx->noted_inputs[i]);
    free(ctx->noted_inputs);
    free(ctx);
}

oct_limits *oct_ctx_limits(oct_ctx *ctx) { return &ctx->limits; }

void oct_ctx_fail_alloc_at(oct_ctx *ctx, uint64_t nth)
{
    ctx->fail_alloc_at = nth ? ctx->alloc_count + nth : 0;
}

uint64_t oct_ctx_alloc_count(const oct_ctx *ctx) { return ctx->alloc_count; }

/* One allocation attempt: counts it, applies the test hook and the budget. */
static bool alloc_allowed(oct_ctx *ctx, size_t size)
{
    ctx->alloc_count++;
    if (ctx->fail_alloc_at && ctx->alloc_count == ctx->fail_alloc_at) {
        oct_error(ctx, OCT_EINTERNAL, "out of memory (allocation %llu failed)",
                  (unsigned long long)ctx->alloc_count);
        return false;
    }
    if (size > ctx->limits.max_alloc_bytes ||
        ctx->bytes_live > ctx->limits.max_alloc_bytes - size) {
        oct_error(ctx, OCT_EINPUT,
                  "memory limit exceeded: %llu bytes requested with %llu in "
                  "use (limit %llu bytes)",
                  (unsigned long long)size, (unsigned long long)ctx->bytes_live,
                  (unsigned long long)ctx->limits.max_alloc_bytes);
        return false;
    }
    return true;
}

void *oct_malloc(oct_ctx *ctx, size_t size)
{
    if (!alloc_allowed(ctx, size))
        return NULL;
    void *p = malloc(size ? size : 1);
    if (!p) {
        oct_error(ctx, OCT_EINTERNAL, "out of memory (%zu bytes)", size);
        return NULL;
    }
    ctx->bytes_live += size;
    return p;
}

void *oct_realloc(oct_ctx *ctx, void *ptr, size_t old_size, size_t new_size)
{
    if (new_size > old_size && !alloc_allowed(ctx, new_size - old_size))
        return NULL;
    void *p = realloc(ptr, new_size ? new_size : 1);
    if (!p) {
        oct_error(ctx, OCT_EINTERNAL, "out of memory (%zu bytes)", new_size);
        return NULL;
    }
    ctx->bytes_live = ctx->bytes_live - old_size + new_size;
    return p;
}

void oct_free(oct_ctx *ctx, void *ptr, size_t size)
{
    if (!ptr)
        return;
    ctx->bytes_live -= size;
    free(ptr);
}

void oct_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "octet: internal error: %s:%d: assertion '%s' failed\n",
            file, line, expr);
    abort(); /* OCT_ASSERT: a broken invariant, never an input problem */
}
