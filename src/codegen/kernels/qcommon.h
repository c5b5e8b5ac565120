/*
 * qcommon.h: static inline helpers shared by the integer kernels (qgemm.c,
 * qconv.c, qdwconv.c): the header every packed integer weight blob starts
 * with, the register-blocked microkernels of the two instruction paths
 * (OCTK_PATH_S16: int16 pairs into int32 with vpmaddwd; OCTK_PATH_U8S8:
 * u8 x s8 quads with vpmaddubsw + vpmaddwd, or with vpdpbusd in the build
 * for AVX-512 VNNI, QK_VNNI) and the requantize epilogue.
 * Each has an AVX2 version and a plain C version (the baseline x86-64
 * build) giving identical bytes.  Packed layouts never depend on __AVX2__.
 *
 * Layouts (all little-endian, no alignment assumed):
 *   panel ("b" side, QK_NR = 24 columns): S16: int16 [kp/2][24][2], the two
 *     values of a k pair side by side; U8S8: bytes [kp/4][24][4];
 *   rows ("a" side, broadcast): S16: int16 [rows][kp]; U8S8: bytes [rows][kp].
 * kp is K rounded up to the path's k step (2 or 4), padding is 0.  Which
 * operand is which, and the blobs' contents, are described in qgemm.c,
 * qconv.c and qdwconv.c.
 */
#ifndef OCTET_QCOMMON_H
#define OCTET_QCOMMON_H

#include <stdint.h>
#include <string.h>

#include "octk.h"
#include "octk_cpu.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

/* The VNNI variant: 256-bit vpdpbusd (AVX512_VNNI with AVX512VL). */
#if defined(__AVX2__) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define QK_VNNI 1
#else
#define QK_VNNI 0
#endif

/* Byte-masked stores (AVX-512 BW with VL), which the VNNI variant has. */
#if QK_VNNI && defined(__AVX512BW__)
#define QK_MASKED_STORE 1
#else
#define QK_MASKED_STORE 0
#endif

/* AMX-INT8 tiles (the variant for Sapphire Rapids class CPUs), used when
 * the process may run them (qk_amx_ready); OCTK_AMX_EMULATE builds the
 * same code on C emulations of the tile instructions for the tests on CPUs
 * without AMX (tests/kernels/amx_emu.h, which the build includes ahead of
 * every file: this folder includes only its own). */
#if QK_MASKED_STORE && ((defined(__AMX_TILE__) && defined(__AMX_INT8__)) || \
                        defined(OCTK_AMX_EMULATE))
#define QK_AMX 1
#else
#define QK_AMX 0
#endif

enum {
    QK_NR = 24,     /* columns of a panel / of the microkernel */
    QK_MR = 4,      /* rows of the S16 microkernel */
    QK_MR_U8 = QK_VNNI ? 8 : 4, /* rows of the U8S8 microkernel */
    QK_MR_MAX = 8,  /* the larger of the two */
    QK_HDR = 64,    /* bytes of the packed-blob header */
    QK_MB_MAX = 64, /* rows of the tallest tile of qk_tile_grid */
};

/* Header of every packed integer weight blob (64 bytes, read by memcpy as
 * the blob may not be aligned). */
typedef struct qk_hdr {
    int32_t path;       /* OCTK_PATH_S16 or OCTK_PATH_U8S8 */
    int32_t kstep;      /* k group: 2 (S16), 4 (U8S8), 1 (depthwise, S16) */
    int64_t K, N;       /* logical reduction length and number of outputs */
    int64_t kp;         /* K rounded up to kstep */
    int64_t sums_off;   /* U8S8: byte offset of the int32 weight sums, else 0 */
    int64_t reserved[3];
} qk_hdr;

_Static_assert(sizeof(qk_hdr) == QK_HDR, "packed header is 64 bytes");

static inline qk_hdr qk_read_hdr(const void *blob)
{
    qk_hdr h;
    memcpy(&h, blob, sizeof h);
    return h;
}

