/*
 * onnx_tensor.c: TensorProto <-> ir_tensor, plus the protobuf-c plumbing the
 * decoder and encoder share (arena allocator, unknown fields, opaque
 * sub-messages).
 *
 * Canonical layout (ir.h): elements little endian in C order, sub-byte types
 * packed low bits first.  raw_data already has that layout, and so do
 * float_data (FLOAT, COMPLEX64 as pairs), double_data (DOUBLE, COMPLEX128),
 * int64_data (INT64) and uint64_data (UINT64) on a little-endian host: the
 * tensor then points into the unpacked message.  The other typed forms are
 * converted, following the TensorProto comments of the ONNX spec:
 *   int32_data: INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16 and BFLOAT16
 *     (the bit pattern), the float8 types (the bit pattern): one element per
 *     int32, truncated to the element width on load, sign-extended (signed
 *     types) or zero-extended on save; a value outside the range of INT8,
 *     UINT8, INT16, UINT16 or BOOL is refused (ONNX Runtime would silently
 *     truncate, so a uint8 zero point of 300 would become 44); 4-bit types: one byte holding two
 *     elements per int32; 2-bit types: one byte holding four elements.
 *   uint64_data: UINT32 (truncated to 32 bits on load) and UINT64.
 *   string_data: STRING.
 */
#include <string.h>

#include "frontend/fe_internal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the canonical tensor layout assumes a little-endian host");

/* ---- protobuf-c plumbing ------------------------------------------------ */

static void *arena_pb_alloc(void *data, size_t size)
{
    return ir_alloc((oct_ctx *)data, size);
}

static void arena_pb_free(void *data, void *ptr) { (void)data, (void)ptr; }

ProtobufCAllocator fe_pb_allocator(oct_ctx *ctx)
{
    return (ProtobufCAllocator){arena_pb_alloc, arena_pb_free, ctx};
}

oct_status fe_extra_from_pb(oct_ctx *ctx, const ProtobufCMessage *msg,
                            ir_extra *out)
{
    out->n = 0;
    out->fields = NULL;
    if (!msg->n_unknown_fields)
        return OCT_OK;
    out->fields = ir_alloc_array(ctx, msg->n_unknown_fields, sizeof *out->fields);
    if (!out->fields)
        return OCT_EINTERNAL;
    for (unsigned i = 0; i < msg->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &msg->unknown_fields[i];
        out->fields[i] = (ir_wire_field){u->tag, (uint8_t)u->wire_type, u->len,
                                         u->data};
    }
    out->n = msg->n_unknown_fields;
    return OCT_OK;
}

/* Makes room for `more` unknown fields on msg (arena copy of the array). */
static ProtobufCMessageUnknownField *grow_unknown(oct_ctx *ctx,
                                                  ProtobufCMessage *msg,
                                                  size_t more)
{
    size_t n = msg->n_unknown_fields;
    ProtobufCMessageUnknownField *u =
        ir_alloc_array(ctx, n + more, sizeof *u);
    if (!u)
        return NULL;
    if (n)
        memcpy(u, msg->unknown_fields, n * sizeof *u);
    msg->unknown_fields = u;
    return u + n;
}

oct_status fe_extra_to_pb(oct_ctx *ctx, const ir_extra *extra,
                          ProtobufCMessage *msg)
{
    if (!extra->n)
        return OCT_OK;
    ProtobufCMessageUnknownField *u = grow_unknown(ctx, msg, extra->n);
    if (!u)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < extra->n; i++) {
        const ir_wire_field *f = &extra->fields[i];
        u[i] = (ProtobufCMessageUnknownField){
            f->tag, (ProtobufCWireType)f->wire_type, f->len, f->data};
    }
    msg->n_unknown_fields += (unsigned)extra->n;
    return OCT_OK;
}

oct_status fe_pack_blob(oct_ctx *ctx, const ProtobufCMessage *msg, ir_blob *out)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    out->data = ir_alloc(ctx, n ? n : 1); /* non-NULL even when empty */
    if (!out->data)
        return OCT_EINTERNAL;
    out->len = protobuf_c_message_pack(msg, out->data);
    return OCT_OK;
}

