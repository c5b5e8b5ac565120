/*
 * quant_report_io.c: the quantization report as a table (for a terminal)
 * and as JSON (for tools).  With a plan (from `octet quantize`) every
 * quantized tensor is listed, weights and biases included, with the method
 * and the reason for its precision; without one (`octet report`) the rows
 * are the QDQ model's Q/DQ pairs.  Formats are named by the format table's
 * short names (src/ir/qformats.def); the JSON keeps its version-1 keys
 * (dtype, sqnr_<family>_db per family, e.g. sqnr_int8_db, sqnr_fp8_db) and
 * adds "format".
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/quant.h"
#include "passes/quant_report_lines.h"

const char *calib_method_name(calib_method m)
{
    static const char *const names[] = {"minmax", "percentile", "entropy", "mse"};
    return (unsigned)m < 4 ? names[m] : "?";
}

static const char *kind_name(quant_kind k)
{
    static const char *const names[] = {"activation", "constant", "weight", "bias"};
    return (unsigned)k < 4 ? names[k] : "?";
}

/* The report row measuring plan entry e, or NULL. */
static const quant_report_row *row_of(const quant_report *rep, const quant_tensor *e)
{
    for (size_t i = 0; rep && i < rep->n_rows; i++)
        if (rep->rows[i].d == e->value || rep->rows[i].x == e->value)
            return &rep->rows[i];
    return NULL;
}

typedef quant_report_line line;

/* The families whose SQNR the report lists: the options', or the
 * defaults' names (with no figures) for a pair report. */
static quant_opts families_of(const quant_opts *opts)
{
    return opts ? *opts : quant_default_opts();
}

/* A format's short name; "fp32" for a tensor kept in float. */
static const char *format_name(ir_qformat f, bool keep_float)
{
    return keep_float || !f ? "fp32" : ir_qformat_info(f)->name;
}

static const char *gran_of(const quant_tensor *e)
{
    return e->block_size ? "block" : e->scale_rank > 0 ? "channel" : "tensor";
}

size_t quant_report_lines(const quant_report *rep, const quant_plan *plan,
                          const quant_opts *opts, quant_report_line *out)
{
    size_t n = 0;
    if (!plan) {
        for (size_t i = 0; i < rep->n_rows; i++) {
            const quant_report_row *r = &rep->rows[i];
            line l = {
                .tensor = r->tensor, .kind = "activation",
                .dtype = ir_dtype_short(r->qtype),
                .format = format_name(ir_qformat_of_dtype(r->qtype), false), .qtype = r->qtype,
                .granularity = r->granularity,
                .method = "-", .reason = "-", .n_scales = r->n_scales,
                .scale = r->scale, .zero_point = r->zero_point,
                .clipped = r->clipped, .sqnr = r->sqnr_alone,
                .sqnr_accum = r->sqnr_accum};
            for (int k = 0; k < QUANT_MAX_FAMILIES; k++)
                l.sqnr_of[k] = NAN;
            out[n++] = l;
        }
        return n;
    }
    for (size_t i = 0; i < plan->n; i++) {
        const quant_tensor *e = &plan->t[i];
        const quant_report_row *r = row_of(rep, e);
        line l = {
            .tensor = e->value->name, .kind = kind_name(e->kind),
            .dtype = e->keep_float ? "f32" : ir_dtype_short(ir_qformat_info(e->format)->dtype),
            .format = format_name(e->format, e->keep_float),
            .qtype = e->keep_float ? IR_DT_FLOAT : ir_qformat_info(e->format)->dtype,
            .granularity = gran_of(e),
            .method = e->kind == QKIND_ACT ? calib_method_name(opts->method) : "absmax",
            .reason = e->reason ? e->reason : "-",
            .n_scales = e->n_scales, .scale = e->scales ? e->scales[0] : NAN,
            .zero_point = e->zero_points ? e->zero_points[0] : 0,
            .clipped = e->clipped, .sqnr = e->sqnr, .sqnr_accum = NAN};
        for (int k = 0; k < QUANT_MAX_FAMILIES; k++)
            l.sqnr_of[k] = e->sqnr_of[k];
        if (e->kind == QKIND_BIAS)
            l.method = "s_x*s_w";
        if (r) { /* measured on the rewritten model: the true figures */
            l.sqnr = r->sqnr_alone;
            l.sqnr_accum = r->sqnr_accum;
            l.clipped = r->clipped;
        }
        out[n++] = l;
    }
    return n;
}

size_t quant_report_max_lines(const quant_report *rep, const quant_plan *plan)
{
    return (plan ? plan->n : 0) + (rep ? rep->n_rows : 0) + 1;
}

