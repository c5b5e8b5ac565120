/*
 * dispatch.c: the lowering of each op.  The op -> kernel-family table is
 * built from ops.def (its `kernel` column); a family has a lowering when it
 * is listed in CG_LOWERINGS (codegen.h).  An op whose family has none gets
 * NULL, which the driver reports as OCT_EUNSUPPORTED naming the node.
 */
#include <string.h>

#include "codegen/codegen.h"

static const char *const op_kernel[IR_OP_COUNT] = {
#define OP(e, name, dom, k, mini, maxi, mino, maxo, fl, at) [IR_OP_##e] = #k,
#include "ir/ops.def"
#undef OP
};

static const struct {
    const char *kernel;
    cg_lower_fn fn;
} lowerings[] = {
#define X(k) {#k, cg_lower_##k},
    CG_LOWERINGS(X)
#undef X
};

cg_lower_fn cg_lowering(ir_op op)
{
    if (op <= IR_OP_UNKNOWN || op >= IR_OP_COUNT || !op_kernel[op])
        return NULL;
    for (size_t i = 0; i < sizeof lowerings / sizeof lowerings[0]; i++)
        if (!strcmp(lowerings[i].kernel, op_kernel[op]))
            return lowerings[i].fn;
    return NULL;
}

oct_status cg_data_length_error(oct_ctx *ctx, const ir_node *n, const char *who)
{
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, n, 1, 0,
                     n->n_out > 0 && n->out[0] ? n->out[0]->name : NULL,
                     "%s: the length of %s's output depends on the input values; compiled "
                     "code has static shapes, so this model runs only in the interpreter "
                     "(`octet run` without --jit)", who, n->op_type);
}
