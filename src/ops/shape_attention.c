/*
 * shape_attention.c: the shape and type rules of the opset-23 transformer
 * ops RMSNormalization, RotaryEmbedding and Attention, and the geometry
 * (rules.h) the interpreter (src/ref/attention.c) and the compiler
 * (src/codegen/lower_attention.c) both index with, so the three agree on
 * head layout, grouped-query head mapping, past concatenation and mask
 * broadcasting by construction.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static bool float_input(ops_infer *inf, int i)
{
    ir_dtype dt = inf->in[i].dtype;
    if (dt == IR_DT_UNDEFINED || ir_dtype_info(dt)->kind == IR_DK_FLOAT)
        return true;
    oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i, "must be a float type, not %s",
                    ir_dtype_name(dt));
    return false;
}

static bool all_known(const ops_shape *s)
{
    if (s->rank < 0)
        return false;
    for (int k = 0; k < s->rank; k++)
        if (s->dims[k] < 0)
            return false;
    return true;
}

/* ---- RMSNormalization ---------------------------------------------------- */

bool ops_rms_axis(const ir_node *node, int rank, int *axis)
{
    return ops_norm_axis(ir_attr_int(node, "axis", -1), rank, axis);
}

oct_status ops_shape_rmsnorm(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0], *s = &inf->in[1];
    if (!float_input(inf, 0) || !float_input(inf, 1))
        return OCT_EINPUT;
    int64_t stash = ir_attr_int(inf->node, "stash_type", 1);
    if (!ir_dtype_valid((int)stash) || ir_dtype_info((ir_dtype)stash)->kind != IR_DK_FLOAT)
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "stash_type %lld is not a float type", (long long)stash);
    if (x->rank >= 0) {
        int axis;
        if (!ops_rms_axis(inf->node, x->rank, &axis))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis out of range for rank %d", x->rank);
        /* scale broadcasts (unidirectionally) to dims[axis:] */
        bool ok = s->rank < 0 || s->rank <= x->rank - axis;
        for (int k = 0; ok && s->rank >= 0 && k < s->rank; k++) {
            int64_t d = s->dims[s->rank - 1 - k], xd = x->dims[x->rank - 1 - k];
            ok = d < 0 || xd < 0 || d == 1 || d == xd;
        }
        if (!ok)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 1,
                                   "does not broadcast to the normalized dims");
    }
    inf->out[0] = *x;
    /* Y has the scale's type V (the spec's type constraint) */
    if (s->dtype != IR_DT_UNDEFINED)
        inf->out[0].dtype = s->dtype;
    return OCT_OK;
}

/* ---- RotaryEmbedding ----------------------------------------------------- */

