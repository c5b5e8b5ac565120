/*
 * cmd_run.c: `octet run MODEL --input NAME=FILE ...`: loads and verifies
 * the model, fixes the input shapes (from --input-shape and from the given
 * tensors), runs shape inference and constant folding, runs the reference
 * interpreter, prints one summary line per output and optionally writes the
 * outputs as .npy or .pb files.  --each-sample runs once per leading-axis
 * slice of inputs that carry one extra axis and stacks the outputs the same
 * way; --repeat/--time measure latency (median).  --jit compiles the model
 * after the same passes with the LLVM backend into an in-process LLJIT
 * (codegen/jit.h) and runs it through its signature like a .so
 * (run_so.c), on --threads N threads if the module has NAME_run_threads.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "codegen/jit.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "ref/dispatch.h"

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
    ir_value *value;
    ir_tensor *tensor;   /* as read from the file */
    bool per_sample;     /* one more leading axis than the model input */
} feed;

static feed *find_feed(feed *feeds, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(feeds[i].value->name) == len && !memcmp(feeds[i].value->name, name, len))
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
        ir_note_input(ctx, eq + 1);
        *st = fe_read_tensor(ctx, eq + 1, &f->tensor);
        return 0;
    }
    if (ends_with(arg, ".npz")) {
        ir_tensor **arrays;
        size_t n_arrays;
        ir_note_input(ctx, arg);
        *st = fe_read_npz(ctx, arg, &arrays, &n_arrays);
        if (*st != OCT_OK)
            return 0;
        for (size_t i = 0; i < n_arrays; i++) {
            feed *f = find_feed(feeds, n_feeds, arrays[i]->name, strlen(arrays[i]->name));
            if (!f)
                return cli_usage_error("run", "%s: member '%s' names no model input",
                                       arg, arrays[i]->name);
            f->tensor = arrays[i];
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

void cli_print_summary(const ir_tensor *t, const char *name)
{
    printf("%s: %s [", name, ir_dtype_name(t->dtype));
    for (int d = 0; d < t->rank; d++)
        printf("%s%lld", d ? "," : "", (long long)t->dims[d]);
    printf("]");
    const ir_dtype_traits *tr = ir_dtype_info(t->dtype);
    if (tr->kind == IR_DK_STRING || tr->kind == IR_DK_COMPLEX || !t->nelems) {
        printf("\n");
        return;
    }
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    uint64_t argmax = 0, nans = 0;
    for (uint64_t i = 0; i < t->nelems; i++) {
        double x = ops_get(t, i);
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
    uint64_t counted = t->nelems - nans;
    printf(" min=%.6g max=%.6g mean=%.6g", mn, mx, counted ? sum / (double)counted : NAN);
    if (t->nelems <= 4096)
        printf(" argmax=%llu", (unsigned long long)argmax);
    if (nans)
        printf(" nan=%llu", (unsigned long long)nans);
    printf("\n");
}

/* Output file name: the value name with every character other than
 * [A-Za-z0-9._-] replaced by '_' (and a leading '.' too). */
static char *output_path(oct_ctx *ctx, const char *dir, const char *name, bool pb)
{
    char *safe = ir_strdup(ctx, *name ? name : "output");
    if (!safe)
        return NULL;
    for (char *p = safe; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                  (c == '.' && p != safe);
        if (!ok)
            *p = '_';
    }
    return ir_sprintf(ctx, "%s/%s.%s", dir, safe, pb ? "pb" : "npy");
}

static oct_status write_outputs(oct_ctx *ctx, const run_args *a, const ir_graph *g,
                                ir_tensor **outs)
{
    if (mkdir(a->output_dir, 0777) != 0 && errno != EEXIST)
        return oct_error(ctx, OCT_EINTERNAL, "cannot create folder '%s': %s",
                         a->output_dir, strerror(errno));
    for (size_t i = 0; i < g->n_outputs; i++) {
        char *path = output_path(ctx, a->output_dir, g->outputs[i]->name, a->pb);
        if (!path)
            return OCT_EINTERNAL;
        oct_status st = a->pb ? fe_write_pb(ctx, outs[i], path) : fe_write_npy(ctx, outs[i], path);
        if (st != OCT_OK)
            return st;
    }
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
                                   const ir_tensor **out)
{
    const feed_list *fl = user;
    for (size_t k = 0; k < fl->n; k++)
        if (!strcmp(fl->feeds[k].value->name, name)) {
            *out = fl->feeds[k].tensor;
            return OCT_OK;
        }
    return oct_error(ctx, OCT_EUSAGE, "no --input given for model input '%s'", name);
}

/* Compiles m (passes run, input shapes bound) into an LLJIT and runs it
 * through its signature like a .so: same summary, files and timing. */
static oct_status run_jit(oct_ctx *ctx, const run_args *a, const ir_model *m,
                          const feed *feeds, size_t n_feeds)
{
    cg_options opts = {.name = "octet_jit", .opt_level = 3};
    cg_jit *j;
    oct_status st = cg_jit_create(ctx, m, &opts, &j);
    if (st == OCT_EUNSUPPORTED)
        oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL,
                  "without --jit the reference interpreter runs the model");
    if (st != OCT_OK)
        return st;
    feed_list fl = {feeds, n_feeds};
    cli_compiled_run r = {
        .sym_base = opts.name, .signature = cg_jit_signature(j), .run = cg_jit_run(j),
        .run_threads = cg_jit_run_threads(j),
        .get_input = input_from_feeds, .input_user = &fl, .output_dir = a->output_dir,
        .pb = a->pb, .repeat = a->repeat, .timing = a->time, .threads = a->threads};
    st = cli_run_compiled(ctx, &r);
    cg_jit_free(j);
    return st;
}

/* A view of sample s of t (which has a leading sample axis). */
static oct_status sample_view(oct_ctx *ctx, const ir_tensor *t, int64_t s, ir_tensor *view)
{
    uint64_t per = t->dims[0] ? t->nelems / (uint64_t)t->dims[0] : 0, bytes;
    if (ir_dtype_info(t->dtype)->bits % 8 || !ir_dtype_bytes(t->dtype, per, &bytes))
        return oct_error(ctx, OCT_EUNSUPPORTED, "--each-sample: %s inputs cannot "
                         "be split into samples", ir_dtype_name(t->dtype));
    *view = *t;
    view->rank = t->rank - 1;
    view->dims = t->dims + 1;
    view->nelems = per;
    view->nbytes = bytes;
    view->data = (uint8_t *)t->data + (uint64_t)s * bytes;
    return OCT_OK;
}

/* Runs every sample and stacks the outputs into outs[] (heap tensors). */
static oct_status run_each_sample(oct_ctx *ctx, const ir_model *m, feed *feeds,
                                  size_t n_feeds, int64_t n_samples, ir_tensor **outs)
{
    const ir_graph *g = m->graph;
    size_t n_out = g->n_outputs;
    ir_tensor *views = ir_alloc_array(ctx, n_feeds ? n_feeds : 1, sizeof *views);
    const ir_tensor **in = ir_alloc_array(ctx, n_feeds ? n_feeds : 1, sizeof *in);
    ir_tensor **one = ir_alloc_array(ctx, n_out ? n_out : 1, sizeof *one);
    if (!views || !in || !one)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    for (int64_t s = 0; s < n_samples && st == OCT_OK; s++) {
        for (size_t k = 0; k < n_feeds && st == OCT_OK; k++) {
            in[k] = feeds[k].tensor;
            if (feeds[k].per_sample) {
                st = sample_view(ctx, feeds[k].tensor, s, &views[k]);
                in[k] = &views[k];
            }
        }
        if (st == OCT_OK)
            st = ref_run(ctx, m, in, n_feeds, one, n_out, NULL);
        for (size_t o = 0; o < n_out && st == OCT_OK; o++) {
            if (s == 0) {
                int64_t dims[OPS_MAX_RANK + 1];
                if (one[o]->rank >= OPS_MAX_RANK) {
                    st = oct_error(ctx, OCT_EUNSUPPORTED, "--each-sample: output rank too high");
                    break;
                }
                dims[0] = n_samples;
                memcpy(dims + 1, one[o]->dims, (size_t)one[o]->rank * sizeof *dims);
                outs[o] = ir_heap_tensor_new(ctx, one[o]->dtype, one[o]->rank + 1, dims);
                if (!outs[o]) {
                    st = OCT_EINTERNAL;
                    break;
                }
                outs[o]->name = one[o]->name;
            }
            uint64_t per = outs[o]->nelems / (uint64_t)n_samples;
            if (one[o]->nelems != per || one[o]->dtype != outs[o]->dtype ||
                ir_dtype_info(one[o]->dtype)->bits % 8) {
                st = oct_error(ctx, OCT_EUNSUPPORTED, "--each-sample: output '%s' "
                               "changes shape between samples or cannot be stacked",
                               g->outputs[o]->name);
                break;
            }
            memcpy((uint8_t *)outs[o]->data + (uint64_t)s * one[o]->nbytes,
                   one[o]->data, one[o]->nbytes);
        }
        for (size_t o = 0; o < n_out; o++) {
            ir_heap_tensor_free(ctx, one[o]);
            one[o] = NULL;
        }
    }
    return st;
}

static oct_status run_model(oct_ctx *ctx, const run_args *a, ir_model **model_out,
                            ir_tensor ***outs_out, int *exit_code)
{
    fe_load_opts lo = {.allow_external_data = a->allow_external};
    ir_model *m;
    oct_status st = fe_load_file(ctx, a->model, &lo, &m);
    if (st != OCT_OK)
        return st;
    if ((st = ir_verify(m, ctx)) != OCT_OK)
        return st;
    /* ops the interpreter cannot run: say so before asking for inputs */
    if ((st = ops_report_unsupported(ctx, m->graph)) != OCT_OK)
        return st;
    *model_out = m;
    ir_graph *g = m->graph;

    size_t n_feeds = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        n_feeds += !g->inputs[i]->init;
    feed *feeds = ir_alloc_array(ctx, n_feeds ? n_feeds : 1, sizeof *feeds);
    if (!feeds)
        return OCT_EINTERNAL;
    for (size_t i = 0, k = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->init)
            feeds[k++].value = g->inputs[i];
    for (size_t i = 0; i < a->n_inputs; i++) {
        *exit_code = read_input_arg(ctx, a->inputs[i], feeds, n_feeds, &st);
        if (*exit_code || st != OCT_OK)
            return st;
    }
    for (size_t k = 0; k < n_feeds; k++)
        if (!feeds[k].tensor) {
            *exit_code = cli_usage_error("run", "no --input given for model input '%s'",
                                         feeds[k].value->name);
            return OCT_OK;
        }
    for (size_t i = 0; i < a->n_shapes; i++)
        if ((st = pass_bind_input_shape(ctx, g, a->shapes[i])) != OCT_OK)
            return st;

    /* bind every input's shape to the tensor given (one sample of it) */
    int64_t n_samples = -1;
    for (size_t k = 0; k < n_feeds; k++) {
        feed *f = &feeds[k];
        const ir_type *ty = &f->value->type;
        const ir_tensor *t = f->tensor;
        if (a->each_sample && f->value->has_type && ty->rank >= 0 && t->rank == ty->rank + 1) {
            f->per_sample = true;
            if (n_samples >= 0 && n_samples != t->dims[0])
                return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1,
                                 f->value->name, "--each-sample: input '%s' has "
                                 "%lld samples, another input %lld", f->value->name,
                                 (long long)t->dims[0], (long long)n_samples);
            n_samples = t->dims[0];
            st = pass_bind_input_type(ctx, f->value, t->dtype, t->rank - 1, t->dims + 1);
        } else {
            st = pass_bind_input_type(ctx, f->value, t->dtype, t->rank, t->dims);
        }
        if (st != OCT_OK)
            return st;
    }
    if (a->each_sample && n_samples < 0)
        return oct_error(ctx, OCT_EINPUT, "--each-sample: no input has one more "
                         "leading axis than the model input it feeds");

    st = a->passes ? pass_run_list(m, a->passes, ctx) : pass_run_default(m, ctx);
    if (st != OCT_OK)
        return st;
    if (a->jit) /* prints and writes its outputs itself; *outs_out stays NULL */
        return run_jit(ctx, a, m, feeds, n_feeds);

    ir_tensor **outs = ir_alloc_array(ctx, g->n_outputs ? g->n_outputs : 1, sizeof *outs);
    const ir_tensor **in = ir_alloc_array(ctx, n_feeds ? n_feeds : 1, sizeof *in);
    if (!outs || !in)
        return OCT_EINTERNAL;
    *outs_out = outs;
    for (size_t k = 0; k < n_feeds; k++)
        in[k] = feeds[k].tensor;
    if (a->each_sample)
        return run_each_sample(ctx, m, feeds, n_feeds, n_samples, outs);

    double *times = ir_alloc_array(ctx, (size_t)a->repeat, sizeof *times);
    if (!times)
        return OCT_EINTERNAL;
    for (long r = 0; r < a->repeat; r++) {
        if (r > 0)
            for (size_t o = 0; o < g->n_outputs; o++) {
                ir_heap_tensor_free(ctx, outs[o]);
                outs[o] = NULL;
            }
        double t0 = cli_now_ms();
        st = ref_run(ctx, m, in, n_feeds, outs, g->n_outputs, NULL);
        times[r] = cli_now_ms() - t0;
        if (st != OCT_OK)
            return st;
    }
    if (a->time)
        cli_print_timing(times, a->repeat);
    return OCT_OK;
}

int cmd_run(int argc, char **argv)
{
    run_args a;
    int code = parse_args(argc, argv, &a);
    if (code)
        return code;
    if (ends_with(a.model, ".so")) /* a model compiled by `octet compile` */
        return cli_run_so(a.model, a.inputs, a.n_inputs, a.output_dir, a.repeat, a.time,
                          a.threads);
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        fprintf(stderr, "octet: out of memory\n");
        return OCT_EINTERNAL;
    }
    *oct_ctx_limits(ctx) = a.limits;
    ir_model *m = NULL;
    ir_tensor **outs = NULL;
    oct_status st = run_model(ctx, &a, &m, &outs, &code);
    if (st == OCT_OK && !code && outs) {
        for (size_t i = 0; i < m->graph->n_outputs; i++)
            cli_print_summary(outs[i], m->graph->outputs[i]->name);
        if (a.output_dir)
            st = write_outputs(ctx, &a, m->graph, outs);
    }
    if (outs)
        for (size_t i = 0; i < m->graph->n_outputs; i++)
            ir_heap_tensor_free(ctx, outs[i]);
    if (code) {
        cli_print_diags(ctx);
        oct_ctx_free(ctx);
        return code;
    }
    return cli_finish(ctx, st);
}
