/*
 * eltwise_binary.c: shape rules and kernels of the broadcasting element-wise
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
 */
#include <math.h>

#include "eltwise.h"

/* ---- operand shapes ------------------------------------------------------ */

/* Resolves the shape B takes part in broadcasting with.  Before opset 7
 * (not PRelu), with broadcast=1, B is aligned on A's dims from `axis` and
 * padded with 1s to A's rank; otherwise B is taken as is.  For PRelu before
 * opset 7 a 1-D slope of X's channel count is aligned on axis 1.
 * Reports a misaligned B against input 1 and returns false.  Sets
 * *out_is_a when the output shape must be A's. */
static bool binary_operand_b(oct_ctx *ctx, const ir_node *node, int64_t opset,
                             const ref_shape *a, const ref_shape *b,
                             ref_shape *beff, bool *out_is_a)
{
    *beff = *b;
    *out_is_a = node->op == IR_OP_PRELU;
    if (node->op == IR_OP_PRELU) {
        if (opset < 7 && a->rank >= 3 && b->rank == 1 &&
            b->dims[0] != 1 && b->dims[0] == a->dims[1]) {
            beff->rank = a->rank - 1;
            for (int i = 1; i < beff->rank; i++)
                beff->dims[i] = 1;
        }
        return true;
    }
    if (opset >= 7 || ir_attr_int(node, "broadcast", 0) == 0)
        return true;
    *out_is_a = true;
    if (a->rank < 0 || b->rank < 0) {
        beff->rank = -1;
        return true;
    }
    int64_t axis = ir_attr_int(node, "axis", a->rank - b->rank);
    if (axis < 0)
        axis += a->rank; /* tolerated, though the old spec did not say */
    if (axis < 0 || axis + b->rank > a->rank) {
        oct_input_error(ctx, OCT_EINPUT, node, 1,
                        "legacy broadcast: rank-%d B does not fit rank-%d A "
                        "at axis %lld", b->rank, a->rank, (long long)axis);
        return false;
    }
    beff->rank = a->rank;
    for (int i = 0; i < a->rank; i++) {
        int j = i - (int)axis;
        beff->dims[i] = j >= 0 && j < b->rank ? b->dims[j] : 1;
        if (beff->dims[i] >= 0 && a->dims[i] >= 0 && beff->dims[i] != 1 &&
            beff->dims[i] != a->dims[i]) {
            oct_input_error(ctx, OCT_EINPUT, node, 1,
                            "legacy broadcast: B dim %d is %lld but A dim %d "
                            "is %lld", j, (long long)beff->dims[i], i,
                            (long long)a->dims[i]);
            return false;
        }
    }
    return true;
}

static bool binary_is_compare(ir_op op)
{
    return op == IR_OP_EQUAL || op == IR_OP_LESS || op == IR_OP_GREATER ||
           op == IR_OP_LESSOREQUAL || op == IR_OP_GREATEROREQUAL;
}

static bool binary_is_logic(ir_op op)
{
    return op == IR_OP_AND || op == IR_OP_OR || op == IR_OP_XOR;
}

static bool dtype_kind_ok(ir_op op, ir_dtype dt)
{
    const ir_dtype_traits *tr = ir_dtype_info(dt);
    if (dt == IR_DT_UNDEFINED)
        return true;
    if (binary_is_logic(op))
        return tr->kind == IR_DK_BOOL;
    if (op == IR_OP_MEAN)
        return tr->kind == IR_DK_FLOAT && tr->bits >= 16;
    if (tr->kind == IR_DK_FLOAT)
        return tr->bits >= 16 && op != IR_OP_BITSHIFT;
    if (tr->kind == IR_DK_SINT || tr->kind == IR_DK_UINT)
        return tr->bits >= 8 && (op != IR_OP_BITSHIFT || tr->kind == IR_DK_UINT);
    if (tr->kind == IR_DK_BOOL)
        return op == IR_OP_EQUAL || binary_is_logic(op);
    if (tr->kind == IR_DK_STRING)
        return op == IR_OP_EQUAL;
    return false;
}

