/*
 * shape_softmax.c: the shape and type rules of Softmax and LogSoftmax.
 * Shared by the shape-inference pass and the interpreter, whose kernels are
 * in src/ref/softmax.c.
 */
#include <math.h>

#include "ops/ops.h"
#include "ops/rules.h"

/* Resolves the normalized group as outer x len x inner (inner = stride of
 * the group).  rank must be known. */
bool ops_softmax_geometry(const ir_node *node, int64_t opset, int rank,
                          const int64_t *dims, int *axis_out,
                          uint64_t *outer, uint64_t *len, uint64_t *inner)
{
    int64_t a = ir_attr_int(node, "axis", opset < 13 ? 1 : -1);
    int axis;
    if (rank == 0) {
        if (a != 0 && a != -1)
            return false;
        axis = 0;
    } else if (!ops_norm_axis(a, rank, &axis)) {
        return false;
    }
    *axis_out = axis;
    uint64_t o = 1, l = 1, in = 1;
    for (int k = 0; k < rank; k++) {
        uint64_t d = (uint64_t)(dims[k] < 0 ? 0 : dims[k]);
        if (k < axis)
            o *= d;
        else if (k == axis || opset < 13)
            l *= d;
        else
            in *= d;
    }
    *outer = o;
    *len = l;
    *inner = in;
    return true;
}

oct_status ops_shape_softmax(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ir_dtype dt = x->dtype;
    if (dt != IR_DT_UNDEFINED && ir_dtype_info(dt)->kind != IR_DK_FLOAT)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "input must be a float type, not %s",
                               ir_dtype_name(dt));
    if (x->rank >= 0) {
        int axis;
        uint64_t o, l, in;
        if (!ops_softmax_geometry(inf->node, inf->opset, x->rank, x->dims, &axis,
                              &o, &l, &in))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis out of range for rank %d", x->rank);
    }
    inf->out[0] = *x;
    return OCT_OK;
}
