/*
 * ref_test_util.h: helpers shared by the ref_conv unit tests: a seeded
 * random generator, hand-built tensors and nodes, running a node's shape
 * rule then kernel, tolerance checks and diagnostic checks.
 */
#ifndef OCTET_TESTS_REF_TEST_UTIL_H
#define OCTET_TESTS_REF_TEST_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ir/ir.h"
#include "ref/ref.h"
#include "ref/sgemm.h"

/* ---- helpers ------------------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static inline uint32_t rng_next(rng *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(r->s >> 33);
}
static inline int rng_int(rng *r, int lo, int hi) /* inclusive */
{
    return lo + (int)(rng_next(r) % (uint32_t)(hi - lo + 1));
}
static inline float rng_float(rng *r)
{
    return (float)rng_next(r) / 2147483648.0f - 1.0f; /* [-1, 1) */
}

static inline ir_tensor *tensor_new(oct_ctx *ctx, ir_dtype dt, int rank,
                             const int64_t *dims)
{
    ir_tensor *t = ir_alloc(ctx, sizeof *t);
    assert_non_null(t);
    t->dtype = dt;
    t->rank = rank;
    t->dims = ir_alloc_array(ctx, (size_t)(rank ? rank : 1), sizeof(int64_t));
    uint64_t n = 1;
    for (int i = 0; i < rank; i++) {
        t->dims[i] = dims[i];
        n *= (uint64_t)dims[i];
    }
    t->nelems = n;
    t->nbytes = n * (ir_dtype_info(dt)->bits / 8);
    t->data = ir_alloc(ctx, t->nbytes ? t->nbytes : 1);
    assert_non_null(t->data);
    return t;
}

static inline ir_tensor *tensor_rand(oct_ctx *ctx, rng *r, int rank,
                              const int64_t *dims)
{
    ir_tensor *t = tensor_new(ctx, IR_DT_FLOAT, rank, dims);
    float *p = t->data;
    for (uint64_t i = 0; i < t->nelems; i++)
        p[i] = rng_float(r);
    return t;
}

static inline void set_ints(oct_ctx *ctx, ir_node *n, const char *name,
                     const int64_t *v, int count)
{
    ir_attr *a = &n->attrs[n->n_attr++];
    a->name = ir_strdup(ctx, name);
    a->type = IR_ATTR_INTS;
    a->n = (size_t)count;
    a->ints = ir_alloc_array(ctx, (size_t)(count ? count : 1), sizeof(int64_t));
    memcpy(a->ints, v, (size_t)count * sizeof(int64_t));
}
static inline void set_int(oct_ctx *ctx, ir_node *n, const char *name, int64_t v)
{
    ir_attr *a = &n->attrs[n->n_attr++];
    a->name = ir_strdup(ctx, name);
    a->type = IR_ATTR_INT;
    a->i = v;
}
static inline void set_float(oct_ctx *ctx, ir_node *n, const char *name, float v)
{
    ir_attr *a = &n->attrs[n->n_attr++];
    a->name = ir_strdup(ctx, name);
    a->type = IR_ATTR_FLOAT;
    a->f = v;
}
static inline void set_str(oct_ctx *ctx, ir_node *n, const char *name, const char *s)
{
    ir_attr *a = &n->attrs[n->n_attr++];
    a->name = ir_strdup(ctx, name);
    a->type = IR_ATTR_STRING;
    a->s.data = (uint8_t *)ir_strdup(ctx, s);
    a->s.len = strlen(s);
}

/* A node with n_in named inputs (NULL where present[i] is false), n_out
 * outputs and room for 12 attributes. */
static inline ir_node *node_new(oct_ctx *ctx, ir_graph *g, const char *op, int n_in,
                         int n_out)
{
    ir_node *n = ir_graph_add_node(ctx, g, op, "", "node0", n_in, n_out);
    assert_non_null(n);
    char name[32];
    for (int i = 0; i < n_in; i++) {
        snprintf(name, sizeof name, "%s_in%d_%u", op, i, n->id);
        n->in[i] = ir_graph_value(ctx, g, name);
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof name, "%s_out%d_%u", op, i, n->id);
        ir_node_set_output(n, i, ir_graph_value(ctx, g, name));
    }
    n->attrs = ir_alloc_array(ctx, 12, sizeof(ir_attr));
    return n;
}

