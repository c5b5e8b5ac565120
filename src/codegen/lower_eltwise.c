/*
 * lower_eltwise.c: element-wise float32 ops.  Binary Add/Sub/Mul/Div with
 * numpy broadcasting (one loop per output dim, stride 0 on broadcast dims);
 * unary ops with the reference interpreter's formulas (Sigmoid split at 0
 * as 1/(1+e^-x) or e^x/(1+e^x); Tanh and Exp call the C library's tanhf and
 * expf, so they round exactly as the reference does); Clip with bounds from
 * inputs 1 and 2 (opset >= 11) or the min/max attributes, and integer
 * Clip with scalar bounds, constant or read at run time.  Every other op
 * and dtype of the unary and binary families goes to the generic lowering
 * of lower_elemgen.c (whose float32 element functions cg_unary_elem also
 * uses for the ops it has none of).
 */
#include <math.h>

#include <stddef.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"
#include "codegen/lower_elem.h"

oct_status cg_lower_binary(cg_fn *f, const ir_node *n)
{
    cg_tensor *a = cg_in(f, n, 0), *b = cg_in(f, n, 1), *y = cg_out(f, n, 0);
    if (!a || !b || !y || a->dtype != IR_DT_FLOAT || b->dtype != IR_DT_FLOAT ||
        y->dtype != IR_DT_FLOAT ||
        (n->op != IR_OP_ADD && n->op != IR_OP_SUB && n->op != IR_OP_MUL && n->op != IR_OP_DIV))
        return cg_lower_elemgen(f, n); /* other ops and types (lower_elemgen.c) */
    oct_status st;
    if ((st = cg_need_f32(f, n, a, 0, 0)) || (st = cg_need_f32(f, n, b, 0, 1)) ||
        (st = cg_need_f32(f, n, y, 1, 0)))
        return st;
    if (n->op != IR_OP_ADD && n->op != IR_OP_SUB && n->op != IR_OP_MUL && n->op != IR_OP_DIV)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: no lowering for %s yet",
                              n->op_type);
    if (ir_attr_int(n, "broadcast", 0) && ir_node_attr(n, "axis"))
        return cg_lower_elemgen(f, n); /* legacy axis broadcasting */
    LLVMValueRef pa = cg_ptr(f, a), pb = cg_ptr(f, b), py = cg_ptr(f, y), offs[3];
    cg_nest ns;
    if (a->dyn || b->dyn || y->dyn) { /* sizes read at run time (symdims.h) */
        LLVMValueRef vstr[3][OPS_MAX_RANK], dims[OPS_MAX_RANK];
        cg_bcast_strides_v(f, a, y->rank, vstr[0]);
        cg_bcast_strides_v(f, b, y->rank, vstr[1]);
        cg_strides_v(f, y, vstr[2]);
        for (int d = 0; d < y->rank; d++)
            dims[d] = cg_dim(f, y, d);
        cg_nest_begin_v(f, &ns, y->rank, dims, 3, vstr, offs);
    } else {
        int64_t str[3][OPS_MAX_RANK];
        cg_bcast_strides(a->rank, a->dims, y->rank, str[0]);
        cg_bcast_strides(b->rank, b->dims, y->rank, str[1]);
        cg_strides(y->rank, y->dims, str[2]);
        cg_nest_begin(f, &ns, y->rank, y->dims, 3, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    }
    LLVMValueRef x0 = cg_load(f, f->f32, pa, offs[0]), x1 = cg_load(f, f->f32, pb, offs[1]);
    cg_store(f, f->f32, py, offs[2], cg_binary_elem(f, n->op, x0, x1));
    cg_nest_end(f, &ns);
    return OCT_OK;
}

static LLVMValueRef sel_lt(cg_fn *f, LLVMValueRef x, LLVMValueRef c, LLVMValueRef a,
                           LLVMValueRef b)
{
    return LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOLT, x, c, ""), a, b, "");
}

