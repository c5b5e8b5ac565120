/*
 * dynlen.c: NonZero, NonMaxSuppression and Unique for compiled code
 * (octk_dynlen.h).  The selection rules are the interpreter's; the code is
 * the kernel library's (no allocation: NMS and Unique work in p->work).
 */
#include <string.h>

#include "octk_dynlen.h"

/* ---- elements ------------------------------------------------------------ */

static int64_t load_i64(const void *x, int64_t i, int bytes)
{
    switch (bytes) {
    case 1: return ((const int8_t *)x)[i];
    case 2: return ((const int16_t *)x)[i];
    case 4: return ((const int32_t *)x)[i];
    default: return ((const int64_t *)x)[i];
    }
}

static uint64_t load_u64(const void *x, int64_t i, int bytes)
{
    switch (bytes) {
    case 1: return ((const uint8_t *)x)[i];
    case 2: return ((const uint16_t *)x)[i];
    case 4: return ((const uint32_t *)x)[i];
    default: return ((const uint64_t *)x)[i];
    }
}

static double load_f(const void *x, int64_t i, int bytes)
{
    return bytes == 4 ? (double)((const float *)x)[i] : ((const double *)x)[i];
}

/* ---- NonZero ------------------------------------------------------------- */

static int nonzero_at(const octk_nonzero *p, int64_t i)
{
    switch (p->kind) {
    case OCTK_DL_FLOAT:
        return load_f(p->x, i, p->elem_bytes) != 0; /* NaN counts, -0 does not */
    case OCTK_DL_HALF:
        return (((const uint16_t *)p->x)[i] & 0x7fff) != 0;
    default: {
        const uint8_t *b = (const uint8_t *)p->x + i * p->elem_bytes;
        for (int k = 0; k < p->elem_bytes; k++)
            if (b[k])
                return 1;
        return 0;
    }
    }
}

int64_t octk_nonzero_tasks(const octk_nonzero *p, int phase)
{
    (void)p;
    return phase == 0;
}

void octk_nonzero_run(const octk_nonzero *p, int phase, int64_t begin, int64_t end)
{
    (void)phase, (void)begin, (void)end;
    int64_t count = 0;
    for (int64_t i = 0; i < p->numel; i++)
        count += nonzero_at(p, i);
    if (count > p->bound) {
        *p->len = -1;
        return;
    }
    int64_t coord[16] = {0}, k = 0;
    for (int64_t i = 0; i < p->numel; i++) {
        if (nonzero_at(p, i)) {
            for (int d = 0; d < p->rank; d++)
                p->y[d * count + k] = coord[d];
            k++;
        }
        for (int d = p->rank - 1; d >= 0; d--) { /* the next coordinate */
            if (++coord[d] < p->dims[d])
                break;
            coord[d] = 0;
        }
    }
    *p->len = count;
}

/* ---- NonMaxSuppression --------------------------------------------------- */

typedef struct nms_cand {
    float score;
    int64_t idx;
} nms_cand;

size_t octk_nms_work_size(const octk_nms *p)
{
    return (size_t)(p->n > 0 ? p->n : 1) * (2 * sizeof(nms_cand) + sizeof(int64_t));
}

int64_t octk_nms_tasks(const octk_nms *p, int phase)
{
    (void)p;
    return phase == 0;
}

/* Stable merge sort, highest score first: candidates come in index order,
 * so ties keep the lower index first (the interpreter's order). */
static void sort_cands(nms_cand *a, nms_cand *tmp, int64_t m)
{
    for (int64_t w = 1; w < m; w *= 2) {
        for (int64_t lo = 0; lo < m; lo += 2 * w) {
            int64_t mid = lo + w < m ? lo + w : m, hi = lo + 2 * w < m ? lo + 2 * w : m;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = a[j].score > a[i].score ? a[j++] : a[i++];
            while (i < mid)
                tmp[k++] = a[i++];
            while (j < hi)
                tmp[k++] = a[j++];
        }
        memcpy(a, tmp, (size_t)m * sizeof *a);
    }
}

static void extent(const float *b, int center, float *lo0, float *hi0, float *lo1, float *hi1)
{
    if (center) { /* x, y, w, h */
        *lo0 = b[0] - b[2] / 2;
        *hi0 = b[0] + b[2] / 2;
        *lo1 = b[1] - b[3] / 2;
        *hi1 = b[1] + b[3] / 2;
    } else { /* y1, x1, y2, x2 in either order */
        *lo0 = b[1] < b[3] ? b[1] : b[3];
        *hi0 = b[1] < b[3] ? b[3] : b[1];
        *lo1 = b[0] < b[2] ? b[0] : b[2];
        *hi1 = b[0] < b[2] ? b[2] : b[0];
    }
}

static int suppresses(const float *a, const float *b, int center, float thr)
{
    float ax0, ax1, ay0, ay1, bx0, bx1, by0, by1;
    extent(a, center, &ax0, &ax1, &ay0, &ay1);
    extent(b, center, &bx0, &bx1, &by0, &by1);
    float ix0 = ax0 > bx0 ? ax0 : bx0, ix1 = ax1 < bx1 ? ax1 : bx1;
    if (ix1 <= ix0)
        return 0;
    float iy0 = ay0 > by0 ? ay0 : by0, iy1 = ay1 < by1 ? ay1 : by1;
    if (iy1 <= iy0)
        return 0;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    float area_a = (ax1 - ax0) * (ay1 - ay0), area_b = (bx1 - bx0) * (by1 - by0);
    float uni = area_a + area_b - inter;
    if (inter <= 0 || area_a <= 0 || area_b <= 0 || uni <= 0)
        return 0;
    return inter / uni > thr;
}

