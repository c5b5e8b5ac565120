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
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "codegen.h"
#include "codegen/kernels/octk.h"

static const ir_tensor *const_f32(const cg_tensor *t)
{
    return t && t->place == CG_PLACE_CONST && t->dtype == IR_DT_FLOAT ? t->value->init : NULL;
}

static bool all_f32(const cg_tensor *a, const cg_tensor *b)
{
    return a && b && a->dtype == IR_DT_FLOAT && b->dtype == IR_DT_FLOAT;
}

bool cg_try_sconv(cg_fn *f, const ir_node *n, oct_status *st)
{
    cg_tensor *X = cg_in(f, n, 0), *Wt = cg_in(f, n, 1), *Bt = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    const ir_tensor *w = const_f32(Wt), *bias = Bt ? const_f32(Bt) : NULL;
    if (!cg_kernels_available(f) || !all_f32(X, Y) || !w || (Bt && !bias) ||
        (X->rank != 3 && X->rank != 4) || w->rank != X->rank)
        return false;
    ref_shape xs = {.dtype = X->dtype, .rank = X->rank};
    memcpy(xs.dims, X->dims, (size_t)X->rank * sizeof *xs.dims);
    ref_window win;
    if ((*st = ref_window_init(f->ctx, n, &xs, w->dims + 2, false, &win)) != OCT_OK)
        return true;
    bool two = X->rank == 4;
    int64_t N = X->dims[0], C = X->dims[1], M = w->dims[0], G = ir_attr_int(n, "group", 1);
    if (G < 1 || C % G || M % G || w->dims[1] != C / G || (bias && (int64_t)bias->nelems != M))
        return false;
    octk_sconv a;
    memset(&a, 0, sizeof a);
    a.s = (octk_conv_shape){
        .C = C / G, .H = two ? win.in[0] : 1, .W = win.in[two], .M = M / G,
        .OH = two ? win.out[0] : 1, .OW = win.out[two], .KH = two ? w->dims[2] : 1,
        .KW = w->dims[2 + two], .SH = two ? win.stride[0] : 1, .SW = win.stride[two],
        .DH = two ? win.dilation[0] : 1, .DW = win.dilation[two],
        .PT = two ? win.pad_begin[0] : 0, .PL = win.pad_begin[two]};
    a.y_lo = -INFINITY;
    a.y_hi = INFINITY;
    bool depthwise = G == C && M == C && G > 1;
    int64_t taps = a.s.KH * a.s.KW, K = a.s.C * taps;
    size_t gsize = depthwise ? octk_sdwconv_packed_w_size(C, taps)
                             : octk_sconv_packed_w_size(a.s.M, K);
    int64_t n_packs = depthwise ? 1 : G;
    float *packed = ir_alloc_array(f->ctx, (size_t)n_packs, gsize);
    if (!packed) {
        *st = OCT_EINTERNAL;
        return true;
    }
    if (depthwise) {
        a.s.C = a.s.M = C;
        octk_sdwconv_pack_w(packed, w->data, C, taps);
    } else {
        for (int64_t g = 0; g < G; g++)
            octk_sconv_pack_w((float *)((uint8_t *)packed + g * gsize),
                              (const float *)w->data + g * a.s.M * K, a.s.M, K);
    }
    LLVMValueRef gw = cg_weight_data(f, packed, (size_t)n_packs * gsize, NULL);
    LLVMValueRef gb = bias ? cg_ptr(f, Bt) : NULL;
    LLVMValueRef work = cg_workspace(f, depthwise ? octk_sdwconv_work_size(&a)
                                                  : octk_sconv_work_size(&a));
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    int64_t x_plane = a.s.H * a.s.W, y_plane = a.s.OH * a.s.OW;
    int64_t groups = depthwise ? 1 : G;
    for (int64_t b = 0; b < N; b++)
        for (int64_t g = 0; g < groups; g++) {
            int64_t cin = depthwise ? 0 : g * a.s.C, cout = depthwise ? 0 : g * a.s.M;
            cg_kptr ptrs[5] = {
                {offsetof(octk_sconv, x), cg_gep(f, f->f32, px, cg_i64c(f, (b * C + cin) * x_plane))},
                {offsetof(octk_sconv, y), cg_gep(f, f->f32, py, cg_i64c(f, (b * M + cout) * y_plane))},
                {offsetof(octk_sconv, w), cg_gep(f, f->i8, gw, cg_i64c(f, g * (int64_t)gsize))},
                {offsetof(octk_sconv, work), work},
                {offsetof(octk_sconv, bias), gb ? cg_gep(f, f->f32, gb, cg_i64c(f, cout))
                                                : LLVMConstPointerNull(f->ptr)}};
            cg_kernel_call(f, depthwise ? "sdwconv" : "sconv", &a, sizeof a, ptrs, 5);
        }
    cg_report(f, n, depthwise ? "octk_sdwconv" : "octk_sconv", "f32 FMA");
    *st = OCT_OK;
    return true;
}

