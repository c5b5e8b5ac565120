/*
 * lower_quant.c: QuantizeLinear and DequantizeLinear of every format of the
 * table (qformats.def, plus FLOAT4E2M1): 2-, 4-, 8- and 16-bit integers
 * (and int32 into DequantizeLinear), float8 and float4 codes; per tensor,
 * per axis and blocked (block_size, the last block possibly short);
 * float32, float16 and bfloat16 scales (and int32 into QuantizeLinear);
 * float32, float16, bfloat16 (and int32) inputs of QuantizeLinear and
 * outputs of DequantizeLinear; zero points constant or read at run time.
 * The numbers are the interpreter's (src/ref/quant.c), bit for bit:
 *   QuantizeLinear, integer outputs: q = saturate(round_half_to_even(v)
 *     + zp), v = x / scale in the division type (ops_quantize_div_type:
 *     float32, or float16/bfloat16 with both operands and the quotient
 *     rounded to it, or double for int32 x); llvm.roundeven rounds half to
 *     even; NaN quantizes to the zero point; the rounded value is clamped
 *     in the arithmetic type after adding zp (exact below 2^24, and beyond
 *     that the result saturates either way) and converted.
 *   QuantizeLinear, float8/float4 outputs: v = x / scale as above; a
 *     non-zero zero point (float4: any) is added in the division type;
 *     then v is encoded with round to nearest even and saturation
 *     (cg_val_encode: ops_f32_to_fp8 / ops_f32_to_fp4 as instructions).
 *   DequantizeLinear: y = (float)(q - zp) * scale, the difference exact in
 *     i32 (i64 for int32 inputs), one float32 multiply, rounded once more
 *     to nearest even for a float16/bfloat16 output; float codes: the
 *     decoded value, minus the zero point when it is not 0, times scale.
 * Sub-byte elements are packed (ONNX raw layout: element i in byte
 * i / per-byte, low bits first).  The loops walk rows of elements that
 * share a scale (or read contiguous scales, blocked on an inner axis);
 * when every row starts on a byte boundary, packed rows are walked a byte
 * at a time (load one byte, unpack its 2 or 4 fields; pack and store one
 * byte), otherwise element by element.  DequantizeLinear rows with one
 * scale (per tensor, per axis, blocks along the last axis: dequantized
 * weights) go 16 elements at a time in explicit vector instructions
 * (dq_vectors).  Nothing calls out per element.
 */
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/lower_elem.h"
#include "ir/qformat.h"
#include "ops/rules.h"

/* ---- shared 8-bit helpers (fusion, pooling) -------------------------------- */

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

/* ---- the plan of one QuantizeLinear / DequantizeLinear ---------------------- */

/* The quantized side's element type: storage facts from the dtype table
 * (bits, kind), the integer range from the format table (qformats.def). */
typedef struct qside {
    ir_dtype dt;
    unsigned bits, per;   /* bits per element; elements per byte (1 from 8 bits) */
    bool flt, sgn;        /* float8/float4 codes; signed integers */
    int64_t lo, hi;       /* integer range */
} qside;

/* False if the backend has no encoding for dt (int32 only into a DQ). */
static bool qside_init(ir_dtype dt, bool dq, qside *q)
{
    const ir_dtype_traits *t = ir_dtype_info(dt);
    const ir_qformat_traits *fm = ir_qformat_info(ir_qformat_of_dtype(dt));
    memset(q, 0, sizeof *q);
    q->dt = dt;
    q->bits = t->bits;
    q->per = t->bits && t->bits < 8 ? 8 / t->bits : 1;
    q->flt = t->kind == IR_DK_FLOAT;
    q->sgn = t->kind == IR_DK_SINT;
    if (q->flt)
        return dt == IR_DT_FLOAT4E2M1 || (fm->is_float && fm->bits == 8);
    if (!fm->bits || fm->is_float || (fm->bits > 16 && !dq))
        return false;
    q->lo = fm->qmin;
    q->hi = fm->qmax;
    return true;
}

