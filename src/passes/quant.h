/*
 * quant.h: post-training static quantization (`octet quantize`).
 *
 * The flow, one function per step:
 *   quant_plan_build   which nodes are quantized, which activation tensors
 *                      get QuantizeLinear/DequantizeLinear (grouped: tensors
 *                      of one group share scale and zero point), which
 *                      weights and biases are quantized;
 *   quant_calibrate    runs the calibration samples through the reference
 *                      interpreter and feeds each observed tensor's values
 *                      to its streaming summary (calib.h);
 *   quant_choose       picks ranges, the format of every tensor (one of
 *                      the candidate precisions, each a pair of formats
 *                      from the format table, src/ir/qformats.def) and
 *                      quantization parameters;
 *   quant_rewrite      inserts the Q/DQ nodes and quantized initializers,
 *                      raising the opset only as far as the types need.
 *
 * Each step is also a pass of the registry (passes.def: quant_plan,
 * quant_calibrate, quant_choose, quant_rewrite) working on the quantization
 * session of the context (ctx->quant, below): the options, the samples and
 * the state the steps leave (the plan, its statistics, the chosen formats),
 * which quant_text.c prints as "quant" lines of the text IR and reads back.
 */
#ifndef OCTET_QUANT_H
#define OCTET_QUANT_H

#include <math.h>
#include <regex.h>

#include "ir/ir.h"
#include "ir/qformat.h"
#include "passes/calib.h"
#include "passes/passes.h"

/* Raises the default-domain opset of m to target, rewriting the nodes whose
 * signature changed (passes/opset_upgrade.c).  No-op if already there. */
oct_status quant_upgrade_opset(ir_model *m, int64_t target, oct_ctx *ctx);

/* ---- options ------------------------------------------------------------ */

typedef enum quant_precision {
    QPREC_FIXED,   /* every quantized tensor in families[family] */
    QPREC_AUTO,    /* per tensor, the family with the highest SQNR; ties:
                      the first (int8) */
    QPREC_BUDGET,  /* auto, then keep the most sensitive nodes in FP32 until
                      the end-to-end SQNR reaches budget_db */
} quant_precision;

typedef enum quant_granularity {
    QGRAN_CHANNEL, /* one scale per output channel (default) */
    QGRAN_TENSOR,
    QGRAN_BLOCK,   /* blocks of block_size along the reduction axis */
} quant_granularity;

/* A precision the user names (--precision=int8, "precision": "fp8" in
 * --config): the format of activations and the format of weights that go
 * together.  `auto` measures every family and picks per tensor. */
typedef struct quant_family {
    const char *name;   /* "int8", "fp8" */
    ir_qformat act;     /* activations and constant operands */
    ir_qformat weight;  /* weights (symmetric, narrow range if integer) */
} quant_family;

/* The default families, in tie-break order. */
enum { QFAM_INT8, QFAM_FP8, QUANT_MAX_FAMILIES };

