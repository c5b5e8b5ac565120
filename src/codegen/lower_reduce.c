/*
 * lower_reduce.c: the Reduce* family (kernel `reduce` in ops.def: Sum,
 * Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare) over any set
 * of axes, and ArgMax / ArgMin (kernel `argmax`).
 *
 * Axes, keepdims and noop_with_empty_axes are resolved by the shape rule's
 * own helper (ops_reduce_resolve, src/ops/shape_reduce.c): the `axes`
 * attribute in old opsets, the second input in new ones; negative axes
 * count from the end.  Axes computed at run time (an input that is not a
 * constant): the static input and output shapes allow one or a few sets
 * of reduced dims (axes_candidates); code is emitted for each and the
 * axes read at run time pick one.
 *
 * One generic lowering: the input's dims are grouped into alternating
 * runs of kept and reduced dims (size-1 dims dropped), then either
 *   row form:    for each output element, a loop nest over the reduced
 *                runs; when the innermost run is reduced it is contiguous
 *                and the loop vectorizes (reductions over the last axes,
 *                LayerNorm-style means); or
 *   column form: when the innermost run is kept (e.g. a reduction over
 *                the channel axis), a row of accumulators in the workspace
 *                is updated by a contiguous, vectorizable loop for each
 *                reduced index, then finished into the output.
 * Each output accumulates its inputs in the same index order as the
 * interpreter either way.
 *
 * Numerics (those of src/ref/reduce.c): float inputs (float32, double,
 * float16) accumulate in double (sums reassociated: within the float
 * tolerance) and round once to the output type (float16 through float, as
 * the interpreter); Max / Min of floats stay in the input type with NaN
 * propagating (llvm.maximum / llvm.minimum).  Integer Sum, Mean, Max, Min,
 * Prod, L1 and SumSquare are exact in int64 with two's-complement
 * wrap-around, Mean truncating toward zero; integer L2, LogSum and
 * LogSumExp go through double and truncate (non-finite: 0).  An empty
 * reduction gives the reduction's identity (Max / Min of integers: the
 * output type's minimum / maximum).
 *
 * ArgMax / ArgMin: the first extreme index, or the last with
 * select_last_index; values compare exactly (floats ordered, so NaN never
 * wins after the first element; integers as int64, as the interpreter).
 */
#include <math.h>
#include <string.h>

#include "codegen/codegen.h"
#include "ops/rules.h"

typedef enum cg_rkind {
    RK_SUM, RK_MEAN, RK_MAX, RK_MIN, RK_PROD, RK_L1, RK_L2, RK_LOGSUM, RK_LOGSUMEXP,
    RK_SUMSQUARE,
} cg_rkind;

static bool reduce_kind(ir_op op, cg_rkind *k)
{
    switch (op) {
    case IR_OP_REDUCESUM: *k = RK_SUM; return true;
    case IR_OP_REDUCEMEAN: *k = RK_MEAN; return true;
    case IR_OP_REDUCEMAX: *k = RK_MAX; return true;
    case IR_OP_REDUCEMIN: *k = RK_MIN; return true;
    case IR_OP_REDUCEPROD: *k = RK_PROD; return true;
    case IR_OP_REDUCEL1: *k = RK_L1; return true;
    case IR_OP_REDUCEL2: *k = RK_L2; return true;
    case IR_OP_REDUCELOGSUM: *k = RK_LOGSUM; return true;
    case IR_OP_REDUCELOGSUMEXP: *k = RK_LOGSUMEXP; return true;
    case IR_OP_REDUCESUMSQUARE: *k = RK_SUMSQUARE; return true;
    default: return false;
    }
}

/* How one reduction node computes: element, accumulator and output types. */
typedef struct rplan {
    cg_rkind k;
    ir_dtype xdt, ydt;
    LLVMTypeRef xty, yty, aty;
    bool float_in;   /* input of a float type */
    bool float_acc;  /* accumulator of a float type (else int64) */
    uint64_t count;  /* elements per output */
} rplan;

/* Element type of dt: the backend's, and float16 as LLVM half. */
static LLVMTypeRef elem_type(cg_fn *f, ir_dtype dt)
{
    return dt == IR_DT_FLOAT16 ? LLVMHalfTypeInContext(f->llc) : cg_elem_type(f, dt);
}

