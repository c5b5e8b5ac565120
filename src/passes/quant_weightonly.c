/*
 * quant_weightonly.c: `octet quantize --weights-only`: the constant weights
 * of MatMul, Gemm, Conv, LSTM/GRU/RNN and Gather (an embedding table) become low-bit
 * integer initializers followed by a DequantizeLinear; activations stay
 * float and nothing is calibrated.  The result is standard ONNX (blocked
 * scales from opset 21, INT4/UINT4 from 21, INT2/UINT2 from 25) that ONNX
 * Runtime and Octet both run.
 *
 * Which weights: MatMul's B (rank 2), Gemm's B (transB read), Conv's W,
 * LSTM/GRU/RNN's W and R (rank 3, a scale per gate row shared by the
 * directions, blocks along the row; round to nearest into the integer
 * formats only) and Gather's data (axis 0, rank 2).  All but Gather are the
 * default set (--op-types replaces it); Gather is taken only when named there or
 * when a --config rule gives its node a precision other than fp32, since
 * other Gathers read tables (rotary cos/sin) that are not weights.  A rule
 * with "precision": "fp32" keeps a node's weight float (the LM head, say).
 *
 * Scales: per channel (one per output column; Conv always per output
 * channel, Gather per row) or per block of block_size along the reduction
 * axis (Gather: along the row), the last block short when the axis is not
 * a multiple.  Numeric rules, per slice (a channel or a block), with
 * w float32 and every step below reproducible in numpy:
 *   symmetric, signed format:  zp = 0, grid [-qmax, qmax] (narrow, as the
 *     int8 weights of static quantization), s = f32(amax * f / qmax);
 *   symmetric, unsigned:       zp = 2^(bits-1), grid [1, qmax],
 *     s = f32(amax * f / (zp - 1));
 *   sym-full, signed format:   amax = max|w| * f, s = f32(amax / 2^(bits-1)),
 *     grid [qmin, qmax], zp = 0 if |min w| >= max w (the largest magnitude
 *     is negative and lands on qmin) else -1 (it is positive and lands on
 *     qmax + 1 = 2^(bits-1) with the shift): the levels are
 *     [-2^(bits-1), 2^(bits-1) - 1] * s or their negation, as ONNX
 *     Runtime's MatMulNBits quantizer writes them with a negative scale;
 *   asymmetric:                lo = min(min w, 0) * f, hi = max(max w, 0)
 *     * f (double), s = f32((hi - lo) / (qmax - qmin)), zp =
 *     clamp(round_half_even(qmin - lo / s), qmin, qmax), grid [qmin, qmax];
 *   a scale that is 0 or not finite (a slice of zeros) is 1;
 *   q = clamp(round_half_even(f32(w / s)) + zp, grid), as QuantizeLinear.
 * f = 1 without --clip-search.  With it, f runs over 1.00, 0.99, ..., 0.50
 * (f = (100 - i) / 100 in double) and each slice keeps the f with the
 * smallest squared error sum((double)(f32((q - zp) * s)) - w)^2, summed in
 * element order; ties keep the larger f.
 *
 * --algo=gptq and --algo=awq (quant_gptq.c, quant_awq.c) hook in once the
 * weights are chosen: AWQ rescales the float weights (then the clip search
 * runs on them; the block formats of quant_wo_lowbit.c have none), GPTQ
 * hands each of its weights codes, scales and zero points (quant_wo_fixed;
 * the block formats: the values to round, lowbit_w) that replace the
 * rounding here.
 */
#include <math.h>
#include <string.h>

#include "passes/quant.h"

enum { WO_GRID = 51 }; /* clip-search shrink factors 1.00 .. 0.50 */

typedef quant_wo_weight wo_weight;
typedef quant_wo_grid wo_grid;

