/*
 * shape_control.c: the structure and type rules of If, Loop and Scan.
 * ops_control_check validates what both the interpreter (src/ref/control.c)
 * and shape inference rely on: the subgraph attributes are present and
 * decoded, and the node's and the bodies' input and output counts agree
 * with the ONNX signatures.  The static rule takes types from the node's
 * inputs and the bodies' outputs (declared, or inferred by the shape_infer
 * pass, which infers inside subgraphs first); a shape a run decides (the
 * trip count of a Loop whose body can stop early or whose M is not a
 * constant, branches that disagree) stays unknown.  The interpreter
 * does not use this rule: it sizes outputs from what the bodies compute.
 */
#include <string.h>

#include "ops/ops.h"

static oct_status need_graph(oct_ctx *ctx, const ir_node *n, const char *name,
                             const ir_graph **out)
{
    *out = ir_node_subgraph(n, name);
    if (!*out)
        return oct_node_error(ctx, OCT_EINPUT, n, "%s has no '%s' graph attribute",
                              n->op_type, name);
    return OCT_OK;
}

static oct_status need_count(oct_ctx *ctx, const ir_node *n, const char *what,
                             size_t got, size_t want)
{
    if (got != want)
        return oct_node_error(ctx, OCT_EINPUT, n, "%s: %zu, expected %zu", what,
                              got, want);
    return OCT_OK;
}

/* A list attribute of n if present: its length must be `want`. */
static oct_status check_list(oct_ctx *ctx, const ir_node *n, const char *name,
                             size_t want)
{
    const ir_attr *a = ir_node_attr(n, name);
    if (!a)
        return OCT_OK;
    if (a->n != want)
        return oct_node_error(ctx, OCT_EINPUT, n, "attribute '%s' has %zu "
                              "entries, expected %zu", name, a->n, want);
    return OCT_OK;
}

/* Sequence, map and optional values: Octet has tensors only. */
static oct_status tensors_only(oct_ctx *ctx, const ir_node *n, const ir_graph *g)
{
    for (size_t i = 0; i < g->n_inputs; i++)
        if (g->inputs[i]->has_type && g->inputs[i]->type.opaque.len)
            return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "subgraph input "
                                  "'%s' is not a tensor (sequence, map and "
                                  "optional types are not supported)",
                                  g->inputs[i]->name);
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i]->has_type && g->outputs[i]->type.opaque.len)
            return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "subgraph output "
                                  "'%s' is not a tensor (sequence, map and "
                                  "optional types are not supported)",
                                  g->outputs[i]->name);
    return OCT_OK;
}

static oct_status ops_control_structure(oct_ctx *ctx, const ir_node *n,
                                        int64_t opset, ops_control *c);

/* Bodies pass values through fixed arrays of OPS_MAX_IO entries. */
static oct_status io_bound(oct_ctx *ctx, const ir_node *n, const ir_graph *g)
{
    if (g && (g->n_inputs > OPS_MAX_IO || g->n_outputs > OPS_MAX_IO))
        return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "a body with more than "
                              "%d inputs or outputs", OPS_MAX_IO);
    return OCT_OK;
}

oct_status ops_control_check(oct_ctx *ctx, const ir_node *n, int64_t opset,
                             ops_control *c)
{
    oct_status st = ops_control_structure(ctx, n, opset, c);
    if (st == OCT_OK)
        st = io_bound(ctx, n, c->body);
    if (st == OCT_OK)
        st = io_bound(ctx, n, c->other);
    return st;
}

