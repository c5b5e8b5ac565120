/*
 * runner.c: oct_runner, a model run in this process through the reference
 * interpreter or the JIT, split from compile.c.  The JIT behind
 * oct_runner_run keeps a symbolic leading (batch) dimension the graph is
 * proved to keep apart (codegen/batch.h) and loops the batch-1 body of
 * such a model over each run's batch.
 *
 * The JIT compiles for the inputs of the run at hand: their shapes (the
 * batch aside, as above), and the values of the geometry inputs
 * (ops_input_is_geometry: Reshape's shape, Slice's starts, Pad's pads,
 * Resize's scales, ...) and of the graph inputs those are computed from,
 * which become initializers of the compiled graph.  A later run with other
 * such values compiles again; one with other shapes is refused (as a
 * compiled .so would refuse it).
 */
#include <stdlib.h>
#include <string.h>

#include "api/compile.h"
#include "codegen/jit.h"
#include "passes/passes.h"
#include "ops/ops.h"
#include "ref/ref.h"

struct oct_runner {
    oct_ctx *ctx;
    const oct_model *source;
    const oct_compile_options *opts;   /* NULL: defaults */
    bool jit;
    const char *passes;                /* NULL: the default passes (+ qdq_fuse) */
    ir_model *prepared;                /* after the first run's binding */
    size_t n_given;                    /* inputs the preparation was given */
    ir_tensor **folded;                /* JIT: per given input, the value folded
                                          into the graph (arena), or NULL */
    cg_jit *j;
    void *scratch;
    size_t scratch_size;
    /* name set: the JIT module is the batch-1 body of a symbolic batch,
     * run at any batch through NAME_run_dims */
    cg_batch batch;
};

oct_status oct_runner_new(oct_ctx *ctx, const oct_model *m, const char *engine,
                          const oct_compile_options *o, oct_runner **out)
{
    if (!ctx || !m || !out)
        return OCT_EUSAGE;
    *out = NULL;
    bool jit;
    if (!engine || !strcmp(engine, "interp") || !strcmp(engine, "ref"))
        jit = false;
    else if (!strcmp(engine, "jit"))
        jit = true;
    else
        return oct_error(ctx, OCT_EUSAGE, "engine must be interp or jit, not '%s'", engine);
    /* ops Octet does not know: say so before any input is read (the JIT's
     * passes evaluate constant subgraphs with the interpreter too) */
    oct_status st = ops_report_unsupported(ctx, m->ir->graph);
    if (st)
        return st;
    oct_runner *r = ir_alloc(ctx, sizeof *r);
    if (!r)
        return OCT_EINTERNAL;
    r->ctx = ctx;
    r->source = m;
    r->opts = o;
    r->jit = jit;
    *out = r;
    return OCT_OK;
}

/* Whether the run-time inputs of g have known ranks and one symbolic
 * leading dimension, under one name wherever it appears (what
 * cg_batch_find accepts once the other dims are bound). */
static bool leading_symbolic(const ir_graph *g)
{
    const char *name = NULL;
    int n = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->init)
            continue;
        if (!v->has_type || v->type.rank < 0 || (v->type.rank && !v->type.dims))
            return false;
        if (v->type.rank < 1 || v->type.dims[0].value >= 0)
            continue;
        const char *p = v->type.dims[0].param;
        if (n++ && (!p || !name || strcmp(p, name)))
            return false;
        name = p;
    }
    return n > 0;
}

/* Tries the proof of batch separability on ir (its other dims bound) in a
 * context of its own, so a graph that fails it leaves no diagnostic: the
 * runner then binds the batch of the first run as before.  On success
 * r->batch describes the batch (in r's context). */
