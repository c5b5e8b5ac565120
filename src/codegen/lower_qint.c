/*
 * lower_qint.c: the integer ops whose output is not requantized:
 * DynamicQuantizeLinear, MatMulInteger and ConvInteger, emitted as loops
 * with the reference interpreter's arithmetic, so the bits are equal:
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
 */
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"

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

/* Where a zero point of a (side 0, per row) or b (side 1, per column) is:
 * element sum(bstride[d] * batch index d) + vstride * row/column. */
typedef struct mi_param {
    int64_t bstride[OPS_MAX_RANK];
    int64_t vstride;
} mi_param;

/* Resolves zero point p for a matmul with nb output batch dims ob and mn
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
                                   "per-%s zero point has %lld elements, expected 1 or %lld",
                                   side ? "column" : "row", (long long)p->dims[0], (long long)mn);
        out->vstride = 1;
        return OCT_OK;
    }
    int64_t one = r >= 2 ? p->dims[r - 1 - side] : 0, v = r >= 2 ? p->dims[r - 2 + side] : 0;
    if (r < 2 || one != 1 || (v != 1 && v != mn) || r - 2 > nb)
        return oct_input_error(f->ctx, OCT_EINPUT, n, idx,
                               "zero point shape (rank %d) is neither per tensor nor per %s",
                               r, side ? "column ([..., 1, N])" : "row ([..., M, 1])");
    out->vstride = v == 1 ? 0 : 1;
    int64_t stride = v;
    for (int d = r - 3; d >= 0; d--) {
        int od = nb - (r - 2) + d;
        if (p->dims[d] != 1 && p->dims[d] != ob[od])
            return oct_input_error(f->ctx, OCT_EINPUT, n, idx,
                                   "zero point batch dim %d is %lld, the output's %lld", d,
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

oct_status cg_lower_matmulinteger(cg_fn *f, const ir_node *n)
{
    cg_tensor *A = cg_in(f, n, 0), *B = cg_in(f, n, 1), *ZA = cg_in(f, n, 2), *ZB = cg_in(f, n, 3);
    cg_tensor *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = need_8bit(f, n, A, 0)) || (st = need_8bit(f, n, B, 1)) ||
        (st = need_8bit(f, n, ZA, 2)) || (st = need_8bit(f, n, ZB, 3)))
        return st;
    if (!Y || Y->dtype != IR_DT_INT32 || A->rank < 1 || B->rank < 1)
        return oct_node_error(f->ctx, OCT_EINPUT, n,
                              "compile: MatMulInteger needs operands of rank >= 1 and an int32 output");
    int64_t M = A->rank >= 2 ? A->dims[A->rank - 2] : 1, K = A->dims[A->rank - 1];
    int64_t N = B->rank >= 2 ? B->dims[B->rank - 1] : 1;
    int64_t Kb = B->rank >= 2 ? B->dims[B->rank - 2] : B->dims[0];
    if (K != Kb)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "inner dimensions differ: %lld vs %lld",
                               (long long)K, (long long)Kb);
    int ra = A->rank > 2 ? A->rank - 2 : 0, rb = B->rank > 2 ? B->rank - 2 : 0;
    int nb = ra > rb ? ra : rb;
    int64_t ob[OPS_MAX_RANK], str[5][OPS_MAX_RANK];
    for (int d = 0; d < nb; d++) {
        int64_t ad = d - (nb - ra) >= 0 ? A->dims[d - (nb - ra)] : 1;
        int64_t bd = d - (nb - rb) >= 0 ? B->dims[d - (nb - rb)] : 1;
        if (ad != bd && ad != 1 && bd != 1)
            return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "batch dims do not broadcast");
        ob[d] = ad == 1 ? bd : ad;
    }
    mi_param pa, pb;
    if ((st = mi_param_init(f, n, 2, ZA, 0, nb, ob, M, &pa)) ||
        (st = mi_param_init(f, n, 3, ZB, 1, nb, ob, N, &pb)))
        return st;
    if (rb == 0 && B->rank == 2 && matmulinteger_kernel(f, n, A, B, ZA, ZB, Y, &st))
        return st;
    cg_bcast_strides(ra, A->dims, nb, str[0]);
    cg_bcast_strides(rb, B->dims, nb, str[1]);
    cg_strides(nb, ob, str[2]);
    for (int d = 0; d < nb; d++) {
        str[0][d] *= M * K;
        str[1][d] *= K * N;
        str[2][d] *= M * N;
        str[3][d] = pa.bstride[d];
        str[4][d] = pb.bstride[d];
    }
    LLVMValueRef pA = cg_ptr(f, A), pB = cg_ptr(f, B), pY = cg_ptr(f, Y);
    LLVMValueRef offs[5], zero = LLVMConstInt(f->i32, 0, 0);
    cg_nest ns;
    cg_nest_begin(f, &ns, nb, ob, 5, (const int64_t(*)[OPS_MAX_RANK])str, offs);
    /* y[m, :] = sum_k (a[m, k] - za[m]) * (b[k, :] - zb[:]), axpy rows */
    cg_loop lm, lk, ln;
    LLVMValueRef m = cg_loop_begin(f, &lm, M);
    LLVMValueRef za = zero_at(f, ZA, cg_madd(f, m, pa.vstride, offs[3]));
    LLVMValueRef yrow = cg_add(f, offs[2], cg_mul(f, m, cg_i64c(f, N)));
    LLVMValueRef j = cg_loop_begin(f, &ln, N);
    cg_store(f, f->i32, pY, cg_add(f, yrow, j), zero);
    cg_loop_end(f, &ln);
    LLVMValueRef k = cg_loop_begin(f, &lk, K);
    LLVMValueRef av = LLVMBuildSub(f->b, cg_load_wide(f, A, pA, cg_add(f, offs[0], cg_madd(f, m, K, k))),
                                   za, "");
    LLVMValueRef brow = cg_add(f, offs[1], cg_mul(f, k, cg_i64c(f, N)));
    j = cg_loop_begin(f, &ln, N);
    LLVMValueRef zb = zero_at(f, ZB, cg_madd(f, j, pb.vstride, offs[4]));
    LLVMValueRef bv = LLVMBuildSub(f->b, cg_load_wide(f, B, pB, cg_add(f, brow, j)), zb, "");
    LLVMValueRef yi = cg_add(f, yrow, j);
    cg_store(f, f->i32, pY, yi,
             LLVMBuildAdd(f->b, cg_load(f, f->i32, pY, yi), LLVMBuildMul(f->b, av, bv, ""), ""));
    cg_loop_end(f, &ln);
    cg_loop_end(f, &lk);
    cg_loop_end(f, &lm);
    cg_nest_end(f, &ns);
    return OCT_OK;
}