oct_status quant_weight_only_check(const quant_opts *opts, oct_ctx *ctx)
{
    const ir_qformat_traits *f = ir_qformat_info(opts->wo_format);
    if (quant_wo_is_lowbit(f)) /* the block formats: quant_wo_lowbit.c */
        return quant_wo_lowbit_check(opts, ctx);
    if (f->is_float || (f->bits != 2 && f->bits != 4 && f->bits != 8))
        return oct_error(ctx, OCT_EUSAGE, "weights-only: format %s cannot hold the "
                         "weights (int8, uint8, int4, uint4, int2 or uint2)", f->name);
    if (opts->weight_granularity == QGRAN_TENSOR)
        return oct_error(ctx, OCT_EUSAGE, "weights-only: weights are per-channel or "
                         "per-block, not per-tensor");
    if (opts->wo_symmetric == 2 && !f->is_signed)
        return oct_error(ctx, OCT_EUSAGE, "weights-only: weight-scheme sym-full needs a "
                         "signed format (int8, int4, int2), not %s", f->name);
    if (opts->wo_act_int8 && (!opts->wo_matmulnbits || f->bits != 4))
        return oct_error(ctx, OCT_EUSAGE, "weights-only: wo-compute=int8 needs 4-bit "
                         "weights and format=matmulnbits (accuracy_level 4 records it; "
                         "a DequantizeLinear cannot)");
    if (opts->wo_matmulnbits && opts->weight_granularity != QGRAN_BLOCK)
        return oct_error(ctx, OCT_EUSAGE, "weights-only: format matmulnbits needs "
                         "per-block weights (--block-size)");
    if (opts->weight_granularity == QGRAN_BLOCK) {
        int64_t b = opts->block_size;
        if (b != 16 && b != 32 && b != 64 && b != 128)
            return oct_error(ctx, OCT_EUSAGE, "weights-only: block-size must be 16, "
                             "32, 64 or 128 (got %lld)", (long long)b);
    }
    return OCT_OK;
}

/* Weight k of n (0, or 1 for a recurrent op's R): its slot, channel axis
 * and reduction axis, if n is an op whose weights this pass quantizes and
 * the weight is a float constant of the expected rank. */
static bool weight_of(const ir_node *n, int k, int *slot, int *ch_axis, int *red_axis)
{
    const ir_value *w;
    bool recurrent = n->op == IR_OP_LSTM || n->op == IR_OP_GRU || n->op == IR_OP_RNN;
    if (k > (recurrent ? 1 : 0))
        return false;
    switch (n->op) {
    case IR_OP_MATMUL:
        *slot = 1, *ch_axis = 1, *red_axis = 0;
        break;
    case IR_OP_GEMM: {
        int tb = ir_attr_int(n, "transB", 0) != 0;
        *slot = 1, *ch_axis = tb ? 0 : 1, *red_axis = tb ? 1 : 0;
        break;
    }
    case IR_OP_CONV:
        *slot = 1, *ch_axis = 0, *red_axis = -1; /* always per channel */
        break;
    case IR_OP_GATHER:
        if (ir_attr_int(n, "axis", 0) != 0)
            return false;
        *slot = 0, *ch_axis = 0, *red_axis = 1;
        break;
    case IR_OP_LSTM: case IR_OP_GRU: case IR_OP_RNN:
        /* W [dirs, gates * H, input], R [dirs, gates * H, H]: a scale per
         * gate row (shared by the directions), blocks along the row */
        *slot = 1 + k, *ch_axis = 1, *red_axis = 2;
        break;
    default:
        return false;
    }
    if (*slot >= n->n_in || !(w = n->in[*slot]) || !w->init ||
        w->init->dtype != IR_DT_FLOAT)
        return false;
    int rank = w->init->rank;
    return n->op == IR_OP_CONV ? rank >= 3 : rank == (recurrent ? 3 : 2);
}

/* Whether n's weight is quantized: the op set and --config rules (see the
 * file comment). */
static bool selected(const ir_node *n, quant_rules *rules, const quant_filter *filter)
{
    const char *why;
    int force = rules ? quant_config_match(rules, n, &why) : QFORCE_NONE;
    if (force == QFORCE_FP32)
        return false;
    if (force != QFORCE_NONE)
        return true;
    return quant_filter_pass(filter, n, n->op != IR_OP_GATHER);
}

