/*
 * lm_compiled.c: a language model whose decode graph is a library that
 * `octet compile --emit=so --kv-cache=inplace` wrote (oct_lm_open_compiled;
 * `octet generate OUT/NAME.so`).  There is no ONNX model: the inputs and
 * outputs the convention is recognised by come from the library's
 * signature JSON (names, dtypes, shapes), and every step runs the library's
 * NAME_run with the cache in place (lm_inplace.c, which reads the same
 * signature for the "kv_cache" pairs).  A library without those pairs is
 * refused when opened, saying why, before any generation.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "api/lm.h"

/* The signature's dtype names (numpy's) the convention uses; 0 otherwise
 * (the convention's checks then name the tensor). */
static int32_t sig_dtype(const char *np)
{
    if (!strcmp(np, "float32"))
        return OCT_DT_FLOAT;
    if (!strcmp(np, "int64"))
        return OCT_DT_INT64;
    if (!strcmp(np, "int32"))
        return OCT_DT_INT32;
    if (!strcmp(np, "int8"))
        return OCT_DT_INT8;
    if (!strcmp(np, "f8e4m3fn"))
        return OCT_DT_FLOAT8E4M3FN;
    return 0;
}

static const cJSON *sig_list(const lm_graph *g, bool output)
{
    return cJSON_GetObjectItem(g->sig, output ? "outputs" : "inputs");
}

size_t lm_sig_count(const lm_graph *g, bool output)
{
    int n = cJSON_GetArraySize(sig_list(g, output));
    return n > 0 ? (size_t)n : 0;
}

oct_status lm_sig_tensor(oct_lm *lm, const lm_graph *g, bool output, size_t i, oct_tensor *t)
{
    const cJSON *e = cJSON_GetArrayItem(sig_list(g, output), (int)i);
    const cJSON *name = cJSON_GetObjectItem(e, "name"), *dt = cJSON_GetObjectItem(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItem(e, "shape");
    int rank = cJSON_GetArraySize(shape);
    if (!cJSON_IsString(name) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) || rank > 8)
        return oct_error(lm->ctx, OCT_EINPUT, "%s: %s %zu of the library's signature has "
                         "no name, dtype or shape", g->what, output ? "output" : "input", i);
    int64_t *dims = ir_alloc_array(lm->ctx, (size_t)rank + 1, sizeof *dims);
    if (!dims)
        return OCT_EINTERNAL;
    for (int d = 0; d < rank; d++) {
        const cJSON *v = cJSON_GetArrayItem(shape, d);
        /* a name: symbolic; a number: fixed */
        dims[d] = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15
                      ? (int64_t)v->valuedouble : -1;
    }
    memset(t, 0, sizeof *t);
    t->name = name->valuestring;
    t->dtype = sig_dtype(dt->valuestring);
    t->rank = rank;
    t->dims = dims;
    return OCT_OK;
}

void lm_sig_free(oct_lm *lm)
{
    cJSON_Delete(lm->dec.sig);
    lm->dec.sig = NULL;
}

/* Parses the signature. */
static oct_status read_sig(oct_lm *lm)
{
    if (!lm->ep.run || !lm->ep.signature)
        return OCT_EUSAGE;
    if (!(lm->dec.sig = cJSON_Parse(lm->ep.signature)))
        return cJSON_GetErrorPtr() ? oct_error(lm->ctx, OCT_EINPUT, "the library's "
                                               "signature is not JSON")
                                   : OCT_EINTERNAL;
    return OCT_OK;
}

/* A library with symbolic dims (a batch compiled for run time) has other
 * entry points than the step calls. */
static oct_status fixed_shapes(oct_lm *lm)
{
    if (cJSON_GetArraySize(cJSON_GetObjectItem(lm->dec.sig, "dims")) > 0)
        return oct_error(lm->ctx, OCT_EUNSUPPORTED, "decode graph: the library was compiled "
                         "with a symbolic dimension; generation needs every shape fixed "
                         "(compile with --input-shape)");
    return OCT_OK;
}

oct_status oct_lm_open_compiled(oct_ctx *ctx, const oct_entry_points *decode,
                                const char *path, oct_lm **out)
{
    if (!ctx || !decode || !out)
        return OCT_EUSAGE;
    *out = NULL;
    oct_lm *lm = ir_alloc(ctx, sizeof *lm);
    if (!lm)
        return OCT_EINTERNAL;
    lm->ctx = ctx;
    lm->stop_id = -1;
    lm->cache_size = 256;
    lm->dec.what = "decode";
    lm->dec.path = path;
    lm->pre.what = "prefill";
    lm->jit = true;
    lm->compiled = true;
    lm->kv_inplace = true;
    lm->ep = *decode;
    oct_ctx_set_file(ctx, path);
    oct_status st = read_sig(lm);
    if (!st)
        st = lm_scan_decode(lm);
    if (!st)
        st = fixed_shapes(lm);
    if (!st && !(lm->logits = oct_malloc(ctx, (size_t)lm->vocab * sizeof *lm->logits)))
        st = OCT_EINTERNAL;
    /* the feed and the cache now: a library without the in-place cache is
     * refused here, not at the first generation */
    if (!st)
        st = lm_feed_build(lm, &lm->dec, 1);
    if (!st)
        st = lm_inplace_open(lm);
    oct_ctx_set_file(ctx, NULL);
    if (st) {
        oct_lm_free(lm);
        return st;
    }
    *out = lm;
    return OCT_OK;
}
