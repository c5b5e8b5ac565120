"""If, Loop and Scan compiled (`octet compile --emit=so`, then `octet run
model.so`) against ONNX Runtime on models built with onnx.helper:
  - an If on a run-time condition (a graph input), both branches run, its
    branches reading outer values of every kind (a graph input, a node
    output only the branch reads, an initializer) and holding a constant
    of their own, with a nested If inside the then-branch;
  - a Loop with a constant trip count: loop-carried values and scan
    outputs, an If in its body on the iteration's parity reading values of
    the body and of the main graph (two levels out);
  - a Loop with a run-time trip count and a data-dependent condition and
    no scan output (its trip count needs no static bound);
  - a Scan over both directions and non-zero axes, with a state;
  - an If on a shape test whose branches differ in shape, with a nested one
    (resolved at compile time: the condition folds once shapes are known).
Then what compiled code cannot do, refused with exit 3 naming the node:
an If whose branches give different shapes on a run-time condition, and a
Loop whose scan output's length depends on a run-time condition."""
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


def model(graph, opset=17, checked=True):
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    if checked:
        onnx.checker.check_model(m)
    return m


def compile_model(d, name, m):
    path = os.path.join(d, name + ".onnx")
    onnx.save(m, path)
    p = subprocess.run([OCTET, "compile", path, "-o", os.path.join(d, name), "--emit=so"],
                       capture_output=True, text=True)
    return path, p


def check(name, m, feed_sets, rtol=1e-5):
    """The compiled model against ONNX Runtime on each set of feeds."""
    with tempfile.TemporaryDirectory() as d:
        path, p = compile_model(d, name, m)
        if p.returncode:
            failures.append("%s: octet compile exit %d: %s" % (name, p.returncode,
                                                               p.stderr.strip()))
            print("FAIL", name, p.stderr.strip())
            return
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        for k, feeds in enumerate(feed_sets):
            want = sess.run(None, feeds)
            p, got = run_octet(os.path.join(d, name + ".so"), list(feeds.items()))
            if p.returncode:
                failures.append("%s[%d]: octet run exit %d: %s" % (name, k, p.returncode,
                                                                   p.stderr.strip()))
                print("FAIL", name, p.stderr.strip())
                continue
            for o, w in zip(m.graph.output, want):
                ok, how = same(got[o.name], w, rtol)
                print("ok  " if ok else "FAIL", "%s[%d]" % (name, k), o.name,
                      list(np.shape(w)), "" if ok else how)
                if not ok:
                    failures.append("%s[%d] %s: %s" % (name, k, o.name, how))


def expect_refused(name, m, needle):
    with tempfile.TemporaryDirectory() as d:
        _, p = compile_model(d, name, m)
        ok = p.returncode == 3 and needle in p.stderr
        print("ok  " if ok else "FAIL", name, "exit", p.returncode, p.stderr.strip())
        if not ok:
            failures.append("%s: exit %d (want 3 with %r): %s" % (name, p.returncode, needle,
                                                                  p.stderr.strip()))


def const(name, arr):
    return h.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(arr)))


rng = np.random.default_rng(5)

# 1. If on a run-time condition.  then: (x * s2 + w) then a nested If on c2
#    (Neg or Abs of it); else: x - k (k its own constant).
inner_t = h.make_graph([h.make_node("Neg", ["t1"], ["u"])], "inner_t", [], [vi("u", F, [2, 3])])
inner_e = h.make_graph([h.make_node("Abs", ["t1"], ["u2"])], "inner_e", [], [vi("u2", F, [2, 3])])
then_g = h.make_graph([h.make_node("Mul", ["x", "s2"], ["t0"]),
                       h.make_node("Add", ["t0", "w"], ["t1"]),
                       h.make_node("If", ["c2"], ["tout"], then_branch=inner_t,
                                   else_branch=inner_e)],
                      "then", [], [vi("tout", F, [2, 3])])
else_g = h.make_graph([const("k", np.full((2, 3), 0.5, np.float32)),
                       h.make_node("Sub", ["x", "k"], ["eout"])],
                      "else", [], [vi("eout", F, [2, 3])])
g = h.make_graph([h.make_node("Mul", ["s", "s"], ["s2"]),
                  h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
                  h.make_node("Add", ["y", "x"], ["z"])],
                 "if_runtime", [vi("c", TP.BOOL, []), vi("c2", TP.BOOL, []), vi("x", F, [2, 3]),
                                vi("s", F, [3])],
                 [vi("z", F, [2, 3]), vi("y", F, [2, 3])],
                 initializer=[numpy_helper.from_array(
                     rng.standard_normal(3).astype(np.float32), "w")])
