/*
 * gemm.c: Gemm and MatMul kernels.
 *
 * Gemm: Y = alpha * A' * B' + beta * C, A' = transA ? A^T : A (M x K),
 * B' = transB ? B^T : B (K x N), C optional (required before opset 11) and
 * unidirectionally broadcast to (M, N) (before opset 7 only with
 * broadcast=1; otherwise it must be exactly M x N).
 * MatMul: numpy.matmul: a 1-D A is a row (1 x K), a 1-D B a column (K x 1),
 * the promoted dim is removed from the result; leading batch dims broadcast.
 *
 * Arithmetic: float32 goes through the blocked SGEMM (float32 accumulation,
 * FMA; see sgemm.h), then Gemm scales by alpha and adds beta * C, each
 * rounded to float32.  double, float16 and bfloat16 accumulate in double and
 * round once on the store (to nearest even).  Integer types accumulate in
 * 64 bits, wrapping modulo 2^64, and the store keeps the low bits of the
 * output type (two's complement wraparound, as numpy and ONNX Runtime do);
 * an integer Gemm with alpha or beta other than 1 computes in double and
 * truncates toward zero.
 *
 * The shape and type rules of these ops are in src/ops/shape_gemm.c.
 */
#include <string.h>

#include "ref/ref.h"
#include "ref/sgemm.h"

static bool dtype_is_int(ir_dtype dt)
{
    ir_dkind k = ir_dtype_info(dt)->kind;
    return k == IR_DK_SINT || k == IR_DK_UINT;
}

/* Stores the low bits of v into element i of an integer tensor. */
static void store_wrapped(ir_tensor *t, uint64_t i, uint64_t v)
{
    switch (t->dtype) {
    case IR_DT_INT32: ((int32_t *)t->data)[i] = (int32_t)(uint32_t)v; break;
    case IR_DT_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
    case IR_DT_INT64: ((int64_t *)t->data)[i] = (int64_t)v; break;
    case IR_DT_UINT64: ((uint64_t *)t->data)[i] = v; break;
    default: ops_set_i64(t, i, (int64_t)v); break;
    }
}

/* ---- Gemm ---------------------------------------------------------------- */

/* Index of C's element broadcast to (i, j) of an M x N result. */
static inline uint64_t gemm_c_index(const ir_tensor *c, int64_t i, int64_t j)
{
    int64_t r = c->rank, d0 = r == 2 ? c->dims[0] : 1;
    int64_t d1 = r >= 1 ? c->dims[r - 1] : 1;
    return (uint64_t)((d0 == 1 ? 0 : i) * d1 + (d1 == 1 ? 0 : j));
}

oct_status ref_gemm(ref_call *call)
{
    const ir_tensor *A = call->in[0], *B = call->in[1];
    const ir_tensor *C = call->n_in > 2 ? call->in[2] : NULL;
    ir_tensor *Y = call->out[0];
    bool ta = ir_attr_int(call->node, "transA", 0) != 0;
    bool tb = ir_attr_int(call->node, "transB", 0) != 0;
    double alpha = ir_attr_float(call->node, "alpha", 1.0f);
    double beta = ir_attr_float(call->node, "beta", 1.0f);
    int64_t m = Y->dims[0], n = Y->dims[1];
    int64_t k = A->dims[ta ? 0 : 1];
    /* element (i, p) of A' is at i*ars + p*acs; (p, j) of B' at p*brs + j*bcs */
    int64_t ars = ta ? 1 : k, acs = ta ? m : 1;
    int64_t brs = tb ? 1 : n, bcs = tb ? k : 1;
    if (m == 0 || n == 0)
        return OCT_OK;

    if (Y->dtype == IR_DT_FLOAT) {
        float *y = Y->data;
        ref_fmat Am = {A->data, ars, acs}, Bm = {B->data, brs, bcs};
        oct_status st = ref_sgemm(call->ctx, m, n, k, Am, Bm, y, n, false, NULL);
        if (st != OCT_OK)
            return st;
        float fa = (float)alpha, fb = (float)beta;
        const float *cd = C ? C->data : NULL;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                float v = y[i * n + j];
                if (fa != 1.0f)
                    v *= fa;
                if (cd && fb != 0.0f)
                    v += fb * cd[gemm_c_index(C, i, j)];
                y[i * n + j] = v;
            }
        return OCT_OK;
    }
    bool exact_int = dtype_is_int(Y->dtype) && alpha == 1.0 && beta == 1.0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            uint64_t yi = (uint64_t)(i * n + j);
            if (exact_int) {
                uint64_t acc = 0;
                for (int64_t p = 0; p < k; p++)
                    acc += (uint64_t)ops_get_i64(A, (uint64_t)(i * ars + p * acs)) *
                           (uint64_t)ops_get_i64(B, (uint64_t)(p * brs + j * bcs));
                if (C)
                    acc += (uint64_t)ops_get_i64(C, gemm_c_index(C, i, j));
                store_wrapped(Y, yi, acc);
                continue;
            }
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++)
                acc += ops_get(A, (uint64_t)(i * ars + p * acs)) *
                       ops_get(B, (uint64_t)(p * brs + j * bcs));
            acc *= alpha;
            if (C && beta != 0.0)
                acc += beta * ops_get(C, gemm_c_index(C, i, j));
            if (dtype_is_int(Y->dtype))
                store_wrapped(Y, yi, (uint64_t)(int64_t)acc);
            else
                ops_set(Y, yi, acc);
        }
    return OCT_OK;
}

