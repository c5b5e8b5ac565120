/*
 * fuzz_pipeline.c: libFuzzer target for load + verify + the default passes
 * (shape inference, constant folding, ...) + fusion, and, when every graph
 * input has a static type of at most 4096 elements and the graph has at most
 * 64 nodes, one run of the reference interpreter on generated inputs.
 */
#include "fuzz_common.h"
#include "passes/passes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oct_ctx *ctx = fuzz_ctx();
    if (!ctx)
        return 0;
    ir_model *m = NULL;
    oct_status st = fuzz_load_model(ctx, data, size, &m);
    if (!st)
        st = pass_run_list(m, "fuse,shape_infer", ctx);
    if (!st && m->graph->n_nodes <= 64) {
        const ir_graph *g = m->graph;
        ir_tensor *in[16] = {0}, *out[16] = {0};
        size_t n_in = 0;
        uint64_t seed = fuzz_seed(data, size);
        bool ok = g->n_outputs <= 16;
        for (size_t i = 0; ok && i < g->n_inputs; i++) {
            if (g->inputs[i]->init)
                continue;
            if (n_in == 16 || !(in[n_in] = fuzz_input(ctx, g->inputs[i], 4096, &seed)))
                ok = false;
            else
                n_in++;
        }
        if (ok)
            ref_run(ctx, m, (const ir_tensor *const *)in, n_in, out,
                    g->n_outputs, NULL);
        for (size_t i = 0; i < 16; i++) {
            ir_heap_tensor_free(ctx, in[i]);
            ir_heap_tensor_free(ctx, out[i]);
        }
    }
    oct_ctx_free(ctx);
    return 0;
}
