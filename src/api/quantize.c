/*
 * quantize.c: post-training quantization in the public API: options set by
 * the command line's names, calibration samples pulled through a callback
 * (samples.c adapts them) or read from a file as --calib reads them, the
 * quantization pipeline, and its report.
 *
 * The pipeline (oct_quantize): bind the input shapes (given ones, then the
 * first sample's), run the default passes and the fusions (a
 * BatchNormalization or bias Add folded into its Conv quantizes as one
 * layer: one rounding, an int32 bias), keep an FP32 copy for the report,
 * then plan, calibrate (or load statistics), choose formats, optionally
 * spend an error budget, and rewrite with Q/DQ.  A symbolic leading
 * (batch) dimension of the inputs is restored in the result when nothing
 * folded could depend on it (restore_batch).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/jit_engine.h"
#include "codegen/codegen.h"
#include "frontend/dataset.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

/* What runs the calibration samples ("engine"): the JIT whenever the
 * calibration graph compiles and the interpreter otherwise (the default),
 * always the JIT (a graph that does not compile is an error), or always
 * the reference interpreter. */
typedef enum calib_engine { CALIB_AUTO, CALIB_JIT, CALIB_INTERP } calib_engine;

struct oct_quant_options {
    oct_ctx *ctx;
    quant_opts q;
    const char **shapes;
    size_t n_shapes, cap_shapes;
    const char *save_stats, *load_stats;
    const char *kv_scales_from;  /* a model path, loaded by smooth_and_kv */
    calib_engine engine;
    oct_progress_fn progress;
    void *progress_user;
};

/* ---- options --------------------------------------------------------------- */

oct_status oct_quant_options_new(oct_ctx *ctx, oct_quant_options **out)
{
    if (!ctx || !out)
        return OCT_EUSAGE;
    oct_quant_options *o = ir_alloc(ctx, sizeof *o);
    if (!(*out = o))
        return OCT_EINTERNAL;
    o->ctx = ctx;
    o->q = quant_default_opts();
    return OCT_OK;
}

void oct_quant_options_set_progress(oct_quant_options *o, oct_progress_fn fn,
                                    void *user)
{
    o->progress = fn;
    o->progress_user = user;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end != s && *end == '\0';
}

static bool parse_flag(const char *s, bool *out)
{
    if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "on") || !*s)
        *out = true;
    else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "off"))
        *out = false;
    else
        return false;
    return true;
}

static bool parse_method(const char *s, calib_method *m)
{
    static const char *const names[] = {"minmax", "percentile", "entropy", "mse"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *m = (calib_method)i;
            return true;
        }
    return false;
}

#define BAD(...) oct_error(ctx, OCT_EUSAGE, __VA_ARGS__)

