/*
 * shape_unique.c: Unique, whose output length depends on the input values
 * (IR_OPF_DATA_LENGTH: interpreted only).  The selection lives here
 * because the shape rule runs it at run time to size the outputs; the
 * interpreter (src/ref/unique.c) runs it again to fill them.
 *
 * Without `axis` the elements of the flattened input are compared, with it
 * the slices along the axis (all other dims), element by element in
 * row-major order: floats as doubles (NaN equals nothing, as in numpy's
 * comparison), integers and BOOL as int64.  The unique ones are listed in
 * order of first occurrence, or ascending (`sorted`, the default;
 * slices lexicographically).  Outputs: Y, each one's first index in X,
 * for each element (slice) of X the position of its value in Y, and each
 * one's count.  Plain O(n^2) comparisons: a reference, not a fast path.
 */
#include "ops/ops.h"
#include <string.h>

#include "ops/rules.h"

typedef struct slices {
    const ir_tensor *x;
    int64_t n, outer, inner;
    bool is_float;
} slices;

/* <0, 0, >0 as slice a sorts before, equals, after slice b. */
static int cmp_slices(const slices *s, int64_t a, int64_t b)
{
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t i = 0; i < s->inner; i++) {
            uint64_t pa = (uint64_t)((o * s->n + a) * s->inner + i);
            uint64_t pb = (uint64_t)((o * s->n + b) * s->inner + i);
            if (s->is_float) {
                double va = ops_get(s->x, pa), vb = ops_get(s->x, pb);
                if (va < vb)
                    return -1;
                if (va > vb)
                    return 1;
                if (va != vb) /* a NaN: unequal, ordered by position */
                    return a < b ? -1 : 1;
            } else {
                int64_t va = ops_get_i64(s->x, pa), vb = ops_get_i64(s->x, pb);
                if (va != vb)
                    return va < vb ? -1 : 1;
            }
        }
    return 0;
}

oct_status ops_unique_select(oct_ctx *ctx, const ir_node *node, const ir_tensor *x,
                             int64_t *first, int64_t *inverse, int64_t *counts,
                             int64_t *n_unique)
{
    slices s = {.x = x, .n = (int64_t)x->nelems, .outer = 1, .inner = 1,
                .is_float = ops_dt_is_float(x->dtype)};
    const ir_attr *a = ir_node_attr(node, "axis");
    if (a) {
        int axis;
        if (!ops_norm_axis(a->i, x->rank, &axis))
            return oct_node_error(ctx, OCT_EINPUT, node, "axis out of range");
        ops_axis_split(x->rank, x->dims, axis, false, &s.outer, &s.n, &s.inner);
    }
    bool sorted = ir_attr_int(node, "sorted", 1) != 0;
    /* first occurrences in order; inverse[] as an index into that list */
    int64_t u = 0;
    for (int64_t i = 0; i < s.n; i++) {
        int64_t k = 0;
        while (k < u && cmp_slices(&s, first[k], i) != 0)
            k++;
        if (k == u) {
            first[u] = i;
            counts[u++] = 0;
        }
        counts[k]++;
        inverse[i] = k;
    }
    if (sorted) { /* insertion sort of the unique ones, carrying counts */
        int64_t *pos = inverse + s.n; /* scratch: old list position -> new */
        int64_t *order = pos + u;
        for (int64_t k = 0; k < u; k++)
            order[k] = k;
        for (int64_t k = 1; k < u; k++)
            for (int64_t j = k; j > 0 && cmp_slices(&s, first[order[j]], first[order[j - 1]]) < 0;
                 j--) {
                int64_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (int64_t k = 0; k < u; k++)
            pos[order[k]] = k;
        for (int64_t i = 0; i < s.n; i++)
            inverse[i] = pos[inverse[i]];
        /* first and counts in sorted order */
        for (int64_t k = 0; k < u; k++)
            order[k] = first[order[k]]; /* the first index of the k-th smallest */
        for (int64_t k = 0; k < u; k++)
            counts[k] = 0;
        for (int64_t i = 0; i < s.n; i++)
            counts[inverse[i]]++;
        memcpy(first, order, (size_t)u * sizeof *first);
    }
    *n_unique = u;
    return OCT_OK;
}

int64_t ops_unique_slices(const ir_node *node, const ir_tensor *x)
{
    const ir_attr *a = ir_node_attr(node, "axis");
    int axis;
    if (!a)
        return (int64_t)x->nelems;
    return ops_norm_axis(a->i, x->rank, &axis) ? x->dims[axis] : -1;
}

oct_status ops_shape_unique(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (x->dtype != IR_DT_UNDEFINED && ir_dtype_info(x->dtype)->bits < 8)
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, 0, "element type %s "
                               "is not supported by Unique", ir_dtype_name(x->dtype));
    const ir_attr *a = ir_node_attr(inf->node, "axis");
    int axis = -1;
    if (a && x->rank >= 0 && !ops_norm_axis(a->i, x->rank, &axis))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "axis out of range");
    for (int k = 0; k < inf->n_out; k++) {
        inf->out[k].dtype = k ? IR_DT_INT64 : x->dtype;
        inf->out[k].rank = 1;
        inf->out[k].dims[0] = -1;
    }
    if (a) {
        inf->out[0] = *x;
        if (x->rank >= 0)
            inf->out[0].dims[axis] = -1;
    }
    const ir_tensor *t = inf->in_const[0];
    if (!t)
        return OCT_OK;
    int64_t n = ops_unique_slices(inf->node, t);
    size_t bytes = (size_t)(n + 1) * 5 * sizeof(int64_t);
    int64_t *buf = oct_malloc(inf->ctx, bytes), u = 0;
    if (!buf)
        return OCT_EINTERNAL;
    oct_status st = ops_unique_select(inf->ctx, inf->node, t, buf, buf + n + 1,
                                      buf + 4 * (n + 1), &u);
    oct_free(inf->ctx, buf, bytes);
    if (st)
        return st;
    if (a)
        inf->out[0].dims[axis] = u;
    else
        inf->out[0].dims[0] = u;
    if (inf->n_out > 1)
        inf->out[1].dims[0] = u;
    if (inf->n_out > 2)
        inf->out[2].dims[0] = n;
    if (inf->n_out > 3)
        inf->out[3].dims[0] = u;
    return OCT_OK;
}
