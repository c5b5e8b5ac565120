/*
 * numeric.c: element access and conversions (ops.h, "element access and
 * conversions"), shared by the interpreter and the compiler.  Converts
 * between float32 and the narrow float formats ONNX names (float16, bfloat16, the float8 family,
 * float4 E2M1) exactly as the ONNX spec defines them, and reads or writes
 * element i of a tensor of any numeric dtype, sub-byte packed types included.
 *
 * One generic encoder serves every format with a sign, an exponent and a
 * mantissa (fmt_encode below): the input's magnitude is rounded to the
 * target's mantissa width with round-to-nearest-even, with the exponent
 * unbounded above, and only then compared with the format's largest finite
 * value.  So "[x] > FLT_MAX" in the Cast spec's tables means exactly "the
 * rounded value exceeds the largest finite code".  What happens then depends
 * on the format (see each caller).  FLOAT8E8M0 (a pure power of two) has its
 * own encoder.
 */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

/* ---- bit casts ----------------------------------------------------------- */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- the generic sign/exponent/mantissa format ------------------------ */

/* A binary float format of up to 16 bits: `mbits` explicit mantissa bits,
 * exponent bias `bias`, and codes (without the sign bit) from 0 to
 * `max_code` are finite.  Exponent field 0 is subnormal. */
typedef struct fmt_desc {
    unsigned mbits;
    int bias;
    uint32_t max_code;   /* largest finite magnitude code */
    unsigned sign_shift; /* position of the sign bit */
} fmt_desc;

enum { FMT_OK, FMT_OVERFLOW };

/* Rounds the finite magnitude |f| (sign ignored) to format `d` with round
 * to nearest, ties to even, the exponent unbounded above.  Subnormals of the
 * target are handled by fixing the exponent at the minimum and rounding the
 * scaled significand as an integer; values below half the smallest
 * subnormal become 0 (exactly half rounds to even, i.e. to 0).  Returns
 * FMT_OVERFLOW when the rounded magnitude exceeds d->max_code (then *code is
 * unspecified), else FMT_OK with the magnitude code in *code. */
static int fmt_encode(const fmt_desc *d, float f, uint32_t *code)
{
    uint32_t u = f32_bits(f) & 0x7fffffffu;
    int e32 = (int)(u >> 23);
    uint32_t sig = u & 0x7fffffu;
    if (e32 == 0) {
        e32 = -126;                 /* float32 subnormal: no implicit bit */
    } else {
        sig |= 0x800000u;
        e32 -= 127;
    }
    if (sig == 0) {
        *code = 0;
        return FMT_OK;
    }
    int emin = 1 - d->bias;         /* exponent of the smallest normal */
    int k = e32 > emin ? e32 : emin; /* exponent whose ulp we round to */
    /* |f| = sig * 2^(e32-23); ulp = 2^(k-mbits); n = |f| / ulp. */
    int shift = 23 + k - (int)d->mbits - e32;
    uint64_t n;
    if (shift <= 0) {
        n = (uint64_t)sig << -shift; /* exact; only for mbits > 23 (never) */
    } else if (shift > 25) {
        n = 0;                      /* below a quarter ulp */
    } else {
        uint64_t q = sig >> shift;
        uint64_t rem = sig & ((1ull << shift) - 1);
        uint64_t half = 1ull << (shift - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        n = q;
    }
    /* n < 2^(mbits+1); when k == emin it may be a subnormal count.  The code
     * ((k - emin) << mbits) + n is right for both, and a carry out of the
     * mantissa (n == 2^(mbits+1)) lands in the exponent field by itself. */
    uint64_t full = ((uint64_t)(k - emin) << d->mbits) + n;
    if (k - emin > 1000 || full > d->max_code)
        return FMT_OVERFLOW;
    *code = (uint32_t)full;
    return FMT_OK;
}

/* Value of magnitude code `code` (finite, sign removed) of format d. */
static float fmt_decode(const fmt_desc *d, uint32_t code)
{
    uint32_t exp = code >> d->mbits;
    uint32_t mant = code & ((1u << d->mbits) - 1);
    int emin = 1 - d->bias;
    if (exp == 0)
        return ldexpf((float)mant, emin - (int)d->mbits);
    return ldexpf((float)(mant | (1u << d->mbits)),
                  (int)exp - d->bias - (int)d->mbits);
}

/* ---- float16 and bfloat16 (IEEE-like: Inf and NaN exist) -------------- */

static const fmt_desc f16_desc = {.mbits = 10, .bias = 15, .max_code = 0x7bff,
                                  .sign_shift = 15};
static const fmt_desc bf16_desc = {.mbits = 7, .bias = 127,
                                   .max_code = 0x7f7f, .sign_shift = 15};

/* IEEE half: round to nearest even; overflow (the rounded value above
 * 65504) gives Inf; NaN stays NaN (quiet, sign and top payload bits kept). */
uint16_t ops_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (isnan(f))
        return (uint16_t)(sign | 0x7e00u | ((u >> 13) & 0x3ffu));
    if (isinf(f))
        return sign | 0x7c00u;
    uint32_t code;
    if (fmt_encode(&f16_desc, f, &code) == FMT_OVERFLOW)
        return sign | 0x7c00u;
    return (uint16_t)(sign | code);
}

