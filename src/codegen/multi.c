/*
 * multi.c: one library for several CPUs (`--mcpu=x86-64-v3,x86-64-v4,...`).
 *
 * The model is compiled once per listed CPU, exactly as for that CPU alone
 * (its own features, kernel variant and packed weights), into one LLVM
 * context with the symbol prefix NAME__vK; the modules are linked into one
 * whose public symbols are the usual ones of NAME.h.  Each variant's
 * functions keep their own target-cpu and target-features, so the code
 * generator (run with a baseline x86-64 target machine) emits each for its
 * CPU.  A constructor run at load time picks the variant
 * (octk_pick_variant in kernels/cpu.c, linked from the baseline kernel
 * bitcode): OCTET_FORCE_VARIANT=CPU forces one, refused with a message on
 * stderr when this CPU lacks a feature it was compiled for; otherwise the
 * runnable variant needing the most features.  The entry points forward to
 * the chosen variant and return 2 when there is none.  NAME_variant()
 * names it (NULL when none).  NAME_scratch_size is the largest variant's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/codegen.h"
#include "codegen/codegen_module.h"

enum { MAX_VARIANTS = 8 };

/* The entry points every library has (n_ptr pointer arguments, i32
 * result) and those of a symbolic batch. */
static const struct { const char *suffix; unsigned n_ptr; bool batch; } entries[] = {
    {"_run", 3, false}, {"_run_threads", 4, false},
    {"_run_dims", 4, true}, {"_run_dims_threads", 5, true},
};

/* Splits the CPU list into names (arena); OCT_EUSAGE on an empty or
 * repeated name or too many. */
static oct_status split_cpus(oct_ctx *ctx, const char *list, const char **names, int *n)
{
    *n = 0;
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!len || *n == MAX_VARIANTS)
            return oct_error(ctx, OCT_EUSAGE, "compile: --mcpu=%s: %s", list,
                             len ? "at most 8 CPUs in a list" : "an empty CPU name");
        char *name = ir_alloc(ctx, len + 1);
        if (!name)
            return OCT_EINTERNAL;
        memcpy(name, p, len);
        name[len] = 0;
        for (int k = 0; k < *n; k++)
            if (!strcmp(names[k], name))
                return oct_error(ctx, OCT_EUSAGE, "compile: --mcpu=%s names '%s' twice",
                                 list, name);
        names[(*n)++] = name;
        if (!end)
            return OCT_OK;
        p = end + 1;
    }
}

static LLVMValueRef private_bytes(cg_module *cm, const char *s)
{
    LLVMValueRef init = LLVMConstStringInContext(cm->llc, s, (unsigned)strlen(s), 0);
    LLVMValueRef gv = LLVMAddGlobal(cm->mod, LLVMTypeOf(init), "vname");
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    return gv;
}

/* The dispatcher in cm->mod: @NAME__variant, the constructor setting it,
 * the forwarding entry points, NAME_variant(), NAME_scratch_size(_for)
 * and NAME_signature. */
