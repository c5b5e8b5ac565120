/*
 * fuse_rmsnorm.c: RMSNorm as exporters write it, op by op, becomes the
 * ONNX opset-23 op RMSNormalization (one kernel in the interpreter and the
 * compiler instead of six passes over the activations):
 *
 *   p  = Pow(x, 2)              or Mul(x, x)
 *   ms = ReduceMean(p, axes)    axes = the trailing axes k..r-1, keepdims
 *   s  = Sqrt(Add(ms, eps))     eps a constant scalar
 *   n  = Div(x, s)              or Mul(x, Reciprocal(s))
 *   y  = Mul(n, g)              g constant, broadcasting over axes k..r-1
 *                               (absent: the scale is ones)
 *   ->  y = RMSNormalization(x, g, axis = k, epsilon = eps, stash_type = 1)
 *
 * RMSNormalization computes x / sqrt(mean(x^2) + eps) * g in float32, the
 * same arithmetic as the unfused graph up to rounding order (float
 * tolerance, not bit for bit).  Only float32 patterns whose intermediate
 * values nothing else reads are fused; the model's opset is raised to 23
 * when it is older (the opset upgrade refuses models whose ops it cannot
 * carry over, and then nothing is changed).
 */
#include <string.h>

#include "passes/match.h"

typedef struct rms_match {
    ir_node *pow, *mean, *add, *sqrt, *recip, *div, *mul;
    ir_value *x;
    const ir_tensor *gamma;   /* NULL: ones */
    int axis, rank;
    int64_t dims[OPS_MAX_RANK];
    double eps;
} rms_match;

/* x^2 as Pow(x, 2) or Mul(x, x); returns x. */
static ir_value *square_of(const ir_node *p)
{
    double e;
    if (p->op == IR_OP_POW && p->n_in == 2 && m_scalar(p->in[1], &e) && e == 2.0)
        return p->in[0];
    if (p->op == IR_OP_MUL && p->n_in == 2 && p->in[0] == p->in[1])
        return p->in[0];
    return NULL;
}

/* The gamma of y = Mul(n, g) when it broadcasts over the normalized dims
 * only (leading dims of g beyond them are 1). */
static bool gamma_fits(const ir_tensor *g, const rms_match *m)
{
    int norm = m->rank - m->axis;
    for (int i = 0; i < g->rank; i++) {
        int from_end = g->rank - i;   /* 1 = last axis */
        int64_t d = g->dims[i];
        if (from_end > norm) {
            if (d != 1)
                return false;
        } else if (d != 1 && d != m->dims[m->rank - from_end]) {
            return false;
        }
    }
    return true;
}

static bool match_at(const ir_graph *g, ir_node *n, void *mv)
{
    rms_match *m = mv;
    memset(m, 0, sizeof *m);
    /* n = Div(x, s) or Mul(x, Reciprocal(s)) */
    ir_value *s = NULL;
    if (n->op == IR_OP_DIV && n->n_in == 2) {
        m->x = n->in[0];
        s = n->in[1];
    } else if (n->op == IR_OP_MUL && n->n_in == 2) {
        for (int k = 0; k < 2 && !s; k++) {
            ir_node *r = m_def(n->in[k], IR_OP_RECIPROCAL);
            if (r && m_private(g, n->in[k], 1)) {
                m->recip = r;
                m->x = n->in[1 - k];
                s = r->in[0];
            }
        }
    }
    if (!s || !m_private(g, s, 1) || !(m->sqrt = m_def(s, IR_OP_SQRT)))
        return false;
    ir_value *a = m->sqrt->in[0];
    if (!m_private(g, a, 1) || !(m->add = m_def(a, IR_OP_ADD)) || m->add->n_in != 2)
        return false;
    int k = m_scalar(m->add->in[1], &m->eps) ? 0 : m_scalar(m->add->in[0], &m->eps) ? 1 : -1;
    if (k < 0 || !m_private(g, m->add->in[k], 1) ||
        !(m->mean = m_def(m->add->in[k], IR_OP_REDUCEMEAN)))
        return false;
    ir_value *p = m->mean->in[0];
    if (!m_private(g, p, 1) || !p->producer || square_of(p->producer) != m->x)
        return false;
    m->pow = p->producer;
    m->div = n;
    if (m_dtype(m->x) != IR_DT_FLOAT || (m->rank = m_dims(m->x, m->dims)) < 1)
        return false;
    /* the reduced axes: the trailing ones, kept */
    int64_t axes[OPS_MAX_RANK];
    int n_axes;
    if (ir_attr_int(m->mean, "keepdims", 1) != 1 ||
        !m_ints(m->mean, 1, "axes", axes, OPS_MAX_RANK, &n_axes) || n_axes < 1)
        return false;
    bool seen[OPS_MAX_RANK] = {false};
    for (int i = 0; i < n_axes; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + m->rank : axes[i];
        if (ax < 0 || ax >= m->rank || seen[ax])
            return false;
        seen[ax] = true;
    }
    m->axis = m->rank - n_axes;
    for (int i = m->axis; i < m->rank; i++)
        if (!seen[i])
            return false;
    /* y = Mul(n, gamma) when gamma is a float constant over those axes */
    ir_node *mul = ir_value_sole_consumer(g, n->out[0]);
    if (mul && mul->op == IR_OP_MUL && mul->n_in == 2) {
        const ir_tensor *gm = m_const_f32(mul->in[mul->in[0] == n->out[0] ? 1 : 0]);
        if (gm && mul->in[0] != mul->in[1] && gamma_fits(gm, m)) {
            m->gamma = gm;
            m->mul = mul;
        }
    }
    return true;
}

