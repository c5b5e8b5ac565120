/*
 * cmd_compile.c: `octet compile MODEL -o OUT/NAME`: compiles the model
 * through the LLVM backend and writes OUT/NAME.{o,so,s,ll,h} as selected
 * by --emit (default obj,header).  A client of the public API
 * (oct_compile); the pipeline lives in src/api/compile.c.  NAME, made a C
 * identifier (or --name), prefixes every generated symbol.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "octet/octet.h"

/* Options passed to oct_compile_options_set under their own names. */
static const char *const passthrough[] = {
    "emit", "input-shape", "mtriple", "mcpu", "mattr", "weights", "report", "name",
    "kv-cache", "bound", "layout",
};

static int option_error(oct_ctx *ctx)
{
    size_t n = oct_diag_count(ctx);
    const char *msg = n ? oct_diag_get(ctx, n - 1)->message : "bad option";
    int code = cli_usage_error("compile", "--%s", msg);
    oct_ctx_free(ctx);
    return code;
}

/* Prints what was written: one line per file. */
static void print_outputs(const char *out, const char *emit)
{
    static const struct { const char *kind, *ext; } kinds[] = {
        {"obj", ".o"}, {"so", ".so"}, {"asm", ".s"}, {"llvm", ".ll"}, {"header", ".h"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const char *p = strstr(emit, kinds[k].kind);
        size_t len = strlen(kinds[k].kind);
        if (p && (p == emit || p[-1] == ',') && (p[len] == ',' || !p[len]))
            fprintf(stderr, "octet compile: wrote %s%s\n", out, kinds[k].ext);
    }
}

int cmd_compile(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *emit = "obj,header", *v;
    bool allow_external = false, int8_rows = false;
    oct_ctx *ctx = oct_ctx_new();
    oct_compile_options *co;
    if (!ctx || oct_compile_options_new(ctx, &co)) {
        fprintf(stderr, "octet: out of memory\n");
        oct_ctx_free(ctx);
        return OCT_EINTERNAL;
    }
#define USAGE(...) do { oct_ctx_free(ctx); return cli_usage_error("compile", __VA_ARGS__); } while (0)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool passed = false;
        for (size_t k = 0; !passed && k < sizeof passthrough / sizeof *passthrough; k++) {
            char flag[64];
            snprintf(flag, sizeof flag, "--%s", passthrough[k]);
            if ((v = cli_opt_value(argc, argv, &i, flag))) {
                if (oct_compile_options_set(co, passthrough[k], v))
                    return option_error(ctx);
                if (!strcmp(passthrough[k], "emit"))
                    emit = v;
                passed = true;
            }
        }
        if (passed)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "-o"))) {
            out = v;
        } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            if (oct_compile_options_set(co, "opt-level", a + 2))
                return option_error(ctx);
        } else if (!strcmp(a, "--allow-external-data")) {
            allow_external = true;
        } else if (!strcmp(a, "--int8-rows")) {
            int8_rows = true;
        } else if (!strcmp(a, "--keep-qdq")) {
            if (oct_compile_options_set(co, "keep-qdq", "1"))
                return option_error(ctx);
        } else if (a[0] == '-' && a[1]) {
            USAGE("unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            USAGE("more than one model given ('%s')", a);
        }
    }
    if (!model)
        USAGE("no model given");
    if (!out)
        USAGE("no output given (-o OUT/NAME)");
#undef USAGE
    oct_model *m;
    oct_status st = oct_model_load_file(ctx, model,
                                        allow_external ? OCT_LOAD_EXTERNAL_DATA : 0, &m);
    if (!st && int8_rows)
        st = oct_run_passes(ctx, m, "mnb_int8_rows");
    if (!st)
        st = oct_compile(ctx, m, co, out);
    if (!st)
        print_outputs(out, emit);
    return cli_finish(ctx, st);
}
