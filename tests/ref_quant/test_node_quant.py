"""Runs every ONNX backend node test of the quantization ops through
`octet run` and compares the outputs with the expected ones.

Tests: the folders named test_quantizelinear*, test_dequantizelinear*,
test_dynamicquantizelinear*, test_qlinearconv*, test_qlinearmatmul*,
test_matmulinteger*, test_convinteger* and test_basic_convinteger under
$OCTET_TESTDATA (Debian's libonnx-testdata) and
$OCTET_SHARED/onnx-node-tests/opset25.  Integer and float8/float4 outputs
must match bit for bit; float outputs too (DequantizeLinear is one float32
multiply, DynamicQuantizeLinear's scale one float32 division), NaN matching
NaN.  Exit status 1 if any test fails or none was found.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)

PREFIXES = (
    "test_quantizelinear", "test_dequantizelinear", "test_dynamicquantizelinear",
    "test_qlinearconv", "test_qlinearmatmul", "test_matmulinteger",
    "test_convinteger", "test_basic_convinteger",
)


def roots():
    testdata = os.environ.get("OCTET_TESTDATA", "/usr/share/libonnx-testdata/data/node")
    shared = need("onnx-node-tests/opset25")
    return [testdata, os.path.join(shared, "onnx-node-tests", "opset25")]


def safe_name(name):
    out = []
    for i, c in enumerate(name or "output"):
        ok = c.isascii() and (c.isalnum() or c in "_-" or (c == "." and i > 0))
        out.append(c if ok else "_")
    return "".join(out)


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def same(expected, got):
    """Exact comparison of two TensorProtos' values; returns an error text or None."""
    if expected.data_type != got.data_type:
        return f"dtype {got.data_type}, expected {expected.data_type}"
    e, g = numpy_helper.to_array(expected), numpy_helper.to_array(got)
    if e.shape != g.shape:
        return f"shape {g.shape}, expected {e.shape}"
    if e.dtype in (np.float16, np.float32, np.float64):
        bad = ~((e == g) | (np.isnan(e) & np.isnan(g)))
    elif e.dtype.itemsize == 1:
        # 8-bit integers, float8 and the unpacked 4/2-bit types: compare the
        # codes, so NaN codes and signed zeros count
        bad = e.view(np.uint8) != g.view(np.uint8)
    else:
        bad = e != g
    if bad.any():
        idx = np.argwhere(bad)[:5]
        pairs = ", ".join(f"{tuple(i)}: got {g[tuple(i)]!r} expected {e[tuple(i)]!r}" for i in idx)
        return f"{int(bad.sum())} of {e.size} elements differ ({pairs})"
    return None


def run_case(octet, folder, tmp):
    model = onnx.load(os.path.join(folder, "model.onnx"))
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = [i.name for i in g.input if i.name not in inits]
    outputs = [o.name for o in g.output]
    sets = sorted(d for d in os.listdir(folder) if d.startswith("test_data_set_"))
    if not sets:
        return "no test data"
    for s in sets:
        sd = os.path.join(folder, s)
        args = [octet, "run", os.path.join(folder, "model.onnx")]
        for i, name in enumerate(inputs):
            args += ["--input", f"{name}={os.path.join(sd, f'input_{i}.pb')}"]
        outdir = os.path.join(tmp, os.path.basename(folder) + "_" + s)
        args += ["--output-dir", outdir, "--format", "pb"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return f"{s}: octet run exited {r.returncode}: {r.stderr.strip()[:500]}"
        for i, name in enumerate(outputs):
            expected = read_pb(os.path.join(sd, f"output_{i}.pb"))
            path = os.path.join(outdir, safe_name(name) + ".pb")
            if not os.path.exists(path):
                return f"{s}: output '{name}' not written"
            err = same(expected, read_pb(path))
            if err:
                return f"{s}: output '{name}': {err}"
    return None


def main():
    octet = os.environ.get("OCTET")
    if not octet:
        print("OCTET is not set", file=sys.stderr)
        return 1
    only = sys.argv[1:]
    cases = []
    for root in roots():
        if not os.path.isdir(root):
            print(f"missing test folder {root}", file=sys.stderr)
            return 1
        for name in sorted(os.listdir(root)):
            if name.startswith(PREFIXES) and (not only or any(o in name for o in only)):
                cases.append(os.path.join(root, name))
    if not cases:
        print("no node tests found", file=sys.stderr)
        return 1
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for folder in cases:
            err = run_case(octet, folder, tmp)
            label = os.path.join(os.path.basename(os.path.dirname(folder)), os.path.basename(folder))
            if err:
                failed += 1
                print(f"FAIL {label}: {err}")
            else:
                print(f"ok   {label}")
    print(f"{len(cases) - failed} of {len(cases)} quantization node tests pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