oct_status fe_add_raw_field(oct_ctx *ctx, ProtobufCMessage *msg, uint32_t tag,
                            const ir_blob *bytes)
{
    uint8_t prefix[10];
    size_t np = 0;
    uint64_t v = bytes->len;
    do {
        prefix[np++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    uint8_t *data = ir_alloc(ctx, np + bytes->len);
    ProtobufCMessageUnknownField *u = data ? grow_unknown(ctx, msg, 1) : NULL;
    if (!u)
        return OCT_EINTERNAL;
    memcpy(data, prefix, np);
    if (bytes->len)
        memcpy(data + np, bytes->data, bytes->len);
    *u = (ProtobufCMessageUnknownField){
        tag, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, np + bytes->len, data};
    msg->n_unknown_fields++;
    return OCT_OK;
}

/* ---- typed fields ------------------------------------------------------- */

typedef enum typed_field {
    TF_NONE, TF_FLOAT, TF_DOUBLE, TF_INT32, TF_INT64, TF_UINT64, TF_STRING
} typed_field;

/* Which typed field holds `dtype`, and how many field entries n elements
 * take (false on overflow). */
static typed_field typed_field_of(ir_dtype dt, uint64_t n, uint64_t *count)
{
    *count = n;
    switch (dt) {
    case IR_DT_FLOAT: return TF_FLOAT;
    case IR_DT_COMPLEX64: *count = 2 * n; return TF_FLOAT;
    case IR_DT_DOUBLE: return TF_DOUBLE;
    case IR_DT_COMPLEX128: *count = 2 * n; return TF_DOUBLE;
    case IR_DT_INT64: return TF_INT64;
    case IR_DT_UINT32: case IR_DT_UINT64: return TF_UINT64;
    case IR_DT_STRING: return TF_STRING;
    case IR_DT_UNDEFINED: return TF_NONE;
    case IR_DT_UINT4: case IR_DT_INT4: case IR_DT_FLOAT4E2M1:
        *count = n / 2 + n % 2; return TF_INT32;
    case IR_DT_UINT2: case IR_DT_INT2:
        *count = n / 4 + (n % 4 != 0); return TF_INT32;
    default: return TF_INT32;
    }
}

static const char *const typed_field_name[] = {
    "", "float_data", "double_data", "int32_data", "int64_data", "uint64_data",
    "string_data"};

/* Number of entries in pb's typed field tf. */
static size_t typed_count(const Onnx__TensorProto *pb, typed_field tf)
{
    switch (tf) {
    case TF_FLOAT: return pb->n_float_data;
    case TF_DOUBLE: return pb->n_double_data;
    case TF_INT32: return pb->n_int32_data;
    case TF_INT64: return pb->n_int64_data;
    case TF_UINT64: return pb->n_uint64_data;
    case TF_STRING: return pb->n_string_data;
    default: return 0;
    }
}

static size_t total_typed(const Onnx__TensorProto *pb)
{
    return pb->n_float_data + pb->n_double_data + pb->n_int32_data +
           pb->n_int64_data + pb->n_uint64_data + pb->n_string_data;
}

static oct_status tensor_error(oct_ctx *ctx, const ir_node *node,
                               const char *name, const char *what,
                               oct_status st, const char *msg)
{
    return oct_diagf(ctx, OCT_SEV_ERROR, st, node, 0, -1,
                     name && *name ? name : NULL, "%s: %s", what, msg);
}

/* Converts typed field data to the canonical layout in t->data. */
static oct_status decode_typed(oct_ctx *ctx, const Onnx__TensorProto *pb,
                               typed_field tf, ir_tensor *t)
{
    switch (tf) {
    case TF_FLOAT: t->data = pb->float_data; return OCT_OK;
    case TF_DOUBLE: t->data = pb->double_data; return OCT_OK;
    case TF_INT64: t->data = pb->int64_data; return OCT_OK;
    case TF_UINT64:
        if (t->dtype == IR_DT_UINT64) {
            t->data = pb->uint64_data;
            return OCT_OK;
        }
        break;
    default:
        break;
    }
    uint8_t *out = ir_alloc(ctx, t->nbytes ? t->nbytes : 1);
    if (!out)
        return OCT_EINTERNAL;
    t->data = out;
    if (tf == TF_STRING) {
        ir_blob *s = (ir_blob *)out;
        for (uint64_t i = 0; i < t->nelems; i++)
            s[i] = (ir_blob){pb->string_data[i].data, pb->string_data[i].len};
        return OCT_OK;
    }
    if (tf == TF_UINT64) { /* UINT32 */
        for (uint64_t i = 0; i < t->nelems; i++) {
            uint32_t v = (uint32_t)pb->uint64_data[i];
            memcpy(out + 4 * i, &v, 4);
        }
        return OCT_OK;
    }
    unsigned bits = ir_dtype_info(t->dtype)->bits;
    size_t n = pb->n_int32_data;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)pb->int32_data[i];
        if (bits <= 8) {
            out[i] = (uint8_t)v;
        } else if (bits == 16) {
            uint16_t h = (uint16_t)v;
            memcpy(out + 2 * i, &h, 2);
        } else {
            memcpy(out + 4 * i, &v, 4);
        }
    }
    return OCT_OK;
}

