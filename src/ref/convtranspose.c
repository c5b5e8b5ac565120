/*
 * convtranspose.c: ConvTranspose's shape rule and kernel.
 *
 * ConvTranspose scatters every input element through the kernel:
 *   y[n, g*Mg + m, i*s + k*d - pad_begin] += x[n, g*Cg + c, i] * W[g*Cg + c, m, k]
 * (positions outside the output are dropped), then adds the bias.  Output
 * size per spatial axis: output_shape when given; else in*stride for
 * auto_pad SAME_UPPER/SAME_LOWER; else
 *   stride*(in-1) + output_padding + (kernel-1)*dilation + 1 - pads.
 * With output_shape or SAME_*, the total padding
 *   stride*(in-1) + output_padding + (kernel-1)*dilation + 1 - out
 * (0 if negative) is split as the ONNX spec states: SAME_UPPER puts
 * total/2 at the beginning, every other mode puts total - total/2 there.
 *
 * float32 with at most 3 spatial dims: one SGEMM per (batch, group) giving
 * W^T x (col2im form), scattered into the output (float32 sums; see
 * sgemm.h).  Other types and ranks: direct scatter accumulating in double,
 * rounded once on the store.
 */
#include <string.h>

#include "ref.h"
#include "sgemm.h"

typedef struct ct_geom {
    int ns;
    int64_t in[REF_MAX_RANK], k[REF_MAX_RANK], s[REF_MAX_RANK];
    int64_t d[REF_MAX_RANK], pb[REF_MAX_RANK], out[REF_MAX_RANK];
} ct_geom;

static bool ct_str_is(const ir_attr *a, const char *s)
{
    size_t len = strlen(s);
    return a->s.len == len && (len == 0 || memcmp(a->s.data, s, len) == 0);
}

/* Reads an optional INTS attribute into out[0..count) (dflt when absent);
 * a list of `alt` values (alt > count) keeps its last `count` values. */
static bool ct_ints(oct_ctx *ctx, const ir_node *node, const char *name,
                    int count, int alt, int64_t dflt, int64_t *out, bool *given)
{
    const ir_attr *a = ir_node_attr(node, name);
    for (int i = 0; i < count; i++)
        out[i] = dflt;
    if (given)
        *given = a != NULL;
    if (!a)
        return true;
    if (a->type != IR_ATTR_INTS ||
        (a->n != (size_t)count && (alt <= 0 || a->n != (size_t)alt))) {
        oct_node_error(ctx, OCT_EINPUT, node,
                       "attribute '%s' must list %d ints", name, count);
        return false;
    }
    memcpy(out, a->ints + (a->n - (size_t)count), (size_t)count * sizeof *out);
    return true;
}

/* Resolves the geometry of a ConvTranspose node for input x (rank known)
 * and spatial kernel sizes (> 0).  Output sizes are -1 where the input
 * size is unknown. */
