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
 * Phase 0 splits the padded input into phase planes (below; none for an
 * unpadded stride-1 convolution, which reads x).  Phase 1 (tasks of
 * QC_PREP_PANELS panels of QK_NR grid positions) interleaves runs of the
 * planes into the im2col panels in work: S16 as int16 pairs (x - x_zero, 0
 * in the padding), U8S8 as bytes xu = x (uint8) or x + 128 (int8) with
 * padding xu = x_zero [+128], so that
 *   sum (x - x_zero) * W = sum xu * W - (x_zero [+128]) * rowsum(W) (mod 2^32).
 * (x_zero must lie in the range of x's type, as ONNX requires.)
 * Phase 2 computes tiles of output channels x panels (qc_grid; when a tile
 * spans all channels it first builds its own panels, and phase 1 is empty)
 * with the 4 x 24 microkernels broadcasting weights against 8-position
 * vectors (U8S8 with VNNI: pairs of full panels as 8 channels x 48
 * positions with the positions in the lanes, qconv_vnni.c, other panels
 * 8 x 24 with two rows per 512-bit vector, qcommon.h; with AMX-INT8, where
 * the process may use tiles, TDPBSUD on blocks of 16 output channels,
 * qk_amx_sums), adds bias and correction with wrap-around, requantizes
 * rows and stores the positions that are pixels.
 */
#include "qconv.h"

/* Phase-2 tile grid: rows of mb output channels x groups of pb panels.
 * When one row block covers all M (fused), each phase-2 task builds its own
 * im2col panels (cache-hot) and phase 1 has no task; otherwise phase 1
 * builds all panels first.  Up to 256 channels stay in one block when that
 * still gives 8 tasks. */
static inline int qc_grid(const octk_conv_shape *s, int64_t np, int64_t *mb, int64_t *pb)
{
    if (s->M <= 256 && qk_div_up(np, 4) >= 8) {
        *mb = s->M;
        *pb = 4;
    } else {
        qk_tile_grid(s->M, np, mb, pb);
        if (*mb < 16 && s->M >= 16 && qk_amx_ready()) { /* AMX: 16 channels a tile */
            *mb = 16;
            *pb = 1;
        }
    }
    return *mb >= s->M;
}

/* phase 1 task: this many panels */
enum { QC_PREP_PANELS = 4, QC_PREP_PIX = QC_PREP_PANELS * QK_NR };
enum { QC_TAP_CACHE = 128 }; /* kernel taps whose offsets im2col tabulates */
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
    qc_geo g = qc_geometry(&p->s);
    int64_t K = qc_K(&p->s), cols = g.np * QK_NR;
    int64_t s16 = cols * qk_round_up(K, 2) * 2, u8 = cols * qk_round_up(K, 4);
    return (size_t)(qc_planes_size(&g) + qk_round_up(qk_max(s16, u8), 64));
}

int64_t octk_qconv_tasks(const octk_qconv *p, int phase)
{
    const octk_conv_shape *s = &p->s;
    if (s->M <= 0 || s->OH <= 0 || s->OW <= 0)
        return 0;
    qc_geo g = qc_geometry(s);
    int64_t mb, pb;
    int fused = qc_grid(s, g.np, &mb, &pb);
    switch (phase) {
    case 0: return g.direct ? 0 : s->C * s->SH * s->SW;
    case 1: return fused ? 0 : qk_div_up(g.np, QC_PREP_PANELS);
    case 2: return qk_div_up(s->M, mb) * qk_div_up(g.np, pb);
    default: return 0;
    }
}

/* Phase 0 tasks: planes [t0, t1) (plane t: channel t / (SH*SW), phase
 * t % (SH*SW)), raw input bytes and x_zero in the padding.  Every byte of
 * them is written. */
