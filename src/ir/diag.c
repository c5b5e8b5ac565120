/*
 * diag.c: diagnostics recorded in the context.  Library code never prints;
 * the CLI formats these with oct_diag_format().  Diagnostic text is owned by
 * the context (plain malloc, not the arena: a diagnostic about a failed
 * arena allocation must still be recordable).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

oct_status oct_diagf(oct_ctx *ctx, oct_severity sev, oct_status status,
                     const ir_node *node, int io_is_output, int io_index,
                     const char *tensor, const char *fmt, ...)
{
    if (sev == OCT_SEV_ERROR)
        ctx->n_errors++;
    if (ctx->n_diags == ctx->cap_diags) {
        size_t cap = ctx->cap_diags ? 2 * ctx->cap_diags : 16;
        oct_diag *d = realloc(ctx->diags, cap * sizeof *d);
        if (!d)
            return status; /* the status still reaches the caller */
        ctx->diags = d;
        ctx->cap_diags = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    oct_diag *d = &ctx->diags[ctx->n_diags++];
    memset(d, 0, sizeof *d);
    d->severity = sev;
    d->status = status;
    d->file = dup_or_null(ctx->cur_file);
    if (node) {
        char label[64];
        d->node = dup_or_null(ir_node_label(node, label, sizeof label));
        d->op_type = dup_or_null(node->op_type);
    }
    d->io_is_output = io_is_output;
    d->io_index = io_index;
    d->tensor = dup_or_null(tensor);
    d->message = dup_or_null(msg);
    return status;
}

size_t oct_diag_count(const oct_ctx *ctx) { return ctx->n_diags; }
size_t oct_error_count(const oct_ctx *ctx) { return ctx->n_errors; }

const oct_diag *oct_diag_get(const oct_ctx *ctx, size_t index)
{
    return index < ctx->n_diags ? &ctx->diags[index] : NULL;
}

int oct_diag_format(const oct_diag *d, char *buf, size_t size)
{
    static const char *const sev_name[] = {"note", "warning", "error"};
    char where[512] = "";
    size_t off = 0;
#define PUT(...)                                                            \
    do {                                                                    \
        int n_ = snprintf(where + off, sizeof where - off, __VA_ARGS__);    \
        if (n_ > 0)                                                         \
            off = off + (size_t)n_ < sizeof where ? off + (size_t)n_        \
                                                  : sizeof where - 1;       \
    } while (0)
    if (d->file)
        PUT("%s: ", d->file);
    if (d->node) {
        PUT("node '%s'", d->node);
        if (d->op_type)
            PUT(" (%s)", d->op_type);
        if (d->io_index >= 0)
            PUT(" %s %d", d->io_is_output ? "output" : "input", d->io_index);
        if (d->tensor)
            PUT(" '%s'", d->tensor);
        PUT(": ");
    } else if (d->tensor) {
        PUT("tensor '%s': ", d->tensor);
    }
#undef PUT
    return snprintf(buf, size, "%s%s: %s", where, sev_name[d->severity],
                    d->message ? d->message : "");
}

void oct_diag_truncate(oct_ctx *ctx, size_t n)
{
    for (size_t i = n; i < ctx->n_diags; i++) {
        oct_diag *d = &ctx->diags[i];
        free((char *)d->file);
        free((char *)d->node);
        free((char *)d->op_type);
        free((char *)d->tensor);
        free((char *)d->message);
    }
    if (n < ctx->n_diags)
        ctx->n_diags = n;
}

void oct_diag_release(oct_ctx *ctx)
{
    oct_diag_truncate(ctx, 0);
}
