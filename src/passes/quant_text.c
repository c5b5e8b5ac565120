/*
 * quant_text.c: the quantization session's state as "quant" lines of the
 * text IR (printed after the nodes; docs/inspect.md), and back, so that
 * each quant pass can be run alone on a hand-written input and its result
 * compared as text (tests/golden/quant_*).  One header line per analysis
 * the state holds, then one line per plan entry, %I being the entry's
 * index in the plan:
 *
 *   quant plan                                   "quant-plan" is current
 *   quant %I KIND VALUE [node=NODE input=K] [axis=A] [group=%J]
 *         [act=%J weight=%K] [force=fp32|FAMILY reason=S]
 *   quant stats samples=N                        "quant-stats" is current
 *   quant %I hist count=C nonfinite=K min=X max=Y width_log2=W
 *         bins=[BIN:COUNT, ...]                 (activations; non-empty bins)
 *   quant formats                                "quant-formats" is current
 *   quant %I FAMILY FORMAT [block_size=B] [scale_shape=[d, ...]]
 *         scales=[s, ...] zero_points=[z, ...] [range=[lo, hi]] reason=S
 *   quant %I fp32 reason=S                       (kept in FP32)
 *
 * KIND is act, const, weight or bias; group names the entry whose scale an
 * activation shares (the lower index); act and weight name the entries
 * whose scales multiply into a bias's.  Scales print with 9 significant
 * digits (floats read back exactly), min, max and ranges with 17 (doubles).
 * A constant's summary is not printed: it is made again from its data.
 * Measurements on the samples (SQNR) are report data and are not kept.
 *
 * Reading checks every index, name, count and shape against the graph
 * before the plan is used, so that the rewrite cannot index past a
 * tensor: each problem is one "FILE:LINE:COL: error" diagnostic.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/parse_text.h"
#include "passes/quant.h"

static const char *const kind_names[] = {
    [QKIND_ACT] = "act", [QKIND_CONST] = "const", [QKIND_WEIGHT] = "weight",
    [QKIND_BIAS] = "bias",
};

/* ---- writing ---------------------------------------------------------------- */

static void put_plan_entry(FILE *f, quant_session *s, size_t i)
{
    quant_tensor *e = &s->plan.t[i];
    fprintf(f, "%%%zu %s ", i, kind_names[e->kind]);
    ir_print_name(f, e->value->name);
    if (e->node) {
        fputs(" node=", f);
        ir_print_name(f, e->node->name);
        fprintf(f, " input=%d", e->input);
    }
    if (e->axis >= 0)
        fprintf(f, " axis=%d", e->axis);
    if (e->hist && quant_group_of(&s->plan, (int)i) != (int)i)
        fprintf(f, " group=%%%d", quant_group_of(&s->plan, (int)i));
    if (e->kind == QKIND_BIAS)
        fprintf(f, " act=%%%d weight=%%%d", e->act, e->weight);
    if (e->force) {
        int k = quant_force_family(e->force);
        fprintf(f, " force=%s reason=", k >= 0 ? quant_default_opts().families[k].name
                                               : "fp32");
        ir_print_str(f, e->force_reason);
    }
    fputc('\n', f);
}

static void put_hist(FILE *f, size_t i, const calib_hist *h)
{
    fprintf(f, "%%%zu hist count=%llu nonfinite=%llu min=", i,
            (unsigned long long)h->count, (unsigned long long)h->nonfinite);
    ir_print_float(f, h->min, 17);
    fputs(" max=", f);
    ir_print_float(f, h->max, 17);
    fprintf(f, " width_log2=%d bins=[", h->width_log2);
    bool any = false;
    for (int b = 0; b < CALIB_BINS; b++)
        if (h->bins[b]) {
            fprintf(f, "%s%d:%llu", any ? ", " : "", b, (unsigned long long)h->bins[b]);
            any = true;
        }
    fputs("]\n", f);
}