x = rng.standard_normal((2, 3)).astype(np.float32)
s = rng.standard_normal(3).astype(np.float32)
check("if_runtime_cond", model(g),
      [{"c": np.array(c), "c2": np.array(c2), "x": x, "s": s}
       for c, c2 in ((True, True), (True, False), (False, True))])

# 2. Loop, M = 5 (constant): carried x, scan output -x_out; the body's If
#    on the iteration's parity reads w (outer initializer), s2 (outer node
#    output) and `half` (a body value).
then_g = h.make_graph([h.make_node("Add", ["x_in", "w"], ["t_out"])], "then", [],
                      [vi("t_out", F, [3])])
else_g = h.make_graph([h.make_node("Mul", ["x_in", "s2"], ["e0"]),
                       h.make_node("Add", ["e0", "half"], ["e_out"])], "else", [],
                      [vi("e_out", F, [3])])
body = h.make_graph(
    [const("two", np.array(2, np.int64)), h.make_node("Mod", ["i", "two"], ["par"]),
     const("zero", np.array(0, np.int64)), h.make_node("Equal", ["par", "zero"], ["even"]),
     const("half", np.full(3, 0.5, np.float32)),
     h.make_node("If", ["even"], ["x_out"], then_branch=then_g, else_branch=else_g),
     h.make_node("Identity", ["cond_in"], ["cond_out"]),
     h.make_node("Neg", ["x_out"], ["scan_out"])],
    "body", [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []), vi("x_in", F, [3])],
    [vi("cond_out", TP.BOOL, []), vi("x_out", F, [3]), vi("scan_out", F, [3])])
g = h.make_graph(
    [h.make_node("Mul", ["s", "s"], ["s2"]),
     h.make_node("Loop", ["M", "c0", "x0"], ["x_final", "xs"], body=body)], "loop_static",
    [vi("x0", F, [3]), vi("s", F, [3])], [vi("x_final", F, [3]), vi("xs", F, [5, 3])],
    initializer=[numpy_helper.from_array(np.array(5, np.int64), "M"),
                 numpy_helper.from_array(np.array(True), "c0"),
                 numpy_helper.from_array(np.array([1.0, -2.0, 0.25], np.float32), "w")])
check("loop_static_trip", model(g),
      [{"x0": np.array([0.5, 1.5, -1.0], np.float32), "s": np.array([2.0, -1.0, 0.5], np.float32)}])

# 3. Loop with a run-time M and a data-dependent condition: doubles x while
#    its sum is below `limit`, at most M times; no scan output.
body = h.make_graph(
    [h.make_node("Add", ["x_in", "x_in"], ["x_out"]),
     h.make_node("ReduceSum", ["x_out"], ["tot"], keepdims=0),
     h.make_node("Less", ["tot", "limit"], ["cond_out"])],
    "body", [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []), vi("x_in", F, [2])],
    [vi("cond_out", TP.BOOL, []), vi("x_out", F, [2])])
g = h.make_graph([h.make_node("Loop", ["M", "", "x0"], ["x_final"], body=body)],
                 "loop_runtime", [vi("M", TP.INT64, []), vi("x0", F, [2]), vi("limit", F, [])],
                 [vi("x_final", F, [2])])
check("loop_runtime_trip", model(g),
      [{"M": np.array(m, np.int64), "x0": np.array([0.75, 0.5], np.float32),
        "limit": np.array(lim, np.float32)} for m, lim in ((10, 20.0), (3, 1000.0), (0, 5.0))])

# 4. Scan (opset 16): state [2]; scan input a [2, 4] along axis 1 reversed,
#    b [4, 2] along axis 0; outputs along axis 1 reversed and axis 0.
body = h.make_graph(
    [h.make_node("Add", ["s_in", "a_t"], ["s1"]),
     h.make_node("Mul", ["s1", "b_t"], ["s_out"]),
     h.make_node("Sub", ["s_out", "k"], ["y1"]),
     h.make_node("Identity", ["s1"], ["y2"])],
    "body", [vi("s_in", F, [2]), vi("a_t", F, [2]), vi("b_t", F, [2])],
    [vi("s_out", F, [2]), vi("y1", F, [2]), vi("y2", F, [2])])
g = h.make_graph([h.make_node("Scan", ["s0", "a", "b"], ["s_final", "y1s", "y2s"], body=body,
                              num_scan_inputs=2, scan_input_axes=[1, 0],
                              scan_input_directions=[1, 0], scan_output_axes=[1, -2],
                              scan_output_directions=[1, 0])],
                 "scan", [vi("s0", F, [2]), vi("a", F, [2, 4]), vi("b", F, [4, 2])],
                 [vi("s_final", F, [2]), vi("y1s", F, [2, 4]), vi("y2s", F, [4, 2])],
                 initializer=[numpy_helper.from_array(np.array([0.5, -0.25], np.float32), "k")])
