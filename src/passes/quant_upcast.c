/*
 * quant_upcast.c: FP16 and BF16 models made float32 before quantization.
 *
 * Every mode of `octet quantize` reads float32 weights and activations; a
 * half-precision model would otherwise pass through with nothing
 * quantized.  The model is rewritten to compute in float32 with the same
 * interface:
 *   - half initializers and half tensor attributes (Constant values) become
 *     float32 (exactly: every half value is a float32 value);
 *   - Cast nodes and dtype attributes naming a half type name FLOAT;
 *   - a half graph input x feeds Cast(x, to=FLOAT) and the nodes read that;
 *     a half graph output y is Cast(y_float, to=its type) of the value the
 *     graph computed;
 *   - the types of the other half values become FLOAT (shape inference
 *     runs again afterwards).
 * The calibration data keeps the inputs' own type.  Weights the quantizer
 * leaves float stay float32 (the model grows by their size).  A model with
 * subgraphs (If, Loop, Scan) is refused: their values are not rewritten.
 */
#include <string.h>

#include "ops/ops.h"
#include "passes/quant.h"

static bool is_half(ir_dtype d)
{
    return d == IR_DT_FLOAT16 || d == IR_DT_BFLOAT16;
}

bool quant_model_is_half(const ir_model *m)
{
    const ir_graph *g = m->graph;
    for (size_t i = 0; i < g->n_values; i++) {
        const ir_value *v = g->values[i];
        if (v->init ? is_half(v->init->dtype)
                    : v->has_type && (v->flags & (IR_VAL_INPUT | IR_VAL_OUTPUT)) &&
                          is_half(v->type.dtype))
            return true;
    }
    return false;
}

/* The float32 copy of a half tensor (same name and shape). */
static ir_tensor *upcast_tensor(oct_ctx *ctx, const ir_tensor *t)
{
    ir_tensor *f = ir_tensor_new(ctx, IR_DT_FLOAT, t->rank, t->dims);
    if (!f)
        return NULL;
    f->name = t->name;
    f->doc = t->doc;
    const uint16_t *h = t->data;
    float *o = f->data;
    for (uint64_t i = 0; i < t->nelems; i++)
        o[i] = t->dtype == IR_DT_FLOAT16 ? ops_f16_to_f32(h[i]) : ops_bf16_to_f32(h[i]);
    return f;
}

/* Half tensor attributes become float32, half dtype attributes FLOAT. */
static oct_status upcast_attrs(oct_ctx *ctx, ir_node *n)
{
    for (int a = 0; a < n->n_attr; a++) {
        ir_attr *at = &n->attrs[a];
        if (at->type == IR_ATTR_TENSOR && at->t && is_half(at->t->dtype)) {
            if (!(at->t = upcast_tensor(ctx, at->t)))
                return OCT_EINTERNAL;
        } else if (at->type == IR_ATTR_INT && is_half((ir_dtype)at->i) &&
                   (!strcmp(at->name, "to") || !strcmp(at->name, "dtype"))) {
            at->i = IR_DT_FLOAT;
        }
    }
    return OCT_OK;
}

/* Points every node input reading `from` at `to`. */
static void replace_uses(ir_graph *g, const ir_value *from, ir_value *to)
{
    for (size_t k = 0; k < g->n_nodes; k++)
        for (int i = 0; i < g->nodes[k]->n_in; i++)
            if (g->nodes[k]->in[i] == from)
                g->nodes[k]->in[i] = to;
}

/* A Cast of `in` to `to` writing `out`, appended to g. */
static ir_node *add_cast(oct_ctx *ctx, ir_graph *g, ir_value *in, ir_value *out, ir_dtype to)
{
    const char *name = ir_sprintf(ctx, "%s_upcast_Cast", out->name);
    ir_node *c = name ? ir_graph_add_node(ctx, g, "Cast", "", name, 1, 1) : NULL;
    ir_attr *a = c ? ir_node_add_attr(ctx, c, "to", IR_ATTR_INT) : NULL;
    if (!a)
        return NULL;
    a->i = to;
    c->in[0] = in;
    ir_node_set_output(c, 0, out);
    return c;
}

