/*
 * parse.c: reads the text form of a model (print.c, docs/inspect.md) back
 * into the IR, so golden tests can write a pass's input as text and
 * `octet opt` can run passes on it.  print(parse(text)) == text for any
 * text ir_print_text_opts prints with `full`.
 *
 * The text is untrusted: the parser never reads past `len` (the buffer
 * need not be NUL-terminated), never recurses, counts the node lines
 * against max_nodes before building anything, and checks every rank,
 * element count and initializer byte total against ctx's limits before it
 * allocates.  Each error is one diagnostic "FILE:LINE:COL: error: ..." and
 * OCT_EINPUT; parsing stops at the first one.
 *
 * Beyond what the printer writes, it accepts blank lines, lines starting
 * with '#' (comments, for hand-written golden files), spaces and tabs
 * between tokens, and a TENSOR without its #H; a #H that is present must be
 * the hash of the values.
 *
 * Types on node lines: a value declared by an input, output or value_info
 * line takes its type from there; any other value takes the type printed
 * where it first appears on a node line, except an initializer whose type
 * printed is its tensor's own dtype and shape (the printer shows that for
 * an initializer without a declared type).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

enum { TOKEN_MAX = 96, RANK_CAP = 64 };

typedef struct parser {
    oct_ctx *ctx;
    const char *file;
    const char *text, *end;
    const char *line, *eol; /* the current line, without its '\n' */
    const char *c;          /* cursor in the line */
    size_t lineno;
    ir_model *m;
    ir_graph *g;
    uint64_t init_bytes;
} parser;

#define FNV_SEED 1469598103934665603ull
static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Records an error at `at` (a pointer into the current line) and returns
 * OCT_EINPUT. */
static oct_status perr(parser *P, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static oct_status perr(parser *P, const char *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at < P->line || at > P->eol)
        at = P->line;
    const char *saved = P->ctx->cur_file;
    const char *where = ir_sprintf(P->ctx, "%s:%zu:%zu", P->file, P->lineno,
                                   (size_t)(at - P->line) + 1);
    P->ctx->cur_file = where ? where : P->file;
    oct_error(P->ctx, OCT_EINPUT, "%s", msg);
    P->ctx->cur_file = saved;
    return OCT_EINPUT;
}

/* Allocation failures already recorded a diagnostic. */
#define OOM OCT_EINTERNAL

/* ---- lexing within a line ------------------------------------------------ */

static void skip_ws(parser *P)
{
    while (P->c < P->eol && (*P->c == ' ' || *P->c == '\t' || *P->c == '\r'))
        P->c++;
}

static bool at_end(parser *P)
{
    skip_ws(P);
    return P->c >= P->eol;
}

static bool peek(parser *P, char ch)
{
    skip_ws(P);
    return P->c < P->eol && *P->c == ch;
}

/* Consumes `ch` (after spaces) if it is next. */
static bool accept(parser *P, char ch)
{
    if (!peek(P, ch))
        return false;
    P->c++;
    return true;
}

static oct_status expect(parser *P, char ch)
{
    if (accept(P, ch))
        return OCT_OK;
    return perr(P, P->c, "expected '%c'", ch);
}

/* Consumes the word `w` (after spaces) if it is next. */
static bool accept_word(parser *P, const char *w)
{
    skip_ws(P);
    size_t n = strlen(w);
    if ((size_t)(P->eol - P->c) < n || memcmp(P->c, w, n))
        return false;
    P->c += n;
    return true;
}

static bool is_bare_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == ':' ||
           ch == '/' || ch == '-';
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A quoted string S into the arena (NUL-terminated; *len excludes it).
 * With c_string, an embedded NUL byte is an error. */
static oct_status parse_str(parser *P, bool c_string, char **out, size_t *len)
{
    skip_ws(P);
    const char *start = P->c;
    if (P->c >= P->eol || *P->c != '"')
        return perr(P, P->c, "expected a quoted string");
    P->c++;
    /* the decoded string is never longer than the quoted text */
    size_t cap = 0;
    for (const char *q = P->c; q < P->eol && *q != '"'; q++, cap++)
        if (*q == '\\' && q + 1 < P->eol)
            q++;
    char *buf = ir_alloc(P->ctx, cap + 1);
    if (!buf)
        return OOM;
    size_t n = 0;
    for (;;) {
        if (P->c >= P->eol)
            return perr(P, start, "unterminated string");
        char ch = *P->c++;
        if (ch == '"')
            break;
        if (ch != '\\') {
            buf[n++] = ch;
            continue;
        }
        if (P->c >= P->eol)
            return perr(P, start, "unterminated string");
        char e = *P->c++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case 'n': buf[n++] = '\n'; break;
        case 't': buf[n++] = '\t'; break;
        case 'r': buf[n++] = '\r'; break;
        case 'x': {
            int hi = P->c < P->eol ? hex_digit(P->c[0]) : -1;
            int lo = P->c + 1 < P->eol ? hex_digit(P->c[1]) : -1;
            if (hi < 0 || lo < 0)
                return perr(P, P->c - 2, "\\x needs two hex digits");
            P->c += 2;
            buf[n++] = (char)(hi * 16 + lo);
            break;
        }
        default:
            return perr(P, P->c - 2, "unknown escape '\\%c'", e);
        }
        if (c_string && n && buf[n - 1] == '\0')
            return perr(P, P->c - 1, "a NUL byte cannot be part of a name");
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return OCT_OK;
}

