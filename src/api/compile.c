/*
 * compile.c: compiling in the public API: the compile options, and
 * oct_compile, which runs the compile pipeline on a copy of the model:
 * given input shapes, the default passes, then qdq_fuse (QDQ islands
 * around Conv/MatMul/Gemm become integer ops) unless the QDQ graph is to
 * be kept or the target is not x86-64 (the integer kernels are x86-64
 * code: other targets compute QDQ models in float between exact Q/DQ),
 * then the LLVM backend.  A symbolic leading (batch) dimension left
 * unbound is compiled for run time when the graph is proved to keep its
 * items apart (codegen/batch.h): the model is prepared at batch 1 (the
 * body) and at a probe batch (for the proof).  Other symbolic dims are
 * read at run time (codegen/symdims.h).  The preparation is shared with
 * the JIT of runner.c (api/compile.h).
 */
#include <ctype.h>
#include <string.h>

#include "api/compile.h"
#include "codegen/symdims.h"
#include "passes/passes.h"
#include "ops/ops.h"

oct_status oct_compile_options_new(oct_ctx *ctx, oct_compile_options **out)
{
    if (!ctx || !out)
        return OCT_EUSAGE;
    oct_compile_options *o = ir_alloc(ctx, sizeof *o);
    if (!(*out = o))
        return OCT_EINTERNAL;
    o->ctx = ctx;
    o->cg.opt_level = 3;
    o->emit = CG_EMIT_OBJ | CG_EMIT_HEADER;
    return OCT_OK;
}

static oct_status parse_emit(oct_ctx *ctx, const char *v, unsigned *emit)
{
    static const struct { const char *name; unsigned bit; } kinds[] = {
        {"obj", CG_EMIT_OBJ}, {"so", CG_EMIT_SO}, {"asm", CG_EMIT_ASM},
        {"llvm", CG_EMIT_LLVM}, {"header", CG_EMIT_HEADER}};
    *emit = 0;
    while (*v) {
        size_t len = strcspn(v, ",");
        bool found = false;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (strlen(kinds[k].name) == len && !strncmp(kinds[k].name, v, len)) {
                *emit |= kinds[k].bit;
                found = true;
            }
        if (len && !found)
            return oct_error(ctx, OCT_EUSAGE, "emit: unknown kind '%.*s' (obj, so, asm, "
                             "llvm, header)", (int)len, v);
        v += len + (v[len] == ',');
    }
    if (!*emit)
        return oct_error(ctx, OCT_EUSAGE, "emit: nothing to emit");
    return OCT_OK;
}

oct_status oct_compile_options_set(oct_compile_options *o, const char *key,
                                   const char *value)
{
    if (!o || !key || !value)
        return OCT_EUSAGE;
    oct_ctx *ctx = o->ctx;
    const char *kept = ir_strdup(ctx, value);
    if (!kept)
        return OCT_EINTERNAL;
    if (!strcmp(key, "emit"))
        return parse_emit(ctx, value, &o->emit);
    if (!strcmp(key, "opt-level")) {
        if (value[0] < '0' || value[0] > '3' || value[1])
            return oct_error(ctx, OCT_EUSAGE, "opt-level takes 0, 1, 2 or 3");
        o->cg.opt_level = value[0] - '0';
    } else if (!strcmp(key, "mtriple")) {
        o->cg.triple = kept;
    } else if (!strcmp(key, "mcpu")) {
        o->cg.cpu = kept;
    } else if (!strcmp(key, "mattr")) {
        o->cg.features = kept;
    } else if (!strcmp(key, "weights")) {
        if (strcmp(value, "embed") && strcmp(value, "file"))
            return oct_error(ctx, OCT_EUSAGE, "weights takes embed or file");
        o->cg.weights_file = !strcmp(value, "file");
    } else if (!strcmp(key, "keep-qdq")) {
        o->keep_qdq = strcmp(value, "0") != 0;
    } else if (!strcmp(key, "kv-cache")) {
        if (strcmp(value, "inplace") && strcmp(value, "none"))
            return oct_error(ctx, OCT_EUSAGE, "kv-cache takes inplace or none, not '%s'",
                             value);
        o->cg.kv_inplace = !strcmp(value, "inplace");
    } else if (!strcmp(key, "layout")) {
        if (strcmp(value, "auto") && strcmp(value, "nchw"))
            return oct_error(ctx, OCT_EUSAGE, "layout takes auto or nchw, not '%s'", value);
        o->cg.layout_nchw = !strcmp(value, "nchw");
    } else if (!strcmp(key, "report")) {
        o->report = kept;
    } else if (!strcmp(key, "name")) {
        bool ok = *value && !isdigit((unsigned char)*value);
        for (const char *p = value; *p; p++)
            ok &= isalnum((unsigned char)*p) || *p == '_';
        if (!ok)
            return oct_error(ctx, OCT_EUSAGE, "name '%s' is not a C identifier", value);
        o->name = kept;
    } else if (!strcmp(key, "input-shape")) {
        return api_push_string(ctx, &o->shapes, &o->n_shapes, &o->cap_shapes, value);
    } else if (!strcmp(key, "bound")) {
        oct_status st = api_push_string(ctx, &o->bounds, &o->n_bounds, &o->cap_bounds, value);
        o->cg.bounds = (const char *const *)o->bounds;
        o->cg.n_bounds = o->n_bounds;
        return st;
    } else {
        return oct_error(ctx, OCT_EUSAGE, "unknown compile option '%s'", key);
    }
    return OCT_OK;
}

