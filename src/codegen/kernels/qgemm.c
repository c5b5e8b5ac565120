/*
 * qgemm.c: quantized GEMM y[m][n] = requant(bias[n] + sum_k (a[m][k] - a_zero)
 * * (b[k][n] - b_zero[n])) for runtime activations a and constant packed b,
 * and octk_qpacked_path.
 *
 * Packing (octk_qgemm_pack_b) chooses the path: OCTK_PATH_U8S8 when the
 * target has AVX2, every b_zero is 0 and every pair (b[2j][n], b[2j+1][n])
 * satisfies qk_pair_fits_u8s8 (with VNNI: every weight is an int8), else
 * OCTK_PATH_S16.  b is stored in panels of QK_NR
 * columns (qcommon.h), minus its zero point; U8S8 also stores the column sums
 * sum_k b[k][n] (wrapping int32).
 * Phase 0 widens a into work, in tasks of 16 rows (for a convolution over
 * an NHWC image, the im2col field, each task first gathers its rows'
 * taps after the widened rows, qg_im2col): S16 as int16 (a - a_zero);
 * U8S8 as unsigned bytes au = a (uint8) or a + 128 (int8), so that
 *   sum (a - a_zero) * b = sum au * b - (a_zero [+128]) * colsum(b)  (mod 2^32),
 * rows of kp bytes, with VNNI the full blocks of 16 rows in a block layout
 * (qg_widen_block).
 * Phase 1 computes tiles of rows x panels (qg_grid) with the 4 x 24
 * microkernels (S16 in k blocks of QG_KC), then adds bias and the U8S8
 * correction with wrap-around and requantizes (qk_epilogue_row), or
 * converts to float32 (y_float), or stores the wrapped int32 sum
 * (OCTK_QGEMM_Y_INT32); U8S8 with VNNI runs 32 x 12 and 16 x 24 tiles of
 * row blocks that do all that in their registers (qg_tile_vnni), the rows
 * after the last full block the row-pair microkernels.  The AMX-INT8
 * variant, where the process may use tiles, keeps a in rows and sums
 * whole 16-row blocks with TDPBUSD (qg_amx_rows) before the row epilogue.
 */
#include "qcommon.h"

enum { QG_ROWS_PER_WIDEN_TASK = 16 };

int octk_qpacked_path(const void *packed_w)
{
    return qk_read_hdr(packed_w).path;
}

static inline int64_t qg_panels(int64_t N) { return qk_div_up(N, QK_NR); }

size_t octk_qgemm_packed_b_size(int64_t K, int64_t N)
{
    int64_t cols = qg_panels(N) * QK_NR;
    int64_t s16 = qk_round_up(K, 2) * cols * 2;
    int64_t u8 = qk_round_up(K, 4) * cols + cols * 4;
    return (size_t)(QK_HDR + qk_max(s16, u8));
}

/* Value b(k, n) - b_zero[n] of the source matrix. */
static inline int32_t qg_bval(const void *b, int b_signed, const int32_t *b_zero, int64_t k,
                              int64_t n, int64_t stride_k, int64_t stride_n)
{
    return qk_load8(b, b_signed, k * stride_k + n * stride_n) - b_zero[n];
}

unsigned octk_build_isa(void)
{
    return (QK_VNNI ? OCTK_ISA_VNNI : 0u) |
#ifdef __AVX2__
           OCTK_ISA_AVX2;
#else
           0u;
#endif
}

