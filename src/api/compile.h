/*
 * compile.h: what compile.c (oct_compile) and runner.c (oct_runner's JIT)
 * share: the compile options, and the preparation of a model for the
 * backend (the passes, and the proof that a symbolic batch keeps its
 * items apart, codegen/batch.h).
 */
#ifndef OCTET_API_COMPILE_H
#define OCTET_API_COMPILE_H

#include "api/api.h"
#include "codegen/batch.h"
#include "codegen/codegen.h"

struct oct_compile_options {
    oct_ctx *ctx;
    cg_options cg;
    unsigned emit;
    bool keep_qdq;
    const char *report;
    const char *name;
    const char **shapes;
    size_t n_shapes, cap_shapes;
    const char **bounds;            /* "NAME=N" (cg.bounds points here) */
    size_t n_bounds, cap_bounds;
};

/* After the default passes, for the backend: Loops whose body's shapes
 * change with the iteration unrolled when their trip count is known
 * (pass_unroll_loop), If nodes whose condition is now a constant become
 * their taken branch (compiled code has static shapes, and branches often
 * differ in shape: pass_inline_if), MatMulNBits
 * unpacked, DynamicQuantizeMatMul expanded and, if `fuse`, QDQ islands
 * fused. */
oct_status api_backend_passes(oct_ctx *ctx, ir_model *m, bool fuse);

/* A copy of sym with the batch of b bound to `batch` on every batched
 * input, then the passes (NULL: the default ones) and, if `fuse`,
 * qdq_fuse. */
oct_status api_prepare_at_batch(oct_ctx *ctx, const ir_model *sym, const cg_batch *b,
                                int64_t batch, const char *passes, bool fuse,
                                ir_model **out);

/* The model sym (input shapes bound) prepared for the backend: as it is
 * when no input dimension is symbolic (b->name NULL); else, when the graph
 * is proved batch-separable (cg_batch_check), at batch 1 with b filled.
 * passes NULL: the default ones. */
oct_status api_prepare_batch(oct_ctx *ctx, ir_model *sym, const char *passes, bool fuse,
                             cg_batch *b, ir_model **out);

#endif
