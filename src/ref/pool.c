/*
 * pool.c: MaxPool, AveragePool, GlobalMaxPool and GlobalAveragePool.
 *
 * Windows come from ops_window_init (ceil_mode rounds the output size up,
 * a window starting in the trailing padding is dropped).  Padding never
 * contributes a value: MaxPool takes the largest input inside the window
 * (the first one on ties; NaN loses to any number, so the result is NaN
 * only for an all-NaN window); AveragePool divides the sum of the inputs
 * inside the window by their count, or with count_include_pad by the number
 * of window positions that fall inside the padded input.  MaxPool's Indices output holds the
 * flat index of the chosen element in the whole input tensor (N, C, spatial
 * in row-major order, or with storage_order=1 the spatial dims in
 * column-major order), ignoring padding.
 *
 * Arithmetic: sums are accumulated in double and rounded once to the
 * output type on the store (float32: round to nearest even).
 *
 * The shape and type rules of these ops are in src/ops/shape_pool.c.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ref/ref.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

/* Geometry of one pooling call. */
typedef struct pool_geom {
    const ops_window *w;
    int ns;
    int64_t in_sp, out_sp, k_sp;
    bool col_major;
} pool_geom;

/* Decodes output position o into per-dim indices. */
static void pool_out_pos(const pool_geom *g, int64_t o, int64_t *pos)
{
    for (int i = g->ns - 1; i >= 0; i--) {
        pos[i] = o % g->w->out[i];
        o /= g->w->out[i];
    }
}

/* For window position k at output position pos: the input offset in
 * row-major order (and *col the column-major one), or -1 if it lies in the
 * padding; *padded is set if it lies inside the padded input. */
static int64_t pool_tap(const pool_geom *g, const int64_t *pos, int64_t k,
                        int64_t *col, bool *padded)
{
    const ops_window *w = g->w;
    int64_t off = 0, coff = 0, mul = 1, kt = k;
    bool inside = true, in_padded = true;
    int64_t ip[OPS_MAX_RANK];
    for (int i = g->ns - 1; i >= 0; i--) {
        int64_t kk = kt % w->kernel[i];
        kt /= w->kernel[i];
        ip[i] = pos[i] * w->stride[i] - w->pad_begin[i] + kk * w->dilation[i];
        if (ip[i] < 0 || ip[i] >= w->in[i])
            inside = false;
        if (ip[i] < -w->pad_begin[i] || ip[i] >= w->in[i] + w->pad_end[i])
            in_padded = false;
        off += ip[i] * mul;
        mul *= w->in[i];
    }
    *padded = in_padded;
    if (!inside)
        return -1;
    mul = 1;
    for (int i = 0; i < g->ns; i++) {
        coff += ip[i] * mul;
        mul *= w->in[i];
    }
    *col = coff;
    return off;
}

#ifdef __AVX2__
/* src[2o .. 2o+14 step 2] as one vector; reads src[2o .. 2o+14] only. */
static inline __m256 pool_even8(const float *src)
{
    __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 7);
    __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t),
                                                  _MM_SHUFFLE(3, 1, 2, 0)));
}
#endif

/* y[o] = max(y[o], src[o*stride]) (a NaN in src never wins; y holds no
 * NaN) and y[o] += src[o*stride], for o in [lo, hi).  AVX2 for strides 1
 * and 2, plain C for the rest and the remainders. */
static void pool_row_max(float *restrict y, const float *restrict src,
                         int64_t stride, int64_t lo, int64_t hi)
{
    int64_t o = lo;
#ifdef __AVX2__
    if (stride == 1)
        for (; o + 8 <= hi; o += 8)
            _mm256_storeu_ps(y + o, _mm256_max_ps(_mm256_loadu_ps(src + o),
                                                  _mm256_loadu_ps(y + o)));
    else if (stride == 2)
        for (; o + 8 <= hi; o += 8)
            _mm256_storeu_ps(y + o, _mm256_max_ps(pool_even8(src + 2 * o),
                                                  _mm256_loadu_ps(y + o)));
#endif
    for (; o < hi; o++)
        y[o] = src[o * stride] > y[o] ? src[o * stride] : y[o];
}

