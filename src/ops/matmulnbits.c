/*
 * matmulnbits.c: ONNX Runtime's contrib MatMulNBits (com.microsoft):
 * Y = A . W + bias with W [K, N] stored block-quantized along K, the codes
 * of column n in B [N, k_blocks, blob] (blob = block_size * bits / 8 bytes,
 * codes packed low bits first; the last block's codes past K are padding).
 * w[k, n] = (q - zp) * scale[n * k_blocks + blk], blk = k / block_size (or
 * g_idx[k]); zp is 2^(bits-1) when absent, else a uint8-packed code (row n
 * holds ceil(k_blocks * bits / 8) bytes, low bits first) or a float of the
 * scales' type (HQQ).  Every step is float32: (float)(q - zp) * scale, or
 * ((float)q - zp) * scale for a float zero point.  accuracy_level lets
 * ONNX Runtime compute with lower-precision activations; Octet computes in
 * float32 (level 0's arithmetic) except for level 4 in the 4-bit blocked
 * form (ops_mnb_act_int8): int8 activations per row and block, integer
 * dot products, as src/ref/wo_int8.c defines them.
 *
 * The checks and the dequantization live here, below the interpreter
 * (src/ref) and the pass that unpacks constant weights for the compiler
 * (src/passes/mnb_unpack.c), so both read the packed bytes one way.
 */
#include <string.h>

#include "ops/ops.h"

static oct_status bad(oct_ctx *ctx, const ir_node *n, int i, const char *what,
                      long long got, long long want)
{
    if (i < 0)
        return oct_node_error(ctx, OCT_EINPUT, n, "MatMulNBits: %s (%lld; expected %lld)",
                              what, got, want);
    return oct_input_error(ctx, OCT_EINPUT, n, i, "MatMulNBits: %s (%lld; expected %lld)",
                           what, got, want);
}

oct_status ops_mnb_check(oct_ctx *ctx, const ir_node *n, int n_in,
                         const ops_shape *in, ops_mnb *g)
{
    memset(g, 0, sizeof *g);
    g->K = ir_attr_int(n, "K", -1);
    g->N = ir_attr_int(n, "N", -1);
    g->bits = ir_attr_int(n, "bits", 4);
    g->block_size = ir_attr_int(n, "block_size", -1);
    if (g->K < 1 || g->K > ((int64_t)1 << 40))
        return bad(ctx, n, -1, "attribute K must be positive", g->K, 1);
    if (g->N < 1 || g->N > ((int64_t)1 << 40))
        return bad(ctx, n, -1, "attribute N must be positive", g->N, 1);
    if (g->bits != 2 && g->bits != 4 && g->bits != 8)
        return bad(ctx, n, -1, "attribute bits must be 2, 4 or 8", g->bits, 4);
    if (g->block_size < 16 || g->block_size > (1 << 20) ||
        (g->block_size & (g->block_size - 1)))
        return bad(ctx, n, -1, "attribute block_size must be a power of two >= 16",
                   g->block_size, 32);
    g->k_blocks = (g->K + g->block_size - 1) / g->block_size;
    g->blob = g->block_size * g->bits / 8;
    g->zp_row = (g->k_blocks * g->bits + 7) / 8;
    int64_t want[6] = {-1, g->N * g->k_blocks * g->blob, g->N * g->k_blocks, -1, g->K, g->N};
    static const char *const what[6] = {"", "B must hold N * k_blocks * blob bytes",
                                        "scales must hold N * k_blocks values",
                                        "", "g_idx must hold K values",
                                        "bias must hold N values"};
    for (int i = 0; i < n_in && i < 6; i++) {
        const ops_shape *s = &in[i];
        if (i > 0 && !n->in[i])
            continue;
        ir_dtype dt = s->dtype;
        ir_dtype need = i == 1 ? IR_DT_UINT8 : i == 4 ? IR_DT_INT32 : IR_DT_FLOAT;
        if (i == 3 && dt == IR_DT_UINT8)
            need = IR_DT_UINT8;
        if (dt != IR_DT_UNDEFINED && dt != need)
            return oct_input_error(ctx, OCT_EINPUT, n, i, "MatMulNBits: type %s: expected %s",
                                   ir_dtype_name(dt), ir_dtype_name(need));
        if (i == 0) {
            if (s->rank == 0)
                return oct_input_error(ctx, OCT_EINPUT, n, 0, "MatMulNBits: A is a scalar");
            if (s->rank > 0 && s->dims[s->rank - 1] >= 0 && s->dims[s->rank - 1] != g->K)
                return bad(ctx, n, 0, "A's last dimension must be K", s->dims[s->rank - 1], g->K);
            continue;
        }
        int64_t w = want[i];
        if (i == 3)
            w = dt == IR_DT_UINT8 ? g->N * g->zp_row : g->N * g->k_blocks;
        int64_t e = ops_shape_known_elems(s);
        if (e >= 0 && e != w)
            return bad(ctx, n, i, i == 3 ? "zero_points must hold N * ceil(k_blocks * bits / 8) "
                                           "bytes or N * k_blocks floats" : what[i], e, w);
    }
    return OCT_OK;
}

