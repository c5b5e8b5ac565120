/*
 * lower_qint.c: DynamicQuantizeLinear, MatMulInteger, ConvInteger and the
 * run-time forms of QLinearMatMul and QLinearConv, emitted as loops with
 * the reference interpreter's arithmetic, so the bits are equal:
 *
 *   DynamicQuantizeLinear (uint8), every step a float32 operation:
 *     lo = min(0, min(x)), hi = max(0, max(x))   (NaN elements skipped)
 *     scale = (hi == lo ? 1 : hi - lo) / 255
 *     zp = round_half_to_even(clamp(0 - lo / scale, 0, 255))
 *     y = saturate_[0,255](round_half_to_even(x / scale) + zp), NaN -> zp
 *   MatMulInteger / ConvInteger: y = sum((a - za) * (b - zb)) in int32
 *     with two's-complement wrap-around (the same bits as an exact sum
 *     wrapped once, as the reference computes it); products of 8-bit
 *     differences never overflow.
 *
 * Zero points are read at run time (DynamicQuantizeLinear's output is a
 * typical one).  MatMulInteger's may be per tensor, per row of a (1-D of
 * M, or [..., M, 1] broadcast over the batch dims) and per column of b
 * ([N] or [..., 1, N]), as in the reference; ConvInteger's x zero point is
 * per tensor, w's per tensor or per output channel.  MatMulInteger
 * broadcasts batch dims as MatMul does.  With a constant 2-D b whose zero
 * point is constant (per tensor or per column) and a per-tensor zero point
 * of a (constant or not: it is stored into the kernel's arguments at run
 * time), MatMulInteger runs on the integer GEMM kernel (octk_qgemm with
 * its int32 output), every row of a in one call: the same exact sums.
 *
 * QLinearMatMul and QLinearConv whose weights, scales or zero points are
 * run-time tensors (the kernels need them at compile time) run as the
 * same loops into the workspace, then requantize each int32 sum as the
 * reference does: yq = saturate(round_half_to_even((float)acc * M) + zy),
 * M = (sx * sw) / sy formed per element in the scales' type (float32,
 * float16 or bfloat16 for QLinearMatMul; float32 for QLinearConv).
 */
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"
#include "codegen/lower_elem.h"

static bool is_8bit(const cg_tensor *t)
{
    return t && (t->dtype == IR_DT_INT8 || t->dtype == IR_DT_UINT8);
}

static oct_status need_8bit(cg_fn *f, const ir_node *n, const cg_tensor *t, int index)
{
    if (!t || is_8bit(t))
        return OCT_OK;
    return oct_input_error(f->ctx, OCT_EUNSUPPORTED, n, index,
                           "compile: %s of %s (int8 or uint8 only)", n->op_type,
                           ir_dtype_name(t->dtype));
}

/* Zero point z (or 0 when absent) at element idx, widened to i32. */
static LLVMValueRef zero_at(cg_fn *f, const cg_tensor *z, LLVMValueRef idx)
{
    return z ? cg_load_wide(f, z, cg_ptr(f, z), idx) : LLVMConstInt(f->i32, 0, 0);
}

/* ---- DynamicQuantizeLinear -------------------------------------------------- */

static LLVMValueRef fselect(cg_fn *f, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b,
                            LLVMValueRef then, LLVMValueRef other)
{
    return LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, p, a, b, ""), then, other, "");
}

oct_status cg_lower_dynamicquantizelinear(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0), *S = cg_out(f, n, 1), *Z = cg_out(f, n, 2);
    oct_status st;
    if ((st = cg_need_f32(f, n, X, 0, 0)) || (st = cg_need_f32(f, n, S, 1, 1)))
        return st;
    if ((Y && Y->dtype != IR_DT_UINT8) || (Z && Z->dtype != IR_DT_UINT8))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: DynamicQuantizeLinear outputs must be uint8");
    int64_t count = (int64_t)X->nelems;
    LLVMValueRef px = cg_ptr(f, X), zero = cg_f32c(f, 0);
    /* lo, hi: x < lo and x > hi are false for NaN, which is skipped */
    cg_loop l;
    cg_acc alo, ahi;
    LLVMValueRef i = cg_loop_begin(f, &l, count);
    LLVMValueRef lo = cg_acc_begin(f, &l, &alo, zero), hi = cg_acc_begin(f, &l, &ahi, zero);
    LLVMValueRef x = cg_load(f, f->f32, px, i);
    cg_acc_end(f, &alo, fselect(f, LLVMRealOLT, x, lo, x, lo));
    cg_acc_end(f, &ahi, fselect(f, LLVMRealOGT, x, hi, x, hi));
    cg_loop_end(f, &l);
    lo = cg_acc_result(f, &l, &alo, zero);
    hi = cg_acc_result(f, &l, &ahi, zero);
    LLVMValueRef range = fselect(f, LLVMRealOEQ, hi, lo, cg_f32c(f, 1), LLVMBuildFSub(f->b, hi, lo, ""));
    LLVMValueRef scale = LLVMBuildFDiv(f->b, range, cg_f32c(f, 255), "");
    LLVMValueRef zpf = LLVMBuildFSub(f->b, zero, LLVMBuildFDiv(f->b, lo, scale, ""), "");
    zpf = fselect(f, LLVMRealOLT, zpf, zero, zero, zpf);
    zpf = fselect(f, LLVMRealOGT, zpf, cg_f32c(f, 255), cg_f32c(f, 255), zpf);
    zpf = cg_intrinsic(f, "llvm.roundeven", f->f32, &zpf, 1);
    if (S)
        cg_store(f, f->f32, cg_ptr(f, S), cg_i64c(f, 0), scale);
    if (Z)
        cg_store(f, f->i8, cg_ptr(f, Z), cg_i64c(f, 0), LLVMBuildFPToUI(f->b, zpf, f->i8, ""));
    if (!Y)
        return OCT_OK;
    LLVMValueRef py = cg_ptr(f, Y);
    i = cg_loop_begin(f, &l, count);
    cg_store(f, f->i8, py, i, cg_quantize_elem(f, cg_load(f, f->f32, px, i), scale, zpf, 0, 255));
    cg_loop_end(f, &l);
    return OCT_OK;
}

