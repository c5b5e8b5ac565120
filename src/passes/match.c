/*
 * match.c: the helpers of match.h shared by the pattern passes.
 */
#include <string.h>

#include "ops/ops.h"
#include "passes/match.h"
#include "passes/quant.h"

int m_dtype(const ir_value *v)
{
    return v->init ? (int)v->init->dtype : v->has_type ? (int)v->type.dtype : -1;
}

ir_node *m_def(const ir_value *v, ir_op op)
{
    return v && v->producer && v->producer->op == op ? v->producer : NULL;
}

bool m_private(const ir_graph *g, const ir_value *v, size_t uses)
{
    return v && !(v->flags & IR_VAL_OUTPUT) && !v->init &&
           ir_value_use_count(g, v) == uses;
}

bool m_scalar(const ir_value *v, double *out)
{
    const ir_tensor *t = v ? v->init : NULL;
    if (!t || t->nelems != 1)
        return false;
    switch (t->dtype) {
    case IR_DT_FLOAT: *out = *(const float *)t->data; return true;
    case IR_DT_DOUBLE: *out = *(const double *)t->data; return true;
    case IR_DT_FLOAT16: *out = ops_f16_to_f32(*(const uint16_t *)t->data); return true;
    default: return false;
    }
}

const ir_tensor *m_const_f32(const ir_value *v)
{
    return v && v->init && v->init->dtype == IR_DT_FLOAT ? v->init : NULL;
}

bool m_ints(const ir_node *n, int slot, const char *attr, int64_t *out,
            int max, int *count)
{
    *count = -1;
    if (slot < n->n_in && n->in[slot]) {
        const ir_tensor *t = n->in[slot]->init;
        if (!t || t->dtype != IR_DT_INT64 || t->rank != 1 || t->nelems > (uint64_t)max)
            return false;
        memcpy(out, t->data, (size_t)t->nelems * sizeof *out);
        *count = (int)t->nelems;
        return true;
    }
    const ir_attr *a = ir_node_attr(n, attr);
    if (!a)
        return true;
    if (a->type != IR_ATTR_INTS || a->n > (size_t)max)
        return false;
    if (a->n)
        memcpy(out, a->ints, a->n * sizeof *out);
    *count = (int)a->n;
    return true;
}

int m_dims(const ir_value *v, int64_t *dims)
{
    if (v && v->init) {
        if (v->init->rank > OPS_MAX_RANK)
            return -1;
        if (v->init->rank)
            memcpy(dims, v->init->dims, (size_t)v->init->rank * sizeof *dims);
        return v->init->rank;
    }
    if (!v || !v->has_type || v->type.rank < 0 || v->type.rank > OPS_MAX_RANK)
        return -1;
    for (int i = 0; i < v->type.rank; i++) {
        if (v->type.dims[i].value < 0)
            return -1;
        dims[i] = v->type.dims[i].value;
    }
    return v->type.rank;
}

oct_status m_need_opset(oct_ctx *ctx, int64_t version, const char *pass)
{
    ir_model *m = ctx->model;
    if (!m)
        return oct_error(ctx, OCT_EINTERNAL, "%s: run without a model", pass);
    if (ir_model_opset(m, "") >= version)
        return OCT_OK;
    oct_status st = quant_upgrade_opset(m, version, ctx);
    if (st)
        oct_diagf(ctx, OCT_SEV_NOTE, st, NULL, false, -1, NULL,
                  "%s writes ONNX opset-%lld ops and could not raise the model's opset "
                  "(%lld) to it", pass, (long long)version, (long long)ir_model_opset(m, ""));
    return st;
}

ir_node *m_replace(oct_ctx *ctx, ir_graph *g, ir_node *last, const char *op_type,
                   int n_in)
{
    ir_node *n = ir_graph_add_node(ctx, g, op_type, "", last->name, n_in, last->n_out);
    if (!n)
        return NULL;
    for (int i = 0; i < last->n_out; i++)
        ir_node_set_output(n, i, last->out[i]);
    if (!ir_node_add_origin(ctx, n, last))
        return NULL;
    ir_graph_remove_node(g, last);
    for (int i = 0; i < n->n_out; i++)   /* remove_node cleared them */
        ir_node_set_output(n, i, n->out[i]);
    return n;
}

