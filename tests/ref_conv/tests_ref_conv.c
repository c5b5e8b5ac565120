/*
 * tests_ref_conv.c: unit tests of the windowed and matrix-product kernels
 * of the reference interpreter (Conv, ConvTranspose, Gemm, MatMul, pooling,
 * and the SGEMM under them).  Each kernel is compared with a plain loop
 * written here from the ONNX definition (direct 7-loop convolution, scatter
 * transposed convolution, triple-loop products in double) on random awkward
 * sizes; shape rules are compared with the spec's output-size formulas
 * computed here; bad shapes and attributes must produce a diagnostic
 * naming the right input.
 */
#include "ref_test_util.h"

/* ---- Conv ------------------------------------------------------------------ */

enum { AP_NOTSET, AP_VALID, AP_SAME_UPPER, AP_SAME_LOWER };
static const char *const autopad_names[] = {"NOTSET", "VALID", "SAME_UPPER",
                                            "SAME_LOWER"};

typedef struct conv_case {
    int ns, autopad;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
    bool bias, kernel_attr;
} conv_case;

/* Output size and resolved begin padding of one axis, from the ONNX Conv
 * spec; returns false if the window does not fit. */
static bool conv_axis(const conv_case *cc, int i, int64_t *out, int64_t *pb)
{
    int64_t eff = (cc->k[i] - 1) * cc->d[i] + 1, in = cc->in[i];
    switch (cc->autopad) {
    case AP_NOTSET:
        *pb = cc->pb[i];
        if (in + cc->pb[i] + cc->pe[i] < eff)
            return false;
        *out = (in + cc->pb[i] + cc->pe[i] - eff) / cc->s[i] + 1;
        return true;
    case AP_VALID:
        *pb = 0;
        if (in < eff)
            return false;
        *out = (in - eff) / cc->s[i] + 1;
        return true;
    default: {
        *out = (in + cc->s[i] - 1) / cc->s[i];
        int64_t total = (*out - 1) * cc->s[i] + eff - in;
        if (total < 0)
            total = 0;
        *pb = cc->autopad == AP_SAME_UPPER ? total / 2 : total - total / 2;
        return true;
    }
    }
}

static ir_node *conv_node(oct_ctx *ctx, ir_graph *g, const conv_case *cc)
{
    ir_node *n = node_new(ctx, g, "Conv", cc->bias ? 3 : 2, 1);
    int64_t pads[6];
    for (int i = 0; i < cc->ns; i++) {
        pads[i] = cc->pb[i];
        pads[i + cc->ns] = cc->pe[i];
    }
    set_ints(ctx, n, "strides", cc->s, cc->ns);
    set_ints(ctx, n, "dilations", cc->d, cc->ns);
    if (cc->autopad == AP_NOTSET)
        set_ints(ctx, n, "pads", pads, 2 * cc->ns);
    else
        set_str(ctx, n, "auto_pad", autopad_names[cc->autopad]);
    set_int(ctx, n, "group", cc->group);
    if (cc->kernel_attr)
        set_ints(ctx, n, "kernel_shape", cc->k, cc->ns);
    return n;
}

/* Runs Conv on random data and compares with a direct 7-loop convolution
 * accumulating in double. */
