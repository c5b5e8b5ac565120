/*
 * cmd_run.c: `octet run MODEL --input NAME=FILE ...`: loads and verifies
 * the model, fixes the input shapes (from --input-shape and from the given
 * tensors), runs shape inference and constant folding, runs the reference
 * interpreter, prints one summary line per output and optionally writes the
 * outputs as .npy or .pb files.  --each-sample runs once per leading-axis
 * slice of inputs that carry one extra axis and stacks the outputs the same
 * way; --repeat/--time measure latency (median).  --jit compiles the model
 * after the same passes with the LLVM backend into an in-process LLJIT
 * and runs it through its signature like a .so (run_so.c), on --threads N
 * threads if the module has NAME_run_threads.  A client of the public API
 * (oct_runner).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"

enum { MAX_ARGS_LIST = 256 };

typedef struct run_args {
    const char *model;
    const char *inputs[MAX_ARGS_LIST];      /* NAME=FILE or FILE.npz */
    size_t n_inputs;
    const char *shapes[MAX_ARGS_LIST];      /* NAME=1x3x224x224 */
    size_t n_shapes;
    const char *output_dir;
    const char *passes;
    bool pb;
    long repeat;
    bool time;
    int threads;
    bool each_sample;
    bool jit;
    bool allow_external;
    bool int8_rows;
    oct_limits limits;
} run_args;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int parse_args(int argc, char **argv, run_args *a)
{
    memset(a, 0, sizeof *a);
    a->repeat = 1;
    a->threads = 1;
    a->limits = oct_default_limits();
    for (int i = 1; i < argc; i++) {
        const char *v;
        int lim = cli_limit_opt("run", argc, argv, &i, &a->limits);
        if (lim < 0)
            return OCT_EUSAGE;
        if (lim > 0)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--input"))) {
            if (a->n_inputs == MAX_ARGS_LIST)
                return cli_usage_error("run", "too many --input options");
            a->inputs[a->n_inputs++] = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--input-shape"))) {
            if (a->n_shapes == MAX_ARGS_LIST)
                return cli_usage_error("run", "too many --input-shape options");
            a->shapes[a->n_shapes++] = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--output-dir"))) {
            a->output_dir = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--format"))) {
            if (!strcmp(v, "pb"))
                a->pb = true;
            else if (strcmp(v, "npy"))
                return cli_usage_error("run", "--format must be npy or pb, not '%s'", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--repeat"))) {
            char *end;
            a->repeat = strtol(v, &end, 10);
            if (*end || a->repeat < 1 || a->repeat > 1000000)
                return cli_usage_error("run", "--repeat takes a count from 1 to 1000000");
        } else if ((v = cli_opt_value(argc, argv, &i, "--passes"))) {
            a->passes = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--threads"))) {
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 256)
                return cli_usage_error("run", "--threads takes a count from 1 to 256");
            a->threads = (int)t;
        } else if (!strcmp(argv[i], "--time")) {
            a->time = true;
        } else if (!strcmp(argv[i], "--each-sample")) {
            a->each_sample = true;
        } else if (!strcmp(argv[i], "--jit")) {
            a->jit = true;
        } else if (!strcmp(argv[i], "--int8-rows")) {
            a->int8_rows = true;
        } else if (!strcmp(argv[i], "--allow-external-data")) {
            a->allow_external = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("run", "unknown option '%s'", argv[i]);
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return cli_usage_error("run", "more than one model given ('%s')", argv[i]);
        }
    }
    if (!a->model)
        return cli_usage_error("run", "no model given");
    if (a->each_sample && a->repeat > 1)
        return cli_usage_error("run", "--each-sample and --repeat do not mix");
    if (a->jit && a->each_sample)
        return cli_usage_error("run", "--jit and --each-sample do not mix");
    return 0;
}

