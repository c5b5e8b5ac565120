/*
 * emit.c: writes a compiled module's artifacts: object file and assembly
 * (LLVMTargetMachineEmitToMemoryBuffer), LLVM IR text, the shared library
 * (the object linked by `cc -shared` through posix_spawnp into a temporary
 * file, then renamed) and the generated C header NAME.h.  Every file is
 * written atomically; nothing is printed.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/codegen_module.h"

extern char **environ;

static const char *np_dtype(ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT: return "float32";
    case IR_DT_DOUBLE: return "float64";
    case IR_DT_FLOAT16: return "float16";
    case IR_DT_UINT8: return "uint8";
    case IR_DT_INT8: return "int8";
    case IR_DT_UINT16: return "uint16";
    case IR_DT_INT16: return "int16";
    case IR_DT_INT32: return "int32";
    case IR_DT_UINT32: return "uint32";
    case IR_DT_INT64: return "int64";
    case IR_DT_UINT64: return "uint64";
    case IR_DT_BOOL: return "bool";
    default: return ir_dtype_short(dt);
    }
}

/* .npy descr of a dtype ("<f4"), "" if it has none. */
static const char *npy_descr(ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT: return "<f4";
    case IR_DT_DOUBLE: return "<f8";
    case IR_DT_FLOAT16: return "<f2";
    case IR_DT_UINT8: return "|u1";
    case IR_DT_INT8: return "|i1";
    case IR_DT_UINT16: return "<u2";
    case IR_DT_INT16: return "<i2";
    case IR_DT_INT32: return "<i4";
    case IR_DT_UINT32: return "<u4";
    case IR_DT_INT64: return "<i8";
    case IR_DT_UINT64: return "<u8";
    case IR_DT_BOOL: return "|b1";
    default: return "";
    }
}

/* JSON string body with escapes (names come from the model). */
static void json_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20)
            fprintf(o, "\\u%04x", c);
        else
            fputc(c, o);
    }
    fputc('"', o);
}

/* C string literal (names come from the model). */
static void c_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f || c == '?')
            fprintf(o, "\\%03o", c);
        else
            fputc(c, o);
    }
    fputc('"', o);
}

/* The symbolic dimension on axis 0 of input slot k (or output k), or NULL. */
static const char *batch_of(const cg_module *cm, bool output, size_t k)
{
    const cg_batch *b = cm->batch;
    if (!b)
        return NULL;
    return (output ? b->out_batched[k] : b->in_batched[k]) ? b->name : NULL;
}

/* The entry of dims[] dim d of input slot k (or output k) takes: 0 for the
 * batch, the batch's count plus k for run-time symbol k (symdims.h), -1
 * for a number. */
static int dim_index(const cg_module *cm, const cg_tensor *t, bool output, size_t k, int d)
{
    if (d == 0 && batch_of(cm, output, k))
        return 0;
    if (cm->syms && t->dyn && t->sym[d] >= 0)
        return (cm->batch ? 1 : 0) + t->sym[d];
    return -1;
}

static const char *dim_name(const cg_module *cm, int index)
{
    if (cm->batch && index == 0)
        return cm->batch->name;
    return cm->syms->name[index - (cm->batch ? 1 : 0)];
}

/* Dim d as the header and signature give it: 1 for a symbolic one (the
 * SHAPE and BYTES of one item, or of size 1 along each symbol). */
static int64_t unit_dim(const cg_module *cm, const cg_tensor *t, bool output, size_t k, int d)
{
    return dim_index(cm, t, output, k, d) >= 0 ? 1 : t->dims[d];
}

static uint64_t unit_bytes(const cg_module *cm, const cg_tensor *t, bool output, size_t k)
{
    if (!t->dyn)
        return t->nbytes;
    uint64_t n = ir_dtype_info(t->dtype)->bits / 8;
    for (int d = 0; d < t->rank; d++)
        n *= (uint64_t)unit_dim(cm, t, output, k, d);
    return n;
}

/* One input or output (slot k): a symbolic dim is given by its name, and
 * bytes are those with each symbolic dim 1. */
