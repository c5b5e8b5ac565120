/*
 * lower_elemgen.c: the generic broadcasting element-wise lowering: every
 * unary and binary op of ops.def on every dtype the interpreter runs, the
 * variadic Max / Min / Sum / Mean over any number of inputs, and Where.
 * One loop nest over the output (cg_nest, stride 0 on broadcast dims, so
 * the innermost loop is a simple counted loop the vectorizer takes) loads
 * each input as a value of its class (lower_elem.h), computes as the
 * interpreter does (src/ref/eltwise_*.c) and stores with the output's
 * rounding:
 *  - FLOAT computes in float with the float libm functions (erff, powf,
 *    sinf, atanhf...); the ops the interpreter computes in double for FLOAT
 *    too (Sign, Softplus, Softsign, Elu, Selu, Celu, ThresholdedRelu, Mish,
 *    Shrink, exact Gelu, and any op whose other operand is not FLOAT) do so here;
 *  - DOUBLE, FLOAT16 and BFLOAT16 compute in double, rounded once;
 *  - integers compute in int64, wrapping (two's complement); Div truncates
 *    and x / 0 is 0; Mod by 0 is 0, fmod=0 takes the divisor's sign;
 *    integer Pow with a non-negative integer exponent is exact repeated
 *    multiplication, otherwise pow() in double truncated and saturated;
 *    BitShift by the width or more gives 0;
 *  - comparisons are ordered (NaN compares false); unsigned types compare
 *    unsigned;
 *  - Max/Min propagate NaN; float Sum/Mean accumulate in double; inputs
 *    are combined in passes of 8 as the interpreter does (its output
 *    rounded between passes), Mean divides once, in the last pass.
 * The float libm calls are those the interpreter makes, so results agree
 * to the bit with the same C library.
 */
#include <math.h>
#include <string.h>

#include "codegen/lower_elem.h"
#include "ops/rules.h"

enum { VAR_PASS = 8 }; /* inputs per pass of ref_variadic (REF_BCAST_MAX_IN) */

static LLVMValueRef fc(cg_fn *f, LLVMTypeRef ty, double v) { return LLVMConstReal(ty, v); }

static LLVMValueRef fcmp(cg_fn *f, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFCmp(f->b, p, a, b, "");
}

static LLVMValueRef sel(cg_fn *f, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(f->b, c, a, b, "");
}

static LLVMValueRef bool64(cg_fn *f, LLVMValueRef c)
{
    return LLVMBuildZExt(f->b, c, f->i64, "");
}

/* libm NAME on f32 (NAMEf) or f64. */
static LLVMValueRef lm(cg_fn *f, LLVMTypeRef ty, const char *name, LLVMValueRef x)
{
    if (ty == f->f64)
        return cg_libm_f64(f, name, x, NULL);
    char buf[16];
    snprintf(buf, sizeof buf, "%sf", name);
    return cg_libm_f32(f, buf, x);
}

static LLVMValueRef intr(cg_fn *f, const char *name, LLVMValueRef x)
{
    return cg_intrinsic(f, name, LLVMTypeOf(x), &x, 1);
}

/* ---- unary --------------------------------------------------------------- */

typedef struct unary_params {
    double alpha, beta, gamma;
    bool gelu_tanh;
} unary_params;

static oct_status unary_params_of(cg_fn *f, const ir_node *n, unary_params *p)
{
    memset(p, 0, sizeof *p);
    switch (n->op) {
    case IR_OP_LEAKYRELU: p->alpha = ir_attr_float(n, "alpha", 0.01f); break;
    case IR_OP_HARDSIGMOID:
        p->alpha = ir_attr_float(n, "alpha", 0.2f);
        p->beta = ir_attr_float(n, "beta", 0.5f);
        break;
    case IR_OP_ELU: case IR_OP_CELU: case IR_OP_THRESHOLDEDRELU:
        p->alpha = ir_attr_float(n, "alpha", 1.0f);
        break;
    case IR_OP_SHRINK:
        p->alpha = ir_attr_float(n, "lambd", 0.5f);
        p->beta = ir_attr_float(n, "bias", 0.0f);
        break;
    case IR_OP_SELU:
        p->alpha = ir_attr_float(n, "alpha", 1.67326319217681884765625f);
        p->gamma = ir_attr_float(n, "gamma", 1.05070102214813232421875f);
        break;
    case IR_OP_GELU: {
        const ir_attr *a = ir_node_attr(n, "approximate");
        if (a && a->type == IR_ATTR_STRING) {
            if (a->s.len == 4 && !memcmp(a->s.data, "tanh", 4))
                p->gelu_tanh = true;
            else if (!(a->s.len == 4 && !memcmp(a->s.data, "none", 4)))
                return oct_node_error(f->ctx, OCT_EINPUT, n,
                                      "approximate must be 'none' or 'tanh'");
        }
        break;
    }
    default: break;
    }
    if (n->op == IR_OP_CELU && p->alpha == 0)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "Celu alpha must not be 0");
    return OCT_OK;
}

