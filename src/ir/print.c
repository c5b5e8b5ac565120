/*
 * print.c: the text form of a model, used by `octet inspect`, golden tests
 * and --print-after.  It is stable and diff-friendly: one line per entity,
 * nodes in graph order, nothing that depends on addresses or timing.  Every
 * field the IR keeps appears, directly or as a size and hash, so two models
 * print the same text exactly when they hold the same information (a
 * load-save-load round trip that loses anything changes the text).
 *
 * Format (version 1; docs/inspect.md has the same description):
 *
 *   octet-ir 1
 *   model ir_version=N producer_name=S producer_version=S domain=S
 *         [model_version=N] [doc=D] [unknown=U]              (one line)
 *   opset DOMAIN=VERSION                     one per opset_import, in order
 *   metadata KEY=VALUE                       one per metadata_props entry
 *   function <function N bytes #H>           opaque ModelProto.functions
 *   training_info <training_info N bytes #H>
 *   graph NAME [doc=D] [unknown=U]
 *   sparse_initializer <sparse_tensor N bytes #H>
 *   quantization_annotation <annotation N bytes #H>
 *   input NAME[: TYPE] [doc=D] [unknown=U]   graph.input, in order
 *   output NAME[: TYPE] [doc=D] [unknown=U]  graph.output
 *   init NAME: TENSOR [doc=D] [unknown=U]    graph.initializer
 *   value_info NAME[: TYPE] [doc=D] [unknown=U]
 *   node OP[@DOMAIN] NAME (IN, ...) -> (OUT, ...) [{ATTR, ...}]
 *        [int8=blocks|rows] [doc=D] [unknown=U]   (one line per node;
 *                                            int8=: ir_node.act_int8, which
 *                                            ONNX does not carry)
 *   quant TEXT                               the quant passes' state, kept
 *                                            verbatim (src/passes/quant_text.c)
 *
 *   NAME     bare if it is non-empty, made of [A-Za-z0-9_.:/-] and does not
 *            end in ':', else a quoted string.  An unnamed node is "".
 *   S        a quoted string: "..." with \" \\ \n \t \r and \xHH for every
 *            other byte outside printable ASCII (so non-UTF-8 bytes survive).
 *   D        a doc string: quoted when at most 64 bytes, else <N bytes #H>.
 *   U        unknown protobuf fields kept verbatim: their count and #H.
 *   #H       64-bit FNV-1a hash of the bytes, 16 hex digits.
 *   IN/OUT   NAME[: TYPE], or "" for an omitted optional input or output;
 *            an initializer without a declared type shows DT[DIMS] of its
 *            tensor.
 *   TYPE     DT[DIMS] with DT a short dtype name (f32, i64, u8, f8e4m3fn,
 *            ...; '?' if undefined), DIMS comma-separated: a number, a
 *            symbolic name (quoted if it starts with a digit), or '?' when
 *            unknown; DT[*] when the rank is
 *            unknown; a dimension or type denotation follows as @S.  Non-
 *            tensor types (sequence, map, ...) print as <type N bytes #H>.
 *   TENSOR   DT[DIMS] raw|typed #H [= [v, ...]]: the storage the protobuf
 *            used, the hash of the raw_data-layout bytes (strings: of each
 *            length and bytes), and the values when there are at most 8
 *            elements of an integer, bool, f32 or f64 type.  With the
 *            `full` option every tensor shows its values: a list for those
 *            types and for STRING (as S), x"HEX" of the raw_data-layout
 *            bytes for the others (f16, bf16, f8, 4-bit, complex); doc
 *            strings are then always quoted.  parse.c reads that back.
 *   ATTR     name=VALUE [doc=D] [unknown=U], in stored order.  VALUE:
 *            INT as a number; FLOAT as %.9g (round-trips a float exactly)
 *            with ".0" added when it would read as an integer; STRING as S;
 *            lists as [a, b]; an empty list as ints[] floats[] strings[]
 *            tensors[] graphs[] sparse_tensors[] type_protos[]; TENSOR as
 *            tensor(NAME: TENSOR) (NAME omitted when empty); GRAPH as
 *            <graph N bytes #H>, SPARSE_TENSOR and TYPE_PROTO likewise;
 *            a reference to a function attribute as @NAME.
 *
 * Multi-byte tensor elements are read as little endian (the raw_data
 * layout), whatever the host's byte order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

enum { DOC_INLINE_MAX = 64, PREVIEW_MAX = 8 };

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
#define FNV_SEED 1469598103934665603ull

static void put_str(FILE *out, const void *data, size_t len)
{
    const uint8_t *p = data;
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            if (c < 0x20 || c > 0x7e)
                fprintf(out, "\\x%02x", c);
            else
                fputc(c, out);
        }
    }
    fputc('"', out);
}

static void put_cstr(FILE *out, const char *s)
{
    put_str(out, s ? s : "", s ? strlen(s) : 0);
}

static bool is_bare(const char *s)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || strchr("_.:/-", c);
        if (!ok)
            return false;
    }
    return s[n - 1] != ':';
}

static void put_name(FILE *out, const char *s)
{
    if (is_bare(s))
        fputs(s, out);
    else
        put_cstr(out, s);
}

static void put_hash(FILE *out, uint64_t h)
{
    fprintf(out, "#%016" PRIx64, h);
}

static void put_blob_ref(FILE *out, const char *kind, const ir_blob *b)
{
    fprintf(out, "<%s %zu bytes ", kind, b->len);
    put_hash(out, fnv1a(FNV_SEED, b->data, b->len));
    fputc('>', out);
}

/* " doc=D" for a non-empty doc string (always quoted when full). */
static void put_doc(FILE *out, const char *doc, bool full)
{
    size_t len = doc ? strlen(doc) : 0;
    if (!len)
        return;
    fputs(" doc=", out);
    if (len <= DOC_INLINE_MAX || full) {
        put_str(out, doc, len);
    } else {
        ir_blob b = {(uint8_t *)doc, len};
        fprintf(out, "<%zu bytes ", len);
        put_hash(out, fnv1a(FNV_SEED, b.data, b.len));
        fputc('>', out);
    }
}

