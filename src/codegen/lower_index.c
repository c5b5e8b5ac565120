/*
 * lower_index.c: the index ops CumSum, Hardmax, OneHot and EyeLike as
 * loops over static shapes, computing on the element values of
 * lower_elem.h (FLOAT as f32, the other floats as f64, integers as i64)
 * exactly as the interpreter's kernels (src/ref/index.c) do, with the
 * geometry helpers both share (src/ops/shape_index.c):
 *  - CumSum's axis (a geometry input) must be a constant; the running sum
 *    is a loop-carried value of the element's class, stored (and rounded)
 *    after or before each add (`exclusive`), walking the axis backwards
 *    with `reverse`; integers wrap;
 *  - Hardmax keeps the first largest element of each row (a NaN is
 *    replaced by any number that follows it);
 *  - OneHot's depth comes from the output shape; negative indices count
 *    from depth, and one outside [-depth, depth) or a non-integral float
 *    matches no position (compared in double, as the interpreter does);
 *  - EyeLike stores 1 where j - i == k.
 */
#include <string.h>

#include "codegen/lower_elem.h"
#include "ops/rules.h"

static oct_status value_class(cg_fn *f, const ir_node *n, ir_dtype dt, cg_vclass *c)
{
    *c = cg_val_class(dt);
    if (*c == CG_V_NONE)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s of %s tensors is not "
                              "supported", n->op_type, ir_dtype_name(dt));
    return OCT_OK;
}

static LLVMValueRef add_values(cg_fn *f, cg_vclass c, LLVMValueRef a, LLVMValueRef b)
{
    return c == CG_V_INT ? LLVMBuildAdd(f->b, a, b, "") : LLVMBuildFAdd(f->b, a, b, "");
}

oct_status cg_lower_cumsum(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *ta = cg_in(f, n, 1), *y = cg_out(f, n, 0);
    cg_vclass c;
    oct_status st = value_class(f, n, x->dtype, &c);
    if (st)
        return st;
    int axis;
    const ir_tensor *at = ta && ta->place == CG_PLACE_CONST ? ta->value->init : NULL;
    if (!at)
        return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 1, "compile: CumSum needs a "
                               "constant axis");
    if (!ops_cumsum_axis(at, x->rank, &axis))
        return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "compile: bad CumSum axis");
    if (y->dtype != x->dtype || y->nelems != x->nelems)
        return oct_output_error(f->ctx, OCT_EINPUT, n, 0, "compile: output differs from x");
    if (!x->nelems)
        return OCT_OK;
    bool exclusive = ir_attr_int(n, "exclusive", 0) != 0;
    bool reverse = ir_attr_int(n, "reverse", 0) != 0;
    int64_t outer, len, inner;
    ops_axis_split(x->rank, x->dims, axis, false, &outer, &len, &inner);
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y), zero = cg_val_const(f, c, 0, 0);
    cg_loop lo, li, lk;
    cg_acc acc;
    LLVMValueRef o = cg_loop_begin(f, &lo, outer);
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    LLVMValueRef k = cg_loop_begin(f, &lk, len);
    LLVMValueRef sum = cg_acc_begin(f, &lk, &acc, zero);
    if (reverse)
        k = LLVMBuildSub(f->b, cg_i64c(f, len - 1), k, "");
    LLVMValueRef idx = cg_madd(f, cg_madd(f, o, len, k), inner, i);
    LLVMValueRef next = add_values(f, c, sum, cg_val_load(f, x->dtype, px, idx));
    cg_val_store(f, y->dtype, py, idx, exclusive ? sum : next, true);
    cg_acc_end(f, &acc, next);
    cg_loop_end(f, &lk);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lo);
    return OCT_OK;
}