/* log(1 + exp(x)) without overflow, in double. */
static LLVMValueRef softplus64(cg_fn *f, LLVMValueRef x)
{
    LLVMValueRef d = fc(f, f->f64, 0);
    LLVMValueRef pos = LLVMBuildFAdd(
        f->b, x, cg_libm_f64(f, "log1p", cg_libm_f64(f, "exp", LLVMBuildFNeg(f->b, x, ""), NULL),
                             NULL), "");
    LLVMValueRef neg = cg_libm_f64(f, "log1p", cg_libm_f64(f, "exp", x, NULL), NULL);
    return sel(f, fcmp(f, LLVMRealOGT, x, d), pos, neg);
}

/* The ops the interpreter computes in double whatever the float type
 * (unary_f64_other); NULL for the others. */
static LLVMValueRef unary_other64(cg_fn *f, ir_op op, const unary_params *p, LLVMValueRef x)
{
    LLVMTypeRef t = f->f64;
    LLVMValueRef zero = fc(f, t, 0), one = fc(f, t, 1);
    switch (op) {
    case IR_OP_SIGN: /* 0 and NaN kept */
        return sel(f, fcmp(f, LLVMRealOGT, x, zero), one,
                   sel(f, fcmp(f, LLVMRealOLT, x, zero), fc(f, t, -1), x));
    case IR_OP_SOFTPLUS: return softplus64(f, x);
    case IR_OP_SOFTSIGN:
        return LLVMBuildFDiv(f->b, x, LLVMBuildFAdd(f->b, one, intr(f, "llvm.fabs", x), ""), "");
    case IR_OP_ELU: {
        LLVMValueRef e = LLVMBuildFSub(f->b, cg_libm_f64(f, "exp", x, NULL), one, "");
        return sel(f, fcmp(f, LLVMRealOLT, x, zero),
                   LLVMBuildFMul(f->b, fc(f, t, p->alpha), e, ""), x);
    }
    case IR_OP_SELU: {
        LLVMValueRef a = fc(f, t, p->alpha), g = fc(f, t, p->gamma);
        LLVMValueRef e = LLVMBuildFSub(
            f->b, LLVMBuildFMul(f->b, a, cg_libm_f64(f, "exp", x, NULL), ""), a, "");
        return sel(f, fcmp(f, LLVMRealOLE, x, zero), LLVMBuildFMul(f->b, g, e, ""),
                   LLVMBuildFMul(f->b, g, x, ""));
    }
    case IR_OP_CELU: {
        LLVMValueRef a = fc(f, t, p->alpha);
        LLVMValueRef e = LLVMBuildFMul(
            f->b, a,
            LLVMBuildFSub(f->b, cg_libm_f64(f, "exp", LLVMBuildFDiv(f->b, x, a, ""), NULL), one,
                          ""),
            "");
        LLVMValueRef args[2] = {zero, e};
        LLVMValueRef mn = cg_intrinsic(f, "llvm.minnum", t, args, 2); /* fmin */
        return LLVMBuildFAdd(f->b, sel(f, fcmp(f, LLVMRealOGT, x, zero), x, zero), mn, "");
    }
    case IR_OP_THRESHOLDEDRELU:
        return sel(f, fcmp(f, LLVMRealOGT, x, fc(f, t, p->alpha)), x, zero);
    case IR_OP_SHRINK: { /* alpha = lambd, beta = bias; NaN gives 0 */
        LLVMValueRef l = fc(f, t, p->alpha), b = fc(f, t, p->beta);
        return sel(f, fcmp(f, LLVMRealOLT, x, LLVMBuildFNeg(f->b, l, "")),
                   LLVMBuildFAdd(f->b, x, b, ""),
                   sel(f, fcmp(f, LLVMRealOGT, x, l), LLVMBuildFSub(f->b, x, b, ""), zero));
    }
    case IR_OP_MISH:
        return LLVMBuildFMul(f->b, x, cg_libm_f64(f, "tanh", softplus64(f, x), NULL), "");
    default: return NULL;
    }
}

