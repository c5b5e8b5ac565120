/*
 * quant_report_svg.c: the quantization report as a picture (`octet report
 * --svg FILE`, `octet quantize --svg FILE`), a plain SVG 1.1 document built
 * in memory; the caller writes it (ir_write_atomic).
 *
 * One row per line of the report (quant_report_lines.h: the same tensors,
 * in the same order, as the table and the JSON): the tensor's name, a
 * horizontal bar whose length is the tensor's own SQNR (its Q/DQ pair
 * alone) filled with the colour of the precision chosen (ir_precision_colour,
 * the palette of `inspect --format=dot`; grey when the tensor stayed FP32),
 * a black tick at the accumulated SQNR (against the FP32 model, all
 * upstream error included) when it was measured, and the two figures and
 * the precision as text.  The x axis runs from 0 dB to the largest SQNR
 * below CAP_DB rounded up to 10 dB (a tensor the quantizer leaves exact,
 * such as a MaxPool output, reports 200 dB and would squash the rest);
 * longer bars stop at the edge, negative ones have no length, and the text
 * always gives the true figure.  Below the axis: its
 * label, the legend (the precisions used, then the bar and the tick) and
 * the end-to-end SQNR of each graph output.  Each row is a <g> whose
 * <title> holds the full tensor name (names longer than NAME_CHARS are cut
 * in the visible text).  Names are XML-escaped; control characters and
 * bytes that are not UTF-8 become the text \xHH.  Numbers are printed with
 * a fixed precision, so the same report gives the same bytes.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "passes/quant.h"
#include "passes/quant_report_lines.h"

enum {
    ROW_H = 18,         /* pixels per row */
    NAME_CHARS = 48,    /* visible characters of a tensor name */
    CHAR_W = 7,         /* rough width of one character at font-size 11 */
    PLOT_W = 480,       /* bar area */
    TEXT_W = 210,       /* figures right of the bars */
    TOP = 50,           /* title */
};

static const double CAP_DB = 100.0;
static const char *const FP32_COLOUR = "#d9d9d9";

/* A growing text buffer; the first failure sticks. */
typedef struct sbuf {
    oct_ctx *ctx;
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_reserve(sbuf *b, size_t more)
{
    if (b->failed || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = oct_realloc(b->ctx, b->p, b->cap, cap);
    if (!p) {
        b->failed = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    sb_reserve(b, (size_t)n);
    if (b->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Text content or attribute value, XML-escaped; at most max_chars
 * characters (0: all), then "...". */
static void sb_text(sbuf *b, const char *s, size_t max_chars)
{
    const uint8_t *p = (const uint8_t *)(s ? s : "");
    size_t len = strlen((const char *)p), chars = 0;
    for (size_t i = 0; i < len; chars++) {
        if (max_chars && chars == max_chars) {
            sb_printf(b, "...");
            return;
        }
        uint8_t c = p[i];
        size_t n = c < 0x80 ? 1 : ir_utf8_len(p + i, len - i);
        if (c == '&')
            sb_printf(b, "&amp;");
        else if (c == '<')
            sb_printf(b, "&lt;");
        else if (c == '>')
            sb_printf(b, "&gt;");
        else if (c == '"')
            sb_printf(b, "&quot;");
        else if (c < 0x20 || c == 0x7f || n == 0)
            sb_printf(b, "\\x%02x", c);
        else
            sb_printf(b, "%.*s", (int)n, (const char *)p + i);
        i += n ? n : 1;
    }
}

static const char *line_colour(const quant_report_line *l)
{
    const char *c = ir_precision_colour(l->qtype);
    return c ? c : FP32_COLOUR;
}

static double x_of(double db, double xmax)
{
    if (isnan(db) || db <= 0)
        return 0;
    return db >= xmax ? PLOT_W : PLOT_W * db / xmax;
}

static void row(sbuf *b, const quant_report_line *l, int y, int x0, double xmax)
{
    sb_printf(b, "<g class=\"row\"><title>");
    sb_text(b, l->tensor, 0);
    sb_printf(b, " (%s, %s)</title>\n", l->kind, l->dtype);
    sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", x0 - 6, y + 13);
    sb_text(b, l->tensor, NAME_CHARS);
    sb_printf(b, "</text>\n");
    sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\" "
              "stroke=\"#555555\" stroke-width=\"0.5\"/>\n",
              x0, y + 3, x_of(l->sqnr, xmax), ROW_H - 6, line_colour(l));
    if (!isnan(l->sqnr_accum))
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000000\" "
                  "stroke-width=\"2\"/>\n", x0 + x_of(l->sqnr_accum, xmax), y + 1,
                  x0 + x_of(l->sqnr_accum, xmax), y + ROW_H - 1);
    char alone[32] = "-", accum[32] = "-";
    if (!isnan(l->sqnr))
        snprintf(alone, sizeof alone, "%.1f", l->sqnr);
    if (!isnan(l->sqnr_accum))
        snprintf(accum, sizeof accum, "%.1f", l->sqnr_accum);
    sb_printf(b, "<text x=\"%d\" y=\"%d\">%s / %s dB  %s</text>\n</g>\n",
              x0 + PLOT_W + 8, y + 13, alone, accum, l->dtype);
}

static void axis(sbuf *b, int x0, int y, double xmax)
{
    double step = xmax <= 50 ? 5 : 10;
    sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#000000\"/>\n",
              x0, TOP, x0, y);
    sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#000000\"/>\n",
              x0, y, x0 + PLOT_W, y);
    for (double t = 0; t <= xmax + 1e-9; t += step) {
        double x = x0 + x_of(t, xmax);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000000\"/>\n"
                  "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e0e0e0\"/>\n"
                  "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n",
                  x, y, x, y + 5, x, TOP, x, y - 1, x, y + 17, t);
    }
    sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">SQNR (dB, higher is "
              "better): bar = the tensor's own Q/DQ error, tick = accumulated "
              "against FP32</text>\n", x0 + PLOT_W / 2, y + 34);
    sb_printf(b, "<text x=\"12\" y=\"%d\" transform=\"rotate(-90 12 %d)\" "
              "text-anchor=\"middle\">quantized tensor</text>\n",
              (TOP + y) / 2, (TOP + y) / 2);
}

