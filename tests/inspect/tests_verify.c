/*
 * tests_verify.c: unit tests of the IR verifier (verify.c) and the text
 * printer (print.c) on graphs built by hand with graph.c's API.  Expected
 * diagnostics follow the invariants listed in verify.c; the expected text of
 * the printer test was written by hand from the format in print.c (its two
 * hashes were computed independently with Python's struct module and a
 * four-line FNV-1a).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ir/ir.h"

/* ---- building graphs ------------------------------------------------------ */

typedef struct fixture {
    oct_ctx *ctx;
    ir_model *m;
    ir_graph *g;
} fixture;

static fixture fx_new(void)
{
    fixture f;
    f.ctx = oct_ctx_new();
    f.m = ir_model_new(f.ctx);
    f.g = ir_graph_new(f.ctx);
    assert_non_null(f.m);
    assert_non_null(f.g);
    f.m->graph = f.g;
    f.g->inputs = ir_alloc_array(f.ctx, 8, sizeof(ir_value *));
    f.g->outputs = ir_alloc_array(f.ctx, 8, sizeof(ir_value *));
    f.g->inits = ir_alloc_array(f.ctx, 8, sizeof(ir_value *));
    return f;
}

static ir_value *input(fixture *f, const char *name)
{
    ir_value *v = ir_graph_value(f->ctx, f->g, name);
    v->flags |= IR_VAL_INPUT;
    f->g->inputs[f->g->n_inputs++] = v;
    return v;
}

static ir_value *output(fixture *f, const char *name)
{
    ir_value *v = ir_graph_value(f->ctx, f->g, name);
    v->flags |= IR_VAL_OUTPUT;
    f->g->outputs[f->g->n_outputs++] = v;
    return v;
}

/* An initializer of FLOAT elements; nbytes may be made inconsistent. */
static ir_value *init_f32(fixture *f, const char *name, int rank,
                          const int64_t *dims, const float *vals,
                          uint64_t nelems, uint64_t nbytes)
{
    ir_value *v = ir_graph_value(f->ctx, f->g, name);
    ir_tensor *t = ir_alloc(f->ctx, sizeof *t);
    t->name = v->name;
    t->dtype = IR_DT_FLOAT;
    t->rank = rank;
    t->dims = ir_alloc_array(f->ctx, (size_t)rank + 1, sizeof *t->dims);
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->nelems = nelems;
    t->nbytes = nbytes;
    t->data = ir_alloc(f->ctx, nbytes + 1);
    if (vals)
        memcpy(t->data, vals, nbytes);
    t->storage = IR_STORE_RAW;
    v->init = t;
    f->g->inits[f->g->n_inits++] = v;
    return v;
}

/* Adds a node; names in `ins`/`outs` are values ("" = omitted input). */
static ir_node *node(fixture *f, const char *op, const char *domain,
                     const char *name, int n_in, const char *const *ins,
                     int n_out, const char *const *outs)
{
    ir_node *n = ir_graph_add_node(f->ctx, f->g, op, domain, name, n_in, n_out);
    assert_non_null(n);
    for (int i = 0; i < n_in; i++)
        n->in[i] = *ins[i] ? ir_graph_value(f->ctx, f->g, ins[i]) : NULL;
    for (int i = 0; i < n_out; i++)
        ir_node_set_output(n, i, ir_graph_value(f->ctx, f->g, outs[i]));
    return n;
}

#define IN(...) (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)), \
                (const char *[]){__VA_ARGS__}
#define OUT IN

static ir_attr *add_attrs(fixture *f, ir_node *n, int count)
{
    n->attrs = ir_alloc_array(f->ctx, (size_t)count, sizeof *n->attrs);
    n->n_attr = count;
    return n->attrs;
}

static void set_type(fixture *f, ir_value *v, int dtype, int rank,
                     const int64_t *dims, const char *const *params)
{
    v->has_type = true;
    v->type.has_elem_type = true;
    v->type.dtype = dtype;
    v->type.rank = rank;
    v->type.dims = ir_alloc_array(f->ctx, (size_t)rank + 1, sizeof(ir_dim));
    for (int i = 0; i < rank; i++) {
        v->type.dims[i].value = dims[i];
        v->type.dims[i].param = params && params[i] ? params[i] : NULL;
    }
}

/* Number of diagnostics of `sev` whose message contains `text`. */
static int count_diags(const oct_ctx *ctx, oct_severity sev, const char *text)
{
    int n = 0;
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        const oct_diag *d = oct_diag_get(ctx, i);
        if (d->severity == sev && d->message && strstr(d->message, text))
            n++;
    }
    return n;
}

