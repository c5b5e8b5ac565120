/*
 * scatter.c: the interpreter's kernels of GatherND, ScatterND,
 * ScatterElements and TopK (shape rules and shared geometry in
 * src/ops/shape_index.c).
 *
 * Indices may be negative (counted from the end of their axis); one still
 * out of range is reported, naming the node.  GatherND and the scatters
 * move elements as bytes.  The scatters copy data to the output, then
 * apply the updates in memory order, so a duplicated index with reduction
 * none keeps the last update and with add/mul/max/min combines them in
 * that order: floats in double rounded to the type at each update (one
 * rounding, so FLOAT gets float arithmetic's result), integers in int64
 * wrapping to the type.  max/min keep the current value unless the update
 * compares larger/smaller.
 * TopK orders the elements of each row by value (descending with
 * `largest`, else ascending), equal values by index (lower first, as the
 * spec says), and takes the first k: the r-th pick is the best element
 * that ranks after the (r-1)-th, so the outputs are sorted whatever
 * `sorted` says (an order the spec allows).  Elements compare as double;
 * NaN ranks before every number (either way), so the order is total.
 */
#include <math.h>
#include <string.h>

#include "ref/eltwise.h"
#include "ops/rules.h"

/* Index element i of t, counted from the end when negative; false if still
 * outside [0, dim). */
static bool index_at(const ir_tensor *t, uint64_t i, int64_t dim, int64_t *out)
{
    int64_t j = ops_get_i64(t, i);
    if (j < 0)
        j += dim;
    *out = j;
    return j >= 0 && j < dim;
}

static oct_status bad_index(ref_call *call, uint64_t i)
{
    return oct_input_error(call->ctx, OCT_EINPUT, call->node, 1, "index %lld (element %llu) "
                           "is out of range", (long long)ops_get_i64(call->in[1], i),
                           (unsigned long long)i);
}

oct_status ref_gathernd(ref_call *call)
{
    const ir_tensor *x = call->in[0], *ind = call->in[1];
    ir_tensor *y = call->out[0];
    ops_gathernd_plan p;
    int64_t bd = ir_attr_int(call->node, "batch_dims", 0);
    if (!ops_gathernd_plan_of(x->rank, x->dims, ind->rank, ind->dims, bd, &p))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "indices do not fit data");
    size_t es = ir_dtype_info(x->dtype)->bits / 8;
    const uint8_t *src = x->data;
    uint8_t *dst = y->data;
    for (int64_t b = 0; b < p.batch; b++)
        for (int64_t j = 0; j < p.n; j++) {
            int64_t off = 0, stride = p.data_batch;
            uint64_t at = (uint64_t)((b * p.n + j) * p.last);
            for (int64_t t = 0; t < p.last; t++) {
                int64_t dim = x->dims[bd + t], k;
                stride /= dim ? dim : 1;
                if (!index_at(ind, at + (uint64_t)t, dim, &k))
                    return bad_index(call, at + (uint64_t)t);
                off += k * stride;
            }
            memcpy(dst + (size_t)((b * p.n + j) * p.slice) * es,
                   src + (size_t)(b * p.data_batch + off) * es, (size_t)p.slice * es);
        }
    return OCT_OK;
}

/* out[at] combined with update element u_at of u by red. */
static void combine(ir_tensor *out, uint64_t at, const ir_tensor *u, uint64_t u_at,
                    ops_reduction red)
{
    size_t es = ir_dtype_info(out->dtype)->bits / 8;
    if (red == OPS_RED_NONE) {
        memcpy((uint8_t *)out->data + at * es, (const uint8_t *)u->data + u_at * es, es);
    } else if (ops_dt_is_float(out->dtype)) {
        double a = ops_get(out, at), b = ops_get(u, u_at);
        double r = red == OPS_RED_ADD ? a + b : red == OPS_RED_MUL ? a * b
                 : red == OPS_RED_MAX ? (b > a ? b : a) : (b < a ? b : a);
        ops_set(out, at, r);
    } else {
        int64_t a = ops_get_i64(out, at), b = ops_get_i64(u, u_at);
        int64_t r = red == OPS_RED_ADD ? (int64_t)((uint64_t)a + (uint64_t)b)
                  : red == OPS_RED_MUL ? (int64_t)((uint64_t)a * (uint64_t)b)
                  : red == OPS_RED_MAX ? (b > a ? b : a) : (b < a ? b : a);
        ops_set_i64(out, at, ref_wrap_int(out->dtype, r));
    }
}

