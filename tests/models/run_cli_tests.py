"""`octet run` behaviour on small models built here with the onnx package;
expected values come from ONNX Runtime or numpy.

  - a Shape/Gather/Concat/Reshape chain (folded to constants) computes what
    ONNX Runtime computes, for two input shapes of one dynamic model
  - Identity and inference Dropout removed by folding keep the graph output
    names (the output files are named after them)
  - --each-sample stacks per-sample outputs along a new leading axis
  - .npz inputs map member names to input names
  - a missing input is a usage error (exit 1) naming it; a wrong shape is
    exit 2 naming the input; --format=pb writes TensorProto files
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OCTET = os.environ.get("OCTET", "build/octet")
failures, checks = [], 0


def check(ok, what):
    global checks
    checks += 1
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def ort_run(path, feeds):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)


def octet(args):
    return subprocess.run([OCTET, "run"] + args, capture_output=True, text=True, timeout=120)


def shape_chain_model(path):
    # y = Reshape(x, Concat(Gather(Shape(x), 0), [-1])) + Identity(b), then Dropout
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("Identity", ["b"], ["b2"]),
        helper.make_node("Add", ["flat", "b2"], ["sum"]),
        helper.make_node("Dropout", ["sum"], ["drop"]),
        helper.make_node("Relu", ["drop"], ["relu"]),
        helper.make_node("Identity", ["relu"], ["y.out/0"]),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "zero1"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
             numpy_helper.from_array(np.linspace(-1, 1, 12).astype(np.float32), "b")]
    g = helper.make_graph(nodes, "chain",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
                          [helper.make_tensor_value_info("y.out/0", TensorProto.FLOAT, ["N", 12])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def main():
    tmp = tempfile.mkdtemp(prefix="octet_runcli_")
    try:
        model = os.path.join(tmp, "chain.onnx")
        shape_chain_model(model)
        rng = np.random.default_rng(3)
        for n in (1, 5):
            x = rng.standard_normal((n, 3, 4)).astype(np.float32)
            np.save(os.path.join(tmp, "x.npy"), x)
            out = os.path.join(tmp, "out%d" % n)
            p = octet([model, "--input", "x=" + os.path.join(tmp, "x.npy"), "--output-dir", out])
            # '/' is not allowed in a file name: the output file is y.out_0.npy
            f = os.path.join(out, "y.out_0.npy")
            ok = p.returncode == 0 and os.path.exists(f)
            want = ort_run(model, {"x": x})[0]
            check(ok and np.allclose(np.load(f), want, atol=1e-6, rtol=1e-6),
                  "shape chain with batch %d matches onnxruntime (exit %d %s)" % (
                      n, p.returncode, p.stderr.strip()[-200:]))
            check("y.out/0: FLOAT [%d,12]" % n in p.stdout, "summary names output and shape")

        # --each-sample: x has one more leading axis than the input [N,3,4]
        xs = rng.standard_normal((4, 2, 3, 4)).astype(np.float32)
        np.save(os.path.join(tmp, "xs.npy"), xs)
        p = octet([model, "--input", "x=" + os.path.join(tmp, "xs.npy"), "--each-sample",
                   "--output-dir", os.path.join(tmp, "each")])
        want = np.stack([ort_run(model, {"x": xs[i]})[0] for i in range(4)])
        f = os.path.join(tmp, "each", "y.out_0.npy")
        check(p.returncode == 0 and np.allclose(np.load(f), want, atol=1e-6),
              "--each-sample stacks outputs [4,2,12] (exit %d %s)" % (p.returncode, p.stderr[-200:]))

        # .npz input, TensorProto output
        x = rng.standard_normal((2, 3, 4)).astype(np.float32)
        np.savez(os.path.join(tmp, "in.npz"), x=x)
        p = octet([model, "--input", os.path.join(tmp, "in.npz"), "--output-dir",
                   os.path.join(tmp, "pb"), "--format=pb"])
        f = os.path.join(tmp, "pb", "y.out_0.pb")
        ok = p.returncode == 0 and os.path.exists(f)
        check(ok and np.allclose(numpy_helper.to_array(onnx.load_tensor(f)),
                                 ort_run(model, {"x": x})[0], atol=1e-6),
              ".npz input and --format=pb output (exit %d %s)" % (p.returncode, p.stderr[-200:]))

        # usage and input errors
        p = octet([model])
        check(p.returncode == 1 and "'x'" in p.stderr, "missing input: exit 1 naming it")
        np.save(os.path.join(tmp, "bad.npy"), np.zeros((2, 4, 3), np.float32))
        p = octet([model, "--input", "x=" + os.path.join(tmp, "bad.npy")])
        check(p.returncode == 2 and "'x'" in p.stderr, "wrong shape: exit 2 naming the input")
        np.save(os.path.join(tmp, "badt.npy"), np.zeros((2, 3, 4), np.float64))
        p = octet([model, "--input", "x=" + os.path.join(tmp, "badt.npy")])
        check(p.returncode == 2 and "DOUBLE" in p.stderr, "wrong dtype: exit 2")
        p = octet([model, "--input", "x=" + os.path.join(tmp, "x.npy"), "--input-shape", "x=7x3x4"])
        check(p.returncode == 2, "--input-shape contradicting the tensor: exit 2")
        p = octet([model, "--input", "x=" + os.path.join(tmp, "x.npy"), "--repeat", "3", "--time"])
        check(p.returncode == 0 and "median" in p.stdout, "--repeat 3 --time prints the median")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (checks - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
