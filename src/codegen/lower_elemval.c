/*
 * lower_elemval.c: loads, stores and conversions of elements of every
 * dtype the interpreter computes with (lower_elem.h), and the Cast /
 * CastLike lowering built on them.
 *
 * Narrow floats are converted with integer instructions that follow
 * src/ops/numeric.c step by step, so the bits equal the interpreter's:
 *  - encoding a float32 to FLOAT16, BFLOAT16, float8 or float4 rounds its
 *    magnitude to the format's mantissa width, ties to even, the exponent
 *    unbounded above (the generic encoder of numeric.c), and only then
 *    compares it with the format's largest finite code; overflow, Inf and
 *    NaN then map as each format defines (ops_f32_to_f16, _bf16, _fp8,
 *    _fp4: saturation to the largest finite value for float8 and float4
 *    when `saturate`, else Inf or NaN as the format allows; FNUZ formats
 *    have no -0);
 *  - decoding is exact: FLOAT16 and BFLOAT16 with bit operations, float8
 *    and float4 through a table of their 256 (16) values made at compile
 *    time with ops_fp8_to_f32 / ops_fp4_to_f32.
 * Every step is a select, not a branch, so the loops vectorize.  A
 * double goes to a narrow float through float32 first, as ops_set does.
 */
#include <string.h>

#include "codegen/lower_elem.h"

cg_vclass cg_val_class(ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT: return CG_V_F32;
    case IR_DT_DOUBLE: case IR_DT_FLOAT16: case IR_DT_BFLOAT16:
    case IR_DT_FLOAT8E4M3FN: case IR_DT_FLOAT8E4M3FNUZ: case IR_DT_FLOAT8E5M2:
    case IR_DT_FLOAT8E5M2FNUZ: case IR_DT_FLOAT8E8M0: case IR_DT_FLOAT4E2M1:
        return CG_V_F64;
    case IR_DT_BOOL: case IR_DT_UINT8: case IR_DT_INT8: case IR_DT_UINT16: case IR_DT_INT16:
    case IR_DT_UINT32: case IR_DT_INT32: case IR_DT_UINT64: case IR_DT_INT64:
    case IR_DT_UINT4: case IR_DT_INT4: case IR_DT_UINT2: case IR_DT_INT2:
        return CG_V_INT;
    default: return CG_V_NONE;
    }
}

LLVMTypeRef cg_val_type(cg_fn *f, cg_vclass c)
{
    return c == CG_V_F32 ? f->f32 : c == CG_V_F64 ? f->f64 : f->i64;
}

LLVMValueRef cg_val_const(cg_fn *f, cg_vclass c, double d, int64_t i)
{
    if (c == CG_V_INT)
        return cg_i64c(f, i);
    return LLVMConstReal(cg_val_type(f, c), d);
}

LLVMValueRef cg_libm_f64(cg_fn *f, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef args[2] = {f->f64, f->f64};
    LLVMTypeRef fty = LLVMFunctionType(f->f64, args, y ? 2 : 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, name);
    if (!fn)
        fn = LLVMAddFunction(f->mod, name, fty);
    LLVMValueRef av[2] = {x, y};
    return LLVMBuildCall2(f->b, fty, fn, av, y ? 2 : 1, "");
}

/* ---- small instruction shorthands (i32 unless said) ----------------------- */

static LLVMValueRef c32(cg_fn *f, uint32_t v) { return LLVMConstInt(f->i32, v, 0); }
static LLVMValueRef sel(cg_fn *f, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(f->b, c, a, b, "");
}
static LLVMValueRef icmp(cg_fn *f, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildICmp(f->b, p, a, b, "");
}
static LLVMValueRef and_(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildAnd(f->b, a, b, "");
}
static LLVMValueRef or_(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildOr(f->b, a, b, "");
}
static LLVMValueRef lshr(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildLShr(f->b, a, b, "");
}

/* ---- the generic encoder (numeric.c fmt_encode) --------------------------- */

