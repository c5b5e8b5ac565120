/*
 * fuzz_compile.c: libFuzzer target for what `octet compile` does, on small
 * graphs and in process: load (at most 32 nodes, 1<<16 elements per tensor,
 * 4 MiB of initializers) + verify + the default passes + mnb_unpack + dqmm_expand + qdq_fuse, then,
 * when every graph input has a static type of at most 4096 elements, the
 * LLVM backend through the ORC JIT (cg_jit_create at opt_level 0) and one
 * run of the compiled model on generated inputs (unless its buffers or its
 * work bound are too large for a fuzzing run: see run_cost).
 *
 * The generated code is not instrumented by ASan, so every buffer handed
 * to it (inputs, outputs, scratch) is its own mapping between two
 * inaccessible guard pages, ending at most 63 bytes before the second: a
 * read or write past the end of a buffer (or a page or more before its
 * start) is a SEGV that libFuzzer reports.  Inputs are read-only while the
 * model runs, so a write into an input is one too.  Each buffer starts
 * 64-byte aligned, as the generated code requires.
 * Errors (unsupported ops, dynamic shapes, limits) are just statuses.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "codegen/jit.h"
#include "fuzz_common.h"
#include "passes/passes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    MAX_INPUT_ELEMS = 4096,
    MAX_IO = 64,                    /* graph inputs / outputs per model */
};
/* Larger scratch or output buffers are not run (not a compiler bug: a
 * legal graph may need them, but the fuzzer's RSS limit would flag it). */
static const uint64_t MAX_BUFFER_BYTES = 256ull << 20;
/* Nor graphs whose work bound (run_cost) exceeds this: a legal Conv of
 * 1<<16 outputs over 1<<16 weights is billions of operations, a libFuzzer
 * timeout that is no bug. */
static const uint64_t MAX_RUN_COST = 1ull << 31;

/* One buffer for the generated code: `p` (64-byte aligned, `bytes` long)
 * lies between two PROT_NONE pages and ends at most 63 bytes before the
 * second; map/len describe the whole mapping (NULL/0 if none), body/body_len
 * the accessible part. */
typedef struct guarded {
    void *map;
    size_t len;
    uint8_t *body;
    size_t body_len;
    uint8_t *p;
} guarded;

/* Maps a guarded buffer of `bytes` bytes (zero-filled, as fresh anonymous
 * memory is).  A zero-byte buffer points at the guard page itself.
 * Returns false if the mapping failed. */
static bool guarded_alloc(guarded *g, uint64_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t padded = (bytes + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    size_t body = (size_t)((padded + page - 1) / page * page);
    g->len = page + body + page;
    g->map = mmap(NULL, g->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) {
        g->map = NULL;
        g->len = 0;
        return false;
    }
    g->body = (uint8_t *)g->map + page;
    g->body_len = body;
    if (body && mprotect(g->body, body, PROT_READ | PROT_WRITE) != 0)
        return false;
    g->p = g->body + body - padded;
    return true;
}

static void guarded_free(guarded *g)
{
    if (g->map)
        munmap(g->map, g->len);
    g->map = NULL;
}

/* Whether every non-initializer graph input has a fully static tensor type
 * of at most MAX_INPUT_ELEMS elements (and there are at most MAX_IO). */
static bool inputs_small_and_static(const ir_graph *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->init)
            continue;
        if (++n > MAX_IO || !v->has_type || v->type.rank < 0 || v->type.rank > 8 ||
            (v->type.rank > 0 && !v->type.dims))
            return false;
        uint64_t elems = 1;
        for (int d = 0; d < v->type.rank; d++) {
            int64_t x = v->type.dims[d].value;
            if (x < 0 || (x && elems > MAX_INPUT_ELEMS / (uint64_t)x))
                return false;
            elems *= (uint64_t)x;
        }
        if (elems > MAX_INPUT_ELEMS)
            return false;
    }
    return true;
}

/* Elements of a value (its initializer's, else its static type's);
 * UINT64_MAX if unknown or huge. */
static uint64_t value_elems(const ir_value *v)
{
    if (v->init)
        return v->init->nelems;
    if (!v->has_type || v->type.rank < 0 || (v->type.rank > 0 && !v->type.dims))
        return UINT64_MAX;
    uint64_t n = 1;
    for (int d = 0; d < v->type.rank; d++) {
        int64_t x = v->type.dims[d].value;
        if (x < 0 || (x && n > (UINT64_MAX >> 1) / (uint64_t)x))
            return UINT64_MAX;
        n *= (uint64_t)x;
    }
    return n;
}

/* An upper bound on the operations of one run, whatever the ops: each
 * node's output elements times (1 + all its input elements), which bounds
 * convolutions, matrix products, pooling and reductions alike (and is
 * loose for element-wise ops); saturates at UINT64_MAX. */
