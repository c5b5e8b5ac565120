"""ONNX Runtime's contrib DynamicQuantizeMatMul run by Octet itself: the
interpreter (`octet run`), the JIT (`octet run --jit`) and a compiled .so
(`octet compile --emit=so`; the backend expands the node into
DynamicQuantizeLinear, MatMulInteger and the float scale/bias ops) must
equal ONNX Runtime's outputs bit for bit.  ONNX Runtime quantizes A to
uint8 from its range, sums exact int32 products and scales each sum once
with float32 operations, so the result is exact to reproduce.

Models:
  - built with onnx.helper: uint8 and int8 weights, per-tensor and
    per-column scales and zero points, with and without zero points and
    bias, A of rank 2 and 3, an all-zero A (scale 1) and one whose values
    are all positive (zero point 0);
  - written by ONNX Runtime: onnxruntime.quantization.quantize_dynamic of a
    float MatMul + Add model (per tensor and per channel) writes
    DynamicQuantizeLinear, MatMulInteger, Cast, Mul and Add; ONNX Runtime's
    graph optimizer (ORT_ENABLE_EXTENDED, saved with
    optimized_model_filepath) fuses them into one DynamicQuantizeMatMul,
    and that saved model is the one checked (the test fails if the fusion
    no longer yields the op)."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)

OCTET = os.environ["OCTET"]
rng = np.random.default_rng(1919)


def octet(*args):
    r = subprocess.run([OCTET, *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"octet {args[0]} exited {r.returncode}: {r.stderr[-800:]}")


def helper_model(path, a_shape, k, n, wdt, per_col, zp, bias):
    lo, hi = (0, 256) if wdt == np.uint8 else (-128, 128)
    cols = [n] if per_col else []
    inits = [numpy_helper.from_array(rng.integers(lo, hi, (k, n)).astype(wdt), "b"),
             numpy_helper.from_array(rng.uniform(0.002, 0.02, cols).astype(np.float32), "bs")]
    ins = ["a", "b", "bs"]
    if zp:
        zlo, zhi = (100, 156) if wdt == np.uint8 else (-5, 6)
        inits.append(numpy_helper.from_array(rng.integers(zlo, zhi, cols).astype(wdt), "bz"))
        ins.append("bz")
    if bias:
        if not zp:
            ins.append("")
        inits.append(numpy_helper.from_array(rng.normal(0, 1, n).astype(np.float32), "bias"))
        ins.append("bias")
    node = helper.make_node("DynamicQuantizeMatMul", ins, ["y"], domain="com.microsoft",
                            name="dqmm")
    out = list(a_shape[:-1]) + [n]
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    onnx.save(m, path)


def ort_written(tmp, per_channel):
    """quantize_dynamic's model of MatMul + Add, fused by ONNX Runtime's
    optimizer into DynamicQuantizeMatMul and saved."""
    w = rng.normal(0, 0.1, (96, 40)).astype(np.float32)
    b = rng.normal(0, 0.1, 40).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 7, 96])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 7, 40])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    tag = "pc" if per_channel else "pt"
    f, q, o = (os.path.join(tmp, f"ortw_{tag}.{k}.onnx") for k in ("f", "q", "opt"))
    onnx.save(m, f)
    quantize_dynamic(f, q, weight_type=QuantType.QInt8, per_channel=per_channel)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = o
    ort.InferenceSession(q, so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(o).graph.node]
    return o, ops


def check(tmp, name, path, x):
    in_name = onnx.load(path).graph.input[0].name
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort_int8.session(ort, path, so).run(
        None, {in_name: x})[0]
    xf = os.path.join(tmp, f"{name}.x.npy")
    np.save(xf, x)
    got = {}
    for how, args in (("interpreter", []), ("jit", ["--jit"])):
        d = os.path.join(tmp, f"{name}.{how}")
        octet("run", path, *args, "--input", f"{in_name}={xf}", "--output-dir", d)
        got[how] = np.load(os.path.join(d, "y.npy"))
    base = os.path.join(tmp, name.replace("-", "_"))
    octet("compile", path, "-o", base, "--emit=so")
    d = os.path.join(tmp, f"{name}.so_out")
    octet("run", base + ".so", "--input", f"{in_name}={xf}", "--output-dir", d)
    got["compiled"] = np.load(os.path.join(d, "y.npy"))
    bad = 0
    for how, g in got.items():
        ok = g.shape == want.shape and np.array_equal(g.view(np.uint32), want.view(np.uint32))
        diff = int(np.sum(g.view(np.uint32) != want.view(np.uint32))) if g.shape == want.shape \
            else -1
        print(f"{'ok  ' if ok else 'FAIL'} {name} {how}: {diff} of {want.size} outputs differ "
              f"from ONNX Runtime's bits", flush=True)
        bad += not ok
    return bad


def main():
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("u8_per_tensor_zp_bias", [5, 33], 33, 17, np.uint8, False, True, True, "normal"),
            ("i8_per_column_zp_bias", [2, 6, 64], 64, 24, np.int8, True, True, True, "normal"),
            ("i8_per_column_no_zp_bias", [3, 40], 40, 9, np.int8, True, False, True, "normal"),
            ("i8_per_tensor_no_zp_no_bias", [4, 8, 16], 16, 12, np.int8, False, False, False,
             "normal"),
            ("u8_per_column_zp_all_zero_a", [3, 20], 20, 7, np.uint8, True, True, True, "zero"),
            ("i8_per_tensor_zp_positive_a", [6, 25], 25, 11, np.int8, False, True, False,
             "positive"),
        ]
        for name, a_shape, k, n, wdt, per_col, zp, bias, kind in cases:
            path = os.path.join(tmp, name + ".onnx")
            helper_model(path, a_shape, k, n, wdt, per_col, zp, bias)
            x = {"normal": rng.normal(0, 2, a_shape), "zero": np.zeros(a_shape),
                 "positive": rng.uniform(0.5, 3, a_shape)}[kind].astype(np.float32)
            bad += check(tmp, name, path, x)
        for per_channel in (False, True):
            path, ops = ort_written(tmp, per_channel)
            name = "ort_written_" + ("per_channel" if per_channel else "per_tensor")
            if ops != ["DynamicQuantizeMatMul"]:
                print(f"FAIL {name}: ONNX Runtime's optimizer wrote {ops}, not one "
                      f"DynamicQuantizeMatMul")
                bad += 1
                continue
            bad += check(tmp, name, path, rng.normal(0, 1, (2, 7, 96)).astype(np.float32))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
