/*
 * cmd_quantize.c: `octet quantize MODEL --calib DATA -o OUT.onnx`: static
 * post-training quantization to a QDQ ONNX model, with a report.
 * --engine picks what runs the calibration samples: the reference
 * interpreter (ref, the default) or the graph compiled by the LLVM backend
 * into an in-process JIT (jit, api/jit_engine.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "api/jit_engine.h"
#include "frontend/dataset.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "passes/quant.h"
#include "ref/ref.h"

typedef enum { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_LINES, PROGRESS_JSON,
               PROGRESS_NONE } progress_mode;

typedef struct progress_state {
    progress_mode mode;
} progress_state;

static void show_progress(void *user, int pass, size_t done, size_t total)
{
    progress_state *ps = user;
    const char *what = pass == 1 ? "calibrating" : "measuring";
    switch (ps->mode) {
    case PROGRESS_BAR: {
        int width = 30, filled = total ? (int)(done * (size_t)width / total) : width;
        fprintf(stderr, "\r%-11s [%.*s%*s] %zu/%zu", what, filled,
                "##############################", width - filled, "", done, total);
        if (done == total)
            fputc('\n', stderr);
        break;
    }
    case PROGRESS_LINES:
        fprintf(stderr, "%s [%zu/%zu]\n", what, done, total);
        break;
    case PROGRESS_JSON:
        fprintf(stderr, "{\"stage\": \"%s\", \"done\": %zu, \"total\": %zu}\n",
                what, done, total);
        break;
    default:
        break;
    }
}

typedef struct dataset_source {
    fe_dataset *ds;
} dataset_source;

static oct_status get_sample(void *user, size_t index, ir_tensor **inputs,
                             oct_ctx *ctx)
{
    (void)ctx;
    return fe_dataset_get(((dataset_source *)user)->ds, index, inputs);
}

static bool parse_method(const char *s, calib_method *m)
{
    static const char *const names[] = {"minmax", "percentile", "entropy", "mse"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *m = (calib_method)i;
            return true;
        }
    return false;
}

/* Loads MODEL, binds input shapes (--input-shape, then the first calibration
 * sample's shapes) and runs the default passes. */
static oct_status prepare(oct_ctx *ctx, const char *path, const fe_load_opts *lo,
                          char **shapes, int n_shapes, fe_dataset *ds,
                          ir_model **out)
{
    ir_model *m;
    oct_status st = fe_load_file(ctx, path, lo, &m);
    if (!st)
        st = ir_verify(m, ctx);
    for (int i = 0; !st && i < n_shapes; i++)
        st = pass_bind_input_shape(ctx, m->graph, shapes[i]);
    if (!st && ds && fe_dataset_count(ds) > 0) {
        size_t n_in = 0;
        for (size_t i = 0; i < m->graph->n_inputs; i++)
            n_in += !m->graph->inputs[i]->init;
        ir_tensor **first = oct_malloc(ctx, (n_in + 1) * sizeof *first);
        if (!first)
            return OCT_EINTERNAL;
        memset(first, 0, (n_in + 1) * sizeof *first);
        st = fe_dataset_get(ds, 0, first);
        for (size_t i = 0, k = 0; !st && i < m->graph->n_inputs; i++) {
            ir_value *v = m->graph->inputs[i];
            if (v->init)
                continue;
            st = pass_bind_input_type(ctx, v, first[k]->dtype, first[k]->rank,
                                      first[k]->dims);
            k++;
        }
        for (size_t i = 0; i < n_in; i++)
            ir_heap_tensor_free(ctx, first[i]);
        oct_free(ctx, first, (n_in + 1) * sizeof *first);
    }
    if (!st)
        st = pass_run_default(m, ctx);
    /* fusions first: a BatchNormalization or bias Add folded into its Conv
     * quantizes as one layer (one rounding, an int32 bias) */
    if (!st)
        st = pass_run_list(m, "fuse,shape_infer", ctx);
    *out = m;
    return st;
}

/* What `prepare` needs, for budget trials that load fresh copies. */
typedef struct fresh_args {
    const char *path;
    const fe_load_opts *lo;
    char **shapes;
    int n_shapes;
    fe_dataset *ds;
} fresh_args;

