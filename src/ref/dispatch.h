/*
 * dispatch.h: the reference interpreter's kernel table (dispatch.c) and the
 * evaluation of one node on known inputs (interp.c), which constant folding
 * reaches through the context's engine (ir_engine).  The shape rules and the
 * graph-wide checks are in src/ops.
 */
#ifndef OCTET_REF_DISPATCH_H
#define OCTET_REF_DISPATCH_H

#include "ref/ref.h"

typedef oct_status (*ref_kernel_fn)(ref_call *call);

/* Kernel of `op`; NULL for IR_OP_UNKNOWN. */
ref_kernel_fn ref_kernel_of(ir_op op);

/* Evaluates node n on input tensors in[] (NULL for omitted inputs; every
 * other input known): runs the shape rule, allocates out[i] for every
 * output the node has (node->out[i] non-NULL; other entries stay NULL) and
 * runs the kernel.  On failure every out[i] is freed and NULL, and a
 * diagnostic names the node.  Output tensors are ir_heap_tensor_new blocks. */
oct_status ref_eval_node(oct_ctx *ctx, const ir_node *n, int64_t opset,
                         const ir_tensor *const *in, ir_tensor **out);

/* The run of one graph (interp.c): its tensors, and the frame of the graph
 * that encloses it, where a subgraph's outer-scope reads are found. */
typedef struct ref_frame ref_frame;

/* Runs subgraph g below frame `up` on inputs[] (one per graph input, in
 * order, not checked against the declared types) and returns its outputs
 * in outputs[0..g->n_outputs) (heap tensors, caller frees). */
oct_status ref_run_subgraph(oct_ctx *ctx, const ref_frame *up, const ir_graph *g,
                            int64_t opset, const ir_tensor *const *inputs,
                            ir_tensor **outputs);

/* Runs If, Loop or Scan node n of the graph running in frame fr on inputs
 * in[] (control.c): out[i] allocated for every output the node has, as
 * ref_eval_node's, sized by what the bodies compute. */
oct_status ref_control_run(oct_ctx *ctx, const ref_frame *fr, const ir_node *n,
                           int64_t opset, const ir_tensor *const *in,
                           ir_tensor **out);

#endif
