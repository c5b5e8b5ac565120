/*
 * lower_dynlen.c: NonZero, NonMaxSuppression and Unique, whose output
 * length depends on the input values, in compiled code.
 *
 * Each output whose length is data-dependent gets a buffer sized by a
 * bound known at compile time: NonZero [rank, numel], NonMaxSuppression
 * [batches * classes * min(max_output_boxes_per_class, boxes), 3] (the
 * minimum only when max_output_boxes_per_class is a constant), Unique
 * numel elements or dims[axis] slices; `--bound NAME=N` may declare a
 * tighter one.  The kernel (kernels/dynlen.c) writes the output compactly
 * at the length it finds and stores that length in an i64 slot of the
 * scratch (one per node, at cm->len_offset past the static plan); the run
 * function returns 2 right after the node when the kernel found more than
 * the bound (it then wrote nothing), and NAME_actual_dims(scratch, k, dims)
 * gives the caller each output's dims as the last run left them.  A node
 * reading a bounded tensor is refused (exit 3, naming it): such tensors
 * are graph outputs, or unused.  Unique's inverse_indices always has one
 * entry per input slice: it is static.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/codegen_module.h"
#include "codegen/kernels/octk_dynlen.h"
#include "ops/rules.h"

static bool is_dynlen(const ir_node *n)
{
    return ir_op_info_of(n->op)->flags & IR_OPF_DATA_LENGTH;
}

static bool named(const ir_node *n, int i)
{
    return i < n->n_out && n->out[i] && n->out[i]->name[0];
}

/* The bound `--bound NAME=N` declares for node n (by its name or one of
 * its outputs'), or -1; *bad set for a malformed entry. */
static int64_t declared_bound(oct_ctx *ctx, const cg_options *o, const ir_node *n,
                              oct_status *st)
{
    int64_t best = -1;
    for (size_t k = 0; k < o->n_bounds && !*st; k++) {
        const char *s = o->bounds[k], *eq = strrchr(s, '=');
        char *end = NULL;
        long long v = eq ? strtoll(eq + 1, &end, 10) : -1;
        if (!eq || eq == s || !end || end == eq + 1 || *end || v < 0) {
            *st = oct_error(ctx, OCT_EUSAGE, "--bound '%s': expected NAME=N (N >= 0)", s);
            break;
        }
        size_t len = (size_t)(eq - s);
        bool hit = n->name && strlen(n->name) == len && !strncmp(n->name, s, len);
        for (int i = 0; i < n->n_out && !hit; i++)
            hit = named(n, i) && strlen(n->out[i]->name) == len &&
                  !strncmp(n->out[i]->name, s, len);
        if (hit && (best < 0 || v < best))
            best = v;
    }
    return best;
}

/* Every --bound entry names some data-dependent node or output. */
static oct_status check_bounds_used(oct_ctx *ctx, const ir_graph *g, const cg_options *o)
{
    for (size_t k = 0; k < o->n_bounds; k++) {
        const char *s = o->bounds[k], *eq = strrchr(s, '=');
        size_t len = eq ? (size_t)(eq - s) : strlen(s);
        bool hit = false;
        for (size_t j = 0; j < g->n_nodes && !hit; j++) {
            const ir_node *n = g->nodes[j];
            if (!is_dynlen(n))
                continue;
            hit = n->name && strlen(n->name) == len && !strncmp(n->name, s, len);
            for (int i = 0; i < n->n_out && !hit; i++)
                hit = named(n, i) && strlen(n->out[i]->name) == len &&
                      !strncmp(n->out[i]->name, s, len);
        }
        if (!hit)
            return oct_error(ctx, OCT_EUSAGE, "--bound '%s': no NonZero, NonMaxSuppression "
                             "or Unique node, nor an output of one, has that name", s);
    }
    return OCT_OK;
}

