/*
 * dtype.c: the element-type trait table built from dtypes.def.
 */
#include "ir/ir.h"

static const ir_dtype_traits dtype_table[] = {
#define DT(e, id, nm, bits_, kind_, quant_) \
    [id] = {.name = nm, .bits = bits_, .kind = IR_DK_##kind_, .quantized = quant_},
#include "ir/dtypes.def"
#undef DT
};
_Static_assert(sizeof dtype_table / sizeof dtype_table[0] == IR_DT_COUNT,
               "dtypes.def ids must be dense");

static const char *const dtype_short[IR_DT_COUNT] = {
    [IR_DT_UNDEFINED] = "?", [IR_DT_FLOAT] = "f32", [IR_DT_UINT8] = "u8",
    [IR_DT_INT8] = "i8", [IR_DT_UINT16] = "u16", [IR_DT_INT16] = "i16",
    [IR_DT_INT32] = "i32", [IR_DT_INT64] = "i64", [IR_DT_STRING] = "str",
    [IR_DT_BOOL] = "bool", [IR_DT_FLOAT16] = "f16", [IR_DT_DOUBLE] = "f64",
    [IR_DT_UINT32] = "u32", [IR_DT_UINT64] = "u64", [IR_DT_COMPLEX64] = "c64",
    [IR_DT_COMPLEX128] = "c128", [IR_DT_BFLOAT16] = "bf16",
    [IR_DT_FLOAT8E4M3FN] = "f8e4m3fn", [IR_DT_FLOAT8E4M3FNUZ] = "f8e4m3fnuz",
    [IR_DT_FLOAT8E5M2] = "f8e5m2", [IR_DT_FLOAT8E5M2FNUZ] = "f8e5m2fnuz",
    [IR_DT_UINT4] = "u4", [IR_DT_INT4] = "i4", [IR_DT_FLOAT4E2M1] = "f4e2m1",
    [IR_DT_FLOAT8E8M0] = "f8e8m0", [IR_DT_UINT2] = "u2", [IR_DT_INT2] = "i2",
};

bool ir_dtype_valid(int dtype)
{
    return dtype > IR_DT_UNDEFINED && dtype < IR_DT_COUNT;
}

const ir_dtype_traits *ir_dtype_info(int dtype)
{
    return &dtype_table[ir_dtype_valid(dtype) ? dtype : IR_DT_UNDEFINED];
}

const char *ir_dtype_name(int dtype) { return ir_dtype_info(dtype)->name; }

const char *ir_dtype_short(int dtype)
{
    return dtype_short[ir_dtype_valid(dtype) ? dtype : IR_DT_UNDEFINED];
}

bool ir_dtype_bytes(int dtype, uint64_t n, uint64_t *bytes)
{
    const ir_dtype_traits *t = ir_dtype_info(dtype);
    if (dtype == IR_DT_STRING)
        return !ir_mul_overflow_u64(n, sizeof(ir_blob), bytes);
    uint64_t bits;
    if (ir_mul_overflow_u64(n, t->bits, &bits))
        return false;
    *bytes = bits / 8 + (bits % 8 != 0);
    return true;
}
