/*
 * interp.c: the reference interpreter.  Runs a verified model node by node
 * in the graph's topological order: for each node the op's shape rule is
 * evaluated on the actual input tensors, the outputs are allocated with the
 * inferred dtype and shape, and the kernel fills them.  Initializers are
 * used in place; every intermediate is freed right after its last consumer
 * (use counts computed once up front), so peak memory is the live set, not
 * the whole graph.  All runtime tensors are heap blocks from oct_malloc.
 *
 * If, Loop and Scan (control.c) run their bodies through run_graph below,
 * one frame per running graph: a body's read of an outer-scope value is
 * looked up by name in the enclosing frames, and a value some subgraph
 * reads (IR_VAL_CAPTURED) is kept alive until its graph's run ends.
 */
#include <stdio.h>
#include <string.h>

#include "ref/dispatch.h"

/* A heap copy of any tensor (initializer, input) for returning it. */
static ir_tensor *tensor_copy(oct_ctx *ctx, const ir_tensor *src)
{
    ir_tensor *t = ir_heap_tensor_new(ctx, src->dtype, src->rank, src->dims);
    if (t && src->nbytes == t->nbytes && t->nbytes)
        memcpy(t->data, src->data, t->nbytes);
    return t;
}

/* ---- checks before running -------------------------------------------- */

/* Checks a runtime input against the declared type of graph input v. */
static oct_status check_input(oct_ctx *ctx, const ir_value *v, const ir_tensor *t)
{
    if (!t)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUSAGE, NULL, 0, -1, v->name,
                         "graph input '%s' was not given", v->name);
    if (!v->has_type || v->type.opaque.len)
        return OCT_OK;
    const ir_type *ty = &v->type;
    if (ty->dtype != IR_DT_UNDEFINED && ty->dtype != t->dtype)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, v->name,
                         "graph input '%s' is declared %s but the tensor given "
                         "is %s", v->name, ir_dtype_name(ty->dtype),
                         ir_dtype_name(t->dtype));
    if (ty->rank < 0)
        return OCT_OK;
    if (ty->rank != t->rank)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, v->name,
                         "graph input '%s' is declared with rank %d but the "
                         "tensor given has rank %d", v->name, ty->rank, t->rank);
    for (int i = 0; i < ty->rank; i++) {
        int64_t want = ty->dims ? ty->dims[i].value : -1;
        if (want >= 0 && want != t->dims[i])
            return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, v->name,
                             "graph input '%s' dim %d is declared %lld but the "
                             "tensor given has %lld", v->name, i,
                             (long long)want, (long long)t->dims[i]);
    }
    return OCT_OK;
}

/* ---- the run ------------------------------------------------------------ */

struct ref_frame {
    oct_ctx *ctx;
    const ir_graph *g;
    const ir_tensor **val;  /* per value id: its tensor while alive */
    bool *owned;            /* val[id] is a heap tensor of this run */
    uint32_t *uses;         /* remaining consumers */
    bool *keep;             /* graph output or read by a subgraph: never
                               freed during the run */
    const ref_frame *up;    /* the frame of the enclosing graph, or NULL */
};
typedef ref_frame run_state;

/* The tensor of the value a subgraph reads from outside itself: the
 * nearest enclosing frame whose graph defines `name`. */
static const ir_tensor *outer_value(const ref_frame *fr, const char *name)
{
    for (; fr; fr = fr->up) {
        const ir_value *v = ir_graph_find(fr->g, name);
        if (v && ir_value_defined_here(v))
            return fr->val[v->id];
    }
    return NULL;
}

static void release(run_state *rs, uint32_t id)
{
    if (rs->owned[id]) {
        ir_heap_tensor_free(rs->ctx, (ir_tensor *)rs->val[id]);
        rs->owned[id] = false;
    }
    rs->val[id] = NULL;
}

