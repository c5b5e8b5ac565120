/*
 * unique.c: the interpreter's Unique on the selection of
 * src/ops/shape_unique.c (which sized the outputs): Y gathers each unique
 * element or slice by its first index; indices, inverse_indices and
 * counts are copied out.
 */
#include <string.h>

#include "ref/eltwise.h"
#include "ops/rules.h"

oct_status ref_unique(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    int64_t n = ops_unique_slices(call->node, x), u = 0;
    size_t bytes = (size_t)(n + 1) * 5 * sizeof(int64_t);
    int64_t *buf = oct_malloc(call->ctx, bytes);
    if (!buf)
        return OCT_EINTERNAL;
    int64_t *first = buf, *inverse = buf + n + 1, *counts = buf + 4 * (n + 1);
    oct_status st = ops_unique_select(call->ctx, call->node, x, first, inverse, counts, &u);
    if (st == OCT_OK) {
        /* Y: slice first[k] of x as slice k (no axis: element first[k]) */
        int64_t outer = 1, inner = 1, len = n;
        const ir_attr *a = ir_node_attr(call->node, "axis");
        int axis;
        if (a && ops_norm_axis(a->i, x->rank, &axis))
            ops_axis_split(x->rank, x->dims, axis, false, &outer, &len, &inner);
        size_t es = ir_dtype_info(x->dtype)->bits / 8;
        ir_tensor *y = call->out[0];
        for (int64_t o = 0; o < outer; o++)
            for (int64_t k = 0; k < u; k++)
                memcpy((char *)y->data + (size_t)((o * u + k) * inner) * es,
                       (const char *)x->data + (size_t)((o * len + first[k]) * inner) * es,
                       (size_t)inner * es);
        int64_t *src[3] = {first, inverse, counts};
        for (int k = 1; k < call->n_out && k < 4; k++)
            if (call->out[k])
                memcpy(call->out[k]->data, src[k - 1],
                       (size_t)call->out[k]->nelems * sizeof(int64_t));
    }
    oct_free(call->ctx, buf, bytes);
    return st;
}
