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
 * The u8 x s8 path (OCTK_PATH_U8S8, packed only for AVX-512 VNNI targets):
 * when every w - w_zero is an int8, KW <= 8, the horizontal dilation is 1
 * and SW 1 or 2, the packer stores the weights as int8 quads (taps kw 0..3
 * and 4..7 of each kernel row) and their sum per channel.  With x' = x for
 * uint8 input and x' = x + 128 (x ^ 0x80) for int8,
 *   sum (x - x_zero) * w = sum x' * w - (x_zero + 128 * signed) * sum w,
 * so the correction joins the bias and vpdpbusd sums four exact u8 x s8
 * products into each int32 lane (wrapping, as the scalar sum).  A phase-1
 * task copies the input rows it needs as x' bytes into row buffers (cache
 * slot ih mod 16) whose padding holds x_zero' (contributing 0), and for 8
 * output pixels shuffles the 16 or 24 bytes they read into per-pixel quads
 * (vpshufb): one load, one shuffle and one vpdpbusd per kernel row and
 * quad, then the requantize of qconv's AVX-512 epilogue (clamp in float
 * to [y_lo - y_zero, y_hi - y_zero], round, + y_zero, vpmovdb): the same
 * bytes as qk_requant1.  No phase 0, no workspace.
 */
#include "qcommon.h"

enum {
    QD_CHUNK = 256,  /* output pixels accumulated at once */
    QD_SLACK = 64,   /* zeroed bytes after the last plane (read by qd_block16) */
    QD_BW = 1088,    /* most int16 elements of a row buffer of the 3x3 path */
    QD8_BW = 1024,   /* most bytes of a row buffer of the u8 path */
    QD8_SLOTS = 16,  /* row buffers of the u8 path (slot ih mod 16) */
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

/* Bytes of a row buffer of the u8 path: the blocks of 8 output pixels
 * start at multiples of 8 and read columns [ow * SW, ow * SW + 8 + 8 * SW)
 * (qd8_load), within 4 * SW + 16 of the last block's first column. */
static inline int64_t qd8_bw(const octk_conv_shape *s)
{
    return qk_round_up((s->OW - 1) / 8 * 8 * s->SW + 4 * s->SW + 16, 32);
}

/* Whether the shape suits the u8 path (the weights are checked too). */
static inline int qd8_shape_ok(const octk_conv_shape *s)
{
    return s->DW == 1 && (s->SW == 1 || s->SW == 2) && s->KW >= 1 && s->KW <= 8 &&
           s->KH >= 1 && (s->KH - 1) * s->DH < QD8_SLOTS && s->OW > 0 && qd8_bw(s) <= QD8_BW;
}

/* Offsets in a u8 blob: int32 weight sums [C], then quads [C][KH][2][4]. */
static inline int64_t qd8_quads_off(int64_t C) { return QK_HDR + 4 * C; }

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

/* Whether p's weights take the u8 path (p->w may be NULL at compile time:
 * then the workspace of the other paths is reserved). */
static inline int qd8_packed(const octk_qconv *p)
{
    return p->w && qk_read_hdr(p->w).path == OCTK_PATH_U8S8;
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

/* ---- the u8 path ---- */

#if QK_VNNI
/* Row ih of channel c as x' bytes (x ^ 0x80 for int8) at columns j < bw
 * holding iw = j - PL, x_zero' outside the image. */
static inline void qd8_fill(const octk_qconv *p, int64_t c, int64_t ih, uint8_t *d, int64_t bw,
                            uint8_t zb)
{
    const octk_conv_shape *s = &p->s;
    int64_t j0 = qk_min(qk_max(s->PL, 0), bw), j1 = qk_max(qk_min(s->PL + s->W, bw), j0);
    const uint8_t *row = (const uint8_t *)p->x + (c * s->H + ih) * s->W;
    const __m256i zv = _mm256_set1_epi8((char)zb);
    const __m256i flip = _mm256_set1_epi8(p->x_signed ? (char)0x80 : 0);
    /* 32 columns at a time (bw is a multiple of 32): the bytes of the row
     * under a mask (masked-off bytes are not read), x_zero' elsewhere */
    for (int64_t j = 0; j < bw; j += 32) {
        int64_t a = qk_max(j0 - j, 0), b = qk_min(j1 - j, 32);
        __mmask32 m = a < b ? (__mmask32)((((uint64_t)1 << b) - 1) & ~(((uint64_t)1 << a) - 1)) : 0;
        __m256i v = _mm256_maskz_loadu_epi8(m, row + (j - s->PL));
        _mm256_storeu_si256((__m256i *)(d + j),
                            _mm256_mask_blend_epi8(m, zv, _mm256_xor_si256(v, flip)));
    }
}

/* The bytes a block of 8 output pixels reads from its window at q: stride
 * 1, the 16 bytes at q in both 128-bit halves (a broadcast load: no
 * shuffle); stride 2, the 16 at q (pixels 0..3) and the 16 at q + 8
 * (pixels 4..7). */
static inline __attribute__((always_inline)) __m256i qd8_load(const uint8_t *q, const int sw)
{
    if (sw == 1)
        return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)q)),
                                   _mm_loadu_si128((const __m128i *)(q + 8)), 1);
}

