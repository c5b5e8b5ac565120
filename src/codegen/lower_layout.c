/*
 * lower_layout.c: ops that move bytes without changing values, for any
 * whole-byte dtype.  Reshape, Flatten, Squeeze, Unsqueeze, Identity and
 * Dropout (inference: its mask output all true) copy the input
 * buffer (aliasing them is left to a later memory-plan refinement);
 * Concat checks that its output is the inputs' concatenation (a declared
 * output shape may disagree) and copies each input's slab per outer
 * index (in an in-place key/value cache, the inputs after the past
 * only: kvcache.c); Transpose walks the
 * output in order and reads the input through permuted strides.
 */
#include <string.h>

#include "codegen/movement.h"
#include "ops/rules.h"

static oct_status need_bytes(cg_fn *f, const ir_node *n, const cg_tensor *t)
{
    if (ir_dtype_info(t->dtype)->bits % 8 || !cg_elem_type(f, t->dtype))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s of %s tensors is "
                              "not supported", n->op_type, ir_dtype_name(t->dtype));
    return OCT_OK;
}

static oct_status copy_input0(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    oct_status st = need_bytes(f, n, x);
    if (st)
        return st;
    if (x->nbytes != y->nbytes)
        return oct_node_error(f->ctx, OCT_EINTERNAL, n, "compile: size changes in a copy");
    if (x->dyn) /* bytes known at run time (symdims.h) */
        cg_memcpy(f, cg_ptr(f, y), cg_ptr(f, x),
                  cg_mul(f, cg_nelems_v(f, x), cg_i64c(f, ir_dtype_info(x->dtype)->bits / 8)));
    else if (x->nbytes)
        cg_memcpy(f, cg_ptr(f, y), cg_ptr(f, x), cg_i64c(f, (int64_t)x->nbytes));
    return OCT_OK;
}

oct_status cg_lower_reshape(cg_fn *f, const ir_node *n) { return copy_input0(f, n); }
oct_status cg_lower_flatten(cg_fn *f, const ir_node *n) { return copy_input0(f, n); }
oct_status cg_lower_squeeze(cg_fn *f, const ir_node *n) { return copy_input0(f, n); }
oct_status cg_lower_unsqueeze(cg_fn *f, const ir_node *n) { return copy_input0(f, n); }
oct_status cg_lower_identity(cg_fn *f, const ir_node *n) { return copy_input0(f, n); }

/* Dropout in inference mode (ops_dropout_check): Y = X and the mask, if
 * used, all true (BOOL from opset 10, X's type before: 1).  A training_mode
 * known only at run time is refused: the generated code cannot refuse a
 * true one as the interpreter does. */
oct_status cg_lower_dropout(cg_fn *f, const ir_node *n)
{
    const ir_tensor *c[3] = {NULL, NULL, NULL};
    for (int i = 1; i < n->n_in && i < 3; i++) {
        const cg_tensor *t = cg_in(f, n, i);
        c[i] = t && t->place == CG_PLACE_CONST ? t->value->init : NULL;
    }
    if (f->opset >= 12 && n->n_in > 2 && n->in[2] && !c[2])
        return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, 2,
                               "compile: Dropout needs a constant training_mode");
    oct_status st = ops_dropout_check(f->ctx, n, f->opset, c, n->n_in);
    if (!st)
        st = copy_input0(f, n);
    cg_tensor *mask = cg_out(f, n, 1);
    if (st || !mask || !mask->nelems)
        return st;
    LLVMTypeRef ty;
    if ((st = cg_move_type(f, n, mask, &ty)))
        return st;
    LLVMValueRef one = cg_move_const(f, ty, mask->dtype, 1.0), pm = cg_ptr(f, mask);
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(f, &l, (int64_t)mask->nelems);
    cg_store(f, ty, pm, i, one);
    cg_loop_end(f, &l);
    return OCT_OK;
}

