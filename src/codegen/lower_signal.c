/*
 * lower_signal.c: DFT and STFT as loops, the interpreter's O(n^2) sums
 * (src/ref/signal.c) on the same plans (src/ops/shape_signal.c): for each
 * transform and bin k, the samples t are multiplied by the twiddle factor
 * of (k * t) mod n, read from a table of cos and sin built at compile time
 * with the interpreter's ops_twiddle (the index is carried through the
 * loop, adding k and wrapping at n, so no division), and summed in double
 * (reassociation allowed: within the float tolerance of the interpreter's
 * sums); the result is rounded once at the store.  dft_length, DFT's axis
 * input, frame_step and frame_length are geometry inputs and must be
 * constants here (the JIT folds them).
 *
 * Not done: an O(n log n) path; long transforms run n^2 multiply-adds.
 */
#include "codegen/lower_elem.h"
#include "ops/rules.h"

/* A batch of transforms: for a < na, b < nb, the samples of the transform
 * are x[a * xa + b * xb + t * xs] (+1 for the imaginary part), its bins
 * y[a * ya + b * yb + k * ys] (+1). */
typedef struct sig_nest {
    int64_t na, nb, xa, xb, xs, ya, yb, ys;
    int64_t len, comp, n, n_out;
    bool inverse;
} sig_nest;

static LLVMValueRef load_f64(cg_fn *f, const cg_tensor *t, LLVMValueRef p, LLVMValueRef idx)
{
    LLVMValueRef v = cg_val_load(f, t->dtype, p, idx);
    return cg_val_class(t->dtype) == CG_V_F32 ? LLVMBuildFPExt(f->b, v, f->f64, "") : v;
}

static void store_f64(cg_fn *f, const cg_tensor *t, LLVMValueRef p, LLVMValueRef idx,
                      LLVMValueRef v)
{
    if (cg_val_class(t->dtype) == CG_V_F32)
        v = LLVMBuildFPTrunc(f->b, v, f->f32, "");
    cg_val_store(f, t->dtype, p, idx, v, true);
}

static oct_status emit(cg_fn *f, const ir_node *n, const cg_tensor *x, const cg_tensor *w,
                       const cg_tensor *y, const sig_nest *s)
{
    if (cg_val_class(x->dtype) == CG_V_INT || cg_val_class(x->dtype) == CG_V_NONE ||
        y->dtype != x->dtype || (w && w->dtype != x->dtype))
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s of %s tensors is not "
                              "supported", n->op_type, ir_dtype_name(x->dtype));
    if (!y->nelems)
        return OCT_OK;
    size_t bytes = (size_t)s->n * 2 * sizeof(double);
    double *tab = ir_alloc(f->ctx, bytes);
    if (!tab)
        return OCT_EINTERNAL;
    for (int64_t m = 0; m < s->n; m++) {
        ops_twiddle(m, s->n, &tab[m], &tab[s->n + m]);
        if (!s->inverse)
            tab[s->n + m] = -tab[s->n + m];
    }
    LLVMValueRef ptab = cg_const_data(f, tab, bytes);
    LLVMValueRef px = cg_ptr(f, x), py = cg_ptr(f, y), pw = w ? cg_ptr(f, w) : NULL;
    LLVMValueRef zero = LLVMConstReal(f->f64, 0);
    cg_loop la, lb, lk, lt;
    cg_acc ar, ai, am;
    LLVMValueRef a = cg_loop_begin(f, &la, s->na);
    LLVMValueRef b = cg_loop_begin(f, &lb, s->nb);
    LLVMValueRef x0 = cg_madd(f, a, s->xa, cg_mul(f, b, cg_i64c(f, s->xb)));
    LLVMValueRef y0 = cg_madd(f, a, s->ya, cg_mul(f, b, cg_i64c(f, s->yb)));
    LLVMValueRef k = cg_loop_begin(f, &lk, s->n_out);
    LLVMValueRef t = cg_loop_begin(f, &lt, s->len);
    LLVMValueRef re = cg_acc_begin(f, &lt, &ar, zero);
    LLVMValueRef im = cg_acc_begin(f, &lt, &ai, zero);
    LLVMValueRef m = cg_acc_begin(f, &lt, &am, cg_i64c(f, 0)); /* (k * t) mod n */
    LLVMValueRef xi_at = cg_madd(f, t, s->xs, x0);
    LLVMValueRef xr = load_f64(f, x, px, xi_at);
    LLVMValueRef xi = s->comp == 2 ? load_f64(f, x, px, cg_add(f, xi_at, cg_i64c(f, 1))) : zero;
    if (w) {
        LLVMValueRef wt = load_f64(f, w, pw, t);
        xr = LLVMBuildFMul(f->b, xr, wt, "");
        xi = LLVMBuildFMul(f->b, xi, wt, "");
    }
    LLVMValueRef c = cg_load(f, f->f64, ptab, m);
    LLVMValueRef sn = cg_load(f, f->f64, ptab, cg_add(f, m, cg_i64c(f, s->n)));
    LLVMValueRef dre = LLVMBuildFSub(f->b, LLVMBuildFMul(f->b, xr, c, ""),
                                     LLVMBuildFMul(f->b, xi, sn, ""), "");
    LLVMValueRef dim = LLVMBuildFAdd(f->b, LLVMBuildFMul(f->b, xr, sn, ""),
                                     LLVMBuildFMul(f->b, xi, c, ""), "");
    cg_acc_end(f, &ar, cg_fast(LLVMBuildFAdd(f->b, re, dre, "")));
    cg_acc_end(f, &ai, cg_fast(LLVMBuildFAdd(f->b, im, dim, "")));
    LLVMValueRef mk = cg_add(f, m, k);
    LLVMValueRef wrap = LLVMBuildICmp(f->b, LLVMIntSGE, mk, cg_i64c(f, s->n), "");
    cg_acc_end(f, &am, LLVMBuildSelect(f->b, wrap, LLVMBuildSub(f->b, mk, cg_i64c(f, s->n), ""),
                                       mk, ""));
    cg_loop_end(f, &lt);
    re = cg_acc_result(f, &lt, &ar, zero);
    im = cg_acc_result(f, &lt, &ai, zero);
    if (s->inverse) {
        LLVMValueRef nn = LLVMConstReal(f->f64, (double)s->n);
        re = LLVMBuildFDiv(f->b, re, nn, "");
        im = LLVMBuildFDiv(f->b, im, nn, "");
    }
    LLVMValueRef y_at = cg_madd(f, k, s->ys, y0);
    store_f64(f, y, py, y_at, re);
    store_f64(f, y, py, cg_add(f, y_at, cg_i64c(f, 1)), im);
    cg_loop_end(f, &lk);
    cg_loop_end(f, &lb);
    cg_loop_end(f, &la);
    return OCT_OK;
}

