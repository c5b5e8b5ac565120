/*
 * clone.c: ir_model_clone, a deep copy of a model into a context without
 * going through the ONNX wire format: graph, values (types, shapes,
 * symbolic dims), nodes, attributes, initializer data, the serialized
 * pieces the IR keeps as bytes (subgraphs, functions, training info,
 * unknown wire fields), the model's metadata and its quant lines.  Value
 * ids and node ids are kept, so an id taken in the original names the same
 * value or node in the copy.  Everything lives in the destination
 * context's arena; the copy shares no memory with the original.
 */
#include <string.h>

#include "ir/ir.h"

typedef struct clone_state {
    oct_ctx *ctx;
    const ir_graph *src;
    ir_graph *dst;
    bool failed;
} clone_state;

/* Arena copy of a string; NULL stays NULL. */
static const char *str(clone_state *cs, const char *s)
{
    if (!s)
        return NULL;
    char *d = ir_strdup(cs->ctx, s);
    cs->failed |= !d;
    return d;
}

/* Arena copy of n bytes (NULL when n is 0 and p is NULL). */
static void *bytes(clone_state *cs, const void *p, size_t n)
{
    if (!p)
        return NULL;
    void *d = ir_alloc(cs->ctx, n ? n : 1);
    if (!d) {
        cs->failed = true;
        return NULL;
    }
    if (n)
        memcpy(d, p, n);
    return d;
}

static ir_blob blob(clone_state *cs, ir_blob b)
{
    return (ir_blob){.data = bytes(cs, b.data, b.len), .len = b.len};
}