typedef struct quant_opts {
    calib_method method;
    double percentile;          /* CALIB_PERCENTILE: e.g. 99.99 */
    quant_precision precision;
    int family;                 /* QPREC_FIXED: index into families */
    double budget_db;
    quant_family families[QUANT_MAX_FAMILIES];
    int n_families;
    quant_granularity weight_granularity;
    int64_t block_size;         /* QGRAN_BLOCK; 0: the default block size
                                   of the first family's weight format */
    const char *op_types;       /* comma list replacing the default set */
    const char *exclude_op_types;
    const char *exclude_nodes;  /* POSIX extended regex on node names */
    bool ignore_nonfinite;      /* skip NaN/Inf in calibration data */
    const char *config;         /* JSON file of per-node overrides, or NULL */
    /* What runs the calibration samples; NULL: the reference interpreter
     * (quant_engine_ctx: the context's engine). */
    const struct quant_engine *engine;
    /* --weights-only (quant_weightonly.c): weights quantized, activations
     * float, no calibration.  wo_format: an integer row of qformats.def
     * (int8, uint8, int4, uint4, int2, uint2); wo_symmetric: -1 the
     * format's own column, 0 asymmetric (a zero point per slice), 1
     * symmetric, 2 symmetric on the full signed range (sym-full: the
     * slice's largest magnitude lands on -2^(bits-1) * s, ONNX Runtime's
     * MatMulNBits quantizer's rule); wo_clip_search: per slice, the MSE-optimal scale over a
     * grid of shrink factors. */
    bool weight_only;
    ir_qformat wo_format;
    int wo_symmetric;
    bool wo_clip_search;
    bool wo_matmulnbits;        /* --format=matmulnbits (quant_wo_mnb.c) */
    bool wo_act_int8;           /* --wo-compute=int8: those MatMulNBits say accuracy_level 4 */
    /* --activations=dynamic (quant_dynamic.c): activations quantized at
     * run time, int8 weights, no calibration */
    bool dynamic;
    bool dynamic_rows;          /* --dynamic-granularity=row */
    /* --algo: how the codes are chosen (quant_gptq.c, quant_awq.c; both
     * need calibration samples); wo_act_order: GPTQ in order of
     * decreasing Hessian diagonal; QWO_AWQ_GPTQ: AWQ's scales folded
     * first, then GPTQ on the scaled weights (their Hessians gathered
     * on the scaled model, so X / s) */
    enum { QWO_RTN, QWO_GPTQ, QWO_AWQ, QWO_AWQ_GPTQ } wo_algo;
    bool wo_act_order;
    /* GPTQ's dampening (--gptq-damp: the share of the Hessian's mean
     * diagonal added to it, 0.01 when 0) and --gptq-refit (each block's
     * scale and zero point chosen again, by least squares on the
     * Hessian, for the codes GPTQ fixed; quant_gptq.c) */
    double wo_gptq_damp;
    bool wo_gptq_refit;
    /* --gptq-float-target: each layer's GPTQ minimises ||X Q - Xf W||^2,
     * Xf its input in the float model, X in the model with the earlier
     * layers quantized (instead of ||X Q - X W||^2) */
    bool wo_gptq_float_target;
    /* --gptq-group-search: GPTQ's dynamic block scales chosen by the
     * loss GPTQ accrues on the block (clip-search factors) */
    bool wo_gptq_group_search;
    /* --smooth=ALPHA (quant_smooth.c): SmoothQuant factors folded into
     * the float model before static or dynamic quantization; alpha
     * QUANT_SMOOTH_AUTO searches it per layer group */
    bool smooth;
    double smooth_alpha;
    /* --kv-cache-quant=int8|fp8 (quant_kv.c): the keys and values a
     * decoder writes into its cache get Q/DQ in this format (IR_QF_NONE:
     * they stay float); --precision=fp32: nothing else is quantized */
    ir_qformat kv_format;
    /* --kv-scales-from=MODEL: the cache's scales are that model's (a
     * prefill graph quantized with --kv-cache), not calibrated */
    const struct ir_model *kv_scales_from;
    bool float_only;
    /* CNN recovery (quant_equalize.c, quant_biascorr.c): cross-layer
     * equalization of Conv -> [Relu] -> Conv pairs before calibration;
     * bias correction of the quantized Conv/Gemm layers after the choice.
     * Each is kept only if it raises the output SQNR on the calibration
     * data (api/quantize.c). */
    bool equalize;
    bool bias_correction;
    /* --save-stats / --load-stats with --algo=gptq: GPTQ's Hessians
     * (quant_stats.c), all from the float model */
    const char *wo_save_stats, *wo_load_stats;
} quant_opts;

/* The --algo value's name, for messages. */
static inline const char *quant_wo_algo_name(int algo)
{
    return algo == QWO_GPTQ ? "gptq" : algo == QWO_AWQ ? "awq" : algo == QWO_AWQ_GPTQ
           ? "awq+gptq" : "rtn";
}

/* Defaults: minmax, per-channel weights, --precision=int8 with the
 * families int8 (uint8 activations, int8 weights) and fp8 (E4M3FN). */
quant_opts quant_default_opts(void);

/* The command-line spellings, mapped to families and formats here only
 * (quant_plan.c).  Each returns false for a text it does not accept.
 *   precision:   int8 | fp8 (a family name) | auto | budget:DB
 *   activations: u8 | s8    (the int8 family's activation format)
 *                | dynamic  (quant_dynamic.c)
 *   fp8:         e4m3 | e5m2 (both formats of the fp8 family) */
bool quant_opts_set_precision(quant_opts *o, const char *text);
bool quant_opts_set_activations(quant_opts *o, const char *text);
bool quant_opts_set_fp8(quant_opts *o, const char *text);
/* Index of the family named `name` in o->families, or -1. */
int quant_family_index(const quant_opts *o, const char *name);
/* The family a tensor takes: a --config force wins, then a fixed
 * --precision, else (auto, budget) the highest sqnr[0..n_families), ties
 * to the first.  *reason says why (arena text, NULL if out of memory);
 * *keep_float is set for a forced FP32, which keeps the first family's
 * parameters for the report. */
int quant_pick_family(oct_ctx *ctx, const quant_opts *opts, int force,
                      const char *force_reason, const double *sqnr,
                      const char **reason, bool *keep_float);

/* ---- the plan ------------------------------------------------------------ */

typedef enum quant_kind {
    QKIND_ACT,     /* an activation, calibrated: Q + DQ after it */
    QKIND_CONST,   /* a constant operand quantized like an activation */
    QKIND_WEIGHT,  /* a weight: quantized initializer + DQ */
    QKIND_BIAS,    /* an int32 bias with scale s_x * s_w */
} quant_kind;

/* A user override of the precision (quant_config.c): none, FP32, or
 * QFORCE_FAMILY + the index of a family of quant_default_opts(). */
typedef enum quant_force {
    QFORCE_NONE = 0,
    QFORCE_FP32,
    QFORCE_FAMILY,
} quant_force;

/* The family index a force names, or -1 (none, FP32). */
static inline int quant_force_family(int force)
{
    return force >= QFORCE_FAMILY ? force - QFORCE_FAMILY : -1;
}

