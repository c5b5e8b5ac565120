/*
 * graph.c: building and querying the graph: values by name (an open
 * addressing hash table in the arena), nodes, attributes.
 */
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

struct ir_name_map {
    ir_value **slots;  /* power-of-two sized, NULL = empty */
    size_t cap, used;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

ir_model *ir_model_new(oct_ctx *ctx)
{
    ir_model *m = ir_alloc(ctx, sizeof *m);
    if (!m)
        return NULL;
    m->producer_name = m->producer_version = m->domain = m->doc = "";
    return m;
}

ir_graph *ir_graph_new(oct_ctx *ctx)
{
    ir_graph *g = ir_alloc(ctx, sizeof *g);
    if (!g)
        return NULL;
    g->name = g->doc = "";
    g->names = ir_alloc(ctx, sizeof *g->names);
    return g->names ? g : NULL;
}

ir_value *ir_graph_find(const ir_graph *g, const char *name)
{
    const ir_name_map *m = g->names;
    if (!m->cap)
        return NULL;
    for (size_t i = hash_name(name) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        ir_value *v = m->slots[i];
        if (!v)
            return NULL;
        if (strcmp(v->name, name) == 0)
            return v;
    }
}

static void map_insert(ir_name_map *m, ir_value *v)
{
    size_t i = hash_name(v->name) & (m->cap - 1);
    while (m->slots[i])
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = v;
    m->used++;
}

/* Grows `*array` (of pointers, `used` of them in use) so it holds at least
 * `used + 1` entries.  *cap may be 0 for an array someone else sized
 * exactly; it is then reallocated. */
static bool grow(oct_ctx *ctx, void ***array, size_t *cap, size_t used)
{
    size_t need = used + 1;
    if (need <= *cap)
        return true;
    size_t ncap = 16;
    while (ncap < need)
        ncap *= 2;
    void **a = ir_alloc_array(ctx, ncap, sizeof *a);
    if (!a)
        return false;
    if (used)
        memcpy(a, *array, used * sizeof *a);
    *array = a;
    *cap = ncap;
    return true;
}

ir_value *ir_graph_value(oct_ctx *ctx, ir_graph *g, const char *name)
{
    ir_value *v = ir_graph_find(g, name);
    if (v)
        return v;
    ir_name_map *m = g->names;
    if ((m->used + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        ir_value **old = m->slots;
        size_t old_cap = m->cap;
        m->slots = ir_alloc_array(ctx, ncap, sizeof *m->slots);
        if (!m->slots) {
            m->slots = old;
            return NULL;
        }
        m->cap = ncap;
        m->used = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i])
                map_insert(m, old[i]);
    }
    if (!grow(ctx, (void ***)&g->values, &g->cap_values, g->n_values))
        return NULL;
    v = ir_alloc(ctx, sizeof *v);
    if (!v || !(v->name = ir_strdup(ctx, name)))
        return NULL;
    v->id = (uint32_t)g->n_values;
    v->type.rank = -1;
    v->producer_out = -1;
    g->values[g->n_values++] = v;
    map_insert(m, v);
    return v;
}

ir_node *ir_graph_add_node(oct_ctx *ctx, ir_graph *g, const char *op_type,
                           const char *domain, const char *name, int n_in,
                           int n_out)
{
    if (!grow(ctx, (void ***)&g->nodes, &g->cap_nodes, g->n_nodes))
        return NULL;
    ir_node *n = ir_alloc(ctx, sizeof *n);
    if (!n)
        return NULL;
    n->op_type = ir_strdup(ctx, op_type);
    n->domain = ir_strdup(ctx, domain);
    n->name = ir_strdup(ctx, name);
    n->doc = "";
    n->in = ir_alloc_array(ctx, (size_t)n_in + 1, sizeof *n->in);
    n->out = ir_alloc_array(ctx, (size_t)n_out + 1, sizeof *n->out);
    if (!n->op_type || !n->domain || !n->name || !n->in || !n->out)
        return NULL;
    n->n_in = n_in;
    n->n_out = n_out;
    n->op = ir_op_lookup(domain, op_type);
    n->id = g->next_node_id++;
    g->nodes[g->n_nodes++] = n;
    return n;
}

void ir_node_set_output(ir_node *node, int i, ir_value *v)
{
    OCT_ASSERT(i >= 0 && i < node->n_out);
    node->out[i] = v;
    if (v) {
        v->producer = node;
        v->producer_out = i;
    }
}

size_t ir_value_use_count(const ir_graph *g, const ir_value *v)
{
    size_t n = v && (v->flags & IR_VAL_CAPTURED) ? 1 : 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_in; k++)
            n += g->nodes[i]->in[k] == v;
    return n;
}

