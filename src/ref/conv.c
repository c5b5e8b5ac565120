/*
 * conv.c: Conv's kernel (its shape rule and the window geometry are in
 * src/ops).
 *
 * Conv computes, per batch n, group g, output channel m (of the group) and
 * output position o:
 *   y[n, m, o] = B[m] + sum_{c, k} x[n, g*Cg + c, o*s + k*d - pad_begin] * W[m, c, k]
 * with out-of-range input positions contributing zero.  float32 goes through
 * im2col (skipped for 1x1, stride 1, unpadded kernels) and the blocked SGEMM
 * of sgemm.c; depthwise float32 convolution uses a direct loop; double and
 * float16/bfloat16 use a plain direct loop accumulating in double (half types
 * round once, to nearest even, on the store).  Float sums are not bit-exact
 * with other engines (FMA and a different summation order change rounding).
 *
 * The shape and type rules of these ops are in src/ops/shape_conv.c.
 */
#include <string.h>

#include "ref/ref.h"
#include "ref/sgemm.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

/* ---- Conv kernel ---------------------------------------------------------- */

/* A window of at most 3 spatial dims, padded with leading unit dims so 1-D
 * and 2-D convolutions run through the 3-D loops. */
typedef struct win3 {
    int64_t in[3], k[3], s[3], d[3], p[3], out[3];
} win3;

static void win3_from(const ops_window *w, win3 *r)
{
    int lead = 3 - w->n_spatial;
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        r->in[i] = j >= 0 ? w->in[j] : 1;
        r->k[i] = j >= 0 ? w->kernel[j] : 1;
        r->s[i] = j >= 0 ? w->stride[j] : 1;
        r->d[i] = j >= 0 ? w->dilation[j] : 1;
        r->p[i] = j >= 0 ? w->pad_begin[j] : 0;
        r->out[i] = j >= 0 ? w->out[j] : 1;
    }
}

/* Output positions o in [lo, hi) of the last axis whose input position
 * o*s - p + k*d lies in [0, in). */
static inline void win3_range(const win3 *g, int64_t kk, int64_t *lo,
                              int64_t *hi)
{
    int64_t off = kk * g->d[2] - g->p[2];
    int64_t a = ops_div_ceil(-off, g->s[2]), b = ops_div_ceil(g->in[2] - off, g->s[2]);
    *lo = a < 0 ? 0 : a > g->out[2] ? g->out[2] : a;
    *hi = b < *lo ? *lo : b > g->out[2] ? g->out[2] : b;
}

/* im2col of one group: col[(c, k0, k1, k2)][(o0, o1, o2)] = x[c, i0, i1, i2]
 * (zero where the input position is padding).  x points at the group's
 * first channel. */
static void im2col3(const float *x, int64_t channels, const win3 *g,
                    float *col)
{
    int64_t in_sp = g->in[0] * g->in[1] * g->in[2];
    int64_t o2n = g->out[2];
    for (int64_t c = 0; c < channels; c++) {
        const float *xc = x + c * in_sp;
        for (int64_t k0 = 0; k0 < g->k[0]; k0++)
        for (int64_t k1 = 0; k1 < g->k[1]; k1++)
        for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
            int64_t lo, hi;
            win3_range(g, k2, &lo, &hi);
            int64_t off2 = k2 * g->d[2] - g->p[2];
            for (int64_t o0 = 0; o0 < g->out[0]; o0++) {
                int64_t i0 = o0 * g->s[0] - g->p[0] + k0 * g->d[0];
                for (int64_t o1 = 0; o1 < g->out[1]; o1++) {
                    int64_t i1 = o1 * g->s[1] - g->p[1] + k1 * g->d[1];
                    float *dst = col;
                    col += o2n;
                    if (i0 < 0 || i0 >= g->in[0] || i1 < 0 || i1 >= g->in[1]) {
                        memset(dst, 0, (size_t)o2n * sizeof *dst);
                        continue;
                    }
                    const float *src = xc + (i0 * g->in[1] + i1) * g->in[2] + off2;
                    for (int64_t o = 0; o < lo; o++)
                        dst[o] = 0.0f;
                    if (g->s[2] == 1)
                        memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof *dst);
                    else
                        for (int64_t o = lo; o < hi; o++)
                            dst[o] = src[o * g->s[2]];
                    for (int64_t o = hi; o < o2n; o++)
                        dst[o] = 0.0f;
                }
            }
        }
    }
}

/* y[o] += wv * src[o*stride] for o in [lo, hi): AVX2+FMA for strides 1
 * and 2 (FMA rounds once per term), plain C for the rest and the tails. */
