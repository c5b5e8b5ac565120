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
 * The per-axis tables of input indices and weights (coordinate
 * transformations, nearest rounding, linear/cubic/antialias kernels,
 * exclude_outside, tf_crop_and_resize extrapolation) come from
 * src/ops/resize_table.c, shared with the compiler.  Axes combine as a
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

oct_status ref_resize(ref_call *call)
{
    oct_ctx *ctx = call->ctx;
    const ir_node *node = call->node;
    const ir_tensor *tx = call->in[0];
    ir_tensor *to = call->out[0];
    ops_resize_opts o;
    ops_resize_plan p;
    ops_shape xs;
    ops_shape_of(tx, &xs);
    oct_status st = ops_resize_read_opts(ctx, node, call->opset, &o);
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
    ops_resize_axis tab[OPS_MAX_RANK];
    size_t sizes[OPS_MAX_RANK];
    memset(tab, 0, sizeof tab);
    st = OCT_OK;
    for (int d = 0; d < rank && st == OCT_OK; d++) {
        int start, n;
        ops_resize_window(&o, p.scale[d], &start, &n);
        if (n > OPS_RESIZE_MAX_TAPS) {
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
            ops_resize_fill_axis(&o, p.scale[d], tx->dims[d], to->dims[d], p.roi_start[d],
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
