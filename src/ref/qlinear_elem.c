/*
 * qlinear_elem.c: reference kernels of ONNX Runtime's integer element-wise
 * contrib ops: QLinearAdd and QLinearMul (numpy broadcasting),
 * QLinearConcat (each input requantized to the output's scale and zero
 * point), QLinearAveragePool (AveragePool's windows, pads, auto_pad,
 * strides, dilations, ceil_mode and count_include_pad) and
 * QLinearGlobalAveragePool, on int8 or uint8 data.
 *
 * The arithmetic is the contract in ops/qlinear_elem.h: exact integer
 * differences d = q - z, their int32 products and window sums, then one
 * requantization in float32 (each operation rounded to nearest even; this
 * file builds with -ffp-contract=off so no multiply-add is fused), rounded
 * half to even and saturated.  The compiled lowerings
 * (src/codegen/lower_qlinear_elem.c) produce the same bits.
 *
 * Window sums: at most kernel-volume taps of |d| <= 255, exact in int32 for
 * every window below 2^23 taps; the global pool wraps in two's complement
 * beyond that, as the compiled code does (planes of 8 million elements).
 *
 * The shape and type rules are in src/ops/shape_qlinear_elem.c.
 */
#include <string.h>

#include "ops/qlinear_elem.h"
#include "ref/eltwise.h"
#include "ref/qlinear.h"

/* Zero point of input i (0 when omitted), scale of input i, the output's
 * range. */
static int32_t zero_in(const ref_call *call, int i)
{
    return i < call->n_in && call->in[i] ? load8(call->in[i], 0) : 0;
}

static float scale_in(const ref_call *call, int i)
{
    return ((const float *)call->in[i]->data)[0];
}

static void out_range(const ir_tensor *y, int32_t *lo, int32_t *hi)
{
    *lo = y->dtype == IR_DT_INT8 ? -128 : 0;
    *hi = y->dtype == IR_DT_INT8 ? 127 : 255;
}

oct_status ref_qlinearbinary(ref_call *call)
{
    const ir_tensor *a = call->in[0], *b = call->in[3];
    ir_tensor *y = call->out[0];
    int32_t za = zero_in(call, 2), zb = zero_in(call, 5), zy = zero_in(call, 7), lo, hi;
    float sa = scale_in(call, 1), sb = scale_in(call, 4), sy = scale_in(call, 6);
    out_range(y, &lo, &hi);
    ops_shape as, bs, ys;
    ops_shape_of(a, &as);
    ops_shape_of(b, &bs);
    ops_shape_of(y, &ys);
    const ops_shape *shapes[2] = {&as, &bs};
    ref_bcast_iter it;
    ref_bcast_init(&it, &ys, 2, shapes);
    bool mul = call->node->op == IR_OP_QLINEARMUL;
    float ma = mul ? ops_qmul_multiplier(sa, sb, sy) : ops_qelem_ratio(sa, sy);
    float mb = ops_qelem_ratio(sb, sy);
    for (uint64_t i = 0; i < y->nelems; i++, ref_bcast_next(&it)) {
        int32_t da = load8(a, it.off[0]) - za, db = load8(b, it.off[1]) - zb;
        /* da * db is at most 255 * 255 in magnitude: exact in int32 and in
         * float32 */
        float v = mul ? (float)(da * db) * ma : ops_qadd_value(da, db, ma, mb);
        store8(y, i, ops_qelem_out(v, zy, lo, hi));
    }
    return OCT_OK;
}

oct_status ref_qlinearconcat(ref_call *call)
{
    ir_tensor *y = call->out[0];
    int32_t zy = zero_in(call, 1), lo, hi;
    float sy = scale_in(call, 0);
    out_range(y, &lo, &hi);
    int axis = (int)ir_attr_int(call->node, "axis", 0);
    if (axis < 0)
        axis += (int)y->rank;
    uint64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= (uint64_t)y->dims[d];
    for (int d = axis + 1; d < (int)y->rank; d++)
        inner *= (uint64_t)y->dims[d];
    uint64_t y_row = (uint64_t)y->dims[axis] * inner, at = 0;
    for (int x_i = 2; x_i + 2 < call->n_in; x_i += 3) {
        const ir_tensor *x = call->in[x_i];
        int32_t zx = zero_in(call, x_i + 2);
        float m = ops_qelem_ratio(scale_in(call, x_i + 1), sy);
        uint64_t row = (uint64_t)x->dims[axis] * inner;
        for (uint64_t o = 0; o < outer; o++)
            for (uint64_t j = 0; j < row; j++)
                store8(y, o * y_row + at + j,
                       ops_qelem_out((float)(load8(x, o * row + j) - zx) * m, zy, lo, hi));
        at += row;
    }
    return OCT_OK;
}

