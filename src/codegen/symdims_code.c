/*
 * symdims_code.c: the code side of run-time symbolic dims (symdims.h):
 * which tensors carry them and where they live in scratch, which
 * lowerings may see them (any other node is refused naming it), and the
 * NAME_run_dims / NAME_scratch_size_for entries that fill the scratch
 * header (each symbol, each derived form floor((a*s + b) / c), then each
 * run-time tensor's offset) before the body runs.
 */
#include <stdio.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/codegen_module.h"
#include "codegen/symdims.h"
#include "ops/rules.h"

/* ---- run-time symbolic dims (symdims.h) --------------------------------- */

/* Copies each tensor's symbols from cm->syms (the graph compiled is the
 * one they were derived on, so value ids agree). */
oct_status cg_syms_mark(cg_module *cm)
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
oct_status cg_syms_place(cg_module *cm)
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
    /* one more slot: the run-time workspace's offset */
    cm->hdr_size = (8 * (uint64_t)(cg_syms_slots(cm->syms) + cm->n_dyn + 1) + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    for (size_t v = 0; v < g->n_values; v++)
        if (cm->tens[v].place == CG_PLACE_SCRATCH && !cm->tens[v].dyn)
            cm->tens[v].offset += cm->hdr_size;
    cm->scratch_size += cm->hdr_size;
    for (size_t i = 0; i < g->n_outputs; i++) {
        const cg_tensor *t = &cm->tens[g->outputs[i]->id];
        for (int d = 0; d < t->rank; d++)
            if (t->dyn && t->sym[d] >= cm->syms->n) /* the signature names symbols only */
                return oct_diagf(cm->ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1,
                                 t->value->name, "compile: dim %d of output '%s' is computed "
                                 "from a symbolic dimension, which the interface cannot name "
                                 "yet: bind it with --input-shape", d, t->value->name);
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
    int count[CG_SYMS_MAX + CG_SYMS_DER_MAX] = {0};
    for (int d = 0; d < x->rank; d++)
        if (x->dyn && x->sym[d] >= 0)
            count[x->sym[d]]++;
    for (int d = 0; d < y->rank; d++)
        if (y->dyn && y->sym[d] >= 0)
            count[y->sym[d]]--;
    for (int k = 0; k < CG_SYMS_MAX + CG_SYMS_DER_MAX; k++)
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
    case IR_OP_CONV:
        return cg_sconv_takes_dynamic(f, n);
    case IR_OP_BATCHNORM:
        return cg_batchnorm_takes_dynamic(f, n);
    case IR_OP_MAXPOOL:
        return cg_pool_takes_dynamic(f, n);
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
oct_status cg_syms_lower(cg_fn *f, const ir_graph *g, int k, int lo, int hi, bool *done)
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
    char form[160];
    return oct_node_error(f->ctx, OCT_EUNSUPPORTED, who, "compile: %s: '%s' has symbolic "
                          "dimension '%s' (dim %d), compiled for run time, and the %s "
                          "lowering takes static sizes only so far: bind it with "
                          "--input-shape NAME=DIMS", who->op_type, t->value->name,
                          cg_syms_slot_text(f->cm->syms, t->sym[d], form, sizeof form), d,
                          who->op_type);
}


/* ---- the dims entries ---------------------------------------------------- */

#define DYN_FIELDS_MAX 8

typedef struct cg_dyn_work {
    char family[32];
    const void *args; /* arena copy */
    size_t size;
    cg_dyn_field fields[DYN_FIELDS_MAX];
    int n_fields;
} cg_dyn_work;

LLVMValueRef cg_dyn_workspace(cg_fn *f, const char *family, const void *args, size_t size,
                              const cg_dyn_field *fields, int n_fields)
{
    cg_module *cm = f->cm;
    OCT_ASSERT(n_fields <= DYN_FIELDS_MAX && strlen(family) < 32);
    cg_dyn_work *w = ir_alloc_array(f->ctx, (size_t)cm->n_dyn_work + 1, sizeof *w);
    void *copy = ir_alloc_array(f->ctx, 1, size ? size : 1);
    if (w && copy) { /* the arena keeps the old array: grow by copying */
        if (cm->n_dyn_work)
            memcpy(w, cm->dyn_work, (size_t)cm->n_dyn_work * sizeof *w);
        memcpy(copy, args, size);
        cg_dyn_work *e = &w[cm->n_dyn_work++];
        snprintf(e->family, sizeof e->family, "%s", family);
        e->args = copy;
        e->size = size;
        memcpy(e->fields, fields, (size_t)n_fields * sizeof *fields);
        e->n_fields = n_fields;
        cm->dyn_work = w;
    } else {
        cm->report_failed = true; /* out of memory: ir_alloc_array said so */
    }
    LLVMValueRef off = cg_load(f, f->i64, f->arg_scratch,
                               cg_i64c(f, cg_syms_slots(cm->syms) + cm->n_dyn));
    return cg_gep(f, f->i8, f->arg_scratch, off);
}

/* The largest workspace the run-time kernel calls need at these dims:
 * octk_<family>_work_size of each args struct with its fields set. */
static LLVMValueRef dyn_work_size(const cg_module *cm, cg_fn *f, LLVMBuilderRef b,
                                  const LLVMValueRef *vals)
{
    LLVMValueRef most = cg_i64c(f, 0);
    LLVMTypeRef ty = LLVMFunctionType(f->i64, &f->ptr, 1, 0);
    for (int i = 0; i < cm->n_dyn_work; i++) {
        const cg_dyn_work *w = &cm->dyn_work[i];
        char name[64];
        snprintf(name, sizeof name, "octk_%s_work_size", w->family);
        LLVMValueRef fn = LLVMGetNamedFunction(cm->mod, name);
        if (!fn)
            fn = LLVMAddFunction(cm->mod, name, ty);
        LLVMValueRef a = LLVMBuildArrayAlloca(b, f->i8, cg_i64c(f, (int64_t)w->size), "");
        LLVMSetAlignment(a, 16);
        LLVMBuildMemCpy(b, a, 16, cg_const_data(f, w->args, w->size), CG_ALIGN,
                        cg_i64c(f, (int64_t)w->size));
        for (int k = 0; k < w->n_fields; k++) {
            const cg_dyn_field *fd = &w->fields[k];
            LLVMValueRef v = fd->t->dyn && fd->t->sym[fd->d] >= 0 ? vals[fd->t->sym[fd->d]]
                                                                  : cg_i64c(f, fd->t->dims[fd->d]);
            LLVMValueRef at = cg_i64c(f, (int64_t)fd->offset);
            LLVMBuildStore(b, v, LLVMBuildGEP2(b, f->i8, a, &at, 1, ""));
        }
        LLVMValueRef size = LLVMBuildCall2(b, ty, fn, &a, 1, "");
        most = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGT, size, most, ""), size, most, "");
    }
    return most;
}

