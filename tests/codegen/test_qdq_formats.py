"""QuantizeLinear / DequantizeLinear of every format the compiler lowers
(packed int4/uint4/int2/uint2, int16/uint16, float8 with a zero point
input, float4 E2M1, float16 scales and outputs, blocked scales) and
QLinearMatMul / QLinearConv with run-time weights, scales and zero points,
compiled (`octet run --jit`) against the reference interpreter (`octet
run`) and an independent oracle: ONNX Runtime where it runs the form, the
onnx package's reference evaluator where it does not (float4; batched
QLinearMatMul with per-column parameters; int2 per-axis QuantizeLinear on
the last axis, which ONNX Runtime 1.30 gets wrong).

The models are one node made with onnx.helper, at shapes the ONNX node
tests do not use: odd element counts (a last partial byte of packed
output), per-axis scales on an axis other than 0, blocks whose last one is
short, blocked scales on an inner axis, batched QLinearMatMul with
per-column scales.  Q/DQ and the integer ops are exact by the numeric
contract (docs/design.md): compiled and interpreter outputs must be equal
bit for bit (NaN where NaN, and the sign of a float zero); the oracle
must agree exactly as well (float outputs of DequantizeLinear are one
float multiply), except on QuantizeLinear of NaN, where the interpreter's
documented choice (the zero point) is not the oracles'.  A float8 zero
point of -0 (which ONNX Runtime refuses) is checked against the
interpreter alone.  The cases feed every input at run time, except the
*_const_weight ones, whose blocked int4/int2 weight, scales and zero
points are initializers (the weight-only path of the low-bit work)."""
import ctypes
import os
import subprocess
import sys
import tempfile
import warnings

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import ort_int8  # tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU

OCTET = os.environ["OCTET"]
rng = np.random.default_rng(2026)

try:
    import onnxruntime as ort
except ImportError:  # the interpreter alone then
    ort = None

NP = {T.INT4: ml_dtypes.int4, T.UINT4: ml_dtypes.uint4, T.INT2: ml_dtypes.int2,
      T.UINT2: ml_dtypes.uint2, T.INT8: np.int8, T.UINT8: np.uint8, T.INT16: np.int16,
      T.UINT16: np.uint16, T.INT32: np.int32, T.FLOAT8E4M3FN: ml_dtypes.float8_e4m3fn,
      T.FLOAT8E5M2: ml_dtypes.float8_e5m2, T.FLOAT8E4M3FNUZ: ml_dtypes.float8_e4m3fnuz,
      T.FLOAT8E5M2FNUZ: ml_dtypes.float8_e5m2fnuz, T.FLOAT4E2M1: ml_dtypes.float4_e2m1fn,
      T.FLOAT: np.float32, T.FLOAT16: np.float16, T.BFLOAT16: ml_dtypes.bfloat16}
RANGE = {T.INT4: (-8, 7), T.UINT4: (0, 15), T.INT2: (-2, 1), T.UINT2: (0, 3),
         T.INT8: (-128, 127), T.UINT8: (0, 255), T.INT16: (-32768, 32767),
         T.UINT16: (0, 65535), T.INT32: (-2**31, 2**31 - 1)}
FLOAT_CODES = (T.FLOAT8E4M3FN, T.FLOAT8E5M2, T.FLOAT8E4M3FNUZ, T.FLOAT8E5M2FNUZ, T.FLOAT4E2M1)


def codes(t, shape):
    """Random elements of quantized type t: any code of a float format
    but NaN (NaN - zero point is NaN either way)."""
    if t in FLOAT_CODES:
        raw = rng.integers(0, 16 if t == T.FLOAT4E2M1 else 256, shape).astype(np.uint8)
        arr = _fp4_from_codes(raw) if t == T.FLOAT4E2M1 else raw.view(NP[t])
        f = arr.astype(np.float32)
        return np.where(np.isnan(f), np.float32(1), f).astype(NP[t])
    lo, hi = RANGE[t]
    return rng.integers(lo, hi + 1, shape).astype(np.int64).astype(NP[t])