/* Sum of dx over one window and the count AveragePool divides by: taps
 * inside the input, or with include_pad inside the padded input. */
static void window_sum(const ir_tensor *x, uint64_t plane_off, const ops_window *w,
                       const int64_t *opos, int32_t zx, bool include_pad, int32_t *sum,
                       int64_t *count)
{
    int ns = w->n_spatial;
    int64_t taps = 1;
    for (int i = 0; i < ns; i++)
        taps *= w->kernel[i];
    uint32_t acc = 0; /* two's-complement wrap, as int32 */
    int64_t n = 0;
    for (int64_t k = 0; k < taps; k++) {
        int64_t kt = k, off = 0, mul = 1;
        bool inside = true, padded = true;
        for (int i = ns - 1; i >= 0; i--) {
            int64_t kk = kt % w->kernel[i];
            kt /= w->kernel[i];
            int64_t ip = opos[i] * w->stride[i] - w->pad_begin[i] + kk * w->dilation[i];
            inside &= ip >= 0 && ip < w->in[i];
            padded &= ip >= -w->pad_begin[i] && ip < w->in[i] + w->pad_end[i];
            off += ip * mul;
            mul *= w->in[i];
        }
        if (inside)
            acc += (uint32_t)(load8(x, plane_off + (uint64_t)off) - zx);
        n += include_pad ? padded : inside;
    }
    *sum = (int32_t)acc;
    *count = n;
}

oct_status ref_qlinearavgpool(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int32_t zx = zero_in(call, 2), zy = zero_in(call, 4), lo, hi;
    float m = ops_qelem_ratio(scale_in(call, 1), scale_in(call, 3));
    out_range(y, &lo, &hi);
    ops_shape xs;
    ops_shape_of(x, &xs);
    int ns = xs.rank - 2;
    int64_t kernel[OPS_MAX_RANK];
    ops_window w;
    oct_status st = ops_pool_kernel(call->ctx, call->node, ns, kernel);
    if (st == OCT_OK)
        st = ops_window_init(call->ctx, call->node, &xs, kernel,
                             ir_attr_int(call->node, "ceil_mode", 0) != 0, &w);
    if (st != OCT_OK)
        return st;
    bool include_pad = ir_attr_int(call->node, "count_include_pad", 0) != 0;
    uint64_t planes = (uint64_t)(xs.dims[0] * xs.dims[1]), in_sp = 1, out_sp = 1;
    for (int i = 0; i < ns; i++) {
        in_sp *= (uint64_t)w.in[i];
        out_sp *= (uint64_t)w.out[i];
    }
    for (uint64_t p = 0; p < planes; p++)
        for (uint64_t o = 0; o < out_sp; o++) {
            int64_t opos[OPS_MAX_RANK];
            uint64_t rest = o;
            for (int i = ns - 1; i >= 0; i--) {
                opos[i] = (int64_t)(rest % (uint64_t)w.out[i]);
                rest /= (uint64_t)w.out[i];
            }
            int32_t sum;
            int64_t count;
            window_sum(x, p * in_sp, &w, opos, zx, include_pad, &sum, &count);
            /* a window wholly in the padding has no taps: ops_window_init
             * never makes one, but count 0 would divide by zero */
            float v = count ? ops_qavg_value(sum, m, count) : 0.0f;
            store8(y, p * out_sp + o, ops_qelem_out(v, zy, lo, hi));
        }
    return OCT_OK;
}

oct_status ref_qlinearglobalavgpool(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int32_t zx = zero_in(call, 2), zy = zero_in(call, 4), lo, hi;
    float m = ops_qelem_ratio(scale_in(call, 1), scale_in(call, 3));
    out_range(y, &lo, &hi);
    uint64_t planes = (uint64_t)(x->dims[0] * x->dims[1]), inner = 1;
    for (int d = 2; d < (int)x->rank; d++)
        inner *= (uint64_t)x->dims[d];
    for (uint64_t p = 0; p < planes; p++) {
        uint32_t acc = 0; /* two's-complement wrap, as int32 */
        for (uint64_t i = 0; i < inner; i++)
            acc += (uint32_t)(load8(x, p * inner + i) - zx);
        float v = inner ? ops_qavg_value((int32_t)acc, m, (int64_t)inner) : 0.0f;
        store8(y, p, ops_qelem_out(v, zy, lo, hi));
    }
    return OCT_OK;
}
