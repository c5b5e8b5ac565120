/*
 * lower_rnn.c: float32 RNN, GRU and LSTM, the equations of src/ref/rnn.c
 * (the plan, ops_rnn_plan_of, is shared).  For each direction:
 *   1. the input projection of every time step at once,
 *      GX[rows, G*H] = X[rows, I] . W_d^T + Wb_d (rows = S*B in X's own
 *      row order, so layout 1 needs no transpose): one call of the kernel
 *      library's GEMM on W_d^T packed at compile time when W is a constant
 *      and the target has the kernels, else loops of dot products;
 *   2. per batch row b, a loop over the steps t < sequence_lens[b] (in
 *      reverse for the reverse direction): the recurrent product
 *      GH = H.R_d^T + Rb_d as dot products over contiguous rows of R, then
 *      one loop over the H units with the gate math fused (clip,
 *      activations, peepholes, the cell and hidden update), writing the
 *      state in place and the step's row of Y.
 * Y is zeroed first (its rows past each length stay 0); Y_h and Y_c get
 * the final state.  The workspace holds the GEMM's own scratch, GX (S*B*G*H
 * floats), GH (G*H) and the states (B*H each, plus H for GRU's r*H).
 * Float numerics: dot products carry reassoc+contract (FMA, reordered
 * sums), exp and tanh are the kernel library's (emit_exp, emit_tanh),
 * Softplus calls log1pf, so results match the interpreter within the float
 * tolerance, not bit for bit.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"
#include "ops/rules.h"

typedef struct rnn_lower {
    cg_fn *f;
    const ir_node *n;
    ops_rnn_plan p;
    int64_t S, B, I, H, G, GH;
    LLVMValueRef x, w, r, bias, lens, h0, c0, peep, y, yh, yc; /* NULL: absent */
    LLVMValueRef gx, gh, hs, cs, rh;                          /* workspace */
} rnn_lower;

static LLVMValueRef r_mul(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFMul(f->b, a, b, "");
}
static LLVMValueRef r_add(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFAdd(f->b, a, b, "");
}
static LLVMValueRef r_sub(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFSub(f->b, a, b, "");
}
static LLVMValueRef fselect(cg_fn *f, LLVMRealPredicate pred, LLVMValueRef a, LLVMValueRef b,
                            LLVMValueRef yes, LLVMValueRef no)
{
    return LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, pred, a, b, ""), yes, no, "");
}

/* exp(x) as the kernel library's sk_expf (kernels/scommon.h, same
 * constants and steps): x clamped to [-104, 89], n = round(x log2e) by the
 * 1.5 * 2^23 trick, r = x - n ln2 in two parts, a degree-7 polynomial,
 * times 2^(n/2) twice; +Inf past 88.7, gradual underflow, NaN kept.
 * Inline and call-free, so the unit loops vectorize. */
