/*
 * model.c: models in the public API: loading, saving, cloning, printing,
 * the declared inputs and outputs, and running pass pipelines by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

const char *oct_version(void)
{
    return OCTET_VERSION;
}

oct_model *api_model_wrap(oct_ctx *ctx, ir_model *ir, const char *path)
{
    oct_model *m = ir_alloc(ctx, sizeof *m);
    if (!m)
        return NULL;
    m->ir = ir;
    m->path = path ? ir_strdup(ctx, path) : NULL;
    return m;
}

oct_status api_push_string(oct_ctx *ctx, const char ***list, size_t *n,
                           size_t *cap, const char *s)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        const char **grown = ir_alloc_array(ctx, ncap, sizeof *grown);
        if (!grown)
            return OCT_EINTERNAL;
        if (*n)
            memcpy(grown, *list, *n * sizeof *grown);
        *list = grown;
        *cap = ncap;
    }
    const char *copy = ir_strdup(ctx, s);
    if (!copy)
        return OCT_EINTERNAL;
    (*list)[(*n)++] = copy;
    return OCT_OK;
}

oct_status api_prepare(oct_ctx *ctx, ir_model *m, const char *const *shapes,
                       size_t n_shapes)
{
    oct_status st = OCT_OK;
    for (size_t i = 0; !st && i < n_shapes; i++)
        st = pass_bind_input_shape(ctx, m->graph, shapes[i]);
    if (!st)
        st = pass_run_default(m, ctx);
    return st;
}

oct_status api_check_output_dir(oct_ctx *ctx, const char *path)
{
    if (!strcmp(path, "-"))
        return OCT_OK;
    const char *slash = strrchr(path, '/');
    if (!slash)
        return OCT_OK;
    size_t len = (size_t)(slash - path);
    char *dir = ir_alloc(ctx, len + 2);
    if (!dir)
        return OCT_EINTERNAL;
    memcpy(dir, path, len ? len : 1);
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
        return OCT_OK;
    const char *saved = ctx->cur_file;
    ctx->cur_file = path;
    oct_status st = oct_error(ctx, OCT_EINPUT, "cannot write here: the folder '%s' "
                              "does not exist", dir);
    ctx->cur_file = saved;
    return st;
}

static oct_status load_done(oct_ctx *ctx, ir_model *ir, const char *name, unsigned flags,
                            oct_model **out)
{
    oct_status st = ir_verify(ir, ctx);
    if (st && !(flags & OCT_LOAD_NO_VERIFY))
        return st;
    *out = api_model_wrap(ctx, ir, name);
    return *out ? st : OCT_EINTERNAL;
}

/* True if the file at path starts like the text IR. */
static bool file_is_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char head[16];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return n > 0 && ir_is_text(head, n);
}

/* Decodes a whole file image: text IR or binary ONNX, by content. */
static oct_status load_bytes(oct_ctx *ctx, const uint8_t *data, size_t len,
                             const char *name, const fe_load_opts *lo, ir_model **ir)
{
    return ir_is_text(data, len) ? ir_parse_text(ctx, (const char *)data, len, name, ir)
                                 : fe_load_memory(ctx, data, len, name, NULL, lo, ir);
}

oct_status oct_model_load_file(oct_ctx *ctx, const char *path, unsigned flags,
                               oct_model **out)
{
    if (!ctx || !path || !out)
        return OCT_EUSAGE;
    *out = NULL;
    fe_load_opts lo = {.allow_external_data = (flags & OCT_LOAD_EXTERNAL_DATA) != 0};
    ir_model *ir;
    oct_status st;
    if (!strcmp(path, "-") || file_is_text(path)) {
        /* standard input may hold either form; text IR is parsed whole */
        uint8_t *data;
        size_t len;
        bool in = !strcmp(path, "-");
        if (!in)
            ir_note_input(ctx, path);
        if ((st = ir_read_file(ctx, path, ctx->limits.max_file_bytes, &data, &len)))
            return st;
        st = load_bytes(ctx, data, len, in ? "<stdin>" : path, &lo, &ir);
        oct_free(ctx, data, len ? len : 1);
    } else {
        ir_note_input(ctx, path);
        st = fe_load_file(ctx, path, &lo, &ir);
    }
    return st ? st : load_done(ctx, ir, path, flags, out);
}

oct_status oct_model_load_memory(oct_ctx *ctx, const void *data, size_t len,
                                 const char *name, oct_model **out)
{
    if (!ctx || (!data && len) || !out)
        return OCT_EUSAGE;
    *out = NULL;
    fe_load_opts lo = {0};
    ir_model *ir;
    if (!name)
        name = "<memory>";
    oct_status st = load_bytes(ctx, data, len, name, &lo, &ir);
    return st ? st : load_done(ctx, ir, name, 0, out);
}

oct_status oct_model_save_file(oct_ctx *ctx, const oct_model *m, const char *path)
{
    if (!ctx || !m || !path)
        return OCT_EUSAGE;
    oct_status st = api_check_output_dir(ctx, path);
    return st ? st : fe_save_file(ctx, m->ir, path);
}

oct_status oct_model_save_memory(oct_ctx *ctx, const oct_model *m, void **data,
                                 size_t *len)
{
    if (!ctx || !m || !data || !len)
        return OCT_EUSAGE;
    uint8_t *bytes;
    oct_status st = fe_save_memory(ctx, m->ir, &bytes, len);
    *data = st ? NULL : bytes;
    return st;
}

/* A copy as loading the model would give it (ir_model_clone, no wire
 * round trip): the types the model declares (graph inputs and outputs,
 * value_info, initializers) are kept and the ones passes inferred for the
 * other values are dropped, so that passes run on the copy with other
 * bindings (another batch, other input shapes) infer them afresh. */
