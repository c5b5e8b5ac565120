/*
 * build.c: IR-building helpers shared by every lowering: tensor addresses
 * inside a node function, typed loads and stores, counted loops with
 * loop-carried accumulators, intrinsic and libm calls.
 */
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/codegen_module.h"

cg_tensor *cg_in(cg_fn *f, const ir_node *n, int i)
{
    if (i >= n->n_in || !n->in[i])
        return NULL;
    return &f->tens[n->in[i]->id];
}

cg_tensor *cg_out(cg_fn *f, const ir_node *n, int i)
{
    if (i >= n->n_out || !n->out[i] || !n->out[i]->name[0])
        return NULL;
    return &f->tens[n->out[i]->id];
}

LLVMValueRef cg_i64c(cg_fn *f, int64_t v)
{
    return LLVMConstInt(f->i64, (unsigned long long)v, 1);
}

LLVMValueRef cg_f32c(cg_fn *f, double v)
{
    return LLVMConstReal(f->f32, v);
}

LLVMValueRef cg_ptr(cg_fn *f, const cg_tensor *t)
{
    switch (t->place) {
    case CG_PLACE_INPUT:
    case CG_PLACE_OUTPUT: {
        LLVMValueRef arr = t->place == CG_PLACE_INPUT ? f->arg_in : f->arg_out;
        LLVMValueRef slot = cg_gep(f, f->ptr, arr, cg_i64c(f, t->index));
        return LLVMBuildLoad2(f->b, f->ptr, slot, "");
    }
    case CG_PLACE_SCRATCH:
        if (t->dyn) { /* the run-time region: its offset is in the header */
            LLVMValueRef off = cg_load(f, f->i64, f->arg_scratch,
                                       cg_i64c(f, f->cm_nsyms + t->dyn_slot));
            return cg_gep(f, f->i8, f->arg_scratch, off);
        }
        return cg_gep(f, f->i8, f->arg_scratch, cg_i64c(f, (int64_t)t->offset));
    case CG_PLACE_CONST: {
        /* made on first use, so weights only kernels read (packed) never
         * land in the binary raw */
        cg_tensor *mt = &f->tens[t->value->id];
        const ir_tensor *it = t->value->init;
        if (!f->cm->weights_file) {
            if (!mt->global)
                mt->global = cg_const_data(f, it->data, (size_t)it->nbytes);
            return mt->global;
        }
        if (!mt->stored) { /* the side file holds it once */
            mt->stored = true;
            return cg_weight_data(f, it->data, (size_t)it->nbytes, &mt->offset);
        }
        return cg_weight_at(f, mt->offset);
    }
    case CG_PLACE_NONE:
        break;
    }
    OCT_ASSERT(!"tensor without a place");
    return NULL;
}

LLVMTypeRef cg_elem_type(cg_fn *f, ir_dtype dt)
{
    switch (dt) {
    case IR_DT_FLOAT: return f->f32;
    case IR_DT_DOUBLE: return f->f64;
    case IR_DT_UINT8: case IR_DT_INT8: case IR_DT_BOOL: return f->i8;
    case IR_DT_UINT16: case IR_DT_INT16: return f->i16;
    case IR_DT_INT32: case IR_DT_UINT32: return f->i32;
    case IR_DT_INT64: case IR_DT_UINT64: return f->i64;
    default: return NULL;
    }
}

LLVMValueRef cg_gep(cg_fn *f, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildInBoundsGEP2(f->b, ty, base, &idx, 1, "");
}

LLVMValueRef cg_load(cg_fn *f, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildLoad2(f->b, ty, cg_gep(f, ty, base, idx), "");
}

void cg_store(cg_fn *f, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx,
              LLVMValueRef v)
{
    LLVMBuildStore(f->b, v, cg_gep(f, ty, base, idx));
}

LLVMValueRef cg_load_as_f32(cg_fn *f, const cg_tensor *t, LLVMValueRef base,
                            LLVMValueRef idx)
{
    LLVMTypeRef ty = cg_elem_type(f, t->dtype);
    LLVMValueRef v = cg_load(f, ty, base, idx);
    switch (ir_dtype_info(t->dtype)->kind) {
    case IR_DK_FLOAT:
        return t->dtype == IR_DT_FLOAT ? v : LLVMBuildFPTrunc(f->b, v, f->f32, "");
    case IR_DK_SINT:
        return LLVMBuildSIToFP(f->b, v, f->f32, "");
    default:
        return LLVMBuildUIToFP(f->b, v, f->f32, "");
    }
}

