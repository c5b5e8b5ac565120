/*
 * npy.c: NumPy .npy tensors in and out (frontend.h: fe_tensor_from_npy,
 * fe_write_npy).
 *
 * Reading accepts format versions 1.0, 2.0 and 3.0: the magic "\x93NUMPY",
 * two version bytes, a little-endian header length (2 bytes in 1.0, 4 in 2.0
 * and 3.0), then a Python dict literal with exactly the keys 'descr',
 * 'fortran_order' and 'shape', padded with spaces and ended by '\n'.  Only
 * plain numeric dtypes are accepted (float16/32/64, int8..64, uint8..64,
 * bool), in either byte order; big-endian data is byte-swapped so the tensor
 * always holds the canonical little-endian layout of ir_tensor.  Fortran
 * order, object, string, complex and structured dtypes are refused with a
 * diagnostic naming the file and the descr.  Every length and count in the
 * file is untrusted: the element count is overflow-checked and bounded by
 * ctx->limits, and the data must be exactly as long as the shape says.
 *
 * Writing produces version 1.0 (2.0 when the header does not fit in 65535
 * bytes) with the header padded so the data starts at a multiple of 64
 * bytes, as numpy does.
 */
#include <stdio.h>
#include <string.h>

#include "frontend/fe_formats.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64

/* ---- header parsing --------------------------------------------------------- */

/* A cursor over the header text.  `ctx` receives diagnostics. */
typedef struct npy_lex {
    oct_ctx *ctx;
    const char *p, *end;
} npy_lex;

static void skip_ws(npy_lex *lx)
{
    while (lx->p < lx->end &&
           (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' ||
            *lx->p == '\r'))
        lx->p++;
}

/* Consumes character c (after spaces); false if it is not next. */
static bool eat(npy_lex *lx, char c)
{
    skip_ws(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return true;
    }
    return false;
}

/* Parses a Python string literal ('...' or "...", no escapes: numpy never
 * writes any in these headers) into buf (NUL-terminated).  False if it is
 * not a string or does not fit. */
static bool parse_str(npy_lex *lx, char *buf, size_t size)
{
    skip_ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return false;
    char q = *lx->p++;
    size_t n = 0;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\' || *lx->p == '\n' || n + 1 >= size)
            return false;
        buf[n++] = *lx->p++;
    }
    if (lx->p >= lx->end)
        return false;
    lx->p++;
    buf[n] = 0;
    return true;
}

/* Parses a non-negative decimal integer (an optional Python 2 'L' suffix is
 * allowed).  Overflow of int64 and negative numbers are reported through
 * *bad (a message), and return false. */
static bool parse_dim(npy_lex *lx, int64_t *out, const char **bad)
{
    skip_ws(lx);
    bool neg = false;
    if (lx->p < lx->end && *lx->p == '-') {
        neg = true;
        lx->p++;
    }
    if (lx->p >= lx->end || *lx->p < '0' || *lx->p > '9') {
        *bad = "a dimension is not an integer";
        return false;
    }
    uint64_t v = 0;
    while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
        if (ir_mul_overflow_u64(v, 10, &v) ||
            ir_add_overflow_u64(v, (uint64_t)(*lx->p - '0'), &v) ||
            v > (uint64_t)INT64_MAX) {
            *bad = "a dimension does not fit in 64 bits";
            return false;
        }
        lx->p++;
    }
    if (lx->p < lx->end && (*lx->p == 'L' || *lx->p == 'l'))
        lx->p++;
    if (neg && v != 0) {
        *bad = "a dimension is negative";
        return false;
    }
    *out = (int64_t)v;
    return true;
}

/* What the header says. */
typedef struct npy_header {
    char descr[64];
    bool fortran;
    int rank;
    int64_t dims[FE_NPY_MAX_RANK];
} npy_header;

/* Parses the dict literal.  Reports problems (OCT_EINPUT) naming the file
 * (ctx->cur_file) and what was wrong. */
