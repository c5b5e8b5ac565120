"""octet quantize --activations=dynamic (src/passes/quant_dynamic.c), FP16
and BF16 models (src/passes/quant_upcast.c), and the entropy threshold
against numpy.

No shared data needed.
 - dynamic: a model with two MatMuls on one 3-D input, and a MatMul -> Relu
   -> Gemm (transB=1, bias, beta=0.5) chain, quantized with weights per
   channel and per tensor, and with activations per row
   (--dynamic-granularity=row; ONNX Runtime's y3 also equals numpy's
   per-row rule).  The int8 weights and scales equal a numpy implementation of
   the rule in quant_dynamic.c's file comment; ONNX Runtime runs the
   written model and `octet run` (interpreter) and `octet run --jit`
   (compiled), and the library `octet compile` writes, give its outputs:
   a single quantized layer to float rounding (every step is exact integer
   or one float32 multiply), the chain within one quantization step of the
   second layer's input.
 - a model written by onnxruntime.quantization.quantize_dynamic (per
   tensor and per channel) runs in octet, interpreter and compiled, as in
   ONNX Runtime.
 - FP16 and BF16 versions of the model are quantized (dynamic, static with
   FP16 calibration data, weights-only) as their float32 upcast: int8
   weights equal those of the half weights' float32 values, the interface
   keeps its half types, and the outputs follow the FP16 model in ONNX
   Runtime (BF16: numpy).
 - entropy: on a Laplacian sample with a few large outliers, the range
   --method=entropy picks is within a few percent of the threshold of an
   independent numpy implementation of TensorRT's KL search (2048-bin |x|
   histogram, 128 levels, the zero bin set to its neighbour), and clips the
   outliers.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper, numpy_helper
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)

OCTET = os.environ["OCTET"]
failures = []


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def octet(*args):
    return subprocess.run([OCTET, *map(str, args)], capture_output=True, text=True)


def ort_run(path, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.intra_op_num_threads = 1
    s = ort_int8.session(ort, path, so)  # exact MatMulInteger on any CPU
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


def octet_run(path, feeds, tmp, jit):
    out = tempfile.mkdtemp(dir=tmp)
    args = ["run", path, "--output-dir", out, "--format=npy"]
    for k, v in feeds.items():
        np.save(os.path.join(out, k + ".in.npy"), v)
        args += ["--input", f"{k}={os.path.join(out, k + '.in.npy')}"]
    r = octet(*args, *(["--jit"] if jit else []))
    if r.returncode:
        print(r.stderr[-3000:])
        return None
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out)
            if f.endswith(".npy") and not f.endswith(".in.npy")}


def sqnr_db(ref, got):
    noise = np.sum((ref.astype(np.float64) - got) ** 2)
    return float("inf") if noise == 0 else 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / noise)


rng = np.random.default_rng(7)
W1 = rng.normal(0, 0.2, (16, 32)).astype(np.float32)
W2 = rng.normal(0, 0.2, (10, 32)).astype(np.float32)   # Gemm transB=1: [N, K]
b2 = rng.normal(0, 0.1, (10,)).astype(np.float32)
W3 = rng.laplace(0, 0.1, (16, 24)).astype(np.float32)
W3[:, 5] = 0                                              # an all-zero column
W4 = rng.normal(0, 0.3, (16, 8)).astype(np.float32)      # reads z as well


def make_model(path, dtype=T.FLOAT):
    np_t = {T.FLOAT: np.float32, T.FLOAT16: np.float16}.get(dtype)

    def init(a, name):
        if dtype == T.BFLOAT16:
            t = helper.make_tensor(name, T.BFLOAT16, a.shape,
                                   (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
                                   .tobytes(), raw=True)
            return t
        return numpy_helper.from_array(a.astype(np_t), name)
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"], name="mm1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], name="gemm", transB=1, beta=0.5),
             helper.make_node("MatMul", ["z", "W3"], ["y3"], name="mm3"),
             helper.make_node("MatMul", ["z", "W4"], ["y4"], name="mm4")]
    g = helper.make_graph(
        nodes, "dyn",
        [helper.make_tensor_value_info("x", dtype, [4, 16]),
         helper.make_tensor_value_info("z", dtype, [2, 3, 16])],
        [helper.make_tensor_value_info("y", dtype, [4, 10]),
         helper.make_tensor_value_info("y3", dtype, [2, 3, 24]),
         helper.make_tensor_value_info("h", dtype, [4, 32]),
         helper.make_tensor_value_info("y4", dtype, [2, 3, 8])],
        [init(W1, "W1"), init(W2, "W2"), init(b2, "b2"), init(W3, "W3"), init(W4, "W4")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def ref_weight(w_kn, per_channel):
    """int8 codes, scales of the rule in quant_dynamic.c's comment."""
    amax = np.abs(w_kn).max(axis=0) if per_channel else np.abs(w_kn).max()
    s = (amax.astype(np.float64) / 127.0).astype(np.float32)
    s = np.where((s > 0) & np.isfinite(s), s, np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(w_kn / s), -127, 127).astype(np.int8)
    return q, s


