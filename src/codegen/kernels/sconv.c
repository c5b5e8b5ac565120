/*
 * sconv.c: float32 convolutions of the LLVM backend (NCHW, one image).
 *
 * octk_sconv (one group): y[m][p] = clamp(sum_k W[m][k] * col[k][p] + bias[m])
 * with p = oh*OW + ow, k = (c*KH + kh)*KW + kw and col the im2col matrix.
 *   Phase 0 writes col into work ([K][ldc] row-major, ldc >= P padded with
 *   zeros so that the row stride is an odd number of cache lines); it is
 *   skipped for 1x1 convolutions with stride 1 and no padding, where col is
 *   x itself (unless its row stride would thrash L1 sets, then x is copied).
 *   Phase 1: one task per block of SCONV_MB output channels x SCONV_NB
 *   pixels, computed by the 6 x 16 microkernel of scommon.h (weights
 *   broadcast from 6-row packed panels, 16 pixels per two vectors, FMA,
 *   bias and clamp fused), output rows contiguous.
 *
 * octk_sdwconv (depthwise) is in sdwconv.c.
 *
 * FP8 weights (w8_type, octk.h): the bytes come in the float layout
 * (panels of 6 output channels); phase 0 widens them into work (after the
 * im2col matrix, 64-byte aligned) in tasks of whole panels, next to the
 * im2col tasks, and phase 1 reads the widened floats.
 *
 * Padding contributes 0.  Sums use FMA; their order depends only on the
 * shapes, never on the task split.
 */
#include "octk.h"
#include "scommon.h"

enum {
    SCONV_MB = 48,          /* output channels per task (8 row tiles) */
    SCONV_NB = 64,          /* pixels per task (4 panels) */
    SCONV_COL_TASK = 16384, /* col elements written per phase-0 task */
#ifdef __AVX512F__
    /* K block of col: the AVX-512 tiles read 64 columns, kc x 64 floats,
     * 32 KiB at 128 (in a 48 KiB L1; 64 KiB at SK_KC): phase 1 2-4% faster
     * on squeezenet's 3x3 layers (Zen 5) */
    SCONV_KC = 128,
#else
    SCONV_KC = SK_KC,
#endif
};

static inline int64_t sk_gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Largest K block whose kc x 16 column panel, with row stride ld floats,
 * fits in 6 of the 8 ways of a 64-set L1 (64-byte lines). */
static inline int64_t sconv_kc_limit(int64_t ld)
{
    if (ld % 16)
        return SK_KC;
    const int64_t sets = 64 / sk_gcd(ld / 16, 64);
    return sk_min64(SK_KC, 6 * sets);
}

typedef struct sconv_geom {
    int64_t K, P;
    int direct;      /* col is x itself */
    int64_t ldc;     /* row stride of col */
    int64_t kc;
} sconv_geom;

static inline sconv_geom sconv_geometry(const octk_conv_shape *s)
{
    sconv_geom g;
    g.K = s->C * s->KH * s->KW;
    g.P = s->OH * s->OW;
    const int identity = s->KH == 1 && s->KW == 1 && s->SH == 1 && s->SW == 1 && s->PT == 0 &&
                         s->PL == 0 && s->OH == s->H && s->OW == s->W;
    const int64_t lim = sconv_kc_limit(g.P);
    g.direct = identity && (g.K <= lim || lim >= 64);
    if (g.direct) {
        g.ldc = g.P;
        g.kc = sk_balanced_kc(g.K, lim);
    } else {
        g.ldc = sk_ceil_div(g.P, 16) * 16;
        if ((g.ldc / 16) % 2 == 0)
            g.ldc += 16;
        g.kc = sk_balanced_kc(g.K, SCONV_KC);
    }
    return g;
}

size_t octk_sconv_packed_w_size(int64_t M, int64_t K)
{
    return (size_t)sk_ceil_div(M, SK_MR) * SK_MR * (size_t)K * sizeof(float);
}

/* dst[(m/6)*6*K + k*6 + m%6] = w[m*K + k] for elements of `size` bytes,
 * rows past M zero bytes (0.0f, or FP8 +0). */