oct_status ref_eval_node(oct_ctx *ctx, const ir_node *n, int64_t opset,
                         const ir_tensor *const *in, ir_tensor **out)
{
    ops_shape in_shape[OPS_MAX_IO], out_shape[OPS_MAX_IO];
    if (n->n_in > OPS_MAX_IO || n->n_out > OPS_MAX_IO)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, n,
                              "more than %d inputs or outputs", OPS_MAX_IO);
    for (int i = 0; i < n->n_in; i++) {
        memset(&in_shape[i], 0, sizeof in_shape[i]);
        in_shape[i].rank = -1;
        if (in[i])
            ops_shape_of(in[i], &in_shape[i]);
    }
    for (int i = 0; i < n->n_out; i++) {
        memset(&out_shape[i], 0, sizeof out_shape[i]);
        out_shape[i].rank = -1;
        out[i] = NULL;
    }
    ops_infer inf = {.ctx = ctx, .node = n, .opset = opset, .n_in = n->n_in,
                     .in = in_shape, .in_const = in, .n_out = n->n_out,
                     .out = out_shape};
    size_t errors_before = oct_error_count(ctx);
    oct_status st = ops_shape_rule_of(n->op)(&inf);
    if (st != OCT_OK) {
        if (oct_error_count(ctx) == errors_before)
            oct_node_error(ctx, st, n, "shape rule failed");
        return st;
    }
    for (int i = 0; i < n->n_out; i++) {
        const ops_shape *s = &out_shape[i];
        bool known = s->rank >= 0 && ir_dtype_valid(s->dtype);
        for (int d = 0; known && d < s->rank; d++)
            known = s->dims[d] >= 0;
        if (!n->out[i]) {
            /* an absent output (named ""): kernels may still write it, so
             * give it a scratch tensor, freed after the kernel */
            if (known && !(out[i] = ir_heap_tensor_new(ctx, s->dtype, s->rank,
                                                   s->dims))) {
                st = OCT_EINTERNAL;
                goto fail;
            }
            continue;
        }
        if (!known) {
            st = oct_output_error(ctx, OCT_EINTERNAL, n, i,
                                  "shape rule left the output's type unknown "
                                  "with every input known");
            goto fail;
        }
        out[i] = ir_heap_tensor_new(ctx, s->dtype, s->rank, s->dims);
        if (!out[i]) {
            st = OCT_EINTERNAL;
            goto fail;
        }
        out[i]->name = n->out[i]->name;
    }
    ref_call call = {.ctx = ctx, .node = n, .opset = opset, .n_in = n->n_in,
                     .in = in, .n_out = n->n_out, .out = out};
    st = ref_kernel_of(n->op)(&call);
    if (st != OCT_OK) {
        if (oct_error_count(ctx) == errors_before)
            oct_node_error(ctx, st, n, "kernel failed");
        goto fail;
    }
    for (int i = 0; i < n->n_out; i++)
        if (!n->out[i]) { /* the scratch tensors of absent outputs */
            ir_heap_tensor_free(ctx, out[i]);
            out[i] = NULL;
        }
    return OCT_OK;
fail:
    for (int i = 0; i < n->n_out; i++) {
        ir_heap_tensor_free(ctx, out[i]);
        out[i] = NULL;
    }
    return st;
}

/* Runs one node, publishes its outputs, calls the observer, and frees
 * what is no longer needed. */
