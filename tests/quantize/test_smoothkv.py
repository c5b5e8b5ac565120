"""octet quantize --smooth (src/passes/quant_smooth.c) and --kv-cache-quant
(src/passes/quant_kv.c).

synthetic (no shared data):
 - a transformer layer's front: RMSNorm written out (Pow, ReduceMean, Add,
   Sqrt, Div, Mul by its gain) -> two MatMuls (q and k projections), the
   gain 50-100x on 4 of 64 channels, so the normalized activations have
   outlier channels.  Static W8A8 (one activation scale per tensor) gives
   those channels nearly all the levels; --smooth must raise the output
   SQNR, measured against a float numpy reference on held-out inputs, by
   at least SMOOTH_MARGIN_DB (static), and also raise dynamic per-tensor's.
   --smooth=auto (alpha searched per layer) must do at least as well as
   0.5 less AUTO_SLACK_DB, static and dynamic.
   The gain the smoothed dynamic model holds equals gain / s with numpy's
   s_k = max|x_k|^0.5 / max|w_k|^0.5 (x: the normalized input, on the
   calibration data; w: both weights' row k), and smoothing adds no node.
 - a KV-shaped graph (x [1,4,S,8] -> Mul -> output present.0.key, also
   read by a MatMul): --precision=fp32 --kv-cache-quant=int8 and =fp8 put
   QuantizeLinear/DequantizeLinear with one scale per head (axis 1) on it,
   scale = the head's largest |value| on the calibration data / 127 (int8)
   or / 448 (E4M3), computed by numpy; the present output equals numpy's
   quantize-dequantize; `octet run --jit` equals the interpreter (int8:
   exactly on present, fp8 within float rounding).
stories (skips without ../shared): stories260k prefill_s128 with an INT8 KV
 cache (calibrated on 4 windows of calib_tokens.npy): its per-head scales
 are ONNX Runtime's FP32 present.* maxima / 127; perplexity on 8 windows of
 eval_tokens.npy (interpreter) within 1% of FP32's; `octet run --jit`
 equals the interpreter on one window (present.* exactly, logits within
 1e-3).  decode_p128 (calibrated on ONNX Runtime prefill caches): Q/DQ on
 the new token's keys and values only, and it generates.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper, numpy_helper

OCTET = os.environ["OCTET"]
SMOOTH_MARGIN_DB = 6.0
AUTO_SLACK_DB = 0.5
failures = []


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def octet(*args):
    return subprocess.run([OCTET, *map(str, args)], capture_output=True, text=True)


def pb_bytes(path):
    """A TensorProto file's elements as their raw bytes (FP8 has no numpy
    dtype: compared bit for bit as uint8)."""
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    if t.data_type == T.FLOAT:
        return numpy_helper.to_array(t)
    raw = t.raw_data if t.raw_data else np.array(t.int32_data, np.uint8).tobytes()
    return np.frombuffer(raw, np.uint8).reshape(tuple(t.dims))


def e4m3_value(b):
    """E4M3FN bytes (uint8) to their values, from the format's definition:
    sign, 4 exponent bits (bias 7), 3 mantissa bits, subnormal at exponent 0."""
    b = b.astype(np.int64)
    sign = np.where(b & 0x80, -1.0, 1.0)
    e, m = (b >> 3) & 15, b & 7
    mag = np.where(e == 0, m / 8 * 2.0 ** -6, (1 + m / 8) * 2.0 ** (e - 7))
    return sign * mag


def octet_run(path, feeds, tmp, jit=False, pb=False):
    out = tempfile.mkdtemp(dir=tmp)
    args = ["run", path, "--output-dir", out, "--format=" + ("pb" if pb else "npy")]
    for k, v in feeds.items():
        np.save(os.path.join(out, k + ".in.npy"), v)
        args += ["--input", f"{k}={os.path.join(out, k + '.in.npy')}"]
    r = octet(*args, *(["--jit"] if jit else []))
    if r.returncode:
        print(r.stderr[-3000:])
        return None
    if pb:
        return {f[:-3]: pb_bytes(os.path.join(out, f)) for f in os.listdir(out)
                if f.endswith(".pb")}
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out)
            if f.endswith(".npy") and not f.endswith(".in.npy")}


def sqnr_db(ref, got):
    ref = ref.astype(np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2))


def quantize(tmp, model, name, *flags, calib=None):
    out = os.path.join(tmp, name + ".onnx")
    r = octet("quantize", model, *flags, *(["--calib", calib] if calib else []), "-o", out,
              "--progress", "none")
    check(r.returncode == 0, f"octet quantize {' '.join(flags)} exits 0")
    if r.returncode:
        print(r.stderr[-3000:])
        return None
    return out


# ---- SmoothQuant on a constructed layer -------------------------------------------

D, S, EPS = 64, 32, 1e-5


def norm_layer(rng):
    gain = rng.uniform(0.5, 1.5, D).astype(np.float32)
    outliers = [3, 17, 40, 58]
    gain[outliers] = rng.uniform(50, 100, len(outliers)).astype(np.float32)
    wq = (rng.standard_normal((D, D)) * 0.1).astype(np.float32)
    wk = (rng.standard_normal((D, D)) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Pow", ["x", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq", "axes"], ["ms"], keepdims=1),
        helper.make_node("Add", ["ms", "eps"], ["mse"]),
        helper.make_node("Sqrt", ["mse"], ["rms"]),
        helper.make_node("Div", ["x", "rms"], ["xn"]),
        helper.make_node("Mul", ["xn", "gain"], ["h"]),
        helper.make_node("MatMul", ["h", "wq"], ["q"]),
        helper.make_node("MatMul", ["h", "wk"], ["k"]),
    ]
    inits = [numpy_helper.from_array(np.array(2, np.float32), "two"),
             numpy_helper.from_array(np.array([-1], np.int64), "axes"),
             numpy_helper.from_array(np.array(EPS, np.float32), "eps"),
             numpy_helper.from_array(gain, "gain"),
             numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(wk, "wk")]
    g = helper.make_graph(nodes, "norm_matmul",
                          [helper.make_tensor_value_info("x", T.FLOAT, [1, S, D])],
                          [helper.make_tensor_value_info("q", T.FLOAT, [1, S, D]),
                           helper.make_tensor_value_info("k", T.FLOAT, [1, S, D])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), \
        gain, wq, wk


def normalized(x, gain):
    x = x.astype(np.float64)
    return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + EPS) * gain


def synthetic_smooth(tmp):
    rng = np.random.default_rng(7)
    model, gain, wq, wk = norm_layer(rng)
    path = os.path.join(tmp, "norm.onnx")
    onnx.save(model, path)
    calib = rng.standard_normal((16, 1, S, D)).astype(np.float32)
    cpath = os.path.join(tmp, "calib.npy")
    np.save(cpath, calib)
    tests = rng.standard_normal((4, 1, S, D)).astype(np.float32)

    def sqnr_of(qpath):
        sig = noise = 0.0
        for x in tests:
            got = octet_run(qpath, {"x": x}, tmp)
            if got is None:
                return -np.inf
            h = normalized(x, gain)
            for name, w in (("q", wq), ("k", wk)):
                ref = h @ w.astype(np.float64)
                sig += np.sum(ref ** 2)
                noise += np.sum((ref - got[name]) ** 2)
        return 10 * np.log10(sig / noise)

    results = {}
    for label, flags, cal in (("static", [], cpath), ("static smooth", ["--smooth"], cpath),
                              ("dynamic", ["--activations=dynamic"], None),
                              ("dynamic smooth", ["--activations=dynamic", "--smooth"], cpath),
                              ("static auto", ["--smooth=auto"], cpath),
                              ("dynamic auto", ["--activations=dynamic", "--smoothquant=auto"],
                               cpath)):
        q = quantize(tmp, path, label.replace(" ", "_"), *flags, calib=cal)
        results[label] = (q, sqnr_of(q) if q else -np.inf)
        print(f"  {label}: output SQNR {results[label][1]:.2f} dB")
    st, sm = results["static"][1], results["static smooth"][1]
    check(sm >= st + SMOOTH_MARGIN_DB,
          f"static W8A8: --smooth raises output SQNR by >= {SMOOTH_MARGIN_DB} dB "
          f"({st:.2f} -> {sm:.2f} dB)")
    dy, dsm = results["dynamic"][1], results["dynamic smooth"][1]
    check(dsm >= dy + SMOOTH_MARGIN_DB, f"dynamic W8A8: --smooth raises output SQNR by >= "
          f"{SMOOTH_MARGIN_DB} dB ({dy:.2f} -> {dsm:.2f} dB)")

    # --smooth=auto: alpha searched per layer group on the calibration rows
    # scores at least as well as the default 0.5 (within AUTO_SLACK_DB: the
    # search simulates the quantizer, it does not run it)
    for mode in ("static", "dynamic"):
        au, fixed = results[mode + " auto"][1], results[mode + " smooth"][1]
        check(au >= fixed - AUTO_SLACK_DB and au >= results[mode][1] + SMOOTH_MARGIN_DB,
              f"{mode} W8A8: --smooth=auto {au:.2f} dB, within {AUTO_SLACK_DB} dB of alpha "
              f"0.5's {fixed:.2f} or better, and >= {SMOOTH_MARGIN_DB} dB over no smoothing")

    # the fold: gain / s, s from numpy on the calibration data
    xmax = np.max(np.abs(np.concatenate([normalized(x[0], gain) for x in calib])), axis=0)
    wmax = np.maximum(np.abs(wq).max(1), np.abs(wk).max(1))
    s = np.maximum(xmax, 1e-5) ** 0.5 / np.maximum(wmax, 1e-5) ** 0.5
    qd = results["dynamic smooth"][0]
    if qd:
        m = onnx.load(qd)
        inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        got = inits.get("gain")
        check(got is not None and np.allclose(got, gain / s, rtol=1e-5),
              "smoothed gain equals gain / s with numpy's s (alpha 0.5)")
        plain = onnx.load(results["dynamic"][0])
        check(len(m.graph.node) == len(plain.graph.node),
              f"smoothing adds no node ({len(m.graph.node)} vs {len(plain.graph.node)})")


# ---- KV cache: a constructed graph -------------------------------------------------

def kv_graph():
    c = np.linspace(0.5, 4.0, 8).astype(np.float32)      # per channel
    w = np.eye(8, dtype=np.float32)[::-1].copy()
    nodes = [helper.make_node("Mul", ["x", "c"], ["present.0.key"]),
             helper.make_node("MatMul", ["present.0.key", "w"], ["out"])]
    g = helper.make_graph(nodes, "kv",
                          [helper.make_tensor_value_info("x", T.FLOAT, [1, 4, S, 8])],
                          [helper.make_tensor_value_info("present.0.key", T.FLOAT, [1, 4, S, 8]),
                           helper.make_tensor_value_info("out", T.FLOAT, [1, 4, S, 8])],
                          [numpy_helper.from_array(c, "c"), numpy_helper.from_array(w, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10), c


def fp8_round(x):
    """Round to nearest even on E4M3FN (saturating at 448), in numpy."""
    x = np.clip(x.astype(np.float64), -448, 448)
    mag = np.abs(x)
    e = np.floor(np.log2(np.maximum(mag, 2.0 ** -9)))
    e = np.maximum(e, -6)                                  # subnormals below 2^-6
    step = 2.0 ** (e - 3)
    return np.sign(x) * np.round(mag / step) * step


def ort_run(path, feeds, outputs=None):
    """ONNX Runtime on one thread, every optimization off (its fusions must
    not stand in for the graph as written)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = outputs or [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def output_dtypes(model):
    return {o.name: o.type.tensor_type.elem_type for o in model.graph.output}


def synthetic_kv(tmp):
    rng = np.random.default_rng(3)
    model, c = kv_graph()
    path = os.path.join(tmp, "kv.onnx")
    onnx.save(model, path)
    head_gain = np.array([1, 3, 0.5, 8], np.float32)[None, :, None, None]
    calib = (rng.standard_normal((8, 1, 4, S, 8)) * head_gain).astype(np.float32)
    cpath = os.path.join(tmp, "kvcalib.npy")
    np.save(cpath, calib)
    x = (rng.standard_normal((1, 4, S, 8)) * head_gain).astype(np.float32)
    amax = np.abs(calib * c).max(axis=(0, 1, 3, 4))
    w = np.eye(8, dtype=np.float32)[::-1]
    for fmt, top, flag in (("int8", 127.0, "--kv-cache=int8"),
                           ("fp8", 448.0, "--kv-cache-quant=fp8")):
        q = quantize(tmp, path, "kv_" + fmt, "--precision=fp32", flag, calib=cpath)
        if not q:
            continue
        m = onnx.load(q)
        ql = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
        inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        ok = len(ql) == 1 and [a.i for a in ql[0].attribute if a.name == "axis"] == [1]
        scale = inits.get(ql[0].input[1]) if ok else None
        check(ok and scale is not None and scale.shape == (4,) and
              np.allclose(scale, (amax / top).astype(np.float32), rtol=1e-6),
              f"{fmt}: one QuantizeLinear on present.0.key, axis 1, scale = head max / {top:g}")
        want_dt = T.INT8 if fmt == "int8" else T.FLOAT8E4M3FN
        check(ok and ql[0].output[0] == "present.0.key" and
              output_dtypes(m)["present.0.key"] == want_dt,
              f"{fmt}: the graph output present.0.key is the QuantizeLinear's "
              f"{T.DataType.Name(want_dt)} codes (1 byte an element)")
        if scale is None:
            continue
        sc = scale[None, :, None, None]
        v = (x * c).astype(np.float32) / sc
        codes = np.clip(np.round(v), -127, 127) if fmt == "int8" else fp8_round(v)
        want_out = (codes * sc) @ w
        interp = octet_run(q, {"x": x}, tmp, pb=fmt == "fp8")
        jit = octet_run(q, {"x": x}, tmp, jit=True, pb=fmt == "fp8")
        if interp is None or jit is None:
            check(False, f"{fmt}: octet run and octet run --jit succeed")
            continue
        if fmt == "int8":
            check(interp["present.0.key"].dtype == np.int8 and
                  np.array_equal(interp["present.0.key"], codes.astype(np.int8)),
                  "int8: the stored keys are numpy's int8 codes")
            check(np.array_equal(jit["present.0.key"], interp["present.0.key"]),
                  "int8: compiled present.0.key equals the interpreter's exactly")
            ref = ort_run(q, {"x": x})
            check(ref["present.0.key"].dtype == np.int8 and
                  np.array_equal(ref["present.0.key"], interp["present.0.key"]),
                  "int8: ONNX Runtime's present.0.key equals Octet's codes")
        else:
            check(np.array_equal(e4m3_value(interp["present.0.key"]), codes),
                  "fp8: the stored keys are numpy's E4M3 codes")
            check(np.array_equal(jit["present.0.key"], interp["present.0.key"]),
                  "fp8: compiled present.0.key bytes equal the interpreter's")
        check(np.allclose(interp["out"], want_out, rtol=0, atol=1e-6 * np.abs(want_out).max()),
              f"{fmt}: the attention-side reader sees numpy's dequantized codes")
        check(np.allclose(jit["out"], interp["out"], rtol=1e-5, atol=1e-5),
              f"{fmt}: compiled downstream output equals the interpreter's")


# ---- KV cache on stories260k --------------------------------------------------------

def kv_bytes_line(stdout):
    line = [x for x in stdout.splitlines() if x.startswith("kv cache:")]
    return line[0] if line else ""


def stories(tmp):
    import shared_data
    sh = shared_data.need("models/stories260k/prefill_s128.onnx",
                          "models/stories260k/decode_p128.onnx",
                          "data/tinystories/calib_tokens.npy", "data/tinystories/eval_tokens.npy")
    model = os.path.join(sh, "models", "stories260k", "prefill_s128.onnx")
    calib = np.load(os.path.join(sh, "data", "tinystories", "calib_tokens.npy")).astype(np.int64)
    cwin = calib[:4 * 128].reshape(4, 1, 128)
    cpath = os.path.join(tmp, "calib.npy")
    np.save(cpath, cwin)
    evals = os.path.join(sh, "data", "tinystories", "eval_tokens.npy")
    q = quantize(tmp, model, "kv8", "--precision=fp32", "--kv-cache=int8", calib=cpath)
    if not q:
        return
    # scales against ONNX Runtime's FP32 cache
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs() if o.name.startswith("present")]
    amax = {n: 0 for n in names}
    for w in cwin:
        for n, v in zip(names, sess.run(names, {"input_ids": w})):
            amax[n] = np.maximum(amax[n], np.abs(v).max(axis=(0, 2, 3)))
    m = onnx.load(q)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    by_out = {n.output[0]: inits.get(n.input[1]) for n in m.graph.node
              if n.op_type == "QuantizeLinear"}
    good = len(by_out) == len(names) and all(
        by_out.get(n) is not None and np.allclose(by_out[n], amax[n] / 127, rtol=1e-5)
        for n in names)
    check(good, f"{len(names)} present.* outputs are QuantizeLinear outputs, per-head "
          f"scales = ORT's FP32 max / 127")
    dts = output_dtypes(m)
    check(all(dts[n] == T.INT8 for n in names) and dts["logits"] == T.FLOAT,
          "prefill: every present.* output is INT8 in the graph (logits float)")

    def ppl(path):
        r = octet("eval", path, "--perplexity", evals, "--window", 128, "--max-windows", 8,
                  "--progress", "none")
        line = [x for x in r.stdout.splitlines() if x.startswith("perplexity:")]
        if r.returncode or not line:
            print(r.stdout[-2000:], r.stderr[-2000:])
            return np.inf, ""
        return float(line[0].split()[1]), kv_bytes_line(r.stdout)

    (p32, kv32), (p8, kv8) = ppl(model), ppl(q)
    check(p8 <= p32 * 1.01, f"INT8 KV cache perplexity {p8:.4f} within 1% of FP32 {p32:.4f} "
          f"(+{100 * (p8 / p32 - 1):.2f}%)")
    # bytes per token from the model's shapes: layers x (K, V) x heads x head size
    per = sum(int(np.prod([d.dim_value for d in o.type.tensor_type.shape.dim][1:4:2]))
              for o in onnx.load(model).graph.output if o.name.startswith("present"))
    check(kv32 == f"kv cache: {4 * per} bytes per token (float32: {4 * per})" and
          kv8 == f"kv cache: {per} bytes per token (float32: {4 * per})",
          f"eval reports the cache per token: FP32 '{kv32}', INT8 '{kv8}'")
    ids = np.load(evals)[:128].astype(np.int64)[None]
    interp = octet_run(q, {"input_ids": ids}, tmp)
    jit = octet_run(q, {"input_ids": ids}, tmp, jit=True)
    ref = ort_run(q, {"input_ids": ids})
    if interp is None or jit is None:
        check(False, "octet run and octet run --jit succeed on the KV-quantized model")
        return
    compare_runs("prefill", names, interp, jit, ref)
    decode_graph(tmp, sh, sess, cwin, interp, q)