/* NAME: bare (greedy, a trailing ':' left for the caller) or quoted. */
static oct_status parse_name(parser *P, char **out)
{
    skip_ws(P);
    if (peek(P, '"'))
        return parse_str(P, true, out, NULL);
    const char *start = P->c;
    while (P->c < P->eol && is_bare_char(*P->c))
        P->c++;
    if (P->c > start + 1 && P->c[-1] == ':')
        P->c--;
    if (P->c == start)
        return perr(P, start, "expected a name");
    *out = ir_strndup(P->ctx, start, (size_t)(P->c - start));
    return *out ? OCT_OK : OOM;
}

/* A number-like token ([A-Za-z0-9.+-]) copied into buf. */
static oct_status number_token(parser *P, char *buf, const char **at)
{
    skip_ws(P);
    *at = P->c;
    size_t n = 0;
    while (P->c < P->eol && (isalnum((unsigned char)*P->c) || *P->c == '.' ||
                             *P->c == '+' || *P->c == '-')) {
        if (n + 1 >= TOKEN_MAX)
            return perr(P, *at, "number too long");
        buf[n++] = *P->c++;
    }
    buf[n] = '\0';
    if (!n)
        return perr(P, *at, "expected a number");
    return OCT_OK;
}

static oct_status parse_i64(parser *P, int64_t *out)
{
    char buf[TOKEN_MAX];
    const char *at;
    oct_status st = number_token(P, buf, &at);
    if (st)
        return st;
    char *endp;
    errno = 0;
    long long v = strtoll(buf, &endp, 10);
    if (errno || *endp || endp == buf)
        return perr(P, at, "'%s' is not a 64-bit integer", buf);
    *out = v;
    return OCT_OK;
}

/* A FLOAT as %.9g / %.17g prints it: numbers, nan, -nan, inf, -inf. */
static oct_status parse_double(parser *P, const char *buf, const char *at,
                               double *out)
{
    const char *s = buf;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    if (!strcmp(s, "nan")) {
        *out = neg ? -NAN : NAN;
        return OCT_OK;
    }
    if (!strcmp(s, "inf")) {
        *out = neg ? -INFINITY : INFINITY;
        return OCT_OK;
    }
    char *endp;
    errno = 0;
    double v = strtod(buf, &endp);
    if (*endp || endp == buf || !(isdigit((unsigned char)*s) || *s == '.'))
        return perr(P, at, "'%s' is not a number", buf);
    *out = v;
    return OCT_OK;
}

static bool looks_float(const char *tok)
{
    return strpbrk(tok, ".eEnNiI") != NULL;
}

/* ---- types, tensors ------------------------------------------------------ */

static oct_status parse_dtype(parser *P, ir_dtype *out)
{
    skip_ws(P);
    const char *start = P->c;
    char buf[16];
    size_t n = 0;
    while (P->c < P->eol && n + 1 < sizeof buf &&
           (isalnum((unsigned char)*P->c) || *P->c == '?'))
        buf[n++] = *P->c++;
    buf[n] = '\0';
    for (int dt = 0; dt < IR_DT_COUNT; dt++) {
        const char *short_name = ir_dtype_short(dt);
        if ((dt == IR_DT_UNDEFINED || ir_dtype_valid(dt)) && short_name &&
            !strcmp(short_name, buf)) {
            *out = (ir_dtype)dt;
            return OCT_OK;
        }
    }
    return perr(P, start, "unknown element type '%s'", buf);
}

static uint32_t rank_limit(const parser *P)
{
    uint32_t lim = P->ctx->limits.max_rank;
    return lim < RANK_CAP ? lim : RANK_CAP;
}

/* TYPE: DT[DIMS][@S] or DT[*][@S]; opaque <type ...> is refused. */
static oct_status parse_type(parser *P, ir_type *t)
{
    oct_status st;
    memset(t, 0, sizeof *t);
    if (peek(P, '<'))
        return perr(P, P->c, "an opaque type (printed as a size and hash) "
                             "cannot be read back");
    if ((st = parse_dtype(P, &t->dtype)) || (st = expect(P, '[')))
        return st;
    t->has_elem_type = t->dtype != IR_DT_UNDEFINED;
    if (accept(P, '*')) {
        t->rank = -1;
        if ((st = expect(P, ']')))
            return st;
    } else {
        ir_dim dims[RANK_CAP];
        int rank = 0;
        if (!accept(P, ']')) {
            do {
                const char *at = (skip_ws(P), P->c);
                if ((uint32_t)rank >= rank_limit(P))
                    return perr(P, at, "rank above the limit of %u (max_rank)",
                                rank_limit(P));
                ir_dim *d = &dims[rank++];
                memset(d, 0, sizeof *d);
                d->value = -1;
                if (accept(P, '?')) {
                } else if (P->c < P->eol && isdigit((unsigned char)*P->c)) {
                    if ((st = parse_i64(P, &d->value)))
                        return st;
                } else {
                    char *param;
                    if ((st = parse_name(P, &param)))
                        return st;
                    d->param = param;
                }
                if (accept(P, '@')) {
                    char *den;
                    if ((st = parse_str(P, true, &den, NULL)))
                        return st;
                    d->denotation = den;
                }
            } while (accept(P, ','));
            if ((st = expect(P, ']')))
                return st;
        }
        t->rank = rank;
        if (rank) {
            t->dims = ir_alloc_array(P->ctx, (size_t)rank, sizeof *t->dims);
            if (!t->dims)
                return OOM;
            memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
        }
    }
    if (accept(P, '@')) {
        char *den;
        if ((st = parse_str(P, true, &den, NULL)))
            return st;
        t->denotation = den;
    }
    return OCT_OK;
}

