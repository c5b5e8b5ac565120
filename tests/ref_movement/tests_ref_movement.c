/*
 * tests_ref_movement.c: unit tests of the reference shape rules and kernels
 * for data movement (Transpose, Slice, Gather, Concat, Split, Reshape,
 * Squeeze, Expand, Tile, ...; softmax, normalization and reductions are in
 * tests_ref_reduce.c).  Each test builds a node by hand, runs its shape
 * rule and kernel, and compares with values computed by hand from the
 * ONNX operator spec (numpy semantics).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "ref_fixture.h"

/* ---- tests --------------------------------------------------------------- */

static void transpose_default_perm_reverses_dims(void **state)
{
    fixture f;
    make_node(&f, "Transpose", 1, 1);
    float x[6] = {0, 1, 2, 3, 4, 5};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){2, 3}, x)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_transpose, ref_transpose, in, out), OCT_OK);
    assert_dims(out[0], 2, (int64_t[]){3, 2});
    assert_floats(out[0], (float[]){0, 3, 1, 4, 2, 5}, 6);
    done(&f);
}

static void transpose_int4_moves_packed_nibbles(void **state)
{
    fixture f;
    make_node(&f, "Transpose", 1, 1);
    int64_t perm[2] = {1, 0};
    attr_ints(&f, "perm", perm, 2);
    /* int4 [[1,2,3],[4,5,-1]] packed low nibble first. */
    uint8_t x[3] = {0x21, 0x43, 0xF5};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_INT4, 2, (int64_t[]){2, 3}, x)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_transpose, ref_transpose, in, out), OCT_OK);
    /* [[1,4],[2,5],[3,-1]] */
    const uint8_t *y = out[0]->data;
    assert_int_equal(y[0], 0x41);
    assert_int_equal(y[1], 0x52);
    assert_int_equal(y[2], 0xF3);
    done(&f);
}

static void transpose_nchw_to_nhwc_int64(void **state)
{
    fixture f;
    make_node(&f, "Transpose", 1, 1);
    attr_ints(&f, "perm", (int64_t[]){0, 2, 3, 1}, 4);
    int64_t x[12];
    for (int i = 0; i < 12; i++)
        x[i] = i;
    const ir_tensor *in[1] = {tensor(&f, IR_DT_INT64, 4, (int64_t[]){1, 3, 2, 2}, x)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_transpose, ref_transpose, in, out), OCT_OK);
    assert_dims(out[0], 4, (int64_t[]){1, 2, 2, 3});
    int64_t want[12] = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
    assert_memory_equal(out[0]->data, want, sizeof want);
    done(&f);
}

static void slice_negative_step_from_int64_max_clamps(void **state)
{
    fixture f;
    make_node(&f, "Slice", 5, 1);
    float x[10];
    for (int i = 0; i < 10; i++)
        x[i] = (float)i;
    int64_t starts = INT64_MAX, ends = INT64_MIN, axes = 0, steps = -3;
    int64_t one = 1;
    const ir_tensor *in[5] = {
        tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){10}, x),
        tensor(&f, IR_DT_INT64, 1, &one, &starts),
        tensor(&f, IR_DT_INT64, 1, &one, &ends),
        tensor(&f, IR_DT_INT64, 1, &one, &axes),
        tensor(&f, IR_DT_INT64, 1, &one, &steps)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_slice, ref_slice, in, out), OCT_OK);
    /* numpy x[::-3] == [9, 6, 3, 0] */
    assert_floats(out[0], (float[]){9, 6, 3, 0}, 4);
    done(&f);
}

static void slice_huge_negative_step_takes_one_element(void **state)
{
    fixture f;
    make_node(&f, "Slice", 5, 1);
    float x[4] = {0, 1, 2, 3};
    int64_t starts = -1, ends = INT64_MIN, axes = 0, steps = INT64_MIN;
    int64_t one = 1;
    const ir_tensor *in[5] = {
        tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){4}, x),
        tensor(&f, IR_DT_INT64, 1, &one, &starts),
        tensor(&f, IR_DT_INT64, 1, &one, &ends),
        tensor(&f, IR_DT_INT64, 1, &one, &axes),
        tensor(&f, IR_DT_INT64, 1, &one, &steps)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_slice, ref_slice, in, out), OCT_OK);
    /* numpy x[-1::-(2**63)] == [3] */
    assert_floats(out[0], (float[]){3}, 1);
    done(&f);
}