size_t oct_compile_symbol_prefix(const char *out_base, char *buf, size_t size)
{
    const char *slash = strrchr(out_base, '/');
    const char *base = slash ? slash + 1 : out_base;
    size_t len = strlen(base), k = 0;
    if (!len || len + 2 > size)
        return 0;
    if (isdigit((unsigned char)base[0]))
        buf[k++] = '_';
    for (size_t i = 0; i < len; i++)
        buf[k++] = isalnum((unsigned char)base[i]) ? base[i] : '_';
    buf[k] = '\0';
    return k;
}

/* oct_compile_symbol_prefix in the context's memory (NULL: out of memory
 * or an empty last component). */
static const char *derive_name(oct_ctx *ctx, const char *out_base)
{
    size_t size = strlen(out_base) + 2;
    char *name = ir_alloc(ctx, size);
    return name && oct_compile_symbol_prefix(out_base, name, size) ? name : NULL;
}

oct_status api_backend_passes(oct_ctx *ctx, ir_model *m, bool fuse)
{
    oct_status st = pass_unroll_loop(m, ctx);
    if (st == OCT_OK)
        st = pass_inline_if(m, ctx);
    return st ? st : pass_run_list(m, fuse ? "mnb_unpack,dqmm_expand,qdq_fuse"
                                          : "mnb_unpack,dqmm_expand", ctx);
}

oct_status api_prepare_at_batch(oct_ctx *ctx, const ir_model *sym, const cg_batch *b,
                                int64_t batch, const char *passes, bool fuse,
                                ir_model **out)
{
    oct_status st = api_clone_ir(ctx, sym, out);
    const ir_graph *g = st ? NULL : (*out)->graph;
    for (size_t i = 0, k = 0; !st && i < g->n_inputs; i++) {
        ir_value *v = g->inputs[i];
        if (v->init)
            continue;
        if (b->in_batched[k++]) {
            int64_t dims[OPS_MAX_RANK];
            for (int d = 0; d < v->type.rank && d < OPS_MAX_RANK; d++)
                dims[d] = d ? v->type.dims[d].value : batch;
            st = pass_bind_input_type(ctx, v, v->type.dtype, v->type.rank, dims);
        }
    }
    if (!st)
        st = api_run_pipeline(ctx, *out, passes ? passes : "default");
    if (!st)
        st = api_backend_passes(ctx, *out, fuse);
    return st;
}

oct_status api_prepare_batch(oct_ctx *ctx, ir_model *sym, const char *passes, bool fuse,
                             cg_batch *b, ir_model **out)
{
    oct_status st = cg_batch_find(ctx, sym->graph, b);
    if (st)
        return st;
    if (!b->name) {
        *out = sym;
        st = api_run_pipeline(ctx, sym, passes ? passes : "default");
        if (!st)
            st = api_backend_passes(ctx, sym, fuse);
        return st;
    }
    ir_model *probe;
    st = api_prepare_at_batch(ctx, sym, b, 1, passes, fuse, out);
    if (!st)
        st = api_prepare_at_batch(ctx, sym, b, CG_BATCH_PROBE, passes, fuse, &probe);
    if (!st)
        st = cg_batch_check(ctx, *out, probe, b);
    return st;
}

/* prepare_batch, and with symbolic dims other than the batch (syms, filled
 * here: cg_syms_find) the model prepared with them at probe set A, beside
 * a copy at set B (the batch, if any, at 1) from which cg_syms_derive
 * tells which dim of each value is which symbol.  batch_too: the leading
 * dim is such a symbol too (no batch loop). */