/* unary_f32 / unary_f64 of the interpreter on type t (f32 or f64). */
static LLVMValueRef unary_fp(cg_fn *f, ir_op op, const unary_params *p, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    bool dbl = t == f->f64;
    LLVMValueRef zero = fc(f, t, 0), one = fc(f, t, 1);
    switch (op) {
    case IR_OP_SQRT: return intr(f, "llvm.sqrt", x);
    case IR_OP_EXP: return lm(f, t, "exp", x);
    case IR_OP_LOG: return lm(f, t, "log", x);
    case IR_OP_ERF: return lm(f, t, "erf", x);
    case IR_OP_NEG: return LLVMBuildFNeg(f->b, x, "");
    case IR_OP_ABS: return intr(f, "llvm.fabs", x);
    case IR_OP_RELU: return sel(f, fcmp(f, LLVMRealOLT, x, zero), zero, x);
    case IR_OP_LEAKYRELU:
        return sel(f, fcmp(f, LLVMRealOGE, x, zero), x,
                   LLVMBuildFMul(f->b, fc(f, t, dbl ? p->alpha : (float)p->alpha), x, ""));
    case IR_OP_SIGMOID: {
        LLVMValueRef en = lm(f, t, "exp", LLVMBuildFNeg(f->b, x, ""));
        LLVMValueRef ep = lm(f, t, "exp", x);
        LLVMValueRef a = LLVMBuildFDiv(f->b, one, LLVMBuildFAdd(f->b, one, en, ""), "");
        LLVMValueRef b = LLVMBuildFDiv(f->b, ep, LLVMBuildFAdd(f->b, one, ep, ""), "");
        return sel(f, fcmp(f, LLVMRealOGE, x, zero), a, b);
    }
    case IR_OP_HARDSIGMOID:
    case IR_OP_HARDSWISH: {
        bool hs = op == IR_OP_HARDSWISH;
        LLVMValueRef v =
            hs ? LLVMBuildFAdd(f->b, LLVMBuildFDiv(f->b, x, fc(f, t, 6), ""), fc(f, t, 0.5), "")
               : LLVMBuildFAdd(
                     f->b,
                     LLVMBuildFMul(f->b, fc(f, t, dbl ? p->alpha : (float)p->alpha), x, ""),
                     fc(f, t, dbl ? p->beta : (float)p->beta), "");
        v = sel(f, fcmp(f, LLVMRealOLT, v, zero), zero,
                sel(f, fcmp(f, LLVMRealOGT, v, one), one, v));
        return hs ? LLVMBuildFMul(f->b, x, v, "") : v;
    }
    case IR_OP_TANH: return lm(f, t, "tanh", x);
    case IR_OP_GELU: {
        if (p->gelu_tanh) {
            LLVMValueRef c3 = LLVMBuildFMul(
                f->b, LLVMBuildFMul(f->b, LLVMBuildFMul(f->b, fc(f, t, dbl ? 0.044715 : 0.044715f),
                                                        x, ""), x, ""), x, "");
            LLVMValueRef in = LLVMBuildFMul(
                f->b, fc(f, t, dbl ? 0.7978845608028654 : 0.7978845608028654f),
                LLVMBuildFAdd(f->b, x, c3, ""), "");
            LLVMValueRef h = LLVMBuildFMul(f->b, fc(f, t, 0.5), x, "");
            return LLVMBuildFMul(f->b, h, LLVMBuildFAdd(f->b, one, lm(f, t, "tanh", in), ""), "");
        }
        /* in double for FLOAT too */
        LLVMValueRef xd = dbl ? x : LLVMBuildFPExt(f->b, x, f->f64, "");
        LLVMValueRef e = cg_libm_f64(
            f, "erf", LLVMBuildFMul(f->b, xd, fc(f, f->f64, 0.7071067811865476), ""), NULL);
        LLVMValueRef r = LLVMBuildFMul(
            f->b, LLVMBuildFMul(f->b, fc(f, f->f64, 0.5), xd, ""),
            LLVMBuildFAdd(f->b, fc(f, f->f64, 1), e, ""), "");
        return dbl ? r : LLVMBuildFPTrunc(f->b, r, f->f32, "");
    }
    case IR_OP_FLOOR: return intr(f, "llvm.floor", x);
    case IR_OP_CEIL: return intr(f, "llvm.ceil", x);
    case IR_OP_ROUND: return intr(f, "llvm.roundeven", x); /* rint, half to even */
    case IR_OP_RECIPROCAL: return LLVMBuildFDiv(f->b, one, x, "");
    case IR_OP_SIN: return lm(f, t, "sin", x);
    case IR_OP_COS: return lm(f, t, "cos", x);
    case IR_OP_TAN: return lm(f, t, "tan", x);
    case IR_OP_ASIN: return lm(f, t, "asin", x);
    case IR_OP_ACOS: return lm(f, t, "acos", x);
    case IR_OP_ATAN: return lm(f, t, "atan", x);
    case IR_OP_SINH: return lm(f, t, "sinh", x);
    case IR_OP_COSH: return lm(f, t, "cosh", x);
    case IR_OP_ASINH: return lm(f, t, "asinh", x);
    case IR_OP_ACOSH: return lm(f, t, "acosh", x);
    case IR_OP_ATANH: return lm(f, t, "atanh", x);
    default: {
        LLVMValueRef xd = dbl ? x : LLVMBuildFPExt(f->b, x, f->f64, "");
        LLVMValueRef r = unary_other64(f, op, p, xd);
        if (!r)
            return NULL;
        return dbl ? r : LLVMBuildFPTrunc(f->b, r, f->f32, "");
    }
    }
}

