/*
 * target.c: the machine a module is compiled for, decided from what the
 * user asked and never from the host unless the host was asked for.
 *
 * `--mcpu` absent (or `native`) means the host: its CPU name and its
 * feature string, `--mattr` appended.  `--mcpu=NAME` means exactly that
 * CPU: LLVM's features for NAME plus `--mattr` (which adds `+f` or removes
 * `-f`), and none of the host's: a haswell object must run on a haswell.
 * An x86 CPU name LLVM does not know is a usage error (LLVM itself would
 * only warn on stderr and compile for a generic CPU); the names are the
 * ones `llc-19 -mcpu=help` lists, captured at build time (cg_x86_cpus.c).
 *
 * Which kernel variant is linked (kernels.c) and which instruction paths
 * the lowerings report follow the target's features.  For a named CPU
 * those are implied by the name, which the LLVM C API cannot list; so we
 * ask LLVM's own rule instead: the inliner inlines a callee only when the
 * caller's features include the callee's (X86's areInlineCompatible, on
 * the subtarget built from target-cpu + target-features).  A probe module
 * has one caller with the target's CPU and features and one empty callee
 * per feature of interest (`x86-64` + `+F`); after the `inline` pass, a
 * call left standing is a feature the target lacks.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/codegen.h"
#include "codegen/codegen_module.h"
#include "codegen/kernels/octk_cpu.h"

extern const char *const cg_x86_cpus[]; /* generated, NULL-terminated */

/* The features reported and tested (kernels/octk_cpu.h), bit i = row i. */
static const char *const probed[] = {
#define PROBED(id, name) name,
    OCTK_CPU_FEATURES(PROBED)
#undef PROBED
};
enum { N_PROBED = OCTK_CPU_N };

static bool x86_cpu_known(const char *cpu)
{
    for (const char *const *p = cg_x86_cpus; *p; p++)
        if (!strcmp(*p, cpu))
            return true;
    return false;
}

/* The probed features (bit i: probed[i]) that LLVM gives (cpu, features)
 * on tm's target. */
static unsigned probe_features(LLVMTargetMachineRef tm, const char *triple, const char *cpu,
                               const char *features)
{
    LLVMContextRef llc = LLVMContextCreate();
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("octet_probe", llc);
    LLVMSetTarget(mod, triple);
    LLVMTypeRef fn_ty = LLVMFunctionType(LLVMVoidTypeInContext(llc), NULL, 0, 0);
    LLVMValueRef caller = LLVMAddFunction(mod, "probe", fn_ty);
    LLVMAddAttributeAtIndex(caller, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(llc, "target-cpu", 10, cpu,
                                                      (unsigned)strlen(cpu)));
    LLVMAddAttributeAtIndex(caller, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(llc, "target-features", 15, features,
                                                      (unsigned)strlen(features)));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(llc);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(llc, caller, "entry");
    for (int i = 0; i < N_PROBED; i++) {
        char name[32], feat[32];
        snprintf(name, sizeof name, "p%d", i);
        snprintf(feat, sizeof feat, "+%s", probed[i]);
        LLVMValueRef callee = LLVMAddFunction(mod, name, fn_ty);
        LLVMSetLinkage(callee, LLVMInternalLinkage);
        LLVMAddAttributeAtIndex(callee, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(llc, "target-cpu", 10, "x86-64", 6));
        LLVMAddAttributeAtIndex(callee, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(llc, "target-features", 15, feat,
                                                          (unsigned)strlen(feat)));
        LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(llc, callee, "entry"));
        LLVMBuildRetVoid(b);
        LLVMPositionBuilderAtEnd(b, entry);
        LLVMBuildCall2(b, fn_ty, callee, NULL, 0, "");
    }
    LLVMPositionBuilderAtEnd(b, entry);
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);

    unsigned has = (unsigned)((1ull << N_PROBED) - 1);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef err = LLVMRunPasses(mod, "inline", tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (err) { /* cannot tell: claim nothing, so only baseline code is chosen */
        LLVMConsumeError(err);
        has = 0;
    }
    for (LLVMValueRef in = LLVMGetFirstInstruction(LLVMGetEntryBasicBlock(caller)); in && has;
         in = LLVMGetNextInstruction(in)) {
        if (!LLVMIsACallInst(in))
            continue;
        size_t len;
        const char *name = LLVMGetValueName2(LLVMGetCalledValue(in), &len);
        if (len > 1 && name[0] == 'p')
            has &= ~(1u << atoi(name + 1)); /* still called: not inlinable */
    }
    LLVMDisposeModule(mod);
    LLVMContextDispose(llc);
    return has;
}

/* LLVM's target registry is filled once per process; two threads
 * compiling at once (one context each) must not both fill it. */
static void init_targets(void)
{
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    LLVMInitializeAllAsmParsers(); /* the inline asm of kernels/cpu.c (cpuid, xgetbv) */
}

