/*
 * print_json.c: the model as one JSON document, for tools and scripts
 * (`octet inspect --format=json`).  Layout (docs/inspect.md):
 *
 *   {"format": "octet-ir-json", "version": 1,
 *    "model": {ir_version, producer_name, producer_version, domain,
 *              model_version (or null), doc, opsets: [{domain, version}],
 *              metadata: [{key, value}], functions, training_info,
 *              unknown_fields},
 *    "graph": {name, doc, inputs, outputs, initializers, value_info (lists
 *              of value names), sparse_initializers, quantization_annotations,
 *              unknown_fields},
 *    "values": [one object per value, in value-id order:
 *               {name, kind: "input"|"initializer"|"input+initializer"|
 *                "node_output"|"undefined", producer (node index or null),
 *                producer_output, dtype (ONNX name or null), shape (list of
 *                numbers, symbol strings and null for unknown; null when the
 *                rank is unknown), opaque_type_bytes, in_value_info,
 *                initializer: {dtype, shape, storage, bytes, elements}}],
 *    "nodes": [one object per node, in graph order:
 *              {index, name, op_type, domain, known_op, inputs, outputs
 *               (value names; "" for an omitted optional one), attributes:
 *               [{name, type, value}], doc, unknown_fields}]}
 *
 * Strings are escaped per RFC 8259: '"', '\\' and control characters as
 * escapes, valid UTF-8 copied through; a byte that is not part of valid
 * UTF-8 becomes the code point U+00XX of its value (so output is always
 * valid JSON, at the cost of that byte being ambiguous).  Floats use %.9g;
 * NaN and infinities, which JSON lacks, are the strings "NaN", "Infinity",
 * "-Infinity".  Tensor attribute values give dtype, shape and element count,
 * graph-like attributes their byte size.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

size_t ir_utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void j_str(FILE *out, const void *data, size_t len)
{
    const uint8_t *p = data;
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n': fputs("\\n", out); break;
            case '\t': fputs("\\t", out); break;
            case '\r': fputs("\\r", out); break;
            default: fprintf(out, "\\u%04x", c);
            }
            i++;
        } else {
            size_t n = ir_utf8_len(p + i, len - i);
            if (n == 0) {
                fprintf(out, "\\u%04x", c); /* stray byte: U+00XX */
                i++;
            } else {
                fwrite(p + i, 1, n, out);
                i += n;
            }
        }
    }
    fputc('"', out);
}

static void j_cstr(FILE *out, const char *s)
{
    j_str(out, s ? s : "", s ? strlen(s) : 0);
}

static void j_key(FILE *out, const char *key)
{
    j_cstr(out, key);
    fputc(':', out);
}

static void j_float(FILE *out, double x)
{
    if (isnan(x))
        fputs("\"NaN\"", out);
    else if (isinf(x))
        fputs(x > 0 ? "\"Infinity\"" : "\"-Infinity\"", out);
    else
        fprintf(out, "%.9g", x);
}

static void j_dtype(FILE *out, int dtype)
{
    if (ir_dtype_valid(dtype))
        j_cstr(out, ir_dtype_name(dtype));
    else
        fputs("null", out);
}

static void j_name_list(FILE *out, ir_value *const *vals, size_t n)
{
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        j_cstr(out, vals[i] ? vals[i]->name : "");
    }
    fputc(']', out);
}

static void j_tensor(FILE *out, const ir_tensor *t)
{
    if (!t) {
        fputs("null", out);
        return;
    }
    fputc('{', out);
    j_key(out, "name");
    j_cstr(out, t->name);
    fputc(',', out);
    j_key(out, "dtype");
    j_dtype(out, t->dtype);
    fputs(",\"shape\":[", out);
    for (int i = 0; t->dims && i < t->rank; i++)
        fprintf(out, "%s%" PRId64, i ? "," : "", t->dims[i]);
    fprintf(out, "],\"storage\":\"%s\",\"bytes\":%" PRIu64
                 ",\"elements\":%" PRIu64 "}",
            t->storage == IR_STORE_RAW ? "raw" : "typed", t->nbytes,
            t->nelems);
}

