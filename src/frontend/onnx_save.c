/*
 * onnx_save.c: IR -> ModelProto.  The protobuf-c messages are built in the
 * context's arena and point at IR memory (names, dims, tensor data), so the
 * only copy of the tensor data is protobuf-c's pack into the output buffer.
 * Opaque sub-messages (subgraphs, non-tensor types, sparse initializers,
 * annotations, functions, training info) are written back verbatim as
 * length-delimited fields with their original field numbers, and unknown
 * fields (ir_extra) after them.  External tensor data is written inline as
 * raw_data.  Empty strings are omitted (absent and "" mean the same in
 * ONNX).
 */
#include <string.h>

#include "frontend/fe_internal.h"

/* Field numbers of the sub-messages the IR keeps serialized (onnx.proto). */
enum {
    F_MODEL_TRAINING_INFO = 20, F_MODEL_FUNCTIONS = 25,
    F_GRAPH_QUANT_ANNOTATION = 14, F_GRAPH_SPARSE_INIT = 15,
    F_ATTR_G = 6, F_ATTR_GRAPHS = 11, F_ATTR_TP = 14, F_ATTR_TYPE_PROTOS = 15,
    F_ATTR_SPARSE_TENSOR = 22, F_ATTR_SPARSE_TENSORS = 23,
    F_VALUE_INFO_TYPE = 2,
};

static char *opt_str(const char *s) { return s && *s ? (char *)s : NULL; }

/* Allocates an arena message of the descriptor's type, initialised to its
 * defaults; NULL on allocation failure. */
static void *new_msg(oct_ctx *ctx, const ProtobufCMessageDescriptor *desc)
{
    void *m = ir_alloc(ctx, desc->sizeof_message);
    if (m)
        protobuf_c_message_init(desc, m);
    return m;
}

static oct_status add_raw_list(oct_ctx *ctx, ProtobufCMessage *msg,
                               uint32_t tag, const ir_blob *blobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        oct_status st = fe_add_raw_field(ctx, msg, tag, &blobs[i]);
        if (st)
            return st;
    }
    return OCT_OK;
}

static oct_status encode_tensor(oct_ctx *ctx, const ir_tensor *t,
                                Onnx__TensorProto **out)
{
    *out = new_msg(ctx, &onnx__tensor_proto__descriptor);
    return *out ? fe_tensor_encode(ctx, t, *out) : OCT_EINTERNAL;
}

static oct_status encode_type(oct_ctx *ctx, const ir_type *ty,
                              Onnx__ValueInfoProto *vi)
{
    if (ty->opaque.data)
        return fe_add_raw_field(ctx, &vi->base, F_VALUE_INFO_TYPE, &ty->opaque);
    Onnx__TypeProto *tp = new_msg(ctx, &onnx__type_proto__descriptor);
    Onnx__TypeProto__Tensor *tt =
        new_msg(ctx, &onnx__type_proto__tensor__descriptor);
    if (!tp || !tt)
        return OCT_EINTERNAL;
    tp->denotation = opt_str(ty->denotation);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = ty->has_elem_type || ty->dtype != IR_DT_UNDEFINED;
    tt->elem_type = (int32_t)ty->dtype;
    vi->type = tp;
    if (ty->rank < 0)
        return OCT_OK;
    Onnx__TensorShapeProto *sh =
        new_msg(ctx, &onnx__tensor_shape_proto__descriptor);
    if (!sh)
        return OCT_EINTERNAL;
    tt->shape = sh;
    sh->n_dim = (size_t)ty->rank;
    sh->dim = ir_alloc_array(ctx, sh->n_dim + 1, sizeof *sh->dim);
    if (!sh->dim)
        return OCT_EINTERNAL;
    for (int i = 0; i < ty->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d =
            new_msg(ctx, &onnx__tensor_shape_proto__dimension__descriptor);
        if (!d)
            return OCT_EINTERNAL;
        const ir_dim *in = &ty->dims[i];
        d->denotation = opt_str(in->denotation);
        if (in->value >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = in->value;
        } else if (in->param) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = (char *)in->param;
        }
        sh->dim[i] = d;
    }
    return OCT_OK;
}

static oct_status encode_values(oct_ctx *ctx, ir_value *const *vals, size_t n,
                                Onnx__ValueInfoProto ***out)
{
    *out = ir_alloc_array(ctx, n + 1, sizeof **out);
    if (!*out)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < n; i++) {
        const ir_value *v = vals[i];
        Onnx__ValueInfoProto *vi =
            new_msg(ctx, &onnx__value_info_proto__descriptor);
        if (!vi)
            return OCT_EINTERNAL;
        vi->name = (char *)v->name;
        vi->doc_string = opt_str(v->doc);
        oct_status st = v->has_type ? encode_type(ctx, &v->type, vi) : OCT_OK;
        if (st || (st = fe_extra_to_pb(ctx, &v->extra, &vi->base)))
            return st;
        (*out)[i] = vi;
    }
    return OCT_OK;
}

