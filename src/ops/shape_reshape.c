/*
 * shape_reshape.c: the shape and type rules of Reshape, Flatten, Squeeze,
 * Unsqueeze, Identity, Dropout, Shape and Size. Shared by the shape-
 * inference pass and the interpreter, whose kernels are in
 * src/ref/reshape.c.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static void set_unknown(ops_shape *out, ir_dtype dt, int rank)
{
    out->dtype = dt;
    out->rank = rank;
    for (int k = 0; k < rank && k < OPS_MAX_RANK; k++)
        out->dims[k] = -1;
}

oct_status ops_shape_reshape(ops_infer *inf)
{
    const ir_node *node = inf->node;
    const ops_shape *x = &inf->in[0];
    ops_shape *out = &inf->out[0];
    int64_t shape[OPS_MAX_RANK];
    int n;
    if (inf->opset < 5) {
        const ir_attr *a = ir_node_attr(node, "shape");
        if (!a || a->type != IR_ATTR_INTS)
            return oct_node_error(inf->ctx, OCT_EINPUT, node,
                                  "Reshape needs a shape attribute");
        if (a->n > OPS_MAX_RANK)
            return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, node,
                                  "shape has %zu dims (at most %d)", a->n,
                                  OPS_MAX_RANK);
        n = (int)a->n;
        if (n) /* an empty list has a NULL array */
            memcpy(shape, a->ints, (size_t)n * sizeof *shape);
    } else {
        if (inf->n_in < 2 || !node->in[1])
            return oct_node_error(inf->ctx, OCT_EINPUT, node,
                                  "Reshape needs a shape input");
        const ir_tensor *c = inf->in_const[1];
        const ops_shape *s = &inf->in[1];
        if (s->rank > 1 || (c && c->rank != 1))
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                   "shape must be a 1-D tensor");
        if (!c) {
            int rank = s->rank == 1 && s->dims[0] >= 0 ? (int)s->dims[0] : -1;
            if (rank > OPS_MAX_RANK)
                rank = -1;
            set_unknown(out, x->dtype, rank);
            return OCT_OK;
        }
        if (c->nelems > OPS_MAX_RANK)
            return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, 1,
                                   "shape has %llu dims (at most %d)",
                                   (unsigned long long)c->nelems,
                                   OPS_MAX_RANK);
        n = ops_const_ints(c, shape, OPS_MAX_RANK);
        if (n < 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                   "shape must be an int64 vector");
    }
    bool allowzero = inf->opset >= 14 && ir_attr_int(node, "allowzero", 0);
    int infer_at = -1;
    bool has_zero = false;
    uint64_t known_prod = 1;
    bool prod_known = true;
    out->dtype = x->dtype;
    out->rank = n;
    for (int k = 0; k < n; k++) {
        int64_t d = shape[k];
        if (d == -1) {
            if (infer_at >= 0)
                return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                       "more than one -1 in shape");
            infer_at = k;
            out->dims[k] = -1;
            continue;
        }
        if (d < -1)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                   "shape entry %d is %lld", k, (long long)d);
        if (d == 0 && !allowzero) {
            if (x->rank >= 0 && k >= x->rank)
                return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                       "shape entry %d is 0 (copy) but the "
                                       "data has rank %d", k, x->rank);
            d = x->rank >= 0 ? x->dims[k] : -1;
        }
        if (d == 0)
            has_zero = true;
        out->dims[k] = d;
        if (d < 0)
            prod_known = false;
        else if (ir_mul_overflow_u64(known_prod, (uint64_t)d, &known_prod))
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                   "shape element count overflows");
    }
    if (allowzero && has_zero && infer_at >= 0)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                               "shape has both 0 and -1 with allowzero");
    uint64_t total;
    bool total_known = x->rank >= 0 && ir_shape_elems(x->rank, x->dims, &total);
    if (!total_known || !prod_known)
        return OCT_OK;
    if (infer_at >= 0) {
        if (known_prod == 0 || total % known_prod != 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                   "cannot infer the -1 dim: %llu elements "
                                   "do not divide by %llu",
                                   (unsigned long long)total,
                                   (unsigned long long)known_prod);
        out->dims[infer_at] = (int64_t)(total / known_prod);
    } else if (known_prod != total) {
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                               "shape has %llu elements, data has %llu",
                               (unsigned long long)known_prod,
                               (unsigned long long)total);
    }
    return OCT_OK;
}