static oct_status ct_geometry(oct_ctx *ctx, const ir_node *node,
                              const ref_shape *x, const int64_t *kernel,
                              ct_geom *g)
{
    int ns = x->rank - 2;
    int64_t pads[2 * REF_MAX_RANK], opad[REF_MAX_RANK], oshape[REF_MAX_RANK];
    bool has_oshape;
    memset(g, 0, sizeof *g);
    g->ns = ns;
    if (!ct_ints(ctx, node, "strides", ns, 0, 1, g->s, NULL) ||
        !ct_ints(ctx, node, "dilations", ns, 0, 1, g->d, NULL) ||
        !ct_ints(ctx, node, "pads", 2 * ns, 0, 0, pads, NULL) ||
        !ct_ints(ctx, node, "output_padding", ns, 0, 0, opad, NULL) ||
        !ct_ints(ctx, node, "output_shape", ns, ns + 2, -1, oshape, &has_oshape))
        return OCT_EINPUT;
    int mode = 0; /* 0 NOTSET, 1 VALID, 2 SAME_UPPER, 3 SAME_LOWER */
    const ir_attr *ap = ir_node_attr(node, "auto_pad");
    if (ap) {
        if (ap->type != IR_ATTR_STRING)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "attribute 'auto_pad' must be a string");
        if (ct_str_is(ap, "NOTSET") || ct_str_is(ap, ""))
            mode = 0;
        else if (ct_str_is(ap, "VALID"))
            mode = 1;
        else if (ct_str_is(ap, "SAME_UPPER"))
            mode = 2;
        else if (ct_str_is(ap, "SAME_LOWER"))
            mode = 3;
        else
            return oct_node_error(ctx, OCT_EINPUT, node, "unknown auto_pad '%.*s'",
                                  (int)ap->s.len, (const char *)ap->s.data);
    }
    const int64_t big = INT64_C(1) << 40;
    for (int i = 0; i < ns; i++) {
        g->in[i] = x->dims[i + 2];
        g->k[i] = kernel[i];
        if (g->s[i] <= 0 || g->d[i] <= 0 || g->s[i] > big || g->d[i] > big)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "strides and dilations must be positive "
                                  "(axis %d)", i);
        if (pads[i] < 0 || pads[i + ns] < 0 || opad[i] < 0 || pads[i] > big ||
            pads[i + ns] > big || opad[i] > big || kernel[i] > big)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "pads and output_padding must be "
                                  "non-negative (axis %d)", i);
        if (has_oshape && (oshape[i] <= 0 || oshape[i] > big))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "output_shape[%d] = %lld must be positive",
                                  i, (long long)oshape[i]);
        if (g->in[i] < 0) {
            g->out[i] = has_oshape ? oshape[i] : -1;
            continue;
        }
        int64_t full = g->s[i] * (g->in[i] - 1) + opad[i] +
                       (kernel[i] - 1) * g->d[i] + 1;
        if (has_oshape || mode >= 2) {
            int64_t out = has_oshape ? oshape[i] : g->in[i] * g->s[i];
            /* A requested output larger than the full scatter gets no
             * negative padding: the extra trailing positions hold only the
             * bias (as ONNX Runtime does). */
            int64_t total = full - out > 0 ? full - out : 0;
            g->pb[i] = mode == 2 ? total / 2 : total - total / 2;
            g->out[i] = out;
        } else {
            g->pb[i] = mode == 1 ? 0 : pads[i];
            int64_t pe = mode == 1 ? 0 : pads[i + ns];
            g->out[i] = full - g->pb[i] - pe;
            if (g->out[i] <= 0)
                return oct_input_error(ctx, OCT_EINPUT, node, 0,
                                       "pads leave no output on spatial axis "
                                       "%d", i);
        }
    }
    return OCT_OK;
}

/* Kernel sizes from kernel_shape or W's spatial dims (-1 if unknown). */
static oct_status ct_kernel(oct_ctx *ctx, const ir_node *node,
                            const ref_shape *w, int ns, int64_t *kernel)
{
    const ir_attr *ks = ir_node_attr(node, "kernel_shape");
    for (int i = 0; i < ns; i++)
        kernel[i] = w->rank == ns + 2 ? w->dims[i + 2] : -1;
    if (!ks)
        return OCT_OK;
    if (ks->type != IR_ATTR_INTS || ks->n != (size_t)ns)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "attribute 'kernel_shape' must list %d ints", ns);
    for (int i = 0; i < ns; i++) {
        if (ks->ints[i] <= 0 || (kernel[i] >= 0 && kernel[i] != ks->ints[i]))
            return oct_input_error(ctx, OCT_EINPUT, node, 1,
                                   "kernel_shape[%d] = %lld does not match "
                                   "the weight (%lld)", i,
                                   (long long)ks->ints[i], (long long)kernel[i]);
        kernel[i] = ks->ints[i];
    }
    return OCT_OK;
}

