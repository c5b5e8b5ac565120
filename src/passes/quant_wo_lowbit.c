/*
 * quant_wo_lowbit.c: the weight-only block formats whose scales are not a
 * plain float32 tensor (the qformats.def rows nvfp4, mxfp4, mxfp8, q8_0,
 * q6_k, q4_k), for `octet quantize --weights-only --weight-format=F`.
 * quant_weightonly.c picks the weights; this file writes, for one weight,
 * codes of the row's type in blocks of the row's block size along the
 * reduction axis (the last block short when the axis is not a multiple),
 * and a chain of standard DequantizeLinear nodes:
 *   one level (mxfp4, mxfp8: FLOAT8E8M0 scales; q8_0: FLOAT16 scales):
 *     w = DQ(codes, scales, axis, block_size, output_dtype=FLOAT)
 *   two levels (nvfp4, q6_k, q4_k): the block scales are codes of
 *   SCALE_DTYPE under a second-level scale of SUPER_DTYPE, one per `super`
 *   blocks along the same axis (nvfp4: one float32 for the tensor):
 *     s = DQ(scale codes, super scales [, axis, block_size=super],
 *            output_dtype=FLOAT)
 *     w = DQ(codes, s [, zero points], axis, block_size)
 * docs/formats.md gives each format's encoding and bits per weight.
 *
 * Arithmetic, per block b of the weight (float32 w; f32() rounds to
 * float32, rne() rounds half to even), reproducible in numpy:
 *   amax = max|w|, lo = min(min w, 0), hi = max(max w, 0);
 *   ideal scale t: float codes f32(amax / fmax); symmetric integer codes
 *     f32(amax / qmax); asymmetric f32(f32(hi - lo) / (qmax - qmin));
 *   one level, FLOAT16 scale: s = f16(t) (round to nearest even, at most
 *     65504, 0 becomes the smallest subnormal 2^-24);
 *   one level, FLOAT8E8M0 scale (OCP MX): s = 2^e, e = floor(log2(amax))
 *     - floor(log2(fmax)) clamped to [-127, 127]; amax = 0 gives e = 0;
 *   two levels: per group G of blocks, d = f32(max_G t / scale_max) stored
 *     in SUPER_DTYPE (float32 as is; float16 as above; 0 becomes 1), then
 *     the block's scale code c: float8 E4M3 c = e4m3(f32(t / d)) (nearest
 *     even, saturating; a code of 0 becomes the smallest subnormal 2^-9);
 *     integer c = clamp(rne(f32(t / d)), 1, scale_max); s = f32(c * d),
 *     the product DequantizeLinear forms;
 *   asymmetric: z = clamp(rne(f32(-lo / s)), qmin, qmax);
 *   codes: float q = fp4/e4m3(f32(w / s)) nearest even, saturating;
 *     integer q = clamp(rne(f32(w / s)) + z, qmin, qmax).
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "passes/quant.h"

bool quant_wo_is_lowbit(const ir_qformat_traits *f)
{
    return f->scale_dtype != IR_DT_FLOAT && f->scale_dtype != IR_DT_UNDEFINED;
}

oct_status quant_wo_lowbit_check(const quant_opts *opts, oct_ctx *ctx)
{
    const ir_qformat_traits *f = ir_qformat_info(opts->wo_format);
    if (opts->weight_granularity == QGRAN_TENSOR)
        return oct_error(ctx, OCT_EUSAGE, "weights-only: format %s has blocks of %lld, "
                         "not per-tensor scales", f->name, (long long)f->block_size);
    if (opts->weight_granularity == QGRAN_BLOCK && opts->block_size != f->block_size)
        return oct_error(ctx, OCT_EUSAGE, "weights-only: format %s has blocks of %lld "
                         "(got --block-size=%lld)", f->name, (long long)f->block_size,
                         (long long)opts->block_size);
    if (opts->wo_symmetric >= 0 && opts->wo_symmetric != (f->symmetric ? 1 : 0))
        return oct_error(ctx, OCT_EUSAGE, "weights-only: format %s is %s; it takes no "
                         "other weight-scheme", f->name,
                         f->symmetric ? "symmetric" : "asymmetric");
    if (opts->wo_clip_search || opts->wo_matmulnbits)
        return oct_error(ctx, OCT_EUSAGE, "weights-only: format %s takes neither "
                         "--clip-search nor --format=matmulnbits", f->name);
    return OCT_OK;
}

/* float16 of v, round to nearest even, at most 65504, never 0. */
static float f16_scale(float v)
{
    float h = ops_f16_to_f32(ops_f32_to_f16(v < 65504.0f ? v : 65504.0f));
    return h > 0 ? h : 0x1p-24f;
}

