/*
 * lm.c: the language-model driver of the public API (octet.h, "language
 * models").  It recognises the decode convention that ONNX Runtime GenAI
 * and Hugging Face Optimum export (input_ids, position_ids, attention_mask,
 * past_key_values.{l}.key/value -> logits, present.{l}.key/value) by the
 * names of a graph's inputs and outputs, and keeps the key/value cache on
 * the caller's side, as stories260k's README describes: a cache of P slots
 * is the past_key_values feed itself; each decode step marks the valid
 * slots in attention_mask (plus the new token's last entry), runs the graph
 * through an oct_runner (interpreter or JIT), and copies the new token's
 * present[..., P, :] into the next free slot.  A prompt goes through the
 * prefill graph ([1,S], right-padded; its present[..., 0:n, :] fills slots
 * 0..n-1) when one is given and the prompt fits, token by token through
 * the decode graph otherwise.  Token choice: greedy, or sampling with a
 * seeded xorshift64* generator (documented in octet.h) so that a seed gives
 * the same text everywhere.  Perplexity is lm_eval.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/lm.h"
#include "passes/quant.h"

double lm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void lm_store_int(int32_t dtype, void *data, size_t i, int64_t v)
{
    if (dtype == OCT_DT_INT64)
        ((int64_t *)data)[i] = v;
    else
        ((int32_t *)data)[i] = (int32_t)v;
}

/* ---- recognising the convention --------------------------------------------- */

static oct_status missing(oct_ctx *ctx, const lm_graph *g, bool output, const char *name)
{
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, output, -1, name,
                     "the %s graph has no %s '%s': not the decode convention of ONNX "
                     "Runtime GenAI / Hugging Face Optimum (input_ids, position_ids, "
                     "attention_mask, past_key_values.{l}.key/value -> logits, "
                     "present.{l}.key/value)", g->what, output ? "output" : "input", name);
}

static oct_status bad_shape(oct_ctx *ctx, const lm_graph *g, const oct_tensor *t,
                            const char *want)
{
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1, t->name,
                     "%s graph: '%s' is %s of rank %d; the convention wants %s",
                     g->what, t->name, oct_dtype_name(t->dtype), t->rank, want);
}

static bool is_int_index(int32_t dtype)
{
    return dtype == OCT_DT_INT64 || dtype == OCT_DT_INT32;
}

/* The element types a cache may hold: float32, or the one-byte codes of
 * a stored quantized cache (its scales are the graph's own). */
static bool is_cache_dtype(int32_t dtype)
{
    return dtype == OCT_DT_FLOAT || dtype == OCT_DT_INT8 || dtype == OCT_DT_FLOAT8E4M3FN;
}

/* Static dimension d of t, or -1. */
static int64_t dim(const oct_tensor *t, int d)
{
    return t->rank > d ? t->dims[d] : -1;
}

/* Input or output i of g: from its model, or a compiled graph's signature. */
static oct_status describe(oct_lm *lm, const lm_graph *g, bool output, size_t i,
                           oct_tensor *t)
{
    if (!g->model)
        return lm_sig_tensor(lm, g, output, i, t);
    return output ? oct_model_output(lm->ctx, g->model, i, t)
                  : oct_model_input(lm->ctx, g->model, i, t);
}

