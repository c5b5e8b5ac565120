/*
 * fold.c: constant folding and the removal of no-op nodes.
 *
 *  - A node whose inputs are all constants (initializers, or outputs folded
 *    earlier in this pass) is evaluated with the reference kernels and its
 *    outputs become initializers.  Shape of a value whose shape is fully
 *    static folds too.  So the Shape/Gather/Concat/Reshape chains exporters
 *    leave behind become constants.  Each node is re-inferred just before
 *    it is considered, so shapes made static upstream propagate in one walk.
 *  - Quantization ops (QuantizeLinear, DequantizeLinear, ...) never fold:
 *    a DequantizeLinear of a constant int8 weight is how a QDQ model stores
 *    that weight.
 *  - Folding never grows the model much: an op whose outputs are more than
 *    4x its inputs' bytes (ConstantOfShape, Expand, Tile...) is left alone
 *    unless the outputs total less than 64 KiB.  Constant nodes always fold
 *    (their data is in the model already).  Nodes that produce a graph
 *    output are not folded, so the graph keeps its interface; a value a
 *    subgraph reads folds into an initializer of the same name.
 *  - Identity and inference-mode Dropout (mask unused) are bypassed: their
 *    consumers read the input directly.  When the output is a graph output,
 *    the producer of the input is made to write the output name instead; if
 *    the input is itself a graph input, initializer or graph output, the
 *    node stays.
 *  - Then nodes whose outputs are all unused are removed (repeatedly), and
 *    initializers nobody uses that are not graph inputs or outputs.
 */
#include <string.h>

#include "passes/passes.h"
#include "ops/ops.h"

enum { FOLD_SMALL_BYTES = 64 * 1024, FOLD_MAX_GROWTH = 4 };

typedef struct fold_state {
    oct_ctx *ctx;
    ir_graph *g;
    int64_t opset;
    bool *removed;          /* per node index */
    bool quant_ops;         /* fold quantization ops too (pass_fold_eval) */
    ir_value **new_inits;   /* values turned into initializers */
    size_t n_new, cap_new;
} fold_state;

static bool is_graph_output(const ir_graph *g, const ir_value *v)
{
    if (ir_value_escapes(v)) /* also a subgraph's outer-scope read */
        return true;
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return true;
    return false;
}

/* A graph output proper (not a subgraph's outer-scope read). */
static bool is_listed_output(const ir_graph *g, const ir_value *v)
{
    if (v->flags & IR_VAL_OUTPUT)
        return true;
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            return true;
    return false;
}

static bool is_graph_input(const ir_graph *g, const ir_value *v)
{
    if (v->flags & IR_VAL_INPUT)
        return true;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v)
            return true;
    return false;
}

/* Replaces every use of `from` by `to` in the nodes still alive. */
static void replace_uses(fold_state *fs, ir_value *from, ir_value *to)
{
    for (size_t i = 0; i < fs->g->n_nodes; i++) {
        if (fs->removed[i])
            continue;
        ir_node *n = fs->g->nodes[i];
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] == from)
                n->in[j] = to;
    }
}

/* Makes node n (Identity, or Dropout's first output) disappear: consumers
 * of y read x.  Returns true if the node can be removed. */
static bool bypass(fold_state *fs, ir_node *n, ir_value *x, ir_value *y)
{
    ir_graph *g = fs->g;
    if (!x || !y || x == y)
        return false;
    if (!is_graph_output(g, y)) {
        replace_uses(fs, y, x);
        y->producer = NULL;
        y->producer_out = -1;
        return true;
    }
    /* y names a graph output: rename x's producer's output to y */
    ir_node *p = x->producer;
    if (!p || x->init || is_graph_input(g, x) || is_graph_output(g, x))
        return false;
    replace_uses(fs, x, y);
    p->out[x->producer_out] = y;
    y->producer = p;
    y->producer_out = x->producer_out;
    x->producer = NULL;
    x->producer_out = -1;
    (void)n;
    return true;
}

/* Dropout is a no-op unless training_mode (input 2, opset >= 12) is a
 * constant true or not a constant. */
