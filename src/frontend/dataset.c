/*
 * dataset.c: calibration data sets read one sample at a time (dataset.h).
 *
 * Opening parses only .npy headers (npy.c's parser), the .npz central
 * directory and local headers (npz.c's walk, over a read-only mmap of the
 * archive that touches only those pages), or a folder listing, and checks
 * each array against its model input.  Reading a sample allocates one
 * ir_heap_tensor_new tensor per input and fills it straight from the file:
 * pread at data_offset + index * sample_bytes for .npy files and stored
 * members; a per-member zlib stream for deflated members (zs_*).  Folders
 * of .pb files are handled in dataset_dir.c.
 *
 * Every size read from a file is untrusted: products and sums are
 * overflow-checked, each array's data must lie exactly within its file or
 * member, and a sample must fit ctx->limits (max_tensor_elems, max_rank,
 * max_alloc_bytes through oct_malloc).  The whole data set is not bounded
 * by max_file_bytes: it is never held in memory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "frontend/fe_formats.h"
#include "frontend/dataset.h"

#define DS_CHUNK (64 * 1024)           /* zlib input and skip buffers */
#define DS_HEADER_MAX (1u << 20)       /* longest .npy header accepted */

typedef enum ds_kind { DS_NPY, DS_NPZ, DS_FOLDER } ds_kind;

/* One array feeding one model input (.npy file or .npz member). */
typedef struct ds_array {
    const char *where;        /* "the array" or "member 'x.npy'" (the
                                 diagnostics' file is the data set) */
    const char *file;         /* "path" or "path(x.npy)" */
    fe_npy_info info;
    uint64_t n_samples;
    int sample_rank;
    int64_t sample_dims[IR_HEAP_MAX_RANK];
    uint64_t sample_elems, sample_bytes;
    uint64_t start;           /* file offset of the .npy image (member) */
    uint64_t image_len;       /* bytes of the .npy image */
    /* deflated members */
    bool deflated;
    uint64_t csize;           /* compressed bytes, at `start` */
    uint32_t crc_want;
    z_stream zs;
    bool zs_live;
    uint8_t *inbuf;           /* DS_CHUNK bytes, oct_malloc'ed */
    uint64_t comp_pos;        /* compressed bytes handed to zlib */
    uint64_t out_pos;         /* image bytes produced so far */
    uint32_t crc;             /* CRC-32 of image[0..out_pos) */
    bool ended;               /* verified stream end and CRC */
} ds_array;

struct fe_dataset {
    oct_ctx *ctx;
    ds_kind kind;
    const char *path;
    int fd;
    size_t n_inputs;
    const ir_value **inputs;
    ds_array *arrays;         /* npy/npz: one per input, in input order */
    size_t count;
    uint64_t max_samples;     /* 0: all */
    const char **sample_dirs; /* folder: one folder per sample */
    uint8_t *skip;            /* DS_CHUNK scratch for skipping in streams */
};

/* Records an error about model input `v` (named as the tensor), with the
 * data file as ctx->cur_file. */
