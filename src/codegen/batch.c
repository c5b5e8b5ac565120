/*
 * batch.c: finds a model's symbolic leading (batch) dimension and proves
 * that its graph keeps the items of that dimension apart, so the body can
 * be compiled at batch 1 and looped over the batch at run time (batch.h).
 *
 * The proof walks the graph prepared at batch 1 (g1) beside the same model
 * prepared at batch CG_BATCH_PROBE (gp), matching values by name (and each
 * node with the one of the same op and input names there).  A value
 * is batched when the batch is its axis 0 (g1 has 1 there, gp the probe,
 * and every other dim is equal); any other value must have the same shape
 * in both and, if constant, the same bytes, so it cannot depend on the
 * batch.  The one exception is the shape operand of Reshape, Expand and
 * Resize (sizes), which is [1, ...] in g1 and [probe, ...] in gp when a
 * model computes it from Shape (x.view(x.size(0), -1)); the node's output
 * is then checked like any other.  A node reading a batched value must be
 * one of the ops below, each with the condition under which output item i
 * depends on input item i only:
 *   element-wise ops      unbatched operands broadcast over axis 0 (lower
 *                         rank, or 1 there); legacy broadcast not at axis 0
 *   Q/DQ                  per-tensor, or per-axis on an axis other than 0
 *   Conv, pools, norms, LRN, Pad, Resize, Expand, Tile, DepthToSpace, ...
 *                         only input 0 batched (weights, scales constant or
 *                         unbatched); Pad adds nothing on axis 0;
 *                         BatchNormalization not in training mode; Resize
 *                         not tf_crop_and_resize; MaxPool without Indices
 *                         (they count across the batch)
 *   Gemm, QGemm           A batched, not transposed; B, C unbatched
 *   MatMul family         A batched of rank >= 2 with B unbatched, or both
 *                         batched of rank >= 3, and the output of A's rank
 *   Softmax, LayerNorm, Concat, Split, ArgMax, GatherElements, Flatten
 *                         the axis is not 0
 *   reductions            axis 0 not reduced (no reduction over all axes)
 *   Transpose             perm[0] = 0; Squeeze/Unsqueeze: axis 0 untouched
 *   Slice                 axis 0 sliced only with a positive step (the
 *                         shape check then proves the whole range)
 *   Gather                data batched and axis not 0, or indices batched
 *                         and axis 0 (an embedding lookup)
 *   Reshape               output batched (the shape check): row-major
 *                         order keeps each item's block in place
 *   RNN, GRU, LSTM        layout 1 (X [batch, S, I]): X batched, and
 *                         sequence_lens and the initial states too when
 *                         present; W, R, B and P unbatched
 * Every other op with a batched input (DynamicQuantizeLinear, whose scale
 * spans the batch, Shape, ...) fails the proof.
 */
#include <string.h>

#include "codegen/batch.h"
#include "ops/ops.h"

/* ---- finding the dimension ---------------------------------------------- */

oct_status cg_batch_find(oct_ctx *ctx, const ir_graph *g, cg_batch *b)
{
    memset(b, 0, sizeof *b);
    size_t n_in = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->init)
            continue;
        n_in++;
        if (!v->has_type || v->type.rank < 0 || (v->type.rank && !v->type.dims))
            return OCT_OK; /* no shape: cg_compile says so */
    }
    const ir_value *first = NULL;
    const char *name = NULL;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->init)
            continue;
        for (int d = 0; d < v->type.rank; d++) {
            const ir_dim *dim = &v->type.dims[d];
            if (dim->value >= 0)
                continue;
            const char *p = dim->param ? dim->param : "?";
            if (d > 0)
                return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1, v->name,
                                 "compile: input '%s' dim %d ('%s') is symbolic; only a "
                                 "symbolic leading (batch) dimension is compiled for run "
                                 "time: bind it with --input-shape %s=DIMS", v->name, d, p,
                                 v->name);
            if (first && (!dim->param || !name || strcmp(name, dim->param)))
                return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1, v->name,
                                 "compile: inputs '%s' and '%s' have different symbolic "
                                 "leading dimensions ('%s', '%s'): bind them with "
                                 "--input-shape NAME=DIMS", first->name, v->name,
                                 name ? name : "?", p);
            if (!first) {
                first = v;
                name = dim->param;
            }
        }
    }
    if (!first)
        return OCT_OK;
    b->in_batched = ir_alloc_array(ctx, n_in ? n_in : 1, sizeof *b->in_batched);
    b->name = ir_strdup(ctx, name ? name : "batch");
    if (!b->in_batched || !b->name)
        return OCT_EINTERNAL;
    b->n_in = n_in;
    for (size_t i = 0, k = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->init)
            continue;
        b->in_batched[k++] = v->type.rank > 0 && v->type.dims[0].value < 0;
    }
    return OCT_OK;
}