/* Magnitude code of the finite float32 whose bits without sign are a (i32)
 * in a format of mbits mantissa bits and exponent bias `bias`, rounded to
 * nearest even; *over: the code exceeds max_code. */
static LLVMValueRef enc_mag(cg_fn *f, LLVMValueRef a, unsigned mbits, int bias,
                            uint32_t max_code, LLVMValueRef *over)
{
    LLVMValueRef e_raw = lshr(f, a, c32(f, 23));
    LLVMValueRef sig0 = and_(f, a, c32(f, 0x7fffff));
    LLVMValueRef sub = icmp(f, LLVMIntEQ, e_raw, c32(f, 0));
    /* float32 subnormal: exponent -126, no implicit bit */
    LLVMValueRef e32 = sel(f, sub, c32(f, (uint32_t)-126),
                           LLVMBuildSub(f->b, e_raw, c32(f, 127), ""));
    LLVMValueRef sig = sel(f, sub, sig0, or_(f, sig0, c32(f, 0x800000)));
    int emin = 1 - bias;
    LLVMValueRef k = sel(f, icmp(f, LLVMIntSGT, e32, c32(f, (uint32_t)emin)), e32,
                         c32(f, (uint32_t)emin));
    /* |f| / ulp(2^(k - mbits)) = sig >> shift, shift >= 13; a shift past
     * 25 leaves below a quarter ulp: 0, as clamping it to 26 also gives */
    LLVMValueRef shift = LLVMBuildSub(
        f->b, LLVMBuildAdd(f->b, k, c32(f, 23 - mbits), ""), e32, "");
    shift = sel(f, icmp(f, LLVMIntSGT, shift, c32(f, 26)), c32(f, 26), shift);
    LLVMValueRef q = lshr(f, sig, shift);
    LLVMValueRef one_sh = LLVMBuildShl(f->b, c32(f, 1), shift, "");
    LLVMValueRef rem = and_(f, sig, LLVMBuildSub(f->b, one_sh, c32(f, 1), ""));
    LLVMValueRef half = lshr(f, one_sh, c32(f, 1));
    LLVMValueRef odd = icmp(f, LLVMIntNE, and_(f, q, c32(f, 1)), c32(f, 0));
    LLVMValueRef up = or_(f, icmp(f, LLVMIntUGT, rem, half),
                          and_(f, icmp(f, LLVMIntEQ, rem, half), odd));
    LLVMValueRef n = LLVMBuildAdd(f->b, q, LLVMBuildZExt(f->b, up, f->i32, ""), "");
    LLVMValueRef ex = LLVMBuildSub(f->b, k, c32(f, (uint32_t)emin), "");
    LLVMValueRef full = LLVMBuildAdd(f->b, LLVMBuildShl(f->b, ex, c32(f, mbits), ""), n, "");
    *over = icmp(f, LLVMIntUGT, full, c32(f, max_code));
    return full;
}

/* The code (in the low bits of an i32) of float32 x in narrow float dt;
 * see ops_f32_to_f16, ops_f32_to_bf16, ops_f32_to_fp8, ops_f32_to_fp4. */