static bool dropout_is_noop(const fold_state *fs, const ir_node *n)
{
    if (n->n_out > 1 && n->out[1]) {
        /* the mask is wanted: it must be unused to drop the node */
        const ir_value *mask = n->out[1];
        if (is_graph_output(fs->g, mask))
            return false;
        for (size_t i = 0; i < fs->g->n_nodes; i++) {
            if (fs->removed[i])
                continue;
            const ir_node *m = fs->g->nodes[i];
            for (int j = 0; j < m->n_in; j++)
                if (m->in[j] == mask)
                    return false;
        }
    }
    if (n->n_in > 2 && n->in[2]) {
        const ir_tensor *t = n->in[2]->init;
        if (!t || t->nelems != 1 || ops_get(t, 0) != 0)
            return false;
    }
    return true;
}

static oct_status add_new_init(fold_state *fs, ir_value *v)
{
    if (fs->n_new == fs->cap_new) {
        size_t ncap = fs->cap_new ? fs->cap_new * 2 : 16;
        ir_value **a = ir_alloc_array(fs->ctx, ncap, sizeof *a);
        if (!a)
            return OCT_EINTERNAL;
        if (fs->n_new)
            memcpy(a, fs->new_inits, fs->n_new * sizeof *a);
        fs->new_inits = a;
        fs->cap_new = ncap;
    }
    fs->new_inits[fs->n_new++] = v;
    return OCT_OK;
}

/* Turns heap tensor t into an arena initializer of value v. */
static oct_status make_init(fold_state *fs, ir_value *v, const ir_tensor *t)
{
    oct_ctx *ctx = fs->ctx;
    ir_tensor *c = ir_alloc(ctx, sizeof *c);
    if (!c)
        return OCT_EINTERNAL;
    c->name = v->name;
    c->doc = "";
    c->dtype = t->dtype;
    c->rank = t->rank;
    c->dims = ir_alloc_array(ctx, (size_t)(t->rank ? t->rank : 1), sizeof *c->dims);
    c->data = ir_alloc(ctx, t->nbytes ? (size_t)t->nbytes : 1);
    if (!c->dims || !c->data)
        return OCT_EINTERNAL;
    if (t->rank)
        memcpy(c->dims, t->dims, (size_t)t->rank * sizeof *c->dims);
    if (t->nbytes)
        memcpy(c->data, t->data, (size_t)t->nbytes);
    c->nbytes = t->nbytes;
    c->nelems = t->nelems;
    c->storage = IR_STORE_RAW;
    v->init = c;
    v->producer = NULL;
    v->producer_out = -1;
    v->has_type = true;
    v->type.dtype = t->dtype;
    v->type.has_elem_type = true;
    v->type.opaque.len = 0;
    ir_dim *dims = ir_alloc_array(ctx, (size_t)(t->rank ? t->rank : 1), sizeof *dims);
    if (!dims)
        return OCT_EINTERNAL;
    for (int d = 0; d < t->rank; d++)
        dims[d].value = t->dims[d];
    v->type.rank = t->rank;
    v->type.dims = dims;
    return add_new_init(fs, v);
}

/* Folds Shape of a value whose shape is fully static (start/end as in
 * opset 15: negative adds the rank, then clamps to [0, rank]). */
static oct_status fold_static_shape(fold_state *fs, ir_node *n, bool *folded)
{
    *folded = false;
    const ir_value *x = n->in[0];
    if (!x || !x->has_type || x->type.rank < 0 || !x->type.dims || !n->out[0])
        return OCT_OK;
    int rank = x->type.rank;
    for (int d = 0; d < rank; d++)
        if (x->type.dims[d].value < 0)
            return OCT_OK;
    int64_t start = ir_attr_int(n, "start", 0), end = ir_attr_int(n, "end", rank);
    if (start < 0)
        start += rank;
    if (end < 0)
        end += rank;
    start = start < 0 ? 0 : start > rank ? rank : start;
    end = end < 0 ? 0 : end > rank ? rank : end;
    int64_t len = end > start ? end - start : 0;
    ir_tensor *t = ir_heap_tensor_new(fs->ctx, IR_DT_INT64, 1, &len);
    if (!t)
        return OCT_EINTERNAL;
    for (int64_t i = 0; i < len; i++)
        ((int64_t *)t->data)[i] = x->type.dims[start + i].value;
    oct_status st = make_init(fs, n->out[0], t);
    ir_heap_tensor_free(fs->ctx, t);
    *folded = st == OCT_OK;
    return st;
}

