/*
 * mnb_unpack.c: the compiler's first lowering of MatMulNBits (com.microsoft):
 * a MatMulNBits whose B, scales, zero points and g_idx are constants becomes
 * MatMul(A, W) with W the float32 [K, N] initializer those constants
 * dequantize to (src/ops/matmulnbits.c, the interpreter's own function, so
 * both read the packed bytes one way), followed by Add(bias) when it has
 * one.  The backend then compiles a float MatMul with a constant weight
 * (the packed sgemm kernels).  The weight is stored in float32, four to
 * sixteen times the packed bytes: a fused unpacking kernel is planned.
 * A MatMulNBits with a non-constant weight stays, and does not compile.
 */
#include <string.h>

#include "ops/ops.h"
#include "passes/passes.h"

static bool is_const(const ir_node *n, int i)
{
    return i >= n->n_in || !n->in[i] || n->in[i]->init;
}

/* Moves the last node of g to position `at`. */
static void move_last_to(ir_graph *g, size_t at)
{
    ir_node *last = g->nodes[g->n_nodes - 1];
    memmove(g->nodes + at + 1, g->nodes + at, (g->n_nodes - 1 - at) * sizeof *g->nodes);
    g->nodes[at] = last;
}

static oct_status unpack(ir_graph *g, size_t at, oct_ctx *ctx)
{
    ir_node *n = g->nodes[at];
    ops_shape in[6];
    for (int i = 0; i < 6; i++) {
        in[i].rank = -1;
        in[i].dtype = IR_DT_UNDEFINED;
        if (i > 0 && i < n->n_in && n->in[i])
            ops_shape_of(n->in[i]->init, &in[i]);
    }
    ops_mnb geo;
    oct_status st = ops_mnb_check(ctx, n, n->n_in < 6 ? n->n_in : 6, in, &geo);
    if (st)
        return st;
    int64_t dims[2] = {geo.K, geo.N};
    ir_tensor *w = ir_tensor_new(ctx, IR_DT_FLOAT, 2, dims);
    if (!w)
        return OCT_EINTERNAL;
    const ir_tensor *zp = n->n_in > 3 && n->in[3] ? n->in[3]->init : NULL;
    const ir_tensor *gi = n->n_in > 4 && n->in[4] ? n->in[4]->init : NULL;
    st = ops_mnb_dequant(ctx, n, &geo, n->in[1]->init, n->in[2]->init, zp, gi, w->data);
    if (st)
        return st;
    ir_value *wv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_unpacked", n->in[1]->name), w);
    ir_value *bias = n->n_in > 5 ? n->in[5] : NULL;
    if (!wv || !ir_node_set_inputs(ctx, n, 2))
        return OCT_EINTERNAL;
    n->in[1] = wv;
    n->op = IR_OP_MATMUL;
    n->op_type = "MatMul";
    n->domain = "";
    n->n_attr = 0;
    if (!bias)
        return OCT_OK;
    ir_value *y = n->out[0];
    const char *tname = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_nobias", y->name));
    ir_value *t = tname ? ir_graph_value(ctx, g, tname) : NULL;
    const char *aname = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_bias", n->name));
    ir_node *add = t && aname ? ir_graph_add_node(ctx, g, "Add", "", aname, 2, 1) : NULL;
    if (!add)
        return OCT_EINTERNAL;
    t->has_type = y->has_type;
    t->type = y->type;
    ir_node_set_output(n, 0, t);
    add->in[0] = t;
    add->in[1] = bias;
    ir_node_set_output(add, 0, y);
    move_last_to(g, at + 1);
    return OCT_OK;
}

oct_status pass_mnb_unpack(ir_graph *g, oct_ctx *ctx)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->op != IR_OP_MATMULNBITS || !n->in[0])
            continue;
        bool consts = true;
        for (int k = 1; k < n->n_in && k < 5; k++)
            consts &= is_const(n, k);
        if (!consts)
            continue;
        oct_status st = unpack(g, i, ctx);
        if (st)
            return st;
    }
    return OCT_OK;
}
