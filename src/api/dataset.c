/*
 * dataset.c: the public data sets of octet.h (a folder or file of samples
 * opened for a model, as oct_samples for oct_quantize), split from
 * quantize.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "frontend/dataset.h"
#include "frontend/frontend.h"

struct oct_dataset {
    oct_ctx *ctx;
    fe_dataset *ds;
    const ir_model *model;
    size_t n_inputs;
    ir_tensor **held;       /* the last sample's tensors, freed on the next */
    const char *path;
};

oct_status oct_dataset_open(oct_ctx *ctx, const char *path, const oct_model *m,
                            uint64_t max_samples, oct_dataset **out)
{
    if (!ctx || !path || !m || !out)
        return OCT_EUSAGE;
    *out = NULL;
    oct_dataset *d = ir_alloc(ctx, sizeof *d);
    if (!d)
        return OCT_EINTERNAL;
    d->ctx = ctx;
    if (!(d->path = ir_strdup(ctx, path)))
        return OCT_EINTERNAL;
    /* the reader keeps the model for the inputs' declarations: a copy, so
     * passes run on m meanwhile cannot change them under it */
    ir_model *copy;
    oct_status st = api_clone_ir(ctx, m->ir, &copy);
    if (st)
        return st;
    d->model = copy;
    ir_note_input(ctx, path);
    st = fe_dataset_open(ctx, path, copy, max_samples, &d->ds);
    if (st)
        return st;
    d->n_inputs = fe_dataset_n_inputs(d->ds);
    d->held = ir_alloc_array(ctx, d->n_inputs + 1, sizeof *d->held);
    if (!d->held) {
        fe_dataset_close(d->ds);
        return OCT_EINTERNAL;
    }
    *out = d;
    return OCT_OK;
}

static void dataset_release(oct_dataset *d)
{
    for (size_t i = 0; i < d->n_inputs; i++) {
        ir_heap_tensor_free(d->ctx, d->held[i]);
        d->held[i] = NULL;
    }
}

static oct_status dataset_get(void *user, size_t index, oct_tensor *inputs, size_t n_inputs)
{
    oct_dataset *d = user;
    dataset_release(d);
    if (n_inputs != d->n_inputs)
        return oct_error(d->ctx, OCT_EUSAGE, "data set has %zu inputs, %zu asked for",
                         d->n_inputs, n_inputs);
    oct_status st = fe_dataset_get(d->ds, index, d->held);
    for (size_t i = 0; !st && i < n_inputs; i++) {
        const ir_tensor *t = d->held[i];
        inputs[i].dtype = (int32_t)t->dtype;
        inputs[i].rank = t->rank;
        inputs[i].dims = t->dims;
        inputs[i].data = t->data;
        inputs[i].nbytes = t->nbytes;
    }
    return st;
}

oct_samples oct_dataset_samples(oct_dataset *ds)
{
    oct_samples s = {0};
    if (!ds)
        return s;
    s.count = fe_dataset_count(ds->ds);
    s.get = dataset_get;
    s.user = ds;
    s.name = ds->path;
    return s;
}

void oct_dataset_close(oct_dataset *ds)
{
    if (!ds)
        return;
    dataset_release(ds);
    fe_dataset_close(ds->ds);
}
