/*
 * tensor_heap.c: runtime tensors, heap-allocated through oct_malloc rather
 * than the arena, so long calibration runs and repeated evaluations do not
 * grow memory.  The interpreter, constant folding and the JIT all allocate
 * their tensors here.
 */
#include <string.h>

#include "ir/ir.h"

/* One oct_malloc block: the ir_tensor header, the dims, then the data, each
 * part rounded up to 64 bytes.  The size is recomputed from rank and nbytes
 * when freeing. */
static size_t round64(uint64_t n) { return (size_t)((n + 63) & ~(uint64_t)63); }

static bool tensor_block_size(int rank, uint64_t nbytes, size_t *size)
{
    uint64_t total = round64(sizeof(ir_tensor)) + round64((uint64_t)rank * 8);
    if (nbytes > UINT64_MAX - 64 || ir_add_overflow_u64(total, round64(nbytes), &total) ||
        total > SIZE_MAX)
        return false;
    *size = (size_t)total;
    return true;
}

ir_tensor *ir_heap_tensor_new(oct_ctx *ctx, ir_dtype dt, int rank, const int64_t *dims)
{
    uint64_t nelems, nbytes;
    size_t size;
    if (rank < 0 || rank > IR_HEAP_MAX_RANK || !ir_dtype_valid(dt)) {
        oct_error(ctx, OCT_EINTERNAL, "runtime tensor of rank %d and dtype %d",
                  rank, (int)dt);
        return NULL;
    }
    if (!ir_shape_elems(rank, dims, &nelems) ||
        nelems > ctx->limits.max_tensor_elems ||
        !ir_dtype_bytes(dt, nelems, &nbytes) || !tensor_block_size(rank, nbytes, &size)) {
        oct_error(ctx, OCT_EINPUT,
                  "tensor too large (more than %llu elements, or size overflow)",
                  (unsigned long long)ctx->limits.max_tensor_elems);
        return NULL;
    }
    uint8_t *block = oct_malloc(ctx, size);
    if (!block)
        return NULL;
    memset(block, 0, size);
    ir_tensor *t = (ir_tensor *)block;
    t->dtype = dt;
    t->rank = rank;
    t->dims = (int64_t *)(block + round64(sizeof(ir_tensor)));
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->data = block + round64(sizeof(ir_tensor)) + round64((uint64_t)rank * 8);
    t->nbytes = nbytes;
    t->nelems = nelems;
    t->storage = IR_STORE_RAW;
    return t;
}

void ir_heap_tensor_free(oct_ctx *ctx, ir_tensor *t)
{
    size_t size = 0;
    if (!t)
        return;
    bool sized = tensor_block_size(t->rank, t->nbytes, &size);
    OCT_ASSERT(sized);
    oct_free(ctx, t, size);
}