static void slice_opset1_attributes_2d(void **state)
{
    fixture f;
    make_node(&f, "Slice", 1, 1);
    attr_ints(&f, "starts", (int64_t[]){1, 0}, 2);
    attr_ints(&f, "ends", (int64_t[]){2, -1}, 2);
    int32_t x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_INT32, 2, (int64_t[]){2, 4}, x)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 9, ops_shape_slice, ref_slice, in, out), OCT_OK);
    /* x[1:2, 0:-1] = [[4, 5, 6]] */
    assert_dims(out[0], 2, (int64_t[]){1, 3});
    assert_memory_equal(out[0]->data, ((int32_t[]){4, 5, 6}), 12);
    done(&f);
}

static void slice_unknown_starts_gives_unknown_dims(void **state)
{
    fixture f;
    make_node(&f, "Slice", 3, 1);
    ops_shape ins[3] = {{IR_DT_FLOAT, 2, {4, 5}}, {IR_DT_INT64, 1, {1}},
                        {IR_DT_INT64, 1, {1}}};
    const ir_tensor *consts[3] = {NULL, NULL, NULL};
    ops_shape out[1];
    assert_int_equal(infer(&f, 13, ops_shape_slice, ins, consts, out), OCT_OK);
    assert_int_equal(out[0].rank, 2);
    assert_int_equal(out[0].dims[0], -1);
    assert_int_equal(out[0].dims[1], -1);
    done(&f);
}

static void gather_negative_indices_on_axis1(void **state)
{
    fixture f;
    make_node(&f, "Gather", 2, 1);
    attr_int(&f, "axis", 1);
    float x[6] = {0, 1, 2, 10, 11, 12};
    int32_t idx[2] = {-1, 0};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){2, 3}, x),
                              tensor(&f, IR_DT_INT32, 1, (int64_t[]){2}, idx)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_gather, ref_gather, in, out), OCT_OK);
    assert_dims(out[0], 2, (int64_t[]){2, 2});
    assert_floats(out[0], (float[]){2, 0, 12, 10}, 4);
    done(&f);
}

static void gather_out_of_range_index_is_diagnostic(void **state)
{
    fixture f;
    make_node(&f, "Gather", 2, 1);
    uint8_t x[3] = {1, 2, 3};
    int64_t idx[1] = {3};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_UINT8, 1, (int64_t[]){3}, x),
                              tensor(&f, IR_DT_INT64, 1, (int64_t[]){1}, idx)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_gather, ref_gather, in, out), OCT_EINPUT);
    assert_int_equal(last_diag(&f)->io_index, 1);
    assert_string_equal(last_diag(&f)->tensor, "in1");
    done(&f);
}

static void concat_strings_along_axis0(void **state)
{
    fixture f;
    make_node(&f, "Concat", 2, 1);
    attr_int(&f, "axis", 0);
    ir_blob a[1] = {{(uint8_t *)"ab", 2}}, b[2] = {{(uint8_t *)"c", 1}, {NULL, 0}};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_STRING, 1, (int64_t[]){1}, a),
                              tensor(&f, IR_DT_STRING, 1, (int64_t[]){2}, b)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_concat, ref_concat, in, out), OCT_OK);
    const ir_blob *y = out[0]->data;
    assert_int_equal(out[0]->nelems, 3);
    assert_int_equal(y[0].len, 2);
    assert_memory_equal(y[0].data, "ab", 2);
    assert_true(y[0].data != a[0].data);
    assert_int_equal(y[1].len, 1);
    assert_int_equal(y[2].len, 0);
    done(&f);
}

static void concat_dim_mismatch_names_input(void **state)
{
    fixture f;
    make_node(&f, "Concat", 2, 1);
    attr_int(&f, "axis", 1);
    ops_shape ins[2] = {{IR_DT_FLOAT, 2, {2, 3}}, {IR_DT_FLOAT, 2, {4, 1}}};
    const ir_tensor *consts[2] = {NULL, NULL};
    ops_shape out[1];
    assert_int_equal(infer(&f, 13, ops_shape_concat, ins, consts, out), OCT_EINPUT);
    assert_int_equal(last_diag(&f)->io_index, 1);
    done(&f);
}

static void concat_mixed_unknown_axis_dim(void **state)
{
    fixture f;
    make_node(&f, "Concat", 2, 1);
    attr_int(&f, "axis", -1);
    ops_shape ins[2] = {{IR_DT_INT64, 1, {2}}, {IR_DT_INT64, 1, {-1}}};
    const ir_tensor *consts[2] = {NULL, NULL};
    ops_shape out[1];
    assert_int_equal(infer(&f, 13, ops_shape_concat, ins, consts, out), OCT_OK);
    assert_int_equal(out[0].rank, 1);
    assert_int_equal(out[0].dims[0], -1);
    done(&f);
}