/* Stores code v (already in range) at element i of a packed tensor: sub-
 * byte types low bits first (ir.h). */
static void store_code(ir_tensor *t, int bits, int64_t i, int32_t v)
{
    uint8_t *d = t->data;
    if (bits == 8) {
        d[i] = (uint8_t)v;
        return;
    }
    int64_t bit = i * bits;
    d[bit / 8] |= (uint8_t)(((unsigned)v & ((1u << bits) - 1)) << (bit % 8));
}

/* Parameters of one slice for shrink factor fac: scale and zero point. */
void quant_wo_slice_params(const wo_grid *g, float wmin, float wmax, double fac,
                           float *scale, int32_t *zp)
{
    const ir_qformat_traits *f = g->f;
    double s;
    if (g->full) {
        double amax = fmax(fabs((double)wmin), fabs((double)wmax));
        s = (float)(amax * fac / (double)(f->qmax + 1));
        *zp = fabs((double)wmin) >= (double)wmax ? 0 : -1;
    } else if (g->symmetric) {
        double amax = fmax(fabs((double)wmin), fabs((double)wmax));
        double top = f->is_signed ? (double)f->qmax : (double)(f->qmax + 1) / 2 - 1;
        s = (float)(amax * fac / top);
        *zp = f->is_signed ? 0 : (int32_t)((f->qmax + 1) / 2);
    } else {
        double lo = fmin((double)wmin, 0) * fac, hi = fmax((double)wmax, 0) * fac;
        s = (float)((hi - lo) / (double)(f->qmax - f->qmin));
        if (!(s > 0) || !isfinite(s))
            s = 1;
        double z = nearbyint((double)f->qmin - lo / s);
        *zp = (int32_t)(z < f->qmin ? f->qmin : z > f->qmax ? f->qmax : z);
    }
    *scale = s > 0 && isfinite(s) ? (float)s : 1.0f;
}

#define code_of quant_wo_code
#define slice_params quant_wo_slice_params

void quant_wo_slice_fit(const wo_grid *g, bool clip_search, const float *w, int64_t n,
                        int64_t stride, float *scale, int32_t *zp)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        lo = fminf(lo, w[i * stride]), hi = fmaxf(hi, w[i * stride]);
    double best = INFINITY;
    for (int j = 0; j < (clip_search ? WO_GRID : 1); j++) {
        float s;
        int32_t z;
        slice_params(g, lo, hi, (double)(100 - j) / 100.0, &s, &z);
        double err = 0;
        for (int64_t i = 0; clip_search && i < n; i++) {
            float x = w[i * stride];
            double d = (double)((float)(code_of(g, x, s, z) - z) * s) - (double)x;
            err += d * d;
        }
        if (j == 0 || err < best) /* ties keep the larger f */
            best = err, *scale = s, *zp = z;
    }
}

/* Geometry: element (o, c, i) of outer x len(axis) x inner; its slice. */
typedef struct wo_layout {
    int64_t outer, len, inner, bs, nblk;
} wo_layout;

static inline int64_t slice_of(const wo_layout *L, int64_t o, int64_t c, int64_t i)
{
    if (!L->bs)
        return c;
    return (o * L->nblk + c / L->bs) * L->inner + i;
}

/* Quantizes weight w of entry e: the codes, scales and zero points as new
 * initializers and a DequantizeLinear producing the float weight again;
 * *out is that DequantizeLinear's output. */
