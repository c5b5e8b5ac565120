/*
 * test_passmgr.c: unit tests of the pipeline runner (pass_run_pipeline in
 * src/passes/pipeline.c) and of the text IR parser (src/ir/parse.c).  The
 * runner is given its own pass list holding the real shape_infer and a
 * deliberately broken pass that makes a node read a value nothing defines:
 * with verify_each the error must name that pass, without it the run must
 * go through silently (the graph is then broken, as ir_verify shows).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ir/ir.h"
#include "passes/passes.h"

static const char model_text[] =
    "octet-ir 1\n"
    "model ir_version=8 producer_name=\"t\" producer_version=\"\" domain=\"\"\n"
    "opset \"\"=13\n"
    "graph g\n"
    "input x: f32[2,3]\n"
    "output y: f32[2,3]\n"
    "init b: f32[3] raw = [1.0, 2.0, 3.0]\n"
    "node Add add (x, b) -> (a)\n"
    "node Relu relu (a) -> (y)\n";

/* The broken pass: the Relu now reads "ghost", which no node, input or
 * initializer defines. */
static oct_status pass_break_it(ir_graph *g, oct_ctx *ctx)
{
    ir_value *ghost = ir_graph_value(ctx, g, "ghost");
    if (!ghost)
        return OCT_EINTERNAL;
    g->nodes[g->n_nodes - 1]->in[0] = ghost;
    return OCT_OK;
}

static const pass_info test_passes[] = {
    {"shape_infer", pass_shape_infer, PASS_A_NONE, PASS_A_SHAPES, "real"},
    {"break_it", pass_break_it, PASS_A_NONE, PASS_A_NONE, "reads an undefined value"},
};

static ir_model *parse(oct_ctx *ctx, const char *text)
{
    ir_model *m = NULL;
    assert_int_equal(ir_parse_text(ctx, text, strlen(text), "t.txt", &m), OCT_OK);
    assert_non_null(m);
    return m;
}

/* True if some diagnostic's formatted text contains `needle`. */
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

typedef struct seen {
    char passes[256];
    size_t n_print, n_time;
    bool text_ok;
} seen;

static void on_print(void *user, const char *pass, size_t index,
                     const char *text, size_t len)
{
    seen *s = user;
    (void)index;
    s->n_print++;
    strcat(s->passes, pass);
    strcat(s->passes, ";");
    s->text_ok = len > 11 && !strncmp(text, "octet-ir 1\n", 11);
}

static void on_time(void *user, const char *pass, size_t index, double sec)
{
    seen *s = user;
    (void)pass;
    (void)index;
    assert_true(sec >= 0);
    s->n_time++;
}

static void verify_each_names_the_broken_pass(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    ir_model *m = parse(ctx, model_text);
    seen s = {0};
    pass_pipeline_opts o = {.verify_each = true, .print_after_all = true,
                            .print = on_print, .print_user = &s,
                            .passes = test_passes, .n_passes = 2};
    oct_status st = pass_run_pipeline(m, "shape_infer,break_it,shape_infer", &o, ctx);
    assert_int_not_equal(st, OCT_OK);
    assert_true(diag_has(ctx, "no longer verifies after pass 'break_it'"));
    assert_true(diag_has(ctx, "ghost")); /* the verifier's own diagnostic */
    /* printed after the first pass only: the pipeline stopped at break_it */
    assert_string_equal(s.passes, "shape_infer;");
    assert_true(s.text_ok);
    oct_ctx_free(ctx);
}

static void without_verify_each_the_break_goes_unnoticed(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    ir_model *m = parse(ctx, model_text);
    pass_pipeline_opts o = {.passes = test_passes, .n_passes = 2};
    assert_int_equal(pass_run_pipeline(m, "break_it", &o, ctx), OCT_OK);
    assert_int_equal(oct_diag_count(ctx), 0);
    assert_false(diag_has(ctx, "break_it"));
    /* but the graph is broken */
    assert_int_not_equal(ir_verify(m, ctx), OCT_OK);
    oct_ctx_free(ctx);
}