oct_status oct_quant_options_set(oct_quant_options *o, const char *key,
                                 const char *value)
{
    if (!o || !key || !value)
        return OCT_EUSAGE;
    oct_ctx *ctx = o->ctx;
    quant_opts *q = &o->q;
    const char *v = value;
    /* strings the options keep must outlive the caller's buffer */
    const char *kept = ir_strdup(ctx, v);
    if (!kept)
        return OCT_EINTERNAL;
    if (!strcmp(key, "method")) {
        if (!parse_method(v, &q->method))
            return BAD("method must be minmax, percentile, entropy or mse");
    } else if (!strcmp(key, "percentile")) {
        if (!parse_double(v, &q->percentile) || !(q->percentile > 0 && q->percentile <= 100))
            return BAD("percentile takes a number in (0, 100]");
        q->method = CALIB_PERCENTILE;
    } else if (!strcmp(key, "precision")) {
        q->float_only = !strcmp(v, "fp32");
        if (!q->float_only && !quant_opts_set_precision(q, v))
            return BAD("precision must be int8, fp8, auto, budget:DB or fp32 (with "
                       "kv-cache-quant: only the cache)");
    } else if (!strcmp(key, "smooth") || !strcmp(key, "smoothquant")) {
        q->smooth = true;
        q->smooth_alpha = 0.5;
        if (!strcmp(v, "auto"))
            q->smooth_alpha = QUANT_SMOOTH_AUTO;
        else if (*v && (!parse_double(v, &q->smooth_alpha) ||
                        !(q->smooth_alpha >= 0 && q->smooth_alpha <= 1)))
            return BAD("smooth takes an alpha in [0, 1] or auto (0.5 if none is given)");
    } else if (!strcmp(key, "kv-cache") || !strcmp(key, "kv-cache-quant")) {
        q->kv_format = !strcmp(v, "int8") ? IR_QF_INT8 : !strcmp(v, "fp8")
                       ? IR_QF_FP8E4M3 : IR_QF_NONE;
        if (!q->kv_format && strcmp(v, "none"))
            return BAD("kv-cache (kv-cache-quant) must be int8, fp8 or none");
    } else if (!strcmp(key, "activations")) {
        if (!quant_opts_set_activations(q, v))
            return BAD("activations must be u8, s8 or dynamic");
    } else if (!strcmp(key, "dynamic-granularity")) {
        if (!strcmp(v, "row") || !strcmp(v, "tensor"))
            q->dynamic_rows = v[0] == 'r';
        else
            return BAD("dynamic-granularity must be tensor or row");
    } else if (!strcmp(key, "weights")) {
        if (!strcmp(v, "per-channel"))
            q->weight_granularity = QGRAN_CHANNEL;
        else if (!strcmp(v, "per-tensor"))
            q->weight_granularity = QGRAN_TENSOR;
        else if (!strcmp(v, "per-block"))
            q->weight_granularity = QGRAN_BLOCK;
        else
            return BAD("weights must be per-channel, per-tensor or per-block");
    } else if (!strcmp(key, "block-size")) {
        char *end;
        q->block_size = strtoll(v, &end, 10);
        if (*end || end == v || q->block_size < 2)
            return BAD("block-size takes an integer >= 2");
        q->weight_granularity = QGRAN_BLOCK;
    } else if (!strcmp(key, "fp8")) {
        if (!quant_opts_set_fp8(q, v))
            return BAD("fp8 must be e4m3 or e5m2");
    } else if (!strcmp(key, "op-types")) {
        q->op_types = kept;
    } else if (!strcmp(key, "exclude-op-types")) {
        q->exclude_op_types = kept;
    } else if (!strcmp(key, "exclude-nodes")) {
        q->exclude_nodes = kept;
    } else if (!strcmp(key, "config")) {
        q->config = kept;
    } else if (!strcmp(key, "engine")) {
        if (!strcmp(v, "interp") || !strcmp(v, "ref"))
            o->engine = CALIB_INTERP;
        else if (!strcmp(v, "jit"))
            o->engine = CALIB_JIT;
        else if (!strcmp(v, "auto"))
            o->engine = CALIB_AUTO;
        else
            return BAD("engine must be auto, jit or interp (or ref, the same as interp)");
    } else if (!strcmp(key, "input-shape")) {
        return api_push_string(ctx, &o->shapes, &o->n_shapes, &o->cap_shapes, v);
    } else if (!strcmp(key, "save-stats")) {
        o->save_stats = kept;
    } else if (!strcmp(key, "load-stats")) {
        o->load_stats = kept;
    } else if (!strcmp(key, "kv-scales-from")) {
        o->kv_scales_from = kept;
    } else if (!strcmp(key, "ignore-nonfinite")) {
        if (!parse_flag(v, &q->ignore_nonfinite))
            return BAD("ignore-nonfinite takes 1 or 0");
    } else if (!strcmp(key, "weights-only")) {
        if (!parse_flag(v, &q->weight_only))
            return BAD("weights-only takes 1 or 0");
    } else if (!strcmp(key, "weight-format")) {
        q->wo_format = ir_qformat_by_name(v);
        const ir_qformat_traits *f = ir_qformat_info(q->wo_format);
        if (!quant_wo_is_lowbit(f) && (f->is_float || (f->bits != 2 && f->bits != 4 &&
                                                        f->bits != 8)))
            return BAD("weight-format must be int8, uint8, int4, uint4, int2, uint2, "
                       "nvfp4, mxfp4, mxfp8, q8_0, q6_k or q4_k");
    } else if (!strcmp(key, "weight-scheme")) {
        if (!strcmp(v, "sym"))
            q->wo_symmetric = 1;
        else if (!strcmp(v, "asym"))
            q->wo_symmetric = 0;
        else if (!strcmp(v, "sym-full"))
            q->wo_symmetric = 2;
        else
            return BAD("weight-scheme must be sym, asym or sym-full");
    } else if (!strcmp(key, "format")) {
        if (!strcmp(v, "matmulnbits"))
            q->wo_matmulnbits = true;
        else if (!strcmp(v, "qdq"))
            q->wo_matmulnbits = false;
        else
            return BAD("format must be qdq or matmulnbits");
    } else if (!strcmp(key, "wo-compute")) {
        if (!strcmp(v, "int8") || !strcmp(v, "float"))
            q->wo_act_int8 = !strcmp(v, "int8");
        else
            return BAD("wo-compute must be float or int8");
    } else if (!strcmp(key, "algo")) {
        if (!strcmp(v, "rtn"))
            q->wo_algo = QWO_RTN;
        else if (!strcmp(v, "gptq"))
            q->wo_algo = QWO_GPTQ;
        else if (!strcmp(v, "awq"))
            q->wo_algo = QWO_AWQ;
        else if (!strcmp(v, "awq+gptq"))
            q->wo_algo = QWO_AWQ_GPTQ;
        else
            return BAD("algo must be rtn, gptq, awq or awq+gptq");
    } else if (!strcmp(key, "act-order")) {
        if (!parse_flag(v, &q->wo_act_order))
            return BAD("act-order takes 1 or 0");
    } else if (!strcmp(key, "gptq-refit")) {
        if (!parse_flag(v, &q->wo_gptq_refit))
            return BAD("gptq-refit takes 1 or 0");
    } else if (!strcmp(key, "gptq-float-target")) {
        if (!parse_flag(v, &q->wo_gptq_float_target))
            return BAD("gptq-float-target takes 1 or 0");
    } else if (!strcmp(key, "gptq-group-search")) {
        if (!parse_flag(v, &q->wo_gptq_group_search))
            return BAD("gptq-group-search takes 1 or 0");
    } else if (!strcmp(key, "gptq-damp")) {
        char *end;
        q->wo_gptq_damp = strtod(v, &end);
        if (*end || end == v || !(q->wo_gptq_damp > 0 && q->wo_gptq_damp <= 10))
            return BAD("gptq-damp takes a number in (0, 10]");
    } else if (!strcmp(key, "equalize")) {
        if (!parse_flag(v, &q->equalize))
            return BAD("equalize takes 1 or 0");
    } else if (!strcmp(key, "bias-correction")) {
        if (!parse_flag(v, &q->bias_correction))
            return BAD("bias-correction takes 1 or 0");
    } else if (!strcmp(key, "clip-search")) {
        if (!parse_flag(v, &q->wo_clip_search))
            return BAD("clip-search takes 1 or 0");
    } else {
        return BAD("unknown quantization option '%s'", key);
    }
    return OCT_OK;
}

