/*
 * eltwise_unary.c: kernels of the one-input element-wise
 * ops (Sqrt Exp Log Erf Neg Abs Relu LeakyRelu Sigmoid HardSigmoid
 * HardSwish Tanh Gelu Floor Ceil Round Reciprocal Sign Softplus Softsign Elu
 * Selu Celu ThresholdedRelu Mish Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh
 * Acosh Atanh Shrink, IsNaN IsInf Not) and of Clip.  Shrink computes in
 * double (exact for the float types: one rounding of x +- bias).
 *
 * FLOAT is computed with the float libm functions; DOUBLE, FLOAT16 and
 * BFLOAT16 in double, rounded once to the output type.  Integer inputs
 * (Neg, Abs, Relu, Sign, Clip) are computed exactly; Neg and Abs of the
 * most negative value wrap (two's complement), as numpy does.  Round
 * rounds half to even.  IsNaN and IsInf give BOOL; Not takes and gives
 * BOOL.
 *
 * The shape and type rules of these ops are in src/ops/shape_eltwise_unary.c.
 */
#include <float.h>
#include <math.h>

#include "ref/eltwise.h"

typedef struct unary_params {
    ir_op op;
    double alpha, beta, gamma;
    bool gelu_tanh;
} unary_params;

static inline double unary_f64_other(const unary_params *p, double x);