static oct_status ops_control_structure(oct_ctx *ctx, const ir_node *n,
                                        int64_t opset, ops_control *c)
{
    memset(c, 0, sizeof *c);
    oct_status st;
    switch (n->op) {
    case IR_OP_IF:
        if ((st = need_graph(ctx, n, "then_branch", &c->body)) ||
            (st = need_graph(ctx, n, "else_branch", &c->other)) ||
            (st = need_count(ctx, n, "then_branch outputs", c->body->n_outputs,
                             (size_t)n->n_out)) ||
            (st = need_count(ctx, n, "else_branch outputs", c->other->n_outputs,
                             (size_t)n->n_out)) ||
            (st = need_count(ctx, n, "then_branch inputs", c->body->n_inputs, 0)) ||
            (st = need_count(ctx, n, "else_branch inputs", c->other->n_inputs, 0)) ||
            (st = tensors_only(ctx, n, c->body)) ||
            (st = tensors_only(ctx, n, c->other)))
            return st;
        return OCT_OK;
    case IR_OP_LOOP:
        if (n->n_in < 2) /* M and cond are optional but hold their slots */
            return oct_node_error(ctx, OCT_EINPUT, n, "Loop has %d inputs, "
                                  "expected M, cond and the loop-carried "
                                  "values", n->n_in);
        c->n_state = n->n_in - 2;
        if ((st = need_graph(ctx, n, "body", &c->body)) ||
            (st = tensors_only(ctx, n, c->body)) ||
            (st = need_count(ctx, n, "body inputs (iteration, cond, states)",
                             c->body->n_inputs, (size_t)c->n_state + 2)))
            return st;
        if (c->body->n_outputs < (size_t)c->n_state + 1)
            return oct_node_error(ctx, OCT_EINPUT, n, "body has %zu outputs, "
                                  "fewer than cond and %d states",
                                  c->body->n_outputs, c->n_state);
        c->n_scan_out = (int)c->body->n_outputs - 1 - c->n_state;
        return need_count(ctx, n, "outputs (states and scan outputs)",
                          (size_t)n->n_out, (size_t)(c->n_state + c->n_scan_out));
    case IR_OP_SCAN: {
        /* opset 8: sequence_lens first (optional, its slot kept) */
        int first = opset < 9 ? 1 : 0;
        const ir_attr *ns = ir_node_attr(n, "num_scan_inputs");
        if (!ns || ns->type != IR_ATTR_INT || ns->i < 1 || ns->i > n->n_in - first)
            return oct_node_error(ctx, OCT_EINPUT, n, "Scan needs num_scan_inputs "
                                  "between 1 and its input count %d", n->n_in - first);
        c->first = first;
        c->n_scan_in = (int)ns->i;
        c->n_state = n->n_in - first - c->n_scan_in;
        if ((st = need_graph(ctx, n, "body", &c->body)) ||
            (st = tensors_only(ctx, n, c->body)) ||
            (st = need_count(ctx, n, "body inputs", c->body->n_inputs,
                             (size_t)(n->n_in - first))) ||
            (st = need_count(ctx, n, "body outputs", c->body->n_outputs,
                             (size_t)n->n_out)))
            return st;
        if (n->n_out < c->n_state)
            return oct_node_error(ctx, OCT_EINPUT, n, "Scan has %d outputs, "
                                  "fewer than its %d states", n->n_out, c->n_state);
        c->n_scan_out = n->n_out - c->n_state;
        if ((st = check_list(ctx, n, "scan_input_axes", (size_t)c->n_scan_in)) ||
            (st = check_list(ctx, n, "scan_input_directions", (size_t)c->n_scan_in)) ||
            (st = check_list(ctx, n, "scan_output_axes", (size_t)c->n_scan_out)) ||
            (st = check_list(ctx, n, "scan_output_directions", (size_t)c->n_scan_out)))
            return st;
        return OCT_OK;
    }
    default:
        return oct_node_error(ctx, OCT_EINTERNAL, n, "not a control-flow op");
    }
}

/* Entry i of INTS attribute `name`, or dflt when absent or of another
 * type (the verifier reports a wrong type). */
static int64_t int_at(const ir_node *n, const char *name, size_t i, int64_t dflt)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_INTS && i < a->n ? a->ints[i] : dflt;
}

/* The declared type of subgraph value v as an ops_shape. */
static void declared(const ir_value *v, ops_shape *s)
{
    ops_shape_from_type(&v->type, v->has_type, s);
}

/* What a and b have in common: dtype if equal, dims where equal. */
static void merge(const ops_shape *a, const ops_shape *b, ops_shape *out)
{
    *out = *a;
    if (a->dtype == IR_DT_UNDEFINED)
        out->dtype = b->dtype;
    if (a->rank != b->rank) {
        out->rank = -1;
        return;
    }
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d])
            out->dims[d] = -1;
}

int64_t ops_loop_static_trip(const ir_tensor *m, const ir_tensor *cond0, bool has_cond,
                             const ops_control *c)
{
    if (!m || m->dtype != IR_DT_INT64 || m->nelems != 1 || !m->data)
        return -1;
    if (has_cond && (!cond0 || cond0->nelems != 1 || !cond0->data ||
                     !((const uint8_t *)cond0->data)[0]))
        return -1;
    const ir_value *out = c->body->outputs[0], *in = c->body->inputs[1];
    bool same = out == in || (out->producer && out->producer->op == IR_OP_IDENTITY &&
                              out->producer->n_in > 0 && out->producer->in[0] == in);
    int64_t trip = ((const int64_t *)m->data)[0];
    return same ? (trip > 0 ? trip : 0) : -1;
}

static int64_t loop_static_trip(const ops_infer *inf, const ops_control *c)
{
    return ops_loop_static_trip(inf->n_in > 0 ? inf->in_const[0] : NULL,
                                inf->n_in > 1 ? inf->in_const[1] : NULL,
                                inf->n_in > 1 && inf->node->in[1], c);
}

