/*
 * qconv.c: quantized 2-D convolution (NCHW, one image, one group) as
 *   y[m][p] = requant(bias[m] + sum_k (W[m][k] - w_zero[m]) * col[k][p]),
 * K = C*KH*KW, p = oh*OW + ow, col[k][p] = x[c][ih][iw] - x_zero (0 in the
 * padding), with k = (c*KH + kh)*KW + kw.
 *
 * Packing (octk_qconv_pack_w) chooses the path: OCTK_PATH_U8S8 when the
 * target has AVX2, every w_zero is 0 and every pair (W[m][2j], W[m][2j+1])
 * satisfies qk_pair_fits_u8s8 (with VNNI: every weight is an int8), else
 * OCTK_PATH_S16.  W is stored as rows minus the zero
 * point (qcommon.h); U8S8 also stores the row sums sum_k W[m][k] (wrapping).
 * Phase 0 (tasks of QC_PREP_PANELS panels of QK_NR pixels) writes the im2col
 * panels into work: S16 as int16 pairs (x - x_zero, 0 in the padding), U8S8 as
 * bytes xu = x (uint8) or x + 128 (int8) with padding xu = x_zero [+128], so that
 *   sum (x - x_zero) * W = sum xu * W - (x_zero [+128]) * rowsum(W) (mod 2^32).
 * (x_zero must lie in the range of x's type, as ONNX requires.)
 * Phase 1 computes tiles of output channels x pixel panels (qc_grid; when a
 * tile spans all channels it first builds its own panels, and phase 0 is
 * empty) with the 4 x 24 microkernels broadcasting weights against 8-pixel vectors,
 * adds bias and correction with wrap-around and requantizes rows of pixels.
 */
#include "qcommon.h"

/* phase 0 task: this many pixel panels, one im2col row of all at once */
enum { QC_PREP_PANELS = 8, QC_PREP_PIX = QC_PREP_PANELS * QK_NR };

static inline int64_t qc_K(const octk_conv_shape *s) { return s->C * s->KH * s->KW; }
static inline int64_t qc_panels(const octk_conv_shape *s)
{
    return qk_div_up(s->OH * s->OW, QK_NR);
}

/* Phase-1 tile grid: rows of mb output channels x groups of pb panels.
 * When one row block covers all M (fused), each phase-1 task builds its own
 * im2col panels (cache-hot) and phase 0 has no task; otherwise phase 0
 * builds all panels first.  Up to 256 channels stay in one block when that
 * still gives 8 tasks. */
static inline int qc_grid(const octk_conv_shape *s, int64_t *mb, int64_t *pb)
{
    int64_t np = qc_panels(s);
    if (s->M <= 256 && qk_div_up(np, 4) >= 8) {
        *mb = s->M;
        *pb = 4;
    } else {
        qk_tile_grid(s->M, np, mb, pb);
    }
    return *mb >= s->M;
}

size_t octk_qconv_packed_w_size(int64_t M, int64_t K)
{
    int64_t s16 = M * qk_round_up(K, 2) * 2, u8 = M * qk_round_up(K, 4) + 4 * M;
    return (size_t)(QK_HDR + qk_max(s16, u8));
}

void octk_qconv_pack_w(void *dst, const void *w, int w_signed, const int32_t *w_zero,
                       int64_t M, int64_t K, unsigned isa)
{
    int u8s8 = (isa & OCTK_ISA_AVX2) != 0, vnni = (isa & OCTK_ISA_VNNI) != 0;
    for (int64_t m = 0; m < M && u8s8; m++) {
        if (w_zero[m] != 0)
            u8s8 = 0;
        for (int64_t k = 0; k < K && u8s8; k += 2) {
            int32_t w0 = qk_load8(w, w_signed, m * K + k) - w_zero[m];
            int32_t w1 = k + 1 < K ? qk_load8(w, w_signed, m * K + k + 1) - w_zero[m] : 0;
            u8s8 = vnni ? qk_fits_int8(w0) && qk_fits_int8(w1) : qk_pair_fits_u8s8(w0, w1);
        }
    }
    qk_hdr h;
    memset(&h, 0, sizeof h);
    h.path = u8s8 ? OCTK_PATH_U8S8 : OCTK_PATH_S16;
    h.kstep = u8s8 ? 4 : 2;
    h.K = K;
    h.N = M;
    h.kp = qk_round_up(K, h.kstep);
    uint8_t *base = (uint8_t *)dst;
    if (u8s8) {
        h.sums_off = QK_HDR + M * h.kp;
        for (int64_t m = 0; m < M; m++) {
            uint32_t s = 0;
            for (int64_t k = 0; k < h.kp; k++) {
                int32_t v = k < K ? qk_load8(w, w_signed, m * K + k) : 0;
                base[QK_HDR + m * h.kp + k] = (uint8_t)(int8_t)v;
                s += (uint32_t)v;
            }
            int32_t si = (int32_t)s;
            memcpy(base + h.sums_off + 4 * m, &si, 4);
        }
    } else {
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < h.kp; k++) {
                int16_t v = (int16_t)(k < K ? qk_load8(w, w_signed, m * K + k) - w_zero[m] : 0);
                memcpy(base + QK_HDR + 2 * (m * h.kp + k), &v, 2);
            }
    }
    memcpy(dst, &h, sizeof h);
}

