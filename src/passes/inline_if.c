/*
 * inline_if.c: If nodes of the main graph whose condition is a constant
 * are replaced by the nodes of the branch that condition takes.  Exporters
 * guard reshapes with If on a shape test (silero-vad's "is the batch 1?"
 * around each Squeeze and LSTM); once the input shapes are bound, shape
 * inference and folding make that test a constant, and the If is then
 * nothing but its taken branch.  The compiler needs that: the two branches
 * often give outputs of different shapes, and compiled code has static
 * shapes.
 *
 * The branch's nodes move into the main graph under their own value names
 * (ONNX names are unique across a graph and its subgraphs; a clash leaves
 * the If alone), its initializers become initializers of the main graph,
 * its outer-scope reads become plain reads, and an Identity per output
 * gives the If's output value (fold bypasses it).  If nodes nested in the
 * branch become main-graph nodes and are considered in the next round:
 * each round re-marks the captured values, restores topological order
 * (ir_verify), and runs shape inference and folding again, so the nested
 * condition can fold in turn.  If nodes inside Loop and Scan bodies stay.
 */
#include <string.h>

#include "passes/passes.h"
#include "passes/splice.h"

/* The value of constant condition c (a one-element tensor), or -1. */
static int const_cond(const ir_value *c)
{
    const ir_tensor *t = c ? c->init : NULL;
    if (!t || t->nelems < 1 || !t->data)
        return -1;
    uint64_t bytes = t->nbytes / t->nelems;
    const uint8_t *p = t->data;
    for (uint64_t b = 0; b < bytes; b++)
        if (p[b])
            return 1;
    return 0;
}

/* Whether branch b can move into g: every value it defines has a name
 * unused in g, and every value it reads from outside is defined in g. */
static bool can_inline(const ir_graph *g, const ir_graph *b)
{
    if (b->n_inputs)
        return false;
    for (size_t v = 0; v < b->n_values; v++) {
        const ir_value *x = b->values[v];
        if (!x->name[0]) /* an omitted optional input or output */
            continue;
        const ir_value *outer = ir_graph_find(g, x->name);
        if (ir_value_defined_here(x) ? outer != NULL
                                     : !outer || !ir_value_defined_here(outer))
            return false;
    }
    return true;
}

/* The main-graph value standing for branch value x (map by branch id). */
static ir_value *map_value(oct_ctx *ctx, ir_graph *g, ir_value **map, ir_value *x)
{
    if (!x)
        return NULL;
    if (map[x->id])
        return map[x->id];
    ir_value *v;
    if (x->init) {
        v = ir_graph_add_init(ctx, g, x->name, x->init);
    } else if (ir_value_defined_here(x)) {
        v = ir_graph_value(ctx, g, x->name);
        if (v) {
            v->has_type = x->has_type;
            v->type = x->type;
        }
    } else {
        v = ir_graph_find(g, x->name);
    }
    map[x->id] = v;
    return v;
}

/* Replaces If node n (condition `take`) by its branch; false if it cannot
 * (can_inline) or on allocation failure (*st set then). */
static bool inline_one(oct_ctx *ctx, ir_graph *g, ir_node *n, int take, oct_status *st)
{
    const ir_graph *b = ir_node_subgraph(n, take ? "then_branch" : "else_branch");
    if (!b || b->n_outputs != (size_t)n->n_out || !can_inline(g, b))
        return false;
    ir_value **map = ir_alloc_array(ctx, b->n_values + 1, sizeof *map);
    if (!map) {
        *st = OCT_EINTERNAL;
        return false;
    }
    for (size_t k = 0; k < b->n_nodes; k++) {
        const ir_node *bn = b->nodes[k];
        ir_node *pn = ir_graph_add_node(ctx, g, bn->op_type, bn->domain, bn->name,
                                        bn->n_in, bn->n_out);
        if (!pn)
            goto oom;
        pn->attrs = bn->attrs;
        pn->n_attr = bn->n_attr;
        pn->doc = bn->doc;
        for (int i = 0; i < bn->n_in; i++)
            if (bn->in[i] && !(pn->in[i] = map_value(ctx, g, map, bn->in[i])))
                goto oom;
        for (int i = 0; i < bn->n_out; i++) {
            ir_value *v = map_value(ctx, g, map, bn->out[i]);
            if (bn->out[i] && !v)
                goto oom;
            if (v)
                ir_node_set_output(pn, i, v);
        }
    }
    ir_graph_remove_node(g, n);
    for (int i = 0; i < n->n_out; i++) {
        ir_value *y = n->out[i];
        if (!y)
            continue;
        ir_node *id = ir_graph_add_node(ctx, g, "Identity", "", n->name, 1, 1);
        if (!id || !(id->in[0] = map_value(ctx, g, map, b->outputs[i])))
            goto oom;
        if (!(y->flags & IR_VAL_OUTPUT)) { /* the taken branch decides it */
            y->has_type = false;
            memset(&y->type, 0, sizeof y->type);
            y->type.rank = -1;
        }
        ir_node_set_output(id, 0, y);
    }
    return true;
oom:
    *st = OCT_EINTERNAL;
    return false;
}

static oct_status inline_ifs(ir_graph *g, oct_ctx *ctx)
{
    oct_status st = OCT_OK;
    bool changed = true;
    while (changed && st == OCT_OK) {
        changed = false;
        /* the nodes inlined this round are appended: walk the ones before */
        size_t n_before = g->n_nodes;
        for (size_t k = 0; k < n_before && st == OCT_OK; k++) {
            ir_node *n = g->nodes[k];
            int take = n->op == IR_OP_IF && n->n_in > 0 ? const_cond(n->in[0]) : -1;
            if (take >= 0 && inline_one(ctx, g, n, take, &st)) {
                changed = true;
                k--; /* the node list moved down by one */
                n_before--;
            }
        }
        if (!changed || st != OCT_OK)
            break;
        st = splice_settle(g, ctx);
    }
    return st;
}

oct_status pass_inline_if(ir_model *m, oct_ctx *ctx)
{
    ir_model *saved = ctx->model; /* what ir_verify and the passes read */
    ctx->model = m;
    oct_status st = inline_ifs(m->graph, ctx);
    ctx->model = saved;
    return st;
}
