/*
 * lower_kfloat.c: float32 Conv, Gemm and MatMul with constant weights onto
 * the kernel library (octk_sconv, octk_sdwconv, octk_sgemm: packed weights,
 * register-blocked FMA microkernels).  Each cg_try_* handles the forms it
 * can and returns false otherwise, leaving the node to the loop lowerings
 * of lower_conv.c and lower_gemm.c (non-constant weights, 3-D convs, a
 * Gemm bias that is a full matrix, targets without the kernel library).
 * Float numerics as everywhere in the backend: FMA and reordered sums,
 * within the tolerance of the reference; Gemm's alpha is folded into the
 * packed weights and beta into the bias (one float product each).
 *
 * FP8 weights: a weight that is the output of a DequantizeLinear of FP8
 * bytes (fp8_source lists the conditions) is packed as bytes in the float
 * layout, with one scale per output channel, and the kernel widens it at
 * run time, w = fp8(byte) * scale in one float32 multiplication: the bits
 * of the reference's DequantizeLinear (octk.h, "FP8 weights").
 * cg_plan_fp8_weights decides before the memory plan, with the same checks
 * the cg_try_* make (the *_form functions), so the DequantizeLinear can
 * emit nothing and its output get no memory.  Gemm needs alpha = 1 there:
 * folding alpha into the scale would be a second rounding unless it is
 * exact, and 1 is the form quantized models have.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"

/* ---- where the weights come from ---------------------------------------- */

/* A weight input as the kernels take it: float32 values of an initializer,
 * or FP8 codes of a DequantizeLinear's initializer with its scales. */
typedef struct kf_weight {
    const cg_tensor *t;     /* the float weight the node reads (dims) */
    const float *f32;       /* initializer values, or NULL */
    const uint8_t *q;       /* FP8 codes, the weight's shape, or NULL */
    ir_dtype qtype;         /* IR_DT_FLOAT8E4M3FN or IR_DT_FLOAT8E5M2 */
    const float *scale;     /* n_scale scales */
    int64_t n_scale;        /* 1, or the extent of the weight along axis */
    int axis;               /* axis of a per-axis scale (normalized) */
} kf_weight;

static const ir_tensor *init_f32(const cg_tensor *t)
{
    const ir_tensor *it = t && t->value ? t->value->init : NULL;
    return it && it->dtype == IR_DT_FLOAT ? it : NULL;
}

static bool all_f32(const cg_tensor *a, const cg_tensor *b)
{
    return a && b && a->dtype == IR_DT_FLOAT && b->dtype == IR_DT_FLOAT;
}

/* Whether w (a float weight of the node) is the output of a
 * DequantizeLinear whose kernel-side widening gives the reference's bits,
 * and if so fills q/qtype/scale/n_scale/axis:
 *   - x a constant FLOAT8E4M3FN or FLOAT8E5M2 initializer of w's shape;
 *   - scale a constant float32: one element, or 1-D along `axis`; every
 *     scale finite and > 0 (as the reference requires);
 *   - zero point absent, or constant of x's type, the scale's size, every
 *     byte +0 or -0;
 *   - no block_size; the output float32;
 *   - E4M3FN: no NaN code (0x7f, 0xff: the kernels' fp16 form would read
 *     it as 1.875) and scale * 256 finite and normal (the kernels multiply
 *     by it, octk.h).
 * Whether the node alone reads w is the caller's check. */
