/*
 * symdims.c: finds the symbolic input dims compiled for run time besides a
 * batch, and derives which dim of every value is one of them (symdims.h).
 */
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

/* n: the node reading or writing the value (NULL: a graph input). */
static oct_status match_value(oct_ctx *ctx, const ir_node *n, const ir_value *va,
                              const ir_value *vb, cg_syms *s, uint8_t *seen)
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
        if (k == -2) {
            char names[256] = "";
            for (int j = 0, at = 0; j < s->n && at < (int)sizeof names; j++)
                at += snprintf(names + at, sizeof names - (size_t)at, "%s'%s'", j ? ", " : "",
                               s->name[j]);
            return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "compile: %s: dim %d of '%s' "
                                  "is computed from the symbolic dimension(s) %s (%lld and "
                                  "%lld at two probe sizes); compiled code takes a symbolic "
                                  "dimension only where it is passed through unchanged, "
                                  "not computed on yet: bind it with --input-shape "
                                  "NAME=DIMS", op, d, va->name, names,
                                  (long long)a[d], (long long)b[d]);
        }
        sym[d] = (int8_t)k;
    }
    return OCT_OK;
}

oct_status cg_syms_derive(oct_ctx *ctx, const ir_graph *ga, const ir_graph *gb, cg_syms *s)
{
    s->n_values = ga->n_values;
    s->sym = ir_alloc_array(ctx, ga->n_values ? ga->n_values : 1, sizeof *s->sym);
    uint8_t *seen = ir_alloc_array(ctx, ga->n_values ? ga->n_values : 1, 1);
    if (!s->sym || !seen)
        return OCT_EINTERNAL;
    memset(s->sym, -1, (ga->n_values ? ga->n_values : 1) * sizeof *s->sym);
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
            st = match_value(ctx, na, na->in[i], nb->in[i], s, seen);
        for (int i = 0; i < na->n_out && !st; i++)
            if (na->out[i] && na->out[i]->name[0])
                st = match_value(ctx, na, na->out[i], nb->out[i], s, seen);
    }
    /* inputs no node reads (a graph output that is an input): their dims
     * are the probes themselves, so they always match */
    for (size_t i = 0; i < ga->n_inputs && i < gb->n_inputs && !st; i++)
        if (!ga->inputs[i]->init && !seen[ga->inputs[i]->id])
            st = match_value(ctx, NULL, ga->inputs[i], gb->inputs[i], s, seen);
    return st;
}