static void json_io(FILE *o, const cg_module *cm, const cg_tensor *t, bool output, size_t k)
{
    fputs("{\"name\":", o);
    json_str(o, t->value->name);
    fprintf(o, ",\"dtype\":\"%s\",\"shape\":[", np_dtype(t->dtype));
    for (int d = 0; d < t->rank; d++) {
        if (d)
            fputc(',', o);
        int idx = dim_index(cm, t, output, k, d);
        if (idx >= 0)
            json_str(o, dim_name(cm, idx));
        else
            fprintf(o, "%lld", (long long)t->dims[d]);
    }
    fprintf(o, "],\"bytes\":%llu", (unsigned long long)unit_bytes(cm, t, output, k));
    if (t->bounded) /* shape gives the bound; NAME_actual_dims the length */
        fprintf(o, ",\"length_axis\":%d", t->len_axis);
    fputc('}', o);
}

static int num_dims(const cg_module *cm)
{
    return (cm->batch ? 1 : 0) + (cm->syms ? cm->syms->n : 0);
}

/* Graph inputs fed at run time, in slot order. */
static const cg_tensor *input_at(const cg_module *cm, size_t k)
{
    const ir_graph *g = cm->model->graph;
    size_t slot = 0;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (!g->inputs[i]->init && slot++ == k)
            return &cm->tens[g->inputs[i]->id];
    return NULL;
}

static size_t n_inputs(const cg_module *cm)
{
    size_t n = 0;
    for (size_t i = 0; i < cm->model->graph->n_inputs; i++)
        n += !cm->model->graph->inputs[i]->init;
    return n;
}

oct_status cg_signature(cg_module *cm)
{
    const ir_graph *g = cm->model->graph;
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o)
        return oct_error(cm->ctx, OCT_EINTERNAL, "out of memory");
    fprintf(o, "{\"name\":\"%s\",\"scratch_size\":%llu,\"workspace_size\":%llu,"
               "\"alignment\":%d,",
            cm->name, (unsigned long long)cm->scratch_size,
            (unsigned long long)(cm->work_size ? cm->scratch_size - cm->work_offset : 0),
            CG_ALIGN);
    if (cm->weights_file)
        fprintf(o, "\"weights_file\":\"%s.weights\",\"weights_size\":%llu,", cm->name,
                (unsigned long long)cm->wlen);
    if (num_dims(cm)) {
        fputs("\"dims\":[", o);
        for (int k = 0; k < num_dims(cm); k++) {
            if (k)
                fputc(',', o);
            json_str(o, dim_name(cm, k));
        }
        fputs("],", o);
    }
    fputs("\"inputs\":[", o);
    for (size_t k = 0; k < n_inputs(cm); k++) {
        if (k)
            fputc(',', o);
        json_io(o, cm, input_at(cm, k), false, k);
    }
    fputs("],\"outputs\":[", o);
    for (size_t i = 0; i < g->n_outputs; i++) {
        if (i)
            fputc(',', o);
        json_io(o, cm, &cm->tens[g->outputs[i]->id], true, i);
    }
    fputc(']', o);
    if (cm->n_kv) { /* the in-place key/value caches (kvcache.c) */
        fputs(",\"kv_cache\":[", o);
        for (size_t k = 0; k < cm->n_kv; k++) {
            const cg_kv_pair *p = &cm->kv[k];
            fprintf(o, "%s{\"input\":%d,\"output\":%d,\"past\":%lld,\"total\":%lld}",
                    k ? "," : "", p->input, p->output, (long long)p->past,
                    (long long)p->total);
        }
        fputc(']', o);
    }
    fputc('}', o);
    fclose(o);
    cm->signature = ir_strdup(cm->ctx, buf);
    free(buf);
    return cm->signature ? OCT_OK : OCT_EINTERNAL;
}

/* ---- header -------------------------------------------------------------- */

