/*
 * lower_control.c: If, Loop and Scan compiled.  (An If whose condition is
 * known at compile time never gets here: the inline_if pass has replaced
 * it by its taken branch.)
 *
 * Memory (cg_plan_control, after the main graph's plan): each subgraph
 * gets tensors of its own, planned by cg_plan_memory as a graph, with its
 * inputs (a body's iteration number, condition, carried values and scan
 * slices) and the outputs it computes in slots of their own after that
 * plan's peak, all in a region of scratch past the main graph's.  The
 * subgraphs of one graph's control nodes share their region (one runs at
 * a time, and both branches of an If start at the same offset); a nested
 * control node's region follows its enclosing subgraph's.  A value a
 * subgraph reads from outside is the outer tensor itself (same place;
 * the memory plan keeps such values alive to the end of their graph); an
 * outer initializer is given to the subgraph's value of that name, which
 * then reads it as a constant of its own.
 *
 * Code: every subgraph node gets its node function as a main-graph node
 * does (cg_node_function); the control node's function calls them.
 *   If    a branch on the condition's byte, each side running its branch
 *         and copying its outputs into the If's.  Each output has one
 *         static shape, so both branches must give it (else exit 3).
 *   Loop  while i < M and cond: the body, then its condition and carried
 *         outputs copied into its inputs (so a body never reads what it is
 *         writing) and each scan output copied to row i of the Loop's.  M
 *         and cond may be run-time values; with scan outputs, the trip
 *         count is also capped at the rows their static shape has (shape
 *         inference gives them M rows only when the body cannot stop
 *         early, ops/shape_control.c).
 *   Scan  (opset 9 on) for t < the scan axis length: each scan input's
 *         slice t (or L-1-t, reversed) copied into the body's input, the
 *         body, states copied back, scan outputs copied to their slice.
 *         Opset 8 (batch axis 0, sequence axis 1, optional sequence_lens):
 *         for each batch entry e, its states in, then for t < steps (its
 *         sequence_lens entry, clamped into [0, L]; L without them) slice
 *         t (or steps-1-t, reversed) of each scan input, the body, its
 *         items to row t of the scan outputs; rows steps..L-1 zeroed and
 *         the final states copied to entry e.  A sequence_lens entry
 *         outside [1, L], which the interpreter and ONNX Runtime refuse,
 *         sets the run-time fault slot (cm->fault, a scratch i64 past
 *         the subgraphs' region): the node finishes on the entry clamped
 *         into [0, L], so every access stays in bounds, and the run
 *         function returns 2 after it (cg_fault_check).
 * Everything moves with memmove; element types must be whole bytes.
 */
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/codegen_module.h"

typedef struct cg_subplan {
    const ir_graph *g;
    cg_tensor *tens;  /* by the subgraph's value ids */
} cg_subplan;

/* A chain of graphs and their tensors, innermost first. */
typedef struct cg_scope {
    const ir_graph *g;
    cg_tensor *tens;
    const struct cg_scope *up;
} cg_scope;

static uint64_t align_up(uint64_t v)
{
    return (v + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
}

static bool is_control(const ir_node *n)
{
    return n->op == IR_OP_IF || n->op == IR_OP_LOOP || n->op == IR_OP_SCAN;
}

/* The tensor of the value named `name` in the nearest graph of s that
 * defines it, or NULL. */
static const cg_tensor *scope_tensor(const cg_scope *s, const char *name)
{
    for (; s; s = s->up) {
        const ir_value *v = ir_graph_find(s->g, name);
        if (v && ir_value_defined_here(v) && s->tens[v->id].value)
            return &s->tens[v->id];
    }
    return NULL;
}

static oct_status add_subplan(cg_module *cm, const ir_graph *g, cg_tensor *tens)
{
    if (cm->n_subs == cm->cap_subs) {
        size_t cap = cm->cap_subs ? 2 * cm->cap_subs : 8;
        cg_subplan *s = ir_alloc_array(cm->ctx, cap, sizeof *s);
        if (!s)
            return OCT_EINTERNAL;
        if (cm->n_subs)
            memcpy(s, cm->subs, cm->n_subs * sizeof *s);
        cm->subs = s;
        cm->cap_subs = cap;
    }
    cm->subs[cm->n_subs++] = (cg_subplan){.g = g, .tens = tens};
    return OCT_OK;
}

static cg_subplan *find_subplan(cg_module *cm, const ir_graph *g)
{
    for (size_t i = 0; i < cm->n_subs; i++)
        if (cm->subs[i].g == g)
            return &cm->subs[i];
    return NULL;
}

static oct_status plan_graph(cg_module *cm, const cg_scope *s, uint64_t base, uint64_t *end);

/* Whether subgraph value v is read or written by sg (node slots, graph
 * inputs and outputs): the values that need a tensor. */
static bool touched(const ir_graph *sg, const ir_value *v)
{
    for (size_t i = 0; i < sg->n_inputs; i++)
        if (sg->inputs[i] == v)
            return true;
    for (size_t i = 0; i < sg->n_outputs; i++)
        if (sg->outputs[i] == v)
            return true;
    for (size_t k = 0; k < sg->n_nodes; k++) {
        const ir_node *n = sg->nodes[k];
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] == v)
                return true;
        for (int i = 0; i < n->n_out; i++)
            if (n->out[i] == v)
                return true;
    }
    return false;
}

