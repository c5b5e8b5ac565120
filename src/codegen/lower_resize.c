/*
 * lower_resize.c: Resize.  The sizes, scales, roi and axes are resolved by
 * ops_resize_make_plan and every resized axis gets its table of input
 * indices and weights from ops_resize_fill_axis (src/ops), the same
 * tables the interpreter computes from, here at compile time; so every
 * mode, coordinate transformation, nearest rounding, cubic_coeff_a,
 * exclude_outside, antialias, keep_aspect_ratio_policy and
 * tf_crop_and_resize with extrapolation_value the interpreter supports is
 * lowered.  Scales, sizes and roi must be constants.
 *
 * nearest copies elements (any dtype of whole bytes) through per-axis
 * source tables (cg_copy_by_axis), extrapolated coordinates taking
 * extrapolation_value.  linear and cubic (float32 or integer data) run one
 * pass per resized axis, each a weighted sum of input rows of the
 * previous pass's result in float32 (the interpreter sums the tensor
 * product in double: results agree within the float tolerance); a pass
 * over an inner axis adds whole rows (a loop the optimizer vectorizes),
 * one over the last axis sums neighbours per element.  Extrapolated
 * coordinates have zero weights and extrapolation_value as their bias.
 * Integer outputs round half to even and saturate, as the interpreter's.
 */
#include <math.h>
#include <string.h>

#include "codegen/movement.h"
#include "ops/rules.h"

typedef struct axis_mem {
    ops_resize_axis t;
    void *mem;
    size_t size;
} axis_mem;

static oct_status axis_alloc(cg_fn *f, axis_mem *a, int width, int64_t out)
{
    uint64_t cnt = (uint64_t)(out ? out : 1);
    a->size = (size_t)(cnt * (sizeof(int) + sizeof(bool) +
                              (uint64_t)width * (sizeof(int64_t) + sizeof(double))));
    uint8_t *mem = oct_malloc(f->ctx, a->size);
    if (!mem)
        return OCT_EINTERNAL;
    memset(mem, 0, a->size);
    a->mem = mem;
    a->t.width = width;
    a->t.idx = (int64_t *)mem;
    a->t.w = (double *)(a->t.idx + cnt * (uint64_t)width);
    a->t.count = (int *)(a->t.w + cnt * (uint64_t)width);
    a->t.extrap = (bool *)(a->t.count + cnt);
    return OCT_OK;
}

/* nearest: one source per output coordinate and axis. */
static oct_status lower_nearest(cg_fn *f, const ir_node *n, const cg_tensor *x,
                                const cg_tensor *y, const ops_resize_opts *o,
                                const axis_mem *ax, const bool *resized)
{
    int64_t *tab[OPS_MAX_RANK] = {NULL}, xs[OPS_MAX_RANK];
    cg_strides(x->rank, x->dims, xs);
    oct_status st = OCT_OK;
    bool any_fill = false;
    for (int d = 0; d < y->rank && !st; d++) {
        tab[d] = oct_malloc(f->ctx, (size_t)(y->dims[d] ? y->dims[d] : 1) * sizeof(int64_t));
        if (!tab[d]) {
            st = OCT_EINTERNAL;
            break;
        }
        for (int64_t i = 0; i < y->dims[d]; i++) {
            const ops_resize_axis *t = &ax[d].t;
            bool fill = resized[d] && t->extrap[i];
            tab[d][i] = fill ? CG_MOVE_FILL : (resized[d] ? t->idx[i * t->width] : i) * xs[d];
            any_fill |= fill;
        }
    }
    LLVMTypeRef ty;
    if (!st)
        st = cg_move_type(f, n, y, &ty);
    if (!st)
        st = cg_copy_by_axis(f, n, x, y, tab,
                             any_fill ? cg_move_const(f, ty, y->dtype, o->extrapolation) : NULL);
    for (int d = 0; d < y->rank; d++)
        oct_free(f->ctx, tab[d], (size_t)(y->dims[d] ? y->dims[d] : 1) * sizeof(int64_t));
    return st;
}

