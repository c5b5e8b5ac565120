"""ONNX Runtime's contrib table ops QLinearSigmoid, QLinearLeakyRelu and
QLinearSoftmax (uint8 and int8; softmax on the last axis, a middle axis,
and with opset attribute 11, where the group is every dim from the axis
on): Octet's interpreter (`octet run`) and its compiled .so must equal
ONNX Runtime's outputs bit for bit on random bytes.  An integer contrib op Octet does not implement gets
exit 3 naming the node and the op; DynamicQuantizeMatMul, which Octet
runs itself (tests/ref_quant/test_dynquantmatmul.py), is also rewritten by
qop_to_qdq into ops it runs."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)


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


def save_model(path, nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                                  helper.make_opsetid("com.microsoft", 1)],
                                ir_version=8), path)


def unsupported(tmp, octet):
    """An integer contrib op Octet does not implement (QLinearWhere):
    `octet run`, `octet compile` and `octet opt --passes=qop_to_qdq` exit
    3 naming the node and the op.  Returns the number of failures."""
    u8 = TensorProto.UINT8
    save_model(os.path.join(tmp, "where.onnx"),
               [helper.make_node("QLinearWhere", ["c", "x", "s", "z", "x", "s", "z", "s", "z"], ["y"],
                                 domain="com.microsoft", name="where_node")],
               [helper.make_tensor_value_info("c", TensorProto.BOOL, [4]),
                helper.make_tensor_value_info("x", u8, [4])], [helper.make_tensor_value_info("y", u8, [4])],
               [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
                numpy_helper.from_array(np.array(0, np.uint8), "z")])
    c, x = os.path.join(tmp, "c.npy"), os.path.join(tmp, "x.npy")
    np.save(c, np.ones(4, bool))
    np.save(x, np.ones(4, np.uint8))
    bad = 0
    where = os.path.join(tmp, "where.onnx")
    for args, node, op in ((["run", where, "--input", f"c={c}", "--input", f"x={x}"], "where_node",
                            "QLinearWhere"),
                           (["compile", where, "-o", os.path.join(tmp, "where"), "--emit=so"],
                            "where_node", "QLinearWhere"),
                           (["opt", "--passes=qop_to_qdq", os.path.join(tmp, "where.onnx"), "-o",
                             os.path.join(tmp, "where.qdq.onnx")], "where_node", "QLinearWhere")):
        r = subprocess.run([octet, *args], capture_output=True, text=True, timeout=60)
        if r.returncode != 3 or node not in r.stderr or op not in r.stderr:
            bad += 1
            print(f"FAIL octet {args[0]} on {op}: exit {r.returncode}, {r.stderr[:300]!r}")
    return bad


def dynamic_quantize_matmul(tmp, octet, rng):
    """DynamicQuantizeMatMul (per-column int8 weights, zero points, bias)
    after `octet opt --passes=qop_to_qdq` (DynamicQuantizeLinear, DQs,
    MatMul, Add), interpreted and compiled, against ONNX Runtime on the
    original node: ONNX Runtime accumulates exact int32 products and scales
    once, the QDQ form sums float32 products of the dequantized values, so
    the bound is relative (1e-5 of the output's largest magnitude).
    Returns the number of failures."""
    f = TensorProto.FLOAT
    b = rng.integers(-128, 128, size=(16, 5)).astype(np.int8)
    path, qdq = os.path.join(tmp, "dqmm2.onnx"), os.path.join(tmp, "dqmm2.qdq.onnx")
    save_model(path, [helper.make_node("DynamicQuantizeMatMul", ["a", "b", "bs", "bz", "bias"], ["y"],
                                       domain="com.microsoft", name="dqmm")],
               [helper.make_tensor_value_info("a", f, [3, 16])], [helper.make_tensor_value_info("y", f, [3, 5])],
               [numpy_helper.from_array(b, "b"),
                numpy_helper.from_array(rng.uniform(0.01, 0.05, 5).astype(np.float32), "bs"),
                numpy_helper.from_array(rng.integers(-3, 4, 5).astype(np.int8), "bz"),
                numpy_helper.from_array(rng.normal(size=5).astype(np.float32), "bias")])
    x = rng.normal(size=(3, 16)).astype(np.float32)
    xf = os.path.join(tmp, "a2.npy")
    np.save(xf, x)
    want = ort_int8.session(ort, path).run(None, {"a": x})[0]
    run(octet, "opt", "--passes=qop_to_qdq", path, "-o", qdq)
    run(octet, "run", qdq, "--input", f"a={xf}", "--output-dir", os.path.join(tmp, "di"))
    run(octet, "compile", qdq, "-o", os.path.join(tmp, "dqmm2"), "--emit=so")
    run(octet, "run", os.path.join(tmp, "dqmm2.so"), "--input", f"a={xf}", "--output-dir",
        os.path.join(tmp, "dc"))
    bad = 0
    for how in ("di", "dc"):
        got = np.load(os.path.join(tmp, how, "y.npy"))
        d = float(np.abs(got - want).max())
        print(f"DynamicQuantizeMatMul via qop_to_qdq ({how}): max difference {d:.3g} "
              f"(outputs up to {float(np.abs(want).max()):.3g})")
        if got.shape != want.shape or d > 1e-5 * float(np.abs(want).max()):
            bad += 1
            print("FAIL DynamicQuantizeMatMul via qop_to_qdq")
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
            want = ort_int8.session(ort, path).run(None, {"x": x})[0]
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
        bad += dynamic_quantize_matmul(tmp, octet, rng)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
