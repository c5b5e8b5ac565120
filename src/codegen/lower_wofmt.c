/*
 * lower_wofmt.c: float MatMul whose weight is a blocked DequantizeLinear of
 * constants in one of the other weight-only block formats onto octk_wofmt
 * (kernels/wofmt.c), the weight staying in its code width in the library:
 * NVFP4, MXFP4, Q4_K-like, Q6_K-like, Q8_0, INT8/UINT8 and INT2/UINT2
 * blocks, and INT4/UINT4 blocks lower_wogemm.c does not take (a two-level
 * or non-float32 scale, another block size).  lower_wogemm.c is tried
 * first; its plan (cg_plan_wo_weights) asks cg_wofmt_source too.
 *
 * Conditions (wf_source): the DequantizeLinear gives float32 from a
 * constant [K, N] initializer of one of the code types of wf_formats below,
 * block_size >= 1 along axis 0, a zero point absent or a constant of the
 * codes' type and the scales' shape (none for FP4), and scales [ceil(K/bs),
 * N] that are either a constant of any float type or the float32 output of
 * a DequantizeLinear of constants (the two-level formats).  The MatMul
 * conditions are lower_wogemm.c's.  The scales reach the kernel as float32
 * exactly as the interpreter forms them: a constant scale converted as
 * src/ref/quant.c converts it, a two-level one computed by the
 * interpreter's own DequantizeLinear at compile time (ir_ctx_engine).  When
 * that scale DequantizeLinear has no other reader the plan absorbs it too,
 * so the float scales never exist at run time.
 *
 * Code values: 8-bit codes are signed bytes for the kernel (UINT8 codes and
 * zero points are shifted by 128 alike, and a UINT8 weight without zero
 * points gets zero point 0, i.e. -128 shifted); narrower codes index a
 * table of their values (FP4 E2M1, two's complement, unsigned), the 2-bit
 * table repeated modulo 4 as octk.h asks.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/kernels/octk.h"

/* The code types the kernel takes: bits per code, value of code c. */
typedef struct wf_format {
    ir_dtype dtype;
    int bits;
    const char *name;
} wf_format;

static const wf_format wf_formats[] = {
    {IR_DT_INT8, 8, "int8"},         {IR_DT_UINT8, 8, "uint8"},
    {IR_DT_INT4, 4, "int4"},         {IR_DT_UINT4, 4, "uint4"},
    {IR_DT_FLOAT4E2M1, 4, "fp4 e2m1"}, {IR_DT_INT2, 2, "int2"},
    {IR_DT_UINT2, 2, "uint2"},
};

static const wf_format *wf_format_of(ir_dtype dt)
{
    for (size_t i = 0; i < sizeof wf_formats / sizeof *wf_formats; i++)
        if (wf_formats[i].dtype == dt)
            return &wf_formats[i];
    return NULL;
}

/* Value of narrow code c (its low `bits` bits) of type dt. */
static float wf_code_value(ir_dtype dt, unsigned c)
{
    switch (dt) {
    case IR_DT_FLOAT4E2M1: return ops_fp4_to_f32((uint8_t)(c & 15u));
    case IR_DT_INT4: return (float)((c & 15u) < 8 ? (int)(c & 15u) : (int)(c & 15u) - 16);
    case IR_DT_INT2: return (float)((c & 3u) < 2 ? (int)(c & 3u) : (int)(c & 3u) - 4);
    case IR_DT_UINT2: return (float)(c & 3u);
    default: return (float)(c & 15u);
    }
}

typedef struct wf_weight {
    const ir_node *dq, *sdq;     /* the weight's DequantizeLinear; the scales' or NULL */
    const ir_tensor *q, *s, *z;  /* codes [K, N], constant scales (or NULL), zero points */
    const wf_format *fmt;
    int64_t K, N, bs;
} wf_weight;

static bool wf_all_inits(const ir_node *n)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && !n->in[i]->init)
            return false;
    return n->n_in >= 2 && n->in[0] && n->in[1];
}

/* The scales of dq: a constant [nb, N] of a float type, or the float32
 * output of a DequantizeLinear of constants of that shape. */
static bool wf_scales(const ir_node *dq, int64_t nb, int64_t N, wf_weight *w)
{
    const ir_value *sv = dq->in[1];
    const ir_tensor *shape = sv->init;
    w->s = sv->init;
    w->sdq = NULL;
    if (shape) {
        if (ir_dtype_info(shape->dtype)->kind != IR_DK_FLOAT)
            return false;
    } else {
        const ir_node *sdq = sv->producer;
        if (!sdq || sdq->op != IR_OP_DEQUANTIZELINEAR || !wf_all_inits(sdq) ||
            !sv->has_type || sv->type.dtype != IR_DT_FLOAT)
            return false;
        w->sdq = sdq;
        shape = sdq->in[0]->init;
    }
    return shape->rank == 2 && shape->dims[0] == nb && shape->dims[1] == N;
}