static void sconv_pack_rows(void *dst, const void *w, size_t size, int64_t M, int64_t K)
{
    const int64_t panels = sk_ceil_div(M, SK_MR);
    uint8_t *d = dst;
    const uint8_t *src = w;
    for (int64_t j = 0; j < panels; j++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t r = 0; r < SK_MR; r++) {
                const int64_t m = j * SK_MR + r;
                uint8_t *to = d + (size_t)(j * SK_MR * K + k * SK_MR + r) * size;
                if (m < M)
                    memcpy(to, src + (size_t)(m * K + k) * size, size);
                else
                    memset(to, 0, size);
            }
}

void octk_sconv_pack_w(float *dst, const float *w, int64_t M, int64_t K)
{
    sconv_pack_rows(dst, w, sizeof *w, M, K);
}

size_t octk_sconv_packed_w8_size(int64_t M, int64_t K)
{
    return (size_t)sk_ceil_div(M, SK_MR) * SK_MR * (size_t)K;
}

void octk_sconv_pack_w8(uint8_t *dst, const uint8_t *w, int64_t M, int64_t K)
{
    sconv_pack_rows(dst, w, 1, M, K);
}

/* Bytes of work before the widened FP8 weights: the im2col matrix. */
static inline size_t sconv_col_bytes(const sconv_geom *g)
{
    const size_t b = g->direct ? 0 : (size_t)g->K * (size_t)g->ldc * sizeof(float);
    return (b + 63) / 64 * 64;
}

size_t octk_sconv_work_size(const octk_sconv *p)
{
    const sconv_geom g = sconv_geometry(&p->s);
    const size_t col = g.direct ? 0 : (size_t)g.K * (size_t)g.ldc * sizeof(float);
    if (!p->w8_type)
        return col;
    return sconv_col_bytes(&g) + octk_sconv_packed_w_size(p->s.M, g.K);
}

static inline int64_t sconv_col_rows_per_task(const sconv_geom *g)
{
    return sk_max64(1, SCONV_COL_TASK / g->ldc);
}

static inline int64_t sconv_col_tasks(const sconv_geom *g)
{
    return g->direct ? 0 : sk_ceil_div(g->K, sconv_col_rows_per_task(g));
}

/* FP8 weight panels (6 output channels each) widened per phase-0 task. */
static inline int64_t sconv_widen_panels(const sconv_geom *g)
{
    return sk_max64(1, SK_WIDEN_TASK / sk_max64(1, g->K * SK_MR));
}

static inline int64_t sconv_widen_tasks(const octk_sconv *p, const sconv_geom *g)
{
    if (!p->w8_type || g->K <= 0)
        return 0;
    return sk_ceil_div(sk_ceil_div(p->s.M, SK_MR), sconv_widen_panels(g));
}

int64_t octk_sconv_tasks(const octk_sconv *p, int phase)
{
    const sconv_geom g = sconv_geometry(&p->s);
    if (g.P <= 0 || p->s.M <= 0)
        return 0;
    if (phase == 0)
        return sconv_col_tasks(&g) + sconv_widen_tasks(p, &g);
    if (phase == 1)
        return sk_ceil_div(p->s.M, SCONV_MB) * sk_ceil_div(g.P, SCONV_NB);
    return 0;
}

/* Widens the FP8 weight panels [j0, j1) into work after the im2col matrix
 * (row m's scale; padding rows 0).  The 6 scales of a panel repeat every 6
 * weights: 24 multipliers cover three vectors of 8. */
static void sconv_widen(const octk_sconv *p, const sconv_geom *g, int64_t j0, int64_t j1)
{
    const int e4m3 = p->w8_type == OCTK_FP8_E4M3FN;
    const int64_t len = g->K * SK_MR;
    float *wide = (float *)((char *)p->work + sconv_col_bytes(g));
    for (int64_t j = j0; j < j1; j++) {
        float mult[4 * SK_MR];
        for (int r = 0; r < SK_MR; r++) {
            const int64_t m = j * SK_MR + r;
            mult[r] = m < p->s.M ? sk_fp8_mult(p->w8_scale[m], e4m3) : 0.0f;
        }
        for (int i = SK_MR; i < 4 * SK_MR; i++)
            mult[i] = mult[i - SK_MR];
        sk_widen_fp8(wide + j * len, p->w8 + j * len, len, mult, 4 * SK_MR, e4m3);
    }
}

/* d[i] = x[i] for i < n: 16 floats per plain load and store, the tail
 * masked (AVX-512; AVX2 8 floats); the compiler's loop otherwise.  An im2col row is
 * mostly such a run between a few padding zeros. */
