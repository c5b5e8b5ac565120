/*
 * fe_formats.h: pieces of the .npy and .npz readers that the streaming data
 * set reader (dataset.c) shares with the whole-file readers: the .npy
 * preamble and header parser (npy.c) and the zip central directory walk
 * (npz.c).  Frontend-private; names no protobuf type.
 */
#ifndef OCTET_FE_FORMATS_H
#define OCTET_FE_FORMATS_H

#include "frontend/frontend.h"

/* ---- .npy header (npy.c) ------------------------------------------------ */

#define FE_NPY_MAX_RANK 64

/* What an .npy preamble and header say. */
typedef struct fe_npy_info {
    char descr[64];         /* numpy's type string, e.g. "<f4" */
    ir_dtype dtype;
    bool swap;              /* big-endian data wider than a byte */
    int rank;
    int64_t dims[FE_NPY_MAX_RANK];
    uint64_t nelems;        /* product of dims (overflow-checked) */
    uint64_t nbytes;        /* nelems elements of dtype (overflow-checked) */
    uint64_t data_offset;   /* where the data starts: preamble + header */
} fe_npy_info;

/* Parses the preamble and header of an .npy image whose first `len` bytes
 * are at p (the data need not follow: `len` may stop right after the
 * header).  Checks the magic, the version (1.0, 2.0, 3.0), that the header
 * fits in `len`, ends with '\n' and holds no NUL, the dict's keys, the dtype
 * (plain numeric only), C order, and that the element and byte counts fit
 * in 64 bits.  Does NOT check ctx->limits nor the data length: the caller
 * does.  Diagnostics (OCT_EINPUT / OCT_EUNSUPPORTED) name ctx->cur_file. */
oct_status fe_npy_parse_header(oct_ctx *ctx, const uint8_t *p, size_t len,
                               fe_npy_info *out);

/* Rewrites n elements of `width` bytes from the .npy layout to ir_tensor's
 * (byte swap when info->swap, bool bytes normalized to 0/1 as numpy reads
 * any nonzero byte as True). */
void fe_npy_fix_data(const fe_npy_info *info, uint8_t *data, uint64_t n);

/* ---- zip central directory (npz.c) ------------------------------------- */

/* Where the central directory is. */
typedef struct fe_zip_dir {
    uint64_t n_entries, offset, size;
} fe_zip_dir;

/* One member as the central directory describes it. */
typedef struct fe_zip_member {
    const char *name;      /* arena copy, NUL-terminated */
    size_t name_len;
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, local;
} fe_zip_member;

/* Finds the central directory of the zip archive z[0..len) (through the
 * zip64 records when present) and checks it lies inside the archive. */
oct_status fe_zip_find_dir(oct_ctx *ctx, const uint8_t *z, size_t len,
                           fe_zip_dir *dir);
/* Parses the central directory entry at *pos (inside dir) and advances
 * *pos past it. */
oct_status fe_zip_read_entry(oct_ctx *ctx, const uint8_t *z,
                             const fe_zip_dir *dir, uint64_t *pos,
                             fe_zip_member *m);
/* Checks a member is a readable .npy (not encrypted, stored or deflated,
 * name ending in ".npy", a local header naming it, data inside the
 * archive, sizes consistent and within deflate's maximum ratio) and sets
 * *data_off to where its (compressed) bytes start.  Does not check the
 * expanded size against ctx->limits. */
oct_status fe_zip_member_data(oct_ctx *ctx, const uint8_t *z,
                              const fe_zip_dir *dir, const fe_zip_member *m,
                              uint64_t *data_off);

/* ---- data set folders (dataset_dir.c, for dataset.c) -------------------- */

/* Checks sample data of dtype dt and shape (rank, dims) against model input
 * v (dtype equal, every static dim equal); `what` names the data in the
 * diagnostic, which names v as its tensor. */
oct_status fe_dataset_check_sample(oct_ctx *ctx, const ir_value *v,
                                   const char *what, ir_dtype dt, int rank,
                                   const int64_t *dims);

/* Lists the samples of a folder data set (see dataset.h): *dirs gets one
 * arena path per sample, the folder holding its input_N.pb files, in
 * order; checks that each of the first max_samples (0: all) holds
 * input_0.pb .. input_{n_inputs-1}.pb and no input_{n_inputs}.pb, decodes
 * the first sample to check it against the inputs, and registers every
 * file with ir_note_input. */
oct_status fe_dataset_folder_open(oct_ctx *ctx, const char *path,
                                  const ir_value *const *inputs,
                                  size_t n_inputs, uint64_t max_samples,
                                  const char ***dirs, size_t *count);
/* Reads the sample in folder `dir` into out[0..n_inputs) (ir_heap_tensor_new
 * tensors); on failure nothing is left allocated. */
oct_status fe_dataset_folder_get(oct_ctx *ctx, const char *dir,
                                 const ir_value *const *inputs,
                                 size_t n_inputs, ir_tensor **out);

#endif
