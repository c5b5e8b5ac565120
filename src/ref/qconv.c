/*
 * qconv.c: shape rules and reference kernels of ConvInteger and
 * QLinearConv, under the numeric contract of qlinear.c (int32 wrap-around
 * accumulation, float32 requantization); zero points and scales per tensor,
 * the weights' also per output channel.
 */
#include <string.h>

#include "qlinear.h"

/* ---- convolution ----------------------------------------------------------- */

/* Shape of ConvInteger / QLinearConv: x (input xi) [N, C, spatial...], w
 * (input wi) [M, C / group, kernel...]; output [N, M, out...] with the
 * window geometry of ref_window_init (Conv's rule). */
static oct_status qconv_shape(ref_infer *inf, int xi, int wi, ir_dtype out_dt)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ref_shape *x = &inf->in[xi], *w = &inf->in[wi];
    ref_shape *out = &inf->out[0];
    memset(out, 0, sizeof *out);
    out->dtype = out_dt;
    int64_t group = ir_attr_int(node, "group", 1);
    if (group < 1)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "group = %lld must be positive", (long long)group);
    int rank = x->rank >= 0 ? x->rank : w->rank;
    if (rank < 0) {
        out->rank = -1;
        return OCT_OK;
    }
    if (rank < 3)
        return oct_input_error(ctx, OCT_EINPUT, node, x->rank >= 0 ? xi : wi,
                               "expected rank >= 3 (N, C, spatial...), got %d",
                               rank);
    if (x->rank >= 0 && w->rank >= 0 && x->rank != w->rank)
        return oct_input_error(ctx, OCT_EINPUT, node, wi,
                               "weight rank %d differs from the input rank %d",
                               w->rank, x->rank);
    int ns = rank - 2;
    int64_t kernel[REF_MAX_RANK];
    bool kernel_known = true;
    const ir_attr *ks = ir_node_attr(node, "kernel_shape");
    if (ks && (ks->type != IR_ATTR_INTS || ks->n != (size_t)ns))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "kernel_shape must list %d ints", ns);
    for (int i = 0; i < ns; i++) {
        int64_t wd = w->rank >= 0 ? w->dims[i + 2] : -1;
        if (ks && wd >= 0 && ks->ints[i] != wd)
            return oct_input_error(ctx, OCT_EINPUT, node, wi,
                                   "kernel_shape[%d] = %lld but the weight "
                                   "has %lld", i, (long long)ks->ints[i],
                                   (long long)wd);
        kernel[i] = ks ? ks->ints[i] : wd;
        kernel_known &= kernel[i] >= 0;
    }
    int64_t C = x->rank >= 0 ? x->dims[1] : -1;
    int64_t M = w->rank >= 0 ? w->dims[0] : -1, Cg = w->rank >= 0 ? w->dims[1] : -1;
    if (C >= 0 && Cg >= 0 && Cg * group != C)
        return oct_input_error(ctx, OCT_EINPUT, node, wi,
                               "weight has %lld input channels per group, "
                               "input has %lld channels in %lld groups",
                               (long long)Cg, (long long)C, (long long)group);
    if (M >= 0 && M % group != 0)
        return oct_input_error(ctx, OCT_EINPUT, node, wi,
                               "%lld output channels do not split into %lld "
                               "groups", (long long)M, (long long)group);
    out->rank = rank;
    out->dims[0] = x->rank >= 0 ? x->dims[0] : -1;
    out->dims[1] = M;
    if (x->rank < 0 || !kernel_known) {
        for (int i = 0; i < ns; i++)
            out->dims[i + 2] = -1;
        return OCT_OK;
    }
    ref_window win;
    oct_status st = ref_window_init(ctx, node, x, kernel, false, &win);
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < ns; i++)
        out->dims[i + 2] = win.out[i];
    return OCT_OK;
}

/* A convolution zero point / scale: one element, or (weights only) one per
 * output channel. */
static oct_status qconv_param_check(ref_infer *inf, int i, bool per_channel_ok,
                                    int wi)
{
    if (inf->n_in <= i || !inf->node->in[i])
        return OCT_OK;
    const ref_shape *p = &inf->in[i];
    int64_t n = ref_shape_known_elems(p);
    if (n < 0 || n == 1)
        return OCT_OK;
    int64_t M = inf->in[wi].rank >= 1 ? inf->in[wi].dims[0] : -1;
    if (per_channel_ok && p->rank == 1 && (M < 0 || n == M))
        return OCT_OK;
    return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                           "has %lld elements: expected one%s", (long long)n,
                           per_channel_ok ? " or one per output channel" : "");
}

typedef struct qconv_run {
    const ir_tensor *x, *w, *zx, *zw, *sx, *sw, *sy, *zy, *bias;
    ir_tensor *y;
    int xi, wi;
    bool requant;      /* QLinearConv: sx, sw, sy are set */
} qconv_run;

/* Element i of a per-tensor or per-channel parameter. */
static inline uint64_t pc(const ir_tensor *t, int64_t m)
{
    return t->nelems == 1 ? 0 : (uint64_t)m;
}

