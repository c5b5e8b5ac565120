/*
 * tests_ref_quant.c: unit tests of the quantization shape rules and
 * kernels (src/ref/quant.c, src/ref/qlinear.c).  Each node is built by hand,
 * its shape rule inferred with every input constant (as the interpreter
 * does), outputs allocated from the inferred shapes, then the kernel run.
 * Expected values are hand calculations from the ONNX operator spec.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "ref/ref.h"

/* ---- building nodes and tensors ------------------------------------------ */

static ir_tensor *mk(oct_ctx *ctx, ir_dtype dt, int rank, const int64_t *dims,
                     const void *data)
{
    ir_tensor *t = ir_alloc(ctx, sizeof *t);
    assert_non_null(t);
    t->dtype = dt;
    t->rank = rank;
    t->dims = ir_alloc_array(ctx, rank ? (size_t)rank : 1, sizeof(int64_t));
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
    assert_true(ir_shape_elems(rank, t->dims, &t->nelems));
    assert_true(ir_dtype_bytes(dt, t->nelems, &t->nbytes));
    t->data = ir_alloc(ctx, t->nbytes ? t->nbytes : 1);
    if (data)
        memcpy(t->data, data, t->nbytes);
    return t;
}

static ir_tensor *scalar_f32(oct_ctx *ctx, float v)
{
    return mk(ctx, IR_DT_FLOAT, 0, NULL, &v);
}

static ir_tensor *vec_f32(oct_ctx *ctx, int64_t n, const float *v)
{
    return mk(ctx, IR_DT_FLOAT, 1, &n, v);
}

typedef struct attr_spec {
    const char *name;
    int64_t i;            /* INT */
    const int64_t *ints;  /* INTS when n > 0 */
    size_t n;
} attr_spec;

/* Builds a node of op_type with n_in inputs (NULL entries omitted) and
 * n_out outputs and attributes, runs its shape rule with every input
 * constant, allocates outputs and runs the kernel.  Returns the status of
 * the first failing step; outputs in out[]. */
static oct_status run_op(oct_ctx *ctx, const char *op_type,
                         const attr_spec *attrs, int n_attrs,
                         const ir_tensor *const *in, int n_in, ir_tensor **out,
                         int n_out)
{
    ir_graph *g = ir_graph_new(ctx);
    assert_non_null(g);
    ir_node *node = ir_graph_add_node(ctx, g, op_type, "", "n0", n_in, n_out);
    assert_non_null(node);
    char name[32];
    for (int i = 0; i < n_in; i++) {
        if (!in[i])
            continue;
        snprintf(name, sizeof name, "in%d", i);
        node->in[i] = ir_graph_value(ctx, g, name);
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof name, "out%d", i);
        ir_node_set_output(node, i, ir_graph_value(ctx, g, name));
    }
    node->n_attr = n_attrs;
    node->attrs = ir_alloc_array(ctx, n_attrs ? (size_t)n_attrs : 1,
                                 sizeof(ir_attr));
    for (int i = 0; i < n_attrs; i++) {
        node->attrs[i].name = attrs[i].name;
        if (attrs[i].n) {
            node->attrs[i].type = IR_ATTR_INTS;
            node->attrs[i].ints = (int64_t *)attrs[i].ints;
            node->attrs[i].n = attrs[i].n;
        } else {
            node->attrs[i].type = IR_ATTR_INT;
            node->attrs[i].i = attrs[i].i;
        }
    }
    ops_shape shapes[16], outs[4];
    memset(shapes, 0, sizeof shapes);
    memset(outs, 0, sizeof outs);
    for (int i = 0; i < n_in; i++) {
        if (in[i])
            ops_shape_of(in[i], &shapes[i]);
        else
            shapes[i].rank = -1;
    }
    ops_infer inf = {ctx, node, 25, n_in, shapes, in, n_out, outs};
    oct_status st = OCT_OK;
    ir_op op = node->op;
    switch (op) {
    case IR_OP_QUANTIZELINEAR: st = ops_shape_quantizelinear(&inf); break;
    case IR_OP_DEQUANTIZELINEAR: st = ops_shape_dequantizelinear(&inf); break;
    case IR_OP_DYNAMICQUANTIZELINEAR: st = ops_shape_dynamicquantizelinear(&inf); break;
    case IR_OP_MATMULINTEGER: st = ops_shape_matmulinteger(&inf); break;
    case IR_OP_QLINEARMATMUL: st = ops_shape_qlinearmatmul(&inf); break;
    case IR_OP_CONVINTEGER: st = ops_shape_convinteger(&inf); break;
    case IR_OP_QLINEARCONV: st = ops_shape_qlinearconv(&inf); break;
    default: fail_msg("unexpected op %s", op_type);
    }
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < n_out; i++) {
        assert_true(outs[i].rank >= 0);
        out[i] = mk(ctx, outs[i].dtype, outs[i].rank, outs[i].dims, NULL);
    }
    ref_call call = {ctx, node, 25, n_in, in, n_out, out};
    switch (op) {
    case IR_OP_QUANTIZELINEAR: return ref_quantizelinear(&call);
    case IR_OP_DEQUANTIZELINEAR: return ref_dequantizelinear(&call);
    case IR_OP_DYNAMICQUANTIZELINEAR: return ref_dynamicquantizelinear(&call);
    case IR_OP_MATMULINTEGER: return ref_matmulinteger(&call);
    case IR_OP_QLINEARMATMUL: return ref_qlinearmatmul(&call);
    case IR_OP_CONVINTEGER: return ref_convinteger(&call);
    default: return ref_qlinearconv(&call);
    }
}

