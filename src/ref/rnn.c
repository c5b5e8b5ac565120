/*
 * rnn.c: RNN, GRU and LSTM (float32), the equations of the ONNX spec run
 * one batch row and one direction at a time:
 *   RNN:  H = f(Xt.Wi^T + H.Ri^T + Wbi + Rbi)
 *   GRU:  z = f(Xt.Wz^T + H.Rz^T + Wbz + Rbz), r likewise,
 *         n = g(Xt.Wh^T + (r*H).Rh^T + Rbh + Wbh)        linear_before_reset 0
 *         n = g(Xt.Wh^T + r*(H.Rh^T + Rbh) + Wbh)        linear_before_reset 1
 *         H = (1 - z)*n + z*H
 *   LSTM: i = f(Xt.Wi^T + H.Ri^T + Pi*C + Wbi + Rbi), f likewise with Pf
 *         (f = 1 - i with input_forget), c = g(Xt.Wc^T + H.Rc^T + Wbc + Rbc),
 *         C = f*C + i*c, o = f(Xt.Wo^T + H.Ro^T + Po*C + Wbo + Rbo),
 *         H = o*h(C)
 * clip clamps every activation's input to [-clip, clip].  The reverse
 * direction (and the second of bidirectional) walks t = len-1 .. 0, len =
 * sequence_lens[b] (S without it); Y is 0 at t >= len, Y_h and Y_c hold
 * the state after the last step, and 0 when len is 0 (as ONNX Runtime;
 * the spec does not say).  Dot
 * products accumulate in double and round once to float32; the gate
 * arithmetic is float32.  Attributes resolve in ops_rnn_plan_of, shapes
 * are checked by ops_shape_rnn (src/ops/shape_rnn.c).
 */
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"

typedef struct rnn_io {
    const ir_node *node;
    ops_rnn_plan p;
    int64_t S, B, I, H, GH;
    const float *x, *w, *r, *bias, *h0, *c0, *peep;
    const int32_t *lens;
    float *y, *yh, *yc;
} rnn_io;

static float clipped(const rnn_io *io, float v)
{
    if (io->p.has_clip)
        v = v < -io->p.clip ? -io->p.clip : v > io->p.clip ? io->p.clip : v;
    return v;
}

static float act(const rnn_io *io, int d, int k, float v)
{
    return ops_rnn_act_apply(&io->p.act[d][k], clipped(io, v));
}

/* Offsets of (t, b) in X, of (t, d, b) in Y and of (d, b) in the states. */
static int64_t x_at(const rnn_io *io, int64_t t, int64_t b)
{
    return (io->p.layout ? b * io->S + t : t * io->B + b) * io->I;
}
static int64_t y_at(const rnn_io *io, int64_t t, int d, int64_t b)
{
    int64_t D = io->p.dirs;
    return (io->p.layout ? (b * io->S + t) * D + d : (t * D + d) * io->B + b) * io->H;
}
static int64_t state_at(const rnn_io *io, int d, int64_t b)
{
    return (io->p.layout ? b * io->p.dirs + d : d * io->B + b) * io->H;
}

/* out[j] = sum_k v[k] * m[j*cols + k] for j < rows, accumulated in double. */
static void matvec(const float *m, const float *v, int64_t rows, int64_t cols, float *out)
{
    for (int64_t j = 0; j < rows; j++) {
        double s = 0;
        for (int64_t k = 0; k < cols; k++)
            s += (double)m[j * cols + k] * v[k];
        out[j] = (float)s;
    }
}

