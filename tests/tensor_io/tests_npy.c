/*
 * tests_npy.c: unit tests of the .npy reader on hand-built images: what a
 * well-formed header decodes to (values worked out by hand from the NPY
 * format description), and that each kind of malformed header, shape or
 * data length is refused with the right status and a diagnostic naming the
 * file, never a crash.  Also fails every allocation in turn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "frontend/frontend.h"

/* Builds a version 1.0 image: magic, version, header length, `dict` padded
 * with spaces to a multiple of 64 and ended with '\n', then `data`. */
static size_t make_npy(uint8_t *buf, size_t size, const char *dict,
                       const void *data, size_t data_len)
{
    size_t dlen = strlen(dict);
    size_t hlen = ((10 + dlen + 1 + 63) / 64) * 64 - 10;
    assert_true(10 + hlen + data_len <= size);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)hlen;
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, dict, dlen);
    memset(buf + 10 + dlen, ' ', hlen - dlen - 1);
    buf[10 + hlen - 1] = '\n';
    memcpy(buf + 10 + hlen, data, data_len);
    return 10 + hlen + data_len;
}

/* Decodes and returns the status; on failure checks that the first
 * diagnostic names "t.npy" and contains `needle`. */
static oct_status decode(oct_ctx *ctx, const uint8_t *img, size_t len,
                         const char *needle, ir_tensor **out)
{
    ir_tensor *t = NULL;
    oct_status st = fe_tensor_from_npy(ctx, img, len, "t.npy", &t);
    if (st != OCT_OK) {
        assert_true(oct_diag_count(ctx) >= 1);
        const oct_diag *d = oct_diag_get(ctx, 0);
        assert_string_equal(d->file, "t.npy");
        if (needle && !strstr(d->message, needle))
            fail_msg("diagnostic '%s' lacks '%s'", d->message, needle);
    }
    if (out)
        *out = t;
    return st;
}

static void well_formed_header_decodes_shape_dtype_and_data(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    uint8_t img[256];
    const int16_t vals[6] = {1, -2, 3, -4, 5, 32767};
    size_t n = make_npy(img, sizeof img,
                        "{'descr': '<i2', 'fortran_order': False, "
                        "'shape': (2, 3), }", vals, sizeof vals);
    ir_tensor *t;
    assert_int_equal(decode(ctx, img, n, NULL, &t), OCT_OK);
    assert_int_equal(t->dtype, IR_DT_INT16);
    assert_int_equal(t->rank, 2);
    assert_int_equal(t->dims[0], 2);
    assert_int_equal(t->dims[1], 3);
    assert_int_equal(t->nelems, 6);
    assert_int_equal(t->nbytes, 12);
    assert_memory_equal(t->data, vals, sizeof vals);
    oct_ctx_free(ctx);
}

static void keys_in_any_order_and_double_quotes_are_accepted(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    uint8_t img[256];
    const uint8_t b[1] = {1};
    size_t n = make_npy(img, sizeof img,
                        "{\"shape\": (), \"fortran_order\": False, "
                        "\"descr\": \"|b1\"}", b, 1);
    ir_tensor *t;
    assert_int_equal(decode(ctx, img, n, NULL, &t), OCT_OK);
    assert_int_equal(t->dtype, IR_DT_BOOL);
    assert_int_equal(t->rank, 0);
    assert_int_equal(t->nelems, 1);
    oct_ctx_free(ctx);
}

static void big_endian_data_is_swapped_to_little_endian(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    uint8_t img[256];
    /* >i4 0x00000102 = 258 and 0xfffffffe = -2 */
    const uint8_t be[8] = {0, 0, 1, 2, 0xff, 0xff, 0xff, 0xfe};
    size_t n = make_npy(img, sizeof img,
                        "{'descr': '>i4', 'fortran_order': False, "
                        "'shape': (2,), }", be, 8);
    ir_tensor *t;
    assert_int_equal(decode(ctx, img, n, NULL, &t), OCT_OK);
    int32_t v[2];
    memcpy(v, t->data, 8);
    assert_int_equal(v[0], 258);
    assert_int_equal(v[1], -2);
    oct_ctx_free(ctx);
}

/* One malformed image per case: header text, data length, expected status
 * and a diagnostic fragment. */