def compare_runs(what, names, interp, jit, ref):
    """Compiled against the interpreter: the int8 cache bit for bit, logits
    within 1e-5 relative; ONNX Runtime on the same quantized graph: logits
    within 1e-3 relative, codes at most one step apart (its float rounding
    differs at ties) on at most 1% of elements."""
    check(all(interp[n].dtype == np.int8 and jit[n].dtype == np.int8 and
              ref[n].dtype == np.int8 for n in names),
          f"{what}: interpreter, compiled and ONNX Runtime caches are int8 (1 byte)")
    same = all(np.array_equal(jit[n], interp[n]) for n in names)
    check(same, f"{what}: compiled present.* equal the interpreter's int8 codes bit for bit")
    scale = float(np.abs(interp["logits"]).max())
    diff = float(np.abs(jit["logits"] - interp["logits"]).max())
    check(diff <= 1e-5 * scale, f"{what}: compiled logits equal the interpreter's "
          f"(max diff {diff:.3g}, {diff / scale:.2g} of the largest)")
    dref = float(np.abs(ref["logits"] - interp["logits"]).max())
    check(dref <= 1e-3 * scale, f"{what}: ONNX Runtime's logits on the quantized graph "
          f"match Octet's (max diff {dref:.3g})")
    steps = max(int(np.abs(ref[n].astype(np.int32) - interp[n]).max()) for n in names)
    off = sum(int((ref[n] != interp[n]).sum()) for n in names) / \
        sum(interp[n].size for n in names)
    check(steps <= 1 and off <= 0.01, f"{what}: ONNX Runtime's int8 codes match Octet's "
          f"(largest difference {steps} step, {100 * off:.3f}% differ)")


