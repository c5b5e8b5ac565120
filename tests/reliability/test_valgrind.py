"""valgrind memcheck over the CLI: inspect, opt, run and quantize (two
calibration samples, with the report) of mnist-8.  Every command must exit
0 under valgrind with no memcheck error and no leak of any kind at exit
(--leak-check=full --errors-for-leak-kinds=all: still-reachable blocks count
too, except libLLVM's own load-time allocations and managed statics:
valgrind.supp), and its
output files must exist.

Usage: test_valgrind.py VALGRIND OCTET
"""
import os
import subprocess
import sys
import tempfile

VALGRIND, OCTET = sys.argv[1], sys.argv[2]
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models/mnist-8")
MNIST = os.path.join(SHARED, "models", "mnist-8")
MODEL = os.path.join(MNIST, "model.onnx")
VG = [VALGRIND, "--error-exitcode=99", "--leak-check=full",
      "--show-leak-kinds=all", "--errors-for-leak-kinds=all",
      "--track-origins=yes", "-q",
      "--suppressions=" + os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                       "valgrind.supp")]
failures = []

with tempfile.TemporaryDirectory() as d:
    cases = [
        ("inspect", ["inspect", MODEL, "--format=json", "-o", f"{d}/i.json"],
         ["i.json"]),
        ("opt", ["opt", MODEL, "-o", f"{d}/o.onnx"], ["o.onnx"]),
        ("run", ["run", MODEL, "--input",
                 f"Input3={MNIST}/test_data_set_0/input_0.pb",
                 "--output-dir", f"{d}/out"], ["out"]),
        ("quantize", ["quantize", MODEL, "--calib", MNIST, "--calib-samples",
                      "2", "-o", f"{d}/q.onnx", "--report", f"{d}/r.json",
                      "--progress=none"], ["q.onnx", "r.json"]),
        ("run on the quantized model", ["run", f"{d}/q.onnx", "--input",
                 f"Input3={MNIST}/test_data_set_1/input_0.pb"], []),
        ("bad input (truncated model)", ["opt", f"{d}/trunc.onnx", "-o",
                                        f"{d}/never.onnx"], None),
    ]
    os.mkdir(f"{d}/out")
    with open(MODEL, "rb") as f:
        data = f.read()
    with open(f"{d}/trunc.onnx", "wb") as f:
        f.write(data[: len(data) // 2])
    for label, args, files in cases:
        r = subprocess.run(VG + [OCTET] + args, capture_output=True, text=True,
                           timeout=1500)
        want_rc = 0 if files is not None else 2
        problems = []
        if r.returncode != want_rc:
            problems.append(f"exit {r.returncode}, expected {want_rc}")
        if "==" in r.stderr:  # valgrind's report lines start with ==PID==
            problems.append("valgrind reported:\n" + r.stderr[-3000:])
        for f in files or []:
            if not os.path.exists(os.path.join(d, f)):
                problems.append(f"no output {f}")
        if files is None and os.path.exists(f"{d}/never.onnx"):
            problems.append("an output was written for bad input")
        if problems:
            failures.append(label)
            print(f"FAIL {label}: " + "; ".join(problems))
        else:
            print(f"ok   {label}: exit {r.returncode}, no valgrind report")

if failures:
    print(f"{len(failures)} failures: {failures}")
    sys.exit(1)
