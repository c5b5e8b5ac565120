/*
 * rules.h: what a shape rule (src/ops/shape_*.c) shares with its kernel in
 * src/ref: the resolved geometry of an op (slice plans, pads, resize
 * plans, ...) computed once by the rule's helper and used by both, so the
 * kernel never re-derives it differently.  Internal to the ops layer, the
 * interpreter and the compiler's lowerings that need the same geometry
 * (src/codegen/lower_movement.c, lower_resize.c).
 */
#ifndef OCTET_OPS_RULES_H
#define OCTET_OPS_RULES_H

#include "ops/ops.h"

/* floor(a / b) and ceil(a / b) for b > 0 and any sign of a. */
static inline int64_t ops_div_floor(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}
static inline int64_t ops_div_ceil(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* ---- shape_constant.c (kernels in src/ref/constant.c) ---- */

/* The attribute that carries a Constant's value, or NULL with a
 * diagnostic. */
const ir_attr *ops_constant_attr(oct_ctx *ctx, const ir_node *node,
                                 oct_status *st);

/* The value attribute (a one-element tensor) or NULL for the float 0
 * default; sets *bad after a diagnostic. */
const ir_tensor *ops_fill_value(oct_ctx *ctx, const ir_node *node, bool *bad);

/* ---- shape_conv.c (kernels in src/ref/conv.c) ---- */

/* Spatial kernel sizes of a Conv-like node: the kernel_shape attribute, or
 * W's spatial dims (-1 where unknown).  Reports a kernel_shape that is
 * malformed or disagrees with W.  ns = number of spatial dims. */
oct_status ops_conv_kernel_shape(oct_ctx *ctx, const ir_node *node,
                                 const ops_shape *w, int ns,
                                 int64_t *kernel);

/* The rules Conv and ConvTranspose share (element type, W and B of X's
 * type, group, rank); sets Y's type and rank, *rank -1 while unknown. */
oct_status ops_conv_prologue(ops_infer *inf, int64_t *group, int *rank);

/* ---- shape_convtranspose.c (kernels in src/ref/convtranspose.c) ---- */

typedef struct ops_ct_geom {
    int ns;
    int64_t in[OPS_MAX_RANK], k[OPS_MAX_RANK], s[OPS_MAX_RANK];
    int64_t d[OPS_MAX_RANK], pb[OPS_MAX_RANK], out[OPS_MAX_RANK];
} ops_ct_geom;

/* Resolves the geometry of a ConvTranspose node for input x (rank known)
 * and spatial kernel sizes (> 0).  Output sizes are -1 where the input
 * size is unknown. */
oct_status ops_ct_geometry(oct_ctx *ctx, const ir_node *node,
                           const ops_shape *x, const int64_t *kernel,
                           ops_ct_geom *g);

/* ---- shape_eltwise_binary.c (kernels in src/ref/eltwise_binary.c) ---- */

/* Resolves the shape B takes part in broadcasting with.  Before opset 7
 * (not PRelu), with broadcast=1, B is aligned on A's dims from `axis` and
 * padded with 1s to A's rank; otherwise B is taken as is.  For PRelu before
 * opset 7 a 1-D slope of X's channel count is aligned on axis 1.
 * Reports a misaligned B against input 1 and returns false.  Sets
 * *out_is_a when the output shape must be A's. */
bool ops_binary_operand_b(oct_ctx *ctx, const ir_node *node, int64_t opset,
                          const ops_shape *a, const ops_shape *b,
                          ops_shape *beff, bool *out_is_a);

/* Comparison ops (bool output) and logic ops (bool inputs and output). */
bool ops_binary_is_compare(ir_op op);
bool ops_binary_is_logic(ir_op op);

/* ---- shape_layout.c (kernels in src/ref/layout.c) ---- */

/* DepthToSpace mode CRD (else the default DCR); compares the attribute's
 * bytes directly so a calibration loop does not grow the arena. */
bool ops_crd_mode(const ir_node *node);

/* ---- shape_movement.c (kernels in src/ref/movement.c) ---- */

/* perm attribute, or the reversal of rank dims; false with a diagnostic if
 * it is not a permutation of 0..rank-1.  *n receives its length (rank, or
 * the attribute's length when rank is unknown). */
bool ops_transpose_perm(ops_infer *inf, int rank, int64_t *perm, int *n);

/* Sizes of the n_out parts along an axis of size dim (-1 if unknown): from
 * the split attribute (opset < 13) or input (13+), num_outputs (18+), or
 * equal parts.  Sizes are -1 when they cannot be known yet.  Returns false
 * with a diagnostic on inconsistent sizes. */
bool ops_split_sizes(ops_infer *inf, const ir_tensor *split_in,
                     bool split_unknown, int64_t dim, int64_t *sizes);

typedef struct ops_slice_plan {
    int64_t start[OPS_MAX_RANK], step[OPS_MAX_RANK], count[OPS_MAX_RANK];
    bool sliced[OPS_MAX_RANK];
    bool known;   /* starts/ends/axes/steps all known */
} ops_slice_plan;

/* Reads starts/ends/axes/steps (attributes before opset 10, inputs 1-4
 * after) and resolves them against the dims of x (-1 unknown) per the spec:
 * negative starts/ends count from the end, then clamp to [0, dim] for
 * positive steps and [0, dim-1] / [-1, dim-1] for negative ones. */
bool ops_slice_resolve(ops_infer *inf, const ops_shape *x, ops_slice_plan *p);

/* ---- shape_norm.c (kernels in src/ref/norm.c) ---- */

/* BatchNormalization in training mode (training_mode=1, opset 14+). */
bool ops_bn_training(const ir_node *node, int64_t opset);

/* BatchNormalization's per-channel factors, y = x * a + b, folded as ONNX
 * Runtime's CPU kernel folds them: inv = 1 / sqrt(var + eps), a = inv *
 * scale, b = B - mean * a, every step rounded to the type computed in
 * (shape_norm.c is built without FMA contraction).  The interpreter and the
 * compiled code take their float32 factors from ops_bn_fold_f32, so both
 * give ONNX Runtime's bits; training mode and non-float32 data fold in
 * double. */
void ops_bn_fold_f32(float scale, float bias, float mean, float var, float eps, float *a,
                     float *b);
void ops_bn_fold_f64(double scale, double bias, double mean, double var, double eps,
                     double *a, double *b);

/* LayerNormalization's normalized axis (default -1) against rank. */
bool ops_ln_axis(const ir_node *node, int rank, int *axis);

/* ---- shape_pad.c (kernels in src/ref/pad.c) ---- */

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } ops_pad_mode;