typedef struct quant_tensor {
    ir_value *value;
    quant_kind kind;
    int force;                  /* quant_force, from --config; wins over
                                   --precision */
    const char *force_reason;
    /* QKIND_WEIGHT / QKIND_BIAS: the consuming node and input slot; for a
     * bias, the tensors whose scales multiply into its scale. */
    ir_node *node;
    int input;
    int act, weight;            /* plan indices (bias only), else -1 */
    int axis;                   /* per-channel / blocked axis, -1 per tensor */
    int group;                  /* union-find parent (activations) */
    bool keep_float;            /* decided: stays FP32 */
    /* calibration summary (QKIND_ACT / QKIND_CONST), heap owned by plan */
    calib_hist *hist;
    /* decisions */
    ir_qformat format;          /* a row of qformats.def; NONE: undecided */
    int family;                 /* the family chosen (index into
                                   quant_opts.families) */
    int64_t block_size;         /* > 0: blocked along axis */
    int scale_rank;             /* rank of the scale tensor (0 or 1, or the
                                   weight's rank when blocked) */
    int64_t *scale_dims;
    calib_range range;
    size_t n_scales;
    float *scales;              /* arena */
    int32_t *zero_points;       /* arena */
    const char *reason;         /* why this precision, for the report */
    /* measured on the calibration data, per candidate family */
    double signal, noise[QUANT_MAX_FAMILIES]; /* sums of x^2, errors^2 */
    uint64_t n_values, n_clipped[QUANT_MAX_FAMILIES];
    double sqnr, sqnr_of[QUANT_MAX_FAMILIES], clipped, sqnr_accum;
    /* --bias-correction (quant_biascorr.c).  QKIND_ACT read by a corrected
     * layer: the sums of each channel (axis 1) over the calibration data,
     * heap owned by the plan, n_ch channels of ch_count values each.
     * QKIND_BIAS: what to subtract from the float bias before it is
     * quantized (arena), or NULL. */
    double *ch_sum;
    int64_t n_ch;
    uint64_t ch_count;
    float *bias_delta;
} quant_tensor;

typedef struct quant_plan {
    quant_tensor *t;
    size_t n, cap;
    int32_t *of_value;          /* value id -> plan index of its activation
                                   entry, or -1 */
    size_t n_values;
    uint64_t n_samples;         /* calibration samples seen */
} quant_plan;

/* quant_config.c: per-node overrides from a JSON file:
 *   {"overrides": [{"node": "conv1", "precision": "fp32"},
 *                  {"op_type": "Gemm", "precision": "fp8"},
 *                  {"regex": "^fire9/", "precision": "int8"}]}
 * A rule matches a node by exact name, op type or POSIX extended regex on
 * the name; the last matching rule wins.  It applies to the node's weight,
 * bias and output activation.  Precision is fp32 or a family name of
 * quant_default_opts() (int8, fp8).  Names and op types are those of the
 * input model: a node the fuse pass made also answers to the nodes merged
 * into it (ir_node.origins), so op_type MatMul still finds a MatMul + Add
 * that became Gemm.  After the plan is built, each rule that matched no
 * quantizable node is a warning naming the file, the rule's index and its
 * text. */
typedef struct quant_rules quant_rules;
oct_status quant_config_load(oct_ctx *ctx, const char *path, quant_rules **out);
/* The override for node n (a quant_force: QFORCE_NONE if no rule
 * matches); *why names the rule.  A rule also matches the nodes merged
 * into n (n->origins), and counts its matches. */
int quant_config_match(quant_rules *r, const ir_node *n,
                               const char **why);
/* A warning for every rule that has matched no node so far. */
void quant_config_warn_unused(const quant_rules *r, oct_ctx *ctx);
void quant_config_free(quant_rules *r);

/* Decides what to quantize in m (shape inference must have run).  The plan
 * is allocated in the arena except the histograms (oct_malloc, released by
 * quant_plan_free). */
oct_status quant_plan_build(ir_model *m, const quant_opts *opts,
                            quant_plan *plan, oct_ctx *ctx);
void quant_plan_free(quant_plan *plan, oct_ctx *ctx);
/* Representative of an activation entry's group (tensors sharing one
 * scale). */
int quant_group_of(quant_plan *plan, int index);

/* ---- calibration ------------------------------------------------------- */

/* A calibration data set: n samples, each one tensor per model input (the
 * graph inputs that are not initializers, in order).  get() fills inputs[]
 * with heap tensors (ir_heap_tensor_new) the caller frees; `name` names the
 * data in diagnostics. */
typedef struct quant_samples {
    size_t n;
    oct_status (*get)(void *user, size_t index, ir_tensor **inputs,
                      oct_ctx *ctx);
    void *user;
    const char *name;
} quant_samples;

/* ---- calibration engines -------------------------------------------------- */

/* Receives one observed value of one sample and its tensor (float32 for
 * the activations the plan observes); t is valid only during the call. */
typedef void (*quant_observe_fn)(void *user, const ir_value *v,
                                 const ir_tensor *t);

/* What runs the calibration samples (quant_calibrate, quant_choose).  The
 * context's evaluation engine is the default (quant_engine_ctx);
 * compiled engines (codegen/jit.h) are injected through quant_opts.engine,
 * so octet_lib does not depend on them. */
