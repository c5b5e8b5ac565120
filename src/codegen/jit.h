/*
 * jit.h: compiled models that live in this process (prefix cg_jit).  A
 * cg_jit is one model lowered by cg_compile into an LLVM ORC LLJIT instance:
 * the same module `octet compile` would write, compiled for the host CPU in
 * memory, with libm and libc symbols (expf, memcpy, ...) resolved from the
 * process.  It gives the module's entry points as function pointers:
 *   int NAME_run(const void *const *inputs, void *const *outputs,
 *                void *scratch);
 *   int NAME_run_threads(..., struct octrt_pool *pool);   (if generated)
 * plus NAME_scratch_size and the NAME_signature JSON (see emit.c).
 *
 * Also the JIT calibration engine of `octet quantize --engine=jit`
 * (passes/quant.h): it compiles a copy of the calibration graph in which
 * every observed value is also a graph output and feeds the observers from
 * the output buffers.
 */
#ifndef OCTET_CG_JIT_H
#define OCTET_CG_JIT_H

#include "codegen/codegen.h"

struct octrt_pool;

typedef int (*cg_run_fn)(const void *const *inputs, void *const *outputs,
                         void *scratch);
typedef int (*cg_run_threads_fn)(const void *const *inputs, void *const *outputs,
                                 void *scratch, struct octrt_pool *pool);

/* NAME_run_dims of a model compiled with a symbolic batch (batch.h). */
typedef int (*cg_run_dims_fn)(const int64_t *dims, const void *const *inputs,
                              void *const *outputs, void *scratch);

/* NAME_actual_dims of a model with data-dependent output lengths
 * (lower_dynlen.c): output k's dims as the last run with `scratch` left
 * them; returns the rank (-1: no such output). */
typedef int (*cg_output_dims_fn)(const void *scratch, int k, int64_t *dims);

typedef struct cg_jit cg_jit;

/* Compiles m (verified, passes run, every shape static) for the host CPU
 * into a new LLJIT and resolves its entry points.  opts->name prefixes the
 * symbols and opts->opt_level picks the optimization level; triple, cpu,
 * features and context are ignored (the JIT targets the host in a context
 * of its own).  A node without a lowering is OCT_EUNSUPPORTED naming the
 * node; LLVM failures are OCT_EINTERNAL diagnostics (also those the JIT
 * session reports later, recorded in ctx: free the JIT before ctx).  *out
 * is freed with cg_jit_free. */
oct_status cg_jit_create(oct_ctx *ctx, const ir_model *m, const cg_options *opts,
                         cg_jit **out);
/* Releases the JIT and the code it holds (NULL is a no-op); the function
 * pointers of j become invalid. */
void cg_jit_free(cg_jit *j);

cg_run_fn cg_jit_run(const cg_jit *j);
/* NULL if the module has no NAME_run_threads. */
cg_run_threads_fn cg_jit_run_threads(const cg_jit *j);
/* NULL unless compiled with opts->batch. */
cg_run_dims_fn cg_jit_run_dims(const cg_jit *j);
uint64_t cg_jit_scratch_size(const cg_jit *j);
/* The in-place key/value caches (opts.kv_inplace; *n = 0 otherwise),
 * owned by j. */
const cg_kv_pair *cg_jit_kv(const cg_jit *j, size_t *n);
/* NULL unless some output has a data-dependent length. */
cg_output_dims_fn cg_jit_output_dims(const cg_jit *j);
/* Output k's compiled shape (a data-dependent axis at its bound) in dims
 * (OPS_MAX_RANK entries); returns the rank, -1 for no such output. */
int cg_jit_output_shape(const cg_jit *j, size_t k, int64_t *dims);
/* The signature JSON, owned by j. */
const char *cg_jit_signature(const cg_jit *j);

#endif
