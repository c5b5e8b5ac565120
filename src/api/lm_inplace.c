/*
 * lm_inplace.c: decode steps on a model compiled with the in-place
 * key/value cache (oct_lm_set "kv-cache" "inplace"; codegen's kvcache.c).
 *
 * The compiled step reads the past from its present.{l}.key/value output
 * buffers and writes only the new token's slot P there, so this file owns
 * those buffers for the whole generation instead of the past_key_values
 * feed: it calls the compiled entry point directly (the runner's
 * oct_runner_run would hand out fresh output buffers each step), passes
 * NULL for the past inputs (never read), and after each step moves slot P
 * of every head into the next free slot: H * D elements per cache (float32,
 * or the one-byte codes of a quantized cache), the only
 * cache bytes a step writes besides the compiled code's own slot P.
 *
 * Everything is found through the compiled model's signature JSON (inputs
 * and outputs by name, "kv_cache" pairs), so the same code serves any
 * compiled entry points, whichever way they were obtained.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "api/lm.h"

struct lm_inplace {
    oct_entry_points ep;
    size_t n_in, n_out;
    const void **in_ptrs;        /* n_in, the compiled model's order */
    void **out_ptrs;             /* n_out: 64-byte aligned in out_blocks */
    void **out_blocks;           /* n_out oct_malloc'ed blocks */
    uint64_t *out_bytes;
    void *scratch_block, *scratch;
    int logits;                  /* output slot */
    int64_t past, total;         /* cache slots: P, P + 1 */
    char **cache;                /* 2 * layers: [1,H,total,D] buffers (key, value) */
};

/* Size of a block holding `bytes` at a 64-byte aligned address. */
static size_t padded(uint64_t bytes)
{
    return (size_t)bytes + 64;
}

static void *align64(void *p)
{
    return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

void lm_inplace_free(oct_lm *lm)
{
    lm_inplace *ip = lm->inplace;
    if (!ip)
        return;
    oct_ctx *ctx = lm->ctx;
    for (size_t k = 0; ip->out_blocks && ip->out_bytes && k < ip->n_out; k++)
        if (ip->out_blocks[k])
            oct_free(ctx, ip->out_blocks[k], padded(ip->out_bytes[k]));
    oct_free(ctx, ip->out_blocks, (ip->n_out + 1) * sizeof *ip->out_blocks);
    oct_free(ctx, ip->out_ptrs, (ip->n_out + 1) * sizeof *ip->out_ptrs);
    oct_free(ctx, ip->out_bytes, (ip->n_out + 1) * sizeof *ip->out_bytes);
    oct_free(ctx, ip->in_ptrs, (ip->n_in + 1) * sizeof *ip->in_ptrs);
    if (ip->scratch_block)
        oct_free(ctx, ip->scratch_block, padded(ip->ep.scratch_size));
    oct_free(ctx, ip->cache, (2 * lm->dec.layers + 1) * sizeof *ip->cache);
    oct_free(ctx, ip, sizeof *ip);
    lm->inplace = NULL;
}

static oct_status bad_signature(oct_lm *lm, const char *why)
{
    return oct_error(lm->ctx, OCT_EUNSUPPORTED, "decode graph: the compiled model cannot "
                     "run with the in-place key/value cache: %s", why);
}

/* Index of the feed input called name, or -1. */
static int feed_index(const lm_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_in; i++)
        if (!strcmp(g->feed[i].name, name))
            return (int)i;
    return -1;
}

/* Reads the signature: inputs by name against the feed, outputs' sizes,
 * the logits slot and the caches. */