/* For the integer types stored one per int32_data element, finds the first
 * value outside the type's range; returns false if there is none. */
static bool int32_data_out_of_range(const Onnx__TensorProto *pb, ir_dtype dt,
                                    size_t *index)
{
    int32_t lo, hi;
    switch (dt) {
    case IR_DT_INT8: lo = INT8_MIN, hi = INT8_MAX; break;
    case IR_DT_UINT8: lo = 0, hi = UINT8_MAX; break;
    case IR_DT_INT16: lo = INT16_MIN, hi = INT16_MAX; break;
    case IR_DT_UINT16: lo = 0, hi = UINT16_MAX; break;
    case IR_DT_BOOL: lo = 0, hi = 1; break;
    default: return false;
    }
    for (size_t i = 0; i < pb->n_int32_data; i++)
        if (pb->int32_data[i] < lo || pb->int32_data[i] > hi) {
            *index = i;
            return true;
        }
    return false;
}

/* Parses a decimal external_data value; false unless all digits. */
static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || ir_mul_overflow_u64(v, 10, &v) ||
            ir_add_overflow_u64(v, (uint64_t)(*s - '0'), &v))
            return false;
    }
    *out = v;
    return true;
}

static oct_status decode_external(oct_ctx *ctx, const Onnx__TensorProto *pb,
                                  const fe_tensor_src *src, const ir_node *node,
                                  ir_tensor *t)
{
    const char *name = t->name;
    if (!src->allow_external_data)
        return tensor_error(ctx, node, name, src->what, OCT_EINPUT,
                            "tensor data is stored in an external file; pass "
                            "--allow-external-data to read it");
    if (!src->base_dir)
        return tensor_error(ctx, node, name, src->what, OCT_EINPUT,
                            "external data needs the model's folder (not "
                            "available when reading standard input)");
    const char *location = NULL;
    uint64_t offset = 0, length = 0;
    bool has_length = false;
    for (size_t i = 0; i < pb->n_external_data; i++) {
        const char *k = pb->external_data[i]->key;
        const char *v = pb->external_data[i]->value;
        if (!k)
            continue;
        if (!strcmp(k, "location")) {
            location = v;
        } else if (!strcmp(k, "offset") || !strcmp(k, "length")) {
            bool is_len = !strcmp(k, "length");
            if (!parse_u64(v, is_len ? &length : &offset))
                return tensor_error(ctx, node, name, src->what, OCT_EINPUT,
                                    is_len ? "external data length is not a "
                                             "decimal number"
                                           : "external data offset is not a "
                                             "decimal number");
            has_length |= is_len;
        }
    }
    if (!location || !*location)
        return tensor_error(ctx, node, name, src->what, OCT_EINPUT,
                            "external data has no location");
    return fe_read_external(ctx, src->base_dir, name, location, offset,
                            has_length, length, t->nbytes, &t->data);
}

