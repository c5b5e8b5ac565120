"""ONNX backend node tests of the windowed and matrix-product ops (Conv,
ConvTranspose, Gemm, MatMul, MaxPool, AveragePool, GlobalAveragePool,
GlobalMaxPool) through `octet run`, with a tighter float tolerance than
the whole-suite conformance run: |got - want| <= 1e-6 + 1e-5 * |want|.

Tests listed in ORT_ORACLE store expected outputs rounded to 4 decimals
(the ONNX generator printed them that way), so they are checked against
ONNX Runtime's output on the same inputs instead.

Usage: node_tests.py [-v]   (env OCTET, OCTET_TESTDATA, OCTET_SHARED)
Exits non-zero if any test of these ops fails.
"""
import os
import re
import shutil
import sys
import tempfile

import onnx
import onnxruntime as ort
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
import conformance  # noqa: E402
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)

conformance.TOLERANCES["float32"] = (1e-6, 1e-5)
conformance.TOLERANCES["float64"] = (1e-12, 1e-9)

PATTERN = re.compile(r"^test_(conv|convtranspose|gemm|matmul|maxpool|averagepool|"
                     r"globalaveragepool|globalmaxpool|basic_conv|.*pool)")
ORT_ORACLE = {"test_averagepool_2d_ceil_last_window_starts_on_pad"}
SKIP = re.compile(r"^test_(convinteger|qlinear|matmulinteger|lppool|globallppool|maxunpool|maxroipool|roialign)")


def with_ort_outputs(test_dir, model):
    """A temporary copy of test_dir whose expected outputs come from ONNX
    Runtime on the same inputs."""
    tmp = tempfile.mkdtemp(prefix="octet_ortref_")
    os.symlink(os.path.join(test_dir, "model.onnx"), os.path.join(tmp, "model.onnx"))
    data = os.path.join(tmp, "test_data_set_0")
    os.mkdir(data)
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    feeds = {}
    for k, name in enumerate(names):
        f = os.path.join(test_dir, "test_data_set_0", "input_%d.pb" % k)
        os.symlink(f, os.path.join(data, "input_%d.pb" % k))
        feeds[name] = numpy_helper.to_array(onnx.load_tensor(f))
    sess = ort.InferenceSession(os.path.join(test_dir, "model.onnx"),
                                providers=["CPUExecutionProvider"])
    for k, arr in enumerate(sess.run(None, feeds)):
        onnx.save_tensor(numpy_helper.from_array(arr), os.path.join(data, "output_%d.pb" % k))
    return tmp


def main():
    octet = os.environ.get("OCTET", "build/octet")
    roots = [os.environ.get("OCTET_TESTDATA", "/usr/share/libonnx-testdata/data/node"),
             os.path.join(need("onnx-node-tests/opset25"), "onnx-node-tests", "opset25")]
    verbose = "-v" in sys.argv
    supported = conformance.ops_def_ops()
    passed = failed = skipped = 0
    for root in roots:
        for d in conformance.find_tests(root):
            name = os.path.basename(d)
            if not PATTERN.match(name) or SKIP.match(name):
                continue
            missing, _, model = conformance.classify(d, supported)
            if missing:
                skipped += 1
                if verbose:
                    print("SKIP %s: %s" % (d, ", ".join(missing)))
                continue
            if name in ORT_ORACLE:
                ref_dir = with_ort_outputs(d, model)
                try:
                    ok, why = conformance.run_one(octet, ref_dir, model)
                finally:
                    shutil.rmtree(ref_dir, ignore_errors=True)
            else:
                ok, why = conformance.run_one(octet, d, model)
            if ok:
                passed += 1
                if verbose:
                    print("ok   %s" % d)
            else:
                failed += 1
                print("FAIL %s: %s" % (d, why))
    print("%d passed, %d failed, %d skipped (unsupported ops)" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
