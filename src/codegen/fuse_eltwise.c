/*
 * fuse_eltwise.c: runs of element-wise nodes lowered as one loop.
 *
 * A quantized model keeps float islands between exact Q/DQ pairs (a
 * HardSwish written as Add, Clip, Div and Mul between a DequantizeLinear
 * and a QuantizeLinear, say): lowered node by node, every step reads and
 * writes a whole float tensor.  A run of consecutive nodes that all work
 * element by element on one shape, each reading a value of the run before
 * it, becomes one loop over the elements instead: values only the run
 * reads stay in registers and get no memory; the others are stored as
 * before.  Every element goes through the instructions of the node
 * lowerings (cg_*_elem), so the bits are the same.
 *
 * The memory plan counts each node of a run as the run's whole span
 * (cg_plan_memory), so nothing the run reads is overwritten before the
 * loop reads it.  Graph outputs, and so the values calibration observes,
 * are always stored.
 */
#include <string.h>

#include "codegen.h"

enum { RUN_MAX = 64 }; /* nodes in one run */

static bool same_dims(const cg_tensor *a, const cg_tensor *b)
{
    if (a->rank != b->rank)
        return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d])
            return false;
    return true;
}

static bool is_q8(ir_dtype dt)
{
    return dt == IR_DT_INT8 || dt == IR_DT_UINT8;
}

/* Input i of n as tens entry (NULL if absent or without a static shape). */
static const cg_tensor *input(const ir_node *n, int i, const cg_tensor *tens)
{
    if (i >= n->n_in || !n->in[i] || !tens[n->in[i]->id].value)
        return NULL;
    return &tens[n->in[i]->id];
}

/* A float operand: the output's shape, or a single element. */
static bool operand_ok(const cg_tensor *x, const cg_tensor *y)
{
    return x && x->dtype == IR_DT_FLOAT && (same_dims(x, y) || x->nelems == 1);
}

/* Whether node n computes its output element by element in a way the fused
 * loop reproduces (the checks its own lowering would make pass). */
static bool fusable(const ir_node *n, const cg_tensor *tens, int opset)
{
    if (n->n_out < 1 || !n->out[0] || !n->out[0]->name[0] || !tens[n->out[0]->id].value)
        return false;
    for (int i = 1; i < n->n_out; i++)
        if (n->out[i] && n->out[i]->name[0])
            return false;
    const cg_tensor *y = &tens[n->out[0]->id], *x = input(n, 0, tens);
    if (!x || y->nelems == 0)
        return false;
    switch (n->op) {
    case IR_OP_DEQUANTIZELINEAR:
    case IR_OP_QUANTIZELINEAR: {
        bool dq = n->op == IR_OP_DEQUANTIZELINEAR;
        const cg_tensor *s = input(n, 1, tens), *z = input(n, 2, tens);
        const cg_tensor *q = dq ? x : y, *fl = dq ? y : x;
        if (!is_q8(q->dtype) || fl->dtype != IR_DT_FLOAT || !same_dims(x, y))
            return false;
        if (!s || s->dtype != IR_DT_FLOAT || s->nelems != 1 ||
            ir_attr_int(n, "block_size", 0) != 0)
            return false;
        if (n->n_in > 2 && n->in[2] && (!z || z->dtype != q->dtype || z->nelems != 1))
            return false;
        return true;
    }
    case IR_OP_ADD:
    case IR_OP_SUB:
    case IR_OP_MUL:
    case IR_OP_DIV:
        if (ir_attr_int(n, "broadcast", 0) && ir_node_attr(n, "axis"))
            return false;
        return y->dtype == IR_DT_FLOAT && operand_ok(x, y) && operand_ok(input(n, 1, tens), y) &&
               (same_dims(x, y) || same_dims(input(n, 1, tens), y));
    case IR_OP_CLIP:
        if (x->dtype != IR_DT_FLOAT || y->dtype != IR_DT_FLOAT || !same_dims(x, y))
            return false;
        for (int k = 1; opset >= 11 && k < 3; k++)
            if (n->n_in > k && n->in[k]) {
                const cg_tensor *b = input(n, k, tens);
                if (!b || b->dtype != IR_DT_FLOAT || b->nelems != 1)
                    return false;
            }
        return true;
    case IR_OP_RELU:
    case IR_OP_LEAKYRELU:
    case IR_OP_HARDSWISH:
    case IR_OP_NEG:
    case IR_OP_ABS:
        return x->dtype == IR_DT_FLOAT && y->dtype == IR_DT_FLOAT && same_dims(x, y);
    default:
        return false;
    }
}

