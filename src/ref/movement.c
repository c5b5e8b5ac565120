/*
 * movement.c: shape rules and reference kernels of the data-movement ops
 * that rearrange elements: Transpose, Concat, Split, Slice and Gather.
 *
 * Every kernel works for every dtype: elements of 8 bits or more are moved
 * as raw bytes of their size; sub-byte types (INT4, UINT4, FLOAT4E2M1, INT2,
 * UINT2) are moved bit field by bit field in their packed layout (low bits
 * first), which is exactly what ref_get_i64/ref_set_i64 would do for the
 * integer ones; STRING elements (ir_blob) are deep-copied into the context's
 * arena so an output never points into an input that may be freed first.
 *
 * Shape rules work statically (dims -1, rank -1, constant inputs possibly
 * unknown) and at run time; a bad attribute or mismatched shape is a
 * diagnostic naming the node and the offending input.
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
    int64_t idx[2 * REF_MAX_RANK] = {0};
    if (rank > 2 * REF_MAX_RANK)
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

static void unknown_like(ref_shape *out, ir_dtype dt, int rank)
{
    out->dtype = dt;
    out->rank = rank;
    for (int k = 0; k < rank && k < REF_MAX_RANK; k++)
        out->dims[k] = -1;
}

/* ---- Transpose ---------------------------------------------------------- */

/* perm attribute, or the reversal of rank dims; false with a diagnostic if
 * it is not a permutation of 0..rank-1.  *n receives its length (rank, or
 * the attribute's length when rank is unknown). */
static bool transpose_perm(ref_infer *inf, int rank, int64_t *perm, int *n)
{
    const ir_attr *a = ir_node_attr(inf->node, "perm");
    if (!a || a->type != IR_ATTR_INTS) {
        *n = rank;
        for (int k = 0; k < rank; k++)
            perm[k] = rank - 1 - k;
        return true;
    }
    if (a->n > REF_MAX_RANK || (rank >= 0 && (int)a->n != rank)) {
        oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                       "perm has %zu entries for an input of rank %d", a->n,
                       rank);
        return false;
    }
    bool seen[REF_MAX_RANK] = {false};
    for (size_t k = 0; k < a->n; k++) {
        int64_t p = a->ints[k];
        if (p < 0 || p >= (int64_t)a->n || seen[p]) {
            oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                           "perm is not a permutation (entry %zu = %lld)", k,
                           (long long)p);
            return false;
        }
        seen[p] = true;
        perm[k] = p;
    }
    *n = (int)a->n;
    return true;
}

oct_status shape_transpose(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    int64_t perm[REF_MAX_RANK];
    int n;
    if (!transpose_perm(inf, x->rank, perm, &n))
        return OCT_EINPUT;
    inf->out[0].dtype = x->dtype;
    inf->out[0].rank = n;
    for (int k = 0; k < n; k++)
        inf->out[0].dims[k] = x->rank >= 0 ? x->dims[perm[k]] : -1;
    return OCT_OK;
}

oct_status ref_transpose(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ir_tensor *y = call->out[0];
    ref_infer inf = {.ctx = call->ctx, .node = call->node, .opset = call->opset};
    int64_t perm[REF_MAX_RANK], istr[REF_MAX_RANK], sstr[REF_MAX_RANK],
        odims[REF_MAX_RANK];
    int n;
    if (!transpose_perm(&inf, x->rank, perm, &n))
        return OCT_EINPUT;
    strides_of(x, istr);
    for (int k = 0; k < n; k++) {
        sstr[k] = istr[perm[k]];
        odims[k] = x->dims[perm[k]];
    }
    return ref_strided_gather(call->ctx, y, x, n, odims, sstr, 0);
}

/* ---- Concat ------------------------------------------------------------- */