/* True if some diagnostic's message contains `text`. */
static bool has_diag(const oct_ctx *ctx, const char *text)
{
    for (size_t i = 0; i < oct_diag_count(ctx); i++)
        if (strstr(oct_diag_get(ctx, i)->message, text))
            return true;
    return false;
}

/* ---- QuantizeLinear ------------------------------------------------------ */

static void quantizelinear_rounds_half_to_even(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const float xv[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f, 0.49f};
    int64_t n = 8;
    int8_t zero = 0;
    const ir_tensor *in[3] = {mk(ctx, IR_DT_FLOAT, 1, &n, xv),
                              scalar_f32(ctx, 1.0f),
                              mk(ctx, IR_DT_INT8, 0, NULL, &zero)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "QuantizeLinear", NULL, 0, in, 3, &y, 1), OCT_OK);
    assert_int_equal(y->dtype, IR_DT_INT8);
    const int8_t want[] = {0, 2, 2, 0, -2, -2, 4, 0};
    assert_memory_equal(y->data, want, sizeof want);

    /* The same through the generic path (float16 input and scale). */
    uint16_t xh[8], one = ops_f32_to_f16(1.0f);
    for (int i = 0; i < 8; i++)
        xh[i] = ops_f32_to_f16(xv[i]);
    uint8_t zp128 = 128;
    const ir_tensor *in2[3] = {mk(ctx, IR_DT_FLOAT16, 1, &n, xh),
                               mk(ctx, IR_DT_FLOAT16, 0, NULL, &one),
                               mk(ctx, IR_DT_UINT8, 0, NULL, &zp128)};
    assert_int_equal(run_op(ctx, "QuantizeLinear", NULL, 0, in2, 3, &y, 1), OCT_OK);
    const uint8_t want2[] = {128, 130, 130, 128, 126, 126, 132, 128};
    assert_memory_equal(y->data, want2, sizeof want2);
    oct_ctx_free(ctx);
}

static void quantizelinear_saturates_u8_and_s8(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const float xv[] = {-1000.0f, 1000.0f, -129.0f, 128.0f, 300.0f, -128.0f};
    int64_t n = 6;
    int8_t s0 = 0;
    const ir_tensor *in[3] = {mk(ctx, IR_DT_FLOAT, 1, &n, xv),
                              scalar_f32(ctx, 1.0f),
                              mk(ctx, IR_DT_INT8, 0, NULL, &s0)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "QuantizeLinear", NULL, 0, in, 3, &y, 1), OCT_OK);
    const int8_t want_s8[] = {-128, 127, -128, 127, 127, -128};
    assert_memory_equal(y->data, want_s8, sizeof want_s8);
    /* No zero point: uint8, zero point 0. */
    assert_int_equal(run_op(ctx, "QuantizeLinear", NULL, 0, in, 2, &y, 1), OCT_OK);
    assert_int_equal(y->dtype, IR_DT_UINT8);
    const uint8_t want_u8[] = {0, 255, 0, 128, 255, 0};
    assert_memory_equal(y->data, want_u8, sizeof want_u8);
    oct_ctx_free(ctx);
}

