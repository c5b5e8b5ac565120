/*
 * sfunc.c: float32 element-wise functions and softmax of the LLVM backend.
 *
 * octk_sunary: y[i] = f(x[i]) over n elements (y may equal x), tasks of
 * SFUNC_CHUNK elements.  exp is sk_exp8/sk_expf of scommon.h (Cephes range
 * reduction + polynomial, overflow to +Inf, gradual underflow to 0, NaN
 * kept); sigmoid = 1 / (1 + exp(-x)) with a true division (exp(-x) = +Inf
 * gives 0, 0 gives 1); tanh: Cephes tanhf, x + x^3 P(x^2) for |x| < 0.625
 * (keeps the sign of 0 and full relative precision near 0), else
 * sign(x) (1 - 2 / (exp(2|x|) + 1)), which is exactly +-1 once exp
 * overflows; hardsigmoid = min(1, max(0, alpha x + beta)), NaN kept.
 *
 * octk_ssoftmax: per row, m = max x, e = exp(x - m), y = e / sum e, or for
 * LogSoftmax y = (x - m) - log(sum e), the sum accumulated in double.
 * -Inf entries give 0 (or -Inf).
 * Tasks of whole rows; each row's sums have an order fixed by cols alone.
 */
#include <math.h>

#include "octk.h"
#include "scommon.h"

enum {
    SFUNC_CHUNK = 4096,   /* elements per unary task */
    SSOFTMAX_TASK = 4096, /* elements per softmax task (whole rows, at least 1) */
};

#define SK_TANH_SMALL 0.625f
#define SK_TANH_P0 (-5.70498872745E-3f)
#define SK_TANH_P1 2.06390887954E-2f
#define SK_TANH_P2 (-5.37397155531E-2f)
#define SK_TANH_P3 1.33314422036E-1f
#define SK_TANH_P4 (-3.33332819422E-1f)

static inline float sk_sigmoidf(float x) { return 1.0f / (1.0f + sk_expf(-x)); }

static inline float sk_tanhf(float x)
{
    const float ax = x < 0 ? -x : x;
    if (ax < SK_TANH_SMALL) {
        const float z = x * x;
        float p = SK_TANH_P0;
        p = p * z + SK_TANH_P1;
        p = p * z + SK_TANH_P2;
        p = p * z + SK_TANH_P3;
        p = p * z + SK_TANH_P4;
        return __builtin_copysignf(p * z * x + x, x);   /* tanh(-0) = -0 */
    }
    const float t = 1.0f - 2.0f / (sk_expf(2.0f * ax) + 1.0f);
    return x < 0 ? -t : t;   /* NaN: t is NaN */
}

/* alpha x + beta rounded once (the double product is exact, then double
 * rounding of the sum, as close as the FMA of the AVX2 path). */
static inline float sk_hardsigmoidf(float x, float alpha, float beta)
{
    return sk_clampf((float)((double)alpha * (double)x + (double)beta), 0.0f, 1.0f);
}

#ifdef __AVX2__
static inline __m256 sk_sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = sk_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

static inline __m256 sk_tanh8(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 ax = _mm256_andnot_ps(sign, x);
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(SK_TANH_P0);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(SK_TANH_P1));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(SK_TANH_P2));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(SK_TANH_P3));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(SK_TANH_P4));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    small = _mm256_or_ps(_mm256_andnot_ps(sign, small), _mm256_and_ps(sign, x));   /* -0 */
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = sk_exp8(_mm256_add_ps(ax, ax));
    __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
    const __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(SK_TANH_SMALL), _CMP_LT_OQ);
    return _mm256_blendv_ps(big, small, is_small);
}

static inline __m256 sk_hardsigmoid8(__m256 x, float alpha, float beta)
{
    const __m256 v = _mm256_fmadd_ps(x, _mm256_set1_ps(alpha), _mm256_set1_ps(beta));
    return sk_clamp8(v, _mm256_setzero_ps(), _mm256_set1_ps(1.0f));
}
#endif

static inline float sk_unary1(int32_t op, float x, float alpha, float beta)
{
    switch (op) {
    case OCTK_EXP: return sk_expf(x);
    case OCTK_SIGMOID: return sk_sigmoidf(x);
    case OCTK_TANH: return sk_tanhf(x);
    default: return sk_hardsigmoidf(x, alpha, beta);
    }
}

size_t octk_sunary_work_size(const octk_sunary *p)
{
    (void)p;
    return 0;
}

int64_t octk_sunary_tasks(const octk_sunary *p, int phase)
{
    return phase == 1 && p->n > 0 ? sk_ceil_div(p->n, SFUNC_CHUNK) : 0;
}