static inline void sconv_copy(float *d, const float *x, int64_t n)
{
    int64_t i = 0;
#ifdef __AVX512F__
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_loadu_ps(x + i));
    if (i < n) {
        const __mmask16 m = sk_mask16((int)(n - i));
        _mm512_mask_storeu_ps(d + i, m, _mm512_maskz_loadu_ps(m, x + i));
    }
#elif defined(__AVX2__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_loadu_ps(x + i));
    if (i < n)
        sk_store_part8(d + i, _mm256_maskload_ps(x + i, sk_mask8((int)(n - i))), (int)(n - i));
#else
    for (; i < n; i++)
        d[i] = x[i];
#endif
}

/* d[i] = x[2i] for i < n (stride 2): 32 floats per two loads, the even
 * ones kept by one permutation (AVX2: 16 per two loads, a shuffle and a
 * permutation); x[2n - 1] and beyond are not read. */
static inline void sconv_copy2(float *d, const float *x, int64_t n)
{
    int64_t i = 0;
#ifdef __AVX512F__
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    /* plain loads while x[2i + 31] <= x[2n - 2] */
    for (; i + 17 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_permutex2var_ps(_mm512_loadu_ps(x + 2 * i), even,
                                                       _mm512_loadu_ps(x + 2 * i + 16)));
    for (; i < n; i += 16) {
        const int64_t left = sk_min64(16, n - i);
        const __mmask16 m0 = sk_mask16((int)(2 * left - 1)), m1 = sk_mask16((int)(2 * left - 17));
        const __m512 lo = _mm512_maskz_loadu_ps(m0, x + 2 * i);
        const __m512 hi = _mm512_maskz_loadu_ps(m1, x + 2 * i + 16);
        _mm512_mask_storeu_ps(d + i, sk_mask16((int)left), _mm512_permutex2var_ps(lo, even, hi));
    }
#elif defined(__AVX2__)
    for (; i < n; i += 8) {
        const int left = (int)sk_min64(8, n - i);
        const __m256 lo = _mm256_maskload_ps(x + 2 * i, sk_mask8(2 * left - 1));
        const __m256 hi = _mm256_maskload_ps(x + 2 * i + 8, sk_mask8(2 * left - 9));
        const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
        const __m256 v = _mm256_castpd_ps(
            _mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
        sk_store_upto8(d + i, v, left);
    }
#else
    for (; i < n; i++)
        d[i] = x[2 * i];
#endif
}

/* d[i] = 0 for i < n, inline: the runs are short (padding, the row tail
 * up to ldc), and a memset call per run cost more than the stores. */
static inline void sconv_zero(float *d, int64_t n)
{
    int64_t i = 0;
#ifdef __AVX512F__
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_setzero_ps());
    if (i < n)
        _mm512_mask_storeu_ps(d + i, sk_mask16((int)(n - i)), _mm512_setzero_ps());
#elif defined(__AVX2__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_setzero_ps());
    if (i < n)
        sk_store_part8(d + i, _mm256_setzero_ps(), (int)(n - i));
#else
    for (; i < n; i++)
        d[i] = 0.0f;
#endif
}

/* Can im2col rows be shifted copies of whole planes?  With stride 1 and
 * output rows as wide as the input's, p = oh*W + ow reads x[c] at
 * p + (kh*DH - PT)*W + kw*DW - PL: one run per row k instead of one per
 * output row, which on small images (mnist-8's 14 x 14, 5 x 5 taps) cost
 * more than the GEMM that reads them. */
static inline int sconv_flat(const octk_conv_shape *s)
{
    return s->SH == 1 && s->SW == 1 && s->OW == s->W;
}

/* Row k = (c, kh, kw) of a sconv_flat convolution: the plane shifted, 0
 * outside it, then the columns whose tap falls left or right of the row
 * (|kw*DW - PL| per output row) set to 0.  The same values as the run per
 * output row of sconv_im2col. */
