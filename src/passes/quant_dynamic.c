/*
 * quant_dynamic.c: `octet quantize --activations=dynamic`: dynamic
 * quantization, with no calibration data.  Every selected MatMul (and Gemm
 * with transA = 0 and alpha = 1) whose weight is a 2-D float constant
 * becomes what ONNX Runtime's quantize_dynamic writes:
 *
 *   x_q, x_scale, x_zp = DynamicQuantizeLinear(x)        (uint8, per tensor,
 *                                                         at run time)
 *   acc = MatMulInteger(x_q, W_q, x_zp, W_zp)            (int32)
 *   y   = Cast<float>(acc) * (x_scale * W_scale)
 *   y   = y + beta * C                                    (Gemm with a C)
 *
 * W_q is int8, symmetric with zero points 0 on the narrow grid
 * [-127, 127] (as the weights of static quantization): scale =
 * f32(max|w| / 127) per output column (--weights=per-channel, the default)
 * or for the whole tensor (--weights=per-tensor), 1 for an all-zero slice;
 * W_q = clamp(round_half_even(f32(w / scale)), -127, 127).  Gemm's B is
 * transposed to [K, N] first when transB = 1.  The narrow grid keeps every
 * u8 x s8 pair product sum of two within int16, which ONNX Runtime's AVX2
 * kernels need.
 *
 * Nodes reading one tensor share its DynamicQuantizeLinear.
 *
 * --dynamic-granularity=row quantizes x per row instead (one scale per
 * vector along its last axis, the rows MatMul multiplies), symmetric int8
 * with no zero point, from ONNX ops (quantize_rows): no ONNX op computes
 * per-row parameters, and QuantizeLinear's 1-D scales cannot follow the
 * rows of an N-D tensor.  Then acc = MatMulInteger(x_q, W_q) (s8 x s8) and
 * y = Cast<float>(acc) * (s_row * W_scale), s_row of shape [..., M, 1].
 * The ops selected: MatMul and Gemm by default; --op-types,
 * --exclude-op-types and --exclude-nodes as for static quantization.
 * Needs no shapes; the opset is raised to 11 if lower (MatMulInteger 10,
 * DynamicQuantizeLinear 11).
 */
#include <math.h>
#include <string.h>

#include "passes/quant.h"

/* A node to rewrite and where its replacement nodes are in g->nodes (they
 * are appended, then moved to its place). */
typedef struct dyn_site {
    ir_node *node;
    size_t first, count;
} dyn_site;

/* Whether n is a MatMul or Gemm whose weight (input 1) is a 2-D float
 * constant and whose arithmetic the rewrite keeps. */
static bool rewritable(const ir_node *n)
{
    if (n->op != IR_OP_MATMUL && n->op != IR_OP_GEMM)
        return false;
    if (n->n_in < 2 || !n->in[0] || !n->in[1] || !n->in[1]->init ||
        n->in[1]->init->dtype != IR_DT_FLOAT || n->in[1]->init->rank != 2)
        return false;
    if (n->op == IR_OP_GEMM && (ir_attr_int(n, "transA", 0) != 0 ||
                                ir_attr_float(n, "alpha", 1.0f) != 1.0f))
        return false;
    return true;
}


/* The int8 weight [K, N] (transposed from [N, K] when trans), its scales
 * ([N] per channel, a scalar per tensor) and zero points (int8 zeros, the
 * scales' shape), as initializers named after the weight. */
