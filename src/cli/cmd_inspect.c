/*
 * cmd_inspect.c: `octet inspect MODEL [--format=text|json|dot] [--full]
 * [-o FILE|-] [--allow-external-data]`.  Loads the model (binary ONNX or
 * text IR, "-" for standard input), verifies it (which also puts
 * the nodes in topological order), and prints it with one of the three IR
 * printers.  Verifier warnings are printed; verifier errors are printed too
 * and the model is still shown (that is when one wants to look at it), but
 * the exit code is then 2.  The output is built in memory and written with
 * oct_write_file, so -o FILE never leaves a partial file and can never
 * overwrite MODEL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

typedef enum inspect_format { FMT_TEXT, FMT_JSON, FMT_DOT } inspect_format;

typedef struct inspect_args {
    const char *model;
    const char *output; /* NULL: standard output */
    inspect_format format;
    bool full; /* --full: every value and doc string (text form only) */
    unsigned load_flags;
    oct_limits limits;
} inspect_args;

/* Parses the command line; returns 0 or the usage-error exit code. */
static int parse_args(int argc, char **argv, inspect_args *a)
{
    memset(a, 0, sizeof *a);
    a->limits = oct_default_limits();
    bool have_format = false;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int lim = cli_limit_opt("inspect", argc, argv, &i, &a->limits);
        if (lim < 0)
            return OCT_EUSAGE;
        if (lim > 0)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--format"))) {
            if (have_format)
                return cli_usage_error("inspect", "--format given twice");
            have_format = true;
            if (!strcmp(v, "text"))
                a->format = FMT_TEXT;
            else if (!strcmp(v, "json"))
                a->format = FMT_JSON;
            else if (!strcmp(v, "dot"))
                a->format = FMT_DOT;
            else
                return cli_usage_error("inspect",
                                       "unknown format '%s' (text, json or dot)",
                                       v);
        } else if ((v = cli_opt_value(argc, argv, &i, "-o"))) {
            if (a->output)
                return cli_usage_error("inspect", "-o given twice");
            a->output = v;
        } else if (!strcmp(argv[i], "--full")) {
            a->full = true;
        } else if (!strcmp(argv[i], "--allow-external-data")) {
            a->load_flags |= OCT_LOAD_EXTERNAL_DATA;
        } else if (!strcmp(argv[i], "--format") || !strcmp(argv[i], "-o")) {
            return cli_usage_error("inspect", "%s needs a value", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        } else if (a->model) {
            return cli_usage_error("inspect", "more than one model given ('%s')",
                                   argv[i]);
        } else {
            a->model = argv[i];
        }
    }
    if (!a->model)
        return cli_usage_error("inspect", "no model given");
    return 0;
}

/* Prints the model into memory and writes it out atomically. */
static oct_status write_output(oct_ctx *ctx, const oct_model *m, const inspect_args *a)
{
    oct_print_format f = a->format == FMT_JSON ? OCT_PRINT_JSON
                       : a->format == FMT_DOT ? OCT_PRINT_DOT
                       : a->full ? OCT_PRINT_TEXT_FULL : OCT_PRINT_TEXT;
    char *buf;
    size_t len;
    oct_status st = oct_model_print(ctx, m, f, &buf, &len);
    if (st)
        return st;
    st = oct_write_file(ctx, a->output ? a->output : "-", buf, len);
    oct_buffer_free(ctx, buf, len + 1);
    return st;
}

int cmd_inspect(int argc, char **argv)
{
    inspect_args a;
    int usage = parse_args(argc, argv, &a);
    if (usage)
        return usage;
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        fputs("octet: out of memory\n", stderr);
        return OCT_EINTERNAL;
    }
    *oct_ctx_limits(ctx) = a.limits;
    /* a model that does not verify is still printed (the verifier's
     * diagnostics say what is wrong), and the exit code is the verifier's */
    oct_model *m = NULL;
    oct_status verified = oct_model_load_file(ctx, a.model, a.load_flags | OCT_LOAD_NO_VERIFY,
                                              &m);
    if (!m || verified == OCT_EINTERNAL)
        return cli_finish(ctx, verified);
    oct_status st = write_output(ctx, m, &a);
    return cli_finish(ctx, st != OCT_OK ? st : verified);
}
