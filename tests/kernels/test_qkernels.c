/*
 * test_qkernels.c: the integer kernels of src/codegen/kernels (octk_qgemm_*,
 * octk_qconv_*, octk_qdwconv_*, octk_qpacked_path) against plain scalar
 * twins written here from the formula of octk.h:
 *   acc = wrap_int32(bias + sum (x - x_zero) * (w - w_zero))   (int64, then wrap)
 *   y   = clamp(nearbyintf((float)acc * mult) + y_zero, y_lo, y_hi).
 * Every comparison is bit for bit.  Data are random from a fixed-seed PRNG;
 * shapes are awkward sizes; every run is also split over tasks in several
 * ways (one range, one task at a time backwards, random pieces in random
 * order) with garbage in the workspace, and must give identical bytes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

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

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static int64_t rng_range(rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static int64_t rng_pick(rng *r, const int64_t *v, int n) { return v[rng_range(r, 0, n - 1)]; }

/* ---- reference twins ------------------------------------------------------- */

static int32_t ref_wrap(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }

static int32_t ref_requant(int32_t acc, float mult, int32_t zy, int32_t lo, int32_t hi)
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

static int32_t ld8(const void *p, int is_signed, int64_t i)
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

static int32_t zero_of(rng *r, int is_signed)
{
    return is_signed ? (int32_t)rng_range(r, -128, 127) : (int32_t)rng_range(r, 0, 255);
}

static qparams random_qparams(rng *r)
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
static void random_weights(rng *r, const qparams *q, uint8_t *w, int64_t rows, int64_t per_row,
                           int32_t *zero)
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

static void random_bytes(rng *r, uint8_t *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next(r);
}

/* Activations: random bytes, or mostly the extremes of the type when
 * extreme (the largest pair sums for the U8S8 path). */
static void random_acts(rng *r, uint8_t *p, int64_t n, int extreme, int is_signed)
{
    random_bytes(r, p, n);
    if (extreme)
        for (int64_t i = 0; i < n; i++)
            if (rng_range(r, 0, 7))
                p[i] = (uint8_t)(rng_range(r, 0, 3) ? (is_signed ? 127 : 255)
                                                    : (is_signed ? 128 : 0));
}

/* Multipliers: usual, tiny, huge (saturating both ways) or inf-producing. */
static float random_mult(rng *r)
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

static int64_t qgemm_tasks_v(const void *p, int ph) { return octk_qgemm_tasks(p, ph); }
static int64_t qconv_tasks_v(const void *p, int ph) { return octk_qconv_tasks(p, ph); }
static int64_t qdw_tasks_v(const void *p, int ph) { return octk_qdwconv_tasks(p, ph); }

static void qgemm_run_v(const void *p, int ph, int64_t b, int64_t e)
{
    octk_qgemm_run(p, ph, b, e);
}

static void qconv_run_v(const void *p, int ph, int64_t b, int64_t e)
{
    octk_qconv_run(p, ph, b, e);
}

static void qdw_run_v(const void *p, int ph, int64_t b, int64_t e)
{
    octk_qdwconv_run(p, ph, b, e);
}

/* Runs both phases split per mode: 0 one range; 1 one task at a time,
 * backwards; 2 random pieces in random order. */
static void run_split(const void *p, tasks_fn tasks, run_fn run, int mode, rng *r)
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
static void *alloc_garbage(size_t n, rng *r)
{
    uint8_t *p = aligned_alloc(64, n ? (n + 63) / 64 * 64 : 64);
    assert_non_null(p);
    random_bytes(r, p, (int64_t)n);
    return p;
}

/* Runs the kernel in all three split modes, with garbage in the workspace
 * and output each time, and checks each output against expect (n bytes,
 * positions with mask[i] == 0 must keep their garbage). */
