/*
 * lower_attention.c: the opset-23 transformer ops RotaryEmbedding and
 * Attention (float32 Attention on the kernel library, below; the rest)
 * as plain loops on float tensors (float32, double, float16 and
 * bfloat16 through lower_elem.h's exact loads and ops_set's rounding;
 * arithmetic in double) (RMSNormalization is in
 * lower_stats.c), with the geometry the interpreter uses (src/ops/rules.h)
 * and its arithmetic, so the results agree within the float tolerance:
 *
 * RotaryEmbedding: per (b, s) the cache row (position_ids[b, s], clamped
 * to the caches as every compiled index is, or b * S + s), per head the
 * rotated pairs y1 = cos x1 - sin x2, y2 = sin x1 + cos x2 in double, then
 * the unrotated tail copied.
 *
 * Attention in float32 (Q, K, V, past and Y float32, no qk_matmul_output,
 * softmax_precision not double) runs on the kernel library: per batch and
 * kv head, K^T (and V with a past) gathered into the workspace (not K^T
 * for at most ATTN_DIRECT_ROWS query rows, a decode step: direct_scores
 * then reads the key rows in place); for the
 * kv head's query heads at once the scores by octk_sgemm, softcap and
 * bias, octk_ssoftmax, P V by octk_sgemm; causal prefill in blocks of
 * query rows, each on the keys up to its frontier, and so (on every key)
 * any node whose group's scores would pass 16 MiB of workspace
 * (attn_f32_batch below; float32 sums, within the float tolerance).
 *
 * Attention otherwise, per (b, query head h, query i), as src/ref/attention.c:
 * scores against every key j (past first, then new; kv head h / (Hq /
 * Hkv)) as a dot product of q * s and k * s rounded to Q's type,
 * accumulated in double (reassociated) and rounded to Q's type; softcap
 * c * tanh(x / c);
 * the bias (causal, window, nonpad_kv_seqlen, boolean or additive mask
 * broadcast and padded as rules.h says) computed from the indices; the
 * softmax in double with the maximum first; zero rows where the bias is
 * -inf everywhere; probabilities rounded to Q's type; Y = P V accumulated
 * in double, V row by row into a row of sums.  The scores, bias and
 * probabilities of a row, its sums and its scaled query live in the
 * node's workspace (3 x total + Dv + Dk doubles).  present_key / present_value copy the
 * past and the new keys and values.  Other element types (and a past of
 * another type than K / V) are refused with a diagnostic naming the
 * tensor.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "codegen/kernels/octk.h"
#include "codegen/lower_elem.h"
#include "ops/rules.h"

static LLVMValueRef f64c(cg_fn *f, double v)
{
    return LLVMConstReal(f->f64, v);
}

/* Element idx of a float tensor of type dt as a double, and the store of
 * a double rounded to dt (lower_elem.h: float16 and bfloat16 through
 * float32, as ops_set). */
static LLVMValueRef ldv(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMValueRef v = cg_val_load(f, dt, base, idx);
    if (cg_val_class(dt) == CG_V_INT)
        return LLVMBuildSIToFP(f->b, v, f->f64, "");
    return dt == IR_DT_FLOAT ? LLVMBuildFPExt(f->b, v, f->f64, "") : v;
}

static void stv(cg_fn *f, ir_dtype dt, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v)
{
    cg_val_store(f, dt, base, idx, dt == IR_DT_FLOAT ? LLVMBuildFPTrunc(f->b, v, f->f32, "") : v,
                 true);
}

/* v rounded to dt (the interpreter's rnd). */
static LLVMValueRef rnd(cg_fn *f, ir_dtype dt, LLVMValueRef v)
{
    return cg_val_round(f, dt, v);
}

static LLVMValueRef tanh_f64(cg_fn *f, LLVMValueRef x)
{
    LLVMTypeRef fty = LLVMFunctionType(f->f64, &f->f64, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, "tanh");
    if (!fn)
        fn = LLVMAddFunction(f->mod, "tanh", fty);
    return LLVMBuildCall2(f->b, fty, fn, &x, 1, "");
}

static void shapes_of(cg_fn *f, const ir_node *n, ops_shape *in, int max)
{
    for (int i = 0; i < max; i++) {
        const cg_tensor *t = i < n->n_in ? cg_in(f, n, i) : NULL;
        in[i].rank = -1;
        in[i].dtype = IR_DT_UNDEFINED;
        if (!t)
            continue;
        in[i].dtype = t->dtype;
        in[i].rank = t->rank;
        for (int d = 0; d < t->rank; d++)
            in[i].dims[d] = t->dims[d];
    }
}

/* Float32, double, float16 or bfloat16; else a diagnostic naming t. */
static oct_status need_float(cg_fn *f, const ir_node *n, const cg_tensor *t, bool out, int i)
{
    if (!t || t->dtype == IR_DT_FLOAT || t->dtype == IR_DT_DOUBLE || t->dtype == IR_DT_FLOAT16 ||
        t->dtype == IR_DT_BFLOAT16)
        return OCT_OK;
    oct_diagf(f->ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, n, out, i, t->value->name,
              "compile: %s of %s is not supported (float types only)", n->op_type,
              ir_dtype_name(t->dtype));
    return OCT_EUNSUPPORTED;
}

/* ---- RotaryEmbedding ----------------------------------------------------- */