static void build_dispatcher(cg_module *cm, cg_module **v, int n, const char **cpus)
{
    LLVMContextRef llc = cm->llc;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(llc), i64 = LLVMInt64TypeInContext(llc);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(llc, 0), vd = LLVMVoidTypeInContext(llc);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(llc);
    char sym[300];

    snprintf(sym, sizeof sym, "%s__variant", cm->name);
    LLVMValueRef chosen = LLVMAddGlobal(cm->mod, i32, sym);
    LLVMSetInitializer(chosen, LLVMConstInt(i32, (unsigned long long)-1, 1));
    LLVMSetLinkage(chosen, LLVMInternalLinkage);

    /* names[] and needs[] for octk_pick_variant */
    LLVMValueRef name_ptrs[MAX_VARIANTS], needs[MAX_VARIANTS];
    for (int k = 0; k < n; k++) {
        name_ptrs[k] = private_bytes(cm, cpus[k]);
        needs[k] = LLVMConstInt(i32, v[k]->isa, 0);
    }
    LLVMValueRef names_init = LLVMConstArray2(ptr, name_ptrs, (uint64_t)n);
    LLVMValueRef names = LLVMAddGlobal(cm->mod, LLVMTypeOf(names_init), "vnames");
    LLVMSetInitializer(names, names_init);
    LLVMSetGlobalConstant(names, 1);
    LLVMSetLinkage(names, LLVMPrivateLinkage);
    LLVMValueRef needs_init = LLVMConstArray2(i32, needs, (uint64_t)n);
    LLVMValueRef needs_gv = LLVMAddGlobal(cm->mod, LLVMTypeOf(needs_init), "vneeds");
    LLVMSetInitializer(needs_gv, needs_init);
    LLVMSetGlobalConstant(needs_gv, 1);
    LLVMSetLinkage(needs_gv, LLVMPrivateLinkage);

    /* constructor: @NAME__variant = octk_pick_variant(NAME, n, names, needs) */
    LLVMTypeRef pick_params[4] = {ptr, i32, ptr, ptr};
    LLVMTypeRef pick_ty = LLVMFunctionType(i32, pick_params, 4, 0);
    LLVMValueRef pick = LLVMAddFunction(cm->mod, "octk_pick_variant", pick_ty);
    snprintf(sym, sizeof sym, "%s__select", cm->name);
    LLVMTypeRef ctor_ty = LLVMFunctionType(vd, NULL, 0, 0);
    LLVMValueRef ctor = LLVMAddFunction(cm->mod, sym, ctor_ty);
    LLVMSetLinkage(ctor, LLVMInternalLinkage);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(llc, ctor, "entry"));
    LLVMValueRef pargs[4] = {private_bytes(cm, cm->name), LLVMConstInt(i32, (unsigned)n, 0),
                             names, needs_gv};
    LLVMBuildStore(b, LLVMBuildCall2(b, pick_ty, pick, pargs, 4, ""), chosen);
    LLVMBuildRetVoid(b);
    LLVMTypeRef ctor_fields[3] = {i32, ptr, ptr};
    LLVMTypeRef ctor_entry = LLVMStructTypeInContext(llc, ctor_fields, 3, 0);
    LLVMValueRef ctor_vals[3] = {LLVMConstInt(i32, 65535, 0), ctor, LLVMConstPointerNull(ptr)};
    LLVMValueRef one = LLVMConstNamedStruct(ctor_entry, ctor_vals, 3);
    LLVMValueRef ctors = LLVMAddGlobal(cm->mod, LLVMArrayType2(ctor_entry, 1), "llvm.global_ctors");
    LLVMSetInitializer(ctors, LLVMConstArray2(ctor_entry, &one, 1));
    LLVMSetLinkage(ctors, LLVMAppendingLinkage);

    /* forwarding entry points: switch on @NAME__variant, 2 when none */
    for (size_t e = 0; e < sizeof entries / sizeof entries[0]; e++) {
        if (entries[e].batch && !cm->batch)
            continue;
        LLVMTypeRef params[5] = {ptr, ptr, ptr, ptr, ptr};
        LLVMTypeRef ty = LLVMFunctionType(i32, params, entries[e].n_ptr, 0);
        snprintf(sym, sizeof sym, "%s%s", cm->name, entries[e].suffix);
        LLVMValueRef fn = LLVMAddFunction(cm->mod, sym, ty);
        LLVMValueRef args[5];
        for (unsigned a = 0; a < entries[e].n_ptr; a++)
            args[a] = LLVMGetParam(fn, a);
        LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(llc, fn, "entry");
        LLVMBasicBlockRef none = LLVMAppendBasicBlockInContext(llc, fn, "none");
        LLVMPositionBuilderAtEnd(b, none);
        LLVMBuildRet(b, LLVMConstInt(i32, 2, 0));
        LLVMPositionBuilderAtEnd(b, entry);
        LLVMValueRef sw = LLVMBuildSwitch(b, LLVMBuildLoad2(b, i32, chosen, "v"), none,
                                          (unsigned)n);
        for (int k = 0; k < n; k++) {
            LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(llc, fn, "variant");
            LLVMAddCase(sw, LLVMConstInt(i32, (unsigned)k, 0), bb);
            LLVMPositionBuilderAtEnd(b, bb);
            snprintf(sym, sizeof sym, "%s%s", v[k]->name, entries[e].suffix);
            LLVMValueRef target = LLVMAddFunction(cm->mod, sym, ty); /* linked in later */
            LLVMValueRef call = LLVMBuildCall2(b, ty, target, args, entries[e].n_ptr, "");
            LLVMSetTailCall(call, 1);
            LLVMBuildRet(b, call);
        }
    }

    /* const char *NAME_variant(void): the chosen CPU's name, or NULL */
    snprintf(sym, sizeof sym, "%s_variant", cm->name);
    LLVMValueRef vfn = LLVMAddFunction(cm->mod, sym, LLVMFunctionType(ptr, NULL, 0, 0));
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(llc, vfn, "entry"));
    LLVMValueRef k = LLVMBuildLoad2(b, i32, chosen, "v");
    LLVMValueRef ok = LLVMBuildICmp(b, LLVMIntSGE, k, LLVMConstInt(i32, 0, 0), "");
    LLVMValueRef idx[2] = {LLVMConstInt(i64, 0, 0),
                           LLVMBuildSelect(b, ok, k, LLVMConstInt(i32, 0, 0), "")};
    LLVMValueRef slot = LLVMBuildGEP2(b, LLVMTypeOf(names_init), names, idx, 2, "");
    LLVMValueRef name = LLVMBuildLoad2(b, ptr, slot, "");
    LLVMBuildRet(b, LLVMBuildSelect(b, ok, name, LLVMConstPointerNull(ptr), ""));

    if (cm->batch) {
        snprintf(sym, sizeof sym, "%s_scratch_size_for", cm->name);
        LLVMValueRef fs = LLVMAddFunction(cm->mod, sym, LLVMFunctionType(i64, &ptr, 1, 0));
        LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(llc, fs, "entry"));
        LLVMBuildRet(b, LLVMConstInt(i64, cm->scratch_size, 0));
    }
    snprintf(sym, sizeof sym, "%s_scratch_size", cm->name);
    LLVMValueRef ss = LLVMAddGlobal(cm->mod, i64, sym);
    LLVMSetInitializer(ss, LLVMConstInt(i64, cm->scratch_size, 0));
    LLVMSetGlobalConstant(ss, 1);
    snprintf(sym, sizeof sym, "%s_signature", cm->name);
    LLVMValueRef sig_init = LLVMConstStringInContext(llc, cm->signature,
                                                     (unsigned)strlen(cm->signature), 0);
    LLVMValueRef sig = LLVMAddGlobal(cm->mod, LLVMTypeOf(sig_init), sym);
    LLVMSetInitializer(sig, sig_init);
    LLVMSetGlobalConstant(sig, 1);
    LLVMDisposeBuilder(b);
}

