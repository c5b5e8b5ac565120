/*
 * lower_movement.c: the index-mapping ops, for any dtype of 8, 16, 32 or
 * 64 bits (moved as integers of that width, so float16 or float8 move
 * too).  Shapes are static, so each op becomes either a strided copy (a
 * loop nest over the output reading the input through strides: Expand,
 * DepthToSpace, SpaceToDepth, Trilu), a copy through per-axis source
 * tables computed at compile time (Tile, Pad: cg_copy_by_axis, whose
 * trailing contiguous axes become block copies), slab copies (Split), or
 * a data-dependent row copy (Gather, GatherElements).
 *
 * Pad's pads, axes and mode come from ops_pad_params and its source
 * mapping from ops_pad_source (src/ops/rules.h), as the interpreter's.
 * Gather and GatherElements read their indices at run time: negative ones
 * count from the end; indices out of range, which the interpreter reports,
 * are clamped into the axis (the generated function has no error path, and
 * must not read out of bounds).
 */
#include <string.h>

#include "codegen/movement.h"
#include "ops/rules.h"

oct_status cg_move_type(cg_fn *f, const ir_node *n, const cg_tensor *t, LLVMTypeRef *ty)
{
    switch (ir_dtype_info(t->dtype)->bits) {
    case 8: *ty = f->i8; return OCT_OK;
    case 16: *ty = f->i16; return OCT_OK;
    case 32: *ty = f->i32; return OCT_OK;
    case 64: *ty = f->i64; return OCT_OK;
    default:
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s of %s tensors is "
                              "not supported", n->op_type, ir_dtype_name(t->dtype));
    }
}

LLVMValueRef cg_move_const(cg_fn *f, LLVMTypeRef ty, ir_dtype dt, double v)
{
    uint64_t bits = 0;
    int64_t dims[1] = {1};
    ir_tensor one = {.dtype = dt, .rank = 1, .dims = dims, .data = &bits,
                     .nbytes = ir_dtype_info(dt)->bits / 8, .nelems = 1};
    const ir_dtype_traits *tr = ir_dtype_info(dt);
    if (tr->kind == IR_DK_SINT || tr->kind == IR_DK_UINT || tr->kind == IR_DK_BOOL) {
        int64_t lo = 0, hi = 1;
        if (tr->kind != IR_DK_BOOL && !ops_quant_int_range(dt, &lo, &hi)) {
            lo = tr->kind == IR_DK_SINT ? -(int64_t)(((uint64_t)1 << (tr->bits - 1)) - 1) - 1 : 0;
            hi = tr->kind == IR_DK_SINT ? (int64_t)(((uint64_t)1 << (tr->bits - 1)) - 1)
                                        : (tr->bits >= 63 ? INT64_MAX
                                                          : (int64_t)(((uint64_t)1 << tr->bits) - 1));
        }
        ops_set_i64(&one, 0, ops_quantize_int(tr->kind == IR_DK_BOOL ? (v != 0) : v, 0, lo, hi));
    } else {
        ops_set(&one, 0, v);
    }
    uint64_t word = 0; /* the element's bytes, little-endian */
    memcpy(&word, &bits, one.nbytes);
    return LLVMConstInt(ty, word, 0);
}

