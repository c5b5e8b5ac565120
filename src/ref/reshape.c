/*
 * reshape.c: shape rules and kernels of the ops that keep the elements in
 * order and only change the shape (Reshape, Flatten, Squeeze, Unsqueeze,
 * Identity, Dropout in inference mode) and of Shape and Size.
 *
 * Their kernels copy the input bytes unchanged, so they work for every dtype
 * (STRING elements are deep-copied into the context's arena).  The shape
 * rules read shape-carrying inputs (Reshape's shape, Squeeze/Unsqueeze axes
 * from opset 13) from in_const when known and report unknown dims (-1) or
 * an unknown rank otherwise.
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

static void set_unknown(ref_shape *out, ir_dtype dt, int rank)
{
    out->dtype = dt;
    out->rank = rank;
    for (int k = 0; k < rank && k < REF_MAX_RANK; k++)
        out->dims[k] = -1;
}

/* ---- Reshape ------------------------------------------------------------ */

oct_status shape_reshape(ref_infer *inf)
{
    const ir_node *node = inf->node;
    const ref_shape *x = &inf->in[0];
    ref_shape *out = &inf->out[0];
    int64_t shape[REF_MAX_RANK];
    int n;
    if (inf->opset < 5) {
        const ir_attr *a = ir_node_attr(node, "shape");
        if (!a || a->type != IR_ATTR_INTS)
            return oct_node_error(inf->ctx, OCT_EINPUT, node,
                                  "Reshape needs a shape attribute");
        if (a->n > REF_MAX_RANK)
            return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, node,
                                  "shape has %zu dims (at most %d)", a->n,
                                  REF_MAX_RANK);
        n = (int)a->n;
        if (n) /* an empty list has a NULL array */
            memcpy(shape, a->ints, (size_t)n * sizeof *shape);
    } else {
        if (inf->n_in < 2 || !node->in[1])
            return oct_node_error(inf->ctx, OCT_EINPUT, node,
                                  "Reshape needs a shape input");
        const ir_tensor *c = inf->in_const[1];
        const ref_shape *s = &inf->in[1];
        if (s->rank > 1 || (c && c->rank != 1))
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                   "shape must be a 1-D tensor");
        if (!c) {
            int rank = s->rank == 1 && s->dims[0] >= 0 ? (int)s->dims[0] : -1;
            if (rank > REF_MAX_RANK)
                rank = -1;
            set_unknown(out, x->dtype, rank);
            return OCT_OK;
        }
        if (c->nelems > REF_MAX_RANK)
            return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, 1,
                                   "shape has %llu dims (at most %d)",
                                   (unsigned long long)c->nelems,
                                   REF_MAX_RANK);
        n = ref_const_ints(c, shape, REF_MAX_RANK);
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

oct_status ref_reshape(ref_call *call) { return copy_input0(call); }

/* ---- Flatten ------------------------------------------------------------ */

