"""CTest entry: runs one node-test suite (see conformance.py) and fails if
fewer than 97% of its supported tests pass or if any quantization test
(QuantizeLinear, DequantizeLinear, QLinear*, *Integer, DynamicQuantizeLinear,
Cast to or from float8/float4/int4/int2) fails.

usage: run_suite.py testdata|opset25
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance  # noqa: E402


def main():
    which = sys.argv[1]
    octet = os.environ["OCTET"]
    if which == "testdata":
        root = os.environ.get("OCTET_TESTDATA", "/usr/share/libonnx-testdata/data/node")
    else:
        from shared_data import need
        root = os.path.join(need("onnx-node-tests/opset25"), "onnx-node-tests", "opset25")
    if not conformance.find_tests(root):
        print("no node tests under %s" % root)
        return 1
    results = conformance.run_suite(octet, [(which, root)], jobs=2)
    for r in results:
        if r["status"] == "fail":
            print("FAIL %s%s: %s" % (r["name"], " [quantization]" if r["critical"] else "", r["reason"]))
    ok, msg, crit = conformance.verdict(results)
    passed = sum(r["status"] == "pass" for r in results)
    failed = sum(r["status"] == "fail" for r in results)
    print(msg)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
