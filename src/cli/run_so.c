/*
 * run_so.c: `octet run OUT/NAME.so --input NAME=FILE ...`: runs a model
 * compiled by `octet compile --emit=so` through its signature.  dlopen()s
 * the library, reads NAME_signature (JSON: inputs and outputs with name,
 * dtype, shape, bytes; scratch size and alignment), checks every input
 * tensor against it, calls NAME_run and prints the same per-output summary
 * line as for ONNX models (optionally writing the outputs as .npy or .pb).
 * --each-sample, as for ONNX models, runs once per leading-axis slice of
 * the inputs that carry one more axis than the signature gives and stacks
 * the outputs the same way.  A signature with symbolic "dims" (a batch
 * compiled for run time) takes their values from the inputs' shapes and
 * calls NAME_run_dims (NAME_run_dims_threads on a pool) instead.  A
 * library compiled with --kv-cache=inplace gets each past input copied
 * into its present output once, before the runs and their timing
 * (fill_kv_caches).
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

/* dtype names of the signature (numpy's, or the IR's short name for types
 * numpy lacks) to ONNX dtype numbers (0: unknown) */
static int32_t dtype_of(const char *np)
{
    static const struct { const char *np; int32_t dt; } map[] = {
        {"float32", OCT_DT_FLOAT}, {"float64", OCT_DT_DOUBLE}, {"uint8", OCT_DT_UINT8},
        {"int8", OCT_DT_INT8}, {"uint16", OCT_DT_UINT16}, {"int16", OCT_DT_INT16},
        {"int32", OCT_DT_INT32}, {"uint32", OCT_DT_UINT32}, {"int64", OCT_DT_INT64},
        {"uint64", OCT_DT_UINT64}, {"bool", OCT_DT_BOOL}, {"float16", OCT_DT_FLOAT16},
        {"bf16", OCT_DT_BFLOAT16}, {"f8e4m3fn", OCT_DT_FLOAT8E4M3FN},
        {"f8e4m3fnuz", 18}, {"f8e5m2", OCT_DT_FLOAT8E5M2}, {"f8e5m2fnuz", 20},
        {"u4", 21}, {"i4", 22}, {"f4e2m1", 23}, {"f8e8m0", 24}, {"u2", 25}, {"i2", 26}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].np, np))
            return map[i].dt;
    return 0;
}

/* Symbolic dimensions a signature may name ("dims"). */
#define MAX_SYM_DIMS 8

/* One signature entry as a tensor description; false if malformed.  A
 * shape entry naming one of the signature's symbolic dims (syms) gives
 * sym[d] = its index there (-1 for a number) and dims[d] = -1. */
static bool io_spec(const cJSON *o, const cJSON *syms, const char **name, int32_t *dt,
                    int *rank, int64_t *dims, int *sym)
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
        sym[d] = -1;
        if (cJSON_IsString(v)) {
            for (int k = 0; k < cJSON_GetArraySize(syms) && k < MAX_SYM_DIMS; k++) {
                const cJSON *sd = cJSON_GetArrayItem(syms, k);
                if (cJSON_IsString(sd) && !strcmp(sd->valuestring, v->valuestring))
                    sym[d] = k;
            }
            if (sym[d] < 0)
                return false;
            dims[d] = -1;
            continue;
        }
        if (!cJSON_IsNumber(v) || v->valuedouble < 0)
            return false;
        dims[d] = (int64_t)v->valuedouble;
    }
    return *dt != 0;
}

/* Checks tensor t (whose axes start at `lead`) against the entry's dims:
 * fixed ones must be equal; symbolic ones take t's value (dimv[], -1 while
 * unset) and must agree with what another input gave. */
static oct_status match_dims(oct_ctx *ctx, const char *name, const oct_tensor *t, int lead,
                             int rank, const int64_t *dims, const int *sym, const cJSON *syms,
                             int64_t *dimv, bool *same)
{
    *same = true;
    for (int d = 0; *same && d < rank; d++) {
        int64_t got = t->dims[d + lead];
        if (sym[d] < 0) {
            *same = got == dims[d];
        } else if (dimv[sym[d]] < 0) {
            dimv[sym[d]] = got;
        } else if (dimv[sym[d]] != got) {
            return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, name, "input '%s' dim %d "
                                "gives '%s' = %lld, an earlier input %lld", name, d,
                                cJSON_GetArrayItem(syms, sym[d])->valuestring,
                                (long long)got, (long long)dimv[sym[d]]);
        }
    }
    return OCT_OK;
}

