/*
 * unroll_loop.c: Loop nodes of the main graph whose body's shapes change
 * with the iteration are unrolled before lowering.  Compiled code has one
 * static shape per value, and a body that slices with its iteration number
 * (x[i:i+1], a window moving along a sequence) has a Slice whose starts
 * and ends are known only per iteration: no shape holds for every one.
 * Once the trip count is known at compile time (ops_loop_static_trip: a
 * constant M, a body that cannot stop early; the JIT folds M and cond as
 * geometry inputs), each iteration is a copy of the body in which the
 * iteration number is a constant, so shape inference and folding give
 * every value a static shape.
 *
 * Only a Loop that needs it is unrolled: a body value without a static
 * shape after shape inference.  A body whose values are all static is
 * left to the loop lowering (lower_control.c), which keeps one copy of it.
 * Copy i of body value v is a new value named after v (ir_graph_unique_name
 * on "v_itI"); the iteration number is an int64 initializer holding i, the
 * condition a true one, the carried inputs the previous copy's carried
 * outputs (the Loop's initial values first).  Body initializers become
 * main-graph initializers once; outer-scope reads become plain reads.  The
 * Loop's carried outputs are Identity of the last copy's; each scan output
 * is the Concat along axis 0 of the copies' items, each Unsqueezed on axis
 * 0 (axes an input from opset 13, an attribute before).
 *
 * Left alone (the lowering then refuses, exit 3): a trip count unknown at
 * compile time or 0, more than UNROLL_MAX_NODES body nodes in all, a body
 * holding control-flow nodes of its own (their subgraphs read body values
 * by names a copy would change), or an outer read the main graph does not
 * define.  Loops inside subgraphs stay.
 */
#include <stdio.h>
#include <string.h>

#include "ops/ops.h"
#include "passes/passes.h"
#include "passes/splice.h"

/* The most body nodes an unrolled Loop may add (trip count * body nodes). */
#define UNROLL_MAX_NODES 4096

static bool static_shape(const ir_value *v)
{
    if (!v->has_type || v->type.rank < 0)
        return false;
    for (int d = 0; d < v->type.rank; d++)
        if (v->type.dims[d].value < 0)
            return false;
    return true;
}

/* Whether body b computes a value without a static shape. */
static bool needs_unroll(const ir_graph *b)
{
    for (size_t k = 0; k < b->n_nodes; k++)
        for (int i = 0; i < b->nodes[k]->n_out; i++) {
            const ir_value *v = b->nodes[k]->out[i];
            if (v && v->name[0] && !static_shape(v))
                return true;
        }
    return false;
}

/* Whether copies of body b can move into g (file comment). */
static bool can_unroll(const ir_graph *g, const ir_graph *b)
{
    for (size_t k = 0; k < b->n_nodes; k++)
        if (ir_node_has_subgraph(b->nodes[k]))
            return false;
    for (size_t v = 0; v < b->n_values; v++) {
        const ir_value *x = b->values[v];
        if (!x->name[0] || ir_value_defined_here(x))
            continue;
        const ir_value *outer = ir_graph_find(g, x->name);
        if (!outer || !ir_value_defined_here(outer))
            return false;
    }
    return true;
}

/* An initializer of g: one element of dtype dt, rank 0 or [1] like the
 * body input `like` (rank 0 when its rank is not 1). */
static ir_value *scalar_init(oct_ctx *ctx, ir_graph *g, const ir_value *like, ir_dtype dt,
                             int64_t value, const char *base)
{
    int64_t one = 1;
    int rank = like->has_type && like->type.rank == 1 ? 1 : 0;
    ir_tensor *t = ir_tensor_new(ctx, dt, rank, &one);
    if (!t)
        return NULL;
    if (dt == IR_DT_INT64)
        *(int64_t *)t->data = value;
    else
        *(uint8_t *)t->data = (uint8_t)value;
    return ir_graph_add_init(ctx, g, base, t);
}

typedef struct unroller {
    oct_ctx *ctx;
    ir_graph *g;
    const ir_graph *b;
    ir_value **map;   /* body value id -> this copy's value */
    ir_value **inits; /* body value id -> main-graph initializer (all copies) */
    int64_t iter;
} unroller;

/* This copy's value for body value x (NULL for an omitted one, or when
 * out of memory: *oom set). */