def row_quantize(x):
    """Per-row symmetric int8 codes and scales ([..., M, 1]) of the rule in
    quant_dynamic.c's comment, float32 throughout."""
    amax = np.maximum(np.abs(x).max(-1, keepdims=True), np.float32(2.0 ** -126))
    s = (amax / np.float32(127)).astype(np.float32)
    return np.clip(np.rint(x / s), -127, 127).astype(np.int8), s


def test_dynamic(tmp):
    f32 = os.path.join(tmp, "f32.onnx")
    make_model(f32)
    feeds = {"x": rng.normal(0, 1, (4, 16)).astype(np.float32),
             "z": rng.laplace(0, 1, (2, 3, 16)).astype(np.float32)}
    fp = ort_run(f32, feeds)
    for gran in ("per-channel", "per-tensor", "row"):
        out = os.path.join(tmp, f"dyn_{gran}.onnx")
        flags = ["--dynamic-granularity=row"] if gran == "row" else [f"--weights={gran}"]
        r = octet("quantize", f32, "--activations=dynamic", *flags, "-o", out)
        check(r.returncode == 0, f"{gran}: quantize exits 0 ({r.stderr.strip()[-300:]})")
        if r.returncode:
            continue
        q = onnx.load(out)
        onnx.checker.check_model(q, full_check=True)
        ops = [n.op_type for n in q.graph.node]
        n_dq = 0 if gran == "row" else 3
        check(ops.count("DynamicQuantizeLinear") == n_dq and ops.count("MatMulInteger") == 4
              and ops.count("ReduceMax") == 3 - n_dq and "MatMul" not in ops and "Gemm" not in ops,
              f"{gran}: four MatMulInteger, three activation quantizations (mm3 and mm4 share "
              f"z's), no float MatMul/Gemm: {ops}")
        inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
        pc = gran != "per-tensor"
        for name, w_kn in (("W1", W1), ("W2", W2.T), ("W3", W3), ("W4", W4)):
            rq, rs = ref_weight(w_kn, pc)
            check(np.array_equal(inits.get(name + "_quantized"), rq)
                  and np.array_equal(inits.get(name + "_scale"), rs)
                  and not np.any(inits.get(name + "_zero_point")),
                  f"{gran}: {name} codes, scales, zero points equal the numpy rule")
        want = ort_run(out, feeds)
        if gran == "row":   # the rule of quant_dynamic.c's comment, in numpy
            xq, sx = row_quantize(feeds["z"])
            ref = (xq.astype(np.int32) @ inits["W3_quantized"].astype(np.int32)).astype(np.float32) \
                * (sx * inits["W3_scale"])
            check(np.array_equal(ref, want["y3"]),
                  f"row: ONNX Runtime's y3 equals numpy's per-row quantization exactly "
                  f"(max diff {np.abs(ref - want['y3']).max():.3g})")
        for jit in (False, True):
            got = octet_run(out, feeds, tmp, jit)
            tag = f"{gran} {'compiled' if jit else 'interpreter'}"
            check(got is not None, f"{tag}: octet runs the dynamic model")
            if got is None:
                continue
            for name in ("h", "y3", "y4"):   # one quantized layer: exact but for float rounding
                check(np.allclose(got[name], want[name], rtol=1e-6, atol=1e-6 * np.abs(want[name]).max()),
                      f"{tag}: {name} equals ONNX Runtime (max diff "
                      f"{np.abs(got[name] - want[name]).max():.3g})")
            # y: r is quantized at run time; a float rounding in h may move
            # one element of r by one step of r's scale
            r_step = max(np.float32(np.maximum(want["h"], 0).max()) / 255, 1e-12)
            bound = r_step * np.abs(W2).max() * 1.01 + 1e-5 * np.abs(want["y"]).max()
            check(np.abs(got["y"] - want["y"]).max() <= bound,
                  f"{tag}: y within one step of its input's quantization of ONNX Runtime "
                  f"(max diff {np.abs(got['y'] - want['y']).max():.3g}, bound {bound:.3g})")
        # `octet compile` to a shared library, run by `octet run`
        lib = os.path.join(tmp, "dyn_" + gran.replace("-", "_"))
        rc = octet("compile", out, "-o", lib, "--emit=so")
        got = octet_run(lib + ".so", feeds, tmp, False) if rc.returncode == 0 else None
        check(got is not None and np.allclose(got["y3"], want["y3"], rtol=1e-6,
                                              atol=1e-6 * np.abs(want["y3"]).max()),
              f"{gran}: octet compile's library gives ONNX Runtime's y3 ({rc.stderr.strip()[-200:]})")
        print(f"{gran}: SQNR vs FP32 (ONNX Runtime): h {sqnr_db(fp['h'], want['h']):.1f} dB, "
              f"y {sqnr_db(fp['y'], want['y']):.1f} dB, y3 {sqnr_db(fp['y3'], want['y3']):.1f} dB")
        check(sqnr_db(fp["y3"], want["y3"]) > 30, f"{gran}: y3 within 30 dB of FP32")
    # usage: no calibration data with dynamic quantization
    r = octet("quantize", f32, "--activations=dynamic", "--calib", f32, "-o",
              os.path.join(tmp, "bad.onnx"))
    check(r.returncode == 1 and not os.path.exists(os.path.join(tmp, "bad.onnx")),
          "--activations=dynamic with --calib is a usage error, nothing written")