/* A new float32 value named after v, with v's shape. */
static ir_value *float_twin(oct_ctx *ctx, ir_graph *g, const ir_value *v)
{
    const char *name = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_float", v->name));
    ir_value *f = name ? ir_graph_value(ctx, g, name) : NULL;
    if (f && v->has_type) {
        f->has_type = true;
        f->type = v->type;
        f->type.dtype = IR_DT_FLOAT;
    }
    return f;
}

oct_status quant_upcast_half(ir_model *m, oct_ctx *ctx)
{
    ir_graph *g = m->graph;
    for (size_t k = 0; k < g->n_nodes; k++)
        if (ir_node_has_subgraph(g->nodes[k]))
            return oct_node_error(ctx, OCT_EUNSUPPORTED, g->nodes[k],
                                  "quantize: an FP16/BF16 model with subgraphs is not "
                                  "upcast; convert it to float32 first");
    oct_status st = OCT_OK;
    for (size_t k = 0; !st && k < g->n_nodes; k++)
        st = upcast_attrs(ctx, g->nodes[k]);
    size_t n_values = g->n_values, n_nodes = g->n_nodes;
    for (size_t i = 0; !st && i < n_values; i++) {
        ir_value *v = g->values[i];
        if (v->init && is_half(v->init->dtype)) {
            if (!(v->init = upcast_tensor(ctx, v->init)))
                return OCT_EINTERNAL;
            if (v->has_type)
                v->type.dtype = IR_DT_FLOAT;
            continue;
        }
        bool io = v->flags & (IR_VAL_INPUT | IR_VAL_OUTPUT);
        if (!v->has_type || !is_half(v->type.dtype))
            continue;
        if (!io) {
            v->type.dtype = IR_DT_FLOAT;
            continue;
        }
        ir_value *f = float_twin(ctx, g, v);
        if (!f)
            return OCT_EINTERNAL;
        if (v->flags & IR_VAL_INPUT) {
            /* x -> Cast -> x_float, read by every node that read x */
            replace_uses(g, v, f);
            if (!add_cast(ctx, g, v, f, IR_DT_FLOAT))
                return OCT_EINTERNAL;
        } else if (v->producer) {
            /* the graph computes y_float; y = Cast(y_float) */
            ir_node *p = v->producer;
            replace_uses(g, v, f);
            for (int o = 0; o < p->n_out; o++)
                if (p->out[o] == v)
                    ir_node_set_output(p, o, f);
            if (!add_cast(ctx, g, f, v, v->type.dtype))
                return OCT_EINTERNAL;
        }
    }
    if (st)
        return st;
    /* the input Casts first, the output Casts last: input Casts read graph
     * inputs only, so they can lead; output Casts follow everything */
    size_t n_new = g->n_nodes - n_nodes, lead = 0;
    ir_node **order = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *order);
    if (!order)
        return OCT_EINTERNAL;
    for (size_t k = n_nodes; k < g->n_nodes; k++)
        if (g->nodes[k]->in[0]->flags & IR_VAL_INPUT)
            order[lead++] = g->nodes[k];
    memcpy(order + lead, g->nodes, n_nodes * sizeof *order);
    size_t at = lead + n_nodes;
    for (size_t k = n_nodes; k < g->n_nodes; k++)
        if (!(g->nodes[k]->in[0]->flags & IR_VAL_INPUT))
            order[at++] = g->nodes[k];
    OCT_ASSERT(at == n_nodes + n_new);
    memcpy(g->nodes, order, at * sizeof *order);
    oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL,
              "quantize: the FP16/BF16 model is computed in float32 (its inputs and "
              "outputs keep their types)");
    return ir_verify(m, ctx);
}
