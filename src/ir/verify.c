/*
 * verify.c: the IR verifier.  ir_verify() checks the structural invariants
 * every pass may rely on, reports EVERY violation it finds as a diagnostic
 * (not just the first), and, when the graph is acyclic, reorders g->nodes
 * into a stable topological order.
 *
 * Invariants checked (errors unless marked otherwise):
 *   values   every value referenced by the graph belongs to it; a tensor type
 *            has a known element type (or UNDEFINED), rank >= -1 and dims
 *            >= -1; opaque types (sequence, map, ...) are not looked into.
 *   defs     each value has exactly one producer: a node output, or a graph
 *            input and/or an initializer (a graph input that is also an
 *            initializer is legal: IR versions < 4 required it).  Anything
 *            else is "duplicate definition of 'x'".
 *   inputs   every non-empty node input is defined by a graph input, an
 *            initializer or some node's output (in any order: ONNX allows
 *            unsorted graphs); graph outputs are defined the same way.
 *   order    the graph is acyclic (Kahn's algorithm; a node with subgraphs
 *            also depends on the producers of the values they read from
 *            this graph by name); a cycle is reported on
 *            one node that lies on it, with the cycle spelled out.  Then
 *            g->nodes is sorted topologically; among ready nodes the one
 *            earliest in the current order goes first, so an already sorted
 *            graph keeps its order exactly.  Node ids are renumbered to the
 *            new positions.
 *   arity    for ops in the op table (node->op != IR_OP_UNKNOWN): input and
 *            output counts within the table's min/max, required inputs
 *            (index < min_in) not empty.
 *   attrs    names non-empty and unique per node, a valid attribute type;
 *            for known ops the type the table declares.  An attribute the
 *            table does not list is only a WARNING ("unknown attribute"):
 *            ONNX has opset-specific attributes.
 *   subgraphs  the decoded graph attributes (If, Loop, Scan bodies) are
 *            verified the same way, recursively; a value a subgraph reads
 *            without defining must be defined by an enclosing graph
 *            (ir_scope_find), else "not defined".
 *   tensors  initializers and tensor attributes: valid dtype, dims >= 0,
 *            element count and byte size equal to what dtype and shape need
 *            (computed with overflow-checked arithmetic: ir_shape_elems,
 *            ir_dtype_bytes), data present when non-empty.
 *
 * Returns OCT_OK, OCT_EINPUT when any error was reported, or OCT_EINTERNAL
 * if the verifier could not allocate its scratch memory.  Warnings alone do
 * not fail verification.  Nothing is modified except the node order and ids,
 * and only when no cycle was found.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

/* How a value is defined, besides by a node (bit set per value id). */
enum { DEF_INPUT = 1u << 0, DEF_INIT = 1u << 1 };

typedef struct verifier {
    oct_ctx *ctx;
    ir_graph *g;
    size_t n_errors;
    uint8_t *def_kind;   /* per value id: DEF_* bits */
    uint32_t *def_node;  /* per value id: 1 + position of producing node, 0 none */
    const ir_scope *up;  /* enclosing graphs of a subgraph; NULL: the model's */
    /* during topo_sort: the implicit inputs of nodes with subgraphs,
     * xdep[xfirst[k] .. xfirst[k+1]) producer positions for node k (-1:
     * none) */
    const long *xdep;
    const uint32_t *xfirst;
} verifier;

static const char *node_label(const ir_node *n, char *buf, size_t size)
{
    return ir_node_label(n, buf, size);
}

/* True if v is one of g's values (the id indexes g->values and maps back). */
static bool value_in_graph(const ir_graph *g, const ir_value *v)
{
    return v->id < g->n_values && g->values[v->id] == v;
}

/* Records an error about a tensor or value (not a node): `tensor` names it,
 * `node` is the node owning it (NULL for graph-level entities). */
