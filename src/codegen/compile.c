/*
 * compile.c: the backend driver.  Checks that every tensor has a static
 * shape, plans memory, creates the LLVM module (target machine, weights as
 * read-only globals, one internal function per node through the lowering
 * dispatch, NAME_run calling them in order, NAME_scratch_size and the
 * NAME_signature JSON string; with a symbolic batch, NAME_run_dims looping
 * the batch-1 body), verifies the module before any optimization, then
 * runs the new pass manager's default<On> pipeline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Comdat.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/codegen.h"
#include "codegen/codegen_module.h"
#include "codegen/kernels/octk.h"
#include "codegen/symdims.h"
#include "ops/rules.h"

/* ---- tensors ------------------------------------------------------------- */

oct_status cg_fill_tensor(oct_ctx *ctx, const ir_value *v, cg_tensor *t)
{
    t->value = v;
    if (v->init) {
        const ir_tensor *it = v->init;
        if (it->rank > OPS_MAX_RANK)
            return oct_error(ctx, OCT_EUNSUPPORTED, "compile: tensor '%s' has rank %d",
                             v->name, it->rank);
        t->dtype = it->dtype;
        t->rank = it->rank;
        if (it->rank) /* a scalar has no dims array */
            memcpy(t->dims, it->dims, (size_t)it->rank * sizeof *t->dims);
        t->nelems = it->nelems;
        t->nbytes = it->nbytes;
        return OCT_OK;
    }
    const ir_type *ty = &v->type;
    bool ok = v->has_type && ty->rank >= 0 && ty->rank <= OPS_MAX_RANK &&
              ir_dtype_valid(ty->dtype);
    for (int d = 0; ok && d < ty->rank; d++)
        ok = ty->dims[d].value >= 0;
    /* a shape left open by a geometry input given at run time: name it */
    const ir_node *pn = v->producer;
    if (!ok && pn && (ir_op_info_of(pn->op)->flags & IR_OPF_DATA_LENGTH))
        return cg_data_length_error(ctx, pn, "compile");
    if (!ok && pn && (pn->op == IR_OP_IF || pn->op == IR_OP_LOOP || pn->op == IR_OP_SCAN))
        return cg_control_shape_error(ctx, pn, v);
    for (int i = 0; !ok && pn && i < pn->n_in; i++)
        if (ops_input_is_geometry(pn, i) && !pn->in[i]->init)
            return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, pn, 0, i,
                             pn->in[i]->name, "compile: the value of this input fixes the "
                             "shape of '%s' but is known only at run time (compiled code "
                             "has static shapes: make it a constant%s, or run the model "
                             "with `octet run --jit`, which compiles for the values "
                             "given)", v->name, pn->in[i]->producer ? " (bind symbolic "
                             "dims with --input-shape NAME=DIMS)" : "");
    if (!ok)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, v->producer, 1,
                         v->producer ? v->producer_out : -1, v->name,
                         "compile: tensor '%s' has no static shape (bind symbolic "
                         "dims with --input-shape NAME=DIMS)", v->name);
    t->dtype = ty->dtype;
    t->rank = ty->rank;
    for (int d = 0; d < ty->rank; d++)
        t->dims[d] = ty->dims[d].value;
    if (!ir_shape_elems(t->rank, t->dims, &t->nelems) ||
        !ir_dtype_bytes(t->dtype, t->nelems, &t->nbytes))
        return oct_error(ctx, OCT_EINPUT, "compile: tensor '%s' is too large", v->name);
    return OCT_OK;
}

/* The batch description matches the graph's inputs and outputs, and one
 * item of each batched tensor is a whole number of bytes. */