/* The outer tensor a subgraph value that sg reads from outside stands for
 * (outer initializers: handed to v, see the file comment). */
static oct_status capture(cg_module *cm, const cg_scope *up, const ir_node *n, ir_value *v,
                          cg_tensor *t)
{
    const cg_tensor *o = scope_tensor(up, v->name);
    if (!o || o->place == CG_PLACE_NONE)
        return oct_node_error(cm->ctx, OCT_EUNSUPPORTED, n, "compile: value '%s', read "
                              "inside a subgraph, has no compiled tensor outside it",
                              v->name);
    if (o->place == CG_PLACE_CONST) {
        v->init = o->value->init;
        return cg_fill_tensor(cm->ctx, v, t);
    }
    *t = *o;
    t->value = v;
    t->in_concat = t->has_parts = t->fused = t->absorbed = t->kv_cache = false;
    return OCT_OK;
}

/* Plans subgraph sg of control node n (file comment) from offset base;
 * *end grows to the end of what it and its nested subgraphs use. */
static oct_status plan_subgraph(cg_module *cm, const cg_scope *up, const ir_node *n,
                                const ir_graph *sg, uint64_t base, uint64_t *end)
{
    oct_ctx *ctx = cm->ctx;
    size_t nv = sg->n_values ? sg->n_values : 1;
    cg_tensor *tens = ir_alloc_array(ctx, nv, sizeof *tens);
    bool *outer = ir_alloc_array(ctx, nv, sizeof *outer);
    if (!tens || !outer)
        return OCT_EINTERNAL;
    oct_status st = OCT_OK;
    for (size_t v = 0; v < sg->n_values && st == OCT_OK; v++) {
        ir_value *x = sg->values[v];
        if (!x->name[0] || !touched(sg, x))
            continue;
        outer[v] = !ir_value_defined_here(x);
        st = outer[v] ? capture(cm, up, n, x, &tens[v]) : cg_fill_tensor(ctx, x, &tens[v]);
        if (st == OCT_EUNSUPPORTED && !outer[v])
            oct_node_error(ctx, st, n, "compile: value '%s' of its '%s' subgraph has no "
                           "static shape%s", x->name, sg->name ? sg->name : "",
                           n->op == IR_OP_LOOP ? " (a Loop whose body's shapes change with "
                           "the iteration compiles unrolled when its trip count is known "
                           "at compile time: M a constant, no initial condition or a "
                           "constant true one, the body's condition output its input, at "
                           "most 4096 body nodes in all and no If, Loop or Scan in the "
                           "body; `octet run --jit` takes M and cond as constants)" : "");
    }
    uint64_t peak = 0;
    if (st == OCT_OK)
        st = cg_plan_memory(ctx, sg, NULL, tens, &peak);
    if (st != OCT_OK)
        return st;
    /* the body's inputs and the outputs it computes: slots past the plan */
    uint64_t off = align_up(peak);
    for (size_t v = 0; v < sg->n_values; v++) {
        cg_tensor *t = &tens[v];
        if (!t->value || outer[v])
            continue;
        if (t->place == CG_PLACE_INPUT || t->place == CG_PLACE_OUTPUT) {
            t->place = CG_PLACE_SCRATCH;
            t->offset = off;
            off += align_up(t->nbytes ? t->nbytes : 1);
        }
        if (t->place == CG_PLACE_SCRATCH)
            t->offset += base;
    }
    if ((st = add_subplan(cm, sg, tens)) != OCT_OK)
        return st;
    if (base + off > *end)
        *end = base + off;
    cg_scope inner = {.g = sg, .tens = tens, .up = up};
    return plan_graph(cm, &inner, base + off, end);
}

static oct_status plan_graph(cg_module *cm, const cg_scope *s, uint64_t base, uint64_t *end)
{
    oct_status st = OCT_OK;
    for (size_t k = 0; k < s->g->n_nodes && st == OCT_OK; k++) {
        const ir_node *n = s->g->nodes[k];
        if (!is_control(n))
            continue;
        if (n->op == IR_OP_SCAN && ir_model_opset(cm->model, "") < 9 && n->n_in > 0 &&
            n->in[0])
            cm->fault = true; /* an opset-8 Scan checks its sequence_lens */
        for (int a = 0; a < n->n_attr && st == OCT_OK; a++)
            if (n->attrs[a].type == IR_ATTR_GRAPH && n->attrs[a].graph)
                st = plan_subgraph(cm, s, n, n->attrs[a].graph, base, end);
    }
    return st;
}

