/*
 * jit.c: compiled models in this process through LLVM ORC's LLJIT, and the
 * base of the JIT calibration engine of `octet quantize --engine=jit`.
 *
 * cg_jit_create builds the module with cg_compile inside a thread-safe
 * context, hands it to a fresh LLJIT whose main JITDylib also searches the
 * process (libm's expf, libc's memcpy), and looks the entry points up.
 * Every LLVMErrorRef is consumed: turned into a diagnostic or dropped with
 * LLVMConsumeError where absence is an answer.
 *
 * The JIT calibration engine built on it is in src/api/jit_engine.c (it
 * runs passes, which codegen may not include).
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
#include "codegen/kernels/octk_dynlen.h"
#include "ops/ops.h"

struct cg_jit {
    LLVMOrcLLJITRef jit;
    cg_run_fn run;
    cg_run_threads_fn run_threads;
    cg_run_dims_fn run_dims;   /* with a symbolic batch */
    uint64_t scratch_size;
    char *signature;        /* malloc */
    cg_kv_pair *kv;         /* malloc: the in-place caches (opts.kv_inplace) */
    size_t n_kv;
    /* data-dependent output lengths (lower_dynlen.c): NAME_actual_dims,
     * and each output's compiled shape (bounds included) */
    cg_output_dims_fn output_dims;
    int64_t (*out_dims)[OPS_MAX_RANK];  /* malloc */
    int *out_rank;                      /* malloc */
    size_t n_out;
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
    X(sunary) X(ssoftmax) X(maxpool8) X(lut8) X(transpose8) X(wogemm) X(wofmt) X(nonzero) X(nms) X(unique)

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
    char *sym_dims = ir_sprintf(ctx, "%s_run_dims", cg_module_name(cm));
    char *sym_odims = ir_sprintf(ctx, "%s_actual_dims", cg_module_name(cm));
    size_t n_kv = 0;
    const cg_kv_pair *kv = cg_module_kv(cm, &n_kv);
    if (j) {
        j->scratch_size = cg_scratch_size(cm);
        j->signature = sig ? strdup(sig) : NULL;
        if (n_kv && (j->kv = malloc(n_kv * sizeof *j->kv))) {
            memcpy(j->kv, kv, n_kv * sizeof *kv);
            j->n_kv = n_kv;
        }
        j->n_out = g->n_outputs;
        j->out_dims = calloc(g->n_outputs + 1, sizeof *j->out_dims);
        j->out_rank = calloc(g->n_outputs + 1, sizeof *j->out_rank);
        for (size_t k = 0; j->out_dims && j->out_rank && k < g->n_outputs; k++)
            j->out_rank[k] = cg_module_output_shape(cm, k, j->out_dims[k]);
    }
    LLVMModuleRef mod = cg_module_take(cm);
    cg_module_free(cm);
    if (!j || !j->signature || j->n_kv != n_kv || !sym_run || !sym_threads || !sym_dims ||
        !sym_odims || !j->out_dims || !j->out_rank || !mod) {
        if (mod)
            LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsc);
        cg_jit_free(j);
        return oct_error(ctx, OCT_EINTERNAL, "out of memory");
    }
    bool has_threads = LLVMGetNamedFunction(mod, sym_threads) != NULL;
    bool has_odims = LLVMGetNamedFunction(mod, sym_odims) != NULL;
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
    if (st == OCT_OK && opts->batch && (a = lookup(ctx, j, sym_dims, &st)))
        *(void **)&j->run_dims = (void *)(uintptr_t)a;
    if (st == OCT_OK && has_odims && (a = lookup(ctx, j, sym_odims, &st)))
        *(void **)&j->output_dims = (void *)(uintptr_t)a;
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
    free(j->kv);
    free(j->out_dims);
    free(j->out_rank);
    free(j);
}

const cg_kv_pair *cg_jit_kv(const cg_jit *j, size_t *n)
{
    *n = j->n_kv;
    return j->kv;
}

cg_run_fn cg_jit_run(const cg_jit *j)
{
    return j->run;
}

cg_run_threads_fn cg_jit_run_threads(const cg_jit *j)
{
    return j->run_threads;
}

cg_run_dims_fn cg_jit_run_dims(const cg_jit *j)
{
    return j->run_dims;
}

uint64_t cg_jit_scratch_size(const cg_jit *j)
{
    return j->scratch_size;
}

const char *cg_jit_signature(const cg_jit *j)
{
    return j->signature;
}

cg_output_dims_fn cg_jit_output_dims(const cg_jit *j)
{
    return j->output_dims;
}

int cg_jit_output_shape(const cg_jit *j, size_t k, int64_t *dims)
{
    if (k >= j->n_out)
        return -1;
    memcpy(dims, j->out_dims[k], sizeof j->out_dims[k]);
    return j->out_rank[k];
}