/* 8 requantized bytes (qconv's AVX-512 epilogue: the bytes of qk_requant1)
 * in the low half. */
static inline __attribute__((always_inline)) __m128i qd8_requant(__m256i acc, __m256 m,
                                                                 __m256 lo, __m256 hi,
                                                                 __m256i yz)
{
    __m256 f = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), m), lo), hi);
    return _mm256_cvtepi32_epi8(_mm256_add_epi32(_mm256_cvtps_epi32(f), yz));
}

/* Phase 1 of the u8 path: channel c, output rows [oh0, oh1); sw == s->SW,
 * nq == the quads per kernel row (KW <= 4: 1, else 2) and khc == KH (or
 * 0: KH at run time), as constants in each instance. */
static inline __attribute__((always_inline)) void
qd8_rows_k(const octk_qconv *p, int64_t c, int64_t oh0, int64_t oh1, const int sw, const int nq,
           const int khc)
{
    const octk_conv_shape *s = &p->s;
    const int64_t bw = qd8_bw(s), OW = s->OW, KH = s->KH, kh_n = khc ? khc : KH;
    _Alignas(32) uint8_t buf[QD8_SLOTS + 1][QD8_BW]; /* slots, then the padding row */
    int64_t tag[QD8_SLOTS];                          /* ih held by each slot */
    const int32_t zx = p->x_zero + (p->x_signed ? 128 : 0);
    const uint8_t zb = (uint8_t)zx;
    memset(buf[QD8_SLOTS], zb, (size_t)bw);
    for (int i = 0; i < QD8_SLOTS; i++)
        tag[i] = -1;
    const uint8_t *blob = (const uint8_t *)p->w;
    int32_t wsum;
    memcpy(&wsum, blob + QK_HDR + 4 * c, 4);
    const uint8_t *quads = blob + qd8_quads_off(s->C) + c * KH * 8;
    uint32_t corr = (uint32_t)(p->bias ? p->bias[c] : 0) - (uint32_t)zx * (uint32_t)wsum;
    __m256i wq[QD8_SLOTS][2];
    for (int64_t kh = 0; kh < KH; kh++)
        for (int q = 0; q < nq; q++)
            wq[kh][q] = qk_bcast32(quads + kh * 8 + 4 * q);
    /* lane i of a block of 8 pixels: bytes i*sw + 4q .. +3 of its window
     * (qd8_load: stride 2 loads the upper half 8 bytes further on) */
    const __m256i pat0 = sw == 1 ? _mm256_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6,
                                                    4, 5, 6, 7, 5, 6, 7, 8, 6, 7, 8, 9, 7, 8, 9, 10)
                                 : _mm256_setr_epi8(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9,
                                                    0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9);
    const __m256i pat1 = _mm256_add_epi8(pat0, _mm256_set1_epi8(4));
    const __m256 m = _mm256_set1_ps(p->mult[c]);
    const __m256 lo = _mm256_set1_ps((float)(p->y_lo - p->y_zero));
    const __m256 hi = _mm256_set1_ps((float)(p->y_hi - p->y_zero));
    const __m256i yz = _mm256_set1_epi32(p->y_zero), cv = _mm256_set1_epi32((int32_t)corr);
    for (int64_t oh = oh0; oh < oh1; oh++) {
        const uint8_t *rows[QD8_SLOTS];
        for (int64_t kh = 0; kh < KH; kh++) {
            int64_t ih = oh * s->SH - s->PT + kh * s->DH;
            if (ih < 0 || ih >= s->H) {
                rows[kh] = buf[QD8_SLOTS];
                continue;
            }
            int slot = (int)(ih & (QD8_SLOTS - 1));
            if (tag[slot] != ih) {
                qd8_fill(p, c, ih, buf[slot], bw, zb);
                tag[slot] = ih;
            }
            rows[kh] = buf[slot];
        }
        uint8_t *yr = (uint8_t *)p->y + (c * s->OH + oh) * OW;
        int64_t ow = 0;
        for (; ow + 16 <= OW; ow += 16) { /* two independent sums */
            __m256i acc0 = cv, acc1 = cv;
            for (int64_t kh = 0; kh < kh_n; kh++) {
                __m256i v0 = qd8_load(rows[kh] + ow * sw, sw);
                __m256i v1 = qd8_load(rows[kh] + (ow + 8) * sw, sw);
                acc0 = _mm256_dpbusd_epi32(acc0, _mm256_shuffle_epi8(v0, pat0), wq[kh][0]);
                acc1 = _mm256_dpbusd_epi32(acc1, _mm256_shuffle_epi8(v1, pat0), wq[kh][0]);
                if (nq == 2) {
                    acc0 = _mm256_dpbusd_epi32(acc0, _mm256_shuffle_epi8(v0, pat1), wq[kh][1]);
                    acc1 = _mm256_dpbusd_epi32(acc1, _mm256_shuffle_epi8(v1, pat1), wq[kh][1]);
                }
            }
            __m128i b0 = qd8_requant(acc0, m, lo, hi, yz), b1 = qd8_requant(acc1, m, lo, hi, yz);
            _mm_storeu_si128((__m128i *)(yr + ow), _mm_unpacklo_epi64(b0, b1));
        }
        for (; ow < OW; ow += 8) {
            __m256i acc = cv;
            for (int64_t kh = 0; kh < kh_n; kh++) {
                __m256i v = qd8_load(rows[kh] + ow * sw, sw);
                acc = _mm256_dpbusd_epi32(acc, _mm256_shuffle_epi8(v, pat0), wq[kh][0]);
                if (nq == 2)
                    acc = _mm256_dpbusd_epi32(acc, _mm256_shuffle_epi8(v, pat1), wq[kh][1]);
            }
            __m128i b = qd8_requant(acc, m, lo, hi, yz);
            if (ow + 8 <= OW)
                _mm_storel_epi64((__m128i *)(yr + ow), b);
            else
                _mm_mask_storeu_epi8(yr + ow, (__mmask16)((1u << (OW - ow)) - 1), b);
        }
    }
}

