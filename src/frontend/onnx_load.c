/*
 * onnx_load.c: ModelProto -> IR.  The file is mapped (or read), pre-scanned
 * (wire_scan.c: nesting depth, node count, wire-level damage), unpacked by
 * protobuf-c into the context's arena, then walked into the IR; the file
 * buffer is freed as soon as the message exists.  Strings and large tensor
 * data are not copied again: the IR points into the unpacked message, which
 * lives as long as the context.  Regular files are mapped rather than read.
 *
 * What is checked here (everything else structural is ir_verify's): data
 * types, dims, ranks and element counts of tensors and types, tensor data
 * length, attribute types, duplicate initializers, a missing opset import
 * for a domain a node uses, and the limits in ctx->limits.  Sub-messages the
 * IR keeps opaque (subgraph attributes, non-tensor types, sparse
 * initializers, quantization annotations, functions, training info) are
 * re-serialized into blobs.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/fe_internal.h"

typedef struct loader {
    oct_ctx *ctx;
    const ir_model *m;   /* the model being loaded (opset imports) */
    fe_tensor_src src;
    uint64_t init_bytes; /* initializers and tensor attributes so far */
} loader;

static const char *str(const char *s) { return s ? s : ""; }

static oct_status value_error(oct_ctx *ctx, const char *value, const char *msg)
{
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EINPUT, NULL, 0, -1,
                     value && *value ? value : NULL, "%s", msg);
}

/* Adds a decoded tensor's bytes to the running total and checks the limit. */
static oct_status count_init_bytes(loader *ld, const ir_tensor *t)
{
    oct_ctx *ctx = ld->ctx;
    if (ir_add_overflow_u64(ld->init_bytes, t->nbytes, &ld->init_bytes) ||
        ld->init_bytes > ctx->limits.max_total_init_bytes)
        return oct_error(ctx, OCT_EINPUT,
                         "initializers exceed %llu bytes in total (limit "
                         "max_total_init_bytes)",
                         (unsigned long long)ctx->limits.max_total_init_bytes);
    return OCT_OK;
}

/* ---- types and value infos ---------------------------------------------- */

static oct_status load_type(loader *ld, const Onnx__TypeProto *tp,
                            const char *vname, ir_type *ty)
{
    oct_ctx *ctx = ld->ctx;
    char msg[160];
    ty->rank = -1;
    ty->denotation = tp->denotation;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return fe_pack_blob(ctx, &tp->base, &ty->opaque);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    ty->has_elem_type = tt->has_elem_type;
    if (tt->has_elem_type && tt->elem_type != 0 &&
        !ir_dtype_valid(tt->elem_type)) {
        snprintf(msg, sizeof msg, "unknown element type %d", tt->elem_type);
        return value_error(ctx, vname, msg);
    }
    ty->dtype = tt->has_elem_type ? (ir_dtype)tt->elem_type : IR_DT_UNDEFINED;
    if (!tt->shape)
        return OCT_OK;
    const Onnx__TensorShapeProto *sh = tt->shape;
    if (sh->n_dim > ctx->limits.max_rank) {
        snprintf(msg, sizeof msg, "rank %zu exceeds the limit of %u (max_rank)",
                 sh->n_dim, ctx->limits.max_rank);
        return value_error(ctx, vname, msg);
    }
    ty->rank = (int)sh->n_dim;
    ty->dims = ir_alloc_array(ctx, sh->n_dim + 1, sizeof *ty->dims);
    if (!ty->dims)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        ir_dim *out = &ty->dims[i];
        out->value = -1;
        out->denotation = d->denotation;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0) {
                snprintf(msg, sizeof msg, "negative dimension %lld at axis %zu",
                         (long long)d->dim_value, i);
                return value_error(ctx, vname, msg);
            }
            out->value = d->dim_value;
        } else if (d->value_case ==
                   ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM) {
            out->param = str(d->dim_param);
        }
    }
    return OCT_OK;
}

/* Adds a ValueInfoProto to graph g with `flag`; the first type seen for a
 * name is kept. */
static oct_status load_value_info(loader *ld, ir_graph *g,
                                  const Onnx__ValueInfoProto *vi, unsigned flag,
                                  ir_value **out)
{
    oct_ctx *ctx = ld->ctx;
    ir_value *v = ir_graph_value(ctx, g, str(vi->name));
    if (!v)
        return OCT_EINTERNAL;
    *out = v;
    v->flags |= flag;
    if (v->has_type || v->doc)
        return OCT_OK;
    v->doc = str(vi->doc_string);
    oct_status st = fe_extra_from_pb(ctx, &vi->base, &v->extra);
    if (st || !vi->type)
        return st;
    v->has_type = true;
    return load_type(ld, vi->type, v->name, &v->type);
}

