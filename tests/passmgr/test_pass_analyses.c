/*
 * test_pass_analyses.c: the pass manager enforces what passes.def says
 * passes require and preserve (pass_run_pipeline in src/passes/pipeline.c).
 * A list of stand-in passes that only count their runs shows that a pass
 * whose required analysis is not current is refused before any pass runs,
 * with a diagnostic naming the analysis and the pass that computes it; that
 * a pass which does not preserve an analysis makes it stale; and that
 * "shapes" is current at the start.  With the real registry: quant_plan's
 * plan goes stale after fold, so quant_calibrate is refused after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ir/ir.h"
#include "passes/passes.h"

static const char model_text[] =
    "octet-ir 1\n"
    "model ir_version=8 producer_name=\"t\" producer_version=\"\" domain=\"\"\n"
    "opset \"\"=13\n"
    "graph g\n"
    "input x: f32[1,4]\n"
    "output y: f32[1,4]\n"
    "node Relu relu (x: f32[1,4]) -> (r: f32[1,4])\n"
    "node Add add (r: f32[1,4], r) -> (s: f32[1,4])\n"
    "node Flatten flat (s: f32[1,4]) -> (y: f32[1,4])\n";

static int runs;

static oct_status pass_count(ir_graph *g, oct_ctx *ctx)
{
    (void)g;
    (void)ctx;
    runs++;
    return OCT_OK;
}

/* produce computes quant-plan (preserves it without requiring it), consume
 * requires and keeps it, clobber preserves nothing, needs_shapes requires
 * shapes. */
static const pass_info stand_ins[] = {
    {"shape_infer", pass_shape_infer, PASS_A_NONE, PASS_A_SHAPES, "real"},
    {"produce", pass_count, PASS_A_NONE, PASS_A_SHAPES | PASS_A_QPLAN, "computes"},
    {"consume", pass_count, PASS_A_QPLAN, PASS_A_SHAPES | PASS_A_QPLAN, "requires"},
    {"clobber", pass_count, PASS_A_NONE, PASS_A_NONE, "keeps nothing"},
    {"needs_shapes", pass_count, PASS_A_SHAPES, PASS_A_SHAPES, "requires shapes"},
};

static ir_model *parse(oct_ctx *ctx)
{
    ir_model *m = NULL;
    assert_int_equal(ir_parse_text(ctx, model_text, strlen(model_text), "t.txt", &m),
                     OCT_OK);
    return m;
}

static bool diag_has(const oct_ctx *ctx, const char *needle)
{
    char buf[1024];
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        oct_diag_format(oct_diag_get(ctx, i), buf, sizeof buf);
        if (strstr(buf, needle))
            return true;
    }
    return false;
}

/* Runs `pipeline` on the stand-ins in a fresh context; returns its status
 * and leaves the diagnostic text containing `needle` checked if given. */
static oct_status run(const char *pipeline, const char *needle)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_model *m = parse(ctx);
    pass_pipeline_opts o = {.passes = stand_ins,
                            .n_passes = sizeof stand_ins / sizeof stand_ins[0]};
    runs = 0;
    oct_status st = pass_run_pipeline(m, pipeline, &o, ctx);
    if (needle)
        assert_true(diag_has(ctx, needle));
    oct_ctx_free(ctx);
    return st;
}

static void a_required_analysis_never_computed_is_refused(void **state)
{
    (void)state;
    assert_int_equal(run("consume", "pass 'consume' requires quant-plan; run produce "
                         "first"), OCT_EUSAGE);
    assert_int_equal(runs, 0);
}

static void a_computed_analysis_satisfies_the_next_pass(void **state)
{
    (void)state;
    assert_int_equal(run("produce,consume,consume", NULL), OCT_OK);
    assert_int_equal(runs, 3);
}

static void a_pass_that_does_not_preserve_it_makes_it_stale(void **state)
{
    (void)state;
    /* checked before anything runs: produce did not run either */
    assert_int_equal(run("produce,clobber,consume", "pass 'consume' requires "
                         "quant-plan; run produce first"), OCT_EUSAGE);
    assert_int_equal(runs, 0);
    assert_int_equal(run("produce,clobber,produce,consume", NULL), OCT_OK);
    assert_int_equal(runs, 4);
}

static void shapes_are_current_at_the_start_until_clobbered(void **state)
{
    (void)state;
    assert_int_equal(run("needs_shapes", NULL), OCT_OK);
    assert_int_equal(run("clobber,needs_shapes", "pass 'needs_shapes' requires shapes; "
                         "run shape_infer first"), OCT_EUSAGE);
    assert_int_equal(run("clobber,shape_infer,needs_shapes", NULL), OCT_OK);
}

static void fold_makes_the_quant_plan_stale(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    ir_model *m = parse(ctx);
    assert_int_equal(pass_run_pipeline(m, "quant_plan,fold,quant_calibrate", NULL, ctx),
                     OCT_EUSAGE);
    assert_true(diag_has(ctx, "pass 'quant_calibrate' requires quant-plan; run "
                         "quant_plan first"));
    /* nothing ran: no plan was written into the model */
    assert_int_equal(m->n_quant_lines, 0);
    /* quant_plan alone leaves its plan in the model's quant lines */
    assert_int_equal(pass_run_pipeline(m, "quant_plan", NULL, ctx), OCT_OK);
    assert_true(m->n_quant_lines > 0);
    assert_string_equal(m->quant_lines[0].text, "plan");
    /* and a later fold drops it, stale */
    assert_int_equal(pass_run_pipeline(m, "fold", NULL, ctx), OCT_OK);
    assert_int_equal(m->n_quant_lines, 0);
    oct_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_required_analysis_never_computed_is_refused),
        cmocka_unit_test(a_computed_analysis_satisfies_the_next_pass),
        cmocka_unit_test(a_pass_that_does_not_preserve_it_makes_it_stale),
        cmocka_unit_test(shapes_are_current_at_the_start_until_clobbered),
        cmocka_unit_test(fold_makes_the_quant_plan_stale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
