/*
 * npy_tool.c: a test driver for the tensor readers and the .npy writer, so
 * Python tests can reach them before the command line does.
 *
 *   npy_tool read FILE        fe_read_tensor (.npy or TensorProto .pb)
 *   npy_tool npz FILE         fe_read_npz
 *   npy_tool copy IN OUT      fe_read_tensor, then fe_write_npy to OUT
 *
 * For each tensor it prints
 *   name <name>
 *   dtype <ONNX dtype name>
 *   shape <d0> <d1> ...
 *   data <hex of the little-endian bytes>
 * On failure it prints the diagnostics to stderr and exits with the status.
 */
#include <stdio.h>
#include <string.h>

#include "frontend/frontend.h"

static void print_tensor(const ir_tensor *t)
{
    printf("name %s\ndtype %s\nshape", t->name ? t->name : "",
           ir_dtype_name(t->dtype));
    for (int i = 0; i < t->rank; i++)
        printf(" %lld", (long long)t->dims[i]);
    printf("\ndata ");
    const unsigned char *p = t->data;
    for (uint64_t i = 0; i < t->nbytes; i++)
        printf("%02x", p[i]);
    printf("\n");
}

static int finish(oct_ctx *ctx, oct_status st)
{
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        char buf[1024];
        oct_diag_format(oct_diag_get(ctx, i), buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
    }
    oct_ctx_free(ctx);
    return (int)st;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: npy_tool read|npz FILE | copy IN OUT\n");
        return 1;
    }
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx)
        return 4;
    oct_status st;
    if (!strcmp(argv[1], "read")) {
        ir_tensor *t;
        st = fe_read_tensor(ctx, argv[2], &t);
        if (st == OCT_OK)
            print_tensor(t);
    } else if (!strcmp(argv[1], "npz")) {
        ir_tensor **ts;
        size_t n;
        st = fe_read_npz(ctx, argv[2], &ts, &n);
        if (st == OCT_OK)
            for (size_t i = 0; i < n; i++)
                print_tensor(ts[i]);
    } else if (!strcmp(argv[1], "copy") && argc == 4) {
        ir_tensor *t;
        ir_note_input(ctx, argv[2]);
        st = fe_read_tensor(ctx, argv[2], &t);
        if (st == OCT_OK)
            st = fe_write_npy(ctx, t, argv[3]);
    } else {
        fprintf(stderr, "npy_tool: unknown command '%s'\n", argv[1]);
        st = OCT_EUSAGE;
    }
    return finish(ctx, st);
}