LLVMValueRef cg_unary_elem(cg_fn *f, const ir_node *n, LLVMValueRef x)
{
    LLVMValueRef zero = cg_f32c(f, 0), one = cg_f32c(f, 1);
    switch (n->op) {
    case IR_OP_RELU:
        /* x < 0 ? +0 : x, as the interpreter and ONNX Runtime: NaN (any
         * payload, signalling too) and -0 pass through unchanged, where
         * x > 0 ? x : 0 or maxnum would make them +0.  x86 selects it with
         * one maxps(+0, x), which returns its second operand for NaN and
         * for two zeros: still one vector instruction. */
        return sel_lt(f, x, zero, zero, x);
    case IR_OP_LEAKYRELU: { /* x >= 0 ? x : alpha * x (the interpreter's) */
        LLVMValueRef ax = LLVMBuildFMul(f->b, cg_f32c(f, ir_attr_float(n, "alpha", 0.01f)), x, "");
        return LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGE, x, zero, ""), x, ax, "");
    }
    case IR_OP_HARDSIGMOID: { /* clamp(alpha * x + beta, 0, 1) */
        LLVMValueRef v = LLVMBuildFAdd(
            f->b, LLVMBuildFMul(f->b, cg_f32c(f, ir_attr_float(n, "alpha", 0.2f)), x, ""),
            cg_f32c(f, ir_attr_float(n, "beta", 0.5f)), "");
        v = sel_lt(f, v, zero, zero, v);
        return sel_lt(f, one, v, one, v);
    }
    case IR_OP_HARDSWISH: { /* x * clamp(x / 6 + 0.5, 0, 1) */
        LLVMValueRef v = LLVMBuildFAdd(f->b, LLVMBuildFDiv(f->b, x, cg_f32c(f, 6), ""),
                                       cg_f32c(f, 0.5), "");
        v = sel_lt(f, v, zero, zero, v);
        return LLVMBuildFMul(f->b, x, sel_lt(f, one, v, one, v), "");
    }
    case IR_OP_NEG: return LLVMBuildFNeg(f->b, x, "");
    case IR_OP_ABS: return cg_intrinsic(f, "llvm.fabs", f->f32, &x, 1);
    case IR_OP_SQRT: return cg_intrinsic(f, "llvm.sqrt", f->f32, &x, 1);
    case IR_OP_FLOOR: return cg_intrinsic(f, "llvm.floor", f->f32, &x, 1);
    case IR_OP_CEIL: return cg_intrinsic(f, "llvm.ceil", f->f32, &x, 1);
    case IR_OP_RECIPROCAL: return LLVMBuildFDiv(f->b, one, x, "");
    case IR_OP_EXP: return cg_libm_f32(f, "expf", x);
    case IR_OP_LOG: return cg_libm_f32(f, "logf", x);
    case IR_OP_TANH: return cg_libm_f32(f, "tanhf", x);
    case IR_OP_SIGMOID: {
        /* x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x)) */
        LLVMValueRef ax = cg_intrinsic(f, "llvm.fabs", f->f32, &x, 1);
        LLVMValueRef e = cg_libm_f32(f, "expf", LLVMBuildFNeg(f->b, ax, ""));
        LLVMValueRef den = LLVMBuildFAdd(f->b, one, e, "");
        return LLVMBuildFDiv(f->b, sel_lt(f, x, zero, e, one), den, "");
    }
    default:
        return cg_unary_elem_more(f, n, x); /* lower_elemgen.c */
    }
}

LLVMValueRef cg_clip_elem(cg_fn *f, LLVMValueRef x, LLVMValueRef lo, LLVMValueRef hi)
{
    /* x < lo ? lo : x > hi ? hi : x */
    if (lo)
        x = sel_lt(f, x, lo, lo, x);
    if (hi)
        x = sel_lt(f, hi, x, hi, x);
    return x;
}

LLVMValueRef cg_binary_elem(cg_fn *f, ir_op op, LLVMValueRef a, LLVMValueRef b)
{
    switch (op) {
    case IR_OP_ADD: return LLVMBuildFAdd(f->b, a, b, "");
    case IR_OP_SUB: return LLVMBuildFSub(f->b, a, b, "");
    case IR_OP_MUL: return LLVMBuildFMul(f->b, a, b, "");
    default: return LLVMBuildFDiv(f->b, a, b, "");
    }
}

/* Clip's bounds as values (NULL: none), from the attributes before opset 11,
 * else from inputs 1 and 2. */
oct_status cg_clip_bounds(cg_fn *f, const ir_node *n, LLVMValueRef bound[2])
{
    bound[0] = bound[1] = NULL;
    if (f->opset < 11) {
        bound[0] = cg_f32c(f, ir_attr_float(n, "min", -INFINITY));
        bound[1] = cg_f32c(f, ir_attr_float(n, "max", INFINITY));
        return OCT_OK;
    }
    for (int k = 0; k < 2; k++) {
        cg_tensor *t = cg_in(f, n, k + 1);
        if (!t)
            continue;
        oct_status st = cg_need_f32(f, n, t, 0, k + 1);
        if (st)
            return st;
        if (t->nelems != 1) /* the reference refuses it too (ref_clip) */
            return oct_input_error(f->ctx, OCT_EINPUT, n, k + 1, "compile: must be a scalar");
        bound[k] = cg_load(f, f->f32, cg_ptr(f, t), cg_i64c(f, 0));
    }
    return OCT_OK;
}

