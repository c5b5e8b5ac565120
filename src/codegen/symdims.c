/*
 * symdims.c: finds the symbolic input dims compiled for run time besides a
 * batch, and derives which dim of every value is one of them (symdims.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codegen/symdims.h"

/* Primes no model hard-codes as a size and that no small arithmetic on
 * another probe (a kernel size subtracted, a stride divided) lands on. */
static const int64_t probes[2][CG_SYMS_MAX] = {{37, 41, 43, 47, 53, 59},
                                               {71, 73, 79, 83, 89, 97}};

int64_t cg_syms_probe(int k, int set)
{
    return probes[set][k];
}

static int sym_index(const cg_syms *s, const char *name)
{
    for (int k = 0; k < s->n; k++)
        if (!strcmp(s->name[k], name))
            return k;
    return -1;
}

/* The batch as cg_batch_find takes it: axis 0 of the first run-time input
 * with a symbolic axis 0 (returned; NULL: no batch), named or not, if every
 * other symbolic axis 0 carries the same name and that name appears on no
 * other axis.  *name is its name (NULL when unnamed: then no other input
 * may have a symbolic axis 0). */
static const ir_value *batch_of(const ir_graph *g, const char **name)
{
    const ir_value *owner = NULL;
    *name = NULL;
    for (size_t i = 0; i < g->n_inputs && !owner; i++) {
        const ir_value *v = g->inputs[i];
        if (!v->init && v->has_type && v->type.rank > 0 && v->type.dims &&
            v->type.dims[0].value < 0)
            owner = v, *name = v->type.dims[0].param;
    }
    for (size_t i = 0; owner && i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->init || !v->has_type || v->type.rank < 0 || !v->type.dims)
            continue;
        for (int d = 0; d < v->type.rank; d++) {
            const ir_dim *dim = &v->type.dims[d];
            bool same = dim->value < 0 && *name && dim->param && !strcmp(dim->param, *name);
            if ((same && d > 0) || (d == 0 && dim->value < 0 && v != owner && !same))
                return NULL; /* not a batch: every such dim is a symbol */
        }
    }
    return owner;
}

oct_status cg_syms_find(oct_ctx *ctx, const ir_graph *g, bool batch_too, cg_syms *s)
{
    memset(s, 0, sizeof *s);
    const char *batch = NULL;
    const ir_value *owner = batch_too ? NULL : batch_of(g, &batch);
    for (size_t i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->init || !v->has_type || v->type.rank < 0 || !v->type.dims)
            continue;
        for (int d = 0; d < v->type.rank; d++) {
            const ir_dim *dim = &v->type.dims[d];
            if (dim->value >= 0 ||
                (d == 0 && owner && (v == owner || (batch && dim->param &&
                                                    !strcmp(dim->param, batch)))))
                continue;
            if (!dim->param || !dim->param[0])
                return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1, v->name,
                                 "compile: input '%s' dim %d is symbolic without a name, "
                                 "so run-time code cannot be given it: bind it with "
                                 "--input-shape %s=DIMS", v->name, d, v->name);
            if (sym_index(s, dim->param) >= 0)
                continue;
            if (s->n == CG_SYMS_MAX)
                return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, NULL, 0, -1, v->name,
                                 "compile: more than %d symbolic dimensions: bind some "
                                 "with --input-shape NAME=DIMS", CG_SYMS_MAX);
            s->name[s->n++] = dim->param;
        }
    }
    return OCT_OK;
}

void cg_syms_bind(const cg_syms *s, ir_graph *g, int set)
{
    for (size_t i = 0; i < g->n_inputs; i++) {
        ir_value *v = g->inputs[i];
        if (v->init || !v->has_type || v->type.rank < 0 || !v->type.dims)
            continue;
        for (int d = 0; d < v->type.rank; d++) {
            ir_dim *dim = &v->type.dims[d];
            int k = dim->value < 0 && dim->param ? sym_index(s, dim->param) : -1;
            if (k >= 0 && !(d == 0 && !dim->param)) {
                dim->value = probes[set][k];
                dim->param = NULL;
            }
        }
    }
}

