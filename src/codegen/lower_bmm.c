/*
 * lower_bmm.c: float32 MatMul whose right operand is not a constant 2-D
 * matrix (attention's Q.K^T and P.V, [B,S,D] x [D,N] with a run-time B,
 * any batch broadcasting) on the kernel library's GEMM (octk_sgemm with
 * an unpacked, run-time b: ldb > 0).  Operands as numpy's matmul: a 1-D
 * a is one row [1,K], a 1-D b one column [K,1]; the leading dims
 * broadcast.  When b has no batch dims, every row of a (all batches) goes
 * through one kernel call (M = rows of a); otherwise one kernel call per
 * output batch matrix, inside loops over the output batch dims, with the
 * operands' batch offsets (0 along a broadcast dim).  Constant 2-D
 * weights stay with lower_kfloat.c (packed at compile time); targets
 * without the kernel library use the loops of lower_gemm.c.  Float
 * numerics as the kernel's: FMA and reordered sums, within the tolerance.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"

bool cg_try_sbatched(cg_fn *f, const ir_node *n, oct_status *st)
{
    cg_tensor *A = cg_in(f, n, 0), *B = cg_in(f, n, 1), *Y = cg_out(f, n, 0);
    if (!cg_kernels_available(f) || !A || !B || !Y || A->dtype != IR_DT_FLOAT ||
        B->dtype != IR_DT_FLOAT || Y->dtype != IR_DT_FLOAT || A->rank < 1 || B->rank < 1 ||
        A->rank > OPS_MAX_RANK || B->rank > OPS_MAX_RANK)
        return false;
    int64_t M = A->rank >= 2 ? A->dims[A->rank - 2] : 1, K = A->dims[A->rank - 1];
    int64_t N = B->rank >= 2 ? B->dims[B->rank - 1] : 1;
    if ((B->rank >= 2 ? B->dims[B->rank - 2] : B->dims[0]) != K)
        return false; /* the loops report it */
    int ra = A->rank > 2 ? A->rank - 2 : 0, rb = B->rank > 2 ? B->rank - 2 : 0;
    int nb = ra > rb ? ra : rb;
    int64_t ob[OPS_MAX_RANK], str[3][OPS_MAX_RANK];
    for (int d = 0; d < nb; d++) {
        int64_t ad = d - (nb - ra) >= 0 ? A->dims[d - (nb - ra)] : 1;
        int64_t bd = d - (nb - rb) >= 0 ? B->dims[d - (nb - rb)] : 1;
        if (ad != bd && ad != 1 && bd != 1)
            return false;
        ob[d] = ad == 1 ? bd : ad;
    }
    if (Y->nelems == 0 || K == 0)
        return false;
    octk_sgemm a;
    memset(&a, 0, sizeof a);
    a.M = rb == 0 ? (int64_t)(A->nelems / (uint64_t)(K ? K : 1)) : M;
    a.N = N;
    a.K = K;
    a.lda = K;
    a.ldy = N;
    a.ldb = N;
    a.y_lo = -INFINITY;
    a.y_hi = INFINITY;
    if (rb == 0) /* every row of a against one b */
        nb = 0;
    cg_bcast_strides(ra, A->dims, nb, str[0]);
    cg_bcast_strides(rb, B->dims, nb, str[1]);
    cg_strides(nb, ob, str[2]);
    for (int d = 0; d < nb; d++) {
        str[0][d] *= M * K;
        str[1][d] *= K * N;
        str[2][d] *= M * N;
    }
    LLVMValueRef pa = cg_ptr(f, A), pb = cg_ptr(f, B), py = cg_ptr(f, Y);
    LLVMValueRef work = cg_workspace(f, octk_sgemm_work_size(&a)), null = LLVMConstPointerNull(f->ptr);
    LLVMValueRef offs[3];
    cg_nest ns;
    cg_nest_begin(f, &ns, nb, ob, 3, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    cg_kptr ptrs[5] = {
        {offsetof(octk_sgemm, a), cg_gep(f, f->f32, pa, offs[0])},
        {offsetof(octk_sgemm, y), cg_gep(f, f->f32, py, offs[2])},
        {offsetof(octk_sgemm, b), cg_gep(f, f->f32, pb, offs[1])},
        {offsetof(octk_sgemm, bias), null},
        {offsetof(octk_sgemm, work), work}};
    cg_kernel_call(f, "sgemm", &a, sizeof a, ptrs, 5);
    cg_nest_end(f, &ns);
    cg_report(f, n, "octk_sgemm", nb ? "f32 FMA, run-time B, one call per batch matrix"
                                     : "f32 FMA, run-time B");
    *st = OCT_OK;
    return true;
}