/* Gives each runtime input of g its role; records the outputs' places. */
static oct_status scan_graph(oct_lm *lm, lm_graph *g, bool decode)
{
    oct_ctx *ctx = lm->ctx;
    const oct_model *m = g->model;
    g->n_in = m ? oct_model_input_count(m) : lm_sig_count(g, false);
    g->n_out = m ? oct_model_output_count(m) : lm_sig_count(g, true);
    g->feed = ir_alloc_array(ctx, g->n_in + 1, sizeof *g->feed);
    g->role = ir_alloc_array(ctx, g->n_in + 1, sizeof *g->role);
    g->layer = ir_alloc_array(ctx, g->n_in + 1, sizeof *g->layer);
    g->dims = ir_alloc_array(ctx, 4 * (g->n_in + 1), sizeof *g->dims);
    if (!g->feed || !g->role || !g->layer || !g->dims)
        return OCT_EINTERNAL;
    bool have_ids = false, have_mask = false;
    long max_layer = -1;
    oct_status st = OCT_OK;
    for (size_t i = 0; !st && i < g->n_in; i++) {
        oct_tensor *t = &g->feed[i];
        if ((st = describe(lm, g, false, i, t)))
            return st;
        long l;
        if (!strcmp(t->name, "input_ids")) {
            g->role[i] = LM_IDS;
            have_ids = true;
        } else if (!strcmp(t->name, "position_ids")) {
            g->role[i] = LM_POS;
        } else if (!strcmp(t->name, "attention_mask")) {
            g->role[i] = LM_MASK;
            have_mask = true;
        } else if (decode && (l = ir_kv_layer_of(t->name, "past_key_values.", ".key")) >= 0) {
            g->role[i] = LM_PAST_KEY;
            g->layer[i] = (size_t)l;
        } else if (decode && (l = ir_kv_layer_of(t->name, "past_key_values.", ".value")) >= 0) {
            g->role[i] = LM_PAST_VALUE;
            g->layer[i] = (size_t)l;
        } else {
            return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1, t->name,
                             "%s graph: input '%s' is not part of the convention "
                             "(input_ids, position_ids, attention_mask%s)", g->what,
                             t->name, decode ? ", past_key_values.{l}.key/value" : "");
        }
        if (g->role[i] <= LM_MASK && (!is_int_index(t->dtype) || t->rank != 2))
            return bad_shape(ctx, g, t, "INT64 or INT32 [1,N]");
        if (g->role[i] >= LM_PAST_KEY) {
            if (!is_cache_dtype(t->dtype) || t->rank != 4 || dim(t, 1) <= 0 ||
                dim(t, 3) <= 0)
                return bad_shape(ctx, g, t, "FLOAT (or INT8 / FLOAT8E4M3FN codes) "
                                 "[1,heads,past,head_size] with heads and head_size fixed");
            if ((long)g->layer[i] > max_layer)
                max_layer = (long)g->layer[i];
        }
    }
    if (!have_ids)
        return missing(ctx, g, false, "input_ids");
    if (decode && !have_mask)
        return missing(ctx, g, false, "attention_mask");
    if (decode && max_layer < 0)
        return missing(ctx, g, false, "past_key_values.0.key");
    /* outputs: logits and the present pairs */
    g->logits = -1;
    long max_present = -1;
    oct_tensor *outs = ir_alloc_array(ctx, g->n_out + 1, sizeof *outs);
    if (!outs)
        return OCT_EINTERNAL;
    for (size_t k = 0; k < g->n_out; k++) {
        if ((st = describe(lm, g, true, k, &outs[k])))
            return st;
        long l = ir_kv_layer_of(outs[k].name, "present.", ".key");
        if (l < 0)
            l = ir_kv_layer_of(outs[k].name, "present.", ".value");
        if (l > max_present)
            max_present = l;
        if (!strcmp(outs[k].name, "logits"))
            g->logits = (int)k;
    }
    if (g->logits < 0)
        return missing(ctx, g, true, "logits");
    g->layers = decode ? (size_t)max_layer + 1 : (size_t)(max_present + 1);
    g->present_key = ir_alloc_array(ctx, g->layers + 1, sizeof *g->present_key);
    g->present_value = ir_alloc_array(ctx, g->layers + 1, sizeof *g->present_value);
    if (!g->present_key || !g->present_value)
        return OCT_EINTERNAL;
    for (size_t l = 0; l < g->layers; l++)
        g->present_key[l] = g->present_value[l] = -1;
    for (size_t k = 0; k < g->n_out; k++) {
        long l = ir_kv_layer_of(outs[k].name, "present.", ".key");
        if (l >= 0 && (size_t)l < g->layers)
            g->present_key[l] = (int)k;
        l = ir_kv_layer_of(outs[k].name, "present.", ".value");
        if (l >= 0 && (size_t)l < g->layers)
            g->present_value[l] = (int)k;
    }
    const oct_tensor *lg = &outs[g->logits];
    if (lg->dtype != OCT_DT_FLOAT || lg->rank != 3 || dim(lg, 2) <= 0)
        return bad_shape(ctx, g, lg, "FLOAT [1,N,vocabulary] with the vocabulary fixed");
    g->seq = -1;
    for (size_t i = 0; i < g->n_in; i++)
        if (g->role[i] == LM_IDS) {
            g->seq = dim(&g->feed[i], 1);
            if (decode && g->seq != 1 && g->seq != -1)
                return bad_shape(ctx, g, &g->feed[i], "[1,1] input_ids (one token per step)");
        }
    if (decode)
        g->seq = 1;
    if (lm->vocab && lm->vocab != dim(lg, 2))
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 1, -1, "logits",
                         "the decode graph's vocabulary is %lld, the prefill graph's %lld",
                         (long long)lm->vocab, (long long)dim(lg, 2));
    lm->vocab = dim(lg, 2);
    return OCT_OK;
}

