/*
 * ctx_api.c: the public context constructor.  oct_ctx_new creates the
 * IR-level context (ir_ctx_new: limits, arena, diagnostics) and installs
 * the reference interpreter as its evaluation engine, which constant
 * folding, calibration and the quantization report reach through
 * ctx->engine.  It lives in the API layer because only this layer may
 * depend on both the passes' interface and the interpreter.
 */
#include "ir/ir.h"
#include "ref/ref.h"

oct_ctx *oct_ctx_new(void)
{
    oct_ctx *ctx = ir_ctx_new();
    if (ctx)
        ctx->engine = ref_engine();
    return ctx;
}
