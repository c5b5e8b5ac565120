/*
 * signal.c: the interpreter's DFT and STFT on the plans of
 * src/ops/shape_signal.c, as the plain O(n^2) sums of their definitions:
 *   X[k] = sum_{t < min(n, n_in)} x[t] * exp(-+2 pi i k t / n)
 * (the positive exponent and a division by n for an inverse DFT; STFT
 * multiplies frame f's samples x[f * step + t] by window[t] first).
 * Products and sums are in double with the twiddle factor of
 * (k * t) mod n, each output rounded once to the element type.
 */
#include "ref/eltwise.h"
#include "ops/rules.h"

/* One transform: n_out bins of n_in samples at x_at(t) (complex parts at
 * offsets 0 and 1 when comp == 2), each times w[t] (w NULL: 1), written
 * at out_at(k) and out_at(k) + 1. */
static void transform(const ir_tensor *x, ir_tensor *y, const ir_tensor *w, int64_t n_in,
                      int64_t x0, int64_t x_stride, int64_t comp, int64_t n, int64_t n_out,
                      int64_t y0, int64_t y_stride, bool inverse)
{
    int64_t len = n_in < n ? n_in : n;
    for (int64_t k = 0; k < n_out; k++) {
        double re = 0, im = 0;
        for (int64_t t = 0; t < len; t++) {
            uint64_t at = (uint64_t)(x0 + t * x_stride);
            double xr = ops_get(x, at), xi = comp == 2 ? ops_get(x, at + 1) : 0;
            if (w) {
                double wt = ops_get(w, (uint64_t)t);
                xr *= wt;
                xi *= wt;
            }
            double c, s;
            ops_twiddle((k * t) % n, n, &c, &s);
            if (!inverse)
                s = -s;
            re += xr * c - xi * s;
            im += xr * s + xi * c;
        }
        if (inverse) {
            re /= (double)n;
            im /= (double)n;
        }
        ops_set(y, (uint64_t)(y0 + k * y_stride), re);
        ops_set(y, (uint64_t)(y0 + k * y_stride + 1), im);
    }
}

oct_status ref_dft(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    bool len_given = call->n_in > 1 && call->in[1], axis_given = call->n_in > 2 && call->in[2];
    ops_dft_plan p;
    const char *why = "";
    if (ops_dft_plan_of(call->node, call->opset, x->rank, x->dims, len_given ? call->in[1] : NULL,
                        len_given, axis_given ? call->in[2] : NULL, axis_given, &p, &why) != 1)
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "%s", why);
    for (int64_t o = 0; o < p.outer; o++)
        for (int64_t i = 0; i < p.inner; i++)
            transform(x, call->out[0], NULL, p.n_in, (o * p.n_in * p.inner + i) * p.comp,
                      p.inner * p.comp, p.comp, p.n, p.n_out, (o * p.n_out * p.inner + i) * 2,
                      p.inner * 2, p.inverse);
    return OCT_OK;
}

oct_status ref_stft(ref_call *call)
{
    const ir_tensor *x = call->in[0];
    const ir_tensor *w = call->n_in > 2 ? call->in[2] : NULL;
    bool frame_given = call->n_in > 3 && call->in[3];
    ops_stft_plan p;
    const char *why = "";
    if (ops_stft_plan_of(call->node, x->rank, x->dims, call->in[1], w ? w->dims[0] : -1,
                         frame_given ? call->in[3] : NULL, frame_given, &p, &why) != 1)
        return oct_node_error(call->ctx, OCT_EINPUT, call->node, "%s", why);
    for (int64_t b = 0; b < p.batch; b++)
        for (int64_t f = 0; f < p.frames; f++)
            transform(x, call->out[0], w, p.frame, (b * p.len + f * p.step) * p.comp, p.comp,
                      p.comp, p.frame, p.bins, ((b * p.frames + f) * p.bins) * 2, 2, false);
    return OCT_OK;
}