def refusals(tmp):
    """Options that do not fit are refused with a message, nothing written."""
    rng = np.random.default_rng(1)
    model, _, _, _ = norm_layer(rng)
    path = os.path.join(tmp, "norm_r.onnx")
    onnx.save(model, path)
    cpath = os.path.join(tmp, "calib_r.npy")
    np.save(cpath, rng.standard_normal((2, 1, S, D)).astype(np.float32))
    out = os.path.join(tmp, "refused.onnx")
    for flags, code, words in (
            (["--smooth"], 1, "--calib"),
            (["--activations=dynamic", "--smooth"], 1, "--calib"),
            (["--smooth=1.5", "--calib", cpath], 1, "alpha"),
            (["--kv-cache-quant=int4", "--calib", cpath], 1, "kv-cache-quant"),
            (["--kv-cache=int4", "--calib", cpath], 1, "kv-cache"),
            (["--kv-cache=int8", "--kv-scales-from", path], 1, "kv-scales-from"),
            (["--weights-only", "--smooth", "--calib", cpath], 1, "weights-only"),
            (["--precision=fp32", "--calib", cpath], 1, "kv-cache-quant"),
            (["--precision=fp32", "--kv-cache-quant=int8", "--calib", cpath], 3, "present")):
        r = octet("quantize", path, *flags, "-o", out)
        check(r.returncode == code and words in r.stderr and not os.path.exists(out),
              f"quantize {' '.join(f for f in flags if f != cpath)}: exit {code}, "
              f"message names '{words}' (got {r.returncode}: {r.stderr.strip()[:160]})")


