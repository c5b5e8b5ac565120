/*
 * qdq_fuse.c: turns QDQ islands into integer ops, the form the compiled
 * integer kernels run (and ONNX Runtime's QDQ fusion makes too):
 *   DQ(x) -> Conv(DQ(w), DQ(b)?) -> [Relu | Clip] -> Q   =>  QLinearConv [-> Clip]
 *   DQ(a) -> MatMul(DQ(w))       -> [Relu | Clip] -> Q   =>  QLinearMatMul [-> Clip]
 *   DQ(a) -> Gemm(DQ(w), DQ(b)?) -> [Relu | Clip] -> Q   =>  QGemm (com.microsoft) [-> Clip]
 *   DQ(a) -> MatMul/Gemm(DQ(w), bias?) with a float output (no Q after)
 *                                                   =>  MatMulIntegerToFloat (com.microsoft)
 *   DQ(x) -> MaxPool | Concat | Reshape | Flatten | Squeeze | Unsqueeze |
 *            Transpose -> Q, every DQ and the Q with the same scale and
 *            zero point                                    =>  the op on the 8-bit data
 *   DQ(a), DQ(b) -> Add | Mul -> [Relu | Clip] -> Q, a and b activations
 *                          =>  QLinearAdd | QLinearMul (com.microsoft, broadcast) [-> Clip]
 *   DQ(x)... -> Concat -> Q with differing scales or zero points
 *                                                   =>  QLinearConcat (com.microsoft)
 *   DQ(x) -> AveragePool | GlobalAveragePool -> [Relu | Clip] -> Q
 *                     =>  QLinearAveragePool | QLinearGlobalAveragePool (com.microsoft)
 * Requirements: activations per tensor (one scale, one zero point, 8-bit),
 * weights constant 8-bit per tensor or per output channel, the bias a
 * constant int32 DQ with zero point 0 whose scale is exactly the float32
 * product x_scale * w_scale (what the integer accumulator's scale is), the
 * output Q per tensor 8-bit with saturation; every intermediate float
 * value has this one consumer and is not a graph output.
 *
 * Numerics.  The fused linear ops accumulate exactly in int32 and
 * requantize once (src/ref/qlinear.c); the QDQ graph they replace computed
 * the same sum in float and quantized it.  The two agree except where the
 * float sum's rounding moves a value across a rounding boundary of the
 * output (at most one step of the output scale).  This is the integer
 * semantics `octet compile` implements bit for bit; run `octet opt
 * --passes=qdq_fuse` and then `octet run` for the reference.
 * A fused Relu or Clip is exact: quantization is monotonic, so
 * Q(clip(y, lo, hi)) = clamp(Q(y), Q(lo), Q(hi)), which becomes an integer
 * Clip (opset >= 12) when it narrows the output type's range.
 * The pass-through ops are exact too: Q(DQ(q)) = q when both use one scale
 * and zero point ((q - z) * s / s rounds back to q - z).
 * The element-wise integer ops (Add, Mul, Concat, the average pools) take
 * every 8-bit input and the output of one type, per tensor; they compute
 * on the exact integers q - z and requantize once in float32
 * (ops/qlinear_elem.h), where the QDQ graph rounded each dequantized value
 * to float32 first: again at most one step of the output scale apart.
 */
#include <math.h>
#include <string.h>

#include "passes/passes.h"

/* ---- matching helpers ---------------------------------------------------- */

static bool is_q8(ir_dtype dt)
{
    return dt == IR_DT_UINT8 || dt == IR_DT_INT8;
}

static ir_dtype value_dtype(const ir_value *v)
{
    return v->init ? v->init->dtype : v->has_type ? v->type.dtype : IR_DT_UNDEFINED;
}

/* A Q or DQ node's parameters: scale (float32 constant) and zero point
 * (constant of the data type, or absent = 0), count elements each. */
typedef struct qparams {
    const ir_node *node;
    ir_value *data;           /* DQ: the quantized input; Q: the output */
    ir_value *scale, *zero;   /* zero may be NULL */
    ir_dtype dtype;           /* 8-bit data type */
    const float *s;
    int64_t count;            /* elements of scale (1 = per tensor) */
    int axis;                 /* normalized, for per-axis */
} qparams;

