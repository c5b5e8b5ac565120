/*
 * mnb_unpack.c: the compiler's first lowering of MatMulNBits (com.microsoft):
 * a MatMulNBits whose B, scales, zero points and g_idx are constants becomes
 * a MatMul followed by Add(bias) when it has one, its weight either
 *   - for bits = 4 with block_size 16, 32, 64 or 128, no g_idx and uint8
 *     zero points (or none), a DequantizeLinear of a UINT4 [K, N]
 *     initializer (block_size along axis 0, scales [k_blocks, N], zero
 *     points UINT4 [k_blocks, N], 8 where the node has none): the form
 *     `octet quantize --weights-only` writes, which the backend compiles onto
 *     the packed INT4 kernel (lower_wogemm.c: the weight stays 4-bit), or
 *     through the DequantizeLinear loop where that kernel does not apply;
 *     (q - z) * s is the same product either way;
 *   - otherwise the float32 [K, N] initializer those constants dequantize
 *     to (src/ops/matmulnbits.c, the interpreter's own function, so both
 *     read the packed bytes one way), compiled as a float MatMul with a
 *     constant weight (the packed sgemm kernels), four to sixteen times the
 *     packed bytes.
 * An accuracy_level 4 node in the 4-bit form (ops_mnb_act_int8) leaves its
 * MatMul marked act_int8: the backend must put it on the int8-activation
 * kernel, the arithmetic the interpreter runs for that node (per row when
 * pass mnb_int8_rows marked the node).
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

/* Code j of a packed byte string, low bits first (4 bits). */
static unsigned nibble_at(const uint8_t *p, int64_t j)
{
    return (p[j / 2] >> (4 * (j & 1))) & 15u;
}

static void put_nibble(uint8_t *p, int64_t j, unsigned v)
{
    p[j / 2] |= (uint8_t)(v << (4 * (j & 1)));
}

/* The 4-bit blocked form the INT4 kernel takes (see the file comment). */
static bool int4_form(const ir_node *n, const ops_mnb *geo)
{
    const ir_tensor *zp = n->n_in > 3 && n->in[3] ? n->in[3]->init : NULL;
    bool g_idx = n->n_in > 4 && n->in[4];
    int64_t bs = geo->block_size;
    return geo->bits == 4 && !g_idx && (!zp || zp->dtype == IR_DT_UINT8) &&
           (bs == 16 || bs == 32 || bs == 64 || bs == 128);
}

/* A DequantizeLinear of UINT4 codes [K, N] inserted before node `at`;
 * returns its float [K, N] output (NULL: out of memory). */