static LLVMValueRef emit_exp(cg_fn *f, LLVMValueRef x)
{
    static const float P[6] = {1.9875691500E-4f, 1.3981999507E-3f, 8.3334519073E-3f,
                               4.1665795894E-2f, 1.6666665459E-1f, 5.0000001201E-1f};
    LLVMValueRef lo = cg_f32c(f, -104.0f), hi = cg_f32c(f, 89.0f);
    x = fselect(f, LLVMRealOLT, x, lo, lo, x);
    x = fselect(f, LLVMRealOGT, x, hi, hi, x);
    LLVMValueRef magic = cg_f32c(f, 12582912.0f);
    LLVMValueRef fn = r_sub(f, r_add(f, r_mul(f, x, cg_f32c(f, 1.44269504088896341f)), magic), magic);
    LLVMValueRef r = r_sub(f, x, r_mul(f, fn, cg_f32c(f, 0.693359375f)));
    r = r_sub(f, r, r_mul(f, fn, cg_f32c(f, -2.12194440e-4f)));
    LLVMValueRef z = r_mul(f, r, r), p = cg_f32c(f, P[0]);
    for (int i = 1; i < 6; i++)
        p = r_add(f, r_mul(f, p, r), cg_f32c(f, P[i]));
    p = r_add(f, r_add(f, r_mul(f, p, z), r), cg_f32c(f, 1.0f));
    LLVMValueRef n = LLVMBuildSelect(f->b, LLVMBuildFCmp(f->b, LLVMRealORD, x, x, ""),
                                     LLVMBuildFPToSI(f->b, fn, f->i32, ""),
                                     LLVMConstInt(f->i32, 0, 0), "");
    LLVMValueRef n1 = LLVMBuildAShr(f->b, n, LLVMConstInt(f->i32, 1, 0), "");
    LLVMValueRef n2 = LLVMBuildSub(f->b, n, n1, "");
    LLVMValueRef half[2] = {n1, n2};
    for (int k = 0; k < 2; k++) { /* 2^e = bits (e + 127) << 23 */
        LLVMValueRef bits = LLVMBuildShl(f->b, LLVMBuildAdd(f->b, half[k], LLVMConstInt(f->i32, 127, 0), ""),
                                         LLVMConstInt(f->i32, 23, 0), "");
        p = r_mul(f, p, LLVMBuildBitCast(f->b, bits, f->f32, ""));
    }
    return p;
}

/* tanh(x) as the kernel library's sk_tanhf (kernels/sfunc.c): Cephes'
 * x + x^3 P(x^2) for |x| < 0.625, else sign(x) (1 - 2 / (exp(2|x|) + 1));
 * within a few ulp of libm's tanhf at a fraction of its cost (glibc's goes
 * through expm1f, which dominated the profile of an LSTM) and call-free. */
static LLVMValueRef emit_tanh(cg_fn *f, LLVMValueRef x)
{
    static const float P[5] = {-5.70498872745E-3f, 2.06390887954E-2f, -5.37397155531E-2f,
                               1.33314422036E-1f, -3.33332819422E-1f};
    LLVMValueRef ax = cg_intrinsic(f, "llvm.fabs", f->f32, &x, 1);
    LLVMValueRef z = r_mul(f, x, x), p = cg_f32c(f, P[0]);
    for (int i = 1; i < 5; i++)
        p = r_add(f, r_mul(f, p, z), cg_f32c(f, P[i]));
    LLVMValueRef small = r_add(f, r_mul(f, r_mul(f, p, z), x), x);
    LLVMValueRef e = emit_exp(f, r_mul(f, cg_f32c(f, 2), ax));
    LLVMValueRef big = r_sub(f, cg_f32c(f, 1),
                             LLVMBuildFDiv(f->b, cg_f32c(f, 2), r_add(f, e, cg_f32c(f, 1)), ""));
    LLVMValueRef t = fselect(f, LLVMRealOLT, ax, cg_f32c(f, 0.625f), small, big);
    LLVMValueRef args[2] = {t, x};
    return cg_intrinsic(f, "llvm.copysign", f->f32, args, 2);
}