/* Whether w is the output of a DequantizeLinear the kernel takes (the
 * file comment lists the conditions). */
static bool wf_source(const cg_tensor *t, wf_weight *out)
{
    const ir_node *dq = t && t->value ? t->value->producer : NULL;
    if (!dq || dq->op != IR_OP_DEQUANTIZELINEAR || t->value->init || t->dtype != IR_DT_FLOAT ||
        dq->n_in < 2 || !dq->in[0] || !dq->in[1] || !dq->in[0]->init)
        return false;
    const ir_tensor *q = dq->in[0]->init;
    const ir_tensor *z = dq->n_in > 2 && dq->in[2] ? dq->in[2]->init : NULL;
    const wf_format *fmt = wf_format_of(q->dtype);
    int axis = -1;
    int64_t bs = ir_attr_int(dq, "block_size", 0);
    if (!fmt || q->rank != 2 || bs < 1 || (dq->n_in > 2 && dq->in[2] && !z) ||
        (z && q->dtype == IR_DT_FLOAT4E2M1) ||
        !ops_norm_axis(ir_attr_int(dq, "axis", 1), 2, &axis) || axis != 0)
        return false;
    int64_t K = q->dims[0], N = q->dims[1], nb = (K + bs - 1) / bs;
    wf_weight w = {.dq = dq, .q = q, .z = z, .fmt = fmt, .K = K, .N = N, .bs = bs};
    if (K < 1 || N < 1 || !wf_scales(dq, nb, N, &w) ||
        (z && (z->dtype != q->dtype || z->rank != 2 || z->dims[0] != nb || z->dims[1] != N)))
        return false;
    *out = w;
    return true;
}

bool cg_wofmt_source(const cg_tensor *w, int64_t *K)
{
    wf_weight ww;
    if (!wf_source(w, &ww))
        return false;
    *K = ww.K;
    return true;
}

void cg_wofmt_absorb_scales(cg_tensor *tens, const cg_tensor *w, const int *uses)
{
    wf_weight ww;
    if (wf_source(w, &ww) && ww.sdq && uses[ww.dq->in[1]->id] == 1)
        tens[ww.dq->in[1]->id].absorbed = true;
}

/* Raw code i of a packed tensor of `bits`-wide elements. */
static unsigned wf_raw(const ir_tensor *t, int bits, int64_t i)
{
    const uint8_t *d = t->data;
    if (bits == 8)
        return d[i];
    int per = 8 / bits;
    return (d[i / per] >> (bits * (int)(i % per))) & ((1u << bits) - 1u);
}

/* The float32 scales DequantizeLinear applies (file comment); NULL with
 * *st set when the scale DequantizeLinear fails. */
static float *wf_scale_values(cg_fn *f, const wf_weight *w, oct_status *st)
{
    int64_t n = (w->K + w->bs - 1) / w->bs * w->N;
    float *s = ir_alloc_array(f->ctx, (size_t)n, sizeof *s);
    *st = s ? OCT_OK : OCT_EINTERNAL;
    if (!s)
        return NULL;
    if (w->s) {
        for (int64_t i = 0; i < n; i++)
            s[i] = (float)ops_get(w->s, (uint64_t)i);
    } else {
        const ir_engine *eng = ir_ctx_engine(f->ctx, "weight-only kernel scales");
        const ir_tensor *in[3] = {NULL, NULL, NULL};
        ir_tensor *out[1] = {NULL};
        for (int i = 0; i < w->sdq->n_in && i < 3; i++)
            in[i] = w->sdq->in[i] ? w->sdq->in[i]->init : NULL;
        *st = eng ? eng->eval_node(f->ctx, w->sdq, f->opset, in, out) : OCT_EINTERNAL;
        if (*st == OCT_OK && (!out[0] || out[0]->dtype != IR_DT_FLOAT ||
                              out[0]->nelems != (uint64_t)n))
            *st = oct_node_error(f->ctx, OCT_EINTERNAL, w->sdq, "weight-only kernel: scales "
                                 "of an unexpected type or shape");
        if (*st == OCT_OK)
            memcpy(s, out[0]->data, (size_t)n * sizeof *s);
        ir_heap_tensor_free(f->ctx, out[0]);
    }
    /* the interpreter's DequantizeLinear refuses such a scale at run time;
     * a compiled model must not compute with it silently */
    for (int64_t i = 0; *st == OCT_OK && i < n; i++)
        if (!(s[i] > 0) || !isfinite(s[i]))
            *st = oct_node_error(f->ctx, OCT_EINPUT, w->dq, "scale element %lld is %g: "
                                 "scales must be positive and finite", (long long)i,
                                 (double)s[i]);
    return *st == OCT_OK ? s : NULL;
}

