/*
 * lower_einsum.c: Einsum as one loop nest over the plan of
 * src/ops/shape_einsum.c, the interpreter's sum of products written out:
 * the outer loops walk the output, the inner ones each summed label, with
 * a loop-carried accumulator threaded through them; each input is read at
 * the sum of its per-label strides (a repeated label walks the diagonal,
 * a broadcast axis has stride 0).  Values are those of lower_elem.h: FLOAT
 * multiplies and accumulates in f32 with the reassoc+contract flags (within
 * the float tolerance of the interpreter, which accumulates in double), the
 * other floats in f64, integers in i64 wrapping at the store.
 *
 * Not done: rewriting the contraction forms onto the MatMul kernels; a
 * batch matmul written as Einsum runs as these plain loops.
 */
#include "codegen/lower_elem.h"
#include "ops/rules.h"

oct_status cg_lower_einsum(cg_fn *f, const ir_node *n)
{
    cg_tensor *y = cg_out(f, n, 0);
    const ir_attr *a = ir_node_attr(n, "equation");
    int n_in = n->n_in, ranks[OPS_MAX_IO];
    const int64_t *dims[OPS_MAX_IO];
    cg_tensor *x[OPS_MAX_IO];
    for (int k = 0; k < n_in; k++) {
        x[k] = cg_in(f, n, k);
        if (!x[k] || x[k]->dtype != y->dtype)
            return oct_input_error(f->ctx, OCT_EINPUT, n, k, "compile: Einsum inputs must "
                                   "have the output's type");
        ranks[k] = x[k]->rank;
        dims[k] = x[k]->dims;
    }
    cg_vclass c = cg_val_class(y->dtype);
    if (c == CG_V_NONE)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: Einsum of %s tensors is "
                              "not supported", ir_dtype_name(y->dtype));
    ops_einsum_plan p;
    if (!a || !ops_einsum_plan_of((const char *)a->s.data, a->s.len, n_in, ranks, dims, &p) ||
        p.n_out != y->rank)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: bad Einsum equation");
    if (!y->nelems)
        return OCT_OK;
    int64_t st[OPS_MAX_IO][OPS_EINSUM_MAX_LABELS];
    for (int k = 0; k < n_in; k++)
        ops_einsum_strides(&p, k, x[k]->dims, st[k]);
    /* the output nest: operand k < n_in is input k, operand n_in the output */
    int64_t (*ns_st)[OPS_MAX_RANK] = ir_alloc(f->ctx, (size_t)(n_in + 1) * sizeof *ns_st);
    LLVMValueRef *offs = ir_alloc(f->ctx, (size_t)(n_in + 1) * sizeof *offs);
    LLVMValueRef *ptr = ir_alloc(f->ctx, (size_t)n_in * sizeof *ptr);
    if (!ns_st || !offs || !ptr)
        return OCT_EINTERNAL;
    for (int k = 0; k < n_in; k++) {
        for (int l = 0; l < p.n_out; l++)
            ns_st[k][l] = st[k][l];
        ptr[k] = cg_ptr(f, x[k]);
    }
    cg_strides(p.n_out, y->dims, ns_st[n_in]);
    cg_nest nest;
    cg_nest_begin(f, &nest, p.n_out, y->dims, n_in + 1, (const int64_t (*)[OPS_MAX_RANK])ns_st,
                  offs);
    /* the summed loops, each carrying the running sum */
    int n_sum = p.n_labels - p.n_out;
    cg_loop loops[OPS_EINSUM_MAX_LABELS];
    cg_acc accs[OPS_EINSUM_MAX_LABELS];
    LLVMValueRef sum = cg_val_const(f, c, 0, 0);
    for (int s = 0; s < n_sum; s++) {
        int l = p.n_out + s;
        LLVMValueRef iv = cg_loop_begin(f, &loops[s], p.size[l]);
        sum = cg_acc_begin(f, &loops[s], &accs[s], sum);
        for (int k = 0; k < n_in; k++)
            if (st[k][l])
                offs[k] = cg_madd(f, iv, st[k][l], offs[k]);
    }
    LLVMValueRef prod = NULL;
    for (int k = 0; k < n_in; k++) {
        LLVMValueRef v = cg_val_load(f, x[k]->dtype, ptr[k], offs[k]);
        if (!prod)
            prod = v;
        else if (c == CG_V_INT)
            prod = LLVMBuildMul(f->b, prod, v, "");
        else
            prod = cg_fast(LLVMBuildFMul(f->b, prod, v, ""));
    }
    sum = c == CG_V_INT ? LLVMBuildAdd(f->b, sum, prod, "")
                        : cg_fast(LLVMBuildFAdd(f->b, sum, prod, ""));
    for (int s = n_sum - 1; s >= 0; s--) {
        cg_acc_end(f, &accs[s], sum);
        cg_loop_end(f, &loops[s]);
        sum = cg_acc_result(f, &loops[s], &accs[s], NULL);
    }
    cg_val_store(f, y->dtype, cg_ptr(f, y), offs[n_in], sum, true);
    cg_nest_end(f, &nest);
    return OCT_OK;
}