static void sconv_im2col_flat_row(const octk_sconv *p, const sconv_geom *g, float *dst,
                                  int64_t c, int64_t kh, int64_t kw)
{
    const octk_conv_shape *s = &p->s;
    const int64_t HW = s->H * s->W, dw = kw * s->DW - s->PL;
    const int64_t shift = (kh * s->DH - s->PT) * s->W + dw;
    const int64_t lo = sk_min64(g->P, sk_max64(0, -shift));
    const int64_t hi = sk_max64(lo, sk_min64(g->P, HW - shift));
    sconv_zero(dst, lo);
    sconv_copy(dst + lo, p->x + c * HW + lo + shift, hi - lo);
    sconv_zero(dst + hi, g->ldc - hi);
    const int64_t z0 = dw < 0 ? 0 : s->W - dw, z1 = dw < 0 ? -dw : s->W;
    if (dw != 0)
        for (int64_t oh = 0; oh < s->OH; oh++)
            for (int64_t ow = sk_max64(0, z0); ow < sk_min64(s->W, z1); ow++)
                dst[oh * s->W + ow] = 0.0f;
}

#ifdef __AVX512F__
enum { SCONV_FLAT_KW_MAX = 16, SCONV_FLAT16_ROWS = 48 };

/* Rows [k0, k1) of a sconv_flat convolution, AVX-512: 16 positions at a
 * time down all the rows, each one masked load of the shifted plane (a
 * lane is kept when its position is below P, its tap column inside the row,
 * and its source inside the plane: the padding of sconv_im2col) and one
 * store.  The column of each lane is carried from vector to vector, so no
 * division is needed. */
static void sconv_im2col_flat16(const octk_sconv *p, const sconv_geom *g, int64_t k0,
                                int64_t k1)
{
    const octk_conv_shape *s = &p->s;
    float *col = (float *)p->work;
    const int64_t HW = s->H * s->W;
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i wv = _mm512_set1_epi32((int32_t)s->W);
    __m512i ow = iota; /* column of each lane's position */
    while (_mm512_cmpge_epi32_mask(ow, wv))
        ow = _mm512_mask_sub_epi32(ow, _mm512_cmpge_epi32_mask(ow, wv), ow, wv);
    for (int64_t v = 0; v < g->ldc; v += 16) {
        const __m512i pv = _mm512_add_epi32(_mm512_set1_epi32((int32_t)v), iota);
        const __mmask16 live = _mm512_cmplt_epi32_mask(pv, _mm512_set1_epi32((int32_t)g->P));
        __mmask16 cm[SCONV_FLAT_KW_MAX];
        for (int64_t kw = 0; kw < s->KW; kw++) {
            const int32_t dw = (int32_t)(kw * s->DW - s->PL);
            cm[kw] = live & _mm512_cmpge_epi32_mask(ow, _mm512_set1_epi32(-dw)) &
                     _mm512_cmplt_epi32_mask(ow, _mm512_set1_epi32((int32_t)s->W - dw));
        }
        int64_t c = k0 / (s->KH * s->KW), kh = (k0 / s->KW) % s->KH, kw = k0 % s->KW;
        for (int64_t k = k0; k < k1; k++) {
            const int64_t shift = (kh * s->DH - s->PT) * s->W + kw * s->DW - s->PL;
            const __m512i src = _mm512_add_epi32(pv, _mm512_set1_epi32((int32_t)shift));
            const __mmask16 in =
                cm[kw] & _mm512_cmplt_epu32_mask(src, _mm512_set1_epi32((int32_t)HW));
            _mm512_storeu_ps(col + k * g->ldc + v,
                             _mm512_maskz_loadu_ps(in, p->x + c * HW + v + shift));
            if (++kw == s->KW) {
                kw = 0;
                if (++kh == s->KH) {
                    kh = 0;
                    c++;
                }
            }
        }
        ow = _mm512_add_epi32(ow, _mm512_set1_epi32(16));
        while (_mm512_cmpge_epi32_mask(ow, wv))
            ow = _mm512_mask_sub_epi32(ow, _mm512_cmpge_epi32_mask(ow, wv), ow, wv);
    }
}
#endif

/* Writes col rows [k0, k1): col[k][p] = x[c][ih][iw] or 0 in the padding,
 * and col[k][P..ldc) = 0. */