/* Reads mode and the per-dim begin/end pads of the node for an input of
 * rank `rank`.  *known is false (and OCT_OK returned) when the pads or axes
 * input is not a known constant.  Reports bad values against the node. */
oct_status ops_pad_params(oct_ctx *ctx, const ir_node *node, int64_t opset,
                          int rank, const ir_tensor *const *in, int n_in,
                          ops_pad_mode *mode, int64_t *begin, int64_t *end,
                          bool *known);

/* Maps coordinate c of a cropped axis of size n (c outside [0, n)) to the
 * element the mode copies; -1 for the constant mode. */
static inline int64_t ops_pad_source(ops_pad_mode mode, int64_t c, int64_t n)
{
    switch (mode) {
    case PAD_EDGE: return c < 0 ? 0 : n - 1;
    case PAD_WRAP: return ((c % n) + n) % n;
    case PAD_REFLECT: {
        if (n == 1)
            return 0;
        int64_t period = 2 * (n - 1);
        c = ((c % period) + period) % period;
        return c < n ? c : period - c;
    }
    default: return -1;
    }
}

/* ---- shape_pool.c (kernels in src/ref/pool.c) ---- */

/* kernel_shape of a pooling node (required, one positive value per spatial
 * dim). */
oct_status ops_pool_kernel(oct_ctx *ctx, const ir_node *node, int ns,
                           int64_t *kernel);

/* ---- shape_qlinear.c (kernels in src/ref/qlinear.c) ---- */

/* The QGemm forms the interpreter implements (transA=0, alpha=1, a
 * quantized output, one bias value per column); OCT_EUNSUPPORTED naming
 * the node otherwise. */
oct_status ops_qgemm_form(oct_ctx *ctx, const ir_node *node, int n_in,
                          const ir_tensor *bias_or_null, int64_t n_cols);

/* ---- shape_quant.c (kernels in src/ref/quant.c) ---- */

typedef enum { QG_UNKNOWN, QG_TENSOR, QG_AXIS, QG_BLOCK } ops_quant_kind;

