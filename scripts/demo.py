"""The main job on the bundled default: quantize mnist-8 with Octet
(calibrated on the 1000-image calibration split), compile the FP32 and the
INT8 model with `octet compile` to shared libraries, run both over the
9000-image evaluation split (through the generated NAME_run entry point),
and print accuracy and speed against FP32, with Octet's reference
interpreter (`octet run`) and ONNX Runtime beside them.

The compiled INT8 model runs its convolutions and matrix products on exact
integer kernels (int32 accumulation, the reference's requantization).
Accuracy is top-1 over the 9000 images; speed is the median latency of one
image over repeated runs, without Python in the loop for octet
(`octet run NAME.so --repeat N --time`) and through the Python API for ONNX
Runtime (default graph optimizations, one thread)."""
import ctypes
import json
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


def compiled_accuracy(model, images, labels, tmp, name):
    """Compiles model to NAME.so and runs it once per image through
    NAME_run (inputs, outputs, scratch pointers; it allocates nothing)."""
    base = os.path.join(tmp, name)
    octet("compile", model, "-o", base, "--emit=so,header")
    lib = ctypes.CDLL(base + ".so")
    sig = json.loads(ctypes.string_at(ctypes.addressof(
        ctypes.c_char.in_dll(lib, name + "_signature"))).decode())
    out = np.empty(sig["outputs"][0]["shape"], np.float32)
    scratch = np.zeros(sig["scratch_size"] + 64, np.uint8)
    scratch_ptr = ctypes.c_void_p((scratch.ctypes.data + 63) // 64 * 64)
    run = getattr(lib, name + "_run")
    run.restype = ctypes.c_int
    run.argtypes = [ctypes.c_void_p] * 3
    outs_ptr = (ctypes.c_void_p * 1)(out.ctypes.data)
    x = np.ascontiguousarray(images.reshape(-1, 1, 1, 28, 28))
    preds = np.empty(len(labels), np.int64)
    for i in range(len(labels)):
        ins_ptr = (ctypes.c_void_p * 1)(x[i].ctypes.data)
        if run(ins_ptr, outs_ptr, scratch_ptr) != 0:
            sys.exit(f"{name}_run failed on image {i}")
        preds[i] = out.argmax()
    one = os.path.join(tmp, name + ".one.npy")
    np.save(one, x[0])
    out = octet("run", base + ".so", "--input", f"Input3={one}", "--repeat", "3000", "--time")
    median_ms = float(out.split("time: median ")[1].split(" ms")[0])
    return float(np.mean(preds == labels)), median_ms / 1e3


def ort_accuracy(model, images, labels):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    y = np.concatenate([s.run(None, {"Input3": images[i:i + 1]})[0]
                        for i in range(len(labels))])
    times = []
    for _ in range(3000):
        t0 = time.perf_counter()
        s.run(None, {"Input3": images[:1]})
        times.append(time.perf_counter() - t0)
    return float(np.mean(y.argmax(1) == labels)), float(np.median(times))


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
        for name, sym, model in (("FP32", "mnist_fp32", MODEL), ("INT8 (QDQ)", "mnist_int8", qdq)):
            acc_c, sec_c = compiled_accuracy(model, images, labels, tmp, sym)
            acc, sec = octet_accuracy(model, x_file, labels, tmp)
            acc_ort, sec_ort = ort_accuracy(model, images.reshape(-1, 1, 28, 28), labels)
            rows.append((name, acc_c, sec_c, acc, sec, acc_ort, sec_ort))
        print("\nmnist-8 on the 9000-image evaluation split (top-1; ms: median latency of one\n"
              "image, one thread; `octet run` is the reference interpreter, ms per image)")
        print(f"{'model':<12} {'compiled':>9} {'ms':>7} {'octet run':>10} {'ms':>7} {'ORT':>8} {'ms':>7}")
        for name, acc_c, sec_c, acc, sec, acc_ort, sec_ort in rows:
            print(f"{name:<12} {acc_c:>9.2%} {sec_c * 1e3:>7.3f} {acc:>10.2%} {sec * 1e3:>7.3f} "
                  f"{acc_ort:>8.2%} {sec_ort * 1e3:>7.3f}")
        fp32, int8 = rows
        print(f"\nINT8 vs FP32, compiled by octet: accuracy {100 * (int8[1] - fp32[1]):+.2f} points, "
              f"time {int8[2] / fp32[2]:.2f}x; compiled INT8 vs ONNX Runtime INT8: time "
              f"{int8[2] / int8[6]:.2f}x")


if __name__ == "__main__":
    main()