/* Geometry of one weight: element (o, c, i) of outer x len x inner, block
 * c / bs along the axis; group (block / super) of blocks for level two. */
typedef struct lb_layout {
    int64_t outer, len, inner, bs, nblk, nsup;
} lb_layout;

static inline int64_t blk_of(const lb_layout *L, int64_t o, int64_t c, int64_t i)
{
    return (o * L->nblk + c / L->bs) * L->inner + i;
}

/* Group of block index k (blocks are [outer, nblk, inner]). */
static inline int64_t grp_of(const lb_layout *L, const ir_qformat_traits *f, int64_t k)
{
    if (!f->super)
        return 0;
    int64_t i = k % L->inner, b = (k / L->inner) % L->nblk, o = k / L->inner / L->nblk;
    return (o * L->nsup + b / f->super) * L->inner + i;
}

/* The block's ideal scale t from its range (file comment). */
static float ideal_scale(const ir_qformat_traits *f, float amax, float lo, float hi)
{
    if (f->is_float)
        return (float)((double)amax / f->fmax);
    if (f->symmetric)
        return amax / (float)f->qmax;
    return (hi - lo) / (float)(f->qmax - f->qmin);
}

/* OCP MX exponent of a block: floor(log2(amax)) - floor(log2(fmax)). */
static int mx_exponent(const ir_qformat_traits *f, float amax)
{
    if (!(amax > 0))
        return 0;
    int ea, ef;
    frexp((double)amax, &ea);
    frexp(f->fmax, &ef);
    int e = (ea - 1) - (ef - 1);
    return e < -127 ? -127 : e > 127 ? 127 : e;
}

/* Stores element i of t (8-bit codes bytes, 4-bit codes nibbles low first);
 * t NULL: nothing (quant_wo_lowbit_fake wants the values, not the codes). */
static void put(ir_tensor *t, int64_t i, uint32_t v)
{
    if (!t)
        return;
    uint8_t *d = t->data;
    if (ir_dtype_info(t->dtype)->bits == 8)
        d[i] = (uint8_t)v;
    else
        d[i / 2] |= (uint8_t)((v & 15u) << (i % 2 * 4));
}

/* Per-block scales and their stored codes, per group the second-level
 * scale; s[k] is the scale DequantizeLinear will apply to block k.  sc and
 * sup NULL: the scales only (the codes are not stored). */