check("scan_both_directions", model(g, 16),
      [{"s0": np.array([1.0, 2.0], np.float32),
        "a": rng.standard_normal((2, 4)).astype(np.float32),
        "b": rng.standard_normal((4, 2)).astype(np.float32)}])

# 5. If on a shape test (silero-vad's pattern), resolved at compile time by
#    pass_inline_if: is x's first dim 1?  then: Squeeze it (every dim of 1;
#    ONNX Runtime checks the branch not taken too) and, in a nested
#    If on the same kind of test, scale by w (outer initializer) or not;
#    else: x as is.  The branches differ in shape, which only a condition
#    known at compile time allows; a [1, 4] and a [2, 4] model both compile.
for rows in (1, 2):
    inner_t = h.make_graph([h.make_node("Mul", ["sq", "w"], ["m"])], "inner_t", [],
                           [vi("m", F, None)])
    inner_e = h.make_graph([h.make_node("Identity", ["sq"], ["m2"])], "inner_e", [],
                           [vi("m2", F, None)])
    then_g = h.make_graph([h.make_node("Squeeze", ["x"], ["sq"]),
                           h.make_node("If", ["one"], ["tout"], then_branch=inner_t,
                                       else_branch=inner_e)],
                          "then", [], [vi("tout", F, None)])
    else_g = h.make_graph([h.make_node("Identity", ["x"], ["eout"])], "else", [],
                          [vi("eout", F, None)])
    g = h.make_graph([h.make_node("Shape", ["x"], ["shp"]),
                      const("zero", np.array(0, np.int64)),
                      h.make_node("Gather", ["shp", "zero"], ["d0"]),
                      const("one_i", np.array(1, np.int64)),
                      h.make_node("Equal", ["d0", "one_i"], ["one"]),
                      h.make_node("If", ["one"], ["y"], then_branch=then_g, else_branch=else_g),
                      h.make_node("Relu", ["y"], ["z"])],
                     "shape_if", [vi("x", F, [rows, 4])], [vi("z", F, None)],
                     initializer=[numpy_helper.from_array(
                         np.array([1.0, -2.0, 3.0, 0.5], np.float32), "w")])
    check("if_shape_test_rows_%d" % rows, model(g, checked=False),
          [{"x": rng.standard_normal((rows, 4)).astype(np.float32)}])

# 6. Refused (exit 3, naming the node): branches of different shapes on a
#    run-time condition; a scan output whose length a run-time condition
#    decides.
then_g = h.make_graph([h.make_node("Neg", ["x"], ["r"])], "then", [], [vi("r", F, [3])])
else_g = h.make_graph([const("e", np.zeros((2, 2), np.float32)),
                       h.make_node("Identity", ["e"], ["r2"])], "else", [], [vi("r2", F, [2, 2])])
g = h.make_graph([h.make_node("If", ["b"], ["y"], then_branch=then_g, else_branch=else_g,
                              name="shapey")],
                 "ifshape", [vi("b", TP.BOOL, []), vi("x", F, [3])], [vi("y", F, None)])
expect_refused("if_branch_shapes", model(g, checked=False),
               "node 'shapey' (If) output 0 'y': error: compile: 'y' has no static shape: "
               "its branches give it different")
body = h.make_graph(
    [h.make_node("Add", ["x_in", "x_in"], ["x_out"]),
     h.make_node("ReduceSum", ["x_out"], ["tot"], keepdims=0),
     h.make_node("Less", ["tot", "limit"], ["cond_out"]),
     h.make_node("Identity", ["x_out"], ["y"])],
    "body", [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []), vi("x_in", F, [2])],
    [vi("cond_out", TP.BOOL, []), vi("x_out", F, [2]), vi("y", F, [2])])
g = h.make_graph([h.make_node("Loop", ["M", "", "x0"], ["x_final", "ys"], body=body,
                              name="datalen")],
                 "datalen", [vi("x0", F, [2]), vi("limit", F, [])],
                 [vi("x_final", F, [2]), vi("ys", F, [None, 2])],
                 initializer=[numpy_helper.from_array(np.array(8, np.int64), "M")])
expect_refused("loop_scan_data_length", model(g),
               "node 'datalen' (Loop) output 1 'ys': error: compile: 'ys' has no static "
               "shape: the trip count")

if failures:
    print("\n%d failure(s):\n  %s" % (len(failures), "\n  ".join(failures)))
    sys.exit(1)
print("all compiled control-flow cases match onnxruntime")
