/*
 * octet.h: Octet's public C API.
 *
 * A compilation context (oct_ctx) owns every piece of memory Octet allocates
 * for one model: the IR, diagnostics and scratch data all come from its arena
 * and are released by oct_ctx_free().  Nothing here prints or exits; every
 * function that can fail returns an oct_status and records a diagnostic in
 * the context, which the caller reads with oct_diag_count()/oct_diag_get().
 *
 * Threads: two contexts share no state, so several threads may each work
 * with a context of their own at the same time.  One context, and every
 * object made from it (models, options, reports, runners), must be used by
 * one thread at a time.
 *
 * A worked example: load a model, quantize it on calibration samples that
 * the caller hands over one at a time, save it and compile it.
 *
 *     static oct_status next_sample(void *user, size_t index,
 *                                   oct_tensor *inputs, size_t n_inputs)
 *     {
 *         struct my_data *d = user;   // inputs[i].dtype/rank/dims are preset
 *         inputs[0].data = d->images + index * 28 * 28;
 *         return OCT_OK;
 *     }
 *
 *     oct_ctx *ctx = oct_ctx_new();
 *     oct_model *m;
 *     oct_quant_options *qo;
 *     oct_compile_options *co;
 *     oct_samples samples = {.count = 100, .get = next_sample, .user = &d};
 *     oct_status st = oct_model_load_file(ctx, "model.onnx", 0, &m);
 *     if (!st) st = oct_quant_options_new(ctx, &qo);
 *     if (!st) st = oct_quant_options_set(qo, "precision", "int8");
 *     if (!st) st = oct_quantize(ctx, m, qo, &samples, NULL);
 *     if (!st) st = oct_model_save_file(ctx, m, "model.qdq.onnx");
 *     if (!st) st = oct_compile_options_new(ctx, &co);
 *     if (!st) st = oct_compile_options_set(co, "emit", "so,header");
 *     if (!st) st = oct_compile(ctx, m, co, "out/model");
 *     for (size_t i = 0; i < oct_diag_count(ctx); i++) {
 *         char line[512];
 *         oct_diag_format(oct_diag_get(ctx, i), line, sizeof line);
 *         fprintf(stderr, "%s\n", line);
 *     }
 *     oct_ctx_free(ctx);
 *
 * Stability: OCTET_VERSION_MAJOR changes when a function, type or
 * enumerator here changes meaning or goes away; within one major version
 * the API only grows (new functions, new enumerators at the end, new option
 * keys).  Before 1.0 a minor version may also change the API; the README's
 * changelog says how.  Options are set by key and value (the command
 * line's long option names), so a new option never changes a struct's
 * layout.  The plain structs below (oct_diag, oct_limits, oct_tensor,
 * oct_samples) only gain fields at their end in a new major version.
 */
#ifndef OCTET_OCTET_H
#define OCTET_OCTET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCTET_VERSION_MAJOR 0
#define OCTET_VERSION_MINOR 2
#define OCTET_VERSION_PATCH 0
#define OCTET_VERSION "0.2.0"

/* The version of the library linked at run time, e.g. "0.2.0". */
const char *oct_version(void);

/* Status codes double as the command-line exit codes (docs/cli.md). */
typedef enum oct_status {
    OCT_OK = 0,
    OCT_EUSAGE = 1,       /* bad command-line use or API misuse */
    OCT_EINPUT = 2,       /* malformed model, tensor or data; limit exceeded */
    OCT_EUNSUPPORTED = 3, /* valid ONNX that Octet does not handle */
    OCT_EINTERNAL = 4,    /* out of memory, I/O failure, or a bug */
} oct_status;

typedef enum oct_severity {
    OCT_SEV_NOTE = 0,
    OCT_SEV_WARNING = 1,
    OCT_SEV_ERROR = 2,
} oct_severity;

/* Where a diagnostic points.  Any pointer may be NULL; io_index is -1 when the
 * diagnostic names no input or output. */
typedef struct oct_diag {
    oct_severity severity;
    oct_status status;    /* the status the failing call returned */
    const char *file;     /* model or data file */
    const char *node;     /* node name (or "#<index>" for unnamed nodes) */
    const char *op_type;  /* op type of that node */
    int io_is_output;     /* 1 if io_index names an output */
    int io_index;
    const char *tensor;   /* tensor (value) name */
    const char *message;
} oct_diag;