static void store_le(uint8_t *p, uint64_t x, unsigned bytes)
{
    for (unsigned b = 0; b < bytes; b++)
        p[b] = (uint8_t)(x >> (8 * b));
}

/* One element of a value list into t->data at index i. */
static oct_status parse_elem(parser *P, ir_tensor *t, uint64_t i)
{
    oct_status st;
    if (t->dtype == IR_DT_STRING) {
        char *s;
        size_t len;
        if ((st = parse_str(P, false, &s, &len)))
            return st;
        ((ir_blob *)t->data)[i] = (ir_blob){(uint8_t *)s, len};
        return OCT_OK;
    }
    char buf[TOKEN_MAX];
    const char *at;
    if ((st = number_token(P, buf, &at)))
        return st;
    uint8_t *p = t->data;
    unsigned bytes = ir_dtype_info(t->dtype)->bits / 8;
    if (t->dtype == IR_DT_FLOAT || t->dtype == IR_DT_DOUBLE) {
        double d;
        if ((st = parse_double(P, buf, at, &d)))
            return st;
        if (t->dtype == IR_DT_FLOAT) {
            float f = isnan(d) ? (float)d : strtof(buf, NULL);
            uint32_t u;
            memcpy(&u, &f, sizeof u);
            store_le(p + i * 4, u, 4);
        } else {
            uint64_t u;
            memcpy(&u, &d, sizeof u);
            store_le(p + i * 8, u, 8);
        }
        return OCT_OK;
    }
    const ir_dtype_traits *tr = ir_dtype_info(t->dtype);
    char *endp;
    errno = 0;
    if (tr->kind == IR_DK_SINT) {
        long long v = strtoll(buf, &endp, 10);
        int64_t lo = bytes == 8 ? INT64_MIN : -(INT64_C(1) << (8 * bytes - 1));
        int64_t hi = bytes == 8 ? INT64_MAX : (INT64_C(1) << (8 * bytes - 1)) - 1;
        if (errno || *endp || v < lo || v > hi)
            return perr(P, at, "'%s' is not a %s value", buf,
                        ir_dtype_short(t->dtype));
        store_le(p + i * bytes, (uint64_t)v, bytes);
    } else {
        if (buf[0] == '-')
            return perr(P, at, "'%s' is not a %s value", buf,
                        ir_dtype_short(t->dtype));
        unsigned long long v = strtoull(buf, &endp, 10);
        uint64_t hi = t->dtype == IR_DT_BOOL ? 1
                      : bytes == 8           ? UINT64_MAX
                                             : (UINT64_C(1) << (8 * bytes)) - 1;
        if (errno || *endp || v > hi)
            return perr(P, at, "'%s' is not a %s value", buf,
                        ir_dtype_short(t->dtype));
        store_le(p + i * bytes, v, bytes);
    }
    return OCT_OK;
}

static bool list_dtype(ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT: case IR_DT_DOUBLE: case IR_DT_BOOL: case IR_DT_STRING:
    case IR_DT_UINT8: case IR_DT_UINT16: case IR_DT_UINT32: case IR_DT_UINT64:
    case IR_DT_INT8: case IR_DT_INT16: case IR_DT_INT32: case IR_DT_INT64:
        return true;
    default:
        return false;
    }
}

static uint64_t tensor_hash(const ir_tensor *t)
{
    if (t->dtype != IR_DT_STRING)
        return fnv1a(FNV_SEED, t->data, t->nbytes);
    uint64_t h = FNV_SEED;
    const ir_blob *s = t->data;
    for (uint64_t i = 0; i < t->nelems; i++) {
        uint64_t len = s[i].len;
        h = fnv1a(h, &len, sizeof len);
        h = fnv1a(h, s[i].data, s[i].len);
    }
    return h;
}

/* TENSOR: DT[DIMS] raw|typed [#H] [= [v, ...] | = x"HEX"].  `what` names
 * the tensor in diagnostics. */