/* ---- deriving ------------------------------------------------------------ */

static int shape_of(const ir_value *v, int64_t *dims)
{
    if (v->init) {
        if (v->init->rank > OPS_MAX_RANK)
            return -1;
        for (int d = 0; d < v->init->rank; d++)
            dims[d] = v->init->dims[d];
        return v->init->rank;
    }
    if (!v->has_type || v->type.rank < 0 || v->type.rank > OPS_MAX_RANK || !v->type.dims)
        return -1;
    for (int d = 0; d < v->type.rank; d++)
        dims[d] = v->type.dims[d].value;
    return v->type.rank;
}

static bool same_bytes(const ir_tensor *a, const ir_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes)
        return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d])
            return false;
    return !a->nbytes || !memcmp(a->data, b->data, (size_t)a->nbytes);
}

/* The symbol of one dim (a at A, b at B), -1 for a number, -2 for neither. */
static int dim_symbol(const cg_syms *s, int64_t a, int64_t b)
{
    if (a == b)
        return -1;
    for (int k = 0; k < s->n; k++)
        if (a == probes[0][k] && b == probes[1][k])
            return k;
    return -2;
}

/* A dim matched neither a number nor a symbol (sym mark until
 * derive_forms identifies it); maker[v]: the node that made value v. */
enum { SYM_PENDING = -3 };

typedef struct der_state {
    const ir_node **maker;
    int64_t opset;
} der_state;

/* n: the node reading or writing the value (NULL: a graph input). */
static oct_status match_value(oct_ctx *ctx, const ir_node *n, const ir_value *va,
                              const ir_value *vb, cg_syms *s, uint8_t *seen, der_state *pend)
{
    const char *op = n ? n->op_type : "graph input";
    if (!va || seen[va->id])
        return OCT_OK;
    seen[va->id] = 1;
    int8_t *sym = s->sym[va->id];
    memset(sym, -1, OPS_MAX_RANK);
    if (!vb || strcmp(va->name, vb->name))
        return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "compile: the graph prepared at "
                              "two sizes of its symbolic dims differs at %s (a pass depends "
                              "on them): bind them with --input-shape NAME=DIMS", op);
    if (va->init || vb->init) {
        if (va->init && vb->init && same_bytes(va->init, vb->init))
            return OCT_OK;
        return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "compile: %s: the value of '%s' "
                              "depends on symbolic dimension(s) and was folded to a "
                              "constant; bind them with --input-shape NAME=DIMS",
                              op, va->name);
    }
    int64_t a[OPS_MAX_RANK], b[OPS_MAX_RANK];
    int ra = shape_of(va, a), rb = shape_of(vb, b);
    if (ra < 0 || ra != rb)
        return OCT_OK; /* no static shape: cg_compile reports it */
    for (int d = 0; d < ra; d++) {
        if (a[d] < 0 || b[d] < 0)
            return OCT_OK;
        int k = dim_symbol(s, a[d], b[d]);
        if (k == -2) { /* computed from a symbol: identified after the match */
            k = SYM_PENDING;
            pend->maker[va->id] = n;
        }
        sym[d] = (int8_t)k;
    }
    return OCT_OK;
}

static oct_status derive_forms(oct_ctx *ctx, const ir_graph *ga, const ir_graph *gb,
                               cg_syms *s, der_state *pend);