static void put_choice(FILE *f, const quant_session *s, size_t i)
{
    const quant_tensor *e = &s->plan.t[i];
    if (e->keep_float) {
        fprintf(f, "%%%zu fp32 reason=", i);
        ir_print_str(f, e->reason);
        fputc('\n', f);
        return;
    }
    if (!e->format)
        return; /* undecided */
    fprintf(f, "%%%zu %s %s", i, s->opts.families[e->family].name,
            ir_qformat_info(e->format)->name);
    if (e->block_size > 0)
        fprintf(f, " block_size=%lld", (long long)e->block_size);
    if (e->scale_rank > 0) {
        fputs(" scale_shape=[", f);
        for (int d = 0; d < e->scale_rank; d++)
            fprintf(f, "%s%lld", d ? ", " : "", (long long)e->scale_dims[d]);
        fputc(']', f);
    }
    fputs(" scales=[", f);
    for (size_t k = 0; k < e->n_scales; k++) {
        fputs(k ? ", " : "", f);
        ir_print_float(f, e->scales[k], 9);
    }
    fputs("] zero_points=[", f);
    for (size_t k = 0; k < e->n_scales; k++)
        fprintf(f, "%s%d", k ? ", " : "", (int)e->zero_points[k]);
    fputc(']', f);
    if (e->kind == QKIND_ACT || e->kind == QKIND_CONST) {
        fputs(" range=[", f);
        ir_print_float(f, e->range.lo, 17);
        fputs(", ", f);
        ir_print_float(f, e->range.hi, 17);
        fputc(']', f);
    }
    fputs(" reason=", f);
    ir_print_str(f, e->reason);
    fputc('\n', f);
}

oct_status quant_text_write(oct_ctx *ctx, quant_session *s, ir_model *m)
{
    m->quant_lines = NULL;
    m->n_quant_lines = 0;
    if (!(s->have & PASS_A_QPLAN))
        return OCT_OK;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return oct_error(ctx, OCT_EINTERNAL, "cannot open a memory stream");
    fputs("plan\n", f);
    for (size_t i = 0; i < s->plan.n; i++)
        put_plan_entry(f, s, i);
    if (s->have & PASS_A_QSTATS) {
        fprintf(f, "stats samples=%llu\n", (unsigned long long)s->plan.n_samples);
        for (size_t i = 0; i < s->plan.n; i++)
            if (s->plan.t[i].kind == QKIND_ACT)
                put_hist(f, i, s->plan.t[i].hist);
    }
    if (s->have & PASS_A_QFORMATS) {
        fputs("formats\n", f);
        for (size_t i = 0; i < s->plan.n; i++)
            put_choice(f, s, i);
    }
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed || !buf) {
        free(buf);
        return oct_error(ctx, OCT_EINTERNAL, "out of memory printing the quant state");
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == '\n';
    ir_text_line *lines = ir_alloc_array(ctx, n + 1, sizeof *lines);
    oct_status st = lines ? OCT_OK : OCT_EINTERNAL;
    for (char *p = buf, *nl; !st && (nl = strchr(p, '\n')); p = nl + 1) {
        char *text = ir_alloc(ctx, (size_t)(nl - p) + 1);
        if (!text) {
            st = OCT_EINTERNAL;
            break;
        }
        memcpy(text, p, (size_t)(nl - p));
        text[nl - p] = '\0';
        lines[m->n_quant_lines++] = (ir_text_line){text, 0};
    }
    free(buf);
    if (!st)
        m->quant_lines = lines;
    else
        m->n_quant_lines = 0;
    return st;
}

/* ---- reading ---------------------------------------------------------------- */

typedef enum section { SEC_NONE, SEC_PLAN, SEC_STATS, SEC_FORMATS } section;

typedef struct reader {
    parser P;
    quant_session *s;
    ir_graph *g;
    section sec;
} reader;

static bool finite_float(double d)
{
    return isfinite(d) && fabs(d) <= 3.4028234663852886e38;
}