static oct_status parse_header(oct_ctx *ctx, const char *text, size_t len,
                               npy_header *h)
{
    npy_lex lx = {.ctx = ctx, .p = text, .end = text + len};
    bool have_descr = false, have_fortran = false, have_shape = false;
    if (!eat(&lx, '{'))
        return oct_error(ctx, OCT_EINPUT,
                         "npy header is not a Python dict (no '{')");
    for (;;) {
        if (eat(&lx, '}'))
            break;
        char key[32];
        if (!parse_str(&lx, key, sizeof key))
            return oct_error(ctx, OCT_EINPUT,
                             "npy header: expected a quoted key at offset %zu",
                             (size_t)(lx.p - text));
        if (!eat(&lx, ':'))
            return oct_error(ctx, OCT_EINPUT,
                             "npy header: expected ':' after key '%s'", key);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            skip_ws(&lx);
            if (lx.p < lx.end && *lx.p == '[')
                return oct_error(ctx, OCT_EUNSUPPORTED,
                                 "npy: structured dtype (descr is a list) is "
                                 "not supported; only plain numeric arrays");
            if (!parse_str(&lx, h->descr, sizeof h->descr))
                return oct_error(ctx, OCT_EINPUT,
                                 "npy header: 'descr' is not a short string");
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            skip_ws(&lx);
            if ((size_t)(lx.end - lx.p) >= 4 && memcmp(lx.p, "True", 4) == 0) {
                h->fortran = true;
                lx.p += 4;
            } else if ((size_t)(lx.end - lx.p) >= 5 &&
                       memcmp(lx.p, "False", 5) == 0) {
                h->fortran = false;
                lx.p += 5;
            } else {
                return oct_error(ctx, OCT_EINPUT,
                                 "npy header: 'fortran_order' is not True or "
                                 "False");
            }
            have_fortran = true;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (!eat(&lx, '('))
                return oct_error(ctx, OCT_EINPUT,
                                 "npy header: 'shape' is not a tuple");
            h->rank = 0;
            while (!eat(&lx, ')')) {
                const char *bad = NULL;
                int64_t d;
                if (!parse_dim(&lx, &d, &bad))
                    return oct_error(ctx, OCT_EINPUT, "npy header: shape: %s",
                                     bad);
                if (h->rank >= (int)(sizeof h->dims / sizeof h->dims[0]) ||
                    (uint32_t)h->rank >= ctx->limits.max_rank)
                    return oct_error(ctx, OCT_EINPUT,
                                     "npy header: shape has more than %u "
                                     "dimensions (the rank limit)",
                                     (unsigned)ctx->limits.max_rank);
                h->dims[h->rank++] = d;
                if (!eat(&lx, ',')) {
                    if (!eat(&lx, ')'))
                        return oct_error(ctx, OCT_EINPUT,
                                         "npy header: malformed shape tuple");
                    if (h->rank == 1)
                        return oct_error(ctx, OCT_EINPUT,
                                         "npy header: one-element shape "
                                         "tuple lacks its ','");
                    break;
                }
            }
            have_shape = true;
        } else {
            return oct_error(ctx, OCT_EINPUT,
                             "npy header: unexpected or repeated key '%s'", key);
        }
        if (!eat(&lx, ',')) {
            if (!eat(&lx, '}'))
                return oct_error(ctx, OCT_EINPUT,
                                 "npy header: expected ',' or '}' at offset "
                                 "%zu", (size_t)(lx.p - text));
            break;
        }
    }
    skip_ws(&lx);
    if (lx.p != lx.end)
        return oct_error(ctx, OCT_EINPUT,
                         "npy header: unexpected text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return oct_error(ctx, OCT_EINPUT,
                         "npy header lacks %s",
                         !have_descr ? "'descr'"
                         : !have_fortran ? "'fortran_order'" : "'shape'");
    return OCT_OK;
}

/* ---- dtypes -------------------------------------------------------------- */

