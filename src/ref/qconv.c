/*
 * qconv.c: reference kernels of ConvInteger and
 * QLinearConv, under the numeric contract of qlinear.c (int32 wrap-around
 * accumulation, float32 requantization); zero points and scales per tensor,
 * the weights' also per output channel.
 *
 * The shape and type rules of these ops are in src/ops/shape_qconv.c.
 */
#include <string.h>

#include "ref/qlinear.h"

/* ---- convolution ----------------------------------------------------------- */

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
    ops_shape xs;
    ops_shape_of(x, &xs);
    if (xs.rank < 3 || w->rank != xs.rank)
        return oct_input_error(ctx, OCT_EINPUT, node, r->wi,
                               "input and weight ranks must match and be >= 3");
    int ns = xs.rank - 2;
    if (ns > 3)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, node,
                              "integer convolution supports 1 to 3 spatial "
                              "dims, got %d", ns);
    ops_window win;
    oct_status st = ops_window_init(ctx, node, &xs, w->dims + 2, false, &win);
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
    int32_t zx = r->zx ? (int32_t)ops_get_i64(r->zx, 0) : 0;
    for (uint64_t i = 0; i < x->nelems; i++)
        xz[i] = load8(x, i) - zx;
    uint64_t per_m = w->nelems / (M ? (uint64_t)M : 1);
    for (uint64_t i = 0; i < w->nelems; i++)
        wz[i] = load8(w, i) -
                (r->zw ? (int32_t)ops_get_i64(r->zw, pc(r->zw, (int64_t)(i / per_m))) : 0);
    int64_t Mg = M / group;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            int64_t g = m / Mg;
            double mult = 0.0;
            int64_t zy = 0;
            if (r->requant) {
                mult = ops_requant_multiplier(IR_DT_FLOAT, ops_get(r->sx, 0),
                                          ops_get(r->sw, pc(r->sw, m)),
                                          ops_get(r->sy, 0));
                zy = r->zy ? ops_get_i64(r->zy, 0) : 0;
            }
            int64_t bias = r->bias ? ops_get_i64(r->bias, pc(r->bias, m)) : 0;
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
                                   ops_requantize(wrap_i32(acc), mult, zy, r->y->dtype));
                        else
                            ((int32_t *)r->y->data)[yoff + o_i] = wrap_i32(acc);
                    }
        }
    oct_free(ctx, xz, (x->nelems ? x->nelems : 1) * sizeof *xz);
    oct_free(ctx, wz, (w->nelems ? w->nelems : 1) * sizeof *wz);
    return OCT_OK;
}

/* ---- ConvInteger: x, w, x_zero_point?, w_zero_point? --------------------- */

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

oct_status ref_qlinearconv(ref_call *call)
{
    oct_status st = ops_qlin_require_scales(call->ctx, call->node, call->n_in);
    for (int i = 1; i <= 6 && st == OCT_OK; i += i == 4 ? 2 : 3)
        st = ops_qlin_check_scale_values(call->ctx, call->node, i, call->in[i]);
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
