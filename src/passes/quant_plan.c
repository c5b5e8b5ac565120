/*
 * quant_plan.c: which tensors `octet quantize` quantizes, and which of them
 * share parameters.
 *
 * Placement, as ONNX Runtime's QDQ quantizer and the compiler's kernels
 * expect it:
 *  - the quantized ops (default Conv, ConvTranspose, Gemm, MatMul, Add, Mul,
 *    Concat, AveragePool, GlobalAveragePool) get Q/DQ on their float
 *    activation inputs and on their output, unless no consumer reads that
 *    output quantized (a model output, or one feeding only float ops):
 *    those stay float;
 *  - a Relu or Clip that is the only consumer of such an output is folded
 *    into the range: the Q/DQ goes after it, not between;
 *  - weights of Conv/ConvTranspose/Gemm/MatMul are quantized per channel
 *    (or per tensor, or per block), biases to int32 with scale s_x * s_w;
 *    other constant operands are quantized per tensor like activations;
 *  - pass-through ops (Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
 *    MaxPool, Slice, Pad, Resize nearest) whose input is quantized get Q/DQ
 *    on their output with the input's parameters: no requantization;
 *  - all inputs and the output of a Concat share one scale;
 *  - tensors already produced by a DequantizeLinear or consumed by a
 *    QuantizeLinear (QAT models, other tools) are left as they are.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "passes/quant.h"

quant_opts quant_default_opts(void)
{
    quant_opts o = {
        .method = CALIB_MINMAX,
        .percentile = 99.999,
        .precision = QPREC_FIXED,
        .family = QFAM_INT8,
        .families = {
            [QFAM_INT8] = {"int8", IR_QF_UINT8, IR_QF_INT8},
            [QFAM_FP8] = {"fp8", IR_QF_FP8E4M3, IR_QF_FP8E4M3},
        },
        .n_families = QUANT_MAX_FAMILIES,
        .weight_granularity = QGRAN_CHANNEL,
        .block_size = 0, /* the weight format's default (qformats.def) */
        .wo_format = IR_QF_INT8,
        .wo_symmetric = -1,
    };
    return o;
}

int quant_family_index(const quant_opts *o, const char *name)
{
    for (int k = 0; k < o->n_families; k++)
        if (!strcmp(o->families[k].name, name))
            return k;
    return -1;
}

/* The one place where command-line spellings become families and formats. */
bool quant_opts_set_precision(quant_opts *o, const char *text)
{
    int k = quant_family_index(o, text);
    if (k >= 0) {
        o->precision = QPREC_FIXED;
        o->family = k;
    } else if (!strcmp(text, "auto")) {
        o->precision = QPREC_AUTO;
    } else if (!strncmp(text, "budget:", 7)) {
        char *end;
        o->precision = QPREC_BUDGET;
        o->budget_db = strtod(text + 7, &end);
        return *end == '\0' && end != text + 7;
    } else {
        return false;
    }
    return true;
}

bool quant_opts_set_activations(quant_opts *o, const char *text)
{
    if (!strcmp(text, "dynamic")) {
        o->dynamic = true;
        return true;
    }
    ir_qformat f = !strcmp(text, "u8") ? IR_QF_UINT8
                 : !strcmp(text, "s8") ? IR_QF_INT8 : IR_QF_NONE;
    if (!f)
        return false;
    o->families[QFAM_INT8].act = f;
    return true;
}

bool quant_opts_set_fp8(quant_opts *o, const char *text)
{
    ir_qformat f = !strcmp(text, "e4m3") ? IR_QF_FP8E4M3
                 : !strcmp(text, "e5m2") ? IR_QF_FP8E5M2 : IR_QF_NONE;
    if (!f)
        return false;
    o->families[QFAM_FP8].act = o->families[QFAM_FP8].weight = f;
    return true;
}

int quant_pick_family(oct_ctx *ctx, const quant_opts *opts, int force,
                      const char *force_reason, const double *sqnr,
                      const char **reason, bool *keep_float)
{
    *keep_float = force == QFORCE_FP32;
    if (force) {
        *reason = force_reason;
        return force == QFORCE_FP32 ? 0 : quant_force_family(force);
    }
    if (opts->precision == QPREC_FIXED) {
        *reason = ir_sprintf(ctx, "--precision=%s", opts->families[opts->family].name);
        return opts->family;
    }
    int best = 0;
    for (int k = 1; k < opts->n_families; k++)
        if (sqnr[k] > sqnr[best])
            best = k;
    *reason = ir_sprintf(ctx, "auto: %s SQNR highest%s", opts->families[best].name,
                         best == 0 ? " or tied" : "");
    return best;
}

