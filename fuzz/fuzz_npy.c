/*
 * fuzz_npy.c: libFuzzer target for the .npy reader (magic, version, header
 * dict, dtype descr, shape, fortran_order, data length).
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oct_ctx *ctx = fuzz_ctx();
    if (!ctx)
        return 0;
    ir_tensor *t = NULL;
    fe_tensor_from_npy(ctx, data, size, "fuzz.npy", &t);
    oct_ctx_free(ctx);
    return 0;
}
