/*
 * ir.h: Octet's internal contract for the graph IR and the compilation
 * context.  Sections: context and arena (ctx.c, arena.c), diagnostics
 * (diag.c), element types (dtype.c), the op table (ops.c), graph construction
 * and lookup (graph.c), the verifier (verify.c), printers (print*.c) and the
 * text-form parser (parse.c).
 *
 * Ownership: every IR object lives in the context's arena and is freed with
 * the context.  Names are NUL-terminated strings in the arena.  Nothing in
 * the IR refers to a protobuf type: fields the frontend cannot represent
 * travel as opaque bytes (ir_blob) or as unknown wire fields (ir_extra).
 */
#ifndef OCTET_IR_H
#define OCTET_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "octet/octet.h"

/* ---- asserts: broken invariants are bugs, never input problems --------- */

void oct_assert_fail(const char *expr, const char *file, int line);
#define OCT_ASSERT(cond) \
    ((cond) ? (void)0 : oct_assert_fail(#cond, __FILE__, __LINE__))

/* ---- context and arena (ctx.c, arena.c) --------------------------------- */

typedef struct ir_arena_block ir_arena_block;

typedef struct ir_arena {
    ir_arena_block *head;
} ir_arena;

/* ---- evaluation engines ----------------------------------------------------
 * What passes below the interpreter use to evaluate nodes and graphs
 * (constant folding, calibration, the quantization report) without
 * including it.  The reference interpreter implements it (ref_engine(),
 * src/ref/engine.c); the public oct_ctx_new (src/api/ctx_api.c) installs it
 * as every context's engine.  A context made with ir_ctx_new has none until
 * its creator sets ctx->engine. */

struct ir_value;
struct ir_tensor;
struct ir_node;
struct ir_model;

/* Receives one computed value and its tensor; t is valid only during the
 * call. */
typedef void (*ir_observe_fn)(void *user, const struct ir_value *v,
                              const struct ir_tensor *t);

typedef struct ir_engine {
    const char *name; /* for diagnostics */
    /* Evaluates node n (of a model of default-domain opset `opset`) on
     * input tensors in[] (NULL for omitted inputs; every other input
     * known): out[i] is allocated (ir_heap_tensor_new) for every output the
     * node has, other entries stay NULL.  On failure every out[i] is NULL
     * and a diagnostic names the node. */
    oct_status (*eval_node)(oct_ctx *ctx, const struct ir_node *n, int64_t opset,
                            const struct ir_tensor *const *in, struct ir_tensor **out);
    /* Runs m's graph on `inputs` (one per non-initializer graph input, in
     * order; checked against the declared types) and returns the graph
     * outputs in outputs[0..n_outputs) (heap tensors the caller frees with
     * ir_heap_tensor_free).  observe (may be NULL) is called after every
     * node output is computed, in node order. */
    oct_status (*run)(oct_ctx *ctx, const struct ir_model *m,
                      const struct ir_tensor *const *inputs, size_t n_inputs,
                      struct ir_tensor **outputs, size_t n_outputs,
                      ir_observe_fn observe, void *observe_user);
} ir_engine;

struct oct_ctx {
    oct_limits limits;
    ir_arena arena;
    /* allocation accounting and the out-of-memory test hook */
    uint64_t alloc_count;
    uint64_t fail_alloc_at; /* 0: never */
    uint64_t bytes_live;
    /* diagnostics */
    oct_diag *diags;
    size_t n_diags, cap_diags;
    size_t n_errors;
    const char *cur_file; /* file named by new diagnostics */
    /* files this run reads: outputs may never overwrite them (malloc'ed) */
    char **noted_inputs;
    size_t n_noted_inputs;
    /* the model the running pass works on (passes read its opsets; a pass
     * that adds an op of another domain imports that domain's opset) */
    struct ir_model *model;
    /* evaluates nodes and graphs for the passes that need it (ir_engine
     * above); NULL in a bare ir_ctx_new context */
    const ir_engine *engine;
    /* the quantization session the quant passes read and write (opaque
     * here: src/passes/quant.h); set by whoever runs a pipeline with them */
    struct quant_session *quant;
};

/* ---- files (io.c) ---------------------------------------------------------- */

/* Writes `len` bytes to `path` through a temporary file in the same folder,
 * flushed and renamed; "-" writes standard output.  Refuses a path that is
 * the same file as one registered with ir_note_input. */
oct_status ir_write_atomic(oct_ctx *ctx, const char *path, const void *data,
                           size_t len);
/* Registers a file the process reads, so ir_write_atomic refuses to
 * overwrite it (the list lives in ctx). */
void ir_note_input(oct_ctx *ctx, const char *path);
/* Unlinks every temporary file ir_write_atomic has open at this moment.
 * Async-signal-safe: for SIGINT/SIGTERM handlers (src/cli/main.c). */
void ir_remove_temp_files(void);

/* Reads a whole file into oct_malloc'ed memory, checking the size limit. */
oct_status ir_read_file(oct_ctx *ctx, const char *path, uint64_t limit,
                        uint8_t **data, size_t *len);

/* Reads exactly len bytes at offset from fd into buf; false on a short
 * read or an error. */
bool ir_read_at(int fd, uint8_t *buf, size_t len, long long offset);

/* A context with the default limits and no engine (ctx.c); NULL if out of
 * memory.  Library users call oct_ctx_new (src/api), which also installs
 * the reference interpreter as the engine. */
oct_ctx *ir_ctx_new(void);
/* The context's engine, or NULL after recording an OCT_EINTERNAL
 * diagnostic saying that `who` needs one (engine.c). */
const ir_engine *ir_ctx_engine(oct_ctx *ctx, const char *who);

/* Raw allocation through the context: counted, budgeted, and subject to the
 * fail-Nth test hook.  Returns NULL (and records an error diagnostic) on
 * failure.  oct_free accepts NULL; size must be what was allocated. */
void *oct_malloc(oct_ctx *ctx, size_t size);
void *oct_realloc(oct_ctx *ctx, void *ptr, size_t old_size, size_t new_size);
void oct_free(oct_ctx *ctx, void *ptr, size_t size);

/* Arena allocation: zero-filled, 16-byte aligned, freed with the context.
 * Returns NULL on failure with a diagnostic recorded. */
void *ir_alloc(oct_ctx *ctx, size_t size);
/* ir_alloc(count * size) with the product checked for overflow. */
void *ir_alloc_array(oct_ctx *ctx, size_t count, size_t size);
char *ir_strdup(oct_ctx *ctx, const char *s);
char *ir_strndup(oct_ctx *ctx, const char *s, size_t len);
char *ir_sprintf(oct_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Releases every arena block (called by oct_ctx_free). */
void ir_arena_release(oct_ctx *ctx);

/* Checked arithmetic: return false on overflow, leaving *out unspecified. */
static inline bool ir_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline bool ir_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

/* ---- diagnostics (diag.c) ----------------------------------------------- */

struct ir_node;

/* Records a diagnostic and returns `status` so callers can write
 *   return oct_error(ctx, OCT_EINPUT, node, ...);
 * node may be NULL.  io_index < 0 names no input/output; tensor may be NULL.
 * The file is ctx->cur_file. */
oct_status oct_diagf(oct_ctx *ctx, oct_severity sev, oct_status status,
                     const struct ir_node *node, int io_is_output, int io_index,
                     const char *tensor, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Frees the diagnostics' text (oct_ctx_free calls it). */
void oct_diag_release(oct_ctx *ctx);
/* Drops (and frees) the diagnostics recorded after the first n. */
void oct_diag_truncate(oct_ctx *ctx, size_t n);

/* Shorthands: an error about the model as a whole, about a node, about a
 * node's input or output, and a warning. */
#define oct_error(ctx, status, ...) \
    oct_diagf((ctx), OCT_SEV_ERROR, (status), NULL, 0, -1, NULL, __VA_ARGS__)
#define oct_node_error(ctx, status, node, ...) \
    oct_diagf((ctx), OCT_SEV_ERROR, (status), (node), 0, -1, NULL, __VA_ARGS__)
#define oct_input_error(ctx, status, node, i, ...)                            \
    oct_diagf((ctx), OCT_SEV_ERROR, (status), (node), 0, (i),                 \
              ((node)->in[(i)] ? (node)->in[(i)]->name : NULL), __VA_ARGS__)
#define oct_output_error(ctx, status, node, i, ...)                           \
    oct_diagf((ctx), OCT_SEV_ERROR, (status), (node), 1, (i),                 \
              ((node)->out[(i)] ? (node)->out[(i)]->name : NULL), __VA_ARGS__)
#define oct_warning(ctx, node, ...) \
    oct_diagf((ctx), OCT_SEV_WARNING, OCT_OK, (node), 0, -1, NULL, __VA_ARGS__)

/* ---- element types (dtypes.def, dtype.c) -------------------------------- */

typedef enum ir_dtype {
#define DT(e, id, name, bits, kind, quant) IR_DT_##e = id,
#include "ir/dtypes.def"
#undef DT
    IR_DT_COUNT
} ir_dtype;

typedef enum ir_dkind {
    IR_DK_NONE, IR_DK_FLOAT, IR_DK_SINT, IR_DK_UINT, IR_DK_BOOL,
    IR_DK_STRING, IR_DK_COMPLEX
} ir_dkind;

typedef struct ir_dtype_traits {
    const char *name;   /* ONNX spelling, e.g. "FLOAT8E4M3FN" */
    unsigned bits;      /* bits per element; 0 for UNDEFINED and STRING */
    ir_dkind kind;
    bool quantized;     /* a QuantizeLinear output type */
} ir_dtype_traits;

/* Traits of a dtype; an id outside the table gets the UNDEFINED entry. */
const ir_dtype_traits *ir_dtype_info(int dtype);
bool ir_dtype_valid(int dtype); /* a known id other than UNDEFINED */
const char *ir_dtype_name(int dtype);
/* Lower-case short name used by the printers: "f32", "u8", "f8e4m3fn"... */
const char *ir_dtype_short(int dtype);
/* Bytes needed for n elements (sub-byte types packed, rounded up); false on
 * overflow.  STRING has no fixed size: returns n * sizeof(ir_blob). */
bool ir_dtype_bytes(int dtype, uint64_t n, uint64_t *bytes);

/* ---- op table (ops.def, ops.c) ------------------------------------------ */

enum {
    IR_OPF_ELEMENTWISE = 1u << 0, /* output[i] depends on input[i] only */
    IR_OPF_LAYOUT = 1u << 1,      /* moves data without changing values */
    IR_OPF_QUANT = 1u << 2,       /* a quantization op */
    /* an output's length depends on the input values, not only on their
     * shapes and the geometry inputs (NonZero, NonMaxSuppression): it has
     * no static shape, so the compiler refuses the op */
    IR_OPF_DATA_LENGTH = 1u << 3,
};

typedef enum ir_op {
    IR_OP_UNKNOWN = 0, /* not in the table: loads, prints, round-trips */
#define OP(e, name, dom, k, mini, maxi, mino, maxo, fl, at) IR_OP_##e,
#include "ir/ops.def"
#undef OP
    IR_OP_COUNT
} ir_op;

typedef enum ir_attr_type {
    IR_ATTR_UNDEFINED = 0, IR_ATTR_FLOAT = 1, IR_ATTR_INT = 2,
    IR_ATTR_STRING = 3, IR_ATTR_TENSOR = 4, IR_ATTR_GRAPH = 5,
    IR_ATTR_FLOATS = 6, IR_ATTR_INTS = 7, IR_ATTR_STRINGS = 8,
    IR_ATTR_TENSORS = 9, IR_ATTR_GRAPHS = 10, IR_ATTR_SPARSE_TENSOR = 11,
    IR_ATTR_SPARSE_TENSORS = 12, IR_ATTR_TYPE_PROTO = 13,
    IR_ATTR_TYPE_PROTOS = 14,
} ir_attr_type;

typedef struct ir_op_info {
    const char *name;    /* ONNX op type */
    const char *domain;  /* "" for the default domain */
    const char *kernel;  /* kernel family */
    int min_in, max_in;  /* max -1: variadic */
    int min_out, max_out;
    unsigned flags;
    const char *attrs;   /* "name:type ..." as in ops.def */
} ir_op_info;

const ir_op_info *ir_op_info_of(ir_op op);
/* Looks an op up by domain ("" and "ai.onnx" are the same) and type. */
ir_op ir_op_lookup(const char *domain, const char *op_type);
/* Type the op table declares for attribute `name` of `op`, or
 * IR_ATTR_UNDEFINED if the op has no such attribute. */
ir_attr_type ir_op_attr_type(ir_op op, const char *name);
const char *ir_attr_type_name(ir_attr_type t);

/* ---- graph -------------------------------------------------------------- */

/* Bytes kept verbatim: serialized messages (subgraphs, functions, non-tensor
 * types) and string elements. */
typedef struct ir_blob {
    uint8_t *data;
    size_t len;
} ir_blob;

/* Protobuf fields the 1.12 schema does not know, kept as they came off the
 * wire so a round trip preserves them: tag number, wire type and the bytes
 * that followed the tag. */
typedef struct ir_wire_field {
    uint32_t tag;
    uint8_t wire_type;
    size_t len;
    uint8_t *data;
} ir_wire_field;

typedef struct ir_extra {
    size_t n;
    ir_wire_field *fields;
} ir_extra;

typedef struct ir_kv {
    const char *key, *value;
} ir_kv;

/* How an initializer was stored in the protobuf, so saving writes it back the
 * same way. */
typedef enum ir_storage {
    IR_STORE_RAW = 0,   /* raw_data */
    IR_STORE_TYPED,     /* float_data, int32_data, int64_data, ... */
} ir_storage;

/* A constant tensor.  data holds the elements in the raw_data layout: little
 * endian, C order, sub-byte types packed low bits first.  For STRING, data is
 * an array of ir_blob. */
typedef struct ir_tensor {
    const char *name;
    const char *doc;
    ir_dtype dtype;
    int rank;
    int64_t *dims;
    void *data;
    uint64_t nbytes;
    uint64_t nelems;
    ir_storage storage;
    ir_extra extra;
} ir_tensor;

typedef struct ir_dim {
    int64_t value;       /* >= 0 if known, -1 otherwise */
    const char *param;   /* symbolic name, or NULL */
    const char *denotation;
} ir_dim;

/* The type of a value.  For plain tensors, dtype and (when rank >= 0) dims.
 * Any other TypeProto (sequence, map, optional, sparse tensor) is kept as
 * serialized bytes in `opaque` with dtype UNDEFINED. */
typedef struct ir_type {
    ir_dtype dtype;
    int rank;            /* -1: shape unknown */
    ir_dim *dims;
    const char *denotation;
    ir_blob opaque;
    bool has_elem_type;  /* elem_type field present */
} ir_type;

enum {
    IR_VAL_INPUT = 1u << 0,      /* listed in graph.input */
    IR_VAL_OUTPUT = 1u << 1,     /* listed in graph.output */
    IR_VAL_INFO = 1u << 2,       /* listed in graph.value_info */
    /* read by name inside a subgraph of a node of this graph (set by the
     * frontend): like a graph output, it must outlive every pass that would
     * drop or bypass a value it thinks unused */
    IR_VAL_CAPTURED = 1u << 3,
};

typedef struct ir_value {
    const char *name;
    uint32_t id;
    unsigned flags;
    bool has_type;
    ir_type type;
    struct ir_node *producer;   /* NULL for graph inputs and initializers */
    int producer_out;
    ir_tensor *init;            /* initializer, or NULL */
    const char *doc;            /* ValueInfoProto doc_string */
    ir_extra extra;             /* ValueInfoProto unknown fields */
} ir_value;

typedef struct ir_attr {
    const char *name;
    ir_attr_type type;
    float f;
    int64_t i;
    ir_blob s;
    ir_tensor *t;
    ir_blob g;            /* GRAPH / SPARSE_TENSOR / TYPE_PROTO, serialized */
    size_t n;             /* element count of the list forms */
    float *floats;
    int64_t *ints;
    ir_blob *strings;
    ir_tensor **tensors;
    ir_blob *blobs;       /* GRAPHS / SPARSE_TENSORS / TYPE_PROTOS */
    /* GRAPH / GRAPHS decoded (the frontend fills them; g / blobs stay the
     * form written back to ONNX).  A subgraph value with no producer, no
     * initializer and not a subgraph input is an outer-scope read: it names
     * a value of an enclosing graph, resolved by name when it runs. */
    struct ir_graph *graph;
    struct ir_graph **graphs;
    const char *ref_attr_name;
    const char *doc;
    ir_extra extra;
} ir_attr;

/* A node that a rewrite merged into another (fuse.c): its name and op
 * type as the input model had them, so user rules (quantize --config) can
 * still name it. */
typedef struct ir_origin {
    const char *name, *op_type;
} ir_origin;

typedef struct ir_node {
    uint32_t id;
    ir_op op;
    const char *op_type;
    const char *domain;
    const char *name;      /* may be "" */
    const char *doc;
    int n_in, n_out;
    ir_value **in;         /* in[i] NULL: optional input omitted ("") */
    ir_value **out;
    int n_attr;
    ir_attr *attrs;
    ir_extra extra;
    ir_origin *origins;    /* nodes merged into this one (arena), in */
    int n_origins;         /* merge order; not saved to ONNX */
    uint8_t act_int8;      /* IR_INT8_*: a MatMul of a blocked 4-bit weight
                            * computed with int8 activations (MatMulNBits
                            * accuracy_level 4 unpacked by mnb_unpack;
                            * src/ref/wo_int8.c), or on a MatMulNBits the
                            * arithmetic pass mnb_int8_rows chose for it;
                            * not saved to ONNX */
} ir_node;

/* ir_node.act_int8: none; int8 activations per row and block (ONNX
 * Runtime's accuracy_level 4); int8 weights per column and activations per
 * row (`--int8-rows`). */
enum { IR_INT8_NONE = 0, IR_INT8_BLOCKS = 1, IR_INT8_ROWS = 2 };

typedef struct ir_name_map ir_name_map;

typedef struct ir_graph {
    const char *name;
    const char *doc;
    ir_node **nodes;           /* topological order once verified */
    size_t n_nodes, cap_nodes;
    uint32_t next_node_id;     /* ids stay unique as nodes come and go */
    ir_value **values;         /* every value; values[i]->id == i */
    size_t n_values, cap_values;
    ir_value **inputs;         /* graph.input, in order */
    size_t n_inputs;
    ir_value **outputs;        /* graph.output, in order */
    size_t n_outputs;
    ir_value **value_info;     /* graph.value_info, in order */
    size_t n_value_info;
    ir_value **inits;          /* graph.initializer, in order */
    size_t n_inits, cap_inits; /* cap_inits 0: sized exactly by its maker */
    ir_blob *sparse_inits;     /* graph.sparse_initializer, serialized */
    size_t n_sparse_inits;
    ir_blob *quant_annotations;/* graph.quantization_annotation, serialized */
    size_t n_quant_annotations;
    ir_extra extra;
    ir_name_map *names;        /* name -> value */
} ir_graph;

typedef struct ir_opset {
    const char *domain;
    int64_t version;
} ir_opset;

/* One line of text kept for a later layer, with where it was read. */
typedef struct ir_text_line {
    const char *text;   /* NUL-terminated, without the newline */
    size_t lineno;      /* line in the file it was read from; 0: made here */
} ir_text_line;

typedef struct ir_model {
    int64_t ir_version;
    ir_opset *opsets;
    size_t n_opsets;
    const char *producer_name, *producer_version, *domain, *doc;
    int64_t model_version;
    ir_kv *metadata;
    size_t n_metadata;
    ir_blob *functions;        /* ModelProto.functions, serialized */
    size_t n_functions;
    ir_blob *training_info;    /* ModelProto.training_info, serialized */
    size_t n_training_info;
    ir_extra extra;
    ir_graph *graph;
    bool has_model_version;
    /* The quant passes' state in its text form ("quant ..." lines of the
     * text IR, the text after the keyword; src/passes/quant_text.c reads
     * and writes them).  The IR keeps them verbatim and never looks
     * inside; they do not go to ONNX. */
    ir_text_line *quant_lines;
    size_t n_quant_lines;
} ir_model;

/* graph.c */
ir_model *ir_model_new(oct_ctx *ctx);
ir_graph *ir_graph_new(oct_ctx *ctx);
/* Finds a value by name, or NULL. */
ir_value *ir_graph_find(const ir_graph *g, const char *name);
/* Finds or creates the value named `name` (NULL on allocation failure). */
ir_value *ir_graph_value(oct_ctx *ctx, ir_graph *g, const char *name);
/* Appends a new node with room for n_in inputs and n_out outputs (all NULL),
 * and no attributes.  `op_type`/`domain` are looked up in the op table. */
ir_node *ir_graph_add_node(oct_ctx *ctx, ir_graph *g, const char *op_type,
                           const char *domain, const char *name,
                           int n_in, int n_out);
/* Rewriting helpers.  ir_node_add_attr appends an attribute (name copied,
 * value zero); ir_node_remove_attr deletes one by name (false if absent);
 * ir_node_set_inputs changes the input count (new slots NULL).
 * ir_graph_unique_name returns `base` or `base_N`, unused in g.
 * ir_tensor_new allocates a zeroed tensor in the arena.  ir_graph_add_init
 * adds an initializer value named after `base` holding t. */
ir_attr *ir_node_add_attr(oct_ctx *ctx, ir_node *node, const char *name,
                          ir_attr_type type);
bool ir_node_remove_attr(ir_node *node, const char *name);
bool ir_node_set_inputs(oct_ctx *ctx, ir_node *node, int n_in);
const char *ir_graph_unique_name(oct_ctx *ctx, const ir_graph *g,
                                 const char *base);
ir_tensor *ir_tensor_new(oct_ctx *ctx, ir_dtype dt, int rank,
                         const int64_t *dims);
ir_value *ir_graph_add_init(oct_ctx *ctx, ir_graph *g, const char *base,
                            ir_tensor *t);
/* Records on dst that src was merged into it: src's name and op type,
 * then src's own origins.  dst's own name and op type are not repeated.
 * False on allocation failure. */
bool ir_node_add_origin(oct_ctx *ctx, ir_node *dst, const ir_node *src);

/* Runtime tensors (tensor_heap.c): one oct_malloc block each (not the
 * arena), so long calibration runs do not grow memory.  Rank at most
 * IR_HEAP_MAX_RANK; data zeroed; NULL with a diagnostic on failure.
 * ir_heap_tensor_free accepts NULL. */
#define IR_HEAP_MAX_RANK 16
ir_tensor *ir_heap_tensor_new(oct_ctx *ctx, ir_dtype dt, int rank,
                              const int64_t *dims);
void ir_heap_tensor_free(oct_ctx *ctx, ir_tensor *t);
/* True if v is read outside g's own node inputs: a graph output, or a value
 * a subgraph reads from the outer scope. */
static inline bool ir_value_escapes(const ir_value *v)
{
    return (v->flags & (IR_VAL_OUTPUT | IR_VAL_CAPTURED)) != 0;
}
/* True if a node has a GRAPH or GRAPHS attribute (If, Loop, Scan, ...). */
bool ir_node_has_subgraph(const ir_node *n);

/* Scopes of subgraphs (subgraph.c).  A chain of graphs, innermost first: a
 * subgraph, the graph of the node that holds it, and so on out. */
typedef struct ir_scope {
    const ir_graph *g;
    const struct ir_scope *up;
} ir_scope;
/* v has a producer, an initializer or is a graph input of its own graph;
 * a subgraph value that is none of these is an outer-scope read. */
bool ir_value_defined_here(const ir_value *v);
/* The value named `name` in the nearest graph of the chain that defines
 * it, or NULL. */
ir_value *ir_scope_find(const ir_scope *s, const char *name);
/* Sets IR_VAL_CAPTURED on every value of s's graphs that a subgraph of a
 * node of s->g (at any depth) reads from outside itself. */
void ir_mark_captures(const ir_scope *s);
/* The decoded GRAPH attribute `name` of n, or NULL. */
const ir_graph *ir_node_subgraph(const ir_node *n, const char *name);
/* Number of node input slots of g reading v, plus one if a subgraph reads
 * it (IR_VAL_CAPTURED). */
size_t ir_value_use_count(const ir_graph *g, const ir_value *v);
/* The one node of g reading v (in one slot), or NULL if v is read by
 * several, by none, or is a graph output. */
ir_node *ir_value_sole_consumer(const ir_graph *g, const ir_value *v);
/* Removes node n from g's node list and clears the producer of its
 * outputs (which must be unused or re-produced by the caller). */
void ir_graph_remove_node(ir_graph *g, ir_node *n);
/* A copy of g's node list in ctx's arena (*n nodes; NULL only when out of
 * memory), for passes that walk the nodes while they add and remove some;
 * ir_graph_has_node says whether one is still in g. */
ir_node **ir_graph_nodes_copy(const ir_graph *g, oct_ctx *ctx, size_t *n);
bool ir_graph_has_node(const ir_graph *g, const ir_node *node);
/* Sets node output i to v and records v's producer. */
void ir_node_set_output(ir_node *node, int i, ir_value *v);
/* Deep copy of m into ctx's arena (clone.c): graph, values, nodes,
 * attributes, initializer data, serialized subgraphs and functions,
 * metadata; value and node ids are kept.  The copy shares no memory with
 * m, which may live in another context.  OCT_EINTERNAL on allocation
 * failure (diagnostic recorded), *out NULL then. */
oct_status ir_model_clone(oct_ctx *ctx, const ir_model *m, ir_model **out);
/* Opset version of the default domain, or 0 if not imported. */
int64_t ir_model_opset(const ir_model *m, const char *domain);
/* Imports `domain` at `version` unless m already imports it; false on
 * allocation failure. */
bool ir_model_import_opset(oct_ctx *ctx, ir_model *m, const char *domain, int64_t version);
/* Finds an attribute by name, or NULL. */
const ir_attr *ir_node_attr(const ir_node *node, const char *name);
/* Attribute accessors with defaults (the type must match, else default). */
int64_t ir_attr_int(const ir_node *node, const char *name, int64_t dflt);
float ir_attr_float(const ir_node *node, const char *name, float dflt);
/* String attribute as a NUL-terminated arena copy, or dflt. */
const char *ir_attr_string(oct_ctx *ctx, const ir_node *node,
                           const char *name, const char *dflt);
/* Label for diagnostics: the node name, or "#<id>" when it is empty. */
const char *ir_node_label(const ir_node *node, char *buf, size_t size);
/* Element count of a tensor shape; false on overflow or negative dim. */
bool ir_shape_elems(int rank, const int64_t *dims, uint64_t *elems);

/* verify.c: checks the structural invariants listed in verify.c and reports
 * every violation; OCT_OK or OCT_EINPUT. */
oct_status ir_verify(const ir_model *m, oct_ctx *ctx);

/* Length of the valid UTF-8 sequence starting at p (at most n bytes), or 0
 * if it is not one (overlong forms, surrogates and > U+10FFFF are invalid);
 * the JSON and DOT printers escape what is not (print_json.c). */
size_t ir_utf8_len(const uint8_t *p, size_t n);

/* print.c / print_json.c / print_dot.c: write the model to `out`.  The text
 * form is stable (golden tests and --print-after use it). */
#include <stdio.h>
void ir_print_text(const ir_model *m, FILE *out);
typedef struct ir_print_opts {
    /* Print every initializer's (and tensor attribute's) values and every
     * doc string in full instead of a size and hash, so that
     * ir_parse_text reads the text back (golden tests use it). */
    bool full;
} ir_print_opts;
/* ir_print_text with options (NULL: the defaults, as ir_print_text). */
void ir_print_text_opts(const ir_model *m, FILE *out, const ir_print_opts *opts);
/* The printer's pieces, for the text of later layers (quant lines): a
 * quoted string S, a NAME (bare when it can be), a float that reads back
 * exactly with `digits` significant digits (9: float, 17: double) and
 * never as an integer. */
void ir_print_str(FILE *out, const char *s);
void ir_print_name(FILE *out, const char *s);
void ir_print_float(FILE *out, double x, int digits);

/* parse.c: reads the text form back into a model in ctx's arena.  Accepts
 * what ir_print_text_opts prints with `full` (so printing the result gives
 * the same text), plus blank lines and '#' comment lines, and a tensor
 * without its #H (the hash is checked when present).  What the printer
 * shows only as a size and hash (a big initializer without `full`, opaque
 * subgraphs, functions, unknown fields) cannot be read back: an OCT_EINPUT
 * diagnostic names it.  Every diagnostic is "FILE:LINE:COLUMN: ...";
 * ctx's limits (nodes, rank, tensor elements, initializer bytes) apply.
 * The model is not verified. */
oct_status ir_parse_text(oct_ctx *ctx, const char *text, size_t len,
                         const char *file, ir_model **out);
/* True if data starts like the text form ("octet-ir 1" and a line end). */
bool ir_is_text(const void *data, size_t len);
void ir_print_json(const ir_model *m, FILE *out);
void ir_print_dot(const ir_model *m, FILE *out);
/* Fill colour ("#rrggbb") of a low-precision element type in pictures
 * (DOT and the report's SVG), or NULL for float and other types. */
const char *ir_precision_colour(int dtype);

#endif