/* The model's runtime inputs (graph inputs that are not initializers). */
typedef struct feed {
    oct_tensor decl;       /* name, dtype and declared dims (-1: unknown) */
    oct_tensor tensor;     /* as read from the file */
    bool given;
    bool per_sample;       /* one more leading axis than the model input */
} feed;

static feed *find_feed(feed *feeds, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(feeds[i].decl.name) == len && !memcmp(feeds[i].decl.name, name, len))
            return &feeds[i];
    return NULL;
}

/* Reads one --input argument into the feeds.  Returns an exit code. */
static int read_input_arg(oct_ctx *ctx, const char *arg, feed *feeds, size_t n_feeds,
                          oct_status *st)
{
    /* NAME=FILE: the first '=' whose prefix names an input */
    for (const char *eq = strchr(arg, '='); eq; eq = strchr(eq + 1, '=')) {
        feed *f = find_feed(feeds, n_feeds, arg, (size_t)(eq - arg));
        if (!f)
            continue;
        *st = oct_tensor_read(ctx, eq + 1, &f->tensor);
        f->given = !*st;
        return 0;
    }
    if (ends_with(arg, ".npz")) {
        oct_tensor *arrays;
        size_t n_arrays;
        *st = oct_tensor_read_npz(ctx, arg, &arrays, &n_arrays);
        if (*st != OCT_OK)
            return 0;
        for (size_t i = 0; i < n_arrays; i++) {
            feed *f = find_feed(feeds, n_feeds, arrays[i].name, strlen(arrays[i].name));
            if (!f)
                return cli_usage_error("run", "%s: member '%s' names no model input",
                                       arg, arrays[i].name);
            f->tensor = arrays[i];
            f->given = true;
        }
        return 0;
    }
    const char *eq = strchr(arg, '=');
    if (!eq)
        return cli_usage_error("run", "--input '%s': expected NAME=FILE or FILE.npz", arg);
    return cli_usage_error("run", "--input '%s': the model has no input named '%.*s'",
                           arg, (int)(eq - arg), arg);
}

/* ---- output summary and files ----------------------------------------- */

void cli_print_summary(const oct_tensor *t, const char *name)
{
    printf("%s: %s [", name, oct_dtype_name(t->dtype));
    for (int d = 0; d < t->rank; d++)
        printf("%s%lld", d ? "," : "", (long long)t->dims[d]);
    printf("]");
    uint64_t n = oct_tensor_elems(t);
    bool numeric = oct_dtype_bits(t->dtype) > 0 && t->dtype != 8 /* STRING */ &&
                   t->dtype != 14 && t->dtype != 15;   /* COMPLEX64/128 */
    if (!numeric || !n) {
        printf("\n");
        return;
    }
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    uint64_t argmax = 0, nans = 0;
    for (uint64_t i = 0; i < n; i++) {
        double x = oct_tensor_element(t, i);
        if (isnan(x)) {
            nans++;
            continue;
        }
        if (x < mn)
            mn = x;
        if (x > mx) {
            mx = x;
            argmax = i;
        }
        sum += x;
    }
    uint64_t counted = n - nans;
    printf(" min=%.6g max=%.6g mean=%.6g", mn, mx, counted ? sum / (double)counted : NAN);
    if (n <= 4096)
        printf(" argmax=%llu", (unsigned long long)argmax);
    if (nans)
        printf(" nan=%llu", (unsigned long long)nans);
    printf("\n");
}

oct_status cli_write_output(oct_ctx *ctx, const char *dir, const char *name,
                            const oct_tensor *t, bool pb)
{
    /* the value name with every character other than [A-Za-z0-9._-]
     * replaced by '_' (and a leading '.' too) */
    size_t len = strlen(*name ? name : "output");
    char *path = malloc(strlen(dir) + len + 8);
    if (!path)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "out of memory");
    char *p = path + sprintf(path, "%s/", dir);
    const char *src = *name ? name : "output";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-' || (c == '.' && i > 0);
        *p++ = ok ? (char)c : '_';
    }
    strcpy(p, pb ? ".pb" : ".npy");
    oct_status st = oct_tensor_write(ctx, t, path);
    free(path);
    return st;
}

