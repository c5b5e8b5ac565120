/*
 * quant_gptq.c: `octet quantize --weights-only --algo=gptq --calib DATA`:
 * the codes of every MatMul/Gemm weight chosen by GPTQ (Frantar et al.,
 * "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
 * Transformers", 2022) instead of by rounding each weight to nearest.
 *
 * A layer computes Y = X W with W K x N (Gemm with transB: W stored N x K;
 * the element (k, n) is read through strides).  GPTQ quantizes the K input
 * rows of W one at a time and spreads each row's rounding error over the
 * rows not yet quantized, so as to minimise ||X W - X Q||^2 on the
 * calibration inputs X of the layer.  What it needs of X is
 * H = 2 X^T X (K x K, accumulated in double over every sample by
 * quant_hessian.c; the factor 2 cancels and is left out).  Per layer:
 *   - dead inputs (H_kk = 0: the input is always 0) get H_kk = 1 and their
 *     weights 0 (their codes do not matter to the output);
 *   - dampening: H += 0.01 * mean(diag H) * I;
 *   - U = the upper Cholesky factor of H^-1 (H^-1 = U^T U), in double;
 *   - rows in blocks of 128 (lazy batch updates): row i is rounded (its
 *     group's scales), err = (w_i - q_i) / U_ii, the later rows of the block
 *     get w_j -= U_ij err at once, the rows after the block get the sum over
 *     the block's errors when it is done (the same numbers as updating
 *     every row at once, in another summation order);
 *   - scales: per channel, from the whole column before any update (as the
 *     paper); per block of bs along K (the DequantizeLinear's blocks), from
 *     the block's current (already updated) weights when its first row is
 *     reached, with --clip-search choosing the shrink factor on those
 *     values as round to nearest does;
 *   - --act-order: rows in order of decreasing H_kk (ties: lower k first).
 *     Blocks must stay contiguous ranges of K for DequantizeLinear, so the
 *     scales are "static groups": every block's scales are taken from the
 *     original weights before any update, and each row uses its own
 *     block's scale whatever the processing order.
 *
 * Options (docs/formats.md): --gptq-damp sets the dampening share;
 * --gptq-group-search fits the dynamic blocks' scales by the loss GPTQ
 * accrues on the block's rows instead of the weights' squared error;
 * --gptq-refit fits every block's scale and zero point again by least
 * squares on H once the codes are fixed; --gptq-float-target aims each
 * layer at the float model's output (its Hessians from two passes).
 *
 * Layers are processed in graph order, and the inputs of a layer are
 * those of the model whose earlier layers are already quantized (the
 * dequantized weights stand in the float initializers meanwhile), as the
 * paper does: the samples run once per "wave", a wave being every pending
 * layer whose input does not depend on another pending layer (q, k and v
 * of one attention share an input and are one wave).  Memory: one K x K
 * Hessian per distinct input of the wave (in double) and the working copy
 * of one weight at a time.  A weight read by several layers gets the
 * Hessian of its first reader.  Conv and Gather weights, and Gemm with
 * transA, keep round to nearest.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/quant.h"

enum { GPTQ_BLOCK = 128 };      /* rows per lazy batch update */
enum { GPTQ_CLIP_GRID = 51 };   /* shrink factors 1.00 .. 0.50, as the clip search's */
#define GPTQ_PERCDAMP 0.01

/* One layer: its weight (sel index), input, geometry. */
typedef struct gptq_layer {
    size_t sel;
    ir_value *x;                /* the input X (last dim K) */
    int64_t K, N;
    int64_t sk, sn;             /* strides of element (k, n) in W */
    int64_t ssk, ssn;           /* strides of scale (block b, column n) */
    bool done;
    float *orig;                /* the float weights while dequantized ones stand in */
} gptq_layer;

/* ---- dense linear algebra (double, row-major K x K) ----------------------- */

/* In place: a = L L^T, L lower (upper part left as is); false if a is not
 * positive definite. */
static bool chol_lower(double *a, int64_t K)
{
    for (int64_t j = 0; j < K; j++) {
        double d = a[j * K + j];
        for (int64_t p = 0; p < j; p++)
            d -= a[j * K + p] * a[j * K + p];
        if (!(d > 0))
            return false;
        d = sqrt(d);
        a[j * K + j] = d;
        for (int64_t i = j + 1; i < K; i++) {
            double s = a[i * K + j];
            for (int64_t p = 0; p < j; p++)
                s -= a[i * K + p] * a[j * K + p];
            a[i * K + j] = s / d;
        }
    }
    return true;
}

/* u = the upper Cholesky factor of h^-1 (h^-1 = u^T u), via L = chol(h),
 * h^-1 = L^-T L^-1 and a second factorisation; h is destroyed.  False if
 * h is not positive definite. */