/* A library compiled with --kv-cache=inplace reads each past input in its
 * present output buffer (the cache a generation keeps): for one run on
 * fresh buffers, put the past there, slots [0, past) of every head, so the
 * outputs are the graph's.  Entries of "kv_cache" the checks of the
 * signature do not cover are ignored. */
static void fill_kv_caches(const cJSON *sig, const void *const *in_ptrs, void *const *out_ptrs,
                           int n_in, int n_out)
{
    const cJSON *kv = cJSON_GetObjectItem(sig, "kv_cache");
    const cJSON *ins = cJSON_GetObjectItem(sig, "inputs");
    for (int k = 0; k < cJSON_GetArraySize(kv); k++) {
        const cJSON *e = cJSON_GetArrayItem(kv, k);
        int i = cJSON_GetObjectItem(e, "input") ? cJSON_GetObjectItem(e, "input")->valueint : -1;
        int o = cJSON_GetObjectItem(e, "output") ? cJSON_GetObjectItem(e, "output")->valueint : -1;
        const cJSON *past = cJSON_GetObjectItem(e, "past"), *total = cJSON_GetObjectItem(e, "total");
        const cJSON *in = cJSON_GetArrayItem(ins, i);
        const cJSON *shape = cJSON_GetObjectItem(in, "shape"), *bytes = cJSON_GetObjectItem(in, "bytes");
        if (i < 0 || i >= n_in || o < 0 || o >= n_out || !cJSON_IsNumber(past) ||
            !cJSON_IsNumber(total) || !cJSON_IsNumber(bytes) || cJSON_GetArraySize(shape) != 4)
            continue;
        int64_t heads = (int64_t)cJSON_GetArrayItem(shape, 1)->valuedouble;
        int64_t p = (int64_t)past->valuedouble, t = (int64_t)total->valuedouble;
        if (heads <= 0 || p <= 0 || t < p)
            continue;
        size_t slot = (size_t)bytes->valuedouble / (size_t)(heads * p);
        for (int64_t h = 0; h < heads; h++)
            memcpy((char *)out_ptrs[o] + (size_t)(h * t) * slot,
                   (const char *)in_ptrs[i] + (size_t)(h * p) * slot, (size_t)p * slot);
    }
}

/* The inputs' and outputs' data of sample smp (--each-sample; 0 otherwise). */
static void sample_ptrs(const void **in_ptrs, void **out_ptrs, const void *const *in_base,
                        void *const *out_base, const uint64_t *in_step,
                        const uint64_t *out_step, int n_in, int n_out, int64_t smp)
{
    for (int k = 0; k < n_in; k++)
        in_ptrs[k] = (const uint8_t *)in_base[k] + (uint64_t)smp * in_step[k];
    for (int k = 0; k < n_out; k++)
        out_ptrs[k] = (uint8_t *)out_base[k] + (uint64_t)smp * out_step[k];
}

/* Output k, allocated at its bound, as the dims the run left
 * (NAME_actual_dims): the kernel wrote it compactly at that length. */