oct_status cg_lower_hardmax(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    cg_vclass c;
    oct_status st = value_class(f, n, x->dtype, &c);
    if (st)
        return st;
    int axis;
    if (c == CG_V_INT || !ops_hardmax_axis(n, f->opset, x->rank, &axis))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Hardmax needs a float input "
                              "and an axis in range");
    if (y->dtype != x->dtype || y->nelems != x->nelems)
        return oct_output_error(f->ctx, OCT_EINPUT, n, 0, "compile: output differs from x");
    if (!x->nelems)
        return OCT_OK;
    int64_t outer, len, inner;
    ops_axis_split(x->rank, x->dims, axis, f->opset < 13, &outer, &len, &inner);
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y);
    cg_loop lo, li, lk;
    cg_acc av, ab;
    LLVMValueRef o = cg_loop_begin(f, &lo, outer);
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    LLVMValueRef base = cg_madd(f, o, len * inner, i);
    LLVMValueRef first = cg_val_load(f, x->dtype, px, base);
    /* rows of one element skip the search loop: trip count len - 1 */
    LLVMValueRef k = cg_loop_begin(f, &lk, len - 1);
    LLVMValueRef bv = cg_acc_begin(f, &lk, &av, first);
    LLVMValueRef bk = cg_acc_begin(f, &lk, &ab, cg_i64c(f, 0));
    LLVMValueRef k1 = cg_add(f, k, cg_i64c(f, 1));
    LLVMValueRef v = cg_val_load(f, x->dtype, px, cg_madd(f, k1, inner, base));
    LLVMValueRef better = LLVMBuildOr(
        f->b, LLVMBuildFCmp(f->b, LLVMRealOGT, v, bv, ""),
        LLVMBuildAnd(f->b, LLVMBuildFCmp(f->b, LLVMRealUNO, bv, bv, ""),
                     LLVMBuildFCmp(f->b, LLVMRealORD, v, v, ""), ""), "");
    cg_acc_end(f, &av, LLVMBuildSelect(f->b, better, v, bv, ""));
    cg_acc_end(f, &ab, LLVMBuildSelect(f->b, better, k1, bk, ""));
    cg_loop_end(f, &lk);
    LLVMValueRef best = cg_acc_result(f, &lk, &ab, cg_i64c(f, 0));
    k = cg_loop_begin(f, &lk, len);
    LLVMValueRef hit = LLVMBuildICmp(f->b, LLVMIntEQ, k, best, "");
    cg_val_store(f, y->dtype, py, cg_madd(f, k, inner, base),
                 LLVMBuildSelect(f->b, hit, cg_val_const(f, c, 1, 1), cg_val_const(f, c, 0, 0),
                                 ""), true);
    cg_loop_end(f, &lk);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lo);
    return OCT_OK;
}

oct_status cg_lower_onehot(cg_fn *f, const ir_node *n)
{
    cg_tensor *ind = cg_in(f, n, 0), *vals = cg_in(f, n, 2), *y = cg_out(f, n, 0);
    cg_vclass ci, cy;
    oct_status st = value_class(f, n, ind->dtype, &ci);
    if (st || (st = value_class(f, n, y->dtype, &cy)))
        return st;
    int axis;
    if (!ops_norm_axis(ir_attr_int(n, "axis", -1), ind->rank + 1, &axis) ||
        y->rank != ind->rank + 1 || vals->nelems != 2 || vals->dtype != y->dtype)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: OneHot's axis, values or "
                              "output shape do not fit");
    int64_t depth = y->dims[axis], outer = 1, inner = 1;
    for (int d = 0; d < ind->rank; d++)
        *(d < axis ? &outer : &inner) *= ind->dims[d];
    if (!y->nelems)
        return OCT_OK;
    LLVMValueRef pi = cg_ptr(f, ind), pv = cg_ptr(f, vals), py = cg_ptr(f, y);
    LLVMValueRef off = cg_val_load(f, vals->dtype, pv, cg_i64c(f, 0));
    LLVMValueRef on = cg_val_load(f, vals->dtype, pv, cg_i64c(f, 1));
    LLVMValueRef dd = LLVMConstReal(LLVMDoubleTypeInContext(f->llc), (double)depth);
    cg_loop lo, ld, li;
    LLVMValueRef o = cg_loop_begin(f, &lo, outer);
    LLVMValueRef d = cg_loop_begin(f, &ld, depth);
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    LLVMValueRef v = cg_val_load(f, ind->dtype, pi, cg_madd(f, o, inner, i));
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(f->llc);
    if (ci == CG_V_INT)
        v = LLVMBuildSIToFP(f->b, v, f64, "");
    else if (ci == CG_V_F32)
        v = LLVMBuildFPExt(f->b, v, f64, "");
    v = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealOLT, v, LLVMConstReal(f64, 0), ""),
                        LLVMBuildFAdd(f->b, v, dd, ""), v, "");
    LLVMValueRef hit = LLVMBuildFCmp(f->b, LLVMRealOEQ, v, LLVMBuildSIToFP(f->b, d, f64, ""), "");
    LLVMValueRef at = cg_madd(f, cg_madd(f, o, depth, d), inner, i);
    cg_val_store(f, y->dtype, py, at, LLVMBuildSelect(f->b, hit, on, off, ""), true);
    cg_loop_end(f, &li);
    cg_loop_end(f, &ld);
    cg_loop_end(f, &lo);
    return OCT_OK;
}

