/*
 * lower_qlinear.c: QLinearConv, QLinearMatMul and QGemm (com.microsoft)
 * onto the integer kernels of the kernel library (octk_qconv, octk_qdwconv,
 * octk_qgemm), which is what qdq_fuse makes of quantized Conv, MatMul and
 * Gemm.  At compile time: the weights are packed (minus their zero points)
 * into the kernel's layout, the requantization multipliers are formed per
 * output channel exactly as the reference does (src/ref/qlinear.c:
 * M = (float)((float)(sx * sw) / sy)), and the packer's choice of
 * instruction path goes to the compile report.  The kernels then produce
 * the reference interpreter's bytes (the contract in kernels/octk.h).
 *
 * Forms: activations and outputs 8-bit per tensor with constant scales and
 * zero points; weights constant 8-bit, per tensor or per output channel;
 * bias constant int32; 1-D and 2-D convolutions with groups (depthwise when
 * every group has one input and one output channel); QLinearMatMul with a
 * 2-D B; QGemm with transA = 0 and alpha = 1.  QLinearConv and
 * QLinearMatMul in other forms (weights, scales or zero points known only at
 * run time, float16 scales, batched B, 3-D convolutions) run as loops
 * (lower_qint.c); other forms are reported as unsupported, naming the node.
 */
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"

static bool is_q8(ir_dtype dt)
{
    return dt == IR_DT_UINT8 || dt == IR_DT_INT8;
}

/* Constant tensor of input i, or NULL. */
static const ir_tensor *const_in(const ir_node *n, int i)
{
    return i < n->n_in && n->in[i] ? n->in[i]->init : NULL;
}

static double elem_f(const ir_tensor *t, int64_t i)
{
    return ((const float *)t->data)[t->nelems == 1 ? 0 : i];
}

static int32_t elem_i(const ir_tensor *t, int64_t i)
{
    if (!t)
        return 0;
    int64_t k = t->nelems == 1 ? 0 : i;
    switch (t->dtype) {
    case IR_DT_UINT8: return ((const uint8_t *)t->data)[k];
    case IR_DT_INT8: return ((const int8_t *)t->data)[k];
    default: return ((const int32_t *)t->data)[k];
    }
}

/* A float32 scale of 1 or `count` positive finite elements. */
static bool scale_ok(const ir_tensor *t, int64_t count)
{
    if (!t || t->dtype != IR_DT_FLOAT || (t->nelems != 1 && (int64_t)t->nelems != count))
        return false;
    for (uint64_t i = 0; i < t->nelems; i++) {
        float s = ((const float *)t->data)[i];
        if (!(s > 0) || s > 3.4e38f)
            return false;
    }
    return true;
}

/* A zero point of type dt with 1 or `count` elements (NULL: 0). */
static bool zero_ok(const ir_tensor *t, ir_dtype dt, int64_t count)
{
    return !t || (t->dtype == dt && (t->nelems == 1 || (int64_t)t->nelems == count));
}

/* The requantization multipliers and the output range of one linear op. */
typedef struct qout {
    float *mult;        /* [count] */
    int32_t *w_zero;    /* [count] */
    int32_t *bias;      /* [count] */
    int32_t y_zero, y_lo, y_hi, y_signed;
} qout;

/* Fills q for `count` output channels: scales sx (input sx_i), sw (input
 * sw_i), sy; zero points; bias (input bias_i, or none).  Unsupported forms
 * are reported on node n. */