/* %I: an entry index, below `limit`. */
static oct_status parse_index(reader *r, size_t limit, size_t *out)
{
    parser *P = &r->P;
    const char *at = (irtp_skip_ws(P), P->c);
    int64_t i;
    oct_status st;
    if (!irtp_accept(P, '%'))
        return irtp_perr(P, at, "expected an entry index %%N");
    if ((st = irtp_parse_i64(P, &i)))
        return st;
    if (i < 0 || (uint64_t)i >= limit)
        return irtp_perr(P, at, "entry %%%lld does not exist here", (long long)i);
    *out = (size_t)i;
    return OCT_OK;
}

static oct_status parse_double(reader *r, double *out)
{
    char buf[TOKEN_MAX];
    const char *at;
    oct_status st = irtp_number_token(&r->P, buf, &at);
    return st ? st : irtp_parse_double(&r->P, buf, at, out);
}

static oct_status parse_u64(reader *r, uint64_t *out)
{
    int64_t v;
    const char *at = (irtp_skip_ws(&r->P), r->P.c);
    oct_status st = irtp_parse_i64(&r->P, &v);
    if (!st && v < 0)
        return irtp_perr(&r->P, at, "expected a count (>= 0)");
    *out = (uint64_t)v;
    return st;
}

/* "key=" is next, or an error naming it. */
static oct_status key(reader *r, const char *k)
{
    if (irtp_accept_word(&r->P, k))
        return OCT_OK;
    return irtp_perr(&r->P, r->P.c, "expected '%s'", k);
}

/* [x, y, ...] of numbers into a new arena array (*n elements). */
static oct_status parse_numbers(reader *r, double **out, size_t *n)
{
    parser *P = &r->P;
    size_t cap = 0;
    oct_status st = irtp_expect(P, '[');
    *out = NULL;
    *n = 0;
    if (st || irtp_accept(P, ']'))
        return st;
    do {
        if ((st = irtp_grow(P, (void **)out, &cap, *n, sizeof **out)) ||
            (st = parse_double(r, &(*out)[*n])))
            return st;
        (*n)++;
    } while (irtp_accept(P, ','));
    return irtp_expect(P, ']');
}

static ir_node *find_node(const ir_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->name, name))
            return g->nodes[i];
    return NULL;
}

/* The rank of a constant entry's data, or of an activation's type. */
static int entry_rank(const quant_tensor *e)
{
    return e->value->init ? e->value->init->rank : e->value->type.rank;
}

/* %I KIND VALUE [node=NODE input=K] [axis=A] [group=%J] [act=%J weight=%K]
 * [force=... reason=S] */
