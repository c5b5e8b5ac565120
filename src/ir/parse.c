/*
 * parse.c: reads the text form of a model (print.c, docs/inspect.md) back
 * into the IR, so golden tests can write a pass's input as text and
 * `octet opt` can run passes on it.  print(parse(text)) == text for any
 * text ir_print_text_opts prints with `full`.  This file reads lines,
 * attributes and nodes; parse_lex.c reads within a line (strings, names,
 * numbers, types, tensors); parse_text.h is their interface.
 *
 * The text is untrusted: the parser never reads past `len` (the buffer
 * need not be NUL-terminated), never recurses, counts the node lines
 * against max_nodes before building anything, and checks every rank,
 * element count and initializer byte total against ctx's limits before it
 * allocates.  Each error is one diagnostic "FILE:LINE:COL: error: ..." and
 * OCT_EINPUT; parsing stops at the first one.
 *
 * Beyond what the printer writes, it accepts blank lines, lines starting
 * with '#' (comments, for hand-written golden files), spaces and tabs
 * between tokens, and a TENSOR without its #H; a #H that is present must be
 * the hash of the values.  "quant" lines (the quant passes' state) are kept
 * verbatim in the model for src/passes/quant_text.c to read.
 *
 * Types on node lines: a value declared by an input, output or value_info
 * line takes its type from there; any other value takes the type printed
 * where it first appears on a node line, except an initializer whose type
 * printed is its tensor's own dtype and shape (the printer shows that for
 * an initializer without a declared type).
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/parse_text.h"

/* ---- attributes and nodes ------------------------------------------------ */

static const struct { const char *word; ir_attr_type type; } empty_lists[] = {
    {"ints[]", IR_ATTR_INTS}, {"floats[]", IR_ATTR_FLOATS},
    {"strings[]", IR_ATTR_STRINGS}, {"tensors[]", IR_ATTR_TENSORS},
    {"graphs[]", IR_ATTR_GRAPHS}, {"sparse_tensors[]", IR_ATTR_SPARSE_TENSORS},
    {"type_protos[]", IR_ATTR_TYPE_PROTOS},
};

/* A list attribute value after its '['. */
static oct_status parse_attr_list(parser *P, ir_attr *a)
{
    oct_status st;
    size_t cap = 0;
    irtp_skip_ws(P);
    if (irtp_peek(P, '<') || irtp_peek(P, '?'))
        return irtp_perr(P, P->c, "an opaque or inconsistent attribute list cannot "
                    "be read back");
    if (irtp_peek(P, '"')) {
        a->type = IR_ATTR_STRINGS;
        do {
            if ((st = irtp_grow(P, (void **)&a->strings, &cap, a->n, sizeof *a->strings)))
                return st;
            char *s;
            size_t len;
            if ((st = irtp_parse_str(P, false, &s, &len)))
                return st;
            a->strings[a->n++] = (ir_blob){(uint8_t *)s, len};
        } while (irtp_accept(P, ','));
        return irtp_expect(P, ']');
    }
    if (irtp_accept_word(P, "tensor(")) {
        a->type = IR_ATTR_TENSORS;
        P->c -= strlen("tensor(");
        do {
            if ((st = irtp_grow(P, (void **)&a->tensors, &cap, a->n, sizeof *a->tensors)))
                return st;
            if ((st = irtp_parse_tensor_attr(P, &a->tensors[a->n])))
                return st;
            a->n++;
        } while (irtp_accept(P, ','));
        return irtp_expect(P, ']');
    }
    /* numbers: ints unless one of them reads as a float */
    const char *start = P->c;
    bool floats = false;
    size_t count = 0;
    do {
        char buf[TOKEN_MAX];
        const char *at;
        if ((st = irtp_number_token(P, buf, &at)))
            return st;
        floats |= irtp_looks_float(buf);
        count++;
    } while (irtp_accept(P, ','));
    if ((st = irtp_expect(P, ']')))
        return st;
    P->c = start;
    a->type = floats ? IR_ATTR_FLOATS : IR_ATTR_INTS;
    if (floats)
        a->floats = ir_alloc_array(P->ctx, count, sizeof *a->floats);
    else
        a->ints = ir_alloc_array(P->ctx, count, sizeof *a->ints);
    if (floats ? !a->floats : !a->ints)
        return OOM;
    for (size_t i = 0; i < count; i++) {
        if (i)
            irtp_accept(P, ',');
        char buf[TOKEN_MAX];
        const char *at;
        if ((st = irtp_number_token(P, buf, &at)))
            return st;
        if (floats) {
            double d;
            if ((st = irtp_parse_double(P, buf, at, &d)))
                return st;
            a->floats[i] = isnan(d) ? (float)d : strtof(buf, NULL);
        } else {
            P->c = at;
            if ((st = irtp_parse_i64(P, &a->ints[i])))
                return st;
        }
    }
    a->n = count;
    return irtp_expect(P, ']');
}

