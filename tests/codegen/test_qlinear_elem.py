"""The integer element-wise ops qdq_fuse makes of quantized Add, Mul, Concat
with differing scales, AveragePool and GlobalAveragePool (ONNX Runtime's
com.microsoft QLinearAdd, QLinearMul, QLinearConcat, QLinearAveragePool,
QLinearGlobalAveragePool).  For small QDQ models built here (8-bit inputs
-> DequantizeLinear -> op -> QuantizeLinear -> 8-bit output, uint8 and
int8):
  * `octet opt --passes=...,qdq_fuse` leaves the fused contrib op and no
    float op;
  * `octet compile --report` lowers it as an integer loop (the report says
    "integer") and its output equals the interpreter's (`octet run` on the
    fused graph) byte for byte;
  * ONNX Runtime running the fused graph (its own contrib kernels) agrees
    within 1 LSB, and the interpreter agrees within 1 LSB with the QDQ
    graph evaluated in float (numpy, the ONNX definitions of DQ/op/Q), an
    oracle independent of both.
Then squeezenet1.1 quantized by ONNX Runtime's quantize_static (Concat of
fire modules with differing scales, GlobalAveragePool; `octet quantize`
gives a Concat one scale and keeps the pool float, see squeezenet()):
the compile report shows every QLinearConcat and QLinearGlobalAveragePool
as integer and their compiled outputs equal the interpreter's on the fused
graph bit for bit; and ONNX Runtime's QOperator model of squeezenet1.1
(the contrib ops written by quantize_static itself) runs in the
interpreter with ONNX Runtime's top-1 and compiles bit-exactly."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import ort_int8  # tests/testlib

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
OCTET = os.environ["OCTET"]
PIPELINE = "shape_infer,fold,shape_infer,qdq_fuse"
rng = np.random.default_rng(13)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def tp(dt):
    return TensorProto.UINT8 if dt == np.uint8 else TensorProto.INT8


def qdq_model(op, shapes, out_shape, params, dt, attrs=None, act=None):
    """Inputs x0.. (8-bit, shapes) -> DQ(scale, zp) -> op -> [act] -> Q(ys, yz)."""
    (in_params, (ys, yz)) = params
    nodes, inits, inputs = [], [], []
    for i, (shape, (s, z)) in enumerate(zip(shapes, in_params)):
        inputs.append(helper.make_tensor_value_info("x%d" % i, tp(dt), shape))
        inits += [numpy_helper.from_array(np.array(s, np.float32), "s%d" % i),
                  numpy_helper.from_array(np.array(z, dt), "z%d" % i)]
        nodes.append(helper.make_node("DequantizeLinear", ["x%d" % i, "s%d" % i, "z%d" % i],
                                      ["f%d" % i]))
    nodes.append(helper.make_node(op, ["f%d" % i for i in range(len(shapes))], ["r"],
                                  name="the_op", **(attrs or {})))
    last = "r"
    if act:
        nodes.append(helper.make_node(act, ["r"], ["ra"]))
        last = "ra"
    inits += [numpy_helper.from_array(np.array(ys, np.float32), "ys"),
              numpy_helper.from_array(np.array(yz, dt), "yz")]
    nodes.append(helper.make_node("QuantizeLinear", [last, "ys", "yz"], ["y"]))
    g = helper.make_graph(nodes, "g", inputs,
                          [helper.make_tensor_value_info("y", tp(dt), out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def float_oracle(op, xs, params, dt, attrs, act):
    """The QDQ graph in float64 numpy: DQ, the op, Q (round half to even,
    saturate)."""
    in_params, (ys, yz) = params
    f = [(x.astype(np.float64) - z) * np.float32(s) for x, (s, z) in zip(xs, in_params)]
    if op == "Add":
        r = f[0] + f[1]
    elif op == "Mul":
        r = f[0] * f[1]
    elif op == "Concat":
        r = np.concatenate(f, axis=attrs["axis"])
    elif op == "GlobalAveragePool":
        r = f[0].mean(axis=(2, 3), keepdims=True)
    else:
        r = avgpool_oracle(f[0], attrs)
    if act == "Relu":
        r = np.maximum(r, 0)
    lo, hi = (-128, 127) if dt == np.int8 else (0, 255)
    return np.clip(np.rint(r / np.float32(ys)) + yz, lo, hi).astype(dt)


def avgpool_oracle(x, attrs):
    kh, kw = attrs["kernel_shape"]
    sh, sw = attrs.get("strides", [1, 1])
    pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0])
    inc = attrs.get("count_include_pad", 0)
    n, c, h, w = x.shape
    oh, ow = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - pt, j * sw - pl
            rs, cs = slice(max(r0, 0), min(r0 + kh, h)), slice(max(c0, 0), min(c0 + kw, w))
            win = x[:, :, rs, cs]
            cnt = kh * kw if inc else win.shape[2] * win.shape[3]
            y[:, :, i, j] = win.sum(axis=(2, 3)) / cnt
    return y


def rand8(dt, shape):
    lo, hi = (-128, 128) if dt == np.int8 else (0, 256)
    return rng.integers(lo, hi, shape).astype(dt)


def cases():
    """name -> (op, input shapes, output shape, params, attrs, act, fused op type)"""
    out = {}
    for dt in (np.uint8, np.int8):
        z = (lambda u: u) if dt == np.uint8 else (lambda u: u - 128)
        tag = "u8" if dt == np.uint8 else "s8"
        out["add_broadcast_" + tag] = (
            "Add", [[1, 8, 5, 6], [1, 8, 1, 6]], [1, 8, 5, 6],
            ([(0.05, z(120)), (0.02, z(131))], (0.06, z(125))), {}, None, "QLinearAdd", dt)
        out["add_relu_" + tag] = (
            "Add", [[2, 3, 7], [2, 3, 7]], [2, 3, 7],
            ([(0.03, z(128)), (0.07, z(100))], (0.04, z(20))), {}, "Relu", "QLinearAdd", dt)
        out["mul_squeeze_excitation_" + tag] = (
            "Mul", [[1, 16, 7, 9], [1, 16, 1, 1]], [1, 16, 7, 9],
            ([(0.1, z(110)), (1 / 255, z(0))], (0.08, z(118))), {}, None, "QLinearMul", dt)
        out["concat3_differing_scales_" + tag] = (
            "Concat", [[1, 4, 5, 5], [1, 6, 5, 5], [1, 2, 5, 5]], [1, 12, 5, 5],
            ([(0.05, z(128)), (0.11, z(90)), (0.05, z(140))], (0.09, z(120))), {"axis": 1}, None,
            "QLinearConcat", dt)
        out["avgpool_pads_include_" + tag] = (
            "AveragePool", [[1, 5, 9, 11]], [1, 5, 5, 6],
            ([(0.04, z(100))], (0.03, z(110))),
            {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
             "count_include_pad": 1}, None, "QLinearAveragePool", dt)
        out["avgpool_pads_exclude_" + tag] = (
            "AveragePool", [[1, 5, 9, 11]], [1, 5, 8, 10],
            ([(0.04, z(100))], (0.05, z(128))),
            {"kernel_shape": [2, 3], "pads": [0, 1, 0, 0]}, None, "QLinearAveragePool", dt)
        out["avgpool_1d_ceil_" + tag] = (
            "AveragePool", [[2, 3, 10]], [2, 3, 5],
            ([(0.06, z(128))], (0.05, z(126))),
            {"kernel_shape": [3], "strides": [2], "ceil_mode": 1}, None, "QLinearAveragePool", dt)
        out["globalavgpool_" + tag] = (
            "GlobalAveragePool", [[2, 10, 13, 13]], [2, 10, 1, 1],
            ([(0.05, z(128))], (0.02, z(120))), {}, None, "QLinearGlobalAveragePool", dt)
    return out


def ort_run(path, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    m = onnx.load(path)
    m.ir_version = min(m.ir_version, 8)  # what this onnxruntime reads
    sess = ort_int8.session(ort, m, so)  # tests/testlib: exact on u8 x s8 on any CPU
    return sess.run(None, feeds)[0]


def max_lsb(a, b):
    return int(np.max(np.abs(a.astype(np.int32) - b.astype(np.int32)))) if a.size else 0


def small_case(tmp, name, case):
    op, shapes, out_shape, params, attrs, act, fused_type, dt = case
    model = qdq_model(op, shapes, out_shape, params, dt, attrs, act)
    src = os.path.join(tmp, name + ".onnx")
    fused = os.path.join(tmp, name + ".fused.onnx")
    onnx.save(model, src)
    subprocess.run([OCTET, "opt", "--passes=" + PIPELINE, src, "-o", fused], check=True)
    types = [n.op_type for n in onnx.load(fused).graph.node]
    check(fused_type in types and op not in types and "DequantizeLinear" not in types,
          "%s: qdq_fuse makes %s (nodes %s)" % (name, fused_type, types))
    xs = [rand8(dt, s) for s in shapes]
    # saturating values on purpose: the extremes of the 8-bit range
    xs[0].flat[0] = np.iinfo(dt).min
    xs[0].flat[-1] = np.iinfo(dt).max
    feeds = {"x%d" % i: x for i, x in enumerate(xs)}
    want = cgutil.run_ref(fused, list(feeds.items()))["y"]
    report = os.path.join(tmp, name + ".report.txt")
    so = cgutil.compile_so(src, tmp, name, ["--report", report])
    lines = [l.split("\t") for l in open(report).read().splitlines() if not l.startswith("#")]
    mine = [l for l in lines if l[1] == fused_type]
    check(len(mine) == 1 and mine[0][3].startswith("integer"),
          "%s: the compile report lowers %s as integer (%s)" % (name, fused_type, mine))
    _, outs = cgutil.run_so(so, name, xs)
    got = outs[0]
    check(got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want),
          "%s: compiled == interpreter bit for bit (%d of %d differ)"
          % (name, int(np.sum(got != want)) if got.shape == want.shape else -1, want.size))
    ref_ort = ort_run(fused, feeds)
    check(max_lsb(ref_ort, want) <= 1,
          "%s: ONNX Runtime's %s within 1 LSB (max %d)" % (name, fused_type, max_lsb(ref_ort, want)))
    if op == "AveragePool" and len(shapes[0]) != 4:
        return  # the numpy oracle does 2-D pools only; ONNX Runtime checked it
    oracle = float_oracle(op, xs, params, dt, attrs, act)
    check(max_lsb(oracle, want) <= 1,
          "%s: float QDQ oracle within 1 LSB (max %d)" % (name, max_lsb(oracle, want)))


def expose_int_outputs(src, dst, types):
    """Copies src to dst with the 8-bit output of every node of the given
    types also a graph output; returns their names."""
    m = onnx.load(src)
    have = {o.name for o in m.graph.output}
    names = [n.output[0] for n in m.graph.node if n.op_type in types and n.output[0] not in have]
    zero_type = {t.name: t.data_type for t in m.graph.initializer}
    for n in m.graph.node:
        if n.output[0] in names:
            zp = n.input[1] if n.op_type == "QLinearConcat" else n.input[-1]
            m.graph.output.append(helper.make_tensor_value_info(n.output[0], zero_type[zp], None))
    onnx.save(m, dst)
    return names


def squeezenet_case(tmp, shared, label, qdq, want_types):
    """squeezenet1.1 quantized as qdq: fused, compiled from the fused graph
    with the integer ops' outputs exposed; those bytes must equal the
    interpreter's and the report must say integer for each."""
    fused = os.path.join(tmp, label + ".fused.onnx")
    subprocess.run([OCTET, "opt", "--passes=" + PIPELINE, qdq, "-o", fused], check=True)
    types = [n.op_type for n in onnx.load(fused).graph.node]
    counts = {t: types.count(t) for t in want_types}
    check(all(counts.values()) and "GlobalAveragePool" not in types,
          "squeezenet1.1 (%s): fused %s" % (label, counts))
    probe = os.path.join(tmp, label + ".probe.onnx")
    names = expose_int_outputs(fused, probe, want_types)
    report = os.path.join(tmp, label + ".report.txt")
    so = cgutil.compile_so(probe, tmp, label, ["--report", report])
    lines = [l.split("\t") for l in open(report).read().splitlines() if not l.startswith("#")]
    elem = [l for l in lines if l[1] in want_types]
    check(len(elem) == sum(counts.values()) and all(l[3].startswith("integer") for l in elem),
          "squeezenet1.1 (%s): %d of %d integer element-wise ops in the report"
          % (label, len(elem), sum(counts.values())))
    photos = np.load(os.path.join(shared, "data", "imagenet-photos", "calib_f32.npy"))
    x = photos[30:31].reshape(1, 3, 224, 224).astype(np.float32)
    want = cgutil.run_ref(probe, [("data_0", x)])
    sig, outs = cgutil.run_so(so, label, [x])
    by_name = {o["name"]: a for o, a in zip(sig["outputs"], outs)}
    same = [np.array_equal(by_name[n], want[cgutil.safe_name(n)]) for n in names]
    check(len(names) and all(same), "squeezenet1.1 (%s): %d of %d integer op outputs bit for bit"
          % (label, sum(same), len(names)))