static oct_status make_qout(cg_fn *f, const ir_node *n, int sx_i, int sw_i, int zw_i, int sy_i,
                            int zy_i, int bias_i, ir_dtype w_dt, int64_t count, qout *q)
{
    const ir_tensor *sx = const_in(n, sx_i), *sw = const_in(n, sw_i), *sy = const_in(n, sy_i);
    const ir_tensor *zw = const_in(n, zw_i), *zy = const_in(n, zy_i);
    const ir_tensor *bias = bias_i >= 0 ? const_in(n, bias_i) : NULL;
    if (!scale_ok(sx, 1) || !scale_ok(sw, count) || !scale_ok(sy, 1))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: scales must be constant "
                              "float32, per tensor (per output channel for the weights)");
    if ((zw_i < n->n_in && n->in[zw_i] && !zw) || !zero_ok(zw, w_dt, count) ||
        (zy_i < n->n_in && n->in[zy_i] && !zy) || (zy && (!is_q8(zy->dtype) || zy->nelems != 1)))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: zero points must be "
                              "constant 8-bit, per tensor (per output channel for the weights)");
    if (bias_i >= 0 && bias_i < n->n_in && n->in[bias_i] &&
        (!bias || bias->dtype != IR_DT_INT32 || (int64_t)bias->nelems != count))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: the bias must be a "
                              "constant int32 with one value per output channel");
    q->mult = ir_alloc_array(f->ctx, (size_t)count, sizeof *q->mult);
    q->w_zero = ir_alloc_array(f->ctx, (size_t)count, sizeof *q->w_zero);
    q->bias = bias ? ir_alloc_array(f->ctx, (size_t)count, sizeof *q->bias) : NULL;
    if (!q->mult || !q->w_zero || (bias && !q->bias))
        return OCT_EINTERNAL;
    double sxv = elem_f(sx, 0), syv = elem_f(sy, 0);
    for (int64_t c = 0; c < count; c++) {
        /* ops_requant_multiplier() of src/ref/qlinear.c for float32 scales */
        q->mult[c] = (float)((double)(float)(sxv * elem_f(sw, c)) / syv);
        q->w_zero[c] = elem_i(zw, c);
        if (q->bias)
            q->bias[c] = elem_i(bias, c);
    }
    ir_dtype y_dt = zy ? zy->dtype : IR_DT_UINT8;
    q->y_signed = y_dt == IR_DT_INT8;
    q->y_zero = elem_i(zy, 0);
    q->y_lo = q->y_signed ? -128 : 0;
    q->y_hi = q->y_signed ? 127 : 255;
    return OCT_OK;
}

static const char *path_name(const cg_fn *f, int path)
{
    if (path != OCTK_PATH_U8S8)
        return "s16 vpmaddwd (exact)";
    return cg_kernels_isa(f) & OCTK_ISA_VNNI ? "u8s8 vpdpbusd (VNNI, exact)"
                                             : "u8s8 vpmaddubsw (no pair can saturate: checked)";
}

static oct_status need_kernels(cg_fn *f, const ir_node *n)
{
    if (!cg_kernels_available(f))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s needs the integer "
                              "kernels, which exist for x86-64 targets only", n->op_type);
    return OCT_OK;
}

/* Input i is a constant or absent. */
static bool const_or_absent(const ir_node *n, int i)
{
    return i >= n->n_in || !n->in[i] || n->in[i]->init;
}

/* The forms the kernels take: x per tensor, the weights and every scale,
 * zero point and bias constant, float32 scales.  Others (run-time weights
 * or parameters, float16 scales, ...) go to the loops of lower_qint.c. */
static bool consts_form(const ir_node *n, int w_i, int last, int64_t count)
{
    if (count < 0)
        return false;
    for (int i = 1; i <= last; i++)
        if (!const_or_absent(n, i))
            return false;
    const ir_tensor *zx = const_in(n, 2), *zy = const_in(n, w_i + 4);
    return scale_ok(const_in(n, 1), 1) && scale_ok(const_in(n, w_i + 1), count) &&
           scale_ok(const_in(n, w_i + 3), 1) && (!zx || zx->nelems == 1) &&
           (!zy || zy->nelems == 1);
}

static bool kernel_form(cg_fn *f, const ir_node *n, int w_i, int last, int64_t count)
{
    return cg_kernels_available(f) && consts_form(n, w_i, last, count);
}

/* ---- QLinearConv ------------------------------------------------------------ */

bool cg_qlinearconv_takes_nhwc(const ir_node *n, const cg_tensor *tens)
{
    const ir_tensor *w = const_in(n, 3);
    const cg_tensor *X = n->n_in > 0 && n->in[0] ? &tens[n->in[0]->id] : NULL;
    return n->op == IR_OP_QLINEARCONV && X && X->value && X->rank == 4 && is_q8(X->dtype) &&
           w && w->rank == 4 && is_q8(w->dtype) && ir_attr_int(n, "group", 1) == 1 &&
           consts_form(n, 3, 8, w->dims[0]) && X->dims[1] >= CG_NHWC_MIN_C;
}

