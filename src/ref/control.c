/*
 * control.c: the reference kernels of If, Loop and Scan (opset 9+ form).
 * Their output shapes are what the bodies compute, so they do not go
 * through the shape-rule-then-kernel path of ref_eval_node: the graph
 * runner (interp.c) calls ref_control_run with the node's frame, and each
 * body runs as a subgraph below it (ref_run_subgraph), reading outer-scope
 * values by name.  Semantics follow the ONNX operator spec:
 *   If    runs then_branch or else_branch on the single-element bool cond.
 *   Loop  inputs M (int64 trip count, optional), cond (bool, optional),
 *         loop-carried v_initial...; body(i, cond, v...) -> (cond, v...,
 *         scan outputs...); runs while i < M and cond; the final carried
 *         values, then each scan output stacked along a new axis 0.
 *   Scan  inputs states..., scan inputs...; iteration t slices every scan
 *         input at t (or L-1-t when its direction is reverse) along its
 *         scan_input_axes axis; body(states..., slices...) -> (states...,
 *         scan outputs...); scan outputs stacked along scan_output_axes,
 *         in reverse order when scan_output_directions says so.
 *         Opset 8's Scan has a batch axis 0 and an optional sequence_lens
 *         first: each batch entry is scanned along axis 1 (run_scan8).
 * Slicing and stacking copy whole elements: byte-sized element types only
 * (no sub-byte or string tensors in bodies' scanned values).
 */
#include <string.h>

#include "ref/dispatch.h"

/* Reached only through ref_eval_node (one node without its graph, as
 * constant folding would): the bodies may read outer-scope values it does
 * not have.  Constant folding skips nodes with subgraphs. */
oct_status ref_control(ref_call *call)
{
    return oct_node_error(call->ctx, OCT_EUNSUPPORTED, call->node,
                          "%s runs only as part of a graph (its bodies read "
                          "outer-scope values)", call->node->op_type);
}

static ir_tensor *copy_of(oct_ctx *ctx, const ir_tensor *src)
{
    ir_tensor *t = ir_heap_tensor_new(ctx, src->dtype, src->rank, src->dims);
    if (t && t->nbytes)
        memcpy(t->data, src->data, t->nbytes);
    return t;
}

static bool read_bool(const ir_tensor *t, bool *out)
{
    if (!t || t->nelems != 1)
        return false;
    switch (t->dtype) {
    case IR_DT_BOOL: case IR_DT_UINT8: case IR_DT_INT8:
        *out = ((const uint8_t *)t->data)[0] != 0;
        return true;
    default:
        return false;
    }
}

/* Bytes of one element of a type slicing and stacking can move. */
static oct_status elem_size(oct_ctx *ctx, const ir_node *n, const ir_tensor *t,
                            size_t *size)
{
    const ir_dtype_traits *tr = ir_dtype_info(t->dtype);
    if (tr->kind == IR_DK_STRING || tr->bits == 0 || tr->bits % 8)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "%s of %s tensors is "
                              "not supported (byte-sized element types only)",
                              n->op_type, ir_dtype_name(t->dtype));
    *size = tr->bits / 8;
    return OCT_OK;
}

/* ---- If ------------------------------------------------------------------- */

static oct_status run_if(oct_ctx *ctx, const ref_frame *fr, const ir_node *n,
                         int64_t opset, const ops_control *c,
                         const ir_tensor *const *in, ir_tensor **out)
{
    bool cond;
    if (!read_bool(in[0], &cond))
        return oct_input_error(ctx, OCT_EINPUT, n, 0, "If's cond must be one "
                               "bool element");
    const ir_graph *branch = cond ? c->body : c->other;
    ir_tensor *res[OPS_MAX_IO];
    oct_status st = ref_run_subgraph(ctx, fr, branch, opset, NULL, res);
    if (st)
        return st;
    for (int i = 0; i < n->n_out; i++)
        out[i] = res[i];
    return OCT_OK;
}

/* ---- stacking the per-iteration scan outputs ------------------------------- */

/* Stacks count tensors of equal type and shape along a new axis `axis`;
 * element t goes to position (reverse ? count-1-t : t).  With count 0 the
 * result has the declared element type and shape of `decl` (unknown dims
 * 0) and a 0 at axis. */
