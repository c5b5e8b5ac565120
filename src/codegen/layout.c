/*
 * layout.c: the layout plan.  Activations are NCHW unless this plan
 * stores an 8-bit 4-D value NHWC (cg_tensor.nhwc; its dims stay N, C,
 * H, W).  ONNX Runtime's NHWC transformer does the same for its quantized
 * kernels: an integer convolution over NHWC pixels is a GEMM whose rows
 * are the pixels (or their im2col rows) and whose output pixels come out
 * whole, where the NCHW kernel interleaves its input into panels and
 * stores planes; `bench/qkernel_bench.c nhwc` measures the GEMM 1.2-1.5x
 * faster on every squeezenet layer with 16 input channels or more
 * (docs/compile.md), the stem (3 channels) excepted.
 *
 * The choice is per value.  A value is NHWC when it is an 8-bit 4-D
 * activation of the main graph (no graph output, no subgraph capture,
 * static shape, not fused into a run) whose producer and every reader can
 * take NHWC:
 *   - a QLinearConv that cg_qlinearconv_takes_nhwc (the kernel form, one
 *     group, CG_NHWC_MIN_C input channels or more): it converts at a
 *     boundary itself, so its input and output may differ (lower_qlinear.c);
 *   - an 8-bit MaxPool (cg_maxpool_takes_nhwc) or a 4-D Concat: no
 *     conversion, so their data inputs and output take one layout, and a
 *     value is dropped from the plan until that holds for all of them.
 * In a chain of convolutions, pools and concatenations (squeezenet's fire
 * modules) every value between the first convolution and the last is then
 * NHWC, and the layout changes twice, at the chain's ends, by a transpose
 * of one image.
 */
#include "codegen/codegen.h"

/* Whether node n, alone in its run, reads and writes NHWC values. */
static bool takes_nhwc(const ir_node *n, const cg_tensor *tens, const int (*span)[2], int k)
{
    if (span && (span[k][0] != k || span[k][1] != k))
        return false;
    switch (n->op) {
    case IR_OP_QLINEARCONV:
        return cg_qlinearconv_takes_nhwc(n, tens);
    case IR_OP_MAXPOOL:
        return cg_maxpool_takes_nhwc(n, tens);
    case IR_OP_CONCAT:
        return n->n_out >= 1 && n->out[0] && tens[n->out[0]->id].rank == 4;
    default:
        return false;
    }
}

/* A value the plan may store NHWC, whoever reads it. */
static bool layout_free(const ir_value *v, const cg_tensor *t)
{
    return t->value && !v->init && v->producer && !ir_value_escapes(v) && t->rank == 4 &&
           (t->dtype == IR_DT_UINT8 || t->dtype == IR_DT_INT8) && !t->dyn && !t->fused &&
           !t->absorbed && !t->bounded;
}

/* Clears nhwc on every data input and the output of MaxPool or Concat n
 * unless all of them have it; true if it cleared any. */
static bool settle(const ir_node *n, cg_tensor *tens)
{
    int n_data = n->op == IR_OP_MAXPOOL ? 1 : n->n_in;
    bool all = n->out[0] && tens[n->out[0]->id].nhwc;
    for (int i = 0; i < n_data && all; i++)
        all = n->in[i] && tens[n->in[i]->id].nhwc;
    if (all)
        return false;
    bool changed = n->out[0] && tens[n->out[0]->id].nhwc;
    if (n->out[0])
        tens[n->out[0]->id].nhwc = false;
    for (int i = 0; i < n_data; i++)
        if (n->in[i] && tens[n->in[i]->id].nhwc) {
            tens[n->in[i]->id].nhwc = false;
            changed = true;
        }
    return changed;
}

oct_status cg_plan_layouts(oct_ctx *ctx, const ir_graph *g, bool vnni, bool nchw_only,
                           const int (*span)[2], cg_tensor *tens)
{
    if (!vnni || nchw_only || !g->n_nodes)
        return OCT_OK;
    bool *able = ir_alloc_array(ctx, g->n_nodes, sizeof *able);
    if (!able)
        return OCT_EINTERNAL;
    /* candidates: every free value whose producer takes NHWC ... */
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        able[k] = takes_nhwc(n, tens, span, (int)k);
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i] && n->out[i]->name[0])
                tens[n->out[i]->id].nhwc = able[k] && i == 0 &&
                                           layout_free(n->out[i], &tens[n->out[i]->id]);
    }
    /* ... and every reader too (a convolution's other inputs are constants,
     * never candidates) */
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        if (able[k])
            continue;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i])
                tens[n->in[i]->id].nhwc = false;
    }
    /* pools and concatenations do not convert: one layout for all their data */
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t k = 0; k < g->n_nodes; k++)
            if (able[k] && g->nodes[k]->op != IR_OP_QLINEARCONV)
                changed |= settle(g->nodes[k], tens);
    }
    return OCT_OK;
}
