"""A Loop whose body slices with its iteration number (a window x[:, i:i+2]
moving along x's columns, the last one clipped to a single column by
Slice's clamping) compiled, against ONNX Runtime.  No static shape holds
for the window in every iteration, so the backend unrolls the Loop
(passes/unroll_loop.c) once its trip count is known at compile time:
  - `octet compile` with M and cond constants (opset 11, Unsqueeze's axes
    an attribute, and opset 17, an input);
  - `octet run --jit` with M and cond graph inputs (the JIT takes them as
    constants for the run at hand), at two trip counts;
and with M a graph input, `octet compile` refuses with exit 3, naming the
Loop and its scan output, or (without scan outputs) the body value and
what would make it compile."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as TP, helper as h, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "codegen"))
from cgutil import OCTET, run_octet, same  # noqa: E402

F = TP.FLOAT
failures = []


def vi(name, dt, shape):
    return h.make_tensor_value_info(name, dt, shape)


def const(name, arr):
    return h.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(arr)))


def window_model(opset, m_const, trip=6, scan=True):
    """acc [3, 2] carried: acc = acc * 0.5 + x[:, i:i+2] (broadcast when the
    window is one column); scan output -acc (when `scan`); x [3, 6] an
    outer value."""
    if opset >= 13:
        unsq = h.make_node("Unsqueeze", ["i", "ax0"], ["start"])
        pre = [const("ax0", np.array([0], np.int64))]
    else:
        unsq = h.make_node("Unsqueeze", ["i"], ["start"], axes=[0])
        pre = []
    body = h.make_graph(
        pre + [unsq, const("two", np.array([2], np.int64)),
               h.make_node("Add", ["start", "two"], ["end"]),
               const("axis1", np.array([1], np.int64)),
               h.make_node("Slice", ["x", "start", "end", "axis1"], ["win"]),
               const("half", np.array(0.5, np.float32)),
               h.make_node("Mul", ["acc_in", "half"], ["scaled"]),
               h.make_node("Add", ["scaled", "win"], ["acc_out"]),
               h.make_node("Identity", ["cond_in"], ["cond_out"]),
               h.make_node("Neg", ["acc_out"], ["neg"])],
        "window_body", [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []),
                        vi("acc_in", F, [3, 2])],
        [vi("cond_out", TP.BOOL, []), vi("acc_out", F, [3, 2])] +
        ([vi("neg", F, [3, 2])] if scan else []))
    inputs = [vi("x", F, [3, 6]), vi("acc0", F, [3, 2])]
    inits = []
    if m_const:
        inits = [numpy_helper.from_array(np.array(trip, np.int64), "M"),
                 numpy_helper.from_array(np.array(True), "c")]
    else:
        inputs = [vi("M", TP.INT64, []), vi("c", TP.BOOL, [])] + inputs
    outs = ["acc", "negs"] if scan else ["acc"]
    g = h.make_graph([h.make_node("Loop", ["M", "c", "acc0"], outs, body=body,
                                  name="window_loop")],
                     "window", inputs,
                     [vi("acc", F, [3, 2])] +
                     ([vi("negs", F, [trip if m_const else None, 3, 2])] if scan else []),
                     initializer=inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m


def compare(label, got, m, want):
    for o, w in zip(m.graph.output, want):
        ok, how = same(got[o.name], w, 1e-6)
        print("ok  " if ok else "FAIL", label, o.name, list(np.shape(w)), "" if ok else how)
        if not ok:
            failures.append("%s %s: %s" % (label, o.name, how))


rng = np.random.default_rng(11)


def data():
    return {"x": rng.standard_normal((3, 6)).astype(np.float32),
            "acc0": rng.standard_normal((3, 2)).astype(np.float32)}


with tempfile.TemporaryDirectory() as d:
    # compiled ahead of time, M = 6 a constant
    for opset in (11, 17):
        m = window_model(opset, True)
        name = "window_opset%d" % opset
        path = os.path.join(d, name + ".onnx")
        onnx.save(m, path)
        p = subprocess.run([OCTET, "compile", path, "-o", os.path.join(d, name), "--emit=so"],
                           capture_output=True, text=True)
        if p.returncode:
            failures.append("%s: octet compile exit %d: %s" % (name, p.returncode,
                                                               p.stderr.strip()))
            print("FAIL", name, p.stderr.strip())
            continue
        feeds = data()
        want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
        r, got = run_octet(os.path.join(d, name + ".so"), list(feeds.items()))
        if r.returncode:
            failures.append("%s: octet run exit %d: %s" % (name, r.returncode, r.stderr.strip()))
            print("FAIL", name, r.stderr.strip())
            continue
        compare(name + " compiled", got, m, want)

    # the JIT, M and cond given at run time
    m = window_model(17, False)
    path = os.path.join(d, "window_jit.onnx")
    onnx.save(m, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for trip in (6, 3):
        feeds = {"M": np.array(trip, np.int64), "c": np.array(True), **data()}
        want = sess.run(None, feeds)
        r, got = run_octet(path, list(feeds.items()), extra=["--jit"])
        label = "window_jit M=%d" % trip
        if r.returncode:
            failures.append("%s: octet run --jit exit %d: %s" % (label, r.returncode,
                                                                 r.stderr.strip()))
            print("FAIL", label, r.stderr.strip())
            continue
        compare(label, got, m, want)

    # ahead of time with M a graph input: refused, saying why (with a scan
    # output, its row count; without one, the window and what would make
    # the Loop compile)
    nscan = window_model(17, False, scan=False)
    onnx.save(nscan, os.path.join(d, "window_noscan.onnx"))
    for model, needles in (("window_jit", ["output 1 'negs'", "the trip count"]),
                           ("window_noscan", ["of its 'window_body' subgraph has no "
                                              "static shape", "compiles unrolled"])):
        p = subprocess.run([OCTET, "compile", os.path.join(d, model + ".onnx"), "-o",
                            os.path.join(d, "refused")], capture_output=True, text=True)
        needles = ["node 'window_loop' (Loop)"] + needles
        ok = p.returncode == 3 and all(k in p.stderr for k in needles)
        print("ok  " if ok else "FAIL", model, "with a run-time M refused: exit", p.returncode,
              p.stderr.strip())
        if not ok:
            failures.append("%s, run-time M: exit %d (want 3 with %r): %s" %
                            (model, p.returncode, needles, p.stderr.strip()))

if failures:
    print("\n%d failure(s):\n  %s" % (len(failures), "\n  ".join(failures)))
    sys.exit(1)
print("unrolled Loops match onnxruntime")
