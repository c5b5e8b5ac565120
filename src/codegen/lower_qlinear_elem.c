/*
 * lower_qlinear_elem.c: the integer element-wise contrib ops QLinearAdd,
 * QLinearMul (numpy broadcasting, e.g. a squeeze-excitation scale
 * [N, C, 1, 1] times [N, C, H, W]), QLinearConcat, QLinearAveragePool (1-D
 * and 2-D) and QLinearGlobalAveragePool, which is what qdq_fuse makes of
 * quantized Add, Mul, Concat with differing scales and the average pools;
 * and the table ops QLinearSigmoid, QLinearLeakyRelu and QLinearSoftmax
 * that ONNX Runtime's quantizer writes (tables built at compile time by
 * src/ops/qlinear_lut.c, as the interpreter builds them).
 *
 * Plain loops on the 8-bit data the optimizer vectorizes: the integer
 * differences d = q - z, their exact int32 products and window sums, then
 * the requantization of ops/qlinear_elem.h with the same float32
 * operations as the reference kernels (src/ref/qlinear_elem.c): plain
 * fmul / fadd / fdiv without fast-math flags (no contraction, no
 * reassociation), llvm.roundeven, a clamp to the output range minus the
 * zero point, fptosi.  The multipliers are formed at compile time by the
 * same inline functions the reference uses.  So the bits equal the
 * interpreter's.  Scales and zero points must be constants.
 */
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"
#include "ops/qlinear_elem.h"
#include "ops/rules.h"

/* Constant per-tensor parameters of one node: scale of input slot i, zero
 * point of input slot i (0 when omitted). */
static bool const_scale(const ir_node *n, int i, float *s)
{
    const ir_tensor *t = i < n->n_in && n->in[i] ? n->in[i]->init : NULL;
    if (!t || t->dtype != IR_DT_FLOAT || t->nelems != 1)
        return false;
    *s = ((const float *)t->data)[0];
    return true;
}

static bool const_zero(const ir_node *n, int i, int32_t *z)
{
    *z = 0;
    if (i >= n->n_in || !n->in[i])
        return true;
    const ir_tensor *t = n->in[i]->init;
    if (!t || t->nelems != 1 || (t->dtype != IR_DT_UINT8 && t->dtype != IR_DT_INT8))
        return false;
    *z = t->dtype == IR_DT_UINT8 ? ((const uint8_t *)t->data)[0] : ((const int8_t *)t->data)[0];
    return true;
}

static oct_status need_const(cg_fn *f, const ir_node *n)
{
    return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s needs constant "
                          "per-tensor float32 scales and 8-bit zero points", n->op_type);
}

static bool is_q8(const cg_tensor *t)
{
    return t && (t->dtype == IR_DT_UINT8 || t->dtype == IR_DT_INT8);
}

/* The output side of the requantization: zero point and range. */
typedef struct qout {
    int32_t zy, lo, hi;
} qout;

static qout qout_of(const cg_tensor *y, int32_t zy)
{
    bool sgn = y->dtype == IR_DT_INT8;
    return (qout){zy, sgn ? -128 : 0, sgn ? 127 : 255};
}

/* ops_qelem_out: saturate(round_half_to_even(v) + zy) as an i8. */
static LLVMValueRef requant(cg_fn *f, LLVMValueRef v, const qout *q)
{
    LLVMValueRef r = cg_intrinsic(f, "llvm.roundeven", f->f32, &v, 1);
    LLVMValueRef flo = cg_f32c(f, (double)(q->lo - q->zy)), fhi = cg_f32c(f, (double)(q->hi - q->zy));
    r = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOLT, r, flo, ""), flo, r, "");
    r = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, r, fhi, ""), fhi, r, "");
    LLVMValueRef ri = LLVMBuildFPToSI(f->b, r, f->i32, "");
    ri = LLVMBuildAdd(f->b, ri, LLVMConstInt(f->i32, (unsigned long long)(int64_t)q->zy, 1), "");
    return LLVMBuildTrunc(f->b, ri, f->i8, "");
}