static void j_attr_value(FILE *out, const ir_attr *a)
{
    switch (a->type) {
    case IR_ATTR_FLOAT: j_float(out, a->f); return;
    case IR_ATTR_INT: fprintf(out, "%" PRId64, a->i); return;
    case IR_ATTR_STRING: j_str(out, a->s.data, a->s.len); return;
    case IR_ATTR_TENSOR: j_tensor(out, a->t); return;
    case IR_ATTR_GRAPH: case IR_ATTR_SPARSE_TENSOR: case IR_ATTR_TYPE_PROTO:
        fprintf(out, "{\"bytes\":%zu}", a->g.len);
        return;
    case IR_ATTR_FLOATS: case IR_ATTR_INTS: case IR_ATTR_STRINGS:
    case IR_ATTR_TENSORS: case IR_ATTR_GRAPHS: case IR_ATTR_SPARSE_TENSORS:
    case IR_ATTR_TYPE_PROTOS:
        break;
    default:
        fputs("null", out);
        return;
    }
    const void *list = a->type == IR_ATTR_FLOATS    ? (const void *)a->floats
                       : a->type == IR_ATTR_INTS    ? (const void *)a->ints
                       : a->type == IR_ATTR_STRINGS ? (const void *)a->strings
                       : a->type == IR_ATTR_TENSORS ? (const void *)a->tensors
                                                    : (const void *)a->blobs;
    fputc('[', out);
    for (size_t i = 0; list && i < a->n; i++) {
        if (i)
            fputc(',', out);
        switch (a->type) {
        case IR_ATTR_FLOATS: j_float(out, a->floats[i]); break;
        case IR_ATTR_INTS: fprintf(out, "%" PRId64, a->ints[i]); break;
        case IR_ATTR_STRINGS:
            j_str(out, a->strings[i].data, a->strings[i].len);
            break;
        case IR_ATTR_TENSORS: j_tensor(out, a->tensors[i]); break;
        default: fprintf(out, "{\"bytes\":%zu}", a->blobs[i].len); break;
        }
    }
    fputc(']', out);
}

static void j_value(FILE *out, const ir_value *v)
{
    const char *kind = v->producer ? "node_output"
                       : (v->flags & IR_VAL_INPUT) && v->init ? "input+initializer"
                       : (v->flags & IR_VAL_INPUT)            ? "input"
                       : v->init                              ? "initializer"
                                                              : "undefined";
    fputs("\n  {", out);
    j_key(out, "name");
    j_cstr(out, v->name);
    fprintf(out, ",\"kind\":\"%s\",\"producer\":", kind);
    if (v->producer)
        fprintf(out, "%u,\"producer_output\":%d", v->producer->id,
                v->producer_out);
    else
        fputs("null,\"producer_output\":null", out);
    fputs(",\"dtype\":", out);
    if (v->has_type && !v->type.opaque.len)
        j_dtype(out, v->type.dtype);
    else
        fputs("null", out);
    fputs(",\"shape\":", out);
    if (v->has_type && !v->type.opaque.len && v->type.rank >= 0 &&
        (v->type.dims || v->type.rank == 0)) {
        fputc('[', out);
        for (int i = 0; i < v->type.rank; i++) {
            const ir_dim *d = &v->type.dims[i];
            if (i)
                fputc(',', out);
            if (d->value >= 0)
                fprintf(out, "%" PRId64, d->value);
            else if (d->param && *d->param)
                j_cstr(out, d->param);
            else
                fputs("null", out);
        }
        fputc(']', out);
    } else {
        fputs("null", out);
    }
    fprintf(out, ",\"opaque_type_bytes\":%zu,\"in_value_info\":%s",
            v->type.opaque.len, v->flags & IR_VAL_INFO ? "true" : "false");
    fputs(",\"initializer\":", out);
    j_tensor(out, v->init);
    fputc('}', out);
}