static oct_status input_error(oct_ctx *ctx, oct_status st, const ir_value *v,
                              const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static oct_status input_error(oct_ctx *ctx, oct_status st, const ir_value *v,
                              const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return oct_diagf(ctx, OCT_SEV_ERROR, st, NULL, 0, -1, v ? v->name : NULL,
                     "%s", msg);
}

/* Reads exactly n bytes at `off`; a short read is a truncated file. */
static oct_status read_at(fe_dataset *ds, uint64_t off, void *dst, uint64_t n)
{
    uint8_t *p = dst;
    while (n) {
        size_t want = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t r = pread(ds->fd, p, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return oct_error(ds->ctx, OCT_EINPUT, "cannot read: %s",
                             strerror(errno));
        if (r == 0)
            return oct_error(ds->ctx, OCT_EINPUT,
                             "file ends at offset %llu, before the data the "
                             "header announced (truncated or changed since "
                             "it was opened)", (unsigned long long)off);
        p += r;
        off += (uint64_t)r;
        n -= (uint64_t)r;
    }
    return OCT_OK;
}

/* ---- deflated members: one sequential zlib stream each ---------------- */

/* (Re)starts a's stream at the beginning of its member. */
static oct_status zs_restart(fe_dataset *ds, ds_array *a)
{
    int zr = a->zs_live ? inflateReset(&a->zs) : inflateInit2(&a->zs, -15);
    if (zr != Z_OK)
        return oct_error(ds->ctx, OCT_EINTERNAL, "zlib inflate init failed");
    a->zs_live = true;
    a->zs.avail_in = 0;
    a->comp_pos = 0;
    a->out_pos = 0;
    a->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    return OCT_OK;
}

/* Inflates exactly n bytes (n <= 1 GiB) of a's image into dst, refilling
 * the input buffer from the file as needed. */
static oct_status zs_pull(fe_dataset *ds, ds_array *a, uint8_t *dst, size_t n)
{
    a->zs.next_out = dst;
    a->zs.avail_out = (uInt)n;
    while (a->zs.avail_out) {
        if (a->zs.avail_in == 0 && a->comp_pos < a->csize) {
            uint64_t left = a->csize - a->comp_pos;
            size_t take = left > DS_CHUNK ? DS_CHUNK : (size_t)left;
            oct_status st = read_at(ds, a->start + a->comp_pos, a->inbuf,
                                    take);
            if (st != OCT_OK)
                return st;
            a->comp_pos += take;
            a->zs.next_in = a->inbuf;
            a->zs.avail_in = (uInt)take;
        }
        uInt before = a->zs.avail_out;
        int zr = inflate(&a->zs, Z_NO_FLUSH);
        uInt made = before - a->zs.avail_out;
        a->crc = (uint32_t)crc32(a->crc, a->zs.next_out - made, made);
        a->out_pos += made;
        if (zr == Z_STREAM_END && a->zs.avail_out)
            return oct_error(ds->ctx, OCT_EINPUT,
                             "%s: deflate stream ends after %llu bytes, "
                             "before the %llu the member declares", a->where,
                             (unsigned long long)a->out_pos,
                             (unsigned long long)a->image_len);
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_BUF_ERROR && a->zs.avail_in == 0 &&
            a->comp_pos == a->csize)
            return oct_error(ds->ctx, OCT_EINPUT,
                             "%s: deflate stream truncated", a->where);
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return oct_error(ds->ctx, OCT_EINPUT,
                             "%s: corrupt deflate data (%s)", a->where,
                             a->zs.msg ? a->zs.msg : "bad stream");
    }
    return OCT_OK;
}

/* After the last byte of the image: the stream must end there and the
 * CRC-32 of everything inflated must match the central directory. */
static oct_status zs_check_end(fe_dataset *ds, ds_array *a)
{
    uint8_t extra;
    oct_status st = OCT_OK;
    for (;;) {
        if (a->zs.avail_in == 0 && a->comp_pos < a->csize) {
            uint64_t left = a->csize - a->comp_pos;
            size_t take = left > DS_CHUNK ? DS_CHUNK : (size_t)left;
            st = read_at(ds, a->start + a->comp_pos, a->inbuf, take);
            if (st != OCT_OK)
                return st;
            a->comp_pos += take;
            a->zs.next_in = a->inbuf;
            a->zs.avail_in = (uInt)take;
        }
        a->zs.next_out = &extra;
        a->zs.avail_out = 1;
        int zr = inflate(&a->zs, Z_NO_FLUSH);
        if (a->zs.avail_out == 0)
            return oct_error(ds->ctx, OCT_EINPUT,
                             "%s: inflates to more than the declared %llu "
                             "bytes", a->where,
                             (unsigned long long)a->image_len);
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK || (a->zs.avail_in == 0 && a->comp_pos == a->csize))
            return oct_error(ds->ctx, OCT_EINPUT,
                             "%s: deflate stream truncated or corrupt",
                             a->where);
    }
    if (a->crc != a->crc_want)
        return oct_error(ds->ctx, OCT_EINPUT,
                         "%s: CRC-32 mismatch (stored %08x, computed %08x)",
                         a->where, (unsigned)a->crc_want, (unsigned)a->crc);
    a->ended = true;
    return st;
}