typedef struct qplan {
    bool dq;              /* DequantizeLinear, else QuantizeLinear */
    qside q;
    ir_dtype fdt, sdt;    /* the float side (x of Q, y of DQ); the scale */
    ir_dtype div;         /* Q: the type of x / scale */
    bool has_zp, saturate;
    ops_quant_gran g;
    LLVMTypeRef ft;       /* arithmetic: f32, or f64 for a double division */
    LLVMTypeRef wt;       /* integer codes widened: i32, i64 for int32 */
    LLVMValueRef px, ps, pz, py;
} qplan;

/* Scale and zero point of one element. */
typedef struct qparam {
    LLVMValueRef s;       /* scale in ft */
    LLVMValueRef zi;      /* integer zero point in wt */
    LLVMValueRef zf;      /* the zero point as an ft (0 when absent) */
} qparam;

static void shape_of(const cg_tensor *t, ops_shape *s)
{
    memset(s, 0, sizeof *s);
    s->dtype = t->dtype;
    s->rank = t->rank;
    memcpy(s->dims, t->dims, (size_t)t->rank * sizeof *s->dims);
}

static bool is_float_type(ir_dtype dt)
{
    return dt == IR_DT_FLOAT || dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16;
}

static oct_status plan_init(cg_fn *f, const ir_node *n, bool dq, qplan *p)
{
    cg_tensor *X = cg_in(f, n, 0), *S = cg_in(f, n, 1), *Z = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    memset(p, 0, sizeof *p);
    p->dq = dq;
    if (!X || !S || !Y)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: %s needs x, a scale and an "
                              "output", n->op_type);
    const cg_tensor *Q = dq ? X : Y, *F = dq ? Y : X;
    if (!qside_init(Q->dtype, dq, &p->q))
        return dq ? oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 0, "compile: DequantizeLinear "
                                    "of %s is not supported", ir_dtype_name(Q->dtype))
                  : oct_output_error(f->ctx, OCT_EUNSUPPORTED, n, 0, "compile: QuantizeLinear "
                                     "to %s is not supported", ir_dtype_name(Q->dtype));
    if (!is_float_type(F->dtype) && (dq || F->dtype != IR_DT_INT32))
        return dq ? oct_output_error(f->ctx, OCT_EUNSUPPORTED, n, 0, "compile: DequantizeLinear "
                                     "to %s is not supported", ir_dtype_name(F->dtype))
                  : oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 0, "compile: QuantizeLinear of "
                                    "%s is not supported", ir_dtype_name(F->dtype));
    /* FLOAT8E8M0 scales (opset 24, the MX formats) are powers of two that
     * load_f32 decodes exactly */
    if (!is_float_type(S->dtype) && !(dq && S->dtype == IR_DT_FLOAT8E8M0) &&
        (dq || S->dtype != IR_DT_INT32))
        return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 1, "compile: %s scales are not "
                               "supported (float32, float16, bfloat16; float8e8m0 into "
                               "DequantizeLinear; int32 into QuantizeLinear)",
                               ir_dtype_name(S->dtype));
    if (Z && Z->dtype != Q->dtype)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 2, "zero point type %s differs from the "
                               "quantized type %s", ir_dtype_name(Z->dtype),
                               ir_dtype_name(Q->dtype));
    if (X->nelems != Y->nelems)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: input and output sizes differ");
    p->fdt = F->dtype;
    p->sdt = S->dtype;
    p->has_zp = Z != NULL;
    p->saturate = ir_attr_int(n, "saturate", 1) != 0;
    oct_status st = OCT_OK;
    p->div = IR_DT_FLOAT;
    if (!dq)
        st = ops_quantize_div_type(f->ctx, n, X->dtype, S->dtype, &p->div);
    ops_shape xs, ss, zs;
    shape_of(X, &xs);
    shape_of(S, &ss);
    if (Z)
        shape_of(Z, &zs);
    if (st == OCT_OK)
        st = ops_quant_gran_resolve(f->ctx, n, &xs, &ss, Z ? &zs : NULL, 1, 2, &p->g);
    if (st != OCT_OK)
        return st;
    if (p->g.kind == QG_UNKNOWN)
        return oct_node_error(f->ctx, OCT_EINTERNAL, n, "compile: quantization granularity "
                              "unresolved");
    p->ft = p->div == IR_DT_DOUBLE ? f->f64 : f->f32;
    p->wt = p->q.bits > 16 ? f->i64 : f->i32;
    p->px = cg_ptr(f, X);
    p->ps = cg_ptr(f, S);
    p->pz = Z ? cg_ptr(f, Z) : NULL;
    p->py = cg_ptr(f, Y);
    return OCT_OK;
}