/* Code j of a packed byte string, low bits first. */
static inline unsigned code_at(const uint8_t *p, int64_t j, int64_t bits)
{
    int64_t bit = j * bits;
    return (p[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
}

oct_status ops_mnb_dequant(oct_ctx *ctx, const ir_node *n, const ops_mnb *g,
                           const ir_tensor *b, const ir_tensor *scales,
                           const ir_tensor *zp, const ir_tensor *g_idx, float *w)
{
    OCT_ASSERT((int64_t)b->nelems == g->N * g->k_blocks * g->blob &&
               (int64_t)scales->nelems == g->N * g->k_blocks);
    const uint8_t *bq = b->data;
    const float *sc = scales->data;
    const int32_t *gi = g_idx ? g_idx->data : NULL;
    for (int64_t k = 0; gi && k < g->K; k++)
        if (gi[k] < 0 || gi[k] >= g->k_blocks)
            return oct_input_error(ctx, OCT_EINPUT, n, 4, "MatMulNBits: g_idx[%lld] = %d "
                                   "is not a block index (0 .. %lld)", (long long)k,
                                   (int)gi[k], (long long)g->k_blocks - 1);
    float zdefault = (float)(1 << (g->bits - 1));
    for (int64_t col = 0; col < g->N; col++)
        for (int64_t k = 0; k < g->K; k++) {
            int64_t blk = gi ? gi[k] : k / g->block_size;
            int64_t at = col * g->k_blocks + blk;
            const uint8_t *blob = bq + (col * g->k_blocks + k / g->block_size) * g->blob;
            unsigned q = code_at(blob, k % g->block_size, g->bits);
            float v;
            if (zp && zp->dtype == IR_DT_FLOAT)
                v = ((float)q - ((const float *)zp->data)[at]) * sc[at];
            else {
                int z = zp ? (int)code_at((const uint8_t *)zp->data + col * g->zp_row, blk, g->bits)
                           : (int)zdefault;
                v = (float)((int)q - z) * sc[at];
            }
            w[k * g->N + col] = v;
        }
    return OCT_OK;
}

oct_status ops_shape_matmulnbits(ops_infer *inf)
{
    ops_mnb g;
    oct_status st = ops_mnb_check(inf->ctx, inf->node, inf->n_in, inf->in, &g);
    if (st)
        return st;
    const ops_shape *a = &inf->in[0];
    ops_shape *y = &inf->out[0];
    memset(y, 0, sizeof *y);
    y->dtype = IR_DT_FLOAT;
    y->rank = a->rank;
    if (a->rank > 0) {
        memcpy(y->dims, a->dims, (size_t)a->rank * sizeof *a->dims);
        y->dims[a->rank - 1] = g.N;
    }
    return OCT_OK;
}

bool ops_mnb_act_int8(const ir_node *n, const ops_mnb *g, const ir_tensor *zp, bool g_idx)
{
    int64_t bs = g->block_size;
    return ir_attr_int(n, "accuracy_level", 0) == 4 && g->bits == 4 && !g_idx &&
           (!zp || zp->dtype == IR_DT_UINT8) && (bs == 16 || bs == 32 || bs == 64 || bs == 128);
}

bool ops_mnb_int8_rows(const ir_node *n, const ops_mnb *g, const ir_tensor *zp, bool g_idx)
{
    return n->act_int8 == IR_INT8_ROWS && g->K <= OPS_MNB_ROWS_MAX_K &&
           ops_mnb_act_int8(n, g, zp, g_idx);
}

void ops_mnb_int4_unpack(const ops_mnb *g, const ir_tensor *b, const ir_tensor *scales,
                         const ir_tensor *zp, uint8_t *q, uint8_t *z, float *s)
{
    const uint8_t *bq = b->data;
    const float *sc = scales->data;
    int64_t nb = g->k_blocks, bs = g->block_size;
    for (int64_t col = 0; col < g->N; col++)
        for (int64_t blk = 0; blk < nb; blk++) {
            s[blk * g->N + col] = sc[col * nb + blk];
            z[blk * g->N + col] =
                zp ? (uint8_t)code_at((const uint8_t *)zp->data + col * g->zp_row, blk, 4) : 8;
            for (int64_t j = 0; j < bs && blk * bs + j < g->K; j++)
                q[(blk * bs + j) * g->N + col] =
                    (uint8_t)code_at(bq + (col * nb + blk) * g->blob, j, 4);
        }
}
