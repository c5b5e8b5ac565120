/*
 * shape_qconv.c: the shape and type rules of ConvInteger and QLinearConv.
 * Shared by the shape-inference pass and the interpreter, whose kernels are
 * in src/ref/qconv.c.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

/* Shape of ConvInteger / QLinearConv: x (input xi) [N, C, spatial...], w
 * (input wi) [M, C / group, kernel...]; output [N, M, out...] with the
 * window geometry of ops_window_init (Conv's rule). */
static oct_status qconv_shape(ops_infer *inf, int xi, int wi, ir_dtype out_dt)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ops_shape *x = &inf->in[xi], *w = &inf->in[wi];
    ops_shape *out = &inf->out[0];
    memset(out, 0, sizeof *out);
    out->dtype = out_dt;
    int64_t group = ir_attr_int(node, "group", 1);
    if (group < 1)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "group = %lld must be positive", (long long)group);
    int rank = x->rank >= 0 ? x->rank : w->rank;
    if (rank < 0) {
        out->rank = -1;
        return OCT_OK;
    }
    if (rank < 3)
        return oct_input_error(ctx, OCT_EINPUT, node, x->rank >= 0 ? xi : wi,
                               "expected rank >= 3 (N, C, spatial...), got %d",
                               rank);
    if (x->rank >= 0 && w->rank >= 0 && x->rank != w->rank)
        return oct_input_error(ctx, OCT_EINPUT, node, wi,
                               "weight rank %d differs from the input rank %d",
                               w->rank, x->rank);
    int ns = rank - 2;
    int64_t kernel[OPS_MAX_RANK];
    bool kernel_known = true;
    const ir_attr *ks = ir_node_attr(node, "kernel_shape");
    if (ks && (ks->type != IR_ATTR_INTS || ks->n != (size_t)ns))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "kernel_shape must list %d ints", ns);
    for (int i = 0; i < ns; i++) {
        int64_t wd = w->rank >= 0 ? w->dims[i + 2] : -1;
        if (ks && wd >= 0 && ks->ints[i] != wd)
            return oct_input_error(ctx, OCT_EINPUT, node, wi,
                                   "kernel_shape[%d] = %lld but the weight "
                                   "has %lld", i, (long long)ks->ints[i],
                                   (long long)wd);
        kernel[i] = ks ? ks->ints[i] : wd;
        kernel_known &= kernel[i] >= 0;
    }
    int64_t C = x->rank >= 0 ? x->dims[1] : -1;
    int64_t M = w->rank >= 0 ? w->dims[0] : -1, Cg = w->rank >= 0 ? w->dims[1] : -1;
    if (C >= 0 && Cg >= 0 && Cg * group != C)
        return oct_input_error(ctx, OCT_EINPUT, node, wi,
                               "weight has %lld input channels per group, "
                               "input has %lld channels in %lld groups",
                               (long long)Cg, (long long)C, (long long)group);
    if (M >= 0 && M % group != 0)
        return oct_input_error(ctx, OCT_EINPUT, node, wi,
                               "%lld output channels do not split into %lld "
                               "groups", (long long)M, (long long)group);
    out->rank = rank;
    out->dims[0] = x->rank >= 0 ? x->dims[0] : -1;
    out->dims[1] = M;
    if (x->rank < 0 || !kernel_known) {
        for (int i = 0; i < ns; i++)
            out->dims[i + 2] = -1;
        return OCT_OK;
    }
    ops_window win;
    oct_status st = ops_window_init(ctx, node, x, kernel, false, &win);
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < ns; i++)
        out->dims[i + 2] = win.out[i];
    return OCT_OK;
}

/* A convolution zero point / scale: one element, or (weights only) one per
 * output channel. */
static oct_status qconv_param_check(ops_infer *inf, int i, bool per_channel_ok,
                                    int wi)
{
    if (inf->n_in <= i || !inf->node->in[i])
        return OCT_OK;
    const ops_shape *p = &inf->in[i];
    int64_t n = ops_shape_known_elems(p);
    if (n < 0 || n == 1)
        return OCT_OK;
    int64_t M = inf->in[wi].rank >= 1 ? inf->in[wi].dims[0] : -1;
    if (per_channel_ok && p->rank == 1 && (M < 0 || n == M))
        return OCT_OK;
    return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                           "has %lld elements: expected one%s", (long long)n,
                           per_channel_ok ? " or one per output channel" : "");
}

oct_status ops_shape_convinteger(ops_infer *inf)
{
    oct_status st = ops_qlin_check_type(inf, 0, ops_is_8bit_int, "int8 or uint8");
    if (st == OCT_OK)
        st = ops_qlin_check_type(inf, 1, ops_is_8bit_int, "int8 or uint8");
    if (st == OCT_OK && inf->n_in > 2 && inf->node->in[2])
        st = ops_qlin_check_type(inf, 2, ops_is_8bit_int, "int8 or uint8");
    if (st == OCT_OK && inf->n_in > 3 && inf->node->in[3])
        st = ops_qlin_check_type(inf, 3, ops_is_8bit_int, "int8 or uint8");
    if (st == OCT_OK)
        st = qconv_param_check(inf, 2, false, 1);
    if (st == OCT_OK)
        st = qconv_param_check(inf, 3, true, 1);
    if (st != OCT_OK)
        return st;
    return qconv_shape(inf, 0, 1, IR_DT_INT32);
}

oct_status ops_shape_qlinearconv(ops_infer *inf)
{
    static const int q8[5] = {0, 2, 3, 5, 7};
    oct_status st = ops_qlin_require_scales(inf->ctx, inf->node, inf->n_in);
    for (int j = 0; j < 5 && st == OCT_OK; j++)
        st = ops_qlin_check_type(inf, q8[j], ops_is_8bit_int, "int8 or uint8");
    for (int i = 1; i <= 6 && st == OCT_OK; i += i == 4 ? 2 : 3) {
        st = ops_qlin_check_type(inf, i, ops_is_f32, "float scale");
        if (st == OCT_OK && inf->in_const[i])
            st = ops_qlin_check_scale_values(inf->ctx, inf->node, i, inf->in_const[i]);
    }
    if (st == OCT_OK && inf->n_in > 8 && inf->node->in[8])
        st = ops_qlin_check_type(inf, 8, ops_is_i32, "int32 bias");
    static const int per_tensor[4] = {1, 2, 6, 7};
    for (int j = 0; j < 4 && st == OCT_OK; j++)
        st = qconv_param_check(inf, per_tensor[j], false, 3);
    for (int i = 4; i <= 8 && st == OCT_OK; i += (i == 5 ? 3 : 1))
        st = qconv_param_check(inf, i, true, 3);
    if (st != OCT_OK)
        return st;
    return qconv_shape(inf, 0, 3, ops_qlin_requant_out_type(inf));
}
