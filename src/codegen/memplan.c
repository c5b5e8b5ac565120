/*
 * memplan.c: where every tensor of a compiled graph lives.  Graph inputs
 * and outputs are the caller's buffers, initializers are read-only
 * globals, and every intermediate gets an offset in one scratch buffer.
 * Placement is greedy best-fit by size: intermediates sorted largest
 * first, each at the lowest 64-byte-aligned offset that overlaps no
 * already placed tensor with an intersecting lifetime.  A lifetime runs
 * from the producing node to the last consuming node, inclusive, so a
 * node's output never shares bytes with its own inputs.
 */
#include <stdlib.h>
#include <string.h>

#include "codegen.h"

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

oct_status cg_plan_memory(oct_ctx *ctx, const ir_graph *g, cg_tensor *tens,
                          uint64_t *scratch_size)
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
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i] && n->out[i]->name[0] && tens[n->out[i]->id].first < 0)
                tens[n->out[i]->id].first = (int)k;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i])
                tens[n->in[i]->id].last = (int)k;
    }
    size_t n_scr = 0;
    cg_tensor **scr = ir_alloc_array(ctx, g->n_values ? g->n_values : 1, sizeof *scr);
    if (!scr)
        return OCT_EINTERNAL;
    for (size_t v = 0; v < g->n_values; v++) {
        cg_tensor *t = &tens[v];
        if (t->place != CG_PLACE_NONE || t->first < 0)
            continue;
        if (t->last < t->first)
            t->last = t->first; /* produced, never read: still written */
        t->place = CG_PLACE_SCRATCH;
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
    *scratch_size = peak;
    return OCT_OK;
}