static oct_status load_value_list(loader *ld, ir_graph *g,
                                  Onnx__ValueInfoProto **list, size_t n,
                                  unsigned flag, ir_value ***out)
{
    *out = ir_alloc_array(ld->ctx, n + 1, sizeof **out);
    if (!*out)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < n; i++) {
        oct_status st = load_value_info(ld, g, list[i], flag, &(*out)[i]);
        if (st)
            return st;
    }
    return OCT_OK;
}

/* ---- attributes and nodes ----------------------------------------------- */

/* Attribute type of an AttributeProto that does not say (very old files):
 * the single value field that is set. */
static int infer_attr_type(const Onnx__AttributeProto *a)
{
    if (a->has_f) return IR_ATTR_FLOAT;
    if (a->has_i) return IR_ATTR_INT;
    if (a->has_s) return IR_ATTR_STRING;
    if (a->t) return IR_ATTR_TENSOR;
    if (a->g) return IR_ATTR_GRAPH;
    if (a->n_floats) return IR_ATTR_FLOATS;
    if (a->n_ints) return IR_ATTR_INTS;
    if (a->n_strings) return IR_ATTR_STRINGS;
    if (a->n_tensors) return IR_ATTR_TENSORS;
    if (a->n_graphs) return IR_ATTR_GRAPHS;
    return IR_ATTR_UNDEFINED;
}

static oct_status load_graph(loader *ld, const Onnx__GraphProto *gp,
                             ir_graph **out);

static oct_status pack_list(oct_ctx *ctx, ProtobufCMessage **msgs, size_t n,
                            ir_attr *out)
{
    out->n = n;
    out->blobs = ir_alloc_array(ctx, n + 1, sizeof *out->blobs);
    if (!out->blobs)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < n; i++) {
        oct_status st = fe_pack_blob(ctx, msgs[i], &out->blobs[i]);
        if (st)
            return st;
    }
    return OCT_OK;
}

static oct_status load_attr(loader *ld, const ir_node *node,
                            const Onnx__AttributeProto *a, ir_attr *out)
{
    oct_ctx *ctx = ld->ctx;
    out->name = str(a->name);
    out->ref_attr_name = a->ref_attr_name;
    out->doc = str(a->doc_string);
    oct_status st = fe_extra_from_pb(ctx, &a->base, &out->extra);
    if (st)
        return st;
    if (!*out->name)
        return oct_node_error(ctx, OCT_EINPUT, node, "attribute without a name");
    int type = a->has_type ? (int)a->type : infer_attr_type(a);
    if (type < IR_ATTR_FLOAT || type > IR_ATTR_TYPE_PROTOS)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "attribute '%s' has unknown attribute type %d",
                              out->name, type);
    out->type = (ir_attr_type)type;
    bool missing = false;
    fe_tensor_src tsrc = ld->src;
    tsrc.what = ir_sprintf(ctx, "attribute '%s'", out->name);
    if (!tsrc.what)
        return OCT_EINTERNAL;
    switch (out->type) {
    case IR_ATTR_FLOAT: out->f = a->f; break;
    case IR_ATTR_INT: out->i = a->i; break;
    case IR_ATTR_STRING: out->s = (ir_blob){a->s.data, a->s.len}; break;
    case IR_ATTR_TENSOR:
        if (!(missing = !a->t)) {
            st = fe_tensor_decode(ctx, a->t, &tsrc, node, &out->t);
            if (!st)
                st = count_init_bytes(ld, out->t);
        }
        break;
    case IR_ATTR_GRAPH:
        /* kept serialized for the writer, and decoded for everyone else */
        if (!(missing = !a->g) && !(st = fe_pack_blob(ctx, &a->g->base, &out->g)))
            st = load_graph(ld, a->g, &out->graph);
        break;
    case IR_ATTR_SPARSE_TENSOR:
        if (!(missing = !a->sparse_tensor))
            st = fe_pack_blob(ctx, &a->sparse_tensor->base, &out->g);
        break;
    case IR_ATTR_TYPE_PROTO:
        if (!(missing = !a->tp))
            st = fe_pack_blob(ctx, &a->tp->base, &out->g);
        break;
    case IR_ATTR_FLOATS: out->n = a->n_floats; out->floats = a->floats; break;
    case IR_ATTR_INTS: out->n = a->n_ints; out->ints = a->ints; break;
    case IR_ATTR_STRINGS:
        out->n = a->n_strings;
        out->strings = ir_alloc_array(ctx, a->n_strings + 1, sizeof(ir_blob));
        if (!out->strings)
            return OCT_EINTERNAL;
        for (size_t i = 0; i < a->n_strings; i++)
            out->strings[i] = (ir_blob){a->strings[i].data, a->strings[i].len};
        break;
    case IR_ATTR_TENSORS:
        out->n = a->n_tensors;
        out->tensors = ir_alloc_array(ctx, a->n_tensors + 1, sizeof(ir_tensor *));
        if (!out->tensors)
            return OCT_EINTERNAL;
        for (size_t i = 0; i < a->n_tensors && !st; i++) {
            st = fe_tensor_decode(ctx, a->tensors[i], &tsrc, node,
                                  &out->tensors[i]);
            if (!st)
                st = count_init_bytes(ld, out->tensors[i]);
        }
        break;
    case IR_ATTR_GRAPHS:
        st = pack_list(ctx, (ProtobufCMessage **)a->graphs, a->n_graphs, out);
        if (!st && !(out->graphs = ir_alloc_array(ctx, a->n_graphs + 1,
                                                  sizeof *out->graphs)))
            st = OCT_EINTERNAL;
        for (size_t i = 0; i < a->n_graphs && !st; i++)
            st = load_graph(ld, a->graphs[i], &out->graphs[i]);
        break;
    case IR_ATTR_SPARSE_TENSORS:
        st = pack_list(ctx, (ProtobufCMessage **)a->sparse_tensors,
                       a->n_sparse_tensors, out);
        break;
    case IR_ATTR_TYPE_PROTOS:
        st = pack_list(ctx, (ProtobufCMessage **)a->type_protos,
                       a->n_type_protos, out);
        break;
    default:
        break;
    }
    if (missing)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "attribute '%s' of type %s has no value",
                              out->name, ir_attr_type_name(out->type));
    return st;
}

