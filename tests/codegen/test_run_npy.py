"""examples/run_npy.c built with the C compiler against a compiled mnist-8
(object file + generated header + the octet_runtime library) and run on
the model's test input; its .npy output must match the reference
interpreter (`octet run`) within 1e-4 * max(1, max|want|)."""
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import load_tensor, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models/mnist-8")
BUILD = os.environ["OCTET_BUILD"]
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    model = os.path.join(SHARED, "models", "mnist-8", "model.onnx")
    x = numpy_helper.to_array(load_tensor(os.path.join(SHARED, "models", "mnist-8",
                                                       "test_data_set_0", "input_0.pb")))
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([cgutil.OCTET, "compile", model, "-o", os.path.join(d, "mnist"),
                        "--emit=obj,header"], check=True)
        exe = os.path.join(d, "run_npy")
        subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", d,
                        "-I", os.path.join(SRC, "runtime"), "-DOCTET_MODEL=mnist",
                        '-DOCTET_MODEL_HEADER="mnist.h"', os.path.join(SRC, "examples", "run_npy.c"),
                        os.path.join(d, "mnist.o"), os.path.join(BUILD, "liboctet_runtime.a"),
                        "-lm", "-o", exe], check=True)
        np.save(os.path.join(d, "x.npy"), x)
        out = subprocess.run([exe, os.path.join(d, "x.npy"), "-o", os.path.join(d, "y.npy")],
                             check=True, capture_output=True, text=True).stdout
        print(out, end="")
        got = np.load(os.path.join(d, "y.npy"))
        want = cgutil.run_ref(model, [("Input3", x)])["Plus214_Output_0"]
        ok, how = cgutil.close(got, want, 1e-4)
        print("run_npy vs octet run:", "ok" if ok else "FAIL", how)
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