static oct_status quantize_weight(oct_ctx *ctx, ir_graph *g, const ir_value *wv,
                                  bool trans, bool per_channel, ir_value **q_out,
                                  ir_value **s_out, ir_value **z_out)
{
    const ir_tensor *t = wv->init;
    int64_t K = trans ? t->dims[1] : t->dims[0], N = trans ? t->dims[0] : t->dims[1];
    int64_t qdims[2] = {K, N}, ns = per_channel ? N : 1;
    ir_tensor *q = ir_tensor_new(ctx, IR_DT_INT8, 2, qdims);
    ir_tensor *st = ir_tensor_new(ctx, IR_DT_FLOAT, per_channel, &N);
    ir_tensor *zt = ir_tensor_new(ctx, IR_DT_INT8, per_channel, &N);
    if (!q || !st || !zt)
        return OCT_EINTERNAL;
    const float *w = t->data;
    float *scale = st->data;
    int8_t *codes = q->data;
    /* element (k, n) of the [K, N] weight */
#define W_AT(k, n) (trans ? w[(n) * K + (k)] : w[(k) * N + (n)])
    for (int64_t s = 0; s < ns; s++)
        scale[s] = 0;
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++) {
            float a = fabsf(W_AT(k, n));
            int64_t s = per_channel ? n : 0;
            scale[s] = a > scale[s] ? a : scale[s];
        }
    for (int64_t s = 0; s < ns; s++) {
        float sc = (float)((double)scale[s] / 127.0);
        scale[s] = sc > 0 && isfinite(sc) ? sc : 1.0f;
    }
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++) {
            float v = nearbyintf(W_AT(k, n) / scale[per_channel ? n : 0]);
            codes[k * N + n] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
        }
#undef W_AT
    *q_out = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_quantized", wv->name), q);
    *s_out = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_scale", wv->name), st);
    *z_out = ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_zero_point", wv->name), zt);
    return *q_out && *s_out && *z_out ? OCT_OK : OCT_EINTERNAL;
}

/* `base`, or `base_N`, that no node of g is named (ONNX wants node names
 * unique; ir_graph_unique_name looks at values only). */
static const char *unique_node_name(oct_ctx *ctx, const ir_graph *g, const char *base)
{
    const char *name = base;
    for (unsigned k = 1; name; k++) {
        size_t i = 0;
        while (i < g->n_nodes && strcmp(g->nodes[i]->name, name))
            i++;
        if (i == g->n_nodes)
            return name;
        name = ir_sprintf(ctx, "%s_%u", base, k);
    }
    return NULL;
}

/* A new node `op` named after n and its first output's suffix, with the
 * given inputs and outputs: given[i], or a fresh value named after n's
 * output + suffix[i]. */
static ir_node *add_node(oct_ctx *ctx, ir_graph *g, const ir_node *n, const char *op,
                         ir_value *const *in, int n_in, int n_out, const char *const *suffix,
                         ir_value *const *given, ir_value **out)
{
    const char *base = ir_sprintf(ctx, "%s_%s", n->name, suffix[0]);
    const char *nname = base ? unique_node_name(ctx, g, base) : NULL;
    ir_node *node = nname ? ir_graph_add_node(ctx, g, op, "", nname, n_in, n_out) : NULL;
    if (!node || !ir_node_add_origin(ctx, node, n))
        return NULL;
    for (int i = 0; i < n_in; i++)
        node->in[i] = in[i];
    for (int i = 0; i < n_out; i++) {
        ir_value *v = given && given[i] ? given[i] : NULL;
        if (!v) {
            const char *vn = ir_graph_unique_name(
                ctx, g, ir_sprintf(ctx, "%s_%s", n->out[0]->name, suffix[i]));
            if (!vn || !(v = ir_graph_value(ctx, g, vn)))
                return NULL;
        }
        ir_node_set_output(node, i, v);
        if (out)
            out[i] = v;
    }
    return node;
}

/* A float32 (or int64 when `i64`) constant of shape [] or [1] as an
 * initializer named after n. */
static ir_value *scalar(oct_ctx *ctx, ir_graph *g, const ir_node *n, const char *what,
                        double v, bool i64)
{
    int64_t one = 1;
    ir_tensor *t = ir_tensor_new(ctx, i64 ? IR_DT_INT64 : IR_DT_FLOAT, i64, &one);
    if (!t)
        return NULL;
    if (i64)
        *(int64_t *)t->data = (int64_t)v;
    else
        *(float *)t->data = (float)v;
    return ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_%s", n->name, what), t);
}

