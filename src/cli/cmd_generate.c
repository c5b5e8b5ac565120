/*
 * cmd_generate.c: `octet generate MODEL --prompt-ids 1,2,3 | --prompt TEXT
 * --tokenizer tok.bin -n N`: text generation with a decoder-only language
 * model in the decode-graph convention (octet.h, "language models"),
 * optionally with a prefill graph for the prompt.  A client of the public
 * API (oct_lm_generate): this file parses flags, encodes the prompt,
 * prints each token as it comes (the prompt's text, then the generated
 * text, or the generated ids without a tokenizer) on stdout and the speed
 * of prefill and decode on stderr.  --jit --kv-cache=inplace compiles the
 * decode graph with the cache in place (a step writes only the new
 * token's key and value: docs/compile.md).  MODEL may also be OUT/NAME.so
 * from `octet compile --emit=so --kv-cache=inplace`: the library is loaded
 * as `octet run` loads one (run_so.c) and generates through
 * oct_lm_open_compiled, every prompt token a decode step.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

typedef struct gen_args {
    const char *model, *prefill, *prompt, *prompt_ids, *tokenizer;
    long n;
    bool jit, allow_external;
    const char *temperature, *top_k, *seed, *stop_id, *cache_size, *kv_cache;
    oct_limits limits;
} gen_args;

/* MODEL is a library from `octet compile --emit=so` (NAME.so). */
static bool is_library(const char *path)
{
    size_t n = strlen(path);
    return n > 3 && !strcmp(path + n - 3, ".so");
}

static int parse_args(int argc, char **argv, gen_args *a)
{
    memset(a, 0, sizeof *a);
    a->n = -1;
    a->limits = oct_default_limits();
    for (int i = 1; i < argc; i++) {
        const char *v;
        int lim = cli_limit_opt("generate", argc, argv, &i, &a->limits);
        if (lim < 0)
            return OCT_EUSAGE;
        if (lim > 0)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--prompt-ids"))) {
            a->prompt_ids = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--prompt"))) {
            a->prompt = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--tokenizer"))) {
            a->tokenizer = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--prefill"))) {
            a->prefill = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "-n"))) {
            char *end;
            errno = 0;
            a->n = strtol(v, &end, 10);
            if (!*v || *end || errno || a->n < 0 || a->n > 1000000)
                return cli_usage_error("generate", "-n takes a count from 0 to 1000000");
        } else if ((v = cli_opt_value(argc, argv, &i, "--temperature"))) {
            a->temperature = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--top-k"))) {
            a->top_k = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--seed"))) {
            a->seed = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--stop-id"))) {
            a->stop_id = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--cache-size"))) {
            a->cache_size = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--kv-cache"))) {
            a->kv_cache = v;
        } else if (!strcmp(argv[i], "--jit")) {
            a->jit = true;
        } else if (!strcmp(argv[i], "--allow-external-data")) {
            a->allow_external = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("generate", "unknown option '%s'", argv[i]);
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return cli_usage_error("generate", "more than one model given ('%s')", argv[i]);
        }
    }
    if (!a->model)
        return cli_usage_error("generate", "no model given");
    if (is_library(a->model) && (a->jit || a->prefill))
        return cli_usage_error("generate", "%s with a compiled library (it runs as "
                               "compiled, the prompt through its decode steps)",
                               a->jit ? "--jit does not mix" : "--prefill does not mix");
    if (a->kv_cache && !strcmp(a->kv_cache, "inplace") && !a->jit && !is_library(a->model))
        return cli_usage_error("generate", "--kv-cache=inplace needs --jit (the cache "
                               "lives in the compiled code)");
    if (a->n < 0)
        return cli_usage_error("generate", "no -n N (the number of tokens to generate)");
    if (a->prompt && a->prompt_ids)
        return cli_usage_error("generate", "--prompt and --prompt-ids do not mix");
    if (a->prompt && !a->tokenizer)
        return cli_usage_error("generate", "--prompt needs --tokenizer");
    if (!a->prompt && !a->prompt_ids && !a->tokenizer)
        return cli_usage_error("generate", "no prompt: give --prompt-ids, or --prompt "
                               "with --tokenizer");
    return 0;
}

/* Parses "1,2,3" into *ids (malloc'ed); an exit code on error. */
static int parse_ids(const char *s, int32_t **ids, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    if (!*ids)
        return cli_usage_error("generate", "out of memory");
    for (const char *p = s;;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(*ids);
            *ids = NULL;
            return cli_usage_error("generate", "--prompt-ids takes token ids (integers "
                                   "from 0) separated by commas, not '%s'", s);
        }
        (*ids)[(*n)++] = (int32_t)v;
        if (!*end)
            break;
        p = end + 1;
    }
    return 0;
}

/* What each generated token prints. */
typedef struct printer {
    oct_ctx *ctx;
    const oct_tokenizer *tok;   /* NULL: ids */
    int32_t prev;
    size_t count;
} printer;

/* Prints bytes, leaving out lone control bytes (a byte piece such as
 * <0x07> would otherwise reach the terminal) but keeping whitespace. */
static void print_piece(const char *bytes, size_t len)
{
    if (len == 1 && !isprint((unsigned char)bytes[0]) && !isspace((unsigned char)bytes[0]))
        return;
    fwrite(bytes, 1, len, stdout);
}

static oct_status print_token(void *user, int32_t id)
{
    printer *p = user;
    if (!p->tok) {
        printf("%s%d", p->count ? " " : "", id);
    } else {
        const char *bytes;
        size_t len;
        oct_status st = oct_tokenizer_decode(p->ctx, p->tok, p->prev, id, &bytes, &len);
        if (st)
            return st;
        print_piece(bytes, len);
    }
    p->prev = id;
    p->count++;
    fflush(stdout);
    return OCT_OK;
}