def test_ort_dynamic(tmp):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    f32 = os.path.join(tmp, "f32_ort.onnx")
    make_model(f32)
    feeds = {"x": rng.normal(0, 1, (4, 16)).astype(np.float32),
             "z": rng.normal(0, 1, (2, 3, 16)).astype(np.float32)}
    for pc in (False, True):
        out = os.path.join(tmp, f"ort_dyn_{int(pc)}.onnx")
        quantize_dynamic(f32, out, per_channel=pc, weight_type=QuantType.QInt8)
        ops = [n.op_type for n in onnx.load(out).graph.node]
        check("MatMulInteger" in ops and "DynamicQuantizeLinear" in ops,
              f"ORT quantize_dynamic (per_channel={pc}) writes MatMulInteger: {ops}")
        want = ort_run(out, feeds)
        for jit in (False, True):
            got = octet_run(out, feeds, tmp, jit)
            tag = f"ORT per_channel={pc} {'compiled' if jit else 'interpreter'}"
            check(got is not None, f"{tag}: octet runs it")
            if got is None:
                continue
            for name in ("h", "y3", "y4"):
                check(np.allclose(got[name], want[name], rtol=1e-6, atol=1e-6 * np.abs(want[name]).max()),
                      f"{tag}: {name} equals ONNX Runtime (max diff "
                      f"{np.abs(got[name] - want[name]).max():.3g})")
            r_step = max(np.float32(np.maximum(want["h"], 0).max()) / 255, 1e-12)
            bound = r_step * np.abs(W2).max() * 1.01 + 1e-5 * np.abs(want["y"]).max()
            check(np.abs(got["y"] - want["y"]).max() <= bound,
                  f"{tag}: y within one step of ONNX Runtime (max diff "
                  f"{np.abs(got['y'] - want['y']).max():.3g})")


def half_to_f32(a, dt):
    """The float32 values of a's half rounding (FLOAT16 or BFLOAT16)."""
    if dt == T.FLOAT16:
        return a.astype(np.float16).astype(np.float32)
    return ((a.astype(np.float32).view(np.uint32) >> 16) << 16).view(np.float32)


