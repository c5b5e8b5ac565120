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
