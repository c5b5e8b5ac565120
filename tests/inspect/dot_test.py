"""`octet inspect --format=dot`: the output renders with Graphviz
(`dot -Tsvg` exits 0 and prints no warning) for several real models and for a
model whose names hold quotes, backslashes, braces, control characters,
non-ASCII and invalid UTF-8; and the SVG has one box per ONNX node plus one
ellipse per graph input (not an initializer) and per graph output, and the
expected number of edges (every node input fed by a node or a graph input,
plus one edge into each graph output), counted from onnx.load."""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import onnx

import inspect_common as c
from inspect_common import Report, inspect, model_path

MODELS = ["mnist-8", "squeezenet1.1", "ppocr-cls", "ultraface-rfb320",
          "silero-vad-lstm-if"]
SVG = "{http://www.w3.org/2000/svg}"


def expected_counts(g):
    inits = {t.name for t in g.initializer}
    graph_inputs = [v.name for v in g.input if v.name not in inits]
    produced = {o for p in g.node for o in p.output if o}
    sources = produced | set(graph_inputs)
    n_boxes = len(g.node) + len(graph_inputs) + len(g.output)
    n_edges = sum(1 for p in g.node for x in p.input if x and x in sources)
    n_edges += sum(1 for v in g.output if v.name in sources)
    return n_boxes, n_edges


def check(rep, what, path, g):
    proc = inspect(path, "--format=dot")
    if not rep.check(proc.returncode == 0, f"{what}: exit {proc.returncode} {proc.stderr[:300]!r}"):
        return
    r = subprocess.run(["dot", "-Tsvg"], input=proc.stdout, capture_output=True,
                       timeout=300)
    rep.check(r.returncode == 0, f"{what}: dot exit {r.returncode}: {r.stderr[:500]!r}")
    rep.check(r.stderr == b"", f"{what}: dot printed {r.stderr[:500]!r}")
    if r.returncode:
        return
    svg = ET.fromstring(r.stdout)
    groups = [e.get("class") for e in svg.iter(SVG + "g")]
    n_boxes, n_edges = expected_counts(g)
    rep.check(groups.count("node") == n_boxes, f"{what}: {groups.count('node')} svg nodes, want {n_boxes}")
    rep.check(groups.count("edge") == n_edges, f"{what}: {groups.count('edge')} svg edges, want {n_edges}")


def main():
    rep = Report()
    if not rep.check(shutil.which("dot") is not None, "graphviz 'dot' not installed"):
        return rep.finish()
    for name in MODELS:
        check(rep, name, model_path(name),
              onnx.load(model_path(name), load_external_data=False).graph)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "odd.onnx")
        model = c.make_odd_model(path)
        check(rep, "odd", path, model.graph)
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