oct_status cg_compile_multi(oct_ctx *ctx, const ir_model *m, const cg_options *opts,
                            cg_module **out)
{
    *out = NULL;
    const char *cpus[MAX_VARIANTS];
    int n;
    oct_status st = split_cpus(ctx, opts->cpu, cpus, &n);
    if (st)
        return st;
    if (opts->weights_file || opts->native_kernels || opts->context)
        return oct_error(ctx, OCT_EUNSUPPORTED, "compile: --mcpu=%s: a library for several "
                         "CPUs keeps its weights embedded (no --weights=file)", opts->cpu);
    cg_module *cm = calloc(1, sizeof *cm);
    if (!cm)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    cm->variants = calloc((size_t)n, sizeof *cm->variants);
    cm->llc = LLVMContextCreate();
    cm->own_llc = true;
    cm->ctx = ctx;
    if (!cm->variants) {
        cg_module_free(cm);
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    }
    for (int k = 0; k < n && !st; k++) {
        cg_options vo = *opts;
        vo.cpu = cpus[k];
        vo.context = cm->llc;
        vo.name = ir_sprintf(ctx, "%s__v%d", opts->name, k);
        st = vo.name ? cg_compile(ctx, m, &vo, &cm->variants[k]) : OCT_EINTERNAL;
        cm->n_variants += !st;
        if (!st && !cm->variants[k]->x86_64)
            st = oct_error(ctx, OCT_EUNSUPPORTED, "compile: --mcpu=%s: a library for "
                           "several CPUs is made for x86-64 targets only", opts->cpu);
    }
    /* the merged module: the first variant's tensors and plan, the largest
     * scratch, a baseline x86-64 target machine (each function carries its
     * own CPU and features) */
    cg_module *v0 = n ? cm->variants[0] : NULL, *big = v0;
    for (int k = 1; k < cm->n_variants; k++)
        if (cm->variants[k]->scratch_size > big->scratch_size)
            big = cm->variants[k];
    if (!st) {
        cm->model = v0->model;
        cm->name = ir_strdup(ctx, opts->name);
        cm->tens = v0->tens;
        cm->span = v0->span;
        cm->batch = v0->batch;
        cm->scratch_size = big->scratch_size;
        cm->work_offset = big->work_offset;
        cm->work_size = big->work_size;
        cm->fault = v0->fault; /* for the header: each variant has its slot */
        cg_options base = *opts;
        base.cpu = "x86-64";
        base.features = "";
        st = cm->name ? cg_make_target(ctx, &base, cm) : OCT_EINTERNAL;
    }
    if (!st)
        st = cg_signature(cm);
    if (!st) {
        cm->mod = LLVMModuleCreateWithNameInContext(cm->name, cm->llc);
        LLVMSetTarget(cm->mod, cm->triple);
        LLVMSetDataLayout(cm->mod, LLVMGetDataLayoutStr(v0->mod));
        build_dispatcher(cm, cm->variants, n, cpus);
        cm->used_kernels = true; /* octk_pick_variant, from the baseline bitcode */
        st = cg_kernels_link(cm);
    }
    for (int k = 0; k < n && !st; k++) {
        if (LLVMLinkModules2(cm->mod, cg_module_take(cm->variants[k])))
            st = oct_error(ctx, OCT_EINTERNAL, "compile: linking the variant for '%s' "
                           "failed", cpus[k]);
    }
    if (!st) { /* the header and report name the list */
        cm->cpu = ir_strdup(ctx, opts->cpu);
        st = cm->cpu ? OCT_OK : OCT_EINTERNAL;
    }
    if (!st) {
        cg_internalize_module(cm);
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMErrorRef e = LLVMRunPasses(cm->mod, "globaldce", cm->tm, po);
        LLVMDisposePassBuilderOptions(po);
        if (e) {
            char *msg = LLVMGetErrorMessage(e);
            st = oct_error(ctx, OCT_EINTERNAL, "compile: LLVM passes failed: %s", msg);
            LLVMDisposeErrorMessage(msg);
        }
    }
    char *err = NULL;
    if (!st && LLVMVerifyModule(cm->mod, LLVMReturnStatusAction, &err))
        st = oct_error(ctx, OCT_EINTERNAL, "compile: the multi-target module does not "
                       "verify: %.2000s", err ? err : "");
    LLVMDisposeMessage(err);
    if (st) {
        cg_module_free(cm);
        return st;
    }
    *out = cm;
    return OCT_OK;
}