/* ---- the session ----------------------------------------------------------- */

oct_status api_quant_session(oct_ctx *ctx, const oct_quant_options *o,
                             const oct_samples *samples, const ir_model *m,
                             quant_session *s, api_samples *a, quant_samples *data)
{
    quant_session_init(s, o ? &o->q : NULL);
    oct_status st = api_samples_init(ctx, a, samples, m, data);
    if (samples)
        s->data = data;
    if (o) {
        s->load_stats = o->load_stats;
        s->save_stats = o->save_stats;
    }
    return st;
}

/* ---- the pipeline ---------------------------------------------------------------- */

typedef struct prepare_args {
    const oct_quant_options *o;
    const ir_model *original;   /* as loaded, before any pass */
    const quant_samples *data;
} prepare_args;

/* Prepares m for planning: given shapes, the first sample's input types,
 * the default passes, then the fusions. */
static oct_status prepare(oct_ctx *ctx, const prepare_args *pa, ir_model *m)
{
    oct_status st = OCT_OK;
    for (size_t i = 0; !st && i < pa->o->n_shapes; i++)
        st = pass_bind_input_shape(ctx, m->graph, pa->o->shapes[i]);
    if (!st && pa->data && pa->data->n > 0) {
        size_t n_in = 0;
        for (size_t i = 0; i < m->graph->n_inputs; i++)
            n_in += !m->graph->inputs[i]->init;
        ir_tensor **first = oct_malloc(ctx, (n_in + 1) * sizeof *first);
        if (!first)
            return OCT_EINTERNAL;
        memset(first, 0, (n_in + 1) * sizeof *first);
        st = pa->data->get(pa->data->user, 0, first, ctx);
        for (size_t i = 0, k = 0; !st && i < m->graph->n_inputs; i++) {
            ir_value *v = m->graph->inputs[i];
            if (v->init)
                continue;
            st = pass_bind_input_type(ctx, v, first[k]->dtype, first[k]->rank,
                                      first[k]->dims);
            k++;
        }
        for (size_t i = 0; i < n_in; i++)
            ir_heap_tensor_free(ctx, first[i]);
        oct_free(ctx, first, (n_in + 1) * sizeof *first);
    }
    if (!st)
        st = pass_run_default(m, ctx);
    if (!st)
        st = pass_run_list(m, "fuse,shape_infer", ctx);
    size_t n_pairs;
    if (!st && pa->o->q.equalize)
        st = quant_equalize(m, &n_pairs, ctx);
    if (!st && pa->o->q.equalize)
        oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL, "equalize: %zu layer "
                  "groups (Conv -> [Relu/MaxPool] -> Conv) equalized", n_pairs);
    return st;
}