static bool fp8_source(const cg_tensor *tens, const cg_tensor *w, kf_weight *out)
{
    const ir_node *dq = w->value ? w->value->producer : NULL;
    if (!dq || dq->op != IR_OP_DEQUANTIZELINEAR || w->value->init || w->dtype != IR_DT_FLOAT ||
        dq->n_in < 2 || !dq->in[0] || !dq->in[1] || ir_attr_int(dq, "block_size", 0) != 0)
        return false;
    const ir_tensor *x = dq->in[0]->init, *s = init_f32(&tens[dq->in[1]->id]);
    const ir_tensor *z = dq->n_in > 2 && dq->in[2] ? dq->in[2]->init : NULL;
    if (!x || !s || (dq->n_in > 2 && dq->in[2] && !z) || s->nelems < 1 ||
        (x->dtype != IR_DT_FLOAT8E4M3FN && x->dtype != IR_DT_FLOAT8E5M2) ||
        x->rank != w->rank || x->nelems != w->nelems)
        return false;
    for (int d = 0; d < x->rank; d++)
        if (x->dims[d] != w->dims[d])
            return false;
    int axis = 0;
    if (s->nelems > 1) {
        if (s->rank != 1 || !ops_norm_axis(ir_attr_int(dq, "axis", 1), x->rank, &axis) ||
            x->dims[axis] != (int64_t)s->nelems)
            return false;
    }
    bool e4m3 = x->dtype == IR_DT_FLOAT8E4M3FN;
    const float *sv = s->data;
    for (uint64_t i = 0; i < s->nelems; i++)
        if (!(isfinite(sv[i]) && sv[i] > 0.0f) || (e4m3 && !isnormal(sv[i] * 256.0f)))
            return false;
    if (z) {
        if (z->dtype != x->dtype || z->nelems != s->nelems)
            return false;
        for (uint64_t i = 0; i < z->nelems; i++)
            if (((const uint8_t *)z->data)[i] & 0x7f)
                return false;
    }
    const uint8_t *q = x->data;
    for (uint64_t i = 0; e4m3 && i < x->nelems; i++)
        if ((q[i] & 0x7f) == 0x7f)
            return false;
    *out = (kf_weight){.t = w, .q = q, .qtype = x->dtype, .scale = sv,
                       .n_scale = (int64_t)s->nelems, .axis = axis};
    return true;
}

/* The weight of input 1 of n: a float32 initializer, or (only if marked
 * absorbed by the plan) an FP8 source. */
static bool weight_of(const cg_tensor *tens, const cg_tensor *w, kf_weight *out)
{
    if (!w)
        return false;
    const ir_tensor *it = init_f32(w);
    if (it) {
        *out = (kf_weight){.t = w, .f32 = it->data};
        return true;
    }
    return w->absorbed && fp8_source(tens, w, out);
}

/* FP8 scales are one per tensor or along the weight's axis out_axis. */
static bool scale_axis_ok(const kf_weight *w, int out_axis)
{
    return !w->q || w->n_scale == 1 || w->axis == out_axis;
}

/* The n scales of the output channels (per tensor: repeated), in the arena. */
static float *channel_scales(cg_fn *f, const kf_weight *w, int64_t n)
{
    float *s = ir_alloc_array(f->ctx, (size_t)(n ? n : 1), sizeof *s);
    for (int64_t i = 0; s && i < n; i++)
        s[i] = w->scale[w->n_scale == 1 ? 0 : i];
    return s;
}

static int32_t octk_fp8_type(ir_dtype dt)
{
    return dt == IR_DT_FLOAT8E4M3FN ? OCTK_FP8_E4M3FN : OCTK_FP8_E5M2;
}

/* The compile report's path of a float kernel with weights w. */
static const char *float_path(cg_fn *f, const kf_weight *w)
{
    if (!w->q)
        return "f32 FMA";
    bool f16c = (cg_kernels_isa(f) & OCTK_ISA_AVX2) != 0;
    if (w->qtype == IR_DT_FLOAT8E4M3FN)
        return f16c ? "f32 FMA, FP8 E4M3FN weights (F16C widening)"
                    : "f32 FMA, FP8 E4M3FN weights (scalar widening)";
    return f16c ? "f32 FMA, FP8 E5M2 weights (F16C widening)"
                : "f32 FMA, FP8 E5M2 weights (scalar widening)";
}

/* ---- which forms the kernels take ---------------------------------------- */

