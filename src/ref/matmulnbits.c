/*
 * matmulnbits.c: the reference MatMulNBits (com.microsoft): the weight
 * dequantized as src/ops/matmulnbits.c defines it, then Y[m, n] =
 * sum_k A[m, k] * W[k, n] (float32, k ascending) + bias[n], every leading
 * axis of A folded into m.
 */
#include "ops/ops.h"
#include "ref/ref.h"
#include "ref/wo_int8.h"

/* accuracy_level 4 in the 4-bit blocked form: int8 activations per row
 * and block, or with rows (pass mnb_int8_rows) int8 weights per column and
 * activations per row (ref/wo_int8.c), then the bias added in float32. */
static oct_status int8_path(ref_call *call, const ops_mnb *g, const ir_tensor *zp,
                            const ir_tensor *bias, bool rows)
{
    int64_t nb = g->k_blocks;
    size_t qbytes = (size_t)(g->K * g->N), zbytes = (size_t)(nb * g->N);
    size_t tbytes = rows ? ref_wo_int8_rows_tmp(g->K, g->N) : 0;
    uint8_t *q = oct_malloc(call->ctx, qbytes), *z = oct_malloc(call->ctx, zbytes);
    float *s = oct_malloc(call->ctx, zbytes * sizeof *s);
    void *tmp = rows ? oct_malloc(call->ctx, tbytes) : NULL;
    oct_status st = q && z && s && (tmp || !rows) ? OCT_OK : OCT_EINTERNAL;
    if (!st) {
        const ir_tensor *a = call->in[0];
        float *y = call->out[0]->data;
        int64_t m = (int64_t)a->nelems / g->K;
        ops_mnb_int4_unpack(g, call->in[1], call->in[2], zp, q, z, s);
        if (tmp)
            ref_wo_int8_rows(a->data, m, g->K, g->N, g->block_size, q, z, s, y, tmp);
        else
            ref_wo_int8(a->data, m, g->K, g->N, g->block_size, q, z, s, y);
        const float *bv = bias ? bias->data : NULL;
        for (int64_t i = 0; bv && i < m * g->N; i++)
            y[i] = y[i] + bv[i % g->N];
    }
    oct_free(call->ctx, q, qbytes);
    oct_free(call->ctx, z, zbytes);
    oct_free(call->ctx, s, zbytes * sizeof *s);
    if (tmp)
        oct_free(call->ctx, tmp, tbytes);
    return st;
}

oct_status ref_matmulnbits(ref_call *call)
{
    const ir_node *node = call->node;
    ops_shape in[6];
    for (int i = 0; i < 6; i++) {
        in[i].rank = -1;
        in[i].dtype = IR_DT_UNDEFINED;
        if (i < call->n_in && call->in[i])
            ops_shape_of(call->in[i], &in[i]);
    }
    ops_mnb g;
    oct_status st = ops_mnb_check(call->ctx, node, call->n_in < 6 ? call->n_in : 6, in, &g);
    if (st)
        return st;
    const ir_tensor *a = call->in[0];
    const ir_tensor *zp = call->n_in > 3 ? call->in[3] : NULL;
    const ir_tensor *gi = call->n_in > 4 ? call->in[4] : NULL;
    const ir_tensor *bias = call->n_in > 5 ? call->in[5] : NULL;
    if (ops_mnb_act_int8(node, &g, zp, gi != NULL))
        return int8_path(call, &g, zp, bias, ops_mnb_int8_rows(node, &g, zp, gi != NULL));
    size_t wbytes = (size_t)g.K * (size_t)g.N * sizeof(float);
    float *w = oct_malloc(call->ctx, wbytes);
    if (!w)
        return OCT_EINTERNAL;
    st = ops_mnb_dequant(call->ctx, node, &g, call->in[1], call->in[2], zp, gi, w);
    if (!st) {
        const float *x = a->data, *bv = bias ? bias->data : NULL;
        float *y = call->out[0]->data;
        int64_t rows = (int64_t)a->nelems / g.K;
        for (int64_t m = 0; m < rows; m++)
            for (int64_t n = 0; n < g.N; n++) {
                float acc = 0;
                for (int64_t k = 0; k < g.K; k++)
                    acc += x[m * g.K + k] * w[k * g.N + n];
                y[m * g.N + n] = bv ? acc + bv[n] : acc;
            }
    }
    oct_free(call->ctx, w, wbytes);
    return st;
}
