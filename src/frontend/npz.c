/*
 * npz.c: reading tensors from files (frontend.h: fe_read_tensor,
 * fe_read_npz).
 *
 * fe_read_tensor reads one .npy or TensorProto .pb file, chosen by content.
 * fe_read_npz reads a NumPy .npz: a zip archive of .npy members, parsed here
 * without a zip library.  The central directory is the authority: the end of
 * central directory record (and, when present or needed, the zip64 locator
 * and zip64 end record) gives its place and entry count; each entry gives
 * the member's method, CRC-32, sizes (from its zip64 extra field when the
 * 32-bit fields hold 0xffffffff) and local header offset.  The local header
 * is read only to find where the data starts (its name and extra lengths;
 * numpy's savez writes zip64 extras there even for small members) and its
 * name must match.  Members are stored (method 0) or deflated (method 8,
 * zlib raw inflate); the CRC-32 of the expanded bytes must match.
 * Encrypted members, other methods, names not ending in ".npy" and duplicate
 * names are refused.  Every offset and length is untrusted: each is checked
 * against the archive size before use, the expanded size against the file
 * size limit and deflate's maximum ratio, and each member against the .npy
 * reader's own checks.
 */
#include <string.h>
#include <zlib.h>

#include "frontend/fe_formats.h"

#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP64_LOC_SIG 0x07064b50u
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP_CEN_SIG 0x02014b50u
#define ZIP_LOC_SIG 0x04034b50u
#define ZIP_EOCD_LEN 22
#define ZIP64_LOC_LEN 20
#define ZIP64_EOCD_LEN 56
#define ZIP_CEN_LEN 46
#define ZIP_LOC_LEN 30
/* Deflate cannot expand more than about 1032:1; a member claiming more is
 * corrupt (or a bomb) and is refused before any allocation. */
#define DEFLATE_MAX_RATIO 1032

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* True if [off, off + n) lies within a buffer of `len` bytes. */
static inline bool in_range(uint64_t off, uint64_t n, uint64_t len)
{
    return off <= len && n <= len - off;
}

/* Finds the end of central directory record (the last signature whose
 * comment length reaches exactly to the end of the file) and, through the
 * zip64 records if present, the central directory. */
oct_status fe_zip_find_dir(oct_ctx *ctx, const uint8_t *z, size_t len,
                           fe_zip_dir *dir)
{
    if (len < ZIP_EOCD_LEN)
        return oct_error(ctx, OCT_EINPUT,
                         "not a zip archive (%zu bytes, too short)", len);
    size_t lowest = len - ZIP_EOCD_LEN > 0xffff ? len - ZIP_EOCD_LEN - 0xffff
                                                : 0;
    size_t eocd = SIZE_MAX;
    for (size_t off = len - ZIP_EOCD_LEN + 1; off-- > lowest;) {
        if (rd32(z + off) == ZIP_EOCD_SIG &&
            off + ZIP_EOCD_LEN + rd16(z + off + 20) == len) {
            eocd = off;
            break;
        }
    }
    if (eocd == SIZE_MAX)
        return oct_error(ctx, OCT_EINPUT,
                         "not a zip archive (no end of central directory "
                         "record)");
    const uint8_t *e = z + eocd;
    uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6);
    uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10);
    dir->n_entries = n_total;
    dir->size = rd32(e + 12);
    dir->offset = rd32(e + 16);
    bool has_loc = eocd >= ZIP64_LOC_LEN &&
                   rd32(z + eocd - ZIP64_LOC_LEN) == ZIP64_LOC_SIG;
    bool needs64 = n_total == 0xffff || dir->size == 0xffffffffu ||
                   dir->offset == 0xffffffffu;
    if (has_loc) {
        const uint8_t *l = z + eocd - ZIP64_LOC_LEN;
        uint64_t rec = rd64(l + 8);
        if (rd32(l + 4) != 0 || rd32(l + 16) > 1)
            return oct_error(ctx, OCT_EUNSUPPORTED,
                             "multi-disk zip archives are not supported");
        if (!in_range(rec, ZIP64_EOCD_LEN, eocd - ZIP64_LOC_LEN) ||
            rd32(z + rec) != ZIP64_EOCD_SIG)
            return oct_error(ctx, OCT_EINPUT,
                             "zip64 end of central directory record missing "
                             "or out of bounds (offset %llu)",
                             (unsigned long long)rec);
        const uint8_t *r = z + rec;
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0 ||
            rd64(r + 24) != rd64(r + 32))
            return oct_error(ctx, OCT_EUNSUPPORTED,
                             "multi-disk zip archives are not supported");
        dir->n_entries = rd64(r + 32);
        dir->size = rd64(r + 40);
        dir->offset = rd64(r + 48);
    } else if (needs64) {
        return oct_error(ctx, OCT_EINPUT,
                         "zip archive needs zip64 records but has none");
    } else if (disk != 0 || cd_disk != 0 || n_disk != n_total) {
        return oct_error(ctx, OCT_EUNSUPPORTED,
                         "multi-disk zip archives are not supported");
    }
    if (!in_range(dir->offset, dir->size, len))
        return oct_error(ctx, OCT_EINPUT,
                         "zip central directory (offset %llu, %llu bytes) "
                         "lies outside the %zu-byte archive",
                         (unsigned long long)dir->offset,
                         (unsigned long long)dir->size, len);
    if (dir->n_entries > dir->size / ZIP_CEN_LEN)
        return oct_error(ctx, OCT_EINPUT,
                         "zip central directory claims %llu entries, more "
                         "than its %llu bytes can hold",
                         (unsigned long long)dir->n_entries,
                         (unsigned long long)dir->size);
    return OCT_OK;
}