typedef struct ops_quant_gran {
    ops_quant_kind kind;
    int axis;              /* normalized; valid for QG_AXIS and QG_BLOCK */
    int64_t block;         /* block size for QG_BLOCK */
    /* x viewed as [outer, dim, inner] around the axis (kernels only) */
    uint64_t outer, dim, inner;
    uint64_t sdim;         /* scale extent along the axis */
} ops_quant_gran;

/* Resolves the quantization granularity of node for x, scale (input
 * scale_idx) and zero point (input zp_idx, zp may be NULL or have rank -1
 * when unknown).  Reports bad axis, block_size and scale/zero-point shapes
 * against the node and its inputs; returns OCT_EINPUT then.  With unknown
 * shapes the kind may stay QG_UNKNOWN.  Fills outer/dim/inner when x's dims
 * are all known. */
oct_status ops_quant_gran_resolve(oct_ctx *ctx, const ir_node *node,
                                  const ops_shape *x, const ops_shape *scale,
                                  const ops_shape *zp, int scale_idx,
                                  int zp_idx, ops_quant_gran *g);

/* Checks that every scale is positive and finite (ONNX requires a positive
 * scale; zero, negative, NaN and Inf are bad input). */
oct_status ops_quant_check_scales(oct_ctx *ctx, const ir_node *node,
                                  int idx, const ir_tensor *scale);

/* Integer range of a quantized integer type; false for other types. */
bool ops_quant_int_range(ir_dtype dt, int64_t *lo, int64_t *hi);

/* Type in which x / scale is computed.  The `precision` attribute (opset
 * 23+) when set; otherwise the type numpy (the ONNX reference
 * implementation, which produced the conformance data) gives the division:
 * int32 x -> double; x and scale of the same float type -> that type (the
 * spec: the scale's type sets the precision); mixed float types -> float32. */
oct_status ops_quantize_div_type(oct_ctx *ctx, const ir_node *node,
                                 ir_dtype x, ir_dtype s, ir_dtype *out);

/* DequantizeLinear's output types: float32, float16, bfloat16. */
bool ops_is_dequant_out_type(ir_dtype dt);

/* ---- shape_reduce.c (kernels in src/ref/reduce.c) ---- */

typedef struct ops_reduce_plan {
    bool reduced[OPS_MAX_RANK];
    bool noop;    /* identity: empty axes with noop_with_empty_axes */
    bool known;   /* axes known */
} ops_reduce_plan;

/* Reads axes against rank (known); false after a diagnostic. */
bool ops_reduce_resolve(ops_infer *inf, int rank, ops_reduce_plan *p);

/* ---- shape_reshape.c (kernels in src/ref/reshape.c) ---- */

/* Dropout runs in inference mode only: Y = X and the optional mask is all
 * true (BOOL from opset 10, the data type before; old is_test attributes
 * are ignored, as every inference engine does).  From opset 12 a constant
 * training_mode input that is true is unsupported unless ratio is 0, where
 * training is the identity too. */
oct_status ops_dropout_check(oct_ctx *ctx, const ir_node *node,
                             int64_t opset, const ir_tensor *const *c,
                             int n_in);

/* Resolves Shape's start/end (opset 15) against rank: negative values count
 * from the end, then both clamp to [0, rank]. */
void ops_shapeof_range(const ir_node *node, int rank, int *lo, int *hi);

/* ---- shape_resize.c (kernels in src/ref/resize.c) ---- */

typedef struct ops_resize_plan {
    int rank;
    bool known;                    /* out dims and scales known */
    int64_t out[OPS_MAX_RANK];     /* -1 if unknown */
    double scale[OPS_MAX_RANK];
    double roi_start[OPS_MAX_RANK], roi_end[OPS_MAX_RANK];
    bool resized[OPS_MAX_RANK];    /* listed in axes */
} ops_resize_plan;

/* STRING attribute `name` equals value (dflt when absent), compared in
 * place without an arena copy. */
bool ops_attr_is(const ir_node *node, const char *name, const char *value,
                 const char *dflt);

/* Resolves Resize's sizes, scales, roi and axes for x (inputs in[]: the
 * known constants) into p; OCT_EINPUT with a diagnostic on bad input. */