static oct_status run_node(run_state *rs, const ir_node *n, int64_t opset,
                           const ref_run_opts *opts)
{
    oct_ctx *ctx = rs->ctx;
    const ir_tensor *in[OPS_MAX_IO];
    ir_tensor *out[OPS_MAX_IO];
    if (n->n_in > OPS_MAX_IO || n->n_out > OPS_MAX_IO)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, n,
                              "more than %d inputs or outputs", OPS_MAX_IO);
    for (int i = 0; i < n->n_in; i++) {
        in[i] = NULL;
        if (!n->in[i])
            continue;
        in[i] = rs->val[n->in[i]->id];
        if (!in[i] && rs->up && !ir_value_defined_here(n->in[i]))
            in[i] = outer_value(rs->up, n->in[i]->name);
        if (!in[i])
            return oct_input_error(ctx, OCT_EINPUT, n, i,
                                   "input '%s' has no value (no producer, "
                                   "initializer or graph input before this node)",
                                   n->in[i]->name);
    }
    oct_status st = n->op == IR_OP_IF || n->op == IR_OP_LOOP || n->op == IR_OP_SCAN
                  ? ref_control_run(ctx, rs, n, opset, in, out)
                  : ref_eval_node(ctx, n, opset, in, out);
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < n->n_out; i++) {
        if (!out[i])
            continue;
        uint32_t id = n->out[i]->id;
        if (rs->val[id]) /* a value produced twice: the verifier forbids it */
            release(rs, id);
        rs->val[id] = out[i];
        rs->owned[id] = true;
        out[i] = NULL;
        if (opts && opts->observe)
            opts->observe(opts->observe_user, n->out[i], rs->val[id]);
    }
    /* last uses: inputs whose consumers are all done, dead outputs */
    for (int i = 0; i < n->n_in; i++) {
        if (!n->in[i])
            continue;
        uint32_t id = n->in[i]->id;
        if (rs->uses[id] > 0 && --rs->uses[id] == 0 && !rs->keep[id])
            release(rs, id);
    }
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i] && rs->uses[n->out[i]->id] == 0 && !rs->keep[n->out[i]->id])
            release(rs, n->out[i]->id);
    return OCT_OK;
}

/* The checks ref_run makes before running: unknown ops and attributes,
 * in g and in every subgraph below it. */
static oct_status check_graph(oct_ctx *ctx, const ir_graph *g)
{
    oct_status st = ops_report_unsupported(ctx, g);
    if (st == OCT_OK)
        st = ops_check_attrs(ctx, g);
    for (size_t k = 0; k < g->n_nodes && st == OCT_OK; k++) {
        const ir_node *n = g->nodes[k];
        for (int a = 0; a < n->n_attr && st == OCT_OK; a++) {
            const ir_attr *at = &n->attrs[a];
            if (at->type == IR_ATTR_GRAPH && at->graph)
                st = check_graph(ctx, at->graph);
            for (size_t i = 0; at->type == IR_ATTR_GRAPHS && at->graphs &&
                               i < at->n && st == OCT_OK; i++)
                st = check_graph(ctx, at->graphs[i]);
        }
    }
    return st;
}

/* Runs graph g in a frame below `up` (NULL for the model's graph).  With
 * `top`, inputs[] holds one tensor per non-initializer graph input,
 * checked against the declared types; for a subgraph, one per graph input
 * (bodies declare loose types: not checked).  Outputs as ref_run's. */
