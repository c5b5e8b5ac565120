/*
 * fuzz_mnb.c: libFuzzer target for the MatMulNBits reader (com.microsoft):
 * its shape rule and checks (src/ops), the interpreter's kernel (src/ref)
 * and mnb_unpack (src/passes/mnb_unpack.c, what `octet compile` runs), and
 * the weight-only report on the unpacked form (quant_report_wo.c).
 *
 * A generic model fuzzer rarely reaches a MatMulNBits whose attributes and
 * packed tensors nearly agree, where the reader's arithmetic is; so this
 * target writes the node itself from the input, in the text IR: the first
 * bytes choose K, N, bits, block_size (valid values mostly, any byte
 * sometimes), the zero-point form (none, packed uint8, float, or of the
 * wrong type), g_idx and bias, and a signed length error for B, the scales
 * and the zero points (short and long buffers); the remaining bytes fill
 * the tensors.  The model is parsed, verified, run by the interpreter on
 * generated input, then unpacked and measured.  Every inconsistency must be
 * a diagnostic; only crashes, sanitizer reports, leaks and timeouts are
 * findings.  Replayed in the ordinary suite with the seeds of
 * tests/reliability/fuzz_seeds/mnb (tests/reliability/CMakeLists.txt).
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "passes/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the input's bytes in order; 0 past the end. */
typedef struct reader {
    const uint8_t *p;
    size_t n, at;
} reader;

static unsigned next(reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }

/* A small length error: mostly 0, else -2..+2. */
static int len_error(reader *r)
{
    unsigned b = next(r);
    return b < 192 ? 0 : (int)(b % 5) - 2;
}

enum { V_INT, V_FLOAT, V_SCALE };

/* Appends "name: TYPE[dims] raw = [v, ...]" with n values from the input:
 * bytes, signed floats, or scales (b / 64: positive but for a zero byte,
 * so the reader's arithmetic runs and its scale check is still reached). */
static void init_line(FILE *f, reader *r, const char *name, const char *type, long n,
                      const char *dims, int kind)
{
    fprintf(f, "init %s: %s[%s] raw = [", name, type, dims);
    for (long i = 0; i < n; i++) {
        unsigned b = next(r);
        if (kind == V_INT)
            fprintf(f, "%s%u", i ? ", " : "", b);
        else
            fprintf(f, "%s%g", i ? ", " : "",
                    kind == V_SCALE ? (double)b / 64.0 : (double)((int)b - 100) / 64.0);
    }
    fprintf(f, "]\n");
}

/* The model text from the input (malloc'ed; NULL on failure). */
static char *model_text(reader *r, size_t *len)
{
    static const int sizes[] = {16, 32, 64, 128, 8, 20, 0, 256};
    unsigned flags = next(r);
    long K = 1 + (long)(next(r) % 96), N = 1 + (long)(next(r) % 12);
    long bits = flags & 0x80 ? (long)(next(r) % 10) : (flags & 1 ? 8 : 4);
    long bs = sizes[next(r) % 8];
    int zp_form = (int)((flags >> 1) & 3); /* 0 none, 1 packed u8, 2 float, 3 wrong type */
    bool g_idx = flags & 0x08, bias = flags & 0x10, odd_k = flags & 0x20;
    long M = 1 + (long)(next(r) % 3), a_k = odd_k ? K + 1 : K;
    long nbk = bs > 0 ? (K + bs - 1) / bs : 1;
    long blob = bs > 0 && bits > 0 ? (bs * bits + 7) / 8 : 1;
    long nb = N * nbk * blob + len_error(r), ns = N * nbk + len_error(r);
    long zper = bits > 0 ? (nbk * bits + 7) / 8 : 1;
    long nz = (zp_form == 2 ? N * nbk : N * zper) + len_error(r);
    nb = nb < 0 ? 0 : nb, ns = ns < 0 ? 0 : ns, nz = nz < 0 ? 0 : nz;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    fprintf(f, "octet-ir 1\nmodel ir_version=8 producer_name=\"fuzz\" producer_version=\"\" "
               "domain=\"\"\nopset \"\"=21\nopset \"com.microsoft\"=1\ngraph g\n");
    fprintf(f, "input x: f32[%ld,%ld]\noutput y: f32[%ld,%ld]\n", M, a_k, M, N);
    char dims[64];
    snprintf(dims, sizeof dims, "%ld", nb);
    if (nb == N * nbk * blob)
        snprintf(dims, sizeof dims, "%ld,%ld,%ld", N, nbk, blob);
    init_line(f, r, "w", "u8", nb, dims, V_INT);
    snprintf(dims, sizeof dims, "%ld", ns);
    init_line(f, r, "s", "f32", ns, dims, V_SCALE);
    if (zp_form) {
        snprintf(dims, sizeof dims, "%ld", nz);
        init_line(f, r, "z", zp_form == 2 ? "f32" : zp_form == 3 ? "i32" : "u8", nz, dims,
                  zp_form == 2 ? V_FLOAT : V_INT);
    }
    if (g_idx) {
        snprintf(dims, sizeof dims, "%ld", K);
        init_line(f, r, "g", "i32", K, dims, V_INT);
    }
    if (bias) {
        snprintf(dims, sizeof dims, "%ld", N);
        init_line(f, r, "b", "f32", N, dims, V_FLOAT);
    }
    fprintf(f, "node MatMulNBits@com.microsoft mm (x, w, s, %s, %s, %s) -> (y) "
               "{K=%ld, N=%ld, bits=%ld, block_size=%ld}\n",
            zp_form ? "z" : "\"\"", g_idx ? "g" : "\"\"", bias ? "b" : "\"\"", K, N, bits, bs);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oct_ctx *ctx = fuzz_ctx();
    if (!ctx)
        return 0;
    reader r = {data, size, 0};
    size_t len = 0;
    char *text = model_text(&r, &len);
    ir_model *m = NULL;
    oct_status st = text ? ir_parse_text(ctx, text, len, "mnb.txt", &m) : OCT_EINTERNAL;
    free(text);
    if (!st)
        st = ir_verify(m, ctx);
    if (!st)
        st = pass_run_default(m, ctx);
    if (!st) {
        const ir_graph *g = m->graph;
        uint64_t seed = fuzz_seed(data, size);
        ir_tensor *in[1] = {NULL}, *out[1] = {NULL};
        if (g->n_inputs >= 1 && g->n_outputs == 1 &&
            (in[0] = fuzz_input(ctx, g->inputs[0], 4096, &seed)))
            ref_run(ctx, m, (const ir_tensor *const *)in, 1, out, 1, NULL);
        ir_heap_tensor_free(ctx, in[0]);
        ir_heap_tensor_free(ctx, out[0]);
        ir_model *copy = NULL;
        if (ir_model_clone(ctx, m, &copy) == OCT_OK) {
            quant_wo_report rep;
            if (pass_run_list(m, "mnb_unpack", ctx) == OCT_OK)
                (void)quant_wo_report_measure(copy, m, &rep, ctx);
        }
    }
    oct_ctx_free(ctx);
    return 0;
}
