/*
 * quant_rewrite.c: turns a decided plan into a QDQ ONNX graph.
 *
 *  - an activation v produced by node P becomes  P -> v_float ->
 *    QuantizeLinear -> v_quantized -> DequantizeLinear -> v, so every
 *    consumer (and a graph output named v) reads the dequantized tensor
 *    without being rewired; a graph input v gets Q/DQ after it and its
 *    consumers are rewired to v_dequantized;
 *  - a constant becomes a quantized initializer followed by a
 *    DequantizeLinear (axis / block_size as chosen); the node that
 *    consumed it reads the DequantizeLinear output;
 *  - the opset is raised only as far as the chosen types need: 10 for
 *    per-tensor INT8, 13 for per-axis, 19 for float8, 21 for blocked.
 */
#include <string.h>

#include "passes/quant.h"

typedef struct rewriter {
    oct_ctx *ctx;
    ir_graph *g;
} rewriter;

static ir_tensor *scalar_or_vector(rewriter *rw, ir_dtype dt, int rank,
                                   const int64_t *dims)
{
    return ir_tensor_new(rw->ctx, dt, rank, dims);
}

/* Scale and zero-point initializers of entry e. */
static oct_status qparam_inits(rewriter *rw, const quant_tensor *e,
                               ir_value **scale, ir_value **zp)
{
    ir_tensor *s = scalar_or_vector(rw, IR_DT_FLOAT, e->scale_rank, e->scale_dims);
    const ir_qformat_traits *f = ir_qformat_info(e->format);
    ir_tensor *z = scalar_or_vector(rw, f->dtype, e->scale_rank, e->scale_dims);
    if (!s || !z)
        return OCT_EINTERNAL;
    memcpy(s->data, e->scales, e->n_scales * sizeof(float));
    for (size_t i = 0; i < e->n_scales; i++) {
        switch (f->dtype) {
        case IR_DT_UINT8:
            ((uint8_t *)z->data)[i] = (uint8_t)e->zero_points[i];
            break;
        case IR_DT_INT8:
            ((int8_t *)z->data)[i] = (int8_t)e->zero_points[i];
            break;
        case IR_DT_INT32:
            ((int32_t *)z->data)[i] = e->zero_points[i];
            break;
        default: /* float8: zero point +0.0, all bits clear */
            OCT_ASSERT(f->is_float);
            break;
        }
    }
    const char *base = e->value->name;
    *scale = ir_graph_add_init(rw->ctx, rw->g, ir_sprintf(rw->ctx, "%s_scale", base), s);
    *zp = ir_graph_add_init(rw->ctx, rw->g, ir_sprintf(rw->ctx, "%s_zero_point", base), z);
    return *scale && *zp ? OCT_OK : OCT_EINTERNAL;
}

static ir_value *new_value(rewriter *rw, const char *base, const ir_value *like,
                           ir_dtype dtype)
{
    const char *name = ir_graph_unique_name(rw->ctx, rw->g, base);
    ir_value *v = name ? ir_graph_value(rw->ctx, rw->g, name) : NULL;
    if (!v)
        return NULL;
    v->has_type = true;
    v->type = like->type;
    v->type.dtype = dtype;
    v->type.has_elem_type = true;
    v->type.opaque.data = NULL;
    v->type.opaque.len = 0;
    return v;
}

/* Adds a QuantizeLinear or DequantizeLinear node x -> y. */
static oct_status add_qdq_node(rewriter *rw, const char *op, const quant_tensor *e,
                               ir_value *x, ir_value *scale, ir_value *zp,
                               ir_value *y)
{
    const char *name = ir_sprintf(rw->ctx, "%s_%s", e->value->name, op);
    ir_node *n = name ? ir_graph_add_node(rw->ctx, rw->g, op, "", name, 3, 1) : NULL;
    if (!n)
        return OCT_EINTERNAL;
    n->in[0] = x;
    n->in[1] = scale;
    n->in[2] = zp;
    ir_node_set_output(n, 0, y);
    if (e->scale_rank > 0) {
        ir_attr *a = ir_node_add_attr(rw->ctx, n, "axis", IR_ATTR_INT);
        if (!a)
            return OCT_EINTERNAL;
        a->i = e->axis;
    }
    if (e->block_size > 0) {
        ir_attr *a = ir_node_add_attr(rw->ctx, n, "block_size", IR_ATTR_INT);
        if (!a)
            return OCT_EINTERNAL;
        a->i = e->block_size;
    }
    return OCT_OK;
}