oct_status cg_make_target(oct_ctx *ctx, const cg_options *o, cg_module *cm)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_targets);
    char *triple = o->triple ? LLVMNormalizeTargetTriple(o->triple) : LLVMGetDefaultTargetTriple();
    bool x86_64 = !strncmp(triple, "x86_64", 6);
    /* the host only when nothing else was named */
    bool native = o->cpu ? !strcmp(o->cpu, "native") : !o->triple;
    char *host_cpu = native ? LLVMGetHostCPUName() : NULL;
    char *host_feat = native ? LLVMGetHostCPUFeatures() : NULL;
    const char *cpu_s = native ? host_cpu : o->cpu ? o->cpu : "generic";
    char *feat_s = NULL;
    if (native && o->features) { /* the host's, then the user's (later wins) */
        size_t n = strlen(host_feat) + strlen(o->features) + 2;
        feat_s = ir_alloc(ctx, n);
        if (feat_s)
            snprintf(feat_s, n, "%s%s%s", host_feat, *host_feat ? "," : "", o->features);
    } else {
        feat_s = ir_strdup(ctx, native ? host_feat : o->features ? o->features : "");
    }
    LLVMTargetRef target;
    char *err = NULL;
    oct_status st = OCT_OK;
    if (!feat_s) {
        st = OCT_EINTERNAL;
    } else if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        st = oct_error(ctx, OCT_EUSAGE, "compile: unknown target triple '%s': %s", triple,
                       err ? err : "");
    } else if (x86_64 && !native && o->cpu && !x86_cpu_known(o->cpu)) {
        st = oct_error(ctx, OCT_EUSAGE, "compile: unknown CPU '%s' for %s (LLVM 19's x86 "
                       "names, e.g. haswell, x86-64-v3, x86-64-v4, icelake-server; "
                       "`llc-19 -mtriple=x86_64 -mcpu=help` lists them; default: native, "
                       "the host)", o->cpu, triple);
    } else {
        static const LLVMCodeGenOptLevel levels[] = {
            LLVMCodeGenLevelNone, LLVMCodeGenLevelLess, LLVMCodeGenLevelDefault,
            LLVMCodeGenLevelAggressive};
        cm->tm = LLVMCreateTargetMachine(target, triple, cpu_s, feat_s,
                                         levels[o->opt_level], LLVMRelocPIC,
                                         LLVMCodeModelDefault);
        if (!cm->tm)
            st = oct_error(ctx, OCT_EUSAGE, "compile: cannot create a target machine for "
                           "'%s' (cpu '%s')", triple, cpu_s);
        cm->x86_64 = x86_64;
        cm->native = native;
        cm->isa = st == OCT_OK && x86_64 ? probe_features(cm->tm, triple, cpu_s, feat_s) : 0;
        /* the AVX2 kernel variants are compiled for AVX2, FMA and F16C; the
         * VNNI one for AVX-512 F, BW, VL and VNNI besides, the AMX one for
         * AMX-TILE and AMX-INT8 besides those */
        unsigned avx2 = OCTK_CPU_AVX2 | OCTK_CPU_FMA | OCTK_CPU_F16C;
        unsigned vnni = avx2 | OCTK_CPU_AVX512F | OCTK_CPU_AVX512BW | OCTK_CPU_AVX512VL |
                        OCTK_CPU_AVX512VNNI;
        cm->avx2 = (cm->isa & avx2) == avx2;
        cm->vnni = (cm->isa & vnni) == vnni;
        unsigned amx = vnni | OCTK_CPU_AMXTILE | OCTK_CPU_AMXINT8;
        cm->amx = (cm->isa & amx) == amx;
        cm->triple = ir_strdup(ctx, triple);
        cm->cpu = ir_strdup(ctx, cpu_s);
        cm->features = feat_s;
        if (st == OCT_OK && (!cm->triple || !cm->cpu))
            st = OCT_EINTERNAL;
    }
    LLVMDisposeMessage(err);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(host_cpu);
    LLVMDisposeMessage(host_feat);
    return st;
}

const char *cg_isa_string(oct_ctx *ctx, unsigned isa)
{
    size_t cap = 1;
    for (int i = 0; i < N_PROBED; i++)
        cap += strlen(probed[i]) + 2;
    char *s = ir_alloc(ctx, cap);
    if (!s)
        return "";
    size_t n = 0;
    for (int i = 0; i < N_PROBED; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s%c%s", n ? "," : "",
                              isa & (1u << i) ? '+' : '-', probed[i]);
    s[n] = 0;
    return s;
}

const char *cg_kernel_variant(const cg_module *cm)
{
    return !cm->x86_64 ? "none"
           : cm->amx   ? "amx-int8"
           : cm->vnni  ? "avx512-vnni"
           : cm->avx2  ? "avx2"
                       : "x86-64";
}
