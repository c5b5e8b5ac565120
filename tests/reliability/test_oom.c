/*
 * test_oom.c: out-of-memory paths of quantizing and compiling.
 *
 * Both phases go through the public API's entry points
 * (include/octet/octet.h), as a library user would.  Phase 1 runs the
 * whole `octet quantize` sequence (oct_model_load_file, oct_dataset_open,
 * an oct_runner on the interpreter, oct_quantize: default passes, fusion,
 * plan, calibration, choice, QDQ rewrite and the FP32-vs-QDQ report, then
 * oct_model_save_memory) on a model with SAMPLES (2) calibration samples.
 * Phase 2 runs `octet compile`'s sequence (oct_model_load_file,
 * oct_compile at -O0 with symbol prefix "m": default passes, qdq_fuse,
 * the backend, the object file and header to a temporary base path) on
 * the FP32 model and on its quantized twin (quantized once, without failures, to a temporary
 * file), and again for MODEL2 / DATA2 when given.  The IR arena takes 64
 * KiB blocks, so a small model like mnist-8 reaches few allocations inside
 * cg_compile / cg_emit; the CMake test adds squeezenet1.1, whose packed
 * weights each take a block of their own, so the hook also fires in the
 * kernel-library lowerings.
 *
 * Each phase first runs without a failure to count its allocations A, then
 * once for every N = 1..A with oct_ctx_fail_alloc_at(N).  Each failing run
 * must return a non-OK status with at least one error diagnostic, the hook
 * must really have fired (no spurious failure), and once the arena is
 * released the context must account no live byte (every oct_malloc was
 * oct_free'd on the failure path); a failing compile must leave no
 * temporary file next to the artifacts.  Other leaks are caught by
 * LeakSanitizer in the sanitizer build (scripts/test.sh) and a crash fails
 * the test.  Only Octet's own allocations (through the context) are
 * failed: LLVM's allocations inside cg_compile / cg_emit (module, builder,
 * passes, code generation) are not hooked, and the cg_module struct itself
 * is a plain calloc.
 *
 * Usage: test_oom MODEL DATA [SAMPLES [MODEL2 DATA2]]
 *   (the CMake test passes mnist-8 and squeezenet1.1 with the ImageNet
 *   calibration photos)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/ir.h"
#include "octet/octet.h"

/* The quantize sequence of `octet quantize` through the public API (load,
 * data set, one interpreter run as `octet run` does, oct_quantize with its
 * report, encoding); the quantized model is also written to `save` unless
 * it is NULL. */
static oct_status pipeline(oct_ctx *ctx, const char *model, const char *data,
                           uint64_t samples, const char *save)
{
    oct_model *m = NULL;
    oct_dataset *ds = NULL;
    oct_quant_options *qo = NULL;
    oct_report *rep = NULL;
    oct_status st = oct_model_load_file(ctx, model, 0, &m);
    if (!st)
        st = oct_dataset_open(ctx, data, m, samples, &ds);
    oct_samples src = oct_dataset_samples(ds);
    if (!st) {
        /* one plain run of the interpreter on the first sample */
        enum { MAX_IN = 16 };
        oct_tensor in[MAX_IN];
        size_t n_in = oct_model_input_count(m);
        oct_runner *r = NULL;
        if (n_in > MAX_IN)
            st = oct_error(ctx, OCT_EUSAGE, "test model too wide");
        for (size_t i = 0; !st && i < n_in; i++)
            st = oct_model_input(ctx, m, i, &in[i]);
        if (!st)
            st = src.get(src.user, 0, in, n_in);
        if (!st)
            st = oct_runner_new(ctx, m, "interp", NULL, &r);
        oct_tensor *outs = NULL;
        size_t n_out = 0;
        if (!st)
            st = oct_runner_run(r, in, n_in, &outs, &n_out);
        oct_tensors_free(ctx, outs, n_out);
        oct_runner_free(r);
    }
    if (!st)
        st = oct_quant_options_new(ctx, &qo);
    if (!st)
        st = oct_quantize(ctx, m, qo, &src, &rep);
    if (!st) {
        void *bytes;
        size_t len;
        st = oct_model_save_memory(ctx, m, &bytes, &len);
        if (!st)
            oct_buffer_free(ctx, bytes, len);
    }
    if (!st && save)
        st = oct_model_save_file(ctx, m, save);
    oct_report_free(ctx, rep);
    oct_dataset_close(ds);
    return st;
}

/* The compile sequence of `octet compile` through the public API: writes
 * BASE.o and BASE.h at -O0 with the symbol prefix "m". */
static oct_status compile_one(oct_ctx *ctx, const char *model, const char *base)
{
    oct_model *m = NULL;
    oct_compile_options *co = NULL;
    oct_status st = oct_model_load_file(ctx, model, 0, &m);
    if (!st)
        st = oct_compile_options_new(ctx, &co);
    if (!st)
        st = oct_compile_options_set(co, "opt-level", "0");
    if (!st)
        st = oct_compile_options_set(co, "name", "m");
    if (!st)
        st = oct_compile(ctx, m, co, base);
    return st;
}

/* What a phase runs: quantize (phase 1) or compile both models (phase 2). */
typedef struct oom_job {
    const char *model, *data, *quantized; /* quantized: the file phase 2 reads */
    uint64_t samples;
    const char *dir, *base;               /* phase 2 writes BASE.o, BASE.h in DIR */
    bool compile;
} oom_job;