/* d = x - z as an exact i32 (x widened with its signedness). */
static LLVMValueRef diff(cg_fn *f, const cg_tensor *t, LLVMValueRef base, LLVMValueRef idx,
                         int32_t z)
{
    LLVMValueRef x = cg_load_wide(f, t, base, idx);
    return LLVMBuildNSWSub(f->b, x, LLVMConstInt(f->i32, (unsigned long long)(int64_t)z, 1), "");
}

static LLVMValueRef to_f32(cg_fn *f, LLVMValueRef i32)
{
    return LLVMBuildSIToFP(f->b, i32, f->f32, "");
}

static const char *const path_int = "integer: 8-bit in and out, exact int32, float32 requantization";

/* ---- QLinearAdd, QLinearMul ---------------------------------------------------- */

/* Merges adjacent dims d, d + 1 of the loop nest where every operand
 * steps through them as one dim (stride[d] == stride[d+1] * dims[d+1]),
 * and drops dims of size 1, so the innermost loop is as long as the
 * layout allows (the squeeze-excitation Mul's H x W plane becomes one run
 * the optimizer vectorizes).  Returns the new rank (at least 1). */
static int collapse_dims(int rank, int64_t *dims, int n_ops, int64_t (*strides)[OPS_MAX_RANK])
{
    int out = 0;
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 1)
            continue;
        bool merge = out > 0;
        for (int k = 0; k < n_ops && merge; k++)
            merge = strides[k][out - 1] == strides[k][d] * dims[d];
        if (merge) {
            dims[out - 1] *= dims[d];
            for (int k = 0; k < n_ops; k++)
                strides[k][out - 1] = strides[k][d];
            continue;
        }
        dims[out] = dims[d];
        for (int k = 0; k < n_ops; k++)
            strides[k][out] = strides[k][d];
        out++;
    }
    if (out == 0) {
        dims[0] = 1;
        for (int k = 0; k < n_ops; k++)
            strides[k][0] = 0;
        out = 1;
    }
    return out;
}

oct_status cg_lower_qlinearbinary(cg_fn *f, const ir_node *n)
{
    cg_tensor *A = cg_in(f, n, 0), *B = cg_in(f, n, 3), *Y = cg_out(f, n, 0);
    float sa, sb, sy;
    int32_t za, zb, zy;
    if (!is_q8(A) || !is_q8(B) || !is_q8(Y))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: 8-bit data expected");
    if (!const_scale(n, 1, &sa) || !const_scale(n, 4, &sb) || !const_scale(n, 6, &sy) ||
        !const_zero(n, 2, &za) || !const_zero(n, 5, &zb) || !const_zero(n, 7, &zy))
        return need_const(f, n);
    bool mul = n->op == IR_OP_QLINEARMUL;
    float ma = mul ? ops_qmul_multiplier(sa, sb, sy) : ops_qelem_ratio(sa, sy);
    float mb = ops_qelem_ratio(sb, sy);
    qout q = qout_of(Y, zy);
    int64_t strides[3][OPS_MAX_RANK];
    memset(strides, 0, sizeof strides);
    cg_bcast_strides(A->rank, A->dims, Y->rank, strides[0]);
    cg_bcast_strides(B->rank, B->dims, Y->rank, strides[1]);
    cg_strides(Y->rank, Y->dims, strides[2]);
    int64_t dims[OPS_MAX_RANK];
    memcpy(dims, Y->dims, sizeof dims);
    int rank = collapse_dims(Y->rank, dims, 3, strides), in = rank - 1;
    LLVMValueRef pa = cg_ptr(f, A), pb = cg_ptr(f, B), py = cg_ptr(f, Y), offs[3];
    /* outer dims as a nest, the innermost as one loop; an operand constant
     * along it (the squeeze-excitation scale) is loaded once before it,
     * since the optimizer cannot hoist a load the byte stores may alias */
    cg_nest ns;
    cg_nest_begin(f, &ns, in, dims, 3, (const int64_t (*)[OPS_MAX_RANK])strides, offs);
    LLVMValueRef da0 = strides[0][in] ? NULL : diff(f, A, pa, offs[0], za);
    LLVMValueRef db0 = strides[1][in] ? NULL : diff(f, B, pb, offs[1], zb);
    cg_loop li;
    LLVMValueRef j = cg_loop_begin(f, &li, dims[in]);
    LLVMValueRef da = da0 ? da0 : diff(f, A, pa, cg_madd(f, j, strides[0][in], offs[0]), za);
    LLVMValueRef db = db0 ? db0 : diff(f, B, pb, cg_madd(f, j, strides[1][in], offs[1]), zb);
    LLVMValueRef v;
    if (mul) { /* |da * db| <= 255 * 255: exact in i32 and in float32 */
        v = LLVMBuildFMul(f->b, to_f32(f, LLVMBuildNSWMul(f->b, da, db, "")), cg_f32c(f, ma), "");
    } else {
        LLVMValueRef va = LLVMBuildFMul(f->b, to_f32(f, da), cg_f32c(f, ma), "");
        LLVMValueRef vb = LLVMBuildFMul(f->b, to_f32(f, db), cg_f32c(f, mb), "");
        v = LLVMBuildFAdd(f->b, va, vb, "");
    }
    cg_store(f, f->i8, py, cg_madd(f, j, strides[2][in], offs[2]), requant(f, v, &q));
    cg_loop_end(f, &li);
    cg_nest_end(f, &ns);
    cg_report(f, n, "int loop", path_int);
    return OCT_OK;
}