static bool has_opset(const ir_model *m, const char *domain)
{
    bool want_default = !*domain || !strcmp(domain, "ai.onnx");
    for (size_t i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain;
        bool is_default = !*d || !strcmp(d, "ai.onnx");
        if (want_default ? is_default : !strcmp(d, domain))
            return true;
    }
    return false;
}

static oct_status load_node(loader *ld, ir_graph *g, const Onnx__NodeProto *np)
{
    const ir_model *m = ld->m;
    oct_ctx *ctx = ld->ctx;
    ir_node *node = ir_graph_add_node(ctx, g, str(np->op_type), str(np->domain),
                                      str(np->name), (int)np->n_input,
                                      (int)np->n_output);
    if (!node)
        return OCT_EINTERNAL;
    node->doc = str(np->doc_string);
    oct_status st = fe_extra_from_pb(ctx, &np->base, &node->extra);
    if (st)
        return st;
    if (!*node->op_type)
        return oct_node_error(ctx, OCT_EINPUT, node, "node has no op_type");
    if (!has_opset(m, node->domain))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "domain '%s' has no opset import in the model",
                              *node->domain ? node->domain : "ai.onnx");
    for (size_t i = 0; i < np->n_input; i++) {
        const char *name = str(np->input[i]);
        if (*name && !(node->in[i] = ir_graph_value(ctx, g, name)))
            return OCT_EINTERNAL;
    }
    for (size_t i = 0; i < np->n_output; i++) {
        const char *name = str(np->output[i]);
        ir_value *v = NULL;
        if (*name && !(v = ir_graph_value(ctx, g, name)))
            return OCT_EINTERNAL;
        ir_node_set_output(node, (int)i, v);
    }
    node->n_attr = (int)np->n_attribute;
    node->attrs = ir_alloc_array(ctx, np->n_attribute + 1, sizeof *node->attrs);
    if (!node->attrs)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < np->n_attribute && !st; i++)
        st = load_attr(ld, node, np->attribute[i], &node->attrs[i]);
    return st;
}

/* ---- graph and model ---------------------------------------------------- */

static oct_status pack_blobs(oct_ctx *ctx, ProtobufCMessage **msgs, size_t n,
                             ir_blob **out, size_t *n_out)
{
    *n_out = n;
    *out = ir_alloc_array(ctx, n + 1, sizeof **out);
    if (!*out)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < n; i++) {
        oct_status st = fe_pack_blob(ctx, msgs[i], &(*out)[i]);
        if (st)
            return st;
    }
    return OCT_OK;
}