static uint64_t run_cost(const ir_graph *g)
{
    uint64_t total = 0;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        uint64_t in = 1, out = 0;
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] && __builtin_add_overflow(in, value_elems(n->in[i]), &in))
                return UINT64_MAX;
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i] && n->out[i]->name[0] &&
                __builtin_add_overflow(out, value_elems(n->out[i]), &out))
                return UINT64_MAX;
        uint64_t c;
        if (__builtin_mul_overflow(in, out, &c) || __builtin_add_overflow(total, c, &total))
            return UINT64_MAX;
    }
    return total;
}

/* The "bytes" of entry k of the signature's array `key`; -1 if absent or
 * not a sane size. */
static int64_t sig_bytes(const cJSON *sig, const char *key, int k)
{
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(sig, key), k);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "bytes");
    if (!cJSON_IsNumber(b) || b->valuedouble < 0 || b->valuedouble > (double)MAX_BUFFER_BYTES)
        return -1;
    return (int64_t)b->valuedouble;
}

/* Runs the compiled model j of graph g once: inputs from fuzz_input (or
 * zeros when its size differs from the signature's), outputs and scratch
 * as the signature says.  Returns without running when the signature
 * disagrees with the graph, a buffer would be too large or the work bound
 * is over MAX_RUN_COST. */
static void run_once(oct_ctx *ctx, const ir_graph *g, const cg_jit *j, uint64_t *seed)
{
    cJSON *sig = cJSON_Parse(cg_jit_signature(j));
    if (!sig)
        return;
    int n_in = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sig, "inputs"));
    int n_out = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sig, "outputs"));
    guarded bufs[2 * MAX_IO + 1] = {0};
    const void *in_ptrs[MAX_IO + 1] = {0};
    void *out_ptrs[MAX_IO + 1] = {0};
    uint64_t scratch = cg_jit_scratch_size(j);
    bool ok = n_in <= MAX_IO && n_out <= MAX_IO && (size_t)n_out == g->n_outputs &&
              scratch <= MAX_BUFFER_BYTES && run_cost(g) <= MAX_RUN_COST && guarded_alloc(&bufs[2 * MAX_IO], scratch);
    int k_in = 0;
    for (size_t i = 0; ok && i < g->n_inputs; i++) {
        if (g->inputs[i]->init)
            continue;
        int64_t bytes = k_in < n_in ? sig_bytes(sig, "inputs", k_in) : -1;
        if (bytes < 0 || !guarded_alloc(&bufs[k_in], (uint64_t)bytes)) {
            ok = false;
            break;
        }
        ir_tensor *t = fuzz_input(ctx, g->inputs[i], MAX_INPUT_ELEMS, seed);
        if (t && t->nbytes == (uint64_t)bytes)
            memcpy(bufs[k_in].p, t->data, (size_t)bytes);
        ir_heap_tensor_free(ctx, t);
        in_ptrs[k_in] = bufs[k_in].p;
        k_in++;
    }
    ok = ok && k_in == n_in;
    for (int k = 0; ok && k < n_out; k++) {
        int64_t bytes = sig_bytes(sig, "outputs", k);
        ok = bytes >= 0 && guarded_alloc(&bufs[MAX_IO + k], (uint64_t)bytes);
        out_ptrs[k] = bufs[MAX_IO + k].p;
    }
    for (int k = 0; ok && k < n_in; k++)
        ok = !bufs[k].body_len || mprotect(bufs[k].body, bufs[k].body_len, PROT_READ) == 0;
    if (ok)
        (void)cg_jit_run(j)(in_ptrs, out_ptrs, bufs[2 * MAX_IO].p);
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        guarded_free(&bufs[k]);
    cJSON_Delete(sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oct_ctx *ctx = fuzz_ctx();
    if (!ctx)
        return 0;
    oct_limits *l = oct_ctx_limits(ctx);
    l->max_nodes = 32;
    l->max_tensor_elems = 1u << 16;
    l->max_total_init_bytes = 4u << 20;
    ir_model *m = NULL;
    oct_status st = fuzz_load_model(ctx, data, size, &m);
    if (!st)
        st = pass_run_list(m, "mnb_unpack,dqmm_expand,qdq_fuse", ctx);
    if (!st && inputs_small_and_static(m->graph) && m->graph->n_outputs <= MAX_IO) {
        cg_options o = {.name = "f", .opt_level = 0};
        cg_jit *j = NULL;
        if (cg_jit_create(ctx, m, &o, &j) == OCT_OK) {
            uint64_t seed = fuzz_seed(data, size);
            run_once(ctx, m->graph, j, &seed);
        }
        cg_jit_free(j); /* before ctx: the JIT reports into it */
    }
    oct_ctx_free(ctx);
    return 0;
}
