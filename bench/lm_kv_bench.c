/*
 * lm_kv_bench.c: decode speed of a language model on the interpreter, the
 * JIT with the caller-side cache (the graph as written: each step's
 * present outputs copied back into the past feed) and the JIT with the
 * compiled in-place cache (oct_lm_set "kv-cache" "inplace"), through the
 * public API.  Each engine is prepared once (JIT compilation not timed),
 * then the engines take turns generating N greedy tokens from a prompt,
 * ROUNDS times; prints the best and median tokens/s of prefill and decode
 * per engine (the best is the figure least disturbed by other processes on
 * a shared machine) and the cache bytes a decode step writes.  Build and
 * run from the project root after building octet:
 *
 *   cc -O2 -Iinclude bench/lm_kv_bench.c build/liboctet.so -Wl,-rpath,build \
 *      -o /tmp/lmkb && /tmp/lmkb DECODE.onnx [PREFILL.onnx] [N] [ROUNDS]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octet/octet.h"

enum { ENGINES = 3 };
static const char *const names[ENGINES] = {"interp", "jit", "jit + kv-cache=inplace"};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fail(oct_ctx *ctx, const char *what)
{
    fprintf(stderr, "lm_kv_bench: %s failed\n", what);
    for (size_t i = 0; i < oct_diag_count(ctx); i++)
        fprintf(stderr, "  %s\n", oct_diag_get(ctx, i)->message);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: lm_kv_bench DECODE.onnx [PREFILL.onnx|-] [N] [ROUNDS]\n");
        return 2;
    }
    const char *prefill = argc > 2 && strcmp(argv[2], "-") ? argv[2] : NULL;
    size_t n = argc > 3 ? (size_t)atol(argv[3]) : 200;
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    /* BOS and the first 11 tokens stories260k generates greedily after it */
    const int32_t prompt[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
    size_t n_prompt = sizeof prompt / sizeof prompt[0];
    oct_ctx *ctx = oct_ctx_new();
    oct_model *dec, *pre = NULL;
    if (oct_model_load_file(ctx, argv[1], 0, &dec) ||
        (prefill && oct_model_load_file(ctx, prefill, 0, &pre)))
        fail(ctx, "loading");
    oct_lm *lm[ENGINES];
    for (int e = 0; e < ENGINES; e++) {
        if (oct_lm_open(ctx, dec, pre, e ? "jit" : "interp", &lm[e]))
            fail(ctx, "oct_lm_open");
        if (e == 2 && oct_lm_set(lm[e], "kv-cache", "inplace"))
            fail(ctx, "kv-cache inplace");
    }
    int32_t *out = malloc(n * sizeof *out);
    double *pre_s = calloc((size_t)(ENGINES * rounds), sizeof *pre_s);
    double *dec_s = calloc((size_t)(ENGINES * rounds), sizeof *dec_s);
    size_t pre_tok = 0, dec_tok = 0, got;
    for (int r = -1; r < rounds; r++) /* round -1 prepares (compiles) */
        for (int e = 0; e < ENGINES; e++) {
            oct_lm_timing tm;
            if (oct_lm_generate(lm[e], prompt, n_prompt, n, NULL, NULL, out, &got, &tm))
                fail(ctx, names[e]);
            if (r < 0)
                continue;
            pre_s[e * rounds + r] = tm.prefill_seconds;
            dec_s[e * rounds + r] = tm.decode_seconds;
            pre_tok = tm.prefill_tokens;
            dec_tok = tm.decode_tokens;
        }
    printf("%zu-token prompt%s, %zu decode steps, %d rounds (tokens/s: best, median)\n",
           pre_tok, pre ? " through the prefill graph" : "", dec_tok, rounds);
    for (int e = 0; e < ENGINES; e++) {
        qsort(pre_s + e * rounds, (size_t)rounds, sizeof *pre_s, cmp_double);
        qsort(dec_s + e * rounds, (size_t)rounds, sizeof *dec_s, cmp_double);
        double pb = pre_s[e * rounds], pm = pre_s[e * rounds + rounds / 2];
        double db = dec_s[e * rounds], dm = dec_s[e * rounds + rounds / 2];
        printf("  %-24s prefill %9.1f %9.1f   decode %9.1f %9.1f\n", names[e],
               (double)pre_tok / pb, (double)pre_tok / pm, (double)dec_tok / db,
               (double)dec_tok / dm);
    }
    for (int e = 0; e < ENGINES; e++)
        oct_lm_free(lm[e]);
    free(out);
    free(pre_s);
    free(dec_s);
    oct_ctx_free(ctx);
    return 0;
}
