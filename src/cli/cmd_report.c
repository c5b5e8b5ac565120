/*
 * cmd_report.c: `octet report FP32.onnx QDQ.onnx --data DATA [--json R]
 * [--svg PICTURE]`: the per-tensor quantization report for any pair of
 * models, including QDQ models written by other tools, as a table, as JSON
 * and as an SVG bar chart (each file written atomically).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Loads and verifies a model and runs the default passes on it. */
static oct_status load(oct_ctx *ctx, const char *path, oct_model **m)
{
    oct_status st = oct_model_load_file(ctx, path, 0, m);
    if (!st)
        st = oct_run_passes(ctx, *m, "default");
    return st;
}

int cmd_report(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL}, *data = NULL, *json = NULL, *svg = NULL, *v;
    unsigned long long max_samples = 0;
    int n = 0;
    oct_limits limits = oct_default_limits();
    for (int i = 1; i < argc; i++) {
        int lim = cli_limit_opt("report", argc, argv, &i, &limits);
        if (lim < 0)
            return OCT_EUSAGE;
        if (lim > 0)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--data")))
            data = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--json")))
            json = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--svg")))
            svg = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--samples"))) {
            char *end;
            max_samples = strtoull(v, &end, 10);
            if (*end)
                return cli_usage_error("report", "--samples takes an integer");
        } else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("report", "unknown option '%s'", argv[i]);
        else if (n < 2)
            paths[n++] = argv[i];
        else
            return cli_usage_error("report", "give exactly two models");
    }
    if (n != 2 || !data)
        return cli_usage_error("report", "usage: octet report FP32.onnx QDQ.onnx --data DATA "
                               "[--json FILE] [--svg FILE]");
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx)
        return OCT_EINTERNAL;
    *oct_ctx_limits(ctx) = limits;
    oct_model *fp32 = NULL, *qdq = NULL;
    oct_dataset *ds = NULL;
    oct_report *rep = NULL;
    oct_status st = load(ctx, paths[0], &fp32);
    if (!st)
        st = load(ctx, paths[1], &qdq);
    if (!st)
        st = oct_dataset_open(ctx, data, fp32, max_samples, &ds);
    oct_samples samples = oct_dataset_samples(ds);
    if (!st)
        st = oct_report_compare(ctx, fp32, qdq, &samples, &rep);
    if (!st)
        st = cli_report_out(ctx, rep, json, svg);
    oct_report_free(ctx, rep);
    oct_dataset_close(ds);
    return cli_finish(ctx, st);
}

oct_status cli_report_out(oct_ctx *ctx, const oct_report *rep, const char *json,
                          const char *svg)
{
    char *text;
    size_t len;
    oct_status st = oct_report_text(ctx, rep, &text, &len);
    if (!st) {
        fwrite(text, 1, len, stdout);
        oct_buffer_free(ctx, text, len + 1);
    }
    if (!st && json)
        st = oct_report_write_json(ctx, rep, json);
    if (!st && svg)
        st = oct_report_write_svg(ctx, rep, svg);
    return st;
}
