/*
 * tests_ref_gemm.c: unit tests of the float32 SGEMM (fast and portable
 * micro-kernels against a double triple loop, every remainder of the
 * blocking), and of Gemm and MatMul (transposes, alpha/beta, C broadcast,
 * 1-D operands, batch broadcasting, integer wraparound, diagnostics).
 */
#include "ref_test_util.h"

/* C = bias + A*B (or C += bias + A*B) through ref_sgemm_with vs a double
 * triple loop; bias per row, or none. */
static void check_sgemm(ref_sgemm_kernel kern, int64_t M, int64_t N, int64_t K,
                        bool ta, bool tb, bool acc, bool with_bias, rng *r)
{
    oct_ctx *ctx = oct_ctx_new();
    size_t na = (size_t)(M * K), nb = (size_t)(K * N), nc = (size_t)(M * N);
    float *a = malloc((na + 1) * sizeof *a), *b = malloc((nb + 1) * sizeof *b);
    float *c = malloc((nc + 1) * sizeof *c), *c0 = malloc((nc + 1) * sizeof *c0);
    for (size_t i = 0; i < na; i++)
        a[i] = rng_float(r);
    for (size_t i = 0; i < nb; i++)
        b[i] = rng_float(r);
    for (size_t i = 0; i < nc; i++)
        c[i] = c0[i] = rng_float(r);
    float *bias = malloc((size_t)(M + 1) * sizeof *bias);
    for (int64_t i = 0; i < M; i++)
        bias[i] = rng_float(r);
    ref_fmat A = {a, ta ? 1 : K, ta ? M : 1}, B = {b, tb ? 1 : N, tb ? K : 1};
    assert_int_equal(ref_sgemm_with(ctx, kern, M, N, K, A, B, c, N, acc,
                                    with_bias ? bias : NULL), OCT_OK);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double want = (acc ? c0[i * N + j] : 0.0) + (with_bias ? bias[i] : 0.0);
            double scale = fabs(acc ? c0[i * N + j] : 0.0) +
                           fabs(with_bias ? bias[i] : 0.0);
            for (int64_t p = 0; p < K; p++) {
                double v = (double)a[i * A.rs + p * A.cs] * b[p * B.rs + j * B.cs];
                want += v;
                scale += fabs(v);
            }
            assert_close(c[i * N + j], want, scale, 1e-5, "sgemm",
                         (uint64_t)(i * N + j));
        }
    assert_int_equal(ctx->bytes_live, 0);
    free(a);
    free(b);
    free(c);
    free(c0);
    free(bias);
    oct_ctx_free(ctx);
}

static void sgemm_fast_and_portable_match_triple_loop(void **state)
{
    rng r = {2024};
    /* every remainder of MR = 6 and NR = 16, K across the 256 block, M
     * across the 120 block, N across the 2048 block */
    const int64_t sizes[][3] = {{1, 1, 1},     {5, 15, 3},    {6, 16, 7},
                                {7, 17, 255},  {13, 33, 256}, {121, 40, 257},
                                {12, 2049, 9}, {241, 31, 600}, {3, 100, 0},
                                {0, 5, 5},     {33, 1, 70}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++)
        for (int k = 0; k < 2; k++)
            for (int v = 0; v < 4; v++)
                check_sgemm(k ? REF_SGEMM_PORTABLE : REF_SGEMM_FAST,
                            sizes[t][0], sizes[t][1], sizes[t][2], v & 1,
                            v & 2, (v + (int)t) % 3 == 0, (v + k) % 2, &r);
    for (int t = 0; t < 60; t++)
        check_sgemm(t % 2 ? REF_SGEMM_PORTABLE : REF_SGEMM_FAST,
                    rng_int(&r, 1, 50), rng_int(&r, 1, 70),
                    rng_int(&r, 1, 300), rng_int(&r, 0, 1), rng_int(&r, 0, 1),
                    rng_int(&r, 0, 1), rng_int(&r, 0, 1), &r);
}

