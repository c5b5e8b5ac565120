/*
 * ops.h: the op semantics the reference interpreter (src/ref) and the
 * compiler (src/passes, src/codegen) must agree on, in one place both
 * include: every op's shape and type rule with its dispatch table, the
 * sliding-window geometry, broadcasting and axis helpers, readers of small
 * constant inputs, element access, the narrow float conversions, and the
 * numeric contract (the quantize-and-saturate step and requantization).
 *
 * Each op family in ops.def (the `kernel` column, say `conv`) has a rule
 *   oct_status ops_shape_conv(ops_infer *inf);
 * used twice: statically by the shape-inference pass (some inputs unknown,
 * dims may be -1) and at run time by the interpreter (every input known and
 * constant), which then allocates the outputs with the inferred shapes and
 * runs its kernel.  So the shape logic exists once.
 */
#ifndef OCTET_OPS_H
#define OCTET_OPS_H

#include <math.h>

#include "ir/ir.h"

#define OPS_MAX_RANK 16
/* The largest number of inputs or outputs a node may have. */
#define OPS_MAX_IO 64

/* A static shape: rank -1 if unknown; dims[i] -1 if unknown. */
typedef struct ops_shape {
    ir_dtype dtype;  /* UNDEFINED if unknown */
    int rank;
    int64_t dims[OPS_MAX_RANK];
} ops_shape;

typedef struct ops_infer {
    oct_ctx *ctx;
    const ir_node *node;
    int64_t opset;              /* default-domain opset of the model */
    int n_in;
    const ops_shape *in;        /* in[i].rank == -1 and dtype UNDEFINED for an
                                   omitted optional input (node->in[i] NULL) */
    const ir_tensor *const *in_const; /* value if known (initializer,
                                   constant, or at run time), else NULL */
    int n_out;
    ops_shape *out;             /* to fill */
} ops_infer;

/* ---- shape rules (one per op family, dispatch.c) ------------------------- */

#define OP(e, name, dom, k, mini, maxi, mino, maxo, fl, at) \
    oct_status ops_shape_##k(ops_infer *inf);
#include "ir/ops.def"
#undef OP

typedef oct_status (*ops_shape_fn)(ops_infer *inf);

/* Shape rule of `op`; NULL for IR_OP_UNKNOWN. */
ops_shape_fn ops_shape_rule_of(ir_op op);

/* Reports every node of g whose op Octet does not know: one error per op
 * type (domain included) naming the nodes that use it.  Returns
 * OCT_EUNSUPPORTED if there was any, else OCT_OK. */
oct_status ops_report_unsupported(oct_ctx *ctx, const ir_graph *g);

/* Reports every attribute of a known op that ops.def does not list for it,
 * or whose type differs from the listed one.  OCT_EINPUT if any. */
oct_status ops_check_attrs(oct_ctx *ctx, const ir_graph *g);

/* The structure of an If, Loop or Scan node (shape_control.c): its body
 * (If: then_branch, `other` else_branch), loop-carried / state count, scan
 * input and scan output counts.  ops_control_check fills it after checking
 * that the graph attributes exist and that the counts of the node and of
 * its bodies agree; OCT_EINPUT or OCT_EUNSUPPORTED (non-tensor values) with
 * a diagnostic naming the node otherwise. */
typedef struct ops_control {
    const ir_graph *body, *other;
    int first; /* index of the first state input (1: opset 8 Scan) */
    int n_state, n_scan_in, n_scan_out;
} ops_control;
oct_status ops_control_check(oct_ctx *ctx, const ir_node *n, int64_t opset,
                             ops_control *c);
/* The trip count of a Loop (structure c) when it is known before it runs:
 * M (`m`) is a constant and the body cannot stop early (no initial
 * condition, has_cond false, or a constant true one `cond0`, and the
 * body's condition output is its condition input, directly or through an
 * Identity); else -1.  Shape inference sizes scan outputs by it; the
 * backend unrolls such Loops (passes/unroll_loop.c). */
int64_t ops_loop_static_trip(const ir_tensor *m, const ir_tensor *cond0, bool has_cond,
                             const ops_control *c);

/* ir_type of a value -> ops_shape (rank -1 when the shape is unknown). */
void ops_shape_from_type(const ir_type *t, bool has_type, ops_shape *s);

/* ---- element access and conversions (numeric.c) ------------------------ */

/* Half precision and bfloat16, round to nearest even on the way down. */
float ops_f16_to_f32(uint16_t h);
uint16_t ops_f32_to_f16(float f);
float ops_bf16_to_f32(uint16_t h);
uint16_t ops_f32_to_bf16(float f);
/* Float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, E8M0) and float4 E2M1 as in the
 * ONNX spec: round to nearest even; with saturate, out-of-range finite
 * values clamp to the largest finite value; without it they become Inf or
 * NaN as the format allows.  NaN stays NaN. */
float ops_fp8_to_f32(ir_dtype dt, uint8_t bits);
uint8_t ops_f32_to_fp8(ir_dtype dt, float f, bool saturate);
float ops_fp4_to_f32(uint8_t nibble);
uint8_t ops_f32_to_fp4(float f, bool saturate);

