/*
 * run_so.c: `octet run OUT/NAME.so --input NAME=FILE ...`: runs a model
 * compiled by `octet compile --emit=so` through its signature.  dlopen()s
 * the library, reads NAME_signature (JSON: inputs and outputs with name,
 * dtype, shape, bytes; scratch size and alignment), checks every input
 * tensor against it, calls NAME_run and prints the same per-output summary
 * line as for ONNX models (optionally writing the outputs as .npy).
 *
 * cli_run_compiled, the signature-driven runner, is shared with
 * `octet run MODEL.onnx --jit` (cmd_run.c), which gets its entry points
 * from the JIT instead of dlsym().
 */
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include <octet_runtime.h> /* the runtime library's public header */

/* numpy dtype names of the signature to ONNX dtype numbers (0: unknown) */
static int32_t dtype_of(const char *np)
{
    static const struct { const char *np; int32_t dt; } map[] = {
        {"float32", OCT_DT_FLOAT}, {"float64", OCT_DT_DOUBLE}, {"uint8", OCT_DT_UINT8},
        {"int8", OCT_DT_INT8}, {"uint16", OCT_DT_UINT16}, {"int16", OCT_DT_INT16},
        {"int32", OCT_DT_INT32}, {"uint32", OCT_DT_UINT32}, {"int64", OCT_DT_INT64},
        {"uint64", OCT_DT_UINT64}, {"bool", OCT_DT_BOOL}, {"float16", OCT_DT_FLOAT16},
        /* no numpy spelling: the short names of the IR (ONNX numbers) */
        {"bf16", OCT_DT_BFLOAT16}, {"f8e4m3fn", OCT_DT_FLOAT8E4M3FN}, {"f8e4m3fnuz", 18},
        {"f8e5m2", OCT_DT_FLOAT8E5M2}, {"f8e5m2fnuz", 20}, {"u4", 21}, {"i4", 22},
        {"f4e2m1", 23}, {"u2", 25}, {"i2", 26}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].np, np))
            return map[i].dt;
    return 0;
}

/* One signature entry as a tensor description; false if malformed. */
static bool io_spec(const cJSON *o, const char **name, int32_t *dt, int *rank, int64_t *dims)
{
    const cJSON *n = cJSON_GetObjectItem(o, "name"), *t = cJSON_GetObjectItem(o, "dtype"),
                *s = cJSON_GetObjectItem(o, "shape");
    if (!cJSON_IsString(n) || !cJSON_IsString(t) || !cJSON_IsArray(s) ||
        cJSON_GetArraySize(s) > CLI_MAX_RANK)
        return false;
    *name = n->valuestring;
    *dt = dtype_of(t->valuestring);
    *rank = cJSON_GetArraySize(s);
    for (int d = 0; d < *rank; d++) {
        const cJSON *v = cJSON_GetArrayItem(s, d);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0)
            return false;
        dims[d] = (int64_t)v->valuedouble;
    }
    return *dt != 0;
}

