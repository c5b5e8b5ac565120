/*
 * attention.c: the opset-23 transformer ops RotaryEmbedding and Attention
 * (RMSNormalization is in norm.c), with the geometry of src/ops/rules.h.
 *
 * RotaryEmbedding: for each head position (b, s, h) and pair k < rot/2,
 * x1 = x[k], x2 = x[k + rot/2] (x[2k], x[2k + 1] when interleaved),
 *   y1 = cos * x1 - sin * x2,   y2 = sin * x1 + cos * x2
 * with cos = cos_cache[position_ids[b, s], k] (cos_cache[b, s, k] without
 * position_ids); elements past rot are copied.  Arithmetic in double,
 * rounded once to the output type.  A position id outside the caches is
 * reported.
 *
 * Attention, per (b, query head h, query i), as onnx.reference computes
 * it: scores[j] = sum_d (q[d] * s) (k[j, d] * s) with s = sqrt(scale) and
 * each product operand rounded to Q's type, the score rounded to Q's type
 * (as a matmul in that type returns it), softcap c > 0 gives c * tanh(x /
 * c) rounded again; then the bias (rules.h) is added, the softmax over j
 * is taken in double (the max subtracted first; a row whose maximum is
 * -inf gives zeros), probabilities of a row whose bias is -inf everywhere
 * are zero, and they are rounded to Q's type before Y = P V, accumulated
 * in double and rounded once.  softmax_precision only asks for at least
 * that precision, so double satisfies every value.  present_key /
 * present_value are the past concatenated with K / V; qk_matmul_output is
 * the scores for mode 0, the softcapped scores for mode 1, those plus the
 * bias for mode 2, and the probabilities for mode 3, as the spec says
 * (onnx.reference returns the softcapped scores for mode 0 too; no node
 * test combines mode 0 with softcap).
 */
#include <math.h>

#include "ref/ref.h"

static void shapes_of(const ref_call *call, ops_shape *in, int max)
{
    for (int i = 0; i < max; i++) {
        if (i < call->n_in && call->in[i])
            ops_shape_of(call->in[i], &in[i]);
        else {
            in[i].rank = -1;
            in[i].dtype = IR_DT_UNDEFINED;
        }
    }
}

/* ---- RotaryEmbedding ----------------------------------------------------- */

oct_status ref_rotary(ref_call *call)
{
    ops_shape in[4];
    shapes_of(call, in, 4);
    ops_rotary_geom g;
    oct_status st = ops_rotary_geometry(call->ctx, call->node, in, call->n_in, &g);
    if (st)
        return st;
    const ir_tensor *x = call->in[0], *cosc = call->in[1], *sinc = call->in[2];
    const ir_tensor *pos = g.has_pos ? call->in[3] : NULL;
    ir_tensor *y = call->out[0];
    int64_t half = g.rot / 2;
    for (int64_t b = 0; b < g.batch; b++)
        for (int64_t s = 0; s < g.seq; s++) {
            int64_t row = b * g.seq + s; /* cache row without position_ids */
            if (pos) {
                row = ops_get_i64(pos, (uint64_t)(b * g.seq + s));
                if (row < 0 || row >= g.max_pos)
                    return oct_input_error(call->ctx, OCT_EINPUT, call->node, 3,
                                           "position id %lld is outside the caches' %lld rows",
                                           (long long)row, (long long)g.max_pos);
            }
            for (int64_t h = 0; h < g.heads; h++) {
                uint64_t base = (uint64_t)((g.rank3 ? (b * g.seq + s) * g.heads + h
                                                    : (b * g.heads + h) * g.seq + s) *
                                           g.head);
                for (int64_t k = 0; k < half; k++) {
                    double c = ops_get(cosc, (uint64_t)(row * half + k));
                    double sn = ops_get(sinc, (uint64_t)(row * half + k));
                    uint64_t i1 = base + (uint64_t)(g.interleaved ? 2 * k : k);
                    uint64_t i2 = base + (uint64_t)(g.interleaved ? 2 * k + 1 : k + half);
                    double x1 = ops_get(x, i1), x2 = ops_get(x, i2);
                    ops_set(y, i1, c * x1 - sn * x2);
                    ops_set(y, i2, sn * x1 + c * x2);
                }
                for (int64_t d = g.rot; d < g.head; d++)
                    ops_set(y, base + (uint64_t)d, ops_get(x, base + (uint64_t)d));
            }
        }
    return OCT_OK;
}