/* Transposes an R x S byte matrix at x into S x R at y (row stride ldy). */
static void call_transpose(cg_fn *f, int64_t R, int64_t S, int64_t ldy, LLVMValueRef x,
                           LLVMValueRef y)
{
    octk_transpose8 t = {.R = R, .S = S, .ldx = S, .ldy = ldy};
    cg_kptr ptrs[2] = {{offsetof(octk_transpose8, x), x}, {offsetof(octk_transpose8, y), y}};
    cg_kernel_call(f, "transpose8", &t, sizeof t, ptrs, 2);
}

/* Pixel stride of an NHWC output: its channels, or those of the NHWC
 * Concat output it is a channel slice of (memplan.c). */
static int64_t nhwc_pixel_stride(const cg_fn *f, const cg_tensor *Y)
{
    return Y->in_concat ? f->tens[Y->concat_out].dims[1] : Y->dims[1];
}

/* QLinearConv n reading an NHWC input (the layout plan, layout.c): per
 * image one integer GEMM of the OH*OW output pixels by the M output
 * channels over K = KH*KW*C taps, its rows the input pixels themselves
 * for a 1x1 convolution at stride 1 without padding, else gathered by
 * the kernel (im2col); the weights packed as b[(kh, kw, c)][m].  The
 * GEMM writes an NHWC output in place, or pixels x channels into the
 * workspace that a transpose turns into an NCHW output. */
static oct_status lower_qconv_nhwc(cg_fn *f, const ir_node *n, const octk_qconv *c,
                                   const ir_tensor *w, const qout *q)
{
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    const octk_conv_shape *s = &c->s;
    int64_t K = s->C * s->KH * s->KW, P = s->OH * s->OW;
    /* the packed weights, then w[m][c][kh][kw] as b(k = (kh*KW + kw)*C + c, m) */
    size_t psize = octk_qgemm_packed_b_size(K, s->M);
    uint8_t *packed = ir_alloc_array(f->ctx, 1, psize + (size_t)(s->M * K));
    if (!packed)
        return OCT_EINTERNAL;
    uint8_t *wt = packed + psize;
    const uint8_t *wb = w->data;
    for (int64_t m = 0; m < s->M; m++)
        for (int64_t ci = 0; ci < s->C; ci++)
            for (int64_t k = 0; k < s->KH * s->KW; k++)
                wt[m * K + k * s->C + ci] = wb[(m * s->C + ci) * s->KH * s->KW + k];
    octk_qgemm_pack_b(packed, wt, w->dtype == IR_DT_INT8, q->w_zero, K, s->M, 1, K,
                      cg_kernels_isa(f));
    octk_qgemm a;
    memset(&a, 0, sizeof a);
    a.M = P;
    a.N = s->M;
    a.K = K;
    a.lda = s->C;
    a.ldy = Y->nhwc ? nhwc_pixel_stride(f, Y) : s->M;
    a.a_signed = c->x_signed;
    a.a_zero = c->x_zero;
    a.y_signed = q->y_signed;
    a.y_zero = q->y_zero;
    a.y_lo = q->y_lo;
    a.y_hi = q->y_hi;
    a.im2col = !(s->KH == 1 && s->KW == 1 && s->SH == 1 && s->SW == 1 && s->PT == 0 &&
                 s->PL == 0 && s->OH == s->H && s->OW == s->W);
    a.conv = *s;
    uint64_t gemm_work = (uint64_t)octk_qgemm_work_size(&a);
    /* NCHW output: the pixels x channels product goes after the GEMM's work */
    LLVMValueRef work = cg_workspace(f, gemm_work + (Y->nhwc ? 0 : (uint64_t)(P * s->M)));
    LLVMValueRef prod = cg_gep(f, f->i8, work, cg_i64c(f, (int64_t)gemm_work));
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    LLVMValueRef gw = cg_weight_data(f, packed, psize, NULL);
    LLVMValueRef gbias = q->bias ? cg_weight_data(f, q->bias, (size_t)s->M * sizeof *q->bias, NULL)
                                 : LLVMConstPointerNull(f->ptr);
    LLVMValueRef gmult = cg_weight_data(f, q->mult, (size_t)s->M * sizeof *q->mult, NULL);
    for (int64_t b = 0; b < X->dims[0]; b++) {
        LLVMValueRef y = Y->nhwc ? cg_gep(f, f->i8, py, cg_i64c(f, b * P * a.ldy)) : prod;
        cg_kptr ptrs[7] = {
            {offsetof(octk_qgemm, a), cg_gep(f, f->i8, px, cg_i64c(f, b * s->H * s->W * s->C))},
            {offsetof(octk_qgemm, y), y},
            {offsetof(octk_qgemm, b), gw},
            {offsetof(octk_qgemm, bias), gbias},
            {offsetof(octk_qgemm, mult), gmult},
            {offsetof(octk_qgemm, work), work},
            {offsetof(octk_qgemm, fbias), LLVMConstPointerNull(f->ptr)}};
        cg_kernel_call(f, "qgemm", &a, sizeof a, ptrs, 7);
        if (!Y->nhwc)
            call_transpose(f, P, s->M, P, prod, cg_gep(f, f->i8, py, cg_i64c(f, b * s->M * P)));
    }
    static const char *const kernel[2][2] = {
        {"octk_qgemm (NHWC pixels as rows; output transposed to NCHW)",
         "octk_qgemm (NHWC pixels as rows)"},
        {"octk_qgemm (NHWC im2col rows; output transposed to NCHW)",
         "octk_qgemm (NHWC im2col rows)"}};
    cg_report(f, n, kernel[a.im2col][Y->nhwc], path_name(f, octk_qpacked_path(packed)));
    return OCT_OK;
}