oct_status ops_shape_flatten(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_shape *out = &inf->out[0];
    set_unknown(out, x->dtype, 2);
    if (x->rank < 0)
        return OCT_OK;
    int64_t axis = ir_attr_int(inf->node, "axis", 1);
    if (axis < 0)
        axis += x->rank;
    if (axis < 0 || axis > x->rank)
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "axis %lld out of range for rank %d",
                              (long long)ir_attr_int(inf->node, "axis", 1),
                              x->rank);
    int64_t a = 1, b = 1;
    for (int k = 0; k < x->rank; k++) {
        int64_t *p = k < axis ? &a : &b;
        if (x->dims[k] < 0 || *p < 0)
            *p = -1;
        else
            *p *= x->dims[k];
    }
    out->dims[0] = a;
    out->dims[1] = b;
    return OCT_OK;
}

/* Axes from the attribute (opset < 13) or input 1 (13+).  Returns the count,
 * 0 if absent, -1 if the input exists but is not known (*unknown set), or
 * -2 after a diagnostic. */
static int read_axes(ops_infer *inf, int64_t *axes, bool *unknown)
{
    const ir_node *node = inf->node;
    *unknown = false;
    if (inf->opset < 13) {
        const ir_attr *a = ir_node_attr(node, "axes");
        if (!a || a->type != IR_ATTR_INTS)
            return 0;
        if (a->n > OPS_MAX_RANK) {
            oct_node_error(inf->ctx, OCT_EINPUT, node, "too many axes");
            return -2;
        }
        if (a->n) /* an empty list has a NULL array */
            memcpy(axes, a->ints, a->n * sizeof *axes);
        return (int)a->n;
    }
    if (inf->n_in < 2 || !node->in[1])
        return 0;
    const ir_tensor *c = inf->in_const[1];
    if (!c) {
        *unknown = true;
        return -1;
    }
    int n = ops_const_ints(c, axes, OPS_MAX_RANK);
    if (n < 0) {
        oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                        "axes must be an int64 vector of at most %d entries",
                        OPS_MAX_RANK);
        return -2;
    }
    return n;
}

oct_status ops_shape_squeeze(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_shape *out = &inf->out[0];
    int64_t axes[OPS_MAX_RANK];
    bool unknown;
    int n = read_axes(inf, axes, &unknown);
    if (n == -2)
        return OCT_EINPUT;
    if (unknown || x->rank < 0) {
        set_unknown(out, x->dtype, -1);
        return OCT_OK;
    }
    bool drop[OPS_MAX_RANK] = {false};
    if (n == 0) {
        for (int k = 0; k < x->rank; k++) {
            if (x->dims[k] < 0) {
                set_unknown(out, x->dtype, -1);
                return OCT_OK;
            }
            drop[k] = x->dims[k] == 1;
        }
    }
    for (int i = 0; i < n; i++) {
        int ax;
        if (!ops_norm_axis(axes[i], x->rank, &ax) || drop[ax])
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis %lld out of range or repeated",
                                  (long long)axes[i]);
        if (x->dims[ax] >= 0 && x->dims[ax] != 1)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                                   "cannot squeeze axis %d of size %lld", ax,
                                   (long long)x->dims[ax]);
        drop[ax] = true;
    }
    out->dtype = x->dtype;
    out->rank = 0;
    for (int k = 0; k < x->rank; k++)
        if (!drop[k])
            out->dims[out->rank++] = x->dims[k];
    return OCT_OK;
}