static oct_status quantize_one(oct_ctx *ctx, ir_graph *g, const wo_grid *grid,
                               bool clip_search, const wo_weight *e, ir_value **out)
{
    ir_value *wv = e->node->in[e->input];
    const ir_tensor *t = wv->init;
    const ir_qformat_traits *f = grid->f;
    wo_layout L = {1, t->dims[e->axis], 1, e->bs, 1};
    for (int d = 0; d < e->axis; d++)
        L.outer *= t->dims[d];
    for (int d = e->axis + 1; d < t->rank; d++)
        L.inner *= t->dims[d];
    if (L.bs)
        L.nblk = (L.len + L.bs - 1) / L.bs;
    int64_t ns = L.bs ? L.outer * L.nblk * L.inner : L.len;
    int64_t sdims[8];
    int srank = L.bs ? t->rank : 1;
    if (L.bs) {
        memcpy(sdims, t->dims, (size_t)t->rank * sizeof *sdims);
        sdims[e->axis] = L.nblk;
    } else
        sdims[0] = L.len;
    ir_tensor *q = ir_tensor_new(ctx, f->dtype, t->rank, t->dims);
    ir_tensor *st = ir_tensor_new(ctx, IR_DT_FLOAT, srank, sdims);
    ir_tensor *zt = ir_tensor_new(ctx, f->dtype, srank, sdims);
    /* per slice: range, the best candidate so far and its error, and the
     * candidate being measured (heap: freed here, O(slices) whatever the
     * grid) */
    size_t nsz = (size_t)ns;
    size_t bytes = nsz * (2 * sizeof(float) + sizeof(int32_t) + sizeof(double) +
                          sizeof(float) + sizeof(int32_t) + sizeof(double));
    char *tmp = q && st && zt ? oct_malloc(ctx, bytes) : NULL;
    if (!tmp)
        return OCT_EINTERNAL;
    float *wmin = (float *)tmp, *wmax = wmin + nsz;
    double *best_err = (double *)(wmax + nsz), *cur_err = best_err + nsz;
    float *cur_s = (float *)(cur_err + nsz);
    int32_t *zps = (int32_t *)(cur_s + nsz), *cur_z = zps + nsz;
    float *scales = st->data;
    const float *w = t->data;
    for (int64_t k = 0; k < ns; k++)
        wmin[k] = INFINITY, wmax[k] = -INFINITY;
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t c = 0; c < L.len; c++)
            for (int64_t i = 0; i < L.inner; i++) {
                float x = w[(o * L.len + c) * L.inner + i];
                int64_t k = slice_of(&L, o, c, i);
                wmin[k] = x < wmin[k] ? x : wmin[k];
                wmax[k] = x > wmax[k] ? x : wmax[k];
            }
    int ngrid = e->fixed ? 0 : clip_search ? WO_GRID : 1;
    if (e->fixed) { /* codes chosen by GPTQ */
        memcpy(scales, e->fixed->scales, nsz * sizeof *scales);
        memcpy(zps, e->fixed->zps, nsz * sizeof *zps);
    }
    for (int j = 0; j < ngrid; j++) {
        for (int64_t k = 0; k < ns; k++) {
            slice_params(grid, wmin[k], wmax[k], (double)(100 - j) / 100.0, &cur_s[k],
                         &cur_z[k]);
            cur_err[k] = 0;
        }
        /* the candidate's error, summed per slice in element order */
        for (int64_t o = 0; clip_search && o < L.outer; o++)
            for (int64_t c = 0; c < L.len; c++)
                for (int64_t i = 0; i < L.inner; i++) {
                    float x = w[(o * L.len + c) * L.inner + i];
                    int64_t k = slice_of(&L, o, c, i);
                    float y = (float)(code_of(grid, x, cur_s[k], cur_z[k]) - cur_z[k]) * cur_s[k];
                    double d = (double)y - (double)x;
                    cur_err[k] += d * d;
                }
        for (int64_t k = 0; k < ns; k++)
            if (j == 0 || cur_err[k] < best_err[k]) { /* ties keep the larger f */
                best_err[k] = cur_err[k];
                scales[k] = cur_s[k];
                zps[k] = cur_z[k];
            }
    }
    for (int64_t k = 0; k < ns; k++)
        store_code(zt, f->bits, k, zps[k]);
    for (int64_t o = 0; o < L.outer; o++)
        for (int64_t c = 0; c < L.len; c++)
            for (int64_t i = 0; i < L.inner; i++) {
                int64_t at = (o * L.len + c) * L.inner + i;
                int64_t k = slice_of(&L, o, c, i);
                store_code(q, f->bits, at, e->fixed ? e->fixed->codes[at]
                                                    : code_of(grid, w[at], scales[k], zps[k]));
            }
    oct_free(ctx, tmp, bytes);
    const char *base = wv->name;
    ir_value *qv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_quantized", base), q);
    ir_value *sv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_scale", base), st);
    ir_value *zv = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_zero_point", base), zt);
    const char *dname = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_dequantized", base));
    ir_value *dv = dname ? ir_graph_value(ctx, g, dname) : NULL;
    const char *nname = ir_graph_unique_name(ctx, g, ir_sprintf(ctx, "%s_DequantizeLinear", base));
    ir_node *dq = nname && qv && sv && zv && dv
        ? ir_graph_add_node(ctx, g, "DequantizeLinear", "", nname, 3, 1) : NULL;
    if (!dq)
        return OCT_EINTERNAL;
    dv->has_type = true;
    dv->type = wv->type;
    dv->type.dtype = IR_DT_FLOAT;
    dv->type.has_elem_type = true;
    dq->in[0] = qv, dq->in[1] = sv, dq->in[2] = zv;
    ir_node_set_output(dq, 0, dv);
    ir_attr *a = ir_node_add_attr(ctx, dq, "axis", IR_ATTR_INT);
    if (!a)
        return OCT_EINTERNAL;
    a->i = e->axis;
    if (L.bs) {
        if (!(a = ir_node_add_attr(ctx, dq, "block_size", IR_ATTR_INT)))
            return OCT_EINTERNAL;
        a->i = L.bs;
    }
    *out = dv;
    return OCT_OK;
}