static void pool_row_sum(float *restrict y, const float *restrict src,
                         int64_t stride, int64_t lo, int64_t hi)
{
    int64_t o = lo;
#ifdef __AVX2__
    if (stride == 1)
        for (; o + 8 <= hi; o += 8)
            _mm256_storeu_ps(y + o, _mm256_add_ps(_mm256_loadu_ps(y + o),
                                                  _mm256_loadu_ps(src + o)));
    else if (stride == 2)
        for (; o + 8 <= hi; o += 8)
            _mm256_storeu_ps(y + o, _mm256_add_ps(_mm256_loadu_ps(y + o),
                                                  pool_even8(src + 2 * o)));
#endif
    for (; o < hi; o++)
        y[o] += src[o * stride];
}

/* float32 MaxPool/AveragePool with at most 3 spatial dims and no Indices
 * output: direct loops over the in-range part of each window.  Average:
 * float32 sum in window order, divided once (rounding differs from the
 * double-accumulating generic path by a few ulp). */
static oct_status pool_f32_direct(oct_ctx *ctx, const ops_window *w,
                                  int64_t planes, bool is_max,
                                  bool include_pad, const float *x, float *y)
{
    int ns = w->n_spatial, lead = 3 - ns;
    int64_t in[3], out[3], dil[3];
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        in[i] = j >= 0 ? w->in[j] : 1;
        out[i] = j >= 0 ? w->out[j] : 1;
        dil[i] = j >= 0 ? w->dilation[j] : 1;
    }
    /* per axis and output index: lo, hi, padded count */
    int64_t n_out = out[0] + out[1] + out[2];
    int64_t klast = ns >= 1 ? w->kernel[ns - 1] : 1;
    size_t bytes = (size_t)(n_out * 3 + 2 * klast) * sizeof(int64_t);
    int64_t *tab = oct_malloc(ctx, bytes);
    if (!tab)
        return OCT_EINTERNAL;
    int64_t *ax[3] = {tab, tab + 3 * out[0], tab + 3 * (out[0] + out[1])};
    for (int i = 0; i < 3; i++)
        for (int64_t o = 0; o < out[i]; o++) {
            int64_t *r = ax[i] + 3 * o;
            if (i < lead) {
                r[0] = 0;
                r[1] = r[2] = 1;
            } else {
                ops_window_axis_range(w, i - lead, o, &r[0], &r[1], &r[2]);
            }
        }
    int64_t in_sp = in[0] * in[1] * in[2];
    int64_t s[3], pb[3];
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        s[i] = j >= 0 ? w->stride[j] : 1;
        pb[i] = j >= 0 ? w->pad_begin[j] : 0;
    }
    /* for each k2: the output range [k2lo, k2hi) whose input position
     * o2*s - pb + k2*d lies inside the input */
    int64_t w2k = ns >= 1 ? w->kernel[ns - 1] : 1;
    int64_t *k2lo = tab + 3 * n_out, *k2hi = k2lo + w2k;
    for (int64_t k2 = 0; k2 < w2k; k2++) {
        int64_t off = k2 * dil[2] - pb[2];
        int64_t a = off >= 0 ? 0 : (-off + s[2] - 1) / s[2];
        int64_t lim = in[2] - off;
        int64_t b = lim <= 0 ? 0 : (lim + s[2] - 1) / s[2];
        k2lo[k2] = a < out[2] ? a : out[2];
        k2hi[k2] = b < k2lo[k2] ? k2lo[k2] : b > out[2] ? out[2] : b;
    }
    /* One output row (o0, o1) at a time: for each in-range (k0, k1) and
     * each k2, combine the input row into the whole output row at once
     * (independent lanes, so the loop vectorizes), then divide. */
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * in_sp;
        for (int64_t o0 = 0; o0 < out[0]; o0++) {
            const int64_t *r0 = ax[0] + 3 * o0;
            for (int64_t o1 = 0; o1 < out[1]; o1++, y += out[2]) {
                const int64_t *r1 = ax[1] + 3 * o1;
                float init = is_max ? -INFINITY : 0.0f;
                for (int64_t o2 = 0; o2 < out[2]; o2++)
                    y[o2] = init;
                for (int64_t k0 = r0[0]; k0 < r0[1]; k0++) {
                    int64_t i0 = o0 * s[0] - pb[0] + k0 * dil[0];
                    for (int64_t k1 = r1[0]; k1 < r1[1]; k1++) {
                        int64_t i1 = o1 * s[1] - pb[1] + k1 * dil[1];
                        const float *row = xp + (i0 * in[1] + i1) * in[2];
                        for (int64_t k2 = 0; k2 < w2k; k2++) {
                            int64_t lo = k2lo[k2], hi = k2hi[k2];
                            const float *src = row + k2 * dil[2] - pb[2];
                            if (is_max)
                                pool_row_max(y, src, s[2], lo, hi);
                            else
                                pool_row_sum(y, src, s[2], lo, hi);
                        }
                    }
                }
                for (int64_t o2 = 0; o2 < out[2]; o2++) {
                    const int64_t *r2 = ax[2] + 3 * o2;
                    int64_t cnt = (r0[1] - r0[0]) * (r1[1] - r1[0]) * (r2[1] - r2[0]);
                    if (!is_max) {
                        int64_t div = include_pad ? r0[2] * r1[2] * r2[2] : cnt;
                        y[o2] = div > 0 ? y[o2] / (float)div : NAN;
                    } else if (y[o2] == -INFINITY && cnt > 0) {
                        /* only NaN and -inf seen: NaN unless some
                         * element is a number (a NaN never wins) */
                        bool number = false;
                        for (int64_t k0 = r0[0]; k0 < r0[1]; k0++)
                        for (int64_t k1 = r1[0]; k1 < r1[1]; k1++)
                        for (int64_t k2 = r2[0]; k2 < r2[1]; k2++) {
                            float v = xp[((o0 * s[0] - pb[0] + k0 * dil[0]) * in[1] +
                                          o1 * s[1] - pb[1] + k1 * dil[1]) * in[2] +
                                         o2 * s[2] - pb[2] + k2 * dil[2]];
                            number |= v == v;
                        }
                        if (!number)
                            y[o2] = NAN;
                    }
                }
            }
        }
    }
    oct_free(ctx, tab, bytes);
    return OCT_OK;
}