/* ---- elements ------------------------------------------------------------------- */

static LLVMValueRef c32(cg_fn *f, uint32_t v)
{
    return LLVMConstInt(f->i32, v, 0);
}

/* v (f32 or f64) converted to type ty (exact, or rounded to nearest even). */
static LLVMValueRef fconv(cg_fn *f, LLVMValueRef v, LLVMTypeRef ty)
{
    LLVMTypeRef from = LLVMTypeOf(v);
    if (from == ty)
        return v;
    return from == f->f64 ? LLVMBuildFPTrunc(f->b, v, ty, "") : LLVMBuildFPExt(f->b, v, ty, "");
}

/* Element idx of a float32/float16/bfloat16 tensor as an f32 (exact). */
static LLVMValueRef load_f32(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx)
{
    if (dt == IR_DT_FLOAT)
        return cg_load(f, f->f32, base, idx);
    return fconv(f, cg_val_load(f, dt, base, idx), f->f32);
}

/* f32 v rounded to the precision of float16/bfloat16 dt (others: v). */
static LLVMValueRef round_to(cg_fn *f, ir_dtype dt, LLVMValueRef v)
{
    if (dt != IR_DT_FLOAT16 && dt != IR_DT_BFLOAT16)
        return v;
    return cg_val_decode(f, dt, cg_val_encode(f, dt, v, true));
}

static qparam load_param(cg_fn *f, const qplan *p, LLVMValueRef idx)
{
    qparam r;
    if (p->sdt == IR_DT_INT32) /* the division is then a double one: exact */
        r.s = LLVMBuildSIToFP(f->b, cg_load(f, f->i32, p->ps, idx), p->ft, "");
    else
        r.s = fconv(f, load_f32(f, p->sdt, p->ps, idx), p->ft);
    r.zi = LLVMConstInt(p->wt, 0, 0);
    r.zf = LLVMConstReal(p->ft, 0);
    if (!p->has_zp)
        return r;
    LLVMValueRef z = cg_val_load(f, p->q.dt, p->pz, idx); /* i64, or f64 (exact) */
    if (p->q.flt) {
        r.zf = fconv(f, z, p->ft);
    } else {
        r.zi = p->wt == f->i64 ? z : LLVMBuildTrunc(f->b, z, p->wt, "");
        r.zf = LLVMBuildSIToFP(f->b, z, p->ft, "");
    }
    return r;
}

/* The value of a code (the element's bits, zero-extended into an i32):
 * an integer sign- or zero-extended to wt, or a float code decoded (f32). */
static LLVMValueRef code_value(cg_fn *f, const qplan *p, LLVMValueRef code)
{
    if (p->q.flt)
        return cg_val_decode(f, p->q.dt, code);
    if (p->q.sgn && p->q.bits < 32) {
        LLVMValueRef sh = c32(f, 32 - p->q.bits);
        code = LLVMBuildAShr(f->b, LLVMBuildShl(f->b, code, sh, ""), sh, "");
    }
    if (p->wt == f->i32)
        return code;
    return p->q.sgn ? LLVMBuildSExt(f->b, code, p->wt, "") : LLVMBuildZExt(f->b, code, p->wt, "");
}

/* DequantizeLinear of value v (code_value) with parameters pr: f32. */
static LLVMValueRef dq_value(cg_fn *f, const qplan *p, LLVMValueRef v, const qparam *pr)
{
    LLVMValueRef d;
    if (p->q.flt) { /* a zero point of 0 is skipped, so -0 keeps its sign */
        d = v;
        if (p->has_zp)
            d = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealUNE, pr->zf, cg_f32c(f, 0), ""),
                                LLVMBuildFSub(f->b, v, pr->zf, ""), v, "");
    } else {
        d = LLVMBuildSIToFP(f->b, LLVMBuildSub(f->b, v, pr->zi, ""), f->f32, "");
    }
    return LLVMBuildFMul(f->b, d, pr->s, "");
}