/* Codes and zero points as the kernel reads them (file comment); whether
 * any zero point is not 0 in *has_zp. */
static bool wf_codes(cg_fn *f, const wf_weight *w, const float *lut, uint8_t **codes,
                     uint8_t **zp, int *has_zp)
{
    int64_t K = w->K, N = w->N, nb = (K + w->bs - 1) / w->bs;
    int bits = w->fmt->bits;
    bool u8 = w->q->dtype == IR_DT_UINT8;
    *codes = ir_alloc_array(f->ctx, (size_t)(K * N), 1);
    *zp = ir_alloc_array(f->ctx, (size_t)(nb * N), 1);
    if (!*codes || !*zp)
        return false;
    for (int64_t i = 0; i < K * N; i++)
        (*codes)[i] = (uint8_t)(wf_raw(w->q, bits, i) ^ (u8 ? 0x80u : 0u));
    *has_zp = u8;
    for (int64_t i = 0; i < nb * N; i++) {
        unsigned c = w->z ? wf_raw(w->z, bits, i) : 0;
        (*zp)[i] = (uint8_t)(c ^ (u8 ? 0x80u : 0u));
        *has_zp |= bits == 8 ? c != 0 : lut[c] != 0.0f;
    }
    return true;
}

/* The report's path for this format on this target. */
static const char *wf_path(cg_fn *f, const wf_weight *w)
{
    unsigned isa = cg_kernels_isa(f);
    const char *how = w->fmt->bits == 8 ? "bytes widened" : "codes unpacked by table lookup";
    const char *arch = isa & OCTK_ISA_VNNI ? "AVX-512" : isa & OCTK_ISA_AVX2 ? "AVX2" : "scalar";
    const char *path = ir_sprintf(f->ctx, "%s blocks of %lld%s, %s in registers, GEMV per "
                                  "%d rows (%s)", w->fmt->name, (long long)w->bs,
                                  w->sdq ? " (two-level scales)" : "", how, OCTK_WO_GEMV_ROWS,
                                  arch);
    return path ? path : "weight-only block format GEMV";
}

bool cg_try_wofmt(cg_fn *f, const ir_node *n, oct_status *st)
{
    cg_tensor *A = cg_in(f, n, 0), *Bt = cg_in(f, n, 1), *Y = cg_out(f, n, 0);
    wf_weight w;
    if (!Bt || !Bt->absorbed || !wf_source(Bt, &w))
        return false;
    octk_wofmt a;
    memset(&a, 0, sizeof a);
    for (unsigned c = 0; c < 16; c++)
        a.lut[c] = wf_code_value(w.q->dtype, c);
    uint8_t *codes, *zp;
    float *scales = wf_scale_values(f, &w, st);
    if (!scales)
        return true;
    if (!wf_codes(f, &w, a.lut, &codes, &zp, &a.has_zp)) {
        *st = OCT_EINTERNAL;
        return true;
    }
    a.M = (int64_t)(A->nelems / (uint64_t)w.K);
    a.N = w.N;
    a.K = w.K;
    a.bs = w.bs;
    a.lda = w.K;
    a.ldy = w.N;
    a.bits = w.fmt->bits;
    size_t psize = octk_wofmt_packed_b_size(w.K, w.N, w.bs, a.bits, a.has_zp);
    uint8_t *packed = ir_alloc_array(f->ctx, psize ? psize : 1, 1);
    if (!packed) {
        *st = OCT_EINTERNAL;
        return true;
    }
    octk_wofmt_pack_b(packed, codes, a.has_zp ? zp : NULL, scales, w.K, w.N, w.bs, a.bits);
    cg_kptr ptrs[4] = {
        {offsetof(octk_wofmt, a), cg_ptr(f, A)},
        {offsetof(octk_wofmt, y), cg_ptr(f, Y)},
        {offsetof(octk_wofmt, b), cg_weight_data(f, packed, psize, NULL)},
        {offsetof(octk_wofmt, work), cg_workspace(f, octk_wofmt_work_size(&a))}};
    cg_kernel_call(f, "wofmt", &a, sizeof a, ptrs, 4);
    cg_report(f, n, "octk_wofmt", wf_path(f, &w));
    *st = OCT_OK;
    return true;
}
