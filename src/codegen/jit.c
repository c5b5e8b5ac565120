/*
 * jit.c: compiled models in this process through LLVM ORC's LLJIT, and the
 * JIT calibration engine of `octet quantize --engine=jit`.
 *
 * cg_jit_create builds the module with cg_compile inside a thread-safe
 * context, hands it to a fresh LLJIT whose main JITDylib also searches the
 * process (libm's expf, libc's memcpy), and looks the entry points up.
 * Every LLVMErrorRef is consumed: turned into a diagnostic or dropped with
 * LLVMConsumeError where absence is an answer.
 *
 * The calibration engine copies the calibration graph (ir_model_clone, so
 * the caller's model is never touched), makes every observed value a graph
 * output as well, binds the sample's input shapes, compiles the copy, and
 * per sample runs it and hands the output buffers to the observer as
 * ir_tensor views (no copies).  A sample with other input shapes than the
 * compiled ones triggers a recompilation for those shapes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/jit.h"
#include "codegen/kernels/octk.h"
#include "passes/passes.h"
#include "passes/quant.h"
#include "ops/ops.h"

struct cg_jit {
    LLVMOrcLLJITRef jit;
    cg_run_fn run;
    cg_run_threads_fn run_threads;
    uint64_t scratch_size;
    char *signature;        /* malloc */
};

/* Records err (consumed) as an OCT_EINTERNAL diagnostic. */
static oct_status llvm_error(oct_ctx *ctx, LLVMErrorRef err, const char *what)
{
    char *msg = LLVMGetErrorMessage(err);
    oct_status st = oct_error(ctx, OCT_EINTERNAL, "jit: %s: %s", what, msg ? msg : "");
    LLVMDisposeErrorMessage(msg);
    return st;
}

/* The execution session's reporter of errors that have no caller to go
 * to (a failed materialization, also answered by the lookup): a diagnostic
 * in the oct_ctx the JIT was created with, instead of ORC's print to
 * stderr.  Consumes err. */
static void report_session_error(void *user, LLVMErrorRef err)
{
    llvm_error(user, err, "session");
}

/* A JIT builder whose target machine is the host's (CPU name and
 * features) with the code generator at the level matching opt_level (0..3),
 * so a quick -O1 compile also selects instructions quickly. */
static oct_status make_builder(oct_ctx *ctx, int opt_level, LLVMOrcLLJITBuilderRef *out)
{
    static const LLVMCodeGenOptLevel levels[] = {
        LLVMCodeGenLevelNone, LLVMCodeGenLevelLess, LLVMCodeGenLevelDefault,
        LLVMCodeGenLevelAggressive};
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName();
    char *features = LLVMGetHostCPUFeatures();
    char *msg = NULL;
    LLVMTargetRef target;
    oct_status st = OCT_OK;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        st = oct_error(ctx, OCT_EINTERNAL, "jit: no target for the host '%s': %s", triple,
                       msg ? msg : "");
    } else {
        LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
            target, triple, cpu, features, levels[opt_level < 0 ? 0 : opt_level > 3 ? 3 : opt_level],
            LLVMRelocDefault, LLVMCodeModelJITDefault);
        if (!tm) {
            st = oct_error(ctx, OCT_EINTERNAL, "jit: cannot create a target machine "
                           "for '%s'", triple);
        } else {
            *out = LLVMOrcCreateLLJITBuilder();
            /* both take ownership: tm of the builder, the builder of tm */
            LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
                *out, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
        }
    }
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return st;
}

/* Address of symbol `name` (unmangled) in j's JIT; 0 with a diagnostic. */
static LLVMOrcExecutorAddress lookup(oct_ctx *ctx, cg_jit *j, const char *name,
                                     oct_status *st)
{
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef err = LLVMOrcLLJITLookup(j->jit, &addr, name);
    if (err) {
        *st = llvm_error(ctx, err, name);
        return 0;
    }
    return addr;
}

/* The kernel entry points generated code calls (kernels.c: octk_F_tasks
 * and octk_F_run), defined in the JIT as the addresses of octet's own
 * natively compiled kernels. */
