/*
 * quant_stats.c: the calibration statistics cache (--save-stats,
 * --load-stats, `octet stats merge`).
 *
 * Format (JSON, versioned):
 *   {"format": "octet-calibration-stats", "version": 2,
 *    "graph": "<16 hex digits>", "samples": N,
 *    "tensors": [{"name": "...", "count": C, "nonfinite": K,
 *                 "min": x, "max": y, "width_log2": w,
 *                 "first_bin": i, "bins": [c_i, c_i+1, ...]}, ...]}
 * "graph" hashes the op types and value names of the graph and the names
 * of the observed tensors, so statistics are refused for another model or
 * another placement.  min and max are written with 17 significant digits,
 * so the doubles come back exactly, and bins are exact integers: merging
 * two files gives what one calibration over both data sets would have.
 *
 * GPTQ's Hessians (--weights-only --algo=gptq with --save-stats or
 * --load-stats) have a format of their own:
 *   {"format": "octet-hessian-stats", "version": 1, "graph": "<16 hex>",
 *    "samples": N, "inputs": [{"name": "...", "K": K,
 *                              "h": [upper triangle of X^T X, row by row]}]}
 * "graph" hashes the graph and the layer inputs' names.  The sums are
 * written so that they read back exactly (cJSON prints 17 digits when 15
 * do not round-trip); merging adds them, which is one calibration over both
 * data sets up to the order of the double additions.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/quant.h"

#define STATS_FORMAT "octet-calibration-stats"
/* 2: CALIB_BINS became 8192 (bin i of version 1 is not bin i of 2) */
#define STATS_VERSION 2
/* --algo=gptq's Hessians (quant_hess_save below) */
#define HESS_FORMAT "octet-hessian-stats"
#define HESS_VERSION 1

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull; /* separator */
}

static uint64_t graph_hash(const ir_model *m)
{
    uint64_t h = 1469598103934665603ull;
    const ir_graph *g = m->graph;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        h = fnv(h, n->op_type);
        for (int k = 0; k < n->n_in; k++)
            h = fnv(h, n->in[k] ? n->in[k]->name : "");
        for (int k = 0; k < n->n_out; k++)
            h = fnv(h, n->out[k] ? n->out[k]->name : "");
    }
    return h;
}

uint64_t quant_stats_key(const ir_model *m, const quant_plan *plan)
{
    uint64_t h = graph_hash(m);
    for (size_t i = 0; i < plan->n; i++)
        if (plan->t[i].kind == QKIND_ACT)
            h = fnv(h, plan->t[i].value->name);
    return h;
}

/* ---- writing ---------------------------------------------------------- */

static cJSON *hist_to_json(const char *name, const calib_hist *h)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char num[40];
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "count", (double)h->count);
    cJSON_AddNumberToObject(o, "nonfinite", (double)h->nonfinite);
    /* exact decimal round trip of the doubles: raw numbers, %.17g */
    snprintf(num, sizeof num, "%.17g", h->min);
    cJSON_AddRawToObject(o, "min", num);
    snprintf(num, sizeof num, "%.17g", h->max);
    cJSON_AddRawToObject(o, "max", num);
    cJSON_AddNumberToObject(o, "width_log2", h->width_log2);
    int first = 0, last = CALIB_BINS - 1;
    while (first < CALIB_BINS && !h->bins[first])
        first++;
    while (last >= first && !h->bins[last])
        last--;
    cJSON_AddNumberToObject(o, "first_bin", first < CALIB_BINS ? first : 0);
    cJSON *bins = cJSON_AddArrayToObject(o, "bins");
    for (int i = first; bins && i <= last; i++) {
        snprintf(num, sizeof num, "%" PRIu64, h->bins[i]);
        cJSON_AddItemToArray(bins, cJSON_CreateRaw(num));
    }
    return o;
}

static oct_status write_json(oct_ctx *ctx, cJSON *root, const char *path)
{
    char *text = cJSON_Print(root);
    if (!text)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory writing '%s'", path);
    size_t len = strlen(text);
    text[len] = '\n'; /* replace the NUL: a trailing newline */
    oct_status st = ir_write_atomic(ctx, path, text, len + 1);
    free(text);
    return st;
}

