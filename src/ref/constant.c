/*
 * constant.c: Constant and ConstantOfShape.
 *
 * Constant's value comes from exactly one attribute: value (a tensor),
 * value_float(s) (FLOAT), value_int(s) (INT64) or value_string(s) (STRING);
 * sparse_value is reported as unsupported.  ConstantOfShape fills a tensor
 * whose shape is its int64 input with the one element of its value
 * attribute (default: float 0).  STRING elements are deep-copied into the
 * context's arena.
 */
#include <string.h>

#include "ref/ref.h"

/* The attribute that carries a Constant's value, or NULL with a
 * diagnostic. */
static const ir_attr *constant_attr(oct_ctx *ctx, const ir_node *node,
                                    oct_status *st)
{
    static const char *const names[] = {
        "value", "value_float", "value_floats", "value_int", "value_ints",
        "value_string", "value_strings",
    };
    if (ir_node_attr(node, "sparse_value")) {
        *st = oct_node_error(ctx, OCT_EUNSUPPORTED, node,
                             "Constant with sparse_value is not supported");
        return NULL;
    }
    const ir_attr *found = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const ir_attr *a = ir_node_attr(node, names[i]);
        if (!a)
            continue;
        if (found) {
            *st = oct_node_error(ctx, OCT_EINPUT, node,
                                 "Constant has both %s and %s", found->name,
                                 a->name);
            return NULL;
        }
        found = a;
    }
    if (!found) {
        *st = oct_node_error(ctx, OCT_EINPUT, node,
                             "Constant has no value attribute");
        return NULL;
    }
    static const ir_attr_type want[] = {
        IR_ATTR_TENSOR, IR_ATTR_FLOAT, IR_ATTR_FLOATS, IR_ATTR_INT,
        IR_ATTR_INTS, IR_ATTR_STRING, IR_ATTR_STRINGS,
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(found->name, names[i]) &&
            (found->type != want[i] ||
             (want[i] == IR_ATTR_TENSOR && !found->t))) {
            *st = oct_node_error(ctx, OCT_EINPUT, node,
                                 "attribute %s has type %s", found->name,
                                 ir_attr_type_name(found->type));
            return NULL;
        }
    *st = OCT_OK;
    return found;
}

oct_status shape_constant(ref_infer *inf)
{
    oct_status st;
    const ir_attr *a = constant_attr(inf->ctx, inf->node, &st);
    if (!a)
        return st;
    ref_shape *out = &inf->out[0];
    switch (a->type) {
    case IR_ATTR_TENSOR:
        if (a->t->rank > REF_MAX_RANK)
            return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                                  "value has rank %d (at most %d)",
                                  a->t->rank, REF_MAX_RANK);
        ref_shape_of(a->t, out);
        return OCT_OK;
    case IR_ATTR_FLOAT: case IR_ATTR_INT: case IR_ATTR_STRING:
        out->rank = 0;
        break;
    default:
        out->rank = 1;
        out->dims[0] = (int64_t)a->n;
        break;
    }
    out->dtype = a->type == IR_ATTR_FLOAT || a->type == IR_ATTR_FLOATS
                     ? IR_DT_FLOAT
                 : a->type == IR_ATTR_INT || a->type == IR_ATTR_INTS
                     ? IR_DT_INT64
                     : IR_DT_STRING;
    return OCT_OK;
}

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
    const ir_attr *a = constant_attr(call->ctx, call->node, &st);
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

/* The value attribute (a one-element tensor) or NULL for the float 0
 * default; sets *bad after a diagnostic. */
static const ir_tensor *fill_value(oct_ctx *ctx, const ir_node *node, bool *bad)
{
    const ir_attr *a = ir_node_attr(node, "value");
    *bad = false;
    if (!a)
        return NULL;
    if (a->type != IR_ATTR_TENSOR || !a->t || a->t->nelems != 1 ||
        a->t->dtype == IR_DT_STRING) {
        oct_node_error(ctx, OCT_EINPUT, node,
                       "value must be a one-element numeric tensor");
        *bad = true;
    }
    return a->t;
}

oct_status shape_constantofshape(ref_infer *inf)
{
    const ir_node *node = inf->node;
    bool bad;
    const ir_tensor *v = fill_value(inf->ctx, node, &bad);
    if (bad)
        return OCT_EINPUT;
    ref_shape *out = &inf->out[0];
    out->dtype = v ? v->dtype : IR_DT_FLOAT;
    const ref_shape *s = &inf->in[0];
    if (s->dtype != IR_DT_UNDEFINED && s->dtype != IR_DT_INT64)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                               "shape must be int64, not %s",
                               ir_dtype_name(s->dtype));
    if (s->rank > 1)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                               "shape must be 1-D");
    const ir_tensor *c = inf->in_const[0];
    if (!c) {
        out->rank = s->rank == 1 && s->dims[0] >= 0 &&
                            s->dims[0] <= REF_MAX_RANK
                        ? (int)s->dims[0]
                        : -1;
        for (int k = 0; k < out->rank; k++)
            out->dims[k] = -1;
        return OCT_OK;
    }
    int n = ref_const_ints(c, out->dims, REF_MAX_RANK);
    if (n < 0)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                               "shape must be an int64 vector of at most %d "
                               "entries", REF_MAX_RANK);
    out->rank = n;
    for (int k = 0; k < n; k++)
        if (out->dims[k] < 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                                   "dim %d is negative (%lld)", k,
                                   (long long)out->dims[k]);
    return OCT_OK;
}

oct_status ref_constantofshape(ref_call *call)
{
    bool bad;
    const ir_tensor *v = fill_value(call->ctx, call->node, &bad);
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
