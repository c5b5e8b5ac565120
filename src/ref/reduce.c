/*
 * reduce.c: the Reduce* family (Sum, Mean, Max, Min, Prod, L1, L2, LogSum,
 * LogSumExp, SumSquare, whichever ops.def lists with kernel `reduce`) and
 * ArgMax/ArgMin (kernel `argmax`).
 *
 * Axes come from the `axes` attribute before opset 18 (ReduceSum: before 13)
 * and from the optional second input after.  No axes means every axis,
 * unless noop_with_empty_axes is set (then the op is the identity).
 * keepdims (default 1) keeps reduced axes as size 1.
 *
 * Numerics: float inputs accumulate in double and round once to the output
 * type (LogSumExp is log(sum(exp(x))) as the spec writes it, no max shift).
 * Integer inputs of Sum, Mean, Max, Min, Prod, L1 and SumSquare accumulate
 * exactly in int64 with wrap-around on overflow (two's complement, as the
 * output type would), ReduceMean divides with truncation toward zero; L2,
 * LogSum and LogSumExp of integers go through double and truncate.
 * Reducing an empty set gives the identity of the reduction, as the opset
 * 18 spec says: 0 for Sum, L1, L2, SumSquare; 1 for Prod; NaN for Mean
 * (0/0); -inf for LogSum and LogSumExp; -inf / +inf for Max / Min (the
 * type's minimum / maximum for integers).
 *
 * The shape and type rules of these ops are in src/ops/shape_reduce.c.
 */
#include <math.h>
#include <string.h>

#include "ref/ref.h"

typedef enum rkind {
    R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP,
    R_SUMSQUARE,
} rkind;

/* Which reduction a node is, from its op type (ops.def names the ops that
 * share this kernel; op types are compared so that adding one is one line
 * in ops.def). */
static bool kind_of(const ir_node *node, rkind *k)
{
    static const struct { const char *name; rkind kind; } table[] = {
        {"ReduceSum", R_SUM}, {"ReduceMean", R_MEAN}, {"ReduceMax", R_MAX},
        {"ReduceMin", R_MIN}, {"ReduceProd", R_PROD}, {"ReduceL1", R_L1},
        {"ReduceL2", R_L2}, {"ReduceLogSum", R_LOGSUM},
        {"ReduceLogSumExp", R_LOGSUMEXP}, {"ReduceSumSquare", R_SUMSQUARE},
    };
    const char *name = ir_op_info_of(node->op)->name;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(name, table[i].name)) {
            *k = table[i].kind;
            return true;
        }
    return false;
}

static inline bool is_float(ir_dtype dt)
{
    return ir_dtype_info(dt)->kind == IR_DK_FLOAT;
}

static inline double f_init(rkind k)
{
    return k == R_MAX ? -INFINITY : k == R_MIN ? INFINITY : k == R_PROD ? 1 : 0;
}

static inline double f_step(rkind k, double a, double v)
{
    switch (k) {
    case R_MAX: return v > a || isnan(v) ? v : a;
    case R_MIN: return v < a || isnan(v) ? v : a;
    case R_PROD: return a * v;
    case R_L1: return a + fabs(v);
    case R_L2: case R_SUMSQUARE: return a + v * v;
    case R_LOGSUMEXP: return a + exp(v);
    default: return a + v;
    }
}

static inline double f_final(rkind k, double a, uint64_t count)
{
    switch (k) {
    case R_MEAN: return a / (double)count; /* 0/0 = NaN on an empty set */
    case R_L2: return sqrt(a);
    case R_LOGSUM: case R_LOGSUMEXP: return log(a);
    default: return a;
    }
}

static inline int64_t i_init(rkind k)
{
    return k == R_MAX ? INT64_MIN : k == R_MIN ? INT64_MAX : k == R_PROD ? 1 : 0;
}

/* Wrap-around (two's complement) integer accumulation. */
static inline int64_t i_step(rkind k, int64_t a, int64_t v)
{
    uint64_t ua = (uint64_t)a, uv = (uint64_t)v;
    switch (k) {
    case R_MAX: return v > a ? v : a;
    case R_MIN: return v < a ? v : a;
    case R_PROD: return (int64_t)(ua * uv);
    case R_L1: return (int64_t)(ua + (v < 0 ? 0 - uv : uv));
    case R_SUMSQUARE: return (int64_t)(ua + uv * uv);
    default: return (int64_t)(ua + uv);
    }
}

/* Float32 input whose reduced axes are exactly a suffix of its axes: each
 * output is a contiguous run of `count` elements (LayerNorm-style means,
 * global pooling written as ReduceMean). */
static void reduce_f32_suffix(rkind k, const float *x, float *y,
                              uint64_t n_out, uint64_t count)
{
    for (uint64_t o = 0; o < n_out; o++) {
        const float *r = x + o * count;
        double a = f_init(k);
        if (k == R_SUM || k == R_MEAN) {
            for (uint64_t j = 0; j < count; j++)
                a += r[j];
        } else if (k == R_MAX) {
            float m = -INFINITY;
            bool nan = false;
            for (uint64_t j = 0; j < count; j++) {
                m = r[j] > m ? r[j] : m;
                nan |= isnan(r[j]);
            }
            a = nan ? NAN : m;
        } else {
            for (uint64_t j = 0; j < count; j++)
                a = f_step(k, a, r[j]);
        }
        y[o] = (float)f_final(k, a, count);
    }
}