static oct_status parse_plan_entry(reader *r, size_t index)
{
    parser *P = &r->P;
    quant_plan *plan = &r->s->plan;
    oct_status st;
    const char *at;
    char *word, *name;
    if (index != plan->n)
        return irtp_perr(P, P->line, "plan entries must be numbered %%0, %%1, ... in order");
    if ((st = irtp_grow(P, (void **)&plan->t, &plan->cap, plan->n, sizeof *plan->t)))
        return st;
    quant_tensor *e = &plan->t[index];
    memset(e, 0, sizeof *e);
    e->act = e->weight = e->axis = e->input = -1;
    e->group = (int)index;
    at = (irtp_skip_ws(P), P->c);
    if ((st = irtp_parse_name(P, &word)))
        return st;
    int kind = -1;
    for (int k = 0; k <= QKIND_BIAS; k++)
        if (!strcmp(word, kind_names[k]))
            kind = k;
    if (kind < 0)
        return irtp_perr(P, at, "unknown kind '%s' (act, const, weight or bias)", word);
    e->kind = (quant_kind)kind;
    at = (irtp_skip_ws(P), P->c);
    if ((st = irtp_parse_name(P, &name)))
        return st;
    if (!(e->value = ir_graph_find(r->g, name)))
        return irtp_perr(P, at, "no value '%s' in the graph", name);
    const ir_value *v = e->value;
    bool data = v->init && v->init->dtype == IR_DT_FLOAT;
    if (kind == QKIND_ACT ? v->init || !v->has_type || v->type.dtype != IR_DT_FLOAT
                          : !data)
        return irtp_perr(P, at, "'%s' is not a float %s", name,
                         kind == QKIND_ACT ? "activation" : "initializer");
    if (kind == QKIND_WEIGHT || kind == QKIND_BIAS) {
        int64_t input;
        at = (irtp_skip_ws(P), P->c);
        if ((st = key(r, "node=")) || (st = irtp_parse_name(P, &name)))
            return st;
        if (!(e->node = find_node(r->g, name)))
            return irtp_perr(P, at, "no node '%s' in the graph", name);
        at = (irtp_skip_ws(P), P->c);
        if ((st = key(r, "input=")) || (st = irtp_parse_i64(P, &input)))
            return st;
        if (input < 0 || input >= e->node->n_in || e->node->in[input] != v)
            return irtp_perr(P, at, "input %lld of node '%s' is not '%s'",
                             (long long)input, e->node->name, v->name);
        e->input = (int)input;
    }
    at = (irtp_skip_ws(P), P->c);
    if (irtp_accept_word(P, "axis=")) {
        int64_t axis;
        if ((st = irtp_parse_i64(P, &axis)))
            return st;
        if (kind == QKIND_ACT || kind == QKIND_CONST || axis < 0 ||
            axis >= entry_rank(e))
            return irtp_perr(P, at, "axis %lld: only a weight or bias has one, "
                             "within its rank", (long long)axis);
        e->axis = (int)axis;
    }
    at = (irtp_skip_ws(P), P->c);
    if (irtp_accept_word(P, "group=")) {
        size_t rep;
        if ((st = parse_index(r, index, &rep)))
            return st;
        if ((kind != QKIND_ACT && kind != QKIND_CONST) ||
            (plan->t[rep].kind != QKIND_ACT && plan->t[rep].kind != QKIND_CONST))
            return irtp_perr(P, at, "only activations and constants share scales");
        e->group = (int)rep;
    }
    if (kind == QKIND_BIAS) {
        size_t a, w;
        at = (irtp_skip_ws(P), P->c);
        if ((st = key(r, "act=")) || (st = parse_index(r, index, &a)) ||
            (st = key(r, "weight=")) || (st = parse_index(r, index, &w)))
            return st;
        if (plan->t[a].kind != QKIND_ACT && plan->t[a].kind != QKIND_CONST)
            return irtp_perr(P, at, "a bias's act= names an activation entry");
        if (plan->t[w].kind != QKIND_WEIGHT || plan->t[w].node != e->node)
            return irtp_perr(P, at, "a bias's weight= names its node's weight entry");
        e->act = (int)a;
        e->weight = (int)w;
    }
    at = (irtp_skip_ws(P), P->c);
    if (irtp_accept_word(P, "force=")) {
        char *reason;
        if ((st = irtp_parse_name(P, &name)))
            return st;
        quant_opts defaults = quant_default_opts();
        int k = quant_family_index(&defaults, name);
        if (strcmp(name, "fp32") && k < 0)
            return irtp_perr(P, at, "force=%s: fp32 or a family (int8, fp8)", name);
        e->force = k >= 0 ? QFORCE_FAMILY + k : QFORCE_FP32;
        if ((st = key(r, "reason=")) || (st = irtp_parse_str(P, true, &reason, NULL)))
            return st;
        e->force_reason = reason;
    }
    if ((kind == QKIND_ACT || kind == QKIND_CONST)) {
        if (plan->of_value[v->id] >= 0)
            return irtp_perr(P, P->line, "'%s' has two activation entries", v->name);
        plan->of_value[v->id] = (int32_t)index;
    }
    plan->n++;
    return OCT_OK;
}

