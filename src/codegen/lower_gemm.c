/*
 * lower_gemm.c: float32 Gemm and MatMul (2-D, 1-D operands, batched with
 * broadcast batch dims) when the kernel library cannot take them
 * (lower_kfloat.c: constant weights go there).  The core is Y[M,N] = A[M,K] . B[K,N] with
 * arbitrary element strides: when B is contiguous along N it is emitted
 * as rows of axpy (Y[m,:] += A[m,k] * B[k,:], vectorized over N), else as
 * dot products over K (a reassociated reduction).  Sums use FMA and
 * reordering (reassoc+contract), so results match the reference within
 * the float tolerance, not bit for bit.  Gemm's epilogue is
 * Y = alpha * AB + beta * C with C broadcast to [M,N].
 */
#include "codegen/codegen.h"

typedef struct mm_operand {
    LLVMValueRef base;  /* element pointer */
    LLVMValueRef off;   /* i64 element offset of [0,0] */
    int64_t s0, s1;     /* strides of the two dims */
} mm_operand;

static LLVMValueRef at2(cg_fn *f, const mm_operand *o, LLVMValueRef i, LLVMValueRef j)
{
    LLVMValueRef idx = o->off;
    if (o->s0)
        idx = cg_madd(f, i, o->s0, idx);
    if (o->s1)
        idx = cg_madd(f, j, o->s1, idx);
    return idx;
}

/* y = a . b for M x K times K x N; y's strides are (N, 1) style in y. */
static void emit_mm(cg_fn *f, const mm_operand *a, const mm_operand *b, const mm_operand *y,
                    int64_t M, int64_t N, int64_t K)
{
    LLVMValueRef zero = cg_f32c(f, 0);
    cg_loop lm, ln, lk;
    LLVMValueRef m = cg_loop_begin(f, &lm, M);
    if (b->s1 == 1 && K > 0) {
        LLVMValueRef n = cg_loop_begin(f, &ln, N);
        cg_store(f, f->f32, y->base, at2(f, y, m, n), zero);
        cg_loop_end(f, &ln);
        LLVMValueRef k = cg_loop_begin(f, &lk, K);
        LLVMValueRef av = cg_load(f, f->f32, a->base, at2(f, a, m, k));
        n = cg_loop_begin(f, &ln, N);
        LLVMValueRef yi = at2(f, y, m, n);
        LLVMValueRef prod = cg_fast(LLVMBuildFMul(f->b, av, cg_load(f, f->f32, b->base, at2(f, b, k, n)), ""));
        cg_store(f, f->f32, y->base, yi,
                 cg_fast(LLVMBuildFAdd(f->b, cg_load(f, f->f32, y->base, yi), prod, "")));
        cg_loop_end(f, &ln);
        cg_loop_end(f, &lk);
    } else {
        LLVMValueRef n = cg_loop_begin(f, &ln, N);
        LLVMValueRef k = cg_loop_begin(f, &lk, K);
        cg_acc acc;
        LLVMValueRef s = cg_acc_begin(f, &lk, &acc, zero);
        LLVMValueRef prod = cg_fast(LLVMBuildFMul(f->b, cg_load(f, f->f32, a->base, at2(f, a, m, k)),
                                                  cg_load(f, f->f32, b->base, at2(f, b, k, n)), ""));
        cg_acc_end(f, &acc, cg_fast(LLVMBuildFAdd(f->b, s, prod, "")));
        cg_loop_end(f, &lk);
        cg_store(f, f->f32, y->base, at2(f, y, m, n), cg_acc_result(f, &lk, &acc, zero));
        cg_loop_end(f, &ln);
    }
    cg_loop_end(f, &lm);
}