typedef struct quant_engine {
    const char *name;   /* "ref", "jit": for diagnostics */
    /* Prepares to run m (passes run, input shapes bound to the first
     * sample's) observing observed[0..n_observed): node outputs of m, in
     * node order.  m and observed stay alive and unchanged until free.
     * *state is the engine's, released by free (also after a failure). */
    oct_status (*prepare)(const struct quant_engine *eng, ir_model *m,
                          ir_value *const *observed, size_t n_observed,
                          void **state, oct_ctx *ctx);
    /* Runs one sample (one tensor per non-initializer graph input, in
     * order) and calls observe(user, v, t) once for each observed value v,
     * in the order given to prepare. */
    oct_status (*run)(void *state, const ir_tensor *const *inputs,
                      size_t n_inputs, quant_observe_fn observe,
                      void *observe_user, oct_ctx *ctx);
    void (*free)(void *state, oct_ctx *ctx);
    void *user;         /* the instance's own data (a compile cache), or NULL */
} quant_engine;

/* The default engine (a static table): runs the graph through the
 * context's evaluation engine (ctx->engine, the reference interpreter in
 * contexts made by oct_ctx_new). */
const quant_engine *quant_engine_ctx(void);

/* Progress callback: called after each sample of each calibration pass
 * (pass 1: statistics, pass 2: error measurement).  May be NULL. */
typedef void (*quant_progress_fn)(void *user, int pass, size_t done,
                                  size_t total);

/* Runs every sample through opts->engine (NULL: the reference interpreter)
 * and feeds the planned activations' summaries.  NaN/Inf in a sample is an error naming
 * the data and sample, or with opts->ignore_nonfinite a warning (the sample
 * is skipped).  An empty data set is an error. */
oct_status quant_calibrate(ir_model *m, quant_plan *plan, const quant_opts *opts,
                           const quant_samples *data, quant_progress_fn progress,
                           void *progress_user, oct_ctx *ctx);

/* Chooses range, format and parameters for every planned tensor; it runs
 * the data a second time to measure each candidate family's error exactly
 * (for QPREC_AUTO, and to fill the report). */
oct_status quant_choose(ir_model *m, quant_plan *plan, const quant_opts *opts,
                        const quant_samples *data, quant_progress_fn progress,
                        void *progress_user, oct_ctx *ctx);

/* Rewrites m: Q/DQ pairs on activations, quantized initializers + DQ for
 * weights and biases, opset raised as far as the chosen types need. */
oct_status quant_rewrite(ir_model *m, quant_plan *plan, const quant_opts *opts,
                         oct_ctx *ctx);

/* quant_weights.c, used by quant_choose and quant_rewrite: parameters of a
 * weight entry (format per opts, exact SQNR of every candidate family), of
 * a bias entry (int32 when its input and weight are integer, else
 * keep_float),
 * and the quantized initializer of any constant entry. */
oct_status quant_choose_weight(oct_ctx *ctx, quant_tensor *e,
                               const quant_opts *opts);
oct_status quant_choose_bias(oct_ctx *ctx, quant_plan *plan, quant_tensor *e);
ir_tensor *quant_constant_data(oct_ctx *ctx, const quant_tensor *e);
/* The weight of entry e (formats chosen) as DequantizeLinear(QuantizeLinear)
 * gives it back, in the arena; NULL when out of memory. */
float *quant_weight_roundtrip(oct_ctx *ctx, const quant_tensor *e);

/* quant_biascorr.c: --bias-correction (empirical, Nagel et al. 2019 4.2):
 * the quantized weight W' of a Conv or Gemm shifts its output's mean by
 * (W' - W) E[x]; the bias absorbs it.  _plan marks the input activations
 * whose channel means are needed (after quant_plan_build); _observe adds
 * one calibration tensor of such an entry; _choose computes every bias's
 * correction (after the formats are chosen); _apply subtracts them from
 * the float biases of m (at the start of quant_rewrite). */
oct_status quant_biascorr_plan(quant_plan *plan, oct_ctx *ctx);
void quant_biascorr_observe(quant_tensor *e, const ir_tensor *t);
oct_status quant_biascorr_choose(quant_plan *plan, oct_ctx *ctx);
oct_status quant_biascorr_apply(quant_plan *plan, oct_ctx *ctx);

/* quant_weightonly.c: --weights-only.  Checks opts (a format weights-only
 * can hold, per-channel or per-block with a block of 16, 32, 64 or 128;
 * OCT_EUSAGE otherwise, before anything changes), then replaces the
 * constant weight of every selected MatMul, Gemm, Conv and Gather (the
 * embedding table) by an integer initializer + DequantizeLinear, raising
 * the opset as far as the format needs.  Needs no shapes and no samples. */