/* ---- MatMulInteger ------------------------------------------------------------ */

/* Where a zero point or scale of a (side 0, per row) or b (side 1, per column) is:
 * element sum(bstride[d] * batch index d) + vstride * row/column. */
typedef struct mi_param {
    int64_t bstride[OPS_MAX_RANK];
    int64_t vstride;
} mi_param;

/* Resolves zero point or scale p for a matmul with nb output batch dims ob and mn
 * rows (side 0) or columns (side 1); reports a bad shape on input idx. */
static oct_status mi_param_init(cg_fn *f, const ir_node *n, int idx, const cg_tensor *p,
                                int side, int nb, const int64_t *ob, int64_t mn, mi_param *out)
{
    memset(out, 0, sizeof *out);
    if (!p || p->nelems == 1)
        return OCT_OK;
    int r = p->rank;
    if (r == 1) {
        if (p->dims[0] != mn)
            return oct_input_error(f->ctx, OCT_EINPUT, n, idx,
                                   "per-%s parameter has %lld elements, expected 1 or %lld",
                                   side ? "column" : "row", (long long)p->dims[0], (long long)mn);
        out->vstride = 1;
        return OCT_OK;
    }
    int64_t one = r >= 2 ? p->dims[r - 1 - side] : 0, v = r >= 2 ? p->dims[r - 2 + side] : 0;
    if (r < 2 || one != 1 || (v != 1 && v != mn) || r - 2 > nb)
        return oct_input_error(f->ctx, OCT_EINPUT, n, idx,
                               "parameter shape (rank %d) is neither per tensor nor per %s",
                               r, side ? "column ([..., 1, N])" : "row ([..., M, 1])");
    out->vstride = v == 1 ? 0 : 1;
    int64_t stride = v;
    for (int d = r - 3; d >= 0; d--) {
        int od = nb - (r - 2) + d;
        if (p->dims[d] != 1 && p->dims[d] != ob[od])
            return oct_input_error(f->ctx, OCT_EINPUT, n, idx,
                                   "parameter batch dim %d is %lld, the output's %lld", d,
                                   (long long)p->dims[d], (long long)ob[od]);
        out->bstride[od] = p->dims[d] == 1 ? 0 : stride;
        stride *= p->dims[d];
    }
    return OCT_OK;
}

/* MatMulInteger on octk_qgemm when it fits (see the top); false to use
 * the loops.  K = rows of b, N = its columns. */
