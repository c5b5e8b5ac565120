/*
 * lower_quant.c: QuantizeLinear and DequantizeLinear, per tensor and per
 * axis, with float32 scales and int8/uint8 (and, for DequantizeLinear,
 * int32) integer sides.  Exactly the numeric contract:
 *   QuantizeLinear:   q = saturate(round_half_to_even(x / scale) + zp)
 *     x / scale is one float32 division; llvm.roundeven rounds half to
 *     even; NaN quantizes to the zero point (the reference's choice); the
 *     rounded value r is clamped in float to [lo, hi] after adding zp (r and
 *     zp are integers below 2^24 in magnitude whenever the result is not
 *     saturated, so the float sum is exact) and converted.
 *   DequantizeLinear: x = (float)(q - zp) * scale, the difference exact in
 *     int64, converted with round to nearest even, one float32 multiply.
 * Float8 (E4M3FN, E5M2; saturate=1; zero point absent or 0) goes through
 * tables built at compile time from the reference's own conversions, so the
 * two agree bit for bit:
 *   DequantizeLinear: x = T[q] * scale, T the 256 decoded values (exact);
 *   QuantizeLinear: v = x / scale (one float32 division); the code of |v| is
 *     the number of thresholds t_0 < t_1 < ... it exceeds, where t_k is the
 *     largest float the reference still rounds to code k (found by bisection
 *     over float bit patterns, so ties to even and saturation are the
 *     reference's); the sign bit is v's (so -0 stays -0); NaN maps to the
 *     reference's NaN code of that sign.
 * Blocked quantization (block_size) is not lowered yet.
 */
#include <math.h>
#include <string.h>

#include "codegen/codegen.h"
#include "ir/qformat.h"

typedef struct qgeom {
    int64_t outer, dim, inner;
    bool per_axis;
} qgeom;

static oct_status geometry(cg_fn *f, const ir_node *n, const cg_tensor *x, const cg_tensor *s,
                           const cg_tensor *zp, qgeom *g)
{
    if (ir_attr_int(n, "block_size", 0) != 0)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: blocked quantization is not supported yet");
    if (s->dtype != IR_DT_FLOAT)
        return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 1,
                               "compile: only float32 scales are supported yet");
    g->outer = (int64_t)x->nelems;
    g->dim = 1;
    g->inner = 1;
    g->per_axis = s->nelems != 1 || s->rank > 1;
    if (zp && zp->nelems != s->nelems)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 2, "compile: zero point and scale "
                               "differ in size");
    if (!g->per_axis)
        return OCT_OK;
    int axis;
    if (s->rank != 1 || !ops_norm_axis(ir_attr_int(n, "axis", 1), x->rank, &axis) ||
        x->dims[axis] != s->dims[0])
        return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "compile: per-axis scale does not "
                               "match the axis");
    g->outer = 1;
    for (int d = 0; d < axis; d++)
        g->outer *= x->dims[d];
    g->dim = x->dims[axis];
    for (int d = axis + 1; d < x->rank; d++)
        g->inner *= x->dims[d];
    return OCT_OK;
}

/* Range of an integer type the lowering handles (8, 16 and 32 bits; no
 * sub-byte packing yet), from the format table (qformats.def). */
static bool int_range(ir_dtype dt, int64_t *lo, int64_t *hi)
{
    const ir_qformat_traits *f = ir_qformat_info(ir_qformat_of_dtype(dt));
    if (f->is_float || f->bits < 8)
        return false;
    *lo = f->qmin;
    *hi = f->qmax;
    return true;
}

LLVMTypeRef cg_wide_type(cg_fn *f, ir_dtype dt)
{
    return ir_dtype_info(dt)->bits <= 16 ? f->i32 : f->i64;
}

LLVMValueRef cg_widen(cg_fn *f, ir_dtype dt, LLVMValueRef v)
{
    return ir_dtype_info(dt)->kind == IR_DK_SINT ? LLVMBuildSExt(f->b, v, cg_wide_type(f, dt), "")
                                                 : LLVMBuildZExt(f->b, v, cg_wide_type(f, dt), "");
}

LLVMValueRef cg_load_wide(cg_fn *f, const cg_tensor *t, LLVMValueRef base, LLVMValueRef idx)
{
    return cg_widen(f, t->dtype, cg_load(f, cg_elem_type(f, t->dtype), base, idx));
}

