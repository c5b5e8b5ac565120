"""Numeric edge cases of QDQ models fed to `octet run` and to `octet compile`
(and one integer Pow case fuzzing found).

Each bad case must exit with code 2, print a diagnostic naming the problem,
and write no output file; each valid edge case must run and give the value
an independent calculation (numpy, and ONNX Runtime where it runs the op)
gives.  Expected texts come from the ONNX spec's rules: scales positive and
finite, per-axis scale length = the axis extent, blocked scale dim =
ceil(dim / block_size) on the blocked axis, zero point in range of its type;
MatMulInteger accumulates in int32, and ONNX Runtime wraps on overflow.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)

OCTET = os.environ["OCTET"]
failures = []


def model(nodes, inputs, outputs, inits, opset=21):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def vi(name, dt, shape):
    return helper.make_tensor_value_info(name, dt, shape)


def run(name, m, feeds, want_rc, want_text=None):
    """Runs the model; returns the outputs (dict) on success."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.onnx")
        with open(path, "wb") as f:
            f.write(m.SerializeToString())
        args = [OCTET, "run", path, "--output-dir", os.path.join(d, "out")]
        os.mkdir(os.path.join(d, "out"))
        for k, v in feeds.items():
            p = os.path.join(d, k + ".npy")
            np.save(p, v)
            args += ["--input", f"{k}={p}"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        outs = sorted(os.listdir(os.path.join(d, "out")))
        ok = r.returncode == want_rc
        if want_text and want_text not in r.stderr:
            ok = False
        if want_rc != 0 and outs:
            ok = False
        if r.returncode < 0 or "Sanitizer" in r.stderr:
            ok = False
        if not ok:
            failures.append(name)
            print(f"FAIL {name}: rc {r.returncode} (want {want_rc}), "
                  f"outputs {outs}\n  stderr: {r.stderr.strip()[:600]}")
            return None
        print(f"ok   {name}: rc {r.returncode}"
              + (f", '{want_text}'" if want_text else ""))
        compile_case(name, path, d, want_rc, want_text)
        return {o[:-4]: np.load(os.path.join(d, "out", o)) for o in outs}


def compile_case(name, path, d, want_rc, want_text):
    """The same model through `octet compile`: a bad constant is the same
    diagnostic (exit 2) or an unsupported form (exit 3), never a crash, and
    leaves no file; a valid model compiles (or is reported unsupported).
    Bad values that only arrive at run time (a scale fed as an input) are
    the compiled code's caller's business: compiling them may succeed."""
    out_dir = os.path.join(d, "compiled")
    os.mkdir(out_dir)
    r = subprocess.run([OCTET, "compile", path, "-o", os.path.join(out_dir, "m"),
                        "--emit=obj,header"], capture_output=True, text=True, timeout=300)
    files = os.listdir(out_dir)
    ok = r.returncode in (0, 2, 3) and "Sanitizer" not in r.stderr
    if r.returncode != 0:
        ok = ok and not files
    if want_rc == 2 and "runtime" not in name:
        ok = ok and r.returncode == 2 and (not want_text or want_text in r.stderr)
    if not ok:
        failures.append(name + " (compile)")
        print(f"FAIL {name} compile: rc {r.returncode}, files {files}\n  "
              f"stderr: {r.stderr.strip()[:600]}")
    else:
        print(f"ok   {name} compile: rc {r.returncode}")


def raw_int_tensor(name, dt, shape, values):
    """A TensorProto with the values in int32_data as given, unchecked (the
    onnx helper refuses out-of-range values, a malformed file need not)."""
    t = TensorProto()
    t.name = name
    t.data_type = dt
    t.dims.extend(shape)
    t.int32_data.extend(int(v) for v in values)
    return t


def dq_model(scale, zp=None, axis=None, block=None, x_shape=(2, 4),
             scale_dt=TensorProto.FLOAT, zp_dt=TensorProto.UINT8):
    attrs = {}
    if axis is not None:
        attrs["axis"] = axis
    if block is not None:
        attrs["block_size"] = block
    scale = np.asarray(scale, dtype=np.float32)
    inits = [numpy_helper.from_array(scale, "s")]
    ins = ["x", "s"]
    if zp is not None:
        inits.append(raw_int_tensor("z", zp_dt, np.shape(zp), np.ravel(zp)))
        ins.append("z")
    n = helper.make_node("DequantizeLinear", ins, ["y"], **attrs)
    return model([n], [vi("x", TensorProto.UINT8, list(x_shape))],
                 [vi("y", TensorProto.FLOAT, None)], inits)


def q_model(scale):
    inits = [numpy_helper.from_array(np.asarray(scale, np.float32), "s"),
             numpy_helper.from_array(np.asarray(0, np.uint8), "z")]
    n = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    return model([n], [vi("x", TensorProto.FLOAT, [2, 4])],
                 [vi("y", TensorProto.UINT8, None)], inits)


x8 = np.arange(8, dtype=np.uint8).reshape(2, 4)
xf = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
BAD_SCALE = "positive and finite"

# scales: zero, negative, NaN, +Inf, -Inf; constant operand of DQ and Q
for label, s in [("zero", 0.0), ("negative", -0.5), ("nan", np.nan),
                 ("inf", np.inf), ("minus_inf", -np.inf)]:
    run(f"dq_{label}_scale", dq_model(s), {"x": x8}, 2, BAD_SCALE)
    run(f"q_{label}_scale", q_model(s), {"x": xf}, 2, BAD_SCALE)
# one bad element of a per-axis scale
run("dq_per_axis_one_zero_scale", dq_model([0.5, 0.0, 1.0, 2.0], axis=1),
    {"x": x8}, 2, BAD_SCALE)

# a scale that arrives at run time (a graph input), not a constant
n = helper.make_node("DequantizeLinear", ["x", "s"], ["y"])
m = model([n], [vi("x", TensorProto.UINT8, [2, 4]), vi("s", TensorProto.FLOAT, [])],
          [vi("y", TensorProto.FLOAT, None)], [])
run("dq_runtime_zero_scale", m, {"x": x8, "s": np.array(0, np.float32)}, 2,
    BAD_SCALE)
run("dq_runtime_nan_scale", m, {"x": x8, "s": np.array(np.nan, np.float32)}, 2,
    BAD_SCALE)

# QLinearMatMul with a zero output scale
def qlmm(y_scale):
    c = lambda v, n, dt=np.float32: numpy_helper.from_array(np.asarray(v, dt), n)
    inits = [c(0.1, "sa"), c(0, "za", np.uint8), c(np.ones((4, 3), np.uint8), "b", np.uint8),
             c(0.2, "sb"), c(0, "zb", np.uint8), c(y_scale, "sy"), c(0, "zy", np.uint8)]
    n = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    return model([n], [vi("a", TensorProto.UINT8, [2, 4])],
                 [vi("y", TensorProto.UINT8, None)], inits)
run("qlinearmatmul_zero_output_scale", qlmm(0.0), {"a": x8}, 2, BAD_SCALE)
run("qlinearmatmul_nan_output_scale", qlmm(np.nan), {"a": x8}, 2, BAD_SCALE)

# zero point out of range of its type: a uint8 zero point stored as 300 and
# an int8 one as -200 in int32_data (TensorProto's field for 8-bit ints)
run("dq_uint8_zero_point_300", dq_model(0.5, zp=300), {"x": x8}, 2,
    "int32_data element 0 is 300, out of range for UINT8")
run("dq_uint8_zero_point_minus1", dq_model(0.5, zp=-1), {"x": x8}, 2, "range")
n = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])
m = model([n], [vi("x", TensorProto.INT8, [2, 4])], [vi("y", TensorProto.FLOAT, None)],
          [numpy_helper.from_array(np.asarray(0.5, np.float32), "s"),
           raw_int_tensor("z", TensorProto.INT8, [], [-200])])
