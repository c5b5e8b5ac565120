/*
 * passes.h: the pass framework.  Every pass has one signature,
 *   oct_status pass_<name>(ir_graph *g, oct_ctx *ctx);
 * lives in its own file and is listed in passes.def with its command-line
 * name.  A pass that needs the model (its opsets) reads ctx->model, which
 * the runners below set before calling it.
 */
#ifndef OCTET_PASSES_H
#define OCTET_PASSES_H

#include "ir/ir.h"

typedef oct_status (*pass_fn)(ir_graph *g, oct_ctx *ctx);

#define PASS(name, fn, summary) oct_status fn(ir_graph *g, oct_ctx *ctx);
#include "passes/passes.def"
#undef PASS

typedef struct pass_info {
    const char *name;
    pass_fn fn;
    const char *summary;
} pass_info;

/* The registry, in passes.def order. */
const pass_info *pass_registry(size_t *count);
/* Looks a pass up by its command-line name; NULL if there is none. */
const pass_info *pass_find(const char *name);

/* Runs one pass on m's main graph (sets ctx->model for it). */
oct_status pass_run(ir_model *m, const pass_info *p, oct_ctx *ctx);
/* Runs the default pipeline (pipeline.c lists it). */
oct_status pass_run_default(ir_model *m, oct_ctx *ctx);
/* Runs a comma-separated list of pass names ("shape_infer,fold"); an
 * unknown name is an OCT_EUSAGE diagnostic before anything runs. */
oct_status pass_run_list(ir_model *m, const char *names, oct_ctx *ctx);

/* ---- shape_infer.c helpers shared with other passes ------------------- */

/* Infers node n's output types from its inputs' current types and constant
 * values (initializers) with the op's shape rule, and merges them into the
 * output values: known dims replace unknown ones; a conflict with a declared
 * type (value_info, graph output) is an error naming node and output.
 * Nodes of unknown ops are left alone. */
oct_status pass_infer_node(oct_ctx *ctx, ir_node *n, int64_t opset);

/* Fixes the shape of graph input NAME from "NAME=1x3x224x224" (dims
 * separated by x or ,); the rank must match a declared rank and static dims
 * must agree.  OCT_EUSAGE for a malformed spec or an unknown name,
 * OCT_EINPUT for a conflict. */
oct_status pass_bind_input_shape(oct_ctx *ctx, ir_graph *g, const char *spec);

/* Sets graph input v's type to exactly dtype/rank/dims (the tensor that
 * will be fed), after checking it against the declared type; OCT_EINPUT on
 * a conflict, with a diagnostic naming the input. */
oct_status pass_bind_input_type(oct_ctx *ctx, ir_value *v, ir_dtype dtype,
                                int rank, const int64_t *dims);

#endif
