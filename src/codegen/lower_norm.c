/*
 * lower_norm.c: float32 Softmax / LogSoftmax and inference
 * BatchNormalization.  Softmax groups follow the opset: from 13 one axis,
 * before 13 the input flattened to 2-D at `axis`.  Per group m = max(x),
 * e = expf(x - m), softmax = e * (1 / sum(e)), logsoftmax =
 * (x - m) - logf(sum(e)); the sum is a float reduction (reassociated), the
 * reference sums in double, hence the float tolerance.  BatchNormalization
 * folds its constant parameters at compile time exactly as the reference
 * and ONNX Runtime do (ops_bn_fold_f32: inv = 1 / sqrt(var + eps),
 * a = inv * scale, b = B - mean * a, in float) and emits y = x * a + b per
 * channel, unfused.  With parameters known only at run time the same
 * float steps run in the generated code; in training mode (opset 14+)
 * they run in double, as in the reference (no fast-math flags, so the
 * bits are the reference's): training
 * mode first takes the batch mean and the biased batch variance of the
 * channel (sums in double, in memory order), writes running_mean =
 * mean * momentum + batch_mean * (1 - momentum) (and the same for the
 * variance) when those outputs are used, and normalizes with the batch
 * statistics.  A parameter vector of C x spatial values (spatial = 0,
 * before opset 9) is one parameter per element of dims[1:].
 */
#include <math.h>

#include <stddef.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"
#include "ops/rules.h"

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
    /* sizes as values: symbolic dims are read at run time (symdims.h);
     * inner_one: every dim after the axis is a constant 1 */
    LLVMValueRef outer = cg_i64c(f, 1), len = cg_i64c(f, 1), inner = cg_i64c(f, 1);
    bool inner_one = true, empty = false;
    for (int d = 0; d < X->rank; d++) {
        LLVMValueRef v = cg_dim(f, X, d);
        empty |= !(X->dyn && X->sym[d] >= 0) && X->dims[d] == 0;
        if (d < axis) {
            outer = cg_mul(f, outer, v);
        } else if (d == axis || f->opset < 13) {
            len = cg_mul(f, len, v);
        } else {
            inner = cg_mul(f, inner, v);
            inner_one &= !(X->dyn && X->sym[d] >= 0) && X->dims[d] == 1;
        }
    }
    if (empty)
        return OCT_OK;
    if (inner_one && cg_kernels_available(f)) { /* rows of len: octk_ssoftmax */
        octk_ssoftmax a = {.log = log_form}; /* rows and cols set at run time */
        cg_kptr ptrs[4] = {{offsetof(octk_ssoftmax, x), cg_ptr(f, X)},
                           {offsetof(octk_ssoftmax, y), cg_ptr(f, Y)},
                           {offsetof(octk_ssoftmax, rows), outer},
                           {offsetof(octk_ssoftmax, cols), len}};
        cg_kernel_call(f, "ssoftmax", &a, sizeof a, ptrs, 4);
        return OCT_OK;
    }
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    cg_loop lo, li, lk;
    LLVMValueRef o = cg_loop_begin_v(f, &lo, outer);
    LLVMValueRef i = cg_loop_begin_v(f, &li, inner);
    LLVMValueRef base = cg_add(f, cg_mul(f, o, cg_mul(f, len, inner)), i);
    /* max */
    LLVMValueRef minf = cg_f32c(f, -INFINITY);
    LLVMValueRef k = cg_loop_begin_v(f, &lk, len);
    cg_acc am;
    LLVMValueRef m = cg_acc_begin(f, &lk, &am, minf);
    LLVMValueRef xv = cg_load(f, f->f32, px, cg_add(f, cg_mul(f, k, inner), base));
    cg_acc_end(f, &am, LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, xv, m, ""),
                                       xv, m, ""));
    cg_loop_end(f, &lk);
    m = cg_acc_result(f, &lk, &am, minf);
    /* sum of exp, storing e (softmax) */
    LLVMValueRef zero = cg_f32c(f, 0);
    k = cg_loop_begin_v(f, &lk, len);
    cg_acc as;
    LLVMValueRef s = cg_acc_begin(f, &lk, &as, zero);
    LLVMValueRef idx = cg_add(f, cg_mul(f, k, inner), base);
    LLVMValueRef e = cg_libm_f32(f, "expf", LLVMBuildFSub(f->b, cg_load(f, f->f32, px, idx), m, ""));
    if (!log_form)
        cg_store(f, f->f32, py, idx, e);
    cg_acc_end(f, &as, cg_fast(LLVMBuildFAdd(f->b, s, e, "")));
    cg_loop_end(f, &lk);
    s = cg_acc_result(f, &lk, &as, zero);
    LLVMValueRef scale = log_form ? cg_libm_f32(f, "logf", s)
                                  : LLVMBuildFDiv(f->b, cg_f32c(f, 1), s, "");
    k = cg_loop_begin_v(f, &lk, len);
    idx = cg_add(f, cg_mul(f, k, inner), base);
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

