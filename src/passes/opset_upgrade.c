/*
 * opset_upgrade.c: raises the default-domain opset of a model, rewriting the
 * nodes whose op changed meaning or signature on the way.  Quantization
 * needs it: per-axis QuantizeLinear exists from opset 13, float8 from 19,
 * blocked scales from 21, and a model may be older (mnist-8 is opset 8).
 *
 * Each rewrite keeps the node's outputs bit for bit.  An op this pass does
 * not know is refused (OCT_EUNSUPPORTED): its schema may have changed and a
 * silent upgrade could change the model's results.  The list of ops whose
 * signature is the same across opsets 1..25 for our purposes is the
 * `unchanged` table below; the rewrites are the functions after it.
 */
#include <string.h>

#include "ir/ir.h"
#include "passes/quant.h"

/* Ops whose attributes and inputs mean the same in every opset from the
 * first one Octet loads to 25, apart from type additions and the legacy
 * `consumed_inputs` attribute (dropped everywhere). */
static const ir_op unchanged[] = {
    IR_OP_SQRT, IR_OP_EXP, IR_OP_LOG, IR_OP_ERF, IR_OP_NEG, IR_OP_ABS, IR_OP_RECIPROCAL,
    IR_OP_RELU, IR_OP_LEAKYRELU, IR_OP_SIGMOID, IR_OP_HARDSIGMOID,
    IR_OP_HARDSWISH, IR_OP_TANH, IR_OP_GELU, IR_OP_MAX, IR_OP_MIN, IR_OP_SUM,
    IR_OP_WHERE, IR_OP_PRELU, IR_OP_CONV, IR_OP_CONVTRANSPOSE, IR_OP_MATMUL,
    IR_OP_INSTANCENORM, IR_OP_LAYERNORM, IR_OP_LRN, IR_OP_MAXPOOL,
    IR_OP_AVERAGEPOOL, IR_OP_GLOBALAVERAGEPOOL, IR_OP_GLOBALMAXPOOL,
    IR_OP_FLATTEN, IR_OP_TRANSPOSE, IR_OP_GATHER, IR_OP_IDENTITY,
    IR_OP_CONSTANT, IR_OP_CONSTANTOFSHAPE, IR_OP_SHAPE, IR_OP_QUANTIZELINEAR,
    IR_OP_DEQUANTIZELINEAR, IR_OP_DYNAMICQUANTIZELINEAR, IR_OP_QLINEARCONV,
    IR_OP_QLINEARMATMUL, IR_OP_MATMULINTEGER, IR_OP_CONVINTEGER,
};

typedef struct upgrade {
    oct_ctx *ctx;
    ir_graph *g;
    int64_t from, to;
} upgrade;

/* Adds a 1-D INT64 initializer holding vals and returns its value. */
static ir_value *int64_const(upgrade *u, const char *base, const int64_t *vals,
                             int64_t n)
{
    ir_tensor *t = ir_tensor_new(u->ctx, IR_DT_INT64, 1, &n);
    if (!t)
        return NULL;
    if (n)
        memcpy(t->data, vals, (size_t)n * sizeof *vals);
    return ir_graph_add_init(u->ctx, u->g, base, t);
}

/* Adds a scalar initializer of the given float dtype (FLOAT, DOUBLE). */
static ir_value *float_scalar(upgrade *u, const char *base, ir_dtype dt,
                              double v)
{
    ir_tensor *t = ir_tensor_new(u->ctx, dt, 0, NULL);
    if (!t)
        return NULL;
    if (dt == IR_DT_DOUBLE)
        *(double *)t->data = v;
    else
        *(float *)t->data = (float)v;
    return ir_graph_add_init(u->ctx, u->g, base, t);
}

static const char *base_name(upgrade *u, const ir_node *n, const char *what)
{
    char label[64];
    return ir_sprintf(u->ctx, "%s_%s", ir_node_label(n, label, sizeof label), what);
}

/* Moves an INTS attribute into input slot `slot` as an INT64 tensor
 * (creating the slot); absent attribute leaves the slot empty. */