/* The value of geometry input i, or NULL (absent or not a constant). */
static const ir_tensor *const_in(cg_fn *f, const ir_node *n, int i)
{
    cg_tensor *t = cg_in(f, n, i);
    return t && t->place == CG_PLACE_CONST ? t->value->init : NULL;
}

static oct_status plan_error(cg_fn *f, const ir_node *n, int r, const char *why)
{
    if (r == 0)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s needs constant "
                              "geometry inputs (length, axis, step)", n->op_type);
    return oct_node_error(f->ctx, OCT_EINPUT, n, "compile: %s", why);
}

oct_status cg_lower_dft(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *y = cg_out(f, n, 0);
    bool len_given = n->n_in > 1 && n->in[1], axis_given = n->n_in > 2 && n->in[2];
    ops_dft_plan p;
    const char *why = "";
    int r = ops_dft_plan_of(n, f->opset, x->rank, x->dims, const_in(f, n, 1), len_given,
                            const_in(f, n, 2), axis_given, &p, &why);
    if (r != 1)
        return plan_error(f, n, r, why);
    sig_nest s = {.na = p.outer, .nb = p.inner, .xa = p.n_in * p.inner * p.comp,
                  .xb = p.comp, .xs = p.inner * p.comp, .ya = p.n_out * p.inner * 2,
                  .yb = 2, .ys = p.inner * 2, .len = p.n_in < p.n ? p.n_in : p.n,
                  .comp = p.comp, .n = p.n, .n_out = p.n_out, .inverse = p.inverse};
    return emit(f, n, x, NULL, y, &s);
}

oct_status cg_lower_stft(cg_fn *f, const ir_node *n)
{
    cg_tensor *x = cg_in(f, n, 0), *w = cg_in(f, n, 2), *y = cg_out(f, n, 0);
    bool frame_given = n->n_in > 3 && n->in[3];
    ops_stft_plan p;
    const char *why = "";
    int r = ops_stft_plan_of(n, x->rank, x->dims, const_in(f, n, 1), w ? w->dims[0] : -1,
                             const_in(f, n, 3), frame_given, &p, &why);
    if (r != 1)
        return plan_error(f, n, r, why);
    sig_nest s = {.na = p.batch, .nb = p.frames, .xa = p.len * p.comp, .xb = p.step * p.comp,
                  .xs = p.comp, .ya = p.frames * p.bins * 2, .yb = p.bins * 2, .ys = 2,
                  .len = p.frame, .comp = p.comp, .n = p.frame, .n_out = p.bins,
                  .inverse = false};
    return emit(f, n, x, w, y, &s);
}
