/*
 * qop_to_qdq.c: rewrites every QOperator node (the integer ops ONNX
 * Runtime's quantizer writes with QuantFormat.QOperator) into its QDQ
 * form, DequantizeLinear of each quantized input -> the float op ->
 * QuantizeLinear of the output with the node's own output scale and zero
 * point, so the float passes, `octet quantize --report` style analyses and
 * any tool that reads QDQ apply to such models:
 *   QLinearConv          -> DQ(x), DQ(w), DQ(B) -> Conv -> Q
 *   QLinearMatMul        -> DQ(a), DQ(b) -> MatMul -> Q
 *   QGemm                -> DQ(A), DQ(B), DQ(C) -> Gemm [-> Q]
 *   MatMulIntegerToFloat -> DQ(A), DQ(B) -> MatMul [-> Add(bias)]
 *   DynamicQuantizeMatMul
 *                        -> DQ(DynamicQuantizeLinear(A)), DQ(B) -> MatMul [-> Add(bias)]
 *   QLinearAdd / QLinearMul -> DQ(A), DQ(B) -> Add / Mul -> Q
 *   QLinearConcat        -> DQ(x_i)... -> Concat -> Q
 *   QLinearAveragePool / QLinearGlobalAveragePool -> DQ -> the pool -> Q
 *   QLinearSigmoid / QLinearLeakyRelu / QLinearSoftmax -> DQ -> the op -> Q
 * Weights with a scale per output channel become per-axis DQs (opset 13
 * and above); an int32 bias becomes a DQ whose scale is the float32
 * product x_scale * w_scale (per channel), the accumulator's scale, which
 * is what qdq_fuse requires to fuse it back.  The way back is qdq_fuse.
 *
 * Numerics: the QDQ graph computes in float between exact Q/DQ, so its
 * quantized outputs equal the integer op's except where the float result
 * rounds to the other side of a quantization boundary (one step); the
 * table ops (Sigmoid, LeakyRelu) dequantize, apply and quantize exactly
 * as their tables are built, up to the float function's last bit.
 *
 * Refused (OCT_EUNSUPPORTED, naming the node): an integer contrib op
 * Octet does not know (QLinearWhere, QLinearReduceMean, ...); scales
 * that are not
 * constants where a product must be formed (the bias), QGemm with alpha
 * other than 1, per-axis scales below opset 13, a QLinearSoftmax whose
 * opset attribute picks the other Softmax axis rule than the model's.
 */
#include <string.h>

#include "passes/passes.h"

/* A fresh float value named after base. */
static ir_value *fresh(oct_ctx *ctx, ir_graph *g, const char *base)
{
    const char *name = ir_graph_unique_name(ctx, g, base);
    return name ? ir_graph_value(ctx, g, name) : NULL;
}

/* Elements of a constant (or typed) value; -1 if unknown. */
static int64_t elems_of(const ir_value *v)
{
    if (v && v->init)
        return (int64_t)v->init->nelems;
    if (!v || !v->has_type || v->type.rank < 0)
        return -1;
    int64_t n = 1;
    for (int d = 0; d < v->type.rank; d++)
        n = v->type.dims[d].value < 0 ? -1 : n * v->type.dims[d].value;
    return n < 0 ? -1 : n;
}

typedef struct rewriter {
    oct_ctx *ctx;
    ir_graph *g;
    const ir_node *old;   /* the QOperator node (names, diagnostics) */
    int64_t opset;
} rewriter;

static oct_status refuse(const rewriter *r, const char *why)
{
    return oct_node_error(r->ctx, OCT_EUNSUPPORTED, r->old, "qop_to_qdq: %s %s", r->old->op_type,
                          why);
}

/* Adds `op` with n_in inputs and one output, named after the old node. */
static ir_node *add(const rewriter *r, const char *op, const char *suffix, int n_in)
{
    return ir_graph_add_node(r->ctx, r->g, op, "",
                             ir_sprintf(r->ctx, "%s%s", r->old->name ? r->old->name : "qop",
                                        suffix), n_in, 1);
}

/* DequantizeLinear(q, s, z?) with axis `axis` when s has more than one
 * element; returns its float output, NULL with *st set on failure. */
