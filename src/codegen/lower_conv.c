/*
 * lower_conv.c: float32 Conv (1-D and 2-D; groups, pads, auto_pad,
 * strides, dilations) when the kernel library cannot take it
 * (lower_kfloat.c: non-constant weights, non-x86-64 targets).  Geometry comes from ops_window_init, the same
 * routine the reference interpreter uses.  Emitted as a direct
 * convolution: per output row, the row starts at the bias and, for every
 * input channel of the group and kernel tap, accumulates w * x over the
 * range of output columns whose input column is inside the image (the
 * range is a compile-time constant per horizontal tap, so the inner loop
 * has no bounds checks and vectorizes for stride 1).  Padding reads as 0.
 * Sums use FMA and reordering (reassoc+contract).
 */
#include "codegen/codegen.h"

oct_status cg_lower_conv(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *W = cg_in(f, n, 1), *B = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    oct_status st;
    if (cg_try_sconv(f, n, &st))
        return st;
    if ((st = cg_need_f32(f, n, X, 0, 0)) || (st = cg_need_f32(f, n, W, 0, 1)) ||
        (st = cg_need_f32(f, n, B, 0, 2)) || (st = cg_need_f32(f, n, Y, 1, 0)))
        return st;
    if (X->rank != 3 && X->rank != 4)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: only 1-D and 2-D Conv are supported yet");
    ops_shape xs;
    xs.dtype = X->dtype;
    xs.rank = X->rank;
    for (int d = 0; d < X->rank; d++)
        xs.dims[d] = X->dims[d];
    ops_window w;
    if ((st = ops_window_init(f->ctx, n, &xs, W->dims + 2, false, &w)) != OCT_OK)
        return st;
    /* 2-D view: a 1-D conv is a 2-D one with height 1 */
    bool two = X->rank == 4;
    int64_t H = two ? w.in[0] : 1, Wd = w.in[two], KH = two ? W->dims[2] : 1,
            KW = W->dims[2 + two], OH = two ? w.out[0] : 1, OW = w.out[two];
    int64_t sh = two ? w.stride[0] : 1, sw = w.stride[two], dh = two ? w.dilation[0] : 1,
            dw = w.dilation[two], ph = two ? w.pad_begin[0] : 0, pw = w.pad_begin[two];
    int64_t N = X->dims[0], C = X->dims[1], OC = Y->dims[1], G = ir_attr_int(n, "group", 1);
    if (G < 1 || C % G || OC % G || W->dims[1] != C / G)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Conv group does not divide "
                              "the channels");
    int64_t ICg = C / G, OCg = OC / G;
    LLVMValueRef px = cg_ptr(f, X), pwt = cg_ptr(f, W), py = cg_ptr(f, Y);
    LLVMValueRef pb = B ? cg_ptr(f, B) : NULL;

    cg_loop ln, loc, loh, lic, lkh, low;
    LLVMValueRef nn = cg_loop_begin(f, &ln, N);
    LLVMValueRef oc = cg_loop_begin(f, &loc, OC);
    LLVMValueRef g = LLVMBuildSDiv(f->b, oc, cg_i64c(f, OCg), "");
    LLVMValueRef bias = pb ? cg_load(f, f->f32, pb, oc) : cg_f32c(f, 0);
    LLVMValueRef oh = cg_loop_begin(f, &loh, OH);
    /* output row base */
    LLVMValueRef yrow = cg_madd(f, cg_madd(f, nn, OC, oc), OH, oh);
    yrow = cg_mul(f, yrow, cg_i64c(f, OW));
    LLVMValueRef ow = cg_loop_begin(f, &low, OW);
    cg_store(f, f->f32, py, cg_add(f, yrow, ow), bias);
    cg_loop_end(f, &low);

    LLVMValueRef icg = cg_loop_begin(f, &lic, ICg);
    LLVMValueRef ic = cg_madd(f, g, ICg, icg);
    LLVMValueRef xplane = cg_mul(f, cg_madd(f, nn, C, ic), cg_i64c(f, H * Wd));
    LLVMValueRef wbase = cg_mul(f, cg_madd(f, oc, ICg, icg), cg_i64c(f, KH * KW));
    LLVMValueRef kh = cg_loop_begin(f, &lkh, KH);
    LLVMValueRef ih = cg_add(f, cg_madd(f, oh, sh, cg_i64c(f, -ph)), cg_mul(f, kh, cg_i64c(f, dh)));
    LLVMBasicBlockRef cont = cg_if_inside(f, ih, H); /* input row ih exists */
    LLVMValueRef xrow = cg_madd(f, ih, Wd, xplane);
    for (int64_t kw = 0; kw < KW; kw++) {
        int64_t lo, hi;
        cg_valid_range(Wd, OW, sw, pw, kw * dw, &lo, &hi);
        if (hi <= lo)
            continue;
        LLVMValueRef wv = cg_load(f, f->f32, pwt, cg_madd(f, kh, KW, cg_add(f, wbase, cg_i64c(f, kw))));
        cg_loop l;
        LLVMValueRef j = cg_loop_begin(f, &l, hi - lo);
        LLVMValueRef o = cg_add(f, j, cg_i64c(f, lo));
        LLVMValueRef xi = cg_add(f, xrow, cg_madd(f, o, sw, cg_i64c(f, kw * dw - pw)));
        LLVMValueRef yi = cg_add(f, yrow, o);
        LLVMValueRef prod = cg_fast(LLVMBuildFMul(f->b, wv, cg_load(f, f->f32, px, xi), ""));
        cg_store(f, f->f32, py, yi,
                 cg_fast(LLVMBuildFAdd(f->b, cg_load(f, f->f32, py, yi), prod, "")));
        cg_loop_end(f, &l);
    }
    cg_if_end(f, cont);
    cg_loop_end(f, &lkh);
    cg_loop_end(f, &lic);
    cg_loop_end(f, &loh);
    cg_loop_end(f, &loc);
    cg_loop_end(f, &ln);
    return OCT_OK;
}
