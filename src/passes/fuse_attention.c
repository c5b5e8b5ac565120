/*
 * fuse_attention.c: scaled dot-product attention as exporters write it
 * becomes the ONNX opset-23 op Attention (4-D form), one kernel that never
 * materialises the transposed keys and can be tiled:
 *
 *   kt = Transpose(k, perm [0,1,3,2])         k [B, Hkv, T, D]
 *   s  = MatMul(q', kt)
 *   s  = Mul(s, c) | Div(s, c)                 optional, c a constant scalar
 *   s  = Add(s, mask)                          optional, either operand order
 *   o  = MatMul(Softmax(s, axis -1), v)        v [B, Hkv, T, Dv]
 *   ->  Attention(q, k, v, mask', scale = c | 1/c | 1)
 *
 * Multi-head: q' = q [B, H, S, D] with H = Hkv.  Grouped-query the way
 * stories260k's exporter writes it: q' = Reshape(q [B, H, S, D]) to
 * [B, Hkv, R*S, D] (the R query heads of a key/value head stacked as rows,
 * R = H / Hkv) and the output Reshape'd back to [B, H, S, Dv]; Attention's
 * own grouping (query head h reads key/value head h / R) is the same.  The
 * mask then broadcasts over [B, Hkv, R*S, T]; it is carried over when it
 * has one row (or no per-head dim), and a constant mask whose R blocks of
 * S rows are equal is cut to its first block.  Softmax and the products
 * are those of the unfused graph: float tolerance.  Float32 only; the
 * model's opset is raised to 23 when it is older.
 */
#include <string.h>

#include "passes/match.h"

typedef struct attn_match {
    ir_node *qk, *kt, *scale, *add, *sm, *pv, *q_reshape, *o_reshape;
    ir_value *q, *k, *v, *mask;
    double c;                 /* the scale (1: none) */
    bool gqa;
    int64_t qd[4], kd[4], vd[4];
    int64_t md[4];            /* the mask's dims padded to rank 4 */
} attn_match;

static bool last_two_swapped(const ir_node *t)
{
    const ir_attr *p = ir_node_attr(t, "perm");
    return p && p->type == IR_ATTR_INTS && p->n == 4 && p->ints[0] == 0 &&
           p->ints[1] == 1 && p->ints[2] == 3 && p->ints[3] == 2;
}

/* The scores chain from Softmax's input back to MatMul(q', kt). */
static bool scores(const ir_graph *g, ir_value *s, attn_match *m)
{
    ir_node *n = s->producer;
    m->c = 1.0;
    if (n && n->op == IR_OP_ADD && n->n_in == 2) {
        for (int k = 0; k < 2 && !m->add; k++) {
            ir_node *p = n->in[k]->producer;
            if (p && (p->op == IR_OP_MATMUL || p->op == IR_OP_MUL || p->op == IR_OP_DIV) &&
                m_private(g, n->in[k], 1)) {
                m->add = n;
                m->mask = n->in[1 - k];
                n = p;
            }
        }
        if (!m->add)
            return false;
    }
    if (n && (n->op == IR_OP_MUL || n->op == IR_OP_DIV) && n->n_in == 2) {
        int k = m_scalar(n->in[1], &m->c) ? 0 : (n->op == IR_OP_MUL && m_scalar(n->in[0], &m->c)) ? 1 : -1;
        if (k < 0 || !m_private(g, n->in[k], 1) || m->c == 0.0)
            return false;
        if (n->op == IR_OP_DIV)
            m->c = 1.0 / m->c;
        m->scale = n;
        n = n->in[k]->producer;
    }
    if (!n || n->op != IR_OP_MATMUL)
        return false;
    m->qk = n;
    return true;
}

/* Attention's mask for a grouped-query match: the given one when it does
 * not depend on the stacked row, else (constant, R equal blocks) NULL
 * with *cut set: the caller makes the first block. */
static bool gqa_mask_ok(const attn_match *m, bool *cut)
{
    int64_t rs = m->qd[2] * (m->qd[1] / m->kd[1]);
    *cut = false;
    if (m->md[1] != 1)
        return false;
    if (m->md[2] == 1)
        return true;
    const ir_tensor *t = m_const_f32(m->mask);
    if (m->md[2] != rs || !t)
        return false;
    int64_t s = m->qd[2], tl = m->md[3], blk = s * tl;
    const float *d = t->data;
    for (int64_t b = 0; b < m->md[0]; b++)
        for (int64_t r = 1; r < rs / s; r++)
            if (memcmp(d + b * rs * tl, d + b * rs * tl + r * blk, (size_t)blk * sizeof *d))
                return false;
    *cut = true;
    return true;
}