def squeezenet(tmp):
    """Octet's own quantizer unites a Concat's input scales (8-bit pass
    through) and keeps GlobalAveragePool's output float (it feeds Softmax),
    so it is ONNX Runtime's quantize_static QDQ model that has Concat with
    differing scales and a quantized GlobalAveragePool."""
    shared = need("models", "data/imagenet-photos")  # exits with the skip code without
    model = os.path.join(shared, "models", "squeezenet1.1", "model.onnx")
    photos = np.load(os.path.join(shared, "data", "imagenet-photos", "calib_f32.npy"))
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"data_0": p.reshape(1, 3, 224, 224).astype(np.float32)}
                            for p in photos[:4]])

        def get_next(self):
            return next(self.it, None)

    q = os.path.join(tmp, "sq_ort.qdq.onnx")
    quantize_static(model, q, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True)
    squeezenet_case(tmp, shared, "sq_ort", q, ("QLinearConcat", "QLinearGlobalAveragePool"))

    # ONNX Runtime's QOperator form: the contrib ops are in the model itself
    # (Softmax left float: QLinearSoftmax is not an op Octet knows)
    qop = os.path.join(tmp, "sq_qop.onnx")
    quantize_static(model, qop, Reader(), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True, op_types_to_quantize=["Conv", "Concat", "MaxPool",
                                                            "GlobalAveragePool", "Relu"])
    types = [n.op_type for n in onnx.load(qop).graph.node]
    check(types.count("QLinearConcat") == 8 and "QLinearGlobalAveragePool" in types,
          "squeezenet1.1 (QOperator): ONNX Runtime wrote QLinearConcat and "
          "QLinearGlobalAveragePool")
    x = photos[33:34].reshape(1, 3, 224, 224).astype(np.float32)
    mine = cgutil.run_ref(qop, [("data_0", x)])
    theirs = ort_run(qop, {"data_0": x})
    got = mine[cgutil.safe_name(onnx.load(qop).graph.output[0].name)].reshape(theirs.shape)
    err = float(np.max(np.abs(got - theirs)))
    check(np.argmax(got) == np.argmax(theirs) and err < 0.02,
          "squeezenet1.1 (QOperator): interpreter vs ONNX Runtime on its own model: same "
          "top-1, max prob diff %.4f" % err)
    squeezenet_case(tmp, shared, "sq_qop", qop, ("QLinearConcat", "QLinearGlobalAveragePool"))