oct_status cg_lower_rotary(cg_fn *f, const ir_node *n)
{
    ops_shape in[4];
    shapes_of(f, n, in, 4);
    ops_rotary_geom g;
    oct_status st = ops_rotary_geometry(f->ctx, n, in, n->n_in, &g);
    if (st)
        return st;
    for (int i = 0; i < 3; i++)
        if ((st = need_float(f, n, cg_in(f, n, i), false, i)))
            return st;
    if ((st = need_float(f, n, cg_out(f, n, 0), true, 0)))
        return st;
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    cg_tensor *P = g.has_pos ? cg_in(f, n, 3) : NULL;
    if (!X->nelems)
        return OCT_OK;
    ir_dtype xt = X->dtype, yt = Y->dtype, ct = cg_in(f, n, 1)->dtype, st_ = cg_in(f, n, 2)->dtype;
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    LLVMValueRef pc = cg_ptr(f, cg_in(f, n, 1)), ps = cg_ptr(f, cg_in(f, n, 2));
    LLVMValueRef pp = P ? cg_ptr(f, P) : NULL;
    int64_t half = g.rot / 2;
    cg_loop lb, ls, lh, lk, ld;
    LLVMValueRef b = cg_loop_begin(f, &lb, g.batch);
    LLVMValueRef s = cg_loop_begin(f, &ls, g.seq);
    LLVMValueRef bs = cg_madd(f, b, g.seq, s);
    LLVMValueRef row = P ? cg_load_index(f, P, pp, bs, g.max_pos) : bs;
    LLVMValueRef crow = cg_mul(f, row, cg_i64c(f, half));
    LLVMValueRef h = cg_loop_begin(f, &lh, g.heads);
    LLVMValueRef head = g.rank3 ? cg_madd(f, bs, g.heads, h)
                                : cg_madd(f, cg_madd(f, b, g.heads, h), g.seq, s);
    LLVMValueRef base = cg_mul(f, head, cg_i64c(f, g.head));
    if (half) {
        LLVMValueRef k = cg_loop_begin(f, &lk, half);
        LLVMValueRef c = ldv(f, ct, pc, cg_add(f, crow, k)), sn = ldv(f, st_, ps, cg_add(f, crow, k));
        LLVMValueRef i1 = g.interleaved ? cg_madd(f, k, 2, base) : cg_add(f, base, k);
        LLVMValueRef i2 = g.interleaved ? cg_add(f, i1, cg_i64c(f, 1))
                                        : cg_add(f, i1, cg_i64c(f, half));
        LLVMValueRef x1 = ldv(f, xt, px, i1), x2 = ldv(f, xt, px, i2);
        stv(f, yt, py, i1, LLVMBuildFSub(f->b, LLVMBuildFMul(f->b, c, x1, ""),
                                      LLVMBuildFMul(f->b, sn, x2, ""), ""));
        stv(f, yt, py, i2, LLVMBuildFAdd(f->b, LLVMBuildFMul(f->b, sn, x1, ""),
                                      LLVMBuildFMul(f->b, c, x2, ""), ""));
        cg_loop_end(f, &lk);
    }
    if (g.head > g.rot) {
        LLVMValueRef d = cg_loop_begin(f, &ld, g.head - g.rot);
        LLVMValueRef at = cg_add(f, base, cg_add(f, d, cg_i64c(f, g.rot)));
        stv(f, yt, py, at, ldv(f, xt, px, at));
        cg_loop_end(f, &ld);
    }
    cg_loop_end(f, &lh);
    cg_loop_end(f, &ls);
    cg_loop_end(f, &lb);
    return OCT_OK;
}

/* ---- Attention ----------------------------------------------------------- */

/* Index of element (b, head, j, 0) of a Q/K/V-like tensor (rules.h
 * layout); the head's elements are contiguous in both layouts. */
static LLVMValueRef row_at(cg_fn *f, bool rank3, int64_t heads, int64_t seq, int64_t hs,
                           LLVMValueRef b, LLVMValueRef head, LLVMValueRef j)
{
    LLVMValueRef r = rank3 ? cg_madd(f, cg_madd(f, b, seq, j), heads, head)
                           : cg_madd(f, cg_madd(f, b, heads, head), seq, j);
    return cg_mul(f, r, cg_i64c(f, hs));
}

/* Pointer and index of row (b, kvh, j) of the keys or values after the
 * past (j counts the past first). */
static void kv_row(cg_fn *f, const ops_attn_geom *g, LLVMValueRef past, LLVMValueRef now,
                   int64_t hs, LLVMValueRef b, LLVMValueRef kvh, LLVMValueRef j,
                   LLVMValueRef *ptr, LLVMValueRef *idx)
{
    LLVMValueRef jn = cg_add(f, j, cg_i64c(f, -g->past));
    *ptr = now;
    *idx = row_at(f, g->rank3, g->kv_heads, g->kv_seq, hs, b, kvh, jn);
    if (!g->has_past)
        return;
    LLVMValueRef in_past = LLVMBuildICmp(f->b, LLVMIntSLT, j, cg_i64c(f, g->past), "");
    LLVMValueRef pidx = row_at(f, false, g->kv_heads, g->past, hs, b, kvh, j);
    *ptr = LLVMBuildSelect(f->b, in_past, past, now, "");
    *idx = LLVMBuildSelect(f->b, in_past, pidx, *idx, "");
}

static LLVMValueRef and1(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildAnd(f->b, a, b, "");
}