void quant_report_table(FILE *out, const quant_report *rep, const quant_plan *plan,
                        const quant_opts *opts)
{
    line *lines = calloc(quant_report_max_lines(rep, plan), sizeof *lines);
    if (!lines)
        return;
    size_t n = quant_report_lines(rep, plan, opts, lines);
    fprintf(out, "%-40s %-10s %-8s %-7s %-10s %13s %5s %8s %9s %9s  %s\n",
            "tensor", "kind", "format", "gran", "method", "scale", "zp",
            "clipped%", "SQNR dB", "accum dB", "choice");
    for (size_t i = 0; i < n; i++) {
        const line *l = &lines[i];
        char accum[16] = "-";
        if (!isnan(l->sqnr_accum))
            snprintf(accum, sizeof accum, "%.2f", l->sqnr_accum);
        fprintf(out, "%-40s %-10s %-8s %-7s %-10s %13.6g %5d %8.4f %9.2f %9s  %s\n",
                l->tensor, l->kind, l->format, l->granularity, l->method,
                (double)l->scale, (int)l->zero_point, 100.0 * l->clipped, l->sqnr,
                accum, l->reason);
    }
    for (size_t o = 0; rep && o < rep->n_outputs; o++)
        fprintf(out, "output %s: SQNR %.2f dB against FP32 over %llu samples\n",
                rep->outputs[o].name, rep->outputs[o].sqnr,
                (unsigned long long)rep->n_samples);
    free(lines);
}

static void add_number(cJSON *o, const char *key, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, v);
}

oct_status quant_report_json(oct_ctx *ctx, const char *path, const quant_report *rep,
                             const quant_plan *plan, const quant_opts *opts)
{
    line *lines = calloc(quant_report_max_lines(rep, plan), sizeof *lines);
    cJSON *root = cJSON_CreateObject();
    cJSON *tensors = root ? cJSON_AddArrayToObject(root, "tensors") : NULL;
    cJSON *outputs = root ? cJSON_AddArrayToObject(root, "outputs") : NULL;
    oct_status st = lines && tensors && outputs ? OCT_OK : OCT_EINTERNAL;
    size_t n = st ? 0 : quant_report_lines(rep, plan, opts, lines);
    quant_opts fam = families_of(opts);
    if (!st) {
        cJSON_AddStringToObject(root, "format", "octet-quantization-report");
        cJSON_AddNumberToObject(root, "version", 1);
        cJSON_AddNumberToObject(root, "samples", rep ? (double)rep->n_samples : 0);
    }
    for (size_t i = 0; !st && i < n; i++) {
        const line *l = &lines[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            st = OCT_EINTERNAL;
            break;
        }
        cJSON_AddStringToObject(o, "tensor", l->tensor);
        cJSON_AddStringToObject(o, "kind", l->kind);
        cJSON_AddStringToObject(o, "dtype", l->dtype);
        cJSON_AddStringToObject(o, "format", l->format);
        cJSON_AddStringToObject(o, "granularity", l->granularity);
        cJSON_AddStringToObject(o, "method", l->method);
        cJSON_AddNumberToObject(o, "n_scales", (double)l->n_scales);
        add_number(o, "scale", l->scale);
        cJSON_AddNumberToObject(o, "zero_point", l->zero_point);
        add_number(o, "clipped", l->clipped);
        add_number(o, "sqnr_db", l->sqnr);
        add_number(o, "sqnr_accumulated_db", l->sqnr_accum);
        for (int k = 0; k < fam.n_families; k++) {
            char key[48];
            snprintf(key, sizeof key, "sqnr_%s_db", fam.families[k].name);
            add_number(o, key, l->sqnr_of[k]);
        }
        cJSON_AddStringToObject(o, "reason", l->reason);
        const quant_tensor *e = plan ? &plan->t[i] : NULL;
        if (e && e->n_scales > 1) { /* every scale, for per-channel tensors */
            cJSON *sc = cJSON_AddArrayToObject(o, "scales");
            for (size_t k = 0; sc && k < e->n_scales; k++)
                cJSON_AddItemToArray(sc, cJSON_CreateNumber(e->scales[k]));
        }
        cJSON_AddItemToArray(tensors, o);
    }
    for (size_t k = 0; !st && rep && k < rep->n_outputs; k++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            st = OCT_EINTERNAL;
            break;
        }
        cJSON_AddStringToObject(o, "name", rep->outputs[k].name);
        add_number(o, "sqnr_db", rep->outputs[k].sqnr);
        cJSON_AddItemToArray(outputs, o);
    }
    char *text = st ? NULL : cJSON_Print(root);
    if (!st && !text)
        st = OCT_EINTERNAL;
    if (!st) {
        size_t len = strlen(text);
        text[len] = '\n';
        st = ir_write_atomic(ctx, path, text, len + 1);
    }
    if (st == OCT_EINTERNAL && !oct_error_count(ctx))
        oct_error(ctx, OCT_EINTERNAL, "out of memory writing the report");
    free(text);
    free(lines);
    cJSON_Delete(root);
    return st;
}