/* Float v rounded to float type ty; from double to half through float, as
 * the interpreter rounds (ops_set). */
static LLVMValueRef to_float_type(cg_fn *f, LLVMValueRef v, LLVMTypeRef ty)
{
    LLVMTypeRef vt = LLVMTypeOf(v);
    if (vt == ty)
        return v;
    if (vt == f->f64 && ty != f->f32)
        v = LLVMBuildFPTrunc(f->b, v, f->f32, "");
    return LLVMBuildFPTrunc(f->b, v, ty, "");
}

/* Calls the C library function double NAME(double). */
static LLVMValueRef libm_f64(cg_fn *f, const char *name, LLVMValueRef x)
{
    LLVMTypeRef fty = LLVMFunctionType(f->f64, &f->f64, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, name);
    if (!fn)
        fn = LLVMAddFunction(f->mod, name, fty);
    return LLVMBuildCall2(f->b, fty, fn, &x, 1, "");
}

static LLVMValueRef intrin2(cg_fn *f, const char *name, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef args[2] = {a, b};
    return cg_intrinsic(f, name, LLVMTypeOf(a), args, 2);
}

/* The integer element v (loaded as type dt) as int64: signed types
 * sign-extended, unsigned zero-extended, bool as 0/1. */
static LLVMValueRef int_to_i64(cg_fn *f, ir_dtype dt, LLVMValueRef v)
{
    ir_dkind kind = ir_dtype_info(dt)->kind;
    if (kind == IR_DK_BOOL)
        return LLVMBuildZExt(f->b, LLVMBuildICmp(f->b, LLVMIntNE, v,
                                                 LLVMConstNull(LLVMTypeOf(v)), ""), f->i64, "");
    if (LLVMTypeOf(v) == f->i64)
        return v;
    return kind == IR_DK_SINT ? LLVMBuildSExt(f->b, v, f->i64, "")
                              : LLVMBuildZExt(f->b, v, f->i64, "");
}

/* Element idx of x in the accumulator's domain. */
static LLVMValueRef load_elem(cg_fn *f, const rplan *p, LLVMValueRef px, LLVMValueRef idx)
{
    LLVMValueRef v = cg_load(f, p->xty, px, idx);
    if (p->float_in)
        return p->xty == p->aty ? v : LLVMBuildFPExt(f->b, v, p->aty, "");
    LLVMValueRef w = int_to_i64(f, p->xdt, v);
    if (!p->float_acc)
        return w;
    return p->xdt == IR_DT_UINT64 ? LLVMBuildUIToFP(f->b, w, f->f64, "")
                                  : LLVMBuildSIToFP(f->b, w, f->f64, "");
}

static LLVMValueRef acc_init(cg_fn *f, const rplan *p)
{
    if (p->float_acc) {
        double v = p->k == RK_MAX ? -INFINITY : p->k == RK_MIN ? INFINITY
                 : p->k == RK_PROD ? 1 : 0;
        return LLVMConstReal(p->aty, v);
    }
    int64_t v = p->k == RK_MAX ? INT64_MIN : p->k == RK_MIN ? INT64_MAX : p->k == RK_PROD ? 1 : 0;
    return cg_i64c(f, v);
}

/* acc (+) v.  Float sums and products carry reassoc+contract; integer
 * arithmetic wraps (no nsw). */
