/*
 * shape_reduce.c: the shape and type rules of the Reduce* family and
 * ArgMax/ArgMin. Shared by the shape-inference pass and the interpreter,
 * whose kernels are in src/ref/reduce.c.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static bool axes_from_input(const ir_node *node, int64_t opset)
{
    return node->op == IR_OP_REDUCESUM ? opset >= 13 : opset >= 18;
}

/* Reads axes against rank (known); false after a diagnostic. */
bool ops_reduce_resolve(ops_infer *inf, int rank, ops_reduce_plan *p)
{
    const ir_node *node = inf->node;
    int64_t axes[OPS_MAX_RANK];
    int n = 0;
    memset(p, 0, sizeof *p);
    if (axes_from_input(node, inf->opset)) {
        if (inf->n_in > 1 && node->in[1]) {
            const ir_tensor *c = inf->in_const[1];
            if (!c)
                return true; /* unknown */
            if (c->nelems > OPS_MAX_RANK ||
                (n = ops_const_ints(c, axes, OPS_MAX_RANK)) < 0) {
                oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                "axes must be an int64 vector of at most %d",
                                OPS_MAX_RANK);
                return false;
            }
        }
    } else {
        const ir_attr *a = ir_node_attr(node, "axes");
        if (a && a->type == IR_ATTR_INTS) {
            if (a->n > OPS_MAX_RANK) {
                oct_node_error(inf->ctx, OCT_EINPUT, node, "too many axes");
                return false;
            }
            n = (int)a->n;
            if (n) /* an empty list has a NULL array */
                memcpy(axes, a->ints, (size_t)n * sizeof *axes);
        }
    }
    p->known = true;
    if (n == 0) {
        if (ir_attr_int(node, "noop_with_empty_axes", 0))
            p->noop = true;
        else
            for (int k = 0; k < rank; k++)
                p->reduced[k] = true;
        return true;
    }
    for (int i = 0; i < n; i++) {
        int ax;
        if (!ops_norm_axis(axes[i], rank, &ax) || p->reduced[ax]) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "axis %lld out of range or repeated for rank %d",
                           (long long)axes[i], rank);
            return false;
        }
        p->reduced[ax] = true;
    }
    return true;
}

oct_status ops_shape_reduce(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_shape *out = &inf->out[0];
    out->dtype = x->dtype;
    bool keep = ir_attr_int(inf->node, "keepdims", 1) != 0;
    if (x->rank < 0) {
        out->rank = -1;
        return OCT_OK;
    }
    ops_reduce_plan p;
    if (!ops_reduce_resolve(inf, x->rank, &p))
        return OCT_EINPUT;
    if (!p.known) {
        out->rank = keep ? x->rank : -1;
        for (int k = 0; k < out->rank; k++)
            out->dims[k] = -1;
        return OCT_OK;
    }
    if (p.noop) {
        *out = *x;
        return OCT_OK;
    }
    out->rank = 0;
    for (int k = 0; k < x->rank; k++) {
        if (!p.reduced[k])
            out->dims[out->rank++] = x->dims[k];
        else if (keep)
            out->dims[out->rank++] = 1;
    }
    return OCT_OK;
}

/* ArgMax/ArgMin along `axis` (default 0): the index of the first extreme
 * value, or of the last with select_last_index (opset 12); INT64 output
 * with the axis kept as 1 (keepdims, default) or dropped.  Values compare
 * as doubles; NaN never wins a comparison. */
oct_status ops_shape_argmax(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_shape *out = &inf->out[0];
    out->dtype = IR_DT_INT64;
    bool keep = ir_attr_int(inf->node, "keepdims", 1) != 0;
    if (x->rank < 0) {
        out->rank = -1;
        return OCT_OK;
    }
    int axis;
    int64_t a = ir_attr_int(inf->node, "axis", 0);
    if (!ops_norm_axis(a, x->rank, &axis))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "axis %lld out of range for rank %d",
                              (long long)a, x->rank);
    if (x->dims[axis] == 0)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "cannot take the arg-extreme of an empty axis");
    out->rank = 0;
    for (int d = 0; d < x->rank; d++) {
        if (d != axis)
            out->dims[out->rank++] = x->dims[d];
        else if (keep)
            out->dims[out->rank++] = 1;
    }
    return OCT_OK;
}