oct_status shape_convtranspose(ref_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ref_shape *x = &inf->in[0], *w = &inf->in[1];
    const ref_shape *b = inf->n_in > 2 ? &inf->in[2] : NULL;
    ref_shape *y = &inf->out[0];
    ir_dtype dt = x->dtype != IR_DT_UNDEFINED ? x->dtype : w->dtype;
    if (dt != IR_DT_UNDEFINED && dt != IR_DT_FLOAT && dt != IR_DT_DOUBLE &&
        dt != IR_DT_FLOAT16 && dt != IR_DT_BFLOAT16)
        return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 0,
                               "ConvTranspose does not take %s",
                               ir_dtype_name(dt));
    for (int i = 1; i < 3; i++) {
        const ref_shape *s = i == 1 ? w : b;
        if (s && s->dtype != IR_DT_UNDEFINED && dt != IR_DT_UNDEFINED &&
            s->dtype != dt)
            return oct_input_error(ctx, OCT_EINPUT, node, i,
                                   "type %s differs from the input's %s",
                                   ir_dtype_name(s->dtype), ir_dtype_name(dt));
    }
    int64_t group = ir_attr_int(node, "group", 1);
    if (group < 1)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "group = %lld must be positive", (long long)group);
    int rank = x->rank >= 0 ? x->rank : w->rank;
    y->dtype = dt;
    y->rank = rank;
    if (rank < 0)
        return OCT_OK;
    if (rank < 3 || rank > REF_MAX_RANK)
        return oct_input_error(ctx, OCT_EINPUT, node, x->rank >= 0 ? 0 : 1,
                               "expected rank >= 3 (N, C, spatial...), got %d",
                               rank);
    if (x->rank >= 0 && w->rank >= 0 && x->rank != w->rank)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "weight rank %d differs from input rank %d",
                               w->rank, x->rank);
    int ns = rank - 2;
    int64_t cin = x->rank >= 0 ? x->dims[1] : -1;
    int64_t wc = w->rank >= 0 ? w->dims[0] : -1;
    int64_t m = w->rank >= 0 && w->dims[1] >= 0 ? w->dims[1] * group : -1;
    if (cin >= 0 && cin % group != 0)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "group %lld does not divide the %lld input "
                               "channels", (long long)group, (long long)cin);
    if (cin >= 0 && wc >= 0 && cin != wc)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "input has %lld channels, the weight %lld",
                               (long long)cin, (long long)wc);
    if (b && b->rank >= 0 &&
        (b->rank != 1 || (m >= 0 && b->dims[0] >= 0 && b->dims[0] != m)))
        return oct_input_error(ctx, OCT_EINPUT, node, 2,
                               "bias must be 1-D with %lld values",
                               (long long)m);
    int64_t kernel[REF_MAX_RANK];
    oct_status st = ct_kernel(ctx, node, w, ns, kernel);
    if (st != OCT_OK)
        return st;
    ref_shape xs = *x;
    xs.rank = rank;
    bool kernel_known = true;
    for (int i = 0; i < ns; i++) {
        if (x->rank < 0)
            xs.dims[i + 2] = -1;
        if (kernel[i] < 0) {
            kernel_known = false;
            kernel[i] = 1;
        }
    }
    ct_geom g;
    st = ct_geometry(ctx, node, &xs, kernel, &g);
    if (st != OCT_OK)
        return st;
    y->dims[0] = x->rank >= 0 ? x->dims[0] : -1;
    y->dims[1] = m;
    for (int i = 0; i < ns; i++)
        y->dims[i + 2] = kernel_known ? g.out[i] : -1;
    return OCT_OK;
}

/* col2im scatter of one (batch, group): col[(m, k0, k1, k2)][(i0, i1, i2)]
 * added into y[m][(o0, o1, o2)] at o = i*s + k*d - pad_begin.  The geometry
 * is padded to 3 spatial dims with leading unit axes. */
