/*
 * gemm.c: Gemm and MatMul shape rules and kernels.
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
 */
#include <string.h>

#include "ref.h"
#include "sgemm.h"

static bool gemm_dtype_ok(ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT: case IR_DT_DOUBLE: case IR_DT_FLOAT16:
    case IR_DT_BFLOAT16: case IR_DT_INT32: case IR_DT_INT64:
    case IR_DT_UINT32: case IR_DT_UINT64:
        return true;
    default:
        return false;
    }
}

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
    default: ref_set_i64(t, i, (int64_t)v); break;
    }
}

/* ---- Gemm ---------------------------------------------------------------- */

oct_status shape_gemm(ref_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ref_shape *a = &inf->in[0], *b = &inf->in[1];
    const ref_shape *c =
        inf->n_in > 2 && node->n_in > 2 && node->in[2] ? &inf->in[2] : NULL;
    ref_shape *y = &inf->out[0];
    ir_dtype dt = a->dtype != IR_DT_UNDEFINED ? a->dtype : b->dtype;
    if (dt != IR_DT_UNDEFINED && !gemm_dtype_ok(dt))
        return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 0,
                               "Gemm does not take %s", ir_dtype_name(dt));
    for (int i = 1; i < 3; i++) {
        const ref_shape *s = i == 1 ? b : c;
        if (s && s->dtype != IR_DT_UNDEFINED && dt != IR_DT_UNDEFINED &&
            s->dtype != dt)
            return oct_input_error(ctx, OCT_EINPUT, node, i,
                                   "type %s differs from input A's %s",
                                   ir_dtype_name(s->dtype), ir_dtype_name(dt));
    }
    if (!c && inf->opset < 11)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "input C is required before opset 11");
    if (a->rank >= 0 && a->rank != 2)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "A must be 2-D, got rank %d", a->rank);
    if (b->rank >= 0 && b->rank != 2)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "B must be 2-D, got rank %d", b->rank);
    bool ta = ir_attr_int(node, "transA", 0) != 0;
    bool tb = ir_attr_int(node, "transB", 0) != 0;
    int64_t m = a->rank == 2 ? a->dims[ta ? 1 : 0] : -1;
    int64_t ka = a->rank == 2 ? a->dims[ta ? 0 : 1] : -1;
    int64_t kb = b->rank == 2 ? b->dims[tb ? 1 : 0] : -1;
    int64_t n = b->rank == 2 ? b->dims[tb ? 0 : 1] : -1;
    if (ka >= 0 && kb >= 0 && ka != kb)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "inner dimensions differ: A' is %lld x %lld, "
                               "B' is %lld x %lld", (long long)m, (long long)ka,
                               (long long)kb, (long long)n);
    if (c && c->rank >= 0) {
        bool exact = inf->opset < 7 && ir_attr_int(node, "broadcast", 0) == 0;
        int64_t want[2] = {m, n};
        if (c->rank > 2 || (exact && c->rank != 2))
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "C of rank %d does not broadcast to "
                                   "(M, N)", c->rank);
        for (int i = 0; i < c->rank; i++) {
            int64_t d = c->dims[i], w = want[2 - c->rank + i];
            if (d >= 0 && w >= 0 && d != w && (d != 1 || exact))
                return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                       "C dim %d is %lld, cannot broadcast "
                                       "to %lld", i, (long long)d, (long long)w);
        }
    }
    y->dtype = dt;
    y->rank = 2;
    y->dims[0] = m;
    y->dims[1] = n;
    return OCT_OK;
}

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
                    acc += (uint64_t)ref_get_i64(A, (uint64_t)(i * ars + p * acs)) *
                           (uint64_t)ref_get_i64(B, (uint64_t)(p * brs + j * bcs));
                if (C)
                    acc += (uint64_t)ref_get_i64(C, gemm_c_index(C, i, j));
                store_wrapped(Y, yi, acc);
                continue;
            }
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++)
                acc += ref_get(A, (uint64_t)(i * ars + p * acs)) *
                       ref_get(B, (uint64_t)(p * brs + j * bcs));
            acc *= alpha;
            if (C && beta != 0.0)
                acc += beta * ref_get(C, gemm_c_index(C, i, j));
            if (dtype_is_int(Y->dtype))
                store_wrapped(Y, yi, (uint64_t)(int64_t)acc);
            else
                ref_set(Y, yi, acc);
        }
    return OCT_OK;
}

