/*
 * tests_ref_eltwise.c: unit tests of the reference shape rules and kernels
 * of the element-wise families (binary, variadic, where, unary, clip),
 * cast, pad, resize and LRN, and of the shared helpers in util.c.  Each
 * node is built by hand and evaluated with ref_eval_node; expected values
 * come from the ONNX spec by hand calculation or from numpy / the onnx
 * reference evaluator (noted where used).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ref/dispatch.h"

typedef struct fixture {
    oct_ctx *ctx;
    ir_graph *g;
    ir_tensor *heap[64];   /* runtime tensors to free at teardown */
    int n_heap;
} fixture;

/* Keeps a heap tensor for teardown to free (the suite runs under LSan). */
static ir_tensor *track(fixture *f, ir_tensor *t)
{
    if (t && f->n_heap < 64)
        f->heap[f->n_heap++] = t;
    return t;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->ctx = oct_ctx_new();
    f->g = ir_graph_new(f->ctx);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < f->n_heap; i++)
        ir_heap_tensor_free(f->ctx, f->heap[i]);
    oct_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* A node of op_type with inputs named a, b, c, d (NULL entries where
 * names[i] is "") and one output y. */
static ir_node *mk_node(fixture *f, const char *op_type, int n_in, const char *const *names)
{
    static int counter;
    char name[32];
    snprintf(name, sizeof name, "n%d", counter++);
    ir_node *n = ir_graph_add_node(f->ctx, f->g, op_type, "", name, n_in, 1);
    for (int i = 0; i < n_in; i++) {
        const char *vn = names ? names[i] : (const char *[]){"a", "b", "c", "d"}[i];
        n->in[i] = *vn ? ir_graph_value(f->ctx, f->g, vn) : NULL;
    }
    ir_node_set_output(n, 0, ir_graph_value(f->ctx, f->g, ir_sprintf(f->ctx, "y_%s", name)));
    return n;
}

static ir_attr *add_attr(fixture *f, ir_node *n, const char *name, ir_attr_type t)
{
    ir_attr *attrs = ir_alloc_array(f->ctx, (size_t)n->n_attr + 1, sizeof *attrs);
    if (n->n_attr)
        memcpy(attrs, n->attrs, (size_t)n->n_attr * sizeof *attrs);
    n->attrs = attrs;
    ir_attr *a = &attrs[n->n_attr++];
    a->name = name;
    a->type = t;
    return a;
}

static void attr_i(fixture *f, ir_node *n, const char *name, int64_t v)
{
    add_attr(f, n, name, IR_ATTR_INT)->i = v;
}

static void attr_f(fixture *f, ir_node *n, const char *name, float v)
{
    add_attr(f, n, name, IR_ATTR_FLOAT)->f = v;
}

static void attr_s(fixture *f, ir_node *n, const char *name, const char *v)
{
    ir_attr *a = add_attr(f, n, name, IR_ATTR_STRING);
    a->s.data = (uint8_t *)ir_strdup(f->ctx, v);
    a->s.len = strlen(v);
}

static void attr_is(fixture *f, ir_node *n, const char *name, int count, const int64_t *v)
{
    ir_attr *a = add_attr(f, n, name, IR_ATTR_INTS);
    a->ints = ir_alloc_array(f->ctx, (size_t)count, sizeof *a->ints);
    memcpy(a->ints, v, (size_t)count * sizeof *v);
    a->n = (size_t)count;
}

static ir_tensor *mk(fixture *f, ir_dtype dt, int rank, const int64_t *dims, const void *data)
{
    ir_tensor *t = track(f, ir_heap_tensor_new(f->ctx, dt, rank, dims));
    assert_non_null(t);
    if (t->nbytes)
        memcpy(t->data, data, t->nbytes);
    return t;
}

static ir_tensor *vec_f(fixture *f, int n, const float *v)
{
    int64_t d = n;
    return mk(f, IR_DT_FLOAT, 1, &d, v);
}