oct_status shape_concat(ref_infer *inf)
{
    const ir_node *node = inf->node;
    const ir_attr *a = ir_node_attr(node, "axis");
    if (!a || a->type != IR_ATTR_INT)
        return oct_node_error(inf->ctx, OCT_EINPUT, node,
                              "Concat needs an integer axis attribute");
    int rank = -1, first = -1;
    ir_dtype dt = IR_DT_UNDEFINED;
    for (int i = 0; i < inf->n_in; i++) {
        const ref_shape *s = &inf->in[i];
        if (s->dtype != IR_DT_UNDEFINED) {
            if (dt != IR_DT_UNDEFINED && s->dtype != dt)
                return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                       "dtype %s differs from %s",
                                       ir_dtype_name(s->dtype),
                                       ir_dtype_name(dt));
            dt = s->dtype;
        }
        if (s->rank < 0)
            continue;
        if (rank >= 0 && s->rank != rank)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "rank %d differs from input %d's rank %d",
                                   s->rank, first, rank);
        if (rank < 0)
            first = i;
        rank = s->rank;
    }
    ref_shape *out = &inf->out[0];
    if (rank < 0) {
        unknown_like(out, dt, -1);
        return OCT_OK;
    }
    int axis;
    if (rank == 0 || !ref_norm_axis(a->i, rank, &axis))
        return oct_node_error(inf->ctx, OCT_EINPUT, node,
                              "axis %lld out of range for rank %d",
                              (long long)a->i, rank);
    unknown_like(out, dt, rank);
    int64_t total = 0;
    for (int i = 0; i < inf->n_in; i++) {
        const ref_shape *s = &inf->in[i];
        if (s->rank < 0) {
            total = -1;
            continue;
        }
        for (int k = 0; k < rank; k++) {
            if (k == axis || s->dims[k] < 0)
                continue;
            if (out->dims[k] >= 0 && out->dims[k] != s->dims[k])
                return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                       "dim %d is %lld, expected %lld", k,
                                       (long long)s->dims[k],
                                       (long long)out->dims[k]);
            out->dims[k] = s->dims[k];
        }
        if (s->dims[axis] < 0)
            total = -1;
        else if (total >= 0)
            total += s->dims[axis];
    }
    out->dims[axis] = total;
    return OCT_OK;
}

oct_status ref_concat(ref_call *call)
{
    ir_tensor *y = call->out[0];
    int axis;
    if (!ref_norm_axis(ir_attr_int(call->node, "axis", 0), y->rank, &axis))
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

/* Sizes of the n_out parts along an axis of size dim (-1 if unknown): from
 * the split attribute (opset < 13) or input (13+), num_outputs (18+), or
 * equal parts.  Sizes are -1 when they cannot be known yet.  Returns false
 * with a diagnostic on inconsistent sizes. */
static bool split_sizes(ref_infer *inf, const ir_tensor *split_in,
                        bool split_unknown, int64_t dim, int64_t *sizes)
{
    const ir_node *node = inf->node;
    int n = inf->n_out;
    const ir_attr *a = inf->opset < 13 ? ir_node_attr(node, "split") : NULL;
    if (split_unknown) {
        for (int i = 0; i < n; i++)
            sizes[i] = -1;
        return true;
    }
    if ((a && a->type == IR_ATTR_INTS) || split_in) {
        int count;
        if (a) {
            count = (int)a->n;
            if (a->n == (size_t)n && n) /* empty lists have NULL arrays */
                memcpy(sizes, a->ints, (size_t)n * sizeof *sizes);
        } else {
            count = (int)split_in->nelems;
            if (count == n && ref_const_ints(split_in, sizes, n) != n)
                return oct_input_error(inf->ctx, OCT_EINPUT, node, 1,
                                       "split must be an integer vector"),
                       false;
        }
        if (count != n) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "split has %d sizes for %d outputs", count, n);
            return false;
        }
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            if (sizes[i] < 0) {
                oct_node_error(inf->ctx, OCT_EINPUT, node,
                               "split size %d is negative", i);
                return false;
            }
            sum += sizes[i];
        }
        if (dim >= 0 && sum != dim) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "split sizes sum to %lld, axis has %lld",
                           (long long)sum, (long long)dim);
            return false;
        }
        return true;
    }
    int64_t num = ir_attr_int(node, "num_outputs", 0);
    if (num && num != n) {
        oct_node_error(inf->ctx, OCT_EINPUT, node,
                       "num_outputs %lld but the node has %d outputs",
                       (long long)num, n);
        return false;
    }
    if (dim < 0) {
        for (int i = 0; i < n; i++)
            sizes[i] = -1;
        return true;
    }
    if (dim % n != 0 && inf->opset < 18) {
        oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                        "axis of size %lld does not split into %d equal parts",
                        (long long)dim, n);
        return false;
    }
    /* Opset 18: parts of ceil(dim / n), the last one smaller. */
    int64_t chunk = (dim + n - 1) / n, left = dim;
    for (int i = 0; i < n; i++) {
        sizes[i] = left < chunk ? left : chunk;
        left -= sizes[i];
    }
    return true;
}