#define JIT_KERNELS(X) X(qconv) X(qdwconv) X(qgemm) X(sconv) X(sdwconv) X(sgemm) \
    X(sunary) X(ssoftmax) X(maxpool8) X(lut8)

static LLVMErrorRef define_kernels(LLVMOrcLLJITRef jit, LLVMOrcJITDylibRef jd)
{
    static const struct { const char *name; void (*fn)(void); } table[] = {
#define X(k) {"octk_" #k "_tasks", (void (*)(void))octk_##k##_tasks}, \
             {"octk_" #k "_run", (void (*)(void))octk_##k##_run},
        JIT_KERNELS(X)
#undef X
    };
    enum { N = sizeof table / sizeof table[0] };
    LLVMOrcCSymbolMapPair pairs[N];
    for (size_t i = 0; i < N; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, table[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)table[i].fn;
        pairs[i].Sym.Flags.GenericFlags =
            LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
        pairs[i].Sym.Flags.TargetFlags = 0;
    }
    return LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, N));
}

oct_status cg_jit_create(oct_ctx *ctx, const ir_model *m, const cg_options *opts,
                         cg_jit **out)
{
    *out = NULL;
    const ir_graph *g = m->graph;
    for (size_t k = 0; k < g->n_nodes; k++)
        if (!cg_lowering(g->nodes[k]->op))
            return oct_node_error(ctx, OCT_EUNSUPPORTED, g->nodes[k],
                                  "jit: no lowering for %s: the backend cannot compile "
                                  "this model", g->nodes[k]->op_type);

    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    cg_options o = *opts;
    o.triple = o.cpu = o.features = NULL; /* the host */
    o.native_kernels = true;              /* define_kernels gives them */
    o.context = LLVMOrcThreadSafeContextGetContext(tsc);
    cg_module *cm;
    oct_status st = cg_compile(ctx, m, &o, &cm);
    if (st != OCT_OK) {
        LLVMOrcDisposeThreadSafeContext(tsc);
        return st;
    }
    cg_jit *j = calloc(1, sizeof *j);
    const char *sig = cg_module_signature(cm);
    char *sym_run = ir_sprintf(ctx, "%s_run", cg_module_name(cm));
    char *sym_threads = ir_sprintf(ctx, "%s_run_threads", cg_module_name(cm));
    if (j) {
        j->scratch_size = cg_scratch_size(cm);
        j->signature = sig ? strdup(sig) : NULL;
    }
    LLVMModuleRef mod = cg_module_take(cm);
    cg_module_free(cm);
    if (!j || !j->signature || !sym_run || !sym_threads || !mod) {
        if (mod)
            LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsc);
        cg_jit_free(j);
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    }
    bool has_threads = LLVMGetNamedFunction(mod, sym_threads) != NULL;
    /* the module shares ownership of the context from here on */
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc);

    LLVMOrcLLJITBuilderRef builder = NULL;
    if ((st = make_builder(ctx, opts->opt_level, &builder)) != OCT_OK) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        cg_jit_free(j);
        return st;
    }
    /* takes the builder, also on failure */
    LLVMErrorRef err = LLVMOrcCreateLLJIT(&j->jit, builder);
    if (err) {
        j->jit = NULL;
        LLVMOrcDisposeThreadSafeModule(tsm);
        st = llvm_error(ctx, err, "cannot create the JIT");
        cg_jit_free(j);
        return st;
    }
    /* ctx outlives j: every caller frees the JIT before its context */
    LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(j->jit),
                                            report_session_error, ctx);
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
    LLVMOrcDefinitionGeneratorRef gen;
    err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
        &gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
    if (err) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        st = llvm_error(ctx, err, "cannot search the process for symbols");
        cg_jit_free(j);
        return st;
    }
    LLVMOrcJITDylibAddGenerator(jd, gen);
    if ((err = define_kernels(j->jit, jd))) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        st = llvm_error(ctx, err, "cannot define the kernel symbols");
        cg_jit_free(j);
        return st;
    }
    /* takes the module, also on failure */
    if ((err = LLVMOrcLLJITAddLLVMIRModule(j->jit, jd, tsm))) {
        st = llvm_error(ctx, err, "cannot add the module");
        cg_jit_free(j);
        return st;
    }
    /* the first lookup compiles the module and links it */
    LLVMOrcExecutorAddress a = lookup(ctx, j, sym_run, &st);
    if (a)
        *(void **)&j->run = (void *)(uintptr_t)a;
    if (st == OCT_OK && has_threads && (a = lookup(ctx, j, sym_threads, &st)))
        *(void **)&j->run_threads = (void *)(uintptr_t)a;
    if (st != OCT_OK) {
        cg_jit_free(j);
        return st;
    }
    *out = j;
    return OCT_OK;
}

