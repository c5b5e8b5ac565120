/*
 * lower_rnn.c: float32 RNN, GRU and LSTM, the equations of src/ref/rnn.c
 * (the plan, ops_rnn_plan_of, is shared).  For each direction:
 *   1. the input projection of every time step at once,
 *      GX[rows, G*H] = X[rows, I] . W_d^T + Wb_d (rows = S*B in X's own
 *      row order, so layout 1 needs no transpose): one call of the kernel
 *      library's GEMM on W_d^T packed at compile time when W is a constant
 *      and the target has the kernels, else loops of dot products;
 *   2. a loop over the steps: the recurrent product of every batch row,
 *      GH[B, G*H] = H[B, H] . R_d^T + Rb_d, as one kernel GEMM on R_d^T
 *      packed at compile time (M = B; GRU without linear_before_reset in
 *      two: z and r, then the h gate from r*H) when R is a constant, else
 *      dot products over contiguous rows of R; then, for each row b whose
 *      sequence_lens[b] the step has not reached (time t = step, or
 *      len-1-step in reverse), one loop over the H units with the gate
 *      math fused (clip, activations, peepholes, the cell and hidden
 *      update), writing the state in place and the step's row of Y.
 * Y is zeroed first (its rows past each length stay 0); Y_h and Y_c get
 * the final state (0 for an empty sequence, as the interpreter).  The workspace holds the GEMMs' own scratch, GX (S*B*G*H
 * floats), GH (B*G*H) and the states H, C and GRU's r*H (B*H each).
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
    bool rkernel;        /* R constant: the recurrent products on the GEMM kernel */
    uint64_t work;       /* bytes of the kernel's own workspace (at offset 0) */
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

/* The kernel GEMM y[m, n] = a[m, :] . b(:, n) (+ bias[n]) for M rows of K,
 * N columns, b(k, n) = w[k*stride_k + n*stride_n] packed at compile time. */
static oct_status emit_sgemm(rnn_lower *L, int64_t M, int64_t N, int64_t K, LLVMValueRef a,
                             LLVMValueRef y, int64_t ldy, const float *w, int64_t stride_k,
                             int64_t stride_n, LLVMValueRef bias)
{
    cg_fn *f = L->f;
    octk_sgemm g;
    memset(&g, 0, sizeof g);
    g.M = M;
    g.N = N;
    g.K = K;
    g.lda = K;
    g.ldy = ldy;
    g.y_lo = -INFINITY;
    g.y_hi = INFINITY;
    size_t psize = octk_sgemm_packed_b_size(K, N);
    float *packed = ir_alloc_array(f->ctx, 1, psize);
    if (!packed)
        return OCT_EINTERNAL;
    octk_sgemm_pack_b(packed, w, 1.0f, K, N, stride_k, stride_n);
    cg_kptr ptrs[5] = {{offsetof(octk_sgemm, a), a},
                       {offsetof(octk_sgemm, y), y},
                       {offsetof(octk_sgemm, b), cg_weight_data(f, packed, psize, NULL)},
                       {offsetof(octk_sgemm, bias), bias ? bias : LLVMConstPointerNull(f->ptr)},
                       {offsetof(octk_sgemm, work), cg_workspace(f, L->work)}};
    cg_kernel_call(f, "sgemm", &g, sizeof g, ptrs, 5);
    return OCT_OK;
}

/* GH[b, j] = Rb_d[j] + sum_k v[b*H + k] * R_d[j, k] for every batch row b
 * and j in [j0, j1): one kernel GEMM (M = B) on the packed rows of R_d, or
 * loops of dot products when R is not a constant. */