size_t octk_qconv_work_size(const octk_qconv *p)
{
    int64_t K = qc_K(&p->s), cols = qc_panels(&p->s) * QK_NR;
    int64_t s16 = cols * qk_round_up(K, 2) * 2, u8 = cols * qk_round_up(K, 4);
    return (size_t)qk_round_up(qk_max(s16, u8), 64);
}

int64_t octk_qconv_tasks(const octk_qconv *p, int phase)
{
    const octk_conv_shape *s = &p->s;
    if (s->M <= 0 || s->OH <= 0 || s->OW <= 0)
        return 0;
    int64_t mb, pb, np = qc_panels(s);
    int fused = qc_grid(s, &mb, &pb);
    if (phase == 0)
        return fused ? 0 : qk_div_up(np, QC_PREP_PANELS);
    return qk_div_up(s->M, mb) * qk_div_up(np, pb);
}

/* ---- im2col -------------------------------------------------------------
 * An im2col row (one k, the pixels of one task) is first made of raw input
 * bytes, x_zero wherever the row has no input (padding, pixels beyond
 * OH*OW, k >= K), or taken straight from x when its pixels read one
 * contiguous run of the input; then 4 (U8S8) or 2 (S16) rows are
 * interleaved into the panels, converting on the way: U8S8 stores
 * xu = raw ^ 0x80 for int8 x (= x + 128) and raw for uint8, S16 stores
 * x - x_zero.  So padding is x_zero [+128] (U8S8) or 0 (S16), which both
 * mean x == x_zero; pixels beyond OH*OW are never stored and rows k >= K
 * meet weight 0, so their value does not matter. */

/* Row buffers are written up to QC_SLACK bytes past their end (qc_fill8). */
enum { QC_SLACK = 16 };

/* t[i] = v for i < n; writes whole 16-byte blocks, so up to 15 bytes past
 * t + n (the caller's slack or bytes it rewrites afterwards). */
static inline void qc_fill8(uint8_t *t, uint8_t v, int64_t n)
{
    uint8_t blk[16];
    memset(blk, v, sizeof blk);
    for (int64_t i = 0; i < n; i += 16)
        memcpy(t + i, blk, 16);
}

/* d[i] = s[i] for i < n, reading and writing only those bytes (s may end at
 * the end of the input). */
static inline void qc_copy8(uint8_t *d, const uint8_t *s, int64_t n)
{
    if (n >= 16) {
        /* the last block overlaps the previous one, rewriting equal bytes */
        for (int64_t i = 0;; i += 16) {
            i = i + 16 > n ? n - 16 : i;
            memcpy(d + i, s + i, 16);
            if (i + 16 >= n)
                return;
        }
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n > 0) {
        uint8_t a = s[0], b = s[n / 2], c = s[n - 1];
        d[0] = a;
        d[n / 2] = b;
        d[n - 1] = c;
    }
}

