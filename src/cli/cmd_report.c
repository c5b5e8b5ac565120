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
#include "frontend/dataset.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "passes/quant.h"

static oct_status get_sample(void *user, size_t index, ir_tensor **inputs,
                             oct_ctx *ctx)
{
    (void)ctx;
    return fe_dataset_get(user, index, inputs);
}

static oct_status load(oct_ctx *ctx, const char *path, ir_model **m)
{
    fe_load_opts lo = {0};
    oct_status st = fe_load_file(ctx, path, &lo, m);
    if (!st)
        st = ir_verify(*m, ctx);
    if (!st)
        st = pass_run_default(*m, ctx);
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
    ir_model *fp32 = NULL, *qdq = NULL;
    fe_dataset *ds = NULL;
    quant_report rep;
    oct_status st = load(ctx, paths[0], &fp32);
    if (!st)
        st = load(ctx, paths[1], &qdq);
    if (!st)
        st = fe_dataset_open(ctx, data, fp32, max_samples, &ds);
    quant_samples samples = {ds ? fe_dataset_count(ds) : 0, get_sample, ds, data};
    if (!st)
        st = quant_report_pair(fp32, qdq, &samples, &rep, ctx);
    if (!st) {
        quant_report_table(stdout, &rep, NULL, NULL);
        if (json)
            st = quant_report_json(ctx, json, &rep, NULL, NULL);
    }
    if (!st && svg) {
        char *text;
        size_t len;
        st = quant_report_svg(ctx, &rep, NULL, NULL, &text, &len);
        if (!st)
            st = ir_write_atomic(ctx, svg, text, len);
    }
    fe_dataset_close(ds);
    return cli_finish(ctx, st);
}