static void block_scales(const ir_qformat_traits *f, const lb_layout *L, int64_t nb,
                         const float *amax, const float *lo, const float *hi,
                         ir_tensor *sc, ir_tensor *sup, float *s)
{
    int64_t ng = f->super ? L->outer * L->nsup * L->inner : 1;
    /* second-level scales as float32: float32 ones in place, float16 ones
     * in the scratch after s (the caller's buffer has room for ng) */
    float *dv = sup && sup->dtype == IR_DT_FLOAT ? sup->data : s + nb;
    if (f->scale_levels == 2) {
        for (int64_t gk = 0; gk < ng; gk++)
            dv[gk] = 0;
        for (int64_t k = 0; k < nb; k++) {
            float t = ideal_scale(f, amax[k], lo[k], hi[k]);
            int64_t gk = grp_of(L, f, k);
            dv[gk] = t > dv[gk] ? t : dv[gk];
        }
        for (int64_t gk = 0; gk < ng; gk++) {
            float v = dv[gk] / (float)f->scale_max;
            if (f->super_dtype == IR_DT_FLOAT16)
                v = v > 0 ? f16_scale(v) : 1.0f;
            dv[gk] = v > 0 && isfinite(v) ? v : 1.0f;
            if (f->super_dtype == IR_DT_FLOAT16 && sup)
                ((uint16_t *)sup->data)[gk] = ops_f32_to_f16(dv[gk]);
        }
    }
    for (int64_t k = 0; k < nb; k++) {
        float t = ideal_scale(f, amax[k], lo[k], hi[k]);
        if (f->scale_dtype == IR_DT_FLOAT8E8M0) {
            int e = mx_exponent(f, amax[k]);
            put(sc, k, (uint32_t)(e + 127));
            s[k] = (float)ldexp(1.0, e);
        } else if (f->scale_dtype == IR_DT_FLOAT16) {
            s[k] = f16_scale(t);
            if (sc)
                ((uint16_t *)sc->data)[k] = ops_f32_to_f16(s[k]);
        } else {
            float dg = dv[grp_of(L, f, k)], r = t / dg, c;
            if (f->scale_dtype == IR_DT_FLOAT8E4M3FN) {
                uint8_t code = ops_f32_to_fp8(f->scale_dtype, r, true);
                if (ops_fp8_to_f32(f->scale_dtype, code) == 0)
                    code = 0x01;
                put(sc, k, code);
                c = ops_fp8_to_f32(f->scale_dtype, code);
            } else {
                c = nearbyintf(r);
                c = c < 1 ? 1 : c > (float)f->scale_max ? (float)f->scale_max : c;
                put(sc, k, (uint32_t)(int32_t)c);
            }
            s[k] = c * dg;
        }
    }
}

/* Code of element w at scale s and zero point z. */
static uint32_t code_of(const ir_qformat_traits *f, float w, float s, int32_t z)
{
    float v = w / s;
    if (f->dtype == IR_DT_FLOAT4E2M1)
        return ops_f32_to_fp4(v, true);
    if (f->is_float)
        return ops_f32_to_fp8(f->dtype, v, true);
    float q = nearbyintf(v) + (float)z;
    q = q < (float)f->qmin ? (float)f->qmin : q > (float)f->qmax ? (float)f->qmax : q;
    return (uint32_t)(int32_t)q;
}

/* A DequantizeLinear node reading x, s (and z), writing a new float value
 * named after base; axis/block_size when bs > 0, output_dtype FLOAT when
 * the scale is not float32. */
static ir_value *add_dq(oct_ctx *ctx, ir_graph *g, const char *base, ir_value *x,
                        ir_value *s, ir_value *z, int axis, int64_t bs, bool out_f32,
                        const ir_value *like)
{
    const char *dname = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_dequantized", base));
    ir_value *dv = dname ? ir_graph_value(ctx, g, dname) : NULL;
    const char *nname = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_DequantizeLinear", base));
    ir_node *dq = nname && dv && x && s
        ? ir_graph_add_node(ctx, g, "DequantizeLinear", "", nname, z ? 3 : 2, 1) : NULL;
    if (!dq)
        return NULL;
    dv->has_type = true;
    dv->type = like->type;
    dv->type.dtype = IR_DT_FLOAT;
    dv->type.has_elem_type = true;
    dq->in[0] = x, dq->in[1] = s;
    if (z)
        dq->in[2] = z;
    ir_node_set_output(dq, 0, dv);
    const char *names[3] = {"axis", "block_size", "output_dtype"};
    int64_t vals[3] = {axis, bs, IR_DT_FLOAT};
    for (int k = 0; k < 3; k++) {
        if ((k < 2 && bs <= 0) || (k == 2 && !out_f32))
            continue;
        ir_attr *a = ir_node_add_attr(ctx, dq, names[k], IR_ATTR_INT);
        if (!a)
            return NULL;
        a->i = vals[k];
    }
    return dv;
}

/* The block layout of weight t along axis. */
static lb_layout layout_of(const ir_qformat_traits *f, const ir_tensor *t, int axis)
{
    lb_layout L = {1, t->dims[axis], 1, f->block_size, 0, 1};
    for (int d = 0; d < axis; d++)
        L.outer *= t->dims[d];
    for (int d = axis + 1; d < t->rank; d++)
        L.inner *= t->dims[d];
    L.nblk = (L.len + L.bs - 1) / L.bs;
    if (f->super)
        L.nsup = (L.nblk + f->super - 1) / f->super;
    return L;
}