static void ct_col2im3(const float *col, int64_t mg, const ct_geom *g3,
                       float *y)
{
    int64_t in_sp = g3->in[0] * g3->in[1] * g3->in[2];
    int64_t out_sp = g3->out[0] * g3->out[1] * g3->out[2];
    for (int64_t m = 0; m < mg; m++) {
        float *ym = y + m * out_sp;
        for (int64_t k0 = 0; k0 < g3->k[0]; k0++)
        for (int64_t k1 = 0; k1 < g3->k[1]; k1++)
        for (int64_t k2 = 0; k2 < g3->k[2]; k2++) {
            const float *c = col;
            col += in_sp;
            for (int64_t i0 = 0; i0 < g3->in[0]; i0++) {
                int64_t o0 = i0 * g3->s[0] + k0 * g3->d[0] - g3->pb[0];
                if (o0 < 0 || o0 >= g3->out[0])
                    continue;
                for (int64_t i1 = 0; i1 < g3->in[1]; i1++) {
                    int64_t o1 = i1 * g3->s[1] + k1 * g3->d[1] - g3->pb[1];
                    if (o1 < 0 || o1 >= g3->out[1])
                        continue;
                    const float *cr = c + (i0 * g3->in[1] + i1) * g3->in[2];
                    float *yr = ym + (o0 * g3->out[1] + o1) * g3->out[2];
                    for (int64_t i2 = 0; i2 < g3->in[2]; i2++) {
                        int64_t o2 = i2 * g3->s[2] + k2 * g3->d[2] - g3->pb[2];
                        if (o2 >= 0 && o2 < g3->out[2])
                            yr[o2] += cr[i2];
                    }
                }
            }
        }
    }
}

static oct_status ct_f32(ref_call *call, const ct_geom *g, int64_t group)
{
    const ir_tensor *X = call->in[0], *W = call->in[1];
    const ir_tensor *B = call->n_in > 2 ? call->in[2] : NULL;
    ir_tensor *Y = call->out[0];
    ct_geom g3;
    memset(&g3, 0, sizeof g3);
    int lead = 3 - g->ns;
    for (int i = 0; i < 3; i++) {
        int j = i - lead;
        g3.in[i] = j >= 0 ? g->in[j] : 1;
        g3.k[i] = j >= 0 ? g->k[j] : 1;
        g3.s[i] = j >= 0 ? g->s[j] : 1;
        g3.d[i] = j >= 0 ? g->d[j] : 1;
        g3.pb[i] = j >= 0 ? g->pb[j] : 0;
        g3.out[i] = j >= 0 ? g->out[j] : 1;
    }
    int64_t n = X->dims[0], c = X->dims[1], mg = W->dims[1], m = mg * group;
    int64_t cg = c / group;
    int64_t in_sp = g3.in[0] * g3.in[1] * g3.in[2];
    int64_t out_sp = g3.out[0] * g3.out[1] * g3.out[2];
    int64_t k_sp = g3.k[0] * g3.k[1] * g3.k[2];
    const float *x = X->data, *w = W->data, *bias = B ? B->data : NULL;
    float *y = Y->data;
    for (int64_t i = 0; i < n * m; i++) {
        float bv = bias ? bias[i % m] : 0.0f;
        for (int64_t o = 0; o < out_sp; o++)
            y[i * out_sp + o] = bv;
    }
    uint64_t elems, bytes;
    if (ir_mul_overflow_u64((uint64_t)(mg * k_sp), (uint64_t)in_sp, &elems) ||
        ir_mul_overflow_u64(elems, sizeof(float), &bytes) || bytes > SIZE_MAX)
        return oct_node_error(call->ctx, OCT_EINPUT, call->node,
                              "col2im buffer size overflows");
    float *col = oct_malloc(call->ctx, bytes ? (size_t)bytes : 1);
    if (!col)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    for (int64_t b = 0; b < n && st == OCT_OK; b++)
        for (int64_t gi = 0; gi < group && st == OCT_OK; gi++) {
            /* col (Mg*K x in_sp) = W_g^T (Mg*K x Cg) * X_g (Cg x in_sp) */
            ref_fmat A = {w + gi * cg * mg * k_sp, 1, mg * k_sp};
            ref_fmat Bm = {x + (b * c + gi * cg) * in_sp, in_sp, 1};
            st = ref_sgemm(call->ctx, mg * k_sp, in_sp, cg, A, Bm, col, in_sp,
                           false, NULL);
            if (st == OCT_OK)
                ct_col2im3(col, mg, &g3, y + (b * m + gi * mg) * out_sp);
        }
    oct_free(call->ctx, col, bytes ? (size_t)bytes : 1);
    return st;
}