static LLVMValueRef encode(cg_fn *f, ir_dtype dt, LLVMValueRef x, bool saturate)
{
    LLVMValueRef u = LLVMBuildBitCast(f->b, x, f->i32, "");
    LLVMValueRef a = and_(f, u, c32(f, 0x7fffffff));
    LLVMValueRef is_nan = icmp(f, LLVMIntUGT, a, c32(f, 0x7f800000));
    LLVMValueRef is_inf = icmp(f, LLVMIntEQ, a, c32(f, 0x7f800000));
    LLVMValueRef over, code;
    if (dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16) {
        bool h = dt == IR_DT_FLOAT16;
        LLVMValueRef sign = and_(f, lshr(f, u, c32(f, 16)), c32(f, 0x8000));
        code = enc_mag(f, a, h ? 10 : 7, h ? 15 : 127, h ? 0x7bff : 0x7f7f, &over);
        LLVMValueRef r = or_(f, sign, code);
        r = sel(f, or_(f, is_inf, over), or_(f, sign, c32(f, h ? 0x7c00 : 0x7f80)), r);
        LLVMValueRef nan = h ? or_(f, or_(f, sign, c32(f, 0x7e00)),
                                   and_(f, lshr(f, u, c32(f, 13)), c32(f, 0x3ff)))
                             : or_(f, lshr(f, u, c32(f, 16)), c32(f, 0x40));
        return sel(f, is_nan, nan, r);
    }
    if (dt == IR_DT_FLOAT4E2M1) { /* no Inf, no NaN: NaN -> -0 / +0 (numeric.c) */
        LLVMValueRef sign = and_(f, lshr(f, u, c32(f, 28)), c32(f, 0x8));
        code = enc_mag(f, a, 1, 1, 0x7, &over);
        LLVMValueRef r = sel(f, or_(f, is_inf, over), or_(f, sign, c32(f, 7)),
                             or_(f, sign, code));
        return sel(f, is_nan, LLVMBuildXor(f->b, sign, c32(f, 8), ""), r);
    }
    if (dt == IR_DT_FLOAT8E8M0) { /* 2^(code-127), rounded up; 0xff NaN */
        LLVMValueRef e = lshr(f, a, c32(f, 23));
        LLVMValueRef mant_nz = icmp(f, LLVMIntNE, and_(f, a, c32(f, 0x7fffff)), c32(f, 0));
        LLVMValueRef c = sel(f, icmp(f, LLVMIntEQ, e, c32(f, 0)),
                             LLVMBuildZExt(f->b, icmp(f, LLVMIntUGT, a, c32(f, 0x400000)),
                                           f->i32, ""),
                             LLVMBuildAdd(f->b, e, LLVMBuildZExt(f->b, mant_nz, f->i32, ""), ""));
        LLVMValueRef big = c32(f, saturate ? 0xfe : 0xff);
        c = sel(f, or_(f, is_inf, icmp(f, LLVMIntUGT, c, c32(f, 0xfe))), big, c);
        return sel(f, is_nan, c32(f, 0xff), c);
    }
    static const struct { ir_dtype dt; unsigned mbits; int bias; uint32_t max; } fp8[] = {
        {IR_DT_FLOAT8E4M3FN, 3, 7, 0x7e}, {IR_DT_FLOAT8E4M3FNUZ, 3, 8, 0x7f},
        {IR_DT_FLOAT8E5M2, 2, 15, 0x7b}, {IR_DT_FLOAT8E5M2FNUZ, 2, 16, 0x7f}};
    size_t i = 0;
    while (fp8[i].dt != dt)
        i++;
    bool fnuz = dt == IR_DT_FLOAT8E4M3FNUZ || dt == IR_DT_FLOAT8E5M2FNUZ;
    bool e5m2 = dt == IR_DT_FLOAT8E5M2;
    LLVMValueRef sign = and_(f, lshr(f, u, c32(f, 24)), c32(f, 0x80));
    code = enc_mag(f, a, fp8[i].mbits, fp8[i].bias, fp8[i].max, &over);
    LLVMValueRef r = or_(f, sign, code);
    if (fnuz) /* no -0 */
        r = sel(f, icmp(f, LLVMIntEQ, code, c32(f, 0)), c32(f, 0), r);
    LLVMValueRef ovf = saturate ? or_(f, sign, c32(f, fp8[i].max))
                       : fnuz   ? c32(f, 0x80)
                                : or_(f, sign, c32(f, e5m2 ? 0x7c : 0x7f));
    r = sel(f, or_(f, is_inf, over), ovf, r);
    LLVMValueRef nan = fnuz ? c32(f, 0x80) : or_(f, sign, c32(f, e5m2 ? 0x7e : 0x7f));
    return sel(f, is_nan, nan, r);
}

