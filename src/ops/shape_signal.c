/*
 * shape_signal.c: the geometry of the signal ops DFT and STFT, resolved
 * once into a plan that the shape rules here, the interpreter
 * (src/ref/signal.c) and the compiler (src/codegen/lower_signal.c) read.
 *
 * DFT (opset 17: `axis` attribute, default 1; opset 20: `axis` input,
 * default -2; a negative axis counts from the back, the last axis holds
 * the real [1] or real and imaginary [2] parts and cannot be the signal's)
 * takes the signal along the axis, zero-padded or cut to `dft_length` (n),
 * and gives n complex bins, or n / 2 + 1 with `onesided`; `inverse` uses
 * the positive exponent and divides by n.  An inverse one-sided transform
 * (a real inverse) is refused: the spec leaves its output undefined.
 * STFT frames signal [batch, length, 1|2] every `frame_step` samples into
 * frames of `frame_length` (default: the window's length), multiplies by
 * the window (default ones) and takes each frame's DFT: [batch, frames,
 * bins, 2], frames = 1 + (length - frame_length) / frame_step, bins =
 * frame_length / 2 + 1 when `onesided` (the default) else frame_length.
 * dft_length, DFT's axis input, frame_step and frame_length are geometry
 * inputs (they fix the output's shape): unknown, they leave dims unknown.
 */
#include "ops/ops.h"

#include "ops/rules.h"

static bool one_int(const ir_tensor *t, int64_t *v)
{
    if (!t || t->nelems != 1 || (t->dtype != IR_DT_INT64 && t->dtype != IR_DT_INT32))
        return false;
    *v = ops_get_i64(t, 0);
    return true;
}

int ops_dft_plan_of(const ir_node *node, int64_t opset, int rank, const int64_t *dims,
                    const ir_tensor *len_t, bool len_given, const ir_tensor *axis_t,
                    bool axis_given, ops_dft_plan *p, const char **why)
{
    int64_t axis = opset >= 20 ? -2 : ir_attr_int(node, "axis", 1);
    if (opset >= 20 && axis_given && !one_int(axis_t, &axis))
        return axis_t ? (*why = "axis must be one INT64", -1) : 0;
    if (rank < 2 || (dims[rank - 1] != 1 && dims[rank - 1] != 2 && dims[rank - 1] >= 0))
        return *why = "the input's last dim must be 1 (real) or 2 (complex)", -1;
    if (axis < 0)
        axis += rank;
    if (axis < 0 || axis > rank - 2)
        return *why = "axis must name a signal dim (not the last)", -1;
    p->inverse = ir_attr_int(node, "inverse", 0) != 0;
    p->onesided = ir_attr_int(node, "onesided", 0) != 0;
    if (p->inverse && p->onesided)
        return *why = "an inverse one-sided DFT is not supported", -1;
    p->axis = (int)axis;
    p->comp = dims[rank - 1];
    p->outer = p->inner = 1;
    for (int d = 0; d < rank - 1; d++) {
        if (d == axis)
            continue;
        int64_t *to = d < axis ? &p->outer : &p->inner;
        *to = dims[d] < 0 || *to < 0 ? -1 : *to * dims[d];
    }
    p->n_in = dims[axis];
    p->n = p->n_in;
    if (len_given) {
        if (!len_t)
            return 0;
        if (!one_int(len_t, &p->n) || p->n < 1)
            return *why = "dft_length must be one positive integer", -1;
    }
    p->n_out = p->n < 0 ? -1 : p->onesided ? p->n / 2 + 1 : p->n;
    return 1;
}