oct_status ref_pool(ref_call *call)
{
    oct_ctx *ctx = call->ctx;
    const ir_node *node = call->node;
    const ir_tensor *X = call->in[0];
    ir_tensor *Y = call->out[0];
    ir_tensor *I = call->n_out > 1 ? call->out[1] : NULL;
    ops_shape xs;
    ops_shape_of(X, &xs);
    int ns = xs.rank - 2;
    int64_t kernel[OPS_MAX_RANK];
    oct_status st = ops_pool_kernel(ctx, node, ns, kernel);
    if (st != OCT_OK)
        return st;
    ops_window w;
    st = ops_window_init(ctx, node, &xs, kernel,
                         ir_attr_int(node, "ceil_mode", 0) != 0, &w);
    if (st != OCT_OK)
        return st;
    bool is_max = node->op == IR_OP_MAXPOOL;
    bool include_pad = ir_attr_int(node, "count_include_pad", 0) != 0;
    pool_geom g = {.w = &w, .ns = ns, .in_sp = 1, .out_sp = 1, .k_sp = 1,
                   .col_major = ir_attr_int(node, "storage_order", 0) == 1};
    for (int i = 0; i < ns; i++) {
        g.in_sp *= w.in[i];
        g.out_sp *= w.out[i];
        g.k_sp *= w.kernel[i];
    }
    int64_t planes = xs.dims[0] * xs.dims[1];
    if (X->dtype == IR_DT_FLOAT && !I && ns <= 3 && Y->nelems > 0)
        return pool_f32_direct(ctx, &w, planes, is_max, include_pad,
                               X->data, Y->data);
    /* Window taps depend on the output position only: list once, per
     * output position, the input offsets inside the input (row-major and
     * column-major) and the count of window positions inside the padded
     * input; then sweep every (n, c) plane. */
    uint64_t n_taps, bytes;
    if (ir_mul_overflow_u64((uint64_t)g.out_sp, (uint64_t)g.k_sp, &n_taps) ||
        ir_mul_overflow_u64(n_taps, 2 * sizeof(int64_t), &bytes) ||
        ir_add_overflow_u64(bytes, ((uint64_t)g.out_sp * 2 + 1) * sizeof(int64_t),
                            &bytes) ||
        bytes > SIZE_MAX)
        return oct_node_error(ctx, OCT_EINPUT, node, "pooling window too large");
    int64_t *offs = oct_malloc(ctx, (size_t)bytes);
    if (!offs)
        return OCT_EINTERNAL;
    int64_t *cols = offs + n_taps, *npad = cols + n_taps, *start = npad + g.out_sp;
    int64_t pos[OPS_MAX_RANK], used = 0;
    for (int64_t o = 0; o < g.out_sp; o++) {
        pool_out_pos(&g, o, pos);
        npad[o] = 0;
        start[o] = used;
        for (int64_t k = 0; k < g.k_sp; k++) {
            bool padded;
            int64_t col = -1, off = pool_tap(&g, pos, k, &col, &padded);
            npad[o] += padded;
            if (off >= 0) {
                offs[used] = off;
                cols[used++] = col;
            }
        }
    }
    start[g.out_sp] = used;
    for (int64_t p = 0; p < planes; p++) {
        uint64_t base = (uint64_t)(p * g.in_sp);
        const float *xf = X->dtype == IR_DT_FLOAT ? (const float *)X->data + base : NULL;
        for (int64_t o = 0; o < g.out_sp; o++) {
            const int64_t *to = offs + start[o];
            int64_t cnt = start[o + 1] - start[o], bt = -1;
            uint64_t yi = (uint64_t)(p * g.out_sp + o);
            double r;
            if (is_max) {
                /* first of the largest; a NaN is replaced by any number */
                if (xf && !I && cnt > 0) {
                    /* branch-free max; a NaN first element is handled by
                     * the careful loop below */
                    float best = xf[to[0]];
                    for (int64_t t = 1; t < cnt; t++) {
                        float v = xf[to[t]];
                        best = v > best ? v : best;
                    }
                    bt = 0;
                    r = best;
                    if (best != best)
                        bt = -1;
                }
                if (bt >= 0) {
                    /* done */
                } else if (xf) {
                    float best = -INFINITY;
                    for (int64_t t = 0; t < cnt; t++) {
                        float v = xf[to[t]];
                        if (v > best || bt < 0 || best != best) {
                            best = v;
                            bt = t;
                        }
                    }
                    r = best;
                } else {
                    double best = -INFINITY;
                    for (int64_t t = 0; t < cnt; t++) {
                        double v = ops_get(X, base + (uint64_t)to[t]);
                        if (v > best || bt < 0 || best != best) {
                            best = v;
                            bt = t;
                        }
                    }
                    r = best;
                }
            } else {
                double sum = 0.0;
                if (xf)
                    for (int64_t t = 0; t < cnt; t++)
                        sum += xf[to[t]];
                else
                    for (int64_t t = 0; t < cnt; t++)
                        sum += ops_get(X, base + (uint64_t)to[t]);
                int64_t div = include_pad ? npad[o] : cnt;
                r = div > 0 ? sum / (double)div : NAN;
            }
            if (Y->dtype == IR_DT_FLOAT)
                ((float *)Y->data)[yi] = (float)r;
            else
                ops_set(Y, yi, r);
            if (I)
                ((int64_t *)I->data)[yi] =
                    bt < 0 ? -1
                           : p * g.in_sp + (g.col_major ? cols[start[o] + bt] : to[bt]);
        }
    }
    oct_free(ctx, offs, (size_t)bytes);
    return OCT_OK;
}

