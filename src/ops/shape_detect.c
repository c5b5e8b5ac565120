/*
 * shape_detect.c: the ops whose output length depends on the input's
 * values, NonMaxSuppression and NonZero: their shape rules, and NMS's
 * selection itself, which the rule runs at run time to size the output
 * (every input known) and the interpreter (src/ref/detect.c) runs again to
 * fill it.  Statically the length is unknown (-1); the compiler, which
 * needs static shapes, refuses these ops with a diagnostic.
 *
 * NonMaxSuppression follows ONNX Runtime and onnx.reference: per batch and
 * class, the boxes whose score is above score_threshold (all boxes when it
 * is omitted), highest score first (ties: lower index first), each kept
 * unless its IoU with a box already kept exceeds iou_threshold (boxes with
 * no area, or no overlap, never suppress), until max_output_boxes_per_class
 * are kept (omitted: 0, no output).  Boxes are corners [y1, x1, y2, x2] in
 * either order (center_point_box 0) or [x_center, y_center, width, height]
 * (1); the geometry is float32 arithmetic, as ORT's.  The output lists
 * [batch, class, box] in that order.  NonZero: [rank, count] INT64, the
 * coordinates of the non-zero elements in row-major order.
 */
#include "ops/ops.h"
#include <stdlib.h>

#include "ops/rules.h"

typedef struct nms_box {
    float score;
    int64_t idx;
} nms_box;