/* Decodes a GraphProto: the model's graph or a subgraph attribute (whose
 * nesting wire_scan.c has bounded). */
static oct_status load_graph(loader *ld, const Onnx__GraphProto *gp,
                             ir_graph **out)
{
    oct_ctx *ctx = ld->ctx;
    ir_graph *g = ir_graph_new(ctx);
    if (!g)
        return OCT_EINTERNAL;
    *out = g;
    g->name = str(gp->name);
    g->doc = str(gp->doc_string);
    oct_status st = fe_extra_from_pb(ctx, &gp->base, &g->extra);
    if (st)
        return st;
    g->inits = ir_alloc_array(ctx, gp->n_initializer + 1, sizeof *g->inits);
    if (!g->inits)
        return OCT_EINTERNAL;
    fe_tensor_src tsrc = ld->src;
    tsrc.what = "initializer";
    for (size_t i = 0; i < gp->n_initializer; i++) {
        ir_tensor *t;
        st = fe_tensor_decode(ctx, gp->initializer[i], &tsrc, NULL, &t);
        if (st)
            return st;
        if ((st = count_init_bytes(ld, t)))
            return st;
        if (!*t->name)
            return value_error(ctx, NULL, "initializer without a name");
        ir_value *v = ir_graph_value(ctx, g, t->name);
        if (!v)
            return OCT_EINTERNAL;
        if (v->init)
            return value_error(ctx, t->name, "duplicate initializer name");
        v->init = t;
        g->inits[g->n_inits++] = v;
    }
    if ((st = load_value_list(ld, g, gp->input, gp->n_input, IR_VAL_INPUT,
                              &g->inputs)))
        return st;
    g->n_inputs = gp->n_input;
    if ((st = load_value_list(ld, g, gp->output, gp->n_output, IR_VAL_OUTPUT,
                              &g->outputs)))
        return st;
    g->n_outputs = gp->n_output;
    if ((st = load_value_list(ld, g, gp->value_info, gp->n_value_info,
                              IR_VAL_INFO, &g->value_info)))
        return st;
    g->n_value_info = gp->n_value_info;
    for (size_t i = 0; i < gp->n_node; i++)
        if ((st = load_node(ld, g, gp->node[i])))
            return st;
    if ((st = pack_blobs(ctx, (ProtobufCMessage **)gp->sparse_initializer,
                         gp->n_sparse_initializer, &g->sparse_inits,
                         &g->n_sparse_inits)))
        return st;
    return pack_blobs(ctx, (ProtobufCMessage **)gp->quantization_annotation,
                      gp->n_quantization_annotation, &g->quant_annotations,
                      &g->n_quant_annotations);
}

static oct_status load_model(loader *ld, const Onnx__ModelProto *mp,
                             ir_model **out)
{
    oct_ctx *ctx = ld->ctx;
    ir_model *m = ir_model_new(ctx);
    if (!m)
        return OCT_EINTERNAL;
    m->ir_version = mp->ir_version;
    m->producer_name = str(mp->producer_name);
    m->producer_version = str(mp->producer_version);
    m->domain = str(mp->domain);
    m->doc = str(mp->doc_string);
    m->has_model_version = mp->has_model_version;
    m->model_version = mp->model_version;
    oct_status st = fe_extra_from_pb(ctx, &mp->base, &m->extra);
    if (st)
        return st;
    m->n_opsets = mp->n_opset_import;
    m->opsets = ir_alloc_array(ctx, m->n_opsets + 1, sizeof *m->opsets);
    m->n_metadata = mp->n_metadata_props;
    m->metadata = ir_alloc_array(ctx, m->n_metadata + 1, sizeof *m->metadata);
    if (!m->opsets || !m->metadata)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < m->n_opsets; i++)
        m->opsets[i] = (ir_opset){str(mp->opset_import[i]->domain),
                                  mp->opset_import[i]->version};
    for (size_t i = 0; i < m->n_metadata; i++)
        m->metadata[i] = (ir_kv){str(mp->metadata_props[i]->key),
                                 str(mp->metadata_props[i]->value)};
    if ((st = pack_blobs(ctx, (ProtobufCMessage **)mp->functions,
                         mp->n_functions, &m->functions, &m->n_functions)) ||
        (st = pack_blobs(ctx, (ProtobufCMessage **)mp->training_info,
                         mp->n_training_info, &m->training_info,
                         &m->n_training_info)))
        return st;
    if (!mp->graph)
        return oct_error(ctx, OCT_EINPUT, "the model has no graph");
    ld->m = m;
    if ((st = load_graph(ld, mp->graph, &m->graph)))
        return st;
    ir_mark_captures(&(ir_scope){.g = m->graph});
    *out = m;
    return OCT_OK;
}

