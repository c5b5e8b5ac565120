/*
 * lower_elem.h: the element values of every dtype (lower_elemval.c) and
 * the generic broadcasting element-wise lowering built on them
 * (lower_elemgen.c), private to those files and the lowerings that reuse
 * them (lower_shapeops.c).
 *
 * A loaded element is a "value" of its dtype's class, the one the
 * reference interpreter computes in: FLOAT is an f32; DOUBLE, FLOAT16,
 * BFLOAT16, float8 and float4 are an f64 (decoded exactly); integers and
 * BOOL are an i64 (sign- or zero-extended).  Storing a value rounds it to
 * the dtype as ops_set / ops_set_i64 (src/ops/numeric.c) do, with the same
 * rules written out as LLVM instructions, so the bits are the same.
 */
#ifndef OCTET_CG_LOWER_ELEM_H
#define OCTET_CG_LOWER_ELEM_H

#include "codegen/codegen.h"

typedef enum cg_vclass { CG_V_F32, CG_V_F64, CG_V_INT, CG_V_NONE } cg_vclass;

/* Class of dt's values (CG_V_NONE: the backend cannot hold the dtype). */
cg_vclass cg_val_class(ir_dtype dt);
/* The LLVM type of a class's values. */
LLVMTypeRef cg_val_type(cg_fn *f, cg_vclass c);
/* Element idx (i64) of a tensor of dtype dt at base, as a value. */
LLVMValueRef cg_val_load(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx);
/* The element's bits as an integer of the dtype's width (sub-byte fields
 * as an i8, in the low bits), and the store of such bits. */
LLVMValueRef cg_raw_load(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx);
void cg_raw_store(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
/* Stores value v (of dt's class) as element idx, rounded to dt; float8
 * and float4 out of range saturate when `saturate`. */
void cg_val_store(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v,
                  bool saturate);
/* Value v of dtype `from` converted to the class of dtype `to` as the
 * interpreter's Cast does (through double; floats to integers truncated,
 * NaN 0, saturated to the int64 range; to BOOL: v != 0). */
LLVMValueRef cg_val_convert(cg_fn *f, ir_dtype from, ir_dtype to, LLVMValueRef v);
/* v (class F64) rounded to dt and back, as storing and reloading it does. */
LLVMValueRef cg_val_round(cg_fn *f, ir_dtype dt, LLVMValueRef v);
/* The code (low bits of an i32) of float32 x in narrow float dt (FLOAT16,
 * BFLOAT16, float8, float4), as ops_f32_to_* compute it; and the float32
 * of such a code c (i32), exact. */
LLVMValueRef cg_val_encode(cg_fn *f, ir_dtype dt, LLVMValueRef x, bool saturate);
LLVMValueRef cg_val_decode(cg_fn *f, ir_dtype dt, LLVMValueRef c);
/* Calls the C library function double NAME(double) (or NAME(double,
 * double) when y is not NULL). */
LLVMValueRef cg_libm_f64(cg_fn *f, const char *name, LLVMValueRef x, LLVMValueRef y);
/* A constant of class c: the double d (floats) or the integer i. */
LLVMValueRef cg_val_const(cg_fn *f, cg_vclass c, double d, int64_t i);

/* Unary, binary, variadic ops of any dtype the interpreter runs, on the
 * broadcast loop nest (lower_elemgen.c). */
oct_status cg_lower_elemgen(cg_fn *f, const ir_node *n);
/* The extra float32 element functions of unary ops (Erf, Round, Sin, ...)
 * as the interpreter's unary_f32 computes them; NULL if none. */
LLVMValueRef cg_unary_elem_more(cg_fn *f, const ir_node *n, LLVMValueRef x);

#endif