LLVMValueRef cg_fast(LLVMValueRef inst)
{
    if (LLVMCanValueUseFastMathFlags(inst))
        LLVMSetFastMathFlags(inst, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    return inst;
}

LLVMValueRef cg_intrinsic(cg_fn *f, const char *name, LLVMTypeRef ty,
                          LLVMValueRef *args, unsigned n_args)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    OCT_ASSERT(id != 0);
    LLVMValueRef decl = LLVMGetIntrinsicDeclaration(f->mod, id, &ty, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(f->llc, id, &ty, 1);
    return LLVMBuildCall2(f->b, fty, decl, args, n_args, "");
}

LLVMValueRef cg_libm_f32(cg_fn *f, const char *name, LLVMValueRef x)
{
    LLVMTypeRef fty = LLVMFunctionType(f->f32, &f->f32, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, name);
    if (!fn)
        fn = LLVMAddFunction(f->mod, name, fty);
    return LLVMBuildCall2(f->b, fty, fn, &x, 1, "");
}

LLVMValueRef cg_add(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildNSWAdd(f->b, a, b, "");
}

LLVMValueRef cg_mul(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildNSWMul(f->b, a, b, "");
}

/* a * k + b */
LLVMValueRef cg_madd(cg_fn *f, LLVMValueRef a, int64_t k, LLVMValueRef b)
{
    return cg_add(f, cg_mul(f, a, cg_i64c(f, k)), b);
}

void cg_memcpy(cg_fn *f, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef bytes)
{
    LLVMBuildMemCpy(f->b, dst, 1, src, 1, bytes);
}

LLVMValueRef cg_loop_begin(cg_fn *f, cg_loop *l, int64_t n)
{
    return cg_loop_begin_v(f, l, cg_i64c(f, n));
}

LLVMValueRef cg_loop_begin_v(cg_fn *f, cg_loop *l, LLVMValueRef n)
{
    l->pre = LLVMGetInsertBlock(f->b);
    l->header = LLVMAppendBasicBlockInContext(f->llc, f->fn, "loop");
    l->body = LLVMAppendBasicBlockInContext(f->llc, f->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(f->llc, f->fn, "exit");
    l->n = n;
    LLVMBuildBr(f->b, l->header);
    LLVMPositionBuilderAtEnd(f->b, l->header);
    l->iv = LLVMBuildPhi(f->b, f->i64, "i");
    LLVMValueRef zero = cg_i64c(f, 0);
    LLVMAddIncoming(l->iv, &zero, &l->pre, 1);
    LLVMValueRef more = LLVMBuildICmp(f->b, LLVMIntSLT, l->iv, l->n, "");
    LLVMBuildCondBr(f->b, more, l->body, l->exit);
    LLVMPositionBuilderAtEnd(f->b, l->body);
    return l->iv;
}

void cg_loop_end(cg_fn *f, cg_loop *l)
{
    LLVMValueRef next = LLVMBuildNSWAdd(f->b, l->iv, cg_i64c(f, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(f->b);
    LLVMBuildBr(f->b, l->header);
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(f->b, l->exit);
}

LLVMBasicBlockRef cg_if_begin(cg_fn *f, LLVMValueRef cond)
{
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(f->llc, f->fn, "then");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(f->llc, f->fn, "endif");
    LLVMBuildCondBr(f->b, cond, then, after);
    LLVMPositionBuilderAtEnd(f->b, then);
    return after;
}

void cg_if_end(cg_fn *f, LLVMBasicBlockRef after)
{
    LLVMBuildBr(f->b, after);
    LLVMPositionBuilderAtEnd(f->b, after);
}

LLVMBasicBlockRef cg_if_inside(cg_fn *f, LLVMValueRef v, int64_t limit)
{
    return cg_if_begin(f, LLVMBuildICmp(f->b, LLVMIntULT, v, cg_i64c(f, limit), ""));
}

LLVMValueRef cg_acc_begin(cg_fn *f, cg_loop *l, cg_acc *a, LLVMValueRef init)
{
    /* the phi lives in the header, before the induction compare */
    LLVMBasicBlockRef here = LLVMGetInsertBlock(f->b);
    LLVMValueRef first = LLVMGetFirstInstruction(l->header);
    LLVMPositionBuilderBefore(f->b, LLVMGetNextInstruction(first));
    a->phi = LLVMBuildPhi(f->b, LLVMTypeOf(init), "acc");
    LLVMAddIncoming(a->phi, &init, &l->pre, 1);
    LLVMPositionBuilderAtEnd(f->b, here);
    return a->phi;
}

void cg_acc_end(cg_fn *f, cg_acc *a, LLVMValueRef next)
{
    a->next = next;
    a->from = LLVMGetInsertBlock(f->b);
    LLVMAddIncoming(a->phi, &a->next, &a->from, 1);
}

LLVMValueRef cg_acc_result(cg_fn *f, cg_loop *l, cg_acc *a, LLVMValueRef init)
{
    (void)f;
    (void)l;
    (void)init;
    /* the exit is reached from the header only, where phi is current */
    return a->phi;
}

void cg_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= dims[d];
    }
}

oct_status cg_need_f32(cg_fn *f, const ir_node *n, const cg_tensor *t, int io_is_out,
                       int index)
{
    if (!t || t->dtype == IR_DT_FLOAT)
        return OCT_OK;
    return oct_diagf(f->ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, n, io_is_out, index,
                     t->value->name, "compile: %s %s is not supported yet (float32 only)",
                     n->op_type, ir_dtype_name(t->dtype));
}

void cg_nest_begin(cg_fn *f, cg_nest *ns, int rank, const int64_t *dims, int n_ops,
                   const int64_t (*strides)[OPS_MAX_RANK], LLVMValueRef *offs)
{
    LLVMValueRef ivs[OPS_MAX_RANK];
    ns->rank = rank;
    for (int d = 0; d < rank; d++)
        ivs[d] = cg_loop_begin(f, &ns->loops[d], dims[d]);
    for (int k = 0; k < n_ops; k++) {
        LLVMValueRef o = cg_i64c(f, 0);
        for (int d = 0; d < rank; d++)
            if (strides[k][d])
                o = cg_madd(f, ivs[d], strides[k][d], o);
        offs[k] = o;
    }
}

void cg_nest_begin_v(cg_fn *f, cg_nest *ns, int rank, const LLVMValueRef *dims, int n_ops,
                     LLVMValueRef (*strides)[OPS_MAX_RANK], LLVMValueRef *offs)
{
    LLVMValueRef ivs[OPS_MAX_RANK];
    ns->rank = rank;
    for (int d = 0; d < rank; d++)
        ivs[d] = cg_loop_begin_v(f, &ns->loops[d], dims[d]);
    for (int k = 0; k < n_ops; k++) {
        LLVMValueRef o = cg_i64c(f, 0);
        for (int d = 0; d < rank; d++)
            if (strides[k][d])
                o = cg_add(f, cg_mul(f, ivs[d], strides[k][d]), o);
        offs[k] = o;
    }
}

/* ---- run-time sizes (symdims.h) ------------------------------------------ */

LLVMValueRef cg_dim(cg_fn *f, const cg_tensor *t, int d)
{
    if (!t->dyn || t->sym[d] < 0)
        return cg_i64c(f, t->dims[d]);
    return cg_load(f, f->i64, f->arg_scratch, cg_i64c(f, t->sym[d])); /* scratch header */
}

LLVMValueRef cg_nelems_v(cg_fn *f, const cg_tensor *t)
{
    if (!t->dyn)
        return cg_i64c(f, (int64_t)t->nelems);
    LLVMValueRef n = cg_i64c(f, 1);
    for (int d = 0; d < t->rank; d++)
        n = cg_mul(f, n, cg_dim(f, t, d));
    return n;
}

void cg_strides_v(cg_fn *f, const cg_tensor *t, LLVMValueRef *strides)
{
    LLVMValueRef s = cg_i64c(f, 1);
    for (int d = t->rank - 1; d >= 0; d--) {
        strides[d] = s;
        s = cg_mul(f, s, cg_dim(f, t, d));
    }
}

void cg_bcast_strides_v(cg_fn *f, const cg_tensor *x, int ro, LLVMValueRef *strides)
{
    LLVMValueRef s = cg_i64c(f, 1);
    for (int d = ro - 1; d >= 0; d--) {
        int di = d - (ro - x->rank);
        /* a symbolic dim is never 1 (probes are larger): it is not broadcast */
        bool bcast = di < 0 || ((!x->dyn || x->sym[di] < 0) && x->dims[di] == 1);
        strides[d] = bcast ? cg_i64c(f, 0) : s;
        if (di >= 0)
            s = cg_mul(f, s, cg_dim(f, x, di));
    }
}

void cg_nest_end(cg_fn *f, cg_nest *ns)
{
    for (int d = ns->rank - 1; d >= 0; d--)
        cg_loop_end(f, &ns->loops[d]);
}

void cg_bcast_strides(int ri, const int64_t *idims, int ro, int64_t *strides)
{
    int64_t s = 1;
    for (int d = ro - 1; d >= 0; d--) {
        int di = d - (ro - ri);
        if (di < 0) {
            strides[d] = 0;
            continue;
        }
        strides[d] = idims[di] == 1 ? 0 : s;
        s *= idims[di];
    }
}

/* The output columns ow with 0 <= ow*s - p + k*d < in: [*lo, *hi). */
void cg_valid_range(int64_t in, int64_t out, int64_t s, int64_t p, int64_t kd,
                        int64_t *lo, int64_t *hi)
{
    int64_t a = p - kd; /* need ow*s >= a */
    int64_t l = a <= 0 ? 0 : (a + s - 1) / s;
    int64_t b = in + p - kd; /* need ow*s < b */
    int64_t h = b <= 0 ? 0 : (b + s - 1) / s;
    if (h > out)
        h = out;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}