/* Gives the rewritten model m back the symbolic leading dimensions the
 * original declared on its inputs, outputs and value_info (prepare bound
 * them to the first sample's), so the QDQ model takes any batch as the
 * original did.  Only when the original has no Shape or Size node: then
 * nothing the passes folded at the sample's batch depends on it. */
static oct_status restore_batch(oct_ctx *ctx, const ir_model *original, ir_model *m)
{
    const ir_graph *og = original->graph;
    for (size_t k = 0; k < og->n_nodes; k++)
        if (og->nodes[k]->op == IR_OP_SHAPE || og->nodes[k]->op == IR_OP_SIZE)
            return OCT_OK;
    for (size_t i = 0; i < og->n_values; i++) {
        const ir_value *ov = og->values[i];
        if (ov->init || !ov->has_type || ov->type.rank < 1 || !ov->type.dims ||
            ov->type.dims[0].value >= 0 || !(ov->flags & (IR_VAL_INPUT | IR_VAL_OUTPUT |
                                                          IR_VAL_INFO)))
            continue;
        ir_value *v = ir_graph_find(m->graph, ov->name);
        if (!v || v->init || v->type.rank != ov->type.rank || !v->type.dims)
            continue;
        v->type.dims[0].value = -1;
        v->type.dims[0].param = ov->type.dims[0].param
                                    ? ir_strdup(ctx, ov->type.dims[0].param) : NULL;
        if (ov->type.dims[0].param && !v->type.dims[0].param)
            return OCT_EINTERNAL;
    }
    return OCT_OK;
}

static oct_status fresh_model(void *user, oct_ctx *ctx, ir_model **out)
{
    const prepare_args *pa = user;
    oct_status st = api_clone_ir(ctx, pa->original, out);
    return st ? st : prepare(ctx, pa, *out);
}

typedef struct progress_adapter {
    const oct_quant_options *o;
} progress_adapter;

static void progress_cb(void *user, int pass, size_t done, size_t total)
{
    const progress_adapter *p = user;
    if (p->o->progress)
        p->o->progress(p->o->progress_user, pass == 1 ? "calibrating" : pass == 2
                       ? "measuring" : quant_wo_algo_name(p->o->q.wo_algo),
                       done, total);
}

/* Whether the calibration graph m (shapes bound) compiles: a trial
 * lowering (cg_compile at -O0, not JIT-compiled) in a scratch context, so
 * that its diagnostics stay out of ctx.  *compiles false comes with a note
 * in ctx naming the node and op that did not compile; an error other than
 * "cannot lower this" (out of memory, an LLVM failure) is returned. */