oct_status cg_plan_control(cg_module *cm)
{
    cg_scope top = {.g = cm->model->graph, .tens = cm->tens, .up = NULL};
    uint64_t base = align_up(cm->scratch_size), end = base;
    oct_status st = plan_graph(cm, &top, base, &end);
    if (st == OCT_OK && cm->n_subs)
        cm->scratch_size = end;
    if (st == OCT_OK && cm->fault) {
        cm->fault_offset = align_up(cm->scratch_size);
        cm->scratch_size = cm->fault_offset + align_up(8);
    }
    return st;
}

static LLVMValueRef fault_ptr(cg_fn *f, LLVMBuilderRef b, LLVMValueRef scratch)
{
    LLVMValueRef off = cg_i64c(f, (int64_t)f->cm->fault_offset);
    return LLVMBuildGEP2(b, f->i8, scratch, &off, 1, "fault");
}

void cg_fault_clear(cg_module *cm, cg_fn *f, LLVMBuilderRef b, LLVMValueRef scratch)
{
    if (cm->fault)
        LLVMBuildStore(b, cg_i64c(f, 0), fault_ptr(f, b, scratch));
}

void cg_fault_check(cg_module *cm, cg_fn *f, LLVMBuilderRef b, const ir_node *n,
                    LLVMValueRef scratch)
{
    if (!cm->fault || !is_control(n)) /* only a Scan sets it, maybe nested */
        return;
    LLVMValueRef v = LLVMBuildLoad2(b, f->i64, fault_ptr(f, b, scratch), "");
    cg_return2_if(cm, f, b, LLVMBuildICmp(b, LLVMIntNE, v, cg_i64c(f, 0), ""));
}

/* ---- code ------------------------------------------------------------------ */

/* Calls, in the current function, the node functions of subgraph sp. */
static oct_status run_body(cg_fn *f, const cg_subplan *sp)
{
    cg_tensor *outer = f->tens;
    f->tens = sp->tens;
    LLVMTypeRef params[4] = {f->ptr, f->ptr, f->ptr, f->ptr};
    LLVMTypeRef ty = LLVMFunctionType(f->vd, params, 4, 0);
    LLVMValueRef args[4] = {f->arg_in, f->arg_out, f->arg_scratch, f->arg_pool};
    oct_status st = OCT_OK;
    for (size_t k = 0; k < sp->g->n_nodes && st == OCT_OK; k++) {
        LLVMValueRef fn;
        st = cg_node_function(f, sp->g, k, NULL, "sub", &fn);
        if (st == OCT_OK && fn)
            LLVMBuildCall2(f->b, ty, fn, args, 4, "");
    }
    f->tens = outer;
    return st;
}

/* Address of tensor t of the tensors `tens` (cg_ptr reads constants
 * through f->tens), plus `off` bytes when not NULL. */
static LLVMValueRef addr(cg_fn *f, cg_tensor *tens, const cg_tensor *t, LLVMValueRef off)
{
    cg_tensor *saved = f->tens;
    f->tens = tens;
    LLVMValueRef p = cg_ptr(f, t);
    f->tens = saved;
    return off ? cg_gep(f, f->i8, p, off) : p;
}

static void move(cg_fn *f, LLVMValueRef dst, LLVMValueRef src, uint64_t bytes)
{
    if (bytes)
        LLVMBuildMemMove(f->b, dst, 1, src, 1, cg_i64c(f, (int64_t)bytes));
}

/* dst and src have the same element type and size (what the copies need). */
static oct_status same_layout(cg_fn *f, const ir_node *n, const cg_tensor *dst,
                              const cg_tensor *src, const char *what)
{
    if (dst->dtype == src->dtype && dst->nbytes == src->nbytes &&
        dst->nelems * ir_dtype_info(dst->dtype)->bits == dst->nbytes * 8)
        return OCT_OK;
    return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: %s '%s' (%s, %llu "
                          "elements) does not match '%s' (%s, %llu elements), which "
                          "compiled code needs: one static shape per value", what,
                          src->value->name, ir_dtype_name(src->dtype),
                          (unsigned long long)src->nelems, dst->value->name,
                          ir_dtype_name(dst->dtype), (unsigned long long)dst->nelems);
}

static oct_status need_plan(cg_fn *f, const ir_node *n, const ir_graph *g, cg_subplan **sp)
{
    *sp = g ? find_subplan(f->cm, g) : NULL;
    if (!*sp)
        return oct_node_error(f->ctx, OCT_EINTERNAL, n, "compile: subgraph not planned");
    return OCT_OK;
}