/* Maps a numpy type string ("<f4", ">i8", "|b1") to an ONNX dtype.  Sets
 * *swap when the data is big-endian and wider than a byte.  Returns
 * IR_DT_UNDEFINED for anything Octet does not read. */
static ir_dtype descr_dtype(const char *descr, bool *swap)
{
    static const struct {
        const char *code;
        ir_dtype dt;
    } map[] = {
        {"f2", IR_DT_FLOAT16}, {"f4", IR_DT_FLOAT}, {"f8", IR_DT_DOUBLE},
        {"i1", IR_DT_INT8},    {"i2", IR_DT_INT16}, {"i4", IR_DT_INT32},
        {"i8", IR_DT_INT64},   {"u1", IR_DT_UINT8}, {"u2", IR_DT_UINT16},
        {"u4", IR_DT_UINT32},  {"u8", IR_DT_UINT64}, {"b1", IR_DT_BOOL},
    };
    *swap = false;
    char order = descr[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return IR_DT_UNDEFINED;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(descr + 1, map[i].code) != 0)
            continue;
        unsigned bits = ir_dtype_info(map[i].dt)->bits;
        if (order == '|' && bits != 8)
            return IR_DT_UNDEFINED; /* '|' means "no byte order": 1 byte only */
        *swap = order == '>' && bits > 8;
        return map[i].dt;
    }
    return IR_DT_UNDEFINED;
}

/* numpy's type string for dtype dt, or NULL if numpy has no native type. */
static const char *dtype_descr(ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT16: return "<f2";
    case IR_DT_FLOAT: return "<f4";
    case IR_DT_DOUBLE: return "<f8";
    case IR_DT_INT8: return "|i1";
    case IR_DT_INT16: return "<i2";
    case IR_DT_INT32: return "<i4";
    case IR_DT_INT64: return "<i8";
    case IR_DT_UINT8: return "|u1";
    case IR_DT_UINT16: return "<u2";
    case IR_DT_UINT32: return "<u4";
    case IR_DT_UINT64: return "<u8";
    case IR_DT_BOOL: return "|b1";
    default: return NULL;
    }
}

