/*
 * codegen.h: the LLVM backend's internal contract (prefix cg_).  Sections:
 * the public entry points used by the CLI (compile.c, emit.c), the memory
 * plan (memplan.c), the lowering state and IR-building helpers shared by
 * every lowering (build.c), and the lowering families (lower_*.c) reached
 * through a dispatch table indexed by ir_op and built from ops.def
 * (dispatch.c).
 *
 * Generated code: one module per model with
 *   int NAME_run(const void *const *inputs, void *const *outputs,
 *                void *scratch);      returns 0; allocates nothing
 *   int NAME_run_threads(inputs, outputs, scratch, octrt_pool *pool);
 *                                     the same, kernels split over the pool
 *   const unsigned long long NAME_scratch_size;
 *   const char NAME_signature[];      JSON: inputs, outputs, scratch
 * and, compiled with a symbolic batch (opts.batch, batch.h), the batch-1
 * body looped over the batch given at run time:
 *   int NAME_run_dims(const int64_t *dims, inputs, outputs, scratch);
 *   int NAME_run_dims_threads(dims, inputs, outputs, scratch, pool);
 *   unsigned long long NAME_scratch_size_for(const int64_t *dims);
 * Every node becomes an internal function NAME_nK(inputs, outputs,
 * scratch, pool) called in topological order from NAME_run_threads.
 * Intermediate tensors live in `scratch` (64-byte aligned by the caller)
 * at offsets chosen by the memory plan, followed by one workspace shared by
 * the kernels (im2col and widened operands); weights are read-only
 * globals, in the IR's raw layout for the loop lowerings and packed at
 * compile time for the kernel library (kernels.c, kernels/octk.h), which
 * the heavy ops (convolutions, GEMMs, integer QLinear ops) call.
 *
 * Float numerics: plain loops the optimizer may vectorize; accumulations
 * carry the reassoc+contract fast-math flags (FMA and reordered sums), so
 * float results match the reference interpreter within a tolerance (tests
 * use 1e-5 relative to the output's magnitude), not bit for bit.
 * Quantize/DequantizeLinear follow the numeric contract exactly.
 */
#ifndef OCTET_CODEGEN_H
#define OCTET_CODEGEN_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "ir/ir.h"
#include "ops/ops.h"

/* ---- options and results (compile.c, emit.c) ---------------------------- */

enum {
    CG_EMIT_OBJ = 1u << 0,
    CG_EMIT_SO = 1u << 1,
    CG_EMIT_ASM = 1u << 2,
    CG_EMIT_LLVM = 1u << 3,
    CG_EMIT_HEADER = 1u << 4,
};

typedef struct cg_options {
    const char *name;      /* C identifier prefix of the generated symbols */
    const char *triple;    /* NULL: host */
    const char *cpu;       /* NULL: host CPU (or "generic" with a triple) */
    const char *features;  /* NULL: host features (or "" with a triple) */
    int opt_level;         /* 0..3 */
    /* Weights (initializers, packed kernel weights, requantization
     * tables) in a side file BASE.weights instead of read-only data: the
     * module then reads them through the pointer NAME_weights, which the
     * caller sets to the file's bytes (64-byte aligned) before running. */
    bool weights_file;
    /* For the JIT in this process: generated code calls octet's own
     * natively compiled kernels (their addresses given to the JIT) instead
     * of linking the bitcode, so only the model is compiled. */
    bool native_kernels;
    /* NULL: the module gets a context of its own, freed with it.  Else the
     * module is built in this context, which the caller owns and must keep
     * alive (the JIT passes its thread-safe context). */
    LLVMContextRef context;
    /* NULL, or the symbolic leading dimension the model is compiled for
     * (batch.h): m is then the model at batch 1 and the module also gets
     * NAME_run_dims, NAME_run_dims_threads and NAME_scratch_size_for. */
    const struct cg_batch *batch;
    /* NULL, or the symbolic dims besides the batch (symdims.h): m is the
     * model prepared at their probe set A, and each tensor's dims that
     * syms->sym marks are read at run time from NAME_run_dims's dims. */
    const struct cg_syms *syms;
    /* The in-place key/value cache of a decode graph (kvcache.c): each
     * present.{l}.key/value output is the cache the caller keeps between
     * steps, the Concat producing it writes only the new token's slots and
     * the past_key_values inputs are not read.  A graph without that shape
     * is refused with a diagnostic saying why. */
    bool kv_inplace;
    /* Every activation NCHW (`--layout=nchw`): no layout plan. */
    bool layout_nchw;
    /* "NAME=N": a tighter bound on the data-dependent length of the
     * NonZero, NonMaxSuppression or Unique node NAME (or the node writing
     * tensor NAME) than the compiler derives (lower_dynlen.c). */
    const char *const *bounds;
    size_t n_bounds;
} cg_options;