oct_status cg_lower_concat(cg_fn *f, const ir_node *n)
{
    cg_tensor *y = cg_out(f, n, 0);
    oct_status st = need_bytes(f, n, y);
    if (st)
        return st;
    int axis;
    if (!ops_norm_axis(ir_attr_int(n, "axis", 0), y->rank, &axis))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad Concat axis");
    /* storage position j holds dim order[j]: NHWC (the layout plan, every
     * input too) puts the channels last */
    static const int nhwc[4] = {0, 2, 3, 1};
    int order[OPS_MAX_RANK], pos = axis;
    for (int j = 0; j < y->rank; j++) {
        order[j] = y->nhwc ? nhwc[j] : j;
        if (order[j] == axis)
            pos = j;
    }
    uint64_t esize = ir_dtype_info(y->dtype)->bits / 8, outer = 1, inner = esize;
    for (int j = 0; j < pos; j++)
        outer *= (uint64_t)y->dims[order[j]];
    for (int j = pos + 1; j < y->rank; j++)
        inner *= (uint64_t)y->dims[order[j]];
    /* the output's shape is the graph's (declared or inferred): check it
     * is the inputs' concatenation, or the copies overrun y */
    uint64_t along = 0;
    for (int i = 0; i < n->n_in; i++) {
        const cg_tensor *x = cg_in(f, n, i);
        bool same = x && x->rank == y->rank && x->dtype == y->dtype;
        for (int d = 0; same && d < y->rank; d++)
            same = d == axis || x->dims[d] == y->dims[d];
        if (!same)
            return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Concat input %d %s the "
                                  "output's dtype, rank or dims off the axis", i,
                                  x ? "does not match" : "is absent: it cannot match");
        along += (uint64_t)x->dims[axis];
    }
    if (along != (uint64_t)y->dims[axis])
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Concat inputs sum to %llu "
                              "along axis %d, the output has %lld",
                              (unsigned long long)along, axis, (long long)y->dims[axis]);
    LLVMValueRef py = cg_ptr(f, y);
    uint64_t row = (uint64_t)y->dims[axis] * inner, at = 0;
    for (int i = 0; i < n->n_in; i++) {
        cg_tensor *x = cg_in(f, n, i);
        uint64_t chunk = (uint64_t)x->dims[axis] * inner;
        /* placed at its slice by the memory plan, or the past already in
         * an in-place key/value cache (kvcache.c): already there */
        bool there = (x->in_concat && &f->tens[x->concat_out] == y) ||
                     (i == 0 && y->kv_cache);
        if (chunk && !there) {
            LLVMValueRef px = cg_ptr(f, x);
            cg_loop l;
            LLVMValueRef o = cg_loop_begin(f, &l, (int64_t)outer);
            LLVMValueRef dst = cg_gep(f, f->i8, py, cg_madd(f, o, (int64_t)row, cg_i64c(f, (int64_t)at)));
            LLVMValueRef src = cg_gep(f, f->i8, px, cg_mul(f, o, cg_i64c(f, (int64_t)chunk)));
            cg_memcpy(f, dst, src, cg_i64c(f, (int64_t)chunk));
            cg_loop_end(f, &l);
        }
        at += chunk;
    }
    return OCT_OK;
}

oct_status cg_lower_transpose(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    oct_status st = need_bytes(f, n, x);
    if (st)
        return st;
    int r = x->rank, perm[OPS_MAX_RANK];
    const ir_attr *pa = ir_node_attr(n, "perm");
    for (int d = 0; d < r; d++)
        perm[d] = pa && pa->n == (size_t)r ? (int)pa->ints[d] : r - 1 - d;
    int64_t xs[OPS_MAX_RANK], str[2][OPS_MAX_RANK];
    cg_strides(r, x->dims, xs);
    for (int d = 0; d < r; d++) {
        if (perm[d] < 0 || perm[d] >= r)
            return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad Transpose perm");
        str[0][d] = xs[perm[d]];
    }
    cg_strides(r, y->dims, str[1]);
    LLVMTypeRef ty = cg_elem_type(f, x->dtype);
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y), offs[2];
    cg_nest ns;
    cg_nest_begin(f, &ns, r, y->dims, 2, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    cg_store(f, ty, py, offs[1], cg_load(f, ty, px, offs[0]));
    cg_nest_end(f, &ns);
    return OCT_OK;
}

