"""Relu and its relatives compiled keep what ONNX Runtime keeps, bit for
bit: Relu(x) = x < 0 ? +0 : x, so NaN stays NaN (its sign and payload
too), -0.0 stays -0.0, -inf and negative denormals become +0.  A lowering
written as x > 0 ? x : 0, or as maxnum(x, 0), turns NaN into 0 and may
turn -0.0 into +0; a bitwise comparison catches both.  Each model runs
compiled (`octet compile --emit=so`, ctypes) and in the interpreter
(`octet run`) on inputs holding NaN, -NaN, +-0, +-inf, +-denormals,
small and large values, at a length that leaves a vector tail:
  - a one-node Relu (the element-wise loop, lower_eltwise.c);
  - Mul by 2 then Relu (one fused element-wise loop, fuse_eltwise.c);
  - LeakyRelu and Clip(0, 6), which share the select helpers;
  - a 1x1 Conv then Relu, fused into the kernel's clamp (lower_kfloat.c):
    NaN and the clipped values compared bitwise; the zeros by value, as
    the Conv itself (accumulating from +0) need not give ONNX Runtime's
    sign of a zero sum."""
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as TP, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cgutil import compile_so, run_ref, run_so  # noqa: E402

FAILS = []
N = 67  # not a multiple of any vector width: the loop's tail runs too


def inputs():
    special = [np.nan, -np.nan, -0.0, 0.0, -np.inf, np.inf, -1e-40, 1e-40, -1e-30, 1e-30,
               -1.5, 2.5, -3.4e38, 3.4e38, 5.99, 6.0, 6.01, -6.0]
    x = np.random.default_rng(11).standard_normal(N).astype(np.float32)
    x[:len(special)] = special
    # a quiet NaN with a payload and a signalling one, set as bits (a
    # float conversion would quiet the latter)
    x.view(np.uint32)[len(special):len(special) + 2] = [0x7fc12345, 0xff800001]
    x[40:50] = -0.0  # a whole vector of them
    x[50:58] = np.nan
    return x


def model(nodes, inits=(), opset=13, xshape=(N,)):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, xshape)],
                          [helper.make_tensor_value_info("y", TP.FLOAT, None)], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def bits(a):
    return np.ascontiguousarray(a, np.float32).view(np.uint32).reshape(-1)


def compare(tag, how, got, want, zeros_by_value=False):
    g, w = bits(got), bits(want)
    diff = g != w
    if zeros_by_value:  # +0 and -0 alike
        diff &= ~((np.asarray(got).reshape(-1) == 0) & (np.asarray(want).reshape(-1) == 0))
    if diff.any():
        k = np.flatnonzero(diff)[:6]
        FAILS.append("%s %s: %d of %d differ from onnxruntime, e.g. at %s got %s want %s" % (
            tag, how, int(diff.sum()), diff.size, k.tolist(),
            [hex(int(b)) for b in g[k]], [hex(int(b)) for b in w[k]]))
        print("FAIL", tag, how)
    else:
        print("ok  ", tag, how)


def check(tag, m, x, zeros_by_value=False):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, tag + ".onnx")
        onnx.save(m, path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        want = sess.run(None, {"x": x})[0]
        _, got = run_so(compile_so(path, d, "m", ["-O2"]), "m", [x])
        compare(tag, "compiled", got[0], want, zeros_by_value)
        compare(tag, "interpreted", run_ref(path, [("x", x)])["y"], want, zeros_by_value)


def main():
    x = inputs()
    check("relu", model([helper.make_node("Relu", ["x"], ["y"])]), x)
    check("relu_2d", model([helper.make_node("Relu", ["x"], ["y"])], xshape=(3, N)),
          np.stack([x, -x, x[::-1]]))
    # (by 2, not 1: the optimizer drops x * 1, which would keep the
    # signalling NaN that onnxruntime's multiply quiets)
    check("mul_relu_fused_loop",
          model([helper.make_node("Mul", ["x", "two"], ["t"]),
                 helper.make_node("Relu", ["t"], ["y"])],
                [numpy_helper.from_array(np.full(N, 2, np.float32), "two")]), x)
    check("leakyrelu", model([helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.1)]), x)
    check("clip_0_6",
          model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                [numpy_helper.from_array(np.array(0, np.float32), "lo"),
                 numpy_helper.from_array(np.array(6, np.float32), "hi")]), x)
    # Conv 1x1, one channel, weight 1: c = x, then the fused Relu
    conv = model([helper.make_node("Conv", ["x", "w"], ["c"]),
                  helper.make_node("Relu", ["c"], ["y"])],
                 [numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")],
                 xshape=(1, 1, 1, N))
    check("conv_relu_fused_clamp", conv, x.reshape(1, 1, 1, N), zeros_by_value=True)
    for f in FAILS:
        print("FAIL", f)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