static bool upper_chol_of_inverse(double *h, double *u, int64_t K)
{
    if (!chol_lower(h, K))
        return false;
    /* u <- L^-1 (lower), column by column by forward substitution */
    memset(u, 0, (size_t)(K * K) * sizeof *u);
    for (int64_t c = 0; c < K; c++)
        for (int64_t i = c; i < K; i++) {
            double s = i == c ? 1.0 : 0.0;
            for (int64_t p = c; p < i; p++)
                s -= h[i * K + p] * u[p * K + c];
            u[i * K + c] = s / h[i * K + i];
        }
    /* h <- L^-T L^-1 = h^-1 (symmetric; both triangles) */
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            for (int64_t p = i; p < K; p++)
                s += u[p * K + i] * u[p * K + j];
            h[i * K + j] = h[j * K + i] = s;
        }
    if (!chol_lower(h, K))
        return false;
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < K; j++)
            u[i * K + j] = j >= i ? h[j * K + i] : 0;
    return true;
}

/* ---- one weight ------------------------------------------------------------- */

typedef struct gptq_job {
    const quant_wo_grid *g;
    bool clip, act_order;
    double damp;                /* share of the mean diagonal added to H */
    bool group_search;          /* --gptq-group-search (dynamic groups only) */
    double *tmp;                /* bs doubles of scratch for it */
    int64_t K, N, bs, nblk;     /* bs 0: per channel (one "block" of K) */
    float *scales;              /* [nblk][N] */
    int32_t *zps;               /* [nblk][N] */
    float *col;                 /* K floats of scratch */
    /* a block format (quant_wo_lowbit.c): its rounding, scales fitted by
     * its rules from the float weights (static groups), and the values
     * rounded, wq[k * N + n], which the writer rounds again to the same
     * codes; NULL for the integer grids */
    const ir_qformat_traits *lowbit;
    float *wq;
} gptq_job;

/* w rounded in j's format at scale s, zero point z: the float the model
 * computes (*code: its integer code, grid formats only). */
static double round_one(const gptq_job *j, double w, float s, int32_t z, int32_t *code)
{
    if (j->lowbit)
        return (double)quant_wo_lowbit_round(j->lowbit, (float)w, s, z);
    *code = quant_wo_code(j->g, (float)w, s, z);
    return (double)((float)(*code - z) * s);
}

/* Scales of block b (rows [lo, hi) of w, K x N in processing order r ->
 * row perm[r]; here the rows are those of block b in w's own order). */
static void fit_block(gptq_job *j, const double *w, int64_t lo, int64_t hi, int64_t b)
{
    for (int64_t n = 0; n < j->N; n++) {
        for (int64_t k = lo; k < hi; k++)
            j->col[k - lo] = (float)w[k * j->N + n];
        quant_wo_slice_fit(j->g, j->clip, j->col, hi - lo, 1, &j->scales[b * j->N + n],
                           &j->zps[b * j->N + n]);
    }
}

/* --gptq-group-search: the scales of block b (rows [lo, hi) of wp, in
 * processing order = w's order, dynamic groups) by the loss GPTQ itself
 * accrues on them: for each shrink factor of the clip search, the block's
 * rows of column n rounded one after the other with the error feedback
 * inside the block (u, the inverse Hessian's factor), summing
 * ((w - q) / u_rr)^2; the factor of least loss.  The rows before lo have
 * updated these already; the rows after hi are corrected later. */
static void fit_block_gptq(gptq_job *j, const double *wp, const double *u, int64_t lo,
                           int64_t hi, int64_t b, double *tmp)
{
    int64_t K = j->K, N = j->N, len = hi - lo;
    for (int64_t n = 0; n < N; n++) {
        float wmin = INFINITY, wmax = -INFINITY;
        for (int64_t r = lo; r < hi; r++)
            wmin = fminf(wmin, (float)wp[r * N + n]), wmax = fmaxf(wmax, (float)wp[r * N + n]);
        double best = INFINITY;
        /* (the two ends of an asymmetric range shrunk independently, a
         * 21 x 21 grid, did worse on stories260k: 46.7% of the gap closed
         * against 51.3%) */
        for (int f = 0; f < (j->clip ? GPTQ_CLIP_GRID : 1); f++) {
            float s;
            int32_t z, code;
            quant_wo_slice_params(j->g, wmin, wmax, (double)(100 - f) / 100.0, &s, &z);
            for (int64_t t = 0; t < len; t++)
                tmp[t] = wp[(lo + t) * N + n];
            double loss = 0;
            for (int64_t t = 0; t < len && loss < best; t++) {
                int64_t r = lo + t;
                double e = (tmp[t] - round_one(j, tmp[t], s, z, &code)) / u[r * K + r];
                loss += e * e;
                for (int64_t t2 = t + 1; t2 < len; t2++)
                    tmp[t2] -= u[r * K + lo + t2] * e;
            }
            if (f == 0 || loss < best) /* ties keep the larger factor */
                best = loss, j->scales[b * N + n] = s, j->zps[b * N + n] = z;
        }
    }
}