/* fn(x), the formulas of ops_rnn_act_apply (tanh as emit_tanh). */
static LLVMValueRef emit_act(cg_fn *f, const ops_rnn_fn *fn, LLVMValueRef x)
{
    LLVMValueRef zero = cg_f32c(f, 0), one = cg_f32c(f, 1);
    LLVMValueRef a = cg_f32c(f, fn->alpha), b = cg_f32c(f, fn->beta);
    switch (fn->act) {
    case OPS_ACT_RELU: return fselect(f, LLVMRealOGT, x, zero, x, zero);
    case OPS_ACT_TANH: return emit_tanh(f, x);
    case OPS_ACT_SIGMOID:
        return LLVMBuildFDiv(f->b, one, r_add(f, one, emit_exp(f, LLVMBuildFNeg(f->b, x, ""))), "");
    case OPS_ACT_AFFINE: return r_add(f, r_mul(f, a, x), b);
    case OPS_ACT_LEAKYRELU: return fselect(f, LLVMRealOGE, x, zero, x, r_mul(f, a, x));
    case OPS_ACT_THRESHOLDEDRELU: return fselect(f, LLVMRealOGE, x, a, x, zero);
    case OPS_ACT_SCALEDTANH: return r_mul(f, a, emit_tanh(f, r_mul(f, b, x)));
    case OPS_ACT_HARDSIGMOID: return cg_clip_elem(f, r_add(f, r_mul(f, a, x), b), zero, one);
    case OPS_ACT_ELU:
        return fselect(f, LLVMRealOGE, x, zero, x,
                       r_mul(f, a, r_sub(f, emit_exp(f, x), one)));
    case OPS_ACT_SOFTSIGN: {
        LLVMValueRef ax = cg_intrinsic(f, "llvm.fabs", f->f32, &x, 1);
        return LLVMBuildFDiv(f->b, x, r_add(f, one, ax), "");
    }
    case OPS_ACT_SOFTPLUS: { /* x > 0 ? x + log1p(e^-x) : log1p(e^x), no overflow */
        LLVMValueRef ax = cg_intrinsic(f, "llvm.fabs", f->f32, &x, 1);
        LLVMValueRef l = cg_libm_f32(f, "log1pf", emit_exp(f, LLVMBuildFNeg(f->b, ax, "")));
        return r_add(f, fselect(f, LLVMRealOGT, x, zero, x, zero), l);
    }
    }
    return x;
}

/* Activation k of direction d of the clipped pre-activation v. */
static LLVMValueRef gate(rnn_lower *L, int d, int k, LLVMValueRef v)
{
    if (L->p.has_clip)
        v = cg_clip_elem(L->f, v, cg_f32c(L->f, -L->p.clip), cg_f32c(L->f, L->p.clip));
    return emit_act(L->f, &L->p.act[d][k], v);
}

/* init + sum_k a[ao + k] * b[bo + k] for k < n (a reassociated sum). */
static LLVMValueRef emit_dot(cg_fn *f, LLVMValueRef a, LLVMValueRef ao, LLVMValueRef b,
                             LLVMValueRef bo, int64_t n, LLVMValueRef init)
{
    cg_loop lk;
    cg_acc acc;
    LLVMValueRef k = cg_loop_begin(f, &lk, n);
    LLVMValueRef s = cg_acc_begin(f, &lk, &acc, init);
    LLVMValueRef prod = cg_fast(r_mul(f, cg_load(f, f->f32, a, cg_add(f, ao, k)),
                                     cg_load(f, f->f32, b, cg_add(f, bo, k))));
    cg_acc_end(f, &acc, cg_fast(r_add(f, s, prod)));
    cg_loop_end(f, &lk);
    return cg_acc_result(f, &lk, &acc, init);
}

/* Element j of a run-time vector, or 0 if the vector is absent. */
static LLVMValueRef load_or0(cg_fn *f, LLVMValueRef base, LLVMValueRef idx)
{
    return base ? cg_load(f, f->f32, base, idx) : cg_f32c(f, 0);
}

