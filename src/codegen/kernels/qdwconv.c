/*
 * qdwconv.c: quantized depthwise 2-D convolution (NCHW, one image, C == M
 * channels, one KH x KW filter per channel):
 *   y[c][oh][ow] = requant(bias[c] + sum_{kh,kw} (x[c][ih][iw] - x_zero)
 *                          * (w[c][kh][kw] - w_zero[c])),
 * padding contributing 0, accumulation wrapping in int32 (uint32 arithmetic).
 *
 * Packed weights: the common header (path OCTK_PATH_S16) then int16
 * [C][taps] holding w - w_zero.
 * Phase 0 (one task per channel) writes each channel's input, minus x_zero,
 * as int16 into a zero-bordered plane of HP x WP in work, HP = (OH-1)*SH +
 * (KH-1)*DH + 1 and WP likewise, plane row i / column j holding ih = i - PT,
 * iw = j - PL; so phase 1 needs no bounds checks.
 * Phase 1 (tasks = channels x blocks of output rows) runs direct loops over
 * the taps, vectorized over the output pixels of a row: with AVX2, unit
 * horizontal dilation and stride 1 or 2, blocks of 16 pixels accumulate in
 * registers with vpmaddwd on pairs of taps (qd_block16); the rest (and the
 * generic build) use plain loops the compiler vectorizes.  Each row is then
 * requantized.
 *
 * The 3x3 path (KH = KW = 3, unit dilation, SW 1 or 2, any SH and padding,
 * rows short enough for a stack buffer: most depthwise convolutions of
 * mobile networks) skips phase 0 and the workspace: each phase-1 task
 * widens the input rows it needs, minus x_zero, into a small cache of
 * zero-bordered int16 rows (8 slots, slot ih mod 8, so rows shared by
 * consecutive output rows are widened once), then runs qd3_block16x2
 * (qd3_block16 for a lone row) from them: 16 output pixels of two output
 * rows per step, the channel's 9 weights held in registers as tap pairs.
 * Same sums (wrapping int32), same requantize (qk_requant8), so the bytes
 * are those of the general path.  Phase 1 reads x directly, so y must not
 * overlap x (the memory plan never lets a node's output share its inputs).
 *
 * The u8 x s8 path for VNNI targets is in qdwconv_u8.c.
 */
#include "qdwconv.h"

enum {
    QD_CHUNK = 256,  /* output pixels accumulated at once */
    QD_SLACK = 64,   /* zeroed bytes after the last plane (read by qd_block16) */
    QD_BW = 1088,    /* most int16 elements of a row buffer of the 3x3 path */
};

/* Elements of a row buffer of the 3x3 path: column j holds iw = j - PL,
 * the (OW-1)*SW + 3 columns the output row reads, then zeros for the reads
 * of qd3_block16 past them (up to 34 elements after a block's first
 * column, for a block starting at max(OW - 16, 0)). */
static inline int64_t qd_bw(const octk_conv_shape *s)
{
    return qk_round_up((s->OW - 1) * s->SW + 3 + 48, 16);
}

/* Whether the 3x3 path (no phase 0, no workspace) runs this shape. */
static inline int qd_fast3(const octk_conv_shape *s)
{
    return s->KH == 3 && s->KW == 3 && s->DH == 1 && s->DW == 1 && (s->SW == 1 || s->SW == 2) &&
           s->OW > 0 && qd_bw(s) <= QD_BW;
}

/* Rows and columns of a padded plane. */
static inline int64_t qd_hp(const octk_conv_shape *s)
{
    return (s->OH - 1) * s->SH + (s->KH - 1) * s->DH + 1;
}

static inline int64_t qd_wp(const octk_conv_shape *s)
{
    return (s->OW - 1) * s->SW + (s->KW - 1) * s->DW + 1;
}

size_t octk_qdwconv_packed_w_size(const octk_conv_shape *s)
{
    int64_t s16 = s->C * s->KH * s->KW * 2, u8 = 4 * s->C + s->C * s->KH * 8;
    return (size_t)(QK_HDR + qk_max(s16, u8));
}