/* Resource limits checked while loading and running (docs/reliability.md). */
typedef struct oct_limits {
    uint64_t max_file_bytes;        /* model file size */
    uint64_t max_tensor_elems;      /* elements in one tensor */
    uint64_t max_total_init_bytes;  /* all initializers together */
    uint64_t max_nodes;             /* nodes in the main graph */
    uint32_t max_subgraph_depth;    /* nesting of graph attributes */
    uint32_t max_rank;              /* dimensions of one tensor */
    uint64_t max_alloc_bytes;       /* bytes alive in one context */
} oct_limits;

typedef struct oct_ctx oct_ctx;

/* Returns the default limits. */
oct_limits oct_default_limits(void);

/* Creates a context with the default limits; NULL if out of memory. */
oct_ctx *oct_ctx_new(void);
/* Releases the context and everything allocated from it.  NULL is a no-op. */
void oct_ctx_free(oct_ctx *ctx);

oct_limits *oct_ctx_limits(oct_ctx *ctx);

/* Test hook: the Nth allocation (1-based) from now on fails; 0 disables. */
void oct_ctx_fail_alloc_at(oct_ctx *ctx, uint64_t nth);
/* Number of allocations made so far through the context. */
uint64_t oct_ctx_alloc_count(const oct_ctx *ctx);

size_t oct_diag_count(const oct_ctx *ctx);
const oct_diag *oct_diag_get(const oct_ctx *ctx, size_t index);
/* Number of diagnostics of severity error. */
size_t oct_error_count(const oct_ctx *ctx);
/* Formats a diagnostic like a compiler, e.g.
 *   model.onnx: node 'conv1' (Conv) input 1 'W': error: message
 * into buf (always NUL-terminated when size > 0).  Returns the length the
 * full text needs, like snprintf. */
int oct_diag_format(const oct_diag *diag, char *buf, size_t size);


/* ---- tensors --------------------------------------------------------- */

/* Element types: ONNX TensorProto.DataType numbers. */
typedef enum oct_dtype {
    OCT_DT_FLOAT = 1, OCT_DT_UINT8 = 2, OCT_DT_INT8 = 3, OCT_DT_UINT16 = 4,
    OCT_DT_INT16 = 5, OCT_DT_INT32 = 6, OCT_DT_INT64 = 7, OCT_DT_BOOL = 9,
    OCT_DT_FLOAT16 = 10, OCT_DT_DOUBLE = 11, OCT_DT_UINT32 = 12,
    OCT_DT_UINT64 = 13, OCT_DT_BFLOAT16 = 16, OCT_DT_FLOAT8E4M3FN = 17,
    OCT_DT_FLOAT8E5M2 = 19,
} oct_dtype;

/* One element of a STRING tensor: bytes, not NUL-terminated. */
typedef struct oct_string {
    const char *data;
    size_t len;
} oct_string;

/* A dense tensor, row-major, elements packed without padding (sub-byte
 * types two or four to a byte, low bits first; STRING tensors hold one
 * oct_string per element).  The struct is a view: whoever made it owns
 * dims and data. */
typedef struct oct_tensor {
    const char *name;
    int32_t dtype;         /* oct_dtype */
    int32_t rank;
    const int64_t *dims;   /* rank entries */
    void *data;
    uint64_t nbytes;       /* bytes at data */
} oct_tensor;

/* Tensor files: .npy or TensorProto .pb (chosen by content), read into
 * the context (the view's dims and data live until oct_ctx_free); an .npz
 * gives one view per member (named after it); oct_tensor_write writes .pb
 * when path ends in ".pb", .npy otherwise, through a temporary file renamed
 * into place. */
oct_status oct_tensor_read(oct_ctx *ctx, const char *path, oct_tensor *out);
oct_status oct_tensor_read_npz(oct_ctx *ctx, const char *path, oct_tensor **out,
                               size_t *n);
oct_status oct_tensor_write(oct_ctx *ctx, const oct_tensor *t, const char *path);
/* A zero-filled tensor whose dims and data come from the context's
 * allocator; oct_tensor_release gives them back. */
oct_status oct_tensor_new(oct_ctx *ctx, int32_t dtype, int32_t rank, const int64_t *dims,
                          oct_tensor *out);
void oct_tensor_release(oct_ctx *ctx, oct_tensor *t);
/* The ONNX name of a dtype ("FLOAT", "UINT8", ...) and its bits per
 * element (0 for none); the number of elements of a view; element i
 * converted to double (every numeric dtype, float8 and float16 too). */
const char *oct_dtype_name(int32_t dtype);
unsigned oct_dtype_bits(int32_t dtype);
uint64_t oct_tensor_elems(const oct_tensor *t);
double oct_tensor_element(const oct_tensor *t, uint64_t index);

