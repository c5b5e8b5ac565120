/*
 * shape_infer.c: the shape-inference pass.  Walks the nodes in topological
 * order and, for each, evaluates the op's shape rule (src/ref) on the
 * inputs' current types and on the inputs whose values are known
 * (initializers, folded constants), then writes the result into the output
 * values' ir_type.  Symbolic dims are kept where nothing better is known;
 * they become static when the graph inputs are bound first (from
 * --input-shape or from the tensors that will be fed).  The subgraphs of
 * If/Loop/Scan nodes are inferred before their node (whose rule reads the
 * bodies' output types): values they read from outside take the outer
 * types, Loop and Scan body inputs declared without a shape the node's.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "ops/ops.h"

/* Writes one inferred shape s into value v, checking it against what v
 * declares.  Returns OCT_EINPUT (diagnostic on output `idx` of n) on a
 * conflict. */
static oct_status merge_type(oct_ctx *ctx, ir_node *n, int idx, const ops_shape *s)
{
    ir_value *v = n->out[idx];
    ir_type *t = &v->type;
    if (t->opaque.len)
        return OCT_OK; /* a non-tensor type: nothing to merge */
    bool declared = v->has_type;
    if (declared && ir_dtype_valid(t->dtype) && ir_dtype_valid(s->dtype) &&
        t->dtype != s->dtype)
        return oct_output_error(ctx, OCT_EINPUT, n, idx,
                                "inferred type %s but '%s' is declared %s",
                                ir_dtype_name(s->dtype), v->name,
                                ir_dtype_name(t->dtype));
    if (declared && t->rank >= 0 && s->rank >= 0 && t->rank != s->rank)
        return oct_output_error(ctx, OCT_EINPUT, n, idx,
                                "inferred rank %d but '%s' is declared with "
                                "rank %d", s->rank, v->name, t->rank);
    if (declared && t->rank >= 0 && s->rank == t->rank && t->dims)
        for (int d = 0; d < s->rank; d++)
            if (s->dims[d] >= 0 && t->dims[d].value >= 0 &&
                s->dims[d] != t->dims[d].value)
                return oct_output_error(ctx, OCT_EINPUT, n, idx,
                                        "inferred dim %d = %lld but '%s' is "
                                        "declared with %lld", d,
                                        (long long)s->dims[d], v->name,
                                        (long long)t->dims[d].value);
    if (ir_dtype_valid(s->dtype))
        t->dtype = s->dtype;
    t->has_elem_type = t->has_elem_type || ir_dtype_valid(t->dtype);
    if (s->rank >= 0) {
        if (t->rank != s->rank || !t->dims) {
            ir_dim *dims = ir_alloc_array(ctx, (size_t)(s->rank ? s->rank : 1),
                                          sizeof *dims);
            if (!dims)
                return OCT_EINTERNAL;
            for (int d = 0; d < s->rank; d++)
                dims[d].value = -1;
            t->dims = dims;
            t->rank = s->rank;
        }
        for (int d = 0; d < s->rank; d++)
            if (s->dims[d] >= 0) {
                t->dims[d].value = s->dims[d];
                t->dims[d].param = NULL;
            }
    }
    v->has_type = v->has_type || ir_dtype_valid(t->dtype) || t->rank >= 0;
    return OCT_OK;
}

oct_status pass_infer_node(oct_ctx *ctx, ir_node *n, int64_t opset)
{
    if (n->op == IR_OP_UNKNOWN)
        return OCT_OK;
    if (n->n_in > OPS_MAX_IO || n->n_out > OPS_MAX_IO)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, n,
                              "more than %d inputs or outputs", OPS_MAX_IO);
    ops_shape in[OPS_MAX_IO], out[OPS_MAX_IO];
    const ir_tensor *in_const[OPS_MAX_IO];
    for (int i = 0; i < n->n_in; i++) {
        const ir_value *v = n->in[i];
        in_const[i] = v ? v->init : NULL;
        if (v && v->init)
            ops_shape_of(v->init, &in[i]);
        else if (v)
            ops_shape_from_type(&v->type, v->has_type, &in[i]);
        else {
            memset(&in[i], 0, sizeof in[i]);
            in[i].rank = -1;
        }
    }
    for (int i = 0; i < n->n_out; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].rank = -1;
    }
    ops_infer inf = {.ctx = ctx, .node = n, .opset = opset, .n_in = n->n_in,
                     .in = in, .in_const = in_const, .n_out = n->n_out,
                     .out = out};
    size_t errors_before = oct_error_count(ctx);
    oct_status st = ops_shape_rule_of(n->op)(&inf);
    if (st != OCT_OK) {
        if (oct_error_count(ctx) == errors_before)
            oct_node_error(ctx, st, n, "shape inference failed");
        return st;
    }
    for (int i = 0; i < n->n_out; i++) {
        if (!n->out[i])
            continue;
        st = merge_type(ctx, n, i, &out[i]);
        if (st != OCT_OK)
            return st;
    }
    return OCT_OK;
}

