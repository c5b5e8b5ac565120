/*
 * qkernel_twins.h: what the tests of the integer kernels share
 * (test_qkernels.c, test_qkernels_conv.c): a fixed-seed PRNG, the scalar
 * twins written from the formula of octk.h, random quantization
 * parameters and data, running a kernel over its tasks split in several
 * ways with garbage in the workspace, and one GEMM or convolution case
 * checked bit for bit against its twin (gemm_case, conv_case).  Include
 * after <cmocka.h>.
 */
#ifndef OCTET_TESTS_QKERNEL_TWINS_H
#define OCTET_TESTS_QKERNEL_TWINS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "octk.h"

/* The instruction sets of the kernel build under test: packers may choose
 * the u8 x s8 path for them (with VNNI for any int8 weights).  The tests of
 * the AVX2 proof rule pass OCTK_ISA_AVX2 explicitly: what it packs is exact
 * on every build. */
#if defined(__AVX2__) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define BUILD_ISA (OCTK_ISA_AVX2 | OCTK_ISA_VNNI)
#elif defined(__AVX2__)
#define BUILD_ISA OCTK_ISA_AVX2
#else
#define BUILD_ISA 0u
#endif

/* ---- PRNG (splitmix64) ---------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static inline int64_t rng_range(rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static inline int64_t rng_pick(rng *r, const int64_t *v, int n)
{
    return v[rng_range(r, 0, n - 1)];
}

/* ---- reference twins ------------------------------------------------------- */

static inline int32_t ref_wrap(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }

static inline int32_t ref_requant(int32_t acc, float mult, int32_t zy, int32_t lo, int32_t hi)
{
    float prod = (float)acc * mult;
    double r = nearbyintf(prod);
    if (r > 1e12)
        r = 1e12;
    if (r < -1e12)
        r = -1e12;
    int64_t q = (int64_t)r + zy;
    return (int32_t)(q < lo ? lo : q > hi ? hi : q);
}

static inline int32_t ld8(const void *p, int is_signed, int64_t i)
{
    return is_signed ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
}

/* ---- random quantization parameters ---------------------------------------- */

typedef struct qparams {
    int x_signed, w_signed, y_signed;
    int32_t x_zero, y_zero, y_lo, y_hi;
    int small_w;     /* 1: weights in [-64, 64], zero points 0 (the U8S8 path);
                      * 2: pairs (2j, 2j+1) with |w0| + |w1| == 128 exactly;
                      * 3: full-range int8, zero points 0 (U8S8 with VNNI) */
    int wrap;        /* extreme weights and activations, bias near INT32_MAX */
} qparams;

static inline int32_t zero_of(rng *r, int is_signed)
{
    return is_signed ? (int32_t)rng_range(r, -128, 127) : (int32_t)rng_range(r, 0, 255);
}

static inline qparams random_qparams(rng *r)
{
    qparams q;
    q.x_signed = (int)rng_range(r, 0, 1);
    q.w_signed = (int)rng_range(r, 0, 1);
    q.y_signed = (int)rng_range(r, 0, 1);
    q.x_zero = zero_of(r, q.x_signed);
    q.y_zero = zero_of(r, q.y_signed);
    q.y_lo = q.y_signed ? -128 : 0;
    q.y_hi = q.y_signed ? 127 : 255;
    if (rng_range(r, 0, 2) == 0) { /* fused Relu / Clip: narrower range */
        q.y_lo = (int32_t)rng_range(r, q.y_lo, q.y_zero < q.y_hi ? q.y_zero : q.y_hi);
        q.y_hi = (int32_t)rng_range(r, q.y_lo, q.y_hi);
    }
    q.small_w = rng_range(r, 0, 2) == 0;
    q.wrap = 0;
    return q;
}