/* Output i of n with `rank` dims; len_axis >= 0 marks it bounded. */
static void set_out(cg_module *cm, const ir_node *n, int i, ir_dtype dt, int rank,
                    const int64_t *dims, int len_axis)
{
    if (!named(n, i))
        return;
    cg_tensor *t = &cm->tens[n->out[i]->id];
    t->value = n->out[i];
    t->dtype = dt;
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    ir_shape_elems(rank, t->dims, &t->nelems);
    ir_dtype_bytes(dt, t->nelems, &t->nbytes);
    t->bounded = len_axis >= 0;
    t->len_axis = (int8_t)len_axis;
    t->len_slot = cm->n_len;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* The bound of node n's length from its inputs' static shapes. */
static oct_status plan_node(cg_module *cm, const cg_options *o, const ir_node *n)
{
    oct_ctx *ctx = cm->ctx;
    oct_status st = OCT_OK;
    for (int i = 0; i < n->n_in && !st; i++)
        if (n->in[i] && !cm->tens[n->in[i]->id].value)
            st = cg_fill_tensor(ctx, n->in[i], &cm->tens[n->in[i]->id]);
    if (st)
        return st;
    int64_t declared = declared_bound(ctx, o, n, &st);
    if (st)
        return st;
    const cg_tensor *x = &cm->tens[n->in[0]->id];
    int64_t dims[OPS_MAX_RANK];
    if (n->op == IR_OP_NONZERO) {
        dims[0] = x->rank;
        dims[1] = (int64_t)x->nelems;
        if (declared >= 0)
            dims[1] = min64(dims[1], declared);
        set_out(cm, n, 0, IR_DT_INT64, 2, dims, 1);
    } else if (n->op == IR_OP_NONMAXSUPPRESSION) {
        const cg_tensor *s = n->n_in > 1 && n->in[1] ? &cm->tens[n->in[1]->id] : NULL;
        if (x->rank != 3 || x->dims[2] != 4 || !s || s->rank != 3 || s->dims[0] != x->dims[0] ||
            s->dims[2] != x->dims[1])
            return oct_node_error(ctx, OCT_EINPUT, n, "boxes must be [batches, boxes, 4] "
                                  "and scores [batches, classes, boxes]");
        int64_t per = x->dims[1];
        const ir_value *mo = n->n_in > 2 ? n->in[2] : NULL;
        if (mo && mo->init && mo->init->dtype == IR_DT_INT64)
            per = mo->init->nelems ? min64(per, ((const int64_t *)mo->init->data)[0]) : 0;
        else if (!mo)
            per = 0; /* omitted: no box is selected */
        dims[0] = x->dims[0] * s->dims[1] * (per > 0 ? per : 0);
        dims[1] = 3;
        if (declared >= 0)
            dims[0] = min64(dims[0], declared);
        set_out(cm, n, 0, IR_DT_INT64, 2, dims, 0);
    } else { /* Unique */
        const ir_attr *a = ir_node_attr(n, "axis");
        int axis = -1;
        if (a && !ops_norm_axis(a->i, x->rank, &axis))
            return oct_node_error(ctx, OCT_EINPUT, n, "axis out of range");
        int64_t slices = axis >= 0 ? x->dims[axis] : (int64_t)x->nelems;
        int64_t bound = declared >= 0 ? min64(slices, declared) : slices;
        if (axis >= 0) {
            memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
            dims[axis] = bound;
            set_out(cm, n, 0, x->dtype, x->rank, dims, axis);
        } else {
            set_out(cm, n, 0, x->dtype, 1, &bound, 0);
        }
        set_out(cm, n, 1, IR_DT_INT64, 1, &bound, 0);
        set_out(cm, n, 2, IR_DT_INT64, 1, &slices, -1);
        set_out(cm, n, 3, IR_DT_INT64, 1, &bound, 0);
    }
    cm->n_len++;
    return OCT_OK;
}

oct_status cg_dynlen_plan(cg_module *cm, const cg_options *o)
{
    const ir_graph *g = cm->model->graph;
    bool any = false;
    for (size_t k = 0; k < g->n_nodes && !any; k++)
        any = is_dynlen(g->nodes[k]);
    oct_status st = check_bounds_used(cm->ctx, g, o);
    for (size_t k = 0; k < g->n_nodes && any && !st; k++) {
        const ir_node *n = g->nodes[k];
        if (!is_dynlen(n))
            continue;
        if (o->batch || o->syms)
            return oct_node_error(cm->ctx, OCT_EUNSUPPORTED, n, "compile: %s: an output "
                                  "length that depends on the input values is compiled "
                                  "for static input shapes only so far: bind the symbolic "
                                  "dims with --input-shape NAME=DIMS", n->op_type);
        st = plan_node(cm, o, n);
    }
    /* a reader of a bounded tensor: refused before its own output, sized
     * from the bound, would be */
    for (size_t k = 0; k < g->n_nodes && any && !st; k++) {
        const ir_node *n = g->nodes[k];
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] && cm->tens[n->in[i]->id].bounded)
                return oct_node_error(cm->ctx, OCT_EUNSUPPORTED, n, "compile: %s reads '%s', "
                                      "whose length along axis %d depends on the input "
                                      "values (%s); compiled code takes such a tensor only "
                                      "as a graph output so far: run the model in the "
                                      "interpreter (`octet run` without --jit)", n->op_type,
                                      n->in[i]->name, cm->tens[n->in[i]->id].len_axis,
                                      n->in[i]->producer ? n->in[i]->producer->op_type : "");
    }
    return st;
}

