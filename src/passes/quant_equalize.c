/*
 * quant_equalize.c: data-free cross-layer equalization (Nagel et al. 2019,
 * "Data-Free Quantization Through Weight Equalization and Bias
 * Correction", section 4.1), `octet quantize --equalize` and the pass
 * `equalize`.
 *
 * For a Conv A whose output reaches only Convs B1..Bn (their data input),
 * directly or through Relu and MaxPool nodes of one consumer each, and a
 * positive factor s[c] per channel c of A's output:
 *     A'[c] = A[c] / s[c],  bA'[c] = bA[c] / s[c],  Bi'[:, c] = Bi[:, c] * s[c]
 * computes the same function: Relu(x / s) = Relu(x) / s and MaxPool(x / s)
 * = MaxPool(x) / s for s > 0, and the Bs' zero padding is still zero.
 * With r1[c] = max |A[c, ...]| and r2[c] = max |Bi[:, c, ...]| over the Bs
 * (the output channels of c's group when a B is grouped or depthwise),
 * s[c] = sqrt(r1[c] / r2[c]) gives both the range sqrt(r1 r2): the
 * per-tensor ranges of the weights on both sides even out.  A layer in the
 * middle of a chain is a B of one group and the A of the next; sweeps over
 * all groups repeat until the factors stay within 1e-4 of 1 (or
 * MAX_SWEEPS).
 *
 * Each equalized weight and bias is a fresh initializer (the original may
 * be shared, or belong to the loaded file); only FLOAT initializers used by
 * nothing else take part.  The rewritten model equals the original up to
 * float rounding of the factors (relative 1e-7 per multiply).
 */
#include <math.h>
#include <string.h>

#include "passes/quant.h"

enum { MAX_SWEEPS = 50 };

/* One A and the Bs that read its channels. */
typedef struct eq_group {
    ir_node *a;      /* the layer whose output channels shrink by s */
    ir_node **b;     /* the layers whose input channels grow by s */
    size_t nb;
} eq_group;

/* A Conv whose weight (rank >= 3) and bias, if any, are FLOAT
 * initializers read by this node only. */
static bool eq_conv(const ir_graph *g, const ir_node *n)
{
    if (n->op != IR_OP_CONV || n->n_in < 2 || !n->in[1] || !n->in[1]->init ||
        n->in[1]->init->dtype != IR_DT_FLOAT || n->in[1]->init->rank < 3 ||
        ir_value_use_count(g, n->in[1]) != 1)
        return false;
    if (n->n_in > 2 && n->in[2])
        return n->in[2]->init && n->in[2]->init->dtype == IR_DT_FLOAT &&
               (int64_t)n->in[2]->init->nelems == n->in[1]->init->dims[0] &&
               ir_value_use_count(g, n->in[2]) == 1;
    return true;
}

/* An op that commutes with a positive per-channel scale: Relu(s x) =
 * s Relu(x), MaxPool(s x) = s MaxPool(x) (its padding is -inf). */
static bool eq_homogeneous(const ir_graph *g, const ir_node *n)
{
    if (n->op == IR_OP_RELU)
        return n->n_in == 1;
    if (n->op == IR_OP_MAXPOOL)
        return n->n_out < 2 || !n->out[1] || !ir_value_use_count(g, n->out[1]);
    return false;
}

/* Whether Conv b reading the C channels of a's output can take the
 * factors on its input channels. */
static bool eq_fits(const ir_node *a, const ir_node *b)
{
    const ir_tensor *wa = a->in[1]->init, *wb = b->in[1]->init;
    int64_t groups = ir_attr_int(b, "group", 1);
    return groups >= 1 && wb->dims[0] % groups == 0 &&
           wa->dims[0] == wb->dims[1] * groups;
}

/* The group of A: the Convs reading A's output, through a chain of
 * Relu/MaxPool nodes that each have one consumer, as their data input and
 * nothing else reading it.  False if there is none. */
static bool eq_group_of(const ir_graph *g, ir_node *a, eq_group *out, oct_ctx *ctx)
{
    ir_value *y = a->out[0];
    for (;;) {
        if (ir_value_escapes(y))
            return false;
        ir_node *c = ir_value_sole_consumer(g, y);
        if (!c || !eq_homogeneous(g, c))
            break;
        y = c->out[0];
    }
    size_t uses = ir_value_use_count(g, y), nb = 0;
    if (!uses || ir_value_escapes(y))
        return false;
    ir_node **b = ir_alloc_array(ctx, uses, sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->n_in > 0 && n->in[0] == y && eq_conv(g, n) && eq_fits(a, n))
            b[nb++] = n;
    }
    if (nb != uses)
        return false;
    *out = (eq_group){a, b, nb};
    return true;
}

