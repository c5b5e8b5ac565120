/*
 * octk.h: the kernel library of the LLVM backend (prefix octk_).
 *
 * The kernels are plain C in this folder, compiled twice:
 *   - natively into octet (library octet_kernels): the packing functions run
 *     at compile time, and the unit tests call the kernels directly;
 *   - by clang-19 into LLVM bitcode, once for x86-64 with AVX2, FMA and F16C
 *     and once for baseline x86-64, embedded in octet and linked into every
 *     generated module, where the optimizer inlines them into the node
 *     functions and folds their constant arguments (Glow's libjit works the
 *     same way).
 * Hence: no calls into libc but memcpy/memset and libm float functions, no
 * global mutable state, no allocation (cpu.c, the load-time dispatcher of
 * multi-target libraries, is the one file that calls getenv and fprintf), and packed layouts never depend on
 * the variant (__AVX2__): packing runs natively, the kernel may be the other
 * variant.
 *
 * Calling convention of every kernel family X (octk_X args struct):
 *   size_t  octk_X_work_size(const octk_X *p);
 *       bytes of workspace the kernel needs in p->work (64-byte aligned,
 *       owned by the caller, contents undefined on entry);
 *   int64_t octk_X_tasks(const octk_X *p, int phase);
 *       number of independent tasks of phase 0 <= phase < OCTK_PHASES
 *       (may be 0): the earlier phases prepare operands in p->work (padded
 *       planes, im2col panels, widened rows), the last computes the output;
 *   void    octk_X_run(const octk_X *p, int phase, int64_t begin, int64_t end);
 *       runs tasks [begin, end) of that phase.
 * A phase starts after every task of the one before has finished.  The tasks of a
 * phase write disjoint bytes, and what a task writes does not depend on how
 * the range was split, so any split over threads gives identical output.
 *
 * Integer numerics (the contract of ../../docs/design.md, identical to
 * src/ref/qlinear.c):
 *   acc = wrap_int32(bias[c] + sum((x - x_zero) * (w - w_zero[c])))
 *   y   = clamp(rint((float)acc * mult[c]) + y_zero, y_lo, y_hi)
 * where (float)acc rounds to nearest even, the product is one float32
 * multiplication, rint rounds half to even, and [y_lo, y_hi] lies inside
 * the output type (it carries a fused Relu/Clip).  Padding contributes 0
 * (the input's zero point).  The result is exact: never a saturating
 * instruction whose saturation is not excluded.
 * Float numerics: FMA and reordered sums allowed; y = clamp(sum + bias,
 * y_lo, y_hi) with y_lo/y_hi = -INFINITY/INFINITY when there is no fused
 * activation.
 */
#ifndef OCTET_OCTK_H
#define OCTET_OCTK_H

#include <stddef.h>
#include <stdint.h>

/* Phases of every kernel, run in order (a kernel may have no task in some). */
enum { OCTK_PHASES = 3 };

/* ---- which integer instruction sequence packed weights run on ------------ */

/* Every packed integer weight blob starts with a header the packer fills;
 * octk_qpacked_path tells the compile report which path it chose:
 *   OCTK_PATH_S16: operands widened to int16 and multiplied in pairs into
 *     int32 (vpmaddwd): exact for any 8-bit operands and zero points;
 *   OCTK_PATH_U8S8: u8 x s8 products summed by four into int32, for int8
 *     weights with zero points 0.  With AVX-512 VNNI (vpdpbusd) the sums
 *     are exact for any such weights.  With AVX2 alone (vpmaddubsw, whose
 *     int16 pair sums saturate) it is chosen only when the packer has
 *     proved from the constant weights that no pair can saturate for any
 *     activation byte: 255 * (|w0| + |w1|) <= 32767 for every pair.
 * The packers take the instruction sets of the kernel variant that will
 * run the weights (the compile target's): U8S8 packed for VNNI must never
 * run on a variant without it. */
