"""ONNX backend node tests of the softmax, normalization, reduction,
data-movement and constant op families through `octet run`, compared with
the expected outputs by tests/conformance/conformance.py (float: 1e-5
relative, integers exact).

usage: node_tests.py [-v] [PATTERN...]   (default: every family below)
Prints one line per family (passed/failed/unsupported) and fails if any
supported test of these families fails.  Tests named *_expanded exercise
other families' kernels (Exp, ReduceMax, ...) and are reported but do not
decide the verdict.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
import conformance  # noqa: E402
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)

FAMILIES = [
    ("softmax", r"test_softmax"), ("logsoftmax", r"test_logsoftmax"),
    ("batchnorm", r"test_batchnorm"), ("instancenorm", r"test_instancenorm"),
    ("layernorm", r"test_layer_normalization"),
    ("reduce_mean", r"test_reduce_mean"), ("reduce_max", r"test_reduce_max"),
    ("reduce_sum", r"test_reduce_sum(?!_square)"),
    ("reduce_min", r"test_reduce_min"), ("reduce_prod", r"test_reduce_prod"),
    ("reduce_l1", r"test_reduce_l1"), ("reduce_l2", r"test_reduce_l2"),
    ("reduce_log_sum", r"test_reduce_log_sum(?!_exp)"),
    ("reduce_log_sum_exp", r"test_reduce_log_sum_exp"),
    ("reduce_sum_square", r"test_reduce_sum_square"),
    ("argmax", r"test_argmax"), ("argmin", r"test_argmin"), ("size", r"test_size"),
    ("expand", r"test_expand"), ("tile", r"test_tile"),
    ("depthtospace", r"test_depthtospace"), ("spacetodepth", r"test_spacetodepth"),
    ("gather_elements", r"test_gather_elements"), ("trilu", r"test_(tril|triu)"),
    ("range", r"test_range"),
    ("reshape", r"test_reshape"), ("flatten", r"test_flatten"),
    ("transpose", r"test_transpose"), ("squeeze", r"test_squeeze"),
    ("unsqueeze", r"test_unsqueeze"), ("concat", r"test_concat"),
    ("split", r"test_split(?!_to_sequence)"), ("slice", r"test_slice"),
    ("gather", r"test_gather_(?!elements|nd)"), ("identity", r"test_identity"),
    ("dropout", r"test_dropout"), ("constantofshape", r"test_constantofshape"),
    ("constant", r"test_constant(?!ofshape|_pad)"), ("shape", r"test_shape"),
]


def family_of(name):
    for fam, pat in FAMILIES:
        if re.match(pat, name):
            return fam
    return None


def main():
    verbose = "-v" in sys.argv
    only = [a for a in sys.argv[1:] if a != "-v"]
    octet = os.environ["OCTET"]
    roots = [("testdata", os.environ.get("OCTET_TESTDATA", "/usr/share/libonnx-testdata/data/node")),
             ("opset25", os.path.join(need("onnx-node-tests/opset25"),
                                      "onnx-node-tests", "opset25"))]
    supported = conformance.ops_def_ops()
    counts = {}
    failed_gate = 0
    for suite, root in roots:
        for d in conformance.find_tests(root):
            name = os.path.basename(d)
            fam = family_of(name)
            if not fam or (only and not any(o in name for o in only)):
                continue
            c = counts.setdefault(fam, [0, 0, 0])
            try:
                missing, _, model = conformance.classify(d, supported)
            except Exception as e:  # the onnx package cannot read it
                missing, model = ["unreadable: %s" % e], None
            if missing:
                c[2] += 1
                if verbose:
                    print("UNSUPPORTED %s/%s: %s" % (suite, name, ", ".join(missing)))
                continue
            ok, reason = conformance.run_one(octet, d, model)
            if ok:
                c[0] += 1
            else:
                c[1] += 1
                if not name.endswith("_expanded"):
                    failed_gate += 1
                print("FAIL %s/%s: %s" % (suite, name, reason))
    total = [0, 0, 0]
    for fam, _ in FAMILIES:
        if fam in counts:
            p, f, u = counts[fam]
            total = [total[0] + p, total[1] + f, total[2] + u]
            print("%-16s %3d passed %3d failed %3d unsupported" % (fam, p, f, u))
    print("%d passed, %d failed, %d skipped" % tuple(total))
    return 1 if failed_gate else 0


if __name__ == "__main__":
    sys.exit(main())
