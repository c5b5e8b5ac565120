"""CTest entry conformance_compiled_node_tests: the ONNX node tests of both
suites (libonnx-testdata, and shared/onnx-node-tests/opset25 when present)
through the compiled path (`octet run --jit`, conformance.py) and through
the interpreter, and fails

  - if fewer than MIN_COMPILED_RATE of the tests the interpreter passes
    also pass compiled (the floor: near today's figure, raised as lowerings
    land; issue 13 asks for 97%);
  - if a test of an op with a data-dependent output length (NonZero,
    NonMaxSuppression, Unique: compiled with bounded outputs, issue 19)
    or of control flow (If, Loop, Scan, opset-8 Scan and a Loop unrolled
    at compile time included) that the interpreter passes fails compiled;
  - if any QuantizeLinear / DequantizeLinear / QLinear* / *Integer /
    DynamicQuantizeLinear test (conformance.qdq_family) fails compiled,
    unless it is listed in EXPECTED_QDQ_FAILURES;
  - if a test listed in EXPECTED_QDQ_FAILURES passes compiled (take it off
    the list), so that the list only shrinks.

usage: run_compiled.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance  # noqa: E402

# Compiled passes / interpreter passes, both suites together.  Measured on
# 2026-12-06: 333 of 1167 (28.5%) before the lowerings of issue 13, 1020 of
# 1167 (87.4%) after them, 1136 of 1167 (97.3%) once
# the JIT folded geometry inputs and N-D pooling, Indices, run-time
# BatchNormalization, integer Clip, Dropout's mask and Constant outputs
# compiled, 1167 of 1167 (100%; docs/conformance.md) with every Q/DQ
# format compiled too; 1237 of 1252 (98.8%) with Einsum, DFT and STFT
# compiled and the 15 tests of NonZero, NonMaxSuppression and Unique
# interpreted only; 1257 of 1278 (98.4%) once the interpreter ran If, Loop
# and Scan (6 node tests), which had no lowering then (now compiled:
# test_if and test_scan9_sum pass, test_loop11 and opset-8 test_scan_sum
# are refused, docs/compile.md); the floor then left the 15 data-dependent
# tests out (1257 of 1263, 99.5%).  With those compiled (bounded output
# lengths, lower_dynlen.c) nothing is left out: 1276 of 1278 (99.8%;
# 740 of 742 with the libonnx-testdata suite alone), and 1278 of 1278 once
# opset-8 Scan compiled and Loops whose body's shapes change with the
# iteration were unrolled (test_scan_sum, test_loop11), docs/conformance.md.
# 97.5% is above the 97% issue 13 asks for, with a margin for a float
# tolerance on another CPU's kernel variant.
MIN_COMPILED_RATE = 0.975

# ---- EXPECTED_QDQ_FAILURES: QDQ-family tests that do not pass compiled yet.
# (suite, test) -> why.  Every entry is a gap to close (issue 13 wants them
# all passing); empty this list as the lowerings land: a listed test that
# passes makes this test fail until its entry is removed.
EXPECTED_QDQ_FAILURES = {}
# ---- end of EXPECTED_QDQ_FAILURES


# The node tests of the ops with a data-dependent output length, and of
# control flow: each must pass compiled when the interpreter passes it.
DATA_LENGTH_PREFIXES = ("test_nonzero", "test_nonmaxsuppression", "test_unique")
CONTROL_FLOW_PREFIXES = ("test_if", "test_loop", "test_scan")


def suites():
    """(name, folder) of the suites present; testdata is required."""
    out = [("testdata", os.environ.get("OCTET_TESTDATA", "/usr/share/libonnx-testdata/data/node"))]
    shared = os.environ.get("OCTET_SHARED", "")
    opset25 = os.path.join(shared, "onnx-node-tests", "opset25")
    if conformance.find_tests(opset25):
        out.append(("opset25", opset25))
    else:
        print("note: %s not found: the opset25 suite is left out" % opset25)
    return out


def check(interp, compiled, min_rate=MIN_COMPILED_RATE, expected=None):
    """(ok, lines): the floor, QDQ-family and expected-failure criteria on
    two result lists of conformance.run_suite (same tests)."""
    expected = EXPECTED_QDQ_FAILURES if expected is None else expected
    by_key = {(r["suite"], r["name"]): r for r in compiled}
    lines, ok = [], True
    interp_pass = [(r["suite"], r["name"]) for r in interp if r["status"] == "pass"]
    # Data-dependent output lengths (IR_OPF_DATA_LENGTH in ops.def): every
    # such test the interpreter passes must pass compiled.
    data_length = [k for k in interp_pass if k[1].startswith(DATA_LENGTH_PREFIXES)]
    for k in data_length:
        if by_key[k]["status"] != "pass":
            ok = False
            lines.append("FAIL %s/%s [data-dependent length]: %s" %
                         (k[0], k[1], by_key[k]["reason"]))
    lines.append("%d tests of NonZero, NonMaxSuppression and Unique: %d pass compiled" %
                 (len(data_length), sum(by_key[k]["status"] == "pass" for k in data_length)))
    control = [k for k in interp_pass if k[1].startswith(CONTROL_FLOW_PREFIXES)]
    for k in control:
        if by_key[k]["status"] != "pass":
            ok = False
            lines.append("FAIL %s/%s [control flow]: %s" % (k[0], k[1], by_key[k]["reason"]))
    lines.append("%d tests of If, Loop and Scan: %d pass compiled" %
                 (len(control), sum(by_key[k]["status"] == "pass" for k in control)))
    both = [k for k in interp_pass if by_key[k]["status"] == "pass"]
    rate = len(both) / len(interp_pass) if interp_pass else 0.0
    for suite in sorted({k[0] for k in interp_pass}):
        n_i = sum(k[0] == suite for k in interp_pass)
        n_c = sum(k[0] == suite for k in both)
        lines.append("%s: %d of the %d tests the interpreter passes pass compiled (%.1f%%)" %
                     (suite, n_c, n_i, 100.0 * n_c / n_i))
    lines.append("all: %d of %d (%.1f%%); floor %.1f%%" %
                 (len(both), len(interp_pass), 100 * rate, 100 * min_rate))
    if not interp_pass or rate < min_rate:
        ok = False
        lines.append("FAIL: compiled pass rate %.1f%% is below the floor %.1f%%" %
                     (100 * rate, 100 * min_rate))
    for r in compiled:
        key = (r["suite"], r["name"])
        if not r.get("qdq") or r["status"] == "unsupported":
            continue
        if r["status"] == "fail" and key not in expected:
            ok = False
            lines.append("FAIL %s/%s [quantization]: %s" % (key[0], key[1], r["reason"]))
        elif r["status"] == "fail":
            lines.append("expected failure %s/%s: %s" % (key[0], key[1], expected[key]))
        elif key in expected:
            ok = False
            lines.append("FAIL %s/%s now passes compiled: remove it from "
                         "EXPECTED_QDQ_FAILURES" % key)
    return ok, lines


def main():
    octet = os.environ["OCTET"]
    roots = suites()
    if not conformance.find_tests(roots[0][1]):
        print("no node tests under %s" % roots[0][1])
        return 1
    compiled = conformance.run_suite(octet, roots, jobs=2, jit=True)
    interp = conformance.run_suite(octet, roots, jobs=2)
    ok, lines = check(interp, compiled)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
