"""`octet run OUT/NAME.so --each-sample` (issue 13): as for ONNX models, the
inputs that carry one more leading axis than the compiled signature are
samples, the library runs once per sample and the outputs are stacked;
inputs without the extra axis are shared by every sample.  Checked against
numpy (the expected values) and against `octet run model.onnx
--each-sample`; errors: no input with the extra axis, two inputs with
different sample counts, an input of the wrong shape.  Also --format=pb
for a .so."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OCTET = os.environ["OCTET"]
failures = []


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def octet(*args):
    return subprocess.run([OCTET, *map(str, args)], capture_output=True, text=True)


def model(path):
    """y = relu(x * s + b) with x [2, 3] and s [3] run-time inputs, b a
    constant, and n = -x as a second output."""
    b = numpy_helper.from_array(np.array([0.5, -1.0, 0.25], np.float32), "b")
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["xs"], name="mul"),
         helper.make_node("Add", ["xs", "b"], ["pre"], name="add"),
         helper.make_node("Relu", ["pre"], ["y"], name="relu"),
         helper.make_node("Neg", ["x"], ["n"], name="neg")],
        "each",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("n", TensorProto.FLOAT, [2, 3])], [b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


with tempfile.TemporaryDirectory() as tmp:
    onnx_path = os.path.join(tmp, "each.onnx")
    model(onnx_path)
    p = octet("compile", onnx_path, "-o", os.path.join(tmp, "each"), "--emit=so")
    check(p.returncode == 0, "compile to each.so (%s)" % p.stderr.strip())
    so = os.path.join(tmp, "each.so")

    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)   # 5 samples
    s = rng.standard_normal(3).astype(np.float32)            # shared
    np.save(os.path.join(tmp, "x.npy"), x)
    np.save(os.path.join(tmp, "s.npy"), s)
    want_y = np.maximum(x * s + np.array([0.5, -1.0, 0.25], np.float32), 0)
    want_n = -x

    outs = {}
    for what, path in [("so", so), ("onnx", onnx_path)]:
        d = os.path.join(tmp, "out_" + what)
        p = octet("run", path, "--input", "x=" + os.path.join(tmp, "x.npy"), "--input",
                  "s=" + os.path.join(tmp, "s.npy"), "--each-sample", "--output-dir", d)
        check(p.returncode == 0, "%s --each-sample: exit 0 (%s)" % (what, p.stderr.strip()))
        check("y: FLOAT [5,2,3]" in p.stdout, "%s: summary shows the stacked shape (%s)"
              % (what, p.stdout.strip()))
        outs[what] = {k: np.load(os.path.join(d, k + ".npy")) for k in ("y", "n")
                      if os.path.exists(os.path.join(d, k + ".npy"))}
    got = outs["so"]
    check(set(got) == {"y", "n"} and got["y"].shape == (5, 2, 3) and got["n"].shape == (5, 2, 3),
          ".so outputs stacked to [5,2,3]")
    if set(got) == {"y", "n"}:
        check(np.allclose(got["y"], want_y, rtol=1e-6, atol=1e-6) and
              np.array_equal(got["n"], want_n), ".so per-sample outputs equal numpy's")
        check(all(np.allclose(got[k], outs["onnx"][k], rtol=1e-6, atol=1e-6) for k in got),
              ".so --each-sample equals octet run model.onnx --each-sample")

    # the first sample alone, without --each-sample, as .pb
    np.save(os.path.join(tmp, "x0.npy"), x[0])
    d = os.path.join(tmp, "out_pb")
    p = octet("run", so, "--input", "x=" + os.path.join(tmp, "x0.npy"), "--input",
              "s=" + os.path.join(tmp, "s.npy"), "--output-dir", d, "--format=pb")
    pb = os.path.join(d, "y.pb")
    check(p.returncode == 0 and os.path.exists(pb), ".so --format=pb writes y.pb (%s)"
          % p.stderr.strip())
    if os.path.exists(pb):
        check(np.allclose(numpy_helper.to_array(onnx.load_tensor(pb)), want_y[0], rtol=1e-6,
                          atol=1e-6), "y.pb holds sample 0's output")

    # a library whose file name is not a C identifier: octet compile names
    # its symbols 3d_each_v2 -> _3d_each_v2, and octet run must find them
    p = octet("compile", onnx_path, "-o", os.path.join(tmp, "3d-each.v2"), "--emit=so")
    check(p.returncode == 0, "compile to 3d-each.v2.so (%s)" % p.stderr.strip())
    d = os.path.join(tmp, "out_dash")
    p = octet("run", os.path.join(tmp, "3d-each.v2.so"), "--input",
              "x=" + os.path.join(tmp, "x0.npy"), "--input", "s=" + os.path.join(tmp, "s.npy"),
              "--output-dir", d)
    y_dash = os.path.join(d, "y.npy")
    check(p.returncode == 0 and os.path.exists(y_dash),
          "run 3d-each.v2.so finds its _3d_each_v2_ symbols (%s)" % p.stderr.strip())
    if os.path.exists(y_dash):
        check(np.allclose(np.load(y_dash), want_y[0], rtol=1e-6, atol=1e-6),
              "3d-each.v2.so computes sample 0's output")

    # errors
    p = octet("run", so, "--input", "x=" + os.path.join(tmp, "x0.npy"), "--input",
              "s=" + os.path.join(tmp, "s.npy"), "--each-sample")
    check(p.returncode != 0 and "no input has one more leading axis" in p.stderr,
          "--each-sample without a stacked input is an error (%d: %s)" % (p.returncode,
                                                                         p.stderr.strip()))
    np.save(os.path.join(tmp, "s4.npy"), rng.standard_normal((4, 3)).astype(np.float32))
    p = octet("run", so, "--input", "x=" + os.path.join(tmp, "x.npy"), "--input",
              "s=" + os.path.join(tmp, "s4.npy"), "--each-sample")
    check(p.returncode != 0 and "samples" in p.stderr and "'s'" in p.stderr,
          "inputs with 5 and 4 samples are an error naming the input (%d: %s)"
          % (p.returncode, p.stderr.strip()))
    np.save(os.path.join(tmp, "xbad.npy"), rng.standard_normal((5, 3, 2)).astype(np.float32))
    p = octet("run", so, "--input", "x=" + os.path.join(tmp, "xbad.npy"), "--input",
              "s=" + os.path.join(tmp, "s.npy"), "--each-sample")
    check(p.returncode != 0 and "'x'" in p.stderr,
          "samples of the wrong shape are an error naming the input (%d)" % p.returncode)

print("%d failed" % len(failures) if failures else "all checks passed")
sys.exit(1 if failures else 0)