oct_status cg_lower_gemm(cg_fn *f, const ir_node *n)
{
    cg_tensor *A = cg_in(f, n, 0), *B = cg_in(f, n, 1), *C = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    oct_status st;
    if (cg_try_sgemm(f, n, &st))
        return st;
    if ((st = cg_need_f32(f, n, A, 0, 0)) || (st = cg_need_f32(f, n, B, 0, 1)) ||
        (st = cg_need_f32(f, n, C, 0, 2)) || (st = cg_need_f32(f, n, Y, 1, 0)))
        return st;
    if (A->rank != 2 || B->rank != 2 || Y->rank != 2)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: Gemm needs 2-D A and B");
    bool ta = ir_attr_int(n, "transA", 0), tb = ir_attr_int(n, "transB", 0);
    int64_t M = Y->dims[0], N = Y->dims[1], K = ta ? A->dims[0] : A->dims[1];
    mm_operand a = {cg_ptr(f, A), cg_i64c(f, 0), ta ? 1 : K, ta ? M : 1};
    mm_operand b = {cg_ptr(f, B), cg_i64c(f, 0), tb ? 1 : N, tb ? K : 1};
    mm_operand y = {cg_ptr(f, Y), cg_i64c(f, 0), N, 1};
    emit_mm(f, &a, &b, &y, M, N, K);
    float alpha = ir_attr_float(n, "alpha", 1.0f), beta = ir_attr_float(n, "beta", 1.0f);
    if (alpha == 1.0f && (!C || beta == 0.0f))
        return OCT_OK;
    int64_t cs[OPS_MAX_RANK] = {0, 0};
    if (C)
        cg_bcast_strides(C->rank, C->dims, 2, cs);
    LLVMValueRef pc = C ? cg_ptr(f, C) : NULL;
    cg_loop lm, ln;
    LLVMValueRef m = cg_loop_begin(f, &lm, M);
    LLVMValueRef j = cg_loop_begin(f, &ln, N);
    LLVMValueRef yi = cg_madd(f, m, N, j);
    LLVMValueRef v = LLVMBuildFMul(f->b, cg_f32c(f, alpha), cg_load(f, f->f32, y.base, yi), "");
    if (C && beta != 0.0f) {
        LLVMValueRef ci = cg_add(f, cg_mul(f, m, cg_i64c(f, cs[0])), cg_mul(f, j, cg_i64c(f, cs[1])));
        LLVMValueRef c = LLVMBuildFMul(f->b, cg_f32c(f, beta), cg_load(f, f->f32, pc, ci), "");
        v = LLVMBuildFAdd(f->b, v, c, "");
    }
    cg_store(f, f->f32, y.base, yi, v);
    cg_loop_end(f, &ln);
    cg_loop_end(f, &lm);
    return OCT_OK;
}

oct_status cg_lower_matmul(cg_fn *f, const ir_node *n)
{
    cg_tensor *A = cg_in(f, n, 0), *B = cg_in(f, n, 1), *Y = cg_out(f, n, 0);
    oct_status st;
    if (cg_try_wogemm(f, n, &st) || cg_try_wofmt(f, n, &st) || cg_try_smatmul(f, n, &st) ||
        cg_try_sbatched(f, n, &st))
        return st;
    if ((st = cg_need_f32(f, n, A, 0, 0)) || (st = cg_need_f32(f, n, B, 0, 1)) ||
        (st = cg_need_f32(f, n, Y, 1, 0)))
        return st;
    /* 1-D operands: A [K] -> [1,K], B [K] -> [K,1] */
    int64_t ad[OPS_MAX_RANK + 1], bd[OPS_MAX_RANK + 1];
    int ar = A->rank, br = B->rank;
    if (ar < 1 || br < 1)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: MatMul of a scalar");
    if (ar == 1) {
        ad[0] = 1;
        ad[1] = A->dims[0];
        ar = 2;
    } else {
        for (int d = 0; d < ar; d++)
            ad[d] = A->dims[d];
    }
    if (br == 1) {
        bd[0] = B->dims[0];
        bd[1] = 1;
        br = 2;
    } else {
        for (int d = 0; d < br; d++)
            bd[d] = B->dims[d];
    }
    int64_t M = ad[ar - 2], K = ad[ar - 1], N = bd[br - 1];
    int nb = (ar > br ? ar : br) - 2;
    int64_t bdims[OPS_MAX_RANK], sbat[3][OPS_MAX_RANK];
    for (int d = 0; d < nb; d++) {
        int da = d - (nb - (ar - 2)), db = d - (nb - (br - 2));
        int64_t x = da >= 0 ? ad[da] : 1, z = db >= 0 ? bd[db] : 1;
        bdims[d] = x > z ? x : z;
    }
    cg_bcast_strides(ar - 2, ad, nb, sbat[0]);
    cg_bcast_strides(br - 2, bd, nb, sbat[1]);
    cg_strides(nb, bdims, sbat[2]);
    for (int d = 0; d < nb; d++) {
        sbat[0][d] *= M * K;
        sbat[1][d] *= K * N;
        sbat[2][d] *= M * N;
    }
    LLVMValueRef offs[3] = {cg_i64c(f, 0), cg_i64c(f, 0), cg_i64c(f, 0)};
    cg_nest ns;
    LLVMValueRef pa = cg_ptr(f, A), pb = cg_ptr(f, B), py = cg_ptr(f, Y);
    cg_nest_begin(f, &ns, nb, bdims, 3, (const int64_t(*)[OPS_MAX_RANK])sbat, offs);
    mm_operand a = {pa, offs[0], K, 1}, b = {pb, offs[1], N, 1}, y = {py, offs[2], N, 1};
    emit_mm(f, &a, &b, &y, M, N, K);
    cg_nest_end(f, &ns);
    return OCT_OK;
}