static inline int64_t qk_round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
static inline int64_t qk_div_up(int64_t v, int64_t m) { return (v + m - 1) / m; }
static inline int64_t qk_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t qk_max(int64_t a, int64_t b) { return a > b ? a : b; }

/* Loads element i of an 8-bit tensor as int32. */
static inline int32_t qk_load8(const void *p, int is_signed, int64_t i)
{
    return is_signed ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
}

/* Two's-complement wrap-around addition (the accumulator contract). */
static inline int32_t qk_wrap_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* Can the u8 x s8 path take weight w (zero point already 0)?  With VNNI
 * any int8 does; otherwise see qk_pair_fits_u8s8. */
static inline int qk_fits_int8(int32_t w)
{
    return w >= -128 && w <= 127;
}

/* Can pairs (w0, w1) run on vpmaddubsw?  Both fit int8 and no activation
 * byte u in [0, 255] can saturate the int16 pair sum: 255 * (|w0| + |w1|)
 * <= 32767, i.e. |w0| + |w1| <= 128. */
static inline int qk_pair_fits_u8s8(int32_t w0, int32_t w1)
{
    if (w0 < -128 || w0 > 127 || w1 < -128 || w1 > 127)
        return 0;
    int32_t s = (w0 < 0 ? -w0 : w0) + (w1 < 0 ? -w1 : w1);
    return 255 * s <= 32767;
}

/* ---- requantize epilogue ------------------------------------------------
 * y = clamp(rint((float)acc * mult) + y_zero, y_lo, y_hi):
 *   (float)acc rounds to nearest even (cvtdq2ps does the same);
 *   the product is one float32 multiplication;
 *   the product is clamped to [-2^20, 2^20] before rounding (NaN -> -2^20):
 *     any product beyond gives a result beyond every 8-bit range however
 *     y_zero lies, so the final clamp is unchanged, and the clamp keeps
 *     cvtps2dq away from its out-of-range value INT_MIN;
 *   rounding half to even: cvtps2dq under the default MXCSR, and in scalar
 *     code (v + 1.5*2^23) - 1.5*2^23, exact for |v| <= 2^22;
 *   then + y_zero and clamp to [y_lo, y_hi] in int32 (no overflow). */
static inline int32_t qk_requant1(int32_t acc, float mult, int32_t y_zero, int32_t y_lo,
                                  int32_t y_hi)
{
    float v = (float)acc * mult;
    v = v > -0x1p20f ? v : -0x1p20f;
    v = v < 0x1p20f ? v : 0x1p20f;
    float r = (v + 0x1.8p23f) - 0x1.8p23f;
    int32_t q = (int32_t)r + y_zero;
    return q < y_lo ? y_lo : q > y_hi ? y_hi : q;
}

#ifdef __AVX2__
/* The same for 8 accumulators in a vector, mult in m: stores 8 bytes. */
static inline void qk_requant8(__m256i acc, __m256 m, int32_t y_zero, int32_t y_lo, int32_t y_hi,
                               int y_signed, uint8_t *y)
{
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), m);
    f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(-0x1p20f)), _mm256_set1_ps(0x1p20f));
    __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(y_zero));
    q = _mm256_max_epi32(_mm256_min_epi32(q, _mm256_set1_epi32(y_hi)), _mm256_set1_epi32(y_lo));
    __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    __m128i b8 = y_signed ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
    _mm_storel_epi64((__m128i *)y, b8);
}
#endif

/* Requantizes n accumulators into bytes y[0..n) (uint8 or int8: the value is
 * in range, its low byte is stored).  mult is per element if per_elem, else
 * mult[0] for all. */