/* One cache of a model compiled with kv_inplace: past input slot `input`
 * [1,heads,past,head_dim] is read through output slot `output`
 * [1,heads,total,head_dim], whose slots [past, total) the step writes. */
typedef struct cg_kv_pair {
    int input, output;
    long layer;
    int kind;                  /* 0 key, 1 value */
    int64_t heads, past, total, head_dim;
    unsigned elem_bytes;
} cg_kv_pair;

typedef struct cg_module cg_module;

/* Lowers m (already verified, passes run, every shape static) into an LLVM
 * module, verifies it and optimizes it.  *out is freed with
 * cg_module_free.  OCT_EUNSUPPORTED names the first node that has no
 * lowering or uses a form the lowering does not handle. */
oct_status cg_compile(oct_ctx *ctx, const ir_model *m, const cg_options *opts,
                      cg_module **out);
void cg_module_free(cg_module *cm);
/* Hands the optimized LLVM module to the caller (who then owns it; it lives
 * in opts->context) and leaves cm without one; NULL if already taken. */
LLVMModuleRef cg_module_take(cg_module *cm);
/* The caches of a model compiled with kv_inplace (n: how many; none
 * otherwise), owned by cm. */
const cg_kv_pair *cg_module_kv(const cg_module *cm, size_t *n);
/* The compiled model's symbol prefix and signature JSON (see emit.c). */
const char *cg_module_name(const cg_module *cm);
const char *cg_module_signature(const cg_module *cm);
/* Writes the artifacts selected by `emit` to BASE.o, BASE.so, BASE.s,
 * BASE.ll and BASE.h (each atomically).  The shared library is linked with
 * the system C compiler (`cc -shared`). */
oct_status cg_emit(oct_ctx *ctx, cg_module *cm, const char *base, unsigned emit);
/* Writes the compile report (one line per node lowered onto the kernel
 * library: node, op, kernel, instruction path) to path ("-": stdout). */
oct_status cg_write_report(oct_ctx *ctx, const cg_module *cm, const char *path);
/* Output k's compiled shape into dims (a data-dependent length at its
 * bound, lower_dynlen.c); returns the rank. */
int cg_module_output_shape(const cg_module *cm, size_t k, int64_t *dims);
/* Bytes of scratch the generated function needs. */
uint64_t cg_scratch_size(const cg_module *cm);

/* ---- memory plan (memplan.c) -------------------------------------------- */

typedef enum cg_place {
    CG_PLACE_NONE = 0,
    CG_PLACE_INPUT,     /* inputs[index] */
    CG_PLACE_OUTPUT,    /* outputs[index] */
    CG_PLACE_SCRATCH,   /* scratch + offset */
    CG_PLACE_CONST,     /* read-only global */
} cg_place;