/* Every decode layer has both past inputs and both present outputs, all
 * with the same heads, slots and head size. */
static oct_status check_decode_cache(oct_lm *lm)
{
    oct_ctx *ctx = lm->ctx;
    lm_graph *g = &lm->dec;
    for (size_t l = 0; l < g->layers; l++) {
        char name[64];
        for (int kv = 0; kv < 2; kv++) {
            lm_role want = kv ? LM_PAST_VALUE : LM_PAST_KEY;
            bool found = false;
            for (size_t i = 0; i < g->n_in; i++)
                if (g->role[i] == want && g->layer[i] == l) {
                    const oct_tensor *t = &g->feed[i];
                    found = true;
                    if (!lm->heads) {
                        lm->heads = dim(t, 1);
                        lm->head_dim = dim(t, 3);
                        lm->slots = dim(t, 2);
                        lm->kv_dtype = t->dtype;
                        lm->kv_bytes = oct_dtype_bits(t->dtype) / 8;
                    }
                    if (dim(t, 1) != lm->heads || dim(t, 3) != lm->head_dim ||
                        dim(t, 2) != lm->slots || t->dtype != lm->kv_dtype)
                        return bad_shape(ctx, g, t, "the dtype and shape of "
                                         "past_key_values.0.key for every layer");
                }
            snprintf(name, sizeof name, "past_key_values.%zu.%s", l, kv ? "value" : "key");
            if (!found)
                return missing(ctx, g, false, name);
            snprintf(name, sizeof name, "present.%zu.%s", l, kv ? "value" : "key");
            if ((kv ? g->present_value[l] : g->present_key[l]) < 0)
                return missing(ctx, g, true, name);
        }
    }
    for (size_t i = 0; i < g->n_in; i++)
        if (g->role[i] == LM_MASK && lm->slots > 0 && dim(&g->feed[i], 1) != lm->slots + 1 &&
            dim(&g->feed[i], 1) != -1)
            return bad_shape(ctx, g, &g->feed[i], "attention_mask [1, past + 1]");
    return OCT_OK;
}

oct_status lm_scan_decode(oct_lm *lm)
{
    oct_status st = scan_graph(lm, &lm->dec, true);
    return st ? st : check_decode_cache(lm);
}

/* The scale initializer storing graph output `name` as codes, or NULL. */
static const ir_tensor *store_scale(const ir_graph *g, const char *name)
{
    const ir_node *q = quant_kv_store_node(g, name);
    return q ? q->in[1]->init : NULL;
}

/* A prefill graph fills the decode graph's cache, so a cache stored as
 * codes must have the same scales in both: graphs quantized separately
 * (each calibrated on its own samples) do not, and their codes would be
 * read under the wrong scales without any error. */
static oct_status check_pair_scales(oct_lm *lm)
{
    if (!lm->dec.model || !lm->pre.model || lm->kv_dtype == OCT_DT_FLOAT)
        return OCT_OK;
    for (size_t l = 0; l < lm->dec.layers; l++)
        for (int kv = 0; kv < 2; kv++) {
            char name[64];
            snprintf(name, sizeof name, "present.%zu.%s", l, kv ? "value" : "key");
            const ir_tensor *d = store_scale(lm->dec.model->ir->graph, name);
            const ir_tensor *p = store_scale(lm->pre.model->ir->graph, name);
            if (!d || !p || d->dtype != p->dtype || d->nbytes != p->nbytes ||
                (d->nbytes && memcmp(d->data, p->data, (size_t)d->nbytes)))
                return oct_diagf(lm->ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 1, -1, name,
                                 "the decode graph's cache holds %s codes, and the prefill "
                                 "graph stores '%s' %s; the prefill cannot fill this cache "
                                 "(quantize the decode graph with --kv-scales-from=THE_PREFILL, or "
                                 "generate with the decode graph alone)",
                                 oct_dtype_name(lm->kv_dtype), name,
                                 p ? "under other scales" : "unquantized");
        }
    return OCT_OK;
}