/* Removes BASE.o and BASE.h; returns the number of other entries left in
 * DIR (temporary files a failing write did not clean up), printing them. */
static int clean_dir(const oom_job *job)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.o", job->base);
    unlink(path);
    snprintf(path, sizeof path, "%s.h", job->base);
    unlink(path);
    int stray = 0;
    DIR *d = opendir(job->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, "q.onnx"))
            continue;
        fprintf(stderr, "stray file %s/%s\n", job->dir, e->d_name);
        snprintf(path, sizeof path, "%s/%s", job->dir, e->d_name);
        unlink(path);
        stray++;
    }
    if (d)
        closedir(d);
    return stray;
}

static oct_status run_job(oct_ctx *ctx, const oom_job *job)
{
    if (!job->compile)
        return pipeline(ctx, job->model, job->data, job->samples, NULL);
    oct_status st = compile_one(ctx, job->model, job->base);
    if (!st)
        st = compile_one(ctx, job->quantized, job->base);
    return st;
}

static void print_diags(oct_ctx *ctx)
{
    char buf[1024];
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        oct_diag_format(oct_diag_get(ctx, i), buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
    }
}

/* Runs the job once to count its allocations, then once failing each of
 * them in turn.  Returns the number of failed checks. */
static int phase(const char *label, const oom_job *job)
{
    oct_ctx *ctx = oct_ctx_new();
    oct_status st = run_job(ctx, job);
    uint64_t total = oct_ctx_alloc_count(ctx);
    if (st != OCT_OK || oct_error_count(ctx)) {
        print_diags(ctx);
        fprintf(stderr, "FAIL: %s fails without injected failures\n", label);
        oct_ctx_free(ctx);
        return 1;
    }
    oct_ctx_free(ctx);
    if (job->compile && clean_dir(job)) {
        fprintf(stderr, "FAIL: %s leaves a temporary file without failures\n", label);
        return 1;
    }
    printf("%s: %llu allocations in one run\n", label, (unsigned long long)total);
    int failures = 0;
    for (uint64_t n = 1; n <= total; n++) {
        ctx = oct_ctx_new();
        oct_ctx_fail_alloc_at(ctx, n);
        st = run_job(ctx, job);
        bool fired = oct_ctx_alloc_count(ctx) >= n;
        const char *why = NULL;
        if (!fired)
            why = st ? "failed although no allocation was failed"
                     : "the run made fewer allocations than the counted one";
        else if (st == OCT_OK)
            why = oct_error_count(ctx)
                      ? "returned OK although an allocation failed (its error "
                        "diagnostic was recorded but not returned)"
                      : "succeeded although an allocation failed";
        else if (!oct_error_count(ctx))
            why = "failed without an error diagnostic";
        ir_arena_release(ctx);
        if (!why && ctx->bytes_live)
            why = "context bytes still live after the arena is released (leak)";
        if (job->compile && clean_dir(job) && !why)
            why = "left a temporary file behind";
        if (why) {
            fprintf(stderr, "FAIL: %s: allocation %llu: %s (status %d, %llu bytes live)\n",
                    label, (unsigned long long)n, why, (int)st,
                    (unsigned long long)ctx->bytes_live);
            if (++failures > 20)
                n = total; /* enough reported */
        }
        oct_ctx_free(ctx);
    }
    if (!failures)
        printf("%s: every one of %llu allocation failures handled\n", label,
               (unsigned long long)total);
    return failures;
}

/* Phase 2 for one model: quantizes it once (no failure) to DIR/q.onnx,
 * then runs the compile phase over it and its quantized twin. */
static int compile_phase(oom_job *job)
{
    oct_ctx *ctx = oct_ctx_new();
    oct_status st = pipeline(ctx, job->model, job->data, job->samples, job->quantized);
    if (st != OCT_OK) {
        print_diags(ctx);
        fprintf(stderr, "FAIL: %s: cannot write the quantized model\n", job->model);
    }
    oct_ctx_free(ctx);
    if (st != OCT_OK)
        return 1;
    char label[4096];
    snprintf(label, sizeof label, "compile %s FP32 and quantized", job->model);
    job->compile = true;
    int failures = phase(label, job);
    unlink(job->quantized);
    return failures;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc == 5 || argc > 6) {
        fprintf(stderr, "usage: test_oom MODEL DATA [SAMPLES [MODEL2 DATA2]]\n");
        return 2;
    }
    /* the models and data come from the shared folder: without it the
     * test is skipped (77, CTest's SKIP_RETURN_CODE), not failed */
    for (int i = 1; i < argc; i++) {
        if (i != 3 && access(argv[i], F_OK) != 0) {
            printf("SKIP: needs %s (not found; ../shared is not beside the repository)\n",
                   argv[i]);
            return 77;
        }
    }
    char dir[] = "/tmp/octet_test_oom.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char quantized[sizeof dir + 16], base[sizeof dir + 16];
    snprintf(quantized, sizeof quantized, "%s/q.onnx", dir);
    snprintf(base, sizeof base, "%s/m", dir);
    oom_job job = {.model = argv[1], .data = argv[2], .quantized = quantized,
                   .samples = argc > 3 ? strtoull(argv[3], NULL, 10) : 2,
                   .dir = dir, .base = base};
    int failures = phase("quantize", &job);
    failures += compile_phase(&job);
    if (argc == 6) {
        job.model = argv[4];
        job.data = argv[5];
        failures += compile_phase(&job);
    }
    rmdir(dir);
    return failures ? 1 : 0;
}
