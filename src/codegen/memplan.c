/*
 * memplan.c: where every tensor of a compiled graph lives.  Graph inputs
 * and outputs are the caller's buffers, initializers are read-only
 * globals, and every intermediate gets an offset in one scratch buffer.
 * Placement is greedy best-fit by size: intermediates sorted largest
 * first, each at the lowest 64-byte-aligned offset that overlaps no
 * already placed tensor with an intersecting lifetime.  A lifetime runs
 * from the producing node to the last consuming node, inclusive, so a
 * node's output never shares bytes with its own inputs.  Values only a
 * fused run reads (fused) and FP8 weights a kernel widens itself
 * (absorbed, cg_plan_fp8_weights) get no memory.  A value a subgraph of
 * an If/Loop/Scan reads (IR_VAL_CAPTURED) lives to the end of the graph;
 * the subgraphs' own tensors are planned after this (cg_plan_control).
 *
 * Concat in place: when every dimension of a Concat's output before the
 * axis is 1, each input's bytes are one slice of the output.  An input
 * produced by a node into scratch and read by nothing but that Concat is
 * then placed at its slice (the producer writes straight into the output),
 * and the output's lifetime starts at the first such producer, so nothing
 * alive meanwhile overlaps any slice.  Inputs that are themselves Concat
 * outputs holding slices are left alone (no chains).
 */
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"

static uint64_t align_up(uint64_t v)
{
    return (v + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
}

static int by_size_desc(const void *x, const void *y)
{
    const cg_tensor *a = *(cg_tensor *const *)x, *b = *(cg_tensor *const *)y;
    if (a->nbytes != b->nbytes)
        return a->nbytes < b->nbytes ? 1 : -1;
    return (a->first > b->first) - (a->first < b->first);
}

/* Whether Concat node n's inputs are slices of its output y in order
 * (the checks cg_lower_concat makes, plus outer dimensions of 1). */
static bool concat_slices(const ir_node *n, const cg_tensor *tens, const cg_tensor *y)
{
    int axis;
    if (!ops_norm_axis(ir_attr_int(n, "axis", 0), y->rank, &axis))
        return false;
    for (int d = 0; d < axis; d++)
        if (y->dims[d] != 1)
            return false;
    int64_t along = 0;
    for (int i = 0; i < n->n_in; i++) {
        if (!n->in[i])
            return false;
        const cg_tensor *x = &tens[n->in[i]->id];
        if (x->rank != y->rank || x->dtype != y->dtype)
            return false;
        for (int d = 0; d < y->rank; d++)
            if (d != axis && x->dims[d] != y->dims[d])
                return false;
        along += x->dims[axis];
    }
    return along == y->dims[axis];
}

/* Places Concat input x in the Concat's output y (value y_id) at offset at. */
static void place_in(cg_tensor *x, cg_tensor *y, size_t y_id, uint64_t at)
{
    x->in_concat = true;
    x->concat_out = y_id;
    x->concat_off = at;
    y->has_parts = true;
    if (x->first < y->first)
        y->first = x->first;
}

/* An NHWC Concat along the channels (the layout plan, layout.c): each
 * input a QLinearConv writes and only the Concat reads is a channel slice
 * of the output, at its channel offset, whose pixels the convolution
 * writes at the output's pixel stride (lower_qlinear.c). */
static void plan_nhwc_concat(const ir_node *n, cg_tensor *tens, cg_tensor *y, const int *uses)
{
    int axis;
    if (y->place != CG_PLACE_NONE || y->first < 0 || y->in_concat ||
        !ops_norm_axis(ir_attr_int(n, "axis", 0), y->rank, &axis) || axis != 1)
        return;
    uint64_t at = 0; /* every input is there and NHWC (cg_plan_layouts) */
    for (int i = 0; i < n->n_in; i++) {
        cg_tensor *x = &tens[n->in[i]->id];
        if (x->place == CG_PLACE_NONE && x->first >= 0 && uses[n->in[i]->id] == 1 &&
            x->nhwc && !x->has_parts && !x->in_concat && n->in[i]->producer &&
            n->in[i]->producer->op == IR_OP_QLINEARCONV)
            place_in(x, y, n->out[0]->id, at);
        at += (uint64_t)x->dims[1];
    }
}

/* Marks the Concat inputs placed in their output (file comment); uses[v]
 * counts the reads of value v (graph outputs included). */
static void plan_concats(const ir_graph *g, cg_tensor *tens, const int *uses)
{
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        if (n->op != IR_OP_CONCAT || n->n_out < 1 || !n->out[0])
            continue;
        cg_tensor *y = &tens[n->out[0]->id];
        if (y->nhwc) {
            plan_nhwc_concat(n, tens, y, uses);
            continue;
        }
        if (y->place != CG_PLACE_NONE || y->first < 0 || y->in_concat || y->dyn ||
            !concat_slices(n, tens, y))
            continue;
        uint64_t at = 0;
        for (int i = 0; i < n->n_in; i++) {
            cg_tensor *x = &tens[n->in[i]->id];
            if (x->place == CG_PLACE_NONE && x->first >= 0 && uses[n->in[i]->id] == 1 &&
                !x->has_parts && !x->in_concat && !x->dyn)
                place_in(x, y, n->out[0]->id, at);
            at += x->nbytes;
        }
    }
}

