/*
 * kernels.c: calls from generated code into the kernel library
 * (kernels/octk.h) and the linking of its bitcode into the module.
 *
 * A lowering fills the kernel's args struct natively (octet is compiled
 * for the same x86-64 ABI as the bitcode, so the struct layout is the
 * one the kernel reads), with the pointer fields that are only known at
 * run time left NULL.  cg_kernel_call stores those bytes as a read-only
 * global; the node function copies them to its stack, stores the run-time
 * pointers (tensors in the caller's buffers and the scratch) and runs
 * each phase in turn:
 *   n = octk_F_tasks(args, phase);
 *   if (n == 0) skip;
 *   if (pool && pool->n_threads > 1) pool->parallel_for(pool, octk_F_taskP, args, n);
 *   else octk_F_run(args, phase, 0, n);
 * After inlining, the optimizer sees the constant fields (shapes, strides,
 * zero points) and folds them into the kernel body.
 *
 * The bitcode (three variants built by CMake from the kernels folder with
 * clang-19: AVX2 + AVX-512 VNNI, AVX2+FMA+F16C, baseline x86-64, chosen from
 * the target's features) is linked once, after every node is
 * lowered; its functions become internal (unused ones are dropped) and get
 * the module's target-cpu and target-features, so they inline into the node
 * functions and follow --mcpu/--mattr.
 */
#include <stdlib.h>
#include <string.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/Linker.h>

#include "codegen/codegen.h"
#include "codegen/codegen_module.h"
#include "codegen/kernels/octk.h"

extern const unsigned char cg_kernels_amx[];
extern const unsigned long cg_kernels_amx_size;
extern const unsigned char cg_kernels_vnni[];
extern const unsigned long cg_kernels_vnni_size;
extern const unsigned char cg_kernels_avx2[];
extern const unsigned long cg_kernels_avx2_size;
extern const unsigned char cg_kernels_generic[];
extern const unsigned long cg_kernels_generic_size;

bool cg_kernels_available(const cg_fn *f)
{
    return f->cm->x86_64 || f->cm->native_kernels;
}

unsigned cg_kernels_isa(const cg_fn *f)
{
    if (f->cm->native_kernels) /* whatever octet's own copy was built for */
        return octk_build_isa();
    return (f->cm->avx2 ? OCTK_ISA_AVX2 : 0) | (f->cm->vnni ? OCTK_ISA_VNNI : 0);
}

LLVMValueRef cg_const_data(cg_fn *f, const void *data, size_t bytes)
{
    static const uint8_t zero = 0;
    LLVMValueRef init = LLVMConstStringInContext(f->llc, bytes ? data : (const void *)&zero,
                                                 bytes ? (unsigned)bytes : 1, 1);
    LLVMValueRef gv = LLVMAddGlobal(f->mod, LLVMTypeOf(init), "k");
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetAlignment(gv, CG_ALIGN);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    return gv;
}

LLVMValueRef cg_weight_at(cg_fn *f, uint64_t offset)
{
    LLVMValueRef base = LLVMBuildLoad2(f->b, f->ptr, f->cm->wbase, "weights");
    return cg_gep(f, f->i8, base, cg_i64c(f, (int64_t)offset));
}

LLVMValueRef cg_weight_data(cg_fn *f, const void *data, size_t bytes, uint64_t *offset)
{
    cg_module *cm = f->cm;
    if (!cm->weights_file)
        return cg_const_data(f, data, bytes);
    size_t off = (cm->wlen + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    if (off + bytes > cm->wcap) {
        size_t cap = cm->wcap ? cm->wcap : 1 << 16;
        while (cap < off + bytes)
            cap *= 2;
        uint8_t *grown = realloc(cm->wblob, cap);
        if (!grown) { /* reported by cg_compile once lowering ends */
            cm->wblob_failed = true;
            return LLVMConstPointerNull(f->ptr);
        }
        cm->wblob = grown;
        cm->wcap = cap;
    }
    memset(cm->wblob + cm->wlen, 0, off - cm->wlen);
    if (bytes)
        memcpy(cm->wblob + off, data, bytes);
    cm->wlen = off + bytes;
    if (offset)
        *offset = off;
    return cg_weight_at(f, off);
}

LLVMValueRef cg_workspace(cg_fn *f, uint64_t bytes)
{
    if (bytes > f->cm->work_size)
        f->cm->work_size = bytes;
    return cg_gep(f, f->i8, f->arg_scratch, cg_i64c(f, (int64_t)f->cm->work_offset));
}

void cg_report(cg_fn *f, const ir_node *n, const char *kernel, const char *path)
{
    cg_module *cm = f->cm;
    if (cm->n_report == cm->cap_report) {
        size_t cap = cm->cap_report ? 2 * cm->cap_report : 64;
        cg_report_line *grown = ir_alloc_array(f->ctx, cap, sizeof *grown);
        if (!grown) { /* cg_compile fails once lowering ends */
            cm->report_failed = true;
            return;
        }
        if (cm->n_report)
            memcpy(grown, cm->report, cm->n_report * sizeof *grown);
        cm->report = grown;
        cm->cap_report = cap;
    }
    cm->report[cm->n_report++] = (cg_report_line){
        .node = n->name && n->name[0] ? n->name : n->out[0] ? n->out[0]->name : "",
        .op = n->op_type, .kernel = kernel, .path = path};
}

/* The function `name` of type ty, declared if the module has none yet. */
static LLVMValueRef get_fn(cg_fn *f, const char *name, LLVMTypeRef ty)
{
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, name);
    return fn ? fn : LLVMAddFunction(f->mod, name, ty);
}

