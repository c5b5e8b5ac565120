/*
 * cpu.c: what this CPU runs, and which variant of a multi-target library
 * to run on it.  Linked (from the baseline x86-64 bitcode) into the
 * load-time dispatcher of a library compiled with `--mcpu=A,B,...`
 * (src/codegen/multi.c), and called once by the AMX variant's GEMM
 * (qgemm.c) to ask whether the process may use tiles; the only code of
 * this folder that calls libc beyond memcpy/memset (getenv, strcmp,
 * fprintf, syscall), once at load or at that first call.
 *
 * A feature counts only if CPUID reports it and the OS saves its
 * registers: XCR0 bits 1-2 (SSE, AVX) for the AVX family, 5-7 (opmask,
 * ZMM upper halves, ZMM16-31) for AVX-512, 17-18 (tile config and data)
 * for AMX, which Linux also requires a process to ask for
 * (arch_prctl ARCH_REQ_XCOMP_PERM).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#endif

#include "octk_cpu.h"

static const char *const feature_names[] = {
#define OCTK_CPU_NAME(id, name) name,
    OCTK_CPU_FEATURES(OCTK_CPU_NAME)
#undef OCTK_CPU_NAME
};

#if defined(__x86_64__)
static unsigned long long xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

/* bit `bit` of register r of leaf/subleaf, as a mask `m` */
#define HAS(r, bit, m) (((r) >> (bit) & 1u) ? (m) : 0u)

unsigned octk_cpu_features(void)
{
    unsigned a, b, c, d, max;
    if (!__get_cpuid(0, &max, &b, &c, &d))
        return 0;
    __cpuid(1, a, b, c, d);
    unsigned f = HAS(c, 20, OCTK_CPU_SSE42) | HAS(c, 23, OCTK_CPU_POPCNT) |
                 HAS(c, 22, OCTK_CPU_MOVBE);
    unsigned vex = HAS(c, 28, OCTK_CPU_AVX) | HAS(c, 12, OCTK_CPU_FMA) |
                   HAS(c, 29, OCTK_CPU_F16C);
    unsigned long long xcr0 = (c >> 27 & 1u) ? xgetbv0() : 0; /* OSXSAVE */
    unsigned evex = 0, amx = 0;
    if (max >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f |= HAS(b, 3, OCTK_CPU_BMI) | HAS(b, 8, OCTK_CPU_BMI2) | HAS(b, 29, OCTK_CPU_SHA) |
             HAS(c, 8, OCTK_CPU_GFNI);
        vex |= HAS(b, 5, OCTK_CPU_AVX2) | HAS(c, 9, OCTK_CPU_VAES) |
               HAS(c, 10, OCTK_CPU_VPCLMULQDQ);
        evex = HAS(b, 16, OCTK_CPU_AVX512F) | HAS(b, 17, OCTK_CPU_AVX512DQ) |
               HAS(b, 21, OCTK_CPU_AVX512IFMA) | HAS(b, 28, OCTK_CPU_AVX512CD) |
               HAS(b, 30, OCTK_CPU_AVX512BW) | HAS(b, 31, OCTK_CPU_AVX512VL) |
               HAS(c, 1, OCTK_CPU_AVX512VBMI) | HAS(c, 6, OCTK_CPU_AVX512VBMI2) |
               HAS(c, 11, OCTK_CPU_AVX512VNNI) | HAS(c, 12, OCTK_CPU_AVX512BITALG) |
               HAS(c, 14, OCTK_CPU_AVX512VPOPCNTDQ) | HAS(d, 23, OCTK_CPU_AVX512FP16);
        amx = HAS(d, 22, OCTK_CPU_AMXBF16) | HAS(d, 24, OCTK_CPU_AMXTILE) |
              HAS(d, 25, OCTK_CPU_AMXINT8);
        if (a >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            vex |= HAS(a, 4, OCTK_CPU_AVXVNNI);
            evex |= HAS(a, 5, OCTK_CPU_AVX512BF16);
        }
    }
    if (__get_cpuid(0x80000001u, &a, &b, &c, &d))
        f |= HAS(c, 5, OCTK_CPU_LZCNT);
    if ((xcr0 & 0x6) == 0x6)
        f |= vex;
    if ((xcr0 & 0xe6) == 0xe6)
        f |= evex;
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18) */
    if (amx && (xcr0 & 0x60000) == 0x60000 && syscall(SYS_arch_prctl, 0x1023, 18) == 0)
        f |= amx;
    return f;
}
#else
unsigned octk_cpu_features(void)
{
    return 0;
}
#endif

/* "a,b,c": the features of mask, into buf. */
static const char *feature_list(unsigned mask, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < OCTK_CPU_N && n < cap; i++)
        if (mask >> i & 1u)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "", feature_names[i]);
    return buf;
}

static int popcount(unsigned x)
{
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

int octk_pick_variant(const char *model, int n, const char *const *names,
                      const unsigned *needs)
{
    unsigned have = octk_cpu_features();
    char buf[512];
    const char *force = getenv("OCTET_FORCE_VARIANT");
    if (force && *force) {
        for (int k = 0; k < n; k++) {
            if (strcmp(names[k], force))
                continue;
            unsigned missing = needs[k] & ~have;
            if (!missing)
                return k;
            fprintf(stderr, "octet: %s: OCTET_FORCE_VARIANT=%s: this CPU lacks %s, which "
                    "that variant was compiled for; the model will not run (its entry "
                    "points return 2)\n", model, force, feature_list(missing, buf, sizeof buf));
            return -1;
        }
        size_t len = 0;
        buf[0] = 0;
        for (int k = 0; k < n && len < sizeof buf; k++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", k ? ", " : "", names[k]);
        fprintf(stderr, "octet: %s: OCTET_FORCE_VARIANT=%s is not a variant of this library "
                "(it holds %s); the model will not run (its entry points return 2)\n",
                model, force, buf);
        return -1;
    }
    int best = -1;
    for (int k = 0; k < n; k++)
        if (!(needs[k] & ~have) && (best < 0 || popcount(needs[k]) > popcount(needs[best])))
            best = k;
    if (best < 0)
        fprintf(stderr, "octet: %s: this CPU runs none of the library's variants (it has "
                "%s); the model will not run (its entry points return 2)\n", model,
                feature_list(have, buf, sizeof buf));
    return best;
}
