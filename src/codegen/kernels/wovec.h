/*
 * wovec.h: the float vector layer the weight-only MatMul kernels share
 * (wogemm.c for INT4, wofmt.c for the other block formats): one vector wv
 * of WH halves per 16 columns of a panel (AVX-512: one zmm, WH = 1; AVX2:
 * two ymm, WH = 2; C: 16 floats, WH = 16), half h of a 16-column group
 * being p + 8 * h (AVX2) or p[h] (C), and the phase-0 block sums of the
 * activations.  The files add their own code conversions on top.
 */
#ifndef OCTET_WOVEC_H
#define OCTET_WOVEC_H

#include <stdint.h>

#if defined(__AVX512F__) && defined(__AVX2__)
#include <immintrin.h>
#define WO_AVX512 1
#elif defined(__AVX2__)
#include <immintrin.h>
#define WO_AVX2 1
#endif

#define WO_INLINE static inline __attribute__((always_inline))

#if WO_AVX512
typedef __m512 wv;
enum { WH = 1 };
WO_INLINE wv wv_zero(void) { return _mm512_setzero_ps(); }
WO_INLINE wv wv_bcast(float x) { return _mm512_set1_ps(x); }
WO_INLINE wv wv_fma(wv a, wv b, wv c) { return _mm512_fmadd_ps(a, b, c); }
WO_INLINE wv wv_fnma(wv a, wv b, wv c) { return _mm512_fnmadd_ps(a, b, c); }
WO_INLINE wv wv_add(wv a, wv b) { return _mm512_add_ps(a, b); }
WO_INLINE wv wv_mul(wv a, wv b) { return _mm512_mul_ps(a, b); }
WO_INLINE wv wv_loadf(const float *p, int h) { return _mm512_loadu_ps(p); }
/* the first cnt of the 16 columns (cnt > 0) */
WO_INLINE void wv_store(float *y, int h, wv v, int64_t cnt)
{
    if (cnt >= 16)
        _mm512_storeu_ps(y, v);
    else
        _mm512_mask_storeu_ps(y, (__mmask16)((1u << cnt) - 1u), v);
}
#elif WO_AVX2
typedef __m256 wv;
enum { WH = 2 };
WO_INLINE wv wv_zero(void) { return _mm256_setzero_ps(); }
WO_INLINE wv wv_bcast(float x) { return _mm256_set1_ps(x); }
WO_INLINE wv wv_fma(wv a, wv b, wv c) { return _mm256_fmadd_ps(a, b, c); }
WO_INLINE wv wv_fnma(wv a, wv b, wv c) { return _mm256_fnmadd_ps(a, b, c); }
WO_INLINE wv wv_add(wv a, wv b) { return _mm256_add_ps(a, b); }
WO_INLINE wv wv_mul(wv a, wv b) { return _mm256_mul_ps(a, b); }
WO_INLINE wv wv_loadf(const float *p, int h) { return _mm256_loadu_ps(p + 8 * h); }
WO_INLINE void wv_store(float *y, int h, wv v, int64_t cnt)
{
    cnt -= 8 * h;
    if (cnt >= 8) {
        _mm256_storeu_ps(y + 8 * h, v);
    } else if (cnt > 0) {
        __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cnt), idx);
        _mm256_maskstore_ps(y + 8 * h, m, v);
    }
}
#else
typedef float wv;
enum { WH = 16 };
WO_INLINE wv wv_zero(void) { return 0.0f; }
WO_INLINE wv wv_bcast(float x) { return x; }
WO_INLINE wv wv_fma(wv a, wv b, wv c) { return a * b + c; }
WO_INLINE wv wv_fnma(wv a, wv b, wv c) { return c - a * b; }
WO_INLINE wv wv_add(wv a, wv b) { return a + b; }
WO_INLINE wv wv_mul(wv a, wv b) { return a * b; }
WO_INLINE wv wv_loadf(const float *p, int h) { return p[h]; }
WO_INLINE void wv_store(float *y, int h, wv v, int64_t cnt)
{
    if (h < cnt)
        y[h] = v;
}
#endif

/* Phase 0 of the GEMVs: asum[j] = sum of a[0 .. K) over block j of bs. */
static inline void wo_block_sums(const float *a, int64_t K, int64_t bs, float *asum)
{
    for (int64_t j = 0; j * bs < K; j++) {
        float s = 0.0f;
        for (int64_t k = j * bs; k < K && k < (j + 1) * bs; k++)
            s += a[k];
        asum[j] = s;
    }
}

#endif
