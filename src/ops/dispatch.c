/*
 * dispatch.c: the shape-rule table, one entry per op in ops.def built with
 * the X-macro (an op without a shape rule is a link error), and the
 * graph-wide checks that precede shape inference and interpretation.
 */
#include <stdio.h>
#include <string.h>

#include "ops/ops.h"

static const ops_shape_fn shape_table[IR_OP_COUNT] = {
#define OP(e, name, dom, k, mini, maxi, mino, maxo, fl, at) [IR_OP_##e] = ops_shape_##k,
#include "ir/ops.def"
#undef OP
};

ops_shape_fn ops_shape_rule_of(ir_op op)
{
    return (unsigned)op < IR_OP_COUNT ? shape_table[op] : NULL;
}

static bool same_op_type(const ir_node *a, const ir_node *b)
{
    const char *da = a->domain ? a->domain : "", *db = b->domain ? b->domain : "";
    if (!strcmp(da, "ai.onnx"))
        da = "";
    if (!strcmp(db, "ai.onnx"))
        db = "";
    return !strcmp(a->op_type, b->op_type) && !strcmp(da, db);
}

oct_status ops_report_unsupported(oct_ctx *ctx, const ir_graph *g)
{
    oct_status st = OCT_OK;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (n->op != IR_OP_UNKNOWN)
            continue;
        bool seen = false; /* reported with an earlier node of the same type */
        for (size_t j = 0; j < i && !seen; j++)
            seen = g->nodes[j]->op == IR_OP_UNKNOWN && same_op_type(g->nodes[j], n);
        if (seen)
            continue;
        size_t count = 0;
        for (size_t j = i; j < g->n_nodes; j++)
            count += g->nodes[j]->op == IR_OP_UNKNOWN && same_op_type(g->nodes[j], n);
        /* list up to 8 node names */
        char list[512];
        size_t len = 0, listed = 0;
        list[0] = '\0';
        for (size_t j = i; j < g->n_nodes && listed < 8; j++) {
            const ir_node *m = g->nodes[j];
            if (m->op != IR_OP_UNKNOWN || !same_op_type(m, n))
                continue;
            char buf[32];
            int w = snprintf(list + len, sizeof list - len, "%s'%s'",
                             listed ? ", " : "", ir_node_label(m, buf, sizeof buf));
            if (w < 0 || (size_t)w >= sizeof list - len)
                break;
            len += (size_t)w;
            listed++;
        }
        st = oct_error(ctx, OCT_EUNSUPPORTED,
                       "unsupported op '%s' (domain '%s') used by %zu node%s: %s%s",
                       n->op_type, n->domain ? n->domain : "", count,
                       count == 1 ? "" : "s", list, listed < count ? ", ..." : "");
    }
    return st;
}

oct_status ops_check_attrs(oct_ctx *ctx, const ir_graph *g)
{
    oct_status st = OCT_OK;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (n->op == IR_OP_UNKNOWN)
            continue;
        for (int a = 0; a < n->n_attr; a++) {
            const ir_attr *at = &n->attrs[a];
            ir_attr_type want = ir_op_attr_type(n->op, at->name);
            if (want == IR_ATTR_UNDEFINED)
                st = oct_node_error(ctx, OCT_EINPUT, n,
                                    "unknown attribute '%s' for %s", at->name,
                                    n->op_type);
            else if (want != at->type && !at->ref_attr_name)
                st = oct_node_error(ctx, OCT_EINPUT, n,
                                    "attribute '%s' has type %s, expected %s",
                                    at->name, ir_attr_type_name(at->type),
                                    ir_attr_type_name(want));
        }
    }
    return st;
}

void ops_shape_from_type(const ir_type *t, bool has_type, ops_shape *s)
{
    memset(s, 0, sizeof *s);
    s->dtype = IR_DT_UNDEFINED;
    s->rank = -1;
    if (!has_type || t->opaque.len)
        return;
    s->dtype = t->dtype;
    if (t->rank < 0 || t->rank > OPS_MAX_RANK)
        return;
    s->rank = t->rank;
    for (int i = 0; i < t->rank; i++)
        s->dims[i] = t->dims ? t->dims[i].value : -1;
}