static ir_tensor *vec_i64(fixture *f, int n, const int64_t *v)
{
    int64_t d = n;
    return mk(f, IR_DT_INT64, 1, &d, v);
}

/* Evaluates n on inputs, asserting success; returns the output. */
static ir_tensor *eval_ok(fixture *f, ir_node *n, int64_t opset, const ir_tensor *const *in)
{
    ir_tensor *out[1] = {NULL};
    oct_status st = ref_eval_node(f->ctx, n, opset, in, out);
    if (st != OCT_OK) {
        for (size_t i = 0; i < oct_diag_count(f->ctx); i++)
            print_error("diag: %s\n", oct_diag_get(f->ctx, i)->message);
    }
    track(f, out[0]);
    assert_int_equal(st, OCT_OK);
    return out[0];
}

static void assert_floats(const ir_tensor *t, int n, const float *want, double tol)
{
    assert_int_equal(t->nelems, n);
    for (int i = 0; i < n; i++) {
        float got = ((const float *)t->data)[i];
        if (isnan(want[i])) {
            assert_true(isnan(got));
            continue;
        }
        if (fabs(got - want[i]) > tol * (1 + fabs(want[i]))) {
            print_error("element %d: got %.9g, want %.9g\n", i, got, want[i]);
            fail();
        }
    }
}

/* ---- util.c -------------------------------------------------------------- */

static void broadcast_resolves_unknown_dims(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Add", 2, NULL);
    ops_shape in[2] = {{.dtype = IR_DT_FLOAT, .rank = 2, .dims = {-1, 3}},
                       {.dtype = IR_DT_FLOAT, .rank = 3, .dims = {4, 1, -1}}};
    ops_infer inf = {.ctx = f->ctx, .node = n, .opset = 14, .n_in = 2, .in = in};
    ops_shape out;
    assert_true(ops_broadcast(&inf, &in[0], &in[1], &out));
    assert_int_equal(out.rank, 3);
    assert_int_equal(out.dims[0], 4);
    assert_int_equal(out.dims[1], -1); /* (-1, 1) */
    assert_int_equal(out.dims[2], 3);  /* (3, -1): the unknown must be 1 or 3 */
    in[1].rank = -1;
    assert_true(ops_broadcast(&inf, &in[0], &in[1], &out));
    assert_int_equal(out.rank, -1);
}

static void add_incompatible_shapes_report_input_1(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Add", 2, NULL);
    ops_shape in[2] = {{.dtype = IR_DT_FLOAT, .rank = 2, .dims = {2, 3}},
                       {.dtype = IR_DT_FLOAT, .rank = 1, .dims = {4}}};
    ops_shape out[1];
    const ir_tensor *consts[2] = {NULL, NULL};
    ops_infer inf = {.ctx = f->ctx, .node = n, .opset = 14, .n_in = 2, .in = in,
                     .in_const = consts, .n_out = 1, .out = out};
    assert_int_equal(ops_shape_binary(&inf), OCT_EINPUT);
    size_t nd = oct_diag_count(f->ctx);
    assert_true(nd >= 1);
    const oct_diag *d = oct_diag_get(f->ctx, nd - 1);
    assert_int_equal(d->io_index, 1);
    assert_int_equal(d->io_is_output, 0);
    assert_string_equal(d->tensor, "b");
}

static void norm_axis_and_const_ints(void **state)
{
    fixture *f = *state;
    int ax;
    assert_true(ops_norm_axis(-1, 4, &ax));
    assert_int_equal(ax, 3);
    assert_false(ops_norm_axis(4, 4, &ax));
    assert_false(ops_norm_axis(-5, 4, &ax));
    int32_t v32[3] = {5, -2, 7};
    int64_t d = 3, got[4];
    ir_tensor *t = mk(f, IR_DT_INT32, 1, &d, v32);
    assert_int_equal(ops_const_ints(t, got, 4), 3);
    assert_int_equal(got[1], -2);
    assert_int_equal(ops_const_ints(t, got, 2), -1);
    assert_int_equal(ops_const_ints(NULL, got, 2), -1);
}

