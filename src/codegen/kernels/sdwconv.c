/*
 * sdwconv.c: float32 depthwise convolutions of the LLVM backend (NCHW, one
 * image, C == M, one filter of KH x KW taps per channel).
 *
 * octk_sdwconv: each pixel is bias, then the taps in (kh, kw) order, then
 * the clamp.  Rows of padding are skipped; columns of padding are x = 0
 * on AVX2 and AVX-512 (as in im2col), skipped by the baseline.
 *   - AVX-512: tiles of R output rows x V vectors of 16 pixels, every x
 *     vector one masked load; 3 x 3 at strides 1 and 2 without dilation
 *     loads each input row once for all the output rows reading it, with
 *     lane shifts (stride 1) or even/odd splits (stride 2) of one row
 *     load for the 3 kw when the left pad is 1.
 *   - AVX2: 3 x 3 at strides 1 and 2 without dilation in tiles of up to 4
 *     rows x 2 vectors of 8 pixels (each input row loaded once per tile,
 *     plain loads inside the row, masked ones at its edges); other shapes
 *     one output row at a time, 8 pixels per vector, plain loads where no
 *     tap of the row is padding (strides 1 and 2), masked loads elsewhere
 *     (gathers for larger strides).
 *   - baseline: each tap added into the whole row (the compiler vectorizes
 *     over pixels).
 * Tasks: channel x block of output rows.
 *
 * FP8 weights (w8_type, octk.h): the bytes come in the layout [C][taps];
 * phase 0 widens them into work in tasks of whole channels, and phase 1
 * reads the widened floats.
 *
 * Sums use FMA; their order depends only on the shapes, never on the task
 * split.
 */
#include "octk.h"
#include "scommon.h"

enum {
    SDW_TASK = 1024,   /* output pixels per depthwise task (about) */
};

#ifdef __AVX512F__

/* Lanes [lo, hi) of 16, both clamped to 0..16. */
static inline __mmask16 sdw_lanes16(int64_t lo, int64_t hi)
{
    lo = sk_max64(0, sk_min64(16, lo));
    hi = sk_max64(0, sk_min64(16, hi));
    if (hi <= lo)
        return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* x at columns base + i*SW (i < 16, SW 1 or 2) of row xr, 0 outside
 * [0, W): lanes m0 of xr[base..base+16) and (SW 2) m1 of the next 16, the
 * even ones kept.  The pointer may point before or past the row: masked-off
 * lanes are not accessed. */
SK_ALWAYS_INLINE __m512 sdw_ld16(const float *xr, int64_t base, __mmask16 m0, __mmask16 m1,
                                 const int sw)
{
    const __m512 lo = _mm512_maskz_loadu_ps(m0, xr + base);
    if (sw == 1)
        return lo;
    const __m512 hi = _mm512_maskz_loadu_ps(m1, xr + base + 16);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    return _mm512_permutex2var_ps(lo, even, hi);
}

#endif

/* ---- depthwise ------------------------------------------------------------- */

size_t octk_sdwconv_packed_w_size(int64_t C, int64_t taps)
{
    return (size_t)C * (size_t)taps * sizeof(float);
}

/* The depthwise layout is the ONNX one, w[c][kh][kw]. */
void octk_sdwconv_pack_w(float *dst, const float *w, int64_t C, int64_t taps)
{
    if (C > 0 && taps > 0)
        memcpy(dst, w, (size_t)C * (size_t)taps * sizeof(float));
}

size_t octk_sdwconv_packed_w8_size(int64_t C, int64_t taps)
{
    return (size_t)C * (size_t)taps;
}

void octk_sdwconv_pack_w8(uint8_t *dst, const uint8_t *w, int64_t C, int64_t taps)
{
    if (C > 0 && taps > 0)
        memcpy(dst, w, (size_t)C * (size_t)taps);
}

size_t octk_sdwconv_work_size(const octk_sconv *p)
{
    return p->w8_type ? octk_sdwconv_packed_w_size(p->s.C, p->s.KH * p->s.KW) : 0;
}

static inline int64_t sdw_rows_per_task(const octk_conv_shape *s)
{
    return sk_max64(1, SDW_TASK / sk_max64(1, s->OW));
}

/* FP8 channels widened per phase-0 task. */
static inline int64_t sdw_widen_channels(const octk_conv_shape *s)
{
    return sk_max64(1, SK_WIDEN_TASK / sk_max64(1, s->KH * s->KW));
}

int64_t octk_sdwconv_tasks(const octk_sconv *p, int phase)
{
    const octk_conv_shape *s = &p->s;
    if (s->C <= 0 || s->OH <= 0 || s->OW <= 0)
        return 0;
    if (phase == 0)
        return p->w8_type && s->KH * s->KW > 0 ? sk_ceil_div(s->C, sdw_widen_channels(s)) : 0;
    if (phase != 1)
        return 0;
    return s->C * sk_ceil_div(s->OH, sdw_rows_per_task(s));
}

/* Widens the FP8 filters of channels [c0, c1) into work. */
static void sdw_widen(const octk_sconv *p, int64_t c0, int64_t c1)
{
    const int e4m3 = p->w8_type == OCTK_FP8_E4M3FN;
    const int64_t taps = p->s.KH * p->s.KW;
    for (int64_t c = c0; c < c1; c++) {
        float mult[8];
        for (int i = 0; i < 8; i++)
            mult[i] = sk_fp8_mult(p->w8_scale[c], e4m3);
        sk_widen_fp8((float *)p->work + c * taps, p->w8 + c * taps, taps, mult, 8, e4m3);
    }
}

#ifdef __AVX2__

/* x at iw = base, base + SW, ..., base + 7 SW of row xr, 0 where iw is
 * outside [0, W) (masked gather: those lanes are not read). */
static inline __m256 sdw_gather8(const float *xr, int64_t base, int64_t sw, int64_t w)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i iw = _mm256_add_epi32(_mm256_set1_epi32((int32_t)base),
                                        _mm256_mullo_epi32(lane, _mm256_set1_epi32((int32_t)sw)));
    const __m256i in = _mm256_and_si256(_mm256_cmpgt_epi32(iw, _mm256_set1_epi32(-1)),
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)w), iw));
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), xr, iw, _mm256_castsi256_ps(in), 4);
}