static oct_status ints_attr_to_input(upgrade *u, ir_node *n, const char *attr,
                                     int slot)
{
    const ir_attr *a = ir_node_attr(n, attr);
    if (n->n_in <= slot && !ir_node_set_inputs(u->ctx, n, slot + 1))
        return OCT_EINTERNAL;
    if (!a)
        return OCT_OK;
    ir_value *v = int64_const(u, base_name(u, n, attr), a->ints, (int64_t)a->n);
    if (!v)
        return OCT_EINTERNAL;
    n->in[slot] = v;
    ir_node_remove_attr(n, attr);
    return OCT_OK;
}

/* Trims trailing empty inputs so optional inputs stay omitted. */
static void trim_inputs(ir_node *n)
{
    while (n->n_in > 0 && !n->in[n->n_in - 1])
        n->n_in--;
}

static oct_status unsupported(upgrade *u, const ir_node *n, const char *why)
{
    return oct_node_error(u->ctx, OCT_EUNSUPPORTED, n,
                          "cannot raise opset %lld to %lld: %s",
                          (long long)u->from, (long long)u->to, why);
}

/* Legacy broadcasting (opset < 7: broadcast=1 with optional axis) equals
 * numpy broadcasting when B lines up with A's trailing dims. */
static oct_status up_binary(upgrade *u, ir_node *n)
{
    const ir_attr *axis = ir_node_attr(n, "axis");
    if (axis && n->in[0] && n->in[1]) {
        int ra = n->in[0]->type.rank, rb = n->in[1]->type.rank;
        if (ra < 0 || rb < 0 || axis->i != (axis->i < 0 ? -rb : ra - rb))
            return unsupported(u, n, "legacy broadcast with a non-trailing axis");
    }
    ir_node_remove_attr(n, "broadcast");
    ir_node_remove_attr(n, "axis");
    return OCT_OK;
}

static oct_status up_batchnorm(upgrade *u, ir_node *n)
{
    if (ir_attr_int(n, "spatial", 1) != 1)
        return unsupported(u, n, "BatchNormalization with spatial=0");
    ir_node_remove_attr(n, "spatial");
    ir_node_remove_attr(n, "is_test");
    return OCT_OK;
}

/* Softmax before 13 flattens to 2-D at `axis` (default 1); from 13 it
 * normalizes along one axis (default -1).  Same result when every dim after
 * the axis is 1 or the axis is the last one; otherwise Flatten, Softmax on
 * axis 1, Reshape back. */