/* ---- files and diagnostics ------------------------------------------------ */

/* Writes len bytes to path through a temporary file in the same folder,
 * renamed into place ("-": standard output); refuses a path that is one of
 * the context's inputs. */
oct_status oct_write_file(oct_ctx *ctx, const char *path, const void *data, size_t len);
/* Registers a file the caller reads, which no output may overwrite. */
void oct_note_input(oct_ctx *ctx, const char *path);
/* Removes the temporary files of writes in progress, in every context.
 * Async-signal-safe: for SIGINT/SIGTERM handlers. */
void oct_remove_temp_files(void);
/* The file later diagnostics name (NULL: none). */
void oct_ctx_set_file(oct_ctx *ctx, const char *path);
/* Records a diagnostic of the caller's (tensor may be NULL); returns
 * status. */
oct_status oct_diag_add(oct_ctx *ctx, oct_severity severity, oct_status status,
                        const char *tensor, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Merges calibration statistics files (saved by the "save-stats" option)
 * into out: the statistics of all their samples together. */
oct_status oct_stats_merge(oct_ctx *ctx, const char *const *inputs, size_t n,
                           const char *out);

/* ---- models ------------------------------------------------------------- */

/* A model in Octet's graph IR, owned by its context. */
typedef struct oct_model oct_model;

/* Load flags. */
enum {
    /* read tensors stored as external data in files beneath the model's
     * folder (never outside it) */
    OCT_LOAD_EXTERNAL_DATA = 1u << 0,
    /* return the model even if it does not verify (the verifier's
     * diagnostics are recorded either way; see oct_model_verify) */
    OCT_LOAD_NO_VERIFY = 1u << 1,
};

/* Loads an ONNX model, or Octet's text IR (docs/inspect.md; recognised by
 * its first line "octet-ir 1"); path "-" reads standard input.  Verifies it and
 * remembers the path as an input that no output may overwrite.  flags:
 * OCT_LOAD_* or 0.  Malformed input is OCT_EINPUT, valid ONNX that Octet
 * cannot represent OCT_EUNSUPPORTED, each with a diagnostic naming the
 * file. */
oct_status oct_model_load_file(oct_ctx *ctx, const char *path, unsigned flags,
                               oct_model **out);
/* Loads from memory; name is used in diagnostics.  External data is never
 * read from memory models. */
oct_status oct_model_load_memory(oct_ctx *ctx, const void *data, size_t len,
                                 const char *name, oct_model **out);
/* Writes the model as ONNX through a temporary file renamed into place
 * ("-": standard output); refuses to overwrite a loaded input. */
oct_status oct_model_save_file(oct_ctx *ctx, const oct_model *m, const char *path);
/* Encodes the model as ONNX into *data (free with oct_buffer_free). */
oct_status oct_model_save_memory(oct_ctx *ctx, const oct_model *m, void **data,
                                 size_t *len);
/* A deep copy of m in the same context. */
oct_status oct_model_clone(oct_ctx *ctx, const oct_model *m, oct_model **out);

typedef enum oct_print_format {
    OCT_PRINT_TEXT = 0,  /* the text IR (docs/inspect.md) */
    OCT_PRINT_JSON = 1,
    OCT_PRINT_DOT = 2,   /* Graphviz, nodes coloured by precision */
    OCT_PRINT_TEXT_FULL = 3, /* the text IR with every value: reads back */
} oct_print_format;
/* Prints the model into *text (NUL-terminated, *len bytes without the NUL;
 * free with oct_buffer_free(ctx, *text, *len + 1)). */
oct_status oct_model_print(oct_ctx *ctx, const oct_model *m, oct_print_format format,
                           char **text, size_t *len);
/* Releases a buffer a function above returned. */
void oct_buffer_free(oct_ctx *ctx, void *data, size_t len);

/* The graph inputs a caller feeds (initializers excluded) and the graph
 * outputs, in order.  *out receives the name, dtype, rank and declared
 * dims (a symbolic or unknown dimension is -1; dims live in the context);
 * data is NULL. */
size_t oct_model_input_count(const oct_model *m);
size_t oct_model_output_count(const oct_model *m);
oct_status oct_model_input(oct_ctx *ctx, const oct_model *m, size_t index,
                           oct_tensor *out);
oct_status oct_model_output(oct_ctx *ctx, const oct_model *m, size_t index,
                            oct_tensor *out);
/* Fixes an input's shape: spec "NAME=1x3x224x224" (as --input-shape). */
oct_status oct_model_bind_input_shape(oct_ctx *ctx, oct_model *m, const char *spec);

/* Runs a pass pipeline given as text, e.g. "shape_infer,fold,shape_infer"
 * (`octet passes` lists the passes); "default" is the pipeline every
 * command runs after loading.  An unknown name is OCT_EUSAGE with a
 * diagnostic listing the valid ones.  "mnb_int8_rows" is the CLI's
 * --int8-rows: run on a model before oct_compile or oct_runner_new, it
 * makes MatMulNBits nodes with accuracy_level 4 compute with int8 weights
 * per column and activations per row (docs/compile.md); the choice lives
 * in the loaded model only, not in ONNX it writes. */
oct_status oct_run_passes(oct_ctx *ctx, oct_model *m, const char *pipeline);
/* Checks the graph's invariants (every value defined once, before use;
 * types consistent); OCT_EINPUT with diagnostics if it is broken. */
oct_status oct_model_verify(oct_ctx *ctx, const oct_model *m);

/* The pass manager's options, after LLVM's opt: set by key, value
 * "verify-each" ("1": verify after every pass and name the pass that broke
 * the graph), "print-after" (a pass name or comma list; repeatable),
 * "print-after-all" ("1").  The text IR after those passes goes to the
 * print callback, each pass's wall time to the timer. */
typedef struct oct_pass_options oct_pass_options;
typedef void (*oct_pass_print_fn)(void *user, const char *pass, size_t index,
                                  const char *text, size_t len);
typedef void (*oct_pass_time_fn)(void *user, const char *pass, size_t index,
                                 double seconds);
oct_status oct_pass_options_new(oct_ctx *ctx, oct_pass_options **out);
oct_status oct_pass_options_set(oct_pass_options *o, const char *key, const char *value);
void oct_pass_options_set_print(oct_pass_options *o, oct_pass_print_fn fn, void *user);
void oct_pass_options_set_timer(oct_pass_options *o, oct_pass_time_fn fn, void *user);
/* oct_run_passes with options (NULL: none). */
oct_status oct_run_pipeline(oct_ctx *ctx, oct_model *m, const char *pipeline,
                            const oct_pass_options *o);

/* The registered passes (`octet passes`), and the analyses they require
 * and preserve ("-" for none). */
typedef struct oct_pass_desc {
    const char *name, *summary;
    char requires[64], preserves[64];
} oct_pass_desc;
size_t oct_pass_count(void);
oct_status oct_pass_get(size_t index, oct_pass_desc *out);
size_t oct_analysis_count(void);
oct_status oct_analysis_get(size_t index, const char **name, const char **what);

/* ---- calibration data ---------------------------------------------------- */

/* Calibration samples, pulled one at a time.  get() is called with index
 * in [0, count) (each index possibly more than once: calibration reads the
 * data in two passes) and inputs[] preset for the model's inputs (name,
 * dtype and dims as declared, data NULL); it sets each inputs[i].data (and
 * dims, rank, dtype if they differ from the declaration) to memory that
 * stays valid until the next call, and returns OCT_OK or an error status
 * that stops the calibration. */
typedef struct oct_samples {
    size_t count;
    oct_status (*get)(void *user, size_t index, oct_tensor *inputs,
                      size_t n_inputs);
    void *user;
    const char *name;   /* names the data in diagnostics; may be NULL */
} oct_samples;

/* A data set read from a file the way the command line reads --calib and
 * --data: an .npy (one model input), an .npz (an array per input name) or a
 * folder of test_data_set_N/input_M.pb; an array with the model input's
 * rank is split along axis 0 into batch-1 samples.  At most max_samples
 * samples (0: all).  Samples are read one at a time. */
typedef struct oct_dataset oct_dataset;
oct_status oct_dataset_open(oct_ctx *ctx, const char *path, const oct_model *m,
                            uint64_t max_samples, oct_dataset **out);
/* The data set as samples (valid until oct_dataset_close). */
oct_samples oct_dataset_samples(oct_dataset *ds);
void oct_dataset_close(oct_dataset *ds);

/* ---- quantization ---------------------------------------------------------- */

typedef struct oct_quant_options oct_quant_options;
typedef struct oct_report oct_report;

/* Options with the defaults of `octet quantize` (min-max calibration, u8
 * activations, s8 per-channel weights, INT8). */
oct_status oct_quant_options_new(oct_ctx *ctx, oct_quant_options **out);
/* Sets an option by the name of the command line's long option without
 * "--", e.g. ("precision", "auto"), ("method", "entropy"), ("weights",
 * "per-block"), ("block-size", "64"), ("activations", "s8"), ("fp8",
 * "e5m2"), ("config", "rules.json"), ("engine", "jit"), ("input-shape",
 * "x=1x3x32x32"), ("save-stats", PATH), ("load-stats", PATH),
 * ("ignore-nonfinite", "1").  Weight-only quantization: ("weights-only",
 * "1"), ("weight-format", "int4") (int8, uint8, int4, uint4, int2, uint2;
 * block formats nvfp4, mxfp4, mxfp8, q8_0, q6_k, q4_k: docs/formats.md),
 * ("weight-scheme", "asym") (sym or asym; default: the format's own),
 * ("clip-search", "1").  Around static or dynamic W8A8 (both need
 * samples): ("smooth", "0.5") (SmoothQuant's alpha; "" for 0.5, "auto" to
 * search it per layer group),
 * ("kv-cache-quant", "int8") (or "fp8": Q/DQ on the present* keys and
 * values), ("precision", "fp32") (only the cache quantized).  CNN recovery:
 * ("equalize", "1"), ("bias-correction", "1"), each kept only if it raises
 * the output SQNR on the samples by 0.3 dB (a note says which).  An unknown
 * key or bad value is OCT_EUSAGE with a diagnostic. */
oct_status oct_quant_options_set(oct_quant_options *o, const char *key,
                                 const char *value);
/* Progress: stage is "calibrating" or "measuring". */
typedef void (*oct_progress_fn)(void *user, const char *stage, size_t done,
                                size_t total);
void oct_quant_options_set_progress(oct_quant_options *o, oct_progress_fn fn,
                                    void *user);

/* Quantizes m in place into a QDQ model: runs the default passes and the
 * fusions, calibrates on samples (not read when the options load saved
 * statistics; samples may then be NULL), chooses each tensor's format and
 * inserts QuantizeLinear/DequantizeLinear.  If report is not NULL, *report
 * receives the per-tensor error of the result against the FP32 model on
 * the same samples.  With "weights-only" set, only the constant weights are
 * quantized (integer initializer + DequantizeLinear), nothing else of the
 * graph changes, samples are not needed and *report stays NULL. */
oct_status oct_quantize(oct_ctx *ctx, oct_model *m, const oct_quant_options *o,
                        const oct_samples *samples, oct_report **report);
/* Gives the quantization passes of a pipeline (quant_plan, quant_calibrate,
 * quant_choose, quant_rewrite; `octet passes`) their options (NULL: the
 * defaults; "engine" and "input-shape" do not apply: the samples run on the
 * reference interpreter) and calibration samples (NULL: none).  Both must
 * outlive oct_run_pipeline.  Without this call those passes run with the
 * defaults and no samples. */
void oct_pass_options_set_quant(oct_pass_options *o, const oct_quant_options *q,
                                const oct_samples *samples);
/* The report of any QDQ model (Octet's or another tool's) against its
 * FP32 original on the samples (`octet report`). */
oct_status oct_report_compare(oct_ctx *ctx, const oct_model *fp32,
                              const oct_model *qdq, const oct_samples *samples,
                              oct_report **out);
/* The report as the table `octet quantize` prints (free the text with
 * oct_buffer_free(ctx, *text, *len + 1)), or as JSON written to path. */
oct_status oct_report_text(oct_ctx *ctx, const oct_report *r, char **text,
                           size_t *len);
oct_status oct_report_write_json(oct_ctx *ctx, const oct_report *r, const char *path);
/* The report drawn as a plain SVG: a bar per tensor (its SQNR alone, a
 * tick for the accumulated SQNR) coloured by the precision chosen. */
oct_status oct_report_write_svg(oct_ctx *ctx, const oct_report *r, const char *path);
/* Quantization tensors reported, and the output SQNR (dB) of the model
 * (the first output's accumulated SQNR). */
size_t oct_report_tensor_count(const oct_report *r);
/* Releases what a report holds outside the context (NULL is a no-op). */
void oct_report_free(oct_ctx *ctx, oct_report *r);
double oct_report_output_sqnr(const oct_report *r);

/* ---- compiling and running ---------------------------------------------- */

typedef struct oct_compile_options oct_compile_options;

/* Options with the defaults of `octet compile` (-O3, the host CPU, emit
 * "obj,header", weights embedded, QDQ islands fused into integer ops). */
oct_status oct_compile_options_new(oct_ctx *ctx, oct_compile_options **out);
/* Keys as the command line's long options: "emit" ("obj,so,asm,llvm,header"),
 * "opt-level" ("0".."3"), "mtriple", "mcpu" (a CPU, compiled for its
 * features only; "native" the host; a comma-separated list: one library
 * with a variant per CPU chosen at load time), "mattr" ("+f,-g"), "weights"
 * ("embed"|"file"), "keep-qdq" ("1"), "report" (a path), "input-shape"
 * ("NAME=DIMS"), "name" (the C symbol prefix; default: from the output
 * path's last component), "kv-cache" ("inplace" or "none", the default:
 * "inplace" compiles a decode graph whose past_key_values.{l}.key/value
 * inputs feed only a Concat on axis 2 producing present.{l}.key/value so
 * that each present output buffer is a cache the caller keeps between
 * steps: the step reads the past there, writes only the new slots and
 * never reads the past inputs; the generated header says how to run it.
 * A graph without that shape fails to compile with OCT_EUNSUPPORTED saying
 * why.  oct_runner_run on such a JIT copies each past input into its
 * present buffer first, so its outputs are the graph's), "bound"
 * ("NAME=N", repeatable: at most N for the data-dependent length of the
 * NonZero, NonMaxSuppression or Unique node NAME or of the node writing
 * tensor NAME; the run returns 2 when a length exceeds it, docs/compile.md),
 * "layout" ("auto", the default: on targets with AVX-512 VNNI, chains of
 * integer convolutions, 8-bit MaxPools and Concats keep their activations
 * NHWC inside the compiled code; "nchw": every activation NCHW; the
 * model's inputs and outputs are NCHW either way).  An unknown x86 CPU is
 * OCT_EUSAGE at oct_compile. */
oct_status oct_compile_options_set(oct_compile_options *o, const char *key,
                                   const char *value);
/* Compiles a copy of m (m itself is unchanged) through LLVM and writes
 * out_base.{o,so,s,ll,h} as the options select. */
oct_status oct_compile(oct_ctx *ctx, const oct_model *m, const oct_compile_options *o,
                       const char *out_base);
/* The prefix of the symbols (NAME_run, NAME_signature, ...) that
 * oct_compile gives a library written to out_base when no "name" option is
 * set: its last path component with every character that cannot be in a C
 * identifier made '_', and '_' before a leading digit ("out/my-model" ->
 * "my_model").  Writes it NUL-terminated into buf and returns its length;
 * nothing is written when it does not fit in size bytes (or out_base ends
 * in '/'), and the return is then 0. */
size_t oct_compile_symbol_prefix(const char *out_base, char *buf, size_t size);

/* Runs a model in this process: "interp" (the reference interpreter) or
 * "jit" (compiled for this CPU in memory; same options as oct_compile's
 * apart from emit and report, or NULL for the defaults). */
typedef struct oct_runner oct_runner;
oct_status oct_runner_new(oct_ctx *ctx, const oct_model *m, const char *engine,
                          const oct_compile_options *o, oct_runner **out);
/* Runs once on inputs (one per model input, in order).  *outputs receives
 * n_outputs tensors in the context (oct_model_output_count of the model),
 * freed with the context or by oct_tensors_free.  The JIT compiles at the
 * first run for its input shapes; a symbolic leading (batch) dimension the
 * graph keeps apart stays free, so later runs may change the batch
 * (docs/compile.md), every other dimension must stay. */
oct_status oct_runner_run(oct_runner *r, const oct_tensor *inputs, size_t n_inputs,
                          oct_tensor **outputs, size_t *n_outputs);
/* Releases an array of n tensors that oct_runner_run returned. */
void oct_tensors_free(oct_ctx *ctx, oct_tensor *tensors, size_t n);
void oct_runner_free(oct_runner *r);
/* Runner options, before the first run: "passes" (a pipeline run instead
 * of the default passes; the JIT then compiles the graph as they leave it,
 * without fusing QDQ islands). */
oct_status oct_runner_set(oct_runner *r, const char *key, const char *value);
/* Does the first run's preparation (bind the inputs' types, run the
 * passes, compile for the JIT) from inputs' dtype and dims; the JIT also
 * folds the values of the inputs given with data that fix shapes
 * (Resize's sizes, Slice's starts, ...: docs/compile.md), and a later
 * oct_runner_run with other such values compiles again. */
oct_status oct_runner_prepare(oct_runner *r, const oct_tensor *inputs, size_t n_inputs);

/* A compiled model's entry points, as a shared library from `octet
 * compile` exports them (the generated header documents them): run takes
 * the inputs' and outputs' data in order and a scratch buffer of
 * scratch_size bytes aligned to 64; run_threads (NULL if absent) also
 * takes an octrt_pool (octet_runtime.h); signature is the JSON text
 * describing inputs and outputs.  Valid while the runner lives and until
 * a run compiles again (see oct_runner_prepare). */
struct octrt_pool;
typedef struct oct_entry_points {
    int (*run)(const void *const *inputs, void *const *outputs, void *scratch);
    int (*run_threads)(const void *const *inputs, void *const *outputs, void *scratch,
                       struct octrt_pool *pool);
    uint64_t scratch_size;
    const char *signature;
    /* NULL unless an output has a data-dependent length (its signature
     * entry has "length_axis"): that output's dims after a run with
     * `scratch`, returning the rank (docs/compile.md). */
    int (*output_dims)(const void *scratch, int k, int64_t *dims);
} oct_entry_points;
/* The entry points of a prepared JIT runner. */
oct_status oct_runner_entry_points(oct_runner *r, oct_entry_points *out);

/* ---- language models: tokenizer, generation, perplexity ------------------- */

/* A tokenizer in llama2.c's format (tok512.bin: int32 max_token_length,
 * then per piece a float32 score, an int32 length and the bytes), owned by
 * the context.  A malformed file is OCT_EINPUT with a diagnostic naming it. */
typedef struct oct_tokenizer oct_tokenizer;
oct_status oct_tokenizer_load(oct_ctx *ctx, const char *path, oct_tokenizer **out);
size_t oct_tokenizer_vocab_size(const oct_tokenizer *t);
/* Encodes len bytes of UTF-8 text as llama2.c does (BOS = 1 first if bos
 * is non-zero, a leading space, byte-pair merges by piece score).  *ids
 * receives *n ids; free with oct_buffer_free(ctx, *ids, *n * sizeof **ids). */
oct_status oct_tokenizer_encode(oct_ctx *ctx, const oct_tokenizer *t, const char *text,
                                size_t len, int bos, int32_t **ids, size_t *n);
/* The bytes token id stands for when it follows prev (-1: none): BOS gives
 * none, a piece after BOS drops its leading space, "<0xHH>" is one byte.
 * *bytes (not NUL-terminated) lives as long as the tokenizer. */
oct_status oct_tokenizer_decode(oct_ctx *ctx, const oct_tokenizer *t, int32_t prev,
                                int32_t id, const char **bytes, size_t *len);

/* A decoder-only language model in the common ONNX export convention
 * (ONNX Runtime GenAI, Hugging Face Optimum):
 *   decode graph:  input_ids [1,1], position_ids [1,1] (optional),
 *                  attention_mask [1,P+1], past_key_values.{l}.key/value
 *                  [1,H,P,D] -> logits [1,1,V], present.{l}.key/value
 *                  [1,H,P+1,D]
 *   prefill graph: input_ids [1,S] (attention_mask and position_ids
 *                  optional) -> logits [1,S,V], present.{l}.key/value
 *                  [1,H,S,D] (only logits for perplexity)
 * The caller's side keeps a cache of P slots: a prompt is run through the
 * prefill graph (right-padded to S) or token by token through the decode
 * graph, each step marks the valid slots in attention_mask and copies the
 * new token's present[..., P, :] into the next free slot.  A model that
 * does not follow the convention is OCT_EUNSUPPORTED with a diagnostic
 * naming the missing input or output.  engine: "interp" or "jit" (as
 * oct_runner_new); either graph may be NULL (generation needs decode,
 * perplexity prefill).  The models must outlive the oct_lm. */
typedef struct oct_lm oct_lm;
oct_status oct_lm_open(oct_ctx *ctx, const oct_model *decode, const oct_model *prefill,
                       const char *engine, oct_lm **out);
/* The same with the decode graph as a library from `octet compile --emit=so
 * --kv-cache=inplace` (its entry points: NAME_run, NAME_run_threads,
 * NAME_signature and the signature's scratch_size, loaded by the caller;
 * path names it in diagnostics): no ONNX model, the convention is read
 * from the signature and each step runs NAME_run on the cache in place.
 * A library compiled without the in-place cache, or whose inputs and
 * outputs are not the convention's, is OCT_EUNSUPPORTED saying why.  The
 * entry points must outlive the oct_lm; generation only (no prefill). */
oct_status oct_lm_open_compiled(oct_ctx *ctx, const oct_entry_points *decode,
                                const char *path, oct_lm **out);
void oct_lm_free(oct_lm *lm);
/* The vocabulary size V and the cache slots P (0 without a decode graph). */
size_t oct_lm_vocab_size(const oct_lm *lm);
size_t oct_lm_cache_size(const oct_lm *lm);
/* The logits (V floats) of the last position the model ran: inside an
 * oct_lm_token_fn, those the token was chosen from.  Valid until the next
 * call on lm. */
const float *oct_lm_logits(const oct_lm *lm);
/* Sampling options, by key: "temperature" (0, the default, is greedy:
 * the lowest id of the largest logit), "top-k" (0: the whole vocabulary),
 * "seed" (an unsigned 64-bit integer, default 0), "stop-id" (generation
 * ends after producing this id; -1, the default, never), "cache-size"
 * (the slots P when the graph leaves the past length symbolic; default
 * 256), "kv-cache" ("none", the default, or "inplace": on the jit engine,
 * the decode graph is compiled with the in-place cache of
 * oct_compile_options_set's "kv-cache" and a step writes only the new
 * token's keys and values, O(H * D) per layer, instead of copying the
 * cache out and back; a graph outside the pattern is OCT_EUNSUPPORTED at
 * the first generation, saying why).  Sampling draws u in [0,1) per token from xorshift64* seeded by
 * splitmix64(seed), u = (x >> 40) / 2^24, and picks the first id whose
 * cumulative probability (softmax of logits/temperature over the top-k
 * ids, in order of decreasing logit, then increasing id) exceeds u: the
 * same seed gives the same tokens on every machine.  An unknown key or a
 * bad value is OCT_EUSAGE. */
oct_status oct_lm_set(oct_lm *lm, const char *key, const char *value);

/* Called after each generated token; a non-OK return stops generation
 * with that status. */
typedef oct_status (*oct_lm_token_fn)(void *user, int32_t id);
/* Wall time of the last generation: preparing the graphs (passes, and
 * compiling for the JIT; first generation only), the prompt, the steps. */
typedef struct oct_lm_timing {
    double prepare_seconds;
    size_t prefill_tokens;
    double prefill_seconds;
    size_t decode_tokens;       /* decode steps after the prompt */
    double decode_seconds;
} oct_lm_timing;
/* Runs the prompt (n_prompt >= 1 ids), then generates up to n_new tokens
 * into out[] (room for n_new), stopping early at "stop-id"; *n_out is the
 * count.  The prompt and the tokens fed back must fit the cache:
 * n_prompt + n_new - 1 <= P; an id outside [0, V) or a prompt too long is
 * OCT_EINPUT with a diagnostic naming input_ids or the cache input. */
oct_status oct_lm_generate(oct_lm *lm, const int32_t *prompt, size_t n_prompt,
                           size_t n_new, oct_lm_token_fn on_token, void *user,
                           int32_t *out, size_t *n_out, oct_lm_timing *timing);

/* Perplexity over a token stream (a 1-D or [1,N] integer tensor), after
 * stories260k's protocol: the first min(floor(N / window), max_windows)
 * (0: no cap) non-overlapping windows of `window` tokens, each run alone
 * from an empty cache through the prefill graph (right-padded when window
 * < S; window 0 means S), scoring tokens 1..window-1 of each window given
 * those before it: nll = -log softmax(logits[t-1])[token t] in double.
 * progress (may be NULL) gets stage "windows" after each window; seconds
 * counts the runs, not preparing the graph (passes, JIT compilation).
 * kv_bytes_per_token: the bytes one token takes in the key/value cache the
 * graph writes (its present.* outputs [1,H,S,D]: H * D elements each, in
 * their own dtype: 4 bytes for float32, 1 for a cache that `octet quantize
 * --kv-cache=int8|fp8` stores as codes); kv_fp32_bytes_per_token the same
 * at 4 bytes an element. */
typedef struct oct_lm_perplexity {
    uint64_t windows, targets;
    double mean_nll;          /* nats per token */
    double perplexity;        /* exp(mean_nll) */
    double bits_per_token;    /* mean_nll / ln 2 */
    double seconds;
    uint64_t kv_bytes_per_token, kv_fp32_bytes_per_token;
} oct_lm_perplexity;
oct_status oct_lm_eval_perplexity(oct_lm *lm, const oct_tensor *tokens, size_t window,
                                  size_t max_windows, oct_progress_fn progress,
                                  void *user, oct_lm_perplexity *out);

#ifdef __cplusplus
}
#endif
#endif