/* name=VALUE [doc=D] */
static oct_status parse_attr(parser *P, ir_attr *a)
{
    oct_status st;
    char *name;
    memset(a, 0, sizeof *a);
    a->ref_attr_name = a->doc = "";
    if ((st = irtp_parse_name(P, &name)) || (st = irtp_expect(P, '=')))
        return st;
    a->name = name;
    irtp_skip_ws(P);
    if (irtp_accept(P, '@')) {
        char *ref;
        if ((st = irtp_parse_name(P, &ref)))
            return st;
        a->ref_attr_name = ref;
    } else if (irtp_peek(P, '"')) {
        char *s;
        size_t len;
        if ((st = irtp_parse_str(P, false, &s, &len)))
            return st;
        a->type = IR_ATTR_STRING;
        a->s = (ir_blob){(uint8_t *)s, len};
    } else if (irtp_peek(P, '<')) {
        return irtp_perr(P, P->c, "attribute '%s' is opaque (a subgraph, sparse "
                    "tensor or type printed as a size and hash) and cannot be "
                    "read back", name);
    } else if (irtp_accept(P, '[')) {
        if ((st = parse_attr_list(P, a)))
            return st;
    } else if (P->c + 7 <= P->eol && !memcmp(P->c, "tensor(", 7)) {
        a->type = IR_ATTR_TENSOR;
        if ((st = irtp_parse_tensor_attr(P, &a->t)))
            return st;
    } else {
        for (size_t i = 0; i < sizeof empty_lists / sizeof empty_lists[0]; i++)
            if (irtp_accept_word(P, empty_lists[i].word)) {
                a->type = empty_lists[i].type;
                return irtp_parse_trailer(P, &a->doc);
            }
        char buf[TOKEN_MAX];
        const char *at;
        if ((st = irtp_number_token(P, buf, &at)))
            return st;
        if (irtp_looks_float(buf)) {
            double d;
            if ((st = irtp_parse_double(P, buf, at, &d)))
                return st;
            a->type = IR_ATTR_FLOAT;
            a->f = isnan(d) ? (float)d : strtof(buf, NULL);
        } else {
            P->c = at;
            a->type = IR_ATTR_INT;
            if ((st = irtp_parse_i64(P, &a->i)))
                return st;
        }
    }
    return irtp_parse_trailer(P, &a->doc);
}

/* The type printed for a value on a node line, applied as the file
 * comment says. */
static void node_line_type(ir_value *v, const ir_type *t, bool typed)
{
    if (!typed || (v->flags & (IR_VAL_INPUT | IR_VAL_OUTPUT | IR_VAL_INFO)) ||
        v->has_type)
        return;
    if (v->init && !t->opaque.len && t->rank == v->init->rank &&
        t->dtype == v->init->dtype && !t->denotation) {
        bool same = true;
        for (int i = 0; i < t->rank; i++)
            same &= t->dims[i].value == v->init->dims[i] && !t->dims[i].denotation;
        if (same)
            return;
    }
    v->has_type = true;
    v->type = *t;
}