void octk_nms_run(const octk_nms *p, int phase, int64_t begin, int64_t end)
{
    (void)phase, (void)begin, (void)end;
    int64_t n = p->n, count = 0;
    int64_t max_out = p->max_out ? *p->max_out : 0;
    float iou = p->iou ? *p->iou : 0.0f;
    nms_cand *cand = p->work, *tmp = cand + (n > 0 ? n : 1);
    int64_t *kept = (int64_t *)(tmp + (n > 0 ? n : 1));
    for (int64_t b = 0; b < p->batches && max_out > 0; b++) {
        const float *boxes = p->boxes + b * n * 4;
        for (int64_t c = 0; c < p->classes; c++) {
            const float *scores = p->scores + (b * p->classes + c) * n;
            int64_t m = 0, n_kept = 0;
            for (int64_t i = 0; i < n; i++)
                if (!p->score_thr || scores[i] > *p->score_thr)
                    cand[m++] = (nms_cand){scores[i], i};
            sort_cands(cand, tmp, m);
            for (int64_t k = 0; k < m && n_kept < max_out; k++) {
                int keep = 1;
                for (int64_t j = 0; j < n_kept && keep; j++)
                    keep = !suppresses(&boxes[4 * cand[k].idx], &boxes[4 * kept[j]], p->center,
                                       iou);
                if (!keep)
                    continue;
                if (count == p->bound) { /* one more would not fit */
                    *p->len = -1;
                    return;
                }
                kept[n_kept++] = cand[k].idx;
                p->y[3 * count] = b;
                p->y[3 * count + 1] = c;
                p->y[3 * count + 2] = cand[k].idx;
                count++;
            }
        }
    }
    *p->len = count;
}

/* ---- Unique -------------------------------------------------------------- */

size_t octk_unique_work_size(const octk_unique *p)
{
    return (size_t)(p->n > 0 ? p->n : 1) * 5 * sizeof(int64_t);
}

int64_t octk_unique_tasks(const octk_unique *p, int phase)
{
    (void)p;
    return phase == 0;
}

/* <0, 0, >0 as slice a sorts before, equals, after slice b: element by
 * element, floats as doubles (a NaN equals nothing and orders by position),
 * integers as integers. */
static int cmp_slices(const octk_unique *p, int64_t a, int64_t b)
{
    for (int64_t o = 0; o < p->outer; o++)
        for (int64_t i = 0; i < p->inner; i++) {
            int64_t pa = (o * p->n + a) * p->inner + i, pb = (o * p->n + b) * p->inner + i;
            if (p->kind == OCTK_DL_FLOAT) {
                double va = load_f(p->x, pa, p->elem_bytes), vb = load_f(p->x, pb, p->elem_bytes);
                if (va < vb)
                    return -1;
                if (va > vb)
                    return 1;
                if (va != vb)
                    return a < b ? -1 : 1;
            } else if (p->kind == OCTK_DL_SINT) {
                int64_t va = load_i64(p->x, pa, p->elem_bytes), vb = load_i64(p->x, pb, p->elem_bytes);
                if (va != vb)
                    return va < vb ? -1 : 1;
            } else {
                uint64_t va = load_u64(p->x, pa, p->elem_bytes), vb = load_u64(p->x, pb, p->elem_bytes);
                if (va != vb)
                    return va < vb ? -1 : 1;
            }
        }
    return 0;
}

void octk_unique_run(const octk_unique *p, int phase, int64_t begin, int64_t end)
{
    (void)phase, (void)begin, (void)end;
    int64_t n = p->n, u = 0, cap = n > 0 ? n : 1;
    int64_t *first = p->work, *inverse = first + cap, *counts = inverse + cap;
    int64_t *pos = counts + cap, *order = pos + cap;
    for (int64_t i = 0; i < n; i++) { /* first occurrences, in order */
        int64_t k = 0;
        while (k < u && cmp_slices(p, first[k], i) != 0)
            k++;
        if (k == u) {
            first[u] = i;
            counts[u++] = 0;
        }
        counts[k]++;
        inverse[i] = k;
    }
    if (u > p->bound) {
        *p->len = -1;
        return;
    }
    if (p->sorted) { /* insertion sort of the unique ones (stable) */
        for (int64_t k = 0; k < u; k++)
            order[k] = k;
        for (int64_t k = 1; k < u; k++)
            for (int64_t j = k; j > 0 && cmp_slices(p, first[order[j]], first[order[j - 1]]) < 0;
                 j--) {
                int64_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (int64_t k = 0; k < u; k++)
            pos[order[k]] = k;
        for (int64_t i = 0; i < n; i++)
            inverse[i] = pos[inverse[i]];
        for (int64_t k = 0; k < u; k++) {
            pos[k] = first[order[k]];
            order[k] = counts[order[k]];
        }
        memcpy(first, pos, (size_t)u * sizeof *first);
        memcpy(counts, order, (size_t)u * sizeof *counts);
    }
    size_t es = (size_t)p->elem_bytes, row = (size_t)p->inner * es;
    for (int64_t o = 0; p->y && o < p->outer; o++)
        for (int64_t k = 0; k < u; k++)
            memcpy((char *)p->y + (size_t)(o * u + k) * row,
                   (const char *)p->x + (size_t)(o * n + first[k]) * row, row);
    if (p->first)
        memcpy(p->first, first, (size_t)u * sizeof *first);
    if (p->inverse)
        memcpy(p->inverse, inverse, (size_t)n * sizeof *inverse);
    if (p->counts)
        memcpy(p->counts, counts, (size_t)u * sizeof *counts);
    *p->len = u;
}