/* The code (i32) QuantizeLinear makes of x (in ft) with parameters pr. */
static LLVMValueRef q_code(cg_fn *f, const qplan *p, LLVMValueRef x, const qparam *pr)
{
    LLVMValueRef s = round_to(f, p->div, pr->s);
    LLVMValueRef v = round_to(f, p->div, LLVMBuildFDiv(f->b, round_to(f, p->div, x), s, ""));
    if (p->q.flt) {
        /* float4 always adds the zero point (-0 + 0 = +0); float8 only a
         * non-zero one (src/ref/quant.c) */
        bool fp4 = p->q.dt == IR_DT_FLOAT4E2M1;
        if (p->has_zp || fp4) {
            LLVMValueRef sum = round_to(f, p->div, LLVMBuildFAdd(f->b, v, pr->zf, ""));
            v = fp4 ? sum
                    : LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealUNE, pr->zf,
                                                          LLVMConstReal(p->ft, 0), ""),
                                      sum, v, "");
        }
        return cg_val_encode(f, p->q.dt, fconv(f, v, f->f32), fp4 || p->saturate);
    }
    LLVMValueRef r = cg_intrinsic(f, "llvm.roundeven", p->ft, &v, 1);
    r = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealUNO, r, r, ""), LLVMConstReal(p->ft, 0),
                        r, "");
    r = LLVMBuildFAdd(f->b, r, pr->zf, "");
    LLVMValueRef flo = LLVMConstReal(p->ft, (double)p->q.lo);
    LLVMValueRef fhi = LLVMConstReal(p->ft, (double)p->q.hi);
    r = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOLT, r, flo, ""), flo, r, "");
    r = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, r, fhi, ""), fhi, r, "");
    return LLVMBuildFPToSI(f->b, r, f->i32, "");
}

/* QuantizeLinear's input element e in ft. */
static LLVMValueRef load_x(cg_fn *f, const qplan *p, LLVMValueRef e)
{
    if (p->fdt == IR_DT_INT32)
        return fconv(f, LLVMBuildSIToFP(f->b, cg_load(f, f->i32, p->px, e), f->f64, ""), p->ft);
    return fconv(f, load_f32(f, p->fdt, p->px, e), p->ft);
}

/* DequantizeLinear's output element e (rounded to float16/bfloat16). */
static void store_y(cg_fn *f, const qplan *p, LLVMValueRef e, LLVMValueRef y)
{
    if (p->fdt == IR_DT_FLOAT)
        cg_store(f, f->f32, p->py, e, y);
    else
        cg_raw_store(f, p->fdt, p->py, e, cg_val_encode(f, p->fdt, y, true));
}

/* QuantizeLinear's output code at element e.  Sub-byte: elements come in
 * increasing order, so the first field of a byte writes the byte (the
 * padding of a last partial byte stays 0) and later fields are OR-ed in. */
static void store_q(cg_fn *f, const qplan *p, LLVMValueRef e, LLVMValueRef code)
{
    if (p->q.per == 1) {
        cg_raw_store(f, p->q.dt, p->py, e, code);
        return;
    }
    LLVMValueRef t = LLVMBuildAnd(f->b, e, cg_i64c(f, p->q.per - 1), "");
    LLVMValueRef addr = cg_gep(f, f->i8, p->py,
                               LLVMBuildLShr(f->b, e, cg_i64c(f, p->q.per == 2 ? 1 : 2), ""));
    LLVMValueRef shift = LLVMBuildTrunc(f->b, cg_mul(f, t, cg_i64c(f, p->q.bits)), f->i8, "");
    LLVMValueRef mask = LLVMConstInt(f->i8, (1u << p->q.bits) - 1, 0);
    LLVMValueRef field = LLVMBuildShl(
        f->b, LLVMBuildAnd(f->b, LLVMBuildTrunc(f->b, code, f->i8, ""), mask, ""), shift, "");
    LLVMValueRef old = LLVMBuildSelect(
        f->b, LLVMBuildICmp(f->b, LLVMIntEQ, t, cg_i64c(f, 0), ""), LLVMConstInt(f->i8, 0, 0),
        LLVMBuildLoad2(f->b, f->i8, addr, ""), "");
    LLVMBuildStore(f->b, LLVMBuildOr(f->b, old, field, ""), addr);
}

