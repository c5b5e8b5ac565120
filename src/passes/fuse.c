/*
 * fuse.c: local fusions that make a model cheaper to quantize and to run:
 *   Conv + BatchNormalization (inference) -> Conv with folded weights/bias;
 *   MatMul(x, constant W [K, N]) + BatchNormalization over N, x of rank 2
 *     -> Gemm(x, folded W, bias);
 *   Conv + Add(constant, one value per output channel) -> Conv with bias;
 *   MatMul(x, constant W [K, N]) + Add(constant, N values), x of rank 2
 *     -> Gemm(x, W, bias).
 * Each applies only when the intermediate value has no other consumer and
 * is not a graph output, and the constants are FLOAT.  Folding is computed
 * in double and rounded once to float:
 *   k = gamma / sqrt(var + eps);  W'[m] = W[m] * k[m];
 *   b'[m] = (b[m] - mean[m]) * k[m] + beta[m].
 * The fused model differs from the original only by that rounding.
 * The surviving node records the nodes merged into it (ir_node_add_origin:
 * name and op type), so rules written against the input model, such as
 * `quantize --config` overrides by op type MatMul, still find it.
 */
#include <math.h>
#include <string.h>

#include "passes/passes.h"

static const ir_tensor *const_float(const ir_value *v)
{
    return v && v->init && v->init->dtype == IR_DT_FLOAT ? v->init : NULL;
}

/* True if node n is no longer in the graph (a fusion removed it). */
static bool changed_now(const ir_graph *g, const ir_node *n)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] == n)
            return false;
    return true;
}

/* A fresh float initializer copying t's shape (data to be filled). */
static ir_value *new_const(oct_ctx *ctx, ir_graph *g, const char *base, int rank,
                           const int64_t *dims)
{
    ir_tensor *t = ir_tensor_new(ctx, IR_DT_FLOAT, rank, dims);
    return t ? ir_graph_add_init(ctx, g, base, t) : NULL;
}

/* Output-channel count M of a Conv whose weight is constant, or -1. */
static int64_t conv_channels(const ir_node *conv)
{
    const ir_tensor *w = const_float(conv->in[1]);
    return w && w->rank >= 3 ? w->dims[0] : -1;
}

/* The per-channel values of an Add constant for a Conv output of rank r:
 * shapes [M], [M,1,..], [1,M,1,..] are accepted (M ones-padded to the
 * spatial rank, trailing ones); a plain [M] would broadcast along the
 * last axis, not the channels, and is refused. */
static bool per_channel(const ir_tensor *t, int64_t m, int out_rank)
{
    if ((int64_t)t->nelems != m)
        return false;
    int lead = 0;
    if (t->rank == out_rank && out_rank >= 2 && t->dims[0] == 1)
        lead = 1;
    if (t->rank - lead < 1 || t->dims[lead] != m || t->rank > out_rank)
        return false;
    /* the channel axis must land on axis 1 of the output */
    return out_rank - t->rank + lead == 1;
}

static oct_status fuse_conv_add(oct_ctx *ctx, ir_graph *g, ir_node *conv, bool *changed)
{
    int64_t m = conv_channels(conv);
    ir_node *add = ir_value_sole_consumer(g, conv->out[0]);
    if (m < 0 || !add || add->op != IR_OP_ADD || add->n_in != 2 ||
        add->n_attr != 0)
        return OCT_OK;
    int other = add->in[0] == conv->out[0] ? 1 : 0;
    const ir_tensor *c = const_float(add->in[other]);
    int out_rank = conv->out[0]->type.rank;
    if (!c || out_rank < 3 || !per_channel(c, m, out_rank))
        return OCT_OK;
    const ir_tensor *old_b = conv->n_in > 2 ? const_float(conv->in[2]) : NULL;
    if (conv->n_in > 2 && conv->in[2] && !old_b)
        return OCT_OK;
    ir_value *b = new_const(ctx, g, ir_sprintf(ctx, "%s_bias", conv->out[0]->name), 1, &m);
    if (!b || !ir_node_set_inputs(ctx, conv, 3))
        return OCT_EINTERNAL;
    float *bd = b->init->data;
    const float *cd = c->data;
    for (int64_t i = 0; i < m; i++)
        bd[i] = (float)((old_b ? (double)((const float *)old_b->data)[i] : 0.0) + cd[i]);
    conv->in[2] = b;
    if (!ir_node_add_origin(ctx, conv, add))
        return OCT_EINTERNAL;
    ir_value *y = add->out[0];
    ir_graph_remove_node(g, add);
    ir_node_set_output(conv, 0, y);
    *changed = true;
    return OCT_OK;
}