/* The checks of cg_try_sconv that need no geometry (ops_window_init):
 * float x and y, a constant weight of x's rank (1-D or 2-D conv), a
 * constant bias of M, groups that divide the channels. */
static bool sconv_form(const cg_tensor *tens, const ir_node *n, const kf_weight *w)
{
    const cg_tensor *X = n->n_in > 0 && n->in[0] ? &tens[n->in[0]->id] : NULL;
    const cg_tensor *Bt = n->n_in > 2 && n->in[2] ? &tens[n->in[2]->id] : NULL;
    const cg_tensor *Y = n->n_out > 0 && n->out[0] ? &tens[n->out[0]->id] : NULL;
    const ir_tensor *bias = init_f32(Bt);
    if (!all_f32(X, Y) || (Bt && !bias) || (X->rank != 3 && X->rank != 4) ||
        w->t->rank != X->rank || !scale_axis_ok(w, 0))
        return false;
    int64_t C = X->dims[1], M = w->t->dims[0], G = ir_attr_int(n, "group", 1);
    return G >= 1 && C % G == 0 && M % G == 0 && w->t->dims[1] == C / G &&
           (!bias || (int64_t)bias->nelems == M);
}

/* The checks of cg_try_sgemm; fills *tb (transB). */
static bool sgemm_form(const cg_tensor *tens, const ir_node *n, const kf_weight *w, bool *tb)
{
    const cg_tensor *A = n->n_in > 0 && n->in[0] ? &tens[n->in[0]->id] : NULL;
    const cg_tensor *Ct = n->n_in > 2 && n->in[2] ? &tens[n->in[2]->id] : NULL;
    const cg_tensor *Y = n->n_out > 0 && n->out[0] ? &tens[n->out[0]->id] : NULL;
    const ir_tensor *c = init_f32(Ct);
    *tb = ir_attr_int(n, "transB", 0) != 0;
    if (!all_f32(A, Y) || w->t->rank != 2 || A->rank != 2 || ir_attr_int(n, "transA", 0) != 0 ||
        (Ct && !c) || w->t->dims[*tb ? 1 : 0] != A->dims[1] || !scale_axis_ok(w, *tb ? 0 : 1) ||
        (w->q && ir_attr_float(n, "alpha", 1.0f) != 1.0f))
        return false;
    if (!c || ir_attr_float(n, "beta", 1.0f) == 0.0f)
        return true;
    /* C broadcast along rows: a scalar, [N] or [1, N] */
    int64_t N = w->t->dims[*tb ? 0 : 1];
    return c->nelems == 1 || ((int64_t)c->nelems == N && c->dims[c->rank - 1] == N);
}

/* The checks of cg_try_smatmul: a 2-D constant B. */
static bool smatmul_form(const cg_tensor *tens, const ir_node *n, const kf_weight *w)
{
    const cg_tensor *A = n->n_in > 0 && n->in[0] ? &tens[n->in[0]->id] : NULL;
    const cg_tensor *Y = n->n_out > 0 && n->out[0] ? &tens[n->out[0]->id] : NULL;
    return all_f32(A, Y) && w->t->rank == 2 && A->rank >= 2 &&
           A->dims[A->rank - 1] == w->t->dims[0] && scale_axis_ok(w, 1);
}

static bool kernel_form(const cg_tensor *tens, const ir_node *n, const kf_weight *w)
{
    bool tb;
    switch (n->op) {
    case IR_OP_CONV: return sconv_form(tens, n, w);
    case IR_OP_GEMM: return sgemm_form(tens, n, w, &tb);
    case IR_OP_MATMUL: return smatmul_form(tens, n, w);
    default: return false;
    }
}