oct_status ops_rotary_geometry(oct_ctx *ctx, const ir_node *node, const ops_shape *in,
                               int n_in, ops_rotary_geom *g)
{
    memset(g, 0, sizeof *g);
    const ops_shape *x = &in[0], *c = &in[1], *s = &in[2];
    g->has_pos = n_in > 3 && in[3].rank >= 0;
    g->interleaved = ir_attr_int(node, "interleaved", 0) != 0;
    int64_t nh = ir_attr_int(node, "num_heads", 0);
    if (x->rank == 4) {
        g->batch = x->dims[0], g->heads = x->dims[1], g->seq = x->dims[2], g->head = x->dims[3];
    } else if (x->rank == 3) {
        if (nh <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "a 3-D input needs the num_heads attribute");
        if (x->dims[2] % nh)
            return oct_input_error(ctx, OCT_EINPUT, node, 0,
                                   "hidden size %lld is not a multiple of num_heads %lld",
                                   (long long)x->dims[2], (long long)nh);
        g->rank3 = true;
        g->batch = x->dims[0], g->seq = x->dims[1], g->heads = nh, g->head = x->dims[2] / nh;
    } else {
        return oct_input_error(ctx, OCT_EINPUT, node, 0, "must be 3-D or 4-D, not rank %d",
                               x->rank);
    }
    int64_t rd = ir_attr_int(node, "rotary_embedding_dim", 0);
    g->rot = rd ? rd : g->head;
    if (g->rot < 0 || g->rot > g->head || g->rot % 2)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "rotary_embedding_dim %lld must be even and at most the head "
                              "size %lld", (long long)g->rot, (long long)g->head);
    int64_t half = g->rot / 2;
    for (int i = 1; i <= 2; i++) {
        const ops_shape *t = i == 1 ? c : s;
        bool ok = g->has_pos ? t->rank == 2 : t->rank == 3 && t->dims[0] == g->batch &&
                                                  t->dims[1] == g->seq;
        if (!ok || t->dims[t->rank - 1] != half)
            return oct_input_error(ctx, OCT_EINPUT, node, i,
                                   g->has_pos ? "must be [max_position, %lld]"
                                              : "must be [batch, sequence, %lld] without "
                                                "position_ids",
                                   (long long)half);
    }
    if (g->has_pos) {
        if (c->dims[0] != s->dims[0])
            return oct_input_error(ctx, OCT_EINPUT, node, 2, "has %lld positions, cos_cache %lld",
                                   (long long)s->dims[0], (long long)c->dims[0]);
        g->max_pos = c->dims[0];
        const ops_shape *p = &in[3];
        if (p->rank != 2 || p->dims[0] != g->batch || p->dims[1] != g->seq)
            return oct_input_error(ctx, OCT_EINPUT, node, 3, "must be [batch %lld, sequence %lld]",
                                   (long long)g->batch, (long long)g->seq);
        if (p->dtype != IR_DT_UNDEFINED && p->dtype != IR_DT_INT64)
            return oct_input_error(ctx, OCT_EINPUT, node, 3, "must be int64, not %s",
                                   ir_dtype_name(p->dtype));
    }
    return OCT_OK;
}

oct_status ops_shape_rotary(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    for (int i = 0; i < 3; i++)
        if (!float_input(inf, i))
            return OCT_EINPUT;
    bool known = true;
    for (int i = 0; i < inf->n_in && i < 4; i++)
        if (inf->node->in[i])
            known = known && all_known(&inf->in[i]);
    if (known) {
        ops_rotary_geom g;
        oct_status st = ops_rotary_geometry(inf->ctx, inf->node, inf->in, inf->n_in, &g);
        if (st)
            return st;
    } else if (x->rank >= 0 && x->rank != 3 && x->rank != 4) {
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "must be 3-D or 4-D, not rank %d", x->rank);
    }
    inf->out[0] = *x;
    return OCT_OK;
}

/* ---- Attention ----------------------------------------------------------- */

static bool dims4(const ops_shape *s, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return s->rank == 4 && (a < 0 || s->dims[0] == a) && (b < 0 || s->dims[1] == b) &&
           (c < 0 || s->dims[2] == c) && (d < 0 || s->dims[3] == d);
}