/* The bias of (b, h, i, j) as a double (rules.h). */
static LLVMValueRef bias_at(cg_fn *f, const ops_attn_geom *g, const cg_tensor *M,
                            LLVMValueRef pm, LLVMValueRef nonpad, LLVMValueRef offset,
                            LLVMValueRef b, LLVMValueRef h, LLVMValueRef i, LLVMValueRef j)
{
    LLVMValueRef ok = LLVMConstInt(f->i1, 1, 0), val = f64c(f, 0);
    LLVMValueRef frontier = cg_add(f, i, offset);
    if (g->causal)
        ok = and1(f, ok, LLVMBuildICmp(f->b, LLVMIntSLE, j, frontier, ""));
    LLVMValueRef diff = LLVMBuildSub(f->b, frontier, j, "");
    if (g->left >= 0)
        ok = and1(f, ok, LLVMBuildICmp(f->b, LLVMIntSLE, diff, cg_i64c(f, g->left), ""));
    if (g->right >= 0)
        ok = and1(f, ok, LLVMBuildICmp(f->b, LLVMIntSGE, diff, cg_i64c(f, -g->right), ""));
    if (g->has_nonpad)
        ok = and1(f, ok, LLVMBuildICmp(f->b, LLVMIntSLT, j, nonpad, ""));
    if (M) {
        int64_t last = g->mask_dims[g->mask_rank - 1];
        LLVMValueRef inside = LLVMBuildICmp(f->b, LLVMIntSLT, j, cg_i64c(f, last), "");
        /* j clamped into the mask so the load stays inside it */
        LLVMValueRef jc = LLVMBuildSelect(f->b, inside, j, cg_i64c(f, last ? last - 1 : 0), "");
        LLVMValueRef coord[4] = {b, h, i, jc}, idx = cg_i64c(f, 0);
        for (int d = 0; d < g->mask_rank; d++) {
            int64_t nd = g->mask_dims[d];
            idx = cg_mul(f, idx, cg_i64c(f, nd));
            if (nd != 1)
                idx = cg_add(f, idx, coord[4 - g->mask_rank + d]);
        }
        ok = and1(f, ok, inside);
        if (last) {
            if (M->dtype == IR_DT_BOOL)
                ok = and1(f, ok, LLVMBuildICmp(f->b, LLVMIntNE, cg_load(f, f->i8, pm, idx),
                                               LLVMConstInt(f->i8, 0, 0), ""));
            else
                val = ldv(f, M->dtype, pm, idx);
        }
    }
    return LLVMBuildSelect(f->b, ok, val, f64c(f, -INFINITY), "");
}

/* ---- Attention, float32 on the kernel library ----------------------------- */

/* True when the node can take the float32 path below: the kernel library,
 * float32 Q, K, V, past and Y, no qk_matmul_output, softmax_precision not
 * double, non-empty heads.  Other nodes keep the double loops. */
static bool attn_f32_ok(cg_fn *f, const ir_node *n, const ops_attn_geom *g)
{
    if (!cg_kernels_available(f) || g->qk_size <= 0 || g->v_size <= 0 || g->total <= 0 ||
        g->q_seq <= 0)
        return false;
    for (int i = 0; i < 6; i++)
        if (i != 3 && i < n->n_in && cg_in(f, n, i) && cg_in(f, n, i)->dtype != IR_DT_FLOAT)
            return false;
    const cg_tensor *Y = cg_out(f, n, 0), *YQK = cg_out(f, n, 3);
    if (!Y || Y->dtype != IR_DT_FLOAT || !Y->nelems || (YQK && YQK->nelems))
        return false;
    if (ir_attr_int(n, "softmax_precision", IR_DT_FLOAT) == IR_DT_DOUBLE)
        return false; /* float16 / bfloat16 precision: float32 is more */
    return true;
}

enum {
    ATTN_BLOCK = 32,                 /* query rows per block */
    ATTN_MAX_BLOCKS = 16,            /* blocks emitted per head at most */
    ATTN_GROUP_MAX_SCORES = 1 << 22, /* scores of the group path at most (16 MiB) */
};

/* True when the causal frontier i + past is known at compile time. */
static bool attn_causal_const(const ops_attn_geom *g)
{
    return g->causal && !g->has_nonpad;
}

/* Rows per block of the block path, or 0 for the group path.  Blocks when
 * the frontier is known and there are at least two blocks of query rows
 * (row i sees keys j <= i + past only, so a block of rows [m0, m1) needs
 * the first min(T, m1 + past) keys), or when the group's scores would
 * exceed ATTN_GROUP_MAX_SCORES floats (the workspace then holds one
 * block's scores: blk x T). */
static int64_t attn_block(const ops_attn_geom *g)
{
    int64_t rows = g->q_heads / g->kv_heads * g->q_seq;
    if (!(attn_causal_const(g) && g->q_seq >= 2 * ATTN_BLOCK) &&
        rows * g->total <= ATTN_GROUP_MAX_SCORES)
        return 0;
    int64_t blk = g->q_seq < ATTN_BLOCK ? g->q_seq : ATTN_BLOCK;
    if ((g->q_seq + blk - 1) / blk > ATTN_MAX_BLOCKS)
        blk = (g->q_seq + ATTN_MAX_BLOCKS - 1) / ATTN_MAX_BLOCKS;
    return blk;
}

/* Bytes of the float32 path's workspace: K^T of one kv head (Dk x T, both
 * factors of the scale applied), its V rows (T x Dv, only with a past),
 * the scaled query rows of its group of query heads (G Sq x Dk), their
 * scores / probabilities (G Sq x T; blk x T in the block path) and row
 * maxima (G Sq; blk). */
static uint64_t attn_f32_work(const ops_attn_geom *g)
{
    int64_t T = g->total, rows = g->q_heads / g->kv_heads * g->q_seq, blk = attn_block(g);
    int64_t srows = blk ? blk : rows;
    return (uint64_t)(g->qk_size * T + (g->has_past ? T * g->v_size : 0) + rows * g->qk_size +
                      srows * T + srows) * sizeof(float);
}

/* One octk_sgemm call: y[M][N] (row stride ldy) = a[M][K] (row stride
 * lda) times the run-time row-major b[K][N] (row stride ldb). */