static bool matmulinteger_kernel(cg_fn *f, const ir_node *n, const cg_tensor *A,
                                 const cg_tensor *B, const cg_tensor *ZA, const cg_tensor *ZB,
                                 const cg_tensor *Y, oct_status *st)
{
    const ir_tensor *b = B->value ? B->value->init : NULL;
    const ir_tensor *zb = ZB && ZB->value ? ZB->value->init : NULL;
    if (!cg_kernels_available(f) || !b || b->rank != 2 || b->dims[0] == 0 || (ZB && !zb) ||
        (ZA && ZA->nelems != 1))
        return false; /* K = 0 too: the rows of y come from the rows of a */
    int64_t K = b->dims[0], N = b->dims[1];
    if (zb && zb->nelems != 1 &&
        !((int64_t)zb->nelems == N && zb->dims[zb->rank - 1] == N && zb->rank <= 2))
        return false;
    int32_t *w_zero = ir_alloc_array(f->ctx, (size_t)(N ? N : 1), sizeof *w_zero);
    size_t psize = octk_qgemm_packed_b_size(K, N);
    void *packed = ir_alloc_array(f->ctx, 1, psize);
    if (!w_zero || !packed) {
        *st = OCT_EINTERNAL;
        return true;
    }
    for (int64_t j = 0; j < N; j++) {
        uint64_t i = zb && zb->nelems != 1 ? (uint64_t)j : 0;
        w_zero[j] = !zb ? 0 : zb->dtype == IR_DT_INT8 ? ((const int8_t *)zb->data)[i]
                                                      : ((const uint8_t *)zb->data)[i];
    }
    octk_qgemm_pack_b(packed, b->data, b->dtype == IR_DT_INT8, w_zero, K, N, N, 1,
                      cg_kernels_isa(f));
    octk_qgemm a;
    memset(&a, 0, sizeof a);
    a.y_float = OCTK_QGEMM_Y_INT32;
    a.M = (int64_t)(A->nelems / (uint64_t)(K ? K : 1));
    a.N = N;
    a.K = K;
    a.lda = K;
    a.ldy = N;
    a.a_signed = A->dtype == IR_DT_INT8;
    LLVMValueRef null = LLVMConstPointerNull(f->ptr);
    /* a's zero point is a run-time value: stored into the int32 field */
    cg_kptr ptrs[8] = {
        {offsetof(octk_qgemm, a), cg_ptr(f, A)},
        {offsetof(octk_qgemm, y), cg_ptr(f, Y)},
        {offsetof(octk_qgemm, b), cg_weight_data(f, packed, psize, NULL)},
        {offsetof(octk_qgemm, bias), null},
        {offsetof(octk_qgemm, mult), null},
        {offsetof(octk_qgemm, work), cg_workspace(f, octk_qgemm_work_size(&a))},
        {offsetof(octk_qgemm, fbias), null},
        {offsetof(octk_qgemm, a_zero), zero_at(f, ZA, cg_i64c(f, 0))}};
    cg_kernel_call(f, "qgemm", &a, sizeof a, ptrs, 8);
    cg_report(f, n, "octk_qgemm",
              octk_qpacked_path(packed) != OCTK_PATH_U8S8 ? "s16 (exact), int32 output"
              : cg_kernels_isa(f) & OCTK_ISA_VNNI ? "u8s8 vpdpbusd (VNNI, exact), int32 output"
                                                  : "u8s8 vpmaddubsw (no pair can saturate: "
                                                    "checked), int32 output");
    *st = OCT_OK;
    return true;
}

/* Geometry of an integer matmul a [..., M, K] x b [..., K, N] whose batch
 * dims broadcast as MatMul's (nb output batch dims ob). */
typedef struct mi_geom {
    int64_t M, K, N;
    int ra, rb, nb;
    int64_t ob[OPS_MAX_RANK];
} mi_geom;

static oct_status mi_geom_init(cg_fn *f, const ir_node *n, const cg_tensor *A, const cg_tensor *B,
                               int b_idx, mi_geom *g)
{
    memset(g, 0, sizeof *g);
    if (A->rank < 1 || B->rank < 1)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: %s needs operands of rank >= 1",
                              n->op_type);
    g->M = A->rank >= 2 ? A->dims[A->rank - 2] : 1;
    g->K = A->dims[A->rank - 1];
    g->N = B->rank >= 2 ? B->dims[B->rank - 1] : 1;
    int64_t Kb = B->rank >= 2 ? B->dims[B->rank - 2] : B->dims[0];
    if (g->K != Kb)
        return oct_input_error(f->ctx, OCT_EINPUT, n, b_idx, "inner dimensions differ: %lld vs "
                               "%lld", (long long)g->K, (long long)Kb);
    g->ra = A->rank > 2 ? A->rank - 2 : 0;
    g->rb = B->rank > 2 ? B->rank - 2 : 0;
    g->nb = g->ra > g->rb ? g->ra : g->rb;
    for (int d = 0; d < g->nb; d++) {
        int64_t ad = d - (g->nb - g->ra) >= 0 ? A->dims[d - (g->nb - g->ra)] : 1;
        int64_t bd = d - (g->nb - g->rb) >= 0 ? B->dims[d - (g->nb - g->rb)] : 1;
        if (ad != bd && ad != 1 && bd != 1)
            return oct_input_error(f->ctx, OCT_EINPUT, n, b_idx, "batch dims do not broadcast");
        g->ob[d] = ad == 1 ? bd : ad;
    }
    return OCT_OK;
}

/* y = sum_k (a - za) * (b - zb) in int32 with wrap-around, into the int32
 * tensor at pY of y's shape [ob..., M, N]: axpy rows, y[m, :] +=
 * (a[m, k] - za[m]) * (b[k, :] - zb[:]). */
