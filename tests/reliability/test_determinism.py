"""Deterministic output: the same inputs and options give byte-identical
files.  Runs `octet quantize` (model, JSON report, saved statistics) twice
on mnist-8 and squeezenet1.1, with the default options and with
--method=entropy --precision=auto --weights=per-tensor, each run in its own
fresh folder, and `octet opt` and `octet inspect --format=json` twice, and
compares every output byte for byte; also the standard output (the report
table).
"""
import os
import subprocess
import sys
import tempfile

OCTET = os.environ["OCTET"]
SHARED = os.environ["OCTET_SHARED"]
failures = []


def run_in(d, args):
    r = subprocess.run([OCTET] + [a.replace("@", d) for a in args],
                       capture_output=True, timeout=900)
    if r.returncode != 0:
        print(f"FAIL: {' '.join(args)}: rc {r.returncode}: "
              f"{r.stderr.decode()[-400:]}")
        failures.append(" ".join(args))
        return None
    files = {}
    for n in sorted(os.listdir(d)):
        with open(os.path.join(d, n), "rb") as f:
            files[n] = f.read()
    files["<stdout>"] = r.stdout
    return files


def twice(label, args):
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        fa, fb = run_in(a, args), run_in(b, args)
        if fa is None or fb is None:
            return
        if fa.keys() != fb.keys():
            print(f"FAIL {label}: different files {list(fa)} vs {list(fb)}")
            failures.append(label)
            return
        diff = [n for n in fa if fa[n] != fb[n]]
        if diff:
            print(f"FAIL {label}: differs between runs: {diff}")
            failures.append(label)
        else:
            sizes = ", ".join(f"{n} {len(v)} B" for n, v in fa.items())
            print(f"ok   {label}: identical ({sizes})")


for name in ("mnist-8", "squeezenet1.1"):
    model = os.path.join(SHARED, "models", name, "model.onnx")
    calib = os.path.join(SHARED, "models", name)
    base = ["quantize", model, "--calib", calib, "-o", "@/q.onnx",
            "--report", "@/r.json", "--save-stats", "@/s.json",
            "--progress=none"]
    twice(f"{name} quantize default", base)
    twice(f"{name} quantize entropy/auto/per-tensor",
          base + ["--method=entropy", "--precision=auto",
                  "--weights=per-tensor"])
    twice(f"{name} opt", ["opt", model, "-o", "@/o.onnx"])
    twice(f"{name} inspect json", ["inspect", model, "--format=json",
                                   "-o", "@/i.json"])

if failures:
    print(f"{len(failures)} failures: {failures}")
    sys.exit(1)