static void sgemm_rt(cg_fn *f, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                     int64_t ldy, LLVMValueRef a, LLVMValueRef b, LLVMValueRef y)
{
    octk_sgemm k;
    memset(&k, 0, sizeof k);
    k.M = M;
    k.N = N;
    k.K = K;
    k.lda = lda;
    k.ldb = ldb;
    k.ldy = ldy;
    k.y_lo = -INFINITY;
    k.y_hi = INFINITY;
    LLVMValueRef null = LLVMConstPointerNull(f->ptr);
    cg_kptr ptrs[5] = {{offsetof(octk_sgemm, a), a},
                       {offsetof(octk_sgemm, y), y},
                       {offsetof(octk_sgemm, b), b},
                       {offsetof(octk_sgemm, bias), null},
                       {offsetof(octk_sgemm, work), null}};
    cg_kernel_call(f, "sgemm", &k, sizeof k, ptrs, 5);
}

/* A score s (float32) after the softcap (rounded to float32) plus the
 * bias bj (double), rounded to float32. */
static LLVMValueRef capped_biased(cg_fn *f, const ops_attn_geom *g, LLVMValueRef sf,
                                  LLVMValueRef bj)
{
    LLVMValueRef s = LLVMBuildFPExt(f->b, sf, f->f64, "");
    if (g->softcap > 0)
        s = rnd(f, IR_DT_FLOAT,
                LLVMBuildFMul(f->b, f64c(f, g->softcap),
                              tanh_f64(f, LLVMBuildFDiv(f->b, s, f64c(f, g->softcap), "")), ""));
    return LLVMBuildFPTrunc(f->b, LLVMBuildFAdd(f->b, s, bj, ""), f->f32, "");
}


/* Softcap and bias (capped_biased, bias_at) for the cols scores of query
 * row i of head h at s[at0 ...], in place; returns the row's maximum. */
static LLVMValueRef bias_row(cg_fn *f, const ops_attn_geom *g, const cg_tensor *M,
                             LLVMValueRef pm, LLVMValueRef nonpad, LLVMValueRef offset,
                             LLVMValueRef b, LLVMValueRef h, LLVMValueRef i, LLVMValueRef s,
                             LLVMValueRef at0, int64_t cols)
{
    LLVMValueRef fninf = LLVMConstReal(f->f32, -INFINITY);
    cg_loop lj;
    cg_acc amx;
    LLVMValueRef j = cg_loop_begin(f, &lj, cols);
    LLVMValueRef mx = cg_acc_begin(f, &lj, &amx, fninf);
    LLVMValueRef at = cg_add(f, at0, j);
    LLVMValueRef x = capped_biased(f, g, cg_load(f, f->f32, s, at),
                                   bias_at(f, g, M, pm, nonpad, offset, b, h, i, j));
    cg_store(f, f->f32, s, at, x);
    LLVMValueRef mx_args[2] = {mx, x};
    cg_acc_end(f, &amx, cg_intrinsic(f, "llvm.maximum", f->f32, mx_args, 2));
    cg_loop_end(f, &lj);
    return cg_acc_result(f, &lj, &amx, fninf);
}

/* Softmax over each of the rows x cols scores at s (octk_ssoftmax), then
 * a row whose every key is closed (its maximum in rowmax is -inf) zeroed. */
static void softmax_rows(cg_fn *f, LLVMValueRef s, LLVMValueRef rowmax, int64_t rows,
                         int64_t cols)
{
    octk_ssoftmax sm = {.rows = rows, .cols = cols, .log = 0};
    cg_kptr sptrs[2] = {{offsetof(octk_ssoftmax, x), s}, {offsetof(octk_ssoftmax, y), s}};
    cg_kernel_call(f, "ssoftmax", &sm, sizeof sm, sptrs, 2);
    cg_loop li, lj;
    LLVMValueRef r = cg_loop_begin(f, &li, rows);
    LLVMValueRef dead = LLVMBuildFCmp(f->b, LLVMRealOEQ, cg_load(f, f->f32, rowmax, r),
                                      LLVMConstReal(f->f32, -INFINITY), "");
    LLVMValueRef at = cg_madd(f, r, cols, cg_loop_begin(f, &lj, cols));
    cg_store(f, f->f32, s, at,
             LLVMBuildSelect(f->b, dead, LLVMConstReal(f->f32, 0), cg_load(f, f->f32, s, at), ""));
    cg_loop_end(f, &lj);
    cg_loop_end(f, &li);
}

/* The block path for kv head kvh of batch b (attn_f32_batch has gathered
 * kt and v0 and the group's scaled query rows qs): per block of blk query
 * rows, per query head of the group, the same steps as the group path on
 * the block's first Nb keys: min(T, m1 + past) with a constant causal
 * frontier (the others are closed by the causal bias, so their
 * probabilities are 0), else T, the block's scores compact (row stride
 * Nb) in sc.  Same numbers as the group path up to the order of the
 * sums. */
static void attn_f32_blocks(cg_fn *f, const ops_attn_geom *g, const cg_tensor *M,
                            LLVMValueRef pm, LLVMValueRef py, LLVMValueRef b,
                            LLVMValueRef nonpad, LLVMValueRef offset, LLVMValueRef kvh,
                            LLVMValueRef kt, LLVMValueRef v0, int64_t ldv_, LLVMValueRef qs,
                            LLVMValueRef sc, LLVMValueRef rowmax, int64_t blk)
{
    int64_t T = g->total, Dk = g->qk_size, Dv = g->v_size, Sq = g->q_seq;
    int64_t group = g->q_heads / g->kv_heads;
    for (int64_t m0 = 0; m0 < Sq; m0 += blk) {
        int64_t m1 = m0 + blk < Sq ? m0 + blk : Sq, mb = m1 - m0;
        int64_t nb = m1 + (g->has_past ? g->past : 0) < T ? m1 + (g->has_past ? g->past : 0) : T;
        if (!attn_causal_const(g))
            nb = T;
        cg_loop lg, li;
        LLVMValueRef gi = cg_loop_begin(f, &lg, group);
        LLVMValueRef h = cg_madd(f, kvh, group, gi);
        LLVMValueRef row0 = cg_madd(f, gi, Sq, cg_i64c(f, m0));
        LLVMValueRef qa = cg_gep(f, f->f32, qs, cg_mul(f, row0, cg_i64c(f, Dk)));
        LLVMValueRef sb = sc;
        sgemm_rt(f, mb, nb, Dk, Dk, T, nb, qa, kt, sb);
        LLVMValueRef ii = cg_loop_begin(f, &li, mb);
        LLVMValueRef i = cg_add(f, ii, cg_i64c(f, m0));
        cg_store(f, f->f32, rowmax, ii,
                 bias_row(f, g, M, pm, nonpad, offset, b, h, i, sb, cg_mul(f, ii, cg_i64c(f, nb)),
                          nb));
        cg_loop_end(f, &li);
        softmax_rows(f, sb, rowmax, mb, nb);
        LLVMValueRef y0 = cg_gep(f, f->f32, py, row_at(f, g->rank3, g->q_heads, Sq, Dv, b, h,
                                                       cg_i64c(f, m0)));
        sgemm_rt(f, mb, Dv, nb, nb, ldv_, g->rank3 ? g->q_heads * Dv : Dv, sb, v0, y0);
        cg_loop_end(f, &lg);
    }
}