oct_status cg_copy_by_axis(cg_fn *f, const ir_node *n, const cg_tensor *x,
                           const cg_tensor *y, int64_t *const *tab, LLVMValueRef fill)
{
    LLVMTypeRef ty;
    oct_status st = cg_move_type(f, n, y, &ty);
    if (st || !y->nelems)
        return st;
    int r = y->rank, lead = r;
    int64_t xs[OPS_MAX_RANK], ys[1][OPS_MAX_RANK], block = 1;
    cg_strides(x->rank, x->dims, xs);
    cg_strides(r, y->dims, ys[0]);
    /* trailing axes that copy x's axis whole and in order: one block */
    while (lead > 0 && x->rank == r) {
        int d = lead - 1;
        bool ident = y->dims[d] == x->dims[d] && xs[d] == block;
        for (int64_t i = 0; ident && i < y->dims[d]; i++)
            ident = tab[d][i] == i * xs[d];
        if (!ident)
            break;
        block *= y->dims[d];
        lead--;
    }
    uint64_t es = ir_dtype_info(y->dtype)->bits / 8;
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y), offs[1], gt[OPS_MAX_RANK];
    for (int d = 0; d < lead; d++)
        gt[d] = cg_const_data(f, tab[d], (size_t)y->dims[d] * sizeof(int64_t));
    cg_nest ns;
    cg_nest_begin(f, &ns, lead, y->dims, 1, (const int64_t(*)[OPS_MAX_RANK])ys, offs);
    LLVMValueRef src = cg_i64c(f, 0);
    for (int d = 0; d < lead; d++)
        src = cg_add(f, src, cg_load(f, f->i64, gt[d], ns.loops[d].iv));
    if (block == 1) {
        LLVMValueRef neg = NULL;
        if (fill) {
            neg = LLVMBuildICmp(f->b, LLVMIntSLT, src, cg_i64c(f, 0), "");
            src = LLVMBuildSelect(f->b, neg, cg_i64c(f, 0), src, "");
        }
        LLVMValueRef v = cg_load(f, ty, px, src);
        if (fill)
            v = LLVMBuildSelect(f->b, neg, fill, v, "");
        cg_store(f, ty, py, offs[0], v);
    } else {
        LLVMBasicBlockRef copy = NULL, pad = NULL, join = NULL;
        if (fill) {
            copy = LLVMAppendBasicBlockInContext(f->llc, f->fn, "copy");
            pad = LLVMAppendBasicBlockInContext(f->llc, f->fn, "fill");
            join = LLVMAppendBasicBlockInContext(f->llc, f->fn, "join");
            LLVMBuildCondBr(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, src, cg_i64c(f, 0), ""),
                            pad, copy);
            LLVMPositionBuilderAtEnd(f->b, pad);
            LLVMValueRef row = cg_gep(f, ty, py, offs[0]);
            cg_loop l;
            LLVMValueRef i = cg_loop_begin(f, &l, block);
            cg_store(f, ty, row, i, fill);
            cg_loop_end(f, &l);
            LLVMBuildBr(f->b, join);
            LLVMPositionBuilderAtEnd(f->b, copy);
        }
        cg_memcpy(f, cg_gep(f, ty, py, offs[0]), cg_gep(f, ty, px, src),
                  cg_i64c(f, block * (int64_t)es));
        if (fill) {
            LLVMBuildBr(f->b, join);
            LLVMPositionBuilderAtEnd(f->b, join);
        }
    }
    cg_nest_end(f, &ns);
    return OCT_OK;
}

/* y = x read through strides xs over the nest dims (y contiguous in that
 * order). */
static oct_status strided_copy(cg_fn *f, const ir_node *n, const cg_tensor *x,
                               const cg_tensor *y, int rank, const int64_t *dims,
                               const int64_t *xs)
{
    LLVMTypeRef ty;
    oct_status st = cg_move_type(f, n, y, &ty);
    if (st || !y->nelems)
        return st;
    int64_t str[2][OPS_MAX_RANK];
    memcpy(str[0], xs, (size_t)rank * sizeof *xs);
    cg_strides(rank, dims, str[1]);
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y), offs[2];
    cg_nest ns;
    cg_nest_begin(f, &ns, rank, dims, 2, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    cg_store(f, ty, py, offs[1], cg_load(f, ty, px, offs[0]));
    cg_nest_end(f, &ns);
    return OCT_OK;
}

static oct_status same_dtype(cg_fn *f, const ir_node *n, const cg_tensor *x,
                             const cg_tensor *y)
{
    if (!x || !y || x->dtype != y->dtype)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: %s input and output "
                              "types differ", n->op_type);
    return OCT_OK;
}

oct_status cg_lower_expand(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    oct_status st = same_dtype(f, n, x, y);
    if (st)
        return st;
    if (x->rank > y->rank)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Expand output rank below "
                              "the input's");
    for (int d = 0; d < x->rank; d++) {
        int64_t xd = x->dims[d], yd = y->dims[d + y->rank - x->rank];
        if (xd != 1 && xd != yd)
            return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Expand output does "
                                  "not broadcast the input");
    }
    int64_t xs[OPS_MAX_RANK];
    cg_bcast_strides(x->rank, x->dims, y->rank, xs);
    return strided_copy(f, n, x, y, y->rank, y->dims, xs);
}