static LLVMValueRef acc_step(cg_fn *f, const rplan *p, LLVMValueRef a, LLVMValueRef v)
{
    LLVMBuilderRef b = f->b;
    if (p->float_acc) {
        switch (p->k) {
        case RK_MAX: return intrin2(f, "llvm.maximum", a, v);
        case RK_MIN: return intrin2(f, "llvm.minimum", a, v);
        case RK_PROD: return cg_fast(LLVMBuildFMul(b, a, v, ""));
        case RK_L1:
            v = cg_intrinsic(f, "llvm.fabs", p->aty, &v, 1);
            break;
        case RK_L2: case RK_SUMSQUARE:
            v = cg_fast(LLVMBuildFMul(b, v, v, ""));
            break;
        case RK_LOGSUMEXP:
            v = libm_f64(f, "exp", v);
            break;
        default:
            break;
        }
        return cg_fast(LLVMBuildFAdd(b, a, v, ""));
    }
    switch (p->k) {
    case RK_MAX: return intrin2(f, "llvm.smax", a, v);
    case RK_MIN: return intrin2(f, "llvm.smin", a, v);
    case RK_PROD: return LLVMBuildMul(b, a, v, "");
    case RK_L1: { /* |v|, INT64_MIN wrapping to itself */
        LLVMValueRef neg = LLVMBuildICmp(b, LLVMIntSLT, v, cg_i64c(f, 0), "");
        v = LLVMBuildSelect(b, neg, LLVMBuildSub(b, cg_i64c(f, 0), v, ""), v, "");
        break;
    }
    case RK_SUMSQUARE: v = LLVMBuildMul(b, v, v, ""); break;
    default: break;
    }
    return LLVMBuildAdd(b, a, v, "");
}

/* The output element of the finished accumulator a, in the output type. */
static LLVMValueRef acc_final(cg_fn *f, const rplan *p, LLVMValueRef a)
{
    LLVMBuilderRef b = f->b;
    if (p->float_acc) {
        if (p->k == RK_MEAN) /* 0/0 = NaN on an empty set */
            a = LLVMBuildFDiv(b, a, LLVMConstReal(p->aty, (double)p->count), "");
        else if (p->k == RK_L2)
            a = cg_intrinsic(f, "llvm.sqrt", p->aty, &a, 1);
        else if (p->k == RK_LOGSUM || p->k == RK_LOGSUMEXP)
            a = libm_f64(f, "log", a);
        if (ops_dt_is_float(p->ydt))
            return to_float_type(f, a, p->yty);
        /* integer output of L2 / LogSum / LogSumExp: truncated, 0 if not finite */
        LLVMValueRef fin = LLVMBuildFCmp(b, LLVMRealONE, cg_intrinsic(f, "llvm.fabs", f->f64, &a, 1),
                                         LLVMConstReal(f->f64, INFINITY), "");
        LLVMValueRef r = LLVMBuildSelect(b, fin, LLVMBuildFPToSI(b, a, f->i64, ""),
                                         cg_i64c(f, 0), "");
        a = r;
    } else if (p->k == RK_MEAN) {
        a = p->count ? LLVMBuildSDiv(b, a, cg_i64c(f, (int64_t)p->count), "") : cg_i64c(f, 0);
    } else if (p->count == 0 && (p->k == RK_MAX || p->k == RK_MIN)) {
        /* the output type's minimum / maximum */
        const ir_dtype_traits *tr = ir_dtype_info(p->ydt);
        bool sgn = tr->kind == IR_DK_SINT;
        uint64_t v;
        if (p->k == RK_MAX)
            v = sgn ? UINT64_MAX << (tr->bits - 1) : 0;
        else
            v = sgn ? (1ull << (tr->bits - 1)) - 1
                    : tr->bits >= 64 ? UINT64_MAX : (1ull << tr->bits) - 1;
        a = cg_i64c(f, (int64_t)v);
    }
    if (ir_dtype_info(p->ydt)->kind == IR_DK_BOOL)
        return LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntNE, a, cg_i64c(f, 0), ""), f->i8, "");
    return p->yty == f->i64 ? a : LLVMBuildTrunc(b, a, p->yty, "");
}

