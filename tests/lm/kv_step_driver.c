/*
 * kv_step_driver.c: a program using a decode graph compiled with
 * `octet compile --kv-cache=inplace --name kvdec --emit=so,header` the way
 * the generated kvdec.h tells it to, and nothing else: the cache buffers
 * are the present outputs (zeroed once), the past inputs are NULL, each step
 * sets input_ids, position_ids and attention_mask, calls kvdec_run and moves
 * slot kvdec_KV_PAST of every head into the next free slot.  Prints N
 * greedy token ids from BOS (lm_kvcache_tests.py compares them with
 * llama2.c's reference).
 *
 * Usage: kv_step_driver N   (built by the test against kvdec.h / kvdec.so)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvdec.h"

/* the cache outputs (stories260k: 5 layers, a key and a value each) */
_Static_assert(kvdec_KV_NUM == 10, "the driver lists ten caches");
#define KV_OUT(i) kvdec_KV_##i##_OUTPUT
static const int cache_output[] = {KV_OUT(0), KV_OUT(1), KV_OUT(2), KV_OUT(3), KV_OUT(4),
                                   KV_OUT(5), KV_OUT(6), KV_OUT(7), KV_OUT(8), KV_OUT(9)};

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    if (strcmp(kvdec_INPUT_0_NAME, "input_ids") || strcmp(kvdec_INPUT_1_NAME, "position_ids") ||
        strcmp(kvdec_INPUT_2_NAME, "attention_mask") || strcmp(kvdec_OUTPUT_0_NAME, "logits") ||
        n < 1 || n > kvdec_KV_PAST)
        return 2;
    const void *inputs[kvdec_NUM_INPUTS] = {0};   /* the past inputs stay NULL */
    void *outputs[kvdec_NUM_OUTPUTS];
    for (int k = 0; k < kvdec_NUM_OUTPUTS; k++)
        outputs[k] = aligned_alloc(64, (kvdec_output_bytes[k] + 63) / 64 * 64);
    for (int k = 0; k < kvdec_NUM_OUTPUTS; k++)
        memset(outputs[k], 0, kvdec_output_bytes[k]);
    void *scratch = aligned_alloc(kvdec_ALIGNMENT, (kvdec_SCRATCH_SIZE + 63) / 64 * 64 + 64);
    int64_t id = 1, pos = 0, mask[kvdec_KV_PAST + 1] = {0};
    inputs[0] = &id;
    inputs[1] = &pos;
    inputs[2] = mask;
    for (int step = 0; step < n; step++) {
        pos = step;
        mask[kvdec_KV_PAST] = 1;             /* the new token */
        if (kvdec_run(inputs, outputs, scratch))
            return 1;
        const float *logits = outputs[0];
        unsigned best = 0;
        for (unsigned v = 1; v < kvdec_OUTPUT_0_BYTES / 4; v++)
            if (logits[v] > logits[best])
                best = v;
        printf("%s%u", step ? " " : "", best);
        /* slot PAST -> slot step, every head of every cache */
        for (int k = 0; k < kvdec_KV_NUM; k++) {
            int o = cache_output[k];
            float *c = outputs[o];
            int64_t heads = kvdec_output_dims[o][1], d = kvdec_output_dims[o][3];
            for (int64_t h = 0; h < heads; h++)
                memmove(&c[(h * kvdec_KV_TOTAL + step) * d],
                        &c[(h * kvdec_KV_TOTAL + kvdec_KV_PAST) * d], d * sizeof *c);
        }
        mask[step] = 1;
        id = best;
    }
    printf("\n");
    return 0;
}
