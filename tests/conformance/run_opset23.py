"""CTest entry conformance_opset23_transformer_ops: the ONNX backend node
tests of RMSNormalization, RotaryEmbedding and Attention, generated at test
time from the pinned onnx package (its onnx.backend.test.case.node modules;
the tests are not in libonnx-testdata nor committed), run through the
interpreter (`octet run`) and the compiled path (`octet run --jit`) with
conformance.py's tolerances.  Every test must pass both ways, except those
in EXPECTED_FAILURES (none today).  The `_expanded` variants (the function
bodies, other ops) are left out: they test those ops, not these.

usage: run_opset23.py [DIR]   (DIR: where to write the tests; default a
temporary folder under $OCTET_BUILD, removed afterwards)
"""
import importlib
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance  # noqa: E402

MODULES = ("rmsnormalization", "rotaryembedding", "attention")
OPS = {"RMSNormalization", "RotaryEmbedding", "Attention"}
# (test name) -> why it may fail; a listed test that passes fails this test.
EXPECTED_FAILURES = {}


def _write_tensor(path, value, name):
    from onnx import TensorProto, numpy_helper
    t = value if isinstance(value, TensorProto) else numpy_helper.from_array(value, name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def generate(out):
    """Writes one folder per node test of OPS into out; returns the count."""
    import onnx.backend.test.case.node as node_cases
    for m in MODULES:
        importlib.import_module("onnx.backend.test.case.node." + m)
    count = 0
    for case in node_cases._NodeTestCases:
        ops = {n.op_type for n in case.model.graph.node}
        if case.name.endswith("_expanded") or not ops <= OPS:
            continue
        d = os.path.join(out, case.name)
        os.makedirs(d)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        for k, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, "test_data_set_%d" % k)
            os.makedirs(ds)
            for j, v in enumerate(inputs):
                _write_tensor(os.path.join(ds, "input_%d.pb" % j), v,
                              case.model.graph.input[j].name)
            for j, v in enumerate(outputs):
                _write_tensor(os.path.join(ds, "output_%d.pb" % j), v,
                              case.model.graph.output[j].name)
        count += 1
    return count


def main():
    octet = os.environ["OCTET"]
    keep = len(sys.argv) > 1
    root = sys.argv[1] if keep else tempfile.mkdtemp(
        prefix="opset23_node_", dir=os.environ.get("OCTET_BUILD") or None)
    try:
        if keep and os.path.isdir(root):
            shutil.rmtree(root)
        os.makedirs(root, exist_ok=True)
        n = generate(root)
        print("%d node tests generated under %s" % (n, root))
        if n < 60:
            print("FAIL: expected the attention, rotary and RMS node tests (got %d)" % n)
            return 1
        ok = True
        for jit in (False, True):
            how = "compiled" if jit else "interpreter"
            results = conformance.run_suite(octet, [("opset23", root)], jobs=2, jit=jit)
            passed = 0
            for r in results:
                expected = r["name"] in EXPECTED_FAILURES
                if r["status"] == "pass":
                    passed += 1
                    if expected:
                        ok = False
                        print("UNEXPECTED PASS (%s) %s: take it off EXPECTED_FAILURES"
                              % (how, r["name"]))
                elif not expected:
                    ok = False
                    print("FAIL (%s) %s: %s" % (how, r["name"], r["reason"]))
            print("%s: %d of %d pass" % (how, passed, len(results)))
        return 0 if ok else 1
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
