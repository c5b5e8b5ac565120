/*
 * quant_report.c: the quantization report for a pair of models, FP32 and
 * QDQ (Octet's own output or any other tool's).
 *
 * Every QuantizeLinear -> DequantizeLinear pair in the QDQ model is a row.
 * The row's tensor is the Q input x; its FP32 counterpart is the value of
 * the same name in the FP32 model, or, failing that, the value named like
 * the DQ output d (Octet renames x to "<name>_float" and gives d the
 * original name; ONNX Runtime keeps x's name).  Running the calibration
 * samples through both models (reference interpreter), each row gets
 *   SQNR alone:       x vs d, both in the QDQ model (this pair's own error)
 *   SQNR accumulated: the FP32 value vs d (all error upstream included)
 *   clipped:          fraction of x saturated by the quantizer
 * and the graph outputs get an end-to-end SQNR.  SQNR = 10 log10(sum x^2 /
 * sum (x - y)^2), pooled over all samples.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/quant.h"
#include "ops/ops.h"

static const ir_node *producer_of(const ir_value *v) { return v ? v->producer : NULL; }

static bool const_scalar_params(const ir_node *q, const ir_tensor **scale,
                                const ir_tensor **zp)
{
    *scale = q->n_in > 1 && q->in[1] ? q->in[1]->init : NULL;
    *zp = q->n_in > 2 && q->in[2] ? q->in[2]->init : NULL;
    return *scale && (*scale)->dtype == IR_DT_FLOAT;
}

typedef struct pair_run {
    quant_report *rep;
    const ir_model *fp32, *qdq;
    int32_t *row_of_fp32;   /* fp32 value id -> row, or -1 */
    int32_t *row_of_x;      /* qdq value id -> row (Q input), or -1 */
    int32_t *row_of_d;      /* qdq value id -> row (DQ output), or -1 */
    float **ref_copy;       /* per row: FP32 values of this sample */
    float **x_copy;         /* per row: x values of this sample */
    uint64_t *n_copy;
    oct_ctx *ctx;
    bool oom;
} pair_run;

static void copy_values(pair_run *pr, float **slot, uint64_t *n_slot, const ir_tensor *t)
{
    if (*slot && *n_slot != t->nelems) {
        oct_free(pr->ctx, *slot, *n_slot * sizeof(float));
        *slot = NULL;
    }
    if (!*slot)
        *slot = oct_malloc(pr->ctx, (t->nelems + 1) * sizeof(float));
    if (!*slot) {
        pr->oom = true;
        return;
    }
    memcpy(*slot, t->data, t->nelems * sizeof(float));
    *n_slot = t->nelems;
}

static void observe_fp32(void *user, const ir_value *v, const ir_tensor *t)
{
    pair_run *pr = user;
    int r = pr->row_of_fp32[v->id];
    if (r >= 0 && t->dtype == IR_DT_FLOAT)
        copy_values(pr, &pr->ref_copy[r], &pr->n_copy[r], t);
}

static void observe_qdq(void *user, const ir_value *v, const ir_tensor *t)
{
    pair_run *pr = user;
    if (t->dtype != IR_DT_FLOAT)
        return;
    int r = pr->row_of_x[v->id];
    if (r >= 0) {
        uint64_t nx = t->nelems;
        if (pr->x_copy[r])
            oct_free(pr->ctx, pr->x_copy[r], (pr->rep->rows[r].x_elems + 1) * sizeof(float));
        pr->x_copy[r] = oct_malloc(pr->ctx, (nx + 1) * sizeof(float));
        if (!pr->x_copy[r]) {
            pr->oom = true;
            return;
        }
        memcpy(pr->x_copy[r], t->data, nx * sizeof(float));
        pr->rep->rows[r].x_elems = nx;
    }
    r = pr->row_of_d[v->id];
    if (r < 0)
        return;
    quant_report_row *row = &pr->rep->rows[r];
    const float *d = t->data, *x = pr->x_copy[r], *ref = pr->ref_copy[r];
    if (!x || row->x_elems != t->nelems)
        return;
    bool have_ref = ref && pr->n_copy[r] == t->nelems;
    for (uint64_t i = 0; i < t->nelems; i++) {
        double xi = x[i], di = d[i];
        row->signal_alone += xi * xi;
        row->noise_alone += (xi - di) * (xi - di);
        row->clipped_count += row->clip_abs > 0 ? fabs(xi) > row->clip_abs
                                                : fabs(xi - di) > row->clip_threshold;
        if (have_ref) {
            row->signal_accum += (double)ref[i] * ref[i];
            row->noise_accum += ((double)ref[i] - di) * ((double)ref[i] - di);
        }
    }
    row->n_values += t->nelems;
}