oct_status ops_resize_make_plan(oct_ctx *ctx, const ir_node *node, int64_t opset,
                                const ops_shape *x, const ir_tensor *const *in,
                                int n_in, ops_resize_plan *p);

/* ---- resize_table.c (kernels in src/ref/resize.c, src/codegen/lower_resize.c) ---- */

typedef enum { RS_NEAREST, RS_LINEAR, RS_CUBIC } ops_resize_mode;
typedef enum {
    CT_HALF_PIXEL, CT_HALF_PIXEL_SYMMETRIC, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS,
    CT_ASYMMETRIC, CT_TF_HALF_PIXEL_FOR_NN, CT_TF_CROP_AND_RESIZE
} ops_resize_coord;
typedef enum {
    NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL
} ops_resize_nearest;

typedef struct ops_resize_opts {
    ops_resize_mode mode;
    ops_resize_coord coord;
    ops_resize_nearest nearest;
    double cubic_a, extrapolation;
    bool exclude_outside, antialias;
} ops_resize_opts;

/* The widest kernel window (antialias) the tables hold. */
#define OPS_RESIZE_MAX_TAPS 64

/* One resized axis: for each output coordinate y, count[y] (index, weight)
 * pairs at idx/w[y * width ...] with non-zero weight (indices clamped into
 * the axis), and whether it extrapolates (tf_crop_and_resize). */
typedef struct ops_resize_axis {
    int width;
    int *count;
    int64_t *idx;
    double *w;
    bool *extrap;
} ops_resize_axis;

/* Reads mode, coordinate_transformation_mode, nearest_mode, cubic_coeff_a,
 * extrapolation_value, exclude_outside and antialias (opset 10: asymmetric
 * and floor); OCT_EINPUT with a diagnostic on unknown values. */
oct_status ops_resize_read_opts(oct_ctx *ctx, const ir_node *node, int64_t opset,
                                ops_resize_opts *o);
/* Kernel window of the mode at this scale: neighbors base + *start ..
 * base + *start + *n - 1 (*n is the table width; may exceed
 * OPS_RESIZE_MAX_TAPS with antialias, which callers refuse). */
void ops_resize_window(const ops_resize_opts *o, double scale, int *start, int *n);
/* Fills tab (width from ops_resize_window, arrays of `out` rows) for an
 * axis of input size in and output size out. */
void ops_resize_fill_axis(const ops_resize_opts *o, double scale, int64_t in, int64_t out,
                          double roi0, double roi1, const ops_resize_axis *tab);

/* ---- shape_softmax.c (kernels in src/ref/softmax.c) ---- */

/* Resolves the normalized group as outer x len x inner (inner = stride of
 * the group).  rank must be known. */
bool ops_softmax_geometry(const ir_node *node, int64_t opset, int rank,
                          const int64_t *dims, int *axis_out,
                          uint64_t *outer, uint64_t *len, uint64_t *inner);

/* ---- the opset-23 transformer ops (shape_attention.c; kernels in
 * src/ref/attention.c, lowerings in src/codegen/lower_attention.c) ---- */

/* RotaryEmbedding on X of shape [B, H, S, D] (4-D) or [B, S, H*D] (3-D,
 * num_heads = H).  Element (b, s, h, d) sits at ((b*H + h)*S + s)*D + d
 * (4-D) or ((b*S + s)*H + h)*D + d (3-D).  The first rot elements of each
 * head are rotated in pairs (d, d + rot/2), or (2k, 2k + 1) when
 * interleaved; the rest are copied.  The caches are [max_pos, rot/2]
 * indexed by position_ids[b, s] when position_ids is given, else
 * [B, S, rot/2]. */
typedef struct ops_rotary_geom {
    bool rank3, interleaved, has_pos;
    int64_t batch, heads, seq, head, rot, max_pos;
} ops_rotary_geom;

/* Resolves the geometry from the input shapes in[0..n_in) (in[3].rank -1
 * when position_ids is omitted); every dim must be known.  Reports bad
 * shapes and attributes against the node and tensor. */
oct_status ops_rotary_geometry(oct_ctx *ctx, const ir_node *node, const ops_shape *in,
                               int n_in, ops_rotary_geom *g);