LLVMValueRef cg_unary_elem_more(cg_fn *f, const ir_node *n, LLVMValueRef x)
{
    unary_params p;
    if (unary_params_of(f, n, &p))
        return NULL;
    switch (n->op) {
    case IR_OP_ERF: case IR_OP_ROUND: case IR_OP_SIN: case IR_OP_COS: case IR_OP_GELU:
    case IR_OP_SIGN: case IR_OP_SOFTPLUS: case IR_OP_SOFTSIGN: case IR_OP_ELU: case IR_OP_SELU:
    case IR_OP_CELU: case IR_OP_THRESHOLDEDRELU: case IR_OP_MISH:
    case IR_OP_TAN: case IR_OP_ASIN: case IR_OP_ACOS: case IR_OP_ATAN: case IR_OP_SINH:
    case IR_OP_COSH: case IR_OP_ASINH: case IR_OP_ACOSH: case IR_OP_ATANH: case IR_OP_SHRINK:
        return unary_fp(f, n->op, &p, x);
    default: return NULL;
    }
}

/* Unary op on value x of dtype dt (the interpreter's ref_unary). */
static LLVMValueRef unary_value(cg_fn *f, const ir_node *n, const unary_params *p, ir_dtype dt,
                                LLVMValueRef x)
{
    cg_vclass c = cg_val_class(dt);
    ir_op op = n->op;
    if (op == IR_OP_NOT)
        return bool64(f, LLVMBuildICmp(f->b, LLVMIntEQ, x, cg_i64c(f, 0), ""));
    if (op == IR_OP_ISNAN || op == IR_OP_ISINF) {
        if (c == CG_V_INT)
            return cg_i64c(f, 0);
        if (op == IR_OP_ISNAN)
            return bool64(f, fcmp(f, LLVMRealUNO, x, x));
        LLVMTypeRef t = LLVMTypeOf(x);
        bool neg = ir_attr_int(n, "detect_negative", 1) != 0;
        bool pos = ir_attr_int(n, "detect_positive", 1) != 0;
        LLVMValueRef r = LLVMConstInt(f->i1, 0, 0);
        if (pos)
            r = LLVMBuildOr(f->b, r, fcmp(f, LLVMRealOEQ, x, fc(f, t, INFINITY)), "");
        if (neg)
            r = LLVMBuildOr(f->b, r, fcmp(f, LLVMRealOEQ, x, fc(f, t, -INFINITY)), "");
        return bool64(f, r);
    }
    if (c != CG_V_INT)
        return unary_fp(f, op, p, x);
    bool is_unsigned = ir_dtype_info(dt)->kind == IR_DK_UINT;
    LLVMValueRef zero = cg_i64c(f, 0);
    LLVMValueRef neg = LLVMBuildSub(f->b, zero, x, "");
    LLVMValueRef lt0 = LLVMBuildICmp(f->b, LLVMIntSLT, x, zero, "");
    switch (op) {
    case IR_OP_NEG: return neg;
    case IR_OP_ABS: return is_unsigned ? x : sel(f, lt0, neg, x);
    case IR_OP_RELU: return is_unsigned ? x : sel(f, lt0, zero, x);
    case IR_OP_SIGN:
        if (is_unsigned)
            return bool64(f, LLVMBuildICmp(f->b, LLVMIntNE, x, zero, ""));
        return LLVMBuildSub(f->b, bool64(f, LLVMBuildICmp(f->b, LLVMIntSGT, x, zero, "")),
                            bool64(f, lt0), "");
    default: return x;
    }
}

/* ---- binary -------------------------------------------------------------- */

/* int64 x^e by square-and-multiply, wrapping (e <= 0 gives 1): an internal
 * function of the module, made on first use. */