static oct_status qconv_execute(oct_ctx *ctx, const ir_node *node,
                                const qconv_run *r)
{
    const ir_tensor *x = r->x, *w = r->w;
    ref_shape xs;
    ref_shape_of(x, &xs);
    if (xs.rank < 3 || w->rank != xs.rank)
        return oct_input_error(ctx, OCT_EINPUT, node, r->wi,
                               "input and weight ranks must match and be >= 3");
    int ns = xs.rank - 2;
    if (ns > 3)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, node,
                              "integer convolution supports 1 to 3 spatial "
                              "dims, got %d", ns);
    ref_window win;
    oct_status st = ref_window_init(ctx, node, &xs, w->dims + 2, false, &win);
    if (st != OCT_OK)
        return st;
    int64_t group = ir_attr_int(node, "group", 1);
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = w->dims[1];
    if (group < 1 || Cg * group != C || M % group != 0)
        return oct_input_error(ctx, OCT_EINPUT, node, r->wi,
                               "channel counts do not match group %lld",
                               (long long)group);
    const ir_tensor *pm[5] = {r->zw, r->sw, r->bias, r->zx, r->sx};
    for (int j = 0; j < 5; j++)
        if (pm[j] && pm[j]->nelems != 1 &&
            (j >= 3 || pm[j]->nelems != (uint64_t)M))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "a zero point, scale or bias has %llu "
                                  "elements: expected 1%s",
                                  (unsigned long long)pm[j]->nelems,
                                  j < 3 ? " or one per output channel" : "");
    /* Pad the geometry to 3 spatial dims of size 1. */
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1},
            d[3] = {1, 1, 1}, pb[3] = {0, 0, 0}, o[3] = {1, 1, 1};
    for (int i = 0; i < ns; i++) {
        int j = 3 - ns + i;
        in[j] = win.in[i];
        k[j] = win.kernel[i];
        s[j] = win.stride[i];
        d[j] = win.dilation[i];
        pb[j] = win.pad_begin[i];
        o[j] = win.out[i];
    }
    uint64_t in_sz = (uint64_t)(in[0] * in[1] * in[2]);
    uint64_t k_sz = (uint64_t)(k[0] * k[1] * k[2]);
    uint64_t o_sz = (uint64_t)(o[0] * o[1] * o[2]);
    /* x and w minus their zero points, as int32 (padding then contributes
     * zero, which is the zero point in the quantized domain). */
    int32_t *xz = oct_malloc(ctx, (x->nelems ? x->nelems : 1) * sizeof *xz);
    int32_t *wz = oct_malloc(ctx, (w->nelems ? w->nelems : 1) * sizeof *wz);
    if (!xz || !wz) {
        oct_free(ctx, xz, (x->nelems ? x->nelems : 1) * sizeof *xz);
        oct_free(ctx, wz, (w->nelems ? w->nelems : 1) * sizeof *wz);
        return OCT_EINTERNAL;
    }
    int32_t zx = r->zx ? (int32_t)ref_get_i64(r->zx, 0) : 0;
    for (uint64_t i = 0; i < x->nelems; i++)
        xz[i] = load8(x, i) - zx;
    uint64_t per_m = w->nelems / (M ? (uint64_t)M : 1);
    for (uint64_t i = 0; i < w->nelems; i++)
        wz[i] = load8(w, i) -
                (r->zw ? (int32_t)ref_get_i64(r->zw, pc(r->zw, (int64_t)(i / per_m))) : 0);
    int64_t Mg = M / group;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            int64_t g = m / Mg;
            double mult = 0.0;
            int64_t zy = 0;
            if (r->requant) {
                mult = requant_multiplier(IR_DT_FLOAT, ref_get(r->sx, 0),
                                          ref_get(r->sw, pc(r->sw, m)),
                                          ref_get(r->sy, 0));
                zy = r->zy ? ref_get_i64(r->zy, 0) : 0;
            }
            int64_t bias = r->bias ? ref_get_i64(r->bias, pc(r->bias, m)) : 0;
            uint64_t yoff = (uint64_t)(n * M + m) * o_sz;
            uint64_t o_i = 0;
            for (int64_t o0 = 0; o0 < o[0]; o0++)
                for (int64_t o1 = 0; o1 < o[1]; o1++)
                    for (int64_t o2 = 0; o2 < o[2]; o2++, o_i++) {
                        int64_t acc = bias;
                        for (int64_t c = 0; c < Cg; c++) {
                            const int32_t *xc =
                                xz + (uint64_t)(n * C + g * Cg + c) * in_sz;
                            const int32_t *wc =
                                wz + (uint64_t)(m * Cg + c) * k_sz;
                            for (int64_t k0 = 0; k0 < k[0]; k0++) {
                                int64_t i0 = o0 * s[0] - pb[0] + k0 * d[0];
                                if (i0 < 0 || i0 >= in[0])
                                    continue;
                                for (int64_t k1 = 0; k1 < k[1]; k1++) {
                                    int64_t i1 = o1 * s[1] - pb[1] + k1 * d[1];
                                    if (i1 < 0 || i1 >= in[1])
                                        continue;
                                    const int32_t *xr = xc + (i0 * in[1] + i1) * in[2];
                                    const int32_t *wr = wc + (k0 * k[1] + k1) * k[2];
                                    for (int64_t k2 = 0; k2 < k[2]; k2++) {
                                        int64_t i2 = o2 * s[2] - pb[2] + k2 * d[2];
                                        if (i2 >= 0 && i2 < in[2])
                                            acc += (int64_t)xr[i2] * wr[k2];
                                    }
                                }
                            }
                        }
                        if (r->requant)
                            store8(r->y, yoff + o_i,
                                   requantize(wrap_i32(acc), mult, zy, r->y->dtype));
                        else
                            ((int32_t *)r->y->data)[yoff + o_i] = wrap_i32(acc);
                    }
        }
    oct_free(ctx, xz, (x->nelems ? x->nelems : 1) * sizeof *xz);
    oct_free(ctx, wz, (w->nelems ? w->nelems : 1) * sizeof *wz);
    return OCT_OK;
}