/* Fills n weights of channel-major rows (row = channel) and their zero points. */
static inline void random_weights(rng *r, const qparams *q, uint8_t *w, int64_t rows,
                                  int64_t per_row, int32_t *zero)
{
    for (int64_t i = 0; i < rows; i++)
        zero[i] = q->small_w ? 0 : zero_of(r, q->w_signed);
    if (q->wrap) { /* w - zero = 255 mostly */
        for (int64_t i = 0; i < rows; i++)
            zero[i] = q->w_signed ? -128 : 0;
        for (int64_t i = 0; i < rows * per_row; i++)
            w[i] = (uint8_t)(rng_range(r, 0, 15) ? (q->w_signed ? 127 : 255) : rng_next(r));
        return;
    }
    if (q->small_w == 2) {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t k = 0; k < per_row; k += 2) {
                int32_t m0 = (int32_t)rng_range(r, 0, 128), w0 = rng_range(r, 0, 1) ? -m0 : m0;
                int32_t w1 = rng_range(r, 0, 1) ? -(128 - m0) : 128 - m0;
                w0 = w0 > 127 ? -128 : w0;
                w1 = w1 > 127 ? -128 : w1;
                w[i * per_row + k] = (uint8_t)w0;
                if (k + 1 < per_row)
                    w[i * per_row + k + 1] = (uint8_t)w1;
            }
        return;
    }
    for (int64_t i = 0; i < rows * per_row; i++) {
        int32_t v = q->small_w == 3 ? (int32_t)rng_range(r, -128, 127)
                  : q->small_w ? (int32_t)rng_range(r, q->w_signed ? -64 : 0, 64)
                               : zero_of(r, q->w_signed);
        w[i] = (uint8_t)v;
    }
}

static inline void random_bytes(rng *r, uint8_t *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next(r);
}

/* Activations: random bytes, or mostly the extremes of the type when
 * extreme (the largest pair sums for the U8S8 path). */
static inline void random_acts(rng *r, uint8_t *p, int64_t n, int extreme, int is_signed)
{
    random_bytes(r, p, n);
    if (extreme)
        for (int64_t i = 0; i < n; i++)
            if (rng_range(r, 0, 7))
                p[i] = (uint8_t)(rng_range(r, 0, 3) ? (is_signed ? 127 : 255)
                                                    : (is_signed ? 128 : 0));
}

/* Multipliers: usual, tiny, huge (saturating both ways) or inf-producing. */
static inline float random_mult(rng *r)
{
    switch (rng_range(r, 0, 9)) {
    case 0: return 1e-30f;
    case 1: return 1e3f;
    case 2: return 1e30f;
    case 3: return (float)ldexp(1.0, -(int)rng_range(r, 10, 20));  /* exact ties happen */
    default: return (float)(exp(-(double)rng_range(r, 0, 14000) / 1000.0));
    }
}

/* ---- running over tasks ------------------------------------------------------ */

typedef int64_t (*tasks_fn)(const void *p, int phase);
typedef void (*run_fn)(const void *p, int phase, int64_t begin, int64_t end);

static inline int64_t qgemm_tasks_v(const void *p, int ph) { return octk_qgemm_tasks(p, ph); }
static inline int64_t qconv_tasks_v(const void *p, int ph) { return octk_qconv_tasks(p, ph); }
static inline int64_t qdw_tasks_v(const void *p, int ph) { return octk_qdwconv_tasks(p, ph); }

static inline void qgemm_run_v(const void *p, int ph, int64_t b, int64_t e)
{
    octk_qgemm_run(p, ph, b, e);
}

static inline void qconv_run_v(const void *p, int ph, int64_t b, int64_t e)
{
    octk_qconv_run(p, ph, b, e);
}

static inline void qdw_run_v(const void *p, int ph, int64_t b, int64_t e)
{
    octk_qdwconv_run(p, ph, b, e);
}

/* Runs both phases split per mode: 0 one range; 1 one task at a time,
 * backwards; 2 random pieces in random order. */