static LLVMValueRef f64c(cg_fn *f, double v)
{
    return LLVMConstReal(LLVMDoubleTypeInContext(f->llc), v);
}

/* sum over the channel's elements of g(x) in double, in memory order:
 * g(x) = x (d == NULL) or (x - d)^2. */
static LLVMValueRef channel_sum(cg_fn *f, LLVMValueRef px, LLVMValueRef ch, int64_t N,
                                int64_t C, int64_t inner, LLVMValueRef d)
{
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(f->llc);
    LLVMValueRef zero = f64c(f, 0.0);
    cg_loop lb, lk;
    cg_acc ab, ak;
    LLVMValueRef b = cg_loop_begin(f, &lb, N);
    LLVMValueRef sb = cg_acc_begin(f, &lb, &ab, zero);
    LLVMValueRef base = cg_mul(f, cg_madd(f, b, C, ch), cg_i64c(f, inner));
    LLVMValueRef k = cg_loop_begin(f, &lk, inner);
    LLVMValueRef sk = cg_acc_begin(f, &lk, &ak, sb);
    LLVMValueRef x = LLVMBuildFPExt(f->b, cg_load(f, f->f32, px, cg_add(f, base, k)), f64, "");
    if (d) {
        x = LLVMBuildFSub(f->b, x, d, "");
        x = LLVMBuildFMul(f->b, x, x, "");
    }
    cg_acc_end(f, &ak, LLVMBuildFAdd(f->b, sk, x, ""));
    cg_loop_end(f, &lk);
    cg_acc_end(f, &ab, cg_acc_result(f, &lk, &ak, sb));
    cg_loop_end(f, &lb);
    return cg_acc_result(f, &lb, &ab, zero);
}

/* BatchNormalization whose parameters are read at run time (float32), or
 * in training mode: per channel the factors of ops_bn_fold_f32 (in double,
 * ops_bn_fold_f64, in training mode), then y = x * (float)a + (float)b. */
