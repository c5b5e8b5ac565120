/*
 * mnb_int8_rows.c: `--int8-rows`: every MatMulNBits with accuracy_level 4
 * (ONNX Runtime's int8 compute, whose activations it quantizes per row and
 * block of K) is marked to compute instead with its 4-bit blocks converted
 * to int8 per output column and its activations quantized to int8 per row
 * (src/ref/wo_int8.c gives the arithmetic, which the interpreter and the
 * compiled kernel share).  The products are then a plain integer GEMM with
 * one float step per output rather than one per output and block: faster
 * prefill, a second rounding of the weights and a coarser one of the
 * activations (docs/compile.md measures both).  The mark lives in the IR
 * only (ir_node.act_int8): a model written back to ONNX is unchanged, so
 * the option must be given to every command that runs or compiles it.
 * Nodes whose K exceeds OPS_MNB_ROWS_MAX_K keep the per-block arithmetic,
 * with a note.
 */
#include "ops/ops.h"
#include "passes/passes.h"

oct_status pass_mnb_int8_rows(ir_graph *g, oct_ctx *ctx)
{
    size_t marked = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->op != IR_OP_MATMULNBITS || ir_attr_int(n, "accuracy_level", 0) != 4)
            continue;
        if (ir_attr_int(n, "K", 0) > OPS_MNB_ROWS_MAX_K) {
            oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, n, 0, -1, NULL,
                      "--int8-rows: K = %lld is above %d: this node keeps int8 "
                      "activations per block", (long long)ir_attr_int(n, "K", 0),
                      OPS_MNB_ROWS_MAX_K);
            continue;
        }
        n->act_int8 = IR_INT8_ROWS;
        marked++;
    }
    if (!marked)
        oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL,
                  "--int8-rows: no MatMulNBits with accuracy_level 4 to compute per row");
    return OCT_OK;
}