/* Generic element access: element i of t as a double (integers up to 2^53
 * exactly; 64-bit integers beyond that rounded), and the store counterpart
 * (integers: value must already be in range; floats: rounded per format,
 * float8 saturating).  For code where speed does not matter. */
double ops_get(const ir_tensor *t, uint64_t i);
void ops_set(ir_tensor *t, uint64_t i, double v);
/* Exact 64-bit integer access for integer and bool dtypes. */
int64_t ops_get_i64(const ir_tensor *t, uint64_t i);
void ops_set_i64(ir_tensor *t, uint64_t i, int64_t v);

/* ---- the numeric contract ------------------------------------------------ */

/* saturate(round_half_to_even(v) + zp) into [lo, hi]: QuantizeLinear's
 * integer step and every requantization.  The rounding is nearbyint under
 * the default round-to-nearest-even mode (Octet never changes the
 * floating-point environment).  NaN has no integer image: it quantizes to
 * the zero point (documented choice; the spec is silent). */
static inline int64_t ops_quantize_int(double v, int64_t zp, int64_t lo, int64_t hi)
{
    if (isnan(v))
        v = 0.0;
    double r = nearbyint(v);
    if (r > 1e12)
        r = 1e12;
    if (r < -1e12)
        r = -1e12;
    int64_t q = (int64_t)r + zp;
    return q < lo ? lo : q > hi ? hi : q;
}

/* Rounds v to float type dt (nearest even): float16, bfloat16, else
 * float32. */
static inline double ops_round_to(ir_dtype dt, double v)
{
    if (dt == IR_DT_FLOAT16)
        return ops_f16_to_f32(ops_f32_to_f16((float)v));
    if (dt == IR_DT_BFLOAT16)
        return ops_bf16_to_f32(ops_f32_to_bf16((float)v));
    return (float)v;
}

/* Requantization multiplier M = (sx * sw) / sy in the scales' type dt, each
 * operation rounded to dt (so float32 scales give a float32 M). */
static inline double ops_requant_multiplier(ir_dtype dt, double sx, double sw,
                                            double sy)
{
    return ops_round_to(dt, ops_round_to(dt, sx * sw) / sy);
}

/* Requantization of an exact int32 accumulator to an 8-bit output:
 * yq = saturate(round_half_to_even((float)acc * (float)m) + zy), the product
 * a float32 (as ONNX Runtime's MLAS computes it), saturated to [-128, 127]
 * for INT8 and [0, 255] for UINT8. */
static inline int64_t ops_requantize(int32_t acc, double m, int64_t zy,
                                     ir_dtype out)
{
    return ops_quantize_int((float)acc * (float)m, zy, out == IR_DT_INT8 ? -128 : 0,
                            out == IR_DT_INT8 ? 127 : 255);
}

/* Dtype classes: floating point; integer or bool. */
static inline bool ops_dt_is_float(ir_dtype dt)
{
    return ir_dtype_info(dt)->kind == IR_DK_FLOAT;
}

static inline bool ops_dt_is_int(ir_dtype dt)
{
    ir_dkind k = ir_dtype_info(dt)->kind;
    return k == IR_DK_SINT || k == IR_DK_UINT || k == IR_DK_BOOL;
}

/* ---- shapes, broadcasting, axes, constant inputs (util.c) ---------------- */

/* Numpy-style broadcast of a and b into out; false (with a diagnostic on
 * inf->node input `which`) if incompatible.  Unknown dims stay unknown. */
bool ops_broadcast(ops_infer *inf, const ops_shape *a, const ops_shape *b,
                   ops_shape *out);
/* Normalizes a possibly negative axis against rank; false if out of range. */
bool ops_norm_axis(int64_t axis, int rank, int *out);
/* Reads an INT64 (or INT32) 1-D constant input into values[]; returns the
 * count, or -1 if the tensor is not a known integer vector of at most max. */
int ops_const_ints(const ir_tensor *t, int64_t *values, int max);
/* True if input i of node n is a geometry input: its value, not only its
 * shape, fixes n's output shape or the index tables a compiled n is built
 * from (Reshape's shape, Slice's starts/ends/axes/steps, Pad's pads and
 * axes, Resize's roi/scales/sizes, Expand, Tile, Squeeze, Unsqueeze,
 * Split, the Reduce ops' axes, ConstantOfShape, Range, OneHot's depth,
 * CumSum's axis, TopK's k, DFT's dft_length and axis, STFT's
 * frame_step and frame_length).  Compiled code
 * with static shapes needs these as constants; values that only feed the
 * arithmetic (Pad's constant_value, Clip's bounds) are not listed. */
bool ops_input_is_geometry(const ir_node *n, int i);
/* Shape of a tensor as an ops_shape. */
void ops_shape_of(const ir_tensor *t, ops_shape *s);
uint64_t ops_shape_elems(const ops_shape *s); /* all dims known */
/* Element count when the rank and every dim are known and the product fits
 * int64; -1 otherwise (static shapes with unknown dims). */