static inline void qk_requant_row(const int32_t *acc, int64_t n, const float *mult,
                                  int per_elem, int32_t y_zero, int32_t y_lo, int32_t y_hi,
                                  int y_signed, uint8_t *y)
{
    int64_t i = 0;
#ifdef __AVX2__
    const __m256 m1 = _mm256_set1_ps(mult[0]);
    for (; i + 8 <= n; i += 8)
        qk_requant8(_mm256_loadu_si256((const __m256i *)(acc + i)),
                    per_elem ? _mm256_loadu_ps(mult + i) : m1, y_zero, y_lo, y_hi, y_signed,
                    y + i);
#else
    (void)y_signed;
#endif
    for (; i < n; i++)
        y[i] = (uint8_t)qk_requant1(acc[i], per_elem ? mult[i] : mult[0], y_zero, y_lo, y_hi);
}

/* Epilogue of one row of a tile: y[j] = requant(wrap(c[j] + add)) for
 * j < nc, add and mult per column (add_col[j], mult[j]) if per_col, else
 * add_row and mult[0].  A full row of QK_NR stays in vectors. */
static inline void qk_epilogue_row(int32_t *c, int64_t nc, int per_col, const int32_t *add_col,
                                   int32_t add_row, const float *mult, int32_t y_zero,
                                   int32_t y_lo, int32_t y_hi, int y_signed, uint8_t *y)
{
#ifdef __AVX2__
    if (nc == QK_NR) {
        for (int j = 0; j < QK_NR; j += 8) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(c + j));
            v = _mm256_add_epi32(v, per_col ? _mm256_loadu_si256((const __m256i *)(add_col + j))
                                            : _mm256_set1_epi32(add_row));
            qk_requant8(v, per_col ? _mm256_loadu_ps(mult + j) : _mm256_set1_ps(mult[0]), y_zero,
                        y_lo, y_hi, y_signed, y + j);
        }
        return;
    }
#endif
    for (int64_t j = 0; j < nc; j++)
        c[j] = qk_wrap_add(c[j], per_col ? add_col[j] : add_row);
    qk_requant_row(c, nc, mult, per_col, y_zero, y_lo, y_hi, y_signed, y);
}

/* ---- microkernels -------------------------------------------------------
 * c[r][j] (r < mr <= 4, j < 24) = wrap-around sum over the k groups of
 * row r of a (row stride lda elements) times column j of the panel b.
 * Every product sum is exact: S16 pair sums are at most 2 * 255 * 255;
 * U8S8 pair sums were proved to fit int16 by the packer. */

#ifdef __AVX2__
static inline __attribute__((always_inline)) __m256i qk_bcast32(const void *p)
{
    int32_t t;
    memcpy(&t, p, 4);
    return _mm256_set1_epi32(t);
}

/* vpmaddwd of a and the 32 bytes at p, p read by the instruction itself.
 * The 4 x 24 S16 kernel needs 12 accumulators, 3 panel vectors, the
 * broadcast and the product: 17 of AVX2's 16 ymm registers.  Given three
 * panel vectors as values, the compilers kept them and spilled accumulators
 * instead (a store-to-load chain per k pair that halved the kernel's
 * speed); the third panel vector is read from memory by each row's
 * instruction.  With AVX-512 VL (32 registers) it stays a value. */
static inline __attribute__((always_inline)) __m256i qk_madd_mem(__m256i a, const int16_t *p)
{
#if defined(__AVX512VL__)
    return _mm256_madd_epi16(a, _mm256_loadu_si256((const __m256i *)p));
#else
    __m256i r;
    __asm__("vpmaddwd %2, %1, %0" : "=x"(r) : "x"(a), "m"(*(const __m256i *)p));
    return r;
#endif
}

#endif