static oct_status check_batch(oct_ctx *ctx, const cg_module *cm)
{
    const ir_graph *g = cm->model->graph;
    const cg_batch *bt = cm->batch;
    size_t n_in = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        n_in += !g->inputs[i]->init;
    if (bt->n_in != n_in || bt->n_out != g->n_outputs)
        return oct_error(ctx, OCT_EINTERNAL, "compile: the batch description does not "
                         "match the graph's inputs and outputs");
    for (size_t i = 0, k = 0; i < g->n_inputs + g->n_outputs; i++) {
        bool out = i >= g->n_inputs;
        const ir_value *v = out ? g->outputs[i - g->n_inputs] : g->inputs[i];
        if (!out && v->init)
            continue;
        bool batched = out ? bt->out_batched[i - g->n_inputs] : bt->in_batched[k++];
        const cg_tensor *t = &cm->tens[v->id];
        if (batched && t->nelems * ir_dtype_info(t->dtype)->bits != t->nbytes * 8)
            return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1, v->name,
                             "compile: one item of '%s' along symbolic dimension '%s' is "
                             "not a whole number of bytes: bind it with --input-shape",
                             v->name, bt->name);
    }
    return OCT_OK;
}

/* ---- target -------------------------------------------------------------- */

void cg_add_target_attrs(cg_module *cm, LLVMValueRef fn)
{
    LLVMAttributeRef a = LLVMCreateStringAttribute(cm->llc, "target-cpu", 10, cm->cpu,
                                                   (unsigned)strlen(cm->cpu));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
    a = LLVMCreateStringAttribute(cm->llc, "target-features", 15, cm->features,
                                  (unsigned)strlen(cm->features));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
    unsigned kind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(cm->llc, kind, 0));
}

/* ---- module -------------------------------------------------------------- */