int64_t ops_shape_known_elems(const ops_shape *s);

/* ---- sliding-window geometry (window.c), shared by Conv, ConvTranspose's
 * checks, pooling, QLinearConv and ConvInteger ---------------------------- */

typedef struct ops_window {
    int n_spatial;                     /* rank - 2 */
    int64_t in[OPS_MAX_RANK];          /* input spatial sizes */
    int64_t kernel[OPS_MAX_RANK];
    int64_t stride[OPS_MAX_RANK];
    int64_t dilation[OPS_MAX_RANK];
    int64_t pad_begin[OPS_MAX_RANK];
    int64_t pad_end[OPS_MAX_RANK];
    int64_t out[OPS_MAX_RANK];         /* output spatial sizes */
} ops_window;

/* Resolves strides, dilations, pads and auto_pad (NOTSET, VALID, SAME_UPPER,
 * SAME_LOWER) of `node` for an input of shape x (N, C, spatial...) and the
 * given spatial kernel sizes, and computes the output sizes (floor, or ceil
 * when ceil_mode is set, as MaxPool/AveragePool define it).  Spatial input
 * dims of -1 give output dims of -1.  Reports bad attributes against the
 * node and returns OCT_EINPUT. */
oct_status ops_window_init(oct_ctx *ctx, const ir_node *node,
                           const ops_shape *x, const int64_t *kernel,
                           bool ceil_mode, ops_window *w);

/* The taps of spatial axis i of w's window at output index o: positions k
 * in [*lo, *hi) land inside the input (o*stride - pad_begin + k*dilation
 * in [0, in)), and *padded of the positions lie inside the padded input
 * (every position is >= -pad_begin by construction; with ceil_mode the
 * last window may run past the end padding).  The interpreter's pooling
 * and the compiled one iterate and count the same taps with it. */
void ops_window_axis_range(const ops_window *w, int i, int64_t o, int64_t *lo,
                           int64_t *hi, int64_t *padded);

/* ---- MatMulNBits (com.microsoft; matmulnbits.c), shared by the shape
 * rule, the interpreter and the compile-time unpacking pass -------------- */

/* The geometry its attributes give: B is uint8 [N, k_blocks, blob], scales
 * N * k_blocks floats, packed uint8 zero points N * zp_row bytes (or N *
 * k_blocks floats). */
typedef struct ops_mnb {
    int64_t K, N, bits, block_size, k_blocks, blob, zp_row;
} ops_mnb;

/* Reads and checks the attributes (K, N >= 1; bits 2, 4 or 8; block_size a
 * power of two >= 16) and, where known, the inputs' types and sizes
 * against them: A [..., K] float, B uint8 with N * k_blocks * blob
 * elements, scales float with N * k_blocks, zero points uint8 packed or
 * float like scales, g_idx int32 [K], bias float [N].  OCT_EINPUT with a
 * diagnostic naming the node and input otherwise. */
oct_status ops_mnb_check(oct_ctx *ctx, const ir_node *n, int n_in,
                         const ops_shape *in, ops_mnb *g);
/* The dequantized weight, w[k * N + n] = (q - zp) * scale in float32 (zp
 * 2^(bits-1) when absent), for B, scales, zero points (may be NULL) and
 * g_idx (may be NULL) whose sizes ops_mnb_check accepted.  A g_idx entry
 * outside [0, k_blocks) is OCT_EINPUT. */
oct_status ops_mnb_dequant(oct_ctx *ctx, const ir_node *n, const ops_mnb *g,
                           const ir_tensor *b, const ir_tensor *scales,
                           const ir_tensor *zp, const ir_tensor *g_idx, float *w);
/* Whether the node computes with int8 activations (src/ref/wo_int8.c): its
 * accuracy_level is 4 (ONNX Runtime's "int8 compute") and the weight is
 * the 4-bit blocked form the compiler's INT4 kernel takes (bits 4, block
 * 16, 32, 64 or 128, uint8 zero points or none, no g_idx).  The
 * interpreter and the compiler ask the same question; any other
 * accuracy_level or form computes in float32. */
bool ops_mnb_act_int8(const ir_node *n, const ops_mnb *g, const ir_tensor *zp, bool g_idx);
/* Whether such a node computes with int8 weights per column and int8
 * activations per row (src/ref/wo_int8.c): pass mnb_int8_rows marked it
 * (ir_node.act_int8) and K <= OPS_MNB_ROWS_MAX_K, which keeps every sum of
 * K products of two codes within int32. */
enum { OPS_MNB_ROWS_MAX_K = 131072 };
bool ops_mnb_int8_rows(const ir_node *n, const ops_mnb *g, const ir_tensor *zp, bool g_idx);
/* Codes [K][N] (0..15), zero points [k_blocks][N] (8 when absent) and
 * scales [k_blocks][N] of a node in that form. */
void ops_mnb_int4_unpack(const ops_mnb *g, const ir_tensor *b, const ir_tensor *scales,
                         const ir_tensor *zp, uint8_t *q, uint8_t *z, float *s);

#endif