/* Attention on Q [B, Hq, Sq, Dk], K [B, Hkv, Skv, Dk], V [B, Hkv, Skv, Dv]
 * (4-D), or [B, S, H*D] each with q_num_heads / kv_num_heads (3-D).  With
 * past_key / past_value [B, Hkv, P, D] the keys and values are the
 * concatenation along the sequence (total = P + Skv = present's length).
 * Query head h reads kv head h / (Hq / Hkv) (grouped-query attention).
 * scores = (Q * s) (K * s)^T with s = sqrt(scale) rounded to Q's type
 * (scale defaults to 1 / sqrt(Dk)), softcap c > 0: c * tanh(scores / c);
 * the bias of (b, h, i, j) is -inf when is_causal and j > i + offset,
 * outside the window [i + offset - left, i + offset + right] (opset 25),
 * at j >= nonpad_kv_seqlen[b] (opset 24), or when the boolean mask is
 * false; else the additive mask's value (0 without a mask).  offset = P,
 * or nonpad_kv_seqlen[b] - Sq with that input, else 0.  A mask whose last
 * dim is shorter than total counts as masked beyond it.  Softmax over j;
 * a row whose bias is -inf everywhere gives zero probabilities. */
typedef struct ops_attn_geom {
    bool rank3, causal, has_mask, has_past, has_nonpad;
    int64_t batch, q_heads, kv_heads, q_seq, kv_seq, past, total, qk_size, v_size;
    int64_t left, right;    /* window sizes, -1: unbounded */
    double sqrt_scale;      /* s above (before rounding to Q's type) */
    double softcap;         /* 0: none */
    int mode;               /* qk_matmul_output_mode 0..3 */
    int mask_rank;          /* attn_mask right-aligned against [B, Hq, Sq, total] */
    int64_t mask_dims[4];
} ops_attn_geom;

/* Resolves the geometry from the input shapes in[0..n_in) (rank -1 for an
 * omitted input); every dim must be known.  Reports bad shapes and
 * attributes against the node and tensor. */
oct_status ops_attention_geometry(oct_ctx *ctx, const ir_node *node, const ops_shape *in,
                                  int n_in, ops_attn_geom *g);

/* RMSNormalization: y = x / sqrt(mean(x^2 over dims[axis:]) + epsilon) *
 * scale, scale broadcast to the normalized dims.  Axis as LayerNorm's. */
bool ops_rms_axis(const ir_node *node, int rank, int *axis);

/* ---- the integer linear ops (shape_qlinear.c) ---- */

/* Dtype classes of the integer linear ops' inputs. */
static inline bool ops_is_8bit_int(ir_dtype dt)
{
    return dt == IR_DT_UINT8 || dt == IR_DT_INT8;
}

static inline bool ops_is_float_scale(ir_dtype dt)
{
    return dt == IR_DT_FLOAT || dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16;
}

static inline bool ops_is_f32(ir_dtype dt) { return dt == IR_DT_FLOAT; }

static inline bool ops_is_i32(ir_dtype dt) { return dt == IR_DT_INT32; }

/* Input i's type checked with ok (an undefined type passes). */
oct_status ops_qlin_check_type(ops_infer *inf, int i, bool (*ok)(ir_dtype), const char *what);
/* The scales of QLinearMatMul / QLinearConv (inputs 1, 4 and 6) are
 * required; an omitted one ("" in the model) is reported. */
oct_status ops_qlin_require_scales(oct_ctx *ctx, const ir_node *node, int n_in);
/* Output type of the requantizing ops: y_zero_point's type, or the first
 * input's when the zero point is omitted (as the ONNX reference does). */
ir_dtype ops_qlin_requant_out_type(const ops_infer *inf);
/* Scales positive and finite, as QuantizeLinear requires. */
oct_status ops_qlin_check_scale_values(oct_ctx *ctx, const ir_node *node, int i,
                                       const ir_tensor *t);

/* ---- index ops (shape_index.c) ------------------------------------------ */

/* A rank-`rank` shape split around `axis`: outer (dims before), len (the
 * axis, or every dim from it on when `flatten`: Hardmax before opset 13)
 * and inner (dims after). */
void ops_axis_split(int rank, const int64_t *dims, int axis, bool flatten, int64_t *outer,
                    int64_t *len, int64_t *inner);
/* CumSum's axis (input 1, a scalar or one-element INT32/INT64 tensor)
 * normalized against rank; false if it is not such a tensor or out of range. */
