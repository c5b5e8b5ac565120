/*
 * splice.h: what a pass that moves a subgraph's nodes into the main graph
 * (inline_if, unroll_loop) runs once it has done so.  The spliced nodes
 * read former outer-scope values as plain reads and are appended at the
 * end of the node list, so the captured marks, the topological order and
 * the shapes of the graph are all stale until this runs.
 */
#ifndef OCTET_PASSES_SPLICE_H
#define OCTET_PASSES_SPLICE_H

#include "passes/passes.h"

/* Re-marks g's captured values (clears every IR_VAL_CAPTURED, then
 * ir_mark_captures from g down), restores topological order with
 * ir_verify on ctx->model (when set), then runs shape inference and
 * folding on g.  Returns the first failing status; the caller has set
 * ctx->model to the model owning g. */
oct_status splice_settle(ir_graph *g, oct_ctx *ctx);

#endif
