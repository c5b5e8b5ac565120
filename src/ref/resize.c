/*
 * resize.c: kernel of Resize (opset 10 and 11+), following
 * the ONNX reference implementation.
 *
 * Inputs: opset 10: X, scales.  From 11: X, roi, scales, sizes (exactly one
 * of scales/sizes non-empty); opset 18 adds attributes axes and
 * keep_aspect_ratio_policy and antialias.  Opset 10 behaves as mode with
 * coordinate_transformation_mode asymmetric and nearest_mode floor.
 *
 * Output size per resized axis: floor(in * scale) for scales; sizes as
 * given (with keep_aspect_ratio_policy not_larger/not_smaller: one common
 * scale s = min/max of sizes/in and out = floor(s * in + 0.5)).  The scale
 * used by the coordinate transforms is the given scale, or out/in (or the
 * common scale) for sizes.
 *
 * Each output coordinate y maps to x = transform(y) in input coordinates;
 * the output is sum_k w_k * X[clamp(base + start + k)] with base = floor(x)
 * (x - 1 when x is an integer, with ratio 1) and weights from the mode:
 * nearest picks one neighbor (nearest_mode), linear [1 - r, r], cubic the
 * Keys kernel with cubic_coeff_a; antialias widens linear/cubic kernels by
 * 1/scale when downsampling.  exclude_outside zeroes weights of neighbors
 * outside the input and renormalizes.  tf_crop_and_resize gives
 * extrapolation_value where x falls outside [0, in - 1].  Axes combine as a
 * tensor product (the separable N-D interpolation).  Sums are in double;
 * integer outputs round half to even and saturate, float outputs round to
 * nearest.
 *
 * The shape and type rules of these ops are in src/ops/shape_resize.c.
 */
#include <math.h>
#include <string.h>

#include "ref/eltwise.h"

/* ---- kernel ----------------------------------------------------------------- */

typedef enum { RS_NEAREST, RS_LINEAR, RS_CUBIC } resize_mode;
typedef enum {
    CT_HALF_PIXEL, CT_HALF_PIXEL_SYMMETRIC, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS,
    CT_ASYMMETRIC, CT_TF_HALF_PIXEL_FOR_NN, CT_TF_CROP_AND_RESIZE
} coord_mode;
typedef enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL } nearest_mode;

typedef struct resize_opts {
    resize_mode mode;
    coord_mode coord;
    nearest_mode nearest;
    double cubic_a, extrapolation;
    bool exclude_outside, antialias;
} resize_opts;

/* Per resized axis: for each output coordinate, up to `width` (index,
 * weight) pairs with non-zero weight, and whether it extrapolates. */
typedef struct axis_table {
    int width;
    int *count;
    int64_t *idx;
    double *w;
    bool *extrap;
} axis_table;

static oct_status resize_read_opts(oct_ctx *ctx, const ir_node *node, int64_t opset,
                                   resize_opts *o)
{
    static const char *modes[] = {"nearest", "linear", "cubic"};
    static const char *coords[] = {"half_pixel", "half_pixel_symmetric",
                                   "pytorch_half_pixel", "align_corners", "asymmetric",
                                   "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *nearests[] = {"round_prefer_floor", "round_prefer_ceil",
                                     "floor", "ceil"};
    memset(o, 0, sizeof *o);
    int found = -1;
    for (int i = 0; i < 3; i++)
        if (ops_attr_is(node, "mode", modes[i], "nearest"))
            found = i;
    if (found < 0 || (opset < 11 && found == RS_CUBIC))
        return oct_node_error(ctx, OCT_EINPUT, node, "mode must be nearest, linear%s",
                              opset < 11 ? "" : " or cubic");
    o->mode = (resize_mode)found;
    found = -1;
    for (int i = 0; i < 7; i++)
        if (ops_attr_is(node, "coordinate_transformation_mode", coords[i], "half_pixel"))
            found = i;
    if (found < 0)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "unknown coordinate_transformation_mode");
    o->coord = (coord_mode)found;
    found = -1;
    for (int i = 0; i < 4; i++)
        if (ops_attr_is(node, "nearest_mode", nearests[i], "round_prefer_floor"))
            found = i;
    if (found < 0)
        return oct_node_error(ctx, OCT_EINPUT, node, "unknown nearest_mode");
    o->nearest = (nearest_mode)found;
    if (opset < 11) {
        o->coord = CT_ASYMMETRIC;
        o->nearest = NM_FLOOR;
    }
    o->cubic_a = ir_attr_float(node, "cubic_coeff_a", -0.75f);
    o->extrapolation = ir_attr_float(node, "extrapolation_value", 0.0f);
    o->exclude_outside = ir_attr_int(node, "exclude_outside", 0) != 0;
    o->antialias = ir_attr_int(node, "antialias", 0) != 0 && o->mode != RS_NEAREST;
    return OCT_OK;
}

