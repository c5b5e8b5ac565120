"""RNN, GRU and LSTM (issue 19) on one-node models built here with the forms
the ONNX node tests leave out: bidirectional and reverse, sequence_lens
shorter than the sequence, initial_h / initial_c, peepholes, clip,
input_forget, layout=1, every non-default activation with its
activation_alpha / activation_beta, GRU linear_before_reset 0 and 1,
omitted outputs, and W given at run time (the compiler's loop projection)
as well as a constant (its packed GEMM).  Each runs through the reference
interpreter (`octet run`), the JIT (`octet run --jit`) and a compiled .so
(`octet compile`); every output is compared with ONNX Runtime within
1e-5 * max(1, max|want|), and the compiled outputs with the interpreter's.
ORT's CPU kernels take layout 0 only (and onnx.reference's LSTM and GRU
ignore sequence_lens), so a layout=1 model is checked against ORT running
its layout-0 twin: the same node without `layout`, X and the initial
states transposed in, the outputs transposed back, which is what the
spec defines layout=1 to be.  Then the diagnostics: a W of the wrong shape and an
unknown activation name the node and the input, and exit non-zero.
Then a larger LSTM on the JIT with two threads, and a layout=1 LSTM
compiled once for a symbolic batch and run at two batch sizes.  Last, `octet quantize` on MatMul -> LSTM -> Gemm: it must not fail, must
leave the LSTM in float (its neighbours get Q/DQ), and the quantized
model compiled must match ONNX Runtime running the same QDQ file; the
same with --precision=fp8, which raises the model's opset past the LSTM.

usage: test_ops_rnn.py"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402
from test_ops_index import check, run_case  # noqa: E402
import test_ops_index  # noqa: E402

rng = np.random.default_rng(1919)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def rnd(*shape, scale=0.6):
    return rng.uniform(-scale, scale, shape).astype(np.float32)


def rnn_case(op, name, S=4, B=3, I=3, H=5, layout=0, direction="forward", bias=True,
             lens=None, h0=False, c0=False, peep=False, w_input=False,
             outputs=("Y", "Y_h", "Y_c"), x_scale=1.5, **attrs):
    """(name, model, inputs): one `op` node n0; W, R, B, P initializers (W a
    graph input with w_input), X, sequence_lens, initial_h/c graph inputs."""
    D = 2 if direction == "bidirectional" else 1
    G = GATES[op]
    x = rnd(B, S, I, scale=x_scale) if layout else rnd(S, B, I, scale=x_scale)
    ins, inits = [("X", x)], []
    (ins if w_input else inits).append(("W", rnd(D, G * H, I)))
    inits.append(("R", rnd(D, G * H, H)))
    names = ["X", "W", "R", ""]
    if bias:
        inits.append(("B", rnd(D, 2 * G * H)))
        names[3] = "B"
    state = (B, D, H) if layout else (D, B, H)
    optional = [("sequence_lens", None if lens is None else np.array(lens, dtype=np.int32)),
                ("initial_h", rnd(*state, scale=1.0) if h0 else None)]
    if op == "LSTM":
        optional += [("initial_c", rnd(*state, scale=1.0) if c0 else None),
                     ("P", rnd(D, 3 * H) if peep else None)]
    for n, a in optional:
        names.append(n if a is not None else "")
        if a is not None:
            (inits if n == "P" else ins).append((n, a))
    while names and not names[-1]:
        names.pop()
    outs = list(outputs[:2 if op != "LSTM" else 3])
    node = helper.make_node(op, names, outs, name="n0", hidden_size=H, direction=direction,
                            **({"layout": layout} if layout else {}), **attrs)
    vi = [helper.make_tensor_value_info(n, TensorProto.INT32 if n == "sequence_lens"
                                        else TensorProto.FLOAT, a.shape) for n, a in ins]
    ov = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs if o]
    g = helper.make_graph([node], name, vi, ov,
                          [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 22)])
    m.ir_version = 8
    return name, m, ins


def cases():
    yield rnn_case("LSTM", "lstm_bidir_lens_states_peep", direction="bidirectional",
                   lens=[4, 2, 3], h0=True, c0=True, peep=True)
    # a sequence of length 0: Y_h and Y_c are 0 there (ORT's choice)
    yield rnn_case("LSTM", "lstm_bidir_empty_sequence", direction="bidirectional",
                   lens=[4, 0, 2], h0=True, c0=True)
    yield rnn_case("GRU", "gru_reverse_empty_sequence", direction="reverse", lens=[0, 3, 1],
                   h0=True)
    yield rnn_case("RNN", "rnn_empty_sequence", lens=[2, 0, 4], h0=True)
    yield rnn_case("LSTM", "lstm_reverse_clip_input_forget", direction="reverse", clip=0.7,
                   input_forget=1, h0=True, lens=[1, 4, 3])
    yield rnn_case("LSTM", "lstm_activations_bidir", direction="bidirectional", c0=True,
                   activations=["HardSigmoid", "Elu", "Softsign",
                                "Sigmoid", "ScaledTanh", "Affine"],
                   activation_alpha=[0.3, 0.9, 0.8, 0.7], activation_beta=[0.45, 1.3, 0.1])
    yield rnn_case("LSTM", "lstm_layout1_bidir_lens", layout=1, direction="bidirectional",
                   lens=[3, 4, 1], h0=True, c0=True, peep=True)
    yield rnn_case("LSTM", "lstm_w_input_no_bias_yh_only", w_input=True, bias=False,
                   outputs=("", "Y_h", ""), S=5, B=2, I=4, H=3)
    yield rnn_case("LSTM", "lstm_y_and_yc_only", outputs=("Y", "", "Y_c"), peep=True)
    yield rnn_case("GRU", "gru_lbr0_bidir_lens_h0", direction="bidirectional", lens=[2, 4, 3],
                   h0=True)
    yield rnn_case("GRU", "gru_lbr1_bidir_lens_h0", direction="bidirectional", lens=[2, 4, 3],
                   h0=True, linear_before_reset=1)
    yield rnn_case("GRU", "gru_lbr1_reverse_clip", direction="reverse", clip=0.9,
                   linear_before_reset=1, h0=True)
    yield rnn_case("GRU", "gru_activations_w_input", w_input=True, direction="bidirectional",
                   activations=["Sigmoid", "LeakyRelu", "HardSigmoid", "Softplus"],
                   activation_alpha=[0.2, 0.25], activation_beta=[0.55])
    yield rnn_case("GRU", "gru_layout1_lbr1", layout=1, linear_before_reset=1, h0=True,
                   lens=[4, 3, 2])
    yield rnn_case("RNN", "rnn_bidir_relu_softsign_lens", direction="bidirectional",
                   activations=["Relu", "Softsign"], lens=[4, 1, 3], h0=True)
    yield rnn_case("RNN", "rnn_reverse_thresholdedrelu_clip", direction="reverse",
                   activations=["ThresholdedRelu"], activation_alpha=[0.2], clip=1.1)
    # pre-activations up to ~100: exp overflow and underflow, saturated tanh
    yield rnn_case("LSTM", "lstm_saturating_gates", x_scale=150.0, peep=True,
                   activations=["Sigmoid", "Tanh", "Elu"])
    # (not Softplus: ORT computes log(1 + e^x) as written and overflows to
    # Inf past x = 88, where Octet, as its Softplus op, stays finite)
    yield rnn_case("GRU", "gru_saturating_lbr1", x_scale=150.0, linear_before_reset=1,
                   activations=["HardSigmoid", "ScaledTanh"], activation_alpha=[0.3, 0.8],
                   activation_beta=[0.5, 0.6])
    yield rnn_case("RNN", "rnn_tanh_w_input_layout1", layout=1, w_input=True, h0=True,
                   outputs=("Y", ""))


def layout0_oracle(path, inputs):
    """ORT on the layout-0 twin of the layout=1 model at path."""
    import onnx
    import onnxruntime as ort
    m = onnx.load(path)
    node = m.graph.node[0]
    keep = [a for a in node.attribute if a.name != "layout"]
    del node.attribute[:]
    node.attribute.extend(keep)
    for vi in m.graph.input:
        if vi.name in ("X", "initial_h", "initial_c"):
            dims = vi.type.tensor_type.shape.dim
            first, second = onnx.TensorShapeProto.Dimension(), onnx.TensorShapeProto.Dimension()
            first.CopyFrom(dims[1])
            second.CopyFrom(dims[0])
            dims[0].CopyFrom(first)
            dims[1].CopyFrom(second)
    feeds = {n: (a.transpose(1, 0, 2) if n in ("X", "initial_h", "initial_c") else a)
             for n, a in inputs}
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = s.run(None, feeds)
    back = [o.transpose(2, 0, 1, 3) if o.ndim == 4 else o.transpose(1, 0, 2) for o in outs]
    return "onnxruntime (layout-0 twin)", back


def diagnostics(d):
    """Bad input: octet run and octet compile exit non-zero naming node and tensor."""
    name, m, ins = rnn_case("LSTM", "lstm_bad_w", w_input=True)
    m.graph.input[1].type.tensor_type.shape.dim[2].dim_value = 7  # I is 3
    ins = [(n, rnd(1, 20, 7) if n == "W" else a) for n, a in ins]
    path = os.path.join(d, name + ".onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    p, out = cgutil.run_octet(path, ins)
    check(out is None and p.returncode != 0 and "node 'n0'" in p.stderr and
          "input 1 'W'" in p.stderr, "lstm_bad_w: octet run refuses W [1,20,7] for I=3 "
          "(exit %d: %s)" % (p.returncode, p.stderr.strip()))
    name, m, ins = rnn_case("GRU", "gru_bad_activation", activations=["Sigmoid", "Swish"])
    path = os.path.join(d, name + ".onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    for extra in ([], ["--jit"]):
        p, out = cgutil.run_octet(path, ins, extra)
        check(out is None and p.returncode != 0 and "node 'n0'" in p.stderr and
              "Swish" in p.stderr, "gru_bad_activation: octet run %s refuses it (exit %d: %s)"
              % (" ".join(extra), p.returncode, p.stderr.strip()))
    name, m, ins = rnn_case("RNN", "rnn_bad_lens", lens=[4, 5, 1])
    path = os.path.join(d, name + ".onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    p, out = cgutil.run_octet(path, ins)
    check(out is None and p.returncode != 0 and "sequence_lens" in p.stderr,
          "rnn_bad_lens: the interpreter refuses a length above S (exit %d: %s)"
          % (p.returncode, p.stderr.strip()))


def threads(d):
    """A larger bidirectional LSTM on the JIT with a 2-thread pool (the
    kernel GEMMs inside the step loop split over it) against ORT."""
    name, m, ins = rnn_case("LSTM", "lstm_h64_threads", S=20, B=3, I=32, H=64,
                            direction="bidirectional", lens=[20, 7, 13], h0=True, c0=True)
    path = os.path.join(d, name + ".onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    who, want = cgutil.oracle(path, ins)
    p, got = cgutil.run_octet(path, ins, ["--jit", "--threads", "2"])
    check(got is not None, "%s: run --jit --threads 2 runs it %s" % (name, p.stderr.strip()))
    if got is not None:
        test_ops_index.compare_all("%s: --jit --threads 2 vs %s," % (name, who),
                                   [o.name for o in m.graph.output],
                                   [got[cgutil.safe_name(o.name)] for o in m.graph.output], want)


def symbolic_batch(d):
    """layout=1 puts the batch first: a symbolic batch compiles once (the
    batch proof's rule for recurrent layers) and `octet run X.so` runs it
    at batch 3 and 1, against ORT on the layout-0 twin."""
    name, m, ins = rnn_case("LSTM", "lstm_symbolic_batch", layout=1, B=3,
                            direction="bidirectional", h0=True, c0=True, lens=[4, 2, 3], peep=True)
    for vi in m.graph.input:
        vi.type.tensor_type.shape.dim[0].dim_param = "N"
    path, base = os.path.join(d, name + ".onnx"), os.path.join(d, name)
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    p = subprocess.run([cgutil.OCTET, "compile", path, "-o", base, "--emit=so"],
                       capture_output=True, text=True)
    check(p.returncode == 0, "%s: compiles with batch N (exit %d: %s)"
          % (name, p.returncode, p.stderr.strip()))
    if p.returncode:
        return
    for batch in (3, 1):
        feed = [(n, a[:batch]) for n, a in ins]
        who, want = layout0_oracle(path, feed)
        got, out = cgutil.run_octet(base + ".so", feed)
        check(out is not None, "%s: octet run X.so at batch %d %s" % (name, batch, got.stderr.strip()))
        if out is not None:
            test_ops_index.compare_all("%s at batch %d: compiled vs %s," % (name, batch, who),
                                       [o.name for o in m.graph.output],
                                       [out[cgutil.safe_name(o.name)] for o in m.graph.output], want)


def quantize_around_lstm(d):
    S, B, I, H = 6, 1, 8, 16
    nodes = [helper.make_node("MatMul", ["x", "wi"], ["xi"], name="proj"),
             helper.make_node("LSTM", ["xi", "W", "R", "B"], ["Y", "Y_h", "Y_c"], name="lstm",
                              hidden_size=H),
             helper.make_node("Squeeze", ["Y_h", "ax"], ["hs"], name="sq"),
             helper.make_node("Gemm", ["hs", "wo"], ["out"], name="head", transB=1)]
    inits = [("wi", rnd(I, I)), ("W", rnd(1, 4 * H, I)), ("R", rnd(1, 4 * H, H)),
             ("B", rnd(1, 8 * H)), ("ax", np.array([0], dtype=np.int64)), ("wo", rnd(3, H))]
    g = helper.make_graph(nodes, "lstmq",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [S, B, I])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [B, 3])],
                          [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    src, qdq = os.path.join(d, "lstmq.onnx"), os.path.join(d, "lstmq.qdq.onnx")
    with open(src, "wb") as fh:
        fh.write(m.SerializeToString())
    calib = os.path.join(d, "calib.npy")
    np.save(calib, rng.normal(0, 1, (8, S, B, I)).astype(np.float32))
    p = subprocess.run([cgutil.OCTET, "quantize", src, "--calib", calib, "-o", qdq,
                        "--progress=none"], capture_output=True, text=True)
    check(p.returncode == 0, "octet quantize runs on MatMul -> LSTM -> Gemm (exit %d: %s)"
          % (p.returncode, p.stderr.strip()[-300:]))
    if p.returncode:
        return
    import onnx
    q = onnx.load(qdq)
    lstm = [n for n in q.graph.node if n.op_type == "LSTM"]
    producers = {o: n.op_type for n in q.graph.node for o in n.output}
    check(len(lstm) == 1 and all(producers.get(i) != "DequantizeLinear" for i in lstm[0].input)
          and sum(n.op_type == "QuantizeLinear" for n in q.graph.node) >= 2,
          "the LSTM stays float between quantized neighbours")
    x = rng.normal(0, 1, (S, B, I)).astype(np.float32)
    run_case(d, "lstmq_qdq", q, [("x", x)])
    # FP8 needs opset 19: the opset upgrade must carry the LSTM (17 -> 19)
    fp8 = os.path.join(d, "lstmq.fp8.onnx")
    p = subprocess.run([cgutil.OCTET, "quantize", src, "--calib", calib, "-o", fp8,
                        "--precision=fp8", "--progress=none"], capture_output=True, text=True)
    check(p.returncode == 0, "octet quantize --precision=fp8 raises the opset past the LSTM "
          "(exit %d: %s)" % (p.returncode, p.stderr.strip()[-300:]))
    if p.returncode == 0:
        run_case(d, "lstmq_fp8", onnx.load(fp8), [("x", x)], oracle=ort_unoptimized)


def ort_unoptimized(path, inputs):
    """ORT with its graph optimizations off: they fuse FP8 Q/DQ around a
    MatMul into MatMulIntegerToFloat, which ORT then refuses for FP8."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return "onnxruntime (no graph optimization)", s.run(None, dict(inputs))


def main():
    with tempfile.TemporaryDirectory() as d:
        for name, m, inputs in cases():
            layout1 = any(a.name == "layout" and a.i == 1 for a in m.graph.node[0].attribute)
            run_case(d, name, m, inputs, layout0_oracle if layout1 else cgutil.oracle)
        diagnostics(d)
        threads(d)
        symbolic_batch(d)
        quantize_around_lstm(d)
    print("%d failure(s)" % test_ops_index.failures)
    return 1 if test_ops_index.failures else 0


if __name__ == "__main__":
    sys.exit(main())
