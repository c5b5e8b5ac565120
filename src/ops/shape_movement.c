/*
 * shape_movement.c: the shape and type rules of Transpose, Concat, Split,
 * Slice and Gather. Shared by the shape-inference pass and the interpreter,
 * whose kernels are in src/ref/movement.c.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static void unknown_like(ops_shape *out, ir_dtype dt, int rank)
{
    out->dtype = dt;
    out->rank = rank;
    for (int k = 0; k < rank && k < OPS_MAX_RANK; k++)
        out->dims[k] = -1;
}

/* perm attribute, or the reversal of rank dims; false with a diagnostic if
 * it is not a permutation of 0..rank-1.  *n receives its length (rank, or
 * the attribute's length when rank is unknown). */
bool ops_transpose_perm(ops_infer *inf, int rank, int64_t *perm, int *n)
{
    const ir_attr *a = ir_node_attr(inf->node, "perm");
    if (!a || a->type != IR_ATTR_INTS) {
        *n = rank;
        for (int k = 0; k < rank; k++)
            perm[k] = rank - 1 - k;
        return true;
    }
    if (a->n > OPS_MAX_RANK || (rank >= 0 && (int)a->n != rank)) {
        oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                       "perm has %zu entries for an input of rank %d", a->n,
                       rank);
        return false;
    }
    bool seen[OPS_MAX_RANK] = {false};
    for (size_t k = 0; k < a->n; k++) {
        int64_t p = a->ints[k];
        if (p < 0 || p >= (int64_t)a->n || seen[p]) {
            oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                           "perm is not a permutation (entry %zu = %lld)", k,
                           (long long)p);
            return false;
        }
        seen[p] = true;
        perm[k] = p;
    }
    *n = (int)a->n;
    return true;
}

oct_status ops_shape_transpose(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    int64_t perm[OPS_MAX_RANK];
    int n;
    if (!ops_transpose_perm(inf, x->rank, perm, &n))
        return OCT_EINPUT;
    inf->out[0].dtype = x->dtype;
    inf->out[0].rank = n;
    for (int k = 0; k < n; k++)
        inf->out[0].dims[k] = x->rank >= 0 ? x->dims[perm[k]] : -1;
    return OCT_OK;
}

oct_status ops_shape_concat(ops_infer *inf)
{
    const ir_node *node = inf->node;
    const ir_attr *a = ir_node_attr(node, "axis");
    if (!a || a->type != IR_ATTR_INT)
        return oct_node_error(inf->ctx, OCT_EINPUT, node,
                              "Concat needs an integer axis attribute");
    int rank = -1, first = -1;
    ir_dtype dt = IR_DT_UNDEFINED;
    for (int i = 0; i < inf->n_in; i++) {
        const ops_shape *s = &inf->in[i];
        if (s->dtype != IR_DT_UNDEFINED) {
            if (dt != IR_DT_UNDEFINED && s->dtype != dt)
                return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                       "dtype %s differs from %s",
                                       ir_dtype_name(s->dtype),
                                       ir_dtype_name(dt));
            dt = s->dtype;
        }
        if (s->rank < 0)
            continue;
        if (rank >= 0 && s->rank != rank)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "rank %d differs from input %d's rank %d",
                                   s->rank, first, rank);
        if (rank < 0)
            first = i;
        rank = s->rank;
    }
    ops_shape *out = &inf->out[0];
    if (rank < 0) {
        unknown_like(out, dt, -1);
        return OCT_OK;
    }
    int axis;
    if (rank == 0 || !ops_norm_axis(a->i, rank, &axis))
        return oct_node_error(inf->ctx, OCT_EINPUT, node,
                              "axis %lld out of range for rank %d",
                              (long long)a->i, rank);
    unknown_like(out, dt, rank);
    int64_t total = 0;
    for (int i = 0; i < inf->n_in; i++) {
        const ops_shape *s = &inf->in[i];
        if (s->rank < 0) {
            total = -1;
            continue;
        }
        for (int k = 0; k < rank; k++) {
            if (k == axis || s->dims[k] < 0)
                continue;
            if (out->dims[k] >= 0 && out->dims[k] != s->dims[k])
                return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                       "dim %d is %lld, expected %lld", k,
                                       (long long)s->dims[k],
                                       (long long)out->dims[k]);
            out->dims[k] = s->dims[k];
        }
        if (s->dims[axis] < 0)
            total = -1;
        else if (total >= 0)
            total += s->dims[axis];
    }
    out->dims[axis] = total;
    return OCT_OK;
}

/* Sizes of the n_out parts along an axis of size dim (-1 if unknown): from
 * the split attribute (opset < 13) or input (13+), num_outputs (18+), or
 * equal parts.  Sizes are -1 when they cannot be known yet.  Returns false
 * with a diagnostic on inconsistent sizes. */