static const ir_op default_ops[] = {
    IR_OP_CONV, IR_OP_CONVTRANSPOSE, IR_OP_GEMM, IR_OP_MATMUL, IR_OP_ADD,
    IR_OP_MUL, IR_OP_CONCAT, IR_OP_AVERAGEPOOL, IR_OP_GLOBALAVERAGEPOOL,
};

typedef struct builder {
    oct_ctx *ctx;
    ir_graph *g;
    const quant_opts *opts;
    quant_plan *plan;
    uint32_t *use_start;   /* per value id: first index into use_list */
    uint32_t *use_count;   /* per value id: consuming input slots */
    ir_node **use_list;
    quant_filter filter;   /* --op-types, --exclude-op-types, --exclude-nodes */
    quant_rules *rules;    /* --config overrides, or NULL */
} builder;

/* ---- helpers ------------------------------------------------------------- */

bool quant_in_comma_list(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

oct_status quant_filter_init(quant_filter *f, const quant_opts *opts, oct_ctx *ctx)
{
    f->opts = opts;
    f->has_exclude = false;
    if (!opts->exclude_nodes)
        return OCT_OK;
    if (regcomp(&f->exclude, opts->exclude_nodes, REG_EXTENDED | REG_NOSUB) != 0)
        return oct_error(ctx, OCT_EUSAGE, "--exclude-nodes: bad regular expression '%s'",
                         opts->exclude_nodes);
    f->has_exclude = true;
    return OCT_OK;
}

bool quant_filter_pass(const quant_filter *f, const ir_node *n, bool in_default)
{
    bool in_set = f->opts->op_types ? quant_in_comma_list(f->opts->op_types, n->op_type)
                                    : in_default;
    if (!in_set || quant_in_comma_list(f->opts->exclude_op_types, n->op_type))
        return false;
    return !(f->has_exclude && regexec(&f->exclude, n->name, 0, NULL, 0) == 0);
}

void quant_filter_free(quant_filter *f)
{
    if (f->has_exclude)
        regfree(&f->exclude);
    f->has_exclude = false;
}

static bool node_selected(const builder *b, const ir_node *n)
{
    bool in_default = false;
    for (size_t i = 0; i < sizeof default_ops / sizeof default_ops[0]; i++)
        in_default |= n->op == default_ops[i];
    return quant_filter_pass(&b->filter, n, in_default);
}

/* Consumer lists: use_list[use_start[v] .. + use_count[v]) are the nodes
 * reading value v, once per input slot. */
static oct_status build_consumers(builder *b)
{
    ir_graph *g = b->g;
    size_t nv = g->n_values;
    b->use_start = ir_alloc_array(b->ctx, nv + 1, sizeof *b->use_start);
    b->use_count = ir_alloc_array(b->ctx, nv + 1, sizeof *b->use_count);
    if (!b->use_start || !b->use_count)
        return OCT_EINTERNAL;
    size_t total = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_in; k++)
            if (g->nodes[i]->in[k]) {
                b->use_count[g->nodes[i]->in[k]->id]++;
                total++;
            }
    for (size_t v = 1; v < nv; v++)
        b->use_start[v] = b->use_start[v - 1] + b->use_count[v - 1];
    b->use_list = ir_alloc_array(b->ctx, total + 1, sizeof *b->use_list);
    if (!b->use_list)
        return OCT_EINTERNAL;
    memset(b->use_count, 0, (nv + 1) * sizeof *b->use_count);
    for (size_t i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k]) {
                uint32_t id = n->in[k]->id;
                b->use_list[b->use_start[id] + b->use_count[id]++] = n;
            }
    }
    return OCT_OK;
}

/* The only node consuming v (reading it in any number of slots), or NULL
 * if v has no consumer, several, or is a graph output. */
static ir_node *sole_consumer(const builder *b, const ir_value *v)
{
    if (ir_value_escapes(v) || !b->use_count[v->id])
        return NULL;
    ir_node *first = b->use_list[b->use_start[v->id]];
    for (uint32_t k = 1; k < b->use_count[v->id]; k++)
        if (b->use_list[b->use_start[v->id] + k] != first)
            return NULL;
    return first;
}

static bool consumed_by_quantize(const builder *b, const ir_value *v)
{
    for (uint32_t k = 0; k < b->use_count[v->id]; k++)
        if (b->use_list[b->use_start[v->id] + k]->op == IR_OP_QUANTIZELINEAR)
            return true;
    return false;
}

