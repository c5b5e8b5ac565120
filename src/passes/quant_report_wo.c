/*
 * quant_report_wo.c: the report of a weight-only quantized model (`octet
 * quantize --weights-only --report`): one row per quantized weight with its
 * format, bits per weight, bytes and the SQNR of the dequantized weight
 * against the float one, and a total size line.
 *
 * A quantized weight is an input of a node that is not itself a
 * DequantizeLinear, produced by a chain of DequantizeLinear nodes whose
 * inputs are all constants (one level, or two when the scales are
 * themselves dequantized).  Its float counterpart is the same input of the
 * node of the same name in the FP32 model (quantization rewrites in place
 * and keeps node names), or failing that the FP32 initializer named like
 * the codes without Octet's "_quantized" suffix.  The dequantized weight is
 * computed by the context's engine (the interpreter's DequantizeLinear, the
 * same arithmetic `octet run` uses), so
 *   SQNR = 10 log10(sum w^2 / sum (w - dq(w))^2)   (+inf when exact),
 *   bytes = the stored bytes of every constant of the chain (codes, scales,
 *           zero points, second-level scales; 4-bit and 2-bit elements
 *           packed as ONNX stores them), bits per weight = 8 bytes / count.
 * The format is the weight-only row of src/ir/qformats.def whose element
 * type, scale type and block size the chain has (nvfp4, q4_k, ...), or the
 * element type's name with its granularity and scheme ("int4 b32 asym",
 * "int8 channel sym"; asym when the zero points are not all one value).  MatMulNBits weights are measured by the caller on
 * a copy the mnb_unpack pass has turned into this form.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "passes/quant.h"

static bool is_dq(const ir_node *n)
{
    return n && n->op == IR_OP_DEQUANTIZELINEAR && n->n_in >= 2 && n->in[0] && n->in[1];
}

/* Whether v is a constant or a DequantizeLinear chain of constants (at
 * most `depth` levels). */
static bool const_chain(const ir_value *v, int depth)
{
    if (v->init)
        return true;
    const ir_node *n = v->producer;
    if (depth == 0 || !is_dq(n))
        return false;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && !const_chain(n->in[i], depth - 1))
            return false;
    return true;
}

/* Stored bytes of the constants of v's chain. */
static uint64_t chain_bytes(const ir_value *v)
{
    uint64_t b = 0;
    if (v->init)
        return ir_dtype_bytes(v->init->dtype, v->init->nelems, &b) ? b : 0;
    const ir_node *n = v->producer;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i])
            b += chain_bytes(n->in[i]);
    return b;
}

/* v's value as float32, evaluated by the engine (heap tensor the caller
 * frees with ir_heap_tensor_free when *owned). */
static oct_status chain_eval(oct_ctx *ctx, const ir_engine *eng, int64_t opset,
                             const ir_value *v, const ir_tensor **out, bool *owned)
{
    *owned = false;
    if (v->init) {
        *out = v->init;
        return OCT_OK;
    }
    const ir_node *n = v->producer;
    const ir_tensor *in[3] = {NULL, NULL, NULL};
    bool own[3] = {false, false, false};
    oct_status st = OCT_OK;
    for (int i = 0; i < n->n_in && i < 3 && !st; i++)
        if (n->in[i])
            st = chain_eval(ctx, eng, opset, n->in[i], &in[i], &own[i]);
    ir_tensor *res[1] = {NULL};
    if (!st)
        st = eng->eval_node(ctx, n, opset, in, res);
    for (int i = 0; i < 3; i++)
        if (own[i])
            ir_heap_tensor_free(ctx, (ir_tensor *)in[i]);
    if (!st && res[0]->dtype != IR_DT_FLOAT) {
        ir_heap_tensor_free(ctx, res[0]);
        return oct_node_error(ctx, OCT_EINTERNAL, n, "report: a weight dequantizes to a "
                              "type other than float32");
    }
    *out = res[0];
    *owned = !st;
    return st;
}

/* The format name of the chain ending at DequantizeLinear dq (file
 * comment), in the arena. */
