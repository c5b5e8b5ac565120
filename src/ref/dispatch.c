/*
 * dispatch.c: the interpreter's kernel table, one entry per op in ops.def
 * built with the X-macro (an op without a kernel is a link error).
 */
#include "ref/dispatch.h"

static const ref_kernel_fn kernel_table[IR_OP_COUNT] = {
#define OP(e, name, dom, k, mini, maxi, mino, maxo, fl, at) [IR_OP_##e] = ref_##k,
#include "ir/ops.def"
#undef OP
};

ref_kernel_fn ref_kernel_of(ir_op op)
{
    return (unsigned)op < IR_OP_COUNT ? kernel_table[op] : NULL;
}
