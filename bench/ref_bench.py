#!/usr/bin/env python3
"""SqueezeNet 1.1 single-image latency: the reference interpreter
(`octet run --repeat N --time`) against ONNX Runtime on one thread.

Rounds alternate between the two engines (interleaved, so machine noise hits
both alike); each round reports a median; the script prints the median of
the rounds for each and the ratio octet / onnxruntime.  Not a test.

usage: bench/ref_bench.py [--octet build/octet] [--rounds 5] [--repeat 5]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--octet", default=os.environ.get("OCTET", os.path.join(ROOT, "build", "octet")))
    ap.add_argument("--shared", default=os.environ.get("OCTET_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    model = os.path.join(args.shared, "models", "squeezenet1.1", "model.onnx")
    x = numpy_helper.to_array(onnx.load_tensor(os.path.join(
        args.shared, "models", "squeezenet1.1", "test_data_set_0", "input_0.pb")))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x})  # warm-up
    octet_ms, ort_ms = [], []
    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "x.npy")
        np.save(f, x)
        for r in range(args.rounds):
            p = subprocess.run([args.octet, "run", model, "--input", "%s=%s" % (name, f),
                                "--repeat", str(args.repeat), "--time"],
                               capture_output=True, text=True, check=True)
            octet_ms.append(float(re.search(r"median ([0-9.]+) ms", p.stdout).group(1)))
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                sess.run(None, {name: x})
                times.append((time.perf_counter() - t0) * 1e3)
            ort_ms.append(statistics.median(times))
            print("round %d: octet %.2f ms, onnxruntime %.2f ms" % (r, octet_ms[-1], ort_ms[-1]))
    o, n = statistics.median(octet_ms), statistics.median(ort_ms)
    print("squeezenet1.1 1x3x224x224: octet run median %.2f ms, onnxruntime (1 thread) "
          "median %.2f ms, ratio %.2fx" % (o, n, o / n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
