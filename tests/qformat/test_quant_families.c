/*
 * test_quant_families.c: the command-line spellings of `octet quantize`
 * (--precision, --activations, --fp8, and --config's precision names)
 * mapped onto families of formats, and the choice rule among them, against
 * the behaviour documented in `octet help quantize` and docs/formats.md:
 * int8 is uint8 activations (int8 with s8) and int8 weights; fp8 is E4M3FN
 * (E5M2 with --fp8=e5m2) for both; auto takes the highest SQNR, ties to
 * int8; a --config rule wins over --precision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "passes/quant.h"

static void defaults_are_int8_with_uint8_activations(void **state)
{
    (void)state;
    quant_opts o = quant_default_opts();
    assert_int_equal(o.precision, QPREC_FIXED);
    int k = quant_family_index(&o, "int8");
    assert_int_equal(o.family, k);
    assert_int_equal(ir_qformat_info(o.families[k].act)->dtype, IR_DT_UINT8);
    assert_int_equal(ir_qformat_info(o.families[k].weight)->dtype, IR_DT_INT8);
    int f = quant_family_index(&o, "fp8");
    assert_true(f >= 0 && f != k);
    assert_int_equal(ir_qformat_info(o.families[f].act)->dtype, IR_DT_FLOAT8E4M3FN);
    assert_int_equal(ir_qformat_info(o.families[f].weight)->dtype, IR_DT_FLOAT8E4M3FN);
    assert_int_equal(quant_family_index(&o, "int4"), -1);
}

static void flags_map_to_formats(void **state)
{
    (void)state;
    quant_opts o = quant_default_opts();
    int k = quant_family_index(&o, "int8"), f = quant_family_index(&o, "fp8");
    assert_true(quant_opts_set_activations(&o, "s8"));
    assert_int_equal(ir_qformat_info(o.families[k].act)->dtype, IR_DT_INT8);
    assert_int_equal(ir_qformat_info(o.families[k].weight)->dtype, IR_DT_INT8);
    assert_true(quant_opts_set_fp8(&o, "e5m2"));
    assert_int_equal(ir_qformat_info(o.families[f].act)->dtype, IR_DT_FLOAT8E5M2);
    assert_int_equal(ir_qformat_info(o.families[f].weight)->dtype, IR_DT_FLOAT8E5M2);
    assert_true(quant_opts_set_precision(&o, "fp8"));
    assert_int_equal(o.precision, QPREC_FIXED);
    assert_int_equal(o.family, f);
    assert_true(quant_opts_set_precision(&o, "auto"));
    assert_int_equal(o.precision, QPREC_AUTO);
    assert_true(quant_opts_set_precision(&o, "budget:42.5"));
    assert_int_equal(o.precision, QPREC_BUDGET);
    assert_true(o.budget_db == 42.5);
    /* refused spellings leave a false, never a guess */
    assert_false(quant_opts_set_precision(&o, "budget:"));
    assert_false(quant_opts_set_precision(&o, "budget:4x"));
    assert_false(quant_opts_set_precision(&o, "int4"));
    assert_false(quant_opts_set_activations(&o, "u4"));
    assert_false(quant_opts_set_fp8(&o, "e4m3fnuz"));
}

static void auto_takes_the_highest_sqnr_ties_to_int8(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    quant_opts o = quant_default_opts();
    int k = quant_family_index(&o, "int8"), f = quant_family_index(&o, "fp8");
    double sqnr[QUANT_MAX_FAMILIES];
    const char *why;
    bool keep;
    o.precision = QPREC_AUTO;
    sqnr[k] = 30.0, sqnr[f] = 30.0;
    assert_int_equal(quant_pick_family(ctx, &o, QFORCE_NONE, NULL, sqnr, &why, &keep), k);
    assert_false(keep);
    sqnr[f] = 30.5;
    assert_int_equal(quant_pick_family(ctx, &o, QFORCE_NONE, NULL, sqnr, &why, &keep), f);
    assert_non_null(strstr(why, "fp8"));
    o.precision = QPREC_BUDGET; /* budget chooses like auto */
    assert_int_equal(quant_pick_family(ctx, &o, QFORCE_NONE, NULL, sqnr, &why, &keep), f);
    o.precision = QPREC_FIXED, o.family = k; /* a fixed precision ignores SQNR */
    assert_int_equal(quant_pick_family(ctx, &o, QFORCE_NONE, NULL, sqnr, &why, &keep), k);
    assert_string_equal(why, "--precision=int8");
    oct_ctx_free(ctx);
}

static void config_force_wins_over_precision(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    quant_opts o = quant_default_opts();
    int k = quant_family_index(&o, "int8"), f = quant_family_index(&o, "fp8");
    double sqnr[QUANT_MAX_FAMILIES] = {0};
    sqnr[k] = 50.0;
    const char *why;
    bool keep;
    assert_int_equal(quant_pick_family(ctx, &o, QFORCE_FAMILY + f, "rule", sqnr, &why, &keep), f);
    assert_string_equal(why, "rule");
    assert_false(keep);
    assert_int_equal(quant_force_family(QFORCE_FAMILY + f), f);
    assert_int_equal(quant_force_family(QFORCE_FP32), -1);
    /* fp32: kept float, the first family's parameters for the report */
    o.precision = QPREC_FIXED, o.family = f;
    assert_int_equal(quant_pick_family(ctx, &o, QFORCE_FP32, "rule", sqnr, &why, &keep), k);
    assert_true(keep);
    oct_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_int8_with_uint8_activations),
        cmocka_unit_test(flags_map_to_formats),
        cmocka_unit_test(auto_takes_the_highest_sqnr_ties_to_int8),
        cmocka_unit_test(config_force_wins_over_precision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