static oct_status actual_length(oct_ctx *ctx, const cli_compiled_run *r, const void *scratch,
                                int k, oct_tensor *t)
{
    int64_t dims[CLI_MAX_RANK];
    if (t->rank > CLI_MAX_RANK || r->output_dims(scratch, k, dims) != t->rank)
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "output %d: "
                            "NAME_actual_dims disagrees with the signature", k);
    for (int d = 0; d < t->rank; d++)
        if (dims[d] < 0 || dims[d] > t->dims[d])
            return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "output %d: "
                                "length %lld past the buffer", k, (long long)dims[d]);
    oct_tensor fit;
    oct_status st = oct_tensor_new(ctx, t->dtype, t->rank, dims, &fit);
    if (st != OCT_OK)
        return st;
    if (fit.nbytes)
        memcpy(fit.data, t->data, fit.nbytes);
    fit.name = t->name;
    oct_tensor_release(ctx, t);
    *t = fit;
    return OCT_OK;
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
    const cJSON *syms = cJSON_GetObjectItem(sig, "dims");
    int n_syms = cJSON_GetArraySize(syms);
    int64_t dimv[MAX_SYM_DIMS];
    for (int k = 0; k < MAX_SYM_DIMS; k++)
        dimv[k] = -1;
    int n_in = cJSON_GetArraySize(ins), n_out = cJSON_GetArraySize(outs);
    if (n_in < 0)
        n_in = 0;
    if (n_out < 0)
        n_out = 0;
    const void **in_ptrs = calloc((size_t)n_in + 1, sizeof *in_ptrs);
    void **out_ptrs = calloc((size_t)n_out + 1, sizeof *out_ptrs);
    /* where each input and output starts, and the bytes of one sample
     * (0: the same data for every sample) */
    const void **in_base = calloc((size_t)n_in + 1, sizeof *in_base);
    void **out_base = calloc((size_t)n_out + 1, sizeof *out_base);
    uint64_t *in_step = calloc((size_t)n_in + 1, sizeof *in_step);
    uint64_t *out_step = calloc((size_t)n_out + 1, sizeof *out_step);
    int64_t n_samples = -1;
    oct_tensor *out_t = calloc((size_t)n_out + 1, sizeof *out_t);
    const char **out_names = calloc((size_t)n_out + 1, sizeof *out_names);
    void *scratch = NULL;
    octrt_pool *pool = NULL;
    double *times = NULL;
    if (!cJSON_IsArray(ins) || !cJSON_IsArray(outs) || !cJSON_IsNumber(ss) ||
        (syms && (!cJSON_IsArray(syms) || n_syms > MAX_SYM_DIMS))) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed signature JSON");
        goto done;
    }
    if (n_syms > 0 && !r->run_dims) {
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "the signature has symbolic "
                          "dims but the library has no %s_run_dims", sym_base);
        goto done;
    }
    if (!in_ptrs || !out_ptrs || !out_t || !out_names || !in_base || !out_base || !in_step ||
        !out_step) {
        st = OCT_EINTERNAL;
        goto done;
    }
    for (int k = 0; k < n_in && st == OCT_OK; k++) {
        const char *name;
        int32_t dt;
        int rank, sym[CLI_MAX_RANK];
        int64_t dims[CLI_MAX_RANK];
        if (!io_spec(cJSON_GetArrayItem(ins, k), syms, &name, &dt, &rank, dims, sym)) {
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed signature JSON");
            break;
        }
        const oct_tensor *t;
        if ((st = r->get_input(r->input_user, ctx, name, &t)) != OCT_OK)
            break;
        /* --each-sample: an input with one more leading axis holds samples */
        int lead = r->each_sample && t->rank == rank + 1;
        bool same = t->dtype == dt && t->rank == rank + lead;
        if (same && (st = match_dims(ctx, name, t, lead, rank, dims, sym, syms, dimv,
                                     &same)) != OCT_OK)
            break;
        if (same && lead) {
            if (oct_dtype_bits(dt) % 8) {
                st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, name, "--each-sample: "
                                  "%s inputs cannot be split into samples", oct_dtype_name(dt));
                break;
            }
            if (n_samples >= 0 && n_samples != t->dims[0]) {
                st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, name, "--each-sample: input "
                                  "'%s' has %lld samples, another input %lld", name,
                                  (long long)t->dims[0], (long long)n_samples);
                break;
            }
            n_samples = t->dims[0];
            in_step[k] = t->dims[0] ? t->nbytes / (uint64_t)t->dims[0] : 0;
        }
        if (!same) {
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, name, "input '%s': the "
                              "compiled model takes %s of rank %d%s; the file "
                              "holds %s of rank %d or other dims", name, oct_dtype_name(dt),
                              rank, n_syms > 0 ? " (symbolic dims aside, fixed dims)"
                                                : " with fixed dims",
                              oct_dtype_name(t->dtype), t->rank);
            break;
        }
        in_base[k] = t->data;
    }
    for (int k = 0; k < n_syms && st == OCT_OK; k++)
        if (dimv[k] < 0)
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "no input gives symbolic "
                              "dimension '%s'", cJSON_GetArrayItem(syms, k)->valuestring);
    if (st == OCT_OK && r->each_sample && n_samples < 0)
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "--each-sample: no input "
                          "has one more leading axis than the model input it feeds");
    /* outputs: one per signature entry, stacked on a leading sample axis
     * with --each-sample */
    int lead = r->each_sample ? 1 : 0;
    for (int k = 0; k < n_out && st == OCT_OK; k++)
        if (cJSON_GetObjectItem(cJSON_GetArrayItem(outs, k), "length_axis") &&
            (lead || !r->output_dims))
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, "output %d has a "
                              "data-dependent length: %s", k, lead ? "--each-sample "
                              "cannot stack such outputs" : "the library has no "
                              "NAME_actual_dims");
    for (int k = 0; k < n_out && st == OCT_OK; k++) {
        int32_t dt;
        int rank, sym[CLI_MAX_RANK];
        int64_t dims[CLI_MAX_RANK + 1];
        if (!io_spec(cJSON_GetArrayItem(outs, k), syms, &out_names[k], &dt, &rank, dims + lead,
                     sym)) {
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed signature JSON");
            break;
        }
        for (int d = 0; d < rank; d++)
            if (sym[d] >= 0)
                dims[d + lead] = dimv[sym[d]];
        if (lead && oct_dtype_bits(dt) % 8) {
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, out_names[k],
                              "--each-sample: %s outputs cannot be stacked",
                              oct_dtype_name(dt));
            break;
        }
        if (lead)
            dims[0] = n_samples;
        if ((st = oct_tensor_new(ctx, dt, rank + lead, dims, &out_t[k])) != OCT_OK)
            break;
        out_t[k].name = out_names[k];
        out_base[k] = out_t[k].data;
        out_step[k] = lead && n_samples ? out_t[k].nbytes / (uint64_t)n_samples : 0;
    }
    if (st != OCT_OK)
        goto done;
    size_t scratch_size = n_syms > 0 && r->scratch_size_for
                              ? (size_t)r->scratch_size_for(dimv) : (size_t)ss->valuedouble;
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
    /* one run per sample (--each-sample), the whole of it `repeat` times */
    int64_t runs = r->each_sample ? n_samples : 1;
    /* the caches once, outside the timing: a run writes only the new
     * slots, so a repeat finds the past as the first run did (--time is
     * then the step a generation makes, without a copy of the cache) */
    for (int64_t smp = 0; smp < runs; smp++) {
        sample_ptrs(in_ptrs, out_ptrs, in_base, out_base, in_step, out_step, n_in, n_out, smp);
        fill_kv_caches(sig, in_ptrs, out_ptrs, n_in, n_out);
    }
    for (long i = 0; i < r->repeat; i++) {
        double t0 = cli_now_ms();
        for (int64_t smp = 0; smp < runs; smp++) {
            sample_ptrs(in_ptrs, out_ptrs, in_base, out_base, in_step, out_step, n_in, n_out,
                        smp);
            int rc;
            if (n_syms > 0)
                rc = pool && r->run_dims_threads
                         ? r->run_dims_threads(dimv, in_ptrs, out_ptrs, scratch, pool)
                         : r->run_dims(dimv, in_ptrs, out_ptrs, scratch);
            else
                rc = pool ? r->run_threads(in_ptrs, out_ptrs, scratch, pool)
                          : r->run(in_ptrs, out_ptrs, scratch);
            if (rc == 2 && r->output_dims) {
                st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "%s_run returned 2: "
                                  "a data-dependent output length is past its bound "
                                  "(--bound); no output was written", sym_base);
                goto done;
            }
            if (rc == 2) {
                st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "%s_run returned 2: "
                                  "an input value is one the model refuses (an opset-8 "
                                  "Scan's sequence_lens entry outside [1, L])", sym_base);
                goto done;
            }
            if (rc != 0) {
                st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINTERNAL, NULL, "%s_run returned %d",
                                  sym_base, rc);
                goto done;
            }
        }
        times[i] = cli_now_ms() - t0;
    }
    for (int k = 0; k < n_out && st == OCT_OK; k++)
        if (cJSON_GetObjectItem(cJSON_GetArrayItem(outs, k), "length_axis"))
            st = actual_length(ctx, r, scratch, k, &out_t[k]);
    if (st != OCT_OK)
        goto done;
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
    free(in_base);
    free(out_base);
    free(in_step);
    free(out_step);
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