void octk_qdwconv_pack_w(void *dst, const void *w, int w_signed, const int32_t *w_zero,
                         const octk_conv_shape *s, unsigned isa)
{
    const int64_t C = s->C, taps = s->KH * s->KW;
    int u8 = (isa & OCTK_ISA_VNNI) && qd8_shape_ok(s);
    for (int64_t c = 0; c < C && u8; c++)
        for (int64_t t = 0; t < taps && u8; t++) {
            int32_t v = qk_load8(w, w_signed, c * taps + t) - w_zero[c];
            u8 = v >= -128 && v <= 127;
        }
    qk_hdr h;
    memset(&h, 0, sizeof h);
    h.path = u8 ? OCTK_PATH_U8S8 : OCTK_PATH_S16;
    h.kstep = u8 ? 4 : 1;
    h.K = taps;
    h.N = C;
    h.kp = taps;
    uint8_t *base = (uint8_t *)dst;
    if (u8) {
        memset(base + QK_HDR, 0, (size_t)(4 * C + C * s->KH * 8));
        for (int64_t c = 0; c < C; c++) {
            uint32_t sum = 0;
            for (int64_t kh = 0; kh < s->KH; kh++)
                for (int64_t kw = 0; kw < s->KW; kw++) {
                    int32_t v = qk_load8(w, w_signed, c * taps + kh * s->KW + kw) - w_zero[c];
                    sum += (uint32_t)v;
                    base[qd8_quads_off(C) + (c * s->KH + kh) * 8 + kw] = (uint8_t)(int8_t)v;
                }
            memcpy(base + QK_HDR + 4 * c, &sum, 4);
        }
    } else {
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < taps; t++) {
                int16_t v = (int16_t)(qk_load8(w, w_signed, c * taps + t) - w_zero[c]);
                memcpy(base + QK_HDR + 2 * (c * taps + t), &v, 2);
            }
    }
    memcpy(dst, &h, sizeof h);
}

size_t octk_qdwconv_work_size(const octk_qconv *p)
{
    if (p->s.OH <= 0 || p->s.OW <= 0 || qd_fast3(&p->s) || qd8_packed(p))
        return 0;
    return (size_t)qk_round_up(p->s.C * qd_hp(&p->s) * qd_wp(&p->s) * 2, 64) + QD_SLACK;
}

/* Rows of output per phase-1 task: all of them when there are 8 channels or
 * more, else enough blocks for about 8 tasks. */
static inline int64_t qd_rows_per_task(const octk_conv_shape *s)
{
    if (s->C >= 8)
        return s->OH;
    int64_t blocks = qk_min(s->OH, qk_div_up(8, qk_max(s->C, 1)));
    return qk_div_up(s->OH, blocks);
}

int64_t octk_qdwconv_tasks(const octk_qconv *p, int phase)
{
    const octk_conv_shape *s = &p->s;
    if (s->C <= 0 || s->OH <= 0 || s->OW <= 0)
        return 0;
    if (phase == 0)
        return qd_fast3(s) || qd8_packed(p) ? 0 : s->C;
    if (phase == 1)
        return s->C * qk_div_up(s->OH, qd_rows_per_task(s));
    return 0;
}

/* Phase 0: the padded plane of channel c. */
static void qd_pad(const octk_qconv *p, int64_t c)
{
    const octk_conv_shape *s = &p->s;
    int64_t hp = qd_hp(s), wp = qd_wp(s);
    int16_t *plane = (int16_t *)p->work + c * hp * wp;
    int32_t z = p->x_zero;
    /* columns j with iw = j - PL in [0, W) */
    int64_t j0 = qk_min(qk_max(s->PL, 0), wp), j1 = qk_max(qk_min(s->PL + s->W, wp), j0);
    for (int64_t i = 0; i < hp; i++) {
        int16_t *d = plane + i * wp;
        int64_t ih = i - s->PT;
        if (ih < 0 || ih >= s->H) {
            memset(d, 0, (size_t)wp * 2);
            continue;
        }
        for (int64_t j = 0; j < j0; j++)
            d[j] = 0;
        int64_t off = (c * s->H + ih) * s->W - s->PL;
        if (p->x_signed) {
            const int8_t *src = (const int8_t *)p->x + off;
            for (int64_t j = j0; j < j1; j++)
                d[j] = (int16_t)(src[j] - z);
        } else {
            const uint8_t *src = (const uint8_t *)p->x + off;
            for (int64_t j = j0; j < j1; j++)
                d[j] = (int16_t)(src[j] - z);
        }
        for (int64_t j = j1; j < wp; j++)
            d[j] = 0;
    }
    if (c == s->C - 1)
        memset(plane + hp * wp, 0, QD_SLACK);
}