static void check_all_splits(void *p, void **work, size_t work_size, void **y, size_t n,
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
static void gemm_case(rng *r, int64_t M, int64_t N, int64_t K, qparams q, int with_bias,
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

static const int64_t awkward[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 100};
enum { N_AWKWARD = sizeof awkward / sizeof awkward[0] };

static void qgemm_matches_scalar_twin_on_awkward_sizes(void **state)
{
    rng r = {1};
    for (int i = 0; i < N_AWKWARD; i++)
        for (int j = 0; j < N_AWKWARD; j++) {
            int64_t K = rng_pick(&r, awkward, N_AWKWARD);
            gemm_case(&r, awkward[i], awkward[j], K, random_qparams(&r), (int)rng_range(&r, 0, 1),
                      (int)rng_range(&r, 0, 1), NULL);
        }
}

static void qgemm_large_shapes_match_scalar_twin(void **state)
{
    rng r = {2};
    gemm_case(&r, 130, 257, 300, random_qparams(&r), 1, 0, NULL);
    qparams q = random_qparams(&r);
    q.small_w = 1;
    gemm_case(&r, 67, 201, 517, q, 1, 1, NULL);
}

/* Weights with |w| <= 64 and zero points 0 run on U8S8, a pair of 127s
 * forces S16; both exact. */
static void qgemm_path_choice_is_exact_both_ways(void **state)
{
    rng r = {3};
    int path;
    for (int sgn = 0; sgn < 2; sgn++) {
        qparams q = random_qparams(&r);
        q.small_w = 1;
        q.w_signed = 1;
        q.x_signed = sgn;
        q.x_zero = zero_of(&r, sgn);
        gemm_case(&r, 33, 65, 63, q, 1, 0, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
    }
    /* a pair of 127s: 255 * 254 > 32767 */
    int64_t K = 8, N = 3;
    int8_t b[24];
    int32_t bz[3] = {0, 0, 0};
    for (int i = 0; i < 24; i++)
        b[i] = (int8_t)((i * 7) % 9 - 4);
    b[2 * N + 1] = 127; /* b(2, 1) */
    b[3 * N + 1] = 127; /* b(3, 1): the pair (2, 3) of column 1 */
    uint8_t pb[4096];
    assert_true(octk_qgemm_packed_b_size(K, N) <= sizeof pb);
    octk_qgemm_pack_b(pb, b, 1, bz, K, N, N, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    /* same pair but in different pairs (k = 1 and 2): still U8S8 */
    int8_t b2[24];
    memcpy(b2, b, sizeof b2);
    b2[3 * N + 1] = 0;
    b2[1 * N + 1] = 127;
    b2[0 * N + 1] = 1;
    octk_qgemm_pack_b(pb, b2, 1, bz, K, N, N, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);
    /* exactness on the S16 side: a big case with full-range weights */
    qparams q = random_qparams(&r);
    q.small_w = 0;
    q.w_signed = 1;
    gemm_case(&r, 17, 33, 101, q, 1, 0, &path);
    assert_true(path == OCTK_PATH_S16 || (BUILD_ISA & OCTK_ISA_VNNI));
}


/* acc beyond int32 wraps around (K large, extreme values), on both paths. */
static void qgemm_accumulator_wraps_int32(void **state)
{
    rng r = {4};
    for (int small = 0; small < 2; small++) {
        int64_t M = 2, N = 3, K = small ? 140001 : 40001;
        uint8_t *a = malloc((size_t)(M * K)), *b = malloc((size_t)(K * N));
        assert_true(a && b);
        for (int64_t i = 0; i < M * K; i++)
            a[i] = (uint8_t)(rng_range(&r, 0, 9) ? 255 : rng_next(&r));
        for (int64_t i = 0; i < K * N; i++)
            b[i] = small ? (uint8_t)(int8_t)(rng_range(&r, 0, 9) ? 64 : -64)
                         : (uint8_t)(rng_range(&r, 0, 9) ? 0 : rng_next(&r));
        int32_t bz[3] = {small ? 0 : 255, small ? 0 : 255, small ? 0 : 254};
        int32_t bias[3] = {INT32_MAX, INT32_MIN, 12345};
        float mult[3] = {1e-7f, 3e-8f, 2.5e-8f};
        int w_signed = small;
        void *pb = malloc(octk_qgemm_packed_b_size(K, N));
        assert_non_null(pb);
        octk_qgemm_pack_b(pb, b, w_signed, bz, K, N, N, 1, BUILD_ISA);
        assert_int_equal(octk_qpacked_path(pb), small ? OCTK_PATH_U8S8 : OCTK_PATH_S16);
        uint8_t y[6], expect[12];
        int wrapped = 0;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                int64_t s = bias[n];
                for (int64_t k = 0; k < K; k++)
                    s += (int64_t)a[m * K + k] * (ld8(b, w_signed, k * N + n) - bz[n]);
                wrapped |= s != (int64_t)ref_wrap(s);
                expect[2 * (m * N + n)] = (uint8_t)ref_requant(ref_wrap(s), mult[n], 0, -128, 127);
                expect[2 * (m * N + n) + 1] = 1;
            }
        assert_true(wrapped);
        octk_qgemm p = {.M = M, .N = N, .K = K, .lda = K, .ldy = N, .a_signed = 0, .a_zero = 0,
                        .y_signed = 1, .y_zero = 0, .y_lo = -128, .y_hi = 127, .a = a, .y = y,
                        .b = pb, .bias = bias, .mult = mult};
        void *yp = y;
        check_all_splits(&p, &p.work, octk_qgemm_work_size(&p), &yp, 6, expect, qgemm_tasks_v,
                         qgemm_run_v, &r);
        free(a), free(b), free(pb);
    }
}

/* ---- qconv ------------------------------------------------------------------------ */

typedef struct conv_geom {
    int64_t C, H, W, M, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
} conv_geom;

static octk_conv_shape shape_of(const conv_geom *g, int depthwise)
{
    octk_conv_shape s = {.C = g->C, .H = g->H, .W = g->W, .M = depthwise ? g->C : g->M,
                         .KH = g->KH, .KW = g->KW, .SH = g->SH, .SW = g->SW, .DH = g->DH,
                         .DW = g->DW, .PT = g->PT, .PL = g->PL};
    s.OH = (g->H + g->PT + g->PB - g->DH * (g->KH - 1) - 1) / g->SH + 1;
    s.OW = (g->W + g->PL + g->PR - g->DW * (g->KW - 1) - 1) / g->SW + 1;
    return s;
}

/* Reference of both convolutions: depthwise uses filter c for channel c. */
static int32_t conv_ref_acc(const octk_conv_shape *s, const void *x, const qparams *q,
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

static void conv_case(rng *r, const conv_geom *g, qparams q, int with_bias, int dw, int *path_out)
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

static conv_geom random_geom(rng *r, int dw)
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

static void qconv_matches_scalar_twin_on_random_shapes(void **state)
{
    rng r = {5};
    for (int i = 0; i < 250; i++) {
        conv_geom g = random_geom(&r, 0);
        conv_case(&r, &g, random_qparams(&r), (int)rng_range(&r, 0, 1), 0, NULL);
    }
}

static void qconv_common_shapes_match_scalar_twin(void **state)
{
    rng r = {6};
    const conv_geom gs[] = {
        {16, 20, 19, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   /* 3x3 same */
        {17, 21, 22, 65, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1},   /* 3x3 stride 2, asymmetric pad */
        {64, 9, 10, 31, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},    /* 1x1 */
        {3, 33, 31, 16, 5, 5, 1, 2, 2, 1, 3, 2, 1, 4},    /* 5x5 dilated, strides mixed */
        {15, 17, 33, 7, 1, 7, 1, 1, 1, 2, 0, 6, 0, 3},    /* 1x7 dilated */
        {7, 5, 5, 100, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4},     /* pad beyond the kernel */
        /* squeezenet-like: im2col rows read straight from the input, rows
         * crossing output rows, a last panel of 1 pixel (55*55 = 126*24+1) */
        {19, 55, 55, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},    /* 1x1, M small */
        {33, 13, 13, 300, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},  /* 1x1, M > 256: phase 0 */
        {5, 27, 27, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},     /* 3x3 same, 27x27 */
        {3, 71, 70, 9, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0},     /* 3x3 stride 2, long rows */
        {6, 40, 45, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 3},    /* 1x1, padding right: OW != W */
        {4, 9, 100, 6, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1},     /* rows wider than a task */
        {8, 50, 50, 12, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0},    /* 1x1 stride 2 */
        /* phase planes: a 2x2 stride-4 patch conv (taps in 1 of 16 planes),
         * a dilated stride-2 3x3 (taps of one kernel row in one plane), a
         * grid of 13 + 2 columns over 1-pixel rows */
        {5, 23, 29, 9, 2, 2, 4, 4, 1, 1, 1, 1, 0, 2},
        {6, 31, 26, 11, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2},
        {9, 1, 13, 17, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1},
        /* dilation 24 (DeepLab-like): 48 skipped columns a grid row, so
         * whole panels and panel pairs hold no pixel */
        {5, 30, 60, 8, 3, 3, 1, 1, 24, 24, 24, 24, 24, 24},
        {3, 9, 20, 6, 3, 3, 1, 1, 30, 30, 30, 30, 30, 30},
    };
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++)
        for (int small = 0; small < 2; small++) {
            qparams q = random_qparams(&r);
            q.small_w = small;
            conv_case(&r, &gs[i], q, 1, 0, NULL);
        }
}

static void qconv_path_choice_is_exact_both_ways(void **state)
{
    rng r = {7};
    conv_geom g = {13, 11, 12, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    int path;
    qparams q = random_qparams(&r);
    q.small_w = 1;
    q.w_signed = 1;
    conv_case(&r, &g, q, 1, 0, &path);
    assert_int_equal(path, OCTK_PATH_U8S8);
    /* pair of 127s in row 0, pair (0, 1) */
    int8_t w[2 * 10];
    int32_t wz[2] = {0, 0};
    memset(w, 3, sizeof w);
    w[0] = 127;
    w[1] = 127;
    uint8_t pw[4096];
    octk_qconv_pack_w(pw, w, 1, wz, 2, 10, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pw), OCTK_PATH_S16);
    /* a nonzero weight zero point forces S16 */
    w[1] = 0;
    octk_qconv_pack_w(pw, w, 1, wz, 2, 10, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pw), OCTK_PATH_U8S8);
    wz[1] = 1;
    octk_qconv_pack_w(pw, w, 1, wz, 2, 10, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pw), OCTK_PATH_S16);
    q.small_w = 0;
    conv_case(&r, &g, q, 1, 0, &path);
    assert_true(path == OCTK_PATH_S16 || (BUILD_ISA & OCTK_ISA_VNNI));
}

/* Pairs with |w0| + |w1| == 128 (the largest vpmaddubsw cannot saturate on)
 * take U8S8 and stay exact with extreme activations; 129 takes S16. */
static void u8s8_boundary_pairs_are_exact(void **state)
{
    rng r = {11};
    for (int i = 0; i < 8; i++) {
        qparams q = random_qparams(&r);
        q.small_w = 2;
        q.w_signed = 1;
        int path;
        gemm_case(&r, 5 + i, 31 + 3 * i, 64 + 7 * i, q, i & 1, i & 2, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
        conv_geom g = {5 + i, 9, 8 + i, 7 + 5 * i, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &g, q, i & 1, 0, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
    }
    int8_t b[4] = {64, 0, 65, 0}; /* K = 2, N = 2: column 0 pair (64, 65) */
    int32_t bz[2] = {0, 0};
    uint8_t pb[1024];
    octk_qgemm_pack_b(pb, b, 1, bz, 2, 2, 2, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    b[2] = -64;
    octk_qgemm_pack_b(pb, b, 1, bz, 2, 2, 2, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);
    int8_t w[4] = {-128, 1, 0, 0};
    octk_qconv_pack_w(pb, w, 1, bz, 2, 2, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    w[1] = 0;
    octk_qconv_pack_w(pb, w, 1, bz, 2, 2, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);
}

/* Sums beyond int32 wrap around: a convolution with K = 5000*9 and extreme
 * values, and a depthwise one whose bias is near INT32_MAX. */
static void qconv_accumulators_wrap_int32(void **state)
{
    rng r = {12};
    qparams q = random_qparams(&r);
    q.small_w = 0;
    q.wrap = 1;
    q.x_signed = 0;
    q.x_zero = 0;
    conv_geom g = {5000, 3, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < 2; i++) {
        q.w_signed = i;
        conv_case(&r, &g, q, 1, 0, NULL);
        conv_geom d = {19, 9, 40, 19, 3, 3, 1, 1 + i, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &d, q, 1, 1, NULL);
    }
}

/* ---- qdwconv ----------------------------------------------------------------------- */

static void qdwconv_matches_scalar_twin_on_random_shapes(void **state)
{
    rng r = {8};
    for (int i = 0; i < 250; i++) {
        conv_geom g = random_geom(&r, 1);
        conv_case(&r, &g, random_qparams(&r), (int)rng_range(&r, 0, 1), 1, NULL);
    }
    /* rows longer than the kernel's chunk of output pixels */
    conv_geom wide = {3, 4, 600, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    conv_case(&r, &wide, random_qparams(&r), 1, 1, NULL);
    wide.SW = 2;
    conv_case(&r, &wide, random_qparams(&r), 1, 1, NULL);
}

/* The shapes of the 3x3 path (3x3, unit dilation, column stride 1 or 2):
 * rows narrower than 8, than 16, not a multiple of 16; pads 0..2 on each
 * side; row strides 1..3; both input types (random_qparams); and rows too
 * wide for its row buffers (the general path). */
static void qdwconv_3x3_paths_match_scalar_twin(void **state)
{
    (void)state;
    rng r = {81};
    static const int64_t widths[] = {1, 3, 5, 8, 10, 15, 16, 17, 31, 40, 80, 161};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        for (int64_t st = 1; st <= 2; st++) {
            conv_geom g = {5, 9, widths[i], 5, 3, 3, st, st, 1, 1, 1, 1, 1, 1};
            conv_case(&r, &g, random_qparams(&r), (int)(i & 1), 1, NULL);
            conv_geom h = {3, (int64_t)rng_range(&r, 1, 12), widths[i], 3, 3, 3,
                           (int64_t)rng_range(&r, 1, 3), st, 1, 1,
                           (int64_t)rng_range(&r, 0, 2), (int64_t)rng_range(&r, 0, 2),
                           (int64_t)rng_range(&r, 0, 2), (int64_t)rng_range(&r, 0, 2)};
            conv_case(&r, &h, random_qparams(&r), 1, 1, NULL);
        }
    /* ultraface-rfb320-like, scaled down: 30x40 at strides 1 and 2 */
    for (int64_t st = 1; st <= 2; st++) {
        conv_geom u = {17, 30, 40, 17, 3, 3, st, st, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &u, random_qparams(&r), 1, 1, NULL);
    }
    /* wider than the row buffers of the 3x3 path */
    for (int64_t st = 1; st <= 2; st++) {
        conv_geom w = {2, 3, 1100, 2, 3, 3, st, st, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &w, random_qparams(&r), 1, 1, NULL);
    }
}

/* The u8 x s8 path (VNNI builds): int8 weights with zero point 0 over the
 * full range, kernel widths 1..8 (one or two quads per row), column strides
 * 1 and 2, row strides and dilations, pads, rows narrower than a block of
 * 8 and not a multiple of 8, both input types with their zero points;
 * ppocr-cls's 5x5 shapes on 2 and 3 rows.  Without
 * VNNI the packer must keep the s16 path. */
static void qdwconv_u8_path_matches_scalar_twin(void **state)
{
    (void)state;
    rng r = {83};
    static const int64_t widths[] = {1, 5, 8, 9, 16, 17, 31, 96};
    for (int64_t kw = 1; kw <= 8; kw++)
        for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
            int64_t kh = (int64_t)rng_range(&r, 1, 5), st = (int64_t)rng_range(&r, 1, 2);
            conv_geom g = {(int64_t)rng_range(&r, 1, 9), (int64_t)rng_range(&r, 1, 9), widths[i], 0,
                           kh, kw, (int64_t)rng_range(&r, 1, 3), st,
                           (int64_t)rng_range(&r, 1, 2), 1, (int64_t)rng_range(&r, 0, kh - 1),
                           (int64_t)rng_range(&r, 0, kw - 1), (int64_t)rng_range(&r, 0, kh - 1),
                           (int64_t)rng_range(&r, 0, kw - 1)};
            qparams q = random_qparams(&r);
            q.small_w = 3;
            q.w_signed = 1;
            int path = 0;
            conv_case(&r, &g, q, (int)(i & 1), 1, &path);
            if (path) /* 0: an empty output, nothing packed */
                assert_int_equal(path, BUILD_ISA & OCTK_ISA_VNNI ? OCTK_PATH_U8S8 : OCTK_PATH_S16);
        }
    static const int64_t ppocr[][4] = {{88, 3, 1, 2}, {104, 3, 2, 2}, {200, 2, 1, 2}, {32, 6, 2, 2}};
    for (int i = 0; i < 4; i++) {
        conv_geom g = {ppocr[i][0], ppocr[i][1], 96, 0, 5, 5, ppocr[i][2], 1, 1, 1,
                       ppocr[i][3], 2, 2, 2};
        qparams q = random_qparams(&r);
        q.small_w = 3;
        q.w_signed = 1;
        int path = 0;
        conv_case(&r, &g, q, 1, 1, &path);
        assert_int_equal(path, BUILD_ISA & OCTK_ISA_VNNI ? OCTK_PATH_U8S8 : OCTK_PATH_S16);
    }
}

/* ---- requantization edge cases through a 1-element GEMM ------------------------------- */

/* y for acc = bias only (K = 1 with a == a_zero), one multiplier. */
static void requantize_rounds_half_even_and_saturates(void **state)
{
    rng r = {9};
    static const int32_t accs[] = {0, 1, -1, 2, 3, 5, -5, 7, 16777217, -16777217, INT32_MAX,
                                   INT32_MIN, 1000000, -1000000, 123456789};
    static const float mults[] = {0.5f, 0.25f, 1.0f, 1e-30f, 1e30f, 3e38f, 1e3f, 0.0078125f,
                                  1.5f, 1e-9f};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sizeof accs / sizeof accs[0]; i++)
            for (size_t j = 0; j < sizeof mults / sizeof mults[0]; j++) {
                /* 9 columns so both the vector and the scalar epilogue run */
                enum { N = 9 };
                int8_t b[N];
                int32_t bz[N], bias[N];
                float mult[N];
                uint8_t a = 7, y[N], expect[2 * N];
                int32_t zy = s ? -3 : 250, lo = s ? -128 : 0, hi = s ? 127 : 255;
                for (int n = 0; n < N; n++) {
                    b[n] = 1;
                    bz[n] = 0;
                    bias[n] = accs[(i + (size_t)n) % (sizeof accs / sizeof accs[0])];
                    mult[n] = mults[j];
                    expect[2 * n] = (uint8_t)ref_requant(bias[n], mult[n], zy, lo, hi);
                    expect[2 * n + 1] = 1;
                }
                uint8_t pb[1024];
                octk_qgemm_pack_b(pb, b, 1, bz, 1, N, N, 1, BUILD_ISA);
                octk_qgemm p = {.M = 1, .N = N, .K = 1, .lda = 1, .ldy = N, .a_signed = 0,
                                .a_zero = 7, .y_signed = s, .y_zero = zy, .y_lo = lo, .y_hi = hi,
                                .a = &a, .y = y, .b = pb, .bias = bias, .mult = mult};
                void *yp = y;
                check_all_splits(&p, &p.work, octk_qgemm_work_size(&p), &yp, N, expect,
                                 qgemm_tasks_v, qgemm_run_v, &r);
            }
}

/* Larger problem: each split mode gives the same bytes (and the twin's). */
static void split_over_tasks_gives_identical_bytes(void **state)
{
    rng r = {10};
    qparams q = random_qparams(&r);
    gemm_case(&r, 200, 300, 70, q, 1, 0, NULL);
    conv_geom g = {24, 30, 30, 72, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    conv_case(&r, &g, random_qparams(&r), 1, 0, NULL);
    conv_geom d = {5, 40, 41, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1};
    conv_case(&r, &d, random_qparams(&r), 1, 1, NULL);
    /* enough tasks to balance two threads */
    octk_qgemm p = {.M = 256, .N = 256, .K = 64};
    assert_true(octk_qgemm_tasks(&p, 1) >= 8);
}

/* With VNNI (vpdpbusd: four exact u8 x s8 products into int32) any int8
 * weights with zero points 0 take the u8 x s8 path, full range included,
 * and stay exact: extreme activations against +-127/-128 weights. */
static void vnni_takes_full_range_int8_weights_exactly(void **state)
{
    uint8_t pb[4096];
    int8_t b[8] = {127, 127, -128, -128, 127, -128, 1, 0};
    int32_t bz[2] = {0, 0};
    octk_qgemm_pack_b(pb, b, 1, bz, 4, 2, 2, 1, OCTK_ISA_AVX2 | OCTK_ISA_VNNI);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_U8S8);
    octk_qgemm_pack_b(pb, b, 1, bz, 4, 2, 2, 1, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    octk_qgemm_pack_b(pb, b, 1, bz, 4, 2, 2, 1, 0);
    assert_int_equal(octk_qpacked_path(pb), OCTK_PATH_S16);
    if (!(BUILD_ISA & OCTK_ISA_VNNI))
        return; /* running VNNI-packed weights needs a VNNI build */
    rng r = {21};
    for (int i = 0; i < 6; i++) {
        qparams q = random_qparams(&r);
        q.small_w = 3;
        q.w_signed = 1;
        int path;
        gemm_case(&r, 3 + 5 * i, 17 + 9 * i, 31 + 40 * i, q, i & 1, i & 2, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
        conv_geom g = {5 + i, 9, 8 + i, 7 + 5 * i, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &g, q, i & 1, 0, &path);
        assert_int_equal(path, OCTK_PATH_U8S8);
    }
}

/* y_float (MatMulIntegerToFloat): y = (float)acc * mult[n] (+ fbias[n]),
 * each a float32 operation, against a scalar twin, byte for byte, with and
 * without the float bias, on both packings the build may choose. */
static void qgemm_float_output_matches_scalar_twin(void **state)
{
    rng r = {31};
    static const int64_t shapes[][3] = {{1, 10, 784}, {5, 33, 17}, {64, 24, 100}, {7, 1, 3}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int variant = 0; variant < 4; variant++) {
            int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
            int a_signed = variant & 1, with_bias = (variant >> 1) & 1;
            int32_t a_zero = zero_of(&r, a_signed);
            uint8_t *a = malloc((size_t)(M * K)), *b = malloc((size_t)(K * N));
            int32_t *bz = malloc(sizeof(int32_t) * (size_t)N);
            float *mult = malloc(sizeof(float) * (size_t)N), *fb = malloc(sizeof(float) * (size_t)N);
            float *y = malloc(sizeof(float) * (size_t)(M * N)), *want = malloc(sizeof(float) * (size_t)(M * N));
            assert_true(a && b && bz && mult && fb && y && want);
            random_bytes(&r, a, M * K);
            random_bytes(&r, b, K * N);
            for (int64_t n = 0; n < N; n++) {
                bz[n] = variant == 3 ? zero_of(&r, 1) : 0;
                mult[n] = (float)(1e-4 * (1 + rng_range(&r, 0, 1000)));
                fb[n] = (float)((int64_t)rng_range(&r, 0, 2000) - 1000) / 7.0f;
            }
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    int64_t acc = 0;
                    for (int64_t k = 0; k < K; k++)
                        acc += (int64_t)(ld8(a, a_signed, m * K + k) - a_zero) *
                               (ld8(b, 1, k * N + n) - bz[n]);
                    float v = (float)(int32_t)(uint32_t)acc * mult[n];
                    want[m * N + n] = with_bias ? v + fb[n] : v;
                }
            void *pb = malloc(octk_qgemm_packed_b_size(K, N));
            assert_non_null(pb);
            octk_qgemm_pack_b(pb, b, 1, bz, K, N, N, 1, BUILD_ISA);
            octk_qgemm p;
            memset(&p, 0, sizeof p);
            p.M = M; p.N = N; p.K = K; p.lda = K; p.ldy = N;
            p.a_signed = a_signed; p.a_zero = a_zero; p.y_float = 1;
            p.a = a; p.y = y; p.b = pb; p.mult = mult; p.fbias = with_bias ? fb : NULL;
            p.work = malloc(octk_qgemm_work_size(&p) + 1);
            assert_non_null(p.work);
            for (int phase = 0; phase < OCTK_PHASES; phase++)
                octk_qgemm_run(&p, phase, 0, octk_qgemm_tasks(&p, phase));
            assert_memory_equal(y, want, sizeof(float) * (size_t)(M * N));
            free(p.work); free(pb); free(a); free(b); free(bz); free(mult); free(fb);
            free(y); free(want);
        }
}

/* OCTK_QGEMM_Y_INT32 (MatMulInteger): y = wrap_int32(bias[n] + sum (a -
 * a_zero) * (b - b_zero[n])) against a scalar twin, exactly, on both
 * packings the build may choose (b_zero all 0 allows U8S8). */
static void qgemm_int32_output_matches_scalar_twin(void **state)
{
    (void)state;
    rng r = {37};
    static const int64_t shapes[][3] = {{1, 10, 784}, {5, 33, 17}, {64, 24, 100}, {7, 1, 3}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int variant = 0; variant < 4; variant++) {
            int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
            int a_signed = variant & 1, with_bias = (variant >> 1) & 1;
            int32_t a_zero = zero_of(&r, a_signed);
            uint8_t *a = malloc((size_t)(M * K)), *b = malloc((size_t)(K * N));
            int32_t *bz = malloc(sizeof(int32_t) * (size_t)N);
            int32_t *bias = malloc(sizeof(int32_t) * (size_t)N);
            int32_t *y = malloc(sizeof(int32_t) * (size_t)(M * N));
            int32_t *want = malloc(sizeof(int32_t) * (size_t)(M * N));
            assert_true(a && b && bz && bias && y && want);
            random_bytes(&r, a, M * K);
            random_bytes(&r, b, K * N);
            for (int64_t n = 0; n < N; n++) {
                bz[n] = variant == 3 ? zero_of(&r, 1) : 0;
                bias[n] = (int32_t)((int64_t)rng_range(&r, 0, 2000000) - 1000000);
            }
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    int64_t acc = with_bias ? bias[n] : 0;
                    for (int64_t k = 0; k < K; k++)
                        acc += (int64_t)(ld8(a, a_signed, m * K + k) - a_zero) *
                               (ld8(b, 1, k * N + n) - bz[n]);
                    want[m * N + n] = (int32_t)(uint32_t)acc;
                }
            void *pb = malloc(octk_qgemm_packed_b_size(K, N));
            assert_non_null(pb);
            octk_qgemm_pack_b(pb, b, 1, bz, K, N, N, 1, BUILD_ISA);
            octk_qgemm p;
            memset(&p, 0, sizeof p);
            p.M = M; p.N = N; p.K = K; p.lda = K; p.ldy = N;
            p.a_signed = a_signed; p.a_zero = a_zero; p.y_float = OCTK_QGEMM_Y_INT32;
            p.a = a; p.y = y; p.b = pb; p.bias = with_bias ? bias : NULL;
            p.work = malloc(octk_qgemm_work_size(&p) + 1);
            assert_non_null(p.work);
            for (int phase = 0; phase < OCTK_PHASES; phase++)
                octk_qgemm_run(&p, phase, 0, octk_qgemm_tasks(&p, phase));
            assert_memory_equal(y, want, sizeof(int32_t) * (size_t)(M * N));
            free(p.work); free(pb); free(a); free(b); free(bz); free(bias); free(y); free(want);
        }
}

/* octk_lut8: y[i] = table[x[i]] on lengths around the vector widths, every
 * byte value present, split over tasks at every boundary the kernel offers;
 * nothing past n is written. */
static void lut8_maps_every_byte_through_the_table(void **state)
{
    rng r = {41};
    uint8_t table[256];
    random_bytes(&r, table, 256);
    static const int64_t lens[] = {1, 31, 32, 33, 63, 64, 65, 256, 1000, 4097, 70001};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int64_t n = lens[li];
        uint8_t *x = malloc((size_t)n), *y = malloc((size_t)n + 64);
        assert_true(x && y);
        random_bytes(&r, x, n);
        for (int64_t i = 0; i < n && i < 256; i++)
            x[i] = (uint8_t)(255 - i);
        memset(y, 0xa5, (size_t)n + 64);
        octk_lut8 p = {.n = n, .table = table, .x = x, .y = y};
        int64_t tasks = octk_lut8_tasks(&p, 0);
        assert_int_equal(octk_lut8_tasks(&p, 1) + octk_lut8_tasks(&p, 2), 0);
        for (int64_t t = 0; t < tasks; t++) /* one task at a time, last first */
            octk_lut8_run(&p, 0, tasks - 1 - t, tasks - t);
        for (int64_t i = 0; i < n; i++)
            assert_int_equal(y[i], table[x[i]]);
        for (int64_t i = n; i < n + 64; i++)
            assert_int_equal(y[i], 0xa5);
        free(x);
        free(y);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qgemm_matches_scalar_twin_on_awkward_sizes),
        cmocka_unit_test(qgemm_large_shapes_match_scalar_twin),
        cmocka_unit_test(qgemm_path_choice_is_exact_both_ways),
        cmocka_unit_test(qgemm_accumulator_wraps_int32),
        cmocka_unit_test(u8s8_boundary_pairs_are_exact),
        cmocka_unit_test(qconv_matches_scalar_twin_on_random_shapes),
        cmocka_unit_test(qconv_common_shapes_match_scalar_twin),
        cmocka_unit_test(qconv_path_choice_is_exact_both_ways),
        cmocka_unit_test(qconv_accumulators_wrap_int32),
        cmocka_unit_test(qdwconv_matches_scalar_twin_on_random_shapes),
        cmocka_unit_test(qdwconv_3x3_paths_match_scalar_twin),
        cmocka_unit_test(qdwconv_u8_path_matches_scalar_twin),
        cmocka_unit_test(requantize_rounds_half_even_and_saturates),
        cmocka_unit_test(split_over_tasks_gives_identical_bytes),
        cmocka_unit_test(vnni_takes_full_range_int8_weights_exactly),
        cmocka_unit_test(qgemm_float_output_matches_scalar_twin),
        cmocka_unit_test(qgemm_int32_output_matches_scalar_twin),
        cmocka_unit_test(lut8_maps_every_byte_through_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