static void split_num_outputs_uneven_last_chunk(void **state)
{
    fixture f;
    make_node(&f, "Split", 1, 3);
    attr_int(&f, "num_outputs", 3);
    float x[7] = {0, 1, 2, 3, 4, 5, 6};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){7}, x)};
    ir_tensor *out[3];
    assert_int_equal(run(&f, 18, ops_shape_split, ref_split, in, out), OCT_OK);
    assert_floats(out[0], (float[]){0, 1, 2}, 3);
    assert_floats(out[1], (float[]){3, 4, 5}, 3);
    assert_floats(out[2], (float[]){6}, 1);
    done(&f);
}

static void split_sizes_must_sum_to_axis(void **state)
{
    fixture f;
    make_node(&f, "Split", 2, 2);
    attr_int(&f, "axis", 1);
    int64_t sizes[2] = {1, 1};
    float x[6] = {0};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){2, 3}, x),
                              tensor(&f, IR_DT_INT64, 1, (int64_t[]){2}, sizes)};
    ir_tensor *out[2];
    assert_int_equal(run(&f, 13, ops_shape_split, ref_split, in, out), OCT_EINPUT);
    done(&f);
}

static void split_2d_axis1_attribute(void **state)
{
    fixture f;
    make_node(&f, "Split", 1, 2);
    attr_int(&f, "axis", 1);
    attr_ints(&f, "split", (int64_t[]){1, 2}, 2);
    float x[6] = {0, 1, 2, 3, 4, 5};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){2, 3}, x)};
    ir_tensor *out[2];
    assert_int_equal(run(&f, 11, ops_shape_split, ref_split, in, out), OCT_OK);
    assert_floats(out[0], (float[]){0, 3}, 2);
    assert_floats(out[1], (float[]){1, 2, 4, 5}, 4);
    done(&f);
}

static void reshape_zero_copies_and_minus_one_infers(void **state)
{
    fixture f;
    make_node(&f, "Reshape", 2, 1);
    float x[24] = {0};
    int64_t shape[3] = {0, -1, 2};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_FLOAT, 3, (int64_t[]){2, 3, 4}, x),
                              tensor(&f, IR_DT_INT64, 1, (int64_t[]){3}, shape)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_reshape, ref_reshape, in, out), OCT_OK);
    assert_dims(out[0], 3, (int64_t[]){2, 6, 2});
    done(&f);
}

static void reshape_allowzero_keeps_zero(void **state)
{
    fixture f;
    make_node(&f, "Reshape", 2, 1);
    attr_int(&f, "allowzero", 1);
    int64_t shape[2] = {0, 4};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){0, 4}, NULL),
                              tensor(&f, IR_DT_INT64, 1, (int64_t[]){2}, shape)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 14, ops_shape_reshape, ref_reshape, in, out), OCT_OK);
    assert_dims(out[0], 2, (int64_t[]){0, 4});
    done(&f);
}

static void reshape_count_mismatch_names_shape_input(void **state)
{
    fixture f;
    make_node(&f, "Reshape", 2, 1);
    int64_t shape[2] = {5, 5};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){24}, NULL),
                              tensor(&f, IR_DT_INT64, 1, (int64_t[]){2}, shape)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_reshape, ref_reshape, in, out), OCT_EINPUT);
    assert_int_equal(last_diag(&f)->io_index, 1);
    done(&f);
}

static void reshape_unknown_shape_known_length_gives_rank(void **state)
{
    fixture f;
    make_node(&f, "Reshape", 2, 1);
    ops_shape ins[2] = {{IR_DT_FLOAT, 2, {-1, 8}}, {IR_DT_INT64, 1, {3}}};
    const ir_tensor *consts[2] = {NULL, NULL};
    ops_shape out[1];
    assert_int_equal(infer(&f, 13, ops_shape_reshape, ins, consts, out), OCT_OK);
    assert_int_equal(out[0].rank, 3);
    assert_int_equal(out[0].dims[2], -1);
    done(&f);
}