/* Task t: elements [t*SFUNC_CHUNK, (t+1)*SFUNC_CHUNK) clipped to n. */
void octk_sunary_run(const octk_sunary *p, int phase, int64_t begin, int64_t end)
{
    if (phase != 1)
        return;
    const int32_t op = p->op;
    const float alpha = p->alpha, beta = p->beta;
    for (int64_t t = begin; t < end; t++) {
        const int64_t i0 = t * SFUNC_CHUNK, i1 = sk_min64(p->n, i0 + SFUNC_CHUNK);
        const float *x = p->x;
        float *y = p->y;
        int64_t i = i0;
#ifdef __AVX2__
        for (; i + 8 <= i1; i += 8) {
            const __m256 v = _mm256_loadu_ps(x + i);
            __m256 r;
            switch (op) {
            case OCTK_EXP: r = sk_exp8(v); break;
            case OCTK_SIGMOID: r = sk_sigmoid8(v); break;
            case OCTK_TANH: r = sk_tanh8(v); break;
            default: r = sk_hardsigmoid8(v, alpha, beta); break;
            }
            _mm256_storeu_ps(y + i, r);
        }
#endif
        for (; i < i1; i++)
            y[i] = sk_unary1(op, x[i], alpha, beta);
    }
}

/* ---- softmax -------------------------------------------------------------- */

size_t octk_ssoftmax_work_size(const octk_ssoftmax *p)
{
    (void)p;
    return 0;
}

static inline int64_t ssoftmax_rows_per_task(const octk_ssoftmax *p)
{
    return sk_max64(1, SSOFTMAX_TASK / sk_max64(1, p->cols));
}

int64_t octk_ssoftmax_tasks(const octk_ssoftmax *p, int phase)
{
    if (phase != 1 || p->rows <= 0 || p->cols <= 0)
        return 0;
    return sk_ceil_div(p->rows, ssoftmax_rows_per_task(p));
}

static inline float ssoftmax_row_max(const float *x, int64_t n)
{
    int64_t i = 0;
    float m = -INFINITY;
#ifdef __AVX2__
    if (n >= 8) {
        __m256 vm = _mm256_set1_ps(-INFINITY);
        for (; i + 8 <= n; i += 8)
            vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        float lanes[8];
        _mm256_storeu_ps(lanes, vm);
        for (int l = 0; l < 8; l++)
            m = lanes[l] > m ? lanes[l] : m;
    }
#endif
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

/* Sum of exp(x[i] - m), accumulated in double (8 lanes, then the lanes in
 * order, then the tail), rounded once to float; stores the terms into e
 * unless e is NULL. */
static inline float ssoftmax_row_expsum(const float *x, float *e, int64_t n, float m)
{
    int64_t i = 0;
    double sum = 0.0;
#ifdef __AVX2__
    if (n >= 8) {
        const __m256 vmax = _mm256_set1_ps(m);
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        for (; i + 8 <= n; i += 8) {
            const __m256 v = sk_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
            if (e)
                _mm256_storeu_ps(e + i, v);
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
        double lanes[8];
        _mm256_storeu_pd(lanes, s0);
        _mm256_storeu_pd(lanes + 4, s1);
        for (int l = 0; l < 8; l++)
            sum += lanes[l];
    }
#endif
    for (; i < n; i++) {
        const float v = sk_expf(x[i] - m);
        if (e)
            e[i] = v;
        sum += v;
    }
    return (float)sum;
}

/* Task t: rows [t*R, (t+1)*R) clipped, R = max(1, SSOFTMAX_TASK / cols). */
void octk_ssoftmax_run(const octk_ssoftmax *p, int phase, int64_t begin, int64_t end)
{
    if (phase != 1)
        return;
    const int64_t n = p->cols, rpt = ssoftmax_rows_per_task(p);
    for (int64_t t = begin; t < end; t++) {
        const int64_t r1 = sk_min64(p->rows, (t + 1) * rpt);
        for (int64_t r = t * rpt; r < r1; r++) {
            const float *x = p->x + r * n;
            float *y = p->y + r * n;
            const float m = ssoftmax_row_max(x, n);
            if (p->log) {
                const float ls = logf(ssoftmax_row_expsum(x, NULL, n, m));
                for (int64_t i = 0; i < n; i++)
                    y[i] = (x[i] - m) - ls;
            } else {
                const float s = ssoftmax_row_expsum(x, y, n, m);
                for (int64_t i = 0; i < n; i++)
                    y[i] = y[i] / s;
            }
        }
    }
}
