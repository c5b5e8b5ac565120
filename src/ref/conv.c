/*
 * conv.c: the sliding-window geometry shared by every windowed op
 * (ref_window_init), and Conv's shape rule and kernel.
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
 */
#include <string.h>

#include "ref.h"
#include "sgemm.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

/* ---- sliding-window geometry -------------------------------------------- */

typedef enum {
    WIN_NOTSET, WIN_VALID, WIN_SAME_UPPER, WIN_SAME_LOWER
} win_autopad;

/* True if the STRING attribute `a` equals `s` (no arena copy: this runs on
 * every node of every calibration batch). */
static bool attr_str_is(const ir_attr *a, const char *s)
{
    size_t len = strlen(s);
    return a->s.len == len && (len == 0 || memcmp(a->s.data, s, len) == 0);
}

/* Reads an INTS attribute of exactly `count` values into out (default dflt
 * when absent).  Reports a wrong type or length; returns false then. */
static bool window_ints(oct_ctx *ctx, const ir_node *node, const char *name,
                        int count, int64_t dflt, int64_t *out)
{
    const ir_attr *a = ir_node_attr(node, name);
    for (int i = 0; i < count; i++)
        out[i] = dflt;
    if (!a)
        return true;
    if (a->type != IR_ATTR_INTS) {
        oct_node_error(ctx, OCT_EINPUT, node,
                       "attribute '%s' must be a list of ints", name);
        return false;
    }
    if (a->n != (size_t)count) {
        oct_node_error(ctx, OCT_EINPUT, node,
                       "attribute '%s' has %zu values, expected %d", name,
                       a->n, count);
        return false;
    }
    if (count) /* an empty list has a NULL array */
        memcpy(out, a->ints, (size_t)count * sizeof *out);
    return true;
}

/* floor(a / b) and ceil(a / b) for b > 0 and any sign of a. */
static inline int64_t div_floor(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}
static inline int64_t div_ceil(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

oct_status ref_window_init(oct_ctx *ctx, const ir_node *node,
                           const ref_shape *x, const int64_t *kernel,
                           bool ceil_mode, ref_window *w)
{
    memset(w, 0, sizeof *w);
    if (x->rank < 3 || x->rank > REF_MAX_RANK)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "expected rank >= 3 (N, C, spatial...), got %d",
                               x->rank);
    int ns = x->rank - 2;
    w->n_spatial = ns;
    int64_t pads[2 * REF_MAX_RANK];
    if (!window_ints(ctx, node, "strides", ns, 1, w->stride) ||
        !window_ints(ctx, node, "dilations", ns, 1, w->dilation) ||
        !window_ints(ctx, node, "pads", 2 * ns, 0, pads))
        return OCT_EINPUT;

    win_autopad mode = WIN_NOTSET;
    const ir_attr *ap = ir_node_attr(node, "auto_pad");
    if (ap) {
        if (ap->type != IR_ATTR_STRING)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "attribute 'auto_pad' must be a string");
        if (attr_str_is(ap, "NOTSET") || attr_str_is(ap, ""))
            mode = WIN_NOTSET;
        else if (attr_str_is(ap, "VALID"))
            mode = WIN_VALID;
        else if (attr_str_is(ap, "SAME_UPPER"))
            mode = WIN_SAME_UPPER;
        else if (attr_str_is(ap, "SAME_LOWER"))
            mode = WIN_SAME_LOWER;
        else
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "unknown auto_pad '%.*s'", (int)ap->s.len,
                                  (const char *)ap->s.data);
    }

    for (int i = 0; i < ns; i++) {
        w->in[i] = x->dims[i + 2];
        w->kernel[i] = kernel[i];
        if (w->stride[i] <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "strides[%d] = %lld must be positive", i,
                                  (long long)w->stride[i]);
        if (w->dilation[i] <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "dilations[%d] = %lld must be positive", i,
                                  (long long)w->dilation[i]);
        if (kernel[i] <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "kernel size %lld on spatial axis %d must "
                                  "be positive", (long long)kernel[i], i);
        if (pads[i] < 0 || pads[i + ns] < 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "pads on spatial axis %d must not be "
                                  "negative", i);
        /* Guard the arithmetic below against absurd attribute values. */
        if (w->stride[i] > (INT64_C(1) << 40) ||
            w->dilation[i] > (INT64_C(1) << 40) ||
            kernel[i] > (INT64_C(1) << 40) || pads[i] > (INT64_C(1) << 40) ||
            pads[i + ns] > (INT64_C(1) << 40))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "window attribute on spatial axis %d is "
                                  "too large", i);
        int64_t eff = (kernel[i] - 1) * w->dilation[i] + 1;
        int64_t in = w->in[i];
        if (mode == WIN_NOTSET || mode == WIN_VALID) {
            w->pad_begin[i] = mode == WIN_VALID ? 0 : pads[i];
            w->pad_end[i] = mode == WIN_VALID ? 0 : pads[i + ns];
            if (in < 0) {
                w->out[i] = -1;
                continue;
            }
            int64_t span = in + w->pad_begin[i] + w->pad_end[i] - eff;
            if (span < 0)
                return oct_input_error(ctx, OCT_EINPUT, node, 0,
                                       "window of size %lld on spatial axis "
                                       "%d is larger than the padded input "
                                       "(%lld)", (long long)eff, i,
                                       (long long)(in + w->pad_begin[i] +
                                                   w->pad_end[i]));
            if (ceil_mode) {
                w->out[i] = div_ceil(span, w->stride[i]) + 1;
                /* The last window must start inside the input or the
                 * leading padding (as ONNX Runtime and PyTorch do). */
                if ((w->out[i] - 1) * w->stride[i] >= in + w->pad_begin[i])
                    w->out[i]--;
            } else {
                w->out[i] = div_floor(span, w->stride[i]) + 1;
            }
        } else {
            /* SAME_*: out = ceil(in / stride); the total padding needed,
             * (out-1)*stride + dilated kernel - in, clamped at 0 as ONNX
             * shape inference does (a stride larger than the window would
             * ask for negative padding; engines disagree there), is split
             * evenly, the odd unit at the end (UPPER) or the beginning
             * (LOWER). */
            if (in < 0) {
                w->out[i] = -1;
                w->pad_begin[i] = w->pad_end[i] = -1;
                continue;
            }
            int64_t out = div_ceil(in, w->stride[i]);
            int64_t total = (out - 1) * w->stride[i] + eff - in;
            if (total < 0)
                total = 0;
            int64_t small = total / 2, big = total - small;
            w->pad_begin[i] = mode == WIN_SAME_UPPER ? small : big;
            w->pad_end[i] = mode == WIN_SAME_UPPER ? big : small;
            w->out[i] = out;
        }
    }
    return OCT_OK;
}

