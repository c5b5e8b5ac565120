"""The ops of issue 19 (the unary Tan..Atanh and Shrink, CumSum, Hardmax,
OneHot, EyeLike, and the index ops that follow in cases()) on one-node
models built here at shapes other than the ONNX node tests' (odd sizes,
negative axes, integer types, out-of-range and negative indices): each
runs through the reference interpreter (`octet run`), the JIT (`octet run
--jit`) and a compiled .so (`octet compile`), and every output is compared
with ONNX Runtime (onnx.reference where ORT does not run the model):
floats within 1e-5 * max(1, max|want|) (the libm functions of the
interpreter and ORT differ in the last bits), integers and booleans
exactly.  The compiled outputs are also compared with the interpreter's.

usage: test_ops_index.py"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402


RTOL = 1e-5
rng = np.random.default_rng(1919)
failures = 0


def check(cond, what):
    global failures
    print("%s  %s" % ("ok  " if cond else "FAIL", what), flush=True)
    failures += not cond


def rnd(*shape, dtype=np.float32, lo=-3.0, hi=3.0):
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(lo, hi, shape).astype(dtype)
    return rng.integers(int(lo), int(hi), shape, endpoint=True).astype(dtype)


def i64(*v):
    return np.array(v, dtype=np.int64)


def tt(a):
    return helper.np_dtype_to_tensor_dtype(a.dtype)


def model(name, node, inputs, out_type=None, inits=(), opset=18):
    """One node named n0 with graph inputs `inputs` ((name, array)), one
    output y of out_type (None: the first input's type)."""
    vi = [helper.make_tensor_value_info(n, tt(a), a.shape) for n, a in inputs]
    elem = tt(inputs[0][1]) if out_type is None else out_type
    outs = [helper.make_tensor_value_info(o, TensorProto.INT64 if k else elem, None)
            for k, o in enumerate(node.output)]  # a second output: TopK's indices
    g = helper.make_graph([node], name, vi, outs,
                          [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def compare_all(label, names, got, want):
    for k, name in enumerate(names):
        ok, how = cgutil.same(got[k], want[k], RTOL)
        check(ok, "%s output %s: %s" % (label, name, how))


def run_case(d, name, m, inputs, oracle=cgutil.oracle):
    """oracle(path, inputs) -> (who, outputs in graph order)."""
    path = os.path.join(d, name + ".onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    names = [o.name for o in m.graph.output]
    who, want = oracle(path, inputs)
    p, ref = cgutil.run_octet(path, inputs)
    check(ref is not None, "%s: the interpreter runs it %s" % (name, p.stderr.strip()))
    if ref is not None:
        compare_all("%s: interpreter vs %s," % (name, who), names,
                    [ref[cgutil.safe_name(n)] for n in names], want)
    p, jit = cgutil.run_octet(path, inputs, ["--jit"])
    check(jit is not None, "%s: run --jit runs it %s" % (name, p.stderr.strip()))
    if jit is not None:
        jit_list = [jit[cgutil.safe_name(n)] for n in names]
        compare_all("%s: --jit vs %s," % (name, who), names, jit_list, want)
        if ref is not None:
            compare_all("%s: --jit vs the interpreter," % name, names, jit_list,
                        [ref[cgutil.safe_name(n)] for n in names])
    base = os.path.join(d, name)
    p = subprocess.run([cgutil.OCTET, "compile", path, "-o", base, "--emit=so,header"],
                       capture_output=True, text=True)
    check(p.returncode == 0, "%s: octet compile compiles it %s" % (name, p.stderr.strip()))
    if p.returncode:
        return
    sig = cgutil.signature(base + ".so", name)
    by_name = dict(inputs)
    _, outs = cgutil.run_so(base + ".so", name, [by_name[s["name"]] for s in sig["inputs"]])
    compare_all("%s: compiled .so vs %s," % (name, who), names, outs, want)


def node(op, ins, **attrs):
    return helper.make_node(op, ins, ["y"], name="n0", **attrs)


def cases():
    # ---- unary: odd shapes, each op's domain ----
    for op, lo, hi in [("Tan", -1.5, 1.5), ("Asin", -1, 1), ("Acos", -1, 1), ("Atan", -9, 9),
                       ("Sinh", -5, 5), ("Cosh", -5, 5), ("Asinh", -9, 9), ("Acosh", 1, 9),
                       ("Atanh", -0.99, 0.99)]:
        ins = [("x", rnd(3, 5, 7, lo=lo, hi=hi))]
        yield op.lower() + "_3x5x7", model(op, node(op, ["x"]), ins), ins
    ins = [("x", rnd(2, 9, lo=-4, hi=4))]
    yield "shrink_lambd_bias", model("shrink", node("Shrink", ["x"], lambd=1.25, bias=0.75),
                                     ins), ins
    ins = [("x", rnd(11, dtype=np.float64, lo=-2, hi=2))]
    yield "shrink_default_f64", model("shrink", node("Shrink", ["x"]), ins), ins
    # ---- CumSum: negative axis, reverse + exclusive, integers ----
    for ex, rev in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        ins = [("x", rnd(3, 5, 4))]
        yield ("cumsum_axis_m2_ex%d_rev%d" % (ex, rev),
               model("cumsum", node("CumSum", ["x", "axis"], exclusive=ex, reverse=rev), ins,
                     inits=[("axis", i64(-2))]), ins)
    ins = [("x", rnd(4, 7, dtype=np.int32, lo=-50, hi=50))]
    yield ("cumsum_int32_axis1_reverse",
           model("cumsum", node("CumSum", ["x", "axis"], reverse=1), ins,
                 inits=[("axis", np.array(1, dtype=np.int32))]), ins)
    ins = [("x", rnd(6, 3, dtype=np.int64, lo=-9, hi=9))]
    yield ("cumsum_int64_axis0_exclusive",
           model("cumsum", node("CumSum", ["x", "axis"], exclusive=1), ins,
                 inits=[("axis", i64(0))]), ins)
    # ---- Hardmax: ties take the first, negative axis, axis 0 ----
    x = rnd(3, 4, 5)
    x[1, 2, :] = 7.0  # a row of ties along the last axis
    x[:, 1, 3] = 9.0  # ties along axis 0
    ins = [("x", x)]
    yield "hardmax_axis_m1_ties", model("hardmax", node("Hardmax", ["x"], axis=-1), ins), ins
    yield "hardmax_axis0_ties", model("hardmax", node("Hardmax", ["x"], axis=0), ins), ins
    # ---- OneHot: negative and out-of-range indices, axis inside, int values ----
    ind = i64(0, -1, 4, 5, -5, -6, 2, 3, 1, -2, 7, 0).reshape(3, 4)
    ins = [("ind", ind)]
    yield ("onehot_axis1_int64_values",
           model("onehot", node("OneHot", ["ind", "depth", "vals"], axis=1), ins,
                 out_type=TensorProto.INT64,
                 inits=[("depth", np.array(5, dtype=np.int64)), ("vals", i64(-3, 8))]), ins)
    indf = np.array([[0.7, -1.2, 2.9], [-3.5, 3.0, 1.0]], dtype=np.float32)
    ins = [("ind", indf)]
    yield ("onehot_float_indices_axis_m1",
           model("onehot", node("OneHot", ["ind", "depth", "vals"], axis=-1), ins,
                 out_type=TensorProto.FLOAT,
                 inits=[("depth", np.array(4.0, dtype=np.float32)),
                        ("vals", np.array([0.5, 2.5], dtype=np.float32))]), ins)
    # ---- EyeLike: k off the diagonal, another dtype ----
    ins = [("x", rnd(4, 7))]
    yield "eyelike_k2", model("eyelike", node("EyeLike", ["x"], k=2), ins), ins
    ins = [("x", rnd(5, 3, dtype=np.int32))]
    yield ("eyelike_km1_double", model("eyelike", node("EyeLike", ["x"], k=-1,
                                                        dtype=TensorProto.DOUBLE),
                                       ins, out_type=TensorProto.DOUBLE), ins)

    # ---- GatherND: batch_dims, negative indices, slices ----
    x = rnd(3, 5, 4, 2)
    ind = np.array([[[4, -1], [0, 2]], [[-5, 0], [3, 3]], [[1, 1], [2, -4]]], dtype=np.int64)
    ins = [("x", x), ("ind", ind)]
    yield ("gathernd_batch1_slices", model("gathernd", node("GatherND", ["x", "ind"],
                                                           batch_dims=1), ins), ins)
    x = rnd(5, 3, dtype=np.int32, lo=-99, hi=99)
    ind = np.array([[4], [-2], [0]], dtype=np.int64)
    ins = [("x", x), ("ind", ind)]
    yield "gathernd_rows_int32_data", model("gathernd", node("GatherND", ["x", "ind"]), ins), ins
    # ---- ScatterND: duplicates with add and mul, negative indices, none ----
    x = rnd(5, 3)
    ind = np.array([[1], [-4], [3], [1], [4]], dtype=np.int64)  # row 1 three times
    upd = rnd(5, 3)
    for red in ["add", "mul", "max", "min"]:
        ins = [("x", x), ("ind", ind), ("upd", upd)]
        yield ("scatternd_dup_%s" % red,
               model("scatternd", node("ScatterND", ["x", "ind", "upd"], reduction=red), ins),
               ins)
    xi = rnd(4, 5, dtype=np.int64, lo=-20, hi=20)
    indi = np.array([[0, 4], [3, -1], [0, 4], [2, 2]], dtype=np.int64)  # (0, 4) twice
    updi = rnd(4, dtype=np.int64, lo=-20, hi=20)
    ins = [("x", xi), ("ind", indi), ("upd", updi)]
    yield ("scatternd_int64_elems_add",
           model("scatternd", node("ScatterND", ["x", "ind", "upd"], reduction="add"), ins), ins)
    indu = np.array([[2, 1], [0, -5], [3, 3]], dtype=np.int64)
    ins = [("x", xi), ("ind", indu), ("upd", updi[:3].copy())]
    yield ("scatternd_none_unique",
           model("scatternd", node("ScatterND", ["x", "ind", "upd"]), ins), ins)
    # ---- ScatterElements: negative axis and indices, duplicates with add ----
    x = rnd(4, 6)
    ind = np.array([[0, -1, 2], [3, 3, -4], [1, 0, 0]], dtype=np.int64)
    upd = rnd(3, 3)
    ins = [("x", x), ("ind", ind), ("upd", upd)]
    yield ("scatterelements_axis_m2_none",
           model("scatterel", node("ScatterElements", ["x", "ind", "upd"], axis=-2), ins), ins)
    ind2 = np.array([[5, 5, 0], [2, -1, 5], [1, 1, 1]], dtype=np.int64)
    ins = [("x", x), ("ind", ind2), ("upd", upd)]
    for red in ["add", "max"]:
        yield ("scatterelements_axis1_dup_%s" % red,
               model("scatterel", node("ScatterElements", ["x", "ind", "upd"], axis=1,
                                       reduction=red), ins), ins)
    # ---- TopK: ties (lower index first), smallest, negative axis, integers ----
    x = np.round(rnd(3, 7, 5), 0).astype(np.float32)  # many ties
    ins = [("x", x)]
    tk = helper.make_node("TopK", ["x", "k"], ["y", "i"], name="n0", axis=1)
    yield ("topk_axis1_k4_ties", model("topk", tk, ins, inits=[("k", i64(4))]), ins)
    tk = helper.make_node("TopK", ["x", "k"], ["y", "i"], name="n0", axis=-1, largest=0)
    yield ("topk_smallest_axis_m1_k3", model("topk", tk, ins, inits=[("k", i64(3))]), ins)
    xi = rnd(2, 9, dtype=np.int32, lo=-4, hi=4)
    ins = [("x", xi)]
    tk = helper.make_node("TopK", ["x", "k"], ["y", "i"], name="n0")
    yield ("topk_int32_k9_ties", model("topk", tk, ins, inits=[("k", i64(9))]), ins)

def diagnostics(d):
    """Bad input gets a diagnostic naming the node and a non-zero exit, never
    a crash: an index out of range in the interpreter, a run-time TopK k or
    OneHot depth in `octet compile` (geometry inputs)."""
    x = rnd(4, 3)
    ins = [("x", x), ("ind", np.array([[1], [4]], dtype=np.int64)), ("upd", rnd(2, 3))]
    m = model("scatternd_oob", node("ScatterND", ["x", "ind", "upd"]), ins)
    path = os.path.join(d, "scatternd_oob.onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    p, _ = cgutil.run_octet(path, ins)
    check(p.returncode not in (0, -6, -11) and "node 'n0' (ScatterND)" in p.stderr and
          "out of range" in p.stderr,
          "scatternd_oob: the interpreter reports index 4 of 4 rows (exit %d: %s)"
          % (p.returncode, p.stderr.strip()))
    for name, m, inp, idx in [
            ("topk_runtime_k", model("topk", helper.make_node("TopK", ["x", "k"], ["y", "i"],
                                                              name="n0"),
                                     [("x", x), ("k", i64(2))]), "k", 1),
            ("onehot_runtime_depth",
             model("onehot", node("OneHot", ["x", "depth", "vals"]),
                   [("x", x), ("depth", np.array(3.0, dtype=np.float32))],
                   inits=[("vals", np.array([0.0, 1.0], dtype=np.float32))]), "depth", 1)]:
        path = os.path.join(d, name + ".onnx")
        with open(path, "wb") as fh:
            fh.write(m.SerializeToString())
        p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(d, name),
                            "--emit=so"], capture_output=True, text=True)
        check(p.returncode == 3 and "node 'n0'" in p.stderr and
              ("input %d '%s'" % (idx, inp)) in p.stderr,
              "%s: octet compile refuses the run-time %s (exit %d: %s)"
              % (name, inp, p.returncode, p.stderr.strip()))


def main():
    with tempfile.TemporaryDirectory() as d:
        for name, m, inputs in cases():
            run_case(d, name, m, inputs)
        diagnostics(d)
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
