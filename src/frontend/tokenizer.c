/*
 * tokenizer.c: llama2.c's tokenizer format (tokenizer.h).  The file is
 * untrusted input: an int32 max_token_length, then pieces to the end of
 * the file, each a float32 score, an int32 byte length and that many
 * bytes (little-endian, as llama2.c's tokenizer export writes them on x86).
 * Every length is checked against the bytes left and against
 * max_token_length before it is used, and a NaN score is refused (it would
 * make the merge order depend on comparison quirks); the diagnostic names
 * the file and the byte offset of the bad field.  Pieces stay in the
 * copied image; a table sorted by bytes (then id) serves the lookups of
 * encoding, so equal pieces resolve to the lowest id.
 *
 * Encoding is llama2.c's: BOS, a dummy-prefix space, one piece per UTF-8
 * character (byte pieces where a character has none), then greedy merges
 * of the adjacent pair whose concatenation is the highest-scoring piece.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/tokenizer.h"

/* Pieces may be at most this long, whatever the file declares: llama2.c's
 * own files stay far below it, and it bounds the merge buffer. */
enum { TOK_MAX_PIECE = 1 << 16 };

static uint32_t load_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static float load_f32le(const uint8_t *p)
{
    uint32_t bits = load_u32le(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Byte order, then length (a prefix first), then id. */
static int entry_cmp(const void *a, const void *b)
{
    const fe_tok_entry *x = a, *y = b;
    uint32_t common = x->len < y->len ? x->len : y->len;
    int c = common ? memcmp(x->bytes, y->bytes, common) : 0;
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static oct_status malformed(oct_ctx *ctx, const char *name, size_t offset, const char *what)
{
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, NULL,
                     "tokenizer '%s': %s at byte %zu (not a llama2.c tokenizer file?)",
                     name, what, offset);
}

oct_status fe_tokenizer_from_memory(oct_ctx *ctx, const void *data, size_t len,
                                    const char *name, fe_tokenizer **out)
{
    *out = NULL;
    if (!name)
        name = "<memory>";
    if (len < 4)
        return malformed(ctx, name, 0, "no max_token_length header (file too short)");
    uint8_t *image = ir_alloc(ctx, len);
    if (!image)
        return OCT_EINTERNAL;
    memcpy(image, data, len);
    uint32_t max_len = load_u32le(image);
    if (max_len == 0 || max_len > TOK_MAX_PIECE)
        return malformed(ctx, name, 0, "max_token_length out of range (1 to 65536)");
    /* first pass: count and check the pieces */
    size_t off = 4, count = 0;
    while (off < len) {
        if (len - off < 8)
            return malformed(ctx, name, off, "truncated piece header");
        float score = load_f32le(image + off);
        uint32_t plen = load_u32le(image + off + 4);
        if (isnan(score))
            return malformed(ctx, name, off, "score is NaN");
        if (plen > max_len)
            return malformed(ctx, name, off + 4,
                             "piece length larger than max_token_length");
        if (plen > len - off - 8)
            return malformed(ctx, name, off + 4, "piece runs past the end of the file");
        off += 8 + plen;
        count++;
    }
    if (count == 0)
        return malformed(ctx, name, 4, "no pieces");
    if (count > INT32_MAX)
        return malformed(ctx, name, 4, "too many pieces");
    fe_tokenizer *t = ir_alloc(ctx, sizeof *t);
    if (!t || !(t->name = ir_strdup(ctx, name)))
        return OCT_EINTERNAL;
    t->n = (uint32_t)count;
    t->max_len = max_len;
    t->piece = ir_alloc_array(ctx, count, sizeof *t->piece);
    t->len = ir_alloc_array(ctx, count, sizeof *t->len);
    t->score = ir_alloc_array(ctx, count, sizeof *t->score);
    t->sorted = ir_alloc_array(ctx, count, sizeof *t->sorted);
    if (!t->piece || !t->len || !t->score || !t->sorted)
        return OCT_EINTERNAL;
    off = 4;
    for (uint32_t i = 0; i < t->n; i++) {
        t->score[i] = load_f32le(image + off);
        t->len[i] = load_u32le(image + off + 4);
        t->piece[i] = image + off + 8;
        t->sorted[i] = (fe_tok_entry){t->piece[i], t->len[i], i};
        off += 8 + t->len[i];
    }
    qsort(t->sorted, t->n, sizeof *t->sorted, entry_cmp);
    for (int b = 0; b < 256; b++)
        t->byte_value[b] = (uint8_t)b;
    *out = t;
    return OCT_OK;
}

oct_status fe_tokenizer_load(oct_ctx *ctx, const char *path, fe_tokenizer **out)
{
    uint8_t *data;
    size_t len;
    *out = NULL;
    oct_status st = ir_read_file(ctx, path, ctx->limits.max_file_bytes, &data, &len);
    if (st)
        return st;
    ir_note_input(ctx, path);
    st = fe_tokenizer_from_memory(ctx, data, len, path, out);
    oct_free(ctx, data, len);
    return st;
}

int32_t fe_tokenizer_lookup(const fe_tokenizer *t, const uint8_t *bytes, size_t len)
{
    if (len > t->max_len)
        return -1;
    /* lower bound of (bytes, len, id 0): the lowest id among equal pieces */
    fe_tok_entry key = {bytes, (uint32_t)len, 0};
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry_cmp(&t->sorted[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->n && t->sorted[lo].len == len &&
        (len == 0 || !memcmp(t->sorted[lo].bytes, bytes, len)))
        return (int32_t)t->sorted[lo].id;
    return -1;
}

/* Appends the pieces of one UTF-8 character (or a stray byte): its own
 * piece, else one byte piece per byte. */
static oct_status push_char(oct_ctx *ctx, const fe_tokenizer *t, const uint8_t *c,
                            size_t clen, int32_t *ids, size_t *n)
{
    int32_t id = fe_tokenizer_lookup(t, c, clen);
    if (id >= 0) {
        ids[(*n)++] = id;
        return OCT_OK;
    }
    for (size_t i = 0; i < clen; i++) {
        int64_t byte_id = (int64_t)c[i] + FE_TOK_BYTE0;
        if (byte_id >= t->n)
            return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, NULL,
                             "tokenizer '%s': byte 0x%02X has no piece and no byte "
                             "piece <0x%02X> (the vocabulary has %u pieces)",
                             t->name, c[i], c[i], t->n);
        ids[(*n)++] = (int32_t)byte_id;
    }
    return OCT_OK;
}

oct_status fe_tokenizer_encode(oct_ctx *ctx, const fe_tokenizer *t, const char *text,
                               size_t len, bool bos, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    /* at most one id per byte, the prefix space and BOS */
    if (len > SIZE_MAX / sizeof(int32_t) - 2)
        return oct_error(ctx, OCT_EINPUT, "text to encode is too long");
    size_t cap = len + 2;
    int32_t *out = oct_malloc(ctx, cap * sizeof *out);
    uint8_t *pair = oct_malloc(ctx, 2 * (size_t)t->max_len);
    if (!out || !pair) {
        oct_free(ctx, out, cap * sizeof *out);
        oct_free(ctx, pair, 2 * (size_t)t->max_len);
        return OCT_EINTERNAL;
    }
    size_t count = 0;
    oct_status st = OCT_OK;
    if (bos && t->n <= FE_TOK_BOS)
        st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, NULL,
                       "tokenizer '%s': no BOS piece (id %d; the vocabulary has %u "
                       "piece%s)", t->name, FE_TOK_BOS, t->n, t->n == 1 ? "" : "s");
    else if (bos)
        out[count++] = FE_TOK_BOS;
    size_t first = count;
    if (!st && len) {
        static const uint8_t space = ' ';
        st = push_char(ctx, t, &space, 1, out, &count);
    }
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; !st && i < len;) {
        /* a character: a byte and the continuation bytes (10xxxxxx) after
         * it, four bytes at most */
        size_t clen = 1;
        while (clen < 4 && i + clen < len && (s[i + clen] & 0xC0) == 0x80)
            clen++;
        st = push_char(ctx, t, s + i, clen, out, &count);
        i += clen;
    }
    /* merges; the BOS never takes part (it is not text) */
    while (!st && count > first + 1) {
        /* llama2.c's floor: a piece scored -1e10 or lower never merges */
        float best_score = -1e10f;
        int32_t best_id = -1;
        size_t best_at = 0;
        for (size_t i = first; i + 1 < count; i++) {
            uint32_t a = (uint32_t)out[i], b = (uint32_t)out[i + 1];
            if ((size_t)t->len[a] + t->len[b] > t->max_len)
                continue;
            memcpy(pair, t->piece[a], t->len[a]);
            memcpy(pair + t->len[a], t->piece[b], t->len[b]);
            int32_t id = fe_tokenizer_lookup(t, pair, (size_t)t->len[a] + t->len[b]);
            if (id >= 0 && t->score[id] > best_score) {
                best_score = t->score[id];
                best_id = id;
                best_at = i;
            }
        }
        if (best_id < 0)
            break;
        out[best_at] = best_id;
        memmove(out + best_at + 1, out + best_at + 2,
                (count - best_at - 2) * sizeof *out);
        count--;
    }
    oct_free(ctx, pair, 2 * (size_t)t->max_len);
    if (st) {
        oct_free(ctx, out, cap * sizeof *out);
        return st;
    }
    /* hand over exactly count entries (callers free count * size) */
    int32_t *exact = count ? oct_malloc(ctx, count * sizeof *exact) : NULL;
    if (count && !exact) {
        oct_free(ctx, out, cap * sizeof *out);
        return OCT_EINTERNAL;
    }
    if (count)
        memcpy(exact, out, count * sizeof *exact);
    oct_free(ctx, out, cap * sizeof *out);
    *ids = exact;
    *n = count;
    return OCT_OK;
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

oct_status fe_tokenizer_decode(oct_ctx *ctx, const fe_tokenizer *t, int32_t prev,
                               int32_t id, const uint8_t **bytes, size_t *len)
{
    static const uint8_t none[1];
    *bytes = none;
    *len = 0;
    if (id < 0 || (uint32_t)id >= t->n)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, NULL,
                         "token id %d is outside the vocabulary of tokenizer '%s' "
                         "(0 to %u)", id, t->name, t->n - 1);
    if (id == FE_TOK_BOS)
        return OCT_OK;
    const uint8_t *p = t->piece[id];
    size_t plen = t->len[id];
    if (prev == FE_TOK_BOS && plen && p[0] == ' ') {
        p++;
        plen--;
    }
    if (plen == 6 && !memcmp(p, "<0x", 3) && p[5] == '>') {
        int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
        if (hi >= 0 && lo >= 0) {
            *bytes = &t->byte_value[hi * 16 + lo];
            *len = 1;
            return OCT_OK;
        }
    }
    *bytes = p;
    *len = plen;
    return OCT_OK;
}
