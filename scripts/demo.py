"""The main job (run by scripts/quickstart.sh): quantize and compile the
bundled default model, models/fashion-cnn/fashion-cnn.onnx (a small CNN
trained by tools/train_fashion_cnn.py), with nothing beside the repository.

Data come from Debian's dataset-fashion-mnist package (scripts/setup.sh
installs it), normalised exactly as the training script does (pixel / 255):
the first 1000 images of the train split calibrate, the 10000 images of the
test split evaluate.  Steps:

  1. the data as .npy files in out/demo/fashion-cnn/ (kept, like everything
     the job writes; the folder is printed at the end);
  2. `octet quantize` to INT8 (the default) and to FP8 (--precision=fp8),
     calibrated on the 1000 images: two QDQ ONNX models;
  3. `octet compile --emit=so,header` of the FP32, INT8 and FP8 models to
     shared libraries (batch 1);
  4. each compiled library runs over the 10000 test images through its
     generated NAME_run entry point (ctypes), each ONNX model in ONNX Runtime;
  5. one table: precision, engine, top-1 accuracy, file size (the .so for
     Octet, the .onnx for ONNX Runtime), median latency of one image on one
     thread (`octet run NAME.so --repeat N --time` for Octet, so no Python is
     in the loop; the Python API for ONNX Runtime, default graph
     optimizations), and speed relative to FP32 on the same engine.

It reads nothing outside the repository and the packages the setup
installs.

    .venv/bin/python scripts/demo.py [--out out/demo] [--repeat N]
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import train_fashion_cnn as fashion  # noqa: E402  (the idx reader and the normalisation)

OCTET = os.path.join(ROOT, "build", "octet")
BUNDLED = os.path.join(ROOT, "models", "fashion-cnn", "fashion-cnn.onnx")


def octet(*args):
    r = subprocess.run([OCTET, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"octet {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def save_npy(path, array):
    tmp = path + ".tmp.npy"
    np.save(tmp, array)
    os.replace(tmp, path)


def compiled_run(base, name, images, repeat):
    """Runs NAME.so (NAME_run: inputs, outputs, scratch; it allocates
    nothing) once per image; returns (predictions, median seconds of one
    image measured by `octet run --repeat --time`)."""
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
    x = np.ascontiguousarray(images[:, None])          # [N, 1, C, H, W]: batch-1 inputs
    preds = np.empty(len(images), np.int64)
    for i in range(len(images)):
        ins_ptr = (ctypes.c_void_p * 1)(x[i].ctypes.data)
        if run(ins_ptr, outs_ptr, scratch_ptr) != 0:
            sys.exit(f"{name}_run failed on image {i}")
        preds[i] = out.argmax()
    one = base + ".one.npy"
    save_npy(one, x[0])
    text = octet("run", base + ".so", "--input", f"{sig['inputs'][0]['name']}={one}",
                 "--repeat", str(repeat), "--time")
    return preds, float(text.split("time: median ")[1].split(" ms")[0]) / 1e3


def ort_run(model, input_name, images, repeat, basic=False):
    """ONNX Runtime, one thread: predictions over images (batch 1, as the
    compiled models run) and the median latency of one image.  basic: basic
    graph optimizations only (ORT's extended level fuses DQ-Conv-Q into
    QLinearConv also for float8, which its own type check then rejects)."""
    so = ort.SessionOptions()
    if basic:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    preds = np.empty(len(images), np.int64)
    for i in range(len(images)):
        preds[i] = s.run(None, {input_name: images[i:i + 1]})[0].argmax()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        s.run(None, {input_name: images[:1]})
        times.append(time.perf_counter() - t0)
    return preds, float(np.median(times))


def size_text(n):
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


def main_job(title, model, input_name, calib, images, labels, out, repeat):
    """Quantizes, compiles, evaluates and prints the table for one model.
    calib and images are float32 [N, C, H, W] as the model takes them."""
    os.makedirs(out, exist_ok=True)
    stem = title.replace("-", "_").replace(".", "_")      # a C identifier: the symbols' prefix
    calib_file = os.path.join(out, "calib.npy")
    save_npy(calib_file, calib)
    save_npy(os.path.join(out, "eval_images.npy"), images)
    save_npy(os.path.join(out, "eval_labels.npy"), labels)
    shape = "x".join(str(d) for d in (1,) + images.shape[1:])

    models = [("FP32", model)]
    for prec in ("int8", "fp8"):
        q = os.path.join(out, f"{stem}.{prec}.onnx")
        t0 = time.perf_counter()
        octet("quantize", model, "--calib", calib_file, f"--precision={prec}", "-o", q,
              "--progress=none", "--report", os.path.join(out, f"{stem}.{prec}.report.json"))
        print(f"  octet quantize --precision={prec}: {os.path.relpath(q, ROOT)} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        models.append((prec.upper(), q))

    rows = []
    for prec, path in models:
        name = f"{stem}_{prec.lower()}"
        base = os.path.join(out, name)
        t0 = time.perf_counter()
        octet("compile", path, "-o", base, "--emit=so,header",
              "--input-shape", f"{input_name}={shape}")
        print(f"  octet compile {prec}: {os.path.relpath(base, ROOT)}.so "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        preds, sec = compiled_run(base, name, images, repeat)
        rows.append((prec, "octet compiled", float(np.mean(preds == labels)),
                     os.path.getsize(base + ".so"), sec))
        preds, sec = ort_run(path, input_name, images, repeat, basic=prec == "FP8")
        rows.append((prec, "ONNX Runtime" + ("*" if prec == "FP8" else ""), float(np.mean(preds == labels)),
                     os.path.getsize(path), sec))

    fp32 = {engine: sec for prec, engine, _, _, sec in rows if prec == "FP32"}
    fp32["ONNX Runtime*"] = fp32["ONNX Runtime"]
    print(f"\n{title}: top-1 over {len(labels)} images; latency: median of one image, "
          f"one thread\n(ONNX Runtime's through its Python API); speed: FP32 latency / "
          f"this latency on the same engine")
    print(f"{'precision':<10} {'engine':<15} {'top-1':>7} {'file size':>11} "
          f"{'latency':>11} {'speed':>7}")
    for prec, engine, acc, size, sec in rows:
        print(f"{prec:<10} {engine:<15} {acc:>7.2%} {size_text(size):>11} "
              f"{sec * 1e6:>8.1f} us {fp32[engine] / sec:>6.2f}x")
    print("* basic graph optimizations: ORT's QDQ fusion does not take float8")
    with open(os.path.join(out, "results.json.tmp"), "w") as f:
        json.dump([dict(precision=p, engine=e, top1=a, file_bytes=s, latency_s=t)
                   for p, e, a, s, t in rows], f, indent=1)
    os.replace(os.path.join(out, "results.json.tmp"), os.path.join(out, "results.json"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "demo"))
    ap.add_argument("--repeat", type=int, default=2000, help="timed runs of one image")
    a = ap.parse_args()
    if not os.access(OCTET, os.X_OK):
        sys.exit(f"{OCTET} not found: run scripts/setup.sh first")
    t_start = time.perf_counter()

    train_x, _ = fashion.load_split(fashion.DATA, "train")
    test_x, test_y = fashion.load_split(fashion.DATA, "t10k")
    out = os.path.join(a.out, "fashion-cnn")
    print(f"fashion-cnn (models/fashion-cnn, Fashion-MNIST from {fashion.DATA}): "
          "calibration 1000 train images, evaluation 10000 test images", flush=True)
    main_job("fashion-cnn", BUNDLED, "input", fashion.normalise(train_x[:1000]),
             fashion.normalise(test_x), test_y.astype(np.int64), out, a.repeat)
    print(f"\nartifacts (data .npy, QDQ models, reports, .so and .h, results.json): "
          f"{os.path.relpath(out, os.getcwd())}/")

    print(f"\nmain job done in {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