static int64_t zero_at(const qparams *p, int64_t i)
{
    if (!p->zero)
        return 0;
    const ir_tensor *z = p->zero->init;
    int64_t k = z->nelems == 1 ? 0 : i;
    return z->dtype == IR_DT_UINT8 ? ((const uint8_t *)z->data)[k]
         : z->dtype == IR_DT_INT8 ? ((const int8_t *)z->data)[k]
                                  : ((const int32_t *)z->data)[k];
}

/* Fills p from a QuantizeLinear/DequantizeLinear node n whose data (the
 * quantized side) has `rank` dims; false if the form is not fusible. */
static bool read_qparams(const ir_node *n, ir_op op, int rank, qparams *p)
{
    memset(p, 0, sizeof *p);
    if (!n || n->op != op || n->n_in < 2 || !n->in[1] || !n->in[1]->init ||
        n->in[1]->init->dtype != IR_DT_FLOAT || ir_attr_int(n, "block_size", 0) != 0)
        return false;
    if (op == IR_OP_QUANTIZELINEAR && (ir_attr_int(n, "saturate", 1) != 1 ||
                                       ir_node_attr(n, "output_dtype") ||
                                       ir_node_attr(n, "precision")))
        return false;
    p->node = n;
    p->data = op == IR_OP_DEQUANTIZELINEAR ? n->in[0] : n->out[0];
    p->scale = n->in[1];
    p->zero = n->n_in > 2 ? n->in[2] : NULL;
    if (p->zero && !p->zero->init)
        return false;
    p->dtype = value_dtype(p->data);
    if (op == IR_OP_QUANTIZELINEAR)
        p->dtype = p->zero ? p->zero->init->dtype : IR_DT_UINT8;
    p->s = p->scale->init->data;
    p->count = (int64_t)p->scale->init->nelems;
    int64_t axis = ir_attr_int(n, "axis", 1);
    if (axis < 0)
        axis += rank;
    p->axis = (int)axis;
    if (p->zero && (int64_t)p->zero->init->nelems != p->count)
        return false;
    for (int64_t i = 0; i < p->count; i++)
        if (!(p->s[i] > 0) || !isfinite(p->s[i]))
            return false;
    return p->count >= 1 && (p->count == 1 || p->scale->init->rank == 1);
}

/* The per-tensor 8-bit activation DQ producing v, or false. */
static bool act_dq(const ir_value *v, qparams *p)
{
    return v && v->producer && read_qparams(v->producer, IR_OP_DEQUANTIZELINEAR, 0, p) &&
           p->count == 1 && is_q8(p->dtype) && !p->data->init;
}

/* The DQ of a constant 8-bit weight of rank `rank`, per tensor or per
 * `axis`, producing v. */
static bool weight_dq(const ir_value *v, int rank, int axis, qparams *p)
{
    if (!v || !v->producer || !read_qparams(v->producer, IR_OP_DEQUANTIZELINEAR, rank, p))
        return false;
    const ir_tensor *w = p->data->init;
    return w && w->rank == rank && is_q8(w->dtype) &&
           (p->count == 1 || (p->axis == axis && p->count == w->dims[axis]));
}

/* The DQ of an int32 bias of n values with zero point 0 and scale exactly
 * sx * sw[i] (float32 products). */
static bool bias_dq(const ir_value *v, int64_t n, float sx, const qparams *w, qparams *p)
{
    if (!v || !v->producer || !read_qparams(v->producer, IR_OP_DEQUANTIZELINEAR, 1, p))
        return false;
    const ir_tensor *b = p->data->init;
    if (!b || b->dtype != IR_DT_INT32 || (int64_t)b->nelems != n ||
        (p->count != 1 && p->count != n))
        return false;
    for (int64_t i = 0; i < n; i++) {
        float want = sx * w->s[w->count == 1 ? 0 : i];
        if (zero_at(p, i) != 0 || p->s[p->count == 1 ? 0 : i] != want)
            return false;
    }
    return true;
}