static oct_status prepare_symbols(oct_ctx *ctx, ir_model *sym, const char *passes, bool fuse,
                                  bool batch_too, cg_batch *b, cg_syms *syms, ir_model **out)
{
    memset(b, 0, sizeof *b);
    oct_status st = cg_syms_find(ctx, sym->graph, batch_too, syms);
    if (st || !syms->n)
        return st ? st : api_prepare_batch(ctx, sym, passes, fuse, b, out);
    ir_model *at_a, *at_b, *prep_b;
    if ((st = api_clone_ir(ctx, sym, &at_a)) || (st = api_clone_ir(ctx, sym, &at_b)))
        return st;
    cg_syms_bind(syms, at_a->graph, 0);
    cg_syms_bind(syms, at_b->graph, 1);
    if ((st = api_prepare_batch(ctx, at_a, passes, fuse, b, out)))
        return st;
    if (b->name) {
        st = api_prepare_at_batch(ctx, at_b, b, 1, passes, fuse, &prep_b);
    } else {
        prep_b = at_b;
        st = api_run_pipeline(ctx, at_b, passes ? passes : "default");
        if (!st)
            st = api_backend_passes(ctx, at_b, fuse);
    }
    return st ? st : cg_syms_derive(ctx, (*out)->graph, prep_b->graph,
                                    ir_model_opset(*out, ""), syms);
}

/* prepare_symbols; a leading dim the batch proof refuses (the graph mixes
 * its items: a reduction or Softmax over it, a Transpose moving it) is
 * then read at run time like the other symbols, and the diagnostics of
 * the proof are dropped (if that fails too, its own diagnostic names the
 * node and the dim). */
static oct_status prepare_symbolic(oct_ctx *ctx, ir_model *sym, const char *passes, bool fuse,
                                   cg_batch *b, cg_syms *syms, ir_model **out)
{
    size_t n_diags = ctx->n_diags, n_errors = ctx->n_errors;
    oct_status st = prepare_symbols(ctx, sym, passes, fuse, false, b, syms, out);
    if (st != OCT_EUNSUPPORTED || !b->name)
        return st;
    oct_diag_truncate(ctx, n_diags);
    ctx->n_errors = n_errors;
    return prepare_symbols(ctx, sym, passes, fuse, true, b, syms, out);
}

/* Prepares a copy of m for the backend: shapes, default passes, qdq_fuse;
 * a symbolic batch (b->name set) compiled at batch 1. */
static oct_status prepare_for_backend(oct_ctx *ctx, const oct_model *m,
                                      const oct_compile_options *o, cg_batch *b,
                                      cg_syms *syms, ir_model **out)
{
    ir_model *sym;
    oct_status st = api_clone_ir(ctx, m->ir, &sym);
    for (size_t i = 0; !st && i < o->n_shapes; i++)
        st = pass_bind_input_shape(ctx, sym->graph, o->shapes[i]);
    bool x86_target = !o->cg.triple || !strncmp(o->cg.triple, "x86_64", 6);
    if (!st)
        st = prepare_symbolic(ctx, sym, NULL, !o->keep_qdq && x86_target, b, syms, out);
    return st;
}

oct_status oct_compile(oct_ctx *ctx, const oct_model *m, const oct_compile_options *o,
                       const char *out_base)
{
    if (!ctx || !m || !o || !out_base)
        return OCT_EUSAGE;
    cg_options cg = o->cg;
    cg.name = o->name ? o->name : derive_name(ctx, out_base);
    if (!cg.name)
        return oct_error(ctx, OCT_EUSAGE, "output '%s': the last component names the "
                         "model", out_base);
    ir_model *ir;
    cg_batch batch;
    cg_syms syms;
    oct_status st = api_check_output_dir(ctx, out_base);
    if (!st)
        st = prepare_for_backend(ctx, m, o, &batch, &syms, &ir);
    if (st)
        return st;
    cg.batch = batch.name ? &batch : NULL;
    cg.syms = syms.n ? &syms : NULL;
    cg_module *cm;
    if ((st = cg_compile(ctx, ir, &cg, &cm)) != OCT_OK)
        return st;
    st = cg_emit(ctx, cm, out_base, o->emit);
    if (!st && o->report)
        st = cg_write_report(ctx, cm, o->report);
    cg_module_free(cm);
    return st;
}
