/*
 * skernel_bench.c: single-thread speed of the float32 kernels of
 * src/codegen/kernels (sgemm, sconv), in GFLOP/s (2 flops per multiply-add),
 * median and best of several runs (the best is the figure least disturbed
 * by other processes on a shared machine).  Standalone:
 *
 *   cc -O3 -march=native -Isrc/codegen/kernels bench/skernel_bench.c \
 *      src/codegen/kernels/s*.c -lm -o /tmp/skb && /tmp/skb
 *
 * Each run calls every task of phase 0, then every task of phase 1, in one
 * thread, as the generated code does with a one-thread pool.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "octk.h"

enum { RUNS = 11 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(getenv("SKB_CPU") ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *rand_floats(size_t n, uint32_t seed)
{
    float *v = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64 + 64);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return v;
}

static void *work_alloc(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
}

static void bench_sgemm(int64_t M, int64_t N, int64_t K)
{
    float *a = rand_floats((size_t)(M * K), 1), *b = rand_floats((size_t)(K * N), 2);
    float *bias = rand_floats((size_t)N, 3), *y = rand_floats((size_t)(M * N), 4);
    float *pb = work_alloc(octk_sgemm_packed_b_size(K, N));
    octk_sgemm_pack_b(pb, b, 1.0f, K, N, N, 1);
    octk_sgemm p = {.M = M, .N = N, .K = K, .lda = K, .ldy = N, .y_lo = 0.0f,
                    .y_hi = 1e30f, .a = a, .y = y, .b = pb, .bias = bias};
    p.work = work_alloc(octk_sgemm_work_size(&p));
    int reps = (int)(1e9 / (double)(M * N * K)) + 1;
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_s();
        for (int i = 0; i < reps; i++)
            for (int ph = 0; ph < OCTK_PHASES; ph++)
                octk_sgemm_run(&p, ph, 0, octk_sgemm_tasks(&p, ph));
        t[r] = (now_s() - t0) / reps;
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    const double flop = 2.0 * (double)(M * N * K);
    printf("sgemm M=%-5lld N=%-5lld K=%-5lld  median %6.1f  best %6.1f GFLOP/s\n",
           (long long)M, (long long)N, (long long)K, flop / t[RUNS / 2] * 1e-9, flop / t[0] * 1e-9);
    free(a), free(b), free(bias), free(y), free(pb), free(p.work);
}

/* One convolution: C -> M channels, H x W input, KS x KS kernel, stride
 * S, padding pad on every side; depthwise when dw (C == M). */
