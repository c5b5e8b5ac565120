/*
 * cmd_stats.c: `octet stats merge A.json B.json ... -o C.json`: merges
 * calibration statistics of one model exactly, so calibration can be split
 * across processes or machines.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cmd_stats(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "merge") != 0)
        return cli_usage_error("stats", "expected 'merge'");
    const char *out = NULL, *v;
    const char **inputs = calloc((size_t)argc + 1, sizeof *inputs);
    size_t n = 0;
    oct_limits limits = oct_default_limits();
    if (!inputs)
        return OCT_EINTERNAL;
    for (int i = 2; i < argc; i++) {
        int lim = cli_limit_opt("stats", argc, argv, &i, &limits);
        if (lim < 0) {
            free(inputs);
            return OCT_EUSAGE;
        }
        if (lim > 0)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "-o")))
            out = v;
        else if (argv[i][0] == '-' && argv[i][1]) {
            free(inputs);
            return cli_usage_error("stats", "unknown option '%s'", argv[i]);
        } else
            inputs[n++] = argv[i];
    }
    if (n < 1 || !out) {
        free(inputs);
        return cli_usage_error("stats", "give statistics files and -o OUT.json");
    }
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        free(inputs);
        return OCT_EINTERNAL;
    }
    *oct_ctx_limits(ctx) = limits;
    oct_status st = oct_stats_merge(ctx, inputs, n, out);
    free(inputs);
    return cli_finish(ctx, st);
}