/* y[rows][N] = a[rows][K] x alpha*b + bias with b(k, n) at
 * b[k*stride_k + n*stride_n]; bias [N] or NULL. */
static void emit_sgemm(cg_fn *f, const ir_node *n, const cg_tensor *A, const cg_tensor *Y,
                       const ir_tensor *b, float alpha, int64_t K, int64_t N, int64_t stride_k,
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
    size_t psize = octk_sgemm_packed_b_size(K, N);
    float *packed = ir_alloc_array(f->ctx, 1, psize);
    if (!packed) {
        *st = OCT_EINTERNAL;
        return;
    }
    octk_sgemm_pack_b(packed, b->data, alpha, K, N, stride_k, stride_n);
    cg_kptr ptrs[5] = {
        {offsetof(octk_sgemm, a), cg_ptr(f, A)},
        {offsetof(octk_sgemm, y), cg_ptr(f, Y)},
        {offsetof(octk_sgemm, b), cg_weight_data(f, packed, psize, NULL)},
        {offsetof(octk_sgemm, bias), bias ? cg_weight_data(f, bias, (size_t)N * sizeof *bias, NULL)
                                          : LLVMConstPointerNull(f->ptr)},
        {offsetof(octk_sgemm, work), cg_workspace(f, octk_sgemm_work_size(&a))}};
    cg_kernel_call(f, "sgemm", &a, sizeof a, ptrs, 5);
    cg_report(f, n, "octk_sgemm", "f32 FMA");
    *st = OCT_OK;
}

bool cg_try_sgemm(cg_fn *f, const ir_node *n, oct_status *st)
{
    cg_tensor *A = cg_in(f, n, 0), *Bt = cg_in(f, n, 1), *Ct = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    const ir_tensor *b = const_f32(Bt), *c = Ct ? const_f32(Ct) : NULL;
    bool tb = ir_attr_int(n, "transB", 0) != 0;
    float alpha = ir_attr_float(n, "alpha", 1.0f), beta = ir_attr_float(n, "beta", 1.0f);
    if (!cg_kernels_available(f) || !all_f32(A, Y) || !b || b->rank != 2 || A->rank != 2 ||
        ir_attr_int(n, "transA", 0) != 0 || (Ct && !c))
        return false;
    int64_t K = A->dims[1], N = b->dims[tb ? 0 : 1];
    if (b->dims[tb ? 1 : 0] != K)
        return false;
    float *bias = NULL;
    if (c && beta != 0.0f) {
        /* C broadcast along rows: a scalar, [N] or [1, N] */
        bool row = c->nelems == 1 || ((int64_t)c->nelems == N && c->dims[c->rank - 1] == N);
        if (!row)
            return false;
        if (!(bias = ir_alloc_array(f->ctx, (size_t)N, sizeof *bias))) {
            *st = OCT_EINTERNAL;
            return true;
        }
        for (int64_t j = 0; j < N; j++)
            bias[j] = beta * ((const float *)c->data)[c->nelems == 1 ? 0 : j];
    }
    emit_sgemm(f, n, A, Y, b, alpha, K, N, tb ? 1 : N, tb ? K : 1, bias, st);
    return true;
}

bool cg_try_smatmul(cg_fn *f, const ir_node *n, oct_status *st)
{
    cg_tensor *A = cg_in(f, n, 0), *Bt = cg_in(f, n, 1), *Y = cg_out(f, n, 0);
    const ir_tensor *b = const_f32(Bt);
    if (!cg_kernels_available(f) || !all_f32(A, Y) || !b || b->rank != 2 || A->rank < 2 ||
        A->dims[A->rank - 1] != b->dims[0])
        return false;
    emit_sgemm(f, n, A, Y, b, 1.0f, b->dims[0], b->dims[1], b->dims[1], 1, NULL, st);
    return true;
}