static void unknown_pass_lists_valid_names(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    ir_model *m = parse(ctx, model_text);
    assert_int_equal(pass_run_pipeline(m, "shape_infer, nope", NULL, ctx), OCT_EUSAGE);
    assert_true(diag_has(ctx, "unknown pass 'nope'"));
    assert_true(diag_has(ctx, "valid passes: shape_infer, fold, fuse, qdq_fuse"));
    /* print_after names are checked too, before anything runs */
    pass_pipeline_opts o = {.print_after = "fold,bogus", .print = on_print};
    assert_int_equal(pass_run_pipeline(m, "fold", &o, ctx), OCT_EUSAGE);
    assert_true(diag_has(ctx, "unknown pass 'bogus' in --print-after"));
    oct_ctx_free(ctx);
}

static void print_after_and_timing_callbacks(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    ir_model *m = parse(ctx, model_text);
    seen s = {0};
    pass_pipeline_opts o = {.print_after = "fold", .print = on_print,
                            .print_user = &s, .time = on_time, .time_user = &s};
    assert_int_equal(pass_run_pipeline(m, " shape_infer , fold,shape_infer", &o, ctx),
                     OCT_OK);
    assert_string_equal(s.passes, "fold;");
    assert_int_equal(s.n_time, 3);
    /* printing asked for without a callback is a usage error */
    pass_pipeline_opts bad = {.print_after_all = true};
    assert_int_equal(pass_run_pipeline(m, "fold", &bad, ctx), OCT_EUSAGE);
    oct_ctx_free(ctx);
}

static void registry_columns(void **state)
{
    (void)state;
    size_t n;
    const pass_info *reg = pass_registry(&n);
    assert_int_equal(n, 17);
    char buf[64];
    assert_string_equal(pass_analysis_names(pass_find("fuse")->requires, buf, sizeof buf),
                        "shapes");
    assert_string_equal(pass_analysis_names(pass_find("qdq_fuse")->preserves, buf,
                                            sizeof buf), "-");
    /* mnb_unpack keeps every value's type and gives its new values theirs */
    assert_string_equal(pass_analysis_names(pass_find("mnb_unpack")->requires, buf, sizeof buf),
                        "-");
    assert_string_equal(pass_analysis_names(pass_find("mnb_unpack")->preserves, buf,
                                            sizeof buf), "shapes");
    /* dqmm_expand infers the types of the values it adds */
    assert_string_equal(pass_analysis_names(pass_find("dqmm_expand")->preserves, buf,
                                            sizeof buf), "shapes");
    /* the transformer pattern passes read and keep every value's type */
    static const char *const fusions[] = {"fuse_rmsnorm", "fuse_rotary", "fuse_attention",
                                          "fuse_gelu"};
    for (size_t i = 0; i < sizeof fusions / sizeof fusions[0]; i++) {
        assert_non_null(pass_find(fusions[i]));
        assert_string_equal(pass_analysis_names(pass_find(fusions[i])->requires, buf,
                                                sizeof buf), "shapes");
        assert_string_equal(pass_analysis_names(pass_find(fusions[i])->preserves, buf,
                                                sizeof buf), "shapes");
    }
    assert_non_null(reg[0].summary);
}

/* ---- parser -------------------------------------------------------------- */

static char *print_full(const ir_model *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    ir_print_text_opts(m, mem, &(ir_print_opts){.full = true});
    fclose(mem);
    return buf;
}