static oct_status runner_try_batch(oct_runner *r, const ir_model *ir, bool fuse)
{
    oct_ctx *ctx = r->ctx;
    memset(&r->batch, 0, sizeof r->batch);
    oct_ctx *tmp = oct_ctx_new();
    if (!tmp)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    *oct_ctx_limits(tmp) = *oct_ctx_limits(ctx);
    ir_model *copy, *body;
    cg_batch b;
    oct_status st = api_clone_ir(tmp, ir, &copy);
    if (!st)
        st = api_prepare_batch(tmp, copy, r->passes, fuse, &b, &body);
    if (!st && b.name) {
        r->batch.name = ir_strdup(ctx, b.name);
        r->batch.in_batched = ir_alloc_array(ctx, b.n_in + 1, sizeof *b.in_batched);
        r->batch.out_batched = ir_alloc_array(ctx, b.n_out + 1, sizeof *b.out_batched);
        if (!r->batch.name || !r->batch.in_batched || !r->batch.out_batched) {
            memset(&r->batch, 0, sizeof r->batch);
            oct_ctx_free(tmp);
            return OCT_EINTERNAL;
        }
        r->batch.n_in = b.n_in;
        r->batch.n_out = b.n_out;
        memcpy(r->batch.in_batched, b.in_batched, b.n_in * sizeof *b.in_batched);
        memcpy(r->batch.out_batched, b.out_batched, b.n_out * sizeof *b.out_batched);
    }
    bool oom = st == OCT_EINTERNAL;
    oct_ctx_free(tmp);
    return oom ? oct_error(ctx, OCT_EINTERNAL, "out of memory trying the batch loop") : OCT_OK;
}

/* Marks in need[] (indexed by value id) every value of g whose value a
 * geometry input depends on: the geometry inputs themselves, then
 * backwards through their producers, except through Shape and Size (their
 * outputs depend on shapes alone, which the JIT knows). */
static void mark_geometry_values(const ir_graph *g, bool *need)
{
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t k = g->n_nodes; k-- > 0;) {
            const ir_node *n = g->nodes[k];
            bool out_needed = false;
            if (n->op != IR_OP_SHAPE && n->op != IR_OP_SIZE)
                for (int o = 0; o < n->n_out; o++)
                    out_needed = out_needed || (n->out[o] && need[n->out[o]->id]);
            for (int i = 0; i < n->n_in; i++) {
                const ir_value *v = n->in[i];
                if (v && !need[v->id] && (out_needed || ops_input_is_geometry(n, i))) {
                    need[v->id] = true;
                    changed = true;
                }
            }
        }
    }
}

/* JIT: turns every graph input of g that geometry depends on, and whose
 * data the caller gave (in[k]->data), into an initializer holding a copy
 * of that data (no longer a graph input, so the compiled code does not
 * take it), and records the copy in r->folded[k].  An input given without
 * data stays an input: the lowering that needs it constant says so. */
static oct_status fold_geometry_inputs(oct_runner *r, ir_graph *g,
                                       const ir_tensor *const *in, size_t n_in)
{
    oct_ctx *ctx = r->ctx;
    bool *need = ir_alloc_array(ctx, g->n_values + 1, sizeof *need);
    r->folded = ir_alloc_array(ctx, n_in + 1, sizeof *r->folded);
    if (!need || !r->folded)
        return OCT_EINTERNAL;
    memset(need, 0, (g->n_values + 1) * sizeof *need);
    memset(r->folded, 0, (n_in + 1) * sizeof *r->folded);
    mark_geometry_values(g, need);
    size_t kept = 0, n_fold = 0;
    for (size_t i = 0, k = 0; i < g->n_inputs; i++) {
        ir_value *v = g->inputs[i];
        bool fold = false;
        if (!v->init) {
            const ir_tensor *t = k < n_in ? in[k] : NULL;
            fold = t && need[v->id] && (t->data || !t->nbytes) && t->dtype != IR_DT_STRING;
            if (fold) {
                ir_tensor *c = ir_tensor_new(ctx, t->dtype, t->rank, t->dims);
                if (!c)
                    return OCT_EINTERNAL;
                if (c->nbytes != t->nbytes)
                    return oct_error(ctx, OCT_EINPUT, "input '%s': %llu bytes given, its "
                                     "dtype and shape need %llu", v->name,
                                     (unsigned long long)t->nbytes,
                                     (unsigned long long)c->nbytes);
                if (c->nbytes)
                    memcpy(c->data, t->data, c->nbytes);
                c->name = v->name;
                v->init = c;
                r->folded[k] = c;
                n_fold++;
            }
            k++;
        }
        if (!fold)
            g->inputs[kept++] = v;
    }
    g->n_inputs = kept;
    if (!n_fold)
        return OCT_OK;
    ir_value **inits = ir_alloc_array(ctx, g->n_inits + n_fold + 1, sizeof *inits);
    if (!inits)
        return OCT_EINTERNAL;
    if (g->n_inits)
        memcpy(inits, g->inits, g->n_inits * sizeof *inits);
    for (size_t k = 0; k < n_in; k++)
        if (r->folded[k])
            inits[g->n_inits++] = ir_graph_find(g, r->folded[k]->name);
    g->inits = inits;
    g->cap_inits = g->n_inits + 1;
    return OCT_OK;
}