float ops_f16_to_f32(uint16_t h)
{
    float sign = (h & 0x8000u) ? -1.0f : 1.0f;
    uint32_t mag = h & 0x7fffu;
    if (mag >= 0x7c00u) {
        if (mag == 0x7c00u)
            return sign * INFINITY;
        /* NaN: keep sign and payload */
        return bits_f32(((uint32_t)(h & 0x8000u) << 16) | 0x7fc00000u |
                        ((mag & 0x3ffu) << 13));
    }
    return sign * fmt_decode(&f16_desc, mag);
}

/* bfloat16 is the top half of a float32: round to nearest even on the 16
 * dropped bits; overflow gives Inf; NaN stays NaN (quiet bit forced). */
uint16_t ops_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x0040u);
    if (isinf(f))
        return sign | 0x7f80u;
    uint32_t code;
    if (fmt_encode(&bf16_desc, f, &code) == FMT_OVERFLOW)
        return sign | 0x7f80u;
    return (uint16_t)(sign | code);
}

float ops_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

/* ---- float8 ------------------------------------------------------------ */

/* E4M3FN: bias 7, no Inf, NaN = S.1111.111, max 448 (0x7e).
 * E4M3FNUZ: bias 8, no Inf, no -0, the single NaN is 0x80, max 240.
 * E5M2: bias 15, IEEE-like: Inf = S.11111.00, NaN S.11111.xx, max 57344.
 * E5M2FNUZ: bias 16, no Inf, no -0, NaN 0x80, max 57344. */
static const fmt_desc e4m3fn_desc = {.mbits = 3, .bias = 7, .max_code = 0x7e,
                                     .sign_shift = 7};
static const fmt_desc e4m3fnuz_desc = {.mbits = 3, .bias = 8,
                                       .max_code = 0x7f, .sign_shift = 7};
static const fmt_desc e5m2_desc = {.mbits = 2, .bias = 15, .max_code = 0x7b,
                                   .sign_shift = 7};
static const fmt_desc e5m2fnuz_desc = {.mbits = 2, .bias = 16,
                                       .max_code = 0x7f, .sign_shift = 7};

static const fmt_desc *fp8_desc(ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT8E4M3FN: return &e4m3fn_desc;
    case IR_DT_FLOAT8E4M3FNUZ: return &e4m3fnuz_desc;
    case IR_DT_FLOAT8E5M2: return &e5m2_desc;
    case IR_DT_FLOAT8E5M2FNUZ: return &e5m2fnuz_desc;
    default: return NULL;
    }
}

/* FLOAT8E8M0: an unsigned power of two 2^(code - 127), code 0..254; 0xff is
 * NaN.  No zero, no sign, no Inf.
 * Rounding is the Cast default round_mode "up": the smallest representable
 * power of two >= |x| (the sign is ignored: negative inputs are unspecified
 * by the spec; we use |x|).  0 and everything below 2^-127 give code 0
 * (E8M0_MIN).  With saturate, Inf and values above 2^127 give 0xfe
 * (E8M0_MAX); without it they give NaN.  NaN gives NaN. */
static uint8_t f32_to_e8m0(float f, bool saturate)
{
    uint32_t u = f32_bits(f) & 0x7fffffffu;
    if (isnan(f))
        return 0xff;
    if (isinf(f))
        return saturate ? 0xfe : 0xff;
    uint32_t e = u >> 23, mant = u & 0x7fffffu;
    uint32_t code;
    if (e == 0) {
        /* zero or float32 subnormal: <= 2^-127 -> 2^-127, else 2^-126 */
        code = (u <= 0x00400000u) ? 0 : 1;
    } else {
        code = e + (mant != 0); /* 2^(e-127) exact, or round up */
    }
    if (code > 0xfe)
        return saturate ? 0xfe : 0xff;
    return (uint8_t)code;
}