static void check_conv_case(const conv_case *cc, rng *r)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    int ns = cc->ns, rank = ns + 2;
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->m, cc->c / cc->group};
    int64_t out[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
    int64_t in3[3] = {1, 1, 1}, k3[3] = {1, 1, 1}, s3[3] = {1, 1, 1},
            d3[3] = {1, 1, 1};
    for (int i = 0; i < ns; i++) {
        xd[i + 2] = cc->in[i];
        wd[i + 2] = cc->k[i];
        int j = 3 - ns + i;
        assert_true(conv_axis(cc, i, &out[j], &pb[j]));
        in3[j] = cc->in[i];
        k3[j] = cc->k[i];
        s3[j] = cc->s[i];
        d3[j] = cc->d[i];
    }
    const ir_tensor *in[3] = {tensor_rand(ctx, r, rank, xd),
                              tensor_rand(ctx, r, rank, wd), NULL};
    if (cc->bias)
        in[2] = tensor_rand(ctx, r, 1, &cc->m);
    ir_node *node = conv_node(ctx, g, cc);
    ir_tensor *y[1];
    assert_int_equal(run_node(ctx, node, 21, in, cc->bias ? 3 : 2, y, 1), OCT_OK);
    assert_int_equal(y[0]->rank, rank);
    assert_int_equal(y[0]->dims[0], cc->n);
    assert_int_equal(y[0]->dims[1], cc->m);
    for (int i = 0; i < ns; i++)
        assert_int_equal(y[0]->dims[i + 2], out[3 - ns + i]);

    const float *x = in[0]->data, *w = in[1]->data;
    const float *b = cc->bias ? in[2]->data : NULL;
    const float *yv = y[0]->data;
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    uint64_t idx = 0;
    for (int64_t bn = 0; bn < cc->n; bn++)
    for (int64_t m = 0; m < cc->m; m++)
    for (int64_t o0 = 0; o0 < out[0]; o0++)
    for (int64_t o1 = 0; o1 < out[1]; o1++)
    for (int64_t o2 = 0; o2 < out[2]; o2++, idx++) {
        double acc = b ? b[m] : 0.0, scale = b ? fabs(b[m]) : 0.0;
        int64_t gi = m / mg;
        for (int64_t c = 0; c < cg; c++)
        for (int64_t a0 = 0; a0 < k3[0]; a0++)
        for (int64_t a1 = 0; a1 < k3[1]; a1++)
        for (int64_t a2 = 0; a2 < k3[2]; a2++) {
            int64_t i0 = o0 * s3[0] - pb[0] + a0 * d3[0];
            int64_t i1 = o1 * s3[1] - pb[1] + a1 * d3[1];
            int64_t i2 = o2 * s3[2] - pb[2] + a2 * d3[2];
            if (i0 < 0 || i0 >= in3[0] || i1 < 0 || i1 >= in3[1] || i2 < 0 ||
                i2 >= in3[2])
                continue;
            double xv = x[(((bn * cc->c + gi * cg + c) * in3[0] + i0) * in3[1] + i1) * in3[2] + i2];
            double wv = w[(((m * cg + c) * k3[0] + a0) * k3[1] + a1) * k3[2] + a2];
            acc += xv * wv;
            scale += fabs(xv * wv);
        }
        assert_close(yv[idx], acc, scale, 1e-5, "conv", idx);
    }
    assert_int_equal(idx, y[0]->nelems);
    oct_ctx_free(ctx);
}

/* A random case whose window fits. */
static void random_conv_case(rng *r, conv_case *cc)
{
    for (;;) {
        memset(cc, 0, sizeof *cc);
        cc->ns = rng_int(r, 1, 3);
        int kind = rng_int(r, 0, 9);
        cc->n = rng_int(r, 1, 2);
        if (kind == 0) { /* depthwise */
            cc->group = rng_int(r, 1, 9);
            cc->c = cc->group;
            cc->m = cc->group * rng_int(r, 1, 2);
        } else {
            cc->group = kind < 7 ? 1 : rng_int(r, 2, 3);
            cc->c = cc->group * rng_int(r, 1, 7);
            cc->m = cc->group * rng_int(r, 1, 13);
        }
        cc->autopad = rng_int(r, 0, 5);
        if (cc->autopad > 3)
            cc->autopad = AP_NOTSET;
        bool pointwise = rng_int(r, 0, 5) == 0;
        int max_in = cc->ns == 1 ? 40 : cc->ns == 2 ? 17 : 7;
        for (int i = 0; i < cc->ns; i++) {
            cc->in[i] = rng_int(r, 1, max_in);
            cc->k[i] = pointwise ? 1 : rng_int(r, 1, cc->ns == 3 ? 3 : 5);
            cc->s[i] = pointwise ? 1 : rng_int(r, 1, 3);
            cc->d[i] = pointwise ? 1 : rng_int(r, 1, 2);
            cc->pb[i] = pointwise ? 0 : rng_int(r, 0, 2);
            cc->pe[i] = pointwise ? 0 : rng_int(r, 0, 2);
        }
        cc->bias = rng_int(r, 0, 1);
        cc->kernel_attr = rng_int(r, 0, 1);
        bool ok = true;
        for (int i = 0; i < cc->ns; i++) {
            int64_t o, p;
            ok = ok && conv_axis(cc, i, &o, &p);
        }
        if (ok)
            return;
    }
}

