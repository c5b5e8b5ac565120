/*
 * quantize_compile.c: Octet as a library, from load to run, through the
 * public API only (include/octet/octet.h).
 *
 *   quantize_compile MODEL SAMPLES.f32 N OUT_BASE [PRECISION]
 *
 * MODEL has one float input.  SAMPLES.f32 holds N samples of that input,
 * each as the model declares it (a symbolic leading dimension is taken as
 * 1), as raw little-endian float32.  The program hands the samples to the
 * quantizer one at a time through the sample callback, writes the QDQ
 * model to OUT_BASE.qdq.onnx, compiles it to OUT_BASE.so and OUT_BASE.h,
 * then runs the quantized model on sample 0 in this process (JIT) and
 * prints each output element on a line of its own ("%.9g", so a float32
 * reads back exactly).  Diagnostics go to stderr; the exit code is the
 * failing call's status (2 bad input, 3 unsupported, ...).
 *
 * Build against an installed Octet:
 *   cc quantize_compile.c $(pkg-config --cflags --libs octet) -o quantize_compile
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <octet/octet.h>

typedef struct samples_file {
    float *data;
    size_t per_sample;       /* elements in one sample */
    int64_t dims[16];
    int rank;
} samples_file;

/* The sample callback: points input 0 at sample `index`. */
static oct_status next_sample(void *user, size_t index, oct_tensor *inputs,
                              size_t n_inputs)
{
    samples_file *f = user;
    if (n_inputs != 1)
        return OCT_EUSAGE;
    inputs[0].rank = f->rank;
    inputs[0].dims = f->dims;
    inputs[0].data = f->data + index * f->per_sample;
    inputs[0].nbytes = f->per_sample * sizeof(float);
    return OCT_OK;
}

static void print_diags(oct_ctx *ctx)
{
    char line[1024];
    for (size_t i = 0; i < oct_diag_count(ctx); i++) {
        oct_diag_format(oct_diag_get(ctx, i), line, sizeof line);
        fprintf(stderr, "quantize_compile: %s\n", line);
    }
}

/* Reads n samples of f->per_sample floats from path. */
static int read_samples(const char *path, size_t n, samples_file *f)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        return 2;
    }
    f->data = malloc(n * f->per_sample * sizeof(float) + 1);
    size_t got = f->data ? fread(f->data, sizeof(float), n * f->per_sample, fp) : 0;
    fclose(fp);
    if (got != n * f->per_sample) {
        fprintf(stderr, "%s: expected %zu floats, read %zu\n", path, n * f->per_sample, got);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: quantize_compile MODEL SAMPLES.f32 N OUT_BASE [PRECISION]\n");
        return 1;
    }
    const char *model = argv[1], *samples_path = argv[2], *out_base = argv[4];
    size_t n = strtoul(argv[3], NULL, 10);
    const char *precision = argc > 5 ? argv[5] : "int8";
    char path[4096];

    oct_ctx *ctx = oct_ctx_new();
    if (!ctx)
        return 4;
    oct_model *m = NULL;
    oct_quant_options *qo = NULL;
    oct_compile_options *co = NULL;
    oct_runner *runner = NULL;
    oct_tensor input, *outputs = NULL;
    size_t n_outputs = 0;
    samples_file f = {0};
    int code = 0;

    oct_status st = oct_model_load_file(ctx, model, 0, &m);
    if (!st && oct_model_input_count(m) != 1)
        st = OCT_EUSAGE, fprintf(stderr, "%s: the model must have one input\n", model);
    if (!st)
        st = oct_model_input(ctx, m, 0, &input);
    if (!st) {
        f.rank = input.rank;
        f.per_sample = 1;
        for (int d = 0; d < input.rank && d < 16; d++) {
            f.dims[d] = input.dims[d] < 0 ? 1 : input.dims[d];
            f.per_sample *= (size_t)f.dims[d];
        }
        code = read_samples(samples_path, n, &f);
    }
    oct_samples samples = {.count = n, .get = next_sample, .user = &f, .name = samples_path};
    if (!st && !code) {
        st = oct_quant_options_new(ctx, &qo);
        if (!st)
            st = oct_quant_options_set(qo, "precision", precision);
        if (!st)
            st = oct_quantize(ctx, m, qo, &samples, NULL);
        snprintf(path, sizeof path, "%s.qdq.onnx", out_base);
        if (!st)
            st = oct_model_save_file(ctx, m, path);
        if (!st)
            st = oct_compile_options_new(ctx, &co);
        if (!st)
            st = oct_compile_options_set(co, "emit", "so,header");
        if (!st)
            st = oct_compile(ctx, m, co, out_base);
        if (!st)
            st = oct_runner_new(ctx, m, "jit", NULL, &runner);
        input.rank = f.rank;
        input.dims = f.dims;
        input.data = f.data;
        input.nbytes = f.per_sample * sizeof(float);
        if (!st)
            st = oct_runner_run(runner, &input, 1, &outputs, &n_outputs);
        for (size_t o = 0; !st && o < n_outputs; o++) {
            const float *v = outputs[o].data;
            if (outputs[o].dtype != OCT_DT_FLOAT)
                continue;
            for (uint64_t i = 0; i < outputs[o].nbytes / sizeof(float); i++)
                printf("%.9g\n", v[i]);
        }
    }
    print_diags(ctx);
    oct_tensors_free(ctx, outputs, n_outputs);
    oct_runner_free(runner);
    oct_ctx_free(ctx);
    free(f.data);
    return code ? code : (int)st;
}