/* --dynamic-granularity=row: x quantized per row (one scale per vector
 * along the last axis), symmetric int8, with ONNX ops computed in float32:
 *   s  = max(ReduceMax(|x|, axis -1, keepdims), 2^-126) / 127
 *   xq = Cast<int8>(Clip(Round(x / s), -127, 127))
 * dq[0] = xq, dq[1] = s ([..., M, 1]), dq[2] = NULL (no zero point). */
static oct_status quantize_rows(oct_ctx *ctx, ir_graph *g, ir_node *n, int64_t opset,
                                ir_value **dq)
{
    static const char *const abs_n[] = {"row_abs"}, *const max_n[] = {"row_absmax"},
                             *const safe_n[] = {"row_absmax_safe"}, *const s_n[] = {"row_scale"},
                             *const div_n[] = {"row_div"}, *const rnd_n[] = {"row_round"},
                             *const clip_n[] = {"row_clip"}, *const q_n[] = {"row_quantized"};
    ir_value *a, *m, *safe, *s, *d, *r, *c, *q;
    ir_value *axes = scalar(ctx, g, n, "row_axes", -1, true);
    ir_value *tiny = scalar(ctx, g, n, "row_tiny", 0x1p-126, false);
    ir_value *k127 = scalar(ctx, g, n, "row_127", 127, false);
    ir_value *km127 = scalar(ctx, g, n, "row_minus_127", -127, false);
    if (!axes || !tiny || !k127 || !km127 ||
        !add_node(ctx, g, n, "Abs", &n->in[0], 1, 1, abs_n, NULL, &a))
        return OCT_EINTERNAL;
    /* ReduceMax takes its axes as an input from opset 18, before as an
     * attribute */
    ir_value *rm_in[2] = {a, axes};
    ir_node *rm = add_node(ctx, g, n, "ReduceMax", rm_in, opset >= 18 ? 2 : 1, 1, max_n,
                           NULL, &m);
    ir_attr *kd = rm ? ir_node_add_attr(ctx, rm, "keepdims", IR_ATTR_INT) : NULL;
    if (!kd)
        return OCT_EINTERNAL;
    kd->i = 1;
    if (opset < 18) {
        ir_attr *ax = ir_node_add_attr(ctx, rm, "axes", IR_ATTR_INTS);
        int64_t *v = ir_alloc(ctx, sizeof *v);
        if (!ax || !v)
            return OCT_EINTERNAL;
        *v = -1;
        ax->ints = v;
        ax->n = 1;
    }
    ir_value *mx_in[2] = {m, tiny}, *s_in[2] = {NULL, k127}, *d_in[2] = {n->in[0], NULL};
    if (!add_node(ctx, g, n, "Max", mx_in, 2, 1, safe_n, NULL, &safe))
        return OCT_EINTERNAL;
    s_in[0] = safe;
    if (!add_node(ctx, g, n, "Div", s_in, 2, 1, s_n, NULL, &s))
        return OCT_EINTERNAL;
    d_in[1] = s;
    ir_value *c_in[3] = {NULL, km127, k127};
    if (!add_node(ctx, g, n, "Div", d_in, 2, 1, div_n, NULL, &d) ||
        !add_node(ctx, g, n, "Round", &d, 1, 1, rnd_n, NULL, &r))
        return OCT_EINTERNAL;
    c_in[0] = r;
    ir_node *cast;
    if (!add_node(ctx, g, n, "Clip", c_in, 3, 1, clip_n, NULL, &c) ||
        !(cast = add_node(ctx, g, n, "Cast", &c, 1, 1, q_n, NULL, &q)))
        return OCT_EINTERNAL;
    ir_attr *to = ir_node_add_attr(ctx, cast, "to", IR_ATTR_INT);
    if (!to)
        return OCT_EINTERNAL;
    to->i = IR_DT_INT8;
    dq[0] = q, dq[1] = s, dq[2] = NULL;
    return OCT_OK;
}

