"""The public C API against the command line, on mnist-8.

examples/quantize_compile.c is built against include/octet/octet.h alone.
It hands 20 calibration samples to oct_quantize one at a time through the
sample callback, compiles the result and runs it in-process (JIT).  This
test checks that:
 - its QDQ model is byte for byte the one `octet quantize` writes from the
   same 20 samples;
 - its in-process outputs equal those of the .so that `octet compile`
   makes of the CLI's model, run by `octet run`;
 - ONNX Runtime on the QDQ model agrees (same top-1, close logits);
 - a missing model is exit 2 with a diagnostic naming the file.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

OCTET = os.environ["OCTET"]
SHARED = os.environ.get("OCTET_SHARED", "../shared")
PROG = sys.argv[1]
MODEL = os.path.join(SHARED, "models", "mnist-8", "model.onnx")
CALIB = os.path.join(SHARED, "data", "mnist", "calib_1000_f32.npy")

failures = 0


def check(cond, what):
    global failures
    print(("PASS " if cond else "FAIL ") + what)
    failures += not cond


def run(*args, expect=0):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if r.returncode != expect:
        print(r.stdout, r.stderr)
        raise SystemExit(f"FAIL {args[0]} exited {r.returncode}, expected {expect}")
    return r


def main():
    for path in (MODEL, CALIB):
        if not os.path.exists(path):
            print(f"SKIP: needs {path} (not found)")
            return 77
    calib = np.load(CALIB)[:20].astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        p = lambda name: os.path.join(tmp, name)
        calib.tofile(p("calib.f32"))
        np.save(p("calib.npy"), calib)
        np.save(p("sample0.npy"), calib[:1])

        r = run(PROG, MODEL, p("calib.f32"), "20", p("api"))
        got = np.array([float(x) for x in r.stdout.split()], dtype=np.float32)
        check(got.size == 10, f"the API run prints 10 logits ({got.size})")

        run(OCTET, "quantize", MODEL, "--calib", p("calib.npy"), "-o", p("cli.qdq.onnx"),
            "--progress=none")
        with open(p("api.qdq.onnx"), "rb") as a, open(p("cli.qdq.onnx"), "rb") as b:
            check(a.read() == b.read(), "the API's QDQ model equals octet quantize's byte for byte")
        check(os.path.exists(p("api.so")) and os.path.exists(p("api.h")),
              "oct_compile wrote api.so and api.h")

        os.mkdir(p("cli"))
        run(OCTET, "compile", p("cli.qdq.onnx"), "-o", p("cli/model"), "--emit=so")
        os.mkdir(p("outs"))
        run(OCTET, "run", p("cli/model.so"), "--input", f"Input3={p('sample0.npy')}",
            "--output-dir", p("outs"))
        outs = [f for f in os.listdir(p("outs")) if f.endswith(".npy")]
        want = np.load(os.path.join(p("outs"), outs[0])).reshape(-1)
        check(np.array_equal(got, want),
              f"in-process JIT outputs equal the CLI-compiled .so's (max diff "
              f"{np.abs(got - want).max() if got.shape == want.shape else 'shape'})")

        # Graph optimization "basic" computes Q/DQ as the spec writes them; at
        # the default level ONNX Runtime fuses them into its own int8 kernels,
        # which on CPUs without VNNI sum pairs in 16 bits and saturate.
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        sess = ort.InferenceSession(p("api.qdq.onnx"), so, providers=["CPUExecutionProvider"])
        ref = sess.run(None, {sess.get_inputs()[0].name: calib[:1]})[0].reshape(-1)
        check(int(np.argmax(ref)) == int(np.argmax(got)),
              "ONNX Runtime on the API's QDQ model gives the same top-1")
        check(np.allclose(got, ref, rtol=0.05, atol=0.05 * np.abs(ref).max()),
              f"ONNX Runtime's logits within 5% (max diff {np.abs(got - ref).max():.4f})")

        r = run(PROG, p("missing.onnx"), p("calib.f32"), "20", p("x"), expect=2)
        check("missing.onnx" in r.stderr, "a missing model is exit 2 naming the file")
    print(f"{failures} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
