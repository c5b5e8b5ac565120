/*
 * qconv_vnni.c: the AVX-512 VNNI tiles of octk_qconv (qconv.c) over two
 * panels of im2col positions.
 */
#include "qconv.h"

#if QK_MASKED_STORE
/* The AVX-512 VNNI variant has 32 vector registers: U8S8 tiles of 8 output
 * channels x two panels (48 positions, 24 accumulators) with the positions
 * in the lanes.  One vpdpbusd takes 16 positions' k quads (a 64-byte load
 * of the panel) against a channel's quad broadcast, so the loop has no
 * shuffle (the row pairs of qk_ukr_u8s8 need two broadcasts merged per
 * pair), and each accumulator is 16 consecutive positions of one channel:
 * a piece of its output row, requantized and stored from the register. */
enum { QC_PAIR_MR = 8 };

static inline __attribute__((always_inline)) void
qc_ukr_lanes(const uint8_t *a, int64_t lda, const uint8_t *b0, const uint8_t *b1,
             int64_t kquads, int mr, __m512i acc[QC_PAIR_MR][3])
{
    /* (starting the sums at the channel's add instead kept acc in memory,
     * stored after every vpdpbusd: 2x slower) */
    for (int r = 0; r < QC_PAIR_MR; r++)
        for (int j = 0; j < 3; j++)
            acc[r][j] = _mm512_setzero_si512();
    for (int64_t kq = 0; kq < kquads; kq++) {
        const uint8_t *x0 = b0 + 96 * kq, *x1 = b1 + 96 * kq;
        /* positions 0-15, 16-31 (8 of each panel), 32-47 */
        const __m512i v0 = _mm512_loadu_si512(x0);
        const __m512i v1 = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(x0 + 64))),
            _mm256_loadu_si256((const __m256i *)x1), 1);
        const __m512i v2 = _mm512_loadu_si512(x1 + 32);
        for (int r = 0; r < QC_PAIR_MR; r++) {
            if (r >= mr)
                break;
            int32_t w;
            memcpy(&w, a + r * lda + 4 * kq, 4);
            const __m512i wv = _mm512_set1_epi32(w);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], v0, wv);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], v1, wv);
            acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], v2, wv);
        }
    }
}

/* 16 requantized bytes of the sums v (qc_epilogue24's arithmetic). */
static inline __m128i qc_requant16(__m512i v, __m512i add, __m512 mult, __m512 lo, __m512 hi,
                                   __m512i y_zero)
{
    __m512 a = _mm512_cvtepi32_ps(_mm512_add_epi32(v, add));
    a = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(a, mult), lo), hi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(a), y_zero));
}

static inline __attribute__((always_inline)) void
qc_pair_rows(const octk_qconv *p, const qk_hdr *h, const uint8_t *b0, int64_t m, int mr,
             const __mmask64 *mask, int nseg, const int *seg_src, const int64_t *seg_dst,
             int direct, int64_t v0)
{
    const int64_t kp = h->kp, P = p->s.OH * p->s.OW;
    const __m512 lo = _mm512_set1_ps((float)(p->y_lo - p->y_zero));
    const __m512 hi = _mm512_set1_ps((float)(p->y_hi - p->y_zero));
    const __m512i yz = _mm512_set1_epi32(p->y_zero);
    __m512i acc[QC_PAIR_MR][3];
    qc_ukr_lanes((const uint8_t *)p->w + QK_HDR + m * kp, kp, b0, b0 + kp * QK_NR, kp / 4, mr,
                 acc);
    for (int r = 0; r < mr; r++) {
        const __m512i av = _mm512_set1_epi32(qc_row_add(p, h, 1, m + r));
        const __m512 mv = _mm512_set1_ps(p->mult[m + r]);
        __m512i b = _mm512_castsi128_si512(qc_requant16(acc[r][0], av, mv, lo, hi, yz));
        b = _mm512_inserti32x4(b, qc_requant16(acc[r][1], av, mv, lo, hi, yz), 1);
        b = _mm512_inserti32x4(b, qc_requant16(acc[r][2], av, mv, lo, hi, yz), 2);
        uint8_t *yr = (uint8_t *)p->y + (m + r) * P;
        if (direct)
            _mm512_mask_storeu_epi8(yr + v0, ((__mmask64)1 << QC_PAIR) - 1, b);
        for (int i = 0; i < nseg; i++)
            _mm512_mask_storeu_epi8(yr + seg_dst[i] - seg_src[i], mask[i], b);
    }
}

/* (qconv.h) */
void qc_tile_pair(const octk_qconv *p, const qk_hdr *h, const qc_geo *g, int64_t m0, int64_t m1,
                  int64_t q)
{
    const uint8_t *b0 = qc_panels_base(p, g) + q * h->kp * QK_NR;
    int64_t v0 = q * QK_NR;
    int seg_src[QC_PAIR], seg_len[QC_PAIR];
    int64_t seg_dst[QC_PAIR];
    /* on a grid without skipped columns, positions are pixels; else the
     * runs that are (none when all 48 positions are skipped columns) */
    int direct = g->G == p->s.OW;
    int nseg = direct ? 0 : qc_segments(&p->s, g, v0, QC_PAIR, seg_src, seg_len, seg_dst);
    if (!direct && nseg == 0)
        return;
    __mmask64 mask[QC_PAIR];
    for (int i = 0; i < nseg; i++)
        mask[i] = (((__mmask64)1 << seg_len[i]) - 1) << seg_src[i];
    for (int64_t m = m0; m < m1; m += QC_PAIR_MR) {
        int mr = (int)qk_min(QC_PAIR_MR, m1 - m);
        switch (mr) {
#define QC_ROWS(n)                                                                         \
    case n: qc_pair_rows(p, h, b0, m, n, mask, nseg, seg_src, seg_dst, direct, v0); break;
        QC_ROWS(8) QC_ROWS(7) QC_ROWS(6) QC_ROWS(5) QC_ROWS(4) QC_ROWS(3) QC_ROWS(2)
        default: qc_pair_rows(p, h, b0, m, 1, mask, nseg, seg_src, seg_dst, direct, v0); break;
#undef QC_ROWS
        }
    }
}
#endif
