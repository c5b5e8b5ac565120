/*
 * shape_eltwise_unary.c: the shape and type rules of the one-input element-
 * wise ops and Clip. Shared by the shape-inference pass and the interpreter,
 * whose kernels are in src/ref/eltwise_unary.c.
 */
#include <float.h>
#include <math.h>

#include "ops/ops.h"
#include "ops/rules.h"

/* Ops defined on integers as well as floats. */
static bool unary_takes_ints(ir_op op)
{
    return op == IR_OP_NEG || op == IR_OP_ABS || op == IR_OP_RELU ||
           op == IR_OP_SIGN;
}

static bool unary_dtype_ok(ir_op op, ir_dtype dt)
{
    const ir_dtype_traits *tr = ir_dtype_info(dt);
    if (dt == IR_DT_UNDEFINED)
        return true;
    if (op == IR_OP_NOT)
        return dt == IR_DT_BOOL;
    if (tr->kind == IR_DK_FLOAT)
        return tr->bits >= 16;
    if (tr->kind == IR_DK_SINT || tr->kind == IR_DK_UINT)
        return tr->bits >= 8 && (unary_takes_ints(op) || op == IR_OP_CLIP);
    return false;
}

oct_status ops_shape_unary(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (!unary_dtype_ok(inf->node->op, x->dtype))
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, 0,
                               "element type %s is not supported by %s",
                               ir_dtype_name(x->dtype), inf->node->op_type);
    inf->out[0] = *x;
    if (inf->node->op == IR_OP_ISNAN || inf->node->op == IR_OP_ISINF)
        inf->out[0].dtype = IR_DT_BOOL;
    return OCT_OK;
}

/* Clip: y = min(max(x, lo), hi), so lo > hi gives hi everywhere (as the
 * spec says).  NaN stays NaN.  Before opset 11 lo and hi are the float
 * attributes min and max (defaults: the float range); from 11 on they are
 * optional scalar inputs 1 and 2 of x's type (defaults: the type's range). */
oct_status ops_shape_clip(ops_infer *inf)
{
    const ir_node *node = inf->node;
    const ops_shape *x = &inf->in[0];
    if (!unary_dtype_ok(IR_OP_CLIP, x->dtype))
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, 0,
                               "element type %s is not supported by Clip",
                               ir_dtype_name(x->dtype));
    for (int i = 1; i < inf->n_in; i++) {
        const ops_shape *s = &inf->in[i];
        if (!node->in[i])
            continue;
        if (inf->opset < 11)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "Clip before opset 11 takes min/max as "
                                   "attributes, not inputs");
        if (s->dtype != IR_DT_UNDEFINED && x->dtype != IR_DT_UNDEFINED &&
            s->dtype != x->dtype)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "element type %s differs from input 0's %s",
                                   ir_dtype_name(s->dtype), ir_dtype_name(x->dtype));
        /* a scalar; a one-element tensor is tolerated */
        uint64_t elems = ops_shape_elems(s);
        bool known = s->rank >= 0 && (s->rank == 0 || elems != 0 ||
                                      s->dims[0] == 0);
        if (known && elems != 1)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "must be a scalar");
    }
    inf->out[0] = *x;
    return OCT_OK;
}