oct_status cg_lower_qlinearconv(cg_fn *f, const ir_node *n)
{
    const ir_tensor *wc = const_in(n, 3);
    cg_tensor *X0 = cg_in(f, n, 0);
    if (!X0 || (X0->rank != 3 && X0->rank != 4) ||
        !kernel_form(f, n, 3, 8, wc && wc->rank >= 1 ? wc->dims[0] : -1))
        return cg_qlinearconv_loops(f, n); /* 3-D convolutions too */
    oct_status st = need_kernels(f, n);
    if (st != OCT_OK)
        return st;
    cg_tensor *X = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    const ir_tensor *w = const_in(n, 3);
    if (!X || !Y || !w || !is_q8(X->dtype) || !is_q8(w->dtype) || (X->rank != 3 && X->rank != 4) ||
        w->rank != X->rank)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: QLinearConv needs 8-bit "
                              "1-D or 2-D input and constant 8-bit weights");
    if (const_in(n, 2) ? const_in(n, 2)->dtype != X->dtype || const_in(n, 2)->nelems != 1
                       : n->in[2] != NULL)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: the input zero point "
                              "must be a constant of the input's type");
    ops_shape xs = {.dtype = X->dtype, .rank = X->rank};
    memcpy(xs.dims, X->dims, (size_t)X->rank * sizeof *xs.dims);
    ops_window win;
    if ((st = ops_window_init(f->ctx, n, &xs, w->dims + 2, false, &win)) != OCT_OK)
        return st;
    bool two = X->rank == 4;
    int64_t N = X->dims[0], C = X->dims[1], M = w->dims[0], G = ir_attr_int(n, "group", 1);
    if (G < 1 || C % G || M % G || w->dims[1] != C / G)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: group does not divide the "
                              "channels");
    qout q;
    if ((st = make_qout(f, n, 1, 4, 5, 6, 7, 8, w->dtype, M, &q)) != OCT_OK)
        return st;
    octk_qconv a;
    memset(&a, 0, sizeof a);
    a.s = (octk_conv_shape){
        .C = C / G, .H = two ? win.in[0] : 1, .W = win.in[two], .M = M / G,
        .OH = two ? win.out[0] : 1, .OW = win.out[two], .KH = two ? w->dims[2] : 1,
        .KW = w->dims[2 + two], .SH = two ? win.stride[0] : 1, .SW = win.stride[two],
        .DH = two ? win.dilation[0] : 1, .DW = win.dilation[two],
        .PT = two ? win.pad_begin[0] : 0, .PL = win.pad_begin[two]};
    a.x_signed = X->dtype == IR_DT_INT8;
    a.x_zero = elem_i(const_in(n, 2), 0);
    a.y_signed = q.y_signed;
    a.y_zero = q.y_zero;
    a.y_lo = q.y_lo;
    a.y_hi = q.y_hi;
    if (X->nhwc) /* the layout plan (layout.c) */
        return lower_qconv_nhwc(f, n, &a, w, &q);
    bool depthwise = G == C && M == C;
    int64_t K = a.s.C * a.s.KH * a.s.KW;
    if (depthwise)
        a.s.C = a.s.M = C;
    size_t gsize = depthwise ? octk_qdwconv_packed_w_size(&a.s)
                             : octk_qconv_packed_w_size(a.s.M, K);
    int64_t n_packs = depthwise ? 1 : G;
    uint8_t *packed = ir_alloc_array(f->ctx, (size_t)n_packs, gsize);
    if (!packed)
        return OCT_EINTERNAL;
    if (depthwise) {
        octk_qdwconv_pack_w(packed, w->data, w->dtype == IR_DT_INT8, q.w_zero, &a.s,
                            cg_kernels_isa(f));
    } else {
        for (int64_t g = 0; g < G; g++)
            octk_qconv_pack_w(packed + g * gsize, (const uint8_t *)w->data + g * a.s.M * K,
                              w->dtype == IR_DT_INT8, q.w_zero + g * a.s.M, a.s.M, K,
                              cg_kernels_isa(f));
    }
    LLVMValueRef gw = cg_weight_data(f, packed, (size_t)n_packs * gsize, NULL);
    LLVMValueRef gmult = cg_weight_data(f, q.mult, (size_t)M * sizeof *q.mult, NULL);
    LLVMValueRef gbias =
        q.bias ? cg_weight_data(f, q.bias, (size_t)M * sizeof *q.bias, NULL) : NULL;
    a.w = packed; /* the work size depends on the packed path; not kept in the args */
    size_t work_size = depthwise ? octk_qdwconv_work_size(&a) : octk_qconv_work_size(&a);
    a.w = NULL;
    int64_t x_plane = a.s.H * a.s.W, y_plane = a.s.OH * a.s.OW;
    /* an NHWC output (the layout plan; one group): the NCHW image goes
     * after the kernel's work and is transposed into place */
    work_size = (work_size + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
    LLVMValueRef work = cg_workspace(f, work_size + (Y->nhwc ? (uint64_t)(M * y_plane) : 0));
    LLVMValueRef px = cg_ptr(f, X), py = cg_ptr(f, Y);
    LLVMValueRef staged = cg_gep(f, f->i8, work, cg_i64c(f, (int64_t)work_size));
    int64_t groups = depthwise ? 1 : G;
    for (int64_t b = 0; b < N; b++)
        for (int64_t g = 0; g < groups; g++) {
            int64_t cin = depthwise ? 0 : g * a.s.C, cout = depthwise ? 0 : g * a.s.M;
            LLVMValueRef y = Y->nhwc ? staged
                                     : cg_gep(f, f->i8, py, cg_i64c(f, (b * M + cout) * y_plane));
            cg_kptr ptrs[6] = {
                {offsetof(octk_qconv, x), cg_gep(f, f->i8, px, cg_i64c(f, (b * C + cin) * x_plane))},
                {offsetof(octk_qconv, y), y},
                {offsetof(octk_qconv, w), cg_gep(f, f->i8, gw, cg_i64c(f, g * (int64_t)gsize))},
                {offsetof(octk_qconv, mult), cg_gep(f, f->f32, gmult, cg_i64c(f, cout))},
                {offsetof(octk_qconv, work), work},
                {offsetof(octk_qconv, bias), gbias ? cg_gep(f, f->i32, gbias, cg_i64c(f, cout))
                                                   : LLVMConstPointerNull(f->ptr)}};
            cg_kernel_call(f, depthwise ? "qdwconv" : "qconv", &a, sizeof a, ptrs, 6);
            if (Y->nhwc) {
                int64_t ld = nhwc_pixel_stride(f, Y);
                call_transpose(f, M, y_plane, ld,
                               staged, cg_gep(f, f->i8, py, cg_i64c(f, b * y_plane * ld)));
            }
        }
    const char *path = path_name(f, octk_qpacked_path(packed));
    if (depthwise)
        path = octk_qpacked_path(packed) == OCTK_PATH_U8S8 ? "u8s8 vpdpbusd direct (VNNI, exact)"
                                                            : "s16 direct (exact)";
    cg_report(f, n, depthwise ? "octk_qdwconv"
                    : Y->nhwc ? "octk_qconv (output transposed to NHWC)" : "octk_qconv", path);
    return OCT_OK;
}