/* octk_F_taskP(arg, begin, end) = octk_F_run(arg, P, begin, end): the
 * octrt_task_fn the pool runs. */
static LLVMValueRef task_wrapper(cg_fn *f, const char *family, int phase, LLVMValueRef run,
                                 LLVMTypeRef run_ty)
{
    char name[96];
    snprintf(name, sizeof name, "octk_%s_task%d", family, phase);
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, name);
    if (fn)
        return fn;
    LLVMTypeRef params[3] = {f->ptr, f->i64, f->i64};
    fn = LLVMAddFunction(f->mod, name, LLVMFunctionType(f->vd, params, 3, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(f->llc);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(f->llc, fn, "entry"));
    LLVMValueRef args[4] = {LLVMGetParam(fn, 0), LLVMConstInt(f->i32, (unsigned)phase, 0),
                            LLVMGetParam(fn, 1), LLVMGetParam(fn, 2)};
    LLVMBuildCall2(b, run_ty, run, args, 4, "");
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
    return fn;
}

/* An alloca of `size` bytes in the entry block of the current function. */
static LLVMValueRef entry_alloca(cg_fn *f, size_t size)
{
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(f->fn);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(f->llc);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(b, first);
    else
        LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef a = LLVMBuildAlloca(b, LLVMArrayType2(f->i8, size ? size : 1), "kargs");
    LLVMSetAlignment(a, 16);
    LLVMDisposeBuilder(b);
    return a;
}

void cg_kernel_call(cg_fn *f, const char *family, const void *args, size_t size,
                    const cg_kptr *ptrs, int n_ptrs)
{
    f->cm->used_kernels = true;
    char name[96];
    LLVMTypeRef tasks_params[2] = {f->ptr, f->i32};
    LLVMTypeRef tasks_ty = LLVMFunctionType(f->i64, tasks_params, 2, 0);
    snprintf(name, sizeof name, "octk_%s_tasks", family);
    LLVMValueRef tasks = get_fn(f, name, tasks_ty);
    LLVMTypeRef run_params[4] = {f->ptr, f->i32, f->i64, f->i64};
    LLVMTypeRef run_ty = LLVMFunctionType(f->vd, run_params, 4, 0);
    snprintf(name, sizeof name, "octk_%s_run", family);
    LLVMValueRef run = get_fn(f, name, run_ty);

    LLVMValueRef a = entry_alloca(f, size);
    LLVMBuildMemCpy(f->b, a, 16, cg_const_data(f, args, size), CG_ALIGN,
                    LLVMConstInt(f->i64, size, 0));
    for (int i = 0; i < n_ptrs; i++)
        LLVMBuildStore(f->b, ptrs[i].value, cg_gep(f, f->i8, a, cg_i64c(f, (int64_t)ptrs[i].offset)));

    /* threaded = pool != NULL && pool->n_threads > 1 (struct octrt_pool:
     * int32 n_threads at offset 0, parallel_for at offset 8) */
    LLVMValueRef has_pool = LLVMBuildIsNotNull(f->b, f->arg_pool, "");
    LLVMBasicBlockRef check = LLVMAppendBasicBlockInContext(f->llc, f->fn, "pool");
    LLVMBasicBlockRef decided = LLVMAppendBasicBlockInContext(f->llc, f->fn, "decided");
    LLVMBasicBlockRef from = LLVMGetInsertBlock(f->b);
    LLVMBuildCondBr(f->b, has_pool, check, decided);
    LLVMPositionBuilderAtEnd(f->b, check);
    LLVMValueRef nthr = LLVMBuildLoad2(f->b, f->i32, f->arg_pool, "");
    LLVMValueRef many = LLVMBuildICmp(f->b, LLVMIntSGT, nthr, LLVMConstInt(f->i32, 1, 0), "");
    LLVMBuildBr(f->b, decided);
    LLVMPositionBuilderAtEnd(f->b, decided);
    LLVMValueRef threaded = LLVMBuildPhi(f->b, f->i1, "");
    LLVMValueRef vals[2] = {LLVMConstInt(f->i1, 0, 0), many};
    LLVMBasicBlockRef blocks[2] = {from, check};
    LLVMAddIncoming(threaded, vals, blocks, 2);

    LLVMTypeRef task_params[3] = {f->ptr, f->i64, f->i64};
    LLVMTypeRef pf_params[4] = {f->ptr, f->ptr, f->ptr, f->i64};
    LLVMTypeRef pf_ty = LLVMFunctionType(f->vd, pf_params, 4, 0);
    (void)task_params;
    for (int phase = 0; phase < OCTK_PHASES; phase++) {
        LLVMValueRef targs[2] = {a, LLVMConstInt(f->i32, (unsigned)phase, 0)};
        LLVMValueRef n = LLVMBuildCall2(f->b, tasks_ty, tasks, targs, 2, "");
        LLVMBasicBlockRef some = LLVMAppendBasicBlockInContext(f->llc, f->fn, "some");
        LLVMBasicBlockRef par = LLVMAppendBasicBlockInContext(f->llc, f->fn, "par");
        LLVMBasicBlockRef seq = LLVMAppendBasicBlockInContext(f->llc, f->fn, "seq");
        LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->llc, f->fn, "done");
        LLVMValueRef none = LLVMBuildICmp(f->b, LLVMIntEQ, n, cg_i64c(f, 0), "");
        LLVMBuildCondBr(f->b, none, done, some);
        LLVMPositionBuilderAtEnd(f->b, some);
        LLVMBuildCondBr(f->b, threaded, par, seq);
        LLVMPositionBuilderAtEnd(f->b, par);
        LLVMValueRef slot = cg_gep(f, f->i8, f->arg_pool, cg_i64c(f, 8));
        LLVMValueRef pf = LLVMBuildLoad2(f->b, f->ptr, slot, "");
        LLVMValueRef pargs[4] = {f->arg_pool, task_wrapper(f, family, phase, run, run_ty), a, n};
        LLVMBuildCall2(f->b, pf_ty, pf, pargs, 4, "");
        LLVMBuildBr(f->b, done);
        LLVMPositionBuilderAtEnd(f->b, seq);
        LLVMValueRef rargs[4] = {a, LLVMConstInt(f->i32, (unsigned)phase, 0), cg_i64c(f, 0), n};
        LLVMBuildCall2(f->b, run_ty, run, rargs, 4, "");
        LLVMBuildBr(f->b, done);
        LLVMPositionBuilderAtEnd(f->b, done);
    }
}

