"""`octet inspect --format=dot` colours nodes by precision and marks Q/DQ.

The test builds its own small QDQ model with the onnx package (no shared
data): QDQ INT8 Conv, a float Relu, an all-int8 QLinearConv, an FP8 Q/DQ
pair feeding MaxPool, an INT4 weight feeding MatMul, an Add of a u8 and an
i8 DequantizeLinear, and a float Sigmoid.  Checks:
  - the output renders (`dot -Tsvg` exit 0, no message) and the SVG parses;
  - our own parse of the node statements finds every ONNX node once (by
    the name on its label's second line);
  - each node's `precision` attribute and fill colour follow the rule of
    src/ir/print_dot.c, recomputed here from the onnx model with types from
    onnx shape inference (an independent implementation), and also a few
    hand-written expectations (the INT8 QLinearConv is i8, the Conv fed by
    int8 DQ is i8, Relu and Sigmoid are neutral, MaxPool after the FP8 pair
    is f8e4m3fn, the INT4 MatMul is i4, the mixed Add is i8 and lists
    "u8 i8");
  - Q nodes are invtrapezium and DQ nodes trapezium, dashed;
  - one colour per precision: the nodes of a precision share one fill, and
    the legend cluster lists exactly the precisions used, with the same
    fills, plus float, QuantizeLinear and DequantizeLinear."""
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pic_common import Report, octet, parse_dot_nodes  # noqa: E402

# The test's own table: ONNX element type -> (short name, bits, kind).
TYPES = {
    T.UINT8: ("u8", 8, "uint"), T.INT8: ("i8", 8, "sint"),
    T.UINT16: ("u16", 16, "uint"), T.INT16: ("i16", 16, "sint"),
    T.INT32: ("i32", 32, "sint"),
    T.FLOAT8E4M3FN: ("f8e4m3fn", 8, "float"), T.FLOAT8E4M3FNUZ: ("f8e4m3fnuz", 8, "float"),
    T.FLOAT8E5M2: ("f8e5m2", 8, "float"), T.FLOAT8E5M2FNUZ: ("f8e5m2fnuz", 8, "float"),
    T.UINT4: ("u4", 4, "uint"), T.INT4: ("i4", 4, "sint"),
}


