/*
 * tok_tool.c: the tokenizer of the public API (octet.h, oct_tokenizer_*)
 * as a small program for tests/lm/lm_tests.py, which compares it with
 * llama2.c's Python reference.  Sees only the public header.
 *   tok_tool TOK.bin encode TEXT   prints the ids (BOS first), one line
 *   tok_tool TOK.bin decode ID...  writes the bytes the ids stand for
 * Exit status: the oct_status of the failing call, diagnostics on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octet/octet.h"

static int finish(oct_ctx *ctx, oct_status st)
{
    char line[1024];
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        oct_diag_format(oct_diag_get(ctx, i), line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
    oct_ctx_free(ctx);
    return (int)st;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[2], "encode") && strcmp(argv[2], "decode")) ||
        (!strcmp(argv[2], "encode") && argc != 4)) {
        fprintf(stderr, "usage: tok_tool TOK.bin encode TEXT | decode ID...\n");
        return 1;
    }
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx)
        return 4;
    oct_tokenizer *tok;
    oct_status st = oct_tokenizer_load(ctx, argv[1], &tok);
    if (st)
        return finish(ctx, st);
    if (!strcmp(argv[2], "encode")) {
        int32_t *ids;
        size_t n;
        st = oct_tokenizer_encode(ctx, tok, argv[3], strlen(argv[3]), 1, &ids, &n);
        for (size_t i = 0; !st && i < n; i++)
            printf("%s%d", i ? " " : "", ids[i]);
        if (!st)
            printf("\n");
        if (!st)
            oct_buffer_free(ctx, ids, n * sizeof *ids);
        return finish(ctx, st);
    }
    int32_t prev = -1;
    for (int i = 3; !st && i < argc; i++) {
        int32_t id = (int32_t)strtol(argv[i], NULL, 10);
        const char *bytes;
        size_t len;
        st = oct_tokenizer_decode(ctx, tok, prev, id, &bytes, &len);
        if (!st)
            fwrite(bytes, 1, len, stdout);
        prev = id;
    }
    return finish(ctx, st);
}
