/*
 * quant_kv.c: `octet quantize --kv-cache-quant=int8|fp8`: the keys and
 * values a decoder keeps in its cache are stored quantized.
 *
 * Which tensors: the graph outputs named present* (the convention of ONNX
 * Runtime GenAI and Hugging Face Optimum: present.{l}.key/value).  When one
 * is Concat(past, new) with `past` a graph input (a decode graph), the past
 * part comes from the cache and was quantized when it was written, so only
 * the new part gets Q/DQ; otherwise (a prefill graph) the output tensor
 * itself.  Every reader of the tensor, the attention included, then sees
 * what a quantized cache holds, which is what makes the perplexity of the
 * prefill graph measure the cache's cost.
 *
 * Scales: static, one per head (axis 1 of [batch, heads, seq, head size],
 * per tensor at another rank), the largest magnitude the samples show in
 * that head over the format's largest value (127 for int8 with zero point
 * 0, 448 for E4M3).  Per head rather than per token because a static scale
 * is a plain ONNX QuantizeLinear/DequantizeLinear with axis=1 that every
 * runtime (the interpreter, the compiler, ONNX Runtime) runs unchanged,
 * while per-token scales would need ops computing them at run time; heads
 * differ in range (rotary keys far more than values), tokens of one head
 * much less.  A decode graph is calibrated on its own samples (its new
 * keys and values), so its scales are not those of the prefill graph.
 *
 * What this gives is the arithmetic of a quantized cache, not its memory:
 * the graph's present* outputs are the dequantized float32 values (every
 * one exactly representable as scale x code), and the caches `octet
 * generate` and compiled in-place decoding keep stay float32.  Storing the
 * codes (a Q on the way in, the DQ inside the attention) is left to the
 * cache's owner.
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
                a->st = oct_error(a->ctx, OCT_EINPUT, "kv-cache-quant: '%s' is not a "
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

/* Adds v to the targets unless it is there already. */
static void add_target(ir_value **vs, size_t *n, ir_value *v)
{
    for (size_t i = 0; i < *n; i++)
        if (vs[i] == v)
            return;
    vs[(*n)++] = v;
}

/* The tensors to quantize (see the file comment). */
static size_t find_targets(ir_graph *g, ir_value **vs)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_outputs; i++) {
        ir_value *o = g->outputs[i];
        if (strncmp(o->name, "present", 7))
            continue;
        const ir_node *p = o->producer;
        bool past = false;
        for (int k = 0; p && p->op == IR_OP_CONCAT && k < p->n_in; k++)
            past |= p->in[k] && !p->in[k]->producer && !p->in[k]->init;
        if (!past) {
            add_target(vs, &n, o);
            continue;
        }
        for (int k = 0; k < p->n_in; k++)
            if (p->in[k] && p->in[k]->producer)
                add_target(vs, &n, p->in[k]);
    }
    return n;
}

/* Q/DQ of target v with its head maxima amax[0..heads). */
static oct_status insert(oct_ctx *ctx, ir_graph *g, ir_value *v, int64_t heads,
                         const double *amax, ir_qformat format)
{
    const ir_qformat_traits *f = ir_qformat_info(format);
    double top = f->is_float ? f->fmax : (double)f->qmax;
    quant_tensor e = {.value = v, .kind = QKIND_ACT, .format = format,
                      .axis = heads > 1 ? 1 : -1, .scale_rank = heads > 1,
                      .n_scales = (size_t)heads};
    e.scale_dims = ir_alloc_array(ctx, 1, sizeof *e.scale_dims);
    e.scales = ir_alloc_array(ctx, (size_t)heads, sizeof *e.scales);
    e.zero_points = ir_alloc_array(ctx, (size_t)heads, sizeof *e.zero_points);
    if (!e.scale_dims || !e.scales || !e.zero_points)
        return OCT_EINTERNAL;
    e.scale_dims[0] = heads;
    for (int64_t h = 0; h < heads; h++)
        e.scales[h] = amax[h] > 0 ? (float)(amax[h] / top) : 1.0f;
    return quant_qdq_insert(ctx, g, &e);
}

oct_status quant_kv_cache(ir_model *m, const quant_opts *opts, const quant_samples *data,
                          oct_ctx *ctx)
{
    ir_graph *g = m->graph;
    ir_qformat format = opts->kv_format;
    const ir_qformat_traits *f = ir_qformat_info(format);
    if (format != IR_QF_INT8 && format != IR_QF_FP8E4M3)
        return oct_error(ctx, OCT_EUSAGE, "kv-cache-quant: format %s; int8 or fp8 "
                         "(E4M3) expected", f->name);
    ir_value **vs = ir_alloc_array(ctx, 2 * g->n_outputs + g->n_nodes + 1, sizeof *vs);
    if (!vs)
        return OCT_EINTERNAL;
    /* the heads of a target inside the graph come from its inferred type */
    oct_status st = pass_run_list(m, "shape_infer", ctx);
    if (st)
        return st;
    size_t n = find_targets(g, vs);
    if (!n)
        return oct_error(ctx, OCT_EUNSUPPORTED, "kv-cache-quant: the model has no present* "
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
    st = quant_observe_samples(m, vs, n, data, observe_head_max, &acc, ctx);
    st = st ? st : acc.st;
    if (!st)
        st = quant_upgrade_opset(m, f->opset > 13 ? f->opset : 13, ctx);
    for (size_t i = 0; i < n && !st; i++)
        st = insert(ctx, g, vs[i], heads[i], amax[i], format);
    return st;
}