/* Float32 -> float8 as the ONNX Cast tables define (round to nearest even,
 * "[x]" = x rounded to the target's mantissa width):
 *   saturate:  +-Inf and [x] beyond +-max give +-max (all four formats);
 *   !saturate: E4M3FN: Inf and overflow -> NaN with x's sign (0x7f/0xff);
 *              E5M2: Inf and overflow -> +-Inf;
 *              FNUZ formats: Inf and overflow -> NaN (0x80).
 *   NaN -> NaN (E4M3FN, E5M2 keep the sign; FNUZ: 0x80).
 *   -0 and negative values that round to zero give -0 except in the FNUZ
 *   formats, which have no -0 (0x80 is NaN) and give +0.
 * FLOAT8E8M0: see f32_to_e8m0.  Any other dtype returns 0. */
uint8_t ops_f32_to_fp8(ir_dtype dt, float f, bool saturate)
{
    if (dt == IR_DT_FLOAT8E8M0)
        return f32_to_e8m0(f, saturate);
    const fmt_desc *d = fp8_desc(dt);
    if (!d)
        return 0;
    bool fnuz = dt == IR_DT_FLOAT8E4M3FNUZ || dt == IR_DT_FLOAT8E5M2FNUZ;
    uint8_t sign = (f32_bits(f) >> 24) & 0x80u;
    if (isnan(f))
        return fnuz ? 0x80 : (dt == IR_DT_FLOAT8E5M2 ? (sign | 0x7e)
                                                     : (sign | 0x7f));
    uint32_t code;
    bool over = isinf(f) || fmt_encode(d, f, &code) == FMT_OVERFLOW;
    if (over) {
        if (saturate)
            return (uint8_t)(sign | d->max_code);
        if (fnuz)
            return 0x80;
        if (dt == IR_DT_FLOAT8E5M2)
            return sign | 0x7c;
        return sign | 0x7f; /* E4M3FN: NaN, never Inf */
    }
    if (fnuz && code == 0)
        return 0;
    return (uint8_t)(sign | code);
}

/* Float8 -> float32 is exact.  NaN codes give a quiet NaN (E4M3FN and E5M2
 * keep the sign bit); E5M2 +-Inf gives +-Inf; FNUZ code 0x80 is NaN.
 * FLOAT8E8M0: 2^(code-127), 0xff NaN.  Any other dtype gives NaN. */
float ops_fp8_to_f32(ir_dtype dt, uint8_t bits)
{
    if (dt == IR_DT_FLOAT8E8M0)
        return bits == 0xff ? NAN : ldexpf(1.0f, (int)bits - 127);
    const fmt_desc *d = fp8_desc(dt);
    if (!d)
        return NAN;
    float sign = (bits & 0x80) ? -1.0f : 1.0f;
    uint32_t mag = bits & 0x7fu;
    switch (dt) {
    case IR_DT_FLOAT8E4M3FN:
        if (mag == 0x7f)
            return copysignf(NAN, sign);
        break;
    case IR_DT_FLOAT8E5M2:
        if (mag == 0x7c)
            return sign * INFINITY;
        if (mag > 0x7c)
            return copysignf(NAN, sign);
        break;
    default: /* FNUZ */
        if (bits == 0x80)
            return NAN;
        break;
    }
    return sign * fmt_decode(d, mag);
}

/* ---- float4 E2M1 --------------------------------------------------------- */

/* E2M1: bias 1, values 0, 0.5, 1, 1.5, 2, 3, 4, 6; no Inf, no NaN. */
static const fmt_desc e2m1_desc = {.mbits = 1, .bias = 1, .max_code = 0x7,
                                   .sign_shift = 3};

/* Float32 -> E2M1: round to nearest even within [-6, 6]; beyond, and
 * +-Inf, give +-6; -0 stays -0.  The format has neither Inf nor NaN, so
 * `saturate` changes nothing.  NaN has no code: the ONNX backend test data
 * (test_cast_FLOAT_to_FLOAT4E2M1, made with ml_dtypes) expects +NaN -> 0x8
 * (-0) and -NaN -> 0x0, and this follows that data, the conformance
 * oracle. */
uint8_t ops_f32_to_fp4(float f, bool saturate)
{
    (void)saturate;
    uint8_t sign = (f32_bits(f) >> 28) & 0x8u;
    if (isnan(f))
        return sign ^ 0x8u;
    uint32_t code;
    if (isinf(f) || fmt_encode(&e2m1_desc, f, &code) == FMT_OVERFLOW)
        return sign | 0x7;
    return (uint8_t)(sign | code);
}