static oct_status run_graph(oct_ctx *ctx, const ref_frame *up, const ir_graph *g,
                            int64_t opset, bool top,
                            const ir_tensor *const *inputs, ir_tensor **outputs,
                            const ref_run_opts *opts)
{
    oct_status st = OCT_OK;
    size_t nv = g->n_values ? g->n_values : 1;
    run_state rs = {.ctx = ctx, .g = g, .up = up};
    rs.val = oct_malloc(ctx, nv * sizeof *rs.val);
    rs.owned = oct_malloc(ctx, nv * sizeof *rs.owned);
    rs.uses = oct_malloc(ctx, nv * sizeof *rs.uses);
    rs.keep = oct_malloc(ctx, nv * sizeof *rs.keep);
    if (!rs.val || !rs.owned || !rs.uses || !rs.keep) {
        st = OCT_EINTERNAL;
        goto done;
    }
    memset(rs.val, 0, nv * sizeof *rs.val);
    memset(rs.owned, 0, nv * sizeof *rs.owned);
    memset(rs.uses, 0, nv * sizeof *rs.uses);
    memset(rs.keep, 0, nv * sizeof *rs.keep);

    for (size_t i = 0; i < g->n_values; i++)
        if (g->values[i]->init)
            rs.val[i] = g->values[i]->init;
    for (size_t i = 0, k = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (top && v->init)
            continue;
        oct_status s = top ? check_input(ctx, v, inputs[k]) : OCT_OK;
        if (s != OCT_OK && st == OCT_OK)
            st = s;
        rs.val[v->id] = inputs[k++];
    }
    if (st != OCT_OK)
        goto done;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++)
            if (g->nodes[i]->in[j])
                rs.uses[g->nodes[i]->in[j]->id]++;
    for (size_t i = 0; i < g->n_outputs; i++)
        rs.keep[g->outputs[i]->id] = true;
    for (size_t i = 0; i < g->n_values; i++)
        if (g->values[i]->flags & IR_VAL_CAPTURED)
            rs.keep[i] = true;

    for (size_t i = 0; i < g->n_nodes && st == OCT_OK; i++)
        st = run_node(&rs, g->nodes[i], opset, opts);
    if (st != OCT_OK)
        goto done;

    for (size_t i = 0; i < g->n_outputs; i++) {
        uint32_t id = g->outputs[i]->id;
        if (!rs.val[id] && up && !ir_value_defined_here(g->outputs[i]))
            rs.val[id] = outer_value(up, g->outputs[i]->name);
        if (!rs.val[id]) {
            st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 1, (int)i,
                           g->outputs[i]->name,
                           "graph output '%s' is never computed",
                           g->outputs[i]->name);
            goto done;
        }
        if (rs.owned[id]) { /* hand the tensor over */
            outputs[i] = (ir_tensor *)rs.val[id];
            rs.owned[id] = false;
        } else if (!(outputs[i] = tensor_copy(ctx, rs.val[id]))) {
            st = OCT_EINTERNAL;
            goto done;
        }
        outputs[i]->name = g->outputs[i]->name;
    }
done:
    /* the arrays are initialized only once all four are allocated */
    if (rs.val && rs.owned && rs.uses && rs.keep)
        for (size_t i = 0; i < g->n_values; i++)
            release(&rs, (uint32_t)i);
    if (st != OCT_OK)
        for (size_t i = 0; i < g->n_outputs; i++) {
            ir_heap_tensor_free(ctx, outputs[i]);
            outputs[i] = NULL;
        }
    oct_free(ctx, rs.val, rs.val ? nv * sizeof *rs.val : 0);
    oct_free(ctx, rs.owned, rs.owned ? nv * sizeof *rs.owned : 0);
    oct_free(ctx, rs.uses, rs.uses ? nv * sizeof *rs.uses : 0);
    oct_free(ctx, rs.keep, rs.keep ? nv * sizeof *rs.keep : 0);
    return st;
}

oct_status ref_run_subgraph(oct_ctx *ctx, const ref_frame *up, const ir_graph *g,
                            int64_t opset, const ir_tensor *const *inputs,
                            ir_tensor **outputs)
{
    for (size_t i = 0; i < g->n_outputs; i++)
        outputs[i] = NULL;
    return run_graph(ctx, up, g, opset, false, inputs, outputs, NULL);
}

oct_status ref_run(oct_ctx *ctx, const ir_model *m, const ir_tensor *const *inputs,
                   size_t n_inputs, ir_tensor **outputs, size_t n_outputs,
                   const ref_run_opts *opts)
{
    const ir_graph *g = m->graph;
    for (size_t i = 0; i < n_outputs; i++)
        outputs[i] = NULL;
    if (n_outputs != g->n_outputs)
        return oct_error(ctx, OCT_EUSAGE, "ref_run: %zu outputs requested, the "
                         "graph has %zu", n_outputs, g->n_outputs);
    size_t n_runtime = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        n_runtime += !g->inputs[i]->init;
    if (n_inputs != n_runtime)
        return oct_error(ctx, OCT_EUSAGE, "the graph has %zu inputs, %zu given",
                         n_runtime, n_inputs);
    oct_status st = check_graph(ctx, g);
    if (st != OCT_OK)
        return st;
    return run_graph(ctx, NULL, g, ir_model_opset(m, ""), true, inputs, outputs,
                     opts);
}
