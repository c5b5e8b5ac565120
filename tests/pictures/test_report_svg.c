/*
 * test_report_svg.c: quant_report_svg on a hand-made report (no model):
 * the document is complete and escapes names; every allocation failing in
 * turn gives a status and a diagnostic, no output and no heap left in use;
 * the same report gives the same bytes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ir/ir.h"
#include "passes/quant.h"

static quant_report_row rows[3];
static quant_report_output outputs[1];

static quant_report make_report(void)
{
    memset(rows, 0, sizeof rows);
    const char *names[3] = {"conv1_out", "a<b&c\"d", "pool_out"};
    const ir_dtype types[3] = {IR_DT_UINT8, IR_DT_INT8, IR_DT_FLOAT8E4M3FN};
    const double alone[3] = {31.5, 24.25, 200.0}, accum[3] = {30.0, NAN, 18.0};
    for (int i = 0; i < 3; i++) {
        rows[i].tensor = names[i];
        rows[i].qtype = types[i];
        rows[i].granularity = "tensor";
        rows[i].n_scales = 1;
        rows[i].scale = 0.5f;
        rows[i].sqnr_alone = alone[i];
        rows[i].sqnr_accum = accum[i];
    }
    outputs[0] = (quant_report_output){.name = "y", .sqnr = 17.5};
    return (quant_report){.rows = rows, .n_rows = 3, .outputs = outputs,
                          .n_outputs = 1, .n_samples = 4};
}

static void svg_is_complete_and_escaped(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    quant_report rep = make_report();
    char *svg = NULL;
    size_t len = 0;
    assert_int_equal(quant_report_svg(ctx, &rep, NULL, NULL, &svg, &len), OCT_OK);
    assert_int_equal(strlen(svg), len);
    assert_true(strncmp(svg, "<?xml", 5) == 0);
    assert_true(len > 7 && strcmp(svg + len - 7, "</svg>\n") == 0);
    assert_non_null(strstr(svg, "a&lt;b&amp;c&quot;d"));
    assert_null(strstr(svg, "a<b"));
    /* the palette of the DOT output, per row precision */
    assert_non_null(strstr(svg, ir_precision_colour(IR_DT_UINT8)));
    assert_non_null(strstr(svg, ir_precision_colour(IR_DT_INT8)));
    assert_non_null(strstr(svg, ir_precision_colour(IR_DT_FLOAT8E4M3FN)));
    assert_non_null(strstr(svg, "24.2 / - dB  i8")); /* NaN accumulated: "-" */
    oct_ctx_free(ctx);
}

static void every_allocation_failure_is_clean(void **state)
{
    (void)state;
    quant_report rep = make_report();
    oct_ctx *ref_ctx = oct_ctx_new();
    char *want = NULL;
    size_t want_len = 0;
    assert_int_equal(quant_report_svg(ref_ctx, &rep, NULL, NULL, &want, &want_len), OCT_OK);
    int failures = 0;
    for (uint64_t n = 1;; n++) {
        oct_ctx *ctx = oct_ctx_new();
        uint64_t live = ctx->bytes_live;
        oct_ctx_fail_alloc_at(ctx, n);
        char *svg = (char *)"unset";
        size_t len = 1;
        oct_status st = quant_report_svg(ctx, &rep, NULL, NULL, &svg, &len);
        if (st == OCT_OK) {
            assert_int_equal(len, want_len);
            assert_memory_equal(svg, want, len);
            oct_ctx_free(ctx);
            break;
        }
        failures++;
        assert_int_equal(st, OCT_EINTERNAL);
        assert_true(oct_error_count(ctx) > 0);
        assert_null(svg);
        assert_int_equal(len, 0);
        assert_int_equal(ctx->bytes_live, live);
        oct_ctx_free(ctx);
        assert_true(n < 10000);
    }
    assert_true(failures >= 3); /* lines, the growing buffer, the arena copy */
    oct_ctx_free(ref_ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(svg_is_complete_and_escaped),
        cmocka_unit_test(every_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
