/*
 * test_frontend.c: unit tests of the ONNX frontend: typed TensorProto fields
 * decode to the canonical raw layout as the ONNX spec's TensorProto comments
 * prescribe (expected bytes worked out by hand), a model survives load/save
 * unchanged, every allocation failure during load and save returns cleanly,
 * and atomic writes refuse noted inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "frontend/frontend.h"

/* ---- hand-written wire format ---- */

typedef struct buf {
    uint8_t b[512];
    size_t n;
} buf;

static void put_varint(buf *w, uint64_t v)
{
    do {
        w->b[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void put_int(buf *w, unsigned field, int64_t v)
{
    put_varint(w, (uint64_t)field << 3);
    put_varint(w, (uint64_t)v);
}

static void put_bytes(buf *w, unsigned field, const void *p, size_t len)
{
    put_varint(w, (uint64_t)field << 3 | 2);
    put_varint(w, len);
    memcpy(w->b + w->n, p, len);
    w->n += len;
}

/* TensorProto fields (onnx.proto): dims 1, data_type 2, int32_data 5,
 * name 8, uint64_data 11. */
static ir_tensor *decode(oct_ctx *ctx, const buf *w)
{
    ir_tensor *t = NULL;
    assert_int_equal(fe_tensor_from_pb(ctx, w->b, w->n, "t.pb", &t), OCT_OK);
    return t;
}

static void int8_in_int32_data_is_truncated_to_bytes(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    buf w = {.n = 0};
    put_int(&w, 1, 3);
    put_int(&w, 2, IR_DT_INT8);
    put_int(&w, 5, -1);  /* int8 -1 -> byte 0xff */
    put_int(&w, 5, 127);
    put_int(&w, 5, -128); /* -> 0x80 */
    ir_tensor *t = decode(ctx, &w);
    const uint8_t want[] = {0xff, 0x7f, 0x80};
    assert_int_equal(t->nbytes, 3);
    assert_memory_equal(t->data, want, 3);
    assert_int_equal(t->storage, IR_STORE_TYPED);
    oct_ctx_free(ctx);
}

static void float16_in_int32_data_keeps_bit_pattern(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    buf w = {.n = 0};
    put_int(&w, 1, 2);
    put_int(&w, 2, IR_DT_FLOAT16);
    put_int(&w, 5, 0x3c00); /* 1.0 in half precision */
    put_int(&w, 5, 0xc000); /* -2.0 */
    ir_tensor *t = decode(ctx, &w);
    const uint8_t want[] = {0x00, 0x3c, 0x00, 0xc0}; /* little endian */
    assert_memory_equal(t->data, want, 4);
    oct_ctx_free(ctx);
}

static void int4_in_int32_data_holds_two_elements_per_entry(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    buf w = {.n = 0};
    put_int(&w, 1, 3);          /* 3 elements -> 2 packed bytes */
    put_int(&w, 2, IR_DT_INT4);
    put_int(&w, 5, 0x21);       /* elements 1, 2 (low nibble first) */
    put_int(&w, 5, 0x0f);       /* element -1, padding */
    ir_tensor *t = decode(ctx, &w);
    const uint8_t want[] = {0x21, 0x0f};
    assert_int_equal(t->nbytes, 2);
    assert_memory_equal(t->data, want, 2);
    oct_ctx_free(ctx);
}

static void int4_with_one_value_per_element_is_rejected(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    buf w = {.n = 0};
    put_int(&w, 1, 4);
    put_int(&w, 2, IR_DT_INT4);
    for (int i = 0; i < 4; i++)
        put_int(&w, 5, 1);  /* 4 entries, spec says ceil(4/2) = 2 */
    ir_tensor *t = NULL;
    assert_int_equal(fe_tensor_from_pb(ctx, w.b, w.n, "t.pb", &t), OCT_EINPUT);
    oct_ctx_free(ctx);
}

static void uint32_in_uint64_data_becomes_4_bytes(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    buf w = {.n = 0};
    put_int(&w, 1, 1);
    put_int(&w, 2, IR_DT_UINT32);
    put_int(&w, 11, 0xdeadbeef);
    ir_tensor *t = decode(ctx, &w);
    const uint8_t want[] = {0xef, 0xbe, 0xad, 0xde};
    assert_memory_equal(t->data, want, 4);
    oct_ctx_free(ctx);
}

/* A small model: Add(X, W) -> Y with an INT8 typed initializer and an
 * unknown field (number 99) on the node. */
static void make_model(buf *m)
{
    buf t = {.n = 0}, node = {.n = 0}, g = {.n = 0}, vi = {.n = 0}, op = {.n = 0};
    put_int(&t, 1, 2);
    put_int(&t, 2, IR_DT_INT8);
    put_int(&t, 5, -3);
    put_int(&t, 5, 4);
    put_bytes(&t, 8, "W", 1);
    put_bytes(&node, 1, "X", 1);
    put_bytes(&node, 1, "W", 1);
    put_bytes(&node, 2, "Y", 1);
    put_bytes(&node, 4, "Add", 3);
    put_bytes(&node, 99, "extra", 5);
    put_bytes(&vi, 1, "X", 1);
    put_bytes(&g, 1, node.b, node.n);
    put_bytes(&g, 5, t.b, t.n);
    put_bytes(&g, 11, vi.b, vi.n);
    vi.n = 0;
    put_bytes(&vi, 1, "Y", 1);
    put_bytes(&g, 12, vi.b, vi.n);
    put_int(&op, 2, 17);
    m->n = 0;
    put_int(m, 1, 8);
    put_bytes(m, 7, g.b, g.n);
    put_bytes(m, 8, op.b, op.n);
}

static void load_save_load_is_stable_and_keeps_unknown_fields(void **state)
{
    buf m;
    make_model(&m);
    oct_ctx *ctx = oct_ctx_new();
    ir_model *model = NULL;
    assert_int_equal(fe_load_memory(ctx, m.b, m.n, "m.onnx", NULL, NULL, &model), OCT_OK);
    ir_node *n = model->graph->nodes[0];
    assert_int_equal(n->extra.n, 1);
    assert_int_equal(n->extra.fields[0].tag, 99);
    ir_value *w = model->graph->inits[0];
    const uint8_t want[] = {0xfd, 0x04};
    assert_memory_equal(w->init->data, want, 2);
    uint8_t *out1, *out2;
    size_t len1, len2;
    assert_int_equal(fe_save_memory(ctx, model, &out1, &len1), OCT_OK);
    oct_ctx *ctx2 = oct_ctx_new();
    ir_model *model2 = NULL;
    assert_int_equal(fe_load_memory(ctx2, out1, len1, "m2.onnx", NULL, NULL, &model2), OCT_OK);
    assert_int_equal(fe_save_memory(ctx2, model2, &out2, &len2), OCT_OK);
    assert_int_equal(len1, len2);
    assert_memory_equal(out1, out2, len1);
    /* the unknown field's bytes are in the output: 99<<3|2, len 5, "extra" */
    assert_non_null(memmem(out1, len1, "\x9a\x06\x05" "extra", 8));
    oct_free(ctx, out1, len1);
    oct_free(ctx2, out2, len2);
    oct_ctx_free(ctx2);
    oct_ctx_free(ctx);
}

static void every_allocation_failure_returns_cleanly(void **state)
{
    buf m;
    make_model(&m);
    int failures_seen = 0;
    for (uint64_t nth = 1;; nth++) {
        oct_ctx *ctx = oct_ctx_new();
        oct_ctx_fail_alloc_at(ctx, nth);
        ir_model *model = NULL;
        oct_status st = fe_load_memory(ctx, m.b, m.n, "m.onnx", NULL, NULL, &model);
        uint8_t *out = NULL;
        size_t len = 0;
        if (st == OCT_OK)
            st = fe_save_memory(ctx, model, &out, &len);
        bool failed_alloc = oct_ctx_alloc_count(ctx) >= nth;
        if (st == OCT_OK) {
            oct_free(ctx, out, len);
            assert_false(failed_alloc);
            oct_ctx_free(ctx);
            break;
        }
        assert_int_equal(st, OCT_EINTERNAL);
        assert_true(oct_error_count(ctx) > 0);
        failures_seen++;
        oct_ctx_free(ctx);
        assert_true(nth < 10000);
    }
    assert_true(failures_seen >= 3); /* scan stack, arena block, output buffer */
}

static void atomic_write_refuses_noted_input(void **state)
{
    char dir[] = "/tmp/octet_fe_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/in.onnx", dir);
    oct_ctx *ctx = oct_ctx_new();
    assert_int_equal(ir_write_atomic(ctx, path, "abc", 3), OCT_OK);
    ir_note_input(ctx, path);
    assert_int_not_equal(ir_write_atomic(ctx, path, "xyz", 3), OCT_OK);
    uint8_t *data;
    size_t len;
    assert_int_equal(ir_read_file(ctx, path, 100, &data, &len), OCT_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "abc", 3);
    oct_free(ctx, data, len);
    assert_int_equal(ir_read_file(ctx, path, 2, &data, &len), OCT_EINPUT);
    unlink(path);
    rmdir(dir);
    oct_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(int8_in_int32_data_is_truncated_to_bytes),
        cmocka_unit_test(float16_in_int32_data_keeps_bit_pattern),
        cmocka_unit_test(int4_in_int32_data_holds_two_elements_per_entry),
        cmocka_unit_test(int4_with_one_value_per_element_is_rejected),
        cmocka_unit_test(uint32_in_uint64_data_becomes_4_bytes),
        cmocka_unit_test(load_save_load_is_stable_and_keeps_unknown_fields),
        cmocka_unit_test(every_allocation_failure_returns_cleanly),
        cmocka_unit_test(atomic_write_refuses_noted_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
