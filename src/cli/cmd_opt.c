/*
 * cmd_opt.c: `octet opt MODEL -o OUT [--passes=a,b,...] [--verify-each]
 * [--print-after=PASS]... [--print-after-all] [--time-passes]
 * [--emit=onnx|text] [-f] [--allow-external-data] [--calib DATA
 * [--calib-samples N]] [quantization options of `octet quantize`]`, after
 * LLVM's opt.
 * Loads the model (binary ONNX or text IR, "-" for standard input),
 * verifies it, runs the pipeline through oct_run_pipeline and saves it as
 * ONNX or as text IR with every value printed (readable back).  The IR
 * after the chosen passes and the pass timings go to standard error.
 * Binary ONNX is not written to a terminal unless -f is given.  The output
 * goes through an atomic write and may not be the input file.  The
 * calibration data and the quantization options (--precision, --method,
 * --weights, --load-stats, ...) go to the quant passes (quant_plan,
 * quant_calibrate, quant_choose, quant_rewrite), whose state the text IR
 * carries from one run to the next as "quant" lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

enum { MAX_TIMED = 64 };

/* Options passed to oct_quant_options_set under their own names (those of
 * `octet quantize` that concern the passes). */
static const char *const quant_keys[] = {
    "method", "percentile", "precision", "activations", "weights", "block-size",
    "fp8", "op-types", "exclude-op-types", "exclude-nodes", "config",
    "save-stats", "load-stats",
};
enum { N_QUANT_KEYS = sizeof quant_keys / sizeof quant_keys[0] };

typedef struct opt_args {
    const char *model;
    const char *calib;
    unsigned long long calib_samples;
    const char *quant[N_QUANT_KEYS]; /* values, by quant_keys index */
    bool quant_given, ignore_nonfinite;
    const char *output;
    const char *passes;
    char *print_after; /* comma-joined --print-after values (malloc'ed) */
    bool print_after_all, verify_each, time_passes, emit_text, force;
    unsigned load_flags;
    oct_limits limits;
} opt_args;

/* Appends one --print-after value to the comma-joined list. */
static bool add_print_after(opt_args *a, const char *v)
{
    size_t old = a->print_after ? strlen(a->print_after) : 0;
    char *s = realloc(a->print_after, old + strlen(v) + 2);
    if (!s)
        return false;
    if (old)
        s[old++] = ',';
    strcpy(s + old, v);
    a->print_after = s;
    return true;
}

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
        bool quant = false;
        for (size_t k = 0; !quant && k < N_QUANT_KEYS; k++) {
            char flag[64];
            snprintf(flag, sizeof flag, "--%s", quant_keys[k]);
            if ((v = cli_opt_value(argc, argv, &i, flag))) {
                a->quant[k] = v;
                a->quant_given = quant = true;
            }
        }
        if (quant)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--calib"))) {
            a->calib = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--calib-samples"))) {
            char *end;
            a->calib_samples = strtoull(v, &end, 10);
            if (*end || !a->calib_samples)
                return cli_usage_error("opt", "--calib-samples takes a positive integer");
        } else if (!strcmp(argv[i], "--ignore-nonfinite")) {
            a->ignore_nonfinite = a->quant_given = true;
        } else if ((v = cli_opt_value(argc, argv, &i, "-o"))) {
            if (a->output)
                return cli_usage_error("opt", "-o given twice");
            a->output = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--passes"))) {
            if (a->passes)
                return cli_usage_error("opt", "--passes given twice (list them "
                                       "in one: --passes=a,b)");
            a->passes = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--print-after"))) {
            if (!add_print_after(a, v))
                return cli_usage_error("opt", "out of memory");
        } else if ((v = cli_opt_value(argc, argv, &i, "--emit"))) {
            if (!strcmp(v, "text"))
                a->emit_text = true;
            else if (!strcmp(v, "onnx"))
                a->emit_text = false;
            else
                return cli_usage_error("opt", "unknown --emit '%s' (onnx or text)", v);
        } else if (!strcmp(argv[i], "--print-after-all")) {
            a->print_after_all = true;
        } else if (!strcmp(argv[i], "--verify-each")) {
            a->verify_each = true;
        } else if (!strcmp(argv[i], "--time-passes")) {
            a->time_passes = true;
        } else if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force")) {
            a->force = true;
        } else if (!strcmp(argv[i], "--allow-external-data")) {
            a->load_flags |= OCT_LOAD_EXTERNAL_DATA;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--passes") ||
                   !strcmp(argv[i], "--print-after") || !strcmp(argv[i], "--emit")) {
            return cli_usage_error("opt", "%s needs a value", argv[i]);
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
    if ((a->print_after || a->print_after_all || a->verify_each) && !a->passes)
        return cli_usage_error("opt", "--print-after, --print-after-all and "
                               "--verify-each need --passes");
    if ((a->calib || a->quant_given) && !a->passes)
        return cli_usage_error("opt", "--calib and the quantization options need "
                               "--passes (with quant_plan, quant_calibrate, ...)");
    if (!a->emit_text && !a->force && !strcmp(a->output, "-") && isatty(STDOUT_FILENO))
        return cli_usage_error("opt", "refusing to write binary ONNX to a "
                               "terminal (redirect it, use --emit=text, or "
                               "force it with -f)");
    return 0;
}