static void quantizelinear_packs_int4_low_nibble_first(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const float xv[] = {1.0f, -2.0f, 7.0f, 9.0f, -9.0f};
    int64_t n = 5;
    uint8_t zp = 0; /* one int4 zero: a single packed byte */
    const ir_tensor *in[3] = {mk(ctx, IR_DT_FLOAT, 1, &n, xv),
                              scalar_f32(ctx, 1.0f),
                              mk(ctx, IR_DT_INT4, 0, NULL, &zp)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "QuantizeLinear", NULL, 0, in, 3, &y, 1), OCT_OK);
    assert_int_equal(y->dtype, IR_DT_INT4);
    assert_int_equal(y->nbytes, 3);
    /* 1 -> 0x1, -2 -> 0xE, 7, 9 saturates to 7, -9 saturates to -8 (0x8) */
    const uint8_t want[] = {0xE1, 0x77, 0x08};
    assert_memory_equal(y->data, want, sizeof want);
    /* uint2 through output_dtype: [1, -2, 7, 9, -9] -> [1, 0, 3, 3, 0] */
    attr_spec od = {"output_dtype", IR_DT_UINT2, NULL, 0};
    assert_int_equal(run_op(ctx, "QuantizeLinear", &od, 1, in, 2, &y, 1), OCT_OK);
    assert_int_equal(y->dtype, IR_DT_UINT2);
    assert_int_equal(((uint8_t *)y->data)[0], 1 | 0 << 2 | 3 << 4 | 3 << 6);
    assert_int_equal(((uint8_t *)y->data)[1] & 3, 0);
    oct_ctx_free(ctx);
}

static void quantizelinear_float8_saturate_on_and_off(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const float xv[] = {1000.0f, -1000.0f, 448.0f, 0.3f, NAN};
    int64_t n = 5;
    const ir_tensor *in[2] = {mk(ctx, IR_DT_FLOAT, 1, &n, xv),
                              scalar_f32(ctx, 1.0f)};
    attr_spec at[2] = {{"output_dtype", IR_DT_FLOAT8E4M3FN, NULL, 0},
                       {"saturate", 1, NULL, 0}};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "QuantizeLinear", at, 2, in, 2, &y, 1), OCT_OK);
    const uint8_t *b = y->data;
    /* 448 = 0x7E is E4M3FN's largest finite value; 0.3 -> 0.3125 = 0x2A */
    assert_int_equal(b[0], 0x7E);
    assert_int_equal(b[1], 0xFE);
    assert_int_equal(b[2], 0x7E);
    assert_int_equal(b[3], 0x2A);
    assert_true(isnan(ops_fp8_to_f32(IR_DT_FLOAT8E4M3FN, b[4])));
    at[1].i = 0;
    assert_int_equal(run_op(ctx, "QuantizeLinear", at, 2, in, 2, &y, 1), OCT_OK);
    b = y->data;
    assert_true(isnan(ops_fp8_to_f32(IR_DT_FLOAT8E4M3FN, b[0])));
    assert_int_equal(b[2], 0x7E);
    /* E5M2: 57344 (0x7B) when saturating, +Inf (0x7C) otherwise */
    const float big[] = {100000.0f};
    int64_t one = 1;
    const ir_tensor *in2[2] = {mk(ctx, IR_DT_FLOAT, 1, &one, big),
                               scalar_f32(ctx, 1.0f)};
    at[0].i = IR_DT_FLOAT8E5M2;
    at[1].i = 1;
    assert_int_equal(run_op(ctx, "QuantizeLinear", at, 2, in2, 2, &y, 1), OCT_OK);
    assert_int_equal(((uint8_t *)y->data)[0], 0x7B);
    at[1].i = 0;
    assert_int_equal(run_op(ctx, "QuantizeLinear", at, 2, in2, 2, &y, 1), OCT_OK);
    assert_int_equal(((uint8_t *)y->data)[0], 0x7C);
    oct_ctx_free(ctx);
}