/* Element i of a float output: float32, or FP16 / BF16 (a half model
 * quantized through quant_upcast.c keeps half outputs). */
static bool is_real_output(ir_dtype d)
{
    return d == IR_DT_FLOAT || d == IR_DT_FLOAT16 || d == IR_DT_BFLOAT16;
}

static double real_at(const ir_tensor *t, uint64_t i)
{
    if (t->dtype == IR_DT_FLOAT)
        return ((const float *)t->data)[i];
    uint16_t h = ((const uint16_t *)t->data)[i];
    return t->dtype == IR_DT_FLOAT16 ? ops_f16_to_f32(h) : ops_bf16_to_f32(h);
}

static double db(double signal, double noise)
{
    if (noise <= 0)
        return signal > 0 ? 200.0 : 0.0;
    return signal > 0 ? 10.0 * log10(signal / noise) : 0.0;
}

/* Rows from the QDQ graph's Q -> DQ pairs. */
static oct_status find_rows(oct_ctx *ctx, const ir_model *fp32, const ir_model *qdq,
                            quant_report *rep)
{
    const ir_graph *g = qdq->graph;
    rep->rows = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *rep->rows);
    if (!rep->rows)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const ir_node *dq = g->nodes[i];
        if (dq->op != IR_OP_DEQUANTIZELINEAR || !dq->in[0] || dq->n_out < 1)
            continue;
        const ir_node *q = producer_of(dq->in[0]);
        if (!q || q->op != IR_OP_QUANTIZELINEAR || !q->in[0])
            continue;
        const ir_tensor *scale, *zp;
        if (!const_scalar_params(q, &scale, &zp))
            continue;
        quant_report_row *row = &rep->rows[rep->n_rows++];
        memset(row, 0, sizeof *row);
        row->x = q->in[0];
        row->d = dq->out[0];
        row->ref = ir_graph_find(fp32->graph, row->x->name);
        if (!row->ref)
            row->ref = ir_graph_find(fp32->graph, row->d->name);
        row->tensor = row->ref ? row->ref->name : row->x->name;
        row->qtype = q->out[0]->has_type ? q->out[0]->type.dtype
                     : zp ? zp->dtype : IR_DT_UINT8;
        row->n_scales = scale->nelems;
        row->scale = ((const float *)scale->data)[0];
        row->zero_point = zp && zp->nelems ? (int32_t)ops_get_i64(zp, 0) : 0;
        if (zp && ir_dtype_info(zp->dtype)->kind == IR_DK_FLOAT)
            row->zero_point = 0;
        row->granularity = scale->nelems == 1 ? "tensor"
                           : ir_node_attr(q, "block_size") ? "block" : "channel";
        /* integers: an error beyond half a step means the value saturated;
         * float8: a magnitude beyond the largest finite value times s */
        if (ir_dtype_info(row->qtype)->kind == IR_DK_FLOAT)
            row->clip_abs = ir_qformat_info(ir_qformat_of_dtype(row->qtype))->fmax * row->scale;
        else
            row->clip_threshold = 0.5001 * row->scale;
    }
    return OCT_OK;
}

static size_t model_inputs(const ir_model *m, const ir_value **out)
{
    size_t n = 0;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        if (!m->graph->inputs[i]->init) {
            if (out)
                out[n] = m->graph->inputs[i];
            n++;
        }
    return n;
}

static int32_t *index_map(oct_ctx *ctx, size_t n)
{
    int32_t *m = ir_alloc_array(ctx, n + 1, sizeof *m);
    for (size_t i = 0; m && i <= n; i++)
        m[i] = -1;
    return m;
}

