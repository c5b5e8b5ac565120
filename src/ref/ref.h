/*
 * ref.h: the reference interpreter's contract.  Plain, obviously correct C
 * kernels with exact ONNX semantics; the oracle for every other engine and
 * the calibration engine.
 *
 * Each op family in ops.def (the `kernel` column, say `conv`) provides
 *   oct_status shape_conv(ref_infer *inf);  shape and type rule
 *   oct_status ref_conv(ref_call *call);    the kernel
 * The shape rule is used twice: statically by the shape-inference pass (some
 * inputs unknown, dims may be -1) and at run time by the interpreter (every
 * input known and constant), which then allocates the outputs with the
 * inferred shapes and calls the kernel to fill them.  So a kernel never
 * allocates or reshapes its outputs, and the shape logic exists once.
 */
#ifndef OCTET_REF_H
#define OCTET_REF_H

#include <math.h>

#include "ir.h"

#define REF_MAX_RANK 16

/* A static shape: rank -1 if unknown; dims[i] -1 if unknown. */
typedef struct ref_shape {
    ir_dtype dtype;  /* UNDEFINED if unknown */
    int rank;
    int64_t dims[REF_MAX_RANK];
} ref_shape;

typedef struct ref_infer {
    oct_ctx *ctx;
    const ir_node *node;
    int64_t opset;              /* default-domain opset of the model */
    int n_in;
    const ref_shape *in;        /* in[i].rank == -1 and dtype UNDEFINED for an
                                   omitted optional input (node->in[i] NULL) */
    const ir_tensor *const *in_const; /* value if known (initializer,
                                   constant, or at run time), else NULL */
    int n_out;
    ref_shape *out;             /* to fill */
} ref_infer;

typedef struct ref_call {
    oct_ctx *ctx;
    const ir_node *node;
    int64_t opset;
    int n_in;
    const ir_tensor *const *in; /* NULL for an omitted optional input */
    int n_out;
    ir_tensor *const *out;      /* allocated with the inferred dtype and
                                   shape; NULL for an output the node does
                                   not produce */
} ref_call;

/* Declarations of every shape rule and kernel named in ops.def. */
#define OP(e, name, dom, k, mini, maxi, mino, maxo, fl, at) \
    oct_status shape_##k(ref_infer *inf);                    \
    oct_status ref_##k(ref_call *call);
#include "ops.def"
#undef OP

/* ---- element access and conversions (numeric.c) ------------------------ */

/* Half precision and bfloat16, round to nearest even on the way down. */
float ref_f16_to_f32(uint16_t h);
uint16_t ref_f32_to_f16(float f);
float ref_bf16_to_f32(uint16_t h);
uint16_t ref_f32_to_bf16(float f);
/* Float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, E8M0) and float4 E2M1 as in the
 * ONNX spec: round to nearest even; with saturate, out-of-range finite
 * values clamp to the largest finite value; without it they become Inf or
 * NaN as the format allows.  NaN stays NaN. */
float ref_fp8_to_f32(ir_dtype dt, uint8_t bits);
uint8_t ref_f32_to_fp8(ir_dtype dt, float f, bool saturate);
float ref_fp4_to_f32(uint8_t nibble);
uint8_t ref_f32_to_fp4(float f, bool saturate);

/* Generic element access: element i of t as a double (integers up to 2^53
 * exactly; 64-bit integers beyond that rounded), and the store counterpart
 * (integers: value must already be in range; floats: rounded per format,
 * float8 saturating).  For kernels where speed does not matter. */
double ref_get(const ir_tensor *t, uint64_t i);
void ref_set(ir_tensor *t, uint64_t i, double v);
/* Exact 64-bit integer access for integer and bool dtypes. */
int64_t ref_get_i64(const ir_tensor *t, uint64_t i);
void ref_set_i64(ir_tensor *t, uint64_t i, int64_t v);

/* ---- helpers shared by kernels (util.c) -------------------------------- */