oct_status quant_stats_save(const ir_model *m, const quant_plan *plan,
                            const char *path, oct_ctx *ctx)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    char key[32];
    snprintf(key, sizeof key, "%016" PRIx64, quant_stats_key(m, plan));
    cJSON_AddStringToObject(root, "format", STATS_FORMAT);
    cJSON_AddNumberToObject(root, "version", STATS_VERSION);
    cJSON_AddStringToObject(root, "graph", key);
    cJSON_AddNumberToObject(root, "samples", (double)plan->n_samples);
    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; tensors && i < plan->n; i++)
        if (plan->t[i].kind == QKIND_ACT)
            cJSON_AddItemToArray(tensors, hist_to_json(plan->t[i].value->name,
                                                       plan->t[i].hist));
    oct_status st = write_json(ctx, root, path);
    cJSON_Delete(root);
    return st;
}

/* ---- reading ------------------------------------------------------------ */

static oct_status bad(oct_ctx *ctx, const char *path, const char *what)
{
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, NULL,
                     "%s: not valid calibration statistics: %s", path, what);
}

static bool get_u64(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

static oct_status hist_from_json(oct_ctx *ctx, const char *path, const cJSON *o,
                                 calib_hist *h)
{
    calib_hist_init(h);
    uint64_t first, width;
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(o, "min");
    const cJSON *mx = cJSON_GetObjectItemCaseSensitive(o, "max");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "width_log2");
    const cJSON *bins = cJSON_GetObjectItemCaseSensitive(o, "bins");
    (void)width;
    if (!get_u64(o, "count", &h->count) || !get_u64(o, "nonfinite", &h->nonfinite) ||
        !cJSON_IsNumber(mn) || !cJSON_IsNumber(mx) || !cJSON_IsNumber(w) ||
        !get_u64(o, "first_bin", &first) || !cJSON_IsArray(bins))
        return bad(ctx, path, "a tensor entry lacks count, nonfinite, min, max, "
                              "width_log2, first_bin or bins");
    h->min = mn->valuedouble;
    h->max = mx->valuedouble;
    h->width_log2 = w->valueint;
    int n = cJSON_GetArraySize(bins);
    if (first > CALIB_BINS || (uint64_t)n > CALIB_BINS - first)
        return bad(ctx, path, "bins outside the histogram");
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *b = cJSON_GetArrayItem(bins, i);
        if (!cJSON_IsNumber(b) || b->valuedouble < 0 ||
            b->valuedouble != floor(b->valuedouble))
            return bad(ctx, path, "a bin count is not a non-negative integer");
        h->bins[first + (uint64_t)i] = (uint64_t)b->valuedouble;
        total += h->bins[first + (uint64_t)i];
    }
    if (total != h->count || (h->count && !(h->min <= h->max)) ||
        w->valuedouble != floor(w->valuedouble) || fabs(w->valuedouble) > 200000)
        return bad(ctx, path, "bin counts, count, min/max or width disagree");
    return OCT_OK;
}

/* The JSON of path, its "format" string (NULL if none) in *format. */
static oct_status read_json(oct_ctx *ctx, const char *path, cJSON **root, const char **format)
{
    uint8_t *data;
    size_t len;
    oct_status st = ir_read_file(ctx, path, 1ull << 30, &data, &len);
    if (st)
        return st;
    *root = cJSON_ParseWithLength((const char *)data, len);
    oct_free(ctx, data, len);
    if (!*root)
        return bad(ctx, path, "not JSON");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(*root, "format");
    *format = cJSON_IsString(fmt) ? fmt->valuestring : NULL;
    return OCT_OK;
}

/* Parses a statistics file; *root is the caller's to cJSON_Delete. */
static oct_status read_stats(oct_ctx *ctx, const char *path, cJSON **root,
                             uint64_t *key)
{
    const char *format;
    oct_status st = read_json(ctx, path, root, &format);
    if (st)
        return st;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(*root, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(*root, "version");
    const cJSON *graph = cJSON_GetObjectItemCaseSensitive(*root, "graph");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, STATS_FORMAT) != 0)
        return bad(ctx, path, "no \"format\": \"" STATS_FORMAT "\"");
    if (!cJSON_IsNumber(ver) || ver->valueint != STATS_VERSION)
        return bad(ctx, path, "unsupported version (this octet reads version 2: "
                              "version 1 files held 2048-bin histograms)");
    if (!cJSON_IsString(graph) || strlen(graph->valuestring) != 16)
        return bad(ctx, path, "no graph key");
    *key = strtoull(graph->valuestring, NULL, 16);
    return OCT_OK;
}