def decode_graph(tmp, sh, prefill, cwin, pre_q, pre_path):
    """decode_p128 with a stored INT8 cache: past_key_values.* inputs and
    present.* outputs INT8, the new token's keys and values quantized
    before the Concat, one scale per head; one step on the quantized
    prefill's codes in the interpreter, compiled and ONNX Runtime; greedy
    generation the same in the interpreter, the JIT, the JIT with the
    in-place cache and a compiled .so.  With the separately quantized
    prefill graph (other scales) or the float one as --prefill, generate
    refuses: their caches cannot fill this one; quantized with
    --kv-scales-from the quantized prefill, the pair generates as the
    decode graph does alone."""
    model = os.path.join(sh, "models", "stories260k", "decode_p128.onnx")
    names = [o.name for o in prefill.get_outputs()]
    dec = onnx.load(model)
    feeds = {i.name: [] for i in dec.graph.input}
    for w in cwin:
        P = 100
        ids = np.zeros((1, 128), np.int64)
        ids[0, :P] = w[0, :P]
        pres = dict(zip(names, prefill.run(None, {"input_ids": ids})))
        mask = np.zeros((1, 129), np.int64)
        mask[0, :P] = mask[0, 128] = 1
        feeds["input_ids"].append(w[:, P:P + 1])
        feeds["position_ids"].append(np.array([[P]], np.int64))
        feeds["attention_mask"].append(mask)
        for k in feeds:
            if k.startswith("past_key_values"):
                feeds[k].append(pres[k.replace("past_key_values", "present")])
    npz = os.path.join(tmp, "decode_calib.npz")
    np.savez(npz, **{k: np.stack(v) for k, v in feeds.items()})
    q = quantize(tmp, model, "dec_kv8", "--precision=fp32", "--kv-cache=int8", calib=npz)
    if not q:
        return
    m = onnx.load(q)
    prod = {o: n for n in m.graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    ins = {i.name: i.type.tensor_type.elem_type for i in m.graph.input}
    ok = True
    for out in m.graph.output:
        if not out.name.startswith("present"):
            continue
        cat = prod.get(out.name)
        past, new = (cat.input if cat is not None and cat.op_type == "Concat" else ("", ""))
        qn = prod.get(new)
        ok &= past.startswith("past_key_values") and ins.get(past) == T.INT8 and \
            out.type.tensor_type.elem_type == T.INT8 and qn is not None and \
            qn.op_type == "QuantizeLinear" and inits[qn.input[1]].shape == (4,)
    nq = sum(n.op_type == "QuantizeLinear" for n in m.graph.node)
    check(ok and nq == 10, f"decode graph: INT8 past inputs and present outputs, the new "
          f"keys and values quantized (4 head scales) before the Concat ({nq} QuantizeLinear)")
    # one step on the quantized prefill's codes (first 100 positions)
    P = 100
    ids = np.load(os.path.join(sh, "data", "tinystories", "eval_tokens.npy"))[:128]
    step = {"input_ids": ids[P:P + 1].astype(np.int64)[None],
            "position_ids": np.array([[P]], np.int64)}
    mask = np.zeros((1, 129), np.int64)
    mask[0, :P] = mask[0, 128] = 1
    step["attention_mask"] = mask
    for k in ins:
        if k.startswith("past_key_values"):
            c = np.zeros((1, 4, 128, 8), np.int8)
            c[:, :, :P] = pre_q[k.replace("past_key_values", "present")][:, :, :P]
            step[k] = c
    interp = octet_run(q, step, tmp)
    jit = octet_run(q, step, tmp, jit=True)
    if interp is None or jit is None:
        check(False, "octet run and octet run --jit succeed on the INT8-cache decode graph")
    else:
        compare_runs("decode step", [n for n in names if n.startswith("present")],
                     interp, jit, ort_run(q, step))
    gen = {}
    so = os.path.join(tmp, "dec_so")
    os.makedirs(so, exist_ok=True)
    r = octet("compile", q, "--emit=so", "--kv-cache=inplace", "-o", os.path.join(so, "dec"))
    lib = [os.path.join(so, f) for f in os.listdir(so) if f.endswith(".so")] \
        if not r.returncode else []
    check(len(lib) == 1, f"octet compile --emit=so --kv-cache=inplace of the INT8-cache "
          f"decode graph ({r.stderr.strip()[-200:]})")
    for label, args in (("interpreter", [q]), ("jit", [q, "--jit"]),
                        ("jit in-place", [q, "--jit", "--kv-cache=inplace"]),
                        ("compiled .so", lib[:1])):
        if not args:
            continue
        r = octet("generate", *args, "--prompt-ids", "1,403,407", "-n", 24)
        gen[label] = r.stdout.split() if r.returncode == 0 else [r.stderr.strip()[-200:]]
    for label, pre in (("INT8 prefill quantized apart", pre_path),
                       ("float prefill", os.path.join(sh, "models", "stories260k",
                                                      "prefill_s128.onnx"))):
        r = octet("generate", q, "--prefill", pre, "--prompt-ids", "1,403,407", "-n", 4)
        check(r.returncode == 3 and "present.0.key" in r.stderr and "prefill" in r.stderr,
              f"generate refuses the {label} beside the INT8-cache decode graph "
              f"(exit {r.returncode}: {r.stderr.strip()[:200]})")
    # the pair: the decode graph's scales taken from the quantized prefill
    qp = os.path.join(tmp, "dec_kv8_pair.onnx")
    r = octet("quantize", model, "--precision=fp32", "--kv-cache=int8", "--kv-scales-from",
              pre_path, "-o", qp, "--progress", "none")
    if r.returncode == 0:
        pm, dm = onnx.load(pre_path), onnx.load(qp)
        pre_s = {n.output[0]: numpy_helper.to_array(i) for n in pm.graph.node
                 if n.op_type == "QuantizeLinear" for i in pm.graph.initializer
                 if i.name == n.input[1]}
        dprod = {o: n for n in dm.graph.node for o in n.output}
        dinit = {i.name: numpy_helper.to_array(i) for i in dm.graph.initializer}
        same = all(np.array_equal(dinit[dprod[dprod[k].input[1]].input[1]], v)
                   for k, v in pre_s.items())
    check(r.returncode == 0 and same, "--kv-scales-from: the decode graph stores its cache "
          f"under the quantized prefill's scales exactly ({r.stderr.strip()[-160:]})")
    alone = octet("generate", qp, "--prompt-ids", "1,403,407", "-n", 24)
    pair = octet("generate", qp, "--prefill", pre_path, "--prompt-ids", "1,403,407", "-n", 24)
    check(pair.returncode == 0 and pair.stdout.split() == alone.stdout.split() and
          len(alone.stdout.split()) == 24,
          f"the prefill fills that decode graph's INT8 cache: generation equals the decode "
          f"graph's alone ({pair.stdout.strip()[:60]} | {pair.stderr.strip()[-160:]})")
    first = gen["interpreter"]
    check(len(first) >= 24 and all(v == first for v in gen.values()),
          f"greedy generation with the INT8 cache is the same in the interpreter, the JIT, "
          f"the in-place JIT cache and the compiled .so ({gen})")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "synthetic"
    with tempfile.TemporaryDirectory() as tmp:
        if mode == "synthetic":
            synthetic_smooth(tmp)
            synthetic_kv(tmp)
            refusals(tmp)
        else:
            stories(tmp)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
