/*
 * lower_pool.c: MaxPool (float32, int8, uint8; with its Indices output)
 * and AveragePool (float32) over any number of spatial dims, and
 * GlobalAveragePool and GlobalMaxPool.  Pads, auto_pad, strides,
 * dilations and ceil_mode are resolved by ops_window_init (src/ops), as in
 * the reference interpreter.  The loops run over every output position and
 * every kernel position (constant trip counts, so small kernels unroll and
 * the output loop vectorizes); a tap outside the input reads a clamped
 * address and is not used.  Padding never wins a max and is never summed;
 * AveragePool divides the float sum by the number of taps inside the
 * input, or with count_include_pad by the number inside the padded input:
 * per spatial axis and output index those counts come from
 * ops_window_axis_range, which the interpreter counts with too (0 taps:
 * NaN, as the interpreter).
 *
 * MaxPool keeps the first of the largest values; a NaN is replaced by any
 * later number, so a window is NaN only when all its taps are (the
 * interpreter's rule).  Indices (int64) is the flat index of that tap in
 * the whole input, N and C included: row-major, or with storage_order=1
 * the spatial dims in column-major order; -1 for a window with no tap in
 * the input.  Running values live in allocas that SROA promotes to
 * registers.  MaxPool on 8-bit tensors with at most 2 spatial dims and no
 * Indices calls the kernel library (kernels/qpool.c) when the target has
 * it.  The float ones may read their input through the per-tensor 8-bit
 * DequantizeLinear right before them (cg_lower_pool_from): the same
 * floats, no float tensor.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"
#include "ops/rules.h"

static LLVMValueRef entry_alloca(cg_fn *f, LLVMTypeRef ty)
{
    LLVMBasicBlockRef here = LLVMGetInsertBlock(f->b);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(f->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(f->b, first);
    else
        LLVMPositionBuilderAtEnd(f->b, entry);
    LLVMValueRef a = LLVMBuildAlloca(f->b, ty, "");
    LLVMPositionBuilderAtEnd(f->b, here);
    return a;
}

/* Per spatial axis i, the divisor factor of every output index: the
 * number of kernel positions inside the input, or inside the padded input
 * (ops_window_axis_range), as a constant global of i64. */
static oct_status count_tables(cg_fn *f, const ops_window *w, bool padded, LLVMValueRef *tab)
{
    for (int i = 0; i < w->n_spatial; i++) {
        size_t cnt = (size_t)(w->out[i] > 0 ? w->out[i] : 1);
        int64_t *t = oct_malloc(f->ctx, cnt * sizeof *t);
        if (!t)
            return OCT_EINTERNAL;
        memset(t, 0, cnt * sizeof *t);
        for (int64_t o = 0; o < w->out[i]; o++) {
            int64_t lo, hi, pad;
            ops_window_axis_range(w, i, o, &lo, &hi, &pad);
            t[o] = padded ? pad : hi - lo;
        }
        tab[i] = cg_const_data(f, t, cnt * sizeof *t);
        oct_free(f->ctx, t, cnt * sizeof *t);
    }
    return OCT_OK;
}

/* True if some window of w has no tap inside the input. */
static bool has_empty_window(const ops_window *w)
{
    for (int i = 0; i < w->n_spatial; i++)
        for (int64_t o = 0; o < w->out[i]; o++) {
            int64_t lo, hi, pad;
            ops_window_axis_range(w, i, o, &lo, &hi, &pad);
            if (lo == hi)
                return true;
        }
    return false;
}

/* 0 <= v < hi (signed compares: AVX2 has no unsigned 64-bit compare, so
 * two signed ones vectorize better than one unsigned). */
static LLVMValueRef in_range(cg_fn *f, LLVMValueRef v, LLVMValueRef hi)
{
    return LLVMBuildAnd(f->b, LLVMBuildICmp(f->b, LLVMIntSGE, v, cg_i64c(f, 0), ""),
                        LLVMBuildICmp(f->b, LLVMIntSLT, v, hi, ""), "");
}

/* The 8-bit MaxPool of the kernel library (1-D or 2-D, no Indices): true
 * if it took n. */