static void header_io(FILE *o, const cg_module *cm, const char *kind, size_t count,
                      const cg_tensor *(*at)(const cg_module *, size_t))
{
    const char *n = cm->name;
    fprintf(o, "#define %s_NUM_%sS %zu\n", n, kind, count);
    for (size_t k = 0; k < count; k++) {
        const cg_tensor *t = at(cm, k);
        fprintf(o, "#define %s_%s_%zu_NAME ", n, kind, k);
        c_str(o, t->value->name);
        bool out = kind[0] == 'O';
        fprintf(o, "\n#define %s_%s_%zu_BYTES %lluu\n", n, kind, k,
                (unsigned long long)unit_bytes(cm, t, out, k));
        fprintf(o, "#define %s_%s_%zu_DTYPE \"%s\"\n", n, kind, k, np_dtype(t->dtype));
        fprintf(o, "#define %s_%s_%zu_RANK %d\n", n, kind, k, t->rank);
        fprintf(o, "#define %s_%s_%zu_SHAPE {", n, kind, k);
        for (int d = 0; d < t->rank; d++)
            fprintf(o, "%s%lld", d ? ", " : "", (long long)unit_dim(cm, t, out, k, d));
        fprintf(o, "%s}\n", t->rank ? "" : "1");
        if (t->bounded) /* data-dependent length: SHAPE holds the bound there */
            fprintf(o, "#define %s_%s_%zu_LENGTH_AXIS %d\n", n, kind, k, t->len_axis);
        if (num_dims(cm)) { /* the entry of dims[] each axis takes, -1: static */
            fprintf(o, "#define %s_%s_%zu_DIM_INDEX {", n, kind, k);
            for (int d = 0; d < t->rank; d++)
                fprintf(o, "%s%d", d ? ", " : "", dim_index(cm, t, out, k, d));
            fprintf(o, "%s}\n", t->rank ? "" : "-1");
        }
    }
    /* tables for generic drivers (examples/run_npy.c) */
    const char *lower = kind[0] == 'I' ? "input" : "output";
    fprintf(o, "static const unsigned long long %s_%s_bytes[] = {", n, lower);
    for (size_t k = 0; k < count; k++)
        fprintf(o, "%s%lluu", k ? ", " : "",
                (unsigned long long)unit_bytes(cm, at(cm, k), kind[0] == 'O', k));
    fprintf(o, "%s};\n", count ? "" : "0");
    fprintf(o, "static const char *const %s_%s_npy_descr[] = {", n, lower);
    for (size_t k = 0; k < count; k++)
        fprintf(o, "%s\"%s\"", k ? ", " : "", npy_descr(at(cm, k)->dtype));
    fprintf(o, "%s};\n", count ? "" : "\"\"");
    fprintf(o, "static const int %s_%s_rank[] = {", n, lower);
    for (size_t k = 0; k < count; k++)
        fprintf(o, "%s%d", k ? ", " : "", at(cm, k)->rank);
    fprintf(o, "%s};\n", count ? "" : "0");
    fprintf(o, "static const long long %s_%s_dims[][%d] = {", n, lower, OPS_MAX_RANK);
    for (size_t k = 0; k < count; k++) {
        const cg_tensor *t = at(cm, k);
        fprintf(o, "%s{", k ? ", " : "");
        for (int d = 0; d < t->rank; d++)
            fprintf(o, "%s%lld", d ? ", " : "", (long long)unit_dim(cm, t, kind[0] == 'O', k, d));
        fprintf(o, "%s}", t->rank ? "" : "0");
    }
    fprintf(o, "%s};\n", count ? "" : "{0}");
}

static const cg_tensor *output_at(const cg_module *cm, size_t k)
{
    return &cm->tens[cm->model->graph->outputs[k]->id];
}

/* The in-place key/value caches (kvcache.c): what the caller keeps and
 * the step it runs. */