static ir_value *blocked_dq(ir_graph *g, size_t at, oct_ctx *ctx, const ops_mnb *geo)
{
    ir_node *n = g->nodes[at];
    const ir_tensor *bt = n->in[1]->init, *st = n->in[2]->init;
    const ir_tensor *zt = n->n_in > 3 && n->in[3] ? n->in[3]->init : NULL;
    int64_t K = geo->K, N = geo->N, nb = geo->k_blocks, bs = geo->block_size;
    int64_t qd[2] = {K, N}, sd[2] = {nb, N};
    ir_tensor *q = ir_tensor_new(ctx, IR_DT_UINT4, 2, qd);
    ir_tensor *s = ir_tensor_new(ctx, IR_DT_FLOAT, 2, sd);
    ir_tensor *z = ir_tensor_new(ctx, IR_DT_UINT4, 2, sd);
    if (!q || !s || !z)
        return NULL;
    const uint8_t *bq = bt->data;
    const float *sc = st->data;
    for (int64_t col = 0; col < N; col++)
        for (int64_t b = 0; b < nb; b++) {
            ((float *)s->data)[b * N + col] = sc[col * nb + b];
            unsigned zv = zt ? nibble_at((const uint8_t *)zt->data + col * geo->zp_row, b) : 8u;
            put_nibble(z->data, b * N + col, zv);
            for (int64_t j = 0; j < bs && b * bs + j < K; j++)
                put_nibble(q->data, (b * bs + j) * N + col,
                           nibble_at(bq + (col * nb + b) * geo->blob, j));
        }
    const char *base = n->in[1]->name;
    ir_value *qv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_u4", base), q);
    ir_value *sv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_u4_scale", base), s);
    ir_value *zv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_u4_zero", base), z);
    const char *wname = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_dq", base));
    const char *dname = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_dq", n->name));
    ir_value *w = wname ? ir_graph_value(ctx, g, wname) : NULL;
    ir_node *dq = w && dname && qv && sv && zv
                      ? ir_graph_add_node(ctx, g, "DequantizeLinear", "", dname, 3, 1)
                      : NULL;
    ir_dim *dims = dq ? ir_alloc_array(ctx, 2, sizeof *dims) : NULL;
    ir_attr *axis = dims ? ir_node_add_attr(ctx, dq, "axis", IR_ATTR_INT) : NULL;
    ir_attr *block = axis ? ir_node_add_attr(ctx, dq, "block_size", IR_ATTR_INT) : NULL;
    if (!block)
        return NULL;
    axis->i = 0;
    block->i = bs;
    dq->in[0] = qv;
    dq->in[1] = sv;
    dq->in[2] = zv;
    dims[0] = (ir_dim){.value = K};
    dims[1] = (ir_dim){.value = N};
    w->has_type = true;
    w->type = (ir_type){.dtype = IR_DT_FLOAT, .rank = 2, .dims = dims, .has_elem_type = true};
    ir_node_set_output(dq, 0, w);
    move_last_to(g, at);
    return w;
}

/* The float32 weight the constants dequantize to, as an initializer. */
static oct_status float_weight(ir_graph *g, ir_node *n, oct_ctx *ctx, const ops_mnb *geo,
                               ir_value **out)
{
    int64_t dims[2] = {geo->K, geo->N};
    ir_tensor *w = ir_tensor_new(ctx, IR_DT_FLOAT, 2, dims);
    if (!w)
        return OCT_EINTERNAL;
    const ir_tensor *zp = n->n_in > 3 && n->in[3] ? n->in[3]->init : NULL;
    const ir_tensor *gi = n->n_in > 4 && n->in[4] ? n->in[4]->init : NULL;
    oct_status st = ops_mnb_dequant(ctx, n, geo, n->in[1]->init, n->in[2]->init, zp, gi, w->data);
    if (st)
        return st;
    *out = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_unpacked", n->in[1]->name), w);
    return *out ? OCT_OK : OCT_EINTERNAL;
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
    ir_value *wv = NULL;
    const ir_tensor *zp = n->n_in > 3 && n->in[3] ? n->in[3]->init : NULL;
    bool act_int8 = ops_mnb_act_int8(n, &geo, zp, n->n_in > 4 && n->in[4]);
    bool rows = ops_mnb_int8_rows(n, &geo, zp, n->n_in > 4 && n->in[4]);
    if (int4_form(n, &geo)) {
        if (!(wv = blocked_dq(g, at, ctx, &geo)))
            return OCT_EINTERNAL;
        at++; /* the DequantizeLinear now stands before n */
    } else if ((st = float_weight(g, n, ctx, &geo, &wv))) {
        return st;
    }
    ir_value *bias = n->n_in > 5 ? n->in[5] : NULL;
    if (!wv || !ir_node_set_inputs(ctx, n, 2))
        return OCT_EINTERNAL;
    n->in[1] = wv;
    n->op = IR_OP_MATMUL;
    n->op_type = "MatMul";
    n->domain = "";
    n->n_attr = 0;
    /* the compiler's int8 kernel, as the interpreter (mnb_int8_rows may
     * have chosen the per-row arithmetic) */
    n->act_int8 = rows ? IR_INT8_ROWS : act_int8 ? IR_INT8_BLOCKS : IR_INT8_NONE;
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
        size_t before = g->n_nodes;
        oct_status st = unpack(g, i, ctx);
        if (st)
            return st;
        i += g->n_nodes - before; /* past the nodes inserted before it */
    }
    return OCT_OK;
}