static oct_status fresh_model(void *user, oct_ctx *ctx, ir_model **out)
{
    const fresh_args *a = user;
    return prepare(ctx, a->path, a->lo, a->shapes, a->n_shapes, a->ds, out);
}

int cmd_quantize(int argc, char **argv)
{
    const char *model = NULL, *calib = NULL, *out = NULL, *report = NULL, *svg = NULL;
    const char *save_stats = NULL, *load_stats = NULL, *v;
    char **shapes = calloc((size_t)argc + 1, sizeof *shapes);
    int n_shapes = 0;
    unsigned long long max_samples = 0;
    fe_load_opts lo = {0};
    bool use_jit = false;
    quant_opts qo = quant_default_opts();
    progress_state ps = {isatty(2) ? PROGRESS_BAR : PROGRESS_LINES};
    oct_limits limits = oct_default_limits();
    if (!shapes)
        return OCT_EINTERNAL;
#define USAGE(...) do { free(shapes); return cli_usage_error("quantize", __VA_ARGS__); } while (0)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int lim = cli_limit_opt("quantize", argc, argv, &i, &limits);
        if (lim < 0) {
            free(shapes);
            return OCT_EUSAGE;
        }
        if (lim > 0)
            continue;
        if ((v = cli_opt_value(argc, argv, &i, "--calib")))
            calib = v;
        else if ((v = cli_opt_value(argc, argv, &i, "-o")))
            out = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--report")))
            report = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--svg")))
            svg = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--save-stats")))
            save_stats = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--load-stats")))
            load_stats = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--input-shape")))
            shapes[n_shapes++] = (char *)v;
        else if ((v = cli_opt_value(argc, argv, &i, "--method"))) {
            if (!parse_method(v, &qo.method))
                USAGE("--method must be minmax, percentile, entropy or mse");
        } else if ((v = cli_opt_value(argc, argv, &i, "--percentile"))) {
            char *end;
            qo.percentile = strtod(v, &end);
            if (*end || !(qo.percentile > 0 && qo.percentile <= 100))
                USAGE("--percentile takes a number in (0, 100]");
            qo.method = CALIB_PERCENTILE;
        } else if ((v = cli_opt_value(argc, argv, &i, "--precision"))) {
            if (!quant_opts_set_precision(&qo, v))
                USAGE("--precision must be int8, fp8, auto or budget:DB");
        } else if ((v = cli_opt_value(argc, argv, &i, "--activations"))) {
            if (!quant_opts_set_activations(&qo, v))
                USAGE("--activations must be u8 or s8");
        } else if ((v = cli_opt_value(argc, argv, &i, "--weights"))) {
            if (!strcmp(v, "per-channel"))
                qo.weight_granularity = QGRAN_CHANNEL;
            else if (!strcmp(v, "per-tensor"))
                qo.weight_granularity = QGRAN_TENSOR;
            else if (!strcmp(v, "per-block"))
                qo.weight_granularity = QGRAN_BLOCK;
            else
                USAGE("--weights must be per-channel, per-tensor or per-block");
        } else if ((v = cli_opt_value(argc, argv, &i, "--block-size"))) {
            char *end;
            qo.block_size = strtoll(v, &end, 10);
            if (*end || qo.block_size < 2)
                USAGE("--block-size takes an integer >= 2");
            qo.weight_granularity = QGRAN_BLOCK;
        } else if ((v = cli_opt_value(argc, argv, &i, "--fp8"))) {
            if (!quant_opts_set_fp8(&qo, v))
                USAGE("--fp8 must be e4m3 or e5m2");
        } else if ((v = cli_opt_value(argc, argv, &i, "--op-types")))
            qo.op_types = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--exclude-op-types")))
            qo.exclude_op_types = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--exclude-nodes")))
            qo.exclude_nodes = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--config")))
            qo.config = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--engine"))) {
            if (!strcmp(v, "ref"))
                qo.engine = NULL; /* the reference interpreter */
            else if (!strcmp(v, "jit"))
                use_jit = true;
            else
                USAGE("--engine must be ref or jit");
        }
        else if ((v = cli_opt_value(argc, argv, &i, "--calib-samples"))) {
            char *end;
            max_samples = strtoull(v, &end, 10);
            if (*end || !max_samples)
                USAGE("--calib-samples takes a positive integer");
        } else if ((v = cli_opt_value(argc, argv, &i, "--progress"))) {
            if (!strcmp(v, "bar"))
                ps.mode = PROGRESS_BAR;
            else if (!strcmp(v, "lines"))
                ps.mode = PROGRESS_LINES;
            else if (!strcmp(v, "json"))
                ps.mode = PROGRESS_JSON;
            else if (!strcmp(v, "none"))
                ps.mode = PROGRESS_NONE;
            else
                USAGE("--progress must be bar, lines, json or none");
        } else if (!strcmp(a, "--ignore-nonfinite"))
            qo.ignore_nonfinite = true;
        else if (!strcmp(a, "--allow-external-data"))
            lo.allow_external_data = true;
        else if (a[0] == '-' && a[1])
            USAGE("unknown option '%s'", a);
        else if (!model)
            model = a;
        else
            USAGE("more than one model given");
    }
    if (!model)
        USAGE("no model given");
    if (!out)
        USAGE("no output given (-o OUT.onnx)");
    if (!calib)
        USAGE("no calibration data given (--calib DATA)");