static bool is_float(const ir_value *v)
{
    return v && v->has_type && v->type.dtype == IR_DT_FLOAT;
}

/* Appends an entry; returns its index or -1 on allocation failure. */
static int add_entry(builder *b, ir_value *v, quant_kind kind)
{
    quant_plan *p = b->plan;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        quant_tensor *t = ir_alloc_array(b->ctx, cap, sizeof *t);
        if (!t)
            return -1;
        if (p->n)
            memcpy(t, p->t, p->n * sizeof *t);
        p->t = t;
        p->cap = cap;
    }
    int idx = (int)p->n++;
    quant_tensor *e = &p->t[idx];
    memset(e, 0, sizeof *e);
    e->value = v;
    e->kind = kind;
    e->act = e->weight = e->axis = -1;
    e->input = -1;
    e->group = idx;
    return idx;
}

/* The activation entry of v, created on first use; -1 if v cannot be
 * quantized (not float, produced by a DequantizeLinear, feeding a
 * QuantizeLinear already) or on failure (ctx has the diagnostic). */
static int activation(builder *b, ir_value *v)
{
    if (!is_float(v))
        return -1;
    int existing = b->plan->of_value[v->id];
    if (existing >= 0)
        return existing;
    if ((v->producer && v->producer->op == IR_OP_DEQUANTIZELINEAR) ||
        consumed_by_quantize(b, v))
        return -1;
    int idx = add_entry(b, v, v->init ? QKIND_CONST : QKIND_ACT);
    if (idx >= 0)
        b->plan->of_value[v->id] = idx;
    return idx;
}

int quant_group_of(quant_plan *plan, int index)
{
    while (plan->t[index].group != index) {
        int parent = plan->t[index].group;
        plan->t[index].group = plan->t[parent].group; /* path halving */
        index = parent;
    }
    return index;
}

static void unite(quant_plan *plan, int a, int b)
{
    if (a < 0 || b < 0)
        return;
    a = quant_group_of(plan, a);
    b = quant_group_of(plan, b);
    if (a != b)
        plan->t[b > a ? b : a].group = b > a ? a : b; /* lower index wins */
}

/* ---- weights and biases -------------------------------------------------- */

/* Input slot of the weight of a node, or -1. */
static int weight_slot(const ir_node *n)
{
    switch (n->op) {
    case IR_OP_CONV: case IR_OP_CONVTRANSPOSE: case IR_OP_GEMM: case IR_OP_MATMUL:
        return 1;
    default:
        return -1;
    }
}

/* Per-channel axis of the weight: the output-channel axis. */
static int weight_axis(const ir_node *n, const ir_value *w)
{
    int rank = w->init ? w->init->rank : w->type.rank;
    switch (n->op) {
    case IR_OP_CONV:
        return 0;
    case IR_OP_CONVTRANSPOSE:
        return 1;
    case IR_OP_GEMM:
        return ir_attr_int(n, "transB", 0) ? 0 : 1;
    case IR_OP_MATMUL:
        return rank >= 2 ? rank - 1 : -1;
    default:
        return -1;
    }
}

/* Blocked quantization goes along the reduction (K) axis. */
static int block_axis(const ir_node *n, const ir_value *w)
{
    int rank = w->init->rank;
    if (n->op == IR_OP_GEMM)
        return ir_attr_int(n, "transB", 0) ? 1 : 0;
    if (n->op == IR_OP_MATMUL && rank >= 2)
        return rank - 2;
    return -1;
}

static oct_status add_weight(builder *b, ir_node *n, int act_idx)
{
    int slot = weight_slot(n);
    ir_value *w = slot >= 0 && slot < n->n_in ? n->in[slot] : NULL;
    if (!w || !w->init || w->init->dtype != IR_DT_FLOAT)
        return OCT_OK;
    int wi = add_entry(b, w, QKIND_WEIGHT);
    if (wi < 0)
        return OCT_EINTERNAL;
    quant_tensor *e = &b->plan->t[wi];
    e->node = n;
    e->input = slot;
    switch (b->opts->weight_granularity) {
    case QGRAN_CHANNEL:
        e->axis = weight_axis(n, w);
        break;
    case QGRAN_TENSOR:
        e->axis = -1;
        break;
    case QGRAN_BLOCK:
        e->axis = block_axis(n, w);
        if (e->axis < 0)
            e->axis = weight_axis(n, w); /* Conv: per channel */
        break;
    }
    /* the bias: Conv/ConvTranspose input 2, Gemm C when it is a vector */
    ir_value *bias = n->n_in > 2 ? n->in[2] : NULL;
    bool vector_bias = bias && bias->init && bias->init->dtype == IR_DT_FLOAT &&
        (bias->init->rank == 1 || (n->op == IR_OP_GEMM && bias->init->rank == 2 &&
                                   bias->init->dims[0] == 1));
    if (vector_bias && act_idx >= 0 && n->op != IR_OP_MATMUL &&
        !(n->op == IR_OP_GEMM && ir_attr_float(n, "beta", 1.0f) != 1.0f)) {
        int bi = add_entry(b, bias, QKIND_BIAS);
        if (bi < 0)
            return OCT_EINTERNAL;
        e = &b->plan->t[bi];
        e->node = n;
        e->input = 2;
        e->act = act_idx;
        e->weight = wi;
        e->axis = bias->init->rank - 1;
    }
    return OCT_OK;
}

