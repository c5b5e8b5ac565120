"""The index, detection and signal ops of issue 19 that follow the first
batch (test_ops_index.py):
  - Einsum in the forms exporters emit and beyond the node tests' (batch
    matmul, ellipsis, implicit output, diagonals, sums over axes, three
    operands, integers), DFT and STFT (signal_cases): each through the
    interpreter (`octet run`), the JIT (`octet run --jit`) and a compiled
    .so, compared with ONNX Runtime with the tolerances and helpers of
    test_ops_index.py;
  - the detection graph's candidate stage (ReduceMax, TopK, Gather: static
    lengths) the same way, interpreted, JIT and compiled;
  - NonMaxSuppression, NonZero, Unique and a TopK + NMS detection graph
    (data_length_cases): outputs whose length depends on the values, so
    compiled with a bound and their actual length read back
    (NAME_actual_dims): interpreted, JIT and compiled .so against ONNX
    Runtime; the graph that goes on to Gather with NMS's output is
    interpreted against ONNX Runtime and refused by the compiler (exit 3
    naming that Gather: a reader of a data-dependent length), never run
    wrong.

usage: test_ops_misc.py"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402
import test_ops_index as base  # noqa: E402
from test_ops_index import check, i64, model, rnd  # noqa: E402


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
    yield detection_graph(candidates_only=True)


def boxes_corners(n, b=1, rng=base.rng):
    """[b, n, 4] boxes [y1, x1, y2, x2] with many overlaps, corners in either
    order (NMS takes them as any diagonal)."""
    lo = rng.uniform(0, 10, (b, n, 2))
    hi = lo + rng.uniform(0.5, 4, (b, n, 2))
    bx = np.concatenate([lo, hi], axis=-1)
    flip = rng.random((b, n)) < 0.3
    bx[flip] = bx[flip][:, [2, 3, 0, 1]]
    return bx.astype(np.float32)


def nms(name, boxes, scores, inits=(), cpb=0, inputs=("boxes", "scores")):
    node = helper.make_node("NonMaxSuppression", list(inputs), ["y"], name="n0",
                            center_point_box=cpb)
    ins = [("boxes", boxes), ("scores", scores)]
    return name, model("nms", node, ins, out_type=TensorProto.INT64, inits=list(inits),
                       opset=11), ins


def data_length_cases():
    """NonMaxSuppression (both box formats, score filter or none, ties, the
    limit above the box count, batches and classes, omitted optional
    inputs), NonZero (float, int, bool), Unique (sorted or not, flat, rows,
    a negative axis), and a detection post-processing
    graph: the interpreter against ONNX Runtime; compiling them must give
    exit 3 and the data-dependent-length diagnostic."""
    f32 = lambda v: np.array([v], dtype=np.float32)  # noqa: E731
    sc = base.rng.random((2, 3, 20)).astype(np.float32)
    sc[0, 1, 5] = sc[0, 1, 7] = sc[0, 1, 9] = 0.95  # ties: lower index first
    yield nms("nms_corners_score_iou", boxes_corners(20, 2), sc,
              inits=[("k", i64(4)), ("iou", f32(0.3)), ("thr", f32(0.4))],
              inputs=("boxes", "scores", "k", "iou", "thr"))
    cb = boxes_corners(16)
    center = np.concatenate([(cb[..., 1:2] + cb[..., 3:4]) / 2, (cb[..., 0:1] + cb[..., 2:3]) / 2,
                             np.abs(cb[..., 3:4] - cb[..., 1:2]),
                             np.abs(cb[..., 2:3] - cb[..., 0:1])], axis=-1)
    yield nms("nms_center_no_score_threshold", center.astype(np.float32),
              base.rng.random((1, 2, 16)).astype(np.float32),
              inits=[("k", i64(100)), ("iou", f32(0.5))], cpb=1,
              inputs=("boxes", "scores", "k", "iou"))
    yield nms("nms_scalar_inputs_iou0", boxes_corners(12),
              base.rng.random((1, 1, 12)).astype(np.float32),
              inits=[("k", np.array(6, dtype=np.int64)), ("iou", np.array(0.0, np.float32))],
              inputs=("boxes", "scores", "k", "iou"))
    yield nms("nms_only_boxes_scores", boxes_corners(5), base.rng.random((1, 2, 5)).astype(
        np.float32))  # max_output_boxes_per_class 0: no output
    x = rnd(3, 4, 5)
    x[np.abs(x) < 1.5] = 0
    yield "nonzero_float_3d", model("nonzero", helper.make_node("NonZero", ["x"], ["y"],
                                                                name="n0"),
                                    [("x", x)], out_type=TensorProto.INT64), [("x", x)]
    xi = rnd(7, dtype=np.int32, lo=-1, hi=1)
    yield "nonzero_int32_1d", model("nonzero", helper.make_node("NonZero", ["x"], ["y"],
                                                                name="n0"),
                                    [("x", xi)], out_type=TensorProto.INT64), [("x", xi)]
    xb = base.rng.random((4, 6)) < 0.4
    yield "nonzero_bool_2d", model("nonzero", helper.make_node("NonZero", ["x"], ["y"],
                                                               name="n0"),
                                   [("x", xb)], out_type=TensorProto.INT64), [("x", xb)]
    for name, x, attrs in [
            ("unique_float_unsorted", np.round(rnd(4, 6), 0), {"sorted": 0}),
            ("unique_int64_sorted_flat", rnd(30, dtype=np.int64, lo=-5, hi=5), {}),
            ("unique_rows_axis0", np.array([[1, 2], [3, 4], [1, 2], [0, 9], [3, 4]],
                                           dtype=np.int32), {"axis": 0}),
            ("unique_axis_m1_3d", np.tile(rnd(2, 3, 2, dtype=np.int64, lo=0, hi=2), (1, 1, 3)),
             {"axis": -1, "sorted": 1})]:
        un = helper.make_node("Unique", ["x"], ["y", "idx", "inv", "cnt"], name="n0", **attrs)
        yield name, model("unique", un, [("x", x)], opset=11), [("x", x)]
    yield detection_graph(nms_last=True)


def detection_graph(candidates_only=False, nms_last=False):
    """Detection post-processing: scores [1, C, N] -> max over classes ->
    TopK (the M best boxes) -> Gather boxes and scores -> NMS -> the kept
    boxes gathered by their index (outputs: indices and boxes).  With
    candidates_only, the graph stops before NMS (outputs: the TopK scores
    and indices and the gathered candidates), whose lengths are static, so
    it compiles: the stage the compiled code runs before the NMS that only
    the interpreter runs."""
    n, c, m = 40, 3, 24
    boxes = boxes_corners(n)
    scores = base.rng.random((1, c, n)).astype(np.float32)
    T = TensorProto
    if candidates_only:
        return candidate_stage(n, c, m, boxes, scores)
    nodes = [
        helper.make_node("ReduceMax", ["scores"], ["best"], axes=[1], keepdims=0),  # [1, N]
        helper.make_node("TopK", ["best", "m"], ["top_s", "top_i"], axis=1),       # [1, M]
        helper.make_node("Squeeze", ["top_i", "ax0"], ["top_i1"]),                  # [M]
        helper.make_node("Gather", ["boxes", "top_i1"], ["cand_boxes"], axis=1),    # [1, M, 4]
        helper.make_node("Gather", ["scores", "top_i1"], ["cand_scores"], axis=2),  # [1, C, M]
        helper.make_node("NonMaxSuppression", ["cand_boxes", "cand_scores", "k", "iou", "thr"],
                         ["sel"], name="nms"),                                     # [K, 3]
        helper.make_node("Gather", ["sel", "two"], ["sel_box"], axis=1),            # [K]
        helper.make_node("Gather", ["top_i1", "sel_box"], ["box_index"]),           # [K]
        helper.make_node("Squeeze", ["boxes", "ax0"], ["boxes0"]),                  # [N, 4]
        helper.make_node("Gather", ["boxes0", "box_index"], ["kept_boxes"]),        # [K, 4]
    ]
    outs = [("sel", T.INT64), ("box_index", T.INT64), ("kept_boxes", T.FLOAT)]
    if nms_last:  # TopK + NMS: the selected triples and the candidates
        nodes = nodes[:6]
        outs = [("sel", T.INT64), ("cand_boxes", T.FLOAT), ("top_s", T.FLOAT)]
    inits = [numpy_helper.from_array(a, nm) for nm, a in [
        ("m", i64(m)), ("ax0", i64(0)), ("k", i64(5)),
        ("iou", np.array([0.45], np.float32)), ("thr", np.array([0.2], np.float32)),
        ("two", np.array(2, dtype=np.int64))]]
    g = helper.make_graph(nodes, "detect", [
        helper.make_tensor_value_info("boxes", T.FLOAT, [1, n, 4]),
        helper.make_tensor_value_info("scores", T.FLOAT, [1, c, n])],
        [helper.make_tensor_value_info(nm, ty, None) for nm, ty in outs],
        inits if not nms_last else inits[:-1])
    md = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    md.ir_version = 8
    return ("detection_topk_nms" if nms_last else "detection_postprocess", md,
            [("boxes", boxes), ("scores", scores)])


def candidate_stage(n, c, m, boxes, scores):
    T = TensorProto
    nodes = [
        helper.make_node("ReduceMax", ["scores"], ["best"], axes=[1], keepdims=0),  # [1, N]
        helper.make_node("TopK", ["best", "m"], ["top_s", "top_i"], axis=1),       # [1, M]
        helper.make_node("Squeeze", ["top_i", "ax0"], ["top_i1"]),                  # [M]
        helper.make_node("Gather", ["boxes", "top_i1"], ["cand_boxes"], axis=1),    # [1, M, 4]
        helper.make_node("Gather", ["scores", "top_i1"], ["cand_scores"], axis=2),  # [1, C, M]
    ]
    inits = [numpy_helper.from_array(i64(m), "m"), numpy_helper.from_array(i64(0), "ax0")]
    g = helper.make_graph(nodes, "detect_candidates", [
        helper.make_tensor_value_info("boxes", T.FLOAT, [1, n, 4]),
        helper.make_tensor_value_info("scores", T.FLOAT, [1, c, n])], [
        helper.make_tensor_value_info("top_s", T.FLOAT, None),
        helper.make_tensor_value_info("top_i", T.INT64, None),
        helper.make_tensor_value_info("cand_boxes", T.FLOAT, None),
        helper.make_tensor_value_info("cand_scores", T.FLOAT, None)], inits)
    md = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    md.ir_version = 8
    return "detection_candidates_topk_gather", md, [("boxes", boxes), ("scores", scores)]


def run_refused_case(d, name, m, inputs, reader):
    """Interpreter vs ONNX Runtime; `octet compile` and `octet run --jit`
    refuse the model (exit 3 naming node `reader`, which reads a
    data-dependent length)."""
    path = os.path.join(d, name + ".onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    names = [o.name for o in m.graph.output]
    who, want = cgutil.oracle(path, inputs)
    p, ref = cgutil.run_octet(path, inputs)
    check(ref is not None, "%s: the interpreter runs it %s" % (name, p.stderr.strip()))
    if ref is not None:
        base.compare_all("%s: interpreter vs %s," % (name, who), names,
                         [ref[cgutil.safe_name(n)] for n in names], want)
    for how, args in [("octet compile", ["compile", path, "-o", os.path.join(d, name),
                                         "--emit=so"]),
                      ("octet run --jit", ["run", path, "--jit", "--output-dir",
                                           os.path.join(d, name + "_out")] +
                       sum([["--input", "%s=%s" % (nm, save(d, nm, a))] for nm, a in inputs],
                           []))]:
        p = subprocess.run([cgutil.OCTET] + args, capture_output=True, text=True)
        check(p.returncode == 3 and "depends on the input values" in p.stderr and
              "node '%s'" % reader in p.stderr,
              "%s: %s refuses it (exit %d: %s)" % (name, how, p.returncode,
                                                   p.stderr.strip()[-160:]))


def diagnostics(d):
    """Malformed nodes get a diagnostic naming the node and a non-zero exit
    from the interpreter and the compiler, never a crash."""
    x = rnd(3, 4)
    bad = [
        ("einsum_rank_mismatch", helper.make_node("Einsum", ["x"], ["y"], name="n0",
                                                  equation="ijk->i"), [("x", x)], "Einsum"),
        ("einsum_output_label_unknown", helper.make_node("Einsum", ["x"], ["y"], name="n0",
                                                         equation="ij->iz"), [("x", x)],
         "Einsum"),
        ("einsum_two_terms_one_input", helper.make_node("Einsum", ["x"], ["y"], name="n0",
                                                        equation="ij,jk->ik"), [("x", x)],
         "Einsum"),
        ("dft_axis_on_parts", helper.make_node("DFT", ["x"], ["y"], name="n0", axis=2),
         [("x", rnd(2, 5, 1))], "DFT"),
        ("dft_inverse_onesided", helper.make_node("DFT", ["x"], ["y"], name="n0", inverse=1,
                                                  onesided=1), [("x", rnd(2, 5, 2))], "DFT"),
    ]
    for name, node, ins, op in bad:
        path = os.path.join(d, name + ".onnx")
        with open(path, "wb") as fh:
            fh.write(model(name, node, ins, opset=17).SerializeToString())
        p, _ = cgutil.run_octet(path, ins)
        check(p.returncode not in (0, -6, -11) and "node 'n0' (%s)" % op in p.stderr,
              "%s: the interpreter reports it (exit %d: %s)" % (name, p.returncode,
                                                                p.stderr.strip()[-150:]))
        p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(d, name),
                            "--emit=so"], capture_output=True, text=True)
        check(p.returncode not in (0, -6, -11) and "node 'n0' (%s)" % op in p.stderr,
              "%s: octet compile reports it (exit %d: %s)" % (name, p.returncode,
                                                              p.stderr.strip()[-150:]))


def save(d, name, a):
    path = os.path.join(d, "in_%s.npy" % name)
    np.save(path, a)
    return path


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
            base.run_case(d, name, m, inputs,
                          oracle=reference_oracle if name in REFERENCE_ORACLE else ort_oracle)
        for name, m, inputs in data_length_cases():
            base.run_case(d, name, m, inputs)
        name, m, inputs = detection_graph()
        run_refused_case(d, name, m, inputs, "#6")  # the unnamed Gather reading sel
        diagnostics(d)
    print("%d failure(s)" % base.failures)
    return 1 if base.failures else 0


if __name__ == "__main__":
    sys.exit(main())