/* float32 of a FLOAT16 code h (i32): ops_f16_to_f32 with bit operations. */
static LLVMValueRef decode_f16(cg_fn *f, LLVMValueRef h)
{
    LLVMValueRef sign = LLVMBuildShl(f->b, and_(f, h, c32(f, 0x8000)), c32(f, 16), "");
    LLVMValueRef mag = and_(f, h, c32(f, 0x7fff));
    LLVMValueRef mant = and_(f, h, c32(f, 0x3ff));
    LLVMValueRef normal = LLVMBuildShl(
        f->b, LLVMBuildAdd(f->b, mag, c32(f, (127 - 15) << 10), ""), c32(f, 13), "");
    LLVMValueRef special = or_(f, c32(f, 0x7f800000), LLVMBuildShl(f->b, mant, c32(f, 13), ""));
    special = or_(f, special, sel(f, icmp(f, LLVMIntNE, mant, c32(f, 0)), c32(f, 0x400000),
                                  c32(f, 0)));
    /* subnormal: mant * 2^-24, exact in float32 */
    LLVMValueRef subf = LLVMBuildFMul(f->b, LLVMBuildUIToFP(f->b, mant, f->f32, ""),
                                      cg_f32c(f, 0x1p-24), "");
    LLVMValueRef sub = LLVMBuildBitCast(f->b, subf, f->i32, "");
    LLVMValueRef bits = sel(f, icmp(f, LLVMIntUGE, mag, c32(f, 0x7c00)), special,
                            sel(f, icmp(f, LLVMIntULT, mag, c32(f, 0x400)), sub, normal));
    return LLVMBuildBitCast(f->b, or_(f, bits, sign), f->f32, "");
}

/* The read-only table of the float32 values of every code of dt. */
static LLVMValueRef decode_table(cg_fn *f, ir_dtype dt)
{
    char name[48];
    snprintf(name, sizeof name, "octet_decode_%s", ir_dtype_name(dt));
    LLVMValueRef g = LLVMGetNamedGlobal(f->mod, name);
    if (g)
        return g;
    unsigned n = dt == IR_DT_FLOAT4E2M1 ? 16 : 256;
    LLVMValueRef vals[256];
    for (unsigned c = 0; c < n; c++)
        vals[c] = cg_f32c(f, dt == IR_DT_FLOAT4E2M1 ? ops_fp4_to_f32((uint8_t)c)
                                                    : ops_fp8_to_f32(dt, (uint8_t)c));
    LLVMTypeRef aty = LLVMArrayType2(f->f32, n);
    g = LLVMAddGlobal(f->mod, aty, name);
    LLVMSetInitializer(g, LLVMConstArray2(f->f32, vals, n));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return g;
}

/* float32 of the code c (i32) of narrow float dt. */
static LLVMValueRef decode(cg_fn *f, ir_dtype dt, LLVMValueRef c)
{
    if (dt == IR_DT_FLOAT16)
        return decode_f16(f, c);
    if (dt == IR_DT_BFLOAT16)
        return LLVMBuildBitCast(f->b, LLVMBuildShl(f->b, c, c32(f, 16), ""), f->f32, "");
    return cg_load(f, f->f32, decode_table(f, dt), LLVMBuildZExt(f->b, c, f->i64, ""));
}

/* The code of float32 x in narrow float dt and the float32 of code c, for
 * the Q/DQ lowerings (lower_elem.h). */
LLVMValueRef cg_val_encode(cg_fn *f, ir_dtype dt, LLVMValueRef x, bool saturate)
{
    return encode(f, dt, x, saturate);
}

LLVMValueRef cg_val_decode(cg_fn *f, ir_dtype dt, LLVMValueRef c)
{
    return decode(f, dt, c);
}

/* ---- raw elements ---------------------------------------------------------- */

static unsigned dt_bits(ir_dtype dt) { return ir_dtype_info(dt)->bits; }

