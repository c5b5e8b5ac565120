/*
 * window.c: the sliding-window geometry shared by every windowed op (Conv,
 * ConvTranspose's checks, pooling, QLinearConv, ConvInteger), in the
 * interpreter and in the compiler alike: strides, dilations, pads and
 * auto_pad resolved into per-axis padding and output sizes.
 */
#include <string.h>

#include "ops/rules.h"

typedef enum {
    WIN_NOTSET, WIN_VALID, WIN_SAME_UPPER, WIN_SAME_LOWER
} win_autopad;

/* True if the STRING attribute `a` equals `s` (no arena copy: this runs on
 * every node of every calibration batch). */
static bool attr_str_is(const ir_attr *a, const char *s)
{
    size_t len = strlen(s);
    return a->s.len == len && (len == 0 || memcmp(a->s.data, s, len) == 0);
}

/* Reads an INTS attribute of exactly `count` values into out (default dflt
 * when absent).  Reports a wrong type or length; returns false then. */
static bool window_ints(oct_ctx *ctx, const ir_node *node, const char *name,
                        int count, int64_t dflt, int64_t *out)
{
    const ir_attr *a = ir_node_attr(node, name);
    for (int i = 0; i < count; i++)
        out[i] = dflt;
    if (!a)
        return true;
    if (a->type != IR_ATTR_INTS) {
        oct_node_error(ctx, OCT_EINPUT, node,
                       "attribute '%s' must be a list of ints", name);
        return false;
    }
    if (a->n != (size_t)count) {
        oct_node_error(ctx, OCT_EINPUT, node,
                       "attribute '%s' has %zu values, expected %d", name,
                       a->n, count);
        return false;
    }
    if (count) /* an empty list has a NULL array */
        memcpy(out, a->ints, (size_t)count * sizeof *out);
    return true;
}

oct_status ops_window_init(oct_ctx *ctx, const ir_node *node,
                           const ops_shape *x, const int64_t *kernel,
                           bool ceil_mode, ops_window *w)
{
    memset(w, 0, sizeof *w);
    if (x->rank < 3 || x->rank > OPS_MAX_RANK)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "expected rank >= 3 (N, C, spatial...), got %d",
                               x->rank);
    int ns = x->rank - 2;
    w->n_spatial = ns;
    int64_t pads[2 * OPS_MAX_RANK];
    if (!window_ints(ctx, node, "strides", ns, 1, w->stride) ||
        !window_ints(ctx, node, "dilations", ns, 1, w->dilation) ||
        !window_ints(ctx, node, "pads", 2 * ns, 0, pads))
        return OCT_EINPUT;

    win_autopad mode = WIN_NOTSET;
    const ir_attr *ap = ir_node_attr(node, "auto_pad");
    if (ap) {
        if (ap->type != IR_ATTR_STRING)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "attribute 'auto_pad' must be a string");
        if (attr_str_is(ap, "NOTSET") || attr_str_is(ap, ""))
            mode = WIN_NOTSET;
        else if (attr_str_is(ap, "VALID"))
            mode = WIN_VALID;
        else if (attr_str_is(ap, "SAME_UPPER"))
            mode = WIN_SAME_UPPER;
        else if (attr_str_is(ap, "SAME_LOWER"))
            mode = WIN_SAME_LOWER;
        else
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "unknown auto_pad '%.*s'", (int)ap->s.len,
                                  (const char *)ap->s.data);
    }

    for (int i = 0; i < ns; i++) {
        w->in[i] = x->dims[i + 2];
        w->kernel[i] = kernel[i];
        if (w->stride[i] <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "strides[%d] = %lld must be positive", i,
                                  (long long)w->stride[i]);
        if (w->dilation[i] <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "dilations[%d] = %lld must be positive", i,
                                  (long long)w->dilation[i]);
        if (kernel[i] <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "kernel size %lld on spatial axis %d must "
                                  "be positive", (long long)kernel[i], i);
        if (pads[i] < 0 || pads[i + ns] < 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "pads on spatial axis %d must not be "
                                  "negative", i);
        /* Guard the arithmetic below against absurd attribute values. */
        if (w->stride[i] > (INT64_C(1) << 40) ||
            w->dilation[i] > (INT64_C(1) << 40) ||
            kernel[i] > (INT64_C(1) << 40) || pads[i] > (INT64_C(1) << 40) ||
            pads[i + ns] > (INT64_C(1) << 40))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "window attribute on spatial axis %d is "
                                  "too large", i);
        int64_t eff = (kernel[i] - 1) * w->dilation[i] + 1;
        int64_t in = w->in[i];
        if (mode == WIN_NOTSET || mode == WIN_VALID) {
            w->pad_begin[i] = mode == WIN_VALID ? 0 : pads[i];
            w->pad_end[i] = mode == WIN_VALID ? 0 : pads[i + ns];
            if (in < 0) {
                w->out[i] = -1;
                continue;
            }
            int64_t span = in + w->pad_begin[i] + w->pad_end[i] - eff;
            if (span < 0)
                return oct_input_error(ctx, OCT_EINPUT, node, 0,
                                       "window of size %lld on spatial axis "
                                       "%d is larger than the padded input "
                                       "(%lld)", (long long)eff, i,
                                       (long long)(in + w->pad_begin[i] +
                                                   w->pad_end[i]));
            if (ceil_mode) {
                w->out[i] = ops_div_ceil(span, w->stride[i]) + 1;
                /* The last window must start inside the input or the
                 * leading padding (as ONNX Runtime and PyTorch do). */
                if ((w->out[i] - 1) * w->stride[i] >= in + w->pad_begin[i])
                    w->out[i]--;
            } else {
                w->out[i] = ops_div_floor(span, w->stride[i]) + 1;
            }
        } else {
            /* SAME_*: out = ceil(in / stride); the total padding needed,
             * (out-1)*stride + dilated kernel - in, clamped at 0 as ONNX
             * shape inference does (a stride larger than the window would
             * ask for negative padding; engines disagree there), is split
             * evenly, the odd unit at the end (UPPER) or the beginning
             * (LOWER). */
            if (in < 0) {
                w->out[i] = -1;
                w->pad_begin[i] = w->pad_end[i] = -1;
                continue;
            }
            int64_t out = ops_div_ceil(in, w->stride[i]);
            int64_t total = (out - 1) * w->stride[i] + eff - in;
            if (total < 0)
                total = 0;
            int64_t small = total / 2, big = total - small;
            w->pad_begin[i] = mode == WIN_SAME_UPPER ? small : big;
            w->pad_end[i] = mode == WIN_SAME_UPPER ? big : small;
            w->out[i] = out;
        }
    }
    return OCT_OK;
}


void ops_window_axis_range(const ops_window *w, int i, int64_t o, int64_t *lo,
                           int64_t *hi, int64_t *padded)
{
    int64_t start = o * w->stride[i] - w->pad_begin[i], d = w->dilation[i];
    int64_t k = w->kernel[i];
    /* a: smallest k with start + k*d >= 0; b: smallest k with
     * start + k*d >= in; bp: the same against the end of the padding */
    int64_t a = start >= 0 ? 0 : (-start + d - 1) / d;
    int64_t lim = w->in[i] - start;
    int64_t b = lim <= 0 ? 0 : (lim + d - 1) / d;
    int64_t limp = w->in[i] + w->pad_end[i] - start;
    int64_t bp = limp <= 0 ? 0 : (limp + d - 1) / d;
    *lo = a < k ? a : k;
    *hi = b < *lo ? *lo : b > k ? k : b;
    *padded = bp > k ? k : bp;
}