/* d[i] = s[2i] for i < n, reading s[0 .. 2n-2] only. */
static inline void qc_gather2(uint8_t *d, const uint8_t *s, int64_t n)
{
    int64_t i = 0;
#ifdef __AVX2__
    /* 16 outputs from 32 bytes, while those stay inside s[0 .. 2n-2] */
    const __m256i even = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1,
                                          -1, 0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1,
                                          -1, -1);
    for (; 2 * i + 32 <= 2 * n - 1; i += 16) {
        __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(s + 2 * i)), even);
        v = _mm256_permute4x64_epi64(v, 0x08);
        _mm_storeu_si128((__m128i *)(d + i), _mm256_castsi256_si128(v));
    }
#endif
    for (; i < n; i++)
        d[i] = s[2 * i];
}

/* What the im2col rows of one task share. */
typedef struct qc_prep {
    int64_t oh0, ow0;   /* output position of the first pixel */
    int64_t ohl, owl;   /* that of the last pixel inside OH*OW (if nin > 0) */
    int64_t n, nin;     /* pixels of the task; those inside OH*OW */
} qc_prep;

/* Valid output columns ow_lo <= ow < ow_hi of tap column kw (those whose
 * input column lies inside the image); *ibase: iw = ow * SW + ibase. */
static inline void qc_ow_range(const octk_conv_shape *s, int64_t kw, int64_t *ibase,
                               int64_t *ow_lo, int64_t *ow_hi)
{
    int64_t ib = kw * s->DW - s->PL, lo, hi;
    if (s->SW == 1) {
        lo = ib >= 0 ? 0 : -ib;
        hi = s->W - ib;
    } else {
        lo = ib >= 0 ? 0 : qk_div_up(-ib, s->SW);
        hi = s->W - 1 - ib < 0 ? 0 : (s->W - 1 - ib) / s->SW + 1;
    }
    hi = qk_max(qk_min(hi, s->OW), 0);
    *ibase = ib;
    *ow_lo = qk_min(lo, hi);
    *ow_hi = hi;
}

/* Builds the raw im2col row of k = (c*KH + kh)*KW + kw (c < 0: k >= K)
 * over the task's pixels in t (pr->n bytes plus QC_SLACK). */
static void qc_build_row(const octk_qconv *p, const qc_prep *pr, int64_t c, int64_t kh,
                         int64_t kw, uint8_t *t)
{
    const octk_conv_shape *s = &p->s;
    const uint8_t *x = (const uint8_t *)p->x;
    uint8_t z = (uint8_t)p->x_zero;
    int64_t nin = pr->nin;
    if (c < 0) {
        qc_fill8(t, z, pr->n);
        return;
    }
    int64_t ibase, ow_lo, ow_hi;
    qc_ow_range(s, kw, &ibase, &ow_lo, &ow_hi);
    int64_t j = 0, oh = pr->oh0, ow0 = pr->ow0;
    while (j < nin) {
        int64_t seg = qk_min(nin - j, s->OW - ow0), ow1 = ow0 + seg;
        int64_t ih = oh * s->SH - s->PT + kh * s->DH;
        if (ih < 0 || ih >= s->H) {
            qc_fill8(t + j, z, seg);
        } else {
            /* left padding, input, right padding, in that order (each
             * fill may spill into what follows, rewritten next) */
            int64_t a = qk_min(qk_max(ow0, ow_lo), ow1), b = qk_max(qk_min(ow1, ow_hi), a);
            const uint8_t *src = x + (c * s->H + ih) * s->W + a * s->SW + ibase;
            uint8_t *d = t + j + (a - ow0);
            qc_fill8(t + j, z, a - ow0);
            if (s->SW == 1)
                qc_copy8(d, src, b - a);
            else if (s->SW == 2)
                qc_gather2(d, src, b - a);
            else
                for (int64_t i = 0; i < b - a; i++)
                    d[i] = src[i * s->SW];
            qc_fill8(t + j + (b - ow0), z, ow1 - b);
        }
        j += seg;
        ow0 = 0;
        oh++;
    }
    qc_fill8(t + nin, z, pr->n - nin);
}

/* The raw im2col row of k = (c*KH + kh)*KW + kw (c < 0: k >= K): a pointer
 * into x itself when the task's pixels read one contiguous run of the input
 * (all inside OH*OW and the image, within one output row, or whole rows
 * with OW == W, stride 1 and no horizontal offset: 1x1 rows, inner taps),
 * else the row built in t. */
