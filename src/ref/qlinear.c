/*
 * qlinear.c: reference kernels of the integer linear ops:
 * MatMulInteger, QLinearMatMul, QGemm and MatMulIntegerToFloat
 * (com.microsoft); ConvInteger and QLinearConv are in qconv.c, the helpers
 * both share in qlinear.h.
 *
 * Numeric contract (docs/design.md), implemented below:
 *   acc = sum((xq - zx) * (wq - zw)) [+ bias], exactly, then reduced to
 *   int32 by two's-complement wrap-around.  The spec allows accumulation to
 *   overflow "if and only if in 32 bits"; ONNX Runtime accumulates in int32
 *   and wraps, and so do we (accumulating exactly in int64 and wrapping once
 *   gives the same bits as wrapping at every step).  Products never overflow.
 *   MatMulInteger and ConvInteger output that int32.
 *   QLinearMatMul / QLinearConv requantize:
 *     yq = saturate(round_half_to_even(acc * M) + zy),  M = (sx * sw) / sy
 *   where M is formed in the scales' float type (float32 for QLinearConv;
 *   float32, float16 or bfloat16 for QLinearMatMul, each operation rounded
 *   to that type), and acc * M is a float32 product: acc is converted to
 *   float32 (round to nearest even beyond 2^24), multiplied by M in float32,
 *   and the product rounded half to even.  This is ONNX Runtime's
 *   arithmetic (MLAS requantization), which the node tests accept too: the
 *   ONNX reference multiplies in double, which differs from ORT on a few
 *   elements near rounding ties.  Float32 is also what vectorized compiled
 *   code computes, so the two can agree bit for bit.  Bias is int32 with
 *   scale sx * sw and zero point 0, added to acc before the wrap.
 *
 * Zero points and scales: per tensor (one element) everywhere; per row of a
 * and per column of b for the matmuls (1-D of length M / N, or N-D of shape
 * [..., M, 1] / [..., 1, N] broadcast over the batch dims); per output
 * channel (1-D of length M) for the weights of the convolutions.
 *
 * The shape and type rules of these ops are in src/ops/shape_qlinear.c.
 */
#include <math.h>
#include <string.h>

#include "ref/qlinear.h"

/* ---- matmul geometry ------------------------------------------------------ */

/* How a per-row (side 0, for a) or per-column (side 1, for b) parameter is
 * indexed for output batch index bi and row/column v:
 *   index = sum(bstride[d] * bi[d]) + vstride * v. */
typedef struct mm_param {
    uint64_t bstride[OPS_MAX_RANK];
    uint64_t vstride;
} mm_param;

/* Resolves a parameter of shape p for a matmul with `nb` output batch dims
 * (ob) and row/column count mn.  Reports a bad shape on input idx. */
static oct_status mm_param_init(oct_ctx *ctx, const ir_node *node, int idx,
                                const ops_shape *p, int side, int nb,
                                const int64_t *ob, int64_t mn, mm_param *out)
{
    memset(out, 0, sizeof *out);
    int64_t n = ops_shape_known_elems(p);
    if (n == 1)
        return OCT_OK;
    if (p->rank == 1) {
        if (p->dims[0] != mn)
            return oct_input_error(ctx, OCT_EINPUT, node, idx,
                                   "per-%s parameter has %lld elements, "
                                   "expected 1 or %lld", side ? "column" : "row",
                                   (long long)p->dims[0], (long long)mn);
        out->vstride = 1;
        return OCT_OK;
    }
    int r = p->rank;
    int64_t one = side ? p->dims[r - 2] : p->dims[r - 1];
    int64_t v = side ? p->dims[r - 1] : p->dims[r - 2];
    if (r < 2 || one != 1 || (v != 1 && v != mn) || r - 2 > nb)
        return oct_input_error(ctx, OCT_EINPUT, node, idx,
                               "parameter shape (rank %d) is neither per "
                               "tensor nor per %s ([..., %s])", r,
                               side ? "column" : "row",
                               side ? "1, N" : "M, 1");
    out->vstride = v == 1 ? 0 : (side ? 1 : (uint64_t)one);
    uint64_t stride = (uint64_t)(p->dims[r - 1] * p->dims[r - 2]);
    for (int d = r - 3; d >= 0; d--) {
        int od = nb - (r - 2) + d;
        if (p->dims[d] != 1 && p->dims[d] != ob[od])
            return oct_input_error(ctx, OCT_EINPUT, node, idx,
                                   "parameter batch dim %d is %lld, output "
                                   "has %lld", d, (long long)p->dims[d],
                                   (long long)ob[od]);
        out->bstride[od] = p->dims[d] == 1 ? 0 : stride;
        stride *= (uint64_t)p->dims[d];
    }
    return OCT_OK;
}