bool ops_split_sizes(ops_infer *inf, const ir_tensor *split_in,
                     bool split_unknown, int64_t dim, int64_t *sizes)
{
    const ir_node *node = inf->node;
    int n = inf->n_out;
    const ir_attr *a = inf->opset < 13 ? ir_node_attr(node, "split") : NULL;
    if (split_unknown) {
        for (int i = 0; i < n; i++)
            sizes[i] = -1;
        return true;
    }
    if ((a && a->type == IR_ATTR_INTS) || split_in) {
        int count;
        if (a) {
            count = (int)a->n;
            if (a->n == (size_t)n && n) /* empty lists have NULL arrays */
                memcpy(sizes, a->ints, (size_t)n * sizeof *sizes);
        } else {
            count = (int)split_in->nelems;
            if (count == n && ops_const_ints(split_in, sizes, n) != n)
                return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                       "split must be an integer vector"),
                       false;
        }
        if (count != n) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "split has %d sizes for %d outputs", count, n);
            return false;
        }
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            if (sizes[i] < 0) {
                oct_node_error(inf->ctx, OCT_EINPUT, node,
                               "split size %d is negative", i);
                return false;
            }
            sum += sizes[i];
        }
        if (dim >= 0 && sum != dim) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "split sizes sum to %lld, axis has %lld",
                           (long long)sum, (long long)dim);
            return false;
        }
        return true;
    }
    int64_t num = ir_attr_int(node, "num_outputs", 0);
    if (num && num != n) {
        oct_node_error(inf->ctx, OCT_EINPUT, node,
                       "num_outputs %lld but the node has %d outputs",
                       (long long)num, n);
        return false;
    }
    if (dim < 0) {
        for (int i = 0; i < n; i++)
            sizes[i] = -1;
        return true;
    }
    if (dim % n != 0 && inf->opset < 18) {
        oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                        "axis of size %lld does not split into %d equal parts",
                        (long long)dim, n);
        return false;
    }
    /* Opset 18: parts of ceil(dim / n), the last one smaller. */
    int64_t chunk = (dim + n - 1) / n, left = dim;
    for (int i = 0; i < n; i++) {
        sizes[i] = left < chunk ? left : chunk;
        left -= sizes[i];
    }
    return true;
}

oct_status ops_shape_split(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    int64_t sizes_buf[64];
    int64_t *sizes = sizes_buf;
    if (inf->n_out > 64) {
        sizes = ir_alloc_array(inf->ctx, (size_t)inf->n_out, sizeof *sizes);
        if (!sizes)
            return OCT_EINTERNAL;
    }
    const ir_tensor *split_in = NULL;
    bool split_unknown = false;
    if (inf->opset >= 13 && inf->n_in > 1 && inf->node->in[1]) {
        split_in = inf->in_const[1];
        split_unknown = split_in == NULL;
    }
    int axis = 0;
    int64_t dim = -1;
    if (x->rank >= 0) {
        int64_t a = ir_attr_int(inf->node, "axis", 0);
        if (!ops_norm_axis(a, x->rank, &axis))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis %lld out of range for rank %d",
                                  (long long)a, x->rank);
        dim = x->dims[axis];
    }
    if (!ops_split_sizes(inf, split_in, split_unknown, dim, sizes))
        return OCT_EINPUT;
    for (int i = 0; i < inf->n_out; i++) {
        ops_shape *o = &inf->out[i];
        o->dtype = x->dtype;
        o->rank = x->rank;
        for (int k = 0; k < x->rank; k++)
            o->dims[k] = k == axis ? sizes[i] : x->dims[k];
    }
    return OCT_OK;
}

/* Reads starts/ends/axes/steps (attributes before opset 10, inputs 1-4
 * after) and resolves them against the dims of x (-1 unknown) per the spec:
 * negative starts/ends count from the end, then clamp to [0, dim] for
 * positive steps and [0, dim-1] / [-1, dim-1] for negative ones. */