static void sgemm_fast_path_agrees_with_portable_kernel(void **state)
{
    /* Same inputs through both kernels: products of small integers are
     * exact in float32, so the two must agree bit for bit. */
    oct_ctx *ctx = oct_ctx_new();
    rng r = {31};
    int64_t M = 29, N = 53, K = 300;
    float *a = malloc((size_t)(M * K) * sizeof *a), *b = malloc((size_t)(K * N) * sizeof *b);
    float *c1 = malloc((size_t)(M * N) * sizeof *c1), *c2 = malloc((size_t)(M * N) * sizeof *c2);
    for (int64_t i = 0; i < M * K; i++)
        a[i] = (float)rng_int(&r, -8, 8);
    for (int64_t i = 0; i < K * N; i++)
        b[i] = (float)rng_int(&r, -8, 8);
    ref_fmat A = {a, K, 1}, B = {b, N, 1};
    assert_int_equal(ref_sgemm_with(ctx, REF_SGEMM_FAST, M, N, K, A, B, c1, N, false, NULL), OCT_OK);
    assert_int_equal(ref_sgemm_with(ctx, REF_SGEMM_PORTABLE, M, N, K, A, B, c2, N, false, NULL), OCT_OK);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double want = 0;
            for (int64_t p = 0; p < K; p++)
                want += (double)a[i * K + p] * b[p * N + j];
            assert_true(c1[i * N + j] == (float)want);
            assert_true(c2[i * N + j] == (float)want);
        }
    free(a);
    free(b);
    free(c1);
    free(c2);
    oct_ctx_free(ctx);
}

/* ---- Gemm --------------------------------------------------------------- */

static void gemm_matches_spec_with_transposes_and_broadcast_c(void **state)
{
    rng r = {8};
    for (int t = 0; t < 64; t++) {
        oct_ctx *ctx = oct_ctx_new();
        ir_graph *g = ir_graph_new(ctx);
        int64_t M = rng_int(&r, 1, 20), N = rng_int(&r, 1, 40), K = rng_int(&r, 1, 30);
        bool ta = t & 1, tb = t & 2;
        int crank = (t >> 2) % 4; /* 0: no C (or scalar), 1: (N), 2: (M,N) / (M,1) / (1,N) */
        bool has_c = t % 16 != 0;
        float alpha = (t & 4) ? 0.5f : 1.0f, beta = (t & 8) ? -2.0f : 1.0f;
        int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N};
        int64_t cd[2] = {1, 1};
        int cr = crank == 0 ? 0 : crank == 1 ? 1 : 2;
        if (cr == 1)
            cd[0] = (t & 16) ? 1 : N;
        else if (cr == 2) {
            cd[0] = crank == 3 ? 1 : M;
            cd[1] = (t & 32) ? 1 : N;
        }
        ir_node *n = node_new(ctx, g, "Gemm", has_c ? 3 : 2, 1);
        set_int(ctx, n, "transA", ta);
        set_int(ctx, n, "transB", tb);
        set_float(ctx, n, "alpha", alpha);
        set_float(ctx, n, "beta", beta);
        const ir_tensor *in[3] = {tensor_rand(ctx, &r, 2, ad),
                                  tensor_rand(ctx, &r, 2, bd),
                                  has_c ? tensor_rand(ctx, &r, cr, cd) : NULL};
        ir_tensor *y[1];
        assert_int_equal(run_node(ctx, n, 13, in, has_c ? 3 : 2, y, 1), OCT_OK);
        assert_int_equal(y[0]->dims[0], M);
        assert_int_equal(y[0]->dims[1], N);
        const float *a = in[0]->data, *b = in[1]->data;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0, sc = 0;
                for (int64_t p = 0; p < K; p++) {
                    double v = (double)(ta ? a[p * M + i] : a[i * K + p]) *
                               (tb ? b[j * K + p] : b[p * N + j]);
                    s += v;
                    sc += fabs(v);
                }
                double want = alpha * s, scale = fabs(alpha) * sc;
                if (has_c) {
                    const float *c = in[2]->data;
                    int64_t ci = 0;
                    if (cr == 1)
                        ci = cd[0] == 1 ? 0 : j;
                    else if (cr == 2)
                        ci = (cd[0] == 1 ? 0 : i) * cd[1] + (cd[1] == 1 ? 0 : j);
                    want += beta * c[ci];
                    scale += fabs(beta * c[ci]);
                }
                assert_close(((float *)y[0]->data)[i * N + j], want, scale,
                             1e-5, "gemm", (uint64_t)(i * N + j));
            }
        oct_ctx_free(ctx);
    }
}

