"""Deterministic output: the same inputs and options give byte-identical
files.  Runs `octet quantize` (model, JSON report, saved statistics) twice
on mnist-8 and squeezenet1.1, with the default options and with
--method=entropy --precision=auto --weights=per-tensor, each run in its own
fresh folder, and `octet opt` and `octet inspect --format=json` twice, and
compares every output byte for byte; also the standard output (the report
table).

Then the LLVM backend: `octet compile --emit=obj,so,asm,llvm,header
--report` twice, each in its own fresh folder, on mnist-8 FP32,
squeezenet1.1 FP32 and squeezenet1.1 quantized by `octet quantize`
(ImageNet calibration photos, 4 samples; INT8 and FP8, whose weights the
float kernels widen from bytes), comparing the object file, shared library,
assembly, LLVM IR, header, compile report and standard output byte for
byte.  Finally the compiled FP32 and quantized squeezenet1.1 libraries
run on one input with --threads 1 and --threads 2 and must write
byte-identical .npy outputs (splitting kernels over the pool must not
change a single bit).
"""
import contextlib
import os
import subprocess
import sys
import tempfile

OCTET = os.environ["OCTET"]
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models", "data/imagenet-photos")
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


def compare(label, fa, fb):
    if fa is None or fb is None:
        return False
    if fa.keys() != fb.keys():
        print(f"FAIL {label}: different files {list(fa)} vs {list(fb)}")
        failures.append(label)
        return False
    diff = [n for n in fa if fa[n] != fb[n]]
    if diff:
        print(f"FAIL {label}: differs between runs: {diff}")
        failures.append(label)
        return False
    sizes = ", ".join(f"{n} {len(v)} B" for n, v in fa.items())
    print(f"ok   {label}: identical ({sizes})")
    return True


def twice(label, args, a=None, b=None):
    """Runs args in folder a and in folder b (fresh temporary folders when
    not given; '@' in args stands for the folder) and compares the files
    each run leaves there.  True if both ran and every byte matches."""
    with contextlib.ExitStack() as stack:
        if a is None:
            a = stack.enter_context(tempfile.TemporaryDirectory())
        if b is None:
            b = stack.enter_context(tempfile.TemporaryDirectory())
        return compare(label, run_in(a, args), run_in(b, args))


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


# ---- compile: the artifacts, then the compiled code across thread counts --

def octet(args):
    r = subprocess.run([OCTET] + args, capture_output=True, timeout=900)
    if r.returncode != 0:
        print(f"FAIL: {' '.join(args)}: rc {r.returncode}: "
              f"{r.stderr.decode()[-400:]}")
        failures.append(" ".join(args))
    return r.returncode == 0


def npy_outputs(d):
    out = {}
    for n in sorted(os.listdir(d)):
        if n.endswith(".npy"):
            with open(os.path.join(d, n), "rb") as f:
                out[n] = f.read()
    return out


SQZ = os.path.join(SHARED, "models", "squeezenet1.1")
EMIT = ["--emit=obj,so,asm,llvm,header", "--report", "@/report.txt"]
with tempfile.TemporaryDirectory() as work:
    models = [("mnist-8 FP32",
               os.path.join(SHARED, "models", "mnist-8", "model.onnx"), False),
              ("squeezenet1.1 FP32", os.path.join(SQZ, "model.onnx"), True)]
    for precision in ("int8", "fp8"):
        q_model = os.path.join(work, f"squeezenet1.1-{precision}.onnx")
        if octet(["quantize", os.path.join(SQZ, "model.onnx"),
                  "--calib", os.path.join(SHARED, "data", "imagenet-photos", "calib_f32.npy"),
                  "--calib-samples", "4", f"--precision={precision}", "-o", q_model,
                  "--progress=none"]):
            models.append((f"squeezenet1.1 {precision.upper()}", q_model, True))
    for label, model, run_threads in models:
        # Two differently named fresh folders: the artifacts must not embed
        # the output folder (the .so is linked by `cc -shared` from a
        # temporary object; neither its path nor the output path may show).
        a = os.path.join(work, label.replace(" ", "_") + "_a")
        b = os.path.join(work, label.replace(" ", "_") + "_b")
        os.mkdir(a)
        os.mkdir(b)
        same = twice(f"{label} compile", ["compile", model, "-o", "@/m"] + EMIT,
                     a, b)
        if not (same and run_threads):
            continue
        # the compiled library on 1 and on 2 threads, same input
        inp = "data_0=" + os.path.join(SQZ, "test_data_set_0", "input_0.pb")
        outs = {}
        for t in (1, 2):
            d = os.path.join(a, f"run_threads{t}")
            os.mkdir(d)
            if octet(["run", os.path.join(a, "m.so"), "--input", inp,
                      "--threads", str(t), "--output-dir", d]):
                outs[t] = npy_outputs(d)
        if len(outs) == 2:
            if not outs[1]:
                print(f"FAIL {label} run: no .npy output written")
                failures.append(f"{label} run")
            else:
                compare(f"{label} run --threads 1 vs 2", outs[1], outs[2])

if failures:
    print(f"{len(failures)} failures: {failures}")
    sys.exit(1)
