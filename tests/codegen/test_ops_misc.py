"""The index, detection and signal ops of issue 19 that follow the first
batch (test_ops_index.py): Einsum in the forms exporters emit and beyond
the node tests' (batch matmul, ellipsis, implicit output, diagonals, sums
over axes, three operands, integers), DFT and STFT (see signal_cases),
each run through the interpreter
(`octet run`), the JIT (`octet run --jit`) and a compiled .so and compared
with ONNX Runtime, with the tolerances and helpers of test_ops_index.py.

usage: test_ops_misc.py"""
import os
import sys
import tempfile

import numpy as np
from onnx import helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402
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


def s64(v):
    """A 0-D INT64 (the scalar inputs of DFT and STFT)."""
    return np.array(v, dtype=np.int64)


def dft(name, x, opset, inits=(), ins_names=("x",), **attrs):
    ins = [("x", x)]
    node = helper.make_node("DFT", list(ins_names), ["y"], name="n0", **attrs)
    return name, model("dft", node, ins, inits=list(inits), opset=opset), ins


def stft(name, x, step, window=None, frame=None, **attrs):
    ins = [("x", x)]
    inits = [("step", s64(step))]
    names = ["x", "step", "w" if window is not None else "", "frame" if frame else ""]
    if window is not None:
        inits.append(("w", window))
    if frame:
        inits.append(("frame", s64(frame)))
    while names[-1] == "":
        names.pop()
    node = helper.make_node("STFT", names, ["y"], name="n0", **attrs)
    return name, model("stft", node, ins, inits=inits, opset=17), ins


def signal_cases():
    """DFT in both opset forms (axis attribute, axis input), real and complex
    input, onesided, inverse, dft_length padding and cutting, float64; STFT
    with and without a window, two-sided, a batch, a complex signal."""
    yield dft("dft17_real_axis1", rnd(2, 12, 3, 1), 17, axis=1)
    yield dft("dft17_complex_axis2_inverse", rnd(2, 3, 10, 2), 17, axis=2, inverse=1)
    yield dft("dft17_onesided_len_pad", rnd(3, 7, 1), 17, inits=[("n", s64(16))],
              ins_names=("x", "n"), axis=1, onesided=1)
    yield dft("dft20_axis_input_m3", rnd(4, 9, 5, 2), 20, inits=[("a", s64(-3))],
              ins_names=("x", "", "a"))
    yield dft("dft20_len_cut_default_axis", rnd(2, 5, 11, 1), 20, inits=[("n", s64(6))],
              ins_names=("x", "n"))
    yield dft("dft20_double_onesided", rnd(3, 13, 1, dtype=np.float64), 20, onesided=1)
    win = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)).astype(np.float32)  # Hann
    yield stft("stft_hann_step4", rnd(2, 64, 1), 4, window=win)
    yield stft("stft_frame_twosided", rnd(1, 50, 1), 7, frame=12, onesided=0)
    yield stft("stft_window_and_frame", rnd(3, 40, 1), 5, window=win, frame=16)
    yield stft("stft_complex_twosided", rnd(1, 33, 2), 3, window=win[:8].copy(), onesided=0)


def cases():
    for k, (eq, shapes) in enumerate(EINSUM_CASES):
        m, ins = einsum(eq, *[rnd(*s) for s in shapes])
        yield "einsum_%d" % k, m, ins
    m, ins = einsum("ij,jk->ik", rnd(3, 4, dtype=np.int64, lo=-9, hi=9),
                    rnd(4, 2, dtype=np.int64, lo=-9, hi=9), dtype=np.int64)
    yield "einsum_int64_matmul", m, ins
    m, ins = einsum("bij->bj", rnd(2, 3, 4, dtype=np.float64), dtype=np.float64)
    yield "einsum_double_sum", m, ins
    yield from signal_cases()


# Cases whose oracle is onnx.reference: ONNX Runtime 1.30's STFT of a
# complex signal differs from numpy's FFT of the windowed frames (max error
# 8 on values of magnitude 7; onnx.reference matches numpy exactly).
REFERENCE_ORACLE = {"stft_complex_twosided"}


def reference_oracle(path, named_inputs):
    from onnx.reference import ReferenceEvaluator
    return "onnx.reference", ReferenceEvaluator(path).run(None, dict(named_inputs))


def main():
    ort_oracle = cgutil.oracle
    with tempfile.TemporaryDirectory() as d:
        for name, m, inputs in cases():
            cgutil.oracle = reference_oracle if name in REFERENCE_ORACLE else ort_oracle
            base.run_case(d, name, m, inputs)
    print("%d failure(s)" % base.failures)
    return 1 if base.failures else 0


if __name__ == "__main__":
    sys.exit(main())