run("dq_int8_zero_point_minus200", m, {"x": x8.astype(np.int8)}, 2, "range")

# per-axis scale length not matching the axis
run("dq_per_axis_3_scales_for_4", dq_model([0.5, 0.5, 0.5], axis=1), {"x": x8},
    2, "per-axis scale has 3 elements")
run("dq_per_axis_4_scales_axis0_of_2", dq_model([0.5] * 4, axis=0), {"x": x8},
    2, "per-axis scale has 4 elements")
run("dq_axis_out_of_range", dq_model([0.5] * 4, axis=2), {"x": x8}, 2, "axis")
run("dq_zero_point_shape_differs", dq_model([0.5] * 4, zp=[0, 0], axis=1),
    {"x": x8}, 2, "zero point shape")

# blocked: block_size 3 does not divide the axis of 4.  ONNX asks for
# ceil(4 / 3) = 2 scales on that axis: floor (1) is an error, ceil runs.
run("dq_block_floor_scale_count", dq_model(np.full((2, 1), 0.5), axis=1, block=3),
    {"x": x8}, 2, "blocked scale dim 1 is 1, expected 2")
run("dq_block_negative", dq_model(np.full((2, 2), 0.5), axis=1, block=-2),
    {"x": x8}, 2, "block_size")
run("dq_block_rank_mismatch", dq_model([0.5, 0.25], axis=1, block=3),
    {"x": x8}, 2, "blocked scale must have the input's rank")