/* x at xr[0], xr[SW], ..., xr[7 SW] for SW = 1 or 2, all inside the row
 * (for SW = 2 it reads 16 floats: the caller keeps xr[15] inside too). */
static inline __m256 sdw_load8(const float *xr, int64_t sw)
{
    if (sw == 1)
        return _mm256_loadu_ps(xr);
    const __m256 lo = _mm256_loadu_ps(xr), hi = _mm256_loadu_ps(xr + 8);
    const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* Lanes i with 0 <= base + first + i < w. */
static inline __m256i sdw_in_row(int64_t base, int first, int64_t w)
{
    const __m256i iw = _mm256_add_epi32(_mm256_set1_epi32((int32_t)base + first),
                                        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_and_si256(_mm256_cmpgt_epi32(iw, _mm256_set1_epi32(-1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)w), iw));
}

/* As sdw_load8 and sdw_gather8 but with row xr and any columns base + i SW:
 * 0 outside [0, W), those floats not read (masked loads for SW 1 and 2). */
static inline __m256 sdw_load8_masked(const float *xr, int64_t base, int64_t sw, int64_t w)
{
    if (sw == 1)
        return _mm256_maskload_ps(xr + base, sdw_in_row(base, 0, w));
    if (sw == 2) {
        const __m256 lo = _mm256_maskload_ps(xr + base, sdw_in_row(base, 0, w));
        const __m256 hi = _mm256_maskload_ps(xr + base + 8, sdw_in_row(base, 8, w));
        const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
        return _mm256_castpd_ps(
            _mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
    }
    return sdw_gather8(xr, base, sw, w);
}

/* y row (c, oh), 8 pixels per vector: bias, then fma(w, x) for each tap of
 * a row kh inside the image in (kh, kw) order, x = 0 in the padding, then
 * clamp.  Vectors where every tap column is inside the row (strides 1, 2)
 * use plain loads, the others masked loads (gathers for strides > 2); a last partial vector is
 * moved back to end at OW (recomputing some pixels to the same bits) or,
 * when OW < 8, stored masked. */
static inline void sdw_row(const octk_sconv *p, const float *w, int64_t c, int64_t oh)
{
    const octk_conv_shape *s = &p->s;
    float *yr = p->y + (c * s->OH + oh) * s->OW;
    const float *xc = p->x + c * s->H * s->W;
    const float *wc = w + c * s->KH * s->KW;
    const __m256 bias = _mm256_set1_ps(p->bias ? p->bias[c] : 0.0f);
    const __m256 lo = _mm256_set1_ps(p->y_lo), hi = _mm256_set1_ps(p->y_hi);
    int64_t vlo = 0, vhi = 0;
    if (s->SW <= 2) {
        /* pixels whose first tap column is >= 0 and last (+1 for SW 2) < W */
        const int64_t last = (s->KW - 1) * s->DW + (s->SW - 1);
        int64_t lo0, hi0, lo1, hi1;
        sconv_valid_ow(s, 0, &lo0, &hi0);
        sconv_valid_ow(s, last, &lo1, &hi1);
        vlo = sk_max64(lo0, lo1);
        vhi = sk_min64(hi0, hi1);
    }
    /* two vectors per step: two independent FMA chains */
    for (int64_t o0 = 0; o0 < s->OW; o0 += 16) {
        int64_t o[2];
        int plain[2];
        for (int v = 0; v < 2; v++) {
            const int64_t ov = sk_min64(o0 + 8 * v, sk_max64(0, s->OW - 8));
            o[v] = ov;
            plain[v] = ov >= vlo && ov + 8 <= vhi;
        }
        __m256 acc0 = bias, acc1 = bias;
        for (int64_t kh = 0; kh < s->KH; kh++) {
            const int64_t ih = oh * s->SH - s->PT + kh * s->DH;
            if (ih < 0 || ih >= s->H)
                continue;
            const float *xr = xc + ih * s->W;
            for (int64_t kw = 0; kw < s->KW; kw++) {
                const __m256 wv = _mm256_broadcast_ss(wc + kh * s->KW + kw);
                const int64_t b0 = o[0] * s->SW - s->PL + kw * s->DW;
                const int64_t b1 = o[1] * s->SW - s->PL + kw * s->DW;
                const __m256 x0 = plain[0] ? sdw_load8(xr + b0, s->SW)
                                           : sdw_load8_masked(xr, b0, s->SW, s->W);
                const __m256 x1 = plain[1] ? sdw_load8(xr + b1, s->SW)
                                           : sdw_load8_masked(xr, b1, s->SW, s->W);
                acc0 = _mm256_fmadd_ps(wv, x0, acc0);
                acc1 = _mm256_fmadd_ps(wv, x1, acc1);
            }
        }
        acc0 = sk_clamp8(acc0, lo, hi);
        acc1 = sk_clamp8(acc1, lo, hi);
        if (s->OW >= 8) {
            _mm256_storeu_ps(yr + o[0], acc0);
            _mm256_storeu_ps(yr + o[1], acc1);
        } else {
            sk_store_part8(yr, acc0, (int)s->OW);
        }
    }
}

#else

/* y row (c, oh): bias, then + w[c][kh][kw] * x[c][ih][iw] for each tap in
 * order over the pixels where it is not padding (the compiler vectorizes
 * over pixels), then clamp. */
static inline void sdw_row(const octk_sconv *p, const float *w, int64_t c, int64_t oh)
{
    const octk_conv_shape *s = &p->s;
    float *yr = p->y + (c * s->OH + oh) * s->OW;
    const float b = p->bias ? p->bias[c] : 0.0f;
    for (int64_t ow = 0; ow < s->OW; ow++)
        yr[ow] = b;
    const float *wc = w + c * s->KH * s->KW;
    for (int64_t kh = 0; kh < s->KH; kh++) {
        const int64_t ih = oh * s->SH - s->PT + kh * s->DH;
        if (ih < 0 || ih >= s->H)
            continue;
        for (int64_t kw = 0; kw < s->KW; kw++) {
            const float wv = wc[kh * s->KW + kw];
            const float *xr = p->x + (c * s->H + ih) * s->W;
            const int64_t off = kw * s->DW - s->PL;
            int64_t lo, hi;
            sconv_valid_ow(s, kw * s->DW, &lo, &hi);
            if (s->SW == 1) {
                for (int64_t ow = lo; ow < hi; ow++)
                    yr[ow] += wv * xr[ow + off];
            } else if (s->SW == 2) {
                for (int64_t ow = lo; ow < hi; ow++)
                    yr[ow] += wv * xr[2 * ow + off];
            } else {
                for (int64_t ow = lo; ow < hi; ow++)
                    yr[ow] += wv * xr[ow * s->SW + off];
            }
        }
    }
    const float lo = p->y_lo, hi = p->y_hi;
    for (int64_t ow = 0; ow < s->OW; ow++)
        yr[ow] = sk_clampf(yr[ow], lo, hi);
}

#endif

#ifdef __AVX512F__

/* ---- depthwise, AVX-512, strides 1 and 2 -----------------------------------
 * A tile is R output rows x V vectors of 16 pixels (R*V <= 8 independent
 * accumulators).  Every x vector is one masked load (two and a lane
 * permutation for stride 2) whose lanes outside [0, W) are neither read nor
 * kept (0): no branch on the image edges and no separate edge path.  Each
 * accumulator starts at the bias and takes its taps in (kh, kw) order (rows
 * of padding skipped, columns of padding as x = 0), as sdw_row does. */

enum { SDW_KW_MAX = 8 };   /* widest kernel of the AVX-512 path */

/* Output rows oh0 .. oh0+R-1, pixels o0 .. o0+16V-1 (those < OW stored) of
 * channel c; R, V and sw constant after inlining. */
SK_ALWAYS_INLINE void sdw_tile16(const octk_sconv *p, const float *wc, int64_t c, int64_t oh0,
                                 int64_t o0, const int R, const int V, const int sw)
{
    const octk_conv_shape *s = &p->s;
    const float *xc = p->x + c * s->H * s->W;
    __m512 acc[8];
    const __m512 bias = _mm512_set1_ps(p->bias ? p->bias[c] : 0.0f);
    for (int a = 0; a < R * V; a++)
        acc[a] = bias;
    /* column offset and lane masks of each (vector, kw): the same for
     * every row, computed once per tile */
    int64_t off[4][SDW_KW_MAX];
    __mmask16 m0[4][SDW_KW_MAX], m1[4][SDW_KW_MAX];
    for (int v = 0; v < V; v++)
        for (int64_t kw = 0; kw < s->KW; kw++) {
            const int64_t base = (o0 + 16 * v) * sw - s->PL + kw * s->DW;
            off[v][kw] = base;
            m0[v][kw] = sdw_lanes16(-base, s->W - base);
            m1[v][kw] = sdw_lanes16(-base - 16, s->W - base - 16);
        }
    for (int64_t kh = 0; kh < s->KH; kh++) {
        for (int r = 0; r < R; r++) {
            const int64_t ih = (oh0 + r) * s->SH - s->PT + kh * s->DH;
            if (ih < 0 || ih >= s->H)
                continue;
            const float *xr = xc + ih * s->W;
            for (int64_t kw = 0; kw < s->KW; kw++) {
                const __m512 wv = _mm512_set1_ps(wc[kh * s->KW + kw]);
                for (int v = 0; v < V; v++) {
                    const __m512 x = sdw_ld16(xr, off[v][kw], m0[v][kw], m1[v][kw], sw);
                    acc[r * V + v] = _mm512_fmadd_ps(wv, x, acc[r * V + v]);
                }
            }
        }
    }
    const __m512 lo = _mm512_set1_ps(p->y_lo), hi = _mm512_set1_ps(p->y_hi);
    for (int r = 0; r < R; r++) {
        float *yr = p->y + (c * s->OH + oh0 + r) * s->OW;
        for (int v = 0; v < V; v++) {
            const int64_t o = o0 + 16 * v;
            /* NaN kept: max/min return their second operand on NaN */
            const __m512 y = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[r * V + v]));
            _mm512_mask_storeu_ps(yr + o, sdw_lanes16(0, s->OW - o), y);
        }
    }
}

