/*
 * reshape.c: kernels of the ops that keep the elements in
 * order and only change the shape (Reshape, Flatten, Squeeze, Unsqueeze,
 * Identity, Dropout in inference mode) and of Shape and Size.
 *
 * Their kernels copy the input bytes unchanged, so they work for every dtype
 * (STRING elements are deep-copied into the context's arena).  The shape
 * rules read shape-carrying inputs (Reshape's shape, Squeeze/Unsqueeze axes
 * from opset 13) from in_const when known and report unknown dims (-1) or
 * an unknown rank otherwise.
 *
 * The shape and type rules of these ops are in src/ops/shape_reshape.c.
 */
#include <string.h>

#include "ref/ref.h"

/* Copies all of src's elements into dst (same dtype and element count). */
static oct_status copy_all(oct_ctx *ctx, ir_tensor *dst, const ir_tensor *src)
{
    if (dst->dtype != IR_DT_STRING) {
        uint64_t n = src->nbytes < dst->nbytes ? src->nbytes : dst->nbytes;
        if (n && dst->data != src->data)
            memcpy(dst->data, src->data, n);
        return OCT_OK;
    }
    ir_blob *d = dst->data;
    const ir_blob *s = src->data;
    for (uint64_t k = 0; k < dst->nelems && k < src->nelems; k++) {
        d[k].len = s[k].len;
        d[k].data = NULL;
        if (s[k].len) {
            if (!(d[k].data = ir_alloc(ctx, s[k].len)))
                return OCT_EINTERNAL;
            memcpy(d[k].data, s[k].data, s[k].len);
        }
    }
    return OCT_OK;
}

static oct_status copy_input0(ref_call *call)
{
    return copy_all(call->ctx, call->out[0], call->in[0]);
}

/* ---- Reshape ------------------------------------------------------------ */

oct_status ref_reshape(ref_call *call) { return copy_input0(call); }

/* ---- Flatten ------------------------------------------------------------ */

oct_status ref_flatten(ref_call *call) { return copy_input0(call); }

/* ---- Squeeze / Unsqueeze ------------------------------------------------ */

oct_status ref_squeeze(ref_call *call) { return copy_input0(call); }

oct_status ref_unsqueeze(ref_call *call) { return copy_input0(call); }

/* ---- Identity ----------------------------------------------------------- */

oct_status ref_identity(ref_call *call) { return copy_input0(call); }

/* ---- Dropout (inference) ------------------------------------------------ */

oct_status ref_dropout(ref_call *call)
{
    oct_status st = ops_dropout_check(call->ctx, call->node, call->opset,
                                  call->in, call->n_in);
    if (st != OCT_OK)
        return st;
    st = copy_input0(call);
    if (st != OCT_OK || call->n_out < 2 || !call->out[1])
        return st;
    ir_tensor *mask = call->out[1];
    if (mask->dtype == IR_DT_BOOL) {
        memset(mask->data, 1, mask->nelems);
        return OCT_OK;
    }
    for (uint64_t i = 0; i < mask->nelems; i++)
        ops_set(mask, i, 1.0);
    return OCT_OK;
}

/* ---- Shape -------------------------------------------------------------- */

oct_status ref_shapeof(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    int lo, hi;
    ops_shapeof_range(call->node, x->rank, &lo, &hi);
    int64_t *d = call->out[0]->data;
    for (int k = lo; k < hi; k++)
        d[k - lo] = x->dims[k];
    return OCT_OK;
}

/* ---- Size --------------------------------------------------------------- */

oct_status ref_size(ref_call *call)
{
    *(int64_t *)call->out[0]->data = (int64_t)call->in[0]->nelems;
    return OCT_OK;
}