/* Applies the zip64 extra field (id 1) of a central entry: each 64-bit
 * value is present only when its 32-bit field holds 0xffffffff. */
static bool apply_zip64(const uint8_t *x, size_t xlen, fe_zip_member *m,
                        bool u32, bool c32, bool l32)
{
    size_t pos = 0;
    while (pos + 4 <= xlen) {
        uint16_t id = rd16(x + pos), sz = rd16(x + pos + 2);
        if (sz > xlen - pos - 4)
            return false;
        if (id == 1) {
            const uint8_t *f = x + pos + 4;
            size_t need = 8u * ((unsigned)u32 + c32 + l32);
            if (sz < need)
                return false;
            if (u32) {
                m->usize = rd64(f);
                f += 8;
            }
            if (c32) {
                m->csize = rd64(f);
                f += 8;
            }
            if (l32)
                m->local = rd64(f);
            return true;
        }
        pos += 4u + sz;
    }
    return !(u32 || c32 || l32);
}

/* Parses the central entry at *pos; advances *pos. */
oct_status fe_zip_read_entry(oct_ctx *ctx, const uint8_t *z,
                             const fe_zip_dir *dir, uint64_t *pos,
                             fe_zip_member *m)
{
    uint64_t end = dir->offset + dir->size;
    if (!in_range(*pos, ZIP_CEN_LEN, end) || rd32(z + *pos) != ZIP_CEN_SIG)
        return oct_error(ctx, OCT_EINPUT,
                         "zip central directory entry at offset %llu is "
                         "missing or corrupt", (unsigned long long)*pos);
    const uint8_t *c = z + *pos;
    uint64_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    if (!in_range(*pos + ZIP_CEN_LEN, nlen + xlen + clen, end))
        return oct_error(ctx, OCT_EINPUT,
                         "zip central directory entry at offset %llu runs "
                         "past the directory", (unsigned long long)*pos);
    m->flags = rd16(c + 8);
    m->method = rd16(c + 10);
    m->crc = rd32(c + 16);
    m->csize = rd32(c + 20);
    m->usize = rd32(c + 24);
    m->local = rd32(c + 42);
    m->name_len = (size_t)nlen;
    m->name = ir_strndup(ctx, (const char *)c + ZIP_CEN_LEN, (size_t)nlen);
    if (!m->name)
        return OCT_EINTERNAL;
    if (strlen(m->name) != nlen)
        return oct_error(ctx, OCT_EINPUT, "zip member name contains a NUL "
                         "byte");
    if (!apply_zip64(c + ZIP_CEN_LEN + nlen, (size_t)xlen, m,
                     m->usize == 0xffffffffu, m->csize == 0xffffffffu,
                     m->local == 0xffffffffu))
        return oct_error(ctx, OCT_EINPUT,
                         "zip member '%s': malformed zip64 extra field",
                         m->name);
    *pos += ZIP_CEN_LEN + nlen + xlen + clen;
    return OCT_OK;
}

