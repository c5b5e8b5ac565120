/*
 * eltwise_binary.c: kernels of the broadcasting element-wise
 * ops with several inputs: binary (Add Sub Mul Div Pow Mod BitShift PRelu,
 * the comparisons Equal Less Greater LessOrEqual GreaterOrEqual and the
 * logical And Or Xor, which give BOOL), variadic (Max Min Sum Mean) and
 * Where.
 *
 * Broadcasting is numpy's multidirectional rule from opset 7 on.  Before
 * opset 7, Add/Sub/Mul/Div/Pow/Equal broadcast only when the `broadcast`
 * attribute is 1: B's shape then matches a contiguous run of A's dims
 * starting at `axis` (default: A's trailing dims), and the output has A's
 * shape.  PRelu broadcasts its slope unidirectionally to X.
 *
 * Arithmetic rules: FLOAT is computed in float; DOUBLE, FLOAT16 and
 * BFLOAT16 in double and rounded once to the output type.  Integers wrap
 * modulo 2^bits (two's complement); integer Div truncates toward zero (the
 * ONNX reference's numpy divide-then-cast) and x / 0 is defined here as 0;
 * integer Pow with a non-negative integer exponent is exact repeated
 * multiplication (wrapping), otherwise pow() in double truncated toward
 * zero.  Max/Min propagate NaN; Mean is the Sum divided by the input count
 * in double.  Mod with fmod=0 (integers only) takes the sign of the divisor
 * (Python %), with fmod=1 the sign of the dividend (C fmod); x mod 0 is 0
 * for integers.  BitShift (unsigned types) of the width or more gives 0.
 * Comparisons of unsigned 64-bit values are unsigned.
 *
 * The shape and type rules of these ops are in
 * src/ops/shape_eltwise_binary.c.
 */
#include <math.h>

#include "ref/eltwise.h"

/* ---- binary kernels ------------------------------------------------------ */

static inline float binary_f32(ir_op op, float x, float y)
{
    switch (op) {
    case IR_OP_ADD: return x + y;
    case IR_OP_SUB: return x - y;
    case IR_OP_MUL: return x * y;
    case IR_OP_DIV: return x / y;
    case IR_OP_POW: return powf(x, y);
    case IR_OP_PRELU: return x < 0 ? x * y : x;
    case IR_OP_MOD: return fmodf(x, y);
    default: return 0;
    }
}

static inline double binary_f64(ir_op op, double x, double y)
{
    switch (op) {
    case IR_OP_ADD: return x + y;
    case IR_OP_SUB: return x - y;
    case IR_OP_MUL: return x * y;
    case IR_OP_DIV: return x / y;
    case IR_OP_POW: return pow(x, y);
    case IR_OP_PRELU: return x < 0 ? x * y : x;
    case IR_OP_MOD: return fmod(x, y);
    default: return 0;
    }
}

/* Integer arithmetic in uint64 (wrapping), wrapped to dt by the caller. */
static inline int64_t binary_int(ir_op op, int64_t x, int64_t y, bool python_mod)
{
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
    switch (op) {
    case IR_OP_ADD: return (int64_t)(ux + uy);
    case IR_OP_SUB: return (int64_t)(ux - uy);
    case IR_OP_MUL: return (int64_t)(ux * uy);
    case IR_OP_DIV:
        if (y == 0)
            return 0;
        if (y == -1)
            return (int64_t)(0 - ux);
        return x / y;
    case IR_OP_POW: {
        /* square-and-multiply, wrapping mod 2^64 like the repeated product
         * (so the same bits), in O(log y): a huge exponent cannot hang */
        uint64_t r = 1, b = ux;
        for (uint64_t e = y > 0 ? (uint64_t)y : 0; e; e >>= 1) {
            if (e & 1)
                r *= b;
            b *= b;
        }
        return (int64_t)r;
    }
    case IR_OP_PRELU: return x < 0 ? (int64_t)(ux * uy) : x;
    case IR_OP_MOD: {
        if (y == 0)
            return 0;
        if (y == -1)
            return 0;
        int64_t r = x % y;
        if (!python_mod || r == 0 || (r < 0) == (y < 0))
            return r;
        return r + y;
    }
    default: return 0;
    }
}

static bool strings_equal(const ir_tensor *a, uint64_t i, const ir_tensor *b,
                          uint64_t j)
{
    const ir_blob *x = (const ir_blob *)a->data + i, *y = (const ir_blob *)b->data + j;
    return x->len == y->len && (!x->len || !memcmp(x->data, y->data, x->len));
}