/* One tensor of the graph, indexed by ir_value id. */
typedef struct cg_tensor {
    const ir_value *value;
    ir_dtype dtype;
    int rank;
    int64_t dims[OPS_MAX_RANK];
    uint64_t nelems, nbytes;
    cg_place place;
    int index;            /* INPUT / OUTPUT slot */
    uint64_t offset;      /* SCRATCH */
    LLVMValueRef global;  /* CONST, made on first use */
    bool stored;          /* CONST in the weights file, at `offset` */
    int first, last;      /* node indices of the lifetime (plan only) */
    /* SCRATCH inside the output of the Concat that reads it, at its slice
     * (concat_out: that output's value id); the Concat copies nothing */
    bool in_concat;
    bool has_parts;       /* a Concat output holding such inputs */
    bool fused;           /* only read inside its fused run: never stored */
    /* output of a DequantizeLinear of FP8 weights that the float kernel of
     * its only reader widens itself (cg_plan_fp8_weights): the
     * DequantizeLinear emits no code and the tensor gets no memory */
    bool absorbed;
    /* a graph output that is an in-place key/value cache (kvcache.c): its
     * Concat leaves input 0's slices, the past already there, untouched */
    bool kv_cache;
    /* symbolic dims (cg_options.syms): sym[d] the symbol of dim d (-1: a
     * number; dims[d] then holds probe A); dyn if any is.  A dyn tensor in
     * scratch lives in the run-time region at the offset the entry stores
     * in the scratch header's slot dyn_slot (compile.c). */
    int8_t sym[OPS_MAX_RANK];
    bool dyn;
    int dyn_slot;
    /* a data-dependent length (lower_dynlen.c): dims[len_axis] is the
     * bound the buffer holds; the length the run found is i64 slot
     * len_slot of the lengths in scratch (NAME_actual_dims reads it) */
    bool bounded;
    int8_t len_axis;
    int len_slot;
    size_t concat_out;
    uint64_t concat_off;
    /* stored as N, H, W, C (dims stay N, C, H, W): the layout plan
     * (cg_plan_layouts) */
    bool nhwc;
} cg_tensor;

#define CG_ALIGN 64

/* Fills place/index/offset of every tensor reached by the graph and returns
 * the peak scratch size: intermediates ordered by size (largest first) are
 * placed greedily at the lowest 64-byte-aligned offset that does not
 * overlap any already placed tensor whose lifetime (producing node to last
 * consuming node, inclusive) intersects theirs; a node of a fused run
 * counts as its whole span (span[k], cg_plan_fusion).  Concat inputs only
 * the Concat reads live inside its output (in_concat).  A tensor with a
 * symbolic dim (dyn) is marked SCRATCH but given no offset: compile.c
 * places it in the run-time region. */
oct_status cg_plan_memory(oct_ctx *ctx, const ir_graph *g, const int (*span)[2],
                          cg_tensor *tens, uint64_t *scratch_size);

/* The layout plan (layout.c): marks the 8-bit 4-D activations stored NHWC
 * (cg_tensor.nhwc), those that only NHWC-capable nodes touch: QLinearConvs
 * that cg_qlinearconv_takes_nhwc, 8-bit MaxPools and Concats.  Before
 * cg_plan_memory; nothing unless vnni (the target's integer kernels have
 * AVX-512 VNNI, where NHWC measured faster), nothing with nchw_only. */
oct_status cg_plan_layouts(oct_ctx *ctx, const ir_graph *g, bool vnni, bool nchw_only,
                           const int (*span)[2], cg_tensor *tens);
/* Input channels from which a QLinearConv computes faster as a GEMM over
 * NHWC pixels than as the NCHW convolution kernel (docs/compile.md). */
enum { CG_NHWC_MIN_C = 16 };
/* Whether QLinearConv n can run on NHWC images (lower_qlinear.c): the
 * kernels' constant form, 2-D, one group, CG_NHWC_MIN_C input channels. */
bool cg_qlinearconv_takes_nhwc(const ir_node *n, const cg_tensor *tens);
/* Whether MaxPool n can run on NHWC images (lower_pool.c): 8-bit, 2-D,
 * no Indices output. */
bool cg_maxpool_takes_nhwc(const ir_node *n, const cg_tensor *tens);

/* ---- lowering state and helpers (build.c) ------------------------------- */

/* One line of the compile report: which kernel and instruction path a
 * node took. */
typedef struct cg_report_line {
    const char *node, *op, *kernel, *path;
} cg_report_line;

typedef struct cg_fn {
    oct_ctx *ctx;
    struct cg_module *cm;
    const ir_model *model;
    int64_t opset;
    LLVMContextRef llc;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMValueRef fn;               /* the node function being built */
    LLVMValueRef arg_in, arg_out, arg_scratch, arg_pool;
    LLVMTypeRef i1, i8, i16, i32, i64, f32, f64, ptr, vd;
    cg_tensor *tens;               /* by value id */
    const char *prefix;            /* symbol prefix (model name) */
    int cm_nsyms;                  /* symbolic dims besides the batch */
} cg_fn;