/* ---- Conv shape rule ------------------------------------------------------ */

static bool conv_float_type(ir_dtype dt)
{
    return dt == IR_DT_FLOAT || dt == IR_DT_DOUBLE || dt == IR_DT_FLOAT16 ||
           dt == IR_DT_BFLOAT16;
}

/* Spatial kernel sizes of a Conv-like node: the kernel_shape attribute, or
 * W's spatial dims (-1 where unknown).  Reports a kernel_shape that is
 * malformed or disagrees with W.  ns = number of spatial dims. */
static oct_status conv_kernel_shape(oct_ctx *ctx, const ir_node *node,
                                    const ref_shape *w, int ns,
                                    int64_t *kernel)
{
    const ir_attr *ks = ir_node_attr(node, "kernel_shape");
    for (int i = 0; i < ns; i++)
        kernel[i] = w->rank == ns + 2 ? w->dims[i + 2] : -1;
    if (!ks)
        return OCT_OK;
    if (ks->type != IR_ATTR_INTS || ks->n != (size_t)ns)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "attribute 'kernel_shape' must list %d ints", ns);
    for (int i = 0; i < ns; i++) {
        if (ks->ints[i] <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "kernel_shape[%d] = %lld must be positive",
                                  i, (long long)ks->ints[i]);
        if (kernel[i] >= 0 && kernel[i] != ks->ints[i])
            return oct_input_error(ctx, OCT_EINPUT, node, 1,
                                   "kernel_shape[%d] = %lld but the weight's "
                                   "spatial dim is %lld", i,
                                   (long long)ks->ints[i], (long long)kernel[i]);
        kernel[i] = ks->ints[i];
    }
    return OCT_OK;
}

