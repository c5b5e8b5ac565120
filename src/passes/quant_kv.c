/*
 * quant_kv.c: `octet quantize --kv-cache=int8|fp8` (alias
 * --kv-cache-quant): the keys and values a decoder keeps in its cache are
 * stored quantized, one byte per element.
 *
 * Which tensors: the graph outputs named present* (the convention of ONNX
 * Runtime GenAI and Hugging Face Optimum: present.{l}.key/value).  In a
 * prefill graph the output's producer now writes a float tensor that a
 * QuantizeLinear turns into the output.  In a decode graph, where present
 * is Concat(past, new) with `past` a graph input, the new part is
 * quantized before the Concat and the past input is declared as codes of
 * the same format: it is what an earlier step (or the prefill) stored.
 * Either way present* is INT8 (or FLOAT8E4M3FN) and the nodes that read
 * it, the attention, read a DequantizeLinear of it.  So every runtime
 * that runs the graph (the interpreter, the compiler, the in-place cache
 * of kvcache.c, ONNX Runtime) carries a 1-byte cache, and the caller's
 * copy of a step's new slot into the past moves codes.  The compiled
 * decode dequantizes with that DequantizeLinear node, before the
 * attention's matrix products, not inside them.
 *
 * Scales: static, one per head (axis 1 of [batch, heads, seq, head size],
 * per tensor at another rank), the largest magnitude the samples show in
 * that head over the format's largest value (127 for int8 with zero point
 * 0, 448 for E4M3).  Per head rather than per token because a static scale
 * is a plain ONNX QuantizeLinear/DequantizeLinear with axis=1 that every
 * runtime runs unchanged, and because codes stored under one scale per
 * head can be concatenated, copied and read back without carrying a scale
 * per slot; heads differ in range (rotary keys far more than values),
 * tokens of one head much less.  A decode graph is calibrated on its own
 * samples (its whole present, past slots included), so its scales are not
 * exactly those of the prefill graph: a prefill and a decode graph
 * calibrated separately are not a pair whose caches can be exchanged, and
 * `octet generate` with both refuses them (lm.c).  --kv-scales-from=MODEL
 * takes the scales from a model already quantized this way (the prefill),
 * calibrating nothing, which makes the two a pair.
 */
#include <string.h>

#include "passes/quant.h"

typedef struct kv_acc {
    ir_value **v;
    int64_t *heads;             /* scales per target (1: per tensor) */
    double **amax;
    size_t n;
    oct_ctx *ctx;
    oct_status st;
} kv_acc;

static void observe_head_max(void *user, const ir_value *v, const ir_tensor *t)
{
    kv_acc *a = user;
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i] != v)
            continue;
        if (t->dtype != IR_DT_FLOAT || (a->heads[i] > 1 && (t->rank != 4 ||
                                                           t->dims[1] != a->heads[i]))) {
            if (!a->st)
                a->st = oct_error(a->ctx, OCT_EINPUT, "kv-cache: '%s' is not a "
                                  "float [batch, %lld, seq, head size] tensor", v->name,
                                  (long long)a->heads[i]);
            return;
        }
        uint64_t inner = a->heads[i] > 1 ? (uint64_t)(t->dims[2] * t->dims[3]) : t->nelems;
        const float *x = t->data;
        for (uint64_t e = 0; e < t->nelems; e++) {
            int64_t h = a->heads[i] > 1 ? (int64_t)(e / inner % (uint64_t)a->heads[i]) : 0;
            double mag = fabs((double)x[e]);
            if (mag > a->amax[i][h])
                a->amax[i][h] = mag;
        }
    }
}

/* The past graph input a present output's Concat reads, or NULL (then
 * the output is a prefill graph's, computed whole). */
static ir_value *past_of(const ir_value *o)
{
    const ir_node *p = o->producer;
    for (int k = 0; p && p->op == IR_OP_CONCAT && k < p->n_in; k++)
        if (p->in[k] && !p->in[k]->producer && !p->in[k]->init)
            return p->in[k];
    return NULL;
}

const ir_node *quant_kv_store_node(const ir_graph *g, const char *name)
{
    const ir_value *v = ir_graph_find(g, name);
    const ir_node *p = v ? v->producer : NULL;
    for (int k = 0; p && p->op == IR_OP_CONCAT && k < p->n_in; k++)
        if (p->in[k] && p->in[k]->producer) {
            p = p->in[k]->producer;
            break;
        }
    return p && p->op == IR_OP_QUANTIZELINEAR && p->n_in > 2 && p->in[1] && p->in[1]->init &&
           p->in[2] && p->in[2]->init ? p : NULL;
}