static void squeeze_and_unsqueeze_axes(void **state)
{
    fixture f;
    make_node(&f, "Unsqueeze", 2, 1);
    int64_t axes[2] = {-1, 0};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_BOOL, 1, (int64_t[]){3}, "\1\0\1"),
                              tensor(&f, IR_DT_INT64, 1, (int64_t[]){2}, axes)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_unsqueeze, ref_unsqueeze, in, out), OCT_OK);
    assert_dims(out[0], 3, (int64_t[]){1, 3, 1});
    assert_memory_equal(out[0]->data, "\1\0\1", 3);
    done(&f);

    make_node(&f, "Squeeze", 1, 1);
    const ir_tensor *in2[1] = {tensor(&f, IR_DT_FLOAT, 4, (int64_t[]){1, 3, 1, 2}, NULL)};
    assert_int_equal(run(&f, 11, ops_shape_squeeze, ref_squeeze, in2, out), OCT_OK);
    assert_dims(out[0], 2, (int64_t[]){3, 2});
    done(&f);

    make_node(&f, "Squeeze", 1, 1);
    attr_ints(&f, "axes", (int64_t[]){1}, 1);
    assert_int_equal(run(&f, 11, ops_shape_squeeze, ref_squeeze,
                         (const ir_tensor *[]){tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){1, 3}, NULL)},
                         out), OCT_EINPUT);
    done(&f);
}

static void flatten_negative_axis(void **state)
{
    fixture f;
    make_node(&f, "Flatten", 1, 1);
    attr_int(&f, "axis", -1);
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 3, (int64_t[]){2, 3, 4}, NULL)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_flatten, ref_flatten, in, out), OCT_OK);
    assert_dims(out[0], 2, (int64_t[]){6, 4});
    done(&f);
}

static void shape_start_end_clamp(void **state)
{
    fixture f;
    make_node(&f, "Shape", 1, 1);
    attr_int(&f, "start", -2);
    attr_int(&f, "end", 100);
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 3, (int64_t[]){2, 3, 4}, NULL)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 15, ops_shape_shapeof, ref_shapeof, in, out), OCT_OK);
    assert_dims(out[0], 1, (int64_t[]){2});
    assert_memory_equal(out[0]->data, ((int64_t[]){3, 4}), 16);
    done(&f);
}

static void constantofshape_fills_value(void **state)
{
    fixture f;
    make_node(&f, "ConstantOfShape", 1, 1);
    ir_attr *a = add_attr(&f, "value", IR_ATTR_TENSOR);
    int32_t seven = 7;
    a->t = tensor(&f, IR_DT_INT32, 1, (int64_t[]){1}, &seven);
    int64_t shape[2] = {2, 2};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_INT64, 1, (int64_t[]){2}, shape)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_constantofshape, ref_constantofshape, in, out), OCT_OK);
    assert_dims(out[0], 2, (int64_t[]){2, 2});
    assert_memory_equal(out[0]->data, ((int32_t[]){7, 7, 7, 7}), 16);
    done(&f);
}

static void constant_value_ints_and_sparse(void **state)
{
    fixture f;
    make_node(&f, "Constant", 0, 1);
    attr_ints(&f, "value_ints", (int64_t[]){4, -5}, 2);
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_constant, ref_constant, NULL, out), OCT_OK);
    assert_int_equal(out[0]->dtype, IR_DT_INT64);
    assert_memory_equal(out[0]->data, ((int64_t[]){4, -5}), 16);
    done(&f);

    make_node(&f, "Constant", 0, 1);
    add_attr(&f, "sparse_value", IR_ATTR_SPARSE_TENSOR);
    assert_int_equal(run(&f, 13, ops_shape_constant, ref_constant, NULL, out),
                     OCT_EUNSUPPORTED);
    done(&f);
}

static void expand_broadcasts_both_ways(void **state)
{
    fixture f;
    make_node(&f, "Expand", 2, 1);
    float x[3] = {1, 2, 3};
    int64_t shape[3] = {2, 1, 2};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){3, 1}, x),
                              tensor(&f, IR_DT_INT64, 1, (int64_t[]){3}, shape)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_expand, ref_expand, in, out), OCT_OK);
    assert_dims(out[0], 3, (int64_t[]){2, 3, 2});
    assert_floats(out[0], (float[]){1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}, 12);
    done(&f);
}

static void expand_unknown_shape_keeps_rank(void **state)
{
    fixture f;
    make_node(&f, "Expand", 2, 1);
    ops_shape ins[2] = {{IR_DT_FLOAT, 1, {4}}, {IR_DT_INT64, 1, {3}}};
    const ir_tensor *consts[2] = {NULL, NULL};
    ops_shape out[1];
    assert_int_equal(infer(&f, 13, ops_shape_expand, ins, consts, out), OCT_OK);
    assert_int_equal(out[0].rank, 3);
    assert_int_equal(out[0].dims[0], -1);
    done(&f);
}