static bool is_fp8(ir_dtype dt)
{
    return dt == IR_DT_FLOAT8E4M3FN || dt == IR_DT_FLOAT8E5M2;
}

/* A float8 zero point must be absent or all zero (+0 or -0). */
static bool fp8_zero_ok(const cg_tensor *z)
{
    if (!z)
        return true;
    if (z->place != CG_PLACE_CONST)
        return false;
    const uint8_t *b = z->value->init->data;
    for (uint64_t i = 0; i < z->nelems; i++)
        if (b[i] & 0x7f)
            return false;
    return true;
}

static uint32_t f32_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Thresholds of float8 type dt: t[k] = the largest non-negative float the
 * reference (saturating) converts to a code <= k, for k < max code; the
 * rest of the 128 slots +Inf.  Codes of non-negative finite values grow with
 * the value, so code(a) = #{k : a > t[k]}. */
static void fp8_thresholds(ir_dtype dt, float t[128])
{
    uint8_t max_code = ops_f32_to_fp8(dt, INFINITY, true) & 0x7f;
    for (int k = 0; k < 128; k++)
        t[k] = INFINITY;
    for (int k = 0; k < max_code; k++) {
        uint32_t lo = 0, hi = f32_bits(INFINITY); /* code(lo) <= k < code(hi) */
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;
            if ((ops_f32_to_fp8(dt, bits_f32(mid), true) & 0x7f) <= k)
                lo = mid;
            else
                hi = mid;
        }
        t[k] = bits_f32(lo);
    }
}

static oct_status quantize_fp8(cg_fn *f, const ir_node *n, const cg_tensor *X,
                               const cg_tensor *S, const cg_tensor *Z, const cg_tensor *Y)
{
    if (ir_attr_int(n, "saturate", 1) != 1 || !fp8_zero_ok(Z))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: float8 QuantizeLinear "
                              "needs saturate=1 and a zero zero point");
    qgeom g;
    oct_status st = geometry(f, n, X, S, NULL, &g);
    if (st)
        return st;
    float t[128];
    fp8_thresholds(Y->dtype, t);
    LLVMValueRef gt = cg_const_data(f, t, sizeof t);
    uint8_t nan_pos = ops_f32_to_fp8(Y->dtype, NAN, true);
    uint8_t nan_neg = ops_f32_to_fp8(Y->dtype, -NAN, true);
    LLVMValueRef px = cg_ptr(f, X), ps = cg_ptr(f, S), py = cg_ptr(f, Y);
    cg_loop lo_, ld, li;
    LLVMValueRef o = cg_loop_begin(f, &lo_, g.outer);
    LLVMValueRef c = cg_loop_begin(f, &ld, g.dim);
    LLVMValueRef sv = cg_load(f, f->f32, ps, c);
    LLVMValueRef i = cg_loop_begin(f, &li, g.inner);
    LLVMValueRef idx = cg_madd(f, cg_madd(f, o, g.dim, c), g.inner, i);
    LLVMValueRef v = LLVMBuildFDiv(f->b, cg_load(f, f->f32, px, idx), sv, "");
    LLVMValueRef a = cg_intrinsic(f, "llvm.fabs", f->f32, &v, 1);
    /* binary search: k = number of thresholds below a (a NaN compares false) */
    LLVMValueRef k = cg_i64c(f, 0);
    for (int step = 64; step >= 1; step /= 2) {
        LLVMValueRef probe = cg_add(f, k, cg_i64c(f, step - 1));
        LLVMValueRef up = LLVMBuildFCmp(f->b, LLVMRealOGT, a, cg_load(f, f->f32, gt, probe), "");
        k = LLVMBuildSelect(f->b, up, cg_add(f, k, cg_i64c(f, step)), k, "");
    }
    LLVMValueRef neg = LLVMBuildICmp(f->b, LLVMIntSLT,
                                     LLVMBuildBitCast(f->b, v, f->i32, ""),
                                     LLVMConstInt(f->i32, 0, 0), "");
    LLVMValueRef code = LLVMBuildTrunc(f->b, k, f->i8, "");
    code = LLVMBuildSelect(f->b, neg, LLVMBuildOr(f->b, code, LLVMConstInt(f->i8, 0x80, 0), ""),
                           code, "");
    LLVMValueRef nan = LLVMBuildFCmp(f->b, LLVMRealUNO, v, v, "");
    LLVMValueRef nan_code = LLVMBuildSelect(f->b, neg, LLVMConstInt(f->i8, nan_neg, 0),
                                            LLVMConstInt(f->i8, nan_pos, 0), "");
    cg_store(f, f->i8, py, idx, LLVMBuildSelect(f->b, nan, nan_code, code, ""));
    cg_loop_end(f, &li);
    cg_loop_end(f, &ld);
    cg_loop_end(f, &lo_);
    return OCT_OK;
}