oct_status quant_stats_load(const ir_model *m, quant_plan *plan, const char *path,
                            oct_ctx *ctx)
{
    cJSON *root = NULL;
    uint64_t key;
    oct_status st = read_stats(ctx, path, &root, &key);
    if (!st && key != quant_stats_key(m, plan))
        st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, NULL,
                       "%s: statistics were made for another graph or "
                       "quantization placement (key mismatch)", path);
    const cJSON *tensors = root ? cJSON_GetObjectItemCaseSensitive(root, "tensors") : NULL;
    if (!st && !cJSON_IsArray(tensors))
        st = bad(ctx, path, "no tensors array");
    uint64_t samples = 0;
    if (!st && !get_u64(root, "samples", &samples))
        st = bad(ctx, path, "no sample count");
    const cJSON *o;
    size_t seen = 0;
    const cJSON *list = st ? NULL : tensors;
    cJSON_ArrayForEach(o, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        int idx = -1;
        for (size_t i = 0; cJSON_IsString(name) && i < plan->n; i++)
            if (plan->t[i].kind == QKIND_ACT &&
                strcmp(plan->t[i].value->name, name->valuestring) == 0)
                idx = (int)i;
        if (idx < 0) {
            st = bad(ctx, path, "an entry names no observed tensor");
            break;
        }
        if ((st = hist_from_json(ctx, path, o, plan->t[idx].hist)))
            break;
        seen++;
    }
    cJSON_Delete(root);
    if (st)
        return st;
    size_t want = 0;
    for (size_t i = 0; i < plan->n; i++)
        want += plan->t[i].kind == QKIND_ACT;
    if (seen != want)
        return bad(ctx, path, "it does not cover every observed tensor");
    plan->n_samples = samples;
    return OCT_OK;
}

static oct_status hess_merge(const char *const *inputs, size_t n_inputs,
                             const char *out_path, oct_ctx *ctx);

oct_status quant_stats_merge(const char *const *inputs, size_t n_inputs,
                             const char *out_path, oct_ctx *ctx)
{
    if (n_inputs) { /* Hessians (GPTQ) or histograms, by the first file's format */
        cJSON *first = NULL;
        const char *format;
        oct_status st = read_json(ctx, inputs[0], &first, &format);
        bool hess = !st && format && !strcmp(format, HESS_FORMAT);
        cJSON_Delete(first);
        if (st)
            return st;
        if (hess)
            return hess_merge(inputs, n_inputs, out_path, ctx);
    }
    cJSON *acc = NULL;
    uint64_t acc_key = 0;
    oct_status st = OCT_OK;
    calib_hist *a = oct_malloc(ctx, sizeof *a), *b = oct_malloc(ctx, sizeof *b);
    if (!a || !b)
        st = OCT_EINTERNAL;
    for (size_t f = 0; !st && f < n_inputs; f++) {
        cJSON *root = NULL;
        uint64_t key;
        st = read_stats(ctx, inputs[f], &root, &key);
        if (!st && acc && key != acc_key)
            st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, NULL,
                           "%s: statistics of another graph than %s", inputs[f],
                           inputs[0]);
        if (st) {
            cJSON_Delete(root);
            break;
        }
        if (!acc) {
            acc = root;
            acc_key = key;
            continue;
        }
        cJSON *ta = cJSON_GetObjectItemCaseSensitive(acc, "tensors");
        cJSON *tb = cJSON_GetObjectItemCaseSensitive(root, "tensors");
        if (!cJSON_IsArray(ta) || !cJSON_IsArray(tb) ||
            cJSON_GetArraySize(ta) != cJSON_GetArraySize(tb))
            st = bad(ctx, inputs[f], "tensor lists differ");
        for (int i = 0; !st && i < cJSON_GetArraySize(ta); i++) {
            cJSON *ea = cJSON_GetArrayItem(ta, i), *eb = cJSON_GetArrayItem(tb, i);
            const cJSON *na = cJSON_GetObjectItemCaseSensitive(ea, "name");
            const cJSON *nb = cJSON_GetObjectItemCaseSensitive(eb, "name");
            if (!cJSON_IsString(na) || !cJSON_IsString(nb) ||
                strcmp(na->valuestring, nb->valuestring) != 0) {
                st = bad(ctx, inputs[f], "tensor lists differ");
                break;
            }
            if ((st = hist_from_json(ctx, inputs[0], ea, a)) ||
                (st = hist_from_json(ctx, inputs[f], eb, b)))
                break;
            calib_hist_merge(a, b);
            cJSON *merged = hist_to_json(na->valuestring, a);
            if (!merged || !cJSON_ReplaceItemInArray(ta, i, merged))
                st = oct_error(ctx, OCT_EINTERNAL, "out of memory");
        }
        uint64_t sa = 0, sb = 0;
        if (!st && get_u64(acc, "samples", &sa) && get_u64(root, "samples", &sb))
            cJSON_ReplaceItemInObject(acc, "samples", cJSON_CreateNumber((double)(sa + sb)));
        cJSON_Delete(root);
    }
    if (!st && acc)
        st = write_json(ctx, acc, out_path);
    cJSON_Delete(acc);
    oct_free(ctx, a, sizeof *a);
    oct_free(ctx, b, sizeof *b);
    return st;
}

