/*
 * cmd_quantize.c: `octet quantize MODEL --calib DATA -o OUT.onnx`: static
 * post-training quantization to a QDQ ONNX model, with a report; with
 * --weights-only, weight-only quantization (no data; --report lists each
 * weight's format, size and SQNR, quant_report_wo.c); with
 * --activations=dynamic, dynamic quantization (no data, no report).  FP16
 * and BF16 models are quantized as their float32 upcast (quant_upcast.c).  A client
 * of the public API (oct_quantize): this file parses flags, shows progress
 * and prints the report; the pipeline lives in src/api/quantize.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "octet/octet.h"

typedef enum { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_LINES, PROGRESS_JSON,
               PROGRESS_NONE } progress_mode;

typedef struct progress_state {
    progress_mode mode;
    const char *stage;          /* the stage being timed, since t0 */
    struct timespec t0;
} progress_state;

/* Seconds since the stage `what` began (its first report), and an estimate
 * of the rest from the mean time per step so far, as text. */
static const char *progress_times(progress_state *ps, const char *what, size_t done,
                                  size_t total, char *buf, size_t size)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (ps->stage != what)
        ps->stage = what, ps->t0 = t;
    double el = (double)(t.tv_sec - ps->t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - ps->t0.tv_nsec);
    if (done && done < total)
        snprintf(buf, size, " %.0f s, about %.0f s left", el, el / (double)done * (double)(total - done));
    else
        snprintf(buf, size, " %.0f s", el);
    return buf;
}

static void show_progress(void *user, const char *what, size_t done, size_t total)
{
    progress_state *ps = user;
    char times[64];
    switch (ps->mode) {
    case PROGRESS_BAR: {
        int width = 30, filled = total ? (int)(done * (size_t)width / total) : width;
        fprintf(stderr, "\r%-11s [%.*s%*s] %zu/%zu%s", what, filled,
                "##############################", width - filled, "", done, total,
                progress_times(ps, what, done, total, times, sizeof times));
        if (done == total)
            fputc('\n', stderr);
        break;
    }
    case PROGRESS_LINES:
        fprintf(stderr, "%s [%zu/%zu]%s\n", what, done, total,
                progress_times(ps, what, done, total, times, sizeof times));
        break;
    case PROGRESS_JSON:
        fprintf(stderr, "{\"stage\": \"%s\", \"done\": %zu, \"total\": %zu}\n",
                what, done, total);
        break;
    default:
        break;
    }
}

/* Options passed to oct_quant_options_set under their own names. */
static const char *const passthrough[] = {
    "method", "percentile", "precision", "activations", "weights", "block-size",
    "fp8", "op-types", "exclude-op-types", "exclude-nodes", "config", "engine",
    "input-shape", "save-stats", "load-stats", "weight-format", "weight-scheme",
    "format", "dynamic-granularity", "algo", "smooth", "smoothquant", "kv-cache-quant",
    "wo-compute", "kv-cache", "kv-scales-from", "gptq-damp",
};

/* An option the API refused: its diagnostic becomes a usage error. */
static int option_error(oct_ctx *ctx)
{
    size_t n = oct_diag_count(ctx);
    const char *msg = n ? oct_diag_get(ctx, n - 1)->message : "bad option";
    int code = cli_usage_error("quantize", "--%s", msg);
    oct_ctx_free(ctx);
    return code;
}