/* Slice with constant starts/ends/axes/steps (attributes before opset 10,
 * inputs 1-4 after), resolved as the spec says: negative starts/ends count
 * from the end, then clamp to [0, dim] for positive steps and [0, dim-1] /
 * [-1, dim-1] for negative ones; the output dims come from shape inference. */
oct_status cg_lower_slice(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    oct_status st = need_bytes(f, n, x);
    if (st)
        return st;
    int64_t v[4][OPS_MAX_RANK];
    int cnt[4] = {-1, -1, -1, -1};
    for (int k = 0; k < 4; k++) {
        if (f->opset < 10) {
            static const char *const names[] = {"starts", "ends", "axes", NULL};
            const ir_attr *a = names[k] ? ir_node_attr(n, names[k]) : NULL;
            if (a && a->n <= OPS_MAX_RANK) {
                if (a->n) /* an empty list has no array */
                    memcpy(v[k], a->ints, a->n * sizeof *a->ints);
                cnt[k] = (int)a->n;
            }
            continue;
        }
        cg_tensor *t = cg_in(f, n, k + 1);
        if (!t)
            continue;
        if (t->place != CG_PLACE_CONST ||
            (cnt[k] = ops_const_ints(t->value->init, v[k], OPS_MAX_RANK)) < 0)
            return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, k + 1,
                                   "compile: Slice needs constant integer parameters");
    }
    int r = x->rank, m = cnt[0];
    if (m < 0 || cnt[1] != m || (cnt[2] >= 0 && cnt[2] != m) || (cnt[3] >= 0 && cnt[3] != m))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad Slice parameters");
    int64_t start[OPS_MAX_RANK] = {0}, step[OPS_MAX_RANK], xs[OPS_MAX_RANK];
    for (int d = 0; d < r; d++)
        step[d] = 1;
    for (int i = 0; i < m; i++) {
        int ax;
        if (!ops_norm_axis(cnt[2] >= 0 ? v[2][i] : i, r, &ax) || (cnt[3] >= 0 && !v[3][i]))
            return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad Slice axis or step");
        int64_t dim = x->dims[ax], s0 = v[0][i], sp = cnt[3] >= 0 ? v[3][i] : 1;
        if (s0 < 0)
            s0 += dim;
        s0 = sp > 0 ? (s0 < 0 ? 0 : s0 > dim ? dim : s0)
                    : (s0 < 0 ? 0 : s0 > dim - 1 ? dim - 1 : s0);
        start[ax] = s0;
        step[ax] = sp;
    }
    cg_strides(r, x->dims, xs);
    int64_t str[2][OPS_MAX_RANK], base = 0;
    for (int d = 0; d < r; d++) {
        base += start[d] * xs[d];
        str[0][d] = step[d] * xs[d];
    }
    cg_strides(r, y->dims, str[1]);
    if (!y->nelems)
        return OCT_OK;
    LLVMTypeRef ty = cg_elem_type(f, x->dtype);
    LLVMValueRef px = cg_gep(f, ty, cg_ptr(f, x), cg_i64c(f, base)), py = cg_ptr(f, y), offs[2];
    cg_nest ns;
    cg_nest_begin(f, &ns, r, y->dims, 2, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    cg_store(f, ty, py, offs[1], LLVMBuildLoad2(f->b, ty, LLVMBuildGEP2(f->b, ty, px, &offs[0], 1, ""), ""));
    cg_nest_end(f, &ns);
    return OCT_OK;
}
