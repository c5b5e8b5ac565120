/*
 * dataset.h: calibration data sets, read one sample at a time (dataset.c).
 *
 * A data set feeds a model's inputs (graph inputs without an initializer, in
 * graph order).  Three kinds, told apart by what the path is:
 *
 *   - an .npy file (the model must have exactly one input).  An array whose
 *     rank equals the input's rank is split along axis 0 into batch-1
 *     samples ([N, ...] gives N samples of shape [1, ...]); an array of rank
 *     + 1 gives one whole input per index of its leading axis.
 *   - an .npz archive with one member "NAME.npy" per model input NAME, each
 *     split by the same rule; every array must give the same sample count.
 *   - a folder holding input_N.pb TensorProto files (one sample), or
 *     test_data_set_N subfolders each holding input_0.pb .. input_{k-1}.pb
 *     (the ONNX backend-test layout; one sample per folder, in the order of
 *     the folders' numeric suffixes).  input_N.pb feeds the model input its
 *     TensorProto names, or else the N-th input.
 *
 * Per-sample dtypes must equal the inputs' (no conversion) and shapes must
 * match every static dim (symbolic dims accept any size).  Arrays are
 * checked when the data set is opened, so a bad data set fails before any
 * sample is run; for folders, the file list of every kept sample and the
 * contents of the first sample are checked then, later samples when read.
 * The CRC-32 of a deflated .npz member is checked when its stream is read
 * to the end; that of stored members is not checked (random access).
 *
 * Memory: only headers and directories are parsed up front.  A sample is
 * read with pread from the array's data (.npy, stored .npz members) or by
 * inflating a deflated member sequentially (one zlib stream per member with
 * a 64 KiB input buffer; asking for an index before the stream's position
 * restarts it), so memory is one sample per input whatever the sample count.
 */
#ifndef OCTET_FE_DATASET_H
#define OCTET_FE_DATASET_H

#include "ir/ir.h"

typedef struct fe_dataset fe_dataset;

/* Opens the data set at `path` for model m, checking every array or file
 * against m's inputs (diagnostics name the file, the member and the model
 * input; OCT_EINPUT for bad data, OCT_EUNSUPPORTED for data Octet does not
 * read).  max_samples 0 keeps every sample, otherwise the first max_samples.
 * Registers the data files with ir_note_input.  On success *out must be
 * released with fe_dataset_close; m must outlive it. */
oct_status fe_dataset_open(oct_ctx *ctx, const char *path, const ir_model *m,
                           uint64_t max_samples, fe_dataset **out);

/* Number of samples (after the max_samples cut); at least 1. */
size_t fe_dataset_count(const fe_dataset *ds);

/* Number of model inputs a sample holds (the length of `inputs` below). */
size_t fe_dataset_n_inputs(const fe_dataset *ds);

/* Reads sample `index` (< fe_dataset_count) into inputs[0..n_inputs):
 * one heap tensor per model input, in graph order, allocated with
 * ir_heap_tensor_new (free each with ir_heap_tensor_free); tensor names point at
 * the model inputs' names.  Any index order works; sequential order is the
 * fast one for deflated .npz members.  On failure every inputs[i] is NULL
 * and a diagnostic says what was wrong (a file truncated or changed since
 * opening, a corrupt deflate stream, a bad .pb file, ...). */
oct_status fe_dataset_get(fe_dataset *ds, size_t index, ir_tensor **inputs);

/* Closes files and releases the streams and buffers.  NULL is a no-op. */
void fe_dataset_close(fe_dataset *ds);

#endif
