/*
 * fuse_gelu.c: GeLU written out becomes the ONNX opset-20 op Gelu (one
 * element function instead of four to eight element-wise passes):
 *
 *   erf form   y = x * 0.5 * (1 + Erf(x * (1/sqrt 2)))     -> Gelu(x)
 *   tanh form  y = x * 0.5 * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
 *                                                    -> Gelu(x, approximate="tanh")
 *
 * The product is taken apart whatever its association and operand order
 * (exporters write Mul(Mul(x, 0.5), Add(1, Erf(..))), Mul(Mul(x, Add(..)),
 * 0.5), ...); Erf's argument may be Div(x, sqrt 2); x^3 may be Pow(x, 3),
 * Mul(x, Mul(x, x)) or Mul(Mul(x, x), x); the constants must equal the
 * formula's within 1e-4 relative (exporters round them differently).
 * Float32 only, every inner value read by the pattern alone; the opset is
 * raised to 20 when it is older.
 */
#include <math.h>
#include <string.h>

#include "passes/match.h"

enum { MAX_FACTORS = 4, MAX_NODES = 16 };

typedef struct gelu_match {
    ir_node *root;
    ir_value *x;
    bool tanh;
    ir_node *nodes[MAX_NODES];   /* the pattern's nodes other than root */
    int n_nodes;
} gelu_match;

static bool near(double v, double want)
{
    return fabs(v - want) <= 1e-4 * fabs(want);
}

static bool add_node(gelu_match *m, ir_node *n)
{
    if (m->n_nodes == MAX_NODES)
        return false;
    m->nodes[m->n_nodes++] = n;
    return true;
}

/* The operands of a tree of Muls rooted at v (inner values private). */
static bool factors(const ir_graph *g, ir_value *v, bool root, ir_value **out, int *n,
                    gelu_match *m)
{
    ir_node *p = m_def(v, IR_OP_MUL);
    if (p && p->n_in == 2 && (root || m_private(g, v, 1))) {
        if (!root && !add_node(m, p))
            return false;
        return factors(g, p->in[0], false, out, n, m) && factors(g, p->in[1], false, out, n, m);
    }
    if (*n == MAX_FACTORS)
        return false;
    out[(*n)++] = v;
    return true;
}

/* v = Add(1, t) in either order: returns t. */
static ir_value *one_plus(const ir_graph *g, ir_value *v, gelu_match *m)
{
    ir_node *a = m_def(v, IR_OP_ADD);
    double c;
    if (!a || a->n_in != 2 || !m_private(g, v, 1))
        return NULL;
    for (int k = 0; k < 2; k++)
        if (m_scalar(a->in[k], &c) && c == 1.0 && add_node(m, a))
            return a->in[1 - k];
    return NULL;
}

/* v = x * c (Mul, either order) or x / d: returns c (1/d). */
static bool scaled_x(const ir_graph *g, ir_value *v, const ir_value *x, double *c, gelu_match *m)
{
    ir_node *p = v->producer;
    double k;
    if (!p || p->n_in != 2 || !m_private(g, v, 1))
        return false;
    if (p->op == IR_OP_MUL)
        for (int i = 0; i < 2; i++)
            if (p->in[i] == x && m_scalar(p->in[1 - i], &k)) {
                *c = k;
                return add_node(m, p);
            }
    if (p->op == IR_OP_DIV && p->in[0] == x && m_scalar(p->in[1], &k) && k != 0) {
        *c = 1.0 / k;
        return add_node(m, p);
    }
    return false;
}

/* v = x^3: Pow(x, 3) or a product of three x. */
static bool cube(const ir_graph *g, ir_value *v, const ir_value *x, gelu_match *m)
{
    ir_node *p = v->producer;
    double e;
    if (!p || !m_private(g, v, 1))
        return false;
    if (p->op == IR_OP_POW && p->n_in == 2 && p->in[0] == x && m_scalar(p->in[1], &e))
        return e == 3.0 && add_node(m, p);
    ir_value *f[MAX_FACTORS];
    int n = 0;
    if (!factors(g, v, false, f, &n, m))
        return false;
    return n == 3 && f[0] == x && f[1] == x && f[2] == x;
}

