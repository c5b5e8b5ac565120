/*
 * dataset_tool.c: a test driver for the streaming data set reader
 * (frontend/dataset.h), so Python tests can compare what it reads with
 * numpy.
 *
 *   dataset_tool MODEL DATA [--max N] [--reverse] [--mem] [--whole]
 *
 * Opens DATA for MODEL and reads every sample (in reverse order with
 * --reverse), printing
 *   count <n>
 *   sample <i> input <name> dtype <ONNX dtype> shape <d0> <d1> ... crc <hex>
 * where crc is zlib's CRC-32 of the tensor's little-endian bytes (Python's
 * zlib.crc32 of numpy's tobytes() gives the expected value).
 * --mem prints the peak resident memory growth over open + read-all:
 *   hwm_growth_kb <k> (the process's VmHWM after minus before; the high
 *   water mark is first reset to the current RSS through
 *   /proc/self/clear_refs, so memory freed while loading the model does not
 *   hide growth), hwm_reset <0|1>, and maxrss_growth_kb <k> from getrusage
 *   (which after exec may report the parent's peak, hence VmHWM).
 * --whole reads DATA with fe_read_tensor instead (the whole array at once):
 * the control that shows the measurement sees a whole-file read.
 * --oom repeats open + read-all with the Nth allocation failing, N = 1, 2,
 * ... until a run hits no failure, and prints
 *   oom_runs <n> heap_growth <bytes>
 * (bytes still allocated through the context afterwards, which only arena
 * blocks may account for); it fails if a run hit its injected failure yet
 * succeeded, or failed without hitting it.
 * On failure it prints the diagnostics to stderr and exits with the status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>

#include "frontend/dataset.h"
#include "frontend/frontend.h"
#include "ref/ref.h"

static unsigned long crc_of(const void *data, uint64_t n)
{
    const unsigned char *p = data;
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

/* VmHWM of this process in KiB, or -1. */
static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); true on success. */
static bool reset_hwm(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int finish(oct_ctx *ctx, oct_status st)
{
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        char buf[2048];
        oct_diag_format(oct_diag_get(ctx, i), buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
    }
    oct_ctx_free(ctx);
    return (int)st;
}

static void print_sample(size_t index, const ir_tensor *t)
{
    printf("sample %zu input %s dtype %s shape", index, t->name,
           ir_dtype_name(t->dtype));
    for (int d = 0; d < t->rank; d++)
        printf(" %lld", (long long)t->dims[d]);
    printf(" crc %08lx\n", crc_of(t->data, t->nbytes));
}

static oct_status read_all(oct_ctx *ctx, const ir_model *m, const char *data,
                           uint64_t max, bool reverse, bool quiet,
                           bool print_count)
{
    fe_dataset *ds;
    oct_status st = fe_dataset_open(ctx, data, m, max, &ds);
    if (st != OCT_OK)
        return st;
    size_t n = fe_dataset_count(ds), k = fe_dataset_n_inputs(ds);
    if (print_count)
        printf("count %zu\n", n);
    ir_tensor **in = calloc(k, sizeof *in);
    for (size_t j = 0; in && j < n && st == OCT_OK; j++) {
        size_t index = reverse ? n - 1 - j : j;
        st = fe_dataset_get(ds, index, in);
        for (size_t i = 0; st == OCT_OK && i < k; i++) {
            if (!quiet)
                print_sample(index, in[i]);
            ir_heap_tensor_free(ctx, in[i]);
        }
    }
    free(in);
    fe_dataset_close(ds);
    return st;
}

static oct_status oom_sweep(oct_ctx *ctx, const ir_model *m,
                            const char *data, uint64_t max, bool reverse)
{
    uint64_t baseline = ctx->bytes_live;
    for (uint64_t n = 1; n < 100000; n++) {
        uint64_t before = oct_ctx_alloc_count(ctx);
        oct_ctx_fail_alloc_at(ctx, n);
        oct_status st = read_all(ctx, m, data, max, reverse, true, false);
        oct_ctx_fail_alloc_at(ctx, 0);
        bool hit = oct_ctx_alloc_count(ctx) - before >= n;
        if (hit && st == OCT_OK) {
            printf("allocation %llu failed but the run succeeded\n",
                   (unsigned long long)n);
            return OCT_EINTERNAL;
        }
        if (!hit && st != OCT_OK) {
            printf("run %llu failed without an injected failure\n",
                   (unsigned long long)n);
            return st;
        }
        if (!hit) {
            printf("oom_runs %llu heap_growth %llu\n",
                   (unsigned long long)n,
                   (unsigned long long)(ctx->bytes_live - baseline));
            /* The diagnostics of the failed runs are expected. */
            oct_diag_release(ctx);
            return OCT_OK;
        }
    }
    return OCT_EINTERNAL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: dataset_tool MODEL DATA [--max N] "
                        "[--reverse] [--mem] [--whole]\n");
        return 1;
    }
    uint64_t max = 0;
    bool reverse = false, mem = false, whole = false, oom = false;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--max") && i + 1 < argc)
            max = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reverse"))
            reverse = true;
        else if (!strcmp(argv[i], "--mem"))
            mem = true;
        else if (!strcmp(argv[i], "--whole"))
            whole = true;
        else if (!strcmp(argv[i], "--oom"))
            oom = true;
        else {
            fprintf(stderr, "dataset_tool: unknown option '%s'\n", argv[i]);
            return 1;
        }
    }
    oct_ctx *ctx = oct_ctx_new();
    if (!ctx)
        return 4;
    ir_model *m;
    oct_status st = fe_load_file(ctx, argv[1], NULL, &m);
    if (st != OCT_OK)
        return finish(ctx, st);
    if (oom)
        return finish(ctx, oom_sweep(ctx, m, argv[2], max, reverse));
    bool reset = mem && reset_hwm();
    long hwm0 = vm_hwm_kb(), rss0 = maxrss_kb();
    if (whole) {
        ir_tensor *t;
        st = fe_read_tensor(ctx, argv[2], &t);
        if (st == OCT_OK)
            printf("whole %llu bytes\n", (unsigned long long)t->nbytes);
    } else {
        st = read_all(ctx, m, argv[2], max, reverse, mem, true);
    }
    if (mem && st == OCT_OK)
        printf("hwm_growth_kb %ld\nhwm_reset %d\nmaxrss_growth_kb %ld\n",
               vm_hwm_kb() - hwm0, reset ? 1 : 0, maxrss_kb() - rss0);
    return finish(ctx, st);
}