enum { OCTK_PATH_S16 = 1, OCTK_PATH_U8S8 = 2 };
enum { OCTK_ISA_AVX2 = 1u << 0, OCTK_ISA_VNNI = 1u << 1 };
int octk_qpacked_path(const void *packed_w);
/* The OCTK_ISA_* bits this copy of the kernels was compiled for. */
unsigned octk_build_isa(void);

/* ---- 2-D convolution, one image and one group, NCHW --------------------- */

/* Shapes shared by the convolutions.  Bottom/right padding is implied by
 * OH/OW: ih = oh*SH - PT + kh*DH, iw = ow*SW - PL + kw*DW; positions
 * outside [0,H) x [0,W) are padding. */
typedef struct octk_conv_shape {
    int64_t C, H, W;   /* input channels (of this group), height, width */
    int64_t M;         /* output channels (of this group) */
    int64_t OH, OW;
    int64_t KH, KW, SH, SW, DH, DW, PT, PL;
} octk_conv_shape;

/* Quantized convolution: y[m][oh][ow] from x[c][h][w], K = C*KH*KW. */
typedef struct octk_qconv {
    octk_conv_shape s;
    int32_t x_signed, x_zero;                  /* int8 if x_signed, else uint8 */
    int32_t y_signed, y_zero, y_lo, y_hi;
    const void *x;         /* [C][H][W] */
    void *y;               /* [M][OH][OW] */
    const void *w;         /* packed by octk_qconv_pack_w */
    const int32_t *bias;   /* [M] or NULL */
    const float *mult;     /* [M] */
    void *work;
} octk_qconv;

size_t octk_qconv_packed_w_size(int64_t M, int64_t K);
/* Packs w[m][k] (int8 if w_signed, else uint8) minus w_zero[m]. */
void octk_qconv_pack_w(void *dst, const void *w, int w_signed, const int32_t *w_zero,
                       int64_t M, int64_t K, unsigned isa);
size_t octk_qconv_work_size(const octk_qconv *p);
int64_t octk_qconv_tasks(const octk_qconv *p, int phase);
void octk_qconv_run(const octk_qconv *p, int phase, int64_t begin, int64_t end);

/* Quantized depthwise convolution: s.C == s.M channels, one filter of
 * KH*KW taps per channel (the whole tensor, not one group).  The packer
 * chooses the path from the weights, the shape and the target's isa
 * (OCTK_PATH_U8S8 only with VNNI; qdwconv.c). */
size_t octk_qdwconv_packed_w_size(const octk_conv_shape *s);
void octk_qdwconv_pack_w(void *dst, const void *w, int w_signed, const int32_t *w_zero,
                         const octk_conv_shape *s, unsigned isa);
size_t octk_qdwconv_work_size(const octk_qconv *p);
int64_t octk_qdwconv_tasks(const octk_qconv *p, int phase);
void octk_qdwconv_run(const octk_qconv *p, int phase, int64_t begin, int64_t end);

/* ---- MaxPool on 8-bit tensors (qpool.c) --------------------------------- */

/* s.C planes (N*C) of s.H x s.W into s.OH x s.OW, window s.KH x s.KW with
 * strides, dilations and leading pads as in octk_conv_shape (s.M unused);
 * padding never wins.  Column strides up to OCTK_POOL_MAX_SW, kernel widths
 * up to OCTK_POOL_MAX_K. */
enum { OCTK_POOL_MAX_SW = 16, OCTK_POOL_MAX_K = 64 };
typedef struct octk_maxpool8 {
    octk_conv_shape s;
    int32_t x_signed;      /* int8 if set, else uint8 (y the same) */
    /* one NHWC image of s.C channels instead of s.C planes (no workspace;
     * any column stride and kernel width) */
    int32_t nhwc;
    const void *x;
    void *y;
    void *work;
} octk_maxpool8;

size_t octk_maxpool8_work_size(const octk_maxpool8 *p);
int64_t octk_maxpool8_tasks(const octk_maxpool8 *p, int phase);
void octk_maxpool8_run(const octk_maxpool8 *p, int phase, int64_t begin, int64_t end);

