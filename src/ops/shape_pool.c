/*
 * shape_pool.c: the shape and type rules of MaxPool, AveragePool,
 * GlobalMaxPool and GlobalAveragePool. Shared by the shape-inference pass
 * and the interpreter, whose kernels are in src/ref/pool.c.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

#include "ops/ops.h"
#include "ops/rules.h"

static bool pool_dtype_ok(ir_op op, ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT: case IR_DT_DOUBLE: case IR_DT_FLOAT16:
    case IR_DT_BFLOAT16:
        return true;
    case IR_DT_INT8: case IR_DT_UINT8:
        return op == IR_OP_MAXPOOL || op == IR_OP_GLOBALMAXPOOL;
    default:
        return false;
    }
}

/* kernel_shape of a pooling node (required, one positive value per spatial
 * dim). */
oct_status ops_pool_kernel(oct_ctx *ctx, const ir_node *node, int ns,
                           int64_t *kernel)
{
    const ir_attr *ks = ir_node_attr(node, "kernel_shape");
    if (!ks)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "missing required attribute 'kernel_shape'");
    if (ks->type != IR_ATTR_INTS || ks->n != (size_t)ns)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "attribute 'kernel_shape' must list %d ints "
                              "(one per spatial dim)", ns);
    for (int i = 0; i < ns; i++) {
        if (ks->ints[i] <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "kernel_shape[%d] = %lld must be positive",
                                  i, (long long)ks->ints[i]);
        kernel[i] = ks->ints[i];
    }
    return OCT_OK;
}

static oct_status pool_check_attrs(oct_ctx *ctx, const ir_node *node)
{
    int64_t so = ir_attr_int(node, "storage_order", 0);
    if (so != 0 && so != 1)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "storage_order must be 0 or 1, got %lld",
                              (long long)so);
    int64_t cm = ir_attr_int(node, "ceil_mode", 0);
    if (cm != 0 && cm != 1)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "ceil_mode must be 0 or 1, got %lld",
                              (long long)cm);
    return OCT_OK;
}

oct_status ops_shape_pool(ops_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ops_shape *x = &inf->in[0];
    if (x->dtype != IR_DT_UNDEFINED && !pool_dtype_ok(node->op, x->dtype))
        return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 0,
                               "%s does not take %s", node->op_type,
                               ir_dtype_name(x->dtype));
    oct_status st = pool_check_attrs(ctx, node);
    if (st != OCT_OK)
        return st;
    for (int o = 0; o < inf->n_out; o++) {
        inf->out[o].dtype = o == 0 ? x->dtype : IR_DT_INT64;
        inf->out[o].rank = x->rank;
    }
    if (x->rank < 0)
        return OCT_OK;
    if (x->rank < 3 || x->rank > OPS_MAX_RANK)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "expected rank >= 3 (N, C, spatial...), got %d",
                               x->rank);
    int ns = x->rank - 2;
    int64_t kernel[OPS_MAX_RANK];
    st = ops_pool_kernel(ctx, node, ns, kernel);
    if (st != OCT_OK)
        return st;
    ops_window w;
    st = ops_window_init(ctx, node, x, kernel,
                         ir_attr_int(node, "ceil_mode", 0) != 0, &w);
    if (st != OCT_OK)
        return st;
    for (int o = 0; o < inf->n_out; o++) {
        inf->out[o].dims[0] = x->dims[0];
        inf->out[o].dims[1] = x->dims[1];
        for (int i = 0; i < ns; i++)
            inf->out[o].dims[i + 2] = w.out[i];
    }
    return OCT_OK;
}

oct_status ops_shape_globalpool(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    ops_shape *y = &inf->out[0];
    if (x->dtype != IR_DT_UNDEFINED && !pool_dtype_ok(inf->node->op, x->dtype))
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, 0,
                               "%s does not take %s", inf->node->op_type,
                               ir_dtype_name(x->dtype));
    y->dtype = x->dtype;
    y->rank = x->rank;
    if (x->rank < 0)
        return OCT_OK;
    if (x->rank < 3)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "expected rank >= 3 (N, C, spatial...), got %d",
                               x->rank);
    y->dims[0] = x->dims[0];
    y->dims[1] = x->dims[1];
    for (int i = 2; i < x->rank; i++)
        y->dims[i] = 1;
    return OCT_OK;
}