/* Element e alone (any position in its byte). */
static void elem_at(cg_fn *f, const qplan *p, LLVMValueRef e, const qparam *pr)
{
    if (p->dq) {
        LLVMValueRef raw = cg_raw_load(f, p->q.dt, p->px, e);
        LLVMValueRef v = code_value(f, p, LLVMBuildZExtOrBitCast(f->b, raw, f->i32, ""));
        store_y(f, p, e, dq_value(f, p, v, pr));
    } else {
        store_q(f, p, e, q_code(f, p, load_x(f, p, e), pr));
    }
}

/* The first `count` fields of packed byte `byte`, whose first element is
 * e; parameters hp for all, or (hp NULL) loaded at pidx + field. */
static void byte_at(cg_fn *f, const qplan *p, LLVMValueRef byte, LLVMValueRef e, unsigned count,
                    const qparam *hp, LLVMValueRef pidx)
{
    uint32_t mask = (1u << p->q.bits) - 1;
    LLVMValueRef b = p->dq ? LLVMBuildZExt(f->b, cg_load(f, f->i8, p->px, byte), f->i32, "")
                           : c32(f, 0);
    for (unsigned t = 0; t < count; t++) {
        qparam pr = hp ? *hp : load_param(f, p, cg_add(f, pidx, cg_i64c(f, t)));
        LLVMValueRef et = cg_add(f, e, cg_i64c(f, t));
        if (p->dq) {
            LLVMValueRef code = LLVMBuildAnd(
                f->b, LLVMBuildLShr(f->b, b, c32(f, t * p->q.bits), ""), c32(f, mask), "");
            store_y(f, p, et, dq_value(f, p, code_value(f, p, code), &pr));
        } else {
            LLVMValueRef code = q_code(f, p, load_x(f, p, et), &pr);
            code = LLVMBuildShl(f->b, LLVMBuildAnd(f->b, code, c32(f, mask), ""),
                                c32(f, t * p->q.bits), "");
            b = LLVMBuildOr(f->b, b, code, "");
        }
    }
    if (!p->dq)
        cg_store(f, f->i8, p->py, byte, LLVMBuildTrunc(f->b, b, f->i8, ""));
}

/* ---- explicit vectors ---------------------------------------------------------- */

enum { QVL = 16 }; /* elements per vector step of a DequantizeLinear row */

static LLVMValueRef splat(cg_fn *f, LLVMValueRef v)
{
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), QVL);
    LLVMValueRef one = LLVMBuildInsertElement(f->b, LLVMGetUndef(vt), v, cg_i64c(f, 0), "");
    LLVMValueRef zeros[QVL];
    for (int i = 0; i < QVL; i++)
        zeros[i] = LLVMConstInt(f->i32, 0, 0);
    return LLVMBuildShuffleVector(f->b, one, LLVMGetUndef(vt), LLVMConstVector(zeros, QVL), "");
}

/* DequantizeLinear of the first len / QVL * QVL elements of a row from e0
 * (on a byte boundary) with one scale and zero point, QVL at a time in
 * vector instructions: the same operations as dq_value, lane by lane.
 * Taken for integer codes into float32 (the weight-only case): short
 * constant loops over a block would otherwise be unrolled and the loop
 * vectorizer would turn to the loop over blocks, with gathers and
 * scatters.  Returns the number of elements done. */