static void qc_planes(const octk_qconv *p, const qc_geo *g, int64_t t0, int64_t t1)
{
    const octk_conv_shape *s = &p->s;
    const uint8_t *x = (const uint8_t *)p->x;
    uint8_t z = (uint8_t)p->x_zero;
    int64_t G = g->G;
    for (int64_t t = t0; t < t1; t++) {
        int64_t c = t / (s->SH * s->SW), ph = t % (s->SH * s->SW) / s->SW,
                pw = t % s->SW;
        uint8_t *d = (uint8_t *)p->work + c * g->cstride + (ph * s->SW + pw) * g->Hq * G;
        /* columns j whose iw = j*SW + pw - PL lies in [0, W) */
        int64_t lo = s->PL - pw, hi = s->W - 1 + s->PL - pw;
        int64_t j0 = lo <= 0 ? 0 : qk_div_up(lo, s->SW);
        int64_t j1 = hi < 0 ? 0 : hi / s->SW + 1;
        j1 = qk_min(j1, G);
        j0 = qk_min(j0, j1);
        for (int64_t i = 0; i < g->Hq; i++, d += G) {
            int64_t ih = i * s->SH + ph - s->PT;
            if (ih < 0 || ih >= s->H) {
                memset(d, z, (size_t)G);
                continue;
            }
            const uint8_t *src = x + (c * s->H + ih) * s->W + j0 * s->SW + pw - s->PL;
            memset(d, z, (size_t)j0);
            if (s->SW == 1)
                memcpy(d + j0, src, (size_t)(j1 - j0));
            else if (s->SW == 2)
                qk_gather2(d + j0, src, j1 - j0);
            else
                for (int64_t j = j0; j < j1; j++)
                    d[j] = src[(j - j0) * s->SW];
            memset(d + j1, z, (size_t)(G - j1));
        }
    }
}

/* ---- im2col -------------------------------------------------------------
 * 4 (U8S8) or 2 (S16) im2col rows are interleaved into the panels,
 * converting on the way: U8S8 stores xu = raw ^ 0x80 for int8 x (= x + 128)
 * and raw for uint8, S16 stores x - x_zero.  So padding is x_zero [+128]
 * (U8S8) or 0 (S16), which both mean x == x_zero; rows k >= K meet weight
 * 0 and repeat row K-1. */

/* The n bytes of the run at offset a of the planes (src, len bytes): a
 * pointer into them, or, for the last panels, what the planes hold copied
 * into t with x_zero after their end (only grid positions past the last
 * pixel read there). */
