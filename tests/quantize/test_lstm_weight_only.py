"""An LSTM quantized with weight-only INT8 (`octet quantize --weights-only`,
per-channel int8 W and R: a scale per gate row), compiled, and its accuracy
against FP32.

The model is built with onnx.helper: one bidirectional LSTM layer (40
input features, hidden 64, 50 steps, batch 2, initial states) followed by
a MatMul head, with trained-like weights: Xavier-normal W and R, an
orthogonal-ish R scaled to spectral radius ~0.9, forget-gate biases of 1,
and a few gate rows with 4x larger weights (the outliers per-channel
scales exist for).  Input: a smooth random walk (audio-feature-like).

Checked:
  - the quantized model has int8 DequantizeLinear feeding LSTM's W and R;
  - the compiled .so (`octet compile --emit=so`) equals the interpreter
    (`octet run`) on the quantized model within 1e-5 * max(1, max|y|)
    (the RNN lowering's tolerance: its GEMMs reassociate sums);
  - the interpreter equals ONNX Runtime on the quantized model within the
    same bound (the oracle for the interpreter);
  - SQNR of the quantized model's output (interpreted) against the FP32
    model's (ONNX Runtime) is above SQNR_FLOOR_DB.
`--markdown` prints the docs/accuracy.md row."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OCTET = os.environ["OCTET"]
SQNR_FLOOR_DB = 35.0
RTOL = 1e-5
I, H, T, B, D, OUT = 40, 64, 50, 2, 2, 16


def trained_like(rng):
    w = rng.normal(0, np.sqrt(2.0 / (I + 4 * H)), (D, 4 * H, I))
    r = np.empty((D, 4 * H, H))
    for d in range(D):
        for g in range(4):
            q, _ = np.linalg.qr(rng.normal(size=(H, H)))
            r[d, g * H:(g + 1) * H] = 0.9 * q
    rows = rng.choice(4 * H, 8, replace=False)
    w[:, rows] *= 4.0
    r[:, rows] *= 4.0 / np.abs(r[:, rows]).max() * 0.9
    bias = rng.normal(0, 0.1, (D, 8 * H))
    bias[:, H:2 * H] = 1.0  # forget gate (ONNX gate order i, o, f, c)
    head = rng.normal(0, np.sqrt(1.0 / (D * H)), (D * H, OUT))
    f = np.float32
    return w.astype(f), r.astype(f), bias.astype(f), head.astype(f)


def build(path, rng):
    w, r, bias, head = trained_like(rng)
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["y", "", ""],
                         name="lstm", hidden_size=H, direction="bidirectional"),
        helper.make_node("Transpose", ["y"], ["yt"], perm=[0, 2, 1, 3]),       # [T, B, D, H]
        helper.make_node("Reshape", ["yt", "shape"], ["flat"]),               # [T, B, D*H]
        helper.make_node("MatMul", ["flat", "head"], ["out"], name="head"),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w, "W"), (r, "R"), (bias, "B"), (head, "head"),
              (np.array([T, B, D * H], np.int64), "shape"))]
    g = helper.make_graph(nodes, "lstm_wo",
                          [helper.make_tensor_value_info("x", f, [T, B, I]),
                           helper.make_tensor_value_info("h0", f, [D, B, H]),
                           helper.make_tensor_value_info("c0", f, [D, B, H])],
                          [helper.make_tensor_value_info("out", f, [T, B, OUT])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def inputs(rng):
    x = np.cumsum(rng.normal(0, 0.3, (T, B, I)), axis=0)
    x = x / np.abs(x).max() * 2.0
    f = np.float32
    return {"x": x.astype(f), "h0": rng.normal(0, 0.1, (D, B, H)).astype(f),
            "c0": rng.normal(0, 0.1, (D, B, H)).astype(f)}


def octet(*args):
    r = subprocess.run([OCTET, *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"octet {args[0]} exited {r.returncode}: {r.stderr[-800:]}")


def ort_run(path, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def sqnr_db(ref, got):
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2))


def main():
    markdown = "--markdown" in sys.argv[1:]
    rng = np.random.default_rng(2019)
    failures = 0

    def check(ok, what):
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)

    with tempfile.TemporaryDirectory() as d:
        fp32, q8 = os.path.join(d, "lstm.onnx"), os.path.join(d, "lstm.int8.onnx")
        build(fp32, rng)
        octet("quantize", fp32, "--weights-only", "--weight-format=int8", "-o", q8)
        m = onnx.load(q8)
        prod = {o: n for n in m.graph.node for o in n.output}
        inits = {i.name: i for i in m.graph.initializer}
        lstm = next(n for n in m.graph.node if n.op_type == "LSTM")
        kinds = []
        for slot in (1, 2):
            p = prod.get(lstm.input[slot])
            kinds.append(p is not None and p.op_type == "DequantizeLinear" and
                         p.input[0] in inits and inits[p.input[0]].data_type == TensorProto.INT8)
        check(all(kinds), "LSTM's W and R are int8 initializers behind DequantizeLinear "
              f"(W {kinds[0]}, R {kinds[1]})")
        feeds = inputs(rng)
        files = []
        for k, v in feeds.items():
            np.save(os.path.join(d, k + ".npy"), v)
            files += ["--input", f"{k}={os.path.join(d, k + '.npy')}"]
        octet("run", q8, *files, "--output-dir", os.path.join(d, "interp"))
        interp = np.load(os.path.join(d, "interp", "out.npy"))
        octet("compile", q8, "-o", os.path.join(d, "lstm_q8"), "--emit=so")
        octet("run", os.path.join(d, "lstm_q8.so"), *files, "--output-dir", os.path.join(d, "so"))
        comp = np.load(os.path.join(d, "so", "out.npy"))
        bound = RTOL * max(1.0, float(np.abs(interp).max()))
        err = float(np.abs(comp - interp).max())
        check(comp.shape == interp.shape and err <= bound,
              f"compiled vs interpreter on the INT8 model: max |diff| {err:.3g} (bound {bound:.3g})")
        want_q = ort_run(q8, feeds)
        err = float(np.abs(interp - want_q).max())
        check(err <= RTOL * max(1.0, float(np.abs(want_q).max())),
              f"interpreter vs ONNX Runtime on the INT8 model: max |diff| {err:.3g}")
        ref = ort_run(fp32, feeds)
        s_interp, s_comp = sqnr_db(ref, interp), sqnr_db(ref, comp)
        check(s_interp >= SQNR_FLOOR_DB and s_comp >= SQNR_FLOOR_DB,
              f"SQNR vs FP32 (ONNX Runtime): interpreter {s_interp:.2f} dB, compiled "
              f"{s_comp:.2f} dB (floor {SQNR_FLOOR_DB} dB)")
        wbytes = sum(np.prod(i.dims) * 4 for i in onnx.load(fp32).graph.initializer
                     if i.name in ("W", "R"))
        if markdown:
            print(f"| bidirectional LSTM (onnx.helper, I={I} H={H} T={T} B={B}) + MatMul head | "
                  f"int8 per channel (W, R, head) | {s_interp:.2f} | {s_comp:.2f} | "
                  f"{wbytes / 1024:.0f} KiB -> {wbytes / 4 / 1024:.0f} KiB |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