/* The byte of a one-element bool tensor, as an i1. */
static LLVMValueRef load_bool(cg_fn *f, cg_tensor *tens, const cg_tensor *t)
{
    LLVMValueRef b = LLVMBuildLoad2(f->b, f->i8, addr(f, tens, t, NULL), "");
    return LLVMBuildICmp(f->b, LLVMIntNE, b, LLVMConstInt(f->i8, 0, 0), "");
}

static oct_status lower_if(cg_fn *f, const ir_node *n)
{
    cg_subplan *sp[2];
    const ir_graph *br[2] = {ir_node_subgraph(n, "then_branch"),
                             ir_node_subgraph(n, "else_branch")};
    oct_status st = need_plan(f, n, br[0], &sp[0]);
    if (st == OCT_OK)
        st = need_plan(f, n, br[1], &sp[1]);
    const cg_tensor *c = cg_in(f, n, 0);
    if (st == OCT_OK && (c->dtype != IR_DT_BOOL || c->nelems != 1))
        return oct_input_error(f->ctx, OCT_EINPUT, n, 0, "If's cond must be one bool");
    for (int i = 0; i < n->n_out && st == OCT_OK; i++)
        for (int b = 0; b < 2 && st == OCT_OK && n->out[i]; b++)
            st = same_layout(f, n, cg_out(f, n, i),
                             &sp[b]->tens[br[b]->outputs[i]->id],
                             b ? "else_branch output" : "then_branch output");
    if (st != OCT_OK)
        return st;
    LLVMBasicBlockRef side[2] = {LLVMAppendBasicBlockInContext(f->llc, f->fn, "then"),
                                 LLVMAppendBasicBlockInContext(f->llc, f->fn, "else")};
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(f->llc, f->fn, "join");
    LLVMBuildCondBr(f->b, load_bool(f, f->tens, c), side[0], side[1]);
    for (int b = 0; b < 2 && st == OCT_OK; b++) {
        LLVMPositionBuilderAtEnd(f->b, side[b]);
        st = run_body(f, sp[b]);
        for (int i = 0; i < n->n_out && st == OCT_OK; i++) {
            cg_tensor *y = cg_out(f, n, i);
            if (!y)
                continue;
            const cg_tensor *src = &sp[b]->tens[br[b]->outputs[i]->id];
            move(f, addr(f, f->tens, y, NULL), addr(f, sp[b]->tens, src, NULL), y->nbytes);
        }
        LLVMBuildBr(f->b, join);
    }
    LLVMPositionBuilderAtEnd(f->b, join);
    return st;
}

/* Copies the body's cond and carried outputs (from index `from` of its
 * outputs) into its inputs (from index `to`), n_state of them. */
static void carry(cg_fn *f, const cg_subplan *sp, int from, int to, int n_state)
{
    const ir_graph *b = sp->g;
    for (int i = 0; i < n_state; i++) {
        const cg_tensor *src = &sp->tens[b->outputs[from + i]->id];
        const cg_tensor *dst = &sp->tens[b->inputs[to + i]->id];
        move(f, addr(f, sp->tens, dst, NULL), addr(f, sp->tens, src, NULL), dst->nbytes);
    }
}

