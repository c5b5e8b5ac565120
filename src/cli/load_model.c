/*
 * load_model.c: the model loader `opt` and `inspect` share.  It takes
 * binary ONNX or Octet's text IR (src/ir/parse.c), chosen by content: a
 * text IR file starts with the line "octet-ir 1", which no ONNX file can
 * (its first byte would be field 13 with wire type 7, which does not
 * exist).  "-" reads standard input.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "frontend/frontend.h"

/* True if the file at path starts like the text IR. */
static bool file_is_text(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char head[16];
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    return n > 0 && ir_is_text(head, (size_t)n);
}

static oct_status parse_buffer(oct_ctx *ctx, uint8_t *data, size_t len,
                               const char *name, const fe_load_opts *opts,
                               ir_model **out)
{
    oct_status st = ir_is_text(data, len)
                        ? ir_parse_text(ctx, (const char *)data, len, name, out)
                        : fe_load_memory(ctx, data, len, name, NULL, opts, out);
    oct_free(ctx, data, len ? len : 1);
    return st;
}

oct_status cli_load_model(oct_ctx *ctx, const char *path,
                          const fe_load_opts *opts, ir_model **out)
{
    uint8_t *data;
    size_t len;
    oct_status st;
    if (!strcmp(path, "-")) {
        if ((st = ir_read_file(ctx, "-", ctx->limits.max_file_bytes, &data, &len)))
            return st;
        return parse_buffer(ctx, data, len, "<stdin>", opts, out);
    }
    if (!file_is_text(path))
        return fe_load_file(ctx, path, opts, out);
    ir_note_input(ctx, path);
    if ((st = ir_read_file(ctx, path, ctx->limits.max_file_bytes, &data, &len)))
        return st;
    return parse_buffer(ctx, data, len, path, opts, out);
}