oct_status ops_attention_geometry(oct_ctx *ctx, const ir_node *node, const ops_shape *in,
                                  int n_in, ops_attn_geom *g)
{
    memset(g, 0, sizeof *g);
    const ops_shape *q = &in[0], *k = &in[1], *v = &in[2];
    const ops_shape *mask = n_in > 3 && in[3].rank >= 0 ? &in[3] : NULL;
    const ops_shape *pk = n_in > 4 && in[4].rank >= 0 ? &in[4] : NULL;
    const ops_shape *pv = n_in > 5 && in[5].rank >= 0 ? &in[5] : NULL;
    const ops_shape *np = n_in > 6 && in[6].rank >= 0 ? &in[6] : NULL;
    if (q->rank != k->rank || q->rank != v->rank || (q->rank != 3 && q->rank != 4))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "Q, K and V must all be 3-D or all 4-D (ranks %d, %d, %d)",
                              q->rank, k->rank, v->rank);
    g->batch = q->dims[0];
    for (int i = 1; i < 3; i++)
        if (in[i].dims[0] != g->batch)
            return oct_input_error(ctx, OCT_EINPUT, node, i, "batch %lld differs from Q's %lld",
                                   (long long)in[i].dims[0], (long long)g->batch);
    if (q->rank == 3) {
        int64_t hq = ir_attr_int(node, "q_num_heads", 0), hkv = ir_attr_int(node, "kv_num_heads", 0);
        if (hq <= 0 || hkv <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "3-D inputs need the q_num_heads and kv_num_heads attributes");
        for (int i = 0; i < 3; i++)
            if (in[i].dims[2] % (i ? hkv : hq))
                return oct_input_error(ctx, OCT_EINPUT, node, i,
                                       "hidden size %lld is not a multiple of %lld heads",
                                       (long long)in[i].dims[2], (long long)(i ? hkv : hq));
        g->rank3 = true;
        g->q_heads = hq, g->kv_heads = hkv;
        g->q_seq = q->dims[1], g->kv_seq = k->dims[1];
        g->qk_size = q->dims[2] / hq;
        if (k->dims[2] / hkv != g->qk_size)
            return oct_input_error(ctx, OCT_EINPUT, node, 1, "head size %lld differs from Q's %lld",
                                   (long long)(k->dims[2] / hkv), (long long)g->qk_size);
        g->v_size = v->dims[2] / hkv;
        if (v->dims[1] != g->kv_seq)
            return oct_input_error(ctx, OCT_EINPUT, node, 2, "sequence %lld differs from K's %lld",
                                   (long long)v->dims[1], (long long)g->kv_seq);
    } else {
        g->q_heads = q->dims[1], g->kv_heads = k->dims[1];
        g->q_seq = q->dims[2], g->kv_seq = k->dims[2];
        g->qk_size = q->dims[3];
        if (k->dims[3] != g->qk_size)
            return oct_input_error(ctx, OCT_EINPUT, node, 1, "head size %lld differs from Q's %lld",
                                   (long long)k->dims[3], (long long)g->qk_size);
        if (!dims4(v, g->batch, g->kv_heads, g->kv_seq, -1))
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "must be [batch, %lld kv heads, sequence %lld, head size]",
                                   (long long)g->kv_heads, (long long)g->kv_seq);
        g->v_size = v->dims[3];
    }
    if (g->qk_size <= 0)
        return oct_input_error(ctx, OCT_EINPUT, node, 0, "head size must be positive, not %lld",
                               (long long)g->qk_size);
    if (g->kv_heads <= 0 || g->q_heads <= 0 || g->q_heads % g->kv_heads)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "%lld query heads are not a multiple of %lld kv heads",
                              (long long)g->q_heads, (long long)g->kv_heads);
    if (!pk != !pv)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "past_key and past_value must be given together");
    if (pk) {
        if (!dims4(pk, g->batch, g->kv_heads, -1, g->qk_size))
            return oct_input_error(ctx, OCT_EINPUT, node, 4,
                                   "must be [batch, %lld kv heads, past, %lld]",
                                   (long long)g->kv_heads, (long long)g->qk_size);
        if (!dims4(pv, g->batch, g->kv_heads, pk->dims[2], g->v_size))
            return oct_input_error(ctx, OCT_EINPUT, node, 5,
                                   "must be [batch, %lld kv heads, past %lld, %lld]",
                                   (long long)g->kv_heads, (long long)pk->dims[2],
                                   (long long)g->v_size);
        g->has_past = true;
        g->past = pk->dims[2];
    }
    g->total = g->past + g->kv_seq;
    if (np) {
        if (pk)
            return oct_input_error(ctx, OCT_EINPUT, node, 6,
                                   "cannot be combined with past_key / past_value");
        if (np->rank != 1 || np->dims[0] != g->batch ||
            (np->dtype != IR_DT_UNDEFINED && np->dtype != IR_DT_INT64))
            return oct_input_error(ctx, OCT_EINPUT, node, 6, "must be an int64 vector of %lld",
                                   (long long)g->batch);
        g->has_nonpad = true;
    }
    if (mask) {
        const int64_t full[4] = {g->batch, g->q_heads, g->q_seq, g->total};
        bool ok = mask->rank >= 1 && mask->rank <= 4 && mask->dims[mask->rank - 1] <= g->total;
        for (int d = 0; ok && d < mask->rank - 1; d++) {
            int64_t md = mask->dims[d], want = full[4 - mask->rank + d];
            ok = md == 1 || md == want;
        }
        if (!ok)
            return oct_input_error(ctx, OCT_EINPUT, node, 3,
                                   "does not broadcast to [%lld, %lld, %lld, %lld]",
                                   (long long)full[0], (long long)full[1], (long long)full[2],
                                   (long long)full[3]);
        g->has_mask = true;
        g->mask_rank = mask->rank;
        for (int d = 0; d < mask->rank; d++)
            g->mask_dims[d] = mask->dims[d];
    }
    const ir_attr *sc = ir_node_attr(node, "scale");
    double scale = sc ? ir_attr_float(node, "scale", 1.0f) : 1.0 / sqrt((double)g->qk_size);
    if (!(scale > 0))
        return oct_node_error(ctx, OCT_EINPUT, node, "scale %g must be positive", scale);
    g->sqrt_scale = sqrt(scale);
    g->softcap = ir_attr_float(node, "softcap", 0.0f);
    g->causal = ir_attr_int(node, "is_causal", 0) != 0;
    g->left = ir_attr_int(node, "left_window_size", -1);
    g->right = ir_attr_int(node, "right_window_size", -1);
    if (g->left < -1 || g->right < -1)
        return oct_node_error(ctx, OCT_EINPUT, node, "window sizes must be -1 or nonnegative");
    int64_t mode = ir_attr_int(node, "qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3)
        return oct_node_error(ctx, OCT_EINPUT, node, "qk_matmul_output_mode %lld is not 0..3",
                              (long long)mode);
    g->mode = (int)mode;
    const ir_attr *sp = ir_node_attr(node, "softmax_precision");
    if (sp) {
        int64_t p = ir_attr_int(node, "softmax_precision", 1);
        if (!ir_dtype_valid((int)p) || ir_dtype_info((ir_dtype)p)->kind != IR_DK_FLOAT)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "softmax_precision %lld is not a float type", (long long)p);
    }
    return OCT_OK;
}

