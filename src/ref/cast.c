/*
 * cast.c: kernel of Cast and CastLike.
 *
 * Conversion rules (ONNX Cast, numpy astype where the spec is silent):
 *  - float -> float: the value rounded to nearest even in the target
 *    format.  To float8/float4, out-of-range finite values clamp to the
 *    largest finite value when `saturate` is 1 (the default) and become
 *    Inf/NaN as the format allows when it is 0; NaN stays NaN.  Conversions
 *    from DOUBLE to a format narrower than FLOAT round through FLOAT first.
 *  - float -> integer: truncated toward zero; NaN gives 0; values beyond
 *    the int64 range clamp to it and are then wrapped to the target width
 *    (out-of-range values are undefined in ONNX).
 *  - integer -> integer: two's-complement wrap to the target width.
 *  - integer -> float: nearest representable value.
 *  - anything -> BOOL: x != 0 (NaN is true); BOOL -> anything: 0 or 1.
 *  - STRING -> number: the text parsed as by strtod ("NaN", "INF", "-inf"
 *    included), then converted as a double.  Number -> STRING is not
 *    supported (reported as OCT_EUNSUPPORTED).
 *
 * The shape and type rules of these ops are in src/ops/shape_cast.c.
 */
#include <stdlib.h>
#include <string.h>

#include "ref/eltwise.h"

static inline void set_nibble(ir_tensor *t, uint64_t i, uint8_t v)
{
    uint8_t *p = (uint8_t *)t->data + i / 2;
    unsigned shift = (unsigned)(i % 2) * 4;
    *p = (uint8_t)((*p & ~(0xfu << shift)) | ((v & 0xfu) << shift));
}

/* Parses a STRING element as a double (0 if it is not a number). */
static double string_value(const ir_tensor *t, uint64_t i)
{
    const ir_blob *b = (const ir_blob *)t->data + i;
    char buf[128];
    size_t len = b->len < sizeof buf - 1 ? b->len : sizeof buf - 1;
    if (len)
        memcpy(buf, b->data, len);
    buf[len] = 0;
    return strtod(buf, NULL);
}

oct_status ref_cast(ref_call *call)
{
    const ir_tensor *tx = call->in[0];
    ir_tensor *to = call->out[0];
    ir_dtype src = tx->dtype, dst = to->dtype;
    bool saturate = ir_attr_int(call->node, "saturate", 1) != 0;
    uint64_t n = to->nelems;
    const ir_dtype_traits *st = ir_dtype_info(src), *dtr = ir_dtype_info(dst);

    if (src == dst) {
        memcpy(to->data, tx->data, to->nbytes);
        return OCT_OK;
    }
    if (src == IR_DT_FLOAT && dst == IR_DT_FLOAT16) {
        const float *x = tx->data;
        uint16_t *o = to->data;
        for (uint64_t i = 0; i < n; i++)
            o[i] = ops_f32_to_f16(x[i]);
        return OCT_OK;
    }
    bool src_int = st->kind == IR_DK_SINT || st->kind == IR_DK_UINT ||
                   st->kind == IR_DK_BOOL;
    bool dst_int = dtr->kind == IR_DK_SINT || dtr->kind == IR_DK_UINT ||
                   dtr->kind == IR_DK_BOOL;
    bool dst_small_float = dtr->kind == IR_DK_FLOAT && dtr->bits <= 8;
    for (uint64_t i = 0; i < n; i++) {
        if (src_int && dst_int) {
            ops_set_i64(to, i, ops_get_i64(tx, i));
            continue;
        }
        double v = src == IR_DT_STRING ? string_value(tx, i) : ops_get(tx, i);
        if (dst_small_float) {
            if (dst == IR_DT_FLOAT4E2M1)
                set_nibble(to, i, ops_f32_to_fp4((float)v, saturate));
            else
                ((uint8_t *)to->data)[i] = ops_f32_to_fp8(dst, (float)v, saturate);
        } else {
            ops_set(to, i, v);
        }
    }
    return OCT_OK;
}