/* Tensor of input/output i of node n (NULL for an omitted input). */
cg_tensor *cg_in(cg_fn *f, const ir_node *n, int i);
cg_tensor *cg_out(cg_fn *f, const ir_node *n, int i);
/* Base address of tensor t inside the current node function. */
LLVMValueRef cg_ptr(cg_fn *f, const cg_tensor *t);
/* LLVM element type of a dtype (NULL if the backend has none). */
LLVMTypeRef cg_elem_type(cg_fn *f, ir_dtype dt);
LLVMValueRef cg_i64c(cg_fn *f, int64_t v);
LLVMValueRef cg_f32c(cg_fn *f, double v);
/* &base[idx] and loads/stores of element idx (i64) of type ty. */
LLVMValueRef cg_gep(cg_fn *f, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef cg_load(cg_fn *f, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx);
void cg_store(cg_fn *f, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx,
              LLVMValueRef v);
/* Element idx of tensor t converted to f32 (float or integer dtypes). */
LLVMValueRef cg_load_as_f32(cg_fn *f, const cg_tensor *t, LLVMValueRef base,
                            LLVMValueRef idx);
/* Marks an FP instruction reassoc+contract (accumulations). */
LLVMValueRef cg_fast(LLVMValueRef inst);
/* Calls an overloaded LLVM intrinsic ("llvm.roundeven") on type ty. */
LLVMValueRef cg_intrinsic(cg_fn *f, const char *name, LLVMTypeRef ty,
                          LLVMValueRef *args, unsigned n_args);
/* Calls the C library function float NAME(float) (expf, tanhf, sqrtf). */
LLVMValueRef cg_libm_f32(cg_fn *f, const char *name, LLVMValueRef x);
/* i64 arithmetic shorthands. */
LLVMValueRef cg_add(cg_fn *f, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_mul(cg_fn *f, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_madd(cg_fn *f, LLVMValueRef a, int64_t k, LLVMValueRef b);
/* Index element idx of t (INT32 or INT64) as an i64 in [0, dim): negative
 * values count from the end; out-of-range ones, which the interpreter
 * reports, are clamped (generated code has no error path and must not
 * touch memory outside the tensor).  In lower_movement.c. */
LLVMValueRef cg_load_index(cg_fn *f, const cg_tensor *t, LLVMValueRef base, LLVMValueRef idx,
                           int64_t dim);
/* memcpy of `bytes` bytes. */
void cg_memcpy(cg_fn *f, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef bytes);

/* Counted loop for (iv = 0; iv < n; iv++).  cg_loop_begin leaves the
 * builder in the body and returns iv; cg_loop_end closes the loop and
 * leaves the builder after it. */
typedef struct cg_loop {
    LLVMBasicBlockRef pre, header, body, exit;
    LLVMValueRef iv, n;
} cg_loop;
LLVMValueRef cg_loop_begin(cg_fn *f, cg_loop *l, int64_t n);
/* The same for a count known at run time. */
LLVMValueRef cg_loop_begin_v(cg_fn *f, cg_loop *l, LLVMValueRef n);
void cg_loop_end(cg_fn *f, cg_loop *l);

/* if (cond) { ... }: cg_if_begin leaves the builder in the then-block and
 * returns the block after it; cg_if_end closes the then-block there. */
LLVMBasicBlockRef cg_if_begin(cg_fn *f, LLVMValueRef cond);
void cg_if_end(cg_fn *f, LLVMBasicBlockRef after);
/* cg_if_begin on 0 <= v < limit (one unsigned compare). */
LLVMBasicBlockRef cg_if_inside(cg_fn *f, LLVMValueRef v, int64_t limit);

/* Loop-carried float accumulator inside loop l: cg_acc_begin right after
 * cg_loop_begin gives the running value; cg_acc_end (before cg_loop_end)
 * sets the next value; cg_acc_result (after cg_loop_end) the final one. */
typedef struct cg_acc {
    LLVMValueRef phi, next;
    LLVMBasicBlockRef from;
} cg_acc;
LLVMValueRef cg_acc_begin(cg_fn *f, cg_loop *l, cg_acc *a, LLVMValueRef init);
void cg_acc_end(cg_fn *f, cg_acc *a, LLVMValueRef next);
LLVMValueRef cg_acc_result(cg_fn *f, cg_loop *l, cg_acc *a, LLVMValueRef init);

/* Nested loops over every index of dims (row-major, innermost last).
 * In the body, offs[k] = sum_d iv_d * strides[k][d] for each of n_ops
 * operands (a stride 0 broadcasts). */
typedef struct cg_nest {
    int rank;
    cg_loop loops[OPS_MAX_RANK];
} cg_nest;
void cg_nest_begin(cg_fn *f, cg_nest *ns, int rank, const int64_t *dims, int n_ops,
                   const int64_t (*strides)[OPS_MAX_RANK], LLVMValueRef *offs);
void cg_nest_end(cg_fn *f, cg_nest *ns);
/* cg_nest_begin with sizes and strides known at run time (symdims.h). */
void cg_nest_begin_v(cg_fn *f, cg_nest *ns, int rank, const LLVMValueRef *dims, int n_ops,
                     LLVMValueRef (*strides)[OPS_MAX_RANK], LLVMValueRef *offs);

/* Run-time sizes (cg_options.syms, symdims.h): dim d of t as an i64 (a
 * constant, or the symbol's value read from the scratch header that
 * NAME_run_dims fills: slot k holds symbol k), t's element count, its
 * row-major strides, and its strides broadcast against output rank ro.
 * For a tensor without symbolic dims they are constants. */
LLVMValueRef cg_dim(cg_fn *f, const cg_tensor *t, int d);
LLVMValueRef cg_nelems_v(cg_fn *f, const cg_tensor *t);
void cg_strides_v(cg_fn *f, const cg_tensor *t, LLVMValueRef *strides);
void cg_bcast_strides_v(cg_fn *f, const cg_tensor *x, int ro, LLVMValueRef *strides);
/* Strides of input shape (rank ri) broadcast against output rank ro
 * (numpy alignment from the right; size-1 dims get stride 0). */
void cg_bcast_strides(int ri, const int64_t *idims, int ro, int64_t *strides);

/* The output columns ow of a window sweep with 0 <= ow*s - p + kd < in
 * (input extent in, stride s, padding p, tap offset kd): [*lo, *hi). */
void cg_valid_range(int64_t in, int64_t out, int64_t s, int64_t p, int64_t kd, int64_t *lo,
                    int64_t *hi);
/* Row-major strides of dims (elements). */
void cg_strides(int rank, const int64_t *dims, int64_t *strides);
/* Requires float32 for inputs/outputs listed; OCT_EUNSUPPORTED otherwise. */
oct_status cg_need_f32(cg_fn *f, const ir_node *n, const cg_tensor *t, int io_is_out,
                       int index);

/* ---- the kernel library (kernels.c, kernels/octk.h) -------------------- */

/* True if the target can run the kernel library (x86-64); the AVX2
 * variant is linked when the target has AVX2, FMA and F16C. */
bool cg_kernels_available(const cg_fn *f);
/* The OCTK_ISA_* bits of the kernel variant the module links: what the
 * integer weight packers may choose a path for. */
unsigned cg_kernels_isa(const cg_fn *f);
/* A pointer field of a kernel's args struct, set at run time. */
typedef struct cg_kptr {
    size_t offset;
    LLVMValueRef value;
} cg_kptr;
/* Emits in the current node function the two phases of kernel family
 * `family` (octk_<family>_tasks / _run) on an args struct whose bytes are
 * `args` (`size` bytes, copied from a read-only global), with the pointer
 * fields `ptrs` stored at run time.  Each phase runs on the caller's pool
 * when NAME_run_threads got one with more than one thread, else inline. */
void cg_kernel_call(cg_fn *f, const char *family, const void *args, size_t size,
                    const cg_kptr *ptrs, int n_ptrs);
/* The node's workspace of `bytes` bytes (64-byte aligned, shared by all
 * nodes: only the running node uses it). */
LLVMValueRef cg_workspace(cg_fn *f, uint64_t bytes);
/* A field of a kernel's args struct set at run time to dim d of t (a
 * symbolic dim: its header slot; cg_dyn_workspace). */
typedef struct cg_dyn_field {
    size_t offset;
    const struct cg_tensor *t;
    int d;
} cg_dyn_field;
/* The workspace of a kernel call whose size depends on run-time dims
 * (symdims_code.c): NAME_run_dims sizes it before the body runs, calling
 * octk_<family>_work_size on a copy of `args` with `fields` set from the
 * dims, and places the largest of them all after the run-time region. */
LLVMValueRef cg_dyn_workspace(cg_fn *f, const char *family, const void *args, size_t size,
                              const cg_dyn_field *fields, int n_fields);
/* A private read-only global holding a copy of `bytes` bytes of data. */
LLVMValueRef cg_const_data(cg_fn *f, const void *data, size_t bytes);
/* The address, in the current function, of a copy of weight data: a
 * read-only global, or with opts.weights_file a place in the side file
 * (its offset there in *offset if offset is not NULL). */
LLVMValueRef cg_weight_data(cg_fn *f, const void *data, size_t bytes, uint64_t *offset);
/* The address of the bytes at `offset` of the weights file. */
LLVMValueRef cg_weight_at(cg_fn *f, uint64_t offset);
/* Records which kernel and path node n took, for the compile report. */
void cg_report(cg_fn *f, const ir_node *n, const char *kernel, const char *path);
/* Links the kernel bitcode into cm's module if any node called a kernel;
 * kernel functions become internal and take the module's target. */
oct_status cg_kernels_link(struct cg_module *cm);

/* ---- lowerings (lower_*.c) and dispatch (dispatch.c) -------------------- */

typedef oct_status (*cg_lower_fn)(cg_fn *f, const ir_node *n);

/* Kernel families with a lowering: the `kernel` column of ops.def. */
#define CG_LOWERINGS(X)                                                       \
    X(binary) X(unary) X(clip) X(conv) X(gemm) X(matmul) X(pool)              \
    X(variadic) X(where) X(cast) X(range) X(constantofshape) X(shapeof) X(size) \
    X(globalpool) X(softmax) X(batchnorm) X(concat) X(reshape) X(flatten)     \
    X(squeeze) X(unsqueeze) X(identity) X(dropout) X(transpose) X(slice)            \
    X(quantizelinear) X(dequantizelinear) X(qlinearconv) X(qlinearmatmul) X(qgemm)   \
    X(matmulintegertofloat)                                                   \
    X(split) X(gather) X(gatherelements) X(expand) X(tile) X(depthtospace)     \
    X(spacetodepth) X(trilu) X(pad) X(resize)   \
    X(reduce) X(argmax) X(layernorm) X(instancenorm) X(lrn)   \
    X(convtranspose) X(dynamicquantizelinear) X(matmulinteger) X(convinteger) \
    X(qlinearbinary) X(qlinearconcat) X(qlinearavgpool) X(qlinearglobalavgpool) \
    X(qlinearlut) X(qlinearsoftmax)                                           \
    X(constant) X(cumsum) X(hardmax) X(onehot) X(eyelike) X(gathernd) X(scatternd) \
    X(scatterelements) X(topk)                                                \
    /* recurrent layers, control flow (issue 19) */                           \
    X(rnn) X(control)                                                         \
    /* index, detection and signal ops (issue 19) */                          \
    X(einsum) X(dft) X(stft) \
    /* opset-23 transformer ops */                                            \
    X(rmsnorm) X(rotary) X(attention)                                         \
    /* data-dependent output lengths (lower_dynlen.c) */                      \
    X(nonzero) X(nonmaxsuppression) X(unique)

#define X(k) oct_status cg_lower_##k(cg_fn *f, const ir_node *n);
CG_LOWERINGS(X)
#undef X

/* QLinearMatMul / QLinearConv with run-time weights, scales or zero points,
 * as loops (lower_qint.c); lower_qlinear.c falls back to them. */
oct_status cg_qlinearmatmul_loops(cg_fn *f, const ir_node *n);
oct_status cg_qlinearconv_loops(cg_fn *f, const ir_node *n);

/* Float Conv / Gemm / MatMul with constant weights on the kernel library
 * (lower_kfloat.c): true if handled (status in *st), false to fall back to
 * the loop lowerings. */
bool cg_try_sconv(cg_fn *f, const ir_node *n, oct_status *st);
bool cg_try_sgemm(cg_fn *f, const ir_node *n, oct_status *st);
bool cg_try_smatmul(cg_fn *f, const ir_node *n, oct_status *st);
/* Whether float Conv conv, whose output only relu (the next node) reads,
 * goes on the kernels with the Relu as its clamp (cg_plan_fusion asks
 * before the memory plan); cg_lower_conv_relu then lowers the pair, the
 * Conv writing the Relu's output. */
bool cg_sconv_fuses_relu(const cg_tensor *tens, const ir_node *conv, const ir_node *relu);
oct_status cg_lower_conv_relu(cg_fn *f, const ir_node *conv, const ir_node *relu);
/* Whether cg_try_sgemm / cg_try_smatmul take node n with a number of rows
 * known only at run time (symdims.h): a constant weight, K and N static;
 * the kernel then runs per chunk of rows. */
bool cg_sgemm_takes_dynamic(cg_fn *f, const ir_node *n);
/* Whether cg_try_sconv takes 2-D Conv n with H and W (and the output's)
 * known only at run time: explicit pads (or VALID), batch and channels
 * static; the kernel's sizes are set at run time and its workspace sized
 * by NAME_run_dims (cg_dyn_workspace). */
bool cg_sconv_takes_dynamic(cg_fn *f, const ir_node *n);
/* Whether BatchNormalization n (inference, constant parameters, float32)
 * takes symbolic dims after the channels (the plane read at run time). */
bool cg_batchnorm_takes_dynamic(cg_fn *f, const ir_node *n);
/* Whether MaxPool n (float or 8-bit, no Indices, floor mode, explicit
 * pads within the window) takes symbolic spatial dims. */
bool cg_pool_takes_dynamic(cg_fn *f, const ir_node *n);
/* Float MatMul with any other B (run time, batched, broadcast) on the GEMM
 * kernel, one call per batch matrix (lower_bmm.c). */
bool cg_try_sbatched(cg_fn *f, const ir_node *n, oct_status *st);
/* Marks `absorbed` the float weights of Conv / Gemm / MatMul nodes that
 * the kernels above will take as FP8 bytes widened at run time: the output
 * of a DequantizeLinear (not part of a fused run, span) of a constant
 * FLOAT8E4M3FN or FLOAT8E5M2 initializer with a constant float scale (per
 * tensor or along the weight's output-channel axis) and a zero zero point,
 * read by that node alone and not a graph output (lower_kfloat.c lists
 * every condition).  `kernels`: the target runs the kernel library.  Runs
 * before cg_plan_memory; cg_try_* then take exactly the marked weights. */
oct_status cg_plan_fp8_weights(oct_ctx *ctx, const ir_graph *g, bool kernels,
                               const int (*span)[2], cg_tensor *tens);

/* Float MatMul whose weight is a blocked INT4/UINT4 DequantizeLinear of
 * constants on the weight-only kernel (lower_wogemm.c, octk_wogemm): the
 * plan marks such weights absorbed (before cg_plan_memory, like the FP8
 * ones); cg_try_wogemm takes exactly the marked ones. */
oct_status cg_plan_wo_weights(oct_ctx *ctx, const ir_graph *g, bool kernels,
                              const int (*span)[2], cg_tensor *tens);
bool cg_try_wogemm(cg_fn *f, const ir_node *n, oct_status *st);
/* The other weight-only block formats (lower_wofmt.c, octk_wofmt): whether
 * w is such a weight (its K in *K), for cg_plan_wo_weights; marks absorbed
 * the scale DequantizeLinear of an absorbed two-level weight when it has
 * no other reader (uses: readers per value id); the lowering itself. */
bool cg_wofmt_source(const cg_tensor *w, int64_t *K);
void cg_wofmt_absorb_scales(cg_tensor *tens, const cg_tensor *w, const int *uses);
bool cg_try_wofmt(cg_fn *f, const ir_node *n, oct_status *st);

/* The diagnostic (OCT_EUNSUPPORTED) for a node whose op has
 * IR_OPF_DATA_LENGTH: its output length depends on the input values, and
 * compiled code has static shapes.  `who` prefixes the message ("compile",
 * "jit"). */
oct_status cg_data_length_error(oct_ctx *ctx, const ir_node *n, const char *who);

/* The lowering of op, or NULL if there is none. */
cg_lower_fn cg_lowering(ir_op op);

/* Per-element pieces shared by the node lowerings and the fused loops
 * (the same instructions, so the same bits either way). */
LLVMValueRef cg_unary_elem(cg_fn *f, const ir_node *n, LLVMValueRef x); /* NULL: none */
LLVMValueRef cg_binary_elem(cg_fn *f, ir_op op, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_clip_elem(cg_fn *f, LLVMValueRef x, LLVMValueRef lo, LLVMValueRef hi);
oct_status cg_clip_bounds(cg_fn *f, const ir_node *n, LLVMValueRef bound[2]);
/* QuantizeLinear of float x to an 8-bit integer in [lo, hi] (zf: the zero
 * point as float); DequantizeLinear of x and zero point zv (both i64). */
LLVMValueRef cg_quantize_elem(cg_fn *f, LLVMValueRef x, LLVMValueRef sv, LLVMValueRef zf,
                              int64_t lo, int64_t hi);
LLVMValueRef cg_dequantize_elem(cg_fn *f, LLVMValueRef x, LLVMValueRef zv, LLVMValueRef sv);
/* Integers of type dt are widened, with their signedness, to i32 (up to 16
 * bits: (x - zero point) is then exact in i32 and vectorizes twice as wide)
 * or to i64 (32 bits). */
LLVMTypeRef cg_wide_type(cg_fn *f, ir_dtype dt);
LLVMValueRef cg_widen(cg_fn *f, ir_dtype dt, LLVMValueRef v);
/* Integer element idx of t, widened. */
LLVMValueRef cg_load_wide(cg_fn *f, const cg_tensor *t, LLVMValueRef base, LLVMValueRef idx);

/* A float input read from memory, or through the per-tensor 8-bit
 * DequantizeLinear dq that produces it (cg_plan_fusion decides: the DQ then
 * has no code and its output no memory).  Init before the loops. */
typedef struct cg_fsrc {
    LLVMValueRef ptr;
    ir_dtype qtype;
    LLVMValueRef zv, sv;  /* NULL: plain float */
} cg_fsrc;
void cg_fsrc_init(cg_fn *f, const cg_tensor *x, const ir_node *dq, cg_fsrc *s);
LLVMValueRef cg_fsrc_load(cg_fn *f, const cg_fsrc *s, LLVMValueRef idx);

/* ---- element-wise fusion (fuse_eltwise.c) ------------------------------ */

/* Runs of consecutive element-wise nodes (8-bit per-tensor Q/DQ, Add, Sub,
 * Mul, Div, Clip, Relu, LeakyRelu, HardSwish, Neg, Abs, and the float32
 * Erf, Round, Sin, Cos, Tan..Atanh, Shrink, Sign, Softplus, Softsign, Elu, Selu, Celu,
 * ThresholdedRelu, Mish on one shape, each
 * reading a value of the run before it) become one loop.  Fills span[k] =
 * {first, last} node of node k's run ({k, k} alone) and marks the values
 * only their run reads (cg_tensor.fused: never stored, no memory).  With
 * tables (the target runs the kernel library), runs that are a function of
 * one byte tensor are table runs (fuse_eltwise.c).  A lone per-tensor
 * 8-bit DequantizeLinear read only by the pooling node right after it
 * forms a run of two with it: the pool reads the bytes.  With tables, a
 * float Conv read only by the Relu right after it forms a run of two with
 * it when cg_sconv_fuses_relu says so: the kernel's clamp is the Relu. */
oct_status cg_plan_fusion(oct_ctx *ctx, const ir_graph *g, int opset, bool tables,
                          cg_tensor *tens, int (*span)[2]);
/* Whether node n can be an element of a fused run (its lowering's checks
 * pass and the run's loop computes it). */
bool cg_fusable(const ir_node *n, const cg_tensor *tens, int opset);
/* Lowers the run of nodes [lo, hi] into the current function (lo == hi: one
 * node through the run's loop, as compile.c does for a node on run-time
 * sizes). */
oct_status cg_lower_run(cg_fn *f, const ir_graph *g, int lo, int hi);
/* AveragePool, GlobalAveragePool or GlobalMaxPool n reading its input
 * through DequantizeLinear dq (lower_pool.c). */
oct_status cg_lower_pool_from(cg_fn *f, const ir_node *n, const ir_node *dq);

#endif