bool ops_slice_resolve(ops_infer *inf, const ops_shape *x, ops_slice_plan *p)
{
    const ir_node *node = inf->node;
    int64_t starts[OPS_MAX_RANK], ends[OPS_MAX_RANK], axes[OPS_MAX_RANK],
        steps[OPS_MAX_RANK];
    int n = -1, n_axes = -1, n_steps = -1, n_ends;
    memset(p, 0, sizeof *p);
    if (inf->opset < 10) {
        const ir_attr *as = ir_node_attr(node, "starts");
        const ir_attr *ae = ir_node_attr(node, "ends");
        const ir_attr *aa = ir_node_attr(node, "axes");
        if (!as || !ae || as->n != ae->n || as->n > OPS_MAX_RANK ||
            (aa && aa->n != as->n)) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "starts/ends/axes attributes missing or of "
                           "different lengths");
            return false;
        }
        n = n_ends = (int)as->n;
        if (n) { /* empty lists have NULL arrays */
            memcpy(starts, as->ints, (size_t)n * sizeof *starts);
            memcpy(ends, ae->ints, (size_t)n * sizeof *ends);
        }
        if (aa) {
            n_axes = n;
            if (n)
                memcpy(axes, aa->ints, (size_t)n * sizeof *axes);
        }
    } else {
        if (inf->n_in < 3) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "Slice needs inputs starts and ends");
            return false;
        }
        const ir_tensor *c[5] = {NULL};
        for (int i = 1; i < inf->n_in && i < 5; i++) {
            bool present = i < node->n_in && node->in[i];
            c[i] = present ? inf->in_const[i] : NULL;
            if (present && !c[i])
                return true; /* not known yet: p->known stays false */
        }
        if (!c[1] || !c[2])
            return true;
        n = ops_const_ints(c[1], starts, OPS_MAX_RANK);
        n_ends = ops_const_ints(c[2], ends, OPS_MAX_RANK);
        if (c[3])
            n_axes = ops_const_ints(c[3], axes, OPS_MAX_RANK);
        if (c[4])
            n_steps = ops_const_ints(c[4], steps, OPS_MAX_RANK);
        if (n < 0 || n_ends != n || (c[3] && n_axes != n) ||
            (c[4] && n_steps != n)) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "starts, ends, axes and steps must be integer "
                           "vectors of one length");
            return false;
        }
    }
    if (x->rank < 0)
        return true;
    if (n_axes < 0)
        for (int i = 0; i < n; i++)
            axes[i] = i;
    if (n_steps < 0)
        for (int i = 0; i < n; i++)
            steps[i] = 1;
    for (int k = 0; k < x->rank; k++) {
        p->start[k] = 0;
        p->step[k] = 1;
        p->count[k] = x->dims[k];
    }
    for (int i = 0; i < n; i++) {
        int ax;
        if (!ops_norm_axis(axes[i], x->rank, &ax) || p->sliced[ax]) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "axis %lld out of range or repeated",
                           (long long)axes[i]);
            return false;
        }
        if (steps[i] == 0) {
            oct_node_error(inf->ctx, OCT_EINPUT, node, "step is 0");
            return false;
        }
        p->sliced[ax] = true;
        int64_t dim = x->dims[ax], st = starts[i], en = ends[i], sp = steps[i];
        p->step[ax] = sp;
        if (dim < 0) {
            p->count[ax] = -1;
            continue;
        }
        if (st < 0)
            st += dim;
        if (en < 0)
            en += dim;
        if (sp > 0) {
            st = st < 0 ? 0 : st > dim ? dim : st;
            en = en < 0 ? 0 : en > dim ? dim : en;
        } else {
            st = st < 0 ? 0 : st > dim - 1 ? dim - 1 : st;
            en = en < -1 ? -1 : en > dim - 1 ? dim - 1 : en;
        }
        /* count = ceil(|en - st| / |sp|) in unsigned arithmetic, so steps
         * like INT64_MIN cannot overflow. */
        uint64_t mag = sp > 0 ? (uint64_t)sp : 0 - (uint64_t)sp;
        int64_t diff = sp > 0 ? en - st : st - en;
        p->start[ax] = st;
        p->count[ax] = diff > 0 ? (int64_t)(((uint64_t)diff - 1) / mag + 1) : 0;
    }
    p->known = true;
    return true;
}

oct_status ops_shape_slice(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_slice_plan p;
    if (!ops_slice_resolve(inf, x, &p))
        return OCT_EINPUT;
    ops_shape *out = &inf->out[0];
    unknown_like(out, x->dtype, x->rank);
    for (int k = 0; k < x->rank && p.known; k++)
        out->dims[k] = p.count[k];
    return OCT_OK;
}

oct_status ops_shape_gather(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0], *ind = &inf->in[1];
    ops_shape *out = &inf->out[0];
    if (ind->dtype != IR_DT_UNDEFINED && ind->dtype != IR_DT_INT32 &&
        ind->dtype != IR_DT_INT64)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                               "indices must be int32 or int64, not %s",
                               ir_dtype_name(ind->dtype));
    if (x->rank < 0 || ind->rank < 0) {
        unknown_like(out, x->dtype, -1);
        return OCT_OK;
    }
    int axis;
    int64_t a = ir_attr_int(inf->node, "axis", 0);
    if (!ops_norm_axis(a, x->rank, &axis))
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "axis %lld out of range for rank %d",
                               (long long)a, x->rank);
    int rank = x->rank - 1 + ind->rank;
    if (rank > OPS_MAX_RANK)
        return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                              "output rank %d exceeds %d", rank,
                              OPS_MAX_RANK);
    out->dtype = x->dtype;
    out->rank = rank;
    int r = 0;
    for (int k = 0; k < axis; k++)
        out->dims[r++] = x->dims[k];
    for (int k = 0; k < ind->rank; k++)
        out->dims[r++] = ind->dims[k];
    for (int k = axis + 1; k < x->rank; k++)
        out->dims[r++] = x->dims[k];
    return OCT_OK;
}
