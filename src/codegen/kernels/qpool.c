/*
 * qpool.c: MaxPool on 8-bit tensors (qdq_fuse leaves MaxPool on the
 * quantized bytes: max commutes with the monotone dequantization).
 *
 * Output row oh of a plane is the maximum over the taps (kh, kw) whose
 * input position (oh*SH - PT + kh*DH, ow*SW - PL + kw*DW) lies in the
 * image, and the type's minimum if none does (padding never wins, as in
 * the reference).  Per output row:
 *   1. v = the maximum over the kernel rows inside the image (whole rows);
 *   2. v is split into SW phase rows P_r[j] = v[j*SW + r] with margins of
 *      the type's minimum on both sides (qp_geo), so that tap kw, with
 *      kw*DW - PL = q*SW + r, reads P_r[ow + q] for every ow: no bounds;
 *   3. y[ow] = max over kw of P_r[ow + q], in vectors of 32 outputs.
 * Vector blocks keep fixed offsets where a buffer is written and read back
 * (store forwarding); the last block of an output row overlaps the one
 * before instead of running a scalar tail.  The 3x3 window at stride 2
 * (CNN stems, squeezenet) skips step 2: qp_rows_3s2 takes the outputs
 * straight from v with byte shifts (2.5x faster on squeezenet's pools).
 */
#include "qcommon.h"

/* a task: this many output rows of one plane (all of them for C >= 8) */
static inline int64_t qp_rows_per_task(const octk_conv_shape *s)
{
    if (s->C >= 8)
        return s->OH;
    int64_t blocks = qk_min(s->OH, qk_div_up(8, qk_max(s->C, 1)));
    return qk_div_up(s->OH, blocks);
}

/* Taps and phase rows of a row of v. */
typedef struct qp_geo {
    int64_t len[OCTK_POOL_MAX_SW];   /* columns of phase row r: j*SW + r < W */
    int64_t q[OCTK_POOL_MAX_K], r[OCTK_POOL_MAX_K];
    int64_t ml, ls;                  /* left margin, stride of the phase rows */
} qp_geo;

static inline void qp_geometry(const octk_conv_shape *s, qp_geo *g)
{
    for (int64_t i = 0; i < s->SW; i++)
        g->len[i] = i < s->W ? (s->W - i + s->SW - 1) / s->SW : 0;
    int64_t ml = 0, mr = 0;
    for (int64_t kw = 0; kw < s->KW; kw++) {
        int64_t d = kw * s->DW - s->PL;
        int64_t q = d >= 0 ? d / s->SW : -qk_div_up(-d, s->SW), r = d - q * s->SW;
        g->q[kw] = q;
        g->r[kw] = r;
        ml = qk_max(ml, -q);
        mr = qk_max(mr, s->OW + q - g->len[r]);
    }
    g->ml = ml;
    g->ls = ml + g->len[0] + mr;
}

/* Whether the 3x3 window at stride 2 path runs the shape (qp_rows_3s2):
 * unit dilations, a left pad of 0 or 1, rows of 16 bytes or more, 8
 * outputs or more, and windows that end within 64 bytes past the row. */
static inline int qp_fast3s2(const octk_conv_shape *s)
{
#ifdef __AVX2__
    return s->KH == 3 && s->KW == 3 && s->SH == 2 && s->SW == 2 && s->DH == 1 && s->DW == 1 &&
           (s->PL == 0 || s->PL == 1) && s->W >= 16 && s->OW >= 8 &&
           2 * s->OW + 1 - s->PL < s->W + 64;
#else
    (void)s;
    return 0;
#endif
}

/* bytes of work one task needs: v, then the SW phase rows (the 3x3 stride
 * 2 path: v between margins of 64 bytes) */
static inline int64_t qp_task_work(const octk_conv_shape *s, const qp_geo *g)
{
    if (qp_fast3s2(s))
        return qk_round_up(s->W, 64) + 128;
    return qk_round_up(s->W, 64) + qk_round_up(s->SW * g->ls, 64);
}

int64_t octk_maxpool8_tasks(const octk_maxpool8 *p, int phase)
{
    const octk_conv_shape *s = &p->s;
    if (phase != 1 || s->C <= 0 || s->OH <= 0 || s->OW <= 0 || s->W <= 0)
        return 0;
    if (p->nhwc)
        return s->OH;
    if (s->SW > OCTK_POOL_MAX_SW || s->KW > OCTK_POOL_MAX_K)
        return 0;
    return s->C * qk_div_up(s->OH, qp_rows_per_task(s));
}

