/*
 * lm_eval.c: perplexity of a language model's prefill graph over a token
 * stream (oct_lm_eval_perplexity), after the protocol of stories260k's
 * README: the stream is cut into non-overlapping windows of W tokens, each
 * window runs alone from an empty cache (one prefill run, right-padded
 * with id 0 up to the graph's S, its attention_mask 0 there when the graph
 * has one: causal attention keeps the positions before the padding exact),
 * and tokens 1..W-1 of each window are scored given the ones before them.
 * The negative log-likelihood of a target is computed in double from the
 * float logits of the position before it:
 *     nll = log(sum_j exp(x_j - max)) + max - x_target
 * and perplexity = exp(mean nll), bits per token = mean nll / ln 2.
 */
#include <math.h>
#include <string.h>

#include "api/lm.h"

/* -log softmax(row)[target], in double. */
static double token_nll(const float *row, int64_t vocab, int64_t target)
{
    double top = -INFINITY;
    for (int64_t j = 0; j < vocab; j++)
        if (row[j] > top)
            top = row[j];
    double sum = 0;
    for (int64_t j = 0; j < vocab; j++)
        sum += exp((double)row[j] - top);
    return log(sum) + top - (double)row[target];
}

/* The stream as int64 ids: a 1-D or [1,N] integer tensor. */
static oct_status stream_ids(oct_lm *lm, const oct_tensor *tokens, uint64_t count,
                             int64_t *ids)
{
    for (uint64_t i = 0; i < count; i++) {
        double v = oct_tensor_element(tokens, i);
        ids[i] = v >= -1e18 && v <= 1e18 ? (int64_t)v : -1;
    }
    return lm_check_ids(lm, ids, (size_t)count, "token stream");
}

/* The cache bytes per token of one run's present.* outputs (see octet.h):
 * at their own element size, and at float32's. */
static void kv_bytes(const oct_tensor *outs, size_t n, oct_lm_perplexity *out)
{
    out->kv_bytes_per_token = out->kv_fp32_bytes_per_token = 0;
    for (size_t i = 0; i < n; i++) {
        const oct_tensor *t = &outs[i];
        if (strncmp(t->name, "present.", 8) || t->rank != 4)
            continue;
        uint64_t elems = (uint64_t)(t->dims[1] * t->dims[3]);
        out->kv_bytes_per_token += elems * (oct_dtype_bits(t->dtype) / 8);
        out->kv_fp32_bytes_per_token += elems * 4;
    }
}

oct_status oct_lm_eval_perplexity(oct_lm *lm, const oct_tensor *tokens, size_t window,
                                  size_t max_windows, oct_progress_fn progress,
                                  void *user, oct_lm_perplexity *out)
{
    if (!lm || !tokens || !out)
        return OCT_EUSAGE;
    oct_ctx *ctx = lm->ctx;
    memset(out, 0, sizeof *out);
    lm_graph *g = &lm->pre;
    if (!g->model)
        return oct_error(ctx, OCT_EUSAGE, "perplexity needs a prefill graph");
    int32_t dt = tokens->dtype;
    bool integer = dt == OCT_DT_INT64 || dt == OCT_DT_INT32 || dt == OCT_DT_INT16 ||
                   dt == OCT_DT_UINT16 || dt == OCT_DT_UINT32 || dt == OCT_DT_UINT8 ||
                   dt == OCT_DT_INT8 || dt == OCT_DT_UINT64;
    if (!integer || !(tokens->rank == 1 || (tokens->rank == 2 && tokens->dims[0] == 1)))
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, tokens->name,
                         "the token stream must be a 1-D (or [1,N]) integer array, not "
                         "%s of rank %d", oct_dtype_name(dt), tokens->rank);
    int64_t seq = g->seq;
    int64_t w = window ? (int64_t)window : seq > 0 ? seq : 128;
    if (w < 2 || (seq > 0 && w > seq))
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUSAGE, NULL, 0, -1, "input_ids",
                         "window %lld: it must be at least 2 and at most the prefill "
                         "graph's sequence length (%lld, input 'input_ids')",
                         (long long)w, (long long)seq);
    uint64_t n_tokens = oct_tensor_elems(tokens);
    uint64_t windows = n_tokens / (uint64_t)w;
    if (max_windows && windows > max_windows)
        windows = max_windows;
    if (!windows)
        return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, tokens->name,
                         "the token stream has %llu tokens: not one window of %lld",
                         (unsigned long long)n_tokens, (long long)w);
    uint64_t used = windows * (uint64_t)w;
    int64_t *ids = oct_malloc(ctx, (size_t)used * sizeof *ids);
    if (!ids)
        return OCT_EINTERNAL;
    oct_status st = stream_ids(lm, tokens, used, ids);
    if (!st)
        st = lm_feed_build(lm, g, seq > 0 ? seq : w);
    oct_tensor *feed_ids = NULL, *feed_mask = NULL;
    for (size_t i = 0; !st && i < g->n_in; i++) {
        if (g->role[i] == LM_IDS)
            feed_ids = &g->feed[i];
        if (g->role[i] == LM_MASK)
            feed_mask = &g->feed[i];
    }
    if (!st)
        st = oct_runner_prepare(g->runner, g->feed, g->n_in);
    double t0 = lm_now(), total = 0;
    uint64_t targets = 0;
    for (uint64_t k = 0; !st && k < windows; k++) {
        const int64_t *win = ids + k * (uint64_t)w;
        for (int64_t i = 0; i < g->seq; i++) {
            lm_store_int(feed_ids->dtype, feed_ids->data, (size_t)i, i < w ? win[i] : 0);
            if (feed_mask)
                lm_store_int(feed_mask->dtype, feed_mask->data, (size_t)i, i < w);
        }
        oct_tensor *outs = NULL;
        size_t n_outs = 0;
        if ((st = oct_runner_run(g->runner, g->feed, g->n_in, &outs, &n_outs)))
            break;
        const oct_tensor *lg = &outs[g->logits];
        if (k == 0)
            kv_bytes(outs, n_outs, out);
        if (lg->dtype != OCT_DT_FLOAT || lg->rank != 3 || lg->dims[1] < w ||
            lg->dims[2] != lm->vocab) {
            st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 1, -1, "logits",
                           "prefill graph: logits are not FLOAT [1,>=%lld,%lld]",
                           (long long)w, (long long)lm->vocab);
        } else {
            const float *rows = lg->data;
            for (int64_t t = 1; t < w; t++)
                total += token_nll(rows + (t - 1) * lm->vocab, lm->vocab, win[t]);
            targets += (uint64_t)(w - 1);
        }
        oct_tensors_free(ctx, outs, n_outs);
        if (!st && progress)
            progress(user, "windows", (size_t)(k + 1), (size_t)windows);
    }
    oct_free(ctx, ids, (size_t)used * sizeof *ids);
    if (st)
        return st;
    out->windows = windows;
    out->targets = targets;
    out->mean_nll = total / (double)targets;
    out->perplexity = exp(out->mean_nll);
    out->bits_per_token = out->mean_nll / log(2.0);
    out->seconds = lm_now() - t0;
    if (!isfinite(out->mean_nll))
        return oct_error(ctx, OCT_EINPUT, "the mean negative log-likelihood is not finite "
                         "(the model's logits hold NaN or infinity)");
    return OCT_OK;
}