/* ---- binary ---------------------------------------------------------------- */

static void add_broadcasts_row_over_matrix(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Add", 2, NULL);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30};
    int64_t da[2] = {2, 3};
    const ir_tensor *in[2] = {mk(f, IR_DT_FLOAT, 2, da, a), vec_f(f, 3, b)};
    ir_tensor *y = eval_ok(f, n, 14, in);
    assert_int_equal(y->rank, 2);
    assert_floats(y, 6, (const float[]){11, 22, 33, 14, 25, 36}, 0);
}

static void legacy_broadcast_aligns_b_at_axis(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Mul", 2, NULL);
    attr_i(f, n, "broadcast", 1);
    attr_i(f, n, "axis", 0);
    /* A [2,3] * B [2] along axis 0: row i scaled by B[i] (numpy would fail) */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {10, 100};
    int64_t da[2] = {2, 3};
    const ir_tensor *in[2] = {mk(f, IR_DT_FLOAT, 2, da, a), vec_f(f, 2, b)};
    ir_tensor *y = eval_ok(f, n, 6, in);
    assert_floats(y, 6, (const float[]){10, 20, 30, 400, 500, 600}, 0);
}

static void div_int32_truncates_toward_zero(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Div", 2, NULL);
    int32_t a[4] = {-7, 7, 7, -8}, b[4] = {2, -2, 2, -3};
    int64_t d = 4;
    const ir_tensor *in[2] = {mk(f, IR_DT_INT32, 1, &d, a), mk(f, IR_DT_INT32, 1, &d, b)};
    ir_tensor *y = eval_ok(f, n, 14, in);
    const int32_t *o = y->data;
    assert_int_equal(o[0], -3);
    assert_int_equal(o[1], -3);
    assert_int_equal(o[2], 3);
    assert_int_equal(o[3], 2);
}

static void add_int8_wraps_around(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Add", 2, NULL);
    int8_t a[2] = {127, -128}, b[2] = {1, -1};
    int64_t d = 2;
    const ir_tensor *in[2] = {mk(f, IR_DT_INT8, 1, &d, a), mk(f, IR_DT_INT8, 1, &d, b)};
    ir_tensor *y = eval_ok(f, n, 14, in);
    assert_int_equal(((int8_t *)y->data)[0], -128);
    assert_int_equal(((int8_t *)y->data)[1], 127);
}

static void pow_int_base_float_exponent_truncates(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Pow", 2, NULL);
    int32_t a[3] = {2, 3, 4};
    float b[3] = {0.5f, 2, 1.5f}; /* 1.414 -> 1, 9, 8 */
    int64_t d = 3;
    const ir_tensor *in[2] = {mk(f, IR_DT_INT32, 1, &d, a), vec_f(f, 3, b)};
    ir_tensor *y = eval_ok(f, n, 15, in);
    assert_int_equal(y->dtype, IR_DT_INT32);
    assert_int_equal(((int32_t *)y->data)[0], 1);
    assert_int_equal(((int32_t *)y->data)[1], 9);
    assert_int_equal(((int32_t *)y->data)[2], 8);
}

static void equal_outputs_bool(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Equal", 2, NULL);
    float a[3] = {1, 2, NAN}, b[1] = {2};
    const ir_tensor *in[2] = {vec_f(f, 3, a), vec_f(f, 1, b)};
    ir_tensor *y = eval_ok(f, n, 13, in);
    assert_int_equal(y->dtype, IR_DT_BOOL);
    const uint8_t *o = y->data;
    assert_int_equal(o[0], 0);
    assert_int_equal(o[1], 1);
    assert_int_equal(o[2], 0);
}