/* Who releases the input bytes once protobuf-c has unpacked them. */
typedef enum buf_owner { BUF_CALLER, BUF_OCT_MALLOC, BUF_MMAP } buf_owner;

/* Loads a model from `data`.  Unless the caller owns it, `data` (from
 * oct_malloc with size max(len, 1), or from mmap) is released as soon as
 * protobuf-c has unpacked it (the IR never points into it), on every path. */
static oct_status load_buffer(oct_ctx *ctx, uint8_t *data, size_t len,
                              buf_owner owner, const char *name,
                              const char *base_dir, const fe_load_opts *opts,
                              ir_model **out)
{
    Onnx__ModelProto *mp = NULL;
    oct_status st = OCT_OK;
    size_t errors_before = ctx->n_errors;
    const char *file = ir_strdup(ctx, name ? name : "<memory>");
    if (!file) {
        st = OCT_EINTERNAL;
        goto unpacked;
    }
    ctx->cur_file = file; /* stays set: later diagnostics name the model */
    if (len == 0) {
        st = oct_error(ctx, OCT_EINPUT, "empty file: not an ONNX model");
        goto unpacked;
    }
    if (len > ctx->limits.max_file_bytes) {
        st = oct_error(ctx, OCT_EINPUT,
                       "model is %zu bytes, over the limit of %llu bytes "
                       "(max_file_bytes)",
                       len, (unsigned long long)ctx->limits.max_file_bytes);
        goto unpacked;
    }
    if ((st = fe_wire_scan(ctx, data, len, &onnx__model_proto__descriptor)))
        goto unpacked;
    ProtobufCAllocator alloc = fe_pb_allocator(ctx);
    mp = onnx__model_proto__unpack(&alloc, len, data);
    if (!mp)
        st = ctx->n_errors > errors_before
                 ? OCT_EINTERNAL
                 : oct_error(ctx, OCT_EINPUT,
                             "not a valid ONNX model (protobuf decoding "
                             "failed)");
unpacked:
    if (owner == BUF_OCT_MALLOC)
        oct_free(ctx, data, len ? len : 1);
    else if (owner == BUF_MMAP)
        munmap(data, len);
    if (st)
        return st;
    loader ld = {.ctx = ctx,
                 .src = {base_dir ? ir_strdup(ctx, base_dir) : NULL,
                         opts && opts->allow_external_data, "initializer"}};
    if (base_dir && !ld.src.base_dir)
        return OCT_EINTERNAL;
    return load_model(&ld, mp, out);
}

oct_status fe_load_memory(oct_ctx *ctx, const void *data, size_t len,
                          const char *name, const char *base_dir,
                          const fe_load_opts *opts, ir_model **out)
{
    return load_buffer(ctx, (uint8_t *)data, len, BUF_CALLER, name, base_dir,
                       opts, out);
}

oct_status fe_load_file(oct_ctx *ctx, const char *path,
                        const fe_load_opts *opts, ir_model **out)
{
    bool is_stdin = !strcmp(path, "-");
    ctx->cur_file = NULL;
    ir_note_input(ctx, path);
    char *base_dir = NULL;
    if (!is_stdin) {
        const char *slash = strrchr(path, '/');
        base_dir = slash ? ir_strndup(ctx, path, (size_t)(slash - path) + 1)
                         : ir_strdup(ctx, ".");
        if (!base_dir)
            return OCT_EINTERNAL;
    }
    /* A non-empty regular file within the size limit is mapped (page-cache
     * pages: no copy, no zero-filled anonymous memory); anything else is
     * read through ir_read_file, which reports what is wrong. */
    struct stat sb;
    int fd = is_stdin ? -1 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
        sb.st_size > 0 && (uint64_t)sb.st_size <= ctx->limits.max_file_bytes) {
        size_t len = (size_t)sb.st_size;
        void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        close(fd);
        if (map != MAP_FAILED)
            return load_buffer(ctx, map, len, BUF_MMAP, path, base_dir, opts,
                               out);
    } else if (fd >= 0) {
        close(fd);
    }
    uint8_t *data;
    size_t len;
    oct_status st = ir_read_file(ctx, path, ctx->limits.max_file_bytes, &data,
                                 &len);
    if (st)
        return st;
    return load_buffer(ctx, data, len, BUF_OCT_MALLOC,
                       is_stdin ? "<stdin>" : path, base_dir, opts, out);
}
