/*
 * lower_stats.c: normalizations whose statistics are computed at run time:
 * LayerNormalization, RMSNormalization, InstanceNormalization and LRN, on float32, double or
 * float16 tensors (float16 results rounded through float, as the
 * interpreter's ops_set; bfloat16 is refused with a diagnostic).  The
 * formulas, their order and their precision are the interpreter's
 * (src/ref/norm.c, src/ref/lrn.c):
 *
 * LayerNormalization over dims[axis:] (axis from ops_ln_axis): mean and
 * population variance accumulated in double (reassociated sums, so within
 * the float tolerance), inv = 1 / sqrt(var + epsilon); with stash_type 1
 * (float) mean is rounded to float and inv = (float)(1 / sqrt((float)var +
 * (float)epsilon)).  y = (x - mean) * inv * scale (+ B) in double, rounded
 * once; Scale and B broadcast to the normalized dims (a contiguous loop
 * when they cover them, a loop nest with stride-0 dims otherwise).  The
 * optional outputs Mean and InvStdDev are stored in their own type.
 *
 * RMSNormalization the same way without the mean: the mean of squares in
 * double, inv from it as LayerNormalization's (stash_type included), y = x
 * * inv * scale, one vectorizable loop over the normalized elements.
 *
 * InstanceNormalization per (n, c): mean and variance over the spatial
 * dims in double, a = scale[c] / sqrt(var + epsilon), b = B[c] - mean * a,
 * y = x * a + b in double.
 *
 * LRN across channels: sum of squares over the window [c - floor((size -
 * 1) / 2), c + ceil((size - 1) / 2)] clipped to the channels, in double,
 * accumulated for a whole row of spatial positions at once in the
 * workspace (vectorizable), then y = x / pow(bias + alpha / size * sum,
 * beta).
 *
 * Every loop over the normalized elements is a plain counted loop the
 * optimizer vectorizes (the double arithmetic included).
 */
#include <math.h>

#include "codegen/codegen.h"
#include "ops/rules.h"

static LLVMValueRef libm_f64(cg_fn *f, const char *name, LLVMValueRef *args, unsigned n_args)
{
    LLVMTypeRef params[2] = {f->f64, f->f64};
    LLVMTypeRef fty = LLVMFunctionType(f->f64, params, n_args, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, name);
    if (!fn)
        fn = LLVMAddFunction(f->mod, name, fty);
    return LLVMBuildCall2(f->b, fty, fn, args, n_args, "");
}

static LLVMValueRef f64c(cg_fn *f, double v)
{
    return LLVMConstReal(f->f64, v);
}

/* A float tensor's element type, or NULL after a diagnostic. */
static LLVMTypeRef float_type(cg_fn *f, const ir_node *n, const cg_tensor *t, int is_out,
                              int index)
{
    if (t->dtype == IR_DT_FLOAT || t->dtype == IR_DT_DOUBLE)
        return cg_elem_type(f, t->dtype);
    if (t->dtype == IR_DT_FLOAT16)
        return LLVMHalfTypeInContext(f->llc);
    oct_diagf(f->ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, n, is_out, index, t->value->name,
              "compile: %s of %s is not supported yet (float32, double, float16)", n->op_type,
              ir_dtype_name(t->dtype));
    return NULL;
}

/* Element idx of a float tensor of type ty as double. */
static LLVMValueRef load_f64(cg_fn *f, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMValueRef v = cg_load(f, ty, base, idx);
    return ty == f->f64 ? v : LLVMBuildFPExt(f->b, v, f->f64, "");
}

static void store_f64(cg_fn *f, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx,
                      LLVMValueRef v)
{
    if (ty != f->f64 && ty != f->f32) /* float16: through float */
        v = LLVMBuildFPTrunc(f->b, v, f->f32, "");
    cg_store(f, ty, base, idx, ty == f->f64 ? v : LLVMBuildFPTrunc(f->b, v, ty, ""));
}

/* Mean and population variance (double) of len elements of type ty at
 * px[base ...]: two passes, as the interpreter.  Without center the mean is
 * taken as 0 and the "variance" is the mean of squares (RMSNorm). */