/* The value of every header slot at dims (the symbols follow kb batch
 * entries): the symbols, then each derived form floor((a*s + b) / c). */
static void slot_values(const cg_module *cm, cg_fn *f, LLVMBuilderRef b, LLVMValueRef dims,
                        int kb, LLVMValueRef *vals)
{
    const cg_syms *s = cm->syms;
    for (int k = 0; k < s->n; k++) {
        LLVMValueRef idx = cg_i64c(f, kb + k);
        vals[k] = LLVMBuildLoad2(b, f->i64, LLVMBuildGEP2(b, f->i64, dims, &idx, 1, ""), "");
    }
    for (int j = 0; j < s->n_der; j++) {
        const cg_syms_der *d = &s->der[j];
        /* a*s + b >= 0 for every size a model takes (a negative form is
         * refused by the caller), so truncation is floor there */
        LLVMValueRef x = LLVMBuildAdd(b, LLVMBuildMul(b, vals[d->k], cg_i64c(f, d->a), ""),
                                      cg_i64c(f, d->b), "");
        vals[s->n + j] = LLVMBuildSDiv(b, x, cg_i64c(f, d->c), "");
        vals[s->n + j] = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, x, cg_i64c(f, 0), ""),
                                         cg_i64c(f, -1), vals[s->n + j], "");
    }
}

/* Whether a derived dim is negative (sizes a model cannot take: a window
 * larger than the padded image). */
static LLVMValueRef derived_bad(const cg_module *cm, cg_fn *f, LLVMBuilderRef b,
                                const LLVMValueRef *vals)
{
    LLVMValueRef bad = LLVMConstInt(f->i1, 0, 0);
    for (int j = cm->syms->n; j < cg_syms_slots(cm->syms); j++)
        bad = LLVMBuildOr(b, bad, LLVMBuildICmp(b, LLVMIntSLT, vals[j], cg_i64c(f, 0), ""), "");
    return bad;
}

static LLVMValueRef dyn_nbytes(cg_fn *f, LLVMBuilderRef b, const cg_tensor *t,
                               const LLVMValueRef *vals)
{
    LLVMValueRef n = cg_i64c(f, (int64_t)(ir_dtype_info(t->dtype)->bits / 8));
    for (int d = 0; d < t->rank; d++)
        n = LLVMBuildMul(b, n, t->dyn && t->sym[d] >= 0 ? vals[t->sym[d]]
                                                        : cg_i64c(f, t->dims[d]), "");
    return n;
}

/* The same size in double (exact enough to see that the i64 one would
 * overflow). */
