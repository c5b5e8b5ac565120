/*
 * shape_constant.c: the shape and type rules of Constant and
 * ConstantOfShape. Shared by the shape-inference pass and the interpreter,
 * whose kernels are in src/ref/constant.c.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

/* The attribute that carries a Constant's value, or NULL with a
 * diagnostic. */
const ir_attr *ops_constant_attr(oct_ctx *ctx, const ir_node *node,
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

oct_status ops_shape_constant(ops_infer *inf)
{
    oct_status st;
    const ir_attr *a = ops_constant_attr(inf->ctx, inf->node, &st);
    if (!a)
        return st;
    ops_shape *out = &inf->out[0];
    switch (a->type) {
    case IR_ATTR_TENSOR:
        if (a->t->rank > OPS_MAX_RANK)
            return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                                  "value has rank %d (at most %d)",
                                  a->t->rank, OPS_MAX_RANK);
        ops_shape_of(a->t, out);
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

/* The value attribute (a one-element tensor) or NULL for the float 0
 * default; sets *bad after a diagnostic. */
const ir_tensor *ops_fill_value(oct_ctx *ctx, const ir_node *node, bool *bad)
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

oct_status ops_shape_constantofshape(ops_infer *inf)
{
    const ir_node *node = inf->node;
    bool bad;
    const ir_tensor *v = ops_fill_value(inf->ctx, node, &bad);
    if (bad)
        return OCT_EINPUT;
    ops_shape *out = &inf->out[0];
    out->dtype = v ? v->dtype : IR_DT_FLOAT;
    const ops_shape *s = &inf->in[0];
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
                            s->dims[0] <= OPS_MAX_RANK
                        ? (int)s->dims[0]
                        : -1;
        for (int k = 0; k < out->rank; k++)
            out->dims[k] = -1;
        return OCT_OK;
    }
    int n = ops_const_ints(c, out->dims, OPS_MAX_RANK);
    if (n < 0)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                               "shape must be an int64 vector of at most %d "
                               "entries", OPS_MAX_RANK);
    out->rank = n;
    for (int k = 0; k < n; k++)
        if (out->dims[k] < 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                                   "dim %d is negative (%lld)", k,
                                   (long long)out->dims[k]);
    return OCT_OK;
}
