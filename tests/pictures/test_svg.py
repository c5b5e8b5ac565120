"""`octet quantize --svg` and `octet report --svg` draw the quantization
report.  Self-contained: a small FP32 model (Conv, Relu, MaxPool, Flatten,
MatMul + Add; one value name holding XML's special characters) built with
the onnx package, random calibration data, and a --config rule making the
MatMul FP8 so two precisions show.  For each SVG:
  - it parses as XML (xml.etree) with an <svg> root in the SVG namespace;
  - it has one row per tensor of the JSON report written by the same run,
    in the same order, each row's <title> starting with the full tensor name
    (the special characters survive escaping) and its figures text giving
    the JSON's SQNR alone / accumulated to 0.1 dB and its dtype;
  - bar lengths are proportional to the JSON's SQNR (one px/dB factor for
    every row below the axis end);
  - each bar's fill is the colour `octet inspect --format=dot` gives the
    same precision in its legend (one palette), grey for FP32;
  - axis labels and the legend are present."""
import json
import os
import re
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

NS = "{http://www.w3.org/2000/svg}"
ODD = 'relu<&>"out'


def build(path):
    rng = np.random.default_rng(2)
    inits = [nh.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "W"),
             nh.from_array(rng.standard_normal(4).astype(np.float32), "B"),
             nh.from_array(rng.standard_normal((64, 10)).astype(np.float32), "W2"),
             nh.from_array(rng.standard_normal(10).astype(np.float32), "B2")]
    nodes = [h.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c"], [ODD], name="relu"),
             h.make_node("MaxPool", [ODD], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("Flatten", ["p"], ["f"], name="flat"),
             h.make_node("MatMul", ["f", "W2"], ["mm"], name="fc"),
             h.make_node("Add", ["mm", "B2"], ["y"], name="fc_bias")]
    g = h.make_graph(nodes, "svgtest", [h.make_tensor_value_info("x", T.FLOAT, [1, 1, 8, 8])],
                     [h.make_tensor_value_info("y", T.FLOAT, [1, 10])], inits)
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), path)


def palette(qdq):
    """precision short name -> fill, from the DOT legend of the QDQ model."""
    nodes = parse_dot_nodes(octet("inspect", qdq, "--format=dot").stdout)
    return {a["precision"]: a["fillcolor"] for k, a in nodes.items()
            if k.startswith("legend_") and "precision" in a}


def fmt(v):
    return "-" if v is None else f"{v:.1f}"


def check_svg(rep, what, svg_path, json_path, colours):
    root = ET.parse(svg_path).getroot()
    if not rep.check(root.tag == NS + "svg", f"{what}: root is {root.tag}"):
        return
    report = json.load(open(json_path))
    tensors = report["tensors"]
    rows = [g for g in root.iter(NS + "g") if g.get("class") == "row"]
    rep.check(len(rows) == len(tensors), f"{what}: {len(rows)} rows, JSON has {len(tensors)}")
    scale = []
    texts = [t.text or "" for t in root.iter(NS + "text")]
    for t, g in zip(tensors, rows):
        title = g.find(NS + "title").text
        rep.check(title.startswith(t["tensor"] + " ("),
                  f"{what}: row title {title!r} for tensor {t['tensor']!r}")
        figures = [x.text for x in g.findall(NS + "text")][-1]
        want = f"{fmt(t['sqnr_db'])} / {fmt(t['sqnr_accumulated_db'])} dB  {t['dtype']}"
        rep.check(figures == want, f"{what}: {t['tensor']}: figures {figures!r}, want {want!r}")
        rect = g.find(NS + "rect")
        fill = rect.get("fill")
        want_fill = colours.get(t["dtype"], "#d9d9d9" if t["dtype"] == "f32" else None)
        rep.check(fill == want_fill, f"{what}: {t['tensor']} ({t['dtype']}) fill {fill}, "
                  f"DOT palette {want_fill}")
        s = t["sqnr_db"]
        if s is not None and 1 < s < 100:
            scale.append((float(rect.get("width")) / s, t["tensor"], s))
    # one px per dB factor, except rows beyond the axis end (drawn to it)
    axis_end = max(float(re.sub(r"[^0-9.]", "", x) or 0) for x in texts
                   if re.fullmatch(r"\d+", x or ""))
    inside = [k for k in scale if k[2] < axis_end]
    rep.check(len(inside) >= 2, f"{what}: too few rows to check bar lengths: {scale}")
    if inside:
        k0 = inside[0][0]
        rep.check(all(abs(k - k0) * s < 0.11 for k, _, s in inside),
                  f"{what}: bar length not proportional to SQNR: {inside}")
    rep.check(any("SQNR (dB" in x for x in texts), f"{what}: no x axis label")
    rep.check(any(x == "quantized tensor" for x in texts), f"{what}: no y axis label")
    rep.check("precision" in texts and "accumulated SQNR" in texts, f"{what}: no legend")
    for d in {t["dtype"] for t in tensors}:
        if d in colours:
            rep.check(any(r.get("fill") == colours[d] for r in root.iter(NS + "rect")
                          if r not in [g.find(NS + "rect") for g in rows]),
                      f"{what}: legend lacks a swatch for {d}")


def main():
    rep = Report()
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as d:
        p = lambda n: os.path.join(d, n)  # noqa: E731
        build(p("m.onnx"))
        np.save(p("calib.npy"), rng.standard_normal((16, 1, 8, 8)).astype(np.float32))
        json.dump({"overrides": [{"node": "fc", "precision": "fp8"}]}, open(p("cfg.json"), "w"))
        octet("quantize", p("m.onnx"), "--calib", p("calib.npy"), "-o", p("q.onnx"),
              "--progress=none", "--config", p("cfg.json"), "--report", p("q.json"),
              "--svg", p("q.svg"))
        colours = palette(p("q.onnx"))
        rep.check({"u8", "i8", "f8e4m3fn"} <= set(colours),
                  f"DOT legend of the QDQ model: {colours}")
        check_svg(rep, "quantize --svg", p("q.svg"), p("q.json"), colours)
        octet("report", p("m.onnx"), p("q.onnx"), "--data", p("calib.npy"),
              "--json", p("r.json"), "--svg", p("r.svg"))
        check_svg(rep, "report --svg", p("r.svg"), p("r.json"), colours)
        names = [t["tensor"] for t in json.load(open(p("r.json")))["tensors"]]
        rep.check(ODD in names, f"the odd name is a report row: {names}")
        # the same report twice gives the same bytes
        octet("report", p("m.onnx"), p("q.onnx"), "--data", p("calib.npy"), "--svg", p("r2.svg"))
        rep.check(open(p("r.svg"), "rb").read() == open(p("r2.svg"), "rb").read(),
                  "report --svg is not deterministic")
        r = octet("report", p("m.onnx"), p("q.onnx"), "--data", p("calib.npy"), "--svg",
                  p("no/such/dir/r.svg"), check=False)
        rep.check(r.returncode != 0 and "r.svg" in r.stderr,
                  f"an unwritable --svg is an error naming it: {r.returncode} {r.stderr!r}")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