static inline float unary_f32(const unary_params *p, float x)
{
    switch (p->op) {
    case IR_OP_SQRT: return sqrtf(x);
    case IR_OP_EXP: return expf(x);
    case IR_OP_LOG: return logf(x);
    case IR_OP_ERF: return erff(x);
    case IR_OP_NEG: return -x;
    case IR_OP_ABS: return fabsf(x);
    case IR_OP_RELU: return x < 0 ? 0.0f : x; /* NaN stays NaN */
    case IR_OP_LEAKYRELU: /* NaN takes the multiply, as in ONNX Runtime (quieted) */
        return x >= 0 ? x : (float)p->alpha * x;
    case IR_OP_SIGMOID:
        /* split to avoid overflow of expf for large |x| */
        return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
    case IR_OP_HARDSIGMOID: {
        float v = (float)p->alpha * x + (float)p->beta;
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    case IR_OP_HARDSWISH: {
        float v = x / 6.0f + 0.5f;
        return x * (v < 0 ? 0 : v > 1 ? 1 : v);
    }
    case IR_OP_TANH: return tanhf(x);
    case IR_OP_GELU:
        if (p->gelu_tanh)
            return 0.5f * x * (1.0f + tanhf(0.7978845608028654f *
                                            (x + 0.044715f * x * x * x)));
        return (float)(0.5 * x * (1.0 + erf(x * 0.7071067811865476)));
    case IR_OP_FLOOR: return floorf(x);
    case IR_OP_CEIL: return ceilf(x);
    case IR_OP_ROUND: return rintf(x); /* default mode: half to even */
    case IR_OP_RECIPROCAL: return 1.0f / x;
    case IR_OP_SIN: return sinf(x);
    case IR_OP_COS: return cosf(x);
    case IR_OP_TAN: return tanf(x);
    case IR_OP_ASIN: return asinf(x);
    case IR_OP_ACOS: return acosf(x);
    case IR_OP_ATAN: return atanf(x);
    case IR_OP_SINH: return sinhf(x);
    case IR_OP_COSH: return coshf(x);
    case IR_OP_ASINH: return asinhf(x);
    case IR_OP_ACOSH: return acoshf(x);
    case IR_OP_ATANH: return atanhf(x);
    default: return (float)unary_f64_other(p, x);
    }
}

/* The ops FLOAT also computes in double. */
static inline double unary_f64_other(const unary_params *p, double x)
{
    switch (p->op) {
    case IR_OP_SIGN: return x > 0 ? 1 : x < 0 ? -1 : x; /* 0 and NaN kept */
    case IR_OP_SOFTPLUS: /* log(1 + exp(x)) without overflow */
        return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case IR_OP_SOFTSIGN: return x / (1 + fabs(x));
    case IR_OP_ELU: return x < 0 ? p->alpha * (exp(x) - 1) : x;
    case IR_OP_SELU: return x <= 0 ? p->gamma * (p->alpha * exp(x) - p->alpha) : p->gamma * x;
    case IR_OP_CELU:
        return (x > 0 ? x : 0) + fmin(0, p->alpha * (exp(x / p->alpha) - 1));
    case IR_OP_THRESHOLDEDRELU: return x > p->alpha ? x : 0;
    case IR_OP_SHRINK: /* alpha = lambd, beta = bias */
        return x < -p->alpha ? x + p->beta : x > p->alpha ? x - p->beta : 0;
    case IR_OP_MISH: {
        double sp = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
        return x * tanh(sp);
    }
    default: return 0;
    }
}

static inline double unary_f64(const unary_params *p, double x)
{
    switch (p->op) {
    case IR_OP_SQRT: return sqrt(x);
    case IR_OP_EXP: return exp(x);
    case IR_OP_LOG: return log(x);
    case IR_OP_ERF: return erf(x);
    case IR_OP_NEG: return -x;
    case IR_OP_ABS: return fabs(x);
    case IR_OP_RELU: return x < 0 ? 0.0 : x;
    case IR_OP_LEAKYRELU: return x >= 0 ? x : p->alpha * x;
    case IR_OP_SIGMOID: return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case IR_OP_HARDSIGMOID: {
        double v = p->alpha * x + p->beta;
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    case IR_OP_HARDSWISH: {
        double v = x / 6 + 0.5;
        return x * (v < 0 ? 0 : v > 1 ? 1 : v);
    }
    case IR_OP_TANH: return tanh(x);
    case IR_OP_GELU:
        if (p->gelu_tanh)
            return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        return 0.5 * x * (1 + erf(x * 0.7071067811865476));
    case IR_OP_FLOOR: return floor(x);
    case IR_OP_CEIL: return ceil(x);
    case IR_OP_ROUND: return rint(x);
    case IR_OP_RECIPROCAL: return 1 / x;
    case IR_OP_SIN: return sin(x);
    case IR_OP_COS: return cos(x);
    case IR_OP_TAN: return tan(x);
    case IR_OP_ASIN: return asin(x);
    case IR_OP_ACOS: return acos(x);
    case IR_OP_ATAN: return atan(x);
    case IR_OP_SINH: return sinh(x);
    case IR_OP_COSH: return cosh(x);
    case IR_OP_ASINH: return asinh(x);
    case IR_OP_ACOSH: return acosh(x);
    case IR_OP_ATANH: return atanh(x);
    default: return unary_f64_other(p, x);
    }
}

oct_status ref_unary(ref_call *call)
{
    const ir_node *node = call->node;
    const ir_tensor *tx = call->in[0];
    ir_tensor *to = call->out[0];
    unary_params p = {.op = node->op, .alpha = 0, .beta = 0, .gelu_tanh = false};
    if (p.op == IR_OP_LEAKYRELU)
        p.alpha = ir_attr_float(node, "alpha", 0.01f);
    if (p.op == IR_OP_HARDSIGMOID) {
        p.alpha = ir_attr_float(node, "alpha", 0.2f);
        p.beta = ir_attr_float(node, "beta", 0.5f);
    }
    if (p.op == IR_OP_ELU || p.op == IR_OP_CELU || p.op == IR_OP_THRESHOLDEDRELU)
        p.alpha = ir_attr_float(node, "alpha", 1.0f);
    if (p.op == IR_OP_SELU) {
        p.alpha = ir_attr_float(node, "alpha", 1.67326319217681884765625f);
        p.gamma = ir_attr_float(node, "gamma", 1.05070102214813232421875f);
    }
    if (p.op == IR_OP_SHRINK) {
        p.alpha = ir_attr_float(node, "lambd", 0.5f);
        p.beta = ir_attr_float(node, "bias", 0.0f);
    }
    if (p.op == IR_OP_CELU && p.alpha == 0)
        return oct_node_error(call->ctx, OCT_EINPUT, node, "Celu alpha must not be 0");
    if (p.op == IR_OP_GELU) {
        const ir_attr *a = ir_node_attr(node, "approximate");
        if (a && a->type == IR_ATTR_STRING) {
            if (a->s.len == 4 && !memcmp(a->s.data, "tanh", 4))
                p.gelu_tanh = true;
            else if (!(a->s.len == 4 && !memcmp(a->s.data, "none", 4)))
                return oct_node_error(call->ctx, OCT_EINPUT, node,
                                      "approximate must be 'none' or 'tanh'");
        }
    }
    uint64_t n = to->nelems;
    if (p.op == IR_OP_ISNAN || p.op == IR_OP_ISINF || p.op == IR_OP_NOT) {
        bool neg = ir_attr_int(node, "detect_negative", 1) != 0;
        bool pos = ir_attr_int(node, "detect_positive", 1) != 0;
        uint8_t *o = to->data;
        for (uint64_t i = 0; i < n; i++) {
            if (p.op == IR_OP_NOT) {
                o[i] = !((const uint8_t *)tx->data)[i];
                continue;
            }
            double v = ops_get(tx, i);
            o[i] = p.op == IR_OP_ISNAN ? isnan(v) : (isinf(v) && (v > 0 ? pos : neg));
        }
        return OCT_OK;
    }
    if (tx->dtype == IR_DT_FLOAT && p.op == IR_OP_RELU) {
        /* the hottest unary op gets a loop the compiler vectorizes; NaN
         * stays NaN (x > 0 is false, so NaN would become 0: test x < 0) */
        const float *x = tx->data;
        float *o = to->data;
        for (uint64_t i = 0; i < n; i++)
            o[i] = x[i] < 0.0f ? 0.0f : x[i];
    } else if (tx->dtype == IR_DT_FLOAT) {
        const float *x = tx->data;
        float *o = to->data;
        for (uint64_t i = 0; i < n; i++)
            o[i] = unary_f32(&p, x[i]);
    } else if (ops_dt_is_float(tx->dtype)) {
        for (uint64_t i = 0; i < n; i++)
            ops_set(to, i, unary_f64(&p, ops_get(tx, i)));
    } else {
        bool is_unsigned = ir_dtype_info(tx->dtype)->kind == IR_DK_UINT;
        for (uint64_t i = 0; i < n; i++) {
            int64_t x = ops_get_i64(tx, i), r = x;
            if (p.op == IR_OP_NEG)
                r = (int64_t)(0 - (uint64_t)x);
            else if (p.op == IR_OP_ABS && !is_unsigned && x < 0)
                r = (int64_t)(0 - (uint64_t)x);
            else if (p.op == IR_OP_RELU && !is_unsigned && x < 0)
                r = 0;
            else if (p.op == IR_OP_SIGN)
                r = is_unsigned ? x != 0 : (x > 0) - (x < 0);
            ops_set_i64(to, i, ref_wrap_int(tx->dtype, r));
        }
    }
    return OCT_OK;
}

/* ---- Clip ------------------------------------------------------------------ */

oct_status ref_clip(ref_call *call)
{
    const ir_node *node = call->node;
    const ir_tensor *tx = call->in[0];
    ir_tensor *to = call->out[0];
    const ir_tensor *tlo = call->n_in > 1 ? call->in[1] : NULL;
    const ir_tensor *thi = call->n_in > 2 ? call->in[2] : NULL;
    if ((tlo && tlo->nelems != 1) || (thi && thi->nelems != 1))
        return oct_input_error(call->ctx, OCT_EINPUT, node, tlo && tlo->nelems != 1 ? 1 : 2,
                               "must be a scalar");
    uint64_t n = to->nelems;
    if (ops_dt_is_float(tx->dtype)) {
        double lo = -INFINITY, hi = INFINITY;
        if (call->opset < 11) {
            lo = ir_attr_float(node, "min", -FLT_MAX);
            hi = ir_attr_float(node, "max", FLT_MAX);
        }
        if (tlo)
            lo = ops_get(tlo, 0);
        if (thi)
            hi = ops_get(thi, 0);
        if (tx->dtype == IR_DT_FLOAT) {
            const float *x = tx->data;
            float *o = to->data, flo = (float)lo, fhi = (float)hi;
            for (uint64_t i = 0; i < n; i++) {
                float v = x[i];
                v = v < flo ? flo : v;
                o[i] = v > fhi ? fhi : v;
            }
        } else {
            for (uint64_t i = 0; i < n; i++) {
                double v = ops_get(tx, i);
                v = v < lo ? lo : v;
                ops_set(to, i, v > hi ? hi : v);
            }
        }
        return OCT_OK;
    }
    bool is_unsigned = ir_dtype_info(tx->dtype)->kind == IR_DK_UINT;
    if (is_unsigned) {
        uint64_t lo = 0, hi = UINT64_MAX;
        if (tlo)
            lo = (uint64_t)ops_get_i64(tlo, 0);
        if (thi)
            hi = (uint64_t)ops_get_i64(thi, 0);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t v = (uint64_t)ops_get_i64(tx, i);
            v = v < lo ? lo : v;
            ops_set_i64(to, i, (int64_t)(v > hi ? hi : v));
        }
    } else {
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        if (tlo)
            lo = ops_get_i64(tlo, 0);
        if (thi)
            hi = ops_get_i64(thi, 0);
        for (uint64_t i = 0; i < n; i++) {
            int64_t v = ops_get_i64(tx, i);
            v = v < lo ? lo : v;
            ops_set_i64(to, i, v > hi ? hi : v);
        }
    }
    return OCT_OK;
}