static void header_kv(FILE *o, const cg_module *cm)
{
    const char *n = cm->name;
    const cg_kv_pair *p0 = &cm->kv[0];
    fprintf(o, "\n/* In-place key/value cache (octet compile --kv-cache=inplace).  Each\n"
               " * cache k is output %s_KV_k_OUTPUT, a [1,H,%lld,D] buffer the caller\n"
               " * keeps from step to step (zero it once); slots 0..%lld of each head\n"
               " * are the past, which %s_run reads there: input %s_KV_k_INPUT (the\n"
               " * past_key_values input) is not read, pass any pointer (NULL).  A step:\n"
               " *   1. set input_ids, position_ids and attention_mask (1 on the valid\n"
               " *      past slots and on the last entry, the new token);\n"
               " *   2. %s_run(inputs, outputs, scratch): it writes logits and, in each\n"
               " *      cache, only slot %lld of every head (the new token's key or value);\n"
               " *   3. move slot %lld into the next free slot s of every head, for every\n"
               " *      cache: memmove(&c[(h * %s_KV_TOTAL + s) * D],\n"
               " *                     &c[(h * %s_KV_TOTAL + %s_KV_PAST) * D], D * elem)\n"
               " *      for h < H, and mark slot s valid in the next attention_mask.\n"
               " * A step writes O(new token) bytes of cache, not a copy of it. */\n",
            n, (long long)p0->total, (long long)p0->past - 1, n, n, n, (long long)p0->past,
            (long long)p0->past, n, n, n);
    fprintf(o, "#define %s_KV_NUM %zu\n", n, cm->n_kv);
    fprintf(o, "#define %s_KV_PAST %lld /* slots of the past */\n", n, (long long)p0->past);
    fprintf(o, "#define %s_KV_TOTAL %lld /* slots of a cache buffer */\n", n,
            (long long)p0->total);
    for (size_t k = 0; k < cm->n_kv; k++) {
        const cg_kv_pair *p = &cm->kv[k];
        fprintf(o, "#define %s_KV_%zu_INPUT %d /* past_key_values.%ld.%s */\n", n, k,
                p->input, p->layer, p->kind ? "value" : "key");
        fprintf(o, "#define %s_KV_%zu_OUTPUT %d /* present.%ld.%s: [1,%lld,%lld,%lld] */\n",
                n, k, p->output, p->layer, p->kind ? "value" : "key", (long long)p->heads,
                (long long)p->total, (long long)p->head_dim);
    }
}