static const char *format_of(oct_ctx *ctx, const ir_node *dq)
{
    const ir_tensor *q = dq->in[0]->init;
    const ir_node *sdq = dq->in[1]->producer;
    int64_t bs = ir_attr_int(dq, "block_size", 0);
    ir_dtype sdt = sdq ? sdq->in[0]->init->dtype : dq->in[1]->init->dtype;
    for (int f = 1; f < IR_QF_COUNT; f++) {
        const ir_qformat_traits *t = ir_qformat_info(f);
        if (quant_wo_is_lowbit(t) && t->dtype == q->dtype && t->scale_dtype == sdt &&
            t->block_size == bs && (t->scale_levels == 2) == (sdq != NULL))
            return t->name;
    }
    const ir_tensor *s = dq->in[1]->init;
    const ir_tensor *z = dq->n_in > 2 && dq->in[2] ? dq->in[2]->init : NULL;
    bool zp = false; /* asymmetric: zero points that differ */
    for (uint64_t i = 1; z && i < z->nelems && !zp; i++)
        zp = ops_get(z, i) != ops_get(z, 0);
    const char *gran = bs ? ir_sprintf(ctx, "b%lld", (long long)bs)
                       : s && s->nelems > 1 ? "channel" : "tensor";
    return ir_sprintf(ctx, "%s %s %s", ir_qformat_info(ir_qformat_of_dtype(q->dtype))->name,
                      gran ? gran : "?", zp ? "asym" : "sym");
}

/* The FP32 weight matching input i of node n (file comment), or NULL. */
static const ir_tensor *float_of(const ir_graph *g32, const ir_node *n, int i,
                                 const ir_node *dq)
{
    for (size_t k = 0; n->name && n->name[0] && k < g32->n_nodes; k++) {
        const ir_node *m = g32->nodes[k];
        if (m->name && !strcmp(m->name, n->name) && i < m->n_in && m->in[i] &&
            m->in[i]->init && m->in[i]->init->dtype == IR_DT_FLOAT)
            return m->in[i]->init;
    }
    const char *qn = dq->in[0]->name, *suffix = "_quantized";
    size_t len = strlen(qn), sl = strlen(suffix);
    if (len <= sl || strcmp(qn + len - sl, suffix))
        return NULL;
    for (size_t k = 0; k < g32->n_inits; k++) {
        const ir_value *v = g32->inits[k];
        if (strlen(v->name) == len - sl && !strncmp(v->name, qn, len - sl) && v->init &&
            v->init->dtype == IR_DT_FLOAT)
            return v->init;
    }
    return NULL;
}

static double sqnr_db(const float *w, const float *d, uint64_t n)
{
    double sig = 0, err = 0;
    for (uint64_t i = 0; i < n; i++) {
        double e = (double)w[i] - (double)d[i];
        sig += (double)w[i] * w[i];
        err += e * e;
    }
    return err > 0 ? 10.0 * log10(sig / err) : INFINITY;
}

static uint64_t init_bytes(const ir_graph *g)
{
    uint64_t total = 0, b;
    for (size_t k = 0; k < g->n_inits; k++)
        if (g->inits[k]->init && ir_dtype_bytes(g->inits[k]->init->dtype,
                                                g->inits[k]->init->nelems, &b))
            total += b;
    return total;
}

/* Appends a row; false when out of memory. */
static bool add_row(oct_ctx *ctx, quant_wo_report *r, size_t *cap, quant_wo_row row)
{
    if (r->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 32;
        quant_wo_row *grown = ir_alloc_array(ctx, nc, sizeof *grown);
        if (!grown)
            return false;
        if (r->n)
            memcpy(grown, r->rows, r->n * sizeof *grown);
        r->rows = grown;
        *cap = nc;
    }
    r->rows[r->n++] = row;
    return true;
}

oct_status quant_wo_report_measure(const ir_model *fp32, const ir_model *q,
                                   quant_wo_report *out, oct_ctx *ctx)
{
    memset(out, 0, sizeof *out);
    const ir_engine *eng = ir_ctx_engine(ctx, "the weight report");
    if (!eng)
        return OCT_EINTERNAL;
    const ir_graph *g = q->graph;
    int64_t opset = ir_model_opset(q, "");
    size_t cap = 0;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        if (n->op == IR_OP_DEQUANTIZELINEAR)
            continue;
        for (int i = 0; i < n->n_in; i++) {
            const ir_value *v = n->in[i];
            const ir_node *dq = v ? v->producer : NULL;
            if (!is_dq(dq) || !dq->in[0]->init || !const_chain(v, 2))
                continue;
            const ir_tensor *w32 = float_of(fp32->graph, n, i, dq), *dqv;
            bool owned;
            oct_status st = chain_eval(ctx, eng, opset, v, &dqv, &owned);
            if (st)
                return st;
            quant_wo_row row = {
                .tensor = w32 ? NULL : v->name, .format = format_of(ctx, dq),
                .elems = dqv->nelems, .bytes = chain_bytes(v), .sqnr = NAN};
            for (size_t j = 0; w32 && j < fp32->graph->n_inits; j++)
                if (fp32->graph->inits[j]->init == w32)
                    row.tensor = fp32->graph->inits[j]->name;
            if (w32 && w32->nelems == dqv->nelems)
                row.sqnr = sqnr_db(w32->data, dqv->data, dqv->nelems);
            row.bits = row.elems ? 8.0 * (double)row.bytes / (double)row.elems : 0;
            if (owned)
                ir_heap_tensor_free(ctx, (ir_tensor *)dqv);
            if (!row.tensor)
                row.tensor = v->name;
            if (!add_row(ctx, out, &cap, row))
                return OCT_EINTERNAL;
            out->weight_bytes += row.bytes;
            out->weight_elems += (uint64_t)row.elems;
        }
    }
    out->model_bytes = init_bytes(g);
    out->fp32_bytes = init_bytes(fp32->graph);
    return OCT_OK;
}