static oct_status calib_graph_compiles(oct_ctx *ctx, const ir_model *m, bool *compiles)
{
    *compiles = false;
    oct_ctx *tctx = ir_ctx_new();
    if (!tctx)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    tctx->limits = ctx->limits;
    cg_options co = {.name = "octet_calib", .opt_level = 0, .native_kernels = true};
    cg_module *cm = NULL;
    oct_status st = cg_compile(tctx, m, &co, &cm);
    cg_module_free(cm);
    if (st == OCT_OK) {
        *compiles = true;
    } else if (st == OCT_EUNSUPPORTED) {
        const oct_diag *why = NULL;
        for (size_t i = 0; i < oct_diag_count(tctx); i++)
            if (oct_diag_get(tctx, i)->severity == OCT_SEV_ERROR && !why)
                why = oct_diag_get(tctx, i);
        oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL,
                  "calibration runs on the reference interpreter: node '%s' (%s) does "
                  "not compile: %s", why && why->node ? why->node : "?",
                  why && why->op_type ? why->op_type : "?",
                  why && why->message ? why->message : "no lowering");
        st = OCT_OK;
    } else {
        for (size_t i = 0; i < oct_diag_count(tctx); i++) {
            const oct_diag *d = oct_diag_get(tctx, i);
            oct_diagf(ctx, d->severity, d->status, NULL, 0, -1, d->tensor, "%s",
                      d->message ? d->message : "");
        }
    }
    oct_ctx_free(tctx);
    return st;
}

/* --weights-only: round to nearest needs no samples; GPTQ and AWQ need
 * them (and only they take them). */
static oct_status weight_only(oct_ctx *ctx, ir_model *m, const oct_quant_options *o,
                              const oct_samples *samples)
{
    bool calibrated = o->q.wo_algo != QWO_RTN;
    if ((o->load_stats || o->save_stats) && o->q.wo_algo != QWO_GPTQ)
        return oct_error(ctx, OCT_EUSAGE, "quantize: weights-only saves and loads statistics "
                         "with algo gptq only (its Hessians)");
    if (o->load_stats && samples && samples->count)
        return oct_error(ctx, OCT_EUSAGE, "quantize: weights-only takes samples or "
                         "load-stats, not both");
    if (calibrated && !o->load_stats && (!samples || !samples->count))
        return oct_error(ctx, OCT_EUSAGE, "quantize: algo %s needs calibration samples "
                         "(--calib)", quant_wo_algo_name(o->q.wo_algo));
    if (!calibrated && samples && samples->count)
        return oct_error(ctx, OCT_EUSAGE, "quantize: weights-only with algo rtn "
                         "calibrates nothing (no samples)");
    if (o->q.wo_act_order && o->q.wo_algo != QWO_GPTQ && o->q.wo_algo != QWO_AWQ_GPTQ)
        return oct_error(ctx, OCT_EUSAGE, "quantize: act-order needs algo gptq or awq+gptq");
    if ((o->q.wo_gptq_refit || o->q.wo_gptq_damp > 0 || o->q.wo_gptq_float_target ||
         o->q.wo_gptq_group_search) &&
        o->q.wo_algo != QWO_GPTQ && o->q.wo_algo != QWO_AWQ_GPTQ)
        return oct_error(ctx, OCT_EUSAGE, "quantize: gptq-refit, gptq-damp, "
                         "gptq-float-target and gptq-group-search need algo gptq or "
                         "awq+gptq");
    if (o->q.wo_gptq_float_target && (o->load_stats || o->save_stats))
        return oct_error(ctx, OCT_EUSAGE, "quantize: gptq-float-target takes its statistics "
                         "from two models: no save-stats or load-stats");
    api_samples adapter;
    quant_samples data;
    oct_status st = api_samples_init(ctx, &adapter, samples, m, &data);
    progress_adapter pr = {o};
    quant_opts q = o->q;
    q.wo_load_stats = o->load_stats, q.wo_save_stats = o->save_stats;
    return st ? st : quant_weight_only_data(m, &q, calibrated && !o->load_stats ? &data : NULL,
                                            progress_cb, &pr, ctx);
}

/* --smooth and --kv-cache-quant, around the dynamic or static quantizer
 * (or none, with precision fp32): SmoothQuant's folds on the float model
 * first, the cache's Q/DQ on the quantized one last, both calibrated on
 * the samples. */