static const oct_diag *find_diag(const oct_ctx *ctx, const char *text)
{
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        const oct_diag *d = oct_diag_get(ctx, i);
        if (d->message && strstr(d->message, text))
            return d;
    }
    return NULL;
}

/* ---- verifier ------------------------------------------------------------- */

static void verify_accepts_a_valid_graph(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    node(&f, "Relu", "", "r", IN("x"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_OK);
    assert_int_equal(oct_diag_count(f.ctx), 0);
    oct_ctx_free(f.ctx);
}

static void verify_reports_a_cycle_on_a_node_of_the_cycle(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    ir_node *head = node(&f, "Relu", "", "head", IN("x"), OUT("h"));
    ir_node *a = node(&f, "Add", "", "a", IN("h", "c"), OUT("b"));
    ir_node *b = node(&f, "Relu", "", "b", IN("b"), OUT("c"));
    ir_node *tail = node(&f, "Relu", "", "tail", IN("c"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    const oct_diag *d = find_diag(f.ctx, "cycle");
    assert_non_null(d);
    assert_int_equal(d->severity, OCT_SEV_ERROR);
    assert_non_null(d->node);
    /* head feeds the cycle and tail hangs off it: neither is on it */
    assert_true(!strcmp(d->node, "a") || !strcmp(d->node, "b"));
    assert_non_null(strstr(d->message, "'a'"));
    assert_non_null(strstr(d->message, "'b'"));
    assert_null(strstr(d->message, "'tail'"));
    assert_null(strstr(d->message, "'head'"));
    /* no reordering on a cycle */
    assert_ptr_equal(f.g->nodes[0], head);
    assert_ptr_equal(f.g->nodes[1], a);
    assert_ptr_equal(f.g->nodes[2], b);
    assert_ptr_equal(f.g->nodes[3], tail);
    oct_ctx_free(f.ctx);
}

static void verify_reports_a_self_loop_as_a_cycle(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    node(&f, "Add", "", "loop", IN("x", "s"), OUT("s"));
    output(&f, "s");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    const oct_diag *d = find_diag(f.ctx, "cycle");
    assert_non_null(d);
    assert_string_equal(d->node, "loop");
    oct_ctx_free(f.ctx);
}

static void verify_reports_dangling_input_with_node_and_index(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    node(&f, "Add", "", "add1", IN("x", "ghost"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    const oct_diag *d = find_diag(f.ctx, "not defined");
    assert_non_null(d);
    assert_int_equal(d->severity, OCT_SEV_ERROR);
    assert_string_equal(d->node, "add1");
    assert_string_equal(d->op_type, "Add");
    assert_int_equal(d->io_is_output, 0);
    assert_int_equal(d->io_index, 1);
    assert_string_equal(d->tensor, "ghost");
    char buf[512];
    oct_diag_format(d, buf, sizeof buf);
    assert_non_null(strstr(buf, "node 'add1' (Add) input 1 'ghost'"));
    oct_ctx_free(f.ctx);
}

static void verify_reports_value_produced_by_two_nodes(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    node(&f, "Relu", "", "first", IN("x"), OUT("y"));
    node(&f, "Sigmoid", "", "second", IN("x"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    assert_int_equal(count_diags(f.ctx, OCT_SEV_ERROR,
                                 "duplicate definition of 'y'"), 1);
    const oct_diag *d = find_diag(f.ctx, "duplicate definition");
    assert_string_equal(d->node, "second");
    assert_non_null(strstr(d->message, "'first'"));
    oct_ctx_free(f.ctx);
}

static void verify_reports_node_output_that_is_a_graph_input(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    input(&f, "y");
    node(&f, "Relu", "", "r", IN("x"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    assert_int_equal(count_diags(f.ctx, OCT_SEV_ERROR,
                                 "duplicate definition of 'y'"), 1);
    oct_ctx_free(f.ctx);
}

static void verify_accepts_graph_input_that_is_also_initializer(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    input(&f, "w");
    const int64_t dims[] = {2};
    const float vals[] = {1, 2};
    init_f32(&f, "w", 1, dims, vals, 2, 8);
    node(&f, "Add", "", "add", IN("x", "w"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_OK);
    assert_int_equal(oct_error_count(f.ctx), 0);
    oct_ctx_free(f.ctx);
}

static void verify_reports_every_violation_not_just_the_first(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    node(&f, "Add", "", "a1", IN("x", "ghost1"), OUT("y"));
    node(&f, "Relu", "", "a2", IN("ghost2"), OUT("y"));
    output(&f, "missing_out");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    assert_int_equal(count_diags(f.ctx, OCT_SEV_ERROR, "'ghost1' is not defined"), 1);
    assert_int_equal(count_diags(f.ctx, OCT_SEV_ERROR, "'ghost2' is not defined"), 1);
    assert_int_equal(count_diags(f.ctx, OCT_SEV_ERROR, "duplicate definition of 'y'"), 1);
    assert_int_equal(count_diags(f.ctx, OCT_SEV_ERROR,
                                 "graph output 'missing_out' is not defined"), 1);
    assert_int_equal(oct_error_count(f.ctx), 4);
    oct_ctx_free(f.ctx);
}

static void verify_rejects_attribute_of_wrong_type(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    input(&f, "w");
    ir_node *n = node(&f, "Conv", "", "conv", IN("x", "w"), OUT("y"));
    ir_attr *a = add_attrs(&f, n, 1);
    a[0].name = "group";
    a[0].type = IR_ATTR_FLOAT; /* Conv's group is an INT */
    a[0].f = 1.0f;
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    const oct_diag *d = find_diag(f.ctx, "attribute 'group'");
    assert_non_null(d);
    assert_int_equal(d->severity, OCT_SEV_ERROR);
    assert_string_equal(d->node, "conv");
    assert_non_null(strstr(d->message, "FLOAT"));
    assert_non_null(strstr(d->message, "expected INT"));
    oct_ctx_free(f.ctx);
}

static void verify_unknown_attribute_is_only_a_warning(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    ir_node *n = node(&f, "Relu", "", "r", IN("x"), OUT("y"));
    ir_attr *a = add_attrs(&f, n, 1);
    a[0].name = "flavour";
    a[0].type = IR_ATTR_INT;
    a[0].i = 3;
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_OK);
    assert_int_equal(oct_error_count(f.ctx), 0);
    assert_int_equal(count_diags(f.ctx, OCT_SEV_WARNING,
                                 "unknown attribute 'flavour'"), 1);
    oct_ctx_free(f.ctx);
}

static void verify_rejects_duplicate_attribute_names(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    ir_node *n = node(&f, "Softmax", "", "sm", IN("x"), OUT("y"));
    ir_attr *a = add_attrs(&f, n, 2);
    a[0].name = "axis", a[0].type = IR_ATTR_INT, a[0].i = 1;
    a[1].name = "axis", a[1].type = IR_ATTR_INT, a[1].i = -1;
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    assert_int_equal(count_diags(f.ctx, OCT_SEV_ERROR,
                                 "duplicate attribute 'axis'"), 1);
    oct_ctx_free(f.ctx);
}

static void verify_checks_arity_of_known_ops_only(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    node(&f, "Relu", "", "r2", IN("x", "x"), OUT("y")); /* Relu takes 1 */
    node(&f, "Conv", "", "c", IN("x", ""), OUT("z"));   /* W is required */
    ir_node *custom = node(&f, "Whatever", "com.example", "cu",
                           IN("x", "x", "x", "x", "x"), OUT("u", "v"));
    ir_attr *a = add_attrs(&f, custom, 1);
    a[0].name = "anything", a[0].type = IR_ATTR_STRING;
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    const oct_diag *d = find_diag(f.ctx, "2 inputs, but Relu takes 1 to 1");
    assert_non_null(d);
    assert_string_equal(d->node, "r2");
    d = find_diag(f.ctx, "required input 1 is empty");
    assert_non_null(d);
    assert_string_equal(d->node, "c");
    assert_int_equal(d->io_index, 1);
    assert_int_equal(oct_error_count(f.ctx), 2);
    assert_int_equal(oct_diag_count(f.ctx), 2); /* no warning for "anything" */
    oct_ctx_free(f.ctx);
}

static void verify_sorts_unsorted_graph_topologically_and_stably(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    /* file order: join (needs p, q), q, p: independent q and p keep their
     * relative file order, join moves after both */
    ir_node *join = node(&f, "Add", "", "join", IN("p", "q"), OUT("y"));
    ir_node *q = node(&f, "Sigmoid", "", "q", IN("x"), OUT("q"));
    ir_node *p = node(&f, "Relu", "", "p", IN("x"), OUT("p"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_OK);
    assert_ptr_equal(f.g->nodes[0], q);
    assert_ptr_equal(f.g->nodes[1], p);
    assert_ptr_equal(f.g->nodes[2], join);
    assert_int_equal(q->id, 0);
    assert_int_equal(p->id, 1);
    assert_int_equal(join->id, 2);
    oct_ctx_free(f.ctx);
}

static void verify_keeps_file_order_of_a_sorted_graph(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    ir_node *n[5];
    n[0] = node(&f, "Relu", "", "n0", IN("x"), OUT("a"));
    n[1] = node(&f, "Relu", "", "n1", IN("x"), OUT("b")); /* independent of n0 */
    n[2] = node(&f, "Add", "", "n2", IN("b", "a"), OUT("c"));
    n[3] = node(&f, "Relu", "", "n3", IN("x"), OUT("d"));
    n[4] = node(&f, "Add", "", "n4", IN("c", "d"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_OK);
    for (int i = 0; i < 5; i++)
        assert_ptr_equal(f.g->nodes[i], n[i]);
    oct_ctx_free(f.ctx);
}

static void verify_reports_initializer_size_mismatch(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    const int64_t dims[] = {2, 3};
    init_f32(&f, "w", 2, dims, NULL, 6, 20); /* FLOAT[2,3] needs 24 bytes */
    node(&f, "Add", "", "add", IN("x", "w"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    const oct_diag *d = find_diag(f.ctx, "initializer 'w'");
    assert_non_null(d);
    assert_int_equal(d->severity, OCT_SEV_ERROR);
    assert_non_null(strstr(d->message, "20 bytes"));
    assert_non_null(strstr(d->message, "needs 24"));
    oct_ctx_free(f.ctx);
}

static void verify_reports_initializer_shape_overflow(void **state)
{
    fixture f = fx_new();
    input(&f, "x");
    const int64_t dims[] = {INT64_MAX, 4};
    init_f32(&f, "huge", 2, dims, NULL, 0, 0);
    node(&f, "Add", "", "add", IN("x", "huge"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    assert_int_equal(count_diags(f.ctx, OCT_SEV_ERROR, "overflows"), 1);
    oct_ctx_free(f.ctx);
}

static void verify_reports_dimension_below_minus_one(void **state)
{
    fixture f = fx_new();
    ir_value *x = input(&f, "x");
    const int64_t dims[] = {1, -7};
    set_type(&f, x, IR_DT_FLOAT, 2, dims, NULL);
    node(&f, "Relu", "", "r", IN("x"), OUT("y"));
    output(&f, "y");
    assert_int_equal(ir_verify(f.m, f.ctx), OCT_EINPUT);
    const oct_diag *d = find_diag(f.ctx, "dimension 1 is -7");
    assert_non_null(d);
    assert_string_equal(d->tensor, "x");
    oct_ctx_free(f.ctx);
}

static void verify_fails_cleanly_at_every_allocation(void **state)
{
    /* Fails the verifier's 1st, 2nd, ... allocation in turn: each failure
     * returns OCT_EINTERNAL and leaves the node order alone; then a run with
     * no failure sorts the graph. */
    for (uint64_t nth = 1;; nth++) {
        fixture f = fx_new();
        input(&f, "x");
        ir_node *join = node(&f, "Add", "", "join", IN("p", "x"), OUT("y"));
        ir_node *p = node(&f, "Relu", "", "p", IN("x"), OUT("p"));
        output(&f, "y");
        uint64_t live = f.ctx->bytes_live;
        oct_ctx_fail_alloc_at(f.ctx, nth);
        oct_status st = ir_verify(f.m, f.ctx);
        assert_int_equal(f.ctx->bytes_live, live); /* scratch memory freed */
        if (st == OCT_OK) {
            assert_true(nth > 2); /* at least the two per-value tables */
            assert_ptr_equal(f.g->nodes[0], p);
            oct_ctx_free(f.ctx);
            break;
        }
        assert_int_equal(st, OCT_EINTERNAL);
        assert_ptr_equal(f.g->nodes[0], join);
        oct_ctx_free(f.ctx);
        assert_true(nth < 100);
    }
}

/* ---- text printer --------------------------------------------------------- */

static void text_printer_matches_hand_written_form(void **state)
{
    fixture f = fx_new();
    f.m->ir_version = 8;
    f.m->producer_name = "hand";
    f.m->producer_version = "0.1";
    f.m->opsets = ir_alloc_array(f.ctx, 2, sizeof(ir_opset));
    f.m->opsets[0] = (ir_opset){"", 13};
    f.m->opsets[1] = (ir_opset){"com.example", 1};
    f.m->n_opsets = 2;
    f.g->name = "tiny";

    ir_value *x = input(&f, "x");
    const int64_t xdims[] = {-1, 4};
    const char *const xparams[] = {"N", NULL};
    set_type(&f, x, IR_DT_FLOAT, 2, xdims, xparams);
    ir_value *z = output(&f, "z");
    const int64_t zdims[] = {-1, 4};
    set_type(&f, z, IR_DT_FLOAT, 2, zdims, NULL);
    const int64_t wdims[] = {4};
    const float wvals[] = {1.0f, 2.5f, -3.0f, 0.1f};
    init_f32(&f, "w", 1, wdims, wvals, 4, 16);

    node(&f, "Mul", "", "scale", IN("x", "w"), OUT("y"));
    ir_node *n = node(&f, "Fancy", "com.example", "odd \"name\"", IN("y", ""),
                      OUT("z"));
    ir_attr *a = add_attrs(&f, n, 5);
    a[0].name = "alpha", a[0].type = IR_ATTR_FLOAT, a[0].f = 0.1f;
    static int64_t ks[] = {3, 3};
    a[1].name = "ks", a[1].type = IR_ATTR_INTS, a[1].ints = ks, a[1].n = 2;
    a[2].name = "mode", a[2].type = IR_ATTR_STRING;
    a[2].s = (ir_blob){(uint8_t *)"a\nb", 3};
    a[3].name = "empty", a[3].type = IR_ATTR_FLOATS;
    static int64_t tdims[] = {2};
    static int64_t tvals[] = {1, -2};
    static ir_tensor t = {.name = "", .dtype = IR_DT_INT64, .rank = 1,
                          .dims = tdims, .data = tvals, .nbytes = 16,
                          .nelems = 2, .storage = IR_STORE_RAW};
    a[4].name = "t", a[4].type = IR_ATTR_TENSOR, a[4].t = &t;

    assert_int_equal(ir_verify(f.m, f.ctx), OCT_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    ir_print_text(f.m, mem);
    fclose(mem);
    const char *expected =
        "octet-ir 1\n"
        "model ir_version=8 producer_name=\"hand\" producer_version=\"0.1\" domain=\"\"\n"
        "opset \"\"=13\n"
        "opset \"com.example\"=1\n"
        "graph tiny\n"
        "input x: f32[N,4]\n"
        "output z: f32[?,4]\n"
        "init w: f32[4] raw #bc57e83e0d4176b8 = [1.0, 2.5, -3.0, 0.100000001]\n"
        "node Mul scale (x: f32[N,4], w: f32[4]) -> (y)\n"
        "node Fancy@com.example \"odd \\\"name\\\"\" (y, \"\") -> (z: f32[?,4]) "
        "{alpha=0.100000001, ks=[3, 3], mode=\"a\\nb\", empty=floats[], "
        "t=tensor(i64[2] raw #b0f5cc5b55da989b = [1, -2])}\n";
    assert_string_equal(buf, expected);
    free(buf);
    oct_ctx_free(f.ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verify_accepts_a_valid_graph),
        cmocka_unit_test(verify_reports_a_cycle_on_a_node_of_the_cycle),
        cmocka_unit_test(verify_reports_a_self_loop_as_a_cycle),
        cmocka_unit_test(verify_reports_dangling_input_with_node_and_index),
        cmocka_unit_test(verify_reports_value_produced_by_two_nodes),
        cmocka_unit_test(verify_reports_node_output_that_is_a_graph_input),
        cmocka_unit_test(verify_accepts_graph_input_that_is_also_initializer),
        cmocka_unit_test(verify_reports_every_violation_not_just_the_first),
        cmocka_unit_test(verify_rejects_attribute_of_wrong_type),
        cmocka_unit_test(verify_unknown_attribute_is_only_a_warning),
        cmocka_unit_test(verify_rejects_duplicate_attribute_names),
        cmocka_unit_test(verify_checks_arity_of_known_ops_only),
        cmocka_unit_test(verify_sorts_unsorted_graph_topologically_and_stably),
        cmocka_unit_test(verify_keeps_file_order_of_a_sorted_graph),
        cmocka_unit_test(verify_reports_initializer_size_mismatch),
        cmocka_unit_test(verify_reports_initializer_shape_overflow),
        cmocka_unit_test(verify_reports_dimension_below_minus_one),
        cmocka_unit_test(verify_fails_cleanly_at_every_allocation),
        cmocka_unit_test(text_printer_matches_hand_written_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
