/*
 * engine.c: the reference interpreter as an evaluation engine (ir_engine in
 * ir.h), the form in which passes below the interpreter reach it: one node
 * on known inputs (constant folding) and a whole graph with an observer
 * (calibration, the quantization report).
 */
#include "ref/dispatch.h"

static oct_status engine_run(oct_ctx *ctx, const ir_model *m,
                             const ir_tensor *const *inputs, size_t n_inputs,
                             ir_tensor **outputs, size_t n_outputs,
                             ir_observe_fn observe, void *observe_user)
{
    ref_run_opts ro = {.observe = observe, .observe_user = observe_user};
    return ref_run(ctx, m, inputs, n_inputs, outputs, n_outputs, &ro);
}

const ir_engine *ref_engine(void)
{
    static const ir_engine engine = {
        .name = "ref",
        .eval_node = ref_eval_node,
        .run = engine_run,
    };
    return &engine;
}
