/*
 * qformat.h: the table of quantization formats (qformats.def) and its
 * accessors.  A format is an element type with the facts quantization
 * needs: its representable range, whether it is symmetric by default, the
 * scale shapes it allows, its scale type and levels, and the opset that
 * introduced it.  The quantizer, the interpreter's Q/DQ and the compiler's
 * Q/DQ read these facts here instead of switching on element types.
 */
#ifndef OCTET_QFORMAT_H
#define OCTET_QFORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* Scale granularities a format allows (the granularities column). */
enum {
    IR_QG_TENSOR = 1u << 0, /* one scale for the tensor */
    IR_QG_CHANNEL = 1u << 1, /* one scale per slice along an axis */
    IR_QG_BLOCK = 1u << 2,  /* one scale per block along an axis */
};

typedef enum ir_qformat {
    IR_QF_NONE = 0, /* not quantized (stays float) */
#define QF(E, ...) IR_QF_##E,
#include "ir/qformats.def"
#undef QF
    IR_QF_COUNT
} ir_qformat;

typedef struct ir_qformat_traits {
    ir_qformat id;
    const char *name;      /* "int8", "fp8e4m3", ...; "none" for IR_QF_NONE */
    ir_dtype dtype;        /* element type; UNDEFINED for IR_QF_NONE */
    int bits;
    bool is_signed, is_float;
    int64_t qmin, qmax;    /* integer formats */
    double fmax;           /* float formats: largest finite magnitude */
    bool symmetric;        /* zero point 0 by default */
    unsigned granularities; /* IR_QG_* bits */
    int64_t block_size;    /* default block size, 0 if no blocks */
    ir_dtype scale_dtype;
    int scale_levels;
    int opset;             /* first opset whose Q/DQ accept dtype */
    int64_t super;         /* two levels: scales per second-level scale, 0 all */
    ir_dtype super_dtype;  /* two levels: the second-level scale's type */
    int64_t scale_max;     /* two levels: the largest first-level scale code */
} ir_qformat_traits;

/* Traits of a format; IR_QF_NONE or an id outside the table gets the
 * "none" entry (dtype UNDEFINED, bits 0). */
const ir_qformat_traits *ir_qformat_info(int format);
/* The format of a short name, IR_QF_NONE if none has it. */
ir_qformat ir_qformat_by_name(const char *name);
/* The plain format (one float32 scale level) whose element type is dtype,
 * IR_QF_NONE if none: what a QuantizeLinear/DequantizeLinear of that type
 * is read as.  The block formats of weight-only quantization share element
 * types with plain rows and are never the answer. */
ir_qformat ir_qformat_of_dtype(int dtype);

/* The largest magnitude a symmetric grid maps absmax onto: fmax for float
 * formats, qmax for integer ones (127 for int8: narrow range). */
static inline double ir_qformat_absmax(const ir_qformat_traits *f)
{
    return f->is_float ? f->fmax : (double)f->qmax;
}

#endif