static int cmp_diag_desc(const void *a, const void *b, void *d)
{
    const double *h = d;
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return h[x] > h[y] ? -1 : h[x] < h[y] ? 1 : (x > y) - (x < y);
}

/* GPTQ of w (K x N, row k contiguous, updated in place) with Hessian h
 * (K x K, destroyed); codes[k * N + n].  False if the Hessian is not
 * positive definite even after dampening. */
static bool gptq_matrix(gptq_job *j, double *h, double *w, int32_t *codes, double *u,
                        double *hp, double *err, int64_t *perm)
{
    int64_t K = j->K, N = j->N, bs = j->bs ? j->bs : K;
    double mean = 0;
    for (int64_t k = 0; k < K; k++) {
        if (h[k * K + k] == 0) { /* dead input */
            h[k * K + k] = 1;
            for (int64_t n = 0; n < N; n++)
                w[k * N + n] = 0;
        }
        mean += h[k * K + k] / (double)K;
        perm[k] = k;
    }
    /* static scales: per channel, or every block for act-order or a block
     * format (the caller's) */
    bool dynamic = j->bs && !j->act_order && !j->lowbit;
    for (int64_t b = 0; !dynamic && !j->lowbit && b < j->nblk; b++)
        fit_block(j, w, b * bs, (b + 1) * bs < K ? (b + 1) * bs : K, b);
    if (j->act_order) {
        double *diag = err; /* scratch: K doubles */
        for (int64_t k = 0; k < K; k++)
            diag[k] = h[k * K + k];
        qsort_r(perm, (size_t)K, sizeof *perm, cmp_diag_desc, diag);
    }
    /* H and W in processing order */
    for (int64_t r = 0; r < K; r++)
        for (int64_t c = 0; c < K; c++)
            hp[r * K + c] = h[perm[r] * K + perm[c]];
    for (int64_t r = 0; r < K; r++)
        hp[r * K + r] += j->damp * mean;
    if (!upper_chol_of_inverse(hp, u, K))
        return false;
    double *wp = hp; /* hp is free again: rows of w in processing order */
    for (int64_t r = 0; r < K; r++)
        memcpy(&wp[r * N], &w[perm[r] * N], (size_t)N * sizeof *wp);
    for (int64_t r1 = 0; r1 < K; r1 += GPTQ_BLOCK) {
        int64_t r2 = r1 + GPTQ_BLOCK < K ? r1 + GPTQ_BLOCK : K;
        for (int64_t r = r1; r < r2; r++) {
            int64_t k = perm[r], b = k / bs;
            if (dynamic && k % bs == 0 && j->group_search) /* perm: the identity */
                fit_block_gptq(j, wp, u, k, k + bs < K ? k + bs : K, b, j->tmp);
            else if (dynamic && k % bs == 0)
                fit_block(j, wp, k, k + bs < K ? k + bs : K, b);
            double d = u[r * K + r];
            for (int64_t n = 0; n < N; n++) {
                float s = j->scales[b * N + n];
                int32_t z = j->zps[b * N + n];
                double deq = round_one(j, wp[r * N + n], s, z, &codes[k * N + n]);
                if (j->wq)
                    j->wq[k * N + n] = (float)wp[r * N + n];
                err[(r - r1) * N + n] = (wp[r * N + n] - deq) / d;
            }
            for (int64_t t = r + 1; t < r2; t++) {
                double c = u[r * K + t];
                for (int64_t n = 0; n < N; n++)
                    wp[t * N + n] -= c * err[(r - r1) * N + n];
            }
        }
        for (int64_t t = r2; t < K; t++)
            for (int64_t r = r1; r < r2; r++) {
                double c = u[r * K + t];
                for (int64_t n = 0; n < N; n++)
                    wp[t * N + n] -= c * err[(r - r1) * N + n];
            }
    }
    return true;
}

/* ---- scales re-fitted to the codes --------------------------------------------- */

/* Solves a x = b (n x n symmetric positive definite, both destroyed; x
 * in b) by Cholesky; false if a is singular. */
static bool spd_solve(double *a, double *b, int64_t n)
{
    if (!chol_lower(a, n))
        return false;
    for (int64_t i = 0; i < n; i++) { /* L y = b */
        for (int64_t p = 0; p < i; p++)
            b[i] -= a[i * n + p] * b[p];
        b[i] /= a[i * n + i];
    }
    for (int64_t i = n - 1; i >= 0; i--) { /* L^T x = y */
        for (int64_t p = i + 1; p < n; p++)
            b[i] -= a[p * n + i] * b[p];
        b[i] /= a[i * n + i];
    }
    return true;
}