oct_status cli_run_compiled(oct_ctx *ctx, const cli_compiled_run *r)
{
    const char *sym_base = r->sym_base;
    if (r->threads > 1 && !r->run_threads)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "--threads: the compiled model has no "
                         "%s_run_threads", sym_base);
    cJSON *sig = cJSON_Parse(r->signature);
    if (!sig)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed signature JSON");
    oct_status st = OCT_OK;
    const cJSON *ins = cJSON_GetObjectItem(sig, "inputs"), *outs = cJSON_GetObjectItem(sig, "outputs");
    const cJSON *ss = cJSON_GetObjectItem(sig, "scratch_size");
    int n_in = cJSON_GetArraySize(ins), n_out = cJSON_GetArraySize(outs);
    if (n_in < 0)
        n_in = 0;
    if (n_out < 0)
        n_out = 0;
    const void **in_ptrs = calloc((size_t)n_in + 1, sizeof *in_ptrs);
    void **out_ptrs = calloc((size_t)n_out + 1, sizeof *out_ptrs);
    oct_tensor *out_t = calloc((size_t)n_out + 1, sizeof *out_t);
    const char **out_names = calloc((size_t)n_out + 1, sizeof *out_names);
    void *scratch = NULL;
    octrt_pool *pool = NULL;
    double *times = NULL;
    if (!cJSON_IsArray(ins) || !cJSON_IsArray(outs) || !cJSON_IsNumber(ss)) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed signature JSON");
        goto done;
    }
    if (!in_ptrs || !out_ptrs || !out_t || !out_names) {
        st = OCT_EINTERNAL;
        goto done;
    }
    for (int k = 0; k < n_in && st == OCT_OK; k++) {
        const char *name;
        int32_t dt;
        int rank;
        int64_t dims[CLI_MAX_RANK];
        if (!io_spec(cJSON_GetArrayItem(ins, k), &name, &dt, &rank, dims)) {
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed signature JSON");
            break;
        }
        const oct_tensor *t;
        if ((st = r->get_input(r->input_user, ctx, name, &t)) != OCT_OK)
            break;
        bool same = t->dtype == dt && t->rank == rank;
        for (int d = 0; same && d < rank; d++)
            same = t->dims[d] == dims[d];
        if (!same) {
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, name, "input '%s': the "
                              "compiled model takes %s of rank %d with fixed dims; the file "
                              "holds %s of rank %d or other dims", name, oct_dtype_name(dt),
                              rank, oct_dtype_name(t->dtype), t->rank);
            break;
        }
        in_ptrs[k] = t->data;
    }
    for (int k = 0; k < n_out && st == OCT_OK; k++) {
        int32_t dt;
        int rank;
        int64_t dims[CLI_MAX_RANK];
        if (!io_spec(cJSON_GetArrayItem(outs, k), &out_names[k], &dt, &rank, dims)) {
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed signature JSON");
            break;
        }
        if ((st = oct_tensor_new(ctx, dt, rank, dims, &out_t[k])) != OCT_OK)
            break;
        out_t[k].name = out_names[k];
        out_ptrs[k] = out_t[k].data;
    }
    if (st != OCT_OK)
        goto done;
    size_t scratch_size = (size_t)ss->valuedouble;
    scratch = aligned_alloc(64, (scratch_size + 63) / 64 * 64 + 64);
    times = calloc((size_t)r->repeat, sizeof *times);
    if (r->threads > 1 && !(pool = octrt_pool_create(r->threads))) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "cannot start %d threads", r->threads);
        goto done;
    }
    if (!scratch || !times) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "out of memory");
        goto done;
    }
    for (long i = 0; i < r->repeat; i++) {
        double t0 = cli_now_ms();
        int rc = pool ? r->run_threads(in_ptrs, out_ptrs, scratch, pool)
                      : r->run(in_ptrs, out_ptrs, scratch);
        times[i] = cli_now_ms() - t0;
        if (rc != 0) {
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "%s_run returned %d", sym_base, rc);
            goto done;
        }
    }
    if (r->timing)
        cli_print_timing(times, r->repeat);
    for (int k = 0; k < n_out; k++)
        cli_print_summary(&out_t[k], out_names[k]);
    if (r->output_dir) {
        if ((st = cli_make_output_dir(ctx, r->output_dir)) != OCT_OK)
            goto done;
        for (int k = 0; k < n_out && st == OCT_OK; k++)
            st = cli_write_output(ctx, r->output_dir, out_names[k], &out_t[k], r->pb);
    }
done:
    if (out_t)
        for (int k = 0; k < n_out; k++)
            oct_tensor_release(ctx, &out_t[k]);
    free(in_ptrs);
    free(out_ptrs);
    free(out_t);
    free(out_names);
    octrt_pool_destroy(pool);
    free(scratch);
    free(times);
    cJSON_Delete(sig);
    return st;
}

/* Inputs of a .so run: the NAME=FILE arguments, read on demand. */
typedef struct file_inputs {
    const char *const *args;
    size_t n_args;
    oct_tensor *read[256];   /* the views handed out, freed after the run */
    size_t n_read;
} file_inputs;

static oct_status input_from_args(void *user, oct_ctx *ctx, const char *name,
                                  const oct_tensor **out)
{
    file_inputs *fi = user;
    size_t len = strlen(name);
    const char *file = NULL;
    for (size_t a = 0; a < fi->n_args; a++)
        if (!strncmp(fi->args[a], name, len) && fi->args[a][len] == '=')
            file = fi->args[a] + len + 1;
    if (!file)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EUSAGE, NULL, "no --input given for model input '%s'", name);
    /* read once per run: a small cache keyed by the argument */
    oct_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "out of memory");
    oct_status st = oct_tensor_read(ctx, file, t);
    if (fi->n_read < sizeof fi->read / sizeof fi->read[0])
        fi->read[fi->n_read++] = t;
    *out = t;
    return st;
}

/* A model compiled with --weights=file: its signature names NAME.weights
 * and its size; the file, beside the library (so_dir), is read into a
 * 64-byte-aligned buffer (*buf, freed by the caller) that NAME_weights
 * then points to.  Nothing to do for embedded weights. */
