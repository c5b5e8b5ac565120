/*
 * shape_quant.c: the shape and type rules of QuantizeLinear,
 * DequantizeLinear and DynamicQuantizeLinear. Shared by the shape-inference
 * pass and the interpreter, whose kernels are in src/ref/quant.c.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/qformat.h"
#include "ops/ops.h"
#include "ops/rules.h"


/* "[2, 3]" ("?" for an unknown dim) into buf, truncated to size. */
static const char *shape_text(const ops_shape *s, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->rank && len < size; i++) {
        if (s->dims[i] < 0)
            len += (size_t)snprintf(buf + len, size - len, "%s?", i ? ", " : "");
        else
            len += (size_t)snprintf(buf + len, size - len, "%s%lld",
                                    i ? ", " : "", (long long)s->dims[i]);
    }
    if (len < size)
        snprintf(buf + len, size - len, "]");
    return buf;
}

/* Resolves the quantization granularity of node for x, scale (input
 * scale_idx) and zero point (input zp_idx, zp may be NULL or have rank -1
 * when unknown).  Reports bad axis, block_size and scale/zero-point shapes
 * against the node and its inputs; returns OCT_EINPUT then.  With unknown
 * shapes the kind may stay QG_UNKNOWN.  Fills outer/dim/inner when x's dims
 * are all known. */
oct_status ops_quant_gran_resolve(oct_ctx *ctx, const ir_node *node,
                                  const ops_shape *x, const ops_shape *scale,
                                  const ops_shape *zp, int scale_idx,
                                  int zp_idx, ops_quant_gran *g)
{
    memset(g, 0, sizeof *g);
    g->kind = QG_UNKNOWN;
    int64_t axis_attr = ir_attr_int(node, "axis", 1);
    int64_t block = ir_attr_int(node, "block_size", 0);
    if (block < 0)
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "block_size = %lld must not be negative",
                              (long long)block);
    if (zp && zp->rank >= 0 && scale->rank >= 0) {
        int64_t ns = ops_shape_known_elems(scale), nz = ops_shape_known_elems(zp);
        bool both_single = ns == 1 && nz == 1;
        bool same = zp->rank == scale->rank;
        for (int i = 0; same && i < zp->rank; i++)
            if (zp->dims[i] >= 0 && scale->dims[i] >= 0 &&
                zp->dims[i] != scale->dims[i])
                same = false;
        if (!both_single && !same) {
            char zs[96], ss[96];
            return oct_input_error(ctx, OCT_EINPUT, node, zp_idx,
                                   "zero point shape %s differs from the "
                                   "scale's shape %s",
                                   shape_text(zp, zs, sizeof zs),
                                   shape_text(scale, ss, sizeof ss));
        }
    }
    if (scale->rank < 0)
        return OCT_OK;
    int64_t n_scale = ops_shape_known_elems(scale);
    if (n_scale == 1) {
        g->kind = QG_TENSOR;
    } else if (block == 0) {
        if (scale->rank != 1)
            return oct_input_error(ctx, OCT_EINPUT, node, scale_idx,
                                   "scale must be a scalar or a 1-D per-axis "
                                   "vector without block_size, got rank %d",
                                   scale->rank);
        if (x->rank >= 0) {
            if (!ops_norm_axis(axis_attr, x->rank, &g->axis))
                return oct_node_error(ctx, OCT_EINPUT, node,
                                      "axis = %lld is out of range for an "
                                      "input of rank %d",
                                      (long long)axis_attr, x->rank);
            int64_t d = x->dims[g->axis];
            if (d >= 0 && scale->dims[0] >= 0 && d != scale->dims[0])
                return oct_input_error(ctx, OCT_EINPUT, node, scale_idx,
                                       "per-axis scale has %lld elements but "
                                       "input dim %d (axis) is %lld",
                                       (long long)scale->dims[0], g->axis,
                                       (long long)d);
            g->kind = QG_AXIS;
        }
    } else {
        if (x->rank < 0)
            return OCT_OK;
        if (!ops_norm_axis(axis_attr, x->rank, &g->axis))
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "axis = %lld is out of range for an input "
                                  "of rank %d", (long long)axis_attr, x->rank);
        if (scale->rank != x->rank)
            return oct_input_error(ctx, OCT_EINPUT, node, scale_idx,
                                   "blocked scale must have the input's rank "
                                   "%d, got %d", x->rank, scale->rank);
        for (int i = 0; i < x->rank; i++) {
            int64_t d = x->dims[i], s = scale->dims[i];
            if (d < 0 || s < 0)
                continue;
            int64_t want = i == g->axis ? (d + block - 1) / block : d;
            if (s != want)
                return oct_input_error(
                    ctx, OCT_EINPUT, node, scale_idx,
                    "blocked scale dim %d is %lld, expected %lld (input dim "
                    "%lld%s, block_size %lld)", i, (long long)s,
                    (long long)want, (long long)d,
                    i == g->axis ? " on the blocked axis" : "",
                    (long long)block);
        }
        g->kind = QG_BLOCK;
        g->block = block;
        g->sdim = (uint64_t)(scale->dims[g->axis] < 0 ? 0 : scale->dims[g->axis]);
    }
    if (ops_shape_known_elems(x) >= 0) {
        g->outer = 1;
        g->dim = 1;
        g->inner = 1;
        if (g->kind == QG_AXIS || g->kind == QG_BLOCK) {
            for (int i = 0; i < g->axis; i++)
                g->outer *= (uint64_t)x->dims[i];
            g->dim = (uint64_t)x->dims[g->axis];
            for (int i = g->axis + 1; i < x->rank; i++)
                g->inner *= (uint64_t)x->dims[i];
        } else {
            g->inner = (uint64_t)ops_shape_known_elems(x);
        }
    }
    return OCT_OK;
}

