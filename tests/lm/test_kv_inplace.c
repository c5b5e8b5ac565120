/*
 * test_kv_inplace.c: the decode graph compiled with the in-place key/value
 * cache (oct_lm_set "kv-cache" "inplace" on the JIT) computes what the
 * graph as written computes on the reference interpreter, which keeps the
 * cache on the caller's side and copies present[..., P, :] back each step.
 * Both generate N greedy tokens from BOS through the public API; at every
 * step the logits the token was chosen from (oct_lm_logits inside the token
 * callback) must agree within 1e-5 of the step's largest |logit|, and the
 * tokens must be equal.  A second generation on the same model starts from
 * an emptied cache and must give the same tokens again.  Then the pattern
 * is refused with a diagnostic on the interpreter engine (the cache lives
 * in compiled code), and set after a generation.
 *
 * Usage: test_kv_inplace DECODE.onnx N (exit 77 if the model is missing)
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "octet/octet.h"

typedef struct recorder {
    const oct_lm *lm;
    float *logits;          /* steps * vocab */
    size_t vocab, steps, cap;
} recorder;

static oct_status record(void *user, int32_t id)
{
    (void)id;
    recorder *r = user;
    if (r->steps < r->cap)
        memcpy(r->logits + r->steps * r->vocab, oct_lm_logits(r->lm),
               r->vocab * sizeof(float));
    r->steps++;
    return OCT_OK;
}

static void print_diags(oct_ctx *ctx)
{
    for (size_t i = 0; i < oct_diag_count(ctx); i++)
        fprintf(stderr, "  %s\n", oct_diag_get(ctx, i)->message);
}

/* Generates n greedy tokens from BOS on engine, recording every step. */
static int run(const char *path, const char *engine, bool inplace, size_t n, int32_t *ids,
               recorder *rec, int32_t *again)
{
    oct_ctx *ctx = oct_ctx_new();
    oct_model *m;
    oct_lm *lm = NULL;
    int32_t bos = 1;
    size_t got = 0;
    oct_status st = oct_model_load_file(ctx, path, 0, &m);
    if (!st)
        st = oct_lm_open(ctx, m, NULL, engine, &lm);
    if (!st && inplace)
        st = oct_lm_set(lm, "kv-cache", "inplace");
    if (!st) {
        rec->lm = lm;
        rec->vocab = oct_lm_vocab_size(lm);
        rec->cap = n;
        rec->logits = malloc(n * rec->vocab * sizeof(float));
        st = oct_lm_generate(lm, &bos, 1, n, record, rec, ids, &got, NULL);
    }
    if (!st && again)
        st = oct_lm_generate(lm, &bos, 1, n, NULL, NULL, again, &got, NULL);
    if (!st && inplace && oct_lm_set(lm, "kv-cache", "none") == OCT_OK) {
        fprintf(stderr, "FAIL kv-cache changed after a generation\n");
        st = OCT_EINTERNAL;
    }
    if (st) {
        fprintf(stderr, "FAIL %s%s: status %d\n", engine, inplace ? " in place" : "", st);
        print_diags(ctx);
    }
    oct_lm_free(lm);
    oct_ctx_free(ctx);
    return st ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    if (access(argv[1], R_OK)) {
        printf("skipped: %s is missing (../shared)\n", argv[1]);
        return 77;
    }
    size_t n = (size_t)atol(argv[2]);
    int32_t *ref_ids = calloc(n, sizeof *ref_ids), *ids = calloc(n, sizeof *ids);
    int32_t *again = calloc(n, sizeof *again);
    recorder ref = {0}, got = {0};
    int fails = run(argv[1], "interp", false, n, ref_ids, &ref, NULL);
    fails += run(argv[1], "jit", true, n, ids, &got, again);
    if (fails)
        return 1;
    double worst = 0;
    size_t worst_step = 0, first_diff = n;
    for (size_t s = 0; s < n; s++) {
        const float *a = ref.logits + s * ref.vocab, *b = got.logits + s * got.vocab;
        double scale = 0, diff = 0;
        for (size_t j = 0; j < ref.vocab; j++) {
            scale = fmax(scale, fabs(a[j]));
            diff = fmax(diff, fabs((double)a[j] - b[j]));
        }
        if (!(diff / scale <= worst) || diff != diff) {
            worst = diff / scale;
            worst_step = s;
        }
        if (ids[s] != ref_ids[s] && first_diff == n)
            first_diff = s;
    }
    bool ok_logits = ref.steps == n && got.steps == n && worst <= 1e-5;
    bool ok_ids = first_diff == n;
    bool ok_again = memcmp(ids, again, n * sizeof *ids) == 0;
    printf("%s logits of %zu steps within 1e-5 relative (worst %.3g at step %zu)\n",
           ok_logits ? "ok  " : "FAIL", n, worst, worst_step);
    printf("%s %zu greedy ids equal the interpreter's (first difference: %zu)\n",
           ok_ids ? "ok  " : "FAIL", n, first_diff);
    printf("%s a second generation from an emptied cache repeats them\n",
           ok_again ? "ok  " : "FAIL");
    fails += !ok_logits + !ok_ids + !ok_again;

    /* the in-place cache needs the JIT */
    oct_ctx *ctx = oct_ctx_new();
    oct_model *m;
    oct_lm *lm = NULL;
    oct_status st = oct_model_load_file(ctx, argv[1], 0, &m);
    if (!st)
        st = oct_lm_open(ctx, m, NULL, "interp", &lm);
    oct_status refused = st ? OCT_OK : oct_lm_set(lm, "kv-cache", "inplace");
    size_t nd = oct_diag_count(ctx);
    bool ok_refused = refused == OCT_EUSAGE && nd &&
                      strstr(oct_diag_get(ctx, nd - 1)->message, "jit");
    printf("%s kv-cache inplace on the interpreter is a usage error naming jit\n",
           ok_refused ? "ok  " : "FAIL");
    fails += !ok_refused;
    oct_lm_free(lm);
    oct_ctx_free(ctx);
    free(ref.logits);
    free(got.logits);
    free(ref_ids);
    free(ids);
    free(again);
    return fails ? 1 : 0;
}
