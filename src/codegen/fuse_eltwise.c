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
 * A run whose only varying input is one 8-bit tensor (read by its
 * DequantizeLinear nodes) and whose stored outputs are all 8-bit is a
 * function of one byte: a table run.  The loop then runs over the 256 byte
 * values into a table per stored output, and the kernel octk_lut8 maps the
 * tensor through it (kernels/qlut.c).  Planning a run drops trailing
 * DequantizeLinear nodes when that makes it a table run: their float
 * output is computed by their own loop from the stored bytes.
 *
 * The memory plan counts each node of a run as the run's whole span
 * (cg_plan_memory), so nothing the run reads is overwritten before the
 * loop reads it.  Graph outputs, and so the values calibration observes,
 * are always stored.
 */
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"

enum {
    RUN_MAX = 64,       /* nodes in one run */
    LUT_MIN = 2048,     /* elements for which a table run pays */
};

static bool same_dims(const cg_tensor *a, const cg_tensor *b)
{
    if (a->rank != b->rank)
        return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d] ||
            (a->dyn ? a->sym[d] : -1) != (b->dyn ? b->sym[d] : -1)) /* symdims.h */
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
bool cg_fusable(const ir_node *n, const cg_tensor *tens, int opset)
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
    case IR_OP_CELU: /* alpha 0 is refused by the node's own lowering */
        if (ir_attr_float(n, "alpha", 1.0f) == 0)
            return false;
        /* fall through */
    case IR_OP_RELU:
    case IR_OP_LEAKYRELU:
    case IR_OP_HARDSWISH:
    case IR_OP_NEG:
    case IR_OP_ABS:
    /* float32 element functions of lower_elemgen.c (cg_unary_elem) */
    case IR_OP_ERF: case IR_OP_ROUND: case IR_OP_SIN: case IR_OP_COS: case IR_OP_SIGN:
    case IR_OP_SOFTPLUS: case IR_OP_SOFTSIGN: case IR_OP_ELU: case IR_OP_SELU:
    case IR_OP_THRESHOLDEDRELU: case IR_OP_MISH:
    case IR_OP_TAN: case IR_OP_ASIN: case IR_OP_ACOS: case IR_OP_ATAN: case IR_OP_SINH:
    case IR_OP_COSH: case IR_OP_ASINH: case IR_OP_ACOSH: case IR_OP_ATANH: case IR_OP_SHRINK:
        return x->dtype == IR_DT_FLOAT && y->dtype == IR_DT_FLOAT && same_dims(x, y);
    default:
        return false;
    }
}

/* Inputs of n that are element data (the others are scalar parameters). */
static int data_inputs(const ir_node *n)
{
    return n->op == IR_OP_ADD || n->op == IR_OP_SUB || n->op == IR_OP_MUL || n->op == IR_OP_DIV
               ? 2
               : 1;
}

static bool made_in_run(const ir_graph *g, int lo, int k, const ir_value *v)
{
    for (int j = lo; j < k; j++)
        if (g->nodes[j]->out[0] == v)
            return true;
    return false;
}

/* The 8-bit tensor that run [lo, hi] (fused values marked) is a function
 * of, if it is a table run; NULL if not. */
static const ir_value *lut_input(const ir_graph *g, const cg_tensor *tens, int lo, int hi)
{
    if (hi <= lo || tens[g->nodes[lo]->out[0]->id].nelems < LUT_MIN)
        return NULL;
    const ir_value *x = NULL;
    for (int k = lo; k <= hi; k++) {
        const ir_node *n = g->nodes[k];
        const cg_tensor *y = &tens[n->out[0]->id];
        if (!y->fused && !is_q8(y->dtype))
            return NULL;
        for (int i = 0; i < data_inputs(n); i++) {
            const ir_value *v = n->in[i];
            if (made_in_run(g, lo, k, v) || tens[v->id].nelems == 1)
                continue;
            if (n->op != IR_OP_DEQUANTIZELINEAR || (x && x != v))
                return NULL;
            x = v;
        }
    }
    return x;
}