/* " unknown=N #H" when unknown wire fields were kept. */
static void put_extra(FILE *out, const ir_extra *x)
{
    if (!x->n)
        return;
    uint64_t h = FNV_SEED;
    for (size_t i = 0; i < x->n; i++) {
        const ir_wire_field *f = &x->fields[i];
        uint64_t head[3] = {f->tag, f->wire_type, f->len};
        h = fnv1a(h, head, sizeof head);
        h = fnv1a(h, f->data, f->len);
    }
    fprintf(out, " unknown=%zu ", x->n);
    put_hash(out, h);
}

/* A float that reads back as the same float and never as an integer. */
static void put_float(FILE *out, double x, int digits)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*g", digits, x);
    fputs(buf, out);
    if (!strpbrk(buf, ".eEni")) /* not 1.5, 1e+10, nan, inf */
        fputs(".0", out);
}

static void put_dims_open(FILE *out, int dtype)
{
    fputs(ir_dtype_short(dtype), out);
    fputc('[', out);
}

static void put_type(FILE *out, const ir_type *t)
{
    if (t->opaque.len) {
        put_blob_ref(out, "type", &t->opaque);
        return;
    }
    if (t->rank < 0 || (t->rank > 0 && !t->dims)) {
        fprintf(out, "%s[*]", ir_dtype_short(t->dtype));
    } else {
        put_dims_open(out, t->dtype);
        for (int i = 0; i < t->rank; i++) {
            const ir_dim *d = &t->dims[i];
            if (i)
                fputc(',', out);
            if (d->value >= 0)
                fprintf(out, "%" PRId64, d->value);
            else if (d->param && *d->param && (*d->param < '0' || *d->param > '9'))
                put_name(out, d->param);
            else if (d->param && *d->param)
                put_cstr(out, d->param); /* quoted: it would read as a number */
            else
                fputc('?', out);
            if (d->denotation && *d->denotation) {
                fputc('@', out);
                put_cstr(out, d->denotation);
            }
        }
        fputc(']', out);
    }
    if (t->denotation && *t->denotation) {
        fputc('@', out);
        put_cstr(out, t->denotation);
    }
}

/* NAME[: TYPE] of a value; an initializer without a declared type shows
 * its tensor's dtype and shape.  Only node lines use the tensor fallback
 * (with_init): the input/value_info lines show declared types only. */
static void put_value(FILE *out, const ir_value *v, bool with_init)
{
    if (!v) {
        fputs("\"\"", out);
        return;
    }
    put_name(out, v->name);
    if (v->has_type) {
        fputs(": ", out);
        put_type(out, &v->type);
    } else if (with_init && v->init) {
        const ir_tensor *t = v->init;
        fputs(": ", out);
        put_dims_open(out, t->dtype);
        for (int i = 0; t->dims && i < t->rank; i++)
            fprintf(out, "%s%" PRId64, i ? "," : "", t->dims[i]);
        fputc(']', out);
    }
}

