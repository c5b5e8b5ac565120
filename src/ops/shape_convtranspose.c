/*
 * shape_convtranspose.c: the shape and type rules of ConvTranspose. Shared
 * by the shape-inference pass and the interpreter, whose kernels are in
 * src/ref/convtranspose.c.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static bool ct_str_is(const ir_attr *a, const char *s)
{
    size_t len = strlen(s);
    return a->s.len == len && (len == 0 || memcmp(a->s.data, s, len) == 0);
}

/* Reads an optional INTS attribute into out[0..count) (dflt when absent);
 * a list of `alt` values (alt > count) keeps its last `count` values. */
static bool ct_ints(oct_ctx *ctx, const ir_node *node, const char *name,
                    int count, int alt, int64_t dflt, int64_t *out, bool *given)
{
    const ir_attr *a = ir_node_attr(node, name);
    for (int i = 0; i < count; i++)
        out[i] = dflt;
    if (given)
        *given = a != NULL;
    if (!a)
        return true;
    if (a->type != IR_ATTR_INTS ||
        (a->n != (size_t)count && (alt <= 0 || a->n != (size_t)alt))) {
        oct_node_error(ctx, OCT_EINPUT, node,
                       "attribute '%s' must list %d ints", name, count);
        return false;
    }
    memcpy(out, a->ints + (a->n - (size_t)count), (size_t)count * sizeof *out);
    return true;
}

/* Resolves the geometry of a ConvTranspose node for input x (rank known)
 * and spatial kernel sizes (> 0).  Output sizes are -1 where the input
 * size is unknown. */
oct_status ops_ct_geometry(oct_ctx *ctx, const ir_node *node,
                           const ops_shape *x, const int64_t *kernel,
                           ops_ct_geom *g)
{
    int ns = x->rank - 2;
    int64_t pads[2 * OPS_MAX_RANK], opad[OPS_MAX_RANK], oshape[OPS_MAX_RANK];
    bool has_oshape;
    memset(g, 0, sizeof *g);
    g->ns = ns;
    if (!ct_ints(ctx, node, "strides", ns, 0, 1, g->s, NULL) ||
        !ct_ints(ctx, node, "dilations", ns, 0, 1, g->d, NULL) ||
        !ct_ints(ctx, node, "pads", 2 * ns, 0, 0, pads, NULL) ||
        !ct_ints(ctx, node, "output_padding", ns, 0, 0, opad, NULL) ||
        !ct_ints(ctx, node, "output_shape", ns, ns + 2, -1, oshape, &has_oshape))
        return OCT_EINPUT;
    int mode = 0; /* 0 NOTSET, 1 VALID, 2 SAME_UPPER, 3 SAME_LOWER */
    const ir_attr *ap = ir_node_attr(node, "auto_pad");
    if (ap) {
        if (ap->type != IR_ATTR_STRING)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "attribute 'auto_pad' must be a string");
        if (ct_str_is(ap, "NOTSET") || ct_str_is(ap, ""))
            mode = 0;
        else if (ct_str_is(ap, "VALID"))
            mode = 1;
        else if (ct_str_is(ap, "SAME_UPPER"))
            mode = 2;
        else if (ct_str_is(ap, "SAME_LOWER"))
            mode = 3;
        else
            return oct_node_error(ctx, OCT_EINPUT, node, "unknown auto_pad '%.*s'",
                                  (int)ap->s.len, (const char *)ap->s.data);
    }
    const int64_t big = INT64_C(1) << 40;
    for (int i = 0; i < ns; i++) {
        g->in[i] = x->dims[i + 2];
        g->k[i] = kernel[i];
        if (g->s[i] <= 0 || g->d[i] <= 0 || g->s[i] > big || g->d[i] > big)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "strides and dilations must be positive "
                                  "(axis %d)", i);
        if (pads[i] < 0 || pads[i + ns] < 0 || opad[i] < 0 || pads[i] > big ||
            pads[i + ns] > big || opad[i] > big || kernel[i] > big)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "pads and output_padding must be "
                                  "non-negative (axis %d)", i);
        if (has_oshape && (oshape[i] <= 0 || oshape[i] > big))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "output_shape[%d] = %lld must be positive",
                                  i, (long long)oshape[i]);
        if (g->in[i] < 0) {
            g->out[i] = has_oshape ? oshape[i] : -1;
            continue;
        }
        int64_t full = g->s[i] * (g->in[i] - 1) + opad[i] +
                       (kernel[i] - 1) * g->d[i] + 1;
        if (has_oshape || mode >= 2) {
            int64_t out = has_oshape ? oshape[i] : g->in[i] * g->s[i];
            /* A requested output larger than the full scatter gets no
             * negative padding: the extra trailing positions hold only the
             * bias (as ONNX Runtime does). */
            int64_t total = full - out > 0 ? full - out : 0;
            g->pb[i] = mode == 2 ? total / 2 : total - total / 2;
            g->out[i] = out;
        } else {
            g->pb[i] = mode == 1 ? 0 : pads[i];
            int64_t pe = mode == 1 ? 0 : pads[i + ns];
            g->out[i] = full - g->pb[i] - pe;
            if (g->out[i] <= 0)
                return oct_input_error(ctx, OCT_EINPUT, node, 0,
                                       "pads leave no output on spatial axis "
                                       "%d", i);
        }
    }
    return OCT_OK;
}

oct_status ops_shape_convtranspose(ops_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ops_shape *x = &inf->in[0], *w = &inf->in[1];
    const ops_shape *b = inf->n_in > 2 ? &inf->in[2] : NULL;
    ops_shape *y = &inf->out[0];
    int64_t group;
    int rank;
    oct_status st = ops_conv_prologue(inf, &group, &rank);
    if (st != OCT_OK || rank < 0)
        return st;
    int ns = rank - 2;
    int64_t cin = x->rank >= 0 ? x->dims[1] : -1;
    int64_t wc = w->rank >= 0 ? w->dims[0] : -1;
    int64_t m = w->rank >= 0 && w->dims[1] >= 0 ? w->dims[1] * group : -1;
    if (cin >= 0 && cin % group != 0)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "group %lld does not divide the %lld input "
                               "channels", (long long)group, (long long)cin);
    if (cin >= 0 && wc >= 0 && cin != wc)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "input has %lld channels, the weight %lld",
                               (long long)cin, (long long)wc);
    if (b && b->rank >= 0 &&
        (b->rank != 1 || (m >= 0 && b->dims[0] >= 0 && b->dims[0] != m)))
        return oct_input_error(ctx, OCT_EINPUT, node, 2,
                               "bias must be 1-D with %lld values",
                               (long long)m);
    int64_t kernel[OPS_MAX_RANK];
    st = ops_conv_kernel_shape(ctx, node, w, ns, kernel);
    if (st != OCT_OK)
        return st;
    ops_shape xs = *x;
    xs.rank = rank;
    bool kernel_known = true;
    for (int i = 0; i < ns; i++) {
        if (x->rank < 0)
            xs.dims[i + 2] = -1;
        if (kernel[i] < 0) {
            kernel_known = false;
            kernel[i] = 1;
        }
    }
    ops_ct_geom g;
    st = ops_ct_geometry(ctx, node, &xs, kernel, &g);
    if (st != OCT_OK)
        return st;
    y->dims[0] = x->rank >= 0 ? x->dims[0] : -1;
    y->dims[1] = m;
    for (int i = 0; i < ns; i++)
        y->dims[i + 2] = kernel_known ? g.out[i] : -1;
    return OCT_OK;
}
