/*
 * fuzz_stats.c: libFuzzer target for the statistics readers behind
 * `octet stats merge` and --load-stats (src/passes/quant_stats.c): the
 * input, as a file, merged with itself, which parses and checks every
 * entry of a histogram file or of a GPTQ Hessian file and writes the sum.
 */
#include <stdio.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "passes/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[64], out[64];
    snprintf(in, sizeof in, "/tmp/fuzz_stats_%d.json", (int)getpid());
    snprintf(out, sizeof out, "/tmp/fuzz_stats_%d.out.json", (int)getpid());
    FILE *f = fopen(in, "wb");
    if (!f)
        return 0;
    bool ok = fwrite(data, 1, size, f) == size;
    ok &= fclose(f) == 0;
    oct_ctx *ctx = ok ? fuzz_ctx() : NULL;
    if (ctx) {
        const char *inputs[2] = {in, in};
        quant_stats_merge(inputs, 2, out, ctx);
        oct_ctx_free(ctx);
    }
    remove(in);
    remove(out);
    return 0;
}
