/*
 * dispatch.h: the reference interpreter's per-op tables (dispatch.c) and the
 * checks shared by the interpreter and the passes that use its shape rules:
 * which ops have a kernel, which attributes a node may carry, and the
 * one-diagnostic-per-op-type report of unsupported ops.
 */
#ifndef OCTET_REF_DISPATCH_H
#define OCTET_REF_DISPATCH_H

#include "ref.h"

typedef oct_status (*ref_shape_fn)(ref_infer *inf);
typedef oct_status (*ref_kernel_fn)(ref_call *call);

/* Shape rule and kernel of `op`; NULL for IR_OP_UNKNOWN. */
ref_shape_fn ref_shape_rule_of(ir_op op);
ref_kernel_fn ref_kernel_of(ir_op op);

/* Reports every node of g whose op the reference interpreter does not know:
 * one error per op type (domain included) naming the nodes that use it.
 * Returns OCT_EUNSUPPORTED if there was any, else OCT_OK. */
oct_status ref_report_unsupported(oct_ctx *ctx, const ir_graph *g);

/* Reports every attribute of a known op that ops.def does not list for it,
 * or whose type differs from the listed one.  OCT_EINPUT if any. */
oct_status ref_check_attrs(oct_ctx *ctx, const ir_graph *g);

/* ir_type of a value -> ref_shape (rank -1 when the shape is unknown). */
void ref_shape_from_type(const ir_type *t, bool has_type, ref_shape *s);

/* Evaluates node n on input tensors in[] (NULL for omitted inputs; every
 * other input known): runs the shape rule, allocates out[i] for every
 * output the node has (node->out[i] non-NULL; other entries stay NULL) and
 * runs the kernel.  On failure every out[i] is freed and NULL, and a
 * diagnostic names the node.  Output tensors are ref_tensor_new blocks. */
oct_status ref_eval_node(oct_ctx *ctx, const ir_node *n, int64_t opset,
                         const ir_tensor *const *in, ir_tensor **out);

/* The largest number of inputs or outputs a node may have here. */
#define REF_MAX_IO 64

#endif
