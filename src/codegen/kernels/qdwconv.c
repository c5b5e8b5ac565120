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
 */
#include "qcommon.h"

enum {
    QD_CHUNK = 256,  /* output pixels accumulated at once */
    QD_SLACK = 64,   /* zeroed bytes after the last plane (read by qd_block16) */
};

/* Rows and columns of a padded plane. */
static inline int64_t qd_hp(const octk_conv_shape *s)
{
    return (s->OH - 1) * s->SH + (s->KH - 1) * s->DH + 1;
}

static inline int64_t qd_wp(const octk_conv_shape *s)
{
    return (s->OW - 1) * s->SW + (s->KW - 1) * s->DW + 1;
}

size_t octk_qdwconv_packed_w_size(int64_t C, int64_t taps)
{
    return (size_t)(QK_HDR + C * taps * 2);
}

void octk_qdwconv_pack_w(void *dst, const void *w, int w_signed, const int32_t *w_zero,
                         int64_t C, int64_t taps)
{
    qk_hdr h;
    memset(&h, 0, sizeof h);
    h.path = OCTK_PATH_S16;
    h.kstep = 1;
    h.K = taps;
    h.N = C;
    h.kp = taps;
    uint8_t *base = (uint8_t *)dst;
    for (int64_t c = 0; c < C; c++)
        for (int64_t t = 0; t < taps; t++) {
            int16_t v = (int16_t)(qk_load8(w, w_signed, c * taps + t) - w_zero[c]);
            memcpy(base + QK_HDR + 2 * (c * taps + t), &v, 2);
        }
    memcpy(dst, &h, sizeof h);
}

size_t octk_qdwconv_work_size(const octk_qconv *p)
{
    if (p->s.OH <= 0 || p->s.OW <= 0)
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
        return s->C;
    return s->C * qk_div_up(s->OH, qd_rows_per_task(s));
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
        qd_rows(p, c, b * rpt, qk_min(p->s.OH, (b + 1) * rpt));
    }
}
