/*
 * tokenizer.h: the tokenizer of llama2.c checkpoints (tok512.bin and its
 * kin), read from an untrusted file, with byte-pair encoding by piece
 * scores and piece-by-piece decoding (tokenizer.c).  The public API wraps
 * it as oct_tokenizer (src/api/lm_tok.c); the fuzz target
 * fuzz/fuzz_tokenizer.c calls it directly.
 */
#ifndef OCTET_FRONTEND_TOKENIZER_H
#define OCTET_FRONTEND_TOKENIZER_H

#include "ir/ir.h"

/* llama2.c's fixed special ids: the byte pieces <0x00>..<0xFF> follow them
 * (byte b is id b + FE_TOK_BYTE0). */
enum { FE_TOK_BOS = 1, FE_TOK_EOS = 2, FE_TOK_BYTE0 = 3 };

typedef struct fe_tok_entry {
    const uint8_t *bytes;   /* into the file image (not NUL-terminated) */
    uint32_t len;
    uint32_t id;
} fe_tok_entry;

typedef struct fe_tokenizer {
    const char *name;           /* the file, for diagnostics */
    uint32_t n;                 /* pieces (the vocabulary size) */
    uint32_t max_len;           /* the file's max_token_length */
    const uint8_t **piece;      /* n pieces, each len[i] bytes */
    uint32_t *len;
    float *score;
    fe_tok_entry *sorted;       /* the pieces by bytes, then by id */
    uint8_t byte_value[256];    /* byte_value[b] == b: what <0xHH> decodes to */
} fe_tokenizer;

/* Parses a tokenizer image: int32 max_token_length, then until the end
 * {float32 score, int32 length, length bytes} per piece, little-endian.
 * Every length is checked against the image and max_token_length; a
 * malformed image is OCT_EINPUT with a diagnostic naming `name` and the
 * byte offset.  Everything lives in ctx's arena (the image is copied). */
oct_status fe_tokenizer_from_memory(oct_ctx *ctx, const void *data, size_t len,
                                    const char *name, fe_tokenizer **out);
/* Reads and parses a tokenizer file (the context's file-size limit). */
oct_status fe_tokenizer_load(oct_ctx *ctx, const char *path, fe_tokenizer **out);

/* The id of the piece equal to bytes[0..len), the lowest one if several
 * are; -1 if none. */
int32_t fe_tokenizer_lookup(const fe_tokenizer *t, const uint8_t *bytes, size_t len);

/* Encodes text (len bytes, UTF-8; other bytes are taken as they come) as
 * llama2.c does: BOS if asked, then " " + text split into UTF-8 characters,
 * each its piece or, if it has none, one byte piece per byte; then merges
 * the adjacent pair whose concatenation is the piece of highest score
 * (the leftmost pair on ties) until no pair merges.  Empty text gives BOS
 * alone (or nothing).  *ids is oct_malloc'ed, *n entries; free with
 * oct_free(ctx, *ids, *n * sizeof **ids) (a NULL *ids when *n is 0). */
oct_status fe_tokenizer_encode(oct_ctx *ctx, const fe_tokenizer *t, const char *text,
                               size_t len, bool bos, int32_t **ids, size_t *n);

/* The bytes id stands for after prev, as llama2.c prints them: BOS gives
 * nothing, a piece after BOS loses its leading space, a piece written
 * "<0xHH>" is that byte.  *bytes points into t.
 * OCT_EINPUT with a diagnostic if id is outside the vocabulary. */
oct_status fe_tokenizer_decode(oct_ctx *ctx, const fe_tokenizer *t, int32_t prev,
                               int32_t id, const uint8_t **bytes, size_t *len);

#endif