def build_model(path):
    rng = np.random.default_rng(1)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    inits = [
        nh.from_array(np.array(0.05, np.float32), "s"),
        nh.from_array(np.array(0, np.int8), "z_i8"),
        nh.from_array(np.array(128, np.uint8), "z_u8"),
        nh.from_array(rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8), "w_i8"),
        nh.from_array(np.full(4, 0.01, np.float32), "sw"),
        nh.from_array(rng.integers(-50, 50, 4).astype(np.int32), "b_i32"),
        nh.from_array(np.full(4, 0.0005, np.float32), "sb"),
        nh.from_array(rng.integers(-100, 100, (4, 4, 1, 1)).astype(np.int8), "w2_i8"),
        h.make_tensor("z_f8", T.FLOAT8E4M3FN, [], [0.0]),
        h.make_tensor("w4", T.INT4, [16, 5], rng.integers(-8, 8, 80).tolist()),
        nh.from_array(np.array(0.1, np.float32), "s4"),
    ]
    del f32
    nodes = [
        h.make_node("QuantizeLinear", ["x", "s", "z_i8"], ["xq"], name="q_x"),
        h.make_node("DequantizeLinear", ["xq", "s", "z_i8"], ["xd"], name="dq_x"),
        h.make_node("DequantizeLinear", ["w_i8", "sw", "z_i8"], ["wd"], name="dq_w", axis=0),
        h.make_node("DequantizeLinear", ["b_i32", "sb"], ["bd"], name="dq_b"),
        h.make_node("Conv", ["xd", "wd", "bd"], ["c"], name="conv_qdq", pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["c"], ["r"], name="relu"),
        h.make_node("QuantizeLinear", ["r", "s", "z_i8"], ["rq"], name="q_r"),
        h.make_node("QLinearConv", ["rq", "s", "z_i8", "w2_i8", "s", "z_i8", "s", "z_i8"],
                    ["y8"], name="qlinear_conv"),
        h.make_node("DequantizeLinear", ["y8", "s", "z_i8"], ["yf"], name="dq_y"),
        h.make_node("QuantizeLinear", ["yf", "s", "z_f8"], ["yq8"], name="q_f8"),
        h.make_node("DequantizeLinear", ["yq8", "s", "z_f8"], ["yd8"], name="dq_f8"),
        h.make_node("MaxPool", ["yd8"], ["mp"], name="maxpool", kernel_shape=[2, 2],
                    strides=[2, 2]),
        h.make_node("Flatten", ["mp"], ["fl"], name="flatten"),
        h.make_node("DequantizeLinear", ["w4", "s4"], ["w4d"], name="dq_w4"),
        h.make_node("MatMul", ["fl", "w4d"], ["mm"], name="matmul_i4"),
        h.make_node("Sigmoid", ["mm"], ["out"], name="sigmoid"),
        h.make_node("QuantizeLinear", ["x", "s", "z_u8"], ["xu"], name="q_xu"),
        h.make_node("DequantizeLinear", ["xu", "s", "z_u8"], ["xud"], name="dq_xu"),
        h.make_node("Add", ["xud", "xd"], ["mixed"], name="add_mixed"),
    ]
    g = h.make_graph(nodes, "qdq_precisions",
                     [h.make_tensor_value_info("x", T.FLOAT, [1, 3, 4, 4])],
                     [h.make_tensor_value_info("out", T.FLOAT, [1, 5]),
                      h.make_tensor_value_info("mixed", T.FLOAT, [1, 3, 4, 4])],
                     inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 21)], ir_version=10)
    m = onnx.shape_inference.infer_shapes(m)
    onnx.save(m, path)
    return m


def expected_precisions(m):
    """The rule of src/ir/print_dot.c, recomputed from the onnx model:
    {node name: (short type or None, list of distinct operand types)}."""
    g = m.graph
    dtype = {t.name: t.data_type for t in g.initializer}
    for v in list(g.input) + list(g.output) + list(g.value_info):
        dtype.setdefault(v.name, v.type.tensor_type.elem_type)
    producer = {o: n for n in g.node for o in n.output}

    def low(t):
        return t in TYPES and t != T.INT32

    def prec(n):
        if n.op_type == "QuantizeLinear":
            t = dtype.get(n.output[0])
            return t if t in TYPES else dtype.get(n.input[2], T.UINT8) if len(n.input) > 2 else T.UINT8
        if n.op_type == "DequantizeLinear":
            return dtype.get(n.input[0])
        ops = []
        for i, name in enumerate(list(n.input) + list(n.output)):
            t = dtype.get(name)
            if low(t):
                ops.append(t)
            elif i < len(n.input) and name in producer and \
                    producer[name].op_type == "DequantizeLinear":
                ops.append(prec(producer[name]))
        return ops

    out = {}
    for n in g.node:
        p = prec(n)
        if isinstance(p, list):
            distinct = list(dict.fromkeys(p))
            rank = {"sint": 0, "float": 1, "uint": 2}
            best = min(p, key=lambda t: (TYPES[t][1], rank[TYPES[t][2]]), default=None)
            out[n.name] = (TYPES[best][0] if best else None, [TYPES[t][0] for t in distinct])
        else:
            out[n.name] = (TYPES[p][0] if p in TYPES else None, [])
    return out


HAND = {"qlinear_conv": "i8", "conv_qdq": "i8", "relu": None, "sigmoid": None,
        "flatten": None, "maxpool": "f8e4m3fn", "matmul_i4": "i4", "add_mixed": "i8",
        "q_x": "i8", "dq_x": "i8", "dq_b": "i32", "q_f8": "f8e4m3fn", "q_xu": "u8",
        "dq_w4": "i4"}