/* Runs the node's shape rule on the given tensors (NULL: omitted input),
 * allocates the outputs and runs the kernel.  Returns the shape rule's
 * status (kernel status must be OK when the rule succeeded). */
static inline oct_status run_node(oct_ctx *ctx, ir_node *node, int64_t opset,
                           const ir_tensor **in, int n_in, ir_tensor **out,
                           int n_out)
{
    ops_shape ins[8], outs[4];
    memset(outs, 0, sizeof outs);
    for (int i = 0; i < n_in; i++) {
        if (in[i])
            ops_shape_of(in[i], &ins[i]);
        else {
            memset(&ins[i], 0, sizeof ins[i]);
            ins[i].rank = -1;
        }
    }
    ops_infer inf = {ctx, node, opset, n_in, ins, in, n_out, outs};
    oct_status st = ir_op_info_of(node->op) ? OCT_OK : OCT_EINTERNAL;
    if (node->op == IR_OP_CONV)
        st = ops_shape_conv(&inf);
    else if (node->op == IR_OP_CONVTRANSPOSE)
        st = ops_shape_convtranspose(&inf);
    else if (node->op == IR_OP_GEMM)
        st = ops_shape_gemm(&inf);
    else if (node->op == IR_OP_MATMUL)
        st = ops_shape_matmul(&inf);
    else if (node->op == IR_OP_MAXPOOL || node->op == IR_OP_AVERAGEPOOL)
        st = ops_shape_pool(&inf);
    else
        st = ops_shape_globalpool(&inf);
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < n_out; i++) {
        assert_true(outs[i].rank >= 0);
        for (int d = 0; d < outs[i].rank; d++)
            assert_true(outs[i].dims[d] >= 0);
        out[i] = tensor_new(ctx, outs[i].dtype, outs[i].rank, outs[i].dims);
    }
    ref_call call = {ctx, node, opset, n_in, in, n_out, out};
    oct_status kst;
    if (node->op == IR_OP_CONV)
        kst = ref_conv(&call);
    else if (node->op == IR_OP_CONVTRANSPOSE)
        kst = ref_convtranspose(&call);
    else if (node->op == IR_OP_GEMM)
        kst = ref_gemm(&call);
    else if (node->op == IR_OP_MATMUL)
        kst = ref_matmul(&call);
    else if (node->op == IR_OP_MAXPOOL || node->op == IR_OP_AVERAGEPOOL)
        kst = ref_pool(&call);
    else
        kst = ref_globalpool(&call);
    assert_int_equal(kst, OCT_OK);
    return OCT_OK;
}

/* |got - want| <= tol * scale + 1e-6, scale = the sum of |terms| that
 * made up want (so cancellation does not make the test flaky). */
static inline void assert_close(double got, double want, double scale, double tol,
                         const char *what, uint64_t i)
{
    if (!(fabs(got - want) <= tol * scale + 1e-6)) {
        fprintf(stderr, "%s[%llu]: got %.9g want %.9g (scale %g)\n", what,
                (unsigned long long)i, got, want, scale);
        fail();
    }
}

/* The last diagnostic must be an error naming input `which` of the node. */
static inline void assert_input_diag(oct_ctx *ctx, int which)
{
    size_t n = oct_diag_count(ctx);
    assert_true(n > 0);
    const oct_diag *d = oct_diag_get(ctx, n - 1);
    assert_int_equal(d->severity, OCT_SEV_ERROR);
    assert_string_equal(d->node, "node0");
    assert_int_equal(d->io_is_output, 0);
    assert_int_equal(d->io_index, which);
}
static inline void assert_node_diag(oct_ctx *ctx)
{
    size_t n = oct_diag_count(ctx);
    assert_true(n > 0);
    const oct_diag *d = oct_diag_get(ctx, n - 1);
    assert_int_equal(d->severity, OCT_SEV_ERROR);
    assert_string_equal(d->node, "node0");
}

#endif
