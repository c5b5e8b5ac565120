/*
 * fuzz_ir_text.c: libFuzzer target for the text IR parser (src/ir/parse.c):
 * parse the input; when it parses, print it in full, parse that again and
 * check the second print is byte for byte the first (the parser reads back
 * everything the printer writes), then run the verifier (which sorts the
 * nodes) and print once more; "quant" lines are also read as the quant
 * passes' state and written back (src/passes/quant_text.c).  Seeds: the
 * golden inputs and outputs under
 * tests/golden (scripts/fuzz.sh).  A round-trip mismatch aborts, so
 * libFuzzer reports it like a crash.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "passes/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The model printed with `full` into malloc'ed memory (NULL on failure). */
static char *print_full(const ir_model *m, size_t *len)
{
    char *buf = NULL;
    FILE *mem = open_memstream(&buf, len);
    if (!mem)
        return NULL;
    ir_print_text_opts(m, mem, &(ir_print_opts){.full = true});
    if (fclose(mem) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oct_ctx *ctx = fuzz_ctx();
    if (!ctx)
        return 0;
    ir_model *m = NULL;
    if (ir_parse_text(ctx, (const char *)data, size, "fuzz.txt", &m) == OCT_OK) {
        size_t len1 = 0, len2 = 0;
        char *first = print_full(m, &len1);
        ir_model *again = NULL;
        if (first && ir_parse_text(ctx, first, len1, "printed.txt", &again) != OCT_OK) {
            fprintf(stderr, "printed text does not parse:\n%.*s\n", (int)len1, first);
            abort();
        }
        char *second = again ? print_full(again, &len2) : NULL;
        if (first && second && (len1 != len2 || memcmp(first, second, len1))) {
            fprintf(stderr, "round trip differs:\n%.*s\n---\n%.*s\n", (int)len1,
                    first, (int)len2, second);
            abort();
        }
        free(first);
        free(second);
        if (m->n_quant_lines) { /* the quant state: read, then written back */
            quant_session s;
            quant_session_init(&s, NULL);
            ctx->quant = &s;
            unsigned current = PASS_A_SHAPES;
            if (quant_session_begin(ctx, m, &current) == OCT_OK)
                quant_session_sync(ctx, m, current);
            quant_session_free(&s, ctx);
            ctx->quant = NULL;
        }
        if (ir_verify(m, ctx) == OCT_OK) {
            char *sorted = print_full(m, &len1);
            free(sorted);
        }
    }
    oct_ctx_free(ctx);
    return 0;
}
