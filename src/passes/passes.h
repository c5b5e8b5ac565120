/*
 * passes.h: the pass framework.  Every pass has one signature,
 *   oct_status pass_<name>(ir_graph *g, oct_ctx *ctx);
 * lives in its own file and is listed in passes.def with its command-line
 * name, its summary and the analyses it requires and preserves.
 * pass_run_pipeline runs a pipeline given as text with the options of
 * LLVM's opt (verify after each pass, print after passes, time passes).
 * A pass that needs the model (its opsets) reads ctx->model, which the
 * runners below set before calling it.
 */
#ifndef OCTET_PASSES_H
#define OCTET_PASSES_H

#include "ir/ir.h"

typedef oct_status (*pass_fn)(ir_graph *g, oct_ctx *ctx);

/* Analyses a pass may require or preserve (the columns of passes.def):
 * PASS_ANALYSIS(enumerator suffix, bit, "name", "what it is"). */
#define PASS_ANALYSES(A) \
    A(SHAPES, 0, "shapes", "every value's dtype and shape inferred by the op shape rules") \
    A(QPLAN, 1, "quant-plan", "which tensors are quantized, how they group, weight axes (quant_plan)") \
    A(QSTATS, 2, "quant-stats", "calibration summaries (min/max, histogram) of the planned activations") \
    A(QFORMATS, 3, "quant-formats", "the format, scales and zero points chosen for every planned tensor")

enum {
    PASS_A_NONE = 0,
#define A(e, bit, name, what) PASS_A_##e = 1u << (bit),
    PASS_ANALYSES(A)
#undef A
};

#define PASS(name, fn, requires, preserves, summary) oct_status fn(ir_graph *g, oct_ctx *ctx);
#include "passes/passes.def"
#undef PASS

typedef struct pass_info {
    const char *name;
    pass_fn fn;
    unsigned requires;   /* PASS_A_* set */
    unsigned preserves;  /* PASS_A_* set */
    const char *summary;
} pass_info;

/* The registry, in passes.def order. */
const pass_info *pass_registry(size_t *count);
/* Looks a pass up by its command-line name; NULL if there is none. */
const pass_info *pass_find(const char *name);
/* Writes the names of the analyses in `set` ("shapes", comma-separated;
 * "-" for none) into buf and returns buf. */
const char *pass_analysis_names(unsigned set, char *buf, size_t size);

/* Runs one pass on m's main graph (sets ctx->model for it). */
oct_status pass_run(ir_model *m, const pass_info *p, oct_ctx *ctx);
/* Runs the default pipeline (pipeline.c lists it). */
oct_status pass_run_default(ir_model *m, oct_ctx *ctx);
/* Runs a comma-separated list of pass names ("shape_infer,fold"), i.e.
 * pass_run_pipeline with no options. */
oct_status pass_run_list(ir_model *m, const char *names, oct_ctx *ctx);

/* ---- the pipeline runner ------------------------------------------------ */

/* Receives the text IR (ir_print_text) of the model after pass `pass`
 * (the index-th pass of the pipeline, from 0).  `text` is valid during the
 * call only. */
typedef void (*pass_print_fn)(void *user, const char *pass, size_t index,
                              const char *text, size_t len);
/* Receives the wall time of one pass run, in seconds. */
typedef void (*pass_time_fn)(void *user, const char *pass, size_t index,
                             double seconds);

typedef struct pass_pipeline_opts {
    /* Run ir_verify on the input before the first pass and after every
     * pass; a graph that no longer verifies stops the pipeline with an
     * OCT_EINTERNAL diagnostic naming the pass that broke it (after the
     * verifier's own diagnostics). */
    bool verify_each;
    /* Hand the text IR to `print` after each pass named in this
     * comma-separated list (NULL: none), or after every pass. */
    const char *print_after;
    bool print_after_all;
    pass_print_fn print;
    void *print_user;
    /* Time every pass and report it to `time` (NULL: no timing). */
    pass_time_fn time;
    void *time_user;
    /* The passes names are looked up in: NULL for the registry of
     * passes.def (tests pass their own list). */
    const pass_info *passes;
    size_t n_passes;
} pass_pipeline_opts;