static oct_status smooth_and_kv(oct_ctx *ctx, ir_model *m, const oct_quant_options *o,
                                const oct_samples *samples, oct_report **report)
{
    /* the cache alone, its scales another model's: nothing to calibrate */
    bool given = o->kv_scales_from && o->q.kv_format && o->q.float_only && !o->q.smooth;
    if (o->kv_scales_from && !given)
        return oct_error(ctx, OCT_EUSAGE, "quantize: kv-scales-from takes kv-cache and "
                         "precision fp32 (the cache alone)");
    if (!given && (!samples || !samples->count))
        return oct_error(ctx, OCT_EUSAGE, "quantize: smooth and kv-cache-quant need "
                         "calibration samples (--calib)");
    if (o->q.float_only && (o->q.smooth || o->q.dynamic || !o->q.kv_format))
        return oct_error(ctx, OCT_EUSAGE, "quantize: precision fp32 quantizes nothing "
                         "but the KV cache: it takes kv-cache-quant, and no smooth or "
                         "activations=dynamic");
    api_samples adapter;
    quant_samples data = {0};
    oct_model *ref = NULL;
    const char *file = ctx->cur_file;   /* loading names the other model's */
    oct_status st = given ? oct_model_load_file(ctx, o->kv_scales_from, 0, &ref)
                          : api_samples_init(ctx, &adapter, samples, m, &data);
    if (given && !st)
        ctx->cur_file = file;
    if (!st && o->q.smooth)
        st = quant_smooth(m, &o->q, &data, ctx);
    oct_quant_options rest = *o;
    rest.q.smooth = false;
    rest.q.kv_format = IR_QF_NONE;
    rest.q.float_only = false;
    if (!st && !o->q.float_only)
        st = oct_quantize(ctx, &(oct_model){.ir = m}, &rest, o->q.dynamic ? NULL : samples,
                          report);
    quant_opts kv = o->q;
    kv.kv_scales_from = ref ? ref->ir : NULL;
    if (!st && o->q.kv_format)
        st = quant_kv_cache(m, &kv, &data, ctx);
    return st;
}

/* --weights-only with a report: the per-weight SQNR and sizes against a
 * copy of the float model (quant_report_wo.c); a MatMulNBits output is
 * measured on a copy unpacked to DequantizeLinear form. */
static oct_status weight_only_report(oct_ctx *ctx, ir_model *m, const oct_quant_options *o,
                                     const oct_samples *samples, oct_report **report)
{
    ir_model *fp32 = NULL, *measured = m;
    oct_status st = report ? api_clone_ir(ctx, m, &fp32) : OCT_OK;
    if (!st)
        st = weight_only(ctx, m, o, samples);
    if (st || !report)
        return st;
    oct_report *r = ir_alloc(ctx, sizeof *r);
    if (!r)
        return OCT_EINTERNAL;
    if (o->q.wo_matmulnbits) {
        st = api_clone_ir(ctx, m, &measured);
        if (!st)
            st = pass_run_pipeline(measured, "mnb_unpack", NULL, ctx);
    }
    if (!st)
        st = quant_wo_report_measure(fp32, measured, &r->wo, ctx);
    r->has_wo = !st;
    if (!st)
        *report = r;
    return st;
}
static oct_status quantize_static(oct_ctx *ctx, oct_model *model, const oct_quant_options *o,
                                  const oct_samples *samples, oct_report **report);
static oct_status quantize_recover(oct_ctx *ctx, oct_model *model, const oct_quant_options *o,
                                   const oct_samples *samples, oct_report **report);