/* (NAME[: TYPE], ...) of a node line into a new arena array. */
static oct_status parse_value_list(parser *P, ir_value ***out, int *n_out)
{
    oct_status st;
    size_t n = 0, cap = 0;
    ir_value **list = NULL;
    if ((st = irtp_expect(P, '(')))
        return st;
    if (!irtp_accept(P, ')')) {
        do {
            if (n >= INT32_MAX / 2)
                return irtp_perr(P, P->c, "too many values");
            if ((st = irtp_grow(P, (void **)&list, &cap, n, sizeof *list)))
                return st;
            char *name;
            if ((st = irtp_parse_name(P, &name)))
                return st;
            ir_value *v = NULL;
            if (*name && !(v = ir_graph_value(P->ctx, P->g, name)))
                return OOM;
            ir_type t;
            bool typed = irtp_accept(P, ':');
            if (typed && (st = irtp_parse_type(P, &t)))
                return st;
            if (typed && !v)
                return irtp_perr(P, P->c, "an omitted value \"\" has no type");
            if (v)
                node_line_type(v, &t, typed);
            list[n++] = v;
        } while (irtp_accept(P, ','));
        if ((st = irtp_expect(P, ')')))
            return st;
    }
    *out = list;
    *n_out = (int)n;
    return OCT_OK;
}

/* node OP[@DOMAIN] NAME (IN, ...) -> (OUT, ...) [{ATTR, ...}] [int8=blocks|rows]
 * [doc=D] */
static oct_status parse_node(parser *P)
{
    oct_status st;
    char *op, *domain = "", *name;
    if ((st = irtp_parse_name(P, &op)))
        return st;
    if (P->c < P->eol && *P->c == '@') {
        P->c++;
        if ((st = irtp_parse_name(P, &domain)))
            return st;
    }
    if ((st = irtp_parse_name(P, &name)))
        return st;
    ir_value **in, **out;
    int n_in, n_out;
    if ((st = parse_value_list(P, &in, &n_in)))
        return st;
    if (!irtp_accept_word(P, "->"))
        return irtp_perr(P, P->c, "expected '->'");
    const char *out_at = (irtp_skip_ws(P), P->c);
    if ((st = parse_value_list(P, &out, &n_out)))
        return st;
    ir_node *n = ir_graph_add_node(P->ctx, P->g, op, domain, name, n_in, n_out);
    if (!n)
        return OOM;
    if (n_in)
        memcpy(n->in, in, (size_t)n_in * sizeof *in);
    for (int i = 0; i < n_out; i++) {
        if (!out[i])
            continue;
        if (out[i]->producer || out[i]->init || (out[i]->flags & IR_VAL_INPUT))
            return irtp_perr(P, out_at, "value '%s' is defined twice", out[i]->name);
        ir_node_set_output(n, i, out[i]);
    }
    if (irtp_accept(P, '{')) {
        size_t cap = 0, n_attr = 0;
        ir_attr *attrs = NULL;
        do {
            if (n_attr >= INT32_MAX / 2)
                return irtp_perr(P, P->c, "too many attributes");
            if ((st = irtp_grow(P, (void **)&attrs, &cap, n_attr, sizeof *attrs)) ||
                (st = parse_attr(P, &attrs[n_attr])))
                return st;
            n_attr++;
        } while (irtp_accept(P, ','));
        if ((st = irtp_expect(P, '}')))
            return st;
        n->attrs = attrs;
        n->n_attr = (int)n_attr;
    }
    if (irtp_accept_word(P, "int8=rows"))
        n->act_int8 = IR_INT8_ROWS;
    else if (irtp_accept_word(P, "int8=blocks"))
        n->act_int8 = IR_INT8_BLOCKS;
    return irtp_parse_trailer(P, &n->doc);
}

/* ---- lines --------------------------------------------------------------- */

/* input|output|value_info NAME[: TYPE] [doc=D] */
static oct_status parse_value_line(parser *P, unsigned flag, ir_value **list,
                                   size_t *n)
{
    oct_status st;
    char *name;
    if ((st = irtp_parse_name(P, &name)))
        return st;
    ir_value *v = ir_graph_value(P->ctx, P->g, name);
    if (!v)
        return OOM;
    if (irtp_accept(P, ':')) {
        ir_type t;
        if ((st = irtp_parse_type(P, &t)))
            return st;
        v->has_type = true;
        v->type = t;
    }
    v->flags |= flag;
    list[(*n)++] = v;
    const char *doc = v->doc;
    if ((st = irtp_parse_trailer(P, &doc)))
        return st;
    v->doc = doc;
    return OCT_OK;
}

