/*
 * wo_pipes_bench.c: the arithmetic ceiling of octk_wogemm's int8-activation
 * prefill (src/codegen/kernels/wogemm_i8.c) on this CPU.
 *
 * Per row, 16 columns and block of 32 k the kernel issues 8 vpdpbusd and,
 * for y = y + (float)d * (sa * s) (the bits of src/ref/wo_int8.c: two
 * rounded multiplies, no FMA), 2 vmulps, plus a vcvtdq2ps, a vaddps and
 * integer unpacking.  Whether the vmulps compete with the vpdpbusd for the
 * same execution pipes decides the ceiling: this program times 12
 * independent vpdpbusd chains alone and with 3 more instructions of each
 * kind per 12 (register operands only, no memory traffic), then prints
 * the bound that follows for the prefill case of bench/wo_bench.py,
 * [128,4096] x [4096,4096]: 2^31 multiply-adds = 2^25 vpdpbusd, and
 * 2^23 vmulps when they share the pipes.  Times are thread CPU time.
 *
 * Build and run (an AVX-512 VNNI CPU):
 *   cc -O2 bench/wo_pipes_bench.c -o /tmp/wpb && /tmp/wpb
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define D12(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)
#define DOT(i) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #i "\n\t"
#define X3(ins) ins " %%zmm29, %%zmm28, %%zmm12\n\t" ins " %%zmm29, %%zmm28, %%zmm13\n\t" \
                ins " %%zmm29, %%zmm28, %%zmm14\n\t"
#define CLOBBER "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
                "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14"
enum { ITERS = 50000000, RUNS = 5 };

/* vpdpbusd per second (G), best of RUNS: ITERS x (12 vpdpbusd + extra). */
#define RATE(out, extra)                                                      \
    do {                                                                      \
        out = 0.0;                                                            \
        for (int r_ = 0; r_ < RUNS; r_++) {                                   \
            double t0_ = now();                                               \
            for (long i_ = 0; i_ < ITERS; i_++)                               \
                __asm__ volatile(D12(DOT) extra ::: CLOBBER);                 \
            double g_ = 12.0 * ITERS / (now() - t0_) * 1e-9;                  \
            out = g_ > out ? g_ : out;                                        \
        }                                                                     \
    } while (0)

int main(void)
{
    if (!__builtin_cpu_supports("avx512vnni")) {
        printf("needs AVX-512 VNNI\n");
        return 1;
    }
    double alone, mul, add, cvt, andd;
    RATE(alone, "");
    RATE(mul, X3("vmulps"));
    RATE(add, X3("vaddps"));
    RATE(cvt, "vcvtdq2ps %%zmm29, %%zmm12\n\tvcvtdq2ps %%zmm29, %%zmm13\n\t"
              "vcvtdq2ps %%zmm29, %%zmm14\n\t");
    RATE(andd, X3("vpandd"));
    printf("G vpdpbusd/s, 12 chains: alone %.2f; with 3 per 12 of vmulps %.2f, vaddps %.2f, "
           "vcvtdq2ps %.2f, vpandd %.2f\n", alone, mul, add, cvt, andd);
    /* 12 / 15 of the rate alone: the 3 vmulps took 3 vpdpbusd slots */
    int shared = mul < alone * 13.5 / 15.0;
    printf("vmulps %s the vpdpbusd pipes\n", shared ? "shares" : "does not share");
    double dots = 33554432.0, muls = dots / 4;
    double ms = (shared ? dots + muls : dots) / (alone * 1e9) * 1e3;
    printf("prefill 128x4096x4096 (bs 32) int8-activation ceiling: %.2f ms "
           "(%.0f GOP/s)\n", ms, 2.0 * 128 * 4096 * 4096 / (ms * 1e-3) * 1e-9);
    return 0;
}
