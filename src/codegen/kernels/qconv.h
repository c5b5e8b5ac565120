/*
 * qconv.h: what qconv.c (packing, phases, the vector and AMX tiles) and
 * qconv_vnni.c (the AVX-512 VNNI tiles of two panels) share: the virtual
 * pixel grid, where its positions go, and the per-channel add.
 */
#ifndef OCTET_QCONV_H
#define OCTET_QCONV_H

#include "qcommon.h"

/* ---- the virtual pixel grid ----------------------------------------------
 * The im2col row of tap (c, kh, kw) reads x[c][oh*SH - PT + kh*DH]
 * [ow*SW - PL + kw*DW].  Phase 0 splits the padded input (x_zero outside the
 * image) into SH*SW phase planes of Hq x G bytes per channel,
 *   plane[c][ph][pw][i][j] = xpad[c][i*SH + ph][j*SW + pw],
 * so that the tap reads plane (kh*DH % SH, kw*DW % SW) at row oh + kh*DH/SH,
 * column ow + kw*DW/SW.  Numbering pixels on a grid G wide, v = oh*G + ow,
 * every im2col row is then one contiguous run of its plane, starting at
 *   (kh*DH/SH)*G + kw*DW/SW
 * (G = OW + (KW-1)*DW/SW, Hq = OH + (KH-1)*DH/SH: a tap never leaves its
 * plane row for a real pixel).  The G - OW columns v % G >= OW are not
 * pixels: they are computed and never stored.  A convolution without padding
 * and with stride 1 reads x itself as its only plane (G = W, Hq = H). */
typedef struct qc_geo {
    int64_t G, Hq;      /* grid width, plane height */
    int64_t nv, np;     /* grid positions up to the last pixel, their panels */
    int64_t cstride;    /* bytes of one channel's planes */
    int64_t src_len;    /* bytes of all planes (of x when direct) */
    int direct;         /* the planes are x itself */
} qc_geo;

static inline qc_geo qc_geometry(const octk_conv_shape *s)
{
    qc_geo g;
    g.G = s->OW + (s->KW - 1) * s->DW / s->SW;
    g.Hq = s->OH + (s->KH - 1) * s->DH / s->SH;
    g.direct = s->SH == 1 && s->SW == 1 && s->PT == 0 && s->PL == 0 && g.Hq == s->H &&
               g.G == s->W;
    g.cstride = g.direct ? s->H * s->W : s->SH * s->SW * g.Hq * g.G;
    g.src_len = s->C * g.cstride;
    g.nv = (s->OH - 1) * g.G + s->OW;
    g.np = qk_div_up(g.nv, QK_NR);
    return g;
}

/* Offset of tap (kh, kw)'s run inside a channel's planes. */
static inline int64_t qc_tap(const octk_conv_shape *s, const qc_geo *g, int64_t kh, int64_t kw)
{
    int64_t dh = kh * s->DH, dw = kw * s->DW;
    if (s->SH == 1 && s->SW == 1) /* one plane; no divisions */
        return dh * g->G + dw;
    return ((dh % s->SH) * s->SW + dw % s->SW) * g->Hq * g->G + dh / s->SH * g->G + dw / s->SW;
}

static inline int64_t qc_K(const octk_conv_shape *s) { return s->C * s->KH * s->KW; }

/* bytes of the planes in work (none when direct), 64-aligned */
static inline int64_t qc_planes_size(const qc_geo *g)
{
    return g->direct ? 0 : qk_round_up(g->src_len, 64);
}

/* The panels of work after the planes. */
static inline uint8_t *qc_panels_base(const octk_qconv *p, const qc_geo *g)
{
    return (uint8_t *)p->work + qc_planes_size(g);
}

/* Where the grid positions [v0, v0 + nc) of a panel go: runs of seg_len[i]
 * positions from seg_src[i] (relative to v0) to pixel seg_dst[i] (oh*OW +
 * ow); the positions of columns ow >= OW are skipped.  Returns the count
 * (at most nc). */
static inline int qc_segments(const octk_conv_shape *s, const qc_geo *g, int64_t v0, int64_t nc,
                              int *seg_src, int *seg_len, int64_t *seg_dst)
{
    int n = 0;
    int64_t v = v0, end = v0 + nc, oh = v0 / g->G, ow = v0 % g->G;
    while (v < end) {
        if (ow >= s->OW) {
            v += g->G - ow;
            oh++;
            ow = 0;
            continue;
        }
        int64_t len = qk_min(s->OW - ow, end - v);
        seg_src[n] = (int)(v - v0);
        seg_len[n] = (int)len;
        seg_dst[n] = oh * s->OW + ow;
        n++;
        v += len;
        ow += len;
    }
    return n;
}

/* bias[m] - (x_zero [+128]) * rowsum(W[m]) with wrap-around (U8S8), or bias[m] */
static inline int32_t qc_row_add(const octk_qconv *p, const qk_hdr *h, int u8s8, int64_t m)
{
    int32_t add = p->bias ? p->bias[m] : 0;
    if (u8s8) {
        int32_t sm, corr_zero = p->x_zero + (p->x_signed ? 128 : 0);
        memcpy(&sm, (const uint8_t *)p->w + h->sums_off + 4 * m, 4);
        add = (int32_t)((uint32_t)add - (uint32_t)corr_zero * (uint32_t)sm);
    }
    return add;
}

#if QK_MASKED_STORE
enum { QC_PAIR = 2 * QK_NR }; /* positions of a two-panel tile */

/* Panels q and q + 1, both full, against output channels [m0, m1)
 * (qconv_vnni.c). */
void qc_tile_pair(const octk_qconv *p, const qk_hdr *h, const qc_geo *g, int64_t m0, int64_t m1,
                  int64_t q);
#endif

#endif