/* Replaces n, already removed from g's node list: appends the new nodes
 * (the caller moves them into place).  dq: the DynamicQuantizeLinear
 * outputs of n's input if an earlier site made them (dq[0] set), else
 * filled with the ones made here. */
static oct_status rewrite_one(oct_ctx *ctx, ir_graph *g, ir_node *n, bool per_channel,
                              bool rows, int64_t opset, ir_value **dq)
{
    bool gemm = n->op == IR_OP_GEMM;
    bool trans = gemm && ir_attr_int(n, "transB", 0) != 0;
    ir_value *c = gemm && n->n_in > 2 ? n->in[2] : NULL;
    float beta = ir_attr_float(n, "beta", 1.0f);
    ir_value *y = n->out[0], *wq, *ws, *wz;
    oct_status st = quantize_weight(ctx, g, n->in[1], trans, per_channel, &wq, &ws, &wz);
    if (st)
        return st;
    ir_value *acc, *f, *scale, *mm;
    static const char *const dq_names[] = {"quantized", "scale", "zero_point"};
    static const char *const acc_name[] = {"output_quantized"};
    static const char *const cast_name[] = {"output_quantized_cast"};
    static const char *const scale_name[] = {"quant_scales_mul"};
    static const char *const mm_name[] = {"matmul"};
    static const char *const beta_name[] = {"beta_c"};
    if (!dq[0] && rows && (st = quantize_rows(ctx, g, n, opset, dq)))
        return st;
    bool have_q = dq[0] ||
                  add_node(ctx, g, n, "DynamicQuantizeLinear", &n->in[0], 1, 3, dq_names,
                           NULL, dq);
    /* rows: symmetric, no zero point for x; the weight's are zeros */
    ir_value *mi_in[4] = {dq[0], wq, dq[2], wz};
    ir_node *mi = have_q ? add_node(ctx, g, n, "MatMulInteger", mi_in, rows ? 2 : 4, 1,
                                    acc_name, NULL, &acc) : NULL;
    ir_node *cast = mi ? add_node(ctx, g, n, "Cast", &acc, 1, 1, cast_name, NULL, &f) : NULL;
    ir_attr *to = cast ? ir_node_add_attr(ctx, cast, "to", IR_ATTR_INT) : NULL;
    if (!to)
        return OCT_EINTERNAL;
    to->i = IR_DT_FLOAT;
    ir_value *sm_in[2] = {dq[1], ws};
    if (!add_node(ctx, g, n, "Mul", sm_in, 2, 1, scale_name, NULL, &scale))
        return OCT_EINTERNAL;
    /* the product is y unless a bias follows */
    ir_value *mul_in[2] = {f, scale};
    ir_value *mul_out = c ? NULL : y;
    if (!add_node(ctx, g, n, "Mul", mul_in, 2, 1, mm_name, &mul_out, &mm))
        return OCT_EINTERNAL;
    if (!c)
        return OCT_OK;
    if (beta != 1.0f) { /* beta * C, a constant folded by later passes */
        int64_t one = 1;
        ir_tensor *bt = ir_tensor_new(ctx, IR_DT_FLOAT, 0, &one);
        ir_value *bv = bt ? ir_graph_add_init(ctx, g, ir_sprintf(ctx, "%s_beta", n->name),
                                              bt) : NULL;
        if (!bv)
            return OCT_EINTERNAL;
        *(float *)bt->data = beta;
        ir_value *b_in[2] = {c, bv};
        if (!add_node(ctx, g, n, "Mul", b_in, 2, 1, beta_name, NULL, &c))
            return OCT_EINTERNAL;
    }
    ir_value *add_in[2] = {mm, c};
    ir_value *given[1] = {y};
    static const char *const add_name[] = {"bias"};
    return add_node(ctx, g, n, "Add", add_in, 2, 1, add_name, given, NULL) ? OCT_OK
                                                                          : OCT_EINTERNAL;
}