/* %I hist count=C nonfinite=K min=X max=Y width_log2=W bins=FIRST:[...] */
static oct_status parse_hist(reader *r, size_t i)
{
    parser *P = &r->P;
    quant_tensor *e = &r->s->plan.t[i];
    const char *at = P->line;
    oct_status st;
    if (e->kind != QKIND_ACT)
        return irtp_perr(P, at, "entry %%%zu is not an activation: it has no statistics", i);
    calib_hist *h = e->hist;
    calib_hist_init(h);
    int64_t width;
    if ((st = key(r, "hist")) || (st = key(r, "count=")) || (st = parse_u64(r, &h->count)) ||
        (st = key(r, "nonfinite=")) || (st = parse_u64(r, &h->nonfinite)) ||
        (st = key(r, "min=")) || (st = parse_double(r, &h->min)) ||
        (st = key(r, "max=")) || (st = parse_double(r, &h->max)) ||
        (st = key(r, "width_log2=")) || (st = irtp_parse_i64(P, &width)) ||
        (st = key(r, "bins=")) || (st = irtp_expect(P, '[')))
        return st;
    if (width < -200000 || width > 200000)
        return irtp_perr(P, at, "width_log2 out of range");
    h->width_log2 = (int)width;
    uint64_t total = 0;
    int64_t last = -1;
    if (!irtp_accept(P, ']')) {
        do {
            int64_t bin = 0;
            uint64_t c = 0;
            const char *bin_at = (irtp_skip_ws(P), P->c);
            if ((st = irtp_parse_i64(P, &bin)) || (st = irtp_expect(P, ':')) ||
                (st = parse_u64(r, &c)))
                return st;
            if (bin <= last || bin >= CALIB_BINS || !c || total + c < total)
                return irtp_perr(P, bin_at, "bins are BIN:COUNT with BIN increasing "
                                 "below %d and COUNT > 0", CALIB_BINS);
            h->bins[bin] = c;
            total += c;
            last = bin;
        } while (irtp_accept(P, ','));
        if ((st = irtp_expect(P, ']')))
            return st;
    }
    if (total != h->count || (h->count && !(h->min <= h->max)))
        return irtp_perr(P, at, "bin counts, count and min/max disagree");
    return OCT_OK;
}

/* The scale shape a choice must have for entry e. */
static oct_status check_scale_shape(reader *r, const quant_tensor *e, const char *at)
{
    parser *P = &r->P;
    const ir_tensor *t = e->value->init;
    int64_t want = 1;
    bool ok;
    if (e->kind == QKIND_ACT || e->kind == QKIND_CONST || e->axis < 0) {
        ok = e->scale_rank == 0 && !e->block_size;
    } else if (e->kind == QKIND_BIAS) {
        want = (int64_t)t->nelems;
        ok = !e->block_size && (e->scale_rank == 0 ||
                                (e->scale_rank == 1 && e->scale_dims[0] == want));
    } else if (!e->block_size) {
        ok = e->scale_rank == 1 && e->scale_dims[0] == t->dims[e->axis];
    } else {
        ok = e->block_size > 0 && e->block_size <= t->dims[e->axis] &&
             e->scale_rank == t->rank;
        for (int d = 0; ok && d < t->rank; d++)
            ok = e->scale_dims[d] == (d == e->axis ? (t->dims[d] + e->block_size - 1) /
                                                     e->block_size : t->dims[d]);
    }
    if (!ok)
        return irtp_perr(P, at, "the scale shape does not fit '%s' (its axis, block "
                         "size and shape)", e->value->name);
    return OCT_OK;
}

/* %I fp32 reason=S  |  %I FAMILY FORMAT [block_size=B] [scale_shape=[...]]
 * scales=[...] zero_points=[...] [range=[lo, hi]] reason=S */
