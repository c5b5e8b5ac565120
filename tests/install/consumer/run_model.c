/*
 * run_model.c: runs a model compiled by the installed `octet compile` as
 * OUT/model.o + OUT/model.h, linked against the installed runtime only
 * (liboctet_runtime, "octet_runtime.h"); built by tests/install.
 *
 * Every input must be float32; element i of input k is
 * ((i * 7 + k * 3) % 17 - 8) / 8 (tiny_model.input_value computes the
 * same).  Runs model_run once without a pool and once on a two-thread pool,
 * prints "same: yes|no" for the two results and then every output element
 * as "output K I VALUE".  Exit status 0 if both runs succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "octet_runtime.h"

#define MAX_IO 16

int main(void)
{
    if (model_NUM_INPUTS > MAX_IO || model_NUM_OUTPUTS > MAX_IO) {
        fprintf(stderr, "too many inputs or outputs\n");
        return 1;
    }
    void *in[MAX_IO], *out1[MAX_IO], *out2[MAX_IO];
    for (int k = 0; k < model_NUM_INPUTS; k++) {
        size_t n = model_input_bytes[k] / sizeof(float);
        float *x = octrt_alloc(model_input_bytes[k], 64);
        if (!x || strcmp(model_input_npy_descr[k], "<f4") != 0) {
            fprintf(stderr, "input %d: not float32, or out of memory\n", k);
            return 1;
        }
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((long)((i * 7 + (size_t)k * 3) % 17) - 8) / 8.0f;
        in[k] = x;
    }
    for (int k = 0; k < model_NUM_OUTPUTS; k++) {
        out1[k] = octrt_alloc(model_output_bytes[k], 64);
        out2[k] = octrt_alloc(model_output_bytes[k], 64);
        if (!out1[k] || !out2[k])
            return 1;
    }
    void *scratch = octrt_alloc(model_SCRATCH_SIZE, model_ALIGNMENT);
    octrt_pool *pool = octrt_pool_create(2);
    if (!scratch || !pool) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    int rc1 = model_run((const void *const *)in, out1, scratch);
    int rc2 = model_run_threads((const void *const *)in, out2, scratch, pool);
    int same = 1;
    for (int k = 0; k < model_NUM_OUTPUTS; k++)
        same &= !memcmp(out1[k], out2[k], model_output_bytes[k]);
    printf("same: %s\n", same ? "yes" : "no");
    for (int k = 0; k < model_NUM_OUTPUTS; k++) {
        if (strcmp(model_output_npy_descr[k], "<f4") != 0)
            continue;
        const float *y = out1[k];
        for (size_t i = 0; i < model_output_bytes[k] / sizeof(float); i++)
            printf("output %d %zu %.9g\n", k, i, y[i]);
    }
    octrt_pool_destroy(pool);
    octrt_free(scratch);
    for (int k = 0; k < model_NUM_INPUTS; k++)
        octrt_free(in[k]);
    for (int k = 0; k < model_NUM_OUTPUTS; k++) {
        octrt_free(out1[k]);
        octrt_free(out2[k]);
    }
    return rc1 || rc2;
}