oct_status quant_weight_only_check(const quant_opts *opts, oct_ctx *ctx);
oct_status quant_weight_only(ir_model *m, const quant_opts *opts, oct_ctx *ctx);
/* quant_wo_lowbit.c: the weight-only block formats with quantized or
 * non-float32 scales (nvfp4, mxfp4, mxfp8, q8_0, q6_k, q4_k: rows whose
 * SCALE_DTYPE is not FLOAT).  _check refuses options the row does not
 * allow (another block size, scheme, per-tensor, clip search,
 * MatMulNBits) with OCT_EUSAGE; _one replaces nothing but adds, for weight
 * input `input` of node blocked along `axis`, the codes, scales and the
 * DequantizeLinear chain, *out being the float weight it computes; the
 * scales come from the weight, the codes from wq when not NULL (GPTQ's
 * values to round, in the weight's element order).  _grid: every block's
 * scale and zero point as _one fits them (the writer's block order: the
 * weight's with the axis divided into blocks); _round: the float
 * DequantizeLinear gives for w rounded at s and z; _fake: out = the floats
 * the written model would compute with for values w of t's shape (scales
 * fitted on w, then each element rounded: _grid and _round; out may be w),
 * which AWQ's search scores. */
bool quant_wo_is_lowbit(const ir_qformat_traits *f);
oct_status quant_wo_lowbit_check(const quant_opts *opts, oct_ctx *ctx);
oct_status quant_wo_lowbit_one(oct_ctx *ctx, ir_graph *g, const ir_qformat_traits *f,
                               ir_node *node, int input, int axis, const float *wq,
                               ir_value **out);
oct_status quant_wo_lowbit_grid(oct_ctx *ctx, const ir_qformat_traits *f, const ir_tensor *t,
                                int axis, float *s, int32_t *z);
float quant_wo_lowbit_round(const ir_qformat_traits *f, float w, float s, int32_t z);
oct_status quant_wo_lowbit_fake(oct_ctx *ctx, const ir_qformat_traits *f, const ir_tensor *t,
                                int axis, const float *w, float *out);
/* quant_dynamic.c: --activations=dynamic.  Every selected MatMul and Gemm
 * with a constant 2-D float weight becomes DynamicQuantizeLinear +
 * MatMulInteger + scale multiply (+ bias), as ONNX Runtime's
 * quantize_dynamic writes it; weights int8 per channel or per tensor
 * (opts->weight_granularity).  Needs no shapes and no samples. */
oct_status quant_dynamic(ir_model *m, const quant_opts *opts, oct_ctx *ctx);
/* quant_upcast.c: whether m has an FP16 or BF16 input, output or
 * initializer; and m rewritten to compute in float32 with the same
 * interface (Casts after half inputs and before half outputs, half
 * initializers and Constant values float32).  A model with subgraphs is
 * refused (OCT_EUNSUPPORTED). */
bool quant_model_is_half(const ir_model *m);
oct_status quant_upcast_half(ir_model *m, oct_ctx *ctx);
/* The same with calibration samples, which --algo=gptq and awq need (data
 * NULL otherwise); progress (may be NULL) is called with pass 3 after each
 * layer (or group of layers sharing an input) they process. */
oct_status quant_weight_only_data(ir_model *m, const quant_opts *opts,
                                  const quant_samples *data, quant_progress_fn progress,
                                  void *progress_user, oct_ctx *ctx);

/* What quant_weightonly.c shares with the calibrated algorithms. */
typedef struct quant_wo_grid {   /* the grid of one format and scheme */
    const ir_qformat_traits *f;
    bool symmetric;
    bool full;                   /* sym-full: s = amax / 2^(bits-1), zp 0 or -1 */
    double qlo, qhi;             /* the codes q may take */
} quant_wo_grid;
/* Codes chosen elsewhere (GPTQ): codes in the weight's element order,
 * scales and zero points in the order of the DequantizeLinear's scale
 * tensor. */
typedef struct quant_wo_fixed {
    int32_t *codes;
    float *scales;
    int32_t *zps;
} quant_wo_fixed;
typedef struct quant_wo_weight { /* one weight to quantize */
    ir_node *node;
    int input;
    int axis;                    /* channel axis, or the block axis when bs > 0 */
    int64_t bs;                  /* block size along axis, 0: per channel */
    const quant_wo_fixed *fixed; /* NULL: round to nearest */
    const float *lowbit_w;       /* block formats: GPTQ's values to round (NULL: the weight) */
} quant_wo_weight;
/* Scale and zero point of a slice with range [wmin, wmax], shrunk by fac. */
void quant_wo_slice_params(const quant_wo_grid *g, float wmin, float wmax, double fac,
                           float *scale, int32_t *zp);
/* Scale and zero point of the slice w[0], w[stride], ... (n values): its
 * range, or with clip_search the shrink factor of least squared error
 * (the rules of quant_weightonly.c's file comment). */
void quant_wo_slice_fit(const quant_wo_grid *g, bool clip_search, const float *w,
                        int64_t n, int64_t stride, float *scale, int32_t *zp);
/* QuantizeLinear of one element onto the grid. */
static inline int32_t quant_wo_code(const quant_wo_grid *g, float w, float s, int32_t zp)
{
    float q = nearbyintf(w / s) + (float)zp;
    q = q < g->qlo ? (float)g->qlo : q > g->qhi ? (float)g->qhi : q;
    return (int32_t)q;
}
/* quant_gptq.c: GPTQ codes for the MatMul/Gemm weights of sel[0..n)
 * (sel[i].fixed set; other weights are left to round to nearest). */
oct_status quant_gptq(ir_model *m, quant_wo_weight *sel, size_t n, const quant_wo_grid *g,
                      const quant_opts *opts, const quant_samples *data,
                      quant_progress_fn progress, void *progress_user, oct_ctx *ctx);
