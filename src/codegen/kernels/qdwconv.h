/*
 * qdwconv.h: what qdwconv.c (packing, dispatch, the s16 paths) and
 * qdwconv_u8.c (the u8 x s8 path for VNNI targets) share.
 */
#ifndef OCTET_QDWCONV_H
#define OCTET_QDWCONV_H

#include "qcommon.h"

enum {
    QD8_BW = 1024,   /* most bytes of a row buffer of the u8 path */
    QD8_SLOTS = 16,  /* row buffers of the u8 path (slot ih mod 16) */
};

/* Bytes of a row buffer of the u8 path: the blocks of 8 output pixels
 * start at multiples of 8 and read columns [ow * SW, ow * SW + 8 + 8 * SW)
 * (qd8_load), within 4 * SW + 16 of the last block's first column. */
static inline int64_t qd8_bw(const octk_conv_shape *s)
{
    return qk_round_up((s->OW - 1) / 8 * 8 * s->SW + 4 * s->SW + 16, 32);
}

/* Whether the shape suits the u8 path (the weights are checked too). */
static inline int qd8_shape_ok(const octk_conv_shape *s)
{
    return s->DW == 1 && (s->SW == 1 || s->SW == 2) && s->KW >= 1 && s->KW <= 8 &&
           s->KH >= 1 && (s->KH - 1) * s->DH < QD8_SLOTS && s->OW > 0 && qd8_bw(s) <= QD8_BW;
}

/* Offsets in a u8 blob: int32 weight sums [C], then quads [C][KH][2][4]. */
static inline int64_t qd8_quads_off(int64_t C) { return QK_HDR + 4 * C; }

/* Whether p's weights take the u8 path (p->w may be NULL at compile time:
 * then the workspace of the other paths is reserved). */
static inline int qd8_packed(const octk_qconv *p)
{
    return p->w && qk_read_hdr(p->w).path == OCTK_PATH_U8S8;
}

/* Phase 1 of the u8 path: channel c, output rows [oh0, oh1). */
void qd8_rows(const octk_qconv *p, int64_t c, int64_t oh0, int64_t oh1);

#endif