oct_status oct_lm_open(oct_ctx *ctx, const oct_model *decode, const oct_model *prefill,
                       const char *engine, oct_lm **out)
{
    if (!ctx || !out || (!decode && !prefill))
        return OCT_EUSAGE;
    *out = NULL;
    oct_lm *lm = ir_alloc(ctx, sizeof *lm);
    if (!lm)
        return OCT_EINTERNAL;
    lm->ctx = ctx;
    lm->stop_id = -1;
    lm->cache_size = 256;
    lm->dec.model = decode;
    lm->dec.path = decode ? decode->path : NULL;
    lm->dec.what = "decode";
    lm->pre.model = prefill;
    lm->pre.path = prefill ? prefill->path : NULL;
    lm->pre.what = "prefill";
    lm->jit = engine && !strcmp(engine, "jit");
    oct_status st = OCT_OK;
    if (decode) {
        oct_ctx_set_file(ctx, decode->path);
        st = lm_scan_decode(lm);
        if (!st)
            st = oct_runner_new(ctx, decode, engine, NULL, &lm->dec.runner);
    }
    if (!st && prefill) {
        oct_ctx_set_file(ctx, prefill->path);
        st = scan_graph(lm, &lm->pre, false);
        if (!st)
            st = oct_runner_new(ctx, prefill, engine, NULL, &lm->pre.runner);
    }
    if (!st)
        st = check_pair_scales(lm);
    oct_ctx_set_file(ctx, NULL);
    if (!st && !(lm->logits = oct_malloc(ctx, (size_t)lm->vocab * sizeof *lm->logits)))
        st = OCT_EINTERNAL;
    if (st) {
        oct_lm_free(lm);
        return st;
    }
    *out = lm;
    return OCT_OK;
}

void lm_graph_release(oct_lm *lm, lm_graph *g)
{
    /* a feed built part way (an allocation failed) is released too */
    for (size_t i = 0; g->feed && i < g->n_in; i++) {
        if (g->feed[i].data)
            oct_free(lm->ctx, g->feed[i].data, g->feed[i].nbytes ? g->feed[i].nbytes : 1);
        g->feed[i].data = NULL;
    }
    g->built = false;
    oct_runner_free(g->runner);
    g->runner = NULL;
}

void oct_lm_free(oct_lm *lm)
{
    if (!lm)
        return;
    lm_inplace_free(lm);
    lm_graph_release(lm, &lm->dec);
    lm_graph_release(lm, &lm->pre);
    oct_free(lm->ctx, lm->logits, (size_t)lm->vocab * sizeof *lm->logits);
    lm->logits = NULL;
    lm_sig_free(lm);
}

size_t oct_lm_vocab_size(const oct_lm *lm)
{
    return lm ? (size_t)lm->vocab : 0;
}

const float *oct_lm_logits(const oct_lm *lm)
{
    return lm ? lm->logits : NULL;
}

size_t oct_lm_cache_size(const oct_lm *lm)
{
    if (!lm || (!lm->dec.model && !lm->compiled))
        return 0;
    return (size_t)(lm->slots > 0 ? lm->slots : lm->cache_size);
}

/* ---- options ---------------------------------------------------------------- */

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