/* ---- subgraphs ------------------------------------------------------------ */

/* v, a subgraph input the node feeds from outer value o (a Loop or Scan
 * state, `drop` -1) or from a slice of it without axis `drop` (a Scan
 * input), given o's type when v declares no shape; an outer-scope read
 * (`always`) always takes o's type. */
static oct_status type_from(oct_ctx *ctx, ir_value *v, const ir_value *o, int drop,
                            bool always)
{
    if (!o || !o->has_type || o->type.rank < 0 || !o->type.dims ||
        (!always && v->has_type && v->type.rank >= 0 && v->type.dims))
        return OCT_OK;
    int rank = o->type.rank - (drop >= 0);
    if (rank < 0)
        return OCT_OK;
    ir_dim *dims = ir_alloc_array(ctx, (size_t)(rank ? rank : 1), sizeof *dims);
    if (!dims)
        return OCT_EINTERNAL;
    for (int d = 0, k = 0; d < o->type.rank; d++)
        if (d != drop)
            dims[k++] = o->type.dims[d];
    v->has_type = true;
    v->type.dtype = o->type.dtype;
    v->type.has_elem_type = true;
    v->type.rank = rank;
    v->type.dims = dims;
    return OCT_OK;
}

/* v, a subgraph's read of an outer initializer: typed as it. */
static oct_status type_of_init(oct_ctx *ctx, ir_value *v, const ir_tensor *t)
{
    ir_dim *dims = ir_alloc_array(ctx, (size_t)(t->rank ? t->rank : 1), sizeof *dims);
    if (!dims)
        return OCT_EINTERNAL;
    for (int d = 0; d < t->rank; d++)
        dims[d].value = t->dims[d];
    v->has_type = true;
    v->type.dtype = t->dtype;
    v->type.has_elem_type = true;
    v->type.rank = t->rank;
    v->type.dims = dims;
    return OCT_OK;
}

/* Types the inputs of a Loop or Scan body from the node's inputs. */
static oct_status type_body_inputs(oct_ctx *ctx, const ir_node *n, ir_graph *b, int64_t opset)
{
    ops_control c;
    if (ops_control_check(ctx, n, opset, &c) != OCT_OK) /* the rule reports it */
        return OCT_OK;
    oct_status st = OCT_OK;
    if (n->op == IR_OP_LOOP) {
        for (int i = 0; i < c.n_state && st == OCT_OK; i++)
            st = type_from(ctx, b->inputs[2 + i], n->in[2 + i], -1, false);
        return st;
    }
    if (c.first) /* opset-8 Scan: batch axis first */
        return OCT_OK;
    for (int i = 0; i < c.n_state && st == OCT_OK; i++)
        st = type_from(ctx, b->inputs[i], n->in[i], -1, false);
    const ir_attr *axes = ir_node_attr(n, "scan_input_axes");
    for (int j = 0; j < c.n_scan_in && st == OCT_OK; j++) {
        const ir_value *x = n->in[c.n_state + j];
        int64_t ax = axes && axes->type == IR_ATTR_INTS && (size_t)j < axes->n ? axes->ints[j] : 0;
        if (x && x->has_type && ax < 0)
            ax += x->type.rank;
        if (x && x->has_type && ax >= 0 && ax < x->type.rank)
            st = type_from(ctx, b->inputs[c.n_state + j], x, (int)ax, false);
    }
    return st;
}

static oct_status infer_graph(oct_ctx *ctx, const ir_scope *s, int64_t opset);

/* Infers the values of n's subgraphs (so the If/Loop/Scan rules, which
 * read the bodies' output types, see what the bodies compute): outer
 * values they read take their outer types, body inputs the node's. */
static oct_status infer_subgraphs(oct_ctx *ctx, const ir_scope *s, const ir_node *n,
                                  int64_t opset)
{
    oct_status st = OCT_OK;
    for (int a = 0; a < n->n_attr && st == OCT_OK; a++) {
        ir_graph *b = n->attrs[a].type == IR_ATTR_GRAPH ? n->attrs[a].graph : NULL;
        if (!b)
            continue;
        for (size_t v = 0; v < b->n_values && st == OCT_OK; v++) {
            ir_value *x = b->values[v];
            const ir_value *o = !ir_value_defined_here(x) && x->name[0]
                                    ? ir_scope_find(s, x->name) : NULL;
            if (o && o->init)
                st = type_of_init(ctx, x, o->init);
            else if (o)
                st = type_from(ctx, x, o, -1, true);
        }
        if (st == OCT_OK && (n->op == IR_OP_LOOP || n->op == IR_OP_SCAN))
            st = type_body_inputs(ctx, n, b, opset);
        ir_scope inner = {.g = b, .up = s};
        if (st == OCT_OK)
            st = infer_graph(ctx, &inner, opset);
    }
    return st;
}

