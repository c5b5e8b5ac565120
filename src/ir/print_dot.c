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
 *
 * Precision.  Every node gets the precision it computes in, from the
 * element types of its operands:
 *   QuantizeLinear    its output type (else its zero point's, else UINT8,
 *                     the ONNX default);
 *   DequantizeLinear  its input type (INT32 for a bias); if that is not
 *                     known, its producing QuantizeLinear's precision,
 *                     else its zero point's type, else float;
 *   any other node    the narrowest of its operands' precisions: each input
 *                     of a low-precision type, each input produced by a
 *                     DequantizeLinear (that DQ's precision, INT32 for a
 *                     bias included), each output of a low-precision type.
 *                     Low precision: a type QuantizeLinear may produce
 *                     (dtypes.def), INT32 excepted when read directly
 *                     (indices and shapes).  At equal width a
 *                     signed integer type wins over a float type, which
 *                     wins over an unsigned one, then the first in input
 *                     order, then output order: u8 activations with s8
 *                     weights (the usual INT8 scheme) read as INT8;
 *   none of these     float: drawn neutral (no fill).
 * A node whose operands have several precisions lists them all on one
 * more label line ("u8 i8"), in that order.
 * So a QLinearConv on int8 and a Conv whose inputs come from int8
 * DequantizeLinear nodes are both INT8.  The second rule is honest about
 * what runs, not about ONNX semantics: by the letter of the spec a node fed
 * by DequantizeLinear computes in float on dequantized values, but every
 * QDQ backend (Octet's compiler, ONNX Runtime) fuses the pattern into an
 * integer kernel.  A non-float node gets style=filled, the fill colour of
 * its precision (ir_precision_colour, shared with the report's SVG) and a
 * `precision` attribute holding the short type name ("s8", "u8",
 * "f8e4m3fn"; Graphviz keeps unknown attributes and ignores them), so tools
 * and tests can read the rule back.  QuantizeLinear is drawn as an
 * inverted trapezium and DequantizeLinear as a trapezium, both dashed.
 * When any node is not float, a cluster "legend" lists the precisions
 * used, in dtypes.def order, then float and the Q/DQ shapes if present.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

enum { INIT_LINES = 3 };

/* Fill colour per low-precision type: one row per type, the single source
 * for the DOT output and the report's SVG. */
#define PRECISION_COLOURS(X)                                             \
    X(UINT8, "#8fd19e") X(INT8, "#6baed6") X(UINT16, "#d4b9e8")          \
    X(INT16, "#b084cc") X(INT32, "#c9b38f") X(FLOAT8E4M3FN, "#f4a261")   \
    X(FLOAT8E4M3FNUZ, "#f7c08a") X(FLOAT8E5M2, "#e76f51")                \
    X(FLOAT8E5M2FNUZ, "#ef9a85") X(UINT4, "#f3e29a") X(INT4, "#e9c46a")  \
    X(FLOAT4E2M1, "#d8a7b1") X(FLOAT8E8M0, "#bfbfbf") X(UINT2, "#b9e4e6")\
    X(INT2, "#7cc6c9")

const char *ir_precision_colour(int dtype)
{
    switch (dtype) {
#define X(dt, colour) case IR_DT_##dt: return colour;
        PRECISION_COLOURS(X)
#undef X
    default: return NULL;
    }
}

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

static ir_dtype value_dtype(const ir_value *v)
{
    if (!v)
        return IR_DT_UNDEFINED;
    if (v->init)
        return v->init->dtype;
    return v->has_type && !v->type.opaque.len ? v->type.dtype : IR_DT_UNDEFINED;
}

static bool low_precision(ir_dtype dt)
{
    return dt != IR_DT_INT32 && ir_dtype_valid(dt) && ir_dtype_info(dt)->quantized;
}

/* Does precision a beat b at equal width?  Signed integers, then floats,
 * then unsigned integers: u8 activations with s8 weights (the usual INT8
 * scheme) read as INT8. */
static int kind_rank(ir_dtype dt)
{
    ir_dkind k = ir_dtype_info(dt)->kind;
    return k == IR_DK_SINT ? 0 : k == IR_DK_FLOAT ? 1 : 2;
}

static ir_dtype node_precision(const ir_node *n);

/* The low precision operand slot i of n contributes, or IR_DT_FLOAT. */
static ir_dtype operand_precision(const ir_node *n, int i)
{
    const ir_value *v = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
    ir_dtype dt = value_dtype(v);
    if (low_precision(dt))
        return dt;
    const ir_node *p = i < n->n_in && v ? v->producer : NULL;
    return p && p->op == IR_OP_DEQUANTIZELINEAR ? node_precision(p) : IR_DT_FLOAT;
}

/* The precision node n computes in (rules in the opening comment), or
 * IR_DT_FLOAT. */
static ir_dtype node_precision(const ir_node *n)
{
    if (n->op == IR_OP_QUANTIZELINEAR) {
        ir_dtype dt = n->n_out > 0 ? value_dtype(n->out[0]) : IR_DT_UNDEFINED;
        if (!ir_precision_colour(dt))
            dt = n->n_in > 2 ? value_dtype(n->in[2]) : IR_DT_UNDEFINED;
        return ir_precision_colour(dt) ? dt : IR_DT_UINT8;
    }
    if (n->op == IR_OP_DEQUANTIZELINEAR) {
        const ir_value *x = n->n_in > 0 ? n->in[0] : NULL;
        ir_dtype dt = value_dtype(x);
        if (!ir_precision_colour(dt) && x && x->producer &&
            x->producer->op == IR_OP_QUANTIZELINEAR)
            dt = node_precision(x->producer);
        if (!ir_precision_colour(dt))
            dt = n->n_in > 2 ? value_dtype(n->in[2]) : IR_DT_UNDEFINED;
        return ir_precision_colour(dt) ? dt : IR_DT_FLOAT;
    }
    ir_dtype best = IR_DT_FLOAT;
    for (int i = 0; i < n->n_in + n->n_out; i++) {
        ir_dtype dt = operand_precision(n, i);
        if (dt == IR_DT_FLOAT)
            continue;
        unsigned bits = ir_dtype_info(dt)->bits, best_bits = ir_dtype_info(best)->bits;
        if (best == IR_DT_FLOAT || bits < best_bits ||
            (bits == best_bits && kind_rank(dt) < kind_rank(best)))
            best = dt;
    }
    return best;
}

/* A label line listing the distinct low precisions of n's operands, in
 * operand order, when there are several ("u8 i8"). */
static void d_mixed(FILE *out, const ir_node *n)
{
    if (n->op == IR_OP_QUANTIZELINEAR || n->op == IR_OP_DEQUANTIZELINEAR)
        return;
    ir_dtype seen[8];
    int n_seen = 0;
    for (int i = 0; i < n->n_in + n->n_out && n_seen < 8; i++) {
        ir_dtype dt = operand_precision(n, i);
        bool dup = dt == IR_DT_FLOAT;
        for (int k = 0; k < n_seen && !dup; k++)
            dup = seen[k] == dt;
        if (!dup)
            seen[n_seen++] = dt;
    }
    if (n_seen < 2)
        return;
    fputs("\\n", out);
    for (int k = 0; k < n_seen; k++)
        fprintf(out, "%s%s", k ? " " : "", ir_dtype_short(seen[k]));
}

/* Fill, shape and precision attributes of node n (nothing for a float
 * node that is not Q/DQ); records what the legend must show. */
static void d_node_style(FILE *out, const ir_node *n, bool used[IR_DT_COUNT],
                         bool *any_float, bool *any_q, bool *any_dq)
{
    ir_dtype dt = node_precision(n);
    const char *colour = ir_precision_colour(dt);
    if (n->op == IR_OP_QUANTIZELINEAR) {
        fputs(", shape=invtrapezium", out);
        *any_q = true;
    } else if (n->op == IR_OP_DEQUANTIZELINEAR) {
        fputs(", shape=trapezium", out);
        *any_dq = true;
    }
    bool qdq = n->op == IR_OP_QUANTIZELINEAR || n->op == IR_OP_DEQUANTIZELINEAR;
    if (!colour) {
        *any_float = true;
        if (qdq)
            fputs(", style=dashed", out);
        return;
    }
    used[dt] = true;
    fprintf(out, ", style=\"filled%s\", fillcolor=\"%s\", precision=\"%s\"",
            qdq ? ",dashed" : "", colour, ir_dtype_short(dt));
}

/* The legend: one box per precision used, in dtypes.def order. */
static void d_legend(FILE *out, const bool used[IR_DT_COUNT], bool any_float,
                     bool any_q, bool any_dq)
{
    fputs("  subgraph cluster_legend {\n    label=\"precision\";\n"
          "    fontsize=10;\n    node [fontsize=9, width=0.6, height=0.3];\n", out);
    for (int dt = 0; dt < IR_DT_COUNT; dt++)
        if (used[dt])
            fprintf(out, "    legend_%s [label=\"%s\", style=filled, fillcolor=\"%s\", "
                    "precision=\"%s\"];\n", ir_dtype_short(dt), ir_dtype_name(dt),
                    ir_precision_colour(dt), ir_dtype_short(dt));
    if (any_float)
        fputs("    legend_float [label=\"float (not quantized)\"];\n", out);
    if (any_q)
        fputs("    legend_q [label=\"QuantizeLinear\", shape=invtrapezium, "
              "style=dashed];\n", out);
    if (any_dq)
        fputs("    legend_dq [label=\"DequantizeLinear\", shape=trapezium, "
              "style=dashed];\n", out);
    fputs("  }\n", out);
}

void ir_print_dot(const ir_model *m, FILE *out)
{
    bool used[IR_DT_COUNT] = {false}, any_float = false, any_q = false, any_dq = false;
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
        d_mixed(out, n);
        fputc('"', out);
        d_node_style(out, n, used, &any_float, &any_q, &any_dq);
        fputs("];\n", out);
    }
    bool quantized = any_q || any_dq;
    for (int dt = 0; dt < IR_DT_COUNT && !quantized; dt++)
        quantized = used[dt];
    if (quantized) /* a float model needs no legend */
        d_legend(out, used, any_float, any_q, any_dq);
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
