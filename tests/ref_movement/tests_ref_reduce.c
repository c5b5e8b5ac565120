/*
 * tests_ref_reduce.c: unit tests of the reference shape rules and kernels
 * for softmax, normalization and reductions (split from
 * tests_ref_movement.c).  Each test builds a node by hand, runs its shape
 * rule and kernel, and compares with values computed by hand from the ONNX
 * operator spec (numpy semantics).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "ref_fixture.h"

/* ---- tests --------------------------------------------------------------- */

static void softmax_opset11_coerces_to_2d(void **state)
{
    /* x of shape [1, 2, 2] = [[[0, 1], [2, 3]]]; axis 1.
     * opset 11: one row of 4: e^k / (1 + e + e^2 + e^3).
     * opset 13: along dim 1: pairs (0, 2) and (1, 3). */
    float x[4] = {0, 1, 2, 3};
    double s4 = 1 + exp(1) + exp(2) + exp(3);
    float want11[4] = {(float)(1 / s4), (float)(exp(1) / s4),
                       (float)(exp(2) / s4), (float)(exp(3) / s4)};
    double lo = 1 / (1 + exp(2)), hi = exp(2) / (1 + exp(2));
    float want13[4] = {(float)lo, (float)lo, (float)hi, (float)hi};
    for (int v = 0; v < 2; v++) {
        fixture f;
        make_node(&f, "Softmax", 1, 1);
        attr_int(&f, "axis", 1);
        const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 3, (int64_t[]){1, 2, 2}, x)};
        ir_tensor *out[1];
        assert_int_equal(run(&f, v ? 13 : 11, ops_shape_softmax, ref_softmax, in, out), OCT_OK);
        assert_floats(out[0], v ? want13 : want11, 4);
        done(&f);
    }
}

static void logsoftmax_large_numbers_are_stable(void **state)
{
    fixture f;
    make_node(&f, "LogSoftmax", 1, 1);
    float x[2] = {10000, 10001};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){2}, x)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_softmax, ref_softmax, in, out), OCT_OK);
    double l = log(1 + exp(-1.0));
    assert_floats(out[0], (float[]){(float)(-1 - l), (float)-l}, 2);
    done(&f);
}

static void reduce_sum_axes_input_and_keepdims(void **state)
{
    fixture f;
    make_node(&f, "ReduceSum", 2, 1);
    attr_int(&f, "keepdims", 0);
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t axes[1] = {-2};
    const ir_tensor *in[2] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){2, 3}, x),
                              tensor(&f, IR_DT_INT64, 1, (int64_t[]){1}, axes)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_reduce, ref_reduce, in, out), OCT_OK);
    assert_dims(out[0], 1, (int64_t[]){3});
    assert_floats(out[0], (float[]){5, 7, 9}, 3);
    done(&f);
}

static void reduce_mean_all_axes_by_default(void **state)
{
    fixture f;
    make_node(&f, "ReduceMean", 1, 1);
    int32_t x[4] = {1, 2, 3, 5};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_INT32, 2, (int64_t[]){2, 2}, x)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_reduce, ref_reduce, in, out), OCT_OK);
    assert_dims(out[0], 2, (int64_t[]){1, 1});
    assert_int_equal(((int32_t *)out[0]->data)[0], 2); /* 11/4 truncated */
    done(&f);
}

static void reduce_max_empty_set_is_minus_inf(void **state)
{
    fixture f;
    make_node(&f, "ReduceMax", 1, 1);
    attr_ints(&f, "axes", (int64_t[]){1}, 1);
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){2, 0}, NULL)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_reduce, ref_reduce, in, out), OCT_OK);
    assert_dims(out[0], 2, (int64_t[]){2, 1});
    assert_true(isinf(((float *)out[0]->data)[0]) && ((float *)out[0]->data)[0] < 0);
    done(&f);
}

static void batchnorm_inference_per_channel(void **state)
{
    fixture f;
    make_node(&f, "BatchNormalization", 5, 1);
    add_attr(&f, "epsilon", IR_ATTR_FLOAT)->f = 0.0f;
    float x[4] = {1, 2, 3, 4}; /* N=1, C=2, 2 elements each */
    float scale[2] = {2, 1}, b[2] = {0, 1}, mean[2] = {1, 3}, var[2] = {4, 1};
    const ir_tensor *in[5] = {
        tensor(&f, IR_DT_FLOAT, 3, (int64_t[]){1, 2, 2}, x),
        tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){2}, scale),
        tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){2}, b),
        tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){2}, mean),
        tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){2}, var)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 15, ops_shape_batchnorm, ref_batchnorm, in, out), OCT_OK);
    /* c0: (x-1)/2*2 -> 0, 1; c1: (x-3)/1+1 -> 1, 2 */
    assert_floats(out[0], (float[]){0, 1, 1, 2}, 4);
    done(&f);
}