/* One tile of R rows x V vectors (runtime) to its constant instance. */
static void sdw_tile16_any(const octk_sconv *p, const float *wc, int64_t c, int64_t oh0,
                           int64_t o0, int R, int V)
{
#define SDW_T(r, v)                                                                      \
    case r * 8 + v:                                                                      \
        if (p->s.SW == 1)                                                                \
            sdw_tile16(p, wc, c, oh0, o0, r, v, 1);                                      \
        else                                                                             \
            sdw_tile16(p, wc, c, oh0, o0, r, v, 2);                                      \
        break;
    switch (R * 8 + V) {
    SDW_T(1, 1) SDW_T(2, 1) SDW_T(4, 1)
    SDW_T(1, 2) SDW_T(2, 2)
    SDW_T(1, 3) SDW_T(2, 3)
    SDW_T(1, 4) SDW_T(2, 4)
    default: break;
    }
#undef SDW_T
}

/* Output rows [r0, r1) of channel c: tiles of up to 4 vectors across and
 * 2 rows down (4 rows when the image is one vector wide). */
static void sdw_rows16(const octk_sconv *p, const float *w, int64_t c, int64_t r0, int64_t r1)
{
    const octk_conv_shape *s = &p->s;
    const float *wc = w + c * s->KH * s->KW;
    const int64_t nvec = sk_ceil_div(s->OW, 16);
    for (int64_t oh = r0; oh < r1;) {
        const int64_t left = r1 - oh;
        const int R = nvec == 1 && left >= 4 ? 4 : left >= 2 ? 2 : 1;
        for (int64_t v0 = 0; v0 < nvec; v0 += 4)
            sdw_tile16_any(p, wc, c, oh, 16 * v0, R, (int)sk_min64(4, nvec - v0));
        oh += R;
    }
}

