"""ONNX Runtime's contrib table ops QLinearSigmoid, QLinearLeakyRelu and
QLinearSoftmax (uint8 and int8; softmax on the last axis, a middle axis,
and with opset attribute 11, where the group is every dim from the axis
on): Octet's interpreter (`octet run`) and its compiled .so must equal
ONNX Runtime's outputs bit for bit on random bytes.  An integer contrib op Octet does not implement gets
exit 3 naming the node and the op."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def model(op, dt, shape, sx, zx, sy, zy, attrs):
    t = TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8
    inits = [numpy_helper.from_array(np.array(sx, np.float32), "sx"),
             numpy_helper.from_array(np.array(zx, dt), "zx"),
             numpy_helper.from_array(np.array(sy, np.float32), "sy"),
             numpy_helper.from_array(np.array(zy, dt), "zy")]
    node = helper.make_node(op, ["x", "sx", "zx", "sy", "zy"], ["y"], domain="com.microsoft", **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", t, shape)],
                          [helper.make_tensor_value_info("y", t, shape)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                               helper.make_opsetid("com.microsoft", 1)], ir_version=8)


def cases():
    for dt in (np.uint8, np.int8):
        u = dt == np.uint8
        yield ("QLinearSigmoid", dt, [2, 3, 17], 0.05, 128 if u else 3, 1 / 256, 0 if u else -128, {})
        yield ("QLinearSigmoid", dt, [300], 0.2, 0, 0.004, 10 if u else 0, {})
        yield ("QLinearLeakyRelu", dt, [4, 33], 0.1, 100 if u else -5, 0.07, 30 if u else -20, {"alpha": 0.1})
        yield ("QLinearSoftmax", dt, [3, 1000], 0.17, 40 if u else 0, 1 / 256, 0 if u else -128,
               {"opset": 13, "axis": -1})
        yield ("QLinearSoftmax", dt, [2, 7, 5], 0.09, 0, 1 / 256, 0 if u else -128, {"opset": 13, "axis": 1})
        yield ("QLinearSoftmax", dt, [2, 2, 3], 0.3, 0, 1 / 255, 0, {"opset": 11, "axis": 1})
        yield ("QLinearSoftmax", dt, [1, 4420, 2], 0.05, 0, 1 / 256, 0, {"opset": 13, "axis": 2})


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} exited {r.returncode}: {r.stderr[:800]}")


def unsupported(tmp, octet):
    """A QOperator op Octet does not implement (DynamicQuantizeMatMul, what
    quantize_dynamic writes): `octet run`, `octet compile` and `octet opt
    --passes=qop_to_qdq` exit 3 naming the node and the op.  Returns the
    number of failures."""
    node = helper.make_node("DynamicQuantizeMatMul", ["a", "b", "bs", "bz"], ["y"],
                            domain="com.microsoft", name="dqmm_node")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
                          [numpy_helper.from_array(np.ones((4, 3), np.int8), "b"),
                           numpy_helper.from_array(np.array(0.1, np.float32), "bs"),
                           numpy_helper.from_array(np.array(0, np.int8), "bz")])
    path = os.path.join(tmp, "dqmm.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                                  helper.make_opsetid("com.microsoft", 1)],
                                ir_version=8), path)
    a = os.path.join(tmp, "a.npy")
    np.save(a, np.ones((2, 4), np.float32))
    bad = 0
    for args in (["run", path, "--input", f"a={a}"],
                 ["compile", path, "-o", os.path.join(tmp, "dqmm"), "--emit=so"],
                 ["opt", "--passes=qop_to_qdq", path, "-o", os.path.join(tmp, "dqmm.qdq.onnx")]):
        r = subprocess.run([octet, *args], capture_output=True, text=True, timeout=60)
        if r.returncode != 3 or "dqmm_node" not in r.stderr or "DynamicQuantizeMatMul" not in r.stderr:
            bad += 1
            print(f"FAIL octet {args[0]} on DynamicQuantizeMatMul: exit {r.returncode}, {r.stderr[:300]!r}")
    return bad


def main():
    octet = os.environ["OCTET"]
    rng = np.random.default_rng(7)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (op, dt, shape, sx, zx, sy, zy, attrs) in enumerate(cases()):
            path = os.path.join(tmp, f"m{i}.onnx")
            onnx.save(model(op, dt, shape, sx, zx, sy, zy, attrs), path)
            info = np.iinfo(dt)
            x = rng.integers(info.min, info.max + 1, size=shape).astype(dt)
            xf = os.path.join(tmp, "x.npy")
            np.save(xf, x)
            want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
            run(octet, "run", path, "--input", f"x={xf}", "--output-dir", os.path.join(tmp, "oi"))
            run(octet, "compile", path, "-o", os.path.join(tmp, f"c{i}"), "--emit=so")
            run(octet, "run", os.path.join(tmp, f"c{i}.so"), "--input", f"x={xf}",
                "--output-dir", os.path.join(tmp, "oc"))
            for how in ("oi", "oc"):
                got = np.load(os.path.join(tmp, how, "y.npy"))
                diff = int((got != want).sum())
                if got.dtype != want.dtype or diff:
                    bad += 1
                    print(f"FAIL {op} {dt.__name__} {shape} {attrs} "
                          f"({'interpreter' if how == 'oi' else 'compiled'}): {diff} of {want.size} differ")
        print(f"{i + 1} table-op cases checked against ONNX Runtime, {bad} failures")
        bad += unsupported(tmp, octet)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