/* ---- byte table lookup (qlut.c) ---------------------------------------- */

/* y[i] = table[x[i]] for i < n (bytes; one phase, disjoint tasks). */
typedef struct octk_lut8 {
    int64_t n;
    const uint8_t *table;  /* 256 bytes */
    const void *x;
    void *y;
} octk_lut8;

int64_t octk_lut8_tasks(const octk_lut8 *p, int phase);
void octk_lut8_run(const octk_lut8 *p, int phase, int64_t begin, int64_t end);

/* ---- quantized GEMM: y[m][n] = requant(sum_k a[m][k] * b[k][n]) -------- */

/* With y_float = 1, the output is float32 instead (MatMulIntegerToFloat):
 *   y[m][n] = (float)acc * mult[n]  (+ fbias[n] if fbias),
 * each a float32 operation; y_zero/y_lo/y_hi are unused.  With
 * y_float = OCTK_QGEMM_Y_INT32 it is the int32 accumulator itself,
 * wrap_int32(bias[n] + sum) (MatMulInteger); mult is then unused. */
enum { OCTK_QGEMM_Y_INT32 = 2 };
typedef struct octk_qgemm {
    int64_t M, N, K;
    int64_t lda, ldy;      /* row strides (elements) of a and y */
    int32_t a_signed, a_zero;
    int32_t y_signed, y_zero, y_lo, y_hi;
    int32_t y_float;
    const void *a;         /* [M][K] */
    void *y;               /* [M][N] */
    const void *b;         /* packed by octk_qgemm_pack_b */
    const int32_t *bias;   /* [N] or NULL */
    const float *mult;     /* [N] */
    const float *fbias;    /* [N] or NULL (y_float only) */
    void *work;
    /* A convolution over an NHWC image (im2col = 1): a is x[H][W][C] of
     * conv's shape (conv.M unused), lda is unused, row m of the product is
     * output position (m / conv.OW, m % conv.OW) and its K = KH*KW*C bytes
     * are the taps (kh, kw, c) in that order, a_zero where the tap is
     * padding.  Phase 0 gathers each task's rows into work first. */
    int32_t im2col;
    octk_conv_shape conv;
} octk_qgemm;

size_t octk_qgemm_packed_b_size(int64_t K, int64_t N);
/* Packs b(k, n) = b[k*stride_k + n*stride_n] minus b_zero[n]. */
void octk_qgemm_pack_b(void *dst, const void *b, int b_signed, const int32_t *b_zero,
                       int64_t K, int64_t N, int64_t stride_k, int64_t stride_n,
                       unsigned isa);
size_t octk_qgemm_work_size(const octk_qgemm *p);
int64_t octk_qgemm_tasks(const octk_qgemm *p, int phase);
void octk_qgemm_run(const octk_qgemm *p, int phase, int64_t begin, int64_t end);

/* ---- byte transpose (qlayout.c) ----------------------------------------- */

/* y[s*ldy + r] = x[r*ldx + s] for r < R, s < S: an image's layout change
 * between NCHW (R = C rows of S = H*W) and NHWC (the reverse); ldy larger
 * than R writes into a channel slice of a wider NHWC tensor. */
typedef struct octk_transpose8 {
    int64_t R, S, ldx, ldy;
    const void *x;
    void *y;
} octk_transpose8;

int64_t octk_transpose8_tasks(const octk_transpose8 *p, int phase);
void octk_transpose8_run(const octk_transpose8 *p, int phase, int64_t begin, int64_t end);

/* ---- float32 kernels ---------------------------------------------------- */

