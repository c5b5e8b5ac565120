/*
 * shape_einsum.c: Einsum's equation, parsed once into a plan that the
 * shape rule, the interpreter (src/ref/einsum.c) and the compiler
 * (src/codegen/lower_einsum.c) all read, so they agree on what each axis
 * means.
 *
 * The plan numbers the labels: the output's first, in output order, then
 * the summed ones.  Letters are labels; an ellipsis stands for the same
 * number of trailing "broadcast" labels in every term, aligned from the
 * right (numpy's rule), and an input whose ellipsis covers fewer dims uses
 * the last ones.  A label's extent is the largest of its axes' dims; an
 * axis of dim 1 under a longer label broadcasts (stride 0).  A label
 * repeated within one term walks the diagonal (its axes' strides add up).
 * Without "->" the output is the ellipsis dims, then the letters used
 * exactly once, in ASCII order (as numpy and ONNX Runtime do).
 */
#include "ops/ops.h"
#include <string.h>

#include "ops/rules.h"

enum { N_LETTERS = 52 };

static int letter_id(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return 26 + (c - 'a');
    return -1;
}

/* One term: letter ids (-2 for the ellipsis) in order; false if malformed. */
typedef struct term {
    int n;
    int id[OPS_MAX_RANK + 1];
    bool ellipsis;
} term;

static bool parse_term(const char **s, const char *end, term *t)
{
    t->n = 0;
    t->ellipsis = false;
    for (const char *p = *s; p < end; p++) {
        if (*p == ' ')
            continue;
        if (*p == ',' || *p == '-') {
            *s = p;
            return true;
        }
        if (*p == '.') {
            if (t->ellipsis || end - p < 3 || p[1] != '.' || p[2] != '.')
                return false;
            t->ellipsis = true;
            p += 2;
            if (t->n > OPS_MAX_RANK)
                return false;
            t->id[t->n++] = -2;
            continue;
        }
        int id = letter_id(*p);
        if (id < 0 || t->n > OPS_MAX_RANK)
            return false;
        t->id[t->n++] = id;
    }
    *s = end;
    return true;
}

bool ops_einsum_plan_of(const char *eq, size_t len, int n_in, const int *ranks,
                        const int64_t *const *dims, ops_einsum_plan *p)
{
    memset(p, 0, sizeof *p);
    if (!eq || n_in < 1 || n_in > OPS_MAX_IO)
        return false;
    const char *s = eq, *end = eq + len;
    term in[OPS_MAX_IO], out;
    int n_ell = 0; /* dims the ellipsis stands for (the most of any input) */
    for (int k = 0; k < n_in; k++) {
        if (k > 0) {
            if (s >= end || *s != ',')
                return false;
            s++;
        }
        if (!parse_term(&s, end, &in[k]))
            return false;
        int letters = in[k].n - (in[k].ellipsis ? 1 : 0);
        int e = ranks[k] - letters;
        if (ranks[k] < 0 || ranks[k] > OPS_MAX_RANK || e < 0 || (!in[k].ellipsis && e))
            return false;
        if (e > n_ell)
            n_ell = e;
    }
    bool explicit_out = s < end;
    if (explicit_out) {
        if (end - s < 2 || s[0] != '-' || s[1] != '>')
            return false;
        s += 2;
        if (!parse_term(&s, end, &out) || s != end)
            return false;
    }
    /* label ids: letters 0..51, ellipsis dim j (of n_ell) N_LETTERS + j */
    int count[N_LETTERS] = {0};
    for (int k = 0; k < n_in; k++)
        for (int a = 0; a < in[k].n; a++)
            if (in[k].id[a] >= 0)
                count[in[k].id[a]]++;
    int out_ids[OPS_MAX_RANK], n_out = 0;
    if (explicit_out) {
        bool seen[N_LETTERS] = {false};
        for (int a = 0; a < out.n; a++) {
            if (out.id[a] == -2) {
                for (int j = 0; j < n_ell; j++) {
                    if (n_out >= OPS_MAX_RANK)
                        return false;
                    out_ids[n_out++] = N_LETTERS + j;
                }
            } else {
                if (seen[out.id[a]] || !count[out.id[a]] || n_out >= OPS_MAX_RANK)
                    return false;
                seen[out.id[a]] = true;
                out_ids[n_out++] = out.id[a];
            }
        }
        /* an output without "..." sums the broadcast dims away */
    } else {
        for (int j = 0; j < n_ell; j++)
            out_ids[n_out++] = N_LETTERS + j;
        for (int id = 0; id < N_LETTERS; id++)
            if (count[id] == 1) {
                if (n_out >= OPS_MAX_RANK)
                    return false;
                out_ids[n_out++] = id;
            }
    }
    /* number the labels: output first, then the summed ones */
    int label_of[N_LETTERS + OPS_MAX_RANK];
    for (int i = 0; i < N_LETTERS + OPS_MAX_RANK; i++)
        label_of[i] = -1;
    p->n_labels = 0;
    for (int a = 0; a < n_out; a++)
        label_of[out_ids[a]] = p->n_labels++;
    p->n_out = n_out;
    for (int id = 0; id < N_LETTERS + n_ell; id++)
        if (label_of[id] < 0 && (id >= N_LETTERS || count[id]))
            label_of[id] = p->n_labels++;
    if (p->n_labels > OPS_EINSUM_MAX_LABELS)
        return false;
    for (int l = 0; l < p->n_labels; l++)
        p->size[l] = 1;
    p->n_in = n_in;
    for (int k = 0; k < n_in; k++) {
        p->in_rank[k] = ranks[k];
        int letters = in[k].n - (in[k].ellipsis ? 1 : 0), e = ranks[k] - letters, ax = 0;
        for (int a = 0; a < in[k].n; a++) {
            if (in[k].id[a] == -2) {
                for (int j = 0; j < e; j++)
                    p->in_label[k][ax++] = (int8_t)label_of[N_LETTERS + n_ell - e + j];
            } else {
                p->in_label[k][ax++] = (int8_t)label_of[in[k].id[a]];
            }
        }
        for (int a = 0; a < ranks[k]; a++) {
            int l = p->in_label[k][a];
            int64_t d = dims ? dims[k][a] : -1;
            if (d < 0 || p->size[l] < 0) {
                p->size[l] = -1;
            } else if (d != 1) {
                if (p->size[l] != 1 && p->size[l] != d)
                    return false;
                p->size[l] = d;
            }
        }
    }
    /* a label with an unknown dim stays unknown even if another axis is 1 */
    for (int k = 0; k < n_in && dims; k++)
        for (int a = 0; a < ranks[k]; a++)
            if (dims[k][a] < 0)
                p->size[p->in_label[k][a]] = -1;
    return true;
}