/* acc[i] += src[i * sw] * wv for i < n, wrapping. */
static inline void qd_tap(uint32_t *acc, const int16_t *src, int64_t sw, int32_t wv, int64_t n)
{
    if (sw == 1) {
        for (int64_t i = 0; i < n; i++)
            acc[i] += (uint32_t)(src[i] * wv);
    } else if (sw == 2) {
        for (int64_t i = 0; i < n; i++)
            acc[i] += (uint32_t)(src[2 * i] * wv);
    } else {
        for (int64_t i = 0; i < n; i++)
            acc[i] += (uint32_t)(src[i * sw] * wv);
    }
}

enum { QD_MAX_PAIRS = 64 };  /* fast path: KH * ceil(KW/2) weight pairs at most */

#ifdef __AVX2__
/* out = bias + sum of the taps for the 16 output pixels [ow, ow + 16) of
 * row oh, for DW == 1 and SW 1 or 2: horizontal tap pairs (2j, 2j+1) run on
 * vpmaddwd against the int32 lanes of the plane, which hold (x[i], x[i+1]).
 * Stride 2: lane i of a load at the pixel's column is exactly its pair.
 * Stride 1: loads at offsets 0 and 1 give the even and the odd pixels,
 * interleaved back at the end.  An odd last tap pairs with weight 0, so up
 * to 2 elements past the last plane are read (the zeroed workspace slack). */
static inline void qd_block16(const octk_conv_shape *s, const int16_t *plane, int64_t wp,
                              const int32_t *wpair, int64_t npair, int64_t oh, int64_t ow,
                              int32_t bias, __m256i out[2])
{
    __m256i a0 = _mm256_set1_epi32(bias), a1 = a0;
    for (int64_t kh = 0; kh < s->KH; kh++) {
        const int16_t *row = plane + (oh * s->SH + kh * s->DH) * wp + ow * s->SW;
        for (int64_t j = 0; j < npair; j++) {
            const __m256i w = _mm256_set1_epi32(wpair[kh * npair + j]);
            const int16_t *r = row + 2 * j;
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)r);
            const __m256i v1 = _mm256_loadu_si256((const __m256i *)(r + (s->SW == 1 ? 1 : 16)));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(v0, w));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(v1, w));
        }
    }
    if (s->SW == 1) {
        /* a0 = pixels 0, 2, ..., 14; a1 = 1, 3, ..., 15 */
        __m256i lo = _mm256_unpacklo_epi32(a0, a1), hi = _mm256_unpackhi_epi32(a0, a1);
        a0 = _mm256_permute2x128_si256(lo, hi, 0x20);
        a1 = _mm256_permute2x128_si256(lo, hi, 0x31);
    }
    out[0] = a0;
    out[1] = a1;
}
#endif