static oct_status up_softmax(upgrade *u, ir_node *n)
{
    if (u->from >= 13 || u->to < 13)
        return OCT_OK;
    const ir_value *x = n->in[0];
    int rank = x ? x->type.rank : -1;
    if (rank < 0)
        return unsupported(u, n, "Softmax input rank unknown");
    int64_t axis = ir_attr_int(n, "axis", 1);
    if (axis < 0)
        axis += rank;
    if (axis < 0 || axis > rank)
        return oct_node_error(u->ctx, OCT_EINPUT, n, "axis out of range");
    bool trailing_ones = true;
    for (int i = (int)axis + 1; i < rank; i++)
        trailing_ones &= x->type.dims[i].value == 1;
    ir_node_remove_attr(n, "axis");
    ir_attr *a = ir_node_add_attr(u->ctx, n, "axis", IR_ATTR_INT);
    if (!a)
        return OCT_EINTERNAL;
    if (axis == rank || trailing_ones) {
        a->i = axis == rank ? rank - 1 : axis;
        return OCT_OK;
    }
    /* Flatten -> Softmax(axis=1) -> Reshape(original dims). */
    int64_t dims[64];
    if (rank > 64)
        return unsupported(u, n, "Softmax input rank above 64");
    for (int i = 0; i < rank; i++) {
        dims[i] = x->type.dims[i].value;
        if (dims[i] < 0)
            return unsupported(u, n, "Softmax over several dims of unknown size");
    }
    a->i = 1;
    oct_ctx *ctx = u->ctx;
    ir_node *flat = ir_graph_add_node(ctx, u->g, "Flatten", "",
                                      base_name(u, n, "flatten"), 1, 1);
    ir_node *reshape = ir_graph_add_node(ctx, u->g, "Reshape", "",
                                         base_name(u, n, "reshape"), 2, 1);
    ir_value *flat_out = ir_graph_value(ctx, u->g,
        ir_graph_unique_name(ctx, u->g, base_name(u, n, "flat")));
    ir_value *soft_out = ir_graph_value(ctx, u->g,
        ir_graph_unique_name(ctx, u->g, base_name(u, n, "flat_softmax")));
    ir_value *shape = int64_const(u, base_name(u, n, "shape"), dims, rank);
    if (!flat || !reshape || !flat_out || !soft_out || !shape)
        return OCT_EINTERNAL;
    ir_attr *fa = ir_node_add_attr(ctx, flat, "axis", IR_ATTR_INT);
    if (!fa)
        return OCT_EINTERNAL;
    fa->i = axis;
    ir_value *y = n->out[0];
    flat->in[0] = n->in[0];
    ir_node_set_output(flat, 0, flat_out);
    n->in[0] = flat_out;
    ir_node_set_output(n, 0, soft_out);
    reshape->in[0] = soft_out;
    reshape->in[1] = shape;
    ir_node_set_output(reshape, 0, y);
    return OCT_OK;
}

static oct_status up_reshape(upgrade *u, ir_node *n)
{
    if (u->from >= 5)
        return OCT_OK;
    return ints_attr_to_input(u, n, "shape", 1);
}

/* axes attribute -> input (Squeeze/Unsqueeze/ReduceSum at 13, the other
 * reductions at 18). */
static oct_status up_axes(upgrade *u, ir_node *n, int64_t since)
{
    if (u->from >= since || u->to < since)
        return OCT_OK;
    oct_status st = ints_attr_to_input(u, n, "axes", 1);
    trim_inputs(n);
    return st;
}

static oct_status up_split(upgrade *u, ir_node *n)
{
    if (u->from < 13 && u->to >= 13) {
        oct_status st = ints_attr_to_input(u, n, "split", 1);
        if (st)
            return st;
        trim_inputs(n);
    }
    if (u->from < 18 && u->to >= 18 && n->n_in < 2) {
        ir_attr *a = ir_node_add_attr(u->ctx, n, "num_outputs", IR_ATTR_INT);
        if (!a)
            return OCT_EINTERNAL;
        a->i = n->n_out;
    }
    return OCT_OK;
}

static oct_status up_clip(upgrade *u, ir_node *n)
{
    if (u->from >= 11 || u->to < 11)
        return OCT_OK;
    const ir_attr *lo = ir_node_attr(n, "min"), *hi = ir_node_attr(n, "max");
    ir_dtype dt = n->in[0] ? n->in[0]->type.dtype : IR_DT_UNDEFINED;
    if ((lo || hi) && dt != IR_DT_FLOAT && dt != IR_DT_DOUBLE)
        return unsupported(u, n, "Clip bounds on a non-float input");
    if (!ir_node_set_inputs(u->ctx, n, 3))
        return OCT_EINTERNAL;
    if (lo && !(n->in[1] = float_scalar(u, base_name(u, n, "min"), dt, lo->f)))
        return OCT_EINTERNAL;
    if (hi && !(n->in[2] = float_scalar(u, base_name(u, n, "max"), dt, hi->f)))
        return OCT_EINTERNAL;
    ir_node_remove_attr(n, "min");
    ir_node_remove_attr(n, "max");
    trim_inputs(n);
    return OCT_OK;
}

