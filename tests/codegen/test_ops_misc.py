"""The index, detection and signal ops of issue 19 that follow the first
batch (test_ops_index.py): Einsum in the forms exporters emit and beyond
the node tests' (batch matmul, ellipsis, implicit output, diagonals, sums
over axes, three operands, integers), each run through the interpreter
(`octet run`), the JIT (`octet run --jit`) and a compiled .so and compared
with ONNX Runtime, with the tolerances and helpers of test_ops_index.py.

usage: test_ops_misc.py"""
import os
import sys
import tempfile

import numpy as np
from onnx import helper

sys.path.insert(0, os.path.dirname(__file__))
import test_ops_index as base  # noqa: E402
from test_ops_index import check, model, rnd  # noqa: E402


def einsum(eq, *arrays, dtype=np.float32):
    names = ["x%d" % k for k in range(len(arrays))]
    ins = [(n, a.astype(dtype)) for n, a in zip(names, arrays)]
    node = helper.make_node("Einsum", names, ["y"], name="n0", equation=eq)
    return model("einsum", node, ins, opset=12), ins


EINSUM_CASES = [
    ("bij,bjk->bik", [(3, 4, 5), (3, 5, 6)]),        # batch matmul
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 7, 4)]),  # attention scores
    ("bhqk,bhkd->bhqd", [(2, 3, 5, 7), (2, 3, 7, 4)]),
    ("ij->ji", [(5, 3)]),
    ("ij,ij->", [(4, 6), (4, 6)]),                   # inner product of matrices
    ("i,i", [(7,), (7,)]),                           # implicit: a scalar
    ("ij,jk", [(3, 4), (4, 5)]),                     # implicit: ik
    ("ba,ca", [(3, 4), (5, 4)]),                     # implicit: bc (sorted)
    ("ijk->ik", [(3, 4, 5)]),                        # sum over an axis
    ("ijk->", [(2, 3, 4)]),
    ("ii->i", [(5, 5)]),                             # diagonal
    ("ii", [(4, 4)]),                                # trace (implicit)
    ("bii->bi", [(3, 4, 4)]),                        # batch diagonal
    ("...ij,...jk->...ik", [(2, 3, 4, 5), (2, 3, 5, 2)]),
    ("...ij,...jk", [(2, 1, 4, 5), (1, 3, 5, 2)]),   # ellipsis broadcast, implicit
    ("i,j->ij", [(4,), (6,)]),                       # outer product
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),      # three operands
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),  # bilinear
]


def cases():
    for k, (eq, shapes) in enumerate(EINSUM_CASES):
        m, ins = einsum(eq, *[rnd(*s) for s in shapes])
        yield "einsum_%d" % k, m, ins
    m, ins = einsum("ij,jk->ik", rnd(3, 4, dtype=np.int64, lo=-9, hi=9),
                    rnd(4, 2, dtype=np.int64, lo=-9, hi=9), dtype=np.int64)
    yield "einsum_int64_matmul", m, ins
    m, ins = einsum("bij->bj", rnd(2, 3, 4, dtype=np.float64), dtype=np.float64)
    yield "einsum_double_sum", m, ins


def main():
    with tempfile.TemporaryDirectory() as d:
        for name, m, inputs in cases():
            base.run_case(d, name, m, inputs)
    print("%d failure(s)" % base.failures)
    return 1 if base.failures else 0


if __name__ == "__main__":
    sys.exit(main())