static oct_status emit_recurrent(rnn_lower *L, int d, LLVMValueRef v, int64_t j0, int64_t j1)
{
    cg_fn *f = L->f;
    int64_t H = L->H, GH = L->GH;
    if (L->rkernel) {
        const float *r = (const float *)L->n->in[2]->init->data + d * GH * H + j0 * H;
        LLVMValueRef bias = L->bias ? cg_gep(f, f->f32, L->bias, cg_i64c(f, d * 2 * GH + GH + j0))
                                    : NULL;
        return emit_sgemm(L, L->B, j1 - j0, H, v, cg_gep(f, f->f32, L->gh, cg_i64c(f, j0)), GH, r,
                          1, H, bias);
    }
    cg_loop lb, lj;
    LLVMValueRef b = cg_loop_begin(f, &lb, L->B);
    LLVMValueRef j = cg_add(f, cg_loop_begin(f, &lj, j1 - j0), cg_i64c(f, j0));
    LLVMValueRef rb = L->bias ? cg_add(f, cg_i64c(f, d * 2 * GH + GH), j) : NULL;
    LLVMValueRef s = emit_dot(f, L->r, cg_madd(f, j, H, cg_i64c(f, d * GH * H)), v,
                              cg_mul(f, b, cg_i64c(f, H)), H, load_or0(f, L->bias, rb));
    cg_store(f, f->f32, L->gh, cg_madd(f, b, GH, j), s);
    cg_loop_end(f, &lj);
    cg_loop_end(f, &lb);
    return OCT_OK;
}

