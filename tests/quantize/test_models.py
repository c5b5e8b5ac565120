"""Every model in ../shared/models quantizes with octet's default settings;
the QDQ output passes onnx.checker, runs in ONNX Runtime (basic graph
optimizations) and in octet with the same results, loads back into octet
unchanged, and keeps a sane output SQNR against FP32 on held-out inputs.
QDQ models written by ONNX Runtime's quantize_static load and run in octet
(compared with ONNX Runtime) and `octet report` measures them."""
import csv
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                      QuantType, quantize_static)

sys.path.insert(0, os.path.dirname(__file__))
from qtest import *  # noqa: E402,F403

rng = np.random.default_rng(1234)


def iris_rows():
    with open(os.path.join(MODELS, "iris-mlp", "Iris.csv")) as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in rows[0] if k not in ("Id", "Species")]
    return np.array([[float(r[k]) for k in keys] for r in rows], np.float32)


def mnist_flat():
    x = np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))
    return (x.reshape(-1, 784) / 255.0).astype(np.float32)


# model -> (input name, calibration samples [N, ...batch-1 shape], held-out)
def datasets():
    photos = np.load(os.path.join(DATA, "imagenet-photos", "calib_f32.npy"))
    iris = iris_rows()
    mnist = mnist_flat()
    ultra = rng.uniform(-1, 1, (12, 1, 3, 240, 320)).astype(np.float32)
    ocr = rng.uniform(-1, 1, (12, 1, 3, 48, 192)).astype(np.float32)
    cifar = rng.normal(0, 1, (24, 1, 3, 32, 32)).astype(np.float32)
    return {
        "ultraface-rfb320": ("input", ultra[:8], ultra[8:]),
        "ppocr-cls": ("x", ocr[:8], ocr[8:]),
        "cifar10-cnn": ("modelInput", cifar[:16], cifar[16:]),
        "iris-mlp": ("input", iris[::2].reshape(-1, 1, 4), iris[1::2].reshape(-1, 1, 4)),
        "mnist-mlp-bn": ("network_input", mnist[:200].reshape(-1, 1, 784),
                         mnist[900:].reshape(-1, 1, 784)),
        "squeezenet1.1": ("data_0", photos[:20].reshape(-1, 1, 3, 224, 224),
                          photos[20:].reshape(-1, 1, 3, 224, 224)),
        "mnist-8": ("Input3", np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))
                    [:300].reshape(-1, 1, 1, 28, 28),
                    np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))
                    [900:].reshape(-1, 1, 1, 28, 28)),
    }


def inspect_text(path):
    return octet("inspect", path).stdout


with tempfile.TemporaryDirectory() as tmp:
    for name, (inp, calib, held) in datasets().items():
        model = os.path.join(MODELS, name, "model.onnx")
        calib_file = os.path.join(tmp, name + ".calib.npy")
        np.save(calib_file, calib)
        out = os.path.join(tmp, name + ".qdq.onnx")
        octet("quantize", model, "--calib", calib_file, "-o", out, "--progress=none")
        q = onnx.load(out)
        onnx.checker.check_model(q, full_check=True)
        n_q = sum(n.op_type == "QuantizeLinear" for n in q.graph.node)
        check(n_q > 0, f"{name}: quantized ({n_q} QuantizeLinear)")

        # reloads into octet unchanged
        again = os.path.join(tmp, name + ".again.onnx")
        octet("opt", out, "-o", again)
        check(inspect_text(out) == inspect_text(again), f"{name}: QDQ output loads back unchanged")

        feeds = [{inp: s} for s in held]
        ref = np.concatenate([o.ravel() for o in ort_outputs(model, feeds)])
        got_ort = np.concatenate([o.ravel() for o in ort_outputs(out, feeds)])
        got_octet = octet_each_sample(out, inp, held, tmp).ravel()
        db = sqnr_db(ref, got_ort)
        db_octet = sqnr_db(ref, got_octet)
        # Float sums in another order can move a value across a rounding
        # boundary of the next QuantizeLinear: one step apart, not more.
        agree = sqnr_db(got_ort, got_octet)
        print(f"{name}: output SQNR vs FP32 {db:.2f} dB (ONNX Runtime), {db_octet:.2f} dB "
              f"(octet) on {len(held)} held-out inputs; octet vs ONNX Runtime {agree:.1f} dB")
        check(np.isfinite(got_ort).all() and db > 10.0, f"{name}: output SQNR {db:.2f} dB > 10 dB")
        check(abs(db - db_octet) < 1.0, f"{name}: octet's SQNR within 1 dB of ONNX Runtime's")
        check(agree >= 30.0, f"{name}: octet and ONNX Runtime run the QDQ model alike ({agree:.1f} dB)")

    # ONNX Runtime's own QDQ output (mnist-8, per-channel, converted to opset 13)
    m13 = os.path.join(tmp, "mnist13.onnx")
    onnx.save(version_converter.convert_version(onnx.load(os.path.join(MODELS, "mnist-8", "model.onnx")), 13), m13)
    x = np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= 100:
                return None
            self.i += 1
            return {"Input3": x[self.i - 1:self.i]}

    ortq = os.path.join(tmp, "mnist.ortq.onnx")
    quantize_static(m13, ortq, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    held = x[900:].reshape(-1, 1, 1, 28, 28)
    got_ort = np.concatenate(ort_outputs(ortq, [{"Input3": s} for s in held])).ravel()
    got_octet = octet_each_sample(ortq, "Input3", held, tmp).ravel()
    diff = np.max(np.abs(got_octet - got_ort)) / np.max(np.abs(got_ort))
    check(diff < 1e-5, f"ONNX Runtime's QDQ mnist-8 runs in octet like in ONNX Runtime ({diff:.2e})")
    data_file = os.path.join(tmp, "held.npy")
    np.save(data_file, held[:20])
    rep = octet("report", m13, ortq, "--data", data_file).stdout
    rows = [l for l in rep.splitlines() if "activation" in l]
    check(len(rows) >= 5, f"octet report measures ONNX Runtime's Q/DQ pairs ({len(rows)} rows)")
    check("SQNR" in rep.splitlines()[-1], "octet report gives the output SQNR")
    # a model that is already QDQ keeps its Q/DQ: nothing is quantized twice
    requant = os.path.join(tmp, "requant.onnx")
    np.save(data_file, x[:20])
    octet("quantize", ortq, "--calib", data_file, "-o", requant, "--progress=none")
    ops = lambda path: [n.op_type for n in onnx.load(path).graph.node]  # noqa: E731
    check(ops(requant).count("QuantizeLinear") == ops(ortq).count("QuantizeLinear") and
          ops(requant).count("DequantizeLinear") == ops(ortq).count("DequantizeLinear"),
          "quantizing ONNX Runtime's QDQ model keeps its Q/DQ as they are")
finish()