void octk_qgemm_pack_b(void *dst, const void *b, int b_signed, const int32_t *b_zero,
                       int64_t K, int64_t N, int64_t stride_k, int64_t stride_n,
                       unsigned isa)
{
    int64_t np = qg_panels(N);
    int u8s8 = (isa & OCTK_ISA_AVX2) != 0, vnni = (isa & OCTK_ISA_VNNI) != 0;
    for (int64_t n = 0; n < N && u8s8; n++) {
        if (b_zero[n] != 0)
            u8s8 = 0;
        for (int64_t k = 0; k < K && u8s8; k += 2) {
            int32_t w0 = qg_bval(b, b_signed, b_zero, k, n, stride_k, stride_n);
            int32_t w1 = k + 1 < K ? qg_bval(b, b_signed, b_zero, k + 1, n, stride_k, stride_n) : 0;
            u8s8 = vnni ? qk_fits_int8(w0) && qk_fits_int8(w1) : qk_pair_fits_u8s8(w0, w1);
        }
    }
    qk_hdr h;
    memset(&h, 0, sizeof h);
    h.path = u8s8 ? OCTK_PATH_U8S8 : OCTK_PATH_S16;
    h.kstep = u8s8 ? 4 : 2;
    h.K = K;
    h.N = N;
    h.kp = qk_round_up(K, h.kstep);
    uint8_t *base = (uint8_t *)dst;
    if (u8s8) {
        h.sums_off = QK_HDR + h.kp * np * QK_NR;
        uint8_t *pan = base + QK_HDR;
        for (int64_t p = 0; p < np; p++)
            for (int64_t k = 0; k < h.kp; k++)
                for (int64_t j = 0; j < QK_NR; j++) {
                    int64_t n = p * QK_NR + j;
                    int32_t v = (k < K && n < N)
                                    ? qg_bval(b, b_signed, b_zero, k, n, stride_k, stride_n)
                                    : 0;
                    int64_t idx = (p * h.kp + (k & ~(int64_t)3)) * QK_NR + j * 4 + (k & 3);
                    pan[idx] = (uint8_t)(int8_t)v;
                }
        for (int64_t n = 0; n < np * QK_NR; n++) {
            uint32_t s = 0;
            for (int64_t k = 0; k < K && n < N; k++)
                s += (uint32_t)qg_bval(b, b_signed, b_zero, k, n, stride_k, stride_n);
            int32_t si = (int32_t)s;
            memcpy(base + h.sums_off + 4 * n, &si, 4);
        }
    } else {
        for (int64_t p = 0; p < np; p++)
            for (int64_t k = 0; k < h.kp; k++)
                for (int64_t j = 0; j < QK_NR; j++) {
                    int64_t n = p * QK_NR + j;
                    int16_t v = (int16_t)((k < K && n < N) ? qg_bval(b, b_signed, b_zero, k, n,
                                                                     stride_k, stride_n)
                                                           : 0);
                    int64_t idx = (p * h.kp + (k & ~(int64_t)1)) * QK_NR + j * 2 + (k & 1);
                    memcpy(base + QK_HDR + 2 * idx, &v, 2);
                }
    }
    memcpy(dst, &h, sizeof h);
}

#if QK_MASKED_STORE
/* U8S8 with VNNI (and AVX-512 BW, which every VNNI CPU has, for byte-masked
 * stores) keeps a in work as blocks of QG_BR rows, [blocks][kp/4][16][4]
 * bytes: one 64-byte load holds a k quad of 16 rows, one per lane, and
 * vpdpbusd against column j's quad of the panel broadcast sums column j of
 * the 16 rows.  The loop has no shuffles (two rows per vector, the layout
 * before, needed 4 per 12 vpdpbusd); the epilogue works on columns and
 * transposes to rows at the end.  Blocks are never split: phase 0 widens
 * whole blocks (16-row tasks), phase 1 tiles are multiples of 16 rows
 * (qg_grid). */
enum { QG_BR = QG_ROWS_PER_WIDEN_TASK }; /* a phase 0 task widens one block */

/* The rows of a that go in blocks: the full blocks.  The rows after them
 * (all of them below M = 16: decode, small batches) keep the row layout,
 * at the same offsets (a block is 16 rows of kp bytes), and the row-pair
 * kernels, which fill every lane with them: one row in a block of 16
 * would use one lane of each vpdpbusd (M = 1..8 ran 2-4x slower). */
static inline int64_t qg_block_rows(const octk_qgemm *p, const qk_hdr *h)
{
    return h->path == OCTK_PATH_U8S8 && !qk_amx_ready() ? p->M / QG_BR * QG_BR : 0;
}

