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
 * before instead of running a scalar tail.
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

/* bytes of work one task needs: v, then the SW phase rows */
static inline int64_t qp_task_work(const octk_conv_shape *s, const qp_geo *g)
{
    return qk_round_up(s->W, 64) + qk_round_up(s->SW * g->ls, 64);
}

int64_t octk_maxpool8_tasks(const octk_maxpool8 *p, int phase)
{
    const octk_conv_shape *s = &p->s;
    if (phase != 1 || s->C <= 0 || s->OH <= 0 || s->OW <= 0 || s->W <= 0 ||
        s->SW > OCTK_POOL_MAX_SW || s->KW > OCTK_POOL_MAX_K)
        return 0;
    return s->C * qk_div_up(s->OH, qp_rows_per_task(s));
}

size_t octk_maxpool8_work_size(const octk_maxpool8 *p)
{
    qp_geo g;
    if (octk_maxpool8_tasks(p, 1) == 0)
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

void octk_maxpool8_run(const octk_maxpool8 *p, int phase, int64_t begin, int64_t end)
{
    const octk_conv_shape *s = &p->s;
    if (phase != 1 || begin >= end)
        return;
    qp_geo g;
    qp_geometry(s, &g);
    int64_t rpt = qp_rows_per_task(s), per_plane = qk_div_up(s->OH, rpt);
    /* the tasks of [begin, end) run one after the other: begin's share of
     * work serves them all */
    uint8_t *t = (uint8_t *)p->work + begin * qp_task_work(s, &g);
    for (int64_t i = begin; i < end; i++) {
        int64_t c = i / per_plane, b = i % per_plane;
        qp_rows(p, &g, c, b * rpt, qk_min(s->OH, (b + 1) * rpt), t);
    }
}