size_t octk_maxpool8_work_size(const octk_maxpool8 *p)
{
    qp_geo g;
    if (p->nhwc || octk_maxpool8_tasks(p, 1) == 0)
        return 0;
    qp_geometry(&p->s, &g);
    return (size_t)(octk_maxpool8_tasks(p, 1) * qp_task_work(&p->s, &g));
}

static inline uint8_t qp_max1(uint8_t a, uint8_t b, int sgn)
{
    if (sgn)
        return (int8_t)a > (int8_t)b ? a : b;
    return a > b ? a : b;
}

#ifdef __AVX2__
static inline __m256i qp_max32(__m256i a, __m256i b, int sgn)
{
    return sgn ? _mm256_max_epi8(a, b) : _mm256_max_epu8(a, b);
}

static inline __m128i qp_max16(__m128i a, __m128i b, int sgn)
{
    return sgn ? _mm_max_epi8(a, b) : _mm_max_epu8(a, b);
}
#endif

/* v[i] = row[i] (first) or max(v[i], row[i]) for i < n, in blocks at the
 * same offsets every call. */
static inline void qp_vmax(uint8_t *v, const uint8_t *row, int64_t n, int first, int sgn)
{
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 32 <= n; i += 32) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(row + i));
        if (!first)
            b = qp_max32(b, _mm256_loadu_si256((const __m256i *)(v + i)), sgn);
        _mm256_storeu_si256((__m256i *)(v + i), b);
    }
    for (; i + 8 <= n; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(row + i));
        if (!first)
            b = qp_max16(b, _mm_loadl_epi64((const __m128i *)(v + i)), sgn);
        _mm_storel_epi64((__m128i *)(v + i), b);
    }
#endif
    for (; i < n; i++)
        v[i] = first ? row[i] : qp_max1(v[i], row[i], sgn);
}

/* y[ow] = max over the taps k of src[k][ow], ow < n; every src[k] is
 * readable over [0, n). */
static inline void qp_taps(uint8_t *y, const uint8_t *const *src, int64_t taps, int64_t n,
                           int sgn)
{
#ifdef __AVX2__
    if (n >= 32) {
        for (int64_t b = 0;; b += 32) {
            b = b + 32 > n ? n - 32 : b;
            __m256i acc = _mm256_loadu_si256((const __m256i *)(src[0] + b));
            for (int64_t k = 1; k < taps; k++)
                acc = qp_max32(acc, _mm256_loadu_si256((const __m256i *)(src[k] + b)), sgn);
            _mm256_storeu_si256((__m256i *)(y + b), acc);
            if (b + 32 >= n)
                return;
        }
    }
    if (n >= 16) {
        for (int64_t b = 0;; b += 16) {
            b = b + 16 > n ? n - 16 : b;
            __m128i acc = _mm_loadu_si128((const __m128i *)(src[0] + b));
            for (int64_t k = 1; k < taps; k++)
                acc = qp_max16(acc, _mm_loadu_si128((const __m128i *)(src[k] + b)), sgn);
            _mm_storeu_si128((__m128i *)(y + b), acc);
            if (b + 16 >= n)
                return;
        }
    }
    if (n >= 8) {
        for (int64_t b = 0;; b = n - 8) {
            __m128i acc = _mm_loadl_epi64((const __m128i *)(src[0] + b));
            for (int64_t k = 1; k < taps; k++)
                acc = qp_max16(acc, _mm_loadl_epi64((const __m128i *)(src[k] + b)), sgn);
            _mm_storel_epi64((__m128i *)(y + b), acc);
            if (b + 8 >= n)
                return;
        }
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        uint8_t m = src[0][i];
        for (int64_t k = 1; k < taps; k++)
            m = qp_max1(m, src[k][i], sgn);
        y[i] = m;
    }
}

#ifdef __AVX2__
/* Bytes [j, j + 32) of the maximum of rows r[0..n) (wide), or [j, j + 16). */
static inline __attribute__((always_inline)) void qp_vmax_block(uint8_t *v, const uint8_t *const *r,
                                                                int n, int64_t j, int sgn,
                                                                const int wide)
{
    if (wide) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(r[0] + j));
        for (int i = 1; i < n; i++)
            m = qp_max32(m, _mm256_loadu_si256((const __m256i *)(r[i] + j)), sgn);
        _mm256_storeu_si256((__m256i *)(v + j), m);
    } else {
        __m128i m = _mm_loadu_si128((const __m128i *)(r[0] + j));
        for (int i = 1; i < n; i++)
            m = qp_max16(m, _mm_loadu_si128((const __m128i *)(r[i] + j)), sgn);
        _mm_storeu_si128((__m128i *)(v + j), m);
    }
}