bool m_absorb(oct_ctx *ctx, ir_graph *g, ir_node *into, ir_node *n)
{
    if (!ir_node_add_origin(ctx, into, n))
        return false;
    ir_graph_remove_node(g, n);
    return true;
}

static size_t find_all(const ir_graph *g, unsigned char *buf, size_t size, m_match_fn match)
{
    size_t found = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        found += match(g, g->nodes[i], buf + found * size);
    return found;
}

/* Use counts of every value by the graph's nodes (outputs count one). */
static uint32_t *use_counts(oct_ctx *ctx, const ir_graph *g)
{
    uint32_t *uses = ir_alloc_array(ctx, g->n_values + 1, sizeof *uses);
    if (!uses)
        return NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i]->n_in; j++)
            if (g->nodes[i]->in[j])
                uses[g->nodes[i]->in[j]->id]++;
    for (size_t i = 0; i < g->n_outputs; i++)
        uses[g->outputs[i]->id]++;
    return uses;
}

static bool node_dead(const ir_node *n, const uint32_t *uses)
{
    for (int j = 0; j < n->n_out; j++)
        if (n->out[j] && uses[n->out[j]->id])
            return false;
    return true;
}

/* Removes the nodes and initializers the rewrites left unread (the tables
 * a fused pattern read through Gathers, its constants), but nothing that
 * was already unread before the pass (was_used: per value id, from before). */
static oct_status sweep(oct_ctx *ctx, ir_graph *g, const bool *was_used, size_t n_before)
{
    uint32_t *uses = use_counts(ctx, g);
    if (!uses)
        return OCT_EINTERNAL;
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t k = g->n_nodes; k-- > 0;) {
            ir_node *n = g->nodes[k];
            bool fresh = false;   /* some output was read before */
            for (int j = 0; j < n->n_out; j++)
                fresh |= n->out[j] && n->out[j]->id < n_before && was_used[n->out[j]->id];
            if (!fresh || !node_dead(n, uses))
                continue;
            for (int j = 0; j < n->n_in; j++)
                if (n->in[j])
                    uses[n->in[j]->id]--;
            ir_graph_remove_node(g, n);
            changed = true;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < g->n_inits; i++) {
        ir_value *v = g->inits[i];
        bool drop = !uses[v->id] && !(v->flags & (IR_VAL_INPUT | IR_VAL_OUTPUT)) &&
                    (v->id >= n_before || was_used[v->id]);
        if (drop)
            v->init = NULL;
        else
            g->inits[kept++] = v;
    }
    g->n_inits = kept;
    return OCT_OK;
}

oct_status m_fuse_all(ir_graph *g, oct_ctx *ctx, const char *pass, int64_t opset,
                      size_t match_size, m_match_fn match, m_rewrite_fn rewrite)
{
    unsigned char *buf = ir_alloc_array(ctx, g->n_nodes + 1, match_size);
    if (!buf)
        return OCT_EINTERNAL;
    if (!find_all(g, buf, match_size, match))
        return OCT_OK;
    oct_status st = m_need_opset(ctx, opset, pass);
    if (st)
        return st;
    size_t n_before = g->n_values;
    uint32_t *before = use_counts(ctx, g);
    bool *was_used = ir_alloc_array(ctx, n_before + 1, sizeof *was_used);
    if (!before || !was_used || !(buf = ir_alloc_array(ctx, g->n_nodes + 1, match_size)))
        return OCT_EINTERNAL;
    for (size_t i = 0; i < n_before; i++)
        was_used[i] = before[i] != 0;
    size_t found = find_all(g, buf, match_size, match);
    for (size_t i = 0; i < found && !st; i++)
        st = rewrite(ctx, g, buf + i * match_size);
    if (!st)
        st = sweep(ctx, g, was_used, n_before);
    return st ? st : ir_verify(ctx->model, ctx);
}