/* Reads image bytes [pos, pos + n) of a deflated member into dst,
 * restarting the stream when pos lies behind it and skipping forward
 * through ds->skip otherwise. */
static oct_status zs_read(fe_dataset *ds, ds_array *a, uint64_t pos,
                          uint8_t *dst, uint64_t n)
{
    oct_status st = OCT_OK;
    if (!a->zs_live || pos < a->out_pos)
        st = zs_restart(ds, a);
    while (st == OCT_OK && a->out_pos < pos) {
        uint64_t gap = pos - a->out_pos;
        st = zs_pull(ds, a, ds->skip, gap > DS_CHUNK ? DS_CHUNK : (size_t)gap);
    }
    while (st == OCT_OK && n) {
        size_t take = n > (1u << 30) ? (1u << 30) : (size_t)n;
        st = zs_pull(ds, a, dst, take);
        dst += take;
        n -= take;
    }
    if (st == OCT_OK && a->out_pos == a->image_len && !a->ended)
        st = zs_check_end(ds, a);
    return st;
}

/* Bytes [pos, pos + n) of a's .npy image, from the file or the stream. */
static oct_status array_read(fe_dataset *ds, ds_array *a, uint64_t pos,
                             uint8_t *dst, uint64_t n)
{
    if (a->deflated)
        return zs_read(ds, a, pos, dst, n);
    return read_at(ds, a->start + pos, dst, n);
}

/* ---- arrays against model inputs --------------------------------------- */

/* Parses the .npy header of a (the preamble tells how long it is; at most
 * DS_HEADER_MAX bytes are read) and checks that its data fill the image
 * exactly. */