/* Marks the values of run [lo, h] whose every read is inside that run,
 * and unmarks those of the nodes after it up to hi. */
static void mark_fused(const ir_graph *g, cg_tensor *tens, const int *uses, int lo, int h,
                       int hi)
{
    for (int k = lo; k <= hi; k++) {
        const ir_value *v = g->nodes[k]->out[0];
        if (!v) /* an omitted first output (MaxPool with Indices alone) */
            continue;
        int inside = 0;
        for (int j = lo; j <= h; j++)
            for (int i = 0; i < g->nodes[j]->n_in; i++)
                inside += g->nodes[j]->in[i] == v;
        tens[v->id].fused = k <= h && h > lo && inside > 0 && inside == uses[v->id];
    }
}

/* The last node of the run [lo, hi]: hi, or an earlier one when dropping
 * trailing DequantizeLinear nodes makes a table run.  Marks the fused
 * values of the run it returns. */
static int trim_for_table(const ir_graph *g, cg_tensor *tens, const int *uses, int lo, int hi)
{
    for (int h = hi; h > lo; h--) {
        mark_fused(g, tens, uses, lo, h, hi);
        if (lut_input(g, tens, lo, h))
            return h;
        if (g->nodes[h]->op != IR_OP_DEQUANTIZELINEAR)
            break;
    }
    mark_fused(g, tens, uses, lo, hi, hi);
    return hi;
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

oct_status cg_plan_fusion(oct_ctx *ctx, const ir_graph *g, int opset, bool tables,
                          cg_tensor *tens, int (*span)[2])
{
    int n_nodes = (int)g->n_nodes;
    for (int k = 0; k < n_nodes; k++)
        span[k][0] = span[k][1] = k;
    int *uses = ir_alloc_array(ctx, g->n_values ? g->n_values : 1, sizeof *uses);
    if (!uses)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < g->n_outputs; i++)
        uses[g->outputs[i]->id] += 1 << 20; /* graph outputs are always stored */
    for (size_t v = 0; v < g->n_values; v++) /* so are values a subgraph reads */
        if (g->values[v]->flags & IR_VAL_CAPTURED)
            uses[v] += 1 << 20;
    for (int k = 0; k < n_nodes; k++)
        for (int i = 0; i < g->nodes[k]->n_in; i++)
            if (g->nodes[k]->in[i])
                uses[g->nodes[k]->in[i]->id]++;
    for (int lo = 0; lo < n_nodes;) {
        int hi = lo;
        if (cg_fusable(g->nodes[lo], tens, opset)) {
            const cg_tensor *y0 = &tens[g->nodes[lo]->out[0]->id];
            while (hi + 1 < n_nodes && hi + 1 - lo < RUN_MAX) {
                const ir_node *n = g->nodes[hi + 1];
                if (!cg_fusable(n, tens, opset) || !same_dims(&tens[n->out[0]->id], y0) ||
                    !reads_run(g, n, lo, hi + 1))
                    break;
                hi++;
            }
        }
        if (tables)
            hi = trim_for_table(g, tens, uses, lo, hi);
        else
            mark_fused(g, tens, uses, lo, hi, hi);
        for (int k = lo; k <= hi; k++) {
            span[k][0] = lo;
            span[k][1] = hi;
        }
        lo = hi + 1;
    }
    /* a lone DQ read only by the float pooling node right after it */
    for (int k = 0; k + 1 < n_nodes; k++) {
        const ir_node *dq = g->nodes[k], *pool = g->nodes[k + 1];
        if (span[k][0] != k || span[k][1] != k || span[k + 1][0] != k + 1 ||
            span[k + 1][1] != k + 1 ||
            dq->op != IR_OP_DEQUANTIZELINEAR || !cg_fusable(dq, tens, opset) ||
            (pool->op != IR_OP_AVERAGEPOOL && pool->op != IR_OP_GLOBALAVERAGEPOOL &&
             pool->op != IR_OP_GLOBALMAXPOOL) ||
            pool->n_in < 1 || pool->in[0] != dq->out[0] || uses[dq->out[0]->id] != 1)
            continue;
        span[k][1] = k + 1;
        span[k + 1][0] = k;
        tens[dq->out[0]->id].fused = true;
    }
    /* a float Conv on the kernels read only by the Relu right after it:
     * the kernel's clamp computes the Relu into the Relu's output */
    for (int k = 0; tables && k + 1 < n_nodes; k++) {
        const ir_node *conv = g->nodes[k], *relu = g->nodes[k + 1];
        if (span[k][0] != k || span[k][1] != k || span[k + 1][0] != k + 1 ||
            span[k + 1][1] != k + 1 || conv->op != IR_OP_CONV || relu->op != IR_OP_RELU ||
            conv->n_out < 1 || !conv->out[0] || uses[conv->out[0]->id] != 1 ||
            !cg_sconv_fuses_relu(tens, conv, relu))
            continue;
        span[k][1] = k + 1;
        span[k + 1][0] = k;
        tens[conv->out[0]->id].fused = true;
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
    const ir_value *x;  /* table run: the byte tensor, read as ... */
    LLVMValueRef xbyte; /* ... this byte value of the table loop */
} run_state;

static oct_status prepare(cg_fn *f, const ir_graph *g, int lo, int k, run_node_prep *p)
{
    const ir_node *n = g->nodes[k];
    memset(p, 0, sizeof *p);
    for (int i = 0; i < data_inputs(n); i++) {
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
    if (v == rs->x)
        return cg_widen(f, t->dtype, rs->xbyte);
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
    const ir_node *last = g->nodes[hi];
    if (last->op == IR_OP_AVERAGEPOOL || last->op == IR_OP_GLOBALAVERAGEPOOL ||
        last->op == IR_OP_GLOBALMAXPOOL) /* a DQ and the pool reading through it */
        return cg_lower_pool_from(f, last, g->nodes[lo]);
    run_state *rs = ir_alloc(f->ctx, sizeof *rs); /* zeroed, freed with the context */
    if (!rs)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    for (int k = lo; k <= hi && st == OCT_OK; k++)
        st = prepare(f, g, lo, k, &rs->prep[k - lo]);
    LLVMValueRef n_elems = cg_nelems_v(f, cg_out(f, g->nodes[lo], 0)); /* run-time size */
    LLVMValueRef stored[RUN_MAX] = {0}; /* table run: where the outputs go */
    rs->x = cg_kernels_available(f) ? lut_input(g, f->tens, lo, hi) : NULL;
    if (rs->x) { /* the loop fills a table per stored output */
        int n_tables = 0;
        for (int k = lo; k <= hi; k++)
            n_tables += rs->prep[k - lo].out != NULL;
        LLVMValueRef tables = cg_workspace(f, 256 * (uint64_t)n_tables);
        n_tables = 0;
        for (int k = lo; k <= hi; k++)
            if (rs->prep[k - lo].out) {
                stored[k - lo] = rs->prep[k - lo].out;
                rs->prep[k - lo].out = cg_gep(f, f->i8, tables, cg_i64c(f, 256 * n_tables++));
            }
    }
    if (st == OCT_OK) {
        cg_loop l;
        rs->i = cg_loop_begin_v(f, &l, rs->x ? cg_i64c(f, 256) : n_elems);
        if (rs->x)
            rs->xbyte = LLVMBuildTrunc(f->b, rs->i, f->i8, "");
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
    for (int k = lo; k <= hi && st == OCT_OK && rs->x; k++)
        if (stored[k - lo]) {
            octk_lut8 a = {.n = 0}; /* n set at run time */
            cg_kptr ptrs[4] = {{offsetof(octk_lut8, table), rs->prep[k - lo].out},
                               {offsetof(octk_lut8, x), cg_ptr(f, &f->tens[rs->x->id])},
                               {offsetof(octk_lut8, y), stored[k - lo]},
                               {offsetof(octk_lut8, n), n_elems}};
            cg_kernel_call(f, "lut8", &a, sizeof a, ptrs, 4);
            cg_report(f, g->nodes[k], "octk_lut8", "byte table of the element-wise run");
        }
    return st;
}