/* quant_hessian.c, for both: h[i] = X_i^T X_i (K[i] x K[i], double, both
 * triangles, zeroed by the caller) over every sample for the inputs x[i]
 * (last dimension K[i]) of layers of m, and absmean[i] (if absmean is not
 * NULL; zeroed by the caller) the mean |x| per input channel. */
oct_status quant_wo_hessians(ir_model *m, ir_value **x, const int64_t *K, size_t n,
                             const quant_samples *data, double **h, double **absmean,
                             oct_ctx *ctx);
/* quant_hessian.c, for --gptq-float-target: h as quant_wo_hessians (no
 * absmean) on m as it is, and c[i] = X_i^T Xf_i (K[i] x K[i], oct_malloc'd
 * here, zeroed; the caller frees them), Xf_i the same input in the float
 * model, which to_float(user) makes of m and, called again, undoes. */
oct_status quant_hessians_float_target(ir_model *m, ir_value **x, const int64_t *K, size_t n,
                                      const quant_samples *data, double **h, double **c,
                                      void (*to_float)(void *user), void *user,
                                      oct_ctx *ctx);
/* quant_awq.c: activation-aware scales folded into m's float weights and
 * the ops before them (the function m computes is unchanged). */
oct_status quant_awq(ir_model *m, quant_wo_weight *sel, size_t n, const quant_wo_grid *g,
                     const quant_opts *opts, const quant_samples *data,
                     quant_progress_fn progress, void *progress_user, oct_ctx *ctx);
/* quant_awq.c, shared with SmoothQuant (quant_smooth.c): a group is the
 * MatMul layers of sel reading one input x (every reader of x is one of
 * them) whose K channels can be scaled for free: x's producer takes the
 * constant `fold` that 1/s divides (quant_awq.c's file comment lists the
 * folds).  quant_fold_groups fills grs (room for n) and returns their
 * number; quant_fold_apply multiplies row k of every member's weight by
 * s[k] and divides the fold's channel k by it (the model's function is
 * unchanged, within float rounding). */
typedef struct quant_fold_group {
    ir_value *x;
    int64_t K;
    size_t first;               /* sel index of its first layer */
    ir_tensor *fold;            /* the constant s divides */
    bool fold_columns;          /* fold: a [*, K] matrix, else K values */
} quant_fold_group;
size_t quant_fold_groups(const ir_graph *g, const quant_wo_weight *sel, size_t n,
                         quant_fold_group *grs);
void quant_fold_apply(const quant_fold_group *gr, const quant_wo_weight *sel, size_t n,
                      const double *s);
/* quant_smooth.c: runs every sample through the context's engine (the
 * reference interpreter) calling observe(user, v, t) for each value of
 * obs[0..n_obs) (node outputs or graph inputs) as it is computed. */
oct_status quant_observe_samples(ir_model *m, ir_value *const *obs, size_t n_obs,
                                 const quant_samples *data, quant_observe_fn observe,
                                 void *user, oct_ctx *ctx);
/* quant_smooth.c: --smooth=ALPHA.  For every fold group of m's MatMuls
 * with constant [K, N] float weights (the --op-types/--exclude filters
 * apply), s_k = max|x_k|^alpha / max|w_k|^(1 - alpha) from the samples
 * (max over the group's weights' row k), folded by quant_fold_apply. */
#define QUANT_SMOOTH_AUTO (-1.0)
oct_status quant_smooth(ir_model *m, const quant_opts *opts, const quant_samples *data,
                        oct_ctx *ctx);
/* quant_kv.c: --kv-cache=int8|fp8 (alias --kv-cache-quant).  The keys
 * and values a decoder puts in its cache (graph outputs named present*)
 * are stored as codes in opts->kv_format: the output is a QuantizeLinear's
 * (of the tensor, or for a Concat with a past graph input, of the new
 * part, the past input then holding codes too), its readers read a
 * DequantizeLinear of it.  One static scale per head (axis 1 of [batch,
 * heads, seq, head size]; per tensor at another rank) from the largest
 * magnitude seen on the samples.  OCT_EUNSUPPORTED when m has no such
 * output. */
oct_status quant_kv_cache(ir_model *m, const quant_opts *opts, const quant_samples *data,
                          oct_ctx *ctx);
/* The QuantizeLinear that stores graph output `name` of g as codes (on the
 * output itself, or on the new part of its Concat with the past), or NULL
 * if there is none. */
const ir_node *quant_kv_store_node(const ir_graph *g, const char *name);
/* quant_rewrite.c: Q/DQ around activation e->value as quant_rewrite
 * places them (e: value, format, axis, scale_rank, scale_dims, n_scales,
 * scales, zero_points set). */
oct_status quant_qdq_insert(oct_ctx *ctx, ir_graph *g, quant_tensor *e);
/* Its pieces: e's scale and zero-point initializers; a new value named
 * after base (made unique) typed like `like` but of dtype; a
 * QuantizeLinear or DequantizeLinear node x -> y with e's axis; every
 * reader of `from` but `skip` rewired to `to`. */
