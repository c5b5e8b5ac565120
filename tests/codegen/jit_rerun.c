/*
 * jit_rerun.c: one JIT runner (oct_runner, engine "jit") run several times
 * on one model through the public API, as a library user would:
 *
 *   jit_rerun MODEL OUTDIR RUN...
 *
 * Each RUN is a comma-separated list of tensor files (.npy or .pb), one
 * per model input in order.  Run k writes its output j to
 * OUTDIR/run<k>_out<j>.npy.  The JIT compiles for the values of the
 * geometry inputs (Resize's sizes, Slice's starts, ...) of the run at
 * hand, so a later run with other values must compile again and give the
 * outputs of those values (test_ops_conform.py compares them with ONNX
 * Runtime).  Exit 0 when every run succeeded, 1 with the diagnostics on
 * stderr otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octet/octet.h"

enum { MAX_INPUTS = 16 };

static void print_diags(const oct_ctx *ctx)
{
    char buf[1024];
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        oct_diag_format(oct_diag_get(ctx, i), buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
    }
}

/* Reads the comma-separated files of spec into in[]; their count in *n. */
static oct_status read_run(oct_ctx *ctx, const char *spec, oct_tensor *in, size_t *n)
{
    char path[4096];
    *n = 0;
    while (*spec) {
        size_t len = strcspn(spec, ",");
        if (len >= sizeof path || *n == MAX_INPUTS)
            return OCT_EUSAGE;
        memcpy(path, spec, len);
        path[len] = '\0';
        oct_status st = oct_tensor_read(ctx, path, &in[(*n)++]);
        if (st)
            return st;
        spec += len + (spec[len] == ',');
    }
    return OCT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: jit_rerun MODEL OUTDIR RUN...\n");
        return 1;
    }
    oct_ctx *ctx = oct_ctx_new();
    oct_model *m = NULL;
    oct_runner *r = NULL;
    oct_status st = ctx ? oct_model_load_file(ctx, argv[1], 0, &m) : OCT_EINTERNAL;
    if (!st)
        st = oct_runner_new(ctx, m, "jit", NULL, &r);
    for (int k = 3; !st && k < argc; k++) {
        oct_tensor in[MAX_INPUTS];
        size_t n_in = 0, n_out = 0;
        oct_tensor *out = NULL;
        st = read_run(ctx, argv[k], in, &n_in);
        if (!st)
            st = oct_runner_run(r, in, n_in, &out, &n_out);
        for (size_t j = 0; !st && j < n_out; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/run%d_out%zu.npy", argv[2], k - 3, j);
            st = oct_tensor_write(ctx, &out[j], path);
        }
        if (out)
            oct_tensors_free(ctx, out, n_out);
    }
    if (st && ctx)
        print_diags(ctx);
    oct_runner_free(r);
    oct_ctx_free(ctx);
    return st ? 1 : 0;
}