static void malformed_headers_are_diagnosed(void **state)
{
    static const struct {
        const char *dict;
        size_t data_len;
        oct_status st;
        const char *needle;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False}", 0, OCT_EINPUT,
         "lacks 'shape'"},
        {"{'descr': '<f4', 'shape': (1,)}", 4, OCT_EINPUT,
         "lacks 'fortran_order'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
         "'shape': (1,)}", 4, OCT_EINPUT, "repeated key 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", 4,
         OCT_EINPUT, "lacks its ','"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, x)}", 4,
         OCT_EINPUT, "not an integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 0,
         OCT_EINPUT, "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': "
         "(9223372036854775808,)}", 0, OCT_EINPUT, "64 bits"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': "
         "(9223372036854775807, 3)}", 0, OCT_EINPUT, "overflows"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", 4,
         OCT_EINPUT, "'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,)}", 4,
         OCT_EUNSUPPORTED, "Fortran"},
        {"{'descr': '<c16', 'fortran_order': False, 'shape': (1,)}", 16,
         OCT_EUNSUPPORTED, "'<c16'"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", 8,
         OCT_EUNSUPPORTED, "'|O'"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (1,)}", 4,
         OCT_EUNSUPPORTED, "'|f4'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
         4, OCT_EUNSUPPORTED, "structured"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 4,
         OCT_EINPUT, "need 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", 8,
         OCT_EINPUT, "after the dict"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 8,
         OCT_EINPUT, "expected ',' or '}'"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", 8,
         OCT_EINPUT, NULL},
    };
    uint8_t img[512];
    uint8_t zeros[16] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        oct_ctx *ctx = oct_ctx_new();
        size_t n = make_npy(img, sizeof img, cases[i].dict, zeros,
                            cases[i].data_len);
        oct_status st = decode(ctx, img, n, cases[i].needle, NULL);
        if (st != cases[i].st)
            fail_msg("case %zu (%s): status %d, expected %d", i,
                     cases[i].dict, st, cases[i].st);
        oct_ctx_free(ctx);
    }
}

static void preamble_errors_are_diagnosed(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    assert_int_equal(decode(ctx, (const uint8_t *)"\x93NUMP", 5, "magic",
                            NULL), OCT_EINPUT);
    oct_ctx_free(ctx);
    ctx = oct_ctx_new();
    /* version 1.0, header length 100 but only 3 header bytes */
    assert_int_equal(decode(ctx, (const uint8_t *)"\x93NUMPY\x01\x00\x64\x00{}\n",
                            13, "past the end", NULL), OCT_EINPUT);
    oct_ctx_free(ctx);
    ctx = oct_ctx_new();
    assert_int_equal(decode(ctx, (const uint8_t *)"\x93NUMPY\x01\x01\x03\x00{}\n",
                            13, "1.1", NULL), OCT_EUNSUPPORTED);
    oct_ctx_free(ctx);
    ctx = oct_ctx_new();
    assert_int_equal(decode(ctx, (const uint8_t *)"\x93NUMPY\x02\x00\x03\x00",
                            10, "truncated", NULL), OCT_EINPUT);
    oct_ctx_free(ctx);
}

static void element_and_rank_limits_apply(void **state)
{
    uint8_t img[256];
    uint8_t zeros[64] = {0};
    oct_ctx *ctx = oct_ctx_new();
    oct_ctx_limits(ctx)->max_tensor_elems = 10;
    size_t n = make_npy(img, sizeof img,
                        "{'descr': '|u1', 'fortran_order': False, "
                        "'shape': (11,)}", zeros, 11);
    assert_int_equal(decode(ctx, img, n, "above the limit", NULL), OCT_EINPUT);
    oct_ctx_free(ctx);
    ctx = oct_ctx_new();
    oct_ctx_limits(ctx)->max_rank = 2;
    n = make_npy(img, sizeof img,
                 "{'descr': '|u1', 'fortran_order': False, "
                 "'shape': (1, 1, 1)}", zeros, 1);
    assert_int_equal(decode(ctx, img, n, "rank limit", NULL), OCT_EINPUT);
    oct_ctx_free(ctx);
}

static void every_allocation_failure_is_reported_cleanly(void **state)
{
    uint8_t img[256];
    const float vals[3] = {1, 2, 3};
    size_t n = make_npy(img, sizeof img,
                        "{'descr': '<f4', 'fortran_order': False, "
                        "'shape': (3,)}", vals, sizeof vals);
    for (uint64_t nth = 1;; nth++) {
        oct_ctx *ctx = oct_ctx_new();
        oct_ctx_fail_alloc_at(ctx, nth);
        ir_tensor *t = NULL;
        oct_status st = fe_tensor_from_npy(ctx, img, n, "t.npy", &t);
        if (st == OCT_OK) {
            assert_memory_equal(t->data, vals, sizeof vals);
            oct_ctx_free(ctx);
            assert_true(nth > 1); /* at least one allocation was tested */
            break;
        }
        assert_int_equal(st, OCT_EINTERNAL);
        assert_true(oct_error_count(ctx) >= 1);
        oct_ctx_free(ctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_formed_header_decodes_shape_dtype_and_data),
        cmocka_unit_test(keys_in_any_order_and_double_quotes_are_accepted),
        cmocka_unit_test(big_endian_data_is_swapped_to_little_endian),
        cmocka_unit_test(malformed_headers_are_diagnosed),
        cmocka_unit_test(preamble_errors_are_diagnosed),
        cmocka_unit_test(element_and_rank_limits_apply),
        cmocka_unit_test(every_allocation_failure_is_reported_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