/* FP8 weights (w8_type != OCTK_FP8_NONE in octk_sgemm, octk_sconv): the
 * weights come as FP8 bytes in the packed layout of the float weights (one
 * byte per weight, padding bytes 0) plus one float scale per output channel
 * (w8_scale: [N] for sgemm, [M] for sconv, [C] for sdwconv), and phase 0
 * widens them into float panels in the workspace before phase 1 runs the
 * float kernel on those:
 *   w = fp8_to_f32(byte) * w8_scale[channel]
 * one float32 multiplication of the exact decoded value, so the bits are
 * those of the reference's DequantizeLinear (src/ref/quant.c).  With F16C
 * (the AVX2 variants) a byte becomes an exact fp16: E5M2 is the high byte
 * of the fp16 of the same value (Inf and NaN included); for E4M3FN,
 * (b & 0x80) << 8 | (b & 0x7f) << 7 is the fp16 of value * 2^-8 (subnormals
 * too), multiplied by scale * 256: the same exact product, rounded once.
 * The baseline variant builds the same fp16 and widens it in C.
 * Preconditions (checked by the compiler before it chooses this form):
 * scales finite and > 0; for E4M3FN scale * 256 finite and normal and no
 * NaN code (0x7f, 0xff) among the bytes (the fp16 trick would give 1.875).
 * E5M2 NaN codes give NaN (payload unspecified). */
enum { OCTK_FP8_NONE = 0, OCTK_FP8_E4M3FN = 1, OCTK_FP8_E5M2 = 2 };

typedef struct octk_sconv {
    octk_conv_shape s;
    float y_lo, y_hi;
    const float *x;        /* [C][H][W] */
    float *y;              /* [M][OH][OW] */
    const float *w;        /* packed by octk_sconv_pack_w (w8_type NONE) */
    const float *bias;     /* [M] or NULL */
    void *work;
    int32_t w8_type;       /* OCTK_FP8_*: weights in w8 instead of w */
    const uint8_t *w8;     /* packed by octk_sconv_pack_w8 / octk_sdwconv_pack_w8 */
    const float *w8_scale; /* [M] (sdwconv: [C]) */
} octk_sconv;

size_t octk_sconv_packed_w_size(int64_t M, int64_t K);
void octk_sconv_pack_w(float *dst, const float *w, int64_t M, int64_t K);
/* The same layout with one byte per weight (FP8 codes, padding 0). */
size_t octk_sconv_packed_w8_size(int64_t M, int64_t K);
void octk_sconv_pack_w8(uint8_t *dst, const uint8_t *w, int64_t M, int64_t K);
size_t octk_sconv_work_size(const octk_sconv *p);
int64_t octk_sconv_tasks(const octk_sconv *p, int phase);
void octk_sconv_run(const octk_sconv *p, int phase, int64_t begin, int64_t end);

size_t octk_sdwconv_packed_w_size(int64_t C, int64_t taps);
void octk_sdwconv_pack_w(float *dst, const float *w, int64_t C, int64_t taps);
size_t octk_sdwconv_packed_w8_size(int64_t C, int64_t taps);
void octk_sdwconv_pack_w8(uint8_t *dst, const uint8_t *w, int64_t C, int64_t taps);
size_t octk_sdwconv_work_size(const octk_sconv *p);
int64_t octk_sdwconv_tasks(const octk_sconv *p, int phase);
void octk_sdwconv_run(const octk_sconv *p, int phase, int64_t begin, int64_t end);

typedef struct octk_sgemm {
    int64_t M, N, K;
    int64_t lda, ldy;
    float y_lo, y_hi;
    const float *a;        /* [M][K] */
    float *y;              /* [M][N] */
    const float *b;        /* packed by octk_sgemm_pack_b (w8_type NONE) */
    const float *bias;     /* [N] or NULL */
    void *work;
    int32_t w8_type;       /* OCTK_FP8_*: weights in w8 instead of b */
    const uint8_t *w8;     /* packed by octk_sgemm_pack_b8 */
    const float *w8_scale; /* [N] */
    /* > 0: b is not packed but a run-time row-major matrix b[k*ldb + n]
     * (w8_type NONE), read no further than column N-1 of each row (a
     * batched MatMul's right operand); 0: b is packed. */
    int64_t ldb;
} octk_sgemm;