void cg_jit_free(cg_jit *j)
{
    if (!j)
        return;
    if (j->jit) {
        LLVMErrorRef err = LLVMOrcDisposeLLJIT(j->jit);
        if (err) /* nothing left to report it to: the code is gone either way */
            LLVMConsumeError(err);
    }
    free(j->signature);
    free(j);
}

cg_run_fn cg_jit_run(const cg_jit *j)
{
    return j->run;
}

cg_run_threads_fn cg_jit_run_threads(const cg_jit *j)
{
    return j->run_threads;
}

uint64_t cg_jit_scratch_size(const cg_jit *j)
{
    return j->scratch_size;
}

const char *cg_jit_signature(const cg_jit *j)
{
    return j->signature;
}

/* ---- the calibration engine ----------------------------------------------- */

typedef struct jit_engine {
    ir_model *m;                 /* the caller's model (inputs, names) */
    ir_value *const *observed;   /* the caller's values */
    size_t n_observed;
    char *key;                   /* m's text form (malloc): the cache key */
    size_t n_key;
    size_t n_in;                 /* non-initializer graph inputs */
    /* the compiled copy, for the input shapes in `bound` */
    cg_jit *jit;
    ir_tensor **bound;           /* n_in shape holders (no data) */
    size_t n_out;
    ir_tensor **outs;            /* output buffers as tensors (views) */
    int *out_of_observed;        /* observed index -> output index */
    const void **in_ptrs;
    void **out_ptrs;
    void *scratch;
    bool cached;                 /* owned by an engine instance's cache */
} jit_engine;

/* An engine instance's cache: the last prepared state, kept compiled so
 * the second calibration pass over the same graph does not recompile. */
typedef struct jit_cache {
    jit_engine *kept;
} jit_cache;

/* Drops the compiled copy and its buffers. */
static void drop_compiled(jit_engine *je, oct_ctx *ctx)
{
    cg_jit_free(je->jit);
    je->jit = NULL;
    for (size_t i = 0; je->outs && i < je->n_out; i++)
        ir_heap_tensor_free(ctx, je->outs[i]);
    free(je->outs);
    free(je->out_ptrs);
    free(je->scratch);
    je->outs = NULL;
    je->out_ptrs = NULL;
    je->scratch = NULL;
    je->n_out = 0;
}

static bool same_shape(const ir_tensor *a, const ir_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank)
        return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d])
            return false;
    return true;
}

/* Compiles a copy of je->m for the input types of `shapes` (one per
 * non-initializer input) with every observed value as an extra output. */