static void prelu_slope_broadcasts_per_channel(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "PRelu", 2, NULL);
    float x[4] = {-1, 2, -3, 4}, s[2] = {0.5f, 0.25f};
    int64_t dx[3] = {1, 2, 2}, ds[2] = {2, 1}; /* slope [C, 1] against (N, C, W) */
    const ir_tensor *in[2] = {mk(f, IR_DT_FLOAT, 3, dx, x), mk(f, IR_DT_FLOAT, 2, ds, s)};
    ir_tensor *y = eval_ok(f, n, 16, in);
    assert_floats(y, 4, (const float[]){-0.5f, 2, -0.75f, 4}, 0);
}

static void mod_sign_follows_divisor_unless_fmod(void **state)
{
    fixture *f = *state;
    int32_t a[2] = {-7, 7}, b[2] = {3, -3};
    int64_t d = 2;
    const ir_tensor *in[2] = {mk(f, IR_DT_INT32, 1, &d, a), mk(f, IR_DT_INT32, 1, &d, b)};
    ir_node *n = mk_node(f, "Mod", 2, NULL);
    ir_tensor *y = eval_ok(f, n, 13, in); /* Python: -7 % 3 == 2, 7 % -3 == -2 */
    assert_int_equal(((int32_t *)y->data)[0], 2);
    assert_int_equal(((int32_t *)y->data)[1], -2);
    attr_i(f, n, "fmod", 1);
    y = eval_ok(f, n, 13, in); /* C fmod: -1, 1 */
    assert_int_equal(((int32_t *)y->data)[0], -1);
    assert_int_equal(((int32_t *)y->data)[1], 1);
}

static void less_compares_uint64_unsigned(void **state)
{
    fixture *f = *state;
    uint64_t a[2] = {UINT64_C(0x8000000000000001), 1}, b[2] = {1, 2};
    int64_t d = 2;
    const ir_tensor *in[2] = {mk(f, IR_DT_UINT64, 1, &d, a), mk(f, IR_DT_UINT64, 1, &d, b)};
    ir_tensor *y = eval_ok(f, mk_node(f, "Less", 2, NULL), 13, in);
    assert_int_equal(y->dtype, IR_DT_BOOL);
    assert_int_equal(((uint8_t *)y->data)[0], 0);
    assert_int_equal(((uint8_t *)y->data)[1], 1);
}

/* ---- variadic, where --------------------------------------------------------- */

static void max_of_three_broadcasts_and_propagates_nan(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Max", 3, NULL);
    float a[2] = {1, NAN}, b[1] = {3}, c[4] = {0, 5, 2, 2};
    int64_t dc[2] = {2, 2};
    const ir_tensor *in[3] = {vec_f(f, 2, a), vec_f(f, 1, b), mk(f, IR_DT_FLOAT, 2, dc, c)};
    ir_tensor *y = eval_ok(f, n, 13, in);
    assert_floats(y, 4, (const float[]){3, NAN, 3, NAN}, 0);
}

static void min_uint32_compares_unsigned(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Min", 2, NULL);
    uint32_t a[2] = {4000000000u, 1}, b[2] = {5, 2};
    int64_t d = 2;
    const ir_tensor *in[2] = {mk(f, IR_DT_UINT32, 1, &d, a), mk(f, IR_DT_UINT32, 1, &d, b)};
    ir_tensor *y = eval_ok(f, n, 13, in);
    assert_int_equal(((uint32_t *)y->data)[0], 5);
    assert_int_equal(((uint32_t *)y->data)[1], 1);
}

static void where_selects_with_broadcast(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Where", 3, NULL);
    uint8_t c[2] = {1, 0};
    int64_t x[4] = {1, 2, 3, 4}, yv[1] = {-1};
    int64_t dc[2] = {1, 2}, dx[2] = {2, 2};
    const ir_tensor *in[3] = {mk(f, IR_DT_BOOL, 2, dc, c), mk(f, IR_DT_INT64, 2, dx, x),
                              vec_i64(f, 1, yv)};
    ir_tensor *y = eval_ok(f, n, 16, in);
    const int64_t *o = y->data;
    assert_int_equal(o[0], 1);
    assert_int_equal(o[1], -1);
    assert_int_equal(o[2], 3);
    assert_int_equal(o[3], -1);
}