oct_status ref_reduce(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    rkind k;
    if (!kind_of(call->node, &k))
        return oct_node_error(call->ctx, OCT_EINTERNAL, call->node,
                              "not a reduction");
    ops_infer inf = {.ctx = call->ctx, .node = call->node, .opset = call->opset,
                     .n_in = call->n_in, .in_const = call->in};
    ops_reduce_plan p;
    if (!ops_reduce_resolve(&inf, x->rank, &p))
        return OCT_EINPUT;
    if (p.noop) {
        if (x->nbytes)
            memcpy(y->data, x->data, x->nbytes);
        return OCT_OK;
    }
    uint64_t n_out = y->nelems;
    /* Output strides over the input's axes (0 on reduced axes). */
    int64_t ostr[OPS_MAX_RANK];
    uint64_t count = 1;
    int64_t s = 1;
    bool suffix = true, seen_kept = false;
    for (int d = x->rank - 1; d >= 0; d--) {
        if (p.reduced[d]) {
            ostr[d] = 0;
            count *= (uint64_t)x->dims[d];
            suffix &= !seen_kept;
        } else {
            ostr[d] = s;
            s *= x->dims[d];
            seen_kept = true;
        }
    }
    if (x->dtype == IR_DT_FLOAT && suffix) {
        reduce_f32_suffix(k, x->data, y->data, n_out, count);
        return OCT_OK;
    }
    bool fl = is_float(x->dtype) || k == R_L2 || k == R_LOGSUM ||
              k == R_LOGSUMEXP;
    uint64_t bytes;
    size_t esz = fl ? sizeof(double) : sizeof(int64_t);
    if (ir_mul_overflow_u64(n_out ? n_out : 1, esz, &bytes))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "too large");
    void *accs = oct_malloc(call->ctx, bytes);
    if (!accs)
        return OCT_EINTERNAL;
    double *af = accs;
    int64_t *ai = accs;
    for (uint64_t j = 0; j < n_out; j++) {
        if (fl)
            af[j] = f_init(k);
        else
            ai[j] = i_init(k);
    }
    int64_t idx[OPS_MAX_RANK] = {0};
    int64_t off = 0;
    const float *xf = x->dtype == IR_DT_FLOAT ? x->data : NULL;
    for (uint64_t e = 0; e < x->nelems; e++) {
        if (xf)
            af[off] = f_step(k, af[off], xf[e]);
        else if (fl)
            af[off] = f_step(k, af[off], ops_get(x, e));
        else
            ai[off] = i_step(k, ai[off], ops_get_i64(x, e));
        for (int d = x->rank - 1; d >= 0; d--) {
            idx[d]++;
            off += ostr[d];
            if (idx[d] < x->dims[d])
                break;
            off -= ostr[d] * x->dims[d];
            idx[d] = 0;
        }
    }
    const ir_dtype_traits *tr = ir_dtype_info(y->dtype);
    for (uint64_t j = 0; j < n_out; j++) {
        if (fl) {
            double v = f_final(k, af[j], count);
            if (y->dtype == IR_DT_FLOAT)
                ((float *)y->data)[j] = (float)v;
            else if (tr->kind == IR_DK_FLOAT)
                ops_set(y, j, v);
            else
                ops_set_i64(y, j, isfinite(v) ? (int64_t)v : 0);
            continue;
        }
        int64_t v = ai[j];
        if (k == R_MEAN)
            v = count ? v / (int64_t)count : 0;
        if (count == 0 && (k == R_MAX || k == R_MIN)) {
            /* Minimum / maximum of the output type. */
            bool sgn = tr->kind == IR_DK_SINT;
            if (k == R_MAX)
                /* -2^(bits-1) without negating INT64_MIN (UB) */
                v = sgn ? (int64_t)(UINT64_MAX << (tr->bits - 1)) : 0;
            else
                v = sgn ? (int64_t)((1ull << (tr->bits - 1)) - 1)
                        : (int64_t)(tr->bits >= 64 ? UINT64_MAX
                                                   : (1ull << tr->bits) - 1);
        }
        ops_set_i64(y, j, v);
    }
    oct_free(call->ctx, accs, bytes);
    return OCT_OK;
}

/* ---- ArgMax / ArgMin ---------------------------------------------------- */

oct_status ref_argmax(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    int64_t *y = call->out[0]->data;
    int axis;
    if (!ops_norm_axis(ir_attr_int(call->node, "axis", 0), x->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad axis");
    bool is_max = !strcmp(ir_op_info_of(call->node->op)->name, "ArgMax");
    bool last = ir_attr_int(call->node, "select_last_index", 0) != 0;
    uint64_t outer = 1, inner = 1, len = (uint64_t)x->dims[axis];
    for (int d = 0; d < x->rank; d++) {
        if (d < axis)
            outer *= (uint64_t)x->dims[d];
        else if (d > axis)
            inner *= (uint64_t)x->dims[d];
    }
    const float *xf = x->dtype == IR_DT_FLOAT ? x->data : NULL;
    bool fl = is_float(x->dtype);
    for (uint64_t o = 0; o < outer; o++)
        for (uint64_t i = 0; i < inner; i++) {
            uint64_t base = o * len * inner + i, best_j = 0;
            double best = 0;
            int64_t ibest = 0;
            for (uint64_t j = 0; j < len; j++) {
                uint64_t e = base + j * inner;
                bool better;
                if (fl) {
                    double v = xf ? xf[e] : ops_get(x, e);
                    better = j == 0 || (is_max ? (last ? v >= best : v > best)
                                               : (last ? v <= best : v < best));
                    if (better)
                        best = v;
                } else { /* integers compare exactly */
                    int64_t v = ops_get_i64(x, e);
                    better = j == 0 || (is_max ? (last ? v >= ibest : v > ibest)
                                               : (last ? v <= ibest : v < ibest));
                    if (better)
                        ibest = v;
                }
                if (better)
                    best_j = j;
            }
            y[o * inner + i] = (int64_t)best_j;
        }
    return OCT_OK;
}