/* True if the given inputs hold the values folded into the prepared
 * graph (same dtype, shape and bytes). */
static bool folded_values_match(const oct_runner *r, const ir_tensor *const *in, size_t n_in)
{
    for (size_t k = 0; r->folded && k < r->n_given; k++) {
        const ir_tensor *c = r->folded[k];
        if (!c)
            continue;
        if (k >= n_in || in[k]->dtype != c->dtype || in[k]->rank != c->rank ||
            in[k]->nbytes != c->nbytes)
            return false;
        for (int d = 0; d < c->rank; d++)
            if (in[k]->dims[d] != c->dims[d])
                return false;
        if (c->nbytes && memcmp(in[k]->data, c->data, c->nbytes))
            return false;
    }
    return true;
}

/* Drops the preparation (graph in the arena, compiled code, scratch) so
 * that the next run prepares again. */
static void runner_unprepare(oct_runner *r)
{
    cg_jit_free(r->j);
    r->j = NULL;
    free(r->scratch);
    r->scratch = NULL;
    r->prepared = NULL;
    r->folded = NULL;
    r->n_given = 0;
    memset(&r->batch, 0, sizeof r->batch);
}

/* First run: copy the model, bind each input to the tensor given, run the
 * passes, and for the JIT fold the geometry inputs given with data and
 * compile it.  any_batch (the JIT behind oct_runner_run): a symbolic
 * leading dimension the graph keeps apart stays symbolic, the module is
 * the batch-1 body, and later runs may change the batch. */
static oct_status runner_prepare(oct_runner *r, const ir_tensor *const *in, size_t n_in,
                                 bool any_batch)
{
    oct_ctx *ctx = r->ctx;
    static const oct_compile_options defaults_storage;
    const oct_compile_options *o = r->opts ? r->opts : &defaults_storage;
    bool keep = (r->opts && r->opts->keep_qdq) || r->passes;
    ir_model *ir;
    oct_status st = api_clone_ir(ctx, r->source->ir, &ir);
    for (size_t i = 0; !st && i < o->n_shapes; i++)
        st = pass_bind_input_shape(ctx, ir->graph, o->shapes[i]);
    const ir_graph *g = ir ? ir->graph : NULL;
    bool try_batch = !st && r->jit && any_batch && leading_symbolic(g);
    for (size_t i = 0, k = 0; !st && i < g->n_inputs; i++) {
        ir_value *v = g->inputs[i];
        if (v->init)
            continue;
        if (k >= n_in)
            return oct_error(ctx, OCT_EUSAGE, "no tensor given for model input '%s'",
                             v->name);
        bool sym0 = try_batch && v->type.rank > 0 && v->type.dims[0].value < 0;
        const char *param = sym0 ? v->type.dims[0].param : NULL;
        st = pass_bind_input_type(ctx, v, in[k]->dtype, in[k]->rank, in[k]->dims);
        if (!st && sym0) { /* the batch stays symbolic for the proof */
            v->type.dims[0].value = -1;
            v->type.dims[0].param = param;
        }
        k++;
    }
    if (!st && r->jit)
        st = fold_geometry_inputs(r, ir->graph, in, n_in);
    if (!st && try_batch)
        st = runner_try_batch(r, ir, r->jit && !keep);
    if (!st && try_batch && r->batch.name) {
        ir_model *body;
        st = api_prepare_at_batch(ctx, ir, &r->batch, 1, r->passes, !keep, &body);
        ir = body;
    } else if (!st) {
        /* no batch loop: the first run's batch, as the other dims (the
         * inputs folded into the graph are no longer its inputs) */
        for (size_t i = 0, k = 0; try_batch && !st && i < g->n_inputs; i++) {
            ir_value *v = g->inputs[i];
            if (v->init)
                continue;
            while (r->folded && k < n_in && r->folded[k])
                k++;
            st = pass_bind_input_type(ctx, v, in[k]->dtype, in[k]->rank, in[k]->dims);
            k++;
        }
        if (!st)
            st = api_run_pipeline(ctx, ir, r->passes ? r->passes : "default");
        /* MatMulNBits compiles unpacked whatever the passes (mnb_unpack.c) */
        if (!st && r->jit)
            st = api_backend_passes(ctx, ir, !keep);
    }
    if (st)
        return st;
    if (r->jit) {
        cg_options cg = {.name = "octet_jit", .opt_level = 3,
                         .batch = r->batch.name ? &r->batch : NULL,
                         .kv_inplace = r->opts && r->opts->cg.kv_inplace};
        if (r->opts) {
            cg.bounds = r->opts->cg.bounds;
            cg.n_bounds = r->opts->cg.n_bounds;
        }
        if (r->opts)
            cg.opt_level = r->opts->cg.opt_level;
        if ((st = cg_jit_create(ctx, ir, &cg, &r->j)))
            return st;
        r->scratch_size = (size_t)cg_jit_scratch_size(r->j);
        r->scratch = aligned_alloc(64, (r->scratch_size + 63) / 64 * 64 + 64);
        if (!r->scratch)
            return oct_error(ctx, OCT_EINTERNAL, "out of memory for %zu bytes of scratch",
                             r->scratch_size);
    }
    r->prepared = ir;
    r->n_given = n_in;
    return OCT_OK;
}

