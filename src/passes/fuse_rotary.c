/*
 * fuse_rotary.c: rotary position embedding as exporters write it (the
 * Hugging Face "rotate_half" form) becomes the ONNX opset-23 op
 * RotaryEmbedding:
 *
 *   x1 = Slice(x, 0, h, axis -1)        x [B, H, S, D], D = 2h
 *   x2 = Slice(x, h, D, axis -1)
 *   r  = Concat(Neg(x2), x1, axis -1)
 *   y  = Add(Mul(x, cos), Mul(r, sin))  operands in either order
 *   ->  y = RotaryEmbedding(x, cos_cache, sin_cache[, position_ids])
 *
 * The cos/sin operands repeat their first half in their second (cos =
 * cat(c, c)), which is what makes the rotation a RotaryEmbedding; two
 * forms are recognised:
 *   - a constant [.., S, D] broadcasting over batch and heads: the caches
 *     become its first halves as [B, S, h] and no position_ids is given;
 *   - Gather(table [P, D], position_ids [1, S], axis 0), optionally
 *     Unsqueeze'd at axis 1, with B = 1: the caches become the tables'
 *     first halves [P, h] and the node reads position_ids itself.
 * The outputs equal the unfused graph's up to the rounding order of the
 * two products and their sum (float tolerance).  Float32 only; the model's
 * opset is raised to 23 when it is older.
 */
#include <string.h>

#include "passes/match.h"

typedef struct rope_table {
    const ir_tensor *t;     /* the constant (form 1) or the Gather table */
    const ir_value *src;    /* t's value */
    ir_value *pos;          /* form 2: the position ids, else NULL */
    ir_node *gather, *unsq; /* form 2 nodes (absorbed when private) */
} rope_table;

typedef struct rope_match {
    ir_node *add, *mul_x, *mul_r, *cat, *neg, *s1, *s2;
    ir_value *x;
    rope_table cos, sin;
    int64_t dims[4];
} rope_match;

/* One-element int64 initializer value. */
static bool int_scalar_list(const ir_value *v, int64_t *out)
{
    const ir_tensor *t = v ? v->init : NULL;
    if (!t || t->dtype != IR_DT_INT64 || t->nelems != 1)
        return false;
    *out = *(const int64_t *)t->data;
    return true;
}

/* Slice(x, start, end, axes = [-1 | 3], steps absent or [1]): start/end. */
static bool last_axis_slice(const ir_node *s, const ir_value *x, int64_t d, int64_t *lo,
                            int64_t *hi)
{
    int64_t ax, step = 1;
    if (!s || s->op != IR_OP_SLICE || s->n_in < 4 || s->in[0] != x ||
        !int_scalar_list(s->in[1], lo) || !int_scalar_list(s->in[2], hi) ||
        !int_scalar_list(s->in[3], &ax) || (ax != -1 && ax != 3) ||
        (s->n_in > 4 && s->in[4] && (!int_scalar_list(s->in[4], &step) || step != 1)))
        return false;
    if (*lo < 0)
        *lo += d;
    if (*hi < 0)
        *hi += d;
    if (*hi > d)
        *hi = d;
    return true;
}

/* True when every row of t (its last dim D) repeats its first half. */
static bool halves_repeat(const ir_tensor *t)
{
    int64_t d = t->dims[t->rank - 1], h = d / 2;
    if (d % 2)
        return false;
    const float *p = t->data;
    for (uint64_t r = 0; r < t->nelems / (uint64_t)d; r++)
        for (int64_t i = 0; i < h; i++)
            if (memcmp(&p[r * d + i], &p[r * d + h + i], sizeof *p))
                return false;
    return true;
}

static bool table_form(ir_value *v, const rope_match *m, rope_table *tb)
{
    int64_t b = m->dims[0], s = m->dims[2], d = m->dims[3];
    memset(tb, 0, sizeof *tb);
    const ir_tensor *c = m_const_f32(v);
    if (c) {   /* form 1: [.., S, D], ones before */
        if (c->rank < 2 || c->rank > 4 || c->dims[c->rank - 1] != d || c->dims[c->rank - 2] != s)
            return false;
        for (int i = 0; i < c->rank - 2; i++)
            if (c->dims[i] != 1)
                return false;
        tb->t = c;
        tb->src = v;
        return halves_repeat(c) && b >= 1;
    }
    ir_node *n = v->producer;
    if (n && n->op == IR_OP_UNSQUEEZE) {
        int64_t axes[2];
        int k;
        if (!m_ints(n, 1, "axes", axes, 2, &k) || k != 1 || axes[0] != 1)
            return false;
        tb->unsq = n;
        v = n->in[0];
    }
    ir_node *ga = m_def(v, IR_OP_GATHER);
    if (!ga || ir_attr_int(ga, "axis", 0) != 0 || (!tb->unsq && b != 1))
        return false;
    const ir_tensor *t = m_const_f32(ga->in[0]);
    ir_value *pos = ga->in[1];
    int64_t pd[OPS_MAX_RANK];
    if (!t || t->rank != 2 || t->dims[1] != d || !halves_repeat(t) ||
        m_dtype(pos) != IR_DT_INT64 || m_dims(pos, pd) != 2 || pd[0] != b || pd[1] != s)
        return false;
    tb->t = t;
    tb->src = ga->in[0];
    tb->pos = pos;
    tb->gather = ga;
    return true;
}