/* Outputs [ow, ow + 16) (wide) or [ow, ow + 8) of a row from v: a = the
 * bytes at v + 2ow - PL, b = those 2 further on; the low byte of each
 * 16-bit lane of max(a, b, a >> 8) is max(v[2i], v[2i+2], v[2i+1]) for
 * output i, packed down to bytes. */
static inline __attribute__((always_inline)) void qp_hmax_block(uint8_t *yr, const uint8_t *q,
                                                                int sgn, const int wide)
{
    if (wide) {
        __m256i a = _mm256_loadu_si256((const __m256i *)q);
        __m256i b = _mm256_loadu_si256((const __m256i *)(q + 2));
        __m256i m = qp_max32(qp_max32(a, b, sgn), _mm256_srli_epi16(a, 8), sgn);
        m = _mm256_packus_epi16(_mm256_and_si256(m, _mm256_set1_epi16(0x00ff)), m);
        m = _mm256_permute4x64_epi64(m, 0x08);
        _mm_storeu_si128((__m128i *)yr, _mm256_castsi256_si128(m));
    } else {
        __m128i a = _mm_loadu_si128((const __m128i *)q);
        __m128i b = _mm_loadu_si128((const __m128i *)(q + 2));
        __m128i m = qp_max16(qp_max16(a, b, sgn), _mm_srli_epi16(a, 8), sgn);
        m = _mm_packus_epi16(_mm_and_si128(m, _mm_set1_epi16(0x00ff)), m);
        _mm_storel_epi64((__m128i *)yr, m);
    }
}

/* qp_rows for the 3x3 window at stride 2 (qp_fast3s2), the pooling of most
 * CNN stems and of squeezenet: v = the maximum of the row's input rows,
 * between margins of the type's minimum (the padding, which never wins),
 * then the outputs from v (qp_hmax_block), in vectors of 32 (wide: rows of
 * 32 bytes and 16 outputs or more) or 16 bytes.  Both loops end with a
 * block overlapping the one before. */
static inline __attribute__((always_inline)) void
qp_rows_3s2_k(const octk_maxpool8 *p, int64_t c, int64_t oh0, int64_t oh1, uint8_t *t,
              const int wide)
{
    const octk_conv_shape *s = &p->s;
    const uint8_t *x = (const uint8_t *)p->x + c * s->H * s->W;
    uint8_t *y = (uint8_t *)p->y + c * s->OH * s->OW;
    const int sgn = p->x_signed != 0;
    const uint8_t lowest = sgn ? 0x80 : 0;
    const int64_t W = s->W, OW = s->OW, vb = wide ? 32 : 16, ob = wide ? 16 : 8;
    uint8_t *v = t + 64;
    memset(t, lowest, 64);
    memset(v + W, lowest, 64);
    for (int64_t oh = oh0; oh < oh1; oh++) {
        const uint8_t *r[3];
        int n = 0;
        for (int64_t kh = 0; kh < 3; kh++) {
            int64_t ih = oh * 2 - s->PT + kh;
            if (ih >= 0 && ih < s->H)
                r[n++] = x + ih * W;
        }
        uint8_t *yr = y + oh * OW;
        if (n == 0) {
            memset(yr, lowest, (size_t)OW);
            continue;
        }
        for (int64_t j = 0;; j += vb) {
            j = j + vb > W ? W - vb : j;
            qp_vmax_block(v, r, n, j, sgn, wide);
            if (j + vb >= W)
                break;
        }
        for (int64_t ow = 0;; ow += ob) {
            ow = ow + ob > OW ? OW - ob : ow;
            qp_hmax_block(yr + ow, v + 2 * ow - s->PL, sgn, wide);
            if (ow + ob >= OW)
                break;
        }
    }
}

static void qp_rows_3s2(const octk_maxpool8 *p, int64_t c, int64_t oh0, int64_t oh1, uint8_t *t)
{
    if (p->s.W >= 32 && p->s.OW >= 16)
        qp_rows_3s2_k(p, c, oh0, oh1, t, 1);
    else
        qp_rows_3s2_k(p, c, oh0, oh1, t, 0);
}
#endif