/* Whether n reads a value made by a node in [lo, k). */
static bool reads_run(const ir_graph *g, const ir_node *n, int lo, int k)
{
    for (int i = 0; i < n->n_in; i++)
        for (int j = lo; j < k; j++)
            if (n->in[i] && g->nodes[j]->out[0] == n->in[i])
                return true;
    return false;
}

oct_status cg_plan_fusion(oct_ctx *ctx, const ir_graph *g, int opset, cg_tensor *tens,
                          int (*span)[2])
{
    int n_nodes = (int)g->n_nodes;
    for (int k = 0; k < n_nodes; k++)
        span[k][0] = span[k][1] = k;
    int *uses = ir_alloc_array(ctx, g->n_values ? g->n_values : 1, sizeof *uses);
    if (!uses)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < g->n_outputs; i++)
        uses[g->outputs[i]->id] += 1 << 20; /* graph outputs are always stored */
    for (int k = 0; k < n_nodes; k++)
        for (int i = 0; i < g->nodes[k]->n_in; i++)
            if (g->nodes[k]->in[i])
                uses[g->nodes[k]->in[i]->id]++;
    for (int lo = 0; lo < n_nodes;) {
        int hi = lo;
        if (fusable(g->nodes[lo], tens, opset)) {
            const cg_tensor *y0 = &tens[g->nodes[lo]->out[0]->id];
            while (hi + 1 < n_nodes && hi + 1 - lo < RUN_MAX) {
                const ir_node *n = g->nodes[hi + 1];
                if (!fusable(n, tens, opset) || !same_dims(&tens[n->out[0]->id], y0) ||
                    !reads_run(g, n, lo, hi + 1))
                    break;
                hi++;
            }
        }
        for (int k = lo; k <= hi; k++) {
            span[k][0] = lo;
            span[k][1] = hi;
        }
        if (hi > lo) {
            /* values whose every read is inside the run */
            for (int k = lo; k <= hi; k++) {
                const ir_value *v = g->nodes[k]->out[0];
                int inside = 0;
                for (int j = lo; j <= hi; j++)
                    for (int i = 0; i < g->nodes[j]->n_in; i++)
                        inside += g->nodes[j]->in[i] == v;
                tens[v->id].fused = inside > 0 && inside == uses[v->id];
            }
        }
        lo = hi + 1;
    }
    return OCT_OK;
}

/* What a node of the run needs, computed before the loop so that the loop
 * body holds no loads of buffer addresses (the vectorizer needs them
 * invariant): the address of each tensor operand, single-element operands
 * as scalars, quantization parameters and Clip bounds. */
typedef struct run_node_prep {
    LLVMValueRef ptr[2], scalar[2];  /* inputs 0 and 1 read from memory */
    bool wide[2];                    /* input is 8-bit, read widened (DQ) */
    LLVMValueRef out;                /* NULL: fused, not stored */
    LLVMValueRef sv, zv, zf;         /* Q/DQ: scale, zero point (wide, float) */
    LLVMValueRef bound[2];           /* Clip */
} run_node_prep;

typedef struct run_state {
    const ir_value *ids[RUN_MAX];
    LLVMValueRef vals[RUN_MAX];
    run_node_prep prep[RUN_MAX];
    int n;
    LLVMValueRef i;
} run_state;

static bool made_in_run(const ir_graph *g, int lo, int k, const ir_value *v)
{
    for (int j = lo; j < k; j++)
        if (g->nodes[j]->out[0] == v)
            return true;
    return false;
}