static ir_value *copy_value(unroller *u, ir_value *x, bool *oom)
{
    if (!x || !x->name[0])
        return NULL;
    if (u->map[x->id])
        return u->map[x->id];
    ir_value *v;
    if (x->init) {
        if (!u->inits[x->id])
            u->inits[x->id] = ir_graph_add_init(u->ctx, u->g, x->name, x->init);
        v = u->inits[x->id];
    } else if (ir_value_defined_here(x)) {
        char base[256];
        snprintf(base, sizeof base, "%s_it%lld", x->name, (long long)u->iter);
        const char *name = ir_graph_unique_name(u->ctx, u->g, base);
        v = name ? ir_graph_value(u->ctx, u->g, name) : NULL;
        if (v) { /* each copy has its own shape: shape inference decides */
            v->has_type = false;
            memset(&v->type, 0, sizeof v->type);
            v->type.rank = -1;
        }
    } else {
        v = ir_graph_find(u->g, x->name);
    }
    *oom = *oom || !v;
    u->map[x->id] = v;
    return v;
}

/* Appends copy u->iter of the body's nodes to g. */
static bool copy_body(unroller *u)
{
    bool oom = false;
    for (size_t k = 0; k < u->b->n_nodes && !oom; k++) {
        const ir_node *bn = u->b->nodes[k];
        char name[256];
        snprintf(name, sizeof name, "%s_it%lld", bn->name ? bn->name : "", (long long)u->iter);
        ir_node *pn = ir_graph_add_node(u->ctx, u->g, bn->op_type, bn->domain,
                                        bn->name && bn->name[0] ? name : bn->name,
                                        bn->n_in, bn->n_out);
        if (!pn)
            return false;
        pn->attrs = bn->attrs;
        pn->n_attr = bn->n_attr;
        pn->doc = bn->doc;
        for (int i = 0; i < bn->n_in; i++)
            pn->in[i] = copy_value(u, bn->in[i], &oom);
        for (int i = 0; i < bn->n_out && !oom; i++) {
            ir_value *v = copy_value(u, bn->out[i], &oom);
            if (v)
                ir_node_set_output(pn, i, v);
        }
    }
    return !oom;
}

/* y = the Loop's output: Identity of x, the value type left to shape
 * inference unless y is a graph output. */
static ir_node *produce(oct_ctx *ctx, ir_graph *g, const ir_node *loop, const char *op,
                        int n_in, ir_value *y)
{
    ir_node *p = ir_graph_add_node(ctx, g, op, "", loop->name, n_in, 1);
    if (!p)
        return NULL;
    if (!(y->flags & IR_VAL_OUTPUT)) {
        y->has_type = false;
        memset(&y->type, 0, sizeof y->type);
        y->type.rank = -1;
    }
    ir_node_set_output(p, 0, y);
    return p;
}

/* Item x with a new leading axis of 1 (Unsqueeze on axis 0). */
static ir_value *unsqueeze0(oct_ctx *ctx, ir_graph *g, const ir_node *loop, ir_value *x,
                            int64_t opset)
{
    const char *name = ir_graph_unique_name(ctx, g, x->name);
    ir_value *y = name ? ir_graph_value(ctx, g, name) : NULL;
    ir_node *u = y ? ir_graph_add_node(ctx, g, "Unsqueeze", "", loop->name,
                                       opset >= 13 ? 2 : 1, 1) : NULL;
    if (!u)
        return NULL;
    u->in[0] = x;
    int64_t one = 1;
    if (opset >= 13) {
        ir_tensor *axes = ir_tensor_new(ctx, IR_DT_INT64, 1, &one);
        if (!axes || !(u->in[1] = ir_graph_add_init(ctx, g, "unroll_axes", axes)))
            return NULL;
    } else {
        ir_attr *a = ir_node_add_attr(ctx, u, "axes", IR_ATTR_INTS);
        int64_t *zero = a ? ir_alloc_array(ctx, 1, sizeof *zero) : NULL;
        if (!zero)
            return NULL;
        *zero = 0;
        a->ints = zero;
        a->n = 1;
    }
    ir_node_set_output(u, 0, y);
    return y;
}

/* Replaces Loop n (body structure c, trip count `trip`) by `trip` copies
 * of its body; false with *st set when out of memory. */