static void emit_int_matmul(cg_fn *f, const mi_geom *g, const cg_tensor *A, const cg_tensor *B,
                            const cg_tensor *ZA, const cg_tensor *ZB, const mi_param *pa,
                            const mi_param *pb, LLVMValueRef pY)
{
    int64_t M = g->M, K = g->K, N = g->N, str[5][OPS_MAX_RANK];
    cg_bcast_strides(g->ra, A->dims, g->nb, str[0]);
    cg_bcast_strides(g->rb, B->dims, g->nb, str[1]);
    cg_strides(g->nb, g->ob, str[2]);
    for (int d = 0; d < g->nb; d++) {
        str[0][d] *= M * K;
        str[1][d] *= K * N;
        str[2][d] *= M * N;
        str[3][d] = pa->bstride[d];
        str[4][d] = pb->bstride[d];
    }
    LLVMValueRef pA = cg_ptr(f, A), pB = cg_ptr(f, B);
    LLVMValueRef offs[5], zero = LLVMConstInt(f->i32, 0, 0);
    cg_nest ns;
    cg_nest_begin(f, &ns, g->nb, g->ob, 5, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    cg_loop lm, lk, ln;
    LLVMValueRef m = cg_loop_begin(f, &lm, M);
    LLVMValueRef za = zero_at(f, ZA, cg_madd(f, m, pa->vstride, offs[3]));
    LLVMValueRef yrow = cg_add(f, offs[2], cg_mul(f, m, cg_i64c(f, N)));
    LLVMValueRef j = cg_loop_begin(f, &ln, N);
    cg_store(f, f->i32, pY, cg_add(f, yrow, j), zero);
    cg_loop_end(f, &ln);
    LLVMValueRef k = cg_loop_begin(f, &lk, K);
    LLVMValueRef av = LLVMBuildSub(f->b, cg_load_wide(f, A, pA, cg_add(f, offs[0], cg_madd(f, m, K, k))),
                                   za, "");
    LLVMValueRef brow = cg_add(f, offs[1], cg_mul(f, k, cg_i64c(f, N)));
    j = cg_loop_begin(f, &ln, N);
    LLVMValueRef zb = zero_at(f, ZB, cg_madd(f, j, pb->vstride, offs[4]));
    LLVMValueRef bv = LLVMBuildSub(f->b, cg_load_wide(f, B, pB, cg_add(f, brow, j)), zb, "");
    LLVMValueRef yi = cg_add(f, yrow, j);
    cg_store(f, f->i32, pY, yi,
             LLVMBuildAdd(f->b, cg_load(f, f->i32, pY, yi), LLVMBuildMul(f->b, av, bv, ""), ""));
    cg_loop_end(f, &ln);
    cg_loop_end(f, &lk);
    cg_loop_end(f, &lm);
    cg_nest_end(f, &ns);
}

oct_status cg_lower_matmulinteger(cg_fn *f, const ir_node *n)
{
    cg_tensor *A = cg_in(f, n, 0), *B = cg_in(f, n, 1), *ZA = cg_in(f, n, 2), *ZB = cg_in(f, n, 3);
    cg_tensor *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = need_8bit(f, n, A, 0)) || (st = need_8bit(f, n, B, 1)) ||
        (st = need_8bit(f, n, ZA, 2)) || (st = need_8bit(f, n, ZB, 3)))
        return st;
    if (!Y || Y->dtype != IR_DT_INT32)
        return oct_node_error(f->ctx, OCT_EINPUT, n,
                              "compile: MatMulInteger needs operands of rank >= 1 and an int32 output");
    mi_geom g;
    mi_param pa, pb;
    if ((st = mi_geom_init(f, n, A, B, 1, &g)) ||
        (st = mi_param_init(f, n, 2, ZA, 0, g.nb, g.ob, g.M, &pa)) ||
        (st = mi_param_init(f, n, 3, ZB, 1, g.nb, g.ob, g.N, &pb)))
        return st;
    if (g.rb == 0 && B->rank == 2 && matmulinteger_kernel(f, n, A, B, ZA, ZB, Y, &st))
        return st;
    emit_int_matmul(f, &g, A, B, ZA, ZB, &pa, &pb, cg_ptr(f, Y));
    return OCT_OK;
}

/* ---- requantization of int32 sums (QLinearMatMul, QLinearConv) ---------------- */

/* A float32/float16/bfloat16 scale element as an f32 (exact). */
static LLVMValueRef scale_at(cg_fn *f, const cg_tensor *s, LLVMValueRef idx)
{
    if (s->dtype == IR_DT_FLOAT)
        return cg_load(f, f->f32, cg_ptr(f, s), idx);
    return LLVMBuildFPTrunc(f->b, cg_val_load(f, s->dtype, cg_ptr(f, s), idx), f->f32, "");
}