oct_status cg_plan_memory(oct_ctx *ctx, const ir_graph *g, const int (*span)[2],
                          cg_tensor *tens, uint64_t *scratch_size)
{
    size_t n_nodes = g->n_nodes;
    for (size_t v = 0; v < g->n_values; v++) {
        tens[v].first = -1;
        tens[v].last = -1;
    }
    int slot = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->init) {
            tens[g->inputs[i]->id].place = CG_PLACE_INPUT;
            tens[g->inputs[i]->id].index = slot++;
        }
    for (size_t i = 0; i < g->n_values; i++)
        if (g->values[i]->init)
            tens[i].place = CG_PLACE_CONST;
    for (size_t i = 0; i < g->n_outputs; i++) {
        cg_tensor *t = &tens[g->outputs[i]->id];
        if (t->place == CG_PLACE_NONE) {
            t->place = CG_PLACE_OUTPUT;
            t->index = (int)i;
        }
    }
    for (size_t k = 0; k < n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        /* a fused run reads and writes all its values in one loop */
        int lo = span ? span[k][0] : (int)k, hi = span ? span[k][1] : (int)k;
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i] && n->out[i]->name[0] && tens[n->out[i]->id].first < 0)
                tens[n->out[i]->id].first = lo;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] && tens[n->in[i]->id].last < hi)
                tens[n->in[i]->id].last = hi;
    }
    /* a value a subgraph reads (If, Loop, Scan: lower_control.c) lives to
     * the end: its readers are not among the node inputs */
    for (size_t v = 0; v < g->n_values; v++)
        if ((g->values[v]->flags & IR_VAL_CAPTURED) && tens[v].first >= 0)
            tens[v].last = n_nodes ? (int)n_nodes - 1 : 0;
    int *uses = ir_alloc_array(ctx, g->n_values ? g->n_values : 1, sizeof *uses);
    if (!uses)
        return OCT_EINTERNAL;
    for (size_t k = 0; k < n_nodes; k++)
        for (int i = 0; i < g->nodes[k]->n_in; i++)
            if (g->nodes[k]->in[i])
                uses[g->nodes[k]->in[i]->id]++;
    for (size_t i = 0; i < g->n_outputs; i++)
        uses[g->outputs[i]->id]++;
    plan_concats(g, tens, uses);
    size_t n_scr = 0;
    cg_tensor **scr = ir_alloc_array(ctx, g->n_values ? g->n_values : 1, sizeof *scr);
    if (!scr)
        return OCT_EINTERNAL;
    for (size_t v = 0; v < g->n_values; v++) {
        cg_tensor *t = &tens[v];
        if (t->place != CG_PLACE_NONE || t->first < 0 || t->in_concat || t->fused ||
            t->absorbed)
            continue;
        if (t->last < t->first)
            t->last = t->first; /* produced, never read: still written */
        t->place = CG_PLACE_SCRATCH;
        if (!t->dyn) /* a run-time size: placed by the entry (compile.c) */
            scr[n_scr++] = t;
    }
    qsort(scr, n_scr, sizeof *scr, by_size_desc);
    uint64_t peak = 0;
    for (size_t i = 0; i < n_scr; i++) {
        cg_tensor *t = scr[i];
        uint64_t size = align_up(t->nbytes ? t->nbytes : 1), off = 0;
        /* first fit over the placed tensors that are alive at the same
         * time; restart the scan whenever the candidate moves */
        bool moved = true;
        while (moved) {
            moved = false;
            for (size_t j = 0; j < i; j++) {
                const cg_tensor *o = scr[j];
                if (o->last < t->first || t->last < o->first)
                    continue;
                uint64_t osize = align_up(o->nbytes ? o->nbytes : 1);
                if (off < o->offset + osize && o->offset < off + size) {
                    off = o->offset + osize;
                    moved = true;
                }
            }
        }
        t->offset = off;
        if (off + size > peak)
            peak = off + size;
    }
    for (size_t v = 0; v < g->n_values; v++)
        if (tens[v].in_concat) {
            tens[v].place = CG_PLACE_SCRATCH;
            tens[v].offset = tens[tens[v].concat_out].offset + tens[v].concat_off;
        }
    *scratch_size = peak;
    return OCT_OK;
}