static void quantizelinear_per_axis_uses_axis_scales(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const float xv[] = {1, 2, 4, -1, -2, -4};
    const float sv[] = {1, 2, 4};
    const uint8_t zv[] = {0, 10, 20};
    int64_t d[2] = {2, 3}, three = 3;
    const ir_tensor *in[3] = {mk(ctx, IR_DT_FLOAT, 2, d, xv), vec_f32(ctx, 3, sv),
                              mk(ctx, IR_DT_UINT8, 1, &three, zv)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "QuantizeLinear", NULL, 0, in, 3, &y, 1), OCT_OK);
    const uint8_t want[] = {1, 11, 21, 0, 9, 19};
    assert_memory_equal(y->data, want, sizeof want);
    attr_spec ax = {"axis", -1, NULL, 0};
    assert_int_equal(run_op(ctx, "QuantizeLinear", &ax, 1, in, 3, &y, 1), OCT_OK);
    assert_memory_equal(y->data, want, sizeof want);
    /* axis 0 has 2 entries, the scale 3: a diagnostic on the scale input */
    ax.i = 0;
    assert_int_equal(run_op(ctx, "QuantizeLinear", &ax, 1, in, 3, &y, 1), OCT_EINPUT);
    assert_true(has_diag(ctx, "per-axis scale has 3 elements"));
    assert_int_equal(oct_diag_get(ctx, oct_diag_count(ctx) - 1)->io_index, 1);
    oct_ctx_free(ctx);
}

static void quantizelinear_blocked_repeats_scales_along_axis(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    /* x [2, 5], axis 1, block 2: scale [2, 3] (ceil(5 / 2) = 3) */
    const float xv[] = {3, 3, 3, 3, 3, 16, 16, 16, 16, 16};
    const float sv[] = {1, 2, 4, 4, 8, 16};
    int64_t xd[2] = {2, 5}, sd[2] = {2, 3};
    const ir_tensor *in[2] = {mk(ctx, IR_DT_FLOAT, 2, xd, xv),
                              mk(ctx, IR_DT_FLOAT, 2, sd, sv)};
    attr_spec at[2] = {{"axis", 1, NULL, 0}, {"block_size", 2, NULL, 0}};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "QuantizeLinear", at, 2, in, 2, &y, 1), OCT_OK);
    /* 3/1, 3/1, 3/2=1.5->2, 1.5->2, 3/4=0.75->1; 16/4, 16/4, 16/8, 16/8, 16/16 */
    const uint8_t want[] = {3, 3, 2, 2, 1, 4, 4, 2, 2, 1};
    assert_memory_equal(y->data, want, sizeof want);
    /* scale [2, 2] does not cover 5 columns in blocks of 2 */
    int64_t bad[2] = {2, 2};
    const ir_tensor *in2[2] = {in[0], mk(ctx, IR_DT_FLOAT, 2, bad, sv)};
    assert_int_equal(run_op(ctx, "QuantizeLinear", at, 2, in2, 2, &y, 1), OCT_EINPUT);
    assert_true(has_diag(ctx, "blocked scale dim 1 is 2, expected 3"));
    oct_ctx_free(ctx);
}

static void quantizelinear_rejects_non_positive_or_non_finite_scale(void **state)
{
    (void)state;
    const float bad[] = {0.0f, -1.0f, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        oct_ctx *ctx = oct_ctx_new();
        const float xv[] = {1.0f};
        int64_t one = 1;
        const ir_tensor *in[2] = {mk(ctx, IR_DT_FLOAT, 1, &one, xv),
                                  scalar_f32(ctx, bad[i])};
        ir_tensor *y;
        assert_int_equal(run_op(ctx, "QuantizeLinear", NULL, 0, in, 2, &y, 1),
                         OCT_EINPUT);
        assert_true(has_diag(ctx, "positive and finite"));
        assert_int_equal(run_op(ctx, "DequantizeLinear", NULL, 0, in, 2, &y, 1),
                         OCT_EINPUT);
        oct_ctx_free(ctx);
    }
}

static void quantizelinear_shape_keeps_unknown_dims(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    ir_node *node = ir_graph_add_node(ctx, g, "QuantizeLinear", "", "q", 3, 1);
    for (int i = 0; i < 3; i++)
        node->in[i] = ir_graph_value(ctx, g, i == 0 ? "x" : i == 1 ? "s" : "z");
    ops_shape in[3] = {{IR_DT_FLOAT, 2, {-1, 3}}, {IR_DT_FLOAT, 1, {3}},
                       {IR_DT_INT8, 1, {3}}};
    const ir_tensor *consts[3] = {NULL, NULL, NULL};
    ops_shape out[1];
    ops_infer inf = {ctx, node, 21, 3, in, consts, 1, out};
    assert_int_equal(ops_shape_quantizelinear(&inf), OCT_OK);
    assert_int_equal(out[0].dtype, IR_DT_INT8);
    assert_int_equal(out[0].rank, 2);
    assert_int_equal(out[0].dims[0], -1);
    assert_int_equal(out[0].dims[1], 3);
    /* zero point shape differing from the scale's is reported */
    in[2].dims[0] = 2;
    assert_int_equal(ops_shape_quantizelinear(&inf), OCT_EINPUT);
    assert_true(has_diag(ctx, "zero point shape"));
    oct_ctx_free(ctx);
}