bool ops_cumsum_axis(const ir_tensor *t, int rank, int *axis);
/* Hardmax's axis (default 1 before opset 13, else -1) normalized; false
 * if out of range.  Before opset 13 the input is flattened to 2-D there. */
bool ops_hardmax_axis(const ir_node *node, int64_t opset, int rank, int *axis);
/* OneHot's depth: the one value of t (any numeric type, truncated toward
 * zero); -1 if t is not a one-element tensor or the depth is not positive. */
int64_t ops_onehot_depth(const ir_tensor *t);
/* ScatterND's and ScatterElements' `reduction`. */
typedef enum ops_reduction {
    OPS_RED_NONE, OPS_RED_ADD, OPS_RED_MUL, OPS_RED_MAX, OPS_RED_MIN
} ops_reduction;
/* The node's reduction (default none); false if the string is not one. */
bool ops_scatter_reduction(const ir_node *node, ops_reduction *red);
/* TopK's k: the attribute before opset 10, else input 1 (t, one INT64);
 * -1 if unknown or negative. */
int64_t ops_topk_k(const ir_node *node, int64_t opset, const ir_tensor *t);
/* GatherND's geometry for data dims (rank r) and indices dims (rank q):
 * batch (product of the first batch_dims dims), per batch the number of
 * index tuples (n) and their length (last), the elements of one gathered
 * slice, and the data elements per batch; false if they do not fit. */
typedef struct ops_gathernd_plan {
    int64_t batch, n, last, slice, data_batch;
} ops_gathernd_plan;
bool ops_gathernd_plan_of(int r, const int64_t *ddims, int q, const int64_t *idims,
                          int64_t batch_dims, ops_gathernd_plan *p);

/* RNN, GRU and LSTM (shape_rnn.c): the attributes resolved once for the
 * shape rule, the interpreter (src/ref/rnn.c) and the compiler
 * (src/codegen/lower_rnn.c).  Gates per direction: RNN 1 (i), GRU 3
 * (z r h), LSTM 4 (i o f c), in the row order of W, R and B; activations
 * per direction: RNN 1 (f), GRU 2 (f g), LSTM 3 (f g h), direction d
 * using act[d].  activation_alpha / activation_beta are consumed in order
 * by the activations that take an alpha (Affine, LeakyRelu,
 * ThresholdedRelu, ScaledTanh, HardSigmoid, Elu) or a beta (Affine,
 * ScaledTanh, HardSigmoid), as ONNX Runtime reads them; a missing one
 * takes the default of the ONNX op of that name. */
typedef enum ops_rnn_act {
    OPS_ACT_RELU, OPS_ACT_TANH, OPS_ACT_SIGMOID, OPS_ACT_AFFINE, OPS_ACT_LEAKYRELU,
    OPS_ACT_THRESHOLDEDRELU, OPS_ACT_SCALEDTANH, OPS_ACT_HARDSIGMOID, OPS_ACT_ELU,
    OPS_ACT_SOFTSIGN, OPS_ACT_SOFTPLUS
} ops_rnn_act;
typedef struct ops_rnn_fn {
    ops_rnn_act act;
    float alpha, beta;
} ops_rnn_fn;
typedef struct ops_rnn_plan {
    int gates, n_act;      /* per direction */
    int dirs;              /* 1 or 2 (bidirectional) */
    bool reverse;          /* direction "reverse" (dirs 1) */
    int layout;            /* 0: X [S,B,I], Y [S,D,B,H]; 1: X [B,S,I], Y [B,S,D,H] */
    int64_t hidden;        /* hidden_size, -1 if absent (then R's last dim) */
    bool has_clip;
    float clip;            /* gate pre-activations clamped to [-clip, clip] */
    bool input_forget;     /* LSTM: f = 1 - i */
    bool linear_before_reset; /* GRU */
    ops_rnn_fn act[2][3];
} ops_rnn_plan;
/* Resolves node's attributes; OCT_EINPUT (diagnostic naming the node) on
 * an unknown direction or activation, a bad count, a non-positive
 * hidden_size or clip, or layout other than 0/1. */
oct_status ops_rnn_plan_of(oct_ctx *ctx, const ir_node *node, ops_rnn_plan *p);
/* f(x) in float32, the formulas of the ONNX RNN spec (the oracle's). */
float ops_rnn_act_apply(const ops_rnn_fn *fn, float x);

/* ---- Einsum (shape_einsum.c) ---- */