static inline __attribute__((always_inline)) void
qk_ukr_s16(const int16_t *a, int64_t lda, const int16_t *b, int64_t kpairs, int mr,
           int32_t (*c)[QK_NR])
{
#ifdef __AVX2__
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c10 = c00, c11 = c00,
            c12 = c00, c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    const int16_t *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
#pragma GCC unroll 2
    for (int64_t kk = 0; kk < kpairs; kk++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + 48 * kk));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 48 * kk + 16));
        const int16_t *b2 = b + 48 * kk + 32;
        __m256i av = qk_bcast32(a0 + 2 * kk);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(av, b0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(av, b1));
        c02 = _mm256_add_epi32(c02, qk_madd_mem(av, b2));
        if (mr > 1) {
            av = qk_bcast32(a1 + 2 * kk);
            c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(av, b0));
            c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(av, b1));
            c12 = _mm256_add_epi32(c12, qk_madd_mem(av, b2));
        }
        if (mr > 2) {
            av = qk_bcast32(a2 + 2 * kk);
            c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(av, b0));
            c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(av, b1));
            c22 = _mm256_add_epi32(c22, qk_madd_mem(av, b2));
        }
        if (mr > 3) {
            av = qk_bcast32(a3 + 2 * kk);
            c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(av, b0));
            c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(av, b1));
            c32 = _mm256_add_epi32(c32, qk_madd_mem(av, b2));
        }
    }
    /* the sums so far join after the loop (loaded before it, they made
     * the compilers keep a second copy of the loop, which spilled) */
    _mm256_storeu_si256((__m256i *)&c[0][0], c00);
    _mm256_storeu_si256((__m256i *)&c[0][8], c01);
    _mm256_storeu_si256((__m256i *)&c[0][16], c02);
    _mm256_storeu_si256((__m256i *)&c[1][0], c10);
    _mm256_storeu_si256((__m256i *)&c[1][8], c11);
    _mm256_storeu_si256((__m256i *)&c[1][16], c12);
    _mm256_storeu_si256((__m256i *)&c[2][0], c20);
    _mm256_storeu_si256((__m256i *)&c[2][8], c21);
    _mm256_storeu_si256((__m256i *)&c[2][16], c22);
    _mm256_storeu_si256((__m256i *)&c[3][0], c30);
    _mm256_storeu_si256((__m256i *)&c[3][8], c31);
    _mm256_storeu_si256((__m256i *)&c[3][16], c32);
#else
    /* The pair of a is repeated into a vector like the panel's so that the
     * compiler sees even/odd lanes times even/odd lanes (pmaddwd). */
    for (int r = 0; r < mr; r++) {
        uint32_t acc[QK_NR] = {0};
        const int16_t *ar = a + r * lda;
        for (int64_t kk = 0; kk < kpairs; kk++) {
            const int16_t *bk = b + 48 * kk;
            int16_t xv[2 * QK_NR];
            for (int j = 0; j < QK_NR; j++)
                memcpy(xv + 2 * j, ar + 2 * kk, 4);
            for (int j = 0; j < QK_NR; j++)
                acc[j] += (uint32_t)(xv[2 * j] * bk[2 * j] + xv[2 * j + 1] * bk[2 * j + 1]);
        }
        for (int j = 0; j < QK_NR; j++)
            c[r][j] = (int32_t)acc[j];
    }
#endif
}

/* U8S8: if a_unsigned, a holds the u8 operand (activations, broadcast) and
 * the panel the s8 one; otherwise a holds s8 (weights) and the panel u8.
 * Stores rows r < mr of c only. */
#if QK_VNNI
/* Lanes 0-7 hold row r's quad and lanes 8-15 row r + 1's: one 512-bit
 * vpdpbusd then serves 8 columns of two rows, against the panel's 8
 * columns repeated in both halves.  On CPUs whose vector units are 512 bits
 * wide (Zen 5, Intel server cores) that doubles the products per
 * instruction over 256-bit vectors; where 512-bit operations split in two
 * (Zen 4) it costs the same.  8 rows make 12 accumulators, enough to cover
 * the instruction's latency at two per cycle.  (The panel layout is the one
 * of every other build.) */
static inline __attribute__((always_inline)) __m512i qk_bcast_pair(const uint8_t *r0,
                                                                  const uint8_t *r1)
{
    int32_t t0, t1;
    memcpy(&t0, r0, 4);
    memcpy(&t1, r1, 4);
    return _mm512_mask_broadcastd_epi32(_mm512_set1_epi32(t0), 0xFF00, _mm_cvtsi32_si128(t1));
}

