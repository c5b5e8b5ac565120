/*
 * shape_eltwise_binary.c: the shape and type rules of the broadcasting
 * element-wise ops with several inputs (binary arithmetic, comparison and
 * logic ops, the variadic Sum/Mean/Max/Min, Where). Shared by the shape-
 * inference pass and the interpreter, whose kernels are in
 * src/ref/eltwise_binary.c.
 */
#include <math.h>

#include "ops/ops.h"
#include "ops/rules.h"

/* Resolves the shape B takes part in broadcasting with.  Before opset 7
 * (not PRelu), with broadcast=1, B is aligned on A's dims from `axis` and
 * padded with 1s to A's rank; otherwise B is taken as is.  For PRelu before
 * opset 7 a 1-D slope of X's channel count is aligned on axis 1.
 * Reports a misaligned B against input 1 and returns false.  Sets
 * *out_is_a when the output shape must be A's. */
bool ops_binary_operand_b(oct_ctx *ctx, const ir_node *node, int64_t opset,
                          const ops_shape *a, const ops_shape *b,
                          ops_shape *beff, bool *out_is_a)
{
    *beff = *b;
    *out_is_a = node->op == IR_OP_PRELU;
    if (node->op == IR_OP_PRELU) {
        if (opset < 7 && a->rank >= 3 && b->rank == 1 &&
            b->dims[0] != 1 && b->dims[0] == a->dims[1]) {
            beff->rank = a->rank - 1;
            for (int i = 1; i < beff->rank; i++)
                beff->dims[i] = 1;
        }
        return true;
    }
    if (opset >= 7 || ir_attr_int(node, "broadcast", 0) == 0)
        return true;
    *out_is_a = true;
    if (a->rank < 0 || b->rank < 0) {
        beff->rank = -1;
        return true;
    }
    int64_t axis = ir_attr_int(node, "axis", a->rank - b->rank);
    if (axis < 0)
        axis += a->rank; /* tolerated, though the old spec did not say */
    if (axis < 0 || axis + b->rank > a->rank) {
        oct_input_error(ctx, OCT_EINPUT, node, 1,
                        "legacy broadcast: rank-%d B does not fit rank-%d A "
                        "at axis %lld", b->rank, a->rank, (long long)axis);
        return false;
    }
    beff->rank = a->rank;
    for (int i = 0; i < a->rank; i++) {
        int j = i - (int)axis;
        beff->dims[i] = j >= 0 && j < b->rank ? b->dims[j] : 1;
        if (beff->dims[i] >= 0 && a->dims[i] >= 0 && beff->dims[i] != 1 &&
            beff->dims[i] != a->dims[i]) {
            oct_input_error(ctx, OCT_EINPUT, node, 1,
                            "legacy broadcast: B dim %d is %lld but A dim %d "
                            "is %lld", j, (long long)beff->dims[i], i,
                            (long long)a->dims[i]);
            return false;
        }
    }
    return true;
}

bool ops_binary_is_compare(ir_op op)
{
    return op == IR_OP_EQUAL || op == IR_OP_LESS || op == IR_OP_GREATER ||
           op == IR_OP_LESSOREQUAL || op == IR_OP_GREATEROREQUAL;
}

bool ops_binary_is_logic(ir_op op)
{
    return op == IR_OP_AND || op == IR_OP_OR || op == IR_OP_XOR;
}

static bool dtype_kind_ok(ir_op op, ir_dtype dt)
{
    const ir_dtype_traits *tr = ir_dtype_info(dt);
    if (dt == IR_DT_UNDEFINED)
        return true;
    if (ops_binary_is_logic(op))
        return tr->kind == IR_DK_BOOL;
    if (op == IR_OP_MEAN)
        return tr->kind == IR_DK_FLOAT && tr->bits >= 16;
    if (tr->kind == IR_DK_FLOAT)
        return tr->bits >= 16 && op != IR_OP_BITSHIFT;
    if (tr->kind == IR_DK_SINT || tr->kind == IR_DK_UINT)
        return tr->bits >= 8 && (op != IR_OP_BITSHIFT || tr->kind == IR_DK_UINT);
    if (tr->kind == IR_DK_BOOL)
        return op == IR_OP_EQUAL || ops_binary_is_logic(op);
    if (tr->kind == IR_DK_STRING)
        return op == IR_OP_EQUAL;
    return false;
}

