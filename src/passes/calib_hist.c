/*
 * calib_hist.c: streaming calibration summaries (see calib.h) and the range
 * methods minmax, percentile, entropy (KL divergence) and MSE.
 *
 * Histogram layout: CALIB_BINS bins of width w = 2^width_log2, bin i covering
 * [(i - B/2) w, (i - B/2 + 1) w), so zero sits at the left edge of bin B/2.
 * Doubling w maps old bin i to new bin B/4 + floor(i / 2) exactly (B/2 is
 * even), which is what makes growth and merging lossless.
 */
#include <math.h>
#include <string.h>

#include "passes/calib.h"
#include "ops/ops.h"

#define HALF (CALIB_BINS / 2)
#define HALF_LOG2 12 /* log2(HALF) */
_Static_assert(HALF == 1 << HALF_LOG2, "CALIB_BINS must be 2^(HALF_LOG2+1)");

#define WIDTH_UNSET (-100000) /* no non-zero value seen yet */

void calib_hist_init(calib_hist *h)
{
    memset(h, 0, sizeof *h);
    h->width_log2 = WIDTH_UNSET;
}

/* Doubles the bin width once, pairing adjacent bins. */
static void hist_double(calib_hist *h)
{
    uint64_t merged[CALIB_BINS] = {0};
    for (int i = 0; i < CALIB_BINS; i++)
        merged[HALF / 2 + i / 2] += h->bins[i];
    memcpy(h->bins, merged, sizeof merged);
    h->width_log2++;
}

/* Widens the histogram until |x| < w * HALF for x = absmax. */
static void hist_cover(calib_hist *h, double absmax)
{
    if (absmax == 0)
        return;
    if (h->width_log2 == WIDTH_UNSET) {
        int e;
        frexp(absmax, &e); /* absmax < 2^e */
        h->width_log2 = e - HALF_LOG2;
        return; /* only the zero bin can hold counts, and it does not move */
    }
    while (absmax >= ldexp(HALF, h->width_log2))
        hist_double(h);
}