/* Loads element i of a little-endian array of `bytes`-wide elements. */
static uint64_t load_le(const uint8_t *p, size_t i, unsigned bytes)
{
    uint64_t x = 0;
    for (unsigned b = 0; b < bytes; b++)
        x |= (uint64_t)p[i * bytes + b] << (8 * b);
    return x;
}

/* Prints element i of a tensor whose dtype is previewable(). */
static void put_elem(FILE *out, const ir_tensor *t, size_t i)
{
    const uint8_t *p = t->data;
    const ir_dtype_traits *tr = ir_dtype_info(t->dtype);
    unsigned bytes = tr->bits / 8;
    switch (t->dtype) {
    case IR_DT_FLOAT: {
        uint32_t u = (uint32_t)load_le(p, i, 4);
        float f;
        memcpy(&f, &u, sizeof f);
        put_float(out, f, 9);
        return;
    }
    case IR_DT_DOUBLE: {
        uint64_t u = load_le(p, i, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        put_float(out, d, 17);
        return;
    }
    case IR_DT_BOOL:
    case IR_DT_UINT8: case IR_DT_UINT16: case IR_DT_UINT32: case IR_DT_UINT64:
        fprintf(out, "%" PRIu64, load_le(p, i, bytes));
        return;
    case IR_DT_INT8: case IR_DT_INT16: case IR_DT_INT32: case IR_DT_INT64: {
        uint64_t u = load_le(p, i, bytes);
        unsigned shift = 64 - 8 * bytes;
        int64_t s = (int64_t)(u << shift) >> shift; /* sign-extend */
        fprintf(out, "%" PRId64, s);
        return;
    }
    default:
        fputc('?', out);
    }
}

static uint64_t tensor_hash(const ir_tensor *t)
{
    if (!t->data)
        return FNV_SEED;
    if (t->dtype != IR_DT_STRING)
        return fnv1a(FNV_SEED, t->data, t->nbytes);
    uint64_t h = FNV_SEED;
    const ir_blob *s = t->data;
    for (uint64_t i = 0; i < t->nelems; i++) {
        uint64_t len = s[i].len;
        h = fnv1a(h, &len, sizeof len);
        h = fnv1a(h, s[i].data, s[i].len);
    }
    return h;
}

static bool previewable(int dtype)
{
    switch (dtype) {
    case IR_DT_FLOAT: case IR_DT_DOUBLE: case IR_DT_BOOL:
    case IR_DT_UINT8: case IR_DT_UINT16: case IR_DT_UINT32: case IR_DT_UINT64:
    case IR_DT_INT8: case IR_DT_INT16: case IR_DT_INT32: case IR_DT_INT64:
        return true;
    default:
        return false;
    }
}

/* The full-mode values of a tensor no list can show: strings as a list
 * of S, every other dtype as x"HEX" of its raw_data-layout bytes. */
static void put_raw_values(FILE *out, const ir_tensor *t)
{
    if (t->dtype == IR_DT_STRING) {
        const ir_blob *s = t->data;
        fputs(" = [", out);
        for (uint64_t i = 0; i < t->nelems; i++) {
            if (i)
                fputs(", ", out);
            put_str(out, s[i].data, s[i].len);
        }
        fputc(']', out);
        return;
    }
    const uint8_t *p = t->data;
    fputs(" = x\"", out);
    for (uint64_t i = 0; i < t->nbytes; i++)
        fprintf(out, "%02x", p[i]);
    fputc('"', out);
}

/* DT[DIMS] raw|typed #H [= [v, ...] | = x"HEX"]: values when small and
 * previewable, or always when full. */
static void put_tensor_body(FILE *out, const ir_tensor *t, bool full)
{
    put_dims_open(out, t->dtype);
    for (int i = 0; t->dims && i < t->rank; i++)
        fprintf(out, "%s%" PRId64, i ? "," : "", t->dims[i]);
    fprintf(out, "] %s ", t->storage == IR_STORE_RAW ? "raw" : "typed");
    put_hash(out, tensor_hash(t));
    if (!t->data || t->nelems == 0 ||
        (!full && (t->nelems > PREVIEW_MAX || !previewable(t->dtype))))
        return;
    uint64_t bytes;
    if (!ir_dtype_bytes(t->dtype, t->nelems, &bytes) ||
        (t->dtype != IR_DT_STRING && bytes != t->nbytes))
        return; /* inconsistent size: the verifier reports it */
    if (!previewable(t->dtype)) {
        put_raw_values(out, t);
        return;
    }
    fputs(" = [", out);
    for (uint64_t i = 0; i < t->nelems; i++) {
        if (i)
            fputs(", ", out);
        put_elem(out, t, (size_t)i);
    }
    fputc(']', out);
}

static void put_tensor(FILE *out, const ir_tensor *t, bool full)
{
    if (!t) {
        fputs("tensor()", out);
        return;
    }
    fputs("tensor(", out);
    if (t->name && *t->name) {
        put_name(out, t->name);
        fputs(": ", out);
    }
    put_tensor_body(out, t, full);
    put_doc(out, t->doc, full);
    put_extra(out, &t->extra);
    fputc(')', out);
}

/* The element array of a list attribute (NULL if missing). */
static const void *attr_list_data(const ir_attr *a)
{
    switch (a->type) {
    case IR_ATTR_FLOATS: return a->floats;
    case IR_ATTR_INTS: return a->ints;
    case IR_ATTR_STRINGS: return a->strings;
    case IR_ATTR_TENSORS: return a->tensors;
    default: return a->blobs;
    }
}

static void put_attr(FILE *out, const ir_attr *a, bool full)
{
    static const char *const empty_list[] = {
        [IR_ATTR_FLOATS] = "floats[]", [IR_ATTR_INTS] = "ints[]",
        [IR_ATTR_STRINGS] = "strings[]", [IR_ATTR_TENSORS] = "tensors[]",
        [IR_ATTR_GRAPHS] = "graphs[]", [IR_ATTR_SPARSE_TENSORS] = "sparse_tensors[]",
        [IR_ATTR_TYPE_PROTOS] = "type_protos[]"};
    put_name(out, a->name);
    fputc('=', out);
    if (a->ref_attr_name && *a->ref_attr_name) {
        fputc('@', out);
        put_name(out, a->ref_attr_name);
    } else {
        switch (a->type) {
        case IR_ATTR_FLOAT: put_float(out, a->f, 9); break;
        case IR_ATTR_INT: fprintf(out, "%" PRId64, a->i); break;
        case IR_ATTR_STRING: put_str(out, a->s.data, a->s.len); break;
        case IR_ATTR_TENSOR: put_tensor(out, a->t, full); break;
        case IR_ATTR_GRAPH: put_blob_ref(out, "graph", &a->g); break;
        case IR_ATTR_SPARSE_TENSOR: put_blob_ref(out, "sparse_tensor", &a->g); break;
        case IR_ATTR_TYPE_PROTO: put_blob_ref(out, "type_proto", &a->g); break;
        case IR_ATTR_FLOATS: case IR_ATTR_INTS: case IR_ATTR_STRINGS:
        case IR_ATTR_TENSORS: case IR_ATTR_GRAPHS: case IR_ATTR_SPARSE_TENSORS:
        case IR_ATTR_TYPE_PROTOS:
            if (!a->n) {
                fputs(empty_list[a->type], out);
                break;
            }
            if (!attr_list_data(a)) {
                fputs("[?]", out); /* inconsistent: no elements stored */
                break;
            }
            fputc('[', out);
            for (size_t i = 0; i < a->n; i++) {
                if (i)
                    fputs(", ", out);
                switch (a->type) {
                case IR_ATTR_FLOATS: put_float(out, a->floats[i], 9); break;
                case IR_ATTR_INTS: fprintf(out, "%" PRId64, a->ints[i]); break;
                case IR_ATTR_STRINGS:
                    put_str(out, a->strings[i].data, a->strings[i].len);
                    break;
                case IR_ATTR_TENSORS: put_tensor(out, a->tensors[i], full); break;
                case IR_ATTR_GRAPHS: put_blob_ref(out, "graph", &a->blobs[i]); break;
                case IR_ATTR_SPARSE_TENSORS:
                    put_blob_ref(out, "sparse_tensor", &a->blobs[i]);
                    break;
                default: put_blob_ref(out, "type_proto", &a->blobs[i]); break;
                }
            }
            fputc(']', out);
            break;
        default:
            fprintf(out, "<attribute type %d>", (int)a->type);
        }
    }
    put_doc(out, a->doc, full);
    put_extra(out, &a->extra);
}

static void put_node(FILE *out, const ir_node *n, bool full)
{
    fputs("node ", out);
    put_name(out, n->op_type);
    if (n->domain && *n->domain) {
        fputc('@', out);
        put_name(out, n->domain);
    }
    fputc(' ', out);
    put_name(out, n->name);
    fputs(" (", out);
    for (int i = 0; i < n->n_in; i++) {
        if (i)
            fputs(", ", out);
        put_value(out, n->in[i], true);
    }
    fputs(") -> (", out);
    for (int i = 0; i < n->n_out; i++) {
        if (i)
            fputs(", ", out);
        put_value(out, n->out[i], true);
    }
    fputc(')', out);
    if (n->n_attr) {
        fputs(" {", out);
        for (int i = 0; i < n->n_attr; i++) {
            if (i)
                fputs(", ", out);
            put_attr(out, &n->attrs[i], full);
        }
        fputc('}', out);
    }
    if (n->act_int8)
        fputs(n->act_int8 == IR_INT8_ROWS ? " int8=rows" : " int8=blocks", out);
    put_doc(out, n->doc, full);
    put_extra(out, &n->extra);
    fputc('\n', out);
}

static void put_value_line(FILE *out, const char *kind, const ir_value *v,
                           bool full)
{
    fprintf(out, "%s ", kind);
    put_value(out, v, false);
    put_doc(out, v->doc, full);
    put_extra(out, &v->extra);
    fputc('\n', out);
}

void ir_print_text(const ir_model *m, FILE *out)
{
    ir_print_text_opts(m, out, NULL);
}

void ir_print_text_opts(const ir_model *m, FILE *out, const ir_print_opts *opts)
{
    bool full = opts && opts->full;
    fputs("octet-ir 1\n", out);
    fprintf(out, "model ir_version=%" PRId64 " producer_name=", m->ir_version);
    put_cstr(out, m->producer_name);
    fputs(" producer_version=", out);
    put_cstr(out, m->producer_version);
    fputs(" domain=", out);
    put_cstr(out, m->domain);
    if (m->has_model_version)
        fprintf(out, " model_version=%" PRId64, m->model_version);
    put_doc(out, m->doc, full);
    put_extra(out, &m->extra);
    fputc('\n', out);
    for (size_t i = 0; i < m->n_opsets; i++) {
        fputs("opset ", out);
        put_cstr(out, m->opsets[i].domain);
        fprintf(out, "=%" PRId64 "\n", m->opsets[i].version);
    }
    for (size_t i = 0; i < m->n_metadata; i++) {
        fputs("metadata ", out);
        put_cstr(out, m->metadata[i].key);
        fputc('=', out);
        put_cstr(out, m->metadata[i].value);
        fputc('\n', out);
    }
    for (size_t i = 0; i < m->n_functions; i++) {
        fputs("function ", out);
        put_blob_ref(out, "function", &m->functions[i]);
        fputc('\n', out);
    }
    for (size_t i = 0; i < m->n_training_info; i++) {
        fputs("training_info ", out);
        put_blob_ref(out, "training_info", &m->training_info[i]);
        fputc('\n', out);
    }
    const ir_graph *g = m->graph;
    if (!g)
        return;
    fputs("graph ", out);
    put_name(out, g->name);
    put_doc(out, g->doc, full);
    put_extra(out, &g->extra);
    fputc('\n', out);
    for (size_t i = 0; i < g->n_sparse_inits; i++) {
        fputs("sparse_initializer ", out);
        put_blob_ref(out, "sparse_tensor", &g->sparse_inits[i]);
        fputc('\n', out);
    }
    for (size_t i = 0; i < g->n_quant_annotations; i++) {
        fputs("quantization_annotation ", out);
        put_blob_ref(out, "annotation", &g->quant_annotations[i]);
        fputc('\n', out);
    }
    for (size_t i = 0; i < g->n_inputs; i++)
        put_value_line(out, "input", g->inputs[i], full);
    for (size_t i = 0; i < g->n_outputs; i++)
        put_value_line(out, "output", g->outputs[i], full);
    for (size_t i = 0; i < g->n_inits; i++) {
        const ir_value *v = g->inits[i];
        const ir_tensor *t = v->init;
        fputs("init ", out);
        put_name(out, v->name);
        if (t) {
            fputs(": ", out);
            put_tensor_body(out, t, full);
            put_doc(out, t->doc, full);
            put_extra(out, &t->extra);
        }
        fputc('\n', out);
    }
    for (size_t i = 0; i < g->n_value_info; i++)
        put_value_line(out, "value_info", g->value_info[i], full);
    for (size_t i = 0; i < g->n_nodes; i++)
        put_node(out, g->nodes[i], full);
    for (size_t i = 0; i < m->n_quant_lines; i++)
        fprintf(out, "quant %s\n", m->quant_lines[i].text);
}

void ir_print_str(FILE *out, const char *s)
{
    put_cstr(out, s);
}

void ir_print_name(FILE *out, const char *s)
{
    put_name(out, s);
}

void ir_print_float(FILE *out, double x, int digits)
{
    put_float(out, x, digits);
}
