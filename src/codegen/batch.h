/*
 * batch.h: a symbolic leading (batch) dimension compiled for run time
 * (prefix cg_batch).  A model whose run-time inputs share one symbolic
 * dimension on axis 0, and whose graph keeps the items of that axis apart
 * (item i of every output depends on item i of the batched inputs only),
 * is compiled once at batch 1; the generated NAME_run_dims loops the body
 * over the batch given at run time, offsetting the batched inputs and
 * outputs by one item per iteration (compile.c).
 *
 * The proof (batch.c) compares two copies of the prepared graph, the
 * batch bound to 1 and to a probe value, node by node: see
 * cg_batch_check.  The driver (src/api/compile.c) makes the copies, since
 * codegen does not run passes.
 */
#ifndef OCTET_CG_BATCH_H
#define OCTET_CG_BATCH_H

#include "ir/ir.h"

/* The batch size of the second copy cg_batch_check compares: not 1 and
 * unlike the small sizes models hard-code (2, 4). */
#define CG_BATCH_PROBE 3

typedef struct cg_batch {
    const char *name;     /* the symbolic dimension ("batch_size"); NULL: none */
    /* by run-time input slot (graph inputs without an initializer, in
     * order) and by graph output: the tensor has the batch on axis 0 */
    bool *in_batched;
    size_t n_in;
    bool *out_batched;
    size_t n_out;
} cg_batch;

/* Looks at the run-time inputs of g (after any --input-shape binding):
 * fills b->name with their shared symbolic leading dimension and
 * b->in_batched, or leaves b->name NULL if no input dimension is symbolic
 * (or some input has no shape at all: the backend reports it).  A symbolic
 * dimension anywhere but axis 0, or leading dimensions of two inputs with
 * different (or no) names, is OCT_EUNSUPPORTED with a diagnostic naming
 * the input and dimension and suggesting --input-shape. */
oct_status cg_batch_find(oct_ctx *ctx, const ir_graph *g, cg_batch *b);

/* Proves batch separability: m1 and mp are the same model prepared (passes
 * run) with the batch of b bound to 1 and to CG_BATCH_PROBE.  Walks m1's
 * nodes in order, marking each value batched (axis 0 is the batch: size 1
 * in m1, CG_BATCH_PROBE in mp, every other dim equal) or not (same shape in
 * both and, for constants, the same bytes); each node with a batched input
 * must be an op known to map item i to item i under the checks batch.c
 * lists (axis attributes not 0, weights constant, ...), and its outputs
 * must be batched.  Fills b->out_batched.  A node that mixes items is
 * OCT_EUNSUPPORTED with a diagnostic naming it and the dimension. */
oct_status cg_batch_check(oct_ctx *ctx, const ir_model *m1, const ir_model *mp,
                          cg_batch *b);

#endif