/* The sums of rows r < mr, pair p = r / 2 in acc[p][j] (columns 8j..8j+7;
 * lanes 0-7 row 2p, lanes 8-15 row 2p + 1). */
static inline __attribute__((always_inline)) void
qk_sums_u8s8_pairs(const uint8_t *a, int64_t lda, const uint8_t *b, int64_t kquads, int mr,
                   int a_unsigned, __m512i acc[QK_MR_U8 / 2][3])
{
    for (int p = 0; p < QK_MR_U8 / 2; p++)
        for (int j = 0; j < 3; j++)
            acc[p][j] = _mm512_setzero_si512();
    for (int64_t kq = 0; kq < kquads; kq++) {
        const uint8_t *bk = b + 96 * kq;
        __m512i bv[3];
        for (int j = 0; j < 3; j++)
            bv[j] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(bk + 32 * j)));
        for (int p = 0; p < QK_MR_U8 / 2; p++) {
            if (2 * p >= mr)
                break;
            const uint8_t *ar = a + 2 * p * lda + 4 * kq;
            const __m512i av = 2 * p + 1 < mr ? qk_bcast_pair(ar, ar + lda) : qk_bcast_pair(ar, ar);
            for (int j = 0; j < 3; j++)
                acc[p][j] = a_unsigned ? _mm512_dpbusd_epi32(acc[p][j], av, bv[j])
                                       : _mm512_dpbusd_epi32(acc[p][j], bv[j], av);
        }
    }
}

static inline __attribute__((always_inline)) void
qk_ukr_u8s8(const uint8_t *a, int64_t lda, const uint8_t *b, int64_t kquads, int mr,
            int a_unsigned, int32_t (*c)[QK_NR])
{
    __m512i acc[QK_MR_U8 / 2][3];
    qk_sums_u8s8_pairs(a, lda, b, kquads, mr, a_unsigned, acc);
    for (int p = 0; p < QK_MR_U8 / 2 && 2 * p < mr; p++)
        for (int j = 0; j < 3; j++) {
            _mm256_storeu_si256((__m256i *)&c[2 * p][8 * j], _mm512_castsi512_si256(acc[p][j]));
            if (2 * p + 1 < mr)
                _mm256_storeu_si256((__m256i *)&c[2 * p + 1][8 * j],
                                    _mm512_extracti64x4_epi64(acc[p][j], 1));
        }
}
#else
static inline __attribute__((always_inline)) void
qk_ukr_u8s8(const uint8_t *a, int64_t lda, const uint8_t *b, int64_t kquads, int mr,
            int a_unsigned, int32_t (*c)[QK_NR])
{
#ifdef __AVX2__
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[QK_MR][3];
    for (int r = 0; r < QK_MR; r++)
        for (int j = 0; j < 3; j++)
            acc[r][j] = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int64_t kq = 0; kq < kquads; kq++) {
        const uint8_t *bk = b + 96 * kq;
        for (int r = 0; r < QK_MR; r++) {
            if (r >= mr)
                break;
            const __m256i av = qk_bcast32(a + r * lda + 4 * kq);
            for (int j = 0; j < 3; j++) {
                const __m256i bv = _mm256_loadu_si256((const __m256i *)(bk + 32 * j));
                __m256i t = a_unsigned ? _mm256_maddubs_epi16(av, bv)
                                       : _mm256_maddubs_epi16(bv, av);
                acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(t, ones));
            }
        }
    }
    for (int r = 0; r < QK_MR && r < mr; r++)
        for (int j = 0; j < 3; j++)
            _mm256_storeu_si256((__m256i *)&c[r][8 * j], acc[r][j]);
