/*
 * fe_internal.h: declarations shared by the frontend's files only (the only
 * header besides frontend.h that names protobuf-c types).  Sections: the
 * arena-backed protobuf-c allocator and unknown-field copies (onnx_tensor.c),
 * tensors (onnx_tensor.c), the wire pre-scan (wire_scan.c), file helpers
 * (fe_io.c) and the model encoder's pieces (onnx_save.c).
 *
 * Memory: every protobuf-c message the frontend unpacks or builds lives in
 * the context's arena (the allocator below), so IR tensors may point into an
 * unpacked message and everything is released with the context.
 */
#ifndef OCTET_FE_INTERNAL_H
#define OCTET_FE_INTERNAL_H

#include "frontend/frontend.h"
#include "onnx.pb-c.h"

/* Nesting of length-delimited messages (any kind) the pre-scan accepts on top
 * of four frames per subgraph level; protects protobuf-c's recursion. */
#define FE_MAX_EXTRA_NESTING 64

/* A protobuf-c allocator that takes memory from ctx's arena (so it is
 * counted, budgeted and subject to the fail-Nth hook) and never frees. */
ProtobufCAllocator fe_pb_allocator(oct_ctx *ctx);

/* Unknown wire fields of `msg` -> ir_extra (pointers into msg's arena
 * memory, no copy), and back (an arena array). */
oct_status fe_extra_from_pb(oct_ctx *ctx, const ProtobufCMessage *msg,
                            ir_extra *out);
oct_status fe_extra_to_pb(oct_ctx *ctx, const ir_extra *extra,
                          ProtobufCMessage *msg);
/* Serializes an unpacked message into an arena blob. */
oct_status fe_pack_blob(oct_ctx *ctx, const ProtobufCMessage *msg,
                        ir_blob *out);
/* Appends to msg's unknown fields a length-delimited field number `tag`
 * holding `bytes` (used to write back opaque sub-messages verbatim). */
oct_status fe_add_raw_field(oct_ctx *ctx, ProtobufCMessage *msg, uint32_t tag,
                            const ir_blob *bytes);

/* Where tensors come from while decoding one model. */
typedef struct fe_tensor_src {
    const char *base_dir;     /* model folder for external data, or NULL */
    bool allow_external_data;
    const char *what;         /* "initializer", "attribute", ... */
} fe_tensor_src;

/* Decodes a TensorProto into an arena tensor whose data points into the
 * unpacked message where the layouts agree.  Checks dtype, dims, rank and
 * element-count limits, data length and external data.  Diagnostics name
 * the tensor (and `node` when not NULL). */
oct_status fe_tensor_decode(oct_ctx *ctx, const Onnx__TensorProto *pb,
                            const fe_tensor_src *src, const ir_node *node,
                            ir_tensor **out);
/* Fills *pb (initialised by the caller) from t; points at t's memory
 * wherever the layout allows. */
oct_status fe_tensor_encode(oct_ctx *ctx, const ir_tensor *t,
                            Onnx__TensorProto *pb);

/* Reads external data for a tensor of `nbytes` bytes beneath base_dir (see
 * fe_io.c for the path rules) into arena memory. */
oct_status fe_read_external(oct_ctx *ctx, const char *base_dir,
                            const char *tensor, const char *location,
                            uint64_t offset, bool has_length, uint64_t length,
                            uint64_t nbytes, void **data);

/* Walks the wire format of a serialized message of type `root` without
 * recursion: checks varints, wire types, declared lengths, the subgraph
 * nesting depth and the main graph's node count against ctx->limits.
 * OCT_OK or OCT_EINPUT with a diagnostic giving the byte offset. */
oct_status fe_wire_scan(oct_ctx *ctx, const uint8_t *data, size_t len,
                        const ProtobufCMessageDescriptor *root);

/* Encodes the IR model into arena-held protobuf-c messages (onnx_save.c). */
oct_status fe_model_encode(oct_ctx *ctx, const ir_model *m,
                           Onnx__ModelProto **out);

#endif