oct_status shape_split(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    int64_t sizes_buf[64];
    int64_t *sizes = sizes_buf;
    if (inf->n_out > 64) {
        sizes = ir_alloc_array(inf->ctx, (size_t)inf->n_out, sizeof *sizes);
        if (!sizes)
            return OCT_EINTERNAL;
    }
    const ir_tensor *split_in = NULL;
    bool split_unknown = false;
    if (inf->opset >= 13 && inf->n_in > 1 && inf->node->in[1]) {
        split_in = inf->in_const[1];
        split_unknown = split_in == NULL;
    }
    int axis = 0;
    int64_t dim = -1;
    if (x->rank >= 0) {
        int64_t a = ir_attr_int(inf->node, "axis", 0);
        if (!ref_norm_axis(a, x->rank, &axis))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis %lld out of range for rank %d",
                                  (long long)a, x->rank);
        dim = x->dims[axis];
    }
    if (!split_sizes(inf, split_in, split_unknown, dim, sizes))
        return OCT_EINPUT;
    for (int i = 0; i < inf->n_out; i++) {
        ref_shape *o = &inf->out[i];
        o->dtype = x->dtype;
        o->rank = x->rank;
        for (int k = 0; k < x->rank; k++)
            o->dims[k] = k == axis ? sizes[i] : x->dims[k];
    }
    return OCT_OK;
}

oct_status ref_split(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    int axis;
    if (!ref_norm_axis(ir_attr_int(call->node, "axis", 0), x->rank, &axis))
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
    ref_infer inf = {.ctx = call->ctx, .node = call->node, .opset = call->opset,
                     .n_in = call->n_in, .in_const = call->in,
                     .n_out = call->n_out};
    const ir_tensor *split_in =
        call->opset >= 13 && call->n_in > 1 ? call->in[1] : NULL;
    if (!split_sizes(&inf, split_in, false, x->dims[axis], sizes))
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

typedef struct slice_plan {
    int64_t start[REF_MAX_RANK], step[REF_MAX_RANK], count[REF_MAX_RANK];
    bool sliced[REF_MAX_RANK];
    bool known;   /* starts/ends/axes/steps all known */
} slice_plan;

/* Reads starts/ends/axes/steps (attributes before opset 10, inputs 1-4
 * after) and resolves them against the dims of x (-1 unknown) per the spec:
 * negative starts/ends count from the end, then clamp to [0, dim] for
 * positive steps and [0, dim-1] / [-1, dim-1] for negative ones. */
static bool slice_resolve(ref_infer *inf, const ref_shape *x, slice_plan *p)
{
    const ir_node *node = inf->node;
    int64_t starts[REF_MAX_RANK], ends[REF_MAX_RANK], axes[REF_MAX_RANK],
        steps[REF_MAX_RANK];
    int n = -1, n_axes = -1, n_steps = -1, n_ends;
    memset(p, 0, sizeof *p);
    if (inf->opset < 10) {
        const ir_attr *as = ir_node_attr(node, "starts");
        const ir_attr *ae = ir_node_attr(node, "ends");
        const ir_attr *aa = ir_node_attr(node, "axes");
        if (!as || !ae || as->n != ae->n || as->n > REF_MAX_RANK ||
            (aa && aa->n != as->n)) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "starts/ends/axes attributes missing or of "
                           "different lengths");
            return false;
        }
        n = n_ends = (int)as->n;
        if (n) { /* empty lists have NULL arrays */
            memcpy(starts, as->ints, (size_t)n * sizeof *starts);
            memcpy(ends, ae->ints, (size_t)n * sizeof *ends);
        }
        if (aa) {
            n_axes = n;
            if (n)
                memcpy(axes, aa->ints, (size_t)n * sizeof *axes);
        }
    } else {
        if (inf->n_in < 3) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "Slice needs inputs starts and ends");
            return false;
        }
        const ir_tensor *c[5] = {NULL};
        for (int i = 1; i < inf->n_in && i < 5; i++) {
            bool present = i < node->n_in && node->in[i];
            c[i] = present ? inf->in_const[i] : NULL;
            if (present && !c[i])
                return true; /* not known yet: p->known stays false */
        }
        if (!c[1] || !c[2])
            return true;
        n = ref_const_ints(c[1], starts, REF_MAX_RANK);
        n_ends = ref_const_ints(c[2], ends, REF_MAX_RANK);
        if (c[3])
            n_axes = ref_const_ints(c[3], axes, REF_MAX_RANK);
        if (c[4])
            n_steps = ref_const_ints(c[4], steps, REF_MAX_RANK);
        if (n < 0 || n_ends != n || (c[3] && n_axes != n) ||
            (c[4] && n_steps != n)) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "starts, ends, axes and steps must be integer "
                           "vectors of one length");
            return false;
        }
    }
    if (x->rank < 0)
        return true;
    if (n_axes < 0)
        for (int i = 0; i < n; i++)
            axes[i] = i;
    if (n_steps < 0)
        for (int i = 0; i < n; i++)
            steps[i] = 1;
    for (int k = 0; k < x->rank; k++) {
        p->start[k] = 0;
        p->step[k] = 1;
        p->count[k] = x->dims[k];
    }
    for (int i = 0; i < n; i++) {
        int ax;
        if (!ref_norm_axis(axes[i], x->rank, &ax) || p->sliced[ax]) {
            oct_node_error(inf->ctx, OCT_EINPUT, node,
                           "axis %lld out of range or repeated",
                           (long long)axes[i]);
            return false;
        }
        if (steps[i] == 0) {
            oct_node_error(inf->ctx, OCT_EINPUT, node, "step is 0");
            return false;
        }
        p->sliced[ax] = true;
        int64_t dim = x->dims[ax], st = starts[i], en = ends[i], sp = steps[i];
        p->step[ax] = sp;
        if (dim < 0) {
            p->count[ax] = -1;
            continue;
        }
        if (st < 0)
            st += dim;
        if (en < 0)
            en += dim;
        if (sp > 0) {
            st = st < 0 ? 0 : st > dim ? dim : st;
            en = en < 0 ? 0 : en > dim ? dim : en;
        } else {
            st = st < 0 ? 0 : st > dim - 1 ? dim - 1 : st;
            en = en < -1 ? -1 : en > dim - 1 ? dim - 1 : en;
        }
        /* count = ceil(|en - st| / |sp|) in unsigned arithmetic, so steps
         * like INT64_MIN cannot overflow. */
        uint64_t mag = sp > 0 ? (uint64_t)sp : 0 - (uint64_t)sp;
        int64_t diff = sp > 0 ? en - st : st - en;
        p->start[ax] = st;
        p->count[ax] = diff > 0 ? (int64_t)(((uint64_t)diff - 1) / mag + 1) : 0;
    }
    p->known = true;
    return true;
}

