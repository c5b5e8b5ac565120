/*
 * shape_qlinear.c: the shape and type rules of MatMulInteger, QLinearMatMul,
 * QGemm and MatMulIntegerToFloat, and the type and scale checks the integer
 * linear ops share. Shared by the shape-inference pass and the interpreter,
 * whose kernels are in src/ref/qlinear.c.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

oct_status ops_qlin_check_type(ops_infer *inf, int i, bool (*ok)(ir_dtype), const char *what)
{
    ir_dtype dt = inf->in[i].dtype;
    if (dt != IR_DT_UNDEFINED && !ok(dt))
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                               "type %s: expected %s", ir_dtype_name(dt), what);
    return OCT_OK;
}

oct_status ops_qlin_require_scales(oct_ctx *ctx, const ir_node *node, int n_in)
{
    static const int scales[3] = {1, 4, 6};
    for (int j = 0; j < 3; j++)
        if (scales[j] >= n_in || !node->in[scales[j]])
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "input %d (a scale) is required",
                                  scales[j]);
    return OCT_OK;
}

ir_dtype ops_qlin_requant_out_type(const ops_infer *inf)
{
    if (inf->n_in > 7 && inf->node->in[7])
        return inf->in[7].dtype;
    return inf->in[0].dtype;
}

oct_status ops_qlin_check_scale_values(oct_ctx *ctx, const ir_node *node, int i,
                                       const ir_tensor *t)
{
    if (!t)
        return OCT_OK;
    for (uint64_t k = 0; k < t->nelems; k++) {
        double s = ops_get(t, k);
        if (!(s > 0.0) || !isfinite(s))
            return oct_input_error(ctx, OCT_EINPUT, node, i,
                                   "scale element %llu is %g: scales must be "
                                   "positive and finite",
                                   (unsigned long long)k, s);
    }
    return OCT_OK;
}

/* numpy.matmul shapes: a 1-D a is [1, K] (the 1 dropped from the result), a
 * 1-D b is [K, 1] (likewise); batch dims broadcast. */
static oct_status mm_shape(ops_infer *inf, int ia, int ib, ir_dtype out_dt,
                           ops_shape *out)
{
    const ops_shape *a = &inf->in[ia], *b = &inf->in[ib];
    memset(out, 0, sizeof *out);
    out->dtype = out_dt;
    if (a->rank < 0 || b->rank < 0) {
        out->rank = -1;
        return OCT_OK;
    }
    if (a->rank == 0)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, ia,
                               "matmul input must have rank >= 1");
    if (b->rank == 0)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, ib,
                               "matmul input must have rank >= 1");
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->dims[b->rank == 1 ? 0 : b->rank - 2];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, ib,
                               "inner dimensions differ: %lld vs %lld",
                               (long long)ka, (long long)kb);
    ops_shape ba = {0}, bb = {0}, bo;
    ba.rank = a->rank > 2 ? a->rank - 2 : 0;
    bb.rank = b->rank > 2 ? b->rank - 2 : 0;
    memcpy(ba.dims, a->dims, (size_t)ba.rank * sizeof(int64_t));
    memcpy(bb.dims, b->dims, (size_t)bb.rank * sizeof(int64_t));
    if (!ops_broadcast(inf, &ba, &bb, &bo))
        return OCT_EINPUT;
    out->rank = bo.rank;
    memcpy(out->dims, bo.dims, (size_t)bo.rank * sizeof(int64_t));
    if (a->rank >= 2)
        out->dims[out->rank++] = a->dims[a->rank - 2];
    if (b->rank >= 2)
        out->dims[out->rank++] = b->dims[b->rank - 1];
    return OCT_OK;
}