static void report(verifier *vf, const ir_node *node, const char *tensor,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report(verifier *vf, const ir_node *node, const char *tensor,
                   const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vf->n_errors++;
    oct_diagf(vf->ctx, OCT_SEV_ERROR, OCT_EINPUT, node, 0, -1, tensor, "%s",
              msg);
}

/* ---- tensors and types -------------------------------------------------- */

/* Checks a constant tensor's dtype, shape and size.  `what` names its role
 * ("initializer", "attribute 'value' tensor"); `node` may be NULL. */
static void check_tensor(verifier *vf, const ir_tensor *t, const char *what,
                         const ir_node *node)
{
    const char *name = t->name ? t->name : "";
    size_t before = vf->n_errors;
    if (!ir_dtype_valid(t->dtype))
        report(vf, node, name, "%s '%s' has invalid data type %d", what, name,
               (int)t->dtype);
    if (t->rank < 0 || (t->rank > 0 && !t->dims)) {
        report(vf, node, name, "%s '%s' has invalid rank %d", what, name,
               t->rank);
        return;
    }
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0)
            report(vf, node, name, "%s '%s' dimension %d is %lld (must be "
                   ">= 0)", what, name, i, (long long)t->dims[i]);
    if (vf->n_errors != before)
        return;
    uint64_t elems, bytes;
    if (!ir_shape_elems(t->rank, t->dims, &elems) ||
        !ir_dtype_bytes(t->dtype, elems, &bytes)) {
        report(vf, node, name, "%s '%s': size of its shape overflows 64 bits",
               what, name);
        return;
    }
    if (t->nelems != elems)
        report(vf, node, name, "%s '%s' holds %llu elements, its shape needs "
               "%llu", what, name, (unsigned long long)t->nelems,
               (unsigned long long)elems);
    else if (t->nbytes != bytes)
        report(vf, node, name, "%s '%s': data is %llu bytes, %s with %llu "
               "elements needs %llu", what, name,
               (unsigned long long)t->nbytes, ir_dtype_name(t->dtype),
               (unsigned long long)elems, (unsigned long long)bytes);
    else if (bytes > 0 && !t->data)
        report(vf, node, name, "%s '%s' has no data", what, name);
}

/* Checks the declared type of a value (graph input/output, value_info or an
 * intermediate whose type inference filled in). */
static void check_type(verifier *vf, const ir_value *v)
{
    const ir_type *ty = &v->type;
    if (!v->has_type || ty->opaque.len > 0)
        return;
    if ((int)ty->dtype < 0 || (int)ty->dtype >= IR_DT_COUNT)
        report(vf, NULL, v->name, "value '%s' has invalid element type %d",
               v->name, (int)ty->dtype);
    if (ty->rank < -1 || (ty->rank > 0 && !ty->dims)) {
        report(vf, NULL, v->name, "value '%s' has invalid rank %d", v->name,
               ty->rank);
        return;
    }
    for (int i = 0; i < ty->rank; i++)
        if (ty->dims[i].value < -1)
            report(vf, NULL, v->name,
                   "value '%s' dimension %d is %lld (must be >= -1)", v->name,
                   i, (long long)ty->dims[i].value);
}

/* ---- definitions ---------------------------------------------------------- */

/* Records the graph inputs and initializers, reporting duplicates. */
static void collect_graph_defs(verifier *vf)
{
    ir_graph *g = vf->g;
    for (size_t i = 0; i < g->n_inputs; i++) {
        ir_value *v = g->inputs[i];
        if (!v || !value_in_graph(g, v)) {
            report(vf, NULL, v ? v->name : NULL,
                   "graph input %d is not a value of the graph", (int)i);
            continue;
        }
        if (vf->def_kind[v->id] & DEF_INPUT)
            report(vf, NULL, v->name, "duplicate definition of '%s': listed "
                   "twice as a graph input", v->name);
        vf->def_kind[v->id] |= DEF_INPUT;
    }
    for (size_t i = 0; i < g->n_inits; i++) {
        ir_value *v = g->inits[i];
        if (!v || !value_in_graph(g, v)) {
            report(vf, NULL, v ? v->name : NULL,
                   "initializer %d is not a value of the graph", (int)i);
            continue;
        }
        if (vf->def_kind[v->id] & DEF_INIT)
            report(vf, NULL, v->name, "duplicate definition of '%s': two "
                   "initializers", v->name);
        vf->def_kind[v->id] |= DEF_INIT;
        if (!v->init)
            report(vf, NULL, v->name, "initializer '%s' has no tensor",
                   v->name);
        else
            check_tensor(vf, v->init, "initializer", NULL);
    }
}