static oct_status parse_choice(reader *r, size_t i)
{
    parser *P = &r->P;
    quant_session *s = r->s;
    quant_tensor *e = &s->plan.t[i];
    oct_status st;
    char *family, *format, *reason;
    const char *at = (irtp_skip_ws(P), P->c);
    if ((st = irtp_parse_name(P, &family)))
        return st;
    if (!strcmp(family, "fp32")) {
        e->keep_float = true;
        if ((st = key(r, "reason=")) || (st = irtp_parse_str(P, true, &reason, NULL)))
            return st;
        e->reason = reason;
        return OCT_OK;
    }
    int k = quant_family_index(&s->opts, family);
    if (k < 0)
        return irtp_perr(P, at, "unknown family '%s'", family);
    e->family = k;
    at = (irtp_skip_ws(P), P->c);
    if ((st = irtp_parse_name(P, &format)))
        return st;
    /* the format the family gives this kind of entry, and no other: the
     * rewrite stores exactly those */
    ir_qformat own = e->kind == QKIND_BIAS ? IR_QF_INT32
                    : e->kind == QKIND_WEIGHT ? s->opts.families[k].weight
                                              : s->opts.families[k].act;
    if ((e->format = ir_qformat_by_name(format)) != own)
        return irtp_perr(P, at, "format '%s': a%s %s entry of family %s is %s", format,
                         e->kind == QKIND_ACT ? "n" : "", kind_names[e->kind], family,
                         ir_qformat_info(own)->name);
    const ir_qformat_traits *f = ir_qformat_info(e->format);
    at = (irtp_skip_ws(P), P->c);
    if (irtp_accept_word(P, "block_size=") && (st = irtp_parse_i64(P, &e->block_size)))
        return st;
    if (irtp_accept_word(P, "scale_shape=")) {
        double *dims;
        size_t n;
        if ((st = parse_numbers(r, &dims, &n)))
            return st;
        if (!n || n > RANK_CAP)
            return irtp_perr(P, at, "a scale shape of rank 1 to %d", RANK_CAP);
        e->scale_rank = (int)n;
        if (!(e->scale_dims = ir_alloc_array(P->ctx, n, sizeof *e->scale_dims)))
            return OOM;
        for (size_t d = 0; d < n; d++)
            e->scale_dims[d] = dims[d] >= 0 && dims[d] < 1e15 ? (int64_t)dims[d] : -1;
    }
    if ((st = check_scale_shape(r, e, at)))
        return st;
    double *scales, *zps;
    size_t n_scales, n_zps;
    at = (irtp_skip_ws(P), P->c);
    if ((st = key(r, "scales=")) || (st = parse_numbers(r, &scales, &n_scales)) ||
        (st = key(r, "zero_points=")) || (st = parse_numbers(r, &zps, &n_zps)))
        return st;
    size_t want = 1;
    for (int d = 0; d < e->scale_rank; d++)
        want *= (size_t)e->scale_dims[d];
    if (n_scales != want || n_zps != want)
        return irtp_perr(P, at, "%zu scales and %zu zero points; the scale shape "
                         "holds %zu", n_scales, n_zps, want);
    e->n_scales = want;
    e->scales = ir_alloc_array(P->ctx, want, sizeof *e->scales);
    e->zero_points = ir_alloc_array(P->ctx, want, sizeof *e->zero_points);
    if (!e->scales || !e->zero_points)
        return OOM;
    for (size_t k2 = 0; k2 < want; k2++) {
        double lo = f->is_float ? 0 : f->qmin, hi = f->is_float ? 0 : f->qmax;
        if (!(scales[k2] > 0) || !finite_float(scales[k2]) || !(zps[k2] >= lo) ||
            !(zps[k2] <= hi) || zps[k2] != floor(zps[k2]))
            return irtp_perr(P, at, "scale %zu must be positive and finite, its zero "
                             "point an integer of %s's range", k2, f->name);
        e->scales[k2] = (float)scales[k2];
        e->zero_points[k2] = (int32_t)zps[k2];
    }
    if (irtp_accept_word(P, "range=")) {
        double *range;
        size_t n;
        at = P->c;
        if ((st = parse_numbers(r, &range, &n)))
            return st;
        if (n != 2)
            return irtp_perr(P, at, "a range is [lo, hi]");
        e->range = (calib_range){range[0], range[1]};
    }
    if ((st = key(r, "reason=")) || (st = irtp_parse_str(P, true, &reason, NULL)))
        return st;
    e->reason = reason;
    return OCT_OK;
}