/* ---- GPTQ's Hessians ------------------------------------------------------ */

static uint64_t hess_key(const ir_model *m, ir_value *const *x, size_t n)
{
    uint64_t h = graph_hash(m);
    for (size_t i = 0; i < n; i++)
        h = fnv(h, x[i]->name);
    return h;
}

oct_status quant_hess_save(const ir_model *m, ir_value *const *x, const int64_t *K,
                           double *const *h, size_t n, uint64_t samples, const char *path,
                           oct_ctx *ctx)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    char key[32];
    snprintf(key, sizeof key, "%016" PRIx64, hess_key(m, x, n));
    cJSON_AddStringToObject(root, "format", HESS_FORMAT);
    cJSON_AddNumberToObject(root, "version", HESS_VERSION);
    cJSON_AddStringToObject(root, "graph", key);
    cJSON_AddNumberToObject(root, "samples", (double)samples);
    cJSON *arr = cJSON_AddArrayToObject(root, "inputs");
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *o = cJSON_CreateObject(), *t = cJSON_CreateArray();
        ok = o && t && cJSON_AddItemToArray(arr, o) && cJSON_AddItemToObject(o, "h", t) &&
             cJSON_AddStringToObject(o, "name", x[i]->name) &&
             cJSON_AddNumberToObject(o, "K", (double)K[i]);
        for (int64_t p = 0; ok && p < K[i]; p++)
            for (int64_t q = p; ok && q < K[i]; q++) {
                cJSON *v = cJSON_CreateNumber(h[i][p * K[i] + q]);
                ok = v && cJSON_AddItemToArray(t, v);
            }
    }
    oct_status st = ok ? write_json(ctx, root, path)
                       : oct_error(ctx, OCT_EINTERNAL, "out of memory writing '%s'", path);
    cJSON_Delete(root);
    return st;
}

/* A Hessian file's header checked; its "inputs" array in *inputs. */
static oct_status hess_read(oct_ctx *ctx, const char *path, cJSON **root, uint64_t *key,
                            uint64_t *samples, const cJSON **inputs)
{
    const char *format;
    oct_status st = read_json(ctx, path, root, &format);
    if (st)
        return st;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(*root, "version");
    const cJSON *graph = cJSON_GetObjectItemCaseSensitive(*root, "graph");
    *inputs = cJSON_GetObjectItemCaseSensitive(*root, "inputs");
    if (!format || strcmp(format, HESS_FORMAT) != 0)
        return bad(ctx, path, "no \"format\": \"" HESS_FORMAT "\" (GPTQ's statistics)");
    if (!cJSON_IsNumber(ver) || ver->valueint != HESS_VERSION)
        return bad(ctx, path, "unsupported version of Hessian statistics");
    if (!cJSON_IsString(graph) || strlen(graph->valuestring) != 16)
        return bad(ctx, path, "no graph key");
    if (!get_u64(*root, "samples", samples))
        return bad(ctx, path, "no sample count");
    if (!cJSON_IsArray(*inputs))
        return bad(ctx, path, "no \"inputs\" array");
    *key = strtoull(graph->valuestring, NULL, 16);
    return OCT_OK;
}

/* Entry e of a Hessian file: its name, K (1 .. 2^16) and the array of
 * K (K + 1) / 2 finite numbers. */