static void gemm_bad_shapes_are_diagnosed(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    int64_t ad[2] = {3, 4}, bd[2] = {5, 6}, cd[2] = {3, 5}, bok[2] = {4, 6};
    ir_tensor *y[1];
    ir_node *n = node_new(ctx, g, "Gemm", 2, 1);
    const ir_tensor *in[3] = {tensor_new(ctx, IR_DT_FLOAT, 2, ad),
                              tensor_new(ctx, IR_DT_FLOAT, 2, bd), NULL};
    assert_int_equal(run_node(ctx, n, 13, in, 2, y, 1), OCT_EINPUT);
    assert_input_diag(ctx, 1); /* inner dims 4 vs 5 */
    ir_node *n2 = node_new(ctx, g, "Gemm", 3, 1);
    const ir_tensor *in2[3] = {in[0], tensor_new(ctx, IR_DT_FLOAT, 2, bok),
                               tensor_new(ctx, IR_DT_FLOAT, 2, cd)};
    assert_int_equal(run_node(ctx, n2, 13, in2, 3, y, 1), OCT_EINPUT);
    assert_input_diag(ctx, 2); /* C (3,5) does not broadcast to (3,6) */
    /* before opset 11, C is required */
    assert_int_equal(run_node(ctx, n, 9, in2, 2, y, 1), OCT_EINPUT);
    assert_node_diag(ctx);
    oct_ctx_free(ctx);
}

/* ---- MatMul ------------------------------------------------------------- */

/* Batched MatMul with broadcasting and 1-D operands against numpy.matmul
 * semantics written out. */
static void matmul_broadcasts_batches_and_promotes_vectors(void **state)
{
    rng r = {77};
    struct { int ra; int64_t a[4]; int rb; int64_t b[4]; int ry; int64_t y[4]; } cases[] = {
        {2, {3, 4}, 2, {4, 5}, 2, {3, 5}},
        {1, {4}, 2, {4, 5}, 1, {5}},
        {2, {3, 4}, 1, {4}, 1, {3}},
        {1, {7}, 1, {7}, 0, {0}},
        {3, {2, 3, 4}, 2, {4, 5}, 3, {2, 3, 5}},
        {2, {3, 4}, 3, {2, 4, 5}, 3, {2, 3, 5}},
        {4, {2, 1, 3, 4}, 3, {3, 4, 6}, 4, {2, 3, 3, 6}},
        {1, {4}, 3, {2, 4, 5}, 2, {2, 5}},
        {3, {2, 3, 4}, 1, {4}, 2, {2, 3}},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        oct_ctx *ctx = oct_ctx_new();
        ir_graph *g = ir_graph_new(ctx);
        ir_node *n = node_new(ctx, g, "MatMul", 2, 1);
        const ir_tensor *in[2] = {tensor_rand(ctx, &r, cases[t].ra, cases[t].a),
                                  tensor_rand(ctx, &r, cases[t].rb, cases[t].b)};
        ir_tensor *y[1];
        assert_int_equal(run_node(ctx, n, 13, in, 2, y, 1), OCT_OK);
        assert_int_equal(y[0]->rank, cases[t].ry);
        for (int i = 0; i < cases[t].ry; i++)
            assert_int_equal(y[0]->dims[i], cases[t].y[i]);
        /* Expand to 4-D batch (b0, b1) x (M x K) @ (K x N) by hand. */
        int ra = cases[t].ra, rb = cases[t].rb;
        const int64_t *ad = cases[t].a, *bd = cases[t].b;
        int64_t M = ra > 1 ? ad[ra - 2] : 1, K = ad[ra - 1];
        int64_t N = rb > 1 ? bd[rb - 1] : 1;
        int64_t ab[2] = {1, 1}, bb[2] = {1, 1};
        for (int i = 0; i < ra - 2; i++)
            ab[2 - (ra - 2) + i] = ad[i];
        for (int i = 0; i < rb - 2; i++)
            bb[2 - (rb - 2) + i] = bd[i];
        const float *a = in[0]->data, *b = in[1]->data, *yv = y[0]->data;
        uint64_t yi = 0;
        for (int64_t b0 = 0; b0 < (ab[0] > bb[0] ? ab[0] : bb[0]); b0++)
        for (int64_t b1 = 0; b1 < (ab[1] > bb[1] ? ab[1] : bb[1]); b1++)
        for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++, yi++) {
            int64_t aoff = ((ab[0] > 1 ? b0 : 0) * ab[1] + (ab[1] > 1 ? b1 : 0)) * M * K;
            int64_t boff = ((bb[0] > 1 ? b0 : 0) * bb[1] + (bb[1] > 1 ? b1 : 0)) * K * N;
            double s = 0, sc = 0;
            for (int64_t p = 0; p < K; p++) {
                double v = (double)a[aoff + i * K + p] * b[boff + p * N + j];
                s += v;
                sc += fabs(v);
            }
            assert_close(yv[yi], s, sc, 1e-5, "matmul", yi);
        }
        assert_int_equal(yi, y[0]->nelems);
        oct_ctx_free(ctx);
    }
}