static void print_speed(const char *what, size_t tokens, double seconds)
{
    fprintf(stderr, "%s: %zu token%s in %.1f ms (%.1f tokens/s)\n", what, tokens,
            tokens == 1 ? "" : "s", seconds * 1e3,
            seconds > 0 ? (double)tokens / seconds : 0.0);
}

/* Hands the sampling options to the model by their API keys. */
static oct_status set_options(oct_lm *lm, const gen_args *a)
{
    const struct { const char *key, *value; } opts[] = {
        {"temperature", a->temperature}, {"top-k", a->top_k}, {"seed", a->seed},
        {"stop-id", a->stop_id}, {"cache-size", a->cache_size}, {"kv-cache", a->kv_cache}};
    oct_status st = OCT_OK;
    for (size_t i = 0; !st && i < sizeof opts / sizeof opts[0]; i++)
        if (opts[i].value)
            st = oct_lm_set(lm, opts[i].key, opts[i].value);
    return st;
}

/* The model: ONNX graphs on the interpreter or the JIT, or a library
 * (lib, opened here and closed by the caller). */
static oct_status open_lm(oct_ctx *ctx, const gen_args *a, cli_so_lib *lib, oct_lm **lm)
{
    if (is_library(a->model)) {
        oct_ctx_set_file(ctx, a->model);
        oct_status st = cli_so_open(ctx, a->model, lib);
        oct_ctx_set_file(ctx, NULL);
        if (st)
            return st;
        oct_entry_points ep = {.run = lib->run, .run_threads = lib->run_threads,
                               .scratch_size = lib->scratch_size,
                               .signature = lib->signature};
        return oct_lm_open_compiled(ctx, &ep, a->model, lm);
    }
    unsigned flags = a->allow_external ? OCT_LOAD_EXTERNAL_DATA : 0;
    oct_model *dec, *pre = NULL;
    oct_status st = oct_model_load_file(ctx, a->model, flags, &dec);
    if (!st && a->prefill)
        st = oct_model_load_file(ctx, a->prefill, flags, &pre);
    if (!st)
        st = oct_lm_open(ctx, dec, pre, a->jit ? "jit" : "interp", lm);
    return st;
}

static oct_status generate(oct_ctx *ctx, const gen_args *a, int32_t *prompt, size_t n_prompt,
                           const oct_tokenizer *tok)
{
    cli_so_lib lib = {0};
    oct_lm *lm = NULL;
    oct_status st = open_lm(ctx, a, &lib, &lm);
    if (!st)
        st = set_options(lm, a);
    if (!st && tok && oct_tokenizer_vocab_size(tok) != oct_lm_vocab_size(lm))
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL,
                          "tokenizer '%s' has %zu pieces; the model's vocabulary has %zu",
                          a->tokenizer, oct_tokenizer_vocab_size(tok),
                          oct_lm_vocab_size(lm));
    int32_t *out = malloc(((size_t)a->n + 1) * sizeof *out);
    if (!st && !out)
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "out of memory");
    printer p = {ctx, tok, -1, 0};
    /* the prompt's text first, as llama2.c prints it */
    for (size_t i = 0; !st && tok && i < n_prompt; i++) {
        const char *bytes;
        size_t len;
        st = oct_tokenizer_decode(ctx, tok, p.prev, prompt[i], &bytes, &len);
        if (!st)
            print_piece(bytes, len);
        p.prev = prompt[i];
    }
    size_t n_out = 0;
    oct_lm_timing tm;
    if (!st)
        st = oct_lm_generate(lm, prompt, n_prompt, (size_t)a->n, print_token, &p, out,
                             &n_out, &tm);
    if (p.count || (tok && n_prompt))
        printf("\n");
    fflush(stdout);
    if (!st) {
        if (tm.prepare_seconds >= 0.05)
            fprintf(stderr, "prepare: %.1f s (%s)\n", tm.prepare_seconds,
                    a->jit ? "passes and JIT compilation"
                    : is_library(a->model) ? "the cache" : "passes");
        print_speed("prefill", tm.prefill_tokens, tm.prefill_seconds);
        print_speed("decode", tm.decode_tokens, tm.decode_seconds);
    }
    free(out);
    oct_lm_free(lm);
    cli_so_close(&lib);
    return st;
}

int cmd_generate(int argc, char **argv)
{
    gen_args a;
    int code = parse_args(argc, argv, &a);
    if (code)
        return code;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    if (a.prompt_ids && (code = parse_ids(a.prompt_ids, &prompt, &n_prompt)))
        return code;
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        free(prompt);
        fprintf(stderr, "octet: out of memory\n");
        return OCT_EINTERNAL;
    }
    *oct_ctx_limits(ctx) = a.limits;
    oct_tokenizer *tok = NULL;
    oct_status st = OCT_OK;
    if (a.tokenizer)
        st = oct_tokenizer_load(ctx, a.tokenizer, &tok);
    int32_t *encoded = NULL;
    size_t n_encoded = 0;
    if (!st && !a.prompt_ids) {
        /* no --prompt with a tokenizer: BOS alone, as llama2.c starts */
        const char *text = a.prompt ? a.prompt : "";
        st = oct_tokenizer_encode(ctx, tok, text, strlen(text), 1, &encoded, &n_encoded);
    }
    if (!st)
        st = generate(ctx, &a, prompt ? prompt : encoded, prompt ? n_prompt : n_encoded, tok);
    oct_buffer_free(ctx, encoded, n_encoded * sizeof *encoded);
    free(prompt);
    return cli_finish(ctx, st);
}