int ops_stft_plan_of(const ir_node *node, int rank, const int64_t *dims,
                     const ir_tensor *step_t, int64_t window_len, const ir_tensor *frame_t,
                     bool frame_given, ops_stft_plan *p, const char **why)
{
    if (rank != 3 || (dims[2] != 1 && dims[2] != 2 && dims[2] >= 0))
        return *why = "the signal must be [batch, length, 1 or 2]", -1;
    p->batch = dims[0];
    p->len = dims[1];
    p->comp = dims[2];
    p->onesided = ir_attr_int(node, "onesided", 1) != 0;
    if (!step_t)
        return 0;
    if (!one_int(step_t, &p->step) || p->step < 1)
        return *why = "frame_step must be one positive integer", -1;
    p->frame = window_len;
    if (frame_given) {
        if (!frame_t)
            return 0;
        if (!one_int(frame_t, &p->frame) || p->frame < 1)
            return *why = "frame_length must be one positive integer", -1;
        if (window_len >= 0 && window_len != p->frame)
            return *why = "the window's length differs from frame_length", -1;
    } else if (window_len < 0) {
        return *why = "STFT needs a window or a frame_length", -1;
    }
    if (p->len < 0)
        return 0;
    if (p->frame > p->len)
        return *why = "frame_length is longer than the signal", -1;
    p->frames = 1 + (p->len - p->frame) / p->step;
    p->bins = p->onesided ? p->frame / 2 + 1 : p->frame;
    return 1;
}

static bool float_type(ir_dtype dt)
{
    return dt == IR_DT_UNDEFINED || dt == IR_DT_FLOAT || dt == IR_DT_DOUBLE ||
           dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16;
}

oct_status ops_shape_dft(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (!float_type(x->dtype))
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, 0, "element type %s "
                               "is not supported by DFT", ir_dtype_name(x->dtype));
    inf->out[0] = *x;
    if (x->rank < 0)
        return OCT_OK;
    bool len_given = inf->n_in > 1 && inf->node->in[1];
    bool axis_given = inf->n_in > 2 && inf->node->in[2];
    ops_dft_plan p;
    const char *why = "";
    int r = ops_dft_plan_of(inf->node, inf->opset, x->rank, x->dims,
                            len_given ? inf->in_const[1] : NULL, len_given,
                            axis_given ? inf->in_const[2] : NULL, axis_given, &p, &why);
    if (r < 0)
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "%s", why);
    inf->out[0].dims[x->rank - 1] = 2;
    if (r == 0) { /* the axis or the length is not known yet */
        for (int d = 0; d < x->rank - 1; d++)
            if (axis_given || (len_given && d == p.axis))
                inf->out[0].dims[d] = -1;
        return OCT_OK;
    }
    inf->out[0].dims[p.axis] = p.n_out;
    return OCT_OK;
}

oct_status ops_shape_stft(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (!float_type(x->dtype))
        return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, 0, "element type %s "
                               "is not supported by STFT", ir_dtype_name(x->dtype));
    inf->out[0].dtype = x->dtype;
    inf->out[0].rank = -1;
    if (x->rank < 0)
        return OCT_OK;
    bool has_window = inf->n_in > 2 && inf->node->in[2];
    bool frame_given = inf->n_in > 3 && inf->node->in[3];
    int64_t window_len = -1;
    if (has_window) {
        if (inf->in[2].rank != 1 && inf->in[2].rank >= 0)
            return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 2, "window must be 1-D");
        window_len = inf->in[2].rank == 1 ? inf->in[2].dims[0] : -1;
        if (window_len < 0 && !frame_given) { /* the frame length is not known yet */
            inf->out[0].rank = 4;
            inf->out[0].dims[0] = x->dims[0];
            inf->out[0].dims[1] = inf->out[0].dims[2] = -1;
            inf->out[0].dims[3] = 2;
            return OCT_OK;
        }
    }
    ops_stft_plan p = {0};
    const char *why = "";
    int r = ops_stft_plan_of(inf->node, x->rank, x->dims, inf->in_const[1], window_len,
                             frame_given ? inf->in_const[3] : NULL, frame_given, &p, &why);
    if (r < 0)
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "%s", why);
    inf->out[0].rank = 4;
    inf->out[0].dims[0] = x->dims[0];
    inf->out[0].dims[1] = r ? p.frames : -1;
    inf->out[0].dims[2] = r ? p.bins : -1;
    inf->out[0].dims[3] = 2;
    return OCT_OK;
}