/* Phase 1: channel c, output rows [oh0, oh1). */
static void qd_rows(const octk_qconv *p, int64_t c, int64_t oh0, int64_t oh1)
{
    const octk_conv_shape *s = &p->s;
    int64_t hp = qd_hp(s), wp = qd_wp(s), taps = s->KH * s->KW;
    const int16_t *plane = (const int16_t *)p->work + c * hp * wp;
    const uint8_t *blob = (const uint8_t *)p->w + QK_HDR;
    int32_t bias = p->bias ? p->bias[c] : 0;
    int64_t fast_end = 0; /* output pixels [0, fast_end) of a row take qd_block16 */
#ifdef __AVX2__
    int32_t wpair[QD_MAX_PAIRS];
    int64_t npair = (s->KW + 1) / 2;
    if (s->DW == 1 && (s->SW == 1 || s->SW == 2) && s->KH * npair <= QD_MAX_PAIRS) {
        fast_end = s->OW >= 16 ? s->OW : 0;
        for (int64_t kh = 0; kh < s->KH; kh++)
            for (int64_t j = 0; j < npair; j++) {
                int16_t w0, w1 = 0;
                memcpy(&w0, blob + 2 * (c * taps + kh * s->KW + 2 * j), 2);
                if (2 * j + 1 < s->KW)
                    memcpy(&w1, blob + 2 * (c * taps + kh * s->KW + 2 * j + 1), 2);
                wpair[kh * npair + j] =
                    (int32_t)((uint32_t)(uint16_t)w0 | (uint32_t)(uint16_t)w1 << 16);
            }
    }
#endif
    uint32_t acc[QD_CHUNK];
    int32_t acci[QD_CHUNK];
    for (int64_t oh = oh0; oh < oh1; oh++) {
        uint8_t *yrow = (uint8_t *)p->y + (c * s->OH + oh) * s->OW;
#ifdef __AVX2__
        const __m256 m = _mm256_set1_ps(p->mult[c]);
        /* blocks of 16; the last one overlaps the previous (rewriting the
         * same bytes) when OW is not a multiple of 16 */
        for (int64_t ow = 0; ow < fast_end; ow += 16) {
            ow = ow + 16 > fast_end ? fast_end - 16 : ow;
            __m256i a[2];
            qd_block16(s, plane, wp, wpair, npair, oh, ow, bias, a);
            qk_requant8(a[0], m, p->y_zero, p->y_lo, p->y_hi, p->y_signed, yrow + ow);
            qk_requant8(a[1], m, p->y_zero, p->y_lo, p->y_hi, p->y_signed, yrow + ow + 8);
        }
#endif
        for (int64_t ow0 = fast_end; ow0 < s->OW; ow0 += QD_CHUNK) {
            int64_t n = qk_min(QD_CHUNK, s->OW - ow0);
            for (int64_t i = 0; i < n; i++)
                acc[i] = (uint32_t)bias;
            for (int64_t kh = 0; kh < s->KH; kh++) {
                const int16_t *row = plane + (oh * s->SH + kh * s->DH) * wp + ow0 * s->SW;
                for (int64_t kw = 0; kw < s->KW; kw++) {
                    int16_t wv;
                    memcpy(&wv, blob + 2 * (c * taps + kh * s->KW + kw), 2);
                    qd_tap(acc, row + kw * s->DW, s->SW, wv, n);
                }
            }
            for (int64_t i = 0; i < n; i++)
                acci[i] = (int32_t)acc[i];
            qk_requant_row(acci, n, p->mult + c, 0, p->y_zero, p->y_lo, p->y_hi, p->y_signed,
                           yrow + ow0);
        }
    }
}

/* ---- the 3x3 path ---- */

#ifdef __AVX2__
/* int16 lanes i < n all ones, the others zero (0 < n < 16). */
static inline __m256i qd3_mask16(int64_t n)
{
    const __m256i iota = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm256_cmpgt_epi16(_mm256_set1_epi16((int16_t)n), iota);
}
#endif

#ifdef __AVX2__
/* x[0..16) - x_zero widened to int16, x int8 if sgn, else uint8. */
static inline __m256i qd3_widen16(const uint8_t *x, __m256i zv, int sgn)
{
    __m128i b = _mm_loadu_si128((const __m128i *)x);
    return _mm256_sub_epi16(sgn ? _mm256_cvtepi8_epi16(b) : _mm256_cvtepu8_epi16(b), zv);
}
#endif

/* d[i] = x[i] - x_zero for i in [j, j1), x int8 if sgn, else uint8 (sgn a
 * constant at each call: each signedness gets its own loops).  The last
 * vector (masked) is loaded only when its 16 bytes lie inside x (x + j + 16
 * <= x_end) and the row buffer (j + 16 <= bw). */
