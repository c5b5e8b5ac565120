/*
 * cmd_eval.c: `octet eval MODEL --perplexity TOKENS.npy [--window 128]`:
 * the perplexity of a language model's prefill graph ([1,S] input_ids ->
 * [1,S,V] logits) over a token stream, after the protocol of stories260k's
 * README (non-overlapping windows, each from an empty cache, tokens 1..W-1
 * of each scored).  A client of the public API (oct_lm_eval_perplexity):
 * this file parses flags, shows progress on stderr, prints the figures and
 * writes them as JSON with --report.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

typedef enum { EVAL_BAR, EVAL_LINES, EVAL_NONE } eval_progress;

typedef struct eval_args {
    const char *model, *tokens, *report;
    unsigned long window, max_windows;
    bool jit, allow_external, int8_rows;
    eval_progress progress;
    oct_limits limits;
} eval_args;

static bool parse_count(const char *v, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *v == '-' || *end || errno || n == 0 || n > 1000000000ull)
        return false;
    *out = (unsigned long)n;
    return true;
}

static int parse_args(int argc, char **argv, eval_args *a)
{
    memset(a, 0, sizeof *a);
    a->progress = isatty(2) ? EVAL_BAR : EVAL_LINES;
    a->limits = oct_default_limits();
    for (int i = 1; i < argc; i++) {
        const char *v;
        int lim = cli_limit_opt("eval", argc, argv, &i, &a->limits);
        if (lim < 0)
            return OCT_EUSAGE;
        if (lim > 0)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--perplexity"))) {
            a->tokens = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--window"))) {
            if (!parse_count(v, &a->window) || a->window < 2)
                return cli_usage_error("eval", "--window takes a token count of at least 2");
        } else if ((v = cli_opt_value(argc, argv, &i, "--max-windows"))) {
            if (!parse_count(v, &a->max_windows))
                return cli_usage_error("eval", "--max-windows takes a positive count");
        } else if ((v = cli_opt_value(argc, argv, &i, "--report"))) {
            a->report = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--progress"))) {
            if (!strcmp(v, "bar"))
                a->progress = EVAL_BAR;
            else if (!strcmp(v, "lines"))
                a->progress = EVAL_LINES;
            else if (!strcmp(v, "none"))
                a->progress = EVAL_NONE;
            else
                return cli_usage_error("eval", "--progress must be bar, lines or none");
        } else if (!strcmp(argv[i], "--jit")) {
            a->jit = true;
        } else if (!strcmp(argv[i], "--int8-rows")) {
            a->int8_rows = true;
        } else if (!strcmp(argv[i], "--allow-external-data")) {
            a->allow_external = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("eval", "unknown option '%s'", argv[i]);
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return cli_usage_error("eval", "more than one model given ('%s')", argv[i]);
        }
    }
    if (!a->model)
        return cli_usage_error("eval", "no model given");
    if (!a->tokens)
        return cli_usage_error("eval", "no --perplexity TOKENS.npy given");
    return 0;
}

/* A bar on a terminal; otherwise a line at every sixteenth and the end. */
static void show_progress(void *user, const char *what, size_t done, size_t total)
{
    const eval_args *a = user;
    if (a->progress == EVAL_BAR) {
        int width = 30, filled = total ? (int)(done * (size_t)width / total) : width;
        fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu", what, filled,
                "##############################", width - filled, "", done, total);
        if (done == total)
            fputc('\n', stderr);
    } else if (a->progress == EVAL_LINES) {
        size_t step = total >= 16 ? total / 16 : 1;
        if (done % step == 0 || done == total)
            fprintf(stderr, "%s [%zu/%zu]\n", what, done, total);
    }
}