/* ---- unary, clip ------------------------------------------------------------------ */

static void gelu_tanh_and_erf_forms(void **state)
{
    fixture *f = *state;
    float x[1] = {1};
    const ir_tensor *in[1] = {vec_f(f, 1, x)};
    ir_node *n = mk_node(f, "Gelu", 1, NULL);
    /* python: 0.5*(1+tanh(sqrt(2/pi)*(1+0.044715))) and 0.5*(1+erf(1/sqrt(2))) */
    assert_floats(eval_ok(f, n, 20, in), 1, (const float[]){0.841344746f}, 1e-6);
    attr_s(f, n, "approximate", "tanh");
    assert_floats(eval_ok(f, n, 20, in), 1, (const float[]){0.841191991f}, 1e-6);
}

static void hard_ops_and_leakyrelu_use_spec_defaults(void **state)
{
    fixture *f = *state;
    float x[3] = {-4, 1, 4};
    const ir_tensor *in[1] = {vec_f(f, 3, x)};
    /* HardSigmoid alpha 0.2 beta 0.5: max(0, min(1, 0.2x + 0.5)) */
    assert_floats(eval_ok(f, mk_node(f, "HardSigmoid", 1, NULL), 13, in), 3,
                  (const float[]){0, 0.7f, 1}, 1e-6);
    /* HardSwish: x * max(0, min(1, x/6 + 0.5)) */
    assert_floats(eval_ok(f, mk_node(f, "HardSwish", 1, NULL), 14, in), 3,
                  (const float[]){0, 2.0f / 3, 4}, 1e-6);
    assert_floats(eval_ok(f, mk_node(f, "LeakyRelu", 1, NULL), 16, in), 3,
                  (const float[]){-0.04f, 1, 4}, 1e-6);
}

static void neg_abs_int8_wrap_most_negative(void **state)
{
    fixture *f = *state;
    int8_t x[3] = {-128, -5, 7};
    int64_t d = 3;
    const ir_tensor *in[1] = {mk(f, IR_DT_INT8, 1, &d, x)};
    ir_tensor *y = eval_ok(f, mk_node(f, "Neg", 1, NULL), 13, in);
    assert_int_equal(((int8_t *)y->data)[0], -128);
    assert_int_equal(((int8_t *)y->data)[1], 5);
    y = eval_ok(f, mk_node(f, "Relu", 1, NULL), 14, in);
    assert_int_equal(((int8_t *)y->data)[1], 0);
    assert_int_equal(((int8_t *)y->data)[2], 7);
}

static void sqrt_of_int_is_rejected(void **state)
{
    fixture *f = *state;
    int32_t x[1] = {4};
    int64_t d = 1;
    const ir_tensor *in[1] = {mk(f, IR_DT_INT32, 1, &d, x)};
    ir_tensor *out[1];
    assert_int_not_equal(ref_eval_node(f->ctx, mk_node(f, "Sqrt", 1, NULL), 13, in, out),
                         OCT_OK);
    assert_null(out[0]);
}

static void clip_min_above_max_gives_max(void **state)
{
    fixture *f = *state;
    float x[3] = {1, 5, 9}, lo[1] = {6}, hi[1] = {4};
    const ir_tensor *in[3] = {vec_f(f, 3, x), mk(f, IR_DT_FLOAT, 0, NULL, lo),
                              mk(f, IR_DT_FLOAT, 0, NULL, hi)};
    ir_tensor *y = eval_ok(f, mk_node(f, "Clip", 3, NULL), 13, in);
    assert_floats(y, 3, (const float[]){4, 4, 4}, 0);
}

static void clip_before_opset_11_reads_attributes(void **state)
{
    fixture *f = *state;
    float x[3] = {-2, 0.5f, 2};
    const ir_tensor *in[1] = {vec_f(f, 3, x)};
    ir_node *n = mk_node(f, "Clip", 1, NULL);
    attr_f(f, n, "min", -1);
    attr_f(f, n, "max", 1);
    assert_floats(eval_ok(f, n, 6, in), 3, (const float[]){-1, 0.5f, 1}, 0);
}