/* One interpolation pass along an axis: dst[o, yy, i] = bias[yy] +
 * sum_k w[yy, k] * src[o, ix[yy, k], i], src viewed as [outer, in, inner]. */
typedef struct pass {
    const cg_tensor *src_t; /* typed source (x), or NULL: float32 at src */
    LLVMValueRef src, dst;
    int64_t outer, in, inner, out;
    int width;
    LLVMValueRef w, ix, bias;   /* constant tables */
} pass;

static LLVMValueRef src_at(cg_fn *f, const pass *p, LLVMValueRef idx)
{
    return p->src_t ? cg_load_as_f32(f, p->src_t, p->src, idx) : cg_load(f, f->f32, p->src, idx);
}

static void emit_pass(cg_fn *f, const pass *p)
{
    cg_loop lo, ly, lk, li;
    LLVMValueRef o = cg_loop_begin(f, &lo, p->outer);
    LLVMValueRef yy = cg_loop_begin(f, &ly, p->out);
    LLVMValueRef bias = cg_load(f, f->f32, p->bias, yy);
    LLVMValueRef drow = cg_madd(f, o, p->out, yy);
    LLVMValueRef srow = cg_mul(f, o, cg_i64c(f, p->in));
    LLVMValueRef tap0 = cg_mul(f, yy, cg_i64c(f, p->width));
    if (p->inner == 1) {
        cg_acc acc;
        LLVMValueRef k = cg_loop_begin(f, &lk, p->width);
        LLVMValueRef s = cg_acc_begin(f, &lk, &acc, bias);
        LLVMValueRef at = cg_add(f, tap0, k);
        LLVMValueRef w = cg_load(f, f->f32, p->w, at);
        LLVMValueRef v = src_at(f, p, cg_add(f, srow, cg_load(f, f->i64, p->ix, at)));
        cg_acc_end(f, &acc, cg_fast(LLVMBuildFAdd(f->b, s, cg_fast(LLVMBuildFMul(f->b, w, v, "")), "")));
        cg_loop_end(f, &lk);
        cg_store(f, f->f32, p->dst, drow, cg_acc_result(f, &lk, &acc, bias));
    } else {
        LLVMValueRef dbase = cg_mul(f, drow, cg_i64c(f, p->inner));
        LLVMValueRef i = cg_loop_begin(f, &li, p->inner);
        cg_store(f, f->f32, p->dst, cg_add(f, dbase, i), bias);
        cg_loop_end(f, &li);
        LLVMValueRef k = cg_loop_begin(f, &lk, p->width);
        LLVMValueRef at = cg_add(f, tap0, k);
        LLVMValueRef w = cg_load(f, f->f32, p->w, at);
        LLVMValueRef sbase = cg_mul(f, cg_add(f, srow, cg_load(f, f->i64, p->ix, at)),
                                    cg_i64c(f, p->inner));
        i = cg_loop_begin(f, &li, p->inner);
        LLVMValueRef di = cg_add(f, dbase, i);
        LLVMValueRef v = src_at(f, p, cg_add(f, sbase, i));
        LLVMValueRef sum = LLVMBuildFAdd(f->b, cg_load(f, f->f32, p->dst, di),
                                         cg_fast(LLVMBuildFMul(f->b, w, v, "")), "");
        cg_store(f, f->f32, p->dst, di, cg_fast(sum));
        cg_loop_end(f, &li);
        cg_loop_end(f, &lk);
    }
    cg_loop_end(f, &ly);
    cg_loop_end(f, &lo);
}