/* (w - d)^T h (w - d) of column n, d the dequantized codes at scales
 * sc[b] and zero points zp[b] (one per block of bs rows). */
static double column_error(const gptq_job *j, const double *h, const double *w,
                           const int32_t *codes, int64_t n, const float *sc,
                           const int32_t *zp, double *e)
{
    int64_t K = j->K, N = j->N, bs = j->bs ? j->bs : K;
    for (int64_t k = 0; k < K; k++)
        e[k] = w[k * N + n] - (double)((float)(codes[k * N + n] - zp[k / bs]) * sc[k / bs]);
    double err = 0;
    for (int64_t p = 0; p < K; p++) {
        double acc = 0;
        for (int64_t q = 0; q < K; q++)
            acc += h[p * K + q] * e[q];
        err += e[p] * acc;
    }
    return err;
}

/* Least squares of column n's blocks on h: the dequantized value of row
 * k in block b is sc_b * codes_k + t_b (t_b = -sc_b * z_b; with
 * zero_too false only sc_b, z_b kept): x = argmin (w - A x)^T h (w - A x),
 * A K x m (m = nblk or 2 nblk), solved from A^T h A x = A^T h w. */
static bool refit_solve(const gptq_job *j, const double *h, const double *w,
                        const int32_t *codes, int64_t n, const int32_t *zp, bool zero_too,
                        double *a, double *ha, double *x)
{
    int64_t K = j->K, N = j->N, bs = j->bs ? j->bs : K, per = zero_too ? 2 : 1;
    int64_t m = j->nblk * per;
    /* a: K x m */
    memset(a, 0, (size_t)(K * m) * sizeof *a);
    for (int64_t k = 0; k < K; k++) {
        int64_t b = k / bs;
        a[k * m + b * per] = (double)(codes[k * N + n] - (zero_too ? 0 : zp[b]));
        if (zero_too)
            a[k * m + b * per + 1] = 1;
    }
    /* ha = h a (K x m), then the normal equations in x (m) and a's
     * first m x m entries */
    for (int64_t p = 0; p < K; p++)
        for (int64_t c = 0; c < m; c++) {
            double acc = 0;
            for (int64_t q = 0; q < K; q++)
                acc += h[p * K + q] * a[q * m + c];
            ha[p * m + c] = acc;
        }
    double *ata = ha + K * m;
    for (int64_t r = 0; r < m; r++) {
        double rhs = 0;
        for (int64_t k = 0; k < K; k++)
            rhs += ha[k * m + r] * w[k * N + n];
        x[r] = rhs;
        for (int64_t c = 0; c < m; c++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += a[k * m + r] * ha[k * m + c];
            ata[r * m + c] = acc;
        }
    }
    /* a tiny ridge: a block whose codes are all equal leaves sc_b and t_b
     * one direction */
    for (int64_t r = 0; r < m; r++)
        ata[r * m + r] += 1e-9 * ata[r * m + r] + 1e-30;
    return spd_solve(ata, x, m);
}

/* --gptq-refit: the scales (and zero points, asymmetric) of every block
 * of column n chosen again for the codes GPTQ fixed, by least squares of
 * the layer's output error on h (the calibration inputs' X^T X) against
 * the float weights w: first sc_b and t_b free, z_b = round(-t_b / sc_b)
 * in range, then sc_b again for those z_b.  Kept only where the error on
 * h falls (a block with a scale <= 0 keeps the old ones). */
static void refit_column(gptq_job *j, const double *h, const double *w, const int32_t *codes,
                         int64_t n, double *scratch)
{
    int64_t K = j->K, nblk = j->nblk, m2 = 2 * nblk;
    double *a = scratch, *ha = a + K * m2, *x = ha + K * m2 + m2 * m2, *e = x + m2;
    float *sc = (float *)(e + K);
    int32_t *zp = (int32_t *)(sc + nblk), *z0 = zp + nblk;
    float *s0 = (float *)(z0 + nblk);
    for (int64_t b = 0; b < nblk; b++) {
        s0[b] = j->scales[b * j->N + n], z0[b] = j->zps[b * j->N + n];
        sc[b] = s0[b], zp[b] = z0[b];
    }
    bool asym = !j->g->symmetric && !j->g->full;
    if (asym && refit_solve(j, h, w, codes, n, zp, true, a, ha, x))
        for (int64_t b = 0; b < nblk; b++) {
            double s = x[2 * b], z = s > 0 ? nearbyint(-x[2 * b + 1] / s) : zp[b];
            zp[b] = (int32_t)(z < j->g->qlo ? j->g->qlo : z > j->g->qhi ? j->g->qhi : z);
        }
    if (!refit_solve(j, h, w, codes, n, zp, false, a, ha, x))
        return;
    for (int64_t b = 0; b < nblk; b++)
        if (x[b] > 0 && isfinite(x[b]))
            sc[b] = (float)x[b];
        else
            sc[b] = s0[b], zp[b] = z0[b];
    if (column_error(j, h, w, codes, n, sc, zp, e) < column_error(j, h, w, codes, n, s0, z0, e))
        for (int64_t b = 0; b < nblk; b++)
            j->scales[b * j->N + n] = sc[b], j->zps[b * j->N + n] = zp[b];
}

