/*
 * subgraph.c: scopes of the subgraphs of control-flow nodes (If, Loop,
 * Scan).  A subgraph is an ir_graph of its own (ir_attr.graph); a value it
 * reads but does not define (no producer, initializer or subgraph input) is
 * an outer-scope read, resolved by name in the nearest enclosing graph that
 * defines it, as ONNX's scoping rules say.  The frontend marks every such
 * outer value IR_VAL_CAPTURED so that passes working on the outer graph
 * (dead-code removal, fusions that bypass a value) keep it; the verifier
 * and the interpreter resolve reads through the same ir_scope chain.
 * Recursion follows subgraph nesting, which the frontend bounds before
 * decoding (limits.max_subgraph_depth, wire_scan.c).
 */
#include "ir/ir.h"

bool ir_value_defined_here(const ir_value *v)
{
    return v->producer || v->init || (v->flags & IR_VAL_INPUT);
}

ir_value *ir_scope_find(const ir_scope *s, const char *name)
{
    for (; s; s = s->up) {
        ir_value *v = ir_graph_find(s->g, name);
        if (v && ir_value_defined_here(v))
            return v;
    }
    return NULL;
}

/* Flags, in every graph of the chain from s outwards, the value named
 * `name` that a subgraph below reads. */
static void mark_name(const ir_scope *s, const char *name)
{
    for (; s; s = s->up) {
        ir_value *v = ir_graph_find(s->g, name);
        if (!v)
            continue;
        v->flags |= IR_VAL_CAPTURED;
        if (ir_value_defined_here(v))
            return;
    }
}

static void mark_graph(const ir_scope *outer, ir_graph *sg)
{
    /* the values sg reads without defining, looked up outside it */
    for (size_t k = 0; k < sg->n_nodes; k++) {
        const ir_node *n = sg->nodes[k];
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] && !ir_value_defined_here(n->in[i]))
                mark_name(outer, n->in[i]->name);
    }
    for (size_t i = 0; i < sg->n_outputs; i++)
        if (sg->outputs[i] && !ir_value_defined_here(sg->outputs[i]))
            mark_name(outer, sg->outputs[i]->name);
    ir_scope inner = {.g = sg, .up = outer};
    ir_mark_captures(&inner);
}

void ir_mark_captures(const ir_scope *s)
{
    const ir_graph *g = s->g;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        for (int a = 0; a < n->n_attr; a++) {
            const ir_attr *at = &n->attrs[a];
            if (at->type == IR_ATTR_GRAPH && at->graph)
                mark_graph(s, at->graph);
            else if (at->type == IR_ATTR_GRAPHS && at->graphs)
                for (size_t i = 0; i < at->n; i++)
                    if (at->graphs[i])
                        mark_graph(s, at->graphs[i]);
        }
    }
}

const ir_graph *ir_node_subgraph(const ir_node *n, const char *name)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_GRAPH ? a->graph : NULL;
}