/* An alloca in the function's entry block (promoted to registers). */
static LLVMValueRef entry_alloca(cg_fn *f, LLVMTypeRef ty)
{
    LLVMBasicBlockRef here = LLVMGetInsertBlock(f->b);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(f->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(f->b, first);
    else
        LLVMPositionBuilderAtEnd(f->b, entry);
    LLVMValueRef a = LLVMBuildAlloca(f->b, ty, "acc");
    LLVMPositionBuilderAtEnd(f->b, here);
    return a;
}

/* Runs of the input's dims: sizes, input strides, reduced or kept. */
typedef struct rgroups {
    int n;
    int64_t size[OPS_MAX_RANK], stride[OPS_MAX_RANK];
    bool reduced[OPS_MAX_RANK];
} rgroups;

static void group_dims(const cg_tensor *x, const bool *reduced, rgroups *g)
{
    int64_t str[OPS_MAX_RANK];
    cg_strides(x->rank, x->dims, str);
    g->n = 0;
    for (int d = 0; d < x->rank; d++) {
        if (x->dims[d] == 1)
            continue;
        if (g->n && g->reduced[g->n - 1] == reduced[d]) {
            g->size[g->n - 1] *= x->dims[d];
            g->stride[g->n - 1] = str[d];
        } else {
            g->size[g->n] = x->dims[d];
            g->stride[g->n] = str[d];
            g->reduced[g->n] = reduced[d];
            g->n++;
        }
    }
}

/* Splits groups g (first n of them) into kept and reduced nests: dims and
 * strides of x (row 0) and, for kept dims, of the output (row 1). */
static void split_groups(const rgroups *g, int n, int *nk, int64_t *kd,
                         int64_t (*ks)[OPS_MAX_RANK], int *nr, int64_t *rd,
                         int64_t (*rs)[OPS_MAX_RANK], int64_t inner_out)
{
    *nk = *nr = 0;
    for (int i = 0; i < n; i++) {
        if (g->reduced[i]) {
            rd[*nr] = g->size[i];
            rs[0][(*nr)++] = g->stride[i];
        } else {
            kd[*nk] = g->size[i];
            ks[0][(*nk)++] = g->stride[i];
        }
    }
    int64_t s = inner_out;
    for (int i = *nk - 1; i >= 0; i--) {
        ks[1][i] = s;
        s *= kd[i];
    }
}

static oct_status reduce_types(cg_fn *f, const ir_node *n, const cg_tensor *x,
                               const cg_tensor *y, rplan *p)
{
    p->xdt = x->dtype;
    p->ydt = y->dtype;
    p->xty = elem_type(f, x->dtype);
    p->yty = elem_type(f, y->dtype);
    if (!p->xty || !p->yty || x->dtype != y->dtype)
        return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 0,
                               "compile: %s of %s is not supported yet", n->op_type,
                               ir_dtype_name(x->dtype));
    p->float_in = ops_dt_is_float(x->dtype);
    bool via_double = p->k == RK_L2 || p->k == RK_LOGSUM || p->k == RK_LOGSUMEXP;
    p->float_acc = p->float_in || via_double;
    if (p->float_in && (p->k == RK_MAX || p->k == RK_MIN))
        p->aty = p->xty;
    else
        p->aty = p->float_acc ? f->f64 : f->i64;
    return OCT_OK;
}

/* The reduced-dim sets an axes input read at run time may give.  */
#define RED_MAX_CANDIDATES 8
typedef struct rcands {
    int n;
    bool reduced[RED_MAX_CANDIDATES][OPS_MAX_RANK];
} rcands;

/* Collects every way to keep dims xd[i..] (indices xmap) so that they
 * equal yd[j..] with the others removed; false if there are too many. */
static bool embeddings(const int64_t *xd, const int *xmap, int nx, int i, const int64_t *yd,
                       int ny, int j, bool *removed, rcands *c)
{
    if (j == ny) {
        if (c->n == RED_MAX_CANDIDATES)
            return false;
        memset(c->reduced[c->n], 0, sizeof c->reduced[c->n]);
        for (int k = 0; k < nx; k++)
            c->reduced[c->n][xmap[k]] = k >= i || removed[k];
        c->n++;
        return true;
    }
    if (nx - i < ny - j)
        return true;
    if (xd[i] == yd[j]) {
        removed[i] = false;
        if (!embeddings(xd, xmap, nx, i + 1, yd, ny, j + 1, removed, c))
            return false;
    }
    removed[i] = true;
    return embeddings(xd, xmap, nx, i + 1, yd, ny, j, removed, c);
}

/* Axes computed at run time (an input that is not a constant): the sets
 * of reduced dims the static input and output shapes allow.  Dims of size
 * 1 are left out (reducing them or not is the same); with keepdims the
 * reduced dims are those whose size became 1 (one candidate), else every
 * way of removing dims that leaves the output's dims. */