static LLVMValueRef ipow(cg_fn *f, LLVMValueRef x, LLVMValueRef e)
{
    static const char name[] = "octet_ipow64";
    LLVMTypeRef args[2] = {f->i64, f->i64};
    LLVMTypeRef fty = LLVMFunctionType(f->i64, args, 2, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, name);
    if (!fn) {
        fn = LLVMAddFunction(f->mod, name, fty);
        LLVMSetLinkage(fn, LLVMInternalLinkage);
        LLVMBuilderRef b = LLVMCreateBuilderInContext(f->llc);
        LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(f->llc, fn, "entry");
        LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(f->llc, fn, "loop");
        LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->llc, fn, "done");
        LLVMPositionBuilderAtEnd(b, entry);
        LLVMValueRef zero = LLVMConstInt(f->i64, 0, 0), one = LLVMConstInt(f->i64, 1, 0);
        LLVMValueRef e0 = LLVMGetParam(fn, 1), x0 = LLVMGetParam(fn, 0);
        e0 = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, e0, zero, ""), e0, zero, "");
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, e0, zero, ""), done, loop);
        LLVMPositionBuilderAtEnd(b, loop);
        LLVMValueRef r = LLVMBuildPhi(b, f->i64, "r"), base = LLVMBuildPhi(b, f->i64, "b");
        LLVMValueRef e = LLVMBuildPhi(b, f->i64, "e");
        LLVMValueRef odd = LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, e, one, ""), zero, "");
        LLVMValueRef r2 = LLVMBuildSelect(b, odd, LLVMBuildMul(b, r, base, ""), r, "");
        LLVMValueRef b2 = LLVMBuildMul(b, base, base, "");
        LLVMValueRef e2 = LLVMBuildLShr(b, e, one, "");
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, e2, zero, ""), done, loop);
        LLVMValueRef rv[2] = {one, r2}, bv[2] = {x0, b2}, ev[2] = {e0, e2};
        LLVMBasicBlockRef from[2] = {entry, loop};
        LLVMAddIncoming(r, rv, from, 2);
        LLVMAddIncoming(base, bv, from, 2);
        LLVMAddIncoming(e, ev, from, 2);
        LLVMPositionBuilderAtEnd(b, done);
        LLVMValueRef res = LLVMBuildPhi(b, f->i64, "res");
        LLVMValueRef dv[2] = {one, r2};
        LLVMAddIncoming(res, dv, from, 2);
        LLVMBuildRet(b, res);
        LLVMDisposeBuilder(b);
    }
    LLVMValueRef av[2] = {x, e};
    return LLVMBuildCall2(f->b, fty, fn, av, 2, "");
}

/* binary_f32 / binary_f64 of the interpreter on values of type f32 / f64. */
static LLVMValueRef binary_fp(cg_fn *f, ir_op op, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    switch (op) {
    case IR_OP_ADD: return LLVMBuildFAdd(f->b, x, y, "");
    case IR_OP_SUB: return LLVMBuildFSub(f->b, x, y, "");
    case IR_OP_MUL: return LLVMBuildFMul(f->b, x, y, "");
    case IR_OP_DIV: return LLVMBuildFDiv(f->b, x, y, "");
    case IR_OP_POW:
        if (t == f->f64)
            return cg_libm_f64(f, "pow", x, y);
        else {
            LLVMTypeRef args[2] = {f->f32, f->f32};
            LLVMTypeRef fty = LLVMFunctionType(f->f32, args, 2, 0);
            LLVMValueRef fn = LLVMGetNamedFunction(f->mod, "powf");
            if (!fn)
                fn = LLVMAddFunction(f->mod, "powf", fty);
            LLVMValueRef av[2] = {x, y};
            return LLVMBuildCall2(f->b, fty, fn, av, 2, "");
        }
    case IR_OP_PRELU:
        return sel(f, fcmp(f, LLVMRealOLT, x, fc(f, t, 0)), LLVMBuildFMul(f->b, x, y, ""), x);
    case IR_OP_MOD: return LLVMBuildFRem(f->b, x, y, ""); /* C fmod, exact */
    default: return fc(f, t, 0);
    }
}

static LLVMValueRef to_f64(cg_fn *f, ir_dtype dt, LLVMValueRef v)
{
    switch (cg_val_class(dt)) {
    case CG_V_F32: return LLVMBuildFPExt(f->b, v, f->f64, "");
    case CG_V_F64: return v;
    default:
        return dt == IR_DT_UINT64 ? LLVMBuildUIToFP(f->b, v, f->f64, "")
                                  : LLVMBuildSIToFP(f->b, v, f->f64, "");
    }
}

typedef struct binary_params {
    bool python_mod, left;
    unsigned bits; /* BitShift: width of the type */
} binary_params;