/* Checks that every scale is positive and finite (ONNX requires a positive
 * scale; zero, negative, NaN and Inf are bad input). */
oct_status ops_quant_check_scales(oct_ctx *ctx, const ir_node *node,
                                  int idx, const ir_tensor *scale)
{
    for (uint64_t i = 0; i < scale->nelems; i++) {
        double s = ops_get(scale, i);
        if (!(s > 0.0) || !isfinite(s))
            return oct_input_error(ctx, OCT_EINPUT, node, idx,
                                   "scale element %llu is %g: scales must be "
                                   "positive and finite",
                                   (unsigned long long)i, s);
    }
    return OCT_OK;
}

static bool is_scale_type(ir_dtype dt, bool allow_int32)
{
    return dt == IR_DT_FLOAT || dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16 ||
           dt == IR_DT_FLOAT8E8M0 || (allow_int32 && dt == IR_DT_INT32);
}

/* A float8 format of the table (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ). */
static bool is_float8(ir_dtype dt)
{
    const ir_qformat_traits *f = ir_qformat_info(ir_qformat_of_dtype(dt));
    return f->is_float && f->bits == 8;
}

/* Integer range of a quantized integer type (QuantizeLinear's integer
 * outputs: 2, 4, 8 and 16 bits), from the format table (qformats.def);
 * false for other types, int32 included (a DequantizeLinear input only). */
bool ops_quant_int_range(ir_dtype dt, int64_t *lo, int64_t *hi)
{
    const ir_qformat_traits *f = ir_qformat_info(ir_qformat_of_dtype(dt));
    if (!f->bits || f->is_float || f->bits > 16)
        return false;
    *lo = f->qmin;
    *hi = f->qmax;
    return true;
}

/* A QuantizeLinear output type (T3 of opset 25). */
static bool is_quant_out_type(ir_dtype dt)
{
    int64_t lo, hi;
    return ops_quant_int_range(dt, &lo, &hi) || is_float8(dt) ||
           dt == IR_DT_FLOAT4E2M1;
}