oct_status cg_plan_fp8_weights(oct_ctx *ctx, const ir_graph *g, bool kernels,
                               const int (*span)[2], cg_tensor *tens)
{
    if (!kernels)
        return OCT_OK;
    /* reads of each value (graph outputs count), and DQ outputs that a
     * fused run computes */
    int *uses = ir_alloc_array(ctx, g->n_values ? g->n_values : 1, sizeof *uses);
    bool *in_run = ir_alloc_array(ctx, g->n_values ? g->n_values : 1, sizeof *in_run);
    if (!uses || !in_run)
        return OCT_EINTERNAL;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i])
                uses[n->in[i]->id]++;
        if (span[k][0] != span[k][1])
            for (int i = 0; i < n->n_out; i++)
                if (n->out[i])
                    in_run[n->out[i]->id] = true;
    }
    for (size_t i = 0; i < g->n_outputs; i++)
        uses[g->outputs[i]->id]++;
    for (size_t k = 0; k < g->n_nodes; k++) {
        const ir_node *n = g->nodes[k];
        if ((n->op != IR_OP_CONV && n->op != IR_OP_GEMM && n->op != IR_OP_MATMUL) ||
            n->n_in < 2 || !n->in[1] || !tens[n->in[1]->id].value)
            continue;
        cg_tensor *w = &tens[n->in[1]->id];
        kf_weight kw;
        if (uses[n->in[1]->id] != 1 || in_run[n->in[1]->id] || !fp8_source(tens, w, &kw) ||
            !kernel_form(tens, n, &kw))
            continue;
        w->absorbed = true;
    }
    return OCT_OK;
}

/* ---- lowerings ------------------------------------------------------------ */

/* A weight the plan absorbed must be taken: its DequantizeLinear emitted
 * nothing. */
static bool decline(const kf_weight *w)
{
    OCT_ASSERT(!w->q);
    return false;
}

/* Conv n on the kernels, writing Y (n's output, or that of the Relu fused
 * into it) clamped below at y_lo (-Inf: no clamp; 0: the Relu). */