static oct_status encode_attr(oct_ctx *ctx, const ir_attr *a,
                              Onnx__AttributeProto **out)
{
    Onnx__AttributeProto *p =
        new_msg(ctx, &onnx__attribute_proto__descriptor);
    if (!p)
        return OCT_EINTERNAL;
    *out = p;
    p->name = (char *)a->name;
    p->ref_attr_name = opt_str(a->ref_attr_name);
    p->doc_string = opt_str(a->doc);
    p->has_type = 1;
    p->type = (Onnx__AttributeProto__AttributeType)a->type;
    oct_status st = OCT_OK;
    switch (a->type) {
    case IR_ATTR_FLOAT: p->has_f = 1; p->f = a->f; break;
    case IR_ATTR_INT: p->has_i = 1; p->i = a->i; break;
    case IR_ATTR_STRING:
        p->has_s = 1;
        p->s = (ProtobufCBinaryData){a->s.len, a->s.data};
        break;
    case IR_ATTR_TENSOR: st = encode_tensor(ctx, a->t, &p->t); break;
    case IR_ATTR_GRAPH: st = fe_add_raw_field(ctx, &p->base, F_ATTR_G, &a->g); break;
    case IR_ATTR_SPARSE_TENSOR:
        st = fe_add_raw_field(ctx, &p->base, F_ATTR_SPARSE_TENSOR, &a->g);
        break;
    case IR_ATTR_TYPE_PROTO:
        st = fe_add_raw_field(ctx, &p->base, F_ATTR_TP, &a->g);
        break;
    case IR_ATTR_FLOATS: p->n_floats = a->n; p->floats = a->floats; break;
    case IR_ATTR_INTS: p->n_ints = a->n; p->ints = a->ints; break;
    case IR_ATTR_STRINGS:
        p->strings = ir_alloc_array(ctx, a->n + 1, sizeof *p->strings);
        if (!p->strings)
            return OCT_EINTERNAL;
        for (size_t i = 0; i < a->n; i++)
            p->strings[i] = (ProtobufCBinaryData){a->strings[i].len,
                                                  a->strings[i].data};
        p->n_strings = a->n;
        break;
    case IR_ATTR_TENSORS:
        p->tensors = ir_alloc_array(ctx, a->n + 1, sizeof *p->tensors);
        if (!p->tensors)
            return OCT_EINTERNAL;
        for (size_t i = 0; i < a->n && !st; i++)
            st = encode_tensor(ctx, a->tensors[i], &p->tensors[i]);
        p->n_tensors = a->n;
        break;
    case IR_ATTR_GRAPHS:
        st = add_raw_list(ctx, &p->base, F_ATTR_GRAPHS, a->blobs, a->n);
        break;
    case IR_ATTR_SPARSE_TENSORS:
        st = add_raw_list(ctx, &p->base, F_ATTR_SPARSE_TENSORS, a->blobs, a->n);
        break;
    case IR_ATTR_TYPE_PROTOS:
        st = add_raw_list(ctx, &p->base, F_ATTR_TYPE_PROTOS, a->blobs, a->n);
        break;
    default:
        break;
    }
    return st ? st : fe_extra_to_pb(ctx, &a->extra, &p->base);
}

/* Name of a node input/output; NULL (omitted optional) becomes "". */
static char *io_name(const ir_value *v) { return v ? (char *)v->name : ""; }

static oct_status encode_node(oct_ctx *ctx, const ir_node *n,
                              Onnx__NodeProto **out)
{
    Onnx__NodeProto *p = new_msg(ctx, &onnx__node_proto__descriptor);
    if (!p)
        return OCT_EINTERNAL;
    *out = p;
    p->op_type = (char *)n->op_type;
    p->domain = opt_str(n->domain);
    p->name = opt_str(n->name);
    p->doc_string = opt_str(n->doc);
    p->input = ir_alloc_array(ctx, (size_t)n->n_in + 1, sizeof *p->input);
    p->output = ir_alloc_array(ctx, (size_t)n->n_out + 1, sizeof *p->output);
    p->attribute = ir_alloc_array(ctx, (size_t)n->n_attr + 1,
                                  sizeof *p->attribute);
    if (!p->input || !p->output || !p->attribute)
        return OCT_EINTERNAL;
    for (int i = 0; i < n->n_in; i++)
        p->input[i] = io_name(n->in[i]);
    for (int i = 0; i < n->n_out; i++)
        p->output[i] = io_name(n->out[i]);
    p->n_input = (size_t)n->n_in;
    p->n_output = (size_t)n->n_out;
    p->n_attribute = (size_t)n->n_attr;
    for (int i = 0; i < n->n_attr; i++) {
        oct_status st = encode_attr(ctx, &n->attrs[i], &p->attribute[i]);
        if (st)
            return st;
    }
    return fe_extra_to_pb(ctx, &n->extra, &p->base);
}