static oct_status batchnorm_runtime(cg_fn *f, const ir_node *n, cg_tensor *X, cg_tensor *Y,
                                    cg_tensor *const *p, int64_t N, int64_t C, int64_t inner,
                                    bool train)
{
    oct_status st;
    for (int k = 0; k < 4; k++)
        if ((st = cg_need_f32(f, n, p[k], 0, k + 1)))
            return st;
    cg_tensor *run[2] = {NULL, NULL};
    for (int k = 0; train && k < 2; k++)
        if ((run[k] = cg_out(f, n, k + 1)) &&
            ((st = cg_need_f32(f, n, run[k], 1, k + 1)) || run[k]->nelems != (uint64_t)C))
            return st ? st : oct_output_error(f->ctx, OCT_EINPUT, n, k + 1,
                                              "compile: expected %lld values", (long long)C);
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(f->llc);
    double eps = ir_attr_float(n, "epsilon", 1e-5f);
    double momentum = ir_attr_float(n, "momentum", 0.9f);
    double cnt = (double)N * (double)inner;
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    cg_loop lc, lb, li;
    LLVMValueRef c = cg_loop_begin(f, &lc, C);
    LLVMValueRef par[4];
    for (int k = 0; k < 4; k++)
        par[k] = LLVMBuildFPExt(f->b, cg_load(f, f->f32, cg_ptr(f, p[k]), c), f64, "");
    LLVMValueRef mean = par[2], var = par[3];
    if (train) {
        LLVMValueRef bm = cnt ? LLVMBuildFDiv(f->b, channel_sum(f, px, c, N, C, inner, NULL),
                                              f64c(f, cnt), "")
                              : f64c(f, 0.0);
        LLVMValueRef bv = cnt ? LLVMBuildFDiv(f->b, channel_sum(f, px, c, N, C, inner, bm),
                                              f64c(f, cnt), "")
                              : f64c(f, 0.0);
        LLVMValueRef batch[2] = {bm, bv}, old[2] = {mean, var};
        for (int k = 0; k < 2; k++) {
            if (!run[k])
                continue;
            LLVMValueRef v = LLVMBuildFAdd(
                f->b, LLVMBuildFMul(f->b, old[k], f64c(f, momentum), ""),
                LLVMBuildFMul(f->b, batch[k], f64c(f, 1 - momentum), ""), "");
            cg_store(f, f->f32, cg_ptr(f, run[k]), c, LLVMBuildFPTrunc(f->b, v, f->f32, ""));
        }
        mean = bm;
        var = bv;
    }
    /* ops_bn_fold_f64 in training mode, else ops_bn_fold_f32 */
    LLVMTypeRef ft = train ? f64 : f->f32;
    if (!train) {
        for (int k = 0; k < 4; k++)
            par[k] = LLVMBuildFPTrunc(f->b, par[k], f->f32, "");
        mean = par[2];
        var = par[3];
    }
    LLVMValueRef sd = LLVMBuildFAdd(f->b, var, LLVMConstReal(ft, train ? eps : (float)eps), "");
    sd = cg_intrinsic(f, "llvm.sqrt", ft, &sd, 1);
    LLVMValueRef a = LLVMBuildFMul(f->b, LLVMBuildFDiv(f->b, LLVMConstReal(ft, 1.0), sd, ""),
                                   par[0], "");
    LLVMValueRef b = LLVMBuildFSub(f->b, par[1], LLVMBuildFMul(f->b, mean, a, ""), "");
    a = LLVMBuildFPTrunc(f->b, a, f->f32, "");
    b = LLVMBuildFPTrunc(f->b, b, f->f32, "");
    LLVMValueRef nn = cg_loop_begin(f, &lb, N);
    LLVMValueRef base = cg_mul(f, cg_madd(f, nn, C, c), cg_i64c(f, inner));
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    LLVMValueRef idx = cg_add(f, base, i);
    LLVMValueRef v = LLVMBuildFAdd(f->b, LLVMBuildFMul(f->b, cg_load(f, f->f32, px, idx), a, ""),
                                   b, "");
    cg_store(f, f->f32, py, idx, v);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lb);
    cg_loop_end(f, &lc);
    return OCT_OK;
}

bool cg_batchnorm_takes_dynamic(cg_fn *f, const ir_node *n)
{
    const cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    if (!X || !Y || X->dtype != IR_DT_FLOAT || Y->dtype != IR_DT_FLOAT || X->rank < 3 ||
        ops_bn_training(n, f->opset) || (X->dyn && (X->sym[0] >= 0 || X->sym[1] >= 0)))
        return false;
    for (int k = 1; k < n->n_out; k++)
        if (cg_out(f, n, k))
            return false;
    for (int k = 1; k < 5; k++) { /* constants of C values (spatial = 1) */
        const cg_tensor *p = cg_in(f, n, k);
        if (!p || p->place != CG_PLACE_CONST || (int64_t)p->nelems != X->dims[1])
            return false;
    }
    return true;
}

