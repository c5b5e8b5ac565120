/*
 * symdims.h: symbolic input dimensions other than a separable batch (image
 * H and W, a sequence length) compiled for run time (prefix cg_syms).
 *
 * The model is prepared twice (passes, qdq_fuse) with every such
 * dimension bound to a probe value, set A and set B (distinct primes no
 * model hard-codes); cg_syms_derive then matches the two graphs value by
 * value: a dimension equal in both is a constant, one that is symbol k's
 * probe in both (A[k] in the first, B[k] in the second) *is* symbol k, and
 * anything else (a size computed from a symbol, H/2 after a strided
 * convolution) is identified as floor((a*s + b) / c) of one symbol s by
 * running the ops' shape rules over the graph at A with one symbol at a
 * time moved through a window of consecutive values (every residue of
 * every c up to CG_DER_C_MAX seen), then checked at A and B; a dim that
 * fits no such form stops the compile naming the node that makes it.  Constants must have the same bytes in both (nothing folded may
 * depend on a symbol).  The graph prepared at A is the one compiled; each
 * of its dims is either a number or a symbol read at run time from the
 * dims argument (cg_dim), and only the lowerings that take run-time sizes
 * may see a tensor with a symbolic dim (compile.c refuses the others, exit
 * 3, naming node and op).  A batch (batch.h) is separate: it stays the
 * looped axis 0 and is dims[0]; these symbols follow it.
 */
#ifndef OCTET_CG_SYMDIMS_H
#define OCTET_CG_SYMDIMS_H

#include "ir/ir.h"
#include "ops/ops.h"

#define CG_SYMS_MAX 6
/* Derived dims floor((a*s + b) / c) of one symbol s: at most this many
 * distinct forms (slots CG_SYMS_MAX.. of the header fit in an int8_t). */
#define CG_SYMS_DER_MAX 96

/* A dim derived from symbol k: floor((a*s_k + b) / c), a and c > 0. */
typedef struct cg_syms_der {
    int k;
    int64_t a, b, c;
} cg_syms_der;

typedef struct cg_syms {
    int n;                               /* 0: none */
    const char *name[CG_SYMS_MAX];
    int n_der;                           /* derived forms, slots n .. n+n_der */
    cg_syms_der der[CG_SYMS_DER_MAX];
    /* by value id of the compiled graph: the slot of each dim (a symbol k
     * < n, or derived form n + j), -1 for a number */
    int8_t (*sym)[OPS_MAX_RANK];
    size_t n_values;
} cg_syms;

/* The header slots the dims take: the symbols, then the derived forms. */
int cg_syms_slots(const cg_syms *s);

/* Slot's dim as text for diagnostics: the symbol's name, or its form
 * ("floor((1*W + 1) / 2)"); buf of size len. */
const char *cg_syms_slot_text(const cg_syms *s, int slot, char *buf, size_t len);

/* The value of a derived form j at symbol value v (floor division; may be
 * negative for sizes a model cannot take). */
int64_t cg_syms_der_eval(const cg_syms_der *d, int64_t v);

/* The probe value of symbol k in set `set` (0: A, the compiled graph; 1:
 * B). */
int64_t cg_syms_probe(int k, int set);

/* Names the symbolic dims of g's run-time inputs that are not a batch on
 * axis 0 (the leading name cg_batch_find would take; with batch_too, for a
 * graph that failed the batch proof, that one is a symbol too).  An
 * unnamed symbolic dim, or more than CG_SYMS_MAX names, is
 * OCT_EUNSUPPORTED naming the input. */
oct_status cg_syms_find(oct_ctx *ctx, const ir_graph *g, bool batch_too, cg_syms *s);

/* Binds, in place, every input dim named by a symbol of s to its probe of
 * `set` (the graph is a copy the caller then prepares). */
void cg_syms_bind(const cg_syms *s, ir_graph *g, int set);

/* Fills s->sym for ga (prepared at A, default-domain opset `opset`) by comparing it with gb (at B); see
 * above.  OCT_EUNSUPPORTED naming the node whose output size is a function
 * of the symbols other than floor((a*s + b) / c) of one symbol, or whose
 * constant depends on one. */
oct_status cg_syms_derive(oct_ctx *ctx, const ir_graph *ga, const ir_graph *gb, int64_t opset,
                          cg_syms *s);

#endif