static oct_status stack(oct_ctx *ctx, const ir_node *n, int oi,
                        ir_tensor *const *parts, size_t count, int64_t axis,
                        bool reverse, const ir_value *decl, ir_tensor **out)
{
    int64_t dims[IR_HEAP_MAX_RANK];
    if (count == 0) {
        int rank = decl->has_type && decl->type.rank >= 0 ? decl->type.rank : 0;
        ir_dtype dt = decl->has_type && ir_dtype_valid(decl->type.dtype)
                    ? decl->type.dtype : IR_DT_FLOAT;
        if (rank + 1 > IR_HEAP_MAX_RANK)
            return oct_output_error(ctx, OCT_EUNSUPPORTED, n, oi, "rank too big");
        if (axis < 0)
            axis += rank + 1;
        if (axis < 0 || axis > rank)
            axis = 0;
        for (int d = 0, s = 0; d <= rank; d++)
            dims[d] = d == axis ? 0
                    : (decl->type.dims && decl->type.dims[s].value > 0
                           ? decl->type.dims[s++].value : (s++, 0));
        *out = ir_heap_tensor_new(ctx, dt, rank + 1, dims);
        return *out ? OCT_OK : OCT_EINTERNAL;
    }
    const ir_tensor *p0 = parts[0];
    if (p0->rank + 1 > IR_HEAP_MAX_RANK)
        return oct_output_error(ctx, OCT_EUNSUPPORTED, n, oi, "rank too big");
    if (axis < 0)
        axis += p0->rank + 1;
    if (axis < 0 || axis > p0->rank)
        return oct_output_error(ctx, OCT_EINPUT, n, oi, "scan output axis out of "
                                "range for rank %d", p0->rank + 1);
    for (size_t t = 1; t < count; t++) {
        bool same = parts[t]->dtype == p0->dtype && parts[t]->rank == p0->rank;
        for (int d = 0; same && d < p0->rank; d++)
            same = parts[t]->dims[d] == p0->dims[d];
        if (!same)
            return oct_output_error(ctx, OCT_EINPUT, n, oi, "the body's scan "
                                    "output changes type or shape at iteration "
                                    "%zu", t);
    }
    size_t esize;
    oct_status st = elem_size(ctx, n, p0, &esize);
    if (st)
        return st;
    uint64_t outer = 1, inner = esize;
    for (int d = 0, s = 0; d <= p0->rank; d++) {
        dims[d] = d == axis ? (int64_t)count : p0->dims[s++];
        if (d < axis)
            outer *= (uint64_t)dims[d];
        else if (d > axis)
            inner *= (uint64_t)dims[d];
    }
    ir_tensor *r = ir_heap_tensor_new(ctx, p0->dtype, p0->rank + 1, dims);
    if (!r)
        return OCT_EINTERNAL;
    for (size_t t = 0; t < count; t++) {
        size_t pos = reverse ? count - 1 - t : t;
        const uint8_t *src = parts[t]->data;
        uint8_t *dst = r->data;
        for (uint64_t o = 0; o < outer; o++)
            memcpy(dst + (o * count + pos) * inner, src + o * inner, inner);
    }
    *out = r;
    return OCT_OK;
}

/* A growing list of per-iteration tensors. */
typedef struct parts {
    ir_tensor **t;
    size_t n, cap;
} parts;

static bool parts_push(oct_ctx *ctx, parts *p, ir_tensor *t)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        ir_tensor **nt = oct_realloc(ctx, p->t, p->cap * sizeof *nt, cap * sizeof *nt);
        if (!nt)
            return false;
        p->t = nt;
        p->cap = cap;
    }
    p->t[p->n++] = t;
    return true;
}

static void parts_free(oct_ctx *ctx, parts *p, int count)
{
    for (int k = 0; k < count; k++) {
        for (size_t i = 0; i < p[k].n; i++)
            ir_heap_tensor_free(ctx, p[k].t[i]);
        oct_free(ctx, p[k].t, p[k].cap * sizeof *p[k].t);
    }
}

/* ---- Loop ------------------------------------------------------------------ */