static void j_node(FILE *out, const ir_node *n, size_t index)
{
    fprintf(out, "\n  {\"index\":%zu,\"name\":", index);
    j_cstr(out, n->name);
    fputs(",\"op_type\":", out);
    j_cstr(out, n->op_type);
    fputs(",\"domain\":", out);
    j_cstr(out, n->domain);
    fprintf(out, ",\"known_op\":%s,\"inputs\":",
            n->op != IR_OP_UNKNOWN ? "true" : "false");
    j_name_list(out, n->in, (size_t)n->n_in);
    fputs(",\"outputs\":", out);
    j_name_list(out, n->out, (size_t)n->n_out);
    fputs(",\"attributes\":[", out);
    for (int i = 0; i < n->n_attr; i++) {
        const ir_attr *a = &n->attrs[i];
        fputs(i ? ",{" : "{", out);
        j_key(out, "name");
        j_cstr(out, a->name);
        fputs(",\"type\":", out);
        j_cstr(out, ir_attr_type_name(a->type));
        fputs(",\"value\":", out);
        if (a->ref_attr_name && *a->ref_attr_name) {
            fputs("{\"ref_attr_name\":", out);
            j_cstr(out, a->ref_attr_name);
            fputc('}', out);
        } else {
            j_attr_value(out, a);
        }
        fputc('}', out);
    }
    fputs("],\"doc\":", out);
    j_cstr(out, n->doc);
    fprintf(out, ",\"unknown_fields\":%zu}", n->extra.n);
}

void ir_print_json(const ir_model *m, FILE *out)
{
    fputs("{\"format\":\"octet-ir-json\",\"version\":1,\n\"model\":{", out);
    fprintf(out, "\"ir_version\":%" PRId64 ",\"producer_name\":", m->ir_version);
    j_cstr(out, m->producer_name);
    fputs(",\"producer_version\":", out);
    j_cstr(out, m->producer_version);
    fputs(",\"domain\":", out);
    j_cstr(out, m->domain);
    fputs(",\"model_version\":", out);
    if (m->has_model_version)
        fprintf(out, "%" PRId64, m->model_version);
    else
        fputs("null", out);
    fputs(",\"doc\":", out);
    j_cstr(out, m->doc);
    fputs(",\"opsets\":[", out);
    for (size_t i = 0; i < m->n_opsets; i++) {
        fputs(i ? ",{\"domain\":" : "{\"domain\":", out);
        j_cstr(out, m->opsets[i].domain);
        fprintf(out, ",\"version\":%" PRId64 "}", m->opsets[i].version);
    }
    fputs("],\"metadata\":[", out);
    for (size_t i = 0; i < m->n_metadata; i++) {
        fputs(i ? ",{\"key\":" : "{\"key\":", out);
        j_cstr(out, m->metadata[i].key);
        fputs(",\"value\":", out);
        j_cstr(out, m->metadata[i].value);
        fputc('}', out);
    }
    fprintf(out, "],\"functions\":%zu,\"training_info\":%zu,"
                 "\"unknown_fields\":%zu}",
            m->n_functions, m->n_training_info, m->extra.n);
    const ir_graph *g = m->graph;
    if (!g) {
        fputs(",\n\"graph\":null,\"values\":[],\"nodes\":[]}\n", out);
        return;
    }
    fputs(",\n\"graph\":{\"name\":", out);
    j_cstr(out, g->name);
    fputs(",\"doc\":", out);
    j_cstr(out, g->doc);
    fputs(",\"inputs\":", out);
    j_name_list(out, g->inputs, g->n_inputs);
    fputs(",\"outputs\":", out);
    j_name_list(out, g->outputs, g->n_outputs);
    fputs(",\"initializers\":", out);
    j_name_list(out, g->inits, g->n_inits);
    fputs(",\"value_info\":", out);
    j_name_list(out, g->value_info, g->n_value_info);
    fprintf(out, ",\"sparse_initializers\":%zu,\"quantization_annotations\":%zu,"
                 "\"unknown_fields\":%zu},\n\"values\":[",
            g->n_sparse_inits, g->n_quant_annotations, g->extra.n);
    for (size_t i = 0; i < g->n_values; i++) {
        if (i)
            fputc(',', out);
        j_value(out, g->values[i]);
    }
    fputs("],\n\"nodes\":[", out);
    for (size_t i = 0; i < g->n_nodes; i++) {
        if (i)
            fputc(',', out);
        j_node(out, g->nodes[i], i);
    }
    fputs("]}\n", out);
}