#endif

#ifdef __AVX2__
/* The 3 x 3 paths of both builds (AVX-512 and AVX2) take these shapes. */
static inline int sdw3_applies(const octk_conv_shape *s)
{
    return s->KH == 3 && s->KW == 3 && s->DH == 1 && s->DW == 1 && s->SH == s->SW &&
           (s->SW == 1 || s->SW == 2);
}
#endif

#ifdef __AVX512F__

/* ---- depthwise 3 x 3, AVX-512, SH == SW in {1, 2}, no dilation ------------
 * Every input row of a tile of R output rows is loaded once and feeds the
 * up to 3 output rows that read it (at stride 1, 3 x fewer loads than
 * sdw_tile16), with the 9 weights held in registers and R*V up to 16
 * accumulators.  Input rows go in ascending order and, inside a row, kw
 * ascending, so each accumulator still takes its taps in (kh, kw) order
 * after the bias: the same sums, bit for bit, as sdw_tile16. */

/* Output rows oh0 .. oh0+R-1, pixels o0 .. o0+16V-1 (those < OW stored);
 * R, V and sw (= SH) constant after inlining. */
SK_ALWAYS_INLINE void sdw3_tile(const octk_sconv *p, const __m512 *wv, const float *xc,
                                float *yc, __m512 bias, int64_t oh0, int64_t o0, const int R,
                                const int V, const int sw)
{
    const octk_conv_shape *s = &p->s;
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            acc[r][v] = bias;
    __mmask16 m0[4][3], m1[4][3];
    int64_t off[4];
    for (int v = 0; v < V; v++) {
        off[v] = (o0 + 16 * v) * sw - s->PL;
        for (int kw = 0; kw < 3; kw++) {
            const int64_t base = off[v] + kw;
            m0[v][kw] = sdw_lanes16(-base, s->W - base);
            m1[v][kw] = sdw_lanes16(-base - 16, s->W - base - 16);
        }
    }
    const int64_t ih0 = oh0 * sw - s->PT;
    for (int i = 0; i < (R - 1) * sw + 3; i++) {
        const int64_t ih = ih0 + i;
        if (ih < 0 || ih >= s->H)
            continue;
        const float *xr = xc + ih * s->W;
        for (int kw = 0; kw < 3; kw++)
            for (int v = 0; v < V; v++) {
                const __m512 x = sdw_ld16(xr, off[v] + kw, m0[v][kw], m1[v][kw], sw);
                for (int r = 0; r < R; r++) {
                    const int kh = i - r * sw;
                    if (kh >= 0 && kh < 3)
                        acc[r][v] = _mm512_fmadd_ps(wv[kh * 3 + kw], x, acc[r][v]);
                }
            }
    }
    const __m512 lo = _mm512_set1_ps(p->y_lo), hi = _mm512_set1_ps(p->y_hi);
    for (int r = 0; r < R; r++) {
        float *yr = yc + (oh0 + r) * s->OW;
        for (int v = 0; v < V; v++) {
            const int64_t o = o0 + 16 * v;
            /* NaN kept: max/min return their second operand on NaN */
            const __m512 y = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[r][v]));
            _mm512_mask_storeu_ps(yr + o, sdw_lanes16(0, s->OW - o), y);
        }
    }
}

/* One tile of R rows x V vectors (runtime, R and V 1..4) to its constant
 * instance. */