/* GX = X . W_d^T + Wb_d for every row of X (step 1 of the file comment). */
static oct_status emit_projection(rnn_lower *L, int d, bool kernel)
{
    cg_fn *f = L->f;
    int64_t rows = L->S * L->B, I = L->I, GH = L->GH;
    if (kernel) /* b(k, n) = W_d[n, k] */
        return emit_sgemm(L, rows, GH, I, L->x, L->gx, GH,
                          (const float *)L->n->in[1]->init->data + d * GH * I, 1, I,
                          L->bias ? cg_gep(f, f->f32, L->bias, cg_i64c(f, d * 2 * GH)) : NULL);
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

/* GX[gxo + g*H + j] (+ GH[gho + g*H + j] with rec): gate g's pre-activation
 * parts at unit j. */
static LLVMValueRef pre_of(rnn_lower *L, LLVMValueRef gxo, LLVMValueRef gho, int g, LLVMValueRef j,
                           bool rec)
{
    cg_fn *f = L->f;
    LLVMValueRef off = cg_madd(f, cg_i64c(f, g), L->H, j);
    LLVMValueRef x = cg_load(f, f->f32, L->gx, cg_add(f, gxo, off));
    return rec ? r_add(f, x, cg_load(f, f->f32, L->gh, cg_add(f, gho, off))) : x;
}

/* P_d[k*H + j] * c (LSTM's peephole k of i o f), or 0 without P. */
static LLVMValueRef peep_of(rnn_lower *L, int d, int k, LLVMValueRef j, LLVMValueRef c)
{
    cg_fn *f = L->f;
    if (!L->peep)
        return cg_f32c(f, 0);
    LLVMValueRef idx = cg_add(f, cg_i64c(f, (d * 3 + k) * L->H), j);
    return r_mul(f, cg_load(f, f->f32, L->peep, idx), c);
}

/* The gate math of one step over the H units of batch row b (state
 * offset so = b*H, GH row gho = b*G*H), writing h, c and Y's row yo. */
static void emit_units(rnn_lower *L, int d, LLVMValueRef gxo, LLVMValueRef gho, LLVMValueRef so,
                       LLVMValueRef yo)
{
    cg_fn *f = L->f;
    int64_t H = L->H;
    LLVMValueRef one = cg_f32c(f, 1);
    cg_loop lj;
    LLVMValueRef j = cg_loop_begin(f, &lj, H);
    LLVMValueRef hi = cg_add(f, so, j), hnew;
    LLVMValueRef hprev = cg_load(f, f->f32, L->hs, hi);
    if (L->n->op == IR_OP_RNN) {
        hnew = gate(L, d, 0, pre_of(L, gxo, gho, 0, j, true));
    } else if (L->n->op == IR_OP_GRU) {
        LLVMValueRef z = gate(L, d, 0, pre_of(L, gxo, gho, 0, j, true));
        LLVMValueRef r = gate(L, d, 0, pre_of(L, gxo, gho, 1, j, true));
        LLVMValueRef pre;
        if (L->p.linear_before_reset) { /* Xt.Wh^T + Wbh + r * (H.Rh^T + Rbh) */
            LLVMValueRef hrec = cg_load(f, f->f32, L->gh,
                                        cg_add(f, gho, cg_madd(f, cg_i64c(f, 2), H, j)));
            pre = r_add(f, pre_of(L, gxo, gho, 2, j, false), r_mul(f, r, hrec));
        } else { /* GH's h gate already holds (r*H).Rh^T + Rbh */
            pre = pre_of(L, gxo, gho, 2, j, true);
        }
        LLVMValueRef nt = gate(L, d, 1, pre);
        hnew = r_add(f, r_mul(f, r_sub(f, one, z), nt), r_mul(f, z, hprev));
    } else { /* LSTM: gates i o f c, peepholes P[iof] */
        LLVMValueRef cprev = cg_load(f, f->f32, L->cs, hi);
        LLVMValueRef it = gate(L, d, 0, r_add(f, pre_of(L, gxo, gho, 0, j, true),
                                              peep_of(L, d, 0, j, cprev)));
        LLVMValueRef ft = L->p.input_forget
                              ? r_sub(f, one, it)
                              : gate(L, d, 0, r_add(f, pre_of(L, gxo, gho, 2, j, true),
                                                    peep_of(L, d, 2, j, cprev)));
        LLVMValueRef ct = gate(L, d, 1, pre_of(L, gxo, gho, 3, j, true));
        LLVMValueRef cnew = r_add(f, r_mul(f, ft, cprev), r_mul(f, it, ct));
        cg_store(f, f->f32, L->cs, hi, cnew);
        LLVMValueRef ot = gate(L, d, 0, r_add(f, pre_of(L, gxo, gho, 1, j, true),
                                              peep_of(L, d, 1, j, cnew)));
        hnew = r_mul(f, ot, emit_act(f, &L->p.act[d][2], cnew));
    }
    cg_store(f, f->f32, L->hs, hi, hnew);
    if (L->y)
        cg_store(f, f->f32, L->y, cg_add(f, yo, j), hnew);
    cg_loop_end(f, &lj);
}

/* sequence_lens[b] clamped to [0, S] (the interpreter reports the rest),
 * or S without it. */
static LLVMValueRef emit_len(rnn_lower *L, LLVMValueRef b)
{
    cg_fn *f = L->f;
    LLVMValueRef len = cg_i64c(f, L->S);
    if (!L->lens)
        return len;
    LLVMValueRef v = LLVMBuildSExt(f->b, cg_load(f, f->i32, L->lens, b), f->i64, "");
    v = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, v, cg_i64c(f, 0), ""),
                        cg_i64c(f, 0), v, "");
    return LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, v, len, ""), len, v, "");
}

/* The time index of `step` for a row of length len: step, or len-1-step
 * going back; 0 for a step past len (whose results are not used). */
static LLVMValueRef emit_time(rnn_lower *L, bool back, LLVMValueRef step, LLVMValueRef len)
{
    cg_fn *f = L->f;
    LLVMValueRef t = back ? LLVMBuildNSWSub(f->b, cg_add(f, len, cg_i64c(f, -1)), step, "") : step;
    return LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, step, len, ""), t,
                           cg_i64c(f, 0), "");
}

/* Steps of direction d (step 2 of the file comment): per step, the
 * recurrent products of every batch row at once, then the gate math of the
 * rows whose sequence is still running. */
