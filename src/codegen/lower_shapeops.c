/*
 * lower_shapeops.c: Shape, Size, Range and ConstantOfShape when they reach
 * the backend (with static shapes constant folding usually removes them).
 *  - Shape and Size: the compiler knows every dimension, so the node
 *    stores constants (int64; Shape's start/end as ops_shapeof_range
 *    resolves them).
 *  - Range: the output's length is static; start and delta are read at
 *    run time.  Float outputs compute start + i * delta in double, rounded
 *    once to the output type; integers wrap (the interpreter's ref_range).
 *  - ConstantOfShape: the output's shape is static; its elements are the
 *    value attribute's bits (float 0 by default), sub-byte types a
 *    repeated byte (ref_constantofshape).
 *  - Constant (what folding leaves: one whose output is a graph output):
 *    a copy of its value attribute's bytes (ref_constant), STRING excepted.
 */
#include <string.h>

#include "codegen/lower_elem.h"
#include "ops/rules.h"

static oct_status store_i64s(cg_fn *f, const ir_node *n, const int64_t *vals, int count)
{
    cg_tensor *y = cg_out(f, n, 0);
    if (!y || y->dtype != IR_DT_INT64 || (int64_t)y->nelems != count)
        return oct_node_error(f->ctx, OCT_EINPUT, n,
                              "compile: the output must be %d int64 values", count);
    LLVMValueRef py = cg_ptr(f, y);
    for (int k = 0; k < count; k++)
        cg_store(f, f->i64, py, cg_i64c(f, k), cg_i64c(f, vals[k]));
    return OCT_OK;
}

oct_status cg_lower_shapeof(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0);
    if (!x)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Shape needs an input");
    int lo, hi;
    ops_shapeof_range(n, x->rank, &lo, &hi);
    return store_i64s(f, n, x->dims + lo, hi > lo ? hi - lo : 0);
}

oct_status cg_lower_size(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0);
    if (!x)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: Size needs an input");
    int64_t count = (int64_t)x->nelems;
    return store_i64s(f, n, &count, 1);
}

oct_status cg_lower_range(cg_fn *f, const ir_node *n)
{
    cg_tensor *s = cg_in(f, n, 0), *d = cg_in(f, n, 2), *y = cg_out(f, n, 0);
    if (!s || !d || !y || cg_val_class(y->dtype) == CG_V_NONE || s->dtype != y->dtype ||
        d->dtype != y->dtype)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: Range needs start, limit and delta of its output's type");
    LLVMValueRef st = cg_val_load(f, s->dtype, cg_ptr(f, s), cg_i64c(f, 0));
    LLVMValueRef de = cg_val_load(f, d->dtype, cg_ptr(f, d), cg_i64c(f, 0));
    bool is_float = cg_val_class(y->dtype) != CG_V_INT;
    if (is_float) {
        st = cg_val_convert(f, s->dtype, IR_DT_DOUBLE, st);
        de = cg_val_convert(f, d->dtype, IR_DT_DOUBLE, de);
    }
    LLVMValueRef py = cg_ptr(f, y);
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(f, &l, (int64_t)y->nelems), v;
    if (is_float) {
        v = LLVMBuildFAdd(f->b, st,
                          LLVMBuildFMul(f->b, LLVMBuildUIToFP(f->b, i, f->f64, ""), de, ""), "");
        v = cg_val_convert(f, IR_DT_DOUBLE, y->dtype, v);
    } else {
        v = LLVMBuildAdd(f->b, st, LLVMBuildMul(f->b, i, de, ""), "");
    }
    cg_val_store(f, y->dtype, py, i, v, true);
    cg_loop_end(f, &l);
    return OCT_OK;
}

oct_status cg_lower_constantofshape(cg_fn *f, const ir_node *n)
{
    bool bad;
    const ir_tensor *v = ops_fill_value(f->ctx, n, &bad);
    cg_tensor *y = cg_out(f, n, 0);
    if (bad)
        return OCT_EINPUT;
    if (!y)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: ConstantOfShape needs an output");
    if (!y->nbytes)
        return OCT_OK;
    LLVMValueRef py = cg_ptr(f, y);
    unsigned bits = v ? ir_dtype_info(v->dtype)->bits : 32;
    if (v && (cg_val_class(v->dtype) == CG_V_NONE || bits == 0))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n,
                              "compile: ConstantOfShape of %s is not supported",
                              ir_dtype_name(v->dtype));
    if (!v || bits < 8) {
        uint8_t byte = 0;
        if (v) { /* the packed field repeated across every byte */
            unsigned field = ((const uint8_t *)v->data)[0] & ((1u << bits) - 1);
            for (unsigned sh = 0; sh < 8; sh += bits)
                byte |= (uint8_t)(field << sh);
        }
        LLVMBuildMemSet(f->b, py, LLVMConstInt(f->i8, byte, 0),
                        cg_i64c(f, (int64_t)y->nbytes), 1);
        return OCT_OK;
    }
    uint64_t raw = 0;
    memcpy(&raw, v->data, bits / 8); /* little-endian host and target */
    LLVMTypeRef ty = LLVMIntTypeInContext(f->llc, bits);
    cg_loop l;
    LLVMValueRef i = cg_loop_begin(f, &l, (int64_t)y->nelems);
    cg_store(f, ty, py, i, LLVMConstInt(ty, raw, 0));
    cg_loop_end(f, &l);
    return OCT_OK;
}

oct_status cg_lower_constant(cg_fn *f, const ir_node *n)
{
    oct_status st;
    const ir_attr *a = ops_constant_attr(f->ctx, n, &st);
    if (!a)
        return st;
    cg_tensor *y = cg_out(f, n, 0);
    const void *data = NULL;
    uint64_t nbytes = 0;
    bool bytes = true; /* the value is plain bytes (not STRING) */
    switch (a->type) {
    case IR_ATTR_TENSOR:
        bytes = a->t->dtype != IR_DT_STRING;
        data = a->t->data;
        nbytes = a->t->nbytes;
        break;
    case IR_ATTR_FLOAT: data = &a->f; nbytes = sizeof a->f; break;
    case IR_ATTR_FLOATS: data = a->floats; nbytes = a->n * sizeof *a->floats; break;
    case IR_ATTR_INT: data = &a->i; nbytes = sizeof a->i; break;
    case IR_ATTR_INTS: data = a->ints; nbytes = a->n * sizeof *a->ints; break;
    default: bytes = false; break;
    }
    if (!y || !bytes || y->dtype == IR_DT_STRING)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: a STRING Constant "
                              "is not supported");
    if (nbytes != y->nbytes)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: the Constant's value has "
                              "%llu bytes, its output %llu", (unsigned long long)nbytes,
                              (unsigned long long)y->nbytes);
    if (nbytes)
        cg_memcpy(f, cg_ptr(f, y), cg_const_data(f, data, (size_t)nbytes),
                  cg_i64c(f, (int64_t)nbytes));
    return OCT_OK;
}