static inline const uint8_t *qc_row8(const octk_qconv *p, const qc_prep *pr, int64_t c,
                                     int64_t kh, int64_t kw, uint8_t *t)
{
    const octk_conv_shape *s = &p->s;
    if (c >= 0 && s->SW == 1 && pr->nin == pr->n) {
        int64_t dh = kh * s->DH - s->PT, ibase = kw * s->DW - s->PL;
        int64_t ih0 = pr->oh0 * s->SH + dh, ihl = pr->ohl * s->SH + dh;
        int64_t iw0 = pr->ow0 + ibase, iwl = pr->owl + ibase;
        if (ih0 >= 0 && ihl < s->H &&
            (pr->oh0 == pr->ohl ? iw0 >= 0 && iwl < s->W
                                : s->SH == 1 && s->OW == s->W && ibase == 0))
            return (const uint8_t *)p->x + (c * s->H + ih0) * s->W + iw0;
    }
    qc_build_row(p, pr, c, kh, kw, t);
    return t;
}

/* One k quad of a U8S8 panel: d[4j + i] = ri[j] ^ flip for j < QK_NR. */
static inline void qc_interleave4(uint8_t *d, const uint8_t *r0, const uint8_t *r1,
                                  const uint8_t *r2, const uint8_t *r3, uint8_t flip)
{
#ifdef __AVX2__
    const __m128i f = _mm_set1_epi8((char)flip);
    __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)r0), f);
    __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)r1), f);
    __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)r2), f);
    __m128i e = _mm_xor_si128(_mm_loadu_si128((const __m128i *)r3), f);
    __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
    __m128i ce0 = _mm_unpacklo_epi8(c, e), ce1 = _mm_unpackhi_epi8(c, e);
    _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(ab0, ce0));
    _mm_storeu_si128((__m128i *)(d + 16), _mm_unpackhi_epi16(ab0, ce0));
    _mm_storeu_si128((__m128i *)(d + 32), _mm_unpacklo_epi16(ab1, ce1));
    _mm_storeu_si128((__m128i *)(d + 48), _mm_unpackhi_epi16(ab1, ce1));
    a = _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(r0 + 16)), f);
    b = _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(r1 + 16)), f);
    c = _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(r2 + 16)), f);
    e = _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(r3 + 16)), f);
    ab0 = _mm_unpacklo_epi8(a, b);
    ce0 = _mm_unpacklo_epi8(c, e);
    _mm_storeu_si128((__m128i *)(d + 64), _mm_unpacklo_epi16(ab0, ce0));
    _mm_storeu_si128((__m128i *)(d + 80), _mm_unpackhi_epi16(ab0, ce0));
#else
    for (int j = 0; j < QK_NR; j++) {
        d[4 * j] = r0[j] ^ flip;
        d[4 * j + 1] = r1[j] ^ flip;
        d[4 * j + 2] = r2[j] ^ flip;
        d[4 * j + 3] = r3[j] ^ flip;
    }
#endif
}

/* One k pair of an S16 panel: d[2j + i] = ri[j] - x_zero for j < QK_NR,
 * ri read as int8 if x_signed, else uint8 (no overflow: |x - x_zero| <=
 * 255). */
static inline void qc_interleave2(int16_t *d, const uint8_t *r0, const uint8_t *r1, int x_signed,
                                  int32_t x_zero)
{
#ifdef __AVX2__
    const __m128i zv = _mm_set1_epi16((int16_t)x_zero);
    for (int j = 0; j < QK_NR; j += 8) {
        __m128i a = _mm_loadl_epi64((const __m128i *)(r0 + j));
        __m128i b = _mm_loadl_epi64((const __m128i *)(r1 + j));
        a = x_signed ? _mm_cvtepi8_epi16(a) : _mm_cvtepu8_epi16(a);
        b = x_signed ? _mm_cvtepi8_epi16(b) : _mm_cvtepu8_epi16(b);
        a = _mm_sub_epi16(a, zv);
        b = _mm_sub_epi16(b, zv);
        _mm_storeu_si128((__m128i *)(d + 2 * j), _mm_unpacklo_epi16(a, b));
        _mm_storeu_si128((__m128i *)(d + 2 * j + 8), _mm_unpackhi_epi16(a, b));
    }
#else
    for (int j = 0; j < QK_NR; j++) {
        int32_t a = x_signed ? (int8_t)r0[j] : r0[j], b = x_signed ? (int8_t)r1[j] : r1[j];
        d[2 * j] = (int16_t)(a - x_zero);
        d[2 * j + 1] = (int16_t)(b - x_zero);
    }
#endif
}