oct_status cg_lower_eyelike(cg_fn *f, const ir_node *n)
{
    cg_tensor *y = cg_out(f, n, 0);
    cg_vclass c;
    oct_status st = value_class(f, n, y->dtype, &c);
    if (st)
        return st;
    if (y->rank != 2)
        return oct_output_error(f->ctx, OCT_EINPUT, n, 0, "compile: EyeLike output must be "
                                "2-D");
    if (!y->nelems)
        return OCT_OK;
    int64_t k = ir_attr_int(n, "k", 0);
    LLVMValueRef py = cg_ptr(f, y);
    cg_loop lr, lc;
    LLVMValueRef r = cg_loop_begin(f, &lr, y->dims[0]);
    LLVMValueRef col = cg_loop_begin(f, &lc, y->dims[1]);
    LLVMValueRef hit = LLVMBuildICmp(f->b, LLVMIntEQ, LLVMBuildSub(f->b, col, r, ""),
                                     cg_i64c(f, k), "");
    cg_val_store(f, y->dtype, py, cg_madd(f, r, y->dims[1], col),
                 LLVMBuildSelect(f->b, hit, cg_val_const(f, c, 1, 1), cg_val_const(f, c, 0, 0),
                                 ""), true);
    cg_loop_end(f, &lc);
    cg_loop_end(f, &lr);
    return OCT_OK;
}

/* ---- GatherND, ScatterND, ScatterElements, TopK ----------------------------- */

static oct_status index_tensor(cg_fn *f, const ir_node *n, const cg_tensor *t)
{
    if (t->dtype != IR_DT_INT32 && t->dtype != IR_DT_INT64)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "compile: indices must be INT32 or "
                               "INT64");
    return OCT_OK;
}

static oct_status byte_size(cg_fn *f, const ir_node *n, ir_dtype dt, int64_t *es)
{
    unsigned bits = ir_dtype_info(dt)->bits;
    if (bits == 0 || bits % 8)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s of %s tensors is not "
                              "supported", n->op_type, ir_dtype_name(dt));
    *es = bits / 8;
    return OCT_OK;
}