/* init NAME: TENSOR [doc=D] */
static oct_status parse_init(parser *P)
{
    oct_status st;
    char *name;
    const char *at = (irtp_skip_ws(P), P->c);
    if ((st = irtp_parse_name(P, &name)))
        return st;
    if (!irtp_accept(P, ':'))
        return irtp_perr(P, P->c, "initializer '%s' without a tensor", name);
    ir_value *v = ir_graph_value(P->ctx, P->g, name);
    if (!v)
        return OOM;
    if (v->init)
        return irtp_perr(P, at, "initializer '%s' is given twice", name);
    ir_tensor *t;
    if ((st = irtp_parse_tensor_body(P, name, &t)))
        return st;
    t->name = v->name;
    v->init = t;
    P->g->inits[P->g->n_inits++] = v;
    return irtp_parse_trailer(P, &t->doc);
}

/* model ir_version=N producer_name=S producer_version=S domain=S
 *       [model_version=N] [doc=D] */
static oct_status parse_model_line(parser *P)
{
    oct_status st;
    ir_model *m = P->m;
    static const char *const keys[] = {"producer_name=", "producer_version=",
                                       "domain="};
    const char **fields[] = {&m->producer_name, &m->producer_version, &m->domain};
    if (!irtp_accept_word(P, "ir_version="))
        return irtp_perr(P, P->c, "expected ir_version=");
    if ((st = irtp_parse_i64(P, &m->ir_version)))
        return st;
    for (size_t i = 0; i < 3; i++) {
        if (!irtp_accept_word(P, keys[i]))
            return irtp_perr(P, P->c, "expected %s", keys[i]);
        char *s;
        if ((st = irtp_parse_str(P, true, &s, NULL)))
            return st;
        *fields[i] = s;
    }
    if (irtp_accept_word(P, "model_version=")) {
        if ((st = irtp_parse_i64(P, &m->model_version)))
            return st;
        m->has_model_version = true;
    }
    return irtp_parse_trailer(P, &m->doc);
}

static oct_status parse_opset(parser *P)
{
    oct_status st;
    char *domain;
    if ((st = irtp_parse_name(P, &domain)) || (st = irtp_expect(P, '=')))
        return st;
    ir_opset *o = &P->m->opsets[P->m->n_opsets++];
    o->domain = domain;
    return irtp_parse_i64(P, &o->version);
}

static oct_status parse_metadata(parser *P)
{
    oct_status st;
    char *key, *value;
    if ((st = irtp_parse_str(P, true, &key, NULL)) || (st = irtp_expect(P, '=')) ||
        (st = irtp_parse_str(P, true, &value, NULL)))
        return st;
    P->m->metadata[P->m->n_metadata++] = (ir_kv){key, value};
    return OCT_OK;
}

/* quant TEXT: kept verbatim (without the spaces around it) for the quant
 * passes, which read it (src/passes/quant_text.c). */