static oct_status run_loop(oct_ctx *ctx, const ref_frame *fr, const ir_node *n,
                           int64_t opset, const ops_control *c,
                           const ir_tensor *const *in, ir_tensor **out)
{
    int ns = c->n_state, nk = c->n_scan_out;
    bool have_m = n->n_in > 0 && in[0], cond = true;
    int64_t trip = 0;
    if (have_m) {
        if (in[0]->nelems != 1 || in[0]->dtype != IR_DT_INT64)
            return oct_input_error(ctx, OCT_EINPUT, n, 0, "Loop's M must be one "
                                   "int64 element");
        trip = ((const int64_t *)in[0]->data)[0];
    }
    bool have_cond = n->n_in > 1 && in[1];
    if (have_cond && !read_bool(in[1], &cond))
        return oct_input_error(ctx, OCT_EINPUT, n, 1, "Loop's cond must be one "
                               "bool element");
    if (!have_m && !have_cond)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "Loop with neither a "
                              "trip count nor a condition never ends");
    const ir_tensor *state[OPS_MAX_IO];
    bool owned[OPS_MAX_IO] = {0};
    for (int k = 0; k < ns; k++)
        state[k] = in[2 + k];
    parts scans[OPS_MAX_IO];
    memset(scans, 0, sizeof scans);
    int64_t zero = 0;
    ir_tensor *iter = ir_heap_tensor_new(ctx, IR_DT_INT64, 0, &zero);
    ir_tensor *cond_t = ir_heap_tensor_new(ctx, IR_DT_BOOL, 0, &zero);
    oct_status st = iter && cond_t ? OCT_OK : OCT_EINTERNAL;
    ir_tensor *res[OPS_MAX_IO];
    for (int64_t i = 0; st == OCT_OK && (!have_m || i < trip) && cond; i++) {
        ((int64_t *)iter->data)[0] = i;
        ((uint8_t *)cond_t->data)[0] = cond;
        const ir_tensor *body_in[OPS_MAX_IO];
        body_in[0] = iter;
        body_in[1] = cond_t;
        for (int k = 0; k < ns; k++)
            body_in[2 + k] = state[k];
        if ((st = ref_run_subgraph(ctx, fr, c->body, opset, body_in, res)))
            break;
        if (!read_bool(res[0], &cond))
            st = oct_node_error(ctx, OCT_EINPUT, n, "the body's cond output must "
                                "be one bool element");
        ir_heap_tensor_free(ctx, res[0]);
        for (int k = 0; k < ns; k++) {
            if (owned[k])
                ir_heap_tensor_free(ctx, (ir_tensor *)state[k]);
            state[k] = res[1 + k];
            owned[k] = true;
        }
        for (int k = 0; k < nk; k++)
            if (st == OCT_OK && !parts_push(ctx, &scans[k], res[1 + ns + k]))
                st = OCT_EINTERNAL;
            else if (st != OCT_OK)
                ir_heap_tensor_free(ctx, res[1 + ns + k]);
    }
    for (int k = 0; k < ns && st == OCT_OK; k++) {
        out[k] = owned[k] ? (ir_tensor *)state[k] : copy_of(ctx, state[k]);
        if (!out[k])
            st = OCT_EINTERNAL;
        owned[k] = false;
    }
    for (int k = 0; k < nk && st == OCT_OK; k++)
        st = stack(ctx, n, ns + k, scans[k].t, scans[k].n, 0, false,
                   c->body->outputs[1 + ns + k], &out[ns + k]);
    for (int k = 0; k < ns; k++)
        if (owned[k])
            ir_heap_tensor_free(ctx, (ir_tensor *)state[k]);
    parts_free(ctx, scans, nk);
    ir_heap_tensor_free(ctx, iter);
    ir_heap_tensor_free(ctx, cond_t);
    return st;
}

/* ---- Scan ------------------------------------------------------------------ */

static int64_t list_at(const ir_node *n, const char *name, int i, int64_t dflt)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_INTS && (size_t)i < a->n ? a->ints[i] : dflt;
}