oct_status shape_conv(ref_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ref_shape *x = &inf->in[0], *w = &inf->in[1];
    const ref_shape *b = inf->n_in > 2 ? &inf->in[2] : NULL;
    ref_shape *y = &inf->out[0];

    ir_dtype dt = x->dtype != IR_DT_UNDEFINED ? x->dtype : w->dtype;
    if (dt != IR_DT_UNDEFINED && !conv_float_type(dt))
        return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 0,
                               "Conv does not take %s", ir_dtype_name(dt));
    if (x->dtype != IR_DT_UNDEFINED && w->dtype != IR_DT_UNDEFINED &&
        x->dtype != w->dtype)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "weight type %s differs from input type %s",
                               ir_dtype_name(w->dtype), ir_dtype_name(x->dtype));
    if (b && b->dtype != IR_DT_UNDEFINED && dt != IR_DT_UNDEFINED &&
        b->dtype != dt)
        return oct_input_error(ctx, OCT_EINPUT, node, 2,
                               "bias type %s differs from input type %s",
                               ir_dtype_name(b->dtype), ir_dtype_name(dt));
    int64_t group = ir_attr_int(node, "group", 1);
    if (group < 1)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "group = %lld must be positive", (long long)group);

    int rank = x->rank >= 0 ? x->rank : w->rank;
    y->dtype = dt;
    y->rank = rank;
    if (rank < 0)
        return OCT_OK;
    if (rank < 3 || rank > REF_MAX_RANK)
        return oct_input_error(ctx, OCT_EINPUT, node, x->rank >= 0 ? 0 : 1,
                               "expected rank >= 3 (N, C, spatial...), got %d",
                               rank);
    if (x->rank >= 0 && w->rank >= 0 && x->rank != w->rank)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "weight rank %d differs from input rank %d",
                               w->rank, x->rank);
    int ns = rank - 2;
    int64_t cin = x->rank >= 0 ? x->dims[1] : -1;
    int64_t m = w->rank >= 0 ? w->dims[0] : -1;
    int64_t wc = w->rank >= 0 ? w->dims[1] : -1;
    if (cin >= 0 && cin % group != 0)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "group %lld does not divide the %lld input "
                               "channels", (long long)group, (long long)cin);
    if (m >= 0 && m % group != 0)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "group %lld does not divide the %lld output "
                               "channels", (long long)group, (long long)m);
    if (cin >= 0 && wc >= 0 && cin != wc * group)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "input has %lld channels but the weight "
                               "expects %lld x group %lld",
                               (long long)cin, (long long)wc, (long long)group);
    if (b && b->rank >= 0) {
        if (b->rank != 1)
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "bias must be 1-D, got rank %d", b->rank);
        if (m >= 0 && b->dims[0] >= 0 && b->dims[0] != m)
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "bias has %lld values for %lld output "
                                   "channels", (long long)b->dims[0],
                                   (long long)m);
    }
    int64_t kernel[REF_MAX_RANK];
    oct_status st = conv_kernel_shape(ctx, node, w, ns, kernel);
    if (st != OCT_OK)
        return st;

    y->dims[0] = x->rank >= 0 ? x->dims[0] : -1;
    y->dims[1] = m;
    bool kernel_known = true;
    for (int i = 0; i < ns; i++)
        kernel_known = kernel_known && kernel[i] > 0;
    ref_shape xs = *x;
    if (x->rank < 0) {
        xs.rank = rank;
        for (int i = 0; i < rank; i++)
            xs.dims[i] = -1;
    }
    if (!kernel_known) {
        /* still validate the attributes with a dummy kernel */
        int64_t ones[REF_MAX_RANK];
        for (int i = 0; i < ns; i++)
            ones[i] = 1;
        for (int i = 0; i < ns; i++)
            xs.dims[i + 2] = -1;
        ref_window win;
        st = ref_window_init(ctx, node, &xs, ones, false, &win);
        if (st != OCT_OK)
            return st;
        for (int i = 0; i < ns; i++)
            y->dims[i + 2] = -1;
        return OCT_OK;
    }
    ref_window win;
    st = ref_window_init(ctx, node, &xs, kernel, false, &win);
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < ns; i++)
        y->dims[i + 2] = win.out[i];
    return OCT_OK;
}

/* ---- Conv kernel ---------------------------------------------------------- */

/* A window of at most 3 spatial dims, padded with leading unit dims so 1-D
 * and 2-D convolutions run through the 3-D loops. */
typedef struct win3 {
    int64_t in[3], k[3], s[3], d[3], p[3], out[3];
} win3;

static void win3_from(const ref_window *w, win3 *r)
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
    int64_t a = div_ceil(-off, g->s[2]), b = div_ceil(g->in[2] - off, g->s[2]);
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
static oct_status conv_f32(ref_call *call, const ref_window *win, int64_t group)
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
static oct_status conv_generic(ref_call *call, const ref_window *win,
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
            int64_t opos[REF_MAX_RANK];
            int64_t t = o;
            for (int i = ns - 1; i >= 0; i--) {
                opos[i] = t % win->out[i];
                t /= win->out[i];
            }
            double acc = B ? ref_get(B, (uint64_t)oc) : 0.0;
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
                    acc += ref_get(X, xi) * ref_get(W, wi);
                }
            }
            ref_set(Y, (uint64_t)((b * m + oc) * out_sp + o), acc);
        }
    }
    return OCT_OK;
}

oct_status ref_conv(ref_call *call)
{
    const ir_tensor *X = call->in[0], *W = call->in[1];
    ref_shape xs, ws;
    ref_shape_of(X, &xs);
    ref_shape_of(W, &ws);
    int ns = xs.rank - 2;
    int64_t kernel[REF_MAX_RANK];
    oct_status st = conv_kernel_shape(call->ctx, call->node, &ws, ns, kernel);
    if (st != OCT_OK)
        return st;
    ref_window win;
    st = ref_window_init(call->ctx, call->node, &xs, kernel, false, &win);
    if (st != OCT_OK)
        return st;
    int64_t group = ir_attr_int(call->node, "group", 1);
    if (call->out[0]->nelems == 0)
        return OCT_OK;
    if (X->dtype == IR_DT_FLOAT && ns <= 3)
        return conv_f32(call, &win, group);
    return conv_generic(call, &win, group);
}