def test_half(tmp):
    """FP16 and BF16 models are quantized as their float32 upcast: the int8
    weights are those of the half weights' float32 values, the interface
    keeps its half types, outputs follow the float32 computation."""
    f16 = os.path.join(tmp, "FLOAT16.onnx")
    make_model(f16, T.FLOAT16)
    x = rng.normal(0, 1, (4, 16)).astype(np.float16)
    zz = rng.normal(0, 1, (2, 3, 16)).astype(np.float16)
    feeds16 = {"x": x, "z": zz}
    out = os.path.join(tmp, "f16.dyn.onnx")
    r = octet("quantize", f16, "--activations=dynamic", "-o", out)
    check(r.returncode == 0, f"FLOAT16 dynamic: exit 0 ({r.stderr.strip()[-200:]})")
    if r.returncode == 0:
        q = onnx.load(out)
        onnx.checker.check_model(q, full_check=True)
        check(all(i.type.tensor_type.elem_type == T.FLOAT16 for i in list(q.graph.input) + list(q.graph.output)),
              "FLOAT16 dynamic: inputs and outputs stay FLOAT16")
        inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
        for name, w_kn in (("W1", W1), ("W2", W2.T), ("W3", W3)):
            rq, rs = ref_weight(half_to_f32(w_kn, T.FLOAT16), True)
            check(np.array_equal(inits.get(name + "_quantized"), rq) and
                  np.array_equal(inits.get(name + "_scale"), rs),
                  f"FLOAT16 dynamic: {name} codes and scales are those of its float32 values")
        want = ort_run(out, feeds16)
        for jit in (False, True):
            got = octet_run(out, feeds16, tmp, jit)
            tag = f"FLOAT16 dynamic {'compiled' if jit else 'interpreter'}"
            check(got is not None and all(
                np.allclose(got[n].astype(np.float32), want[n].astype(np.float32), rtol=2e-3,
                            atol=2e-3 * np.abs(want[n].astype(np.float32)).max()) for n in ("h", "y3")),
                  f"{tag}: h, y3 equal ONNX Runtime's to FP16 rounding")
        ref = ort_run(f16, feeds16)
        for n in ("h", "y3"):
            d = sqnr_db(ref[n].astype(np.float32), want[n].astype(np.float32))
            check(d > 30, f"FLOAT16 dynamic: {n} {d:.1f} dB against the FP16 model (> 30)")
    # static, calibration data in the model's own type
    npz = os.path.join(tmp, "calib16.npz")
    np.savez(npz, x=rng.normal(0, 1, (8, 4, 16)).astype(np.float16),
             z=rng.normal(0, 1, (8, 2, 3, 16)).astype(np.float16))
    out = os.path.join(tmp, "f16.static.onnx")
    r = octet("quantize", f16, "--calib", npz, "-o", out, "--progress=none")
    check(r.returncode == 0 and "SQNR 0.00" not in r.stdout + r.stderr,
          f"FLOAT16 static: exit 0 and a measured SQNR ({(r.stdout + r.stderr).strip()[-200:]})")
    if r.returncode == 0:
        ops = [n.op_type for n in onnx.load(out).graph.node]
        check(ops.count("QuantizeLinear") >= 3, f"FLOAT16 static: Q/DQ written: {ops}")
        ref, want = ort_run(f16, feeds16), ort_run(out, feeds16)
        d = sqnr_db(ref["y3"].astype(np.float32), want["y3"].astype(np.float32))
        check(d > 30, f"FLOAT16 static: y3 {d:.1f} dB against the FP16 model in ONNX Runtime (> 30)")
    out = os.path.join(tmp, "f16.wo.onnx")
    r = octet("quantize", f16, "--weights-only", "-o", out)
    check(r.returncode == 0 and "DequantizeLinear" in [n.op_type for n in onnx.load(out).graph.node],
          "FLOAT16 weights-only: exit 0, weights dequantized")
    # BF16: octet runs the result; compared with numpy on the bf16 weights
    b16 = os.path.join(tmp, "BFLOAT16.onnx")
    make_model(b16, T.BFLOAT16)
    out = os.path.join(tmp, "b16.dyn.onnx")
    r = octet("quantize", b16, "--activations=dynamic", "-o", out)
    check(r.returncode == 0, f"BFLOAT16 dynamic: exit 0 ({r.stderr.strip()[-200:]})")
    if r.returncode == 0:
        xb = half_to_f32(rng.normal(0, 1, (4, 16)), T.BFLOAT16)
        zb = half_to_f32(rng.normal(0, 1, (2, 3, 16)), T.BFLOAT16)
        as_bf16 = lambda a: (a.view(np.uint32) >> 16).astype(np.uint16)   # noqa: E731
        tmpd = tempfile.mkdtemp(dir=tmp)
        args = ["run", out, "--output-dir", tmpd, "--format=pb"]
        for k, v in (("x", xb), ("z", zb)):
            t = helper.make_tensor(k, T.BFLOAT16, v.shape, as_bf16(v).tobytes(), raw=True)
            with open(os.path.join(tmpd, k + ".pb"), "wb") as f:
                f.write(t.SerializeToString())
            args += ["--input", f"{k}={os.path.join(tmpd, k + '.pb')}"]
        rr = octet(*args)
        check(rr.returncode == 0, f"BFLOAT16 dynamic: octet runs it ({rr.stderr.strip()[-200:]})")
        if rr.returncode == 0:
            y3 = numpy_helper.to_array(onnx.load_tensor(os.path.join(tmpd, "y3.pb")))
            y3 = y3.astype(np.float32) if y3.dtype != np.uint16 else \
                (y3.astype(np.uint32) << 16).view(np.float32)
            ref = zb @ half_to_f32(W3, T.BFLOAT16)
            d = sqnr_db(ref, y3)
            check(d > 25, f"BFLOAT16 dynamic: y3 {d:.1f} dB against numpy on the BF16 values (> 25)")