/* Slice `pos` of t along axis: a tensor of rank t->rank - 1. */
static ir_tensor *slice_at(oct_ctx *ctx, const ir_tensor *t, int axis, int64_t pos,
                           size_t esize)
{
    int64_t dims[IR_HEAP_MAX_RANK] = {0};
    uint64_t outer = 1, inner = esize;
    for (int d = 0, s = 0; d < t->rank; d++) {
        if (d < axis)
            outer *= (uint64_t)t->dims[d];
        else if (d > axis)
            inner *= (uint64_t)t->dims[d];
        if (d != axis)
            dims[s++] = t->dims[d];
    }
    ir_tensor *r = ir_heap_tensor_new(ctx, t->dtype, t->rank - 1, dims);
    if (!r)
        return NULL;
    uint64_t len = (uint64_t)t->dims[axis];
    for (uint64_t o = 0; o < outer; o++)
        memcpy((uint8_t *)r->data + o * inner,
               (const uint8_t *)t->data + (o * len + (uint64_t)pos) * inner, inner);
    return r;
}

/* One Scan over states in[0..ns) and scan inputs in[ns..ns+nsi).  v8: the
 * opset 8 form for one batch entry (axes 0, input directions from
 * `directions`, outputs stacked forward along axis 0). */
static oct_status scan_core(oct_ctx *ctx, const ref_frame *fr, const ir_node *n,
                            int64_t opset, const ops_control *c, bool v8,
                            const ir_tensor *const *in, ir_tensor **out)
{
    int ns = c->n_state, nsi = c->n_scan_in, nk = c->n_scan_out;
    int axes[OPS_MAX_IO];
    size_t esize[OPS_MAX_IO];
    int64_t len = -1;
    for (int j = 0; j < nsi; j++) {
        const ir_tensor *x = in[ns + j];
        if (!x)
            return oct_input_error(ctx, OCT_EINPUT, n, ns + j, "scan input missing");
        int64_t ax = v8 ? 0 : list_at(n, "scan_input_axes", j, 0);
        if (ax < 0)
            ax += x->rank;
        if (ax < 0 || ax >= x->rank)
            return oct_input_error(ctx, OCT_EINPUT, n, ns + j, "scan_input_axes"
                                   "[%d] is out of range for rank %d", j, x->rank);
        axes[j] = (int)ax;
        if (len >= 0 && x->dims[ax] != len)
            return oct_input_error(ctx, OCT_EINPUT, n, ns + j, "scan inputs "
                                   "disagree on the sequence length (%lld and "
                                   "%lld)", (long long)len, (long long)x->dims[ax]);
        len = x->dims[ax];
        oct_status st = elem_size(ctx, n, x, &esize[j]);
        if (st)
            return st;
    }
    const ir_tensor *state[OPS_MAX_IO];
    bool owned[OPS_MAX_IO] = {0};
    for (int k = 0; k < ns; k++)
        state[k] = in[k];
    parts scans[OPS_MAX_IO];
    memset(scans, 0, sizeof scans);
    oct_status st = OCT_OK;
    ir_tensor *res[OPS_MAX_IO];
    for (int64_t t = 0; t < len && st == OCT_OK; t++) {
        const ir_tensor *body_in[OPS_MAX_IO];
        ir_tensor *slices[OPS_MAX_IO] = {0};
        for (int k = 0; k < ns; k++)
            body_in[k] = state[k];
        for (int j = 0; j < nsi && st == OCT_OK; j++) {
            bool rev = list_at(n, v8 ? "directions" : "scan_input_directions",
                               j, 0) != 0;
            slices[j] = slice_at(ctx, in[ns + j], axes[j], rev ? len - 1 - t : t,
                                 esize[j]);
            body_in[ns + j] = slices[j];
            if (!slices[j])
                st = OCT_EINTERNAL;
        }
        if (st == OCT_OK)
            st = ref_run_subgraph(ctx, fr, c->body, opset, body_in, res);
        for (int j = 0; j < nsi; j++)
            ir_heap_tensor_free(ctx, slices[j]);
        if (st)
            break;
        for (int k = 0; k < ns; k++) {
            if (owned[k])
                ir_heap_tensor_free(ctx, (ir_tensor *)state[k]);
            state[k] = res[k];
            owned[k] = true;
        }
        for (int k = 0; k < nk; k++)
            if (st == OCT_OK && !parts_push(ctx, &scans[k], res[ns + k]))
                st = OCT_EINTERNAL;
            else if (st != OCT_OK)
                ir_heap_tensor_free(ctx, res[ns + k]);
    }
    for (int k = 0; k < ns && st == OCT_OK; k++) {
        out[k] = owned[k] ? (ir_tensor *)state[k] : copy_of(ctx, state[k]);
        if (!out[k])
            st = OCT_EINTERNAL;
        owned[k] = false;
    }
    for (int k = 0; k < nk && st == OCT_OK; k++)
        st = stack(ctx, n, ns + k, scans[k].t, scans[k].n,
                   v8 ? 0 : list_at(n, "scan_output_axes", k, 0),
                   !v8 && list_at(n, "scan_output_directions", k, 0) != 0,
                   c->body->outputs[ns + k], &out[ns + k]);
    for (int k = 0; k < ns; k++)
        if (owned[k])
            ir_heap_tensor_free(ctx, (ir_tensor *)state[k]);
    parts_free(ctx, scans, nk);
    return st;
}