static oct_status compile_copy(jit_engine *je, const ir_tensor *const *shapes,
                               oct_ctx *ctx)
{
    drop_compiled(je, ctx);
    ir_model *c;
    oct_status st = ir_model_clone(ctx, je->m, &c);
    if (st == OCT_OK)
        st = ir_verify(c, ctx);
    ir_graph *g = st == OCT_OK ? c->graph : NULL;
    for (size_t i = 0, k = 0; st == OCT_OK && i < g->n_inputs; i++) {
        if (g->inputs[i]->init)
            continue;
        const ir_tensor *t = shapes[k++];
        st = pass_bind_input_type(ctx, g->inputs[i], t->dtype, t->rank, t->dims);
    }
    if (st != OCT_OK)
        return st;
    /* outputs: the model's, then each observed value not already one */
    size_t cap = g->n_outputs + je->n_observed;
    ir_value **outputs = ir_alloc_array(ctx, cap + 1, sizeof *outputs);
    if (!je->out_of_observed)
        je->out_of_observed = calloc(je->n_observed + 1, sizeof *je->out_of_observed);
    if (!outputs || !je->out_of_observed)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    size_t n_out = g->n_outputs;
    memcpy(outputs, g->outputs, n_out * sizeof *outputs);
    for (size_t j = 0; j < je->n_observed; j++) {
        ir_value *v = ir_graph_find(g, je->observed[j]->name);
        if (!v)
            return oct_error(ctx, OCT_EINTERNAL, "jit: observed value '%s' lost in the "
                             "copy of the graph", je->observed[j]->name);
        size_t o = 0;
        while (o < n_out && outputs[o] != v)
            o++;
        if (o == n_out) {
            outputs[n_out++] = v;
            v->flags |= IR_VAL_OUTPUT;
        }
        je->out_of_observed[j] = (int)o;
    }
    g->outputs = outputs;
    g->n_outputs = n_out;
    if ((st = pass_run_list(c, "shape_infer", ctx)) != OCT_OK)
        return st;
    cg_options o = {.name = "octet_calib", .opt_level = 1};
    if ((st = cg_jit_create(ctx, c, &o, &je->jit)) != OCT_OK) {
        if (st == OCT_EUNSUPPORTED)
            oct_diagf(ctx, OCT_SEV_NOTE, OCT_OK, NULL, 0, -1, NULL,
                      "calibration with --engine=jit compiles the graph; "
                      "--engine=ref runs it with the reference interpreter");
        return st;
    }
    /* output buffers as tensors; their data is what NAME_run writes */
    je->n_out = n_out;
    je->outs = calloc(n_out + 1, sizeof *je->outs);
    je->out_ptrs = calloc(n_out + 1, sizeof *je->out_ptrs);
    uint64_t ss = cg_jit_scratch_size(je->jit);
    je->scratch = aligned_alloc(CG_ALIGN, (size_t)((ss + CG_ALIGN - 1) / CG_ALIGN + 1) * CG_ALIGN);
    if (!je->outs || !je->out_ptrs || !je->scratch)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    for (size_t i = 0; i < n_out; i++) {
        const ir_type *ty = &outputs[i]->type;
        int64_t dims[OPS_MAX_RANK];
        for (int d = 0; d < ty->rank && d < OPS_MAX_RANK; d++)
            dims[d] = ty->dims[d].value;
        if (!(je->outs[i] = ir_heap_tensor_new(ctx, ty->dtype, ty->rank, dims)))
            return oct_error(ctx, OCT_EINTERNAL, "out of memory");
        je->out_ptrs[i] = je->outs[i]->data;
    }
    /* remember the shapes compiled for */
    for (size_t k = 0; k < je->n_in; k++) {
        ir_heap_tensor_free(ctx, je->bound[k]);
        je->bound[k] = ir_heap_tensor_new(ctx, shapes[k]->dtype, shapes[k]->rank,
                                      shapes[k]->dims);
        if (!je->bound[k])
            return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    }
    return OCT_OK;
}

static void free_state(jit_engine *je, oct_ctx *ctx);

/* The cache key of m: its text form (ir_print_text), which names every
 * node, value, type and attribute and carries a 64-bit FNV-1a hash of every
 * tensor's bytes.  *key is malloc'ed. */
static oct_status model_key(const ir_model *m, char **key, size_t *n_key, oct_ctx *ctx)
{
    *key = NULL;
    *n_key = 0;
    FILE *f = open_memstream(key, n_key);
    if (!f)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    ir_print_text(m, f);
    if (fclose(f) != 0 || !*key) {
        free(*key);
        *key = NULL;
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    }
    return OCT_OK;
}

/* Whether kept was prepared for the same graph (same text form) and the
 * same observed values (same names, same order). */
static bool same_preparation(const jit_engine *kept, const char *key, size_t n_key,
                             ir_value *const *observed, size_t n_observed)
{
    if (kept->n_key != n_key || memcmp(kept->key, key, n_key) ||
        kept->n_observed != n_observed)
        return false;
    for (size_t j = 0; j < n_observed; j++)
        if (strcmp(kept->observed[j]->name, observed[j]->name))
            return false;
    return true;
}