static oct_status read_signature(oct_lm *lm, lm_inplace *ip, const cJSON *sig)
{
    oct_ctx *ctx = lm->ctx;
    lm_graph *g = &lm->dec;
    const cJSON *ins = cJSON_GetObjectItem(sig, "inputs");
    const cJSON *outs = cJSON_GetObjectItem(sig, "outputs");
    const cJSON *kv = cJSON_GetObjectItem(sig, "kv_cache");
    if (!cJSON_IsArray(ins) || !cJSON_IsArray(outs))
        return bad_signature(lm, "its signature has no inputs or outputs");
    if (!cJSON_IsArray(kv) || cJSON_GetArraySize(kv) != (int)(2 * g->layers))
        return bad_signature(lm, "it was not compiled with --kv-cache=inplace for every "
                             "past_key_values input");
    ip->n_in = (size_t)cJSON_GetArraySize(ins);
    ip->n_out = (size_t)cJSON_GetArraySize(outs);
    if (ip->n_in != g->n_in || ip->n_out != g->n_out)
        return bad_signature(lm, "its inputs or outputs are not the graph's (an input "
                             "folded into the compiled code?)");
    ip->in_ptrs = oct_malloc(ctx, (ip->n_in + 1) * sizeof *ip->in_ptrs);
    ip->out_ptrs = oct_malloc(ctx, (ip->n_out + 1) * sizeof *ip->out_ptrs);
    ip->out_blocks = oct_malloc(ctx, (ip->n_out + 1) * sizeof *ip->out_blocks);
    ip->out_bytes = oct_malloc(ctx, (ip->n_out + 1) * sizeof *ip->out_bytes);
    ip->cache = oct_malloc(ctx, (2 * g->layers + 1) * sizeof *ip->cache);
    if (ip->out_blocks) /* lm_inplace_free frees the blocks made so far */
        memset(ip->out_blocks, 0, (ip->n_out + 1) * sizeof *ip->out_blocks);
    if (!ip->in_ptrs || !ip->out_ptrs || !ip->out_blocks || !ip->out_bytes || !ip->cache)
        return OCT_EINTERNAL;
    memset(ip->cache, 0, (2 * g->layers + 1) * sizeof *ip->cache);
    for (size_t k = 0; k < ip->n_in; k++) {
        const cJSON *name = cJSON_GetObjectItem(cJSON_GetArrayItem(ins, (int)k), "name");
        int i = cJSON_IsString(name) ? feed_index(g, name->valuestring) : -1;
        if (i < 0)
            return bad_signature(lm, "an input of its signature is not one of the graph's");
        /* the past inputs are never read: NULL, so a read would fault */
        ip->in_ptrs[k] = g->role[i] >= LM_PAST_KEY ? NULL : g->feed[i].data;
    }
    ip->logits = -1;
    for (size_t k = 0; k < ip->n_out; k++) {
        const cJSON *o = cJSON_GetArrayItem(outs, (int)k);
        const cJSON *name = cJSON_GetObjectItem(o, "name");
        const cJSON *bytes = cJSON_GetObjectItem(o, "bytes");
        if (!cJSON_IsString(name) || !cJSON_IsNumber(bytes) || bytes->valuedouble < 0 ||
            bytes->valuedouble > 1e15)
            return bad_signature(lm, "an output of its signature has no name or size");
        if (!strcmp(name->valuestring, "logits"))
            ip->logits = (int)k;
        ip->out_bytes[k] = (uint64_t)bytes->valuedouble;
        if (!(ip->out_blocks[k] = oct_malloc(ctx, padded(ip->out_bytes[k]))))
            return OCT_EINTERNAL;
        ip->out_ptrs[k] = align64(ip->out_blocks[k]);
    }
    if (ip->logits < 0 || ip->out_bytes[ip->logits] != (uint64_t)lm->vocab * sizeof(float))
        return bad_signature(lm, "its logits output is not [1,1,V] float");
    for (int k = 0; k < cJSON_GetArraySize(kv); k++) {
        const cJSON *p = cJSON_GetArrayItem(kv, k);
        const cJSON *in = cJSON_GetObjectItem(p, "input"), *out = cJSON_GetObjectItem(p, "output");
        const cJSON *past = cJSON_GetObjectItem(p, "past"), *total = cJSON_GetObjectItem(p, "total");
        if (!cJSON_IsNumber(in) || !cJSON_IsNumber(out) || !cJSON_IsNumber(past) ||
            !cJSON_IsNumber(total) || in->valueint < 0 || (size_t)in->valueint >= ip->n_in ||
            out->valueint < 0 || (size_t)out->valueint >= ip->n_out)
            return bad_signature(lm, "its kv_cache entries are malformed");
        const cJSON *iname = cJSON_GetObjectItem(cJSON_GetArrayItem(ins, in->valueint), "name");
        int i = feed_index(g, iname->valuestring);
        if (g->role[i] < LM_PAST_KEY || past->valueint != lm->slots ||
            total->valueint != lm->slots + 1 ||
            ip->out_bytes[out->valueint] != (uint64_t)(lm->heads * (lm->slots + 1) *
                                                       lm->head_dim) * lm->kv_bytes)
            return bad_signature(lm, "a kv_cache entry is not a past input of P slots and "
                                 "a present output of P + 1");
        size_t at = 2 * g->layer[i] + (g->role[i] == LM_PAST_VALUE);
        if (ip->cache[at])
            return bad_signature(lm, "two kv_cache entries read one past input");
        ip->cache[at] = ip->out_ptrs[out->valueint];
    }
    ip->past = lm->slots;
    ip->total = lm->slots + 1;
    return OCT_OK;
}