oct_status ref_binary(ref_call *call)
{
    const ir_node *node = call->node;
    const ir_tensor *ta = call->in[0], *tb = call->in[1];
    ir_tensor *to = call->out[0];
    ops_shape a, b, beff, out;
    bool out_is_a;
    ops_shape_of(ta, &a);
    ops_shape_of(tb, &b);
    ops_shape_of(to, &out);
    if (!ops_binary_operand_b(call->ctx, node, call->opset, &a, &b, &beff, &out_is_a))
        return OCT_EINPUT;
    const ops_shape *shapes[2] = {&a, &beff};
    ref_bcast_iter it;
    ref_bcast_init(&it, &out, 2, shapes);
    uint64_t n = to->nelems;
    ir_op op = node->op;
    ir_dtype da = ta->dtype, db = tb->dtype;

    if (ops_binary_is_compare(op) || ops_binary_is_logic(op)) {
        uint8_t *o = to->data;
        bool is_unsigned = ir_dtype_info(da)->kind == IR_DK_UINT;
        for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it)) {
            uint64_t x = it.off[0], y = it.off[1];
            int cmp; /* -1, 0, 1; 2 unordered (NaN) */
            if (da == IR_DT_STRING) {
                cmp = strings_equal(ta, x, tb, y) ? 0 : 2;
            } else if (ops_dt_is_float(da)) {
                double u = ops_get(ta, x), v = ops_get(tb, y);
                cmp = u < v ? -1 : u > v ? 1 : u == v ? 0 : 2;
            } else {
                int64_t u = ops_get_i64(ta, x), v = ops_get_i64(tb, y);
                if (is_unsigned)
                    cmp = (uint64_t)u < (uint64_t)v ? -1 : (uint64_t)u > (uint64_t)v;
                else
                    cmp = u < v ? -1 : u > v;
            }
            bool r;
            switch (op) {
            case IR_OP_EQUAL: r = cmp == 0; break;
            case IR_OP_LESS: r = cmp == -1; break;
            case IR_OP_GREATER: r = cmp == 1; break;
            case IR_OP_LESSOREQUAL: r = cmp == -1 || cmp == 0; break;
            case IR_OP_GREATEROREQUAL: r = cmp == 1 || cmp == 0; break;
            case IR_OP_AND: r = ops_get_i64(ta, x) && ops_get_i64(tb, y); break;
            case IR_OP_OR: r = ops_get_i64(ta, x) || ops_get_i64(tb, y); break;
            default: r = !ops_get_i64(ta, x) != !ops_get_i64(tb, y); break;
            }
            o[i] = r;
        }
        return OCT_OK;
    }
    if (op == IR_OP_BITSHIFT) {
        const ir_attr *dir = ir_node_attr(node, "direction");
        bool left = dir && dir->type == IR_ATTR_STRING && dir->s.len == 4 &&
                    !memcmp(dir->s.data, "LEFT", 4);
        bool right = dir && dir->type == IR_ATTR_STRING && dir->s.len == 5 &&
                     !memcmp(dir->s.data, "RIGHT", 5);
        if (!left && !right)
            return oct_node_error(call->ctx, OCT_EINPUT, node,
                                  "direction must be LEFT or RIGHT");
        unsigned bits = ir_dtype_info(da)->bits;
        for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it)) {
            uint64_t x = (uint64_t)ops_get_i64(ta, it.off[0]);
            uint64_t s = (uint64_t)ops_get_i64(tb, it.off[1]);
            uint64_t r = s >= bits ? 0 : left ? x << s : x >> s;
            ops_set_i64(to, i, ref_wrap_int(da, (int64_t)r));
        }
        return OCT_OK;
    }
    bool python_mod = ir_attr_int(node, "fmod", 0) == 0;
    if (op == IR_OP_MOD && ir_dtype_info(da)->kind == IR_DK_UINT) {
        for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it)) {
            uint64_t x = (uint64_t)ops_get_i64(ta, it.off[0]);
            uint64_t y = (uint64_t)ops_get_i64(tb, it.off[1]);
            ops_set_i64(to, i, (int64_t)(y ? x % y : 0));
        }
        return OCT_OK;
    }
    if (da == IR_DT_FLOAT && db == IR_DT_FLOAT) {
        const float *x = ta->data, *y = tb->data;
        float *o = to->data;
        if (ta->nelems == n && tb->nelems == n) {
            for (uint64_t i = 0; i < n; i++)
                o[i] = binary_f32(op, x[i], y[i]);
        } else if (tb->nelems == 1 && ta->nelems == n) {
            for (uint64_t i = 0; i < n; i++)
                o[i] = binary_f32(op, x[i], y[0]);
        } else {
            for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it))
                o[i] = binary_f32(op, x[it.off[0]], y[it.off[1]]);
        }
        return OCT_OK;
    }
    if (ops_dt_is_float(da)) {
        for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it))
            ops_set(to, i, binary_f64(op, ops_get(ta, it.off[0]),
                                      ops_get(tb, it.off[1])));
        return OCT_OK;
    }
    /* integer base */
    bool int_exp = ops_dt_is_int(db);
    for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it)) {
        int64_t x = ops_get_i64(ta, it.off[0]), r;
        if (int_exp && !(op == IR_OP_POW && ops_get_i64(tb, it.off[1]) < 0)) {
            r = binary_int(op, x, ops_get_i64(tb, it.off[1]), python_mod);
        } else {
            double v = trunc(binary_f64(op, (double)x, ops_get(tb, it.off[1])));
            /* out-of-range and NaN results are undefined in ONNX: clamp */
            r = v != v ? 0 : v >= 9.2233720368547758e18 ? INT64_MAX
                : v <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)v;
        }
        ops_set_i64(to, i, ref_wrap_int(da, r));
    }
    return OCT_OK;
}