/* The tanh form's argument: k * (x + 0.044715 x^3), k = sqrt(2/pi). */
static bool tanh_arg(const ir_graph *g, ir_value *u, const ir_value *x, gelu_match *m)
{
    ir_value *f[MAX_FACTORS];
    int n = 0;
    double k = 0, c3 = 0;
    if (!m_private(g, u, 1) || !factors(g, u, false, f, &n, m) || n != 2)
        return false;
    int ki = m_scalar(f[0], &k) ? 0 : m_scalar(f[1], &k) ? 1 : -1;
    ir_node *a = ki >= 0 ? m_def(f[1 - ki], IR_OP_ADD) : NULL;
    if (!a || !near(k, sqrt(2.0 / M_PI)) || a->n_in != 2 || !m_private(g, f[1 - ki], 1) ||
        !add_node(m, a))
        return false;
    int xi = a->in[0] == x ? 0 : a->in[1] == x ? 1 : -1;
    if (xi < 0)
        return false;
    ir_value *t = a->in[1 - xi];   /* 0.044715 * x^3 */
    ir_node *p = m_def(t, IR_OP_MUL);
    if (!p || p->n_in != 2 || !m_private(g, t, 1) || !add_node(m, p))
        return false;
    int ci = m_scalar(p->in[0], &c3) ? 0 : m_scalar(p->in[1], &c3) ? 1 : -1;
    return ci >= 0 && near(c3, 0.044715) && cube(g, p->in[1 - ci], x, m);
}

static bool match_at(const ir_graph *g, ir_node *n, void *mv)
{
    gelu_match *m = mv;
    memset(m, 0, sizeof *m);
    if (n->op != IR_OP_MUL || n->n_in != 2)
        return false;
    /* n is the root of the product: a Mul inside it sees fewer than three
     * factors, a Mul around it (GeGLU's gelu(x) * up) more */
    ir_value *f[MAX_FACTORS];
    int nf = 0;
    m->root = n;
    if (!factors(g, n->out[0], true, f, &nf, m) || nf != 3)
        return false;
    /* {x, 0.5, 1 + fn(...)} in some order */
    double half = 0;
    int hi = -1;
    for (int i = 0; i < 3; i++)
        if (m_scalar(f[i], &half) && half == 0.5)
            hi = i;
    if (hi < 0)
        return false;
    for (int xi = 0; xi < 3; xi++) {
        if (xi == hi)
            continue;
        int ti = 3 - hi - xi;
        gelu_match save = *m;
        ir_value *x = f[xi], *t = one_plus(g, f[ti], m);
        ir_node *fn = t ? t->producer : NULL;
        double c;
        if (fn && m_private(g, t, 1) && fn->op == IR_OP_ERF && add_node(m, fn) &&
            scaled_x(g, fn->in[0], x, &c, m) && near(c, 1.0 / sqrt(2.0))) {
            m->x = x;
            break;
        }
        *m = save;
        t = one_plus(g, f[ti], m);
        fn = t ? t->producer : NULL;
        if (fn && m_private(g, t, 1) && fn->op == IR_OP_TANH && add_node(m, fn) &&
            tanh_arg(g, fn->in[0], x, m)) {
            m->x = x;
            m->tanh = true;
            break;
        }
        *m = save;
    }
    return m->x && m_dtype(m->x) == IR_DT_FLOAT && m_dtype(n->out[0]) == IR_DT_FLOAT;
}

static oct_status rewrite(oct_ctx *ctx, ir_graph *g, void *mv)
{
    gelu_match *m = mv;
    ir_node *r = m_replace(ctx, g, m->root, "Gelu", 1);
    if (!r)
        return OCT_EINTERNAL;
    r->in[0] = m->x;
    if (m->tanh) {
        ir_attr *a = ir_node_add_attr(ctx, r, "approximate", IR_ATTR_STRING);
        if (!a)
            return OCT_EINTERNAL;
        if (!(a->s.data = (uint8_t *)ir_strdup(ctx, "tanh")))
            return OCT_EINTERNAL;
        a->s.len = 4;
    }
    for (int i = 0; i < m->n_nodes; i++)
        if (!m_absorb(ctx, g, r, m->nodes[i]))
            return OCT_EINTERNAL;
    return OCT_OK;
}

oct_status pass_fuse_gelu(ir_graph *g, oct_ctx *ctx)
{
    return m_fuse_all(g, ctx, "fuse_gelu", 20, sizeof(gelu_match), match_at, rewrite);
}