oct_status api_clone_ir(oct_ctx *ctx, const ir_model *m, ir_model **out)
{
    oct_status st = ir_model_clone(ctx, m, out);
    if (st)
        return st;
    ir_graph *g = (*out)->graph;
    for (size_t i = 0; i < g->n_values; i++) {
        ir_value *v = g->values[i];
        if (v && !v->init && !(v->flags & (IR_VAL_INPUT | IR_VAL_OUTPUT | IR_VAL_INFO))) {
            v->has_type = false;
            memset(&v->type, 0, sizeof v->type);
            v->type.rank = -1; /* unknown, as a new value's */
        }
    }
    return OCT_OK;
}

oct_status oct_model_clone(oct_ctx *ctx, const oct_model *m, oct_model **out)
{
    if (!ctx || !m || !out)
        return OCT_EUSAGE;
    *out = NULL;
    ir_model *copy;
    oct_status st = api_clone_ir(ctx, m->ir, &copy);
    if (st)
        return st;
    *out = api_model_wrap(ctx, copy, m->path);
    return *out ? OCT_OK : OCT_EINTERNAL;
}

void oct_buffer_free(oct_ctx *ctx, void *data, size_t len)
{
    oct_free(ctx, data, len);
}

oct_status oct_model_print(oct_ctx *ctx, const oct_model *m, oct_print_format format,
                           char **text, size_t *len)
{
    if (!ctx || !m || !text || !len)
        return OCT_EUSAGE;
    *text = NULL;
    *len = 0;
    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    if (!mem)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory printing the model");
    switch (format) {
    case OCT_PRINT_TEXT: ir_print_text(m->ir, mem); break;
    case OCT_PRINT_TEXT_FULL:
        ir_print_text_opts(m->ir, mem, &(ir_print_opts){.full = true});
        break;
    case OCT_PRINT_JSON: ir_print_json(m->ir, mem); break;
    case OCT_PRINT_DOT: ir_print_dot(m->ir, mem); break;
    default:
        fclose(mem);
        free(buf);
        return oct_error(ctx, OCT_EUSAGE, "unknown print format %d", (int)format);
    }
    return api_stream_text(ctx, mem, &buf, &size, "the model", text, len);
}

oct_status api_stream_text(oct_ctx *ctx, FILE *mem, char **buf, size_t *size,
                           const char *what, char **text, size_t *len)
{
    if (fclose(mem) != 0 || !*buf) {
        free(*buf);
        return oct_error(ctx, OCT_EINTERNAL, "out of memory printing %s", what);
    }
    /* hand the caller memory from the context, so one free function fits */
    char *copy = oct_malloc(ctx, *size + 1);
    if (copy)
        memcpy(copy, *buf, *size + 1);
    free(*buf);
    if (!copy)
        return OCT_EINTERNAL;
    *text = copy;
    *len = *size;
    return OCT_OK;
}

/* The i-th graph input that is not an initializer, or NULL. */
static const ir_value *fed_input(const ir_graph *g, size_t index)
{
    for (size_t i = 0, k = 0; i < g->n_inputs; i++) {
        if (g->inputs[i]->init)
            continue;
        if (k++ == index)
            return g->inputs[i];
    }
    return NULL;
}

size_t oct_model_input_count(const oct_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->ir->graph->n_inputs; i++)
        n += !m->ir->graph->inputs[i]->init;
    return n;
}

size_t oct_model_output_count(const oct_model *m)
{
    return m->ir->graph->n_outputs;
}

/* A view of a value's declared type; dims of unknown or symbolic
 * dimensions are -1, copied into ctx's arena. */
static oct_status value_view(oct_ctx *ctx, const ir_value *v, oct_tensor *out)
{
    memset(out, 0, sizeof *out);
    if (!v)
        return oct_error(ctx, OCT_EUSAGE, "no such model input or output");
    out->name = v->name;
    out->dtype = (int32_t)v->type.dtype;
    out->rank = v->type.rank;
    if (v->type.rank > 0) {
        int64_t *dims = ir_alloc_array(ctx, (size_t)v->type.rank, sizeof *dims);
        if (!dims)
            return OCT_EINTERNAL;
        for (int d = 0; d < v->type.rank; d++)
            dims[d] = v->type.dims[d].value;
        out->dims = dims;
    }
    return OCT_OK;
}

oct_status oct_model_input(oct_ctx *ctx, const oct_model *m, size_t index, oct_tensor *out)
{
    if (!ctx || !m || !out)
        return OCT_EUSAGE;
    return value_view(ctx, fed_input(m->ir->graph, index), out);
}

oct_status oct_model_output(oct_ctx *ctx, const oct_model *m, size_t index, oct_tensor *out)
{
    if (!ctx || !m || !out)
        return OCT_EUSAGE;
    const ir_graph *g = m->ir->graph;
    return value_view(ctx, index < g->n_outputs ? g->outputs[index] : NULL, out);
}

oct_status oct_model_bind_input_shape(oct_ctx *ctx, oct_model *m, const char *spec)
{
    if (!ctx || !m || !spec)
        return OCT_EUSAGE;
    return pass_bind_input_shape(ctx, m->ir->graph, spec);
}

oct_status api_run_pipeline(oct_ctx *ctx, ir_model *m, const char *pipeline)
{
    if (!strcmp(pipeline, "default"))
        return pass_run_default(m, ctx);
    return pass_run_list(m, pipeline, ctx);
}

oct_status oct_run_passes(oct_ctx *ctx, oct_model *m, const char *pipeline)
{
    if (!ctx || !m || !pipeline)
        return OCT_EUSAGE;
    return api_run_pipeline(ctx, m->ir, pipeline);
}