/* The constant tables of a pass along an axis with table t (out rows). */
static oct_status pass_tables(cg_fn *f, pass *p, const ops_resize_axis *t, double extrap)
{
    int width = 1;
    for (int64_t yy = 0; yy < p->out; yy++)
        if (!t->extrap[yy] && t->count[yy] > width)
            width = t->count[yy];
    size_t rows = (size_t)p->out, taps = rows * (size_t)width;
    float *w = oct_malloc(f->ctx, taps * sizeof *w), *bias = oct_malloc(f->ctx, rows * sizeof *bias);
    int64_t *ix = oct_malloc(f->ctx, taps * sizeof *ix);
    oct_status st = w && bias && ix ? OCT_OK : OCT_EINTERNAL;
    for (size_t yy = 0; !st && yy < rows; yy++) {
        bias[yy] = t->extrap[yy] ? (float)extrap : 0.0f;
        for (int k = 0; k < width; k++) {
            bool on = !t->extrap[yy] && k < t->count[yy];
            w[yy * (size_t)width + (size_t)k] = on ? (float)t->w[yy * (size_t)t->width + (size_t)k] : 0.0f;
            ix[yy * (size_t)width + (size_t)k] = on ? t->idx[yy * (size_t)t->width + (size_t)k] : 0;
        }
    }
    if (!st) {
        p->width = width;
        p->w = cg_const_data(f, w, taps * sizeof *w);
        p->ix = cg_const_data(f, ix, taps * sizeof *ix);
        p->bias = cg_const_data(f, bias, rows * sizeof *bias);
    }
    oct_free(f->ctx, w, taps * sizeof *w);
    oct_free(f->ctx, bias, rows * sizeof *bias);
    oct_free(f->ctx, ix, taps * sizeof *ix);
    return st;
}

/* linear and cubic: one pass per resized axis, ping-ponging in the
 * workspace, the last writing y (float32) or a buffer converted into y. */
static oct_status lower_interp(cg_fn *f, const ir_node *n, const cg_tensor *x,
                               const cg_tensor *y, const ops_resize_opts *o,
                               const axis_mem *ax, const bool *resized)
{
    const ir_dtype_traits *tx = ir_dtype_info(x->dtype), *ty = ir_dtype_info(y->dtype);
    bool x_ok = x->dtype == IR_DT_FLOAT || ((tx->kind == IR_DK_SINT || tx->kind == IR_DK_UINT) &&
                                            tx->bits <= 32);
    if (!x_ok || x->dtype != y->dtype)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: linear and cubic "
                              "Resize of %s tensors is not supported",
                              ir_dtype_name(x->dtype));
    int r = x->rank, axes[OPS_MAX_RANK], n_pass = 0;
    for (int d = 0; d < r; d++)
        if (resized[d])
            axes[n_pass++] = d;
    /* sizes of the intermediate results (float32), the last one too
     * unless it goes straight to y */
    int64_t cur[OPS_MAX_RANK];
    memcpy(cur, x->dims, (size_t)r * sizeof *cur);
    uint64_t half = 0;
    for (int m = 0; m < n_pass; m++) {
        cur[axes[m]] = y->dims[axes[m]];
        uint64_t e = 1;
        for (int d = 0; d < r; d++)
            e *= (uint64_t)cur[d];
        if (m + 1 < n_pass || y->dtype != IR_DT_FLOAT)
            half = half > e * 4 ? half : e * 4;
    }
    half = (half + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    LLVMValueRef ws = half ? cg_workspace(f, 2 * half) : NULL;
    LLVMValueRef buf[2] = {ws, ws ? cg_gep(f, f->i8, ws, cg_i64c(f, (int64_t)half)) : NULL};
    memcpy(cur, x->dims, (size_t)r * sizeof *cur);
    LLVMValueRef src = cg_ptr(f, x);
    for (int m = 0; m < n_pass; m++) {
        int d = axes[m];
        pass p = {.src_t = m == 0 ? x : NULL, .src = src, .outer = 1, .inner = 1,
                  .in = cur[d], .out = y->dims[d]};
        for (int e = 0; e < d; e++)
            p.outer *= cur[e];
        for (int e = d + 1; e < r; e++)
            p.inner *= cur[e];
        bool last = m + 1 == n_pass;
        p.dst = last && y->dtype == IR_DT_FLOAT ? cg_ptr(f, y) : buf[m % 2];
        oct_status st = pass_tables(f, &p, &ax[d].t, o->extrapolation);
        if (st)
            return st;
        emit_pass(f, &p);
        cur[d] = y->dims[d];
        src = p.dst;
    }
    if (y->dtype == IR_DT_FLOAT)
        return OCT_OK;
    /* round half to even and saturate into the integer type */
    double lo = ty->kind == IR_DK_UINT ? 0 : -ldexp(1, (int)ty->bits - 1);
    double hi = ty->kind == IR_DK_UINT ? ldexp(1, (int)ty->bits) - 1 : ldexp(1, (int)ty->bits - 1) - 1;
    LLVMTypeRef et = cg_elem_type(f, y->dtype);
    LLVMValueRef py = cg_ptr(f, y);
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(f, &l, (int64_t)y->nelems);
    LLVMValueRef v = cg_load(f, f->f32, src, i);
    v = cg_intrinsic(f, "llvm.roundeven", f->f32, &v, 1);
    LLVMValueRef args[2] = {v, LLVMConstReal(f->f32, lo)};
    v = cg_intrinsic(f, "llvm.maxnum", f->f32, args, 2);
    args[0] = v;
    args[1] = LLVMConstReal(f->f32, hi);
    v = cg_intrinsic(f, "llvm.minnum", f->f32, args, 2);
    v = LLVMBuildTrunc(f->b, LLVMBuildFPToSI(f->b, v, f->i64, ""), et, "");
    cg_store(f, et, py, i, v);
    cg_loop_end(f, &l);
    return OCT_OK;
}