/* A copy of t with `rows` entries along axis 0: its first rows, then
 * zeros past t's own (NULL when out of memory). */
static ir_tensor *resize_rows(oct_ctx *ctx, const ir_tensor *t, int64_t rows, size_t esize)
{
    int64_t dims[IR_HEAP_MAX_RANK];
    memcpy(dims, t->dims, (size_t)t->rank * sizeof *dims);
    dims[0] = rows;
    ir_tensor *r = ir_heap_tensor_new(ctx, t->dtype, t->rank, dims);
    if (!r)
        return NULL;
    uint64_t row = t->dims[0] ? t->nelems / (uint64_t)t->dims[0] * esize : 0;
    uint64_t keep = (uint64_t)(rows < t->dims[0] ? rows : t->dims[0]) * row;
    if (keep)
        memcpy(r->data, t->data, keep);
    return r;
}

/* Entry b of sequence_lens (int64, or int32 as earlier Octet accepted). */
static int64_t seq_len_at(const ir_tensor *lens, uint64_t b)
{
    return lens->dtype == IR_DT_INT32 ? ((const int32_t *)lens->data)[b]
                                      : ((const int64_t *)lens->data)[b];
}

/* Scan of opset 8: in[0] the optional sequence_lens, then states and scan
 * inputs, all with a leading batch axis; each batch entry is one scan
 * (sequence axis 1), and the outputs are the entries' results stacked
 * along the batch axis.  Entry b runs sequence_lens[b] steps (all L
 * without sequence_lens): the scan inputs' first sequence_lens[b] slices,
 * a reverse direction starting at slice sequence_lens[b]-1; its final
 * states are those after its last step, and its scan output rows past
 * sequence_lens[b] are zeros (as ONNX Runtime does; the spec leaves them
 * unsaid).  An entry outside [1, L] is refused, as ONNX Runtime does. */