oct_status cg_syms_derive(oct_ctx *ctx, const ir_graph *ga, const ir_graph *gb, int64_t opset,
                          cg_syms *s)
{
    s->n_values = ga->n_values;
    s->sym = ir_alloc_array(ctx, ga->n_values ? ga->n_values : 1, sizeof *s->sym);
    uint8_t *seen = ir_alloc_array(ctx, ga->n_values ? ga->n_values : 1, 1);
    if (!s->sym || !seen)
        return OCT_EINTERNAL;
    memset(s->sym, -1, (ga->n_values ? ga->n_values : 1) * sizeof *s->sym);
    der_state pend = {.maker = ir_alloc_array(ctx, ga->n_values ? ga->n_values : 1,
                                              sizeof *pend.maker),
                      .opset = opset};
    if (!pend.maker)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    if (ga->n_nodes != gb->n_nodes || ga->n_outputs != gb->n_outputs)
        return oct_error(ctx, OCT_EUNSUPPORTED, "compile: the graph prepared at two sizes of "
                         "its symbolic dims differs (a pass depends on them): bind them "
                         "with --input-shape NAME=DIMS");
    for (size_t k = 0; k < ga->n_nodes && !st; k++) {
        const ir_node *na = ga->nodes[k], *nb = gb->nodes[k];
        if (na->op != nb->op || na->n_in != nb->n_in || na->n_out != nb->n_out)
            return oct_node_error(ctx, OCT_EUNSUPPORTED, na, "compile: the graph prepared "
                                  "at two sizes of its symbolic dims differs at %s: bind "
                                  "them with --input-shape NAME=DIMS", na->op_type);
        for (int i = 0; i < na->n_in && !st; i++)
            st = match_value(ctx, na, na->in[i], nb->in[i], s, seen, &pend);
        for (int i = 0; i < na->n_out && !st; i++)
            if (na->out[i] && na->out[i]->name[0])
                st = match_value(ctx, na, na->out[i], nb->out[i], s, seen, &pend);
    }
    /* inputs no node reads (a graph output that is an input): their dims
     * are the probes themselves, so they always match */
    for (size_t i = 0; i < ga->n_inputs && i < gb->n_inputs && !st; i++)
        if (!ga->inputs[i]->init && !seen[ga->inputs[i]->id])
            st = match_value(ctx, NULL, ga->inputs[i], gb->inputs[i], s, seen, &pend);
    return st ? st : derive_forms(ctx, ga, gb, s, &pend);
}

/* ---- derived dims: floor((a*s + b) / c) ---------------------------------- */

/* The window a symbol is moved through, far above any kernel or pad (so
 * every form is in its regular regime), long enough that every residue of
 * every c up to DER_C_MAX is seen twice. */
enum { DER_X0 = 1009, DER_WIN = 64, DER_C_MAX = 32 };

int cg_syms_slots(const cg_syms *s)
{
    return s->n + s->n_der;
}

int64_t cg_syms_der_eval(const cg_syms_der *d, int64_t v)
{
    int64_t x = d->a * v + d->b, q = x / d->c;
    return q - (x % d->c && x < 0); /* floor, not truncation */
}

const char *cg_syms_slot_text(const cg_syms *s, int slot, char *buf, size_t len)
{
    if (slot < s->n)
        return s->name[slot];
    const cg_syms_der *d = &s->der[slot - s->n];
    snprintf(buf, len, "floor((%lld*%s %+lld) / %lld)", (long long)d->a, s->name[d->k],
             (long long)d->b, (long long)d->c);
    return buf;
}

/* The shapes of every value of g (prepared at A) with symbol k at x and
 * the others at A, by the ops' shape rules in node order; false if a rule
 * fails (its diagnostics are dropped). */