/* Replaces node input i (a FLOAT initializer) by a private copy. */
static oct_status eq_private(oct_ctx *ctx, ir_graph *g, ir_node *n, int i)
{
    if (n->n_in <= i || !n->in[i])
        return OCT_OK;
    const ir_tensor *t = n->in[i]->init;
    ir_tensor *c = ir_tensor_new(ctx, IR_DT_FLOAT, t->rank, t->dims);
    if (!c)
        return OCT_EINTERNAL;
    memcpy(c->data, t->data, t->nbytes);
    ir_value *v = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_equalized",
                                                       n->in[i]->name), c);
    if (!v)
        return OCT_EINTERNAL;
    n->in[i] = v;
    return OCT_OK;
}

/* Elements of one output channel of a weight. */
static int64_t eq_slice(const ir_tensor *w)
{
    return w->dims[0] ? (int64_t)w->nelems / w->dims[0] : 0;
}

/* The elements of Conv b's weight that read input channel c: output
 * channels [o0, o1), at offset off + [0, k) of each (sb elements). */
typedef struct eq_in_range {
    int64_t o0, o1, off, k, sb;
} eq_in_range;

static eq_in_range eq_inputs(const ir_node *b, int64_t c)
{
    const ir_tensor *wb = b->in[1]->init;
    int64_t groups = ir_attr_int(b, "group", 1), cpg = wb->dims[1];
    int64_t opg = wb->dims[0] / groups, sb = eq_slice(wb), grp = c / cpg;
    return (eq_in_range){grp * opg, (grp + 1) * opg, (c % cpg) * (sb / cpg), sb / cpg, sb};
}

/* One equalization step of group p; *moved: the largest |log s| taken. */
static void eq_step(const eq_group *p, double *moved)
{
    ir_tensor *wa = p->a->in[1]->init;
    float *a = wa->data;
    float *bias = p->a->n_in > 2 && p->a->in[2] ? p->a->in[2]->init->data : NULL;
    int64_t C = wa->dims[0], sa = eq_slice(wa);
    for (int64_t c = 0; c < C; c++) {
        double r1 = 0, r2 = 0;
        for (int64_t j = 0; j < sa; j++)
            r1 = fmax(r1, fabs(a[c * sa + j]));
        for (size_t q = 0; q < p->nb; q++) {
            const float *b = p->b[q]->in[1]->init->data;
            eq_in_range r = eq_inputs(p->b[q], c);
            for (int64_t o = r.o0; o < r.o1; o++)
                for (int64_t j = 0; j < r.k; j++)
                    r2 = fmax(r2, fabs(b[o * r.sb + r.off + j]));
        }
        if (!(r1 > 0) || !(r2 > 0) || !isfinite(r1) || !isfinite(r2))
            continue;
        double s = sqrt(r1 / r2);
        *moved = fmax(*moved, fabs(log(s)));
        for (int64_t j = 0; j < sa; j++)
            a[c * sa + j] = (float)(a[c * sa + j] / s);
        if (bias)
            bias[c] = (float)(bias[c] / s);
        for (size_t q = 0; q < p->nb; q++) {
            float *b = p->b[q]->in[1]->init->data;
            eq_in_range r = eq_inputs(p->b[q], c);
            for (int64_t o = r.o0; o < r.o1; o++)
                for (int64_t j = 0; j < r.k; j++)
                    b[o * r.sb + r.off + j] = (float)(b[o * r.sb + r.off + j] * s);
        }
    }
}

/* Whether node is the A or one of the Bs of a group in p[0..n). */
static bool eq_member(const eq_group *p, size_t n, const ir_node *node)
{
    for (size_t k = 0; k < n; k++) {
        if (p[k].a == node)
            return true;
        for (size_t q = 0; q < p[k].nb; q++)
            if (p[k].b[q] == node)
                return true;
    }
    return false;
}

oct_status quant_equalize(ir_model *m, size_t *n_pairs, oct_ctx *ctx)
{
    ir_graph *g = m->graph;
    *n_pairs = 0;
    eq_group *groups = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *groups);
    if (!groups)
        return OCT_EINTERNAL;
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        ir_node *a = g->nodes[i];
        if (eq_conv(g, a) && eq_group_of(g, a, &groups[n], ctx))
            n++;
    }
    /* private copies, once per layer (a middle layer is in two groups) */
    for (size_t i = 0; i < g->n_nodes; i++) {
        ir_node *node = g->nodes[i];
        if (!eq_member(groups, n, node))
            continue;
        oct_status st = eq_private(ctx, g, node, 1);
        if (!st)
            st = eq_private(ctx, g, node, 2);
        if (st)
            return st;
    }
    for (int sweep = 0; sweep < MAX_SWEEPS && n; sweep++) {
        double moved = 0;
        for (size_t k = 0; k < n; k++)
            eq_step(&groups[k], &moved);
        if (moved < 1e-4)
            break;
    }
    quant_drop_dead_inits(g);
    *n_pairs = n;
    return OCT_OK;
}

oct_status pass_equalize(ir_graph *g, oct_ctx *ctx)
{
    OCT_ASSERT(ctx->model && ctx->model->graph == g);
    size_t n;
    return quant_equalize(ctx->model, &n, ctx);
}