/* Bytes of refit_column's scratch for j. */
static size_t refit_scratch(const gptq_job *j)
{
    int64_t m2 = 2 * j->nblk;
    return (size_t)(2 * j->K * m2 + m2 * m2 + m2 + j->K) * sizeof(double) +
           (size_t)(4 * j->nblk) * sizeof(float);
}

/* ---- the driver ------------------------------------------------------------- */

/* Whether sel entry e is a layer GPTQ handles, and its geometry. */
static bool layer_of(const quant_wo_weight *e, gptq_layer *L)
{
    const ir_node *n = e->node;
    const ir_tensor *t = n->in[e->input]->init;
    if ((n->op != IR_OP_MATMUL && n->op != IR_OP_GEMM) || e->input != 1 ||
        (n->op == IR_OP_GEMM && ir_attr_int(n, "transA", 0)) || !n->in[0])
        return false;
    bool tb = n->op == IR_OP_GEMM && ir_attr_int(n, "transB", 0);
    memset(L, 0, sizeof *L);
    L->x = n->in[0];
    L->K = t->dims[tb], L->N = t->dims[!tb];
    L->sk = tb ? 1 : L->N, L->sn = tb ? L->K : 1;
    int64_t nblk = e->bs ? (L->K + e->bs - 1) / e->bs : 1;
    L->ssk = e->bs ? (tb ? 1 : L->N) : 0;
    L->ssn = e->bs && tb ? nblk : 1;
    return L->K > 0 && L->N > 0;
}

/* Which pending layers are ready: their input depends on no pending
 * layer's output (nodes are in topological order). */
static oct_status mark_ready(oct_ctx *ctx, const ir_graph *g, gptq_layer *ls, size_t nl,
                             const quant_wo_weight *sel, bool *ready)
{
    bool *dirty = ir_alloc_array(ctx, g->n_values + 1, sizeof *dirty);
    if (!dirty)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < nl; i++)
        if (!ls[i].done)
            for (int o = 0; o < sel[ls[i].sel].node->n_out; o++)
                if (sel[ls[i].sel].node->out[o])
                    dirty[sel[ls[i].sel].node->out[o]->id] = true;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        bool d = false;
        for (int i = 0; i < n->n_in; i++)
            d |= n->in[i] && dirty[n->in[i]->id];
        for (int o = 0; d && o < n->n_out; o++)
            if (n->out[o])
                dirty[n->out[o]->id] = true;
    }
    for (size_t i = 0; i < nl; i++)
        ready[i] = !ls[i].done && !dirty[ls[i].x->id];
    return OCT_OK;
}

/* --gptq-float-target: w (K x N) replaced by the least-squares weights
 * of the float layer's output from the quantized model's inputs,
 * argmin_V ||X V - Xf W||^2 = W + H^-1 (C W - H W) with C = X^T Xf, H =
 * X^T X dampened as GPTQ dampens it (u, r: K x K and K x N scratch).
 * GPTQ towards this V on H minimises ||X Q - Xf W||^2: the layer also
 * corrects what the earlier quantized layers changed in its input. */
static void float_target(const gptq_job *j, const double *h, const double *c, double *w,
                         double *u, double *r)
{
    int64_t K = j->K, N = j->N;
    double mean = 0;
    for (int64_t k = 0; k < K; k++)
        mean += h[k * K + k] / (double)K;
    if (!(mean > 0))
        return;
    memcpy(u, h, (size_t)(K * K) * sizeof *u);
    for (int64_t k = 0; k < K; k++)
        u[k * K + k] += j->damp * mean;
    if (!chol_lower(u, K))
        return;
    for (int64_t p = 0; p < K; p++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t q = 0; q < K; q++)
                acc += (c[p * K + q] - h[p * K + q]) * w[q * N + n];
            r[p * N + n] = acc;
        }
    for (int64_t n = 0; n < N; n++) { /* (L L^T) d = r[:, n], w += d */
        for (int64_t i = 0; i < K; i++) {
            double v = r[i * N + n];
            for (int64_t q = 0; q < i; q++)
                v -= u[i * K + q] * r[q * N + n];
            r[i * N + n] = v / u[i * K + i];
        }
        for (int64_t i = K - 1; i >= 0; i--) {
            double v = r[i * N + n];
            for (int64_t q = i + 1; q < K; q++)
                v -= u[q * K + i] * r[q * N + n];
            r[i * N + n] = v / u[i * K + i];
            w[i * N + n] += r[i * N + n];
        }
    }
}

