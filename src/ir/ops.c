/*
 * ops.c: the op table built from ops.def, and lookups into it.
 */
#include <string.h>

#include "ir/ir.h"

static const ir_op_info op_table[IR_OP_COUNT] = {
    [IR_OP_UNKNOWN] = {.name = "?", .domain = "", .kernel = NULL,
                       .min_in = 0, .max_in = -1, .min_out = 0, .max_out = -1},
#define OP(e, nm, dom, k, mini, maxi, mino, maxo, fl, at)                    \
    [IR_OP_##e] = {.name = nm, .domain = dom, .kernel = #k, .min_in = mini,  \
                   .max_in = maxi, .min_out = mino, .max_out = maxo,         \
                   .flags = fl, .attrs = at},
#include "ir/ops.def"
#undef OP
};

const ir_op_info *ir_op_info_of(ir_op op)
{
    return &op_table[(unsigned)op < IR_OP_COUNT ? op : IR_OP_UNKNOWN];
}

static bool is_default_domain(const char *d)
{
    return !d || !*d || strcmp(d, "ai.onnx") == 0;
}

ir_op ir_op_lookup(const char *domain, const char *op_type)
{
    if (!op_type)
        return IR_OP_UNKNOWN;
    for (int op = 1; op < IR_OP_COUNT; op++) {
        const ir_op_info *info = &op_table[op];
        bool same_domain = is_default_domain(info->domain)
                               ? is_default_domain(domain)
                               : domain && strcmp(domain, info->domain) == 0;
        if (same_domain && strcmp(op_type, info->name) == 0)
            return (ir_op)op;
    }
    return IR_OP_UNKNOWN;
}

static const struct {
    const char *code;
    ir_attr_type type;
} attr_codes[] = {
    {"f", IR_ATTR_FLOAT},   {"i", IR_ATTR_INT},
    {"s", IR_ATTR_STRING},  {"t", IR_ATTR_TENSOR},
    {"g", IR_ATTR_GRAPH},   {"fs", IR_ATTR_FLOATS},
    {"is", IR_ATTR_INTS},   {"ss", IR_ATTR_STRINGS},
    {"ts", IR_ATTR_TENSORS}, {"gs", IR_ATTR_GRAPHS},
    {"sp", IR_ATTR_SPARSE_TENSOR}, {"sps", IR_ATTR_SPARSE_TENSORS},
    {"tp", IR_ATTR_TYPE_PROTO}, {"tps", IR_ATTR_TYPE_PROTOS},
};

ir_attr_type ir_op_attr_type(ir_op op, const char *name)
{
    const char *p = ir_op_info_of(op)->attrs;
    size_t name_len = strlen(name);
    while (p && *p) {
        while (*p == ' ')
            p++;
        const char *colon = strchr(p, ':');
        if (!colon)
            break;
        const char *end = colon + strcspn(colon, " ");
        if ((size_t)(colon - p) == name_len && memcmp(p, name, name_len) == 0) {
            size_t code_len = (size_t)(end - colon - 1);
            for (size_t i = 0; i < sizeof attr_codes / sizeof attr_codes[0]; i++)
                if (strlen(attr_codes[i].code) == code_len &&
                    memcmp(attr_codes[i].code, colon + 1, code_len) == 0)
                    return attr_codes[i].type;
            return IR_ATTR_UNDEFINED;
        }
        p = end;
    }
    return IR_ATTR_UNDEFINED;
}

const char *ir_attr_type_name(ir_attr_type t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR", "GRAPH", "FLOATS",
        "INTS", "STRINGS", "TENSORS", "GRAPHS", "SPARSE_TENSOR",
        "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "UNKNOWN";
}