static oct_status encode_graph(oct_ctx *ctx, const ir_graph *g,
                               Onnx__GraphProto **out)
{
    Onnx__GraphProto *p = new_msg(ctx, &onnx__graph_proto__descriptor);
    if (!p)
        return OCT_EINTERNAL;
    *out = p;
    p->name = opt_str(g->name);
    p->doc_string = opt_str(g->doc);
    p->node = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *p->node);
    p->initializer = ir_alloc_array(ctx, g->n_inits + 1, sizeof *p->initializer);
    if (!p->node || !p->initializer)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    for (size_t i = 0; i < g->n_nodes && !st; i++)
        st = encode_node(ctx, g->nodes[i], &p->node[i]);
    p->n_node = g->n_nodes;
    for (size_t i = 0; i < g->n_inits && !st; i++) {
        st = encode_tensor(ctx, g->inits[i]->init, &p->initializer[i]);
        if (!st) /* the value's name is authoritative (passes may rename) */
            p->initializer[i]->name = (char *)g->inits[i]->name;
    }
    p->n_initializer = g->n_inits;
    if (st || (st = encode_values(ctx, g->inputs, g->n_inputs, &p->input)) ||
        (st = encode_values(ctx, g->outputs, g->n_outputs, &p->output)) ||
        (st = encode_values(ctx, g->value_info, g->n_value_info,
                            &p->value_info)))
        return st;
    p->n_input = g->n_inputs;
    p->n_output = g->n_outputs;
    p->n_value_info = g->n_value_info;
    if ((st = add_raw_list(ctx, &p->base, F_GRAPH_QUANT_ANNOTATION,
                           g->quant_annotations, g->n_quant_annotations)) ||
        (st = add_raw_list(ctx, &p->base, F_GRAPH_SPARSE_INIT, g->sparse_inits,
                           g->n_sparse_inits)))
        return st;
    return fe_extra_to_pb(ctx, &g->extra, &p->base);
}

oct_status fe_model_encode(oct_ctx *ctx, const ir_model *m,
                           Onnx__ModelProto **out)
{
    Onnx__ModelProto *p = new_msg(ctx, &onnx__model_proto__descriptor);
    if (!p)
        return OCT_EINTERNAL;
    *out = p;
    p->has_ir_version = 1;
    p->ir_version = m->ir_version;
    p->producer_name = opt_str(m->producer_name);
    p->producer_version = opt_str(m->producer_version);
    p->domain = opt_str(m->domain);
    p->doc_string = opt_str(m->doc);
    p->has_model_version = m->has_model_version;
    p->model_version = m->model_version;
    p->opset_import = ir_alloc_array(ctx, m->n_opsets + 1, sizeof *p->opset_import);
    p->metadata_props = ir_alloc_array(ctx, m->n_metadata + 1,
                                       sizeof *p->metadata_props);
    if (!p->opset_import || !p->metadata_props)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < m->n_opsets; i++) {
        Onnx__OperatorSetIdProto *o = new_msg(ctx, &onnx__operator_set_id_proto__descriptor);
        if (!o)
            return OCT_EINTERNAL;
        o->domain = (char *)(m->opsets[i].domain ? m->opsets[i].domain : "");
        o->has_version = 1;
        o->version = m->opsets[i].version;
        p->opset_import[i] = o;
    }
    p->n_opset_import = m->n_opsets;
    for (size_t i = 0; i < m->n_metadata; i++) {
        Onnx__StringStringEntryProto *kv = new_msg(ctx, &onnx__string_string_entry_proto__descriptor);
        if (!kv)
            return OCT_EINTERNAL;
        kv->key = (char *)m->metadata[i].key;
        kv->value = (char *)m->metadata[i].value;
        p->metadata_props[i] = kv;
    }
    p->n_metadata_props = m->n_metadata;
    oct_status st = m->graph ? encode_graph(ctx, m->graph, &p->graph) : OCT_OK;
    if (st ||
        (st = add_raw_list(ctx, &p->base, F_MODEL_TRAINING_INFO,
                           m->training_info, m->n_training_info)) ||
        (st = add_raw_list(ctx, &p->base, F_MODEL_FUNCTIONS, m->functions,
                           m->n_functions)))
        return st;
    return fe_extra_to_pb(ctx, &m->extra, &p->base);
}

oct_status fe_save_memory(oct_ctx *ctx, const ir_model *m, uint8_t **data,
                          size_t *len)
{
    Onnx__ModelProto *p;
    oct_status st = fe_model_encode(ctx, m, &p);
    if (st)
        return st;
    size_t n = onnx__model_proto__get_packed_size(p);
    if (n > ctx->limits.max_file_bytes)
        return oct_error(ctx, OCT_EINPUT,
                         "the encoded model is %zu bytes, over the limit of "
                         "%llu bytes (max_file_bytes)",
                         n, (unsigned long long)ctx->limits.max_file_bytes);
    uint8_t *buf = oct_malloc(ctx, n ? n : 1);
    if (!buf)
        return OCT_EINTERNAL;
    size_t packed = onnx__model_proto__pack(p, buf);
    OCT_ASSERT(packed == n);
    *data = buf;
    *len = n;
    return OCT_OK;
}

oct_status fe_save_file(oct_ctx *ctx, const ir_model *m, const char *path)
{
    uint8_t *data;
    size_t len;
    oct_status st = fe_save_memory(ctx, m, &data, &len);
    if (st)
        return st;
    st = ir_write_atomic(ctx, path, data, len);
    oct_free(ctx, data, len ? len : 1);
    return st;
}