ir_node *ir_value_sole_consumer(const ir_graph *g, const ir_value *v)
{
    if (!v || ir_value_escapes(v) || ir_value_use_count(g, v) != 1)
        return NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_in; k++)
            if (g->nodes[i]->in[k] == v)
                return g->nodes[i];
    return NULL;
}

bool ir_node_has_subgraph(const ir_node *n)
{
    for (int a = 0; a < n->n_attr; a++)
        if (n->attrs[a].type == IR_ATTR_GRAPH || n->attrs[a].type == IR_ATTR_GRAPHS)
            return true;
    return false;
}

void ir_graph_remove_node(ir_graph *g, ir_node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] != n)
            g->nodes[k++] = g->nodes[i];
    g->n_nodes = k;
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i] && n->out[i]->producer == n)
            n->out[i]->producer = NULL;
}

ir_node **ir_graph_nodes_copy(const ir_graph *g, oct_ctx *ctx, size_t *n)
{
    *n = g->n_nodes;
    ir_node **copy = ir_alloc_array(ctx, *n + 1, sizeof *copy);
    if (copy && *n) /* g->nodes is NULL in a graph without nodes */
        memcpy(copy, g->nodes, *n * sizeof *copy);
    return copy;
}

bool ir_graph_has_node(const ir_graph *g, const ir_node *node)
{
    for (size_t j = 0; j < g->n_nodes; j++)
        if (g->nodes[j] == node)
            return true;
    return false;
}

int64_t ir_model_opset(const ir_model *m, const char *domain)
{
    bool want_default = !domain || !*domain || !strcmp(domain, "ai.onnx");
    for (size_t i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain;
        bool is_default = !d || !*d || !strcmp(d, "ai.onnx");
        if (want_default ? is_default : (d && !strcmp(d, domain)))
            return m->opsets[i].version;
    }
    return 0;
}

bool ir_model_import_opset(oct_ctx *ctx, ir_model *m, const char *domain, int64_t version)
{
    if (ir_model_opset(m, domain))
        return true;
    ir_opset *grown = ir_alloc_array(ctx, m->n_opsets + 1, sizeof *grown);
    const char *d = ir_strdup(ctx, domain);
    if (!grown || !d)
        return false;
    if (m->n_opsets)
        memcpy(grown, m->opsets, m->n_opsets * sizeof *grown);
    grown[m->n_opsets].domain = d;
    grown[m->n_opsets].version = version;
    m->opsets = grown;
    m->n_opsets++;
    return true;
}

const ir_attr *ir_node_attr(const ir_node *node, const char *name)
{
    for (int i = 0; i < node->n_attr; i++)
        if (strcmp(node->attrs[i].name, name) == 0)
            return &node->attrs[i];
    return NULL;
}

int64_t ir_attr_int(const ir_node *node, const char *name, int64_t dflt)
{
    const ir_attr *a = ir_node_attr(node, name);
    return a && a->type == IR_ATTR_INT ? a->i : dflt;
}

float ir_attr_float(const ir_node *node, const char *name, float dflt)
{
    const ir_attr *a = ir_node_attr(node, name);
    return a && a->type == IR_ATTR_FLOAT ? a->f : dflt;
}

const char *ir_attr_string(oct_ctx *ctx, const ir_node *node, const char *name,
                           const char *dflt)
{
    const ir_attr *a = ir_node_attr(node, name);
    if (!a || a->type != IR_ATTR_STRING)
        return dflt;
    return ir_strndup(ctx, (const char *)a->s.data, a->s.len);
}

/* Is (name, op_type) dst itself or one of the n entries of list o? */
static bool origin_known(const ir_node *dst, const ir_origin *o, int n,
                         const char *name, const char *op_type)
{
    if (!strcmp(dst->name ? dst->name : "", name) && !strcmp(dst->op_type, op_type))
        return true;
    for (int i = 0; i < n; i++)
        if (!strcmp(o[i].name, name) && !strcmp(o[i].op_type, op_type))
            return true;
    return false;
}

bool ir_node_add_origin(oct_ctx *ctx, ir_node *dst, const ir_node *src)
{
    /* the arena never shrinks: grow by copying into a new array */
    int cap = dst->n_origins + 1 + src->n_origins;
    ir_origin *o = ir_alloc_array(ctx, (size_t)cap, sizeof *o);
    if (!o)
        return false;
    if (dst->n_origins)
        memcpy(o, dst->origins, (size_t)dst->n_origins * sizeof *o);
    int n = dst->n_origins;
    for (int i = -1; i < src->n_origins; i++) { /* -1: src itself */
        const char *name = i < 0 ? (src->name ? src->name : "") : src->origins[i].name;
        const char *op = i < 0 ? src->op_type : src->origins[i].op_type;
        if (!origin_known(dst, o, n, name, op))
            o[n++] = (ir_origin){name, op};
    }
    dst->origins = o;
    dst->n_origins = n;
    return true;
}

