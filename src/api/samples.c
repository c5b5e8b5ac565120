/*
 * samples.c: public tensors and calibration samples as the library reads
 * them, split from quantize.c: a view of an oct_tensor checked against its
 * dtype, dims and byte count (api_tensor_view, for the runner and the
 * samples), a heap copy of one (api_tensor_from_view), and the adapter
 * that pulls oct_samples through their callback as the quantizer's
 * quant_samples (api_samples_init).
 */
#include <stddef.h>
#include <string.h>

#include "api/api.h"

oct_status api_tensor_view(oct_ctx *ctx, const oct_tensor *v, const char *what,
                           ir_tensor *t)
{
    memset(t, 0, sizeof *t);
    const char *name = v->name ? v->name : "?";
    const ir_dtype_traits *tr = ir_dtype_info(v->dtype);
    bool strings = v->dtype == IR_DT_STRING;
    if (!tr || (!tr->bits && !strings))
        return oct_error(ctx, OCT_EINPUT, "%s '%s': unsupported dtype %d", what, name,
                         (int)v->dtype);
    if (v->rank < 0 || (v->rank > 0 && !v->dims))
        return oct_error(ctx, OCT_EINPUT, "%s '%s': no shape given", what, name);
    uint64_t elems = 1;
    for (int d = 0; d < v->rank; d++) {
        if (v->dims[d] < 0)
            return oct_error(ctx, OCT_EINPUT, "%s '%s': dimension %d is %lld; a "
                             "symbolic dimension needs its actual size", what, name, d,
                             (long long)v->dims[d]);
        if (__builtin_mul_overflow(elems, (uint64_t)v->dims[d], &elems))
            return oct_error(ctx, OCT_EINPUT, "%s '%s': too many elements", what, name);
    }
    if (elems > ctx->limits.max_tensor_elems)
        return oct_error(ctx, OCT_EINPUT, "%s '%s': %llu elements exceed the limit",
                         what, name, (unsigned long long)elems);
    /* STRING elements are oct_string {data, len} pairs */
    uint64_t need = strings ? elems * sizeof(oct_string) : (elems * tr->bits + 7) / 8;
    if (!v->data && need)
        return oct_error(ctx, OCT_EINPUT, "%s '%s': no data", what, name);
    if (v->nbytes && v->nbytes != need)
        return oct_error(ctx, OCT_EINPUT, "%s '%s': %llu bytes given, its dtype and "
                         "shape need %llu", what, name, (unsigned long long)v->nbytes,
                         (unsigned long long)need);
    t->name = v->name;
    t->dtype = (ir_dtype)v->dtype;
    t->rank = v->rank;
    t->dims = (int64_t *)v->dims;
    t->data = v->data;
    t->nelems = elems;
    t->nbytes = need;
    return OCT_OK;
}

oct_status api_tensor_from_view(oct_ctx *ctx, const oct_tensor *v, const char *what,
                                ir_tensor **out)
{
    *out = NULL;
    ir_tensor view;
    oct_status st = api_tensor_view(ctx, v, what, &view);
    if (st)
        return st;
    if (view.dtype == IR_DT_STRING)
        return oct_error(ctx, OCT_EUNSUPPORTED, "%s '%s': STRING calibration data",
                         what, v->name ? v->name : "?");
    ir_tensor *t = ir_heap_tensor_new(ctx, view.dtype, view.rank, view.dims);
    if (!t)
        return OCT_EINTERNAL;
    OCT_ASSERT(t->nbytes == view.nbytes);
    if (view.nbytes)
        memcpy(t->data, view.data, view.nbytes);
    *out = t;
    return OCT_OK;
}

/* The public string element and the IR's are one layout. */
_Static_assert(sizeof(oct_string) == sizeof(ir_blob) &&
               offsetof(oct_string, len) == offsetof(ir_blob, len),
               "oct_string matches ir_blob");

static oct_status adapter_get(void *user, size_t index, ir_tensor **inputs, oct_ctx *ctx)
{
    api_samples *a = user;
    const ir_graph *g = a->model->graph;
    for (size_t i = 0, k = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->init)
            continue;
        oct_tensor *t = &a->views[k++];
        memset(t, 0, sizeof *t);
        t->name = v->name;
        t->dtype = (int32_t)v->type.dtype;
        t->rank = v->type.rank;
        int64_t *dims = NULL;
        if (v->type.rank > 0) {
            dims = ir_alloc_array(ctx, (size_t)v->type.rank, sizeof *dims);
            if (!dims)
                return OCT_EINTERNAL;
            for (int d = 0; d < v->type.rank; d++)
                dims[d] = v->type.dims[d].value;
        }
        t->dims = dims;
    }
    oct_status st = a->pub->get(a->pub->user, index, a->views, a->n_inputs);
    if (st)
        return oct_error(ctx, st, "sample %zu: the sample callback failed (status %d)",
                         index, (int)st);
    for (size_t k = 0; k < a->n_inputs; k++) {
        st = api_tensor_from_view(ctx, &a->views[k], "calibration input", &inputs[k]);
        if (st)
            return st;
    }
    return OCT_OK;
}

oct_status api_samples_init(oct_ctx *ctx, api_samples *a, const oct_samples *pub,
                            const ir_model *m, quant_samples *out)
{
    memset(a, 0, sizeof *a);
    memset(out, 0, sizeof *out);
    if (!pub)
        return OCT_OK;
    if (pub->count && !pub->get)
        return oct_error(ctx, OCT_EUSAGE, "samples: count %zu but no get callback",
                         pub->count);
    a->pub = pub;
    a->model = m;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        a->n_inputs += !m->graph->inputs[i]->init;
    a->views = ir_alloc_array(ctx, a->n_inputs + 1, sizeof *a->views);
    if (!a->views)
        return OCT_EINTERNAL;
    out->n = pub->count;
    out->get = adapter_get;
    out->user = a;
    out->name = pub->name ? pub->name : "calibration samples";
    return OCT_OK;
}