/* ---- MatMul -------------------------------------------------------------- */

oct_status shape_matmul(ref_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ref_shape *a = &inf->in[0], *b = &inf->in[1];
    ref_shape *y = &inf->out[0];
    ir_dtype dt = a->dtype != IR_DT_UNDEFINED ? a->dtype : b->dtype;
    if (dt != IR_DT_UNDEFINED && !gemm_dtype_ok(dt))
        return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 0,
                               "MatMul does not take %s", ir_dtype_name(dt));
    if (a->dtype != IR_DT_UNDEFINED && b->dtype != IR_DT_UNDEFINED &&
        a->dtype != b->dtype)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "type %s differs from input A's %s",
                               ir_dtype_name(b->dtype), ir_dtype_name(a->dtype));
    y->dtype = dt;
    if (a->rank == 0 || b->rank == 0)
        return oct_input_error(ctx, OCT_EINPUT, node, a->rank == 0 ? 0 : 1,
                               "MatMul operands must have rank >= 1");
    if (a->rank < 0 || b->rank < 0) {
        y->rank = -1;
        return OCT_OK;
    }
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "inner dimensions differ: A has %lld columns, "
                               "B has %lld rows", (long long)ka, (long long)kb);
    int abat = a->rank > 2 ? a->rank - 2 : 0, bbat = b->rank > 2 ? b->rank - 2 : 0;
    int nbat = abat > bbat ? abat : bbat;
    int rank = nbat + (a->rank > 1) + (b->rank > 1);
    if (rank > REF_MAX_RANK)
        return oct_node_error(ctx, OCT_EUNSUPPORTED, node, "result rank too high");
    for (int i = 0; i < nbat; i++) {
        int ia = abat - nbat + i, ib = bbat - nbat + i;
        int64_t x = ia >= 0 ? a->dims[ia] : 1, z = ib >= 0 ? b->dims[ib] : 1;
        int64_t d;
        if (x == z || z == 1)
            d = x;
        else if (x == 1)
            d = z;
        else if (x < 0)
            d = z;
        else if (z < 0)
            d = x;
        else
            return oct_input_error(ctx, OCT_EINPUT, node, 1,
                                   "batch dims do not broadcast: %lld vs %lld",
                                   (long long)x, (long long)z);
        y->dims[i] = d;
    }
    int r = nbat;
    if (a->rank > 1)
        y->dims[r++] = a->dims[a->rank - 2];
    if (b->rank > 1)
        y->dims[r++] = b->dims[b->rank - 1];
    y->rank = rank;
    return OCT_OK;
}

oct_status ref_matmul(ref_call *call)
{
    const ir_tensor *A = call->in[0], *B = call->in[1];
    ir_tensor *Y = call->out[0];
    int ra = A->rank, rb = B->rank;
    int64_t m = ra > 1 ? A->dims[ra - 2] : 1, k = A->dims[ra - 1];
    int64_t n = rb > 1 ? B->dims[rb - 1] : 1;
    int abat = ra > 2 ? ra - 2 : 0, bbat = rb > 2 ? rb - 2 : 0;
    int nbat = abat > bbat ? abat : bbat;
    /* batch dims of the result and element strides of A and B per batch dim
     * (0 where broadcast) */
    int64_t bd[REF_MAX_RANK], sa[REF_MAX_RANK], sb[REF_MAX_RANK];
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
                        acc += (uint64_t)ref_get_i64(A, (uint64_t)(oa + i * k + p)) *
                               (uint64_t)ref_get_i64(B, (uint64_t)(ob + p * n + j));
                    store_wrapped(Y, yi, acc);
                } else {
                    double acc = 0.0;
                    for (int64_t p = 0; p < k; p++)
                        acc += ref_get(A, (uint64_t)(oa + i * k + p)) *
                               ref_get(B, (uint64_t)(ob + p * n + j));
                    ref_set(Y, yi, acc);
                }
            }
    }
    return OCT_OK;
}
