/*
 * lm_tok.c: the public face of the llama2.c tokenizer (octet.h:
 * oct_tokenizer_*), a thin wrapper over src/frontend/tokenizer.c, which
 * reads the untrusted file and does the encoding.
 */
#include "api/lm.h"
#include "frontend/tokenizer.h"

struct oct_tokenizer {
    fe_tokenizer *fe;
};

oct_status oct_tokenizer_load(oct_ctx *ctx, const char *path, oct_tokenizer **out)
{
    if (!ctx || !path || !out)
        return OCT_EUSAGE;
    *out = NULL;
    oct_tokenizer *t = ir_alloc(ctx, sizeof *t);
    if (!t)
        return OCT_EINTERNAL;
    oct_status st = fe_tokenizer_load(ctx, path, &t->fe);
    if (!st)
        *out = t;
    return st;
}

size_t oct_tokenizer_vocab_size(const oct_tokenizer *t)
{
    return t ? t->fe->n : 0;
}

oct_status oct_tokenizer_encode(oct_ctx *ctx, const oct_tokenizer *t, const char *text,
                                size_t len, int bos, int32_t **ids, size_t *n)
{
    if (!ctx || !t || (!text && len) || !ids || !n)
        return OCT_EUSAGE;
    return fe_tokenizer_encode(ctx, t->fe, text ? text : "", len, bos != 0, ids, n);
}

oct_status oct_tokenizer_decode(oct_ctx *ctx, const oct_tokenizer *t, int32_t prev,
                                int32_t id, const char **bytes, size_t *len)
{
    if (!ctx || !t || !bytes || !len)
        return OCT_EUSAGE;
    const uint8_t *b;
    oct_status st = fe_tokenizer_decode(ctx, t->fe, prev, id, &b, len);
    *bytes = (const char *)b;
    return st;
}
