/*
 * cmd_opt.c: `octet opt MODEL -o OUT.onnx [--passes=a,b] [--allow-external-data]`.
 * Loads the model, verifies it, runs the listed passes (none by default:
 * then it is a round trip) and saves it.  "-" reads
 * standard input / writes standard output.  The output goes through an
 * atomic write and may not be the input file.
 */
#include <string.h>

#include "cli/cli.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

typedef struct opt_args {
    const char *model;
    const char *output;
    const char *passes;
    fe_load_opts load;
    oct_limits limits;
} opt_args;

/* Parses the command line; returns 0 or the usage-error exit code. */
static int parse_args(int argc, char **argv, opt_args *a)
{
    memset(a, 0, sizeof *a);
    a->limits = oct_default_limits();
    for (int i = 1; i < argc; i++) {
        const char *v;
        int lim = cli_limit_opt("opt", argc, argv, &i, &a->limits);
        if (lim < 0)
            return OCT_EUSAGE;
        if (lim > 0)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "-o"))) {
            if (a->output)
                return cli_usage_error("opt", "-o given twice");
            a->output = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--passes"))) {
            a->passes = v;
        } else if (!strcmp(argv[i], "--allow-external-data")) {
            a->load.allow_external_data = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error("opt", "unknown option '%s'", argv[i]);
        } else if (a->model) {
            return cli_usage_error("opt", "more than one model given ('%s')",
                                   argv[i]);
        } else {
            a->model = argv[i];
        }
    }
    if (!a->model)
        return cli_usage_error("opt", "no model given");
    if (!a->output)
        return cli_usage_error("opt", "no output given (use -o OUT.onnx or -o -)");
    return 0;
}

int cmd_opt(int argc, char **argv)
{
    opt_args a;
    int usage = parse_args(argc, argv, &a);
    if (usage)
        return usage;
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        fputs("octet: out of memory\n", stderr);
        return OCT_EINTERNAL;
    }
    *oct_ctx_limits(ctx) = a.limits;
    ir_model *m = NULL;
    oct_status st = fe_load_file(ctx, a.model, &a.load, &m);
    if (st == OCT_OK)
        st = ir_verify(m, ctx);
    if (st == OCT_OK)
        st = a.passes ? pass_run_list(m, a.passes, ctx) : OCT_OK;
    if (st == OCT_OK && a.passes)
        st = ir_verify(m, ctx);
    if (st == OCT_OK)
        st = fe_save_file(ctx, m, a.output);
    return cli_finish(ctx, st);
}
