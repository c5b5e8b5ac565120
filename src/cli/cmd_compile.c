/*
 * cmd_compile.c: `octet compile MODEL -o OUT/NAME`: loads and verifies the
 * model, binds --input-shape, runs the default pass pipeline (shape
 * inference, folding), lowers the graph through the LLVM backend and
 * writes OUT/NAME.{o,so,s,ll,h} as selected by --emit (default obj,header).
 * NAME (the last path component) prefixes every generated symbol.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

enum { MAX_SHAPES = 256 };

typedef struct compile_args {
    const char *model, *out;
    const char *shapes[MAX_SHAPES];
    size_t n_shapes;
    unsigned emit;
    cg_options opts;
    bool allow_external;
    bool keep_qdq;
    const char *report;
} compile_args;

static int parse_emit(const char *v, unsigned *emit)
{
    *emit = 0;
    while (*v) {
        size_t len = strcspn(v, ",");
        static const struct { const char *name; unsigned bit; } kinds[] = {
            {"obj", CG_EMIT_OBJ}, {"so", CG_EMIT_SO}, {"asm", CG_EMIT_ASM},
            {"llvm", CG_EMIT_LLVM}, {"header", CG_EMIT_HEADER}};
        bool found = false;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (strlen(kinds[k].name) == len && !strncmp(kinds[k].name, v, len)) {
                *emit |= kinds[k].bit;
                found = true;
            }
        if (len && !found)
            return cli_usage_error("compile", "--emit: unknown kind '%.*s' (obj, so, asm, "
                                   "llvm, header)", (int)len, v);
        v += len + (v[len] == ',');
    }
    if (!*emit)
        return cli_usage_error("compile", "--emit: nothing to emit");
    return 0;
}

static int parse_args(int argc, char **argv, compile_args *a)
{
    memset(a, 0, sizeof *a);
    a->emit = CG_EMIT_OBJ | CG_EMIT_HEADER;
    a->opts.opt_level = 3;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int code;
        if ((v = cli_opt_value(argc, argv, &i, "-o"))) {
            a->out = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--emit"))) {
            if ((code = parse_emit(v, &a->emit)))
                return code;
        } else if ((v = cli_opt_value(argc, argv, &i, "--input-shape"))) {
            if (a->n_shapes == MAX_SHAPES)
                return cli_usage_error("compile", "too many --input-shape options");
            a->shapes[a->n_shapes++] = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--mtriple"))) {
            a->opts.triple = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--mcpu"))) {
            a->opts.cpu = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--mattr"))) {
            a->opts.features = v;
        } else if (argv[i][0] == '-' && argv[i][1] == 'O' && argv[i][2] >= '0' &&
                   argv[i][2] <= '3' && !argv[i][3]) {
            a->opts.opt_level = argv[i][2] - '0';
        } else if (!strcmp(argv[i], "--allow-external-data")) {
            a->allow_external = true;
        } else if ((v = cli_opt_value(argc, argv, &i, "--weights"))) {
            if (strcmp(v, "embed") && strcmp(v, "file"))
                return cli_usage_error("compile", "--weights takes embed or file");
            a->opts.weights_file = !strcmp(v, "file");
        } else if (!strcmp(argv[i], "--keep-qdq")) {
            a->keep_qdq = true;
        } else if ((v = cli_opt_value(argc, argv, &i, "--report"))) {
            a->report = v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("compile", "unknown option '%s'", argv[i]);
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return cli_usage_error("compile", "more than one model given ('%s')", argv[i]);
        }
    }
    if (!a->model)
        return cli_usage_error("compile", "no model given");
    if (!a->out)
        return cli_usage_error("compile", "no output given (-o OUT/NAME)");
    const char *slash = strrchr(a->out, '/');
    a->opts.name = slash ? slash + 1 : a->out;
    if (!*a->opts.name)
        return cli_usage_error("compile", "-o %s: the last component names the model", a->out);
    return 0;
}

static oct_status compile_model(oct_ctx *ctx, const compile_args *a)
{
    fe_load_opts lo = {.allow_external_data = a->allow_external};
    ir_model *m;
    ir_note_input(ctx, a->model);
    oct_status st = fe_load_file(ctx, a->model, &lo, &m);
    if (st != OCT_OK)
        return st;
    if ((st = ir_verify(m, ctx)) != OCT_OK)
        return st;
    for (size_t i = 0; i < a->n_shapes; i++)
        if ((st = pass_bind_input_shape(ctx, m->graph, a->shapes[i])) != OCT_OK)
            return st;
    if ((st = pass_run_default(m, ctx)) != OCT_OK)
        return st;
    /* the integer ops need the kernel library, which is x86-64 code: other
     * targets compute QDQ models in float between exact Q/DQ */
    bool x86_target = !a->opts.triple || !strncmp(a->opts.triple, "x86_64", 6);
    if (!a->keep_qdq && x86_target && (st = pass_run_list(m, "qdq_fuse", ctx)) != OCT_OK)
        return st;
    cg_module *cm;
    if ((st = cg_compile(ctx, m, &a->opts, &cm)) != OCT_OK)
        return st;
    st = cg_emit(ctx, cm, a->out, a->emit);
    if (st == OCT_OK && a->report)
        st = cg_write_report(ctx, cm, a->report);
    cg_module_free(cm);
    return st;
}

int cmd_compile(int argc, char **argv)
{
    compile_args a;
    int code = parse_args(argc, argv, &a);
    if (code)
        return code;
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        fprintf(stderr, "octet: out of memory\n");
        return OCT_EINTERNAL;
    }
    return cli_finish(ctx, compile_model(ctx, &a));
}
