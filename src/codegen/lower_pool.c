/*
 * lower_pool.c: float32 MaxPool (also on int8/uint8) and AveragePool (1-D and 2-D, pads,
 * auto_pad, strides, dilations, ceil_mode through ops_window_init, as in
 * the reference interpreter), GlobalAveragePool and GlobalMaxPool.
 * Padding never wins a max and is never summed; AveragePool divides by the
 * number of taps inside the input, or with count_include_pad by the number
 * inside the padded input.  Running values live in allocas that SROA
 * promotes to registers.  MaxPool on 8-bit tensors calls the kernel
 * library (kernels/qpool.c) when the target has it.  The float ones may
 * read their input through the per-tensor 8-bit DequantizeLinear right
 * before them (cg_lower_pool_from): the same floats, no float tensor.
 */
#include <math.h>
#include <stddef.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"

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

static LLVMValueRef in_range(cg_fn *f, LLVMValueRef v, int64_t lo, int64_t hi)
{
    return LLVMBuildAnd(f->b, LLVMBuildICmp(f->b, LLVMIntSGE, v, cg_i64c(f, lo), ""),
                        LLVMBuildICmp(f->b, LLVMIntSLT, v, cg_i64c(f, hi), ""), "");
}

/* MaxPool or AveragePool n; its float input through dq if not NULL. */
static oct_status lower_pool(cg_fn *f, const ir_node *n, const ir_node *dq)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    oct_status st;
    /* MaxPool also runs on 8-bit integers (qdq_fuse leaves it there) */
    bool q8 = n->op == IR_OP_MAXPOOL && X && Y && X->dtype == Y->dtype &&
              (X->dtype == IR_DT_UINT8 || X->dtype == IR_DT_INT8);
    bool sgn = q8 && X->dtype == IR_DT_INT8;
    if (!q8 && ((st = cg_need_f32(f, n, X, 0, 0)) || (st = cg_need_f32(f, n, Y, 1, 0))))
        return st;
    LLVMTypeRef et = q8 ? f->i8 : f->f32;
    if (cg_out(f, n, 1))
        return oct_output_error(f->ctx, OCT_EUNSUPPORTED, n, 1,
                                "compile: MaxPool's Indices output is not supported yet");
    if (X->rank != 3 && X->rank != 4)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: only 1-D and 2-D pooling is supported yet");
    const ir_attr *ks = ir_node_attr(n, "kernel_shape");
    if (!ks || ks->n != (size_t)(X->rank - 2))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad kernel_shape");
    ops_shape xs = {.dtype = X->dtype, .rank = X->rank};
    for (int d = 0; d < X->rank; d++)
        xs.dims[d] = X->dims[d];
    ops_window w;
    if ((st = ops_window_init(f->ctx, n, &xs, ks->ints, ir_attr_int(n, "ceil_mode", 0) != 0,
                              &w)) != OCT_OK)
        return st;
    bool two = X->rank == 4, is_max = n->op == IR_OP_MAXPOOL;
    bool include_pad = ir_attr_int(n, "count_include_pad", 0) != 0;
    int64_t H = two ? w.in[0] : 1, Wd = w.in[two], KH = two ? ks->ints[0] : 1, KW = ks->ints[two];
    int64_t OH = two ? w.out[0] : 1, OW = w.out[two];
    int64_t sh = two ? w.stride[0] : 1, sw = w.stride[two], dh = two ? w.dilation[0] : 1,
            dw = w.dilation[two], ph = two ? w.pad_begin[0] : 0, pw = w.pad_begin[two];
    int64_t peh = two ? w.pad_end[0] : 0, pew = w.pad_end[two];
    int64_t planes = X->dims[0] * X->dims[1];
    if (q8 && cg_kernels_available(f) && sw <= OCTK_POOL_MAX_SW && KW <= OCTK_POOL_MAX_K) {
        /* the kernel library's vectorized, threaded 8-bit MaxPool */
        octk_maxpool8 a = {.s = {.C = planes, .H = H, .W = Wd, .M = planes, .OH = OH, .OW = OW,
                                 .KH = KH, .KW = KW, .SH = sh, .SW = sw, .DH = dh, .DW = dw,
                                 .PT = ph, .PL = pw},
                           .x_signed = sgn};
        cg_kptr ptrs[3] = {{offsetof(octk_maxpool8, x), cg_ptr(f, X)},
                           {offsetof(octk_maxpool8, y), cg_ptr(f, Y)},
                           {offsetof(octk_maxpool8, work),
                            cg_workspace(f, octk_maxpool8_work_size(&a))}};
        cg_kernel_call(f, "maxpool8", &a, sizeof a, ptrs, 3);
        return OCT_OK;
    }
    cg_fsrc src;
    cg_fsrc_init(f, X, dq, &src);
    LLVMValueRef py = cg_ptr(f, Y);
    LLVMValueRef acc = entry_alloca(f, et), cnt = entry_alloca(f, f->f32);

    cg_loop lp, loh, low, lkh, lkw;
    LLVMValueRef p = cg_loop_begin(f, &lp, planes);
    LLVMValueRef oh = cg_loop_begin(f, &loh, OH);
    LLVMValueRef ow = cg_loop_begin(f, &low, OW);
    LLVMBuildStore(f->b, q8 ? LLVMConstInt(f->i8, sgn ? 0x80 : 0, 0)
                            : cg_f32c(f, is_max ? -INFINITY : 0.0), acc);
    LLVMBuildStore(f->b, cg_f32c(f, 0), cnt);
    LLVMValueRef kh = cg_loop_begin(f, &lkh, KH);
    LLVMValueRef ih = cg_add(f, cg_madd(f, oh, sh, cg_i64c(f, -ph)), cg_mul(f, kh, cg_i64c(f, dh)));
    LLVMValueRef kw = cg_loop_begin(f, &lkw, KW);
    LLVMValueRef iw = cg_add(f, cg_madd(f, ow, sw, cg_i64c(f, -pw)), cg_mul(f, kw, cg_i64c(f, dw)));
    LLVMValueRef inside = LLVMBuildAnd(f->b, in_range(f, ih, 0, H), in_range(f, iw, 0, Wd), "");
    /* clamp the address so the load is always in bounds; select the value */
    LLVMValueRef xi = cg_madd(f, cg_madd(f, p, H, ih), Wd, iw);
    xi = LLVMBuildSelect(f->b, inside, xi, cg_i64c(f, 0), "");
    LLVMValueRef xv = q8 ? cg_load(f, et, src.ptr, xi) : cg_fsrc_load(f, &src, xi);
    LLVMValueRef a = LLVMBuildLoad2(f->b, et, acc, "");
    LLVMValueRef na;
    if (is_max) {
        LLVMValueRef gt = q8 ? LLVMBuildICmp(f->b, sgn ? LLVMIntSGT : LLVMIntUGT, xv, a, "")
                             : LLVMBuildFCmp(f->b, LLVMRealOGT, xv, a, "");
        na = LLVMBuildSelect(f->b, LLVMBuildAnd(f->b, inside, gt, ""), xv, a, "");
    } else {
        na = LLVMBuildSelect(f->b, inside, LLVMBuildFAdd(f->b, a, xv, ""), a, "");
        LLVMValueRef counted = include_pad
            ? LLVMBuildAnd(f->b, in_range(f, ih, -ph, H + peh), in_range(f, iw, -pw, Wd + pew), "")
            : inside;
        LLVMValueRef c = LLVMBuildLoad2(f->b, f->f32, cnt, "");
        LLVMBuildStore(f->b, LLVMBuildSelect(f->b, counted, LLVMBuildFAdd(f->b, c, cg_f32c(f, 1), ""),
                                             c, ""), cnt);
    }
    LLVMBuildStore(f->b, na, acc);
    cg_loop_end(f, &lkw);
    cg_loop_end(f, &lkh);
    LLVMValueRef r = LLVMBuildLoad2(f->b, et, acc, "");
    if (!is_max)
        r = LLVMBuildFDiv(f->b, r, LLVMBuildLoad2(f->b, f->f32, cnt, ""), "");
    cg_store(f, et, py, cg_madd(f, cg_madd(f, p, OH, oh), OW, ow), r);
    cg_loop_end(f, &low);
    cg_loop_end(f, &loh);
    cg_loop_end(f, &lp);
    return OCT_OK;
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
    int64_t planes = X->dims[0] * X->dims[1], inner = 1;
    for (int d = 2; d < X->rank; d++)
        inner *= X->dims[d];
    bool is_max = n->op == IR_OP_GLOBALMAXPOOL;
    cg_fsrc src;
    cg_fsrc_init(f, X, dq, &src);
    LLVMValueRef py = cg_ptr(f, Y);
    LLVMValueRef init = cg_f32c(f, is_max ? -INFINITY : 0.0);
    cg_loop lp, li;
    LLVMValueRef p = cg_loop_begin(f, &lp, planes);
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    cg_acc acc;
    LLVMValueRef a = cg_acc_begin(f, &li, &acc, init);
    LLVMValueRef xv = cg_fsrc_load(f, &src, cg_madd(f, p, inner, i));
    LLVMValueRef na = is_max
        ? LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, xv, a, ""), xv, a, "")
        : cg_fast(LLVMBuildFAdd(f->b, a, xv, ""));
    cg_acc_end(f, &acc, na);
    cg_loop_end(f, &li);
    LLVMValueRef r = cg_acc_result(f, &li, &acc, init);
    if (!is_max)
        r = LLVMBuildFDiv(f->b, r, cg_f32c(f, (double)inner), "");
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