/* v[i] (lane l: row l of column i) becomes v[l] (lane i: column i of row l). */
static inline __attribute__((always_inline)) void qg_transpose16(__m512i v[16])
{
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
    }
    /* v[4g + i], 128-bit lane l: row 4l + i, columns 4g .. 4g + 3 */
    for (int g = 0; g < 16; g += 4) {
        v[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        v[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        v[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        v[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(v[i], v[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_i32x4(v[i], v[4 + i], 0xdd);
        t[8 + i] = _mm512_shuffle_i32x4(v[8 + i], v[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_i32x4(v[8 + i], v[12 + i], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0x88);
        v[4 + i] = _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0x88);
        v[8 + i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0xdd);
        v[12 + i] = _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0xdd);
    }
}

/* The same for 8 columns: v[r] for r < 8 gets row r in lanes 0-7 and row
 * r + 8 in lanes 8-15 (an 8 x 8 transpose in each 256-bit half). */
static inline __attribute__((always_inline)) void qg_transpose8(__m512i v[8])
{
    __m512i t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
    }
    for (int g = 0; g < 8; g += 4) {
        v[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        v[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        v[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        v[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    const __m512i even = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    const __m512i odd = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_permutex2var_epi64(v[i], even, v[4 + i]);
        t[4 + i] = _mm512_permutex2var_epi64(v[i], odd, v[4 + i]);
    }
    for (int i = 0; i < 8; i++)
        v[i] = t[i];
}

/* Phase 0 of one block: rows [m0, m1), m1 - m0 <= 16, m0 a multiple of 16;
 * zero beyond M and K.  64 bytes (16 quads) of each of the 16 rows at a
 * time, transposed as 16 x 16 dwords into the 16 quads' vectors; the end
 * of K by masked loads.  (A byte loop made phase 0 6% of a 1024^3 product,
 * up from 1%.) */
static void qg_widen_block(const octk_qgemm *p, int64_t kp, const uint8_t *src, int64_t lda,
                           int64_t m0, int64_t m1)
{
    /* in locals: the stores through d may alias *p */
    const int64_t K = p->K, rows = m1 - m0;
    const char flip8 = p->a_signed ? (char)0x80 : 0;
    uint8_t *d = (uint8_t *)p->work + m0 * kp;
    for (int64_t k = 0; k < K; k += 64) {
        const __mmask64 kn = K - k >= 64 ? ~0ull : (1ull << (K - k)) - 1;
        const __m512i flip = _mm512_maskz_set1_epi8(kn, flip8);
        __m512i v[16];
#pragma GCC unroll 16
        for (int r = 0; r < QG_BR; r++)
            v[r] = r < rows ? _mm512_xor_si512(
                                  _mm512_maskz_loadu_epi8(kn, src + r * lda + k), flip)
                            : _mm512_setzero_si512();
        qg_transpose16(v);
#pragma GCC unroll 16
        for (int q = 0; q < 16; q++) {
            if (k + 4 * q >= kp)
                break;
            _mm512_storeu_si512(d + 16 * k + 64 * q, v[q]);
        }
    }
}

/* A panel's per-column epilogue terms, zero beyond N. */
typedef struct qg_cols {
    int32_t add[QK_NR];
    float mult[QK_NR], fbias[QK_NR];
} qg_cols;

/* Output kinds of qg_tile_vnni, constants once inlined. */
enum { QG_Y8, QG_F32, QG_F32_BIAS, QG_I32 };

/* The epilogue of column j (16 rows in acc): the arithmetic of
 * qg_epilogue_f32, of the int32 output and of qk_epilogue_row lane by lane
 * (as qconv.c's qc_epilogue24: the clamp in float to [y_lo - y_zero, y_hi -
 * y_zero], then the rounding), so the same values. */
static inline __attribute__((always_inline)) __m512i
qg_epilogue_col(const octk_qgemm *p, int y, const qg_cols *cols, int j, __m512i acc)
{
    const __m512i sum = _mm512_add_epi32(acc, _mm512_set1_epi32(cols->add[j]));
    if (y == QG_I32)
        return sum;
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(cols->mult[j]));
    if (y == QG_F32_BIAS)
        f = _mm512_add_ps(f, _mm512_set1_ps(cols->fbias[j]));
    if (y != QG_Y8)
        return _mm512_castps_si512(f);
    f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps((float)(p->y_lo - p->y_zero))),
                      _mm512_set1_ps((float)(p->y_hi - p->y_zero)));
    return _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(p->y_zero));
}

/* Stores columns v[0 .. nv) (nv 12 or 24; lane r: row r) as rows r < rows
 * at yp + r * ldy elements, columns < nc only.  8-bit output gathers the
 * low bytes of 4 columns into the dwords of one vector first (packing to
 * int16 is exact: the values lie in [y_lo, y_hi]), so the transpose moves
 * nv / 4 vectors, not nv, and a row is one store (64^3 from 370 to 400
 * GOP/s with 16 x 24 blocks). */
static inline __attribute__((always_inline)) void
qg_store_rows(int y, __m512i v[QK_NR], int nv, int64_t nc, int rows, void *yp, int64_t ldy)
{
    if (y == QG_Y8) {
        /* per 128-bit lane a pack holds column a's rows in words 0-3 and
         * column b's in words 4-7; row i's bytes go to dword i */
        const __m512i ab = _mm512_broadcast_i32x4(
            _mm_setr_epi8(0, 8, -1, -1, 2, 10, -1, -1, 4, 12, -1, -1, 6, 14, -1, -1));
        const __m512i cd = _mm512_broadcast_i32x4(
            _mm_setr_epi8(-1, -1, 0, 8, -1, -1, 2, 10, -1, -1, 4, 12, -1, -1, 6, 14));
        __m512i d[8];
        for (int g = 0; g < 8; g++)
            d[g] = 4 * g >= nv
                       ? _mm512_setzero_si512()
                       : _mm512_or_si512(
                             _mm512_shuffle_epi8(_mm512_packs_epi32(v[4 * g], v[4 * g + 1]), ab),
                             _mm512_shuffle_epi8(_mm512_packs_epi32(v[4 * g + 2], v[4 * g + 3]),
                                                 cd));
        qg_transpose8(d);
        const __mmask32 k = (__mmask32)((1u << nc) - 1);
#pragma GCC unroll 16
        for (int r = 0; r < QG_BR; r++) {
            if (r >= rows)
                break;
            const __m256i row = r < 8 ? _mm512_castsi512_si256(d[r])
                                      : _mm512_extracti64x4_epi64(d[r - 8], 1);
            _mm256_mask_storeu_epi8((uint8_t *)yp + r * ldy, k, row);
        }
        return;
    }
    for (int j = nv; j < 16; j++)
        v[j] = _mm512_setzero_si512();
    qg_transpose16(v);
    if (nv > 16)
        qg_transpose8(v + 16);
    const __mmask16 k0 = nc >= 16 ? 0xffff : (__mmask16)((1u << nc) - 1);
    const __mmask8 k1 = nc > 16 ? (__mmask8)((1u << (nc - 16)) - 1) : 0;
#pragma GCC unroll 16
    for (int r = 0; r < QG_BR; r++) {
        if (r >= rows)
            break;
        int32_t *yr = (int32_t *)yp + r * ldy;
        _mm512_mask_storeu_epi32(yr, k0, v[r]);
        if (nv > 16)
            _mm256_mask_storeu_epi32(yr + 16, k1, r < 8 ? _mm512_castsi512_si256(v[16 + r])
                                                        : _mm512_extracti64x4_epi64(v[8 + r], 1));
    }
}

/* nb (1 or 2) blocks of 16 rows at a, a + bs, x the nv = 24 / nb columns
 * c0 .. of the panel: y rows [m, m + rows), columns from n0 + c0, < n0 +
 * nc.  Each vpdpbusd needs a k quad of A, 16 rows, and a broadcast quad
 * of B: one 16 x 24 block loads 1 + 24 per 24 vpdpbusd (the broadcasts
 * folded into the instructions, {1to16}), two blocks x 12 columns 2 + 12:
 * Zen 5 runs the second ~5% faster (two vector loads per cycle). */
static inline __attribute__((always_inline)) void
qg_tile_vnni(const octk_qgemm *p, int y, int nb, const uint8_t *a, int64_t bs, int64_t kquads,
             const uint8_t *panel, const qg_cols *cols, int c0, int64_t nc, int rows, int64_t m,
             int64_t n0)
{
    const int nv = QK_NR / nb;
    __m512i acc[2][QK_NR];
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < nv; j++)
            acc[b][j] = _mm512_setzero_si512();
    for (int64_t q = 0; q < kquads; q++) {
        __m512i av[2];
        for (int b = 0; b < nb; b++)
            av[b] = _mm512_loadu_si512(a + b * bs + 64 * q);
        for (int j = 0; j < nv; j++) {
            int32_t w;
            memcpy(&w, panel + 96 * q + 4 * (c0 + j), 4);
            for (int b = 0; b < nb; b++)
                acc[b][j] = _mm512_dpbusd_epi32(acc[b][j], av[b], _mm512_set1_epi32(w));
        }
    }
    const int64_t ncc = qk_min(nc - c0, nv);
    const size_t esize = y == QG_Y8 ? 1 : 4;
    for (int b = 0; b < nb && 16 * b < rows; b++) {
        __m512i v[QK_NR];
        /* unrolled: left a loop (clang did so with QG_F32_BIAS), it kept
         * acc in memory, stored after each vpdpbusd of the k loop */
#pragma GCC unroll 24
        for (int j = 0; j < nv; j++)
            v[j] = qg_epilogue_col(p, y, cols, c0 + j, acc[b][j]);
        qg_store_rows(y, v, nv, ncc, (int)qk_min(QG_BR, rows - 16 * b),
                      (uint8_t *)p->y + ((m + 16 * b) * p->ldy + n0 + c0) * esize, p->ldy);
    }
}

#if QK_AMX
/* AMX-INT8: a stays in rows, [M][kp] bytes (no blocks: qg_block_rows is 0),
 * the u8 side of TDPBUSD (qk_amx_sums); sums of rows [m0, m1) (a multiple
 * of 16) x panel pn into c[0 ..), for qg_tile's row epilogue. */
static void qg_amx_rows(const octk_qgemm *p, const qk_hdr *h, int64_t m0, int64_t m1,
                        int64_t pn, int32_t (*c)[QK_NR])
{
    const int64_t kp = h->kp;
    const uint8_t *panel = (const uint8_t *)p->b + QK_HDR + pn * kp * QK_NR;
    qk_amx_begin();
    for (int64_t m = m0; m < m1; m += 2 * QG_BR)
        qk_amx_sums((const uint8_t *)p->work + m * kp, kp, 0, panel, kp,
                    (int)qk_min(2 * QG_BR, m1 - m), c + (m - m0));
    qk_amx_end();
}
#endif

/* Rows [m0, m1) (m0 a multiple of 16) x one panel for output kind y: two
 * blocks at a time, then one. */
static inline __attribute__((always_inline)) void
qg_panel_kind(const octk_qgemm *p, int y, int64_t kp, const uint8_t *panel, const qg_cols *cols,
              int64_t nc, int64_t m0, int64_t m1, int64_t n0)
{
    const uint8_t *w = (const uint8_t *)p->work;
    int64_t m = m0;
    for (; m1 - m > QG_BR; m += 2 * QG_BR)
        for (int c0 = 0; c0 < nc; c0 += QK_NR / 2)
            qg_tile_vnni(p, y, 2, w + m * kp, QG_BR * kp, kp / 4, panel, cols, c0, nc,
                         (int)qk_min(2 * QG_BR, m1 - m), m, n0);
    if (m < m1)
        qg_tile_vnni(p, y, 1, w + m * kp, 0, kp / 4, panel, cols, 0, nc, (int)(m1 - m), m, n0);
}

/* Phase 1 of the VNNI U8S8 path: rows [m0, m1) (m0 a multiple of 16) x
 * panel pn, add per column as in qg_tile. */
static void qg_panel_blocks(const octk_qgemm *p, const qk_hdr *h, int64_t m0, int64_t m1,
                            int64_t pn, const int32_t *add)
{
    const int64_t kp = h->kp, n0 = pn * QK_NR, nc = qk_min(QK_NR, p->N - n0);
    const uint8_t *panel = (const uint8_t *)p->b + QK_HDR + pn * kp * QK_NR;
    qg_cols cols;
    memset(&cols, 0, sizeof cols);
    memcpy(cols.add, add, sizeof cols.add);
    if (p->y_float != OCTK_QGEMM_Y_INT32)
        memcpy(cols.mult, p->mult + n0, 4 * (size_t)nc);
    if (p->y_float == 1 && p->fbias)
        memcpy(cols.fbias, p->fbias + n0, 4 * (size_t)nc);
    if (p->y_float == OCTK_QGEMM_Y_INT32)
        qg_panel_kind(p, QG_I32, kp, panel, &cols, nc, m0, m1, n0);
    else if (p->y_float && p->fbias)
        qg_panel_kind(p, QG_F32_BIAS, kp, panel, &cols, nc, m0, m1, n0);
    else if (p->y_float)
        qg_panel_kind(p, QG_F32, kp, panel, &cols, nc, m0, m1, n0);
    else
        qg_panel_kind(p, QG_Y8, kp, panel, &cols, nc, m0, m1, n0);
}
#endif

/* Bytes of work holding the widened a; the gathered im2col rows follow. */
static inline int64_t qg_widened_bytes(const octk_qgemm *p)
{
    int64_t s16 = p->M * qk_round_up(p->K, 2) * 2;
    int64_t u8 = p->M * qk_round_up(p->K, 4); /* rows and blocks alike */
    return qk_round_up(qk_max(s16, u8), 64);
}

size_t octk_qgemm_work_size(const octk_qgemm *p)
{
    return (size_t)(qg_widened_bytes(p) + (p->im2col ? qk_round_up(p->M * p->K, 64) : 0));
}

/* The tiles of phase 1: qk_tile_grid's, with whole blocks of 16 rows when
 * a is in blocks or goes through AMX tiles (its finest grid with 16
 * rows). */
static void qg_grid(const octk_qgemm *p, int64_t *mb, int64_t *pb)
{
    qk_tile_grid(p->M, qg_panels(p->N), mb, pb);
#if QK_MASKED_STORE
    if (*mb >= QG_BR)
        return; /* b unread: callers may size the tasks before packing */
    /* U8S8 rows go 16 at a time into blocks or, with AMX, into tiles */
    const qk_hdr h = qk_read_hdr(p->b);
    if (h.path == OCTK_PATH_U8S8 && p->M >= QG_BR) {
        *mb = QG_BR;
        *pb = 1;
    }
#endif
}

int64_t octk_qgemm_tasks(const octk_qgemm *p, int phase)
{
    if (p->M <= 0 || p->N <= 0)
        return 0;
    if (phase == 0)
        return qk_div_up(p->M, QG_ROWS_PER_WIDEN_TASK);
    if (phase != 1)
        return 0;
    int64_t mb, pb, np = qg_panels(p->N);
    qg_grid(p, &mb, &pb);
    return qk_div_up(p->M, mb) * qk_div_up(np, pb);
}

/* The im2col rows [m0, m1) of a convolution over an NHWC image (the
 * octk_qgemm fields im2col and conv), gathered into their place after
 * the widened rows in work; returns row m0.  Runs of kernel columns that
 * lie inside the image are one copy each. */
static const uint8_t *qg_im2col(const octk_qgemm *p, int64_t m0, int64_t m1)
{
    const octk_conv_shape *s = &p->conv;
    const int64_t K = p->K, C = s->C, run = s->KW * C;
    const uint8_t *x = (const uint8_t *)p->a;
    const uint8_t pad = (uint8_t)p->a_zero;
    uint8_t *rows = (uint8_t *)p->work + qg_widened_bytes(p) + m0 * K;
    for (int64_t m = m0; m < m1; m++) {
        int64_t oh = m / s->OW, ow = m % s->OW, iw0 = ow * s->SW - s->PL;
        uint8_t *d = rows + (m - m0) * K;
        for (int64_t kh = 0; kh < s->KH; kh++, d += run) {
            int64_t ih = oh * s->SH - s->PT + kh * s->DH;
            if (ih < 0 || ih >= s->H) {
                memset(d, pad, (size_t)run);
                continue;
            }
            const uint8_t *xr = x + ih * s->W * C;
            if (s->DW == 1 && iw0 >= 0 && iw0 + s->KW <= s->W) {
                memcpy(d, xr + iw0 * C, (size_t)run);
                continue;
            }
            for (int64_t kw = 0; kw < s->KW; kw++) {
                int64_t iw = iw0 + kw * s->DW;
                if (iw < 0 || iw >= s->W)
                    memset(d + kw * C, pad, (size_t)C);
                else
                    memcpy(d + kw * C, xr + iw * C, (size_t)C);
            }
        }
    }
    return rows;
}

/* Phase 0: widens rows [m0, m1) of a into work (see the file comment). */
static void qg_widen(const octk_qgemm *p, const qk_hdr *h, int64_t m0, int64_t m1)
{
    int64_t K = p->K, kp = h->kp;
    /* row m0 of a and the row stride */
    const uint8_t *a = p->im2col ? qg_im2col(p, m0, m1) : (const uint8_t *)p->a + m0 * p->lda;
    const int64_t lda = p->im2col ? K : p->lda;
#if QK_MASKED_STORE
    if (m1 <= qg_block_rows(p, h)) {
        qg_widen_block(p, kp, a, lda, m0, m1);
        return;
    }
#endif
    if (h->path == OCTK_PATH_U8S8) {
        uint8_t *w = (uint8_t *)p->work;
        uint8_t flip = p->a_signed ? 0x80 : 0;
        for (int64_t m = m0; m < m1; m++) {
            const uint8_t *src = a + (m - m0) * lda;
            uint8_t *d = w + m * kp;
            for (int64_t k = 0; k < K; k++)
                d[k] = src[k] ^ flip;
            for (int64_t k = K; k < kp; k++)
                d[k] = 0;
        }
    } else {
        int16_t *w = (int16_t *)p->work;
        int32_t z = p->a_zero;
        for (int64_t m = m0; m < m1; m++) {
            int16_t *d = w + m * kp;
            if (p->a_signed) {
                const int8_t *src = (const int8_t *)(a + (m - m0) * lda);
                for (int64_t k = 0; k < K; k++)
                    d[k] = (int16_t)(src[k] - z);
            } else {
                const uint8_t *src = a + (m - m0) * lda;
                for (int64_t k = 0; k < K; k++)
                    d[k] = (int16_t)(src[k] - z);
            }
            for (int64_t k = K; k < kp; k++)
                d[k] = 0;
        }
    }
}

/* The float32 epilogue (y_float): y[j] = (float)(c[j] + add[j]) * mult[j]
 * [+ fbias[j]], the sum wrapping, each float operation rounded on its own
 * (the kernels build with -ffp-contract=off: no FMA). */
static inline void qg_epilogue_f32(const int32_t *c, int64_t nc, const int32_t *add,
                                   const float *mult, const float *fbias, float *y)
{
#ifdef __AVX2__
    if (nc == QK_NR) {
        for (int j = 0; j < QK_NR; j += 8) {
            __m256i s = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(c + j)),
                                         _mm256_loadu_si256((const __m256i *)(add + j)));
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_loadu_ps(mult + j));
            if (fbias)
                v = _mm256_add_ps(v, _mm256_loadu_ps(fbias + j));
            _mm256_storeu_ps(y + j, v);
        }
        return;
    }
#endif
    for (int64_t j = 0; j < nc; j++) {
        float v = (float)qk_wrap_add(c[j], add[j]) * mult[j];
        y[j] = fbias ? v + fbias[j] : v;
    }
}

