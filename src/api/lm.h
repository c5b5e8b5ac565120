/*
 * lm.h: what the language-model driver's files share (lm.c: recognising
 * the graph convention, the caller-side cache and generation; lm_eval.c:
 * perplexity; lm_tok.c: the tokenizer).  The public side is the "language
 * models" section of include/octet/octet.h.
 */
#ifndef OCTET_API_LM_H
#define OCTET_API_LM_H

#include "api/api.h"
#include "ir/kvnames.h"

/* What a runtime input of the convention is. */
typedef enum lm_role {
    LM_IDS,          /* input_ids [1,seq] */
    LM_POS,          /* position_ids [1,seq] */
    LM_MASK,         /* attention_mask [1,P+1] (decode) or [1,S] (prefill) */
    LM_PAST_KEY,     /* past_key_values.{l}.key [1,H,P,D] */
    LM_PAST_VALUE,   /* past_key_values.{l}.value */
} lm_role;

struct cJSON;

/* One graph of the convention and its feed. */
typedef struct lm_graph {
    const oct_model *model;      /* NULL: not given, or compiled (sig) */
    struct cJSON *sig;           /* a compiled graph's parsed signature */
    const char *path;            /* the file diagnostics name (may be NULL) */
    const char *what;            /* "decode" or "prefill", for diagnostics */
    oct_runner *runner;
    size_t n_in;                 /* runtime inputs, in the runner's order */
    oct_tensor *feed;            /* n_in: name, dtype, dims (declared: -1
                                  * symbolic), data once built */
    lm_role *role;
    size_t *layer;               /* of LM_PAST_* inputs */
    int64_t *dims;               /* n_in * 4: the feed's dims */
    bool built;                  /* feed dims resolved and data allocated */
    size_t n_out;
    int logits;                  /* output index */
    int *present_key, *present_value;   /* per layer: output index, -1 */
    size_t layers;               /* past (decode) or present (prefill) pairs */
    int64_t seq;                 /* tokens per run: 1, or S (-1: symbolic) */
} lm_graph;

typedef struct lm_inplace lm_inplace;

struct oct_lm {
    oct_ctx *ctx;
    bool jit;                    /* the graphs run on the JIT */
    bool kv_inplace;             /* "kv-cache" "inplace": lm_inplace.c */
    bool compiled;               /* oct_lm_open_compiled: the decode graph is
                                  * ep, always with the in-place cache */
    oct_entry_points ep;
    lm_inplace *inplace;         /* its state once the decode graph is compiled */
    lm_graph dec, pre;
    int64_t heads, head_dim;     /* H, D of the decode cache */
    int32_t kv_dtype;            /* its elements: FLOAT, or INT8 / FLOAT8E4M3FN
                                  * codes (`octet quantize --kv-cache`) */
    unsigned kv_bytes;           /* bytes per element: 4 or 1 */
    int64_t slots;               /* P (-1: symbolic until the feed is built) */
    int64_t vocab;               /* V */
    float *logits;               /* V floats: the last position's logits */
    double temperature;
    int64_t top_k;
    uint64_t seed;
    int64_t stop_id;
    int64_t cache_size;          /* P when the graph leaves it symbolic */
};

/* Resolves g's feed dims (symbolic batch 1, sequence seq, cache slots P)
 * and allocates zeroed data for every input (oct_malloc, released by
 * lm_graph_release).  Integer inputs get their defaults: position_ids
 * 0..seq-1, attention_mask ones. */
oct_status lm_feed_build(oct_lm *lm, lm_graph *g, int64_t seq);
void lm_graph_release(oct_lm *lm, lm_graph *g);

/* Stores integer v as element i of an int64 or int32 buffer. */
void lm_store_int(int32_t dtype, void *data, size_t i, int64_t v);

/* Checks that every id is in [0, V): OCT_EINPUT naming input_ids and the
 * index otherwise (`what` says where the ids come from). */
oct_status lm_check_ids(oct_lm *lm, const int64_t *ids, size_t n, const char *what);

/* The in-place key/value cache (lm_inplace.c).  lm_inplace_open, after
 * the decode runner is prepared, takes its compiled entry points and
 * allocates the cache buffers (OCT_EUNSUPPORTED saying why if the
 * compiled model lacks them); lm_inplace_clear empties them;
 * lm_inplace_cache gives the [1,H,stride,D] buffer of a layer's key or
 * value; lm_inplace_step runs one step on the feed's input_ids,
 * position_ids and attention_mask, copies the logits into lm->logits and
 * moves the new token's key and value into slot pos; lm_inplace_free
 * releases it all (NULL state: no-op). */
oct_status lm_inplace_open(oct_lm *lm);
void lm_inplace_clear(oct_lm *lm);
void *lm_inplace_cache(oct_lm *lm, size_t layer, bool value, int64_t *stride);
oct_status lm_inplace_step(oct_lm *lm, int64_t pos);
void lm_inplace_free(oct_lm *lm);

/* Recognises the decode graph lm->dec (model or signature) and its cache:
 * lm->heads, head_dim, slots, vocab (lm.c). */
oct_status lm_scan_decode(oct_lm *lm);

/* A compiled graph's inputs and outputs, from its signature (lm_compiled.c):
 * the count, and entry i as a tensor description (name, dtype, rank, dims
 * with -1 for a symbolic one; OCT_EINPUT if the entry is malformed);
 * lm_sig_free deletes the parsed signatures. */
size_t lm_sig_count(const lm_graph *g, bool output);
oct_status lm_sig_tensor(oct_lm *lm, const lm_graph *g, bool output, size_t i, oct_tensor *t);
void lm_sig_free(oct_lm *lm);

/* A monotonic clock in seconds. */
double lm_now(void);

#endif