static bool try_sconv_into(cg_fn *f, const ir_node *n, cg_tensor *Y, float y_lo, oct_status *st)
{
    cg_tensor *X = cg_in(f, n, 0), *Wt = cg_in(f, n, 1), *Bt = cg_in(f, n, 2);
    kf_weight w;
    if (!weight_of(f->tens, Wt, &w))
        return false;
    if (!cg_kernels_available(f) || !sconv_form(f->tens, n, &w))
        return decline(&w);
    const ir_tensor *bias = Bt ? init_f32(Bt) : NULL;
    ops_shape xs = {.dtype = X->dtype, .rank = X->rank};
    memcpy(xs.dims, X->dims, (size_t)X->rank * sizeof *xs.dims);
    ops_window win;
    if ((*st = ops_window_init(f->ctx, n, &xs, Wt->dims + 2, false, &win)) != OCT_OK)
        return true;
    bool two = X->rank == 4;
    int64_t N = X->dims[0], C = X->dims[1], M = Wt->dims[0], G = ir_attr_int(n, "group", 1);
    octk_sconv a;
    memset(&a, 0, sizeof a);
    a.s = (octk_conv_shape){
        .C = C / G, .H = two ? win.in[0] : 1, .W = win.in[two], .M = M / G,
        .OH = two ? win.out[0] : 1, .OW = win.out[two], .KH = two ? Wt->dims[2] : 1,
        .KW = Wt->dims[2 + two], .SH = two ? win.stride[0] : 1, .SW = win.stride[two],
        .DH = two ? win.dilation[0] : 1, .DW = win.dilation[two],
        .PT = two ? win.pad_begin[0] : 0, .PL = win.pad_begin[two]};
    a.y_lo = y_lo;
    a.y_hi = INFINITY;
    bool depthwise = G == C && M == C && G > 1;
    int64_t taps = a.s.KH * a.s.KW, K = a.s.C * taps;
    size_t gsize;
    if (w.q)
        gsize = depthwise ? octk_sdwconv_packed_w8_size(C, taps)
                          : octk_sconv_packed_w8_size(a.s.M, K);
    else
        gsize = depthwise ? octk_sdwconv_packed_w_size(C, taps)
                          : octk_sconv_packed_w_size(a.s.M, K);
    int64_t n_packs = depthwise ? 1 : G;
    uint8_t *packed = ir_alloc_array(f->ctx, (size_t)n_packs, gsize);
    float *scales = w.q ? channel_scales(f, &w, M) : NULL;
    if (!packed || (w.q && !scales)) {
        *st = OCT_EINTERNAL;
        return true;
    }
    if (depthwise)
        a.s.C = a.s.M = C;
    for (int64_t g = 0; g < n_packs; g++) {
        uint8_t *dst = packed + g * gsize;
        if (w.q && depthwise)
            octk_sdwconv_pack_w8(dst, w.q, C, taps);
        else if (w.q)
            octk_sconv_pack_w8(dst, w.q + g * a.s.M * K, a.s.M, K);
        else if (depthwise)
            octk_sdwconv_pack_w((float *)dst, w.f32, C, taps);
        else
            octk_sconv_pack_w((float *)dst, w.f32 + g * a.s.M * K, a.s.M, K);
    }
    if (w.q)
        a.w8_type = octk_fp8_type(w.qtype);
    LLVMValueRef gw = cg_weight_data(f, packed, (size_t)n_packs * gsize, NULL);
    LLVMValueRef gs = w.q ? cg_weight_data(f, scales, (size_t)M * sizeof *scales, NULL) : NULL;
    LLVMValueRef gb = bias ? cg_ptr(f, Bt) : NULL;
    const char *family = depthwise ? "sdwconv" : "sconv";
    /* H, W, OH, OW read at run time when symbolic (symdims.h): set in the
     * args at run time, the workspace sized by NAME_run_dims */
    const cg_dyn_field dyn[4] = {{offsetof(octk_sconv, s.H), X, 2},
                                 {offsetof(octk_sconv, s.W), X, 3},
                                 {offsetof(octk_sconv, s.OH), Y, 2},
                                 {offsetof(octk_sconv, s.OW), Y, 3}};
    bool is_dyn = X->dyn || Y->dyn;
    LLVMValueRef work = is_dyn ? cg_dyn_workspace(f, family, &a, sizeof a, dyn, 4)
                               : cg_workspace(f, depthwise ? octk_sdwconv_work_size(&a)
                                                           : octk_sconv_work_size(&a));
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y), null = LLVMConstPointerNull(f->ptr);
    LLVMValueRef x_plane = cg_i64c(f, a.s.H * a.s.W), y_plane = cg_i64c(f, a.s.OH * a.s.OW);
    if (is_dyn) {
        x_plane = cg_mul(f, cg_dim(f, X, 2), cg_dim(f, X, 3));
        y_plane = cg_mul(f, cg_dim(f, Y, 2), cg_dim(f, Y, 3));
    }
    int64_t groups = depthwise ? 1 : G;
    for (int64_t b = 0; b < N; b++)
        for (int64_t g = 0; g < groups; g++) {
            int64_t cin = depthwise ? 0 : g * a.s.C, cout = depthwise ? 0 : g * a.s.M;
            LLVMValueRef wg = cg_gep(f, f->i8, gw, cg_i64c(f, g * (int64_t)gsize));
            cg_kptr ptrs[11] = {
                {offsetof(octk_sconv, x), cg_gep(f, f->f32, px, cg_mul(f, cg_i64c(f, b * C + cin), x_plane))},
                {offsetof(octk_sconv, y), cg_gep(f, f->f32, py, cg_mul(f, cg_i64c(f, b * M + cout), y_plane))},
                {offsetof(octk_sconv, w), w.q ? null : wg},
                {offsetof(octk_sconv, work), work},
                {offsetof(octk_sconv, bias), gb ? cg_gep(f, f->f32, gb, cg_i64c(f, cout)) : null},
                {offsetof(octk_sconv, w8), w.q ? wg : null},
                {offsetof(octk_sconv, w8_scale), gs ? cg_gep(f, f->f32, gs, cg_i64c(f, cout)) : null}};
            int np = w.q ? 7 : 5;
            for (int i = 0; is_dyn && i < 4; i++)
                ptrs[np++] = (cg_kptr){dyn[i].offset, cg_dim(f, dyn[i].t, dyn[i].d)};
            cg_kernel_call(f, family, &a, sizeof a, ptrs, np);
        }
    cg_report(f, n, depthwise ? "octk_sdwconv" : "octk_sconv", float_path(f, &w));
    *st = OCT_OK;
    return true;
}

