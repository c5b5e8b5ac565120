/*
 * convtranspose.c: ConvTranspose's kernel.
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
 *
 * The shape and type rules of these ops are in src/ops/shape_convtranspose.c.
 */
#include <string.h>

#include "ref/ref.h"
#include "ref/sgemm.h"

/* col2im scatter of one (batch, group): col[(m, k0, k1, k2)][(i0, i1, i2)]
 * added into y[m][(o0, o1, o2)] at o = i*s + k*d - pad_begin.  The geometry
 * is padded to 3 spatial dims with leading unit axes. */
static void ct_col2im3(const float *col, int64_t mg, const ops_ct_geom *g3,
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

static oct_status ct_f32(ref_call *call, const ops_ct_geom *g, int64_t group)
{
    const ir_tensor *X = call->in[0], *W = call->in[1];
    const ir_tensor *B = call->n_in > 2 ? call->in[2] : NULL;
    ir_tensor *Y = call->out[0];
    ops_ct_geom g3;
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
static oct_status ct_generic(ref_call *call, const ops_ct_geom *g, int64_t group)
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
        acc[i] = B ? ops_get(B, i / (uint64_t)out_sp % (uint64_t)m) : 0.0;
    for (int64_t b = 0; b < n; b++)
    for (int64_t ci = 0; ci < c; ci++) {
        int64_t gi = ci / cg;
        for (int64_t ip = 0; ip < in_sp; ip++) {
            double xv = ops_get(X, (uint64_t)((b * c + ci) * in_sp + ip));
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
                    double wv = ops_get(W, (uint64_t)((ci * mg + mi) * k_sp + k));
                    acc[(b * m + gi * mg + mi) * out_sp + off] += xv * wv;
                }
            }
        }
    }
    for (uint64_t i = 0; i < Y->nelems; i++)
        ops_set(Y, i, acc[i]);
    oct_free(call->ctx, acc, bytes ? (size_t)bytes : 1);
    return OCT_OK;
}

oct_status ref_convtranspose(ref_call *call)
{
    const ir_tensor *X = call->in[0], *W = call->in[1];
    ops_shape xs, ws;
    ops_shape_of(X, &xs);
    ops_shape_of(W, &ws);
    int ns = xs.rank - 2;
    int64_t kernel[OPS_MAX_RANK];
    oct_status st = ops_conv_kernel_shape(call->ctx, call->node, &ws, ns, kernel);
    if (st != OCT_OK)
        return st;
    ops_ct_geom g;
    st = ops_ct_geometry(call->ctx, call->node, &xs, kernel, &g);
    if (st != OCT_OK)
        return st;
    int64_t group = ir_attr_int(call->node, "group", 1);
    if (call->out[0]->nelems == 0)
        return OCT_OK;
    if (X->dtype == IR_DT_FLOAT && ns <= 3)
        return ct_f32(call, &g, group);
    return ct_generic(call, &g, group);
}