oct_status shape_binary(ref_infer *inf)
{
    const ir_node *node = inf->node;
    const ref_shape *a = &inf->in[0], *b = &inf->in[1];
    for (int i = 0; i < 2; i++)
        if (!dtype_kind_ok(node->op, inf->in[i].dtype))
            return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, i,
                                   "element type %s is not supported by %s",
                                   ir_dtype_name(inf->in[i].dtype), node->op_type);
    if (node->op != IR_OP_POW && a->dtype != IR_DT_UNDEFINED &&
        b->dtype != IR_DT_UNDEFINED && a->dtype != b->dtype)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                               "element type %s differs from input 0's %s",
                               ir_dtype_name(b->dtype), ir_dtype_name(a->dtype));
    ref_shape beff, out;
    bool out_is_a;
    if (!binary_operand_b(inf->ctx, node, inf->opset, a, b, &beff, &out_is_a))
        return OCT_EINPUT;
    /* beff is a copy, so name input 1 in a broadcast error by hand */
    ref_infer sub = *inf;
    ref_shape pair[2] = {*a, beff};
    sub.in = pair;
    sub.n_in = 2;
    if (!ref_broadcast(&sub, &pair[0], &pair[1], &out))
        return OCT_EINPUT;
    if (out_is_a && a->rank >= 0 && out.rank >= 0) {
        bool same = out.rank == a->rank;
        for (int i = 0; same && i < a->rank; i++)
            same = out.dims[i] == a->dims[i] || a->dims[i] < 0;
        if (!same)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                   "does not broadcast to input 0's shape");
        out = *a;
    }
    if (node->op == IR_OP_MOD && ref_dt_is_float(a->dtype) &&
        ir_attr_int(node, "fmod", 0) == 0)
        return oct_node_error(inf->ctx, OCT_EINPUT, node,
                              "Mod of floating-point inputs requires fmod=1");
    out.dtype = binary_is_compare(node->op) || binary_is_logic(node->op)
                    ? IR_DT_BOOL : a->dtype;
    inf->out[0] = out;
    return OCT_OK;
}

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
    ref_shape a, b, beff, out;
    bool out_is_a;
    ref_shape_of(ta, &a);
    ref_shape_of(tb, &b);
    ref_shape_of(to, &out);
    if (!binary_operand_b(call->ctx, node, call->opset, &a, &b, &beff, &out_is_a))
        return OCT_EINPUT;
    const ref_shape *shapes[2] = {&a, &beff};
    ref_bcast_iter it;
    ref_bcast_init(&it, &out, 2, shapes);
    uint64_t n = to->nelems;
    ir_op op = node->op;
    ir_dtype da = ta->dtype, db = tb->dtype;

    if (binary_is_compare(op) || binary_is_logic(op)) {
        uint8_t *o = to->data;
        bool is_unsigned = ir_dtype_info(da)->kind == IR_DK_UINT;
        for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it)) {
            uint64_t x = it.off[0], y = it.off[1];
            int cmp; /* -1, 0, 1; 2 unordered (NaN) */
            if (da == IR_DT_STRING) {
                cmp = strings_equal(ta, x, tb, y) ? 0 : 2;
            } else if (ref_dt_is_float(da)) {
                double u = ref_get(ta, x), v = ref_get(tb, y);
                cmp = u < v ? -1 : u > v ? 1 : u == v ? 0 : 2;
            } else {
                int64_t u = ref_get_i64(ta, x), v = ref_get_i64(tb, y);
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
            case IR_OP_AND: r = ref_get_i64(ta, x) && ref_get_i64(tb, y); break;
            case IR_OP_OR: r = ref_get_i64(ta, x) || ref_get_i64(tb, y); break;
            default: r = !ref_get_i64(ta, x) != !ref_get_i64(tb, y); break;
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
            uint64_t x = (uint64_t)ref_get_i64(ta, it.off[0]);
            uint64_t s = (uint64_t)ref_get_i64(tb, it.off[1]);
            uint64_t r = s >= bits ? 0 : left ? x << s : x >> s;
            ref_set_i64(to, i, ref_wrap_int(da, (int64_t)r));
        }
        return OCT_OK;
    }
    bool python_mod = ir_attr_int(node, "fmod", 0) == 0;
    if (op == IR_OP_MOD && ir_dtype_info(da)->kind == IR_DK_UINT) {
        for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it)) {
            uint64_t x = (uint64_t)ref_get_i64(ta, it.off[0]);
            uint64_t y = (uint64_t)ref_get_i64(tb, it.off[1]);
            ref_set_i64(to, i, (int64_t)(y ? x % y : 0));
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
    if (ref_dt_is_float(da)) {
        for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it))
            ref_set(to, i, binary_f64(op, ref_get(ta, it.off[0]),
                                      ref_get(tb, it.off[1])));
        return OCT_OK;
    }
    /* integer base */
    bool int_exp = ref_dt_is_int(db);
    for (uint64_t i = 0; i < n; i++, ref_bcast_next(&it)) {
        int64_t x = ref_get_i64(ta, it.off[0]), r;
        if (int_exp && !(op == IR_OP_POW && ref_get_i64(tb, it.off[1]) < 0)) {
            r = binary_int(op, x, ref_get_i64(tb, it.off[1]), python_mod);
        } else {
            double v = trunc(binary_f64(op, (double)x, ref_get(tb, it.off[1])));
            /* out-of-range and NaN results are undefined in ONNX: clamp */
            r = v != v ? 0 : v >= 9.2233720368547758e18 ? INT64_MAX
                : v <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)v;
        }
        ref_set_i64(to, i, ref_wrap_int(da, r));
    }
    return OCT_OK;
}