/* Inflates a raw deflate stream into exactly `usize` bytes. */
static oct_status inflate_member(oct_ctx *ctx, const fe_zip_member *m,
                                 const uint8_t *src, uint8_t *dst)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK)
        return oct_error(ctx, OCT_EINTERNAL, "zlib inflateInit2 failed");
    oct_status st = OCT_OK;
    uint64_t in_left = m->csize, out_left = m->usize;
    const uint8_t *in = src;
    uint8_t *out = dst;
    int zr = Z_OK;
    /* zlib counts in uInt: feed at most 1 GiB per call. */
    while (zr == Z_OK) {
        uInt in_chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        uInt out_chunk = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
        zs.next_in = (Bytef *)in;
        zs.avail_in = in_chunk;
        zs.next_out = out;
        zs.avail_out = out_chunk;
        zr = inflate(&zs, Z_NO_FLUSH);
        in += in_chunk - zs.avail_in;
        in_left -= in_chunk - zs.avail_in;
        out += out_chunk - zs.avail_out;
        out_left -= out_chunk - zs.avail_out;
        if (zr == Z_OK && zs.avail_out == out_chunk &&
            zs.avail_in == in_chunk)
            zr = Z_BUF_ERROR; /* no progress possible */
    }
    if (zr == Z_STREAM_END) {
        if (out_left != 0)
            st = oct_error(ctx, OCT_EINPUT,
                           "zip member '%s': inflates to %llu bytes, not the "
                           "declared %llu", m->name,
                           (unsigned long long)(m->usize - out_left),
                           (unsigned long long)m->usize);
    } else if (out_left == 0 && zr == Z_BUF_ERROR) {
        st = oct_error(ctx, OCT_EINPUT,
                       "zip member '%s': inflates to more than the declared "
                       "%llu bytes", m->name, (unsigned long long)m->usize);
    } else {
        st = oct_error(ctx, OCT_EINPUT,
                       "zip member '%s': corrupt deflate data (%s)", m->name,
                       zs.msg ? zs.msg
                       : in_left == 0 ? "truncated stream" : "bad stream");
    }
    inflateEnd(&zs);
    return st;
}

oct_status fe_zip_member_data(oct_ctx *ctx, const uint8_t *z,
                              const fe_zip_dir *dir, const fe_zip_member *m,
                              uint64_t *data_off_out)
{
    if (m->flags & 0x41)
        return oct_error(ctx, OCT_EUNSUPPORTED,
                         "zip member '%s' is encrypted", m->name);
    if (m->method != 0 && m->method != 8)
        return oct_error(ctx, OCT_EUNSUPPORTED,
                         "zip member '%s' uses compression method %u (only "
                         "stored and deflate are supported)", m->name,
                         m->method);
    if (m->name_len < 5 || strcmp(m->name + m->name_len - 4, ".npy") != 0)
        return oct_error(ctx, OCT_EINPUT,
                         "zip member '%s' is not an .npy array", m->name);
    /* Local header: signature, name, then the data. */
    if (!in_range(m->local, ZIP_LOC_LEN, dir->offset) ||
        rd32(z + m->local) != ZIP_LOC_SIG)
        return oct_error(ctx, OCT_EINPUT,
                         "zip member '%s': local header at offset %llu is "
                         "missing or corrupt", m->name,
                         (unsigned long long)m->local);
    const uint8_t *l = z + m->local;
    uint64_t nlen = rd16(l + 26), xlen = rd16(l + 28);
    uint64_t data_off = m->local + ZIP_LOC_LEN + nlen + xlen;
    if (nlen != m->name_len || !in_range(m->local + ZIP_LOC_LEN, nlen,
                                         dir->offset) ||
        memcmp(l + ZIP_LOC_LEN, m->name, (size_t)nlen) != 0)
        return oct_error(ctx, OCT_EINPUT,
                         "zip member '%s': local header names a different "
                         "file", m->name);
    if (!in_range(data_off, m->csize, dir->offset))
        return oct_error(ctx, OCT_EINPUT,
                         "zip member '%s': %llu bytes of data at offset %llu "
                         "run past the archive's members (%llu bytes)",
                         m->name, (unsigned long long)m->csize,
                         (unsigned long long)data_off,
                         (unsigned long long)dir->offset);
    if (m->method == 0 && m->csize != m->usize)
        return oct_error(ctx, OCT_EINPUT,
                         "zip member '%s' is stored but its sizes differ "
                         "(%llu vs %llu)", m->name,
                         (unsigned long long)m->csize,
                         (unsigned long long)m->usize);
    if (m->method == 8 && m->usize / DEFLATE_MAX_RATIO > m->csize)
        return oct_error(ctx, OCT_EINPUT,
                         "zip member '%s' claims %llu bytes from %llu "
                         "deflated bytes, beyond deflate's maximum ratio",
                         m->name, (unsigned long long)m->usize,
                         (unsigned long long)m->csize);
    *data_off_out = data_off;
    return OCT_OK;
}