size_t octk_sgemm_packed_b_size(int64_t K, int64_t N);
/* Packs alpha * b(k, n), b(k, n) = b[k*stride_k + n*stride_n]. */
void octk_sgemm_pack_b(float *dst, const float *b, float alpha, int64_t K, int64_t N,
                       int64_t stride_k, int64_t stride_n);
/* The same panels with one byte per weight (FP8 codes, padding 0), no alpha. */
size_t octk_sgemm_packed_b8_size(int64_t K, int64_t N);
void octk_sgemm_pack_b8(uint8_t *dst, const uint8_t *b, int64_t K, int64_t N, int64_t stride_k,
                        int64_t stride_n);
size_t octk_sgemm_work_size(const octk_sgemm *p);
/* Columns of the float microtile this copy of the kernels runs: 64 with
 * AVX-512 (6 x 64), 16 otherwise (AVX2 6 x 16, baseline loops); for tests
 * and reports. */
int octk_sgemm_tile_cols(void);
int64_t octk_sgemm_tasks(const octk_sgemm *p, int phase);
void octk_sgemm_run(const octk_sgemm *p, int phase, int64_t begin, int64_t end);

/* ---- weight-only INT4 MatMul (wogemm.c; act_int8: wogemm_i8.c, _w8.c) ---
 * y[m][n] = sum_k a[m][k] * w(k, n) with the constant weight given as
 * 4-bit codes q (0..15) in blocks of bs rows along K (the last block may be
 * short), one float scale and one zero point per block and column:
 *   w(k, n) = (float)(q - z) * s,  z = zp[k/bs][n] or `zero` (8 for signed
 *   INT4 stored as q + 8, 0 for UINT4 without zero points),
 * the bits of DequantizeLinear(block_size) (src/ref/quant.c).
 * Packed by octk_wogemm_pack_b in panels of OCTK_WO_NR columns, each panel
 * a run of its K blocks: { float s[16]; uint8 z[16] if has_zp; bytes
 * [ceil(len/2)][16] with q(2i) in the low and q(2i+1) in the high nibble },
 * so a GEMV streams every byte once, in order.
 * M <= OCTK_WO_GEMV_ROWS: phase 0 sums a over each block (asum), phase 1
 * unpacks the nibbles in registers and keeps one FMA chain per nibble half,
 * panel and row: y = sum_blocks s * sum_k a*q - (z*s) * asum (float
 * reassociation, within the float tolerance of the reference).  Larger M:
 * phase 1 widens 64-column chunks straight into octk_sgemm's packed panels
 * (exactly the DequantizeLinear values; one L2-sized buffer per task) and
 * runs octk_sgemm on them.
 *
 * act_int8 = 1 (MatMulNBits accuracy_level 4, `--wo-compute=int8`): the
 * activations are quantized to int8 per row and block and the products are
 * integer, b packed by octk_wogemm_pack_b_i8 (same header per panel and
 * block, then the codes in groups of 8 k: 64 bytes, byte 4c+t holding
 * q(k0+t) in the low and q(k0+4+t) in the high nibble of column c, codes
 * past the block 0).  Every M.  The arithmetic, bit for bit that of
 * src/ref/wo_int8.c, for row m and block j (k in the block):
 *   amax = max |a[k]|; bad = some a[k] is NaN or +-Inf
 *   sa = bad ? NaN : amax / 127;  inv = (bad || sa == 0) ? 0 : 1 / sa
 *   qa[k] = bad ? 0 : rint(a[k] * inv)   (|qa| <= 127, half to even)
 *   d = sum_k qa[k] * q(k, n) - z * sum_k qa[k]        (exact int32)
 *   y[m][n] = sum over j ascending: y = y + (float)d * (sa * s)
 * (float32, each operation rounded, no FMA).  Phase 0 quantizes a row per
 * task, phase 1 runs panels: u8 codes x s8 activations with vpdpbusd
 * (AVX-512 VNNI; with 1 or 2 rows the high nibbles are used in place as
 * 16 * code in separate sums, divided by 16 exactly), vpmaddubsw + vpmaddwd
 * (AVX2: pair sums <= 2*15*127, no saturation) or C.
 *
 * act_int8 = 2 (OCTK_WO_INT8_ROWS, `--int8-rows`, K <= OCTK_WO_ROWS_MAX_K):
 * the weight is converted at packing to int8 per column and the
 * activations are quantized per row, so the products need one float step
 * per output (wogemm_w8.c, b packed by octk_wogemm_pack_b_w8).  With
 * quant(x[0..n)) the rule above over n values (amax / 127, rint(x * inv),
 * NaN or +-Inf anywhere: scale NaN, codes 0):
 *   v(k, n) = w(k, n) as above;  c[n], w8(., n) = quant(v(., n)) over K
 *   sa[m], qa[m][.] = quant(a[m][.]) over K
 *   d = sum_k qa[m][k] * w8(k, n)                       (exact int32)
 *   y[m][n] = (float)d * (sa[m] * c[n])       (two roundings, no FMA) */