/* binary_int of the interpreter on int64 values. */
static LLVMValueRef binary_int(cg_fn *f, ir_op op, bool is_unsigned, const binary_params *p,
                               LLVMValueRef x, LLVMValueRef y)
{
    LLVMValueRef zero = cg_i64c(f, 0), one = cg_i64c(f, 1), m1 = cg_i64c(f, -1);
    LLVMValueRef y0 = LLVMBuildICmp(f->b, LLVMIntEQ, y, zero, "");
    LLVMValueRef ym1 = LLVMBuildICmp(f->b, LLVMIntEQ, y, m1, "");
    /* a divisor that cannot trap (0 and -1 are answered apart) */
    LLVMValueRef ysafe = sel(f, LLVMBuildOr(f->b, y0, ym1, ""), one, y);
    switch (op) {
    case IR_OP_ADD: return LLVMBuildAdd(f->b, x, y, "");
    case IR_OP_SUB: return LLVMBuildSub(f->b, x, y, "");
    case IR_OP_MUL: return LLVMBuildMul(f->b, x, y, "");
    case IR_OP_DIV:
        return sel(f, y0, zero,
                   sel(f, ym1, LLVMBuildSub(f->b, zero, x, ""), LLVMBuildSDiv(f->b, x, ysafe, "")));
    case IR_OP_POW: return ipow(f, x, y);
    case IR_OP_PRELU:
        return sel(f, LLVMBuildICmp(f->b, LLVMIntSLT, x, zero, ""), LLVMBuildMul(f->b, x, y, ""),
                   x);
    case IR_OP_MOD: {
        if (is_unsigned)
            return sel(f, y0, zero, LLVMBuildURem(f->b, x, sel(f, y0, one, y), ""));
        LLVMValueRef r = LLVMBuildSRem(f->b, x, ysafe, "");
        r = sel(f, LLVMBuildOr(f->b, y0, ym1, ""), zero, r);
        if (!p->python_mod)
            return r;
        LLVMValueRef rneg = LLVMBuildICmp(f->b, LLVMIntSLT, r, zero, "");
        LLVMValueRef yneg = LLVMBuildICmp(f->b, LLVMIntSLT, y, zero, "");
        LLVMValueRef fix = LLVMBuildAnd(f->b, LLVMBuildICmp(f->b, LLVMIntNE, r, zero, ""),
                                        LLVMBuildXor(f->b, rneg, yneg, ""), "");
        return sel(f, fix, LLVMBuildAdd(f->b, r, y, ""), r);
    }
    case IR_OP_BITSHIFT: {
        LLVMValueRef big = LLVMBuildICmp(f->b, LLVMIntUGE, y, cg_i64c(f, p->bits), "");
        LLVMValueRef s = sel(f, big, zero, y);
        LLVMValueRef r = p->left ? LLVMBuildShl(f->b, x, s, "") : LLVMBuildLShr(f->b, x, s, "");
        return sel(f, big, zero, r);
    }
    default: return zero;
    }
}

/* ref_binary on values a (dtype da) and b (db), in the output's class. */
static LLVMValueRef binary_value(cg_fn *f, ir_op op, const binary_params *p, ir_dtype da,
                                 ir_dtype db, LLVMValueRef a, LLVMValueRef b)
{
    cg_vclass ca = cg_val_class(da), cb = cg_val_class(db);
    if (ops_binary_is_logic(op)) {
        LLVMValueRef x = LLVMBuildICmp(f->b, LLVMIntNE, a, cg_i64c(f, 0), "");
        LLVMValueRef y = LLVMBuildICmp(f->b, LLVMIntNE, b, cg_i64c(f, 0), "");
        return bool64(f, op == IR_OP_AND  ? LLVMBuildAnd(f->b, x, y, "")
                         : op == IR_OP_OR ? LLVMBuildOr(f->b, x, y, "")
                                          : LLVMBuildXor(f->b, x, y, ""));
    }
    if (ops_binary_is_compare(op)) {
        if (ca != CG_V_INT) {
            if (ca != cb) {
                a = to_f64(f, da, a);
                b = to_f64(f, db, b);
            }
            LLVMRealPredicate pr = op == IR_OP_EQUAL  ? LLVMRealOEQ
                                   : op == IR_OP_LESS ? LLVMRealOLT
                                   : op == IR_OP_GREATER ? LLVMRealOGT
                                   : op == IR_OP_LESSOREQUAL ? LLVMRealOLE
                                                             : LLVMRealOGE;
            return bool64(f, fcmp(f, pr, a, b));
        }
        bool u = ir_dtype_info(da)->kind == IR_DK_UINT;
        LLVMIntPredicate pr = op == IR_OP_EQUAL  ? LLVMIntEQ
                              : op == IR_OP_LESS ? (u ? LLVMIntULT : LLVMIntSLT)
                              : op == IR_OP_GREATER ? (u ? LLVMIntUGT : LLVMIntSGT)
                              : op == IR_OP_LESSOREQUAL ? (u ? LLVMIntULE : LLVMIntSLE)
                                                        : (u ? LLVMIntUGE : LLVMIntSGE);
        return bool64(f, LLVMBuildICmp(f->b, pr, a, b, ""));
    }
    bool is_unsigned = ir_dtype_info(da)->kind == IR_DK_UINT;
    if (op == IR_OP_BITSHIFT || (op == IR_OP_MOD && is_unsigned))
        return binary_int(f, op, is_unsigned, p, a, b);
    if (ca == CG_V_F32 && cb == CG_V_F32)
        return binary_fp(f, op, a, b);
    if (ca != CG_V_INT) {
        LLVMValueRef r = binary_fp(f, op, to_f64(f, da, a), to_f64(f, db, b));
        return ca == CG_V_F32 ? LLVMBuildFPTrunc(f->b, r, f->f32, "") : r;
    }
    /* integer base: trunc(op in double), saturated, when the exponent is
     * not an integer or a negative one */
    LLVMValueRef viad = NULL;
    if (cb != CG_V_INT || op == IR_OP_POW) {
        LLVMValueRef d = binary_fp(f, op, LLVMBuildSIToFP(f->b, a, f->f64, ""), to_f64(f, db, b));
        LLVMTypeRef ty[2] = {f->i64, f->f64};
        unsigned id = LLVMLookupIntrinsicID("llvm.fptosi.sat", 15);
        viad = LLVMBuildCall2(f->b, LLVMIntrinsicGetType(f->llc, id, ty, 2),
                              LLVMGetIntrinsicDeclaration(f->mod, id, ty, 2), &d, 1, "");
        if (cb != CG_V_INT)
            return viad;
    }
    LLVMValueRef r = binary_int(f, op, is_unsigned, p, a, b);
    if (op == IR_OP_POW)
        r = sel(f, LLVMBuildICmp(f->b, LLVMIntSLT, b, cg_i64c(f, 0), ""), viad, r);
    return r;
}