oct_status ops_shape_binary(ops_infer *inf)
{
    const ir_node *node = inf->node;
    const ops_shape *a = &inf->in[0], *b = &inf->in[1];
    for (int i = 0; i < 2; i++)
        if (!dtype_kind_ok(node->op, inf->in[i].dtype))
            return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, i,
                                   "element type %s is not supported by %s",
                                   ir_dtype_name(inf->in[i].dtype), node->op_type);
    if (node->op != IR_OP_POW && a->dtype != IR_DT_UNDEFINED &&
        b->dtype != IR_DT_UNDEFINED && a->dtype != b->dtype)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                               "element type %s differs from input 0's %s",
                               ir_dtype_name(b->dtype), ir_dtype_name(a->dtype));
    ops_shape beff, out;
    bool out_is_a;
    if (!ops_binary_operand_b(inf->ctx, node, inf->opset, a, b, &beff, &out_is_a))
        return OCT_EINPUT;
    /* beff is a copy, so name input 1 in a broadcast error by hand */
    ops_infer sub = *inf;
    ops_shape pair[2] = {*a, beff};
    sub.in = pair;
    sub.n_in = 2;
    if (!ops_broadcast(&sub, &pair[0], &pair[1], &out))
        return OCT_EINPUT;
    if (out_is_a && a->rank >= 0 && out.rank >= 0) {
        bool same = out.rank == a->rank;
        for (int i = 0; same && i < a->rank; i++)
            same = out.dims[i] == a->dims[i] || a->dims[i] < 0;
        if (!same)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                   "does not broadcast to input 0's shape");
        out = *a;
    }
    if (node->op == IR_OP_MOD && ops_dt_is_float(a->dtype) &&
        ir_attr_int(node, "fmod", 0) == 0)
        return oct_node_error(inf->ctx, OCT_EINPUT, node,
                              "Mod of floating-point inputs requires fmod=1");
    out.dtype = ops_binary_is_compare(node->op) || ops_binary_is_logic(node->op)
                    ? IR_DT_BOOL : a->dtype;
    inf->out[0] = out;
    return OCT_OK;
}

oct_status ops_shape_variadic(ops_infer *inf)
{
    const ir_node *node = inf->node;
    ops_shape acc = inf->in[0];
    for (int i = 0; i < inf->n_in; i++) {
        const ops_shape *s = &inf->in[i];
        if (!node->in[i])
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "%s inputs may not be omitted", node->op_type);
        if (s->dtype != IR_DT_UNDEFINED && !dtype_kind_ok(node->op, s->dtype))
            return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, i,
                                   "element type %s is not supported by %s",
                                   ir_dtype_name(s->dtype), node->op_type);
        if (s->dtype != IR_DT_UNDEFINED && acc.dtype != IR_DT_UNDEFINED &&
            s->dtype != acc.dtype)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "element type %s differs from input 0's %s",
                                   ir_dtype_name(s->dtype), ir_dtype_name(acc.dtype));
        ir_dtype dt = acc.dtype != IR_DT_UNDEFINED ? acc.dtype : s->dtype;
        if (i > 0 && !ops_broadcast(inf, &acc, s, &acc))
            return OCT_EINPUT;
        acc.dtype = dt;
    }
    inf->out[0] = acc;
    return OCT_OK;
}

oct_status ops_shape_where(ops_infer *inf)
{
    const ir_node *node = inf->node;
    const ops_shape *c = &inf->in[0], *x = &inf->in[1], *y = &inf->in[2];
    if (c->dtype != IR_DT_UNDEFINED && c->dtype != IR_DT_BOOL)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                               "condition must be BOOL, not %s", ir_dtype_name(c->dtype));
    if (x->dtype != IR_DT_UNDEFINED && y->dtype != IR_DT_UNDEFINED && x->dtype != y->dtype)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 2,
                               "element type %s differs from input 1's %s",
                               ir_dtype_name(y->dtype), ir_dtype_name(x->dtype));
    ir_dtype dt = x->dtype != IR_DT_UNDEFINED ? x->dtype : y->dtype;
    if (dt == IR_DT_STRING)
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, 1,
                               "Where on STRING tensors is not supported");
    ops_shape out;
    if (!ops_broadcast(inf, c, x, &out) || !ops_broadcast(inf, &out, y, &out))
        return OCT_EINPUT;
    out.dtype = dt;
    inf->out[0] = out;
    return OCT_OK;
}