/* ---- ConvInteger: x, w, x_zero_point?, w_zero_point? --------------------- */

oct_status shape_convinteger(ref_infer *inf)
{
    oct_status st = qlin_check_type(inf, 0, is_8bit_int, "int8 or uint8");
    if (st == OCT_OK)
        st = qlin_check_type(inf, 1, is_8bit_int, "int8 or uint8");
    if (st == OCT_OK && inf->n_in > 2 && inf->node->in[2])
        st = qlin_check_type(inf, 2, is_8bit_int, "int8 or uint8");
    if (st == OCT_OK && inf->n_in > 3 && inf->node->in[3])
        st = qlin_check_type(inf, 3, is_8bit_int, "int8 or uint8");
    if (st == OCT_OK)
        st = qconv_param_check(inf, 2, false, 1);
    if (st == OCT_OK)
        st = qconv_param_check(inf, 3, true, 1);
    if (st != OCT_OK)
        return st;
    return qconv_shape(inf, 0, 1, IR_DT_INT32);
}

oct_status ref_convinteger(ref_call *call)
{
    qconv_run r = {0};
    r.x = call->in[0];
    r.w = call->in[1];
    r.zx = call->n_in > 2 ? call->in[2] : NULL;
    r.zw = call->n_in > 3 ? call->in[3] : NULL;
    r.y = call->out[0];
    r.xi = 0;
    r.wi = 1;
    return qconv_execute(call->ctx, call->node, &r);
}

/* ---- QLinearConv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B? -- */

oct_status shape_qlinearconv(ref_infer *inf)
{
    static const int q8[5] = {0, 2, 3, 5, 7};
    oct_status st = qlin_require_scales(inf->ctx, inf->node, inf->n_in);
    for (int j = 0; j < 5 && st == OCT_OK; j++)
        st = qlin_check_type(inf, q8[j], is_8bit_int, "int8 or uint8");
    for (int i = 1; i <= 6 && st == OCT_OK; i += i == 4 ? 2 : 3) {
        st = qlin_check_type(inf, i, is_f32, "float scale");
        if (st == OCT_OK && inf->in_const[i])
            st = qlin_check_scale_values(inf->ctx, inf->node, i, inf->in_const[i]);
    }
    if (st == OCT_OK && inf->n_in > 8 && inf->node->in[8])
        st = qlin_check_type(inf, 8, is_i32, "int32 bias");
    static const int per_tensor[4] = {1, 2, 6, 7};
    for (int j = 0; j < 4 && st == OCT_OK; j++)
        st = qconv_param_check(inf, per_tensor[j], false, 3);
    for (int i = 4; i <= 8 && st == OCT_OK; i += (i == 5 ? 3 : 1))
        st = qconv_param_check(inf, i, true, 3);
    if (st != OCT_OK)
        return st;
    return qconv_shape(inf, 0, 3, qlin_requant_out_type(inf));
}

oct_status ref_qlinearconv(ref_call *call)
{
    oct_status st = qlin_require_scales(call->ctx, call->node, call->n_in);
    for (int i = 1; i <= 6 && st == OCT_OK; i += i == 4 ? 2 : 3)
        st = qlin_check_scale_values(call->ctx, call->node, i, call->in[i]);
    if (st != OCT_OK)
        return st;
    qconv_run r = {0};
    r.x = call->in[0];
    r.sx = call->in[1];
    r.zx = call->in[2];
    r.w = call->in[3];
    r.sw = call->in[4];
    r.zw = call->in[5];
    r.sy = call->in[6];
    r.zy = call->in[7];
    r.bias = call->n_in > 8 ? call->in[8] : NULL;
    r.y = call->out[0];
    r.xi = 0;
    r.wi = 3;
    r.requant = true;
    return qconv_execute(call->ctx, call->node, &r);
}