oct_status oct_lm_set(oct_lm *lm, const char *key, const char *value)
{
    if (!lm || !key || !value)
        return OCT_EUSAGE;
    oct_ctx *ctx = lm->ctx;
    if (!strcmp(key, "temperature")) {
        char *end;
        double t = strtod(value, &end);
        if (!*value || *end || !(t >= 0) || !isfinite(t))
            return oct_error(ctx, OCT_EUSAGE, "temperature takes a finite number >= 0, "
                             "not '%s'", value);
        lm->temperature = t;
    } else if (!strcmp(key, "top-k")) {
        if (!parse_i64(value, 0, INT32_MAX, &lm->top_k))
            return oct_error(ctx, OCT_EUSAGE, "top-k takes a count >= 0, not '%s'", value);
    } else if (!strcmp(key, "seed")) {
        char *end;
        unsigned long long s = strtoull(value, &end, 10);
        if (!*value || *end || *value == '-')
            return oct_error(ctx, OCT_EUSAGE, "seed takes an unsigned integer, not '%s'",
                             value);
        lm->seed = s;
    } else if (!strcmp(key, "stop-id")) {
        if (!parse_i64(value, -1, INT32_MAX, &lm->stop_id))
            return oct_error(ctx, OCT_EUSAGE, "stop-id takes a token id or -1, not '%s'",
                             value);
    } else if (!strcmp(key, "cache-size")) {
        if (lm->dec.built)
            return oct_error(ctx, OCT_EUSAGE, "cache-size set after the first generation");
        if (!parse_i64(value, 1, 1 << 24, &lm->cache_size))
            return oct_error(ctx, OCT_EUSAGE, "cache-size takes a count from 1 to 16777216, "
                             "not '%s'", value);
    } else if (!strcmp(key, "kv-cache")) {
        bool inplace = !strcmp(value, "inplace");
        if (!inplace && strcmp(value, "none"))
            return oct_error(ctx, OCT_EUSAGE, "kv-cache takes inplace or none, not '%s'",
                             value);
        if (lm->compiled && !inplace)
            return oct_error(ctx, OCT_EUSAGE, "kv-cache: a compiled library keeps its cache "
                             "in place");
        if (lm->compiled)
            return OCT_OK;
        if (lm->dec.built)
            return oct_error(ctx, OCT_EUSAGE, "kv-cache set after the first generation");
        if (inplace && (!lm->jit || !lm->dec.model))
            return oct_error(ctx, OCT_EUSAGE, "kv-cache inplace needs a decode graph on "
                             "the jit engine (the cache lives in compiled code)");
        if (inplace != lm->kv_inplace) {
            /* a decode runner compiled with (or without) the in-place cache */
            oct_compile_options *co;
            oct_runner *r = NULL;
            oct_status st = oct_compile_options_new(ctx, &co);
            if (!st)
                st = oct_compile_options_set(co, "kv-cache", value);
            if (!st)
                st = oct_runner_new(ctx, lm->dec.model, "jit", co, &r);
            if (st)
                return st;
            oct_runner_free(lm->dec.runner);
            lm->dec.runner = r;
            lm->kv_inplace = inplace;
        }
    } else {
        return oct_error(ctx, OCT_EUSAGE, "unknown language-model option '%s' (temperature, "
                         "top-k, seed, stop-id, cache-size, kv-cache)", key);
    }
    return OCT_OK;
}

/* ---- feeds ---------------------------------------------------------------- */

oct_status lm_feed_build(oct_lm *lm, lm_graph *g, int64_t seq)
{
    oct_ctx *ctx = lm->ctx;
    if (g->built)
        return OCT_OK;
    int64_t slots = lm->slots > 0 ? lm->slots : lm->cache_size;
    for (size_t i = 0; i < g->n_in; i++) {
        oct_tensor *t = &g->feed[i];
        int64_t *d = g->dims + 4 * i;
        switch (g->role[i]) {
        case LM_IDS: case LM_POS:
            d[0] = 1, d[1] = seq;
            break;
        case LM_MASK:
            d[0] = 1, d[1] = g == &lm->dec ? slots + 1 : seq;
            break;
        case LM_PAST_KEY: case LM_PAST_VALUE:
            d[0] = 1, d[1] = lm->heads, d[2] = slots, d[3] = lm->head_dim;
            break;
        }
        for (int k = 0; k < t->rank; k++)
            if (t->dims[k] >= 0 && t->dims[k] != d[k])
                return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1, t->name,
                                 "%s graph: input '%s' has dimension %d fixed at %lld, "
                                 "the convention needs %lld here", g->what, t->name, k,
                                 (long long)t->dims[k], (long long)d[k]);
        uint64_t elems = 1;
        for (int k = 0; k < t->rank; k++)
            if (ir_mul_overflow_u64(elems, (uint64_t)d[k], &elems))
                return oct_error(ctx, OCT_EINPUT, "input '%s' is too large", t->name);
        uint64_t nbytes = elems * (oct_dtype_bits(t->dtype) / 8);
        void *data = oct_malloc(ctx, nbytes ? nbytes : 1);
        if (!data)
            return OCT_EINTERNAL;
        memset(data, 0, nbytes ? nbytes : 1);
        t->dims = d;
        t->data = data;
        t->nbytes = nbytes;
        for (int64_t k = 0; g->role[i] == LM_POS && k < seq; k++)
            lm_store_int(t->dtype, data, (size_t)k, k);
        for (int64_t k = 0; g->role[i] == LM_MASK && g != &lm->dec && k < seq; k++)
            lm_store_int(t->dtype, data, (size_t)k, 1);
    }
    if (g == &lm->dec)
        lm->slots = slots;
    g->seq = seq;
    g->built = true;
    return OCT_OK;
}