/* f32 v rounded to float16/bfloat16 dt (float32: v). */
static LLVMValueRef round_to(cg_fn *f, ir_dtype dt, LLVMValueRef v)
{
    if (dt != IR_DT_FLOAT16 && dt != IR_DT_BFLOAT16)
        return v;
    return cg_val_decode(f, dt, cg_val_encode(f, dt, v, true));
}

/* M = (sx * sw) / sy in the scales' type dt, each operation rounded to it
 * (ops_requant_multiplier: a float32 operation, then rounded to float16 or
 * bfloat16, is the correctly rounded result of that type). */
static LLVMValueRef multiplier(cg_fn *f, ir_dtype dt, LLVMValueRef sx, LLVMValueRef sw,
                               LLVMValueRef sy)
{
    LLVMValueRef p = round_to(f, dt, LLVMBuildFMul(f->b, sx, sw, ""));
    return round_to(f, dt, LLVMBuildFDiv(f->b, p, sy, ""));
}

/* ops_requantize: saturate(round_half_to_even((float)acc * m) + zy) in
 * [lo, hi] (NaN -> zy), as an i8. */
static LLVMValueRef requant(cg_fn *f, LLVMValueRef acc, LLVMValueRef m, LLVMValueRef zyf,
                            int64_t lo, int64_t hi)
{
    LLVMValueRef v = LLVMBuildFMul(f->b, LLVMBuildSIToFP(f->b, acc, f->f32, ""), m, "");
    v = cg_intrinsic(f, "llvm.roundeven", f->f32, &v, 1);
    v = fselect(f, LLVMRealUNO, v, v, cg_f32c(f, 0), v);
    v = LLVMBuildFAdd(f->b, v, zyf, "");
    LLVMValueRef flo = cg_f32c(f, (double)lo), fhi = cg_f32c(f, (double)hi);
    v = fselect(f, LLVMRealOLT, v, flo, flo, v);
    v = fselect(f, LLVMRealOGT, v, fhi, fhi, v);
    return LLVMBuildTrunc(f->b, LLVMBuildFPToSI(f->b, v, f->i32, ""), f->i8, "");
}

static bool is_scale_type(const cg_tensor *s)
{
    return s && (s->dtype == IR_DT_FLOAT || s->dtype == IR_DT_FLOAT16 ||
                 s->dtype == IR_DT_BFLOAT16);
}

/* The output y (8-bit, its zero point zy per tensor and of its type, the
 * scale sy per tensor): fills the range and the zero point as an f32. */
static oct_status requant_out(cg_fn *f, const ir_node *n, const cg_tensor *Y,
                              const cg_tensor *SY, const cg_tensor *ZY, int64_t *lo, int64_t *hi,
                              LLVMValueRef *zyf)
{
    if (!Y || !is_8bit(Y) || (ZY && (ZY->dtype != Y->dtype || ZY->nelems != 1)) ||
        !is_scale_type(SY) || SY->nelems != 1)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s needs an 8-bit output "
                              "with a per-tensor zero point of its type and a per-tensor "
                              "float32/float16/bfloat16 scale", n->op_type);
    *lo = Y->dtype == IR_DT_INT8 ? -128 : 0;
    *hi = Y->dtype == IR_DT_INT8 ? 127 : 255;
    *zyf = LLVMBuildSIToFP(f->b, zero_at(f, ZY, cg_i64c(f, 0)), f->f32, "");
    return OCT_OK;
}

/* QLinearMatMul as loops: the exact int32 sums (emit_int_matmul) into the
 * workspace, then y = requant(acc, M) with M = (sa * sb) / sy in the
 * scales' type (src/ref/qlinear.c), per element from the per-tensor,
 * per-row (a) and per-column (b) scales; every operand may be a run-time
 * tensor. */