oct_status cg_lower_resize(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    if (!x || !y || x->dtype != y->dtype)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Resize input and output "
                              "types differ");
    const ir_tensor *cin[4] = {NULL};
    for (int i = 1; i < n->n_in && i < 4; i++) {
        const cg_tensor *t = cg_in(f, n, i);
        if (t && t->place != CG_PLACE_CONST)
            return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, i, "compile: Resize needs "
                                   "constant roi, scales and sizes");
        cin[i] = t ? t->value->init : NULL;
    }
    ops_resize_opts o;
    ops_resize_plan p;
    ops_shape xs = {.dtype = x->dtype, .rank = x->rank};
    memcpy(xs.dims, x->dims, (size_t)x->rank * sizeof *xs.dims);
    oct_status st = ops_resize_read_opts(f->ctx, n, f->opset, &o);
    if (!st)
        st = ops_resize_make_plan(f->ctx, n, f->opset, &xs, cin, n->n_in, &p);
    if (st)
        return st;
    bool ok = p.known && y->rank == x->rank;
    for (int d = 0; ok && d < x->rank; d++)
        ok = p.out[d] == y->dims[d];
    if (!ok)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Resize output shape differs "
                              "from its sizes or scales");
    if (!y->nelems)
        return OCT_OK;
    for (int d = 0; d < x->rank; d++)
        if (!x->dims[d])
            return oct_input_error(f->ctx, OCT_EINPUT, n, 0, "compile: cannot resize an "
                                   "empty tensor to a non-empty one");
    axis_mem ax[OPS_MAX_RANK];
    memset(ax, 0, sizeof ax);
    for (int d = 0; d < x->rank && !st; d++) {
        if (!p.resized[d])
            continue;
        int start, width;
        ops_resize_window(&o, p.scale[d], &start, &width);
        if (width > OPS_RESIZE_MAX_TAPS) {
            st = oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: antialias scale %g "
                                "needs a kernel wider than %d", p.scale[d],
                                OPS_RESIZE_MAX_TAPS);
            break;
        }
        if (!(st = axis_alloc(f, &ax[d], width, y->dims[d])))
            ops_resize_fill_axis(&o, p.scale[d], x->dims[d], y->dims[d], p.roi_start[d],
                                 p.roi_end[d], &ax[d].t);
    }
    if (!st)
        st = o.mode == RS_NEAREST ? lower_nearest(f, n, x, y, &o, ax, p.resized)
                                  : lower_interp(f, n, x, y, &o, ax, p.resized);
    for (int d = 0; d < x->rank; d++)
        oct_free(f->ctx, ax[d].mem, ax[d].size);
    return st;
}