oct_status lm_check_ids(oct_lm *lm, const int64_t *ids, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= lm->vocab)
            return oct_diagf(lm->ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, "input_ids",
                             "token id %lld (%s, index %zu) is outside the "
                             "vocabulary of %lld ids (0 to %lld)", (long long)ids[i], what,
                             i, (long long)lm->vocab, (long long)lm->vocab - 1);
    return OCT_OK;
}

static oct_tensor *feed_of(lm_graph *g, lm_role role, size_t layer)
{
    for (size_t i = 0; i < g->n_in; i++)
        if (g->role[i] == role && (role < LM_PAST_KEY || g->layer[i] == layer))
            return &g->feed[i];
    return NULL;
}

/* Copies slots [from, from + count) of a present output [1,H,T,D] into
 * cache slots [to, to + count) of a [1,H,stride,D] cache (the past feed,
 * stride P, or an in-place cache buffer, stride P + 1). */
static void copy_slots(oct_lm *lm, const oct_tensor *present, int64_t from, void *cache,
                       int64_t stride, int64_t to, int64_t count)
{
    int64_t t_len = present->dims[2], d = lm->head_dim, b = lm->kv_bytes;
    const char *src = present->data;
    for (int64_t h = 0; h < lm->heads; h++)
        memcpy((char *)cache + (h * stride + to) * d * b, src + (h * t_len + from) * d * b,
               (size_t)(count * d * b));
}

/* Checks a present output's shape against the cache before copying. */
static oct_status check_present(oct_lm *lm, const lm_graph *g, const oct_tensor *p,
                                int64_t need)
{
    if (p->dtype != lm->kv_dtype || p->rank != 4 || p->dims[0] != 1 ||
        p->dims[1] != lm->heads || p->dims[3] != lm->head_dim || p->dims[2] < need)
        return oct_diagf(lm->ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 1, -1, p->name,
                         "%s graph: output '%s' is not %s [1,%lld,>=%lld,%lld] like "
                         "the decode cache (%s is %s)", g->what, p->name,
                         oct_dtype_name(lm->kv_dtype), (long long)lm->heads,
                         (long long)need, (long long)lm->head_dim, p->name,
                         oct_dtype_name(p->dtype));
    return OCT_OK;
}

/* Runs g on its feed; copies the logits of position `row` into lm->logits
 * and `count` present slots from `from` into the cache at `to`. */
static oct_status run_and_keep(oct_lm *lm, lm_graph *g, int64_t row, int64_t from,
                               int64_t to, int64_t count)
{
    oct_ctx *ctx = lm->ctx;
    oct_tensor *outs = NULL;
    size_t n_outs = 0;
    oct_status st = oct_runner_run(g->runner, g->feed, g->n_in, &outs, &n_outs);
    if (st)
        return st;
    const oct_tensor *lg = &outs[g->logits];
    if (lg->dtype != OCT_DT_FLOAT || lg->rank != 3 || lg->dims[2] != lm->vocab ||
        lg->dims[1] <= row)
        st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 1, -1, "logits",
                       "%s graph: logits are not FLOAT [1,>%lld,%lld]", g->what,
                       (long long)row, (long long)lm->vocab);
    else
        memcpy(lm->logits, (const float *)lg->data + row * lm->vocab,
               (size_t)lm->vocab * sizeof *lm->logits);
    for (size_t l = 0; !st && count > 0 && l < lm->dec.layers; l++) {
        for (int kv = 0; !st && kv < 2; kv++) {
            int k = kv ? g->present_value[l] : g->present_key[l];
            const oct_tensor *p = &outs[k];
            int64_t stride = lm->slots;
            void *cache = lm->inplace
                ? lm_inplace_cache(lm, l, kv, &stride)
                : feed_of(&lm->dec, kv ? LM_PAST_VALUE : LM_PAST_KEY, l)->data;
            if (!(st = check_present(lm, g, p, from + count)))
                copy_slots(lm, p, from, cache, stride, to, count);
        }
    }
    oct_tensors_free(ctx, outs, n_outs);
    return st;
}