static inline __attribute__((always_inline)) void
qd3_widen(int16_t *d, const uint8_t *x, const uint8_t *x_end, int64_t j, int64_t j1, int64_t bw,
          int32_t z, int sgn)
{
#ifdef __AVX2__
    const __m256i zv = _mm256_set1_epi16((int16_t)z);
    for (; j + 16 <= j1; j += 16)
        _mm256_storeu_si256((__m256i *)(d + j), qd3_widen16(x + j, zv, sgn));
    if (j < j1 && j + 16 <= bw && x + j + 16 <= x_end) {
        _mm256_storeu_si256((__m256i *)(d + j),
                            _mm256_and_si256(qd3_widen16(x + j, zv, sgn), qd3_mask16(j1 - j)));
        j = j1;
    }
#else
    (void)bw, (void)x_end;
#endif
    for (; j < j1; j++)
        d[j] = (int16_t)((sgn ? (int32_t)(int8_t)x[j] : (int32_t)x[j]) - z);
}

/* d[j] = x[c][ih][j - PL] - x_zero for the columns j < bw inside the row
 * (exact in int16: |x - x_zero| <= 255 + |x_zero|, x_zero a zero point of
 * the input type); the other columns are left as they are (zero). */
static void qd3_fill(const octk_qconv *p, int64_t c, int64_t ih, int16_t *d, int64_t bw)
{
    const octk_conv_shape *s = &p->s;
    int64_t j0 = qk_min(qk_max(s->PL, 0), bw), j1 = qk_max(qk_min(s->PL + s->W, bw), j0);
    const uint8_t *x = (const uint8_t *)p->x + (c * s->H + ih) * s->W - s->PL;
    const uint8_t *x_end = (const uint8_t *)p->x + s->C * s->H * s->W;
    if (p->x_signed)
        qd3_widen(d, x, x_end, j0, j1, bw, p->x_zero, 1);
    else
        qd3_widen(d, x, x_end, j0, j1, bw, p->x_zero, 0);
}

#ifdef __AVX2__
/* acc + the pair sums of v and w (wrapping int32; each pair sum is exact
 * but for 2 * (-32768)^2, which wraps like the scalar sum). */
static inline __attribute__((always_inline)) __m256i qd3_dot(__m256i acc, __m256i v, __m256i w)
{
#if QK_VNNI
    return _mm256_dpwssd_epi32(acc, v, w);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(v, w));
#endif
}

/* out = bias + the 9 taps for output pixels [ow, ow + 16) of a row whose
 * input rows are r[0..2] (row buffers, column 0 at iw = -PL).  w01[k] holds
 * the pair (w[k][0], w[k][1]) and w2[k] the pair (w[k][2], 0) in each int32
 * lane.  Stride 2: lane i of a load at column 2*ow is pixel i's pair
 * (x[2i], x[2i+1]), of a load 2 further its (x[2i+2], x[2i+3]).  Stride 1:
 * loads at columns ow + 0..3 give the even pixels (offsets 0 and 2) and the
 * odd ones (1 and 3), interleaved back at the end. */
static inline __attribute__((always_inline)) void
qd3_block16(const int16_t *const r[3], int64_t ow, int64_t sw, const __m256i w01[3],
            const __m256i w2[3], __m256i bias, __m256i out[2])
{
    __m256i a0 = bias, a1 = bias, b0 = _mm256_setzero_si256(), b1 = b0;
    for (int k = 0; k < 3; k++) {
        const int16_t *q = r[k] + ow * sw;
        const __m256i v0 = _mm256_loadu_si256((const __m256i *)q);
        const __m256i v2 = _mm256_loadu_si256((const __m256i *)(q + 2));
        const __m256i v1 = _mm256_loadu_si256((const __m256i *)(q + (sw == 1 ? 1 : 16)));
        const __m256i v3 = _mm256_loadu_si256((const __m256i *)(q + (sw == 1 ? 3 : 18)));
        a0 = qd3_dot(a0, v0, w01[k]);
        b0 = qd3_dot(b0, v2, w2[k]);
        a1 = qd3_dot(a1, v1, w01[k]);
        b1 = qd3_dot(b1, v3, w2[k]);
    }
    a0 = _mm256_add_epi32(a0, b0);
    a1 = _mm256_add_epi32(a1, b1);
    if (sw == 1) {
        /* a0 = pixels 0, 2, ..., 14; a1 = 1, 3, ..., 15 */
        __m256i lo = _mm256_unpacklo_epi32(a0, a1), hi = _mm256_unpackhi_epi32(a0, a1);
        a0 = _mm256_permute2x128_si256(lo, hi, 0x20);
        a1 = _mm256_permute2x128_si256(lo, hi, 0x31);
    }
    out[0] = a0;
    out[1] = a1;
}
#endif