static void conv_matches_direct_loop_on_random_shapes(void **state)
{
    rng r = {12345};
    for (int t = 0; t < 300; t++) {
        conv_case cc;
        random_conv_case(&r, &cc);
        check_conv_case(&cc, &r);
    }
}

static void conv_large_channels_cross_gemm_blocks(void **state)
{
    /* K = 70*9 = 630 crosses the K block, M = 130 the M block, N = 361
     * leaves a partial column strip. */
    rng r = {777};
    conv_case cc = {.ns = 2, .autopad = AP_NOTSET, .n = 1, .c = 70, .m = 130,
                    .group = 1, .in = {19, 19}, .k = {3, 3}, .s = {1, 1},
                    .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}, .bias = true};
    check_conv_case(&cc, &r);
    conv_case pw = {.ns = 2, .autopad = AP_NOTSET, .n = 2, .c = 300, .m = 7,
                    .group = 1, .in = {13, 11}, .k = {1, 1}, .s = {1, 1},
                    .d = {1, 1}, .bias = false};
    check_conv_case(&pw, &r);
    /* depthwise rows long enough for the vector path, strides 1 and 2 */
    for (int64_t st = 1; st <= 2; st++) {
        conv_case dw = {.ns = 2, .autopad = AP_NOTSET, .n = 2, .c = 17,
                        .m = 17, .group = 17, .in = {23, 41}, .k = {3, 3},
                        .s = {st, st}, .d = {1, 1}, .pb = {1, 1},
                        .pe = {1, 1}, .bias = true};
        check_conv_case(&dw, &r);
    }
}

/* Runs only Conv's shape rule on tensors of the given shapes. */
static oct_status conv_shape_only(oct_ctx *ctx, ir_node *node, int rx,
                                  const int64_t *xd, int rw, const int64_t *wd,
                                  int rb, const int64_t *bd)
{
    ops_shape in[3] = {{IR_DT_FLOAT, rx, {0}}, {IR_DT_FLOAT, rw, {0}},
                       {IR_DT_FLOAT, rb, {0}}};
    memcpy(in[0].dims, xd, (size_t)(rx > 0 ? rx : 0) * sizeof *xd);
    memcpy(in[1].dims, wd, (size_t)(rw > 0 ? rw : 0) * sizeof *wd);
    if (rb >= 0)
        memcpy(in[2].dims, bd, (size_t)rb * sizeof *bd);
    else
        in[2].dtype = IR_DT_UNDEFINED;
    ops_shape out[1];
    const ir_tensor *consts[3] = {NULL, NULL, NULL};
    ops_infer inf = {ctx, node, 21, node->n_in, in, consts, 1, out};
    oct_status st = ops_shape_conv(&inf);
    if (st == OCT_OK) {
        /* keep the inferred shape for the caller in a known place */
        node->out[0]->type.rank = out[0].rank;
        node->out[0]->type.dims = ir_alloc_array(ctx, OPS_MAX_RANK, sizeof(ir_dim));
        for (int i = 0; i < out[0].rank; i++)
            node->out[0]->type.dims[i].value = out[0].dims[i];
    }
    return st;
}