#else
    /* as in qk_ukr_s16, the quad of a is repeated like the panel's */
    for (int r = 0; r < mr; r++) {
        uint32_t acc[QK_NR] = {0};
        const uint8_t *ar = a + r * lda;
        for (int64_t kq = 0; kq < kquads; kq++) {
            const uint8_t *bk = b + 96 * kq;
            uint8_t xv[4 * QK_NR];
            for (int j = 0; j < QK_NR; j++)
                memcpy(xv + 4 * j, ar + 4 * kq, 4);
            const uint8_t *u = a_unsigned ? xv : bk;
            const int8_t *w = (const int8_t *)(a_unsigned ? bk : xv);
            for (int j = 0; j < QK_NR; j++)
                acc[j] += (uint32_t)((u[4 * j] * w[4 * j] + u[4 * j + 1] * w[4 * j + 1]) +
                                     (u[4 * j + 2] * w[4 * j + 2] + u[4 * j + 3] * w[4 * j + 3]));
        }
        for (int j = 0; j < QK_NR; j++)
            c[r][j] = (int32_t)acc[j];
    }
#endif
}
#endif

/* Dispatches a microkernel with a compile-time row count. */
static inline void qk_ukr_s16_mr(const int16_t *a, int64_t lda, const int16_t *b,
                                 int64_t kpairs, int mr, int32_t (*c)[QK_NR])
{
    switch (mr) {
    case 4: qk_ukr_s16(a, lda, b, kpairs, 4, c); break;
    case 3: qk_ukr_s16(a, lda, b, kpairs, 3, c); break;
    case 2: qk_ukr_s16(a, lda, b, kpairs, 2, c); break;
    default: qk_ukr_s16(a, lda, b, kpairs, 1, c); break;
    }
}

/* mr in [1, QK_MR_U8] */
static inline void qk_ukr_u8s8_mr(const uint8_t *a, int64_t lda, const uint8_t *b,
                                  int64_t kquads, int mr, int a_unsigned, int32_t (*c)[QK_NR])
{
#define QK_U8S8_CASE(n)                                                                        \
    case n:                                                                                    \
        if (a_unsigned)                                                                        \
            qk_ukr_u8s8(a, lda, b, kquads, n, 1, c);                                           \
        else                                                                                   \
            qk_ukr_u8s8(a, lda, b, kquads, n, 0, c);                                           \
        break;
    switch (mr) {
#if QK_VNNI
        QK_U8S8_CASE(8)
        QK_U8S8_CASE(7)
        QK_U8S8_CASE(6)
        QK_U8S8_CASE(5)
#endif
        QK_U8S8_CASE(4)
        QK_U8S8_CASE(3)
        QK_U8S8_CASE(2)
    default:
        QK_U8S8_CASE(1)
    }
#undef QK_U8S8_CASE
}

/* d[i] = s[2i] for i < n, reading s[0 .. 2n-2] only. */
static inline void qk_gather2(uint8_t *d, const uint8_t *s, int64_t n)
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

/* ---- AMX-INT8 tiles ----------------------------------------------------------
 * Sums of 16 or 32 rows x one 24-column panel: the rows, [rows][lda] bytes,
 * are the first source of the tile product (A tiles of 16 rows x 64 k at
 * stride lda), the panel, [kp/4][24][4] bytes, the second (two B tiles of
 * 16 k quads at a stride of 96 bytes: columns 0-15, 64 bytes a row, and
 * 16-23, 32).  Tiles: C 0-3 (rows 0-15 and 16-31 x columns 0-15 and
 * 16-23), A 4-5, B 6-7, one configuration (qk_amx_begin) for any number of
 * calls.  The rows are unsigned and the panel signed (TDPBUSD: qgemm's
 * activations x weights) or the reverse (a_signed, TDPBSUD: qconv's weights
 * x im2col panels).  A k tail shorter than 64 is read from zero-padded
 * copies: a tile's shape is fixed by the configuration, and reloading it
 * would clear the sums.  c gets the int32 sums as rows of 24. */
#if QK_AMX
typedef struct qk_tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} qk_tilecfg;

enum { QK_AMX_K = 64 }; /* k of one A tile */

/* Whether this process may use the tiles: CPUID, the OS saving their state
 * and Linux's permission, asked once (octk_cpu_features) and kept, so that
 * every phase of a kernel agrees.  The emulation always may. */