/* ---- variadic -------------------------------------------------------------- */

static LLVMValueRef variadic_fp(cg_fn *f, ir_op op, LLVMValueRef acc, LLVMValueRef x)
{
    if (op == IR_OP_SUM || op == IR_OP_MEAN)
        return LLVMBuildFAdd(f->b, acc, x, "");
    LLVMValueRef nan = LLVMBuildOr(f->b, fcmp(f, LLVMRealUNO, acc, acc),
                                   fcmp(f, LLVMRealUNO, x, x), "");
    LLVMValueRef pick = op == IR_OP_MAX ? fcmp(f, LLVMRealOGT, x, acc)
                                        : fcmp(f, LLVMRealOLT, x, acc);
    return sel(f, nan, fc(f, f->f64, NAN), sel(f, pick, x, acc));
}

static LLVMValueRef variadic_int(cg_fn *f, ir_op op, bool u, LLVMValueRef acc, LLVMValueRef x)
{
    if (op == IR_OP_SUM)
        return LLVMBuildAdd(f->b, acc, x, "");
    LLVMValueRef less = LLVMBuildICmp(f->b, u ? LLVMIntULT : LLVMIntSLT, x, acc, "");
    return op == IR_OP_MAX ? sel(f, less, acc, x) : sel(f, less, x, acc);
}

/* ref_variadic on the values v[0..k): passes of VAR_PASS inputs, then
 * VAR_PASS - 1 more with the (rounded) running output. */
static LLVMValueRef variadic_value(cg_fn *f, ir_op op, ir_dtype dt, int k, LLVMValueRef *v)
{
    if (cg_val_class(dt) == CG_V_INT) {
        bool u = ir_dtype_info(dt)->kind == IR_DK_UINT;
        LLVMValueRef acc = v[0];
        for (int j = 1; j < k; j++)
            acc = variadic_int(f, op, u, acc, v[j]);
        return acc;
    }
    LLVMValueRef acc = to_f64(f, dt, v[0]);
    int in_pass = 1;
    for (int j = 1; j < k; j++) {
        if (in_pass == VAR_PASS) { /* the pass ends: the output is stored */
            acc = dt == IR_DT_FLOAT ? LLVMBuildFPExt(f->b, LLVMBuildFPTrunc(f->b, acc, f->f32, ""),
                                                     f->f64, "")
                                    : cg_val_round(f, dt, acc);
            in_pass = 1;
        }
        acc = variadic_fp(f, op, acc, to_f64(f, dt, v[j]));
        in_pass++;
    }
    if (op == IR_OP_MEAN)
        acc = LLVMBuildFDiv(f->b, acc, fc(f, f->f64, k), "");
    return dt == IR_DT_FLOAT ? LLVMBuildFPTrunc(f->b, acc, f->f32, "") : acc;
}

/* ---- the loop ---------------------------------------------------------------- */

static bool is_unary(ir_op op)
{
    const char *k = NULL;
    switch (op) {
#define OP(e, name, dom, kern, mini, maxi, mino, maxo, fl, at) \
    case IR_OP_##e: k = #kern; break;
#include "ir/ops.def"
#undef OP
    default: break;
    }
    return k && !strcmp(k, "unary");
}

