/*
 * test_lm_oom.c: out-of-memory paths of the language-model driver, through
 * the public API as a library user calls it: load the tokenizer and encode
 * a prompt, load a decode and a prefill graph, oct_lm_open on the
 * interpreter, generate three tokens (prompt through the prefill graph),
 * then the perplexity of two 64-token windows.  The job first runs without
 * a failure to count its allocations A, then once for every N = 1..A with
 * oct_ctx_fail_alloc_at(N): each run must return a non-OK status with an
 * error diagnostic, and once the arena is released no byte may be live
 * (every oct_malloc of the driver and the tokenizer was freed on the
 * failure path).  A crash fails the test; LeakSanitizer covers the rest in
 * the sanitizer build.
 *
 * Usage: test_lm_oom DECODE.onnx PREFILL.onnx TOK.bin (exit 77 if missing)
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ir/ir.h"
#include "octet/octet.h"

static const char *decode_path, *prefill_path, *tok_path;

static oct_status job(oct_ctx *ctx)
{
    oct_tokenizer *tok;
    oct_model *dec, *pre;
    oct_lm *lm = NULL;
    int32_t *ids = NULL, out[3];
    size_t n_ids = 0, n_out = 0;
    oct_tensor stream = {0};
    oct_status st = oct_tokenizer_load(ctx, tok_path, &tok);
    if (!st)
        st = oct_tokenizer_encode(ctx, tok, "Once upon", 9, 1, &ids, &n_ids);
    if (!st)
        st = oct_model_load_file(ctx, decode_path, 0, &dec);
    if (!st)
        st = oct_model_load_file(ctx, prefill_path, 0, &pre);
    if (!st)
        st = oct_lm_open(ctx, dec, pre, "interp", &lm);
    if (!st)
        st = oct_lm_set(lm, "temperature", "0.5");
    if (!st)
        st = oct_lm_generate(lm, ids, n_ids, 3, NULL, NULL, out, &n_out, NULL);
    int64_t dims[1] = {128};
    if (!st)
        st = oct_tensor_new(ctx, OCT_DT_INT32, 1, dims, &stream);
    for (int i = 0; !st && i < 128; i++)
        ((int32_t *)stream.data)[i] = (i * 37) % 500;
    oct_lm_perplexity ppl;
    if (!st)
        st = oct_lm_eval_perplexity(lm, &stream, 64, 0, NULL, NULL, &ppl);
    if (stream.data)
        oct_tensor_release(ctx, &stream);
    oct_buffer_free(ctx, ids, n_ids * sizeof *ids);
    oct_lm_free(lm);
    return st;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_lm_oom DECODE.onnx PREFILL.onnx TOK.bin\n");
        return 1;
    }
    for (int i = 1; i < 4; i++)
        if (access(argv[i], R_OK) != 0) {
            printf("SKIP: needs %s (not found)\n", argv[i]);
            return 77;
        }
    decode_path = argv[1], prefill_path = argv[2], tok_path = argv[3];
    oct_ctx *ctx = oct_ctx_new();
    oct_status st = job(ctx);
    uint64_t total = oct_ctx_alloc_count(ctx);
    if (st || oct_error_count(ctx)) {
        fprintf(stderr, "FAIL: the job fails without injected failures (status %d)\n", st);
        oct_ctx_free(ctx);
        return 1;
    }
    oct_ctx_free(ctx);
    printf("%llu allocations in one run\n", (unsigned long long)total);
    int failures = 0;
    for (uint64_t n = 1; n <= total && failures <= 20; n++) {
        ctx = oct_ctx_new();
        oct_ctx_fail_alloc_at(ctx, n);
        st = job(ctx);
        const char *why = NULL;
        if (oct_ctx_alloc_count(ctx) < n)
            why = st ? "failed although no allocation was failed"
                     : "the run made fewer allocations than the counted one";
        else if (st == OCT_OK)
            why = "succeeded although an allocation failed";
        else if (!oct_error_count(ctx))
            why = "failed without an error diagnostic";
        ir_arena_release(ctx);
        if (!why && ctx->bytes_live)
            why = "context bytes still live after the arena is released (leak)";
        if (why) {
            fprintf(stderr, "FAIL: allocation %llu: %s (status %d, %llu bytes live)\n",
                    (unsigned long long)n, why, (int)st, (unsigned long long)ctx->bytes_live);
            failures++;
        }
        oct_ctx_free(ctx);
    }
    if (!failures)
        printf("every one of %llu allocation failures handled\n", (unsigned long long)total);
    return failures ? 1 : 0;
}