/* Query rows up to which a group's scores are direct_scores' dot products. */
#define ATTN_DIRECT_ROWS 4

/* sc[r][j] = (qs[r] . k_j) s for the `rows` scaled query rows qs of kv head
 * kvh and every key j (past first), each key row read in place once per
 * query row; the dot products' sums reassociated (vectorised), as
 * octk_sgemm's are. */
static void direct_scores(cg_fn *f, const ops_attn_geom *g, LLVMValueRef ppk, LLVMValueRef pk,
                          LLVMValueRef b, LLVMValueRef kvh, int64_t rows, LLVMValueRef qs,
                          LLVMValueRef ss, LLVMValueRef sc)
{
    int64_t T = g->total, Dk = g->qk_size;
    cg_loop lr, lj, ld;
    LLVMValueRef r = cg_loop_begin(f, &lr, rows);
    LLVMValueRef q0 = cg_mul(f, r, cg_i64c(f, Dk));
    LLVMValueRef j = cg_loop_begin(f, &lj, T);
    LLVMValueRef kp, kr;
    kv_row(f, g, ppk, pk, Dk, b, kvh, j, &kp, &kr);
    LLVMValueRef d = cg_loop_begin(f, &ld, Dk);
    cg_acc acc;
    LLVMValueRef sum = cg_acc_begin(f, &ld, &acc, LLVMConstReal(f->f32, 0));
    LLVMValueRef prod = cg_fast(LLVMBuildFMul(f->b, cg_load(f, f->f32, qs, cg_add(f, q0, d)),
                                              cg_load(f, f->f32, kp, cg_add(f, kr, d)), ""));
    cg_acc_end(f, &acc, cg_fast(LLVMBuildFAdd(f->b, sum, prod, "")));
    cg_loop_end(f, &ld);
    sum = cg_acc_result(f, &ld, &acc, NULL);
    cg_store(f, f->f32, sc, cg_madd(f, r, T, j), LLVMBuildFMul(f->b, sum, ss, ""));
    cg_loop_end(f, &lj);
    cg_loop_end(f, &lr);
}

/* The float32 path for batch b (inside its loop).  Per kv head: K^T * s
 * gathered (past first) into the workspace, and V too when there is a past
 * (else V is read in place); the G = Hq / Hkv query heads of its group
 * share them, so their G Sq query rows (times s) form one matrix and
 * S = (q s)(k s)^T is one octk_sgemm call; then softcap, the bias
 * (bias_at, added in double and rounded), octk_ssoftmax over each row,
 * rows whose maximum is -inf zeroed (the bias closes every key), and
 * Y = P V by octk_sgemm straight into Y (one call for the group in the
 * 4-D layout, where its heads' rows are consecutive; one per head in the
 * 3-D layout).  Float32 throughout (FMA, reordered sums; the softmax sum
 * in double), within the float tolerance of the double loops. */