static double cubic_w(double x, double a)
{
    x = fabs(x);
    if (x <= 1)
        return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2)
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

/* Kernel window of the mode: neighbors base + start .. base + start + n - 1. */
static void resize_window(const resize_opts *o, double scale, int *start, int *n)
{
    double s = o->antialias && scale < 1 ? scale : 1;
    if (o->mode == RS_NEAREST || (o->mode == RS_LINEAR && !o->antialias)) {
        *start = 0;
        *n = 2;
    } else if (o->mode == RS_LINEAR) {
        *start = (int)floor(-1 / s) + 1;
        *n = 2 - 2 * *start;
    } else if (!o->antialias) {
        *start = -1;
        *n = 4;
    } else {
        *start = (int)floor(-2 / s) + 1;
        *n = 2 - 2 * *start;
    }
}

static double resize_x_orig(const resize_opts *o, double y, double scale, int64_t in,
                            int64_t out_int, double roi0, double roi1)
{
    double out_w = scale * (double)in;
    switch (o->coord) {
    case CT_ALIGN_CORNERS: return out_w == 1 ? 0 : y * (double)(in - 1) / (out_w - 1);
    case CT_ASYMMETRIC: return y / scale;
    case CT_TF_HALF_PIXEL_FOR_NN: return (y + 0.5) / scale;
    case CT_TF_CROP_AND_RESIZE:
        if (out_w == 1)
            return (roi1 - roi0) * (double)(in - 1) / 2 + roi0 * (double)(in - 1);
        return y * (roi1 - roi0) * (double)(in - 1) / (out_w - 1) + roi0 * (double)(in - 1);
    case CT_PYTORCH_HALF_PIXEL: return out_w == 1 ? -0.5 : (y + 0.5) / scale - 0.5;
    case CT_HALF_PIXEL_SYMMETRIC: {
        double adjustment = (double)out_int / out_w, center = (double)in / 2;
        return center * (1 - adjustment) + (y + 0.5) / scale - 0.5;
    }
    default: return (y + 0.5) / scale - 0.5;
    }
}

/* Fills tab for one axis (input size in, output size out). */
static void resize_fill_axis(const resize_opts *o, double scale, int64_t in,
                             int64_t out, double roi0, double roi1, axis_table *tab)
{
    int start, n;
    resize_window(o, scale, &start, &n);
    double s = o->antialias && scale < 1 ? scale : 1;
    double coef[64];
    for (int64_t y = 0; y < out; y++) {
        double x = resize_x_orig(o, (double)y, scale, in, out, roi0, roi1);
        tab->extrap[y] = o->coord == CT_TF_CROP_AND_RESIZE &&
                         (x < 0 || x > (double)(in - 1));
        double fl = floor(x);
        bool is_int = x == fl;
        double r = is_int ? 1 : x - fl;
        int64_t base = (int64_t)fl - (is_int ? 1 : 0);
        double sum = 0;
        for (int k = 0; k < n; k++) {
            double c;
            int i = start + k;
            if (o->mode == RS_NEAREST) {
                bool second;
                if (is_int || o->nearest == NM_CEIL)
                    second = true;
                else if (o->nearest == NM_FLOOR)
                    second = false;
                else if (o->nearest == NM_ROUND_PREFER_FLOOR)
                    second = r > 0.5;
                else
                    second = r >= 0.5;
                c = (k == 1) == second;
            } else if (o->mode == RS_LINEAR) {
                c = o->antialias ? fmax(0, fmin(1, 1 - fabs(((double)i - r) * s)))
                                 : (k == 0 ? 1 - r : r);
            } else {
                c = cubic_w(((double)i - r) * s, o->cubic_a);
            }
            int64_t idx = base + i;
            if (o->exclude_outside && (idx < 0 || idx >= in))
                c = 0;
            coef[k] = c;
            sum += c;
        }
        bool normalize = o->antialias || o->exclude_outside;
        int cnt = 0;
        for (int k = 0; k < n; k++) {
            double c = normalize && sum != 0 ? coef[k] / sum : coef[k];
            if (c == 0)
                continue;
            int64_t idx = base + start + k;
            idx = idx < 0 ? 0 : idx >= in ? in - 1 : idx;
            tab->idx[y * tab->width + cnt] = idx;
            tab->w[y * tab->width + cnt] = c;
            cnt++;
        }
        tab->count[y] = cnt;
    }
}