static oct_status axes_candidates(cg_fn *f, const ir_node *n, const cg_tensor *X,
                                  const cg_tensor *Y, rcands *c)
{
    int64_t xd[OPS_MAX_RANK], yd[OPS_MAX_RANK];
    int xmap[OPS_MAX_RANK], nx = 0, ny = 0;
    bool ok = true;
    c->n = 0;
    if (Y->rank == X->rank) {
        c->n = 1;
        memset(c->reduced[0], 0, sizeof c->reduced[0]);
        for (int d = 0; d < X->rank; d++)
            if (X->dims[d] != Y->dims[d]) {
                c->reduced[0][d] = true;
                ok &= Y->dims[d] == 1;
            }
    } else {
        for (int d = 0; d < X->rank; d++)
            if (X->dims[d] != 1) {
                xmap[nx] = d;
                xd[nx++] = X->dims[d];
            }
        for (int d = 0; d < Y->rank; d++)
            if (Y->dims[d] != 1)
                yd[ny++] = Y->dims[d];
        bool removed[OPS_MAX_RANK] = {false};
        ok = embeddings(xd, xmap, nx, 0, yd, ny, 0, removed, c);
    }
    if (ok && c->n)
        return OCT_OK;
    return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 1,
                           "compile: %s: the axes computed at run time do not match the "
                           "static shapes in a way the compiler handles", n->op_type);
}

/* Emits the reduction of X over the dims reduced[] into Y. */
static void emit_reduce(cg_fn *f, rplan p, const cg_tensor *X, const bool *reduced,
                        LLVMValueRef px, LLVMValueRef py)
{
    p.count = 1;
    for (int d = 0; d < X->rank; d++)
        if (reduced[d])
            p.count *= (uint64_t)X->dims[d];
    rgroups g;
    group_dims(X, reduced, &g);
    int nk, nr;
    int64_t kd[OPS_MAX_RANK], rd[OPS_MAX_RANK], ks[2][OPS_MAX_RANK], rs[1][OPS_MAX_RANK];
    LLVMValueRef koff[2], roff[1];
    cg_nest nk_nest, nr_nest;
    bool column = g.n >= 2 && !g.reduced[g.n - 1];
    if (!column) { /* row form */
        split_groups(&g, g.n, &nk, kd, ks, &nr, rd, rs, 1);
        LLVMValueRef acc = entry_alloca(f, p.aty);
        cg_nest_begin(f, &nk_nest, nk, kd, 2, (const int64_t(*)[OPS_MAX_RANK])ks, koff);
        LLVMBuildStore(f->b, acc_init(f, &p), acc);
        cg_nest_begin(f, &nr_nest, nr, rd, 1, (const int64_t(*)[OPS_MAX_RANK])rs, roff);
        LLVMValueRef v = load_elem(f, &p, px, cg_add(f, koff[0], roff[0]));
        LLVMValueRef a = LLVMBuildLoad2(f->b, p.aty, acc, "");
        LLVMBuildStore(f->b, acc_step(f, &p, a, v), acc);
        cg_nest_end(f, &nr_nest);
        LLVMValueRef r = acc_final(f, &p, LLVMBuildLoad2(f->b, p.aty, acc, ""));
        cg_store(f, p.yty, py, koff[1], r);
        cg_nest_end(f, &nk_nest);
        return;
    }
    /* column form: the innermost run is kept, `inner` outputs share every
     * reduced index and accumulate side by side in the workspace */
    int64_t inner = g.size[g.n - 1];
    split_groups(&g, g.n - 1, &nk, kd, ks, &nr, rd, rs, inner);
    uint64_t abytes = (uint64_t)inner * 8; /* at most 8 bytes an accumulator */
    LLVMValueRef ws = cg_workspace(f, abytes);
    cg_loop li;
    cg_nest_begin(f, &nk_nest, nk, kd, 2, (const int64_t(*)[OPS_MAX_RANK])ks, koff);
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    cg_store(f, p.aty, ws, i, acc_init(f, &p));
    cg_loop_end(f, &li);
    cg_nest_begin(f, &nr_nest, nr, rd, 1, (const int64_t(*)[OPS_MAX_RANK])rs, roff);
    LLVMValueRef base = cg_add(f, koff[0], roff[0]);
    i = cg_loop_begin(f, &li, inner);
    LLVMValueRef v = load_elem(f, &p, px, cg_add(f, base, i));
    cg_store(f, p.aty, ws, i, acc_step(f, &p, cg_load(f, p.aty, ws, i), v));
    cg_loop_end(f, &li);
    cg_nest_end(f, &nr_nest);
    i = cg_loop_begin(f, &li, inner);
    cg_store(f, p.yty, py, cg_add(f, koff[1], i), acc_final(f, &p, cg_load(f, p.aty, ws, i)));
    cg_loop_end(f, &li);
    cg_nest_end(f, &nk_nest);
}