/* Frees the per-axis tables of cg_copy_by_axis. */
static void free_tabs(cg_fn *f, int64_t **tab, const cg_tensor *y)
{
    for (int d = 0; d < y->rank; d++)
        oct_free(f->ctx, tab[d], (size_t)(y->dims[d] ? y->dims[d] : 1) * sizeof(int64_t));
}

static oct_status alloc_tabs(cg_fn *f, int64_t **tab, const cg_tensor *y)
{
    memset(tab, 0, OPS_MAX_RANK * sizeof *tab);
    for (int d = 0; d < y->rank; d++)
        if (!(tab[d] = oct_malloc(f->ctx, (size_t)(y->dims[d] ? y->dims[d] : 1) *
                                              sizeof(int64_t)))) {
            free_tabs(f, tab, y);
            return OCT_EINTERNAL;
        }
    return OCT_OK;
}

oct_status cg_lower_tile(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    oct_status st = same_dtype(f, n, x, y);
    if (st)
        return st;
    bool ok = x->rank == y->rank;
    for (int d = 0; ok && d < x->rank; d++)
        ok = x->dims[d] ? y->dims[d] % x->dims[d] == 0 : y->dims[d] == 0;
    if (!ok)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Tile output is not a "
                              "multiple of the input");
    int64_t *tab[OPS_MAX_RANK], xs[OPS_MAX_RANK];
    if ((st = alloc_tabs(f, tab, y)))
        return st;
    cg_strides(x->rank, x->dims, xs);
    for (int d = 0; d < y->rank; d++)
        for (int64_t i = 0; i < y->dims[d]; i++)
            tab[d][i] = (i % x->dims[d]) * xs[d];
    st = cg_copy_by_axis(f, n, x, y, tab, NULL);
    free_tabs(f, tab, y);
    return st;
}

oct_status cg_lower_pad(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    oct_status st = same_dtype(f, n, x, y);
    if (st)
        return st;
    const ir_tensor *cin[4] = {NULL};
    for (int i = 1; i < n->n_in && i < 4; i++) {
        const cg_tensor *t = cg_in(f, n, i);
        if (t && t->place == CG_PLACE_CONST)
            cin[i] = t->value->init;
    }
    ops_pad_mode mode;
    int64_t begin[OPS_MAX_RANK], end[OPS_MAX_RANK];
    bool known;
    if ((st = ops_pad_params(f->ctx, n, f->opset, x->rank, cin, n->n_in, &mode, begin, end,
                             &known)))
        return st;
    if (!known)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: Pad needs constant "
                              "pads and axes");
    int64_t xs[OPS_MAX_RANK], *tab[OPS_MAX_RANK];
    cg_strides(x->rank, x->dims, xs);
    for (int d = 0; d < x->rank; d++) {
        int64_t lo = begin[d] < 0 ? -begin[d] : 0;
        int64_t cnt = x->dims[d] - lo - (end[d] < 0 ? -end[d] : 0);
        if (cnt < 0 || y->dims[d] != x->dims[d] + begin[d] + end[d] ||
            (mode != PAD_CONSTANT && cnt == 0 && y->dims[d] > 0))
            return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Pad output dim %d does "
                                  "not match its pads", d);
    }
    LLVMTypeRef ty;
    if ((st = cg_move_type(f, n, y, &ty)) || (st = alloc_tabs(f, tab, y)))
        return st;
    bool any_fill = false;
    for (int d = 0; d < x->rank; d++) {
        int64_t lo = begin[d] < 0 ? -begin[d] : 0, pre = begin[d] > 0 ? begin[d] : 0;
        int64_t cnt = x->dims[d] - lo - (end[d] < 0 ? -end[d] : 0);
        for (int64_t i = 0; i < y->dims[d]; i++) {
            int64_t c = i - pre;
            if (c < 0 || c >= cnt)
                c = ops_pad_source(mode, c, cnt);
            tab[d][i] = c < 0 ? CG_MOVE_FILL : (lo + c) * xs[d];
            any_fill |= c < 0;
        }
    }
    LLVMValueRef fill = NULL;
    if (any_fill) {
        const cg_tensor *cv = n->n_in > 2 ? cg_in(f, n, 2) : NULL;
        if (cv && cv->nelems && cv->dtype == y->dtype)
            fill = cg_load(f, ty, cg_ptr(f, cv), cg_i64c(f, 0));
        else if (cv && cv->nelems)
            st = oct_input_error(f->ctx, OCT_EINPUT, n, 2, "compile: constant_value's type "
                                 "differs from the data's");
        else
            fill = cg_move_const(f, ty, y->dtype,
                                 f->opset < 11 ? ir_attr_float(n, "value", 0.0f) : 0.0);
    }
    if (!st)
        st = cg_copy_by_axis(f, n, x, y, tab, fill);
    free_tabs(f, tab, y);
    return st;
}

