/*
 * test_qformat.c: the table of quantization formats (src/ir/qformats.def)
 * against facts written here from the ONNX operator spec (the ranges of
 * QuantizeLinear's output types, the largest finite float8 values, the
 * opset that introduced each type) and against the dtype table.  Float8
 * maxima are also decoded from their bit patterns by the interpreter's
 * conversion, an implementation independent of the table.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ir/qformat.h"
#include "ops/ops.h"

/* The ONNX spec's facts, by type name (TensorProto.DataType). */
typedef struct spec_row {
    const char *name, *onnx_type;
    int bits;
    int64_t qmin, qmax;   /* integer types: the saturation range */
    double fmax;          /* float8: largest finite value */
    int opset;            /* QuantizeLinear/DequantizeLinear accept it from */
} spec_row;

static const spec_row spec[] = {
    {"uint8", "UINT8", 8, 0, 255, 0, 10},
    {"int8", "INT8", 8, -128, 127, 0, 10},
    {"fp8e4m3", "FLOAT8E4M3FN", 8, 0, 0, 448.0, 19},
    {"fp8e5m2", "FLOAT8E5M2", 8, 0, 0, 57344.0, 19},
    {"fp8e4m3fnuz", "FLOAT8E4M3FNUZ", 8, 0, 0, 240.0, 19},
    {"fp8e5m2fnuz", "FLOAT8E5M2FNUZ", 8, 0, 0, 57344.0, 19},
    {"uint4", "UINT4", 4, 0, 15, 0, 21},
    {"int4", "INT4", 4, -8, 7, 0, 21},
    {"uint2", "UINT2", 2, 0, 3, 0, 25},
    {"int2", "INT2", 2, -2, 1, 0, 25},
    {"uint16", "UINT16", 16, 0, 65535, 0, 21},
    {"int16", "INT16", 16, -32768, 32767, 0, 21},
    {"int32", "INT32", 32, -2147483648LL, 2147483647LL, 0, 10},
    /* weight-only block formats: the element type's facts, the code range
     * (q6_k: 6-bit codes -32..31 in INT8), the opset of the
     * DequantizeLinear chain (output_dtype: 23; FLOAT8E8M0 scales: 24) */
    {"nvfp4", "FLOAT4E2M1", 4, 0, 0, 6.0, 23},
    {"mxfp4", "FLOAT4E2M1", 4, 0, 0, 6.0, 24},
    {"mxfp8", "FLOAT8E4M3FN", 8, 0, 0, 448.0, 24},
    {"q8_0", "INT8", 8, -128, 127, 0, 23},
    {"q6_k", "INT8", 8, -32, 31, 0, 23},
    {"q4_k", "UINT4", 4, 0, 15, 0, 23},
};

/* The block formats' scales, from their definitions (OCP MX v1.0; NVIDIA's
 * NVFP4; llama.cpp's block_q8_0, block_q6_K, block_q4_K): block size, the
 * first-level scale type, and for two levels the blocks per second-level
 * scale (0: one per tensor), its type and the largest scale code. */
typedef struct block_row {
    const char *name;
    int64_t block;
    const char *scale_type;
    int levels;
    int64_t super;
    const char *super_type;
    int64_t scale_max;
} block_row;

static const block_row blocks[] = {
    {"nvfp4", 16, "FLOAT8E4M3FN", 2, 0, "FLOAT", 448},
    {"mxfp4", 32, "FLOAT8E8M0", 1, 0, "UNDEFINED", 0},
    {"mxfp8", 32, "FLOAT8E8M0", 1, 0, "UNDEFINED", 0},
    {"q8_0", 32, "FLOAT16", 1, 0, "UNDEFINED", 0},
    {"q6_k", 16, "INT8", 2, 16, "FLOAT16", 127},
    {"q4_k", 32, "UINT8", 2, 8, "FLOAT16", 63},
};
enum { N_SPEC = sizeof spec / sizeof spec[0] };

static void every_row_matches_the_onnx_spec(void **state)
{
    (void)state;
    assert_int_equal(IR_QF_COUNT - 1, N_SPEC); /* no row without its facts */
    for (int k = 0; k < N_SPEC; k++) {
        const spec_row *s = &spec[k];
        ir_qformat id = ir_qformat_by_name(s->name);
        assert_int_not_equal(id, IR_QF_NONE);
        const ir_qformat_traits *f = ir_qformat_info(id);
        assert_int_equal(f->id, id);
        assert_string_equal(f->name, s->name);
        assert_string_equal(ir_dtype_name(f->dtype), s->onnx_type);
        assert_int_equal(f->bits, s->bits);
        assert_int_equal(f->opset, s->opset);
        if (f->is_float) {
            assert_true(f->fmax == s->fmax);
        } else {
            assert_true(f->qmin == s->qmin);
            assert_true(f->qmax == s->qmax);
        }
    }
}

