/*
 * codegen_module.h: the compiled-module record shared by compile.c (which
 * builds it) and emit.c (which writes its artifacts and the signature).
 */
#ifndef OCTET_CODEGEN_MODULE_H
#define OCTET_CODEGEN_MODULE_H

#include "codegen/batch.h"
#include "codegen/codegen.h"
#include "codegen/symdims.h"

struct cg_module {
    oct_ctx *ctx;
    const ir_model *model;
    const char *name;
    cg_tensor *tens;            /* by value id */
    int (*span)[2];             /* by node: its fused run [first, last] */
    uint64_t scratch_size;
    const char *triple, *cpu, *features;
    char *signature;            /* JSON, in the arena */
    LLVMContextRef llc;
    bool own_llc;               /* llc was created for this module */
    LLVMContextRef opts_context;
    LLVMModuleRef mod;
    LLVMTargetMachineRef tm;
    bool native;                /* compiled for the host (no --mcpu, or native) */
    unsigned isa;               /* OCTK_CPU_* the target has (target.c) */
    bool avx2;                  /* target has AVX2, FMA and F16C */
    bool vnni;                  /* and AVX-512 VNNI, VL and BW */
    bool amx;                   /* and AMX-TILE and AMX-INT8 */
    bool x86_64;                /* target can run the kernel library */
    bool used_kernels;          /* some node calls the kernel library */
    uint64_t work_offset;       /* workspace: scratch + work_offset */
    uint64_t work_size;         /* its size: the largest node's need */
    bool weights_file;          /* weights go to the side file */
    uint8_t *wblob;             /* its bytes (malloc'ed) */
    size_t wlen, wcap;
    LLVMValueRef wbase;         /* @NAME_weights, the pointer to them */
    bool wblob_failed;          /* out of memory growing wblob */
    bool report_failed;         /* out of memory growing the report */
    bool native_kernels;        /* calls octet's own kernels (JIT) */
    const cg_batch *batch;      /* NULL: every shape static */
    /* symbolic dims besides the batch (symdims.h; NULL: none).  Scratch
     * then starts with a header of hdr_size bytes: slot k (i64) the value
     * of symbol k, slot n + j of derived form j (cg_syms_slots of them in
     * all: S), slot S + j the offset of the j-th tensor of the run-time
     * region (dyn_ids[j], past the static plan and workspace), all stored
     * by NAME_run_dims before the body runs. */
    const struct cg_syms *syms;
    uint64_t hdr_size;
    size_t *dyn_ids;
    int n_dyn;
    /* kernel calls whose workspace is sized at run time (slot S + n_dyn
     * of the header holds its offset; cg_dyn_workspace) */
    struct cg_dyn_work *dyn_work;
    int n_dyn_work;
    struct cg_module **variants; /* a library for several CPUs (multi.c): */
    int n_variants;              /* one module per CPU, in --mcpu's order */
    cg_report_line *report;
    size_t n_report, cap_report;
    cg_kv_pair *kv;             /* kv_inplace: the caches (arena) */
    size_t n_kv;
    struct cg_subplan *subs;    /* control flow: each subgraph's tensors */
    size_t n_subs, cap_subs;    /* (lower_control.c; arena) */
    /* data-dependent lengths (lower_dynlen.c): n_len i64 slots at
     * scratch + len_offset, one per NonZero/NMS/Unique node */
    int n_len;
    uint64_t len_offset;
    /* run-time input errors (lower_control.c): with `fault`, an i64 at
     * scratch + fault_offset that the run function zeroes first and
     * checks after each node, returning 2 when a node set it (an opset-8
     * Scan's sequence_lens entry outside [1, L]) */
    bool fault;
    uint64_t fault_offset;
};

/* Gives every definition that is not part of the header's interface
 * internal linkage, so the object and the shared library export exactly
 * what NAME.h declares (the kernel bitcode's external helpers, such as
 * qd8_rows, included), and the optimizer may inline or drop them. */
void cg_internalize_module(cg_module *cm);

/* cg_compile for opts->cpu a comma-separated list: one variant per CPU and
 * a dispatcher choosing one at load time (multi.c). */
oct_status cg_compile_multi(oct_ctx *ctx, const ir_model *m, const cg_options *opts,
                            cg_module **out);

/* Creates cm->tm for the options' triple, CPU and features (the host's
 * only without --mcpu or with --mcpu=native), checks an x86 CPU name
 * against LLVM's list (OCT_EUSAGE otherwise), and sets cm->triple, cpu,
 * features, native, isa and the kernel variant flags avx2, vnni and amx. */
oct_status cg_make_target(oct_ctx *ctx, const cg_options *o, cg_module *cm);

/* "+avx2,+fma,...,-amx-bf16": each probed feature, + if isa has it. */
const char *cg_isa_string(oct_ctx *ctx, unsigned isa);