/* GX = X . W_d^T + Wb_d for every row of X (step 1 of the file comment). */
static oct_status emit_projection(rnn_lower *L, int d, const cg_tensor *W, bool kernel,
                                  uint64_t work_bytes)
{
    cg_fn *f = L->f;
    int64_t rows = L->S * L->B, I = L->I, GH = L->GH;
    if (kernel) {
        octk_sgemm a;
        memset(&a, 0, sizeof a);
        a.M = rows;
        a.N = GH;
        a.K = I;
        a.lda = I;
        a.ldy = GH;
        a.y_lo = -INFINITY;
        a.y_hi = INFINITY;
        size_t psize = octk_sgemm_packed_b_size(I, GH);
        float *packed = ir_alloc_array(f->ctx, 1, psize);
        if (!packed)
            return OCT_EINTERNAL;
        const float *w = (const float *)W->value->init->data + d * GH * I;
        octk_sgemm_pack_b(packed, w, 1.0f, I, GH, 1, I); /* b(k, n) = W[n, k] */
        LLVMValueRef null = LLVMConstPointerNull(f->ptr);
        cg_kptr ptrs[5] = {
            {offsetof(octk_sgemm, a), L->x},
            {offsetof(octk_sgemm, y), L->gx},
            {offsetof(octk_sgemm, b), cg_weight_data(f, packed, psize, NULL)},
            {offsetof(octk_sgemm, bias),
             L->bias ? cg_gep(f, f->f32, L->bias, cg_i64c(f, d * 2 * GH)) : null},
            {offsetof(octk_sgemm, work), cg_workspace(f, work_bytes)}};
        cg_kernel_call(f, "sgemm", &a, sizeof a, ptrs, 5);
        return OCT_OK;
    }
    cg_loop lr, lj;
    LLVMValueRef r = cg_loop_begin(f, &lr, rows);
    LLVMValueRef j = cg_loop_begin(f, &lj, GH);
    LLVMValueRef bj = L->bias ? cg_add(f, cg_i64c(f, d * 2 * GH), j) : NULL;
    LLVMValueRef v = emit_dot(f, L->x, cg_mul(f, r, cg_i64c(f, I)), L->w,
                              cg_madd(f, j, I, cg_i64c(f, d * GH * I)), I, load_or0(f, L->bias, bj));
    cg_store(f, f->f32, L->gx, cg_madd(f, r, GH, j), v);
    cg_loop_end(f, &lj);
    cg_loop_end(f, &lr);
    return OCT_OK;
}

/* GH[j] = Rb_d[j] + sum_k v[vo + k] * R_d[j, k] for j in [j0, j1). */
static void emit_recurrent(rnn_lower *L, int d, LLVMValueRef v, LLVMValueRef vo, int64_t j0,
                           int64_t j1)
{
    cg_fn *f = L->f;
    int64_t H = L->H, GH = L->GH;
    cg_loop lj;
    LLVMValueRef j = cg_add(f, cg_loop_begin(f, &lj, j1 - j0), cg_i64c(f, j0));
    LLVMValueRef rb = L->bias ? cg_add(f, cg_i64c(f, d * 2 * GH + GH), j) : NULL;
    LLVMValueRef s = emit_dot(f, L->r, cg_madd(f, j, H, cg_i64c(f, d * GH * H)), v, vo, H,
                              load_or0(f, L->bias, rb));
    cg_store(f, f->f32, L->gh, j, s);
    cg_loop_end(f, &lj);
}

/* The offset (elements) of (t, b) rows: X and GX rows, Y rows, states. */
static LLVMValueRef row_of(rnn_lower *L, LLVMValueRef t, LLVMValueRef b)
{
    cg_fn *f = L->f;
    return L->p.layout ? cg_madd(f, b, L->S, t) : cg_madd(f, t, L->B, b);
}
static LLVMValueRef y_row(rnn_lower *L, LLVMValueRef t, int d, LLVMValueRef b)
{
    cg_fn *f = L->f;
    int64_t D = L->p.dirs;
    LLVMValueRef r = L->p.layout ? cg_add(f, cg_mul(f, cg_madd(f, b, L->S, t), cg_i64c(f, D)),
                                          cg_i64c(f, d))
                                 : cg_madd(f, cg_madd(f, t, D, cg_i64c(f, d)), L->B, b);
    return cg_mul(f, r, cg_i64c(f, L->H));
}
static LLVMValueRef state_row(rnn_lower *L, int d, LLVMValueRef b)
{
    cg_fn *f = L->f;
    LLVMValueRef r = L->p.layout ? cg_madd(f, b, L->p.dirs, cg_i64c(f, d))
                                 : cg_madd(f, cg_i64c(f, d), L->B, b);
    return cg_mul(f, r, cg_i64c(f, L->H));
}

/* The gate math of one step over the H units of batch row b (state
 * offset so = b*H in the workspace), writing h, c and Y's row yo. */
