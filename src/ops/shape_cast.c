/*
 * shape_cast.c: the shape and type rules of Cast and CastLike. Shared by the
 * shape-inference pass and the interpreter, whose kernels are in
 * src/ref/cast.c.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static bool cast_dtype_ok(ir_dtype dt)
{
    ir_dkind k = ir_dtype_info(dt)->kind;
    return ir_dtype_valid(dt) && k != IR_DK_COMPLEX && k != IR_DK_NONE;
}

/* Cast takes the target type from attribute `to`; CastLike from the element
 * type of input 1 (only its type matters). */
oct_status ops_shape_cast(ops_infer *inf)
{
    const ir_node *node = inf->node;
    int64_t target;
    if (node->op == IR_OP_CASTLIKE) {
        target = inf->in[1].dtype;
        if (target == IR_DT_UNDEFINED) { /* not known yet */
            inf->out[0] = inf->in[0];
            inf->out[0].dtype = IR_DT_UNDEFINED;
            return OCT_OK;
        }
    } else {
        const ir_attr *to = ir_node_attr(node, "to");
        if (!to || to->type != IR_ATTR_INT)
            return oct_node_error(inf->ctx, OCT_EINPUT, node,
                                  "attribute 'to' (int) is required");
        target = to->i;
    }
    if (!ir_dtype_valid((int)target) || !cast_dtype_ok((ir_dtype)target))
        return oct_node_error(inf->ctx, OCT_EINPUT, node,
                              "target type %lld is not a castable element type",
                              (long long)target);
    if (target == IR_DT_STRING)
        return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, node,
                              "Cast to STRING is not supported");
    ir_dtype src = inf->in[0].dtype;
    if (src != IR_DT_UNDEFINED && !cast_dtype_ok(src))
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, 0,
                               "Cast from %s is not supported", ir_dtype_name(src));
    inf->out[0] = inf->in[0];
    inf->out[0].dtype = (ir_dtype)target;
    return OCT_OK;
}