/* Replaces string attribute `key` of fn by value (or removes it if NULL). */
static void set_fn_attr(LLVMContextRef llc, LLVMValueRef fn, const char *key, const char *value)
{
    LLVMRemoveStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, key, (unsigned)strlen(key));
    if (value)
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(llc, key, (unsigned)strlen(key), value,
                                                          (unsigned)strlen(value)));
}

oct_status cg_kernels_link(cg_module *cm)
{
    if (!cm->used_kernels || cm->native_kernels)
        return OCT_OK;
    const unsigned char *data = cm->amx    ? cg_kernels_amx
                              : cm->vnni ? cg_kernels_vnni
                              : cm->avx2 ? cg_kernels_avx2
                                         : cg_kernels_generic;
    size_t size = cm->amx    ? cg_kernels_amx_size
                : cm->vnni ? cg_kernels_vnni_size
                : cm->avx2 ? cg_kernels_avx2_size
                           : cg_kernels_generic_size;
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRange((const char *)data, size,
                                                                    "octk", 0);
    LLVMModuleRef km = NULL;
    bool bad = LLVMParseBitcodeInContext2(cm->llc, buf, &km);
    LLVMDisposeMemoryBuffer(buf);
    if (bad)
        return oct_error(cm->ctx, OCT_EINTERNAL, "compile: the embedded kernel bitcode "
                         "does not parse");
    LLVMSetTarget(km, LLVMGetTarget(cm->mod));
    LLVMSetDataLayout(km, LLVMGetDataLayoutStr(cm->mod));
    if (LLVMLinkModules2(cm->mod, km))
        return oct_error(cm->ctx, OCT_EINTERNAL, "compile: linking the kernel library failed");
    for (LLVMValueRef fn = LLVMGetFirstFunction(cm->mod); fn; fn = LLVMGetNextFunction(fn)) {
        size_t len;
        const char *name = LLVMGetValueName2(fn, &len);
        if (LLVMIsDeclaration(fn))
            continue;
        if (len >= 5 && !strncmp(name, "octk_", 5))
            LLVMSetLinkage(fn, LLVMInternalLinkage);
        /* every definition, the kernels' static helpers included (ours
         * already carry these values) */
        set_fn_attr(cm->llc, fn, "target-cpu", cm->cpu);
        set_fn_attr(cm->llc, fn, "target-features", cm->features);
        set_fn_attr(cm->llc, fn, "tune-cpu", NULL);
    }
    return OCT_OK;
}