/* ---- shapes and constants of the two copies ------------------------------ */

/* Rank and dims of v (-1 if not fully known). */
static int shape_of(const ir_value *v, int64_t *dims)
{
    if (v->init) {
        if (v->init->rank > OPS_MAX_RANK)
            return -1;
        for (int d = 0; d < v->init->rank; d++)
            dims[d] = v->init->dims[d];
        return v->init->rank;
    }
    if (!v->has_type || v->type.rank < 0 || v->type.rank > OPS_MAX_RANK)
        return -1;
    for (int d = 0; d < v->type.rank; d++)
        if ((dims[d] = v->type.dims[d].value) < 0)
            return -1;
    return v->type.rank;
}

/* v in g1 and its twin t in gp: batched (axis 0 is 1 and the probe, the
 * rest equal) or the same shape. */
static bool shapes_match(const ir_value *v, const ir_value *t, bool batched)
{
    int64_t a[OPS_MAX_RANK], b[OPS_MAX_RANK];
    int ra = shape_of(v, a), rb = shape_of(t, b);
    if (ra < 0 || ra != rb || (batched && ra == 0))
        return false;
    for (int d = 0; d < ra; d++) {
        if (batched && d == 0) {
            if (a[0] != 1 || b[0] != CG_BATCH_PROBE)
                return false;
        } else if (a[d] != b[d]) {
            return false;
        }
    }
    return true;
}

static bool same_bytes(const ir_tensor *a, const ir_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes ||
        a->dtype == IR_DT_STRING)
        return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d])
            return false;
    return !a->nbytes || !memcmp(a->data, b->data, (size_t)a->nbytes);
}

/* A shape operand computed from the batch: [1, rest] in g1 and
 * [probe, rest] in gp. */
static bool batch_shape_operand(const ir_tensor *a, const ir_tensor *b)
{
    int64_t x[OPS_MAX_RANK], y[OPS_MAX_RANK];
    int nx = ops_const_ints(a, x, OPS_MAX_RANK), ny = ops_const_ints(b, y, OPS_MAX_RANK);
    if (nx < 1 || nx != ny || x[0] != 1 || y[0] != CG_BATCH_PROBE)
        return false;
    for (int i = 1; i < nx; i++)
        if (x[i] != y[i])
            return false;
    return true;
}

static bool is_shape_operand(const ir_node *n, int i)
{
    return ((n->op == IR_OP_RESHAPE || n->op == IR_OP_EXPAND) && i == 1) ||
           (n->op == IR_OP_RESIZE && i == 3);
}

/* ---- the ops ------------------------------------------------------------- */

typedef struct walk {
    const ir_node *n;
    const uint8_t *bat;   /* by g1 value id */
    int64_t opset;
} walk;

static bool in_batched(const walk *w, int i)
{
    return i < w->n->n_in && w->n->in[i] && w->bat[w->n->in[i]->id];
}

static int in_rank(const walk *w, int i, int64_t *dims)
{
    int64_t tmp[OPS_MAX_RANK];
    return i < w->n->n_in && w->n->in[i] ? shape_of(w->n->in[i], dims ? dims : tmp) : -1;
}

/* Whether the normalized axis attribute (default dflt) against rank is 0. */
static bool axis_is_0(const ir_node *n, const char *attr, int64_t dflt, int rank)
{
    int axis;
    return !ops_norm_axis(ir_attr_int(n, attr, dflt), rank, &axis) || axis == 0;
}

/* Axes of n from input `in` (a constant in g1) or attribute "axes";
 * returns the count, -1 when absent, -2 when not readable. */
static int axes_of(const ir_node *n, int in, int64_t *axes)
{
    if (in < n->n_in && n->in[in]) {
        if (!n->in[in]->init)
            return -2;
        int k = ops_const_ints(n->in[in]->init, axes, OPS_MAX_RANK);
        return k < 0 ? -2 : k;
    }
    const ir_attr *a = ir_node_attr(n, "axes");
    if (!a)
        return -1;
    if (a->n > OPS_MAX_RANK)
        return -2;
    for (size_t i = 0; i < a->n; i++)
        axes[i] = a->ints[i];
    return (int)a->n;
}