static inline void run_split(const void *p, tasks_fn tasks, run_fn run, int mode, rng *r)
{
    for (int ph = 0; ph < OCTK_PHASES; ph++) {
        int64_t t = tasks(p, ph);
        if (mode == 0) {
            run(p, ph, 0, t);
        } else if (mode == 1) {
            for (int64_t i = t - 1; i >= 0; i--)
                run(p, ph, i, i + 1);
        } else {
            int64_t cuts[66];
            int n = 0;
            cuts[n++] = 0;
            for (int64_t i = 1; i < t && n < 64; i++)
                if (rng_range(r, 0, 2) == 0)
                    cuts[n++] = i;
            cuts[n] = t;
            int order[65];
            for (int i = 0; i < n; i++)
                order[i] = i;
            for (int i = n - 1; i > 0; i--) {
                int j = (int)rng_range(r, 0, i), tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
            }
            for (int i = 0; i < n; i++)
                run(p, ph, cuts[order[i]], cuts[order[i] + 1]);
        }
    }
}

/* n bytes (64-byte aligned, as the kernels' contract says, and no more, so
 * that AddressSanitizer sees reads past the declared size) of garbage. */
static inline void *alloc_garbage(size_t n, rng *r)
{
    uint8_t *p = aligned_alloc(64, n ? (n + 63) / 64 * 64 : 64);
    assert_non_null(p);
    random_bytes(r, p, (int64_t)n);
    return p;
}

/* Runs the kernel in all three split modes, with garbage in the workspace
 * and output each time, and checks each output against expect (n bytes,
 * positions with mask[i] == 0 must keep their garbage). */
static inline void check_all_splits(void *p, void **work, size_t work_size, void **y, size_t n,
                                    const uint8_t *expect, tasks_fn tasks, run_fn run, rng *r)
{
    uint8_t *guard = malloc(n + 1);
    assert_non_null(guard);
    for (int mode = 0; mode < 3; mode++) {
        *work = alloc_garbage(work_size, r);
        random_bytes(r, *y, (int64_t)n);
        memcpy(guard, *y, n);
        run_split(p, tasks, run, mode, r);
        const uint8_t *got = *y;
        for (size_t i = 0; i < n; i++) {
            int want = expect[2 * i + 1] ? expect[2 * i] : guard[i];
            if (got[i] != want) {
                print_error("mode %d byte %zu: got %d want %d\n", mode, i, got[i], want);
                fail();
            }
        }
        free(*work);
        *work = NULL;
    }
    free(guard);
}

/* ---- qgemm --------------------------------------------------------------------- */

/* One qgemm case; forced_path 0 = whatever the packer picks. */
static inline void gemm_case(rng *r, int64_t M, int64_t N, int64_t K, qparams q, int with_bias,
                             int transposed_b, int *path_out)
{
    int64_t lda = K + rng_range(r, 0, 3), ldy = N + rng_range(r, 0, 2);
    uint8_t *a = malloc((size_t)(M * lda + 1)), *b = malloc((size_t)(K * N + 1));
    int32_t *bz = malloc((size_t)N * 4 + 4), *bias = malloc((size_t)N * 4 + 4);
    float *mult = malloc((size_t)N * 4 + 4);
    assert_true(a && b && bz && bias && mult);
    random_acts(r, a, M * lda, q.small_w == 2, q.x_signed);
    /* b as rows of N weights per column n: generate per column then place */
    uint8_t *bt = malloc((size_t)(K * N + 1));
    assert_non_null(bt);
    random_weights(r, &q, bt, N, K, bz);
    int64_t sk = transposed_b ? 1 : N, sn = transposed_b ? K : 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            b[k * sk + n * sn] = bt[n * K + k];
    for (int64_t n = 0; n < N; n++) {
        bias[n] = (int32_t)(uint32_t)rng_next(r);
        if (rng_range(r, 0, 1))
            bias[n] >>= rng_range(r, 8, 30);
        mult[n] = random_mult(r);
    }
    void *pb = malloc(octk_qgemm_packed_b_size(K, N));
    assert_non_null(pb);
    octk_qgemm_pack_b(pb, b, q.w_signed, bz, K, N, sk, sn, BUILD_ISA);
    if (path_out)
        *path_out = octk_qpacked_path(pb);
    if (q.small_w && (q.w_signed || q.small_w == 1))
        assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);

    size_t ny = (size_t)(M * ldy);
    uint8_t *expect = calloc(2 * ny + 2, 1);
    assert_non_null(expect);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            int64_t s = with_bias ? bias[n] : 0;
            for (int64_t k = 0; k < K; k++)
                s += (int64_t)(ld8(a, q.x_signed, m * lda + k) - q.x_zero) *
                     (ld8(b, q.w_signed, k * sk + n * sn) - bz[n]);
            expect[2 * (m * ldy + n)] =
                (uint8_t)ref_requant(ref_wrap(s), mult[n], q.y_zero, q.y_lo, q.y_hi);
            expect[2 * (m * ldy + n) + 1] = 1;
        }
    void *y = malloc(ny + 1);
    assert_non_null(y);
    octk_qgemm p = {.M = M, .N = N, .K = K, .lda = lda, .ldy = ldy, .a_signed = q.x_signed,
                    .a_zero = q.x_zero, .y_signed = q.y_signed, .y_zero = q.y_zero,
                    .y_lo = q.y_lo, .y_hi = q.y_hi, .a = a, .y = y, .b = pb,
                    .bias = with_bias ? bias : NULL, .mult = mult};
    check_all_splits(&p, &p.work, octk_qgemm_work_size(&p), &p.y, ny, expect, qgemm_tasks_v,
                     qgemm_run_v, r);
    free(a), free(b), free(bt), free(bz), free(bias), free(mult), free(pb), free(expect), free(y);
}