bool cg_try_sconv(cg_fn *f, const ir_node *n, oct_status *st)
{
    return try_sconv_into(f, n, cg_out(f, n, 0), -INFINITY, st);
}

/* The Relu's y = x < 0 ? 0 : x is the kernel's clamp min(max(x, 0), +Inf)
 * bit for bit: NaN kept, -0 kept (max of two zeros returns x). */
bool cg_sconv_fuses_relu(const cg_tensor *tens, const ir_node *conv, const ir_node *relu)
{
    kf_weight w;
    if (conv->op != IR_OP_CONV || relu->op != IR_OP_RELU || conv->n_in < 2 || !conv->in[0] ||
        !conv->in[1] || conv->n_out < 1 || !conv->out[0] || relu->n_in < 1 ||
        relu->in[0] != conv->out[0] || relu->n_out < 1 || !relu->out[0] ||
        !relu->out[0]->name[0])
        return false;
    const cg_tensor *X = &tens[conv->in[0]->id], *Y = &tens[conv->out[0]->id],
                    *R = &tens[relu->out[0]->id];
    if (!X->value || !Y->value || !R->value || X->dyn || Y->dyn || R->dyn ||
        R->dtype != IR_DT_FLOAT || R->nbytes != Y->nbytes ||
        !weight_of(tens, &tens[conv->in[1]->id], &w) || w.q || !sconv_form(tens, conv, &w))
        return false;
    return true;
}

oct_status cg_lower_conv_relu(cg_fn *f, const ir_node *conv, const ir_node *relu)
{
    oct_status st = OCT_OK;
    if (!try_sconv_into(f, conv, cg_out(f, relu, 0), 0.0f, &st))
        return oct_node_error(f->ctx, OCT_EINTERNAL, conv,
                              "compile: the Conv planned with its Relu is not on the kernels");
    if (st == OCT_OK)
        cg_report(f, relu, "fused", "the Conv's clamp");
    return st;
}

bool cg_sconv_takes_dynamic(cg_fn *f, const ir_node *n)
{
    const cg_tensor *X = cg_in(f, n, 0), *Wt = cg_in(f, n, 1), *Bt = cg_in(f, n, 2),
                    *Y = cg_out(f, n, 0);
    kf_weight w;
    if (n->op != IR_OP_CONV || !X || !Y || !cg_kernels_available(f) ||
        !weight_of(f->tens, Wt, &w) || !sconv_form(f->tens, n, &w) || Wt->dyn ||
        (Bt && Bt->dyn) || X->rank != 4)
        return false;
    /* only H and W vary, and explicit pads (auto_pad's depend on them) */
    const char *pad = ir_attr_string(f->ctx, n, "auto_pad", "NOTSET");
    for (int d = 0; d < 2; d++)
        if ((X->dyn && X->sym[d] >= 0) || (Y->dyn && Y->sym[d] >= 0))
            return false;
    return !strcmp(pad, "NOTSET") || !strcmp(pad, "VALID");
}

/* y[rows][N] = a[rows][K] x alpha*b + bias with b(k, n) at
 * b[k*stride_k + n*stride_n] (w: float values, or FP8 codes with scales
 * along n, alpha 1); bias [N] or NULL. */
/* Rows per kernel call when M is known only at run time. */
enum { SGEMM_DYN_ROWS = 64 };