static void clip_int8_with_only_max(void **state)
{
    fixture *f = *state;
    int8_t x[3] = {-100, 0, 100}, hi[1] = {50};
    int64_t d = 3;
    const ir_tensor *in[3] = {mk(f, IR_DT_INT8, 1, &d, x), NULL, mk(f, IR_DT_INT8, 0, NULL, hi)};
    ir_node *n = mk_node(f, "Clip", 3, (const char *[]){"a", "", "c"});
    ir_tensor *y = eval_ok(f, n, 13, in);
    assert_int_equal(((int8_t *)y->data)[0], -100);
    assert_int_equal(((int8_t *)y->data)[2], 50);
}

/* ---- cast ---------------------------------------------------------------------- */

static void cast_float_to_int_truncates_and_int_narrowing_wraps(void **state)
{
    fixture *f = *state;
    float x[3] = {2.7f, -2.7f, 300};
    const ir_tensor *in[1] = {vec_f(f, 3, x)};
    ir_node *n = mk_node(f, "Cast", 1, NULL);
    attr_i(f, n, "to", IR_DT_INT32);
    ir_tensor *y = eval_ok(f, n, 21, in);
    assert_int_equal(((int32_t *)y->data)[0], 2);
    assert_int_equal(((int32_t *)y->data)[1], -2);
    const ir_tensor *in2[1] = {y};
    ir_node *n2 = mk_node(f, "Cast", 1, NULL);
    attr_i(f, n2, "to", IR_DT_UINT8);
    ir_tensor *z = eval_ok(f, n2, 21, in2);
    assert_int_equal(((uint8_t *)z->data)[1], 254); /* -2 mod 256 */
    assert_int_equal(((uint8_t *)z->data)[2], 44);  /* 300 mod 256 */
}

static void cast_to_e4m3fn_saturates_unless_told_not_to(void **state)
{
    fixture *f = *state;
    float x[2] = {1000, -1000};
    const ir_tensor *in[1] = {vec_f(f, 2, x)};
    ir_node *n = mk_node(f, "Cast", 1, NULL);
    attr_i(f, n, "to", IR_DT_FLOAT8E4M3FN);
    ir_tensor *y = eval_ok(f, n, 21, in);
    assert_int_equal(((uint8_t *)y->data)[0], 0x7e); /* 448 */
    assert_int_equal(((uint8_t *)y->data)[1], 0xfe); /* -448 */
    attr_i(f, n, "saturate", 0);
    y = eval_ok(f, n, 21, in);
    assert_int_equal(((uint8_t *)y->data)[0] & 0x7f, 0x7f); /* NaN */
}

static void cast_string_to_float_parses(void **state)
{
    fixture *f = *state;
    int64_t d = 3;
    ir_tensor *t = track(f, ir_heap_tensor_new(f->ctx, IR_DT_STRING, 1, &d));
    ir_blob *b = t->data;
    const char *s[3] = {"0.5", "-INF", "1e3"};
    for (int i = 0; i < 3; i++) {
        b[i].data = (uint8_t *)ir_strdup(f->ctx, s[i]);
        b[i].len = strlen(s[i]);
    }
    const ir_tensor *in[1] = {t};
    ir_node *n = mk_node(f, "Cast", 1, NULL);
    attr_i(f, n, "to", IR_DT_FLOAT);
    assert_floats(eval_ok(f, n, 13, in), 3, (const float[]){0.5f, -INFINITY, 1000}, 0);
}

/* ---- pad ------------------------------------------------------------------------- */

static ir_tensor *pad1d(fixture *f, const char *mode, int64_t before, int64_t after,
                        const float *cval)
{
    float x[3] = {1, 2, 3};
    int64_t p[2] = {before, after};
    ir_node *n = mk_node(f, "Pad", 3, NULL);
    attr_s(f, n, "mode", mode);
    const ir_tensor *in[3] = {vec_f(f, 3, x), vec_i64(f, 2, p),
                              cval ? mk(f, IR_DT_FLOAT, 0, NULL, cval) : NULL};
    if (!cval)
        n->in[2] = NULL;
    return eval_ok(f, n, 19, in);
}