/* ---- QLinearMatMul and QGemm -------------------------------------------------- */

/* y[rows][N] = requant(a[rows][K] x B) with B constant: b(k, n) at
 * b[k*stride_k + n*stride_n]. */
static oct_status lower_qgemm(cg_fn *f, const ir_node *n, const cg_tensor *A, const cg_tensor *Y,
                              const ir_tensor *b, int64_t K, int64_t N, int64_t stride_k,
                              int64_t stride_n, const qout *q, int32_t a_zero,
                              const float *fbias)
{
    octk_qgemm a;
    memset(&a, 0, sizeof a);
    a.y_float = Y->dtype == IR_DT_FLOAT;
    a.M = (int64_t)(A->nelems / (uint64_t)(K ? K : 1));
    a.N = N;
    a.K = K;
    a.lda = K;
    a.ldy = N;
    a.a_signed = A->dtype == IR_DT_INT8;
    a.a_zero = a_zero;
    a.y_signed = q->y_signed;
    a.y_zero = q->y_zero;
    a.y_lo = q->y_lo;
    a.y_hi = q->y_hi;
    size_t psize = octk_qgemm_packed_b_size(K, N);
    void *packed = ir_alloc_array(f->ctx, 1, psize);
    if (!packed)
        return OCT_EINTERNAL;
    octk_qgemm_pack_b(packed, b->data, b->dtype == IR_DT_INT8, q->w_zero, K, N, stride_k,
                      stride_n, cg_kernels_isa(f));
    LLVMValueRef gbias = q->bias
        ? cg_weight_data(f, q->bias, (size_t)N * sizeof *q->bias, NULL)
        : LLVMConstPointerNull(f->ptr);
    cg_kptr ptrs[7] = {
        {offsetof(octk_qgemm, a), cg_ptr(f, A)},
        {offsetof(octk_qgemm, y), cg_ptr(f, Y)},
        {offsetof(octk_qgemm, b), cg_weight_data(f, packed, psize, NULL)},
        {offsetof(octk_qgemm, bias), gbias},
        {offsetof(octk_qgemm, mult),
         cg_weight_data(f, q->mult, (size_t)N * sizeof *q->mult, NULL)},
        {offsetof(octk_qgemm, work), cg_workspace(f, octk_qgemm_work_size(&a))},
        {offsetof(octk_qgemm, fbias), fbias ? cg_weight_data(f, fbias, (size_t)N * sizeof *fbias,
                                                             NULL)
                                            : LLVMConstPointerNull(f->ptr)}};
    cg_kernel_call(f, "qgemm", &a, sizeof a, ptrs, 7);
    cg_report(f, n, "octk_qgemm", path_name(f, octk_qpacked_path(packed)));
    return OCT_OK;
}