oct_status cg_dynlen_place(cg_module *cm)
{
    const ir_graph *g = cm->model->graph;
    if (!cm->n_len)
        return OCT_OK;
    for (size_t i = 0; i < g->n_outputs; i++) {
        const cg_tensor *t = &cm->tens[g->outputs[i]->id];
        if (t->bounded && !(t->place == CG_PLACE_OUTPUT && t->index == (int)i))
            return oct_diagf(cm->ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1,
                             t->value->name, "compile: output '%s' has a data-dependent "
                             "length and is also another output: not compiled",
                             t->value->name);
    }
    cm->len_offset = (cm->scratch_size + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    cm->scratch_size = cm->len_offset + (8 * (uint64_t)cm->n_len + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    return OCT_OK;
}

/* ---- lowerings ----------------------------------------------------------- */

static LLVMValueRef len_ptr(cg_fn *f, const cg_tensor *t)
{
    return cg_gep(f, f->i8, f->arg_scratch,
                  cg_i64c(f, (int64_t)(f->cm->len_offset + 8 * (uint64_t)t->len_slot)));
}

/* The slot holder of node n: its first bounded output (NULL: the node was
 * not planned, e.g. inside a subgraph). */
static const cg_tensor *holder(cg_fn *f, const ir_node *n)
{
    for (int i = 0; i < n->n_out; i++)
        if (named(n, i) && f->tens[n->out[i]->id].bounded)
            return &f->tens[n->out[i]->id];
    return NULL;
}

static oct_status refuse(cg_fn *f, const ir_node *n, const char *why)
{
    return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s: %s", n->op_type, why);
}

static oct_status common_checks(cg_fn *f, const ir_node *n, const cg_tensor **h)
{
    *h = holder(f, n);
    if (!*h)
        return refuse(f, n, "an output length that depends on the input values is "
                      "compiled in the main graph only (not inside If/Loop/Scan)");
    if (!cg_kernels_available(f))
        return refuse(f, n, "compiled on the kernel library, which this target lacks");
    return OCT_OK;
}

/* The comparison kind of dtype dt; -1 if the kernels have none. */
static int elem_kind(ir_dtype dt, bool halves)
{
    const ir_dtype_traits *tr = ir_dtype_info(dt);
    if (dt == IR_DT_FLOAT || dt == IR_DT_DOUBLE)
        return OCTK_DL_FLOAT;
    if (halves && (dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16))
        return OCTK_DL_HALF;
    if (tr->kind == IR_DK_SINT && tr->bits >= 8)
        return OCTK_DL_SINT;
    if ((tr->kind == IR_DK_UINT || dt == IR_DT_BOOL) && tr->bits >= 8)
        return OCTK_DL_UINT;
    return -1;
}

oct_status cg_lower_nonzero(cg_fn *f, const ir_node *n)
{
    const cg_tensor *h, *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    oct_status st = common_checks(f, n, &h);
    if (st)
        return st;
    int kind = elem_kind(x->dtype, true);
    if (kind < 0)
        return refuse(f, n, "this element type is not compiled");
    octk_nonzero a = {.numel = (int64_t)x->nelems, .bound = y->dims[1], .rank = x->rank,
                      .kind = kind, .elem_bytes = (int32_t)(ir_dtype_info(x->dtype)->bits / 8)};
    memcpy(a.dims, x->dims, (size_t)x->rank * sizeof *x->dims);
    cg_kptr ptrs[3] = {{offsetof(octk_nonzero, x), cg_ptr(f, x)},
                       {offsetof(octk_nonzero, y), cg_ptr(f, y)},
                       {offsetof(octk_nonzero, len), len_ptr(f, h)}};
    cg_kernel_call(f, "nonzero", &a, sizeof a, ptrs, 3);
    cg_report(f, n, "nonzero", "bounded output");
    return OCT_OK;
}

/* Input i of n as a kernel pointer, NULL when omitted or empty. */
static LLVMValueRef opt_ptr(cg_fn *f, const ir_node *n, int i)
{
    const cg_tensor *t = i < n->n_in && n->in[i] ? cg_in(f, n, i) : NULL;
    return t && t->nelems ? cg_ptr(f, t) : LLVMConstPointerNull(f->ptr);
}

oct_status cg_lower_nonmaxsuppression(cg_fn *f, const ir_node *n)
{
    const cg_tensor *h, *x = cg_in(f, n, 0), *s = cg_in(f, n, 1), *y = cg_out(f, n, 0);
    oct_status st = common_checks(f, n, &h);
    if (st)
        return st;
    int64_t center = ir_attr_int(n, "center_point_box", 0);
    if (center != 0 && center != 1)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "center_point_box must be 0 or 1");
    octk_nms a = {.batches = x->dims[0], .classes = s->dims[1], .n = x->dims[1],
                  .bound = y->dims[0], .center = (int32_t)center};
    cg_kptr ptrs[9] = {{offsetof(octk_nms, boxes), cg_ptr(f, x)},
                       {offsetof(octk_nms, scores), cg_ptr(f, s)},
                       {offsetof(octk_nms, max_out), opt_ptr(f, n, 2)},
                       {offsetof(octk_nms, iou), opt_ptr(f, n, 3)},
                       {offsetof(octk_nms, score_thr), opt_ptr(f, n, 4)},
                       {offsetof(octk_nms, y), cg_ptr(f, y)},
                       {offsetof(octk_nms, len), len_ptr(f, h)},
                       {offsetof(octk_nms, work), cg_workspace(f, octk_nms_work_size(&a))}};
    cg_kernel_call(f, "nms", &a, sizeof a, ptrs, 8);
    cg_report(f, n, "nms", center ? "bounded output, center boxes" : "bounded output");
    return OCT_OK;
}

oct_status cg_lower_unique(cg_fn *f, const ir_node *n)
{
    const cg_tensor *h, *x = cg_in(f, n, 0);
    oct_status st = common_checks(f, n, &h);
    if (st)
        return st;
    int kind = elem_kind(x->dtype, false);
    if (kind < 0)
        return refuse(f, n, "this element type is not compiled");
    octk_unique a = {.outer = 1, .inner = 1, .n = (int64_t)x->nelems,
                     .kind = kind, .elem_bytes = (int32_t)(ir_dtype_info(x->dtype)->bits / 8),
                     .sorted = ir_attr_int(n, "sorted", 1) != 0};
    const ir_attr *at = ir_node_attr(n, "axis");
    int axis;
    if (at && ops_norm_axis(at->i, x->rank, &axis))
        ops_axis_split(x->rank, x->dims, axis, false, &a.outer, &a.n, &a.inner);
    a.bound = h->dims[h->len_axis];
    LLVMValueRef outs[4];
    for (int i = 0; i < 4; i++)
        outs[i] = named(n, i) ? cg_ptr(f, cg_out(f, n, i)) : LLVMConstPointerNull(f->ptr);
    cg_kptr ptrs[7] = {{offsetof(octk_unique, x), cg_ptr(f, x)},
                       {offsetof(octk_unique, y), outs[0]},
                       {offsetof(octk_unique, first), outs[1]},
                       {offsetof(octk_unique, inverse), outs[2]},
                       {offsetof(octk_unique, counts), outs[3]},
                       {offsetof(octk_unique, len), len_ptr(f, h)},
                       {offsetof(octk_unique, work), cg_workspace(f, octk_unique_work_size(&a))}};
    cg_kernel_call(f, "unique", &a, sizeof a, ptrs, 7);
    cg_report(f, n, "unique", a.sorted ? "bounded output, sorted" : "bounded output");
    return OCT_OK;
}

/* ---- run-time checks and NAME_actual_dims -------------------------------- */

void cg_dynlen_check(cg_module *cm, cg_fn *f, LLVMBuilderRef b, const ir_node *n,
                     LLVMValueRef scratch)
{
    if (!cm->n_len || !is_dynlen(n))
        return;
    const cg_tensor *h = holder(f, n);
    if (!h)
        return;
    LLVMValueRef off = cg_i64c(f, (int64_t)(cm->len_offset + 8 * (uint64_t)h->len_slot));
    LLVMValueRef len = LLVMBuildLoad2(b, f->i64, LLVMBuildGEP2(b, f->i8, scratch, &off, 1, ""),
                                      "len");
    cg_return2_if(cm, f, b, LLVMBuildICmp(b, LLVMIntSLT, len, cg_i64c(f, 0), ""));
}

void cg_return2_if(cg_module *cm, cg_fn *f, LLVMBuilderRef b, LLVMValueRef cond)
{
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(b));
    LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(cm->llc, fn, "return2");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(cm->llc, fn, "go_on");
    LLVMBuildCondBr(b, cond, bad, ok);
    LLVMPositionBuilderAtEnd(b, bad);
    LLVMBuildRet(b, LLVMConstInt(f->i32, 2, 0));
    LLVMPositionBuilderAtEnd(b, ok);
}

