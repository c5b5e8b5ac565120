/*
 * shape_norm.c: the shape and type rules of BatchNormalization,
 * InstanceNormalization and LayerNormalization. Shared by the shape-
 * inference pass and the interpreter, whose kernels are in src/ref/norm.c.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/rules.h"

static bool check_float(ops_infer *inf, int i)
{
    ir_dtype dt = inf->in[i].dtype;
    if (dt == IR_DT_UNDEFINED || ir_dtype_info(dt)->kind == IR_DK_FLOAT)
        return true;
    oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                    "must be a float type, not %s", ir_dtype_name(dt));
    return false;
}

/* Checks that input i is a vector of c elements (c may be -1). */
static bool check_vec(ops_infer *inf, int i, int64_t c)
{
    const ops_shape *s = &inf->in[i];
    if (s->rank < 0)
        return true;
    if (s->rank != 1 || (c >= 0 && s->dims[0] >= 0 && s->dims[0] != c)) {
        oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                        "must be a vector of %lld elements",
                        (long long)c);
        return false;
    }
    return true;
}

bool ops_bn_training(const ir_node *node, int64_t opset)
{
    return opset >= 14 && ir_attr_int(node, "training_mode", 0) != 0;
}

void ops_bn_fold_f32(float scale, float bias, float mean, float var, float eps, float *a,
                     float *b)
{
    float inv = 1.0f / sqrtf(var + eps);
    *a = inv * scale;
    *b = bias - mean * *a;
}

void ops_bn_fold_f64(double scale, double bias, double mean, double var, double eps,
                     double *a, double *b)
{
    double inv = 1.0 / sqrt(var + eps);
    *a = inv * scale;
    *b = bias - mean * *a;
}

oct_status ops_shape_batchnorm(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (!check_float(inf, 0))
        return OCT_EINPUT;
    bool train = ops_bn_training(inf->node, inf->opset);
    if (!train && inf->n_out > 1)
        return oct_node_error(inf->ctx, OCT_EUNSUPPORTED, inf->node,
                              "BatchNormalization training outputs are only "
                              "supported with training_mode (opset 14+)");
    if (x->rank >= 0 && x->rank < 2 && x->rank != 1)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "rank %d is too small", x->rank);
    int64_t c = x->rank >= 2 ? x->dims[1] : x->rank == 1 ? 1 : -1;
    bool spatial = inf->opset >= 9 || ir_attr_int(inf->node, "spatial", 1);
    for (int i = 1; i < 5 && spatial; i++)
        if (!check_vec(inf, i, c))
            return OCT_EINPUT;
    inf->out[0] = *x;
    for (int i = 1; i < inf->n_out && i < 3; i++) {
        inf->out[i].dtype = inf->in[3].dtype;
        inf->out[i].rank = 1;
        inf->out[i].dims[0] = c;
    }
    return OCT_OK;
}

oct_status ops_shape_instancenorm(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (!check_float(inf, 0))
        return OCT_EINPUT;
    if (x->rank >= 0 && x->rank < 2)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "rank %d is below 2", x->rank);
    int64_t c = x->rank >= 2 ? x->dims[1] : -1;
    if (!check_vec(inf, 1, c) || !check_vec(inf, 2, c))
        return OCT_EINPUT;
    inf->out[0] = *x;
    return OCT_OK;
}

bool ops_ln_axis(const ir_node *node, int rank, int *axis)
{
    return ops_norm_axis(ir_attr_int(node, "axis", -1), rank, axis);
}

/* Checks that parameter input i broadcasts (numpy, unidirectionally) to
 * dims[axis:] of x. */
static bool ln_check_param(ops_infer *inf, int i, const ops_shape *x, int axis)
{
    const ops_shape *s = &inf->in[i];
    if (s->rank < 0 || x->rank < 0)
        return true;
    int nr = x->rank - axis;
    bool ok = s->rank <= nr;
    for (int k = 0; ok && k < s->rank; k++) {
        int64_t d = s->dims[s->rank - 1 - k], xd = x->dims[x->rank - 1 - k];
        ok = d < 0 || xd < 0 || d == 1 || d == xd;
    }
    if (!ok)
        oct_input_error(inf->ctx, OCT_EINPUT, inf->node, i,
                        "does not broadcast to the normalized dims");
    return ok;
}

oct_status ops_shape_layernorm(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (!check_float(inf, 0))
        return OCT_EINPUT;
    int64_t stash = ir_attr_int(inf->node, "stash_type", 1);
    ir_dtype sdt = (ir_dtype)stash;
    if (!ir_dtype_valid((int)stash) || ir_dtype_info(sdt)->kind != IR_DK_FLOAT)
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                              "stash_type %lld is not a float type",
                              (long long)stash);
    int axis = 0;
    if (x->rank >= 0) {
        if (!ops_ln_axis(inf->node, x->rank, &axis))
            return oct_node_error(inf->ctx, OCT_EINPUT, inf->node,
                                  "axis out of range for rank %d", x->rank);
        for (int i = 1; i < inf->n_in && i < 3; i++)
            if (inf->node->in[i] && !ln_check_param(inf, i, x, axis))
                return OCT_EINPUT;
    }
    inf->out[0] = *x;
    for (int i = 1; i < inf->n_out && i < 3; i++) {
        inf->out[i] = *x;
        inf->out[i].dtype = sdt;
        for (int k = axis; k < x->rank; k++)
            inf->out[i].dims[k] = 1;
    }
    return OCT_OK;
}