/* One direction of one batch row; scratch holds 2*GH + 4*H floats. */
static void run_row(const rnn_io *io, int d, int64_t b, int64_t len, float *scratch)
{
    int64_t H = io->H, GH = io->GH, I = io->I;
    bool back = d == 1 || io->p.reverse;
    const float *W = io->w + d * GH * I, *R = io->r + d * GH * H;
    const float *Wb = io->bias ? io->bias + d * 2 * GH : NULL;
    const float *Rb = Wb ? Wb + GH : NULL;
    const float *P = io->peep ? io->peep + d * 3 * H : NULL;
    float *gx = scratch, *gh = gx + GH, *h = gh + GH, *c = h + H, *rh = c + H;
    float *hn = rh + H;
    for (int64_t j = 0; j < H; j++) {
        h[j] = io->h0 ? io->h0[state_at(io, d, b) + j] : 0.0f;
        c[j] = io->c0 ? io->c0[state_at(io, d, b) + j] : 0.0f;
    }
    for (int64_t step = 0; step < len; step++) {
        int64_t t = back ? len - 1 - step : step;
        matvec(W, io->x + x_at(io, t, b), GH, I, gx);
        matvec(R, h, GH, H, gh);
        for (int64_t j = 0; j < GH; j++) {
            if (Wb)
                gx[j] += Wb[j];
            if (Rb)
                gh[j] += Rb[j];
        }
        switch (io->node->op) {
        case IR_OP_RNN:
            for (int64_t j = 0; j < H; j++)
                hn[j] = act(io, d, 0, gx[j] + gh[j]);
            break;
        case IR_OP_GRU: {
            for (int64_t j = 0; j < H; j++)
                rh[j] = act(io, d, 0, gx[H + j] + gh[H + j]) * h[j]; /* r * H */
            if (!io->p.linear_before_reset) {
                /* (r*H).Rh^T + Rbh replaces H.Rh^T + Rbh */
                matvec(R + 2 * H * H, rh, H, H, gh + 2 * H);
                for (int64_t j = 0; j < H; j++)
                    gh[2 * H + j] += Rb ? Rb[2 * H + j] : 0.0f;
            }
            for (int64_t j = 0; j < H; j++) {
                float zt = act(io, d, 0, gx[j] + gh[j]);
                float rt = act(io, d, 0, gx[H + j] + gh[H + j]);
                float pre = io->p.linear_before_reset ? gx[2 * H + j] + rt * gh[2 * H + j]
                                                      : gx[2 * H + j] + gh[2 * H + j];
                float nt = act(io, d, 1, pre);
                hn[j] = (1.0f - zt) * nt + zt * h[j];
            }
            break;
        }
        default: /* LSTM: gates i o f c */
            for (int64_t j = 0; j < H; j++) {
                float it = act(io, d, 0, gx[j] + gh[j] + (P ? P[j] * c[j] : 0.0f));
                float ft = io->p.input_forget
                               ? 1.0f - it
                               : act(io, d, 0,
                                     gx[2 * H + j] + gh[2 * H + j] + (P ? P[2 * H + j] * c[j] : 0.0f));
                float ct = act(io, d, 1, gx[3 * H + j] + gh[3 * H + j]);
                c[j] = ft * c[j] + it * ct;
                float ot = act(io, d, 0, gx[H + j] + gh[H + j] + (P ? P[H + j] * c[j] : 0.0f));
                hn[j] = ot * ops_rnn_act_apply(&io->p.act[d][2], c[j]);
            }
            break;
        }
        memcpy(h, hn, (size_t)H * sizeof *h);
        if (io->y)
            memcpy(io->y + y_at(io, t, d, b), h, (size_t)H * sizeof *h);
    }
    if (len == 0) /* Y_h, Y_c stay 0, as ONNX Runtime gives */
        return;
    if (io->yh)
        memcpy(io->yh + state_at(io, d, b), h, (size_t)H * sizeof *h);
    if (io->yc)
        memcpy(io->yc + state_at(io, d, b), c, (size_t)H * sizeof *c);
}

oct_status ref_rnn(ref_call *call)
{
    const ir_node *node = call->node;
    rnn_io io;
    memset(&io, 0, sizeof io);
    io.node = node;
    oct_status st = ops_rnn_plan_of(call->ctx, node, &io.p);
    if (st)
        return st;
    const ir_tensor *X = call->in[0], *W = call->in[1], *R = call->in[2];
    const ir_tensor *in[8] = {0};
    for (int i = 0; i < call->n_in && i < 8; i++)
        in[i] = call->in[i];
    if (X->dtype != IR_DT_FLOAT)
        return oct_input_error(call->ctx, OCT_EUNSUPPORTED, node, 0,
                               "%s on %s is not supported (float32 only)", node->op_type,
                               ir_dtype_name(X->dtype));
    io.S = X->dims[io.p.layout ? 1 : 0];
    io.B = X->dims[io.p.layout ? 0 : 1];
    io.I = X->dims[2];
    io.H = io.p.hidden >= 0 ? io.p.hidden : R->dims[2];
    io.GH = io.p.gates * io.H;
    if (W->dims[2] != io.I || R->dims[2] != io.H)
        return oct_node_error(call->ctx, OCT_EINPUT, node, "W or R does not match X and hidden_size");
    io.x = X->data;
    io.w = W->data;
    io.r = R->data;
    io.bias = in[3] ? in[3]->data : NULL;
    io.lens = in[4] ? in[4]->data : NULL;
    io.h0 = in[5] ? in[5]->data : NULL;
    io.c0 = node->op == IR_OP_LSTM && in[6] ? in[6]->data : NULL;
    io.peep = node->op == IR_OP_LSTM && in[7] ? in[7]->data : NULL;
    for (int o = 0; o < call->n_out; o++) {
        ir_tensor *t = call->out[o];
        if (!t)
            continue;
        float *data = t->data;
        memset(data, 0, t->nelems * sizeof *data); /* Y is 0 past each length */
        if (o == 0)
            io.y = data;
        else if (o == 1)
            io.yh = data;
        else
            io.yc = data;
    }
    for (int64_t b = 0; b < io.B; b++) {
        int64_t len = io.lens ? io.lens[b] : io.S;
        if (len < 0 || len > io.S)
            return oct_input_error(call->ctx, OCT_EINPUT, node, 4,
                                   "sequence_lens[%lld] is %lld, outside [0, %lld]",
                                   (long long)b, (long long)len, (long long)io.S);
    }
    float *scratch = malloc((size_t)(2 * io.GH + 4 * io.H + 1) * sizeof *scratch);
    if (!scratch)
        return oct_node_error(call->ctx, OCT_EINTERNAL, node, "out of memory");
    for (int d = 0; d < io.p.dirs; d++)
        for (int64_t b = 0; b < io.B; b++)
            run_row(&io, d, b, io.lens ? io.lens[b] : io.S, scratch);
    free(scratch);
    return OCT_OK;
}