/* Runs the pipeline `pipeline` ("a,b,c": pass names separated by commas,
 * spaces around names allowed, a name may repeat) on m with the options
 * (NULL: all off).  Every name (of the pipeline and of print_after) is
 * checked before anything runs: an unknown one is an OCT_EUSAGE diagnostic
 * listing the valid names.  Printing asked for without a `print` callback
 * is OCT_EUSAGE too.
 *
 * Analyses are checked before anything runs too.  At the start, "shapes"
 * is current (the input's types, as declared or inferred before) and so is
 * every quant analysis whose state the model or ctx->quant carries.  After
 * a pass, an analysis it preserves stays current if it was, one it
 * preserves without requiring it (one it computes) becomes current, and
 * every other one is stale.  A pass that requires an analysis not current
 * at its turn stops the pipeline with an OCT_EUSAGE diagnostic "pass 'X'
 * requires A; run P first", P being the first pass of the list that
 * computes A.  The quantization state goes through ctx->quant (a session
 * made for the run when ctx has none; quant.h) and is written back into
 * m's quant lines at the end, without the state of stale analyses.
 *
 * Stops at the first pass that fails and returns its status. */
oct_status pass_run_pipeline(ir_model *m, const char *pipeline,
                             const pass_pipeline_opts *opts, oct_ctx *ctx);

/* ---- fold.c: for a model that is only evaluated ------------------------ */

/* pass_fold, quantization ops included: a DequantizeLinear of a constant
 * weight becomes the float weight it computes (the same bits the
 * interpreter would compute on every run).  For a copy that is run many
 * times and then dropped, such as a budget trial; never for a model that is
 * written, which would lose its quantization. */
oct_status pass_fold_eval(ir_graph *g, oct_ctx *ctx);

/* ---- shape_infer.c helpers shared with other passes ------------------- */

/* Infers node n's output types from its inputs' current types and constant
 * values (initializers) with the op's shape rule, and merges them into the
 * output values: known dims replace unknown ones; a conflict with a declared
 * type (value_info, graph output) is an error naming node and output.
 * Nodes of unknown ops are left alone. */
oct_status pass_infer_node(oct_ctx *ctx, ir_node *n, int64_t opset);

/* The backend's step before lowering (inline_if.c, not a registered pass:
 * the text IR cannot hold the subgraphs it works on): If nodes of m's main
 * graph whose condition is a constant become the nodes of their taken
 * branch, with shape inference and folding rerun until none is left. */
oct_status pass_inline_if(ir_model *m, oct_ctx *ctx);
/* The backend's step before that (unroll_loop.c, not a registered pass
 * either): Loop nodes of m's main graph whose body's shapes change with
 * the iteration and whose trip count is a constant become copies of their
 * body, one per iteration, then shape inference and folding run. */
oct_status pass_unroll_loop(ir_model *m, oct_ctx *ctx);

/* Fixes the shape of graph input NAME from "NAME=1x3x224x224" (dims
 * separated by x or ,); the rank must match a declared rank and static dims
 * must agree.  OCT_EUSAGE for a malformed spec or an unknown name,
 * OCT_EINPUT for a conflict. */
oct_status pass_bind_input_shape(oct_ctx *ctx, ir_graph *g, const char *spec);

/* Sets graph input v's type to exactly dtype/rank/dims (the tensor that
 * will be fed), after checking it against the declared type; OCT_EINPUT on
 * a conflict, with a diagnostic naming the input. */
oct_status pass_bind_input_type(oct_ctx *ctx, ir_value *v, ir_dtype dtype,
                                int rank, const int64_t *dims);

#endif