static void pad_modes_match_numpy(void **state)
{
    fixture *f = *state;
    /* numpy.pad([1,2,3], (2,2), mode=...) */
    assert_floats(pad1d(f, "reflect", 2, 2, NULL), 7, (const float[]){3, 2, 1, 2, 3, 2, 1}, 0);
    assert_floats(pad1d(f, "edge", 2, 2, NULL), 7, (const float[]){1, 1, 1, 2, 3, 3, 3}, 0);
    assert_floats(pad1d(f, "wrap", 2, 2, NULL), 7, (const float[]){2, 3, 1, 2, 3, 1, 2}, 0);
    float nine = 9;
    assert_floats(pad1d(f, "constant", -1, 2, &nine), 4, (const float[]){2, 3, 9, 9}, 0);
}

static void pad_unknown_pads_give_unknown_dims(void **state)
{
    fixture *f = *state;
    ir_node *n = mk_node(f, "Pad", 2, NULL);
    ops_shape in[2] = {{.dtype = IR_DT_FLOAT, .rank = 2, .dims = {2, 3}},
                       {.dtype = IR_DT_INT64, .rank = 1, .dims = {4}}};
    ops_shape out[1];
    const ir_tensor *consts[2] = {NULL, NULL};
    ops_infer inf = {.ctx = f->ctx, .node = n, .opset = 13, .n_in = 2, .in = in,
                     .in_const = consts, .n_out = 1, .out = out};
    assert_int_equal(ops_shape_pad(&inf), OCT_OK);
    assert_int_equal(out[0].rank, 2);
    assert_int_equal(out[0].dims[0], -1);
    assert_int_equal(out[0].dtype, IR_DT_FLOAT);
}

static void pad_opset2_reads_pads_attribute(void **state)
{
    fixture *f = *state;
    float x[2] = {1, 2};
    ir_node *n = mk_node(f, "Pad", 1, NULL);
    attr_is(f, n, "pads", 2, (const int64_t[]){1, 0});
    attr_f(f, n, "value", 7);
    const ir_tensor *in[1] = {vec_f(f, 2, x)};
    assert_floats(eval_ok(f, n, 2, in), 3, (const float[]){7, 1, 2}, 0);
}

/* ---- resize, lrn ---------------------------------------------------------------------- */

static ir_tensor *resize_row(fixture *f, int n_x, const float *x, const char *mode,
                             const char *coord, const float *scales, const int64_t *sizes)
{
    int64_t dx[2] = {1, n_x};
    ir_node *n = mk_node(f, "Resize", 4, sizes ? (const char *[]){"a", "", "", "d"}
                                                : (const char *[]){"a", "", "c", ""});
    attr_s(f, n, "mode", mode);
    if (coord)
        attr_s(f, n, "coordinate_transformation_mode", coord);
    const ir_tensor *in[4] = {mk(f, IR_DT_FLOAT, 2, dx, x), NULL,
                              scales ? vec_f(f, 2, scales) : NULL,
                              sizes ? vec_i64(f, 2, sizes) : NULL};
    return eval_ok(f, n, 19, in);
}

