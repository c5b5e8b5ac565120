/*
 * ref.h: the reference interpreter's contract.  Plain, obviously correct C
 * kernels with exact ONNX semantics; the oracle for every other engine and
 * the calibration engine.
 *
 * Each op family in ops.def (the `kernel` column, say `conv`) provides
 *   oct_status ref_conv(ref_call *call);    the kernel
 * next to its shape rule ops_shape_conv (src/ops).  The interpreter runs the
 * shape rule on the known inputs, allocates the outputs with the inferred
 * shapes and calls the kernel to fill them, so a kernel never allocates or
 * reshapes its outputs.
 */
#ifndef OCTET_REF_H
#define OCTET_REF_H

#include "ir/ir.h"
#include "ops/ops.h"
#include "ops/rules.h"

typedef struct ref_call {
    oct_ctx *ctx;
    const ir_node *node;
    int64_t opset;
    int n_in;
    const ir_tensor *const *in; /* NULL for an omitted optional input */
    int n_out;
    ir_tensor *const *out;      /* allocated with the inferred dtype and
                                   shape; NULL for an output the node does
                                   not produce */
} ref_call;

/* Declarations of every kernel named in ops.def. */
#define OP(e, name, dom, k, mini, maxi, mino, maxo, fl, at) \
    oct_status ref_##k(ref_call *call);
#include "ir/ops.def"
#undef OP

/* ---- the interpreter (interp.c) ---------------------------------------- */

/* Per-value hook called after every node output is computed (observers). */
typedef ir_observe_fn ref_observer_fn;

typedef struct ref_run_opts {
    ref_observer_fn observe;  /* may be NULL */
    void *observe_user;
} ref_run_opts;

/* Runs the model's graph on `inputs` (one per non-initializer graph input,
 * in order; dtypes and shapes checked against the declared types) and
 * returns the graph outputs in `outputs` (n_outputs entries, heap tensors:
 * free each with ir_heap_tensor_free). */
oct_status ref_run(oct_ctx *ctx, const ir_model *m, const ir_tensor *const *inputs,
                   size_t n_inputs, ir_tensor **outputs, size_t n_outputs,
                   const ref_run_opts *opts);

/* The interpreter as an evaluation engine (engine.c): a static table that
 * oct_ctx_new installs in every context. */
const ir_engine *ref_engine(void);

#endif