void cg_dynlen_entry(cg_module *cm, cg_fn *f)
{
    if (!cm->n_len)
        return;
    const ir_graph *g = cm->model->graph;
    char sym[300];
    snprintf(sym, sizeof sym, "%s_actual_dims", cm->name);
    LLVMTypeRef params[3] = {f->ptr, f->i32, f->ptr};
    LLVMValueRef fn = LLVMAddFunction(cm->mod, sym, LLVMFunctionType(f->i32, params, 3, 0));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(cm->llc);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cm->llc, fn, "entry");
    LLVMBasicBlockRef none = LLVMAppendBasicBlockInContext(cm->llc, fn, "none");
    LLVMPositionBuilderAtEnd(b, none);
    LLVMBuildRet(b, LLVMConstInt(f->i32, (unsigned long long)-1, 1));
    LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef sw = LLVMBuildSwitch(b, LLVMGetParam(fn, 1), none, (unsigned)g->n_outputs);
    LLVMValueRef scratch = LLVMGetParam(fn, 0), dims = LLVMGetParam(fn, 2);
    for (size_t i = 0; i < g->n_outputs; i++) {
        const cg_tensor *t = &cm->tens[g->outputs[i]->id];
        LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(cm->llc, fn, "out");
        LLVMAddCase(sw, LLVMConstInt(f->i32, i, 0), bb);
        LLVMPositionBuilderAtEnd(b, bb);
        for (int d = 0; d < t->rank; d++) {
            LLVMValueRef v = cg_i64c(f, t->dims[d]);
            if (t->bounded && d == t->len_axis) {
                LLVMValueRef off = cg_i64c(f, (int64_t)(cm->len_offset + 8 * (uint64_t)t->len_slot));
                v = LLVMBuildLoad2(b, f->i64, LLVMBuildGEP2(b, f->i8, scratch, &off, 1, ""), "");
            }
            LLVMValueRef idx = cg_i64c(f, d);
            LLVMBuildStore(b, v, LLVMBuildGEP2(b, f->i64, dims, &idx, 1, ""));
        }
        LLVMBuildRet(b, LLVMConstInt(f->i32, (unsigned)t->rank, 0));
    }
    LLVMDisposeBuilder(b);
}

int cg_module_output_shape(const cg_module *cm, size_t k, int64_t *dims)
{
    const cg_tensor *t = &cm->tens[cm->model->graph->outputs[k]->id];
    memcpy(dims, t->dims, (size_t)t->rank * sizeof *dims);
    return t->rank;
}
