/*
 * tests_ir.c: unit tests of the IR core: arena, dtype table, op table,
 * diagnostics and the out-of-memory hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "ir/ir.h"

static void dtype_ids_match_onnx_wire_values(void **state)
{
    /* Values from onnx.proto TensorProto.DataType (and onnx 1.18+ for 17..26). */
    assert_int_equal(IR_DT_FLOAT, 1);
    assert_int_equal(IR_DT_BFLOAT16, 16);
    assert_int_equal(IR_DT_FLOAT8E4M3FN, 17);
    assert_int_equal(IR_DT_FLOAT8E5M2, 19);
    assert_int_equal(IR_DT_UINT4, 21);
    assert_int_equal(IR_DT_INT4, 22);
    assert_int_equal(IR_DT_FLOAT4E2M1, 23);
    assert_string_equal(ir_dtype_name(IR_DT_FLOAT8E4M3FN), "FLOAT8E4M3FN");
    assert_false(ir_dtype_valid(0));
    assert_false(ir_dtype_valid(IR_DT_COUNT));
    assert_string_equal(ir_dtype_name(9999), "UNDEFINED");
}

static void dtype_bytes_packs_sub_byte_types(void **state)
{
    uint64_t b;
    assert_true(ir_dtype_bytes(IR_DT_INT4, 5, &b));
    assert_int_equal(b, 3);
    assert_true(ir_dtype_bytes(IR_DT_UINT2, 5, &b));
    assert_int_equal(b, 2);
    assert_true(ir_dtype_bytes(IR_DT_FLOAT, 3, &b));
    assert_int_equal(b, 12);
    assert_false(ir_dtype_bytes(IR_DT_DOUBLE, UINT64_MAX / 4, &b));
}

static void op_table_lookup_and_attributes(void **state)
{
    assert_int_equal(ir_op_lookup("", "Conv"), IR_OP_CONV);
    assert_int_equal(ir_op_lookup("ai.onnx", "Conv"), IR_OP_CONV);
    assert_int_equal(ir_op_lookup("com.example", "Conv"), IR_OP_UNKNOWN);
    assert_int_equal(ir_op_lookup("", "NoSuchOp"), IR_OP_UNKNOWN);
    assert_int_equal(ir_op_attr_type(IR_OP_CONV, "group"), IR_ATTR_INT);
    assert_int_equal(ir_op_attr_type(IR_OP_CONV, "pads"), IR_ATTR_INTS);
    assert_int_equal(ir_op_attr_type(IR_OP_CONV, "pad"), IR_ATTR_UNDEFINED);
    assert_int_equal(ir_op_attr_type(IR_OP_CONSTANT, "value"), IR_ATTR_TENSOR);
    assert_int_equal(ir_op_attr_type(IR_OP_CONSTANT, "value_strings"), IR_ATTR_STRINGS);
}

static void arena_allocations_are_zeroed_and_aligned(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    for (size_t size = 1; size < 100000; size = size * 3 + 1) {
        unsigned char *p = ir_alloc(ctx, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < size; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, size);
    }
    assert_null(ir_alloc_array(ctx, SIZE_MAX / 2, 4));
    assert_int_equal(oct_error_count(ctx), 1);
    oct_ctx_free(ctx);
}

static void graph_values_are_unique_by_name(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "v%d", i);
        assert_non_null(ir_graph_value(ctx, g, name));
    }
    assert_int_equal(g->n_values, 1000);
    assert_ptr_equal(ir_graph_value(ctx, g, "v7"), g->values[7]);
    assert_int_equal(g->n_values, 1000);
    assert_null(ir_graph_find(g, "v1000"));
    oct_ctx_free(ctx);
}

static void failed_allocation_is_a_diagnostic(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    oct_ctx_fail_alloc_at(ctx, 1);
    assert_null(ir_alloc(ctx, 10));
    assert_int_equal(oct_error_count(ctx), 1);
    assert_non_null(ir_alloc(ctx, 10)); /* only the Nth fails */
    oct_ctx_free(ctx);
}

static void diagnostic_names_file_node_and_input(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    ctx->cur_file = "model.onnx";
    ir_graph *g = ir_graph_new(ctx);
    ir_node *n = ir_graph_add_node(ctx, g, "Conv", "", "conv1", 2, 1);
    n->in[1] = ir_graph_value(ctx, g, "W");
    assert_int_equal(oct_input_error(ctx, OCT_EINPUT, n, 1, "bad %s", "weights"),
                     OCT_EINPUT);
    char buf[256];
    oct_diag_format(oct_diag_get(ctx, 0), buf, sizeof buf);
    assert_string_equal(buf, "model.onnx: node 'conv1' (Conv) input 1 'W': error: bad weights");
    oct_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dtype_ids_match_onnx_wire_values),
        cmocka_unit_test(dtype_bytes_packs_sub_byte_types),
        cmocka_unit_test(op_table_lookup_and_attributes),
        cmocka_unit_test(arena_allocations_are_zeroed_and_aligned),
        cmocka_unit_test(graph_values_are_unique_by_name),
        cmocka_unit_test(failed_allocation_is_a_diagnostic),
        cmocka_unit_test(diagnostic_names_file_node_and_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