/* Evaluates n if every input is a constant and the result is not too big. */
static oct_status try_fold(fold_state *fs, ir_node *n, bool *folded)
{
    *folded = false;
    /* Quantization ops carry the model's quantization (a DequantizeLinear of
     * an int8 weight is the weight): folding them would turn a QDQ model
     * back into a float one. */
    if ((ir_op_info_of(n->op)->flags & IR_OPF_QUANT) && !fs->quant_ops)
        return OCT_OK;
    /* If/Loop/Scan run subgraphs that read outer-scope values the node's
     * inputs do not list: one-node evaluation cannot see them. */
    if (ir_node_has_subgraph(n))
        return OCT_OK;
    uint64_t in_bytes = 0, out_bytes = 0;
    const ir_tensor *in[OPS_MAX_IO];
    ir_tensor *out[OPS_MAX_IO];
    if (n->n_in > OPS_MAX_IO || n->n_out > OPS_MAX_IO)
        return OCT_OK;
    /* a value a subgraph reads may fold: it stays, named as before, now an
     * initializer (which is how an If's shape-test condition becomes a
     * constant when the branches read it too) */
    for (int i = 0; i < n->n_out; i++)
        if (n->out[i] && is_listed_output(fs->g, n->out[i]))
            return OCT_OK;
    for (int i = 0; i < n->n_in; i++) {
        in[i] = n->in[i] ? n->in[i]->init : NULL;
        if (n->in[i] && !in[i])
            return n->op == IR_OP_SHAPE ? fold_static_shape(fs, n, folded) : OCT_OK;
        if (in[i])
            in_bytes += in[i]->nbytes;
    }
    /* the outputs' size, from the types just inferred (all static when the
     * inputs are constants; skip when a rule could not tell) */
    for (int i = 0; i < n->n_out; i++) {
        const ir_value *v = n->out[i];
        if (!v)
            continue;
        uint64_t elems, bytes;
        if (!v->has_type || v->type.rank < 0 || !ir_dtype_valid(v->type.dtype))
            return OCT_OK;
        int64_t dims[OPS_MAX_RANK];
        for (int d = 0; d < v->type.rank && d < OPS_MAX_RANK; d++)
            dims[d] = v->type.dims ? v->type.dims[d].value : -1;
        if (v->type.rank > OPS_MAX_RANK || !ir_shape_elems(v->type.rank, dims, &elems) ||
            !ir_dtype_bytes(v->type.dtype, elems, &bytes))
            return OCT_OK;
        out_bytes += bytes;
    }
    if (n->op != IR_OP_CONSTANT && out_bytes > FOLD_SMALL_BYTES &&
        out_bytes > FOLD_MAX_GROWTH * in_bytes)
        return OCT_OK;
    const ir_engine *eng = ir_ctx_engine(fs->ctx, "constant folding");
    if (!eng)
        return OCT_EINTERNAL;
    oct_status st = eng->eval_node(fs->ctx, n, fs->opset, in, out);
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < n->n_out && st == OCT_OK; i++)
        if (out[i])
            st = make_init(fs, n->out[i], out[i]);
    for (int i = 0; i < n->n_out; i++)
        ir_heap_tensor_free(fs->ctx, out[i]);
    *folded = st == OCT_OK;
    return st;
}

/* Removes dead nodes and unused initializers; rebuilds the node, initializer
 * and value_info lists. */