static inline const uint8_t *qc_run(const uint8_t *src, int64_t len, int64_t a, int64_t n,
                                    uint8_t z, uint8_t *t)
{
    if (a + n <= len)
        return src + a;
    int64_t have = qk_max(0, len - a);
    memcpy(t, src + a, (size_t)have);
    memset(t + have, z, (size_t)(n - have));
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

/* im2col panels [q0, q1) (at most QC_PREP_PANELS), k by k: each k group's
 * rows are runs of the planes over the panels' grid positions. */
static void qc_im2col(const octk_qconv *p, const qk_hdr *h, const qc_geo *g, int64_t q0,
                      int64_t q1)
{
    const octk_conv_shape *s = &p->s;
    int u8s8 = h->path == OCTK_PATH_U8S8;
    int kstep = u8s8 ? 4 : 2;
    int64_t kp = h->kp, K = qc_K(s), v0 = q0 * QK_NR, n = (q1 - q0) * QK_NR;
    const uint8_t *src = g->direct ? (const uint8_t *)p->x : (const uint8_t *)p->work;
    uint8_t *panels = qc_panels_base(p, g);
    uint8_t t[4][QC_PREP_PIX];
    const uint8_t *r[4] = {NULL, NULL, NULL, NULL};
    uint8_t flip = p->x_signed ? 0x80 : 0, z = (uint8_t)p->x_zero;
    /* the taps' offsets (two divisions each), once per call for the usual
     * kernel sizes rather than once per k */
    int64_t tap_off[QC_TAP_CACHE];
    int cached = s->KH * s->KW <= QC_TAP_CACHE;
    for (int64_t i = 0; cached && i < s->KH * s->KW; i++)
        tap_off[i] = qc_tap(s, g, i / s->KW, i % s->KW);
    int64_t c = 0, kh = 0, kw = 0; /* k = (c*KH + kh)*KW + kw, counted along */
    for (int64_t k = 0; k < kp; k += kstep) {
        for (int i = 0; i < kstep; i++) {
            if (k + i >= K) {
                r[i] = r[i - 1];
                continue;
            }
            int64_t tap = cached ? tap_off[kh * s->KW + kw] : qc_tap(s, g, kh, kw);
            r[i] = qc_run(src, g->src_len, c * g->cstride + tap + v0, n, z, t[i]);
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
                qc_interleave4(panels + (q * kp + k) * QK_NR, r[0] + o, r[1] + o, r[2] + o,
                               r[3] + o, flip);
            else
                qc_interleave2((int16_t *)panels + (q * kp + k) * QK_NR, r[0] + o, r[1] + o,
                               p->x_signed, p->x_zero);
        }
    }
}

#ifdef __AVX2__
/* A full row of a tile: bytes j < QK_NR of the result are y[j] =
 * clamp(rint((float)wrap(c[j] + add) * mult) + y_zero, y_lo, y_hi), the
 * bytes qk_epilogue_row stores.
 * Done in int16 with saturation after the rounding: a saturated value v
 * (|v| >= 32767) plus y_zero (|y_zero| <= 255) still lies beyond the 8-bit
 * range on the same side as the exact sum, so the clamp gives the same
 * result; values inside int16 are exact. */
#if QK_MASKED_STORE
/* With AVX-512: clamp the product in float to [y_lo - y_zero, y_hi -
 * y_zero] (integers, so rounding after the clamp equals clamping after
 * it; maxps gives the bound for NaN, as qk_requant1's -2^20 does), round,
 * add y_zero and truncate to bytes (vpmovdb): 16 + 8 lanes. */
static inline __m256i qc_epilogue24(const int32_t *c, int32_t add, float mult, int32_t y_zero,
                                    int32_t y_lo, int32_t y_hi, int y_signed)
{
    (void)y_signed;
    const float lo = (float)(y_lo - y_zero), hi = (float)(y_hi - y_zero);
    __m512 a = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_loadu_si512(c), _mm512_set1_epi32(add)));
    a = _mm512_mul_ps(a, _mm512_set1_ps(mult));
    a = _mm512_min_ps(_mm512_max_ps(a, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
    __m128i ba = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(a), _mm512_set1_epi32(y_zero)));
    __m256 b = _mm256_cvtepi32_ps(
        _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(c + 16)), _mm256_set1_epi32(add)));
    b = _mm256_mul_ps(b, _mm256_set1_ps(mult));
    b = _mm256_min_ps(_mm256_max_ps(b, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
    __m128i bb = _mm256_cvtepi32_epi8(_mm256_add_epi32(_mm256_cvtps_epi32(b), _mm256_set1_epi32(y_zero)));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(ba), bb, 1);
}
#else
/* 8 products (float)acc * mult rounded to int32, for the requantization of
 * qk_requant1: min(2^20, v) first (NaN stays NaN), then cvtps2dq, which
 * gives INT_MIN for NaN and for v < -2^31 (results below y_lo either way,
 * as the -2^20 clamp of qk_requant1 gives). */
static inline __m256i qc_round8(__m256i acc, __m256 m)
{
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), m);
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_set1_ps(0x1p20f), f));
}

static inline __m256i qc_epilogue24(const int32_t *c, int32_t add, float mult, int32_t y_zero,
                                    int32_t y_lo, int32_t y_hi, int y_signed)
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
    return _mm256_inserti128_si256(_mm256_castsi128_si256(b16), b8, 1);
}
#endif
#endif

/* d[i] = s[i] for i < n <= QK_NR, in at most two overlapping moves. */
static inline void qc_copy_short(uint8_t *d, const uint8_t *s, int n)
{
    if (n >= 16) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        for (int i = 0; i < n; i++)
            d[i] = s[i];
    }
}

#if QK_MASKED_STORE
/* The first 8 columns of a QK_MR_U8 x 24 tile, for a last panel of at most
 * 8 pixels (a 13 x 13 output ends with one): a third of the products. */
static inline __attribute__((always_inline)) void
qc_ukr_tail8(const uint8_t *a, int64_t lda, const uint8_t *b, int64_t kquads, int mr,
             int32_t (*c)[QK_NR])
{
    __m512i acc[QK_MR_U8 / 2];
    for (int p = 0; p < QK_MR_U8 / 2; p++)
        acc[p] = _mm512_setzero_si512();
    for (int64_t kq = 0; kq < kquads; kq++) {
        const __m512i bv =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 96 * kq)));
        for (int p = 0; p < QK_MR_U8 / 2; p++) {
            if (2 * p >= mr)
                break;
            const uint8_t *ar = a + 2 * p * lda + 4 * kq;
            const __m512i av = 2 * p + 1 < mr ? qk_bcast_pair(ar, ar + lda) : qk_bcast_pair(ar, ar);
            acc[p] = _mm512_dpbusd_epi32(acc[p], bv, av);
        }
    }
    for (int p = 0; p < QK_MR_U8 / 2 && 2 * p < mr; p++) {
        _mm256_storeu_si256((__m256i *)&c[2 * p][0], _mm512_castsi512_si256(acc[p]));
        if (2 * p + 1 < mr)
            _mm256_storeu_si256((__m256i *)&c[2 * p + 1][0], _mm512_extracti64x4_epi64(acc[p], 1));
    }
}