static void sdw3_tile_any(const octk_sconv *p, const __m512 *wv, const float *xc, float *yc,
                          __m512 bias, int64_t oh0, int64_t o0, int R, int V)
{
#define SDW3_T(r, v)                                                                     \
    case r * 8 + v:                                                                      \
        if (p->s.SW == 1)                                                                \
            sdw3_tile(p, wv, xc, yc, bias, oh0, o0, r, v, 1);                            \
        else                                                                             \
            sdw3_tile(p, wv, xc, yc, bias, oh0, o0, r, v, 2);                            \
        break;
    switch (R * 8 + V) {
    SDW3_T(1, 1) SDW3_T(2, 1) SDW3_T(3, 1) SDW3_T(4, 1)
    SDW3_T(1, 2) SDW3_T(2, 2) SDW3_T(3, 2) SDW3_T(4, 2)
    SDW3_T(1, 3) SDW3_T(2, 3) SDW3_T(3, 3) SDW3_T(4, 3)
    SDW3_T(1, 4) SDW3_T(2, 4) SDW3_T(3, 4) SDW3_T(4, 4)
    default: break;
    }
#undef SDW3_T
}

/* Output rows [r0, r1) of channel c: tiles of 4 rows (fewer at the end)
 * by up to 4 vectors across. */
static void sdw3_rows(const octk_sconv *p, const float *w, int64_t c, int64_t r0, int64_t r1)
{
    const octk_conv_shape *s = &p->s;
    __m512 wv[9];
    for (int i = 0; i < 9; i++)
        wv[i] = _mm512_set1_ps(w[c * 9 + i]);
    const __m512 bias = _mm512_set1_ps(p->bias ? p->bias[c] : 0.0f);
    const float *xc = p->x + c * s->H * s->W;
    float *yc = p->y + c * s->OH * s->OW;
    const int64_t nvec = sk_ceil_div(s->OW, 16);
    for (int64_t oh = r0; oh < r1; oh += 4) {
        const int R = (int)sk_min64(4, r1 - oh);
        for (int64_t v0 = 0; v0 < nvec; v0 += 4)
            sdw3_tile_any(p, wv, xc, yc, bias, oh, 16 * v0, R, (int)sk_min64(4, nvec - v0));
    }
}

/* One channel of the 3 x 3 paths below. */
typedef struct sdw3f {
    const float *xc, *w;   /* its input plane and 9 weights */
    float *yc;             /* its output plane */
    float bias, lo, hi;
} sdw3f;

/* ---- depthwise 3 x 3, AVX-512, stride 1, left pad 1, OW == W -------------
 * Output vector o of a row reads input columns o - 1 .. o + 16: the row's
 * vector at o (kw 1) shifted by a lane with the vectors before (kw 0) and
 * after it (kw 2), 0 left of the image and (masked loads) right of it, so
 * no column masks.  A tile of R output rows walks along the rows one
 * vector at a time, each of its R + 2 input rows loaded once and shifted
 * twice for the up to 3 output rows that read it: per output vector 9
 * FMAs and 3 shifts at R = 4.  Zen 5 runs 2 of these 512-bit operations a
 * cycle, FMAs and shifts alike, so this beats the plane as one flat run of
 * pixels (no lanes lost past narrow rows, but 6 shifts and 3 column masks
 * per vector) even on rows of 10.  Input rows ascend and kw ascends within
 * a row: each sum is bias, then its taps in (kh, kw) order, as in
 * sdw3_tile. */

static inline int sdw3_s1_applies(const octk_conv_shape *s)
{
    return sdw3_applies(s) && s->SW == 1 && s->PL == 1 && s->OW == s->W;
}

/* Output rows oh0 .. oh0 + R - 1 of the channel of f; R constant after
 * inlining. */
SK_ALWAYS_INLINE void sdw3_s1_tile(const sdw3f *f, const octk_conv_shape *s, int64_t oh0,
                                   const int R)
{
    const int64_t W = s->W;
    __m512 wv[9];
    for (int i = 0; i < 9; i++)
        wv[i] = _mm512_set1_ps(f->w[i]);
    const __m512 bias = _mm512_set1_ps(f->bias);
    const __m512 lo = _mm512_set1_ps(f->lo), hi = _mm512_set1_ps(f->hi);
    const float *xr[6];
    int in[6];
    __m512 prev[6], cur[6];   /* each input row's vectors at o - 16 and o */
    for (int i = 0; i < R + 2; i++) {
        const int64_t ih = oh0 - s->PT + i;
        in[i] = ih >= 0 && ih < s->H;
        xr[i] = f->xc + ih * W;
        prev[i] = _mm512_setzero_ps();
        cur[i] = in[i] ? _mm512_maskz_loadu_ps(sdw_lanes16(0, W), xr[i]) : prev[i];
    }
    for (int64_t o = 0; o < W; o += 16) {
        /* lanes of the next vector inside the row (none past the end) */
        const __mmask16 mn = o + 32 <= W ? 0xffff : sdw_lanes16(0, W - o - 16);
        __m512 acc[4];
        for (int r = 0; r < R; r++)
            acc[r] = bias;
        /* unrolled so that gcc keeps prev, cur and acc in registers */
#pragma GCC unroll 8
        for (int i = 0; i < R + 2; i++) {
            if (!in[i])
                continue;
            const __m512 nx = _mm512_maskz_loadu_ps(mn, xr[i] + o + 16);
            const __m512i pi = _mm512_castps_si512(prev[i]), ci = _mm512_castps_si512(cur[i]);
            const __m512 x[3] = {
                _mm512_castsi512_ps(_mm512_alignr_epi32(ci, pi, 15)), cur[i],
                _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(nx), ci, 1))};
            for (int kw = 0; kw < 3; kw++)
                for (int r = 0; r < R; r++) {
                    const int kh = i - r;
                    if (kh >= 0 && kh < 3)
                        acc[r] = _mm512_fmadd_ps(wv[kh * 3 + kw], x[kw], acc[r]);
                }
            prev[i] = cur[i];
            cur[i] = nx;
        }
        for (int r = 0; r < R; r++) {
            float *yr = f->yc + (oh0 + r) * W + o;
            /* NaN kept: max/min return their second operand on NaN */
            const __m512 y = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[r]));
            if (o + 16 <= W)
                _mm512_storeu_ps(yr, y);
            else
                _mm512_mask_storeu_ps(yr, sdw_lanes16(0, W - o), y);
        }
    }
}

