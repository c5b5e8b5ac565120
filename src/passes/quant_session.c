/*
 * quant_session.c: the quantization session the quant passes share
 * through ctx->quant (quant.h): its lifetime, and how its state meets the
 * pipeline runner: loaded from the model's quant lines when a pipeline
 * starts on a model the session holds nothing for, cut down to the
 * analyses still current and written back into the quant lines when it
 * ends (or before the IR is printed after a pass).
 */
#include <string.h>

#include "passes/quant.h"

void quant_session_init(quant_session *s, const quant_opts *o)
{
    memset(s, 0, sizeof *s);
    s->opts = o ? *o : quant_default_opts();
}

void quant_session_reset(quant_session *s, ir_model *m, oct_ctx *ctx)
{
    quant_plan_free(&s->plan, ctx);
    memset(&s->plan, 0, sizeof s->plan);
    s->have = 0;
    s->model = m;
}

void quant_session_free(quant_session *s, oct_ctx *ctx)
{
    quant_session_reset(s, NULL, ctx);
}

oct_status quant_session_begin(oct_ctx *ctx, ir_model *m, unsigned *current)
{
    quant_session *s = ctx->quant;
    OCT_ASSERT(s);
    if (s->model != m || !s->have) {
        quant_session_reset(s, m, ctx);
        if (m->n_quant_lines) {
            oct_status st = quant_text_read(ctx, s, m);
            if (st)
                return st;
        }
    }
    *current |= s->have;
    return OCT_OK;
}

oct_status quant_session_sync(oct_ctx *ctx, ir_model *m, unsigned current)
{
    quant_session *s = ctx->quant;
    OCT_ASSERT(s);
    if (s->model != m)
        return OCT_OK;
    s->have &= current;
    if (!(s->have & PASS_A_QPLAN))
        s->have = 0; /* statistics and formats of a stale plan mean nothing */
    return quant_text_write(ctx, s, m);
}