#endif

#if QK_MASKED_STORE
/* Rows [m, m + mr) of one full panel b with the requantizing epilogue on the
 * accumulators themselves, two rows per 512-bit vector (the arithmetic of
 * qc_epilogue24, lane by lane: the same bytes): out[r] holds row r's 24
 * bytes.  A short reduction (squeezenet's 1x1 layers) spent about half of
 * its time storing sums and requantizing them from memory 8 lanes at a
 * time. */
static inline __attribute__((always_inline)) void
qc_ukr_fused(const octk_qconv *p, const uint8_t *a, int64_t lda, const uint8_t *b,
             int64_t kquads, int mr, const int32_t *add, const float *mult, __m256i *out)
{
    __m512i acc[QK_MR_U8 / 2][3];
    qk_sums_u8s8_pairs(a, lda, b, kquads, mr, 0, acc);
    const __m512 lo = _mm512_set1_ps((float)(p->y_lo - p->y_zero));
    const __m512 hi = _mm512_set1_ps((float)(p->y_hi - p->y_zero));
    const __m512i yz = _mm512_set1_epi32(p->y_zero);
    for (int pr = 0; pr < QK_MR_U8 / 2 && 2 * pr < mr; pr++) {
        const int r1 = 2 * pr + 1 < mr ? 2 * pr + 1 : 2 * pr;
        const __m512i av = _mm512_mask_set1_epi32(_mm512_set1_epi32(add[2 * pr]), 0xFF00, add[r1]);
        const __m512 mv = _mm512_mask_mov_ps(_mm512_set1_ps(mult[2 * pr]), 0xFF00,
                                             _mm512_set1_ps(mult[r1]));
        __m128i x[3];
        for (int j = 0; j < 3; j++) {
            __m512 f = _mm512_cvtepi32_ps(_mm512_add_epi32(acc[pr][j], av));
            f = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(f, mv), lo), hi);
            x[j] = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), yz));
        }
        /* x[j]: bytes 0-7 row 2pr, 8-15 row 2pr + 1, of columns 8j..8j+7 */
        out[2 * pr] = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_unpacklo_epi64(x[0], x[1])), x[2], 1);
        if (2 * pr + 1 < mr)
            out[2 * pr + 1] = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_unpackhi_epi64(x[0], x[1])),
                _mm_unpackhi_epi64(x[2], x[2]), 1);
    }
}

static void qc_ukr_fused_mr(const octk_qconv *p, const uint8_t *a, int64_t lda,
                            const uint8_t *b, int64_t kquads, int mr, const int32_t *add,
                            const float *mult, __m256i *out)
{
    switch (mr) {
    case 8: qc_ukr_fused(p, a, lda, b, kquads, 8, add, mult, out); break;
    case 7: qc_ukr_fused(p, a, lda, b, kquads, 7, add, mult, out); break;
    case 6: qc_ukr_fused(p, a, lda, b, kquads, 6, add, mult, out); break;
    case 5: qc_ukr_fused(p, a, lda, b, kquads, 5, add, mult, out); break;
    case 4: qc_ukr_fused(p, a, lda, b, kquads, 4, add, mult, out); break;
    case 3: qc_ukr_fused(p, a, lda, b, kquads, 3, add, mult, out); break;
    case 2: qc_ukr_fused(p, a, lda, b, kquads, 2, add, mult, out); break;
    default: qc_ukr_fused(p, a, lda, b, kquads, 1, add, mult, out); break;
    }
}
#endif

/* The positions of a panel that are pixels: all (direct: the grid has no
 * skipped columns) or nseg runs, seg_len[i] positions from seg_src[i] of
 * the panel to seg_dst[i] of an output row. */