static void emit_units(rnn_lower *L, int d, LLVMValueRef gxo, LLVMValueRef so, LLVMValueRef yo)
{
    cg_fn *f = L->f;
    int64_t H = L->H;
    LLVMValueRef one = cg_f32c(f, 1);
    cg_loop lj;
    LLVMValueRef j = cg_loop_begin(f, &lj, H);
    /* pre-activation of gate g at unit j */
#define PRE(g) r_add(f, cg_load(f, f->f32, L->gx, cg_add(f, gxo, cg_madd(f, cg_i64c(f, g), H, j))), \
                    cg_load(f, f->f32, L->gh, cg_madd(f, cg_i64c(f, g), H, j)))
    LLVMValueRef hi = cg_add(f, so, j), hnew;
    LLVMValueRef hprev = cg_load(f, f->f32, L->hs, hi);
    if (L->n->op == IR_OP_RNN) {
        hnew = gate(L, d, 0, PRE(0));
    } else if (L->n->op == IR_OP_GRU) {
        LLVMValueRef z = gate(L, d, 0, PRE(0)), r = gate(L, d, 0, PRE(1));
        LLVMValueRef pre;
        if (L->p.linear_before_reset) {
            LLVMValueRef xh = cg_load(f, f->f32, L->gx, cg_add(f, gxo, cg_madd(f, cg_i64c(f, 2), H, j)));
            pre = r_add(f, xh, r_mul(f, r, cg_load(f, f->f32, L->gh, cg_madd(f, cg_i64c(f, 2), H, j))));
        } else {
            pre = PRE(2);
        }
        LLVMValueRef nt = gate(L, d, 1, pre);
        hnew = r_add(f, r_mul(f, r_sub(f, one, z), nt), r_mul(f, z, hprev));
    } else { /* LSTM: i o f c, peepholes P[iof] */
        LLVMValueRef cprev = cg_load(f, f->f32, L->cs, hi);
        LLVMValueRef pb = cg_i64c(f, d * 3 * H);
#define PEEP(k, c) (L->peep ? r_mul(f, cg_load(f, f->f32, L->peep, cg_add(f, pb, cg_madd(f, cg_i64c(f, k), H, j))), c) \
                            : cg_f32c(f, 0))
        LLVMValueRef it = gate(L, d, 0, r_add(f, PRE(0), PEEP(0, cprev)));
        LLVMValueRef ft = L->p.input_forget ? r_sub(f, one, it)
                                            : gate(L, d, 0, r_add(f, PRE(2), PEEP(2, cprev)));
        LLVMValueRef ct = gate(L, d, 1, PRE(3));
        LLVMValueRef cnew = r_add(f, r_mul(f, ft, cprev), r_mul(f, it, ct));
        cg_store(f, f->f32, L->cs, hi, cnew);
        LLVMValueRef ot = gate(L, d, 0, r_add(f, PRE(1), PEEP(1, cnew)));
        hnew = r_mul(f, ot, emit_act(f, &L->p.act[d][2], cnew));
#undef PEEP
    }
#undef PRE
    cg_store(f, f->f32, L->hs, hi, hnew);
    if (L->y)
        cg_store(f, f->f32, L->y, cg_add(f, yo, j), hnew);
    cg_loop_end(f, &lj);
}

/* if (cond) { builder left in the then-block }; rnn_endif closes it. */
static LLVMBasicBlockRef rnn_if(cg_fn *f, LLVMValueRef cond)
{
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(f->llc, f->fn, "then");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->llc, f->fn, "endif");
    LLVMBuildCondBr(f->b, cond, then, done);
    LLVMPositionBuilderAtEnd(f->b, then);
    return done;
}
static void rnn_endif(cg_fn *f, LLVMBasicBlockRef done)
{
    LLVMBuildBr(f->b, done);
    LLVMPositionBuilderAtEnd(f->b, done);
}