enum { OCTK_WO_INT8_ROWS = 2, OCTK_WO_ROWS_MAX_K = 131072 };
enum { OCTK_WO_NR = 16, OCTK_WO_GEMV_ROWS = 8, OCTK_WO_CHUNK = 64, OCTK_WO_SLOTS = 8 };
typedef struct octk_wogemm {
    int64_t M, N, K, bs;
    int64_t lda, ldy;
    int32_t has_zp, zero;
    const float *a;        /* [M][K] */
    float *y;              /* [M][N] */
    const uint8_t *b;      /* packed by octk_wogemm_pack_b (act_int8: _pack_b_i8) */
    void *work;
    int32_t act_int8;      /* 1: int8 activations per block, integer dot
                            * products; 2: int8 weights per column and
                            * activations per row (OCTK_WO_INT8_ROWS) */
} octk_wogemm;

size_t octk_wogemm_packed_b_size(int64_t K, int64_t N, int64_t bs, int has_zp);
/* q[k*N + n] codes 0..15, zp[(k/bs)*N + n] (NULL: none), scale likewise. */
void octk_wogemm_pack_b(uint8_t *dst, const uint8_t *q, const uint8_t *zp, const float *scale,
                        int64_t K, int64_t N, int64_t bs);
/* act_int8 = 2: the weight converted to int8 per column (see above); zp
 * NULL means `zero` for every block; tmp holds 5 * K bytes. */
size_t octk_wogemm_packed_b_w8_size(int64_t K, int64_t N);
void octk_wogemm_pack_b_w8(uint8_t *dst, const uint8_t *q, const uint8_t *zp, int32_t zero,
                           const float *scale, int64_t K, int64_t N, int64_t bs, void *tmp);
/* The act_int8 layout (see above); same arguments. */
size_t octk_wogemm_packed_b_i8_size(int64_t K, int64_t N, int64_t bs, int has_zp);
void octk_wogemm_pack_b_i8(uint8_t *dst, const uint8_t *q, const uint8_t *zp, const float *scale,
                           int64_t K, int64_t N, int64_t bs);
/* Whether M rows take the GEMV (1) or the widen + sgemm path (0). */
int octk_wogemm_is_gemv(int64_t M);
size_t octk_wogemm_work_size(const octk_wogemm *p);
int64_t octk_wogemm_tasks(const octk_wogemm *p, int phase);
void octk_wogemm_run(const octk_wogemm *p, int phase, int64_t begin, int64_t end);

