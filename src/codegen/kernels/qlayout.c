/*
 * qlayout.c: the byte transpose that changes an 8-bit image between NCHW
 * and NHWC where the compiler's layout plan (src/codegen/layout.c) puts a
 * boundary.
 *
 * Tasks own blocks of QT_COLS columns of x (rows of y), so they write
 * disjoint bytes.  Inside a block, 16 x 16 tiles go through registers:
 * four rounds of interleaving vector i with vector i + 8 byte by byte
 * move element (r, c) from vector r, byte c to vector c, byte r (each
 * round rotates the 8 bits of (r, c) left by one).  The edges that do
 * not fill a tile are copied one byte at a time.
 */
#include "qcommon.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { QT_COLS = 64 };

int64_t octk_transpose8_tasks(const octk_transpose8 *p, int phase)
{
    if (phase != 1 || p->R <= 0 || p->S <= 0)
        return 0;
    return qk_div_up(p->S, QT_COLS);
}

#ifdef __SSE2__
static inline void qt_tile16(const uint8_t *x, int64_t ldx, uint8_t *y, int64_t ldy)
{
    __m128i v[16], t[16];
    for (int i = 0; i < 16; i++)
        v[i] = _mm_loadu_si128((const __m128i *)(x + i * ldx));
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 8; i++) {
            t[2 * i] = _mm_unpacklo_epi8(v[i], v[i + 8]);
            t[2 * i + 1] = _mm_unpackhi_epi8(v[i], v[i + 8]);
        }
        for (int i = 0; i < 16; i++)
            v[i] = t[i];
    }
    for (int i = 0; i < 16; i++)
        _mm_storeu_si128((__m128i *)(y + i * ldy), v[i]);
}
#endif

void octk_transpose8_run(const octk_transpose8 *p, int phase, int64_t begin, int64_t end)
{
    if (phase != 1)
        return;
    const uint8_t *x = (const uint8_t *)p->x;
    uint8_t *y = (uint8_t *)p->y;
    const int64_t R = p->R, ldx = p->ldx, ldy = p->ldy;
    for (int64_t t = begin; t < end; t++) {
        int64_t s0 = t * QT_COLS, s1 = qk_min(p->S, s0 + QT_COLS), r = 0, s = s0;
#ifdef __SSE2__
        for (; r + 16 <= R; r += 16)
            for (s = s0; s + 16 <= s1; s += 16)
                qt_tile16(x + r * ldx + s, ldx, y + s * ldy + r, ldy);
        /* the columns of the block after its last full tile, rows [0, r) */
        for (int64_t c = s; c < s1; c++)
            for (int64_t i = 0; i < r; i++)
                y[c * ldy + i] = x[i * ldx + c];
#endif
        /* the rows after the last full tile, every column of the block */
        for (int64_t c = s0; c < s1; c++)
            for (int64_t i = r; i < R; i++)
                y[c * ldy + i] = x[i * ldx + c];
    }
}