static bool axes_have_0(const int64_t *axes, int k, int rank)
{
    for (int i = 0; i < k; i++) {
        int ax;
        if (!ops_norm_axis(axes[i], rank, &ax) || ax == 0)
            return true;
    }
    return false;
}

static const char *only_first_batched(const walk *w)
{
    for (int i = 1; i < w->n->n_in; i++)
        if (in_batched(w, i))
            return "reads a batched operand other than its data input";
    return in_batched(w, 0) ? NULL : "its data input is not batched";
}

static const char *rule_elementwise(const walk *w, int out_rank)
{
    const ir_node *n = w->n;
    for (int i = 0; i < n->n_in; i++) {
        int64_t dims[OPS_MAX_RANK];
        int r = in_rank(w, i, dims);
        if (!n->in[i])
            continue;
        if (r < 0)
            return "an operand has no static shape";
        if (in_batched(w, i) ? r != out_rank : r == out_rank && dims[0] != 1)
            return "an operand broadcasts along the batch axis";
    }
    if (ir_attr_int(n, "broadcast", 0) && ir_attr_int(n, "axis", 1) == 0)
        return "its legacy broadcast aligns an operand at axis 0";
    return NULL;
}

static const char *rule_quant(const walk *w)
{
    const char *why = only_first_batched(w);
    if (why)
        return why;
    int64_t sd[OPS_MAX_RANK];
    int rank = in_rank(w, 0, NULL), sr = in_rank(w, 1, sd);
    uint64_t elems = 1;
    for (int d = 0; d < sr; d++)
        elems *= (uint64_t)sd[d];
    if (sr > 0 && elems > 1 && axis_is_0(w->n, "axis", 1, rank))
        return "its scale runs along the batch axis";
    return NULL;
}

static const char *rule_gemm(const walk *w)
{
    if (ir_attr_int(w->n, "transA", 0))
        return "A is transposed, so the batch is not its rows";
    return only_first_batched(w);
}

/* MatMul family: A at input a, B at input b. */
static const char *rule_matmul(const walk *w, int a, int b, int out_rank)
{
    int ra = in_rank(w, a, NULL), rb = in_rank(w, b, NULL);
    bool ba = in_batched(w, a), bb = in_batched(w, b);
    for (int i = 0; i < w->n->n_in; i++)
        if (i != a && i != b && in_batched(w, i))
            return "a scale or zero point is batched";
    if (ba && !bb && ra >= 2 && out_rank == ra)
        return NULL;
    if (ba && bb && ra >= 3 && ra == rb && out_rank == ra)
        return NULL;
    if (!ba && bb && rb >= 3 && out_rank == rb && ra < rb)
        return NULL;
    return "the batch axis is one of the matrix axes";
}

static const char *rule_reduce(const walk *w)
{
    const char *why = only_first_batched(w);
    if (why)
        return why;
    int rank = in_rank(w, 0, NULL);
    int64_t axes[OPS_MAX_RANK];
    int k = axes_of(w->n, 1, axes);
    if (k == -2)
        return "its axes are not constant";
    if (k <= 0)
        return ir_attr_int(w->n, "noop_with_empty_axes", 0) && k == 0
                   ? NULL : "it reduces over every axis, the batch too";
    return axes_have_0(axes, k, rank) ? "it reduces over the batch axis" : NULL;
}

static const char *rule_slice(const walk *w)
{
    const ir_node *n = w->n;
    const char *why = only_first_batched(w);
    if (why)
        return why;
    int rank = in_rank(w, 0, NULL);
    int64_t starts[OPS_MAX_RANK], axes[OPS_MAX_RANK], steps[OPS_MAX_RANK];
    int ns, na, nsteps = -1;
    if (w->opset < 10) {
        const ir_attr *s = ir_node_attr(n, "starts");
        ns = s ? (int)s->n : 0;
        na = axes_of(n, 99, axes);
    } else {
        if (!n->in[1] || !n->in[1]->init)
            return "its starts are not constant";
        ns = ops_const_ints(n->in[1]->init, starts, OPS_MAX_RANK);
        na = axes_of(n, 3, axes);
        if (n->n_in > 4 && n->in[4]) {
            if (!n->in[4]->init ||
                (nsteps = ops_const_ints(n->in[4]->init, steps, OPS_MAX_RANK)) < 0)
                return "its steps are not constant";
        }
    }
    if (ns < 0 || ns > OPS_MAX_RANK || na == -2)
        return "its axes are not constant";
    if (na == -1) {
        na = ns;
        for (int i = 0; i < na; i++)
            axes[i] = i;
    }
    for (int i = 0; i < na; i++) {
        int ax;
        if (!ops_norm_axis(axes[i], rank, &ax))
            return "an axis is out of range";
        if (ax == 0 && nsteps > i && steps[i] <= 0)
            return "it reverses the batch axis";
    }
    return NULL;
}