/* ---- QLinearConcat ------------------------------------------------------------- */

oct_status cg_lower_qlinearconcat(cg_fn *f, const ir_node *n)
{
    cg_tensor *Y = cg_out(f, n, 0);
    float sy;
    int32_t zy;
    if (!is_q8(Y))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: 8-bit output expected");
    if (!const_scale(n, 0, &sy) || !const_zero(n, 1, &zy))
        return need_const(f, n);
    qout q = qout_of(Y, zy);
    int axis = (int)ir_attr_int(n, "axis", 0);
    if (axis < 0)
        axis += Y->rank;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= Y->dims[d];
    for (int d = axis + 1; d < Y->rank; d++)
        inner *= Y->dims[d];
    int64_t y_row = Y->dims[axis] * inner, at = 0;
    LLVMValueRef py = cg_ptr(f, Y);
    for (int xi = 2; xi + 2 < n->n_in; xi += 3) {
        cg_tensor *X = cg_in(f, n, xi);
        float sx;
        int32_t zx;
        if (!is_q8(X) || X->dtype != Y->dtype)
            return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, xi,
                                   "compile: 8-bit data of the output's type expected");
        if (!const_scale(n, xi + 1, &sx) || !const_zero(n, xi + 2, &zx))
            return need_const(f, n);
        float m = ops_qelem_ratio(sx, sy);
        int64_t row = X->dims[axis] * inner;
        LLVMValueRef px = cg_ptr(f, X);
        cg_loop lo, li;
        LLVMValueRef o = cg_loop_begin(f, &lo, outer);
        LLVMValueRef ybase = cg_madd(f, o, y_row, cg_i64c(f, at));
        LLVMValueRef xbase = cg_mul(f, o, cg_i64c(f, row));
        if (m == 1.0f && zx == zy) { /* requantization is the identity */
            cg_memcpy(f, cg_gep(f, f->i8, py, ybase), cg_gep(f, f->i8, px, xbase),
                      cg_i64c(f, row));
        } else {
            LLVMValueRef j = cg_loop_begin(f, &li, row);
            LLVMValueRef v = LLVMBuildFMul(f->b, to_f32(f, diff(f, X, px, cg_add(f, xbase, j), zx)),
                                           cg_f32c(f, m), "");
            cg_store(f, f->i8, py, cg_add(f, ybase, j), requant(f, v, &q));
            cg_loop_end(f, &li);
        }
        cg_loop_end(f, &lo);
        at += row;
    }
    cg_report(f, n, "int loop", path_int);
    return OCT_OK;
}

/* ---- QLinearAveragePool, QLinearGlobalAveragePool ------------------------------- */

typedef struct qpool {
    cg_tensor *X, *Y;
    int32_t zx;
    float m;
    qout q;
} qpool;