/* ---- variadic: Max, Min, Sum --------------------------------------------- */

static inline double variadic_f64(ir_op op, double acc, double x)
{
    if (op == IR_OP_SUM || op == IR_OP_MEAN)
        return acc + x;
    if (acc != acc || x != x)
        return NAN;
    if (op == IR_OP_MAX)
        return x > acc ? x : acc;
    return x < acc ? x : acc;
}

static inline int64_t variadic_int(ir_op op, bool is_unsigned, int64_t acc,
                                   int64_t x)
{
    if (op == IR_OP_SUM)
        return (int64_t)((uint64_t)acc + (uint64_t)x);
    bool less = is_unsigned ? (uint64_t)x < (uint64_t)acc : x < acc;
    if (op == IR_OP_MAX)
        return less ? acc : x;
    return less ? x : acc;
}

/* The output is combined into in place, REF_BCAST_MAX_IN - 1 inputs at a
 * time: out = op(out, in[k]...), where the first pass starts from in[0]. */
oct_status ref_variadic(ref_call *call)
{
    ir_tensor *to = call->out[0];
    ir_op op = call->node->op;
    ir_dtype dt = to->dtype;
    bool is_unsigned = ir_dtype_info(dt)->kind == IR_DK_UINT;
    ops_shape out, shp[REF_BCAST_MAX_IN];
    const ops_shape *shapes[REF_BCAST_MAX_IN];
    ops_shape_of(to, &out);
    int first = 0;
    while (first < call->n_in) {
        /* pass inputs: (out when first > 0), in[first..last) */
        int k = 0;
        const ir_tensor *src[REF_BCAST_MAX_IN];
        if (first > 0) {
            src[k] = to;
            ops_shape_of(to, &shp[k]);
            k++;
        }
        int last = first;
        while (last < call->n_in && k < REF_BCAST_MAX_IN) {
            src[k] = call->in[last++];
            ops_shape_of(src[k], &shp[k]);
            k++;
        }
        for (int j = 0; j < k; j++)
            shapes[j] = &shp[j];
        ref_bcast_iter it;
        ref_bcast_init(&it, &out, k, shapes);
        /* Mean: divide once, in the last pass */
        double div = op == IR_OP_MEAN && last == call->n_in ? call->n_in : 1;
        for (uint64_t i = 0; i < to->nelems; i++, ref_bcast_next(&it)) {
            if (dt == IR_DT_FLOAT) {
                double acc = ((const float *)src[0]->data)[it.off[0]];
                for (int j = 1; j < k; j++)
                    acc = variadic_f64(op, acc, ((const float *)src[j]->data)[it.off[j]]);
                ((float *)to->data)[i] = (float)(acc / div);
            } else if (ops_dt_is_float(dt)) {
                double acc = ops_get(src[0], it.off[0]);
                for (int j = 1; j < k; j++)
                    acc = variadic_f64(op, acc, ops_get(src[j], it.off[j]));
                ops_set(to, i, acc / div);
            } else {
                int64_t acc = ops_get_i64(src[0], it.off[0]);
                for (int j = 1; j < k; j++)
                    acc = variadic_int(op, is_unsigned, acc,
                                       ops_get_i64(src[j], it.off[j]));
                ops_set_i64(to, i, ref_wrap_int(dt, acc));
            }
        }
        first = last;
    }
    return OCT_OK;
}

/* ---- Where ----------------------------------------------------------------- */

oct_status ref_where(ref_call *call)
{
    ir_tensor *to = call->out[0];
    ops_shape out, s[3];
    const ops_shape *shapes[3] = {&s[0], &s[1], &s[2]};
    ops_shape_of(to, &out);
    for (int k = 0; k < 3; k++)
        ops_shape_of(call->in[k], &s[k]);
    ref_bcast_iter it;
    ref_bcast_init(&it, &out, 3, shapes);
    const uint8_t *cond = call->in[0]->data;
    unsigned bits = ir_dtype_info(to->dtype)->bits;
    for (uint64_t i = 0; i < to->nelems; i++, ref_bcast_next(&it)) {
        int pick = cond[it.off[0]] ? 1 : 2;
        const ir_tensor *src = call->in[pick];
        uint64_t j = it.off[pick];
        if (bits % 8 == 0) {
            size_t es = bits / 8;
            memcpy((uint8_t *)to->data + i * es, (const uint8_t *)src->data + j * es, es);
        } else if (ops_dt_is_float(to->dtype)) {
            ops_set(to, i, ops_get(src, j));
        } else {
            ops_set_i64(to, i, ops_get_i64(src, j));
        }
    }
    return OCT_OK;
}
