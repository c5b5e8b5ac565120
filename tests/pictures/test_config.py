"""`octet quantize --config`: rules name the nodes of the input model, even
after the fuse pass merged them, and a rule that matches nothing is a
warning.  Self-contained (models built with the onnx package):
  - MatMul "fc" + Add "fc_bias" (fused into one Gemm before planning) with
    the rule {op_type: MatMul -> fp8}: in the QDQ output (read with the
    onnx package) the weight W reaches the Gemm through a DequantizeLinear
    of a FLOAT8E4M3FN initializer, while the default is INT8;
  - the same model with {node: fc_bias -> fp32} (the Add's name): W stays a
    float initializer read directly, no DequantizeLinear on it;
  - Conv "conv" + BatchNormalization "bn" with {op_type: BatchNormalization
    -> fp8}: the folded Conv weight is FLOAT8E4M3FN;
  - rules that match nothing ({op_type: Conv} on the MatMul model, {node:
    nosuch}, {regex: ^zzz}) each print a warning naming the config file,
    the rule's index and its text; the run still exits 0 and a matching
    rule in the same file still applies."""
import json
import os
import sys
import tempfile

sys.dont_write_bytecode = True

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pic_common import Report, octet  # noqa: E402


def matmul_model(path):
    rng = np.random.default_rng(4)
    g = h.make_graph(
        [h.make_node("MatMul", ["x", "W"], ["mm"], name="fc"),
         h.make_node("Add", ["mm", "b"], ["y0"], name="fc_bias"),
         h.make_node("Relu", ["y0"], ["y"], name="act")],
        "mm", [h.make_tensor_value_info("x", T.FLOAT, [1, 16])],
        [h.make_tensor_value_info("y", T.FLOAT, [1, 8])],
        [nh.from_array(rng.standard_normal((16, 8)).astype(np.float32), "W"),
         nh.from_array(rng.standard_normal(8).astype(np.float32), "b")])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), path)


def conv_bn_model(path):
    rng = np.random.default_rng(5)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    g = h.make_graph(
        [h.make_node("Conv", ["x", "W"], ["c"], name="conv"),
         h.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["y"],
                     name="bn")],
        "cbn", [h.make_tensor_value_info("x", T.FLOAT, [1, 2, 5, 5])],
        [h.make_tensor_value_info("y", T.FLOAT, [1, 3, 3, 3])],
        [nh.from_array(f(3, 2, 3, 3), "W"), nh.from_array(f(3), "gamma"),
         nh.from_array(f(3), "beta"), nh.from_array(f(3), "mean"),
         nh.from_array(np.abs(f(3)) + 0.5, "var")])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), path)


def weight_type(path, op):
    """Element type of the weight (input 1) of the one `op` node: the
    DequantizeLinear's initializer type, or FLOAT if read directly."""
    g = onnx.load(path).graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    node = [n for n in g.node if n.op_type == op]
    if len(node) != 1:
        return f"{len(node)} {op} nodes"
    w = node[0].input[1]
    if w in inits:
        return T.DataType.Name(inits[w].data_type)
    dq = producer.get(w)
    if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
        return f"weight from {dq.op_type if dq else 'nowhere'}"
    return T.DataType.Name(inits[dq.input[0]].data_type)


def quantize(d, model, calib, rules, name):
    cfg = os.path.join(d, name + ".json")
    json.dump({"overrides": rules}, open(cfg, "w"))
    out = os.path.join(d, name + ".onnx")
    r = octet("quantize", model, "--calib", calib, "-o", out, "--progress=none",
              "--config", cfg, check=False)
    return r, out, cfg


def main():
    rep = Report()
    rng = np.random.default_rng(6)
    with tempfile.TemporaryDirectory() as d:
        mm = os.path.join(d, "mm.onnx")
        matmul_model(mm)
        calib = os.path.join(d, "mm_calib.npy")
        np.save(calib, rng.standard_normal((8, 1, 16)).astype(np.float32))

        r, out, _ = quantize(d, mm, calib, [], "default")
        rep.check(r.returncode == 0 and weight_type(out, "Gemm") == "INT8",
                  f"no rule: W is {weight_type(out, 'Gemm')} (exit {r.returncode} {r.stderr})")

        r, out, _ = quantize(d, mm, calib, [{"op_type": "MatMul", "precision": "fp8"}], "mm_fp8")
        rep.check(r.returncode == 0, f"op_type MatMul: exit {r.returncode} {r.stderr}")
        rep.check(weight_type(out, "Gemm") == "FLOAT8E4M3FN",
                  f"op_type MatMul -> fp8 after MatMul+Add became Gemm: W is {weight_type(out, 'Gemm')}")
        rep.check("warning" not in r.stderr, f"a matching rule warned: {r.stderr}")

        r, out, _ = quantize(d, mm, calib, [{"node": "fc_bias", "precision": "fp32"}], "add_name")
        rep.check(r.returncode == 0 and weight_type(out, "Gemm") == "FLOAT",
                  f"node fc_bias (the Add's name) -> fp32: W is {weight_type(out, 'Gemm')} {r.stderr}")

        rules = [{"op_type": "MatMul", "precision": "fp8"},
                 {"op_type": "Conv", "precision": "fp32"},
                 {"node": "nosuch", "precision": "int8"},
                 {"regex": "^zzz", "precision": "fp32"}]
        r, out, cfg = quantize(d, mm, calib, rules, "unused")
        rep.check(r.returncode == 0, f"unmatched rules: exit {r.returncode}, want 0")
        rep.check(weight_type(out, "Gemm") == "FLOAT8E4M3FN",
                  "the matching rule next to unmatched ones still applies")
        warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
        for idx, text in [(1, "op_type 'Conv'"), (2, "node 'nosuch'"), (3, "regex '^zzz'")]:
            rep.check(any(cfg in ln and f"override {idx} " in ln and text in ln and
                          "matched no" in ln for ln in warnings),
                      f"no warning naming {cfg}, override {idx} ({text}): {warnings}")
        rep.check(not any("override 0 " in ln for ln in warnings),
                  f"the matching rule 0 was warned about: {warnings}")

        cbn = os.path.join(d, "cbn.onnx")
        conv_bn_model(cbn)
        ccal = os.path.join(d, "cbn_calib.npy")
        np.save(ccal, rng.standard_normal((8, 1, 2, 5, 5)).astype(np.float32))
        r, out, _ = quantize(d, cbn, ccal, [{"op_type": "BatchNormalization",
                                             "precision": "fp8"}], "bn_fp8")
        rep.check(r.returncode == 0 and weight_type(out, "Conv") == "FLOAT8E4M3FN",
                  f"op_type BatchNormalization -> fp8 after folding into Conv: "
                  f"W is {weight_type(out, 'Conv')} {r.stderr}")
        rep.check(len([n for n in onnx.load(out).graph.node
                       if n.op_type == "BatchNormalization"]) == 0,
                  "the BatchNormalization was expected to be folded")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