static oct_status load_weights(oct_ctx *ctx, void *lib, const char *so_dir,
                               const char *sym_base, const char *sig_text, void **buf)
{
    *buf = NULL;
    cJSON *sig = cJSON_Parse(sig_text);
    if (!sig)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed signature JSON");
    const cJSON *wf = cJSON_GetObjectItem(sig, "weights_file");
    const cJSON *ws = cJSON_GetObjectItem(sig, "weights_size");
    oct_status st = OCT_OK;
    if (!cJSON_IsString(wf) || !cJSON_IsNumber(ws) || ws->valuedouble < 0 ||
        strchr(wf->valuestring, '/')) {
        if (wf)
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed weights entry in the signature");
        cJSON_Delete(sig);
        return st;
    }
    char *path = malloc(strlen(so_dir) + strlen(wf->valuestring) + 2);
    if (path)
        sprintf(path, "%s/%s", so_dir, wf->valuestring);
    char sym[512];
    snprintf(sym, sizeof sym, "%s_weights", sym_base);
    const void **slot = dlsym(lib, sym);
    size_t size = (size_t)ws->valuedouble;
    FILE *in = path ? fopen(path, "rb") : NULL;
    struct stat sb;
    if (!path) {
        st = OCT_EINTERNAL;
    } else if (!slot) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "%s not found in the library", sym);
    } else if (!in || fstat(fileno(in), &sb) != 0) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "cannot open the weights file '%s': %s", path,
                       strerror(errno));
    } else if ((size_t)sb.st_size != size) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "'%s' has %lld bytes, the library expects %zu", path,
                       (long long)sb.st_size, size);
    } else if (!(*buf = aligned_alloc(64, (size + 63) / 64 * 64 + 64))) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "out of memory");
    } else if (size && fread(*buf, 1, size, in) != size) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "cannot read '%s'", path);
    } else {
        *slot = *buf;
    }
    if (in)
        fclose(in);
    free(path);
    cJSON_Delete(sig);
    return st;
}

static oct_status run_loaded(oct_ctx *ctx, void *lib, const char *so_dir, const char *sym_base,
                             const char *const *input_args, size_t n_input_args,
                             const char *output_dir, long repeat, bool timing, int threads)
{
    char sym[512];
    snprintf(sym, sizeof sym, "%s_signature", sym_base);
    const char *sig_text = dlsym(lib, sym);
    snprintf(sym, sizeof sym, "%s_run", sym_base);
    cli_run_fn run;
    *(void **)&run = dlsym(lib, sym);
    if (!sig_text || !run)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "%s_signature or %s_run not found: not a library "
                         "made by octet compile (its name must be NAME.so)", sym_base, sym_base);
    cli_run_threads_fn run_threads = NULL;
    snprintf(sym, sizeof sym, "%s_run_threads", sym_base);
    *(void **)&run_threads = dlsym(lib, sym);
    void *weights;
    oct_status st = load_weights(ctx, lib, so_dir, sym_base, sig_text, &weights);
    if (st != OCT_OK)
        return st;
    file_inputs fi = {input_args, n_input_args, {0}, 0};
    cli_compiled_run r = {
        .sym_base = sym_base, .signature = sig_text, .run = run, .run_threads = run_threads,
        .get_input = input_from_args, .input_user = &fi, .output_dir = output_dir,
        .repeat = repeat, .timing = timing, .threads = threads};
    st = cli_run_compiled(ctx, &r);
    for (size_t i = 0; i < fi.n_read; i++)
        free(fi.read[i]);
    free(weights);
    return st;
}

int cli_run_so(const char *path, const char *const *input_args, size_t n_input_args,
               const char *output_dir, long repeat, bool timing, int threads)
{
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        fprintf(stderr, "octet: out of memory\n");
        return OCT_EINTERNAL;
    }
    oct_ctx_set_file(ctx, path);
    /* NAME from OUT/NAME.so */
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *name = strndup(base, strlen(base) - 3);
    /* dlopen needs a slash to not search the library path */
    char *full = malloc(strlen(path) + 3);
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (full)
        sprintf(full, "%s%s", slash ? "" : "./", path);
    oct_status st = name && full && dir ? OCT_OK : OCT_EINTERNAL;
    void *lib = NULL;
    if (st == OCT_OK && !(lib = dlopen(full, RTLD_NOW | RTLD_LOCAL)))
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "cannot load the library: %s",
                          dlerror());
    if (st == OCT_OK)
        st = run_loaded(ctx, lib, dir, name, input_args, n_input_args, output_dir, repeat,
                        timing, threads);
    if (lib)
        dlclose(lib);
    free(name);
    free(full);
    free(dir);
    return cli_finish(ctx, st);
}