oct_status ops_shape_attention(ops_infer *inf)
{
    for (int i = 0; i < 3; i++)
        if (!float_input(inf, i))
            return OCT_EINPUT;
    ir_dtype qt = inf->in[0].dtype, vt = inf->in[2].dtype;
    bool known = true;
    for (int i = 0; i < inf->n_in && i < 7; i++)
        if (inf->node->in[i])
            known = known && all_known(&inf->in[i]);
    for (int o = 0; o < inf->n_out; o++) {
        inf->out[o].dtype = o == 2 ? vt : qt;
        inf->out[o].rank = inf->in[0].rank == 3 && o == 0 ? 3 : inf->in[0].rank < 0 ? -1 : 4;
        for (int d = 0; d < OPS_MAX_RANK; d++)
            inf->out[o].dims[d] = -1;
    }
    if (!known)
        return OCT_OK;
    ops_attn_geom g;
    oct_status st = ops_attention_geometry(inf->ctx, inf->node, inf->in, inf->n_in, &g);
    if (st)
        return st;
    ops_shape *y = &inf->out[0];
    if (g.rank3) {
        y->rank = 3;
        y->dims[0] = g.batch, y->dims[1] = g.q_seq, y->dims[2] = g.q_heads * g.v_size;
    } else {
        y->rank = 4;
        y->dims[0] = g.batch, y->dims[1] = g.q_heads, y->dims[2] = g.q_seq, y->dims[3] = g.v_size;
    }
    const int64_t shapes[3][4] = {{g.batch, g.kv_heads, g.total, g.qk_size},
                                  {g.batch, g.kv_heads, g.total, g.v_size},
                                  {g.batch, g.q_heads, g.q_seq, g.total}};
    for (int o = 1; o < inf->n_out && o < 4; o++) {
        inf->out[o].rank = 4;
        memcpy(inf->out[o].dims, shapes[o - 1], sizeof shapes[0]);
    }
    return OCT_OK;
}