oct_status oct_quantize(oct_ctx *ctx, oct_model *model, const oct_quant_options *o,
                        const oct_samples *samples, oct_report **report)
{
    if (!ctx || !model || !o)
        return OCT_EUSAGE;
    if (report)
        *report = NULL;
    /* FP16 / BF16: computed in float32, then quantized like any model */
    if (quant_model_is_half(model->ir)) {
        oct_status up = quant_upcast_half(model->ir, ctx);
        if (up)
            return up;
    }
    if (o->q.weight_only && o->q.dynamic)
        return oct_error(ctx, OCT_EUSAGE, "quantize: weights-only and activations=dynamic "
                         "exclude each other");
    if ((o->q.smooth || o->q.kv_format || o->q.float_only) && o->q.weight_only)
        return oct_error(ctx, OCT_EUSAGE, "quantize: weights-only takes no smooth, "
                         "kv-cache-quant or precision fp32");
    if (o->q.smooth || o->q.kv_format || o->q.float_only)
        return smooth_and_kv(ctx, model->ir, o, samples, report);
    if (o->q.weight_only)
        return weight_only_report(ctx, model->ir, o, samples, report);
    if (o->q.dynamic_rows && !o->q.dynamic)
        return oct_error(ctx, OCT_EUSAGE, "quantize: dynamic-granularity needs "
                         "activations=dynamic");
    if (o->q.dynamic)
        return quant_dynamic(model->ir, &o->q, ctx);
    if (o->q.wo_clip_search || o->q.wo_symmetric >= 0 || o->q.wo_format != IR_QF_INT8 ||
        o->q.wo_matmulnbits || o->q.wo_algo != QWO_RTN || o->q.wo_act_order ||
        o->q.wo_act_int8 || o->q.wo_gptq_refit || o->q.wo_gptq_damp > 0 ||
        o->q.wo_gptq_float_target || o->q.wo_gptq_group_search)
        return oct_error(ctx, OCT_EUSAGE, "quantize: weight-format, weight-scheme, "
                         "clip-search, algo, act-order and format=matmulnbits need "
                         "weights-only");
    if (!o->load_stats && (!samples || !samples->count))
        return oct_error(ctx, OCT_EUSAGE, "quantize: no calibration samples (and no "
                         "statistics to load)");
    if ((o->q.equalize || o->q.bias_correction) && samples && samples->count)
        return quantize_recover(ctx, model, o, samples, report);
    return quantize_static(ctx, model, o, samples, report);
}

/* Static quantization of model with o, as one pipeline run. */
static oct_status quantize_static(oct_ctx *ctx, oct_model *model, const oct_quant_options *o,
                                  const oct_samples *samples, oct_report **report)
{
    if (report)
        *report = NULL;
    ir_model *m = model->ir, *original = NULL, *fp32 = NULL;
    oct_status st = api_clone_ir(ctx, m, &original);
    api_samples adapter;
    quant_samples data;
    if (!st)
        st = api_samples_init(ctx, &adapter, samples, m, &data);
    quant_opts q = o->q;
    quant_engine *jit = NULL;
    prepare_args pa = {o, original, &data};
    if (!st)
        st = prepare(ctx, &pa, m);
    /* the JIT runs the samples if the graph compiles (or if asked to) */
    bool use_jit = o->engine == CALIB_JIT;
    if (!st && o->engine == CALIB_AUTO && !o->load_stats)
        st = calib_graph_compiles(ctx, m, &use_jit);
    if (!st && use_jit && !(jit = cg_jit_quant_engine_new()))
        st = oct_error(ctx, OCT_EINTERNAL, "out of memory creating the JIT engine");
    q.engine = jit;
    if (!st)
        st = api_clone_ir(ctx, m, &fp32);
    oct_report *r = ir_alloc(ctx, sizeof *r);
    if (!r && !st)
        st = OCT_EINTERNAL;
    progress_adapter pr = {o};
    /* plan, calibrate (or load statistics), choose (and spend any error
     * budget), rewrite: the quant passes, run by the pass manager on a
     * session holding the options and the samples */
    quant_session session;
    quant_session_init(&session, &q);
    session.data = &data;
    session.progress = progress_cb;
    session.progress_user = &pr;
    session.load_stats = o->load_stats;
    session.save_stats = o->save_stats;
    session.fresh = fresh_model;
    session.fresh_user = &pa;
    session.fp32 = fp32;
    if (!st) {
        struct quant_session *saved = ctx->quant;
        ctx->quant = &session;
        st = pass_run_pipeline(m, "quant_plan,"
                                  "quant_calibrate,"
                                  "quant_choose,"
                                  "quant_rewrite",
                               NULL, ctx);
        ctx->quant = saved;
    }
    if (r) { /* the report keeps the plan (and frees it) */
        r->plan = session.plan;
        r->has_plan = !st;
        memset(&session.plan, 0, sizeof session.plan);
    }
    quant_session_free(&session, ctx);
    if (!st && report && samples) {
        st = quant_report_pair(fp32, m, &data, &r->rep, ctx);
        r->measured = !st;
    }
    if (!st)
        st = restore_batch(ctx, original, m);
    cg_jit_quant_engine_free(jit, ctx);
    if (r) {
        r->opts = q;
        r->opts.engine = NULL;
    }
    if (st || !report) {
        oct_report_free(ctx, r);
        return st;
    }
    *report = r;
    return OCT_OK;
}