static bool try_maxpool8(cg_fn *f, const cg_tensor *X, const cg_tensor *Y, const ops_window *w)
{
    int ns = w->n_spatial;
    bool two = ns == 2;
    int64_t KW = w->kernel[ns - 1], sw = w->stride[ns - 1];
    if (ns > 2 || !cg_kernels_available(f) || sw > OCTK_POOL_MAX_SW || KW > OCTK_POOL_MAX_K ||
        ((X->dyn || Y->dyn) && !two))
        return false;
    int64_t planes = X->dims[0] * X->dims[1];
    octk_maxpool8 a = {.s = {.C = planes, .H = two ? w->in[0] : 1, .W = w->in[ns - 1],
                             .M = planes, .OH = two ? w->out[0] : 1, .OW = w->out[ns - 1],
                             .KH = two ? w->kernel[0] : 1, .KW = KW,
                             .SH = two ? w->stride[0] : 1, .SW = sw,
                             .DH = two ? w->dilation[0] : 1, .DW = w->dilation[ns - 1],
                             .PT = two ? w->pad_begin[0] : 0, .PL = w->pad_begin[ns - 1]},
                       .x_signed = X->dtype == IR_DT_INT8};
    /* H, W, OH, OW at run time when symbolic (symdims.h) */
    const cg_dyn_field dyn[4] = {{offsetof(octk_maxpool8, s.H), X, 2},
                                 {offsetof(octk_maxpool8, s.W), X, 3},
                                 {offsetof(octk_maxpool8, s.OH), Y, 2},
                                 {offsetof(octk_maxpool8, s.OW), Y, 3}};
    bool is_dyn = X->dyn || Y->dyn;
    cg_kptr ptrs[7] = {{offsetof(octk_maxpool8, x), cg_ptr(f, X)},
                       {offsetof(octk_maxpool8, y), cg_ptr(f, Y)},
                       {offsetof(octk_maxpool8, work),
                        is_dyn ? cg_dyn_workspace(f, "maxpool8", &a, sizeof a, dyn, 4)
                               : cg_workspace(f, octk_maxpool8_work_size(&a))}};
    for (int i = 0; is_dyn && i < 4; i++)
        ptrs[3 + i] = (cg_kptr){dyn[i].offset, cg_dim(f, dyn[i].t, dyn[i].d)};
    cg_kernel_call(f, "maxpool8", &a, sizeof a, ptrs, is_dyn ? 7 : 3);
    return true;
}

bool cg_maxpool_takes_nhwc(const ir_node *n, const cg_tensor *tens)
{
    if (n->op != IR_OP_MAXPOOL || n->n_in < 1 || !n->in[0] || n->n_out < 1 || !n->out[0] ||
        (n->n_out > 1 && n->out[1] && n->out[1]->name[0]))
        return false;
    const cg_tensor *X = &tens[n->in[0]->id], *Y = &tens[n->out[0]->id];
    return X->value && Y->value && X->rank == 4 && Y->rank == 4 && X->dtype == Y->dtype &&
           (X->dtype == IR_DT_UINT8 || X->dtype == IR_DT_INT8);
}

/* The 8-bit MaxPool of NHWC images (the layout plan, layout.c). */
static void maxpool8_nhwc(cg_fn *f, const cg_tensor *X, const cg_tensor *Y, const ops_window *w)
{
    octk_maxpool8 a = {.s = {.C = X->dims[1], .H = w->in[0], .W = w->in[1], .M = X->dims[1],
                             .OH = w->out[0], .OW = w->out[1], .KH = w->kernel[0],
                             .KW = w->kernel[1], .SH = w->stride[0], .SW = w->stride[1],
                             .DH = w->dilation[0], .DW = w->dilation[1],
                             .PT = w->pad_begin[0], .PL = w->pad_begin[1]},
                       .x_signed = X->dtype == IR_DT_INT8, .nhwc = 1};
    int64_t x_image = X->nelems / X->dims[0], y_image = Y->nelems / Y->dims[0];
    for (int64_t b = 0; b < X->dims[0]; b++) {
        cg_kptr ptrs[2] = {{offsetof(octk_maxpool8, x),
                            cg_gep(f, f->i8, cg_ptr(f, X), cg_i64c(f, b * x_image))},
                           {offsetof(octk_maxpool8, y),
                            cg_gep(f, f->i8, cg_ptr(f, Y), cg_i64c(f, b * y_image))}};
        cg_kernel_call(f, "maxpool8", &a, sizeof a, ptrs, 2);
    }
}

