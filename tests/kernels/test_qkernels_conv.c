/*
 * test_qkernels_conv.c: the integer convolution kernels of
 * src/codegen/kernels (octk_qconv_*, octk_qdwconv_*) against the plain
 * scalar twins of qkernel_twins.h (split from test_qkernels.c), bit for
 * bit, on random and common shapes, on each path the packers choose, with
 * every run split over tasks in several ways.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "qkernel_twins.h"

static void qconv_matches_scalar_twin_on_random_shapes(void **state)
{
    rng r = {5};
    for (int i = 0; i < 250; i++) {
        conv_geom g = random_geom(&r, 0);
        conv_case(&r, &g, random_qparams(&r), (int)rng_range(&r, 0, 1), 0, NULL);
    }
}

static void qconv_common_shapes_match_scalar_twin(void **state)
{
    rng r = {6};
    const conv_geom gs[] = {
        {16, 20, 19, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   /* 3x3 same */
        {17, 21, 22, 65, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1},   /* 3x3 stride 2, asymmetric pad */
        {64, 9, 10, 31, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},    /* 1x1 */
        {3, 33, 31, 16, 5, 5, 1, 2, 2, 1, 3, 2, 1, 4},    /* 5x5 dilated, strides mixed */
        {15, 17, 33, 7, 1, 7, 1, 1, 1, 2, 0, 6, 0, 3},    /* 1x7 dilated */
        {7, 5, 5, 100, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4},     /* pad beyond the kernel */
        /* squeezenet-like: im2col rows read straight from the input, rows
         * crossing output rows, a last panel of 1 pixel (55*55 = 126*24+1) */
        {19, 55, 55, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},    /* 1x1, M small */
        {33, 13, 13, 300, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},  /* 1x1, M > 256: phase 0 */
        {5, 27, 27, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},     /* 3x3 same, 27x27 */
        {3, 71, 70, 9, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0},     /* 3x3 stride 2, long rows */
        {6, 40, 45, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 3},    /* 1x1, padding right: OW != W */
        {4, 9, 100, 6, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1},     /* rows wider than a task */
        {8, 50, 50, 12, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0},    /* 1x1 stride 2 */
        /* phase planes: a 2x2 stride-4 patch conv (taps in 1 of 16 planes),
         * a dilated stride-2 3x3 (taps of one kernel row in one plane), a
         * grid of 13 + 2 columns over 1-pixel rows */
        {5, 23, 29, 9, 2, 2, 4, 4, 1, 1, 1, 1, 0, 2},
        {6, 31, 26, 11, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2},
        {9, 1, 13, 17, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1},
        /* dilation 24 (DeepLab-like): 48 skipped columns a grid row, so
         * whole panels and panel pairs hold no pixel */
        {5, 30, 60, 8, 3, 3, 1, 1, 24, 24, 24, 24, 24, 24},
        {3, 9, 20, 6, 3, 3, 1, 1, 30, 30, 30, 30, 30, 30},
        /* long reductions through the 48-position tiles (27 x 27: 31
         * panels, tiles of 4) and the AMX tiles: K = 576 with 37 channels
         * (tails of 8 and of 16), K = 200 unpadded */
        {64, 27, 27, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {200, 27, 27, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++)
        for (int small = 0; small < 2; small++) {
            qparams q = random_qparams(&r);
            q.small_w = small;
            conv_case(&r, &gs[i], q, 1, 0, NULL);
        }
}

static void qconv_path_choice_is_exact_both_ways(void **state)
{
    rng r = {7};
    conv_geom g = {13, 11, 12, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    int path;
    qparams q = random_qparams(&r);
    q.small_w = 1;
    q.w_signed = 1;
    conv_case(&r, &g, q, 1, 0, &path);
    assert_int_equal(path, OCTK_PATH_U8S8);
    /* pair of 127s in row 0, pair (0, 1) */
    int8_t w[2 * 10];
    int32_t wz[2] = {0, 0};
    memset(w, 3, sizeof w);
    w[0] = 127;
    w[1] = 127;
    uint8_t pw[4096];
    octk_qconv_pack_w(pw, w, 1, wz, 2, 10, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pw), OCTK_PATH_S16);
    /* a nonzero weight zero point forces S16 */
    w[1] = 0;
    octk_qconv_pack_w(pw, w, 1, wz, 2, 10, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pw), OCTK_PATH_U8S8);
    wz[1] = 1;
    octk_qconv_pack_w(pw, w, 1, wz, 2, 10, OCTK_ISA_AVX2);
    assert_int_equal(octk_qpacked_path(pw), OCTK_PATH_S16);
    q.small_w = 0;
    conv_case(&r, &g, q, 1, 0, &path);
    assert_true(path == OCTK_PATH_S16 || (BUILD_ISA & OCTK_ISA_VNNI));
}

/* Sums beyond int32 wrap around: a convolution with K = 5000*9 and extreme
 * values, and a depthwise one whose bias is near INT32_MAX. */
static void qconv_accumulators_wrap_int32(void **state)
{
    rng r = {12};
    qparams q = random_qparams(&r);
    q.small_w = 0;
    q.wrap = 1;
    q.x_signed = 0;
    q.x_zero = 0;
    conv_geom g = {5000, 3, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < 2; i++) {
        q.w_signed = i;
        conv_case(&r, &g, q, 1, 0, NULL);
        conv_geom d = {19, 9, 40, 19, 3, 3, 1, 1 + i, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &d, q, 1, 1, NULL);
    }
}

/* ---- qdwconv ----------------------------------------------------------------------- */

