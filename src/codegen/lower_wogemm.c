/*
 * lower_wogemm.c: float MatMul whose weight is a blocked INT4/UINT4
 * DequantizeLinear of constants onto octk_wogemm (kernels/wogemm.c), the
 * weight staying 4-bit in the library.  `octet quantize --weights-only`
 * writes this form, and mnb_unpack turns a 4-bit MatMulNBits into it.
 *
 * cg_plan_wo_weights marks the DequantizeLinear's output absorbed before
 * the memory plan, so the DequantizeLinear emits nothing and its float
 * output gets no memory; cg_try_wogemm then packs the codes, scales and
 * zero points (octk_wogemm_pack_b) and calls the kernel.  Conditions
 * (wo_source): the DequantizeLinear reads a constant INT4 or UINT4 [K, N]
 * initializer with block_size 16, 32, 64 or 128 along axis 0, constant
 * finite float32 scales [ceil(K/bs), N], a zero point absent or constant
 * of the codes' type and the scales' shape, and gives float32; the MatMul
 * is its only reader (not a graph output, not inside a fused run), with a
 * float32 A whose last dimension is K.  Anything else keeps the general
 * path (the DequantizeLinear loop, then the float MatMul).
 *
 * Signed codes v are stored as v + 8 with the zero point shifted alike
 * ((v + 8) - (z + 8) = v - z).  When every zero point is the same (the
 * symmetric schemes) it is one constant of the call and the library holds
 * no zero-point bytes.
 *
 * A MatMul marked act_int8 (mnb_unpack: MatMulNBits accuracy_level 4) runs
 * the kernel's int8-activation path, bit for bit the interpreter's
 * (src/ref/wo_int8.c); its scales need not be finite (NaN propagates
 * alike), and if its weight is not in the form above compiling fails
 * rather than computing in float.  Marked IR_INT8_ROWS (pass
 * mnb_int8_rows, `--int8-rows`), the weight is converted here to int8 per
 * column (octk_wogemm_pack_b_w8: one byte per weight in the library) and
 * the kernel's int8-rows path runs, again the interpreter's bits.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"

_Static_assert((int)IR_INT8_ROWS == (int)OCTK_WO_INT8_ROWS &&
                   (int)OPS_MNB_ROWS_MAX_K == (int)OCTK_WO_ROWS_MAX_K,
               "the IR's and the kernel's int8-rows constants");

typedef struct wo_weight {
    const ir_tensor *q, *s, *z;  /* codes [K, N], scales, zero points or NULL */
    bool is_signed;
    int64_t K, N, bs;
} wo_weight;

static bool wo_block_ok(int64_t bs)
{
    return bs == 16 || bs == 32 || bs == 64 || bs == 128;
}

/* Whether w is the output of a DequantizeLinear the kernel takes (the
 * file comment lists the conditions). */
static bool wo_source(const cg_tensor *w, bool act_int8, wo_weight *out)
{
    const ir_node *dq = w && w->value ? w->value->producer : NULL;
    if (!dq || dq->op != IR_OP_DEQUANTIZELINEAR || w->value->init || w->dtype != IR_DT_FLOAT ||
        dq->n_in < 2 || !dq->in[0] || !dq->in[1])
        return false;
    const ir_tensor *q = dq->in[0]->init, *s = dq->in[1]->init;
    const ir_tensor *z = dq->n_in > 2 && dq->in[2] ? dq->in[2]->init : NULL;
    int axis = -1;
    int64_t bs = ir_attr_int(dq, "block_size", 0);
    if (!q || !s || (dq->n_in > 2 && dq->in[2] && !z) || q->rank != 2 ||
        (q->dtype != IR_DT_INT4 && q->dtype != IR_DT_UINT4) || s->dtype != IR_DT_FLOAT ||
        !wo_block_ok(bs) || !ops_norm_axis(ir_attr_int(dq, "axis", 1), 2, &axis) || axis != 0)
        return false;
    int64_t K = q->dims[0], N = q->dims[1], nb = (K + bs - 1) / bs;
    if (K < 1 || N < 1 || s->rank != 2 || s->dims[0] != nb || s->dims[1] != N ||
        (z && (z->dtype != q->dtype || z->rank != 2 || z->dims[0] != nb || z->dims[1] != N)))
        return false;
    const float *sv = s->data;
    for (uint64_t i = 0; i < s->nelems && !act_int8; i++)
        if (!isfinite(sv[i]))
            return false;
    *out = (wo_weight){.q = q, .s = s, .z = z, .is_signed = q->dtype == IR_DT_INT4,
                       .K = K, .N = N, .bs = bs};
    return true;
}