static const char *rule_pad(const walk *w)
{
    const char *why = only_first_batched(w);
    if (why)
        return why;
    int rank = in_rank(w, 0, NULL);
    int64_t pads[2 * OPS_MAX_RANK];
    int k;
    if (w->n->n_in > 1 && w->n->in[1]) {
        if (!w->n->in[1]->init)
            return "its pads are not constant";
        k = ops_const_ints(w->n->in[1]->init, pads, 2 * OPS_MAX_RANK);
    } else {
        const ir_attr *a = ir_node_attr(w->n, "pads");
        k = a && a->n <= 2 * OPS_MAX_RANK ? (int)a->n : -1;
        for (int i = 0; i < k; i++)
            pads[i] = a->ints[i];
    }
    if (w->n->n_in > 3 && w->n->in[3])
        return "it pads chosen axes";
    if (k != 2 * rank)
        return "its pads are not constant";
    return pads[0] || pads[rank] ? "it pads the batch axis" : NULL;
}

static const char *rule_gather(const walk *w)
{
    int rank = in_rank(w, 0, NULL);
    bool data = in_batched(w, 0), idx = in_batched(w, 1);
    bool axis0 = axis_is_0(w->n, "axis", 0, rank);
    if (data && !idx && !axis0)
        return NULL;
    if (!data && idx && axis0)
        return NULL;
    return "it gathers along the batch axis";
}

/* Recurrent layers (issue 19): with layout 1 every input and output but
 * the weights has the batch first, and each batch row runs alone. */
static const char *rule_rnn(const walk *w)
{
    if (ir_attr_int(w->n, "layout", 0) != 1)
        return "with layout 0 the batch is its axis 1";
    if (!in_batched(w, 0))
        return "its data input is not batched";
    for (int i = 1; i < w->n->n_in; i++) {
        bool per_row = i == 4 || i == 5 || i == 6; /* sequence_lens, initial_h/c */
        if (w->n->in[i] && in_batched(w, i) != per_row)
            return per_row ? "its sequence lengths or initial states are not batched"
                           : "its weights are batched";
    }
    return NULL;
}

/* The opset-23 transformer ops: RotaryEmbedding and Attention take the
 * batch on axis 0 of every input that has one (rules.h); a rotary cache
 * indexed by position ids, or an attention mask of rank below 4 (whose
 * axis 0 is not the batch), must not be batched. */
static const char *rule_transformer(const walk *w)
{
    const ir_node *n = w->n;
    if (!in_batched(w, 0))
        return "its data input is not batched";
    if (n->op == IR_OP_ROTARYEMBEDDING) {
        bool pos = n->n_in > 3 && n->in[3];
        if (pos && (in_batched(w, 1) || in_batched(w, 2)))
            return "its caches are indexed by position, not by batch";
        return NULL;
    }
    if (in_batched(w, 3) && in_rank(w, 3, NULL) != 4)
        return "its attention mask has no batch axis";
    return NULL;
}

/* NULL if node w->n maps item i of its batched inputs to item i of its
 * outputs, else the reason it does not (or may not). */
