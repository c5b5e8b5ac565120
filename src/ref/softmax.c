/*
 * softmax.c: Softmax and LogSoftmax.
 *
 * Before opset 13 the input is coerced to 2-D at `axis` (default 1): every
 * row of prod(dims[axis:]) elements is normalized together.  From opset 13
 * the op normalizes along the single axis `axis` (default -1).  Both are
 * computed the numerically stable way: m = max(x); e = exp(x - m);
 * softmax = e / sum(e); logsoftmax = x - m - log(sum(e)).  The sum is
 * accumulated in double; float32 uses expf on x - m (<= 0, so no overflow),
 * other float types go through double via ops_get/ops_set.
 *
 * The shape and type rules of these ops are in src/ops/shape_softmax.c.
 */
#include <math.h>

#include "ref/ref.h"

/* One group of n floats at stride s, softmax or log-softmax in place from x
 * to y. */
static void softmax_f32(const float *x, float *y, uint64_t n, uint64_t s,
                        bool log_form)
{
    float m = -INFINITY;
    for (uint64_t i = 0; i < n; i++)
        if (x[i * s] > m)
            m = x[i * s];
    double sum = 0;
    if (log_form) {
        for (uint64_t i = 0; i < n; i++)
            sum += expf(x[i * s] - m);
        /* (x - m) first: m + log(sum) would lose x's low bits. */
        float ls = (float)log(sum);
        for (uint64_t i = 0; i < n; i++)
            y[i * s] = (x[i * s] - m) - ls;
        return;
    }
    for (uint64_t i = 0; i < n; i++) {
        float e = expf(x[i * s] - m);
        y[i * s] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
    for (uint64_t i = 0; i < n; i++)
        y[i * s] *= inv;
}

/* Float32 groups of n elements at stride `inner` for all `inner` positions
 * of one outer index at once, so every pass walks memory contiguously.
 * mx and sum are scratch arrays of `inner` entries. */
static void softmax_f32_planes(const float *x, float *y, uint64_t n,
                               uint64_t inner, bool log_form, float *mx,
                               double *sum)
{
    for (uint64_t i = 0; i < inner; i++) {
        mx[i] = -INFINITY;
        sum[i] = 0;
    }
    for (uint64_t j = 0; j < n; j++) {
        const float *row = x + j * inner;
        for (uint64_t i = 0; i < inner; i++)
            mx[i] = row[i] > mx[i] ? row[i] : mx[i];
    }
    for (uint64_t j = 0; j < n; j++) {
        const float *row = x + j * inner;
        float *out = y + j * inner;
        for (uint64_t i = 0; i < inner; i++) {
            float e = expf(row[i] - mx[i]);
            sum[i] += e;
            if (!log_form)
                out[i] = e;
        }
    }
    if (log_form) {
        for (uint64_t i = 0; i < inner; i++)
            sum[i] = log(sum[i]);
        for (uint64_t j = 0; j < n; j++) {
            const float *row = x + j * inner;
            float *out = y + j * inner;
            for (uint64_t i = 0; i < inner; i++)
                out[i] = (row[i] - mx[i]) - (float)sum[i];
        }
        return;
    }
    for (uint64_t i = 0; i < inner; i++)
        sum[i] = 1.0 / sum[i];
    for (uint64_t j = 0; j < n; j++) {
        float *out = y + j * inner;
        for (uint64_t i = 0; i < inner; i++)
            out[i] *= (float)sum[i];
    }
}

static void softmax_any(const ir_tensor *x, ir_tensor *y, uint64_t base,
                        uint64_t n, uint64_t s, bool log_form)
{
    double m = -INFINITY, sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        double v = ops_get(x, base + i * s);
        if (v > m)
            m = v;
    }
    for (uint64_t i = 0; i < n; i++)
        sum += exp(ops_get(x, base + i * s) - m);
    for (uint64_t i = 0; i < n; i++) {
        double v = ops_get(x, base + i * s) - m;
        ops_set(y, base + i * s, log_form ? v - log(sum) : exp(v) / sum);
    }
}

oct_status ref_softmax(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int axis;
    uint64_t outer, len, inner;
    if (!ops_softmax_geometry(call->node, call->opset, x->rank, x->dims, &axis,
                          &outer, &len, &inner))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node,
                              "axis out of range for rank %d", x->rank);
    bool log_form = call->node->op == IR_OP_LOGSOFTMAX;
    if (len == 0)
        return OCT_OK;
    if (x->dtype == IR_DT_FLOAT && inner > 1) {
        uint64_t bytes;
        if (ir_mul_overflow_u64(inner, sizeof(float) + sizeof(double), &bytes))
            return oct_node_error(call->ctx, OCT_EINPUT, call->node,
                                  "too large");
        uint8_t *scratch = oct_malloc(call->ctx, bytes);
        if (!scratch)
            return OCT_EINTERNAL;
        double *sum = (double *)scratch;
        float *mx = (float *)(scratch + inner * sizeof(double));
        for (uint64_t o = 0; o < outer; o++)
            softmax_f32_planes((const float *)x->data + o * len * inner,
                               (float *)y->data + o * len * inner, len, inner,
                               log_form, mx, sum);
        oct_free(call->ctx, scratch, bytes);
        return OCT_OK;
    }
    for (uint64_t o = 0; o < outer; o++)
        for (uint64_t j = 0; j < inner; j++) {
            uint64_t base = o * len * inner + j;
            if (x->dtype == IR_DT_FLOAT)
                softmax_f32((const float *)x->data + base,
                            (float *)y->data + base, len, inner, log_form);
            else
                softmax_any(x, y, base, len, inner, log_form);
        }
    return OCT_OK;
}