static oct_status run_scan8(oct_ctx *ctx, const ref_frame *fr, const ir_node *n,
                            int64_t opset, const ops_control *c,
                            const ir_tensor *const *in, ir_tensor **out)
{
    int nb_in = c->n_state + c->n_scan_in;
    const ir_tensor *const *data = in + 1;
    const ir_tensor *x0 = data[c->n_state];
    for (int j = 0; j < nb_in; j++)
        if (!data[j] || data[j]->rank < 1 + (j >= c->n_state) ||
            data[j]->dims[0] != x0->dims[0] ||
            (j >= c->n_state && data[j]->dims[1] != x0->dims[1]))
            return oct_input_error(ctx, OCT_EINPUT, n, 1 + j, "opset 8 Scan "
                                   "inputs need a common batch axis 0 (and scan "
                                   "inputs a common sequence axis 1)");
    const ir_tensor *lens = in[0];
    int64_t full = x0->dims[1];
    if (lens && ((lens->dtype != IR_DT_INT64 && lens->dtype != IR_DT_INT32) ||
                 lens->nelems != (uint64_t)x0->dims[0]))
        return oct_input_error(ctx, OCT_EINPUT, n, 0, "sequence_lens must be int64 with "
                               "one entry per batch entry (%lld)", (long long)x0->dims[0]);
    for (uint64_t b = 0; lens && b < lens->nelems; b++) {
        int64_t l = seq_len_at(lens, b);
        if (l < 1 || l > full)
            return oct_input_error(ctx, OCT_EINPUT, n, 0, "sequence_lens[%llu] is %lld, "
                                   "outside [1, %lld] (the scan inputs' sequence axis)",
                                   (unsigned long long)b, (long long)l, (long long)full);
    }
    parts per_out[OPS_MAX_IO];
    memset(per_out, 0, sizeof per_out);
    oct_status st = OCT_OK;
    for (int64_t b = 0; b < x0->dims[0] && st == OCT_OK; b++) {
        int64_t len = lens ? seq_len_at(lens, (uint64_t)b) : full;
        ir_tensor *slice[OPS_MAX_IO] = {0}, *res[OPS_MAX_IO] = {0};
        size_t es[OPS_MAX_IO];
        for (int j = 0; j < nb_in && st == OCT_OK; j++) {
            st = elem_size(ctx, n, data[j], &es[j]);
            if (st == OCT_OK && !(slice[j] = slice_at(ctx, data[j], 0, b, es[j])))
                st = OCT_EINTERNAL;
            if (st == OCT_OK && j >= c->n_state && len < full) { /* its first len steps */
                ir_tensor *head = resize_rows(ctx, slice[j], len, es[j]);
                ir_heap_tensor_free(ctx, slice[j]);
                if (!(slice[j] = head))
                    st = OCT_EINTERNAL;
            }
        }
        if (st == OCT_OK)
            st = scan_core(ctx, fr, n, opset, c, true,
                           (const ir_tensor *const *)slice, res);
        for (int j = 0; j < nb_in; j++)
            ir_heap_tensor_free(ctx, slice[j]);
        for (int k = c->n_state; k < n->n_out && st == OCT_OK && len < full; k++) {
            size_t esk; /* scan output rows past len: zeros */
            st = elem_size(ctx, n, res[k], &esk);
            ir_tensor *padded = st == OCT_OK ? resize_rows(ctx, res[k], full, esk) : NULL;
            if (st == OCT_OK && !padded)
                st = OCT_EINTERNAL;
            if (st == OCT_OK) {
                ir_heap_tensor_free(ctx, res[k]);
                res[k] = padded;
            }
        }
        for (int k = 0; k < n->n_out; k++)
            if (st == OCT_OK && !parts_push(ctx, &per_out[k], res[k]))
                st = OCT_EINTERNAL;
            else if (st != OCT_OK)
                ir_heap_tensor_free(ctx, res[k]);
    }
    for (int k = 0; k < n->n_out && st == OCT_OK; k++)
        st = stack(ctx, n, k, per_out[k].t, per_out[k].n, 0, false,
                   c->body->outputs[k], &out[k]);
    parts_free(ctx, per_out, n->n_out);
    return st;
}

oct_status ref_control_run(oct_ctx *ctx, const ref_frame *fr, const ir_node *n,
                           int64_t opset, const ir_tensor *const *in,
                           ir_tensor **out)
{
    for (int i = 0; i < n->n_out; i++)
        out[i] = NULL;
    ops_control c;
    oct_status st = ops_control_check(ctx, n, opset, &c);
    if (st)
        return st;
    if (n->op == IR_OP_IF)
        st = run_if(ctx, fr, n, opset, &c, in, out);
    else if (n->op == IR_OP_LOOP)
        st = run_loop(ctx, fr, n, opset, &c, in, out);
    else if (opset < 9)
        st = run_scan8(ctx, fr, n, opset, &c, in, out);
    else
        st = scan_core(ctx, fr, n, opset, &c, false, in, out);
    if (st != OCT_OK)
        for (int i = 0; i < n->n_out; i++) {
            ir_heap_tensor_free(ctx, out[i]);
            out[i] = NULL;
        }
    /* outputs the node does not name ("") are not kept */
    for (int i = 0; i < n->n_out && st == OCT_OK; i++)
        if (!n->out[i]) {
            ir_heap_tensor_free(ctx, out[i]);
            out[i] = NULL;
        }
    return st;
}