static inline void swap_bytes(uint8_t *p, uint64_t n, unsigned width)
{
    for (uint64_t i = 0; i < n; i++, p += width)
        for (unsigned a = 0, b = width - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* ---- reading ------------------------------------------------------------- */

oct_status fe_npy_parse_header(oct_ctx *ctx, const uint8_t *p, size_t len,
                               fe_npy_info *out)
{
    if (len < NPY_MAGIC_LEN + 2 || memcmp(p, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return oct_error(ctx, OCT_EINPUT, "not an .npy file (bad magic)");
    unsigned major = p[6], minor = p[7];
    size_t pre;
    uint64_t hlen;
    if (major == 1) {
        pre = 10;
        if (len < pre)
            return oct_error(ctx, OCT_EINPUT, "npy file truncated in its "
                             "preamble");
        hlen = (uint64_t)p[8] | (uint64_t)p[9] << 8;
    } else if (major == 2 || major == 3) {
        pre = 12;
        if (len < pre)
            return oct_error(ctx, OCT_EINPUT, "npy file truncated in its "
                             "preamble");
        hlen = (uint64_t)p[8] | (uint64_t)p[9] << 8 | (uint64_t)p[10] << 16 |
               (uint64_t)p[11] << 24;
    } else {
        return oct_error(ctx, OCT_EUNSUPPORTED,
                         "npy format version %u.%u is not supported (1.0, "
                         "2.0 and 3.0 are)", major, minor);
    }
    if (minor != 0)
        return oct_error(ctx, OCT_EUNSUPPORTED,
                         "npy format version %u.%u is not supported (1.0, "
                         "2.0 and 3.0 are)", major, minor);
    if (hlen > len - pre)
        return oct_error(ctx, OCT_EINPUT,
                         "npy header length %llu runs past the end of the "
                         "file (%zu bytes)", (unsigned long long)hlen, len);
    const char *text = (const char *)p + pre;
    if (hlen == 0 || text[hlen - 1] != '\n')
        return oct_error(ctx, OCT_EINPUT,
                         "npy header does not end with a newline");
    if (memchr(text, 0, hlen))
        return oct_error(ctx, OCT_EINPUT, "npy header contains a NUL byte");

    npy_header h;
    memset(&h, 0, sizeof h);
    oct_status st = parse_header(ctx, text, hlen, &h);
    if (st != OCT_OK)
        return st;

    bool swap;
    ir_dtype dt = descr_dtype(h.descr, &swap);
    if (dt == IR_DT_UNDEFINED)
        return oct_error(ctx, OCT_EUNSUPPORTED,
                         "npy dtype '%s' is not supported (only numeric: "
                         "float16/32/64, int8..64, uint8..64, bool)", h.descr);
    if (h.fortran)
        return oct_error(ctx, OCT_EUNSUPPORTED,
                         "npy array is in Fortran order (fortran_order: "
                         "True); save it in C order (np.ascontiguousarray)");
    uint64_t nelems, nbytes;
    if (!ir_shape_elems(h.rank, h.dims, &nelems))
        return oct_error(ctx, OCT_EINPUT,
                         "npy shape's element count overflows 64 bits");
    if (!ir_dtype_bytes(dt, nelems, &nbytes))
        return oct_error(ctx, OCT_EINPUT,
                         "npy tensor's byte size overflows 64 bits");
    memcpy(out->descr, h.descr, sizeof out->descr);
    out->dtype = dt;
    out->swap = swap;
    out->rank = h.rank;
    memcpy(out->dims, h.dims, sizeof *out->dims * (size_t)h.rank);
    out->nelems = nelems;
    out->nbytes = nbytes;
    out->data_offset = pre + hlen;
    return OCT_OK;
}

void fe_npy_fix_data(const fe_npy_info *info, uint8_t *data, uint64_t n)
{
    if (info->swap)
        swap_bytes(data, n, ir_dtype_info(info->dtype)->bits / 8);
    if (info->dtype == IR_DT_BOOL)
        for (uint64_t i = 0; i < n; i++)
            data[i] = data[i] != 0; /* numpy reads any nonzero byte as True */
}

static oct_status from_npy(oct_ctx *ctx, const uint8_t *p, size_t len,
                           ir_tensor **out)
{
    fe_npy_info h;
    memset(&h, 0, sizeof h);
    oct_status st = fe_npy_parse_header(ctx, p, len, &h);
    if (st != OCT_OK)
        return st;
    uint64_t nelems = h.nelems, nbytes = h.nbytes;
    if (nelems > ctx->limits.max_tensor_elems)
        return oct_error(ctx, OCT_EINPUT,
                         "npy tensor has %llu elements, above the limit of "
                         "%llu", (unsigned long long)nelems,
                         (unsigned long long)ctx->limits.max_tensor_elems);
    uint64_t have = len - h.data_offset;
    if (have != nbytes)
        return oct_error(ctx, OCT_EINPUT,
                         "npy data is %llu bytes but dtype %s and the shape "
                         "need %llu (%s)", (unsigned long long)have, h.descr,
                         (unsigned long long)nbytes,
                         have < nbytes ? "file truncated" : "trailing bytes");

    ir_tensor *t = ir_alloc(ctx, sizeof *t);
    int64_t *dims = ir_alloc_array(ctx, h.rank ? (size_t)h.rank : 1,
                                   sizeof *dims);
    uint8_t *data = ir_alloc(ctx, nbytes ? (size_t)nbytes : 1);
    const char *name = ir_strdup(ctx, "");
    if (!t || !dims || !data || !name)
        return OCT_EINTERNAL;
    memcpy(dims, h.dims, sizeof *dims * (size_t)h.rank);
    memcpy(data, p + h.data_offset, (size_t)nbytes);
    fe_npy_fix_data(&h, data, nelems);
    t->name = name;
    t->dtype = h.dtype;
    t->rank = h.rank;
    t->dims = dims;
    t->data = data;
    t->nbytes = nbytes;
    t->nelems = nelems;
    t->storage = IR_STORE_RAW;
    *out = t;
    return OCT_OK;
}

oct_status fe_tensor_from_npy(oct_ctx *ctx, const void *data, size_t len,
                              const char *name_for_diag, ir_tensor **out)
{
    const char *saved = ctx->cur_file;
    if (name_for_diag)
        ctx->cur_file = name_for_diag;
    oct_status st = from_npy(ctx, data, len, out);
    ctx->cur_file = saved;
    return st;
}

/* ---- writing ------------------------------------------------------------- */

/* Appends "(d0, d1, ...)" the way Python prints a tuple of ints. */
static size_t shape_repr(char *buf, size_t size, const ir_tensor *t)
{
    size_t n = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < t->rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "",
                              (long long)t->dims[i]);
    if (n < size)
        n += (size_t)snprintf(buf + n, size - n, t->rank == 1 ? ",)" : ")");
    return n;
}

oct_status fe_write_npy(oct_ctx *ctx, const ir_tensor *t, const char *path)
{
    const char *descr = dtype_descr(t->dtype);
    if (!descr)
        return oct_error(ctx, OCT_EUNSUPPORTED,
                         "tensor '%s' has dtype %s, which numpy cannot store "
                         "natively in .npy; write it as TensorProto (.pb)",
                         t->name ? t->name : "", ir_dtype_name(t->dtype));
    uint64_t nelems, nbytes;
    if (t->rank < 0 || !ir_shape_elems(t->rank, t->dims, &nelems) ||
        nelems != t->nelems || !ir_dtype_bytes(t->dtype, nelems, &nbytes) ||
        nbytes != t->nbytes)
        return oct_error(ctx, OCT_EINPUT,
                         "tensor '%s': shape, element count and byte size "
                         "disagree", t->name ? t->name : "");
    /* 64 dims of at most 20 digits each fit easily. */
    char shape[64 * 24 + 8];
    if (shape_repr(shape, sizeof shape, t) >= sizeof shape)
        return oct_error(ctx, OCT_EINPUT, "tensor '%s': rank too large for "
                         "an .npy header", t->name ? t->name : "");
    char dict[sizeof shape + 80];
    int dlen = snprintf(dict, sizeof dict,
                        "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                        descr, shape);
    /* Header = dict + spaces + '\n', padded so preamble + header is a
     * multiple of 64; version 2.0 only when the 1.0 length field (16 bits)
     * cannot hold it (never for rank <= 64, but kept for completeness). */
    size_t pre = 10;
    size_t total = ((pre + (size_t)dlen + 1 + NPY_ALIGN - 1) / NPY_ALIGN) *
                   NPY_ALIGN;
    if (total - pre > 0xffff) {
        pre = 12;
        total = ((pre + (size_t)dlen + 1 + NPY_ALIGN - 1) / NPY_ALIGN) *
                NPY_ALIGN;
    }
    size_t hlen = total - pre;
    uint64_t file_len;
    if (ir_add_overflow_u64(total, nbytes, &file_len) || file_len > SIZE_MAX)
        return oct_error(ctx, OCT_EINPUT, "tensor too large to write");
    uint8_t *buf = oct_malloc(ctx, (size_t)file_len);
    if (!buf)
        return OCT_EINTERNAL;
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = pre == 10 ? 1 : 2;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + pre, dict, (size_t)dlen);
    memset(buf + pre + dlen, ' ', hlen - (size_t)dlen - 1);
    buf[total - 1] = '\n';
    if (nbytes)
        memcpy(buf + total, t->data, (size_t)nbytes);
    oct_status st = ir_write_atomic(ctx, path, buf, (size_t)file_len);
    oct_free(ctx, buf, (size_t)file_len);
    return st;
}
