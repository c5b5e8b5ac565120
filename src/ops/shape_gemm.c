/*
 * shape_gemm.c: the shape and type rules of Gemm and MatMul. Shared by the
 * shape-inference pass and the interpreter, whose kernels are in
 * src/ref/gemm.c.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static bool gemm_dtype_ok(ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT: case IR_DT_DOUBLE: case IR_DT_FLOAT16:
    case IR_DT_BFLOAT16: case IR_DT_INT32: case IR_DT_INT64:
    case IR_DT_UINT32: case IR_DT_UINT64:
        return true;
    default:
        return false;
    }
}

oct_status ops_shape_gemm(ops_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ops_shape *a = &inf->in[0], *b = &inf->in[1];
    const ops_shape *c =
        inf->n_in > 2 && node->n_in > 2 && node->in[2] ? &inf->in[2] : NULL;
    ops_shape *y = &inf->out[0];
    ir_dtype dt = a->dtype != IR_DT_UNDEFINED ? a->dtype : b->dtype;
    if (dt != IR_DT_UNDEFINED && !gemm_dtype_ok(dt))
        return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 0,
                               "Gemm does not take %s", ir_dtype_name(dt));
    for (int i = 1; i < 3; i++) {
        const ops_shape *s = i == 1 ? b : c;
        if (s && s->dtype != IR_DT_UNDEFINED && dt != IR_DT_UNDEFINED &&
            s->dtype != dt)
            return oct_input_error(ctx, OCT_EINPUT, node, i,
                                   "type %s differs from input A's %s",
                                   ir_dtype_name(s->dtype), ir_dtype_name(dt));
    }
    if (!c && inf->opset < 11)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "input C is required before opset 11");
    if (a->rank >= 0 && a->rank != 2)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "A must be 2-D, got rank %d", a->rank);
    if (b->rank >= 0 && b->rank != 2)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "B must be 2-D, got rank %d", b->rank);
    bool ta = ir_attr_int(node, "transA", 0) != 0;
    bool tb = ir_attr_int(node, "transB", 0) != 0;
    int64_t m = a->rank == 2 ? a->dims[ta ? 1 : 0] : -1;
    int64_t ka = a->rank == 2 ? a->dims[ta ? 0 : 1] : -1;
    int64_t kb = b->rank == 2 ? b->dims[tb ? 1 : 0] : -1;
    int64_t n = b->rank == 2 ? b->dims[tb ? 0 : 1] : -1;
    if (ka >= 0 && kb >= 0 && ka != kb)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "inner dimensions differ: A' is %lld x %lld, "
                               "B' is %lld x %lld", (long long)m, (long long)ka,
                               (long long)kb, (long long)n);
    if (c && c->rank >= 0) {
        bool exact = inf->opset < 7 && ir_attr_int(node, "broadcast", 0) == 0;
        int64_t want[2] = {m, n};
        if (c->rank > 2 || (exact && c->rank != 2))
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "C of rank %d does not broadcast to "
                                   "(M, N)", c->rank);
        for (int i = 0; i < c->rank; i++) {
            int64_t d = c->dims[i], w = want[2 - c->rank + i];
            if (d >= 0 && w >= 0 && d != w && (d != 1 || exact))
                return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                       "C dim %d is %lld, cannot broadcast "
                                       "to %lld", i, (long long)d, (long long)w);
        }
    }
    y->dtype = dt;
    y->rank = 2;
    y->dims[0] = m;
    y->dims[1] = n;
    return OCT_OK;
}

oct_status ops_shape_matmul(ops_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ops_shape *a = &inf->in[0], *b = &inf->in[1];
    ops_shape *y = &inf->out[0];
    ir_dtype dt = a->dtype != IR_DT_UNDEFINED ? a->dtype : b->dtype;
    if (dt != IR_DT_UNDEFINED && !gemm_dtype_ok(dt))
        return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 0,
                               "MatMul does not take %s", ir_dtype_name(dt));
    if (a->dtype != IR_DT_UNDEFINED && b->dtype != IR_DT_UNDEFINED &&
        a->dtype != b->dtype)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "type %s differs from input A's %s",
                               ir_dtype_name(b->dtype), ir_dtype_name(a->dtype));
    y->dtype = dt;
    if (a->rank == 0 || b->rank == 0)
        return oct_input_error(ctx, OCT_EINPUT, node, a->rank == 0 ? 0 : 1,
                               "MatMul operands must have rank >= 1");
    if (a->rank < 0 || b->rank < 0) {
        y->rank = -1;
        return OCT_OK;
    }
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "inner dimensions differ: A has %lld columns, "
                               "B has %lld rows", (long long)ka, (long long)kb);
    int abat = a->rank > 2 ? a->rank - 2 : 0, bbat = b->rank > 2 ? b->rank - 2 : 0;
    int nbat = abat > bbat ? abat : bbat;
    int rank = nbat + (a->rank > 1) + (b->rank > 1);
    if (rank > OPS_MAX_RANK)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, node, "result rank too high");
    for (int i = 0; i < nbat; i++) {
        int ia = abat - nbat + i, ib = bbat - nbat + i;
        int64_t x = ia >= 0 ? a->dims[ia] : 1, z = ib >= 0 ? b->dims[ib] : 1;
        int64_t d;
        if (x == z || z == 1)
            d = x;
        else if (x == 1)
            d = z;
        else if (x < 0)
            d = z;
        else if (z < 0)
            d = x;
        else
            return oct_input_error(ctx, OCT_EINPUT, node, 1,
                                   "batch dims do not broadcast: %lld vs %lld",
                                   (long long)x, (long long)z);
        y->dims[i] = d;
    }
    int r = nbat;
    if (a->rank > 1)
        y->dims[r++] = a->dims[a->rank - 2];
    if (b->rank > 1)
        y->dims[r++] = b->dims[b->rank - 1];
    y->rank = rank;
    return OCT_OK;
}