static oct_status up_pad(upgrade *u, ir_node *n)
{
    if (u->from >= 11 || u->to < 11)
        return OCT_OK;
    const ir_attr *pads = ir_node_attr(n, "pads");
    if (!pads)
        pads = ir_node_attr(n, "paddings");
    const ir_attr *value = ir_node_attr(n, "value");
    if (!pads)
        return oct_node_error(u->ctx, OCT_EINPUT, n, "Pad without pads");
    ir_dtype dt = n->in[0] ? n->in[0]->type.dtype : IR_DT_UNDEFINED;
    if (value && value->f != 0 && dt != IR_DT_FLOAT && dt != IR_DT_DOUBLE)
        return unsupported(u, n, "Pad value on a non-float input");
    if (!ir_node_set_inputs(u->ctx, n, 3))
        return OCT_EINTERNAL;
    n->in[1] = int64_const(u, base_name(u, n, "pads"), pads->ints, (int64_t)pads->n);
    if (!n->in[1])
        return OCT_EINTERNAL;
    if (value && value->f != 0 &&
        !(n->in[2] = float_scalar(u, base_name(u, n, "value"), dt, value->f)))
        return OCT_EINTERNAL;
    ir_node_remove_attr(n, "pads");
    ir_node_remove_attr(n, "paddings");
    ir_node_remove_attr(n, "value");
    trim_inputs(n);
    return OCT_OK;
}

static oct_status up_slice(upgrade *u, ir_node *n)
{
    if (u->from >= 10 || u->to < 10)
        return OCT_OK;
    static const char *const attrs[] = {"starts", "ends", "axes"};
    for (int i = 0; i < 3; i++) {
        oct_status st = ints_attr_to_input(u, n, attrs[i], i + 1);
        if (st)
            return st;
    }
    trim_inputs(n);
    return OCT_OK;
}

static oct_status up_dropout(upgrade *u, ir_node *n)
{
    ir_node_remove_attr(n, "is_test");
    if (u->from >= 12 || u->to < 12)
        return OCT_OK;
    const ir_attr *ratio = ir_node_attr(n, "ratio");
    if (ratio) {
        ir_dtype dt = n->in[0] ? n->in[0]->type.dtype : IR_DT_FLOAT;
        if (!ir_node_set_inputs(u->ctx, n, 2) ||
            !(n->in[1] = float_scalar(u, base_name(u, n, "ratio"),
                                      dt == IR_DT_DOUBLE ? dt : IR_DT_FLOAT,
                                      ratio->f)))
            return OCT_EINTERNAL;
        ir_node_remove_attr(n, "ratio");
    }
    return OCT_OK;
}

static oct_status up_cast(upgrade *u, ir_node *n)
{
    const ir_attr *to = ir_node_attr(n, "to");
    if (!to || to->type != IR_ATTR_STRING)
        return OCT_OK;
    char name[32] = "";
    memcpy(name, to->s.data, to->s.len < sizeof name - 1 ? to->s.len : sizeof name - 1);
    int dt = 0;
    for (int d = 1; d < IR_DT_COUNT; d++)
        if (strcmp(ir_dtype_name(d), name) == 0)
            dt = d;
    if (!dt)
        return oct_node_error(u->ctx, OCT_EINPUT, n, "unknown Cast type '%s'", name);
    ir_node_remove_attr(n, "to");
    ir_attr *a = ir_node_add_attr(u->ctx, n, "to", IR_ATTR_INT);
    if (!a)
        return OCT_EINTERNAL;
    a->i = dt;
    return OCT_OK;
}

static oct_status up_concat(upgrade *u, ir_node *n)
{
    if (ir_node_attr(n, "axis"))
        return OCT_OK;
    ir_attr *a = ir_node_add_attr(u->ctx, n, "axis", IR_ATTR_INT);
    if (!a)
        return OCT_EINTERNAL;
    a->i = 1; /* the opset 1-3 default */
    return OCT_OK;
}

static oct_status up_gemm(upgrade *u, ir_node *n)
{
    ir_node_remove_attr(n, "broadcast");
    return OCT_OK;
}

/* RNN, GRU, LSTM (issue 19): the same equations in every opset; opset 1's
 * output_sequence only said whether Y may be omitted, which later opsets
 * say by an empty output name, so it goes.  GRU before opset 3 computes
 * what linear_before_reset=0, the later default, computes. */