/* Records node outputs as definitions, reporting a value defined twice. */
static void collect_node_defs(verifier *vf)
{
    ir_graph *g = vf->g;
    char a[64];
    for (size_t k = 0; k < g->n_nodes; k++) {
        ir_node *n = g->nodes[k];
        for (int i = 0; i < n->n_out; i++) {
            ir_value *v = n->out[i];
            if (!v)
                continue; /* optional output not produced */
            if (!value_in_graph(g, v)) {
                vf->n_errors++;
                oct_output_error(vf->ctx, OCT_EINPUT, n, i,
                                 "output is not a value of the graph");
                continue;
            }
            if (vf->def_kind[v->id]) {
                vf->n_errors++;
                oct_output_error(vf->ctx, OCT_EINPUT, n, i,
                                 "duplicate definition of '%s': produced by "
                                 "this node and also a graph %s",
                                 v->name,
                                 vf->def_kind[v->id] & DEF_INIT ? "initializer"
                                                                : "input");
            } else if (vf->def_node[v->id]) {
                const ir_node *first = g->nodes[vf->def_node[v->id] - 1];
                vf->n_errors++;
                oct_output_error(vf->ctx, OCT_EINPUT, n, i,
                                 "duplicate definition of '%s': also produced "
                                 "by node '%s'",
                                 v->name, node_label(first, a, sizeof a));
            } else {
                vf->def_node[v->id] = (uint32_t)k + 1;
            }
        }
    }
}

static bool is_defined(const verifier *vf, const ir_value *v)
{
    return vf->def_kind[v->id] || vf->def_node[v->id] ||
           (vf->up && ir_scope_find(vf->up, v->name));
}

/* Every node input and graph output must be defined somewhere. */
static void check_uses(verifier *vf)
{
    ir_graph *g = vf->g;
    for (size_t k = 0; k < g->n_nodes; k++) {
        ir_node *n = g->nodes[k];
        for (int i = 0; i < n->n_in; i++) {
            ir_value *v = n->in[i];
            if (!v)
                continue; /* optional input omitted */
            if (!value_in_graph(g, v)) {
                vf->n_errors++;
                oct_input_error(vf->ctx, OCT_EINPUT, n, i,
                                "input is not a value of the graph");
            } else if (!is_defined(vf, v)) {
                vf->n_errors++;
                oct_input_error(vf->ctx, OCT_EINPUT, n, i,
                                "'%s' is not defined (no graph input, "
                                "initializer or node output has that name)",
                                v->name);
            }
        }
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        ir_value *v = g->outputs[i];
        if (!v || !value_in_graph(g, v))
            report(vf, NULL, v ? v->name : NULL,
                   "graph output %d is not a value of the graph", (int)i);
        else if (!is_defined(vf, v))
            report(vf, NULL, v->name, "graph output '%s' is not defined (no "
                   "node, graph input or initializer produces it)", v->name);
    }
}

/* ---- per-node checks ------------------------------------------------------ */

static void check_arity(verifier *vf, const ir_node *n)
{
    const ir_op_info *info = ir_op_info_of(n->op);
    if (n->n_in < info->min_in || (info->max_in >= 0 && n->n_in > info->max_in)) {
        vf->n_errors++;
        oct_node_error(vf->ctx, OCT_EINPUT, n,
                       "%d inputs, but %s takes %d to %d%s", n->n_in,
                       info->name, info->min_in,
                       info->max_in < 0 ? info->min_in : info->max_in,
                       info->max_in < 0 ? " or more" : "");
    }
    if (n->n_out < info->min_out ||
        (info->max_out >= 0 && n->n_out > info->max_out)) {
        vf->n_errors++;
        oct_node_error(vf->ctx, OCT_EINPUT, n,
                       "%d outputs, but %s produces %d to %d%s", n->n_out,
                       info->name, info->min_out,
                       info->max_out < 0 ? info->min_out : info->max_out,
                       info->max_out < 0 ? " or more" : "");
    }
    for (int i = 0; i < n->n_in && i < info->min_in; i++)
        if (!n->in[i]) {
            vf->n_errors++;
            oct_diagf(vf->ctx, OCT_SEV_ERROR, OCT_EINPUT, n, 0, i, NULL,
                      "required input %d is empty", i);
        }
}

