/*
 * ref_fixture.h: what the unit tests of tests/ref_movement share: a node
 * built by hand in a context of its own (make_node, attributes, input
 * tensors), its shape rule and reference kernel run as the interpreter
 * runs them (run) or the shape rule alone on partly unknown inputs
 * (infer), and checks of the results.  Include after <cmocka.h>.
 */
#ifndef OCTET_TESTS_REF_FIXTURE_H
#define OCTET_TESTS_REF_FIXTURE_H

#include <math.h>
#include <string.h>

#include "ref/ref.h"

typedef oct_status (*shape_fn)(ops_infer *);
typedef oct_status (*kernel_fn)(ref_call *);

typedef struct fixture {
    oct_ctx *ctx;
    ir_graph *g;
    ir_node *node;
    ir_tensor *owned[32]; /* runtime tensors to free */
    int n_owned;
} fixture;

static inline ir_tensor *own(fixture *f, ir_tensor *t)
{
    assert_non_null(t);
    assert_true(f->n_owned < 32);
    f->owned[f->n_owned++] = t;
    return t;
}

/* Frees the fixture's tensors and context. */
static inline void done(fixture *f)
{
    for (int i = 0; i < f->n_owned; i++)
        ir_heap_tensor_free(f->ctx, f->owned[i]);
    oct_ctx_free(f->ctx);
}

static inline ir_node *make_node(fixture *f, const char *op, int n_in, int n_out)
{
    f->ctx = oct_ctx_new();
    f->n_owned = 0;
    f->g = ir_graph_new(f->ctx);
    f->node = ir_graph_add_node(f->ctx, f->g, op, "", "n0", n_in, n_out);
    char name[16];
    for (int i = 0; i < n_in; i++) {
        snprintf(name, sizeof name, "in%d", i);
        f->node->in[i] = ir_graph_value(f->ctx, f->g, name);
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof name, "out%d", i);
        ir_node_set_output(f->node, i, ir_graph_value(f->ctx, f->g, name));
    }
    return f->node;
}

static inline ir_attr *add_attr(fixture *f, const char *name, ir_attr_type type)
{
    ir_node *n = f->node;
    ir_attr *a = ir_alloc_array(f->ctx, (size_t)n->n_attr + 1, sizeof *a);
    if (n->n_attr)
        memcpy(a, n->attrs, (size_t)n->n_attr * sizeof *a);
    n->attrs = a;
    a = &n->attrs[n->n_attr++];
    a->name = ir_strdup(f->ctx, name);
    a->type = type;
    return a;
}

static inline void attr_int(fixture *f, const char *name, int64_t v)
{
    add_attr(f, name, IR_ATTR_INT)->i = v;
}

static inline void attr_ints(fixture *f, const char *name, const int64_t *v, size_t n)
{
    ir_attr *a = add_attr(f, name, IR_ATTR_INTS);
    a->n = n;
    a->ints = ir_alloc_array(f->ctx, n + 1, sizeof(int64_t));
    memcpy(a->ints, v, n * sizeof(int64_t));
}

static inline ir_tensor *tensor(fixture *f, ir_dtype dt, int rank, const int64_t *dims,
                                const void *data)
{
    ir_tensor *t = own(f, ir_heap_tensor_new(f->ctx, dt, rank, dims));
    if (data && t->nbytes)
        memcpy(t->data, data, t->nbytes);
    return t;
}

/* Runs shape rule then kernel with every input known (as the interpreter
 * does); allocates the outputs.  Returns the first failing status. */
static inline oct_status run(fixture *f, int64_t opset, shape_fn sf, kernel_fn kf,
                             const ir_tensor **in, ir_tensor **out)
{
    int n_in = f->node->n_in, n_out = f->node->n_out;
    ops_shape ins[8], outs[8];
    memset(outs, 0, sizeof outs);
    for (int i = 0; i < n_in; i++) {
        if (in[i])
            ops_shape_of(in[i], &ins[i]);
        else {
            memset(&ins[i], 0, sizeof ins[i]);
            ins[i].rank = -1;
        }
    }
    ops_infer inf = {.ctx = f->ctx, .node = f->node, .opset = opset,
                     .n_in = n_in, .in = ins, .in_const = in,
                     .n_out = n_out, .out = outs};
    oct_status st = sf(&inf);
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < n_out; i++) {
        out[i] = own(f, ir_heap_tensor_new(f->ctx, outs[i].dtype, outs[i].rank,
                                       outs[i].dims));
    }
    ref_call call = {.ctx = f->ctx, .node = f->node, .opset = opset,
                     .n_in = n_in, .in = in, .n_out = n_out,
                     .out = (ir_tensor *const *)out};
    return kf(&call);
}

/* Static shape inference with some inputs unknown. */
static inline oct_status infer(fixture *f, int64_t opset, shape_fn sf,
                               const ops_shape *ins, const ir_tensor **consts,
                               ops_shape *outs)
{
    ops_infer inf = {.ctx = f->ctx, .node = f->node, .opset = opset,
                     .n_in = f->node->n_in, .in = ins, .in_const = consts,
                     .n_out = f->node->n_out, .out = outs};
    return sf(&inf);
}

static inline void assert_dims(const ir_tensor *t, int rank, const int64_t *dims)
{
    assert_int_equal(t->rank, rank);
    for (int k = 0; k < rank; k++)
        assert_int_equal(t->dims[k], dims[k]);
}

static inline void assert_floats(const ir_tensor *t, const float *want, size_t n)
{
    assert_int_equal(t->nelems, n);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(((const float *)t->data)[i] - want[i]) <=
                    1e-5f * (1 + fabsf(want[i])));
}

static inline const oct_diag *last_diag(fixture *f)
{
    size_t n = oct_diag_count(f->ctx);
    assert_true(n > 0);
    return oct_diag_get(f->ctx, n - 1);
}

#endif