static void qd8_rows(const octk_qconv *p, int64_t c, int64_t oh0, int64_t oh1)
{
    /* instances for the common kernels (3x3, 5x5) and for any other */
    const octk_conv_shape *s = &p->s;
    if (s->KH == 3 && s->KW == 3)
        s->SW == 1 ? qd8_rows_k(p, c, oh0, oh1, 1, 1, 3) : qd8_rows_k(p, c, oh0, oh1, 2, 1, 3);
    else if (s->KH == 5 && s->KW == 5)
        s->SW == 1 ? qd8_rows_k(p, c, oh0, oh1, 1, 2, 5) : qd8_rows_k(p, c, oh0, oh1, 2, 2, 5);
    else if (s->KW > 4)
        s->SW == 1 ? qd8_rows_k(p, c, oh0, oh1, 1, 2, 0) : qd8_rows_k(p, c, oh0, oh1, 2, 2, 0);
    else
        s->SW == 1 ? qd8_rows_k(p, c, oh0, oh1, 1, 1, 0) : qd8_rows_k(p, c, oh0, oh1, 2, 1, 0);
}
#else
/* Builds without VNNI never get u8 blobs from octet (the packer takes the
 * target's isa), but the blob stays runnable: the same sums in plain C. */
static void qd8_rows(const octk_qconv *p, int64_t c, int64_t oh0, int64_t oh1)
{
    const octk_conv_shape *s = &p->s;
    const int32_t zx = p->x_zero + (p->x_signed ? 128 : 0);
    const uint8_t *blob = (const uint8_t *)p->w;
    int32_t wsum;
    memcpy(&wsum, blob + QK_HDR + 4 * c, 4);
    const int8_t *quads = (const int8_t *)(blob + qd8_quads_off(s->C) + c * s->KH * 8);
    uint32_t corr = (uint32_t)(p->bias ? p->bias[c] : 0) - (uint32_t)zx * (uint32_t)wsum;
    for (int64_t oh = oh0; oh < oh1; oh++)
        for (int64_t ow = 0; ow < s->OW; ow++) {
            uint32_t acc = corr;
            for (int64_t kh = 0; kh < s->KH; kh++)
                for (int64_t kw = 0; kw < s->KW; kw++) {
                    int64_t ih = oh * s->SH - s->PT + kh * s->DH, iw = ow * s->SW - s->PL + kw;
                    int32_t xv = zx;
                    if (ih >= 0 && ih < s->H && iw >= 0 && iw < s->W)
                        xv = ((const uint8_t *)p->x)[(c * s->H + ih) * s->W + iw] ^
                             (p->x_signed ? 0x80 : 0);
                    acc += (uint32_t)(xv * quads[kh * 8 + kw]);
                }
            ((uint8_t *)p->y)[(c * s->OH + oh) * s->OW + ow] =
                (uint8_t)qk_requant1((int32_t)acc, p->mult[c], p->y_zero, p->y_lo, p->y_hi);
        }
}
#endif

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
