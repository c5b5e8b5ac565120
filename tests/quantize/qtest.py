"""Shared helpers for the quantization tests: paths, running octet, and
evaluating models with ONNX Runtime (graph optimizations at `basic`, so Q/DQ
are computed as the ONNX spec writes them)."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

OCTET = os.environ["OCTET"]
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models", "data/mnist", "data/imagenet-photos")
MODELS = os.path.join(SHARED, "models")
DATA = os.path.join(SHARED, "data")

failures = []


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def finish():
    print(f"{len(failures)} failed" if failures else "all checks passed")
    sys.exit(1 if failures else 0)


def octet(*args, expect=0):
    r = subprocess.run([OCTET, *map(str, args)], capture_output=True, text=True)
    if expect is not None and r.returncode != expect:
        print(r.stdout[-4000:], r.stderr[-4000:], sep="\n")
        raise SystemExit(f"octet {' '.join(map(str, args))}: exit {r.returncode}, expected {expect}")
    return r


def ort_session(path, level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_outputs(path, feeds_list, level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC):
    s = ort_session(path, level)
    return [s.run(None, f)[0] for f in feeds_list]


def safe_name(name):
    """The file name `octet run --output-dir` gives an output."""
    return "".join(c if c.isalnum() or c in "_-" or (c == "." and i) else "_"
                   for i, c in enumerate(name)) or "output"


def octet_each_sample(model, input_name, stacked, tmp):
    """Runs model once per sample of `stacked` (one more leading axis than
    the model input) with `octet run --each-sample`; returns the stacked
    first graph output."""
    inp = os.path.join(tmp, "samples.npy")
    np.save(inp, stacked)
    outdir = tempfile.mkdtemp(dir=tmp)
    octet("run", model, "--input", f"{input_name}={inp}", "--each-sample",
          "--output-dir", outdir, "--format=npy")
    first = onnx.load(model).graph.output[0].name
    return np.load(os.path.join(outdir, safe_name(first) + ".npy"))


def sqnr_db(ref, got):
    ref = np.asarray(ref, np.float64)
    got = np.asarray(got, np.float64)
    noise = np.sum((ref - got) ** 2)
    return float("inf") if noise == 0 else 10 * np.log10(np.sum(ref ** 2) / noise)


def mnist_eval():
    images = np.load(os.path.join(DATA, "mnist", "images_u8.npy"))[1000:]
    labels = np.load(os.path.join(DATA, "mnist", "labels_u8.npy"))[1000:]
    return images.astype(np.float32), labels


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)