static oct_status parse_tensor_body(parser *P, const char *what, ir_tensor **out)
{
    oct_status st;
    const char *start = (skip_ws(P), P->c);
    ir_dtype dt;
    if ((st = parse_dtype(P, &dt)) || (st = expect(P, '[')))
        return st;
    if (dt == IR_DT_UNDEFINED)
        return perr(P, start, "tensor '%s' has no element type", what);
    int64_t dims[RANK_CAP];
    int rank = 0;
    if (!accept(P, ']')) {
        do {
            if ((uint32_t)rank >= rank_limit(P))
                return perr(P, P->c, "rank above the limit of %u (max_rank)",
                            rank_limit(P));
            const char *at = (skip_ws(P), P->c);
            if ((st = parse_i64(P, &dims[rank])))
                return st;
            if (dims[rank] < 0)
                return perr(P, at, "negative dimension");
            rank++;
        } while (accept(P, ','));
        if ((st = expect(P, ']')))
            return st;
    }
    uint64_t nelems, nbytes;
    if (!ir_shape_elems(rank, dims, &nelems) ||
        nelems > P->ctx->limits.max_tensor_elems)
        return perr(P, start, "tensor '%s' has more than %" PRIu64
                    " elements (max_tensor_elems)", what,
                    P->ctx->limits.max_tensor_elems);
    if (!ir_dtype_bytes(dt, nelems, &nbytes) ||
        ir_add_overflow_u64(P->init_bytes, nbytes, &P->init_bytes) ||
        P->init_bytes > P->ctx->limits.max_total_init_bytes)
        return perr(P, start, "tensors over %" PRIu64
                    " bytes in all (max_total_init_bytes)",
                    P->ctx->limits.max_total_init_bytes);
    ir_tensor *t = ir_tensor_new(P->ctx, dt, rank, dims);
    if (!t)
        return OOM;
    if (accept_word(P, "raw"))
        t->storage = IR_STORE_RAW;
    else if (accept_word(P, "typed"))
        t->storage = IR_STORE_TYPED;
    else
        return perr(P, P->c, "expected 'raw' or 'typed'");
    bool have_hash = false;
    uint64_t hash = 0;
    const char *hash_at = (skip_ws(P), P->c);
    if (accept(P, '#')) {
        for (int i = 0; i < 16; i++) {
            int d = P->c < P->eol ? hex_digit(*P->c) : -1;
            if (d < 0)
                return perr(P, hash_at, "a hash is '#' and 16 hex digits");
            hash = hash * 16 + (uint64_t)d;
            P->c++;
        }
        have_hash = true;
    }
    if (!accept(P, '=')) {
        if (nelems)
            return perr(P, start, "tensor '%s' is printed as a hash only: its "
                        "values are not in the text (print it in full: "
                        "octet inspect --full)", what);
    } else if (accept_word(P, "x\"")) {
        if (dt == IR_DT_STRING)
            return perr(P, P->c, "string tensor values are a list of strings");
        uint8_t *p = t->data;
        uint64_t n = 0;
        while (P->c < P->eol && *P->c != '"') {
            int hi = hex_digit(P->c[0]);
            int lo = P->c + 1 < P->eol ? hex_digit(P->c[1]) : -1;
            if (hi < 0 || lo < 0)
                return perr(P, P->c, "expected two hex digits");
            if (n == nbytes)
                return perr(P, P->c, "more than the %" PRIu64
                            " bytes tensor '%s' holds", nbytes, what);
            p[n++] = (uint8_t)(hi * 16 + lo);
            P->c += 2;
        }
        if ((st = expect(P, '"')))
            return st;
        if (n != nbytes)
            return perr(P, start, "tensor '%s' holds %" PRIu64 " bytes, the "
                        "text gives %" PRIu64, what, nbytes, n);
    } else {
        if (!list_dtype(dt))
            return perr(P, P->c, "%s values are written as x\"HEX\"",
                        ir_dtype_short(dt));
        if ((st = expect(P, '[')))
            return st;
        uint64_t n = 0;
        if (!accept(P, ']')) {
            do {
                if (n == nelems)
                    return perr(P, P->c, "more than the %" PRIu64
                                " values tensor '%s' holds", nelems, what);
                if ((st = parse_elem(P, t, n++)))
                    return st;
            } while (accept(P, ','));
            if ((st = expect(P, ']')))
                return st;
        }
        if (n != nelems)
            return perr(P, start, "tensor '%s' holds %" PRIu64 " values, the "
                        "text gives %" PRIu64, what, nelems, n);
    }
    if (have_hash && nelems && tensor_hash(t) != hash)
        return perr(P, hash_at, "the values of tensor '%s' do not match its "
                    "hash", what);
    *out = t;
    return OCT_OK;
}

/* " doc=D" and " unknown=U" trailing an entity (either may be absent). */
static oct_status parse_trailer(parser *P, const char **doc)
{
    oct_status st;
    if (accept_word(P, "doc=")) {
        if (peek(P, '<'))
            return perr(P, P->c, "a long doc string printed as a size and "
                        "hash cannot be read back (print it in full)");
        char *s;
        if ((st = parse_str(P, true, &s, NULL)))
            return st;
        if (doc)
            *doc = s;
        else
            return perr(P, P->c, "no doc string expected here");
    }
    skip_ws(P);
    if (accept_word(P, "unknown="))
        return perr(P, P->c, "unknown protobuf fields (printed as a count and "
                    "hash) cannot be read back");
    return OCT_OK;
}

/* tensor(NAME: TENSOR [doc] [unknown]) or tensor(TENSOR ...) or tensor() */
static oct_status parse_tensor_attr(parser *P, ir_tensor **out)
{
    oct_status st;
    if (!accept_word(P, "tensor("))
        return perr(P, P->c, "expected tensor(...)");
    if (accept(P, ')')) {
        *out = NULL;
        return OCT_OK;
    }
    const char *save = P->c;
    char *name = NULL;
    if ((st = parse_name(P, &name)))
        return st;
    if (!accept(P, ':')) { /* no name: that was the dtype */
        P->c = save;
        name = "";
    }
    ir_tensor *t;
    if ((st = parse_tensor_body(P, *name ? name : "<attribute>", &t)))
        return st;
    t->name = name;
    if ((st = parse_trailer(P, &t->doc)) || (st = expect(P, ')')))
        return st;
    *out = t;
    return OCT_OK;
}