/* One decode step: token id at position pos (slots 0..pos-1 valid). */
static oct_status decode_step(oct_lm *lm, int64_t id, int64_t pos)
{
    lm_graph *g = &lm->dec;
    oct_tensor *ids = feed_of(g, LM_IDS, 0), *p = feed_of(g, LM_POS, 0);
    oct_tensor *mask = feed_of(g, LM_MASK, 0);
    lm_store_int(ids->dtype, ids->data, 0, id);
    if (p)
        lm_store_int(p->dtype, p->data, 0, pos);
    lm_store_int(mask->dtype, mask->data, (size_t)lm->slots, 1);
    oct_status st = lm->inplace ? lm_inplace_step(lm, pos)
                                : run_and_keep(lm, g, 0, lm->slots, pos, 1);
    if (!st)
        lm_store_int(mask->dtype, mask->data, (size_t)pos, 1);
    return st;
}

/* The prompt through the prefill graph: slots 0..n-1 and the logits of
 * the last prompt position. */
static oct_status prefill(oct_lm *lm, const int64_t *prompt, int64_t n)
{
    lm_graph *g = &lm->pre;
    oct_tensor *ids = feed_of(g, LM_IDS, 0), *mask = feed_of(g, LM_MASK, 0);
    for (int64_t i = 0; i < g->seq; i++) {
        lm_store_int(ids->dtype, ids->data, (size_t)i, i < n ? prompt[i] : 0);
        if (mask)
            lm_store_int(mask->dtype, mask->data, (size_t)i, i < n);
    }
    oct_status st = run_and_keep(lm, g, n - 1, 0, 0, n);
    oct_tensor *dmask = feed_of(&lm->dec, LM_MASK, 0);
    for (int64_t i = 0; !st && i < n; i++)
        lm_store_int(dmask->dtype, dmask->data, (size_t)i, 1);
    return st;
}

/* ---- choosing a token --------------------------------------------------------- */

/* splitmix64 (seeding) and xorshift64* (drawing), as octet.h documents. */
static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static double draw_unit(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0;
}

typedef struct lm_cand {
    float logit;
    int32_t id;
} lm_cand;