static void check_attrs(verifier *vf, const ir_node *n)
{
    oct_ctx *ctx = vf->ctx;
    for (int k = 0; k < n->n_attr; k++) {
        const ir_attr *a = &n->attrs[k];
        const char *name = a->name ? a->name : "";
        if (!*name) {
            vf->n_errors++;
            oct_node_error(ctx, OCT_EINPUT, n, "attribute %d has an empty name",
                           k);
            continue;
        }
        bool dup = false;
        for (int j = 0; j < k && !dup; j++)
            dup = n->attrs[j].name && strcmp(n->attrs[j].name, name) == 0;
        if (dup) {
            vf->n_errors++;
            oct_node_error(ctx, OCT_EINPUT, n, "duplicate attribute '%s'", name);
            continue;
        }
        if (a->type < IR_ATTR_FLOAT || a->type > IR_ATTR_TYPE_PROTOS) {
            vf->n_errors++;
            oct_node_error(ctx, OCT_EINPUT, n,
                           "attribute '%s' has invalid type %d", name,
                           (int)a->type);
            continue;
        }
        if (n->op != IR_OP_UNKNOWN) {
            ir_attr_type want = ir_op_attr_type(n->op, name);
            if (want == IR_ATTR_UNDEFINED) {
                oct_warning(ctx, n, "unknown attribute '%s' (%s)", name,
                            ir_attr_type_name(a->type));
            } else if (want != a->type) {
                vf->n_errors++;
                oct_node_error(ctx, OCT_EINPUT, n,
                               "attribute '%s' has type %s, expected %s", name,
                               ir_attr_type_name(a->type),
                               ir_attr_type_name(want));
                continue;
            }
        }
        char what[160];
        snprintf(what, sizeof what, "attribute '%s' tensor", name);
        if (a->type == IR_ATTR_TENSOR) {
            if (a->t)
                check_tensor(vf, a->t, what, n);
            else {
                vf->n_errors++;
                oct_node_error(ctx, OCT_EINPUT, n,
                               "attribute '%s' has no tensor", name);
            }
        } else if (a->type == IR_ATTR_TENSORS) {
            for (size_t i = 0; i < a->n; i++)
                if (a->tensors && a->tensors[i])
                    check_tensor(vf, a->tensors[i], what, n);
        }
    }
}

/* ---- topological order ---------------------------------------------------- */

/* Min-heap of node positions: the ready node earliest in the current order
 * comes out first, which makes the sort stable. */
static void heap_push(uint32_t *heap, size_t *len, uint32_t x)
{
    size_t i = (*len)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap[parent] <= x)
            break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = x;
}

static uint32_t heap_pop(uint32_t *heap, size_t *len)
{
    uint32_t top = heap[0], x = heap[--*len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *len)
            break;
        if (c + 1 < *len && heap[c + 1] < heap[c])
            c++;
        if (x <= heap[c])
            break;
        heap[i] = heap[c];
        i = c;
    }
    if (*len)
        heap[i] = x;
    return top;
}

/* Position of the producer of n's input i, or -1 if a graph input,
 * initializer, empty or undefined. */
static long producer_pos(const verifier *vf, const ir_node *n, int i)
{
    const ir_value *v = n->in[i];
    if (!v || !value_in_graph(vf->g, v))
        return -1;
    return (long)vf->def_node[v->id] - 1;
}

/* Reports one cycle among the nodes not emitted (indeg > 0).  Every such
 * node has an input whose producer is also not emitted, so walking back
 * through first such inputs must revisit a node: that node lies on a cycle. */
/* A producer of node k's inputs (explicit, or implicit through its
 * subgraphs) that was not emitted, or -1. */
static long pending_pred(const verifier *vf, const uint32_t *indeg, size_t k)
{
    const ir_node *node = vf->g->nodes[k];
    for (int i = 0; i < node->n_in; i++) {
        long p = producer_pos(vf, node, i);
        if (p >= 0 && indeg[p] > 0)
            return p;
    }
    for (uint32_t e = vf->xfirst[k]; e < vf->xfirst[k + 1]; e++)
        if (vf->xdep[e] >= 0 && indeg[vf->xdep[e]] > 0)
            return vf->xdep[e];
    return -1;
}