static void qdwconv_matches_scalar_twin_on_random_shapes(void **state)
{
    rng r = {8};
    for (int i = 0; i < 250; i++) {
        conv_geom g = random_geom(&r, 1);
        conv_case(&r, &g, random_qparams(&r), (int)rng_range(&r, 0, 1), 1, NULL);
    }
    /* rows longer than the kernel's chunk of output pixels */
    conv_geom wide = {3, 4, 600, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    conv_case(&r, &wide, random_qparams(&r), 1, 1, NULL);
    wide.SW = 2;
    conv_case(&r, &wide, random_qparams(&r), 1, 1, NULL);
}

/* The shapes of the 3x3 path (3x3, unit dilation, column stride 1 or 2):
 * rows narrower than 8, than 16, not a multiple of 16; pads 0..2 on each
 * side; row strides 1..3; both input types (random_qparams); and rows too
 * wide for its row buffers (the general path). */
static void qdwconv_3x3_paths_match_scalar_twin(void **state)
{
    (void)state;
    rng r = {81};
    static const int64_t widths[] = {1, 3, 5, 8, 10, 15, 16, 17, 31, 40, 80, 161};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        for (int64_t st = 1; st <= 2; st++) {
            conv_geom g = {5, 9, widths[i], 5, 3, 3, st, st, 1, 1, 1, 1, 1, 1};
            conv_case(&r, &g, random_qparams(&r), (int)(i & 1), 1, NULL);
            conv_geom h = {3, (int64_t)rng_range(&r, 1, 12), widths[i], 3, 3, 3,
                           (int64_t)rng_range(&r, 1, 3), st, 1, 1,
                           (int64_t)rng_range(&r, 0, 2), (int64_t)rng_range(&r, 0, 2),
                           (int64_t)rng_range(&r, 0, 2), (int64_t)rng_range(&r, 0, 2)};
            conv_case(&r, &h, random_qparams(&r), 1, 1, NULL);
        }
    /* ultraface-rfb320-like, scaled down: 30x40 at strides 1 and 2 */
    for (int64_t st = 1; st <= 2; st++) {
        conv_geom u = {17, 30, 40, 17, 3, 3, st, st, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &u, random_qparams(&r), 1, 1, NULL);
    }
    /* wider than the row buffers of the 3x3 path */
    for (int64_t st = 1; st <= 2; st++) {
        conv_geom w = {2, 3, 1100, 2, 3, 3, st, st, 1, 1, 1, 1, 1, 1};
        conv_case(&r, &w, random_qparams(&r), 1, 1, NULL);
    }
}

/* The u8 x s8 path (VNNI builds): int8 weights with zero point 0 over the
 * full range, kernel widths 1..8 (one or two quads per row), column strides
 * 1 and 2, row strides and dilations, pads, rows narrower than a block of
 * 8 and not a multiple of 8, both input types with their zero points;
 * ppocr-cls's 5x5 shapes on 2 and 3 rows.  Without
 * VNNI the packer must keep the s16 path. */
static void qdwconv_u8_path_matches_scalar_twin(void **state)
{
    (void)state;
    rng r = {83};
    static const int64_t widths[] = {1, 5, 8, 9, 16, 17, 31, 96};
    for (int64_t kw = 1; kw <= 8; kw++)
        for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
            int64_t kh = (int64_t)rng_range(&r, 1, 5), st = (int64_t)rng_range(&r, 1, 2);
            conv_geom g = {(int64_t)rng_range(&r, 1, 9), (int64_t)rng_range(&r, 1, 9), widths[i], 0,
                           kh, kw, (int64_t)rng_range(&r, 1, 3), st,
                           (int64_t)rng_range(&r, 1, 2), 1, (int64_t)rng_range(&r, 0, kh - 1),
                           (int64_t)rng_range(&r, 0, kw - 1), (int64_t)rng_range(&r, 0, kh - 1),
                           (int64_t)rng_range(&r, 0, kw - 1)};
            qparams q = random_qparams(&r);
            q.small_w = 3;
            q.w_signed = 1;
            int path = 0;
            conv_case(&r, &g, q, (int)(i & 1), 1, &path);
            if (path) /* 0: an empty output, nothing packed */
                assert_int_equal(path, BUILD_ISA & OCTK_ISA_VNNI ? OCTK_PATH_U8S8 : OCTK_PATH_S16);
        }
    static const int64_t ppocr[][4] = {{88, 3, 1, 2}, {104, 3, 2, 2}, {200, 2, 1, 2}, {32, 6, 2, 2}};
    for (int i = 0; i < 4; i++) {
        conv_geom g = {ppocr[i][0], ppocr[i][1], 96, 0, 5, 5, ppocr[i][2], 1, 1, 1,
                       ppocr[i][3], 2, 2, 2};
        qparams q = random_qparams(&r);
        q.small_w = 3;
        q.w_signed = 1;
        int path = 0;
        conv_case(&r, &g, q, 1, 1, &path);
        assert_int_equal(path, BUILD_ISA & OCTK_ISA_VNNI ? OCTK_PATH_U8S8 : OCTK_PATH_S16);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qconv_matches_scalar_twin_on_random_shapes),
        cmocka_unit_test(qconv_common_shapes_match_scalar_twin),
        cmocka_unit_test(qconv_path_choice_is_exact_both_ways),
        cmocka_unit_test(qconv_accumulators_wrap_int32),
        cmocka_unit_test(qdwconv_matches_scalar_twin_on_random_shapes),
        cmocka_unit_test(qdwconv_3x3_paths_match_scalar_twin),
        cmocka_unit_test(qdwconv_u8_path_matches_scalar_twin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
