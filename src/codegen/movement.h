/*
 * movement.h: helpers shared by the index-mapping lowerings
 * (lower_movement.c, lower_resize.c): the integer type that moves an
 * element's bytes, the bytes of a constant in a dtype, and the copy of an
 * output through per-axis source tables.
 */
#ifndef OCTET_CODEGEN_MOVEMENT_H
#define OCTET_CODEGEN_MOVEMENT_H

#include "codegen/codegen.h"

/* A per-axis table entry meaning "no source element: the fill value".
 * Sums of up to OPS_MAX_RANK of them with any in-range offsets stay
 * negative. */
#define CG_MOVE_FILL (-((int64_t)1 << 56))

/* The integer type of an element's width (8, 16, 32 or 64 bits), or
 * OCT_EUNSUPPORTED naming node n for other dtypes (sub-byte, strings). */
oct_status cg_move_type(cg_fn *f, const ir_node *n, const cg_tensor *t, LLVMTypeRef *ty);

/* The constant of type ty (from cg_move_type) holding v stored as dtype dt
 * (integers rounded half to even and saturated, floats rounded). */
LLVMValueRef cg_move_const(cg_fn *f, LLVMTypeRef ty, ir_dtype dt, double v);

/* y[i_0, ..., i_r-1] = x[sum_d tab[d][i_d]] over every output index, or
 * `fill` (of the move type; NULL if no entry is CG_MOVE_FILL) where the sum
 * is negative.  tab[d] has y->dims[d] entries, offsets in elements of x.
 * Trailing axes whose tables walk x contiguously become one block copy. */
oct_status cg_copy_by_axis(cg_fn *f, const ir_node *n, const cg_tensor *x,
                           const cg_tensor *y, int64_t *const *tab, LLVMValueRef fill);

#endif
