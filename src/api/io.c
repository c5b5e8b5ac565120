/*
 * io.c: files, tensors and diagnostics in the public API: tensor files
 * (.npy, .npz, TensorProto .pb), atomic writes, the inputs no output may
 * overwrite, the clean-up of temporary files on a fatal signal, merging
 * calibration statistics, and diagnostics recorded by the caller.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "frontend/frontend.h"
#include "ops/ops.h"
#include "ref/ref.h"

/* A public view of an ir_tensor (no copy: the view lives as long as t). */
static void view_of(const ir_tensor *t, oct_tensor *out)
{
    out->name = t->name;
    out->dtype = (int32_t)t->dtype;
    out->rank = t->rank;
    out->dims = t->dims;
    out->data = t->data;
    out->nbytes = t->nbytes;
}

oct_status oct_tensor_read(oct_ctx *ctx, const char *path, oct_tensor *out)
{
    if (!ctx || !path || !out)
        return OCT_EUSAGE;
    memset(out, 0, sizeof *out);
    ir_tensor *t;
    ir_note_input(ctx, path);
    oct_status st = fe_read_tensor(ctx, path, &t);
    if (!st)
        view_of(t, out);
    return st;
}

oct_status oct_tensor_read_npz(oct_ctx *ctx, const char *path, oct_tensor **out,
                               size_t *n)
{
    if (!ctx || !path || !out || !n)
        return OCT_EUSAGE;
    *out = NULL;
    *n = 0;
    ir_tensor **arrays;
    size_t count;
    ir_note_input(ctx, path);
    oct_status st = fe_read_npz(ctx, path, &arrays, &count);
    if (st)
        return st;
    oct_tensor *views = ir_alloc_array(ctx, count ? count : 1, sizeof *views);
    if (!views)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < count; i++)
        view_of(arrays[i], &views[i]);
    *out = views;
    *n = count;
    return OCT_OK;
}

oct_status oct_tensor_write(oct_ctx *ctx, const oct_tensor *t, const char *path)
{
    if (!ctx || !t || !path)
        return OCT_EUSAGE;
    ir_tensor it;
    oct_status st = api_tensor_view(ctx, t, "tensor", &it);
    if (st)
        return st;
    size_t len = strlen(path);
    bool pb = len >= 3 && !strcmp(path + len - 3, ".pb");
    return pb ? fe_write_pb(ctx, &it, path) : fe_write_npy(ctx, &it, path);
}

oct_status oct_tensor_new(oct_ctx *ctx, int32_t dtype, int32_t rank, const int64_t *dims,
                          oct_tensor *out)
{
    if (!ctx || !out || rank < 0 || (rank && !dims))
        return OCT_EUSAGE;
    memset(out, 0, sizeof *out);
    const ir_dtype_traits *tr = ir_dtype_info(dtype);
    if (!tr || !tr->bits)
        return oct_error(ctx, OCT_EUSAGE, "no tensor of dtype %d", (int)dtype);
    uint64_t elems = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 0 || __builtin_mul_overflow(elems, (uint64_t)dims[d], &elems))
            return oct_error(ctx, OCT_EINPUT, "bad tensor dimension %lld",
                             (long long)dims[d]);
    }
    if (elems > ctx->limits.max_tensor_elems)
        return oct_error(ctx, OCT_EINPUT, "%llu elements exceed the limit",
                         (unsigned long long)elems);
    uint64_t nbytes = (elems * tr->bits + 7) / 8;
    size_t dims_bytes = (size_t)rank * sizeof(int64_t);
    uint8_t *block = oct_malloc(ctx, dims_bytes + nbytes + 1);
    if (!block)
        return OCT_EINTERNAL;
    if (rank)
        memcpy(block, dims, dims_bytes);
    memset(block + dims_bytes, 0, nbytes);
    out->dtype = dtype;
    out->rank = rank;
    out->dims = (int64_t *)block;
    out->data = block + dims_bytes;
    out->nbytes = nbytes;
    return OCT_OK;
}

void oct_tensor_release(oct_ctx *ctx, oct_tensor *t)
{
    if (!t || (!t->dims && !t->data))
        return;
    oct_free(ctx, t->rank ? (void *)t->dims : t->data,
             (size_t)t->rank * sizeof(int64_t) + t->nbytes + 1);
    t->dims = NULL;
    t->data = NULL;
}

const char *oct_dtype_name(int32_t dtype)
{
    return ir_dtype_name((ir_dtype)dtype);
}

unsigned oct_dtype_bits(int32_t dtype)
{
    const ir_dtype_traits *tr = ir_dtype_info(dtype);
    return tr ? tr->bits : 0;
}

uint64_t oct_tensor_elems(const oct_tensor *t)
{
    uint64_t n = 1;
    for (int d = 0; d < t->rank; d++)
        n *= (uint64_t)(t->dims[d] < 0 ? 0 : t->dims[d]);
    return n;
}

double oct_tensor_element(const oct_tensor *t, uint64_t index)
{
    ir_tensor it = {0};
    it.dtype = (ir_dtype)t->dtype;
    it.rank = t->rank;
    it.dims = (int64_t *)t->dims;
    it.data = t->data;
    it.nelems = oct_tensor_elems(t);
    return index < it.nelems ? ops_get(&it, index) : 0.0;
}

oct_status oct_write_file(oct_ctx *ctx, const char *path, const void *data, size_t len)
{
    if (!ctx || !path || (!data && len))
        return OCT_EUSAGE;
    oct_status st = api_check_output_dir(ctx, path);
    return st ? st : ir_write_atomic(ctx, path, data, len);
}

void oct_note_input(oct_ctx *ctx, const char *path)
{
    if (ctx && path)
        ir_note_input(ctx, path);
}

void oct_remove_temp_files(void)
{
    ir_remove_temp_files();
}

void oct_ctx_set_file(oct_ctx *ctx, const char *path)
{
    if (ctx)
        ctx->cur_file = path ? ir_strdup(ctx, path) : NULL;
}

oct_status oct_diag_add(oct_ctx *ctx, oct_severity severity, oct_status status,
                        const char *tensor, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return oct_diagf(ctx, severity, status, NULL, 0, -1, tensor, "%s", msg);
}

oct_status oct_stats_merge(oct_ctx *ctx, const char *const *inputs, size_t n,
                           const char *out)
{
    if (!ctx || !inputs || !n || !out)
        return OCT_EUSAGE;
    for (size_t i = 0; i < n; i++)
        ir_note_input(ctx, inputs[i]);
    oct_status st = api_check_output_dir(ctx, out);
    return st ? st : quant_stats_merge(inputs, n, out, ctx);
}