/* Phase 0 task: im2col panels [q0, q1) (at most QC_PREP_PANELS). */
static void qc_im2col(const octk_qconv *p, const qk_hdr *h, int64_t q0, int64_t q1)
{
    int u8s8 = h->path == OCTK_PATH_U8S8;
    int64_t kp = h->kp, p0 = q0 * QK_NR, n = (q1 - q0) * QK_NR;
    uint8_t t[4][QC_PREP_PIX + QC_SLACK];
    const uint8_t *r[4];
    int kstep = u8s8 ? 4 : 2;
    const octk_conv_shape *s = &p->s;
    uint8_t flip = p->x_signed ? 0x80 : 0;
    qc_prep pr = {.oh0 = p0 / s->OW, .ow0 = p0 % s->OW, .n = n,
                  .nin = qk_max(0, qk_min(n, s->OH * s->OW - p0))};
    pr.ohl = (p0 + qk_max(pr.nin, 1) - 1) / s->OW;
    pr.owl = (p0 + qk_max(pr.nin, 1) - 1) % s->OW;
    int64_t c = 0, kh = 0, kw = 0; /* k = (c*KH + kh)*KW + kw, counted along */
    for (int64_t k = 0; k < kp; k += kstep) {
        for (int i = 0; i < kstep; i++) {
            r[i] = qc_row8(p, &pr, c < s->C ? c : -1, kh, kw, t[i]);
            if (++kw == s->KW) {
                kw = 0;
                if (++kh == s->KH) {
                    kh = 0;
                    c++;
                }
            }
        }
        for (int64_t q = q0; q < q1; q++) {
            const int64_t o = (q - q0) * QK_NR;
            if (u8s8)
                qc_interleave4((uint8_t *)p->work + (q * kp + k) * QK_NR, r[0] + o, r[1] + o,
                               r[2] + o, r[3] + o, flip);
            else
                qc_interleave2((int16_t *)p->work + (q * kp + k) * QK_NR, r[0] + o, r[1] + o,
                               p->x_signed, p->x_zero);
        }
    }
}

#ifdef __AVX2__
/* 8 products (float)acc * mult rounded to int32, for the requantization of
 * qk_requant1: min(2^20, v) first (NaN stays NaN), then cvtps2dq, which
 * gives INT_MIN for NaN and for v < -2^31 (results below y_lo either way,
 * as the -2^20 clamp of qk_requant1 gives). */
static inline __m256i qc_round8(__m256i acc, __m256 m)
{
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), m);
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_set1_ps(0x1p20f), f));
}

/* A full row of a tile: y[j] = clamp(rint((float)wrap(c[j] + add) * mult)
 * + y_zero, y_lo, y_hi) for j < QK_NR, the bytes qk_epilogue_row stores.
 * Done in int16 with saturation after the rounding: a saturated value v
 * (|v| >= 32767) plus y_zero (|y_zero| <= 255) still lies beyond the 8-bit
 * range on the same side as the exact sum, so the clamp gives the same
 * result; values inside int16 are exact. */