static oct_status lower_loop(cg_fn *f, const ir_node *n)
{
    ops_control c;
    cg_subplan *sp;
    oct_status st = ops_control_check(f->ctx, n, f->opset, &c);
    if (st == OCT_OK)
        st = need_plan(f, n, c.body, &sp);
    if (st != OCT_OK)
        return st;
    const ir_graph *b = c.body;
    cg_tensor *m = cg_in(f, n, 0), *cond0 = cg_in(f, n, 1);
    if (!m && !cond0)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: a Loop with neither "
                              "a trip count nor a condition never ends");
    if (m && (m->dtype != IR_DT_INT64 || m->nelems != 1))
        return oct_input_error(f->ctx, OCT_EINPUT, n, 0, "Loop's M must be one int64");
    if (cond0 && (cond0->dtype != IR_DT_BOOL || cond0->nelems != 1))
        return oct_input_error(f->ctx, OCT_EINPUT, n, 1, "Loop's cond must be one bool");
    const cg_tensor *it_t = &sp->tens[b->inputs[0]->id], *cin = &sp->tens[b->inputs[1]->id];
    const cg_tensor *cout = &sp->tens[b->outputs[0]->id];
    if (it_t->dtype != IR_DT_INT64 || it_t->nelems != 1 || cin->dtype != IR_DT_BOOL ||
        cin->nelems != 1)
        return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: the body's iteration "
                              "number must be one int64 and its condition one bool");
    st = same_layout(f, n, cin, cout, "the body's condition output");
    for (int i = 0; i < c.n_state && st == OCT_OK; i++) {
        st = same_layout(f, n, &sp->tens[b->inputs[2 + i]->id], cg_in(f, n, 2 + i),
                         "loop-carried initial value");
        if (st == OCT_OK)
            st = same_layout(f, n, &sp->tens[b->inputs[2 + i]->id],
                             &sp->tens[b->outputs[1 + i]->id], "loop-carried body output");
        if (st == OCT_OK && n->out[i])
            st = same_layout(f, n, cg_out(f, n, i), &sp->tens[b->outputs[1 + i]->id],
                             "loop-carried body output");
    }
    /* the rows each scan output has: a bound on the trip count */
    int64_t rows = -1;
    for (int k = 0; k < c.n_scan_out && st == OCT_OK; k++) {
        const cg_tensor *y = cg_out(f, n, c.n_state + k);
        const cg_tensor *item = &sp->tens[b->outputs[1 + c.n_state + k]->id];
        if (!y)
            continue;
        if (y->rank < 1 || y->dtype != item->dtype || y->nbytes != (uint64_t)y->dims[0] *
            item->nbytes || item->nelems * ir_dtype_info(item->dtype)->bits != item->nbytes * 8)
            return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: scan output '%s' "
                                  "is not rows of the body's '%s'", y->value->name,
                                  item->value->name);
        if (rows < 0 || y->dims[0] < rows)
            rows = y->dims[0];
    }
    if (st != OCT_OK)
        return st;
    /* initial condition and carried values into the body's inputs */
    if (cond0)
        move(f, addr(f, sp->tens, cin, NULL), addr(f, f->tens, cond0, NULL), 1);
    else
        LLVMBuildStore(f->b, LLVMConstInt(f->i8, 1, 0), addr(f, sp->tens, cin, NULL));
    for (int i = 0; i < c.n_state; i++) {
        const cg_tensor *dst = &sp->tens[b->inputs[2 + i]->id];
        move(f, addr(f, sp->tens, dst, NULL), addr(f, f->tens, cg_in(f, n, 2 + i), NULL),
             dst->nbytes);
    }
    LLVMValueRef trip = m ? LLVMBuildLoad2(f->b, f->i64, addr(f, f->tens, m, NULL), "M")
                          : cg_i64c(f, INT64_MAX);
    if (rows >= 0) {
        LLVMValueRef r = cg_i64c(f, rows);
        trip = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, trip, r, ""), trip, r, "");
    }
    LLVMBasicBlockRef entry = LLVMGetInsertBlock(f->b);
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(f->llc, f->fn, "loop"),
                      body = LLVMAppendBasicBlockInContext(f->llc, f->fn, "body"),
                      done = LLVMAppendBasicBlockInContext(f->llc, f->fn, "done");
    LLVMBuildBr(f->b, head);
    LLVMPositionBuilderAtEnd(f->b, head);
    LLVMValueRef i = LLVMBuildPhi(f->b, f->i64, "i");
    LLVMValueRef go = LLVMBuildAnd(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, i, trip, ""),
                                   load_bool(f, sp->tens, cin), "");
    LLVMBuildCondBr(f->b, go, body, done);
    LLVMPositionBuilderAtEnd(f->b, body);
    LLVMBuildStore(f->b, i, addr(f, sp->tens, it_t, NULL));
    st = run_body(f, sp);
    for (int k = 0; k < c.n_scan_out && st == OCT_OK; k++) {
        cg_tensor *y = cg_out(f, n, c.n_state + k);
        const cg_tensor *item = &sp->tens[b->outputs[1 + c.n_state + k]->id];
        if (y)
            move(f, addr(f, f->tens, y, cg_mul(f, i, cg_i64c(f, (int64_t)item->nbytes))),
                 addr(f, sp->tens, item, NULL), item->nbytes);
    }
    carry(f, sp, 0, 1, 1 + c.n_state);
    LLVMValueRef i1 = LLVMBuildAdd(f->b, i, cg_i64c(f, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(f->b);
    LLVMBuildBr(f->b, head);
    LLVMValueRef vals[2] = {cg_i64c(f, 0), i1};
    LLVMBasicBlockRef from[2] = {entry, latch};
    LLVMAddIncoming(i, vals, from, 2);
    LLVMPositionBuilderAtEnd(f->b, done);
    for (int s = 0; s < c.n_state; s++) {
        cg_tensor *y = cg_out(f, n, s);
        if (y)
            move(f, addr(f, f->tens, y, NULL),
                 addr(f, sp->tens, &sp->tens[b->inputs[2 + s]->id], NULL), y->nbytes);
    }
    return st;
}

/* Entry i of INTS attribute `name` normalized against rank, or 0. */
static int scan_axis(const ir_node *n, const char *name, size_t i, int rank)
{
    const ir_attr *a = ir_node_attr(n, name);
    int64_t ax = a && a->type == IR_ATTR_INTS && i < a->n ? a->ints[i] : 0;
    return (int)(ax < 0 ? ax + rank : ax);
}

static bool scan_reversed(const ir_node *n, const char *name, size_t i)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_INTS && i < a->n && a->ints[i] != 0;
}