def bad_model(op, inputs, consts, attrs=None):
    """A one-node contrib model: inputs (name, dtype, shape) fed at run time,
    consts (name, array) initializers, node inputs in the given order."""
    names = [n for n, _, _ in inputs] + [n for n, _ in consts]
    order = attrs.pop("_order") if attrs and "_order" in attrs else names
    node = helper.make_node(op, order, ["y"], domain="com.microsoft", name="bad", **(attrs or {}))
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
                          [numpy_helper.from_array(a, n) for n, a in consts])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    return m


def bad_inputs(tmp):
    """Malformed contrib nodes: a diagnostic naming the node and a non-zero
    exit from both the interpreter and the compiler, never a crash."""
    u8 = lambda v: np.array(v, np.uint8)  # noqa: E731
    f32 = lambda v: np.array(v, np.float32)  # noqa: E731
    a = [("a", TensorProto.UINT8, [1, 2, 2])]
    cases = {
        "concat_arity": ("QLinearConcat", a, [("ys", f32(0.1)), ("yz", u8(0)), ("s", f32(0.1))],
                         {"axis": 1, "_order": ["ys", "yz", "a", "s"]}),
        "add_mixed_types": ("QLinearAdd", a + [("b", TensorProto.INT8, [1, 2, 2])],
                            [("s", f32(0.1)), ("z", u8(0))],
                            {"_order": ["a", "s", "z", "b", "s", "", "s", "z"]}),
        "add_empty_scale": ("QLinearAdd", a, [("s", f32(0.1)), ("e", np.zeros([0], np.float32)),
                                              ("z", u8(0))],
                            {"_order": ["a", "e", "z", "a", "s", "z", "s", "z"]}),
        "mul_negative_scale": ("QLinearMul", a, [("s", f32(0.1)), ("n", f32(-0.1)), ("z", u8(0))],
                               {"_order": ["a", "s", "z", "a", "n", "z", "s", "z"]}),
        "pool_channels_last": ("QLinearGlobalAveragePool", [("a", TensorProto.UINT8, [1, 2, 2, 2])],
                               [("s", f32(0.1)), ("z", u8(0))],
                               {"channels_last": 1, "_order": ["a", "s", "z", "s", "z"]}),
        "add_too_few_inputs": ("QLinearAdd", a, [("s", f32(0.1))], {"_order": ["a", "s"]}),
        "pool_no_y_scale": ("QLinearAveragePool", [("a", TensorProto.UINT8, [1, 2, 2, 2])],
                            [("s", f32(0.1))], {"kernel_shape": [2, 2], "_order": ["a", "s"]}),
        "concat_bad_axis": ("QLinearConcat", a, [("ys", f32(0.1)), ("yz", u8(0)), ("s", f32(0.1))],
                            {"axis": 5, "_order": ["ys", "yz", "a", "s", "yz"]}),
    }
    for name, (op, inputs, consts, attrs) in cases.items():
        path = os.path.join(tmp, "bad_" + name + ".onnx")
        onnx.save(bad_model(op, inputs, consts, dict(attrs)), path)
        feeds = []
        for n, t, shape in inputs:
            p = os.path.join(tmp, "bad_%s_%s.npy" % (name, n))
            np.save(p, np.ones(shape, np.uint8 if t == TensorProto.UINT8 else np.int8))
            feeds += ["--input", "%s=%s" % (n, p)]
        for cmd in ([OCTET, "run", path, "--output-dir", os.path.join(tmp, "bad_out"), *feeds],
                    [OCTET, "compile", path, "-o", os.path.join(tmp, "bad_" + name)]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            check(r.returncode > 0 and "error" in r.stderr and "bad" in r.stderr,
                  "bad input %s: octet %s exits %d with a diagnostic (%s)"
                  % (name, cmd[1], r.returncode, r.stderr.strip().splitlines()[-1:]))


def ties_round_half_to_even(tmp):
    """Requantization ties by hand (power-of-two scales, so every float32
    step is exact): C_scale 2 halves the sum / product, and v = k + 0.5
    must round to the even neighbour in the interpreter and in the compiled
    code alike.  uint8, zero points 0 (A, B) and 10 (C)."""
    a = np.array([[1, 2, 3, 5, 7, 9, 0, 255]], np.uint8)
    want = {
        # Add: (a + b) / 2 = 1.5, 2.5, 1.5, 2.5, 3.5, 4.5, 0.5, 255 -> 2, 2, 2, 2, 4, 4, 0, sat
        "QLinearAdd": (np.array([[2, 3, 0, 0, 0, 0, 1, 255]], np.uint8),
                       np.array([[12, 12, 12, 12, 14, 14, 10, 255]], np.uint8)),
        # Mul: a * b / 2 = 1.5, 1, 1.5, 2.5, 3.5, 4.5, 0, 32512.5 -> 2, 1, 2, 2, 4, 4, 0, sat
        "QLinearMul": (np.array([[3, 1, 1, 1, 1, 1, 1, 255]], np.uint8),
                       np.array([[12, 11, 12, 12, 14, 14, 10, 255]], np.uint8)),
    }
    for op, (b, expect) in want.items():
        consts = [("one", np.array(1.0, np.float32)), ("two", np.array(2.0, np.float32)),
                  ("z0", np.array(0, np.uint8)), ("z10", np.array(10, np.uint8))]
        m = bad_model(op, [("a", TensorProto.UINT8, [1, 8]), ("b", TensorProto.UINT8, [1, 8])],
                      consts, {"_order": ["a", "one", "z0", "b", "one", "z0", "two", "z10"]})
        path = os.path.join(tmp, "ties_%s.onnx" % op)
        onnx.save(m, path)
        got_ref = cgutil.run_ref(path, [("a", a), ("b", b)])["y"]
        so = cgutil.compile_so(path, tmp, "ties_" + op)
        _, outs = cgutil.run_so(so, "ties_" + op, [a, b])
        check(np.array_equal(got_ref, expect) and np.array_equal(outs[0], expect),
              "%s rounds ties half to even: interpreter %s, compiled %s, want %s"
              % (op, got_ref.tolist(), outs[0].tolist(), expect.tolist()))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in cases().items():
            small_case(tmp, name, case)
        bad_inputs(tmp)
        ties_round_half_to_even(tmp)
        if not failures:  # the small models need nothing from ../shared
            squeezenet(tmp)
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