static ir_value *dq(const rewriter *r, ir_value *q, ir_value *s, ir_value *z, int axis,
                    oct_status *st)
{
    if (*st != OCT_OK)
        return NULL;
    if (!q || !s) {
        *st = oct_node_error(r->ctx, OCT_EINPUT, r->old, "qop_to_qdq: %s lacks a quantized "
                             "input or its scale", r->old->op_type);
        return NULL;
    }
    int64_t n = elems_of(s);
    bool per_axis = n != 1 && n != -1;
    if (per_axis && r->opset < 13) {
        *st = refuse(r, "has per-channel scales: their DequantizeLinear needs opset 13");
        return NULL;
    }
    ir_node *d = add(r, "DequantizeLinear", ir_sprintf(r->ctx, "_dq_%s", q->name), z ? 3 : 2);
    ir_value *y = d ? fresh(r->ctx, r->g, ir_sprintf(r->ctx, "%s_dequantized", q->name)) : NULL;
    ir_attr *a = d && per_axis ? ir_node_add_attr(r->ctx, d, "axis", IR_ATTR_INT) : NULL;
    if (!y || (per_axis && !a)) {
        *st = OCT_EINTERNAL;
        return NULL;
    }
    if (a)
        a->i = axis;
    d->in[0] = q;
    d->in[1] = s;
    if (z)
        d->in[2] = z;
    ir_node_set_output(d, 0, y);
    return y;
}

/* QuantizeLinear(yf, s, z?) writing y. */
static oct_status q_out(const rewriter *r, ir_value *yf, ir_value *s, ir_value *z, ir_value *y)
{
    ir_node *q = add(r, "QuantizeLinear", "_q", z ? 3 : 2);
    if (!q)
        return OCT_EINTERNAL;
    q->in[0] = yf;
    q->in[1] = s;
    if (z)
        q->in[2] = z;
    ir_node_set_output(q, 0, y);
    return OCT_OK;
}

/* Copies the old node's attributes to f, except those named in skip
 * (space-separated, each followed by a space). */
static oct_status copy_attrs(const rewriter *r, ir_node *f, const char *skip)
{
    ir_attr *a = r->old->n_attr ? ir_alloc_array(r->ctx, (size_t)r->old->n_attr, sizeof *a) : NULL;
    if (r->old->n_attr && !a)
        return OCT_EINTERNAL;
    int n = 0;
    for (int i = 0; i < r->old->n_attr; i++) {
        const char *name = r->old->attrs[i].name;
        const char *hit = skip ? strstr(skip, name) : NULL;
        if (hit && hit[strlen(name)] == ' ' && (hit == skip || hit[-1] == ' '))
            continue;
        a[n++] = r->old->attrs[i];
    }
    f->attrs = a;
    f->n_attr = n;
    return OCT_OK;
}

/* The float op writing a fresh value; its quantized output y gets a Q
 * from it when ys is given, else the op writes y itself. */
static oct_status float_op(const rewriter *r, const char *op, ir_value *const *in, int n_in,
                           const char *skip, ir_value *y, ir_value *ys, ir_value *yz)
{
    ir_node *f = add(r, op, ys ? "_float" : "", n_in);
    ir_value *yf = f && ys ? fresh(r->ctx, r->g, ir_sprintf(r->ctx, "%s_float", y->name)) : y;
    if (!f || !yf)
        return OCT_EINTERNAL;
    for (int i = 0; i < n_in; i++)
        f->in[i] = in[i];
    oct_status st = copy_attrs(r, f, skip);
    if (st != OCT_OK)
        return st;
    ir_node_set_output(f, 0, yf);
    return ys ? q_out(r, yf, ys, yz, y) : OCT_OK;
}

static ir_value *slot(const ir_node *n, int i)
{
    return i < n->n_in ? n->in[i] : NULL;
}

/* The int32 bias b dequantized with the accumulator's scale xs * ws
 * (float32 products, per channel when ws is), zero point 0. */