/* MaxPool or AveragePool n; its float input through dq if not NULL. */
static oct_status lower_pool(cg_fn *f, const ir_node *n, const ir_node *dq)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    cg_tensor *I = n->op == IR_OP_MAXPOOL ? cg_out(f, n, 1) : NULL;
    oct_status st;
    /* MaxPool also runs on 8-bit integers (qdq_fuse leaves it there) */
    bool q8 = n->op == IR_OP_MAXPOOL && X && Y && X->dtype == Y->dtype &&
              (X->dtype == IR_DT_UINT8 || X->dtype == IR_DT_INT8);
    bool sgn = q8 && X->dtype == IR_DT_INT8;
    if (!q8 && ((st = cg_need_f32(f, n, X, 0, 0)) || (st = cg_need_f32(f, n, Y, 1, 0))))
        return st;
    if (I && I->dtype != IR_DT_INT64)
        return oct_output_error(f->ctx, OCT_EINPUT, n, 1, "compile: MaxPool's Indices "
                                "output must be INT64");
    if (X->rank < 3)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 0, "compile: pooling needs rank 3 "
                               "or more (N, C, spatial...), got %d", X->rank);
    int ns = X->rank - 2;
    int64_t kernel[OPS_MAX_RANK];
    if ((st = ops_pool_kernel(f->ctx, n, ns, kernel)))
        return st;
    ops_shape xs = {.dtype = X->dtype, .rank = X->rank};
    memcpy(xs.dims, X->dims, (size_t)X->rank * sizeof *xs.dims);
    ops_window w;
    if ((st = ops_window_init(f->ctx, n, &xs, kernel, ir_attr_int(n, "ceil_mode", 0) != 0,
                              &w)) != OCT_OK)
        return st;
    int64_t planes = X->dims[0] * X->dims[1];
    bool ok = Y->rank == X->rank && Y->dims[0] * Y->dims[1] == planes &&
              (!I || I->nelems == Y->nelems);
    for (int i = 0; ok && i < ns; i++)
        ok = Y->dims[i + 2] == w.out[i];
    if (!ok)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: pooling output shape differs "
                              "from its window geometry");
    if (!Y->nelems)
        return OCT_OK;
    if (X->nhwc) { /* the plan checked cg_maxpool_takes_nhwc */
        maxpool8_nhwc(f, X, Y, &w);
        cg_report(f, n, "octk_maxpool8", "NHWC");
        return OCT_OK;
    }
    if (q8 && !I && try_maxpool8(f, X, Y, &w))
        return OCT_OK;
    bool is_max = n->op == IR_OP_MAXPOOL;
    bool include_pad = ir_attr_int(n, "count_include_pad", 0) != 0;
    bool col_major = ir_attr_int(n, "storage_order", 0) == 1;
    /* the index of the chosen tap is tracked for Indices, and for a float
     * MaxPool with an empty window (-inf there, as the interpreter), where
     * a NaN taken first gives way to any number; otherwise a float max
     * takes numbers only, starting from -inf, and notes whether every tap
     * was NaN (then NaN) */
    bool track = is_max && (I || (!q8 && has_empty_window(&w)));
    bool nan_only = is_max && !q8 && !track;
    LLVMValueRef tab[OPS_MAX_RANK];
    if (!is_max && (st = count_tables(f, &w, include_pad, tab)))
        return st;
    /* spatial sizes as values: read at run time when symbolic
     * (symdims.h: MaxPool only, cg_pool_takes_dynamic), else constants */
    LLVMValueRef inv[OPS_MAX_RANK], outv[OPS_MAX_RANK], rstride[OPS_MAX_RANK],
        cstride[OPS_MAX_RANK], ostride[OPS_MAX_RANK];
    LLVMValueRef in_sp = cg_i64c(f, 1), out_sp = cg_i64c(f, 1);
    for (int i = 0; i < ns; i++) {
        inv[i] = cg_dim(f, X, i + 2);
        outv[i] = cg_dim(f, Y, i + 2);
        cstride[i] = in_sp;
        in_sp = cg_mul(f, in_sp, inv[i]);
        out_sp = cg_mul(f, out_sp, outv[i]);
    }
    for (int i = ns - 1; i >= 0; i--) {
        rstride[i] = i == ns - 1 ? cg_i64c(f, 1) : cg_mul(f, rstride[i + 1], inv[i + 1]);
        ostride[i] = i == ns - 1 ? cg_i64c(f, 1) : cg_mul(f, ostride[i + 1], outv[i + 1]);
    }

    LLVMTypeRef et = q8 ? f->i8 : f->f32;
    cg_fsrc src;
    cg_fsrc_init(f, X, dq, &src);
    LLVMValueRef py = cg_ptr(f, Y), pi = I ? cg_ptr(f, I) : NULL;
    LLVMValueRef acc = entry_alloca(f, et), best = track ? entry_alloca(f, f->i64) : NULL;
    LLVMValueRef all_nan = nan_only ? entry_alloca(f, f->i1) : NULL;
    cg_loop lp, lo[OPS_MAX_RANK], lk[OPS_MAX_RANK];
    LLVMValueRef p = cg_loop_begin(f, &lp, planes);
    LLVMValueRef base = cg_mul(f, p, in_sp), yo = cg_mul(f, p, out_sp);
    LLVMValueRef start[OPS_MAX_RANK], div = cg_i64c(f, 1);
    for (int i = 0; i < ns; i++) {
        LLVMValueRef o = cg_loop_begin_v(f, &lo[i], outv[i]);
        yo = cg_add(f, cg_mul(f, o, ostride[i]), yo);
        start[i] = cg_madd(f, o, w.stride[i], cg_i64c(f, -w.pad_begin[i]));
        if (!is_max)
            div = cg_mul(f, div, cg_load(f, f->i64, tab[i], o));
    }
    LLVMValueRef init = q8 ? LLVMConstInt(f->i8, sgn ? 0x80 : 0, 0)
                           : cg_f32c(f, is_max ? -INFINITY : 0.0);
    LLVMBuildStore(f->b, init, acc);
    if (track)
        LLVMBuildStore(f->b, cg_i64c(f, -1), best);
    if (nan_only)
        LLVMBuildStore(f->b, LLVMConstInt(f->i1, 1, 0), all_nan);
    /* every kernel position in row-major order; those outside the input
     * read the plane's first element and are not used */
    LLVMValueRef xr = base, xc = base, inside = LLVMConstInt(f->i1, 1, 0);
    for (int i = 0; i < ns; i++) {
        LLVMValueRef k = cg_loop_begin(f, &lk[i], w.kernel[i]);
        LLVMValueRef at = cg_madd(f, k, w.dilation[i], start[i]);
        inside = LLVMBuildAnd(f->b, inside, in_range(f, at, inv[i]), "");
        xr = cg_add(f, cg_mul(f, at, rstride[i]), xr);
        xc = cg_add(f, cg_mul(f, at, cstride[i]), xc);
    }
    LLVMValueRef xi = LLVMBuildSelect(f->b, inside, xr, base, "");
    LLVMValueRef xv = q8 ? cg_load(f, et, src.ptr, xi) : cg_fsrc_load(f, &src, xi);
    LLVMValueRef a = LLVMBuildLoad2(f->b, et, acc, "");
    if (is_max) {
        /* a larger value; with tracking also the first tap, and any
         * value after a NaN */
        LLVMValueRef take = q8 ? LLVMBuildICmp(f->b, sgn ? LLVMIntSGT : LLVMIntUGT, xv, a, "")
                               : LLVMBuildFCmp(f->b, LLVMRealOGT, xv, a, "");
        if (track && !q8)
            take = LLVMBuildOr(f->b, take, LLVMBuildFCmp(f->b, LLVMRealUNO, a, a, ""), "");
        if (nan_only) {
            LLVMValueRef nan = LLVMBuildOr(f->b, LLVMBuildNot(f->b, inside, ""),
                                           LLVMBuildFCmp(f->b, LLVMRealUNO, xv, xv, ""), "");
            LLVMBuildStore(f->b, LLVMBuildAnd(f->b, LLVMBuildLoad2(f->b, f->i1, all_nan, ""),
                                              nan, ""), all_nan);
        }
        LLVMValueRef bi = track ? LLVMBuildLoad2(f->b, f->i64, best, "") : NULL;
        if (track)
            take = LLVMBuildOr(f->b, take, LLVMBuildICmp(f->b, LLVMIntSLT, bi, cg_i64c(f, 0), ""),
                               "");
        take = LLVMBuildAnd(f->b, inside, take, "");
        LLVMBuildStore(f->b, LLVMBuildSelect(f->b, take, xv, a, ""), acc);
        if (track)
            LLVMBuildStore(f->b, LLVMBuildSelect(f->b, take, col_major ? xc : xr, bi, ""), best);
    } else {
        LLVMBuildStore(f->b, LLVMBuildSelect(f->b, inside, LLVMBuildFAdd(f->b, a, xv, ""), a, ""),
                       acc);
    }
    for (int i = ns - 1; i >= 0; i--)
        cg_loop_end(f, &lk[i]);
    LLVMValueRef r = LLVMBuildLoad2(f->b, et, acc, "");
    if (!is_max)
        r = LLVMBuildFDiv(f->b, r, LLVMBuildSIToFP(f->b, div, f->f32, ""), "");
    if (nan_only)
        r = LLVMBuildSelect(f->b, LLVMBuildLoad2(f->b, f->i1, all_nan, ""), cg_f32c(f, NAN), r,
                            "");
    cg_store(f, et, py, yo, r);
    if (I)
        cg_store(f, f->i64, pi, yo, LLVMBuildLoad2(f->b, f->i64, best, ""));
    for (int i = ns - 1; i >= 0; i--)
        cg_loop_end(f, &lo[i]);
    cg_loop_end(f, &lp);
    return OCT_OK;
}

