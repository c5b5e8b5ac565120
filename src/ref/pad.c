/*
 * pad.c: kernel of Pad.
 *
 * Versions: Pad-1 takes the pads as attribute `paddings`, Pad-2 as `pads`
 * (both with float attribute `value`); from Pad-11 on, pads is input 1
 * (INT64, [x1_begin, x2_begin, ..., x1_end, x2_end]) and constant_value the
 * optional scalar input 2; Pad-18 adds the optional `axes` input 3 (pads
 * then has 2 * len(axes) entries); Pad-19 adds mode "wrap".
 *
 * Negative pads crop.  As in the ONNX reference, an axis is cropped first
 * and the remaining elements are then padded: constant fills with the
 * value, edge repeats the border element, reflect mirrors without
 * repeating the border (numpy "reflect", repeated as often as needed),
 * wrap continues periodically.  Reflect, edge and wrap of an axis cropped
 * to nothing are reported.
 *
 * The shape and type rules of these ops are in src/ops/shape_pad.c.
 */
#include <string.h>

#include "ref/eltwise.h"

oct_status ref_pad(ref_call *call)
{
    const ir_tensor *tx = call->in[0];
    ir_tensor *to = call->out[0];
    ops_pad_mode mode;
    int64_t begin[OPS_MAX_RANK], end[OPS_MAX_RANK];
    bool known;
    oct_status st = ops_pad_params(call->ctx, call->node, call->opset, tx->rank,
                               call->in, call->n_in, &mode, begin, end, &known);
    if (st != OCT_OK)
        return st;
    int rank = tx->rank;
    unsigned bits = ir_dtype_info(tx->dtype)->bits;
    size_t es = bits / 8;
    /* the constant, as one output element */
    uint8_t fill[16] = {0};
    const ir_tensor *cv = call->n_in > 2 ? call->in[2] : NULL;
    if (cv && cv->nelems < 1)
        cv = NULL;
    /* per axis: cropped range [lo, lo + n) and the pad before it */
    int64_t lo[OPS_MAX_RANK], n[OPS_MAX_RANK], pre[OPS_MAX_RANK], stride[OPS_MAX_RANK];
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        lo[d] = begin[d] < 0 ? -begin[d] : 0;
        n[d] = tx->dims[d] - lo[d] - (end[d] < 0 ? -end[d] : 0);
        pre[d] = begin[d] > 0 ? begin[d] : 0;
        stride[d] = s;
        s *= tx->dims[d];
    }
    int64_t idx[OPS_MAX_RANK] = {0};
    for (uint64_t i = 0; i < to->nelems; i++) {
        int64_t src = 0;
        for (int d = 0; d < rank && src >= 0; d++) {
            int64_t c = idx[d] - pre[d];
            if (c < 0 || c >= n[d])
                c = ops_pad_source(mode, c, n[d]);
            src = c < 0 ? -1 : src + (lo[d] + c) * stride[d];
        }
        if (src < 0) { /* constant */
            if (cv && es && cv->dtype == to->dtype)
                memcpy((uint8_t *)to->data + i * es, cv->data, es);
            else if (cv && ops_dt_is_float(to->dtype))
                ops_set(to, i, ops_get(cv, 0));
            else if (cv)
                ops_set_i64(to, i, ops_get_i64(cv, 0));
            else if (call->opset < 11)
                ops_set(to, i, ir_attr_float(call->node, "value", 0.0f));
            else if (es)
                memcpy((uint8_t *)to->data + i * es, fill, es);
            else
                ops_set_i64(to, i, 0);
        } else if (es) {
            memcpy((uint8_t *)to->data + i * es, (const uint8_t *)tx->data + src * es, es);
        } else if (ops_dt_is_float(to->dtype)) {
            ops_set(to, i, ops_get(tx, (uint64_t)src));
        } else {
            ops_set_i64(to, i, ops_get_i64(tx, (uint64_t)src));
        }
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < to->dims[d])
                break;
            idx[d] = 0;
        }
    }
    return OCT_OK;
}