static bool infer_at(oct_ctx *ctx, const ir_graph *g, int64_t opset, const cg_syms *s, int k,
                     int64_t x, ops_shape *sh)
{
    for (size_t v = 0; v < g->n_values; v++) {
        ir_value *val = g->values[v];
        sh[v].dtype = IR_DT_UNDEFINED;
        sh[v].rank = shape_of(val, sh[v].dims);
        for (int d = 0; !val->init && !val->producer && d < sh[v].rank; d++)
            if (s->sym[v][d] == k)
                sh[v].dims[d] = x;
        if (val->init)
            ops_shape_of(val->init, &sh[v]);
        else if (val->has_type)
            sh[v].dtype = val->type.dtype;
    }
    size_t n_diags = ctx->n_diags, n_errors = ctx->n_errors;
    bool ok = true;
    for (size_t j = 0; j < g->n_nodes && ok; j++) {
        const ir_node *n = g->nodes[j];
        if (n->n_in > OPS_MAX_IO || n->n_out > OPS_MAX_IO || n->op == IR_OP_UNKNOWN) {
            ok = false;
            break;
        }
        ops_shape in[OPS_MAX_IO], out[OPS_MAX_IO];
        const ir_tensor *in_const[OPS_MAX_IO];
        for (int i = 0; i < n->n_in; i++) {
            in_const[i] = n->in[i] ? n->in[i]->init : NULL;
            if (n->in[i])
                in[i] = sh[n->in[i]->id];
            else
                in[i] = (ops_shape){.dtype = IR_DT_UNDEFINED, .rank = -1};
        }
        for (int i = 0; i < n->n_out; i++)
            out[i] = (ops_shape){.dtype = IR_DT_UNDEFINED, .rank = -1};
        ops_infer inf = {.ctx = ctx, .node = n, .opset = opset,
                         .n_in = n->n_in, .in = in, .in_const = in_const,
                         .n_out = n->n_out, .out = out};
        ok = ops_shape_rule_of(n->op)(&inf) == OCT_OK;
        for (int i = 0; ok && i < n->n_out; i++)
            if (n->out[i] && !n->out[i]->init)
                sh[n->out[i]->id] = out[i];
    }
    oct_diag_truncate(ctx, n_diags);
    ctx->n_errors = n_errors;
    return ok;
}

/* floor((a*x + b) / c) through y[j] at x = DER_X0 + j, the smallest c. */
static bool fit_floor(const int64_t *y, cg_syms_der *out)
{
    for (int64_t c = 1; c <= DER_C_MAX; c++) {
        int64_t a = y[c] - y[0];
        bool ok = a > 0;
        for (int j = 0; ok && j + c < DER_WIN; j++)
            ok = y[j + c] - y[j] == a;
        if (!ok)
            continue;
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        for (int j = 0; j < DER_WIN; j++) {
            int64_t e = c * y[j] - a * (DER_X0 + j); /* b in [e, e + c - 1] */
            lo = e > lo ? e : lo;
            hi = e + c - 1 < hi ? e + c - 1 : hi;
        }
        if (lo != hi)
            return false;
        *out = (cg_syms_der){.a = a, .b = lo, .c = c};
        return true;
    }
    return false;
}

static oct_status not_derived(oct_ctx *ctx, const cg_syms *s, const ir_node *n,
                              const ir_value *v, int d, int64_t a, int64_t b)
{
    char names[256] = "";
    for (int j = 0, at = 0; j < s->n && at < (int)sizeof names; j++)
        at += snprintf(names + at, sizeof names - (size_t)at, "%s'%s'", j ? ", " : "",
                       s->name[j]);
    return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "compile: %s: dim %d of '%s' is "
                          "computed from the symbolic dimension(s) %s (%lld and %lld at "
                          "two probe sizes) other than as floor((a*s + b) / c) of one of "
                          "them, which compiled code cannot follow: bind it with "
                          "--input-shape NAME=DIMS", n ? n->op_type : "graph input", d,
                          v->name, names, (long long)a, (long long)b);
}

/* The slot of form f, added if new; -1 when the slots are full. */
static int der_slot(cg_syms *s, const cg_syms_der *f)
{
    for (int j = 0; j < s->n_der; j++)
        if (s->der[j].k == f->k && s->der[j].a == f->a && s->der[j].b == f->b &&
            s->der[j].c == f->c)
            return s->n + j;
    if (s->n_der == CG_SYMS_DER_MAX)
        return -1;
    s->der[s->n_der] = *f;
    return s->n + s->n_der++;
}

