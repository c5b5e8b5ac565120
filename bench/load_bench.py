"""Load benchmark: `octet opt MODEL -o /dev/null` (read, pre-scan, unpack,
build the IR, verify, encode; /dev/null is written directly, without the
temporary file and fsync) against Python's onnx.load of the same file, run
interleaved several times.  Prints the median times, their ratio, and
octet's peak RSS as a multiple of the file size.  Not a test: no
thresholds.

usage: bench/load_bench.py [MODEL] [--runs N] [--octet PATH]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import onnx


def octet_run(octet, model, args=None):
    """Wall time and peak RSS (bytes) of one octet process, measured by
    /usr/bin/time (a small parent: RSS measured through a fork of this Python
    process would include the copy of Python itself)."""
    args = args or ["opt", model, "-o", "/dev/null"]
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", octet, *args],
                       capture_output=True, text=True)
    dt = time.perf_counter() - t0
    rss = [l for l in r.stderr.splitlines() if l.startswith("maxrss_kb=")]
    if args[0] == "opt" and args[1] == model and r.returncode != 0:
        sys.exit(f"octet opt failed on {model}: {r.stderr}")
    return dt, int(rss[-1].split("=")[1]) * 1024


def python_load(model):
    t0 = time.perf_counter()
    onnx.load(model)
    return time.perf_counter() - t0


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shared = os.environ.get("OCTET_SHARED", os.path.join(root, "..", "shared"))
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?",
                    default=os.path.join(shared, "models", "squeezenet1.1", "model.onnx"))
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--octet", default=os.environ.get("OCTET", os.path.join(root, "build", "octet")))
    a = ap.parse_args()
    size = os.path.getsize(a.model)
    octet_t, py_t, rss, spawn_t = [], [], [], []
    octet_run(a.octet, a.model)  # warm the page cache
    python_load(a.model)
    for _ in range(a.runs):
        dt, peak = octet_run(a.octet, a.model)
        octet_t.append(dt)
        rss.append(peak)
        py_t.append(python_load(a.model))
        spawn_t.append(octet_run(a.octet, a.model, ["--version"])[0])
    mo, mp = statistics.median(octet_t), statistics.median(py_t)
    ms = statistics.median(spawn_t)
    # Baseline: octet failing fast on a missing file (process and libraries,
    # no model), so the second multiple counts the model's memory only.
    _, base = octet_run(a.octet, a.model, ["opt", "/nonexistent.onnx", "-o", "/dev/null"])
    print(f"model: {a.model} ({size / 1e6:.2f} MB), {a.runs} interleaved runs")
    print(f"octet opt (load+verify+save, whole process): median {mo * 1e3:.1f} ms")
    print(f"python onnx.load (in process):               median {mp * 1e3:.1f} ms")
    print(f"process start (octet --version, same spawn path): median {ms * 1e3:.1f} ms")
    print(f"ratio octet / onnx.load: {mo / mp:.2f} whole process, "
          f"{(mo - ms) / mp:.2f} without process start")
    peak = max(rss)
    print(f"octet peak RSS: {peak / 1e6:.1f} MB = {peak / size:.2f} x file size "
          f"({(peak - base) / size:.2f} x above the {base / 1e6:.1f} MB baseline of an empty run)")


if __name__ == "__main__":
    main()