oct_status oct_runner_set(oct_runner *r, const char *key, const char *value)
{
    if (!r || !key || !value)
        return OCT_EUSAGE;
    if (r->prepared)
        return oct_error(r->ctx, OCT_EUSAGE, "runner option '%s' set after the first run",
                         key);
    if (!strcmp(key, "passes")) {
        if (!(r->passes = ir_strdup(r->ctx, value)))
            return OCT_EINTERNAL;
        return OCT_OK;
    }
    return oct_error(r->ctx, OCT_EUSAGE, "unknown runner option '%s'", key);
}

oct_status oct_runner_prepare(oct_runner *r, const oct_tensor *inputs, size_t n_inputs)
{
    if (!r || (!inputs && n_inputs))
        return OCT_EUSAGE;
    if (r->prepared)
        return OCT_OK;
    oct_ctx *ctx = r->ctx;
    ir_tensor *views = ir_alloc_array(ctx, n_inputs + 1, sizeof *views);
    const ir_tensor **in = ir_alloc_array(ctx, n_inputs + 1, sizeof *in);
    if (!views || !in)
        return OCT_EINTERNAL;
    /* with data, a full view (the JIT folds geometry inputs); without, the
     * dtype and dims alone */
    for (size_t i = 0; i < n_inputs; i++) {
        oct_status st = OCT_OK;
        if (inputs[i].data)
            st = api_tensor_view(ctx, &inputs[i], "input", &views[i]);
        else {
            views[i].dtype = (ir_dtype)inputs[i].dtype;
            views[i].rank = inputs[i].rank;
            views[i].dims = (int64_t *)inputs[i].dims;
        }
        if (st)
            return st;
        in[i] = &views[i];
    }
    return runner_prepare(r, in, n_inputs, false);
}

oct_status oct_runner_entry_points(oct_runner *r, oct_entry_points *out)
{
    if (!r || !out)
        return OCT_EUSAGE;
    memset(out, 0, sizeof *out);
    if (!r->jit || !r->j)
        return oct_error(r->ctx, OCT_EUSAGE, "entry points: the runner is not a prepared "
                         "JIT");
    out->run = cg_jit_run(r->j);
    out->run_threads = cg_jit_run_threads(r->j);
    out->scratch_size = cg_jit_scratch_size(r->j);
    out->signature = cg_jit_signature(r->j);
    out->output_dims = cg_jit_output_dims(r->j);
    return OCT_OK;
}

/* One block per output: dims then data, from the context's allocator.
 * batch >= 0: axis 0 is the batch, of that size.  shape (NULL: v's type)
 * gives the dims, a data-dependent length at its bound. */
