/*
 * movement.c: reference kernels of the data-movement ops
 * that rearrange elements: Transpose, Concat, Split, Slice and Gather.
 *
 * Every kernel works for every dtype: elements of 8 bits or more are moved
 * as raw bytes of their size; sub-byte types (INT4, UINT4, FLOAT4E2M1, INT2,
 * UINT2) are moved bit field by bit field in their packed layout (low bits
 * first), which is exactly what ops_get_i64/ops_set_i64 would do for the
 * integer ones; STRING elements (ir_blob) are deep-copied into the context's
 * arena so an output never points into an input that may be freed first.
 *
 * Shape rules work statically (dims -1, rank -1, constant inputs possibly
 * unknown) and at run time; a bad attribute or mismatched shape is a
 * diagnostic naming the node and the offending input.
 *
 * The shape and type rules of these ops are in src/ops/shape_movement.c.
 */
#include <string.h>

#include "ref/movement.h"

/* ---- element copying ---------------------------------------------------- */

static inline unsigned elem_bits(ir_dtype dt)
{
    return ir_dtype_info(dt)->bits;
}

static inline unsigned get_field(const uint8_t *p, uint64_t i, unsigned bits)
{
    uint64_t bit = i * bits;
    return (p[bit >> 3] >> (bit & 7)) & ((1u << bits) - 1);
}

static inline void set_field(uint8_t *p, uint64_t i, unsigned bits, unsigned v)
{
    uint64_t bit = i * bits;
    unsigned shift = bit & 7;
    uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);
    p[bit >> 3] = (uint8_t)((p[bit >> 3] & ~mask) | ((v << shift) & mask));
}

bool ref_copy_elems(oct_ctx *ctx, ir_tensor *dst, uint64_t di,
                    const ir_tensor *src, uint64_t si, uint64_t n)
{
    if (dst->dtype == IR_DT_STRING) {
        ir_blob *d = (ir_blob *)dst->data + di;
        const ir_blob *s = (const ir_blob *)src->data + si;
        for (uint64_t k = 0; k < n; k++) {
            d[k].len = s[k].len;
            d[k].data = NULL;
            if (s[k].len) {
                d[k].data = ir_alloc(ctx, s[k].len);
                if (!d[k].data)
                    return false;
                memcpy(d[k].data, s[k].data, s[k].len);
            }
        }
        return true;
    }
    unsigned bits = elem_bits(dst->dtype);
    if (bits >= 8) {
        size_t es = bits / 8;
        if (n)
            memcpy((uint8_t *)dst->data + di * es,
                   (const uint8_t *)src->data + si * es, n * es);
        return true;
    }
    for (uint64_t k = 0; k < n; k++)
        set_field(dst->data, di + k, bits,
                  get_field(src->data, si + k, bits));
    return true;
}

static bool copy_strided(oct_ctx *ctx, ir_tensor *dst, uint64_t di,
                         const ir_tensor *src, int64_t si, int64_t stride,
                         uint64_t n)
{
    if (stride == 1)
        return ref_copy_elems(ctx, dst, di, src, (uint64_t)si, n);
    switch (dst->dtype == IR_DT_STRING ? 0 : elem_bits(dst->dtype)) {
    case 8: {
        uint8_t *d = (uint8_t *)dst->data + di;
        const uint8_t *s = (const uint8_t *)src->data + si;
        for (uint64_t k = 0; k < n; k++)
            d[k] = s[(int64_t)k * stride];
        return true;
    }
    case 16: {
        uint16_t *d = (uint16_t *)dst->data + di;
        const uint16_t *s = (const uint16_t *)src->data + si;
        for (uint64_t k = 0; k < n; k++)
            d[k] = s[(int64_t)k * stride];
        return true;
    }
    case 32: {
        uint32_t *d = (uint32_t *)dst->data + di;
        const uint32_t *s = (const uint32_t *)src->data + si;
        for (uint64_t k = 0; k < n; k++)
            d[k] = s[(int64_t)k * stride];
        return true;
    }
    case 64: {
        uint64_t *d = (uint64_t *)dst->data + di;
        const uint64_t *s = (const uint64_t *)src->data + si;
        for (uint64_t k = 0; k < n; k++)
            d[k] = s[(int64_t)k * stride];
        return true;
    }
    default:
        for (uint64_t k = 0; k < n; k++)
            if (!ref_copy_elems(ctx, dst, di + k, src,
                          (uint64_t)(si + (int64_t)k * stride), 1))
                return false;
        return true;
    }
}