void quant_wo_report_table(FILE *out, const quant_wo_report *r)
{
    fprintf(out, "%-48s %-16s %10s %8s %12s %9s\n", "weight", "format", "elements",
            "bits/w", "bytes", "SQNR dB");
    for (size_t i = 0; i < r->n; i++) {
        const quant_wo_row *w = &r->rows[i];
        fprintf(out, "%-48s %-16s %10lld %8.3f %12llu %9.2f\n", w->tensor, w->format,
                (long long)w->elems, w->bits, (unsigned long long)w->bytes, w->sqnr);
    }
    fprintf(out, "quantized weights: %zu, %llu elements in %llu bytes (%.3f bits per "
            "weight)\n", r->n, (unsigned long long)r->weight_elems,
            (unsigned long long)r->weight_bytes,
            r->weight_elems ? 8.0 * (double)r->weight_bytes / (double)r->weight_elems : 0.0);
    fprintf(out, "model size: %llu bytes of initializers (FP32 model %llu bytes, %.2fx "
            "smaller)\n", (unsigned long long)r->model_bytes, (unsigned long long)r->fp32_bytes,
            r->model_bytes ? (double)r->fp32_bytes / (double)r->model_bytes : 0.0);
}

static void add_db(cJSON *o, const char *key, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, key);
    else if (isinf(v))
        cJSON_AddStringToObject(o, key, "inf");
    else
        cJSON_AddNumberToObject(o, key, v);
}

oct_status quant_wo_report_json(oct_ctx *ctx, const char *path, const quant_wo_report *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *ws = root ? cJSON_AddArrayToObject(root, "weights") : NULL;
    oct_status st = ws ? OCT_OK : OCT_EINTERNAL;
    if (!st) {
        cJSON_AddStringToObject(root, "format", "octet-weight-only-report");
        cJSON_AddNumberToObject(root, "version", 1);
        cJSON_AddNumberToObject(root, "weight_bytes", (double)r->weight_bytes);
        cJSON_AddNumberToObject(root, "weight_elements", (double)r->weight_elems);
        cJSON_AddNumberToObject(root, "model_bytes", (double)r->model_bytes);
        cJSON_AddNumberToObject(root, "fp32_model_bytes", (double)r->fp32_bytes);
    }
    for (size_t i = 0; !st && i < r->n; i++) {
        const quant_wo_row *w = &r->rows[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            st = OCT_EINTERNAL;
            break;
        }
        cJSON_AddStringToObject(o, "tensor", w->tensor);
        cJSON_AddStringToObject(o, "format", w->format);
        cJSON_AddNumberToObject(o, "elements", (double)w->elems);
        cJSON_AddNumberToObject(o, "bytes", (double)w->bytes);
        cJSON_AddNumberToObject(o, "bits_per_weight", w->bits);
        add_db(o, "sqnr_db", w->sqnr);
        cJSON_AddItemToArray(ws, o);
    }
    char *text = st ? NULL : cJSON_Print(root);
    if (!st && !text)
        st = OCT_EINTERNAL;
    if (!st) {
        size_t len = strlen(text);
        text[len] = '\n';
        st = ir_write_atomic(ctx, path, text, len + 1);
    }
    if (st == OCT_EINTERNAL && !oct_error_count(ctx))
        oct_error(ctx, OCT_EINTERNAL, "out of memory writing the report");
    free(text);
    cJSON_Delete(root);
    return st;
}