/* The kernel bitcode variant linked: "amx-int8" (AVX-512 VNNI and AMX
 * tiles), "avx512-vnni", "avx2", "x86-64" or
 * "none" (not an x86-64 target). */
const char *cg_kernel_variant(const cg_module *cm);

/* With opts.kv_inplace, after the memory plan: finds each past_key_values
 * input's Concat, marks its present output kv_cache and records the pair
 * in cm->kv; OCT_EUNSUPPORTED saying why when the graph is not of that
 * shape (kvcache.c). */
oct_status cg_plan_kv_cache(cg_module *cm);

/* Fills t (dtype, shape, bytes) from v's initializer or static type;
 * OCT_EUNSUPPORTED naming v when its shape is not static (compile.c). */
oct_status cg_fill_tensor(oct_ctx *ctx, const ir_value *v, cg_tensor *t);

/* Builds the internal function NAME_TAGk(inputs, outputs, scratch, pool)
 * of node k of g (its fused run when span says so; span NULL: none) with
 * f->tens as the tensors, and leaves f's builder where it was.  *out: the
 * function, NULL when node k emits no code of its own. */
oct_status cg_node_function(cg_fn *f, const ir_graph *g, size_t k, const int (*span)[2],
                            const char *tag, LLVMValueRef *out);

/* After the memory plan: the tensors of every If/Loop/Scan subgraph, at
 * any depth, placed in scratch past the main graph's (lower_control.c);
 * grows cm->scratch_size.  OCT_EUNSUPPORTED naming the node when a
 * subgraph value has no static shape. */
oct_status cg_plan_control(cg_module *cm);

/* The diagnostic (OCT_EUNSUPPORTED) for output v of control node n that
 * has no static shape, saying why (lower_control.c). */
oct_status cg_control_shape_error(oct_ctx *ctx, const ir_node *n, const ir_value *v);

/* Builds cm->signature: {"name", "scratch_size", "alignment", "inputs":
 * [{"name", "dtype" (numpy spelling), "shape", "bytes"}], "outputs": [...]}
 * and, with a batch, "dims": [its name], that name at axis 0 of the batched
 * shapes and their "bytes" for one item. */
oct_status cg_signature(cg_module *cm);

/* The module's target-cpu, target-features and nounwind on fn. */
void cg_add_target_attrs(cg_module *cm, LLVMValueRef fn);

/* Run-time symbolic dims (symdims_code.c): each tensor's slots from
 * cm->syms (before the memory plan); the header and the run-time region
 * (after it); node k (or its fused run lo..hi) lowered on run-time sizes
 * (*done) or refused naming node and dim, or left to its own lowering;
 * NAME_run_dims(_threads) and NAME_scratch_size_for around the body run. */
oct_status cg_syms_mark(cg_module *cm);
oct_status cg_syms_place(cg_module *cm);
oct_status cg_syms_lower(cg_fn *f, const ir_graph *g, int k, int lo, int hi, bool *done);
void cg_build_dims_entries(cg_module *cm, cg_fn *f, LLVMValueRef run, LLVMTypeRef run_ty);

/* Data-dependent output lengths (lower_dynlen.c).  cg_dynlen_plan, before
 * the other tensors are filled: sizes each output of a NonZero,
 * NonMaxSuppression or Unique node at its bound (opts->bounds may lower
 * it) and marks it bounded.  cg_dynlen_place, after the memory plan:
 * reserves the length slots and refuses a node reading a bounded tensor.
 * cg_dynlen_check: after the call of node n in the run function (builder
 * b, scratch the run's argument), returns 2 if its kernel found the
 * length past the bound.  cg_dynlen_entry: NAME_actual_dims. */
oct_status cg_dynlen_plan(cg_module *cm, const cg_options *opts);
oct_status cg_dynlen_place(cg_module *cm);
void cg_dynlen_check(cg_module *cm, cg_fn *f, LLVMBuilderRef b, const ir_node *n,
                     LLVMValueRef scratch);
void cg_dynlen_entry(cg_module *cm, cg_fn *f);
/* In the run function (builder b): returns 2 when cond (i1) holds. */
void cg_return2_if(cg_module *cm, cg_fn *f, LLVMBuilderRef b, LLVMValueRef cond);

/* Run-time input errors (cm->fault; lower_control.c).  cg_fault_clear:
 * at the entry of the run function (builder b, scratch its argument),
 * zeroes the slot.  cg_fault_check: after the call of main-graph node n
 * there, returns 2 if n (a control node, or one in its subgraphs) set
 * it.  Both do nothing without cm->fault. */
void cg_fault_clear(cg_module *cm, cg_fn *f, LLVMBuilderRef b, LLVMValueRef scratch);
void cg_fault_check(cg_module *cm, cg_fn *f, LLVMBuilderRef b, const ir_node *n,
                    LLVMValueRef scratch);

#endif