/* ---- attributes and nodes ------------------------------------------------ */

/* Makes room for one more element of `size` bytes in an arena array. */
static oct_status grow(parser *P, void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return OCT_OK;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *a = ir_alloc_array(P->ctx, ncap, size);
    if (!a)
        return OOM;
    if (n)
        memcpy(a, *arr, n * size);
    *arr = a;
    *cap = ncap;
    return OCT_OK;
}

static const struct { const char *word; ir_attr_type type; } empty_lists[] = {
    {"ints[]", IR_ATTR_INTS}, {"floats[]", IR_ATTR_FLOATS},
    {"strings[]", IR_ATTR_STRINGS}, {"tensors[]", IR_ATTR_TENSORS},
    {"graphs[]", IR_ATTR_GRAPHS}, {"sparse_tensors[]", IR_ATTR_SPARSE_TENSORS},
    {"type_protos[]", IR_ATTR_TYPE_PROTOS},
};

/* A list attribute value after its '['. */
static oct_status parse_attr_list(parser *P, ir_attr *a)
{
    oct_status st;
    size_t cap = 0;
    skip_ws(P);
    if (peek(P, '<') || peek(P, '?'))
        return perr(P, P->c, "an opaque or inconsistent attribute list cannot "
                    "be read back");
    if (peek(P, '"')) {
        a->type = IR_ATTR_STRINGS;
        do {
            if ((st = grow(P, (void **)&a->strings, &cap, a->n, sizeof *a->strings)))
                return st;
            char *s;
            size_t len;
            if ((st = parse_str(P, false, &s, &len)))
                return st;
            a->strings[a->n++] = (ir_blob){(uint8_t *)s, len};
        } while (accept(P, ','));
        return expect(P, ']');
    }
    if (accept_word(P, "tensor(")) {
        a->type = IR_ATTR_TENSORS;
        P->c -= strlen("tensor(");
        do {
            if ((st = grow(P, (void **)&a->tensors, &cap, a->n, sizeof *a->tensors)))
                return st;
            if ((st = parse_tensor_attr(P, &a->tensors[a->n])))
                return st;
            a->n++;
        } while (accept(P, ','));
        return expect(P, ']');
    }
    /* numbers: ints unless one of them reads as a float */
    const char *start = P->c;
    bool floats = false;
    size_t count = 0;
    do {
        char buf[TOKEN_MAX];
        const char *at;
        if ((st = number_token(P, buf, &at)))
            return st;
        floats |= looks_float(buf);
        count++;
    } while (accept(P, ','));
    if ((st = expect(P, ']')))
        return st;
    P->c = start;
    a->type = floats ? IR_ATTR_FLOATS : IR_ATTR_INTS;
    if (floats)
        a->floats = ir_alloc_array(P->ctx, count, sizeof *a->floats);
    else
        a->ints = ir_alloc_array(P->ctx, count, sizeof *a->ints);
    if (floats ? !a->floats : !a->ints)
        return OOM;
    for (size_t i = 0; i < count; i++) {
        if (i)
            accept(P, ',');
        char buf[TOKEN_MAX];
        const char *at;
        if ((st = number_token(P, buf, &at)))
            return st;
        if (floats) {
            double d;
            if ((st = parse_double(P, buf, at, &d)))
                return st;
            a->floats[i] = isnan(d) ? (float)d : strtof(buf, NULL);
        } else {
            P->c = at;
            if ((st = parse_i64(P, &a->ints[i])))
                return st;
        }
    }
    a->n = count;
    return expect(P, ']');
}

/* name=VALUE [doc=D] */
static oct_status parse_attr(parser *P, ir_attr *a)
{
    oct_status st;
    char *name;
    memset(a, 0, sizeof *a);
    a->ref_attr_name = a->doc = "";
    if ((st = parse_name(P, &name)) || (st = expect(P, '=')))
        return st;
    a->name = name;
    skip_ws(P);
    if (accept(P, '@')) {
        char *ref;
        if ((st = parse_name(P, &ref)))
            return st;
        a->ref_attr_name = ref;
    } else if (peek(P, '"')) {
        char *s;
        size_t len;
        if ((st = parse_str(P, false, &s, &len)))
            return st;
        a->type = IR_ATTR_STRING;
        a->s = (ir_blob){(uint8_t *)s, len};
    } else if (peek(P, '<')) {
        return perr(P, P->c, "attribute '%s' is opaque (a subgraph, sparse "
                    "tensor or type printed as a size and hash) and cannot be "
                    "read back", name);
    } else if (accept(P, '[')) {
        if ((st = parse_attr_list(P, a)))
            return st;
    } else if (P->c + 7 <= P->eol && !memcmp(P->c, "tensor(", 7)) {
        a->type = IR_ATTR_TENSOR;
        if ((st = parse_tensor_attr(P, &a->t)))
            return st;
    } else {
        for (size_t i = 0; i < sizeof empty_lists / sizeof empty_lists[0]; i++)
            if (accept_word(P, empty_lists[i].word)) {
                a->type = empty_lists[i].type;
                return parse_trailer(P, &a->doc);
            }
        char buf[TOKEN_MAX];
        const char *at;
        if ((st = number_token(P, buf, &at)))
            return st;
        if (looks_float(buf)) {
            double d;
            if ((st = parse_double(P, buf, at, &d)))
                return st;
            a->type = IR_ATTR_FLOAT;
            a->f = isnan(d) ? (float)d : strtof(buf, NULL);
        } else {
            P->c = at;
            a->type = IR_ATTR_INT;
            if ((st = parse_i64(P, &a->i)))
                return st;
        }
    }
    return parse_trailer(P, &a->doc);
}