#define OPS_EINSUM_MAX_LABELS (52 + OPS_MAX_RANK)
/* An Einsum equation resolved against its inputs' ranks and dims: labels
 * 0..n_out-1 are the output's axes in order, the rest are summed; size[l]
 * is label l's extent (-1 if a dim is unknown); in_label[k][a] the label
 * of input k's axis a. */
typedef struct ops_einsum_plan {
    int n_in, n_labels, n_out;
    int64_t size[OPS_EINSUM_MAX_LABELS];
    int in_rank[OPS_MAX_IO];
    int8_t in_label[OPS_MAX_IO][OPS_MAX_RANK];
} ops_einsum_plan;
/* Parses equation eq (len bytes) for n_in inputs of ranks[k] and dims[k]
 * (dims NULL or entries -1: unknown); false if malformed or the shapes do
 * not fit it. */
bool ops_einsum_plan_of(const char *eq, size_t len, int n_in, const int *ranks,
                        const int64_t *const *dims, ops_einsum_plan *p);
/* Input k's element stride per label (dims: its dims): the sum of the
 * strides of the axes with that label, 0 for a broadcast axis of dim 1. */
void ops_einsum_strides(const ops_einsum_plan *p, int k, const int64_t *dims,
                        int64_t *strides);

/* ---- DFT and STFT (shape_signal.c) ---- */

/* DFT along `axis`: outer x n_in x inner signal positions of comp (1 or
 * 2) parts each, n the transform length, n_out the bins kept. */
typedef struct ops_dft_plan {
    int axis;
    int64_t outer, n_in, inner, comp, n, n_out;
    bool inverse, onesided;
} ops_dft_plan;
/* 1 with *p filled; 0 if a given geometry input (len_t, axis_t: NULL if
 * its value is unknown) is not known yet; -1 with *why if the node is
 * malformed.  dims must be known. */
int ops_dft_plan_of(const ir_node *node, int64_t opset, int rank, const int64_t *dims,
                    const ir_tensor *len_t, bool len_given, const ir_tensor *axis_t,
                    bool axis_given, ops_dft_plan *p, const char **why);
/* STFT of signal [batch, len, comp]: frames of `frame` samples every
 * `step`, `bins` output bins each. */
typedef struct ops_stft_plan {
    int64_t batch, len, comp, step, frame, frames, bins;
    bool onesided;
} ops_stft_plan;
/* As ops_dft_plan_of; window_len -1 when there is no window. */
int ops_stft_plan_of(const ir_node *node, int rank, const int64_t *dims,
                     const ir_tensor *step_t, int64_t window_len, const ir_tensor *frame_t,
                     bool frame_given, ops_stft_plan *p, const char **why);
/* exp(sign * 2 pi i * m / n) for m in [0, n): the twiddle factors both
 * transforms read at (k * t) mod n, so the angle stays exact for long n. */
static inline void ops_twiddle(int64_t m, int64_t n, double *c, double *s)
{
    double a = 6.283185307179586476925286766559 * (double)m / (double)n;
    *c = cos(a);
    *s = sin(a);
}

/* ---- NonMaxSuppression (shape_detect.c) ---- */

/* Runs NMS on the node's inputs in[0..n_in) (boxes, scores, then the
 * optional max_output_boxes_per_class, iou_threshold, score_threshold,
 * NULL if omitted): *count selected triples, written to sel (3 * *count
 * INT64, [batch, class, box]) unless sel is NULL. */
oct_status ops_nms_select(oct_ctx *ctx, const ir_node *node, const ir_tensor *const *in,
                          int n_in, int64_t *sel, int64_t *count);

/* ---- Unique (shape_unique.c) ---- */

/* The number of elements (no axis) or slices along the axis Unique
 * compares in x; -1 if the axis is out of range. */
int64_t ops_unique_slices(const ir_node *node, const ir_tensor *x);
/* Runs Unique on x (n = ops_unique_slices): *n_unique values, the first
 * index of each in first[], their counts in counts[] (n entries each), and
 * for each of the n slices its value's position in inverse[] (3 * n
 * entries: the tail is scratch). */
oct_status ops_unique_select(oct_ctx *ctx, const ir_node *node, const ir_tensor *x,
                             int64_t *first, int64_t *inverse, int64_t *counts,
                             int64_t *n_unique);

#endif