/* GPTQ of layer L with Hessian h (destroyed): its fixed codes, and the
 * dequantized weights written over the float ones (the original kept in
 * L->orig) so that later layers see this one quantized. */
static oct_status gptq_one(oct_ctx *ctx, gptq_layer *L, quant_wo_weight *e,
                           const quant_wo_grid *g, const quant_opts *opts, double *h,
                           const double *c)
{
    ir_tensor *t = e->node->in[e->input]->init;
    int64_t K = L->K, N = L->N, bs = e->bs, nblk = bs ? (K + bs - 1) / bs : 1;
    /* doubles: u K x K; hp the permuted Hessian, then the weights in
     * processing order (max(K x K, K x N)); w K x N; err one lazy batch of
     * errors (max(128, K) x N, also K diagonal values) */
    size_t kk = (size_t)(K * K), kn = (size_t)(K * N), ns = (size_t)(nblk * N);
    size_t nerr = (size_t)(GPTQ_BLOCK > K ? GPTQ_BLOCK : K) * (size_t)N;
    size_t bytes = (kk + (kk > kn ? kk : kn) + kn + nerr) * sizeof(double) +
                   (size_t)K * sizeof(int64_t) + kn * sizeof(int32_t) + (size_t)K * sizeof(float);
    char *buf = oct_malloc(ctx, bytes);
    quant_wo_fixed *fx = ir_alloc(ctx, sizeof *fx);
    if (fx) {
        fx->codes = ir_alloc_array(ctx, kn, sizeof *fx->codes);
        fx->scales = ir_alloc_array(ctx, ns, sizeof *fx->scales);
        fx->zps = ir_alloc_array(ctx, ns, sizeof *fx->zps);
    }
    L->orig = oct_malloc(ctx, kn * sizeof(float));
    gptq_job j = {g, opts->wo_clip_search || opts->wo_algo == QWO_AWQ_GPTQ, opts->wo_act_order,
                  opts->wo_gptq_damp > 0 ? opts->wo_gptq_damp : GPTQ_PERCDAMP,
                  opts->wo_gptq_group_search, NULL, K, N, bs, nblk,
                  ir_alloc_array(ctx, ns, sizeof(float)), ir_alloc_array(ctx, ns, sizeof(int32_t)),
                  NULL, quant_wo_is_lowbit(g->f) ? g->f : NULL, NULL};
    float *lw = j.lowbit ? ir_alloc_array(ctx, kn, sizeof *lw) : NULL;
    if (j.lowbit)
        j.wq = ir_alloc_array(ctx, kn, sizeof *j.wq);
    if (!buf || !fx || !fx->codes || !fx->scales || !fx->zps || !L->orig || !j.scales ||
        !j.zps || (j.lowbit && (!lw || !j.wq ||
                                quant_wo_lowbit_grid(ctx, g->f, t, e->axis, fx->scales, fx->zps)))) {
        oct_free(ctx, buf, bytes);
        return OCT_EINTERNAL;
    }
    /* a block format: its scales, fitted on the float weights, from the
     * writer's block order to [b][n] */
    for (int64_t b = 0; j.lowbit && b < nblk; b++)
        for (int64_t n = 0; n < N; n++) {
            j.scales[b * N + n] = fx->scales[b * L->ssk + n * L->ssn];
            j.zps[b * N + n] = fx->zps[b * L->ssk + n * L->ssn];
        }
    double *u = (double *)buf, *hp = u + kk, *w = hp + (kk > kn ? kk : kn), *err = w + kn;
    int64_t *perm = (int64_t *)(err + nerr);
    int32_t *codes = (int32_t *)(perm + K);
    j.col = (float *)(codes + kn);
    float *wf = t->data;
    memcpy(L->orig, wf, kn * sizeof(float));
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++)
            w[k * N + n] = wf[k * L->sk + n * L->sn];
    double tmp[GPTQ_BLOCK];
    if (bs > GPTQ_BLOCK)
        j.group_search = false; /* blocks longer than a lazy batch: the clip search */
    j.tmp = tmp;
    if (c) /* --gptq-float-target (c: NULL without it) */
        float_target(&j, h, c, w, u, hp);
    bool ok = gptq_matrix(&j, h, w, codes, u, hp, err, perm);
    if (ok && opts->wo_gptq_refit && !j.lowbit) {
        /* h and w are still the undamped Hessian and the float weights */
        size_t rb = refit_scratch(&j);
        double *scratch = oct_malloc(ctx, rb);
        for (int64_t n = 0; scratch && n < N; n++)
            refit_column(&j, h, w, codes, n, scratch);
        oct_free(ctx, scratch, rb);
        if (!scratch) {
            oct_free(ctx, buf, bytes);
            return OCT_EINTERNAL;
        }
    }
    if (ok) {
        for (int64_t k = 0; k < K; k++) {
            int64_t b = bs ? k / bs : 0;
            for (int64_t n = 0; n < N; n++) {
                int64_t at = k * L->sk + n * L->sn;
                float s = j.scales[b * N + n];
                int32_t z = j.zps[b * N + n];
                if (j.lowbit) {
                    lw[at] = j.wq[k * N + n];
                    wf[at] = quant_wo_lowbit_round(j.lowbit, lw[at], s, z);
                    continue;
                }
                fx->codes[at] = codes[k * N + n];
                wf[at] = (float)(codes[k * N + n] - z) * s;
            }
        }
        if (j.lowbit) {
            e->lowbit_w = lw;
            oct_free(ctx, buf, bytes);
            return OCT_OK;
        }
        for (int64_t b = 0; b < nblk; b++)
            for (int64_t n = 0; n < N; n++) {
                int64_t at = bs ? b * L->ssk + n * L->ssn : n;
                fx->scales[at] = j.scales[b * N + n];
                fx->zps[at] = j.zps[b * N + n];
            }
        e->fixed = fx;
    } else {
        oct_diagf(ctx, OCT_SEV_WARNING, OCT_OK, NULL, 0, -1, e->node->in[e->input]->name,
                  "gptq: the Hessian of node '%s' is not positive definite after "
                  "dampening; its weight is rounded to nearest", e->node->name);
    }
    oct_free(ctx, buf, bytes);
    return OCT_OK;
}