/* Output rows [r0, r1) of channel c: tiles of 4 rows, then 2, then 1. */
static void sdw3_s1(const octk_sconv *p, const float *w, int64_t c, int64_t r0, int64_t r1)
{
    const octk_conv_shape *s = &p->s;
    const sdw3f f = {.xc = p->x + c * s->H * s->W, .w = w + c * 9,
                     .yc = p->y + c * s->OH * s->OW, .bias = p->bias ? p->bias[c] : 0.0f,
                     .lo = p->y_lo, .hi = p->y_hi};
    int64_t oh = r0;
    for (; oh + 4 <= r1; oh += 4)
        sdw3_s1_tile(&f, s, oh, 4);
    for (; oh + 2 <= r1; oh += 2)
        sdw3_s1_tile(&f, s, oh, 2);
    for (; oh < r1; oh++)
        sdw3_s1_tile(&f, s, oh, 1);
}

/* ---- depthwise 3 x 3, AVX-512, stride 2, left pad 1 ------------------------
 * Pixel o + i of an output row reads columns 2 (o + i) - 1 + kw: the even
 * columns of x[2o .. 2o + 32) for kw 1, the odd ones for kw 2, and the odd
 * ones shifted by a lane (the column before from the previous vector, 0
 * left of the image) for kw 0: 2 loads and 3 permutations per input row
 * and vector, each input row shared by the output rows of a tile that read
 * it.  Inner vectors (edge 0) read inside the row and store 16 pixels;
 * others mask both.  Input rows ascend and kw ascends within a row: each
 * sum is bias, then its taps in (kh, kw) order, as in sdw3_tile. */

static inline int sdw3_s2_applies(const octk_conv_shape *s)
{
    return sdw3_applies(s) && s->SW == 2 && s->PL == 1;
}

/* Output rows oh0 .. oh0 + R - 1 of the channel of f, vectors o = oa,
 * oa + 16, ... < ob; R and edge constant after inlining. */
SK_ALWAYS_INLINE void sdw3_s2_run(const sdw3f *f, const octk_conv_shape *s, int64_t oh0,
                                  int64_t oa, int64_t ob, const int R, const int edge)
{
    const int64_t W = s->W;
    __m512 wv[9];
    for (int i = 0; i < 9; i++)
        wv[i] = _mm512_set1_ps(f->w[i]);
    const __m512 bias = _mm512_set1_ps(f->bias);
    const __m512 lo = _mm512_set1_ps(f->lo), hi = _mm512_set1_ps(f->hi);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const float *xr[9];
    int in[9];
    __m512 prev[9];   /* each input row's odd columns of the previous vector */
    for (int i = 0; i < 2 * R + 1; i++) {
        const int64_t ih = oh0 * 2 - s->PT + i;
        in[i] = ih >= 0 && ih < s->H;
        xr[i] = f->xc + ih * W;
        prev[i] = in[i] && oa > 0 ? _mm512_set1_ps(xr[i][2 * oa - 1]) : _mm512_setzero_ps();
    }
    for (int64_t o = oa; o < ob; o += 16) {
        const __mmask16 ma = edge ? sdw_lanes16(0, W - 2 * o) : 0xffff;
        const __mmask16 mb = edge ? sdw_lanes16(0, W - 2 * o - 16) : 0xffff;
        __m512 acc[4];
        for (int r = 0; r < R; r++)
            acc[r] = bias;
        /* unrolled so that gcc keeps prev and acc in registers */
#pragma GCC unroll 9
        for (int i = 0; i < 2 * R + 1; i++) {
            if (!in[i])
                continue;
            const __m512 a = edge ? _mm512_maskz_loadu_ps(ma, xr[i] + 2 * o)
                                  : _mm512_loadu_ps(xr[i] + 2 * o);
            const __m512 b = edge ? _mm512_maskz_loadu_ps(mb, xr[i] + 2 * o + 16)
                                  : _mm512_loadu_ps(xr[i] + 2 * o + 16);
            const __m512 x2 = _mm512_permutex2var_ps(a, odd, b);
            const __m512 x[3] = {
                _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(x2),
                                                        _mm512_castps_si512(prev[i]), 15)),
                _mm512_permutex2var_ps(a, even, b), x2};
            prev[i] = x2;
            for (int r = 0; r < R; r++) {
                const int kh = i - 2 * r;
                if (kh >= 0 && kh < 3)
                    for (int kw = 0; kw < 3; kw++)
                        acc[r] = _mm512_fmadd_ps(wv[kh * 3 + kw], x[kw], acc[r]);
            }
        }
        for (int r = 0; r < R; r++) {
            float *yr = f->yc + (oh0 + r) * s->OW + o;
            /* NaN kept: max/min return their second operand on NaN */
            const __m512 y = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[r]));
            if (!edge || o + 16 <= s->OW)
                _mm512_storeu_ps(yr, y);
            else
                _mm512_mask_storeu_ps(yr, sdw_lanes16(0, s->OW - o), y);
        }
    }
}