/* Writes the figures as JSON (through a temporary file, renamed). */
static oct_status write_report(oct_ctx *ctx, const eval_args *a, size_t window,
                               const oct_lm_perplexity *r)
{
    char text[4096];
    /* the paths, escaped for JSON */
    char model[1024], tokens[1024];
    const char *src[2] = {a->model, a->tokens};
    char *dst[2] = {model, tokens};
    for (int k = 0; k < 2; k++) {
        size_t o = 0;
        for (const char *s = src[k]; *s && o + 7 < sizeof model; s++) {
            unsigned char c = (unsigned char)*s;
            if (c == '"' || c == '\\')
                o += (size_t)snprintf(dst[k] + o, 3, "\\%c", c);
            else if (c < 0x20)
                o += (size_t)snprintf(dst[k] + o, 7, "\\u%04x", c);
            else
                dst[k][o++] = (char)c;
        }
        dst[k][o] = '\0';
    }
    int len = snprintf(text, sizeof text,
                       "{\n  \"model\": \"%s\",\n  \"tokens\": \"%s\",\n"
                       "  \"engine\": \"%s\",\n  \"window\": %zu,\n  \"windows\": %llu,\n"
                       "  \"targets\": %llu,\n  \"mean_nll\": %.17g,\n"
                       "  \"perplexity\": %.17g,\n  \"bits_per_token\": %.17g,\n"
                       "  \"seconds\": %.6f,\n  \"kv_bytes_per_token\": %llu,\n"
                       "  \"kv_fp32_bytes_per_token\": %llu\n}\n",
                       model, tokens, a->jit ? "jit" : "interp", window,
                       (unsigned long long)r->windows, (unsigned long long)r->targets,
                       r->mean_nll, r->perplexity, r->bits_per_token, r->seconds,
                       (unsigned long long)r->kv_bytes_per_token,
                       (unsigned long long)r->kv_fp32_bytes_per_token);
    if (len < 0 || (size_t)len >= sizeof text)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "report too long");
    return oct_write_file(ctx, a->report, text, (size_t)len);
}

static oct_status evaluate(oct_ctx *ctx, eval_args *a)
{
    oct_model *m;
    oct_tensor tokens;
    oct_status st = oct_model_load_file(ctx, a->model,
                                        a->allow_external ? OCT_LOAD_EXTERNAL_DATA : 0, &m);
    if (!st && a->int8_rows)
        st = oct_run_passes(ctx, m, "mnb_int8_rows");
    if (!st)
        st = oct_tensor_read(ctx, a->tokens, &tokens);
    oct_lm *lm = NULL;
    if (!st)
        st = oct_lm_open(ctx, NULL, m, a->jit ? "jit" : "interp", &lm);
    oct_lm_perplexity r;
    if (!st) {
        /* diagnostics about the stream name its file */
        oct_ctx_set_file(ctx, a->tokens);
        st = oct_lm_eval_perplexity(lm, &tokens, a->window, a->max_windows,
                                    a->progress == EVAL_NONE ? NULL : show_progress, a, &r);
        oct_ctx_set_file(ctx, NULL);
    }
    if (!st) {
        size_t window = r.windows ? (size_t)(r.targets / r.windows) + 1 : 0;
        printf("windows: %llu of %zu tokens (%llu targets)\n",
               (unsigned long long)r.windows, window, (unsigned long long)r.targets);
        printf("mean nll: %.6f nats/token\n", r.mean_nll);
        printf("perplexity: %.6f\n", r.perplexity);
        printf("bits per token: %.6f\n", r.bits_per_token);
        if (r.kv_fp32_bytes_per_token)
            printf("kv cache: %llu bytes per token (float32: %llu)\n",
                   (unsigned long long)r.kv_bytes_per_token,
                   (unsigned long long)r.kv_fp32_bytes_per_token);
        fflush(stdout);
        fprintf(stderr, "eval: %.1f s (%.1f tokens/s)\n", r.seconds,
                r.seconds > 0 ? (double)(r.targets + r.windows) / r.seconds : 0.0);
        if (a->report)
            st = write_report(ctx, a, window, &r);
    }
    oct_lm_free(lm);
    return st;
}

int cmd_eval(int argc, char **argv)
{
    eval_args a;
    int code = parse_args(argc, argv, &a);
    if (code)
        return code;
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        fprintf(stderr, "octet: out of memory\n");
        return OCT_EINTERNAL;
    }
    *oct_ctx_limits(ctx) = a.limits;
    return cli_finish(ctx, evaluate(ctx, &a));
}