/* The MatMul's A and Y fit: float32, A's last dimension K. */
static bool wo_form(const cg_tensor *tens, const ir_node *n, const wo_weight *w)
{
    const cg_tensor *A = n->n_in > 0 && n->in[0] ? &tens[n->in[0]->id] : NULL;
    const cg_tensor *Y = n->n_out > 0 && n->out[0] ? &tens[n->out[0]->id] : NULL;
    return A && Y && A->dtype == IR_DT_FLOAT && Y->dtype == IR_DT_FLOAT && A->rank >= 1 &&
           A->dims[A->rank - 1] == w->K;
}

oct_status cg_plan_wo_weights(oct_ctx *ctx, const ir_graph *g, bool kernels,
                              const int (*span)[2], cg_tensor *tens)
{
    if (!kernels)
        return OCT_OK;
    int *uses = ir_alloc_array(ctx, g->n_values ? g->n_values : 1, sizeof *uses);
    if (!uses)
        return OCT_EINTERNAL;
    for (size_t k = 0; k < g->n_nodes; k++)
        for (int i = 0; i < g->nodes[k]->n_in; i++)
            if (g->nodes[k]->in[i])
                uses[g->nodes[k]->in[i]->id]++;
    for (size_t i = 0; i < g->n_outputs; i++)
        uses[g->outputs[i]->id]++;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        if (n->op != IR_OP_MATMUL || n->n_in < 2 || !n->in[1] || !tens[n->in[1]->id].value)
            continue;
        cg_tensor *w = &tens[n->in[1]->id];
        const ir_node *dq = w->value->producer;
        wo_weight ww;
        /* an int8-activation MatMul goes on the INT4 kernel's integer
         * path only; other packed formats are float */
        bool ok = uses[n->in[1]->id] == 1 && dq &&
                  (wo_source(w, n->act_int8, &ww) ||
                   (!n->act_int8 && cg_wofmt_source(w, &ww.K))) &&
                  wo_form(tens, n, &ww);
        /* the DequantizeLinear must not be part of a fused run */
        for (size_t j = 0; ok && j < g->n_nodes; j++)
            if (g->nodes[j] == dq)
                ok = span[j][0] == span[j][1];
        if (ok) {
            w->absorbed = true;
            cg_wofmt_absorb_scales(tens, w, uses);
        } else if (n->act_int8) { /* float here would not be the interpreter's int8 result */
            return oct_node_error(ctx, OCT_EUNSUPPORTED, n, "MatMul with int8 activations "
                                  "(MatMulNBits accuracy_level 4): its weight is not a "
                                  "constant blocked 4-bit DequantizeLinear read by it alone");
        }
    }
    return OCT_OK;
}

/* Code i of a packed 4-bit tensor as 0..15 (signed: v + 8). */
static uint8_t wo_code(const ir_tensor *t, bool is_signed, int64_t i)
{
    uint8_t v = (((const uint8_t *)t->data)[i / 2] >> (4 * (i & 1))) & 15u;
    return is_signed ? v ^ 8u : v;
}