static void quantizelinear_int32_input_and_e8m0_scale(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    /* int32 x (opset 21+): 7/2 = 3.5 -> 4, -7/2 -> -4, 5/2 = 2.5 -> 2 */
    const int32_t xv[] = {7, -7, 5};
    int64_t n = 3;
    int8_t zero = 0;
    const ir_tensor *in[3] = {mk(ctx, IR_DT_INT32, 1, &n, xv), scalar_f32(ctx, 2.0f),
                              mk(ctx, IR_DT_INT8, 0, NULL, &zero)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "QuantizeLinear", NULL, 0, in, 3, &y, 1), OCT_OK);
    const int8_t want[] = {4, -4, 2};
    assert_memory_equal(y->data, want, sizeof want);
    /* DequantizeLinear with a float8 E8M0 scale: code 128 is 2^(128-127) = 2;
     * the output type must then come from output_dtype */
    const uint8_t q[] = {0, 3, 255};
    uint8_t e8 = 128;
    const ir_tensor *in2[2] = {mk(ctx, IR_DT_UINT8, 1, &n, q),
                               mk(ctx, IR_DT_FLOAT8E8M0, 0, NULL, &e8)};
    attr_spec od = {"output_dtype", IR_DT_FLOAT, NULL, 0};
    assert_int_equal(run_op(ctx, "DequantizeLinear", &od, 1, in2, 2, &y, 1), OCT_OK);
    const float want2[] = {0.0f, 6.0f, 510.0f};
    assert_memory_equal(y->data, want2, sizeof want2);
    assert_int_equal(run_op(ctx, "DequantizeLinear", NULL, 0, in2, 2, &y, 1), OCT_EINPUT);
    assert_true(has_diag(ctx, "set output_dtype"));
    oct_ctx_free(ctx);
}

/* ---- DequantizeLinear ------------------------------------------------------ */

static void dequantizelinear_subtracts_zero_point_then_scales(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const uint8_t xv[] = {0, 128, 255};
    uint8_t zp = 128;
    int64_t n = 3;
    const ir_tensor *in[3] = {mk(ctx, IR_DT_UINT8, 1, &n, xv), scalar_f32(ctx, 0.5f),
                              mk(ctx, IR_DT_UINT8, 0, NULL, &zp)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "DequantizeLinear", NULL, 0, in, 3, &y, 1), OCT_OK);
    assert_int_equal(y->dtype, IR_DT_FLOAT);
    const float want[] = {-64.0f, 0.0f, 63.5f};
    assert_memory_equal(y->data, want, sizeof want);

    /* int4 per axis: x [2, 2] = [[-8, 7], [1, -1]], axis 0, scales [1, 2],
     * zero points [0, 1] -> [[-8, 7], [0, -4]] */
    int64_t d[2] = {2, 2}, two = 2;
    const uint8_t x4[] = {0x78, 0xF1};          /* -8, 7 | 1, -1 */
    const uint8_t z4[] = {0x10};                /* 0, 1 */
    const float s4[] = {1.0f, 2.0f};
    const ir_tensor *in4[3] = {mk(ctx, IR_DT_INT4, 2, d, x4), vec_f32(ctx, 2, s4),
                               mk(ctx, IR_DT_INT4, 1, &two, z4)};
    attr_spec ax = {"axis", 0, NULL, 0};
    assert_int_equal(run_op(ctx, "DequantizeLinear", &ax, 1, in4, 3, &y, 1), OCT_OK);
    const float want4[] = {-8.0f, 7.0f, 0.0f, -4.0f};
    assert_memory_equal(y->data, want4, sizeof want4);

    /* int32 without zero point: 2^24 + 1 rounds to 2^24 in float32 */
    const int32_t x32[] = {-3, 16777217};
    const ir_tensor *in32[2] = {mk(ctx, IR_DT_INT32, 1, &two, x32),
                                scalar_f32(ctx, 1.0f)};
    assert_int_equal(run_op(ctx, "DequantizeLinear", NULL, 0, in32, 2, &y, 1), OCT_OK);
    const float want32[] = {-3.0f, 16777216.0f};
    assert_memory_equal(y->data, want32, sizeof want32);

    /* float8 E4M3FN: 0x7E is 448, times 2 */
    const uint8_t x8[] = {0x7E, 0xFE};
    const ir_tensor *in8[2] = {mk(ctx, IR_DT_FLOAT8E4M3FN, 1, &two, x8),
                               scalar_f32(ctx, 2.0f)};
    assert_int_equal(run_op(ctx, "DequantizeLinear", NULL, 0, in8, 2, &y, 1), OCT_OK);
    const float want8[] = {896.0f, -896.0f};
    assert_memory_equal(y->data, want8, sizeof want8);
    oct_ctx_free(ctx);
}