typedef struct qc_pixels {
    int64_t v0, nc;
    int direct, nseg;
    int seg_src[QK_NR], seg_len[QK_NR];
    int64_t seg_dst[QK_NR];
} qc_pixels;

/* Requantizes the sums c (overwritten) of rows [m, m + mr) (x the panel's
 * nc positions) and stores the pixels. */
static void qc_store_rows(const octk_qconv *p, const qk_hdr *h, int u8s8, int64_t m, int mr,
                          int32_t (*c)[QK_NR], const qc_pixels *px)
{
    const int64_t P = p->s.OH * p->s.OW, v0 = px->v0, nc = px->nc;
    const int direct = px->direct, nseg = px->nseg;
    const int *seg_src = px->seg_src, *seg_len = px->seg_len;
    const int64_t *seg_dst = px->seg_dst;
    uint8_t row[32];
    for (int r = 0; r < mr; r++) {
        int32_t add = qc_row_add(p, h, u8s8, m + r);
        uint8_t *yr = (uint8_t *)p->y + (m + r) * P;
        uint8_t *dst = direct ? yr + v0 : row;
#ifdef __AVX2__
        if (nc == QK_NR) {
            __m256i b = qc_epilogue24(c[r], add, p->mult[m + r], p->y_zero, p->y_lo, p->y_hi,
                                      p->y_signed);
#if QK_MASKED_STORE
            /* each run straight from the register: masked-off bytes are
             * neither written nor accessed */
            if (direct)
                _mm256_mask_storeu_epi8(dst, 0xFFFFFFu, b);
            for (int i = 0; i < nseg; i++)
                _mm256_mask_storeu_epi8(yr + seg_dst[i] - seg_src[i],
                                        ((1u << seg_len[i]) - 1) << seg_src[i], b);
            continue;
#else
            if (direct) {
                _mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(b));
                _mm_storel_epi64((__m128i *)(dst + 16), _mm256_extracti128_si256(b, 1));
                continue;
            }
            /* one store, so that the copies below load from it whole
             * (store forwarding) */
            _mm256_storeu_si256((__m256i *)row, b);
#endif
        } else
#endif
            qk_epilogue_row(c[r], nc, 0, NULL, add, p->mult + m + r, p->y_zero, p->y_lo,
                            p->y_hi, p->y_signed, dst);
        for (int i = 0; i < nseg; i++)
            qc_copy_short(yr + seg_dst[i], row + seg_src[i], seg_len[i]);
    }
}