static ir_value *bias_dq(const rewriter *r, ir_value *b, ir_value *xs, ir_value *ws,
                         oct_status *st)
{
    if (*st != OCT_OK)
        return NULL;
    if (!xs->init || !ws->init || xs->init->dtype != IR_DT_FLOAT ||
        ws->init->dtype != IR_DT_FLOAT || xs->init->nelems != 1) {
        *st = refuse(r, "has a bias but no constant per-tensor input scale and constant "
                        "weight scale to form its scale");
        return NULL;
    }
    int64_t n = (int64_t)ws->init->nelems;
    ir_tensor *t = ir_tensor_new(r->ctx, IR_DT_FLOAT, n == 1 ? 0 : 1, &n);
    if (!t) {
        *st = OCT_EINTERNAL;
        return NULL;
    }
    float sx = ((const float *)xs->init->data)[0];
    for (int64_t i = 0; i < n; i++)
        ((float *)t->data)[i] = sx * ((const float *)ws->init->data)[i];
    ir_value *s = ir_graph_add_init(r->ctx, r->g, ir_sprintf(r->ctx, "%s_scale", b->name), t);
    if (!s) {
        *st = OCT_EINTERNAL;
        return NULL;
    }
    return dq(r, b, s, NULL, 0, st);
}

static oct_status conv(const rewriter *r, const ir_node *n, ir_value *y)
{
    oct_status st = OCT_OK;
    ir_value *in[3];
    in[0] = dq(r, slot(n, 0), slot(n, 1), slot(n, 2), 1, &st);
    in[1] = dq(r, slot(n, 3), slot(n, 4), slot(n, 5), 0, &st);
    in[2] = slot(n, 8) ? bias_dq(r, n->in[8], n->in[1], n->in[4], &st) : NULL;
    return st != OCT_OK ? st
                        : float_op(r, "Conv", in, in[2] ? 3 : 2, NULL, y, slot(n, 6), slot(n, 7));
}

/* The axis of B's output columns (per-column scales): the last. */
static int col_axis(const ir_value *b)
{
    int rank = b->init ? b->init->rank : b->has_type ? b->type.rank : 2;
    return rank > 0 ? rank - 1 : 0;
}

static oct_status qmatmul(const rewriter *r, const ir_node *n, ir_value *y)
{
    oct_status st = OCT_OK;
    ir_value *in[2];
    in[0] = dq(r, slot(n, 0), slot(n, 1), slot(n, 2), 1, &st);
    in[1] = slot(n, 3) ? dq(r, n->in[3], slot(n, 4), slot(n, 5), col_axis(n->in[3]), &st) : NULL;
    return st != OCT_OK ? st : float_op(r, "MatMul", in, 2, NULL, y, slot(n, 6), slot(n, 7));
}

/* QGemm: A, a_scale, a_zp, B, b_scale, b_zp, C?, y_scale?, y_zp?; the
 * output stays float without y_scale. */
static oct_status qgemm(const rewriter *r, const ir_node *n, ir_value *y)
{
    if (ir_attr_float(n, "alpha", 1.0f) != 1.0f)
        return refuse(r, "has alpha other than 1 (its bias scale then differs)");
    bool tb = ir_attr_int(n, "transB", 0) != 0;
    oct_status st = OCT_OK;
    ir_value *in[3];
    in[0] = dq(r, slot(n, 0), slot(n, 1), slot(n, 2), 1, &st);
    in[1] = dq(r, slot(n, 3), slot(n, 4), slot(n, 5), tb ? 0 : 1, &st);
    in[2] = slot(n, 6) ? bias_dq(r, n->in[6], n->in[1], n->in[4], &st) : NULL;
    return st != OCT_OK ? st
                        : float_op(r, "Gemm", in, in[2] ? 3 : 2, NULL, y, slot(n, 7), slot(n, 8));
}

/* MatMul of the two dequantized operands, plus a float bias when given,
 * writing y. */
static oct_status matmul_bias(const rewriter *r, ir_value *const *in, ir_value *bias, ir_value *y)
{
    if (!bias)
        return float_op(r, "MatMul", in, 2, NULL, y, NULL, NULL);
    oct_status st;
    ir_value *mm = fresh(r->ctx, r->g, ir_sprintf(r->ctx, "%s_nobias", y->name));
    if (!mm || (st = float_op(r, "MatMul", in, 2, NULL, mm, NULL, NULL)) != OCT_OK)
        return mm ? st : OCT_EINTERNAL;
    ir_node *a = add(r, "Add", "_bias", 2);
    if (!a)
        return OCT_EINTERNAL;
    a->in[0] = mm;
    a->in[1] = bias;
    ir_node_set_output(a, 0, y);
    return OCT_OK;
}