/* --print-after: the text IR to standard error under a '#' header (so the
 * dump still reads back as text IR). */
static void print_ir(void *user, const char *pass, size_t index,
                     const char *text, size_t len)
{
    (void)user;
    fprintf(stderr, "# *** IR after %s (pass %zu) ***\n", pass, index + 1);
    fwrite(text, 1, len, stderr);
}

typedef struct pass_times {
    const char *name[MAX_TIMED];
    double seconds[MAX_TIMED];
    size_t n;
} pass_times;

static void record_time(void *user, const char *pass, size_t index, double s)
{
    pass_times *t = user;
    (void)index;
    if (t->n < MAX_TIMED) {
        t->name[t->n] = pass;
        t->seconds[t->n++] = s;
    }
}

/* --time-passes: one line per pass run, in order, then the total. */
static void print_times(const pass_times *t)
{
    double total = 0;
    for (size_t i = 0; i < t->n; i++)
        total += t->seconds[i];
    fputs("===-------------------------------------------===\n"
          "           octet opt: pass execution times\n"
          "===-------------------------------------------===\n"
          "  wall (ms)   share  pass\n", stderr);
    for (size_t i = 0; i < t->n; i++)
        fprintf(stderr, "  %9.3f  %5.1f%%  %s\n", t->seconds[i] * 1e3,
                total > 0 ? 100.0 * t->seconds[i] / total : 0.0, t->name[i]);
    fprintf(stderr, "  %9.3f  100.0%%  total\n", total * 1e3);
}

/* Writes the model as text IR with every value in full. */
static oct_status save_text(oct_ctx *ctx, const oct_model *m, const char *path)
{
    char *buf;
    size_t len;
    oct_status st = oct_model_print(ctx, m, OCT_PRINT_TEXT_FULL, &buf, &len);
    if (st)
        return st;
    st = oct_write_file(ctx, path, buf, len);
    oct_buffer_free(ctx, buf, len + 1);
    return st;
}

int cmd_opt(int argc, char **argv)
{
    opt_args a;
    int usage = parse_args(argc, argv, &a);
    if (usage) {
        free(a.print_after);
        return usage;
    }
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        free(a.print_after);
        fputs("octet: out of memory\n", stderr);
        return OCT_EINTERNAL;
    }
    *oct_ctx_limits(ctx) = a.limits;
    pass_times times = {0};
    oct_pass_options *po = NULL;
    oct_status st = oct_pass_options_new(ctx, &po);
    if (!st && a.verify_each)
        st = oct_pass_options_set(po, "verify-each", "1");
    if (!st && a.print_after)
        st = oct_pass_options_set(po, "print-after", a.print_after);
    if (!st && a.print_after_all)
        st = oct_pass_options_set(po, "print-after-all", "1");
    if (!st) {
        oct_pass_options_set_print(po, print_ir, NULL);
        if (a.time_passes)
            oct_pass_options_set_timer(po, record_time, &times);
    }
    oct_model *m = NULL;
    if (st == OCT_OK)
        st = oct_model_load_file(ctx, a.model, a.load_flags, &m);
    /* the quant passes' options and samples */
    oct_quant_options *qo = NULL;
    oct_dataset *ds = NULL;
    oct_samples samples = {0};
    if (st == OCT_OK && (a.quant_given || a.calib)) {
        st = oct_quant_options_new(ctx, &qo);
        for (size_t k = 0; st == OCT_OK && k < N_QUANT_KEYS; k++)
            if (a.quant[k])
                st = oct_quant_options_set(qo, quant_keys[k], a.quant[k]);
        if (st == OCT_OK && a.ignore_nonfinite)
            st = oct_quant_options_set(qo, "ignore-nonfinite", "1");
        if (st == OCT_OK && a.calib) {
            st = oct_dataset_open(ctx, a.calib, m, a.calib_samples, &ds);
            samples = oct_dataset_samples(ds);
        }
        if (st == OCT_OK)
            oct_pass_options_set_quant(po, qo, ds ? &samples : NULL);
    }
    if (st == OCT_OK && a.passes)
        st = oct_run_pipeline(ctx, m, a.passes, po);
    oct_dataset_close(ds);
    if (a.time_passes)
        print_times(&times);
    if (st == OCT_OK && a.passes)
        st = oct_model_verify(ctx, m);
    if (st == OCT_OK)
        st = a.emit_text ? save_text(ctx, m, a.output) : oct_model_save_file(ctx, m, a.output);
    if (st == OCT_OK && strcmp(a.output, "-"))
        fprintf(stderr, "octet opt: wrote %s (%s)\n", a.output, a.emit_text ? "text IR" : "ONNX");
    free(a.print_after);
    return cli_finish(ctx, st);
}
