/*
 * engine.c: the lookup of a context's evaluation engine (ir.h, "evaluation
 * engines").  Passes that evaluate nodes or graphs go through it, so a
 * context created without an engine gives a diagnostic, never a NULL call.
 */
#include "ir/ir.h"

const ir_engine *ir_ctx_engine(oct_ctx *ctx, const char *who)
{
    if (ctx->engine && ctx->engine->eval_node && ctx->engine->run)
        return ctx->engine;
    oct_error(ctx, OCT_EINTERNAL,
              "%s needs an evaluation engine, but the context has none "
              "(create it with oct_ctx_new, or set one on an ir_ctx_new "
              "context)", who);
    return NULL;
}