def trt_entropy_threshold(x, bins=2048, levels=128, start=128):
    """TensorRT's KL threshold search on |x|, written from its description:
    histogram of |x| on [0, max|x|] in `bins` bins; bin 0 takes bin 1's
    count; for each i >= start, P = first i bins with the rest added to the
    last, Q = first i bins merged into `levels` groups, each group's mass
    spread over its non-empty bins; the least KL(P||Q), ties to the larger
    i; the threshold is the right edge of bin i-1."""
    a = np.abs(x.astype(np.float64))
    hist, edges = np.histogram(a, bins=bins, range=(0, a.max()))
    hist = hist.astype(np.float64)
    hist[0] = hist[1]
    best, best_kl = bins, np.inf
    for i in range(start, bins + 1):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        q = np.zeros(i)
        groups = (np.arange(i) * levels) // i
        for g in range(levels):
            sel = groups == g
            nz = sel & (hist[:i] > 0)
            if nz.any():
                q[nz] = hist[:i][sel].sum() / nz.sum()
        if np.any((p > 0) & (q == 0)):
            kl = np.inf
        else:
            pn, qn = p / p.sum(), q / q.sum()
            m = pn > 0
            kl = float(np.sum(pn[m] * np.log(pn[m] / qn[m])))
        if kl <= best_kl:
            best, best_kl = i, kl
    return edges[best]


def test_entropy(tmp):
    # one MatMul: its input is the calibrated activation
    w = rng.normal(0, 1, (64, 8)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "e",
                          [helper.make_tensor_value_info("x", T.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [1, 8])],
                          [numpy_helper.from_array(w, "w")])
    path = os.path.join(tmp, "entropy.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = rng.laplace(0, 1, (400, 1, 64)).astype(np.float32)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 6, replace=False)] = np.array([60, -55, 70, -80, 65, 75], np.float32)
    calib = os.path.join(tmp, "entropy_calib.npy")
    np.save(calib, x)
    out = os.path.join(tmp, "entropy.q.onnx")
    r = octet("quantize", path, "--calib", calib, "--method=entropy", "--activations=s8",
              "-o", out, "--progress=none")
    check(r.returncode == 0, f"entropy quantize exits 0 {r.stderr[-300:]}")
    if r.returncode:
        return
    q = onnx.load(out)
    qnode = next(n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    t_octet = float(inits[qnode.input[1]]) * 127
    t_ref = trt_entropy_threshold(flat)
    print(f"entropy threshold: octet {t_octet:.4f}, numpy TensorRT {t_ref:.4f}, "
          f"max |x| {np.abs(flat).max():.1f}")
    check(abs(t_octet - t_ref) <= 0.05 * t_ref,
          f"entropy threshold {t_octet:.3f} within 5% of the numpy reference {t_ref:.3f}")
    check(t_octet < 55, "entropy threshold clips the outliers (all beyond 55)")
    check(t_octet > np.quantile(np.abs(flat), 0.999),
          "entropy threshold keeps 99.9% of the Laplacian bulk")


with tempfile.TemporaryDirectory() as tmp:
    test_dynamic(tmp)
    test_ort_dynamic(tmp)
    test_half(tmp)
    test_entropy(tmp)
print(f"{len(failures)} failed" if failures else "all checks passed")
sys.exit(1 if failures else 0)