static void mean_var(cg_fn *f, LLVMTypeRef ty, LLVMValueRef px, LLVMValueRef base, int64_t len,
                     bool center, LLVMValueRef *mean, LLVMValueRef *var)
{
    LLVMValueRef zero = f64c(f, 0), m = zero;
    cg_loop l;
    cg_acc a;
    LLVMValueRef j;
    if (center) {
        j = cg_loop_begin(f, &l, len);
        LLVMValueRef s = cg_acc_begin(f, &l, &a, zero);
        cg_acc_end(f, &a,
                   cg_fast(LLVMBuildFAdd(f->b, s, load_f64(f, ty, px, cg_add(f, base, j)), "")));
        cg_loop_end(f, &l);
        s = cg_acc_result(f, &l, &a, zero);
        m = len ? LLVMBuildFDiv(f->b, s, f64c(f, (double)len), "") : zero;
    }
    j = cg_loop_begin(f, &l, len);
    LLVMValueRef q = cg_acc_begin(f, &l, &a, zero);
    LLVMValueRef d = load_f64(f, ty, px, cg_add(f, base, j));
    if (center)
        d = LLVMBuildFSub(f->b, d, m, "");
    cg_acc_end(f, &a, cg_fast(LLVMBuildFAdd(f->b, q, LLVMBuildFMul(f->b, d, d, ""), "")));
    cg_loop_end(f, &l);
    q = cg_acc_result(f, &l, &a, zero);
    *mean = m;
    *var = len ? LLVMBuildFDiv(f->b, q, f64c(f, (double)len), "") : zero;
}

static LLVMValueRef round_f32(cg_fn *f, LLVMValueRef v)
{
    return LLVMBuildFPExt(f->b, LLVMBuildFPTrunc(f->b, v, f->f32, ""), f->f64, "");
}

/* LayerNormalization (center) or RMSNormalization (no mean, no B, no
 * statistics outputs) over dims[axis:]. */
static oct_status lower_rownorm(cg_fn *f, const ir_node *n, int axis, bool center)
{
    cg_tensor *X = cg_in(f, n, 0), *S = cg_in(f, n, 1), *B = center ? cg_in(f, n, 2) : NULL;
    cg_tensor *Y = cg_out(f, n, 0);
    cg_tensor *M = center ? cg_out(f, n, 1) : NULL, *I = center ? cg_out(f, n, 2) : NULL;
    LLVMTypeRef xty, sty, bty = NULL, yty, mty = NULL, ity = NULL;
    if (!(xty = float_type(f, n, X, 0, 0)) || !(sty = float_type(f, n, S, 0, 1)) ||
        (B && !(bty = float_type(f, n, B, 0, 2))) || !(yty = float_type(f, n, Y, 1, 0)) ||
        (M && !(mty = float_type(f, n, M, 1, 1))) || (I && !(ity = float_type(f, n, I, 1, 2))))
        return OCT_EUNSUPPORTED;
    double eps = ir_attr_float(n, "epsilon", 1e-5f);
    bool stash_f32 = ir_attr_int(n, "stash_type", 1) == IR_DT_FLOAT;
    /* the rows may be counted at run time (symdims.h: compile.c lets only
     * the dims before the axis be symbolic) */
    int64_t outer = 1, len = 1;
    LLVMValueRef outer_v = cg_i64c(f, 1);
    for (int d = 0; d < X->rank; d++)
        if (d < axis) {
            outer *= X->dims[d];
            outer_v = cg_mul(f, outer_v, cg_dim(f, X, d));
        } else {
            len *= X->dims[d];
        }
    int nr = X->rank - axis;
    const int64_t *nd = X->dims + axis;
    if (S->rank > nr || (B && B->rank > nr))
        return oct_node_error(f->ctx, OCT_EINPUT, n,
                              "compile: Scale / B do not broadcast to the normalized dims");
    if (!X->dyn && outer == 0)
        return OCT_OK;
    LLVMValueRef px = cg_ptr(f, X), ps = cg_ptr(f, S), pb = B ? cg_ptr(f, B) : NULL;
    LLVMValueRef py = cg_ptr(f, Y), pm = M ? cg_ptr(f, M) : NULL, pi = I ? cg_ptr(f, I) : NULL;
    cg_loop lo;
    LLVMValueRef o = cg_loop_begin_v(f, &lo, outer_v);
    LLVMValueRef base = cg_mul(f, o, cg_i64c(f, len)), m, v;
    mean_var(f, xty, px, base, len, center, &m, &v);
    LLVMValueRef inv;
    if (stash_f32) { /* statistics rounded to float, as the interpreter */
        m = round_f32(f, m);
        LLVMValueRef vf = LLVMBuildFAdd(f->b, LLVMBuildFPTrunc(f->b, v, f->f32, ""),
                                        LLVMConstReal(f->f32, (float)eps), "");
        vf = LLVMBuildFPExt(f->b, vf, f->f64, "");
        inv = round_f32(f, LLVMBuildFDiv(f->b, f64c(f, 1),
                                         cg_intrinsic(f, "llvm.sqrt", f->f64, &vf, 1), ""));
    } else {
        LLVMValueRef ve = LLVMBuildFAdd(f->b, v, f64c(f, eps), "");
        inv = LLVMBuildFDiv(f->b, f64c(f, 1), cg_intrinsic(f, "llvm.sqrt", f->f64, &ve, 1), "");
    }
    if (pm)
        store_f64(f, mty, pm, o, m);
    if (pi)
        store_f64(f, ity, pi, o, inv);
    /* y = (x - m) * inv * scale (+ B) over the normalized dims: one loop
     * when Scale and B cover them, else a nest broadcasting them */
    bool direct = (int64_t)S->nelems == len && (!B || (int64_t)B->nelems == len);
    int64_t str[3][OPS_MAX_RANK], one_dim[1] = {len};
    int rank = direct ? 1 : nr;
    if (direct) {
        str[0][0] = str[1][0] = str[2][0] = 1;
    } else {
        cg_strides(nr, nd, str[0]);
        cg_bcast_strides(S->rank, S->dims, nr, str[1]);
        if (B)
            cg_bcast_strides(B->rank, B->dims, nr, str[2]);
        else
            for (int d = 0; d < nr; d++)
                str[2][d] = 0;
    }
    LLVMValueRef offs[3];
    cg_nest ns;
    cg_nest_begin(f, &ns, rank, direct ? one_dim : nd, 3,
                  (const int64_t(*)[OPS_MAX_RANK])str, offs);
    LLVMValueRef xi = cg_add(f, base, offs[0]);
    LLVMValueRef r = LLVMBuildFSub(f->b, load_f64(f, xty, px, xi), m, "");
    r = LLVMBuildFMul(f->b, LLVMBuildFMul(f->b, r, inv, ""), load_f64(f, sty, ps, offs[1]), "");
    if (pb)
        r = LLVMBuildFAdd(f->b, r, load_f64(f, bty, pb, offs[2]), "");
    store_f64(f, yty, py, xi, r);
    cg_nest_end(f, &ns);
    cg_loop_end(f, &lo);
    return OCT_OK;
}