/* The scales of target v (heads of them) taken from the model
 * --kv-scales-from names, which must store v in the same format. */
static oct_status scales_from(oct_ctx *ctx, const ir_model *ref, const ir_value *v,
                              int64_t heads, const ir_qformat_traits *f, double *amax)
{
    const ir_node *q = quant_kv_store_node(ref->graph, v->name);
    const ir_tensor *s = q ? q->in[1]->init : NULL;
    if (!s || s->dtype != IR_DT_FLOAT || s->nelems != (uint64_t)heads ||
        q->in[2]->init->dtype != f->dtype)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 1, -1, v->name,
                         "kv-scales-from: that model does not store '%s' as %s codes with "
                         "%lld scales (quantize it with --kv-cache first)", v->name, f->name,
                         (long long)heads);
    double top = f->is_float ? f->fmax : (double)f->qmax;
    for (int64_t h = 0; h < heads; h++)
        amax[h] = (double)((const float *)s->data)[h] * top;
    return OCT_OK;
}

/* The tensors to store quantized: the present* outputs. */
static size_t find_targets(ir_graph *g, ir_value **vs)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_outputs; i++) {
        ir_value *o = g->outputs[i];
        bool seen = false;
        for (size_t k = 0; k < n; k++)
            seen |= vs[k] == o;
        if (!strncmp(o->name, "present", 7) && !seen)
            vs[n++] = o;
    }
    return n;
}

/* The quantization entry of target v with its head maxima amax[0..heads). */
static oct_status entry_of(oct_ctx *ctx, ir_value *v, int64_t heads, const double *amax,
                           const float *scales_given, ir_qformat format, quant_tensor *e)
{
    const ir_qformat_traits *f = ir_qformat_info(format);
    double top = f->is_float ? f->fmax : (double)f->qmax;
    *e = (quant_tensor){.value = v, .kind = QKIND_ACT, .format = format,
                        .axis = heads > 1 ? 1 : -1, .scale_rank = heads > 1,
                        .n_scales = (size_t)heads};
    e->scale_dims = ir_alloc_array(ctx, 1, sizeof *e->scale_dims);
    e->scales = ir_alloc_array(ctx, (size_t)heads, sizeof *e->scales);
    e->zero_points = ir_alloc_array(ctx, (size_t)heads, sizeof *e->zero_points);
    if (!e->scale_dims || !e->scales || !e->zero_points)
        return OCT_EINTERNAL;
    e->scale_dims[0] = heads;
    for (int64_t h = 0; h < heads; h++)
        e->scales[h] = amax[h] > 0 ? (float)(amax[h] / top) : 1.0f;
    if (scales_given)
        memcpy(e->scales, scales_given, (size_t)heads * sizeof *e->scales);
    return OCT_OK;
}

/* x -> QuantizeLinear -> a new value of the codes, which it returns. */
static ir_value *quantized(oct_ctx *ctx, ir_graph *g, const quant_tensor *e, ir_value *x,
                           ir_value *scale, ir_value *zp)
{
    ir_dtype dt = ir_qformat_info(e->format)->dtype;
    ir_value *q = quant_qdq_value(ctx, g, ir_sprintf(ctx, "%s_quantized", x->name), x, dt);
    return q && !quant_qdq_node(ctx, g, "QuantizeLinear", e, x, scale, zp, q) ? q : NULL;
}

/* Present output o (entry e) holds codes from now on.  Prefill: its
 * producer writes o_float, which a QuantizeLinear turns into o.  Decode
 * (o = Concat(past, new)): the new part is quantized before the Concat
 * and the past input holds codes too (it is the cache an earlier step
 * wrote), so the step copies codes, never floats.  Either way the nodes
 * that read o (the attention) read a DequantizeLinear of it. */