/* Rewires every consumer input reading `from` to `to`, except `skip`. */
static void rewire(rewriter *rw, ir_value *from, ir_value *to, const ir_node *skip)
{
    for (size_t i = 0; i < rw->g->n_nodes; i++) {
        ir_node *n = rw->g->nodes[i];
        if (n == skip)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == from)
                n->in[k] = to;
    }
}

static oct_status rewrite_activation(rewriter *rw, quant_tensor *e)
{
    ir_value *v = e->value, *scale, *zp;
    oct_status st = qparam_inits(rw, e, &scale, &zp);
    if (st)
        return st;
    ir_value *q = new_value(rw, ir_sprintf(rw->ctx, "%s_quantized", v->name), v,
                           ir_qformat_info(e->format)->dtype);
    if (!q)
        return OCT_EINTERNAL;
    if (v->producer) {
        ir_value *pre = new_value(rw, ir_sprintf(rw->ctx, "%s_float", v->name), v,
                                  IR_DT_FLOAT);
        if (!pre)
            return OCT_EINTERNAL;
        ir_node_set_output(v->producer, v->producer_out, pre);
        st = add_qdq_node(rw, "QuantizeLinear", e, pre, scale, zp, q);
        if (!st)
            st = add_qdq_node(rw, "DequantizeLinear", e, q, scale, zp, v);
        return st;
    }
    ir_value *dq = new_value(rw, ir_sprintf(rw->ctx, "%s_dequantized", v->name), v,
                             IR_DT_FLOAT);
    if (!dq)
        return OCT_EINTERNAL;
    st = add_qdq_node(rw, "QuantizeLinear", e, v, scale, zp, q);
    if (st)
        return st;
    ir_node *qnode = rw->g->nodes[rw->g->n_nodes - 1];
    st = add_qdq_node(rw, "DequantizeLinear", e, q, scale, zp, dq);
    rewire(rw, v, dq, qnode);
    return st;
}

/* Constant: quantized initializer + DequantizeLinear; `only` (may be NULL)
 * restricts the rewiring to one node's input slot. */
static oct_status rewrite_constant(rewriter *rw, quant_tensor *e)
{
    ir_tensor *data = quant_constant_data(rw->ctx, e);
    ir_value *scale, *zp;
    if (!data)
        return OCT_EINTERNAL;
    oct_status st = qparam_inits(rw, e, &scale, &zp);
    if (st)
        return st;
    ir_value *q = ir_graph_add_init(rw->ctx, rw->g,
                                    ir_sprintf(rw->ctx, "%s_quantized", e->value->name),
                                    data);
    ir_value *dq = q ? new_value(rw, ir_sprintf(rw->ctx, "%s_dequantized",
                                                e->value->name),
                                 e->value, IR_DT_FLOAT)
                     : NULL;
    if (!dq)
        return OCT_EINTERNAL;
    st = add_qdq_node(rw, "DequantizeLinear", e, q, scale, zp, dq);
    if (st)
        return st;
    if (e->node)
        e->node->in[e->input] = dq;
    else
        rewire(rw, e->value, dq, rw->g->nodes[rw->g->n_nodes - 1]);
    return OCT_OK;
}

/* Lowest opset whose QuantizeLinear/DequantizeLinear express the plan:
 * each format's own (the table's opset column), 13 for per-axis scales,
 * 21 for blocks. */
static int64_t needed_opset(const quant_plan *plan)
{
    int64_t need = 10;
    for (size_t i = 0; i < plan->n; i++) {
        const quant_tensor *e = &plan->t[i];
        if (e->keep_float || !e->format)
            continue;
        if (e->scale_rank > 0 && need < 13)
            need = 13;
        if (need < ir_qformat_info(e->format)->opset)
            need = ir_qformat_info(e->format)->opset;
        if (e->block_size > 0 && need < 21)
            need = 21;
    }
    return need;
}

