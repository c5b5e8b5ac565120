"""Runs the real models in ../shared/models through `octet run` and ONNX
Runtime (FP32, CPU) on the same random-but-plausible inputs (or the
model's test_data_set_N inputs when present) and checks
max|octet - ort| / max|ort| <= 1e-4 for every output.

Usage: model_check.py [MODEL_DIR...]   (env OCTET, OCTET_SHARED)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models")
OCTET = os.environ.get("OCTET", "build/octet")
# model folder -> concrete input shape for dynamic dims, and value range
MODELS = {
    "squeezenet1.1": ([1, 3, 224, 224], (-120.0, 130.0)),
    "mnist-8": ([1, 1, 28, 28], (0.0, 255.0)),
    "cifar10-cnn": ([2, 3, 32, 32], (-1.0, 1.0)),
    "iris-mlp": ([5, 4], (0.0, 8.0)),
    "mnist-mlp-bn": ([1, 784], (0.0, 1.0)),
    "ppocr-cls": ([2, 3, 48, 192], (-1.0, 1.0)),
    "ultraface-rfb320": ([1, 3, 240, 320], (-1.0, 1.0)),
}


def inputs_for(model_dir, model, shape, rng_range):
    inits = {i.name for i in model.graph.initializer}
    ins = [i for i in model.graph.input if i.name not in inits]
    data = os.path.join(model_dir, "test_data_set_0")
    out = {}
    for k, vi in enumerate(ins):
        f = os.path.join(data, "input_%d.pb" % k)
        if os.path.exists(f):
            out[vi.name] = numpy_helper.to_array(onnx.load_tensor(f))
        else:
            rng = np.random.default_rng(1234 + k)
            out[vi.name] = rng.uniform(*rng_range, size=shape).astype(np.float32)
    return out


def check(name):
    model_dir = os.path.join(SHARED, "models", name)
    path = os.path.join(model_dir, "model.onnx")
    model = onnx.load(path)
    shape, rr = MODELS[name]
    feeds = inputs_for(model_dir, model, shape, rr)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    tmp = tempfile.mkdtemp(prefix="octet_models_")
    args = [OCTET, "run", path, "--output-dir", tmp, "--format=npy"]
    for k, v in feeds.items():
        f = os.path.join(tmp, "in_%s.npy" % len(args))
        np.save(f, v)
        args += ["--input", "%s=%s" % (k, f)]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        return False, "exit %d: %s" % (p.returncode, p.stderr.strip()[-300:])
    worst = 0.0
    for o, w in zip(model.graph.output, want):
        f = os.path.join(tmp, o.name + ".npy")
        if not os.path.exists(f):
            return False, "output %s not written" % o.name
        g = np.load(f)
        if g.shape != w.shape:
            return False, "output %s shape %s vs %s" % (o.name, g.shape, w.shape)
        err = float(np.max(np.abs(g.astype(np.float64) - w))) / max(float(np.max(np.abs(w))), 1e-30)
        worst = max(worst, err)
    return worst <= 1e-4, "max err / max |value| = %.3g" % worst


def main():
    names = sys.argv[1:] or sorted(MODELS)
    bad = 0
    for n in names:
        ok, why = check(n)
        print("%s %s: %s" % ("ok  " if ok else "FAIL", n, why))
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