/* Every block's scale s[k] and zero point z[k] from the weights w (the
 * scale codes into sc, the second-level ones into sup, the zero points
 * into zt when not NULL).  tmp: 3 nb + ng floats of scratch. */
static void fit_blocks(const ir_qformat_traits *f, const lb_layout *L, const float *w,
                       ir_tensor *sc, ir_tensor *sup, ir_tensor *zt, float *tmp, float *s,
                       int32_t *z)
{
    int64_t nb = L->outer * L->nblk * L->inner;
    float *amax = tmp, *lo = amax + nb, *hi = lo + nb;
    for (int64_t k = 0; k < nb; k++)
        amax[k] = 0, lo[k] = 0, hi[k] = 0;
    for (int64_t o = 0; o < L->outer; o++)
        for (int64_t c = 0; c < L->len; c++)
            for (int64_t i = 0; i < L->inner; i++) {
                float x = w[(o * L->len + c) * L->inner + i];
                int64_t k = blk_of(L, o, c, i);
                float a = fabsf(x);
                amax[k] = a > amax[k] ? a : amax[k];
                lo[k] = x < lo[k] ? x : lo[k];
                hi[k] = x > hi[k] ? x : hi[k];
            }
    /* block_scales keeps its float16 second-level scratch after s: the
     * caller's s has room for nb + ng */
    block_scales(f, L, nb, amax, lo, hi, sc, sup, s);
    for (int64_t k = 0; k < nb; k++) {
        float v = f->symmetric ? 0 : nearbyintf(-lo[k] / s[k]);
        v = v < (float)f->qmin ? (float)f->qmin : v > (float)f->qmax ? (float)f->qmax : v;
        z[k] = f->symmetric ? 0 : (int32_t)v;
        if (zt)
            put(zt, k, (uint32_t)z[k]);
    }
}

/* The scale tensors of weight t (shape dims) along axis: codes, scale
 * codes, second-level scales, zero points (NULL when the format has none). */
static bool new_tensors(oct_ctx *ctx, const ir_qformat_traits *f, const ir_tensor *t,
                        int axis, const lb_layout *L, ir_tensor **q, ir_tensor **sc,
                        ir_tensor **sup, ir_tensor **zt)
{
    int64_t sdims[8], gdims[8];
    memcpy(sdims, t->dims, (size_t)t->rank * sizeof *sdims);
    memcpy(gdims, t->dims, (size_t)t->rank * sizeof *gdims);
    sdims[axis] = L->nblk;
    gdims[axis] = L->nsup;
    bool two = f->scale_levels == 2;
    *q = ir_tensor_new(ctx, f->dtype, t->rank, t->dims);
    *sc = ir_tensor_new(ctx, f->scale_dtype, t->rank, sdims);
    *sup = two ? ir_tensor_new(ctx, f->super_dtype, f->super ? t->rank : 0, gdims) : NULL;
    *zt = f->symmetric ? NULL : ir_tensor_new(ctx, f->dtype, t->rank, sdims);
    return *q && *sc && (*sup || !two) && (*zt || f->symmetric);
}

oct_status quant_wo_lowbit_grid(oct_ctx *ctx, const ir_qformat_traits *f, const ir_tensor *t,
                                int axis, float *s, int32_t *z)
{
    lb_layout L = layout_of(f, t, axis);
    int64_t nb = L.outer * L.nblk * L.inner, ng = f->super ? L.outer * L.nsup * L.inner : 1;
    ir_tensor *q, *sc, *sup, *zt;
    size_t bytes = (size_t)(4 * nb + ng) * sizeof(float);
    float *tmp = new_tensors(ctx, f, t, axis, &L, &q, &sc, &sup, &zt) ? oct_malloc(ctx, bytes)
                                                                      : NULL;
    if (!tmp)
        return OCT_EINTERNAL;
    float *sx = tmp + 3 * nb;
    fit_blocks(f, &L, t->data, sc, sup, NULL, tmp, sx, z);
    memcpy(s, sx, (size_t)nb * sizeof *s);
    oct_free(ctx, tmp, bytes);
    return OCT_OK;
}