bool cg_pool_takes_dynamic(cg_fn *f, const ir_node *n)
{
    const cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    int64_t kernel[OPS_MAX_RANK];
    if (n->op != IR_OP_MAXPOOL || !X || !Y || cg_out(f, n, 1) || X->rank < 3 ||
        X->dtype != Y->dtype || ir_attr_int(n, "ceil_mode", 0) != 0 ||
        (X->dyn && (X->sym[0] >= 0 || X->sym[1] >= 0)) ||
        ops_pool_kernel(f->ctx, n, X->rank - 2, kernel) != OCT_OK)
        return false;
    /* explicit pads, each within the window (so no window is empty at any
     * size): the geometry at the probes holds at every size */
    const char *pad = ir_attr_string(f->ctx, n, "auto_pad", "NOTSET");
    ops_shape xs = {.dtype = X->dtype, .rank = X->rank};
    memcpy(xs.dims, X->dims, (size_t)X->rank * sizeof *xs.dims);
    ops_window w;
    if ((strcmp(pad, "NOTSET") && strcmp(pad, "VALID")) ||
        ops_window_init(f->ctx, n, &xs, kernel, false, &w) != OCT_OK)
        return false;
    for (int i = 0; i < w.n_spatial; i++)
        if (w.pad_begin[i] > (w.kernel[i] - 1) * w.dilation[i] ||
            w.pad_end[i] > (w.kernel[i] - 1) * w.dilation[i])
            return false;
    return X->dtype == IR_DT_FLOAT || X->dtype == IR_DT_UINT8 || X->dtype == IR_DT_INT8;
}

