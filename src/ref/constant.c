/*
 * constant.c: Constant and ConstantOfShape.
 *
 * Constant's value comes from exactly one attribute: value (a tensor),
 * value_float(s) (FLOAT), value_int(s) (INT64) or value_string(s) (STRING);
 * sparse_value is reported as unsupported.  ConstantOfShape fills a tensor
 * whose shape is its int64 input with the one element of its value
 * attribute (default: float 0).  STRING elements are deep-copied into the
 * context's arena.
 *
 * The shape and type rules of these ops are in src/ops/shape_constant.c.
 */
#include <string.h>

#include "ref/ref.h"

static bool copy_blob(oct_ctx *ctx, ir_blob *d, const ir_blob *s)
{
    d->len = s->len;
    d->data = NULL;
    if (!s->len)
        return true;
    if (!(d->data = ir_alloc(ctx, s->len)))
        return false;
    memcpy(d->data, s->data, s->len);
    return true;
}

oct_status ref_constant(ref_call *call)
{
    oct_status st;
    const ir_attr *a = ops_constant_attr(call->ctx, call->node, &st);
    if (!a)
        return st;
    ir_tensor *y = call->out[0];
    switch (a->type) {
    case IR_ATTR_TENSOR:
        if (a->t->dtype == IR_DT_STRING) {
            for (uint64_t i = 0; i < y->nelems; i++)
                if (!copy_blob(call->ctx, (ir_blob *)y->data + i,
                               (const ir_blob *)a->t->data + i))
                    return OCT_EINTERNAL;
        } else if (y->nbytes) {
            memcpy(y->data, a->t->data,
                   a->t->nbytes < y->nbytes ? a->t->nbytes : y->nbytes);
        }
        return OCT_OK;
    case IR_ATTR_FLOAT:
        *(float *)y->data = a->f;
        return OCT_OK;
    case IR_ATTR_FLOATS:
        if (a->n)
            memcpy(y->data, a->floats, a->n * sizeof(float));
        return OCT_OK;
    case IR_ATTR_INT:
        *(int64_t *)y->data = a->i;
        return OCT_OK;
    case IR_ATTR_INTS:
        if (a->n)
            memcpy(y->data, a->ints, a->n * sizeof(int64_t));
        return OCT_OK;
    case IR_ATTR_STRING:
        return copy_blob(call->ctx, y->data, &a->s) ? OCT_OK : OCT_EINTERNAL;
    default:
        for (size_t i = 0; i < a->n; i++)
            if (!copy_blob(call->ctx, (ir_blob *)y->data + i, &a->strings[i]))
                return OCT_EINTERNAL;
        return OCT_OK;
    }
}

/* ---- ConstantOfShape ---------------------------------------------------- */

oct_status ref_constantofshape(ref_call *call)
{
    bool bad;
    const ir_tensor *v = ops_fill_value(call->ctx, call->node, &bad);
    if (bad)
        return OCT_EINPUT;
    ir_tensor *y = call->out[0];
    if (!v) {
        memset(y->data, 0, y->nbytes); /* float 0.0 is all zero bits */
        return OCT_OK;
    }
    unsigned bits = ir_dtype_info(v->dtype)->bits;
    if (bits < 8) {
        /* Sub-byte: repeat the packed field across every byte. */
        unsigned field = ((const uint8_t *)v->data)[0] & ((1u << bits) - 1);
        uint8_t byte = 0;
        for (unsigned s = 0; s < 8; s += bits)
            byte |= (uint8_t)(field << s);
        memset(y->data, byte, y->nbytes);
        return OCT_OK;
    }
    size_t es = bits / 8;
    uint8_t *d = y->data;
    for (uint64_t i = 0; i < y->nelems; i++)
        memcpy(d + i * es, v->data, es);
    return OCT_OK;
}