/* Copies slice `pos` along `axis` of whole tensor w (extent len there) to
 * or from the packed slice p (to_whole: p into w). */
static void slice_copy(cg_fn *f, cg_tensor *wtens, const cg_tensor *w, int axis, int64_t len,
                       LLVMValueRef pos, LLVMValueRef p, bool to_whole)
{
    uint64_t outer = 1, inner = w->nbytes / (uint64_t)(len ? len : 1);
    for (int d = 0; d < axis; d++)
        outer *= (uint64_t)w->dims[d];
    inner /= outer ? outer : 1;
    cg_loop l;
    LLVMValueRef o = cg_loop_begin(f, &l, (int64_t)outer);
    LLVMValueRef woff = cg_mul(f, cg_add(f, cg_mul(f, o, cg_i64c(f, len)), pos),
                               cg_i64c(f, (int64_t)inner));
    LLVMValueRef wp = addr(f, wtens, w, woff);
    LLVMValueRef sp = cg_gep(f, f->i8, p, cg_mul(f, o, cg_i64c(f, (int64_t)inner)));
    if (to_whole)
        move(f, wp, sp, inner);
    else
        move(f, sp, wp, inner);
    cg_loop_end(f, &l);
}

/* Scan of opset 8 (file comment): checks then code. */
static oct_status lower_scan8(cg_fn *f, const ir_node *n, const ops_control *c,
                              const cg_subplan *sp)
{
    const ir_graph *b = c->body;
    const cg_tensor *x0 = cg_in(f, n, 1 + c->n_state);
    if (!x0 || x0->rank < 2)
        return oct_node_error(f->ctx, OCT_EINPUT, n, "opset 8 Scan: scan inputs need a "
                              "batch axis 0 and a sequence axis 1");
    int64_t batch = x0->dims[0], len = x0->dims[1];
    cg_tensor *lens = cg_in(f, n, 0);
    if (lens && ((lens->dtype != IR_DT_INT64 && lens->dtype != IR_DT_INT32) ||
                 lens->nelems != (uint64_t)batch))
        return oct_input_error(f->ctx, OCT_EINPUT, n, 0, "sequence_lens must be int64 "
                               "with one entry per batch entry (%lld)", (long long)batch);
    /* every outer tensor is `batch` entries (scan inputs `batch` * len
     * slices) of the body's tensor, byte-sized elements */
    int n_body_in = c->n_state + c->n_scan_in;
    for (int i = 0; i < n_body_in + n->n_out; i++) {
        bool is_in = i < n_body_in;
        int k = is_in ? i : i - n_body_in;
        const cg_tensor *outer = is_in ? cg_in(f, n, 1 + k) : cg_out(f, n, k);
        const cg_tensor *inner = &sp->tens[(is_in ? b->inputs[k] : b->outputs[k])->id];
        bool scanned = k >= c->n_state;
        uint64_t entries = (uint64_t)batch * (uint64_t)(scanned ? len : 1);
        if (!outer)
            continue;
        if (outer->rank < 1 + scanned || outer->dims[0] != batch ||
            (scanned && outer->dims[1] != len) || outer->dtype != inner->dtype ||
            outer->nbytes != entries * inner->nbytes ||
            inner->nelems * ir_dtype_info(inner->dtype)->bits != inner->nbytes * 8)
            return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: '%s' is not %s "
                                  "of the body's '%s' (opset 8 Scan)", outer->value->name,
                                  scanned ? "[batch, sequence] slices" : "batch entries",
                                  inner->value->name);
    }
    for (int i = 0; i < c->n_state; i++) {
        oct_status st = same_layout(f, n, &sp->tens[b->inputs[i]->id],
                                    &sp->tens[b->outputs[i]->id], "state body output");
        if (st != OCT_OK)
            return st;
    }
    cg_loop lb;
    LLVMValueRef e = cg_loop_begin(f, &lb, batch);
    /* steps of entry e: sequence_lens[e]; outside [1, len] it sets the
     * fault slot (the run returns 2) and is clamped into [0, len] */
    LLVMValueRef steps = cg_i64c(f, len);
    if (lens) {
        bool wide = lens->dtype == IR_DT_INT64;
        LLVMValueRef p = addr(f, f->tens, lens, cg_mul(f, e, cg_i64c(f, wide ? 8 : 4)));
        LLVMValueRef v = LLVMBuildLoad2(f->b, wide ? f->i64 : f->i32, p, "");
        v = wide ? v : LLVMBuildSExt(f->b, v, f->i64, "");
        LLVMValueRef bad = LLVMBuildOr(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, v, cg_i64c(f, 1), ""),
                                       LLVMBuildICmp(f->b, LLVMIntSGT, v, steps, ""), "");
        LLVMValueRef fp = fault_ptr(f, f->b, f->arg_scratch);
        LLVMValueRef old = LLVMBuildLoad2(f->b, f->i64, fp, "");
        LLVMBuildStore(f->b, LLVMBuildOr(f->b, old, LLVMBuildZExt(f->b, bad, f->i64, ""), ""),
                       fp);
        v = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, v, steps, ""), v, steps, "");
        LLVMValueRef zero = cg_i64c(f, 0);
        steps = LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, v, zero, ""), v, zero, "");
    }
    for (int i = 0; i < c->n_state; i++) {
        const cg_tensor *dst = &sp->tens[b->inputs[i]->id];
        move(f, addr(f, sp->tens, dst, NULL),
             addr(f, f->tens, cg_in(f, n, 1 + i), cg_mul(f, e, cg_i64c(f, (int64_t)dst->nbytes))),
             dst->nbytes);
    }
    LLVMValueRef row0 = cg_mul(f, e, cg_i64c(f, len)); /* entry e's first slice */
    cg_loop lt;
    LLVMValueRef t = cg_loop_begin_v(f, &lt, steps);
    LLVMValueRef back = LLVMBuildSub(f->b, LLVMBuildSub(f->b, steps, cg_i64c(f, 1), ""), t, "");
    for (int j = 0; j < c->n_scan_in; j++) {
        const cg_tensor *slice = &sp->tens[b->inputs[c->n_state + j]->id];
        LLVMValueRef pos = cg_add(f, row0, scan_reversed(n, "directions", (size_t)j) ? back : t);
        move(f, addr(f, sp->tens, slice, NULL),
             addr(f, f->tens, cg_in(f, n, 1 + c->n_state + j),
                  cg_mul(f, pos, cg_i64c(f, (int64_t)slice->nbytes))),
             slice->nbytes);
    }
    oct_status st = run_body(f, sp);
    for (int k = 0; k < c->n_scan_out && st == OCT_OK; k++) {
        cg_tensor *y = cg_out(f, n, c->n_state + k);
        const cg_tensor *item = &sp->tens[b->outputs[c->n_state + k]->id];
        if (y)
            move(f, addr(f, f->tens, y, cg_mul(f, cg_add(f, row0, t),
                                                cg_i64c(f, (int64_t)item->nbytes))),
                 addr(f, sp->tens, item, NULL), item->nbytes);
    }
    carry(f, sp, 0, 0, c->n_state);
    cg_loop_end(f, &lt);
    /* rows past the entry's steps: zeros; its final states */
    for (int k = 0; k < c->n_scan_out && st == OCT_OK; k++) {
        cg_tensor *y = cg_out(f, n, c->n_state + k);
        LLVMValueRef item = cg_i64c(f, (int64_t)sp->tens[b->outputs[c->n_state + k]->id].nbytes);
        if (y)
            LLVMBuildMemSet(f->b, addr(f, f->tens, y, cg_mul(f, cg_add(f, row0, steps), item)),
                            LLVMConstInt(f->i8, 0, 0),
                            cg_mul(f, LLVMBuildSub(f->b, cg_i64c(f, len), steps, ""), item), 1);
    }
    for (int i = 0; i < c->n_state; i++) {
        cg_tensor *y = cg_out(f, n, i);
        const cg_tensor *src = &sp->tens[b->inputs[i]->id];
        if (y)
            move(f, addr(f, f->tens, y, cg_mul(f, e, cg_i64c(f, (int64_t)src->nbytes))),
                 addr(f, sp->tens, src, NULL), src->nbytes);
    }
    cg_loop_end(f, &lb);
    return st;
}

