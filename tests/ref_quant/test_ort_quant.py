"""Compares the reference interpreter's quantization kernels with ONNX
Runtime on random data, bit for bit: QuantizeLinear / DequantizeLinear
(per tensor, per axis, int8, uint8, float8), the integer ops MatMulInteger
and ConvInteger, and the requantizing QLinearMatMul / QLinearConv.  The
node tests cover few values; this covers the calibration path (float32 ->
int8/uint8 and back) on thousands, including exact rounding ties.

Requantization (QLinearMatMul, QLinearConv) must match too: Octet
multiplies acc by the float32 multiplier in float32, as ORT does.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)

RNG = np.random.default_rng(20261126)
OCTET = os.environ.get("OCTET")


def make_model(op, inputs, consts, out_type, attrs, opset):
    """inputs: [(name, array)] fed at run time; consts: [(name, array)] as
    initializers; output y of out_type."""
    node = helper.make_node(op, [n for n, _ in inputs + consts] if not attrs.get("_order")
                            else attrs.pop("_order"), ["y"],
                            **{k: v for k, v in attrs.items() if not k.startswith("_")})
    g = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in inputs],
        [helper.make_tensor_value_info("y", out_type, None)],
        [numpy_helper.from_array(a, n) for n, a in consts])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9
    return m


def run_octet(model, feeds, tmp):
    path = os.path.join(tmp, "m.onnx")
    onnx.save(model, path)
    args = [OCTET, "run", path]
    for name, a in feeds.items():
        p = os.path.join(tmp, name + ".pb")
        with open(p, "wb") as f:
            f.write(numpy_helper.from_array(a, name).SerializeToString())
        args += ["--input", f"{name}={p}"]
    out = os.path.join(tmp, "out")
    args += ["--output-dir", out, "--format", "pb"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    t = onnx.TensorProto()
    with open(os.path.join(out, "y.pb"), "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def run_ort(model, feeds):
    s = ort_int8.session(ort, model.SerializeToString())
    return s.run(None, feeds)[0]


def codes(a):
    return a.view(np.uint8) if a.dtype.itemsize == 1 else a


def check(label, model, feeds, tmp):
    got = run_octet(model, feeds, tmp)
    want = run_ort(model, feeds)
    if got.shape != want.shape:
        return f"{label}: shape {got.shape} vs ORT {want.shape}"
    if want.dtype.kind == "f" and want.dtype.itemsize >= 2:
        bad = ~((got == want) | (np.isnan(got) & np.isnan(want)))
    else:
        bad = codes(got) != codes(want)
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        return f"{label}: {int(bad.sum())} of {bad.size} differ, first at {i}: octet {got[i]!r}, ORT {want[i]!r}"
    return None


def quant_cases():
    x = (RNG.standard_normal((2, 8, 5, 5)) * 10).astype(np.float32)
    # exact ties: multiples of 0.125 with scale 0.25 give .5 quotients
    ties = (np.arange(-400, 400, dtype=np.float32) * 0.125).reshape(8, 100)
    yield "quantize u8 per tensor", make_model(
        "QuantizeLinear", [("x", x)], [("s", np.float32(0.0371)), ("z", np.uint8(117))],
        TensorProto.UINT8, {}, 13), {"x": x}
    yield "quantize s8 ties", make_model(
        "QuantizeLinear", [("x", ties)], [("s", np.float32(0.25)), ("z", np.int8(-3))],
        TensorProto.INT8, {}, 13), {"x": ties}
    sc = (RNG.random(8) * 0.2 + 0.01).astype(np.float32)
    zp = RNG.integers(-20, 20, 8).astype(np.int8)
    yield "quantize s8 per axis", make_model(
        "QuantizeLinear", [("x", x)], [("s", sc), ("z", zp)], TensorProto.INT8, {"axis": 1}, 13), {"x": x}
    yield "quantize e4m3fn", make_model(
        "QuantizeLinear", [("x", x * 30)], [("s", np.float32(0.5))],
        TensorProto.FLOAT8E4M3FN, {"output_dtype": TensorProto.FLOAT8E4M3FN}, 21), {"x": x * 30}
    q = RNG.integers(0, 256, (2, 8, 5, 5)).astype(np.uint8)
    yield "dequantize u8 per tensor", make_model(
        "DequantizeLinear", [("q", q)], [("s", np.float32(0.0371)), ("z", np.uint8(117))],
        TensorProto.FLOAT, {}, 13), {"q": q}
    qs = RNG.integers(-128, 128, (2, 8, 5, 5)).astype(np.int8)
    yield "dequantize s8 per axis", make_model(
        "DequantizeLinear", [("q", qs)], [("s", sc), ("z", zp)], TensorProto.FLOAT, {"axis": 1}, 13), {"q": qs}


def integer_cases():
    a = RNG.integers(0, 256, (3, 5, 67)).astype(np.uint8)
    b = RNG.integers(-128, 128, (67, 9)).astype(np.int8)
    yield "matmulinteger", make_model(
        "MatMulInteger", [("a", a), ("b", b)], [("za", np.uint8(131)), ("zb", np.int8(-2))],
        TensorProto.INT32, {}, 10), {"a": a, "b": b}
    x = RNG.integers(0, 256, (1, 8, 11, 11)).astype(np.uint8)
    w = RNG.integers(0, 256, (6, 8, 3, 3)).astype(np.uint8)
    yield "convinteger", make_model(
        "ConvInteger", [("x", x), ("w", w)], [("zx", np.uint8(100)), ("zw", np.uint8(128))],
        TensorProto.INT32, {"pads": [1, 1, 1, 1], "strides": [2, 1]}, 10), {"x": x, "w": w}


def requant_cases():
    for k in (33, 1000):
        a = RNG.integers(0, 256, (2, 4, k)).astype(np.uint8)
        b = RNG.integers(-128, 128, (k, 7)).astype(np.int8)
        consts = [("sa", np.float32(0.02)), ("za", np.uint8(120)), ("sb", np.float32(0.003)),
                  ("zb", np.int8(0)), ("sy", np.float32(0.05 * k / 33)), ("zy", np.uint8(128))]
        yield f"qlinearmatmul k={k}", make_model(
            "QLinearMatMul", [("a", a), ("b", b)], consts, TensorProto.UINT8,
            {"_order": ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"]}, 10), {"a": a, "b": b}
    geometries = [
        ("pads 1 strides 2", 8, 16, 1, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
        ("depthwise dilated", 8, 8, 8, {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
        ("grouped same_upper", 8, 12, 2, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ]
    for label, c, m, group, attrs in geometries:
        x = RNG.integers(0, 256, (2, c, 9, 9)).astype(np.uint8)
        w = RNG.integers(-128, 128, (m, c // group, 3, 3)).astype(np.int8)
        sw = (RNG.random(m) * 0.01 + 0.001).astype(np.float32)
        bias = RNG.integers(-5000, 5000, m).astype(np.int32)
        attrs = dict(attrs, group=group, _order=["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "B"])
        model = make_model(
            "QLinearConv", [("x", x), ("w", w)],
            [("sx", np.float32(0.02)), ("zx", np.uint8(110)), ("sw", sw), ("zw", np.zeros(m, np.int8)),
             ("sy", np.float32(0.1)), ("zy", np.uint8(128)), ("B", bias)],
            TensorProto.UINT8, attrs, 10)
        yield f"qlinearconv {label}", model, {"x": x, "w": w}


def main():
    if not OCTET:
        print("OCTET is not set", file=sys.stderr)
        return 1
    failures, count = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, feeds in quant_cases():
            count += 1
            err = check(label, model, feeds, tmp)
            print(("FAIL " + err) if err else f"ok   {label}")
            failures += [err] if err else []
        for label, model, feeds in list(integer_cases()) + list(requant_cases()):
            count += 1
            err = check(label, model, feeds, tmp)
            print(("FAIL " + err) if err else f"ok   {label}")
            failures += [err] if err else []
    print(f"{count - len(failures)} of {count} ONNX Runtime comparisons pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