static void conv_shape_keeps_unknown_dims(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    ir_node *n = node_new(ctx, g, "Conv", 2, 1);
    int64_t pads[4] = {1, 1, 1, 1}, strides[2] = {2, 2};
    set_ints(ctx, n, "pads", pads, 4);
    set_ints(ctx, n, "strides", strides, 2);
    int64_t xd[4] = {-1, 3, -1, 224}, wd[4] = {64, 3, 3, 3};
    assert_int_equal(conv_shape_only(ctx, n, 4, xd, 4, wd, -1, NULL), OCT_OK);
    ir_dim *d = n->out[0]->type.dims;
    assert_int_equal(n->out[0]->type.rank, 4);
    assert_int_equal(d[0].value, -1);
    assert_int_equal(d[1].value, 64);
    assert_int_equal(d[2].value, -1);
    assert_int_equal(d[3].value, (224 + 2 - 3) / 2 + 1);
    /* unknown input rank: rank from W, only M known */
    assert_int_equal(conv_shape_only(ctx, n, -1, xd, 4, wd, -1, NULL), OCT_OK);
    assert_int_equal(n->out[0]->type.rank, 4);
    assert_int_equal(n->out[0]->type.dims[1].value, 64);
    assert_int_equal(n->out[0]->type.dims[3].value, -1);
    assert_int_equal(oct_error_count(ctx), 0);
    oct_ctx_free(ctx);
}

static void conv_bad_shapes_name_the_input(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    ir_node *n = node_new(ctx, g, "Conv", 3, 1);
    int64_t xd[4] = {1, 4, 8, 8}, wd[4] = {6, 4, 3, 3}, bd[1] = {6};
    assert_int_equal(conv_shape_only(ctx, n, 4, xd, 4, wd, 1, bd), OCT_OK);
    /* channel mismatch: C = 4 but W expects 3 */
    int64_t wbad[4] = {6, 3, 3, 3};
    assert_int_equal(conv_shape_only(ctx, n, 4, xd, 4, wbad, 1, bd), OCT_EINPUT);
    assert_input_diag(ctx, 1);
    /* bias length */
    int64_t bbad[1] = {5};
    assert_int_equal(conv_shape_only(ctx, n, 4, xd, 4, wd, 1, bbad), OCT_EINPUT);
    assert_input_diag(ctx, 2);
    /* rank mismatch */
    int64_t w3[3] = {6, 4, 3};
    assert_int_equal(conv_shape_only(ctx, n, 4, xd, 3, w3, 1, bd), OCT_EINPUT);
    assert_input_diag(ctx, 1);
    /* kernel bigger than the (unpadded) input */
    int64_t wbig[4] = {6, 4, 9, 3};
    assert_int_equal(conv_shape_only(ctx, n, 4, xd, 4, wbig, 1, bd), OCT_EINPUT);
    assert_input_diag(ctx, 0);
    oct_ctx_free(ctx);
}

static void conv_bad_attributes_are_diagnosed(void **state)
{
    int64_t xd[4] = {1, 4, 8, 8}, wd[4] = {6, 2, 3, 3};
    int64_t neg[2] = {-1, 1}, pads3[3] = {1, 1, 1}, zero_d[2] = {0, 1};
    for (int c = 0; c < 5; c++) {
        oct_ctx *ctx = oct_ctx_new();
        ir_graph *g = ir_graph_new(ctx);
        ir_node *n = node_new(ctx, g, "Conv", 2, 1);
        set_int(ctx, n, "group", c == 3 ? 3 : 2);
        if (c == 0)
            set_ints(ctx, n, "strides", neg, 2);
        else if (c == 1)
            set_ints(ctx, n, "pads", pads3, 3);
        else if (c == 2)
            set_ints(ctx, n, "dilations", zero_d, 2);
        else if (c == 4)
            set_str(ctx, n, "auto_pad", "SAME_SIDEWAYS");
        assert_int_equal(conv_shape_only(ctx, n, 4, xd, 4, wd, -1, NULL),
                         OCT_EINPUT);
        if (c == 3) /* group 3 does not divide 4 channels */
            assert_input_diag(ctx, 0);
        else
            assert_node_diag(ctx);
        oct_ctx_free(ctx);
    }
}

/* ---- ConvTranspose ---------------------------------------------------------- */

