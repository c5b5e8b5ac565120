/*
 * run_so.c: `octet run OUT/NAME.so --input NAME=FILE ...`: runs a model
 * compiled by `octet compile --emit=so` through its signature.  dlopen()s
 * the library, reads NAME_signature (JSON: inputs and outputs with name,
 * dtype, shape, bytes; scratch size and alignment), checks every input
 * tensor against it, calls NAME_run and prints the same per-output summary
 * line as for ONNX models (optionally writing the outputs as .npy).
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

#include "cli.h"
#include "frontend/frontend.h"
#include "ref/ref.h"

typedef int (*run_fn)(const void *const *, void *const *, void *);

static ir_dtype dtype_of(const char *np)
{
    static const struct { const char *np; ir_dtype dt; } map[] = {
        {"float32", IR_DT_FLOAT}, {"float64", IR_DT_DOUBLE}, {"uint8", IR_DT_UINT8},
        {"int8", IR_DT_INT8}, {"uint16", IR_DT_UINT16}, {"int16", IR_DT_INT16},
        {"int32", IR_DT_INT32}, {"uint32", IR_DT_UINT32}, {"int64", IR_DT_INT64},
        {"uint64", IR_DT_UINT64}, {"bool", IR_DT_BOOL}, {"float16", IR_DT_FLOAT16}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].np, np))
            return map[i].dt;
    return IR_DT_UNDEFINED;
}

/* One signature entry as a tensor description; false if malformed. */
static bool io_spec(const cJSON *o, const char **name, ir_dtype *dt, int *rank, int64_t *dims)
{
    const cJSON *n = cJSON_GetObjectItem(o, "name"), *t = cJSON_GetObjectItem(o, "dtype"),
                *s = cJSON_GetObjectItem(o, "shape");
    if (!cJSON_IsString(n) || !cJSON_IsString(t) || !cJSON_IsArray(s) ||
        cJSON_GetArraySize(s) > REF_MAX_RANK)
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
    return *dt != IR_DT_UNDEFINED;
}

