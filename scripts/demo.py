"""The main job on the bundled default: quantize mnist-8 with Octet
(calibrated on the 1000-image calibration split), run the FP32 and the INT8
model over the 9000-image evaluation split with `octet run`, and print
accuracy and speed against FP32, with ONNX Runtime's figures beside them.

Octet runs models with its reference interpreter for now; the compiled
backend (`octet compile`) is the next milestone, so Octet's INT8 speed here
is that of the interpreter simulating Q/DQ, not of integer kernels."""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OCTET = os.path.join(ROOT, "build", "octet")
SHARED = os.environ.get("OCTET_SHARED", os.path.join(ROOT, "..", "shared"))
MODEL = os.path.join(SHARED, "models", "mnist-8", "model.onnx")
DATA = os.path.join(SHARED, "data", "mnist")


def octet(*args):
    r = subprocess.run([OCTET, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"octet {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def octet_accuracy(model, x_file, labels, tmp):
    out = os.path.join(tmp, os.path.basename(model) + ".out")
    t0 = time.perf_counter()
    octet("run", model, "--input", f"Input3={x_file}", "--each-sample",
          "--output-dir", out, "--format=npy")
    seconds = time.perf_counter() - t0
    y = np.load(os.path.join(out, sorted(os.listdir(out))[0])).reshape(len(labels), -1)
    return float(np.mean(y.argmax(1) == labels)), seconds / len(labels)


def ort_accuracy(model, images, labels):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.log_severity_level = 3
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    t0 = time.perf_counter()
    y = np.concatenate([s.run(None, {"Input3": images[i:i + 1]})[0]
                        for i in range(len(labels))])
    seconds = time.perf_counter() - t0
    return float(np.mean(y.argmax(1) == labels)), seconds / len(labels)


def main():
    images = np.load(os.path.join(DATA, "images_u8.npy"))[1000:].astype(np.float32)
    labels = np.load(os.path.join(DATA, "labels_u8.npy"))[1000:]
    with tempfile.TemporaryDirectory() as tmp:
        qdq = os.path.join(tmp, "mnist-8.int8.onnx")
        print("octet quantize mnist-8 (calibration: 1000 images, INT8, per-channel weights)")
        t0 = time.perf_counter()
        octet("quantize", MODEL, "--calib", os.path.join(DATA, "calib_1000_f32.npy"),
              "-o", qdq, "--progress=none")
        print(f"  quantized in {time.perf_counter() - t0:.1f} s")
        x_file = os.path.join(tmp, "eval.npy")
        np.save(x_file, images.reshape(-1, 1, 1, 28, 28))
        rows = []
        for name, model in (("FP32", MODEL), ("INT8 (QDQ)", qdq)):
            acc, sec = octet_accuracy(model, x_file, labels, tmp)
            acc_ort, sec_ort = ort_accuracy(model, images.reshape(-1, 1, 28, 28), labels)
            rows.append((name, acc, sec, acc_ort, sec_ort))
        print(f"\nmnist-8 on the 9000-image evaluation split")
        print(f"{'model':<12} {'octet top-1':>12} {'octet ms/img':>13} {'ORT top-1':>10} {'ORT ms/img':>11}")
        for name, acc, sec, acc_ort, sec_ort in rows:
            print(f"{name:<12} {acc:>12.2%} {sec * 1e3:>13.3f} {acc_ort:>10.2%} {sec_ort * 1e3:>11.3f}")
        fp32 = rows[0]
        int8 = rows[1]
        print(f"\nINT8 vs FP32 in octet: accuracy {100 * (int8[1] - fp32[1]):+.2f} points, "
              f"time {int8[2] / fp32[2]:.2f}x (reference interpreter; compiled kernels are next)")


if __name__ == "__main__":
    main()
