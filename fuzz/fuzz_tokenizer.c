/*
 * fuzz_tokenizer.c: libFuzzer target for the llama2.c tokenizer reader
 * (src/frontend/tokenizer.c): the input is a tokenizer image (header,
 * scores, piece lengths and bytes, all untrusted).  When it parses, a few
 * fixed texts (ASCII, multi-byte UTF-8, a stray continuation byte, a
 * newline) and a text taken from the image's own last bytes are encoded,
 * every id produced is checked to be in the vocabulary (an id outside it
 * aborts: a finding), and every piece is decoded after BOS and after
 * nothing.
 */
#include <stdlib.h>

#include "fuzz_common.h"
#include "frontend/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode_checked(oct_ctx *ctx, const fe_tokenizer *t, const char *text,
                           size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0;
    if (fe_tokenizer_encode(ctx, t, text, len, true, &ids, &n) != OCT_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= t->n)
            abort();
        const uint8_t *bytes;
        size_t blen;
        fe_tokenizer_decode(ctx, t, i ? ids[i - 1] : -1, ids[i], &bytes, &blen);
    }
    oct_free(ctx, ids, n * sizeof *ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oct_ctx *ctx = fuzz_ctx();
    if (!ctx)
        return 0;
    fe_tokenizer *t = NULL;
    if (fe_tokenizer_from_memory(ctx, data, size, "fuzz.bin", &t) == OCT_OK) {
        static const char *const texts[] = {
            "Once upon a time, there was a little girl.", "caf\xc3\xa9 \xe2\x98\x83!",
            "\x80\xff stray\n\nbytes", "", " ",
        };
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
            encode_checked(ctx, t, texts[i], strlen(texts[i]));
        size_t tail = size < 64 ? size : 64;
        encode_checked(ctx, t, (const char *)data + size - tail, tail);
        for (uint32_t id = 0; id < t->n && id < 4096; id++) {
            const uint8_t *bytes;
            size_t blen;
            fe_tokenizer_decode(ctx, t, FE_TOK_BOS, (int32_t)id, &bytes, &blen);
            fe_tokenizer_decode(ctx, t, -1, (int32_t)id, &bytes, &blen);
        }
    }
    oct_ctx_free(ctx);
    return 0;
}