/* Decreasing logit, then increasing id. */
static int cand_cmp(const void *a, const void *b)
{
    const lm_cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Greedy: the lowest id of the largest logit (NaN never wins). */
static int32_t pick_greedy(const float *logits, int64_t v)
{
    int32_t best = 0;
    for (int64_t i = 1; i < v; i++)
        if (logits[i] > logits[best] || isnan(logits[best]))
            best = (int32_t)i;
    return best;
}

static int32_t pick_sampled(oct_lm *lm, lm_cand *cand, uint64_t *state)
{
    int64_t v = lm->vocab;
    for (int64_t i = 0; i < v; i++)
        cand[i] = (lm_cand){isnan(lm->logits[i]) ? -INFINITY : lm->logits[i], (int32_t)i};
    qsort(cand, (size_t)v, sizeof *cand, cand_cmp);
    int64_t k = lm->top_k > 0 && lm->top_k < v ? lm->top_k : v;
    double total = 0, top = cand[0].logit;
    for (int64_t i = 0; i < k; i++)
        total += exp(((double)cand[i].logit - top) / lm->temperature);
    double target = draw_unit(state) * total, cum = 0;
    for (int64_t i = 0; i < k; i++) {
        cum += exp(((double)cand[i].logit - top) / lm->temperature);
        if (cum > target)
            return cand[i].id;
    }
    return cand[k - 1].id;
}

/* ---- generation ----------------------------------------------------------- */

/* Can the prefill graph fill the decode cache: a present pair for every
 * decode layer? */
static bool prefill_fills_cache(const oct_lm *lm)
{
    if (!lm->pre.model || lm->pre.layers < lm->dec.layers)
        return false;
    for (size_t l = 0; l < lm->dec.layers; l++)
        if (lm->pre.present_key[l] < 0 || lm->pre.present_value[l] < 0)
            return false;
    return true;
}

oct_status oct_lm_generate(oct_lm *lm, const int32_t *prompt, size_t n_prompt,
                           size_t n_new, oct_lm_token_fn on_token, void *user,
                           int32_t *out, size_t *n_out, oct_lm_timing *timing)
{
    if (!lm || !prompt || !n_prompt || (n_new && !out) || !n_out)
        return OCT_EUSAGE;
    oct_ctx *ctx = lm->ctx;
    *n_out = 0;
    oct_lm_timing tm = {0};
    if (timing)
        *timing = tm;
    if (!lm->dec.model && !lm->compiled)
        return oct_error(ctx, OCT_EUSAGE, "generation needs a decode graph");
    if (n_prompt > (size_t)INT32_MAX || n_new > (size_t)INT32_MAX)
        return oct_error(ctx, OCT_EINPUT, "prompt or token count too large");
    int64_t *ids = oct_malloc(ctx, n_prompt * sizeof *ids);
    lm_cand *cand = oct_malloc(ctx, (size_t)lm->vocab * sizeof *cand);
    oct_status st = ids && cand ? OCT_OK : OCT_EINTERNAL;
    for (size_t i = 0; !st && i < n_prompt; i++)
        ids[i] = prompt[i];
    if (!st)
        st = lm_check_ids(lm, ids, n_prompt, "prompt");
    if (!st)
        st = lm_feed_build(lm, &lm->dec, 1);
    /* the prompt and every generated token but the last take a slot */
    int64_t need = (int64_t)n_prompt + (n_new ? (int64_t)n_new - 1 : 0);
    if (!st && need > lm->slots) {
        const oct_tensor *k0 = feed_of(&lm->dec, LM_PAST_KEY, 0);
        st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, k0->name,
                       "a prompt of %zu tokens and %zu new ones need %lld cache slots; "
                       "the cache input '%s' has %lld", n_prompt, n_new, (long long)need,
                       k0->name, (long long)lm->slots);
    }
    /* an empty cache */
    for (size_t i = 0; !st && i < lm->dec.n_in; i++)
        memset(lm->dec.feed[i].data, 0, lm->dec.feed[i].nbytes);
    bool use_prefill = prefill_fills_cache(lm) &&
                       (lm->pre.seq < 0 || (int64_t)n_prompt <= lm->pre.seq);
    if (!st && use_prefill)
        st = lm_feed_build(lm, &lm->pre, lm->pre.seq > 0 ? lm->pre.seq : lm->slots);
    /* compiling (JIT) is not part of the speed measured */
    double t0 = lm_now();
    /* diagnostics of the preparation (a node that does not compile, a
     * graph without the in-place cache's pattern) name the graph's file */
    oct_ctx_set_file(ctx, lm->dec.path);
    if (!st && !lm->compiled)
        st = oct_runner_prepare(lm->dec.runner, lm->dec.feed, lm->dec.n_in);
    if (!st && lm->kv_inplace)
        st = lm_inplace_open(lm);
    if (use_prefill)
        oct_ctx_set_file(ctx, lm->pre.path);
    if (!st && use_prefill)
        st = oct_runner_prepare(lm->pre.runner, lm->pre.feed, lm->pre.n_in);
    oct_ctx_set_file(ctx, NULL);
    if (!st && lm->inplace)
        lm_inplace_clear(lm);
    tm.prepare_seconds = lm_now() - t0;
    t0 = lm_now();
    if (!st && use_prefill && (int64_t)n_prompt <= lm->pre.seq) {
        st = prefill(lm, ids, (int64_t)n_prompt);
    } else {
        for (size_t i = 0; !st && i < n_prompt; i++)
            st = decode_step(lm, ids[i], (int64_t)i);
    }
    tm.prefill_tokens = n_prompt;
    tm.prefill_seconds = lm_now() - t0;
    uint64_t state = splitmix64(lm->seed);
    if (!state)
        state = 1;
    t0 = lm_now();
    size_t produced = 0;
    for (size_t i = 0; !st && i < n_new; i++) {
        int32_t next = lm->temperature > 0 ? pick_sampled(lm, cand, &state)
                                           : pick_greedy(lm->logits, lm->vocab);
        out[produced++] = next;
        if (on_token)
            st = on_token(user, next);
        if (st || next == lm->stop_id || i + 1 == n_new)
            break;
        st = decode_step(lm, next, (int64_t)(n_prompt + i));
        tm.decode_tokens++;
    }
    tm.decode_seconds = lm_now() - t0;
    *n_out = produced;
    if (timing)
        *timing = tm;
    oct_free(ctx, ids, n_prompt * sizeof *ids);
    oct_free(ctx, cand, (size_t)lm->vocab * sizeof *cand);
    return st;
}