static oct_status array_header(fe_dataset *ds, ds_array *a)
{
    oct_ctx *ctx = ds->ctx;
    uint8_t pre[12] = {0};
    uint64_t n = a->image_len < 12 ? a->image_len : 12;
    oct_status st = array_read(ds, a, 0, pre, n);
    if (st != OCT_OK)
        return st;
    uint64_t need = n;
    if (n >= 10 && pre[6] == 1)
        need = 10 + ((uint64_t)pre[8] | (uint64_t)pre[9] << 8);
    else if (n >= 12 && (pre[6] == 2 || pre[6] == 3))
        need = 12 + ((uint64_t)pre[8] | (uint64_t)pre[9] << 8 |
                     (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24);
    if (need > a->image_len)
        need = a->image_len; /* the parser reports the header running out */
    if (need > DS_HEADER_MAX)
        return oct_error(ctx, OCT_EINPUT,
                         "%s: npy header of %llu bytes is longer than the "
                         "%u accepted", a->where, (unsigned long long)need,
                         DS_HEADER_MAX);
    uint8_t *head = oct_malloc(ctx, need ? (size_t)need : 1);
    if (!head)
        return OCT_EINTERNAL;
    st = array_read(ds, a, 0, head, need);
    if (st == OCT_OK) {
        /* Header problems name the member as npz.c does: "file(x.npy)". */
        const char *saved = ctx->cur_file;
        ctx->cur_file = a->file;
        st = fe_npy_parse_header(ctx, head, (size_t)need, &a->info);
        ctx->cur_file = saved;
    }
    oct_free(ctx, head, need ? (size_t)need : 1);
    if (st != OCT_OK)
        return st;
    uint64_t have = a->image_len - a->info.data_offset;
    if (have != a->info.nbytes)
        return oct_error(ctx, OCT_EINPUT,
                         "%s: npy data is %llu bytes but dtype %s and the "
                         "shape need %llu (%s)", a->where,
                         (unsigned long long)have, a->info.descr,
                         (unsigned long long)a->info.nbytes,
                         have < a->info.nbytes ? "file truncated"
                                               : "trailing bytes");
    return OCT_OK;
}

/* Formats dims as "[d0,d1,...]" ("?" for -1) into buf. */
static const char *dims_str(char *buf, size_t size, int rank,
                            const int64_t *dims)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < rank && n < size; i++)
        n += dims[i] < 0
                 ? (size_t)snprintf(buf + n, size - n, "%s?", i ? "," : "")
                 : (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "",
                                    (long long)dims[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

oct_status fe_dataset_check_sample(oct_ctx *ctx, const ir_value *v,
                                   const char *what, ir_dtype dt, int rank,
                                   const int64_t *dims)
{
    char got[256], want[256];
    int64_t vdims[IR_HEAP_MAX_RANK];
    for (int i = 0; i < v->type.rank; i++)
        vdims[i] = v->type.dims[i].value;
    dims_str(got, sizeof got, rank, dims);
    dims_str(want, sizeof want, v->type.rank, vdims);
    if (dt != v->type.dtype)
        return input_error(ctx, OCT_EINPUT, v,
                           "%s has dtype %s but model input '%s' is %s (no "
                           "conversion is done: convert the data)", what,
                           ir_dtype_name(dt), v->name,
                           ir_dtype_name(v->type.dtype));
    bool ok = rank == v->type.rank;
    for (int i = 0; ok && i < rank; i++)
        ok = vdims[i] < 0 || vdims[i] == dims[i];
    if (!ok)
        return input_error(ctx, OCT_EINPUT, v,
                           "%s gives samples of shape %s but model input "
                           "'%s' has shape %s", what, got, v->name, want);
    return OCT_OK;
}

/* Decides how array a splits into samples for input v and checks them. */
static oct_status array_match(oct_ctx *ctx, ds_array *a, const ir_value *v)
{
    const fe_npy_info *h = &a->info;
    int vr = v->type.rank;
    char shape[256];
    dims_str(shape, sizeof shape, h->rank, h->dims);
    if (h->rank == vr && vr == 0) {
        a->n_samples = 1;
        a->sample_rank = 0;
    } else if (h->rank == vr) {
        a->n_samples = (uint64_t)h->dims[0];
        a->sample_rank = vr;
        a->sample_dims[0] = 1;
        memcpy(a->sample_dims + 1, h->dims + 1, sizeof(int64_t) * (size_t)(vr - 1));
    } else if (h->rank == vr + 1) {
        a->n_samples = (uint64_t)h->dims[0];
        a->sample_rank = vr;
        memcpy(a->sample_dims, h->dims + 1, sizeof(int64_t) * (size_t)vr);
    } else {
        return input_error(ctx, OCT_EINPUT, v,
                           "%s (shape %s) does not fit model input "
                           "'%s' of rank %d: it needs rank %d (split along "
                           "axis 0 into batch-1 samples) or %d (one sample "
                           "per leading index)", a->where, shape, v->name, vr,
                           vr, vr + 1);
    }
    if (a->n_samples == 0)
        return input_error(ctx, OCT_EINPUT, v,
                           "%s (shape %s) holds no samples for model "
                           "input '%s'", a->where, shape, v->name);
    char what[600];
    snprintf(what, sizeof what, "%s (shape %s)", a->where, shape);
    oct_status st = fe_dataset_check_sample(ctx, v, what, h->dtype, a->sample_rank,
                                 a->sample_dims);
    if (st != OCT_OK)
        return st;
    a->sample_elems = h->nelems / a->n_samples;
    if (a->sample_elems > ctx->limits.max_tensor_elems)
        return input_error(ctx, OCT_EINPUT, v,
                           "%s: one sample has %llu elements, above the limit "
                           "of %llu", a->where,
                           (unsigned long long)a->sample_elems,
                           (unsigned long long)ctx->limits.max_tensor_elems);
    a->sample_bytes = h->nbytes / a->n_samples;
    return OCT_OK;
}

/* ---- opening: .npy and .npz -------------------------------------------- */

static oct_status open_npy(fe_dataset *ds, uint64_t file_len)
{
    oct_ctx *ctx = ds->ctx;
    if (ds->n_inputs != 1)
        return oct_error(ctx, OCT_EINPUT,
                         "an .npy data set feeds a model with exactly one "
                         "input; this model has %zu (use an .npz with one "
                         "array per input name)", ds->n_inputs);
    ds_array *a = &ds->arrays[0];
    a->where = "the array";
    a->file = ds->path;
    a->start = 0;
    a->image_len = file_len;
    oct_status st = array_header(ds, a);
    return st != OCT_OK ? st : array_match(ctx, a, ds->inputs[0]);
}

/* Walks the central directory of the mapped archive z and binds one
 * member per model input. */
static oct_status npz_members(fe_dataset *ds, const uint8_t *z, size_t len)
{
    oct_ctx *ctx = ds->ctx;
    fe_zip_dir dir;
    oct_status st = fe_zip_find_dir(ctx, z, len, &dir);
    if (st != OCT_OK)
        return st;
    uint64_t pos = dir.offset;
    bool *bound = ir_alloc_array(ctx, ds->n_inputs ? ds->n_inputs : 1,
                                 sizeof *bound);
    if (!bound)
        return OCT_EINTERNAL;
    for (uint64_t e = 0; e < dir.n_entries; e++) {
        fe_zip_member m;
        st = fe_zip_read_entry(ctx, z, &dir, &pos, &m);
        if (st != OCT_OK)
            return st;
        uint64_t data_off;
        st = fe_zip_member_data(ctx, z, &dir, &m, &data_off);
        if (st != OCT_OK)
            return st;
        size_t k = 0;
        while (k < ds->n_inputs &&
               !(m.name_len == strlen(ds->inputs[k]->name) + 4 &&
                 strncmp(m.name, ds->inputs[k]->name, m.name_len - 4) == 0))
            k++;
        if (k == ds->n_inputs)
            return oct_error(ctx, OCT_EINPUT,
                             "member '%s' names no input of the model (an "
                             ".npz data set holds one NAME.npy per model "
                             "input)", m.name);
        if (bound[k])
            return oct_error(ctx, OCT_EINPUT, "member '%s' appears twice",
                             m.name);
        bound[k] = true;
        ds_array *a = &ds->arrays[k];
        a->where = ir_sprintf(ctx, "member '%s'", m.name);
        a->file = ir_sprintf(ctx, "%s(%s)", ds->path, m.name);
        if (!a->where || !a->file)
            return OCT_EINTERNAL;
        a->start = data_off;
        a->image_len = m.usize;
        a->deflated = m.method == 8;
        a->csize = m.csize;
        a->crc_want = m.crc;
    }
    for (size_t k = 0; k < ds->n_inputs; k++)
        if (!bound[k])
            return input_error(ctx, OCT_EINPUT, ds->inputs[k],
                               "no member '%s.npy' for model input '%s'",
                               ds->inputs[k]->name, ds->inputs[k]->name);
    return OCT_OK;
}

static oct_status open_npz(fe_dataset *ds, uint64_t file_len)
{
    oct_ctx *ctx = ds->ctx;
    if (file_len > SIZE_MAX)
        return oct_error(ctx, OCT_EINPUT, "archive too large to map");
    void *map = mmap(NULL, (size_t)file_len, PROT_READ, MAP_PRIVATE, ds->fd, 0);
    if (map == MAP_FAILED)
        return oct_error(ctx, OCT_EINPUT, "cannot map the archive: %s",
                         strerror(errno));
    oct_status st = npz_members(ds, map, (size_t)file_len);
    munmap(map, (size_t)file_len);
    if (st != OCT_OK)
        return st;
    ds->skip = oct_malloc(ctx, DS_CHUNK);
    if (!ds->skip)
        return OCT_EINTERNAL;
    for (size_t k = 0; k < ds->n_inputs; k++) {
        ds_array *a = &ds->arrays[k];
        if (a->deflated && !(a->inbuf = oct_malloc(ctx, DS_CHUNK)))
            return OCT_EINTERNAL;
        if ((st = array_header(ds, a)) != OCT_OK ||
            (st = array_match(ctx, a, ds->inputs[k])) != OCT_OK)
            return st;
        if (a->n_samples != ds->arrays[0].n_samples)
            return input_error(ctx, OCT_EINPUT, ds->inputs[k],
                               "%s gives %llu samples but %s gives %llu: "
                               "every array needs the same count", a->where,
                               (unsigned long long)a->n_samples,
                               ds->arrays[0].where,
                               (unsigned long long)ds->arrays[0].n_samples);
    }
    return OCT_OK;
}

/* ---- public API --------------------------------------------------------- */

/* Fills ds->inputs with the graph inputs that have no initializer and
 * checks each has a readable tensor type. */
static oct_status collect_inputs(fe_dataset *ds, const ir_model *m)
{
    oct_ctx *ctx = ds->ctx;
    const ir_graph *g = m->graph;
    ds->inputs = ir_alloc_array(ctx, g->n_inputs ? g->n_inputs : 1,
                                sizeof *ds->inputs);
    if (!ds->inputs)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->init)
            continue;
        const ir_dtype_traits *tr = ir_dtype_info(v->type.dtype);
        if (!v->has_type || !ir_dtype_valid(v->type.dtype) ||
            tr->kind == IR_DK_STRING || tr->bits < 8)
            return input_error(ctx, OCT_EUNSUPPORTED, v,
                               "model input '%s' is not a tensor of a "
                               "numeric byte-sized type; data sets cannot "
                               "feed it", v->name);
        if (v->type.rank < 0 || v->type.rank > IR_HEAP_MAX_RANK)
            return input_error(ctx, OCT_EUNSUPPORTED, v,
                               "model input '%s' has no static rank (at most "
                               "%d); a data set needs one", v->name,
                               IR_HEAP_MAX_RANK);
        ds->inputs[ds->n_inputs++] = v;
    }
    if (ds->n_inputs == 0)
        return oct_error(ctx, OCT_EINPUT, "the model has no inputs to feed");
    return OCT_OK;
}