oct_status cli_make_output_dir(oct_ctx *ctx, const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL,
                            "cannot create folder '%s': %s", dir, strerror(errno));
    return OCT_OK;
}

/* ---- running ------------------------------------------------------------ */

double cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

void cli_print_timing(double *times, long repeat)
{
    qsort(times, (size_t)repeat, sizeof *times, cmp_double);
    double median = repeat % 2 ? times[repeat / 2]
                               : (times[repeat / 2 - 1] + times[repeat / 2]) / 2;
    printf("time: median %.3f ms over %ld run%s (min %.3f ms)\n", median, repeat,
           repeat == 1 ? "" : "s", times[0]);
}

/* ---- --jit: the compiled model in this process ------------------------- */

typedef struct feed_list {
    const feed *feeds;
    size_t n;
} feed_list;

static oct_status input_from_feeds(void *user, oct_ctx *ctx, const char *name,
                                   const oct_tensor **out)
{
    const feed_list *fl = user;
    for (size_t k = 0; k < fl->n; k++)
        if (!strcmp(fl->feeds[k].decl.name, name)) {
            *out = &fl->feeds[k].tensor;
            return OCT_OK;
        }
    return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EUSAGE, NULL,
                        "no --input given for model input '%s'", name);
}

/* Compiles the model (passes run, input shapes bound) in this process and
 * runs it through its signature like a .so: same summary, files, timing. */
static oct_status run_jit(oct_ctx *ctx, const run_args *a, oct_runner *r,
                          const feed *feeds, const oct_tensor *in, size_t n_feeds)
{
    oct_status st = oct_runner_prepare(r, in, n_feeds);
    if (st == OCT_EUNSUPPORTED)
        oct_diag_add(ctx, OCT_SEV_NOTE, OCT_OK, NULL,
                     "without --jit the reference interpreter runs the model");
    oct_entry_points ep;
    if (!st)
        st = oct_runner_entry_points(r, &ep);
    if (st != OCT_OK)
        return st;
    feed_list fl = {feeds, n_feeds};
    cli_compiled_run cr = {
        .sym_base = "octet_jit", .signature = ep.signature, .run = ep.run,
        .run_threads = ep.run_threads, .output_dims = ep.output_dims,
        .get_input = input_from_feeds, .input_user = &fl, .output_dir = a->output_dir,
        .pb = a->pb, .repeat = a->repeat, .timing = a->time, .threads = a->threads};
    return cli_run_compiled(ctx, &cr);
}

/* A view of sample s of t (which has a leading sample axis). */
static oct_status sample_view(oct_ctx *ctx, const oct_tensor *t, int64_t s, oct_tensor *view)
{
    unsigned bits = oct_dtype_bits(t->dtype);
    uint64_t per = t->dims[0] ? oct_tensor_elems(t) / (uint64_t)t->dims[0] : 0;
    if (!bits || bits % 8)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, "--each-sample: "
                            "%s inputs cannot be split into samples", oct_dtype_name(t->dtype));
    uint64_t bytes = per * (bits / 8);
    *view = *t;
    view->rank = t->rank - 1;
    view->dims = t->dims + 1;
    view->nbytes = bytes;
    view->data = (uint8_t *)t->data + (uint64_t)s * bytes;
    return OCT_OK;
}

/* Runs every sample and stacks the outputs into outs[] (n_out tensors
 * from oct_tensor_new). */
