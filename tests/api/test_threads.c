/*
 * test_threads.c: the public API on several threads, one context each.
 *
 *   test_threads MODEL
 *
 * Two jobs (load MODEL, which has one float input, quantize it to INT8 in
 * one and to FP8 in the other on 4 samples of fixed pseudo-random data
 * handed over by the sample callback, save the QDQ model, compile it to an
 * object file) run first one after the other on the main thread, then at
 * the same time on two threads.  Each
 * concurrent job must succeed and write the same bytes as the sequential
 * one (a context that saw another's state, or a shared cache, would show).
 * Under ThreadSanitizer (scripts/test.sh builds it with OCTET_TSAN) any
 * data race between the two fails the run.  Exit 77 when MODEL is missing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "octet/octet.h"

typedef struct job {
    const char *model;
    const char *precision;   /* the two threads quantize to different models */
    char base[512];
    oct_status st;
} job;

enum { N_SAMPLES = 4, MAX_ELEMS = 1 << 20 };

/* The sample callback: sample i is a fixed pseudo-random buffer (an LCG
 * seeded by i, values in [0, 1)), the same on every thread. */
typedef struct sample_data {
    float *buf;
    int64_t dims[8];
    int rank;
    size_t elems;
} sample_data;

static oct_status next_sample(void *user, size_t index, oct_tensor *inputs, size_t n)
{
    sample_data *s = user;
    if (n != 1)
        return OCT_EUSAGE;
    uint32_t x = 12345u + (uint32_t)index * 7919u;
    for (size_t i = 0; i < s->elems; i++) {
        x = x * 1664525u + 1013904223u;
        s->buf[i] = (float)(x >> 8) / 16777216.0f;
    }
    inputs[0].rank = s->rank;
    inputs[0].dims = s->dims;
    inputs[0].data = s->buf;
    inputs[0].nbytes = s->elems * sizeof(float);
    return OCT_OK;
}

static void *run_job(void *arg)
{
    job *j = arg;
    char path[600];
    oct_ctx *ctx = oct_ctx_new();
    oct_model *m = NULL;
    oct_quant_options *qo = NULL;
    oct_compile_options *co = NULL;
    sample_data sd = {0};
    oct_tensor in;
    oct_status st = ctx ? OCT_OK : OCT_EINTERNAL;
    if (!st)
        st = oct_model_load_file(ctx, j->model, 0, &m);
    if (!st && oct_model_input_count(m) != 1)
        st = OCT_EUSAGE;
    if (!st)
        st = oct_model_input(ctx, m, 0, &in);
    if (!st) {
        sd.rank = in.rank < 8 ? in.rank : 8;
        sd.elems = 1;
        for (int d = 0; d < sd.rank; d++) {
            sd.dims[d] = in.dims[d] < 0 ? 1 : in.dims[d];
            sd.elems *= (size_t)sd.dims[d];
        }
        if (sd.elems > MAX_ELEMS || !(sd.buf = malloc(sd.elems * sizeof(float))))
            st = OCT_EINTERNAL;
    }
    oct_samples samples = {.count = N_SAMPLES, .get = next_sample, .user = &sd};
    if (!st)
        st = oct_quant_options_new(ctx, &qo);
    if (!st)
        st = oct_quant_options_set(qo, "precision", j->precision);
    if (!st)
        st = oct_quantize(ctx, m, qo, &samples, NULL);
    snprintf(path, sizeof path, "%s.qdq.onnx", j->base);
    if (!st)
        st = oct_model_save_file(ctx, m, path);
    if (!st)
        st = oct_compile_options_new(ctx, &co);
    if (!st)
        st = oct_compile_options_set(co, "name", "m");
    if (!st)
        st = oct_compile_options_set(co, "emit", "obj");
    if (!st)
        st = oct_compile(ctx, m, co, j->base);
    if (ctx && st) {
        char line[1024];
        for (size_t i = 0; i < oct_diag_count(ctx); i++) {
            oct_diag_format(oct_diag_get(ctx, i), line, sizeof line);
            fprintf(stderr, "%s\n", line);
        }
    }
    free(sd.buf);
    oct_ctx_free(ctx);
    j->st = st;
    return NULL;
}

/* Reads a whole file; NULL if it cannot. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return buf;
}

static int same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && la > 0 && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_threads MODEL\n");
        return 2;
    }
    char dir[] = "/tmp/octet_test_threads.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    /* the job of each thread (INT8 and FP8: two different models), first
     * run one after the other, then at the same time */
    static const char *const precision[2] = {"int8", "fp8"};
    job seq[2], par[2];
    for (int i = 0; i < 2; i++) {
        seq[i] = (job){argv[1], precision[i], "", 0};
        par[i] = (job){argv[1], precision[i], "", 0};
        snprintf(seq[i].base, sizeof seq[i].base, "%s/seq%d", dir, i);
        snprintf(par[i].base, sizeof par[i].base, "%s/t%d", dir, i);
        run_job(&seq[i]);
        if (seq[i].st) {
            fprintf(stderr, "FAIL: the sequential %s job failed (status %d)\n", precision[i],
                    seq[i].st);
            return 1;
        }
    }
    int failures = 0, checks = 0;
    char a[600], b[600];
    snprintf(a, sizeof a, "%s.qdq.onnx", seq[0].base);
    snprintf(b, sizeof b, "%s.qdq.onnx", seq[1].base);
    int differ = !same_file(a, b);
    printf("%s the INT8 and FP8 jobs make different models\n", differ ? "PASS" : "FAIL");
    failures += !differ;
    checks++;
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, run_job, &par[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    static const char *const exts[] = {".qdq.onnx", ".o"};
    for (int i = 0; i < 2; i++) {
        if (par[i].st) {
            fprintf(stderr, "FAIL: thread %d (%s) failed (status %d)\n", i, precision[i],
                    par[i].st);
            failures++;
            checks++;
            continue;
        }
        for (int e = 0; e < 2; e++) {
            snprintf(a, sizeof a, "%s%s", seq[i].base, exts[e]);
            snprintf(b, sizeof b, "%s%s", par[i].base, exts[e]);
            int same = same_file(a, b);
            printf("%s thread %d (%s): %s equals the sequential run's\n",
                   same ? "PASS" : "FAIL", i, precision[i], exts[e]);
            failures += !same;
            checks++;
            unlink(b);
        }
    }
    for (int i = 0; i < 2; i++)
        for (int e = 0; e < 2; e++) {
            snprintf(a, sizeof a, "%s%s", seq[i].base, exts[e]);
            unlink(a);
        }
    rmdir(dir);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
