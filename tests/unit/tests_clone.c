/*
 * tests_clone.c: ir_model_clone and the context's evaluation engine.
 *
 * A model loaded from an ONNX file is cloned into another context; the
 * clone must print (ir_print_text, which shows every node, value, type,
 * attribute and a hash of every tensor's bytes) exactly as the original,
 * keep printing so after the original's context is freed (no shared
 * memory), and a mutation of the clone must leave the original unchanged.
 * A pass that evaluates nodes (fold) in a context without an engine must
 * return OCT_EINTERNAL with a diagnostic rather than crash.
 *
 * argv[1] is the shared models folder; without it the tests skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/passes.h"

static const char *models_dir;

/* ir_print_text of m as a malloc'ed string. */
static char *text_of(const ir_model *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ir_print_text(m, f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* Skips the test unless models_dir/<name>/model.onnx exists.  Called
 * before the test allocates anything: skip() leaves the test at once. */
static void need_model(const char *name)
{
    char path[4096];
    struct stat sb;
    if (!models_dir)
        skip();
    snprintf(path, sizeof path, "%s/%s/model.onnx", models_dir, name);
    if (stat(path, &sb) != 0) {
        print_message("%s missing: skipped\n", path);
        skip();
    }
}

/* Loads models_dir/<name>/model.onnx (need_model checked it) into ctx. */
static ir_model *load(oct_ctx *ctx, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/model.onnx", models_dir, name);
    fe_load_opts lo = {.allow_external_data = false};
    ir_model *m = NULL;
    assert_int_equal(fe_load_file(ctx, path, &lo, &m), OCT_OK);
    return m;
}

static void check_clone_of(const char *name)
{
    need_model(name);
    oct_ctx *a = ir_ctx_new(), *b = ir_ctx_new();
    assert_non_null(a);
    assert_non_null(b);
    ir_model *orig = load(a, name);
    char *before = text_of(orig);

    ir_model *same = NULL, *mut = NULL;
    assert_int_equal(ir_model_clone(b, orig, &same), OCT_OK);
    assert_int_equal(ir_model_clone(b, orig, &mut), OCT_OK);
    char *copied = text_of(same);
    assert_string_equal(copied, before);
    assert_int_equal(ir_verify(same, b), OCT_OK);
    assert_int_equal(same->graph->n_values, orig->graph->n_values);
    for (size_t i = 0; i < orig->graph->n_values; i++)
        assert_ptr_not_equal(same->graph->values[i], orig->graph->values[i]);
    /* name lookup works in the copy and finds the copy's own values */
    const ir_value *out0 = orig->graph->outputs[0];
    assert_ptr_equal(ir_graph_find(same->graph, out0->name),
                     same->graph->values[out0->id]);

    /* mutate the clone: a node name, an initializer byte, an attribute, a
     * value's dim, the model's producer */
    ir_graph *g = mut->graph;
    g->nodes[0]->name = "renamed_by_test";
    bool changed_init = false;
    for (size_t i = 0; i < g->n_inits && !changed_init; i++) {
        ir_tensor *t = g->inits[i]->init;
        if (t && t->nbytes && t->dtype != IR_DT_STRING) {
            ((uint8_t *)t->data)[0] ^= 0xff;
            changed_init = true;
        }
    }
    assert_true(changed_init);
    for (size_t k = 0; k < g->n_nodes; k++)
        for (int j = 0; j < g->nodes[k]->n_attr; j++) {
            ir_attr *at = &g->nodes[k]->attrs[j];
            if (at->type == IR_ATTR_INTS && at->n)
                at->ints[0] += 7;
            else if (at->type == IR_ATTR_INT)
                at->i += 7;
        }
    for (size_t i = 0; i < g->n_values; i++)
        if (g->values[i]->type.rank > 0 && g->values[i]->type.dims)
            g->values[i]->type.dims[0].value = 12345;
    mut->producer_name = "mutated";

    char *mutated = text_of(mut);
    assert_string_not_equal(mutated, before);
    char *after = text_of(orig);
    assert_string_equal(after, before);

    /* the unmutated copy owns all its memory */
    oct_ctx_free(a);
    char *alone = text_of(same);
    assert_string_equal(alone, before);

    free(before);
    free(copied);
    free(mutated);
    free(after);
    free(alone);
    oct_ctx_free(b);
}

static void clone_of_mnist8_prints_identically_and_is_independent(void **state)
{
    check_clone_of("mnist-8");
}

static void clone_of_squeezenet_prints_identically_and_is_independent(void **state)
{
    check_clone_of("squeezenet1.1");
}

static void fold_without_engine_is_a_diagnostic(void **state)
{
    /* mnist-8 reshapes a weight initializer with a constant shape: fold
     * must evaluate that node */
    need_model("mnist-8");
    oct_ctx *ctx = ir_ctx_new();
    assert_non_null(ctx);
    ir_model *m = load(ctx, "mnist-8");
    assert_null(ctx->engine);
    assert_int_equal(pass_run_list(m, "fold", ctx), OCT_EINTERNAL);
    bool named = false;
    for (size_t i = 0; i < oct_diag_count(ctx); i++)
        named |= strstr(oct_diag_get(ctx, i)->message, "evaluation engine") != NULL;
    assert_true(named);
    oct_ctx_free(ctx);

    /* the public constructor installs the interpreter: the same pass runs */
    ctx = oct_ctx_new();
    assert_non_null(ctx);
    assert_non_null(ctx->engine);
    m = load(ctx, "mnist-8");
    assert_int_equal(pass_run_list(m, "fold", ctx), OCT_OK);
    oct_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    models_dir = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clone_of_mnist8_prints_identically_and_is_independent),
        cmocka_unit_test(clone_of_squeezenet_prints_identically_and_is_independent),
        cmocka_unit_test(fold_without_engine_is_a_diagnostic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
