/*
 * lower_convtranspose.c: float32 ConvTranspose (1 to 3 spatial dims;
 * groups, strides, dilations, pads, output_padding, output_shape,
 * auto_pad).  The geometry (output sizes and the leading padding of each
 * axis) comes from ops_ct_geometry, the routine the reference interpreter
 * uses, so both scatter the same taps:
 *   y[n, g*Mg + m, i*s + k*d - pb] += x[n, g*Cg + c, i] * W[g*Cg + c, m, k]
 * with positions outside the output dropped, after y is set to the bias.
 * Emitted as a scatter over the input: the two outer spatial axes (padded
 * to three with unit axes) are loops with a bounds check per tap, the
 * innermost axis is unrolled per tap with its valid input range computed at
 * compile time, so the inner loop is y[o*s + c] += w * x[i] over a
 * contiguous x without bounds checks (it vectorizes for stride 1).  Sums
 * use FMA and reordering (reassoc+contract): results match the reference
 * within the float tolerance, not bit for bit.
 */
#include <string.h>

#include "codegen/codegen.h"
#include "ops/rules.h"

oct_status cg_lower_convtranspose(cg_fn *f, const ir_node *n)
{
    cg_tensor *X = cg_in(f, n, 0), *W = cg_in(f, n, 1), *B = cg_in(f, n, 2), *Y = cg_out(f, n, 0);
    oct_status st;
    if ((st = cg_need_f32(f, n, X, 0, 0)) || (st = cg_need_f32(f, n, W, 0, 1)) ||
        (st = cg_need_f32(f, n, B, 0, 2)) || (st = cg_need_f32(f, n, Y, 1, 0)))
        return st;
    int ns = X->rank - 2;
    if (ns < 1 || ns > 3 || W->rank != X->rank)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: ConvTranspose with %d spatial dims (1 to 3 supported)", ns);
    ops_shape xs = {.dtype = X->dtype, .rank = X->rank}, ws = {.dtype = W->dtype, .rank = W->rank};
    memcpy(xs.dims, X->dims, (size_t)X->rank * sizeof *xs.dims);
    memcpy(ws.dims, W->dims, (size_t)W->rank * sizeof *ws.dims);
    int64_t kernel[OPS_MAX_RANK];
    ops_ct_geom g;
    if ((st = ops_conv_kernel_shape(f->ctx, n, &ws, ns, kernel)) != OCT_OK ||
        (st = ops_ct_geometry(f->ctx, n, &xs, kernel, &g)) != OCT_OK)
        return st;
    int64_t N = X->dims[0], C = X->dims[1], G = ir_attr_int(n, "group", 1), Mg = W->dims[1];
    if (G < 1 || C % G || W->dims[0] != C || Y->dims[1] != Mg * G)
        return oct_node_error(f->ctx, OCT_EINPUT, n,
                              "compile: ConvTranspose group does not divide the channels");
    for (int i = 0; i < ns; i++)
        if (g.out[i] != Y->dims[2 + i])
            return oct_node_error(f->ctx, OCT_EINTERNAL, n,
                                  "compile: ConvTranspose output size differs from its shape");
    /* pad the geometry to 3 spatial axes with leading unit axes */
    int64_t in[3], k[3], s[3], d[3], pb[3], out[3];
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - ns);
        in[i] = j >= 0 ? g.in[j] : 1;
        k[i] = j >= 0 ? g.k[j] : 1;
        s[i] = j >= 0 ? g.s[j] : 1;
        d[i] = j >= 0 ? g.d[j] : 1;
        pb[i] = j >= 0 ? g.pb[j] : 0;
        out[i] = j >= 0 ? g.out[j] : 1;
    }
    int64_t M = Mg * G, Cg = C / G, in_sp = in[0] * in[1] * in[2];
    int64_t out_sp = out[0] * out[1] * out[2], k_sp = k[0] * k[1] * k[2];
    LLVMValueRef px = cg_ptr(f, X), pw = cg_ptr(f, W), py = cg_ptr(f, Y);

    /* y = bias (or 0) */
    cg_loop lb, lo;
    LLVMValueRef plane = cg_loop_begin(f, &lb, N * M);
    LLVMValueRef bias = B ? cg_load(f, f->f32, cg_ptr(f, B), LLVMBuildSRem(f->b, plane, cg_i64c(f, M), ""))
                          : cg_f32c(f, 0);
    LLVMValueRef base = cg_mul(f, plane, cg_i64c(f, out_sp));
    LLVMValueRef o = cg_loop_begin(f, &lo, out_sp);
    cg_store(f, f->f32, py, cg_add(f, base, o), bias);
    cg_loop_end(f, &lo);
    cg_loop_end(f, &lb);
    if (in_sp == 0)
        return OCT_OK;

    /* for n, g, m, c: the taps of W[g*Cg + c, m, :] scattered over x's plane */
    cg_loop ln, lg, lm, lc, li0, lk0, li1, lk1;
    LLVMValueRef nn = cg_loop_begin(f, &ln, N);
    LLVMValueRef gg = cg_loop_begin(f, &lg, G);
    LLVMValueRef mm = cg_loop_begin(f, &lm, Mg);
    LLVMValueRef yplane = cg_mul(f, cg_madd(f, nn, M, cg_madd(f, gg, Mg, mm)), cg_i64c(f, out_sp));
    LLVMValueRef cc = cg_loop_begin(f, &lc, Cg);
    LLVMValueRef ci = cg_madd(f, gg, Cg, cc);
    LLVMValueRef xplane = cg_mul(f, cg_madd(f, nn, C, ci), cg_i64c(f, in_sp));
    LLVMValueRef wbase = cg_mul(f, cg_madd(f, ci, Mg, mm), cg_i64c(f, k_sp));
    LLVMValueRef i0 = cg_loop_begin(f, &li0, in[0]);
    LLVMValueRef k0 = cg_loop_begin(f, &lk0, k[0]);
    LLVMValueRef o0 = cg_add(f, cg_madd(f, i0, s[0], cg_i64c(f, -pb[0])), cg_mul(f, k0, cg_i64c(f, d[0])));
    LLVMBasicBlockRef skip0 = cg_if_inside(f, o0, out[0]);
    LLVMValueRef i1 = cg_loop_begin(f, &li1, in[1]);
    LLVMValueRef k1 = cg_loop_begin(f, &lk1, k[1]);
    LLVMValueRef o1 = cg_add(f, cg_madd(f, i1, s[1], cg_i64c(f, -pb[1])), cg_mul(f, k1, cg_i64c(f, d[1])));
    LLVMBasicBlockRef skip1 = cg_if_inside(f, o1, out[1]);
    LLVMValueRef xrow = cg_add(f, xplane, cg_mul(f, cg_madd(f, i0, in[1], i1), cg_i64c(f, in[2])));
    LLVMValueRef yrow = cg_add(f, yplane, cg_mul(f, cg_madd(f, o0, out[1], o1), cg_i64c(f, out[2])));
    LLVMValueRef wrow = cg_add(f, wbase, cg_mul(f, cg_madd(f, k0, k[1], k1), cg_i64c(f, k[2])));
    for (int64_t k2 = 0; k2 < k[2]; k2++) {
        int64_t lo2, hi2; /* inputs i with 0 <= i*s - pb + k2*d < out */
        cg_valid_range(out[2], in[2], s[2], pb[2], k2 * d[2], &lo2, &hi2);
        if (hi2 <= lo2)
            continue;
        LLVMValueRef wv = cg_load(f, f->f32, pw, cg_add(f, wrow, cg_i64c(f, k2)));
        cg_loop l;
        LLVMValueRef j = cg_loop_begin(f, &l, hi2 - lo2);
        LLVMValueRef i2 = cg_add(f, j, cg_i64c(f, lo2));
        LLVMValueRef yi = cg_add(f, yrow, cg_madd(f, i2, s[2], cg_i64c(f, k2 * d[2] - pb[2])));
        LLVMValueRef prod = cg_fast(LLVMBuildFMul(f->b, wv, cg_load(f, f->f32, px, cg_add(f, xrow, i2)), ""));
        cg_store(f, f->f32, py, yi, cg_fast(LLVMBuildFAdd(f->b, cg_load(f, f->f32, py, yi), prod, "")));
        cg_loop_end(f, &l);
    }
    cg_if_end(f, skip1);
    cg_loop_end(f, &lk1);
    cg_loop_end(f, &li1);
    cg_if_end(f, skip0);
    cg_loop_end(f, &lk0);
    cg_loop_end(f, &li0);
    cg_loop_end(f, &lc);
    cg_loop_end(f, &lm);
    cg_loop_end(f, &lg);
    cg_loop_end(f, &ln);
    return OCT_OK;
}