oct_status ref_resize(ref_call *call)
{
    oct_ctx *ctx = call->ctx;
    const ir_node *node = call->node;
    const ir_tensor *tx = call->in[0];
    ir_tensor *to = call->out[0];
    resize_opts o;
    ops_resize_plan p;
    ops_shape xs;
    ops_shape_of(tx, &xs);
    oct_status st = resize_read_opts(ctx, node, call->opset, &o);
    if (st == OCT_OK)
        st = ops_resize_make_plan(ctx, node, call->opset, &xs, call->in, call->n_in, &p);
    if (st != OCT_OK)
        return st;
    int rank = tx->rank;
    if (to->nelems == 0)
        return OCT_OK;
    for (int d = 0; d < rank; d++)
        if (tx->dims[d] == 0)
            return oct_input_error(ctx, OCT_EINPUT, node, 0,
                                   "cannot resize an empty tensor to a non-empty one");
    axis_table tab[OPS_MAX_RANK];
    size_t sizes[OPS_MAX_RANK];
    memset(tab, 0, sizeof tab);
    st = OCT_OK;
    for (int d = 0; d < rank && st == OCT_OK; d++) {
        int start, n;
        resize_window(&o, p.scale[d], &start, &n);
        if (n > 64) {
            st = oct_node_error(ctx, OCT_EUNSUPPORTED, node,
                                "antialias scale %g needs a kernel wider than 64",
                                p.scale[d]);
            break;
        }
        tab[d].width = n;
        uint64_t cnt = (uint64_t)to->dims[d];
        sizes[d] = (size_t)(cnt * (sizeof(int) + sizeof(bool) +
                                   (uint64_t)n * (sizeof(int64_t) + sizeof(double))));
        uint8_t *mem = oct_malloc(ctx, sizes[d]);
        if (!mem) {
            st = OCT_EINTERNAL;
            break;
        }
        tab[d].idx = (int64_t *)mem;
        tab[d].w = (double *)(tab[d].idx + cnt * (uint64_t)n);
        tab[d].count = (int *)(tab[d].w + cnt * (uint64_t)n);
        tab[d].extrap = (bool *)(tab[d].count + cnt);
        if (!p.resized[d]) {
            for (uint64_t y = 0; y < cnt; y++) {
                tab[d].count[y] = 1;
                tab[d].idx[y * (uint64_t)n] = (int64_t)y;
                tab[d].w[y * (uint64_t)n] = 1;
                tab[d].extrap[y] = false;
            }
        } else {
            resize_fill_axis(&o, p.scale[d], tx->dims[d], to->dims[d], p.roi_start[d],
                             p.roi_end[d], &tab[d]);
        }
    }
    if (st == OCT_OK) {
        int64_t stride[OPS_MAX_RANK], idx[OPS_MAX_RANK] = {0};
        int64_t s = 1;
        for (int d = rank - 1; d >= 0; d--) {
            stride[d] = s;
            s *= tx->dims[d];
        }
        const ir_dtype_traits *tr = ir_dtype_info(to->dtype);
        bool is_int = tr->kind == IR_DK_SINT || tr->kind == IR_DK_UINT;
        double lo = 0, hi = 0;
        if (is_int) {
            hi = tr->kind == IR_DK_UINT ? ldexp(1, (int)tr->bits) - 1
                                        : ldexp(1, (int)tr->bits - 1) - 1;
            lo = tr->kind == IR_DK_UINT ? 0 : -ldexp(1, (int)tr->bits - 1);
        }
        for (uint64_t i = 0; i < to->nelems; i++) {
            bool extrap = false;
            for (int d = 0; d < rank; d++)
                extrap |= tab[d].extrap[idx[d]];
            double v = 0;
            if (extrap) {
                v = o.extrapolation;
            } else {
                /* odometer over the neighbor combinations */
                int k[OPS_MAX_RANK] = {0};
                for (;;) {
                    double w = 1;
                    int64_t off = 0;
                    for (int d = 0; d < rank; d++) {
                        uint64_t at = (uint64_t)idx[d] * (uint64_t)tab[d].width + (uint64_t)k[d];
                        w *= tab[d].w[at];
                        off += tab[d].idx[at] * stride[d];
                    }
                    v += w * (tx->dtype == IR_DT_FLOAT ? ((const float *)tx->data)[off]
                                                       : ops_get(tx, (uint64_t)off));
                    int d = rank - 1;
                    while (d >= 0 && ++k[d] >= tab[d].count[idx[d]])
                        k[d--] = 0;
                    if (d < 0)
                        break;
                }
            }
            if (to->dtype == IR_DT_FLOAT)
                ((float *)to->data)[i] = (float)v;
            else if (is_int)
                ops_set(to, i, fmin(hi, fmax(lo, nearbyint(v))));
            else
                ops_set(to, i, v);
            for (int d = rank - 1; d >= 0; d--) {
                if (++idx[d] < to->dims[d])
                    break;
                idx[d] = 0;
            }
        }
    }
    for (int d = 0; d < rank; d++)
        if (tab[d].idx)
            oct_free(ctx, tab[d].idx, sizes[d]);
    return st;
}