/* S16 reductions run in blocks of this many k values (even), every row of
 * the tile passing over one block of the panel before the next: a block (24
 * columns, 12 KB) stays in L1, a whole panel of K = 1024 (48 KB) did not
 * (measured on AVX2).  The AVX-512 VNNI variant, not measured with blocks,
 * keeps one block over the whole reduction. */
#if QK_VNNI
enum { QG_KC = 1 << 30 };
#else
enum { QG_KC = 256 };
#endif

/* Phase 1: one tile of rows [m0, m1) x panels [p0, p1). */
static void qg_tile(const octk_qgemm *p, const qk_hdr *h, int64_t m0, int64_t m1, int64_t p0,
                    int64_t p1)
{
    const uint8_t *blob = (const uint8_t *)p->b;
    int64_t kp = h->kp;
    int u8s8 = h->path == OCTK_PATH_U8S8;
    int32_t corr_zero = p->a_zero + (p->a_signed ? 128 : 0);
    int32_t c[QK_MB_MAX][QK_NR]; /* the tile's rows, m - m0 */
    int32_t add[QK_NR];
    for (int64_t pn = p0; pn < p1; pn++) {
        int64_t n0 = pn * QK_NR, nc = qk_min(QK_NR, p->N - n0);
        /* per column: bias - correction, wrapping (copied out first: with
         * the conditions in the loop the compiler gathered the loads) */
        int32_t bias[QK_NR] = {0}, sums[QK_NR] = {0};
        if (p->bias)
            memcpy(bias, p->bias + n0, 4 * (size_t)nc);
        if (u8s8)
            memcpy(sums, blob + h->sums_off + 4 * n0, 4 * (size_t)nc);
        for (int j = 0; j < QK_NR; j++)
            add[j] = (int32_t)((uint32_t)bias[j] - (uint32_t)corr_zero * (uint32_t)sums[j]);
        /* rows [m0, mr) in blocks, epilogue included; [mr, m1) in rows
         * into c, [mr, mk) of them by AMX tiles */
        int64_t mr = m0, mk = m0;
#if QK_MASKED_STORE
        mr = mk = qk_max(m0, qk_min(m1, qg_block_rows(p, h)));
        if (mr > m0)
            qg_panel_blocks(p, h, m0, mr, pn, add);
#endif
#if QK_AMX
        if (u8s8 && qk_amx_ready()) {
            mk = mr + (m1 - mr) / QG_BR * QG_BR;
            if (mk > mr)
                qg_amx_rows(p, h, mr, mk, pn, c + (mr - m0));
        }
#endif
        if (u8s8) {
            for (int64_t m = mk; m < m1; m += QK_MR_U8)
                qk_ukr_u8s8_mr((const uint8_t *)p->work + m * kp, kp,
                               blob + QK_HDR + pn * kp * QK_NR, kp / 4,
                               (int)qk_min(QK_MR_U8, m1 - m), 1, c + (m - m0));
        } else {
            const int16_t *panel = (const int16_t *)(blob + QK_HDR) + pn * kp * QK_NR;
            /* the first block writes the tile's rows, the later ones go
             * through t and add (the kernel itself never reads c: given
             * sums to start from, the compilers made a second copy of its
             * loop, which spilled) */
            int32_t t[QK_MR][QK_NR];
            for (int64_t k0 = 0; k0 < kp; k0 += QG_KC) {
                int64_t kc = qk_min(QG_KC, kp - k0);
                for (int64_t m = m0; m < m1; m += QK_MR) {
                    int mr = (int)qk_min(QK_MR, m1 - m);
                    qk_ukr_s16_mr((const int16_t *)p->work + m * kp + k0, kp, panel + k0 * QK_NR,
                                  kc / 2, mr, k0 == 0 ? c + (m - m0) : t);
                    for (int r = 0; r < mr && k0 > 0; r++)
                        for (int j = 0; j < QK_NR; j++)
                            c[m - m0 + r][j] = qk_wrap_add(c[m - m0 + r][j], t[r][j]);
                }
            }
        }
        for (int64_t m = mr; m < m1; m++) {
            int32_t *cr = c[m - m0];
            if (p->y_float == OCTK_QGEMM_Y_INT32) {
                int32_t *yr = (int32_t *)p->y + m * p->ldy + n0;
                for (int64_t j = 0; j < nc; j++)
                    yr[j] = qk_wrap_add(cr[j], add[j]);
                continue;
            }
            if (p->y_float) {
                qg_epilogue_f32(cr, nc, add, p->mult + n0, p->fbias ? p->fbias + n0 : NULL,
                                (float *)p->y + m * p->ldy + n0);
                continue;
            }
            qk_epilogue_row(cr, nc, 1, add, 0, p->mult + n0, p->y_zero, p->y_lo, p->y_hi,
                            p->y_signed, (uint8_t *)p->y + m * p->ldy + n0);
        }
    }
}

void octk_qgemm_run(const octk_qgemm *p, int phase, int64_t begin, int64_t end)
{
    qk_hdr h = qk_read_hdr(p->b);
    if (phase == 0) {
        for (int64_t t = begin; t < end; t++)
            qg_widen(p, &h, t * QG_ROWS_PER_WIDEN_TASK,
                     qk_min(p->M, (t + 1) * QG_ROWS_PER_WIDEN_TASK));
        return;
    }
    int64_t mb, pb, np = qg_panels(p->N);
    qg_grid(p, &mb, &pb);
    int64_t npb = qk_div_up(np, pb);
    for (int64_t t = begin; t < end; t++) {
        int64_t mi = t / npb, pi = t % npb;
        qg_tile(p, &h, mi * mb, qk_min(p->M, (mi + 1) * mb), pi * pb, qk_min(np, (pi + 1) * pb));
    }
}