/* Random ConvTranspose vs a scatter loop written from the spec. */
static void convtranspose_matches_scatter_loop(void **state)
{
    rng r = {4242};
    for (int t = 0; t < 150; t++) {
        oct_ctx *ctx = oct_ctx_new();
        ir_graph *g = ir_graph_new(ctx);
        int ns = rng_int(&r, 1, 3);
        int64_t group = rng_int(&r, 1, 3), cg = rng_int(&r, 1, 4),
                mg = rng_int(&r, 1, 5), nb = rng_int(&r, 1, 2);
        int64_t c = group * cg, m = group * mg;
        int mode = rng_int(&r, 0, 3); /* 0 pads, 1 output_shape, 2/3 SAME */
        int64_t in3[3] = {1, 1, 1}, k3[3] = {1, 1, 1}, s3[3] = {1, 1, 1},
                d3[3] = {1, 1, 1}, pb3[3] = {0, 0, 0}, out3[3] = {1, 1, 1};
        int64_t xd[5] = {nb, c}, wd[5] = {c, mg}, s[3], d[3], k[3], op[3],
                pads[6], os[3];
        bool ok = true;
        for (int i = 0; i < ns; i++) {
            int max_in = ns == 1 ? 12 : ns == 2 ? 7 : 4;
            int64_t in = rng_int(&r, 1, max_in);
            k[i] = rng_int(&r, 1, 4);
            s[i] = rng_int(&r, 1, 3);
            d[i] = rng_int(&r, 1, 2);
            int64_t lim = s[i] > d[i] ? s[i] : d[i];
            op[i] = rng_int(&r, 0, (int)lim - 1);
            pads[i] = rng_int(&r, 0, 2);
            pads[i + ns] = rng_int(&r, 0, 2);
            int64_t full = s[i] * (in - 1) + op[i] + (k[i] - 1) * d[i] + 1;
            int64_t out, pb;
            if (mode == 0) {
                pb = pads[i];
                out = full - pads[i] - pads[i + ns];
            } else {
                out = mode == 1 ? full + rng_int(&r, -3, 2) : in * s[i];
                /* an output larger than the full scatter is not negative
                 * padding: the extra positions hold the bias (ORT) */
                int64_t total = full > out ? full - out : 0;
                pb = mode == 2 ? total / 2 : total - total / 2;
            }
            ok = ok && out >= 1;
            os[i] = out;
            int j = 3 - ns + i;
            in3[j] = in;
            k3[j] = k[i];
            s3[j] = s[i];
            d3[j] = d[i];
            pb3[j] = pb;
            out3[j] = out;
            xd[i + 2] = in;
            wd[i + 2] = k[i];
        }
        if (!ok) {
            oct_ctx_free(ctx);
            continue;
        }
        bool has_bias = rng_int(&r, 0, 1);
        ir_node *n = node_new(ctx, g, "ConvTranspose", has_bias ? 3 : 2, 1);
        set_ints(ctx, n, "strides", s, ns);
        set_ints(ctx, n, "dilations", d, ns);
        set_ints(ctx, n, "output_padding", op, ns);
        set_int(ctx, n, "group", group);
        if (mode == 0)
            set_ints(ctx, n, "pads", pads, 2 * ns);
        else if (mode == 1)
            set_ints(ctx, n, "output_shape", os, ns);
        else
            set_str(ctx, n, "auto_pad", mode == 2 ? "SAME_UPPER" : "SAME_LOWER");
        const ir_tensor *in[3] = {tensor_rand(ctx, &r, ns + 2, xd),
                                  tensor_rand(ctx, &r, ns + 2, wd), NULL};
        if (has_bias)
            in[2] = tensor_rand(ctx, &r, 1, &m);
        ir_tensor *y[1];
        assert_int_equal(run_node(ctx, n, 21, in, has_bias ? 3 : 2, y, 1), OCT_OK);
        for (int i = 0; i < ns; i++)
            assert_int_equal(y[0]->dims[i + 2], os[i]);
        assert_int_equal(y[0]->dims[1], m);
        uint64_t total = (uint64_t)(nb * m * out3[0] * out3[1] * out3[2]);
        double *want = calloc(total, sizeof *want), *scale = calloc(total, sizeof *scale);
        const float *x = in[0]->data, *w = in[1]->data;
        int64_t osp = out3[0] * out3[1] * out3[2];
        for (int64_t b = 0; b < nb; b++)
        for (int64_t ci = 0; ci < c; ci++)
        for (int64_t i0 = 0; i0 < in3[0]; i0++)
        for (int64_t i1 = 0; i1 < in3[1]; i1++)
        for (int64_t i2 = 0; i2 < in3[2]; i2++)
        for (int64_t mi = 0; mi < mg; mi++)
        for (int64_t a0 = 0; a0 < k3[0]; a0++)
        for (int64_t a1 = 0; a1 < k3[1]; a1++)
        for (int64_t a2 = 0; a2 < k3[2]; a2++) {
            int64_t o0 = i0 * s3[0] + a0 * d3[0] - pb3[0];
            int64_t o1 = i1 * s3[1] + a1 * d3[1] - pb3[1];
            int64_t o2 = i2 * s3[2] + a2 * d3[2] - pb3[2];
            if (o0 < 0 || o0 >= out3[0] || o1 < 0 || o1 >= out3[1] || o2 < 0 ||
                o2 >= out3[2])
                continue;
            double v = (double)x[(((b * c + ci) * in3[0] + i0) * in3[1] + i1) * in3[2] + i2] *
                       w[(((ci * mg + mi) * k3[0] + a0) * k3[1] + a1) * k3[2] + a2];
            int64_t oc = (ci / cg) * mg + mi;
            uint64_t yi = (uint64_t)((b * m + oc) * osp + (o0 * out3[1] + o1) * out3[2] + o2);
            want[yi] += v;
            scale[yi] += fabs(v);
        }
        const float *yv = y[0]->data;
        for (uint64_t i = 0; i < total; i++) {
            double bv = has_bias ? ((const float *)in[2]->data)[(i / (uint64_t)osp) % (uint64_t)m] : 0.0;
            assert_close(yv[i], want[i] + bv, scale[i] + fabs(bv), 1e-5, "convtranspose", i);
        }
        free(want);
        free(scale);
        oct_ctx_free(ctx);
    }
}

