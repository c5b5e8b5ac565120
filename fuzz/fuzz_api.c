/*
 * fuzz_api.c: libFuzzer target for the buffers the public API reads
 * (include/octet/octet.h), driven as a library user would, through the
 * public header alone.  The first byte picks the reader:
 *   even: the rest is a model image for oct_model_load_memory (binary ONNX
 *         or text IR, chosen by content); what loads is printed in every
 *         format, run through the default passes, saved and loaded again;
 *   odd:  the rest describes one input tensor view (dtype, rank, dims,
 *         a claimed byte count, then data) that oct_runner_run checks and,
 *         if it fits, feeds to a small model on the interpreter.
 * Seeds: the ONNX and text IR seeds of the load and ir_text targets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "octet/octet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A context with fuzzing limits (as fuzz_common.h's, through the public
 * limits struct only). */
static oct_ctx *fuzz_api_ctx(void)
{
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx)
        return NULL;
    oct_limits *l = oct_ctx_limits(ctx);
    l->max_alloc_bytes = 64u << 20;
    l->max_tensor_elems = 4u << 20;
    l->max_total_init_bytes = 16u << 20;
    l->max_file_bytes = 16u << 20;
    l->max_nodes = 4096;
    l->max_subgraph_depth = 8;
    l->max_rank = 8;
    return ctx;
}

static void model_image(oct_ctx *ctx, const uint8_t *data, size_t size)
{
    oct_model *m = NULL;
    if (oct_model_load_memory(ctx, data, size, "fuzz", &m) != OCT_OK)
        return;
    static const oct_print_format formats[] = {OCT_PRINT_TEXT, OCT_PRINT_JSON,
                                               OCT_PRINT_DOT, OCT_PRINT_TEXT_FULL};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        char *text;
        size_t len;
        if (oct_model_print(ctx, m, formats[i], &text, &len) == OCT_OK)
            oct_buffer_free(ctx, text, len + 1);
    }
    oct_model *copy = NULL;
    if (oct_model_clone(ctx, m, &copy) == OCT_OK)
        (void)oct_run_passes(ctx, copy, "default");
    void *bytes;
    size_t len;
    if (oct_model_save_memory(ctx, m, &bytes, &len) == OCT_OK) {
        oct_model *again = NULL;
        (void)oct_model_load_memory(ctx, bytes, len, "fuzz-again", &again);
        oct_buffer_free(ctx, bytes, len);
    }
}

/* y = x + x for x of any float shape (rank 1..3 as fed). */
static const char add_model[] =
    "octet-ir 1\n"
    "model ir_version=8 producer_name=\"fuzz\" producer_version=\"\" domain=\"\"\n"
    "opset \"\"=13\n"
    "graph g\n"
    "input x: f32[*]\n"
    "output y: f32[*]\n"
    "node Add add (x, x) -> (y)\n";

static void tensor_view(oct_ctx *ctx, const uint8_t *data, size_t size)
{
    /* header: dtype, rank, 4 dims (one byte each), claimed nbytes (2 bytes) */
    if (size < 8)
        return;
    int64_t dims[4];
    oct_tensor t = {.name = "x", .dtype = data[0] % 24, .rank = data[1] % 5, .dims = dims};
    for (int d = 0; d < 4; d++)
        dims[d] = (int64_t)(int8_t)data[2 + d];   /* negative dims too */
    t.nbytes = (uint64_t)data[6] | (uint64_t)data[7] << 8;
    t.data = size > 8 ? (void *)(data + 8) : NULL;
    /* the view may claim at most what is there: the API cannot know the
     * caller's buffer, only check consistency */
    if (t.nbytes > size - 8)
        t.nbytes = size - 8;
    oct_model *m = NULL;
    oct_runner *r = NULL;
    if (oct_model_load_memory(ctx, add_model, sizeof add_model - 1, "add", &m) != OCT_OK ||
        oct_runner_new(ctx, m, "interp", NULL, &r) != OCT_OK)
        return;
    /* a view with nbytes 0 claims nothing: the runner would read what dims
     * say, so only hand over views whose claim covers their dims */
    oct_tensor *outs = NULL;
    size_t n_outs = 0;
    if (t.nbytes && oct_runner_run(r, &t, 1, &outs, &n_outs) == OCT_OK)
        oct_tensors_free(ctx, outs, n_outs);
    oct_runner_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    oct_ctx *ctx = fuzz_api_ctx();
    if (!ctx)
        return 0;
    if (data[0] % 2 == 0)
        model_image(ctx, data + 1, size - 1);
    else
        tensor_view(ctx, data + 1, size - 1);
    oct_ctx_free(ctx);
    return 0;
}