oct_status quant_qdq_params(oct_ctx *ctx, ir_graph *g, const quant_tensor *e,
                            ir_value **scale, ir_value **zp);
ir_value *quant_qdq_value(oct_ctx *ctx, ir_graph *g, const char *base, const ir_value *like,
                          ir_dtype dtype);
oct_status quant_qdq_node(oct_ctx *ctx, ir_graph *g, const char *op, const quant_tensor *e,
                          ir_value *x, ir_value *scale, ir_value *zp, ir_value *y);
void quant_rewire(ir_graph *g, ir_value *from, ir_value *to, const ir_node *skip);

/* quant_wo_mnb.c: MatMul mm reading DequantizeLinear(codes, scales, zero
 * points; blocks along K, as quant_weight_only writes them) becomes ONNX
 * Runtime's MatMulNBits with the same numbers; the DequantizeLinear node
 * is removed (its initializers are left for quant_drop_dead_inits). */
oct_status quant_wo_to_matmulnbits(ir_model *m, ir_node *mm, bool act_int8, oct_ctx *ctx);

/* Shared by the rewrites: whether `name` is an item of the comma list
 * (quant_plan.c), and dropping the initializers nothing reads any more
 * (quant_rewrite.c; an initializer also listed as a graph input leaves the
 * inputs too). */
bool quant_in_comma_list(const char *list, const char *name);
void quant_drop_dead_inits(ir_graph *g);

/* The node filters every quantization mode applies (quant_plan.c):
 * --op-types (without it, the mode's own default set), --exclude-op-types
 * and the --exclude-nodes pattern, compiled once by quant_filter_init
 * (OCT_EUSAGE on a bad pattern) and released by quant_filter_free. */
typedef struct quant_filter {
    const quant_opts *opts;
    regex_t exclude;
    bool has_exclude;
} quant_filter;
oct_status quant_filter_init(quant_filter *f, const quant_opts *opts, oct_ctx *ctx);
/* Whether n passes; in_default: n's op is in the mode's default set. */
bool quant_filter_pass(const quant_filter *f, const ir_node *n, bool in_default);
void quant_filter_free(quant_filter *f);

/* quant_stats.c: the statistics cache.  The key hashes the graph and the
 * observed tensors' names; loading refuses a file with another key. */
uint64_t quant_stats_key(const ir_model *m, const quant_plan *plan);
oct_status quant_stats_save(const ir_model *m, const quant_plan *plan,
                            const char *path, oct_ctx *ctx);
oct_status quant_stats_load(const ir_model *m, quant_plan *plan,
                            const char *path, oct_ctx *ctx);
/* Merges statistics files of one graph exactly into out_path. */
/* GPTQ's Hessians h[i] (K[i] x K[i], both triangles) of the layer inputs
 * x[0..n): saved, and loaded (refused for another graph or other inputs);
 * quant_stats_merge adds those of several files. */
oct_status quant_hess_save(const ir_model *m, ir_value *const *x, const int64_t *K,
                           double *const *h, size_t n, uint64_t samples, const char *path,
                           oct_ctx *ctx);
oct_status quant_hess_load(const ir_model *m, ir_value *const *x, const int64_t *K,
                           double **h, size_t n, const char *path, oct_ctx *ctx);
oct_status quant_stats_merge(const char *const *inputs, size_t n_inputs,
                             const char *out_path, oct_ctx *ctx);

/* ---- the report (quant_report.c) ----------------------------------------- */

typedef struct quant_report_row {
    const char *tensor;          /* FP32 name */
    const ir_value *x, *d, *ref; /* Q input, DQ output (QDQ model), FP32 */
    ir_dtype qtype;              /* the Q output's element type */
    const char *granularity;     /* "tensor", "channel", "block" */
    size_t n_scales;
    float scale;                 /* the first scale */
    int32_t zero_point;          /* the first zero point */
    double clip_threshold, clip_abs;
    uint64_t x_elems, n_values, clipped_count;
    double signal_alone, noise_alone, signal_accum, noise_accum;
    double sqnr_alone, sqnr_accum, clipped;
} quant_report_row;

typedef struct quant_report_output {
    const char *name;
    double signal, noise, sqnr;
} quant_report_output;

typedef struct quant_report {
    quant_report_row *rows;
    size_t n_rows;
    quant_report_output *outputs;
    size_t n_outputs;
    uint64_t n_samples;
} quant_report;

/* Measures every Q -> DQ pair of qdq against fp32 on the samples (both
 * models take the same inputs). */
oct_status quant_report_pair(const ir_model *fp32, const ir_model *qdq,
                             const quant_samples *data, quant_report *rep,
                             oct_ctx *ctx);

/* quant_report_io.c: the report as a table on `out` (the caller's stream)
 * and as JSON written atomically to path.  plan and opts may be NULL (a
 * pair report); rep may be NULL (no measurement). */
const char *calib_method_name(calib_method m);
void quant_report_table(FILE *out, const quant_report *rep,
                        const quant_plan *plan, const quant_opts *opts);
oct_status quant_report_json(oct_ctx *ctx, const char *path,
                             const quant_report *rep, const quant_plan *plan,
                             const quant_opts *opts);