static const char *op_rule(const walk *w, int out_rank)
{
    const ir_node *n = w->n;
    int rank = in_rank(w, 0, NULL);
    switch (n->op) {
    case IR_OP_QUANTIZELINEAR:
    case IR_OP_DEQUANTIZELINEAR:
        return rule_quant(w);
    case IR_OP_BATCHNORM:
        if (ir_attr_int(n, "training_mode", 0) || n->n_out > 1)
            return "in training mode its statistics span the batch";
        return only_first_batched(w);
    case IR_OP_RESIZE: {
        const ir_attr *mode = ir_node_attr(n, "coordinate_transformation_mode");
        static const char crop[] = "tf_crop_and_resize";
        if (mode && mode->s.len == sizeof crop - 1 && !memcmp(mode->s.data, crop, mode->s.len))
            return "its region of interest may move along the batch axis";
        return only_first_batched(w);
    }
    case IR_OP_MAXPOOL:
        if (n->n_out > 1 && n->out[1] && n->out[1]->name[0])
            return "its Indices count across the whole batch";
        return only_first_batched(w);
    case IR_OP_CONV: case IR_OP_CONVTRANSPOSE: case IR_OP_QLINEARCONV:
    case IR_OP_CONVINTEGER: case IR_OP_AVERAGEPOOL:
    case IR_OP_GLOBALAVERAGEPOOL: case IR_OP_GLOBALMAXPOOL:
    case IR_OP_INSTANCENORM: case IR_OP_LRN: case IR_OP_DEPTHTOSPACE:
    case IR_OP_SPACETODEPTH: case IR_OP_EXPAND: case IR_OP_TILE:
    case IR_OP_IDENTITY: case IR_OP_DROPOUT: case IR_OP_RESHAPE:
        return only_first_batched(w);
    case IR_OP_TRILU:
        return rank >= 3 ? only_first_batched(w) : "the batch axis is a matrix axis";
    case IR_OP_PAD:
        return rule_pad(w);
    case IR_OP_GEMM: case IR_OP_QGEMM:
        return rule_gemm(w);
    /* recurrent layers (issue 19) */
    case IR_OP_RNN: case IR_OP_GRU: case IR_OP_LSTM:
        return rule_rnn(w);
    case IR_OP_MATMUL: case IR_OP_MATMULINTEGER: case IR_OP_MATMULINTEGERTOFLOAT:
        return rule_matmul(w, 0, 1, out_rank);
    case IR_OP_QLINEARMATMUL:
        return rule_matmul(w, 0, 3, out_rank);
    case IR_OP_SOFTMAX: case IR_OP_LOGSOFTMAX:
        if (axis_is_0(n, "axis", w->opset < 13 ? 1 : -1, rank))
            return "it normalizes along the batch axis";
        return only_first_batched(w);
    case IR_OP_LAYERNORM:
        if (axis_is_0(n, "axis", -1, rank))
            return "it normalizes along the batch axis";
        return only_first_batched(w);
    /* opset-23 transformer ops */
    case IR_OP_RMSNORM:
        if (axis_is_0(n, "axis", -1, rank))
            return "it normalizes along the batch axis";
        return only_first_batched(w);
    case IR_OP_ROTARYEMBEDDING: case IR_OP_ATTENTION:
        return rule_transformer(w);
    case IR_OP_FLATTEN:
        return axis_is_0(n, "axis", 1, rank) ? "it flattens the batch axis" : NULL;
    case IR_OP_ARGMAX: case IR_OP_ARGMIN:
        return axis_is_0(n, "axis", 0, rank) ? "it reduces over the batch axis" : NULL;
    case IR_OP_SPLIT:
        if (axis_is_0(n, "axis", 0, rank))
            return "it splits the batch axis";
        return only_first_batched(w);
    case IR_OP_CONCAT:
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] && !in_batched(w, i))
                return "it joins a batched tensor with an unbatched one";
        return axis_is_0(n, "axis", 0, rank) ? "it concatenates along the batch axis"
                                             : NULL;
    case IR_OP_GATHERELEMENTS:
        if (!in_batched(w, 0) || !in_batched(w, 1))
            return "only one of data and indices is batched";
        return axis_is_0(n, "axis", 0, rank) ? "it gathers along the batch axis" : NULL;
    case IR_OP_GATHER:
        return rule_gather(w);
    case IR_OP_REDUCEMEAN: case IR_OP_REDUCEMAX: case IR_OP_REDUCESUM:
    case IR_OP_REDUCEMIN: case IR_OP_REDUCEPROD: case IR_OP_REDUCEL1: case IR_OP_REDUCEL2:
    case IR_OP_REDUCELOGSUM: case IR_OP_REDUCELOGSUMEXP: case IR_OP_REDUCESUMSQUARE:
        return rule_reduce(w);
    case IR_OP_TRANSPOSE: {
        const ir_attr *p = ir_node_attr(n, "perm");
        bool keeps = p ? p->n > 0 && p->ints[0] == 0 : rank == 1;
        return keeps ? NULL : "it moves the batch axis";
    }
    case IR_OP_SQUEEZE: case IR_OP_UNSQUEEZE: {
        int64_t axes[OPS_MAX_RANK];
        int k = axes_of(n, 1, axes);
        if (k == -2)
            return "its axes are not constant";
        if (k == -1)
            return n->op == IR_OP_SQUEEZE ? NULL : "it has no axes";
        return axes_have_0(axes, k, n->op == IR_OP_SQUEEZE ? rank : out_rank)
                   ? "it removes or inserts axis 0" : NULL;
    }
    case IR_OP_SLICE:
        return rule_slice(w);
    case IR_OP_DYNAMICQUANTIZELINEAR:
        return "its scale is computed over the whole tensor, every item at once";
    default:
        if (ir_op_info_of(n->op)->flags & IR_OPF_ELEMENTWISE)
            return rule_elementwise(w, out_rank);
        return "it is not known to keep the items of the batch apart";
    }
}