/* Reads the axes input (int64 or int32, A->nelems values) at run time as a
 * mask of the dims it names that are not of size 1. */
static LLVMValueRef runtime_mask(cg_fn *f, const cg_tensor *X, const cg_tensor *A)
{
    LLVMValueRef pa = cg_ptr(f, A), mask = cg_i64c(f, 0);
    uint64_t relevant = 0;
    for (int d = 0; d < X->rank; d++)
        relevant |= X->dims[d] != 1 ? 1ull << d : 0;
    for (uint64_t k = 0; k < A->nelems; k++) {
        LLVMValueRef a = A->dtype == IR_DT_INT32
            ? LLVMBuildSExt(f->b, cg_load(f, f->i32, pa, cg_i64c(f, (int64_t)k)), f->i64, "")
            : cg_load(f, f->i64, pa, cg_i64c(f, (int64_t)k));
        LLVMValueRef neg = LLVMBuildICmp(f->b, LLVMIntSLT, a, cg_i64c(f, 0), "");
        a = LLVMBuildSelect(f->b, neg, cg_add(f, a, cg_i64c(f, X->rank)), a, "");
        /* an axis out of range sets no bit (then no candidate matches) */
        LLVMValueRef valid = LLVMBuildAnd(
            f->b, LLVMBuildICmp(f->b, LLVMIntSGE, a, cg_i64c(f, 0), ""),
            LLVMBuildICmp(f->b, LLVMIntSLT, a, cg_i64c(f, X->rank), ""), "");
        a = LLVMBuildSelect(f->b, valid, a, cg_i64c(f, 0), "");
        LLVMValueRef bit = LLVMBuildSelect(f->b, valid, LLVMBuildShl(f->b, cg_i64c(f, 1), a, ""),
                                           cg_i64c(f, 0), "");
        mask = LLVMBuildOr(f->b, mask, bit, "");
    }
    return LLVMBuildAnd(f->b, mask, cg_i64c(f, (int64_t)relevant), "");
}

oct_status cg_lower_reduce(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    rplan p = {0};
    if (!reduce_kind(n->op, &p.k))
        return oct_node_error(f->ctx, OCT_EINTERNAL, n, "compile: not a reduction");
    oct_status st = reduce_types(f, n, X, Y, &p);
    if (st)
        return st;
    const ir_tensor *in_const[2] = {NULL, NULL};
    cg_tensor *A = cg_in(f, n, 1);
    if (A && A->place == CG_PLACE_CONST && A->value->init)
        in_const[1] = A->value->init;
    ops_infer inf = {.ctx = f->ctx, .node = n, .opset = f->opset, .n_in = n->n_in,
                     .in_const = in_const};
    ops_reduce_plan plan;
    if (!ops_reduce_resolve(&inf, X->rank, &plan))
        return OCT_EINPUT;
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    if (plan.noop) {
        if (X->nbytes)
            cg_memcpy(f, py, px, cg_i64c(f, (int64_t)X->nbytes));
        return OCT_OK;
    }
    if (Y->nelems == 0)
        return OCT_OK;
    if (plan.known) {
        emit_reduce(f, p, X, plan.reduced, px, py);
        return OCT_OK;
    }
    rcands c;
    if ((st = axes_candidates(f, n, X, Y, &c)))
        return st;
    if (c.n == 1) {
        emit_reduce(f, p, X, c.reduced[0], px, py);
        return OCT_OK;
    }
    if ((A->dtype != IR_DT_INT64 && A->dtype != IR_DT_INT32) || A->rank != 1 ||
        A->nelems > OPS_MAX_RANK)
        return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 1,
                               "compile: axes must be an int64 vector");
    /* several candidates: the axes read at run time pick one (none
     * matching, e.g. an axis out of range: the output is left as it is) */
    LLVMValueRef mask = runtime_mask(f, X, A);
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->llc, f->fn, "axes_done");
    for (int k = 0; k < c.n; k++) {
        uint64_t want = 0;
        for (int d = 0; d < X->rank; d++)
            want |= c.reduced[k][d] && X->dims[d] != 1 ? 1ull << d : 0;
        LLVMBasicBlockRef take = LLVMAppendBasicBlockInContext(f->llc, f->fn, "axes_take");
        LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(f->llc, f->fn, "axes_next");
        LLVMBuildCondBr(f->b, LLVMBuildICmp(f->b, LLVMIntEQ, mask, cg_i64c(f, (int64_t)want), ""),
                        take, next);
        LLVMPositionBuilderAtEnd(f->b, take);
        emit_reduce(f, p, X, c.reduced[k], px, py);
        LLVMBuildBr(f->b, done);
        LLVMPositionBuilderAtEnd(f->b, next);
    }
    LLVMBuildBr(f->b, done);
    LLVMPositionBuilderAtEnd(f->b, done);
    return OCT_OK;
}

