/*
 * shape_pad.c: the shape and type rules of Pad. Shared by the shape-
 * inference pass and the interpreter, whose kernels are in src/ref/pad.c.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

/* Reads mode and the per-dim begin/end pads of the node for an input of
 * rank `rank`.  *known is false (and OCT_OK returned) when the pads or axes
 * input is not a known constant.  Reports bad values against the node. */
oct_status ops_pad_params(oct_ctx *ctx, const ir_node *node, int64_t opset,
                          int rank, const ir_tensor *const *in, int n_in,
                          ops_pad_mode *mode, int64_t *begin, int64_t *end,
                          bool *known)
{
    *known = false;
    const ir_attr *m = ir_node_attr(node, "mode");
    *mode = PAD_CONSTANT;
    if (m && m->type == IR_ATTR_STRING) {
        static const char *names[] = {"constant", "reflect", "edge", "wrap"};
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (m->s.len == strlen(names[i]) && !memcmp(m->s.data, names[i], m->s.len))
                found = i;
        if (found < 0 || (found == PAD_WRAP && opset < 19))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "mode '%.*s' is not one of constant, reflect, "
                                  "edge%s", (int)m->s.len, (const char *)m->s.data,
                                  opset >= 19 ? ", wrap" : "");
        *mode = (ops_pad_mode)found;
    }
    int64_t pads[2 * OPS_MAX_RANK];
    int n_pads;
    if (opset < 11) {
        const ir_attr *p = ir_node_attr(node, opset < 2 ? "paddings" : "pads");
        if (!p)
            p = ir_node_attr(node, opset < 2 ? "pads" : "paddings");
        if (!p || p->type != IR_ATTR_INTS)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "attribute '%s' is required",
                                  opset < 2 ? "paddings" : "pads");
        if (rank < 0)
            return OCT_OK;
        if (p->n != (size_t)(2 * rank))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "pads has %zu values; rank-%d input needs %d",
                                  p->n, rank, 2 * rank);
        n_pads = 2 * rank;
        if (n_pads) /* an empty list has a NULL array */
            memcpy(pads, p->ints, (size_t)n_pads * sizeof *pads);
    } else {
        if (n_in < 2 || !node->in[1])
            return oct_node_error(ctx, OCT_EINPUT, node, "input 1 (pads) is required");
        if (!in[1] || rank < 0)
            return OCT_OK;
        n_pads = ops_const_ints(in[1], pads, 2 * OPS_MAX_RANK);
        if (n_pads < 0)
            return oct_input_error(ctx, OCT_EINPUT, node, 1,
                                   "must be a 1-D INT64 tensor of at most %d values",
                                   2 * OPS_MAX_RANK);
    }
    int64_t axes[OPS_MAX_RANK];
    int n_axes = rank;
    for (int i = 0; i < rank; i++)
        axes[i] = i;
    if (opset >= 18 && n_in > 3 && node->in[3]) {
        if (!in[3])
            return OCT_OK;
        n_axes = ops_const_ints(in[3], axes, OPS_MAX_RANK);
        if (n_axes < 0)
            return oct_input_error(ctx, OCT_EINPUT, node, 3,
                                   "must be a 1-D integer tensor of at most %d values",
                                   OPS_MAX_RANK);
    }
    if (n_pads != 2 * n_axes)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "has %d values; %d axes need %d", n_pads, n_axes,
                               2 * n_axes);
    for (int i = 0; i < rank; i++)
        begin[i] = end[i] = 0;
    bool seen[OPS_MAX_RANK] = {false};
    for (int i = 0; i < n_axes; i++) {
        int ax;
        if (!ops_norm_axis(axes[i], rank, &ax) || seen[ax])
            return oct_input_error(ctx, OCT_EINPUT, node, n_axes == rank && n_in <= 3 ? 1 : 3,
                                   "axis %lld is out of range or repeated for rank %d",
                                   (long long)axes[i], rank);
        seen[ax] = true;
        begin[ax] = pads[i];
        end[ax] = pads[n_axes + i];
    }
    *known = true;
    return OCT_OK;
}

oct_status ops_shape_pad(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_pad_mode mode;
    int64_t begin[OPS_MAX_RANK], end[OPS_MAX_RANK];
    bool known;
    oct_status st = ops_pad_params(inf->ctx, inf->node, inf->opset, x->rank,
                               inf->in_const, inf->n_in, &mode, begin, end, &known);
    if (st != OCT_OK)
        return st;
    if (inf->n_in > 2 && inf->node->in[2] && inf->in[2].dtype != IR_DT_UNDEFINED &&
        x->dtype != IR_DT_UNDEFINED && inf->in[2].dtype != x->dtype)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 2,
                               "element type %s differs from input 0's %s",
                               ir_dtype_name(inf->in[2].dtype), ir_dtype_name(x->dtype));
    if (x->dtype == IR_DT_STRING || ir_dtype_info(x->dtype)->kind == IR_DK_COMPLEX)
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, 0,
                               "Pad of %s tensors is not supported",
                               ir_dtype_name(x->dtype));
    ops_shape out = *x;
    for (int d = 0; d < out.rank; d++) {
        if (!known) {
            out.dims[d] = -1;
            continue;
        }
        if (x->dims[d] < 0)
            continue;
        int64_t size = x->dims[d] + begin[d] + end[d];
        int64_t kept = x->dims[d] + (begin[d] < 0 ? begin[d] : 0) + (end[d] < 0 ? end[d] : 0);
        if (size < 0 || kept < 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                                   "pads crop dim %d (size %lld) below zero",
                                   d, (long long)x->dims[d]);
        if (mode != PAD_CONSTANT && kept == 0 && size > 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                                   "cannot pad dim %d with nothing left to copy",
                                   d);
        out.dims[d] = size;
    }
    inf->out[0] = out;
    return OCT_OK;
}