oct_status cg_qlinearmatmul_loops(cg_fn *f, const ir_node *n)
{
    cg_tensor *A = cg_in(f, n, 0), *SA = cg_in(f, n, 1), *ZA = cg_in(f, n, 2);
    cg_tensor *B = cg_in(f, n, 3), *SB = cg_in(f, n, 4), *ZB = cg_in(f, n, 5);
    cg_tensor *SY = cg_in(f, n, 6), *ZY = cg_in(f, n, 7), *Y = cg_out(f, n, 0);
    oct_status st;
    if (!A || !B)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: QLinearMatMul needs a and b");
    if ((st = need_8bit(f, n, A, 0)) || (st = need_8bit(f, n, ZA, 2)) ||
        (st = need_8bit(f, n, B, 3)) || (st = need_8bit(f, n, ZB, 5)))
        return st;
    int64_t lo, hi;
    LLVMValueRef zyf;
    if ((st = requant_out(f, n, Y, SY, ZY, &lo, &hi, &zyf)))
        return st;
    if (!is_scale_type(SA) || !is_scale_type(SB))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: QLinearMatMul needs "
                              "float32, float16 or bfloat16 scales");
    mi_geom g;
    mi_param pza, pzb, psa, psb;
    if ((st = mi_geom_init(f, n, A, B, 3, &g)) ||
        (st = mi_param_init(f, n, 2, ZA, 0, g.nb, g.ob, g.M, &pza)) ||
        (st = mi_param_init(f, n, 5, ZB, 1, g.nb, g.ob, g.N, &pzb)) ||
        (st = mi_param_init(f, n, 1, SA, 0, g.nb, g.ob, g.M, &psa)) ||
        (st = mi_param_init(f, n, 4, SB, 1, g.nb, g.ob, g.N, &psb)))
        return st;
    LLVMValueRef acc = cg_workspace(f, (Y->nelems ? Y->nelems : 1) * sizeof(int32_t));
    emit_int_matmul(f, &g, A, B, ZA, ZB, &pza, &pzb, acc);
    int64_t M = g.M, N = g.N, str[3][OPS_MAX_RANK];
    cg_strides(g.nb, g.ob, str[0]);
    for (int d = 0; d < g.nb; d++) {
        str[0][d] *= M * N;
        str[1][d] = psa.bstride[d];
        str[2][d] = psb.bstride[d];
    }
    LLVMValueRef sy = scale_at(f, SY, cg_i64c(f, 0)), py = cg_ptr(f, Y), offs[3];
    cg_nest ns;
    cg_nest_begin(f, &ns, g.nb, g.ob, 3, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    cg_loop lm, ln;
    LLVMValueRef m = cg_loop_begin(f, &lm, M);
    LLVMValueRef sa = scale_at(f, SA, cg_madd(f, m, psa.vstride, offs[1]));
    LLVMValueRef yrow = cg_add(f, offs[0], cg_mul(f, m, cg_i64c(f, N)));
    LLVMValueRef j = cg_loop_begin(f, &ln, N);
    LLVMValueRef sb = scale_at(f, SB, cg_madd(f, j, psb.vstride, offs[2]));
    LLVMValueRef yi = cg_add(f, yrow, j);
    LLVMValueRef mult = multiplier(f, SY->dtype, sa, sb, sy);
    cg_store(f, f->i8, py, yi, requant(f, cg_load(f, f->i32, acc, yi), mult, zyf, lo, hi));
    cg_loop_end(f, &ln);
    cg_loop_end(f, &lm);
    cg_nest_end(f, &ns);
    return OCT_OK;
}

/* ---- ConvInteger ---------------------------------------------------------------- */

/* Geometry of an integer convolution, padded to 3 spatial dims of size 1. */
typedef struct ci_geom {
    int64_t N, C, M, G;
    int64_t in[3], k[3], s[3], d[3], pb[3], out[3];
} ci_geom;

static oct_status ci_geom_init(cg_fn *f, const ir_node *n, const cg_tensor *X, const cg_tensor *W,
                               int w_idx, ci_geom *g)
{
    int ns = X->rank - 2;
    if (ns < 1 || ns > 3 || W->rank != X->rank)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s needs 1 to 3 spatial "
                              "dims and weights of the input's rank", n->op_type);
    g->N = X->dims[0];
    g->C = X->dims[1];
    g->M = W->dims[0];
    g->G = ir_attr_int(n, "group", 1);
    if (g->G < 1 || W->dims[1] * g->G != g->C || g->M % g->G)
        return oct_input_error(f->ctx, OCT_EINPUT, n, w_idx, "channel counts do not match "
                               "group %lld", (long long)g->G);
    ops_shape xs = {.dtype = X->dtype, .rank = X->rank};
    memcpy(xs.dims, X->dims, (size_t)X->rank * sizeof *xs.dims);
    ops_window win;
    oct_status st = ops_window_init(f->ctx, n, &xs, W->dims + 2, false, &win);
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - ns);
        g->in[i] = j >= 0 ? win.in[j] : 1;
        g->k[i] = j >= 0 ? win.kernel[j] : 1;
        g->s[i] = j >= 0 ? win.stride[j] : 1;
        g->d[i] = j >= 0 ? win.dilation[j] : 1;
        g->pb[i] = j >= 0 ? win.pad_begin[j] : 0;
        g->out[i] = j >= 0 ? win.out[j] : 1;
    }
    return OCT_OK;
}

/* Direct convolution into the int32 tensor at py of y's shape: per output
 * row (n, m, o0, o1), the row starts at 0 and every input channel of the
 * group and tap (k0, k1) inside the image adds (w - zw) * (x - zx) over the
 * output columns whose input column is inside (a compile-time range per
 * k2: no bounds check in the inner loop).  Padding contributes 0, the
 * input's zero point.  Sums wrap in int32. */
