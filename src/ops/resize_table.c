/*
 * resize_table.c: Resize's per-axis interpolation tables, the part of its
 * semantics both the interpreter (src/ref/resize.c) and the compiler
 * (src/codegen/lower_resize.c) compute from: the mode and coordinate
 * transformation attributes, and for every output coordinate of a resized
 * axis the input indices (clamped into the axis) and weights it combines,
 * following the ONNX reference implementation.
 *
 * Each output coordinate y maps to x = transform(y) in input coordinates;
 * the output is sum_k w_k * X[clamp(base + start + k)] with base = floor(x)
 * (x - 1 when x is an integer, with ratio 1) and weights from the mode:
 * nearest picks one neighbor (nearest_mode), linear [1 - r, r], cubic the
 * Keys kernel with cubic_coeff_a; antialias widens linear/cubic kernels by
 * 1/scale when downsampling.  exclude_outside zeroes weights of neighbors
 * outside the input and renormalizes.  tf_crop_and_resize marks the
 * coordinates whose x falls outside [0, in - 1] (they take
 * extrapolation_value).  Axes combine as a tensor product.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

oct_status ops_resize_read_opts(oct_ctx *ctx, const ir_node *node, int64_t opset,
                                ops_resize_opts *o)
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
    o->mode = (ops_resize_mode)found;
    found = -1;
    for (int i = 0; i < 7; i++)
        if (ops_attr_is(node, "coordinate_transformation_mode", coords[i], "half_pixel"))
            found = i;
    if (found < 0)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "unknown coordinate_transformation_mode");
    o->coord = (ops_resize_coord)found;
    found = -1;
    for (int i = 0; i < 4; i++)
        if (ops_attr_is(node, "nearest_mode", nearests[i], "round_prefer_floor"))
            found = i;
    if (found < 0)
        return oct_node_error(ctx, OCT_EINPUT, node, "unknown nearest_mode");
    o->nearest = (ops_resize_nearest)found;
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

void ops_resize_window(const ops_resize_opts *o, double scale, int *start, int *n)
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

static double resize_x_orig(const ops_resize_opts *o, double y, double scale, int64_t in,
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

void ops_resize_fill_axis(const ops_resize_opts *o, double scale, int64_t in, int64_t out,
                          double roi0, double roi1, const ops_resize_axis *tab)
{
    int start, n;
    ops_resize_window(o, scale, &start, &n);
    double s = o->antialias && scale < 1 ? scale : 1;
    double coef[OPS_RESIZE_MAX_TAPS];
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