/* Output rows [oh0, oh1) of plane c; t: qp_task_work bytes. */
static void qp_rows(const octk_maxpool8 *p, const qp_geo *g, int64_t c, int64_t oh0,
                    int64_t oh1, uint8_t *t)
{
    const octk_conv_shape *s = &p->s;
    const uint8_t *x = (const uint8_t *)p->x + c * s->H * s->W;
    uint8_t *y = (uint8_t *)p->y + c * s->OH * s->OW;
    int sgn = p->x_signed != 0;
    uint8_t lowest = sgn ? 0x80 : 0;
    uint8_t *ph = t + qk_round_up(s->W, 64);
    /* stride 1: v is phase row 0 itself */
    uint8_t *v = s->SW == 1 ? ph + g->ml : t;
    const uint8_t *src[OCTK_POOL_MAX_K];
    for (int64_t kw = 0; kw < s->KW; kw++)
        src[kw] = ph + g->r[kw] * g->ls + g->ml + g->q[kw];
    /* margins (and phase rows shorter than the first) stay the minimum */
    memset(ph, lowest, (size_t)(s->SW * g->ls));
    for (int64_t oh = oh0; oh < oh1; oh++) {
        uint8_t *yr = y + oh * s->OW;
        int rows = 0;
        for (int64_t kh = 0; kh < s->KH; kh++) {
            int64_t ih = oh * s->SH - s->PT + kh * s->DH;
            if (ih >= 0 && ih < s->H)
                qp_vmax(v, x + ih * s->W, s->W, rows++ == 0, sgn);
        }
        if (rows == 0) {
            memset(yr, lowest, (size_t)s->OW);
            continue;
        }
        if (s->SW == 2) {
            qk_gather2(ph + g->ml, v, g->len[0]);
            qk_gather2(ph + g->ls + g->ml, v + 1, g->len[1]);
        } else if (s->SW > 2) {
            for (int64_t i = 0; i < s->SW; i++)
                for (int64_t j = 0; j < g->len[i]; j++)
                    ph[i * g->ls + g->ml + j] = v[j * s->SW + i];
        }
        qp_taps(yr, src, s->KW, s->OW, sgn);
    }
}

/* Output row oh of an NHWC image: each output pixel is the byte-wise
 * maximum of the C-byte pixels its window holds inside the image, starting
 * from the type's minimum (signed bytes compare with their top bit
 * flipped). */
static void qp_row_nhwc(const octk_maxpool8 *p, int64_t oh)
{
    const octk_conv_shape *s = &p->s;
    const int64_t C = s->C;
    const uint8_t flip = p->x_signed ? 0x80 : 0;
    const uint8_t *x = (const uint8_t *)p->x;
    uint8_t *y = (uint8_t *)p->y + oh * s->OW * C;
    for (int64_t ow = 0; ow < s->OW; ow++, y += C) {
        for (int64_t c = 0; c < C; c++)
            y[c] = 0;
        for (int64_t kh = 0; kh < s->KH; kh++) {
            int64_t ih = oh * s->SH - s->PT + kh * s->DH;
            if (ih < 0 || ih >= s->H)
                continue;
            for (int64_t kw = 0; kw < s->KW; kw++) {
                int64_t iw = ow * s->SW - s->PL + kw * s->DW;
                if (iw < 0 || iw >= s->W)
                    continue;
                const uint8_t *xp = x + (ih * s->W + iw) * C;
                for (int64_t c = 0; c < C; c++) {
                    uint8_t v = xp[c] ^ flip;
                    y[c] = v > y[c] ? v : y[c];
                }
            }
        }
        for (int64_t c = 0; c < C; c++)
            y[c] ^= flip;
    }
}

void octk_maxpool8_run(const octk_maxpool8 *p, int phase, int64_t begin, int64_t end)
{
    const octk_conv_shape *s = &p->s;
    if (phase != 1 || begin >= end)
        return;
    if (p->nhwc) {
        for (int64_t oh = begin; oh < end; oh++)
            qp_row_nhwc(p, oh);
        return;
    }
    qp_geo g;
    qp_geometry(s, &g);
    int64_t rpt = qp_rows_per_task(s), per_plane = qk_div_up(s->OH, rpt);
    /* the tasks of [begin, end) run one after the other: begin's share of
     * work serves them all */
    uint8_t *t = (uint8_t *)p->work + begin * qp_task_work(s, &g);
    for (int64_t i = begin; i < end; i++) {
        int64_t c = i / per_plane, b = i % per_plane;
#ifdef __AVX2__
        if (qp_fast3s2(s)) {
            qp_rows_3s2(p, c, b * rpt, qk_min(s->OH, (b + 1) * rpt), t);
            continue;
        }
#endif
        qp_rows(p, &g, c, b * rpt, qk_min(s->OH, (b + 1) * rpt), t);
    }
}
