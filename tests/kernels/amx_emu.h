/*
 * amx_emu.h: the AMX tile instructions the integer kernels use (LDTILECFG,
 * TILELOADD, TILESTORED, TDPBUSD, TILERELEASE), as C on eight tile
 * registers per thread, written from the pseudo-code of Intel's
 * instruction set reference.  Built into a copy of the kernels
 * (octet_kernels_amxemu: OCTK_AMX_EMULATE, and this file included ahead of
 * every source with -include) so that the AMX paths run, and
 * are tested against the scalar twins, on a CPU without AMX: what it
 * checks is the kernels' addressing, tile shapes, strides and tails; what
 * only a CPU with AMX can check is that these macros say what the
 * hardware does.  A use the hardware faults on (#UD: a tile not
 * configured, shapes that do not chain, a bad configuration) aborts with a
 * message.
 */
#ifndef OCTET_AMX_EMU_H
#define OCTET_AMX_EMU_H

#include <immintrin.h> /* first: its definitions of the macros are replaced below */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct amx_emu_tiles {
    int configured;
    uint16_t colsb[8];
    uint8_t rows[8];
    uint8_t t[8][16][64];
} amx_emu_tiles;

static _Thread_local amx_emu_tiles amx_emu;

static inline void amx_emu_fault(const char *what, int tile)
{
    fprintf(stderr, "amx_emu: #UD: %s (tile %d)\n", what, tile);
    abort();
}

/* LDTILECFG: palette 1, start_row 0, reserved bytes 0; every tile zeroed. */
static inline void amx_emu_loadconfig(const void *cfg)
{
    const uint8_t *c = (const uint8_t *)cfg;
    if (c[0] != 1 || c[1] != 0)
        amx_emu_fault("palette must be 1 and start_row 0", -1);
    for (int i = 2; i < 16; i++)
        if (c[i])
            amx_emu_fault("reserved configuration bytes must be 0", -1);
    memset(&amx_emu, 0, sizeof amx_emu);
    for (int i = 0; i < 8; i++) {
        uint16_t cb;
        memcpy(&cb, c + 16 + 2 * i, 2);
        uint8_t r = c[48 + i];
        if (cb > 64 || r > 16 || (cb == 0) != (r == 0))
            amx_emu_fault("colsb <= 64, rows <= 16, both or neither 0", i);
        amx_emu.colsb[i] = cb;
        amx_emu.rows[i] = r;
    }
    amx_emu.configured = 1;
}

static inline void amx_emu_check(int tile)
{
    if (!amx_emu.configured || tile < 0 || tile > 7 || !amx_emu.rows[tile])
        amx_emu_fault("tile not configured", tile);
}

static inline void amx_emu_loadd(int tile, const void *base, long stride)
{
    amx_emu_check(tile);
    memset(amx_emu.t[tile], 0, sizeof amx_emu.t[tile]);
    for (int r = 0; r < amx_emu.rows[tile]; r++)
        memcpy(amx_emu.t[tile][r], (const uint8_t *)base + r * stride, amx_emu.colsb[tile]);
}

static inline void amx_emu_stored(int tile, void *base, long stride)
{
    amx_emu_check(tile);
    for (int r = 0; r < amx_emu.rows[tile]; r++)
        memcpy((uint8_t *)base + r * stride, amx_emu.t[tile][r], amx_emu.colsb[tile]);
}

static inline void amx_emu_zero(int tile)
{
    amx_emu_check(tile);
    memset(amx_emu.t[tile], 0, sizeof amx_emu.t[tile]);
}

/* TDPBUSD dst, a, b: dst[m].dword[n] += sum over k < a.colsb / 4 and
 * i < 4 of (uint8) a[m].byte[4k + i] * (int8) b[k].byte[4n + i], wrapping;
 * TDPBSUD (a_signed): a signed, b unsigned. */
static inline void amx_emu_dp(int dst, int a, int b, int a_signed)
{
    amx_emu_check(dst);
    amx_emu_check(a);
    amx_emu_check(b);
    if (amx_emu.colsb[a] % 4 || amx_emu.colsb[a] / 4 != amx_emu.rows[b] ||
        amx_emu.colsb[dst] != amx_emu.colsb[b] || amx_emu.rows[dst] != amx_emu.rows[a] ||
        dst == a || dst == b || a == b)
        amx_emu_fault("tdpb*d shapes do not chain", dst);
    for (int m = 0; m < amx_emu.rows[dst]; m++)
        for (int n = 0; n < amx_emu.colsb[dst] / 4; n++) {
            uint32_t acc;
            memcpy(&acc, &amx_emu.t[dst][m][4 * n], 4);
            for (int k = 0; k < amx_emu.colsb[a] / 4; k++)
                for (int i = 0; i < 4; i++) {
                    uint8_t x = amx_emu.t[a][m][4 * k + i], y = amx_emu.t[b][k][4 * n + i];
                    int32_t xv = a_signed ? (int8_t)x : x, yv = a_signed ? y : (int8_t)y;
                    acc += (uint32_t)(xv * yv);
                }
            memcpy(&amx_emu.t[dst][m][4 * n], &acc, 4);
        }
}

static inline void amx_emu_release(void)
{
    memset(&amx_emu, 0, sizeof amx_emu);
}

/* immintrin.h defines these for functions built with AMX enabled */
#undef _tile_loadconfig
#undef _tile_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbusd
#undef _tile_dpbsud
#undef _tile_release
#define _tile_loadconfig(cfg) amx_emu_loadconfig(cfg)
#define _tile_loadd(t, base, stride) amx_emu_loadd((t), (base), (long)(stride))
#define _tile_stored(t, base, stride) amx_emu_stored((t), (base), (long)(stride))
#define _tile_zero(t) amx_emu_zero(t)
#define _tile_dpbusd(d, a, b) amx_emu_dp((d), (a), (b), 0)
#define _tile_dpbsud(d, a, b) amx_emu_dp((d), (a), (b), 1)
#define _tile_release() amx_emu_release()

#endif
