"""scripts/gen_pictures.sh (the README's pictures) on the shared mnist-8:
run into a temporary folder, keeping its intermediates; then
  - the graph SVG (dot's rendering of `inspect --format=dot`) parses as XML
    and shows every QuantizeLinear/DequantizeLinear node of the INT8 model
    (by name, read with the onnx package) and every node that consumes a
    DequantizeLinear output;
  - the report SVG (`octet quantize --svg`) parses as XML and has one row
    per tensor of the JSON report the same run wrote (--report), in order,
    titled with the tensor's name; so does `octet report --svg` against
    `octet report --json` for the same pair.
Skips (77) when ../shared is absent."""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pic_common import OCTET, SHARED, SKIP, SRC, Report, octet  # noqa: E402

NS = "{http://www.w3.org/2000/svg}"


def main():
    model = os.path.join(SHARED, "models", "mnist-8", "model.onnx")
    data = os.path.join(SHARED, "data", "mnist", "calib_1000_f32.npy")
    if not (os.path.exists(model) and os.path.exists(data)):
        print("SKIP: needs ../shared/models/mnist-8 and ../shared/data/mnist")
        return SKIP
    rep = Report()
    with tempfile.TemporaryDirectory() as d:
        work, out = os.path.join(d, "work"), os.path.join(d, "img")
        env = dict(os.environ, OCTET=OCTET, OCTET_SHARED=SHARED, PICTURES_WORK=work)
        r = subprocess.run(["bash", os.path.join(SRC, "scripts", "gen_pictures.sh"), out],
                           env=env, cwd=SRC, capture_output=True, text=True, timeout=600)
        if not rep.check(r.returncode == 0, f"gen_pictures.sh: exit {r.returncode} {r.stderr}"):
            return rep.finish()
        qdq = os.path.join(work, "mnist-8.int8.onnx")
        g = onnx.load(qdq).graph
        graph_svg = ET.parse(os.path.join(out, "mnist-8-int8-graph.svg")).getroot()
        texts = {t.text for t in graph_svg.iter(NS + "text")}
        dq_out = {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}
        shown = [n for n in g.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                 or any(i in dq_out for i in n.input)]
        rep.check(len(shown) > 10, f"only {len(shown)} Q/DQ and quantized nodes")
        for n in shown:
            rep.check(n.name in texts, f"graph SVG lacks node {n.name} ({n.op_type})")
        pair_json, pair_svg = os.path.join(d, "r.json"), os.path.join(d, "r.svg")
        octet("report", model, qdq, "--data", data, "--samples", "200", "--json", pair_json,
              "--svg", pair_svg)
        for what, svg, js in [
                ("quantize --svg", os.path.join(out, "mnist-8-int8-report.svg"),
                 os.path.join(work, "mnist-8.int8.report.json")),
                ("report --svg", pair_svg, pair_json)]:
            names = [t["tensor"] for t in json.load(open(js))["tensors"]]
            root = ET.parse(svg).getroot()
            rows = [gr.find(NS + "title").text for gr in root.iter(NS + "g")
                    if gr.get("class") == "row"]
            rep.check(len(names) >= 5 and len(rows) == len(names),
                      f"{what}: {len(rows)} rows, JSON {len(names)} tensors")
            for name, title in zip(names, rows):
                rep.check(title.split(" (")[0] == name, f"{what}: row {title!r}, JSON {name!r}")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