/* E2M1 -> float32, exact; only the low 4 bits of `nibble` are used. */
float ops_fp4_to_f32(uint8_t nibble)
{
    float v = fmt_decode(&e2m1_desc, nibble & 0x7u);
    return (nibble & 0x8u) ? -v : v;
}

/* ---- element access -------------------------------------------------------- */

/* Sub-byte packing (ONNX raw_data): 4-bit element i is in byte i/2, low
 * nibble first; 2-bit element i is in byte i/4, bits 2*(i%4) upward. */
static inline unsigned get_bits(const ir_tensor *t, uint64_t i, unsigned width)
{
    const uint8_t *p = t->data;
    unsigned per = 8 / width;
    unsigned shift = (unsigned)(i % per) * width;
    return (p[i / per] >> shift) & ((1u << width) - 1);
}

static inline void set_bits(ir_tensor *t, uint64_t i, unsigned width,
                            unsigned v)
{
    uint8_t *p = t->data;
    unsigned per = 8 / width;
    unsigned shift = (unsigned)(i % per) * width;
    unsigned mask = ((1u << width) - 1) << shift;
    p[i / per] = (uint8_t)((p[i / per] & ~mask) | ((v << shift) & mask));
}

/* Little-endian loads and stores of unaligned fixed-width integers. */
static inline uint64_t load_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned b = 0; b < n; b++)
        v |= (uint64_t)p[b] << (8 * b);
    return v;
}

static inline void store_le(uint8_t *p, unsigned n, uint64_t v)
{
    for (unsigned b = 0; b < n; b++)
        p[b] = (uint8_t)(v >> (8 * b));
}

static inline int64_t sign_extend(uint64_t v, unsigned bits)
{
    uint64_t m = 1ull << (bits - 1);
    v &= (bits == 64) ? ~0ull : ((1ull << bits) - 1);
    return (int64_t)((v ^ m) - m);
}

/* Exact integer view of element i of an integer or bool tensor (BOOL: 0 or
 * 1, any nonzero byte reads as 1).  Float dtypes read through ops_get and
 * truncate toward zero; NaN reads as 0. */
int64_t ops_get_i64(const ir_tensor *t, uint64_t i)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case IR_DT_BOOL: return p[i] != 0;
    case IR_DT_UINT8: return p[i];
    case IR_DT_INT8: return (int8_t)p[i];
    case IR_DT_UINT16: return (int64_t)load_le(p + 2 * i, 2);
    case IR_DT_INT16: return sign_extend(load_le(p + 2 * i, 2), 16);
    case IR_DT_UINT32: return (int64_t)load_le(p + 4 * i, 4);
    case IR_DT_INT32: return sign_extend(load_le(p + 4 * i, 4), 32);
    case IR_DT_UINT64: /* values above INT64_MAX wrap: callers that care
                          use ops_get */
    case IR_DT_INT64: return (int64_t)load_le(p + 8 * i, 8);
    case IR_DT_UINT4: return get_bits(t, i, 4);
    case IR_DT_INT4: return sign_extend(get_bits(t, i, 4), 4);
    case IR_DT_UINT2: return get_bits(t, i, 2);
    case IR_DT_INT2: return sign_extend(get_bits(t, i, 2), 2);
    default: {
        double v = ops_get(t, i);
        if (isnan(v))
            return 0;
        if (v >= 0x1p63)
            return INT64_MAX;
        if (v < -0x1p63)
            return INT64_MIN;
        return (int64_t)v;
    }
    }
}

/* Stores v into element i of an integer or bool tensor: the low bits of v
 * are kept (two's complement wrap, as Cast does between fixed-point types);
 * BOOL stores v != 0.  Float dtypes store (double)v through ops_set. */
void ops_set_i64(ir_tensor *t, uint64_t i, int64_t v)
{
    uint8_t *p = t->data;
    uint64_t u = (uint64_t)v;
    switch (t->dtype) {
    case IR_DT_BOOL: p[i] = v != 0; return;
    case IR_DT_UINT8:
    case IR_DT_INT8: p[i] = (uint8_t)u; return;
    case IR_DT_UINT16:
    case IR_DT_INT16: store_le(p + 2 * i, 2, u); return;
    case IR_DT_UINT32:
    case IR_DT_INT32: store_le(p + 4 * i, 4, u); return;
    case IR_DT_UINT64:
    case IR_DT_INT64: store_le(p + 8 * i, 8, u); return;
    case IR_DT_UINT4:
    case IR_DT_INT4: set_bits(t, i, 4, (unsigned)(u & 0xf)); return;
    case IR_DT_UINT2:
    case IR_DT_INT2: set_bits(t, i, 2, (unsigned)(u & 0x3)); return;
    default: ops_set(t, i, (double)v); return;
    }
}