static void dw_row_axpy(float *restrict y, const float *restrict src, float wv,
                        int64_t stride, int64_t lo, int64_t hi)
{
    int64_t o = lo;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 w8 = _mm256_set1_ps(wv);
    if (stride == 1) {
        for (; o + 8 <= hi; o += 8)
            _mm256_storeu_ps(y + o, _mm256_fmadd_ps(w8, _mm256_loadu_ps(src + o),
                                                    _mm256_loadu_ps(y + o)));
    } else if (stride == 2) {
        for (; o + 8 <= hi; o += 8) {
            /* src[2o .. 2o+14 step 2]; reads nothing past src[2o+14] */
            __m256 a = _mm256_loadu_ps(src + 2 * o);
            __m256 b = _mm256_loadu_ps(src + 2 * o + 7);
            __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));
            __m256 ev = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
            _mm256_storeu_ps(y + o, _mm256_fmadd_ps(w8, ev, _mm256_loadu_ps(y + o)));
        }
    }
#endif
    for (; o < hi; o++)
        y[o] += wv * src[o * stride];
}

/* Direct depthwise convolution of one channel: y (out spatial) += sum over
 * the window of x * w.  y must hold the bias (or zero) on entry. */
static void depthwise3(const float *x, const float *w, const win3 *g, float *y)
{
    int64_t o2n = g->out[2];
    for (int64_t o0 = 0; o0 < g->out[0]; o0++)
    for (int64_t k0 = 0; k0 < g->k[0]; k0++) {
        int64_t i0 = o0 * g->s[0] - g->p[0] + k0 * g->d[0];
        if (i0 < 0 || i0 >= g->in[0])
            continue;
        for (int64_t o1 = 0; o1 < g->out[1]; o1++) {
            float *yr = y + (o0 * g->out[1] + o1) * o2n;
            for (int64_t k1 = 0; k1 < g->k[1]; k1++) {
                int64_t i1 = o1 * g->s[1] - g->p[1] + k1 * g->d[1];
                if (i1 < 0 || i1 >= g->in[1])
                    continue;
                const float *xr = x + (i0 * g->in[1] + i1) * g->in[2];
                const float *wr = w + (k0 * g->k[1] + k1) * g->k[2];
                for (int64_t k2 = 0; k2 < g->k[2]; k2++) {
                    int64_t lo, hi;
                    win3_range(g, k2, &lo, &hi);
                    dw_row_axpy(yr, xr + k2 * g->d[2] - g->p[2], wr[k2],
                                g->s[2], lo, hi);
                }
            }
        }
    }
}

/* Float32 Conv with at most 3 spatial dims. */
static oct_status conv_f32(ref_call *call, const ops_window *win, int64_t group)
{
    const ir_tensor *X = call->in[0], *W = call->in[1];
    const ir_tensor *B = call->n_in > 2 ? call->in[2] : NULL;
    ir_tensor *Y = call->out[0];
    win3 g;
    win3_from(win, &g);
    int64_t n = X->dims[0], c = X->dims[1], m = W->dims[0];
    int64_t cg = c / group, mg = m / group;
    int64_t in_sp = g.in[0] * g.in[1] * g.in[2];
    int64_t out_sp = g.out[0] * g.out[1] * g.out[2];
    int64_t k_sp = g.k[0] * g.k[1] * g.k[2];
    int64_t kdim = cg * k_sp;
    const float *x = X->data, *w = W->data, *bias = B ? B->data : NULL;
    float *y = Y->data;

    if (cg == 1 && mg == 1) {
        /* depthwise: each output channel starts at its bias */
        for (int64_t i = 0; i < n * m; i++) {
            float bv = bias ? bias[i % m] : 0.0f;
            float *yc = y + i * out_sp;
            for (int64_t o = 0; o < out_sp; o++)
                yc[o] = bv;
            depthwise3(x + i * in_sp, w + (i % m) * k_sp, &g, yc);
        }
        return OCT_OK;
    }
    bool direct = k_sp == 1 && g.s[0] == 1 && g.s[1] == 1 && g.s[2] == 1 &&
                  win->n_spatial > 0;
    for (int i = 0; i < win->n_spatial && direct; i++)
        direct = win->pad_begin[i] == 0 && win->pad_end[i] == 0;
    float *col = NULL;
    size_t col_bytes = 0;
    if (!direct) {
        uint64_t elems;
        if (ir_mul_overflow_u64((uint64_t)kdim, (uint64_t)out_sp, &elems) ||
            ir_mul_overflow_u64(elems, sizeof(float), &elems))
            return oct_node_error(call->ctx, OCT_EINPUT, call->node,
                                  "im2col buffer size overflows");
        col_bytes = (size_t)elems;
        col = oct_malloc(call->ctx, col_bytes ? col_bytes : 1);
        if (!col)
            return OCT_EINTERNAL;
    }
    oct_status st = OCT_OK;
    for (int64_t b = 0; b < n && st == OCT_OK; b++)
        for (int64_t gi = 0; gi < group && st == OCT_OK; gi++) {
            const float *xg = x + (b * c + gi * cg) * in_sp;
            ref_fmat A = {w + gi * mg * kdim, kdim, 1};
            ref_fmat Bm = {xg, out_sp, 1};
            if (!direct) {
                im2col3(xg, cg, &g, col);
                Bm.p = col;
            }
            st = ref_sgemm(call->ctx, mg, out_sp, kdim, A, Bm,
                           y + (b * m + gi * mg) * out_sp, out_sp, false,
                           bias ? bias + gi * mg : NULL);
        }
    oct_free(call->ctx, col, col_bytes ? col_bytes : 1);
    return st;
}