s = np.array([[0.5, 2.0], [0.25, 4.0]], np.float32)
out = run("dq_block_3_on_axis_of_4_ceil", dq_model(s, axis=1, block=3),
          {"x": x8}, 0)
if out is not None:
    # hand calculation: column j uses scale block j // 3
    want = x8.astype(np.float32) * s[:, [0, 0, 0, 1]]
    if not np.array_equal(out["y"], want):
        failures.append("dq_block_3_on_axis_of_4_ceil values")
        print("FAIL blocked values", out["y"], want)

# K large enough to overflow the int32 accumulator: 255 * 255 * 70000 =
# 4551750000 > 2^31 - 1; ONNX Runtime accumulates in int32 and wraps, so the
# output is 4551750000 - 2^32 = 256782704.
K = 70000
a = np.full((1, K), 255, np.uint8)
b = np.full((K, 2), 255, np.uint8)
n = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
m = model([n], [vi("a", TensorProto.UINT8, [1, K]), vi("b", TensorProto.UINT8, [K, 2])],
          [vi("y", TensorProto.INT32, None)], [], opset=13)
out = run("matmulinteger_k70000_int32_overflow", m, {"a": a, "b": b}, 0)
want = np.array([[255 * 255 * K - 2**32] * 2], np.int64).astype(np.int32)
if out is not None:
    if not np.array_equal(out["y"], want):
        failures.append("matmulinteger overflow values")
        print("FAIL overflow", out["y"], want)
    try:
        import onnxruntime as ort
        sess = ort_int8.session(ort, m.SerializeToString())
        ref = sess.run(None, {"a": a, "b": b})[0]
        if not np.array_equal(ref, out["y"]):
            failures.append("matmulinteger overflow vs onnxruntime")
            print("FAIL overflow vs ORT", ref, out["y"])
        else:
            print("ok   matmulinteger overflow equals onnxruntime", ref.ravel())
    except Exception as e:  # ORT refusing the model is not our failure
        print("note: onnxruntime did not run the overflow model:", e)

# Not QDQ, found by fuzzing: integer Pow with a huge exponent used to loop
# y times (a hang for y ~ 2^62).  ONNX integer Pow wraps like C; the value
# is 3^y mod 2^64 as int64, computed here with Python's exact pow.
e = 2**62 + 1
n = helper.make_node("Pow", ["x", "y"], ["z"])
m = model([n], [vi("x", TensorProto.INT64, [2]), vi("y", TensorProto.INT64, [2])],
          [vi("z", TensorProto.INT64, None)], [], opset=15)
import time
t0 = time.time()
out = run("pow_int64_exponent_2^62+1_finishes", m,
          {"x": np.array([3, -1], np.int64), "y": np.array([e, e], np.int64)}, 0)
if out is not None:
    def wrap(v):
        v %= 2**64
        return v - 2**64 if v >= 2**63 else v
    want = np.array([wrap(pow(3, e, 2**64)), wrap((-1) ** e)], np.int64)
    if not np.array_equal(out["z"], want) or time.time() - t0 > 30:
        failures.append("pow huge exponent values/time")
        print("FAIL pow", out["z"], want, time.time() - t0)

if failures:
    print(f"{len(failures)} failures: {failures}")
    sys.exit(1)
print("all numeric edge cases behave")