static oct_status hess_entry(oct_ctx *ctx, const char *path, const cJSON *e, const char **name,
                             int64_t *K, const cJSON **h)
{
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
    uint64_t k;
    *h = cJSON_GetObjectItemCaseSensitive(e, "h");
    if (!cJSON_IsString(nm) || !get_u64(e, "K", &k) || k < 1 || k > 65536 || !cJSON_IsArray(*h))
        return bad(ctx, path, "an input without name, K (1 .. 65536) or \"h\"");
    if ((uint64_t)cJSON_GetArraySize(*h) != k * (k + 1) / 2)
        return bad(ctx, path, "an input's \"h\" is not the K (K + 1) / 2 upper triangle");
    for (const cJSON *v = (*h)->child; v; v = v->next)
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return bad(ctx, path, "a Hessian element is not a finite number");
    *name = nm->valuestring;
    *K = (int64_t)k;
    return OCT_OK;
}

oct_status quant_hess_load(const ir_model *m, ir_value *const *x, const int64_t *K,
                           double **h, size_t n, const char *path, oct_ctx *ctx)
{
    cJSON *root = NULL;
    const cJSON *inputs;
    uint64_t key, samples;
    oct_status st = hess_read(ctx, path, &root, &key, &samples, &inputs);
    if (!st && key != hess_key(m, x, n))
        st = bad(ctx, path, "Hessians of another graph or other layers");
    if (!st && (size_t)cJSON_GetArraySize(inputs) != n)
        st = bad(ctx, path, "not one Hessian per layer input");
    size_t i = 0;
    for (const cJSON *e = st ? NULL : inputs->child; e && !st; e = e->next, i++) {
        const char *name;
        int64_t k;
        const cJSON *t;
        if ((st = hess_entry(ctx, path, e, &name, &k, &t)))
            break;
        if (strcmp(name, x[i]->name) != 0 || k != K[i]) {
            st = bad(ctx, path, "an input's name or K differs from the model's layer");
            break;
        }
        const cJSON *v = t->child;
        for (int64_t p = 0; p < k; p++)
            for (int64_t q = p; q < k; q++, v = v->next)
                h[i][p * k + q] = h[i][q * k + p] = v->valuedouble;
    }
    cJSON_Delete(root);
    return st;
}

static oct_status hess_merge(const char *const *inputs, size_t n_inputs,
                             const char *out_path, oct_ctx *ctx)
{
    cJSON *acc = NULL;
    const cJSON *ia = NULL;
    uint64_t acc_key = 0, acc_samples = 0;
    oct_status st = OCT_OK;
    for (size_t f = 0; !st && f < n_inputs; f++) {
        cJSON *root = NULL;
        const cJSON *ib;
        uint64_t key, samples;
        st = hess_read(ctx, inputs[f], &root, &key, &samples, &ib);
        if (!st && acc && (key != acc_key || cJSON_GetArraySize(ia) != cJSON_GetArraySize(ib)))
            st = bad(ctx, inputs[f], "Hessians of another graph or other layers");
        const cJSON *ea = acc ? ia->child : NULL, *eb = st ? NULL : ib->child;
        for (; eb && !st; eb = eb->next, ea = ea ? ea->next : NULL) {
            const char *nb, *na;
            int64_t kb, ka;
            const cJSON *tb, *ta;
            if ((st = hess_entry(ctx, inputs[f], eb, &nb, &kb, &tb)) || !acc)
                continue;
            if ((st = hess_entry(ctx, inputs[0], ea, &na, &ka, &ta)))
                break;
            if (strcmp(na, nb) != 0 || ka != kb) {
                st = bad(ctx, inputs[f], "Hessians of another graph or other layers");
                break;
            }
            for (cJSON *va = ta->child, *vb = tb->child; va; va = va->next, vb = vb->next)
                cJSON_SetNumberValue(va, va->valuedouble + vb->valuedouble);
        }
        if (st || !acc) {
            if (st)
                cJSON_Delete(root);
            else
                acc = root, ia = ib, acc_key = key;
            acc_samples = samples;
            continue;
        }
        acc_samples += samples;
        cJSON_Delete(root);
    }
    if (!st && acc) {
        cJSON_ReplaceItemInObject(acc, "samples", cJSON_CreateNumber((double)acc_samples));
        st = write_json(ctx, acc, out_path);
    }
    cJSON_Delete(acc);
    return st;
}