static oct_status lower_scan(cg_fn *f, const ir_node *n)
{
    ops_control c;
    cg_subplan *sp;
    oct_status st = ops_control_check(f->ctx, n, f->opset, &c);
    if (st == OCT_OK)
        st = need_plan(f, n, c.body, &sp);
    if (st != OCT_OK)
        return st;
    if (c.first)
        return lower_scan8(f, n, &c, sp);
    const ir_graph *b = c.body;
    int64_t len = -1;
    for (int j = 0; j < c.n_scan_in; j++) {
        const cg_tensor *x = cg_in(f, n, c.n_state + j);
        int ax = x ? scan_axis(n, "scan_input_axes", (size_t)j, x->rank) : -1;
        if (!x || ax < 0 || ax >= x->rank || (len >= 0 && x->dims[ax] != len))
            return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: scan input %d "
                                  "has no axis of the scan's length", j);
        len = x->dims[ax];
        const cg_tensor *slice = &sp->tens[b->inputs[c.n_state + j]->id];
        if (slice->dtype != x->dtype || slice->nbytes * (uint64_t)len != x->nbytes ||
            x->nelems * ir_dtype_info(x->dtype)->bits != x->nbytes * 8)
            return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: the body's input "
                                  "'%s' is not a slice of scan input '%s'", slice->value->name,
                                  x->value->name);
    }
    for (int i = 0; i < c.n_state && st == OCT_OK; i++) {
        const cg_tensor *in = &sp->tens[b->inputs[i]->id];
        st = same_layout(f, n, in, cg_in(f, n, i), "initial state");
        if (st == OCT_OK)
            st = same_layout(f, n, in, &sp->tens[b->outputs[i]->id], "state body output");
        if (st == OCT_OK && n->out[i])
            st = same_layout(f, n, cg_out(f, n, i), in, "state");
    }
    for (int k = 0; k < c.n_scan_out && st == OCT_OK; k++) {
        const cg_tensor *y = cg_out(f, n, c.n_state + k);
        const cg_tensor *item = &sp->tens[b->outputs[c.n_state + k]->id];
        int ax = y ? scan_axis(n, "scan_output_axes", (size_t)k, y->rank) : 0;
        if (y && (ax < 0 || ax >= y->rank || y->dims[ax] != len || y->dtype != item->dtype ||
                  item->nbytes * (uint64_t)len != y->nbytes))
            return oct_node_error(f->ctx, OCT_EUNSUPPORTED, n, "compile: scan output '%s' "
                                  "is not %lld slices of the body's '%s'", y->value->name,
                                  (long long)len, item->value->name);
    }
    if (st != OCT_OK)
        return st;
    for (int i = 0; i < c.n_state; i++) {
        const cg_tensor *dst = &sp->tens[b->inputs[i]->id];
        move(f, addr(f, sp->tens, dst, NULL), addr(f, f->tens, cg_in(f, n, i), NULL),
             dst->nbytes);
    }
    cg_loop l;
    LLVMValueRef t = cg_loop_begin(f, &l, len);
    LLVMValueRef back = LLVMBuildSub(f->b, cg_i64c(f, len - 1), t, "");
    for (int j = 0; j < c.n_scan_in; j++) {
        cg_tensor *x = cg_in(f, n, c.n_state + j);
        const cg_tensor *slice = &sp->tens[b->inputs[c.n_state + j]->id];
        bool rev = scan_reversed(n, "scan_input_directions", (size_t)j);
        slice_copy(f, f->tens, x, scan_axis(n, "scan_input_axes", (size_t)j, x->rank), len,
                   rev ? back : t, addr(f, sp->tens, slice, NULL), false);
    }
    st = run_body(f, sp);
    for (int k = 0; k < c.n_scan_out && st == OCT_OK; k++) {
        cg_tensor *y = cg_out(f, n, c.n_state + k);
        const cg_tensor *item = &sp->tens[b->outputs[c.n_state + k]->id];
        bool rev = scan_reversed(n, "scan_output_directions", (size_t)k);
        if (y)
            slice_copy(f, f->tens, y, scan_axis(n, "scan_output_axes", (size_t)k, y->rank),
                       len, rev ? back : t, addr(f, sp->tens, item, NULL), true);
    }
    carry(f, sp, 0, 0, c.n_state);
    cg_loop_end(f, &l);
    for (int i = 0; i < c.n_state; i++) {
        cg_tensor *y = cg_out(f, n, i);
        if (y)
            move(f, addr(f, f->tens, y, NULL),
                 addr(f, sp->tens, &sp->tens[b->inputs[i]->id], NULL), y->nbytes);
    }
    return st;
}

oct_status cg_lower_control(cg_fn *f, const ir_node *n)
{
    switch (n->op) {
    case IR_OP_IF: return lower_if(f, n);
    case IR_OP_LOOP: return lower_loop(f, n);
    case IR_OP_SCAN: return lower_scan(f, n);
    default:
        return oct_node_error(f->ctx, OCT_EINTERNAL, n, "compile: not a control-flow op");
    }
}

oct_status cg_control_shape_error(oct_ctx *ctx, const ir_node *n, const ir_value *v)
{
    const char *why =
        n->op == IR_OP_IF ? "its branches give it different (or unknown) shapes and the "
                            "condition is known only at run time"
        : n->op == IR_OP_LOOP ? "the trip count, which its length is, is decided at run time "
                                "(a constant M and a body whose condition cannot turn false "
                                "fix it)"
                              : "the body or the scanned inputs have no static shape";
    return oct_diagf(ctx, OCT_SEV_ERROR, OCT_EUNSUPPORTED, n, 1, v->producer_out, v->name,
                     "compile: '%s' has no static shape: %s; compiled code has one static "
                     "shape per value (`octet run` without compiling runs it)", v->name, why);
}
