/*
 * softmax.c: Softmax and LogSoftmax.
 *
 * Before opset 13 the input is coerced to 2-D at `axis` (default 1): every
 * row of prod(dims[axis:]) elements is normalized together.  From opset 13
 * the op normalizes along the single axis `axis` (default -1).  Both are
 * computed the numerically stable way: m = max(x); e = exp(x - m);
 * softmax = e / sum(e); logsoftmax = x - m - log(sum(e)).  The sum is
 * accumulated in double; float32 uses expf on x - m (<= 0, so no overflow),
 * other float types go through double via ref_get/ref_set.
 */
#include <math.h>

#include "ref/ref.h"

/* Resolves the normalized group as outer x len x inner (inner = stride of
 * the group).  rank must be known. */
static bool softmax_geometry(const ir_node *node, int64_t opset, int rank,
                             const int64_t *dims, int *axis_out,
                             uint64_t *outer, uint64_t *len, uint64_t *inner)
{
    int64_t a = ir_attr_int(node, "axis", opset < 13 ? 1 : -1);
    int axis;
    if (rank == 0) {
        if (a != 0 && a != -1)
            return false;
        axis = 0;
    } else if (!ref_norm_axis(a, rank, &axis)) {
        return false;
    }
    *axis_out = axis;
    uint64_t o = 1, l = 1, in = 1;
    for (int k = 0; k < rank; k++) {
        uint64_t d = (uint64_t)(dims[k] < 0 ? 0 : dims[k]);
        if (k < axis)
            o *= d;
        else if (k == axis || opset < 13)
            l *= d;
        else
            in *= d;
    }
    *outer = o;
    *len = l;
    *inner = in;
    return true;
}

oct_status shape_softmax(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    ir_dtype dt = x->dtype;
    if (dt != IR_DT_UNDEFINED && ir_dtype_info(dt)->kind != IR_DK_FLOAT)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "input must be a float type, not %s",
                               ir_dtype_name(dt));
    if (x->rank >= 0) {
        int axis;
        uint64_t o, l, in;
        if (!softmax_geometry(inf->node, inf->opset, x->rank, x->dims, &axis,
                              &o, &l, &in))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis out of range for rank %d", x->rank);
    }
    inf->out[0] = *x;
    return OCT_OK;
}

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
        double v = ref_get(x, base + i * s);
        if (v > m)
            m = v;
    }
    for (uint64_t i = 0; i < n; i++)
        sum += exp(ref_get(x, base + i * s) - m);
    for (uint64_t i = 0; i < n; i++) {
        double v = ref_get(x, base + i * s) - m;
        ref_set(y, base + i * s, log_form ? v - log(sum) : exp(v) / sum);
    }
}

oct_status ref_softmax(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    int axis;
    uint64_t outer, len, inner;
    if (!softmax_geometry(call->node, call->opset, x->rank, x->dims, &axis,
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