static oct_status infer_graph(oct_ctx *ctx, const ir_scope *s, int64_t opset)
{
    oct_status worst = OCT_OK;
    for (size_t i = 0; i < s->g->n_nodes; i++) {
        ir_node *n = s->g->nodes[i];
        oct_status st = ir_node_has_subgraph(n) ? infer_subgraphs(ctx, s, n, opset) : OCT_OK;
        if (st == OCT_OK)
            st = pass_infer_node(ctx, n, opset);
        if (st == OCT_EINTERNAL || st == OCT_EUNSUPPORTED)
            return st;
        if (st != OCT_OK)
            worst = st; /* keep going: report every conflict */
    }
    return worst;
}

oct_status pass_shape_infer(ir_graph *g, oct_ctx *ctx)
{
    oct_status st = ops_report_unsupported(ctx, g);
    if (st != OCT_OK)
        return st;
    int64_t opset = ctx->model ? ir_model_opset(ctx->model, "") : 0;
    ir_scope top = {.g = g, .up = NULL};
    return infer_graph(ctx, &top, opset);
}

oct_status pass_bind_input_type(oct_ctx *ctx, ir_value *v, ir_dtype dtype,
                                int rank, const int64_t *dims)
{
    ir_type *t = &v->type;
    if (v->has_type && ir_dtype_valid(t->dtype) && ir_dtype_valid(dtype) &&
        t->dtype != dtype)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, v->name,
                         "graph input '%s' is declared %s, given %s", v->name,
                         ir_dtype_name(t->dtype), ir_dtype_name(dtype));
    if (v->has_type && t->rank >= 0 && t->rank != rank)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, v->name,
                         "graph input '%s' is declared with rank %d, given "
                         "rank %d", v->name, t->rank, rank);
    if (v->has_type && t->rank >= 0 && t->dims)
        for (int d = 0; d < rank; d++)
            if (t->dims[d].value >= 0 && t->dims[d].value != dims[d])
                return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1,
                                 v->name, "graph input '%s' dim %d is declared "
                                 "%lld, given %lld", v->name, d,
                                 (long long)t->dims[d].value, (long long)dims[d]);
    if (!t->dims || t->rank != rank) {
        ir_dim *nd = ir_alloc_array(ctx, (size_t)(rank ? rank : 1), sizeof *nd);
        if (!nd)
            return OCT_EINTERNAL;
        t->dims = nd;
        t->rank = rank;
    }
    for (int d = 0; d < rank; d++) {
        t->dims[d].value = dims[d];
        t->dims[d].param = NULL;
    }
    if (ir_dtype_valid(dtype))
        t->dtype = dtype;
    t->has_elem_type = ir_dtype_valid(t->dtype);
    v->has_type = true;
    return OCT_OK;
}

oct_status pass_bind_input_shape(oct_ctx *ctx, ir_graph *g, const char *spec)
{
    const char *eq = strrchr(spec, '=');
    if (!eq || eq == spec)
        return oct_error(ctx, OCT_EUSAGE, "--input-shape '%s': expected "
                         "NAME=D1xD2x...", spec);
    char *name = ir_strndup(ctx, spec, (size_t)(eq - spec));
    if (!name)
        return OCT_EINTERNAL;
    ir_value *v = ir_graph_find(g, name);
    bool is_input = false;
    for (size_t i = 0; v && i < g->n_inputs; i++)
        is_input = is_input || (g->inputs[i] == v && !v->init);
    if (!is_input)
        return oct_error(ctx, OCT_EUSAGE, "--input-shape: the model has no "
                         "input named '%s'", name);
    int64_t dims[OPS_MAX_RANK];
    int rank = 0;
    const char *p = eq + 1;
    while (*p) {
        char *end;
        long long d = strtoll(p, &end, 10);
        if (end == p || d < 0 || rank == OPS_MAX_RANK ||
            (*end && *end != 'x' && *end != ','))
            return oct_error(ctx, OCT_EUSAGE, "--input-shape '%s': expected "
                             "NAME=D1xD2x... with at most %d dims", spec,
                             OPS_MAX_RANK);
        dims[rank++] = d;
        p = *end ? end + 1 : end;
    }
    return pass_bind_input_type(ctx, v, v->has_type ? v->type.dtype : IR_DT_UNDEFINED,
                                rank, dims);
}