oct_status ref_strided_gather(oct_ctx *ctx, ir_tensor *dst,
                              const ir_tensor *src, int rank,
                              const int64_t *odims, const int64_t *sstride,
                              int64_t base)
{
    if (dst->nelems == 0)
        return OCT_OK;
    if (rank == 0)
        return ref_copy_elems(ctx, dst, 0, src, (uint64_t)base, 1) ? OCT_OK
                                                             : OCT_EINTERNAL;
    int64_t idx[2 * OPS_MAX_RANK] = {0};
    if (rank > 2 * OPS_MAX_RANK)
        return oct_error(ctx, OCT_EUNSUPPORTED, "view of rank %d", rank);
    uint64_t inner = (uint64_t)odims[rank - 1];
    uint64_t outer = dst->nelems / inner;
    int64_t off = base;
    uint64_t doff = 0;
    for (uint64_t o = 0; o < outer; o++) {
        if (!copy_strided(ctx, dst, doff, src, off, sstride[rank - 1], inner))
            return OCT_EINTERNAL;
        doff += inner;
        for (int k = rank - 2; k >= 0; k--) {
            idx[k]++;
            off += sstride[k];
            if (idx[k] < odims[k])
                break;
            off -= sstride[k] * odims[k];
            idx[k] = 0;
        }
    }
    return OCT_OK;
}

/* C-order strides of a tensor, in elements. */
static void strides_of(const ir_tensor *t, int64_t *strides)
{
    int64_t s = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        strides[k] = s;
        s *= t->dims[k];
    }
}

static inline int64_t prod_dims(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int k = from; k < to; k++)
        p *= dims[k];
    return p;
}

/* ---- Transpose ---------------------------------------------------------- */

oct_status ref_transpose(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    ops_infer inf = {.ctx = call->ctx, .node = call->node, .opset = call->opset};
    int64_t perm[OPS_MAX_RANK], istr[OPS_MAX_RANK], sstr[OPS_MAX_RANK],
        odims[OPS_MAX_RANK];
    int n;
    if (!ops_transpose_perm(&inf, x->rank, perm, &n))
        return OCT_EINPUT;
    strides_of(x, istr);
    for (int k = 0; k < n; k++) {
        sstr[k] = istr[perm[k]];
        odims[k] = x->dims[perm[k]];
    }
    return ref_strided_gather(call->ctx, y, x, n, odims, sstr, 0);
}

/* ---- Concat ------------------------------------------------------------- */