#ifdef __AVX2__
/* qd3_block16 for two output rows at once, whose input rows are rr[0..2]
 * and rr[sh..sh+2] (sh 1 or 2): each input row is loaded once. */
static inline __attribute__((always_inline)) void
qd3_block16x2(const int16_t *const rr[5], int64_t sh, int64_t ow, int64_t sw,
              const __m256i w01[3], const __m256i w2[3], __m256i bias, __m256i out[4])
{
    __m256i a0 = bias, a1 = bias, b0 = _mm256_setzero_si256(), b1 = b0;
    __m256i c0 = bias, c1 = bias, d0 = b0, d1 = b0;
    for (int i = 0; i < 3 + sh; i++) {
        const int16_t *q = rr[i] + ow * sw;
        const __m256i v0 = _mm256_loadu_si256((const __m256i *)q);
        const __m256i v2 = _mm256_loadu_si256((const __m256i *)(q + 2));
        const __m256i v1 = _mm256_loadu_si256((const __m256i *)(q + (sw == 1 ? 1 : 16)));
        const __m256i v3 = _mm256_loadu_si256((const __m256i *)(q + (sw == 1 ? 3 : 18)));
        if (i < 3) {
            a0 = qd3_dot(a0, v0, w01[i]);
            b0 = qd3_dot(b0, v2, w2[i]);
            a1 = qd3_dot(a1, v1, w01[i]);
            b1 = qd3_dot(b1, v3, w2[i]);
        }
        if (i >= sh) {
            c0 = qd3_dot(c0, v0, w01[i - sh]);
            d0 = qd3_dot(d0, v2, w2[i - sh]);
            c1 = qd3_dot(c1, v1, w01[i - sh]);
            d1 = qd3_dot(d1, v3, w2[i - sh]);
        }
    }
    a0 = _mm256_add_epi32(a0, b0);
    a1 = _mm256_add_epi32(a1, b1);
    c0 = _mm256_add_epi32(c0, d0);
    c1 = _mm256_add_epi32(c1, d1);
    if (sw == 1) {
        __m256i lo = _mm256_unpacklo_epi32(a0, a1), hi = _mm256_unpackhi_epi32(a0, a1);
        a0 = _mm256_permute2x128_si256(lo, hi, 0x20);
        a1 = _mm256_permute2x128_si256(lo, hi, 0x31);
        lo = _mm256_unpacklo_epi32(c0, c1);
        hi = _mm256_unpackhi_epi32(c0, c1);
        c0 = _mm256_permute2x128_si256(lo, hi, 0x20);
        c1 = _mm256_permute2x128_si256(lo, hi, 0x31);
    }
    out[0] = a0;
    out[1] = a1;
    out[2] = c0;
    out[3] = c1;
}
#endif

/* The row buffer of input row ih of channel c: the zero row buf[8] when ih
 * is outside [0, H), else slot ih mod 8, widened unless it holds ih. */
static inline const int16_t *qd3_row(const octk_qconv *p, int64_t c, int64_t ih,
                                     int16_t (*buf)[QD_BW], int64_t tag[8], int64_t bw)
{
    if (ih < 0 || ih >= p->s.H)
        return buf[8];
    int slot = (int)(ih & 7);
    if (tag[slot] != ih) {
        qd3_fill(p, c, ih, buf[slot], bw);
        tag[slot] = ih;
    }
    return buf[slot];
}