/* ---- the proof ------------------------------------------------------------ */

/* Whether node p of the probe copy is node n: same op, inputs of the same
 * names. */
static bool same_node(const ir_node *n, const ir_node *p)
{
    if (!p || p->op != n->op || p->n_in != n->n_in)
        return false;
    for (int i = 0; i < n->n_in; i++) {
        if (!n->in[i] != !p->in[i])
            return false;
        if (n->in[i] && strcmp(n->in[i]->name, p->in[i]->name))
            return false;
    }
    return true;
}

static oct_status not_separable(oct_ctx *ctx, const ir_node *n, const cg_batch *b,
                                const char *why)
{
    return oct_node_error(ctx, OCT_EUNSUPPORTED, n,
                          "compile: symbolic dimension '%s' cannot be looped over at run "
                          "time: %s (%s); bind it with --input-shape NAME=DIMS", b->name,
                          n->op_type, why);
}

oct_status cg_batch_check(oct_ctx *ctx, const ir_model *m1, const ir_model *mp,
                          cg_batch *b)
{
    const ir_graph *g1 = m1->graph, *gp = mp->graph;
    uint8_t *bat = ir_alloc_array(ctx, g1->n_values ? g1->n_values : 1, 1);
    b->n_out = g1->n_outputs;
    b->out_batched = ir_alloc_array(ctx, b->n_out ? b->n_out : 1, sizeof *b->out_batched);
    if (!bat || !b->out_batched)
        return OCT_EINTERNAL;
    for (size_t i = 0, k = 0; i < g1->n_inputs; i++) {
        const ir_value *v = g1->inputs[i];
        if (v->init)
            continue;
        if (k < b->n_in && b->in_batched[k]) {
            const ir_value *t = ir_graph_find(gp, v->name);
            if (!t || !shapes_match(v, t, true))
                return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1, v->name,
                                 "compile: input '%s' does not take its batch on axis 0",
                                 v->name);
            bat[v->id] = 1;
        }
        k++;
    }
    int64_t opset = ir_model_opset(m1, "");
    for (size_t k = 0; k < g1->n_nodes; k++) {
        const ir_node *n = g1->nodes[k];
        bool any = false;
        for (int i = 0; i < n->n_in; i++)
            any = any || (n->in[i] && bat[n->in[i]->id]);
        for (int i = 0; i < n->n_in; i++) {
            const ir_value *v = n->in[i];
            if (!v || bat[v->id] || !v->init)
                continue;
            const ir_value *t = ir_graph_find(gp, v->name);
            bool ok = t && t->init && same_bytes(v->init, t->init);
            if (!ok && any && is_shape_operand(n, i) && t && t->init)
                ok = batch_shape_operand(v->init, t->init);
            if (!ok)
                return not_separable(ctx, n, b, "a constant operand depends on the batch");
        }
        int64_t od[OPS_MAX_RANK];
        int out_rank = n->n_out > 0 && n->out[0] ? shape_of(n->out[0], od) : -1;
        if (any) {
            walk w = {.n = n, .bat = bat, .opset = opset};
            const char *why = out_rank < 1 ? "its output has no batch axis" : op_rule(&w, out_rank);
            if (why)
                return not_separable(ctx, n, b, why);
        }
        for (int i = 0; i < n->n_out; i++) {
            const ir_value *v = n->out[i];
            if (!v || !v->name[0])
                continue;
            const ir_value *t = ir_graph_find(gp, v->name);
            if (!t || !same_node(n, t->producer) || !shapes_match(v, t, any))
                return not_separable(ctx, n, b, any ? "its output does not keep the batch "
                                     "on axis 0" : "an output depends on the batch");
            bat[v->id] = any;
        }
    }
    for (size_t i = 0; i < g1->n_outputs; i++)
        b->out_batched[i] = bat[g1->outputs[i]->id];
    return OCT_OK;
}