static void bench_conv(const char *tag, int64_t C, int64_t M, int64_t H, int64_t W, int64_t KS,
                       int64_t S, int64_t pad, int dw)
{
    const int64_t OH = (H + 2 * pad - KS) / S + 1, OW = (W + 2 * pad - KS) / S + 1;
    octk_conv_shape s = {.C = dw ? 1 : C, .H = H, .W = W, .M = dw ? 1 : M, .OH = OH, .OW = OW,
                         .KH = KS, .KW = KS, .SH = S, .SW = S, .DH = 1, .DW = 1,
                         .PT = pad, .PL = pad};
    if (dw)
        s.C = s.M = C;
    const int64_t K = dw ? KS * KS : C * KS * KS, P = OH * OW;
    float *x = rand_floats((size_t)(C * H * W), 5), *w = rand_floats((size_t)(M * K), 6);
    float *bias = rand_floats((size_t)M, 7), *y = rand_floats((size_t)(M * P), 8);
    float *pw = work_alloc(dw ? octk_sdwconv_packed_w_size(C, K) : octk_sconv_packed_w_size(M, K));
    if (dw)
        octk_sdwconv_pack_w(pw, w, C, K);
    else
        octk_sconv_pack_w(pw, w, M, K);
    octk_sconv p = {.s = s, .y_lo = 0.0f, .y_hi = 1e30f, .x = x, .y = y, .w = pw, .bias = bias};
    p.work = work_alloc(dw ? octk_sdwconv_work_size(&p) : octk_sconv_work_size(&p));
    int reps = (int)(2e8 / (double)(M * K * P)) + 1;
    double t[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_s();
        for (int i = 0; i < reps; i++)
            for (int ph = 0; ph < OCTK_PHASES; ph++) {
                if (dw)
                    octk_sdwconv_run(&p, ph, 0, octk_sdwconv_tasks(&p, ph));
                else
                    octk_sconv_run(&p, ph, 0, octk_sconv_tasks(&p, ph));
            }
        t[r] = (now_s() - t0) / reps;
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    const double flop = 2.0 * (double)(M * K * P);
    printf("%-6s %lldx%lld/%lld C=%-4lld M=%-4lld %3lldx%-3lld  median %6.1f best %6.1f GFLOP/s"
           "  %8.1f us\n",
           tag, (long long)KS, (long long)KS, (long long)S, (long long)C, (long long)M,
           (long long)H, (long long)W, flop / t[RUNS / 2] * 1e-9, flop / t[0] * 1e-9,
           t[0] * 1e6);
    free(x), free(w), free(bias), free(y), free(pw), free(p.work);
}

static void bench_sconv(int64_t C, int64_t M, int64_t H, int64_t W, int64_t KS)
{
    bench_conv("sconv", C, M, H, W, KS, 1, KS / 2, 0);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : "";
    if (!strcmp(only, "") || !strcmp(only, "gemm")) {
        bench_sgemm(1024, 1024, 1024);
        bench_sgemm(64, 1024, 1024);
        bench_sgemm(256, 1024, 1024);
        bench_sgemm(1, 1024, 1024);
    }
    if (!strcmp(only, "") || !strcmp(only, "lm")) {
        /* the prefill GEMMs of bench/lm_bench.py's Llama shape (128 tokens) */
        bench_sgemm(128, 2048, 2048);
        bench_sgemm(128, 5632, 2048);
        bench_sgemm(128, 2048, 5632);
    }
    if (!strcmp(only, "") || !strcmp(only, "conv")) {
        bench_sconv(64, 64, 56, 56, 3);
        bench_sconv(64, 256, 56, 56, 1);
    }
    if (!strcmp(only, "") || !strcmp(only, "mnist")) {
        bench_conv("mnist", 1, 8, 28, 28, 5, 1, 2, 0);
        bench_conv("mnist", 8, 16, 14, 14, 5, 1, 2, 0);
    }
    if (!strcmp(only, "") || !strcmp(only, "squeeze")) {
        bench_conv("sq", 3, 64, 224, 224, 3, 2, 0, 0);
        bench_conv("sq", 64, 16, 55, 55, 1, 1, 0, 0);
        bench_conv("sq", 16, 64, 55, 55, 1, 1, 0, 0);
        bench_conv("sq", 16, 64, 55, 55, 3, 1, 1, 0);
        bench_conv("sq", 32, 128, 27, 27, 3, 1, 1, 0);
        bench_conv("sq", 48, 192, 13, 13, 3, 1, 1, 0);
        bench_conv("sq", 64, 256, 13, 13, 3, 1, 1, 0);
        bench_conv("sq", 512, 1000, 13, 13, 1, 1, 0, 0);
    }
    if (!strcmp(only, "") || !strcmp(only, "dw")) {
        /* ultraface-rfb320's depthwise shapes */
        bench_conv("dw", 16, 16, 120, 160, 3, 1, 1, 1);
        bench_conv("dw", 32, 32, 120, 160, 3, 2, 1, 1);
        bench_conv("dw", 32, 32, 60, 80, 3, 1, 1, 1);
        bench_conv("dw", 32, 32, 60, 80, 3, 2, 1, 1);
        bench_conv("dw", 64, 64, 30, 40, 3, 1, 1, 1);
        bench_conv("dw", 64, 64, 30, 40, 3, 2, 1, 1);
        bench_conv("dw", 128, 128, 15, 20, 3, 1, 1, 1);
        bench_conv("dw", 128, 128, 15, 20, 3, 2, 1, 1);
        bench_conv("dw", 256, 256, 8, 10, 3, 1, 1, 1);
    }
    if (!strcmp(only, "") || !strcmp(only, "ultra")) {
        /* ultraface-rfb320's dense convolutions */
        bench_conv("uf", 3, 16, 240, 320, 3, 2, 1, 0);
        bench_conv("uf", 16, 32, 120, 160, 1, 1, 0, 0);
        bench_conv("uf", 32, 32, 60, 80, 1, 1, 0, 0);
        bench_conv("uf", 64, 64, 30, 40, 1, 1, 0, 0);
        bench_conv("uf", 8, 16, 30, 40, 3, 1, 1, 0);
        bench_conv("uf", 16, 16, 30, 40, 3, 1, 2, 0);
        bench_conv("uf", 128, 128, 15, 20, 1, 1, 0, 0);
        bench_conv("uf", 256, 256, 8, 10, 1, 1, 0, 0);
    }
    return 0;
}