/* DepthToSpace (DCR or CRD) and SpaceToDepth on NCHW with blocksize b. */
static oct_status block_geometry(cg_fn *f, const ir_node *n, const cg_tensor *x,
                                 const cg_tensor *y, bool to_space, int64_t *b)
{
    *b = ir_attr_int(n, "blocksize", 0);
    bool ok = x->rank == 4 && y->rank == 4 && *b > 0 && x->dims[0] == y->dims[0];
    if (ok && to_space)
        ok = x->dims[1] == y->dims[1] * *b * *b && y->dims[2] == x->dims[2] * *b &&
             y->dims[3] == x->dims[3] * *b;
    else if (ok)
        ok = y->dims[1] == x->dims[1] * *b * *b && x->dims[2] == y->dims[2] * *b &&
             x->dims[3] == y->dims[3] * *b;
    if (!ok)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: %s needs rank-4 tensors "
                              "whose dims agree with blocksize", n->op_type);
    return OCT_OK;
}

oct_status cg_lower_depthtospace(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    int64_t b;
    oct_status st = same_dtype(f, n, x, y);
    if (st || (st = block_geometry(f, n, x, y, true, &b)))
        return st;
    /* y viewed as [N, C', H, b1, W, b2] reads x[n, ch(c, b1, b2), h, w] */
    int64_t c2 = y->dims[1], h = x->dims[2], w = x->dims[3], hw = h * w;
    int64_t dims[6] = {x->dims[0], c2, h, b, w, b};
    int64_t xs[6] = {x->dims[1] * hw, 0, w, 0, 1, 0};
    if (ops_crd_mode(n)) {
        xs[1] = b * b * hw;
        xs[3] = b * hw;
        xs[5] = hw;
    } else {
        xs[1] = hw;
        xs[3] = b * c2 * hw;
        xs[5] = c2 * hw;
    }
    return strided_copy(f, n, x, y, 6, dims, xs);
}

oct_status cg_lower_spacetodepth(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    int64_t b;
    oct_status st = same_dtype(f, n, x, y);
    if (st || (st = block_geometry(f, n, x, y, false, &b)))
        return st;
    /* y viewed as [N, b1, b2, C, H', W'] reads x[n, c, h*b + b1, w*b + b2] */
    int64_t c = x->dims[1], h = x->dims[2], w = x->dims[3];
    int64_t dims[6] = {x->dims[0], b, b, c, y->dims[2], y->dims[3]};
    int64_t xs[6] = {c * h * w, w, 1, h * w, b * w, b};
    return strided_copy(f, n, x, y, 6, dims, xs);
}

oct_status cg_lower_trilu(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    oct_status st = same_dtype(f, n, x, y);
    LLVMTypeRef ty;
    if (st || (st = cg_move_type(f, n, y, &ty)))
        return st;
    int r = x->rank;
    if (r < 2 || x->nelems != y->nelems)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Trilu needs rank 2 or more");
    if (!y->nelems)
        return OCT_OK;
    const cg_tensor *tk = n->n_in > 1 ? cg_in(f, n, 1) : NULL;
    LLVMValueRef k = cg_i64c(f, 0);
    if (tk && tk->nelems) {
        if (tk->dtype != IR_DT_INT64)
            return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "compile: k must be INT64");
        k = cg_load(f, f->i64, cg_ptr(f, tk), cg_i64c(f, 0));
    }
    bool upper = ir_attr_int(n, "upper", 1) != 0;
    int64_t str[1][OPS_MAX_RANK];
    cg_strides(r, x->dims, str[0]);
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y), offs[1];
    cg_nest ns;
    cg_nest_begin(f, &ns, r, x->dims, 1, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    /* keep j - i >= k (upper) or j - i <= k (lower) */
    LLVMValueRef diff = LLVMBuildSub(f->b, ns.loops[r - 1].iv, ns.loops[r - 2].iv, "");
    LLVMValueRef keep = LLVMBuildICmp(f->b, upper ? LLVMIntSGE : LLVMIntSLE, diff, k, "");
    LLVMValueRef v = cg_load(f, ty, px, offs[0]);
    cg_store(f, ty, py, offs[0], LLVMBuildSelect(f->b, keep, v, LLVMConstInt(ty, 0, 0), ""));
    cg_nest_end(f, &ns);
    return OCT_OK;
}