static void rows_agree_with_the_dtype_table(void **state)
{
    (void)state;
    for (int id = IR_QF_NONE + 1; id < IR_QF_COUNT; id++) {
        const ir_qformat_traits *f = ir_qformat_info(id);
        const ir_dtype_traits *d = ir_dtype_info(f->dtype);
        assert_true(ir_dtype_valid(f->dtype));
        assert_int_equal(f->bits, (int)d->bits);
        assert_int_equal(f->is_float, d->kind == IR_DK_FLOAT);
        if (!f->is_float) {
            assert_int_equal(f->is_signed, d->kind == IR_DK_SINT);
                /* two's complement / unsigned range of `bits` bits (a block
             * format's codes may use part of it) */
            int64_t span = f->bits >= 63 ? INT64_MAX : ((int64_t)1 << f->bits) - 1;
            bool plain = f->scale_dtype == IR_DT_FLOAT;
            assert_true(plain ? f->qmax - f->qmin == span : f->qmax - f->qmin <= span);
            assert_true(f->is_signed ? f->qmin < 0 : f->qmin == 0);
        }
        /* unsigned integer grids need a zero point: never symmetric */
        if (!f->is_signed)
            assert_false(f->symmetric);
        assert_true(ir_dtype_valid(f->scale_dtype));
        assert_true(f->granularities != 0);
        assert_int_equal(f->block_size > 0, (f->granularities & IR_QG_BLOCK) != 0);
        if (f->scale_dtype != IR_DT_FLOAT)
            continue; /* the block formats: block_formats_match_their_definitions */
        assert_int_equal(f->scale_levels, 1);
        assert_int_equal(ir_qformat_of_dtype(f->dtype), id);
    }
}

static void block_formats_match_their_definitions(void **state)
{
    (void)state;
    int n_block = 0;
    for (int id = IR_QF_NONE + 1; id < IR_QF_COUNT; id++)
        n_block += ir_qformat_info(id)->scale_dtype != IR_DT_FLOAT;
    assert_int_equal(n_block, (int)(sizeof blocks / sizeof blocks[0]));
    for (size_t k = 0; k < sizeof blocks / sizeof blocks[0]; k++) {
        const block_row *b = &blocks[k];
        const ir_qformat_traits *f = ir_qformat_info(ir_qformat_by_name(b->name));
        assert_string_equal(f->name, b->name);
        assert_int_equal(f->granularities, IR_QG_BLOCK);
        assert_int_equal(f->block_size, b->block);
        assert_string_equal(ir_dtype_name(f->scale_dtype), b->scale_type);
        assert_int_equal(f->scale_levels, b->levels);
        assert_int_equal(f->super, b->super);
        assert_string_equal(ir_dtype_name(f->super_dtype), b->super_type);
        assert_int_equal(f->scale_max, b->scale_max);
        /* what a Q/DQ of the element type is read as is never a block
         * format (their element types may have a plain row or none) */
        assert_int_not_equal(ir_qformat_of_dtype(f->dtype), f->id);
    }
}

static void float8_maxima_decode_from_their_bit_patterns(void **state)
{
    (void)state;
    /* E4M3FN: S.1111.110 is the largest finite (S.1111.111 is NaN) */
    const ir_qformat_traits *e4 = ir_qformat_info(ir_qformat_by_name("fp8e4m3"));
    assert_true((double)ops_fp8_to_f32(IR_DT_FLOAT8E4M3FN, 0x7e) == e4->fmax);
    /* E5M2: S.11110.11 is the largest finite (11111.xx are Inf/NaN) */
    const ir_qformat_traits *e5 = ir_qformat_info(ir_qformat_by_name("fp8e5m2"));
    assert_true((double)ops_fp8_to_f32(IR_DT_FLOAT8E5M2, 0x7b) == e5->fmax);
    /* the FNUZ variants: S.1111.111 and S.11111.11 are finite (0x80 is NaN) */
    assert_true((double)ops_fp8_to_f32(IR_DT_FLOAT8E4M3FNUZ, 0x7f) ==
                ir_qformat_info(ir_qformat_by_name("fp8e4m3fnuz"))->fmax);
    assert_true((double)ops_fp8_to_f32(IR_DT_FLOAT8E5M2FNUZ, 0x7f) ==
                ir_qformat_info(ir_qformat_by_name("fp8e5m2fnuz"))->fmax);
    /* saturating conversion of a huge value lands on fmax */
    assert_true((double)ops_fp8_to_f32(IR_DT_FLOAT8E5M2,
                                       ops_f32_to_fp8(IR_DT_FLOAT8E5M2, 1e9f, true)) == e5->fmax);
    assert_true(ir_qformat_absmax(e4) == 448.0);
    assert_true(ir_qformat_absmax(ir_qformat_info(ir_qformat_by_name("int8"))) == 127.0);
}

static void lookups_refuse_what_is_not_a_format(void **state)
{
    (void)state;
    assert_int_equal(ir_qformat_by_name("float32"), IR_QF_NONE);
    assert_int_equal(ir_qformat_by_name(NULL), IR_QF_NONE);
    assert_int_equal(ir_qformat_of_dtype(IR_DT_FLOAT), IR_QF_NONE);
    assert_int_equal(ir_qformat_of_dtype(IR_DT_UNDEFINED), IR_QF_NONE);
    assert_int_equal(ir_qformat_info(IR_QF_COUNT)->dtype, IR_DT_UNDEFINED);
    assert_int_equal(ir_qformat_info(-1)->bits, 0);
    assert_string_equal(ir_qformat_info(IR_QF_NONE)->name, "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_row_matches_the_onnx_spec),
        cmocka_unit_test(rows_agree_with_the_dtype_table),
        cmocka_unit_test(block_formats_match_their_definitions),
        cmocka_unit_test(float8_maxima_decode_from_their_bit_patterns),
        cmocka_unit_test(lookups_refuse_what_is_not_a_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