/* Phase 2: output channels [m0, m1) x pixel panels [q0, q1). */
static void qc_tile(const octk_qconv *p, const qk_hdr *h, const qc_geo *g, int64_t m0,
                    int64_t m1, int64_t q0, int64_t q1)
{
    const uint8_t *blob = (const uint8_t *)p->w;
    const uint8_t *panels = qc_panels_base(p, g);
    int64_t kp = h->kp;
    int u8s8 = h->path == OCTK_PATH_U8S8;
    /* AMX tiles (where the process may use them) sum whole blocks of 16
     * output channels, rows [m0, mt); the rest take the vector kernels */
    const int amx = u8s8 && qk_amx_ready();
    const int64_t mt = amx ? m0 + (m1 - m0) / 16 * 16 : m0;
    int32_t c[QK_MR_MAX][QK_NR];
    qc_pixels pix;
#if QK_AMX
    int32_t ct[32][QK_NR];
    if (amx)
        qk_amx_begin();
#endif
    for (int64_t q = q0; q < q1; q++) {
        int64_t v0 = q * QK_NR, nc = qk_min(QK_NR, g->nv - v0);
#if QK_MASKED_STORE
        if (!amx && u8s8 && q + 1 < q1 && v0 + QC_PAIR <= g->nv) {
            qc_tile_pair(p, h, g, m0, m1, q);
            q++;
            continue;
        }
#endif
        /* on a grid without skipped columns, positions are pixels; else the
         * runs that are (none: the panel is all skipped columns) */
        pix.v0 = v0;
        pix.nc = nc;
        pix.direct = g->G == p->s.OW;
        pix.nseg = pix.direct ? 0
                              : qc_segments(&p->s, g, v0, nc, pix.seg_src, pix.seg_len,
                                            pix.seg_dst);
        if (!pix.direct && pix.nseg == 0)
            continue;
#if QK_AMX
        for (int64_t m = m0; m < mt; m += 32) {
            int mr = (int)qk_min(32, mt - m);
            qk_amx_sums(blob + QK_HDR + m * kp, kp, 1, panels + q * kp * QK_NR, kp, mr, ct);
            qc_store_rows(p, h, 1, m, mr, ct, &pix);
        }
#endif
        int64_t mstep = u8s8 ? QK_MR_U8 : QK_MR;
        for (int64_t m = mt; m < m1; m += mstep) {
            int mr = (int)qk_min(mstep, m1 - m);
#if QK_MASKED_STORE
            if (u8s8 && nc == QK_NR) {
                const int64_t P = p->s.OH * p->s.OW;
                int32_t add[QK_MR_U8];
                __m256i out[QK_MR_U8];
                for (int r = 0; r < mr; r++)
                    add[r] = qc_row_add(p, h, 1, m + r);
                qc_ukr_fused_mr(p, blob + QK_HDR + m * kp, kp, panels + q * kp * QK_NR, kp / 4,
                                mr, add, p->mult + m, out);
                for (int r = 0; r < mr; r++) {
                    /* each run straight from the register: masked-off
                     * bytes are neither written nor accessed */
                    uint8_t *yr = (uint8_t *)p->y + (m + r) * P;
                    if (pix.direct)
                        _mm256_mask_storeu_epi8(yr + v0, 0xFFFFFFu, out[r]);
                    for (int i = 0; i < pix.nseg; i++)
                        _mm256_mask_storeu_epi8(yr + pix.seg_dst[i] - pix.seg_src[i],
                                                ((1u << pix.seg_len[i]) - 1) << pix.seg_src[i],
                                                out[r]);
                }
                continue;
            }
            if (u8s8 && nc <= 8) {
                const uint8_t *a = blob + QK_HDR + m * kp, *b = panels + q * kp * QK_NR;
                switch (mr) {
                case 8: qc_ukr_tail8(a, kp, b, kp / 4, 8, c); break;
                case 7: qc_ukr_tail8(a, kp, b, kp / 4, 7, c); break;
                case 6: qc_ukr_tail8(a, kp, b, kp / 4, 6, c); break;
                case 5: qc_ukr_tail8(a, kp, b, kp / 4, 5, c); break;
                case 4: qc_ukr_tail8(a, kp, b, kp / 4, 4, c); break;
                case 3: qc_ukr_tail8(a, kp, b, kp / 4, 3, c); break;
                case 2: qc_ukr_tail8(a, kp, b, kp / 4, 2, c); break;
                default: qc_ukr_tail8(a, kp, b, kp / 4, 1, c); break;
                }
            } else
#endif
            if (u8s8)
                qk_ukr_u8s8_mr(blob + QK_HDR + m * kp, kp, panels + q * kp * QK_NR, kp / 4, mr, 0,
                               c);
            else
                qk_ukr_s16_mr((const int16_t *)(blob + QK_HDR) + m * kp, kp,
                              (const int16_t *)panels + q * kp * QK_NR, kp / 2, mr, c);
            qc_store_rows(p, h, u8s8, m, mr, c, &pix);
        }
    }
#if QK_AMX
    if (amx)
        qk_amx_end();
#endif
}

void octk_qconv_run(const octk_qconv *p, int phase, int64_t begin, int64_t end)
{
    qk_hdr h = qk_read_hdr(p->w);
    qc_geo g = qc_geometry(&p->s);
    if (phase == 0) {
        qc_planes(p, &g, begin, end);
        return;
    }
    if (phase == 1) {
        for (int64_t t = begin; t < end; t++)
            qc_im2col(p, &h, &g, t * QC_PREP_PANELS, qk_min(g.np, (t + 1) * QC_PREP_PANELS));
        return;
    }
    if (phase != 2)
        return;
    int64_t mb, pb;
    int fused = qc_grid(&p->s, g.np, &mb, &pb);
    int64_t npb = qk_div_up(g.np, pb);
    for (int64_t t = begin; t < end; t++) {
        int64_t mi = t / npb, pi = t % npb;
        int64_t q0 = pi * pb, q1 = qk_min(g.np, (pi + 1) * pb);
        if (fused)
            qc_im2col(p, &h, &g, q0, q1);
        qc_tile(p, &h, &g, mi * mb, qk_min(p->s.M, (mi + 1) * mb), q0, q1);
    }
}