static void emit_sgemm(cg_fn *f, const ir_node *n, const cg_tensor *A, const cg_tensor *Y,
                       const kf_weight *w, float alpha, int64_t K, int64_t N, int64_t stride_k,
                       int64_t stride_n, const float *bias, oct_status *st)
{
    octk_sgemm a;
    memset(&a, 0, sizeof a);
    a.M = (int64_t)(A->nelems / (uint64_t)(K ? K : 1));
    a.N = N;
    a.K = K;
    a.lda = K;
    a.ldy = N;
    a.y_lo = -INFINITY;
    a.y_hi = INFINITY;
    size_t psize = w->q ? octk_sgemm_packed_b8_size(K, N) : octk_sgemm_packed_b_size(K, N);
    void *packed = ir_alloc_array(f->ctx, 1, psize);
    float *scales = w->q ? channel_scales(f, w, N) : NULL;
    if (!packed || (w->q && !scales)) {
        *st = OCT_EINTERNAL;
        return;
    }
    LLVMValueRef null = LLVMConstPointerNull(f->ptr), gb = null, gs = null;
    if (w->q) {
        octk_sgemm_pack_b8(packed, w->q, K, N, stride_k, stride_n);
        a.w8_type = octk_fp8_type(w->qtype);
        gb = cg_weight_data(f, packed, psize, NULL);
        gs = cg_weight_data(f, scales, (size_t)N * sizeof *scales, NULL);
    } else {
        octk_sgemm_pack_b(packed, w->f32, alpha, K, N, stride_k, stride_n);
    }
    LLVMValueRef pa = cg_ptr(f, A), py = cg_ptr(f, Y);
    cg_loop chunks;
    LLVMValueRef rows = NULL;
    if (A->dyn) {
        /* M known at run time (symdims.h): chunks of SGEMM_DYN_ROWS rows,
         * each a call with its M set at run time and the workspace sized
         * for the largest chunk at compile time */
        size_t work = 0;
        for (a.M = 1; a.M <= SGEMM_DYN_ROWS; a.M++)
            if (octk_sgemm_work_size(&a) > work)
                work = octk_sgemm_work_size(&a);
        LLVMValueRef M = LLVMBuildSDiv(f->b, cg_nelems_v(f, A), cg_i64c(f, K ? K : 1), "");
        LLVMValueRef n_chunks = LLVMBuildSDiv(f->b, cg_add(f, M, cg_i64c(f, SGEMM_DYN_ROWS - 1)),
                                              cg_i64c(f, SGEMM_DYN_ROWS), "");
        LLVMValueRef wsp = cg_workspace(f, work);
        LLVMValueRef c = cg_loop_begin_v(f, &chunks, n_chunks);
        LLVMValueRef r0 = cg_mul(f, c, cg_i64c(f, SGEMM_DYN_ROWS));
        LLVMValueRef left = LLVMBuildSub(f->b, M, r0, "");
        LLVMValueRef full = cg_i64c(f, SGEMM_DYN_ROWS);
        rows = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, left, full, ""), left, full, "");
        pa = cg_gep(f, f->f32, pa, cg_mul(f, r0, cg_i64c(f, K)));
        py = cg_gep(f, f->f32, py, cg_mul(f, r0, cg_i64c(f, N)));
        a.M = 0;
        cg_kptr ptrs[8] = {
            {offsetof(octk_sgemm, a), pa},
            {offsetof(octk_sgemm, y), py},
            {offsetof(octk_sgemm, b), w->q ? null : cg_weight_data(f, packed, psize, NULL)},
            {offsetof(octk_sgemm, bias), bias ? cg_weight_data(f, bias, (size_t)N * sizeof *bias,
                                                               NULL) : null},
            {offsetof(octk_sgemm, work), wsp},
            {offsetof(octk_sgemm, M), rows},
            {offsetof(octk_sgemm, w8), gb},
            {offsetof(octk_sgemm, w8_scale), gs}};
        cg_kernel_call(f, "sgemm", &a, sizeof a, ptrs, w->q ? 8 : 6);
        cg_loop_end(f, &chunks);
        cg_report(f, n, "octk_sgemm", float_path(f, w));
        *st = OCT_OK;
        return;
    }
    cg_kptr ptrs[7] = {
        {offsetof(octk_sgemm, a), pa},
        {offsetof(octk_sgemm, y), py},
        {offsetof(octk_sgemm, b), w->q ? null : cg_weight_data(f, packed, psize, NULL)},
        {offsetof(octk_sgemm, bias), bias ? cg_weight_data(f, bias, (size_t)N * sizeof *bias, NULL)
                                          : null},
        {offsetof(octk_sgemm, work), cg_workspace(f, octk_sgemm_work_size(&a))},
        {offsetof(octk_sgemm, w8), gb},
        {offsetof(octk_sgemm, w8_scale), gs}};
    cg_kernel_call(f, "sgemm", &a, sizeof a, ptrs, w->q ? 7 : 5);
    cg_report(f, n, "octk_sgemm", float_path(f, w));
    *st = OCT_OK;
}