static oct_status check_a(cg_fn *f, const ir_node *n, const cg_tensor *A, int za_i)
{
    const ir_tensor *za = const_in(n, za_i);
    if (!A || !is_q8(A->dtype) || A->rank < 1 || (n->in[za_i] && !za) ||
        (za && (za->dtype != A->dtype || za->nelems != 1)))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s needs an 8-bit input "
                              "with a constant per-tensor zero point", n->op_type);
    return OCT_OK;
}

oct_status cg_lower_qlinearmatmul(cg_fn *f, const ir_node *n)
{
    const ir_tensor *bc = const_in(n, 3);
    cg_tensor *A0 = cg_in(f, n, 0);
    if (!A0 || A0->rank < 2 || !bc || bc->rank != 2 ||
        !kernel_form(f, n, 3, 7, bc->dims[1]))
        return cg_qlinearmatmul_loops(f, n);
    oct_status st = need_kernels(f, n);
    cg_tensor *A = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    const ir_tensor *b = const_in(n, 3);
    if (st == OCT_OK)
        st = check_a(f, n, A, 2);
    if (st != OCT_OK)
        return st;
    if (!b || b->rank != 2 || !is_q8(b->dtype) || A->rank < 2 || A->dims[A->rank - 1] != b->dims[0])
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: QLinearMatMul needs a "
                              "constant 8-bit 2-D B and an input of rank >= 2");
    int64_t K = b->dims[0], N = b->dims[1];
    qout q;
    if ((st = make_qout(f, n, 1, 4, 5, 6, 7, -1, b->dtype, N, &q)) != OCT_OK)
        return st;
    return lower_qgemm(f, n, A, Y, b, K, N, N, 1, &q, elem_i(const_in(n, 2), 0), NULL);
}