/* MatMulIntegerToFloat: A, B, a_scale, b_scale, a_zp?, b_zp?, bias? */
static oct_status mm_to_float(const rewriter *r, const ir_node *n, ir_value *y)
{
    oct_status st = OCT_OK;
    ir_value *in[2];
    in[0] = dq(r, slot(n, 0), slot(n, 2), slot(n, 4), 1, &st);
    in[1] = slot(n, 1) ? dq(r, n->in[1], slot(n, 3), slot(n, 5), col_axis(n->in[1]), &st) : NULL;
    return st != OCT_OK ? st : matmul_bias(r, in, slot(n, 6), y);
}

/* DynamicQuantizeMatMul (what quantize_dynamic writes): A (float), B,
 * b_scale, b_zp?, bias?: A goes through DynamicQuantizeLinear (uint8, its
 * scale and zero point computed at run time, as ONNX Runtime quantizes
 * it) and a DQ of its three outputs. */
static oct_status dyn_qmatmul(const rewriter *r, const ir_node *n, ir_value *y)
{
    ir_value *a = slot(n, 0);
    if (!a || !slot(n, 1) || !slot(n, 2))
        return oct_node_error(r->ctx, OCT_EINPUT, n, "qop_to_qdq: DynamicQuantizeMatMul needs "
                              "A, B and b_scale");
    ir_node *d = ir_graph_add_node(r->ctx, r->g, "DynamicQuantizeLinear", "",
                                   ir_sprintf(r->ctx, "%s_quantize_a", n->name ? n->name : "qop"),
                                   1, 3);
    static const char *const what[3] = {"quantized", "scale", "zero_point"};
    ir_value *out[3];
    for (int i = 0; i < 3; i++)
        if (!d || !(out[i] = fresh(r->ctx, r->g, ir_sprintf(r->ctx, "%s_%s", a->name, what[i]))))
            return OCT_EINTERNAL;
    d->in[0] = a;
    for (int i = 0; i < 3; i++)
        ir_node_set_output(d, i, out[i]);
    oct_status st = OCT_OK;
    ir_value *in[2];
    in[0] = dq(r, out[0], out[1], out[2], 1, &st);
    in[1] = dq(r, n->in[1], n->in[2], slot(n, 3), col_axis(n->in[1]), &st);
    return st != OCT_OK ? st : matmul_bias(r, in, slot(n, 4), y);
}

static oct_status qbinary(const rewriter *r, const ir_node *n, ir_value *y)
{
    oct_status st = OCT_OK;
    ir_value *in[2];
    in[0] = dq(r, slot(n, 0), slot(n, 1), slot(n, 2), 1, &st);
    in[1] = dq(r, slot(n, 3), slot(n, 4), slot(n, 5), 1, &st);
    return st != OCT_OK ? st : float_op(r, n->op == IR_OP_QLINEARADD ? "Add" : "Mul", in, 2,
                                        NULL, y, slot(n, 6), slot(n, 7));
}

static oct_status qconcat(const rewriter *r, const ir_node *n, ir_value *y)
{
    int k = (n->n_in - 2) / 3;
    if (k < 1 || n->n_in != 2 + 3 * k)
        return oct_node_error(r->ctx, OCT_EINPUT, n, "qop_to_qdq: QLinearConcat has %d "
                              "inputs, not 2 + 3 per input", n->n_in);
    ir_value **in = ir_alloc_array(r->ctx, (size_t)k, sizeof *in);
    if (!in)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    for (int i = 0; i < k; i++)
        in[i] = dq(r, n->in[2 + 3 * i], n->in[3 + 3 * i], n->in[4 + 3 * i], 1, &st);
    return st != OCT_OK ? st : float_op(r, "Concat", in, k, NULL, y, n->in[0], n->in[1]);
}

/* The one-input ops: X, x_scale, x_zp?, y_scale, y_zp?. */
static oct_status unary(const rewriter *r, const ir_node *n, ir_value *y, const char *op,
                        const char *skip)
{
    oct_status st = OCT_OK;
    ir_value *x = dq(r, slot(n, 0), slot(n, 1), slot(n, 2), 1, &st);
    return st != OCT_OK ? st : float_op(r, op, &x, 1, skip, y, slot(n, 3), slot(n, 4));
}