def main():
    rep = Report()
    if not rep.check(shutil.which("dot") is not None, "graphviz 'dot' not installed"):
        return rep.finish()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "qdq.onnx")
        m = build_model(path)
        dot = octet("inspect", path, "--format=dot").stdout
    r = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, timeout=120)
    rep.check(r.returncode == 0 and r.stderr == b"", f"dot -Tsvg: exit {r.returncode} {r.stderr[:300]!r}")
    ET.fromstring(r.stdout)  # raises if not XML
    nodes = parse_dot_nodes(dot)
    by_name = {}
    for ident, attrs in nodes.items():
        lines = attrs.get("label", "").split("\\n")
        if ident.startswith("n") and len(lines) > 1:
            by_name[lines[1]] = (ident, attrs, lines)
    want = expected_precisions(m)
    for name, p in HAND.items():
        rep.check(want[name][0] == p, f"test's own rule gives {name} {want[name][0]}, hand {p}")
    fills = {}
    for n in m.graph.node:
        if not rep.check(n.name in by_name, f"node {n.name} missing from the DOT output"):
            continue
        ident, attrs, lines = by_name[n.name]
        rep.check(lines[0] == n.op_type, f"{n.name}: label starts {lines[0]!r}")
        p, distinct = want[n.name]
        got = attrs.get("precision")
        rep.check(got == p, f"{n.name} ({n.op_type}): precision {got!r}, rule says {p!r}")
        style = attrs.get("style", "")
        if p:
            rep.check("filled" in style and attrs.get("fillcolor", "").startswith("#"),
                      f"{n.name}: {p} node not filled ({attrs})")
            fills.setdefault(p, set()).add(attrs.get("fillcolor"))
        else:
            rep.check("filled" not in style and "fillcolor" not in attrs,
                      f"{n.name}: float node is filled ({attrs})")
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            shape = "invtrapezium" if n.op_type == "QuantizeLinear" else "trapezium"
            rep.check(attrs.get("shape") == shape and "dashed" in style,
                      f"{n.name}: shape {attrs.get('shape')} style {style}, want {shape} dashed")
        else:
            rep.check("shape" not in attrs, f"{n.name}: compute node has shape {attrs.get('shape')}")
            if len(distinct) > 1:
                rep.check(lines[-1] == " ".join(distinct),
                          f"{n.name}: mixed-precision line {lines[-1]!r}, want {' '.join(distinct)!r}")
    for p, f in fills.items():
        rep.check(len(f) == 1, f"precision {p} drawn in several colours {f}")
    all_fills = [next(iter(f)) for f in fills.values()]
    rep.check(len(set(all_fills)) == len(all_fills), f"two precisions share a colour: {fills}")
    legend = {k: v for k, v in nodes.items() if k.startswith("legend_")}
    rep.check("subgraph cluster_legend" in dot, "no legend cluster")
    got_legend = {v["precision"]: v.get("fillcolor") for v in legend.values() if "precision" in v}
    rep.check(got_legend == {p: next(iter(f)) for p, f in fills.items()},
              f"legend {got_legend} != colours used {fills}")
    rep.check({"legend_float", "legend_q", "legend_dq"} <= set(legend),
              f"legend lacks float/Q/DQ entries: {sorted(legend)}")
    # a float model has no legend and no fills
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f.onnx")
        g = h.make_graph([h.make_node("Relu", ["x"], ["y"], name="r")], "f",
                         [h.make_tensor_value_info("x", T.FLOAT, [2])],
                         [h.make_tensor_value_info("y", T.FLOAT, [2])])
        onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), path)
        fdot = octet("inspect", path, "--format=dot").stdout
    rep.check("cluster_legend" not in fdot and "fillcolor" not in fdot,
              "a float model gets a legend or a fill")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
