/*
 * qkernel_bench.c: single-thread throughput of the integer kernels of the
 * LLVM backend (src/codegen/kernels): octk_qgemm at M=N=K=1024 and
 * M=64/256 with N=K=1024, and octk_qconv on a 3x3 C=64 M=64 56x56 (pad 1)
 * and a 1x1 C=64 M=256 56x56 convolution, with weights in [-128, 127] and
 * in [-64, 64] (on an AVX2-only build the first take the S16 path, the
 * second U8S8; with AVX-512 VNNI both take U8S8), the convolutions of
 * squeezenet1.1 that dominate its time (1x1 squeeze/expand at 55x55 and
 * 13x13, 3x3 expand pad 1, the 3x3 stride 2 stem), and octk_qdwconv 3x3
 * pad 1 over 64 channels of 112x112 at strides 1 and 2 and the shapes of
 * ultraface-rfb320 (64 channels of 120x160 at strides 1 and 2, 256 of 8x10).
 * `qkb squeeze [i]` runs only the squeezenet convolutions (or the i-th);
 * `qkb nhwc [i]` runs each of them also over an NHWC image as the layout
 * plan compiles it (octk_qgemm on the pixels or their im2col rows);
 * `qkb dw` only the depthwise ones; `qkb ppocr` and `qkb ultraface` the
 * depthwise convolutions of those models (ppocr-cls's 5x5 on rows of 96);
 * `qkb pool` squeezenet's three 8-bit 3x3 stride-2 MaxPools (octk_maxpool8,
 * in microseconds).
 * `qkb gemm` runs only octk_qgemm (weights in [-128, 127]) on the products
 * of bench/compile_bench.py's matmul-M and mlp-b64 and at 256^3 and 64^3,
 * with uint8 output, and a few with float32 output (the MatMul of a QDQ
 * model).
 * Prints GOP/s counting 2*M*N*K operations (K = C*KH*KW for the convs,
 * N = OH*OW), the median of several runs; all phases are timed (the share
 * of the preparing ones, widening, planes or im2col, is printed too).  Times are
 * thread CPU time, so that other processes sharing the machine do not count.
 *
 * Build and run:
 *   cc -O3 -march=native -Isrc/codegen/kernels bench/qkernel_bench.c \
 *      src/codegen/kernels/q*.c -lm -o /tmp/qkb && /tmp/qkb
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "octk.h"

enum { RUNS = 7 };

/* the instruction sets of this build, as a compiler targeting it would pass */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX2__)
static const unsigned bench_isa = OCTK_ISA_AVX2 | OCTK_ISA_VNNI;
#elif defined(__AVX2__)
static const unsigned bench_isa = OCTK_ISA_AVX2;
#else
static const unsigned bench_isa = 0;
#endif

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

static void fill_weights(int8_t *w, size_t n, int range)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (int8_t)((int)(rnd() % (unsigned)(2 * range + 1)) - range);
}