static void dequantizelinear_blocked_and_output_dtype(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    /* x [3, 2] int8, axis 0, block 2: scale [2, 2] */
    const int8_t xv[] = {1, 2, 3, 4, 5, 6};
    const float sv[] = {1, 10, 100, 1000};
    int64_t xd[2] = {3, 2}, sd[2] = {2, 2};
    const ir_tensor *in[2] = {mk(ctx, IR_DT_INT8, 2, xd, xv),
                              mk(ctx, IR_DT_FLOAT, 2, sd, sv)};
    attr_spec at[3] = {{"axis", 0, NULL, 0}, {"block_size", 2, NULL, 0},
                       {"output_dtype", IR_DT_FLOAT16, NULL, 0}};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "DequantizeLinear", at, 2, in, 2, &y, 1), OCT_OK);
    const float want[] = {1, 20, 3, 40, 500, 6000};
    assert_memory_equal(y->data, want, sizeof want);
    assert_int_equal(run_op(ctx, "DequantizeLinear", at, 3, in, 2, &y, 1), OCT_OK);
    assert_int_equal(y->dtype, IR_DT_FLOAT16);
    for (int i = 0; i < 6; i++)
        assert_true(ops_f16_to_f32(((uint16_t *)y->data)[i]) == want[i]);
    oct_ctx_free(ctx);
}

/* ---- DynamicQuantizeLinear ------------------------------------------------- */

static void dynamicquantizelinear_derives_scale_and_zero_point(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    /* min -51, max 204: scale (204 + 51) / 255 = 1, zero point 51 */
    const float xv[] = {-51.0f, 0.0f, 1.5f, 2.5f, 204.0f};
    int64_t n = 5;
    const ir_tensor *in[1] = {mk(ctx, IR_DT_FLOAT, 1, &n, xv)};
    ir_tensor *out[3];
    assert_int_equal(run_op(ctx, "DynamicQuantizeLinear", NULL, 0, in, 1, out, 3),
                     OCT_OK);
    const uint8_t want[] = {0, 51, 53, 53, 255};
    assert_memory_equal(out[0]->data, want, sizeof want);
    assert_true(*(float *)out[1]->data == 1.0f);
    assert_int_equal(*(uint8_t *)out[2]->data, 51);
    /* all positive: the range is widened to include 0, zero point 0 */
    const float pos[] = {2.0f, 255.0f};
    int64_t two = 2;
    const ir_tensor *in2[1] = {mk(ctx, IR_DT_FLOAT, 1, &two, pos)};
    assert_int_equal(run_op(ctx, "DynamicQuantizeLinear", NULL, 0, in2, 1, out, 3),
                     OCT_OK);
    assert_int_equal(*(uint8_t *)out[2]->data, 0);
    assert_int_equal(((uint8_t *)out[0]->data)[0], 2);
    assert_int_equal(((uint8_t *)out[0]->data)[1], 255);
    oct_ctx_free(ctx);
}

/* ---- MatMulInteger / QLinearMatMul ----------------------------------------- */

