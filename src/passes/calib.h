/*
 * calib.h: calibration statistics and the choice of quantization ranges.
 *
 * An observer keeps a fixed-size summary of every value a tensor took during
 * calibration: exact min/max, counts, and a histogram of CALIB_BINS bins
 * laid symmetrically around zero with a power-of-two bin width.  When a
 * value falls outside the range, the width doubles and adjacent bins pair
 * up, which loses nothing: two histograms of the same tensor, from separate
 * runs or machines, merge exactly by bringing both to the larger width.
 * Memory is O(bins) per tensor whatever the number of samples.
 *
 * The range methods (minmax, percentile, entropy, mse) turn a summary into a
 * clipping range [lo, hi]; calib_qparams turns a range into a scale and zero
 * point for a target format, a row of the format table (src/ir/qformats.def)
 * whose range and symmetry define the grid.
 */
#ifndef OCTET_CALIB_H
#define OCTET_CALIB_H

#include "ir/ir.h"
#include "ir/qformat.h"

/* A power of two.  The entropy method searches the |x| half: 4096 bins, of
 * which the power-of-two width leaves 2048 to 4096 below max |x|, as fine
 * as TensorRT's 2048-bin |x| histogram (with 2048 bins in all, thresholds
 * under 1/4 to 1/8 of max |x| were out of its reach: fewer bins than
 * levels). */
#define CALIB_BINS 8192

typedef struct calib_hist {
    double min, max;        /* exact extremes of the finite values seen */
    uint64_t count;         /* finite values seen */
    uint64_t nonfinite;     /* NaN and +-Inf values seen (not binned) */
    int width_log2;         /* bin width = 2^width_log2; valid if count > 0 */
    uint64_t bins[CALIB_BINS]; /* bin i holds [(i - B/2) w, (i - B/2 + 1) w) */
} calib_hist;

/* Resets to the empty summary. */
void calib_hist_init(calib_hist *h);
/* Adds n float values; non-finite values are only counted. */
void calib_hist_add(calib_hist *h, const float *x, uint64_t n);
/* Adds src into dst exactly (the result is what observing both streams
 * into one histogram would have given). */
void calib_hist_merge(calib_hist *dst, const calib_hist *src);

typedef enum calib_method {
    CALIB_MINMAX,
    CALIB_PERCENTILE,
    CALIB_ENTROPY,
    CALIB_MSE,
} calib_method;

/* The target a range is chosen for: a format of the table.  Symmetric
 * formats get ranges [-a, a]; the entropy and MSE methods measure the
 * error of the format's grid.  The CALIB_ names are the formats the
 * quantizer's families use today. */
typedef ir_qformat calib_target;
#define CALIB_U8_ASYM IR_QF_UINT8     /* uint8 [0, 255] with a zero point */
#define CALIB_S8_SYM IR_QF_INT8       /* int8 [-127, 127], zero point 0 */
#define CALIB_FP8_E4M3 IR_QF_FP8E4M3  /* float8 E4M3FN, absmax / 448 */
#define CALIB_FP8_E5M2 IR_QF_FP8E5M2  /* float8 E5M2, absmax / 57344 */

typedef struct calib_range {
    double lo, hi;    /* lo <= 0 <= hi always (zero must be representable) */
} calib_range;

/* Chooses the clipping range of a summary.  percentile is in (0, 100] and
 * used by CALIB_PERCENTILE only.  An empty summary gives [0, 0]. */
calib_range calib_choose_range(const calib_hist *h, calib_method method,
                               calib_target target, double percentile);

/* Fraction of the observed values that fall outside [lo, hi]. */
double calib_clipped_fraction(const calib_hist *h, calib_range r);

typedef struct calib_qparams {
    float scale;       /* > 0 and finite, always */
    int32_t zero_point;
} calib_qparams;

/* Scale and zero point for a range and target format (qmin, qmax, fmax
 * from the table):
 *   asymmetric integer: scale = (hi - lo) / (qmax - qmin),
 *             zp = qmin + round_half_even(-lo / scale) clamped to
 *             [qmin, qmax] (uint8: / 255, zp in [0, 255]);
 *   symmetric integer: scale = max(|lo|, |hi|) / qmax, zp = 0 (int8: 127);
 *   float:    scale = max(|lo|, |hi|) / fmax (448 or 57344), zp 0.
 * A zero-width range (all-zero or constant tensor) gets scale 1 for an
 * all-zero range, else the scale of [min(0, x), max(0, x)], so the scale is
 * never zero. */
calib_qparams calib_qparams_for(calib_range r, calib_target target);

#endif