static oct_status dequantize_fp8(cg_fn *f, const ir_node *n, const cg_tensor *X,
                                 const cg_tensor *S, const cg_tensor *Z, const cg_tensor *Y)
{
    if (!fp8_zero_ok(Z))
        return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 2, "compile: a float8 zero point "
                               "must be 0");
    qgeom g;
    oct_status st = geometry(f, n, X, S, NULL, &g);
    if (st)
        return st;
    float table[256];
    for (int b = 0; b < 256; b++)
        table[b] = ops_fp8_to_f32(X->dtype, (uint8_t)b);
    LLVMValueRef gt = cg_const_data(f, table, sizeof table);
    LLVMValueRef px = cg_ptr(f, X), ps = cg_ptr(f, S), py = cg_ptr(f, Y);
    cg_loop lo_, ld, li;
    LLVMValueRef o = cg_loop_begin(f, &lo_, g.outer);
    LLVMValueRef c = cg_loop_begin(f, &ld, g.dim);
    LLVMValueRef sv = cg_load(f, f->f32, ps, c);
    LLVMValueRef i = cg_loop_begin(f, &li, g.inner);
    LLVMValueRef idx = cg_madd(f, cg_madd(f, o, g.dim, c), g.inner, i);
    LLVMValueRef byte = LLVMBuildZExt(f->b, cg_load(f, f->i8, px, idx), f->i64, "");
    LLVMValueRef v = LLVMBuildFMul(f->b, cg_load(f, f->f32, gt, byte), sv, "");
    cg_store(f, f->f32, py, idx, v);
    cg_loop_end(f, &li);
    cg_loop_end(f, &ld);
    cg_loop_end(f, &lo_);
    return OCT_OK;
}

LLVMValueRef cg_quantize_elem(cg_fn *f, LLVMValueRef x, LLVMValueRef sv, LLVMValueRef zf,
                              int64_t lo, int64_t hi)
{
    LLVMValueRef q = LLVMBuildFDiv(f->b, x, sv, "");
    q = cg_intrinsic(f, "llvm.roundeven", f->f32, &q, 1);
    q = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealUNO, q, q, ""), cg_f32c(f, 0), q, "");
    q = LLVMBuildFAdd(f->b, q, zf, "");
    LLVMValueRef flo = cg_f32c(f, (double)lo), fhi = cg_f32c(f, (double)hi);
    q = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOLT, q, flo, ""), flo, q, "");
    q = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, q, fhi, ""), fhi, q, "");
    LLVMValueRef qi = LLVMBuildFPToSI(f->b, q, f->i32, "");
    return LLVMBuildTrunc(f->b, qi, f->i8, "");
}

LLVMValueRef cg_dequantize_elem(cg_fn *f, LLVMValueRef x, LLVMValueRef zv, LLVMValueRef sv)
{
    LLVMValueRef d = LLVMBuildNSWSub(f->b, x, zv, "");
    return LLVMBuildFMul(f->b, LLVMBuildSIToFP(f->b, d, f->f32, ""), sv, "");
}

void cg_fsrc_init(cg_fn *f, const cg_tensor *x, const ir_node *dq, cg_fsrc *s)
{
    memset(s, 0, sizeof *s);
    if (!dq) {
        s->ptr = cg_ptr(f, x);
        return;
    }
    cg_tensor *q = cg_in(f, dq, 0), *z = cg_in(f, dq, 2);
    s->ptr = cg_ptr(f, q);
    s->qtype = q->dtype;
    s->sv = cg_load(f, f->f32, cg_ptr(f, cg_in(f, dq, 1)), cg_i64c(f, 0));
    s->zv = z ? cg_load_wide(f, z, cg_ptr(f, z), cg_i64c(f, 0))
              : LLVMConstInt(cg_wide_type(f, q->dtype), 0, 0);
}