static oct_status elementwise_1(cg_fn *f, const ir_node *n, LLVMValueRef lo, LLVMValueRef hi)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    oct_status st;
    if ((st = cg_need_f32(f, n, x, 0, 0)) || (st = cg_need_f32(f, n, y, 1, 0)))
        return st;
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y);
    if (n->op != IR_OP_CLIP) {
        static const ir_op supported[] = {
            IR_OP_RELU, IR_OP_LEAKYRELU, IR_OP_NEG, IR_OP_ABS, IR_OP_SQRT, IR_OP_FLOOR,
            IR_OP_CEIL, IR_OP_RECIPROCAL, IR_OP_EXP, IR_OP_LOG, IR_OP_TANH, IR_OP_SIGMOID,
            IR_OP_HARDSIGMOID, IR_OP_HARDSWISH};
        bool ok = false;
        for (size_t k = 0; k < sizeof supported / sizeof supported[0]; k++)
            ok |= supported[k] == n->op;
        if (!ok) /* the other ops (lower_elemgen.c) */
            return cg_lower_elemgen(f, n);
    }
    cg_loop l;
    LLVMValueRef i = cg_loop_begin_v(f, &l, cg_nelems_v(f, y));
    LLVMValueRef v = cg_load(f, f->f32, px, i), r;
    if (n->op == IR_OP_CLIP) {
        r = cg_clip_elem(f, v, lo, hi);
    } else {
        r = cg_unary_elem(f, n, v);
    }
    cg_store(f, f->f32, py, i, r);
    cg_loop_end(f, &l);
    return OCT_OK;
}

/* Exp, Sigmoid, Tanh and HardSigmoid on float32 through the kernel
 * library's vectorized octk_sunary (lower_kfloat.c conventions). */
static bool try_sunary(cg_fn *f, const ir_node *n)
{
    static const struct { ir_op op; int32_t k; } map[] = {
        {IR_OP_EXP, OCTK_EXP}, {IR_OP_SIGMOID, OCTK_SIGMOID}, {IR_OP_TANH, OCTK_TANH},
        {IR_OP_HARDSIGMOID, OCTK_HARDSIGMOID}};
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    if (!cg_kernels_available(f) || !X || !Y || X->dtype != IR_DT_FLOAT ||
        Y->dtype != IR_DT_FLOAT)
        return false;
    octk_sunary a = {.n = (int64_t)X->nelems, .alpha = ir_attr_float(n, "alpha", 0.2f),
                     .beta = ir_attr_float(n, "beta", 0.5f)};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].op == n->op)
            a.op = map[i].k;
    if (!a.op)
        return false;
    cg_kptr ptrs[3] = {{offsetof(octk_sunary, x), cg_ptr(f, X)},
                       {offsetof(octk_sunary, y), cg_ptr(f, Y)},
                       {offsetof(octk_sunary, n), cg_nelems_v(f, X)}}; /* run-time size */
    cg_kernel_call(f, "sunary", &a, sizeof a, ptrs, 3);
    return true;
}

oct_status cg_lower_unary(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    if (x && y && (x->dtype != IR_DT_FLOAT || y->dtype != IR_DT_FLOAT))
        return cg_lower_elemgen(f, n); /* other types (lower_elemgen.c) */
    if (try_sunary(f, n))
        return OCT_OK;
    return elementwise_1(f, n, NULL, NULL);
}

/* Clip of an integer tensor (8 to 64 bits, signed or unsigned) with
 * scalar bounds of its type, constant or read at run time: exact, as the
 * reference (a bound absent is the type's limit; min > max gives max).
 * qdq_fuse writes 8-bit ones after an integer op whose fused Relu/Clip
 * narrows the output range.  False if X is not an integer tensor. */
static bool try_clip_int(cg_fn *f, const ir_node *n, oct_status *st)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    const ir_dtype_traits *tr = X ? ir_dtype_info(X->dtype) : NULL;
    if (!X || !Y || (tr->kind != IR_DK_SINT && tr->kind != IR_DK_UINT))
        return false;
    LLVMTypeRef et = cg_elem_type(f, X->dtype);
    if (X->dtype != Y->dtype || tr->bits % 8 || !et) {
        *st = oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: Clip of %s to %s is "
                             "not supported", ir_dtype_name(X->dtype), ir_dtype_name(Y->dtype));
        return true;
    }
    bool sgn = tr->kind == IR_DK_SINT;
    LLVMValueRef bound[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        cg_tensor *t = cg_in(f, n, k + 1);
        if (!t)
            continue;
        if (t->dtype != X->dtype || t->nelems != 1) {
            *st = oct_input_error(f->ctx, OCT_EINPUT, n, k + 1, "compile: an integer Clip "
                                  "needs a scalar bound of the input's type");
            return true;
        }
        bound[k] = cg_load(f, et, cg_ptr(f, t), cg_i64c(f, 0));
    }
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    cg_loop l;
    LLVMValueRef i = cg_loop_begin_v(f, &l, cg_nelems_v(f, X));
    LLVMValueRef v = cg_load(f, et, px, i);
    if (bound[0])
        v = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, sgn ? LLVMIntSLT : LLVMIntULT, v,
                                                bound[0], ""), bound[0], v, "");
    if (bound[1])
        v = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, sgn ? LLVMIntSGT : LLVMIntUGT, v,
                                                bound[1], ""), bound[1], v, "");
    cg_store(f, et, py, i, v);
    cg_loop_end(f, &l);
    *st = OCT_OK;
    return true;
}

oct_status cg_lower_clip(cg_fn *f, const ir_node *n)
{
    oct_status qst;
    if (try_clip_int(f, n, &qst))
        return qst;
    LLVMValueRef bound[2];
    oct_status st = cg_clip_bounds(f, n, bound);
    return st ? st : elementwise_1(f, n, bound[0], bound[1]);
}