/* ---- pooling ---------------------------------------------------------------- */

/* Random MaxPool (with Indices) and AveragePool vs plain loops. */
static void pools_match_plain_loops(void **state)
{
    rng r = {99};
    for (int t = 0; t < 300; t++) {
        oct_ctx *ctx = oct_ctx_new();
        ir_graph *g = ir_graph_new(ctx);
        bool is_max = t % 2 == 0;
        /* MaxPool with and without the Indices output (two code paths) */
        bool with_indices = is_max && t % 4 == 0;
        int ns = rng_int(&r, 1, 3);
        bool ceil_mode = rng_int(&r, 0, 1), include_pad = rng_int(&r, 0, 1);
        int64_t storage = ns == 2 && with_indices ? rng_int(&r, 0, 1) : 0;
        int64_t nb = rng_int(&r, 1, 2), ch = rng_int(&r, 1, 3);
        int64_t xd[5] = {nb, ch}, k[3], s[3], d[3], pads[6];
        int64_t in3[3] = {1, 1, 1}, k3[3] = {1, 1, 1}, s3[3] = {1, 1, 1},
                d3[3] = {1, 1, 1}, pb3[3] = {0, 0, 0}, pe3[3] = {0, 0, 0},
                out3[3] = {1, 1, 1};
        bool ok = true;
        for (int i = 0; i < ns; i++) {
            int64_t in = rng_int(&r, 1, ns == 1 ? 20 : ns == 2 ? 9 : 5);
            k[i] = rng_int(&r, 1, 3);
            s[i] = rng_int(&r, 1, 3);
            d[i] = rng_int(&r, 1, 2);
            /* ONNX requires pads smaller than the kernel */
            pads[i] = rng_int(&r, 0, (int)k[i] - 1);
            pads[i + ns] = rng_int(&r, 0, (int)k[i] - 1);
            int64_t eff = (k[i] - 1) * d[i] + 1;
            int64_t span = in + pads[i] + pads[i + ns] - eff;
            ok = ok && span >= 0;
            int64_t out = 0;
            if (span >= 0) {
                out = (ceil_mode ? (span + s[i] - 1) / s[i] : span / s[i]) + 1;
                if (ceil_mode && (out - 1) * s[i] >= in + pads[i])
                    out--;
            }
            int j = 3 - ns + i;
            xd[i + 2] = in3[j] = in;
            k3[j] = k[i];
            s3[j] = s[i];
            d3[j] = d[i];
            pb3[j] = pads[i];
            pe3[j] = pads[i + ns];
            out3[j] = out;
        }
        if (!ok) {
            oct_ctx_free(ctx);
            continue;
        }
        ir_node *n = node_new(ctx, g, is_max ? "MaxPool" : "AveragePool", 1,
                              with_indices ? 2 : 1);
        set_ints(ctx, n, "kernel_shape", k, ns);
        set_ints(ctx, n, "strides", s, ns);
        set_ints(ctx, n, "dilations", d, ns);
        set_ints(ctx, n, "pads", pads, 2 * ns);
        set_int(ctx, n, "ceil_mode", ceil_mode);
        if (is_max)
            set_int(ctx, n, "storage_order", storage);
        else
            set_int(ctx, n, "count_include_pad", include_pad);
        const ir_tensor *in[1] = {tensor_rand(ctx, &r, ns + 2, xd)};
        ir_tensor *y[2];
        assert_int_equal(run_node(ctx, n, 19, in, 1, y, with_indices ? 2 : 1), OCT_OK);
        for (int i = 0; i < ns; i++)
            assert_int_equal(y[0]->dims[i + 2], out3[3 - ns + i]);
        if (with_indices)
            assert_int_equal(y[1]->dtype, IR_DT_INT64);
        const float *x = in[0]->data, *yv = y[0]->data;
        int64_t isp = in3[0] * in3[1] * in3[2];
        uint64_t yi = 0;
        for (int64_t p = 0; p < nb * ch; p++)
        for (int64_t o0 = 0; o0 < out3[0]; o0++)
        for (int64_t o1 = 0; o1 < out3[1]; o1++)
        for (int64_t o2 = 0; o2 < out3[2]; o2++, yi++) {
            double best = -INFINITY, sum = 0;
            int64_t best_i = -1, cnt = 0, cnt_pad = 0;
            for (int64_t a0 = 0; a0 < k3[0]; a0++)
            for (int64_t a1 = 0; a1 < k3[1]; a1++)
            for (int64_t a2 = 0; a2 < k3[2]; a2++) {
                int64_t i0 = o0 * s3[0] - pb3[0] + a0 * d3[0];
                int64_t i1 = o1 * s3[1] - pb3[1] + a1 * d3[1];
                int64_t i2 = o2 * s3[2] - pb3[2] + a2 * d3[2];
                if (i0 < in3[0] + pe3[0] && i1 < in3[1] + pe3[1] &&
                    i2 < in3[2] + pe3[2])
                    cnt_pad++;
                if (i0 < 0 || i0 >= in3[0] || i1 < 0 || i1 >= in3[1] ||
                    i2 < 0 || i2 >= in3[2])
                    continue;
                int64_t flat = (i0 * in3[1] + i1) * in3[2] + i2;
                float v = x[p * isp + flat];
                cnt++;
                sum += v;
                if (v > best) {
                    best = v;
                    /* storage_order 1 (2-D only): column-major spatial */
                    best_i = p * isp + (storage ? i2 * in3[1] + i1 : flat);
                }
            }
            if (is_max) {
                assert_true(yv[yi] == (float)best);
                if (with_indices)
                    assert_int_equal(((int64_t *)y[1]->data)[yi], best_i);
            } else {
                int64_t div = include_pad ? cnt_pad : cnt;
                if (div == 0) /* window entirely in the padding */
                    assert_true(isnan(yv[yi]));
                else
                    assert_close(yv[yi], sum / (double)div, 1.0, 1e-6,
                                 "avgpool", yi);
            }
        }
        oct_ctx_free(ctx);
    }
}