/* Steps of direction d for every batch row (step 2 of the file comment). */
static void emit_direction(rnn_lower *L, int d)
{
    cg_fn *f = L->f;
    int64_t H = L->H, S = L->S;
    bool back = d == 1 || L->p.reverse;
    cg_loop lb, lt, lj;
    LLVMValueRef b = cg_loop_begin(f, &lb, L->B);
    LLVMValueRef so = cg_mul(f, b, cg_i64c(f, H));
    LLVMValueRef len = cg_i64c(f, S);
    if (L->lens) { /* clamped to [0, S]: the interpreter reports the rest */
        LLVMValueRef v = LLVMBuildSExt(f->b, cg_load(f, f->i32, L->lens, b), f->i64, "");
        v = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, v, cg_i64c(f, 0), ""),
                            cg_i64c(f, 0), v, "");
        len = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, v, len, ""), len, v, "");
    }
    /* initial state */
    LLVMValueRef st = state_row(L, d, b);
    LLVMValueRef j = cg_loop_begin(f, &lj, H);
    cg_store(f, f->f32, L->hs, cg_add(f, so, j), load_or0(f, L->h0, L->h0 ? cg_add(f, st, j) : NULL));
    if (L->n->op == IR_OP_LSTM)
        cg_store(f, f->f32, L->cs, cg_add(f, so, j),
                 load_or0(f, L->c0, L->c0 ? cg_add(f, st, j) : NULL));
    cg_loop_end(f, &lj);

    LLVMValueRef step = cg_loop_begin(f, &lt, S);
    LLVMBasicBlockRef done = rnn_if(f, LLVMBuildICmp(f->b, LLVMIntSLT, step, len, ""));
    LLVMValueRef t = back ? LLVMBuildNSWSub(f->b, cg_add(f, len, cg_i64c(f, -1)), step, "") : step;
    LLVMValueRef gxo = cg_mul(f, row_of(L, t, b), cg_i64c(f, L->GH));
    if (L->n->op == IR_OP_GRU && !L->p.linear_before_reset) {
        /* z and r from H, then the h gate from r*H */
        emit_recurrent(L, d, L->hs, so, 0, 2 * H);
        j = cg_loop_begin(f, &lj, H);
        LLVMValueRef pre = r_add(f, cg_load(f, f->f32, L->gx, cg_add(f, gxo, cg_add(f, cg_i64c(f, H), j))),
                                cg_load(f, f->f32, L->gh, cg_add(f, cg_i64c(f, H), j)));
        LLVMValueRef r = gate(L, d, 0, pre);
        cg_store(f, f->f32, L->rh, j, r_mul(f, r, cg_load(f, f->f32, L->hs, cg_add(f, so, j))));
        cg_loop_end(f, &lj);
        emit_recurrent(L, d, L->rh, cg_i64c(f, 0), 2 * H, 3 * H);
    } else {
        emit_recurrent(L, d, L->hs, so, 0, L->GH);
    }
    emit_units(L, d, gxo, so, L->y ? y_row(L, t, d, b) : NULL);
    rnn_endif(f, done);
    cg_loop_end(f, &lt);

    /* final state */
    j = cg_loop_begin(f, &lj, H);
    if (L->yh)
        cg_store(f, f->f32, L->yh, cg_add(f, st, j), cg_load(f, f->f32, L->hs, cg_add(f, so, j)));
    if (L->yc)
        cg_store(f, f->f32, L->yc, cg_add(f, st, j), cg_load(f, f->f32, L->cs, cg_add(f, so, j)));
    cg_loop_end(f, &lj);
    cg_loop_end(f, &lb);
}