/* ---- placement ----------------------------------------------------------- */

static bool is_passthrough(const builder *b, const ir_node *n);

/* True if some consumer of v reads it as a quantized tensor: a quantized
 * node, or a pass-through op that carries the parameters on. */
static bool read_quantized(const builder *b, const ir_value *v)
{
    for (uint32_t k = 0; k < b->use_count[v->id]; k++) {
        const ir_node *c = b->use_list[b->use_start[v->id] + k];
        if (node_selected(b, c) || is_passthrough(b, c))
            return true;
    }
    return false;
}

/* The tensor that carries a quantized node's output: the output itself,
 * or the Relu/Clip it feeds alone. */
static ir_value *output_carrier(const builder *b, ir_value *y)
{
    ir_node *c = sole_consumer(b, y);
    if (c && (c->op == IR_OP_RELU || c->op == IR_OP_CLIP) && c->in[0] == y &&
        is_float(c->out[0])) {
        for (int k = 1; k < c->n_in; k++) /* Clip bounds must be constants */
            if (c->in[k] && !c->in[k]->init)
                return y;
        return c->out[0];
    }
    return y;
}

/* Applies a --config override of node n to the plan entries from `first`
 * on that belong to it (its weight, bias and output activation). */
static void apply_override(builder *b, const ir_node *n, size_t first, int out_idx)
{
    const char *why = NULL;
    int f = quant_config_match(b->rules, n, &why);
    if (!f)
        return;
    for (size_t i = first; i < b->plan->n; i++) {
        quant_tensor *e = &b->plan->t[i];
        if (e->node == n) {
            e->force = f;
            e->force_reason = why;
        }
    }
    if (out_idx >= 0) {
        b->plan->t[out_idx].force = f;
        b->plan->t[out_idx].force_reason = why;
    }
}

static oct_status place_node(builder *b, ir_node *n)
{
    size_t first_entry = b->plan->n;
    int wslot = weight_slot(n);
    int first_act = -1;
    int *members = ir_alloc_array(b->ctx, (size_t)n->n_in + 1, sizeof *members);
    int n_members = 0;
    if (!members)
        return OCT_EINTERNAL;
    for (int k = 0; k < n->n_in; k++) {
        ir_value *v = n->in[k];
        if (!v || k == wslot || (wslot >= 0 && k == 2 && v->init))
            continue; /* weights and biases below */
        int idx = activation(b, v);
        if (idx < 0 && oct_error_count(b->ctx))
            return OCT_EINTERNAL;
        if (k == 0)
            first_act = idx;
        if (idx >= 0)
            members[n_members++] = idx;
    }
    if (wslot >= 0) {
        oct_status st = add_weight(b, n, first_act);
        if (st)
            return st;
    }
    if (n->n_out < 1 || !is_float(n->out[0]))
        return OCT_OK;
    /* An output no consumer reads quantized stays float: a model output, or
     * one that feeds only float ops (Softmax...).  The kernel writes it
     * from its int32 accumulator without a rounding to 8 bits; rounding
     * logits, for one, costs accuracy for nothing (squeezenet1.1's softmax
     * SQNR 13.5 -> see docs/accuracy.md). */
    ir_value *carrier = output_carrier(b, n->out[0]);
    if (ir_value_escapes(carrier) || !read_quantized(b, carrier)) {
        apply_override(b, n, first_entry, -1);
        return OCT_OK;
    }
    int out_idx = activation(b, carrier);
    apply_override(b, n, first_entry, out_idx);
    if (n->op == IR_OP_CONCAT) {
        for (int i = 0; i < n_members; i++)
            unite(b->plan, members[i], out_idx);
    }
    return OCT_OK;
}