static oct_status prepare(cg_fn *f, const ir_graph *g, int lo, int k, run_node_prep *p)
{
    const ir_node *n = g->nodes[k];
    memset(p, 0, sizeof *p);
    int n_data = n->op == IR_OP_ADD || n->op == IR_OP_SUB || n->op == IR_OP_MUL ||
                         n->op == IR_OP_DIV
                     ? 2
                     : 1;
    for (int i = 0; i < n_data; i++) {
        const ir_value *v = n->in[i];
        p->wide[i] = n->op == IR_OP_DEQUANTIZELINEAR;
        if (made_in_run(g, lo, k, v))
            continue;
        cg_tensor *t = &f->tens[v->id];
        p->ptr[i] = cg_ptr(f, t);
        if (t->nelems == 1)
            p->scalar[i] = p->wide[i] ? cg_load_wide(f, t, p->ptr[i], cg_i64c(f, 0))
                                      : cg_load(f, f->f32, p->ptr[i], cg_i64c(f, 0));
    }
    cg_tensor *y = cg_out(f, n, 0);
    if (!y->fused)
        p->out = cg_ptr(f, y);
    if (n->op == IR_OP_DEQUANTIZELINEAR || n->op == IR_OP_QUANTIZELINEAR) {
        cg_tensor *z = cg_in(f, n, 2);
        p->sv = cg_load(f, f->f32, cg_ptr(f, cg_in(f, n, 1)), cg_i64c(f, 0));
        ir_dtype qt = n->op == IR_OP_DEQUANTIZELINEAR ? cg_in(f, n, 0)->dtype : y->dtype;
        p->zv = z ? cg_load_wide(f, z, cg_ptr(f, z), cg_i64c(f, 0))
                  : LLVMConstInt(cg_wide_type(f, qt), 0, 0);
        p->zf = z ? LLVMBuildSIToFP(f->b, p->zv, f->f32, "") : cg_f32c(f, 0);
    }
    if (n->op == IR_OP_CLIP)
        return cg_clip_bounds(f, n, p->bound);
    return OCT_OK;
}

/* Data input i of the node prepared as p, on element rs->i. */
static LLVMValueRef operand(cg_fn *f, run_state *rs, const run_node_prep *p, const ir_value *v,
                            int i)
{
    if (p->scalar[i])
        return p->scalar[i];
    cg_tensor *t = &f->tens[v->id];
    if (p->ptr[i])
        return p->wide[i] ? cg_load_wide(f, t, p->ptr[i], rs->i)
                          : cg_load(f, f->f32, p->ptr[i], rs->i);
    for (int k = 0; k < rs->n; k++)
        if (rs->ids[k] == v) {
            if (!p->wide[i])
                return rs->vals[k];
            /* an 8-bit value the run quantized, widened as cg_load_wide does */
            return cg_widen(f, t->dtype, rs->vals[k]);
        }
    return NULL;
}

/* Node n on element rs->i. */
static LLVMValueRef run_node(cg_fn *f, run_state *rs, const ir_node *n, const run_node_prep *p)
{
    switch (n->op) {
    case IR_OP_DEQUANTIZELINEAR:
        return cg_dequantize_elem(f, operand(f, rs, p, n->in[0], 0), p->zv, p->sv);
    case IR_OP_QUANTIZELINEAR: {
        bool sgn = cg_out(f, n, 0)->dtype == IR_DT_INT8;
        return cg_quantize_elem(f, operand(f, rs, p, n->in[0], 0), p->sv, p->zf, sgn ? -128 : 0,
                                sgn ? 127 : 255);
    }
    case IR_OP_ADD:
    case IR_OP_SUB:
    case IR_OP_MUL:
    case IR_OP_DIV:
        return cg_binary_elem(f, n->op, operand(f, rs, p, n->in[0], 0),
                              operand(f, rs, p, n->in[1], 1));
    case IR_OP_CLIP:
        return cg_clip_elem(f, operand(f, rs, p, n->in[0], 0), p->bound[0], p->bound[1]);
    default:
        return cg_unary_elem(f, n, operand(f, rs, p, n->in[0], 0));
    }
}

oct_status cg_lower_run(cg_fn *f, const ir_graph *g, int lo, int hi)
{
    run_state *rs = ir_alloc(f->ctx, sizeof *rs); /* zeroed, freed with the context */
    if (!rs)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    for (int k = lo; k <= hi && st == OCT_OK; k++)
        st = prepare(f, g, lo, k, &rs->prep[k - lo]);
    if (st == OCT_OK) {
        cg_loop l;
        rs->i = cg_loop_begin(f, &l, (int64_t)cg_out(f, g->nodes[lo], 0)->nelems);
        for (int k = lo; k <= hi && st == OCT_OK; k++) {
            const ir_node *n = g->nodes[k];
            const run_node_prep *p = &rs->prep[k - lo];
            LLVMValueRef v = run_node(f, rs, n, p);
            if (!v) {
                st = oct_node_error(f->ctx, OCT_EINTERNAL, n, "compile: %s cannot be fused",
                                    n->op_type);
                break;
            }
            if (p->out)
                cg_store(f, cg_out(f, n, 0)->dtype == IR_DT_FLOAT ? f->f32 : f->i8, p->out,
                         rs->i, v);
            rs->ids[rs->n] = n->out[0];
            rs->vals[rs->n++] = v;
        }
        cg_loop_end(f, &l);
    }
    return st;
}