/* ---- global pooling -------------------------------------------------------- */

oct_status ref_globalpool(ref_call *call)
{
    const ir_tensor *X = call->in[0];
    ir_tensor *Y = call->out[0];
    bool is_max = call->node->op == IR_OP_GLOBALMAXPOOL;
    int64_t planes = X->dims[0] * X->dims[1], sp = 1;
    for (int i = 2; i < X->rank; i++)
        sp *= X->dims[i];
    for (int64_t p = 0; p < planes; p++) {
        double acc = is_max ? -INFINITY : 0.0;
        uint64_t base = (uint64_t)(p * sp);
        if (X->dtype == IR_DT_FLOAT) {
            const float *x = (const float *)X->data + base;
            for (int64_t i = 0; i < sp; i++)
                acc = is_max ? (x[i] > acc || isnan(x[i]) ? x[i] : acc)
                             : acc + x[i];
        } else {
            for (int64_t i = 0; i < sp; i++) {
                double v = ops_get(X, base + (uint64_t)i);
                acc = is_max ? (v > acc || isnan(v) ? v : acc) : acc + v;
            }
        }
        if (!is_max)
            acc = sp > 0 ? acc / (double)sp : NAN;
        if (Y->dtype == IR_DT_FLOAT)
            ((float *)Y->data)[p] = (float)acc;
        else
            ops_set(Y, (uint64_t)p, acc);
    }
    return OCT_OK;
}
