/*
 * detect.c: the interpreter's NonMaxSuppression and NonZero, whose output
 * lengths their shape rules (src/ops/shape_detect.c) computed from the
 * input values: NMS runs the same selection again to write the triples;
 * NonZero writes, for each non-zero element in row-major order, its
 * coordinate along axis d at [d, k].
 */
#include "ref/eltwise.h"
#include "ops/rules.h"

oct_status ref_nonmaxsuppression(ref_call *call)
{
    int64_t count;
    oct_status st = ops_nms_select(call->ctx, call->node, call->in, call->n_in,
                                   (int64_t *)call->out[0]->data, &count);
    OCT_ASSERT(st != OCT_OK || count == call->out[0]->dims[0]);
    return st;
}

oct_status ref_nonzero(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int64_t count = y->dims[1], k = 0, coord[OPS_MAX_RANK] = {0};
    bool is_float = ops_dt_is_float(x->dtype);
    for (uint64_t i = 0; i < x->nelems; i++) {
        if (is_float ? ops_get(x, i) != 0 : ops_get_i64(x, i) != 0) {
            for (int d = 0; d < x->rank; d++)
                ((int64_t *)y->data)[d * count + k] = coord[d];
            k++;
        }
        for (int d = x->rank - 1; d >= 0; d--) { /* next coordinate */
            if (++coord[d] < x->dims[d])
                break;
            coord[d] = 0;
        }
    }
    return OCT_OK;
}