/* One Hessian (zeroed) per distinct input of the layers marked in ready
 * (all when ready is NULL): xs, ks, hs[0..*nx), slot[i] layer i's. */
static oct_status wave_inputs(oct_ctx *ctx, const gptq_layer *ls, size_t nl, const bool *ready,
                              ir_value **xs, int64_t *ks, double **hs, size_t *slot, size_t *nx)
{
    *nx = 0;
    for (size_t i = 0; i < nl; i++) {
        if (ready && !ready[i])
            continue;
        size_t k = 0;
        while (k < *nx && xs[k] != ls[i].x)
            k++;
        if (k == *nx) {
            size_t bytes = (size_t)(ls[i].K * ls[i].K) * sizeof(double);
            xs[k] = ls[i].x, ks[k] = ls[i].K;
            if (!(hs[k] = oct_malloc(ctx, bytes)))
                return OCT_EINTERNAL;
            memset(hs[k], 0, bytes);
            ++*nx;
        }
        slot[i] = k;
    }
    return OCT_OK;
}

/* GPTQ of the layers marked in ready (all: NULL) with the Hessians of
 * their inputs; a copy of each (gptq_one destroys it) so that layers
 * sharing an input share it. */
static oct_status wave_quantize(oct_ctx *ctx, gptq_layer *ls, size_t nl, const bool *ready,
                                quant_wo_weight *sel, const quant_wo_grid *g,
                                const quant_opts *opts, double *const *hs, double *const *cs,
                                const size_t *slot, size_t *n_done)
{
    double *hc = NULL;
    size_t hc_bytes = 0;
    oct_status st = OCT_OK;
    for (size_t i = 0; !st && i < nl; i++) {
        if (ready && !ready[i])
            continue;
        size_t bytes = (size_t)(ls[i].K * ls[i].K) * sizeof(double);
        if (bytes > hc_bytes) {
            oct_free(ctx, hc, hc_bytes);
            hc = oct_malloc(ctx, hc_bytes = bytes);
            if (!hc) {
                hc_bytes = 0;
                st = OCT_EINTERNAL;
                break;
            }
        }
        memcpy(hc, hs[slot[i]], bytes);
        st = gptq_one(ctx, &ls[i], &sel[ls[i].sel], g, opts, hc, cs ? cs[slot[i]] : NULL);
        ls[i].done = true;
        ++*n_done;
    }
    oct_free(ctx, hc, hc_bytes);
    return st;
}

/* The layers of the model and their weights (swap_done's user). */
typedef struct gptq_layers {
    gptq_layer *ls;
    size_t nl;
    const quant_wo_weight *sel;
} gptq_layers;

/* The weights of the quantized layers of user (a gptq_layers) exchanged
 * with their float originals (twice: back as they were). */