static oct_status jit_prepare(const quant_engine *eng, ir_model *m,
                              ir_value *const *observed, size_t n_observed,
                              void **state, oct_ctx *ctx)
{
    jit_cache *cache = eng->user;
    *state = NULL;
    char *key;
    size_t n_key;
    oct_status st = model_key(m, &key, &n_key, ctx);
    if (st != OCT_OK)
        return st;
    if (cache && cache->kept &&
        same_preparation(cache->kept, key, n_key, observed, n_observed)) {
        free(key);
        jit_engine *je = cache->kept;
        je->m = m;
        je->observed = observed;
        *state = je;
        return OCT_OK;
    }
    jit_engine *je = calloc(1, sizeof *je);
    *state = je;
    if (!je) {
        free(key);
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    }
    je->key = key;
    je->n_key = n_key;
    je->m = m;
    je->observed = observed;
    je->n_observed = n_observed;
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        je->n_in += !m->graph->inputs[i]->init;
    je->bound = calloc(je->n_in + 1, sizeof *je->bound);
    je->in_ptrs = calloc(je->n_in + 1, sizeof *je->in_ptrs);
    if (!je->bound || !je->in_ptrs)
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    if (cache) {
        free_state(cache->kept, ctx);
        cache->kept = je;
        je->cached = true;
    }
    return OCT_OK;
}

static oct_status jit_run(void *state, const ir_tensor *const *inputs, size_t n_inputs,
                          quant_observe_fn observe, void *observe_user, oct_ctx *ctx)
{
    jit_engine *je = state;
    if (n_inputs != je->n_in)
        return oct_error(ctx, OCT_EINPUT, "calibration sample has %zu inputs, the model %zu",
                         n_inputs, je->n_in);
    bool same = je->jit != NULL;
    for (size_t k = 0; same && k < n_inputs; k++)
        same = je->bound[k] && same_shape(je->bound[k], inputs[k]);
    oct_status st;
    if (!same && (st = compile_copy(je, inputs, ctx)) != OCT_OK) {
        drop_compiled(je, ctx);
        return st;
    }
    for (size_t k = 0; k < n_inputs; k++)
        je->in_ptrs[k] = inputs[k]->data;
    int rc = cg_jit_run(je->jit)(je->in_ptrs, je->out_ptrs, je->scratch);
    if (rc != 0)
        return oct_error(ctx, OCT_EINTERNAL, "jit: the compiled calibration graph "
                         "returned %d", rc);
    for (size_t j = 0; j < je->n_observed; j++)
        observe(observe_user, je->observed[j], je->outs[je->out_of_observed[j]]);
    return OCT_OK;
}

static void free_state(jit_engine *je, oct_ctx *ctx)
{
    if (!je)
        return;
    drop_compiled(je, ctx);
    for (size_t k = 0; je->bound && k < je->n_in; k++)
        ir_heap_tensor_free(ctx, je->bound[k]);
    free(je->bound);
    free(je->in_ptrs);
    free(je->out_of_observed);
    free(je->key);
    free(je);
}

/* A cached state stays with its engine instance. */
static void jit_free(void *state, oct_ctx *ctx)
{
    jit_engine *je = state;
    if (je && !je->cached)
        free_state(je, ctx);
}

quant_engine *cg_jit_quant_engine_new(void)
{
    quant_engine *eng = calloc(1, sizeof *eng);
    jit_cache *cache = calloc(1, sizeof *cache);
    if (!eng || !cache) {
        free(eng);
        free(cache);
        return NULL;
    }
    *eng = (quant_engine){.name = "jit", .prepare = jit_prepare, .run = jit_run,
                          .free = jit_free, .user = cache};
    return eng;
}

void cg_jit_quant_engine_free(quant_engine *eng, oct_ctx *ctx)
{
    if (!eng)
        return;
    jit_cache *cache = eng->user;
    if (cache)
        free_state(cache->kept, ctx);
    free(cache);
    free(eng);
}