#undef USAGE

    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        free(shapes);
        return OCT_EINTERNAL;
    }
    *oct_ctx_limits(ctx) = limits;
    quant_engine *jit = NULL;
    if (use_jit && !(jit = cg_jit_quant_engine_new())) {
        free(shapes);
        oct_ctx_free(ctx);
        return OCT_EINTERNAL;
    }
    qo.engine = jit;
    ir_model *m = NULL, *fp32 = NULL;
    fe_dataset *ds = NULL;
    quant_plan plan = {0};
    quant_report rep;
    oct_status st;
    {
        /* the model's inputs decide how the data splits into samples */
        ir_model *probe;
        st = fe_load_file(ctx, model, &lo, &probe);
        if (!st)
            st = fe_dataset_open(ctx, calib, probe, max_samples, &ds);
    }
    if (!st)
        st = prepare(ctx, model, &lo, shapes, n_shapes, ds, &m);
    if (!st)
        st = prepare(ctx, model, &lo, shapes, n_shapes, ds, &fp32);
    dataset_source src = {ds};
    quant_samples data = {ds ? fe_dataset_count(ds) : 0, get_sample, &src, calib};
    if (!st)
        st = quant_plan_build(m, &qo, &plan, ctx);
    if (!st && load_stats)
        st = quant_stats_load(m, &plan, load_stats, ctx);
    else if (!st)
        st = quant_calibrate(m, &plan, &qo, &data, show_progress, &ps, ctx);
    if (!st && save_stats)
        st = quant_stats_save(m, &plan, save_stats, ctx);
    if (!st)
        st = quant_choose(m, &plan, &qo, &data, show_progress, &ps, ctx);
    if (!st && qo.precision == QPREC_BUDGET) {
        fresh_args fa = {model, &lo, shapes, n_shapes, ds};
        double achieved;
        st = quant_budget(fp32, &plan, &qo, &data, fresh_model, &fa, &achieved, ctx);
        if (!st && ps.mode != PROGRESS_NONE)
            fprintf(stderr, "budget: output SQNR %.2f dB on the calibration data "
                    "(target %.2f dB)\n", achieved, qo.budget_db);
    }
    if (!st)
        st = quant_rewrite(m, &plan, &qo, ctx);
    if (!st)
        st = fe_save_file(ctx, m, out);
    if (!st)
        st = quant_report_pair(fp32, m, &data, &rep, ctx);
    if (!st) {
        quant_report_table(stdout, &rep, &plan, &qo);
        if (report)
            st = quant_report_json(ctx, report, &rep, &plan, &qo);
    }
    char *pic;
    size_t pic_len;
    if (!st && svg && !(st = quant_report_svg(ctx, &rep, &plan, &qo, &pic, &pic_len)))
        st = ir_write_atomic(ctx, svg, pic, pic_len);
    quant_plan_free(&plan, ctx);
    cg_jit_quant_engine_free(jit, ctx);
    fe_dataset_close(ds);
    free(shapes);
    return cli_finish(ctx, st);
}