/* Rows [oh0, oh0 + R) of the channel of f: inner vectors, then edge ones. */
SK_ALWAYS_INLINE void sdw3_s2_rows(const sdw3f *f, const octk_conv_shape *s, int64_t oh0,
                                   const int R)
{
    /* inner: o + 16 <= OW and 2o + 32 <= W */
    const int64_t inner = sk_max64(0, sk_min64(s->OW - 16, (s->W - 32) / 2) + 1);
    const int64_t ob = s->W >= 32 ? sk_ceil_div(inner, 16) * 16 : 0;
    sdw3_s2_run(f, s, oh0, 0, sk_min64(ob, s->OW), R, 0);
    sdw3_s2_run(f, s, oh0, sk_min64(ob, s->OW), s->OW, R, 1);
}

/* Output rows [r0, r1) of channel c: tiles of 4 rows, then single rows. */
static void sdw3_s2(const octk_sconv *p, const float *w, int64_t c, int64_t r0, int64_t r1)
{
    const octk_conv_shape *s = &p->s;
    const sdw3f f = {.xc = p->x + c * s->H * s->W, .w = w + c * 9,
                     .yc = p->y + c * s->OH * s->OW, .bias = p->bias ? p->bias[c] : 0.0f,
                     .lo = p->y_lo, .hi = p->y_hi};
    int64_t oh = r0;
    for (; oh + 4 <= r1; oh += 4)
        sdw3_s2_rows(&f, s, oh, 4);
    for (; oh < r1; oh++)
        sdw3_s2_rows(&f, s, oh, 1);
}

#endif

#if defined(__AVX2__) && !defined(__AVX512F__)

/* ---- depthwise 3 x 3, AVX2, SH == SW in {1, 2}, no dilation ---------------
 * The AVX-512 tile above on 8-float vectors: every input row of a tile of R
 * output rows is loaded once and feeds the up to 3 output rows that read
 * it, R*V <= 8 accumulators.  Tiles whose every tap column lies inside the
 * row use plain loads (edge 0); the others masked loads whose lanes outside
 * [0, W) are not accessed and read as 0 (edge 1).  Input rows ascend and,
 * inside a row, kw ascends, so each accumulator takes its taps in (kh, kw)
 * order after the bias, padding rows skipped and padding columns as
 * x = 0: the same sums, bit for bit, as sdw_row. */

/* x at columns base + i*sw (i < 8) of row xr (for sw 2 in the lane order
 * of sdw3_unshuffle): plain loads (edge 0: every column read, base ..
 * base + 8*sw - 1, inside the row), else masked ones (m0 the lanes of
 * xr[base .. base+8) inside, m1 those of the next 8). */
SK_ALWAYS_INLINE __m256 sdw3_ld8(const float *xr, int64_t base, __m256i m0, __m256i m1,
                                 const int sw, const int edge)
{
    const __m256 lo = edge ? _mm256_maskload_ps(xr + base, m0) : _mm256_loadu_ps(xr + base);
    if (sw == 1)
        return lo;
    const __m256 hi = edge ? _mm256_maskload_ps(xr + base + 8, m1)
                           : _mm256_loadu_ps(xr + base + 8);
    /* lanes hold columns 0, 2, 8, 10, 4, 6, 12, 14 (halved: pixels 0, 1,
     * 4, 5, 2, 3, 6, 7); sdw3_unshuffle puts the sums in order */
    return _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
}