def _fp4_from_codes(raw):
    """Float4 E2M1 values of 4-bit codes, from the spec's table (bit 3 the
    sign, magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6)."""
    mags = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], np.float32)
    v = mags[raw & 7] * np.where(raw & 8, -1, 1)
    return v.astype(np.float32).astype(ml_dtypes.float4_e2m1fn)


def scales(shape, dt=T.FLOAT):
    """Positive scales of type dt (int32: 1 to 150)."""
    if dt == T.INT32:
        return np.asarray(np.rint(np.exp(rng.uniform(0, 5, shape))), np.int32)
    s = np.asarray(np.exp(rng.uniform(-5, 1, shape)), np.float32)
    return np.asarray(s, NP[dt])


def zero_points(t, shape, neg_zero=False):
    """Random zero points of type t (float formats: 0, as the spec wants;
    with neg_zero a -0 first, which ONNX Runtime refuses)."""
    if t in FLOAT_CODES:
        z = np.zeros(shape, np.float32)
        if neg_zero and z.size:
            z.reshape(-1)[0] = -0.0
        return z.astype(NP[t])
    return codes(t, shape)


def model(op, inputs, consts, out, opset, **attrs):
    """One-node model: inputs (name, array) are graph inputs, consts (name,
    array or None for an omitted input) initializers, in node order."""
    names = [n for n, _ in inputs] + [n if a is not None else "" for n, a in consts]
    node = helper.make_node(op, names, [out[0]], name="n0", **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in inputs]
    g = helper.make_graph([node], "g", vi, [helper.make_tensor_value_info(*out)],
                          [numpy_helper.from_array(a, n) for n, a in consts if a is not None])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def octet_run(path, inputs, jit, d, tag):
    """(first output, "") of `octet run` (with jit: `--jit`) on TensorProto
    files, or (None, its last error line)."""
    out = os.path.join(d, "out_" + tag)
    args = [OCTET, "run", path, "--output-dir", out, "--format=pb"] + (["--jit"] if jit else [])
    for k, (n, a) in enumerate(inputs):
        p = os.path.join(d, "in%d.pb" % k)
        onnx.save_tensor(numpy_helper.from_array(a, n), p)
        args += ["--input", "%s=%s" % (n, p)]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        lines = p.stderr.strip().splitlines()
        return None, lines[-1] if lines else "exit %d" % p.returncode
    files = os.listdir(out)
    return numpy_helper.to_array(onnx.load_tensor(os.path.join(out, files[0]))), ""