static oct_status fuse_conv_bn(oct_ctx *ctx, ir_graph *g, ir_node *conv, bool *changed)
{
    int64_t m = conv_channels(conv);
    ir_node *bn = ir_value_sole_consumer(g, conv->out[0]);
    if (m < 0 || !bn || bn->op != IR_OP_BATCHNORM || bn->in[0] != conv->out[0] ||
        ir_attr_int(bn, "training_mode", 0) != 0 || ir_attr_int(bn, "spatial", 1) != 1)
        return OCT_OK;
    for (int i = 1; i < bn->n_out; i++)
        if (bn->out[i] && ir_value_use_count(g, bn->out[i]))
            return OCT_OK;
    const ir_tensor *p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = bn->n_in > i + 1 ? const_float(bn->in[i + 1]) : NULL;
        if (!p[i] || (int64_t)p[i]->nelems != m)
            return OCT_OK;
    }
    const ir_tensor *w = conv->in[1]->init;
    const ir_tensor *old_b = conv->n_in > 2 ? const_float(conv->in[2]) : NULL;
    if (conv->n_in > 2 && conv->in[2] && !old_b)
        return OCT_OK;
    double eps = ir_attr_float(bn, "epsilon", 1e-5f);
    ir_value *nw = new_const(ctx, g, ir_sprintf(ctx, "%s_bnfolded", conv->in[1]->name),
                             w->rank, w->dims);
    ir_value *nb = new_const(ctx, g, ir_sprintf(ctx, "%s_bias", conv->out[0]->name), 1, &m);
    if (!nw || !nb || !ir_node_set_inputs(ctx, conv, 3))
        return OCT_EINTERNAL;
    const float *gamma = p[0]->data, *beta = p[1]->data, *mean = p[2]->data,
                *var = p[3]->data, *wd = w->data;
    float *nwd = nw->init->data, *nbd = nb->init->data;
    int64_t per = (int64_t)w->nelems / m;
    for (int64_t o = 0; o < m; o++) {
        double k = gamma[o] / sqrt((double)var[o] + eps);
        for (int64_t i = 0; i < per; i++)
            nwd[o * per + i] = (float)(wd[o * per + i] * k);
        double b0 = old_b ? ((const float *)old_b->data)[o] : 0.0;
        nbd[o] = (float)((b0 - mean[o]) * k + beta[o]);
    }
    conv->in[1] = nw;
    conv->in[2] = nb;
    if (!ir_node_add_origin(ctx, conv, bn))
        return OCT_EINTERNAL;
    ir_value *y = bn->out[0];
    ir_graph_remove_node(g, bn);
    ir_node_set_output(conv, 0, y);
    *changed = true;
    return OCT_OK;
}

static oct_status fuse_matmul_add(oct_ctx *ctx, ir_graph *g, ir_node *mm, bool *changed)
{
    const ir_tensor *w = const_float(mm->in[1]);
    ir_node *add = ir_value_sole_consumer(g, mm->out[0]);
    if (!w || w->rank != 2 || !mm->in[0] || mm->in[0]->type.rank != 2 || !add ||
        add->op != IR_OP_ADD || add->n_attr != 0)
        return OCT_OK;
    int other = add->in[0] == mm->out[0] ? 1 : 0;
    const ir_tensor *c = const_float(add->in[other]);
    int64_t n = w->dims[1];
    if (!c || (int64_t)c->nelems != n || c->dims[c->rank - 1] != n || c->rank > 2)
        return OCT_OK;
    ir_node *gemm = ir_graph_add_node(ctx, g, "Gemm", "", mm->name, 3, 1);
    if (!gemm)
        return OCT_EINTERNAL;
    gemm->in[0] = mm->in[0];
    gemm->in[1] = mm->in[1];
    gemm->in[2] = add->in[other];
    if (!ir_node_add_origin(ctx, gemm, mm) || !ir_node_add_origin(ctx, gemm, add))
        return OCT_EINTERNAL;
    ir_value *y = add->out[0];
    ir_graph_remove_node(g, mm);
    ir_graph_remove_node(g, add);
    ir_node_set_output(gemm, 0, y);
    *changed = true;
    return OCT_OK;
}