oct_status cg_lower_gathernd(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *ind = cg_in(f, n, 1), *y = cg_out(f, n, 0);
    int64_t es, bd = ir_attr_int(n, "batch_dims", 0);
    ops_gathernd_plan p;
    oct_status st = index_tensor(f, n, ind);
    if (st || (st = byte_size(f, n, x->dtype, &es)))
        return st;
    if (!ops_gathernd_plan_of(x->rank, x->dims, ind->rank, ind->dims, bd, &p) ||
        y->dtype != x->dtype || y->nelems != (uint64_t)(p.batch * p.n * p.slice))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: GatherND indices do not fit "
                              "the data");
    if (!y->nelems)
        return OCT_OK;
    LLVMValueRef px = cg_ptr(f, x), pi = cg_ptr(f, ind), py = cg_ptr(f, y);
    cg_loop lb, lj;
    LLVMValueRef b = cg_loop_begin(f, &lb, p.batch);
    LLVMValueRef j = cg_loop_begin(f, &lj, p.n);
    LLVMValueRef row = cg_madd(f, b, p.n, j);
    LLVMValueRef off = cg_mul(f, b, cg_i64c(f, p.data_batch));
    int64_t stride = p.data_batch;
    for (int64_t t = 0; t < p.last; t++) {
        int64_t dim = x->dims[bd + t];
        stride /= dim ? dim : 1;
        LLVMValueRef k = cg_load_index(f, ind, pi, cg_madd(f, row, p.last, cg_i64c(f, t)), dim);
        off = cg_madd(f, k, stride, off);
    }
    cg_memcpy(f, cg_gep(f, f->i8, py, cg_mul(f, row, cg_i64c(f, p.slice * es))),
              cg_gep(f, f->i8, px, cg_mul(f, off, cg_i64c(f, es))), cg_i64c(f, p.slice * es));
    cg_loop_end(f, &lj);
    cg_loop_end(f, &lb);
    return OCT_OK;
}

/* out[at] = combine(out[at], u[u_at]) as the interpreter's scatter does. */
static void scatter_store(cg_fn *f, const cg_tensor *y, LLVMValueRef py, LLVMValueRef at,
                          const cg_tensor *u, LLVMValueRef pu, LLVMValueRef u_at,
                          ops_reduction red, int64_t es)
{
    if (red == OPS_RED_NONE) {
        cg_memcpy(f, cg_gep(f, f->i8, py, cg_mul(f, at, cg_i64c(f, es))),
                  cg_gep(f, f->i8, pu, cg_mul(f, u_at, cg_i64c(f, es))), cg_i64c(f, es));
        return;
    }
    cg_vclass c = cg_val_class(y->dtype);
    LLVMValueRef a = cg_val_load(f, y->dtype, py, at), b = cg_val_load(f, u->dtype, pu, u_at);
    LLVMValueRef r;
    bool fl = c != CG_V_INT;
    if (red == OPS_RED_ADD)
        r = fl ? LLVMBuildFAdd(f->b, a, b, "") : LLVMBuildAdd(f->b, a, b, "");
    else if (red == OPS_RED_MUL)
        r = fl ? LLVMBuildFMul(f->b, a, b, "") : LLVMBuildMul(f->b, a, b, "");
    else {
        bool mx = red == OPS_RED_MAX;
        LLVMValueRef take = fl ? LLVMBuildFCmp(f->b, mx ? LLVMRealOGT : LLVMRealOLT, b, a, "")
                               : LLVMBuildICmp(f->b, mx ? LLVMIntSGT : LLVMIntSLT, b, a, "");
        r = LLVMBuildSelect(f->b, take, b, a, "");
    }
    cg_val_store(f, y->dtype, py, at, r, true);
}

static oct_status scatter_begin(cg_fn *f, const ir_node *n, ops_reduction *red, int64_t *es)
{
    cg_tensor *x = cg_in(f, n, 0), *ind = cg_in(f, n, 1), *u = cg_in(f, n, 2);
    cg_tensor *y = cg_out(f, n, 0);
    oct_status st = index_tensor(f, n, ind);
    if (st || (st = byte_size(f, n, x->dtype, es)))
        return st;
    if (!ops_scatter_reduction(n, red) || u->dtype != x->dtype || y->dtype != x->dtype ||
        y->nelems != x->nelems)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad %s reduction or types",
                              n->op_type);
    if (*red != OPS_RED_NONE && cg_val_class(x->dtype) == CG_V_NONE)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s with a reduction on "
                              "%s is not supported", n->op_type, ir_dtype_name(x->dtype));
    if (x->nbytes)
        cg_memcpy(f, cg_ptr(f, y), cg_ptr(f, x), cg_i64c(f, (int64_t)x->nbytes));
    return OCT_OK;
}

