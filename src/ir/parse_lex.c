/*
 * parse_lex.c: the lower half of the text IR parser (parse.c has the
 * upper): reading within one line of text that need not be NUL-terminated:
 * the cursor, quoted strings with their escapes, names, numbers, element
 * types, value types and tensors with their values.  Every count (rank,
 * elements, bytes) is checked against ctx's limits before anything is
 * allocated for it, and no read goes past the end of the line.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/parse_text.h"

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
oct_status irtp_perr(parser *P, const char *at, const char *fmt, ...)
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


/* ---- lexing within a line ------------------------------------------------ */

void irtp_skip_ws(parser *P)
{
    while (P->c < P->eol && (*P->c == ' ' || *P->c == '\t' || *P->c == '\r'))
        P->c++;
}

bool irtp_at_end(parser *P)
{
    irtp_skip_ws(P);
    return P->c >= P->eol;
}

bool irtp_peek(parser *P, char ch)
{
    irtp_skip_ws(P);
    return P->c < P->eol && *P->c == ch;
}

/* Consumes `ch` (after spaces) if it is next. */
bool irtp_accept(parser *P, char ch)
{
    if (!irtp_peek(P, ch))
        return false;
    P->c++;
    return true;
}

oct_status irtp_expect(parser *P, char ch)
{
    if (irtp_accept(P, ch))
        return OCT_OK;
    return irtp_perr(P, P->c, "expected '%c'", ch);
}

/* Consumes the word `w` (after spaces) if it is next. */
bool irtp_accept_word(parser *P, const char *w)
{
    irtp_skip_ws(P);
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
oct_status irtp_parse_str(parser *P, bool c_string, char **out, size_t *len)
{
    irtp_skip_ws(P);
    const char *start = P->c;
    if (P->c >= P->eol || *P->c != '"')
        return irtp_perr(P, P->c, "expected a quoted string");
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
            return irtp_perr(P, start, "unterminated string");
        char ch = *P->c++;
        if (ch == '"')
            break;
        if (ch != '\\') {
            buf[n++] = ch;
            continue;
        }
        if (P->c >= P->eol)
            return irtp_perr(P, start, "unterminated string");
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
                return irtp_perr(P, P->c - 2, "\\x needs two hex digits");
            P->c += 2;
            buf[n++] = (char)(hi * 16 + lo);
            break;
        }
        default:
            return irtp_perr(P, P->c - 2, "unknown escape '\\%c'", e);
        }
        if (c_string && n && buf[n - 1] == '\0')
            return irtp_perr(P, P->c - 1, "a NUL byte cannot be part of a name");
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return OCT_OK;
}

/* NAME: bare (greedy, a trailing ':' left for the caller) or quoted. */
oct_status irtp_parse_name(parser *P, char **out)
{
    irtp_skip_ws(P);
    if (irtp_peek(P, '"'))
        return irtp_parse_str(P, true, out, NULL);
    const char *start = P->c;
    while (P->c < P->eol && is_bare_char(*P->c))
        P->c++;
    if (P->c > start + 1 && P->c[-1] == ':')
        P->c--;
    if (P->c == start)
        return irtp_perr(P, start, "expected a name");
    *out = ir_strndup(P->ctx, start, (size_t)(P->c - start));
    return *out ? OCT_OK : OOM;
}

/* A number-like token ([A-Za-z0-9.+-]) copied into buf. */
oct_status irtp_number_token(parser *P, char *buf, const char **at)
{
    irtp_skip_ws(P);
    *at = P->c;
    size_t n = 0;
    while (P->c < P->eol && (isalnum((unsigned char)*P->c) || *P->c == '.' ||
                             *P->c == '+' || *P->c == '-')) {
        if (n + 1 >= TOKEN_MAX)
            return irtp_perr(P, *at, "number too long");
        buf[n++] = *P->c++;
    }
    buf[n] = '\0';
    if (!n)
        return irtp_perr(P, *at, "expected a number");
    return OCT_OK;
}