/* Tells the data set kind from the path: a folder, or a file's magic. */
static oct_status open_kind(fe_dataset *ds)
{
    oct_ctx *ctx = ds->ctx;
    struct stat sb;
    if (stat(ds->path, &sb) != 0)
        return oct_error(ctx, OCT_EINPUT, "cannot open the data set: %s",
                         strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        ds->kind = DS_FOLDER;
        return fe_dataset_folder_open(ctx, ds->path, ds->inputs, ds->n_inputs,
                                      ds->max_samples, &ds->sample_dirs,
                                      &ds->count);
    }
    ds->fd = open(ds->path, O_RDONLY | O_CLOEXEC);
    if (ds->fd < 0)
        return oct_error(ctx, OCT_EINPUT, "cannot open the data set: %s",
                         strerror(errno));
    if (fstat(ds->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        return oct_error(ctx, OCT_EINPUT,
                         "the data set is not a regular file or a folder");
    ir_note_input(ctx, ds->path);
    ds->arrays = ir_alloc_array(ctx, ds->n_inputs, sizeof *ds->arrays);
    if (!ds->arrays)
        return OCT_EINTERNAL;
    uint8_t magic[6] = {0};
    uint64_t len = (uint64_t)sb.st_size;
    oct_status st = read_at(ds, 0, magic, len < 6 ? len : 6);
    if (st != OCT_OK)
        return st;
    if (len >= 6 && memcmp(magic, "\x93NUMPY", 6) == 0) {
        ds->kind = DS_NPY;
        st = open_npy(ds, len);
    } else if (len >= 4 && memcmp(magic, "PK", 2) == 0 &&
               ((magic[2] == 3 && magic[3] == 4) ||
                (magic[2] == 5 && magic[3] == 6))) {
        ds->kind = DS_NPZ;
        st = open_npz(ds, len);
    } else {
        return oct_error(ctx, OCT_EINPUT,
                         "not a data set: expected an .npy file, an .npz "
                         "archive or a folder of TensorProto files");
    }
    if (st == OCT_OK)
        ds->count = (size_t)ds->arrays[0].n_samples;
    return st;
}

oct_status fe_dataset_open(oct_ctx *ctx, const char *path, const ir_model *m,
                           uint64_t max_samples, fe_dataset **out)
{
    *out = NULL;
    fe_dataset *ds = oct_malloc(ctx, sizeof *ds);
    if (!ds)
        return OCT_EINTERNAL;
    memset(ds, 0, sizeof *ds);
    ds->ctx = ctx;
    ds->fd = -1;
    ds->max_samples = max_samples;
    ds->path = ir_strdup(ctx, path);
    if (!ds->path) {
        oct_free(ctx, ds, sizeof *ds);
        return OCT_EINTERNAL;
    }
    const char *saved = ctx->cur_file;
    ctx->cur_file = ds->path;
    oct_status st = collect_inputs(ds, m);
    if (st == OCT_OK)
        st = open_kind(ds);
    ctx->cur_file = saved;
    if (st != OCT_OK) {
        fe_dataset_close(ds);
        return st;
    }
    if (max_samples && max_samples < ds->count)
        ds->count = (size_t)max_samples;
    *out = ds;
    return OCT_OK;
}

size_t fe_dataset_count(const fe_dataset *ds)
{
    return ds->count;
}

size_t fe_dataset_n_inputs(const fe_dataset *ds)
{
    return ds->n_inputs;
}

/* Reads sample `index` of array a into a new tensor. */
static oct_status array_sample(fe_dataset *ds, ds_array *a, size_t index,
                               const ir_value *v, ir_tensor **out)
{
    ir_tensor *t = ir_heap_tensor_new(ds->ctx, a->info.dtype, a->sample_rank,
                                  a->sample_dims);
    if (!t)
        return OCT_EINTERNAL;
    OCT_ASSERT(t->nbytes == a->sample_bytes);
    /* index < n_samples, so this product is within nbytes: no overflow. */
    uint64_t pos = a->info.data_offset + (uint64_t)index * a->sample_bytes;
    oct_status st = array_read(ds, a, pos, t->data, a->sample_bytes);
    if (st != OCT_OK) {
        ir_heap_tensor_free(ds->ctx, t);
        return st;
    }
    fe_npy_fix_data(&a->info, t->data, a->sample_elems);
    t->name = v->name;
    *out = t;
    return OCT_OK;
}

oct_status fe_dataset_get(fe_dataset *ds, size_t index, ir_tensor **inputs)
{
    oct_ctx *ctx = ds->ctx;
    for (size_t k = 0; k < ds->n_inputs; k++)
        inputs[k] = NULL;
    const char *saved = ctx->cur_file;
    ctx->cur_file = ds->path;
    oct_status st = OCT_OK;
    if (index >= ds->count) {
        st = oct_error(ctx, OCT_EUSAGE, "sample %zu requested; the data set "
                       "has %zu", index, ds->count);
    } else if (ds->kind == DS_FOLDER) {
        st = fe_dataset_folder_get(ctx, ds->sample_dirs[index], ds->inputs,
                                   ds->n_inputs, inputs);
    } else {
        for (size_t k = 0; k < ds->n_inputs && st == OCT_OK; k++)
            st = array_sample(ds, &ds->arrays[k], index, ds->inputs[k],
                              &inputs[k]);
    }
    ctx->cur_file = saved;
    if (st != OCT_OK)
        for (size_t k = 0; k < ds->n_inputs; k++) {
            ir_heap_tensor_free(ctx, inputs[k]);
            inputs[k] = NULL;
        }
    return st;
}

void fe_dataset_close(fe_dataset *ds)
{
    if (!ds)
        return;
    oct_ctx *ctx = ds->ctx;
    if (ds->arrays)
        for (size_t k = 0; k < ds->n_inputs; k++) {
            ds_array *a = &ds->arrays[k];
            if (a->zs_live)
                inflateEnd(&a->zs);
            oct_free(ctx, a->inbuf, DS_CHUNK);
        }
    oct_free(ctx, ds->skip, DS_CHUNK);
    if (ds->fd >= 0)
        close(ds->fd);
    oct_free(ctx, ds, sizeof *ds);
}
