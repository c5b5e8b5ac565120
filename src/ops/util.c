/*
 * util.c: helpers shared by the shape rules, the interpreter's kernels and
 * the compiler: numpy-style broadcasting of static shapes (with unknown
 * dims), axis normalization, reading small integer constant inputs,
 * converting tensors to ops_shape, and the table of geometry inputs (the
 * inputs whose values fix an op's output shape).
 */
#include "ops/ops.h"

#include <string.h>

/* Index of `s` among inf->in (for diagnostics), or -1. */
static int input_index_of(const ops_infer *inf, const ops_shape *s)
{
    for (int i = 0; i < inf->n_in; i++)
        if (&inf->in[i] == s)
            return i;
    return -1;
}

/* Multidirectional (numpy) broadcasting.  Dims are aligned on the right; a
 * pair (x, y) gives x if x == y or y == 1, y if x == 1, else it is an error.
 * With unknown dims (-1): (-1, 1) -> -1, (-1, k>1) -> k (the unknown dim
 * must be 1 or k), (-1, -1) -> -1.  Unknown rank on either side gives
 * unknown rank.  out may alias a or b.  out->dtype is a's dtype. */
bool ops_broadcast(ops_infer *inf, const ops_shape *a, const ops_shape *b,
                   ops_shape *out)
{
    ops_shape r;
    memset(&r, 0, sizeof r);
    r.dtype = a->dtype;
    if (a->rank < 0 || b->rank < 0) {
        r.rank = -1;
        *out = r;
        return true;
    }
    r.rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r.rank; i++) {
        int ia = a->rank - r.rank + i, ib = b->rank - r.rank + i;
        int64_t x = ia >= 0 ? a->dims[ia] : 1;
        int64_t y = ib >= 0 ? b->dims[ib] : 1;
        int64_t d;
        if (x == y)
            d = x;
        else if (x == 1)
            d = y;
        else if (y == 1)
            d = x;
        else if (x < 0)
            d = y;
        else if (y < 0)
            d = x;
        else {
            int which = input_index_of(inf, b);
            if (which < 0)
                which = input_index_of(inf, a);
            if (which >= 0 && which < inf->node->n_in)
                oct_input_error(inf->ctx, OCT_EINPUT, inf->node, which,
                                "shapes do not broadcast: dim %d is %lld on "
                                "one side and %lld on the other",
                                i, (long long)x, (long long)y);
            else
                oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                               "input shapes do not broadcast: dim %d is "
                               "%lld on one side and %lld on the other",
                               i, (long long)x, (long long)y);
            return false;
        }
        r.dims[i] = d;
    }
    *out = r;
    return true;
}

bool ops_norm_axis(int64_t axis, int rank, int *out)
{
    if (rank < 0 || axis < -(int64_t)rank || axis >= (int64_t)rank)
        return false;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

int ops_const_ints(const ir_tensor *t, int64_t *values, int max)
{
    if (!t || t->rank > 1 || t->nelems > (uint64_t)max)
        return -1;
    if (t->dtype == IR_DT_INT64) {
        if (t->nbytes < t->nelems * 8)
            return -1;
        if (t->nelems) /* data may be NULL for an empty tensor */
            memcpy(values, t->data, t->nelems * 8);
    } else if (t->dtype == IR_DT_INT32) {
        if (t->nbytes < t->nelems * 4)
            return -1;
        for (uint64_t i = 0; i < t->nelems; i++) {
            int32_t v;
            memcpy(&v, (const char *)t->data + i * 4, 4);
            values[i] = v;
        }
    } else {
        return -1;
    }
    return (int)t->nelems;
}

/* A tensor whose rank exceeds OPS_MAX_RANK gets rank -1 (unknown). */
void ops_shape_of(const ir_tensor *t, ops_shape *s)
{
    memset(s, 0, sizeof *s);
    s->dtype = t->dtype;
    if (t->rank > OPS_MAX_RANK || t->rank < 0) {
        s->rank = -1;
        return;
    }
    s->rank = t->rank;
    for (int i = 0; i < t->rank; i++)
        s->dims[i] = t->dims[i];
}

/* Product of the dims; 0 if the rank or a dim is unknown; UINT64_MAX on
 * overflow. */
uint64_t ops_shape_elems(const ops_shape *s)
{
    if (s->rank < 0)
        return 0;
    uint64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] < 0)
            return 0;
        if (ir_mul_overflow_u64(n, (uint64_t)s->dims[i], &n))
            return UINT64_MAX;
    }
    return n;
}

int64_t ops_shape_known_elems(const ops_shape *s)
{
    if (s->rank < 0)
        return -1;
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i] < 0 || __builtin_mul_overflow(n, s->dims[i], &n))
            return -1;
    return n;
}

/* Geometry inputs per op: bit i set for input i (ops_input_is_geometry). */
static const struct {
    ir_op op;
    unsigned inputs;
} geometry_inputs[] = {
    {IR_OP_RESHAPE, 1u << 1},   {IR_OP_SQUEEZE, 1u << 1},   {IR_OP_UNSQUEEZE, 1u << 1},
    {IR_OP_SPLIT, 1u << 1},     {IR_OP_EXPAND, 1u << 1},    {IR_OP_TILE, 1u << 1},
    {IR_OP_SLICE, 0xfu << 1},   {IR_OP_PAD, 1u << 1 | 1u << 3},
    {IR_OP_RESIZE, 0x7u << 1},  {IR_OP_CONSTANTOFSHAPE, 1u}, {IR_OP_RANGE, 0x7u},
    {IR_OP_REDUCEMEAN, 1u << 1}, {IR_OP_REDUCEMAX, 1u << 1}, {IR_OP_REDUCESUM, 1u << 1},
    {IR_OP_REDUCEMIN, 1u << 1}, {IR_OP_REDUCEPROD, 1u << 1}, {IR_OP_REDUCEL1, 1u << 1},
    {IR_OP_REDUCEL2, 1u << 1},  {IR_OP_REDUCELOGSUM, 1u << 1},
    {IR_OP_REDUCELOGSUMEXP, 1u << 1}, {IR_OP_REDUCESUMSQUARE, 1u << 1},
    {IR_OP_CUMSUM, 1u << 1},    {IR_OP_ONEHOT, 1u << 1},    {IR_OP_TOPK, 1u << 1},
    /* issue 19's signal ops */
    {IR_OP_DFT, 1u << 1 | 1u << 2}, {IR_OP_STFT, 1u << 1 | 1u << 3},
    /* a Loop's M and cond fix its scan outputs' row count (and let the
     * backend unroll a body whose shapes change with the iteration) */
    {IR_OP_LOOP, 1u | 1u << 1},
};

bool ops_input_is_geometry(const ir_node *n, int i)
{
    if (i < 0 || i >= n->n_in || i >= 32 || !n->in[i])
        return false;
    for (size_t k = 0; k < sizeof geometry_inputs / sizeof geometry_inputs[0]; k++)
        if (geometry_inputs[k].op == n->op)
            return (geometry_inputs[k].inputs >> i) & 1u;
    return false;
}