/* Leaves the plan section: the summaries the statistics lines fill. */
static oct_status end_plan(reader *r)
{
    return r->sec == SEC_PLAN ? quant_plan_summaries(&r->s->plan, r->P.ctx) : OCT_OK;
}

static oct_status read_line(reader *r)
{
    parser *P = &r->P;
    quant_session *s = r->s;
    oct_status st;
    const char *at = (irtp_skip_ws(P), P->c);
    if (irtp_accept_word(P, "plan")) {
        if (r->sec != SEC_NONE)
            return irtp_perr(P, at, "a second 'quant plan'");
        s->plan.n_values = r->g->n_values;
        s->plan.of_value = ir_alloc_array(P->ctx, r->g->n_values + 1,
                                          sizeof *s->plan.of_value);
        if (!s->plan.of_value)
            return OOM;
        for (size_t v = 0; v < s->plan.n_values; v++)
            s->plan.of_value[v] = -1;
        r->sec = SEC_PLAN;
        s->have = PASS_A_QPLAN;
        return OCT_OK;
    }
    if (r->sec == SEC_NONE)
        return irtp_perr(P, at, "the quant state starts with 'quant plan'");
    if (irtp_accept_word(P, "stats")) {
        if (r->sec != SEC_PLAN)
            return irtp_perr(P, at, "'quant stats' comes once, after the plan");
        if ((st = end_plan(r)) || (st = key(r, "samples=")) ||
            (st = parse_u64(r, &s->plan.n_samples)))
            return st;
        r->sec = SEC_STATS;
        s->have |= PASS_A_QSTATS;
        return OCT_OK;
    }
    if (irtp_accept_word(P, "formats")) {
        if (r->sec != SEC_PLAN && r->sec != SEC_STATS)
            return irtp_perr(P, at, "'quant formats' comes once, after the plan "
                             "and its statistics");
        if ((st = end_plan(r)))
            return st;
        r->sec = SEC_FORMATS;
        s->have |= PASS_A_QFORMATS;
        return OCT_OK;
    }
    size_t i;
    if ((st = parse_index(r, r->sec == SEC_PLAN ? SIZE_MAX : s->plan.n, &i)))
        return st;
    switch (r->sec) {
    case SEC_PLAN: return parse_plan_entry(r, i);
    case SEC_STATS: return parse_hist(r, i);
    default: return parse_choice(r, i);
    }
}

oct_status quant_text_read(oct_ctx *ctx, quant_session *s, ir_model *m)
{
    reader r = {.s = s, .g = m->graph, .sec = SEC_NONE};
    r.P.ctx = ctx;
    r.P.file = ctx->cur_file ? ctx->cur_file : "<text>";
    r.P.m = m;
    r.P.g = m->graph;
    oct_status st = OCT_OK;
    for (size_t k = 0; !st && k < m->n_quant_lines; k++) {
        const ir_text_line *l = &m->quant_lines[k];
        r.P.text = r.P.line = r.P.c = l->text;
        r.P.end = r.P.eol = l->text + strlen(l->text);
        r.P.lineno = l->lineno;
        st = read_line(&r);
        if (!st && !irtp_at_end(&r.P))
            st = irtp_perr(&r.P, r.P.c, "unexpected text at the end of the quant line");
    }
    if (!st)
        st = end_plan(&r);
    if (st) {
        quant_session_reset(s, m, ctx);
        return st;
    }
    /* a bias's scale comes from its entries' formats: both must be there */
    for (size_t i = 0; (s->have & PASS_A_QFORMATS) && i < s->plan.n; i++) {
        const quant_tensor *e = &s->plan.t[i];
        if (e->kind == QKIND_BIAS && e->format &&
            (!s->plan.t[e->act].format || !s->plan.t[e->weight].format)) {
            quant_session_reset(s, m, ctx);
            return oct_error(ctx, OCT_EINPUT, "quant state: bias entry %%%zu has a "
                             "format but its activation or weight has none", i);
        }
    }
    return OCT_OK;
}