static void parse_then_print_gives_the_text(void **state)
{
    (void)state;
    static const char text[] =
        "octet-ir 1\n"
        "model ir_version=8 producer_name=\"t\" producer_version=\"\" domain=\"\"\n"
        "opset \"\"=13\n"
        "graph g\n"
        "input x: f32[N,3]\n"
        "output y: f32[N,3]\n"
        "init b: f32[3] raw #bbccc8e93dbaf55a = [1.0, 2.0, 3.0]\n"
        "node Add add (x: f32[N,3], b: f32[3]) -> (y: f32[N,3])\n";
    oct_ctx *ctx = oct_ctx_new();
    ir_model *m = parse(ctx, text);
    char *out = print_full(m);
    assert_string_equal(out, text);
    free(out);
    oct_ctx_free(ctx);
}

static void expect_parse_error(const char *text, oct_limits *lim, const char *needle)
{
    oct_ctx *ctx = oct_ctx_new();
    if (lim)
        *oct_ctx_limits(ctx) = *lim;
    ir_model *m = NULL;
    assert_int_not_equal(ir_parse_text(ctx, text, strlen(text), "t.txt", &m), OCT_OK);
    if (!diag_has(ctx, needle)) {
        char buf[1024];
        for (size_t i = 0; i < oct_diag_count(ctx); i++) {
            oct_diag_format(oct_diag_get(ctx, i), buf, sizeof buf);
            fprintf(stderr, "got: %s\n", buf);
        }
        fail_msg("no diagnostic with '%s'", needle);
    }
    oct_ctx_free(ctx);
}

static void parser_errors_name_line_and_column(void **state)
{
    (void)state;
    static const char head[] =
        "octet-ir 1\n"
        "model ir_version=8 producer_name=\"t\" producer_version=\"\" domain=\"\"\n"
        "graph g\n";
    char text[1024];
    snprintf(text, sizeof text, "%sinput x: f32[2,3\n", head);
    expect_parse_error(text, NULL, "t.txt:4:17: error: expected ']'");
    snprintf(text, sizeof text, "%sinput x: q32[2]\n", head);
    expect_parse_error(text, NULL, "t.txt:4:10: error: unknown element type 'q32'");
    snprintf(text, sizeof text, "%sinit w: u8[2] raw = [1, 256]\n", head);
    expect_parse_error(text, NULL, "t.txt:4:25: error: '256' is not a u8 value");
    snprintf(text, sizeof text, "%sinit w: f32[3] raw = [1.0]\n", head);
    expect_parse_error(text, NULL, "holds 3 values, the text gives 1");
    snprintf(text, sizeof text, "%snode A a (x) -> (y) {g=<graph 3 bytes #0011223344556677>}\n", head);
    expect_parse_error(text, NULL, "attribute 'g' is opaque");
    snprintf(text, sizeof text, "%sfunction <function 3 bytes #0011223344556677>\n", head);
    expect_parse_error(text, NULL, "t.txt:4:1: error: 'function' is printed as a size");
    expect_parse_error("octet-ir 2\n", NULL, "first line must be 'octet-ir 1'");
    snprintf(text, sizeof text, "%snode A a (x) -> (y)\nnode A b (y) -> (z)\n", head);
    oct_limits lim = oct_default_limits();
    lim.max_nodes = 1;
    expect_parse_error(text, &lim, "2 nodes, over the limit of 1");
    lim = oct_default_limits();
    lim.max_rank = 2;
    snprintf(text, sizeof text, "%sinput x: f32[1,2,3]\n", head);
    expect_parse_error(text, &lim, "rank above the limit of 2");
    lim = oct_default_limits();
    lim.max_tensor_elems = 5;
    snprintf(text, sizeof text, "%sinit w: u8[2,3] raw = x\"000000000000\"\n", head);
    expect_parse_error(text, &lim, "more than 5 elements");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verify_each_names_the_broken_pass),
        cmocka_unit_test(without_verify_each_the_break_goes_unnoticed),
        cmocka_unit_test(unknown_pass_lists_valid_names),
        cmocka_unit_test(print_after_and_timing_callbacks),
        cmocka_unit_test(registry_columns),
        cmocka_unit_test(parse_then_print_gives_the_text),
        cmocka_unit_test(parser_errors_name_line_and_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
