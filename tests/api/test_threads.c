/*
 * test_threads.c: the public API on several threads, one context each.
 *
 *   test_threads MODEL DATA
 *
 * Runs one job (load MODEL, quantize it on 4 samples of DATA through
 * oct_dataset, save the QDQ model, compile it to an object file) once on
 * the main thread, then twice at the same time on two threads.  Each
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
    const char *model, *data;
    char base[512];
    oct_status st;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    char path[600];
    oct_ctx *ctx = oct_ctx_new();
    oct_model *m = NULL;
    oct_dataset *ds = NULL;
    oct_quant_options *qo = NULL;
    oct_compile_options *co = NULL;
    oct_status st = ctx ? OCT_OK : OCT_EINTERNAL;
    if (!st)
        st = oct_model_load_file(ctx, j->model, 0, &m);
    if (!st)
        st = oct_dataset_open(ctx, j->data, m, 4, &ds);
    oct_samples samples = oct_dataset_samples(ds);
    if (!st)
        st = oct_quant_options_new(ctx, &qo);
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
    oct_dataset_close(ds);
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
    if (argc != 3) {
        fprintf(stderr, "usage: test_threads MODEL DATA\n");
        return 2;
    }
    if (access(argv[1], R_OK) || access(argv[2], R_OK)) {
        printf("SKIP: needs %s and %s (not found)\n", argv[1], argv[2]);
        return 77;
    }
    char dir[] = "/tmp/octet_test_threads.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    job seq = {argv[1], argv[2], "", 0}, par[2] = {{argv[1], argv[2], "", 0},
                                                  {argv[1], argv[2], "", 0}};
    snprintf(seq.base, sizeof seq.base, "%s/seq", dir);
    snprintf(par[0].base, sizeof par[0].base, "%s/t0", dir);
    snprintf(par[1].base, sizeof par[1].base, "%s/t1", dir);
    run_job(&seq);
    int failures = 0;
    if (seq.st) {
        fprintf(stderr, "FAIL: the sequential job failed (status %d)\n", seq.st);
        return 1;
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, run_job, &par[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        char a[600], b[600];
        if (par[i].st) {
            fprintf(stderr, "FAIL: thread %d failed (status %d)\n", i, par[i].st);
            failures++;
            continue;
        }
        static const char *const exts[] = {".qdq.onnx", ".o"};
        for (int e = 0; e < 2; e++) {
            snprintf(a, sizeof a, "%s%s", seq.base, exts[e]);
            snprintf(b, sizeof b, "%s%s", par[i].base, exts[e]);
            int same = same_file(a, b);
            printf("%s thread %d: %s equals the sequential run's\n", same ? "PASS" : "FAIL",
                   i, exts[e]);
            failures += !same;
            unlink(b);
        }
    }
    char path[600];
    snprintf(path, sizeof path, "%s.qdq.onnx", seq.base);
    unlink(path);
    snprintf(path, sizeof path, "%s.o", seq.base);
    unlink(path);
    rmdir(dir);
    printf("%d passed, %d failed\n", 4 - failures, failures);
    return failures ? 1 : 0;
}