oct_status shape_flatten(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    ref_shape *out = &inf->out[0];
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

oct_status ref_flatten(ref_call *call) { return copy_input0(call); }

/* ---- Squeeze / Unsqueeze ------------------------------------------------ */

/* Axes from the attribute (opset < 13) or input 1 (13+).  Returns the count,
 * 0 if absent, -1 if the input exists but is not known (*unknown set), or
 * -2 after a diagnostic. */
static int read_axes(ref_infer *inf, int64_t *axes, bool *unknown)
{
    const ir_node *node = inf->node;
    *unknown = false;
    if (inf->opset < 13) {
        const ir_attr *a = ir_node_attr(node, "axes");
        if (!a || a->type != IR_ATTR_INTS)
            return 0;
        if (a->n > REF_MAX_RANK) {
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
    int n = ref_const_ints(c, axes, REF_MAX_RANK);
    if (n < 0) {
        oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                        "axes must be an int64 vector of at most %d entries",
                        REF_MAX_RANK);
        return -2;
    }
    return n;
}

oct_status shape_squeeze(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    ref_shape *out = &inf->out[0];
    int64_t axes[REF_MAX_RANK];
    bool unknown;
    int n = read_axes(inf, axes, &unknown);
    if (n == -2)
        return OCT_EINPUT;
    if (unknown || x->rank < 0) {
        set_unknown(out, x->dtype, -1);
        return OCT_OK;
    }
    bool drop[REF_MAX_RANK] = {false};
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
        if (!ref_norm_axis(axes[i], x->rank, &ax) || drop[ax])
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

oct_status ref_squeeze(ref_call *call) { return copy_input0(call); }

oct_status shape_unsqueeze(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    ref_shape *out = &inf->out[0];
    int64_t axes[REF_MAX_RANK];
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
    if (rank > REF_MAX_RANK)
        return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                              "output rank %d exceeds %d", rank, REF_MAX_RANK);
    bool ins[REF_MAX_RANK] = {false};
    for (int i = 0; i < n; i++) {
        int ax;
        if (!ref_norm_axis(axes[i], rank, &ax) || ins[ax])
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

oct_status ref_unsqueeze(ref_call *call) { return copy_input0(call); }

/* ---- Identity ----------------------------------------------------------- */

oct_status shape_identity(ref_infer *inf)
{
    inf->out[0] = inf->in[0];
    return OCT_OK;
}

oct_status ref_identity(ref_call *call) { return copy_input0(call); }

/* ---- Dropout (inference) ------------------------------------------------ */

/* Dropout runs in inference mode only: Y = X and the optional mask is all
 * true (BOOL from opset 10, the data type before; old is_test attributes
 * are ignored, as every inference engine does).  From opset 12 a constant
 * training_mode input that is true is unsupported unless ratio is 0, where
 * training is the identity too. */
static oct_status dropout_check(oct_ctx *ctx, const ir_node *node,
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
    if (node->in[1] && c[1] && c[1]->nelems == 1 && ref_get(c[1], 0) == 0.0)
        return OCT_OK;
    return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 2,
                           "Dropout in training mode (random masks) is not "
                           "supported");
}

oct_status shape_dropout(ref_infer *inf)
{
    oct_status st = dropout_check(inf->ctx, inf->node, inf->opset,
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

oct_status ref_dropout(ref_call *call)
{
    oct_status st = dropout_check(call->ctx, call->node, call->opset,
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
        ref_set(mask, i, 1.0);
    return OCT_OK;
}

/* ---- Shape -------------------------------------------------------------- */

/* Resolves Shape's start/end (opset 15) against rank: negative values count
 * from the end, then both clamp to [0, rank]. */
static void shapeof_range(const ir_node *node, int rank, int *lo, int *hi)
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

oct_status shape_shapeof(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    ref_shape *out = &inf->out[0];
    out->dtype = IR_DT_INT64;
    out->rank = 1;
    out->dims[0] = -1;
    if (x->rank >= 0) {
        int lo, hi;
        shapeof_range(inf->node, x->rank, &lo, &hi);
        out->dims[0] = hi - lo;
    }
    return OCT_OK;
}

oct_status ref_shapeof(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    int lo, hi;
    shapeof_range(call->node, x->rank, &lo, &hi);
    int64_t *d = call->out[0]->data;
    for (int k = lo; k < hi; k++)
        d[k - lo] = x->dims[k];
    return OCT_OK;
}

/* ---- Size --------------------------------------------------------------- */

/* Size: the input's element count as an INT64 scalar. */
oct_status shape_size(ref_infer *inf)
{
    inf->out[0].dtype = IR_DT_INT64;
    inf->out[0].rank = 0;
    return OCT_OK;
}

oct_status ref_size(ref_call *call)
{
    *(int64_t *)call->out[0]->data = (int64_t)call->in[0]->nelems;
    return OCT_OK;
}