/* Any float type and any number of spatial dims: direct loops through the
 * generic element accessors, accumulating in double, one rounding on the
 * store. */
static oct_status conv_generic(ref_call *call, const ops_window *win,
                               int64_t group)
{
    const ir_tensor *X = call->in[0], *W = call->in[1];
    const ir_tensor *B = call->n_in > 2 ? call->in[2] : NULL;
    ir_tensor *Y = call->out[0];
    int ns = win->n_spatial;
    int64_t n = X->dims[0], c = X->dims[1], m = W->dims[0];
    int64_t cg = c / group, mg = m / group;
    int64_t in_sp = 1, out_sp = 1, k_sp = 1;
    for (int i = 0; i < ns; i++) {
        in_sp *= win->in[i];
        out_sp *= win->out[i];
        k_sp *= win->kernel[i];
    }
    for (int64_t b = 0; b < n; b++)
    for (int64_t oc = 0; oc < m; oc++) {
        int64_t gi = oc / mg;
        for (int64_t o = 0; o < out_sp; o++) {
            int64_t opos[OPS_MAX_RANK];
            int64_t t = o;
            for (int i = ns - 1; i >= 0; i--) {
                opos[i] = t % win->out[i];
                t /= win->out[i];
            }
            double acc = B ? ops_get(B, (uint64_t)oc) : 0.0;
            for (int64_t k = 0; k < k_sp; k++) {
                int64_t xoff = 0, kt = k;
                bool inside = true;
                for (int i = ns - 1; i >= 0; i--) {
                    int64_t kk = kt % win->kernel[i];
                    kt /= win->kernel[i];
                    int64_t ip = opos[i] * win->stride[i] - win->pad_begin[i] +
                                 kk * win->dilation[i];
                    if (ip < 0 || ip >= win->in[i])
                        inside = false;
                }
                if (!inside)
                    continue;
                kt = k;
                int64_t mul = 1;
                for (int i = ns - 1; i >= 0; i--) {
                    int64_t kk = kt % win->kernel[i];
                    kt /= win->kernel[i];
                    int64_t ip = opos[i] * win->stride[i] - win->pad_begin[i] +
                                 kk * win->dilation[i];
                    xoff += ip * mul;
                    mul *= win->in[i];
                }
                for (int64_t ci = 0; ci < cg; ci++) {
                    uint64_t xi = (uint64_t)((b * c + gi * cg + ci) * in_sp + xoff);
                    uint64_t wi = (uint64_t)((oc * cg + ci) * k_sp + k);
                    acc += ops_get(X, xi) * ops_get(W, wi);
                }
            }
            ops_set(Y, (uint64_t)((b * m + oc) * out_sp + o), acc);
        }
    }
    return OCT_OK;
}

oct_status ref_conv(ref_call *call)
{
    const ir_tensor *X = call->in[0], *W = call->in[1];
    ops_shape xs, ws;
    ops_shape_of(X, &xs);
    ops_shape_of(W, &ws);
    int ns = xs.rank - 2;
    int64_t kernel[OPS_MAX_RANK];
    oct_status st = ops_conv_kernel_shape(call->ctx, call->node, &ws, ns, kernel);
    if (st != OCT_OK)
        return st;
    ops_window win;
    st = ops_window_init(call->ctx, call->node, &xs, kernel, false, &win);
    if (st != OCT_OK)
        return st;
    int64_t group = ir_attr_int(call->node, "group", 1);
    if (call->out[0]->nelems == 0)
        return OCT_OK;
    if (X->dtype == IR_DT_FLOAT && ns <= 3)
        return conv_f32(call, &win, group);
    return conv_generic(call, &win, group);
}