static void resize_matches_onnx_reference(void **state)
{
    fixture *f = *state;
    /* linear and nearest: from onnx.reference.ReferenceEvaluator; cubic: the
     * spec's Keys kernel (A = -0.75, half_pixel) evaluated in Python by hand
     * (the reference evaluator agrees within 2e-6) */
    float x2[2] = {1, 2}, x4[4] = {1, 2, 4, 8}, s2[2] = {1, 2}, s15[2] = {1, 1.5f};
    assert_floats(resize_row(f, 2, x2, "linear", NULL, s2, NULL), 4,
                  (const float[]){1, 1.25f, 1.75f, 2}, 1e-6);
    assert_floats(resize_row(f, 2, x2, "linear", "align_corners", NULL,
                             (const int64_t[]){1, 3}), 3, (const float[]){1, 1.5f, 2}, 1e-6);
    assert_floats(resize_row(f, 2, x2, "nearest", "asymmetric", s2, NULL), 4,
                  (const float[]){1, 1, 2, 2}, 0);
    assert_floats(resize_row(f, 4, x4, "cubic", NULL, s15, NULL), 6,
                  (const float[]){0.913194444f, 1.3125f, 2.304398148f, 3.383101852f,
                                  6.1875f, 8.347222222f}, 1e-6);
}

static void lrn_sums_squares_over_channel_window(void **state)
{
    fixture *f = *state;
    /* size 2: window [c, c+1]; y = x / (1 + 1/2 * sum)^1:
     * c0: 1 / (1 + 5/2) = 0.2857143, c1: 2 / (1 + 4/2) = 0.6666667 */
    float x[2] = {1, 2};
    int64_t d[4] = {1, 2, 1, 1};
    ir_node *n = mk_node(f, "LRN", 1, NULL);
    attr_i(f, n, "size", 2);
    attr_f(f, n, "alpha", 1);
    attr_f(f, n, "beta", 1);
    attr_f(f, n, "bias", 1);
    const ir_tensor *in[1] = {mk(f, IR_DT_FLOAT, 4, d, x)};
    assert_floats(eval_ok(f, n, 13, in), 2, (const float[]){0.2857143f, 0.6666667f}, 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(broadcast_resolves_unknown_dims, setup, teardown),
        cmocka_unit_test_setup_teardown(add_incompatible_shapes_report_input_1, setup, teardown),
        cmocka_unit_test_setup_teardown(norm_axis_and_const_ints, setup, teardown),
        cmocka_unit_test_setup_teardown(add_broadcasts_row_over_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(legacy_broadcast_aligns_b_at_axis, setup, teardown),
        cmocka_unit_test_setup_teardown(div_int32_truncates_toward_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(add_int8_wraps_around, setup, teardown),
        cmocka_unit_test_setup_teardown(pow_int_base_float_exponent_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(equal_outputs_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(prelu_slope_broadcasts_per_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(mod_sign_follows_divisor_unless_fmod, setup, teardown),
        cmocka_unit_test_setup_teardown(less_compares_uint64_unsigned, setup, teardown),
        cmocka_unit_test_setup_teardown(max_of_three_broadcasts_and_propagates_nan, setup, teardown),
        cmocka_unit_test_setup_teardown(min_uint32_compares_unsigned, setup, teardown),
        cmocka_unit_test_setup_teardown(where_selects_with_broadcast, setup, teardown),
        cmocka_unit_test_setup_teardown(gelu_tanh_and_erf_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(hard_ops_and_leakyrelu_use_spec_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(neg_abs_int8_wrap_most_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(sqrt_of_int_is_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(clip_min_above_max_gives_max, setup, teardown),
        cmocka_unit_test_setup_teardown(clip_before_opset_11_reads_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(clip_int8_with_only_max, setup, teardown),
        cmocka_unit_test_setup_teardown(cast_float_to_int_truncates_and_int_narrowing_wraps, setup, teardown),
        cmocka_unit_test_setup_teardown(cast_to_e4m3fn_saturates_unless_told_not_to, setup, teardown),
        cmocka_unit_test_setup_teardown(cast_string_to_float_parses, setup, teardown),
        cmocka_unit_test_setup_teardown(pad_modes_match_numpy, setup, teardown),
        cmocka_unit_test_setup_teardown(pad_unknown_pads_give_unknown_dims, setup, teardown),
        cmocka_unit_test_setup_teardown(pad_opset2_reads_pads_attribute, setup, teardown),
        cmocka_unit_test_setup_teardown(resize_matches_onnx_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(lrn_sums_squares_over_channel_window, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
