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

/* ---- run-time symbolic dims (symdims.h) --------------------------------- */

/* Copies each tensor's symbols from cm->syms (the graph compiled is the
 * one they were derived on, so value ids agree). */
static oct_status mark_symbolic(cg_module *cm)
{
    const ir_graph *g = cm->model->graph;
    const cg_syms *sy = cm->syms;
    for (size_t v = 0; v < g->n_values; v++) {
        cg_tensor *t = &cm->tens[v];
        t->dyn = false;
        t->dyn_slot = -1;
        if (!t->value || v >= sy->n_values)
            continue;
        for (int d = 0; d < t->rank; d++) {
            t->sym[d] = sy->sym[v][d];
            t->dyn |= t->sym[d] >= 0;
        }
        if (t->dyn && ir_dtype_info(t->dtype)->bits % 8)
            return oct_diagf(cm->ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1,
                             t->value->name, "compile: '%s' (%s) has a symbolic dimension "
                             "and elements smaller than a byte: bind it with --input-shape",
                             t->value->name, ir_dtype_name(t->dtype));
    }
    return OCT_OK;
}

/* After the static plan: the scratch header goes first (static offsets
 * move past it) and every SCRATCH tensor with a symbolic dim gets its
 * slot in the run-time region (codegen_module.h). */
