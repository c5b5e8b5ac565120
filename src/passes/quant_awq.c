/* quant_awq.c: placeholder */
#include "passes/quant.h"
oct_status quant_awq(ir_model *m, quant_wo_weight *sel, size_t n, const quant_wo_grid *g,
                     const quant_opts *opts, const quant_samples *data,
                     quant_progress_fn progress, void *progress_user, oct_ctx *ctx)
{
    (void)m, (void)sel, (void)n, (void)g, (void)opts, (void)data, (void)progress, (void)progress_user;
    return oct_error(ctx, OCT_EUNSUPPORTED, "awq: not yet");
}