LLVMValueRef cg_fsrc_load(cg_fn *f, const cg_fsrc *s, LLVMValueRef idx)
{
    if (!s->sv)
        return cg_load(f, f->f32, s->ptr, idx);
    LLVMValueRef q = cg_load(f, cg_elem_type(f, s->qtype), s->ptr, idx);
    return cg_dequantize_elem(f, cg_widen(f, s->qtype, q), s->zv, s->sv);
}

oct_status cg_lower_quantizelinear(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *S = cg_in(f, n, 1), *Z = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = cg_need_f32(f, n, X, 0, 0)))
        return st;
    if (is_fp8(Y->dtype))
        return quantize_fp8(f, n, X, S, Z, Y);
    int64_t lo, hi;
    if ((Y->dtype != IR_DT_INT8 && Y->dtype != IR_DT_UINT8) || !int_range(Y->dtype, &lo, &hi))
        return oct_output_error(f->ctx, OCT_EUNSUPPORTED, n, 0, "compile: QuantizeLinear to "
                                "%s is not supported yet", ir_dtype_name(Y->dtype));
    qgeom g;
    if ((st = geometry(f, n, X, S, Z, &g)))
        return st;
    LLVMValueRef px = cg_ptr(f, X), ps = cg_ptr(f, S), pz = Z ? cg_ptr(f, Z) : NULL;
    LLVMValueRef py = cg_ptr(f, Y);
    cg_loop lo_, ld, li;
    LLVMValueRef o = cg_loop_begin(f, &lo_, g.outer);
    LLVMValueRef c = cg_loop_begin(f, &ld, g.dim);
    LLVMValueRef sv = cg_load(f, f->f32, ps, c);
    LLVMValueRef zf = pz ? LLVMBuildSIToFP(f->b, cg_load_wide(f, Z, pz, c), f->f32, "") : cg_f32c(f, 0);
    LLVMValueRef i = cg_loop_begin(f, &li, g.inner);
    LLVMValueRef idx = cg_madd(f, cg_madd(f, o, g.dim, c), g.inner, i);
    cg_store(f, f->i8, py, idx, cg_quantize_elem(f, cg_load(f, f->f32, px, idx), sv, zf, lo, hi));
    cg_loop_end(f, &li);
    cg_loop_end(f, &ld);
    cg_loop_end(f, &lo_);
    return OCT_OK;
}

oct_status cg_lower_dequantizelinear(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *S = cg_in(f, n, 1), *Z = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = cg_need_f32(f, n, Y, 1, 0)))
        return st;
    if (is_fp8(X->dtype))
        return dequantize_fp8(f, n, X, S, Z, Y);
    int64_t lo, hi;
    if (!int_range(X->dtype, &lo, &hi) || (Z && Z->dtype != X->dtype))
        return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 0, "compile: DequantizeLinear of "
                               "%s is not supported yet", ir_dtype_name(X->dtype));
    qgeom g;
    if ((st = geometry(f, n, X, S, Z, &g)))
        return st;
    LLVMValueRef px = cg_ptr(f, X), ps = cg_ptr(f, S), pz = Z ? cg_ptr(f, Z) : NULL;
    LLVMValueRef py = cg_ptr(f, Y);
    cg_loop lo_, ld, li;
    LLVMValueRef o = cg_loop_begin(f, &lo_, g.outer);
    LLVMValueRef c = cg_loop_begin(f, &ld, g.dim);
    LLVMValueRef sv = cg_load(f, f->f32, ps, c);
    LLVMValueRef zv = pz ? cg_load_wide(f, Z, pz, c)
                         : LLVMConstInt(cg_wide_type(f, X->dtype), 0, 0);
    LLVMValueRef i = cg_loop_begin(f, &li, g.inner);
    LLVMValueRef idx = cg_madd(f, cg_madd(f, o, g.dim, c), g.inner, i);
    cg_store(f, f->f32, py, idx, cg_dequantize_elem(f, cg_load_wide(f, X, px, idx), zv, sv));
    cg_loop_end(f, &li);
    cg_loop_end(f, &ld);
    cg_loop_end(f, &lo_);
    return OCT_OK;
}