def same(a, b):
    """Exact equality of two arrays of one dtype (NaN equal to NaN; float
    -0 and +0 told apart through the bits of float outputs)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False, "shape/dtype %s %s vs %s %s" % (a.shape, a.dtype, b.shape, b.dtype)
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    ok = (fa == fb) | (np.isnan(fa) & np.isnan(fb))
    if a.dtype in (np.float32, np.float16):
        ok &= np.signbit(fa) == np.signbit(fb)
    if ok.all():
        return True, ""
    i = int(np.argmax(~ok.reshape(-1)))
    return False, "%d of %d differ (first at %d: %r vs %r)" % (
        (~ok).sum(), ok.size, i, fa.reshape(-1)[i], fb.reshape(-1)[i])


def ort_run(m, inputs):
    """The first output of m run by ONNX Runtime.  Tensors travel as their
    ONNX raw bytes (packed sub-byte types, float8), which ORT's numpy
    bridge does not take."""
    sess = ort.InferenceSession(ort_int8.for_ort(m).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    feeds = {}
    for n, a in inputs:
        t = numpy_helper.from_array(a, n)
        v = ort.OrtValue.ortvalue_from_shape_and_type(list(a.shape), t.data_type)
        raw = t.raw_data
        assert v.tensor_size_in_bytes() == len(raw), (n, v.tensor_size_in_bytes(), len(raw))
        ctypes.memmove(v.data_ptr(), raw, len(raw))
        feeds[n] = v
    out = sess.run_with_ort_values(None, feeds)[0]
    raw = ctypes.string_at(out.data_ptr(), out.tensor_size_in_bytes())
    elem = m.graph.output[0].type.tensor_type.elem_type
    return numpy_helper.to_array(helper.make_tensor("y", elem, out.shape(), raw, raw=True))


FAILS = []


def oracle_run(oracle, m, inputs):
    if oracle == "ort":
        return ort_run(m, inputs)
    from onnx.reference import ReferenceEvaluator
    with warnings.catch_warnings():  # its cast of NaN to int32 warns
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(ReferenceEvaluator(m).run(None, dict(inputs))[0])


def check(name, m, inputs, oracle="ort", ignore=None):
    """Compiled == interpreter, and == the independent oracle (ONNX Runtime
    "ort", the onnx package's reference "onnx", or None) except at the
    elements `ignore` marks (QuantizeLinear of NaN: the interpreter gives
    the zero point, a documented choice where the spec is silent)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        onnx.save(m, path)
        want, err = octet_run(path, inputs, False, d, "ref")
        if want is None:
            FAILS.append("%s: interpreter: %s" % (name, err))
            print("FAIL", name, "interpreter:", err)
            return
        got, err = octet_run(path, inputs, True, d, "jit")
        if got is None:
            FAILS.append("%s: compiled: %s" % (name, err))
            print("FAIL", name, "compiled:", err)
            return
        ok, why = same(got, want)
        line = "compiled == interpreter" if ok else "compiled vs interpreter: " + why
        if ok and oracle and (oracle != "ort" or ort is not None):
            other = oracle_run(oracle, m, inputs).astype(got.dtype)
            if ignore is not None:
                other = np.where(ignore, got, other).astype(got.dtype)
            ok, why = same(got, other)
            who = "ONNX Runtime" if oracle == "ort" else "onnx.reference"
            line += (", == " + who) if ok else "; vs %s: %s" % (who, why)
        print("ok  " if ok else "FAIL", name + ":", line)
        if not ok:
            FAILS.append(name)


def dq_case(name, t, xshape, sshape, axis=None, block=None, zp=True, out=T.FLOAT,
            sdt=T.FLOAT, const=False, opset=21, oracle="ort", neg_zero=False):
    x, s = codes(t, xshape), scales(sshape, sdt)
    if t == T.INT32:  # ORT forms x - zp in int32: keep it from wrapping
        x = (x // 4).astype(np.int32)
    z = zero_points(t, sshape, neg_zero) if zp else None
    if t == T.INT32 and zp:
        z = (z // 4).astype(np.int32)
    attrs = {k: v for k, v in (("axis", axis), ("block_size", block)) if v is not None}
    if out != sdt:
        attrs["output_dtype"] = out
    feeds = [("x", x)] + ([] if const else [("s", s)] + ([("z", z)] if zp else []))
    consts = [("s", s)] + ([("z", z)] if zp else []) if const else []
    if const:  # the weight itself is a constant too
        feeds, consts = [], [("x", x)] + consts
    m = model("DequantizeLinear", feeds, consts, ("y", out, list(xshape)), opset, **attrs)
    check(name, m, feeds, oracle)


def q_case(name, t, xshape, sshape, axis=None, block=None, zp=True, xdt=T.FLOAT, sdt=T.FLOAT,
           opset=21, oracle="ort", saturate=None, spread=4.0, neg_zero=False):
    s = scales(sshape, sdt)
    # values spread over a few steps of the grid beyond its ends (saturation),
    # plus exact ties (k + 0.5) * scale where a float scale allows
    x = (rng.standard_normal(xshape) * spread).astype(np.float32)
    if t not in FLOAT_CODES:
        lo, hi = RANGE[t]
        x *= np.float32((hi - lo) / 8)
        if s.size == 1:
            x.reshape(-1)[:3] = np.array([0.5, -1.5, 2.5], np.float32) * np.float32(s)
    if x.size > 5 and xdt == T.FLOAT:
        x.reshape(-1)[4] = np.nan
    x = np.rint(x).astype(np.int32) if xdt == T.INT32 else x.astype(NP[xdt])
    z = zero_points(t, sshape, neg_zero) if zp else None
    attrs = {k: v for k, v in (("axis", axis), ("block_size", block), ("saturate", saturate))
             if v is not None}
    if not zp:
        attrs["output_dtype"] = t
    feeds = [("x", x), ("s", s)] + ([("z", z)] if zp else [])
    m = model("QuantizeLinear", feeds, [], ("y", t, list(xshape)), opset, **attrs)
    check(name, m, feeds, oracle, ignore=np.isnan(x.astype(np.float32)))


def main():
    sub = ((T.INT4, "int4"), (T.UINT4, "uint4"), (T.INT2, "int2"), (T.UINT2, "uint2"))
    for t, tn in sub:
        op25 = t in (T.INT2, T.UINT2)
        kw = dict(opset=25 if op25 else 21)
        # odd count: a last partial byte; per axis on an inner axis of odd
        # length; blocked on the last axis with a short last block (aligned
        # and not); blocked on axis 0 (contiguous scales)
        dq_case("dq_%s_tensor_odd" % tn, t, [13], [], **kw)
        dq_case("dq_%s_tensor_long_odd" % tn, t, [3, 29], [], **kw)  # vector steps + a tail
        dq_case("dq_%s_axis1" % tn, t, [3, 5, 4], [5], axis=1, **kw)
        dq_case("dq_%s_axis_last_odd" % tn, t, [4, 7], [7], axis=-1, **kw)
        dq_case("dq_%s_blocked_short" % tn, t, [5, 37], [5, 5], axis=1, block=8, **kw)
        dq_case("dq_%s_blocked_aligned" % tn, t, [6, 64], [6, 2], axis=1, block=32, **kw)
        dq_case("dq_%s_blocked_axis0" % tn, t, [10, 6], [3, 6], axis=0, block=4, **kw)
        dq_case("dq_%s_blocked_const_weight" % tn, t, [16, 72], [16, 3], axis=1, block=32,
                const=True, **kw)
        dq_case("dq_%s_blocked_no_zp" % tn, t, [3, 9], [3, 3], axis=1, block=4, zp=False, **kw)
        q_case("q_%s_tensor_odd" % tn, t, [13], [], **kw)
        q_case("q_%s_axis1" % tn, t, [2, 3, 5], [3], axis=1, **kw)
        # ONNX Runtime 1.30 misplaces the per-axis parameters of an int2/uint2
        # QuantizeLinear on the last axis (checked against numpy by hand):
        # onnx.reference is the oracle there
        q_case("q_%s_axis_last_odd" % tn, t, [3, 7], [7], axis=1,
               oracle="onnx" if op25 else "ort", **kw)
        q_case("q_%s_blocked_short" % tn, t, [4, 37], [4, 5], axis=1, block=8, **kw)
        q_case("q_%s_blocked_axis0" % tn, t, [9, 5], [3, 5], axis=0, block=4, **kw)
    for t, tn in ((T.INT16, "int16"), (T.UINT16, "uint16")):
        dq_case("dq_%s_axis1" % tn, t, [2, 3, 5], [3], axis=1)
        dq_case("dq_%s_blocked" % tn, t, [4, 11], [4, 3], axis=1, block=4)
        q_case("q_%s_axis2" % tn, t, [2, 3, 5], [5], axis=2)
        q_case("q_%s_blocked" % tn, t, [4, 11], [4, 3], axis=1, block=4, zp=False)
    for t, tn in ((T.INT8, "int8"), (T.UINT8, "uint8")):
        dq_case("dq_%s_blocked_inner" % tn, t, [2, 7, 3], [2, 2, 3], axis=1, block=4)
        dq_case("dq_%s_blocked_const_weight" % tn, t, [8, 80], [8, 3], axis=1, block=32,
                const=True)
        q_case("q_%s_blocked_inner" % tn, t, [2, 7, 3], [2, 2, 3], axis=1, block=4)
        dq_case("dq_%s_float16_out" % tn, t, [3, 5], [5], axis=1, out=T.FLOAT16, sdt=T.FLOAT16)
        # float16 x / float16 scale is a float16 division (the interpreter
        # follows the ONNX reference); ONNX Runtime rounds some quotients
        # otherwise (1 element of 15 here)
        q_case("q_%s_from_float16" % tn, t, [3, 5], [5], axis=1, xdt=T.FLOAT16, sdt=T.FLOAT16,
               oracle="onnx")
    dq_case("dq_int4_float16_out_blocked", T.INT4, [4, 10], [4, 3], axis=1, block=4,
            out=T.FLOAT16, sdt=T.FLOAT16)
    dq_case("dq_int32_axis1", T.INT32, [3, 4], [4], axis=1, zp=True)
    dq_case("dq_int4_bfloat16_out_blocked", T.INT4, [4, 10], [4, 3], axis=1, block=4,
            out=T.BFLOAT16, sdt=T.BFLOAT16, oracle="onnx")  # not in ONNX Runtime
    q_case("q_uint8_from_bfloat16", T.UINT8, [3, 5], [5], axis=1, xdt=T.BFLOAT16,
           sdt=T.BFLOAT16, oracle="onnx")
    # int32 x: a double division; with an int32 scale (opset 21 binds x and
    # the scale to one type) and with a float scale (opset 25)
    q_case("q_int8_from_int32", T.INT8, [4, 6], [6], axis=1, xdt=T.INT32, sdt=T.INT32,
           oracle="onnx")  # not in ONNX Runtime
    q_case("q_int16_from_int32_float_scale_blocked", T.INT16, [3, 10], [3, 3], axis=1,
           block=4, xdt=T.INT32, opset=25, oracle="onnx")
    f8 = ((T.FLOAT8E4M3FN, "e4m3fn"), (T.FLOAT8E5M2, "e5m2"), (T.FLOAT8E4M3FNUZ, "e4m3fnuz"),
          (T.FLOAT8E5M2FNUZ, "e5m2fnuz"))
    for t, tn in f8:
        dq_case("dq_%s_zero_point_axis1" % tn, t, [3, 6], [6], axis=1, oracle="ort")
        dq_case("dq_%s_negative_zero_point" % tn, t, [3, 6], [6], axis=1, oracle=None,
                neg_zero=True)
        dq_case("dq_%s_float16_out" % tn, t, [7], [], zp=False, out=T.FLOAT16, sdt=T.FLOAT16,
                oracle="ort")
        dq_case("dq_%s_blocked" % tn, t, [3, 10], [3, 3], axis=1, block=4, oracle="ort")
        q_case("q_%s_zero_point_axis1" % tn, t, [3, 6], [6], axis=1, spread=300.0,
               oracle="ort")
        q_case("q_%s_negative_zero_point" % tn, t, [3, 6], [6], axis=1, spread=300.0,
               oracle=None, neg_zero=True)
        q_case("q_%s_blocked" % tn, t, [2, 9], [2, 3], axis=1, block=4, spread=300.0,
               oracle="ort")
        if t in (T.FLOAT8E4M3FN, T.FLOAT8E5M2):
            q_case("q_%s_no_saturate" % tn, t, [11], [], zp=False, saturate=0,
                   spread=1e5, oracle="ort")
    dq_case("dq_fp4_axis1_odd", T.FLOAT4E2M1, [3, 7], [7], axis=1, opset=23, oracle="onnx")
    dq_case("dq_fp4_blocked", T.FLOAT4E2M1, [2, 9], [2, 3], axis=1, block=4, opset=23,
            oracle="onnx")
    q_case("q_fp4_axis1_odd", T.FLOAT4E2M1, [3, 7], [7], axis=1, opset=23, spread=8.0,
           oracle="onnx")
    q_case("q_fp4_tensor_no_zp", T.FLOAT4E2M1, [9], [], zp=False, opset=23, spread=8.0,
           oracle="onnx")
    qlinear_cases()
    qlinearconv_3d()
    e8m0_scales_and_unsupported()
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


def qlinear_cases():
    for at, bt in ((np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)):
        for sdt in (T.FLOAT, T.FLOAT16):
            for ashape, bshape, sbn in (([5, 9], [9, 7], 7), ([2, 3, 9], [9, 4], 1),
                                        ([3, 2, 5], [3, 5, 6], 6), ([4, 6], [2, 6, 3], 3)):
                a = rng.integers(np.iinfo(at).min, np.iinfo(at).max + 1, ashape).astype(at)
                b = rng.integers(np.iinfo(bt).min, np.iinfo(bt).max + 1, bshape).astype(bt)
                za = np.array(rng.integers(np.iinfo(at).min, np.iinfo(at).max + 1), at)
                zb = rng.integers(np.iinfo(bt).min, np.iinfo(bt).max + 1, [sbn]).astype(bt)
                zy = np.array(rng.integers(0, 200), np.uint8).astype(at)
                sa = np.array(0.02, np.float32).astype(NP[sdt])
                sb = scales([sbn], sdt) * NP[sdt](0.05)
                sy = np.array(0.7, np.float32).astype(NP[sdt])
                feeds = [("a", a), ("sa", sa), ("za", za), ("b", b), ("sb", sb), ("zb", zb),
                         ("sy", sy), ("zy", zy)]
                yshape = list(np.broadcast_shapes(ashape[:-2], bshape[:-2])) + \
                    [ashape[-2], bshape[-1]]
                ytype = helper.np_dtype_to_tensor_dtype(np.dtype(at))
                m = model("QLinearMatMul", feeds, [], ("y", ytype, yshape), 21)
                # ORT's QLinearMatMul takes per-column b parameters only with a
                # 2-D b, and forms a float16 multiplier otherwise than the
                # interpreter (which rounds each step to float16, as
                # onnx.reference does): onnx.reference checks those
                name = "qlinearmatmul_%s_%s_%s_%s" % (np.dtype(at).name, np.dtype(bt).name,
                                                      "f16" if sdt == T.FLOAT16 else "f32",
                                                      "x".join(map(str, ashape + bshape)))
                ort_ok = sdt == T.FLOAT and (sbn == 1 or len(bshape) == 2)
                check(name, m, feeds, oracle="ort" if ort_ok else "onnx")
    for xt, wt, group, strides, pads in ((np.uint8, np.int8, 1, [1, 1], [1, 0, 1, 2]),
                                         (np.uint8, np.uint8, 2, [2, 1], [0, 1, 1, 0]),
                                         (np.int8, np.int8, 3, [1, 2], [0, 0, 0, 0])):
        x = rng.integers(np.iinfo(xt).min, np.iinfo(xt).max + 1, [2, 6, 7, 5]).astype(xt)
        w = rng.integers(np.iinfo(wt).min, np.iinfo(wt).max + 1, [6, 6 // group, 3, 2]).astype(wt)
        zx = np.array(rng.integers(0, 100), xt)
        zw = rng.integers(0, 20, [6]).astype(wt)
        sx, sw, sy = np.array(0.03, np.float32), scales([6]) * np.float32(0.02), \
            np.array(0.4, np.float32)
        zy = np.array(rng.integers(0, 100), xt)
        bias = rng.integers(-3000, 3000, [6]).astype(np.int32)
        feeds = [("x", x), ("sx", sx), ("zx", zx), ("w", w), ("sw", sw), ("zw", zw),
                 ("sy", sy), ("zy", zy), ("bias", bias)]
        oh = (7 + pads[0] + pads[2] - 3) // strides[0] + 1
        ow = (5 + pads[1] + pads[3] - 2) // strides[1] + 1
        m = model("QLinearConv", feeds, [], ("y", helper.np_dtype_to_tensor_dtype(np.dtype(xt)),
                                             [2, 6, oh, ow]), 10,
                  group=group, strides=strides, pads=pads)
        check("qlinearconv_runtime_w_%s_%s_g%d" % (np.dtype(xt).name, np.dtype(wt).name, group),
              m, feeds)


def qlinearconv_3d():
    """A 3-D QLinearConv (the kernels take 1-D and 2-D): the loops, with
    constant weights and per-channel weight parameters."""
    x = rng.integers(0, 256, [1, 4, 3, 5, 4]).astype(np.uint8)
    w = rng.integers(-128, 128, [3, 4, 2, 3, 2]).astype(np.int8)
    feeds = [("x", x), ("sx", np.array(0.05, np.float32)), ("zx", np.array(120, np.uint8))]
    consts = [("w", w), ("sw", scales([3]) * np.float32(0.01)), ("zw", np.zeros([3], np.int8)),
              ("sy", np.array(0.3, np.float32)), ("zy", np.array(7, np.uint8)),
              ("bias", rng.integers(-500, 500, [3]).astype(np.int32))]
    m = model("QLinearConv", feeds, consts, ("y", T.UINT8, [1, 3, 4, 4, 4]), 10,
              pads=[1, 0, 1, 1, 1, 0])
    check("qlinearconv_3d_const_w", m, feeds)


def e8m0_scales_and_unsupported():
    """DequantizeLinear with float8 E8M0 scales (opset 24+, the MX formats)
    compiles: blocked, equal to the interpreter and to x * 2^e in numpy.
    A form the compiler does not take (QuantizeLinear with an E8M0 scale)
    is exit 3 with a diagnostic naming the node and the scale input, not a
    crash; the interpreter runs it."""
    rng = np.random.default_rng(5)
    x = codes(T.INT8, [8, 3])
    e = rng.integers(-6, 6, [2, 3])
    s = np.exp2(e).astype(np.float32).astype(ml_dtypes.float8_e8m0fnu)
    m = model("DequantizeLinear", [("x", x), ("s", s)], [], ("y", T.FLOAT, [8, 3]), 25,
              output_dtype=T.FLOAT, axis=0, block_size=4)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        onnx.save(m, path)
        ref, err = octet_run(path, [("x", x), ("s", s)], False, d, "ref")
        jit, err2 = octet_run(path, [("x", x), ("s", s)], True, d, "jit")
        want = x.astype(np.float32) * np.repeat(np.exp2(e).astype(np.float32), 4, axis=0)
        ok = ref is not None and jit is not None and same(ref, want)[0] and same(jit, ref)[0]
        print("ok  " if ok else "FAIL", "e8m0 scale DequantizeLinear: interpreter %s, --jit %s, "
              "equal to numpy" % (err or "ok", err2 or "ok"))
        if not ok:
            FAILS.append("e8m0 dequantize")
    xf = rng.standard_normal([4]).astype(np.float32)
    s1 = np.array([1.0], np.float32).astype(ml_dtypes.float8_e8m0fnu)
    m = model("QuantizeLinear", [("x", xf), ("s", s1)], [], ("y", T.UINT8, [4]), 25)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        onnx.save(m, path)
        want, err = octet_run(path, [("x", xf), ("s", s1)], False, d, "ref")
        args = [OCTET, "run", path, "--jit", "--output-dir", os.path.join(d, "jit"),
                "--input", "x=" + os.path.join(d, "in0.pb"),
                "--input", "s=" + os.path.join(d, "in1.pb")]
        p = subprocess.run(args, capture_output=True, text=True)
        ok = want is not None and p.returncode == 3 and "node 'n0' (QuantizeLinear) input 1" \
            in p.stderr and "FLOAT8E8M0" in p.stderr
        errors = [ln for ln in p.stderr.splitlines() if " error: " in ln]
        print("ok  " if ok else "FAIL", "e8m0 scale QuantizeLinear: interpreter runs it (%s), "
              "--jit exit %d: %s" % (err or "ok", p.returncode, errors))
        if not ok:
            FAILS.append("e8m0 diagnostic")


if __name__ == "__main__":
    sys.exit(main())