/* Shape a with the leading dim `lead` (then `lead2` when `two`) before it. */
static void prepend(const ops_shape *a, int64_t lead, int64_t lead2, bool two, ops_shape *o)
{
    int extra = two ? 2 : 1;
    o->dtype = a->dtype;
    o->rank = a->rank >= 0 && a->rank + extra <= OPS_MAX_RANK ? a->rank + extra : -1;
    if (o->rank < 0)
        return;
    o->dims[0] = lead;
    if (two)
        o->dims[1] = lead2;
    for (int d = 0; d < a->rank; d++)
        o->dims[d + extra] = a->dims[d];
}

/* Scan of opset 8: every state and scan input has the batch axis 0, scan
 * inputs the sequence axis 1; the body sees one batch entry.  States come
 * out [batch, body state], scan outputs [batch, sequence, body item]
 * (rows past an entry's sequence_lens are zeros, see the interpreter). */
static void scan8_shapes(ops_infer *inf, const ops_control *c)
{
    const ops_shape *x0 = &inf->in[c->first + c->n_state];
    int64_t batch = x0->rank >= 2 ? x0->dims[0] : -1, len = x0->rank >= 2 ? x0->dims[1] : -1;
    ops_shape a, b;
    for (int i = 0; i < c->n_state; i++) {
        declared(c->body->outputs[i], &a);
        prepend(&a, batch, 0, false, &b);
        merge(&inf->in[c->first + i], &b, &inf->out[i]);
    }
    for (int k = 0; k < c->n_scan_out; k++) {
        declared(c->body->outputs[c->n_state + k], &a);
        prepend(&a, batch, len, true, &inf->out[c->n_state + k]);
    }
}

oct_status ops_shape_control(ops_infer *inf)
{
    const ir_node *n = inf->node;
    ops_control c;
    oct_status st = ops_control_check(inf->ctx, n, inf->opset, &c);
    if (st)
        return st;
    ops_shape a, b;
    switch (n->op) {
    case IR_OP_IF:
        for (int i = 0; i < n->n_out; i++) {
            declared(c.body->outputs[i], &a);
            declared(c.other->outputs[i], &b);
            merge(&a, &b, &inf->out[i]);
        }
        break;
    case IR_OP_LOOP:
        for (int i = 0; i < c.n_state; i++) {
            declared(c.body->outputs[1 + i], &a);
            merge(&inf->in[2 + i], &a, &inf->out[i]);
        }
        for (int k = 0; k < c.n_scan_out; k++) {
            ops_shape *o = &inf->out[c.n_state + k];
            declared(c.body->outputs[1 + c.n_state + k], &a);
            o->dtype = a.dtype;
            o->rank = a.rank >= 0 && a.rank < OPS_MAX_RANK ? a.rank + 1 : -1;
            o->dims[0] = loop_static_trip(inf, &c); /* the trip count */
            for (int d = 0; d < a.rank && o->rank > 0; d++)
                o->dims[d + 1] = a.dims[d];
        }
        break;
    default: { /* Scan */
        if (c.first) { /* opset 8: batch axis 0, sequence axis 1 */
            scan8_shapes(inf, &c);
            break;
        }
        for (int i = 0; i < c.n_state; i++) {
            declared(c.body->outputs[i], &a);
            merge(&inf->in[i], &a, &inf->out[i]);
        }
        const ops_shape *x0 = &inf->in[c.n_state];
        int64_t ax0 = int_at(n, "scan_input_axes", 0, 0);
        if (ax0 < 0)
            ax0 += x0->rank;
        int64_t len = x0->rank > 0 && ax0 >= 0 && ax0 < x0->rank ? x0->dims[ax0] : -1;
        for (int k = 0; k < c.n_scan_out; k++) {
            ops_shape *o = &inf->out[c.n_state + k];
            declared(c.body->outputs[c.n_state + k], &a);
            o->dtype = a.dtype;
            o->rank = a.rank >= 0 && a.rank < OPS_MAX_RANK ? a.rank + 1 : -1;
            if (o->rank < 0)
                continue;
            int64_t ax = int_at(n, "scan_output_axes", (size_t)k, 0);
            if (ax < 0)
                ax += o->rank;
            if (ax < 0 || ax >= o->rank)
                return oct_node_error(inf->ctx, OCT_EINPUT, n, "scan_output_axes"
                                      "[%d] is out of range for rank %d", k, o->rank);
            for (int d = 0, s = 0; d < o->rank; d++)
                o->dims[d] = d == ax ? len : a.dims[s++];
        }
        break;
    }
    }
    return OCT_OK;
}