static oct_status qpool_init(cg_fn *f, const ir_node *n, qpool *p)
{
    float sx, sy;
    int32_t zy;
    p->X = cg_in(f, n, 0);
    p->Y = cg_out(f, n, 0);
    if (!is_q8(p->X) || !is_q8(p->Y))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: 8-bit data expected");
    if (ir_attr_int(n, "channels_last", 0) != 0)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: channels_last=1 "
                              "is not supported");
    if (!const_scale(n, 1, &sx) || !const_scale(n, 3, &sy) || !const_zero(n, 2, &p->zx) ||
        !const_zero(n, 4, &zy))
        return need_const(f, n);
    p->m = ops_qelem_ratio(sx, sy);
    p->q = qout_of(p->Y, zy);
    return OCT_OK;
}

/* ops_qavg_value then the requantization; sum and count are i32. */
static LLVMValueRef qavg(cg_fn *f, const qpool *p, LLVMValueRef sum, LLVMValueRef count)
{
    LLVMValueRef scaled = LLVMBuildFMul(f->b, to_f32(f, sum), cg_f32c(f, p->m), "");
    return requant(f, LLVMBuildFDiv(f->b, scaled, to_f32(f, count), ""), &p->q);
}

static LLVMValueRef in_range(cg_fn *f, LLVMValueRef v, int64_t lo, int64_t hi)
{
    return LLVMBuildAnd(f->b, LLVMBuildICmp(f->b, LLVMIntSGE, v, cg_i64c(f, lo), ""),
                        LLVMBuildICmp(f->b, LLVMIntSLT, v, cg_i64c(f, hi), ""), "");
}

oct_status cg_lower_qlinearavgpool(cg_fn *f, const ir_node *n)
{
    qpool p;
    oct_status st = qpool_init(f, n, &p);
    if (st != OCT_OK)
        return st;
    cg_tensor *X = p.X, *Y = p.Y;
    if (X->rank != 3 && X->rank != 4)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: only 1-D and 2-D pooling is supported yet");
    const ir_attr *ks = ir_node_attr(n, "kernel_shape");
    if (!ks || ks->n != (size_t)(X->rank - 2))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad kernel_shape");
    ops_shape xs = {.dtype = IR_DT_FLOAT, .rank = X->rank};
    for (int d = 0; d < X->rank; d++)
        xs.dims[d] = X->dims[d];
    ops_window w;
    if ((st = ops_window_init(f->ctx, n, &xs, ks->ints, ir_attr_int(n, "ceil_mode", 0) != 0,
                              &w)) != OCT_OK)
        return st;
    bool two = X->rank == 4, include_pad = ir_attr_int(n, "count_include_pad", 0) != 0;
    int64_t H = two ? w.in[0] : 1, Wd = w.in[two], KH = two ? ks->ints[0] : 1, KW = ks->ints[two];
    int64_t OH = two ? w.out[0] : 1, OW = w.out[two];
    int64_t sh = two ? w.stride[0] : 1, sw = w.stride[two], dh = two ? w.dilation[0] : 1,
            dw = w.dilation[two], ph = two ? w.pad_begin[0] : 0, pw = w.pad_begin[two];
    int64_t peh = two ? w.pad_end[0] : 0, pew = w.pad_end[two];
    int64_t planes = X->dims[0] * X->dims[1];
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    LLVMValueRef zero = LLVMConstInt(f->i32, 0, 0), one = LLVMConstInt(f->i32, 1, 0);
    cg_loop lp, loh, low, lkh, lkw;
    cg_acc sum_h, cnt_h, sum_w, cnt_w;
    LLVMValueRef pl = cg_loop_begin(f, &lp, planes);
    LLVMValueRef oh = cg_loop_begin(f, &loh, OH);
    LLVMValueRef ow = cg_loop_begin(f, &low, OW);
    LLVMValueRef kh = cg_loop_begin(f, &lkh, KH);
    LLVMValueRef s_h = cg_acc_begin(f, &lkh, &sum_h, zero), c_h = cg_acc_begin(f, &lkh, &cnt_h, zero);
    LLVMValueRef ih = cg_add(f, cg_madd(f, oh, sh, cg_i64c(f, -ph)), cg_mul(f, kh, cg_i64c(f, dh)));
    LLVMValueRef kw = cg_loop_begin(f, &lkw, KW);
    LLVMValueRef s_w = cg_acc_begin(f, &lkw, &sum_w, s_h), c_w = cg_acc_begin(f, &lkw, &cnt_w, c_h);
    LLVMValueRef iw = cg_add(f, cg_madd(f, ow, sw, cg_i64c(f, -pw)), cg_mul(f, kw, cg_i64c(f, dw)));
    LLVMValueRef inside = LLVMBuildAnd(f->b, in_range(f, ih, 0, H), in_range(f, iw, 0, Wd), "");
    /* clamp the address so the load is always in bounds; select the value */
    LLVMValueRef xi = cg_madd(f, cg_madd(f, pl, H, ih), Wd, iw);
    xi = LLVMBuildSelect(f->b, inside, xi, cg_i64c(f, 0), "");
    LLVMValueRef d = LLVMBuildSelect(f->b, inside, diff(f, X, px, xi, p.zx), zero, "");
    LLVMValueRef counted = include_pad
        ? LLVMBuildAnd(f->b, in_range(f, ih, -ph, H + peh), in_range(f, iw, -pw, Wd + pew), "")
        : inside;
    /* int32 wrap-around, as the reference sums */
    cg_acc_end(f, &sum_w, LLVMBuildAdd(f->b, s_w, d, ""));
    cg_acc_end(f, &cnt_w, LLVMBuildAdd(f->b, c_w, LLVMBuildZExt(f->b, counted, f->i32, ""), ""));
    cg_loop_end(f, &lkw);
    LLVMValueRef s_row = cg_acc_result(f, &lkw, &sum_w, s_h), c_row = cg_acc_result(f, &lkw, &cnt_w, c_h);
    cg_acc_end(f, &sum_h, s_row);
    cg_acc_end(f, &cnt_h, c_row);
    cg_loop_end(f, &lkh);
    LLVMValueRef sum = cg_acc_result(f, &lkh, &sum_h, zero), cnt = cg_acc_result(f, &lkh, &cnt_h, zero);
    /* count 0 (no window does that) gives 0, as in the reference */
    LLVMValueRef safe = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntEQ, cnt, zero, ""), one,
                                        cnt, "");
    LLVMValueRef v = qavg(f, &p, LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntEQ, cnt, zero, ""),
                                                 zero, sum, ""), safe);
    cg_store(f, f->i8, py, cg_madd(f, cg_madd(f, pl, OH, oh), OW, ow), v);
    cg_loop_end(f, &low);
    cg_loop_end(f, &loh);
    cg_loop_end(f, &lp);
    cg_report(f, n, "int loop", path_int);
    return OCT_OK;
}