/* ---- qconv ------------------------------------------------------------------------ */

typedef struct conv_geom {
    int64_t C, H, W, M, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
} conv_geom;

static inline octk_conv_shape shape_of(const conv_geom *g, int depthwise)
{
    octk_conv_shape s = {.C = g->C, .H = g->H, .W = g->W, .M = depthwise ? g->C : g->M,
                         .KH = g->KH, .KW = g->KW, .SH = g->SH, .SW = g->SW, .DH = g->DH,
                         .DW = g->DW, .PT = g->PT, .PL = g->PL};
    s.OH = (g->H + g->PT + g->PB - g->DH * (g->KH - 1) - 1) / g->SH + 1;
    s.OW = (g->W + g->PL + g->PR - g->DW * (g->KW - 1) - 1) / g->SW + 1;
    return s;
}

/* Reference of both convolutions: depthwise uses filter c for channel c. */
static inline int32_t conv_ref_acc(const octk_conv_shape *s, const void *x, const qparams *q,
                                   const uint8_t *w, const int32_t *wz, const int32_t *bias, int dw,
                                   int64_t m, int64_t oh, int64_t ow)
{
    int64_t sum = bias ? bias[m] : 0, taps = s->KH * s->KW;
    for (int64_t c = dw ? m : 0; c < (dw ? m + 1 : s->C); c++)
        for (int64_t kh = 0; kh < s->KH; kh++)
            for (int64_t kw = 0; kw < s->KW; kw++) {
                int64_t ih = oh * s->SH - s->PT + kh * s->DH, iw = ow * s->SW - s->PL + kw * s->DW;
                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
                    continue;
                int64_t wi = dw ? m * taps + kh * s->KW + kw
                                : ((m * s->C + c) * s->KH + kh) * s->KW + kw;
                sum += (int64_t)(ld8(x, q->x_signed, (c * s->H + ih) * s->W + iw) - q->x_zero) *
                       (ld8(w, q->w_signed, wi) - wz[m]);
            }
    return ref_wrap(sum);
}