/* The report's path: which route M rows take on this target. */
static const char *wo_path(cg_fn *f, int64_t M, int act_int8)
{
    unsigned isa = cg_kernels_isa(f);
    bool avx512 = (isa & OCTK_ISA_VNNI) != 0, avx2 = (isa & OCTK_ISA_AVX2) != 0;
    if (act_int8 == IR_INT8_ROWS)
        return avx512 ? "int4 blocks converted to int8 per column x int8 activations per row, "
                        "vpdpbusd (AVX-512 VNNI)"
               : avx2 ? "int4 blocks converted to int8 per column x int8 activations per row, "
                        "vpmaddubsw (AVX2)"
                      : "int4 blocks converted to int8 per column x int8 activations per row "
                        "(scalar)";
    if (act_int8)
        return avx512 ? "int4 blocks x int8 activations per block, vpdpbusd (AVX-512 VNNI)"
               : avx2 ? "int4 blocks x int8 activations per block, vpmaddubsw (AVX2)"
                      : "int4 blocks x int8 activations per block (scalar)";
    if (octk_wogemm_is_gemv(M))
        return avx512 ? "int4 blocks, GEMV unpacking nibbles in registers (AVX-512)"
               : avx2 ? "int4 blocks, GEMV unpacking nibbles in registers (AVX2)"
                      : "int4 blocks, GEMV unpacking nibbles (scalar)";
    return "int4 blocks widened per 64 columns into the f32 GEMM's panels, f32 FMA GEMM";
}

bool cg_try_wogemm(cg_fn *f, const ir_node *n, oct_status *st)
{
    cg_tensor *A = cg_in(f, n, 0), *Bt = cg_in(f, n, 1), *Y = cg_out(f, n, 0);
    wo_weight w;
    if (!Bt || !Bt->absorbed || !wo_source(Bt, n->act_int8, &w))
        return false;
    int64_t K = w.K, N = w.N, bs = w.bs, nb = (K + bs - 1) / bs;
    uint8_t *codes = ir_alloc_array(f->ctx, (size_t)(K * N), 1);
    uint8_t *zp = ir_alloc_array(f->ctx, (size_t)(nb * N), 1);
    if (!codes || !zp) {
        *st = OCT_EINTERNAL;
        return true;
    }
    for (int64_t i = 0; i < K * N; i++)
        codes[i] = wo_code(w.q, w.is_signed, i);
    bool same = true;
    for (int64_t i = 0; i < nb * N; i++) {
        zp[i] = w.z ? wo_code(w.z, w.is_signed, i) : w.is_signed ? 8 : 0;
        same &= zp[i] == zp[0];
    }
    octk_wogemm a;
    memset(&a, 0, sizeof a);
    a.M = (int64_t)(A->nelems / (uint64_t)K);
    a.N = N;
    a.K = K;
    a.bs = bs;
    a.lda = K;
    a.ldy = N;
    a.has_zp = !same;
    a.zero = zp[0];
    a.act_int8 = n->act_int8;
    bool rows = a.act_int8 == IR_INT8_ROWS;
    size_t psize = rows         ? octk_wogemm_packed_b_w8_size(K, N)
                   : a.act_int8 ? octk_wogemm_packed_b_i8_size(K, N, bs, a.has_zp)
                                : octk_wogemm_packed_b_size(K, N, bs, a.has_zp);
    uint8_t *packed = ir_alloc_array(f->ctx, psize ? psize : 1, 1);
    void *tmp = rows ? ir_alloc_array(f->ctx, (size_t)K, 5) : NULL;
    if (!packed || (rows && !tmp)) {
        *st = OCT_EINTERNAL;
        return true;
    }
    if (rows)
        octk_wogemm_pack_b_w8(packed, codes, a.has_zp ? zp : NULL, a.zero, w.s->data, K, N, bs,
                              tmp);
    else if (a.act_int8)
        octk_wogemm_pack_b_i8(packed, codes, a.has_zp ? zp : NULL, w.s->data, K, N, bs);
    else
        octk_wogemm_pack_b(packed, codes, a.has_zp ? zp : NULL, w.s->data, K, N, bs);
    cg_kptr ptrs[4] = {
        {offsetof(octk_wogemm, a), cg_ptr(f, A)},
        {offsetof(octk_wogemm, y), cg_ptr(f, Y)},
        {offsetof(octk_wogemm, b), cg_weight_data(f, packed, psize, NULL)},
        {offsetof(octk_wogemm, work), cg_workspace(f, octk_wogemm_work_size(&a))}};
    cg_kernel_call(f, "wogemm", &a, sizeof a, ptrs, 4);
    cg_report(f, n, "octk_wogemm", wo_path(f, a.M, a.act_int8));
    *st = OCT_OK;
    return true;
}
