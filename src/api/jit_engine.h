/*
 * jit_engine.h: the JIT calibration engine (jit_engine.c), which
 * `octet quantize --engine=jit` injects through quant_opts.engine.
 */
#ifndef OCTET_API_JIT_ENGINE_H
#define OCTET_API_JIT_ENGINE_H

#include "ir/ir.h"

struct quant_engine; /* passes/quant.h */

/* A JIT calibration engine instance; NULL if out of memory.  prepare fails
 * with OCT_EUNSUPPORTED, naming the node and suggesting --engine=ref, when
 * the graph has a node the backend cannot lower.  The instance keeps its
 * last compiled graph, so both calibration passes over one graph compile it
 * once; cg_jit_quant_engine_free releases it (ctx: the context the engine
 * ran in). */
struct quant_engine *cg_jit_quant_engine_new(void);
void cg_jit_quant_engine_free(struct quant_engine *eng, oct_ctx *ctx);

#endif
