/*
 * shape_resize.c: the shape and type rules of Resize. Shared by the shape-
 * inference pass and the interpreter, whose kernels are in src/ref/resize.c.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

bool ops_attr_is(const ir_node *node, const char *name, const char *value,
                 const char *dflt)
{
    const ir_attr *a = ir_node_attr(node, name);
    if (!a || a->type != IR_ATTR_STRING)
        return !strcmp(value, dflt);
    return a->s.len == strlen(value) && !memcmp(a->s.data, value, a->s.len);
}

/* Reads a float vector input (FLOAT, DOUBLE, FLOAT16) into v; count or -1. */
static int const_floats(const ir_tensor *t, double *v, int max)
{
    if (!t || t->rank > 1 || t->nelems > (uint64_t)max || !ops_dt_is_float(t->dtype))
        return -1;
    for (uint64_t i = 0; i < t->nelems; i++)
        v[i] = ops_get(t, i);
    return (int)t->nelems;
}

oct_status ops_resize_make_plan(oct_ctx *ctx, const ir_node *node, int64_t opset,
                                const ops_shape *x, const ir_tensor *const *in,
                                int n_in, ops_resize_plan *p)
{
    memset(p, 0, sizeof *p);
    p->rank = x->rank;
    if (x->rank < 0)
        return OCT_OK;
    int rank = x->rank;
    int scales_at = opset < 11 ? 1 : 2, sizes_at = opset < 11 ? -1 : 3;
    bool has_scales = n_in > scales_at && node->in[scales_at];
    bool has_sizes = sizes_at > 0 && n_in > sizes_at && node->in[sizes_at];
    const ir_tensor *ts = has_scales ? in[scales_at] : NULL;
    const ir_tensor *tz = has_sizes ? in[sizes_at] : NULL;
    /* an empty tensor counts as absent */
    if (ts && ts->nelems == 0) {
        has_scales = false;
        ts = NULL;
    }
    if (tz && tz->nelems == 0) {
        has_sizes = false;
        tz = NULL;
    }
    if (!has_scales && !has_sizes)
        return oct_node_error(ctx, OCT_EINPUT, node, "one of scales or sizes is required");
    /* both present and one not known yet (it may be empty): output unknown */
    bool undecided = has_scales && has_sizes && (!ts || !tz);
    int64_t axes[OPS_MAX_RANK];
    int n_axes = rank;
    for (int i = 0; i < rank; i++)
        axes[i] = i;
    const ir_attr *ax = ir_node_attr(node, "axes");
    if (ax && ax->type == IR_ATTR_INTS) {
        if (ax->n > (size_t)rank)
            return oct_node_error(ctx, OCT_EINPUT, node, "more axes than rank %d", rank);
        n_axes = (int)ax->n;
        for (int i = 0; i < n_axes; i++) {
            int a;
            if (!ops_norm_axis(ax->ints[i], rank, &a) || p->resized[a])
                return oct_node_error(ctx, OCT_EINPUT, node,
                                      "axis %lld is out of range or repeated",
                                      (long long)ax->ints[i]);
            axes[i] = a;
            p->resized[a] = true;
        }
    } else {
        for (int i = 0; i < rank; i++)
            p->resized[i] = true;
    }
    for (int d = 0; d < rank; d++) {
        p->out[d] = p->resized[d] ? -1 : x->dims[d];
        p->scale[d] = 1;
        p->roi_start[d] = 0;
        p->roi_end[d] = 1;
    }
    /* roi (tf_crop_and_resize only) */
    if (opset >= 11 && n_in > 1 && node->in[1] && in[1] && in[1]->nelems > 0 &&
        ops_attr_is(node, "coordinate_transformation_mode", "tf_crop_and_resize", "half_pixel")) {
        double roi[2 * OPS_MAX_RANK];
        int n = const_floats(in[1], roi, 2 * OPS_MAX_RANK);
        if (n != 2 * n_axes)
            return oct_input_error(ctx, OCT_EINPUT, node, 1,
                                   "roi must hold %d floats (start and end per axis)",
                                   2 * n_axes);
        for (int i = 0; i < n_axes; i++) {
            p->roi_start[axes[i]] = roi[i];
            p->roi_end[axes[i]] = roi[n_axes + i];
        }
    }
    if (undecided)
        return OCT_OK;
    if (has_scales && has_sizes)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "scales and sizes may not both be given");
    bool dims_known = true;
    for (int d = 0; d < rank; d++)
        dims_known &= x->dims[d] >= 0;
    if (has_scales) {
        if (!ts)
            return OCT_OK;
        double sc[OPS_MAX_RANK];
        int n = const_floats(ts, sc, OPS_MAX_RANK);
        if (n != n_axes)
            return oct_input_error(ctx, OCT_EINPUT, node, scales_at,
                                   "scales must hold %d floats, one per axis", n_axes);
        for (int i = 0; i < n_axes; i++) {
            if (!(sc[i] > 0))
                return oct_input_error(ctx, OCT_EINPUT, node, scales_at,
                                       "scale %g is not positive", sc[i]);
            int d = (int)axes[i];
            p->scale[d] = sc[i];
            p->out[d] = x->dims[d] < 0 ? -1 : (int64_t)floor(sc[i] * (double)x->dims[d]);
        }
        p->known = dims_known;
        return OCT_OK;
    }
    if (!tz)
        return OCT_OK;
    int64_t sz[OPS_MAX_RANK];
    int n = ops_const_ints(tz, sz, OPS_MAX_RANK);
    if (n != n_axes)
        return oct_input_error(ctx, OCT_EINPUT, node, sizes_at,
                               "sizes must hold %d integers, one per axis", n_axes);
    for (int i = 0; i < n_axes; i++)
        if (sz[i] < 0)
            return oct_input_error(ctx, OCT_EINPUT, node, sizes_at,
                                   "size %lld is negative", (long long)sz[i]);
    bool not_larger = ops_attr_is(node, "keep_aspect_ratio_policy", "not_larger", "stretch");
    bool not_smaller = ops_attr_is(node, "keep_aspect_ratio_policy", "not_smaller", "stretch");
    if (!not_larger && !not_smaller &&
        !ops_attr_is(node, "keep_aspect_ratio_policy", "stretch", "stretch"))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "keep_aspect_ratio_policy must be stretch, not_larger "
                              "or not_smaller");
    if (!dims_known) {
        if (!not_larger && !not_smaller)
            for (int i = 0; i < n_axes; i++)
                p->out[axes[i]] = sz[i];
        return OCT_OK;
    }
    for (int i = 0; i < n_axes; i++) {
        int d = (int)axes[i];
        if (x->dims[d] == 0)
            return oct_input_error(ctx, OCT_EINPUT, node, 0,
                                   "cannot resize dim %d of size 0", d);
        p->scale[d] = (double)sz[i] / (double)x->dims[d];
        p->out[d] = sz[i];
    }
    if (not_larger || not_smaller) {
        double s = p->scale[axes[0]];
        for (int i = 1; i < n_axes; i++) {
            double v = p->scale[axes[i]];
            s = not_larger ? (v < s ? v : s) : (v > s ? v : s);
        }
        for (int i = 0; i < n_axes; i++) {
            int d = (int)axes[i];
            p->scale[d] = s;
            p->out[d] = (int64_t)(s * (double)x->dims[d] + 0.5);
        }
    }
    p->known = true;
    return OCT_OK;
}

oct_status ops_shape_resize(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_resize_plan p;
    oct_status st = ops_resize_make_plan(inf->ctx, inf->node, inf->opset, x,
                                     inf->in_const, inf->n_in, &p);
    if (st != OCT_OK)
        return st;
    ops_shape out = *x;
    for (int d = 0; d < out.rank; d++)
        out.dims[d] = p.out[d];
    inf->out[0] = out;
    return OCT_OK;
}
