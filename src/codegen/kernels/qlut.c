/*
 * qlut.c: y[i] = table[x[i]] on bytes.
 *
 * An element-wise run whose only varying input is one 8-bit tensor and
 * whose stored outputs are 8-bit (a HardSwish between DequantizeLinear and
 * QuantizeLinear, a requantization) is a function of one byte: the
 * generated code evaluates the run on the 256 byte values into a table,
 * with the run's own instructions (so the bits are the run's), and this
 * kernel maps the tensor through it, as ONNX Runtime's QLinearLookupTable
 * does.  The vector paths split the byte into nibbles: the high nibble
 * picks one of 16 sixteen-byte rows, the low one indexes it (vpshufb).
 */
#include "qcommon.h"

enum { LUT_TASK = 1 << 15 }; /* bytes per task */

int64_t octk_lut8_tasks(const octk_lut8 *p, int phase)
{
    return phase == 0 && p->n > 0 ? qk_div_up(p->n, LUT_TASK) : 0;
}

void octk_lut8_run(const octk_lut8 *p, int phase, int64_t begin, int64_t end)
{
    (void)phase;
    const uint8_t *t = p->table, *x = p->x;
    uint8_t *y = p->y;
    int64_t i = begin * LUT_TASK, stop = qk_min(end * LUT_TASK, p->n);
#if defined(__AVX512BW__)
    __m512i row[16];
    for (int h = 0; h < 16; h++)
        row[h] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(t + 16 * h)));
    const __m512i nib = _mm512_set1_epi8(0x0f);
    for (; i + 64 <= stop; i += 64) {
        __m512i v = _mm512_loadu_si512(x + i);
        __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        __m512i r = _mm512_setzero_si512();
        for (int h = 0; h < 16; h++)
            r = _mm512_mask_shuffle_epi8(r, _mm512_cmpeq_epi8_mask(hi, _mm512_set1_epi8((char)h)),
                                         row[h], lo);
        _mm512_storeu_si512(y + i, r);
    }
#elif defined(__AVX2__)
    __m256i row[16];
    for (int h = 0; h < 16; h++)
        row[h] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t + 16 * h)));
    const __m256i nib = _mm256_set1_epi8(0x0f);
    for (; i + 32 <= stop; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
        __m256i r = _mm256_setzero_si256();
        for (int h = 0; h < 16; h++)
            r = _mm256_blendv_epi8(r, _mm256_shuffle_epi8(row[h], lo),
                                   _mm256_cmpeq_epi8(hi, _mm256_set1_epi8((char)h)));
        _mm256_storeu_si256((__m256i *)(y + i), r);
    }
#endif
    for (; i < stop; i++)
        y[i] = t[x[i]];
}