static int64_t dq_vectors(cg_fn *f, const qplan *p, LLVMValueRef e0, int64_t len,
                          const qparam *hp)
{
    if (!p->dq || p->q.flt || p->q.bits > 16 || p->fdt != IR_DT_FLOAT || len < QVL)
        return 0;
    unsigned per = p->q.per, bits = p->q.bits;
    LLVMTypeRef vi = LLVMVectorType(f->i32, QVL), vf = LLVMVectorType(f->f32, QVL);
    LLVMValueRef vs = splat(f, hp->s), vz = splat(f, hp->zi);
    cg_loop l;
    LLVMValueRef k = cg_loop_begin(f, &l, len / QVL);
    LLVMValueRef e = cg_add(f, e0, cg_mul(f, k, cg_i64c(f, QVL)));
    LLVMValueRef raw;
    if (per == 1) {
        LLVMTypeRef et = LLVMIntTypeInContext(f->llc, bits);
        raw = LLVMBuildLoad2(f->b, LLVMVectorType(et, QVL), cg_gep(f, et, p->px, e), "");
        LLVMSetAlignment(raw, bits / 8);
    } else { /* QVL / per bytes, each repeated per times, shifted to its field */
        unsigned nb = QVL / per;
        LLVMValueRef addr = cg_gep(f, f->i8, p->px,
                                   LLVMBuildLShr(f->b, e, cg_i64c(f, per == 2 ? 1 : 2), ""));
        LLVMValueRef bytes = LLVMBuildLoad2(f->b, LLVMVectorType(f->i8, nb), addr, "");
        LLVMSetAlignment(bytes, 1);
        LLVMValueRef idx[QVL], sh[QVL];
        for (unsigned i = 0; i < QVL; i++) {
            idx[i] = LLVMConstInt(f->i32, i / per, 0);
            sh[i] = LLVMConstInt(f->i8, 8 - bits - (i % per) * bits, 0);
        }
        raw = LLVMBuildShuffleVector(f->b, bytes, LLVMGetUndef(LLVMTypeOf(bytes)),
                                     LLVMConstVector(idx, QVL), "");
        /* the field to the top of its byte, then down with its sign */
        raw = LLVMBuildShl(f->b, raw, LLVMConstVector(sh, QVL), "");
        LLVMValueRef down = splat(f, LLVMConstInt(f->i8, 8 - bits, 0));
        raw = p->q.sgn ? LLVMBuildAShr(f->b, raw, down, "") : LLVMBuildLShr(f->b, raw, down, "");
    }
    LLVMValueRef v = p->q.sgn ? LLVMBuildSExt(f->b, raw, vi, "") : LLVMBuildZExt(f->b, raw, vi, "");
    LLVMValueRef d = LLVMBuildSIToFP(f->b, LLVMBuildSub(f->b, v, vz, ""), vf, "");
    LLVMValueRef st = LLVMBuildStore(f->b, LLVMBuildFMul(f->b, d, vs, ""),
                                     cg_gep(f, f->f32, p->py, e));
    LLVMSetAlignment(st, 4);
    cg_loop_end(f, &l);
    return len / QVL * QVL;
}

/* ---- loops ------------------------------------------------------------------------ */

/* A row of len consecutive elements from e0.  Parameters: one set at
 * pbase (step false) or one per element from pbase on (step true).
 * packed: e0 is on a byte boundary (sub-byte types), so the row goes a
 * byte at a time, a last partial byte at the end. */
static void emit_row(cg_fn *f, const qplan *p, LLVMValueRef e0, int64_t len, LLVMValueRef pbase,
                     bool step, bool packed)
{
    qparam hold, *hp = NULL;
    if (!step) {
        hold = load_param(f, p, pbase);
        hp = &hold;
    }
    if (hp && (packed || p->q.per == 1)) {
        int64_t done = dq_vectors(f, p, e0, len, hp);
        e0 = cg_add(f, e0, cg_i64c(f, done));
        len -= done;
    }
    cg_loop l;
    if (!packed || p->q.per == 1) {
        LLVMValueRef j = cg_loop_begin(f, &l, len);
        qparam pr = hp ? *hp : load_param(f, p, cg_add(f, pbase, j));
        elem_at(f, p, cg_add(f, e0, j), &pr);
        cg_loop_end(f, &l);
        return;
    }
    unsigned per = p->q.per;
    LLVMValueRef b0 = LLVMBuildLShr(f->b, e0, cg_i64c(f, per == 2 ? 1 : 2), "");
    int64_t full = len / per, rest = len % per;
    if (full) {
        LLVMValueRef k = cg_loop_begin(f, &l, full);
        LLVMValueRef off = cg_mul(f, k, cg_i64c(f, per));
        byte_at(f, p, cg_add(f, b0, k), cg_add(f, e0, off), per, hp,
                hp ? NULL : cg_add(f, pbase, off));
        cg_loop_end(f, &l);
    }
    if (rest) {
        LLVMValueRef off = cg_i64c(f, full * per);
        byte_at(f, p, cg_add(f, b0, cg_i64c(f, full)), cg_add(f, e0, off), (unsigned)rest, hp,
                hp ? NULL : cg_add(f, pbase, off));
    }
}

