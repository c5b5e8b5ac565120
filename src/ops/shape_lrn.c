/*
 * shape_lrn.c: the shape and type rules of LRN. Shared by the shape-
 * inference pass and the interpreter, whose kernels are in src/ref/lrn.c.
 */
#include <math.h>

#include "ops/ops.h"
#include "ops/rules.h"

oct_status ops_shape_lrn(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    const ir_attr *size = ir_node_attr(inf->node, "size");
    if (!size || size->type != IR_ATTR_INT || size->i < 1)
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "attribute 'size' (a positive int) is required");
    if (x->dtype != IR_DT_UNDEFINED && !ops_dt_is_float(x->dtype))
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "LRN takes floating-point input, not %s",
                               ir_dtype_name(x->dtype));
    if (x->rank >= 0 && x->rank < 2)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "rank %d is below the (N, C, ...) minimum of 2",
                               x->rank);
    inf->out[0] = *x;
    return OCT_OK;
}