/* Output type of QuantizeLinear: the zero point's type if given, else the
 * output_dtype attribute (opset 21+), else uint8.  UNDEFINED if the zero
 * point is present with an unknown type.  Reports a conflict. */
static oct_status quantize_out_type(oct_ctx *ctx, const ir_node *node,
                                    bool has_zp, ir_dtype zp_dt, ir_dtype *out)
{
    int64_t attr = ir_attr_int(node, "output_dtype", 0);
    if (attr != 0 && !is_quant_out_type((ir_dtype)attr))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "output_dtype %lld (%s) is not a quantized type",
                              (long long)attr, ir_dtype_name((int)attr));
    if (has_zp) {
        if (zp_dt != IR_DT_UNDEFINED && !is_quant_out_type(zp_dt))
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "zero point type %s is not a quantized "
                                   "type", ir_dtype_name(zp_dt));
        if (attr != 0 && zp_dt != IR_DT_UNDEFINED && attr != (int64_t)zp_dt)
            return oct_input_error(ctx, OCT_EINPUT, node, 2,
                                   "zero point type %s differs from "
                                   "output_dtype %s", ir_dtype_name(zp_dt),
                                   ir_dtype_name((int)attr));
        *out = zp_dt != IR_DT_UNDEFINED ? zp_dt : (ir_dtype)attr;
    } else {
        *out = attr != 0 ? (ir_dtype)attr : IR_DT_UINT8;
    }
    return OCT_OK;
}

/* Type in which x / scale is computed.  The `precision` attribute (opset
 * 23+) when set; otherwise the type numpy (the ONNX reference
 * implementation, which produced the conformance data) gives the division:
 * int32 x -> double; x and scale of the same float type -> that type (the
 * spec: the scale's type sets the precision); mixed float types -> float32. */
oct_status ops_quantize_div_type(oct_ctx *ctx, const ir_node *node,
                                 ir_dtype x, ir_dtype s, ir_dtype *out)
{
    int64_t p = ir_attr_int(node, "precision", 0);
    if (p != 0) {
        if (p != IR_DT_FLOAT && p != IR_DT_FLOAT16 && p != IR_DT_BFLOAT16 &&
            p != IR_DT_DOUBLE)
            return oct_node_error(ctx, OCT_EINPUT, node,
                                  "precision %lld (%s) is not a float type",
                                  (long long)p, ir_dtype_name((int)p));
        *out = (ir_dtype)p;
    } else if (x == IR_DT_INT32 || s == IR_DT_INT32) {
        *out = IR_DT_DOUBLE;
    } else if (x == s) {
        *out = x;
    } else {
        *out = IR_DT_FLOAT;
    }
    return OCT_OK;
}

oct_status ops_shape_quantizelinear(ops_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ops_shape *x = &inf->in[0], *s = &inf->in[1];
    bool has_zp = inf->n_in > 2 && node->in[2];
    const ops_shape *zp = has_zp ? &inf->in[2] : NULL;
    if (x->dtype != IR_DT_UNDEFINED && x->dtype != IR_DT_FLOAT &&
        x->dtype != IR_DT_FLOAT16 && x->dtype != IR_DT_BFLOAT16 &&
        x->dtype != IR_DT_INT32)
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "input type %s cannot be quantized (float, "
                               "float16, bfloat16 or int32 expected)",
                               ir_dtype_name(x->dtype));
    if (s->dtype != IR_DT_UNDEFINED && !is_scale_type(s->dtype, true))
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "scale type %s is not a scale type",
                               ir_dtype_name(s->dtype));
    ir_dtype out_dt = IR_DT_UNDEFINED, div_dt = IR_DT_UNDEFINED;
    oct_status st = quantize_out_type(ctx, node, has_zp,
                                      zp ? zp->dtype : IR_DT_UNDEFINED, &out_dt);
    if (st == OCT_OK)
        st = ops_quantize_div_type(ctx, node, x->dtype, s->dtype, &div_dt);
    ops_quant_gran g;
    if (st == OCT_OK)
        st = ops_quant_gran_resolve(ctx, node, x, s, zp, 1, 2, &g);
    if (st == OCT_OK && inf->in_const[1])
        st = ops_quant_check_scales(ctx, node, 1, inf->in_const[1]);
    if (st != OCT_OK)
        return st;
    inf->out[0] = *x;
    inf->out[0].dtype = out_dt;
    return OCT_OK;
}