/* Drops initializers nothing reads any more (the float weights that were
 * replaced).  An initializer also listed as a graph input (IR < 4 models
 * list every weight there, overridable) goes from the inputs too: nothing
 * reads it, so overriding it could change nothing. */
void quant_drop_dead_inits(ir_graph *g)
{
    size_t keep = 0;
    for (size_t i = 0; i < g->n_inits; i++) {
        ir_value *v = g->inits[i];
        bool used = ir_value_escapes(v);
        for (size_t j = 0; !used && j < g->n_nodes; j++)
            for (int k = 0; k < g->nodes[j]->n_in; k++)
                used |= g->nodes[j]->in[k] == v;
        if (used) {
            g->inits[keep++] = v;
            continue;
        }
        v->init = NULL;
        if (v->flags & IR_VAL_INPUT) {
            size_t kept_inputs = 0;
            for (size_t j = 0; j < g->n_inputs; j++)
                if (g->inputs[j] != v)
                    g->inputs[kept_inputs++] = g->inputs[j];
            g->n_inputs = kept_inputs;
            v->flags &= ~IR_VAL_INPUT;
        }
    }
    g->n_inits = keep;
}

oct_status quant_rewrite(ir_model *m, quant_plan *plan, const quant_opts *opts,
                         oct_ctx *ctx)
{
    rewriter rw = {ctx, m->graph};
    oct_status bst = quant_biascorr_apply(plan, ctx);
    if (bst)
        return bst;
    int64_t need = needed_opset(plan);
    if (ir_model_opset(m, "") < need) {
        oct_status st = quant_upgrade_opset(m, need, ctx);
        if (st)
            return st;
    }
    for (size_t i = 0; i < plan->n; i++) {
        quant_tensor *e = &plan->t[i];
        if (e->keep_float || !e->format)
            continue;
        oct_status st = e->kind == QKIND_ACT ? rewrite_activation(&rw, e)
                                             : rewrite_constant(&rw, e);
        if (st)
            return st;
    }
    quant_drop_dead_inits(rw.g);
    return ir_verify(m, ctx);
}

/* The pass: the session's plan, with its formats, into the graph.  The
 * plan stays in the session (the report reads it) but describes the graph
 * before the rewrite: no quant analysis is current afterwards. */
oct_status pass_quant_rewrite(ir_graph *g, oct_ctx *ctx)
{
    quant_session *s = ctx->quant;
    OCT_ASSERT(s && ctx->model && ctx->model->graph == g && s->model == ctx->model);
    oct_status st = quant_rewrite(ctx->model, &s->plan, &s->opts, ctx);
    s->have = 0;
    return st;
}

oct_status quant_qdq_insert(oct_ctx *ctx, ir_graph *g, quant_tensor *e)
{
    rewriter rw = {ctx, g};
    return rewrite_activation(&rw, e);
}

/* The rewriter's pieces, for passes that place Q/DQ their own way
 * (quant_kv.c stores the cache's codes; see quant.h). */
oct_status quant_qdq_params(oct_ctx *ctx, ir_graph *g, const quant_tensor *e,
                            ir_value **scale, ir_value **zp)
{
    rewriter rw = {ctx, g};
    return qparam_inits(&rw, e, scale, zp);
}

ir_value *quant_qdq_value(oct_ctx *ctx, ir_graph *g, const char *base, const ir_value *like,
                          ir_dtype dtype)
{
    rewriter rw = {ctx, g};
    return base ? new_value(&rw, base, like, dtype) : NULL;
}

oct_status quant_qdq_node(oct_ctx *ctx, ir_graph *g, const char *op, const quant_tensor *e,
                          ir_value *x, ir_value *scale, ir_value *zp, ir_value *y)
{
    rewriter rw = {ctx, g};
    return add_qdq_node(&rw, op, e, x, scale, zp, y);
}

void quant_rewire(ir_graph *g, ir_value *from, ir_value *to, const ir_node *skip)
{
    rewriter rw = {NULL, g};
    rewire(&rw, from, to, skip);
}