static void matmulinteger_subtracts_row_and_column_zero_points(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const uint8_t av[] = {1, 2, 3, 4, 5, 6}, bv[] = {7, 8, 9, 10, 11, 12};
    int64_t ad[2] = {2, 3}, bd[2] = {3, 2}, two = 2;
    uint8_t za = 1, zb = 2;
    const ir_tensor *in[4] = {mk(ctx, IR_DT_UINT8, 2, ad, av),
                              mk(ctx, IR_DT_UINT8, 2, bd, bv),
                              mk(ctx, IR_DT_UINT8, 0, NULL, &za),
                              mk(ctx, IR_DT_UINT8, 0, NULL, &zb)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "MatMulInteger", NULL, 0, in, 4, &y, 1), OCT_OK);
    assert_int_equal(y->dtype, IR_DT_INT32);
    const int32_t want[] = {25, 28, 88, 100};
    assert_memory_equal(y->data, want, sizeof want);
    /* per-column b zero points [2, 3] */
    const uint8_t zbv[] = {2, 3};
    const ir_tensor *in2[4] = {in[0], in[1], in[2],
                               mk(ctx, IR_DT_UINT8, 1, &two, zbv)};
    assert_int_equal(run_op(ctx, "MatMulInteger", NULL, 0, in2, 4, &y, 1), OCT_OK);
    const int32_t want2[] = {25, 25, 88, 88};
    assert_memory_equal(y->data, want2, sizeof want2);
    oct_ctx_free(ctx);
}

static void matmulinteger_wraps_int32_accumulator_like_ort(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    enum { K = 40000 };
    static uint8_t ones[K];
    memset(ones, 255, sizeof ones);
    int64_t ad[2] = {1, K}, bd[2] = {K, 1};
    const ir_tensor *in[2] = {mk(ctx, IR_DT_UINT8, 2, ad, ones),
                              mk(ctx, IR_DT_UINT8, 2, bd, ones)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "MatMulInteger", NULL, 0, in, 2, &y, 1), OCT_OK);
    /* 40000 * 255 * 255 = 2601000000 = 2^32 - 1693967296 */
    assert_int_equal(((int32_t *)y->data)[0], -1693967296);
    oct_ctx_free(ctx);
}

static void qlinearmatmul_requantizes_half_to_even_and_saturates(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const uint8_t av[] = {10, 20}, bv[] = {2, 4};
    int64_t ad[2] = {1, 2}, bd[2] = {2, 1};
    uint8_t z0 = 0, zy = 100;
    const ir_tensor *in[8] = {
        mk(ctx, IR_DT_UINT8, 2, ad, av), scalar_f32(ctx, 0.5f),
        mk(ctx, IR_DT_UINT8, 0, NULL, &z0), mk(ctx, IR_DT_UINT8, 2, bd, bv),
        scalar_f32(ctx, 0.25f), mk(ctx, IR_DT_UINT8, 0, NULL, &z0),
        scalar_f32(ctx, 1.0f), mk(ctx, IR_DT_UINT8, 0, NULL, &zy)};
    ir_tensor *y;
    /* acc = 20 + 80 = 100, M = 0.125: 12.5 -> 12 (even), + 100 */
    assert_int_equal(run_op(ctx, "QLinearMatMul", NULL, 0, in, 8, &y, 1), OCT_OK);
    assert_int_equal(((uint8_t *)y->data)[0], 112);
    zy = 250; /* 12 + 250 saturates at 255 */
    in[7] = mk(ctx, IR_DT_UINT8, 0, NULL, &zy);
    assert_int_equal(run_op(ctx, "QLinearMatMul", NULL, 0, in, 8, &y, 1), OCT_OK);
    assert_int_equal(((uint8_t *)y->data)[0], 255);
    oct_ctx_free(ctx);
}

/* ---- ConvInteger / QLinearConv --------------------------------------------- */

static void convinteger_subtracts_zero_point_and_pads_with_it(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const uint8_t xv[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, wv[] = {1, 1, 1, 1};
    int64_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 1, 2, 2};
    uint8_t zx = 1;
    const ir_tensor *in[3] = {mk(ctx, IR_DT_UINT8, 4, xd, xv),
                              mk(ctx, IR_DT_UINT8, 4, wd, wv),
                              mk(ctx, IR_DT_UINT8, 0, NULL, &zx)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "ConvInteger", NULL, 0, in, 3, &y, 1), OCT_OK);
    assert_int_equal(y->rank, 4);
    assert_int_equal(y->dims[2], 2);
    const int32_t want[] = {8, 12, 20, 24};
    assert_memory_equal(y->data, want, sizeof want);
    /* pads 1: the padded border is the zero point, so contributes 0; the
     * top-left output sees only x[0][0] - 1 = 0, the next x[0][0..1] - 1 */
    const int64_t pads[4] = {1, 1, 1, 1};
    attr_spec at = {"pads", 0, pads, 4};
    assert_int_equal(run_op(ctx, "ConvInteger", &at, 1, in, 3, &y, 1), OCT_OK);
    assert_int_equal(y->dims[2], 4);
    assert_int_equal(((int32_t *)y->data)[0], 0);
    assert_int_equal(((int32_t *)y->data)[1], 1);
    assert_int_equal(((int32_t *)y->data)[5], 8);
    assert_int_equal(((int32_t *)y->data)[15], 8);
    oct_ctx_free(ctx);
}