static void tile_repeats_int8(void **state)
{
    fixture f;
    make_node(&f, "Tile", 2, 1);
    int8_t x[4] = {1, 2, 3, 4};
    int64_t reps[2] = {2, 2};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_INT8, 2, (int64_t[]){2, 2}, x),
                              tensor(&f, IR_DT_INT64, 1, (int64_t[]){2}, reps)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_tile, ref_tile, in, out), OCT_OK);
    assert_dims(out[0], 2, (int64_t[]){4, 4});
    int8_t want[16] = {1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4};
    assert_memory_equal(out[0]->data, want, 16);
    done(&f);
}

static void spacetodepth_inverts_depthtospace_dcr(void **state)
{
    fixture f;
    make_node(&f, "DepthToSpace", 1, 1);
    attr_int(&f, "blocksize", 2);
    float x[48];
    for (int i = 0; i < 48; i++)
        x[i] = (float)i;
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 4, (int64_t[]){1, 8, 2, 3}, x)};
    ir_tensor *mid[1];
    assert_int_equal(run(&f, 13, ops_shape_depthtospace, ref_depthtospace, in, mid), OCT_OK);
    assert_dims(mid[0], 4, (int64_t[]){1, 2, 4, 6});
    /* DCR: y[0, c, 2h + b1, 2w + b2] = x[0, b1 * 4 + b2 * 2 + c, h, w] */
    const float *m = mid[0]->data;
    assert_true(m[0 * 24 + 1 * 6 + 0] == x[(1 * 4 + 0 * 2 + 0) * 6 + 0]);
    assert_true(m[1 * 24 + 3 * 6 + 5] == x[(1 * 4 + 1 * 2 + 1) * 6 + 1 * 3 + 2]);
    ir_node *d2s = f.node;
    f.node = ir_graph_add_node(f.ctx, f.g, "SpaceToDepth", "", "n1", 1, 1);
    f.node->in[0] = d2s->out[0];
    ir_node_set_output(f.node, 0, ir_graph_value(f.ctx, f.g, "back"));
    attr_int(&f, "blocksize", 2);
    ir_tensor *back[1];
    const ir_tensor *in2[1] = {mid[0]};
    assert_int_equal(run(&f, 13, ops_shape_spacetodepth, ref_spacetodepth, in2, back), OCT_OK);
    assert_dims(back[0], 4, (int64_t[]){1, 8, 2, 3});
    assert_memory_equal(back[0]->data, x, sizeof x);
    done(&f);
}

static void gather_elements_spec_example(void **state)
{
    fixture f;
    make_node(&f, "GatherElements", 2, 1);
    attr_int(&f, "axis", 1);
    float x[4] = {1, 2, 3, 4};
    int64_t idx[4] = {0, 0, 1, 0};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){2, 2}, x),
                              tensor(&f, IR_DT_INT64, 2, (int64_t[]){2, 2}, idx)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_gatherelements, ref_gatherelements, in, out), OCT_OK);
    assert_floats(out[0], (float[]){1, 1, 4, 3}, 4);
    done(&f);
}

static void trilu_lower_below_diagonal(void **state)
{
    fixture f;
    make_node(&f, "Trilu", 2, 1);
    attr_int(&f, "upper", 0);
    int32_t x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int64_t k = -1;
    const ir_tensor *in[2] = {tensor(&f, IR_DT_INT32, 2, (int64_t[]){3, 3}, x),
                              tensor(&f, IR_DT_INT64, 0, NULL, &k)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 14, ops_shape_trilu, ref_trilu, in, out), OCT_OK);
    int32_t want[9] = {0, 0, 0, 4, 0, 0, 7, 8, 0};
    assert_memory_equal(out[0]->data, want, sizeof want);
    done(&f);
}

static void range_negative_delta_rounds_count_up(void **state)
{
    fixture f;
    make_node(&f, "Range", 3, 1);
    int32_t start = 10, limit = 4, delta = -4;
    const ir_tensor *in[3] = {tensor(&f, IR_DT_INT32, 0, NULL, &start),
                              tensor(&f, IR_DT_INT32, 0, NULL, &limit),
                              tensor(&f, IR_DT_INT32, 0, NULL, &delta)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 11, ops_shape_range, ref_range, in, out), OCT_OK);
    /* ceil(-6 / -4) = 2 elements: 10, 6 */
    assert_dims(out[0], 1, (int64_t[]){2});
    assert_memory_equal(out[0]->data, ((int32_t[]){10, 6}), 8);
    done(&f);
}