/* ---- Attention ----------------------------------------------------------- */

/* v rounded to Q's type dt (double stays double). */
static double rnd(ir_dtype dt, double v)
{
    return dt == IR_DT_DOUBLE ? v : ops_round_to(dt, v);
}

/* Offset of element (b, head, j, d) of a Q/K/V-like input with `heads`
 * heads, sequence seq and head size hs, 3-D or 4-D. */
static uint64_t qkv_at(bool rank3, int64_t heads, int64_t seq, int64_t hs, int64_t b,
                       int64_t head, int64_t j, int64_t d)
{
    return (uint64_t)(rank3 ? ((b * seq + j) * heads + head) * hs + d
                            : ((b * heads + head) * seq + j) * hs + d);
}

/* Element (b, kvh, j, d) of the keys or values after the past: past
 * (4-D, `past` long) then the new ones. */
static double kv_get(const ops_attn_geom *g, const ir_tensor *past, const ir_tensor *now,
                     int64_t hs, int64_t b, int64_t kvh, int64_t j, int64_t d)
{
    if (j < g->past)
        return ops_get(past, qkv_at(false, g->kv_heads, g->past, hs, b, kvh, j, d));
    return ops_get(now, qkv_at(g->rank3, g->kv_heads, g->kv_seq, hs, b, kvh, j - g->past, d));
}

/* The additive bias of (b, h, i, j) (rules.h): 0, the mask's value, or
 * -inf. */
static double attn_bias(const ops_attn_geom *g, const ir_tensor *mask, int64_t nonpad,
                        int64_t b, int64_t h, int64_t i, int64_t j)
{
    int64_t offset = g->has_past ? g->past : g->has_nonpad ? nonpad - g->q_seq : 0;
    if (g->causal && j > i + offset)
        return -INFINITY;
    int64_t diff = i + offset - j;
    if ((g->left >= 0 && diff > g->left) || (g->right >= 0 && -diff > g->right))
        return -INFINITY;
    if (g->has_nonpad && j >= nonpad)
        return -INFINITY;
    if (!mask)
        return 0;
    if (j >= g->mask_dims[g->mask_rank - 1]) /* padded past its last dim */
        return -INFINITY;
    const int64_t coord[4] = {b, h, i, j};
    uint64_t idx = 0;
    for (int d = 0; d < g->mask_rank; d++) {
        int64_t c = coord[4 - g->mask_rank + d], n = g->mask_dims[d];
        idx = idx * (uint64_t)n + (uint64_t)(n == 1 ? 0 : c);
    }
    double v = ops_get(mask, idx);
    if (mask->dtype == IR_DT_BOOL)
        return v != 0 ? 0 : -INFINITY;
    return v;
}