static oct_status store(oct_ctx *ctx, ir_graph *g, quant_tensor *e)
{
    ir_value *o = e->value, *scale, *zp, *past = past_of(o);
    ir_dtype dt = ir_qformat_info(e->format)->dtype;
    oct_status st = quant_qdq_params(ctx, g, e, &scale, &zp);
    if (st)
        return st;
    if (past) {
        ir_node *cat = o->producer;
        for (size_t i = 0; i < g->n_nodes; i++)
            for (int k = 0; k < g->nodes[i]->n_in; k++)
                if (g->nodes[i]->in[k] == past && g->nodes[i] != cat)
                    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, g->nodes[i], 0,
                                     -1, past->name, "kv-cache: past input '%s' is read "
                                     "by a node other than the Concat writing '%s'; a "
                                     "stored quantized cache needs the Concat alone",
                                     past->name, o->name);
        for (int k = 0; k < cat->n_in; k++) {
            if (cat->in[k] == past || !cat->in[k])
                continue;
            if (!(cat->in[k] = quantized(ctx, g, e, cat->in[k], scale, zp)))
                return OCT_EINTERNAL;
        }
        past->type.dtype = dt;
    } else {
        ir_value *pre = quant_qdq_value(ctx, g, ir_sprintf(ctx, "%s_float", o->name), o,
                                        IR_DT_FLOAT);
        if (!pre)
            return OCT_EINTERNAL;
        ir_node_set_output(o->producer, o->producer_out, pre);
        if ((st = quant_qdq_node(ctx, g, "QuantizeLinear", e, pre, scale, zp, o)))
            return st;
    }
    o->type.dtype = dt;
    ir_value *dq = quant_qdq_value(ctx, g, ir_sprintf(ctx, "%s_dequantized", o->name), o,
                                   IR_DT_FLOAT);
    if (!dq || (st = quant_qdq_node(ctx, g, "DequantizeLinear", e, o, scale, zp, dq)))
        return st ? st : OCT_EINTERNAL;
    quant_rewire(g, o, dq, g->nodes[g->n_nodes - 1]);
    return OCT_OK;
}

/* Bytes of cache one token takes, over the targets (heads x head size
 * each; a target not [batch, heads, seq, head size] counts 0), with
 * elements of elem_bytes. */
static uint64_t bytes_per_token(ir_value *const *vs, size_t n, unsigned elem_bytes)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const ir_value *v = vs[i];
        if (v->has_type && v->type.rank == 4 && v->type.dims && v->type.dims[1].value > 0 &&
            v->type.dims[3].value > 0)
            total += (uint64_t)(v->type.dims[1].value * v->type.dims[3].value) * elem_bytes;
    }
    return total;
}

oct_status quant_kv_cache(ir_model *m, const quant_opts *opts, const quant_samples *data,
                          oct_ctx *ctx)
{
    ir_graph *g = m->graph;
    ir_qformat format = opts->kv_format;
    const ir_qformat_traits *f = ir_qformat_info(format);
    if (format != IR_QF_INT8 && format != IR_QF_FP8E4M3)
        return oct_error(ctx, OCT_EUSAGE, "kv-cache: format %s; int8 or fp8 "
                         "(E4M3) expected", f->name);
    ir_value **vs = ir_alloc_array(ctx, g->n_outputs + 1, sizeof *vs);
    if (!vs)
        return OCT_EINTERNAL;
    /* the heads of a target inside the graph come from its inferred type */
    oct_status st = pass_run_list(m, "shape_infer", ctx);
    if (st)
        return st;
    size_t n = find_targets(g, vs);
    if (!n)
        return oct_error(ctx, OCT_EUNSUPPORTED, "kv-cache: the model has no present* "
                         "output (the keys and values a decoder caches)");
    int64_t *heads = ir_alloc_array(ctx, n, sizeof *heads);
    double **amax = ir_alloc_array(ctx, n, sizeof *amax);
    if (!heads || !amax)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < n; i++) {
        const ir_value *v = vs[i];
        bool per_head = v->has_type && v->type.rank == 4 && v->type.dims &&
                        v->type.dims[1].value > 0;
        heads[i] = per_head ? v->type.dims[1].value : 1;
        if (!(amax[i] = ir_alloc_array(ctx, (size_t)heads[i], sizeof **amax)))
            return OCT_EINTERNAL;
    }
    kv_acc acc = {vs, heads, amax, n, ctx, OCT_OK};
    const ir_model *ref = opts->kv_scales_from;
    for (size_t i = 0; ref && i < n && !st; i++)
        st = scales_from(ctx, ref, vs[i], heads[i], f, amax[i]);
    if (!ref && !st) {
        st = quant_observe_samples(m, vs, n, data, observe_head_max, &acc, ctx);
        st = st ? st : acc.st;
    }
    if (!st)
        st = quant_upgrade_opset(m, f->opset > 13 ? f->opset : 13, ctx);
    for (size_t i = 0; i < n && !st; i++) {
        quant_tensor e;
        const ir_node *q = ref ? quant_kv_store_node(ref->graph, vs[i]->name) : NULL;
        st = entry_of(ctx, vs[i], heads[i], amax[i], q ? q->in[1]->init->data : NULL,
                      format, &e);
        st = st ? st : store(ctx, g, &e);
    }
    if (!st)
        oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL, "kv-cache: %zu cache tensors "
                  "stored as %s: K+V %llu bytes per token (float32: %llu)", n, f->name,
                  (unsigned long long)bytes_per_token(vs, n, 1),
                  (unsigned long long)bytes_per_token(vs, n, 4));
    return st ? st : ir_verify(m, ctx);
}