static int by_score(const void *pa, const void *pb)
{
    const nms_box *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Box i's extent along the two axes of b (4 floats). */
static void extent(const float *b, int center, float *lo0, float *hi0, float *lo1, float *hi1)
{
    if (center) { /* x, y, w, h: axis 0 is x */
        *lo0 = b[0] - b[2] / 2;
        *hi0 = b[0] + b[2] / 2;
        *lo1 = b[1] - b[3] / 2;
        *hi1 = b[1] + b[3] / 2;
    } else { /* y1, x1, y2, x2: axis 0 is x too */
        *lo0 = b[1] < b[3] ? b[1] : b[3];
        *hi0 = b[1] < b[3] ? b[3] : b[1];
        *lo1 = b[0] < b[2] ? b[0] : b[2];
        *hi1 = b[0] < b[2] ? b[2] : b[0];
    }
}

static bool suppresses(const float *a, const float *b, int center, float iou_threshold)
{
    float ax0, ax1, ay0, ay1, bx0, bx1, by0, by1;
    extent(a, center, &ax0, &ax1, &ay0, &ay1);
    extent(b, center, &bx0, &bx1, &by0, &by1);
    float ix0 = ax0 > bx0 ? ax0 : bx0, ix1 = ax1 < bx1 ? ax1 : bx1;
    if (ix1 <= ix0)
        return false;
    float iy0 = ay0 > by0 ? ay0 : by0, iy1 = ay1 < by1 ? ay1 : by1;
    if (iy1 <= iy0)
        return false;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    float area_a = (ax1 - ax0) * (ay1 - ay0), area_b = (bx1 - bx0) * (by1 - by0);
    float uni = area_a + area_b - inter;
    if (inter <= 0 || area_a <= 0 || area_b <= 0 || uni <= 0)
        return false;
    return inter / uni > iou_threshold;
}

/* The first value of an optional scalar-or-[1] input, or dflt. */
static double first_or(const ir_tensor *t, double dflt)
{
    return t && t->nelems ? ops_get(t, 0) : dflt;
}

oct_status ops_nms_select(oct_ctx *ctx, const ir_node *node, const ir_tensor *const *in,
                          int n_in, int64_t *sel, int64_t *count)
{
    const ir_tensor *boxes = in[0], *scores = in[1];
    const ir_tensor *t_max = n_in > 2 ? in[2] : NULL, *t_iou = n_in > 3 ? in[3] : NULL;
    const ir_tensor *t_score = n_in > 4 ? in[4] : NULL;
    if (boxes->rank != 3 || boxes->dims[2] != 4 || scores->rank != 3 ||
        scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
        return oct_node_error(ctx, OCT_EINPUT, node, "boxes must be [batches, boxes, 4] and "
                              "scores [batches, classes, boxes]");
    int center = (int)ir_attr_int(node, "center_point_box", 0);
    if (center != 0 && center != 1)
        return oct_node_error(ctx, OCT_EINPUT, node, "center_point_box must be 0 or 1");
    int64_t max_out = t_max && t_max->nelems ? ops_get_i64(t_max, 0) : 0;
    float iou = (float)first_or(t_iou, 0.0);
    bool filter = t_score && t_score->nelems;
    float score_thr = (float)first_or(t_score, 0.0);
    int64_t nb = boxes->dims[0], n = boxes->dims[1], nc = scores->dims[1];
    *count = 0;
    if (max_out <= 0 || !n)
        return OCT_OK;
    size_t bytes = (size_t)n * (sizeof(nms_box) + 4 * sizeof(float) + sizeof(int64_t));
    nms_box *cand = oct_malloc(ctx, bytes);
    if (!cand)
        return OCT_EINTERNAL;
    float *coords = (float *)(cand + n);
    int64_t *kept = (int64_t *)(coords + 4 * n);
    for (int64_t b = 0; b < nb; b++) {
        for (int64_t i = 0; i < 4 * n; i++)
            coords[i] = (float)ops_get(boxes, (uint64_t)(b * n * 4 + i));
        for (int64_t c = 0; c < nc; c++) {
            int64_t m = 0, n_kept = 0;
            for (int64_t i = 0; i < n; i++) {
                float s = (float)ops_get(scores, (uint64_t)((b * nc + c) * n + i));
                if (!filter || s > score_thr)
                    cand[m++] = (nms_box){s, i};
            }
            qsort(cand, (size_t)m, sizeof *cand, by_score);
            for (int64_t k = 0; k < m && n_kept < max_out; k++) {
                bool keep = true;
                for (int64_t j = 0; j < n_kept && keep; j++)
                    keep = !suppresses(&coords[4 * cand[k].idx], &coords[4 * kept[j]], center,
                                       iou);
                if (!keep)
                    continue;
                kept[n_kept++] = cand[k].idx;
                if (sel) {
                    sel[3 * *count] = b;
                    sel[3 * *count + 1] = c;
                    sel[3 * *count + 2] = cand[k].idx;
                }
                ++*count;
            }
        }
    }
    oct_free(ctx, cand, bytes);
    return OCT_OK;
}

oct_status ops_shape_nonmaxsuppression(ops_infer *inf)
{
    for (int i = 0; i < inf->n_in && i < 5; i++) {
        ir_dtype dt = inf->in[i].dtype;
        bool ok = dt == IR_DT_UNDEFINED ||
                  (i == 2 ? dt == IR_DT_INT64 : dt == IR_DT_FLOAT);
        if (!ok)
            return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, i, "element type %s "
                                   "is not supported by NonMaxSuppression",
                                   ir_dtype_name(dt));
    }
    inf->out[0].dtype = IR_DT_INT64;
    inf->out[0].rank = 2;
    inf->out[0].dims[0] = -1;
    inf->out[0].dims[1] = 3;
    bool all = true;
    for (int i = 0; i < inf->n_in; i++)
        all = all && (!inf->node->in[i] || inf->in_const[i]);
    if (!all) /* the count depends on values not known yet */
        return OCT_OK;
    int64_t count;
    oct_status st = ops_nms_select(inf->ctx, inf->node, inf->in_const, inf->n_in, NULL, &count);
    inf->out[0].dims[0] = count;
    return st;
}

oct_status ops_shape_nonzero(ops_infer *inf)
{
    const ops_shape *x = &inf->in[0];
    inf->out[0].dtype = IR_DT_INT64;
    inf->out[0].rank = 2;
    inf->out[0].dims[0] = x->rank;
    inf->out[0].dims[1] = -1;
    const ir_tensor *t = inf->in_const[0];
    if (!t)
        return OCT_OK;
    int64_t count = 0;
    bool is_float = ops_dt_is_float(t->dtype);
    for (uint64_t i = 0; i < t->nelems; i++)
        count += is_float ? ops_get(t, i) != 0 : ops_get_i64(t, i) != 0;
    inf->out[0].dims[1] = count;
    return OCT_OK;
}