void calib_hist_add(calib_hist *h, const float *x, uint64_t n)
{
    double lo = INFINITY, hi = -INFINITY;
    uint64_t finite = 0;
    for (uint64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        finite++;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    h->nonfinite += n - finite;
    if (!finite)
        return;
    if (!h->count || lo < h->min)
        h->min = lo;
    if (!h->count || hi > h->max)
        h->max = hi;
    h->count += finite;
    hist_cover(h, fmax(fabs(lo), fabs(hi)));
    if (h->width_log2 == WIDTH_UNSET) { /* all zero so far */
        h->bins[HALF] += finite;
        return;
    }
    /* exact power of two, in double: for tiny (subnormal) data 2^-w is
     * beyond float's range and a float inv_w would be inf */
    double inv_w = ldexp(1.0, -h->width_log2);
    for (uint64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        /* v * 2^-w is exact in double (no overflow: |v| < w * HALF). */
        int64_t idx = (int64_t)floor((double)v * inv_w) + HALF;
        idx = idx < 0 ? 0 : idx >= CALIB_BINS ? CALIB_BINS - 1 : idx;
        h->bins[idx]++;
    }
}

void calib_hist_merge(calib_hist *dst, const calib_hist *src)
{
    if (!src->count) {
        dst->nonfinite += src->nonfinite;
        return;
    }
    calib_hist tmp = *src;
    if (dst->count) {
        double absmax = fmax(fmax(fabs(dst->min), fabs(dst->max)),
                             fmax(fabs(src->min), fabs(src->max)));
        hist_cover(dst, absmax);
        hist_cover(&tmp, absmax);
        /* Both now cover absmax with the smallest width that does, unless
         * one was already wider: bring the narrower one up. */
        while (dst->width_log2 < tmp.width_log2 && dst->width_log2 != WIDTH_UNSET)
            hist_double(dst);
        while (tmp.width_log2 < dst->width_log2 && tmp.width_log2 != WIDTH_UNSET)
            hist_double(&tmp);
        if (dst->width_log2 == WIDTH_UNSET)
            dst->width_log2 = tmp.width_log2;
        dst->min = fmin(dst->min, tmp.min);
        dst->max = fmax(dst->max, tmp.max);
    } else {
        dst->min = tmp.min;
        dst->max = tmp.max;
        dst->width_log2 = tmp.width_log2;
    }
    for (int i = 0; i < CALIB_BINS; i++)
        dst->bins[i] += tmp.bins[i];
    dst->count += tmp.count;
    dst->nonfinite += src->nonfinite;
}

/* ---- helpers over the histogram --------------------------------------- */

static double bin_width(const calib_hist *h)
{
    return h->width_log2 == WIDTH_UNSET ? 0 : ldexp(1.0, h->width_log2);
}

static double bin_left(const calib_hist *h, int i)
{
    return (i - HALF) * bin_width(h);
}

/* Value below which a fraction `frac` of the observed values lie, linear
 * within a bin, clamped to [min, max]. */
static double hist_quantile(const calib_hist *h, double frac)
{
    double target = frac * (double)h->count, seen = 0;
    for (int i = 0; i < CALIB_BINS; i++) {
        double c = (double)h->bins[i];
        if (c > 0 && seen + c >= target) {
            double v = bin_left(h, i) + (target - seen) / c * bin_width(h);
            return fmin(fmax(v, h->min), h->max);
        }
        seen += c;
    }
    return h->max;
}

/* Count of values with |x| in bin k of the folded (absolute) histogram,
 * k in [0, HALF): the union of bins HALF + k and HALF - 1 - k. */
static double abs_bin(const calib_hist *h, int k)
{
    return (double)h->bins[HALF + k] + (double)h->bins[HALF - 1 - k];
}

static double abs_quantile(const calib_hist *h, double frac)
{
    double target = frac * (double)h->count, seen = 0, w = bin_width(h);
    double absmax = fmax(fabs(h->min), fabs(h->max));
    for (int k = 0; k < HALF; k++) {
        double c = abs_bin(h, k);
        if (c > 0 && seen + c >= target)
            return fmin(k * w + (target - seen) / c * w, absmax);
        seen += c;
    }
    return absmax;
}

static calib_range include_zero(double lo, double hi)
{
    calib_range r = {fmin(lo, 0), fmax(hi, 0)};
    return r;
}

static bool is_symmetric(calib_target t) { return ir_qformat_info(t)->symmetric; }

/* ---- entropy: the KL-divergence threshold search --------------------- */

/* The search is TensorRT's entropy calibration (as NVIDIA's
 * pytorch-quantization writes it down).  It works on the histogram of |x|
 * (the folded histogram: HALF bins of width w); a candidate threshold is
 * the edge of bin i, for i from the level count up to the bin holding the
 * largest |x|, and is scored by KL(P || Q):
 *   P  the first i bins, with the count beyond them added to the last;
 *   Q  the first i bins without that count, merged into `levels` groups
 *      and expanded back (each group's mass spread evenly over its
 *      non-empty bins; empty bins stay empty).
 * Where P has mass and Q has none (outliers on an empty edge bin) the
 * divergence is infinite.  The least KL wins, ties to the larger
 * threshold.
 *
 * One departure: a candidate may clip at most ENTROPY_MAX_CLIPPED of the
 * values.  KL compares shapes, not how much is clipped: when the data sits
 * away from zero (a band [0.25, 1.5], or a few hundred values spread over
 * thousands of bins), the candidate whose window holds one non-empty bin
 * has P and Q both a single spike, KL 0, and would clip nearly everything
 * (ultraface-rfb320 had tensors 100% clipped, output SQNR 20 dB).  The
 * thresholds TensorRT's search finds on the bell-shaped activations it was
 * made for clip far less than the cap.
 *
 * The first bin's count is replaced by the second's: exact zeros (all
 * the negatives after a Relu, padding) make a spike there that any merge
 * of bin 0 with its neighbours smears, and scoring that smear would pull
 * the threshold down until a group is one bin wide, clipping much of the
 * real range (mnist-8 lost 28 dB of output SQNR to it).  Zero is exact on
 * every grid, so the spike costs nothing whatever the threshold. */

#define ENTROPY_MAX_CLIPPED 1e-3

/* KL(P || Q) for the first n bins of a, with `outliers` added to P's last
 * bin. */
static double kl_of_quantized(const double *a, int n, double outliers, int levels)
{
    double clipped_mass = 0, sum = 0;
    for (int i = 0; i < n; i++)
        clipped_mass += a[i];
    double p_total = clipped_mass + outliers;
    if (clipped_mass <= 0)
        return INFINITY;
    for (int g = 0; g < levels; g++) {
        int start = (int)((int64_t)g * n / levels);
        int end = (int)((int64_t)(g + 1) * n / levels);
        double mass = 0;
        int nonzero = 0;
        for (int i = start; i < end; i++) {
            mass += a[i];
            nonzero += a[i] > 0;
        }
        for (int i = start; i < end; i++) {
            double p = a[i] + (i == n - 1 ? outliers : 0);
            if (p <= 0)
                continue;
            if (a[i] <= 0)
                return INFINITY;
            sum += p * log(p / (mass / nonzero));
        }
    }
    /* with P = p / p_total and Q = q / clipped_mass */
    return sum / p_total - log(p_total / clipped_mass);
}

/* Levels of the grid on [0, T] for threshold T: `levels` for a symmetric
 * signed grid (128) or an unsigned one over never-negative data (256);
 * for an asymmetric grid over [max(min, -T), T] (neg = -min > 0), the
 * share of its 256 levels that lands on [0, T].  Counting the sign's half
 * of the levels there too (TensorRT's 128, made for symmetric grids)
 * models a grid twice as coarse as the one used, and the search then
 * clips more than it should: HardSwish outputs, whose minimum is -0.375,
 * lost 5 to 9 dB each on ppocr-cls. */
static int grid_levels(int levels, double neg, double t)
{
    if (neg <= 0)
        return levels;
    return (int)floor(256.0 * t / (t + fmin(neg, t)));
}

/* Threshold T on |x| minimizing KL between the clipped histogram of |x|
 * and its quantization onto the grid's levels over [0, T] (grid_levels;
 * neg: the magnitude of the minimum when the grid is asymmetric, else 0).
 * A candidate has at least as many bins as levels, else it would quantize
 * without loss by construction. */
static double entropy_threshold(const calib_hist *h, int levels, double neg)
{
    double a[HALF];
    double absmax = fmax(fabs(h->min), fabs(h->max));
    double w = bin_width(h);
    int last = (int)fmin(HALF, ceil(absmax / w));
    if (last <= grid_levels(levels, neg, last * w))
        return absmax;
    for (int k = 0; k < last; k++)
        a[k] = abs_bin(h, k);
    a[0] = a[1];
    double outliers = 0, best_kl = INFINITY;
    int best = last;
    double max_outliers = ENTROPY_MAX_CLIPPED * (double)h->count;
    for (int i = last; outliers <= max_outliers; i--) {
        int lv = grid_levels(levels, neg, i * w);
        if (i < lv)
            break;
        double kl = kl_of_quantized(a, i, outliers, lv);
        if (kl < best_kl) { /* strict: ties keep the larger threshold */
            best_kl = kl;
            best = i;
        }
        outliers += a[i - 1];
    }
    return fmin(best * w, absmax);
}

/* ---- MSE: the clipping range minimizing expected squared error ------- */

/* x on the target's grid: integer formats round half to even and clamp to
 * [qmin, qmax] (symmetric ones to the narrow [-qmax, qmax]); float8 rounds
 * to nearest even, saturating. */
static double quantize_value(double x, calib_range r, calib_target t)
{
    const ir_qformat_traits *f = ir_qformat_info(t);
    calib_qparams qp = calib_qparams_for(r, t);
    double s = qp.scale;
    if (f->is_float)
        return ops_fp8_to_f32(f->dtype, ops_f32_to_fp8(f->dtype, (float)(x / s), true)) * s;
    if (f->symmetric) {
        double q = fmin(fmax(nearbyint(x / s), (double)-f->qmax), (double)f->qmax);
        return q * s;
    }
    double q = nearbyint(x / s) + qp.zero_point;
    q = fmin(fmax(q, (double)f->qmin), (double)f->qmax);
    return (q - qp.zero_point) * s;
}

/* Squared error of quantizing the histogram's values (taken at bin
 * centres, clamped to the observed extremes) onto range r. */
static double hist_mse(const calib_hist *h, calib_range r, calib_target t)
{
    double w = bin_width(h), err = 0;
    for (int i = 0; i < CALIB_BINS; i++) {
        if (!h->bins[i])
            continue;
        double x = fmin(fmax(bin_left(h, i) + 0.5 * w, h->min), h->max);
        double d = x - quantize_value(x, r, t);
        err += (double)h->bins[i] * d * d;
    }
    return err;
}

static calib_range mse_range(const calib_hist *h, calib_target t)
{
    calib_range full = include_zero(h->min, h->max);
    if (is_symmetric(t)) {
        double a = fmax(-full.lo, full.hi);
        full.lo = -a;
        full.hi = a;
    }
    calib_range best = full;
    double best_err = hist_mse(h, full, t);
    for (int step = 99; step >= 1; step--) {
        double f = step / 100.0;
        calib_range r = {full.lo * f, full.hi * f};
        double e = hist_mse(h, r, t);
        if (e < best_err) {
            best_err = e;
            best = r;
        }
    }
    return best;
}

calib_range calib_choose_range(const calib_hist *h, calib_method method,
                               calib_target target, double percentile)
{
    calib_range r = {0, 0};
    if (!h->count)
        return r;
    bool sym = is_symmetric(target);
    if (h->width_log2 == WIDTH_UNSET || method == CALIB_MINMAX) {
        r = include_zero(h->min, h->max);
    } else if (method == CALIB_PERCENTILE) {
        double p = fmin(fmax(percentile, 0), 100) / 100;
        if (sym) {
            double t = abs_quantile(h, p);
            r = include_zero(-t, t);
        } else {
            r = include_zero(hist_quantile(h, 1 - p), hist_quantile(h, p));
        }
    } else if (method == CALIB_ENTROPY) {
        /* an unsigned grid over never-negative data has all 8 bits of
         * levels; otherwise one goes to the sign */
        bool unsigned_grid = h->min >= 0 && !sym;
        double t = entropy_threshold(h, unsigned_grid ? 256 : 128,
                                     sym || h->min >= 0 ? 0 : -h->min);
        r = sym ? include_zero(-t, t)
                : include_zero(fmax(h->min, -t), fmin(h->max, t));
    } else {
        return mse_range(h, target);
    }
    if (sym) {
        double a = fmax(-r.lo, r.hi);
        r.lo = -a;
        r.hi = a;
    }
    return r;
}

double calib_clipped_fraction(const calib_hist *h, calib_range r)
{
    if (!h->count || h->width_log2 == WIDTH_UNSET)
        return 0;
    double w = bin_width(h), out = 0;
    for (int i = 0; i < CALIB_BINS; i++) {
        if (!h->bins[i])
            continue;
        double left = bin_left(h, i), right = left + w;
        double c = (double)h->bins[i];
        /* The part of the bin outside [lo, hi], assuming a uniform spread
         * over the bin's overlap with [min, max]. */
        double a = fmax(left, h->min), b = fmin(right, h->max);
        if (b <= a) { /* a degenerate bin: all its values at one point */
            out += (a < r.lo || a > r.hi) ? c : 0;
            continue;
        }
        double below = fmax(0, fmin(b, r.lo) - a);
        double above = fmax(0, b - fmax(a, r.hi));
        out += c * (below + above) / (b - a);
    }
    return fmin(out / (double)h->count, 1);
}

calib_qparams calib_qparams_for(calib_range r, calib_target target)
{
    const ir_qformat_traits *f = ir_qformat_info(target);
    calib_qparams qp = {1.0f, 0};
    double lo = fmin(r.lo, 0), hi = fmax(r.hi, 0);
    double absmax = fmax(-lo, hi);
    double scale = f->symmetric ? absmax / ir_qformat_absmax(f)
                                : (hi - lo) / (double)(f->qmax - f->qmin);
    float s = (float)scale;
    if (!(s > 0) || !isfinite(s))
        s = 1.0f; /* all-zero range: any positive scale is exact */
    qp.scale = s;
    if (!f->symmetric) {
        /* round half to even (nearbyint in the default rounding mode) */
        double zp = (double)f->qmin + nearbyint(-lo / s);
        qp.zero_point = (int32_t)fmin(fmax(zp, (double)f->qmin), (double)f->qmax);
    }
    return qp;
}