oct_status cg_lower_qlinearglobalavgpool(cg_fn *f, const ir_node *n)
{
    qpool p;
    oct_status st = qpool_init(f, n, &p);
    if (st != OCT_OK)
        return st;
    if (p.X->rank < 3)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: input rank below 3");
    int64_t planes = p.X->dims[0] * p.X->dims[1], inner = 1;
    for (int d = 2; d < p.X->rank; d++)
        inner *= p.X->dims[d];
    if (inner < 1 || inner > INT32_MAX)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %lld elements per "
                              "plane", (long long)inner);
    LLVMValueRef px = cg_ptr(f, p.X), py = cg_ptr(f, p.Y);
    LLVMValueRef zero = LLVMConstInt(f->i32, 0, 0);
    cg_loop lp, li;
    LLVMValueRef pl = cg_loop_begin(f, &lp, planes);
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    cg_acc acc;
    LLVMValueRef a = cg_acc_begin(f, &li, &acc, zero);
    /* int32 wrap-around, as the reference sums */
    cg_acc_end(f, &acc, LLVMBuildAdd(f->b, a, diff(f, p.X, px, cg_madd(f, pl, inner, i), p.zx), ""));
    cg_loop_end(f, &li);
    LLVMValueRef sum = cg_acc_result(f, &li, &acc, zero);
    cg_store(f, f->i8, py, pl, qavg(f, &p, sum, LLVMConstInt(f->i32, (unsigned long long)inner, 0)));
    cg_loop_end(f, &lp);
    cg_report(f, n, "int loop", path_int);
    return OCT_OK;
}