oct_status fe_tensor_decode(oct_ctx *ctx, const Onnx__TensorProto *pb,
                            const fe_tensor_src *src, const ir_node *node,
                            ir_tensor **out)
{
    char msg[256];
    ir_tensor *t = ir_alloc(ctx, sizeof *t);
    if (!t || !(t->name = ir_strdup(ctx, pb->name)) ||
        !(t->doc = ir_strdup(ctx, pb->doc_string)))
        return OCT_EINTERNAL;
    const char *name = t->name, *what = src->what;
    int dt = pb->has_data_type ? pb->data_type : 0;
    if (!ir_dtype_valid(dt)) {
        snprintf(msg, sizeof msg, "unknown data type %d", dt);
        return tensor_error(ctx, node, name, what, OCT_EINPUT, msg);
    }
    t->dtype = (ir_dtype)dt;
    if (pb->n_dims > ctx->limits.max_rank) {
        snprintf(msg, sizeof msg, "rank %zu exceeds the limit of %u (max_rank)",
                 pb->n_dims, ctx->limits.max_rank);
        return tensor_error(ctx, node, name, what, OCT_EINPUT, msg);
    }
    t->rank = (int)pb->n_dims;
    t->dims = pb->dims;
    for (size_t i = 0; i < pb->n_dims; i++)
        if (pb->dims[i] < 0) {
            snprintf(msg, sizeof msg, "negative dimension %lld at axis %zu",
                     (long long)pb->dims[i], i);
            return tensor_error(ctx, node, name, what, OCT_EINPUT, msg);
        }
    if (!ir_shape_elems(t->rank, t->dims, &t->nelems) ||
        !ir_dtype_bytes(t->dtype, t->nelems, &t->nbytes))
        return tensor_error(ctx, node, name, what, OCT_EINPUT,
                            "element count of the dims overflows");
    if (t->nelems > ctx->limits.max_tensor_elems) {
        snprintf(msg, sizeof msg,
                 "%llu elements exceed the limit of %llu (max_tensor_elems)",
                 (unsigned long long)t->nelems,
                 (unsigned long long)ctx->limits.max_tensor_elems);
        return tensor_error(ctx, node, name, what, OCT_EINPUT, msg);
    }
    if (pb->segment)
        return tensor_error(ctx, node, name, what, OCT_EUNSUPPORTED,
                            "segmented tensors are not supported");
    oct_status st = fe_extra_from_pb(ctx, &pb->base, &t->extra);
    if (st)
        return st;
    *out = t;

    if (pb->has_data_location &&
        pb->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (t->dtype == IR_DT_STRING)
            return tensor_error(ctx, node, name, what, OCT_EINPUT,
                                "STRING tensors cannot use external data");
        t->storage = IR_STORE_RAW;
        return decode_external(ctx, pb, src, node, t);
    }
    if (pb->has_raw_data) {
        if (t->dtype == IR_DT_STRING)
            return tensor_error(ctx, node, name, what, OCT_EINPUT,
                                "STRING tensors cannot use raw_data");
        if (total_typed(pb))
            return tensor_error(ctx, node, name, what, OCT_EINPUT,
                                "both raw_data and a typed data field are set");
        if (pb->raw_data.len != t->nbytes) {
            snprintf(msg, sizeof msg,
                     "raw_data holds %zu bytes but %s x %llu elements need "
                     "%llu",
                     pb->raw_data.len, ir_dtype_name(t->dtype),
                     (unsigned long long)t->nelems,
                     (unsigned long long)t->nbytes);
            return tensor_error(ctx, node, name, what, OCT_EINPUT, msg);
        }
        t->storage = IR_STORE_RAW;
        t->data = pb->raw_data.data;
        return OCT_OK;
    }
    uint64_t want;
    typed_field tf = typed_field_of(t->dtype, t->nelems, &want);
    size_t have = typed_count(pb, tf);
    if (have != want || total_typed(pb) != have) {
        if (total_typed(pb) != have)
            snprintf(msg, sizeof msg,
                     "data is in a field that does not match data type %s "
                     "(expected %s)",
                     ir_dtype_name(t->dtype), typed_field_name[tf]);
        else
            snprintf(msg, sizeof msg,
                     "%s holds %zu values but %s x %llu elements need %llu",
                     typed_field_name[tf], have, ir_dtype_name(t->dtype),
                     (unsigned long long)t->nelems, (unsigned long long)want);
        return tensor_error(ctx, node, name, what, OCT_EINPUT, msg);
    }
    size_t bad;
    if (tf == TF_INT32 && int32_data_out_of_range(pb, t->dtype, &bad)) {
        snprintf(msg, sizeof msg,
                 "int32_data element %zu is %ld, out of range for %s",
                 bad, (long)pb->int32_data[bad], ir_dtype_name(t->dtype));
        return tensor_error(ctx, node, name, what, OCT_EINPUT, msg);
    }
    t->storage = IR_STORE_TYPED;
    return decode_typed(ctx, pb, tf, t);
}

/* ---- encoding ----------------------------------------------------------- */