/* x viewed as [outer, dim, inner] around the axis (ops_quant_gran).  Rows:
 *   per tensor: the whole tensor, one scale;
 *   inner > 1: each (o, a), one scale (per axis) or inner contiguous
 *     scales (blocked: row (o, a / block_size) of the scales);
 *   per axis, inner = 1: each o, the dim scales in order;
 *   blocked, inner = 1: each block of each o, one scale; the last block
 *     of a row may be short. */
static void emit_loops(cg_fn *f, const qplan *p)
{
    const ops_quant_gran *g = &p->g;
    unsigned per = p->q.per;
    int64_t outer = (int64_t)g->outer, dim = (int64_t)g->dim, inner = (int64_t)g->inner;
    LLVMValueRef zero = cg_i64c(f, 0);
    if (g->kind == QG_TENSOR) {
        emit_row(f, p, zero, (int64_t)g->inner * outer * dim, zero, false, true);
        return;
    }
    cg_loop lo, la;
    if (inner > 1) {
        bool packed = inner % per == 0 || outer * dim == 1;
        LLVMValueRef o = cg_loop_begin(f, &lo, outer);
        LLVMValueRef a = cg_loop_begin(f, &la, dim);
        LLVMValueRef e0 = cg_mul(f, cg_madd(f, o, dim, a), cg_i64c(f, inner));
        if (g->kind == QG_AXIS) {
            emit_row(f, p, e0, inner, a, false, packed);
        } else {
            LLVMValueRef blk = LLVMBuildUDiv(f->b, a, cg_i64c(f, g->block), "");
            LLVMValueRef pb = cg_mul(f, cg_madd(f, o, (int64_t)g->sdim, blk), cg_i64c(f, inner));
            emit_row(f, p, e0, inner, pb, true, packed);
        }
        cg_loop_end(f, &la);
        cg_loop_end(f, &lo);
        return;
    }
    if (g->kind == QG_AXIS) {
        LLVMValueRef o = cg_loop_begin(f, &lo, outer);
        emit_row(f, p, cg_mul(f, o, cg_i64c(f, dim)), dim, zero, true,
                 dim % per == 0 || outer == 1);
        cg_loop_end(f, &lo);
        return;
    }
    int64_t bs = g->block, full = dim / bs, rest = dim % bs, sdim = (int64_t)g->sdim;
    bool packed = bs % per == 0 && (dim % per == 0 || outer == 1);
    LLVMValueRef o = cg_loop_begin(f, &lo, outer);
    LLVMValueRef row = cg_mul(f, o, cg_i64c(f, dim)), prow = cg_mul(f, o, cg_i64c(f, sdim));
    if (full) {
        LLVMValueRef b = cg_loop_begin(f, &la, full);
        emit_row(f, p, cg_madd(f, b, bs, row), bs, cg_add(f, prow, b), false, packed);
        cg_loop_end(f, &la);
    }
    if (rest)
        emit_row(f, p, cg_add(f, row, cg_i64c(f, full * bs)), rest,
                 cg_add(f, prow, cg_i64c(f, full)), false, packed);
    cg_loop_end(f, &lo);
}

oct_status cg_lower_quantizelinear(cg_fn *f, const ir_node *n)
{
    qplan p;
    oct_status st = plan_init(f, n, false, &p);
    if (st == OCT_OK)
        emit_loops(f, &p);
    return st;
}

oct_status cg_lower_dequantizelinear(cg_fn *f, const ir_node *n)
{
    qplan p;
    oct_status st = plan_init(f, n, true, &p);
    if (st == OCT_OK)
        emit_loops(f, &p);
    return st;
}
