/*
 * qdwconv_u8.c: the u8 x s8 path of the quantized depthwise convolution
 * (qdwconv.c packs and dispatches).
 *
 * The packer (octk_qdwconv_pack_w) takes this path (OCTK_PATH_U8S8) only
 * for AVX-512 VNNI targets, when every w - w_zero is an int8, KW <= 8, the horizontal dilation is 1
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
#include "qdwconv.h"

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

void qd8_rows(const octk_qconv *p, int64_t c, int64_t oh0, int64_t oh1)
{
    /* instances for the common kernels (3x3, 5x5) and for any other */
    const octk_conv_shape *s = &p->s;
    int kh = s->KH == 3 && s->KW == 3 ? 3 : s->KH == 5 && s->KW == 5 ? 5 : 0;
    int wide = s->KW > 4;
    if (s->SW == 1) {
        if (kh == 3)
            qd8_rows_k(p, c, oh0, oh1, 1, 1, 3);
        else if (kh == 5)
            qd8_rows_k(p, c, oh0, oh1, 1, 2, 5);
        else if (wide)
            qd8_rows_k(p, c, oh0, oh1, 1, 2, 0);
        else
            qd8_rows_k(p, c, oh0, oh1, 1, 1, 0);
    } else {
        if (kh == 3)
            qd8_rows_k(p, c, oh0, oh1, 2, 1, 3);
        else if (kh == 5)
            qd8_rows_k(p, c, oh0, oh1, 2, 2, 5);
        else if (wide)
            qd8_rows_k(p, c, oh0, oh1, 2, 2, 0);
        else
            qd8_rows_k(p, c, oh0, oh1, 2, 1, 0);
    }
}
#else
/* Builds without VNNI never get u8 blobs from octet (the packer takes the
 * target's isa), but the blob stays runnable: the same sums in plain C. */
void qd8_rows(const octk_qconv *p, int64_t c, int64_t oh0, int64_t oh1)
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