static void emit_int_conv(cg_fn *f, const ci_geom *g, const cg_tensor *X, const cg_tensor *W,
                          const cg_tensor *ZX, const cg_tensor *ZW, LLVMValueRef py)
{
    const int64_t *in = g->in, *k = g->k, *s = g->s, *d = g->d, *pb = g->pb, *out = g->out;
    int64_t N = g->N, C = g->C, M = g->M, G = g->G;
    int64_t Cg = C / G, Mg = M / G, in_sp = in[0] * in[1] * in[2];
    int64_t k_sp = k[0] * k[1] * k[2];
    LLVMValueRef px = cg_ptr(f, X), pw = cg_ptr(f, W);
    LLVMValueRef zx = zero_at(f, ZX, cg_i64c(f, 0));

    cg_loop ln, lm, lo0, lo1, lc, lk0, lk1, lz;
    LLVMValueRef nn = cg_loop_begin(f, &ln, N);
    LLVMValueRef mm = cg_loop_begin(f, &lm, M);
    LLVMValueRef gg = LLVMBuildSDiv(f->b, mm, cg_i64c(f, Mg), "");
    LLVMValueRef zw = zero_at(f, ZW, ZW && ZW->nelems != 1 ? mm : cg_i64c(f, 0));
    LLVMValueRef o0 = cg_loop_begin(f, &lo0, out[0]);
    LLVMValueRef o1 = cg_loop_begin(f, &lo1, out[1]);
    LLVMValueRef yrow = cg_mul(f, cg_madd(f, cg_madd(f, nn, M, mm), out[0], o0), cg_i64c(f, out[1]));
    yrow = cg_mul(f, cg_add(f, yrow, o1), cg_i64c(f, out[2]));
    LLVMValueRef z = cg_loop_begin(f, &lz, out[2]);
    cg_store(f, f->i32, py, cg_add(f, yrow, z), LLVMConstInt(f->i32, 0, 0));
    cg_loop_end(f, &lz);
    LLVMValueRef cc = cg_loop_begin(f, &lc, Cg);
    LLVMValueRef xplane = cg_mul(f, cg_madd(f, nn, C, cg_madd(f, gg, Cg, cc)), cg_i64c(f, in_sp));
    LLVMValueRef wbase = cg_mul(f, cg_madd(f, mm, Cg, cc), cg_i64c(f, k_sp));
    LLVMValueRef k0 = cg_loop_begin(f, &lk0, k[0]);
    LLVMValueRef i0 = cg_add(f, cg_madd(f, o0, s[0], cg_i64c(f, -pb[0])), cg_mul(f, k0, cg_i64c(f, d[0])));
    LLVMBasicBlockRef skip0 = cg_if_inside(f, i0, in[0]);
    LLVMValueRef k1 = cg_loop_begin(f, &lk1, k[1]);
    LLVMValueRef i1 = cg_add(f, cg_madd(f, o1, s[1], cg_i64c(f, -pb[1])), cg_mul(f, k1, cg_i64c(f, d[1])));
    LLVMBasicBlockRef skip1 = cg_if_inside(f, i1, in[1]);
    LLVMValueRef xrow = cg_add(f, xplane, cg_mul(f, cg_madd(f, i0, in[1], i1), cg_i64c(f, in[2])));
    LLVMValueRef wrow = cg_add(f, wbase, cg_mul(f, cg_madd(f, k0, k[1], k1), cg_i64c(f, k[2])));
    for (int64_t k2 = 0; k2 < k[2]; k2++) {
        int64_t lo2, hi2; /* outputs o with 0 <= o*s - pb + k2*d < in */
        cg_valid_range(in[2], out[2], s[2], pb[2], k2 * d[2], &lo2, &hi2);
        if (hi2 <= lo2)
            continue;
        LLVMValueRef wv = LLVMBuildSub(f->b, cg_load_wide(f, W, pw, cg_add(f, wrow, cg_i64c(f, k2))),
                                       zw, "");
        cg_loop l;
        LLVMValueRef jj = cg_loop_begin(f, &l, hi2 - lo2);
        LLVMValueRef o2 = cg_add(f, jj, cg_i64c(f, lo2));
        LLVMValueRef xi = cg_add(f, xrow, cg_madd(f, o2, s[2], cg_i64c(f, k2 * d[2] - pb[2])));
        LLVMValueRef xv = LLVMBuildSub(f->b, cg_load_wide(f, X, px, xi), zx, "");
        LLVMValueRef yi = cg_add(f, yrow, o2);
        cg_store(f, f->i32, py, yi,
                 LLVMBuildAdd(f->b, cg_load(f, f->i32, py, yi), LLVMBuildMul(f->b, wv, xv, ""), ""));
        cg_loop_end(f, &l);
    }
    cg_if_end(f, skip1);
    cg_loop_end(f, &lk1);
    cg_if_end(f, skip0);
    cg_loop_end(f, &lk0);
    cg_loop_end(f, &lc);
    cg_loop_end(f, &lo1);
    cg_loop_end(f, &lo0);
    cg_loop_end(f, &lm);
    cg_loop_end(f, &ln);
}