oct_status fe_tensor_encode(oct_ctx *ctx, const ir_tensor *t,
                            Onnx__TensorProto *pb)
{
    pb->n_dims = (size_t)t->rank;
    pb->dims = t->dims;
    pb->has_data_type = 1;
    pb->data_type = (int32_t)t->dtype;
    pb->name = t->name && *t->name ? (char *)t->name : NULL;
    pb->doc_string = t->doc && *t->doc ? (char *)t->doc : NULL;
    oct_status st = fe_extra_to_pb(ctx, &t->extra, &pb->base);
    if (st)
        return st;
    uint64_t count;
    typed_field tf = typed_field_of(t->dtype, t->nelems, &count);
    if (t->storage == IR_STORE_RAW && t->dtype != IR_DT_STRING) {
        pb->has_raw_data = 1;
        pb->raw_data.len = (size_t)t->nbytes;
        pb->raw_data.data = t->data;
        return OCT_OK;
    }
    switch (tf) {
    case TF_FLOAT:
        pb->n_float_data = count;
        pb->float_data = t->data;
        return OCT_OK;
    case TF_DOUBLE:
        pb->n_double_data = count;
        pb->double_data = t->data;
        return OCT_OK;
    case TF_INT64:
        pb->n_int64_data = count;
        pb->int64_data = t->data;
        return OCT_OK;
    case TF_STRING: {
        const ir_blob *s = t->data;
        pb->string_data = ir_alloc_array(ctx, count ? count : 1,
                                         sizeof *pb->string_data);
        if (!pb->string_data)
            return OCT_EINTERNAL;
        for (uint64_t i = 0; i < count; i++)
            pb->string_data[i] = (ProtobufCBinaryData){s[i].len, s[i].data};
        pb->n_string_data = count;
        return OCT_OK;
    }
    case TF_UINT64:
        if (t->dtype == IR_DT_UINT64) {
            pb->n_uint64_data = count;
            pb->uint64_data = t->data;
            return OCT_OK;
        }
        pb->uint64_data = ir_alloc_array(ctx, count ? count : 1, 8);
        if (!pb->uint64_data)
            return OCT_EINTERNAL;
        for (uint64_t i = 0; i < count; i++) {
            uint32_t v;
            memcpy(&v, (const uint8_t *)t->data + 4 * i, 4);
            pb->uint64_data[i] = v;
        }
        pb->n_uint64_data = count;
        return OCT_OK;
    default:
        break;
    }
    /* int32_data: widen each element (or packed byte) to an int32. */
    pb->int32_data = ir_alloc_array(ctx, count ? count : 1, 4);
    if (!pb->int32_data)
        return OCT_EINTERNAL;
    const uint8_t *in = t->data;
    unsigned bits = ir_dtype_info(t->dtype)->bits;
    bool is_signed = ir_dtype_info(t->dtype)->kind == IR_DK_SINT;
    for (uint64_t i = 0; i < count; i++) {
        int32_t v;
        if (bits < 8) {
            v = in[i];
        } else if (bits == 8) {
            v = is_signed ? (int32_t)(int8_t)in[i] : (int32_t)in[i];
        } else if (bits == 16) {
            uint16_t h;
            memcpy(&h, in + 2 * i, 2);
            v = is_signed ? (int32_t)(int16_t)h : (int32_t)h;
        } else {
            memcpy(&v, in + 4 * i, 4);
        }
        pb->int32_data[i] = v;
    }
    pb->n_int32_data = count;
    return OCT_OK;
}

/* ---- standalone TensorProto files --------------------------------------- */

oct_status fe_tensor_from_pb(oct_ctx *ctx, const void *data, size_t len,
                             const char *name_for_diag, ir_tensor **out)
{
    const char *saved_file = ctx->cur_file;
    if (name_for_diag)
        ctx->cur_file = name_for_diag;
    oct_status st = fe_wire_scan(ctx, data, len, &onnx__tensor_proto__descriptor);
    if (st == OCT_OK) {
        ProtobufCAllocator alloc = fe_pb_allocator(ctx);
        Onnx__TensorProto *pb = onnx__tensor_proto__unpack(&alloc, len, data);
        if (!pb) {
            st = ctx->n_errors ? OCT_EINTERNAL
                               : oct_error(ctx, OCT_EINPUT,
                                           "not a valid TensorProto");
        } else {
            fe_tensor_src src = {NULL, false, "tensor"};
            st = fe_tensor_decode(ctx, pb, &src, NULL, out);
        }
    }
    ctx->cur_file = saved_file;
    return st;
}

oct_status fe_write_pb(oct_ctx *ctx, const ir_tensor *t, const char *path)
{
    Onnx__TensorProto pb = ONNX__TENSOR_PROTO__INIT;
    oct_status st = fe_tensor_encode(ctx, t, &pb);
    if (st)
        return st;
    size_t n = onnx__tensor_proto__get_packed_size(&pb);
    uint8_t *buf = oct_malloc(ctx, n ? n : 1);
    if (!buf)
        return OCT_EINTERNAL;
    onnx__tensor_proto__pack(&pb, buf);
    st = ir_write_atomic(ctx, path, buf, n);
    oct_free(ctx, buf, n ? n : 1);
    return st;
}
