#!/usr/bin/env python3
"""`octet quantize` of mnist-8 on the 1000-image calibration split, with
the calibration samples run by the reference interpreter (--engine=ref)
against the graph compiled in-process by the LLVM backend (--engine=jit).

Wall-clock time of the whole command (load, both calibration passes,
rewrite, save, and the report's FP32-vs-QDQ measurement, which runs the
reference interpreter for both engines).  Rounds alternate between the
engines (interleaved, so machine noise hits both alike); the script prints
each engine's median and the ratio ref / jit.  Not a test: run by hand.

usage: bench/calib_bench.py [--octet build/octet] [--rounds 3] [-- EXTRA QUANTIZE ARGS]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--octet", default=os.environ.get("OCTET", os.path.join(ROOT, "build", "octet")))
    ap.add_argument("--shared", default=os.environ.get("OCTET_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("extra", nargs="*", help="more `octet quantize` options")
    args = ap.parse_args()
    model = os.path.join(args.shared, "models", "mnist-8", "model.onnx")
    calib = os.path.join(args.shared, "data", "mnist", "calib_1000_f32.npy")
    times = {"ref": [], "jit": []}
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            for engine in ("ref", "jit"):
                cmd = [args.octet, "quantize", model, "--calib", calib,
                       "-o", os.path.join(d, engine + ".onnx"), "--progress=none",
                       "--engine=" + engine, *args.extra]
                t0 = time.perf_counter()
                p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                dt = time.perf_counter() - t0
                if p.returncode:
                    sys.exit("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr))
                times[engine].append(dt)
                print("round %d %s: %.3f s" % (r + 1, engine, dt), flush=True)
    med = {e: statistics.median(t) for e, t in times.items()}
    print("median over %d rounds: ref %.3f s, jit %.3f s, ref/jit %.2f"
          % (args.rounds, med["ref"], med["jit"], med["ref"] / med["jit"]))


if __name__ == "__main__":
    main()