static oct_status sweep(fold_state *fs)
{
    oct_ctx *ctx = fs->ctx;
    ir_graph *g = fs->g;
    size_t nv = g->n_values ? g->n_values : 1;
    uint32_t *uses = ir_alloc_array(ctx, nv, sizeof *uses);
    if (!uses)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (!fs->removed[i])
            for (int j = 0; j < g->nodes[i]->n_in; j++)
                if (g->nodes[i]->in[j])
                    uses[g->nodes[i]->in[j]->id]++;
    for (size_t k = g->n_nodes; k-- > 0;) {
        if (fs->removed[k])
            continue;
        ir_node *n = g->nodes[k];
        bool live = false;
        for (int j = 0; j < n->n_out && !live; j++)
            live = n->out[j] && (uses[n->out[j]->id] || is_graph_output(g, n->out[j]));
        if (live)
            continue;
        fs->removed[k] = true;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j])
                uses[n->in[j]->id]--;
    }
    for (size_t k = 0; k < g->n_nodes; k++)
        if (fs->removed[k])
            for (int j = 0; j < g->nodes[k]->n_out; j++) {
                ir_value *v = g->nodes[k]->out[j];
                if (v && v->producer == g->nodes[k]) {
                    v->producer = NULL;
                    v->producer_out = -1;
                }
            }
    size_t kept = 0;
    for (size_t k = 0; k < g->n_nodes; k++)
        if (!fs->removed[k])
            g->nodes[kept++] = g->nodes[k];
    g->n_nodes = kept;

    /* initializers: the old ones still needed, then the folded ones */
    size_t total = g->n_inits + fs->n_new;
    ir_value **inits = ir_alloc_array(ctx, total ? total : 1, sizeof *inits);
    if (!inits)
        return OCT_EINTERNAL;
    size_t n_inits = 0;
    for (size_t pass = 0; pass < 2; pass++) {
        ir_value **src = pass == 0 ? g->inits : fs->new_inits;
        size_t count = pass == 0 ? g->n_inits : fs->n_new;
        for (size_t i = 0; i < count; i++) {
            ir_value *v = src[i];
            if (uses[v->id] || is_graph_input(g, v) || is_graph_output(g, v))
                inits[n_inits++] = v;
            else if (pass == 0 || v->init)
                v->init = NULL; /* dropped */
        }
    }
    g->inits = inits;
    g->n_inits = n_inits;
    g->cap_inits = total ? total : 1;

    /* value_info of values that no longer exist */
    size_t n_info = 0;
    for (size_t i = 0; i < g->n_value_info; i++) {
        ir_value *v = g->value_info[i];
        if (v->producer || v->init || is_graph_input(g, v))
            g->value_info[n_info++] = v;
        else
            v->flags &= ~(unsigned)IR_VAL_INFO;
    }
    g->n_value_info = n_info;
    return OCT_OK;
}

static oct_status fold(ir_graph *g, bool quant_ops, oct_ctx *ctx)
{
    fold_state fs = {.ctx = ctx, .g = g, .quant_ops = quant_ops};
    fs.opset = ctx->model ? ir_model_opset(ctx->model, "") : 0;
    fs.removed = ir_alloc_array(ctx, g->n_nodes ? g->n_nodes : 1, sizeof *fs.removed);
    if (!fs.removed)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (n->op == IR_OP_UNKNOWN)
            continue;
        oct_status st = pass_infer_node(ctx, n, fs.opset);
        if (st != OCT_OK)
            return st;
        if (n->op == IR_OP_IDENTITY ||
            (n->op == IR_OP_DROPOUT && dropout_is_noop(&fs, n))) {
            if (n->n_in >= 1 && n->n_out >= 1 && bypass(&fs, n, n->in[0], n->out[0])) {
                fs.removed[i] = true;
                continue;
            }
        }
        bool folded;
        st = try_fold(&fs, n, &folded);
        if (st != OCT_OK)
            return st;
        if (folded)
            fs.removed[i] = true;
    }
    return sweep(&fs);
}

oct_status pass_fold(ir_graph *g, oct_ctx *ctx)
{
    return fold(g, false, ctx);
}

oct_status pass_fold_eval(ir_graph *g, oct_ctx *ctx)
{
    return fold(g, true, ctx);
}