/* ---- table ops: QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax ------------- */

/* The constant operands X, x_scale, x_zp?, y_scale, y_zp? of a table op,
 * shared with the pools' layout. */
typedef struct qtab {
    const cg_tensor *X, *Y;
    float sx, sy;
    int32_t zx, zy;
    bool sgn;
} qtab;

static oct_status qtab_init(cg_fn *f, const ir_node *n, qtab *t)
{
    t->X = cg_in(f, n, 0);
    t->Y = cg_out(f, n, 0);
    if (!is_q8(t->X) || !is_q8(t->Y))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s needs 8-bit data",
                              n->op_type);
    if (!const_scale(n, 1, &t->sx) || !const_zero(n, 2, &t->zx) || !const_scale(n, 3, &t->sy)
        || !const_zero(n, 4, &t->zy))
        return need_const(f, n);
    t->sgn = t->X->dtype == IR_DT_INT8;
    return OCT_OK;
}

/* The table is built at compile time by the function the interpreter
 * uses (ops_qlut_table), so the bytes are the interpreter's; the kernel
 * library's octk_lut8 maps the tensor through it, or a plain loop where
 * the library is not available. */
oct_status cg_lower_qlinearlut(cg_fn *f, const ir_node *n)
{
    qtab t;
    oct_status st = qtab_init(f, n, &t);
    if (st != OCT_OK)
        return st;
    uint8_t table[256];
    ops_qlut_fn fn = n->op == IR_OP_QLINEARSIGMOID ? OPS_QLUT_SIGMOID : OPS_QLUT_LEAKYRELU;
    ops_qlut_table(fn, ir_attr_float(n, "alpha", 0.01f), t.sx, t.zx, t.sy, t.zy, t.sgn, table);
    LLVMValueRef tab = cg_const_data(f, table, sizeof table);
    LLVMValueRef px = cg_ptr(f, t.X), py = cg_ptr(f, t.Y);
    if (cg_kernels_available(f)) {
        octk_lut8 a = {.n = (int64_t)t.Y->nelems};
        cg_kptr ptrs[3] = {{offsetof(octk_lut8, table), tab}, {offsetof(octk_lut8, x), px},
                           {offsetof(octk_lut8, y), py}};
        cg_kernel_call(f, "lut8", &a, sizeof a, ptrs, 3);
        cg_report(f, n, "octk_lut8", "byte table built at compile time");
        return OCT_OK;
    }
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(f, &l, (int64_t)t.Y->nelems);
    LLVMValueRef b = LLVMBuildZExt(f->b, cg_load(f, f->i8, px, i), f->i64, "");
    cg_store(f, f->i8, py, i, cg_load(f, f->i8, tab, b));
    cg_loop_end(f, &l);
    cg_report(f, n, "byte loop", "byte table built at compile time");
    return OCT_OK;
}

/* The table value (f32) of element x (i32) of a group whose largest is
 * xmax. */
static LLVMValueRef softmax_exp(cg_fn *f, LLVMValueRef tab, LLVMValueRef x, LLVMValueRef xmax,
                                bool sgn)
{
    LLVMValueRef v = LLVMBuildAdd(f->b, x, LLVMConstInt(f->i32, sgn ? 127 : 255, 0), "");
    v = LLVMBuildAnd(f->b, LLVMBuildSub(f->b, v, xmax, ""), LLVMConstInt(f->i32, 255, 0), "");
    return cg_load(f, f->f32, tab, LLVMBuildZExt(f->b, v, f->i64, ""));
}

/* ops_qsoftmax_out in IR: r = roundeven((e * c) / s) (plain fmul, fdiv),
 * min(r, 65535) + zy, saturated above at hi. */
static LLVMValueRef softmax_out(cg_fn *f, LLVMValueRef e, float c, LLVMValueRef s, int32_t zy,
                                int32_t hi)
{
    LLVMValueRef r = LLVMBuildFDiv(f->b, LLVMBuildFMul(f->b, e, cg_f32c(f, c), ""), s, "");
    r = cg_intrinsic(f, "llvm.roundeven", f->f32, &r, 1);
    LLVMValueRef cap = cg_f32c(f, 65535.0);
    r = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOLT, r, cap, ""), r, cap, "");
    LLVMValueRef v = LLVMBuildAdd(f->b, LLVMBuildFPToSI(f->b, r, f->i32, ""),
                                  LLVMConstInt(f->i32, (unsigned long long)(int64_t)zy, 1), "");
    LLVMValueRef top = LLVMConstInt(f->i32, (unsigned long long)hi, 0);
    v = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, v, top, ""), top, v, "");
    return LLVMBuildTrunc(f->b, v, f->i8, "");
}