static void report_cycle(verifier *vf, const uint32_t *indeg, uint32_t *mark)
{
    ir_graph *g = vf->g;
    size_t n = g->n_nodes, start = 0;
    while (start < n && indeg[start] == 0)
        start++;
    OCT_ASSERT(start < n);
    memset(mark, 0, n * sizeof *mark);
    size_t cur = start;
    while (!mark[cur]) {
        mark[cur] = 1;
        long next = pending_pred(vf, indeg, cur);
        OCT_ASSERT(next >= 0);
        cur = (size_t)next;
    }
    /* cur is on the cycle: walk it once more, collecting names backwards. */
    enum { MAX_SHOWN = 8 };
    const ir_node *ring[MAX_SHOWN];
    size_t len = 0, at = cur;
    do {
        if (len < MAX_SHOWN)
            ring[len] = g->nodes[at];
        len++;
        at = (size_t)pending_pred(vf, indeg, at);
    } while (at != cur && len <= n);
    /* ring[k + 1] feeds ring[k] and ring[0] feeds ring[len - 1]: in data
     * flow order the cycle is ring[0] -> ring[len-1] -> ... -> ring[1]. */
    char text[512], lab[64];
    size_t off = 0, shown = len < MAX_SHOWN ? len : MAX_SHOWN;
    int w = snprintf(text, sizeof text, "'%s'%s",
                     node_label(ring[0], lab, sizeof lab),
                     len > shown ? " -> ..." : "");
    off = w > 0 && (size_t)w < sizeof text ? (size_t)w : 0;
    for (size_t k = shown; k-- > 1;) {
        w = snprintf(text + off, sizeof text - off, " -> '%s'",
                     node_label(ring[k], lab, sizeof lab));
        if (w > 0 && off + (size_t)w < sizeof text)
            off += (size_t)w;
    }
    snprintf(text + off, sizeof text - off, " -> '%s'",
             node_label(ring[0], lab, sizeof lab));
    vf->n_errors++;
    oct_node_error(vf->ctx, OCT_EINPUT, g->nodes[cur],
                   "the graph has a cycle through this node: %s", text);
}

/* The producers (positions in g) of the values of g that subgraph sg (and
 * the subgraphs below it) read by name: the implicit inputs of the node
 * that holds sg, which must run after them.  Writes up to cap positions
 * to buf (NULL: count only) from index cnt; returns the new count. */
static size_t outer_deps(const verifier *vf, const ir_graph *sg, long *buf,
                         size_t cnt, size_t cap)
{
    for (size_t k = 0; k < sg->n_nodes; k++) {
        const ir_node *n = sg->nodes[k];
        for (int i = 0; i <= n->n_in; i++) {
            const ir_value *v = i < n->n_in ? n->in[i] : NULL;
            if (!v || ir_value_defined_here(v))
                continue;
            const ir_value *o = ir_graph_find(vf->g, v->name);
            if (o && value_in_graph(vf->g, o) && vf->def_node[o->id]) {
                if (buf && cnt < cap)
                    buf[cnt] = (long)vf->def_node[o->id] - 1;
                cnt++;
            }
        }
        for (int a = 0; a < n->n_attr; a++) {
            const ir_attr *at = &n->attrs[a];
            if (at->type == IR_ATTR_GRAPH && at->graph)
                cnt = outer_deps(vf, at->graph, buf, cnt, cap);
            for (size_t j = 0; at->type == IR_ATTR_GRAPHS && at->graphs && j < at->n; j++)
                if (at->graphs[j])
                    cnt = outer_deps(vf, at->graphs[j], buf, cnt, cap);
        }
    }
    for (size_t i = 0; i < sg->n_outputs; i++) {
        const ir_value *v = sg->outputs[i];
        if (!v || ir_value_defined_here(v))
            continue;
        const ir_value *o = ir_graph_find(vf->g, v->name);
        if (o && value_in_graph(vf->g, o) && vf->def_node[o->id]) {
            if (buf && cnt < cap)
                buf[cnt] = (long)vf->def_node[o->id] - 1;
            cnt++;
        }
    }
    return cnt;
}

