/*
 * einsum.c: the interpreter's Einsum, a general sum of products over the
 * plan of src/ops/shape_einsum.c: for every output element, the sum over
 * every combination of the summed labels of the product of one element of
 * each input.  Floats multiply and accumulate in double, rounded once at
 * the store; integers in int64 wrapping to the type (two's complement).
 */
#include "ref/eltwise.h"
#include "ops/rules.h"

oct_status ref_einsum(ref_call *call)
{
    const ir_attr *a = ir_node_attr(call->node, "equation");
    int ranks[OPS_MAX_IO];
    const int64_t *dims[OPS_MAX_IO];
    for (int k = 0; k < call->n_in; k++) {
        ranks[k] = call->in[k]->rank;
        dims[k] = call->in[k]->dims;
    }
    ops_einsum_plan p;
    if (!a || !ops_einsum_plan_of((const char *)a->s.data, a->s.len, call->n_in, ranks, dims, &p))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad Einsum equation");
    int64_t (*strides)[OPS_EINSUM_MAX_LABELS] =
        oct_malloc(call->ctx, (size_t)call->n_in * sizeof *strides);
    if (!strides)
        return OCT_EINTERNAL;
    for (int k = 0; k < call->n_in; k++)
        ops_einsum_strides(&p, k, call->in[k]->dims, strides[k]);
    ir_tensor *y = call->out[0];
    bool is_float = ops_dt_is_float(y->dtype);
    int64_t n_sum = 1;
    for (int l = p.n_out; l < p.n_labels; l++)
        n_sum *= p.size[l];
    int64_t idx[OPS_EINSUM_MAX_LABELS];
    for (uint64_t o = 0; o < y->nelems; o++) {
        int64_t rest = (int64_t)o;
        for (int l = p.n_out - 1; l >= 0; l--) {
            idx[l] = rest % p.size[l];
            rest /= p.size[l];
        }
        double sd = 0;
        int64_t si = 0;
        for (int64_t s = 0; s < n_sum; s++) {
            rest = s;
            for (int l = p.n_labels - 1; l >= p.n_out; l--) {
                idx[l] = rest % p.size[l];
                rest /= p.size[l];
            }
            double pd = 1;
            int64_t pi = 1;
            for (int k = 0; k < call->n_in; k++) {
                uint64_t at = 0;
                for (int l = 0; l < p.n_labels; l++)
                    at += (uint64_t)(idx[l] * strides[k][l]);
                if (is_float)
                    pd *= ops_get(call->in[k], at);
                else
                    pi = (int64_t)((uint64_t)pi * (uint64_t)ops_get_i64(call->in[k], at));
            }
            sd += pd;
            si = (int64_t)((uint64_t)si + (uint64_t)pi);
        }
        if (is_float)
            ops_set(y, o, sd);
        else
            ops_set_i64(y, o, ref_wrap_int(y->dtype, si));
    }
    oct_free(call->ctx, strides, (size_t)call->n_in * sizeof *strides);
    return OCT_OK;
}