/* NAME_sym of the library into buf; its address (NULL if absent). */
static void *sym_of(void *lib, const char *sym_base, const char *sym, char *buf, size_t size)
{
    snprintf(buf, size, "%s_%s", sym_base, sym);
    return dlsym(lib, buf);
}

oct_status cli_so_open(oct_ctx *ctx, const char *path, cli_so_lib *out)
{
    memset(out, 0, sizeof *out);
    /* NAME from OUT/NAME.so */
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(base);
    if (n < 4 || strcmp(base + n - 3, ".so"))
        return oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EUSAGE, NULL, "a library made by octet "
                            "compile is named NAME.so");
    /* the symbols' prefix as octet compile derived it from OUT/NAME */
    char *stem = strndup(base, n - 3);
    out->name = stem ? malloc(n) : NULL;
    if (out->name && !oct_compile_symbol_prefix(stem, out->name, n)) {
        free(out->name);
        out->name = NULL;
    }
    free(stem);
    /* dlopen needs a slash to not search the library path */
    char *full = malloc(strlen(path) + 3);
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (full)
        sprintf(full, "%s%s", slash ? "" : "./", path);
    oct_status st = out->name && full && dir ? OCT_OK : OCT_EINTERNAL;
    if (st == OCT_OK && !(out->lib = dlopen(full, RTLD_NOW | RTLD_LOCAL)))
        st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "cannot load the library: %s",
                          dlerror());
    char sym[512];
    const char *nm = out->name;
    if (st == OCT_OK) {
        out->signature = sym_of(out->lib, nm, "signature", sym, sizeof sym);
        *(void **)&out->run = sym_of(out->lib, nm, "run", sym, sizeof sym);
        if (!out->signature || !out->run)
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "%s_signature or %s_run "
                              "not found: not a library made by octet compile (its name "
                              "must be NAME.so)", nm, nm);
    }
    if (st == OCT_OK) {
        *(void **)&out->run_threads = sym_of(out->lib, nm, "run_threads", sym, sizeof sym);
        /* a symbolic dimension's entries (absent otherwise) */
        *(void **)&out->run_dims = sym_of(out->lib, nm, "run_dims", sym, sizeof sym);
        *(void **)&out->run_dims_threads = sym_of(out->lib, nm, "run_dims_threads", sym,
                                                  sizeof sym);
        *(void **)&out->scratch_size_for = sym_of(out->lib, nm, "scratch_size_for", sym,
                                                  sizeof sym);
        *(void **)&out->output_dims = sym_of(out->lib, nm, "actual_dims", sym, sizeof sym);
        st = load_weights(ctx, out->lib, dir, nm, out->signature, &out->weights);
    }
    if (st == OCT_OK) {
        cJSON *sig = cJSON_Parse(out->signature);
        const cJSON *ss = cJSON_GetObjectItem(sig, "scratch_size");
        if (cJSON_IsNumber(ss) && ss->valuedouble >= 0 && ss->valuedouble < 1e15)
            out->scratch_size = (uint64_t)ss->valuedouble;
        else
            st = oct_diag_add(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, "malformed signature "
                              "JSON (no scratch_size)");
        cJSON_Delete(sig);
    }
    free(full);
    free(dir);
    if (st != OCT_OK)
        cli_so_close(out);
    return st;
}

