"""The element-wise family compiled (`octet run --jit`) against the
reference interpreter (`octet run`) and ONNX Runtime.

Every unary and binary row of ops.def, the variadic Max/Min/Sum/Mean (1, 3
and 10 inputs: the interpreter combines them in passes of 8), Where, Cast
and CastLike between every pair of supported types (saturate=0 too for the
float8 targets), Range, ConstantOfShape, Shape and Size, on broadcast
shapes of awkward sizes, and fused runs through the new element
functions.  Inputs include NaN, infinities, signed zeros, ties,
subnormals and out-of-range values, and every code of the 8-bit float
formats.  Conversions and copies (Cast, CastLike, Where, ConstantOfShape)
and every integer or bool output must equal the interpreter's bit for bit;
computed float outputs must have NaN where it has NaN (any payload) and
agree within 1e-5 * max(1, max|want|) (the interpreter is built with
-march=native, so the C compiler may fuse its a*b+c into an FMA).  ONNX
Runtime, the independent oracle, runs the cases it supports on tame
inputs (no NaN, no out-of-range conversions): floats within
1e-5 * max(1, max|want|) (1e-3 for float16 outputs, which it may compute in
float16), integers exactly."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP, helper, numpy_helper

OCTET = os.environ["OCTET"]
rng = np.random.default_rng(13)
FAILS = []
COUNT = {"cases": 0, "ort": 0}

NP = {TP.FLOAT: np.float32, TP.DOUBLE: np.float64, TP.FLOAT16: np.float16,
      TP.INT8: np.int8, TP.INT16: np.int16, TP.INT32: np.int32, TP.INT64: np.int64,
      TP.UINT8: np.uint8, TP.UINT16: np.uint16, TP.UINT32: np.uint32, TP.UINT64: np.uint64,
      TP.BOOL: np.bool_}
BF16, E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, UINT4, INT4 = 16, 17, 18, 19, 20, 21, 22
FP8 = [E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ]
ALL = [TP.FLOAT, TP.DOUBLE, TP.FLOAT16, BF16, *FP8, UINT4, INT4, TP.INT8, TP.INT16, TP.INT32,
       TP.INT64, TP.UINT8, TP.UINT16, TP.UINT32, TP.UINT64, TP.BOOL]
FLOATS = {TP.FLOAT, TP.DOUBLE, TP.FLOAT16, BF16}
INTS = [TP.INT8, TP.INT16, TP.INT32, TP.INT64, TP.UINT8, TP.UINT16, TP.UINT32, TP.UINT64]
# float32 ops lowered before this change, partly on the kernel library's
# vectorized functions: compared within 1e-5, and on inputs without NaN
OLD_F32 = {"Relu", "LeakyRelu", "Neg", "Abs", "Sqrt", "Floor", "Ceil", "Reciprocal", "Exp",
           "Log", "Tanh", "Sigmoid", "HardSigmoid", "HardSwish"}

SPECIAL = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 0.5, 1.5, 2.5, -2.5, -3.5, 1e-40, 6e-8,
           2.0 ** -10, 448.0, 464.0, 500.0, 57344.0, 61440.0, 65504.0, 65520.0, 7e4, 1e10,
           -1e10, 3e38, 127.5, 255.5, -128.5, 2.0 ** 31, 2.0 ** 63, -2.0 ** 63, 2.0 ** 64,
           1.0000001, 0.1, -7.0, 240.0, 1.75]


def name(dt):
    return helper.tensor_dtype_to_string(dt).replace("TensorProto.", "")


def raw_of(dt, arr_or_codes, n):
    """Bytes of n elements: numpy dtypes from values; the others from codes."""
    if dt in NP:
        return np.ascontiguousarray(arr_or_codes, dtype=NP[dt]).tobytes()
    codes = np.asarray(arr_or_codes).astype(np.uint64)
    if dt in (UINT4, INT4):
        c = (codes & 0xF).astype(np.uint8)
        if n % 2:
            c = np.append(c, 0)
        return (c[0::2] | (c[1::2] << 4)).astype(np.uint8).tobytes()
    if dt == BF16:
        return codes.astype(np.uint16).tobytes()
    return codes.astype(np.uint8).tobytes()


def values(dt, n, tame=False):
    """Input data of dtype dt: (values or codes) for raw_of."""
    if dt in (TP.FLOAT, TP.DOUBLE, TP.FLOAT16):
        if tame:
            return (rng.integers(0, 400, n) / 4.0).astype(NP[dt])
        v = rng.standard_normal(n) * 50
        k = min(n, len(SPECIAL))
        v[:k] = SPECIAL[:k]
        with np.errstate(over="ignore"):
            return v.astype(NP[dt])
    if dt == TP.BOOL:
        return rng.integers(0, 2, n).astype(np.bool_)
    if dt in NP:
        info = np.iinfo(NP[dt])
        if tame:
            return rng.integers(0, 100, n).astype(NP[dt])
        return rng.integers(info.min, info.max, n, dtype=NP[dt], endpoint=True)
    if dt == BF16:
        f = np.asarray(values(TP.FLOAT, n), dtype=np.float32)
        return (f.view(np.uint32) >> 16).astype(np.uint16)
    if dt in (UINT4, INT4):
        return rng.integers(0, 16, n)
    return np.arange(n) % 256  # every float8 code


def tensor(nm, dt, shape, data):
    n = int(np.prod(shape)) if shape else 1
    return helper.make_tensor(nm, dt, list(shape), raw_of(dt, data, n), raw=True)


def model(nodes, inputs, outputs, opset=19, inits=()):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, dt, s)
                                       for n, dt, s in inputs],
                          [helper.make_tensor_value_info(n, dt, s) for n, dt, s in outputs],
                          list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9 if opset >= 19 else 8
    return m


def run_octet(d, tag, path, feeds, jit):
    """feeds: {name: TensorProto}; returns {output name: file bytes}."""
    out = os.path.join(d, tag + ("_jit" if jit else "_ref"))
    args = [OCTET, "run", path, "--output-dir", out, "--format=pb"] + (["--jit"] if jit else [])
    for k, (nm, t) in enumerate(feeds.items()):
        p = os.path.join(d, "%s_in%d.pb" % (tag, k))
        with open(p, "wb") as fh:
            fh.write(t.SerializeToString())
        args += ["--input", "%s=%s" % (nm, p)]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        return "exit %d: %s" % (r.returncode, r.stderr.strip()[-400:])
    res = {}
    for fn in os.listdir(out):
        t = TP()
        with open(os.path.join(out, fn), "rb") as fh:
            t.ParseFromString(fh.read())
        res[fn[:-3]] = t
    return res


def close(got, want, rtol=1e-5):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return False
    nan = np.isnan(want)
    if not np.array_equal(nan, np.isnan(got)):
        return False
    fin = ~nan
    scale = max(1.0, float(np.max(np.abs(want[fin & np.isfinite(want)]), initial=0)))
    with np.errstate(invalid="ignore"):
        return bool(np.all((got[fin] == want[fin]) |
                           (np.abs(got[fin] - want[fin]) <= rtol * scale)))


def check(tag, m, feeds, tolerant=(), tame_feeds=None, exact=False):
    """Runs m (inputs `feeds`: {name: TensorProto}) interpreted and compiled;
    integer and bool outputs bit for bit; float outputs (NaN where the
    interpreter has NaN, any payload) within 1e-5 * max(1, max|want|), or
    bit for bit with `exact` (conversions and copies, whose NaN bits the
    spec defines).  With tame_feeds, also compiled against ONNX Runtime
    when it runs m."""
    COUNT["cases"] += 1
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, tag + ".onnx")
        onnx.save(m, path)
        want = run_octet(d, "a", path, feeds, False)
        got = run_octet(d, "a", path, feeds, True)
        if isinstance(want, str) or isinstance(got, str):
            FAILS.append("%s: interp %s / jit %s" % (tag, want if isinstance(want, str) else "ok",
                                                    got if isinstance(got, str) else "ok"))
            return
        for k, w in want.items():
            g = got.get(k)
            if g is None:
                FAILS.append("%s: output %s missing" % (tag, k))
            elif k in tolerant or (not exact and g.data_type in FLOATS):
                if not close(numpy_helper.to_array(g), numpy_helper.to_array(w)):
                    FAILS.append("%s: output %s differs beyond 1e-5" % (tag, k))
            elif g.SerializeToString() != w.SerializeToString():
                FAILS.append("%s: output %s differs from the interpreter" % (tag, k))
        if tame_feeds is not None:
            check_ort(d, tag, path, m, tame_feeds)


def check_ort(d, tag, path, m, feeds):
    try:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        outs = sess.run(None, {k: numpy_helper.to_array(t) for k, t in feeds.items()})
    except Exception:  # an op or type ONNX Runtime does not implement
        return
    got = run_octet(d, "t", path, feeds, True)
    if isinstance(got, str):
        FAILS.append("%s (tame inputs): jit %s" % (tag, got))
        return
    COUNT["ort"] += 1
    for o, want in zip(m.graph.output, outs):
        g = numpy_helper.to_array(got[o.name])
        rtol = 1e-3 if want.dtype == np.float16 else 1e-5  # ORT may compute in float16
        ok = close(g, want, rtol) if want.dtype.kind == "f" else np.array_equal(g, want)
        if not ok:
            FAILS.append("%s: output %s differs from ONNX Runtime" % (tag, o.name))


# ---- cases ------------------------------------------------------------------

FLOAT_UNARY = [("Sqrt", {}), ("Exp", {}), ("Log", {}), ("Erf", {}), ("Neg", {}), ("Abs", {}),
               ("Relu", {}), ("LeakyRelu", {"alpha": 0.3}), ("Sigmoid", {}),
               ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {}), ("Tanh", {}),
               ("Gelu", {}), ("Gelu", {"approximate": "tanh"}), ("Floor", {}), ("Ceil", {}),
               ("Round", {}), ("Reciprocal", {}), ("Sign", {}), ("Softplus", {}),
               ("Softsign", {}), ("Elu", {"alpha": 0.7}), ("Selu", {}), ("Celu", {"alpha": 1.3}),
               ("ThresholdedRelu", {"alpha": 0.6}), ("Mish", {}), ("Sin", {}), ("Cos", {}),
               ("IsNaN", {}), ("IsInf", {}), ("IsInf", {"detect_negative": 0}),
               ("IsInf", {"detect_positive": 0})]


def unary_cases():
    shape = [3, 37]
    n = 3 * 37
    for dt in (TP.FLOAT, TP.DOUBLE, TP.FLOAT16, BF16):
        for clean in ((False, True) if dt == TP.FLOAT else (False,)):
            nodes, outs, tol = [], [], set()
            for k, (op, at) in enumerate(FLOAT_UNARY):
                if dt == TP.FLOAT and (op in OLD_F32) != clean:
                    continue
                o = "%s_%d" % (op, k)
                nodes.append(helper.make_node(op, ["x"], [o], **at))
                bool_out = op in ("IsNaN", "IsInf")
                outs.append((o, TP.BOOL if bool_out else dt, shape))
                if clean:
                    tol.add(o)
            if dt == TP.FLOAT and clean:
                data = (rng.standard_normal(n) * 3).astype(np.float32)
                data[0] = 0.0
            else:
                data = values(dt, n)
            m = model(nodes, [("x", dt, shape)], outs, opset=20)
            tame = None
            if dt in NP:
                tame = {"x": tensor("x", dt, shape, (rng.random(n) * 4 + 0.1).astype(NP[dt]))}
            check("unary_%s%s" % (name(dt), "_old" if clean else ""), m,
                  {"x": tensor("x", dt, shape, data)}, tol, tame)
    for dt in INTS:
        ops = ["Abs", "Sign"] + (["Neg", "Relu"] if np.issubdtype(NP[dt], np.signedinteger)
                                 else [])
        nodes = [helper.make_node(op, ["x"], [op]) for op in ops]
        m = model(nodes, [("x", dt, shape)], [(op, dt, shape) for op in ops])
        tame = {"x": tensor("x", dt, shape, rng.integers(-50 if "Neg" in ops else 0, 50, n))}
        check("unary_%s" % name(dt), m, {"x": tensor("x", dt, shape, values(dt, n))}, (), tame)
    m = model([helper.make_node("Not", ["x"], ["y"])], [("x", TP.BOOL, shape)],
              [("y", TP.BOOL, shape)])
    feeds = {"x": tensor("x", TP.BOOL, shape, values(TP.BOOL, n))}
    check("not", m, feeds, (), feeds)


def binary(tag, op, dta, dtb, dty, sa, sb, sy, data_a=None, data_b=None, opset=19, ort=True,
           **at):
    na, nb = int(np.prod(sa)), int(np.prod(sb))
    m = model([helper.make_node(op, ["a", "b"], ["y"], **at)], [("a", dta, sa), ("b", dtb, sb)],
              [("y", dty, sy)], opset=opset)
    feeds = {"a": tensor("a", dta, sa, values(dta, na) if data_a is None else data_a),
             "b": tensor("b", dtb, sb, values(dtb, nb) if data_b is None else data_b)}
    tame = None
    if ort and dta in NP and dtb in NP:
        lo = 1 if op in ("Div", "Mod", "Pow") else 0
        ta = rng.integers(lo, 9, na) if dta != TP.BOOL else values(dta, na)
        tb = rng.integers(lo, 4, nb) if dtb != TP.BOOL else values(dtb, nb)
        if op == "BitShift":
            tb = rng.integers(0, 8, nb)
        tame = {"a": tensor("a", dta, sa, np.asarray(ta).astype(NP[dta])),
                "b": tensor("b", dtb, sb, np.asarray(tb).astype(NP[dtb]))}
    check(tag, m, feeds, (), tame)


def binary_cases():
    sa, sb, sy = [3, 1, 5], [4, 1], [3, 4, 5]
    for dt in (TP.DOUBLE, TP.FLOAT16, BF16, *INTS):
        for op in ("Add", "Sub", "Mul", "Div"):
            binary("%s_%s" % (op, name(dt)), op, dt, dt, dt, sa, sb, sy)
    for dt in (TP.FLOAT, TP.DOUBLE, TP.FLOAT16, TP.INT8, TP.INT32, TP.INT64, TP.UINT8,
               TP.UINT64):
        for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
            binary("%s_%s" % (op, name(dt)), op, dt, dt, TP.BOOL, sa, sb, sy)
    binary("Equal_BOOL", "Equal", TP.BOOL, TP.BOOL, TP.BOOL, sa, sb, sy)
    for op in ("And", "Or", "Xor"):
        binary(op, op, TP.BOOL, TP.BOOL, TP.BOOL, sa, sb, sy)
    small = lambda dt, n: rng.integers(-6, 7, n).astype(NP[dt])  # noqa: E731
    for dta, dtb in ((TP.FLOAT, TP.FLOAT), (TP.FLOAT, TP.INT64), (TP.FLOAT, TP.INT32),
                     (TP.DOUBLE, TP.DOUBLE), (TP.FLOAT16, TP.FLOAT16), (TP.FLOAT, TP.DOUBLE),
                     (TP.INT32, TP.INT32), (TP.INT64, TP.INT64), (TP.INT64, TP.FLOAT),
                     (TP.INT32, TP.FLOAT), (TP.UINT8, TP.UINT8), (TP.INT8, TP.INT8)):
        a = small(dta, 15) if dta in INTS else None
        b = small(dtb, 4) if dtb in INTS else None
        if dtb in (TP.FLOAT, TP.DOUBLE) and dta in INTS:
            b = (rng.standard_normal(4) * 3).astype(NP[dtb])
        binary("Pow_%s_%s" % (name(dta), name(dtb)), "Pow", dta, dtb, dta, sa, sb, sy, a, b)
    binary("Pow_INT64_big", "Pow", TP.INT64, TP.INT64, TP.INT64, sa, sb, sy,
           None, rng.integers(-3, 70, 4), ort=False)
    for dt in INTS:
        binary("Mod_%s" % name(dt), "Mod", dt, dt, dt, sa, sb, sy)
        binary("Mod_small_%s" % name(dt), "Mod", dt, dt, dt, sa, sb, sy,
               rng.integers(-9 if dt in (TP.INT8, TP.INT32) else 0, 9, 15).astype(NP[dt]),
               np.array([-3, 0, 4, -1] if dt in (TP.INT8, TP.INT32) else [3, 0, 4, 1],
                        dtype=NP[dt]), ort=False)
        binary("Mod_fmod_%s" % name(dt), "Mod", dt, dt, dt, sa, sb, sy, fmod=1)
        binary("PRelu_%s" % name(dt), "PRelu", dt, dt, dt, [3, 4, 5], [4, 1], [3, 4, 5])
    for dt in (TP.FLOAT, TP.DOUBLE, TP.FLOAT16):
        binary("Mod_fmod_%s" % name(dt), "Mod", dt, dt, dt, sa, sb, sy, fmod=1)
        binary("PRelu_%s" % name(dt), "PRelu", dt, dt, dt, [3, 4, 5], [4, 1], [3, 4, 5])
    for dt in (TP.UINT8, TP.UINT16, TP.UINT32, TP.UINT64):
        bits = np.iinfo(NP[dt]).bits
        for d in ("LEFT", "RIGHT"):
            binary("BitShift_%s_%s" % (d, name(dt)), "BitShift", dt, dt, dt, sa, sb, sy, None,
                   np.array([0, 3, bits - 1, bits + 2], dtype=NP[dt]), direction=d)
    # the broadcast attribute of opset 6: B matches A's dims from `axis`
    for dt in (TP.FLOAT, TP.DOUBLE, TP.INT32):
        binary("Add_legacy_axis_%s" % name(dt), "Add", dt, dt, dt, [2, 3, 4, 5], [3, 4],
               [2, 3, 4, 5], opset=6, ort=False, broadcast=1, axis=1)


def variadic_cases():
    shapes = [[2, 3, 7], [3, 1], [7], [1, 3, 7], [2, 1, 1], [3, 7], [1], [2, 3, 1], [7], [3, 7]]
    for op in ("Max", "Min", "Sum", "Mean"):
        types = [TP.FLOAT, TP.DOUBLE, TP.FLOAT16, BF16]
        if op != "Mean":
            types += [TP.INT8, TP.INT32, TP.INT64, TP.UINT8, TP.UINT32, TP.UINT64]
        for dt in types:
            for k in (1, 3, 10):
                ins = ["x%d" % i for i in range(k)]
                m = model([helper.make_node(op, ins, ["y"])],
                          [(x, dt, shapes[i]) for i, x in enumerate(ins)],
                          [("y", dt, [2, 3, 7] if k > 1 else shapes[0])])
                feeds = {x: tensor(x, dt, shapes[i], values(dt, int(np.prod(shapes[i]))))
                         for i, x in enumerate(ins)}
                tame = None
                if dt in NP:
                    tame = {x: tensor(x, dt, shapes[i],
                                      values(dt, int(np.prod(shapes[i])), tame=True))
                            for i, x in enumerate(ins)}
                check("%s_%d_%s" % (op, k, name(dt)), m, feeds, (), tame)


def where_cases():
    sc, sx, sy, so = [4, 1, 6], [3, 1], [1, 6], [4, 3, 6]
    for dt in (TP.FLOAT, TP.DOUBLE, TP.FLOAT16, BF16, E4M3FN, INT4, UINT4, TP.INT8, TP.INT64,
               TP.UINT16, TP.BOOL):
        m = model([helper.make_node("Where", ["c", "x", "y"], ["o"])],
                  [("c", TP.BOOL, sc), ("x", dt, sx), ("y", dt, sy)], [("o", dt, so)])
        feeds = {"c": tensor("c", TP.BOOL, sc, values(TP.BOOL, 24)),
                 "x": tensor("x", dt, sx, values(dt, 3)),
                 "y": tensor("y", dt, sy, values(dt, 6))}
        check("Where_%s" % name(dt), m, feeds, (), feeds if dt in NP else None, exact=True)


def cast_cases():
    shape = [5, 11]
    n = 55
    for src in ALL:
        nodes, outs = [], []
        for dst in ALL:
            if dst == src:
                continue
            nodes.append(helper.make_node("Cast", ["x"], ["to_" + name(dst)], to=dst))
            outs.append(("to_" + name(dst), dst, shape))
            if dst in FP8:
                o = "to_%s_nosat" % name(dst)
                nodes.append(helper.make_node("Cast", ["x"], [o], to=dst, saturate=0))
                outs.append((o, dst, shape))
        m = model(nodes, [("x", src, shape)], outs, opset=21)
        m.ir_version = 10
        tame = None
        if src in NP:
            # every target of a numpy type, on values all types hold
            keep = [i for i, o in enumerate(outs) if o[1] in NP]
            tm = model([nodes[i] for i in keep], [("x", src, shape)], [outs[i] for i in keep],
                       opset=21)
            tm.ir_version = 10
            tv = values(src, n, tame=True)
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "t.onnx")
                onnx.save(tm, p)
                check_ort(d, "cast_from_%s" % name(src), p, tm,
                          {"x": tensor("x", src, shape, tv)})
        check("cast_from_%s" % name(src), m, {"x": tensor("x", src, shape, values(src, n))},
              exact=True)
    # CastLike takes the second input's type
    for src, dst in ((TP.FLOAT, TP.FLOAT16), (TP.DOUBLE, E5M2), (TP.INT64, BF16),
                     (E4M3FN, TP.INT8)):
        m = model([helper.make_node("CastLike", ["x", "like"], ["y"], saturate=0)],
                  [("x", src, shape), ("like", dst, [1])], [("y", dst, shape)])
        check("castlike_%s_%s" % (name(src), name(dst)), m,
              {"x": tensor("x", src, shape, values(src, n)),
               "like": tensor("like", dst, [1], values(dst, 1))}, exact=True)


def shape_cases():
    # Range and ConstantOfShape whose inputs are graph inputs: not folded
    for dt, st, de, cnt in ((TP.FLOAT, 0.5, 0.3, 17), (TP.DOUBLE, -2.0, 0.1, 23),
                            (TP.INT64, -5, 3, 9), (TP.INT32, 100, -7, 13),
                            (TP.INT16, 3, 2, 5)):
        lim = st + de * cnt - de / 2 if dt in (TP.FLOAT, TP.DOUBLE) else st + de * cnt
        m = model([helper.make_node("Range", ["s", "l", "d"], ["y"])],
                  [("s", dt, []), ("l", dt, []), ("d", dt, [])], [("y", dt, [cnt])])
        feeds = {k: tensor(k, dt, [], np.array([v], dtype=NP[dt]))
                 for k, v in (("s", st), ("l", lim), ("d", de))}
        check("Range_%s" % name(dt), m, feeds, (), feeds)
    for tag, val in (("default", None),
                     ("f16", helper.make_tensor("v", TP.FLOAT16, [1], [1.5])),
                     ("i32", helper.make_tensor("v", TP.INT32, [1], [-7])),
                     ("bool", helper.make_tensor("v", TP.BOOL, [1], [True])),
                     ("i4", helper.make_tensor("v", INT4, [1], [-3]))):
        at = {"value": val} if val is not None else {}
        dt = val.data_type if val is not None else TP.FLOAT
        m = model([helper.make_node("ConstantOfShape", ["s"], ["y"], **at)],
                  [("s", TP.INT64, [3])], [("y", dt, [2, 5, 3])], opset=21)
        m.ir_version = 10
        feeds = {"s": tensor("s", TP.INT64, [3], np.array([2, 5, 3], dtype=np.int64))}
        check("ConstantOfShape_%s" % tag, m, feeds, (), feeds if dt in NP else None,
              exact=True)
    m = model([helper.make_node("Shape", ["x"], ["s"]),
               helper.make_node("Shape", ["x"], ["s2"], start=1, end=-1),
               helper.make_node("Size", ["x"], ["n"])],
              [("x", TP.FLOAT, [2, 3, 4, 5])],
              [("s", TP.INT64, [4]), ("s2", TP.INT64, [2]), ("n", TP.INT64, [])])
    feeds = {"x": tensor("x", TP.FLOAT, [2, 3, 4, 5], values(TP.FLOAT, 120, tame=True))}
    check("Shape_Size", m, feeds, (), feeds)


def fused_cases():
    """Runs of element-wise nodes the backend lowers as one loop
    (fuse_eltwise.c) through the new float32 element functions: the exact
    Gelu written out (Div, Erf, Add, Mul, Mul), a chain of the others, and
    a DequantizeLinear, Erf, QuantizeLinear run of 8-bit values (a table
    run when the target has the kernel library)."""
    c = lambda nm, v, dt=TP.FLOAT: helper.make_tensor(nm, dt, [], [v])  # noqa: E731
    shape = [4, 1031]
    nodes = [helper.make_node("Div", ["x", "sqrt2"], ["t0"]),
             helper.make_node("Erf", ["t0"], ["t1"]),
             helper.make_node("Add", ["t1", "one"], ["t2"]),
             helper.make_node("Mul", ["t2", "x"], ["t3"]),
             helper.make_node("Mul", ["t3", "half"], ["gelu"]),
             helper.make_node("Sin", ["x"], ["u0"]), helper.make_node("Cos", ["u0"], ["u1"]),
             helper.make_node("Mish", ["u1"], ["u2"]),
             helper.make_node("Softplus", ["u2"], ["u3"]),
             helper.make_node("Elu", ["u3"], ["u4"], alpha=0.5),
             helper.make_node("Round", ["u4"], ["chain"])]
    m = model(nodes, [("x", TP.FLOAT, shape)],
              [("gelu", TP.FLOAT, shape), ("chain", TP.FLOAT, shape)],
              inits=[c("sqrt2", 1.4142135), c("one", 1.0), c("half", 0.5)])
    x = tensor("x", TP.FLOAT, shape, rng.standard_normal(4 * 1031).astype(np.float32) * 3)
    check("fused_gelu_and_chain", m, {"x": x}, (), {"x": x})
    nodes = [helper.make_node("DequantizeLinear", ["q", "s", "z"], ["f"]),
             helper.make_node("Erf", ["f"], ["e"]),
             helper.make_node("QuantizeLinear", ["e", "s2", "z2"], ["y"])]
    m = model(nodes, [("q", TP.UINT8, shape)], [("y", TP.INT8, shape)],
              inits=[c("s", 0.02), c("z", 128, TP.UINT8), c("s2", 1 / 127.0),
                     c("z2", 0, TP.INT8)])
    q = tensor("q", TP.UINT8, shape, rng.integers(0, 256, 4 * 1031))
    check("fused_dq_erf_q_u8", m, {"q": q}, (), {"q": q})


def main():
    only = os.environ.get("ELTWISE_ONLY")  # e.g. "cast" while debugging
    for fn in (unary_cases, binary_cases, variadic_cases, where_cases, cast_cases, shape_cases,
               fused_cases):
        if not only or only in fn.__name__:
            fn()
    for f in FAILS:
        print("FAIL", f)
    print("%d cases, %d against ONNX Runtime, %d failures" % (COUNT["cases"], COUNT["ort"],
                                                               len(FAILS)))
    if COUNT["ort"] < 50 and not only:
        print("FAIL: too few cases ran on ONNX Runtime")
        return 1
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
