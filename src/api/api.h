/*
 * api.h: what the files of src/api share.  The public API
 * (include/octet/octet.h) is a thin layer over the library's subsystems:
 * this folder is the one place allowed to include all of them, so the
 * pipelines (which passes in which order, calibration, the x86-only
 * qdq_fuse decision) live here and the command line only parses flags and
 * prints.
 */
#ifndef OCTET_API_H
#define OCTET_API_H

#include <stdio.h>

#include "octet/octet.h"
#include "ir/ir.h"
#include "passes/quant.h"

struct oct_model {
    ir_model *ir;
    const char *path;   /* the file it came from, or a memory name */
};

/* Wraps an IR model in an oct_model from ctx's arena. */
oct_model *api_model_wrap(oct_ctx *ctx, ir_model *ir, const char *path);

/* OCT_EINPUT, with a diagnostic naming path, when the folder an output
 * path names does not exist (checked before any work). */
oct_status api_check_output_dir(oct_ctx *ctx, const char *path);

/* Closes a memory stream opened on buf and size and hands its text to the
 * caller as context memory (freed with oct_buffer_free(ctx, *text,
 * *len + 1)); frees the stream's buffer either way.  `what` names the
 * output in the out-of-memory diagnostic. */
oct_status api_stream_text(oct_ctx *ctx, FILE *mem, char **buf, size_t *size,
                           const char *what, char **text, size_t *len);

/* A deep copy of m in ctx. */
oct_status api_clone_ir(oct_ctx *ctx, const ir_model *m, ir_model **out);

/* Parses "NAME=1x3x224x224"-style shape lists: adds spec to a growing,
 * arena-backed array. */
oct_status api_push_string(oct_ctx *ctx, const char ***list, size_t *n,
                           size_t *cap, const char *s);

/* Runs what every command runs after loading: bind the given input shapes
 * then the default passes (shape inference, folding). */
oct_status api_prepare(oct_ctx *ctx, ir_model *m, const char *const *shapes,
                       size_t n_shapes);

/* Runs a pipeline given as text; "default" is the default pipeline. */
oct_status api_run_pipeline(oct_ctx *ctx, ir_model *m, const char *pipeline);

/* The adapter from public oct_samples to the quantizer's quant_samples. */
typedef struct api_samples {
    const oct_samples *pub;
    const ir_model *model;   /* whose inputs the samples feed */
    oct_tensor *views;       /* one per model input, reused */
    size_t n_inputs;
} api_samples;
oct_status api_samples_init(oct_ctx *ctx, api_samples *a, const oct_samples *pub,
                            const ir_model *m, quant_samples *out);

/* A quantization session (passes/quant.h) with o's options (NULL: the
 * defaults) and statistics files, and the samples (NULL: none) adapted
 * through a and data, which must live as long as the session. */
oct_status api_quant_session(oct_ctx *ctx, const oct_quant_options *o,
                             const oct_samples *samples, const ir_model *m,
                             quant_session *s, api_samples *a, quant_samples *data);

/* A transient ir_tensor over a public view's memory (no copy), after
 * checking its dtype, dims and byte count. */
oct_status api_tensor_view(oct_ctx *ctx, const oct_tensor *v, const char *what,
                           ir_tensor *t);
/* Converts a public view into a heap ir_tensor (ref_tensor_new); checks
 * the byte count against dtype and dims. */
oct_status api_tensor_from_view(oct_ctx *ctx, const oct_tensor *v, const char *what,
                                ir_tensor **out);

/* A report of oct_quantize or oct_report_compare (quantize.c builds it,
 * report.c prints it). */
struct oct_report {
    quant_report rep;
    quant_plan plan;       /* empty for a compare report */
    quant_opts opts;
    bool has_plan;
    bool measured;         /* rep holds a measurement on samples */
    quant_wo_report wo;    /* a weight-only report (has_wo) replaces the above */
    bool has_wo;
};

#endif