oct_status cg_lower_pool(cg_fn *f, const ir_node *n)
{
    return lower_pool(f, n, NULL);
}

/* GlobalAveragePool or GlobalMaxPool n; its input through dq if not NULL. */
static oct_status lower_globalpool(cg_fn *f, const ir_node *n, const ir_node *dq)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = cg_need_f32(f, n, X, 0, 0)) || (st = cg_need_f32(f, n, Y, 1, 0)))
        return st;
    if (X->rank < 2)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: input rank below 2");
    /* sizes as values: symbolic dims are read at run time (symdims.h) */
    LLVMValueRef planes = cg_mul(f, cg_dim(f, X, 0), cg_dim(f, X, 1)), inner = cg_i64c(f, 1);
    for (int d = 2; d < X->rank; d++)
        inner = cg_mul(f, inner, cg_dim(f, X, d));
    bool is_max = n->op == IR_OP_GLOBALMAXPOOL;
    cg_fsrc src;
    cg_fsrc_init(f, X, dq, &src);
    LLVMValueRef py = cg_ptr(f, Y);
    LLVMValueRef init = cg_f32c(f, is_max ? -INFINITY : 0.0);
    cg_loop lp, li;
    LLVMValueRef p = cg_loop_begin_v(f, &lp, planes);
    LLVMValueRef i = cg_loop_begin_v(f, &li, inner);
    cg_acc acc;
    LLVMValueRef a = cg_acc_begin(f, &li, &acc, init);
    LLVMValueRef xv = cg_fsrc_load(f, &src, cg_add(f, cg_mul(f, p, inner), i));
    LLVMValueRef na = is_max
        ? LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, xv, a, ""), xv, a, "")
        : cg_fast(LLVMBuildFAdd(f->b, a, xv, ""));
    cg_acc_end(f, &acc, na);
    cg_loop_end(f, &li);
    LLVMValueRef r = cg_acc_result(f, &li, &acc, init);
    if (!is_max)
        r = LLVMBuildFDiv(f->b, r, LLVMBuildSIToFP(f->b, inner, f->f32, ""), "");
    cg_store(f, f->f32, py, p, r);
    cg_loop_end(f, &lp);
    return OCT_OK;
}

oct_status cg_lower_globalpool(cg_fn *f, const ir_node *n)
{
    return lower_globalpool(f, n, NULL);
}

oct_status cg_lower_pool_from(cg_fn *f, const ir_node *n, const ir_node *dq)
{
    cg_report(f, n, "loop", "reads the 8-bit input of its DequantizeLinear");
    return n->op == IR_OP_AVERAGEPOOL ? lower_pool(f, n, dq) : lower_globalpool(f, n, dq);
}
