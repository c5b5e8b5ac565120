/*
 * octk_cpu.h: the x86 features a compiled model's code may need, one
 * table (X-macro) read by the compiler and by the load-time dispatcher of
 * a library compiled for several CPUs (cpu.c).
 *
 * The compiler (src/codegen/target.c) asks LLVM which of these a target
 * CPU has; the dispatcher asks CPUID which of them this CPU runs (with the
 * OS saving the AVX, AVX-512 and AMX register state, XGETBV), and runs a
 * variant only if it has every feature the variant was compiled with.
 * Columns: enumerator suffix, LLVM feature name.  At most 31 rows (the masks are int enumerators).
 */
#ifndef OCTET_OCTK_CPU_H
#define OCTET_OCTK_CPU_H

#define OCTK_CPU_FEATURES(X)                                                          \
    X(AVX2, "avx2") X(FMA, "fma") X(F16C, "f16c") X(AVX512F, "avx512f")               \
    X(AVX512BW, "avx512bw") X(AVX512VL, "avx512vl") X(AVX512DQ, "avx512dq")           \
    X(AVX512VNNI, "avx512vnni") X(AVX512BF16, "avx512bf16")                           \
    X(AVX512FP16, "avx512fp16") X(AMXTILE, "amx-tile") X(AMXINT8, "amx-int8")         \
    X(AMXBF16, "amx-bf16") X(AVX, "avx") X(SSE42, "sse4.2") X(POPCNT, "popcnt")       \
    X(BMI, "bmi") X(BMI2, "bmi2") X(LZCNT, "lzcnt") X(MOVBE, "movbe")                 \
    X(AVX512CD, "avx512cd") X(AVX512VBMI, "avx512vbmi") X(AVX512VBMI2, "avx512vbmi2") \
    X(AVX512BITALG, "avx512bitalg") X(AVX512VPOPCNTDQ, "avx512vpopcntdq")             \
    X(AVX512IFMA, "avx512ifma") X(GFNI, "gfni") X(VAES, "vaes")                       \
    X(VPCLMULQDQ, "vpclmulqdq") X(AVXVNNI, "avxvnni") X(SHA, "sha")

enum {
#define OCTK_CPU_BIT(id, name) OCTK_CPU_BIT_##id,
    OCTK_CPU_FEATURES(OCTK_CPU_BIT)
#undef OCTK_CPU_BIT
    OCTK_CPU_N
};
enum {
#define OCTK_CPU_MASK(id, name) OCTK_CPU_##id = 1u << OCTK_CPU_BIT_##id,
    OCTK_CPU_FEATURES(OCTK_CPU_MASK)
#undef OCTK_CPU_MASK
};

/* The table's features this CPU runs (bit OCTK_CPU_BIT_*). */
unsigned octk_cpu_features(void);

/* The variant of a multi-target library to run: OCTET_FORCE_VARIANT, if
 * set, names one (it is chosen if this CPU has every feature in its needs,
 * otherwise a message on stderr names the missing ones and -1 is
 * returned); else the runnable variant needing the most features (the
 * first listed of equals), or -1 with a message when none is runnable.
 * model names the library in the messages. */
int octk_pick_variant(const char *model, int n, const char *const *names,
                      const unsigned *needs);

#endif