static oct_status up_rnn(upgrade *u, ir_node *n)
{
    (void)u;
    ir_node_remove_attr(n, "output_sequence");
    return OCT_OK;
}

static oct_status up_node(upgrade *u, ir_node *n)
{
    ir_node_remove_attr(n, "consumed_inputs");
    switch (n->op) {
    case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_DIV:
    case IR_OP_POW: case IR_OP_EQUAL:
        return up_binary(u, n);
    case IR_OP_BATCHNORM: return up_batchnorm(u, n);
    case IR_OP_SOFTMAX: case IR_OP_LOGSOFTMAX: return up_softmax(u, n);
    case IR_OP_RESHAPE: return up_reshape(u, n);
    case IR_OP_SQUEEZE: case IR_OP_UNSQUEEZE: case IR_OP_REDUCESUM:
        return up_axes(u, n, 13);
    case IR_OP_REDUCEMEAN: case IR_OP_REDUCEMAX: return up_axes(u, n, 18);
    case IR_OP_SPLIT: return up_split(u, n);
    case IR_OP_CLIP: return up_clip(u, n);
    case IR_OP_PAD: return up_pad(u, n);
    case IR_OP_SLICE: return up_slice(u, n);
    case IR_OP_DROPOUT: return up_dropout(u, n);
    case IR_OP_CAST: return up_cast(u, n);
    case IR_OP_CONCAT: return up_concat(u, n);
    case IR_OP_GEMM: return up_gemm(u, n);
    /* recurrent layers (issue 19) */
    case IR_OP_RNN: case IR_OP_GRU: case IR_OP_LSTM: return up_rnn(u, n);
    case IR_OP_RESIZE:
        if (u->from < 11 && u->to >= 11)
            return unsupported(u, n, "Resize-10 has no exact newer form here");
        return OCT_OK;
    default:
        break;
    }
    for (size_t i = 0; i < sizeof unchanged / sizeof unchanged[0]; i++)
        if (n->op == unchanged[i])
            return OCT_OK;
    return unsupported(u, n, "op not known to be unchanged across opsets");
}

oct_status quant_upgrade_opset(ir_model *m, int64_t target, oct_ctx *ctx)
{
    int64_t from = ir_model_opset(m, "");
    if (from >= target)
        return OCT_OK;
    upgrade u = {ctx, m->graph, from, target};
    size_t n_nodes = m->graph->n_nodes; /* new nodes need no upgrade */
    oct_status st = OCT_OK;
    for (size_t i = 0; i < n_nodes; i++) {
        ir_node *n = m->graph->nodes[i];
        bool default_domain = !*n->domain || strcmp(n->domain, "ai.onnx") == 0;
        if (!default_domain)
            continue;
        oct_status s = up_node(&u, n);
        if (s && !st)
            st = s; /* report every node, return the first failure */
    }
    if (st)
        return st;
    bool found = false;
    for (size_t i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain;
        if (!d || !*d || strcmp(d, "ai.onnx") == 0) {
            m->opsets[i].version = target;
            found = true;
        }
    }
    if (!found)
        return oct_error(ctx, OCT_EINPUT, "model imports no default-domain opset");
    /* The IR version must be one that knows the new opset (the release
     * table in onnx/helper.py: opset 12-14 came with IR 7, 15-18 with 8,
     * 19-20 with 9, 21-22 with 10, 23 with 11, 24 with 12, 25 with 13). */
    int64_t min_ir = target >= 25 ? 13 : target >= 24 ? 12 : target >= 23 ? 11
                   : target >= 21 ? 10 : target >= 19 ? 9 : target >= 15 ? 8
                   : target >= 12 ? 7 : target >= 11 ? 6 : 5;
    if (m->ir_version < min_ir)
        m->ir_version = min_ir;
    return ir_verify(m, ctx); /* re-sorts the graph around the new nodes */
}