oct_status cg_lower_layernorm(cg_fn *f, const ir_node *n)
{
    int axis;
    if (!ops_ln_axis(n, cg_in(f, n, 0)->rank, &axis))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad LayerNormalization axis");
    return lower_rownorm(f, n, axis, true);
}

oct_status cg_lower_instancenorm(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *S = cg_in(f, n, 1), *B = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    LLVMTypeRef xty, sty, bty, yty;
    if (!(xty = float_type(f, n, X, 0, 0)) || !(sty = float_type(f, n, S, 0, 1)) ||
        !(bty = float_type(f, n, B, 0, 2)) || !(yty = float_type(f, n, Y, 1, 0)))
        return OCT_EUNSUPPORTED;
    if (X->rank < 2)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 0, "compile: rank below 2");
    int64_t N = X->dims[0], C = X->dims[1], inner = 1;
    for (int d = 2; d < X->rank; d++)
        inner *= X->dims[d];
    if ((int64_t)S->nelems != C || (int64_t)B->nelems != C)
        return oct_node_error(f->ctx, OCT_EINPUT, n,
                              "compile: scale and B must have %lld elements", (long long)C);
    if (X->nelems == 0)
        return OCT_OK;
    double eps = ir_attr_float(n, "epsilon", 1e-5f);
    LLVMValueRef px = cg_ptr(f, X), ps = cg_ptr(f, S), pb = cg_ptr(f, B), py = cg_ptr(f, Y);
    cg_loop ln, lc, lk;
    LLVMValueRef b = cg_loop_begin(f, &ln, N);
    LLVMValueRef c = cg_loop_begin(f, &lc, C);
    LLVMValueRef base = cg_mul(f, cg_madd(f, b, C, c), cg_i64c(f, inner)), m, v;
    mean_var(f, xty, px, base, inner, true, &m, &v);
    LLVMValueRef ve = LLVMBuildFAdd(f->b, v, f64c(f, eps), "");
    LLVMValueRef a = LLVMBuildFDiv(f->b, load_f64(f, sty, ps, c),
                                   cg_intrinsic(f, "llvm.sqrt", f->f64, &ve, 1), "");
    LLVMValueRef b0 = LLVMBuildFSub(f->b, load_f64(f, bty, pb, c), LLVMBuildFMul(f->b, m, a, ""), "");
    LLVMValueRef k = cg_loop_begin(f, &lk, inner);
    LLVMValueRef xi = cg_add(f, base, k);
    LLVMValueRef r = LLVMBuildFAdd(f->b, LLVMBuildFMul(f->b, load_f64(f, xty, px, xi), a, ""), b0, "");
    store_f64(f, yty, py, xi, r);
    cg_loop_end(f, &lk);
    cg_loop_end(f, &lc);
    cg_loop_end(f, &ln);
    return OCT_OK;
}