oct_status cg_lower_scatternd(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *ind = cg_in(f, n, 1), *u = cg_in(f, n, 2);
    cg_tensor *y = cg_out(f, n, 0);
    ops_reduction red;
    int64_t es;
    oct_status st = scatter_begin(f, n, &red, &es);
    if (st)
        return st;
    int64_t last = ind->rank ? ind->dims[ind->rank - 1] : 0, slice = 1;
    if (last < 1 || last > x->rank)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "compile: bad ScatterND indices");
    for (int d = (int)last; d < x->rank; d++)
        slice *= x->dims[d];
    int64_t rows = (int64_t)ind->nelems / last;
    if (!rows || !slice || (uint64_t)(rows * slice) != u->nelems)
        return rows && slice ? oct_input_error(f->ctx, OCT_EINPUT, n, 2, "compile: updates do "
                                               "not fit") : OCT_OK;
    LLVMValueRef pi = cg_ptr(f, ind), pu = cg_ptr(f, u), py = cg_ptr(f, y);
    cg_loop lr, le;
    LLVMValueRef r = cg_loop_begin(f, &lr, rows);
    LLVMValueRef off = cg_i64c(f, 0);
    for (int64_t t = 0; t < last; t++) {
        LLVMValueRef k = cg_load_index(f, ind, pi, cg_madd(f, r, last, cg_i64c(f, t)), x->dims[t]);
        off = cg_add(f, cg_mul(f, off, cg_i64c(f, x->dims[t])), k);
    }
    LLVMValueRef e = cg_loop_begin(f, &le, slice);
    scatter_store(f, y, py, cg_madd(f, off, slice, e), u, pu, cg_madd(f, r, slice, e), red, es);
    cg_loop_end(f, &le);
    cg_loop_end(f, &lr);
    return OCT_OK;
}

oct_status cg_lower_scatterelements(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *ind = cg_in(f, n, 1), *u = cg_in(f, n, 2);
    cg_tensor *y = cg_out(f, n, 0);
    ops_reduction red;
    int64_t es;
    int axis, r = x->rank;
    oct_status st = scatter_begin(f, n, &red, &es);
    if (st)
        return st;
    if (!ops_norm_axis(ir_attr_int(n, "axis", 0), r, &axis) || ind->rank != r ||
        u->nelems != ind->nelems)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: ScatterElements indices do not "
                              "fit the data");
    if (!ind->nelems)
        return OCT_OK;
    int64_t str[2][OPS_MAX_RANK], xs[OPS_MAX_RANK];
    cg_strides(r, x->dims, xs);
    memcpy(str[0], xs, sizeof xs);
    str[0][axis] = 0;
    cg_strides(r, ind->dims, str[1]);
    LLVMValueRef pi = cg_ptr(f, ind), pu = cg_ptr(f, u), py = cg_ptr(f, y), offs[2];
    cg_nest ns;
    cg_nest_begin(f, &ns, r, ind->dims, 2, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    LLVMValueRef k = cg_load_index(f, ind, pi, offs[1], x->dims[axis]);
    scatter_store(f, y, py, cg_madd(f, k, xs[axis], offs[0]), u, pu, offs[1], red, es);
    cg_nest_end(f, &ns);
    return OCT_OK;
}

/* (a, ia) ranks before (b, ib) in TopK's order (the interpreter's
 * ranks_before: NaN first, then by value, equal values by index). */
static LLVMValueRef ranks_before(cg_fn *f, LLVMValueRef a, LLVMValueRef ia, LLVMValueRef b,
                                 LLVMValueRef ib, bool largest)
{
    LLVMBuilderRef B = f->b;
    LLVMValueRef na = LLVMBuildFCmp(B, LLVMRealUNO, a, a, "");
    LLVMValueRef nb = LLVMBuildFCmp(B, LLVMRealUNO, b, b, "");
    LLVMValueRef lower = LLVMBuildICmp(B, LLVMIntSLT, ia, ib, "");
    LLVMValueRef by_nan = LLVMBuildSelect(B, LLVMBuildAnd(B, na, nb, ""), lower, na, "");
    LLVMValueRef by_val = LLVMBuildSelect(
        B, LLVMBuildFCmp(B, LLVMRealONE, a, b, ""),
        LLVMBuildFCmp(B, largest ? LLVMRealOGT : LLVMRealOLT, a, b, ""), lower, "");
    return LLVMBuildSelect(B, LLVMBuildOr(B, na, nb, ""), by_nan, by_val, "");
}