static void attn_f32_batch(cg_fn *f, const ir_node *n, const ops_attn_geom *g, LLVMValueRef ws,
                           const cg_tensor *M, LLVMValueRef b, LLVMValueRef nonpad,
                           LLVMValueRef offset)
{
    int64_t T = g->total, Dk = g->qk_size, Dv = g->v_size, Sq = g->q_seq;
    int64_t group = g->q_heads / g->kv_heads, rows = group * Sq;
    LLVMValueRef pq = cg_ptr(f, cg_in(f, n, 0)), pk = cg_ptr(f, cg_in(f, n, 1));
    LLVMValueRef pv = cg_ptr(f, cg_in(f, n, 2)), pm = M ? cg_ptr(f, M) : NULL;
    LLVMValueRef ppk = g->has_past ? cg_ptr(f, cg_in(f, n, 4)) : NULL;
    LLVMValueRef ppv = g->has_past ? cg_ptr(f, cg_in(f, n, 5)) : NULL;
    LLVMValueRef py = cg_ptr(f, cg_out(f, n, 0));
    int64_t vsize = g->has_past ? T * Dv : 0;
    LLVMValueRef kt = ws, vc = cg_gep(f, f->f32, ws, cg_i64c(f, Dk * T));
    LLVMValueRef qs = cg_gep(f, f->f32, vc, cg_i64c(f, vsize));
    LLVMValueRef sc = cg_gep(f, f->f32, qs, cg_i64c(f, rows * Dk));
    int64_t blk = attn_block(g), srows = blk ? blk : rows; /* attn_f32_work's layout */
    LLVMValueRef rowmax = cg_gep(f, f->f32, sc, cg_i64c(f, srows * T));
    LLVMValueRef ss = LLVMConstReal(f->f32, (float)g->sqrt_scale);
    /* a few query rows (a decode step): their scores as dot products with
     * the key rows where they are, rather than a transposed copy of every
     * key for one product (that copy was the step's cost growing with the
     * cache) */
    bool direct = !blk && rows <= ATTN_DIRECT_ROWS;
    cg_loop lkv, lg, li, lj, ld;
    LLVMValueRef kvh = cg_loop_begin(f, &lkv, g->kv_heads);
    LLVMValueRef j = cg_loop_begin(f, &lj, T), d;
    LLVMValueRef kp, kr;
    if (!direct) {
        kv_row(f, g, ppk, pk, Dk, b, kvh, j, &kp, &kr);
        d = cg_loop_begin(f, &ld, Dk);
        cg_store(f, f->f32, kt, cg_madd(f, d, T, j),
                 LLVMBuildFMul(f->b, cg_load(f, f->f32, kp, cg_add(f, kr, d)), ss, ""));
        cg_loop_end(f, &ld);
    }
    if (g->has_past) {
        LLVMValueRef vp, vr;
        kv_row(f, g, ppv, pv, Dv, b, kvh, j, &vp, &vr);
        d = cg_loop_begin(f, &ld, Dv);
        cg_store(f, f->f32, vc, cg_madd(f, j, Dv, d), cg_load(f, f->f32, vp, cg_add(f, vr, d)));
        cg_loop_end(f, &ld);
    }
    cg_loop_end(f, &lj);
    /* V of this kv head: the gathered rows, or V itself (row stride Hkv Dv
     * in the 3-D layout) */
    LLVMValueRef v0 = vc;
    int64_t ldv_ = Dv;
    if (!g->has_past) {
        v0 = cg_gep(f, f->f32, pv, row_at(f, g->rank3, g->kv_heads, g->kv_seq, Dv, b, kvh,
                                          cg_i64c(f, 0)));
        ldv_ = g->rank3 ? g->kv_heads * Dv : Dv;
    }
    /* the group's query rows times s, contiguous: row gi * Sq + i */
    LLVMValueRef gi = cg_loop_begin(f, &lg, group);
    LLVMValueRef h = cg_madd(f, kvh, group, gi);
    LLVMValueRef i = cg_loop_begin(f, &li, Sq);
    LLVMValueRef qrow = row_at(f, g->rank3, g->q_heads, Sq, Dk, b, h, i);
    LLVMValueRef r = cg_madd(f, gi, Sq, i);
    d = cg_loop_begin(f, &ld, Dk);
    cg_store(f, f->f32, qs, cg_madd(f, r, Dk, d),
             LLVMBuildFMul(f->b, cg_load(f, f->f32, pq, cg_add(f, qrow, d)), ss, ""));
    cg_loop_end(f, &ld);
    cg_loop_end(f, &li);
    cg_loop_end(f, &lg);
    if (blk) {
        attn_f32_blocks(f, g, M, pm, py, b, nonpad, offset, kvh, kt, v0, ldv_, qs, sc, rowmax,
                        blk);
        cg_loop_end(f, &lkv);
        return;
    }
    if (direct)
        direct_scores(f, g, ppk, pk, b, kvh, rows, qs, ss, sc);
    else
        sgemm_rt(f, rows, T, Dk, Dk, T, T, qs, kt, sc);
    /* softcap and bias, and each row's maximum */
    gi = cg_loop_begin(f, &lg, group);
    h = cg_madd(f, kvh, group, gi);
    i = cg_loop_begin(f, &li, Sq);
    r = cg_madd(f, gi, Sq, i);
    cg_store(f, f->f32, rowmax, r,
             bias_row(f, g, M, pm, nonpad, offset, b, h, i, sc, cg_mul(f, r, cg_i64c(f, T)), T));
    cg_loop_end(f, &li);
    cg_loop_end(f, &lg);
    softmax_rows(f, sc, rowmax, rows, T);
    LLVMValueRef h0 = cg_mul(f, kvh, cg_i64c(f, group));
    if (!g->rank3) { /* the group's heads are consecutive rows of Y */
        LLVMValueRef y0 = cg_gep(f, f->f32, py, row_at(f, false, g->q_heads, Sq, Dv, b, h0,
                                                       cg_i64c(f, 0)));
        sgemm_rt(f, rows, Dv, T, T, ldv_, Dv, sc, v0, y0);
    } else {
        gi = cg_loop_begin(f, &lg, group);
        h = cg_add(f, h0, gi);
        LLVMValueRef y0 = cg_gep(f, f->f32, py, row_at(f, true, g->q_heads, Sq, Dv, b, h,
                                                       cg_i64c(f, 0)));
        LLVMValueRef p0 = cg_gep(f, f->f32, sc, cg_mul(f, gi, cg_i64c(f, Sq * T)));
        sgemm_rt(f, Sq, Dv, T, T, ldv_, g->q_heads * Dv, p0, v0, y0);
        cg_loop_end(f, &lg);
    }
    cg_loop_end(f, &lkv);
}