oct_status cg_lower_batchnorm(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = cg_need_f32(f, n, X, 0, 0)) || (st = cg_need_f32(f, n, Y, 1, 0)))
        return st;
    bool train = ops_bn_training(n, f->opset);
    for (int k = train ? 3 : 1; k < n->n_out; k++)
        if (cg_out(f, n, k))
            return oct_output_error(f->ctx, OCT_EUNSUPPORTED, n, k,
                                    "compile: BatchNormalization output %d is not "
                                    "supported%s", k, train ? "" : " outside training mode");
    cg_tensor *pt[4];
    bool all_const = !train;
    for (int k = 0; k < 4; k++) {
        if (!(pt[k] = cg_in(f, n, k + 1)))
            return oct_input_error(f->ctx, OCT_EINPUT, n, k + 1,
                                   "compile: BatchNormalization needs all its parameters");
        all_const = all_const && pt[k]->place == CG_PLACE_CONST;
    }
    if (X->rank < 2)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: input rank below 2");
    int64_t C = X->dims[1], N = X->dims[0], inner = 1;
    for (int d = 2; d < X->rank; d++)
        inner *= X->dims[d];
    /* spatial = 0 (opset < 9): one parameter per element of dims[1:] */
    if ((int64_t)pt[0]->nelems != C && (int64_t)pt[0]->nelems == C * inner) {
        C *= inner;
        inner = 1;
    }
    for (int k = 0; k < 4; k++)
        if ((int64_t)pt[k]->nelems != C)
            return oct_input_error(f->ctx, OCT_EINPUT, n, k + 1, "compile: expected %lld values",
                                   (long long)C);
    if (!all_const)
        return batchnorm_runtime(f, n, X, Y, pt, N, C, inner, train);
    const ir_tensor *p[4];
    for (int k = 0; k < 4; k++)
        p[k] = pt[k]->value->init;
    double eps = ir_attr_float(n, "epsilon", 1e-5f);
    float *ab = ir_alloc_array(f->ctx, (size_t)(C > 0 ? 2 * C : 1), sizeof *ab);
    if (!ab)
        return OCT_EINTERNAL;
    for (int64_t c = 0; c < C; c++)
        ops_bn_fold_f32((float)get_f(p[0], c), (float)get_f(p[1], c), (float)get_f(p[2], c),
                        (float)get_f(p[3], c), (float)eps, &ab[c], &ab[C + c]);
    LLVMValueRef init = LLVMConstStringInContext(f->llc, (const char *)ab,
                                                 (unsigned)(2 * C * sizeof *ab), 1);
    LLVMValueRef gv = LLVMAddGlobal(f->mod, LLVMTypeOf(init), "bn");
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetAlignment(gv, CG_ALIGN);
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    /* the spatial size read at run time when symbolic (symdims.h) */
    LLVMValueRef inner_v = cg_i64c(f, inner);
    for (int d = 2; X->dyn && d < X->rank; d++)
        inner_v = cg_mul(f, d == 2 ? cg_i64c(f, 1) : inner_v, cg_dim(f, X, d));
    cg_loop ln, lc, li;
    LLVMValueRef nn = cg_loop_begin(f, &ln, N);
    LLVMValueRef c = cg_loop_begin(f, &lc, C);
    LLVMValueRef a = cg_load(f, f->f32, gv, c), b = cg_load(f, f->f32, gv, cg_add(f, c, cg_i64c(f, C)));
    LLVMValueRef base = cg_mul(f, cg_madd(f, nn, C, c), inner_v);
    LLVMValueRef i = cg_loop_begin_v(f, &li, inner_v);
    LLVMValueRef idx = cg_add(f, base, i);
    /* x * a + b, the reference's order, unfused */
    LLVMValueRef v = LLVMBuildFAdd(f->b, LLVMBuildFMul(f->b, cg_load(f, f->f32, px, idx), a, ""), b, "");
    cg_store(f, f->f32, py, idx, v);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lc);
    cg_loop_end(f, &ln);
    return OCT_OK;
}
