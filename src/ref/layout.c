/*
 * layout.c: more data-movement ops, each a view of its input: Expand
 * (numpy broadcast to a shape), Tile, DepthToSpace, SpaceToDepth (6-D
 * transposes), GatherElements, Trilu (zeroing a triangle) and Range.
 *
 * Like movement.c they work for every dtype through the helpers of
 * movement.h.  Shape rules read shape-carrying inputs (Expand's shape, Tile's
 * repeats, Range's scalars) from in_const and report unknown dims otherwise.
 *
 * The shape and type rules of these ops are in src/ops/shape_layout.c.
 */
#include <math.h>
#include <string.h>

#include "ref/movement.h"

/* C-order strides of a tensor, in elements. */
static void strides_of(const ir_tensor *t, int64_t *strides)
{
    int64_t s = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        strides[k] = s;
        s *= t->dims[k];
    }
}

/* ---- Expand ------------------------------------------------------------- */

oct_status ref_expand(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int64_t xs[OPS_MAX_RANK], ss[OPS_MAX_RANK];
    strides_of(x, xs);
    int off = y->rank - x->rank;
    for (int k = 0; k < y->rank; k++) {
        int kx = k - off;
        ss[k] = kx < 0 || x->dims[kx] == 1 ? 0 : xs[kx];
    }
    return ref_strided_gather(call->ctx, y, x, y->rank, y->dims, ss, 0);
}

/* ---- Tile --------------------------------------------------------------- */

/* Output dim k is (repeat, i) in C order, so Tile is a strided view of rank
 * 2 * rank with stride 0 on the repeat axes. */
oct_status ref_tile(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int64_t xs[OPS_MAX_RANK], vd[2 * OPS_MAX_RANK], vs[2 * OPS_MAX_RANK];
    strides_of(x, xs);
    int n = 0;
    for (int k = 0; k < x->rank; k++) {
        int64_t rep = x->dims[k] ? y->dims[k] / x->dims[k] : 0;
        vd[n] = rep;
        vs[n++] = 0;
        vd[n] = x->dims[k];
        vs[n++] = xs[k];
    }
    return ref_strided_gather(call->ctx, y, x, n, vd, vs, 0);
}

/* ---- DepthToSpace / SpaceToDepth ---------------------------------------- */

/* Both are transposes of a 6-D view of the input (ONNX spec):
 *   DepthToSpace DCR: [N, b, b, C', H, W] perm (0, 3, 4, 1, 5, 2)
 *   DepthToSpace CRD: [N, C', b, b, H, W] perm (0, 1, 4, 2, 5, 3)
 *   SpaceToDepth:     [N, C, H', b, W', b] perm (0, 3, 5, 1, 2, 4) */
oct_status ref_depthtospace(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    int64_t b = ir_attr_int(call->node, "blocksize", 1);
    int64_t n = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    int64_t view[6], perm[6];
    if (call->node->op == IR_OP_SPACETODEPTH) {
        int64_t v[6] = {n, c, h / b, b, w / b, b}, p[6] = {0, 3, 5, 1, 2, 4};
        memcpy(view, v, sizeof v);
        memcpy(perm, p, sizeof p);
    } else if (ops_crd_mode(call->node)) {
        int64_t v[6] = {n, c / (b * b), b, b, h, w}, p[6] = {0, 1, 4, 2, 5, 3};
        memcpy(view, v, sizeof v);
        memcpy(perm, p, sizeof p);
    } else {
        int64_t v[6] = {n, b, b, c / (b * b), h, w}, p[6] = {0, 3, 4, 1, 5, 2};
        memcpy(view, v, sizeof v);
        memcpy(perm, p, sizeof p);
    }
    int64_t vs[6], od[6], ss[6], s = 1;
    for (int k = 5; k >= 0; k--) {
        vs[k] = s;
        s *= view[k];
    }
    for (int k = 0; k < 6; k++) {
        od[k] = view[perm[k]];
        ss[k] = vs[perm[k]];
    }
    return ref_strided_gather(call->ctx, call->out[0], x, 6, od, ss, 0);
}

oct_status ref_spacetodepth(ref_call *call) { return ref_depthtospace(call); }

/* ---- GatherElements ----------------------------------------------------- */