oct_status cg_lower_lrn(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    LLVMTypeRef xty, yty;
    if (!(xty = float_type(f, n, X, 0, 0)) || !(yty = float_type(f, n, Y, 1, 0)))
        return OCT_EUNSUPPORTED;
    int64_t size = ir_attr_int(n, "size", 0);
    if (size < 1 || X->rank < 2)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: LRN needs size >= 1 and rank >= 2");
    double alpha = ir_attr_float(n, "alpha", 1e-4f), beta = ir_attr_float(n, "beta", 0.75f);
    double bias = ir_attr_float(n, "bias", 1.0f);
    int64_t before = (size - 1) / 2; /* floor; the window ends at c + ceil */
    int64_t N = X->dims[0], C = X->dims[1], inner = 1;
    for (int d = 2; d < X->rank; d++)
        inner *= X->dims[d];
    if (X->nelems == 0)
        return OCT_OK;
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    LLVMValueRef ws = cg_workspace(f, (uint64_t)inner * 8);
    cg_loop ln, lc, lt, lk;
    LLVMValueRef b = cg_loop_begin(f, &ln, N);
    LLVMValueRef c = cg_loop_begin(f, &lc, C);
    LLVMValueRef k = cg_loop_begin(f, &lk, inner);
    cg_store(f, f->f64, ws, k, f64c(f, 0));
    cg_loop_end(f, &lk);
    /* channel j = c - before + t for t < size; outside [0, C) it adds 0
     * (read at a clamped index), so the sum runs over the clipped window in
     * ascending order, as the interpreter's */
    LLVMValueRef t = cg_loop_begin(f, &lt, size);
    LLVMValueRef j = cg_add(f, cg_add(f, c, cg_i64c(f, -before)), t);
    LLVMValueRef inside = LLVMBuildAnd(f->b, LLVMBuildICmp(f->b, LLVMIntSGE, j, cg_i64c(f, 0), ""),
                                       LLVMBuildICmp(f->b, LLVMIntSLT, j, cg_i64c(f, C), ""), "");
    LLVMValueRef jc = LLVMBuildSelect(f->b, inside, j, c, "");
    LLVMValueRef row = cg_mul(f, cg_madd(f, b, C, jc), cg_i64c(f, inner));
    k = cg_loop_begin(f, &lk, inner);
    LLVMValueRef v = load_f64(f, xty, px, cg_add(f, row, k));
    LLVMValueRef sq = LLVMBuildSelect(f->b, inside, LLVMBuildFMul(f->b, v, v, ""), f64c(f, 0), "");
    cg_store(f, f->f64, ws, k, LLVMBuildFAdd(f->b, cg_load(f, f->f64, ws, k), sq, ""));
    cg_loop_end(f, &lk);
    cg_loop_end(f, &lt);
    LLVMValueRef here = cg_mul(f, cg_madd(f, b, C, c), cg_i64c(f, inner));
    k = cg_loop_begin(f, &lk, inner);
    LLVMValueRef xi = cg_add(f, here, k);
    LLVMValueRef den = LLVMBuildFAdd(f->b, f64c(f, bias),
                                     LLVMBuildFMul(f->b, f64c(f, alpha / (double)size),
                                                   cg_load(f, f->f64, ws, k), ""), "");
    LLVMValueRef args[2] = {den, f64c(f, beta)};
    store_f64(f, yty, py, xi,
              LLVMBuildFDiv(f->b, load_f64(f, xty, px, xi), libm_f64(f, "pow", args, 2), ""));
    cg_loop_end(f, &lk);
    cg_loop_end(f, &lc);
    cg_loop_end(f, &ln);
    return OCT_OK;
}

/* RMSNormalization over dims[axis:]: lower_rownorm without the mean (the
 * mean of squares in double, inv as LayerNormalization's, stash_type
 * included; y = x * inv * scale). */
oct_status cg_lower_rmsnorm(cg_fn *f, const ir_node *n)
{
    int axis;
    if (!ops_rms_axis(n, cg_in(f, n, 0)->rank, &axis))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad RMSNormalization axis");
    return lower_rownorm(f, n, axis, false);
}