oct_status ref_concat(ref_call *call)
{
    ir_tensor *y = call->out[0];
    int axis;
    if (!ops_norm_axis(ir_attr_int(call->node, "axis", 0), y->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad axis");
    uint64_t outer = (uint64_t)prod_dims(y->dims, 0, axis);
    uint64_t inner = (uint64_t)prod_dims(y->dims, axis + 1, y->rank);
    uint64_t row = (uint64_t)y->dims[axis] * inner, off = 0;
    for (uint64_t o = 0; o < outer; o++) {
        for (int i = 0; i < call->n_in; i++) {
            const ir_tensor *x = call->in[i];
            uint64_t n = (uint64_t)x->dims[axis] * inner;
            if (!ref_copy_elems(call->ctx, y, o * row + off, x, o * n, n))
                return OCT_EINTERNAL;
            off += n;
        }
        off = 0;
    }
    return OCT_OK;
}

/* ---- Split -------------------------------------------------------------- */

oct_status ref_split(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    int axis;
    if (!ops_norm_axis(ir_attr_int(call->node, "axis", 0), x->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad axis");
    uint64_t outer = (uint64_t)prod_dims(x->dims, 0, axis);
    uint64_t inner = (uint64_t)prod_dims(x->dims, axis + 1, x->rank);
    uint64_t row = (uint64_t)x->dims[axis] * inner;
    uint64_t off = 0;
    /* Part sizes again (an omitted output has no tensor to read them from). */
    int64_t sizes_buf[64];
    int64_t *sizes = sizes_buf;
    if (call->n_out > 64) {
        sizes = ir_alloc_array(call->ctx, (size_t)call->n_out, sizeof *sizes);
        if (!sizes)
            return OCT_EINTERNAL;
    }
    ops_infer inf = {.ctx = call->ctx, .node = call->node, .opset = call->opset,
                     .n_in = call->n_in, .in_const = call->in,
                     .n_out = call->n_out};
    const ir_tensor *split_in =
        call->opset >= 13 && call->n_in > 1 ? call->in[1] : NULL;
    if (!ops_split_sizes(&inf, split_in, false, x->dims[axis], sizes))
        return OCT_EINPUT;
    for (int i = 0; i < call->n_out; i++) {
        ir_tensor *y = call->out[i];
        uint64_t n = (uint64_t)sizes[i] * inner;
        for (uint64_t o = 0; y && o < outer; o++)
            if (!ref_copy_elems(call->ctx, y, o * n, x, o * row + off, n))
                return OCT_EINTERNAL;
        off += n;
    }
    return OCT_OK;
}

/* ---- Slice -------------------------------------------------------------- */

oct_status ref_slice(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ops_shape xs;
    ops_shape_of(x, &xs);
    ops_infer inf = {.ctx = call->ctx, .node = call->node, .opset = call->opset,
                     .n_in = call->n_in, .in_const = call->in};
    ops_slice_plan p;
    if (!ops_slice_resolve(&inf, &xs, &p))
        return OCT_EINPUT;
    if (!p.known)
        return oct_node_error(call->ctx, OCT_EINPUT, call->node,
                              "Slice parameters are not known");
    int64_t istr[OPS_MAX_RANK], sstr[OPS_MAX_RANK];
    strides_of(x, istr);
    int64_t base = 0;
    for (int k = 0; k < x->rank; k++) {
        base += p.start[k] * istr[k];
        /* A step is only taken when the axis yields two or more elements,
         * and then |step| < dim, so the product cannot overflow. */
        sstr[k] = p.count[k] > 1 ? p.step[k] * istr[k] : 0;
    }
    return ref_strided_gather(call->ctx, call->out[0], x, x->rank, p.count, sstr,
                          base);
}

/* ---- Gather ------------------------------------------------------------- */

static inline int64_t index_at(const ir_tensor *ind, uint64_t j)
{
    return ind->dtype == IR_DT_INT32 ? ((const int32_t *)ind->data)[j]
                                     : ((const int64_t *)ind->data)[j];
}

oct_status ref_gather(ref_call *call)
{
    const ir_tensor *x = call->in[0], *ind = call->in[1];
    ir_tensor *y = call->out[0];
    int axis;
    if (!ops_norm_axis(ir_attr_int(call->node, "axis", 0), x->rank, &axis))
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "bad axis");
    int64_t dim = x->dims[axis];
    for (uint64_t j = 0; j < ind->nelems; j++) {
        int64_t v = index_at(ind, j);
        if (v < -dim || v >= dim)
            return oct_input_error(call->ctx, OCT_EINPUT, call->node, 1,
                                   "index %lld (element %llu) out of range "
                                   "for an axis of size %lld",
                                   (long long)v, (unsigned long long)j,
                                   (long long)dim);
    }
    uint64_t outer = (uint64_t)prod_dims(x->dims, 0, axis);
    uint64_t inner = (uint64_t)prod_dims(x->dims, axis + 1, x->rank);
    uint64_t nidx = ind->nelems;
    if (x->dtype == IR_DT_FLOAT && inner == 1) {
        float *d = y->data;
        const float *s = x->data;
        for (uint64_t o = 0; o < outer; o++)
            for (uint64_t j = 0; j < nidx; j++) {
                int64_t v = index_at(ind, j);
                d[o * nidx + j] = s[o * (uint64_t)dim + (uint64_t)(v < 0 ? v + dim : v)];
            }
        return OCT_OK;
    }
    for (uint64_t o = 0; o < outer; o++)
        for (uint64_t j = 0; j < nidx; j++) {
            int64_t v = index_at(ind, j);
            if (v < 0)
                v += dim;
            if (!ref_copy_elems(call->ctx, y, (o * nidx + j) * inner, x,
                          (o * (uint64_t)dim + (uint64_t)v) * inner, inner))
                return OCT_EINTERNAL;
        }
    return OCT_OK;
}