static oct_status run_each_sample(oct_ctx *ctx, oct_runner *r, const feed *feeds,
                                  size_t n_feeds, int64_t n_samples, oct_tensor *outs,
                                  size_t n_out)
{
    oct_tensor *in = calloc(n_feeds + 1, sizeof *in);
    if (!in)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "out of memory");
    oct_status st = OCT_OK;
    for (int64_t s = 0; s < n_samples && st == OCT_OK; s++) {
        for (size_t k = 0; k < n_feeds && st == OCT_OK; k++) {
            in[k] = feeds[k].tensor;
            if (feeds[k].per_sample)
                st = sample_view(ctx, &feeds[k].tensor, s, &in[k]);
        }
        oct_tensor *one = NULL;
        size_t n_one = 0;
        if (st == OCT_OK)
            st = oct_runner_run(r, in, n_feeds, &one, &n_one);
        for (size_t o = 0; o < n_out && st == OCT_OK; o++) {
            if (s == 0) {
                int64_t dims[CLI_MAX_RANK + 1];
                if (one[o].rank >= CLI_MAX_RANK) {
                    st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL,
                                      "--each-sample: output rank too high");
                    break;
                }
                dims[0] = n_samples;
                memcpy(dims + 1, one[o].dims, (size_t)one[o].rank * sizeof *dims);
                if ((st = oct_tensor_new(ctx, one[o].dtype, one[o].rank + 1, dims, &outs[o])))
                    break;
                outs[o].name = one[o].name;
            }
            uint64_t per = oct_tensor_elems(&outs[o]) / (uint64_t)n_samples;
            if (oct_tensor_elems(&one[o]) != per || one[o].dtype != outs[o].dtype ||
                oct_dtype_bits(one[o].dtype) % 8) {
                st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL,
                                  "--each-sample: output '%s' changes shape between "
                                  "samples or cannot be stacked", one[o].name);
                break;
            }
            memcpy((uint8_t *)outs[o].data + (uint64_t)s * one[o].nbytes, one[o].data,
                   one[o].nbytes);
        }
        oct_tensors_free(ctx, one, n_one);
    }
    free(in);
    return st;
}

typedef struct run_result {
    oct_tensor *outs;      /* n_out tensors to print and write, or NULL */
    size_t n_out;
    bool stacked;          /* outs from oct_tensor_new (--each-sample) */
} run_result;