oct_status quant_report_pair(const ir_model *fp32, const ir_model *qdq,
                             const quant_samples *data, quant_report *rep,
                             oct_ctx *ctx)
{
    memset(rep, 0, sizeof *rep);
    oct_status st = find_rows(ctx, fp32, qdq, rep);
    if (st)
        return st;
    size_t n_in = model_inputs(qdq, NULL);
    if (n_in != model_inputs(fp32, NULL))
        return oct_error(ctx, OCT_EINPUT, "the two models have different inputs");
    size_t n_out = qdq->graph->n_outputs;
    if (n_out != fp32->graph->n_outputs)
        return oct_error(ctx, OCT_EINPUT, "the two models have different outputs");
    pair_run pr = {.rep = rep, .fp32 = fp32, .qdq = qdq, .ctx = ctx};
    pr.row_of_fp32 = index_map(ctx, fp32->graph->n_values);
    pr.row_of_x = index_map(ctx, qdq->graph->n_values);
    pr.row_of_d = index_map(ctx, qdq->graph->n_values);
    pr.ref_copy = ir_alloc_array(ctx, rep->n_rows + 1, sizeof *pr.ref_copy);
    pr.x_copy = ir_alloc_array(ctx, rep->n_rows + 1, sizeof *pr.x_copy);
    pr.n_copy = ir_alloc_array(ctx, rep->n_rows + 1, sizeof *pr.n_copy);
    rep->outputs = ir_alloc_array(ctx, n_out + 1, sizeof *rep->outputs);
    ir_tensor **in = ir_alloc_array(ctx, n_in + 1, sizeof *in);
    ir_tensor **out_f = ir_alloc_array(ctx, n_out + 1, sizeof *out_f);
    ir_tensor **out_q = ir_alloc_array(ctx, n_out + 1, sizeof *out_q);
    const ir_value **qdq_inputs = ir_alloc_array(ctx, n_in + 1, sizeof *qdq_inputs);
    if (!pr.row_of_fp32 || !pr.row_of_x || !pr.row_of_d || !pr.ref_copy ||
        !pr.x_copy || !pr.n_copy || !rep->outputs || !in || !out_f || !out_q ||
        !qdq_inputs)
        return OCT_EINTERNAL;
    model_inputs(qdq, qdq_inputs);
    rep->n_outputs = n_out;
    for (size_t r = 0; r < rep->n_rows; r++) {
        quant_report_row *row = &rep->rows[r];
        if (row->ref)
            pr.row_of_fp32[row->ref->id] = (int32_t)r;
        pr.row_of_x[row->x->id] = (int32_t)r;
        pr.row_of_d[row->d->id] = (int32_t)r;
    }
    const ir_engine *eng = ir_ctx_engine(ctx, "the quantization report");
    if (!eng)
        return OCT_EINTERNAL;
    for (size_t s = 0; !st && s < data->n; s++) {
        memset(in, 0, (n_in + 1) * sizeof *in);
        memset(out_f, 0, (n_out + 1) * sizeof *out_f);
        memset(out_q, 0, (n_out + 1) * sizeof *out_q);
        st = data->get(data->user, s, in, ctx);
        for (size_t i = 0; !st && i < n_in; i++) {
            /* graph inputs are not node outputs: feed them by hand */
            observe_fp32(&pr, ir_graph_find(fp32->graph, qdq_inputs[i]->name)
                                  ? ir_graph_find(fp32->graph, qdq_inputs[i]->name)
                                  : qdq_inputs[i], in[i]);
            observe_qdq(&pr, qdq_inputs[i], in[i]);
        }
        if (!st)
            st = eng->run(ctx, fp32, (const ir_tensor *const *)in, n_in, out_f, n_out,
                         observe_fp32, &pr);
        if (!st)
            st = eng->run(ctx, qdq, (const ir_tensor *const *)in, n_in, out_q, n_out,
                         observe_qdq, &pr);
        for (size_t o = 0; !st && o < n_out; o++) {
            if (!out_f[o] || !out_q[o] || !is_real_output(out_f[o]->dtype) ||
                out_q[o]->dtype != out_f[o]->dtype || out_f[o]->nelems != out_q[o]->nelems)
                continue;
            for (uint64_t i = 0; i < out_f[o]->nelems; i++) {
                double a = real_at(out_f[o], i), b = real_at(out_q[o], i);
                rep->outputs[o].signal += a * a;
                rep->outputs[o].noise += (a - b) * (a - b);
            }
        }
        for (size_t i = 0; i < n_in; i++)
            ir_heap_tensor_free(ctx, in[i]);
        for (size_t o = 0; o < n_out; o++) {
            ir_heap_tensor_free(ctx, out_f[o]);
            ir_heap_tensor_free(ctx, out_q[o]);
        }
        if (pr.oom && !st)
            st = OCT_EINTERNAL;
        rep->n_samples++;
    }
    for (size_t r = 0; r < rep->n_rows; r++) {
        quant_report_row *row = &rep->rows[r];
        oct_free(ctx, pr.ref_copy[r], (pr.n_copy[r] + 1) * sizeof(float));
        oct_free(ctx, pr.x_copy[r], (row->x_elems + 1) * sizeof(float));
        row->sqnr_alone = db(row->signal_alone, row->noise_alone);
        row->sqnr_accum = row->ref ? db(row->signal_accum, row->noise_accum) : NAN;
        row->clipped = row->n_values ? (double)row->clipped_count / (double)row->n_values : 0;
    }
    for (size_t o = 0; o < n_out; o++) {
        rep->outputs[o].name = qdq->graph->outputs[o]->name;
        rep->outputs[o].sqnr = db(rep->outputs[o].signal, rep->outputs[o].noise);
    }
    return st;
}