static LLVMValueRef add_bytes_global(cg_module *cm, const char *name, const void *data,
                                     size_t len, bool internal)
{
    LLVMValueRef init = LLVMConstStringInContext(cm->llc, data, (unsigned)len, 1);
    LLVMValueRef gv = LLVMAddGlobal(cm->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetAlignment(gv, CG_ALIGN);
    if (internal) {
        LLVMSetLinkage(gv, LLVMPrivateLinkage);
        LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    }
    return gv;
}

oct_status cg_node_function(cg_fn *f, const ir_graph *g, size_t k, const int (*span)[2],
                            const char *tag, LLVMValueRef *out)
{
    cg_module *cm = f->cm;
    const ir_node *n = g->nodes[k];
    *out = NULL;
    /* a fused run is lowered at its last node */
    int run_lo = span ? span[k][0] : (int)k, run_hi = span ? span[k][1] : (int)k;
    if (run_hi > run_lo && (int)k < run_hi)
        return OCT_OK;
    /* a DequantizeLinear of FP8 or INT4 weights its reader's kernel widens */
    if (n->op == IR_OP_DEQUANTIZELINEAR && n->n_out > 0 && n->out[0] &&
        f->tens[n->out[0]->id].absorbed)
        return OCT_OK;
    cg_lower_fn lower = cg_lowering(n->op);
    if (!lower)
        return oct_node_error(cm->ctx, OCT_EUNSUPPORTED, n, "compile: no lowering for %s yet",
                              n->op_type);
    LLVMTypeRef params[4] = {f->ptr, f->ptr, f->ptr, f->ptr};
    LLVMTypeRef node_ty = LLVMFunctionType(f->vd, params, 4, 0);
    char fname[256];
    snprintf(fname, sizeof fname, "%s_%s%zu", cm->name, tag, k);
    LLVMValueRef fn = LLVMAddFunction(cm->mod, fname, node_ty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    cg_add_target_attrs(cm, fn);
    for (unsigned p = 0; p < 4; p++) {
        unsigned kind = LLVMGetEnumAttributeKindForName("nocapture", 9);
        LLVMAddAttributeAtIndex(fn, p + 1, LLVMCreateEnumAttribute(cm->llc, kind, 0));
    }
    /* a control-flow node builds its subgraphs' node functions from inside
     * its own: come back to where the caller was */
    cg_fn saved = *f;
    LLVMBasicBlockRef at = f->fn ? LLVMGetInsertBlock(f->b) : NULL;
    f->fn = fn;
    f->arg_in = LLVMGetParam(fn, 0);
    f->arg_out = LLVMGetParam(fn, 1);
    f->arg_scratch = LLVMGetParam(fn, 2);
    f->arg_pool = LLVMGetParam(fn, 3);
    LLVMPositionBuilderAtEnd(f->b, LLVMAppendBasicBlockInContext(cm->llc, fn, "entry"));
    bool done = false;
    oct_status st = cm->syms ? cg_syms_lower(f, g, (int)k, run_lo, run_hi, &done) : OCT_OK;
    if (st == OCT_OK && !done) {
        if (run_hi == run_lo + 1 && g->nodes[run_lo]->op == IR_OP_CONV)
            st = cg_lower_conv_relu(f, g->nodes[run_lo], n); /* cg_plan_fusion */
        else
            st = run_hi > run_lo ? cg_lower_run(f, g, run_lo, run_hi) : lower(f, n);
    }
    if (st == OCT_OK)
        LLVMBuildRetVoid(f->b);
    f->fn = saved.fn;
    f->arg_in = saved.arg_in;
    f->arg_out = saved.arg_out;
    f->arg_scratch = saved.arg_scratch;
    f->arg_pool = saved.arg_pool;
    if (at)
        LLVMPositionBuilderAtEnd(f->b, at);
    *out = fn;
    return st;
}

static oct_status build_nodes(cg_module *cm, cg_fn *f, LLVMValueRef run)
{
    const ir_graph *g = cm->model->graph;
    LLVMTypeRef params[4] = {f->ptr, f->ptr, f->ptr, f->ptr};
    LLVMTypeRef node_ty = LLVMFunctionType(f->vd, params, 4, 0);
    LLVMBuilderRef rb = LLVMCreateBuilderInContext(cm->llc);
    LLVMPositionBuilderAtEnd(rb, LLVMAppendBasicBlockInContext(cm->llc, run, "entry"));
    LLVMValueRef run_args[4] = {LLVMGetParam(run, 0), LLVMGetParam(run, 1),
                                LLVMGetParam(run, 2), LLVMGetParam(run, 3)};
    oct_status st = OCT_OK;
    cg_fault_clear(cm, f, rb, run_args[2]);
    for (size_t k = 0; k < g->n_nodes && st == OCT_OK; k++) {
        LLVMValueRef fn;
        st = cg_node_function(f, g, k, (const int (*)[2])cm->span, "n", &fn);
        if (st == OCT_OK && fn)
            LLVMBuildCall2(rb, node_ty, fn, run_args, 4, "");
        if (st == OCT_OK && fn) { /* a length past its bound, a bad input: return 2 */
            cg_dynlen_check(cm, f, rb, g->nodes[k], run_args[2]);
            cg_fault_check(cm, f, rb, g->nodes[k], run_args[2]);
        }
    }
    /* graph outputs that are graph inputs or constants: copy them */
    for (size_t i = 0; i < g->n_outputs && st == OCT_OK; i++) {
        const cg_tensor *t = &cm->tens[g->outputs[i]->id];
        if (t->place == CG_PLACE_OUTPUT && t->index == (int)i)
            continue;
        LLVMValueRef src;
        if (t->place == CG_PLACE_CONST) { /* embedded even with a weights file */
            const ir_tensor *it = t->value->init;
            static const uint8_t zero = 0;
            src = add_bytes_global(cm, "out_const", it->nbytes ? it->data : &zero,
                                   it->nbytes ? (size_t)it->nbytes : 1, true);
        } else {
            LLVMValueRef idx = LLVMConstInt(f->i64, (unsigned long long)t->index, 0);
            LLVMValueRef arr = t->place == CG_PLACE_INPUT ? run_args[0] : run_args[1];
            src = LLVMBuildLoad2(rb, f->ptr, LLVMBuildGEP2(rb, f->ptr, arr, &idx, 1, ""), "");
        }
        LLVMValueRef idx = LLVMConstInt(f->i64, i, 0);
        LLVMValueRef dst = LLVMBuildLoad2(
            rb, f->ptr, LLVMBuildGEP2(rb, f->ptr, run_args[1], &idx, 1, ""), "");
        LLVMBuildMemCpy(rb, dst, 1, src, 1, LLVMConstInt(f->i64, t->nbytes, 0));
    }
    LLVMBuildRet(rb, LLVMConstInt(f->i32, 0, 0));
    LLVMDisposeBuilder(rb);
    return st;
}

/* Is gv one of the symbols the generated header declares (write_header
 * in emit.c): NAME_run, NAME_run_threads, NAME_scratch_size,
 * NAME_signature and, with --weights=file, NAME_weights? */
static bool interface_symbol(const cg_module *cm, LLVMValueRef gv)
{
    static const char *const suffixes[] = {"_run", "_run_threads", "_scratch_size",
                                           "_signature", "_weights", "_run_dims",
                                           "_run_dims_threads", "_scratch_size_for",
                                           "_variant", "_actual_dims"};
    size_t len;
    const char *name = LLVMGetValueName2(gv, &len);
    size_t n = strlen(cm->name);
    if (len <= n || strncmp(name, cm->name, n) != 0)
        return false;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (!strcmp(name + n, suffixes[i]))
            return i < 4 || (i == 4 && cm->weights_file) || (i == 8 && cm->n_variants) ||
                   (i == 9 && cm->n_len) ||
                   (i > 4 && i < 8 && (cm->batch || cm->syms));
    return false;
}

static void internalize(LLVMValueRef gv)
{
    LLVMLinkage l = LLVMGetLinkage(gv);
    if (LLVMIsDeclaration(gv) || l == LLVMInternalLinkage || l == LLVMPrivateLinkage ||
        l == LLVMAppendingLinkage) /* llvm.used and friends */
        return;
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    LLVMSetVisibility(gv, LLVMDefaultVisibility);
    LLVMSetComdat(gv, NULL);
}

void cg_internalize_module(cg_module *cm)
{
    for (LLVMValueRef fn = LLVMGetFirstFunction(cm->mod); fn; fn = LLVMGetNextFunction(fn))
        if (!interface_symbol(cm, fn))
            internalize(fn);
    for (LLVMValueRef gv = LLVMGetFirstGlobal(cm->mod); gv; gv = LLVMGetNextGlobal(gv))
        if (!interface_symbol(cm, gv))
            internalize(gv);
}

/* Bytes of tensor t (whole bytes per element: mark_symbolic checks) for
 * the run-time dims at `dims` (symbol k at dims[kb + k]), built with b. */
static oct_status build_module(cg_module *cm)
{
    oct_ctx *ctx = cm->ctx;
    const ir_graph *g = cm->model->graph;
    cm->own_llc = !cm->opts_context;
    cm->llc = cm->own_llc ? LLVMContextCreate() : cm->opts_context;
    cm->mod = LLVMModuleCreateWithNameInContext(cm->name, cm->llc);
    LLVMSetTarget(cm->mod, cm->triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cm->tm);
    LLVMSetModuleDataLayout(cm->mod, td);
    LLVMDisposeTargetData(td);

    cg_fn f = {.ctx = ctx, .cm = cm, .model = cm->model, .llc = cm->llc, .mod = cm->mod,
               .tens = cm->tens, .prefix = cm->name,
               .cm_nsyms = cm->syms ? cg_syms_slots(cm->syms) : 0};
    f.opset = ir_model_opset(cm->model, "");
    f.i1 = LLVMInt1TypeInContext(cm->llc);
    f.i8 = LLVMInt8TypeInContext(cm->llc);
    f.i16 = LLVMInt16TypeInContext(cm->llc);
    f.i32 = LLVMInt32TypeInContext(cm->llc);
    f.i64 = LLVMInt64TypeInContext(cm->llc);
    f.f32 = LLVMFloatTypeInContext(cm->llc);
    f.f64 = LLVMDoubleTypeInContext(cm->llc);
    f.ptr = LLVMPointerTypeInContext(cm->llc, 0);
    f.vd = LLVMVoidTypeInContext(cm->llc);
    f.b = LLVMCreateBuilderInContext(cm->llc);

    /* weights: read-only globals made on first use (cg_ptr), or bytes of
     * the side file read through @NAME_weights */
    (void)g;
    char sym[300];
    if (cm->weights_file) {
        snprintf(sym, sizeof sym, "%s_weights", cm->name);
        cm->wbase = LLVMAddGlobal(cm->mod, f.ptr, sym);
        LLVMSetInitializer(cm->wbase, LLVMConstPointerNull(f.ptr));
    }

    /* NAME_run_threads(inputs, outputs, scratch, pool) runs the nodes;
     * NAME_run(inputs, outputs, scratch) is it without a pool */
    LLVMTypeRef run_params[4] = {f.ptr, f.ptr, f.ptr, f.ptr};
    LLVMTypeRef run_ty = LLVMFunctionType(f.i32, run_params, 4, 0);
    /* with run-time symbols the body reads them from the scratch header,
     * which only NAME_run_dims fills: it is internal, and NAME_run and
     * NAME_run_threads refuse (return 1) */
    snprintf(sym, sizeof sym, cm->syms ? "%s_body_threads" : "%s_run_threads", cm->name);
    LLVMValueRef run = LLVMAddFunction(cm->mod, sym, run_ty);
    cg_add_target_attrs(cm, run);
    cm->work_offset = (cm->scratch_size + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    oct_status st = build_nodes(cm, &f, run);
    LLVMDisposeBuilder(f.b);
    if (st != OCT_OK)
        return st;
    if (cm->wblob_failed)
        return oct_error(ctx, OCT_EINTERNAL, "compile: out of memory for the weights file");
    if (cm->report_failed) /* ir_alloc_array recorded the diagnostic */
        return OCT_EINTERNAL;
    if (cm->work_size)
        cm->scratch_size = cm->work_offset + (cm->work_size + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    if ((st = cg_signature(cm)) != OCT_OK)
        return st;
    snprintf(sym, sizeof sym, "%s_run", cm->name);
    LLVMValueRef run1 = LLVMAddFunction(cm->mod, sym, LLVMFunctionType(f.i32, run_params, 3, 0));
    cg_add_target_attrs(cm, run1);
    LLVMBuilderRef b1 = LLVMCreateBuilderInContext(cm->llc);
    LLVMPositionBuilderAtEnd(b1, LLVMAppendBasicBlockInContext(cm->llc, run1, "entry"));
    LLVMValueRef args1[4] = {LLVMGetParam(run1, 0), LLVMGetParam(run1, 1), LLVMGetParam(run1, 2),
                             LLVMConstPointerNull(f.ptr)};
    if (cm->syms) {
        LLVMBuildRet(b1, LLVMConstInt(f.i32, 1, 0));
        snprintf(sym, sizeof sym, "%s_run_threads", cm->name);
        LLVMValueRef rt = LLVMAddFunction(cm->mod, sym, run_ty);
        cg_add_target_attrs(cm, rt);
        LLVMPositionBuilderAtEnd(b1, LLVMAppendBasicBlockInContext(cm->llc, rt, "entry"));
        LLVMBuildRet(b1, LLVMConstInt(f.i32, 1, 0));
    } else {
        LLVMBuildRet(b1, LLVMBuildCall2(b1, run_ty, run, args1, 4, ""));
    }
    LLVMDisposeBuilder(b1);
    if (cm->batch || cm->syms)
        cg_build_dims_entries(cm, &f, run, run_ty);
    cg_dynlen_entry(cm, &f);
    if ((st = cg_kernels_link(cm)) != OCT_OK)
        return st;

    snprintf(sym, sizeof sym, "%s_scratch_size", cm->name);
    LLVMValueRef ss = LLVMAddGlobal(cm->mod, f.i64, sym);
    LLVMSetInitializer(ss, LLVMConstInt(f.i64, cm->scratch_size, 0));
    LLVMSetGlobalConstant(ss, 1);
    snprintf(sym, sizeof sym, "%s_signature", cm->name);
    add_bytes_global(cm, sym, cm->signature, strlen(cm->signature) + 1, false);
    cg_internalize_module(cm);

    char *err = NULL;
    if (LLVMVerifyModule(cm->mod, LLVMReturnStatusAction, &err)) {
        st = oct_error(ctx, OCT_EINTERNAL, "compile: generated LLVM IR does not verify: %.2000s",
                       err ? err : "");
    }
    LLVMDisposeMessage(err);
    return st;
}

static oct_status optimize(cg_module *cm, int level)
{
    char passes[32];
    snprintf(passes, sizeof passes, "default<O%d>", level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, level >= 2);
    LLVMErrorRef e = LLVMRunPasses(cm->mod, passes, cm->tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) {
        char *msg = LLVMGetErrorMessage(e);
        oct_status st = oct_error(cm->ctx, OCT_EINTERNAL, "compile: LLVM passes failed: %s", msg);
        LLVMDisposeErrorMessage(msg);
        return st;
    }
    return OCT_OK;
}

static bool valid_ident(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9') || strlen(s) > 200)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

oct_status cg_compile(oct_ctx *ctx, const ir_model *m, const cg_options *opts,
                      cg_module **out)
{
    *out = NULL;
    if (opts->cpu && strchr(opts->cpu, ',') && opts->syms)
        return oct_error(ctx, OCT_EUNSUPPORTED, "compile: a library for several CPUs "
                         "(--mcpu A,B) takes no symbolic dimension other than a batch at "
                         "run time yet: bind '%s' with --input-shape NAME=DIMS",
                         opts->syms->name[0]);
    for (size_t k = 0; opts->cpu && strchr(opts->cpu, ',') && k < m->graph->n_nodes; k++)
        if (ir_op_info_of(m->graph->nodes[k]->op)->flags & IR_OPF_DATA_LENGTH)
            return oct_node_error(ctx, OCT_EUNSUPPORTED, m->graph->nodes[k], "compile: a "
                                  "library for several CPUs (--mcpu A,B) has no "
                                  "data-dependent output lengths yet (%s)",
                                  m->graph->nodes[k]->op_type);
    if (opts->cpu && strchr(opts->cpu, ',') && valid_ident(opts->name))
        return cg_compile_multi(ctx, m, opts, out);
    if (!valid_ident(opts->name))
        return oct_error(ctx, OCT_EUSAGE, "compile: '%s' is not a C identifier (it "
                         "prefixes the generated symbols)", opts->name ? opts->name : "");
    if (opts->opt_level < 0 || opts->opt_level > 3)
        return oct_error(ctx, OCT_EUSAGE, "compile: optimization level must be 0..3");
    const ir_graph *g = m->graph;
    cg_module *cm = calloc(1, sizeof *cm);
    if (!cm)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    cm->ctx = ctx;
    cm->model = m;
    cm->name = ir_strdup(ctx, opts->name);
    cm->opts_context = opts->context;
    cm->weights_file = opts->weights_file;
    cm->native_kernels = opts->native_kernels;
    cm->batch = opts->batch;
    cm->tens = ir_alloc_array(ctx, g->n_values ? g->n_values : 1, sizeof *cm->tens);
    oct_status st = cm->name && cm->tens ? OCT_OK : OCT_EINTERNAL;
    if (st == OCT_OK) /* before any reader of a bounded output is filled */
        st = cg_dynlen_plan(cm, opts);
    /* every tensor a node or the graph touches needs a static shape */
    for (size_t k = 0; k < g->n_nodes && st == OCT_OK; k++) {
        const ir_node *n = g->nodes[k];
        for (int i = 0; i < n->n_in && st == OCT_OK; i++)
            if (n->in[i] && !cm->tens[n->in[i]->id].value)
                st = cg_fill_tensor(ctx, n->in[i], &cm->tens[n->in[i]->id]);
        for (int i = 0; i < n->n_out && st == OCT_OK; i++)
            if (n->out[i] && n->out[i]->name[0] && !cm->tens[n->out[i]->id].value)
                st = cg_fill_tensor(ctx, n->out[i], &cm->tens[n->out[i]->id]);
    }
    for (size_t i = 0; i < g->n_inputs && st == OCT_OK; i++)
        if (!cm->tens[g->inputs[i]->id].value)
            st = cg_fill_tensor(ctx, g->inputs[i], &cm->tens[g->inputs[i]->id]);
    for (size_t i = 0; i < g->n_outputs && st == OCT_OK; i++)
        if (!cm->tens[g->outputs[i]->id].value)
            st = cg_fill_tensor(ctx, g->outputs[i], &cm->tens[g->outputs[i]->id]);
    /* values only a subgraph reads (control flow: lower_control.c) */
    for (size_t v = 0; v < g->n_values && st == OCT_OK; v++)
        if ((g->values[v]->flags & IR_VAL_CAPTURED) && ir_value_defined_here(g->values[v]) &&
            !cm->tens[v].value)
            st = cg_fill_tensor(ctx, g->values[v], &cm->tens[v]);
    cm->syms = opts->syms;
    if (st == OCT_OK && cm->syms)
        st = cg_syms_mark(cm);
    if (st == OCT_OK && cm->batch)
        st = check_batch(ctx, cm);
    if (st == OCT_OK) /* the plans depend on whether the target runs the kernel library */
        st = cg_make_target(ctx, opts, cm);
    if (st == OCT_OK) {
        cm->span = ir_alloc_array(ctx, g->n_nodes ? g->n_nodes : 1, sizeof *cm->span);
        st = cm->span ? cg_plan_fusion(ctx, g, ir_model_opset(m, ""),
                                     cm->x86_64 || cm->native_kernels, cm->tens, cm->span)
                      : OCT_EINTERNAL;
    }
    if (st == OCT_OK)
        st = cg_plan_fp8_weights(ctx, g, cm->x86_64 || cm->native_kernels, cm->span, cm->tens);
    if (st == OCT_OK)
        st = cg_plan_wo_weights(ctx, g, cm->x86_64 || cm->native_kernels, cm->span, cm->tens);
    if (st == OCT_OK)
        st = cg_plan_layouts(ctx, g,
                             cm->native_kernels ? (octk_build_isa() & OCTK_ISA_VNNI) != 0
                                                : cm->x86_64 && cm->vnni,
                             opts->layout_nchw, cm->span, cm->tens);
    if (st == OCT_OK)
        st = cg_plan_memory(ctx, g, cm->span, cm->tens, &cm->scratch_size);
    if (st == OCT_OK && cm->syms)
        st = cg_syms_place(cm);
    if (st == OCT_OK)
        st = cg_plan_control(cm);
    if (st == OCT_OK && opts->kv_inplace)
        st = cg_plan_kv_cache(cm);
    if (st == OCT_OK)
        st = cg_dynlen_place(cm);
    /* only tensors that were filled keep their planned place */
    for (size_t v = 0; v < g->n_values && st == OCT_OK; v++)
        if (!cm->tens[v].value)
            cm->tens[v].place = CG_PLACE_NONE;
    if (st == OCT_OK)
        st = build_module(cm);
    if (st == OCT_OK)
        st = optimize(cm, opts->opt_level);
    if (st != OCT_OK) {
        cg_module_free(cm);
        return st;
    }
    *out = cm;
    return OCT_OK;
}

void cg_module_free(cg_module *cm)
{
    if (!cm)
        return;
    for (int k = 0; k < cm->n_variants; k++) /* built in cm's LLVM context */
        cg_module_free(cm->variants[k]);
    free(cm->variants);
    if (cm->mod)
        LLVMDisposeModule(cm->mod);
    if (cm->tm)
        LLVMDisposeTargetMachine(cm->tm);
    if (cm->llc && cm->own_llc)
        LLVMContextDispose(cm->llc);
    free(cm->wblob);
    free(cm);
}

LLVMModuleRef cg_module_take(cg_module *cm)
{
    LLVMModuleRef mod = cm->mod;
    cm->mod = NULL;
    return mod;
}

const char *cg_module_name(const cg_module *cm)
{
    return cm->name;
}

const cg_kv_pair *cg_module_kv(const cg_module *cm, size_t *n)
{
    *n = cm->n_kv;
    return cm->kv;
}

const char *cg_module_signature(const cg_module *cm)
{
    return cm->signature;
}

uint64_t cg_scratch_size(const cg_module *cm)
{
    return cm->scratch_size;
}