/* Three passes over each group of len elements, step inner apart, as the
 * reference: the largest byte, the wrapping uint32 sum of table values,
 * then each output.  The exp table is built at compile time for the
 * static group length. */
oct_status cg_lower_qlinearsoftmax(cg_fn *f, const ir_node *n)
{
    qtab t;
    oct_status st = qtab_init(f, n, &t);
    if (st != OCT_OK)
        return st;
    int axis;
    uint64_t outer, len, inner;
    if (!ops_softmax_geometry(n, ir_attr_int(n, "opset", 13), t.X->rank, t.X->dims, &axis,
                              &outer, &len, &inner))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: axis out of range");
    if (t.Y->nelems == 0)
        return OCT_OK;
    float table[256];
    ops_qsoftmax_table(t.sx, len, t.sgn, table);
    float c = ops_qsoftmax_scale(t.sy);
    LLVMValueRef tab = cg_const_data(f, table, sizeof table);
    LLVMValueRef px = cg_ptr(f, t.X), py = cg_ptr(f, t.Y);
    int64_t il = (int64_t)inner, ll = (int64_t)len;
    cg_loop lo, li, lk;
    cg_acc acc;
    LLVMValueRef o = cg_loop_begin(f, &lo, (int64_t)outer);
    LLVMValueRef i = cg_loop_begin(f, &li, il);
    LLVMValueRef base = cg_add(f, cg_mul(f, o, cg_i64c(f, ll * il)), i);
    /* the largest element */
    LLVMValueRef lowest = LLVMConstInt(f->i32, (unsigned long long)-129, 1);
    LLVMValueRef k = cg_loop_begin(f, &lk, ll);
    LLVMValueRef m = cg_acc_begin(f, &lk, &acc, lowest);
    LLVMValueRef x = cg_load_wide(f, t.X, px, cg_madd(f, k, il, base));
    cg_acc_end(f, &acc, LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, x, m, ""), x, m, ""));
    cg_loop_end(f, &lk);
    LLVMValueRef xmax = cg_acc_result(f, &lk, &acc, lowest);
    /* the sum of the table values, in order (no reassociation) */
    LLVMValueRef zero = cg_f32c(f, 0.0);
    k = cg_loop_begin(f, &lk, ll);
    LLVMValueRef s = cg_acc_begin(f, &lk, &acc, zero);
    x = cg_load_wide(f, t.X, px, cg_madd(f, k, il, base));
    cg_acc_end(f, &acc, LLVMBuildFAdd(f->b, s, softmax_exp(f, tab, x, xmax, t.sgn), ""));
    cg_loop_end(f, &lk);
    s = cg_acc_result(f, &lk, &acc, zero);
    /* a zero sum (never: the largest element reads at least 1) writes
     * zeros, as the reference */
    LLVMValueRef none = LLVMBuildFCmp(f->b, LLVMRealOEQ, s, zero, "");
    LLVMValueRef div = LLVMBuildSelect(f->b, none, cg_f32c(f, 1.0), s, "");
    k = cg_loop_begin(f, &lk, ll);
    LLVMValueRef at = cg_madd(f, k, il, base);
    x = cg_load_wide(f, t.X, px, at);
    LLVMValueRef y = softmax_out(f, softmax_exp(f, tab, x, xmax, t.sgn), c, div, t.zy,
                                 t.sgn ? 127 : 255);
    cg_store(f, f->i8, py, at, LLVMBuildSelect(f->b, none, LLVMConstInt(f->i8, 0, 0), y, ""));
    cg_loop_end(f, &lk);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lo);
    cg_report(f, n, "int loop", "float32 exp table built at compile time, in-order sum");
    return OCT_OK;
}