/* The type printed for a value on a node line, applied as the file
 * comment says. */
static void node_line_type(ir_value *v, const ir_type *t, bool typed)
{
    if (!typed || (v->flags & (IR_VAL_INPUT | IR_VAL_OUTPUT | IR_VAL_INFO)) ||
        v->has_type)
        return;
    if (v->init && !t->opaque.len && t->rank == v->init->rank &&
        t->dtype == v->init->dtype && !t->denotation) {
        bool same = true;
        for (int i = 0; i < t->rank; i++)
            same &= t->dims[i].value == v->init->dims[i] && !t->dims[i].denotation;
        if (same)
            return;
    }
    v->has_type = true;
    v->type = *t;
}

/* (NAME[: TYPE], ...) of a node line into a new arena array. */
static oct_status parse_value_list(parser *P, ir_value ***out, int *n_out)
{
    oct_status st;
    size_t n = 0, cap = 0;
    ir_value **list = NULL;
    if ((st = expect(P, '(')))
        return st;
    if (!accept(P, ')')) {
        do {
            if (n >= INT32_MAX / 2)
                return perr(P, P->c, "too many values");
            if ((st = grow(P, (void **)&list, &cap, n, sizeof *list)))
                return st;
            char *name;
            if ((st = parse_name(P, &name)))
                return st;
            ir_value *v = NULL;
            if (*name && !(v = ir_graph_value(P->ctx, P->g, name)))
                return OOM;
            ir_type t;
            bool typed = accept(P, ':');
            if (typed && (st = parse_type(P, &t)))
                return st;
            if (typed && !v)
                return perr(P, P->c, "an omitted value \"\" has no type");
            if (v)
                node_line_type(v, &t, typed);
            list[n++] = v;
        } while (accept(P, ','));
        if ((st = expect(P, ')')))
            return st;
    }
    *out = list;
    *n_out = (int)n;
    return OCT_OK;
}

/* node OP[@DOMAIN] NAME (IN, ...) -> (OUT, ...) [{ATTR, ...}] [doc=D] */
static oct_status parse_node(parser *P)
{
    oct_status st;
    char *op, *domain = "", *name;
    if ((st = parse_name(P, &op)))
        return st;
    if (P->c < P->eol && *P->c == '@') {
        P->c++;
        if ((st = parse_name(P, &domain)))
            return st;
    }
    if ((st = parse_name(P, &name)))
        return st;
    ir_value **in, **out;
    int n_in, n_out;
    if ((st = parse_value_list(P, &in, &n_in)))
        return st;
    if (!accept_word(P, "->"))
        return perr(P, P->c, "expected '->'");
    const char *out_at = (skip_ws(P), P->c);
    if ((st = parse_value_list(P, &out, &n_out)))
        return st;
    ir_node *n = ir_graph_add_node(P->ctx, P->g, op, domain, name, n_in, n_out);
    if (!n)
        return OOM;
    if (n_in)
        memcpy(n->in, in, (size_t)n_in * sizeof *in);
    for (int i = 0; i < n_out; i++) {
        if (!out[i])
            continue;
        if (out[i]->producer || out[i]->init || (out[i]->flags & IR_VAL_INPUT))
            return perr(P, out_at, "value '%s' is defined twice", out[i]->name);
        ir_node_set_output(n, i, out[i]);
    }
    if (accept(P, '{')) {
        size_t cap = 0, n_attr = 0;
        ir_attr *attrs = NULL;
        do {
            if (n_attr >= INT32_MAX / 2)
                return perr(P, P->c, "too many attributes");
            if ((st = grow(P, (void **)&attrs, &cap, n_attr, sizeof *attrs)) ||
                (st = parse_attr(P, &attrs[n_attr])))
                return st;
            n_attr++;
        } while (accept(P, ','));
        if ((st = expect(P, '}')))
            return st;
        n->attrs = attrs;
        n->n_attr = (int)n_attr;
    }
    return parse_trailer(P, &n->doc);
}

/* ---- lines --------------------------------------------------------------- */

/* input|output|value_info NAME[: TYPE] [doc=D] */
static oct_status parse_value_line(parser *P, unsigned flag, ir_value **list,
                                   size_t *n)
{
    oct_status st;
    char *name;
    if ((st = parse_name(P, &name)))
        return st;
    ir_value *v = ir_graph_value(P->ctx, P->g, name);
    if (!v)
        return OOM;
    if (accept(P, ':')) {
        ir_type t;
        if ((st = parse_type(P, &t)))
            return st;
        v->has_type = true;
        v->type = t;
    }
    v->flags |= flag;
    list[(*n)++] = v;
    const char *doc = v->doc;
    if ((st = parse_trailer(P, &doc)))
        return st;
    v->doc = doc;
    return OCT_OK;
}

