/*
 * fuzz_pb.c: libFuzzer target for TensorProto .pb files (protobuf-c unpack,
 * typed fields, raw_data length, dims overflow, external data refused).
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oct_ctx *ctx = fuzz_ctx();
    if (!ctx)
        return 0;
    ir_tensor *t = NULL;
    fe_tensor_from_pb(ctx, data, size, "fuzz.pb", &t);
    oct_ctx_free(ctx);
    return 0;
}