static void swap_done(void *user)
{
    const gptq_layers *layers = user;
    gptq_layer *ls = layers->ls;
    const quant_wo_weight *sel = layers->sel;
    for (size_t i = 0; i < layers->nl; i++) {
        if (!ls[i].done || !ls[i].orig)
            continue;
        float *w = sel[ls[i].sel].node->in[sel[ls[i].sel].input]->init->data;
        for (int64_t k = 0; k < ls[i].K * ls[i].N; k++) {
            float t = w[k];
            w[k] = ls[i].orig[k], ls[i].orig[k] = t;
        }
    }
}

static void free_hessians(oct_ctx *ctx, double **hs, const int64_t *ks, size_t nx)
{
    for (size_t k = 0; k < nx; k++)
        oct_free(ctx, hs[k], (size_t)(ks[k] * ks[k]) * sizeof(double));
}

oct_status quant_gptq(ir_model *m, quant_wo_weight *sel, size_t n, const quant_wo_grid *g,
                      const quant_opts *opts, const quant_samples *data,
                      quant_progress_fn progress, void *progress_user, oct_ctx *ctx)
{
    gptq_layer *ls = ir_alloc_array(ctx, n + 1, sizeof *ls);
    bool *ready = ir_alloc_array(ctx, n + 1, sizeof *ready);
    ir_value **xs = ir_alloc_array(ctx, n + 1, sizeof *xs);
    int64_t *ks = ir_alloc_array(ctx, n + 1, sizeof *ks);
    double **hs = ir_alloc_array(ctx, n + 1, sizeof *hs);
    double **cs = ir_alloc_array(ctx, n + 1, sizeof *cs); /* --gptq-float-target */
    size_t *slot = ir_alloc_array(ctx, n + 1, sizeof *slot);
    if (!ls || !ready || !xs || !ks || !hs || !cs || !slot)
        return OCT_EINTERNAL;
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) {
        bool first = true; /* a weight shared by several layers: its first */
        for (size_t j = 0; j < i; j++)
            first &= sel[j].node->in[sel[j].input] != sel[i].node->in[sel[i].input];
        if (first && layer_of(&sel[i], &ls[nl]))
            ls[nl++].sel = i;
    }
    oct_status st = OCT_OK;
    size_t n_done = 0, nx = 0;
    gptq_layers layers = {ls, nl, sel}; /* --gptq-float-target swaps their weights */
    if (progress)
        progress(progress_user, 3, 0, nl);
    if (opts->wo_load_stats || opts->wo_save_stats) {
        /* statistics saved or loaded: every layer's Hessian from the float
         * model in one pass (a shard cannot see the other shards' quantized
         * layers), so that merged shards are one calibration */
        st = wave_inputs(ctx, ls, nl, NULL, xs, ks, hs, slot, &nx);
        if (!st)
            st = opts->wo_load_stats
                 ? quant_hess_load(m, xs, ks, hs, nx, opts->wo_load_stats, ctx)
                 : quant_wo_hessians(m, xs, ks, nx, data, hs, NULL, ctx);
        if (!st && opts->wo_save_stats)
            st = quant_hess_save(m, xs, ks, hs, nx, data ? data->n : 0, opts->wo_save_stats,
                                 ctx);
        if (!st)
            st = wave_quantize(ctx, ls, nl, NULL, sel, g, opts, hs, NULL, slot, &n_done);
        free_hessians(ctx, hs, ks, nx);
        if (progress && !st)
            progress(progress_user, 3, n_done, nl);
    }
    while (!st && n_done < nl) {
        if ((st = mark_ready(ctx, m->graph, ls, nl, sel, ready)))
            break;
        st = wave_inputs(ctx, ls, nl, ready, xs, ks, hs, slot, &nx);
        OCT_ASSERT(st || nx > 0);
        bool ft = opts->wo_gptq_float_target;
        if (!st)
            st = ft ? quant_hessians_float_target(m, xs, ks, nx, data, hs, cs, swap_done,
                                                  &layers, ctx)
                    : quant_wo_hessians(m, xs, ks, nx, data, hs, NULL, ctx);
        if (!st)
            st = wave_quantize(ctx, ls, nl, ready, sel, g, opts, hs, ft ? cs : NULL, slot,
                               &n_done);
        free_hessians(ctx, hs, ks, nx);
        if (ft)
            free_hessians(ctx, cs, ks, nx);
        if (progress && !st)
            progress(progress_user, 3, n_done, nl);
    }
    /* the float weights back: the rewrite takes the codes from `fixed`, and
     * a reader of the weight that is not quantized keeps the original */
    for (size_t i = 0; i < nl; i++)
        if (ls[i].orig) {
            ir_tensor *t = sel[ls[i].sel].node->in[sel[ls[i].sel].input]->init;
            memcpy(t->data, ls[i].orig, (size_t)(ls[i].K * ls[i].N) * sizeof(float));
            oct_free(ctx, ls[i].orig, (size_t)(ls[i].K * ls[i].N) * sizeof(float));
        }
    return st;
}
