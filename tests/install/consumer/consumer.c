/*
 * consumer.c: a program outside Octet's tree that uses only the installed
 * package (<octet/octet.h>, liboctet), built by tests/install/test_install.py
 * with pkg-config and with CMake's find_package(octet).  It prints one
 * "key: value" line per fact it checks; the test compares them with what the
 * header documents and what the installed `octet` CLI prints.
 *
 * Each step is a function in the steps[] table, run in order on one
 * context; a step returns 0 or prints "error: ..." and returns non-zero.
 * Steps to come as the API grows: load a model (argv[1]), quantize it
 * through the sample callback, compile it, run it and print its outputs as
 * "output NAME INDEX VALUE" lines, which the test compares with the CLI's.
 */
#include <stdio.h>
#include <string.h>

#include <octet/octet.h>

typedef struct consumer {
    int argc;
    char **argv;
    oct_ctx *ctx;
} consumer;

/* Prints the context's diagnostics like a compiler would. */
static void print_diags(const oct_ctx *ctx)
{
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        char line[1024];
        oct_diag_format(oct_diag_get(ctx, i), line, sizeof line);
        printf("diagnostic: %s\n", line);
    }
}

static int step_version(consumer *c)
{
    (void)c;
    printf("version: %s\n", OCTET_VERSION);
    return 0;
}

static int step_limits(consumer *c)
{
    oct_limits d = oct_default_limits();
    printf("limit max_file_bytes: %llu\n", (unsigned long long)d.max_file_bytes);
    printf("limit max_tensor_elems: %llu\n", (unsigned long long)d.max_tensor_elems);
    printf("limit max_total_init_bytes: %llu\n", (unsigned long long)d.max_total_init_bytes);
    printf("limit max_nodes: %llu\n", (unsigned long long)d.max_nodes);
    printf("limit max_subgraph_depth: %u\n", (unsigned)d.max_subgraph_depth);
    printf("limit max_rank: %u\n", (unsigned)d.max_rank);
    printf("limit max_alloc_bytes: %llu\n", (unsigned long long)d.max_alloc_bytes);
    /* a new context starts from the defaults, and its limits are writable */
    oct_limits *l = oct_ctx_limits(c->ctx);
    int same = l && !memcmp(l, &d, sizeof d);
    printf("context limits are the defaults: %s\n", same ? "yes" : "no");
    if (l)
        l->max_nodes = 7;
    printf("context max_nodes after setting: %llu\n",
           l ? (unsigned long long)oct_ctx_limits(c->ctx)->max_nodes : 0ull);
    return same ? 0 : 1;
}

static int step_diagnostics(consumer *c)
{
    printf("diagnostics: %zu errors: %zu\n", oct_diag_count(c->ctx), oct_error_count(c->ctx));
    oct_diag d = {.severity = OCT_SEV_ERROR, .status = OCT_EINPUT, .file = "model.onnx",
                  .node = "conv1", .op_type = "Conv", .io_is_output = 0, .io_index = 1,
                  .tensor = "W", .message = "message"};
    char line[256];
    int need = oct_diag_format(&d, line, sizeof line);
    printf("formatted: %s\n", line);
    char small[8];
    int need_small = oct_diag_format(&d, small, sizeof small);
    printf("formatted length: %d truncated length: %zu same need: %s\n", need, strlen(small),
           need == need_small ? "yes" : "no");
    print_diags(c->ctx);
    return 0;
}

static int (*const steps[])(consumer *) = {
    step_version,
    step_limits,
    step_diagnostics,
    /* step_load, step_quantize, step_compile, step_run: as the API grows */
};

int main(int argc, char **argv)
{
    consumer c = {.argc = argc, .argv = argv, .ctx = oct_ctx_new()};
    if (!c.ctx) {
        printf("error: oct_ctx_new failed\n");
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == 0; i++)
        rc = steps[i](&c);
    if (rc)
        print_diags(c.ctx);
    oct_ctx_free(c.ctx);
    printf("done: %s\n", rc ? "failed" : "ok");
    return rc;
}
