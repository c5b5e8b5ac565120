/*
 * splice.c: the clean-up shared by the passes that splice a subgraph into
 * the main graph (inline_if.c, unroll_loop.c); splice.h says what it does.
 * Shape inference and folding run again because the spliced nodes can
 * make new values constant (a nested If's condition, a Loop copy's
 * iteration number), which is what lets those passes go another round.
 */
#include "passes/splice.h"

oct_status splice_settle(ir_graph *g, oct_ctx *ctx)
{
    for (size_t v = 0; v < g->n_values; v++)
        g->values[v]->flags &= ~(unsigned)IR_VAL_CAPTURED;
    ir_scope top = {.g = g, .up = NULL};
    ir_mark_captures(&top);
    oct_status st = ctx->model ? ir_verify(ctx->model, ctx) : OCT_OK;
    if (st == OCT_OK)
        st = pass_shape_infer(g, ctx);
    if (st == OCT_OK)
        st = pass_fold(g, ctx);
    return st;
}
