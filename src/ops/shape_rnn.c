/*
 * shape_rnn.c: the attributes and the shape and type rules of RNN, GRU and
 * LSTM (one kernel family).  ops_rnn_plan_of resolves direction,
 * activations and their alpha/beta, clip, layout, input_forget and
 * linear_before_reset once, so the interpreter (src/ref/rnn.c) and the
 * compiler (src/codegen/lower_rnn.c) read the same plan; the shape rule
 * checks every input's shape against X, W and hidden_size and names the
 * input that disagrees.
 */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "ops/ops.h"
#include "ops/rules.h"

static const struct {
    const char *name;
    ops_rnn_act act;
    bool takes_alpha, takes_beta;
    float alpha, beta; /* the defaults of the ONNX op of that name */
} act_table[] = {
    {"Relu", OPS_ACT_RELU, false, false, 0, 0},
    {"Tanh", OPS_ACT_TANH, false, false, 0, 0},
    {"Sigmoid", OPS_ACT_SIGMOID, false, false, 0, 0},
    {"Affine", OPS_ACT_AFFINE, true, true, 1.0f, 0.0f},
    {"LeakyRelu", OPS_ACT_LEAKYRELU, true, false, 0.01f, 0},
    {"ThresholdedRelu", OPS_ACT_THRESHOLDEDRELU, true, false, 1.0f, 0},
    {"ScaledTanh", OPS_ACT_SCALEDTANH, true, true, 1.0f, 1.0f},
    {"HardSigmoid", OPS_ACT_HARDSIGMOID, true, true, 0.2f, 0.5f},
    {"Elu", OPS_ACT_ELU, true, false, 1.0f, 0},
    {"Softsign", OPS_ACT_SOFTSIGN, false, false, 0, 0},
    {"Softplus", OPS_ACT_SOFTPLUS, false, false, 0, 0},
};

oct_status ops_rnn_plan_of(oct_ctx *ctx, const ir_node *node, ops_rnn_plan *p)
{
    memset(p, 0, sizeof *p);
    static const char *const defaults[3] = {"Sigmoid", "Tanh", "Tanh"};
    p->gates = node->op == IR_OP_LSTM ? 4 : node->op == IR_OP_GRU ? 3 : 1;
    p->n_act = node->op == IR_OP_LSTM ? 3 : node->op == IR_OP_GRU ? 2 : 1;
    const ir_attr *dir = ir_node_attr(node, "direction");
    p->dirs = 1;
    if (dir && dir->type == IR_ATTR_STRING) {
        const char *s = (const char *)dir->s.data;
        size_t len = dir->s.len;
        if (len == 13 && !memcmp(s, "bidirectional", 13))
            p->dirs = 2;
        else if (len == 7 && !memcmp(s, "reverse", 7))
            p->reverse = true;
        else if (!(len == 7 && !memcmp(s, "forward", 7)))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "direction '%.*s' is not forward, reverse or bidirectional",
                                  (int)(len > 40 ? 40 : len), s);
    }
    p->layout = (int)ir_attr_int(node, "layout", 0);
    if (p->layout != 0 && p->layout != 1)
        return oct_node_error(ctx, OCT_EINPUT, node, "layout %d is not 0 or 1", p->layout);
    const ir_attr *hs = ir_node_attr(node, "hidden_size");
    p->hidden = hs && hs->type == IR_ATTR_INT ? hs->i : -1;
    if (hs && p->hidden <= 0)
        return oct_node_error(ctx, OCT_EINPUT, node, "hidden_size %lld is not positive",
                              (long long)p->hidden);
    const ir_attr *clip = ir_node_attr(node, "clip");
    if (clip && clip->type == IR_ATTR_FLOAT) {
        if (!(clip->f > 0))
            return oct_node_error(ctx, OCT_EINPUT, node, "clip %g is not positive",
                                  (double)clip->f);
        p->has_clip = true;
        p->clip = clip->f;
    }
    p->input_forget = node->op == IR_OP_LSTM && ir_attr_int(node, "input_forget", 0) != 0;
    p->linear_before_reset =
        node->op == IR_OP_GRU && ir_attr_int(node, "linear_before_reset", 0) != 0;

    const ir_attr *acts = ir_node_attr(node, "activations");
    const ir_attr *al = ir_node_attr(node, "activation_alpha");
    const ir_attr *be = ir_node_attr(node, "activation_beta");
    size_t n_names = acts && acts->type == IR_ATTR_STRINGS ? acts->n : 0;
    size_t want = (size_t)(p->n_act * p->dirs);
    /* one direction's list for both directions: ONNX Runtime repeats it */
    if (n_names && n_names != want && !(p->dirs == 2 && n_names == (size_t)p->n_act))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "activations lists %zu functions, expected %zu", n_names, want);
    size_t ai = 0, bi = 0;
    for (int d = 0; d < p->dirs; d++)
        for (int k = 0; k < p->n_act; k++) {
            const char *name = defaults[p->n_act == 1 ? 1 : k];
            size_t len = strlen(name);
            if (n_names) {
                const ir_blob *b = &acts->strings[(size_t)(d * p->n_act + k) % n_names];
                name = (const char *)b->data;
                len = b->len;
            }
            size_t t = 0, nt = sizeof act_table / sizeof act_table[0];
            while (t < nt && !(strlen(act_table[t].name) == len &&
                               !strncasecmp(act_table[t].name, name, len)))
                t++;
            if (t == nt)
                return oct_node_error(ctx, OCT_EINPUT, node,
                                      "activation '%.*s' is not one RNN ops take",
                                      (int)(len > 40 ? 40 : len), name ? name : "");
            ops_rnn_fn *fn = &p->act[d][k];
            fn->act = act_table[t].act;
            fn->alpha = act_table[t].alpha;
            fn->beta = act_table[t].beta;
            if (act_table[t].takes_alpha && al && al->type == IR_ATTR_FLOATS && ai < al->n)
                fn->alpha = al->floats[ai++];
            if (act_table[t].takes_beta && be && be->type == IR_ATTR_FLOATS && bi < be->n)
                fn->beta = be->floats[bi++];
        }
    return OCT_OK;
}