static bool match_at(const ir_graph *g, ir_node *n, void *mv)
{
    attn_match *m = mv;
    memset(m, 0, sizeof *m);
    if (n->op != IR_OP_MATMUL || n->n_in != 2)
        return false;
    m->pv = n;
    m->sm = m_def(n->in[0], IR_OP_SOFTMAX);
    if (!m->sm || !m_private(g, n->in[0], 1) || !m_private(g, m->sm->in[0], 1))
        return false;
    int64_t ax = ir_attr_int(m->sm, "axis", -1);
    if ((ax != -1 && ax != 3) || !scores(g, m->sm->in[0], m))
        return false;
    m->kt = m_def(m->qk->in[1], IR_OP_TRANSPOSE);
    if (!m->kt || !last_two_swapped(m->kt) || !m_private(g, m->qk->in[1], 1))
        return false;
    m->k = m->kt->in[0];
    m->v = n->in[1];
    ir_value *qq = m->qk->in[0];
    int64_t qqd[OPS_MAX_RANK], od[OPS_MAX_RANK];
    if (m_dims(m->k, m->kd) != 4 || m_dims(m->v, m->vd) != 4 || m_dims(qq, qqd) != 4 ||
        m_dtype(m->k) != IR_DT_FLOAT || m_dtype(m->v) != IR_DT_FLOAT ||
        m_dtype(qq) != IR_DT_FLOAT)
        return false;
    /* grouped-query: q' = Reshape(q [B,H,S,D]) -> [B,Hkv,R*S,D], o reshaped back */
    ir_node *qr = m_def(qq, IR_OP_RESHAPE);
    if (qr && m_private(g, qq, 1) && m_dims(qr->in[0], m->qd) == 4 && m->qd[1] > qqd[1] &&
        m->qd[0] == qqd[0] && m->qd[3] == qqd[3] && m->qd[1] % qqd[1] == 0 &&
        m->qd[1] / qqd[1] * m->qd[2] == qqd[2]) {
        ir_node *orr = ir_value_sole_consumer(g, n->out[0]);
        if (!orr || orr->op != IR_OP_RESHAPE || m_dims(orr->out[0], od) != 4 ||
            od[0] != m->qd[0] || od[1] != m->qd[1] || od[2] != m->qd[2] || od[3] != m->vd[3])
            return false;
        m->gqa = true;
        m->q_reshape = qr;
        m->o_reshape = orr;
        m->q = qr->in[0];
    } else {
        m->q = qq;
        memcpy(m->qd, qqd, sizeof m->qd);
    }
    if (m_dtype(m->q) != IR_DT_FLOAT || m->qd[0] != m->kd[0] || m->kd[0] != m->vd[0] ||
        m->kd[1] != m->vd[1] || m->kd[2] != m->vd[2] || m->qd[3] != m->kd[3] ||
        m->qd[1] % m->kd[1] != 0 || (!m->gqa && m->qd[1] != m->kd[1]))
        return false;
    if (m->mask) {
        int64_t md[OPS_MAX_RANK];
        int r = m_dims(m->mask, md);
        if (r < 0 || r > 4 || m_dtype(m->mask) != IR_DT_FLOAT)
            return false;
        for (int i = 0; i < 4; i++)
            m->md[i] = i < 4 - r ? 1 : md[i - (4 - r)];
        bool cut;
        if (m->gqa && !gqa_mask_ok(m, &cut))
            return false;
    }
    return true;
}

/* The first block of S rows of a grouped-query constant mask. */
static ir_value *cut_mask(oct_ctx *ctx, ir_graph *g, const attn_match *m)
{
    int64_t s = m->qd[2], tl = m->md[3], rs = m->md[2];
    int64_t dims[4] = {m->md[0], 1, s, tl};
    const char *name = ir_sprintf(ctx, "%s_rows%lld", m->mask->name, (long long)s);
    if (!name)
        return NULL;
    ir_value *old = ir_graph_find(g, name);
    if (old && old->init)
        return old;
    ir_tensor *t = ir_tensor_new(ctx, IR_DT_FLOAT, 4, dims);
    if (!t)
        return NULL;
    const float *src = m->mask->init->data;
    for (int64_t b = 0; b < m->md[0]; b++)
        memcpy((float *)t->data + b * s * tl, src + b * rs * tl, (size_t)(s * tl) * sizeof(float));
    return ir_graph_add_init(ctx, g, name, t);
}

static oct_status rewrite(oct_ctx *ctx, ir_graph *g, void *mv)
{
    attn_match *m = mv;
    ir_value *mask = m->mask;
    bool cut = false;
    if (mask && m->gqa && gqa_mask_ok(m, &cut) && cut && !(mask = cut_mask(ctx, g, m)))
        return OCT_EINTERNAL;
    ir_node *last = m->gqa ? m->o_reshape : m->pv;
    ir_node *r = m_replace(ctx, g, last, "Attention", mask ? 4 : 3);
    if (!r)
        return OCT_EINTERNAL;
    r->in[0] = m->q;
    r->in[1] = m->k;
    r->in[2] = m->v;
    if (mask)
        r->in[3] = mask;
    ir_attr *sc = ir_node_add_attr(ctx, r, "scale", IR_ATTR_FLOAT);
    if (!sc)
        return OCT_EINTERNAL;
    sc->f = (float)m->c;
    ir_node *absorbed[] = {m->qk, m->kt, m->scale, m->add, m->sm,
                           m->gqa ? m->pv : NULL, m->q_reshape};
    for (size_t i = 0; i < sizeof absorbed / sizeof absorbed[0]; i++)
        if (absorbed[i] && !m_absorb(ctx, g, r, absorbed[i]))
            return OCT_EINTERNAL;
    return OCT_OK;
}

oct_status pass_fuse_attention(ir_graph *g, oct_ctx *ctx)
{
    return m_fuse_all(g, ctx, "fuse_attention", 23, sizeof(attn_match), match_at, rewrite);
}