/* Swatches for the precisions used (dtypes.def order, FP32 last), then the
 * tick; returns the y below it. */
static int legend(sbuf *b, const quant_report_line *lines, size_t n, int x0, int y)
{
    sb_printf(b, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">precision</text>\n", x0, y);
    int x = x0 + 70;
    for (int dt = 0; dt <= IR_DT_COUNT; dt++) {
        int want = dt == IR_DT_COUNT ? IR_DT_FLOAT : dt;
        if (want == IR_DT_FLOAT && dt != IR_DT_COUNT)
            continue;
        bool used = false;
        for (size_t i = 0; i < n && !used; i++)
            used = lines[i].qtype == (ir_dtype)want;
        if (!used)
            continue;
        const char *colour = ir_precision_colour(want);
        sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"12\" fill=\"%s\" "
                  "stroke=\"#555555\" stroke-width=\"0.5\"/>\n<text x=\"%d\" y=\"%d\">%s</text>\n",
                  x, y - 10, colour ? colour : FP32_COLOUR, x + 18, y,
                  colour ? ir_dtype_name(want) : "FP32 (kept float)");
        x += colour ? 30 + 8 * (int)strlen(ir_dtype_name(want)) : 150;
    }
    sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#000000\" "
              "stroke-width=\"2\"/>\n<text x=\"%d\" y=\"%d\">accumulated SQNR</text>\n",
              x + 7, y - 11, x + 7, y + 3, x + 14, y);
    return y + 22;
}

oct_status quant_report_svg(oct_ctx *ctx, const quant_report *rep,
                            const quant_plan *plan, const quant_opts *opts,
                            char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    size_t cap = quant_report_max_lines(rep, plan);
    quant_report_line *lines = oct_malloc(ctx, cap * sizeof *lines);
    if (!lines)
        return OCT_EINTERNAL;
    size_t n = quant_report_lines(rep, plan, opts, lines);
    double top = 0;
    size_t name_chars = 8;
    for (size_t i = 0; i < n; i++) {
        const quant_report_line *l = &lines[i];
        for (int k = 0; k < 2; k++) {
            double v = k ? l->sqnr_accum : l->sqnr;
            if (isfinite(v) && v > top && v < CAP_DB)
                top = v;
        }
        size_t len = strlen(l->tensor);
        if (len > name_chars)
            name_chars = len < NAME_CHARS ? len : NAME_CHARS + 3;
    }
    double xmax = fmax(10.0, fmin(CAP_DB, ceil(top / 10.0) * 10.0));
    int x0 = 24 + CHAR_W * (int)name_chars;
    int y_axis = TOP + ROW_H * (int)n + 4;
    size_t n_out = rep ? rep->n_outputs : 0;
    int height = y_axis + 50 + 22 + 18 * (int)n_out + 12;
    int width = x0 + PLOT_W + TEXT_W;
    sbuf b = {.ctx = ctx};
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
              "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, "
              "sans-serif\" font-size=\"11\">\n"
              "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
              width, height, width, height, width, height);
    sb_printf(&b, "<text x=\"%d\" y=\"22\" font-size=\"14\" font-weight=\"bold\">"
              "Quantization report: SQNR per quantized tensor, %zu tensors, "
              "%llu samples</text>\n", x0, n,
              (unsigned long long)(rep ? rep->n_samples : plan ? plan->n_samples : 0));
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">alone / accum., "
              "type</text>\n", x0 + PLOT_W + 8, TOP - 6);
    for (size_t i = 0; i < n; i++)
        row(&b, &lines[i], TOP + ROW_H * (int)i, x0, xmax);
    axis(&b, x0, y_axis, xmax);
    int y = legend(&b, lines, n, x0, y_axis + 62);
    for (size_t o = 0; o < n_out; o++, y += 18) {
        sb_printf(&b, "<text x=\"%d\" y=\"%d\">output ", x0, y);
        sb_text(&b, rep->outputs[o].name, 0);
        sb_printf(&b, ": SQNR %.2f dB against FP32</text>\n", rep->outputs[o].sqnr);
    }
    sb_printf(&b, "</svg>\n");
    oct_free(ctx, lines, cap * sizeof *lines);
    char *text = b.failed ? NULL : ir_alloc(ctx, b.len + 1);
    if (text)
        memcpy(text, b.p, b.len + 1);
    oct_free(ctx, b.p, b.cap);
    if (!text)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory drawing the report");
    *out = text;
    *out_len = b.len;
    return OCT_OK;
}
