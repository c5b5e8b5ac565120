/*
 * parse_text.h: the text IR parser's internal interface between its two
 * files: parse_lex.c (the cursor within a line, strings, names, numbers,
 * types and tensors) and parse.c (attributes, nodes, the line kinds and
 * ir_parse_text).  Every function works on the current line of a parser
 * and moves its cursor past what it read; each returns OCT_OK, or
 * OCT_EINPUT after recording one "FILE:LINE:COL: error" diagnostic, or
 * OCT_EINTERNAL when an allocation failed (already reported).
 */
#ifndef OCTET_PARSE_TEXT_H
#define OCTET_PARSE_TEXT_H

#include "ir/ir.h"

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


/* Allocation failures already recorded a diagnostic. */
#define OOM OCT_EINTERNAL

/* Records an error at `at` (a pointer into the current line; the line's
 * start if not) and returns OCT_EINPUT. */
oct_status irtp_perr(parser *P, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Cursor helpers: skip spaces and tabs; at the end of the line (after
 * spaces); the next character is ch (after spaces); consume ch if next;
 * consume ch or report it missing; consume the word w if next. */
void irtp_skip_ws(parser *P);
bool irtp_at_end(parser *P);
bool irtp_peek(parser *P, char ch);
bool irtp_accept(parser *P, char ch);
oct_status irtp_expect(parser *P, char ch);
bool irtp_accept_word(parser *P, const char *w);

/* A quoted string S, decoded into the arena (NUL-terminated, *len without
 * it; len may be NULL); with c_string an embedded NUL is an error. */
oct_status irtp_parse_str(parser *P, bool c_string, char **out, size_t *len);
/* NAME: bare (a trailing ':' left for the caller) or quoted. */
oct_status irtp_parse_name(parser *P, char **out);
/* A number-like token ([A-Za-z0-9.+-], < TOKEN_MAX bytes) into buf; *at is
 * where it starts. */
oct_status irtp_number_token(parser *P, char *buf, const char **at);
oct_status irtp_parse_i64(parser *P, int64_t *out);
/* A number token as a double: digits, nan, -nan, inf, -inf. */
oct_status irtp_parse_double(parser *P, const char *buf, const char *at,
                             double *out);
/* True if a number token is a float (the printer's floats always show a
 * '.', an exponent, nan or inf; integers never do). */
bool irtp_looks_float(const char *tok);
/* TYPE: DT[DIMS][@S] or DT[*][@S]. */
oct_status irtp_parse_type(parser *P, ir_type *t);
/* TENSOR: DT[DIMS] raw|typed [#H] [= values], checked against the limits;
 * `what` names it in diagnostics. */
oct_status irtp_parse_tensor_body(parser *P, const char *what, ir_tensor **out);
/* The optional " doc=D" (stored in *doc) and " unknown=U" (refused). */
oct_status irtp_parse_trailer(parser *P, const char **doc);
/* tensor(NAME: TENSOR ...), tensor(TENSOR ...) or tensor() (*out NULL). */
oct_status irtp_parse_tensor_attr(parser *P, ir_tensor **out);
/* Makes room for element n of an arena array of `size`-byte elements. */
oct_status irtp_grow(parser *P, void **arr, size_t *cap, size_t n, size_t size);

#endif