oct_status cg_lower_elemgen(cg_fn *f, const ir_node *n)
{
    cg_tensor *y = cg_out(f, n, 0);
    int k = n->n_in;
    if (!y || k < 1 || k > OPS_MAX_IO)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad inputs or outputs");
    cg_tensor *in[OPS_MAX_IO];
    for (int i = 0; i < k; i++) {
        if (!(in[i] = cg_in(f, n, i)))
            return oct_input_error(f->ctx, OCT_EINPUT, n, i, "compile: input missing");
        if (cg_val_class(in[i]->dtype) == CG_V_NONE)
            return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, i,
                                   "compile: element type %s is not supported",
                                   ir_dtype_name(in[i]->dtype));
    }
    if (cg_val_class(y->dtype) == CG_V_NONE)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: element type %s is not supported",
                              ir_dtype_name(y->dtype));
    bool unary = is_unary(n->op), where = n->op == IR_OP_WHERE;
    bool variadic = n->op == IR_OP_MAX || n->op == IR_OP_MIN || n->op == IR_OP_SUM ||
                    n->op == IR_OP_MEAN;
    unary_params up;
    binary_params bp = {.python_mod = ir_attr_int(n, "fmod", 0) == 0};
    oct_status st;
    if (unary && (st = unary_params_of(f, n, &up)))
        return st;
    /* operand shapes: B of a binary op through the legacy broadcast rule */
    int64_t (*str)[OPS_MAX_RANK] = ir_alloc_array(f->ctx, (size_t)k + 1, sizeof *str);
    if (!str)
        return OCT_EINTERNAL;
    for (int i = 0; i < k; i++)
        cg_bcast_strides(in[i]->rank, in[i]->dims, y->rank, str[i]);
    if (!unary && !where && !variadic) {
        if (k != 2)
            return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: needs two inputs");
        ops_shape a = {.dtype = in[0]->dtype, .rank = in[0]->rank};
        ops_shape b = {.dtype = in[1]->dtype, .rank = in[1]->rank}, beff;
        memcpy(a.dims, in[0]->dims, sizeof a.dims);
        memcpy(b.dims, in[1]->dims, sizeof b.dims);
        bool out_is_a;
        if (!ops_binary_operand_b(f->ctx, n, f->opset, &a, &b, &beff, &out_is_a))
            return OCT_EINPUT;
        cg_bcast_strides(beff.rank, beff.dims, y->rank, str[1]);
        if (n->op == IR_OP_BITSHIFT) {
            const ir_attr *dir = ir_node_attr(n, "direction");
            bp.left = dir && dir->type == IR_ATTR_STRING && dir->s.len == 4 &&
                      !memcmp(dir->s.data, "LEFT", 4);
            bool right = dir && dir->type == IR_ATTR_STRING && dir->s.len == 5 &&
                         !memcmp(dir->s.data, "RIGHT", 5);
            if (!bp.left && !right)
                return oct_node_error(f->ctx, OCT_EINPUT, n, "direction must be LEFT or RIGHT");
            bp.bits = ir_dtype_info(in[0]->dtype)->bits;
        }
    }
    cg_strides(y->rank, y->dims, str[k]);
    LLVMValueRef *ptr = ir_alloc_array(f->ctx, (size_t)k + 1, sizeof *ptr);
    LLVMValueRef *offs = ir_alloc_array(f->ctx, (size_t)k + 1, sizeof *offs);
    LLVMValueRef *v = ir_alloc_array(f->ctx, (size_t)k, sizeof *v);
    if (!ptr || !offs || !v)
        return OCT_EINTERNAL;
    for (int i = 0; i < k; i++)
        ptr[i] = cg_ptr(f, in[i]);
    ptr[k] = cg_ptr(f, y);
    if (y->nelems == 0)
        return OCT_OK;
    cg_nest ns;
    cg_nest_begin(f, &ns, y->rank, y->dims, k + 1, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    if (where) { /* the chosen element's bits, as the interpreter copies them */
        LLVMValueRef c = cg_val_load(f, in[0]->dtype, ptr[0], offs[0]);
        LLVMValueRef x1 = cg_raw_load(f, y->dtype, ptr[1], offs[1]);
        LLVMValueRef x2 = cg_raw_load(f, y->dtype, ptr[2], offs[2]);
        LLVMValueRef r = sel(f, LLVMBuildICmp(f->b, LLVMIntNE, c, cg_i64c(f, 0), ""), x1, x2);
        cg_raw_store(f, y->dtype, ptr[k], offs[k], r);
        cg_nest_end(f, &ns);
        return OCT_OK;
    }
    for (int i = 0; i < k; i++)
        v[i] = cg_val_load(f, in[i]->dtype, ptr[i], offs[i]);
    LLVMValueRef r = unary      ? unary_value(f, n, &up, in[0]->dtype, v[0])
                     : variadic ? variadic_value(f, n->op, y->dtype, k, v)
                                : binary_value(f, n->op, &bp, in[0]->dtype, in[1]->dtype, v[0],
                                               v[1]);
    if (!r) {
        cg_nest_end(f, &ns);
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: no lowering for %s on %s",
                              n->op_type, ir_dtype_name(in[0]->dtype));
    }
    cg_val_store(f, y->dtype, ptr[k], offs[k], r, true);
    cg_nest_end(f, &ns);
    return OCT_OK;
}

oct_status cg_lower_variadic(cg_fn *f, const ir_node *n) { return cg_lower_elemgen(f, n); }
oct_status cg_lower_where(cg_fn *f, const ir_node *n) { return cg_lower_elemgen(f, n); }
