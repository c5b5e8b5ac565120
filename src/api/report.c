/*
 * report.c: the public report calls of octet.h (compare a quantized model
 * with its FP32 original on samples; the report as text, SVG and JSON),
 * split from quantize.c, which builds the reports.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "passes/passes.h"

oct_status oct_report_compare(oct_ctx *ctx, const oct_model *fp32,
                              const oct_model *qdq, const oct_samples *samples,
                              oct_report **out)
{
    if (!ctx || !fp32 || !qdq || !samples || !out)
        return OCT_EUSAGE;
    *out = NULL;
    oct_report *r = ir_alloc(ctx, sizeof *r);
    if (!r)
        return OCT_EINTERNAL;
    api_samples adapter;
    quant_samples data;
    oct_status st = api_samples_init(ctx, &adapter, samples, fp32->ir, &data);
    if (!st)
        st = quant_report_pair(fp32->ir, qdq->ir, &data, &r->rep, ctx);
    r->measured = !st;
    if (!st)
        *out = r;
    return st;
}

oct_status oct_report_text(oct_ctx *ctx, const oct_report *r, char **text, size_t *len)
{
    if (!ctx || !r || !text || !len)
        return OCT_EUSAGE;
    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    if (!mem)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory formatting the report");
    if (r->has_wo)
        quant_wo_report_table(mem, &r->wo);
    else
        quant_report_table(mem, r->measured ? &r->rep : NULL, r->has_plan ? &r->plan : NULL,
                           r->has_plan ? &r->opts : NULL);
    return api_stream_text(ctx, mem, &buf, &size, "the report", text, len);
}

oct_status oct_report_write_svg(oct_ctx *ctx, const oct_report *r, const char *path)
{
    if (!ctx || !r || !path)
        return OCT_EUSAGE;
    char *pic;
    size_t len;
    if (r->has_wo)
        return oct_error(ctx, OCT_EUSAGE, "report: a weight-only report has no SVG picture");
    oct_status st = api_check_output_dir(ctx, path);
    if (!st)
        st = quant_report_svg(ctx, r->measured ? &r->rep : NULL, r->has_plan ? &r->plan : NULL,
                              r->has_plan ? &r->opts : NULL, &pic, &len);
    return st ? st : ir_write_atomic(ctx, path, pic, len);
}

oct_status oct_report_write_json(oct_ctx *ctx, const oct_report *r, const char *path)
{
    if (!ctx || !r || !path)
        return OCT_EUSAGE;
    if (r->has_wo)
        return quant_wo_report_json(ctx, path, &r->wo);
    return quant_report_json(ctx, path, r->measured ? &r->rep : NULL, r->has_plan ? &r->plan : NULL,
                             r->has_plan ? &r->opts : NULL);
}

size_t oct_report_tensor_count(const oct_report *r)
{
    return r ? r->has_wo ? r->wo.n : r->rep.n_rows : 0;
}

double oct_report_output_sqnr(const oct_report *r)
{
    return r && r->rep.n_outputs ? r->rep.outputs[0].sqnr : 0.0;
}
