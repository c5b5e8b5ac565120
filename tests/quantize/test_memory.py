"""Calibration memory does not grow with the number of samples: quantizing
squeezenet1.1 with 34 and with 340 calibration samples (the photo crops,
repeated ten times) peaks within 10% of each other.  Peak memory is GNU
time's maximum resident set size of octet (a memory bound, not a timing).
It is not read from this process's children: a child forked from this
Python, which holds the data, would count Python's pages as its own."""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from qtest import *  # noqa: E402,F403


def peak_kib(args, tmp):
    report = os.path.join(tmp, "time.txt")
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report, OCTET, *args],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"octet {' '.join(args)} failed:\n{r.stderr}")
    with open(report) as f:
        return int(f.read().split()[-1])


model = os.path.join(MODELS, "squeezenet1.1", "model.onnx")
photos = np.load(os.path.join(DATA, "imagenet-photos", "calib_f32.npy"))
with tempfile.TemporaryDirectory() as tmp:
    small, large = os.path.join(tmp, "c34.npy"), os.path.join(tmp, "c340.npy")
    np.save(small, photos)
    np.save(large, np.concatenate([photos] * 10))
    peaks = {}
    for n, path in ((34, small), (340, large)):
        peaks[n] = peak_kib(["quantize", model, "--calib", path, "-o",
                             os.path.join(tmp, f"q{n}.onnx"), "--progress=none"], tmp)
        print(f"{n} samples ({os.path.getsize(path) >> 20} MiB of data): peak RSS {peaks[n] / 1024:.1f} MiB")
    growth = peaks[340] / peaks[34] - 1
    check(abs(growth) < 0.10, f"peak memory with 340 vs 34 samples differs by {growth:.1%} (< 10%)")
finish()
