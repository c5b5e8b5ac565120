/*
 * match.h: small helpers the pattern passes (fuse_rmsnorm, fuse_rotary,
 * fuse_attention) share to recognise what exporters write out op by op.
 * A pattern is matched backwards from its last node through producers;
 * every value inside it must be private to it (read by the pattern only,
 * not a graph output), so replacing the pattern by one node changes
 * nothing else.  Constants are initializers: run `fold` first when a
 * model builds them from Constant nodes.
 */
#ifndef OCTET_PASSES_MATCH_H
#define OCTET_PASSES_MATCH_H

#include "ops/ops.h"
#include "passes/passes.h"

/* The node producing v when it is op `op`, else NULL. */
ir_node *m_def(const ir_value *v, ir_op op);

/* True when v is read by exactly `uses` node inputs and is not a graph
 * output (a value the pattern consumes internally). */
bool m_private(const ir_graph *g, const ir_value *v, size_t uses);

/* The value of a one-element FLOAT/DOUBLE/FLOAT16 initializer. */
bool m_scalar(const ir_value *v, double *out);

/* The float32 initializer v, or NULL. */
const ir_tensor *m_const_f32(const ir_value *v);

/* Reads an int list given as input `slot` (a 1-D INT64 initializer) or,
 * when that slot is empty, as attribute `attr`; *n = -1 when neither is
 * present, false when it is present but not constant or longer than max. */
bool m_ints(const ir_node *n, int slot, const char *attr, int64_t *out,
            int max, int *count);

/* v's element type (its initializer's, else its type's), -1 unknown. */
int m_dtype(const ir_value *v);

/* The static dims of v's initializer or type into dims (rank returned), -1 when v has no
 * type of known rank or a dim is unknown. */
int m_dims(const ir_value *v, int64_t *dims);

/* Before the first rewrite of a pass: makes sure the model imports the
 * default-domain opset `version` (the fused ops are ONNX ops of that
 * opset), raising it with the opset upgrade when it is older. */
oct_status m_need_opset(oct_ctx *ctx, int64_t version, const char *pass);

/* A new node of op_type (default domain) named after `last` and taking
 * over last's outputs; `last` is removed.  The caller fills the inputs and
 * attributes and removes the other matched nodes. */
ir_node *m_replace(oct_ctx *ctx, ir_graph *g, ir_node *last, const char *op_type,
                   int n_in);

/* The driver of a pattern pass: finds every match (match() fills a
 * match record of match_size bytes for node n and says whether n ends a
 * pattern), raises the opset to `opset` (that of the fused op) when there
 * is one, finds them again
 * (the upgrade may rewrite nodes) and rewrites each, then re-verifies the
 * model (which puts new nodes in order).  Matches must never share a node:
 * every value inside a pattern is private to it. */
typedef bool (*m_match_fn)(const ir_graph *g, ir_node *n, void *match);
typedef oct_status (*m_rewrite_fn)(oct_ctx *ctx, ir_graph *g, void *match);
oct_status m_fuse_all(ir_graph *g, oct_ctx *ctx, const char *pass, int64_t opset,
                      size_t match_size, m_match_fn match, m_rewrite_fn rewrite);

/* Removes n after recording it as merged into `into`. */
bool m_absorb(oct_ctx *ctx, ir_graph *g, ir_node *into, ir_node *n);

#endif