static inline void qc_epilogue24(const int32_t *c, int32_t add, float mult, int32_t y_zero,
                                 int32_t y_lo, int32_t y_hi, int y_signed, uint8_t *y)
{
    const __m256i av = _mm256_set1_epi32(add);
    const __m256 mv = _mm256_set1_ps(mult);
    __m256i q0 = qc_round8(_mm256_add_epi32(_mm256_loadu_si256((const __m256i *)c), av), mv);
    __m256i q1 = qc_round8(_mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(c + 8)), av), mv);
    __m256i q2 = qc_round8(_mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(c + 16)), av), mv);
    /* packs works within 128-bit lanes: reorder the quarters */
    __m256i w01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
    __m128i w2 = _mm_packs_epi32(_mm256_castsi256_si128(q2), _mm256_extracti128_si256(q2, 1));
    const __m256i zv = _mm256_set1_epi16((int16_t)y_zero), lo = _mm256_set1_epi16((int16_t)y_lo),
                  hi = _mm256_set1_epi16((int16_t)y_hi);
    w01 = _mm256_max_epi16(_mm256_min_epi16(_mm256_adds_epi16(w01, zv), hi), lo);
    w2 = _mm_max_epi16(_mm_min_epi16(_mm_adds_epi16(w2, _mm256_castsi256_si128(zv)),
                                     _mm256_castsi256_si128(hi)),
                       _mm256_castsi256_si128(lo));
    __m128i a = _mm256_castsi256_si128(w01), b = _mm256_extracti128_si256(w01, 1);
    /* in [y_lo, y_hi]: either pack is exact */
    __m128i b16 = y_signed ? _mm_packs_epi16(a, b) : _mm_packus_epi16(a, b);
    __m128i b8 = y_signed ? _mm_packs_epi16(w2, w2) : _mm_packus_epi16(w2, w2);
    _mm_storeu_si128((__m128i *)y, b16);
    _mm_storel_epi64((__m128i *)(y + 16), b8);
}
#endif

/* Phase 1: output channels [m0, m1) x pixel panels [q0, q1). */
static void qc_tile(const octk_qconv *p, const qk_hdr *h, int64_t m0, int64_t m1, int64_t q0,
                    int64_t q1)
{
    const uint8_t *blob = (const uint8_t *)p->w;
    int64_t kp = h->kp, P = p->s.OH * p->s.OW;
    int u8s8 = h->path == OCTK_PATH_U8S8;
    int32_t corr_zero = p->x_zero + (p->x_signed ? 128 : 0);
    int32_t c[QK_MR][QK_NR];
    for (int64_t q = q0; q < q1; q++) {
        int64_t pix0 = q * QK_NR, nc = qk_min(QK_NR, P - pix0);
        for (int64_t m = m0; m < m1; m += QK_MR) {
            int mr = (int)qk_min(QK_MR, m1 - m);
            if (u8s8)
                qk_ukr_u8s8_mr(blob + QK_HDR + m * kp, kp,
                               (const uint8_t *)p->work + q * kp * QK_NR, kp / 4, mr, 0, c);
            else
                qk_ukr_s16_mr((const int16_t *)(blob + QK_HDR) + m * kp, kp,
                              (const int16_t *)p->work + q * kp * QK_NR, kp / 2, mr, c);
            for (int r = 0; r < mr; r++) {
                int32_t add = p->bias ? p->bias[m + r] : 0;
                if (u8s8) {
                    int32_t sm;
                    memcpy(&sm, blob + h->sums_off + 4 * (m + r), 4);
                    add = (int32_t)((uint32_t)add - (uint32_t)corr_zero * (uint32_t)sm);
                }
                uint8_t *yr = (uint8_t *)p->y + (m + r) * P + pix0;
#ifdef __AVX2__
                if (nc == QK_NR) {
                    qc_epilogue24(c[r], add, p->mult[m + r], p->y_zero, p->y_lo, p->y_hi,
                                  p->y_signed, yr);
                    continue;
                }
#endif
                qk_epilogue_row(c[r], nc, 0, NULL, add, p->mult + m + r, p->y_zero, p->y_lo,
                                p->y_hi, p->y_signed, yr);
            }
        }
    }
}

void octk_qconv_run(const octk_qconv *p, int phase, int64_t begin, int64_t end)
{
    qk_hdr h = qk_read_hdr(p->w);
    if (phase == 0) {
        int64_t np = qc_panels(&p->s);
        for (int64_t t = begin; t < end; t++)
            qc_im2col(p, &h, t * QC_PREP_PANELS, qk_min(np, (t + 1) * QC_PREP_PANELS));
        return;
    }
    int64_t mb, pb, np = qc_panels(&p->s);
    int fused = qc_grid(&p->s, &mb, &pb);
    int64_t npb = qk_div_up(np, pb);
    for (int64_t t = begin; t < end; t++) {
        int64_t mi = t / npb, pi = t % npb;
        if (fused)
            qc_im2col(p, &h, pi * pb, qk_min(np, (pi + 1) * pb));
        qc_tile(p, &h, mi * mb, qk_min(p->s.M, (mi + 1) * mb), pi * pb,
                qk_min(np, (pi + 1) * pb));
    }
}