static oct_status run_model(oct_ctx *ctx, const run_args *a, run_result *res,
                            int *exit_code)
{
    oct_model *m;
    oct_status st = oct_model_load_file(ctx, a->model,
                                        a->allow_external ? OCT_LOAD_EXTERNAL_DATA : 0, &m);
    if (st != OCT_OK)
        return st;
    for (size_t i = 0; i < a->n_shapes; i++)
        if ((st = oct_model_bind_input_shape(ctx, m, a->shapes[i])) != OCT_OK)
            return st;
    if (a->int8_rows && (st = oct_run_passes(ctx, m, "mnb_int8_rows")) != OCT_OK)
        return st;
    /* the interpreter says which ops it cannot run before inputs are read */
    oct_runner *r;
    if ((st = oct_runner_new(ctx, m, a->jit ? "jit" : "interp", NULL, &r)) != OCT_OK)
        return st;
    st = oct_runner_set(r, "passes", a->passes ? a->passes : "default");

    size_t n_feeds = oct_model_input_count(m);
    feed *feeds = calloc(n_feeds + 1, sizeof *feeds);
    oct_tensor *in = calloc(n_feeds + 1, sizeof *in);
    if (!feeds || !in) {
        free(feeds);
        free(in);
        oct_runner_free(r);
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "out of memory");
    }
    for (size_t k = 0; !st && k < n_feeds; k++)
        st = oct_model_input(ctx, m, k, &feeds[k].decl);
    for (size_t i = 0; !st && !*exit_code && i < a->n_inputs; i++)
        *exit_code = read_input_arg(ctx, a->inputs[i], feeds, n_feeds, &st);
    for (size_t k = 0; !st && !*exit_code && k < n_feeds; k++)
        if (!feeds[k].given)
            *exit_code = cli_usage_error("run", "no --input given for model input '%s'",
                                         feeds[k].decl.name);

    /* --each-sample: inputs with one more leading axis than declared */
    int64_t n_samples = -1;
    for (size_t k = 0; !st && !*exit_code && k < n_feeds; k++) {
        feed *f = &feeds[k];
        in[k] = f->tensor;
        if (a->each_sample && f->decl.rank >= 0 && f->tensor.rank == f->decl.rank + 1) {
            f->per_sample = true;
            if (n_samples >= 0 && n_samples != f->tensor.dims[0])
                st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, f->decl.name,
                                  "--each-sample: input '%s' has %lld samples, another "
                                  "input %lld", f->decl.name, (long long)f->tensor.dims[0],
                                  (long long)n_samples);
            n_samples = f->tensor.dims[0];
        }
    }
    if (!st && !*exit_code && a->each_sample && n_samples < 0)
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "--each-sample: no input "
                          "has one more leading axis than the model input it feeds");

    if (!st && !*exit_code && a->jit) {
        /* prints and writes its outputs itself */
        st = run_jit(ctx, a, r, feeds, in, n_feeds);
    } else if (!st && !*exit_code && a->each_sample) {
        res->n_out = oct_model_output_count(m);
        res->outs = calloc(res->n_out + 1, sizeof *res->outs);
        res->stacked = true;
        if (!res->outs)
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "out of memory");
        else
            st = run_each_sample(ctx, r, feeds, n_feeds, n_samples, res->outs, res->n_out);
    } else if (!st && !*exit_code) {
        double *times = calloc((size_t)a->repeat, sizeof *times);
        if (!times)
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "out of memory");
        for (long i = 0; !st && i < a->repeat; i++) {
            oct_tensors_free(ctx, res->outs, res->n_out);
            res->outs = NULL;
            double t0 = cli_now_ms();
            st = oct_runner_run(r, in, n_feeds, &res->outs, &res->n_out);
            times[i] = cli_now_ms() - t0;
        }
        if (!st && a->time)
            cli_print_timing(times, a->repeat);
        free(times);
    }
    oct_runner_free(r);
    free(feeds);
    free(in);
    return st;
}

int cmd_run(int argc, char **argv)
{
    run_args a;
    int code = parse_args(argc, argv, &a);
    if (code)
        return code;
    if (ends_with(a.model, ".so") && a.int8_rows)
        return cli_usage_error("run", "--int8-rows applies to a model that is run or compiled "
                               "here; a library keeps the arithmetic it was compiled with");
    if (ends_with(a.model, ".so")) /* a model compiled by `octet compile` */
        return cli_run_so(a.model, &(cli_so_run){
            .inputs = a.inputs, .n_inputs = a.n_inputs, .output_dir = a.output_dir,
            .pb = a.pb, .repeat = a.repeat, .timing = a.time, .threads = a.threads,
            .each_sample = a.each_sample});
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        fprintf(stderr, "octet: out of memory\n");
        return OCT_EINTERNAL;
    }
    *oct_ctx_limits(ctx) = a.limits;
    run_result res = {0};
    oct_status st = run_model(ctx, &a, &res, &code);
    if (st == OCT_OK && !code && res.outs) {
        for (size_t i = 0; i < res.n_out; i++)
            cli_print_summary(&res.outs[i], res.outs[i].name);
        if (a.output_dir)
            st = cli_make_output_dir(ctx, a.output_dir);
        for (size_t i = 0; a.output_dir && st == OCT_OK && i < res.n_out; i++)
            st = cli_write_output(ctx, a.output_dir, res.outs[i].name, &res.outs[i], a.pb);
    }
    if (res.stacked) {
        for (size_t i = 0; i < res.n_out; i++)
            oct_tensor_release(ctx, &res.outs[i]);
        free(res.outs);
    } else {
        oct_tensors_free(ctx, res.outs, res.n_out);
    }
    if (code) {
        cli_print_diags(ctx);
        oct_ctx_free(ctx);
        return code;
    }
    return cli_finish(ctx, st);
}