/* Byte address and bit shift (i8) of sub-byte element idx (ONNX packing:
 * element i in byte i / per, low bits first). */
static LLVMValueRef sub_addr(cg_fn *f, unsigned bits, LLVMValueRef base, LLVMValueRef idx,
                             LLVMValueRef *shift)
{
    unsigned per = 8 / bits, lg = per == 2 ? 1 : 2;
    LLVMValueRef in_byte = LLVMBuildAnd(f->b, idx, cg_i64c(f, per - 1), "");
    *shift = LLVMBuildTrunc(f->b, LLVMBuildMul(f->b, in_byte, cg_i64c(f, bits), ""), f->i8, "");
    return cg_gep(f, f->i8, base, LLVMBuildLShr(f->b, idx, cg_i64c(f, lg), ""));
}

/* The element's bits as an integer of the dtype's width (i8 for sub-byte
 * fields, the field in the low bits). */
LLVMValueRef cg_raw_load(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx)
{
    unsigned bits = dt_bits(dt);
    if (bits < 8) {
        LLVMValueRef shift, p = sub_addr(f, bits, base, idx, &shift);
        LLVMValueRef byte = LLVMBuildLoad2(f->b, f->i8, p, "");
        return LLVMBuildAnd(f->b, LLVMBuildLShr(f->b, byte, shift, ""),
                            LLVMConstInt(f->i8, (1u << bits) - 1, 0), "");
    }
    return cg_load(f, LLVMIntTypeInContext(f->llc, bits), base, idx);
}

void cg_raw_store(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v)
{
    unsigned bits = dt_bits(dt);
    if (bits < 8) { /* read-modify-write of the byte */
        LLVMValueRef shift, p = sub_addr(f, bits, base, idx, &shift);
        LLVMValueRef mask = LLVMConstInt(f->i8, (1u << bits) - 1, 0);
        LLVMValueRef old = LLVMBuildLoad2(f->b, f->i8, p, "");
        LLVMValueRef keep = LLVMBuildAnd(
            f->b, old, LLVMBuildNot(f->b, LLVMBuildShl(f->b, mask, shift, ""), ""), "");
        LLVMValueRef field = LLVMBuildShl(
            f->b, LLVMBuildAnd(f->b, LLVMBuildTrunc(f->b, v, f->i8, ""), mask, ""), shift, "");
        LLVMBuildStore(f->b, LLVMBuildOr(f->b, keep, field, ""), p);
        return;
    }
    LLVMTypeRef ty = LLVMIntTypeInContext(f->llc, bits);
    cg_store(f, ty, base, idx, LLVMBuildTrunc(f->b, v, ty, ""));
}

LLVMValueRef cg_val_load(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx)
{
    if (dt == IR_DT_FLOAT)
        return cg_load(f, f->f32, base, idx);
    if (dt == IR_DT_DOUBLE)
        return cg_load(f, f->f64, base, idx);
    LLVMValueRef raw = cg_raw_load(f, dt, base, idx);
    if (cg_val_class(dt) == CG_V_F64)
        return LLVMBuildFPExt(
            f->b, decode(f, dt, LLVMBuildZExt(f->b, raw, f->i32, "")), f->f64, "");
    unsigned bits = dt_bits(dt);
    if (ir_dtype_info(dt)->kind != IR_DK_SINT)
        return LLVMBuildZExt(f->b, raw, f->i64, "");
    if (bits < 8) { /* sign-extend the field */
        LLVMValueRef sh = LLVMConstInt(f->i8, 8 - bits, 0);
        raw = LLVMBuildAShr(f->b, LLVMBuildShl(f->b, raw, sh, ""), sh, "");
    }
    return LLVMBuildSExt(f->b, raw, f->i64, "");
}