static void static_rules_report_unknown_without_constants(void **state)
{
    fixture f;
    const ir_tensor *consts[2] = {NULL, NULL};
    ops_shape out[2];

    make_node(&f, "Squeeze", 2, 1);
    ops_shape sq[2] = {{IR_DT_FLOAT, 3, {1, 4, 1}}, {IR_DT_INT64, 1, {1}}};
    assert_int_equal(infer(&f, 13, ops_shape_squeeze, sq, consts, out), OCT_OK);
    assert_int_equal(out[0].rank, -1);
    done(&f);

    make_node(&f, "Split", 2, 2);
    attr_int(&f, "axis", 1);
    ops_shape sp[2] = {{IR_DT_FLOAT, 2, {5, 6}}, {IR_DT_INT64, 1, {2}}};
    assert_int_equal(infer(&f, 13, ops_shape_split, sp, consts, out), OCT_OK);
    assert_int_equal(out[1].rank, 2);
    assert_int_equal(out[1].dims[0], 5);
    assert_int_equal(out[1].dims[1], -1);
    done(&f);

    make_node(&f, "ConstantOfShape", 1, 1);
    ops_shape cs[1] = {{IR_DT_INT64, 1, {3}}};
    assert_int_equal(infer(&f, 13, ops_shape_constantofshape, cs, consts, out), OCT_OK);
    assert_int_equal(out[0].rank, 3);
    assert_int_equal(out[0].dims[1], -1);
    assert_int_equal(out[0].dtype, IR_DT_FLOAT);
    done(&f);

    make_node(&f, "Shape", 1, 1);
    ops_shape sh[1] = {{IR_DT_FLOAT, -1, {0}}};
    assert_int_equal(infer(&f, 15, ops_shape_shapeof, sh, consts, out), OCT_OK);
    assert_int_equal(out[0].rank, 1);
    assert_int_equal(out[0].dims[0], -1);
    assert_int_equal(out[0].dtype, IR_DT_INT64);
    done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transpose_default_perm_reverses_dims),
        cmocka_unit_test(transpose_int4_moves_packed_nibbles),
        cmocka_unit_test(transpose_nchw_to_nhwc_int64),
        cmocka_unit_test(slice_negative_step_from_int64_max_clamps),
        cmocka_unit_test(slice_huge_negative_step_takes_one_element),
        cmocka_unit_test(slice_opset1_attributes_2d),
        cmocka_unit_test(slice_unknown_starts_gives_unknown_dims),
        cmocka_unit_test(gather_negative_indices_on_axis1),
        cmocka_unit_test(gather_out_of_range_index_is_diagnostic),
        cmocka_unit_test(concat_strings_along_axis0),
        cmocka_unit_test(concat_dim_mismatch_names_input),
        cmocka_unit_test(concat_mixed_unknown_axis_dim),
        cmocka_unit_test(split_num_outputs_uneven_last_chunk),
        cmocka_unit_test(split_sizes_must_sum_to_axis),
        cmocka_unit_test(split_2d_axis1_attribute),
        cmocka_unit_test(reshape_zero_copies_and_minus_one_infers),
        cmocka_unit_test(reshape_allowzero_keeps_zero),
        cmocka_unit_test(reshape_count_mismatch_names_shape_input),
        cmocka_unit_test(reshape_unknown_shape_known_length_gives_rank),
        cmocka_unit_test(squeeze_and_unsqueeze_axes),
        cmocka_unit_test(flatten_negative_axis),
        cmocka_unit_test(shape_start_end_clamp),
        cmocka_unit_test(constantofshape_fills_value),
        cmocka_unit_test(constant_value_ints_and_sparse),
        cmocka_unit_test(static_rules_report_unknown_without_constants),
        cmocka_unit_test(expand_broadcasts_both_ways),
        cmocka_unit_test(expand_unknown_shape_keeps_rank),
        cmocka_unit_test(tile_repeats_int8),
        cmocka_unit_test(spacetodepth_inverts_depthtospace_dcr),
        cmocka_unit_test(gather_elements_spec_example),
        cmocka_unit_test(trilu_lower_below_diagonal),
        cmocka_unit_test(range_negative_delta_rounds_count_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