/* Element i as a double: exact for every float format and for integers up
 * to 2^53; UINT64/INT64 beyond that are rounded to nearest.  Other dtypes
 * (STRING, COMPLEX) read as NaN. */
double ops_get(const ir_tensor *t, uint64_t i)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case IR_DT_FLOAT: return bits_f32((uint32_t)load_le(p + 4 * i, 4));
    case IR_DT_DOUBLE: {
        uint64_t u = load_le(p + 8 * i, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    case IR_DT_FLOAT16: return ops_f16_to_f32((uint16_t)load_le(p + 2 * i, 2));
    case IR_DT_BFLOAT16:
        return ops_bf16_to_f32((uint16_t)load_le(p + 2 * i, 2));
    case IR_DT_FLOAT8E4M3FN:
    case IR_DT_FLOAT8E4M3FNUZ:
    case IR_DT_FLOAT8E5M2:
    case IR_DT_FLOAT8E5M2FNUZ:
    case IR_DT_FLOAT8E8M0: return ops_fp8_to_f32(t->dtype, p[i]);
    case IR_DT_FLOAT4E2M1: return ops_fp4_to_f32((uint8_t)get_bits(t, i, 4));
    case IR_DT_UINT64: return (double)load_le(p + 8 * i, 8);
    case IR_DT_BOOL:
    case IR_DT_UINT8: case IR_DT_INT8: case IR_DT_UINT16: case IR_DT_INT16:
    case IR_DT_UINT32: case IR_DT_INT32: case IR_DT_INT64:
    case IR_DT_UINT4: case IR_DT_INT4: case IR_DT_UINT2: case IR_DT_INT2:
        return (double)ops_get_i64(t, i);
    default: return NAN;
    }
}

/* Stores v into element i.  FLOAT: rounded to nearest float; DOUBLE: as is;
 * FLOAT16/BFLOAT16/float8/float4: rounded first to float (nearest), then to
 * the format with round to nearest even (the double rounding can differ
 * from a direct rounding only for doubles within 2^-29 relative of a tie);
 * float8 saturates (the Cast default).  Integers: v must be an in-range
 * integer value (the caller rounds and saturates); it is truncated toward
 * zero; NaN stores 0.  BOOL stores v != 0.  Other dtypes: no effect. */
void ops_set(ir_tensor *t, uint64_t i, double v)
{
    uint8_t *p = t->data;
    switch (t->dtype) {
    case IR_DT_FLOAT: {
        float f = (float)v;
        store_le(p + 4 * i, 4, f32_bits(f));
        return;
    }
    case IR_DT_DOUBLE: {
        uint64_t u;
        memcpy(&u, &v, sizeof u);
        store_le(p + 8 * i, 8, u);
        return;
    }
    case IR_DT_FLOAT16: store_le(p + 2 * i, 2, ops_f32_to_f16((float)v)); return;
    case IR_DT_BFLOAT16:
        store_le(p + 2 * i, 2, ops_f32_to_bf16((float)v));
        return;
    case IR_DT_FLOAT8E4M3FN:
    case IR_DT_FLOAT8E4M3FNUZ:
    case IR_DT_FLOAT8E5M2:
    case IR_DT_FLOAT8E5M2FNUZ:
    case IR_DT_FLOAT8E8M0:
        p[i] = ops_f32_to_fp8(t->dtype, (float)v, true);
        return;
    case IR_DT_FLOAT4E2M1:
        set_bits(t, i, 4, ops_f32_to_fp4((float)v, true));
        return;
    case IR_DT_BOOL: p[i] = v != 0; return;
    case IR_DT_UINT64:
        if (isnan(v) || v <= 0)
            store_le(p + 8 * i, 8, 0);
        else if (v >= 0x1p64)
            store_le(p + 8 * i, 8, UINT64_MAX);
        else
            store_le(p + 8 * i, 8, (uint64_t)v);
        return;
    case IR_DT_UINT8: case IR_DT_INT8: case IR_DT_UINT16: case IR_DT_INT16:
    case IR_DT_UINT32: case IR_DT_INT32: case IR_DT_INT64:
    case IR_DT_UINT4: case IR_DT_INT4: case IR_DT_UINT2: case IR_DT_INT2: {
        int64_t iv;
        if (isnan(v))
            iv = 0;
        else if (v >= 0x1p63)
            iv = INT64_MAX;
        else if (v < -0x1p63)
            iv = INT64_MIN;
        else
            iv = (int64_t)v;
        ops_set_i64(t, i, iv);
        return;
    }
    default: return;
    }
}