/* Numpy-style broadcast of a and b into out; false (with a diagnostic on
 * inf->node input `which`) if incompatible.  Unknown dims stay unknown. */
bool ref_broadcast(ref_infer *inf, const ref_shape *a, const ref_shape *b,
                   ref_shape *out);
/* Normalizes a possibly negative axis against rank; false if out of range. */
bool ref_norm_axis(int64_t axis, int rank, int *out);
/* saturate(round_half_to_even(v) + zp) into [lo, hi]: QuantizeLinear's
 * integer step and every requantization.  The rounding is nearbyint under
 * the default round-to-nearest-even mode (Octet never changes the
 * floating-point environment).  NaN has no integer image: it quantizes to
 * the zero point (documented choice; the spec is silent). */
static inline int64_t ref_quantize_int(double v, int64_t zp, int64_t lo, int64_t hi)
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
/* Reads an INT64 (or INT32) 1-D constant input into values[]; returns the
 * count, or -1 if the tensor is not a known integer vector of at most max. */
int ref_const_ints(const ir_tensor *t, int64_t *values, int max);
/* Shape of a tensor as a ref_shape. */
void ref_shape_of(const ir_tensor *t, ref_shape *s);
uint64_t ref_shape_elems(const ref_shape *s); /* all dims known */
/* Element count when the rank and every dim are known and the product fits
 * int64; -1 otherwise (static shapes with unknown dims). */
int64_t ref_shape_known_elems(const ref_shape *s);

/* ---- sliding-window geometry (conv.c), shared by Conv, ConvTranspose's
 * checks, pooling, QLinearConv and ConvInteger ---------------------------- */

typedef struct ref_window {
    int n_spatial;                     /* rank - 2 */
    int64_t in[REF_MAX_RANK];          /* input spatial sizes */
    int64_t kernel[REF_MAX_RANK];
    int64_t stride[REF_MAX_RANK];
    int64_t dilation[REF_MAX_RANK];
    int64_t pad_begin[REF_MAX_RANK];
    int64_t pad_end[REF_MAX_RANK];
    int64_t out[REF_MAX_RANK];         /* output spatial sizes */
} ref_window;

/* Resolves strides, dilations, pads and auto_pad (NOTSET, VALID, SAME_UPPER,
 * SAME_LOWER) of `node` for an input of shape x (N, C, spatial...) and the
 * given spatial kernel sizes, and computes the output sizes (floor, or ceil
 * when ceil_mode is set, as MaxPool/AveragePool define it).  Spatial input
 * dims of -1 give output dims of -1.  Reports bad attributes against the
 * node and returns OCT_EINPUT. */
oct_status ref_window_init(oct_ctx *ctx, const ir_node *node,
                           const ref_shape *x, const int64_t *kernel,
                           bool ceil_mode, ref_window *w);

/* ---- the interpreter (interp.c) ---------------------------------------- */

/* Per-value hook called after every node output is computed (observers). */
typedef void (*ref_observer_fn)(void *user, const ir_value *v,
                                const ir_tensor *t);

typedef struct ref_run_opts {
    ref_observer_fn observe;  /* may be NULL */
    void *observe_user;
} ref_run_opts;

/* Runs the model's graph on `inputs` (one per non-initializer graph input,
 * in order; dtypes and shapes checked against the declared types) and
 * returns the graph outputs in `outputs` (n_outputs entries, heap tensors:
 * free each with ref_tensor_free). */
oct_status ref_run(oct_ctx *ctx, const ir_model *m, const ir_tensor *const *inputs,
                   size_t n_inputs, ir_tensor **outputs, size_t n_outputs,
                   const ref_run_opts *opts);

/* Runtime tensors: heap-allocated through oct_malloc (not the arena), so
 * long calibration runs do not grow memory. */
ir_tensor *ref_tensor_new(oct_ctx *ctx, ir_dtype dt, int rank,
                          const int64_t *dims);
void ref_tensor_free(oct_ctx *ctx, ir_tensor *t);

#endif