static void layernorm_last_axis_with_mean_output(void **state)
{
    fixture f;
    make_node(&f, "LayerNormalization", 3, 3);
    add_attr(&f, "epsilon", IR_ATTR_FLOAT)->f = 0.0f;
    float x[4] = {1, 2, 3, 4}, scale[4] = {1, 1, 2, 2}, b[4] = {0, 0, 0, 1};
    const ir_tensor *in[3] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){1, 4}, x),
                              tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){4}, scale),
                              tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){4}, b)};
    ir_tensor *out[3];
    assert_int_equal(run(&f, 17, ops_shape_layernorm, ref_layernorm, in, out), OCT_OK);
    double inv = 1 / sqrt(1.25);
    assert_floats(out[0], (float[]){(float)(-1.5 * inv), (float)(-0.5 * inv),
                                    (float)(1.0 * inv), (float)(3.0 * inv + 1)}, 4);
    assert_dims(out[1], 2, (int64_t[]){1, 1});
    assert_floats(out[1], (float[]){2.5f}, 1);
    assert_floats(out[2], (float[]){(float)inv}, 1);
    done(&f);
}

static void instancenorm_per_instance_channel(void **state)
{
    fixture f;
    make_node(&f, "InstanceNormalization", 3, 1);
    add_attr(&f, "epsilon", IR_ATTR_FLOAT)->f = 0.0f;
    float x[4] = {1, 3, 10, 14}, scale[2] = {1, 2}, b[2] = {0, 5};
    const ir_tensor *in[3] = {tensor(&f, IR_DT_FLOAT, 3, (int64_t[]){1, 2, 2}, x),
                              tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){2}, scale),
                              tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){2}, b)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_instancenorm, ref_instancenorm, in, out), OCT_OK);
    /* c0: mean 2, std 1 -> -1, 1; c1: mean 12, std 2 -> 2 * (-1, 1) + 5 */
    assert_floats(out[0], (float[]){-1, 1, 3, 7}, 4);
    done(&f);
}

static void dropout_inference_mask_all_true(void **state)
{
    fixture f;
    make_node(&f, "Dropout", 1, 2);
    float x[3] = {1, -2, 3};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){3}, x)};
    ir_tensor *out[2];
    assert_int_equal(run(&f, 13, ops_shape_dropout, ref_dropout, in, out), OCT_OK);
    assert_floats(out[0], x, 3);
    assert_int_equal(out[1]->dtype, IR_DT_BOOL);
    assert_memory_equal(out[1]->data, "\1\1\1", 3);
    done(&f);
}

static void argmax_select_last_index(void **state)
{
    fixture f;
    make_node(&f, "ArgMax", 1, 1);
    attr_int(&f, "axis", 1);
    attr_int(&f, "keepdims", 0);
    attr_int(&f, "select_last_index", 1);
    float x[6] = {3, 1, 3, 0, 5, 5};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_FLOAT, 2, (int64_t[]){2, 3}, x)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_argmax, ref_argmax, in, out), OCT_OK);
    assert_dims(out[0], 1, (int64_t[]){2});
    assert_memory_equal(out[0]->data, ((int64_t[]){2, 2}), 16);
    done(&f);
}

static void reduce_prod_and_l2_int_and_float(void **state)
{
    fixture f;
    make_node(&f, "ReduceProd", 1, 1);
    attr_ints(&f, "axes", (int64_t[]){0}, 1);
    int64_t xi[4] = {2, -3, 4, 5};
    const ir_tensor *in[1] = {tensor(&f, IR_DT_INT64, 2, (int64_t[]){2, 2}, xi)};
    ir_tensor *out[1];
    assert_int_equal(run(&f, 13, ops_shape_reduce, ref_reduce, in, out), OCT_OK);
    assert_memory_equal(out[0]->data, ((int64_t[]){8, -15}), 16);
    done(&f);

    make_node(&f, "ReduceL2", 1, 1);
    attr_int(&f, "keepdims", 0);
    float xf[2] = {3, 4};
    const ir_tensor *in2[1] = {tensor(&f, IR_DT_FLOAT, 1, (int64_t[]){2}, xf)};
    assert_int_equal(run(&f, 13, ops_shape_reduce, ref_reduce, in2, out), OCT_OK);
    assert_int_equal(out[0]->rank, 0);
    assert_floats(out[0], (float[]){5}, 1);
    done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(softmax_opset11_coerces_to_2d),
        cmocka_unit_test(logsoftmax_large_numbers_are_stable),
        cmocka_unit_test(reduce_sum_axes_input_and_keepdims),
        cmocka_unit_test(reduce_mean_all_axes_by_default),
        cmocka_unit_test(reduce_max_empty_set_is_minus_inf),
        cmocka_unit_test(batchnorm_inference_per_channel),
        cmocka_unit_test(layernorm_last_axis_with_mean_output),
        cmocka_unit_test(instancenorm_per_instance_channel),
        cmocka_unit_test(dropout_inference_mask_all_true),
        cmocka_unit_test(argmax_select_last_index),
        cmocka_unit_test(reduce_prod_and_l2_int_and_float),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