static oct_status write_header(cg_module *cm, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o)
        return oct_error(cm->ctx, OCT_EINTERNAL, "out of memory");
    const char *n = cm->name;
    fprintf(o, "/* %s.h: generated by octet compile (target %s, cpu %s%s).\n",
            n, cm->triple, cm->cpu, cm->native ? ", native: the host's" : "");
    if (!cm->n_variants)
        fprintf(o, " * Runs on CPUs with: %s (kernels: %s).\n",
                cg_isa_string(cm->ctx, cm->isa), cg_kernel_variant(cm));
    else
        fprintf(o, " * One variant per CPU, chosen when the library is loaded: the one\n"
                   " * needing the most features among those this CPU runs (CPUID, with\n"
                   " * the OS saving the registers); OCTET_FORCE_VARIANT=CPU forces one,\n"
                   " * refused on stderr if this CPU lacks a feature it needs.  When no\n"
                   " * variant runs, the entry points return 2.  %s_variant() names\n"
                   " * the chosen CPU (NULL: none).  Variants:\n", n);
    for (int k = 0; k < cm->n_variants; k++)
        fprintf(o, " *   %s: %s (kernels: %s)\n", cm->variants[k]->cpu,
                cg_isa_string(cm->ctx, cm->variants[k]->isa),
                cg_kernel_variant(cm->variants[k]));
    fprintf(o, " * %s_run computes the model's outputs from its inputs; it allocates\n"
               " * nothing and uses `scratch` (%s_SCRATCH_SIZE bytes, aligned to\n"
               " * %s_ALIGNMENT) for intermediates.  Returns 0. */\n", n, n, n);
    if (cm->batch)
        fprintf(o, "/* Symbolic dimension: %s_DIM_0_NAME, the leading (batch) axis of the\n"
                   " * inputs and outputs whose %s_*_DIM_INDEX has 0 there.  Their SHAPE and\n"
                   " * BYTES are for one item, the shape %s_run takes (batch 1).\n"
                   " * %s_run_dims(dims, inputs, outputs, scratch) runs any batch:\n"
                   " * dims[0] is the batch (>= 0), each batched buffer holds dims[0]\n"
                   " * items back to back, and scratch has %s_scratch_size_for(dims)\n"
                   " * bytes.  The body runs once per item.  Returns 0, 1 if dims[0] < 0. */\n",
                n, n, n, n, n);
    if (cm->syms)
        fprintf(o, "/* Symbolic dimensions compiled for run time: %s_DIM_k_NAME, taken by\n"
                   " * the axes whose %s_*_DIM_INDEX holds k.  SHAPE and BYTES are with\n"
                   " * each of them 1.  Only %s_run_dims(dims, inputs, outputs, scratch)\n"
                   " * runs the model: dims[k] gives dimension k (0 to 2^31), and scratch\n"
                   " * has %s_scratch_size_for(dims) bytes (%s_SCRATCH_SIZE does not\n"
                   " * cover the tensors sized by the dims); %s_run and %s_run_threads\n"
                   " * return 1.  Returns 0, 1 for a dim out of range. */\n",
                n, n, n, n, n, n, n);
    fprintf(o, "#ifndef OCTET_MODEL_%s_H\n#define OCTET_MODEL_%s_H\n\n", n, n);
    fprintf(o, "#include <stdint.h>\n\n");
    fprintf(o, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    fprintf(o, "#define %s_SCRATCH_SIZE %lluu\n", n, (unsigned long long)cm->scratch_size);
    fprintf(o, "#define %s_ALIGNMENT %d\n", n, CG_ALIGN);
    fprintf(o, "#define %s_NUM_DIMS %d\n", n, num_dims(cm));
    for (int k = 0; k < num_dims(cm); k++) {
        fprintf(o, "#define %s_DIM_%d_NAME ", n, k);
        c_str(o, dim_name(cm, k));
        fputc('\n', o);
    }
    uint64_t wbytes = 0;
    for (size_t v = 0; v < cm->model->graph->n_values; v++)
        if (cm->tens[v].place == CG_PLACE_CONST)
            wbytes += cm->tens[v].nbytes;
    fprintf(o, "#define %s_WEIGHT_BYTES %lluu /* embedded, read-only */\n", n,
            (unsigned long long)wbytes);
    header_io(o, cm, "INPUT", n_inputs(cm), input_at);
    header_io(o, cm, "OUTPUT", cm->model->graph->n_outputs, output_at);
    if (cm->n_kv)
        header_kv(o, cm);
    fprintf(o, "\nextern const unsigned long long %s_scratch_size;\n", n);
    fprintf(o, "/* JSON: name, scratch_size, alignment, inputs and outputs with name,\n"
               " * dtype, shape and bytes%s%s. */\n",
            num_dims(cm) ? ";\n * dims: the symbolic dimensions, named in the shapes they "
                           "take (bytes: each of them 1)" : "",
            cm->n_kv ? ";\n * kv_cache: per cache its input and output slots, past and "
                       "total slots" : "");
    fprintf(o, "extern const char %s_signature[];\n", n);
    if (cm->weights_file) {
        fprintf(o, "/* The weights live in %s.weights (%s_WEIGHTS_SIZE bytes): set %s_weights\n"
                   " * to its bytes, %s_ALIGNMENT-aligned, before running. */\n", n, n, n, n);
        fprintf(o, "#define %s_WEIGHTS_SIZE %lluu\n", n, (unsigned long long)cm->wlen);
        fprintf(o, "extern const void *%s_weights;\n", n);
    }
    fprintf(o, "int %s_run(const void *const *inputs, void *const *outputs, void *scratch);\n",
            n);
    fprintf(o, "/* The same with the kernels split over a pool of octet_runtime.h\n"
               " * (octrt_pool_create); a NULL pool or one thread runs inline. */\n");
    fprintf(o, "struct octrt_pool;\n");
    fprintf(o, "int %s_run_threads(const void *const *inputs, void *const *outputs, "
               "void *scratch,\n                  struct octrt_pool *pool);\n", n);
    if (cm->n_len)
        fprintf(o, "/* Data-dependent output lengths (NonZero, NonMaxSuppression, Unique):\n"
                   " * an output with %s_OUTPUT_k_LENGTH_AXIS gets a buffer of its SHAPE,\n"
                   " * whose axis LENGTH_AXIS is a bound; the run writes it row-major at the\n"
                   " * length it finds (a prefix of the buffer) and %s_actual_dims(scratch,\n"
                   " * k, dims) then gives output k's dims (returns its rank, -1 for no such\n"
                   " * output).  A run returns 2, having written no more of that output,\n"
                   " * when a length exceeds its bound (octet compile --bound NAME=N). */\n"
                   "int %s_actual_dims(const void *scratch, int k, int64_t *dims);\n",
                n, n, n);
    if (cm->fault)
        fprintf(o, "/* A run returns 2 when an input value is one the model refuses (an\n"
                   " * opset-8 Scan's sequence_lens entry outside [1, L]); its outputs are\n"
                   " * then not valid. */\n");
    if (cm->n_variants)
        fprintf(o, "/* The CPU whose variant runs (see above), or NULL. */\n"
                   "const char *%s_variant(void);\n", n);
    if (num_dims(cm)) {
        fprintf(o, "/* Any batch: dims[%s_NUM_DIMS] gives each symbolic dimension. */\n", n);
        fprintf(o, "int %s_run_dims(const int64_t *dims, const void *const *inputs,\n"
                   "                void *const *outputs, void *scratch);\n", n);
        fprintf(o, "int %s_run_dims_threads(const int64_t *dims, const void *const *inputs,\n"
                   "                void *const *outputs, void *scratch, "
                   "struct octrt_pool *pool);\n", n);
        fprintf(o, "unsigned long long %s_scratch_size_for(const int64_t *dims);\n", n);
    }
    fprintf(o, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
    fclose(o);
    oct_status st = ir_write_atomic(cm->ctx, path, buf, len);
    free(buf);
    return st;
}

/* ---- object, assembly, IR, shared library -------------------------------- */

static oct_status emit_buffer(cg_module *cm, LLVMCodeGenFileType kind,
                              LLVMMemoryBufferRef *buf)
{
    char *err = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(cm->tm, cm->mod, kind, &err, buf)) {
        oct_status st = oct_error(cm->ctx, OCT_EINTERNAL, "compile: code generation "
                                  "failed: %s", err ? err : "");
        LLVMDisposeMessage(err);
        return st;
    }
    return OCT_OK;
}