#ifdef __AVX2__
/* The 16 output bytes [ow, ow + 16) of a row from its input rows r. */
static inline __attribute__((always_inline)) void
qd3_out16(const octk_qconv *p, const int16_t *const r[3], int64_t ow, const int64_t sw,
          const __m256i w01[3], const __m256i w2[3], __m256i bv, __m256 m, const int y_signed,
          uint8_t *y)
{
    __m256i a[2];
    qd3_block16(r, ow, sw, w01, w2, bv, a);
    qk_requant8(a[0], m, p->y_zero, p->y_lo, p->y_hi, y_signed, y);
    qk_requant8(a[1], m, p->y_zero, p->y_lo, p->y_hi, y_signed, y + 8);
}
#endif

/* Phase 1 of the 3x3 path: channel c, output rows [oh0, oh1); sw == s->SW
 * and y_signed == p->y_signed, as constants in each instance.  Two output
 * rows go together when SH <= 2 (their at most 5 input rows then sit in
 * distinct slots). */
static inline __attribute__((always_inline)) void
qd3_rows_k(const octk_qconv *p, int64_t c, int64_t oh0, int64_t oh1, const int64_t sw,
           const int y_signed)
{
    const octk_conv_shape *s = &p->s;
    const int64_t bw = qd_bw(s), OW = s->OW;
    _Alignas(32) int16_t buf[9][QD_BW]; /* 8 cache slots, then a zero row */
    int64_t tag[8];                     /* ih held by each slot */
    for (int i = 0; i < 9; i++)
        memset(buf[i], 0, (size_t)bw * 2);
    for (int i = 0; i < 8; i++)
        tag[i] = -1;
    int16_t w[9];
    memcpy(w, (const uint8_t *)p->w + QK_HDR + 2 * 9 * c, sizeof w);
    int32_t bias = p->bias ? p->bias[c] : 0;
#ifdef __AVX2__
    __m256i w01[3], w2[3];
    for (int k = 0; k < 3; k++) {
        w01[k] = _mm256_set1_epi32(
            (int32_t)((uint32_t)(uint16_t)w[3 * k] | (uint32_t)(uint16_t)w[3 * k + 1] << 16));
        w2[k] = _mm256_set1_epi32((int32_t)(uint32_t)(uint16_t)w[3 * k + 2]);
    }
    const __m256i bv = _mm256_set1_epi32(bias);
    const __m256 m = _mm256_set1_ps(p->mult[c]);
#endif
    int64_t step = 1;
    for (int64_t oh = oh0; oh < oh1; oh += step) {
        step = s->SH <= 2 && oh + 1 < oh1 ? 2 : 1;
        const int16_t *r[2][3];
        for (int64_t i = 0; i < step; i++)
            for (int k = 0; k < 3; k++)
                r[i][k] = qd3_row(p, c, (oh + i) * s->SH - s->PT + k, buf, tag, bw);
        uint8_t *y0 = (uint8_t *)p->y + (c * s->OH + oh) * OW, *y1 = y0 + OW;
#ifdef __AVX2__
        if (OW < 16) {
            for (int64_t i = 0; i < step; i++) {
                uint8_t *yr = y0 + i * OW;
                __m256i a[2];
                qd3_block16(r[i], 0, sw, w01, w2, bv, a);
                if (OW >= 8) {
                    /* pixels 0..7, then OW-8..OW-1 gathered from both halves
                     * in registers (a store of 16 bytes and a load of the
                     * tail would stall store forwarding) */
                    const __m256i j = _mm256_add_epi32(
                        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)OW - 8));
                    const __m256i idx = _mm256_and_si256(j, _mm256_set1_epi32(7));
                    const __m256i hi = _mm256_cmpgt_epi32(j, _mm256_set1_epi32(7));
                    const __m256i t =
                        _mm256_blendv_epi8(_mm256_permutevar8x32_epi32(a[0], idx),
                                           _mm256_permutevar8x32_epi32(a[1], idx), hi);
                    qk_requant8(a[0], m, p->y_zero, p->y_lo, p->y_hi, y_signed, yr);
                    qk_requant8(t, m, p->y_zero, p->y_lo, p->y_hi, y_signed, yr + OW - 8);
                } else {
                    uint8_t tmp[8];
                    qk_requant8(a[0], m, p->y_zero, p->y_lo, p->y_hi, y_signed, tmp);
                    for (int64_t k = 0; k < OW; k++)
                        yr[k] = tmp[k];
                }
            }
            continue;
        }
        /* the last block overlaps the previous one (rewriting the same
         * bytes) when OW is not a multiple of 16 */
        if (step == 2) { /* SH 1 or 2 */
            const int16_t *rr[5] = {r[0][0], r[0][1], r[0][2], r[1][1], r[1][2]};
            if (s->SH == 1)
                rr[3] = r[1][2];
            for (int64_t ow = 0; ow < OW; ow += 16) {
                ow = ow + 16 > OW ? OW - 16 : ow;
                __m256i a[4];
                if (s->SH == 1)
                    qd3_block16x2(rr, 1, ow, sw, w01, w2, bv, a);
                else
                    qd3_block16x2(rr, 2, ow, sw, w01, w2, bv, a);
                qk_requant8(a[0], m, p->y_zero, p->y_lo, p->y_hi, y_signed, y0 + ow);
                qk_requant8(a[1], m, p->y_zero, p->y_lo, p->y_hi, y_signed, y0 + ow + 8);
                qk_requant8(a[2], m, p->y_zero, p->y_lo, p->y_hi, y_signed, y1 + ow);
                qk_requant8(a[3], m, p->y_zero, p->y_lo, p->y_hi, y_signed, y1 + ow + 8);
            }
        } else {
            for (int64_t ow = 0; ow < OW; ow += 16) {
                ow = ow + 16 > OW ? OW - 16 : ow;
                qd3_out16(p, r[0], ow, sw, w01, w2, bv, m, y_signed, y0 + ow);
            }
        }