oct_status ops_shape_unsqueeze(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_shape *out = &inf->out[0];
    int64_t axes[OPS_MAX_RANK];
    bool unknown;
    int n = read_axes(inf, axes, &unknown);
    if (n == -2)
        return OCT_EINPUT;
    if (n == 0 && !unknown)
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "Unsqueeze needs axes");
    if (unknown || x->rank < 0) {
        set_unknown(out, x->dtype, -1);
        return OCT_OK;
    }
    int rank = x->rank + n;
    if (rank > OPS_MAX_RANK)
        return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                              "output rank %d exceeds %d", rank, OPS_MAX_RANK);
    bool ins[OPS_MAX_RANK] = {false};
    for (int i = 0; i < n; i++) {
        int ax;
        if (!ops_norm_axis(axes[i], rank, &ax) || ins[ax])
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis %lld out of range or repeated",
                                  (long long)axes[i]);
        ins[ax] = true;
    }
    out->dtype = x->dtype;
    out->rank = rank;
    for (int k = 0, j = 0; k < rank; k++)
        out->dims[k] = ins[k] ? 1 : x->dims[j++];
    return OCT_OK;
}

oct_status ops_shape_identity(ops_infer *inf)
{
    inf->out[0] = inf->in[0];
    return OCT_OK;
}

/* Dropout runs in inference mode only: Y = X and the optional mask is all
 * true (BOOL from opset 10, the data type before; old is_test attributes
 * are ignored, as every inference engine does).  From opset 12 a constant
 * training_mode input that is true is unsupported unless ratio is 0, where
 * training is the identity too. */
oct_status ops_dropout_check(oct_ctx *ctx, const ir_node *node,
                             int64_t opset, const ir_tensor *const *c,
                             int n_in)
{
    if (opset < 12 || n_in < 3 || !node->in[2] || !c[2])
        return OCT_OK;
    if (c[2]->nelems != 1 || c[2]->dtype != IR_DT_BOOL)
        return oct_input_error(ctx, OCT_EINPUT, node, 2,
                               "training_mode must be a bool scalar");
    if (!((const uint8_t *)c[2]->data)[0])
        return OCT_OK;
    if (node->in[1] && c[1] && c[1]->nelems == 1 && ops_get(c[1], 0) == 0.0)
        return OCT_OK;
    return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 2,
                           "Dropout in training mode (random masks) is not "
                           "supported");
}

oct_status ops_shape_dropout(ops_infer *inf)
{
    oct_status st = ops_dropout_check(inf->ctx, inf->node, inf->opset,
                                  inf->in_const, inf->n_in);
    if (st != OCT_OK)
        return st;
    inf->out[0] = inf->in[0];
    if (inf->n_out > 1) {
        inf->out[1] = inf->in[0];
        if (inf->opset >= 10)
            inf->out[1].dtype = IR_DT_BOOL;
    }
    return OCT_OK;
}

/* Resolves Shape's start/end (opset 15) against rank: negative values count
 * from the end, then both clamp to [0, rank]. */
void ops_shapeof_range(const ir_node *node, int rank, int *lo, int *hi)
{
    int64_t s = ir_attr_int(node, "start", 0);
    int64_t e = ir_attr_int(node, "end", rank);
    if (s < 0)
        s += rank;
    if (e < 0)
        e += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    e = e < 0 ? 0 : e > rank ? rank : e;
    *lo = (int)s;
    *hi = (int)(e > s ? e : s);
}

oct_status ops_shape_shapeof(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_shape *out = &inf->out[0];
    out->dtype = IR_DT_INT64;
    out->rank = 1;
    out->dims[0] = -1;
    if (x->rank >= 0) {
        int lo, hi;
        ops_shapeof_range(inf->node, x->rank, &lo, &hi);
        out->dims[0] = hi - lo;
    }
    return OCT_OK;
}

/* Size: the input's element count as an INT64 scalar. */
oct_status ops_shape_size(ops_infer *inf)
{
    inf->out[0].dtype = IR_DT_INT64;
    inf->out[0].rank = 0;
    return OCT_OK;
}
