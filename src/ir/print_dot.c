/*
 * print_dot.c: the graph in Graphviz DOT (`octet inspect --format=dot`,
 * render with `dot -Tsvg`).
 *
 * Layout: every node is a box "OpType\nname" (plus one line per initializer
 * input, "name: dtype[shape]", at most INIT_LINES of them, then "+N more");
 * graph inputs that are not initializers and graph outputs are ellipses;
 * each edge from a producer (node or graph input) to a consumer is labelled
 * with the tensor's name and type.  Initializers get no box of their own;
 * the graph label counts them.  Graphviz identifiers are generated (n<i>
 * for nodes, in<i>/out<i> for graph inputs and outputs), so names never
 * need to be valid DOT identifiers; every label is a quoted string in which
 * '"' and '\' are escaped, control characters and bytes that are not valid
 * UTF-8 are written as the text \xHH, and line breaks are DOT's "\n".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

enum { INIT_LINES = 3 };

/* Text inside a quoted DOT string (without the quotes). */
static void d_text(FILE *out, const char *s)
{
    const uint8_t *p = (const uint8_t *)(s ? s : "");
    size_t len = strlen((const char *)p);
    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\\\x%02x", c);
            i++;
        } else {
            size_t n = ir_utf8_len(p + i, len - i);
            if (n == 0) {
                fprintf(out, "\\\\x%02x", c);
                i++;
            } else {
                fwrite(p + i, 1, n, out);
                i += n;
            }
        }
    }
}

static void d_type(FILE *out, const ir_value *v)
{
    if (!v->has_type)
        return;
    const ir_type *t = &v->type;
    if (t->opaque.len) {
        fputs("<non-tensor>", out);
        return;
    }
    fputs(ir_dtype_short(t->dtype), out);
    if (t->rank < 0 || (t->rank > 0 && !t->dims)) {
        fputs("[*]", out);
        return;
    }
    fputc('[', out);
    for (int i = 0; i < t->rank; i++) {
        if (i)
            fputc(',', out);
        if (t->dims[i].value >= 0)
            fprintf(out, "%" PRId64, t->dims[i].value);
        else if (t->dims[i].param && *t->dims[i].param)
            d_text(out, t->dims[i].param);
        else
            fputc('?', out);
    }
    fputc(']', out);
}

static void d_init_type(FILE *out, const ir_tensor *t)
{
    fprintf(out, "%s[", ir_dtype_short(t->dtype));
    for (int i = 0; t->dims && i < t->rank; i++)
        fprintf(out, "%s%" PRId64, i ? "," : "", t->dims[i]);
    fputc(']', out);
}

/* A value that the graph receives from outside: a graph input that is not
 * also an initializer (such inputs are constants unless overridden). */
static bool is_graph_input(const ir_value *v)
{
    return (v->flags & IR_VAL_INPUT) && !v->init;
}

static void d_edge_label(FILE *out, const ir_value *v)
{
    fputs(" [label=\"", out);
    d_text(out, v->name);
    if (v->has_type) {
        fputs("\\n", out);
        d_type(out, v);
    }
    fputs("\"];\n", out);
}

void ir_print_dot(const ir_model *m, FILE *out)
{
    const ir_graph *g = m->graph;
    fputs("digraph \"", out);
    d_text(out, g ? g->name : "");
    fputs("\" {\n  rankdir=TB;\n  fontname=\"Helvetica\";\n"
          "  node [shape=box, fontname=\"Helvetica\"];\n"
          "  edge [fontname=\"Helvetica\", fontsize=9];\n", out);
    if (!g) {
        fputs("}\n", out);
        return;
    }
    fprintf(out, "  label=\"%zu nodes, %zu initializers (not drawn)\";\n",
            g->n_nodes, g->n_inits);
    /* graph inputs, by position in graph.input */
    for (size_t i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (!v || !is_graph_input(v))
            continue;
        fprintf(out, "  in%zu [shape=ellipse, label=\"", i);
        d_text(out, v->name);
        fputs("\\n", out);
        d_type(out, v);
        fputs("\"];\n", out);
    }
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        fprintf(out, "  n%zu [label=\"", k);
        if (n->domain && *n->domain) {
            d_text(out, n->domain);
            fputc('.', out);
        }
        d_text(out, n->op_type);
        if (n->name && *n->name) {
            fputs("\\n", out);
            d_text(out, n->name);
        }
        int shown = 0, more = 0;
        for (int i = 0; i < n->n_in; i++) {
            const ir_value *v = n->in[i];
            if (!v || !v->init || is_graph_input(v) || v->producer)
                continue;
            if (shown++ >= INIT_LINES) {
                more++;
                continue;
            }
            fputs("\\n", out);
            d_text(out, v->name);
            fputs(": ", out);
            d_init_type(out, v->init);
        }
        if (more)
            fprintf(out, "\\n+%d more", more);
        fputs("\"];\n", out);
    }
    /* Edges.  Graph inputs are found by name position; node producers by
     * pointer, through a scan of the (already ordered) node list. */
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        for (int i = 0; i < n->n_in; i++) {
            const ir_value *v = n->in[i];
            if (!v)
                continue;
            if (v->producer) {
                size_t p = v->producer->id;
                if (p >= g->n_nodes || g->nodes[p] != v->producer)
                    for (p = 0; p < g->n_nodes && g->nodes[p] != v->producer;)
                        p++;
                if (p < g->n_nodes) {
                    fprintf(out, "  n%zu -> n%zu", p, k);
                    d_edge_label(out, v);
                }
            } else if (is_graph_input(v)) {
                for (size_t j = 0; j < g->n_inputs; j++)
                    if (g->inputs[j] == v) {
                        fprintf(out, "  in%zu -> n%zu", j, k);
                        d_edge_label(out, v);
                        break;
                    }
            }
        }
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        const ir_value *v = g->outputs[i];
        if (!v)
            continue;
        fprintf(out, "  out%zu [shape=ellipse, style=bold, label=\"", i);
        d_text(out, v->name);
        fputs("\\n", out);
        d_type(out, v);
        fputs("\"];\n", out);
        if (v->producer) {
            size_t p = 0;
            while (p < g->n_nodes && g->nodes[p] != v->producer)
                p++;
            if (p < g->n_nodes)
                fprintf(out, "  n%zu -> out%zu;\n", p, i);
        } else if (is_graph_input(v)) {
            for (size_t j = 0; j < g->n_inputs; j++)
                if (g->inputs[j] == v) {
                    fprintf(out, "  in%zu -> out%zu;\n", j, i);
                    break;
                }
        }
    }
    fputs("}\n", out);
}