#else
        (void)y1;
        for (int64_t i = 0; i < step; i++)
            for (int64_t ow = 0; ow < OW; ow++) {
                uint32_t acc = (uint32_t)bias;
                for (int k = 0; k < 3; k++)
                    for (int kw = 0; kw < 3; kw++)
                        acc += (uint32_t)(r[i][k][ow * sw + kw] * w[3 * k + kw]);
                y0[i * OW + ow] = (uint8_t)qk_requant1((int32_t)acc, p->mult[c], p->y_zero,
                                                       p->y_lo, p->y_hi);
            }
#endif
    }
    (void)y_signed;
}

static void qd3_rows(const octk_qconv *p, int64_t c, int64_t oh0, int64_t oh1)
{
    if (p->s.SW == 1) {
        if (p->y_signed)
            qd3_rows_k(p, c, oh0, oh1, 1, 1);
        else
            qd3_rows_k(p, c, oh0, oh1, 1, 0);
    } else {
        if (p->y_signed)
            qd3_rows_k(p, c, oh0, oh1, 2, 1);
        else
            qd3_rows_k(p, c, oh0, oh1, 2, 0);
    }
}

void octk_qdwconv_run(const octk_qconv *p, int phase, int64_t begin, int64_t end)
{
    if (phase == 0) {
        for (int64_t t = begin; t < end; t++)
            qd_pad(p, t);
        return;
    }
    int64_t rpt = qd_rows_per_task(&p->s), nb = qk_div_up(p->s.OH, rpt);
    for (int64_t t = begin; t < end; t++) {
        int64_t c = t / nb, b = t % nb;
        if (qd8_packed(p)) {
            qd8_rows(p, c, b * rpt, qk_min(p->s.OH, (b + 1) * rpt));
            continue;
        }
        if (qd_fast3(&p->s))
            qd3_rows(p, c, b * rpt, qk_min(p->s.OH, (b + 1) * rpt));
        else
            qd_rows(p, c, b * rpt, qk_min(p->s.OH, (b + 1) * rpt));
    }
}