oct_status cg_lower_qgemm(cg_fn *f, const ir_node *n)
{
    oct_status st = need_kernels(f, n);
    cg_tensor *A = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    const ir_tensor *b = const_in(n, 3);
    if (st == OCT_OK)
        st = check_a(f, n, A, 2);
    if (st != OCT_OK)
        return st;
    bool tb = ir_attr_int(n, "transB", 0) != 0;
    if (ir_attr_int(n, "transA", 0) != 0 || ir_attr_float(n, "alpha", 1.0f) != 1.0f ||
        n->n_in < 9 || !n->in[7] || !b || b->rank != 2 || !is_q8(b->dtype) || A->rank != 2 ||
        A->dims[1] != b->dims[tb ? 1 : 0])
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: QGemm needs transA=0, "
                              "alpha=1, a 2-D input, a constant 8-bit B and an 8-bit output");
    int64_t K = A->dims[1], N = b->dims[tb ? 0 : 1];
    qout q;
    if ((st = make_qout(f, n, 1, 4, 5, 7, 8, 6, b->dtype, N, &q)) != OCT_OK)
        return st;
    return lower_qgemm(f, n, A, Y, b, K, N, tb ? 1 : N, tb ? K : 1, &q,
                       elem_i(const_in(n, 2), 0), NULL);
}

/* MatMulIntegerToFloat: y = (float)acc * (float)(sa * sb[n]) [+ bias[n]]
 * (src/ref/qlinear.c), through octk_qgemm's float output. */
oct_status cg_lower_matmulintegertofloat(cg_fn *f, const ir_node *n)
{
    oct_status st = need_kernels(f, n);
    cg_tensor *A = cg_in(f, n, 0), *Y = cg_out(f, n, 0);
    const ir_tensor *b = const_in(n, 1), *sa = const_in(n, 2), *sb = const_in(n, 3);
    const ir_tensor *zb = const_in(n, 5), *bias = const_in(n, 6);
    if (st == OCT_OK)
        st = check_a(f, n, A, 4);
    if (st != OCT_OK)
        return st;
    if (!b || b->rank != 2 || !is_q8(b->dtype) || A->rank < 2 ||
        A->dims[A->rank - 1] != b->dims[0] || !Y || Y->dtype != IR_DT_FLOAT)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: MatMulIntegerToFloat needs "
                              "a constant 8-bit 2-D B and an input of rank >= 2");
    int64_t K = b->dims[0], N = b->dims[1];
    if (!scale_ok(sa, 1) || !scale_ok(sb, N) || (n->n_in > 5 && n->in[5] && !zb) ||
        !zero_ok(zb, b->dtype, N) ||
        (n->n_in > 6 && n->in[6] && (!bias || bias->dtype != IR_DT_FLOAT ||
                                     (int64_t)bias->nelems != N)))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: MatMulIntegerToFloat needs "
                              "constant scales and zero points and a float32 bias of N values");
    qout q = {0};
    q.mult = ir_alloc_array(f->ctx, (size_t)N, sizeof *q.mult);
    q.w_zero = ir_alloc_array(f->ctx, (size_t)N, sizeof *q.w_zero);
    if (!q.mult || !q.w_zero)
        return OCT_EINTERNAL;
    for (int64_t c = 0; c < N; c++) {
        q.mult[c] = (float)(elem_f(sa, 0) * elem_f(sb, c)); /* one float32 product */
        q.w_zero[c] = elem_i(zb, c);
    }
    return lower_qgemm(f, n, A, Y, b, K, N, N, 1, &q, elem_i(const_in(n, 4), 0),
                       bias ? (const float *)bias->data : NULL);
}