oct_status cg_lower_split(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0);
    LLVMTypeRef ty;
    oct_status st = cg_move_type(f, n, x, &ty);
    if (st)
        return st;
    int axis;
    if (!ops_norm_axis(ir_attr_int(n, "axis", 0), x->rank, &axis))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad Split axis");
    uint64_t es = ir_dtype_info(x->dtype)->bits / 8, outer = 1, inner = es, along = 0;
    for (int d = 0; d < axis; d++)
        outer *= (uint64_t)x->dims[d];
    for (int d = axis + 1; d < x->rank; d++)
        inner *= (uint64_t)x->dims[d];
    for (int i = 0; i < n->n_out; i++) {
        const cg_tensor *y = cg_out(f, n, i);
        bool same = y && y->rank == x->rank && y->dtype == x->dtype;
        for (int d = 0; same && d < x->rank; d++)
            same = d == axis || y->dims[d] == x->dims[d];
        if (!same)
            return oct_output_error(f->ctx, OCT_EINPUT, n, i, "compile: Split output "
                                    "does not match the input off the axis");
        along += (uint64_t)y->dims[axis];
    }
    if (along != (uint64_t)x->dims[axis])
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Split outputs sum to %llu "
                              "along axis %d, the input has %lld",
                              (unsigned long long)along, axis, (long long)x->dims[axis]);
    uint64_t row = (uint64_t)x->dims[axis] * inner, at = 0;
    LLVMValueRef px = cg_ptr(f, x);
    for (int i = 0; i < n->n_out; i++) {
        const cg_tensor *y = cg_out(f, n, i);
        uint64_t chunk = (uint64_t)y->dims[axis] * inner;
        if (chunk && outer) {
            LLVMValueRef py = cg_ptr(f, y);
            cg_loop l;
            LLVMValueRef o = cg_loop_begin(f, &l, (int64_t)outer);
            LLVMValueRef src = cg_gep(f, f->i8, px, cg_madd(f, o, (int64_t)row,
                                                            cg_i64c(f, (int64_t)at)));
            LLVMValueRef dst = cg_gep(f, f->i8, py, cg_mul(f, o, cg_i64c(f, (int64_t)chunk)));
            cg_memcpy(f, dst, src, cg_i64c(f, (int64_t)chunk));
            cg_loop_end(f, &l);
        }
        at += chunk;
    }
    return OCT_OK;
}

LLVMValueRef cg_load_index(cg_fn *f, const cg_tensor *t, LLVMValueRef base, LLVMValueRef idx,
                           int64_t dim)
{
    LLVMValueRef j = cg_load(f, t->dtype == IR_DT_INT32 ? f->i32 : f->i64, base, idx);
    if (t->dtype == IR_DT_INT32)
        j = LLVMBuildSExt(f->b, j, f->i64, "");
    LLVMValueRef zero = cg_i64c(f, 0), top = cg_i64c(f, dim > 0 ? dim - 1 : 0);
    j = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, j, zero, ""),
                        cg_add(f, j, cg_i64c(f, dim)), j, "");
    j = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, j, zero, ""), zero, j, "");
    return LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, j, top, ""), top, j, "");
}

