/*
 * dqmm_expand.c: the compiler's first lowering of ONNX Runtime's
 * DynamicQuantizeMatMul (com.microsoft).  The node becomes the ops whose
 * arithmetic it is (src/ref/qlinear.c, ref_dynquantmatmul):
 *
 *   DynamicQuantizeLinear(A) -> a_q, a_scale, a_zero_point
 *   MatMulInteger(a_q, B, a_zero_point, b_zero_point?) -> acc (int32)
 *   Cast(acc, float) * Mul(a_scale, b_scale) [+ bias] -> Y
 *
 * Each float step is one float32 operation in the interpreter's order
 * ((float)acc * (float)(a_scale * b_scale[n]) + bias[n]), so the compiled
 * pieces (DynamicQuantizeLinear's loops, MatMulInteger on the integer GEMM
 * kernel with a run-time zero point, the element-wise lowerings) give the
 * interpreter's bits.  The interpreter runs the node itself; only the
 * backend's pass list (src/api/compile.c) expands it.
 */
#include <string.h>

#include "passes/passes.h"

typedef struct expander {
    oct_ctx *ctx;
    ir_graph *g;
    const ir_node *old;
} expander;

/* A fresh value named after the old node's output and `what`. */
static ir_value *fresh(const expander *e, const char *what)
{
    const char *name = ir_graph_unique_name(
        e->ctx, e->g, ir_sprintf(e->ctx, "%s_%s", e->old->out[0]->name, what));
    return name ? ir_graph_value(e->ctx, e->g, name) : NULL;
}

/* Adds op with the given inputs and one output, `out` (a fresh value if
 * NULL); NULL when out of memory. */
static ir_node *add(const expander *e, const char *op, const char *what, ir_value *const *in,
                    int n_in, int n_out, ir_value *out)
{
    const char *name = ir_graph_unique_name(
        e->ctx, e->g, ir_sprintf(e->ctx, "%s_%s", e->old->name ? e->old->name : "dqmm", what));
    ir_node *n = name ? ir_graph_add_node(e->ctx, e->g, op, "", name, n_in, n_out) : NULL;
    if (!n || (!out && !(out = fresh(e, what))))
        return NULL;
    for (int i = 0; i < n_in; i++)
        n->in[i] = in[i];
    ir_node_set_output(n, 0, out);
    return n;
}

static oct_status expand(const expander *e)
{
    const ir_node *n = e->old;
    ir_value *zb = n->n_in > 3 ? n->in[3] : NULL, *bias = n->n_in > 4 ? n->in[4] : NULL;
    ir_node *q = add(e, "DynamicQuantizeLinear", "a_quantized", n->in, 1, 3, NULL);
    ir_value *qs = q ? fresh(e, "a_scale") : NULL, *qz = qs ? fresh(e, "a_zero_point") : NULL;
    if (!qz)
        return OCT_EINTERNAL;
    ir_node_set_output(q, 1, qs);
    ir_node_set_output(q, 2, qz);
    ir_value *mi[4] = {q->out[0], n->in[1], qz, zb};
    ir_node *acc = add(e, "MatMulInteger", "int32", mi, zb ? 4 : 3, 1, NULL);
    ir_node *cast = acc ? add(e, "Cast", "float", acc->out, 1, 1, NULL) : NULL;
    ir_attr *to = cast ? ir_node_add_attr(e->ctx, cast, "to", IR_ATTR_INT) : NULL;
    ir_value *sm[2] = {qs, n->in[2]};
    ir_node *mult = to ? add(e, "Mul", "scale", sm, 2, 1, NULL) : NULL;
    ir_value *pm[2] = {cast ? cast->out[0] : NULL, mult ? mult->out[0] : NULL};
    ir_node *prod = mult ? add(e, "Mul", "scaled", pm, 2, 1, bias ? NULL : n->out[0]) : NULL;
    ir_value *ab[2] = {prod ? prod->out[0] : NULL, bias};
    if (!prod || (bias && !add(e, "Add", "bias", ab, 2, 1, n->out[0])))
        return OCT_EINTERNAL;
    to->i = IR_DT_FLOAT;
    return OCT_OK;
}

oct_status pass_dqmm_expand(ir_graph *g, oct_ctx *ctx)
{
    size_t n;
    ir_node **snapshot = ir_graph_nodes_copy(g, ctx, &n);
    if (!snapshot)
        return OCT_EINTERNAL;
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        ir_node *node = snapshot[i];
        if (node->op != IR_OP_DYNAMICQUANTIZEMATMUL || node->n_out < 1 || !node->out[0] ||
            node->n_in < 3 || !node->in[0] || !node->in[1] || !node->in[2])
            continue;
        ir_graph_remove_node(g, node);
        expander e = {ctx, g, node};
        oct_status st = expand(&e);
        if (st)
            return st;
        changed = true;
    }
    if (!changed)
        return OCT_OK;
    /* the new nodes went to the end of the list: restore topological
     * order, then type the new values */
    oct_status st = ctx->model ? ir_verify(ctx->model, ctx) : OCT_OK;
    return st ? st : pass_shape_infer(g, ctx);
}