oct_status ref_attention(ref_call *call)
{
    ops_shape in[7];
    shapes_of(call, in, 7);
    ops_attn_geom g;
    oct_status st = ops_attention_geometry(call->ctx, call->node, in, call->n_in, &g);
    if (st)
        return st;
    const ir_tensor *q = call->in[0], *k = call->in[1], *v = call->in[2];
    const ir_tensor *mask = g.has_mask ? call->in[3] : NULL;
    const ir_tensor *pk = g.has_past ? call->in[4] : NULL, *pv = g.has_past ? call->in[5] : NULL;
    const ir_tensor *np = g.has_nonpad ? call->in[6] : NULL;
    ir_tensor *y = call->out[0];
    ir_tensor *yk = call->n_out > 1 ? call->out[1] : NULL;
    ir_tensor *yv = call->n_out > 2 ? call->out[2] : NULL;
    ir_tensor *yqk = call->n_out > 3 ? call->out[3] : NULL;
    ir_dtype qt = q->dtype;
    double ss = rnd(qt, g.sqrt_scale);
    int64_t group = g.q_heads / g.kv_heads, T = g.total;
    size_t bytes = sizeof(double) * (size_t)(T ? T : 1) * 3;
    double *x = oct_malloc(call->ctx, bytes);
    if (!x)
        return OCT_EINTERNAL;
    double *bias = x + T, *capped = x + 2 * T;
    for (int64_t b = 0; b < g.batch; b++) {
        int64_t nonpad = np ? ops_get_i64(np, (uint64_t)b) : 0;
        for (int64_t h = 0; h < g.q_heads; h++) {
            int64_t kvh = h / group;
            for (int64_t i = 0; i < g.q_seq; i++) {
                bool all_masked = true;
                double mx = -INFINITY;
                for (int64_t j = 0; j < T; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < g.qk_size; d++) {
                        double qv = ops_get(q, qkv_at(g.rank3, g.q_heads, g.q_seq, g.qk_size,
                                                      b, h, i, d));
                        double kv = kv_get(&g, pk, k, g.qk_size, b, kvh, j, d);
                        s += rnd(qt, qv * ss) * rnd(qt, kv * ss);
                    }
                    s = rnd(qt, s);
                    double raw = s;
                    if (g.softcap > 0)
                        s = rnd(qt, g.softcap * tanh(s / g.softcap));
                    capped[j] = g.mode == 0 ? raw : s; /* what modes 0..2 output */
                    bias[j] = attn_bias(&g, mask, nonpad, b, h, i, j);
                    all_masked = all_masked && bias[j] == -INFINITY;
                    x[j] = s + bias[j];
                    mx = isnan(x[j]) || isnan(mx) ? NAN : x[j] > mx ? x[j] : mx;
                }
                double sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    x[j] = mx == -INFINITY ? 0 : exp(x[j] - mx);
                    sum += x[j];
                }
                for (int64_t j = 0; j < T; j++)
                    x[j] = all_masked || sum == 0 ? 0 : rnd(qt, x[j] / sum);
                if (yqk) {
                    uint64_t base = (uint64_t)(((b * g.q_heads + h) * g.q_seq + i) * T);
                    for (int64_t j = 0; j < T; j++)
                        ops_set(yqk, base + (uint64_t)j,
                                g.mode == 3 ? x[j] : g.mode == 2 ? capped[j] + bias[j] : capped[j]);
                }
                for (int64_t d = 0; d < g.v_size; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < T; j++)
                        acc += x[j] * kv_get(&g, pv, v, g.v_size, b, kvh, j, d);
                    ops_set(y, qkv_at(g.rank3, g.q_heads, g.q_seq, g.v_size, b, h, i, d), acc);
                }
            }
        }
        for (int64_t kvh = 0; kvh < g.kv_heads; kvh++)
            for (int64_t j = 0; j < T; j++) {
                for (int64_t d = 0; yk && d < g.qk_size; d++)
                    ops_set(yk, qkv_at(false, g.kv_heads, T, g.qk_size, b, kvh, j, d),
                            kv_get(&g, pk, k, g.qk_size, b, kvh, j, d));
                for (int64_t d = 0; yv && d < g.v_size; d++)
                    ops_set(yv, qkv_at(false, g.kv_heads, T, g.v_size, b, kvh, j, d),
                            kv_get(&g, pv, v, g.v_size, b, kvh, j, d));
            }
    }
    oct_free(call->ctx, x, bytes);
    return OCT_OK;
}