static LLVMValueRef dyn_nbytes_f64(cg_fn *f, LLVMBuilderRef b, const cg_tensor *t,
                                   const LLVMValueRef *vals)
{
    LLVMValueRef n = LLVMConstReal(f->f64, (double)(ir_dtype_info(t->dtype)->bits / 8));
    for (int d = 0; d < t->rank; d++) {
        LLVMValueRef v = LLVMConstReal(f->f64, (double)t->dims[d]);
        if (t->dyn && t->sym[d] >= 0)
            v = LLVMBuildSIToFP(b, vals[t->sym[d]], f->f64, "");
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
                                const LLVMValueRef *vals, LLVMValueRef scratch,
                                LLVMValueRef *too_big)
{
    LLVMValueRef fsum = LLVMConstReal(f->f64, 0);
    int ns = cg_syms_slots(cm->syms);
    for (int k = 0; k < ns && scratch; k++) {
        LLVMValueRef slot = cg_i64c(f, k);
        LLVMBuildStore(b, vals[k], LLVMBuildGEP2(b, f->i64, scratch, &slot, 1, ""));
    }
    LLVMValueRef off = cg_i64c(f, (int64_t)((cm->scratch_size + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN));
    for (int j = 0; j < cm->n_dyn; j++) {
        if (scratch) {
            LLVMValueRef slot = cg_i64c(f, ns + j);
            LLVMBuildStore(b, off, LLVMBuildGEP2(b, f->i64, scratch, &slot, 1, ""));
        }
        fsum = LLVMBuildFAdd(b, fsum, dyn_nbytes_f64(f, b, &cm->tens[cm->dyn_ids[j]], vals), "");
        LLVMValueRef size = dyn_nbytes(f, b, &cm->tens[cm->dyn_ids[j]], vals);
        size = LLVMBuildAnd(b, LLVMBuildAdd(b, size, cg_i64c(f, CG_ALIGN - 1), ""),
                            cg_i64c(f, -(int64_t)CG_ALIGN), "");
        off = LLVMBuildAdd(b, off, size, "");
    }
    if (scratch) {
        LLVMValueRef slot = cg_i64c(f, ns + cm->n_dyn);
        LLVMBuildStore(b, off, LLVMBuildGEP2(b, f->i64, scratch, &slot, 1, ""));
    }
    if (cm->n_dyn_work) {
        LLVMValueRef work = dyn_work_size(cm, f, b, vals);
        fsum = LLVMBuildFAdd(b, fsum, LLVMBuildUIToFP(b, work, f->f64, ""), "");
        work = LLVMBuildAnd(b, LLVMBuildAdd(b, work, cg_i64c(f, CG_ALIGN - 1), ""),
                            cg_i64c(f, -(int64_t)CG_ALIGN), "");
        off = LLVMBuildAdd(b, off, work, "");
    }
    /* sizes a caller cannot have (2^60 bytes): refused before the i64
     * arithmetic above can have wrapped; a negative derived dim too */
    *too_big = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOGT, fsum, LLVMConstReal(f->f64, 0x1p60), ""),
                           derived_bad(cm, f, b, vals), "");
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
void cg_build_dims_entries(cg_module *cm, cg_fn *f, LLVMValueRef run, LLVMTypeRef run_ty)
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
    cg_add_target_attrs(cm, fn);
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
    LLVMValueRef vals[CG_SYMS_MAX + CG_SYMS_DER_MAX];
    if (cm->syms) {
        slot_values(cm, f, b, dims, kb, vals);
        emit_layout(cm, f, b, vals, NULL, &too_big);
    }
    LLVMBuildCondBr(b, too_big, bad, start);
    LLVMPositionBuilderAtEnd(b, start);
    if (cm->syms)
        emit_layout(cm, f, b, vals, LLVMGetParam(fn, 3), &too_big);
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
                LLVMValueRef off = LLVMBuildMul(b, item, dyn_nbytes(f, b, &cm->tens[v->id],
                                                                   vals), "");
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
    cg_add_target_attrs(cm, fn1);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(llc, fn1, "entry"));
    LLVMValueRef args1[5] = {LLVMGetParam(fn1, 0), LLVMGetParam(fn1, 1), LLVMGetParam(fn1, 2),
                             LLVMGetParam(fn1, 3), LLVMConstPointerNull(f->ptr)};
    LLVMBuildRet(b, LLVMBuildCall2(b, ty, fn, args1, 5, ""));

    snprintf(sym, sizeof sym, "%s_scratch_size_for", cm->name);
    LLVMValueRef fs = LLVMAddFunction(cm->mod, sym, LLVMFunctionType(f->i64, params, 1, 0));
    cg_add_target_attrs(cm, fs);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(llc, fs, "entry"));
    if (cm->syms) {
        LLVMValueRef d = LLVMGetParam(fs, 0), too_big;
        LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(llc, fs, "ok"),
                          zero = LLVMAppendBasicBlockInContext(llc, fs, "zero");
        LLVMBuildCondBr(b, dims_bad(f, b, d, n_dims), zero, ok);
        LLVMPositionBuilderAtEnd(b, zero);
        LLVMBuildRet(b, cg_i64c(f, 0));
        LLVMPositionBuilderAtEnd(b, ok);
        LLVMValueRef svals[CG_SYMS_MAX + CG_SYMS_DER_MAX];
        slot_values(cm, f, b, d, kb, svals);
        LLVMValueRef size = emit_layout(cm, f, b, svals, NULL, &too_big);
        LLVMBuildRet(b, LLVMBuildSelect(b, too_big, cg_i64c(f, 0), size, ""));
    } else {
        LLVMBuildRet(b, LLVMConstInt(f->i64, cm->scratch_size, 0));
    }
    LLVMDisposeBuilder(b);
}