oct_status irtp_parse_i64(parser *P, int64_t *out)
{
    char buf[TOKEN_MAX];
    const char *at;
    oct_status st = irtp_number_token(P, buf, &at);
    if (st)
        return st;
    char *endp;
    errno = 0;
    long long v = strtoll(buf, &endp, 10);
    if (errno || *endp || endp == buf)
        return irtp_perr(P, at, "'%s' is not a 64-bit integer", buf);
    *out = v;
    return OCT_OK;
}

/* A FLOAT as %.9g / %.17g prints it: numbers, nan, -nan, inf, -inf. */
oct_status irtp_parse_double(parser *P, const char *buf, const char *at,
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
        return irtp_perr(P, at, "'%s' is not a number", buf);
    *out = v;
    return OCT_OK;
}

bool irtp_looks_float(const char *tok)
{
    return strpbrk(tok, ".eEnNiI") != NULL;
}

/* ---- types, tensors ------------------------------------------------------ */

static oct_status parse_dtype(parser *P, ir_dtype *out)
{
    irtp_skip_ws(P);
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
    return irtp_perr(P, start, "unknown element type '%s'", buf);
}

static uint32_t rank_limit(const parser *P)
{
    uint32_t lim = P->ctx->limits.max_rank;
    return lim < RANK_CAP ? lim : RANK_CAP;
}

