/*
 * wire_scan.c: a non-recursive pre-scan of protobuf wire data before
 * protobuf-c unpacks it.  protobuf-c recurses once per nested message and
 * reports every failure as a bare NULL, so this walk, driven by the
 * generated descriptors and an explicit stack of open length-delimited
 * messages, rejects first, with the byte offset: bad or over-long varints,
 * wire types 3/4/6/7 (groups are not used by ONNX), a known field sent with
 * the wrong wire type, lengths running past the end of the enclosing message,
 * subgraphs nested deeper than limits.max_subgraph_depth, and a main graph
 * with more than limits.max_nodes nodes.  Unknown fields are skipped (they
 * are kept verbatim and never parsed).
 */
#include <string.h>

#include "frontend/fe_internal.h"

typedef struct scan_frame {
    const ProtobufCMessageDescriptor *desc;
    size_t end;            /* offset one past the message */
    uint32_t graph_depth;  /* GraphProtos open on the stack, this included */
} scan_frame;

/* Reads a varint at data[*pos], not past `end`.  Returns false if it runs
 * past `end` or is longer than 10 bytes; *value is the low 64 bits. */
static bool read_varint(const uint8_t *data, size_t end, size_t *pos,
                        uint64_t *value)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*pos >= end)
            return false;
        uint8_t b = data[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *value = v;
            return true;
        }
    }
    return false;
}

static const char *wire_type_name(unsigned wt)
{
    static const char *const names[8] = {"varint", "64-bit", "length-delimited",
                                         "start-group", "end-group", "32-bit",
                                         "6", "7"};
    return names[wt & 7];
}

/* Wire type a field of this type is encoded with when not packed. */
static unsigned expected_wire_type(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

static oct_status scan_error(oct_ctx *ctx, const scan_frame *f, size_t offset,
                             const char *what)
{
    return oct_error(ctx, OCT_EINPUT,
                     "not a valid ONNX protobuf: %s at byte offset %zu "
                     "(inside %s)",
                     what, offset, f->desc->name);
}

oct_status fe_wire_scan(oct_ctx *ctx, const uint8_t *data, size_t len,
                        const ProtobufCMessageDescriptor *root)
{
    uint32_t max_depth = ctx->limits.max_subgraph_depth;
    size_t cap = 4 * ((size_t)max_depth + 2) + FE_MAX_EXTRA_NESTING;
    scan_frame *stack = oct_malloc(ctx, cap * sizeof *stack);
    if (!stack)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    size_t top = 0, pos = 0;
    uint64_t main_nodes = 0;
    char msg[256];
    stack[0] = (scan_frame){root, len, root == &onnx__graph_proto__descriptor};

    for (;;) {
        scan_frame *f = &stack[top];
        if (pos == f->end) {
            if (top == 0)
                break;
            top--;
            continue;
        }
        size_t field_at = pos;
        uint64_t key, v;
        if (!read_varint(data, f->end, &pos, &key)) {
            st = scan_error(ctx, f, field_at,
                            pos >= f->end ? "truncated field key"
                                          : "bad varint in field key");
            break;
        }
        unsigned wt = (unsigned)(key & 7);
        uint64_t number = key >> 3;
        if (number == 0 || number > 0x1fffffff) {
            snprintf(msg, sizeof msg, "invalid field number %llu",
                     (unsigned long long)number);
            st = scan_error(ctx, f, field_at, msg);
            break;
        }
        if (wt == 3 || wt == 4 || wt == 6 || wt == 7) {
            snprintf(msg, sizeof msg, "bad wire type %s for field %llu",
                     wire_type_name(wt), (unsigned long long)number);
            st = scan_error(ctx, f, field_at, msg);
            break;
        }
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(f->desc, (unsigned)number);
        if (fd) {
            unsigned want = expected_wire_type(fd->type);
            bool packed_ok = fd->label == PROTOBUF_C_LABEL_REPEATED &&
                             want != 2 && wt == 2;
            if (wt != want && !packed_ok) {
                snprintf(msg, sizeof msg,
                         "field '%s' (%llu) has wire type %s, expected %s",
                         fd->name, (unsigned long long)number,
                         wire_type_name(wt), wire_type_name(want));
                st = scan_error(ctx, f, field_at, msg);
                break;
            }
        }
        size_t left = f->end - pos;
        switch (wt) {
        case 0:
            if (!read_varint(data, f->end, &pos, &v)) {
                st = scan_error(ctx, f, field_at,
                                pos >= f->end ? "truncated varint"
                                              : "bad varint (over 10 bytes)");
                goto done;
            }
            continue;
        case 1:
        case 5: {
            size_t n = wt == 1 ? 8 : 4;
            if (left < n) {
                snprintf(msg, sizeof msg,
                         "truncated %s field %llu (%zu of %zu bytes)",
                         wire_type_name(wt), (unsigned long long)number, left,
                         n);
                st = scan_error(ctx, f, field_at, msg);
                goto done;
            }
            pos += n;
            continue;
        }
        default: /* 2: length-delimited */
            break;
        }
        if (!read_varint(data, f->end, &pos, &v)) {
            st = scan_error(ctx, f, field_at, "truncated or bad length varint");
            break;
        }
        left = f->end - pos;
        if (v > left) {
            snprintf(msg, sizeof msg,
                     "field %llu declares length %llu but only %zu bytes "
                     "remain (truncated file?)",
                     (unsigned long long)number, (unsigned long long)v, left);
            st = scan_error(ctx, f, field_at, msg);
            break;
        }
        if (!fd || fd->type != PROTOBUF_C_TYPE_MESSAGE) {
            pos += (size_t)v;
            continue;
        }
        const ProtobufCMessageDescriptor *child = fd->descriptor;
        bool is_graph = child == &onnx__graph_proto__descriptor;
        uint32_t depth = f->graph_depth + is_graph;
        if (is_graph && depth > (uint64_t)max_depth + 1) {
            st = oct_error(ctx, OCT_EINPUT,
                           "subgraphs nested deeper than %u levels at byte "
                           "offset %zu (limit max_subgraph_depth)",
                           max_depth, field_at);
            break;
        }
        if (child == &onnx__node_proto__descriptor &&
            f->desc == &onnx__graph_proto__descriptor && f->graph_depth == 1 &&
            ++main_nodes > ctx->limits.max_nodes) {
            st = oct_error(ctx, OCT_EINPUT,
                           "graph has more than %llu nodes (limit max_nodes)",
                           (unsigned long long)ctx->limits.max_nodes);
            break;
        }
        if (top + 1 >= cap) {
            st = scan_error(ctx, f, field_at, "messages nested too deeply");
            break;
        }
        stack[++top] = (scan_frame){child, pos + (size_t)v, depth};
    }
done:
    oct_free(ctx, stack, cap * sizeof *stack);
    return st;
}