static bool unroll_one(oct_ctx *ctx, ir_graph *g, ir_node *n, const ops_control *c,
                       int64_t trip, int64_t opset, oct_status *st)
{
    const ir_graph *b = c->body;
    int ns = c->n_state, nk = c->n_scan_out;
    unroller u = {.ctx = ctx, .g = g, .b = b};
    u.map = ir_alloc_array(ctx, b->n_values + 1, sizeof *u.map);
    u.inits = ir_alloc_array(ctx, b->n_values + 1, sizeof *u.inits);
    ir_value **carried = ir_alloc_array(ctx, (size_t)ns + 1, sizeof *carried);
    ir_value **items = ir_alloc_array(ctx, (size_t)(trip * nk) + 1, sizeof *items);
    ir_value *truth = scalar_init(ctx, g, b->inputs[1], IR_DT_BOOL, 1, "unroll_cond");
    if (!u.map || !u.inits || !carried || !items || !truth)
        goto oom;
    memset(u.inits, 0, (b->n_values + 1) * sizeof *u.inits);
    for (int s = 0; s < ns; s++)
        carried[s] = n->in[2 + s];
    for (u.iter = 0; u.iter < trip; u.iter++) {
        memset(u.map, 0, (b->n_values + 1) * sizeof *u.map);
        ir_value *it = scalar_init(ctx, g, b->inputs[0], IR_DT_INT64, u.iter, "unroll_iter");
        if (!it)
            goto oom;
        u.map[b->inputs[0]->id] = it;
        u.map[b->inputs[1]->id] = truth;
        for (int s = 0; s < ns; s++)
            u.map[b->inputs[2 + s]->id] = carried[s];
        if (!copy_body(&u))
            goto oom;
        bool bad = false;
        for (int s = 0; s < ns; s++)
            carried[s] = copy_value(&u, b->outputs[1 + s], &bad);
        for (int k = 0; k < nk; k++)
            items[u.iter * nk + k] = copy_value(&u, b->outputs[1 + ns + k], &bad);
        if (bad)
            goto oom;
    }
    ir_graph_remove_node(g, n);
    for (int s = 0; s < ns; s++) {
        ir_node *id = n->out[s] ? produce(ctx, g, n, "Identity", 1, n->out[s]) : NULL;
        if (n->out[s] && !id)
            goto oom;
        if (id)
            id->in[0] = carried[s];
    }
    for (int k = 0; k < nk; k++) {
        ir_value *y = n->out[ns + k];
        if (!y)
            continue;
        ir_node *cat = produce(ctx, g, n, "Concat", (int)trip, y);
        ir_attr *axis = cat ? ir_node_add_attr(ctx, cat, "axis", IR_ATTR_INT) : NULL;
        if (!axis)
            goto oom;
        axis->i = 0;
        for (int64_t i = 0; i < trip; i++)
            if (!(cat->in[i] = unsqueeze0(ctx, g, n, items[i * nk + k], opset)))
                goto oom;
    }
    return true;
oom:
    *st = OCT_EINTERNAL;
    return false;
}

static oct_status unroll_loops(ir_graph *g, oct_ctx *ctx, int64_t opset)
{
    oct_status st = OCT_OK;
    bool changed = false;
    size_t n_before = g->n_nodes; /* unrolled nodes are appended */
    for (size_t k = 0; k < n_before && st == OCT_OK; k++) {
        ir_node *n = g->nodes[k];
        ops_control c;
        if (n->op != IR_OP_LOOP)
            continue;
        if ((st = ops_control_check(ctx, n, opset, &c)) != OCT_OK)
            break; /* a malformed Loop: the same error the lowering would give */
        const ir_value *m = n->in[0], *cond = n->in[1];
        int64_t trip = ops_loop_static_trip(m ? m->init : NULL, cond ? cond->init : NULL,
                                            cond != NULL, &c);
        if (trip < 1 || !needs_unroll(c.body) || !can_unroll(g, c.body) ||
            (uint64_t)trip * c.body->n_nodes > UNROLL_MAX_NODES)
            continue;
        if (unroll_one(ctx, g, n, &c, trip, opset, &st)) {
            changed = true;
            k--; /* the node list moved down by one */
            n_before--;
        }
    }
    if (!changed || st != OCT_OK)
        return st;
    return splice_settle(g, ctx);
}

oct_status pass_unroll_loop(ir_model *m, oct_ctx *ctx)
{
    ir_model *saved = ctx->model; /* what ir_verify and the passes read */
    ctx->model = m;
    oct_status st = unroll_loops(m->graph, ctx, ir_model_opset(m, ""));
    ctx->model = saved;
    return st;
}