bool cg_sgemm_takes_dynamic(cg_fn *f, const ir_node *n)
{
    const cg_tensor *A = cg_in(f, n, 0), *Bt = cg_in(f, n, 1), *Y = cg_out(f, n, 0);
    kf_weight w;
    if ((n->op != IR_OP_GEMM && n->op != IR_OP_MATMUL) || !A || !Y || !cg_kernels_available(f) ||
        !weight_of(f->tens, Bt, &w) || !kernel_form(f->tens, n, &w) || Bt->dyn)
        return false;
    /* the rows vary, the reduction and the columns do not */
    int ra = A->rank, ry = Y->rank;
    return ra >= 1 && ry >= 1 && (!A->dyn || A->sym[ra - 1] < 0) &&
           (!Y->dyn || Y->sym[ry - 1] < 0) && (n->n_in < 3 || !n->in[2] ||
                                              !f->tens[n->in[2]->id].dyn);
}

bool cg_try_sgemm(cg_fn *f, const ir_node *n, oct_status *st)
{
    cg_tensor *A = cg_in(f, n, 0), *Bt = cg_in(f, n, 1), *Ct = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    kf_weight w;
    bool tb;
    if (!weight_of(f->tens, Bt, &w))
        return false;
    if (!cg_kernels_available(f) || !sgemm_form(f->tens, n, &w, &tb))
        return decline(&w);
    const ir_tensor *c = Ct ? init_f32(Ct) : NULL;
    float alpha = ir_attr_float(n, "alpha", 1.0f), beta = ir_attr_float(n, "beta", 1.0f);
    int64_t K = A->dims[1], N = Bt->dims[tb ? 0 : 1];
    float *bias = NULL;
    if (c && beta != 0.0f) { /* a row broadcast (sgemm_form) */
        if (!(bias = ir_alloc_array(f->ctx, (size_t)N, sizeof *bias))) {
            *st = OCT_EINTERNAL;
            return true;
        }
        for (int64_t j = 0; j < N; j++)
            bias[j] = beta * ((const float *)c->data)[c->nelems == 1 ? 0 : j];
    }
    emit_sgemm(f, n, A, Y, &w, alpha, K, N, tb ? 1 : N, tb ? K : 1, bias, st);
    return true;
}

bool cg_try_smatmul(cg_fn *f, const ir_node *n, oct_status *st)
{
    cg_tensor *A = cg_in(f, n, 0), *Bt = cg_in(f, n, 1), *Y = cg_out(f, n, 0);
    kf_weight w;
    if (!weight_of(f->tens, Bt, &w))
        return false;
    if (!cg_kernels_available(f) || !smatmul_form(f->tens, n, &w))
        return decline(&w);
    emit_sgemm(f, n, A, Y, &w, 1.0f, Bt->dims[0], Bt->dims[1], Bt->dims[1], 1, NULL, st);
    return true;
}