oct_status lm_inplace_open(oct_lm *lm)
{
    oct_ctx *ctx = lm->ctx;
    if (lm->inplace)
        return OCT_OK;
    lm_inplace *ip = oct_malloc(ctx, sizeof *ip);
    if (!ip)
        return OCT_EINTERNAL;
    memset(ip, 0, sizeof *ip);
    lm->inplace = ip;
    oct_status st = OCT_OK;
    if (lm->compiled)
        ip->ep = lm->ep;
    else
        st = oct_runner_entry_points(lm->dec.runner, &ip->ep);
    cJSON *sig = NULL;
    if (!st && !(sig = cJSON_Parse(ip->ep.signature)))
        st = cJSON_GetErrorPtr() ? bad_signature(lm, "its signature is not JSON")
                                 : OCT_EINTERNAL;
    if (!st)
        st = read_signature(lm, ip, sig);
    cJSON_Delete(sig);
    if (!st && !(ip->scratch_block = oct_malloc(ctx, padded(ip->ep.scratch_size))))
        st = OCT_EINTERNAL;
    if (st) {
        lm_inplace_free(lm);
        return st;
    }
    ip->scratch = align64(ip->scratch_block);
    return OCT_OK;
}

void lm_inplace_clear(oct_lm *lm)
{
    lm_inplace *ip = lm->inplace;
    for (size_t k = 0; k < ip->n_out; k++)
        memset(ip->out_ptrs[k], 0, (size_t)ip->out_bytes[k]);
}

void *lm_inplace_cache(oct_lm *lm, size_t layer, bool value, int64_t *stride)
{
    *stride = lm->inplace->total;
    return lm->inplace->cache[2 * layer + value];
}

oct_status lm_inplace_step(oct_lm *lm, int64_t pos)
{
    lm_inplace *ip = lm->inplace;
    if (ip->ep.run(ip->in_ptrs, ip->out_ptrs, ip->scratch) != 0)
        return oct_error(lm->ctx, OCT_EINTERNAL, "the compiled model reported a failure");
    memcpy(lm->logits, ip->out_ptrs[ip->logits], (size_t)lm->vocab * sizeof *lm->logits);
    /* the new token's slot P into slot pos: one row per head and cache */
    size_t row = (size_t)lm->head_dim * lm->kv_bytes;
    for (size_t c = 0; c < 2 * lm->dec.layers; c++)
        for (int64_t h = 0; h < lm->heads; h++) {
            char *head = ip->cache[c] + (size_t)(h * ip->total) * row;
            memcpy(head + (size_t)pos * row, head + (size_t)ip->past * row, row);
        }
    return OCT_OK;
}