void cli_so_close(cli_so_lib *l)
{
    if (l->lib)
        dlclose(l->lib);
    free(l->weights);
    free(l->name);
    memset(l, 0, sizeof *l);
}

int cli_run_so(const char *path, const cli_so_run *opt)
{
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx) {
        fprintf(stderr, "octet: out of memory\n");
        return OCT_EINTERNAL;
    }
    oct_ctx_set_file(ctx, path);
    cli_so_lib lib;
    oct_status st = cli_so_open(ctx, path, &lib);
    if (st == OCT_OK) {
        file_inputs fi = {opt->inputs, opt->n_inputs, {0}, 0};
        cli_compiled_run r = {
            .sym_base = lib.name, .signature = lib.signature, .run = lib.run,
            .run_threads = lib.run_threads, .run_dims = lib.run_dims,
            .run_dims_threads = lib.run_dims_threads, .scratch_size_for = lib.scratch_size_for,
            .output_dims = lib.output_dims, .get_input = input_from_args, .input_user = &fi, .output_dir = opt->output_dir,
            .pb = opt->pb, .repeat = opt->repeat, .timing = opt->timing,
            .threads = opt->threads, .each_sample = opt->each_sample};
        st = cli_run_compiled(ctx, &r);
        for (size_t i = 0; i < fi.n_read; i++)
            free(fi.read[i]);
        cli_so_close(&lib);
    }
    return cli_finish(ctx, st);
}