oct_status cg_lower_convinteger(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *W = cg_in(f, n, 1), *ZX = cg_in(f, n, 2), *ZW = cg_in(f, n, 3);
    cg_tensor *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = need_8bit(f, n, X, 0)) || (st = need_8bit(f, n, W, 1)) ||
        (st = need_8bit(f, n, ZX, 2)) || (st = need_8bit(f, n, ZW, 3)))
        return st;
    if (!Y || Y->dtype != IR_DT_INT32)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: ConvInteger needs 1 to 3 spatial dims and an int32 output");
    ci_geom g;
    if ((st = ci_geom_init(f, n, X, W, 1, &g)))
        return st;
    if ((ZX && ZX->nelems != 1) || (ZW && ZW->nelems != 1 && (int64_t)ZW->nelems != g.M))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "a zero point has the wrong number of "
                              "elements (x: 1; w: 1 or one per output channel)");
    emit_int_conv(f, &g, X, W, ZX, ZW, cg_ptr(f, Y));
    return OCT_OK;
}

/* QLinearConv as loops: the exact int32 sums (emit_int_conv) into the
 * workspace, then per output channel m: acc + bias[m] (int32, wrapping),
 * requantized with M = (sx * sw[m]) / sy in float32 (src/ref/qconv.c).
 * Every operand may be a run-time tensor. */
oct_status cg_qlinearconv_loops(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *SX = cg_in(f, n, 1), *ZX = cg_in(f, n, 2);
    cg_tensor *W = cg_in(f, n, 3), *SW = cg_in(f, n, 4), *ZW = cg_in(f, n, 5);
    cg_tensor *SY = cg_in(f, n, 6), *ZY = cg_in(f, n, 7), *BI = cg_in(f, n, 8);
    cg_tensor *Y = cg_out(f, n, 0);
    oct_status st;
    if (!X || !W)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: QLinearConv needs x and w");
    if ((st = need_8bit(f, n, X, 0)) || (st = need_8bit(f, n, ZX, 2)) ||
        (st = need_8bit(f, n, W, 3)) || (st = need_8bit(f, n, ZW, 5)))
        return st;
    int64_t lo, hi;
    LLVMValueRef zyf;
    if ((st = requant_out(f, n, Y, SY, ZY, &lo, &hi, &zyf)))
        return st;
    ci_geom g;
    if ((st = ci_geom_init(f, n, X, W, 3, &g)))
        return st;
    if (!is_scale_type(SX) || !is_scale_type(SW) || SX->nelems != 1 ||
        (SW->nelems != 1 && (int64_t)SW->nelems != g.M) || (ZX && ZX->nelems != 1) ||
        (ZW && ZW->nelems != 1 && (int64_t)ZW->nelems != g.M) ||
        (BI && (BI->dtype != IR_DT_INT32 || (BI->nelems != 1 && (int64_t)BI->nelems != g.M))))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: QLinearConv needs per-tensor x "
                              "parameters, per-tensor or per-channel w parameters and an int32 "
                              "bias of 1 or M values");
    LLVMValueRef acc = cg_workspace(f, (Y->nelems ? Y->nelems : 1) * sizeof(int32_t));
    emit_int_conv(f, &g, X, W, ZX, ZW, acc);
    int64_t osz = g.out[0] * g.out[1] * g.out[2];
    LLVMValueRef sx = scale_at(f, SX, cg_i64c(f, 0)), sy = scale_at(f, SY, cg_i64c(f, 0));
    LLVMValueRef py = cg_ptr(f, Y);
    cg_loop ln, lm, lo_;
    LLVMValueRef nn = cg_loop_begin(f, &ln, g.N);
    LLVMValueRef mm = cg_loop_begin(f, &lm, g.M);
    LLVMValueRef sw = scale_at(f, SW, SW->nelems == 1 ? cg_i64c(f, 0) : mm);
    LLVMValueRef mult = multiplier(f, IR_DT_FLOAT, sx, sw, sy);
    LLVMValueRef bias = BI ? cg_load(f, f->i32, cg_ptr(f, BI), BI->nelems == 1 ? cg_i64c(f, 0) : mm)
                           : LLVMConstInt(f->i32, 0, 0);
    LLVMValueRef base = cg_mul(f, cg_madd(f, nn, g.M, mm), cg_i64c(f, osz));
    LLVMValueRef o = cg_loop_begin(f, &lo_, osz);
    LLVMValueRef yi = cg_add(f, base, o);
    LLVMValueRef a = LLVMBuildAdd(f->b, cg_load(f, f->i32, acc, yi), bias, "");
    cg_store(f, f->i8, py, yi, requant(f, a, mult, zyf, lo, hi));
    cg_loop_end(f, &lo_);
    cg_loop_end(f, &lm);
    cg_loop_end(f, &ln);
    return OCT_OK;
}
