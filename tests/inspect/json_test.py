"""`octet inspect --format=json`: the output is valid JSON (parsed by Python's
strict json module from bytes decoded as strict UTF-8) and describes the
model as onnx.load reads it: one node object per ONNX node with the same
op_type, domain, name, inputs and outputs in the same order; graph inputs,
outputs and initializers by name; one value object per distinct tensor name,
initializers with onnx's dtype and dims.  A model with quotes, backslashes,
control characters, non-ASCII and invalid UTF-8 in its names must also
produce valid JSON whose strings decode back to those names."""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import json
import os
import sys
import tempfile

import onnx

import inspect_common as c
from inspect_common import GOLDEN_MODELS, Report, inspect, model_path


def load_json(rep, what, path):
    proc = inspect(path, "--format=json")
    if not rep.check(proc.returncode == 0, f"{what}: exit {proc.returncode} {proc.stderr[:500]!r}"):
        return None
    try:
        return json.loads(proc.stdout.decode("utf-8", "strict"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        rep.check(False, f"{what}: output is not valid JSON: {e}")
        return None


def check_model(rep, name):
    doc = load_json(rep, name, model_path(name))
    if doc is None:
        return
    g = onnx.load(model_path(name), load_external_data=False).graph
    nodes = doc["nodes"]
    rep.check(len(nodes) == len(g.node), f"{name}: {len(nodes)} node objects, onnx has {len(g.node)}")
    for i, (n, p) in enumerate(zip(nodes, g.node)):
        rep.check(n["index"] == i, f"{name}: node {i} index {n['index']}")
        rep.check((n["op_type"], n["domain"], n["name"]) == (p.op_type, p.domain, p.name),
                  f"{name}: node {i} {(n['op_type'], n['name'])} != {(p.op_type, p.name)}")
        rep.check(n["inputs"] == list(p.input) and n["outputs"] == list(p.output),
                  f"{name}: node {p.name!r} inputs/outputs")
        rep.check([a["name"] for a in n["attributes"]] == [a.name for a in p.attribute],
                  f"{name}: node {p.name!r} attribute names")
    gr = doc["graph"]
    rep.check(gr["inputs"] == [v.name for v in g.input], f"{name}: graph inputs")
    rep.check(gr["outputs"] == [v.name for v in g.output], f"{name}: graph outputs")
    rep.check(gr["initializers"] == [t.name for t in g.initializer], f"{name}: initializers")
    names = {v.name for v in list(g.input) + list(g.output) + list(g.value_info)}
    names |= {t.name for t in g.initializer}
    for p in g.node:
        names |= {x for x in list(p.input) + list(p.output) if x}
    values = {v["name"]: v for v in doc["values"]}
    rep.check(len(values) == len(doc["values"]), f"{name}: duplicate value objects")
    rep.check(set(values) == names, f"{name}: value names differ: {sorted(set(values) ^ names)[:5]}")
    for t in g.initializer:
        v = values.get(t.name)
        if rep.check(v is not None and v["initializer"] is not None, f"{name}: init {t.name}"):
            ini = v["initializer"]
            rep.check(ini["dtype"] == onnx.TensorProto.DataType.Name(t.data_type)
                      and ini["shape"] == list(t.dims),
                      f"{name}: init {t.name}: {ini['dtype']} {ini['shape']}")
    for p in g.node:
        for k, out in enumerate(p.output):
            if out:
                v = values.get(out)
                rep.check(v is not None and v["kind"] == "node_output"
                          and nodes[v["producer"]]["name"] == p.name
                          and v["producer_output"] == k,
                          f"{name}: producer of {out!r}")


def check_odd(rep):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "odd.onnx")
        model = c.make_odd_model(path)
        doc = load_json(rep, "odd", path)
    if doc is None:
        return
    # invalid UTF-8 bytes come out as U+00XX code points (print_json.c)
    bad = c.BAD_BYTES.decode("latin-1")
    want = [(p.op_type, p.domain, p.name,
             [x.replace(c.BAD_PLACEHOLDER, bad) for x in p.input],
             [x.replace(c.BAD_PLACEHOLDER, bad) for x in p.output])
            for p in model.graph.node]
    got = [(n["op_type"], n["domain"], n["name"], n["inputs"], n["outputs"])
           for n in doc["nodes"]]
    rep.check(got == want, f"odd: nodes {got} != {want}")
    rep.check(doc["graph"]["name"] == c.ODD_GRAPH, "odd: graph name")
    rep.check(doc["graph"]["inputs"] == [c.ODD_INPUT], "odd: input name")
    v = {x["name"]: x for x in doc["values"]}[c.ODD_INPUT]
    rep.check(v["shape"] == ['batch size,"b"', 2], f"odd: input shape {v['shape']}")
    attr = doc["nodes"][2]["attributes"][0]
    rep.check(attr == {"name": "note", "type": "STRING", "value": 'say "hi"\n'},
              f"odd: string attribute {attr}")


def main():
    rep = Report()
    for name in GOLDEN_MODELS:
        check_model(rep, name)
    check_odd(rep)
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
