/*
 * quant_wo_mnb.c: `octet quantize --weights-only --format=matmulnbits`:
 * a MatMul whose weight quant_weightonly.c quantized in blocks along K
 * (DequantizeLinear(codes, scales, zero points) -> MatMul) becomes ONNX
 * Runtime's MatMulNBits (com.microsoft), so its users get ORT's packed
 * low-bit kernels.  The numbers do not change: MatMulNBits codes are
 * unsigned, so a signed code q and zero point z are stored as q + 2^(bits-1)
 * and z + 2^(bits-1), and (q - z) * s is the same product.  The zero points
 * are left out when every one is 2^(bits-1) after the shift (MatMulNBits'
 * default: the symmetric schemes), else packed as uint8, low bits first.
 * B is [N, k_blocks, block_size * bits / 8], each column's codes along K
 * low bits first; the codes of the short last block past K are 0.
 */
#include <string.h>

#include "passes/quant.h"

/* Code i of a packed integer tensor of `bits` bits (sign-extended if
 * signed). */
static int32_t code_at(const ir_tensor *t, int bits, bool is_signed, int64_t i)
{
    const uint8_t *d = t->data;
    int64_t bit = i * bits;
    uint32_t v = bits == 8 ? d[i] : (d[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    if (is_signed && (v & (1u << (bits - 1))))
        return (int32_t)v - (1 << bits);
    return (int32_t)v;
}

static void put_code(uint8_t *p, int bits, int64_t j, uint32_t v)
{
    int64_t bit = j * bits;
    p[bit / 8] |= (uint8_t)(v << (bit % 8));
}

static ir_value *u8_init(oct_ctx *ctx, ir_graph *g, const char *name, int rank,
                         const int64_t *dims, ir_tensor **t)
{
    *t = ir_tensor_new(ctx, rank == 0 ? IR_DT_UINT8 : IR_DT_UINT8, rank, dims);
    return *t ? ir_graph_add_init(ctx, g, name, *t) : NULL;
}

oct_status quant_wo_to_matmulnbits(ir_model *m, ir_node *mm, bool act_int8, oct_ctx *ctx)
{
    ir_graph *g = m->graph;
    ir_node *dq = mm->in[1]->producer;
    OCT_ASSERT(mm->op == IR_OP_MATMUL && dq && dq->op == IR_OP_DEQUANTIZELINEAR);
    const ir_tensor *qt = dq->in[0]->init, *st = dq->in[1]->init, *zt = dq->in[2]->init;
    const ir_dtype_traits *tr = ir_dtype_info(qt->dtype);
    int bits = tr->bits;
    bool is_signed = tr->kind == IR_DK_SINT;
    int64_t K = qt->dims[0], N = qt->dims[1], bs = ir_attr_int(dq, "block_size", 0);
    int64_t nb = (K + bs - 1) / bs, blob = bs * bits / 8, zrow = (nb * bits + 7) / 8;
    int32_t off = is_signed ? 1 << (bits - 1) : 0, dflt = 1 << (bits - 1);
    const char *base = mm->in[1]->name;
    int64_t bdims[3] = {N, nb, blob}, sdim = N * nb, zdim = N * zrow;
    ir_tensor *bt, *zq = NULL;
    ir_tensor *sc = ir_tensor_new(ctx, IR_DT_FLOAT, 1, &sdim);
    ir_value *bv = u8_init(ctx, g, ir_sprintf(ctx, "%s_nbits", base), 3, bdims, &bt);
    ir_value *sv = sc ? ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_nbits_scales", base), sc) : NULL;
    if (!bv || !sv)
        return OCT_EINTERNAL;
    bool need_zp = false;
    for (int64_t i = 0; i < nb * N; i++)
        need_zp |= code_at(zt, bits, is_signed, i) + off != dflt;
    ir_value *zv = need_zp ? u8_init(ctx, g, ir_sprintf(ctx, "%s_nbits_zero_points", base), 1,
                                     &zdim, &zq) : NULL;
    if (need_zp && !zv)
        return OCT_EINTERNAL;
    uint8_t *bp = bt->data;
    float *sp = sc->data;
    const float *ss = st->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t b = 0; b < nb; b++) {
            sp[n * nb + b] = ss[b * N + n];
            if (zq)
                put_code((uint8_t *)zq->data + n * zrow, bits, b,
                         (uint32_t)(code_at(zt, bits, is_signed, b * N + n) + off));
            for (int64_t j = 0; j < bs && b * bs + j < K; j++)
                put_code(bp + (n * nb + b) * blob, bits, j,
                         (uint32_t)(code_at(qt, bits, is_signed, (b * bs + j) * N + n) + off));
        }
    /* the MatMul becomes the MatMulNBits; the DequantizeLinear goes */
    if (!ir_node_set_inputs(ctx, mm, need_zp ? 4 : 3) ||
        !ir_model_import_opset(ctx, m, "com.microsoft", 1))
        return OCT_EINTERNAL;
    mm->in[1] = bv;
    mm->in[2] = sv;
    if (need_zp)
        mm->in[3] = zv;
    mm->op = IR_OP_MATMULNBITS;
    mm->op_type = "MatMulNBits";
    mm->domain = "com.microsoft";
    /* --wo-compute=int8: accuracy_level 4, int8 activations (ONNX
     * Runtime's meaning; Octet's interpreter and compiler: ref/wo_int8.c) */
    static const char *const names[5] = {"K", "N", "bits", "block_size", "accuracy_level"};
    int64_t vals[5] = {K, N, bits, bs, 4};
    for (int i = 0; i < (act_int8 ? 5 : 4); i++) {
        ir_attr *a = ir_node_add_attr(ctx, mm, names[i], IR_ATTR_INT);
        if (!a)
            return OCT_EINTERNAL;
        a->i = vals[i];
    }
    ir_graph_remove_node(g, dq);
    return OCT_OK;
}