static oct_status run_loaded(oct_ctx *ctx, void *lib, const char *sym_base,
                             const char *const *input_args, size_t n_input_args,
                             const char *output_dir, long repeat, bool timing)
{
    char sym[512];
    snprintf(sym, sizeof sym, "%s_signature", sym_base);
    const char *sig_text = dlsym(lib, sym);
    snprintf(sym, sizeof sym, "%s_run", sym_base);
    run_fn run;
    *(void **)&run = dlsym(lib, sym);
    if (!sig_text || !run)
        return oct_error(ctx, OCT_EINPUT, "%s_signature or %s_run not found: not a library "
                         "made by octet compile (its name must be NAME.so)", sym_base, sym_base);
    cJSON *sig = cJSON_Parse(sig_text);
    if (!sig)
        return oct_error(ctx, OCT_EINPUT, "malformed signature JSON");
    oct_status st = OCT_OK;
    const cJSON *ins = cJSON_GetObjectItem(sig, "inputs"), *outs = cJSON_GetObjectItem(sig, "outputs");
    const cJSON *ss = cJSON_GetObjectItem(sig, "scratch_size");
    int n_in = cJSON_GetArraySize(ins), n_out = cJSON_GetArraySize(outs);
    const void **in_ptrs = ir_alloc_array(ctx, (size_t)n_in + 1, sizeof *in_ptrs);
    void **out_ptrs = ir_alloc_array(ctx, (size_t)n_out + 1, sizeof *out_ptrs);
    ir_tensor **out_t = ir_alloc_array(ctx, (size_t)n_out + 1, sizeof *out_t);
    const char **out_names = ir_alloc_array(ctx, (size_t)n_out + 1, sizeof *out_names);
    void *scratch = NULL;
    double *times = NULL;
    if (!cJSON_IsArray(ins) || !cJSON_IsArray(outs) || !cJSON_IsNumber(ss)) {
        st = oct_error(ctx, OCT_EINPUT, "malformed signature JSON");
        goto done;
    }
    if (!in_ptrs || !out_ptrs || !out_t || !out_names) {
        st = OCT_EINTERNAL;
        goto done;
    }
    for (int k = 0; k < n_in && st == OCT_OK; k++) {
        const char *name;
        ir_dtype dt;
        int rank;
        int64_t dims[REF_MAX_RANK];
        if (!io_spec(cJSON_GetArrayItem(ins, k), &name, &dt, &rank, dims)) {
            st = oct_error(ctx, OCT_EINPUT, "malformed signature JSON");
            break;
        }
        size_t len = strlen(name);
        const char *file = NULL;
        for (size_t a = 0; a < n_input_args; a++)
            if (!strncmp(input_args[a], name, len) && input_args[a][len] == '=')
                file = input_args[a] + len + 1;
        if (!file) {
            st = oct_error(ctx, OCT_EUSAGE, "no --input given for model input '%s'", name);
            break;
        }
        ir_tensor *t;
        fe_note_input(ctx, file);
        if ((st = fe_read_tensor(ctx, file, &t)) != OCT_OK)
            break;
        bool same = t->dtype == dt && t->rank == rank;
        for (int d = 0; same && d < rank; d++)
            same = t->dims[d] == dims[d];
        if (!same) {
            st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, k, name, "input '%s': the "
                           "compiled model takes %s of rank %d with fixed dims; the file "
                           "holds %s of rank %d or other dims", name, ir_dtype_name(dt), rank,
                           ir_dtype_name(t->dtype), t->rank);
            break;
        }
        in_ptrs[k] = t->data;
    }
    for (int k = 0; k < n_out && st == OCT_OK; k++) {
        ir_dtype dt;
        int rank;
        int64_t dims[REF_MAX_RANK];
        if (!io_spec(cJSON_GetArrayItem(outs, k), &out_names[k], &dt, &rank, dims)) {
            st = oct_error(ctx, OCT_EINPUT, "malformed signature JSON");
            break;
        }
        if (!(out_t[k] = ref_tensor_new(ctx, dt, rank, dims))) {
            st = OCT_EINTERNAL;
            break;
        }
        out_t[k]->name = out_names[k];
        out_ptrs[k] = out_t[k]->data;
    }
    if (st != OCT_OK)
        goto done;
    size_t scratch_size = (size_t)ss->valuedouble;
    scratch = aligned_alloc(64, (scratch_size + 63) / 64 * 64 + 64);
    times = calloc((size_t)repeat, sizeof *times);
    if (!scratch || !times) {
        st = oct_error(ctx, OCT_EINTERNAL, "out of memory");
        goto done;
    }
    for (long r = 0; r < repeat; r++) {
        double t0 = cli_now_ms();
        int rc = run(in_ptrs, out_ptrs, scratch);
        times[r] = cli_now_ms() - t0;
        if (rc != 0) {
            st = oct_error(ctx, OCT_EINTERNAL, "%s_run returned %d", sym_base, rc);
            goto done;
        }
    }
    if (timing)
        cli_print_timing(times, repeat);
    for (int k = 0; k < n_out; k++)
        cli_print_summary(out_t[k], out_names[k]);
    if (output_dir) {
        if (mkdir(output_dir, 0777) != 0 && errno != EEXIST) {
            st = oct_error(ctx, OCT_EINTERNAL, "cannot create folder '%s': %s", output_dir,
                           strerror(errno));
            goto done;
        }
        for (int k = 0; k < n_out && st == OCT_OK; k++) {
            char *safe = ir_strdup(ctx, *out_names[k] ? out_names[k] : "output");
            if (!safe) {
                st = OCT_EINTERNAL;
                break;
            }
            for (char *p = safe; *p; p++) {
                unsigned char c = (unsigned char)*p;
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-' || (c == '.' && p != safe);
                if (!ok)
                    *p = '_';
            }
            char *path = ir_sprintf(ctx, "%s/%s.npy", output_dir, safe);
            st = path ? fe_write_npy(ctx, out_t[k], path) : OCT_EINTERNAL;
        }
    }
done:
    if (out_t)
        for (int k = 0; k < n_out; k++)
            ref_tensor_free(ctx, out_t[k]);
    free(scratch);
    free(times);
    cJSON_Delete(sig);
    return st;
}

int cli_run_so(const char *path, const char *const *input_args, size_t n_input_args,
               const char *output_dir, long repeat, bool timing)
{
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        fprintf(stderr, "octet: out of memory\n");
        return OCT_EINTERNAL;
    }
    ctx->cur_file = path;
    /* NAME from OUT/NAME.so */
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *name = ir_strndup(ctx, base, strlen(base) - 3);
    /* dlopen needs a slash to not search the library path */
    char *full = slash ? (char *)path : ir_sprintf(ctx, "./%s", path);
    oct_status st = name && full ? OCT_OK : OCT_EINTERNAL;
    void *lib = NULL;
    if (st == OCT_OK && !(lib = dlopen(full, RTLD_NOW | RTLD_LOCAL)))
        st = oct_error(ctx, OCT_EINPUT, "cannot load the library: %s", dlerror());
    if (st == OCT_OK)
        st = run_loaded(ctx, lib, name, input_args, n_input_args, output_dir, repeat, timing);
    if (lib)
        dlclose(lib);
    return cli_finish(ctx, st);
}