static oct_status parse_quant_line(parser *P)
{
    irtp_skip_ws(P);
    const char *end = P->eol;
    while (end > P->c && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    size_t len = (size_t)(end - P->c);
    if (memchr(P->c, '\0', len))
        return irtp_perr(P, P->c, "a NUL byte in a quant line");
    char *text = ir_alloc(P->ctx, len + 1);
    if (!text)
        return OOM;
    memcpy(text, P->c, len);
    text[len] = '\0';
    P->m->quant_lines[P->m->n_quant_lines++] = (ir_text_line){text, P->lineno};
    P->c = P->eol;
    return OCT_OK;
}

typedef enum line_kind {
    L_SKIP, L_MODEL, L_OPSET, L_METADATA, L_GRAPH, L_INPUT, L_OUTPUT, L_INIT,
    L_VALUE_INFO, L_NODE, L_QUANT, L_OPAQUE, L_UNKNOWN, L_COUNT
} line_kind;

static const char *const line_words[L_COUNT] = {
    [L_MODEL] = "model", [L_OPSET] = "opset", [L_METADATA] = "metadata",
    [L_GRAPH] = "graph", [L_INPUT] = "input", [L_OUTPUT] = "output",
    [L_INIT] = "init", [L_VALUE_INFO] = "value_info", [L_NODE] = "node",
    [L_QUANT] = "quant",
};

/* Classifies the line the cursor is at and moves past its keyword. */
static line_kind line_kind_of(parser *P)
{
    irtp_skip_ws(P);
    if (P->c >= P->eol || *P->c == '#')
        return L_SKIP;
    const char *w = P->c;
    while (P->c < P->eol && (isalpha((unsigned char)*P->c) || *P->c == '_'))
        P->c++;
    size_t len = (size_t)(P->c - w);
    for (int k = 0; k < L_COUNT; k++)
        if (line_words[k] && strlen(line_words[k]) == len &&
            !memcmp(line_words[k], w, len))
            return (line_kind)k;
    static const char *const opaque[] = {"function", "training_info",
                                         "sparse_initializer",
                                         "quantization_annotation"};
    for (size_t i = 0; i < sizeof opaque / sizeof opaque[0]; i++)
        if (strlen(opaque[i]) == len && !memcmp(opaque[i], w, len))
            return L_OPAQUE;
    P->c = w;
    return L_UNKNOWN;
}

static bool next_line(parser *P)
{
    const char *start = P->eol ? P->eol + 1 : P->text;
    if (P->eol && P->eol >= P->end)
        return false;
    if (start > P->end)
        return false;
    P->line = P->c = start;
    const char *nl = memchr(start, '\n', (size_t)(P->end - start));
    P->eol = nl ? nl : P->end;
    P->lineno++;
    return true;
}

bool ir_is_text(const void *data, size_t len)
{
    static const char magic[] = "octet-ir 1";
    size_t n = sizeof magic - 1;
    const char *s = data;
    return len > n && !memcmp(s, magic, n) &&
           (s[n] == '\n' || (s[n] == '\r' && len > n + 1 && s[n + 1] == '\n'));
}

/* Counts the lines of each kind (sizing the arrays exactly and checking
 * max_nodes before anything is built). */
static oct_status count_lines(parser *P, size_t counts[L_COUNT])
{
    memset(counts, 0, L_COUNT * sizeof counts[0]);
    P->eol = NULL;
    P->lineno = 0;
    while (next_line(P)) {
        if (P->lineno == 1)
            continue;
        counts[line_kind_of(P)]++;
    }
    if (counts[L_NODE] > P->ctx->limits.max_nodes)
        return oct_error(P->ctx, OCT_EINPUT, "%s: %zu nodes, over the limit of "
                         "%" PRIu64 " (max_nodes)", P->file, counts[L_NODE],
                         P->ctx->limits.max_nodes);
    return OCT_OK;
}

static oct_status parse_lines(parser *P)
{
    size_t counts[L_COUNT];
    oct_status st = count_lines(P, counts);
    if (st)
        return st;
    ir_model *m = P->m;
    m->opsets = ir_alloc_array(P->ctx, counts[L_OPSET] + 1, sizeof *m->opsets);
    m->metadata = ir_alloc_array(P->ctx, counts[L_METADATA] + 1, sizeof *m->metadata);
    m->quant_lines = ir_alloc_array(P->ctx, counts[L_QUANT] + 1, sizeof *m->quant_lines);
    if (!m->opsets || !m->metadata || !m->quant_lines)
        return OOM;
    bool have_model = false;
    P->eol = NULL;
    P->lineno = 0;
    while (next_line(P)) {
        if (P->lineno == 1) {
            if (!ir_is_text(P->line, (size_t)(P->end - P->line)))
                return irtp_perr(P, P->line, "not Octet's text IR: the first line "
                            "must be 'octet-ir 1'");
            continue;
        }
        const char *kw = (irtp_skip_ws(P), P->c);
        line_kind k = line_kind_of(P);
        bool graph_line = k == L_INPUT || k == L_OUTPUT || k == L_INIT ||
                          k == L_VALUE_INFO || k == L_NODE || k == L_QUANT;
        if (k != L_SKIP && k != L_MODEL && k != L_OPAQUE && k != L_UNKNOWN &&
            !have_model)
            return irtp_perr(P, kw, "the 'model' line must come first");
        if (graph_line && !P->g)
            return irtp_perr(P, kw, "a 'graph' line must come before the graph's "
                        "inputs, outputs, initializers and nodes");
        if (k != L_SKIP && k != L_UNKNOWN && k != L_OPAQUE && P->c < P->eol &&
            *P->c != ' ' && *P->c != '\t')
            return irtp_perr(P, P->c, "expected a space after '%.*s'",
                        (int)(P->c - kw), kw);
        ir_graph *g = P->g;
        switch (k) {
        case L_SKIP: continue;
        case L_UNKNOWN: return irtp_perr(P, kw, "unknown line");
        case L_OPAQUE:
            return irtp_perr(P, kw, "'%.*s' is printed as a size and hash and cannot "
                        "be read back", (int)(P->c - kw), kw);
        case L_MODEL:
            if (have_model)
                return irtp_perr(P, kw, "a second 'model' line");
            have_model = true;
            st = parse_model_line(P);
            break;
        case L_OPSET: st = parse_opset(P); break;
        case L_METADATA: st = parse_metadata(P); break;
        case L_GRAPH: {
            if (P->g)
                return irtp_perr(P, kw, "a second 'graph' line");
            if (!(g = P->g = m->graph = ir_graph_new(P->ctx)))
                return OOM;
            g->inputs = ir_alloc_array(P->ctx, counts[L_INPUT] + 1, sizeof *g->inputs);
            g->outputs = ir_alloc_array(P->ctx, counts[L_OUTPUT] + 1, sizeof *g->outputs);
            g->inits = ir_alloc_array(P->ctx, counts[L_INIT] + 1, sizeof *g->inits);
            g->value_info = ir_alloc_array(P->ctx, counts[L_VALUE_INFO] + 1,
                                           sizeof *g->value_info);
            if (!g->inputs || !g->outputs || !g->inits || !g->value_info)
                return OOM;
            char *name;
            if ((st = irtp_parse_name(P, &name)))
                return st;
            g->name = name;
            st = irtp_parse_trailer(P, &g->doc);
            break;
        }
        case L_INPUT: st = parse_value_line(P, IR_VAL_INPUT, g->inputs, &g->n_inputs); break;
        case L_OUTPUT: st = parse_value_line(P, IR_VAL_OUTPUT, g->outputs, &g->n_outputs); break;
        case L_VALUE_INFO:
            st = parse_value_line(P, IR_VAL_INFO, g->value_info, &g->n_value_info);
            break;
        case L_INIT: st = parse_init(P); break;
        case L_NODE: st = parse_node(P); break;
        case L_QUANT: st = parse_quant_line(P); break;
        case L_COUNT: OCT_ASSERT(0); break;
        }
        if (st)
            return st;
        if (!irtp_at_end(P))
            return irtp_perr(P, P->c, "unexpected text at the end of the line");
    }
    if (!have_model)
        return oct_error(P->ctx, OCT_EINPUT, "%s: no 'model' line", P->file);
    if (!P->g)
        return oct_error(P->ctx, OCT_EINPUT, "%s: no 'graph' line", P->file);
    return OCT_OK;
}

oct_status ir_parse_text(oct_ctx *ctx, const char *text, size_t len,
                         const char *file, ir_model **out)
{
    const char *name = ir_strdup(ctx, file ? file : "<text>");
    if (!name)
        return OOM;
    ctx->cur_file = NULL;
    if (len > ctx->limits.max_file_bytes)
        return oct_error(ctx, OCT_EINPUT, "%s: %zu bytes, over the limit of "
                         "%" PRIu64 " bytes (max_file_bytes)", name, len,
                         ctx->limits.max_file_bytes);
    if (!ir_is_text(text, len))
        return oct_error(ctx, OCT_EINPUT, "%s:1:1: not Octet's text IR: the "
                         "first line must be 'octet-ir 1'", name);
    parser P = {.ctx = ctx, .file = name, .text = text, .end = text + len};
    if (!(P.m = ir_model_new(ctx)))
        return OOM;
    oct_status st = parse_lines(&P);
    ctx->cur_file = name; /* later diagnostics name the file */
    if (st == OCT_OK)
        *out = P.m;
    return st;
}