oct_status shape_slice(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0];
    slice_plan p;
    if (!slice_resolve(inf, x, &p))
        return OCT_EINPUT;
    ref_shape *out = &inf->out[0];
    unknown_like(out, x->dtype, x->rank);
    for (int k = 0; k < x->rank && p.known; k++)
        out->dims[k] = p.count[k];
    return OCT_OK;
}

oct_status ref_slice(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    ref_shape xs;
    ref_shape_of(x, &xs);
    ref_infer inf = {.ctx = call->ctx, .node = call->node, .opset = call->opset,
                     .n_in = call->n_in, .in_const = call->in};
    slice_plan p;
    if (!slice_resolve(&inf, &xs, &p))
        return OCT_EINPUT;
    if (!p.known)
        return oct_node_error(call->ctx, OCT_EINPUT, call->node,
                              "Slice parameters are not known");
    int64_t istr[REF_MAX_RANK], sstr[REF_MAX_RANK];
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

oct_status shape_gather(ref_infer *inf)
{
    const ref_shape *x = &inf->in[0], *ind = &inf->in[1];
    ref_shape *out = &inf->out[0];
    if (ind->dtype != IR_DT_UNDEFINED && ind->dtype != IR_DT_INT32 &&
        ind->dtype != IR_DT_INT64)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                               "indices must be int32 or int64, not %s",
                               ir_dtype_name(ind->dtype));
    if (x->rank < 0 || ind->rank < 0) {
        unknown_like(out, x->dtype, -1);
        return OCT_OK;
    }
    int axis;
    int64_t a = ir_attr_int(inf->node, "axis", 0);
    if (!ref_norm_axis(a, x->rank, &axis))
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "axis %lld out of range for rank %d",
                               (long long)a, x->rank);
    int rank = x->rank - 1 + ind->rank;
    if (rank > REF_MAX_RANK)
        return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                              "output rank %d exceeds %d", rank,
                              REF_MAX_RANK);
    out->dtype = x->dtype;
    out->rank = rank;
    int r = 0;
    for (int k = 0; k < axis; k++)
        out->dims[r++] = x->dims[k];
    for (int k = 0; k < ind->rank; k++)
        out->dims[r++] = ind->dims[k];
    for (int k = axis + 1; k < x->rank; k++)
        out->dims[r++] = x->dims[k];
    return OCT_OK;
}

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
    if (!ref_norm_axis(ir_attr_int(call->node, "axis", 0), x->rank, &axis))
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