static ir_blob *blobs(clone_state *cs, const ir_blob *b, size_t n)
{
    if (!b)
        return NULL;
    ir_blob *d = ir_alloc_array(cs->ctx, n ? n : 1, sizeof *d);
    if (!d) {
        cs->failed = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = blob(cs, b[i]);
    return d;
}

static ir_extra extra(clone_state *cs, ir_extra e)
{
    ir_extra d = {.n = e.n};
    if (!e.fields)
        return d;
    d.fields = ir_alloc_array(cs->ctx, e.n ? e.n : 1, sizeof *d.fields);
    if (!d.fields) {
        cs->failed = true;
        return d;
    }
    for (size_t i = 0; i < e.n; i++) {
        d.fields[i] = e.fields[i];
        d.fields[i].data = bytes(cs, e.fields[i].data, e.fields[i].len);
    }
    return d;
}

static ir_tensor *tensor(clone_state *cs, const ir_tensor *t)
{
    if (!t)
        return NULL;
    ir_tensor *d = ir_alloc(cs->ctx, sizeof *d);
    if (!d) {
        cs->failed = true;
        return NULL;
    }
    *d = *t;
    d->name = str(cs, t->name);
    d->doc = str(cs, t->doc);
    d->dims = bytes(cs, t->dims, (size_t)(t->rank > 0 ? t->rank : 0) * sizeof *t->dims);
    d->extra = extra(cs, t->extra);
    if (t->dtype == IR_DT_STRING && t->data) {
        /* nelems blobs, each pointing at its own bytes */
        d->data = blobs(cs, t->data, (size_t)t->nelems);
    } else {
        d->data = bytes(cs, t->data, (size_t)t->nbytes);
    }
    return d;
}

static ir_tensor **tensors(clone_state *cs, ir_tensor *const *t, size_t n)
{
    if (!t)
        return NULL;
    ir_tensor **d = ir_alloc_array(cs->ctx, n ? n : 1, sizeof *d);
    if (!d) {
        cs->failed = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = tensor(cs, t[i]);
    return d;
}

static void type(clone_state *cs, ir_type *d, const ir_type *s)
{
    *d = *s;
    d->denotation = str(cs, s->denotation);
    d->opaque = blob(cs, s->opaque);
    if (s->dims && s->rank > 0) {
        d->dims = ir_alloc_array(cs->ctx, (size_t)s->rank, sizeof *d->dims);
        if (!d->dims) {
            cs->failed = true;
            return;
        }
        for (int i = 0; i < s->rank; i++) {
            d->dims[i] = s->dims[i];
            d->dims[i].param = str(cs, s->dims[i].param);
            d->dims[i].denotation = str(cs, s->dims[i].denotation);
        }
    }
}

/* The copy of value v of the source graph (same id), or NULL for NULL. */
static ir_value *value_of(clone_state *cs, const ir_value *v)
{
    if (!v)
        return NULL;
    OCT_ASSERT(v->id < cs->dst->n_values);
    return cs->dst->values[v->id];
}

static ir_value **value_list(clone_state *cs, ir_value *const *list, size_t n)
{
    if (!list)
        return NULL;
    ir_value **d = ir_alloc_array(cs->ctx, n ? n : 1, sizeof *d);
    if (!d) {
        cs->failed = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = value_of(cs, list[i]);
    return d;
}

static ir_graph *graph(clone_state *cs, const ir_graph *s);

/* A subgraph attribute's graph, cloned with the outer graph's clone state
 * set aside (value_of maps ids of the graph being cloned). */
static ir_graph *subgraph(clone_state *cs, const ir_graph *s)
{
    if (!s)
        return NULL;
    const ir_graph *src = cs->src;
    ir_graph *dst = cs->dst;
    ir_graph *d = graph(cs, s);
    cs->src = src;
    cs->dst = dst;
    return d;
}

static void attr(clone_state *cs, ir_attr *d, const ir_attr *s)
{
    *d = *s;
    d->name = str(cs, s->name);
    d->s = blob(cs, s->s);
    d->t = tensor(cs, s->t);
    d->g = blob(cs, s->g);
    d->floats = bytes(cs, s->floats, s->n * sizeof *s->floats);
    d->ints = bytes(cs, s->ints, s->n * sizeof *s->ints);
    d->strings = blobs(cs, s->strings, s->n);
    d->tensors = tensors(cs, s->tensors, s->n);
    d->blobs = blobs(cs, s->blobs, s->n);
    d->graph = subgraph(cs, s->graph);
    d->graphs = NULL;
    if (s->graphs) {
        d->graphs = ir_alloc_array(cs->ctx, s->n + 1, sizeof *d->graphs);
        cs->failed |= !d->graphs;
        for (size_t i = 0; d->graphs && i < s->n; i++)
            d->graphs[i] = subgraph(cs, s->graphs[i]);
    }
    d->ref_attr_name = str(cs, s->ref_attr_name);
    d->doc = str(cs, s->doc);
    d->extra = extra(cs, s->extra);
}

static ir_node *node(clone_state *cs, const ir_node *s)
{
    ir_node *d = ir_alloc(cs->ctx, sizeof *d);
    if (!d) {
        cs->failed = true;
        return NULL;
    }
    *d = *s;
    d->op_type = str(cs, s->op_type);
    d->domain = str(cs, s->domain);
    d->name = str(cs, s->name);
    d->doc = str(cs, s->doc);
    d->in = value_list(cs, s->in, (size_t)s->n_in);
    d->out = value_list(cs, s->out, (size_t)s->n_out);
    d->extra = extra(cs, s->extra);
    d->attrs = NULL;
    if (s->attrs) {
        d->attrs = ir_alloc_array(cs->ctx, s->n_attr > 0 ? (size_t)s->n_attr : 1,
                                  sizeof *d->attrs);
        if (!d->attrs) {
            cs->failed = true;
            return d;
        }
        for (int a = 0; a < s->n_attr; a++)
            attr(cs, &d->attrs[a], &s->attrs[a]);
    }
    return d;
}

static ir_graph *graph(clone_state *cs, const ir_graph *s)
{
    ir_graph *d = ir_graph_new(cs->ctx);
    if (!d) {
        cs->failed = true;
        return NULL;
    }
    cs->src = s;
    cs->dst = d;
    d->name = str(cs, s->name);
    d->doc = str(cs, s->doc);
    d->extra = extra(cs, s->extra);
    /* Values first, in id order: names are unique, so each new value gets
     * the id of its original. */
    for (size_t i = 0; i < s->n_values && !cs->failed; i++) {
        const ir_value *sv = s->values[i];
        ir_value *dv = ir_graph_value(cs->ctx, d, sv->name);
        if (!dv || dv->id != sv->id) {
            cs->failed = true;
            if (dv)
                oct_error(cs->ctx, OCT_EINTERNAL,
                          "clone: value '%s' has id %u in the copy, %u in the "
                          "original", sv->name, dv->id, sv->id);
            break;
        }
        dv->flags = sv->flags;
        dv->has_type = sv->has_type;
        type(cs, &dv->type, &sv->type);
        dv->producer_out = sv->producer_out;
        dv->init = tensor(cs, sv->init);
        dv->doc = str(cs, sv->doc);
        dv->extra = extra(cs, sv->extra);
    }
    if (cs->failed)
        return NULL;
    d->cap_nodes = s->n_nodes ? s->n_nodes : 1;
    d->nodes = ir_alloc_array(cs->ctx, d->cap_nodes, sizeof *d->nodes);
    cs->failed |= !d->nodes;
    for (size_t k = 0; k < s->n_nodes && !cs->failed; k++) {
        ir_node *n = node(cs, s->nodes[k]);
        d->nodes[k] = n;
        d->n_nodes = k + 1;
        for (int o = 0; n && o < n->n_out; o++)
            if (n->out[o] && s->nodes[k]->out[o]->producer == s->nodes[k])
                n->out[o]->producer = n;
    }
    d->next_node_id = s->next_node_id;
    d->inputs = value_list(cs, s->inputs, s->n_inputs);
    d->n_inputs = s->n_inputs;
    d->outputs = value_list(cs, s->outputs, s->n_outputs);
    d->n_outputs = s->n_outputs;
    d->value_info = value_list(cs, s->value_info, s->n_value_info);
    d->n_value_info = s->n_value_info;
    d->cap_inits = s->n_inits ? s->n_inits : 1;
    d->inits = value_list(cs, s->inits, s->n_inits);
    d->n_inits = s->n_inits;
    if (!s->inits)
        d->cap_inits = 0;
    d->sparse_inits = blobs(cs, s->sparse_inits, s->n_sparse_inits);
    d->n_sparse_inits = s->n_sparse_inits;
    d->quant_annotations = blobs(cs, s->quant_annotations, s->n_quant_annotations);
    d->n_quant_annotations = s->n_quant_annotations;
    return cs->failed ? NULL : d;
}

oct_status ir_model_clone(oct_ctx *ctx, const ir_model *m, ir_model **out)
{
    *out = NULL;
    clone_state cs = {.ctx = ctx};
    ir_model *d = ir_alloc(ctx, sizeof *d);
    if (!d)
        return OCT_EINTERNAL;
    *d = *m;
    d->producer_name = str(&cs, m->producer_name);
    d->producer_version = str(&cs, m->producer_version);
    d->domain = str(&cs, m->domain);
    d->doc = str(&cs, m->doc);
    d->extra = extra(&cs, m->extra);
    d->functions = blobs(&cs, m->functions, m->n_functions);
    d->training_info = blobs(&cs, m->training_info, m->n_training_info);
    d->opsets = NULL;
    if (m->opsets) {
        d->opsets = ir_alloc_array(ctx, m->n_opsets ? m->n_opsets : 1, sizeof *d->opsets);
        cs.failed |= !d->opsets;
        for (size_t i = 0; d->opsets && i < m->n_opsets; i++) {
            d->opsets[i].version = m->opsets[i].version;
            d->opsets[i].domain = str(&cs, m->opsets[i].domain);
        }
    }
    d->metadata = NULL;
    if (m->metadata) {
        d->metadata = ir_alloc_array(ctx, m->n_metadata ? m->n_metadata : 1,
                                     sizeof *d->metadata);
        cs.failed |= !d->metadata;
        for (size_t i = 0; d->metadata && i < m->n_metadata; i++) {
            d->metadata[i].key = str(&cs, m->metadata[i].key);
            d->metadata[i].value = str(&cs, m->metadata[i].value);
        }
    }
    d->quant_lines = NULL; /* the quant passes' state, as text */
    d->n_quant_lines = 0;
    if (m->n_quant_lines) {
        d->quant_lines = ir_alloc_array(ctx, m->n_quant_lines, sizeof *d->quant_lines);
        cs.failed |= !d->quant_lines;
        for (size_t i = 0; d->quant_lines && i < m->n_quant_lines; i++)
            d->quant_lines[i] = (ir_text_line){str(&cs, m->quant_lines[i].text),
                                               m->quant_lines[i].lineno};
        d->n_quant_lines = d->quant_lines ? m->n_quant_lines : 0;
    }
    d->graph = NULL;
    if (!cs.failed && m->graph)
        d->graph = graph(&cs, m->graph);
    if (cs.failed || (m->graph && !d->graph))
        return OCT_EINTERNAL; /* the failed allocation recorded a diagnostic */
    *out = d;
    return OCT_OK;
}