/* outer_deps over every subgraph attribute of n. */
static size_t node_outer_deps(const verifier *vf, const ir_node *n, long *buf,
                              size_t cnt, size_t cap)
{
    for (int a = 0; a < n->n_attr; a++) {
        const ir_attr *at = &n->attrs[a];
        if (at->type == IR_ATTR_GRAPH && at->graph)
            cnt = outer_deps(vf, at->graph, buf, cnt, cap);
        for (size_t j = 0; at->type == IR_ATTR_GRAPHS && at->graphs && j < at->n; j++)
            if (at->graphs[j])
                cnt = outer_deps(vf, at->graphs[j], buf, cnt, cap);
    }
    return cnt;
}

/* Kahn's algorithm.  On success reorders g->nodes; on a cycle reports it
 * and leaves the order alone.  Returns false only on allocation failure.
 * A node with subgraphs also waits for the producers of the outer values
 * its subgraphs read (outer_deps). */
static bool topo_sort(verifier *vf)
{
    ir_graph *g = vf->g;
    size_t n = g->n_nodes;
    if (n == 0)
        return true;
    oct_ctx *ctx = vf->ctx;
    /* the implicit edges: xdep[xfirst[k] .. xfirst[k+1]) for node k */
    size_t n_x = 0;
    for (size_t k = 0; k < n; k++)
        n_x = node_outer_deps(vf, g->nodes[k], NULL, n_x, 0);
    size_t sz_x = (n_x + 1) * sizeof(long);
    long *xdep = oct_malloc(ctx, sz_x);
    uint32_t *xfirst = oct_malloc(ctx, (n + 1) * sizeof(uint32_t));
    if (!xdep || !xfirst) {
        oct_free(ctx, xdep, xdep ? sz_x : 0);
        oct_free(ctx, xfirst, xfirst ? (n + 1) * sizeof(uint32_t) : 0);
        return false;
    }
    xfirst[0] = 0;
    for (size_t k = 0, c = 0; k < n; k++) {
        c = node_outer_deps(vf, g->nodes[k], xdep, c, n_x);
        xfirst[k + 1] = (uint32_t)c;
        for (size_t e = xfirst[k]; e < c; e++)
            if (xdep[e] == (long)k) /* a body reading its own node's output */
                xdep[e] = -1;
    }
    vf->xdep = xdep;
    vf->xfirst = xfirst;
    size_t n_edges = n_x;
    for (size_t k = 0; k < n; k++)
        n_edges += (size_t)g->nodes[k]->n_in;
    /* n < UINT32_MAX (checked by ir_verify) and each node has at most
     * INT_MAX inputs, so these products fit a 64-bit size_t. */
    size_t sz_n = (n + 1) * sizeof(uint32_t);
    size_t sz_e = (n_edges + 1) * sizeof(uint32_t);
    uint32_t *indeg = oct_malloc(ctx, sz_n), *first = oct_malloc(ctx, sz_n);
    uint32_t *heap = oct_malloc(ctx, sz_n), *order = oct_malloc(ctx, sz_n);
    uint32_t *succ = oct_malloc(ctx, sz_e);
    ir_node **sorted = oct_malloc(ctx, n * sizeof *sorted);
    bool ok = indeg && first && heap && order && succ && sorted;
    if (ok) {
        /* successor lists in CSR form: first[p]..first[p+1] */
        memset(indeg, 0, sz_n);
        memset(first, 0, sz_n);
        for (size_t k = 0; k < n; k++) {
            for (int i = 0; i < g->nodes[k]->n_in; i++) {
                long p = producer_pos(vf, g->nodes[k], i);
                if (p >= 0) {
                    first[p + 1]++;
                    indeg[k]++;
                }
            }
            for (uint32_t e = xfirst[k]; e < xfirst[k + 1]; e++)
                if (xdep[e] >= 0) {
                    first[xdep[e] + 1]++;
                    indeg[k]++;
                }
        }
        for (size_t k = 0; k < n; k++)
            first[k + 1] += first[k];
        memcpy(order, first, sz_n); /* order[] doubles as fill cursor */
        for (size_t k = 0; k < n; k++) {
            for (int i = 0; i < g->nodes[k]->n_in; i++) {
                long p = producer_pos(vf, g->nodes[k], i);
                if (p >= 0)
                    succ[order[p]++] = (uint32_t)k;
            }
            for (uint32_t e = xfirst[k]; e < xfirst[k + 1]; e++)
                if (xdep[e] >= 0)
                    succ[order[xdep[e]]++] = (uint32_t)k;
        }
        size_t heap_len = 0, n_sorted = 0;
        for (size_t k = 0; k < n; k++)
            if (indeg[k] == 0)
                heap_push(heap, &heap_len, (uint32_t)k);
        while (heap_len) {
            uint32_t k = heap_pop(heap, &heap_len);
            order[n_sorted++] = k;
            for (uint32_t e = first[k]; e < first[k + 1]; e++)
                if (--indeg[succ[e]] == 0)
                    heap_push(heap, &heap_len, succ[e]);
        }
        if (n_sorted < n) {
            report_cycle(vf, indeg, heap);
        } else {
            for (size_t k = 0; k < n; k++)
                sorted[k] = g->nodes[order[k]];
            for (size_t k = 0; k < n; k++) {
                g->nodes[k] = sorted[k];
                g->nodes[k]->id = (uint32_t)k;
            }
        }
    }
    oct_free(ctx, indeg, sz_n);
    oct_free(ctx, first, sz_n);
    oct_free(ctx, heap, sz_n);
    oct_free(ctx, order, sz_n);
    oct_free(ctx, succ, sz_e);
    oct_free(ctx, sorted, n * sizeof *sorted);
    oct_free(ctx, xdep, sz_x);
    oct_free(ctx, xfirst, (n + 1) * sizeof(uint32_t));
    return ok;
}