/* y_float: the output kind (0: uint8, 1: float32 as the MatMul of a QDQ model) */
static void bench_gemm(int64_t M, int64_t N, int64_t K, int range, int y_float)
{
    uint8_t *a = xalloc((size_t)(M * K));
    int8_t *b = xalloc((size_t)(K * N));
    for (int64_t i = 0; i < M * K; i++)
        a[i] = (uint8_t)rnd();
    fill_weights(b, (size_t)(K * N), range);
    int32_t *bz = xalloc((size_t)N * 4), *bias = xalloc((size_t)N * 4);
    float *mult = xalloc((size_t)N * 4);
    for (int64_t n = 0; n < N; n++)
        mult[n] = 1e-4f;
    void *pb = xalloc(octk_qgemm_packed_b_size(K, N));
    octk_qgemm_pack_b(pb, b, 1, bz, K, N, N, 1, bench_isa);
    void *y = xalloc((size_t)(M * N) * (y_float ? 4 : 1));
    octk_qgemm p = {.M = M, .N = N, .K = K, .lda = K, .ldy = N, .a_signed = 0, .a_zero = 128,
                    .y_signed = 0, .y_zero = 128, .y_lo = 0, .y_hi = 255, .a = a, .y = y,
                    .b = pb, .bias = y_float ? NULL : bias, .mult = mult,
                    .y_float = y_float};
    p.work = xalloc(octk_qgemm_work_size(&p));
    /* small products repeat inside each timed run (about 2e8 operations;
     * the clock, read around each call, took half of a 64^3 product) */
    double ops = 2.0 * (double)M * (double)N * (double)K;
    int reps = ops < 2e8 ? (int)(2e8 / ops) : 1;
    double t[RUNS], t0s[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now();
        for (int i = 0; i < reps; i++)
            octk_qgemm_run(&p, 0, 0, octk_qgemm_tasks(&p, 0));
        double t1 = now();
        for (int i = 0; i < reps; i++) {
            octk_qgemm_run(&p, 0, 0, octk_qgemm_tasks(&p, 0));
            octk_qgemm_run(&p, 1, 0, octk_qgemm_tasks(&p, 1));
        }
        t[r] = (now() - t1) / reps;
        t0s[r] = (t1 - t0) / reps;
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    qsort(t0s, RUNS, sizeof t0s[0], cmp_double);
    printf("qgemm M=%-5lld N=%-5lld K=%-5lld %s path=%-4s %7.1f GOP/s  (phase 0 %4.1f%%)\n",
           (long long)M, (long long)N, (long long)K, y_float ? "f32" : "u8 ",
           octk_qpacked_path(pb) == OCTK_PATH_U8S8 ? "u8s8" : "s16",
           ops / t[RUNS / 2] * 1e-9,
           100.0 * t0s[RUNS / 2] / t[RUNS / 2]);
    free(a), free(b), free(bz), free(bias), free(mult), free(pb), free(y), free(p.work);
}

/* KS x KS convolution of C channels of HW x HW into M, stride st, padding
 * pad on every side. */
static void bench_conv(int64_t C, int64_t M, int64_t HW, int64_t KS, int64_t st, int64_t pad,
                       int range)
{
    int64_t K = C * KS * KS, OHW = (HW + 2 * pad - KS) / st + 1;
    octk_conv_shape s = {.C = C, .H = HW, .W = HW, .M = M, .OH = OHW, .OW = OHW, .KH = KS,
                         .KW = KS, .SH = st, .SW = st, .DH = 1, .DW = 1, .PT = pad, .PL = pad};
    uint8_t *x = xalloc((size_t)(C * HW * HW));
    int8_t *w = xalloc((size_t)(M * K));
    for (int64_t i = 0; i < C * HW * HW; i++)
        x[i] = (uint8_t)rnd();
    fill_weights(w, (size_t)(M * K), range);
    int32_t *wz = xalloc((size_t)M * 4), *bias = xalloc((size_t)M * 4);
    float *mult = xalloc((size_t)M * 4);
    for (int64_t m = 0; m < M; m++)
        mult[m] = 1e-4f;
    void *pw = xalloc(octk_qconv_packed_w_size(M, K));
    octk_qconv_pack_w(pw, w, 1, wz, M, K, bench_isa);
    uint8_t *y = xalloc((size_t)(M * OHW * OHW));
    octk_qconv p = {.s = s, .x_signed = 0, .x_zero = 128, .y_signed = 0, .y_zero = 128,
                    .y_lo = 0, .y_hi = 255, .x = x, .y = y, .w = pw, .bias = bias, .mult = mult};
    p.work = xalloc(octk_qconv_work_size(&p));
    /* small convolutions repeat inside each timed run (about 2e8 operations) */
    double ops = 2.0 * (double)M * (double)K * (double)(OHW * OHW);
    int reps = ops < 2e8 ? (int)(2e8 / ops) : 1;
    double t[RUNS], t0s[RUNS];
    for (int r = 0; r < RUNS; r++) {
        t[r] = t0s[r] = 0;
        for (int i = 0; i < reps; i++) {
            double t0 = now();
            octk_qconv_run(&p, 0, 0, octk_qconv_tasks(&p, 0));
            octk_qconv_run(&p, 1, 0, octk_qconv_tasks(&p, 1));
            double t1 = now();
            octk_qconv_run(&p, 2, 0, octk_qconv_tasks(&p, 2));
            t[r] += (now() - t0) / reps;
            t0s[r] += (t1 - t0) / reps;
        }
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    qsort(t0s, RUNS, sizeof t0s[0], cmp_double);
    printf("qconv %lldx%lld/%lld C=%-3lld M=%-4lld %3lldx%-3lld path=%-4s %7.1f GOP/s  (phase 0 "
           "%4.1f%%)\n",
           (long long)KS, (long long)KS, (long long)st, (long long)C, (long long)M,
           (long long)HW, (long long)HW, octk_qpacked_path(pw) == OCTK_PATH_U8S8 ? "u8s8" : "s16",
           ops / t[RUNS / 2] * 1e-9,
           100.0 * t0s[RUNS / 2] / t[RUNS / 2]);
    free(x), free(w), free(wz), free(bias), free(mult), free(pw), free(y), free(p.work);
}

/* The same convolution over an NHWC image, as the layout plan compiles it
 * (src/codegen/layout.c): octk_qgemm over the OH*OW pixels, its rows the
 * input pixels (1x1, stride 1, no padding) or their im2col rows gathered in
 * phase 0. */
static void bench_conv_nhwc(int64_t C, int64_t M, int64_t HW, int64_t KS, int64_t st,
                            int64_t pad, int range)
{
    int64_t K = C * KS * KS, OHW = (HW + 2 * pad - KS) / st + 1, P = OHW * OHW;
    octk_conv_shape s = {.C = C, .H = HW, .W = HW, .M = M, .OH = OHW, .OW = OHW, .KH = KS,
                         .KW = KS, .SH = st, .SW = st, .DH = 1, .DW = 1, .PT = pad, .PL = pad};
    uint8_t *x = xalloc((size_t)(C * HW * HW));
    int8_t *b = xalloc((size_t)(K * M));
    for (int64_t i = 0; i < C * HW * HW; i++)
        x[i] = (uint8_t)rnd();
    fill_weights(b, (size_t)(K * M), range);
    int32_t *bz = xalloc((size_t)M * 4), *bias = xalloc((size_t)M * 4);
    float *mult = xalloc((size_t)M * 4);
    for (int64_t m = 0; m < M; m++)
        mult[m] = 1e-4f;
    void *pb = xalloc(octk_qgemm_packed_b_size(K, M));
    octk_qgemm_pack_b(pb, b, 1, bz, K, M, M, 1, bench_isa);
    uint8_t *y = xalloc((size_t)(P * M));
    octk_qgemm p = {.M = P, .N = M, .K = K, .lda = C, .ldy = M, .a_zero = 128, .y_zero = 128,
                    .y_lo = 0, .y_hi = 255, .a = x, .y = y, .b = pb, .bias = bias,
                    .mult = mult, .conv = s,
                    .im2col = !(KS == 1 && st == 1 && pad == 0)};
    p.work = xalloc(octk_qgemm_work_size(&p));
    double ops = 2.0 * (double)M * (double)K * (double)P;
    int reps = ops < 2e8 ? (int)(2e8 / ops) : 1;
    double t[RUNS], t0s[RUNS];
    for (int r = 0; r < RUNS; r++) {
        t[r] = t0s[r] = 0;
        for (int i = 0; i < reps; i++) {
            double t0 = now();
            octk_qgemm_run(&p, 0, 0, octk_qgemm_tasks(&p, 0));
            double t1 = now();
            octk_qgemm_run(&p, 1, 0, octk_qgemm_tasks(&p, 1));
            t[r] += (now() - t0) / reps;
            t0s[r] += (t1 - t0) / reps;
        }
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    qsort(t0s, RUNS, sizeof t0s[0], cmp_double);
    printf("nhwc  %lldx%lld/%lld C=%-3lld M=%-4lld %3lldx%-3lld path=%-4s %7.1f GOP/s  (phase 0 "
           "%4.1f%%)\n",
           (long long)KS, (long long)KS, (long long)st, (long long)C, (long long)M,
           (long long)HW, (long long)HW, octk_qpacked_path(pb) == OCTK_PATH_U8S8 ? "u8s8" : "s16",
           ops / t[RUNS / 2] * 1e-9, 100.0 * t0s[RUNS / 2] / t[RUNS / 2]);
    free(x), free(b), free(bz), free(bias), free(mult), free(pb), free(y), free(p.work);
}

/* Depthwise K x K (pad K/2) over C channels of H x W, strides sh, sw:
 * GOP/s counting 2 * C * OH * OW * K * K. */
static void bench_dwconv_k(int64_t C, int64_t H, int64_t W, int64_t K, int64_t sh, int64_t sw)
{
    int64_t pad = K / 2, OH = (H + 2 * pad - K) / sh + 1, OW = (W + 2 * pad - K) / sw + 1;
    octk_conv_shape s = {.C = C, .H = H, .W = W, .M = C, .OH = OH, .OW = OW, .KH = K,
                         .KW = K, .SH = sh, .SW = sw, .DH = 1, .DW = 1, .PT = pad, .PL = pad};
    int64_t HW = H * W;
    uint8_t *x = xalloc((size_t)(C * HW));
    int8_t *w = xalloc((size_t)(C * K * K));
    for (int64_t i = 0; i < C * HW; i++)
        x[i] = (uint8_t)rnd();
    fill_weights(w, (size_t)(C * K * K), 127);
    int32_t *wz = xalloc((size_t)C * 4), *bias = xalloc((size_t)C * 4);
    float *mult = xalloc((size_t)C * 4);
    for (int64_t c = 0; c < C; c++)
        mult[c] = 1e-3f;
    void *pw = xalloc(octk_qdwconv_packed_w_size(&s));
    octk_qdwconv_pack_w(pw, w, 1, wz, &s, octk_build_isa());
    uint8_t *y = xalloc((size_t)(C * OH * OW));
    octk_qconv p = {.s = s, .x_signed = 0, .x_zero = 128, .y_signed = 0, .y_zero = 128,
                    .y_lo = 0, .y_hi = 255, .x = x, .y = y, .w = pw, .bias = bias, .mult = mult};
    p.work = xalloc(octk_qdwconv_work_size(&p));
    double t[RUNS], t0s[RUNS];
    /* small shapes: several calls per timed run */
    int reps = (int)(1 + 2000000 / (C * OH * OW));
    for (int r = 0; r < RUNS; r++) {
        double t0 = now(), tp = 0;
        for (int k = 0; k < reps; k++) {
            double ta = now();
            octk_qdwconv_run(&p, 0, 0, octk_qdwconv_tasks(&p, 0));
            tp += now() - ta;
            octk_qdwconv_run(&p, 1, 0, octk_qdwconv_tasks(&p, 1));
        }
        t[r] = (now() - t0) / reps;
        t0s[r] = tp / reps;
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    qsort(t0s, RUNS, sizeof t0s[0], cmp_double);
    printf("qdwconv %lldx%lld C=%-3lld %lldx%lld stride %lldx%lld  %7.1f GOP/s  %7.2f us  (phase 0 %4.1f%%)\n",
           (long long)K, (long long)K, (long long)C, (long long)H, (long long)W, (long long)sh,
           (long long)sw, 2.0 * (double)(K * K) * (double)(C * OH * OW) / t[RUNS / 2] * 1e-9,
           t[RUNS / 2] * 1e6, 100.0 * t0s[RUNS / 2] / t[RUNS / 2]);
    free(x), free(w), free(wz), free(bias), free(mult), free(pw), free(y), free(p.work);
}

static void bench_dwconv(int64_t C, int64_t H, int64_t W, int64_t st)
{
    bench_dwconv_k(C, H, W, 3, st, st);
}

/* The depthwise convolutions of ppocr-cls (MobileNetV3 on 48 x 192 text
 * lines: 5x5 on rows of 96 that are only 2 or 3 high). */
static void bench_ppocr_dws(void)
{
    static const int64_t cs[][5] = {
        {8, 24, 96, 3, 2}, {24, 12, 96, 3, 2}, {32, 6, 96, 3, 1}, {32, 6, 96, 5, 2},
        {88, 3, 96, 5, 1}, {40, 3, 96, 5, 1}, {48, 3, 96, 5, 1}, {104, 3, 96, 5, 2},
        {200, 2, 96, 5, 1},
    };
    for (int i = 0; i < (int)(sizeof cs / sizeof cs[0]); i++)
        bench_dwconv_k(cs[i][0], cs[i][1], cs[i][2], cs[i][3], cs[i][4], 1);
}

/* The depthwise convolutions of ultraface-rfb320 (3x3, pad 1; how many of
 * each shape the model has in the comment). */
static void bench_ultraface_dws(void)
{
    static const int64_t cs[][4] = {
        {16, 120, 160, 1}, {32, 120, 160, 2}, {32, 60, 80, 1}, {32, 60, 80, 2},
        {64, 30, 40, 1} /* x4 */, {64, 30, 40, 2}, {128, 15, 20, 1} /* x4 */,
        {128, 15, 20, 2}, {256, 8, 10, 1} /* x3 */, {64, 8, 10, 2},
    };
    for (int i = 0; i < (int)(sizeof cs / sizeof cs[0]); i++)
        bench_dwconv_k(cs[i][0], cs[i][1], cs[i][2], 3, cs[i][3], cs[i][3]);
}

/* MaxPool 3x3 stride 2 (ceil mode) over C planes of H x W, as squeezenet1.1's. */
static void bench_maxpool(int64_t C, int64_t H, int64_t W)
{
    int64_t OH = (H - 3 + 1) / 2 + 1, OW = (W - 3 + 1) / 2 + 1;
    octk_maxpool8 p = {.s = {.C = C, .H = H, .W = W, .M = C, .OH = OH, .OW = OW, .KH = 3,
                             .KW = 3, .SH = 2, .SW = 2, .DH = 1, .DW = 1}};
    uint8_t *x = xalloc((size_t)(C * H * W)), *y = xalloc((size_t)(C * OH * OW));
    for (int64_t i = 0; i < C * H * W; i++)
        x[i] = (uint8_t)rnd();
    p.x = x;
    p.y = y;
    p.work = xalloc(octk_maxpool8_work_size(&p) + 1);
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now();
        for (int ph = 0; ph < OCTK_PHASES; ph++)
            octk_maxpool8_run(&p, ph, 0, octk_maxpool8_tasks(&p, ph));
        t[r] = now() - t0;
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    printf("maxpool8 3x3/2 C=%-3lld %lldx%lld  %7.2f us  %6.2f GB/s in\n", (long long)C,
           (long long)H, (long long)W, t[RUNS / 2] * 1e6,
           (double)(C * H * W) / t[RUNS / 2] * 1e-9);
    free(x), free(y), free(p.work);
}

/* The convolutions of squeezenet1.1 that take most of its time: all, or
 * only number only (0-based) if only >= 0. */
static void bench_squeezenet(int only, int nhwc)
{
    static const int64_t cs[][6] = {
        {3, 64, 224, 3, 2, 0},     /* stem */
        {64, 16, 55, 1, 1, 0},     /* fire squeeze */
        {16, 64, 55, 1, 1, 0},     /* fire expand 1x1 */
        {16, 64, 55, 3, 1, 1},     /* fire expand 3x3 */
        {32, 128, 27, 1, 1, 0},
        {32, 128, 27, 3, 1, 1},
        {64, 256, 13, 1, 1, 0},
        {64, 256, 13, 3, 1, 1},
        {512, 1000, 13, 1, 1, 0},  /* classifier */
    };
    for (int i = 0; i < (int)(sizeof cs / sizeof cs[0]); i++)
        if (only < 0 || only == i) {
            bench_conv(cs[i][0], cs[i][1], cs[i][2], cs[i][3], cs[i][4], cs[i][5], 127);
            if (nhwc)
                bench_conv_nhwc(cs[i][0], cs[i][1], cs[i][2], cs[i][3], cs[i][4], cs[i][5],
                                127);
        }
}

/* The depthwise convolutions. */
static void bench_dws(void)
{
    bench_dwconv(64, 112, 112, 1);
    bench_dwconv(64, 112, 112, 2);
    bench_dwconv(64, 120, 160, 1);  /* ultraface-rfb320 */
    bench_dwconv(64, 120, 160, 2);
    bench_dwconv(256, 8, 10, 1);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "squeeze") == 0) {
        bench_squeezenet(argc > 2 ? atoi(argv[2]) : -1, 0);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "nhwc") == 0) {
        bench_squeezenet(argc > 2 ? atoi(argv[2]) : -1, 1);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "pool") == 0) {
        bench_maxpool(64, 111, 111);
        bench_maxpool(128, 55, 55);
        bench_maxpool(256, 27, 27);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "ultraface") == 0) {
        bench_ultraface_dws();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "ppocr") == 0) {
        bench_ppocr_dws();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "gemm") == 0) {
        /* the products of compile_bench's matmul-M and mlp-b64 (784-512-512-10) */
        static const int64_t shapes[][3] = {{1024, 1024, 1024}, {256, 1024, 1024},
                                            {64, 1024, 1024},   {64, 512, 784},
                                            {64, 512, 512},     {64, 10, 512},
                                            {256, 256, 256},    {64, 64, 64}};
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            bench_gemm(shapes[i][0], shapes[i][1], shapes[i][2], 127, 0);
        bench_gemm(1024, 1024, 1024, 127, 1);
        bench_gemm(64, 1024, 1024, 127, 1);
        bench_gemm(64, 64, 64, 127, 1);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "dw") == 0) {
        bench_dws();
        return 0;
    }
    static const int ranges[2] = {127, 64};
    for (int i = 0; i < 2; i++) {
        bench_gemm(1024, 1024, 1024, ranges[i], 0);
        bench_gemm(64, 1024, 1024, ranges[i], 0);
        bench_gemm(256, 1024, 1024, ranges[i], 0);
        bench_conv(64, 64, 56, 3, 1, 1, ranges[i]);
        bench_conv(64, 256, 56, 1, 1, 0, ranges[i]);
    }
    bench_squeezenet(-1, 0);
    bench_dws();
    return 0;
}