static uint64_t align_up(uint64_t v)
{
    return (v + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
}

oct_status cg_lower_rnn(cg_fn *f, const ir_node *n)
{
    rnn_lower L;
    memset(&L, 0, sizeof L);
    L.f = f;
    L.n = n;
    oct_status st = ops_rnn_plan_of(f->ctx, n, &L.p);
    if (st)
        return st;
    cg_tensor *in[8] = {0}, *out[3] = {0};
    for (int i = 0; i < n->n_in && i < 8; i++)
        in[i] = cg_in(f, n, i);
    for (int o = 0; o < n->n_out && o < 3; o++)
        out[o] = cg_out(f, n, o);
    for (int i = 0; i < 8; i++)
        if (in[i] && i != 4 && (st = cg_need_f32(f, n, in[i], 0, i)))
            return st;
    for (int o = 0; o < 3; o++)
        if (out[o] && (st = cg_need_f32(f, n, out[o], 1, o)))
            return st;
    if (in[4] && in[4]->dtype != IR_DT_INT32)
        return oct_input_error(f->ctx, OCT_EINPUT, n, 4, "sequence_lens must be int32");
    cg_tensor *X = in[0], *W = in[1], *R = in[2];
    if (X->rank != 3 || W->rank != 3 || R->rank != 3)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: X, W and R must have rank 3");
    L.S = X->dims[L.p.layout ? 1 : 0];
    L.B = X->dims[L.p.layout ? 0 : 1];
    L.I = X->dims[2];
    L.H = R->dims[2];
    L.G = L.p.gates;
    L.GH = L.G * L.H;
    if (W->dims[1] != L.GH || W->dims[2] != L.I || R->dims[1] != L.GH)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: W or R does not match X and hidden_size");
    LLVMValueRef *ptr[11] = {&L.x, &L.w, &L.r, &L.bias, &L.lens, &L.h0, &L.c0, &L.peep};
    for (int i = 0; i < 8; i++)
        if (in[i] && (n->op == IR_OP_LSTM || i < 6))
            *ptr[i] = cg_ptr(f, in[i]);
    L.y = out[0] ? cg_ptr(f, out[0]) : NULL;
    L.yh = out[1] ? cg_ptr(f, out[1]) : NULL;
    L.yc = out[2] && n->op == IR_OP_LSTM ? cg_ptr(f, out[2]) : NULL;

    /* the kernel's GEMM when W is a constant float32 and the target has it */
    bool kernel = cg_kernels_available(f) && W->value && W->value->init &&
                  W->value->init->dtype == IR_DT_FLOAT && L.S * L.B > 0 && L.I > 0;
    uint64_t work = 0;
    if (kernel) {
        octk_sgemm a;
        memset(&a, 0, sizeof a);
        a.M = L.S * L.B;
        a.N = L.GH;
        a.K = L.I;
        a.lda = L.I;
        a.ldy = L.GH;
        work = align_up(octk_sgemm_work_size(&a));
    }
    uint64_t fl = sizeof(float);
    uint64_t o_gx = work, o_gh = o_gx + align_up((uint64_t)(L.S * L.B * L.GH) * fl);
    uint64_t o_h = o_gh + align_up((uint64_t)L.GH * fl), o_c = o_h + align_up((uint64_t)(L.B * L.H) * fl);
    uint64_t o_rh = o_c + align_up((uint64_t)(L.B * L.H) * fl), total = o_rh + align_up((uint64_t)L.H * fl);
    LLVMValueRef base = cg_workspace(f, total);
    L.gx = cg_gep(f, f->i8, base, cg_i64c(f, (int64_t)o_gx));
    L.gh = cg_gep(f, f->i8, base, cg_i64c(f, (int64_t)o_gh));
    L.hs = cg_gep(f, f->i8, base, cg_i64c(f, (int64_t)o_h));
    L.cs = cg_gep(f, f->i8, base, cg_i64c(f, (int64_t)o_c));
    L.rh = cg_gep(f, f->i8, base, cg_i64c(f, (int64_t)o_rh));

    if (L.y) { /* rows past each sequence length stay 0 */
        cg_loop lz;
        LLVMValueRef i = cg_loop_begin(f, &lz, (int64_t)out[0]->nelems);
        cg_store(f, f->f32, L.y, i, cg_f32c(f, 0));
        cg_loop_end(f, &lz);
    }
    for (int d = 0; d < L.p.dirs; d++) {
        if ((st = emit_projection(&L, d, W, kernel, work)))
            return st;
        emit_direction(&L, d);
    }
    cg_report(f, n, kernel ? "octk_sgemm + loops" : "loops",
              kernel ? "f32 FMA input projection, recurrent loops" : "f32 loops");
    return OCT_OK;
}