static oct_status place_symbolic(cg_module *cm)
{
    const ir_graph *g = cm->model->graph;
    cm->dyn_ids = ir_alloc_array(cm->ctx, g->n_values ? g->n_values : 1, sizeof *cm->dyn_ids);
    if (!cm->dyn_ids)
        return OCT_EINTERNAL;
    for (size_t v = 0; v < g->n_values; v++)
        if (cm->tens[v].value && cm->tens[v].dyn && cm->tens[v].place == CG_PLACE_SCRATCH) {
            cm->tens[v].dyn_slot = cm->n_dyn;
            cm->dyn_ids[cm->n_dyn++] = v;
        }
    cm->hdr_size = (8 * (uint64_t)(cm->syms->n + cm->n_dyn) + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    for (size_t v = 0; v < g->n_values; v++)
        if (cm->tens[v].place == CG_PLACE_SCRATCH && !cm->tens[v].dyn)
            cm->tens[v].offset += cm->hdr_size;
    cm->scratch_size += cm->hdr_size;
    for (size_t i = 0; i < g->n_outputs; i++) {
        const cg_tensor *t = &cm->tens[g->outputs[i]->id];
        if (t->dyn && !(t->place == CG_PLACE_OUTPUT && t->index == (int)i))
            return oct_diagf(cm->ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1,
                             t->value->name, "compile: output '%s' has a symbolic dimension "
                             "and is a graph input or another output: bind it with "
                             "--input-shape", t->value->name);
    }
    return OCT_OK;
}

static const cg_tensor *first_dyn(const cg_fn *f, const ir_node *n)
{
    for (int i = 0; i < n->n_in + n->n_out; i++) {
        const ir_value *v = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
        if (v && f->tens[v->id].value && f->tens[v->id].dyn)
            return &f->tens[v->id];
    }
    return NULL;
}

static bool all_f32(const cg_fn *f, const ir_node *n)
{
    for (int i = 0; i < n->n_in + n->n_out; i++) {
        const ir_value *v = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
        if (v && f->tens[v->id].value && f->tens[v->id].dtype != IR_DT_FLOAT)
            return false;
    }
    return true;
}

/* A byte copy from input 0 to output 0 (the reshapes) is right at every
 * size when both have the same symbols, each as often, and whole bytes. */
static bool same_symbols(const cg_fn *f, const ir_node *n)
{
    if (n->n_in < 1 || n->n_out < 1 || !n->in[0] || !n->out[0])
        return false;
    const cg_tensor *x = &f->tens[n->in[0]->id], *y = &f->tens[n->out[0]->id];
    int count[CG_SYMS_MAX] = {0};
    for (int d = 0; d < x->rank; d++)
        if (x->dyn && x->sym[d] >= 0)
            count[x->sym[d]]++;
    for (int d = 0; d < y->rank; d++)
        if (y->dyn && y->sym[d] >= 0)
            count[y->sym[d]]--;
    for (int k = 0; k < CG_SYMS_MAX; k++)
        if (count[k])
            return false;
    return ir_dtype_info(x->dtype)->bits % 8 == 0 && x->nbytes == y->nbytes;
}

/* LayerNormalization / RMSNormalization: only the rows (the dims before
 * the axis) may be symbolic; Scale and B are not. */
static bool rows_only_vary(const cg_fn *f, const ir_node *n)
{
    const cg_tensor *x = n->n_in > 0 && n->in[0] ? &f->tens[n->in[0]->id] : NULL;
    int axis;
    if (!x || !(n->op == IR_OP_LAYERNORM ? ops_ln_axis(n, x->rank, &axis)
                                         : ops_rms_axis(n, x->rank, &axis)))
        return false;
    for (int d = axis; d < x->rank; d++)
        if (x->dyn && x->sym[d] >= 0)
            return false;
    for (int i = 1; i < n->n_in; i++)
        if (n->in[i] && f->tens[n->in[i]->id].dyn)
            return false;
    return true;
}

/* Whether n's own lowering takes run-time sizes (reads them with cg_dim
 * and cg_nelems_v) in the form it is given: the op list of symdims.h. */
static bool lowers_dynamic(cg_fn *f, const ir_node *n)
{
    switch (n->op) {
    case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_DIV:
        return all_f32(f, n) && !(ir_attr_int(n, "broadcast", 0) && ir_node_attr(n, "axis"));
    case IR_OP_RELU: case IR_OP_LEAKYRELU: case IR_OP_NEG: case IR_OP_ABS: case IR_OP_SQRT:
    case IR_OP_FLOOR: case IR_OP_CEIL: case IR_OP_RECIPROCAL: case IR_OP_EXP: case IR_OP_LOG:
    case IR_OP_TANH: case IR_OP_SIGMOID: case IR_OP_HARDSIGMOID: case IR_OP_HARDSWISH:
        return all_f32(f, n);
    case IR_OP_GEMM: case IR_OP_MATMUL:
        return cg_sgemm_takes_dynamic(f, n);
    case IR_OP_RESHAPE: case IR_OP_FLATTEN: case IR_OP_SQUEEZE: case IR_OP_UNSQUEEZE:
    case IR_OP_IDENTITY:
        return same_symbols(f, n);
    case IR_OP_SOFTMAX: case IR_OP_LOGSOFTMAX:
    case IR_OP_GLOBALAVERAGEPOOL: case IR_OP_GLOBALMAXPOOL:
        return all_f32(f, n);
    case IR_OP_LAYERNORM: case IR_OP_RMSNORM:
        return rows_only_vary(f, n);
    case IR_OP_CLIP: {
        const cg_tensor *x = n->n_in > 0 && n->in[0] ? &f->tens[n->in[0]->id] : NULL;
        if (!x || x->dtype == IR_DT_FLOAT)
            return all_f32(f, n);
        const ir_dtype_traits *tr = ir_dtype_info(x->dtype);
        return tr->kind == IR_DK_SINT || tr->kind == IR_DK_UINT;
    }
    default:
        return false;
    }
}

/* Node k (or its fused run [lo, hi]) reads or writes a tensor with a
 * symbolic dim: lowers it if a lowering that takes run-time sizes covers
 * it (*done set), else refuses naming node, op and dimension. */
static oct_status lower_dynamic(cg_fn *f, const ir_graph *g, int k, int lo, int hi, bool *done)
{
    const ir_node *n = g->nodes[k];
    const cg_tensor *t = NULL;
    for (int j = lo; j <= hi && !t; j++)
        t = first_dyn(f, g->nodes[j]);
    *done = false;
    if (!t)
        return OCT_OK;
    const ir_node *last = g->nodes[hi];
    /* a DQ read through by the pool after it: GlobalAveragePool and
     * GlobalMaxPool take run-time sizes, AveragePool not yet */
    bool pool_run = last->op == IR_OP_AVERAGEPOOL || last->op == IR_OP_GLOBALAVERAGEPOOL ||
                    last->op == IR_OP_GLOBALMAXPOOL;
    if (hi > lo && pool_run && last->op != IR_OP_AVERAGEPOOL) {
        *done = true;
        return cg_lower_run(f, g, lo, hi);
    }
    if (hi > lo && !pool_run) {
        *done = true;
        return cg_lower_run(f, g, lo, hi);
    }
    if (hi == lo && cg_fusable(n, f->tens, (int)f->opset)) {
        *done = true; /* one node through the run's loop, which takes a run-time count */
        return cg_lower_run(f, g, k, k);
    }
    if (hi == lo && lowers_dynamic(f, n))
        return OCT_OK;
    int d = 0;
    while (d < t->rank && t->sym[d] < 0)
        d++;
    const ir_node *who = pool_run ? last : n;
    return oct_node_error(f->ctx, OCT_EUNSUPPORTED, who, "compile: %s: '%s' has symbolic "
                          "dimension '%s' (dim %d), compiled for run time, and the %s "
                          "lowering takes static sizes only so far: bind it with "
                          "--input-shape NAME=DIMS", who->op_type, t->value->name,
                          f->cm->syms->name[t->sym[d]], d, who->op_type);
}

/* ---- target -------------------------------------------------------------- */

static void add_target_attrs(cg_module *cm, LLVMValueRef fn)
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
    add_target_attrs(cm, fn);
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
    oct_status st = cm->syms ? lower_dynamic(f, g, (int)k, run_lo, run_hi, &done) : OCT_OK;
    if (st == OCT_OK && !done)
        st = run_hi > run_lo ? cg_lower_run(f, g, run_lo, run_hi) : lower(f, n);
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
    for (size_t k = 0; k < g->n_nodes && st == OCT_OK; k++) {
        LLVMValueRef fn;
        st = cg_node_function(f, g, k, (const int (*)[2])cm->span, "n", &fn);
        if (st == OCT_OK && fn)
            LLVMBuildCall2(rb, node_ty, fn, run_args, 4, "");
        if (st == OCT_OK && fn) /* a length past its bound: return 2 */
            cg_dynlen_check(cm, f, rb, g->nodes[k], run_args[2]);
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
static LLVMValueRef dyn_nbytes(const cg_module *cm, cg_fn *f, LLVMBuilderRef b,
                               const cg_tensor *t, LLVMValueRef dims, int kb)
{
    LLVMValueRef n = cg_i64c(f, (int64_t)(ir_dtype_info(t->dtype)->bits / 8));
    for (int d = 0; d < t->rank; d++) {
        LLVMValueRef v = cg_i64c(f, t->dims[d]);
        if (t->dyn && t->sym[d] >= 0) {
            LLVMValueRef idx = cg_i64c(f, kb + t->sym[d]);
            v = LLVMBuildLoad2(b, f->i64, LLVMBuildGEP2(b, f->i64, dims, &idx, 1, ""), "");
        }
        n = LLVMBuildMul(b, n, v, "");
    }
    (void)cm;
    return n;
}

/* The same size in double (exact enough to see that the i64 one would
 * overflow). */
static LLVMValueRef dyn_nbytes_f64(cg_fn *f, LLVMBuilderRef b, const cg_tensor *t,
                                   LLVMValueRef dims, int kb)
{
    LLVMValueRef n = LLVMConstReal(f->f64, (double)(ir_dtype_info(t->dtype)->bits / 8));
    for (int d = 0; d < t->rank; d++) {
        LLVMValueRef v = LLVMConstReal(f->f64, (double)t->dims[d]);
        if (t->dyn && t->sym[d] >= 0) {
            LLVMValueRef idx = cg_i64c(f, kb + t->sym[d]);
            v = LLVMBuildUIToFP(b, LLVMBuildLoad2(b, f->i64, LLVMBuildGEP2(b, f->i64, dims,
                                                                          &idx, 1, ""), ""),
                                f->f64, "");
        }
        n = LLVMBuildFMul(b, n, v, "");
    }
    return n;
}

/* The scratch layout for run-time dims (cm->syms): returns the bytes
 * scratch needs; with `scratch` non-NULL also stores the header (each
 * symbol's value, then each run-time tensor's offset: codegen_module.h).
 * The run-time region follows the static plan and the workspace, one
 * tensor after another (no reuse: their sizes are not comparable at
 * compile time). */
static LLVMValueRef emit_layout(const cg_module *cm, cg_fn *f, LLVMBuilderRef b,
                                LLVMValueRef dims, int kb, LLVMValueRef scratch,
                                LLVMValueRef *too_big)
{
    LLVMValueRef fsum = LLVMConstReal(f->f64, 0);
    int ns = cm->syms->n;
    for (int k = 0; k < ns && scratch; k++) {
        LLVMValueRef idx = cg_i64c(f, kb + k), slot = cg_i64c(f, k);
        LLVMValueRef v = LLVMBuildLoad2(b, f->i64, LLVMBuildGEP2(b, f->i64, dims, &idx, 1, ""), "");
        LLVMBuildStore(b, v, LLVMBuildGEP2(b, f->i64, scratch, &slot, 1, ""));
    }
    LLVMValueRef off = cg_i64c(f, (int64_t)((cm->scratch_size + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN));
    for (int j = 0; j < cm->n_dyn; j++) {
        if (scratch) {
            LLVMValueRef slot = cg_i64c(f, ns + j);
            LLVMBuildStore(b, off, LLVMBuildGEP2(b, f->i64, scratch, &slot, 1, ""));
        }
        fsum = LLVMBuildFAdd(b, fsum, dyn_nbytes_f64(f, b, &cm->tens[cm->dyn_ids[j]], dims, kb),
                             "");
        LLVMValueRef size = dyn_nbytes(cm, f, b, &cm->tens[cm->dyn_ids[j]], dims, kb);
        size = LLVMBuildAnd(b, LLVMBuildAdd(b, size, cg_i64c(f, CG_ALIGN - 1), ""),
                            cg_i64c(f, -(int64_t)CG_ALIGN), "");
        off = LLVMBuildAdd(b, off, size, "");
    }
    /* sizes a caller cannot have (2^60 bytes): refused before the i64
     * arithmetic above can have wrapped */
    *too_big = LLVMBuildFCmp(b, LLVMRealOGT, fsum, LLVMConstReal(f->f64, 0x1p60), "");
    return off;
}

/* Whether any of dims[0 .. n) is negative or above 2^31 (sizes are then
 * far from any buffer a caller has). */
static LLVMValueRef dims_bad(cg_fn *f, LLVMBuilderRef b, LLVMValueRef dims, int n)
{
    LLVMValueRef bad = LLVMConstInt(f->i1, 0, 0);
    for (int k = 0; k < n; k++) {
        LLVMValueRef idx = cg_i64c(f, k);
        LLVMValueRef v = LLVMBuildLoad2(b, f->i64, LLVMBuildGEP2(b, f->i64, dims, &idx, 1, ""), "");
        bad = LLVMBuildOr(b, bad, LLVMBuildICmp(b, LLVMIntUGT, v, cg_i64c(f, INT32_MAX), ""), "");
    }
    return bad;
}

/* The run-time dims entries (cm->batch and/or cm->syms; dims[0] is the
 * batch when there is one, the symbols follow):
 *   int NAME_run_dims_threads(const int64_t *dims, inputs, outputs, scratch,
 *                             pool)
 * stores the symbols and the run-time region's offsets in the scratch
 * header (cm->syms), then runs the body (run, batch 1) once, or dims[0]
 * times, each batched input and output advanced by one item (its bytes at
 * these dims) per iteration; unbatched ones are passed as given.  Returns 1
 * if a dim is negative or above 2^31 or the tensors they size would need
 * more than 2^60 bytes, else the first non-zero status of the body, else
 * 0.  NAME_run_dims is it without a pool, and
 * NAME_scratch_size_for(dims) the scratch it needs (the body's static
 * plan, plus with symbols the header and the run-time region; 0 for dims
 * NAME_run_dims refuses). */
static void build_dims_entries(cg_module *cm, cg_fn *f, LLVMValueRef run, LLVMTypeRef run_ty)
{
    const ir_graph *g = cm->model->graph;
    const cg_batch *bt = cm->batch;
    int kb = bt ? 1 : 0, n_dims = kb + (cm->syms ? cm->syms->n : 0);
    LLVMContextRef llc = cm->llc;
    char sym[300];
    LLVMTypeRef params[5] = {f->ptr, f->ptr, f->ptr, f->ptr, f->ptr};
    LLVMTypeRef ty = LLVMFunctionType(f->i32, params, 5, 0);
    snprintf(sym, sizeof sym, "%s_run_dims_threads", cm->name);
    LLVMValueRef fn = LLVMAddFunction(cm->mod, sym, ty);
    add_target_attrs(cm, fn);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(llc);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(llc, fn, "entry"),
                      start = LLVMAppendBasicBlockInContext(llc, fn, "start"),
                      head = LLVMAppendBasicBlockInContext(llc, fn, "head"),
                      body = LLVMAppendBasicBlockInContext(llc, fn, "body"),
                      next = LLVMAppendBasicBlockInContext(llc, fn, "next"),
                      fail = LLVMAppendBasicBlockInContext(llc, fn, "fail"),
                      done = LLVMAppendBasicBlockInContext(llc, fn, "done"),
                      bad = LLVMAppendBasicBlockInContext(llc, fn, "bad");
    LLVMPositionBuilderAtEnd(b, entry);
    size_t n_in = 0, n_out = g->n_outputs;
    for (size_t i = 0; i < g->n_inputs; i++)
        n_in += !g->inputs[i]->init;
    LLVMValueRef dims = LLVMGetParam(fn, 0);
    LLVMValueRef ins = LLVMBuildArrayAlloca(b, f->ptr, cg_i64c(f, (int64_t)(n_in + 1)), "ins");
    LLVMValueRef outs = LLVMBuildArrayAlloca(b, f->ptr, cg_i64c(f, (int64_t)(n_out + 1)), "outs");
    LLVMValueRef count = bt ? LLVMBuildLoad2(b, f->i64, dims, "batch") : cg_i64c(f, 1);
    LLVMBasicBlockRef sized = LLVMAppendBasicBlockInContext(llc, fn, "sized");
    LLVMBuildCondBr(b, dims_bad(f, b, dims, n_dims), bad, sized);
    LLVMPositionBuilderAtEnd(b, sized);
    LLVMValueRef too_big = LLVMConstInt(f->i1, 0, 0);
    if (cm->syms)
        emit_layout(cm, f, b, dims, kb, NULL, &too_big);
    LLVMBuildCondBr(b, too_big, bad, start);
    LLVMPositionBuilderAtEnd(b, start);
    if (cm->syms)
        emit_layout(cm, f, b, dims, kb, LLVMGetParam(fn, 3), &too_big);
    LLVMBuildBr(b, head);
    LLVMPositionBuilderAtEnd(b, head);
    LLVMValueRef item = LLVMBuildPhi(b, f->i64, "item");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, item, count, ""), body, done);
    LLVMPositionBuilderAtEnd(b, body);
    for (int side = 0; side < 2; side++) {
        size_t n = side ? n_out : n_in;
        LLVMValueRef from = LLVMGetParam(fn, side ? 2 : 1), to = side ? outs : ins;
        for (size_t k = 0, slot = 0; slot < n && k < (side ? g->n_outputs : g->n_inputs); k++) {
            const ir_value *v = side ? g->outputs[k] : g->inputs[k];
            if (!side && v->init)
                continue;
            LLVMValueRef idx = cg_i64c(f, (int64_t)slot);
            LLVMValueRef p = LLVMBuildLoad2(b, f->ptr, LLVMBuildGEP2(b, f->ptr, from, &idx, 1, ""), "");
            if (bt && (side ? bt->out_batched[slot] : bt->in_batched[slot])) {
                LLVMValueRef off = LLVMBuildMul(b, item, dyn_nbytes(cm, f, b, &cm->tens[v->id],
                                                                   dims, kb), "");
                p = LLVMBuildGEP2(b, f->i8, p, &off, 1, "");
            }
            LLVMBuildStore(b, p, LLVMBuildGEP2(b, f->ptr, to, &idx, 1, ""));
            slot++;
        }
    }
    LLVMValueRef args[4] = {ins, outs, LLVMGetParam(fn, 3), LLVMGetParam(fn, 4)};
    LLVMValueRef rc = LLVMBuildCall2(b, run_ty, run, args, 4, "rc");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, rc, LLVMConstInt(f->i32, 0, 0), ""), next, fail);
    LLVMPositionBuilderAtEnd(b, next);
    LLVMValueRef item1 = LLVMBuildAdd(b, item, cg_i64c(f, 1), "");
    LLVMBuildBr(b, head);
    LLVMValueRef phi_vals[2] = {cg_i64c(f, 0), item1};
    LLVMBasicBlockRef phi_from[2] = {start, next};
    LLVMAddIncoming(item, phi_vals, phi_from, 2);
    LLVMPositionBuilderAtEnd(b, fail);
    LLVMBuildRet(b, rc);
    LLVMPositionBuilderAtEnd(b, done);
    LLVMBuildRet(b, LLVMConstInt(f->i32, 0, 0));
    LLVMPositionBuilderAtEnd(b, bad);
    LLVMBuildRet(b, LLVMConstInt(f->i32, 1, 0));

    snprintf(sym, sizeof sym, "%s_run_dims", cm->name);
    LLVMValueRef fn1 = LLVMAddFunction(cm->mod, sym, LLVMFunctionType(f->i32, params, 4, 0));
    add_target_attrs(cm, fn1);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(llc, fn1, "entry"));
    LLVMValueRef args1[5] = {LLVMGetParam(fn1, 0), LLVMGetParam(fn1, 1), LLVMGetParam(fn1, 2),
                             LLVMGetParam(fn1, 3), LLVMConstPointerNull(f->ptr)};
    LLVMBuildRet(b, LLVMBuildCall2(b, ty, fn, args1, 5, ""));

    snprintf(sym, sizeof sym, "%s_scratch_size_for", cm->name);
    LLVMValueRef fs = LLVMAddFunction(cm->mod, sym, LLVMFunctionType(f->i64, params, 1, 0));
    add_target_attrs(cm, fs);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(llc, fs, "entry"));
    if (cm->syms) {
        LLVMValueRef d = LLVMGetParam(fs, 0), too_big;
        LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(llc, fs, "ok"),
                          zero = LLVMAppendBasicBlockInContext(llc, fs, "zero");
        LLVMBuildCondBr(b, dims_bad(f, b, d, n_dims), zero, ok);
        LLVMPositionBuilderAtEnd(b, zero);
        LLVMBuildRet(b, cg_i64c(f, 0));
        LLVMPositionBuilderAtEnd(b, ok);
        LLVMValueRef size = emit_layout(cm, f, b, d, kb, NULL, &too_big);
        LLVMBuildRet(b, LLVMBuildSelect(b, too_big, cg_i64c(f, 0), size, ""));
    } else {
        LLVMBuildRet(b, LLVMConstInt(f->i64, cm->scratch_size, 0));
    }
    LLVMDisposeBuilder(b);
}

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
               .cm_nsyms = cm->syms ? cm->syms->n : 0};
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
    add_target_attrs(cm, run);
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
    add_target_attrs(cm, run1);
    LLVMBuilderRef b1 = LLVMCreateBuilderInContext(cm->llc);
    LLVMPositionBuilderAtEnd(b1, LLVMAppendBasicBlockInContext(cm->llc, run1, "entry"));
    LLVMValueRef args1[4] = {LLVMGetParam(run1, 0), LLVMGetParam(run1, 1), LLVMGetParam(run1, 2),
                             LLVMConstPointerNull(f.ptr)};
    if (cm->syms) {
        LLVMBuildRet(b1, LLVMConstInt(f.i32, 1, 0));
        snprintf(sym, sizeof sym, "%s_run_threads", cm->name);
        LLVMValueRef rt = LLVMAddFunction(cm->mod, sym, run_ty);
        add_target_attrs(cm, rt);
        LLVMPositionBuilderAtEnd(b1, LLVMAppendBasicBlockInContext(cm->llc, rt, "entry"));
        LLVMBuildRet(b1, LLVMConstInt(f.i32, 1, 0));
    } else {
        LLVMBuildRet(b1, LLVMBuildCall2(b1, run_ty, run, args1, 4, ""));
    }
    LLVMDisposeBuilder(b1);
    if (cm->batch || cm->syms)
        build_dims_entries(cm, &f, run, run_ty);
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
        st = mark_symbolic(cm);
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
        st = cg_plan_memory(ctx, g, cm->span, cm->tens, &cm->scratch_size);
    if (st == OCT_OK && cm->syms)
        st = place_symbolic(cm);
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