/* Any float type, any rank: direct scatter into a double buffer. */
static oct_status ct_generic(ref_call *call, const ct_geom *g, int64_t group)
{
    const ir_tensor *X = call->in[0], *W = call->in[1];
    const ir_tensor *B = call->n_in > 2 ? call->in[2] : NULL;
    ir_tensor *Y = call->out[0];
    int ns = g->ns;
    int64_t n = X->dims[0], c = X->dims[1], mg = W->dims[1], m = mg * group;
    int64_t cg = c / group, in_sp = 1, out_sp = 1, k_sp = 1;
    for (int i = 0; i < ns; i++) {
        in_sp *= g->in[i];
        out_sp *= g->out[i];
        k_sp *= g->k[i];
    }
    uint64_t bytes;
    if (ir_mul_overflow_u64(Y->nelems, sizeof(double), &bytes) || bytes > SIZE_MAX)
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "output too large");
    double *acc = oct_malloc(call->ctx, bytes ? (size_t)bytes : 1);
    if (!acc)
        return OCT_EINTERNAL;
    for (uint64_t i = 0; i < Y->nelems; i++)
        acc[i] = B ? ref_get(B, i / (uint64_t)out_sp % (uint64_t)m) : 0.0;
    for (int64_t b = 0; b < n; b++)
    for (int64_t ci = 0; ci < c; ci++) {
        int64_t gi = ci / cg;
        for (int64_t ip = 0; ip < in_sp; ip++) {
            double xv = ref_get(X, (uint64_t)((b * c + ci) * in_sp + ip));
            for (int64_t k = 0; k < k_sp; k++) {
                int64_t t = ip, kt = k, off = 0, mul = 1;
                bool inside = true;
                for (int i = ns - 1; i >= 0; i--) {
                    int64_t iv = t % g->in[i], kv = kt % g->k[i];
                    t /= g->in[i];
                    kt /= g->k[i];
                    int64_t o = iv * g->s[i] + kv * g->d[i] - g->pb[i];
                    if (o < 0 || o >= g->out[i])
                        inside = false;
                    off += o * mul;
                    mul *= g->out[i];
                }
                if (!inside)
                    continue;
                for (int64_t mi = 0; mi < mg; mi++) {
                    double wv = ref_get(W, (uint64_t)((ci * mg + mi) * k_sp + k));
                    acc[(b * m + gi * mg + mi) * out_sp + off] += xv * wv;
                }
            }
        }
    }
    for (uint64_t i = 0; i < Y->nelems; i++)
        ref_set(Y, i, acc[i]);
    oct_free(call->ctx, acc, bytes ? (size_t)bytes : 1);
    return OCT_OK;
}

oct_status ref_convtranspose(ref_call *call)
{
    const ir_tensor *X = call->in[0], *W = call->in[1];
    ref_shape xs, ws;
    ref_shape_of(X, &xs);
    ref_shape_of(W, &ws);
    int ns = xs.rank - 2;
    int64_t kernel[REF_MAX_RANK];
    oct_status st = ct_kernel(call->ctx, call->node, &ws, ns, kernel);
    if (st != OCT_OK)
        return st;
    ct_geom g;
    st = ct_geometry(call->ctx, call->node, &xs, kernel, &g);
    if (st != OCT_OK)
        return st;
    int64_t group = ir_attr_int(call->node, "group", 1);
    if (call->out[0]->nelems == 0)
        return OCT_OK;
    if (X->dtype == IR_DT_FLOAT && ns <= 3)
        return ct_f32(call, &g, group);
    return ct_generic(call, &g, group);
}