oct_status quant_wo_lowbit_fake(oct_ctx *ctx, const ir_qformat_traits *f, const ir_tensor *t,
                                int axis, const float *w, float *out)
{
    lb_layout L = layout_of(f, t, axis);
    int64_t nb = L.outer * L.nblk * L.inner, ng = f->super ? L.outer * L.nsup * L.inner : 1;
    size_t bytes = (size_t)(4 * nb + ng) * sizeof(float) + (size_t)nb * sizeof(int32_t);
    float *tmp = oct_malloc(ctx, bytes);
    if (!tmp)
        return OCT_EINTERNAL;
    float *s = tmp + 3 * nb;
    int32_t *z = (int32_t *)(s + nb + ng);
    fit_blocks(f, &L, w, NULL, NULL, NULL, tmp, s, z);
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t c = 0; c < L.len; c++)
            for (int64_t i = 0; i < L.inner; i++) {
                int64_t at = (o * L.len + c) * L.inner + i, k = blk_of(&L, o, c, i);
                out[at] = quant_wo_lowbit_round(f, w[at], s[k], z[k]);
            }
    oct_free(ctx, tmp, bytes);
    return OCT_OK;
}

float quant_wo_lowbit_round(const ir_qformat_traits *f, float w, float s, int32_t z)
{
    uint32_t c = code_of(f, w, s, z);
    if (f->dtype == IR_DT_FLOAT4E2M1)
        return ops_fp4_to_f32((uint8_t)c) * s;
    if (f->is_float)
        return ops_fp8_to_f32(f->dtype, (uint8_t)c) * s;
    return (float)((int32_t)c - z) * s;
}

oct_status quant_wo_lowbit_one(oct_ctx *ctx, ir_graph *g, const ir_qformat_traits *f,
                               ir_node *node, int input, int axis, const float *wq,
                               ir_value **out)
{
    ir_value *wv = node->in[input];
    const ir_tensor *t = wv->init;
    lb_layout L = layout_of(f, t, axis);
    int64_t nb = L.outer * L.nblk * L.inner;
    int64_t ng = f->super ? L.outer * L.nsup * L.inner : 1;
    bool two = f->scale_levels == 2;
    ir_tensor *q, *sc, *sup, *zt;
    size_t bytes = (size_t)(4 * nb + ng) * sizeof(float) + (size_t)nb * sizeof(int32_t);
    float *tmp = new_tensors(ctx, f, t, axis, &L, &q, &sc, &sup, &zt) ? oct_malloc(ctx, bytes)
                                                                      : NULL;
    if (!tmp)
        return OCT_EINTERNAL;
    float *s = tmp + 3 * nb;
    int32_t *z = (int32_t *)(s + nb + ng);
    const float *w = t->data;
    fit_blocks(f, &L, w, sc, sup, zt, tmp, s, z);
    /* the codes: of the weights, or of the values GPTQ chose to round
     * (wq, in the weight's element order) at the same scales */
    const float *r = wq ? wq : w;
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t c = 0; c < L.len; c++)
            for (int64_t i = 0; i < L.inner; i++) {
                int64_t at = (o * L.len + c) * L.inner + i, k = blk_of(&L, o, c, i);
                put(q, at, code_of(f, r[at], s[k], z[k]));
            }
    oct_free(ctx, tmp, bytes);
    const char *base = wv->name;
    ir_value *qv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_quantized", base), q);
    ir_value *sv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_scale", base), sc);
    ir_value *zv = zt ? ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_zero_point", base), zt)
                      : NULL;
    if (!qv || !sv || (zt && !zv))
        return OCT_EINTERNAL;
    ir_value *scale = sv;
    if (two) {
        ir_value *gv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_super_scale", base), sup);
        scale = gv ? add_dq(ctx, g, ir_sprintf(ctx, "%s_scale", base), sv, gv, NULL, axis,
                            f->super, f->super_dtype != IR_DT_FLOAT, sv)
                   : NULL;
        if (!scale)
            return OCT_EINTERNAL;
    }
    *out = add_dq(ctx, g, base, qv, scale, zv, axis, L.bs,
                  !two && f->scale_dtype != IR_DT_FLOAT, wv);
    return *out ? OCT_OK : OCT_EINTERNAL;
}