/* ---- MatMul -------------------------------------------------------------- */

oct_status ref_matmul(ref_call *call)
{
    /* mnb_unpack's MatMul of a level-4 MatMulNBits is the compiler's form:
     * its int8 arithmetic reads the 4-bit codes, which a float B no longer
     * holds; computing it in float would not be the node's result */
    if (call->node->act_int8)
        return oct_node_error(call->ctx, OCT_EUNSUPPORTED, call->node,
                              "MatMul marked int8=%s (mnb_unpack's form of a MatMulNBits with "
                              "accuracy_level 4) is for the compiler; the interpreter runs the "
                              "MatMulNBits itself (leave mnb_unpack out of --passes)",
                              call->node->act_int8 == IR_INT8_ROWS ? "rows" : "blocks");
    const ir_tensor *A = call->in[0], *B = call->in[1];
    ir_tensor *Y = call->out[0];
    int ra = A->rank, rb = B->rank;
    int64_t m = ra > 1 ? A->dims[ra - 2] : 1, k = A->dims[ra - 1];
    int64_t n = rb > 1 ? B->dims[rb - 1] : 1;
    int abat = ra > 2 ? ra - 2 : 0, bbat = rb > 2 ? rb - 2 : 0;
    int nbat = abat > bbat ? abat : bbat;
    /* batch dims of the result and element strides of A and B per batch dim
     * (0 where broadcast) */
    int64_t bd[OPS_MAX_RANK], sa[OPS_MAX_RANK], sb[OPS_MAX_RANK];
    int64_t stride_a = m * k, stride_b = k * n, batches = 1;
    for (int i = nbat - 1; i >= 0; i--) {
        int ia = abat - nbat + i, ib = bbat - nbat + i;
        int64_t x = ia >= 0 ? A->dims[ia] : 1, z = ib >= 0 ? B->dims[ib] : 1;
        bd[i] = x > z ? x : z;
        sa[i] = x == 1 ? 0 : stride_a;
        sb[i] = z == 1 ? 0 : stride_b;
        stride_a *= x;
        stride_b *= z;
        batches *= bd[i];
    }
    if (Y->nelems == 0)
        return OCT_OK;
    if (k == 0) {
        memset(Y->data, 0, (size_t)Y->nbytes);
        return OCT_OK;
    }
    /* B shared by every batch and A contiguous: one (batches*m) x n product. */
    if (Y->dtype == IR_DT_FLOAT && bbat == 0) {
        ref_fmat Am = {A->data, k, 1}, Bm = {B->data, n, 1};
        return ref_sgemm(call->ctx, batches * m, n, k, Am, Bm, Y->data, n,
                         false, NULL);
    }
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t oa = 0, ob = 0, t = bi;
        for (int i = nbat - 1; i >= 0; i--) {
            int64_t idx = t % bd[i];
            t /= bd[i];
            oa += idx * sa[i];
            ob += idx * sb[i];
        }
        int64_t oy = bi * m * n;
        if (Y->dtype == IR_DT_FLOAT) {
            ref_fmat Am = {(const float *)A->data + oa, k, 1};
            ref_fmat Bm = {(const float *)B->data + ob, n, 1};
            oct_status st = ref_sgemm(call->ctx, m, n, k, Am, Bm,
                                      (float *)Y->data + oy, n, false, NULL);
            if (st != OCT_OK)
                return st;
            continue;
        }
        bool is_int = dtype_is_int(Y->dtype);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                uint64_t yi = (uint64_t)(oy + i * n + j);
                if (is_int) {
                    uint64_t acc = 0;
                    for (int64_t p = 0; p < k; p++)
                        acc += (uint64_t)ops_get_i64(A, (uint64_t)(oa + i * k + p)) *
                               (uint64_t)ops_get_i64(B, (uint64_t)(ob + p * n + j));
                    store_wrapped(Y, yi, acc);
                } else {
                    double acc = 0.0;
                    for (int64_t p = 0; p < k; p++)
                        acc += ops_get(A, (uint64_t)(oa + i * k + p)) *
                               ops_get(B, (uint64_t)(ob + p * n + j));
                    ops_set(Y, yi, acc);
                }
            }
    }
    return OCT_OK;
}