oct_status ref_scatternd(ref_call *call)
{
    const ir_tensor *x = call->in[0], *ind = call->in[1], *u = call->in[2];
    ir_tensor *y = call->out[0];
    ops_reduction red;
    if (!ops_scatter_reduction(call->node, &red) || ind->rank < 1)
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad reduction or indices");
    memcpy(y->data, x->data, x->nbytes);
    int64_t last = ind->dims[ind->rank - 1];
    uint64_t rows = last ? ind->nelems / (uint64_t)last : 0, slice = 1;
    for (int d = (int)last; d < x->rank; d++)
        slice *= (uint64_t)x->dims[d];
    for (uint64_t r = 0; r < rows; r++) {
        int64_t off = 0;
        for (int64_t t = 0; t < last; t++) {
            int64_t k;
            if (!index_at(ind, r * (uint64_t)last + (uint64_t)t, x->dims[t], &k))
                return bad_index(call, r * (uint64_t)last + (uint64_t)t);
            off = off * x->dims[t] + k;
        }
        for (uint64_t e = 0; e < slice; e++)
            combine(y, (uint64_t)off * slice + e, u, r * slice + e, red);
    }
    return OCT_OK;
}

oct_status ref_scatterelements(ref_call *call)
{
    const ir_tensor *x = call->in[0], *ind = call->in[1], *u = call->in[2];
    ir_tensor *y = call->out[0];
    ops_reduction red;
    int axis;
    if (!ops_scatter_reduction(call->node, &red) ||
        !ops_norm_axis(ir_attr_int(call->node, "axis", 0), x->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad reduction or axis");
    memcpy(y->data, x->data, x->nbytes);
    int64_t coord[OPS_MAX_RANK] = {0};
    for (uint64_t i = 0; i < ind->nelems; i++) {
        int64_t k;
        if (!index_at(ind, i, x->dims[axis], &k))
            return bad_index(call, i);
        int64_t at = 0;
        for (int d = 0; d < x->rank; d++)
            at = at * x->dims[d] + (d == axis ? k : coord[d]);
        combine(y, (uint64_t)at, u, i, red);
        for (int d = ind->rank - 1; d >= 0; d--) { /* next coordinate of indices */
            if (++coord[d] < ind->dims[d])
                break;
            coord[d] = 0;
        }
    }
    return OCT_OK;
}

/* Whether (a, ia) ranks before (b, ib) in TopK's order. */
static inline bool ranks_before(double a, int64_t ia, double b, int64_t ib, bool largest)
{
    if (isnan(a) || isnan(b)) /* NaN ranks first, so the order is total */
        return isnan(a) && isnan(b) ? ia < ib : isnan(a);
    if (a != b)
        return largest ? a > b : a < b;
    return ia < ib;
}

oct_status ref_topk(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0], *yi = call->out[1];
    int axis;
    int64_t k = ops_topk_k(call->node, call->opset, call->n_in > 1 ? call->in[1] : NULL);
    if (!ops_norm_axis(ir_attr_int(call->node, "axis", -1), x->rank, &axis) || k < 0 ||
        k > x->dims[axis])
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad TopK axis or k");
    bool largest = ir_attr_int(call->node, "largest", 1) != 0;
    bool is_float = ops_dt_is_float(x->dtype);
    int64_t outer, len, inner;
    ops_axis_split(x->rank, x->dims, axis, false, &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double pv = 0;
            int64_t pi = -1;
            for (int64_t r = 0; r < k; r++) {
                double bv = 0;
                int64_t bi = -1;
                for (int64_t c = 0; c < len; c++) {
                    uint64_t at = (uint64_t)((o * len + c) * inner + i);
                    double v = is_float ? ops_get(x, at) : (double)ops_get_i64(x, at);
                    if ((pi < 0 || ranks_before(pv, pi, v, c, largest)) &&
                        (bi < 0 || ranks_before(v, c, bv, bi, largest))) {
                        bv = v;
                        bi = c;
                    }
                }
                OCT_ASSERT(bi >= 0); /* k <= len and the order is total */
                uint64_t src = (uint64_t)((o * len + bi) * inner + i);
                uint64_t to = (uint64_t)((o * k + r) * inner + i);
                size_t es = ir_dtype_info(x->dtype)->bits / 8;
                memcpy((uint8_t *)y->data + to * es, (const uint8_t *)x->data + src * es, es);
                ops_set_i64(yi, to, bi);
                pv = bv;
                pi = bi;
            }
        }
    return OCT_OK;
}