static inline uint64_t mm_param_at(const mm_param *p, int nb, const int64_t *bi,
                                   int64_t v)
{
    uint64_t k = p->vstride * (uint64_t)v;
    for (int d = 0; d < nb; d++)
        k += p->bstride[d] * (uint64_t)bi[d];
    return k;
}

/* Runs an integer matmul; for every output element calls back with the
 * int32 (wrapped) accumulator.  za/zb/sa/sb may be NULL (zero / unused). */
typedef struct mm_run {
    const ir_tensor *a, *b, *za, *zb, *sa, *sb, *sy, *zy;
    const ir_tensor *bias;   /* int32 [N] added before the wrap, or NULL */
    bool to_float;           /* MatMulIntegerToFloat: float32 output */
    const ir_tensor *fbias;  /* its float32 [N] bias, or NULL */
    ir_tensor *y;
    bool requant;
} mm_run;

static oct_status mm_execute(oct_ctx *ctx, const ir_node *node, const int idx[6],
                             const mm_run *r)
{
    const ir_tensor *a = r->a, *b = r->b;
    if (a->rank < 1 || b->rank < 1 || a->rank > OPS_MAX_RANK ||
        b->rank > OPS_MAX_RANK)
        return oct_node_error(ctx, OCT_EINPUT, node, "matmul inputs must have rank 1..%d", OPS_MAX_RANK);
    int64_t M = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t K = a->dims[a->rank - 1];
    int64_t N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    int64_t Kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    if (K != Kb)
        return oct_input_error(ctx, OCT_EINPUT, node, idx[1],
                               "inner dimensions differ: %lld vs %lld",
                               (long long)K, (long long)Kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int nb = ra > rb ? ra : rb;
    int64_t ob[OPS_MAX_RANK], ad[OPS_MAX_RANK], bd[OPS_MAX_RANK];
    for (int d = 0; d < nb; d++) {
        ad[d] = d - (nb - ra) >= 0 ? a->dims[d - (nb - ra)] : 1;
        bd[d] = d - (nb - rb) >= 0 ? b->dims[d - (nb - rb)] : 1;
        if (ad[d] != bd[d] && ad[d] != 1 && bd[d] != 1)
            return oct_input_error(ctx, OCT_EINPUT, node, idx[1],
                                   "batch dims do not broadcast");
        ob[d] = ad[d] == 1 ? bd[d] : ad[d];
    }
    mm_param pza = {0}, pzb = {0}, psa = {0}, psb = {0};
    ops_shape s;
    oct_status st = OCT_OK;
    if (r->za && st == OCT_OK) {
        ops_shape_of(r->za, &s);
        st = mm_param_init(ctx, node, idx[2], &s, 0, nb, ob, M, &pza);
    }
    if (r->zb && st == OCT_OK) {
        ops_shape_of(r->zb, &s);
        st = mm_param_init(ctx, node, idx[3], &s, 1, nb, ob, N, &pzb);
    }
    if (r->sa && st == OCT_OK) {
        ops_shape_of(r->sa, &s);
        st = mm_param_init(ctx, node, idx[4], &s, 0, nb, ob, M, &psa);
    }
    if (r->sb && st == OCT_OK) {
        ops_shape_of(r->sb, &s);
        st = mm_param_init(ctx, node, idx[5], &s, 1, nb, ob, N, &psb);
    }
    if (st != OCT_OK)
        return st;

    /* b's slice minus its zero point, as int32 [K, N], and an int64
     * accumulator row. */
    uint64_t kn = (uint64_t)K * (uint64_t)N;
    int32_t *bz = oct_malloc(ctx, (kn ? kn : 1) * sizeof *bz);
    int64_t *acc = oct_malloc(ctx, (N ? (uint64_t)N : 1) * sizeof *acc);
    if (!bz || !acc) {
        oct_free(ctx, bz, (kn ? kn : 1) * sizeof *bz);
        oct_free(ctx, acc, (N ? (uint64_t)N : 1) * sizeof *acc);
        return OCT_EINTERNAL;
    }
    ir_dtype ts = r->sy ? r->sy->dtype : IR_DT_FLOAT;
    double sy = r->sy ? ops_get(r->sy, 0) : 1.0;
    int64_t zy = r->zy ? ops_get_i64(r->zy, 0) : 0;
    int64_t bi[OPS_MAX_RANK] = {0};
    uint64_t ybase = 0;
    for (;;) {
        uint64_t aoff = 0, boff = 0, astr = (uint64_t)(M * K), bstr = kn;
        for (int d = nb - 1; d >= 0; d--) {
            if (ad[d] != 1)
                aoff += (uint64_t)bi[d] * astr;
            if (bd[d] != 1)
                boff += (uint64_t)bi[d] * bstr;
            astr *= (uint64_t)ad[d];
            bstr *= (uint64_t)bd[d];
        }
        for (int64_t k = 0; k < K; k++)
            for (int64_t n = 0; n < N; n++) {
                int32_t z = r->zb ? (int32_t)ops_get_i64(
                                        r->zb, mm_param_at(&pzb, nb, bi, n))
                                  : 0;
                bz[k * N + n] = load8(b, boff + (uint64_t)(k * N + n)) - z;
            }
        for (int64_t m = 0; m < M; m++) {
            int32_t za = r->za ? (int32_t)ops_get_i64(
                                     r->za, mm_param_at(&pza, nb, bi, m))
                               : 0;
            memset(acc, 0, (uint64_t)N * sizeof *acc);
            if (r->bias)
                for (int64_t n = 0; n < N; n++)
                    acc[n] = ((const int32_t *)r->bias->data)[n];
            for (int64_t k = 0; k < K; k++) {
                int64_t av = load8(a, aoff + (uint64_t)(m * K + k)) - za;
                const int32_t *brow = bz + k * N;
                for (int64_t n = 0; n < N; n++)
                    acc[n] += av * brow[n];
            }
            double sa = r->sa ? ops_get(r->sa, mm_param_at(&psa, nb, bi, m)) : 0;
            for (int64_t n = 0; n < N; n++) {
                uint64_t yi = ybase + (uint64_t)(m * N + n);
                if (r->to_float) { /* each a float32 operation, no FMA */
                    double sbv = ops_get(r->sb, mm_param_at(&psb, nb, bi, n));
                    float mult = (float)(sa * sbv);
                    float v = (float)wrap_i32(acc[n]) * mult;
                    if (r->fbias)
                        v = v + ((const float *)r->fbias->data)[n];
                    ((float *)r->y->data)[yi] = v;
                    continue;
                }
                if (!r->requant) {
                    ((int32_t *)r->y->data)[yi] = wrap_i32(acc[n]);
                    continue;
                }
                double sb = ops_get(r->sb, mm_param_at(&psb, nb, bi, n));
                double mult = ops_requant_multiplier(ts, sa, sb, sy);
                store8(r->y, yi, ops_requantize(wrap_i32(acc[n]), mult, zy,
                                            r->y->dtype));
            }
        }
        ybase += (uint64_t)(M * N);
        int d = nb - 1;
        while (d >= 0 && ++bi[d] == ob[d])
            bi[d--] = 0;
        if (d < 0)
            break;
    }
    oct_free(ctx, bz, (kn ? kn : 1) * sizeof *bz);
    oct_free(ctx, acc, (N ? (uint64_t)N : 1) * sizeof *acc);
    return OCT_OK;
}

/* ---- MatMulInteger: A, B, a_zero_point?, b_zero_point? ------------------- */

oct_status ref_matmulinteger(ref_call *call)
{
    static const int idx[6] = {0, 1, 2, 3, -1, -1};
    mm_run r = {0};
    r.a = call->in[0];
    r.b = call->in[1];
    r.za = call->n_in > 2 ? call->in[2] : NULL;
    r.zb = call->n_in > 3 ? call->in[3] : NULL;
    r.y = call->out[0];
    return mm_execute(call->ctx, call->node, idx, &r);
}

/* ---- QLinearMatMul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp --- */

oct_status ref_qlinearmatmul(ref_call *call)
{
    static const int idx[6] = {0, 3, 2, 5, 1, 4};
    oct_status st = ops_qlin_require_scales(call->ctx, call->node, call->n_in);
    for (int i = 1; i <= 6 && st == OCT_OK; i += i == 4 ? 2 : 3)
        st = ops_qlin_check_scale_values(call->ctx, call->node, i, call->in[i]);
    if (st != OCT_OK)
        return st;
    mm_run r = {0};
    r.a = call->in[0];
    r.sa = call->in[1];
    r.za = call->in[2];
    r.b = call->in[3];
    r.sb = call->in[4];
    r.zb = call->in[5];
    r.sy = call->in[6];
    r.zy = call->in[7];
    r.y = call->out[0];
    r.requant = true;
    return mm_execute(call->ctx, call->node, idx, &r);
}

/* ---- QGemm (com.microsoft): y = requant(A x B' + C) ------------------------
 * A [M, K] (transA = 0 only), B [K, N] or [N, K] with transB = 1, C an
 * int32 bias of N elements with scale a_scale * b_scale (or absent),
 * alpha = 1, y_scale and y_zero_point given (8-bit output): exactly
 * QLinearMatMul plus the bias, with the same requantization.  Other forms
 * (float output, alpha != 1, transA, a 2-D bias) are reported. */

oct_status ref_qgemm(ref_call *call)
{
    static const int idx[6] = {0, 3, 2, 5, 1, 4};
    const ir_node *node = call->node;
    const ir_tensor *b = call->in[3];
    bool tb = ir_attr_int(node, "transB", 0) != 0;
    if (b->rank != 2 || call->in[0]->rank != 2)
        return oct_node_error(call->ctx, OCT_EINPUT, node, "A and B must be 2-D");
    int64_t n_cols = b->dims[tb ? 0 : 1];
    const ir_tensor *bias = call->n_in > 6 ? call->in[6] : NULL;
    oct_status st = ops_qgemm_form(call->ctx, node, call->n_in, bias, n_cols);
    for (int i = 1; i <= 7 && st == OCT_OK; i += 3)
        st = ops_qlin_check_scale_values(call->ctx, node, i, call->in[i]);
    if (st != OCT_OK)
        return st;
    ir_tensor *bt = NULL;
    if (tb) { /* B' = transpose(B), [K, N] */
        int64_t dims[2] = {b->dims[1], b->dims[0]};
        if (!(bt = ir_heap_tensor_new(call->ctx, b->dtype, 2, dims)))
            return OCT_EINTERNAL;
        const uint8_t *src = b->data;
        uint8_t *dst = bt->data;
        for (int64_t n = 0; n < dims[1]; n++)
            for (int64_t k = 0; k < dims[0]; k++)
                dst[k * dims[1] + n] = src[n * dims[0] + k];
    }
    mm_run r = {0};
    r.a = call->in[0];
    r.sa = call->in[1];
    r.za = call->in[2];
    r.b = bt ? bt : b;
    r.sb = call->in[4];
    r.zb = call->in[5];
    r.bias = bias;
    r.sy = call->in[7];
    r.zy = call->in[8];
    r.y = call->out[0];
    r.requant = true;
    st = mm_execute(call->ctx, node, idx, &r);
    ir_heap_tensor_free(call->ctx, bt);
    return st;
}

/* ---- MatMulIntegerToFloat (com.microsoft) -----------------------------------
 * y = (float)acc * (float)(a_scale * b_scale[n]) [+ bias[n]], every step a
 * float32 operation (this file builds with -ffp-contract=off), acc as for
 * MatMulInteger.  a_scale per tensor; b_scale and b_zero_point per tensor or
 * per column; bias float32 with one value per column. */

oct_status ref_matmulintegertofloat(ref_call *call)
{
    static const int idx[6] = {0, 1, 4, 5, 2, 3};
    const ir_node *node = call->node;
    oct_status st = OCT_OK;
    for (int i = 2; i <= 3 && st == OCT_OK; i++)
        st = ops_qlin_check_scale_values(call->ctx, node, i, call->in[i]);
    if (st != OCT_OK)
        return st;
    const ir_tensor *b = call->in[1];
    const ir_tensor *bias = call->n_in > 6 ? call->in[6] : NULL;
    int64_t n_cols = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (call->in[2]->nelems != 1)
        return oct_input_error(call->ctx, OCT_EUNSUPPORTED, node, 2, "a_scale must be per tensor");
    if (bias && (int64_t)bias->nelems != n_cols)
        return oct_input_error(call->ctx, OCT_EINPUT, node, 6,
                               "bias must have one value per column (%lld)", (long long)n_cols);
    mm_run r = {0};
    r.a = call->in[0];
    r.b = b;
    r.sa = call->in[2];
    r.sb = call->in[3];
    r.za = call->n_in > 4 ? call->in[4] : NULL;
    r.zb = call->n_in > 5 ? call->in[5] : NULL;
    r.y = call->out[0];
    r.to_float = true;
    r.fbias = bias;
    return mm_execute(call->ctx, node, idx, &r);
}

/* ---- DynamicQuantizeMatMul (com.microsoft) ----------------------------------
 * A quantized to uint8 by ref_dynamicquantizelinear (its scale and zero
 * point from A's range, as ONNX Runtime's kernel quantizes it), then
 * MatMulIntegerToFloat of that with B, b_scale, b_zero_point?, bias?. */

oct_status ref_dynquantmatmul(ref_call *call)
{
    static const int idx[6] = {0, 1, 0, 3, 0, 2};
    const ir_node *node = call->node;
    const ir_tensor *a = call->in[0], *b = call->in[1];
    const ir_tensor *bias = call->n_in > 4 ? call->in[4] : NULL;
    oct_status st = ops_qlin_check_scale_values(call->ctx, node, 2, call->in[2]);
    if (st != OCT_OK)
        return st;
    int64_t n_cols = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (bias && (int64_t)bias->nelems != n_cols)
        return oct_input_error(call->ctx, OCT_EINPUT, node, 4,
                               "bias must have one value per column (%lld)", (long long)n_cols);
    ir_tensor *q[3] = {ir_heap_tensor_new(call->ctx, IR_DT_UINT8, a->rank, a->dims),
                       ir_heap_tensor_new(call->ctx, IR_DT_FLOAT, 0, NULL),
                       ir_heap_tensor_new(call->ctx, IR_DT_UINT8, 0, NULL)};
    if (!q[0] || !q[1] || !q[2]) {
        st = OCT_EINTERNAL;
    } else {
        ref_call quant = *call;
        quant.n_in = 1;
        quant.n_out = 3;
        quant.out = q;
        st = ref_dynamicquantizelinear(&quant);
    }
    if (st == OCT_OK) {
        mm_run r = {0};
        r.a = q[0];
        r.b = b;
        r.sa = q[1];
        r.sb = call->in[2];
        r.za = q[2];
        r.zb = call->n_in > 3 ? call->in[3] : NULL;
        r.y = call->out[0];
        r.to_float = true;
        r.fbias = bias;
        st = mm_execute(call->ctx, node, idx, &r);
    }
    for (int i = 0; i < 3; i++)
        ir_heap_tensor_free(call->ctx, q[i]);
    return st;
}