/* ---- output side: [Relu | Clip] -> Q --------------------------------------- */

typedef struct tail {
    ir_node *act;          /* the Relu or Clip, or NULL */
    qparams q;             /* the output QuantizeLinear */
    int64_t lo, hi;        /* clamp of the quantized output */
} tail;

/* Q(v) of the numeric contract: saturate(rint(v / s) + z), float32 division. */
static int64_t quantize_bound(double v, const qparams *q, int64_t qmin, int64_t qmax)
{
    if (isinf(v))
        return v < 0 ? qmin : qmax;
    double r = nearbyintf((float)v / q->s[0]) + (double)zero_at(q, 0);
    return r < (double)qmin ? qmin : r > (double)qmax ? qmax : (int64_t)r;
}

/* Constant float bound of a Clip input slot, or the default when absent. */
static bool clip_bound(const ir_node *clip, int slot, const char *attr, double dflt, double *out)
{
    *out = dflt;
    if (clip->n_in > slot && clip->in[slot]) {
        const ir_tensor *t = clip->in[slot]->init;
        if (!t || t->dtype != IR_DT_FLOAT || t->nelems != 1)
            return false;
        *out = ((const float *)t->data)[0];
    } else if (ir_node_attr(clip, attr)) {
        *out = ir_attr_float(clip, attr, (float)dflt);
    }
    return !isnan(*out);
}

static bool match_tail(const ir_graph *g, ir_value *y, int64_t opset, tail *t)
{
    memset(t, 0, sizeof *t);
    ir_node *next = ir_value_sole_consumer(g, y);
    double lo = -INFINITY, hi = INFINITY;
    if (next && (next->op == IR_OP_RELU || next->op == IR_OP_CLIP)) {
        if (opset < 12)  /* integer Clip needs opset 12 */
            return false;
        t->act = next;
        if (next->op == IR_OP_RELU) {
            lo = 0;
        } else if (!clip_bound(next, 1, "min", -INFINITY, &lo) ||
                   !clip_bound(next, 2, "max", INFINITY, &hi) || lo > hi) {
            return false;
        }
        next = ir_value_sole_consumer(g, next->out[0]);
    }
    if (!next || !read_qparams(next, IR_OP_QUANTIZELINEAR, 0, &t->q) || t->q.count != 1 ||
        !is_q8(t->q.dtype))
        return false;
    int64_t qmin = t->q.dtype == IR_DT_INT8 ? -128 : 0, qmax = t->q.dtype == IR_DT_INT8 ? 127 : 255;
    t->lo = quantize_bound(lo, &t->q, qmin, qmax);
    t->hi = quantize_bound(hi, &t->q, qmin, qmax);
    return true;
}

/* ---- rewriting --------------------------------------------------------------- */

/* A constant 8-bit zero point of dtype dt (a fresh initializer). */
static ir_value *zero_point(oct_ctx *ctx, ir_graph *g, const char *base, ir_dtype dt)
{
    ir_tensor *t = ir_tensor_new(ctx, dt, 0, NULL);
    return t ? ir_graph_add_init(ctx, g, base, t) : NULL;
}

static ir_value *zero_or(oct_ctx *ctx, ir_graph *g, const qparams *p, const char *base)
{
    return p->zero ? p->zero : zero_point(ctx, g, base, p->dtype);
}

/* Makes the new integer node write the Q's output, through an integer
 * Clip when the fused activation narrows the type's range; removes the
 * float nodes of the island (the DQs stay for the sweep). */