/* The scale input: gamma over the normalized dims (its leading ones
 * dropped, broadcast dims expanded), or ones. */
static ir_value *scale_value(oct_ctx *ctx, ir_graph *g, const rms_match *m, const char *base)
{
    int norm = m->rank - m->axis;
    const int64_t *nd = m->dims + m->axis;
    ir_tensor *t = ir_tensor_new(ctx, IR_DT_FLOAT, norm, nd);
    if (!t)
        return NULL;
    float *d = t->data;
    const float *gd = m->gamma ? m->gamma->data : NULL;
    for (uint64_t i = 0; i < t->nelems; i++) {
        if (!gd) {
            d[i] = 1.0f;
            continue;
        }
        /* index of element i of the normalized block in gamma */
        uint64_t rem = i, gi = 0, gstride = 1;
        for (int ax = norm - 1; ax >= 0; ax--) {
            uint64_t c = rem % (uint64_t)nd[ax];
            rem /= (uint64_t)nd[ax];
            int gax = m->gamma->rank - (norm - ax);
            if (gax < 0)
                continue;
            int64_t gdim = m->gamma->dims[gax];
            gi += (gdim == 1 ? 0 : c) * gstride;
            gstride *= (uint64_t)gdim;
        }
        d[i] = gd[gi];
    }
    return ir_graph_add_init(ctx, g, base, t);
}

static oct_status rewrite(oct_ctx *ctx, ir_graph *g, void *mv)
{
    rms_match *m = mv;
    ir_node *last = m->mul ? m->mul : m->div;
    ir_value *scale = scale_value(ctx, g, m, ir_sprintf(ctx, "%s_rms_scale", m->x->name));
    ir_node *r = scale ? m_replace(ctx, g, last, "RMSNormalization", 2) : NULL;
    if (!r)
        return OCT_EINTERNAL;
    r->in[0] = m->x;
    r->in[1] = scale;
    /* each add may move the attribute array: set values right away */
    ir_attr *a;
    if (!(a = ir_node_add_attr(ctx, r, "axis", IR_ATTR_INT)))
        return OCT_EINTERNAL;
    a->i = m->axis;
    if (!(a = ir_node_add_attr(ctx, r, "epsilon", IR_ATTR_FLOAT)))
        return OCT_EINTERNAL;
    a->f = (float)m->eps;
    if (!(a = ir_node_add_attr(ctx, r, "stash_type", IR_ATTR_INT)))
        return OCT_EINTERNAL;
    a->i = 1;
    ir_node *absorbed[] = {m->pow, m->mean, m->add, m->sqrt, m->recip, m->mul ? m->div : NULL};
    for (size_t i = 0; i < sizeof absorbed / sizeof absorbed[0]; i++)
        if (absorbed[i] && !m_absorb(ctx, g, r, absorbed[i]))
            return OCT_EINTERNAL;
    return OCT_OK;
}

oct_status pass_fuse_rmsnorm(ir_graph *g, oct_ctx *ctx)
{
    return m_fuse_all(g, ctx, "fuse_rmsnorm", 23, sizeof(rms_match), match_at, rewrite);
}
