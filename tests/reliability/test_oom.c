/*
 * test_oom.c: out-of-memory paths.  Runs the whole `octet quantize`
 * sequence through the library (load, verify, default passes, fusion and
 * shape inference, data set, plan, calibration with the reference
 * interpreter, choice, QDQ rewrite, encoding, the FP32-vs-QDQ report) on a
 * model with two calibration samples, first without a failure to count its
 * allocations A, then once for every N = 1..A with oct_ctx_fail_alloc_at(N).
 * Each failing run must return a non-OK status with at least one error
 * diagnostic, and the hook must really have fired (no spurious failure);
 * leaks are caught by LeakSanitizer in the sanitizer build
 * (scripts/test.sh) and a crash fails the test.
 *
 * Usage: test_oom MODEL DATA [SAMPLES]   (the CMake test passes mnist-8)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/dataset.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "passes/quant.h"
#include "ref/ref.h"

static oct_status get_sample(void *user, size_t index, ir_tensor **inputs,
                             oct_ctx *ctx)
{
    (void)ctx;
    return fe_dataset_get(user, index, inputs);
}

static oct_status prepare(oct_ctx *ctx, const char *path, ir_model **out)
{
    fe_load_opts lo = {0};
    oct_status st = fe_load_file(ctx, path, &lo, out);
    if (!st)
        st = ir_verify(*out, ctx);
    if (!st)
        st = pass_run_default(*out, ctx);
    if (!st)
        st = pass_run_list(*out, "fuse,shape_infer", ctx);
    return st;
}

/* The quantize sequence of src/cli/cmd_quantize.c, without the CLI. */
static oct_status pipeline(oct_ctx *ctx, const char *model, const char *data,
                           uint64_t samples)
{
    ir_model *probe = NULL, *m = NULL, *fp32 = NULL;
    fe_dataset *ds = NULL;
    quant_opts qo = quant_default_opts();
    quant_plan plan = {0};
    quant_report rep;
    fe_load_opts lo = {0};
    oct_status st = fe_load_file(ctx, model, &lo, &probe);
    if (!st)
        st = fe_dataset_open(ctx, data, probe, samples, &ds);
    if (!st)
        st = prepare(ctx, model, &m);
    if (!st)
        st = prepare(ctx, model, &fp32);
    quant_samples src = {ds ? fe_dataset_count(ds) : 0, get_sample, ds, data};
    if (!st) {
        /* one plain run of the interpreter, as `octet run` does */
        size_t n_in = fe_dataset_n_inputs(ds);
        size_t n_out = fp32->graph->n_outputs;
        ir_tensor *in[16] = {0}, *outs[16] = {0};
        if (n_in > 16 || n_out > 16)
            return oct_error(ctx, OCT_EUSAGE, "test model too wide");
        st = fe_dataset_get(ds, 0, in);
        if (!st) {
            st = ref_run(ctx, fp32, (const ir_tensor *const *)in, n_in, outs,
                         n_out, NULL);
            for (size_t i = 0; i < n_out; i++)
                ref_tensor_free(ctx, outs[i]);
        }
        for (size_t i = 0; i < n_in; i++)
            ref_tensor_free(ctx, in[i]);
    }
    if (!st)
        st = quant_plan_build(m, &qo, &plan, ctx);
    if (!st)
        st = quant_calibrate(m, &plan, &qo, &src, NULL, NULL, ctx);
    if (!st)
        st = quant_choose(m, &plan, &qo, &src, NULL, NULL, ctx);
    if (!st)
        st = quant_rewrite(m, &plan, &qo, ctx);
    if (!st) {
        uint8_t *bytes;
        size_t len;
        st = fe_save_memory(ctx, m, &bytes, &len);
        if (!st)
            oct_free(ctx, bytes, len);
    }
    if (!st)
        st = quant_report_pair(fp32, m, &src, &rep, ctx);
    quant_plan_free(&plan, ctx);
    fe_dataset_close(ds);
    return st;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_oom MODEL DATA [SAMPLES]\n");
        return 2;
    }
    uint64_t samples = argc > 3 ? strtoull(argv[3], NULL, 10) : 2;
    oct_ctx *ctx = oct_ctx_new();
    oct_status st = pipeline(ctx, argv[1], argv[2], samples);
    uint64_t total = oct_ctx_alloc_count(ctx);
    if (st != OCT_OK || oct_error_count(ctx)) {
        char buf[1024];
        for (size_t i = 0; i < oct_diag_count(ctx); i++) {
            oct_diag_format(oct_diag_get(ctx, i), buf, sizeof buf);
            fprintf(stderr, "%s\n", buf);
        }
        fprintf(stderr, "FAIL: the pipeline fails without injected failures\n");
        oct_ctx_free(ctx);
        return 1;
    }
    oct_ctx_free(ctx);
    printf("%llu allocations in one run\n", (unsigned long long)total);
    int failures = 0;
    for (uint64_t n = 1; n <= total; n++) {
        ctx = oct_ctx_new();
        oct_ctx_fail_alloc_at(ctx, n);
        st = pipeline(ctx, argv[1], argv[2], samples);
        bool fired = oct_ctx_alloc_count(ctx) >= n;
        const char *why = NULL;
        if (!fired)
            why = st ? "failed although no allocation was failed"
                     : "the run made fewer allocations than the counted one";
        else if (st == OCT_OK)
            why = "succeeded although an allocation failed";
        else if (!oct_error_count(ctx))
            why = "failed without an error diagnostic";
        if (why) {
            fprintf(stderr, "FAIL: allocation %llu: %s (status %d)\n",
                    (unsigned long long)n, why, (int)st);
            if (++failures > 20)
                break;
        }
        oct_ctx_free(ctx);
        ctx = NULL;
    }
    oct_ctx_free(ctx);
    if (failures)
        return 1;
    printf("every one of %llu allocation failures handled\n",
           (unsigned long long)total);
    return 0;
}