static oct_status alloc_output(oct_ctx *ctx, const ir_value *v, int64_t batch,
                               const int64_t *shape, oct_tensor *t)
{
    const ir_dtype_traits *tr = ir_dtype_info(v->type.dtype);
    uint64_t elems = 1;
    for (int d = 0; d < v->type.rank; d++) {
        int64_t n = shape ? shape[d] : v->type.dims[d].value;
        if (n < 0)
            return oct_error(ctx, OCT_EUNSUPPORTED, "output '%s' has a dimension the "
                             "compiled model does not fix", v->name);
        elems *= (uint64_t)(d == 0 && batch >= 0 ? batch : n);
    }
    uint64_t nbytes = (elems * tr->bits + 7) / 8;
    size_t dims_bytes = (size_t)v->type.rank * sizeof(int64_t);
    uint8_t *block = oct_malloc(ctx, dims_bytes + nbytes + 1);
    if (!block)
        return OCT_EINTERNAL;
    int64_t *dims = (int64_t *)block;
    for (int d = 0; d < v->type.rank; d++)
        dims[d] = d == 0 && batch >= 0 ? batch : shape ? shape[d] : v->type.dims[d].value;
    t->name = v->name;
    t->dtype = (int32_t)v->type.dtype;
    t->rank = v->type.rank;
    t->dims = dims;
    t->data = block + dims_bytes;
    t->nbytes = nbytes;
    return OCT_OK;
}

/* A data-dependent length: t (allocated at the bound) becomes a block of
 * the dims the run left (NAME_actual_dims), its leading bytes copied. */
static oct_status shrink_output(oct_ctx *ctx, cg_output_dims_fn odims, const void *scratch,
                                int k, oct_tensor *t)
{
    int64_t dims[OPS_MAX_RANK];
    if (odims(scratch, k, dims) != t->rank ||
        !memcmp(dims, t->dims, (size_t)t->rank * sizeof *dims))
        return OCT_OK;
    uint64_t elems = 1;
    for (int d = 0; d < t->rank; d++)
        elems *= (uint64_t)dims[d];
    uint64_t nbytes = (elems * oct_dtype_bits(t->dtype) + 7) / 8;
    size_t dims_bytes = (size_t)t->rank * sizeof(int64_t);
    uint8_t *block = oct_malloc(ctx, dims_bytes + nbytes + 1);
    if (!block)
        return OCT_EINTERNAL;
    memcpy(block, dims, dims_bytes);
    if (nbytes)
        memcpy(block + dims_bytes, t->data, nbytes);
    oct_free(ctx, (void *)t->dims, dims_bytes + t->nbytes + 1);
    t->dims = (int64_t *)block;
    t->data = block + dims_bytes;
    t->nbytes = nbytes;
    return OCT_OK;
}

static oct_status output_from_ir(oct_ctx *ctx, const ir_tensor *src, const char *name,
                                 oct_tensor *t)
{
    size_t dims_bytes = (size_t)src->rank * sizeof(int64_t);
    /* STRING: the {data, len} pairs (the bytes stay in the context) */
    uint64_t nbytes = src->dtype == IR_DT_STRING ? src->nelems * sizeof(ir_blob) : src->nbytes;
    uint8_t *block = oct_malloc(ctx, dims_bytes + nbytes + 1);
    if (!block)
        return OCT_EINTERNAL;
    memcpy(block, src->dims, dims_bytes);
    if (nbytes)
        memcpy(block + dims_bytes, src->data, nbytes);
    t->name = name;
    t->dtype = (int32_t)src->dtype;
    t->rank = src->rank;
    t->dims = (int64_t *)block;
    t->data = block + dims_bytes;
    t->nbytes = nbytes;
    return OCT_OK;
}

void oct_tensors_free(oct_ctx *ctx, oct_tensor *tensors, size_t n)
{
    if (!tensors)
        return;
    for (size_t i = 0; i < n; i++)
        if (tensors[i].dims || tensors[i].data)
            oct_free(ctx, tensors[i].rank ? (void *)tensors[i].dims
                                          : tensors[i].data,
                     (size_t)tensors[i].rank * sizeof(int64_t) + tensors[i].nbytes + 1);
    oct_free(ctx, tensors, (n ? n : 1) * sizeof *tensors);
}