/* Checks a member, expands it and decodes its .npy into *out. */
static oct_status read_member(oct_ctx *ctx, const uint8_t *z,
                              const fe_zip_dir *dir, const fe_zip_member *m,
                              const char *path, ir_tensor **out)
{
    uint64_t data_off = 0;
    oct_status check = fe_zip_member_data(ctx, z, dir, m, &data_off);
    if (check != OCT_OK)
        return check;
    if (m->usize > ctx->limits.max_file_bytes)
        return oct_error(ctx, OCT_EINPUT,
                         "zip member '%s' expands to %llu bytes, over the "
                         "limit of %llu (max_file_bytes)", m->name,
                         (unsigned long long)m->usize,
                         (unsigned long long)ctx->limits.max_file_bytes);
    const uint8_t *src = z + data_off;
    uint8_t *buf = NULL;
    size_t usize = (size_t)m->usize;
    if (m->method == 8) {
        buf = oct_malloc(ctx, usize ? usize : 1);
        if (!buf)
            return OCT_EINTERNAL;
        oct_status st = inflate_member(ctx, m, src, buf);
        if (st != OCT_OK) {
            oct_free(ctx, buf, usize ? usize : 1);
            return st;
        }
        src = buf;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t done = 0; done < usize;) {
        uInt chunk = usize - done > (1u << 30) ? (1u << 30)
                                               : (uInt)(usize - done);
        crc = crc32(crc, src + done, chunk);
        done += chunk;
    }
    oct_status st;
    if ((uint32_t)crc != m->crc) {
        st = oct_error(ctx, OCT_EINPUT,
                       "zip member '%s': CRC-32 mismatch (stored %08x, "
                       "computed %08x)", m->name, (unsigned)m->crc,
                       (unsigned)crc);
    } else {
        char *diag_name = ir_sprintf(ctx, "%s(%s)", path, m->name);
        st = diag_name ? fe_tensor_from_npy(ctx, src, usize, diag_name, out)
                       : OCT_EINTERNAL;
        if (st == OCT_OK) {
            (*out)->name = ir_strndup(ctx, m->name, m->name_len - 4);
            if (!(*out)->name)
                st = OCT_EINTERNAL;
        }
    }
    if (buf)
        oct_free(ctx, buf, usize ? usize : 1);
    return st;
}

static oct_status read_npz(oct_ctx *ctx, const uint8_t *z, size_t len,
                           const char *path, ir_tensor ***out, size_t *n_out)
{
    fe_zip_dir dir = {0, 0, 0};
    oct_status st = fe_zip_find_dir(ctx, z, len, &dir);
    if (st != OCT_OK)
        return st;
    size_t n = (size_t)dir.n_entries;
    fe_zip_member *members = ir_alloc_array(ctx, n ? n : 1, sizeof *members);
    ir_tensor **tensors = ir_alloc_array(ctx, n ? n : 1, sizeof *tensors);
    if (!members || !tensors)
        return OCT_EINTERNAL;
    uint64_t pos = dir.offset;
    for (size_t i = 0; i < n; i++) {
        st = fe_zip_read_entry(ctx, z, &dir, &pos, &members[i]);
        if (st != OCT_OK)
            return st;
        /* Quadratic, but the entry count is bounded by the directory size
         * and npz files hold few arrays. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(members[j].name, members[i].name) == 0)
                return oct_error(ctx, OCT_EINPUT,
                                 "zip archive holds '%s' twice",
                                 members[i].name);
    }
    for (size_t i = 0; i < n; i++) {
        st = read_member(ctx, z, &dir, &members[i], path, &tensors[i]);
        if (st != OCT_OK)
            return st;
    }
    *out = tensors;
    *n_out = n;
    return OCT_OK;
}

oct_status fe_read_npz(oct_ctx *ctx, const char *path, ir_tensor ***out,
                       size_t *n_out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    oct_status st = ir_read_file(ctx, path, ctx->limits.max_file_bytes, &data,
                                 &len);
    if (st != OCT_OK)
        return st;
    const char *saved = ctx->cur_file;
    ctx->cur_file = path;
    st = read_npz(ctx, data, len, path, out, n_out);
    ctx->cur_file = saved;
    oct_free(ctx, data, len ? len : 1);
    return st;
}

/* The file's name without folders and without its last extension. */
static char *file_stem(oct_ctx *ctx, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return ir_strndup(ctx, base, n);
}

oct_status fe_read_tensor(oct_ctx *ctx, const char *path, ir_tensor **out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    oct_status st = ir_read_file(ctx, path, ctx->limits.max_file_bytes, &data,
                                 &len);
    if (st != OCT_OK)
        return st;
    if (len >= 6 && memcmp(data, "\x93NUMPY", 6) == 0) {
        st = fe_tensor_from_npy(ctx, data, len, path, out);
        if (st == OCT_OK) {
            (*out)->name = file_stem(ctx, path);
            if (!(*out)->name)
                st = OCT_EINTERNAL;
        }
    } else if (len >= 4 && rd32(data) == ZIP_LOC_SIG) {
        const char *saved = ctx->cur_file;
        ctx->cur_file = path;
        st = oct_error(ctx, OCT_EINPUT,
                       "this is a zip archive (.npz?): one tensor file was "
                       "expected");
        ctx->cur_file = saved;
    } else {
        /* TensorProto; protobuf-c copies bytes fields, so the tensor does not
         * point into `data`. */
        st = fe_tensor_from_pb(ctx, data, len, path, out);
    }
    oct_free(ctx, data, len ? len : 1);
    return st;
}