static void globalpools_reduce_every_spatial_dim(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    rng r = {5};
    int64_t xd[5] = {2, 3, 4, 5, 3};
    const ir_tensor *in[1] = {tensor_rand(ctx, &r, 5, xd)};
    ir_tensor *ya[1], *ym[1];
    ir_node *na = node_new(ctx, g, "GlobalAveragePool", 1, 1);
    ir_node *nm = node_new(ctx, g, "GlobalMaxPool", 1, 1);
    assert_int_equal(run_node(ctx, na, 21, in, 1, ya, 1), OCT_OK);
    assert_int_equal(run_node(ctx, nm, 21, in, 1, ym, 1), OCT_OK);
    assert_int_equal(ya[0]->rank, 5);
    assert_int_equal(ya[0]->dims[1], 3);
    assert_int_equal(ya[0]->dims[2] * ya[0]->dims[3] * ya[0]->dims[4], 1);
    const float *x = in[0]->data;
    for (int p = 0; p < 6; p++) {
        double s = 0, mx = -INFINITY;
        for (int i = 0; i < 60; i++) {
            s += x[p * 60 + i];
            mx = x[p * 60 + i] > mx ? x[p * 60 + i] : mx;
        }
        assert_close(((float *)ya[0]->data)[p], s / 60, 1.0, 1e-6, "gap", (uint64_t)p);
        assert_true(((float *)ym[0]->data)[p] == (float)mx);
    }
    oct_ctx_free(ctx);
}