/* MatMul(x [M, K], constant W [K, N]) -> BatchNormalization over the N
 * columns -> Gemm(x, W', b') with W'[k][n] = W[k][n] * k[n] and
 * b'[n] = beta[n] - mean[n] * k[n] (k as for Conv). */
static oct_status fuse_matmul_bn(oct_ctx *ctx, ir_graph *g, ir_node *mm, bool *changed)
{
    const ir_tensor *w = const_float(mm->in[1]);
    ir_node *bn = ir_value_sole_consumer(g, mm->out[0]);
    if (!w || w->rank != 2 || !mm->in[0] || mm->in[0]->type.rank != 2 || !bn ||
        bn->op != IR_OP_BATCHNORM || bn->in[0] != mm->out[0] ||
        ir_attr_int(bn, "training_mode", 0) != 0 || ir_attr_int(bn, "spatial", 1) != 1)
        return OCT_OK;
    for (int i = 1; i < bn->n_out; i++)
        if (bn->out[i] && ir_value_use_count(g, bn->out[i]))
            return OCT_OK;
    int64_t k_dim = w->dims[0], n = w->dims[1];
    const ir_tensor *p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = bn->n_in > i + 1 ? const_float(bn->in[i + 1]) : NULL;
        if (!p[i] || (int64_t)p[i]->nelems != n)
            return OCT_OK;
    }
    double eps = ir_attr_float(bn, "epsilon", 1e-5f);
    ir_value *nw = new_const(ctx, g, ir_sprintf(ctx, "%s_bnfolded", mm->in[1]->name), 2, w->dims);
    ir_value *nb = new_const(ctx, g, ir_sprintf(ctx, "%s_bias", mm->out[0]->name), 1, &n);
    ir_node *gemm = nw && nb ? ir_graph_add_node(ctx, g, "Gemm", "", mm->name, 3, 1) : NULL;
    if (!gemm)
        return OCT_EINTERNAL;
    const float *gamma = p[0]->data, *beta = p[1]->data, *mean = p[2]->data,
                *var = p[3]->data, *wd = w->data;
    float *nwd = nw->init->data, *nbd = nb->init->data;
    for (int64_t c = 0; c < n; c++) {
        double k = gamma[c] / sqrt((double)var[c] + eps);
        for (int64_t r = 0; r < k_dim; r++)
            nwd[r * n + c] = (float)(wd[r * n + c] * k);
        nbd[c] = (float)(beta[c] - mean[c] * k);
    }
    gemm->in[0] = mm->in[0];
    gemm->in[1] = nw;
    gemm->in[2] = nb;
    if (!ir_node_add_origin(ctx, gemm, mm) || !ir_node_add_origin(ctx, gemm, bn))
        return OCT_EINTERNAL;
    ir_value *y = bn->out[0];
    ir_graph_remove_node(g, mm);
    ir_graph_remove_node(g, bn);
    ir_node_set_output(gemm, 0, y);
    *changed = true;
    return OCT_OK;
}

oct_status pass_fuse(ir_graph *g, oct_ctx *ctx)
{
    bool changed = false;
    oct_status st = OCT_OK;
    /* fusions remove nodes: walk a snapshot, skipping removed ones */
    size_t n;
    ir_node **snapshot = ir_graph_nodes_copy(g, ctx, &n);
    if (!snapshot)
        return OCT_EINTERNAL;
    for (size_t i = 0; !st && i < n; i++) {
        ir_node *node = snapshot[i];
        if (!ir_graph_has_node(g, node) || !node->out[0])
            continue;
        if (node->op == IR_OP_CONV) {
            st = fuse_conv_bn(ctx, g, node, &changed);
            if (!st)
                st = fuse_conv_add(ctx, g, node, &changed);
        } else if (node->op == IR_OP_MATMUL) {
            st = fuse_matmul_bn(ctx, g, node, &changed);
            if (!st && !changed_now(g, node))
                st = fuse_matmul_add(ctx, g, node, &changed);
        }
    }
    if (st || !changed)
        return st;
    return ctx->model ? ir_verify(ctx->model, ctx) : OCT_OK;
}