/* The lowest output SQNR of a measured report. */
static double report_db(const oct_report *r)
{
    double db = INFINITY;
    for (size_t i = 0; i < r->rep.n_outputs; i++)
        if (r->rep.outputs[i].signal > 0 && r->rep.outputs[i].sqnr < db)
            db = r->rep.outputs[i].sqnr;
    return db;
}

/* One candidate of quantize_recover: a copy of `from` quantized with o,
 * measured on the samples. */
static oct_status recover_trial(oct_ctx *ctx, const ir_model *from,
                                const oct_quant_options *o, const oct_samples *samples,
                                ir_model **out, oct_report **rep, double *db)
{
    ir_model *copy;
    oct_status st = api_clone_ir(ctx, from, &copy);
    oct_model tmp = {.ir = copy, .path = NULL};
    if (!st)
        st = quantize_static(ctx, &tmp, o, samples, rep);
    *out = tmp.ir;
    *db = st ? -INFINITY : report_db(*rep);
    return st;
}

/* --equalize, --bias-correction: each is a recovery that usually helps and
 * sometimes does not (equalization moves range into the activations that
 * per-channel weights did not need; a bias correction measured on few
 * samples can overfit them).  So the model is quantized without them,
 * then with each in turn on top of what was kept, and a method stays only
 * if it raises the lowest output SQNR on the calibration samples by
 * RECOVER_MIN_GAIN_DB; a note says which did.  A smaller gain is not
 * trusted: on squeezenet1.1, equalization gained 0.26 dB on its 34
 * calibration crops and lost 4 dB on the ten held-out photos. */
#define RECOVER_MIN_GAIN_DB 0.3
static oct_status quantize_recover(oct_ctx *ctx, oct_model *model, const oct_quant_options *o,
                                   const oct_samples *samples, oct_report **report)
{
    oct_quant_options v = *o;
    v.q.equalize = v.q.bias_correction = false;
    ir_model *best = NULL, *m;
    oct_report *best_rep = NULL, *rep = NULL;
    double best_db, db;
    oct_status st = recover_trial(ctx, model->ir, &v, samples, &best, &best_rep, &best_db);
    static const char *const names[] = {"equalize", "bias-correction"};
    for (int k = 0; k < 2 && !st; k++) {
        bool want = k == 0 ? o->q.equalize : o->q.bias_correction;
        if (!want)
            continue;
        oct_quant_options w = v;
        if (k == 0)
            w.q.equalize = true;
        else
            w.q.bias_correction = true;
        st = recover_trial(ctx, model->ir, &w, samples, &m, &rep, &db);
        if (st)
            break;
        bool keep = db > best_db + RECOVER_MIN_GAIN_DB;
        oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL,
                  "%s: output SQNR on the calibration data %.2f dB with, %.2f dB "
                  "without: %s", names[k], db, best_db, keep ? "kept" : "not used");
        if (keep) {
            oct_report_free(ctx, best_rep);
            best_rep = rep, best = m, best_db = db, v = w;
        } else {
            oct_report_free(ctx, rep);
        }
        rep = NULL;
    }
    if (st) {
        oct_report_free(ctx, best_rep);
        return st;
    }
    model->ir = best;
    if (report)
        *report = best_rep;
    else
        oct_report_free(ctx, best_rep);
    return OCT_OK;
}

void oct_report_free(oct_ctx *ctx, oct_report *r)
{
    if (!r)
        return;
    /* a zeroed plan frees nothing; a half-built one frees what it holds */
    quant_plan_free(&r->plan, ctx);
    r->has_plan = false;
}
