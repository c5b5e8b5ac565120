"""The ONNX backend node tests of If, Loop and Scan (Debian's
libonnx-testdata) through the interpreter, with conformance.py's
comparison: the tensor ones must pass; the sequence and optional ones must
be classified out of scope and refused with a diagnostic (exit 2 or 3),
never a crash."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
import conformance  # noqa: E402

NODE = os.environ.get("OCTET_TESTDATA") or "/usr/share/libonnx-testdata/data/node"
if not os.path.isdir(os.path.join(NODE, "test_if")):
    NODE = "/usr/share/libonnx-testdata/data/node"
PASS = ["test_if", "test_loop11", "test_scan9_sum", "test_scan_sum"]
REFUSED = ["test_if_seq", "test_if_opt", "test_loop13_seq", "test_loop16_seq_none"]

if not os.path.isdir(os.path.join(NODE, "test_if")):
    print("SKIP: the ONNX node tests (libonnx-testdata) are not installed")
    sys.exit(77)
octet = os.environ["OCTET"]
supported = conformance.ops_def_ops()
bad = []
for name in PASS + REFUSED:
    d = os.path.join(NODE, name)
    if not os.path.isdir(d):
        print("missing", name)
        continue
    missing, _, model = conformance.classify(d, supported)
    ok, why = conformance.run_one(octet, d, model)
    if name in PASS:
        good = ok and not missing
    else:
        # classified out of scope, and refused by octet with a diagnostic
        # (exit 3 on the body's type, or exit 2 on the sequence input file)
        good = not ok and why.startswith(("exit 2:", "exit 3:")) and \
            "non-tensor" in " ".join(missing)
    print("ok  " if good else "FAIL", name, "passes" if ok else why, missing or "")
    if not good:
        bad.append(name)
if bad:
    print("failed:", ", ".join(bad))
    sys.exit(1)