oct_status ops_shape_matmulinteger(ops_infer *inf)
{
    oct_status st = ops_qlin_check_type(inf, 0, ops_is_8bit_int, "int8 or uint8");
    if (st == OCT_OK)
        st = ops_qlin_check_type(inf, 1, ops_is_8bit_int, "int8 or uint8");
    for (int i = 2; st == OCT_OK && i < 4 && i < inf->n_in; i++)
        if (inf->node->in[i] && inf->in[i].dtype != IR_DT_UNDEFINED &&
            inf->in[i - 2].dtype != IR_DT_UNDEFINED &&
            inf->in[i].dtype != inf->in[i - 2].dtype)
            st = oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                                 "zero point type %s differs from its input's "
                                 "%s", ir_dtype_name(inf->in[i].dtype),
                                 ir_dtype_name(inf->in[i - 2].dtype));
    if (st != OCT_OK)
        return st;
    return mm_shape(inf, 0, 1, IR_DT_INT32, &inf->out[0]);
}

oct_status ops_shape_qlinearmatmul(ops_infer *inf)
{
    static const int q8[5] = {0, 2, 3, 5, 7}, scales[3] = {1, 4, 6};
    oct_status st = ops_qlin_require_scales(inf->ctx, inf->node, inf->n_in);
    /* float8 variants (opset 21) have no agreed integer semantics yet. */
    for (int j = 0; j < 5 && st == OCT_OK; j++)
        st = ops_qlin_check_type(inf, q8[j], ops_is_8bit_int, "int8 or uint8");
    for (int j = 0; j < 3 && st == OCT_OK; j++) {
        st = ops_qlin_check_type(inf, scales[j], ops_is_float_scale,
                        "float, float16 or bfloat16 scale");
        if (st == OCT_OK && inf->in_const[scales[j]])
            st = ops_qlin_check_scale_values(inf->ctx, inf->node, scales[j],
                                    inf->in_const[scales[j]]);
    }
    for (int j = 1; j < 3 && st == OCT_OK; j++)
        if (inf->in[scales[j]].dtype != inf->in[1].dtype &&
            inf->in[1].dtype && inf->in[scales[j]].dtype)
            st = oct_input_error(inf->ctx, OCT_EINPUT, inf->node, scales[j],
                                 "scales must share one type");
    if (st == OCT_OK && ops_shape_known_elems(&inf->in[6]) > 1)
        st = oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 6,
                             "output scale must be per tensor");
    if (st == OCT_OK && ops_shape_known_elems(&inf->in[7]) > 1)
        st = oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 7,
                             "output zero point must be per tensor");
    if (st != OCT_OK)
        return st;
    return mm_shape(inf, 0, 3, ops_qlin_requant_out_type(inf), &inf->out[0]);
}

oct_status ops_qgemm_form(oct_ctx *ctx, const ir_node *node, int n_in,
                          const ir_tensor *bias_or_null, int64_t n_cols)
{
    if (ir_attr_int(node, "transA", 0) != 0)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, node, "transA=1 is not supported");
    if (ir_attr_float(node, "alpha", 1.0f) != 1.0f)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, node, "alpha != 1 is not supported");
    if (n_in < 9 || !node->in[7] || !node->in[8])
        return oct_node_error(ctx, OCT_EUNSUPPORTED, node,
                              "a float output (no y_scale/y_zero_point) is not supported");
    if (bias_or_null && (int64_t)bias_or_null->nelems != n_cols)
        return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 6,
                               "bias must have one value per column (%lld)",
                               (long long)n_cols);
    return OCT_OK;
}