void cg_val_store(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v,
                  bool saturate)
{
    if (dt == IR_DT_FLOAT || dt == IR_DT_DOUBLE) {
        cg_store(f, dt == IR_DT_FLOAT ? f->f32 : f->f64, base, idx, v);
        return;
    }
    if (cg_val_class(dt) == CG_V_F64) /* through float32, as ops_set */
        v = encode(f, dt, LLVMBuildFPTrunc(f->b, v, f->f32, ""), saturate);
    else if (dt == IR_DT_BOOL)
        v = LLVMBuildZExt(f->b, icmp(f, LLVMIntNE, v, cg_i64c(f, 0)), f->i64, "");
    cg_raw_store(f, dt, base, idx, v);
}

LLVMValueRef cg_val_round(cg_fn *f, ir_dtype dt, LLVMValueRef v)
{
    if (dt == IR_DT_DOUBLE)
        return v;
    LLVMValueRef x = LLVMBuildFPTrunc(f->b, v, f->f32, "");
    if (dt != IR_DT_FLOAT)
        x = decode(f, dt, encode(f, dt, x, true));
    return LLVMBuildFPExt(f->b, x, f->f64, "");
}

LLVMValueRef cg_val_convert(cg_fn *f, ir_dtype from, ir_dtype to, LLVMValueRef v)
{
    cg_vclass fc = cg_val_class(from), tc = cg_val_class(to);
    if (to == IR_DT_BOOL) { /* v != 0; NaN is true */
        LLVMValueRef nz = fc == CG_V_INT
                              ? icmp(f, LLVMIntNE, v, cg_i64c(f, 0))
                              : LLVMBuildFCmp(f->b, LLVMRealUNE, v,
                                              LLVMConstReal(cg_val_type(f, fc), 0), "");
        return LLVMBuildZExt(f->b, nz, f->i64, "");
    }
    if (fc == CG_V_INT && tc == CG_V_INT)
        return v; /* wrapped to the width by the store */
    LLVMValueRef d = fc == CG_V_F32 ? LLVMBuildFPExt(f->b, v, f->f64, "")
                     : fc == CG_V_F64 ? v
                     : from == IR_DT_UINT64 ? LLVMBuildUIToFP(f->b, v, f->f64, "")
                                            : LLVMBuildSIToFP(f->b, v, f->f64, "");
    if (tc == CG_V_F32)
        return LLVMBuildFPTrunc(f->b, d, f->f32, "");
    if (tc == CG_V_F64)
        return d;
    /* truncated toward zero, NaN 0, saturated (ops_set), then wrapped */
    LLVMTypeRef ty[2] = {f->i64, f->f64};
    const char *name = to == IR_DT_UINT64 ? "llvm.fptoui.sat" : "llvm.fptosi.sat";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef decl = LLVMGetIntrinsicDeclaration(f->mod, id, ty, 2);
    LLVMTypeRef fty = LLVMIntrinsicGetType(f->llc, id, ty, 2);
    return LLVMBuildCall2(f->b, fty, decl, &d, 1, "");
}

/* ---- Cast, CastLike ------------------------------------------------------- */

oct_status cg_lower_cast(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    if (!x || !y)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Cast needs its input and output");
    if (x->dtype == y->dtype) {
        if (y->nbytes)
            cg_memcpy(f, cg_ptr(f, y), cg_ptr(f, x), cg_i64c(f, (int64_t)y->nbytes));
        return OCT_OK;
    }
    if (cg_val_class(x->dtype) == CG_V_NONE || cg_val_class(y->dtype) == CG_V_NONE)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: Cast from %s to %s is not supported",
                              ir_dtype_name(x->dtype), ir_dtype_name(y->dtype));
    bool saturate = ir_attr_int(n, "saturate", 1) != 0;
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y);
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(f, &l, (int64_t)y->nelems);
    LLVMValueRef v = cg_val_convert(f, x->dtype, y->dtype, cg_val_load(f, x->dtype, px, i));
    cg_val_store(f, y->dtype, py, i, v, saturate);
    cg_loop_end(f, &l);
    return OCT_OK;
}