const char *ir_node_label(const ir_node *node, char *buf, size_t size)
{
    if (node->name && *node->name)
        return node->name;
    snprintf(buf, size, "#%u", node->id);
    return buf;
}

bool ir_shape_elems(int rank, const int64_t *dims, uint64_t *elems)
{
    uint64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || ir_mul_overflow_u64(n, (uint64_t)dims[i], &n))
            return false;
    }
    *elems = n;
    return true;
}

/* ---- rewriting helpers --------------------------------------------------- */

ir_attr *ir_node_add_attr(oct_ctx *ctx, ir_node *node, const char *name,
                          ir_attr_type type)
{
    ir_attr *attrs = ir_alloc_array(ctx, (size_t)node->n_attr + 1, sizeof *attrs);
    if (!attrs)
        return NULL;
    if (node->n_attr)
        memcpy(attrs, node->attrs, (size_t)node->n_attr * sizeof *attrs);
    ir_attr *a = &attrs[node->n_attr];
    a->name = ir_strdup(ctx, name);
    if (!a->name)
        return NULL;
    a->type = type;
    a->ref_attr_name = a->doc = "";
    node->attrs = attrs;
    node->n_attr++;
    return a;
}

bool ir_node_remove_attr(ir_node *node, const char *name)
{
    for (int i = 0; i < node->n_attr; i++)
        if (strcmp(node->attrs[i].name, name) == 0) {
            memmove(&node->attrs[i], &node->attrs[i + 1],
                    (size_t)(node->n_attr - i - 1) * sizeof *node->attrs);
            node->n_attr--;
            return true;
        }
    return false;
}

bool ir_node_set_inputs(oct_ctx *ctx, ir_node *node, int n_in)
{
    if (n_in <= node->n_in) {
        for (int i = n_in; i < node->n_in; i++)
            node->in[i] = NULL;
        node->n_in = n_in;
        return true;
    }
    ir_value **in = ir_alloc_array(ctx, (size_t)n_in + 1, sizeof *in);
    if (!in)
        return false;
    if (node->n_in) /* a node without inputs has a NULL array */
        memcpy(in, node->in, (size_t)node->n_in * sizeof *in);
    node->in = in;
    node->n_in = n_in;
    return true;
}

const char *ir_graph_unique_name(oct_ctx *ctx, const ir_graph *g,
                                 const char *base)
{
    if (!ir_graph_find(g, base))
        return ir_strdup(ctx, base);
    for (unsigned k = 1;; k++) {
        char *name = ir_sprintf(ctx, "%s_%u", base, k);
        if (!name || !ir_graph_find(g, name))
            return name;
    }
}

ir_tensor *ir_tensor_new(oct_ctx *ctx, ir_dtype dt, int rank,
                         const int64_t *dims)
{
    uint64_t elems, bytes;
    if (!ir_shape_elems(rank, dims, &elems) || !ir_dtype_bytes(dt, elems, &bytes) ||
        bytes > SIZE_MAX) {
        oct_error(ctx, OCT_EINPUT, "tensor of %d dims is too large", rank);
        return NULL;
    }
    ir_tensor *t = ir_alloc(ctx, sizeof *t);
    if (!t)
        return NULL;
    t->dtype = dt;
    t->rank = rank;
    t->dims = ir_alloc_array(ctx, (size_t)rank + 1, sizeof *t->dims);
    t->data = ir_alloc(ctx, (size_t)bytes);
    if (!t->dims || !t->data)
        return NULL;
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->nbytes = bytes;
    t->nelems = elems;
    t->name = t->doc = "";
    return t;
}

ir_value *ir_graph_add_init(oct_ctx *ctx, ir_graph *g, const char *base,
                            ir_tensor *t)
{
    const char *name = ir_graph_unique_name(ctx, g, base);
    ir_value *v = name ? ir_graph_value(ctx, g, name) : NULL;
    if (!v)
        return NULL;
    if (!grow(ctx, (void ***)&g->inits, &g->cap_inits, g->n_inits))
        return NULL;
    t->name = v->name;
    v->init = t;
    v->has_type = true;
    v->type.dtype = t->dtype;
    v->type.has_elem_type = true;
    v->type.rank = t->rank;
    v->type.dims = ir_alloc_array(ctx, (size_t)t->rank + 1, sizeof *v->type.dims);
    if (!v->type.dims)
        return NULL;
    for (int i = 0; i < t->rank; i++)
        v->type.dims[i].value = t->dims[i];
    g->inits[g->n_inits++] = v;
    return v;
}