/* Identifies every pending dim (SYM_PENDING) as a form of one symbol. */
static oct_status derive_forms(oct_ctx *ctx, const ir_graph *ga, const ir_graph *gb, cg_syms *s,
                               der_state *pend)
{
    size_t n_pend = 0;
    for (size_t v = 0; v < ga->n_values; v++)
        for (int d = 0; d < OPS_MAX_RANK; d++)
            n_pend += s->sym[v][d] == SYM_PENDING;
    if (!n_pend)
        return OCT_OK;
    /* y[p][j]: pending dim p with its symbol at DER_X0 + j; mover[p]: that
     * symbol (-1: none yet, -2: more than one); its value at A in at_a */
    int64_t *y = ir_alloc_array(ctx, n_pend * DER_WIN, sizeof *y);
    int64_t *at_a = ir_alloc_array(ctx, n_pend, sizeof *at_a);
    int8_t *mover = ir_alloc_array(ctx, n_pend, sizeof *mover);
    ops_shape *sh = ir_alloc_array(ctx, ga->n_values ? ga->n_values : 1, sizeof *sh);
    if (!y || !at_a || !mover || !sh)
        return OCT_EINTERNAL;
    for (size_t v = 0, p = 0; v < ga->n_values; v++) {
        int64_t da[OPS_MAX_RANK];
        int r = shape_of(ga->values[v], da);
        for (int d = 0; d < OPS_MAX_RANK; d++)
            if (s->sym[v][d] == SYM_PENDING) {
                at_a[p] = d < r ? da[d] : -1;
                mover[p++] = -1;
            }
    }
    bool inferred = true;
    for (int k = 0; k < s->n && inferred; k++)
        for (int j = 0; j < DER_WIN && inferred; j++) {
            inferred = infer_at(ctx, ga, pend->opset, s, k, DER_X0 + j, sh);
            for (size_t v = 0, p = 0; inferred && v < ga->n_values; v++)
                for (int d = 0; d < OPS_MAX_RANK; d++) {
                    if (s->sym[v][d] != SYM_PENDING)
                        continue;
                    int64_t val = sh[v].rank > d ? sh[v].dims[d] : -1;
                    if (val != at_a[p] && mover[p] != k)
                        mover[p] = mover[p] == -1 ? (int8_t)k : -2;
                    if (mover[p] == -1 || mover[p] == k)
                        y[p * DER_WIN + (size_t)j] = val;
                    p++;
                }
        }
    for (size_t v = 0, p = 0; v < ga->n_values; v++) {
        int64_t da[OPS_MAX_RANK], db[OPS_MAX_RANK];
        if (shape_of(ga->values[v], da) < 0)
            continue;
        for (int d = 0; d < OPS_MAX_RANK; d++) {
            if (s->sym[v][d] != SYM_PENDING)
                continue;
            const int64_t *yp = y + p * DER_WIN;
            int which = mover[p++];
            const ir_value *vb = NULL;
            for (size_t u = 0; u < gb->n_values && !vb; u++)
                if (!strcmp(gb->values[u]->name, ga->values[v]->name))
                    vb = gb->values[u];
            if (!vb || shape_of(vb, db) <= d)
                return not_derived(ctx, s, pend->maker[v], ga->values[v], d, da[d], -1);
            /* moves with exactly one symbol, as a floor form that gives
             * the dims at both probe sets */
            cg_syms_der f = {.k = which};
            bool ok = inferred && which >= 0 && fit_floor(yp, &f);
            f.k = which;
            ok = ok && cg_syms_der_eval(&f, cg_syms_probe(which, 0)) == da[d] &&
                 cg_syms_der_eval(&f, cg_syms_probe(which, 1)) == db[d];
            int slot = ok ? der_slot(s, &f) : -1;
            if (slot < 0)
                return not_derived(ctx, s, pend->maker[v], ga->values[v], d, da[d], db[d]);
            s->sym[v][d] = (int8_t)slot;
        }
    }
    return OCT_OK;
}