/* TYPE: DT[DIMS][@S] or DT[*][@S]; opaque <type ...> is refused. */
oct_status irtp_parse_type(parser *P, ir_type *t)
{
    oct_status st;
    memset(t, 0, sizeof *t);
    if (irtp_peek(P, '<'))
        return irtp_perr(P, P->c, "an opaque type (printed as a size and hash) "
                             "cannot be read back");
    if ((st = parse_dtype(P, &t->dtype)) || (st = irtp_expect(P, '[')))
        return st;
    t->has_elem_type = t->dtype != IR_DT_UNDEFINED;
    if (irtp_accept(P, '*')) {
        t->rank = -1;
        if ((st = irtp_expect(P, ']')))
            return st;
    } else {
        ir_dim dims[RANK_CAP];
        int rank = 0;
        if (!irtp_accept(P, ']')) {
            do {
                const char *at = (irtp_skip_ws(P), P->c);
                if ((uint32_t)rank >= rank_limit(P))
                    return irtp_perr(P, at, "rank above the limit of %u (max_rank)",
                                rank_limit(P));
                ir_dim *d = &dims[rank++];
                memset(d, 0, sizeof *d);
                d->value = -1;
                if (irtp_accept(P, '?')) {
                } else if (P->c < P->eol && isdigit((unsigned char)*P->c)) {
                    if ((st = irtp_parse_i64(P, &d->value)))
                        return st;
                } else {
                    char *param;
                    if ((st = irtp_parse_name(P, &param)))
                        return st;
                    d->param = param;
                }
                if (irtp_accept(P, '@')) {
                    char *den;
                    if ((st = irtp_parse_str(P, true, &den, NULL)))
                        return st;
                    d->denotation = den;
                }
            } while (irtp_accept(P, ','));
            if ((st = irtp_expect(P, ']')))
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
    if (irtp_accept(P, '@')) {
        char *den;
        if ((st = irtp_parse_str(P, true, &den, NULL)))
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
        if ((st = irtp_parse_str(P, false, &s, &len)))
            return st;
        ((ir_blob *)t->data)[i] = (ir_blob){(uint8_t *)s, len};
        return OCT_OK;
    }
    char buf[TOKEN_MAX];
    const char *at;
    if ((st = irtp_number_token(P, buf, &at)))
        return st;
    uint8_t *p = t->data;
    unsigned bytes = ir_dtype_info(t->dtype)->bits / 8;
    if (t->dtype == IR_DT_FLOAT || t->dtype == IR_DT_DOUBLE) {
        double d;
        if ((st = irtp_parse_double(P, buf, at, &d)))
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
            return irtp_perr(P, at, "'%s' is not a %s value", buf,
                        ir_dtype_short(t->dtype));
        store_le(p + i * bytes, (uint64_t)v, bytes);
    } else {
        if (buf[0] == '-')
            return irtp_perr(P, at, "'%s' is not a %s value", buf,
                        ir_dtype_short(t->dtype));
        unsigned long long v = strtoull(buf, &endp, 10);
        uint64_t hi = t->dtype == IR_DT_BOOL ? 1
                      : bytes == 8           ? UINT64_MAX
                                             : (UINT64_C(1) << (8 * bytes)) - 1;
        if (errno || *endp || v > hi)
            return irtp_perr(P, at, "'%s' is not a %s value", buf,
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
oct_status irtp_parse_tensor_body(parser *P, const char *what, ir_tensor **out)
{
    oct_status st;
    const char *start = (irtp_skip_ws(P), P->c);
    ir_dtype dt;
    if ((st = parse_dtype(P, &dt)) || (st = irtp_expect(P, '[')))
        return st;
    if (dt == IR_DT_UNDEFINED)
        return irtp_perr(P, start, "tensor '%s' has no element type", what);
    int64_t dims[RANK_CAP];
    int rank = 0;
    if (!irtp_accept(P, ']')) {
        do {
            if ((uint32_t)rank >= rank_limit(P))
                return irtp_perr(P, P->c, "rank above the limit of %u (max_rank)",
                            rank_limit(P));
            const char *at = (irtp_skip_ws(P), P->c);
            if ((st = irtp_parse_i64(P, &dims[rank])))
                return st;
            if (dims[rank] < 0)
                return irtp_perr(P, at, "negative dimension");
            rank++;
        } while (irtp_accept(P, ','));
        if ((st = irtp_expect(P, ']')))
            return st;
    }
    uint64_t nelems, nbytes;
    if (!ir_shape_elems(rank, dims, &nelems) ||
        nelems > P->ctx->limits.max_tensor_elems)
        return irtp_perr(P, start, "tensor '%s' has more than %" PRIu64
                    " elements (max_tensor_elems)", what,
                    P->ctx->limits.max_tensor_elems);
    if (!ir_dtype_bytes(dt, nelems, &nbytes) ||
        ir_add_overflow_u64(P->init_bytes, nbytes, &P->init_bytes) ||
        P->init_bytes > P->ctx->limits.max_total_init_bytes)
        return irtp_perr(P, start, "tensors over %" PRIu64
                    " bytes in all (max_total_init_bytes)",
                    P->ctx->limits.max_total_init_bytes);
    ir_tensor *t = ir_tensor_new(P->ctx, dt, rank, dims);
    if (!t)
        return OOM;
    if (irtp_accept_word(P, "raw"))
        t->storage = IR_STORE_RAW;
    else if (irtp_accept_word(P, "typed"))
        t->storage = IR_STORE_TYPED;
    else
        return irtp_perr(P, P->c, "expected 'raw' or 'typed'");
    bool have_hash = false;
    uint64_t hash = 0;
    const char *hash_at = (irtp_skip_ws(P), P->c);
    if (irtp_accept(P, '#')) {
        for (int i = 0; i < 16; i++) {
            int d = P->c < P->eol ? hex_digit(*P->c) : -1;
            if (d < 0)
                return irtp_perr(P, hash_at, "a hash is '#' and 16 hex digits");
            hash = hash * 16 + (uint64_t)d;
            P->c++;
        }
        have_hash = true;
    }
    if (!irtp_accept(P, '=')) {
        if (nelems)
            return irtp_perr(P, start, "tensor '%s' is printed as a hash only: its "
                        "values are not in the text (print it in full: "
                        "octet inspect --full)", what);
    } else if (irtp_accept_word(P, "x\"")) {
        if (dt == IR_DT_STRING)
            return irtp_perr(P, P->c, "string tensor values are a list of strings");
        uint8_t *p = t->data;
        uint64_t n = 0;
        while (P->c < P->eol && *P->c != '"') {
            int hi = hex_digit(P->c[0]);
            int lo = P->c + 1 < P->eol ? hex_digit(P->c[1]) : -1;
            if (hi < 0 || lo < 0)
                return irtp_perr(P, P->c, "expected two hex digits");
            if (n == nbytes)
                return irtp_perr(P, P->c, "more than the %" PRIu64
                            " bytes tensor '%s' holds", nbytes, what);
            p[n++] = (uint8_t)(hi * 16 + lo);
            P->c += 2;
        }
        if ((st = irtp_expect(P, '"')))
            return st;
        if (n != nbytes)
            return irtp_perr(P, start, "tensor '%s' holds %" PRIu64 " bytes, the "
                        "text gives %" PRIu64, what, nbytes, n);
    } else {
        if (!list_dtype(dt))
            return irtp_perr(P, P->c, "%s values are written as x\"HEX\"",
                        ir_dtype_short(dt));
        if ((st = irtp_expect(P, '[')))
            return st;
        uint64_t n = 0;
        if (!irtp_accept(P, ']')) {
            do {
                if (n == nelems)
                    return irtp_perr(P, P->c, "more than the %" PRIu64
                                " values tensor '%s' holds", nelems, what);
                if ((st = parse_elem(P, t, n++)))
                    return st;
            } while (irtp_accept(P, ','));
            if ((st = irtp_expect(P, ']')))
                return st;
        }
        if (n != nelems)
            return irtp_perr(P, start, "tensor '%s' holds %" PRIu64 " values, the "
                        "text gives %" PRIu64, what, nelems, n);
    }
    if (have_hash && nelems && tensor_hash(t) != hash)
        return irtp_perr(P, hash_at, "the values of tensor '%s' do not match its "
                    "hash", what);
    *out = t;
    return OCT_OK;
}

/* " doc=D" and " unknown=U" trailing an entity (either may be absent). */
oct_status irtp_parse_trailer(parser *P, const char **doc)
{
    oct_status st;
    if (irtp_accept_word(P, "doc=")) {
        if (irtp_peek(P, '<'))
            return irtp_perr(P, P->c, "a long doc string printed as a size and "
                        "hash cannot be read back (print it in full)");
        char *s;
        if ((st = irtp_parse_str(P, true, &s, NULL)))
            return st;
        if (doc)
            *doc = s;
        else
            return irtp_perr(P, P->c, "no doc string expected here");
    }
    irtp_skip_ws(P);
    if (irtp_accept_word(P, "unknown="))
        return irtp_perr(P, P->c, "unknown protobuf fields (printed as a count and "
                    "hash) cannot be read back");
    return OCT_OK;
}

/* tensor(NAME: TENSOR [doc] [unknown]) or tensor(TENSOR ...) or tensor() */
oct_status irtp_parse_tensor_attr(parser *P, ir_tensor **out)
{
    oct_status st;
    if (!irtp_accept_word(P, "tensor("))
        return irtp_perr(P, P->c, "expected tensor(...)");
    if (irtp_accept(P, ')')) {
        *out = NULL;
        return OCT_OK;
    }
    const char *save = P->c;
    char *name = NULL;
    if ((st = irtp_parse_name(P, &name)))
        return st;
    if (!irtp_accept(P, ':')) { /* no name: that was the dtype */
        P->c = save;
        name = "";
    }
    ir_tensor *t;
    if ((st = irtp_parse_tensor_body(P, *name ? name : "<attribute>", &t)))
        return st;
    t->name = name;
    if ((st = irtp_parse_trailer(P, &t->doc)) || (st = irtp_expect(P, ')')))
        return st;
    *out = t;
    return OCT_OK;
}

/* Makes room for one more element of `size` bytes in an arena array. */
oct_status irtp_grow(parser *P, void **arr, size_t *cap, size_t n, size_t size)
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