oct_status cg_lower_topk(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0), *yi = cg_out(f, n, 1);
    cg_vclass c;
    int64_t es;
    oct_status st = value_class(f, n, x->dtype, &c);
    if (st || (st = byte_size(f, n, x->dtype, &es)))
        return st;
    int axis;
    if (!ops_norm_axis(ir_attr_int(n, "axis", -1), x->rank, &axis) || !y ||
        y->rank != x->rank || y->dtype != x->dtype)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad TopK axis or output");
    int64_t k = y->dims[axis], outer, len, inner;
    ops_axis_split(x->rank, x->dims, axis, false, &outer, &len, &inner);
    if (k > len)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: TopK k exceeds the axis");
    if (!y->nelems)
        return OCT_OK;
    bool largest = ir_attr_int(n, "largest", 1) != 0;
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(f->llc);
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y), pyi = yi ? cg_ptr(f, yi) : NULL;
    LLVMValueRef none = cg_i64c(f, -1), dz = LLVMConstReal(f64, 0);
    cg_loop lo, li, lr, lc;
    cg_acc apv, api, abv, abi;
    LLVMValueRef o = cg_loop_begin(f, &lo, outer);
    LLVMValueRef i = cg_loop_begin(f, &li, inner);
    LLVMValueRef base = cg_madd(f, o, len * inner, i);
    LLVMValueRef r = cg_loop_begin(f, &lr, k);
    LLVMValueRef pv = cg_acc_begin(f, &lr, &apv, dz);
    LLVMValueRef pi = cg_acc_begin(f, &lr, &api, none);
    LLVMValueRef col = cg_loop_begin(f, &lc, len);
    LLVMValueRef bv = cg_acc_begin(f, &lc, &abv, dz);
    LLVMValueRef bi = cg_acc_begin(f, &lc, &abi, none);
    LLVMValueRef v = cg_val_load(f, x->dtype, px, cg_madd(f, col, inner, base));
    if (c == CG_V_INT)
        v = LLVMBuildSIToFP(f->b, v, f64, "");
    else if (c == CG_V_F32)
        v = LLVMBuildFPExt(f->b, v, f64, "");
    LLVMValueRef after = LLVMBuildOr(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, pi, cg_i64c(f, 0), ""),
                                     ranks_before(f, pv, pi, v, col, largest), "");
    LLVMValueRef better = LLVMBuildOr(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, bi, cg_i64c(f, 0), ""),
                                      ranks_before(f, v, col, bv, bi, largest), "");
    LLVMValueRef take = LLVMBuildAnd(f->b, after, better, "");
    cg_acc_end(f, &abv, LLVMBuildSelect(f->b, take, v, bv, ""));
    cg_acc_end(f, &abi, LLVMBuildSelect(f->b, take, col, bi, ""));
    cg_loop_end(f, &lc);
    LLVMValueRef best_v = cg_acc_result(f, &lc, &abv, dz);
    LLVMValueRef best_i = cg_acc_result(f, &lc, &abi, none);
    LLVMValueRef to = cg_madd(f, cg_madd(f, o, k, r), inner, i);
    LLVMValueRef src = cg_madd(f, best_i, inner, base);
    cg_memcpy(f, cg_gep(f, f->i8, py, cg_mul(f, to, cg_i64c(f, es))),
              cg_gep(f, f->i8, px, cg_mul(f, src, cg_i64c(f, es))), cg_i64c(f, es));
    if (pyi)
        cg_store(f, f->i64, pyi, to, best_i);
    cg_acc_end(f, &apv, best_v);
    cg_acc_end(f, &api, best_i);
    cg_loop_end(f, &lr);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lo);
    return OCT_OK;
}