oct_status cg_lower_attention(cg_fn *f, const ir_node *n)
{
    ops_shape in[7];
    shapes_of(f, n, in, 7);
    ops_attn_geom g;
    oct_status st = ops_attention_geometry(f->ctx, n, in, n->n_in, &g);
    if (st)
        return st;
    for (int i = 0; i < 6; i++)
        if (i != 3 && (st = need_float(f, n, i < n->n_in ? cg_in(f, n, i) : NULL, false, i)))
            return st;
    for (int o = 0; o < n->n_out; o++)
        if ((st = need_float(f, n, cg_out(f, n, o), true, o)))
            return st;
    cg_tensor *M = g.has_mask ? cg_in(f, n, 3) : NULL;
    if (M && cg_val_class(M->dtype) == CG_V_NONE)
        return need_float(f, n, M, false, 3);
    cg_tensor *Y = cg_out(f, n, 0), *YK = cg_out(f, n, 1), *YV = cg_out(f, n, 2);
    cg_tensor *YQK = cg_out(f, n, 3);
    LLVMValueRef pq = cg_ptr(f, cg_in(f, n, 0)), pk = cg_ptr(f, cg_in(f, n, 1));
    LLVMValueRef pv = cg_ptr(f, cg_in(f, n, 2)), pm = M ? cg_ptr(f, M) : NULL;
    LLVMValueRef ppk = g.has_past ? cg_ptr(f, cg_in(f, n, 4)) : NULL;
    LLVMValueRef ppv = g.has_past ? cg_ptr(f, cg_in(f, n, 5)) : NULL;
    LLVMValueRef pnp = g.has_nonpad ? cg_ptr(f, cg_in(f, n, 6)) : NULL;
    int64_t T = g.total, group = g.q_heads / g.kv_heads;
    if (!g.batch)
        return OCT_OK;
    bool f32 = attn_f32_ok(f, n, &g);
    LLVMValueRef ws = cg_workspace(f, f32 ? attn_f32_work(&g)
                                          : (uint64_t)(3 * T + g.v_size + g.qk_size) * sizeof(double));
    LLVMValueRef yacc = cg_gep(f, f->f64, ws, cg_i64c(f, 3 * T));
    LLVMValueRef qscaled = cg_gep(f, f->f64, ws, cg_i64c(f, 3 * T + g.v_size));
    LLVMValueRef capped = ws, bias = cg_gep(f, f->f64, ws, cg_i64c(f, T));
    LLVMValueRef prob = cg_gep(f, f->f64, ws, cg_i64c(f, 2 * T));
    ir_dtype qt = cg_in(f, n, 0)->dtype, kt = cg_in(f, n, 1)->dtype, vt = cg_in(f, n, 2)->dtype;
    ir_dtype pkt = g.has_past ? cg_in(f, n, 4)->dtype : kt, pvt = g.has_past ? cg_in(f, n, 5)->dtype : vt;
    if (pkt != kt || pvt != vt)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: past_key / past_value of another type than K / V");
    LLVMValueRef ss = f64c(f, ops_round_to(qt, g.sqrt_scale));
    if (qt == IR_DT_DOUBLE)
        ss = f64c(f, g.sqrt_scale);
    LLVMValueRef zero = f64c(f, 0), ninf = f64c(f, -INFINITY);
    cg_loop lb, lh, li, lj, ld, lo;
    cg_acc a1, a2;
    LLVMValueRef b = cg_loop_begin(f, &lb, g.batch);
    LLVMValueRef nonpad = pnp ? cg_load(f, f->i64, pnp, b) : cg_i64c(f, 0);
    LLVMValueRef offset = cg_i64c(f, g.has_past ? g.past : 0);
    if (g.has_nonpad)
        offset = cg_add(f, nonpad, cg_i64c(f, -g.q_seq));
    if (f32) {
        attn_f32_batch(f, n, &g, ws, M, b, nonpad, offset);
    } else if (Y->nelems || (YQK && YQK->nelems)) { /* Y is empty when Dv is 0 */
        LLVMValueRef h = cg_loop_begin(f, &lh, g.q_heads);
        LLVMValueRef kvh = LLVMBuildUDiv(f->b, h, cg_i64c(f, group), "");
        LLVMValueRef i = cg_loop_begin(f, &li, g.q_seq);
        LLVMValueRef qrow = row_at(f, g.rank3, g.q_heads, g.q_seq, g.qk_size, b, h, i);
        /* q * s rounded to Q's type, once per query row */
        LLVMValueRef d = cg_loop_begin(f, &ld, g.qk_size);
        cg_store(f, f->f64, qscaled, d,
                 rnd(f, qt, LLVMBuildFMul(f->b, ldv(f, qt, pq, cg_add(f, qrow, d)), ss, "")));
        cg_loop_end(f, &ld);
        /* scores, bias and their sum into prob; the maximum and the count
         * of keys the bias lets through */
        LLVMValueRef j = cg_loop_begin(f, &lj, T);
        LLVMValueRef mx = cg_acc_begin(f, &lj, &a1, ninf);
        LLVMValueRef open = cg_acc_begin(f, &lj, &a2, zero);
        LLVMValueRef kp, kr;
        kv_row(f, &g, ppk, pk, g.qk_size, b, kvh, j, &kp, &kr);
        LLVMValueRef s = zero;
        if (g.qk_size) {
            cg_acc ad;
            d = cg_loop_begin(f, &ld, g.qk_size);
            LLVMValueRef acc = cg_acc_begin(f, &ld, &ad, zero);
            LLVMValueRef qv = cg_load(f, f->f64, qscaled, d);
            LLVMValueRef kv = rnd(f, qt, LLVMBuildFMul(f->b, ldv(f, kt, kp, cg_add(f, kr, d)), ss, ""));
            LLVMValueRef prod = LLVMBuildFMul(f->b, qv, kv, "");
            cg_acc_end(f, &ad, cg_fast(LLVMBuildFAdd(f->b, acc, prod, "")));
            cg_loop_end(f, &ld);
            s = cg_acc_result(f, &ld, &ad, zero);
        }
        s = rnd(f, qt, s);
        LLVMValueRef raw = s;
        if (g.softcap > 0)
            s = rnd(f, qt, LLVMBuildFMul(f->b, f64c(f, g.softcap),
                                           tanh_f64(f, LLVMBuildFDiv(f->b, s, f64c(f, g.softcap), "")),
                                           ""));
        LLVMValueRef bj = bias_at(f, &g, M, pm, nonpad, offset, b, h, i, j);
        cg_store(f, f->f64, capped, j, g.mode == 0 ? raw : s); /* modes 0..2 output it */
        cg_store(f, f->f64, bias, j, bj);
        LLVMValueRef x = LLVMBuildFAdd(f->b, s, bj, "");
        cg_store(f, f->f64, prob, j, x);
        LLVMValueRef mx_args[2] = {mx, x};
        cg_acc_end(f, &a1, cg_intrinsic(f, "llvm.maximum", f->f64, mx_args, 2));
        LLVMValueRef is_open = LLVMBuildFCmp(f->b, LLVMRealONE, bj, ninf, "");
        cg_acc_end(f, &a2, LLVMBuildFAdd(f->b, open, LLVMBuildSelect(f->b, is_open, f64c(f, 1),
                                                                     zero, ""), ""));
        cg_loop_end(f, &lj);
        mx = cg_acc_result(f, &lj, &a1, ninf);
        open = cg_acc_result(f, &lj, &a2, zero);
        /* exp(x - max) and the sum; a row whose maximum is -inf gives 0 */
        LLVMValueRef dead = LLVMBuildFCmp(f->b, LLVMRealOEQ, mx, ninf, "");
        j = cg_loop_begin(f, &lj, T);
        LLVMValueRef sum = cg_acc_begin(f, &lj, &a1, zero);
        LLVMValueRef e = LLVMBuildFSub(f->b, cg_load(f, f->f64, prob, j), mx, "");
        e = LLVMBuildSelect(f->b, dead, zero, cg_intrinsic(f, "llvm.exp", f->f64, &e, 1), "");
        cg_store(f, f->f64, prob, j, e);
        cg_acc_end(f, &a1, cg_fast(LLVMBuildFAdd(f->b, sum, e, "")));
        cg_loop_end(f, &lj);
        sum = cg_acc_result(f, &lj, &a1, zero);
        LLVMValueRef none = LLVMBuildOr(f->b, LLVMBuildFCmp(f->b, LLVMRealOEQ, open, zero, ""),
                                        LLVMBuildFCmp(f->b, LLVMRealOEQ, sum, zero, ""), "");
        LLVMValueRef qkrow = YQK ? cg_mul(f, cg_madd(f, cg_madd(f, b, g.q_heads, h), g.q_seq, i),
                                          cg_i64c(f, T))
                                 : NULL;
        j = cg_loop_begin(f, &lj, T);
        LLVMValueRef p = rnd(f, qt, LLVMBuildFDiv(f->b, cg_load(f, f->f64, prob, j), sum, ""));
        p = LLVMBuildSelect(f->b, none, zero, p, "");
        cg_store(f, f->f64, prob, j, p);
        if (YQK) {
            LLVMValueRef v = g.mode == 3 ? p : cg_load(f, f->f64, capped, j);
            if (g.mode == 2)
                v = LLVMBuildFAdd(f->b, v, cg_load(f, f->f64, bias, j), "");
            stv(f, YQK->dtype, cg_ptr(f, YQK), cg_add(f, qkrow, j), v);
        }
        cg_loop_end(f, &lj);
        /* Y = P V: row by row of V into a row of doubles (contiguous, so
         * it vectorizes), each element summed over j in ascending order as
         * the interpreter's */
        LLVMValueRef yrow = row_at(f, g.rank3, g.q_heads, g.q_seq, g.v_size, b, h, i);
        if (g.v_size) {
            LLVMValueRef d = cg_loop_begin(f, &ld, g.v_size);
            cg_store(f, f->f64, yacc, d, zero);
            cg_loop_end(f, &ld);
            j = cg_loop_begin(f, &lj, T);
            LLVMValueRef vp, vr;
            kv_row(f, &g, ppv, pv, g.v_size, b, kvh, j, &vp, &vr);
            LLVMValueRef pj = cg_load(f, f->f64, prob, j);
            d = cg_loop_begin(f, &ld, g.v_size);
            LLVMValueRef t = LLVMBuildFMul(f->b, pj, ldv(f, vt, vp, cg_add(f, vr, d)), "");
            cg_store(f, f->f64, yacc, d, LLVMBuildFAdd(f->b, cg_load(f, f->f64, yacc, d), t, ""));
            cg_loop_end(f, &ld);
            cg_loop_end(f, &lj);
            d = cg_loop_begin(f, &ld, g.v_size);
            stv(f, Y->dtype, cg_ptr(f, Y), cg_add(f, yrow, d), cg_load(f, f->f64, yacc, d));
            cg_loop_end(f, &ld);
        }
        cg_loop_end(f, &li);
        cg_loop_end(f, &lh);
    }
    /* present_key / present_value: the past, then the new rows */
    for (int which = 0; which < 2; which++) {
        cg_tensor *O = which ? YV : YK;
        int64_t hs = which ? g.v_size : g.qk_size;
        if (!O || !O->nelems)
            continue;
        LLVMValueRef kvh = cg_loop_begin(f, &lh, g.kv_heads);
        LLVMValueRef j = cg_loop_begin(f, &lj, T);
        LLVMValueRef sp, sr;
        kv_row(f, &g, which ? ppv : ppk, which ? pv : pk, hs, b, kvh, j, &sp, &sr);
        LLVMValueRef orow = row_at(f, false, g.kv_heads, T, hs, b, kvh, j);
        LLVMValueRef d = cg_loop_begin(f, &lo, hs);
        ir_dtype it = which ? vt : kt;
        stv(f, O->dtype, cg_ptr(f, O), cg_add(f, orow, d), ldv(f, it, sp, cg_add(f, sr, d)));
        cg_loop_end(f, &lo);
        cg_loop_end(f, &lj);
        cg_loop_end(f, &lh);
    }
    cg_loop_end(f, &lb);
    if (f32)
        cg_report(f, n, "octk_sgemm",
                  attn_block(&g) ? "f32 FMA, Q.K^T and P.V per head in blocks of query rows"
                                 : "f32 FMA, Q.K^T and P.V per group of query heads");
    return OCT_OK;
}