static oct_status write_buffer(cg_module *cm, LLVMMemoryBufferRef buf, const char *path)
{
    return ir_write_atomic(cm->ctx, path, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
}

/* Runs argv (PATH lookup) and waits; OCT_OK if it exited with status 0. */
static oct_status run_tool(oct_ctx *ctx, char *const *argv)
{
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0)
        return oct_error(ctx, OCT_EINTERNAL, "compile: cannot run '%s': %s", argv[0],
                         strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return oct_error(ctx, OCT_EINTERNAL, "compile: waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return oct_error(ctx, OCT_EINTERNAL, "compile: '%s' failed (status %d)", argv[0],
                         status);
    return OCT_OK;
}

static oct_status write_shared(cg_module *cm, LLVMMemoryBufferRef obj, const char *path)
{
    oct_ctx *ctx = cm->ctx;
    char *tmp_o = ir_sprintf(ctx, "%s.XXXXXX.o", path);
    char *tmp_so = ir_sprintf(ctx, "%s.XXXXXX", path);
    if (!tmp_o || !tmp_so)
        return OCT_EINTERNAL;
    int fd = mkstemps(tmp_o, 2);
    if (fd < 0)
        return oct_error(ctx, OCT_EINTERNAL, "compile: cannot create a file next to '%s': %s",
                         path, strerror(errno));
    size_t len = LLVMGetBufferSize(obj);
    const char *p = LLVMGetBufferStart(obj);
    oct_status st = OCT_OK;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = oct_error(ctx, OCT_EINTERNAL, "compile: writing '%s': %s", tmp_o,
                           strerror(errno));
            break;
        }
        p += w;
        len -= (size_t)w;
    }
    close(fd);
    int fd2 = st == OCT_OK ? mkstemp(tmp_so) : -1;
    if (st == OCT_OK && fd2 < 0)
        st = oct_error(ctx, OCT_EINTERNAL, "compile: cannot create a file next to '%s': %s",
                       path, strerror(errno));
    if (fd2 >= 0)
        close(fd2);
    if (st == OCT_OK) {
        char *argv[] = {"cc", "-shared", "-o", tmp_so, tmp_o, "-lm", NULL};
        st = run_tool(ctx, argv);
    }
    if (st == OCT_OK && rename(tmp_so, path) != 0)
        st = oct_error(ctx, OCT_EINTERNAL, "compile: cannot rename to '%s': %s", path,
                       strerror(errno));
    unlink(tmp_o);
    if (st != OCT_OK && fd2 >= 0)
        unlink(tmp_so);
    return st;
}