oct_status oct_runner_run(oct_runner *r, const oct_tensor *inputs, size_t n_inputs,
                          oct_tensor **outputs, size_t *n_outputs)
{
    if (!r || (!inputs && n_inputs) || !outputs || !n_outputs)
        return OCT_EUSAGE;
    oct_ctx *ctx = r->ctx;
    *outputs = NULL;
    *n_outputs = 0;
    /* the inputs are read in place: views, no copy */
    ir_tensor **in = oct_malloc(ctx, (n_inputs + 1) * sizeof *in);
    ir_tensor *views = oct_malloc(ctx, (n_inputs + 1) * sizeof *views);
    if (!in || !views) {
        oct_free(ctx, in, (n_inputs + 1) * sizeof *in);
        oct_free(ctx, views, (n_inputs + 1) * sizeof *views);
        return OCT_EINTERNAL;
    }
    memset(in, 0, (n_inputs + 1) * sizeof *in);
    oct_status st = OCT_OK;
    /* a buffer not aligned to its element size is copied (the kernels load
     * whole elements); STRING elements are pointer pairs */
    bool *copied = oct_malloc(ctx, n_inputs + 1);
    if (!copied)
        st = OCT_EINTERNAL;
    else
        memset(copied, 0, n_inputs + 1);
    for (size_t i = 0; !st && i < n_inputs; i++) {
        st = api_tensor_view(ctx, &inputs[i], "input", &views[i]);
        in[i] = &views[i];
        copied[i] = false;
        unsigned bits = ir_dtype_info(views[i].dtype)->bits;
        uintptr_t align = views[i].dtype == IR_DT_STRING ? sizeof(void *)
                        : bits >= 64 ? 8 : bits >= 8 ? bits / 8 : 1;
        if (!st && ((uintptr_t)views[i].data % align) != 0) {
            st = api_tensor_from_view(ctx, &inputs[i], "input", &in[i]);
            copied[i] = !st;
        }
    }
    if (!st && r->prepared && r->jit &&
        !folded_values_match(r, (const ir_tensor *const *)in, n_inputs))
        runner_unprepare(r);
    if (!st && !r->prepared)
        st = runner_prepare(r, (const ir_tensor *const *)in, n_inputs, true);
    const ir_graph *g = r->prepared ? r->prepared->graph : NULL;
    size_t n_out = g ? g->n_outputs : 0;
    oct_tensor *outs = NULL;
    if (!st) {
        outs = oct_malloc(ctx, (n_out ? n_out : 1) * sizeof *outs);
        if (!outs)
            st = OCT_EINTERNAL;
        else
            memset(outs, 0, (n_out ? n_out : 1) * sizeof *outs);
    }
    if (!st && !r->jit) {
        ir_tensor **res = oct_malloc(ctx, (n_out + 1) * sizeof *res);
        if (!res)
            st = OCT_EINTERNAL;
        else {
            memset(res, 0, (n_out + 1) * sizeof *res);
            st = ref_run(ctx, r->prepared, (const ir_tensor *const *)in, n_inputs, res,
                         n_out, NULL);
            for (size_t k = 0; !st && k < n_out; k++)
                st = output_from_ir(ctx, res[k], g->outputs[k]->name, &outs[k]);
            for (size_t k = 0; k < n_out; k++)
                ir_heap_tensor_free(ctx, res[k]);
            oct_free(ctx, res, (n_out + 1) * sizeof *res);
        }
    } else if (!st) {
        /* the compiled function checks nothing: check against the shapes
         * the module was compiled for (with a batch loop, axis 0 of the
         * batched inputs is the batch: any, the same on each) */
        const cg_batch *bt = r->batch.name ? &r->batch : NULL;
        int64_t batch = -1;
        const void **in_ptrs = oct_malloc(ctx, (n_inputs + 1) * sizeof *in_ptrs);
        void **out_ptrs = oct_malloc(ctx, (n_out + 1) * sizeof *out_ptrs);
        if (!in_ptrs || !out_ptrs)
            st = OCT_EINTERNAL;
        /* k: the caller's input; j: the compiled function's (the inputs
         * folded into the graph skipped) */
        for (size_t i = 0, j = 0, k = 0; !st && i < g->n_inputs; i++) {
            const ir_value *v = g->inputs[i];
            if (v->init)
                continue;
            while (r->folded && k < r->n_given && r->folded[k])
                k++; /* folded into the compiled graph */
            if (k >= n_inputs)
                st = oct_error(ctx, OCT_EUSAGE, "no tensor given for model input '%s'",
                               v->name);
            bool batched = bt && j < bt->n_in && bt->in_batched[j];
            bool same = !st && in[k]->dtype == v->type.dtype && in[k]->rank == v->type.rank;
            for (int d = batched ? 1 : 0; same && d < v->type.rank; d++)
                same = in[k]->dims[d] == v->type.dims[d].value;
            if (same && batched) {
                same = batch < 0 || in[k]->dims[0] == batch;
                batch = in[k]->dims[0];
            }
            if (!st && !same)
                st = oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1, v->name,
                               "input '%s' differs in dtype or shape from the first "
                               "run's, which the model was compiled for%s", v->name,
                               bt ? " (the batch aside, the same on every input)" : "");
            if (!st)
                in_ptrs[j++] = in[k]->data;
            k++;
        }
        cg_output_dims_fn odims = st ? NULL : cg_jit_output_dims(r->j);
        for (size_t k = 0; !st && k < n_out; k++) {
            int64_t shape[OPS_MAX_RANK];
            bool bounded = odims && cg_jit_output_shape(r->j, k, shape) == g->outputs[k]->type.rank;
            st = alloc_output(ctx, g->outputs[k], bt && bt->out_batched[k] ? batch : -1,
                              bounded ? shape : NULL, &outs[k]);
            if (!st)
                out_ptrs[k] = outs[k].data;
        }
        /* in-place key/value caches: the compiled step reads the past in
         * the present buffers, so a run on fresh buffers puts it there */
        size_t n_kv = 0;
        const cg_kv_pair *kv = st ? NULL : cg_jit_kv(r->j, &n_kv);
        for (size_t k = 0; k < n_kv; k++) {
            const cg_kv_pair *p = &kv[k];
            size_t row = (size_t)p->head_dim * p->elem_bytes;
            for (int64_t h = 0; h < p->heads; h++)
                memcpy((char *)out_ptrs[p->output] + (size_t)(h * p->total) * row,
                       (const char *)in_ptrs[p->input] + (size_t)(h * p->past) * row,
                       (size_t)p->past * row);
        }
        int rc = st ? 0 : bt ? cg_jit_run_dims(r->j)(&batch, in_ptrs, out_ptrs, r->scratch)
                             : cg_jit_run(r->j)(in_ptrs, out_ptrs, r->scratch);
        if (rc == 2 && odims)
            st = oct_error(ctx, OCT_EINPUT, "the compiled model found a data-dependent "
                           "output length past its bound (--bound) and wrote no output");
        else if (rc == 2)
            st = oct_error(ctx, OCT_EINPUT, "the compiled model refused an input value (an "
                           "opset-8 Scan's sequence_lens entry outside [1, L])");
        else if (rc != 0)
            st = oct_error(ctx, OCT_EINTERNAL, "the compiled model reported a failure");
        for (size_t k = 0; !st && odims && k < n_out; k++)
            st = shrink_output(ctx, odims, r->scratch, (int)k, &outs[k]);
        oct_free(ctx, in_ptrs, (n_inputs + 1) * sizeof *in_ptrs);
        oct_free(ctx, out_ptrs, (n_out + 1) * sizeof *out_ptrs);
    }
    for (size_t i = 0; copied && i < n_inputs; i++)
        if (copied[i])
            ir_heap_tensor_free(ctx, in[i]);
    oct_free(ctx, copied, n_inputs + 1);
    oct_free(ctx, in, (n_inputs + 1) * sizeof *in);
    oct_free(ctx, views, (n_inputs + 1) * sizeof *views);
    if (st) {
        if (outs)
            oct_tensors_free(ctx, outs, n_out);
        return st;
    }
    *outputs = outs;
    *n_outputs = n_out;
    return OCT_OK;
}

void oct_runner_free(oct_runner *r)
{
    if (r)
        runner_unprepare(r);
}
