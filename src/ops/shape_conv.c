/*
 * shape_conv.c: the shape and type rules of Conv. Shared by the shape-
 * inference pass and the interpreter, whose kernels are in src/ref/conv.c.
 */
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static bool conv_float_type(ir_dtype dt)
{
    return dt == IR_DT_FLOAT || dt == IR_DT_DOUBLE || dt == IR_DT_FLOAT16 ||
           dt == IR_DT_BFLOAT16;
}

/* Spatial kernel sizes of a Conv-like node: the kernel_shape attribute, or
 * W's spatial dims (-1 where unknown).  Reports a kernel_shape that is
 * malformed or disagrees with W.  ns = number of spatial dims. */
oct_status ops_conv_kernel_shape(oct_ctx *ctx, const ir_node *node,
                                 const ops_shape *w, int ns,
                                 int64_t *kernel)
{
    const ir_attr *ks = ir_node_attr(node, "kernel_shape");
    for (int i = 0; i < ns; i++)
        kernel[i] = w->rank == ns + 2 ? w->dims[i + 2] : -1;
    if (!ks)
        return OCT_OK;
    if (ks->type != IR_ATTR_INTS || ks->n != (size_t)ns)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "attribute 'kernel_shape' must list %d ints", ns);
    for (int i = 0; i < ns; i++) {
        if (ks->ints[i] <= 0)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "kernel_shape[%d] = %lld must be positive",
                                  i, (long long)ks->ints[i]);
        if (kernel[i] >= 0 && kernel[i] != ks->ints[i])
            return oct_input_error(ctx, OCT_EINPUT, node, 1,
                                   "kernel_shape[%d] = %lld but the weight's "
                                   "spatial dim is %lld", i,
                                   (long long)ks->ints[i], (long long)kernel[i]);
        kernel[i] = ks->ints[i];
    }
    return OCT_OK;
}

/* The rules Conv and ConvTranspose share: a float element type, W and B
 * of X's type, group >= 1, a rank of at least 3 on which X and W agree.
 * Sets Y's type and rank; *rank is -1 (and OCT_OK) while neither X's nor
 * W's rank is known. */
oct_status ops_conv_prologue(ops_infer *inf, int64_t *group, int *rank)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ops_shape *x = &inf->in[0], *w = &inf->in[1];
    ir_dtype dt = x->dtype != IR_DT_UNDEFINED ? x->dtype : w->dtype;
    if (dt != IR_DT_UNDEFINED && !conv_float_type(dt))
        return oct_input_error(ctx, OCT_EUNSUPPORTED, node, 0, "%s does not take %s",
                               node->op_type, ir_dtype_name(dt));
    for (int i = 1; i < inf->n_in && i < 3; i++) {
        const ops_shape *s = &inf->in[i];
        if (s->dtype != IR_DT_UNDEFINED && dt != IR_DT_UNDEFINED && s->dtype != dt)
            return oct_input_error(ctx, OCT_EINPUT, node, i,
                                   "type %s differs from the input's %s",
                                   ir_dtype_name(s->dtype), ir_dtype_name(dt));
    }
    *group = ir_attr_int(node, "group", 1);
    if (*group < 1)
        return oct_node_error(ctx, OCT_EINPUT, node, "group = %lld must be positive",
                              (long long)*group);
    *rank = x->rank >= 0 ? x->rank : w->rank;
    inf->out[0].dtype = dt;
    inf->out[0].rank = *rank;
    if (*rank < 0)
        return OCT_OK;
    if (*rank < 3 || *rank > OPS_MAX_RANK)
        return oct_input_error(ctx, OCT_EINPUT, node, x->rank >= 0 ? 0 : 1,
                               "expected rank >= 3 (N, C, spatial...), got %d", *rank);
    if (x->rank >= 0 && w->rank >= 0 && x->rank != w->rank)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "weight rank %d differs from input rank %d", w->rank, x->rank);
    return OCT_OK;
}

oct_status ops_shape_conv(ops_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ops_shape *x = &inf->in[0], *w = &inf->in[1];
    const ops_shape *b = inf->n_in > 2 ? &inf->in[2] : NULL;
    ops_shape *y = &inf->out[0];

    int64_t group;
    int rank;
    oct_status st = ops_conv_prologue(inf, &group, &rank);
    if (st != OCT_OK || rank < 0)
        return st;
    int ns = rank - 2;
    int64_t cin = x->rank >= 0 ? x->dims[1] : -1;
    int64_t m = w->rank >= 0 ? w->dims[0] : -1;
    int64_t wc = w->rank >= 0 ? w->dims[1] : -1;
    if (cin >= 0 && cin % group != 0)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "group %lld does not divide the %lld input "
                               "channels", (long long)group, (long long)cin);
    if (m >= 0 && m % group != 0)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "group %lld does not divide the %lld output "
                               "channels", (long long)group, (long long)m);
    if (cin >= 0 && wc >= 0 && cin != wc * group)
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "input has %lld channels but the weight "
                               "expects %lld x group %lld",
                               (long long)cin, (long long)wc, (long long)group);
    if (b && b->rank >= 0) {
        if (b->rank != 1)
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "bias must be 1-D, got rank %d", b->rank);
        if (m >= 0 && b->dims[0] >= 0 && b->dims[0] != m)
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "bias has %lld values for %lld output "
                                   "channels", (long long)b->dims[0],
                                   (long long)m);
    }
    int64_t kernel[OPS_MAX_RANK];
    st = ops_conv_kernel_shape(ctx, node, w, ns, kernel);
    if (st != OCT_OK)
        return st;

    y->dims[0] = x->rank >= 0 ? x->dims[0] : -1;
    y->dims[1] = m;
    bool kernel_known = true;
    for (int i = 0; i < ns; i++)
        kernel_known = kernel_known && kernel[i] > 0;
    ops_shape xs = *x;
    if (x->rank < 0) {
        xs.rank = rank;
        for (int i = 0; i < rank; i++)
            xs.dims[i] = -1;
    }
    if (!kernel_known) {
        /* still validate the attributes with a dummy kernel */
        int64_t ones[OPS_MAX_RANK];
        for (int i = 0; i < ns; i++)
            ones[i] = 1;
        for (int i = 0; i < ns; i++)
            xs.dims[i + 2] = -1;
        ops_window win;
        st = ops_window_init(ctx, node, &xs, ones, false, &win);
        if (st != OCT_OK)
            return st;
        for (int i = 0; i < ns; i++)
            y->dims[i + 2] = -1;
        return OCT_OK;
    }
    ops_window win;
    st = ops_window_init(ctx, node, &xs, kernel, false, &win);
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < ns; i++)
        y->dims[i + 2] = win.out[i];
    return OCT_OK;
}
