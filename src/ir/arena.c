/*
 * arena.c: bump allocation for IR objects.  Blocks come from oct_malloc (so
 * they are counted and can be made to fail); a request larger than a quarter
 * block gets a block of its own, so big tensors waste nothing.  Memory is
 * zero-filled and 16-byte aligned, and all of it goes at once with the
 * context.
 */
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

#define ARENA_BLOCK (64u * 1024u)
#define ARENA_ALIGN 16u

struct ir_arena_block {
    ir_arena_block *next;
    size_t size, used;            /* bytes of data[] */
    _Alignas(16) unsigned char data[];
};

static ir_arena_block *new_block(oct_ctx *ctx, size_t size)
{
    ir_arena_block *b = oct_malloc(ctx, sizeof *b + size);
    if (!b)
        return NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void *ir_alloc(oct_ctx *ctx, size_t size)
{
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < size) {
        oct_error(ctx, OCT_EINPUT, "allocation of %zu bytes overflows", size);
        return NULL;
    }
    ir_arena_block *head = ctx->arena.head;
    if (need > ARENA_BLOCK / 4) {
        /* Own block, linked behind the head so the head keeps filling. */
        ir_arena_block *b = new_block(ctx, need);
        if (!b)
            return NULL;
        b->used = need;
        if (head) {
            b->next = head->next;
            head->next = b;
        } else {
            b->next = NULL;
            ctx->arena.head = b;
        }
        memset(b->data, 0, need);
        return b->data;
    }
    if (!head || head->size - head->used < need) {
        ir_arena_block *b = new_block(ctx, ARENA_BLOCK);
        if (!b)
            return NULL;
        b->next = head;
        ctx->arena.head = head = b;
    }
    void *p = head->data + head->used;
    head->used += need;
    memset(p, 0, need);
    return p;
}

void *ir_alloc_array(oct_ctx *ctx, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        oct_error(ctx, OCT_EINPUT, "allocation of %zu x %zu bytes overflows",
                  count, size);
        return NULL;
    }
    return ir_alloc(ctx, total);
}

char *ir_strndup(oct_ctx *ctx, const char *s, size_t len)
{
    char *p = ir_alloc(ctx, len + 1);
    if (p && len)
        memcpy(p, s, len);
    return p;
}

char *ir_strdup(oct_ctx *ctx, const char *s)
{
    return ir_strndup(ctx, s ? s : "", s ? strlen(s) : 0);
}

char *ir_sprintf(oct_ctx *ctx, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n < 0 ? NULL : ir_alloc(ctx, (size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void ir_arena_release(oct_ctx *ctx)
{
    ir_arena_block *b = ctx->arena.head;
    while (b) {
        ir_arena_block *next = b->next;
        oct_free(ctx, b, sizeof *b + b->size);
        b = next;
    }
    ctx->arena.head = NULL;
}