/* ---- ArgMax / ArgMin ---------------------------------------------------- */

oct_status cg_lower_argmax(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    LLVMTypeRef xty = elem_type(f, X->dtype);
    if (!xty || Y->dtype != IR_DT_INT64)
        return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 0,
                               "compile: %s of %s is not supported yet", n->op_type,
                               ir_dtype_name(X->dtype));
    int axis;
    if (!ops_norm_axis(ir_attr_int(n, "axis", 0), X->rank, &axis))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad %s axis", n->op_type);
    bool is_max = n->op == IR_OP_ARGMAX;
    bool last = ir_attr_int(n, "select_last_index", 0) != 0;
    bool fl = ops_dt_is_float(X->dtype);
    int64_t outer = 1, inner = 1, len = X->dims[axis];
    for (int d = 0; d < X->rank; d++) {
        if (d < axis)
            outer *= X->dims[d];
        else if (d > axis)
            inner *= X->dims[d];
    }
    if (len == 0 || outer * inner == 0)
        return OCT_OK; /* the shape rule refuses an empty axis */
    /* v beats best: strictly, or also on ties with select_last_index */
    LLVMRealPredicate fp = is_max ? (last ? LLVMRealOGE : LLVMRealOGT)
                                  : (last ? LLVMRealOLE : LLVMRealOLT);
    LLVMIntPredicate ip = is_max ? (last ? LLVMIntSGE : LLVMIntSGT)
                                 : (last ? LLVMIntSLE : LLVMIntSLT);
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    cg_loop lo, li, lj;
    LLVMValueRef o = cg_loop_begin(f, &lo, outer);
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    LLVMValueRef base = cg_madd(f, o, len * inner, i);
    LLVMValueRef first = cg_load(f, xty, px, base);
    if (!fl)
        first = int_to_i64(f, X->dtype, first);
    LLVMValueRef j = cg_loop_begin(f, &lj, len - 1);
    cg_acc abest, aidx;
    LLVMValueRef best = cg_acc_begin(f, &lj, &abest, first);
    LLVMValueRef bidx = cg_acc_begin(f, &lj, &aidx, cg_i64c(f, 0));
    LLVMValueRef jj = cg_add(f, j, cg_i64c(f, 1));
    LLVMValueRef v = cg_load(f, xty, px, cg_madd(f, jj, inner, base));
    LLVMValueRef better;
    if (fl) {
        better = LLVMBuildFCmp(f->b, fp, v, best, "");
    } else {
        v = int_to_i64(f, X->dtype, v);
        better = LLVMBuildICmp(f->b, ip, v, best, "");
    }
    cg_acc_end(f, &abest, LLVMBuildSelect(f->b, better, v, best, ""));
    cg_acc_end(f, &aidx, LLVMBuildSelect(f->b, better, jj, bidx, ""));
    cg_loop_end(f, &lj);
    bidx = cg_acc_result(f, &lj, &aidx, cg_i64c(f, 0));
    cg_store(f, f->i64, py, cg_madd(f, o, inner, i), bidx);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lo);
    return OCT_OK;
}