/* init NAME: TENSOR [doc=D] */
static oct_status parse_init(parser *P)
{
    oct_status st;
    char *name;
    const char *at = (skip_ws(P), P->c);
    if ((st = parse_name(P, &name)))
        return st;
    if (!accept(P, ':'))
        return perr(P, P->c, "initializer '%s' without a tensor", name);
    ir_value *v = ir_graph_value(P->ctx, P->g, name);
    if (!v)
        return OOM;
    if (v->init)
        return perr(P, at, "initializer '%s' is given twice", name);
    ir_tensor *t;
    if ((st = parse_tensor_body(P, name, &t)))
        return st;
    t->name = v->name;
    v->init = t;
    P->g->inits[P->g->n_inits++] = v;
    return parse_trailer(P, &t->doc);
}

/* model ir_version=N producer_name=S producer_version=S domain=S
 *       [model_version=N] [doc=D] */
static oct_status parse_model_line(parser *P)
{
    oct_status st;
    ir_model *m = P->m;
    static const char *const keys[] = {"producer_name=", "producer_version=",
                                       "domain="};
    const char **fields[] = {&m->producer_name, &m->producer_version, &m->domain};
    if (!accept_word(P, "ir_version="))
        return perr(P, P->c, "expected ir_version=");
    if ((st = parse_i64(P, &m->ir_version)))
        return st;
    for (size_t i = 0; i < 3; i++) {
        if (!accept_word(P, keys[i]))
            return perr(P, P->c, "expected %s", keys[i]);
        char *s;
        if ((st = parse_str(P, true, &s, NULL)))
            return st;
        *fields[i] = s;
    }
    if (accept_word(P, "model_version=")) {
        if ((st = parse_i64(P, &m->model_version)))
            return st;
        m->has_model_version = true;
    }
    return parse_trailer(P, &m->doc);
}

static oct_status parse_opset(parser *P)
{
    oct_status st;
    char *domain;
    if ((st = parse_name(P, &domain)) || (st = expect(P, '=')))
        return st;
    ir_opset *o = &P->m->opsets[P->m->n_opsets++];
    o->domain = domain;
    return parse_i64(P, &o->version);
}

static oct_status parse_metadata(parser *P)
{
    oct_status st;
    char *key, *value;
    if ((st = parse_str(P, true, &key, NULL)) || (st = expect(P, '=')) ||
        (st = parse_str(P, true, &value, NULL)))
        return st;
    P->m->metadata[P->m->n_metadata++] = (ir_kv){key, value};
    return OCT_OK;
}

typedef enum line_kind {
    L_SKIP, L_MODEL, L_OPSET, L_METADATA, L_GRAPH, L_INPUT, L_OUTPUT, L_INIT,
    L_VALUE_INFO, L_NODE, L_OPAQUE, L_UNKNOWN, L_COUNT
} line_kind;

static const char *const line_words[L_COUNT] = {
    [L_MODEL] = "model", [L_OPSET] = "opset", [L_METADATA] = "metadata",
    [L_GRAPH] = "graph", [L_INPUT] = "input", [L_OUTPUT] = "output",
    [L_INIT] = "init", [L_VALUE_INFO] = "value_info", [L_NODE] = "node",
};

/* Classifies the line the cursor is at and moves past its keyword. */
static line_kind line_kind_of(parser *P)
{
    skip_ws(P);
    if (P->c >= P->eol || *P->c == '#')
        return L_SKIP;
    const char *w = P->c;
    while (P->c < P->eol && (isalpha((unsigned char)*P->c) || *P->c == '_'))
        P->c++;
    size_t len = (size_t)(P->c - w);
    for (int k = 0; k < L_COUNT; k++)
        if (line_words[k] && strlen(line_words[k]) == len &&
            !memcmp(line_words[k], w, len))
            return (line_kind)k;
    static const char *const opaque[] = {"function", "training_info",
                                         "sparse_initializer",
                                         "quantization_annotation"};
    for (size_t i = 0; i < sizeof opaque / sizeof opaque[0]; i++)
        if (strlen(opaque[i]) == len && !memcmp(opaque[i], w, len))
            return L_OPAQUE;
    P->c = w;
    return L_UNKNOWN;
}

static bool next_line(parser *P)
{
    const char *start = P->eol ? P->eol + 1 : P->text;
    if (P->eol && P->eol >= P->end)
        return false;
    if (start > P->end)
        return false;
    P->line = P->c = start;
    const char *nl = memchr(start, '\n', (size_t)(P->end - start));
    P->eol = nl ? nl : P->end;
    P->lineno++;
    return true;
}

bool ir_is_text(const void *data, size_t len)
{
    static const char magic[] = "octet-ir 1";
    size_t n = sizeof magic - 1;
    const char *s = data;
    return len > n && !memcmp(s, magic, n) &&
           (s[n] == '\n' || (s[n] == '\r' && len > n + 1 && s[n + 1] == '\n'));
}

/* Counts the lines of each kind (sizing the arrays exactly and checking
 * max_nodes before anything is built). */
static oct_status count_lines(parser *P, size_t counts[L_COUNT])
{
    memset(counts, 0, L_COUNT * sizeof counts[0]);
    P->eol = NULL;
    P->lineno = 0;
    while (next_line(P)) {
        if (P->lineno == 1)
            continue;
        counts[line_kind_of(P)]++;
    }
    if (counts[L_NODE] > P->ctx->limits.max_nodes)
        return oct_error(P->ctx, OCT_EINPUT, "%s: %zu nodes, over the limit of "
                         "%" PRIu64 " (max_nodes)", P->file, counts[L_NODE],
                         P->ctx->limits.max_nodes);
    return OCT_OK;
}