static inline void conv_case(rng *r, const conv_geom *g, qparams q, int with_bias, int dw,
                             int *path_out)
{
    octk_conv_shape s = shape_of(g, dw);
    if (s.OH <= 0 || s.OW <= 0)
        return;
    int64_t taps = s.KH * s.KW, K = dw ? taps : s.C * taps, M = s.M;
    int64_t nx = s.C * s.H * s.W, ny = M * s.OH * s.OW;
    uint8_t *x = malloc((size_t)nx), *w = malloc((size_t)(M * K));
    int32_t *wz = malloc((size_t)M * 4), *bias = malloc((size_t)M * 4);
    float *mult = malloc((size_t)M * 4);
    assert_true(x && w && wz && bias && mult);
    random_acts(r, x, nx, q.small_w == 2 || q.wrap, q.x_signed);
    random_weights(r, &q, w, M, K, wz);
    for (int64_t m = 0; m < M; m++) {
        bias[m] = q.wrap ? INT32_MAX - (int32_t)rng_range(r, 0, 1000)
                         : (int32_t)(uint32_t)rng_next(r) >> rng_range(r, 4, 31);
        mult[m] = random_mult(r);
    }
    size_t pwsize = dw ? octk_qdwconv_packed_w_size(&s) : octk_qconv_packed_w_size(M, K);
    void *pw = malloc(pwsize);
    assert_non_null(pw);
    if (dw)
        octk_qdwconv_pack_w(pw, w, q.w_signed, wz, &s, BUILD_ISA);
    else
        octk_qconv_pack_w(pw, w, q.w_signed, wz, M, K, BUILD_ISA);
    if (path_out)
        *path_out = octk_qpacked_path(pw);
    if (!dw && q.small_w && (q.w_signed || q.small_w == 1))
        assert_int_equal(octk_qpacked_path(pw), OCTK_PATH_U8S8);
    uint8_t *expect = malloc((size_t)(2 * ny));
    assert_non_null(expect);
    for (int64_t m = 0; m < M; m++)
        for (int64_t oh = 0; oh < s.OH; oh++)
            for (int64_t ow = 0; ow < s.OW; ow++) {
                int32_t acc =
                    conv_ref_acc(&s, x, &q, w, wz, with_bias ? bias : NULL, dw, m, oh, ow);
                int64_t i = (m * s.OH + oh) * s.OW + ow;
                expect[2 * i] = (uint8_t)ref_requant(acc, mult[m], q.y_zero, q.y_lo, q.y_hi);
                expect[2 * i + 1] = 1;
            }
    void *y = malloc((size_t)ny);
    assert_non_null(y);
    octk_qconv p = {.s = s, .x_signed = q.x_signed, .x_zero = q.x_zero, .y_signed = q.y_signed,
                    .y_zero = q.y_zero, .y_lo = q.y_lo, .y_hi = q.y_hi, .x = x, .y = y,
                    .w = pw, .bias = with_bias ? bias : NULL, .mult = mult};
    if (dw)
        check_all_splits(&p, &p.work, octk_qdwconv_work_size(&p), &p.y, (size_t)ny, expect,
                         qdw_tasks_v, qdw_run_v, r);
    else
        check_all_splits(&p, &p.work, octk_qconv_work_size(&p), &p.y, (size_t)ny, expect,
                         qconv_tasks_v, qconv_run_v, r);
    free(x), free(w), free(wz), free(bias), free(mult), free(pw), free(expect), free(y);
}

static inline conv_geom random_geom(rng *r, int dw)
{
    static const int64_t ks[][2] = {{1, 1}, {3, 3}, {5, 5}, {1, 7}, {7, 1}, {3, 3}, {2, 3}};
    static const int64_t sizes[] = {1, 2, 3, 7, 15, 16, 17, 31, 33};
    static const int64_t chans[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 65};
    conv_geom g;
    int kc = (int)rng_range(r, 0, 6);
    g.KH = ks[kc][0];
    g.KW = ks[kc][1];
    g.C = rng_pick(r, chans, dw ? 10 : 8);
    g.M = rng_pick(r, chans, 10);
    g.H = rng_pick(r, sizes, 9);
    g.W = rng_pick(r, sizes, 9);
    g.SH = rng_range(r, 1, 2);
    g.SW = rng_range(r, 1, 2);
    if (rng_range(r, 0, 7) == 0) {
        g.SH = 3;
        g.SW = rng_range(r, 1, 3);
    }
    g.DH = rng_range(r, 0, 3) == 0 ? 2 : 1;
    g.DW = rng_range(r, 0, 3) == 0 ? 2 : 1;
    g.PT = rng_range(r, 0, g.KH / 2 + 1);
    g.PB = rng_range(r, 0, g.KH / 2);
    g.PL = rng_range(r, 0, g.KW / 2 + 1);
    g.PR = rng_range(r, 0, g.KW / 2);
    return g;
}

#endif