/* ---- variadic: Max, Min, Sum --------------------------------------------- */

oct_status shape_variadic(ref_infer *inf)
{
    const ir_node *node = inf->node;
    ref_shape acc = inf->in[0];
    for (int i = 0; i < inf->n_in; i++) {
        const ref_shape *s = &inf->in[i];
        if (!node->in[i])
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "%s inputs may not be omitted", node->op_type);
        if (s->dtype != IR_DT_UNDEFINED && !dtype_kind_ok(node->op, s->dtype))
            return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, i,
                                   "element type %s is not supported by %s",
                                   ir_dtype_name(s->dtype), node->op_type);
        if (s->dtype != IR_DT_UNDEFINED && acc.dtype != IR_DT_UNDEFINED &&
            s->dtype != acc.dtype)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "element type %s differs from input 0's %s",
                                   ir_dtype_name(s->dtype), ir_dtype_name(acc.dtype));
        ir_dtype dt = acc.dtype != IR_DT_UNDEFINED ? acc.dtype : s->dtype;
        if (i > 0 && !ref_broadcast(inf, &acc, s, &acc))
            return OCT_EINPUT;
        acc.dtype = dt;
    }
    inf->out[0] = acc;
    return OCT_OK;
}

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
    ref_shape out, shp[REF_BCAST_MAX_IN];
    const ref_shape *shapes[REF_BCAST_MAX_IN];
    ref_shape_of(to, &out);
    int first = 0;
    while (first < call->n_in) {
        /* pass inputs: (out when first > 0), in[first..last) */
        int k = 0;
        const ir_tensor *src[REF_BCAST_MAX_IN];
        if (first > 0) {
            src[k] = to;
            ref_shape_of(to, &shp[k]);
            k++;
        }
        int last = first;
        while (last < call->n_in && k < REF_BCAST_MAX_IN) {
            src[k] = call->in[last++];
            ref_shape_of(src[k], &shp[k]);
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
            } else if (ref_dt_is_float(dt)) {
                double acc = ref_get(src[0], it.off[0]);
                for (int j = 1; j < k; j++)
                    acc = variadic_f64(op, acc, ref_get(src[j], it.off[j]));
                ref_set(to, i, acc / div);
            } else {
                int64_t acc = ref_get_i64(src[0], it.off[0]);
                for (int j = 1; j < k; j++)
                    acc = variadic_int(op, is_unsigned, acc,
                                       ref_get_i64(src[j], it.off[j]));
                ref_set_i64(to, i, ref_wrap_int(dt, acc));
            }
        }
        first = last;
    }
    return OCT_OK;
}

/* ---- Where ----------------------------------------------------------------- */

oct_status shape_where(ref_infer *inf)
{
    const ir_node *node = inf->node;
    const ref_shape *c = &inf->in[0], *x = &inf->in[1], *y = &inf->in[2];
    if (c->dtype != IR_DT_UNDEFINED && c->dtype != IR_DT_BOOL)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                               "condition must be BOOL, not %s", ir_dtype_name(c->dtype));
    if (x->dtype != IR_DT_UNDEFINED && y->dtype != IR_DT_UNDEFINED && x->dtype != y->dtype)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 2,
                               "element type %s differs from input 1's %s",
                               ir_dtype_name(y->dtype), ir_dtype_name(x->dtype));
    ir_dtype dt = x->dtype != IR_DT_UNDEFINED ? x->dtype : y->dtype;
    if (dt == IR_DT_STRING)
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, node, 1,
                               "Where on STRING tensors is not supported");
    ref_shape out;
    if (!ref_broadcast(inf, c, x, &out) || !ref_broadcast(inf, &out, y, &out))
        return OCT_EINPUT;
    out.dtype = dt;
    inf->out[0] = out;
    return OCT_OK;
}

oct_status ref_where(ref_call *call)
{
    ir_tensor *to = call->out[0];
    ref_shape out, s[3];
    const ref_shape *shapes[3] = {&s[0], &s[1], &s[2]};
    ref_shape_of(to, &out);
    for (int k = 0; k < 3; k++)
        ref_shape_of(call->in[k], &s[k]);
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
        } else if (ref_dt_is_float(to->dtype)) {
            ref_set(to, i, ref_get(src, j));
        } else {
            ref_set_i64(to, i, ref_get_i64(src, j));
        }
    }
    return OCT_OK;
}