/* ---- ConvInteger ---------------------------------------------------------------- */

/* The builder continues in a block entered only when 0 <= v < limit; the
 * returned block follows it (close with guard_end). */
static LLVMBasicBlockRef guard(cg_fn *f, LLVMValueRef v, int64_t limit)
{
    LLVMValueRef inside = LLVMBuildICmp(f->b, LLVMIntULT, v, cg_i64c(f, limit), "");
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(f->llc, f->fn, "tap");
    LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(f->llc, f->fn, "skip");
    LLVMBuildCondBr(f->b, inside, then, cont);
    LLVMPositionBuilderAtEnd(f->b, then);
    return cont;
}

static void guard_end(cg_fn *f, LLVMBasicBlockRef cont)
{
    LLVMBuildBr(f->b, cont);
    LLVMPositionBuilderAtEnd(f->b, cont);
}

/* Direct convolution: per output row (n, m, o0, o1), the row starts at 0
 * and every input channel of the group and tap (k0, k1) inside the image
 * adds (w - zw) * (x - zx) over the output columns whose input column is
 * inside (a compile-time range per k2: no bounds check in the inner
 * loop).  Padding contributes 0, the input's zero point. */
oct_status cg_lower_convinteger(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *W = cg_in(f, n, 1), *ZX = cg_in(f, n, 2), *ZW = cg_in(f, n, 3);
    cg_tensor *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = need_8bit(f, n, X, 0)) || (st = need_8bit(f, n, W, 1)) ||
        (st = need_8bit(f, n, ZX, 2)) || (st = need_8bit(f, n, ZW, 3)))
        return st;
    int ns = X->rank - 2;
    if (!Y || Y->dtype != IR_DT_INT32 || ns < 1 || ns > 3 || W->rank != X->rank)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: ConvInteger needs 1 to 3 spatial dims and an int32 output");
    int64_t N = X->dims[0], C = X->dims[1], M = W->dims[0], G = ir_attr_int(n, "group", 1);
    if (G < 1 || W->dims[1] * G != C || M % G)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "channel counts do not match group %lld",
                               (long long)G);
    if ((ZX && ZX->nelems != 1) || (ZW && ZW->nelems != 1 && (int64_t)ZW->nelems != M))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "a zero point has the wrong number of "
                              "elements (x: 1; w: 1 or one per output channel)");
    ops_shape xs = {.dtype = X->dtype, .rank = X->rank};
    memcpy(xs.dims, X->dims, (size_t)X->rank * sizeof *xs.dims);
    ops_window win;
    if ((st = ops_window_init(f->ctx, n, &xs, W->dims + 2, false, &win)) != OCT_OK)
        return st;
    int64_t in[3], k[3], s[3], d[3], pb[3], out[3];
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - ns);
        in[i] = j >= 0 ? win.in[j] : 1;
        k[i] = j >= 0 ? win.kernel[j] : 1;
        s[i] = j >= 0 ? win.stride[j] : 1;
        d[i] = j >= 0 ? win.dilation[j] : 1;
        pb[i] = j >= 0 ? win.pad_begin[j] : 0;
        out[i] = j >= 0 ? win.out[j] : 1;
    }
    int64_t Cg = C / G, Mg = M / G, in_sp = in[0] * in[1] * in[2];
    int64_t k_sp = k[0] * k[1] * k[2];
    LLVMValueRef px = cg_ptr(f, X), pw = cg_ptr(f, W), py = cg_ptr(f, Y);
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
    LLVMBasicBlockRef skip0 = guard(f, i0, in[0]);
    LLVMValueRef k1 = cg_loop_begin(f, &lk1, k[1]);
    LLVMValueRef i1 = cg_add(f, cg_madd(f, o1, s[1], cg_i64c(f, -pb[1])), cg_mul(f, k1, cg_i64c(f, d[1])));
    LLVMBasicBlockRef skip1 = guard(f, i1, in[1]);
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
    guard_end(f, skip1);
    cg_loop_end(f, &lk1);
    guard_end(f, skip0);
    cg_loop_end(f, &lk0);
    cg_loop_end(f, &lc);
    cg_loop_end(f, &lo1);
    cg_loop_end(f, &lo0);
    cg_loop_end(f, &lm);
    cg_loop_end(f, &ln);
    return OCT_OK;
}
