/*
 * tests_access.c: ops_get / ops_set / ops_get_i64 / ops_set_i64 on every
 * kind of dtype, with expected values worked out by hand from the ONNX
 * layout rules (little endian; 4-bit element i in byte i/2, low nibble
 * first; 2-bit element i in byte i/4, low bits first).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "ref/ref.h"

static ir_tensor tensor(ir_dtype dt, void *data, uint64_t n)
{
    ir_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.data = data;
    t.nelems = n;
    return t;
}

static void int4_elements_are_low_nibble_first(void **state)
{
    uint8_t b[2] = {0x21, 0xf3};  /* elements 1, 2, 3, 0xf */
    ir_tensor s = tensor(IR_DT_INT4, b, 4), u = tensor(IR_DT_UINT4, b, 4);
    assert_int_equal(ops_get_i64(&s, 0), 1);
    assert_int_equal(ops_get_i64(&s, 1), 2);
    assert_int_equal(ops_get_i64(&s, 2), 3);
    assert_int_equal(ops_get_i64(&s, 3), -1);
    assert_int_equal(ops_get_i64(&u, 3), 15);
    assert_true(ops_get(&s, 3) == -1.0);
    ops_set_i64(&s, 1, -8);        /* 0x8 in the high nibble of byte 0 */
    assert_int_equal(b[0], 0x81);
    ops_set(&u, 2, 10.0);          /* 0xa in the low nibble of byte 1 */
    assert_int_equal(b[1], 0xfa);
}

static void int2_elements_are_low_bits_first(void **state)
{
    uint8_t b[1] = {0xe4};  /* 11 10 01 00: elements 0, 1, 2, 3 */
    ir_tensor s = tensor(IR_DT_INT2, b, 4), u = tensor(IR_DT_UINT2, b, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ops_get_i64(&u, (uint64_t)i), i);
    assert_int_equal(ops_get_i64(&s, 2), -2);
    assert_int_equal(ops_get_i64(&s, 3), -1);
    ops_set_i64(&s, 0, -1);
    assert_int_equal(b[0], 0xe7);
    ops_set_i64(&u, 3, 0);
    assert_int_equal(b[0], 0x27);
}

static void fixed_width_integers_are_little_endian(void **state)
{
    uint8_t b[16] = {0x34, 0x12, 0xff, 0xff, 0, 0, 0, 0x80};
    ir_tensor t16 = tensor(IR_DT_INT16, b, 2), u16 = tensor(IR_DT_UINT16, b, 2);
    assert_int_equal(ops_get_i64(&t16, 0), 0x1234);
    assert_int_equal(ops_get_i64(&t16, 1), -1);
    assert_int_equal(ops_get_i64(&u16, 1), 65535);
    ir_tensor t32 = tensor(IR_DT_INT32, b, 2);
    assert_int_equal(ops_get_i64(&t32, 1), INT32_MIN);
    ir_tensor u64 = tensor(IR_DT_UINT64, b, 1);
    memset(b, 0xff, 8);
    assert_true(ops_get(&u64, 0) == 18446744073709551615.0);
    ops_set(&u64, 0, 4.0);
    assert_int_equal(b[0], 4);
    assert_int_equal(b[7], 0);
    ir_tensor i64 = tensor(IR_DT_INT64, b, 1);
    ops_set_i64(&i64, 0, INT64_MIN);
    assert_int_equal(ops_get_i64(&i64, 0), INT64_MIN);
    ir_tensor i8 = tensor(IR_DT_INT8, b, 1);
    ops_set_i64(&i8, 0, 200);  /* low bits kept: 200 - 256 */
    assert_int_equal(ops_get_i64(&i8, 0), -56);
}

static void bool_reads_nonzero_as_one_and_stores_zero_or_one(void **state)
{
    uint8_t b[2] = {0, 7};
    ir_tensor t = tensor(IR_DT_BOOL, b, 2);
    assert_int_equal(ops_get_i64(&t, 1), 1);
    ops_set(&t, 0, -0.5);
    assert_int_equal(b[0], 1);
    ops_set(&t, 0, 0.0);
    assert_int_equal(b[0], 0);
}

static void float_formats_read_and_store_through_conversions(void **state)
{
    /* float16 0x3c00 = 1.0, 0xc000 = -2.0; bfloat16 0x3f80 = 1.0 */
    uint8_t h[4] = {0x00, 0x3c, 0x00, 0xc0};
    ir_tensor f16 = tensor(IR_DT_FLOAT16, h, 2);
    assert_true(ops_get(&f16, 0) == 1.0);
    assert_true(ops_get(&f16, 1) == -2.0);
    ops_set(&f16, 0, 65520.0); /* halfway 65504|65536: overflow to Inf */
    assert_int_equal(h[0] | h[1] << 8, 0x7c00);
    uint8_t bf[2] = {0x80, 0x3f};
    ir_tensor b16 = tensor(IR_DT_BFLOAT16, bf, 1);
    assert_true(ops_get(&b16, 0) == 1.0);
    /* float8 stores saturate (the Cast default): 1000 -> 448 = 0x7e */
    uint8_t q[1];
    ir_tensor f8 = tensor(IR_DT_FLOAT8E4M3FN, q, 1);
    ops_set(&f8, 0, 1000.0);
    assert_int_equal(q[0], 0x7e);
    assert_true(ops_get(&f8, 0) == 448.0);
    ops_set(&f8, 0, -INFINITY);
    assert_int_equal(q[0], 0xfe);
    /* float4: element 1 is the high nibble; 3.0 = 0b0101, -0.5 = 0b1001 */
    uint8_t f4b[1] = {0x00};
    ir_tensor f4 = tensor(IR_DT_FLOAT4E2M1, f4b, 2);
    ops_set(&f4, 1, 3.0);
    ops_set(&f4, 0, -0.5);
    assert_int_equal(f4b[0], 0x59);
    assert_true(ops_get(&f4, 1) == 3.0);
    assert_true(ops_get(&f4, 0) == -0.5);
    /* E8M0 code 127 = 1.0, 0 = 2^-127 */
    uint8_t e[2] = {127, 0};
    ir_tensor e8 = tensor(IR_DT_FLOAT8E8M0, e, 2);
    assert_true(ops_get(&e8, 0) == 1.0);
    assert_true(ops_get(&e8, 1) == ldexp(1.0, -127));
    double d = -3.25;
    ir_tensor f64 = tensor(IR_DT_DOUBLE, &d, 1);
    assert_true(ops_get(&f64, 0) == -3.25);
    ir_tensor i16 = tensor(IR_DT_INT16, h, 2);
    ops_set(&i16, 0, -2.9);  /* truncated toward zero */
    assert_int_equal(ops_get_i64(&i16, 0), -2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(int4_elements_are_low_nibble_first),
        cmocka_unit_test(int2_elements_are_low_bits_first),
        cmocka_unit_test(fixed_width_integers_are_little_endian),
        cmocka_unit_test(bool_reads_nonzero_as_one_and_stores_zero_or_one),
        cmocka_unit_test(float_formats_read_and_store_through_conversions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
