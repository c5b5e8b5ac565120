/*
 * quant_report_lines.h: the quantization report flattened to one line per
 * tensor, whatever its source (a plan from `octet quantize`, or the Q/DQ
 * pairs of `octet report`).  Private to the report writers: the table and
 * JSON (quant_report_io.c) and the SVG (quant_report_svg.c) show the same
 * lines in the same order.
 */
#ifndef OCTET_QUANT_REPORT_LINES_H
#define OCTET_QUANT_REPORT_LINES_H

#include "passes/quant.h"

typedef struct quant_report_line {
    const char *tensor, *kind, *dtype, *format, *granularity, *method, *reason;
    ir_dtype qtype;             /* the precision chosen; FLOAT if kept FP32 */
    size_t n_scales;
    float scale;
    int32_t zero_point;
    double clipped, sqnr, sqnr_accum, sqnr_of[QUANT_MAX_FAMILIES];
} quant_report_line;

/* Room the caller must give quant_report_lines. */
size_t quant_report_max_lines(const quant_report *rep, const quant_plan *plan);
/* Fills out[] and returns the line count. */
size_t quant_report_lines(const quant_report *rep, const quant_plan *plan,
                          const quant_opts *opts, quant_report_line *out);

#endif
