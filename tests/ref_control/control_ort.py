"""If, Loop and Scan through the reference interpreter (`octet run`)
against ONNX Runtime on models built with onnx.helper: an If nested in a
Loop body reading values of the outer graph and of the Loop body, a Loop
whose condition depends on the data (no trip count), a Scan with reverse
directions and non-zero axes, and an If whose branches give different
shapes and hold initializers of their own.  Then what must be refused:
a Loop that can never end, a sequence-typed body (exit 3, naming the
node), and malformed bodies (exit 2 naming the node)."""
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
    if checked:  # the checker wants a shape on every output, even a varying one
        onnx.checker.check_model(m)
    return m


def check(name, m, feeds, passes=None):
    """octet run on m (after `octet opt --passes=...` when given) against
    ONNX Runtime on m."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, name + ".onnx")
        onnx.save(m, path)
        want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
        if passes:
            opt = os.path.join(d, name + ".opt.onnx")
            p = subprocess.run([OCTET, "opt", "--verify-each", "--passes=" + passes, path,
                                "-o", opt], capture_output=True, text=True)
            if p.returncode:
                failures.append("%s: octet opt exit %d: %s" % (name, p.returncode, p.stderr))
                print("FAIL", name, p.stderr.strip())
                return
            path = opt
            name += " (after " + passes + ")"
        p, got = run_octet(path, list(feeds.items()))
        if p.returncode:
            failures.append("%s: octet run exit %d: %s" % (name, p.returncode, p.stderr.strip()))
            print("FAIL", name, p.stderr.strip())
            return
        for o, w in zip(m.graph.output, want):
            ok, how = same(got[o.name], w, 1e-6)
            print("ok  " if ok else "FAIL", name, o.name, list(np.shape(w)), "" if ok else how)
            if not ok:
                failures.append("%s %s: %s" % (name, o.name, how))


def expect_refused(name, m, feeds, cmd, code, needle):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, name + ".onnx")
        onnx.save(m, path)
        if cmd == "run":
            p, _ = run_octet(path, list(feeds.items()))
        else:
            p = subprocess.run([OCTET, "compile", path, "-o", os.path.join(d, "m")],
                               capture_output=True, text=True)
        ok = p.returncode == code and needle in p.stderr
        print("ok  " if ok else "FAIL", name, "exit", p.returncode, p.stderr.strip())
        if not ok:
            failures.append("%s: exit %d (want %d with %r): %s" % (name, p.returncode, code,
                                                                   needle, p.stderr.strip()))


# 1. Loop (M = 5) whose body holds an If on the parity of the iteration;
#    then_branch reads w (an outer initializer), else_branch reads s2 (a
#    node output of the main graph that only the branch reads) and `half`
#    (a value of the Loop body): two levels out.  Run as loaded, and after
#    the passes that drop dead values and initializers (fold) and fuse:
#    what only a subgraph reads must survive them.
then_g = h.make_graph([h.make_node("Add", ["x_in", "w"], ["t_out"])], "then", [],
                      [vi("t_out", F, [3])])
else_g = h.make_graph([h.make_node("Mul", ["x_in", "s2"], ["e0"]),
                       h.make_node("Add", ["e0", "half"], ["e_out"])], "else", [],
                      [vi("e_out", F, [3])])
body = h.make_graph(
    [h.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.array(2, np.int64))),
     h.make_node("Mod", ["i", "two"], ["par"]),
     h.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
     h.make_node("Equal", ["par", "zero"], ["even"]),
     h.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.full(3, 0.5, np.float32))),
     h.make_node("If", ["even"], ["x_out"], then_branch=then_g, else_branch=else_g),
     h.make_node("Identity", ["cond_in"], ["cond_out"]),
     h.make_node("Neg", ["x_out"], ["scan_out"])],
    "body", [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []), vi("x_in", F, [3])],
    [vi("cond_out", TP.BOOL, []), vi("x_out", F, [3]), vi("scan_out", F, [3])])
g = h.make_graph(
    [h.make_node("Mul", ["s", "s"], ["s2"]),
     h.make_node("Loop", ["M", "c0", "x0"], ["x_final", "xs"], body=body)], "nested",
    [vi("x0", F, [3]), vi("s", F, [3])], [vi("x_final", F, [3]), vi("xs", F, [5, 3])],
    initializer=[numpy_helper.from_array(np.array(5, np.int64), "M"),
                 numpy_helper.from_array(np.array(True), "c0"),
                 numpy_helper.from_array(np.array([1.0, -2.0, 0.25], np.float32), "w")])
feeds = {"x0": np.array([0.5, 1.5, -1.0], np.float32), "s": np.array([2.0, -1.0, 3.0], np.float32)}
check("loop_if_outer_scope", model(g), feeds)
check("loop_if_outer_scope", model(g), feeds, passes="shape_infer,fold,fuse")

# 2. Loop without a trip count: doubles x until its sum passes `limit`
#    (an outer-scope graph input); the scan output's length is data-dependent.
body = h.make_graph(
    [h.make_node("Add", ["x_in", "x_in"], ["x_out"]),
     h.make_node("ReduceSum", ["x_out"], ["tot"], keepdims=0),
     h.make_node("Less", ["tot", "limit"], ["cond_out"]),
     h.make_node("Cast", ["i"], ["i_f"], to=F),
     h.make_node("Mul", ["x_out", "i_f"], ["y"])],
    "body", [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []), vi("x_in", F, [2])],
    [vi("cond_out", TP.BOOL, []), vi("x_out", F, [2]), vi("y", F, [2])])
g = h.make_graph([h.make_node("Loop", ["", "c0", "x0"], ["x_final", "ys"], body=body)],
                 "datacond", [vi("x0", F, [2]), vi("limit", F, [])],
                 [vi("x_final", F, [2]), vi("ys", F, [None, 2])],
                 initializer=[numpy_helper.from_array(np.array(True), "c0")])
for lim in (10.0, 1000.0, 0.5):
    check("loop_data_cond_limit_%g" % lim, model(g),
          {"x0": np.array([0.75, 0.5], np.float32), "limit": np.array(lim, np.float32)})

# 3. Scan (opset 16): state s [2]; scan input a [2, 4] along axis 1 read in
#    reverse, scan input b [4, 2] along axis 0 forward; outputs stacked
#    along axis 1 in reverse and along axis 0 forward.
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
rng = np.random.default_rng(7)
check("scan_reverse_axes", model(g, 16),
      {"s0": np.array([1.0, 2.0], np.float32),
       "a": rng.standard_normal((2, 4)).astype(np.float32),
       "b": rng.standard_normal((4, 2)).astype(np.float32)})

# 4. If whose branches give different shapes, each with an initializer of
#    its own (then: [3] = x + c; else: [2, 2] = reshape of an initializer).
then_g = h.make_graph([h.make_node("Add", ["x", "c"], ["r"])], "then", [], [vi("r", F, None)],
                      initializer=[numpy_helper.from_array(np.array([1, 2, 3], np.float32), "c")])
else_g = h.make_graph([h.make_node("Identity", ["e"], ["r2"])], "else", [], [vi("r2", F, None)],
                      initializer=[numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(2, 2), "e")])
g = h.make_graph([h.make_node("If", ["b"], ["y"], then_branch=then_g, else_branch=else_g)],
                 "ifshape", [vi("b", TP.BOOL, []), vi("x", F, [3])], [vi("y", F, None)])
for b in (True, False):
    check("if_branch_shapes_%s" % b, model(g, checked=False),
          {"b": np.array(b), "x": np.array([0.5, 0.25, -4.0], np.float32)})

# 5. Refused: a Loop with neither M nor cond; a sequence-typed body.
#    (Compiling control flow: control_compiled.py.)
body = h.make_graph([h.make_node("Identity", ["cond_in"], ["cond_out"]),
                     h.make_node("Identity", ["x_in"], ["x_out"])], "body",
                    [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []), vi("x_in", F, [1])],
                    [vi("cond_out", TP.BOOL, []), vi("x_out", F, [1])])
g = h.make_graph([h.make_node("Loop", ["", "", "x0"], ["x_final"], body=body, name="forever")],
                 "forever", [vi("x0", F, [1])], [vi("x_final", F, [1])])
expect_refused("loop_never_ends", model(g), {"x0": np.zeros(1, np.float32)}, "run", 3,
               "node 'forever' (Loop)")
seq_t = h.make_sequence_type_proto(h.make_tensor_type_proto(F, [1]))
body = h.make_graph([h.make_node("SequenceEmpty", [], ["sq"], dtype=F)], "then", [],
                    [h.make_value_info("sq", seq_t)])
g = h.make_graph([h.make_node("If", ["b"], ["y"], then_branch=body, else_branch=body, name="seqif")],
                 "seqif", [vi("b", TP.BOOL, [])], [h.make_value_info("y", seq_t)])
expect_refused("if_sequence_body", model(g, checked=False), {"b": np.array(True)}, "run", 3,
               "node 'seqif' (If): error: subgraph output 'sq' is not a tensor")
# 6. Malformed bodies are input errors (exit 2) naming the node, never a
#    crash: a branch that declares an input, a branch reading a name no
#    enclosing graph defines, branches with different output counts.
def if_model(then_g, else_g):
    return model(h.make_graph([h.make_node("If", ["b"], ["y"], then_branch=then_g,
                                           else_branch=else_g, name="bad")],
                              "bad", [vi("b", TP.BOOL, []), vi("x", F, [3])], [vi("y", F, [3])]),
                 checked=False)


good_b = h.make_graph([h.make_node("Neg", ["x"], ["r"])], "ok", [], [vi("r", F, [3])])
with_in = h.make_graph([h.make_node("Neg", ["z"], ["r"])], "in", [vi("z", F, [3])], [vi("r", F, [3])])
undef = h.make_graph([h.make_node("Neg", ["nowhere"], ["r"])], "undef", [], [vi("r", F, [3])])
two = h.make_graph([h.make_node("Neg", ["x"], ["r"]), h.make_node("Abs", ["x"], ["r2"])], "two", [],
                   [vi("r", F, [3]), vi("r2", F, [3])])
feeds = {"b": np.array(True), "x": np.ones(3, np.float32)}
expect_refused("if_branch_with_input", if_model(with_in, good_b), feeds, "run", 2,
               "node 'bad' (If): error: then_branch inputs: 1, expected 0")
expect_refused("if_branch_undefined_name", if_model(undef, good_b), feeds, "run", 2,
               "'nowhere' is not defined")
expect_refused("if_branch_undefined_name_names_the_if", if_model(undef, good_b), feeds, "run", 2,
               "node 'bad' (If): error: its 'then_branch' graph does not verify")
expect_refused("if_branch_output_counts", if_model(good_b, two), feeds, "run", 2,
               "node 'bad' (If): error: else_branch outputs: 2, expected 1")

# 7. Order: fuse turns MatMul + Add into a Gemm appended after the If that
#    reads the Add's output only inside its branches; the verifier's sort
#    must put the Gemm first (a body's outer reads are implicit inputs).
#    And a body reading a value computed from its own node's output is a
#    cycle, reported as one.
then_g = h.make_graph([h.make_node("Neg", ["y"], ["r"])], "t", [], [vi("r", F, [1, 2])])
else_g = h.make_graph([h.make_node("Abs", ["y"], ["r2"])], "e", [], [vi("r2", F, [1, 2])])
g = h.make_graph([h.make_node("MatMul", ["x", "W"], ["mm"]), h.make_node("Add", ["mm", "bias"], ["y"]),
                  h.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)],
                 "fuse_if", [vi("x", F, [1, 3]), vi("c", TP.BOOL, [])], [vi("out", F, [1, 2])],
                 initializer=[numpy_helper.from_array(rng.standard_normal((3, 2)).astype(np.float32), "W"),
                              numpy_helper.from_array(np.array([1, -2], np.float32), "bias")])
for c in (True, False):
    check("if_reads_fused_gemm_%s" % c, model(g),
          {"x": np.array([[1, 2, 3]], np.float32), "c": np.array(c)}, passes="shape_infer,fuse")
then_g = h.make_graph([h.make_node("Neg", ["z"], ["r"])], "t", [], [vi("r", F, [2])])
g = h.make_graph([h.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=then_g, name="loopy"),
                  h.make_node("Neg", ["out"], ["z"])],
                 "cyc", [vi("c", TP.BOOL, [])], [vi("z", F, [2])])
expect_refused("if_body_cycle", model(g, checked=False), {"c": np.array(True)}, "run", 2,
               "the graph has a cycle through this node")

if failures:
    print("\n%d failure(s):\n  %s" % (len(failures), "\n  ".join(failures)))
    sys.exit(1)
print("all control-flow cases match onnxruntime")
