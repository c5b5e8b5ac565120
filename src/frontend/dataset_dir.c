/*
 * dataset_dir.c: folder data sets of TensorProto files (dataset.h), the
 * ONNX backend-test layout: either the folder holds input_N.pb files (one
 * sample) or it holds test_data_set_<number>/ subfolders, one sample each,
 * ordered by number (ties by name).  Entries of other names are ignored.
 *
 * Each .pb file is read and decoded in a scratch context freed right after
 * the sample is copied into ir_heap_tensor_new tensors: decoding allocates from
 * a context's arena, which would otherwise grow with every sample.  The
 * scratch context gets the caller's limits, and its diagnostics are copied
 * into the caller's context.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend/fe_formats.h"

/* One test_data_set_N folder. */
typedef struct dir_set {
    uint64_t number;
    const char *name;
} dir_set;

static int set_cmp(const void *pa, const void *pb)
{
    const dir_set *a = pa, *b = pb;
    if (a->number != b->number)
        return a->number < b->number ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* If `name` is prefix followed by decimal digits (and then `suffix`), sets
 * *number and returns true.  Numbers beyond 64 bits do not match. */
static bool numbered(const char *name, const char *prefix, const char *suffix,
                     uint64_t *number)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(name);
    if (n <= pl + sl || strncmp(name, prefix, pl) != 0 ||
        strcmp(name + n - sl, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = pl; i < n - sl; i++) {
        if (name[i] < '0' || name[i] > '9' || ir_mul_overflow_u64(v, 10, &v) ||
            ir_add_overflow_u64(v, (uint64_t)(name[i] - '0'), &v))
            return false;
    }
    *number = v;
    return true;
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Checks that folder `dir` holds input_0.pb .. input_{n-1}.pb and no
 * input_n.pb, and registers them as inputs. */
static oct_status check_set(oct_ctx *ctx, const char *dir, size_t n)
{
    for (size_t i = 0; i <= n; i++) {
        char *file = ir_sprintf(ctx, "%s/input_%zu.pb", dir, i);
        if (!file)
            return OCT_EINTERNAL;
        bool there = is_file(file);
        if (i < n && !there)
            return oct_error(ctx, OCT_EINPUT,
                             "'%s' is missing: the model has %zu input%s",
                             file, n, n == 1 ? "" : "s");
        if (i == n && there)
            return oct_error(ctx, OCT_EINPUT,
                             "'%s' has no model input to feed: the model has "
                             "%zu input%s", file, n, n == 1 ? "" : "s");
        if (there)
            ir_note_input(ctx, file);
    }
    return OCT_OK;
}

oct_status fe_dataset_folder_open(oct_ctx *ctx, const char *path,
                                  const ir_value *const *inputs,
                                  size_t n_inputs, uint64_t max_samples,
                                  const char ***dirs, size_t *count)
{
    DIR *d = opendir(path);
    if (!d)
        return oct_error(ctx, OCT_EINPUT, "cannot list the folder: %s",
                         strerror(errno));
    size_t n_sets = 0, cap = 0;
    dir_set *sets = NULL;
    bool direct = false;
    oct_status st = OCT_OK;
    struct dirent *e;
    while (st == OCT_OK && (e = readdir(d)) != NULL) {
        uint64_t num;
        if (numbered(e->d_name, "input_", ".pb", &num)) {
            direct = true;
        } else if (numbered(e->d_name, "test_data_set_", "", &num)) {
            char *sub = ir_sprintf(ctx, "%s/%s", path, e->d_name);
            struct stat sb;
            if (!sub) {
                st = OCT_EINTERNAL;
            } else if (stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                if (n_sets == cap) {
                    size_t ncap = cap ? 2 * cap : 16;
                    dir_set *grown = oct_realloc(ctx, sets, cap * sizeof *sets,
                                                 ncap * sizeof *sets);
                    if (!grown) {
                        st = OCT_EINTERNAL;
                        break;
                    }
                    sets = grown;
                    cap = ncap;
                }
                sets[n_sets].number = num;
                sets[n_sets].name = sub;
                n_sets++;
            }
        }
    }
    closedir(d);
    const char **list = NULL;
    size_t n = 0;
    if (st == OCT_OK && n_sets) {
        qsort(sets, n_sets, sizeof *sets, set_cmp);
        n = max_samples && max_samples < n_sets ? (size_t)max_samples : n_sets;
        list = ir_alloc_array(ctx, n, sizeof *list);
        if (!list)
            st = OCT_EINTERNAL;
        for (size_t i = 0; st == OCT_OK && i < n; i++) {
            list[i] = sets[i].name;
            st = check_set(ctx, list[i], n_inputs);
        }
    } else if (st == OCT_OK && direct) {
        n = 1;
        list = ir_alloc_array(ctx, 1, sizeof *list);
        if (!list)
            st = OCT_EINTERNAL;
        else
            list[0] = path;
        if (st == OCT_OK)
            st = check_set(ctx, path, n_inputs);
    } else if (st == OCT_OK) {
        st = oct_error(ctx, OCT_EINPUT,
                       "the folder holds neither input_N.pb files nor "
                       "test_data_set_N folders");
    }
    oct_free(ctx, sets, cap * sizeof *sets);
    if (st != OCT_OK)
        return st;
    /* Decode the first sample now, so a bad layout fails before any run. */
    ir_tensor **first = oct_malloc(ctx, n_inputs * sizeof *first);
    if (!first)
        return OCT_EINTERNAL;
    st = fe_dataset_folder_get(ctx, list[0], inputs, n_inputs, first);
    for (size_t i = 0; st == OCT_OK && i < n_inputs; i++)
        ir_heap_tensor_free(ctx, first[i]);
    oct_free(ctx, first, n_inputs * sizeof *first);
    if (st != OCT_OK)
        return st;
    *dirs = list;
    *count = n;
    return OCT_OK;
}

/* Copies the scratch context's diagnostics into ctx. */
static void forward_diags(oct_ctx *ctx, const oct_ctx *scratch)
{
    const char *saved = ctx->cur_file;
    for (size_t i = 0; i < oct_diag_count(scratch); i++) {
        const oct_diag *d = oct_diag_get(scratch, i);
        ctx->cur_file = d->file ? ir_strdup(ctx, d->file) : saved;
        oct_diagf(ctx, d->severity, d->status, NULL, d->io_is_output,
                  d->io_index, d->tensor, "%s",
                  d->message ? d->message : "");
    }
    ctx->cur_file = saved;
}

/* Reads file input_<i>.pb of `dir` (decoded in scratch), finds the model
 * input it feeds (its TensorProto name, or else the i-th input), checks it
 * and copies it into out[slot]. */
static oct_status read_one(oct_ctx *ctx, oct_ctx *scratch, const char *dir,
                           size_t i, const ir_value *const *inputs,
                           size_t n_inputs, ir_tensor **out)
{
    char file[4096];
    if ((size_t)snprintf(file, sizeof file, "%s/input_%zu.pb", dir, i) >=
        sizeof file)
        return oct_error(ctx, OCT_EINPUT, "path too long in '%s'", dir);
    uint8_t *data = NULL;
    size_t len = 0;
    ir_tensor *t = NULL;
    oct_status st = ir_read_file(scratch, file, scratch->limits.max_file_bytes,
                                 &data, &len);
    if (st == OCT_OK) {
        st = fe_tensor_from_pb(scratch, data, len, file, &t);
        oct_free(scratch, data, len ? len : 1);
    }
    if (st != OCT_OK)
        return st;
    size_t slot = i;
    for (size_t k = 0; k < n_inputs; k++)
        if (t->name && strcmp(t->name, inputs[k]->name) == 0)
            slot = k;
    const char *saved = ctx->cur_file;
    ctx->cur_file = file;
    if (out[slot])
        st = oct_error(ctx, OCT_EINPUT,
                       "tensor '%s' feeds model input '%s', which another "
                       "input_N.pb of this folder already feeds",
                       t->name ? t->name : "", inputs[slot]->name);
    if (st == OCT_OK)
        st = fe_dataset_check_sample(ctx, inputs[slot], "this TensorProto",
                                     t->dtype, t->rank, t->dims);
    ir_tensor *copy = NULL;
    if (st == OCT_OK && t->rank > IR_HEAP_MAX_RANK)
        st = oct_error(ctx, OCT_EINTERNAL, "rank above IR_HEAP_MAX_RANK");
    if (st == OCT_OK &&
        !(copy = ir_heap_tensor_new(ctx, t->dtype, t->rank, t->dims)))
        st = OCT_EINTERNAL;
    if (st == OCT_OK && copy->nbytes != t->nbytes) {
        st = oct_error(ctx, OCT_EINTERNAL, "tensor byte sizes disagree");
        ir_heap_tensor_free(ctx, copy);
    }
    ctx->cur_file = saved;
    if (st != OCT_OK)
        return st;
    if (copy->nbytes)
        memcpy(copy->data, t->data, (size_t)copy->nbytes);
    copy->name = inputs[slot]->name;
    out[slot] = copy;
    return OCT_OK;
}

oct_status fe_dataset_folder_get(oct_ctx *ctx, const char *dir,
                                 const ir_value *const *inputs,
                                 size_t n_inputs, ir_tensor **out)
{
    for (size_t k = 0; k < n_inputs; k++)
        out[k] = NULL;
    oct_status st = OCT_OK;
    for (size_t i = 0; i < n_inputs && st == OCT_OK; i++) {
        /* A fresh scratch context per file, so decoding never accumulates. */
        oct_ctx *scratch = ir_ctx_new();
        if (!scratch)
            return oct_error(ctx, OCT_EINTERNAL, "out of memory");
        scratch->limits = ctx->limits;
        st = read_one(ctx, scratch, dir, i, inputs, n_inputs, out);
        forward_diags(ctx, scratch);
        oct_ctx_free(scratch);
    }
    if (st != OCT_OK)
        for (size_t k = 0; k < n_inputs; k++) {
            ir_heap_tensor_free(ctx, out[k]);
            out[k] = NULL;
        }
    return st;
}