oct_status ops_shape_qgemm(ops_infer *inf)
{
    static const int q8[5] = {0, 2, 3, 5, 8}, scales[3] = {1, 4, 7};
    const ir_node *node = inf->node;
    oct_status st = ops_qgemm_form(inf->ctx, node, inf->n_in, NULL, 0);
    for (int j = 0; j < 5 && st == OCT_OK; j++)
        st = ops_qlin_check_type(inf, q8[j], ops_is_8bit_int, "int8 or uint8");
    for (int j = 0; j < 3 && st == OCT_OK; j++) {
        st = ops_qlin_check_type(inf, scales[j], ops_is_f32, "float scale");
        if (st == OCT_OK && inf->in_const[scales[j]])
            st = ops_qlin_check_scale_values(inf->ctx, node, scales[j], inf->in_const[scales[j]]);
    }
    if (st == OCT_OK && node->in[6])
        st = ops_qlin_check_type(inf, 6, ops_is_i32, "int32 bias");
    if (st != OCT_OK)
        return st;
    const ops_shape *a = &inf->in[0], *b = &inf->in[3];
    if (a->rank >= 0 && a->rank != 2)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 0, "A must be 2-D");
    if (b->rank >= 0 && b->rank != 2)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 3, "B must be 2-D");
    bool tb = ir_attr_int(node, "transB", 0) != 0;
    ops_shape *y = &inf->out[0];
    memset(y, 0, sizeof *y);
    y->dtype = inf->in[8].dtype;
    y->rank = 2;
    y->dims[0] = a->rank == 2 ? a->dims[0] : -1;
    y->dims[1] = b->rank == 2 ? b->dims[tb ? 0 : 1] : -1;
    int64_t ka = a->rank == 2 ? a->dims[1] : -1, kb = b->rank == 2 ? b->dims[tb ? 1 : 0] : -1;
    if (ka >= 0 && kb >= 0 && ka != kb)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 3,
                               "inner dimensions differ: %lld vs %lld", (long long)ka,
                               (long long)kb);
    return OCT_OK;
}

oct_status ops_shape_matmulintegertofloat(ops_infer *inf)
{
    static const int q8[4] = {0, 1, 4, 5};
    oct_status st = OCT_OK;
    for (int j = 0; j < 4 && st == OCT_OK; j++)
        if (j < 2 || (q8[j] < inf->n_in && inf->node->in[q8[j]]))
            st = ops_qlin_check_type(inf, q8[j], ops_is_8bit_int, "int8 or uint8");
    for (int j = 2; j <= 3 && st == OCT_OK; j++) {
        st = ops_qlin_check_type(inf, j, ops_is_f32, "float scale");
        if (st == OCT_OK && inf->in_const[j])
            st = ops_qlin_check_scale_values(inf->ctx, inf->node, j, inf->in_const[j]);
    }
    if (st == OCT_OK && ops_shape_known_elems(&inf->in[2]) > 1)
        st = oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, 2,
                             "a_scale must be per tensor");
    if (st == OCT_OK && inf->n_in > 6 && inf->node->in[6])
        st = ops_qlin_check_type(inf, 6, ops_is_f32, "float32 bias");
    if (st != OCT_OK)
        return st;
    return mm_shape(inf, 0, 1, IR_DT_FLOAT, &inf->out[0]);
}

oct_status ops_shape_dynquantmatmul(ops_infer *inf)
{
    oct_status st = ops_qlin_check_type(inf, 0, ops_is_f32, "float32 A");
    if (st == OCT_OK)
        st = ops_qlin_check_type(inf, 1, ops_is_8bit_int, "int8 or uint8");
    if (st == OCT_OK && inf->n_in > 3 && inf->node->in[3])
        st = ops_qlin_check_type(inf, 3, ops_is_8bit_int, "int8 or uint8");
    if (st == OCT_OK)
        st = ops_qlin_check_type(inf, 2, ops_is_f32, "float scale");
    if (st == OCT_OK && inf->in_const[2])
        st = ops_qlin_check_scale_values(inf->ctx, inf->node, 2, inf->in_const[2]);
    if (st == OCT_OK && inf->n_in > 4 && inf->node->in[4])
        st = ops_qlin_check_type(inf, 4, ops_is_f32, "float32 bias");
    if (st != OCT_OK)
        return st;
    return mm_shape(inf, 0, 1, IR_DT_FLOAT, &inf->out[0]);
}