static oct_status finish(oct_ctx *ctx, ir_graph *g, ir_node *fused, ir_node *old,
                         const tail *t)
{
    ir_value *yq = t->q.data;
    int64_t qmin = t->q.dtype == IR_DT_INT8 ? -128 : 0, qmax = t->q.dtype == IR_DT_INT8 ? 127 : 255;
    ir_graph_remove_node(g, old);
    if (t->act)
        ir_graph_remove_node(g, t->act);
    ir_graph_remove_node(g, (ir_node *)t->q.node);
    if (t->lo == qmin && t->hi == qmax) {
        ir_node_set_output(fused, 0, yq);
        return OCT_OK;
    }
    const char *mid_name = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_unclipped", yq->name));
    ir_value *mid = mid_name ? ir_graph_value(ctx, g, mid_name) : NULL;
    ir_tensor *lo = ir_tensor_new(ctx, t->q.dtype, 0, NULL);
    ir_tensor *hi = ir_tensor_new(ctx, t->q.dtype, 0, NULL);
    ir_node *clip = ir_graph_add_node(ctx, g, "Clip", "", ir_sprintf(ctx, "%s_clip", yq->name),
                                      3, 1);
    if (!mid || !lo || !hi || !clip)
        return OCT_EINTERNAL;
    if (t->q.dtype == IR_DT_INT8) {
        *(int8_t *)lo->data = (int8_t)t->lo;
        *(int8_t *)hi->data = (int8_t)t->hi;
    } else {
        *(uint8_t *)lo->data = (uint8_t)t->lo;
        *(uint8_t *)hi->data = (uint8_t)t->hi;
    }
    clip->in[0] = mid;
    clip->in[1] = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_min", yq->name), lo);
    clip->in[2] = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_max", yq->name), hi);
    if (!clip->in[1] || !clip->in[2])
        return OCT_EINTERNAL;
    ir_node_set_output(fused, 0, mid);
    ir_node_set_output(clip, 0, yq);
    return OCT_OK;
}

static ir_node *new_node(oct_ctx *ctx, ir_graph *g, const char *op, const char *domain,
                         const ir_node *old, int n_in)
{
    return ir_graph_add_node(ctx, g, op, domain, old->name, n_in, 1);
}

static oct_status fuse_conv(oct_ctx *ctx, ir_graph *g, ir_node *conv, int64_t opset, bool *done)
{
    qparams x, w, b;
    tail t;
    ir_value *wv = conv->n_in > 1 ? conv->in[1] : NULL;
    const ir_tensor *wq = wv && wv->producer && wv->producer->in[0] ? wv->producer->in[0]->init
                                                                    : NULL;
    if (!act_dq(conv->in[0], &x) || !wq || wq->rank < 3 || !weight_dq(wv, wq->rank, 0, &w))
        return OCT_OK;
    int64_t m = w.data->init->dims[0];
    bool has_bias = conv->n_in > 2 && conv->in[2];
    if (has_bias && !bias_dq(conv->in[2], m, x.s[0], &w, &b))
        return OCT_OK;
    if (!match_tail(g, conv->out[0], opset, &t))
        return OCT_OK;
    ir_node *q = new_node(ctx, g, "QLinearConv", "", conv, has_bias ? 9 : 8);
    if (!q)
        return OCT_EINTERNAL;
    ir_value *in[9] = {x.data, x.scale, zero_or(ctx, g, &x, "x_zero_point"), w.data, w.scale,
                       zero_or(ctx, g, &w, "w_zero_point"), t.q.scale,
                       zero_or(ctx, g, &t.q, "y_zero_point"), has_bias ? b.data : NULL};
    for (int i = 0; i < q->n_in; i++)
        if (!(q->in[i] = in[i]))
            return OCT_EINTERNAL;
    q->attrs = conv->attrs;
    q->n_attr = conv->n_attr;
    *done = true;
    return finish(ctx, g, q, conv, &t);
}

/* A quantized MatMul/Gemm whose float output is not quantized again:
 * MatMulIntegerToFloat(a, w [K, N], sa, sw, za, zw, bias?) writing old's
 * output.  w is the weight DQ's data, transposed into a new initializer when
 * transposed; fbias a float32 [N] constant or NULL. */
