/*
 * octk_dynlen.h: kernels of the ops whose output length depends on the
 * input values (NonZero, NonMaxSuppression, Unique), called from the code
 * lower_dynlen.c generates.  Each writes its output compactly at the
 * length it finds (row-major at that length, not at the bound) and stores
 * that length in *len, or -1 without writing any output when it would
 * exceed `bound`, the elements the caller's buffers hold along the
 * data-dependent axis.  One task, phase 0 (the lengths are a prefix
 * count: the work is not split).  Semantics are the interpreter's
 * (src/ops/shape_detect.c, src/ops/shape_unique.c).
 */
#ifndef OCTET_OCTK_DYNLEN_H
#define OCTET_OCTK_DYNLEN_H

#include <stddef.h>
#include <stdint.h>

/* How elements are compared with zero or each other. */
enum {
    OCTK_DL_SINT = 0, /* signed integer of elem_bytes 1, 2, 4 or 8 */
    OCTK_DL_UINT,     /* unsigned integer or BOOL */
    OCTK_DL_FLOAT,    /* float32 (elem_bytes 4) or float64 (8) */
    OCTK_DL_HALF,     /* a 16-bit float (NonZero only): zero is +-0 */
};

/* NonZero: y is [rank, count] INT64, the coordinates of the non-zero
 * elements of x in row-major order. */
typedef struct octk_nonzero {
    const void *x;
    int64_t *y, *len;
    int64_t numel, bound;
    int32_t rank, kind, elem_bytes;
    int64_t dims[16];
} octk_nonzero;

int64_t octk_nonzero_tasks(const octk_nonzero *p, int phase);
void octk_nonzero_run(const octk_nonzero *p, int phase, int64_t begin, int64_t end);

/* NonMaxSuppression: y is [count, 3] INT64 (batch, class, box).  The
 * scalar inputs are read at run time (NULL: omitted). */
typedef struct octk_nms {
    const float *boxes, *scores, *iou, *score_thr;
    const int64_t *max_out;
    int64_t *y, *len;
    void *work;
    int64_t batches, classes, n, bound;
    int32_t center;
} octk_nms;

size_t octk_nms_work_size(const octk_nms *p);
int64_t octk_nms_tasks(const octk_nms *p, int phase);
void octk_nms_run(const octk_nms *p, int phase, int64_t begin, int64_t end);

/* Unique over n slices of x ([outer, n, inner] elements; no axis: outer
 * and inner 1): y [outer, count, inner], first/counts [count], inverse
 * [n]; any output pointer may be NULL (not produced). */
typedef struct octk_unique {
    const void *x;
    void *y;
    int64_t *first, *inverse, *counts, *len;
    void *work;
    int64_t n, outer, inner, bound;
    int32_t kind, elem_bytes, sorted;
} octk_unique;

size_t octk_unique_work_size(const octk_unique *p);
int64_t octk_unique_tasks(const octk_unique *p, int phase);
void octk_unique_run(const octk_unique *p, int phase, int64_t begin, int64_t end);

#endif