static oct_status emit_direction(rnn_lower *L, int d)
{
    cg_fn *f = L->f;
    int64_t H = L->H, S = L->S, GH = L->GH;
    bool back = d == 1 || L->p.reverse;
    oct_status st;
    cg_loop lb, lt, lj;
    /* initial state */
    LLVMValueRef b = cg_loop_begin(f, &lb, L->B);
    LLVMValueRef so = cg_mul(f, b, cg_i64c(f, H)), sr = state_row(L, d, b);
    LLVMValueRef j = cg_loop_begin(f, &lj, H);
    cg_store(f, f->f32, L->hs, cg_add(f, so, j), load_or0(f, L->h0, L->h0 ? cg_add(f, sr, j) : NULL));
    if (L->n->op == IR_OP_LSTM)
        cg_store(f, f->f32, L->cs, cg_add(f, so, j),
                 load_or0(f, L->c0, L->c0 ? cg_add(f, sr, j) : NULL));
    cg_loop_end(f, &lj);
    cg_loop_end(f, &lb);

    LLVMValueRef step = cg_loop_begin(f, &lt, S);
    if (L->n->op == IR_OP_GRU && !L->p.linear_before_reset) {
        /* z and r from H, then the h gate from r*H */
        if ((st = emit_recurrent(L, d, L->hs, 0, 2 * H)))
            return st;
        b = cg_loop_begin(f, &lb, L->B);
        LLVMValueRef t = emit_time(L, back, step, emit_len(L, b));
        LLVMValueRef gxo = cg_mul(f, row_of(L, t, b), cg_i64c(f, GH));
        so = cg_mul(f, b, cg_i64c(f, H));
        j = cg_loop_begin(f, &lj, H);
        LLVMValueRef pre = r_add(f, cg_load(f, f->f32, L->gx, cg_add(f, gxo, cg_add(f, cg_i64c(f, H), j))),
                                 cg_load(f, f->f32, L->gh, cg_add(f, cg_mul(f, b, cg_i64c(f, GH)),
                                                                  cg_add(f, cg_i64c(f, H), j))));
        LLVMValueRef r = gate(L, d, 0, pre);
        cg_store(f, f->f32, L->rh, cg_add(f, so, j),
                 r_mul(f, r, cg_load(f, f->f32, L->hs, cg_add(f, so, j))));
        cg_loop_end(f, &lj);
        cg_loop_end(f, &lb);
        if ((st = emit_recurrent(L, d, L->rh, 2 * H, 3 * H)))
            return st;
    } else if ((st = emit_recurrent(L, d, L->hs, 0, GH))) {
        return st;
    }
    b = cg_loop_begin(f, &lb, L->B);
    LLVMValueRef len = emit_len(L, b);
    LLVMBasicBlockRef done = cg_if_begin(f, LLVMBuildICmp(f->b, LLVMIntSLT, step, len, ""));
    LLVMValueRef t = emit_time(L, back, step, len);
    emit_units(L, d, cg_mul(f, row_of(L, t, b), cg_i64c(f, GH)), cg_mul(f, b, cg_i64c(f, GH)),
               cg_mul(f, b, cg_i64c(f, H)), L->y ? y_row(L, t, d, b) : NULL);
    cg_if_end(f, done);
    cg_loop_end(f, &lb);
    cg_loop_end(f, &lt);

    /* final state; 0 for an empty sequence (as the interpreter) */
    b = cg_loop_begin(f, &lb, L->B);
    so = cg_mul(f, b, cg_i64c(f, H));
    sr = state_row(L, d, b);
    LLVMValueRef ran = LLVMBuildICmp(f->b, LLVMIntSGT, emit_len(L, b), cg_i64c(f, 0), "");
    j = cg_loop_begin(f, &lj, H);
    if (L->yh)
        cg_store(f, f->f32, L->yh, cg_add(f, sr, j),
                 LLVMBuildSelect(f->b, ran, cg_load(f, f->f32, L->hs, cg_add(f, so, j)),
                                 cg_f32c(f, 0), ""));
    if (L->yc)
        cg_store(f, f->f32, L->yc, cg_add(f, sr, j),
                 LLVMBuildSelect(f->b, ran, cg_load(f, f->f32, L->cs, cg_add(f, so, j)),
                                 cg_f32c(f, 0), ""));
    cg_loop_end(f, &lj);
    cg_loop_end(f, &lb);
    return OCT_OK;
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
    /* element counts every input must have (shape inference checked the
     * dims; this keeps the generated code inside its buffers regardless) */
    int64_t D = L.p.dirs, H = L.H;
    const int64_t want[8] = {-1, D * L.GH * L.I, D * L.GH * H, D * 2 * L.GH, L.B,
                             D * L.B * H, D * L.B * H, D * 3 * H};
    if (W->dims[1] != L.GH || W->dims[2] != L.I || (L.p.hidden >= 0 && L.p.hidden != H))
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: W or R does not match X and hidden_size");
    for (int i = 1; i < 8; i++)
        if (in[i] && (int64_t)in[i]->nelems != want[i])
            return oct_input_error(f->ctx, OCT_EINPUT, n, i,
                                   "compile: %lld elements, expected %lld",
                                   (long long)in[i]->nelems, (long long)want[i]);
    LLVMValueRef *ptr[8] = {&L.x, &L.w, &L.r, &L.bias, &L.lens, &L.h0, &L.c0, &L.peep};
    for (int i = 0; i < 8; i++)
        if (in[i] && (n->op == IR_OP_LSTM || i < 6))
            *ptr[i] = cg_ptr(f, in[i]);
    L.y = out[0] ? cg_ptr(f, out[0]) : NULL;
    L.yh = out[1] ? cg_ptr(f, out[1]) : NULL;
    L.yc = out[2] && n->op == IR_OP_LSTM ? cg_ptr(f, out[2]) : NULL;

    /* the kernel's GEMM for the products with a constant float32 W or R */
    bool kernels = cg_kernels_available(f) && L.S * L.B > 0 && L.I > 0;
    bool wkernel = kernels && W->value && W->value->init && W->value->init->dtype == IR_DT_FLOAT;
    L.rkernel = kernels && R->value && R->value->init && R->value->init->dtype == IR_DT_FLOAT;
    if (wkernel || L.rkernel) {
        /* the largest workspace of the GEMMs emitted below */
        const int64_t shapes[4][3] = {{L.S * L.B, L.GH, L.I}, {L.B, L.GH, L.H},
                                      {L.B, 2 * L.H, L.H}, {L.B, L.H, L.H}};
        for (int k = 0; k < 4; k++) {
            octk_sgemm a;
            memset(&a, 0, sizeof a);
            a.M = shapes[k][0];
            a.N = shapes[k][1];
            a.K = shapes[k][2];
            a.lda = a.K;
            a.ldy = L.GH;
            uint64_t w = align_up(octk_sgemm_work_size(&a));
            L.work = w > L.work ? w : L.work;
        }
    }
    uint64_t fl = sizeof(float), bh = align_up((uint64_t)(L.B * L.H) * fl);
    uint64_t o_gx = L.work, o_gh = o_gx + align_up((uint64_t)(L.S * L.B * L.GH) * fl);
    uint64_t o_h = o_gh + align_up((uint64_t)(L.B * L.GH) * fl), o_c = o_h + bh;
    uint64_t o_rh = o_c + bh, total = o_rh + bh;
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
    for (int d = 0; d < L.p.dirs; d++)
        if ((st = emit_projection(&L, d, wkernel)) || (st = emit_direction(&L, d)))
            return st;
    cg_report(f, n, wkernel || L.rkernel ? "octk_sgemm + loops" : "loops",
              wkernel && L.rkernel ? "f32 FMA input projection and recurrent GEMMs"
              : wkernel           ? "f32 FMA input projection, recurrent dot products"
              : L.rkernel         ? "input projection dot products, f32 FMA recurrent GEMMs"
                                  : "f32 loops");
    return OCT_OK;
}
