/*
 * frontend.h: ONNX in and out.  Decodes ModelProto (protobuf-c, Debian's
 * onnx.proto) into the IR and encodes the IR back; reads and writes tensors
 * as .npy, .npz and TensorProto .pb files.  Only files under src/frontend/
 * include the generated protobuf header.
 *
 * Every writer goes through ir_write_atomic (src/ir/io.c): a temporary file in the target
 * folder, flushed, then renamed, so a failure never leaves a partial file
 * and an output that names an input is refused.
 */
#ifndef OCTET_FRONTEND_H
#define OCTET_FRONTEND_H

#include "ir/ir.h"

typedef struct fe_load_opts {
    bool allow_external_data; /* read external data beneath the model folder */
} fe_load_opts;

/* Loads a model.  `path` "-" reads standard input.  On success *out is the
 * model in ctx's arena; on failure a diagnostic names the file and what was
 * wrong (OCT_EINPUT for malformed input, OCT_EUNSUPPORTED for valid ONNX
 * Octet cannot represent). */
oct_status fe_load_file(oct_ctx *ctx, const char *path,
                        const fe_load_opts *opts, ir_model **out);
/* Loads from memory; `name` is used in diagnostics and `base_dir` (may be
 * NULL) is where external data would be looked for. */
oct_status fe_load_memory(oct_ctx *ctx, const void *data, size_t len,
                          const char *name, const char *base_dir,
                          const fe_load_opts *opts, ir_model **out);

/* Encodes the model.  *data is oct_malloc'ed; free with oct_free(ctx, *data,
 * *len). */
oct_status fe_save_memory(oct_ctx *ctx, const ir_model *m, uint8_t **data,
                          size_t *len);
/* Writes the model to `path` atomically ("-": standard output). */
oct_status fe_save_file(oct_ctx *ctx, const ir_model *m, const char *path);

/* ---- tensors ----------------------------------------------------------- */

/* Reads one tensor: .npy or TensorProto .pb, chosen by the file's content
 * (the .npy magic) and extension.  The tensor lives in ctx's arena. */
oct_status fe_read_tensor(oct_ctx *ctx, const char *path, ir_tensor **out);
/* Reads every array of an .npz (stored or deflated members); names are the
 * member names without ".npy". */
oct_status fe_read_npz(oct_ctx *ctx, const char *path, ir_tensor ***out,
                       size_t *n_out);
/* Decodes a serialized TensorProto. */
oct_status fe_tensor_from_pb(oct_ctx *ctx, const void *data, size_t len,
                             const char *name_for_diag, ir_tensor **out);
/* Decodes an .npy image in memory. */
oct_status fe_tensor_from_npy(oct_ctx *ctx, const void *data, size_t len,
                              const char *name_for_diag, ir_tensor **out);
/* Writes a tensor as .npy / TensorProto .pb (atomically). */
oct_status fe_write_npy(oct_ctx *ctx, const ir_tensor *t, const char *path);
oct_status fe_write_pb(oct_ctx *ctx, const ir_tensor *t, const char *path);

#endif