int cmd_quantize(int argc, char **argv)
{
    const char *model = NULL, *calib = NULL, *out = NULL, *report = NULL, *svg = NULL, *v;
    unsigned long long max_samples = 0;
    bool allow_external = false, weights_only = false, dynamic = false, smooth_or_kv = false;
    bool scales_from = false; /* --kv-scales-from: the cache's scales given */
    progress_state ps = {.mode = isatty(2) ? PROGRESS_BAR : PROGRESS_LINES};
    oct_limits limits = oct_default_limits();
    oct_ctx *ctx = oct_ctx_new();
    oct_quant_options *qo;
    if (!ctx || oct_quant_options_new(ctx, &qo)) {
        fprintf(stderr, "octet: out of memory\n");
        oct_ctx_free(ctx);
        return OCT_EINTERNAL;
    }
#define USAGE(...) do { oct_ctx_free(ctx); return cli_usage_error("quantize", __VA_ARGS__); } while (0)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int lim = cli_limit_opt("quantize", argc, argv, &i, &limits);
        if (lim < 0) {
            oct_ctx_free(ctx);
            return OCT_EUSAGE;
        }
        if (lim > 0)
            continue;
        if (!strcmp(a, "--smooth") || !strcmp(a, "--smoothquant")) { /* alone: alpha 0.5 */
            smooth_or_kv = true;
            if (oct_quant_options_set(qo, "smooth", ""))
                return option_error(ctx);
            continue;
        }
        bool passed = false;
        for (size_t k = 0; !passed && k < sizeof passthrough / sizeof *passthrough; k++) {
            char flag[64];
            snprintf(flag, sizeof flag, "--%s", passthrough[k]);
            if ((v = cli_opt_value(argc, argv, &i, flag))) {
                if (oct_quant_options_set(qo, passthrough[k], v))
                    return option_error(ctx);
                passed = true;
                /* dynamic quantization calibrates nothing (checked below) */
                if (!strcmp(passthrough[k], "activations"))
                    dynamic = !strcmp(v, "dynamic");
                /* ...except for these, which do calibrate */
                scales_from |= !strcmp(passthrough[k], "kv-scales-from");
                smooth_or_kv |= !strncmp(passthrough[k], "smooth", 6) ||
                                !strncmp(passthrough[k], "kv-cache", 8);
            }
        }
        if (passed)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--calib")))
            calib = v;
        else if ((v = cli_opt_value(argc, argv, &i, "-o")))
            out = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--report")))
            report = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--svg")))
            svg = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--calib-samples"))) {
            char *end;
            max_samples = strtoull(v, &end, 10);
            if (*end || !max_samples)
                USAGE("--calib-samples takes a positive integer");
        } else if ((v = cli_opt_value(argc, argv, &i, "--progress"))) {
            if (!strcmp(v, "bar"))
                ps.mode = PROGRESS_BAR;
            else if (!strcmp(v, "lines"))
                ps.mode = PROGRESS_LINES;
            else if (!strcmp(v, "json"))
                ps.mode = PROGRESS_JSON;
            else if (!strcmp(v, "none"))
                ps.mode = PROGRESS_NONE;
            else
                USAGE("--progress must be bar, lines, json or none");
        } else if (!strcmp(a, "--ignore-nonfinite")) {
            if (oct_quant_options_set(qo, "ignore-nonfinite", "1"))
                return option_error(ctx);
        } else if (!strcmp(a, "--weights-only") || !strcmp(a, "--clip-search") ||
                   !strcmp(a, "--act-order") || !strcmp(a, "--gptq-refit") ||
                   !strcmp(a, "--gptq-float-target") || !strcmp(a, "--gptq-group-search")) {
            weights_only |= a[2] == 'w';
            if (oct_quant_options_set(qo, a + 2, "1"))
                return option_error(ctx);
        } else if (!strcmp(a, "--equalize") || !strcmp(a, "--bias-correction")) {
            if (oct_quant_options_set(qo, a + 2, "1"))
                return option_error(ctx);
        } else if (!strcmp(a, "--allow-external-data"))
            allow_external = true;
        else if (a[0] == '-' && a[1])
            USAGE("unknown option '%s'", a);
        else if (!model)
            model = a;
        else
            USAGE("more than one model given");
    }
    if (!model)
        USAGE("no model given");
    if (!out)
        USAGE("no output given (-o OUT.onnx)");
    bool loading_stats = false;
    for (int i = 1; i < argc; i++)
        loading_stats |= !strncmp(argv[i], "--load-stats", 12);
    bool wo_calib = false; /* --algo=gptq|awq: weights-only from samples */
    for (int i = 1; i < argc; i++)
        wo_calib |= !strcmp(argv[i], "--algo=gptq") || !strcmp(argv[i], "--algo=awq") ||
                    !strcmp(argv[i], "--algo=awq+gptq") ||
                    (!strcmp(argv[i], "--algo") && i + 1 < argc && strcmp(argv[i + 1], "rtn"));
    if (weights_only && ((loading_stats && !wo_calib) || svg || (calib && !wo_calib)))
        USAGE("--weights-only calibrates nothing (except with --algo=gptq or awq, which "
              "take --calib, and gptq --load-stats): no --svg");
    if (weights_only && wo_calib && !calib && !loading_stats)
        USAGE("--algo=gptq and --algo=awq need calibration data (--calib DATA)");
    if (dynamic && (loading_stats || report || svg || (calib && !smooth_or_kv)))
        USAGE("--activations=dynamic calibrates nothing (except for --smooth and "
              "--kv-cache, which take --calib): no --load-stats, --report or --svg");
    if (smooth_or_kv && !calib && !scales_from)
        USAGE("--smooth and --kv-cache (--kv-cache-quant) need calibration data "
              "(--calib DATA)");
    if (!calib && !loading_stats && !weights_only && !dynamic && !scales_from)
        USAGE("no calibration data given (--calib DATA, or --load-stats S.json)");
#undef USAGE

    *oct_ctx_limits(ctx) = limits;
    oct_quant_options_set_progress(qo, show_progress, &ps);
    oct_model *m = NULL;
    oct_dataset *ds = NULL;
    oct_report *rep = NULL;
    oct_status st = oct_model_load_file(ctx, model,
                                        allow_external ? OCT_LOAD_EXTERNAL_DATA : 0, &m);
    if (!st && calib)
        st = oct_dataset_open(ctx, calib, m, max_samples, &ds);
    oct_samples samples = oct_dataset_samples(ds);
    if (!st)
        st = oct_quantize(ctx, m, qo, ds ? &samples : NULL,
                          weights_only && !report ? NULL : &rep); /* weight-only: asked */
    if (!st)
        st = oct_model_save_file(ctx, m, out);
    if (!st && rep)
        st = cli_report_out(ctx, rep, report, svg);
    oct_report_free(ctx, rep);
    oct_dataset_close(ds);
    return cli_finish(ctx, st);
}
