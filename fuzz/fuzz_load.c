/*
 * fuzz_load.c: libFuzzer target for the model loader: the wire pre-scan,
 * protobuf-c unpacking with the arena allocator, ModelProto -> IR, then the
 * verifier and a re-encode of what loaded.  Seeds: the shared models and
 * the ONNX node-test models (scripts/fuzz.sh).
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oct_ctx *ctx = fuzz_ctx();
    if (!ctx)
        return 0;
    fe_load_opts lo = {0};
    ir_model *m = NULL;
    if (fe_load_memory(ctx, data, size, "fuzz.onnx", NULL, &lo, &m) == OCT_OK &&
        ir_verify(m, ctx) == OCT_OK) {
        uint8_t *out;
        size_t len;
        if (fe_save_memory(ctx, m, &out, &len) == OCT_OK)
            oct_free(ctx, out, len);
    }
    oct_ctx_free(ctx);
    return 0;
}