oct_status ref_gatherelements(ref_call *call)
{
    const ir_tensor *x = call->in[0], *ind = call->in[1];
    ir_tensor *y = call->out[0];
    int axis;
    if (!ops_norm_axis(ir_attr_int(call->node, "axis", 0), x->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad axis");
    int64_t xs[OPS_MAX_RANK], idx[OPS_MAX_RANK] = {0};
    strides_of(x, xs);
    int64_t dim = x->dims[axis];
    for (int k = 0; k < x->rank; k++)
        if (k != axis && ind->dims[k] > x->dims[k])
            return oct_input_error(call->ctx, OCT_EINPUT, call->node, 1,
                                   "dim %d is %lld, larger than the data's",
                                   k, (long long)ind->dims[k]);
    for (uint64_t e = 0; e < ind->nelems; e++) {
        int64_t v = ind->dtype == IR_DT_INT32 ? ((const int32_t *)ind->data)[e]
                                              : ((const int64_t *)ind->data)[e];
        if (v < -dim || v >= dim)
            return oct_input_error(call->ctx, OCT_EINPUT, call->node, 1,
                                   "index %lld out of range for an axis of "
                                   "size %lld", (long long)v, (long long)dim);
        if (v < 0)
            v += dim;
        int64_t src = 0;
        for (int k = 0; k < x->rank; k++)
            src += (k == axis ? v : idx[k]) * xs[k];
        if (!ref_copy_elems(call->ctx, y, e, x, (uint64_t)src, 1))
            return OCT_EINTERNAL;
        for (int k = x->rank - 1; k >= 0; k--) {
            if (++idx[k] < ind->dims[k])
                break;
            idx[k] = 0;
        }
    }
    return OCT_OK;
}

/* ---- Trilu -------------------------------------------------------------- */

/* Keeps the elements with j - i >= k (upper, default) or j - i <= k
 * (lower) of every matrix in the last two dims; the rest become zero bits
 * (empty strings). */
oct_status ref_trilu(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int64_t k = 0;
    if (call->n_in > 1 && call->in[1]) {
        const ir_tensor *kt = call->in[1];
        if (kt->nelems != 1 || kt->dtype != IR_DT_INT64)
            return oct_input_error(call->ctx, OCT_EINPUT, call->node, 1,
                                   "k must be an int64 scalar");
        k = *(const int64_t *)kt->data;
    }
    bool upper = ir_attr_int(call->node, "upper", 1) != 0;
    if (!ref_copy_elems(call->ctx, y, 0, x, 0, x->nelems))
        return OCT_EINTERNAL;
    uint64_t rows = (uint64_t)x->dims[x->rank - 2];
    uint64_t cols = (uint64_t)x->dims[x->rank - 1];
    uint64_t mats = rows != 0 && cols != 0 ? x->nelems / (rows * cols) : 0;
    unsigned bits = ir_dtype_info(y->dtype)->bits;
    for (uint64_t m = 0; m < mats; m++)
        for (uint64_t i = 0; i < rows; i++)
            for (uint64_t j = 0; j < cols; j++) {
                int64_t d = (int64_t)j - (int64_t)i;
                if (upper ? d >= k : d <= k)
                    continue;
                uint64_t e = (m * rows + i) * cols + j;
                if (y->dtype == IR_DT_STRING) {
                    ((ir_blob *)y->data)[e] = (ir_blob){NULL, 0};
                } else if (bits >= 8) {
                    memset((uint8_t *)y->data + e * (bits / 8), 0, bits / 8);
                } else {
                    uint8_t *p = (uint8_t *)y->data + e * bits / 8;
                    unsigned sh = (unsigned)(e * bits % 8);
                    *p = (uint8_t)(*p & ~(((1u << bits) - 1) << sh));
                }
            }
    return OCT_OK;
}

/* ---- Range -------------------------------------------------------------- */

oct_status ref_range(ref_call *call)
{
    const ir_tensor *s = call->in[0], *d = call->in[2];
    ir_tensor *y = call->out[0];
    if (ir_dtype_info(y->dtype)->kind == IR_DK_FLOAT) {
        double st = ops_get(s, 0), de = ops_get(d, 0);
        for (uint64_t i = 0; i < y->nelems; i++)
            ops_set(y, i, st + (double)i * de);
        return OCT_OK;
    }
    int64_t st = ops_get_i64(s, 0), de = ops_get_i64(d, 0);
    for (uint64_t i = 0; i < y->nelems; i++)
        ops_set_i64(y, i, (int64_t)((uint64_t)st + i * (uint64_t)de));
    return OCT_OK;
}