/* Moves each site's replacement nodes (appended after n_kept nodes) to
 * where its node was: sites[] is in graph order, positions[] the index
 * each node had among the kept ones. */
static oct_status reorder(oct_ctx *ctx, ir_graph *g, const dyn_site *sites, size_t n_sites,
                          const size_t *positions, size_t n_kept)
{
    ir_node **order = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *order);
    if (!order)
        return OCT_EINTERNAL;
    size_t k = 0, s = 0;
    for (size_t i = 0; i <= n_kept; i++) {
        for (; s < n_sites && positions[s] == i; s++)
            for (size_t j = 0; j < sites[s].count; j++)
                order[k++] = g->nodes[sites[s].first + j];
        if (i < n_kept)
            order[k++] = g->nodes[i];
    }
    OCT_ASSERT(k == g->n_nodes);
    memcpy(g->nodes, order, k * sizeof *order);
    return OCT_OK;
}

oct_status quant_dynamic(ir_model *m, const quant_opts *opts, oct_ctx *ctx)
{
    ir_graph *g = m->graph;
    quant_filter filter;
    oct_status fst = quant_filter_init(&filter, opts, ctx);
    if (fst)
        return fst;
    size_t n_sites = 0;
    dyn_site *sites = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *sites);
    size_t *positions = ir_alloc_array(ctx, g->n_nodes + 1, sizeof *positions);
    oct_status st = sites && positions ? OCT_OK : OCT_EINTERNAL;
    for (size_t i = 0; !st && i < g->n_nodes; i++) {
        ir_node *n = g->nodes[i];
        if (rewritable(n) && quant_filter_pass(&filter, n, true)) {
            /* among the nodes kept, n's successors start at i - n_sites */
            positions[n_sites] = i - n_sites;
            sites[n_sites++].node = n;
        }
    }
    quant_filter_free(&filter);
    if (!st && !n_sites)
        oct_diagf(ctx, OCT_SEV_WARNING, OCT_OK, NULL, 0, -1, NULL,
                  "dynamic: no MatMul or Gemm with a constant 2-D float weight "
                  "selected; the model is unchanged");
    if (st || !n_sites)
        return st;
    if (ir_model_opset(m, "") < 11 && (st = quant_upgrade_opset(m, 11, ctx)))
        return st;
    bool per_channel = opts->weight_granularity != QGRAN_TENSOR;
    /* removed first, so that the appended nodes keep their indices */
    for (size_t s = 0; s < n_sites; s++)
        ir_graph_remove_node(g, sites[s].node);
    size_t n_kept = g->n_nodes;
    /* one DynamicQuantizeLinear per input tensor, however many nodes read
     * it (q/k/v projections): made at the first, which comes first */
    ir_value **dqs = ir_alloc_array(ctx, 3 * n_sites + 1, sizeof *dqs);
    if (!dqs)
        return OCT_EINTERNAL;
    for (size_t s = 0; s < n_sites; s++) {
        ir_value **dq = &dqs[3 * s];
        for (size_t e = 0; e < s && !dq[0]; e++)
            if (sites[e].node->in[0] == sites[s].node->in[0])
                memcpy(dq, &dqs[3 * e], 3 * sizeof *dq);
        sites[s].first = g->n_nodes;
        if ((st = rewrite_one(ctx, g, sites[s].node, per_channel, opts->dynamic_rows,
                              ir_model_opset(m, ""), dq)))
            return st;
        sites[s].count = g->n_nodes - sites[s].first;
    }
    if ((st = reorder(ctx, g, sites, n_sites, positions, n_kept)))
        return st;
    quant_drop_dead_inits(g);
    return ir_verify(m, ctx);
}
