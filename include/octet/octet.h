/*
 * octet.h: Octet's public C API.
 *
 * A compilation context (oct_ctx) owns every piece of memory Octet allocates
 * for one model: the IR, diagnostics and scratch data all come from its arena
 * and are released by oct_ctx_free().  Nothing here prints or exits; every
 * function that can fail returns an oct_status and records a diagnostic in
 * the context, which the caller reads with oct_diag_count()/oct_diag_get().
 * Two contexts share no state, so two models can be compiled in one process.
 */
#ifndef OCTET_OCTET_H
#define OCTET_OCTET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCTET_VERSION "0.1.0"

/* Status codes double as the command-line exit codes (docs/cli.md). */
typedef enum oct_status {
    OCT_OK = 0,
    OCT_EUSAGE = 1,       /* bad command-line use or API misuse */
    OCT_EINPUT = 2,       /* malformed model, tensor or data; limit exceeded */
    OCT_EUNSUPPORTED = 3, /* valid ONNX that Octet does not handle */
    OCT_EINTERNAL = 4,    /* out of memory, I/O failure, or a bug */
} oct_status;

typedef enum oct_severity {
    OCT_SEV_NOTE = 0,
    OCT_SEV_WARNING = 1,
    OCT_SEV_ERROR = 2,
} oct_severity;

/* Where a diagnostic points.  Any pointer may be NULL; io_index is -1 when the
 * diagnostic names no input or output. */
typedef struct oct_diag {
    oct_severity severity;
    oct_status status;    /* the status the failing call returned */
    const char *file;     /* model or data file */
    const char *node;     /* node name (or "#<index>" for unnamed nodes) */
    const char *op_type;  /* op type of that node */
    int io_is_output;     /* 1 if io_index names an output */
    int io_index;
    const char *tensor;   /* tensor (value) name */
    const char *message;
} oct_diag;

/* Resource limits checked while loading and running (docs/reliability.md). */
typedef struct oct_limits {
    uint64_t max_file_bytes;        /* model file size */
    uint64_t max_tensor_elems;      /* elements in one tensor */
    uint64_t max_total_init_bytes;  /* all initializers together */
    uint64_t max_nodes;             /* nodes in the main graph */
    uint32_t max_subgraph_depth;    /* nesting of graph attributes */
    uint32_t max_rank;              /* dimensions of one tensor */
    uint64_t max_alloc_bytes;       /* bytes alive in one context */
} oct_limits;

typedef struct oct_ctx oct_ctx;

/* Returns the default limits. */
oct_limits oct_default_limits(void);

/* Creates a context with the default limits; NULL if out of memory. */
oct_ctx *oct_ctx_new(void);
/* Releases the context and everything allocated from it.  NULL is a no-op. */
void oct_ctx_free(oct_ctx *ctx);

oct_limits *oct_ctx_limits(oct_ctx *ctx);

/* Test hook: the Nth allocation (1-based) from now on fails; 0 disables. */
void oct_ctx_fail_alloc_at(oct_ctx *ctx, uint64_t nth);
/* Number of allocations made so far through the context. */
uint64_t oct_ctx_alloc_count(const oct_ctx *ctx);

size_t oct_diag_count(const oct_ctx *ctx);
const oct_diag *oct_diag_get(const oct_ctx *ctx, size_t index);
/* Number of diagnostics of severity error. */
size_t oct_error_count(const oct_ctx *ctx);
/* Formats a diagnostic like a compiler, e.g.
 *   model.onnx: node 'conv1' (Conv) input 1 'W': error: message
 * into buf (always NUL-terminated when size > 0).  Returns the length the
 * full text needs, like snprintf. */
int oct_diag_format(const oct_diag *diag, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