/* quant_report_wo.c: the report of a weight-only quantized model, one row
 * per quantized weight (its float name, format, element count, stored
 * bytes, bits per weight, SQNR in dB of the dequantized weight against the
 * FP32 one: +inf when exact, NaN when no FP32 counterpart was found) and
 * the totals.  Rows live in the arena. */
typedef struct quant_wo_row {
    const char *tensor, *format;
    int64_t elems;
    uint64_t bytes;
    double bits, sqnr;
} quant_wo_row;
typedef struct quant_wo_report {
    quant_wo_row *rows;
    size_t n;
    uint64_t weight_bytes, weight_elems; /* over the rows */
    uint64_t model_bytes, fp32_bytes;    /* initializers of each model */
} quant_wo_report;
oct_status quant_wo_report_measure(const ir_model *fp32, const ir_model *q,
                                   quant_wo_report *out, oct_ctx *ctx);
void quant_wo_report_table(FILE *out, const quant_wo_report *r);
oct_status quant_wo_report_json(oct_ctx *ctx, const char *path, const quant_wo_report *r);

/* quant_report_svg.c: the report drawn as an SVG document (per-tensor SQNR
 * bars coloured by precision), NUL-terminated in the arena; the caller
 * writes *out_len bytes of *out. */
oct_status quant_report_svg(oct_ctx *ctx, const quant_report *rep,
                            const quant_plan *plan, const quant_opts *opts,
                            char **out, size_t *out_len);

/* quant_budget.c: --precision=budget:DB.  `fresh` loads and prepares
 * another copy of the plan's model (same passes, so same ids) into the
 * context it is given.  Marks groups keep_float until the end-to-end SQNR
 * on `data` reaches opts->budget_db (or every activation is FP32, with a
 * warning); *achieved_db is the SQNR of the final plan. */
typedef oct_status (*quant_fresh_model_fn)(void *user, oct_ctx *ctx,
                                           ir_model **out);
oct_status quant_budget(const ir_model *fp32, quant_plan *plan,
                        const quant_opts *opts, const quant_samples *data,
                        quant_fresh_model_fn fresh, void *user,
                        double *achieved_db, oct_ctx *ctx);

/* ---- the session: the quant passes' options and state ------------------- */

/* What the quant passes share, reached through ctx->quant.  Whoever runs
 * a pipeline sets the options and inputs (oct_quantize, `octet opt` with
 * quantization options); pass_run_pipeline makes a session with the
 * default options for a run when ctx has none.  The state (plan, its
 * statistics, its formats) belongs to `model` and is current for the
 * analyses in `have` (PASS_A_QPLAN, PASS_A_QSTATS, PASS_A_QFORMATS). */
typedef struct quant_session {
    quant_opts opts;
    const quant_samples *data;        /* NULL: no samples */
    quant_progress_fn progress;
    void *progress_user;
    const char *load_stats;           /* quant_calibrate loads these... */
    const char *save_stats;           /* ...and saves its statistics here */
    /* --precision=budget:DB (quant_choose): a fresh copy of the prepared
     * model and the FP32 reference; NULL: copies of the model as it is
     * when quant_choose runs */
    quant_fresh_model_fn fresh;
    void *fresh_user;
    const ir_model *fp32;
    ir_model *model;
    quant_plan plan;                  /* heap parts owned by the session */
    unsigned have;
} quant_session;

/* A session with the options o (NULL: quant_default_opts()), no samples
 * and no state. */
void quant_session_init(quant_session *s, const quant_opts *o);
/* Releases the plan's heap parts (the plan itself lives in the arena). */
void quant_session_free(quant_session *s, oct_ctx *ctx);
/* Forgets the state (freeing it) and makes it m's, with nothing current. */
void quant_session_reset(quant_session *s, ir_model *m, oct_ctx *ctx);

/* Called by the pipeline runner when it starts on m: unless the session
 * already holds state for m, reads m's quant lines (quant_text.c) into it.
 * Adds the analyses the session holds for m to *current. */
oct_status quant_session_begin(oct_ctx *ctx, ir_model *m, unsigned *current);
/* Keeps only the analyses of `current` in the session (the rest went
 * stale) and writes what is left into m's quant lines. */
oct_status quant_session_sync(oct_ctx *ctx, ir_model *m, unsigned current);

/* quant_text.c: the state as text lines (see docs/inspect.md) and back.
 * quant_text_write replaces m's quant lines by s's state (none if s->have
 * is empty); quant_text_read builds s's state from m's lines. */
oct_status quant_text_write(oct_ctx *ctx, quant_session *s, ir_model *m);
oct_status quant_text_read(oct_ctx *ctx, quant_session *s, ir_model *m);

/* quant_equalize.c: cross-layer equalization of m's Conv -> [Relu] ->
 * Conv pairs (FP32 function unchanged up to rounding); *n_pairs: how many
 * pairs were equalized. */
oct_status quant_equalize(ir_model *m, size_t *n_pairs, oct_ctx *ctx);

/* quant_plan.c: summaries for every calibrated entry of a plan (empty for
 * activations, filled from the data for constants). */
oct_status quant_plan_summaries(quant_plan *plan, oct_ctx *ctx);

#endif