static bool is_passthrough(const builder *b, const ir_node *n)
{
    switch (n->op) {
    case IR_OP_RESHAPE: case IR_OP_FLATTEN: case IR_OP_TRANSPOSE:
    case IR_OP_SQUEEZE: case IR_OP_UNSQUEEZE: case IR_OP_MAXPOOL:
    case IR_OP_SLICE: case IR_OP_PAD:
        return true;
    case IR_OP_RESIZE: {
        const ir_attr *mode = ir_node_attr(n, "mode");
        return !mode || (mode->s.len == 7 && memcmp(mode->s.data, "nearest", 7) == 0);
    }
    default:
        return false;
    }
}

oct_status quant_plan_build(ir_model *m, const quant_opts *opts,
                            quant_plan *plan, oct_ctx *ctx)
{
    memset(plan, 0, sizeof *plan);
    builder b = {.ctx = ctx, .g = m->graph, .opts = opts, .plan = plan};
    oct_status fst = quant_filter_init(&b.filter, opts, ctx);
    if (fst)
        return fst;
    oct_status st = opts->config ? quant_config_load(ctx, opts->config, &b.rules)
                                 : OCT_OK;
    if (!st)
        st = build_consumers(&b);
    plan->n_values = m->graph->n_values;
    plan->of_value = st ? NULL : ir_alloc_array(ctx, plan->n_values + 1,
                                                sizeof *plan->of_value);
    if (!st && !plan->of_value)
        st = OCT_EINTERNAL;
    for (size_t v = 0; !st && v < plan->n_values; v++)
        plan->of_value[v] = -1;
    for (size_t i = 0; !st && i < m->graph->n_nodes; i++) {
        ir_node *n = m->graph->nodes[i];
        if (node_selected(&b, n))
            st = place_node(&b, n);
    }
    /* pass-through ops carry their input's parameters, in graph order so
     * chains propagate */
    for (size_t i = 0; !st && i < m->graph->n_nodes; i++) {
        ir_node *n = m->graph->nodes[i];
        if (!is_passthrough(&b, n) || !n->in[0] || n->n_out < 1)
            continue;
        int in_idx = plan->of_value[n->in[0]->id];
        if (in_idx < 0 || plan->t[in_idx].kind != QKIND_ACT)
            continue;
        int out_idx = activation(&b, n->out[0]);
        unite(plan, in_idx, out_idx);
    }
    quant_filter_free(&b.filter);
    if (!st)
        quant_config_warn_unused(b.rules, ctx);
    quant_config_free(b.rules);
    if (!st && opts->bias_correction)
        st = quant_biascorr_plan(plan, ctx);
    return st ? st : quant_plan_summaries(plan, ctx);
}

oct_status quant_plan_summaries(quant_plan *plan, oct_ctx *ctx)
{
    for (size_t i = 0; i < plan->n; i++) {
        quant_tensor *e = &plan->t[i];
        if (e->kind != QKIND_ACT && e->kind != QKIND_CONST)
            continue;
        e->hist = oct_malloc(ctx, sizeof *e->hist);
        if (!e->hist)
            return OCT_EINTERNAL;
        calib_hist_init(e->hist);
        if (e->kind == QKIND_CONST)
            calib_hist_add(e->hist, (const float *)e->value->init->data,
                           e->value->init->nelems);
    }
    return OCT_OK;
}

/* The pass: a new plan for the model in the session, replacing any state
 * the session held. */
oct_status pass_quant_plan(ir_graph *g, oct_ctx *ctx)
{
    quant_session *s = ctx->quant;
    OCT_ASSERT(s && ctx->model && ctx->model->graph == g);
    quant_session_reset(s, ctx->model, ctx);
    oct_status st = quant_plan_build(ctx->model, &s->opts, &s->plan, ctx);
    if (st == OCT_OK)
        s->have = PASS_A_QPLAN;
    return st;
}

void quant_plan_free(quant_plan *plan, oct_ctx *ctx)
{
    for (size_t i = 0; i < plan->n; i++) {
        if (plan->t[i].hist) {
            oct_free(ctx, plan->t[i].hist, sizeof *plan->t[i].hist);
            plan->t[i].hist = NULL;
        }
        if (plan->t[i].ch_sum) {
            oct_free(ctx, plan->t[i].ch_sum, (size_t)plan->t[i].n_ch * sizeof(double));
            plan->t[i].ch_sum = NULL;
        }
    }
}