static oct_status check_indices(cg_fn *f, const ir_node *n, const cg_tensor *ind,
                                int64_t dim, uint64_t out_elems)
{
    if (ind->dtype != IR_DT_INT32 && ind->dtype != IR_DT_INT64)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "compile: indices must be INT32 "
                               "or INT64");
    if (dim == 0 && ind->nelems && out_elems)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "compile: indices into an empty "
                               "axis");
    return OCT_OK;
}

/* Gather: y[o, j..., i] = x[o, ind[j...], i] around the axis: each (o, j)
 * copies a row of `inner` elements (an embedding row for axis 0). */
oct_status cg_lower_gather(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *ind = cg_in(f, n, 1), *y = cg_out(f, n, 0);
    oct_status st = same_dtype(f, n, x, y);
    LLVMTypeRef ty;
    if (st || (st = cg_move_type(f, n, x, &ty)))
        return st;
    int axis;
    if (!ops_norm_axis(ir_attr_int(n, "axis", 0), x->rank, &axis))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad Gather axis");
    int64_t outer = 1, inner = 1, dim = x->dims[axis];
    for (int d = 0; d < axis; d++)
        outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++)
        inner *= x->dims[d];
    if ((st = check_indices(f, n, ind, dim, y->nelems)))
        return st;
    if ((uint64_t)outer * ind->nelems * (uint64_t)inner != y->nelems)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Gather output size differs "
                              "from the input's and indices'");
    if (!y->nelems)
        return OCT_OK;
    int64_t es = (int64_t)ir_dtype_info(x->dtype)->bits / 8, nidx = (int64_t)ind->nelems;
    LLVMValueRef px = cg_ptr(f, x), pi = cg_ptr(f, ind), py = cg_ptr(f, y);
    cg_loop lo, lj;
    LLVMValueRef o = cg_loop_begin(f, &lo, outer);
    LLVMValueRef j = cg_loop_begin(f, &lj, nidx);
    LLVMValueRef k = cg_load_index(f, ind, pi, j, dim);
    LLVMValueRef src = cg_mul(f, cg_madd(f, o, dim, k), cg_i64c(f, inner));
    LLVMValueRef dst = cg_mul(f, cg_madd(f, o, nidx, j), cg_i64c(f, inner));
    if (inner == 1)
        cg_store(f, ty, py, dst, cg_load(f, ty, px, src));
    else
        cg_memcpy(f, cg_gep(f, ty, py, dst), cg_gep(f, ty, px, src), cg_i64c(f, inner * es));
    cg_loop_end(f, &lj);
    cg_loop_end(f, &lo);
    return OCT_OK;
}

/* GatherElements: y[i] = x[i with its axis coordinate replaced by ind[i]]. */
oct_status cg_lower_gatherelements(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *ind = cg_in(f, n, 1), *y = cg_out(f, n, 0);
    oct_status st = same_dtype(f, n, x, y);
    LLVMTypeRef ty;
    if (st || (st = cg_move_type(f, n, x, &ty)))
        return st;
    int r = x->rank, axis;
    if (!ops_norm_axis(ir_attr_int(n, "axis", 0), r, &axis))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad GatherElements axis");
    bool ok = ind->rank == r && y->rank == r;
    for (int d = 0; ok && d < r; d++)
        ok = y->dims[d] == ind->dims[d] && (d == axis || ind->dims[d] <= x->dims[d]);
    if (!ok)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: GatherElements indices do "
                              "not fit the data");
    if ((st = check_indices(f, n, ind, x->dims[axis], y->nelems)))
        return st;
    if (!y->nelems)
        return OCT_OK;
    int64_t str[2][OPS_MAX_RANK], xs[OPS_MAX_RANK];
    cg_strides(r, x->dims, xs);
    memcpy(str[0], xs, sizeof xs);
    str[0][axis] = 0;
    cg_strides(r, y->dims, str[1]);
    LLVMValueRef px = cg_ptr(f, x), pi = cg_ptr(f, ind), py = cg_ptr(f, y), offs[2];
    cg_nest ns;
    cg_nest_begin(f, &ns, r, y->dims, 2, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    LLVMValueRef k = cg_load_index(f, ind, pi, offs[1], x->dims[axis]);
    cg_store(f, ty, py, offs[1], cg_load(f, ty, px, cg_madd(f, k, xs[axis], offs[0])));
    cg_nest_end(f, &ns);
    return OCT_OK;
}