static void matmul_int32_wraps_like_numpy(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    ir_node *n = node_new(ctx, g, "MatMul", 2, 1);
    int64_t ad[2] = {1, 2}, bd[2] = {2, 1};
    ir_tensor *a = tensor_new(ctx, IR_DT_INT32, 2, ad);
    ir_tensor *b = tensor_new(ctx, IR_DT_INT32, 2, bd);
    ((int32_t *)a->data)[0] = 65536;
    ((int32_t *)a->data)[1] = 3;
    ((int32_t *)b->data)[0] = 32768;
    ((int32_t *)b->data)[1] = 5;
    const ir_tensor *in[2] = {a, b};
    ir_tensor *y[1];
    assert_int_equal(run_node(ctx, n, 13, in, 2, y, 1), OCT_OK);
    assert_int_equal(y[0]->dtype, IR_DT_INT32);
    /* 65536 * 32768 + 3 * 5 = 2^31 + 15, which wraps modulo 2^32 to
     * -2^31 + 15 (numpy.matmul on int32 gives -2147483633) */
    assert_int_equal(((int32_t *)y[0]->data)[0], -2147483633);
    oct_ctx_free(ctx);
}

static void matmul_bad_shapes_name_the_input(void **state)
{
    oct_ctx *ctx = oct_ctx_new();
    ir_graph *g = ir_graph_new(ctx);
    ir_node *n = node_new(ctx, g, "MatMul", 2, 1);
    int64_t ad[3] = {2, 3, 4}, bd[3] = {3, 4, 5}, bk[2] = {5, 2};
    ir_tensor *y[1];
    const ir_tensor *in[2] = {tensor_new(ctx, IR_DT_FLOAT, 3, ad),
                              tensor_new(ctx, IR_DT_FLOAT, 3, bd)};
    assert_int_equal(run_node(ctx, n, 13, in, 2, y, 1), OCT_EINPUT);
    assert_input_diag(ctx, 1); /* batch 2 vs 3 */
    const ir_tensor *in2[2] = {in[0], tensor_new(ctx, IR_DT_FLOAT, 2, bk)};
    assert_int_equal(run_node(ctx, n, 13, in2, 2, y, 1), OCT_EINPUT);
    assert_input_diag(ctx, 1); /* K 4 vs 5 */
    oct_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sgemm_fast_and_portable_match_triple_loop),
        cmocka_unit_test(sgemm_fast_path_agrees_with_portable_kernel),
        cmocka_unit_test(gemm_matches_spec_with_transposes_and_broadcast_c),
        cmocka_unit_test(gemm_bad_shapes_are_diagnosed),
        cmocka_unit_test(matmul_broadcasts_batches_and_promotes_vectors),
        cmocka_unit_test(matmul_int32_wraps_like_numpy),
        cmocka_unit_test(matmul_bad_shapes_name_the_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
