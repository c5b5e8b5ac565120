/*
 * run_npy.c: runs a model compiled by `octet compile` on .npy inputs.
 *
 * Build against the generated header and object and the runtime library,
 * from the repository's top folder after the CMake build into build/ (NAME
 * is the model name given to `octet compile -o out/NAME`; the runtime's
 * thread pool needs -pthread on C libraries that keep it apart):
 *   build/octet compile model.onnx -o out/NAME --emit=obj,header
 *   cc -std=c11 -I out -I runtime -DOCTET_MODEL=NAME '-DOCTET_MODEL_HEADER="NAME.h"' \
 *      examples/run_npy.c out/NAME.o build/liboctet_runtime.a -pthread -lm -o run_npy
 * (tests/codegen/test_run_npy.py runs these two lines as written here.)
 * Run:
 *   run_npy IN0.npy [IN1.npy ...] [-o OUT0.npy [OUT1.npy ...]]
 * Each input must have the dtype and element count the header declares.
 * Prints every output's first values; with -o writes the outputs as .npy.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octet_runtime.h"
#include OCTET_MODEL_HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define M(suffix) CAT(OCTET_MODEL, suffix)

/* Reads an .npy file (format 1.x/2.x, C order) into a malloc'ed buffer of
 * exactly `want_bytes` bytes with dtype `descr`; NULL with a message. */
static void *read_npy(const char *path, const char *descr, unsigned long long want_bytes)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        return NULL;
    }
    unsigned char pre[10];
    void *data = NULL;
    char *hdr = NULL;
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "%s: not an .npy file\n", path);
        goto done;
    }
    size_t hlen = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) {
        unsigned char more[2];
        if (fread(more, 1, 2, fp) != 2)
            goto done;
        hlen |= (size_t)more[0] << 16 | (size_t)more[1] << 24;
    }
    hdr = calloc(1, hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, fp) != hlen)
        goto done;
    char want[64];
    snprintf(want, sizeof want, "'descr': '%s'", descr);
    if (!strstr(hdr, want) || strstr(hdr, "'fortran_order': True")) {
        fprintf(stderr, "%s: expected dtype %s in C order, header is %s\n", path, descr, hdr);
        goto done;
    }
    data = malloc(want_bytes ? want_bytes : 1);
    if (!data || fread(data, 1, want_bytes, fp) != want_bytes || fgetc(fp) != EOF) {
        fprintf(stderr, "%s: expected exactly %llu bytes of data\n", path, want_bytes);
        free(data);
        data = NULL;
    }
done:
    free(hdr);
    fclose(fp);
    return data;
}

static int write_npy(const char *path, const char *descr, int rank, const long long *dims,
                     const void *data, unsigned long long bytes)
{
    char shape[512] = "", hdr[640];
    for (int d = 0; d < rank; d++) {
        size_t n = strlen(shape);
        snprintf(shape + n, sizeof shape - n, "%lld%s", dims[d], rank == 1 ? "," : d + 1 < rank ? ", " : "");
    }
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                       descr, shape);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        return 1;
    }
    unsigned short hl = (unsigned short)(len + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff),
                             (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, fp);
    fwrite(hdr, 1, (size_t)len, fp);
    for (int i = 0; i < pad; i++)
        fputc(' ', fp);
    fputc('\n', fp);
    fwrite(data, 1, bytes, fp);
    return fclose(fp) != 0;
}

int main(int argc, char **argv)
{
    enum { N_IN = M(_NUM_INPUTS), N_OUT = M(_NUM_OUTPUTS) };
    const void *inputs[N_IN + 1];
    void *outputs[N_OUT + 1];
    const char *out_paths[N_OUT + 1];
    int n_in = 0, n_out_paths = 0, rc = 1;
    bool after_o = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o")) {
            after_o = true;
        } else if (after_o) {
            if (n_out_paths == N_OUT) {
                fprintf(stderr, "the model has %d output(s)\n", N_OUT);
                return 1;
            }
            out_paths[n_out_paths++] = argv[i];
        } else {
            if (n_in == N_IN) {
                fprintf(stderr, "the model has %d input(s)\n", N_IN);
                return 1;
            }
            inputs[n_in] = read_npy(argv[i], M(_input_npy_descr)[n_in], M(_input_bytes)[n_in]);
            if (!inputs[n_in])
                return 1;
            n_in++;
        }
    }
    if (n_in != N_IN) {
        fprintf(stderr, "usage: %s IN.npy x%d [-o OUT.npy ...]\n", argv[0], N_IN);
        return 1;
    }
    for (int k = 0; k < N_OUT; k++)
        outputs[k] = octrt_alloc(M(_output_bytes)[k], M(_ALIGNMENT));
    void *scratch = octrt_alloc(M(_SCRATCH_SIZE), M(_ALIGNMENT));
    if (!scratch)
        goto done;
    if (M(_run)(inputs, outputs, scratch) != 0) {
        fprintf(stderr, "run failed\n");
        goto done;
    }
    rc = 0;
    for (int k = 0; k < N_OUT; k++) {
        printf("output %d:", k);
        if (!strcmp(M(_output_npy_descr)[k], "<f4")) {
            const float *y = outputs[k];
            unsigned long long n = M(_output_bytes)[k] / sizeof(float);
            for (unsigned long long i = 0; i < n && i < 16; i++)
                printf(" %g", y[i]);
            if (n > 16)
                printf(" ... (%llu values)", n);
        }
        printf("\n");
        if (k < n_out_paths)
            rc |= write_npy(out_paths[k], M(_output_npy_descr)[k], M(_output_rank)[k],
                            M(_output_dims)[k], outputs[k], M(_output_bytes)[k]);
    }
done:
    for (int k = 0; k < n_in; k++)
        free((void *)inputs[k]);
    for (int k = 0; k < N_OUT; k++)
        octrt_free(outputs[k]);
    octrt_free(scratch);
    return rc;
}