/* ---- entry point ---------------------------------------------------------- */

/* Verifies g, whose enclosing graphs are `up` (NULL for the model's graph),
 * then the subgraphs of its nodes; the result as ir_verify's. */
static oct_status verify_graph(oct_ctx *ctx, ir_graph *g, const ir_scope *up)
{
    verifier vf = {.ctx = ctx, .g = g, .up = up};
    if (g->n_nodes >= UINT32_MAX)
        return oct_error(ctx, OCT_EINPUT, "graph has too many nodes");
    size_t nv = g->n_values ? g->n_values : 1;
    vf.def_kind = oct_malloc(ctx, nv);
    vf.def_node = oct_malloc(ctx, nv * sizeof *vf.def_node);
    if (!vf.def_kind || !vf.def_node) {
        oct_free(ctx, vf.def_kind, nv);
        oct_free(ctx, vf.def_node, nv * sizeof *vf.def_node);
        return OCT_EINTERNAL;
    }
    memset(vf.def_kind, 0, nv);
    memset(vf.def_node, 0, nv * sizeof *vf.def_node);

    for (size_t i = 0; i < g->n_values; i++)
        check_type(&vf, g->values[i]);
    collect_graph_defs(&vf);
    collect_node_defs(&vf);
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        if (n->op != IR_OP_UNKNOWN)
            check_arity(&vf, n);
        check_attrs(&vf, n);
    }
    check_uses(&vf);
    bool ok = topo_sort(&vf);

    oct_free(ctx, vf.def_kind, nv);
    oct_free(ctx, vf.def_node, nv * sizeof *vf.def_node);
    if (!ok)
        return OCT_EINTERNAL;
    oct_status st = vf.n_errors ? OCT_EINPUT : OCT_OK;
    ir_scope here = {.g = g, .up = up};
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        for (int a = 0; a < n->n_attr; a++) {
            const ir_attr *at = &n->attrs[a];
            size_t count = at->type == IR_ATTR_GRAPH ? 1
                         : at->type == IR_ATTR_GRAPHS && at->graphs ? at->n : 0;
            for (size_t i = 0; i < count; i++) {
                ir_graph *sg = at->type == IR_ATTR_GRAPH ? at->graph : at->graphs[i];
                if (!sg)
                    continue; /* not decoded: a blob from elsewhere */
                oct_status s = verify_graph(ctx, sg, &here);
                if (s == OCT_EINTERNAL)
                    return s;
                if (s != OCT_OK) /* say whose body the errors above are in */
                    st = oct_node_error(ctx, s, n, "its '%s' graph does not "
                                        "verify (errors above)", at->name);
            }
        }
    }
    return st;
}

oct_status ir_verify(const ir_model *m, oct_ctx *ctx)
{
    if (!m || !m->graph)
        return oct_error(ctx, OCT_EINPUT, "model has no graph");
    return verify_graph(ctx, m->graph, NULL);
}