void ops_einsum_strides(const ops_einsum_plan *p, int k, const int64_t *dims,
                        int64_t *strides)
{
    for (int l = 0; l < p->n_labels; l++)
        strides[l] = 0;
    int64_t st = 1;
    for (int a = p->in_rank[k] - 1; a >= 0; a--) {
        int l = p->in_label[k][a];
        if (dims[a] != 1 || p->size[l] == 1)
            strides[l] += st;
        st *= dims[a];
    }
}

static bool einsum_type(ir_dtype dt)
{
    const ir_dtype_traits *tr = ir_dtype_info(dt);
    return (tr->kind == IR_DK_FLOAT && tr->bits >= 16) ||
           ((tr->kind == IR_DK_SINT || tr->kind == IR_DK_UINT) && tr->bits >= 8);
}

oct_status ops_shape_einsum(ops_infer *inf)
{
    const ir_attr *a = ir_node_attr(inf->node, "equation");
    if (!a || a->type != IR_ATTR_STRING)
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "Einsum needs an equation");
    ir_dtype dt = IR_DT_UNDEFINED;
    int ranks[OPS_MAX_IO];
    const int64_t *dims[OPS_MAX_IO];
    bool known = true;
    for (int k = 0; k < inf->n_in; k++) {
        ir_dtype dk = inf->in[k].dtype;
        if (dk != IR_DT_UNDEFINED) {
            if (!einsum_type(dk) || (dt != IR_DT_UNDEFINED && dk != dt))
                return oct_input_error(inf->ctx, OCT_EUNSUPPORTED, inf->node, k,
                                       "element type %s is not supported by Einsum (or "
                                       "differs from the other inputs')", ir_dtype_name(dk));
            dt = dk;
        }
        ranks[k] = inf->in[k].rank;
        dims[k] = inf->in[k].dims;
        known = known && ranks[k] >= 0;
    }
    inf->out[0].dtype = dt;
    inf->out[0].rank = -1;
    if (!known)
        return OCT_OK;
    ops_einsum_plan p;
    if (!ops_einsum_plan_of((const char *)a->s.data, a->s.len, inf->n_in, ranks, dims, &p))
        return oct_node_error(inf->ctx, OCT_EINPUT, inf->node, "equation '%.*s' is malformed "
                              "or does not fit the inputs' shapes", (int)a->s.len,
                              (const char *)a->s.data);
    inf->out[0].rank = p.n_out;
    for (int l = 0; l < p.n_out; l++)
        inf->out[0].dims[l] = p.size[l];
    return OCT_OK;
}