static bool is_dequant_in_type(ir_dtype dt)
{
    return dt == IR_DT_INT32 || is_quant_out_type(dt);
}

bool ops_is_dequant_out_type(ir_dtype dt)
{
    return dt == IR_DT_FLOAT || dt == IR_DT_FLOAT16 || dt == IR_DT_BFLOAT16;
}

oct_status ops_shape_dequantizelinear(ops_infer *inf)
{
    oct_ctx *ctx = inf->ctx;
    const ir_node *node = inf->node;
    const ops_shape *x = &inf->in[0], *s = &inf->in[1];
    bool has_zp = inf->n_in > 2 && node->in[2];
    const ops_shape *zp = has_zp ? &inf->in[2] : NULL;
    if (x->dtype != IR_DT_UNDEFINED && !is_dequant_in_type(x->dtype))
        return oct_input_error(ctx, OCT_EINPUT, node, 0,
                               "input type %s is not a quantized type",
                               ir_dtype_name(x->dtype));
    if (s->dtype != IR_DT_UNDEFINED && !is_scale_type(s->dtype, false))
        return oct_input_error(ctx, OCT_EINPUT, node, 1,
                               "scale type %s is not a scale type",
                               ir_dtype_name(s->dtype));
    if (zp && zp->dtype != IR_DT_UNDEFINED && x->dtype != IR_DT_UNDEFINED &&
        zp->dtype != x->dtype)
        return oct_input_error(ctx, OCT_EINPUT, node, 2,
                               "zero point type %s differs from the input "
                               "type %s", ir_dtype_name(zp->dtype),
                               ir_dtype_name(x->dtype));
    /* Output type: output_dtype (opset 23+), else the scale's type. */
    int64_t attr = ir_attr_int(node, "output_dtype", 0);
    ir_dtype out_dt = attr != 0 ? (ir_dtype)attr : s->dtype;
    if (out_dt != IR_DT_UNDEFINED && !ops_is_dequant_out_type(out_dt))
        return oct_node_error(ctx, OCT_EINPUT, node,
                              "output type %s is not float, float16 or "
                              "bfloat16%s", ir_dtype_name(out_dt),
                              attr ? "" : " (set output_dtype)");
    ops_quant_gran g;
    oct_status st = ops_quant_gran_resolve(ctx, node, x, s, zp, 1, 2, &g);
    if (st == OCT_OK && inf->in_const[1])
        st = ops_quant_check_scales(ctx, node, 1, inf->in_const[1]);
    if (st != OCT_OK)
        return st;
    inf->out[0] = *x;
    inf->out[0].dtype = out_dt;
    return OCT_OK;
}

oct_status ops_shape_dynamicquantizelinear(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    if (x->dtype != IR_DT_UNDEFINED && x->dtype != IR_DT_FLOAT)
        return oct_input_error(inf->ctx, OCT_EINPUT, inf->node, 0,
                               "input type %s: DynamicQuantizeLinear takes "
                               "float", ir_dtype_name(x->dtype));
    inf->out[0] = *x;
    inf->out[0].dtype = IR_DT_UINT8;
    if (inf->n_out > 1) {
        memset(&inf->out[1], 0, sizeof inf->out[1]);
        inf->out[1].dtype = IR_DT_FLOAT;
    }
    if (inf->n_out > 2) {
        memset(&inf->out[2], 0, sizeof inf->out[2]);
        inf->out[2].dtype = IR_DT_UINT8;
    }
    return OCT_OK;
}
