/*
 * lower_norm.c: float32 Softmax / LogSoftmax and inference
 * BatchNormalization.  Softmax groups follow the opset: from 13 one axis,
 * before 13 the input flattened to 2-D at `axis`.  Per group m = max(x),
 * e = expf(x - m), softmax = e * (1 / sum(e)), logsoftmax =
 * (x - m) - logf(sum(e)); the sum is a float reduction (reassociated), the
 * reference sums in double, hence the float tolerance.  BatchNormalization
 * folds its constant parameters at compile time exactly as the reference
 * does (a = scale / sqrt(var + eps) and b = B - mean * a in double, rounded
 * to float) and emits y = x * a + b per channel.
 */
#include <math.h>

#include <stddef.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"

oct_status cg_lower_softmax(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = cg_need_f32(f, n, X, 0, 0)) || (st = cg_need_f32(f, n, Y, 1, 0)))
        return st;
    bool log_form = n->op == IR_OP_LOGSOFTMAX;
    int axis;
    if (!ops_norm_axis(ir_attr_int(n, "axis", f->opset >= 13 ? -1 : 1), X->rank, &axis))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad Softmax axis");
    int64_t outer = 1, len = 1, inner = 1;
    for (int d = 0; d < X->rank; d++) {
        if (d < axis)
            outer *= X->dims[d];
        else if (d == axis || f->opset < 13)
            len *= X->dims[d];
        else
            inner *= X->dims[d];
    }
    if (len == 0 || outer * inner == 0)
        return OCT_OK;
    if (inner == 1 && cg_kernels_available(f)) { /* rows of len: octk_ssoftmax */
        octk_ssoftmax a = {.rows = outer, .cols = len, .log = log_form};
        cg_kptr ptrs[2] = {{offsetof(octk_ssoftmax, x), cg_ptr(f, X)},
                           {offsetof(octk_ssoftmax, y), cg_ptr(f, Y)}};
        cg_kernel_call(f, "ssoftmax", &a, sizeof a, ptrs, 2);
        return OCT_OK;
    }
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    cg_loop lo, li, lk;
    LLVMValueRef o = cg_loop_begin(f, &lo, outer);
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    LLVMValueRef base = cg_madd(f, o, len * inner, i);
    /* max */
    LLVMValueRef minf = cg_f32c(f, -INFINITY);
    LLVMValueRef k = cg_loop_begin(f, &lk, len);
    cg_acc am;
    LLVMValueRef m = cg_acc_begin(f, &lk, &am, minf);
    LLVMValueRef xv = cg_load(f, f->f32, px, cg_madd(f, k, inner, base));
    cg_acc_end(f, &am, LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, xv, m, ""),
                                       xv, m, ""));
    cg_loop_end(f, &lk);
    m = cg_acc_result(f, &lk, &am, minf);
    /* sum of exp, storing e (softmax) */
    LLVMValueRef zero = cg_f32c(f, 0);
    k = cg_loop_begin(f, &lk, len);
    cg_acc as;
    LLVMValueRef s = cg_acc_begin(f, &lk, &as, zero);
    LLVMValueRef idx = cg_madd(f, k, inner, base);
    LLVMValueRef e = cg_libm_f32(f, "expf", LLVMBuildFSub(f->b, cg_load(f, f->f32, px, idx), m, ""));
    if (!log_form)
        cg_store(f, f->f32, py, idx, e);
    cg_acc_end(f, &as, cg_fast(LLVMBuildFAdd(f->b, s, e, "")));
    cg_loop_end(f, &lk);
    s = cg_acc_result(f, &lk, &as, zero);
    LLVMValueRef scale = log_form ? cg_libm_f32(f, "logf", s)
                                  : LLVMBuildFDiv(f->b, cg_f32c(f, 1), s, "");
    k = cg_loop_begin(f, &lk, len);
    idx = cg_madd(f, k, inner, base);
    LLVMValueRef r = log_form
        ? LLVMBuildFSub(f->b, LLVMBuildFSub(f->b, cg_load(f, f->f32, px, idx), m, ""), scale, "")
        : LLVMBuildFMul(f->b, cg_load(f, f->f32, py, idx), scale, "");
    cg_store(f, f->f32, py, idx, r);
    cg_loop_end(f, &lk);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lo);
    return OCT_OK;
}

static double get_f(const ir_tensor *t, int64_t i)
{
    return ops_get(t, (uint64_t)i);
}

oct_status cg_lower_batchnorm(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = cg_need_f32(f, n, X, 0, 0)) || (st = cg_need_f32(f, n, Y, 1, 0)))
        return st;
    if (ir_attr_int(n, "training_mode", 0) || cg_out(f, n, 1) || cg_out(f, n, 2))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: BatchNormalization in training mode");
    const ir_tensor *p[4];
    for (int k = 0; k < 4; k++) {
        cg_tensor *t = cg_in(f, n, k + 1);
        if (!t || t->place != CG_PLACE_CONST)
            return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, k + 1,
                                   "compile: BatchNormalization needs constant parameters");
        p[k] = t->value->init;
    }
    if (X->rank < 2)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: input rank below 2");
    int64_t C = X->dims[1], N = X->dims[0], inner = 1;
    for (int d = 2; d < X->rank; d++)
        inner *= X->dims[d];
    for (int k = 0; k < 4; k++)
        if ((int64_t)p[k]->nelems != C)
            return oct_input_error(f->ctx, OCT_EINPUT, n, k + 1, "compile: expected %lld values",
                                   (long long)C);
    double eps = ir_attr_float(n, "epsilon", 1e-5f);
    float *ab = ir_alloc_array(f->ctx, (size_t)(C > 0 ? 2 * C : 1), sizeof *ab);
    if (!ab)
        return OCT_EINTERNAL;
    for (int64_t c = 0; c < C; c++) {
        double a = get_f(p[0], c) / sqrt(get_f(p[3], c) + eps);
        ab[c] = (float)a;
        ab[C + c] = (float)(get_f(p[1], c) - get_f(p[2], c) * a);
    }
    LLVMValueRef init = LLVMConstStringInContext(f->llc, (const char *)ab,
                                                 (unsigned)(2 * C * sizeof *ab), 1);
    LLVMValueRef gv = LLVMAddGlobal(f->mod, LLVMTypeOf(init), "bn");
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetAlignment(gv, CG_ALIGN);
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    cg_loop ln, lc, li;
    LLVMValueRef nn = cg_loop_begin(f, &ln, N);
    LLVMValueRef c = cg_loop_begin(f, &lc, C);
    LLVMValueRef a = cg_load(f, f->f32, gv, c), b = cg_load(f, f->f32, gv, cg_add(f, c, cg_i64c(f, C)));
    LLVMValueRef base = cg_mul(f, cg_madd(f, nn, C, c), cg_i64c(f, inner));
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    LLVMValueRef idx = cg_add(f, base, i);
    /* x * a + b, the reference's order, unfused */
    LLVMValueRef v = LLVMBuildFAdd(f->b, LLVMBuildFMul(f->b, cg_load(f, f->f32, px, idx), a, ""), b, "");
    cg_store(f, f->f32, py, idx, v);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lc);
    cg_loop_end(f, &ln);
    return OCT_OK;
}
