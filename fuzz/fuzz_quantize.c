/*
 * fuzz_quantize.c: libFuzzer target for `octet quantize` on fuzzed models
 * with a tiny generated calibration set: load, verify, default passes,
 * fusion, then (for graphs of at most 64 nodes whose inputs are static and
 * at most 4096 elements) plan, calibrate on two generated samples, choose
 * (auto precision), rewrite, encode, and verify the rewritten model.  An
 * FP16/BF16 model is upcast first (quant_upcast.c); one input in four is
 * quantized dynamically (quant_dynamic.c) instead.
 */
#include "fuzz_common.h"
#include "passes/passes.h"
#include "passes/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct gen_data {
    const ir_graph *g;
    uint64_t seed;
} gen_data;

/* Sample `index`: every input filled from the seed and the index. */
static oct_status gen_sample(void *user, size_t index, ir_tensor **inputs,
                             oct_ctx *ctx)
{
    gen_data *gd = user;
    uint64_t seed = gd->seed + 0x9e3779b97f4a7c15ull * (index + 1);
    size_t k = 0;
    for (size_t i = 0; i < gd->g->n_inputs; i++) {
        if (gd->g->inputs[i]->init)
            continue;
        inputs[k] = fuzz_input(ctx, gd->g->inputs[i], 4096, &seed);
        if (!inputs[k]) {
            for (size_t j = 0; j < k; j++) {
                ir_heap_tensor_free(ctx, inputs[j]);
                inputs[j] = NULL;
            }
            return oct_error(ctx, OCT_EINPUT, "cannot make a sample");
        }
        k++;
    }
    return OCT_OK;
}

static bool inputs_ok(const ir_graph *g)
{
    uint64_t seed = 1;
    oct_ctx *probe = fuzz_ctx();
    bool ok = probe != NULL && g->n_nodes <= 64;
    for (size_t i = 0; ok && i < g->n_inputs; i++) {
        if (g->inputs[i]->init)
            continue;
        ir_tensor *t = fuzz_input(probe, g->inputs[i], 4096, &seed);
        ok = t != NULL;
        ir_heap_tensor_free(probe, t);
    }
    oct_ctx_free(probe);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oct_ctx *ctx = fuzz_ctx();
    if (!ctx)
        return 0;
    fe_load_opts lo = {0};
    ir_model *m = NULL, *fp32 = NULL;
    oct_status st = fuzz_load_model(ctx, data, size, &m);
    if (!st && quant_model_is_half(m))
        st = quant_upcast_half(m, ctx);
    if (!st)
        st = pass_run_list(m, "fuse,shape_infer", ctx);
    bool dynamic = size > 0 && (data[size / 3] & 6) == 6;
    if (!st && (dynamic || inputs_ok(m->graph))) {
        quant_opts qo = quant_default_opts();
        qo.precision = (data[size / 2] & 1) ? QPREC_AUTO : QPREC_FIXED;
        quant_plan plan = {0};
        gen_data gd = {m->graph, fuzz_seed(data, size)};
        quant_samples samples = {2, gen_sample, &gd, "generated"};
        if (dynamic) {
            qo.weight_granularity = (data[size / 2] & 1) ? QGRAN_TENSOR : QGRAN_CHANNEL;
            st = quant_dynamic(m, &qo, ctx);
        } else {
            st = quant_plan_build(m, &qo, &plan, ctx);
            if (!st)
                st = quant_calibrate(m, &plan, &qo, &samples, NULL, NULL, ctx);
            if (!st)
                st = quant_choose(m, &plan, &qo, &samples, NULL, NULL, ctx);
            if (!st)
                st = quant_rewrite(m, &plan, &qo, ctx);
        }
        uint8_t *bytes;
        size_t len;
        if (!st && fe_save_memory(ctx, m, &bytes, &len) == OCT_OK) {
            /* what Octet writes must load and verify again */
            oct_ctx *again = fuzz_ctx();
            if (again) {
                again->limits = ctx->limits;
                again->limits.max_alloc_bytes = 256u << 20;
                if (fe_load_memory(again, bytes, len, "q.onnx", NULL, &lo,
                                   &fp32) == OCT_OK &&
                    ir_verify(fp32, again) != OCT_OK)
                    __builtin_trap(); /* Octet wrote an invalid model */
                oct_ctx_free(again);
            }
            oct_free(ctx, bytes, len);
        }
        quant_plan_free(&plan, ctx);
    }
    oct_ctx_free(ctx);
    return 0;
}
