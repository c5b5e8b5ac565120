/*
 * qformat.c: the table of quantization formats built from qformats.def,
 * with lookups by id, by short name and by element type.  The table is
 * constant data: nothing here allocates or fails.
 */
#include <string.h>

#include "ir/qformat.h"

#define QG_T IR_QG_TENSOR
#define QG_C IR_QG_CHANNEL
#define QG_B IR_QG_BLOCK

static const ir_qformat_traits qformats[IR_QF_COUNT] = {
    [IR_QF_NONE] = {.id = IR_QF_NONE, .name = "none", .dtype = IR_DT_UNDEFINED,
                    .scale_dtype = IR_DT_UNDEFINED, .super_dtype = IR_DT_UNDEFINED},
#define QF(E, NAME, DT, BITS, SIGNED, FLOAT, QMIN, QMAX, FMAX, SYM, GRAN, BLOCK, SDT, \
           LEVELS, OPSET, SUPER, SUPER_DT, SMAX)                                     \
    [IR_QF_##E] = {.id = IR_QF_##E, .name = NAME, .dtype = IR_DT_##DT, .bits = BITS, \
                   .is_signed = SIGNED, .is_float = FLOAT, .qmin = QMIN,             \
                   .qmax = QMAX, .fmax = FMAX, .symmetric = SYM,                     \
                   .granularities = GRAN, .block_size = BLOCK,                       \
                   .scale_dtype = IR_DT_##SDT, .scale_levels = LEVELS,               \
                   .opset = OPSET, .super = SUPER,                                   \
                   .super_dtype = IR_DT_##SUPER_DT, .scale_max = SMAX},
#include "ir/qformats.def"
#undef QF
};

/* A new row changes what every reader of the table may meet: update
 * docs/formats.md and tests/qformat with it. */
_Static_assert(IR_QF_COUNT == 20, "qformats.def changed: update docs/formats.md "
                                  "and tests/qformat/test_qformat.c");

const ir_qformat_traits *ir_qformat_info(int format)
{
    return &qformats[format > IR_QF_NONE && format < IR_QF_COUNT ? format : IR_QF_NONE];
}

ir_qformat ir_qformat_by_name(const char *name)
{
    for (int f = IR_QF_NONE + 1; name && f < IR_QF_COUNT; f++)
        if (!strcmp(qformats[f].name, name))
            return (ir_qformat)f;
    return IR_QF_NONE;
}

ir_qformat ir_qformat_of_dtype(int dtype)
{
    for (int f = IR_QF_NONE + 1; dtype != IR_DT_UNDEFINED && f < IR_QF_COUNT; f++)
        if ((int)qformats[f].dtype == dtype && qformats[f].scale_dtype == IR_DT_FLOAT)
            return (ir_qformat)f;
    return IR_QF_NONE;
}