float ops_rnn_act_apply(const ops_rnn_fn *fn, float x)
{
    float a = fn->alpha, b = fn->beta;
    switch (fn->act) {
    case OPS_ACT_RELU: return x > 0 ? x : 0.0f;
    case OPS_ACT_TANH: return tanhf(x);
    case OPS_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case OPS_ACT_AFFINE: return a * x + b;
    case OPS_ACT_LEAKYRELU: return x >= 0 ? x : a * x;
    case OPS_ACT_THRESHOLDEDRELU: return x >= a ? x : 0.0f;
    case OPS_ACT_SCALEDTANH: return a * tanhf(b * x);
    case OPS_ACT_HARDSIGMOID: return fmaxf(0.0f, fminf(1.0f, a * x + b));
    case OPS_ACT_ELU: return x >= 0 ? x : a * (expf(x) - 1.0f);
    case OPS_ACT_SOFTSIGN: return x / (1.0f + fabsf(x));
    case OPS_ACT_SOFTPLUS: /* log(1 + e^x) without overflowing for large x */
        return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
    }
    return x;
}

/* Checks that input i (if present and of known rank) has rank `rank` and
 * the dims of want[] that are >= 0 (and known). */
static oct_status check_input(ops_infer *inf, int i, const char *what, int rank,
                              const int64_t *want)
{
    if (inf->n_in <= i || !inf->node->in[i])
        return OCT_OK;
    const ops_shape *s = &inf->in[i];
    if (s->rank < 0)
        return OCT_OK;
    if (s->rank != rank)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i, "%s must have rank %d, got %d",
                               what, rank, s->rank);
    for (int d = 0; d < rank; d++)
        if (want[d] >= 0 && s->dims[d] >= 0 && s->dims[d] != want[d])
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                                   "%s dim %d is %lld, expected %lld", what, d,
                                   (long long)s->dims[d], (long long)want[d]);
    return OCT_OK;
}

oct_status ops_shape_rnn(ops_infer *inf)
{
    const ir_node *node = inf->node;
    ops_rnn_plan p;
    oct_status st = ops_rnn_plan_of(inf->ctx, node, &p);
    if (st)
        return st;
    const ops_shape *x = &inf->in[0], *r = &inf->in[2];
    ir_dtype dt = x->dtype;
    if (dt != IR_DT_UNDEFINED && !ops_dt_is_float(dt))
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 0,
                               "%s takes floating-point X, not %s", node->op_type,
                               ir_dtype_name(dt));
    for (int i = 1; i < inf->n_in; i++)
        if (i != 4 && node->in[i] && inf->in[i].dtype != IR_DT_UNDEFINED &&
            dt != IR_DT_UNDEFINED && inf->in[i].dtype != dt)
            return oct_input_error(inf->ctx, OCT_EINPUT, node, i,
                                   "type %s differs from X's %s",
                                   ir_dtype_name(inf->in[i].dtype), ir_dtype_name(dt));
    if (inf->n_in > 4 && node->in[4] && inf->in[4].dtype != IR_DT_UNDEFINED &&
        inf->in[4].dtype != IR_DT_INT32)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 4,
                               "sequence_lens must be int32, not %s",
                               ir_dtype_name(inf->in[4].dtype));
    if (x->rank >= 0 && x->rank != 3)
        return oct_input_error(inf->ctx, OCT_EINPUT, node, 0, "X must have rank 3, got %d",
                               x->rank);
    int64_t seq = x->rank == 3 ? x->dims[p.layout ? 1 : 0] : -1;
    int64_t batch = x->rank == 3 ? x->dims[p.layout ? 0 : 1] : -1;
    int64_t in_size = x->rank == 3 ? x->dims[2] : -1;
    int64_t H = p.hidden;
    if (H < 0 && r->rank == 3)
        H = r->dims[2];
    int64_t G = p.gates, D = p.dirs;
    int64_t GH = H >= 0 ? G * H : -1;
    int64_t ww[3] = {D, GH, in_size}, rw[3] = {D, GH, H}, bw[2] = {D, H >= 0 ? 2 * GH : -1};
    int64_t lw[1] = {batch}, pw[2] = {D, H >= 0 ? 3 * H : -1};
    int64_t hw[3] = {D, batch, H};
    if (p.layout)
        hw[0] = batch, hw[1] = D;
    if ((st = check_input(inf, 1, "W", 3, ww)) || (st = check_input(inf, 2, "R", 3, rw)) ||
        (st = check_input(inf, 3, "B", 2, bw)) ||
        (st = check_input(inf, 4, "sequence_lens", 1, lw)) ||
        (st = check_input(inf, 5, "initial_h", 3, hw)))
        return st;
    if (node->op == IR_OP_LSTM &&
        ((st = check_input(inf, 6, "initial_c", 3, hw)) || (st = check_input(inf, 7, "P", 2, pw))))
        return st;
    for (int o = 0; o < inf->n_out; o++) {
        ops_shape *y = &inf->out[o];
        y->dtype = dt;
        if (o == 0) {
            y->rank = 4;
            int64_t dims[4] = {seq, D, batch, H};
            if (p.layout)
                dims[0] = batch, dims[1] = seq, dims[2] = D;
            memcpy(y->dims, dims, sizeof dims);
        } else {
            y->rank = 3;
            memcpy(y->dims, hw, sizeof hw);
        }
    }
    return OCT_OK;
}