static void qlinearconv_per_channel_scales_and_bias(void **state)
{
    (void)state;
    oct_ctx *ctx = oct_ctx_new();
    const uint8_t xv[] = {1, 2, 3, 4};
    const int8_t wv[] = {1, -1}, zw[] = {0, 0};
    const float sw[] = {0.5f, 0.25f};
    const int32_t bias[] = {1, 2};
    int64_t xd[4] = {1, 1, 2, 2}, wd[4] = {2, 1, 1, 1}, two = 2;
    uint8_t zx = 0, zy = 128;
    const ir_tensor *in[9] = {
        mk(ctx, IR_DT_UINT8, 4, xd, xv), scalar_f32(ctx, 1.0f),
        mk(ctx, IR_DT_UINT8, 0, NULL, &zx), mk(ctx, IR_DT_INT8, 4, wd, wv),
        vec_f32(ctx, 2, sw), mk(ctx, IR_DT_INT8, 1, &two, zw),
        scalar_f32(ctx, 1.0f), mk(ctx, IR_DT_UINT8, 0, NULL, &zy),
        mk(ctx, IR_DT_INT32, 1, &two, bias)};
    ir_tensor *y;
    assert_int_equal(run_op(ctx, "QLinearConv", NULL, 0, in, 9, &y, 1), OCT_OK);
    assert_int_equal(y->dtype, IR_DT_UINT8);
    /* ch0: (x + 1) * 0.5 = 1, 1.5, 2, 2.5 -> 1, 2, 2, 2 (+128)
     * ch1: (2 - x) * 0.25 = 0.25, 0, -0.25, -0.5 -> 0, 0, 0, 0 (+128) */
    const uint8_t want[] = {129, 130, 130, 130, 128, 128, 128, 128};
    assert_memory_equal(y->data, want, sizeof want);
    /* a w_scale with 3 entries for 2 output channels is reported */
    const float sw3[] = {1, 1, 1};
    in[4] = vec_f32(ctx, 3, sw3);
    assert_int_equal(run_op(ctx, "QLinearConv", NULL, 0, in, 9, &y, 1), OCT_EINPUT);
    assert_int_equal(oct_diag_get(ctx, oct_diag_count(ctx) - 1)->io_index, 4);
    oct_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quantizelinear_rounds_half_to_even),
        cmocka_unit_test(quantizelinear_saturates_u8_and_s8),
        cmocka_unit_test(quantizelinear_packs_int4_low_nibble_first),
        cmocka_unit_test(quantizelinear_float8_saturate_on_and_off),
        cmocka_unit_test(quantizelinear_per_axis_uses_axis_scales),
        cmocka_unit_test(quantizelinear_blocked_repeats_scales_along_axis),
        cmocka_unit_test(quantizelinear_rejects_non_positive_or_non_finite_scale),
        cmocka_unit_test(quantizelinear_shape_keeps_unknown_dims),
        cmocka_unit_test(quantizelinear_int32_input_and_e8m0_scale),
        cmocka_unit_test(dequantizelinear_subtracts_zero_point_then_scales),
        cmocka_unit_test(dequantizelinear_blocked_and_output_dtype),
        cmocka_unit_test(dynamicquantizelinear_derives_scale_and_zero_point),
        cmocka_unit_test(matmulinteger_subtracts_row_and_column_zero_points),
        cmocka_unit_test(matmulinteger_wraps_int32_accumulator_like_ort),
        cmocka_unit_test(qlinearmatmul_requantizes_half_to_even_and_saturates),
        cmocka_unit_test(convinteger_subtracts_zero_point_and_pads_with_it),
        cmocka_unit_test(qlinearconv_per_channel_scales_and_bias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