static oct_status qsoftmax(const rewriter *r, const ir_node *n, ir_value *y)
{
    /* Softmax's axis rule changed at opset 13; the float op follows the
     * model's opset, the contrib op its own attribute */
    int64_t own = ir_attr_int(n, "opset", 13);
    if ((own < 13) != (r->opset < 13))
        return refuse(r, "has an opset attribute whose Softmax axis rule differs from the "
                         "model's opset");
    return unary(r, n, y, "Softmax", "opset ");
}

static oct_status rewrite(const rewriter *r, const ir_node *n, ir_value *y)
{
    switch (n->op) {
    case IR_OP_QLINEARCONV: return conv(r, n, y);
    case IR_OP_QLINEARMATMUL: return qmatmul(r, n, y);
    case IR_OP_QGEMM: return qgemm(r, n, y);
    case IR_OP_MATMULINTEGERTOFLOAT: return mm_to_float(r, n, y);
    case IR_OP_DYNAMICQUANTIZEMATMUL: return dyn_qmatmul(r, n, y);
    case IR_OP_QLINEARADD: case IR_OP_QLINEARMUL: return qbinary(r, n, y);
    case IR_OP_QLINEARCONCAT: return qconcat(r, n, y);
    case IR_OP_QLINEARAVERAGEPOOL: return unary(r, n, y, "AveragePool", "channels_last ");
    case IR_OP_QLINEARGLOBALAVERAGEPOOL:
        return unary(r, n, y, "GlobalAveragePool", "channels_last ");
    case IR_OP_QLINEARSIGMOID: return unary(r, n, y, "Sigmoid", NULL);
    case IR_OP_QLINEARLEAKYRELU: return unary(r, n, y, "LeakyRelu", NULL);
    case IR_OP_QLINEARSOFTMAX: return qsoftmax(r, n, y);
    default: return OCT_OK;
    }
}

static bool is_qop(ir_op op)
{
    switch (op) {
    case IR_OP_QLINEARCONV: case IR_OP_QLINEARMATMUL: case IR_OP_QGEMM:
    case IR_OP_MATMULINTEGERTOFLOAT: case IR_OP_QLINEARADD: case IR_OP_QLINEARMUL:
    case IR_OP_DYNAMICQUANTIZEMATMUL: case IR_OP_QLINEARCONCAT: case IR_OP_QLINEARAVERAGEPOOL:
    case IR_OP_QLINEARGLOBALAVERAGEPOOL: case IR_OP_QLINEARSIGMOID:
    case IR_OP_QLINEARLEAKYRELU: case IR_OP_QLINEARSOFTMAX:
        return true;
    default:
        return false;
    }
}

/* An integer op of ONNX Runtime's QOperator format that Octet does not
 * know (QLinearReduceMean, QLinearWhere, ...): the
 * pass must not leave one behind silently. */
static bool unknown_qop(const ir_node *n)
{
    return n->op == IR_OP_UNKNOWN && n->op_type &&
           (!strncmp(n->op_type, "QLinear", 7) || !strncmp(n->op_type, "DynamicQuantize", 15) ||
            !strcmp(n->op_type, "QAttention") || !strcmp(n->op_type, "QEmbedLayerNormalization"));
}

oct_status pass_qop_to_qdq(ir_graph *g, oct_ctx *ctx)
{
    int64_t opset = ctx->model ? ir_model_opset(ctx->model, "") : 0;
    size_t n;
    ir_node **snapshot = ir_graph_nodes_copy(g, ctx, &n);
    if (!snapshot)
        return OCT_EINTERNAL;
    bool changed = false;
    oct_status st = OCT_OK;
    for (size_t i = 0; st == OCT_OK && i < n; i++) {
        ir_node *node = snapshot[i];
        if (unknown_qop(node))
            return oct_node_error(ctx, OCT_EUNSUPPORTED, node, "qop_to_qdq: unsupported "
                                  "QOperator op '%s' (domain '%s')", node->op_type,
                                  node->domain ? node->domain : "");
        if (!is_qop(node->op) || node->n_out < 1 || !node->out[0])
            continue;
        rewriter r = {ctx, g, node, opset};
        ir_value *y = node->out[0];
        ir_graph_remove_node(g, node);
        st = rewrite(&r, node, y);
        changed = true;
    }
    if (st != OCT_OK || !changed)
        return st;
    /* the new nodes went to the end of the list: restore topological order */
    return ctx->model ? ir_verify(ctx->model, ctx) : OCT_OK;
}