/* Pixels 0, 1, 4, 5, 2, 3, 6, 7 (stride 2's lane order) back in order. */
static inline __m256 sdw3_unshuffle(__m256 v)
{
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* Output rows oh0 .. oh0+R-1, pixels o0 .. o0+8V-1 (those < OW stored) of
 * one channel (xc, yc its planes, wc its 9 weights); R, V, sw (= SH) and
 * edge constant after inlining. */
SK_ALWAYS_INLINE void sdw3_tile8(const octk_sconv *p, const float *wc, const float *xc,
                                 float *yc, float bias, int64_t oh0, int64_t o0, const int R,
                                 const int V, const int sw, const int edge)
{
    const octk_conv_shape *s = &p->s;
    __m256 acc[4][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            acc[r][v] = _mm256_set1_ps(bias);
    __m256 wv[9];
    for (int i = 0; i < 9; i++)
        wv[i] = _mm256_broadcast_ss(wc + i);
    int64_t off[2];
    __m256i m0[2][3], m1[2][3];
    for (int v = 0; v < V; v++) {
        off[v] = (o0 + 8 * v) * sw - s->PL;
        for (int kw = 0; kw < 3; kw++) {
            m0[v][kw] = edge ? sdw_in_row(off[v] + kw, 0, s->W) : _mm256_setzero_si256();
            m1[v][kw] = edge && sw == 2 ? sdw_in_row(off[v] + kw, 8, s->W) : m0[v][kw];
        }
    }
    const int64_t ih0 = oh0 * sw - s->PT;
    for (int i = 0; i < (R - 1) * sw + 3; i++) {
        const int64_t ih = ih0 + i;
        if (ih < 0 || ih >= s->H)
            continue;
        const float *xr = xc + ih * s->W;
        for (int kw = 0; kw < 3; kw++)
            for (int v = 0; v < V; v++) {
                const __m256 x = sdw3_ld8(xr, off[v] + kw, m0[v][kw], m1[v][kw], sw, edge);
                for (int r = 0; r < R; r++) {
                    const int kh = i - r * sw;
                    if (kh >= 0 && kh < 3)
                        acc[r][v] = _mm256_fmadd_ps(wv[kh * 3 + kw], x, acc[r][v]);
                }
            }
    }
    const __m256 lo = _mm256_set1_ps(p->y_lo), hi = _mm256_set1_ps(p->y_hi);
    for (int r = 0; r < R; r++) {
        float *yr = yc + (oh0 + r) * s->OW;
        for (int v = 0; v < V; v++) {
            const int64_t o = o0 + 8 * v;
            __m256 y = sk_clamp8(acc[r][v], lo, hi);
            if (sw == 2)
                y = sdw3_unshuffle(y);
            if (!edge)
                _mm256_storeu_ps(yr + o, y);
            else
                sk_store_upto8(yr + o, y, (int)sk_min64(8, s->OW - o));
        }
    }
}

/* One tile (R 1..4, V 1..2 at run time) to its constant instance. */
static void sdw3_tile8_any(const octk_sconv *p, const float *wc, const float *xc, float *yc,
                           float bias, int64_t oh0, int64_t o0, int R, int V, int edge)
{
#define SDW3_T8(r, v, e)                                                                 \
    case (r * 4 + v) * 2 + e:                                                            \
        if (p->s.SW == 1)                                                                \
            sdw3_tile8(p, wc, xc, yc, bias, oh0, o0, r, v, 1, e);                        \
        else                                                                             \
            sdw3_tile8(p, wc, xc, yc, bias, oh0, o0, r, v, 2, e);                        \
        break;
    switch ((R * 4 + V) * 2 + edge) {
    SDW3_T8(1, 1, 0) SDW3_T8(2, 1, 0) SDW3_T8(3, 1, 0) SDW3_T8(4, 1, 0)
    SDW3_T8(1, 2, 0) SDW3_T8(2, 2, 0) SDW3_T8(3, 2, 0) SDW3_T8(4, 2, 0)
    SDW3_T8(1, 1, 1) SDW3_T8(2, 1, 1) SDW3_T8(3, 1, 1) SDW3_T8(4, 1, 1)
    SDW3_T8(1, 2, 1) SDW3_T8(2, 2, 1) SDW3_T8(3, 2, 1) SDW3_T8(4, 2, 1)
    default: break;
    }
#undef SDW3_T8
}

/* Output rows [r0, r1) of channel c: tiles of 4 rows (fewer at the end) by
 * up to 2 vectors across; a tile is plain (edge 0) when all its stores
 * are whole and every tap column it reads lies inside the row. */
static void sdw3_rows8(const octk_sconv *p, const float *w, int64_t c, int64_t r0, int64_t r1)
{
    const octk_conv_shape *s = &p->s;
    const float *wc = w + c * 9;
    const float bias = p->bias ? p->bias[c] : 0.0f;
    const float *xc = p->x + c * s->H * s->W;
    float *yc = p->y + c * s->OH * s->OW;
    const int64_t sw = s->SW;
    for (int64_t oh = r0; oh < r1; oh += 4) {
        const int R = (int)sk_min64(4, r1 - oh);
        for (int64_t o0 = 0; o0 < s->OW; o0 += 16) {
            const int V = (int)sk_min64(2, sk_ceil_div(s->OW - o0, 8));
            const int edge = !(o0 * sw - s->PL >= 0 && (o0 + 8 * V) * sw - s->PL + 2 <= s->W &&
                               o0 + 8 * V <= s->OW);
            sdw3_tile8_any(p, wc, xc, yc, bias, oh, o0, R, V, edge);
        }
    }
}

#endif

/* Phase 0 (FP8 weights only): task t widens channels [t*n, (t+1)*n).
 * Phase 1: task t is channel t / row_blocks, output rows of block
 * t % row_blocks. */
void octk_sdwconv_run(const octk_sconv *p, int phase, int64_t begin, int64_t end)
{
    const octk_conv_shape *s = &p->s;
    if (phase == 0) {
        const int64_t per = sdw_widen_channels(s);
        for (int64_t t = begin; t < end; t++)
            sdw_widen(p, t * per, sk_min64(s->C, (t + 1) * per));
        return;
    }
    if (phase != 1)
        return;
    const float *w = p->w8_type ? (const float *)p->work : p->w;
    const int64_t rpt = sdw_rows_per_task(s), rblocks = sk_ceil_div(s->OH, rpt);
    for (int64_t t = begin; t < end; t++) {
        const int64_t c = t / rblocks, r0 = (t % rblocks) * rpt;
        const int64_t r1 = sk_min64(s->OH, r0 + rpt);
#ifdef __AVX512F__
        if (sdw3_s1_applies(s)) {
            sdw3_s1(p, w, c, r0, r1);
            continue;
        }
        if (sdw3_s2_applies(s)) {
            sdw3_s2(p, w, c, r0, r1);
            continue;
        }
        if (sdw3_applies(s)) {
            sdw3_rows(p, w, c, r0, r1);
            continue;
        }
        if (s->SW <= 2 && s->KW <= SDW_KW_MAX) {
            sdw_rows16(p, w, c, r0, r1);
            continue;
        }
#endif
#if defined(__AVX2__) && !defined(__AVX512F__)
        if (sdw3_applies(s)) {
            sdw3_rows8(p, w, c, r0, r1);
            continue;
        }
#endif
        for (int64_t oh = r0; oh < r1; oh++)
            sdw_row(p, w, c, oh);
    }
}