/* NaN never beats a number in MaxPool (ONNX Runtime's comparison), and
 * an all-NaN window gives NaN; checked with and without Indices. */
static void maxpool_nan_loses_to_numbers(void **state)
{
    for (int with_indices = 0; with_indices < 2; with_indices++) {
        oct_ctx *ctx = oct_ctx_new();
        ir_graph *g = ir_graph_new(ctx);
        ir_node *n = node_new(ctx, g, "MaxPool", 1, 1 + with_indices);
        int64_t k[1] = {2}, s[1] = {2};
        set_ints(ctx, n, "kernel_shape", k, 1);
        set_ints(ctx, n, "strides", s, 1);
        int64_t xd[3] = {1, 1, 6};
        ir_tensor *x = tensor_new(ctx, IR_DT_FLOAT, 3, xd);
        float *xv = x->data;
        xv[0] = NAN; xv[1] = -3.0f;   /* -> -3 (index 1) */
        xv[2] = 2.0f; xv[3] = NAN;    /* -> 2 (index 2) */
        xv[4] = NAN; xv[5] = NAN;     /* -> NaN */
        const ir_tensor *in[1] = {x};
        ir_tensor *y[2];
        assert_int_equal(run_node(ctx, n, 12, in, 1, y, 1 + with_indices), OCT_OK);
        const float *yv = y[0]->data;
        assert_true(yv[0] == -3.0f);
        assert_true(yv[1] == 2.0f);
        assert_true(isnan(yv[2]));
        if (with_indices) {
            assert_int_equal(((int64_t *)y[1]->data)[0], 1);
            assert_int_equal(((int64_t *)y[1]->data)[1], 2);
        }
        oct_ctx_free(ctx);
    }
}

static void maxpool_without_kernel_shape_is_diagnosed(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    ir_node *n = node_new(ctx, g, "MaxPool", 1, 1);
    int64_t xd[4] = {1, 1, 4, 4};
    const ir_tensor *in[1] = {tensor_new(ctx, IR_DT_FLOAT, 4, xd)};
    ir_tensor *y[1];
    assert_int_equal(run_node(ctx, n, 12, in, 1, y, 1), OCT_EINPUT);
    assert_node_diag(ctx);
    oct_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_matches_direct_loop_on_random_shapes),
        cmocka_unit_test(conv_large_channels_cross_gemm_blocks),
        cmocka_unit_test(conv_shape_keeps_unknown_dims),
        cmocka_unit_test(conv_bad_shapes_name_the_input),
        cmocka_unit_test(conv_bad_attributes_are_diagnosed),
        cmocka_unit_test(convtranspose_matches_scatter_loop),
        cmocka_unit_test(pools_match_plain_loops),
        cmocka_unit_test(globalpools_reduce_every_spatial_dim),
        cmocka_unit_test(maxpool_nan_loses_to_numbers),
        cmocka_unit_test(maxpool_without_kernel_shape_is_diagnosed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
