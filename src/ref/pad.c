/*
 * pad.c: shape rule and kernel of Pad.
 *
 * Versions: Pad-1 takes the pads as attribute `paddings`, Pad-2 as `pads`
 * (both with float attribute `value`); from Pad-11 on, pads is input 1
 * (INT64, [x1_begin, x2_begin, ..., x1_end, x2_end]) and constant_value the
 * optional scalar input 2; Pad-18 adds the optional `axes` input 3 (pads
 * then has 2 * len(axes) entries); Pad-19 adds mode "wrap".
 *
 * Negative pads crop.  As in the ONNX reference, an axis is cropped first
 * and the remaining elements are then padded: constant fills with the
 * value, edge repeats the border element, reflect mirrors without
 * repeating the border (numpy "reflect", repeated as often as needed),
 * wrap continues periodically.  Reflect, edge and wrap of an axis cropped
 * to nothing are reported.
 */
#include <string.h>

#include "eltwise.h"

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

/* Reads mode and the per-dim begin/end pads of the node for an input of
 * rank `rank`.  *known is false (and OCT_OK returned) when the pads or axes
 * input is not a known constant.  Reports bad values against the node. */
static oct_status pad_params(oct_ctx *ctx, const ir_node *node, int64_t opset,
                             int rank, const ir_tensor *const *in, int n_in,
                             pad_mode *mode, int64_t *begin, int64_t *end,
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
        *mode = (pad_mode)found;
    }
    int64_t pads[2 * REF_MAX_RANK];
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
        n_pads = ref_const_ints(in[1], pads, 2 * REF_MAX_RANK);
        if (n_pads < 0)
            return oct_input_error(ctx, OCT_EINPUT, node, 1,
                                   "must be a 1-D INT64 tensor of at most %d values",
                                   2 * REF_MAX_RANK);
    }
    int64_t axes[REF_MAX_RANK];
    int n_axes = rank;
    for (int i = 0; i < rank; i++)
        axes[i] = i;
    if (opset >= 18 && n_in > 3 && node->in[3]) {
        if (!in[3])
            return OCT_OK;
        n_axes = ref_const_ints(in[3], axes, REF_MAX_RANK);
        if (n_axes < 0)
            return oct_input_error(ctx, OCT_EINPUT, node, 3,
                                   "must be a 1-D integer tensor of at most %d values",
                                   REF_MAX_RANK);
    }
    if (n_pads != 2 * n_axes)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "has %d values; %d axes need %d", n_pads, n_axes,
                               2 * n_axes);
    for (int i = 0; i < rank; i++)
        begin[i] = end[i] = 0;
    bool seen[REF_MAX_RANK] = {false};
    for (int i = 0; i < n_axes; i++) {
        int ax;
        if (!ref_norm_axis(axes[i], rank, &ax) || seen[ax])
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

oct_status shape_pad(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    pad_mode mode;
    int64_t begin[REF_MAX_RANK], end[REF_MAX_RANK];
    bool known;
    oct_status st = pad_params(inf->ctx, inf->node, inf->opset, x->rank,
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
    ref_shape out = *x;
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

/* Maps coordinate c of the cropped axis of size n (c outside [0, n)) to the
 * element the mode copies; -1 for the constant mode. */
static inline int64_t pad_source(pad_mode mode, int64_t c, int64_t n)
{
    switch (mode) {
    case PAD_EDGE: return c < 0 ? 0 : n - 1;
    case PAD_WRAP: return ((c % n) + n) % n;
    case PAD_REFLECT: {
        if (n == 1)
            return 0;
        int64_t period = 2 * (n - 1);
        c = ((c % period) + period) % period;
        return c < n ? c : period - c;
    }
    default: return -1;
    }
}

oct_status ref_pad(ref_call *call)
{
    const ir_tensor *tx = call->in[0];
    ir_tensor *to = call->out[0];
    pad_mode mode;
    int64_t begin[REF_MAX_RANK], end[REF_MAX_RANK];
    bool known;
    oct_status st = pad_params(call->ctx, call->node, call->opset, tx->rank,
                               call->in, call->n_in, &mode, begin, end, &known);
    if (st != OCT_OK)
        return st;
    int rank = tx->rank;
    unsigned bits = ir_dtype_info(tx->dtype)->bits;
    size_t es = bits / 8;
    /* the constant, as one output element */
    uint8_t fill[16] = {0};
    const ir_tensor *cv = call->n_in > 2 ? call->in[2] : NULL;
    if (cv && cv->nelems < 1)
        cv = NULL;
    /* per axis: cropped range [lo, lo + n) and the pad before it */
    int64_t lo[REF_MAX_RANK], n[REF_MAX_RANK], pre[REF_MAX_RANK], stride[REF_MAX_RANK];
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        lo[d] = begin[d] < 0 ? -begin[d] : 0;
        n[d] = tx->dims[d] - lo[d] - (end[d] < 0 ? -end[d] : 0);
        pre[d] = begin[d] > 0 ? begin[d] : 0;
        stride[d] = s;
        s *= tx->dims[d];
    }
    int64_t idx[REF_MAX_RANK] = {0};
    for (uint64_t i = 0; i < to->nelems; i++) {
        int64_t src = 0;
        for (int d = 0; d < rank && src >= 0; d++) {
            int64_t c = idx[d] - pre[d];
            if (c < 0 || c >= n[d])
                c = pad_source(mode, c, n[d]);
            src = c < 0 ? -1 : src + (lo[d] + c) * stride[d];
        }
        if (src < 0) { /* constant */
            if (cv && es && cv->dtype == to->dtype)
                memcpy((uint8_t *)to->data + i * es, cv->data, es);
            else if (cv && ref_dt_is_float(to->dtype))
                ref_set(to, i, ref_get(cv, 0));
            else if (cv)
                ref_set_i64(to, i, ref_get_i64(cv, 0));
            else if (call->opset < 11)
                ref_set(to, i, ir_attr_float(call->node, "value", 0.0f));
            else if (es)
                memcpy((uint8_t *)to->data + i * es, fill, es);
            else
                ref_set_i64(to, i, 0);
        } else if (es) {
            memcpy((uint8_t *)to->data + i * es, (const uint8_t *)tx->data + src * es, es);
        } else if (ref_dt_is_float(to->dtype)) {
            ref_set(to, i, ref_get(tx, (uint64_t)src));
        } else {
            ref_set_i64(to, i, ref_get_i64(tx, (uint64_t)src));
        }
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < to->dims[d])
                break;
            idx[d] = 0;
        }
    }
    return OCT_OK;
}