static oct_status parse_lines(parser *P)
{
    size_t counts[L_COUNT];
    oct_status st = count_lines(P, counts);
    if (st)
        return st;
    ir_model *m = P->m;
    m->opsets = ir_alloc_array(P->ctx, counts[L_OPSET] + 1, sizeof *m->opsets);
    m->metadata = ir_alloc_array(P->ctx, counts[L_METADATA] + 1, sizeof *m->metadata);
    if (!m->opsets || !m->metadata)
        return OOM;
    bool have_model = false;
    P->eol = NULL;
    P->lineno = 0;
    while (next_line(P)) {
        if (P->lineno == 1) {
            if (!ir_is_text(P->line, (size_t)(P->end - P->line)))
                return perr(P, P->line, "not Octet's text IR: the first line "
                            "must be 'octet-ir 1'");
            continue;
        }
        const char *kw = (skip_ws(P), P->c);
        line_kind k = line_kind_of(P);
        bool graph_line = k == L_INPUT || k == L_OUTPUT || k == L_INIT ||
                          k == L_VALUE_INFO || k == L_NODE;
        if (k != L_SKIP && k != L_MODEL && k != L_OPAQUE && k != L_UNKNOWN &&
            !have_model)
            return perr(P, kw, "the 'model' line must come first");
        if (graph_line && !P->g)
            return perr(P, kw, "a 'graph' line must come before the graph's "
                        "inputs, outputs, initializers and nodes");
        if (k != L_SKIP && k != L_UNKNOWN && k != L_OPAQUE && P->c < P->eol &&
            *P->c != ' ' && *P->c != '\t')
            return perr(P, P->c, "expected a space after '%.*s'",
                        (int)(P->c - kw), kw);
        ir_graph *g = P->g;
        switch (k) {
        case L_SKIP: continue;
        case L_UNKNOWN: return perr(P, kw, "unknown line");
        case L_OPAQUE:
            return perr(P, kw, "'%.*s' is printed as a size and hash and cannot "
                        "be read back", (int)(P->c - kw), kw);
        case L_MODEL:
            if (have_model)
                return perr(P, kw, "a second 'model' line");
            have_model = true;
            st = parse_model_line(P);
            break;
        case L_OPSET: st = parse_opset(P); break;
        case L_METADATA: st = parse_metadata(P); break;
        case L_GRAPH: {
            if (P->g)
                return perr(P, kw, "a second 'graph' line");
            if (!(g = P->g = m->graph = ir_graph_new(P->ctx)))
                return OOM;
            g->inputs = ir_alloc_array(P->ctx, counts[L_INPUT] + 1, sizeof *g->inputs);
            g->outputs = ir_alloc_array(P->ctx, counts[L_OUTPUT] + 1, sizeof *g->outputs);
            g->inits = ir_alloc_array(P->ctx, counts[L_INIT] + 1, sizeof *g->inits);
            g->value_info = ir_alloc_array(P->ctx, counts[L_VALUE_INFO] + 1,
                                           sizeof *g->value_info);
            if (!g->inputs || !g->outputs || !g->inits || !g->value_info)
                return OOM;
            char *name;
            if ((st = parse_name(P, &name)))
                return st;
            g->name = name;
            st = parse_trailer(P, &g->doc);
            break;
        }
        case L_INPUT: st = parse_value_line(P, IR_VAL_INPUT, g->inputs, &g->n_inputs); break;
        case L_OUTPUT: st = parse_value_line(P, IR_VAL_OUTPUT, g->outputs, &g->n_outputs); break;
        case L_VALUE_INFO:
            st = parse_value_line(P, IR_VAL_INFO, g->value_info, &g->n_value_info);
            break;
        case L_INIT: st = parse_init(P); break;
        case L_NODE: st = parse_node(P); break;
        case L_COUNT: OCT_ASSERT(0); break;
        }
        if (st)
            return st;
        if (!at_end(P))
            return perr(P, P->c, "unexpected text at the end of the line");
    }
    if (!have_model)
        return oct_error(P->ctx, OCT_EINPUT, "%s: no 'model' line", P->file);
    if (!P->g)
        return oct_error(P->ctx, OCT_EINPUT, "%s: no 'graph' line", P->file);
    return OCT_OK;
}

oct_status ir_parse_text(oct_ctx *ctx, const char *text, size_t len,
                         const char *file, ir_model **out)
{
    const char *name = ir_strdup(ctx, file ? file : "<text>");
    if (!name)
        return OOM;
    ctx->cur_file = NULL;
    if (len > ctx->limits.max_file_bytes)
        return oct_error(ctx, OCT_EINPUT, "%s: %zu bytes, over the limit of "
                         "%" PRIu64 " bytes (max_file_bytes)", name, len,
                         ctx->limits.max_file_bytes);
    if (!ir_is_text(text, len))
        return oct_error(ctx, OCT_EINPUT, "%s:1:1: not Octet's text IR: the "
                         "first line must be 'octet-ir 1'", name);
    parser P = {.ctx = ctx, .file = name, .text = text, .end = text + len};
    if (!(P.m = ir_model_new(ctx)))
        return OOM;
    oct_status st = parse_lines(&P);
    ctx->cur_file = name; /* later diagnostics name the file */
    if (st == OCT_OK)
        *out = P.m;
    return st;
}