static void sconv_im2col(const octk_sconv *p, const sconv_geom *g, int64_t k0, int64_t k1)
{
    const octk_conv_shape *s = &p->s;
    float *col = (float *)p->work;
#ifdef __AVX512F__
    /* int32 lane arithmetic: positions and plane offsets below 2^30.  The
     * masks of a vector are set up once for the task's rows: with fewer
     * rows than SCONV_FLAT16_ROWS (large images) the run per row below was
     * faster (mnist-8's 14 x 14: 99 -> 114 GFLOP/s, its 28 x 28 and
     * squeezenet's 55 x 55: 97 -> 78 and 208 -> 181 the other way). */
    if (sconv_flat(s) && k1 - k0 >= SCONV_FLAT16_ROWS && s->KW <= SCONV_FLAT_KW_MAX &&
        g->ldc + s->H * s->W < (1 << 30) &&
        (s->KH * s->DH + s->PT + 1) * s->W < (1 << 30)) {
        sconv_im2col_flat16(p, g, k0, k1);
        return;
    }
#endif
    if (sconv_flat(s)) {
        for (int64_t k = k0; k < k1; k++)
            sconv_im2col_flat_row(p, g, col + k * g->ldc, k / (s->KH * s->KW),
                                  (k / s->KW) % s->KH, k % s->KW);
        return;
    }
    /* (c, kh, kw) of row k, stepped rather than divided per row */
    int64_t c = k0 / (s->KH * s->KW), kh = (k0 / s->KW) % s->KH, kw = k0 % s->KW;
    for (int64_t k = k0; k < k1; k++) {
        float *dst = col + k * g->ldc;
        int64_t ow_lo, ow_hi;
        sconv_valid_ow(s, kw * s->DW, &ow_lo, &ow_hi);
        for (int64_t oh = 0; oh < s->OH; oh++) {
            float *d = dst + oh * s->OW;
            const int64_t ih = oh * s->SH - s->PT + kh * s->DH;
            if (ih < 0 || ih >= s->H) {
                sconv_zero(d, s->OW);
                continue;
            }
            const float *xr = p->x + (c * s->H + ih) * s->W;
            const int64_t off = kw * s->DW - s->PL;
            sconv_zero(d, ow_lo);
            if (s->SW == 1) {
                sconv_copy(d + ow_lo, xr + ow_lo + off, ow_hi - ow_lo);
            } else if (s->SW == 2) {
                sconv_copy2(d + ow_lo, xr + 2 * ow_lo + off, ow_hi - ow_lo);
            } else {
                for (int64_t ow = ow_lo; ow < ow_hi; ow++)
                    d[ow] = xr[ow * s->SW + off];
            }
            sconv_zero(d + ow_hi, s->OW - ow_hi);
        }
        sconv_zero(dst + g->P, g->ldc - g->P);
        if (++kw == s->KW) {
            kw = 0;
            if (++kh == s->KH) {
                kh = 0;
                c++;
            }
        }
    }
}

void octk_sconv_run(const octk_sconv *p, int phase, int64_t begin, int64_t end)
{
    const sconv_geom g = sconv_geometry(&p->s);
    if (phase == 0) {
        /* tasks [0, col_tasks): im2col rows; then FP8 weight panels */
        const int64_t rows = sconv_col_rows_per_task(&g), col_tasks = sconv_col_tasks(&g);
        const int64_t per = sconv_widen_panels(&g), panels = sk_ceil_div(p->s.M, SK_MR);
        for (int64_t t = begin; t < end; t++) {
            if (t < col_tasks) {
                sconv_im2col(p, &g, t * rows, sk_min64(g.K, (t + 1) * rows));
            } else {
                const int64_t j0 = (t - col_tasks) * per;
                sconv_widen(p, &g, j0, sk_min64(panels, j0 + per));
            }
        }
        return;
    }
    if (phase != 1)
        return;
    sk_mm mm = {
        .M = p->s.M, .N = g.P, .K = g.K,
        .a = p->w8_type ? (const float *)((const char *)p->work + sconv_col_bytes(&g)) : p->w,
        .lda = g.K, .a_packed = 1,
        .b = g.direct ? p->x : (const float *)p->work, .ldb = g.ldc,
        .b_packed = 0, .b_masked = g.direct,
        .y = p->y, .ldy = g.P,
        .bias = p->bias, .bias_per_row = 1,
        .lo = p->y_lo, .hi = p->y_hi,
        .kc = g.kc,
    };
    const int64_t mblocks = sk_ceil_div(p->s.M, SCONV_MB);
    for (int64_t t = begin; t < end; t++) {
        const int64_t mb = t % mblocks, pb = t / mblocks;
        const int64_t m0 = mb * SCONV_MB, p0 = pb * SCONV_NB;
        sk_mm_block(&mm, m0, sk_min64(p->s.M, m0 + SCONV_MB), p0, sk_min64(g.P, p0 + SCONV_NB));
    }
}