/* ---- weight-only block formats (wofmt.c) -------------------------------
 * y[m][n] = sum_k a[m][k] * w(k, n) for the block formats the INT4 kernel
 * does not take (NVFP4, MXFP4, Q4_K-like, Q8_0, Q6_K-like, INT8 and INT2
 * blocks): the weight stays in its code width (8, 4 or 2 bits) and
 *   w(k, n) = (v(q) - v(z)) * s,  s, z those of block k / bs of column n,
 * v the value of a code: 8-bit codes are int8 or uint8 (`u8`), narrower
 * codes index the 16-entry table `lut` (FP4 E2M1 values, two's-complement
 * INT4/INT2, UINT4/UINT2: the packer passes any map).  Two-level scales
 * reach the kernel resolved to float32 (the first DequantizeLinear's
 * output, computed at compile time by the interpreter's own kernel).
 * Packed by octk_wofmt_pack_b in panels of OCTK_WO_NR columns, each panel
 * a run of its K blocks: { float s[16]; uint8 z[16] if has_zp; bytes
 * [ceil(len/per)][16], per = 8/bits codes a byte, code j of a byte in bits
 * [bits*j, bits*(j+1)) }.  Phase 0 sums a over each block (asum, only for
 * narrow codes with zero points), phase 1 runs rows in groups of
 * OCTK_WO_GEMV_ROWS over groups of panels: y = sum_blocks s * sum_k
 * a*v(q) - (v(z)*s) * asum for narrow codes, s * sum_k a*(q - z) with the
 * difference exact in int32 for 8-bit ones (float reassociation, within
 * the float tolerance of the reference).  Every M
 * takes this path (a prefill re-reads the packed weight per 8 rows). */
typedef struct octk_wofmt {
    int64_t M, N, K, bs;
    int64_t lda, ldy;
    int32_t bits, u8, has_zp;
    float lut[16];         /* bits 4 and 2: value of code c (lut[c & mask]) */
    const float *a;        /* [M][K] */
    float *y;              /* [M][N] */
    const uint8_t *b;      /* packed by octk_wofmt_pack_b */
    void *work;
} octk_wofmt;

size_t octk_wofmt_packed_b_size(int64_t K, int64_t N, int64_t bs, int bits, int has_zp);
/* q[k*N + n] codes (bits wide, in the low bits of a byte), zp[(k/bs)*N + n]
 * (NULL: none), scale likewise. */
void octk_wofmt_pack_b(uint8_t *dst, const uint8_t *q, const uint8_t *zp, const float *scale,
                       int64_t K, int64_t N, int64_t bs, int bits);
size_t octk_wofmt_work_size(const octk_wofmt *p);
int64_t octk_wofmt_tasks(const octk_wofmt *p, int phase);
void octk_wofmt_run(const octk_wofmt *p, int phase, int64_t begin, int64_t end);

/* Element-wise float functions over n contiguous elements (y may equal x):
 * OCTK_EXP, OCTK_SIGMOID 1/(1+exp(-x)), OCTK_TANH, OCTK_HARDSIGMOID
 * max(0, min(1, alpha*x + beta)).  Within 2 ulp-ish of libm (tests allow
 * 1e-6 relative); NaN propagates; exp overflows to +Inf and underflows to
 * 0 as libm does. */
enum { OCTK_EXP = 1, OCTK_SIGMOID, OCTK_TANH, OCTK_HARDSIGMOID };
typedef struct octk_sunary {
    int64_t n;
    int32_t op;
    float alpha, beta;
    const float *x;
    float *y;
} octk_sunary;
size_t octk_sunary_work_size(const octk_sunary *p);
int64_t octk_sunary_tasks(const octk_sunary *p, int phase);
void octk_sunary_run(const octk_sunary *p, int phase, int64_t begin, int64_t end);

/* Softmax (or LogSoftmax if log) of each of `rows` contiguous rows of
 * `cols` elements: y = exp(x - max) / sum(exp(x - max)). */
typedef struct octk_ssoftmax {
    int64_t rows, cols;
    int32_t log;
    const float *x;
    float *y;
} octk_ssoftmax;
size_t octk_ssoftmax_work_size(const octk_ssoftmax *p);
int64_t octk_ssoftmax_tasks(const octk_ssoftmax *p, int phase);
void octk_ssoftmax_run(const octk_ssoftmax *p, int phase, int64_t begin, int64_t end);

#endif