static oct_status to_float(oct_ctx *ctx, ir_graph *g, ir_node *old, const qparams *a,
                           const qparams *w, bool transposed, ir_value *fbias, bool *done)
{
    ir_model *model = ctx->model;
    if (!model)
        return OCT_OK;
    if (!ir_model_import_opset(ctx, model, "com.microsoft", 1))
        return OCT_EINTERNAL;
    ir_value *wq = w->data;
    if (transposed) {
        const ir_tensor *src = wq->init;
        int64_t dims[2] = {src->dims[1], src->dims[0]};
        ir_tensor *t = ir_tensor_new(ctx, src->dtype, 2, dims);
        if (!t)
            return OCT_EINTERNAL;
        const uint8_t *s = src->data;
        uint8_t *d = t->data;
        for (int64_t k = 0; k < dims[0]; k++)
            for (int64_t n = 0; n < dims[1]; n++)
                d[k * dims[1] + n] = s[n * dims[0] + k];
        if (!(wq = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_t", wq->name), t)))
            return OCT_EINTERNAL;
    }
    ir_node *q = new_node(ctx, g, "MatMulIntegerToFloat", "com.microsoft", old, fbias ? 7 : 6);
    if (!q)
        return OCT_EINTERNAL;
    ir_value *in[7] = {a->data, wq, a->scale, w->scale, zero_or(ctx, g, a, "a_zero_point"),
                       zero_or(ctx, g, w, "b_zero_point"), fbias};
    for (int i = 0; i < q->n_in; i++)
        if (!(q->in[i] = in[i]))
            return OCT_EINTERNAL;
    ir_value *y = old->out[0];
    ir_graph_remove_node(g, old);
    ir_node_set_output(q, 0, y);
    *done = true;
    return OCT_OK;
}

/* Gemm's bias C as a float32 [N] constant: a float constant, or the DQ of
 * a constant int32 computed as the reference's DequantizeLinear does
 * ((float)(q - zp) * scale, one float32 product); NULL if neither. */
static ir_value *float_bias(oct_ctx *ctx, ir_graph *g, ir_value *c, int64_t n)
{
    if (c->init)
        return c->init->dtype == IR_DT_FLOAT && (int64_t)c->init->nelems == n ? c : NULL;
    qparams b;
    if (!c->producer || !read_qparams(c->producer, IR_OP_DEQUANTIZELINEAR, 1, &b))
        return NULL;
    const ir_tensor *bq = b.data->init;
    if (!bq || bq->dtype != IR_DT_INT32 || (int64_t)bq->nelems != n ||
        (b.count != 1 && b.count != n))
        return NULL;
    ir_tensor *t = ir_tensor_new(ctx, IR_DT_FLOAT, 1, &n);
    if (!t)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        ((float *)t->data)[i] = (float)(((const int32_t *)bq->data)[i] - zero_at(&b, i)) *
                                b.s[b.count == 1 ? 0 : i];
    return ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_float", c->name), t);
}

static oct_status fuse_matmul(oct_ctx *ctx, ir_graph *g, ir_node *mm, int64_t opset, bool *done)
{
    qparams a, w;
    tail t;
    if (!act_dq(mm->in[0], &a) || !weight_dq(mm->in[1], 2, 1, &w))
        return OCT_OK;
    if (!match_tail(g, mm->out[0], opset, &t))
        return to_float(ctx, g, mm, &a, &w, false, NULL, done);
    ir_node *q = new_node(ctx, g, "QLinearMatMul", "", mm, 8);
    if (!q)
        return OCT_EINTERNAL;
    ir_value *in[8] = {a.data, a.scale, zero_or(ctx, g, &a, "a_zero_point"), w.data, w.scale,
                       zero_or(ctx, g, &w, "b_zero_point"), t.q.scale,
                       zero_or(ctx, g, &t.q, "y_zero_point")};
    for (int i = 0; i < 8; i++)
        if (!(q->in[i] = in[i]))
            return OCT_EINTERNAL;
    *done = true;
    return finish(ctx, g, q, mm, &t);
}

static oct_status fuse_gemm(oct_ctx *ctx, ir_graph *g, ir_node *gm, int64_t opset, bool *done)
{
    qparams a, w, b;
    tail t;
    bool tb = ir_attr_int(gm, "transB", 0) != 0;
    if (ir_attr_int(gm, "transA", 0) != 0 || ir_attr_float(gm, "alpha", 1.0f) != 1.0f ||
        !act_dq(gm->in[0], &a) || !weight_dq(gm->in[1], 2, tb ? 0 : 1, &w))
        return OCT_OK;
    int64_t n = w.data->init->dims[tb ? 0 : 1];
    bool has_bias = gm->n_in > 2 && gm->in[2];
    if (has_bias && ir_attr_float(gm, "beta", 1.0f) != 1.0f)
        return OCT_OK;
    if (!match_tail(g, gm->out[0], opset, &t)) { /* the output stays float */
        ir_value *fb = has_bias ? float_bias(ctx, g, gm->in[2], n) : NULL;
        if (has_bias && !fb)
            return OCT_OK;
        return to_float(ctx, g, gm, &a, &w, tb, fb, done);
    }
    if (has_bias && !bias_dq(gm->in[2], n, a.s[0], &w, &b))
        return OCT_OK;
    ir_model *model = ctx->model;
    if (!model || !ir_model_import_opset(ctx, model, "com.microsoft", 1))
        return model ? OCT_EINTERNAL : OCT_OK;
    ir_node *q = new_node(ctx, g, "QGemm", "com.microsoft", gm, 9);
    ir_attr *attr = q ? ir_node_add_attr(ctx, q, "transB", IR_ATTR_INT) : NULL;
    if (!attr)
        return OCT_EINTERNAL;
    attr->i = tb;
    ir_value *in[9] = {a.data, a.scale, zero_or(ctx, g, &a, "a_zero_point"), w.data, w.scale,
                       zero_or(ctx, g, &w, "b_zero_point"), has_bias ? b.data : NULL,
                       t.q.scale, zero_or(ctx, g, &t.q, "y_zero_point")};
    for (int i = 0; i < 9; i++)
        if (!(q->in[i] = in[i]) && i != 6)
            return OCT_EINTERNAL;
    *done = true;
    return finish(ctx, g, q, gm, &t);
}

/* Pass-through ops: data inputs (all for Concat, input 0 otherwise) come
 * from DQs with exactly the output Q's scale and zero point. */
static oct_status fuse_passthrough(oct_ctx *ctx, ir_graph *g, ir_node *n, bool *done)
{
    for (int i = 1; i < n->n_out; i++) /* MaxPool's Indices: unused */
        if (n->out[i] && (ir_value_use_count(g, n->out[i]) || n->out[i]->flags & IR_VAL_OUTPUT))
            return OCT_OK;
    qparams q;
    ir_node *next = ir_value_sole_consumer(g, n->out[0]);
    if (!next || !read_qparams(next, IR_OP_QUANTIZELINEAR, 0, &q) || q.count != 1 ||
        !is_q8(q.dtype))
        return OCT_OK;
    int n_data = n->op == IR_OP_CONCAT ? n->n_in : 1;
    qparams in[64];
    if (n_data > 64)
        return OCT_OK;
    for (int i = 0; i < n_data; i++)
        if (!act_dq(n->in[i], &in[i]) || in[i].dtype != q.dtype || in[i].s[0] != q.s[0] ||
            zero_at(&in[i], 0) != zero_at(&q, 0))
            return OCT_OK;
    ir_node *p = ir_graph_add_node(ctx, g, n->op_type, "", n->name, n->n_in, 1);
    if (!p)
        return OCT_EINTERNAL;
    for (int i = 0; i < n->n_in; i++)
        p->in[i] = i < n_data ? in[i].data : n->in[i];
    p->attrs = n->attrs;
    p->n_attr = n->n_attr;
    tail t = {.q = q, .lo = q.dtype == IR_DT_INT8 ? -128 : 0,
              .hi = q.dtype == IR_DT_INT8 ? 127 : 255};
    *done = true;
    return finish(ctx, g, p, n, &t);
}

/* ---- the element-wise integer ops (com.microsoft) ------------------------------ */

/* The per-tensor 8-bit DQ producing v, of an activation or a constant. */
static bool elem_dq(const ir_value *v, qparams *p)
{
    return v && v->producer && read_qparams(v->producer, IR_OP_DEQUANTIZELINEAR, 0, p) &&
           p->count == 1 && is_q8(p->dtype);
}

static bool import_contrib(oct_ctx *ctx, oct_status *st)
{
    *st = OCT_OK;
    if (!ctx->model)
        return false;
    if (!ir_model_import_opset(ctx, ctx->model, "com.microsoft", 1)) {
        *st = OCT_EINTERNAL;
        return false;
    }
    return true;
}

/* Sets the inputs of fused node q from in[] (every one required). */
static oct_status set_inputs(ir_node *q, ir_value *const *in)
{
    for (int i = 0; i < q->n_in; i++)
        if (!(q->in[i] = in[i]))
            return OCT_EINTERNAL;
    return OCT_OK;
}

/* DQ(a), DQ(b) -> Add | Mul -> [act] -> Q  =>  QLinearAdd | QLinearMul,
 * both a and b activations.  With a constant operand (hard-swish's x + 3)
 * the result is a function of one byte tensor, which the compiler's
 * element-wise runs turn into one table lookup together with the float
 * ops around it: fusing it here would split that run. */
static oct_status fuse_qbinary(oct_ctx *ctx, ir_graph *g, ir_node *n, int64_t opset, bool *done)
{
    qparams a, b;
    tail t;
    oct_status st = OCT_OK;
    if (opset < 7 || n->n_in != 2 || !act_dq(n->in[0], &a) || !act_dq(n->in[1], &b) ||
        !match_tail(g, n->out[0], opset, &t) || a.dtype != t.q.dtype || b.dtype != t.q.dtype ||
        !import_contrib(ctx, &st))
        return st;
    ir_node *q = new_node(ctx, g, n->op == IR_OP_ADD ? "QLinearAdd" : "QLinearMul",
                          "com.microsoft", n, 8);
    if (!q)
        return OCT_EINTERNAL;
    ir_value *in[8] = {a.data, a.scale, zero_or(ctx, g, &a, "a_zero_point"), b.data, b.scale,
                       zero_or(ctx, g, &b, "b_zero_point"), t.q.scale,
                       zero_or(ctx, g, &t.q, "y_zero_point")};
    if ((st = set_inputs(q, in)) != OCT_OK)
        return st;
    *done = true;
    return finish(ctx, g, q, n, &t);
}

/* DQ(x)... -> Concat -> Q with some scale or zero point differing from
 * the Q's (the same everywhere is fuse_passthrough's)  =>  QLinearConcat
 * (Y_scale, Y_zero_point, then X, X_scale, X_zero_point per input). */
static oct_status fuse_qconcat(oct_ctx *ctx, ir_graph *g, ir_node *n, bool *done)
{
    enum { MAX_DATA = 20 }; /* 2 + 3 * 20 inputs: the ops layer's limit of 64 */
    qparams in[MAX_DATA], q;
    oct_status st;
    ir_node *next = ir_value_sole_consumer(g, n->out[0]);
    if (n->n_in < 1 || n->n_in > MAX_DATA || !next ||
        !read_qparams(next, IR_OP_QUANTIZELINEAR, 0, &q) || q.count != 1 || !is_q8(q.dtype))
        return OCT_OK;
    for (int i = 0; i < n->n_in; i++)
        if (!elem_dq(n->in[i], &in[i]) || in[i].dtype != q.dtype)
            return OCT_OK;
    if (!import_contrib(ctx, &st))
        return st;
    ir_node *p = new_node(ctx, g, "QLinearConcat", "com.microsoft", n, 2 + 3 * n->n_in);
    if (!p)
        return OCT_EINTERNAL;
    p->in[0] = q.scale;
    p->in[1] = zero_or(ctx, g, &q, "y_zero_point");
    for (int i = 0; i < n->n_in; i++) {
        p->in[2 + 3 * i] = in[i].data;
        p->in[3 + 3 * i] = in[i].scale;
        p->in[4 + 3 * i] = zero_or(ctx, g, &in[i], "x_zero_point");
    }
    for (int i = 0; i < p->n_in; i++)
        if (!p->in[i])
            return OCT_EINTERNAL;
    p->attrs = n->attrs;
    p->n_attr = n->n_attr;
    tail t = {.q = q, .lo = q.dtype == IR_DT_INT8 ? -128 : 0,
              .hi = q.dtype == IR_DT_INT8 ? 127 : 255};
    *done = true;
    return finish(ctx, g, p, n, &t);
}

/* DQ(x) -> AveragePool | GlobalAveragePool -> [act] -> Q  =>
 * QLinearAveragePool | QLinearGlobalAveragePool; AveragePool with 1 or 2
 * spatial dims (what the compiled code runs). */
static oct_status fuse_qavgpool(oct_ctx *ctx, ir_graph *g, ir_node *n, int64_t opset, bool *done)
{
    qparams x;
    tail t;
    oct_status st = OCT_OK;
    bool global = n->op == IR_OP_GLOBALAVERAGEPOOL;
    const ir_value *xv = n->in[0];
    int rank = xv && xv->has_type ? xv->type.rank : -1;
    if (!global && rank != 3 && rank != 4)
        return OCT_OK;
    if (!act_dq(n->in[0], &x) || !match_tail(g, n->out[0], opset, &t) ||
        x.dtype != t.q.dtype || !import_contrib(ctx, &st))
        return st;
    ir_node *q = new_node(ctx, g, global ? "QLinearGlobalAveragePool" : "QLinearAveragePool",
                          "com.microsoft", n, 5);
    if (!q)
        return OCT_EINTERNAL;
    ir_value *in[5] = {x.data, x.scale, zero_or(ctx, g, &x, "x_zero_point"), t.q.scale,
                       zero_or(ctx, g, &t.q, "y_zero_point")};
    if ((st = set_inputs(q, in)) != OCT_OK)
        return st;
    q->attrs = n->attrs;
    q->n_attr = n->n_attr;
    *done = true;
    return finish(ctx, g, q, n, &t);
}

oct_status pass_qdq_fuse(ir_graph *g, oct_ctx *ctx)
{
    int64_t opset = ctx->model ? ir_model_opset(ctx->model, "") : 0;
    size_t n;
    ir_node **snapshot = ir_graph_nodes_copy(g, ctx, &n);
    if (!snapshot)
        return OCT_EINTERNAL;
    bool changed = false;
    oct_status st = OCT_OK;
    for (size_t i = 0; st == OCT_OK && i < n; i++) {
        ir_node *node = snapshot[i];
        if (!ir_graph_has_node(g, node) || !node->n_out || !node->out[0])
            continue;
        bool done = false;
        switch (node->op) {
        case IR_OP_CONV: st = fuse_conv(ctx, g, node, opset, &done); break;
        case IR_OP_MATMUL: st = fuse_matmul(ctx, g, node, opset, &done); break;
        case IR_OP_GEMM: st = fuse_gemm(ctx, g, node, opset, &done); break;
        case IR_OP_MAXPOOL: case IR_OP_CONCAT: case IR_OP_RESHAPE: case IR_OP_FLATTEN:
        case IR_OP_SQUEEZE: case IR_OP_UNSQUEEZE: case IR_OP_TRANSPOSE:
            if (opset >= 12 || node->op != IR_OP_MAXPOOL)
                st = fuse_passthrough(ctx, g, node, &done);
            if (st == OCT_OK && !done && node->op == IR_OP_CONCAT)
                st = fuse_qconcat(ctx, g, node, &done);
            break;
        case IR_OP_ADD: case IR_OP_MUL: st = fuse_qbinary(ctx, g, node, opset, &done); break;
        case IR_OP_AVERAGEPOOL: case IR_OP_GLOBALAVERAGEPOOL:
            st = fuse_qavgpool(ctx, g, node, opset, &done);
            break;
        default: break;
        }
        changed |= done;
    }
    if (st != OCT_OK || !changed)
        return st;
    /* restore topological order, then the fold pass sweeps the DQs the
     * fused nodes no longer read */
    st = ctx->model ? ir_verify(ctx->model, ctx) : OCT_OK;
    return st == OCT_OK ? pass_fold(g, ctx) : st;
}