oct_status cg_emit(oct_ctx *ctx, cg_module *cm, const char *base, unsigned emit)
{
    oct_status st = OCT_OK;
    if (cm->weights_file) {
        char *path = ir_sprintf(ctx, "%s.weights", base);
        st = path ? ir_write_atomic(ctx, path, cm->wblob ? (const void *)cm->wblob : "",
                                    cm->wlen)
                  : OCT_EINTERNAL;
    }
    if (emit & CG_EMIT_LLVM) {
        char *text = LLVMPrintModuleToString(cm->mod);
        char *path = ir_sprintf(ctx, "%s.ll", base);
        st = path ? ir_write_atomic(ctx, path, text, strlen(text)) : OCT_EINTERNAL;
        LLVMDisposeMessage(text);
    }
    if (st == OCT_OK && (emit & CG_EMIT_ASM)) {
        LLVMMemoryBufferRef buf;
        char *path = ir_sprintf(ctx, "%s.s", base);
        st = path ? emit_buffer(cm, LLVMAssemblyFile, &buf) : OCT_EINTERNAL;
        if (st == OCT_OK) {
            st = write_buffer(cm, buf, path);
            LLVMDisposeMemoryBuffer(buf);
        }
    }
    if (st == OCT_OK && (emit & (CG_EMIT_OBJ | CG_EMIT_SO))) {
        LLVMMemoryBufferRef buf;
        st = emit_buffer(cm, LLVMObjectFile, &buf);
        if (st == OCT_OK) {
            if (emit & CG_EMIT_OBJ) {
                char *path = ir_sprintf(ctx, "%s.o", base);
                st = path ? write_buffer(cm, buf, path) : OCT_EINTERNAL;
            }
            if (st == OCT_OK && (emit & CG_EMIT_SO)) {
                char *path = ir_sprintf(ctx, "%s.so", base);
                st = path ? write_shared(cm, buf, path) : OCT_EINTERNAL;
            }
            LLVMDisposeMemoryBuffer(buf);
        }
    }
    if (st == OCT_OK && (emit & CG_EMIT_HEADER)) {
        char *path = ir_sprintf(ctx, "%s.h", base);
        st = path ? write_header(cm, path) : OCT_EINTERNAL;
    }
    return st;
}

oct_status cg_write_report(oct_ctx *ctx, const cg_module *cm, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    fprintf(o, "# %s: kernel and instruction path of each node (target %s, cpu %s%s)\n",
            cm->name, cm->triple, cm->cpu, cm->native ? ", native: the host's" : "");
    /* a library for several CPUs: each variant's section */
    for (int k = 0; k < (cm->n_variants ? cm->n_variants : 1); k++) {
        const cg_module *v = cm->n_variants ? cm->variants[k] : cm;
        if (cm->n_variants)
            fprintf(o, "# variant %d: cpu %s\n", k, v->cpu);
        fprintf(o, "# features: %s; mattr: \"%s\"; kernels: %s\n",
                cg_isa_string(ctx, v->isa), v->native ? "(host)" : v->features,
                cg_kernel_variant(v));
        fprintf(o, "# node\top\tkernel\tpath\n");
        for (size_t i = 0; i < v->n_report; i++)
            fprintf(o, "%s\t%s\t%s\t%s\n", v->report[i].node, v->report[i].op,
                    v->report[i].kernel, v->report[i].path);
    }
    fclose(o);
    oct_status st = ir_write_atomic(ctx, path, buf, len);
    free(buf);
    return st;
}