static bool match_at(const ir_graph *g, ir_node *n, void *mv)
{
    rope_match *m = mv;
    memset(m, 0, sizeof *m);
    if (n->op != IR_OP_ADD || n->n_in != 2)
        return false;
    m->add = n;
    /* which product holds the rotated half */
    ir_value *sin_v = NULL;
    for (int k = 0; k < 2 && !m->cat; k++) {
        ir_node *mr = m_def(n->in[k], IR_OP_MUL), *mx = m_def(n->in[1 - k], IR_OP_MUL);
        for (int j = 0; mr && mx && mr != mx && j < 2 && !m->cat; j++) {
            if ((m->cat = m_def(mr->in[j], IR_OP_CONCAT)) != NULL) {
                m->mul_r = mr;
                m->mul_x = mx;
                sin_v = mr->in[1 - j];
                if (!m_private(g, mr->in[j], 1))
                    return false;
            }
        }
    }
    if (!m->cat || !m_private(g, n->in[0], 1) || !m_private(g, n->in[1], 1))
        return false;
    if (!m->cat || m->cat->n_in != 2)
        return false;
    int64_t ax = ir_attr_int(m->cat, "axis", 0);
    if (ax != -1 && ax != 3)
        return false;
    /* Concat(Neg(x2), x1) */
    m->neg = m_def(m->cat->in[0], IR_OP_NEG);
    if (!m->neg || !m_private(g, m->cat->in[0], 1) || !m_private(g, m->cat->in[1], 1) ||
        !m_private(g, m->neg->in[0], 1))
        return false;
    m->s2 = m->neg->in[0]->producer;
    m->s1 = m->cat->in[1]->producer;
    if (!m->s1 || !m->s2)
        return false;
    m->x = m->s1->in[0];
    if (m_dtype(m->x) != IR_DT_FLOAT || m_dims(m->x, m->dims) != 4)
        return false;
    int64_t d = m->dims[3], lo1, hi1, lo2, hi2;
    if (d % 2 || !last_axis_slice(m->s1, m->x, d, &lo1, &hi1) ||
        !last_axis_slice(m->s2, m->x, d, &lo2, &hi2) || lo1 != 0 || hi1 != d / 2 ||
        lo2 != d / 2 || hi2 != d)
        return false;
    /* Mul(x, cos) */
    ir_value *cos_v = m->mul_x->in[0] == m->x ? m->mul_x->in[1]
                    : m->mul_x->in[1] == m->x ? m->mul_x->in[0] : NULL;
    if (!cos_v || !table_form(cos_v, m, &m->cos) || !table_form(sin_v, m, &m->sin))
        return false;
    if ((m->cos.pos != NULL) != (m->sin.pos != NULL) || m->cos.pos != m->sin.pos)
        return false;
    /* y has x's shape (the tables broadcast, never widen) */
    int64_t yd[OPS_MAX_RANK];
    return m_dims(n->out[0], yd) == 4 && !memcmp(yd, m->dims, sizeof m->dims);
}

/* First halves of tb's table: [P, h] (form 2) or [B, S, h] (form 1),
 * made once per table and shared by the rotaries that read it. */
static ir_value *cache(oct_ctx *ctx, ir_graph *g, const rope_match *m, const rope_table *tb)
{
    int64_t b = m->dims[0], s = m->dims[2], d = m->dims[3], h = d / 2;
    const char *name = tb->pos ? ir_sprintf(ctx, "%s_half", tb->src->name)
                               : ir_sprintf(ctx, "%s_half_b%lld", tb->src->name, (long long)b);
    if (!name)
        return NULL;
    ir_value *old = ir_graph_find(g, name);
    if (old && old->init)
        return old;
    int64_t dims3[3] = {b, s, h}, dims2[2] = {tb->t->dims[0], h};
    ir_tensor *t = tb->pos ? ir_tensor_new(ctx, IR_DT_FLOAT, 2, dims2)
                           : ir_tensor_new(ctx, IR_DT_FLOAT, 3, dims3);
    if (!t)
        return NULL;
    const float *src = tb->t->data;
    float *dst = t->data;
    int64_t rows = tb->pos ? dims2[0] : s;
    for (int64_t bi = 0; bi < (tb->pos ? 1 : b); bi++)
        for (int64_t r = 0; r < rows; r++)
            memcpy(dst + (bi * rows + r) * h, src + r * d, (size_t)h * sizeof *dst);
    return ir_graph_add_init(ctx, g, name, t);
}

static oct_status rewrite(oct_ctx *ctx, ir_graph *g, void *mv)
{
    rope_match *m = mv;
    ir_value *c = cache(ctx, g, m, &m->cos);
    ir_value *s = cache(ctx, g, m, &m->sin);
    ir_node *r = c && s ? m_replace(ctx, g, m->add, "RotaryEmbedding", m->cos.pos ? 4 : 3)
                        : NULL;
    if (!r)
        return OCT_EINTERNAL;
    r->in[0] = m->x;
    r->in[1] = c;
    r->in[2] = s;
    if (m->cos.pos)
        r->in[3] = m->cos.pos;
    ir_node *absorbed[] = {m->mul_x, m->mul_r, m->cat, m->neg, m->s1, m->s2};
    for (size_t i = 0; i < sizeof absorbed / sizeof absorbed[0]; i++)
        if (!m_absorb(ctx, g, r, absorbed[i]))
            return OCT_EINTERNAL;
    /* the Gathers of the tables are shared by every rotary of a layer (q
     * and k) and of the model: left to dead-code removal (fold) */
    return OCT_OK;
}

oct_status pass_fuse_rotary(ir_graph *g, oct_ctx *ctx)
{
    return m_fuse_all(g, ctx, "fuse_rotary", 23, sizeof(rope_match), match_at, rewrite);
}