static inline int qk_amx_ready(void)
{
#ifdef OCTK_AMX_EMULATE
    return 1;
#else
    static int state; /* 0: not asked yet; 1 yes; -1 no */
    int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    if (!s) {
        const unsigned need = OCTK_CPU_AMXTILE | OCTK_CPU_AMXINT8;
        s = (octk_cpu_features() & need) == need ? 1 : -1;
        __atomic_store_n(&state, s, __ATOMIC_RELEASE);
    }
    return s > 0;
#endif
}

static inline void qk_amx_begin(void)
{
    qk_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = t == 1 || t == 3 || t == 7 ? 32 : 64;
    }
    _tile_loadconfig(&cfg);
}

static inline void qk_amx_end(void) { _tile_release(); }

static inline __attribute__((always_inline)) void qk_amx_dp(int a_signed, int two)
{
    if (a_signed) {
        _tile_dpbsud(0, 4, 6);
        _tile_dpbsud(1, 4, 7);
        if (two) {
            _tile_dpbsud(2, 5, 6);
            _tile_dpbsud(3, 5, 7);
        }
    } else {
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        if (two) {
            _tile_dpbusd(2, 5, 6);
            _tile_dpbusd(3, 5, 7);
        }
    }
}

static inline void qk_amx_sums(const uint8_t *a, int64_t lda, int a_signed, const uint8_t *panel,
                        int64_t kp, int rows, int32_t (*c)[QK_NR])
{
    const int64_t kfull = kp / QK_AMX_K * QK_AMX_K, tail = kp - kfull;
    const int two = rows > 16;
    uint8_t at[2][16][QK_AMX_K], bt[16][4 * QK_NR];
    if (tail) {
        memset(at, 0, sizeof at);
        memset(bt, 0, sizeof bt);
        for (int r = 0; r < rows; r++)
            memcpy(at[r / 16][r % 16], a + r * lda + kfull, (size_t)tail);
        memcpy(bt, panel + kfull * QK_NR, (size_t)(tail * QK_NR));
    }
    _tile_zero(0);
    _tile_zero(1);
    if (two) {
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int64_t k = 0; k < kp; k += QK_AMX_K) {
        const int t = k == kfull;
        const uint8_t *ak = t ? &at[0][0][0] : a + k;
        const uint8_t *bk = t ? &bt[0][0] : panel + k * QK_NR;
        const int64_t as = t ? QK_AMX_K : lda;
        _tile_loadd(6, bk, 4 * QK_NR);
        _tile_loadd(7, bk + 64, 4 * QK_NR);
        _tile_loadd(4, ak, as);
        if (two)
            _tile_loadd(5, ak + 16 * as, as);
        qk_amx_dp(a_signed, two);
    }
    _tile_stored(0, &c[0][0], 4 * QK_NR);
    _tile_stored(1, &c[0][16], 4 * QK_NR);
    if (two) {
        _tile_stored(2, &c[16][0], 4 * QK_NR);
        _tile_stored(3, &c[16][16], 4 * QK_NR);
    }
}
#else
static inline int qk_amx_ready(void) { return 0; }
#endif

/* Picks a tile grid of (rows / mb) x (panels / pb) giving at least 16 tasks
 * when the problem allows (tiles of uneven cost, the last panels partial,
 * still balance over 2 threads): the largest mb in {64, 32, 16, 8, 4} and
 * pb in {4, 2, 1} (tried in that order) reaching 16, else the finest. */
static inline void qk_tile_grid(int64_t rows, int64_t panels, int64_t *mb, int64_t *pb)
{
    static const int64_t mbs[5] = {QK_MB_MAX, 32, 16, 8, 4}, pbs[3] = {4, 2, 1};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++) {
            *mb = mbs[i];
            *pb = pbs[j];
            if (qk_div_up(rows, *mb) * qk_div_up(panels, *pb) >= 16)
                return;
        }
}

#endif