/* The DequantizeLinear nodes must come before their readers: the graph is
 * kept in topological order by moving the new nodes (appended last) to the
 * front, where their inputs (initializers) are ready. */
static oct_status dq_first(oct_ctx *ctx, ir_graph *g, size_t n_before)
{
    size_t n_new = g->n_nodes - n_before;
    ir_node **old = ir_alloc_array(ctx, n_before + 1, sizeof *old);
    if (!old)
        return OCT_EINTERNAL;
    memcpy(old, g->nodes, n_before * sizeof *old);
    memmove(g->nodes, g->nodes + n_before, n_new * sizeof *old);
    memcpy(g->nodes + n_new, old, n_before * sizeof *old);
    return OCT_OK;
}

oct_status quant_weight_only(ir_model *m, const quant_opts *opts, oct_ctx *ctx)
{
    return quant_weight_only_data(m, opts, NULL, NULL, NULL, ctx);
}

oct_status quant_weight_only_data(ir_model *m, const quant_opts *opts,
                                  const quant_samples *data, quant_progress_fn progress,
                                  void *progress_user, oct_ctx *ctx)
{
    oct_status st = quant_weight_only_check(opts, ctx);
    if (st)
        return st;
    if (opts->wo_algo != QWO_RTN && !opts->wo_load_stats && (!data || !data->n))
        return oct_error(ctx, OCT_EUSAGE, "weights-only: gptq and awq need calibration "
                         "samples");
    const ir_qformat_traits *f = ir_qformat_info(opts->wo_format);
    wo_grid grid = {f, opts->wo_symmetric < 0 ? f->symmetric : opts->wo_symmetric == 1,
                    opts->wo_symmetric == 2, (double)f->qmin, (double)f->qmax};
    if (grid.symmetric) {
        grid.qlo = f->is_signed ? -(double)f->qmax : 1;
        grid.qhi = (double)f->qmax;
    }
    ir_graph *g = m->graph;
    quant_rules *rules = NULL;
    quant_filter filter;
    st = quant_filter_init(&filter, opts, ctx);
    if (st)
        return st;
    if (opts->config)
        st = quant_config_load(ctx, opts->config, &rules);
    /* which weights, and the opset they need */
    size_t n_nodes = g->n_nodes, n_sel = 0;
    wo_weight *sel = ir_alloc_array(ctx, 2 * n_nodes + 1, sizeof *sel);
    if (!sel && !st)
        st = OCT_EINTERNAL;
    int64_t need = f->opset > 13 ? f->opset : 13;
    bool lowbit = quant_wo_is_lowbit(f);
    for (size_t i = 0; !st && i < n_nodes; i++) {
        ir_node *n = g->nodes[i];
        int slot, ch, red;
        for (int k = 0; weight_of(n, k, &slot, &ch, &red); k++) {
            if (!selected(n, rules, &filter))
                break;
            if (lowbit && red < 0)
                continue; /* Conv: the block formats need a reduction axis */
            /* recurrent weights: round to nearest, integer formats (GPTQ, AWQ
             * and the packed block formats are for MatMul-like weights) */
            if (red == 2 && (lowbit || opts->wo_algo != QWO_RTN))
                continue;
            wo_weight *e = &sel[n_sel++];
            e->node = n, e->input = slot, e->axis = ch, e->bs = 0, e->fixed = NULL;
            e->lowbit_w = NULL;
            if (lowbit) {
                e->axis = red;
                e->bs = f->block_size;
            } else if (opts->weight_granularity == QGRAN_BLOCK && red >= 0) {
                e->axis = red;
                e->bs = opts->block_size;
                need = need > 21 ? need : 21;
            }
        }
    }
    if (rules) {
        quant_config_warn_unused(rules, ctx);
        quant_config_free(rules);
    }
    quant_filter_free(&filter);
    if (!st && !n_sel)
        oct_diagf(ctx, OCT_SEV_WARNING, OCT_OK, NULL, 0, -1, NULL,
                  "weights-only: no weight selected; the model is unchanged");
    if (st || !n_sel)
        return st;
    if (ir_model_opset(m, "") < need && (st = quant_upgrade_opset(m, need, ctx)))
        return st;
    /* the calibrated algorithms: AWQ rescales the float weights, GPTQ
     * chooses the codes (quant_awq.c, quant_gptq.c) */
    bool clip = opts->wo_clip_search || opts->wo_algo == QWO_AWQ || opts->wo_algo == QWO_AWQ_GPTQ;
    if (opts->wo_algo == QWO_AWQ || opts->wo_algo == QWO_AWQ_GPTQ)
        st = quant_awq(m, sel, n_sel, &grid, opts, data, progress, progress_user, ctx);
    if (!st && (opts->wo_algo == QWO_GPTQ || opts->wo_algo == QWO_AWQ_GPTQ))
        st = quant_gptq(m, sel, n_sel, &grid, opts, data, progress, progress_user, ctx);
    if (st)
        return st;
    /* quantize; a weight read by several nodes the same way is shared */
    ir_value **orig = ir_alloc_array(ctx, n_sel, sizeof *orig);
    ir_value **done = ir_alloc_array(ctx, n_sel, sizeof *done);
    if (!orig || !done)
        return OCT_EINTERNAL;
    for (size_t i = 0; i < n_sel; i++) {
        wo_weight *e = &sel[i];
        orig[i] = e->node->in[e->input];
        for (size_t j = 0; j < i && !done[i]; j++)
            if (orig[j] == orig[i] && sel[j].axis == e->axis && sel[j].bs == e->bs)
                done[i] = done[j];
        if (!done[i] && (st = lowbit ? quant_wo_lowbit_one(ctx, g, f, e->node, e->input,
                                                           e->axis, e->lowbit_w, &done[i])
                                     : quantize_one(ctx, g, &grid, clip, e, &done[i])))
            return st;
        e->node->in[e->input] = done[i];
    }
    /* --format=matmulnbits: blocked MatMul weights read by that MatMul
     * alone become MatMulNBits */
    for (size_t i = 0; opts->wo_matmulnbits && i < n_sel; i++)
        if (sel[i].node->op == IR_OP_MATMUL && sel[i].bs &&
            ir_value_use_count(g, done[i]) == 1 &&
            (st = quant_wo_to_matmulnbits(m, sel[i].node, opts->wo_act_int8, ctx)))
            return st;
    if ((st = dq_first(ctx, g, n_nodes)))
        return st;
    quant_drop_dead_inits(g);
    return ir_verify(m, ctx);
}
