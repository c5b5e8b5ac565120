/*
 * kvcache.c: the in-place key/value cache of decode graphs (cg_options
 * kv_inplace, `octet compile --kv-cache=inplace`).
 *
 * A decode graph in the convention of ONNX Runtime GenAI / Hugging Face
 * Optimum computes each layer's present.{l}.key/value [1,H,P+T,D] as
 * Concat(past_key_values.{l}.key/value [1,H,P,D], new [1,H,T,D], axis 2).
 * Run as written, every step copies the whole cache twice: into present
 * inside the graph, and back into the past feed outside it.  Compiled with
 * the in-place cache, each such present output buffer is the cache itself,
 * kept by the caller from step to step: its first P slots of every head
 * already hold the past, so the Concat writes only the new token's slots
 * (cg_lower_concat skips input 0 of an output marked kv_cache) and the
 * past input is never read.  The caller then moves slot P into the next
 * free slot (T * H * D elements per layer and kind: O(new tokens)).
 *
 * cg_plan_kv_cache recognises the pattern by names and structure and says
 * why when a graph does not have it; the compile is then refused (the
 * caller asked for the in-place cache), never silently done as written.
 */
#include <stdio.h>
#include <string.h>

#include "codegen/codegen_module.h"
#include "ir/kvnames.h"
#include "ops/rules.h"

/* The layer and kind (0 key, 1 value) of a past input name; false if the
 * name is not one. */
static bool past_name(const char *name, long *layer, int *kind)
{
    if ((*layer = ir_kv_layer_of(name, "past_key_values.", ".key")) >= 0)
        return *kind = 0, true;
    if ((*layer = ir_kv_layer_of(name, "past_key_values.", ".value")) >= 0)
        return *kind = 1, true;
    return false;
}

static oct_status not_inplace(oct_ctx *ctx, const ir_node *n, const char *tensor,
                              const char *why)
{
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, n, 0, -1, tensor,
                     "compile: --kv-cache=inplace: %s; the in-place cache needs each "
                     "past_key_values.{l}.key/value input [1,H,P,D] read only by a "
                     "Concat on axis 2 whose output is the graph output "
                     "present.{l}.key/value [1,H,P+T,D] (compile without "
                     "--kv-cache to run the graph as written)", why);
}

/* The graph output slot of value v, or -1 (-2 if it is listed twice). */
static int output_slot(const ir_graph *g, const ir_value *v)
{
    int slot = -1;
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v)
            slot = slot < 0 ? (int)i : -2;
    return slot;
}

oct_status cg_plan_kv_cache(cg_module *cm)
{
    oct_ctx *ctx = cm->ctx;
    const ir_graph *g = cm->model->graph;
    if (cm->batch)
        return not_inplace(ctx, NULL, NULL, "the model has a symbolic batch (bind it "
                           "with --input-shape)");
    size_t n_past = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        long l;
        int kind;
        n_past += !g->inputs[i]->init && past_name(g->inputs[i]->name, &l, &kind);
    }
    if (!n_past)
        return not_inplace(ctx, NULL, NULL, "the graph has no input named "
                           "past_key_values.{l}.key or .value");
    cm->kv = ir_alloc_array(ctx, n_past, sizeof *cm->kv);
    if (!cm->kv)
        return OCT_EINTERNAL;
    char why[256];
    for (size_t i = 0, slot = 0; i < g->n_inputs; i++) {
        const ir_value *past = g->inputs[i];
        if (past->init)
            continue;
        int in_slot = (int)slot++;
        long layer;
        int kind;
        if (!past_name(past->name, &layer, &kind))
            continue;
        /* its readers: exactly one, a Concat, as input 0 only */
        const ir_node *cat = NULL;
        int reads = 0;
        bool first = false;
        for (size_t k = 0; k < g->n_nodes; k++)
            for (int j = 0; j < g->nodes[k]->n_in; j++)
                if (g->nodes[k]->in[j] == past) {
                    reads++;
                    cat = g->nodes[k];
                    first = j == 0;
                }
        if (output_slot(g, past) != -1)
            return not_inplace(ctx, NULL, past->name, "the past input is also a graph "
                               "output");
        if (reads != 1 || cat->op != IR_OP_CONCAT || !first) {
            snprintf(why, sizeof why, "input '%s' is read %s", past->name,
                     reads == 0 ? "by no node"
                     : reads > 1 ? "by more than one node (or twice)"
                     : cat->op != IR_OP_CONCAT ? "by a node that is not a Concat"
                                               : "by a Concat, but not as its first input");
            return not_inplace(ctx, reads == 1 ? cat : NULL, past->name, why);
        }
        const cg_tensor *x = &cm->tens[past->id];
        cg_tensor *y = cat->n_out > 0 && cat->out[0] ? &cm->tens[cat->out[0]->id] : NULL;
        int axis = -1;
        if (y && !ops_norm_axis(ir_attr_int(cat, "axis", 0), y->rank, &axis))
            axis = -1;
        if (!y || x->rank != 4 || y->rank != 4 || axis != 2 || x->dims[0] != 1)
            return not_inplace(ctx, cat, past->name, "the Concat is not of [1,H,P,D] "
                               "tensors on axis 2");
        if (x->dtype != y->dtype || ir_dtype_info(x->dtype)->bits % 8)
            return not_inplace(ctx, cat, past->name, "the cache's element type is not "
                               "whole bytes, or differs between past and present");
        char want[64];
        snprintf(want, sizeof want, "present.%ld.%s", layer, kind ? "value" : "key");
        int out_slot = output_slot(g, cat->out[0]);
        if (out_slot < 0 || strcmp(cat->out[0]->name, want)) {
            snprintf(why, sizeof why, "the Concat of '%s' writes '%s', which is not the "
                     "graph output '%s'%s", past->name, cat->out[0]->name, want,
                     out_slot == -2 ? " (listed once)" : "");
            return not_inplace(ctx, cat, past->name, why);
        }
        if (y->place != CG_PLACE_OUTPUT || y->index != out_slot)
            return not_inplace(ctx, cat, past->name, "the present output is not written "
                               "in place by the Concat");
        if (cm->n_kv && (x->dims[2] != cm->kv[0].past || y->dims[2] != cm->kv[0].total))
            return not_inplace(ctx, cat, past->name, "the caches differ in their number "
                               "of slots");
        y->kv_cache = true;
        cm->kv[cm->n_kv++] = (cg_kv_pair){
            .input = in_slot, .output = out_slot, .layer = layer, .kind = kind,
            .heads = x->dims[1], .past = x->dims[2], .total = y->dims[2],
            .head_dim = x->dims[3], .elem_bytes = ir_dtype_info(x->dtype)->bits / 8};
    }
    return OCT_OK;
}
