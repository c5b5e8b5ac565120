"""Independent oracle for the inspect goldens: every golden file in
tests/inspect/golden/ is parsed and compared with what the onnx Python
package (onnx.load) reads from the same model:
  - header: ir_version, producer_name, the opset list;
  - input / output / value_info lines: names in order, dtype and dims;
  - init lines: names in order, dtype, dims, storage (raw_data or typed
    fields), the FNV-1a hash of the elements (numpy_helper.to_array bytes,
    little endian) and the previewed values;
  - node lines: op type, domain and name of every node, exactly and in
    order (these models are stored topologically sorted, so the verifier's
    stable sort must keep file order), their input and output names, and
    each attribute's name and value (INT, INTS, FLOAT, FLOATS, STRING
    re-spelled from onnx's values; TENSOR dtype and shape; GRAPH size).
The expected values come only from onnx.load, never from octet."""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

from inspect_common import (GOLDEN_DIR, GOLDEN_MODELS, Report, model_path,
                            parse_name, parse_node_line, parse_quoted,
                            parse_value_line)

# TensorProto.DataType -> the short names of the text format (print.c)
SHORT = {1: "f32", 2: "u8", 3: "i8", 4: "u16", 5: "i16", 6: "i32", 7: "i64",
         8: "str", 9: "bool", 10: "f16", 11: "f64", 12: "u32", 13: "u64",
         14: "c64", 15: "c128", 16: "bf16", 17: "f8e4m3fn", 18: "f8e4m3fnuz",
         19: "f8e5m2", 20: "f8e5m2fnuz", 21: "u4", 22: "i4", 23: "f4e2m1"}


def fnv1a(data):
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"#{h:016x}"


def parse_type(typ):
    """'f32[N,3,?]' -> ('f32', ['N', '3', '?']); 'f32[*]' -> ('f32', None)."""
    dt, _, rest = typ.partition("[")
    if rest == "*]":
        return dt, None
    dims, i = [], 0
    while rest[i] != "]":
        if rest[i] == "?":
            dims.append("?")
            i += 1
        else:
            tok, i = parse_name(rest, i)
            dims.append(tok)
        if rest[i] == "@":
            _, i = parse_quoted(rest, i + 1)
        if rest[i] == ",":
            i += 1
    return dt, dims


def onnx_type(vi):
    t = vi.type
    if not t.HasField("tensor_type"):
        return None
    tt = t.tensor_type
    dt = SHORT.get(tt.elem_type, "?")
    if not tt.HasField("shape"):
        return dt, None
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(str(d.dim_value))
        elif d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append("?")
    return dt, dims


def fmt_float(x, digits=9):
    s = "%.*g" % (digits, x)
    if not any(c in s for c in ".eEni"):
        s += ".0"
    return s


def f32(x):
    return float(np.float32(x))


def quote(b):
    out = '"'
    for c in b:
        ch = chr(c)
        if ch == '"':
            out += '\\"'
        elif ch == "\\":
            out += "\\\\"
        elif ch == "\n":
            out += "\\n"
        elif ch == "\t":
            out += "\\t"
        elif ch == "\r":
            out += "\\r"
        elif c < 0x20 or c > 0x7E:
            out += "\\x%02x" % c
        else:
            out += ch
    return out + '"'


def expected_attr_text(a):
    """The attribute's value spelled from onnx's data, or None if only a
    prefix can be checked (returned as (prefix, None))."""
    T = onnx.AttributeProto
    if a.type == T.INT:
        return str(a.i)
    if a.type == T.INTS:
        return "[" + ", ".join(str(v) for v in a.ints) + "]" if a.ints else "ints[]"
    if a.type == T.FLOAT:
        return fmt_float(f32(a.f))
    if a.type == T.FLOATS:
        return ("[" + ", ".join(fmt_float(f32(v)) for v in a.floats) + "]"
                if a.floats else "floats[]")
    if a.type == T.STRING:
        return quote(a.s)
    if a.type == T.GRAPH:
        return ("prefix", f"<graph {len(a.g.SerializeToString())} bytes ")
    if a.type == T.TENSOR:
        dims = ",".join(str(d) for d in a.t.dims)
        return ("contains", f"{SHORT.get(a.t.data_type, '?')}[{dims}] ")
    return ("contains", "")


def check_model(rep, name, lines):
    model = onnx.load(model_path(name), load_external_data=False)
    g = model.graph
    where = f"{name}:"
    rep.check(lines[0] == "octet-ir 1", f"{where} first line {lines[0]!r}")
    rep.check(f"model ir_version={model.ir_version} " in lines[1],
              f"{where} ir_version {model.ir_version} not in {lines[1]!r}")
    rep.check(f"producer_name={quote(model.producer_name.encode())}" in lines[1],
              f"{where} producer_name")
    opsets = [l for l in lines if l.startswith("opset ")]
    want = [f"opset {quote(o.domain.encode())}={o.version}" for o in model.opset_import]
    rep.check(opsets == want, f"{where} opsets {opsets} != {want}")

    by_kind = {"input": [], "output": [], "init": [], "value_info": []}
    for l in lines:
        kind = l.split(" ", 1)[0]
        if kind in by_kind:
            by_kind[kind].append(parse_value_line(l))
    for kind, protos in (("input", g.input), ("output", g.output),
                         ("value_info", g.value_info)):
        got = by_kind[kind]
        rep.check([v[1] for v in got] == [p.name for p in protos],
                  f"{where} {kind} names differ")
        for (_, vname, typ, _), p in zip(got, protos):
            want_t = onnx_type(p)
            if want_t is None:
                rep.check(typ is None or typ.startswith("<type"),
                          f"{where} {kind} {vname}: type {typ}")
            else:
                rep.check(typ is not None and parse_type(typ) == want_t,
                          f"{where} {kind} {vname}: {typ} != {want_t}")
    got = by_kind["init"]
    rep.check([v[1] for v in got] == [t.name for t in g.initializer],
              f"{where} initializer names differ")
    for (_, vname, typ, rest), t in zip(got, g.initializer):
        want_t = (SHORT.get(t.data_type, "?"), [str(d) for d in t.dims])
        rep.check(parse_type(typ) == want_t, f"{where} init {vname}: {typ} != {want_t}")
        storage = "raw" if t.HasField("raw_data") else "typed"
        rep.check(rest.startswith(f" {storage} #"), f"{where} init {vname}: storage {rest[:12]!r} != {storage}")
        if t.data_type != onnx.TensorProto.STRING:
            arr = numpy_helper.to_array(t)
            data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
            rep.check(rest.split()[1] == fnv1a(data),
                      f"{where} init {vname}: hash {rest.split()[1]} != {fnv1a(data)}")
            if " = [" in rest:
                vals = rest.split(" = [", 1)[1].split("]", 1)[0].split(", ")
                flat = arr.reshape(-1)
                if arr.dtype == np.float32:
                    want_v = [fmt_float(float(v)) for v in flat]
                else:
                    want_v = [str(int(v)) for v in flat]
                rep.check(vals == want_v, f"{where} init {vname}: values {vals} != {want_v}")

    nodes = [parse_node_line(l) for l in lines if l.startswith("node ")]
    got_ids = [(n["op"], n["domain"], n["name"]) for n in nodes]
    want_ids = [(n.op_type, n.domain, n.name) for n in g.node]
    rep.check(len(nodes) == len(g.node), f"{where} {len(nodes)} node lines, onnx has {len(g.node)} nodes")
    rep.check(got_ids == want_ids, f"{where} node op types/names differ from onnx.load: "
              f"first difference at {next((i for i, (a, b) in enumerate(zip(got_ids, want_ids)) if a != b), None)}")
    for n, p in zip(nodes, g.node):
        label = f"{where} node {p.name!r}"
        rep.check([v[0] for v in n["inputs"]] == list(p.input), f"{label} inputs")
        rep.check([v[0] for v in n["outputs"]] == list(p.output), f"{label} outputs")
        rest = n["rest"]
        pos = 0
        for a in p.attribute:
            exp = expected_attr_text(a)
            key = f"{a.name}="
            at = rest.find(key, pos)
            if not rep.check(at >= 0, f"{label} attribute {a.name} missing in {rest[:200]!r}"):
                continue
            value = rest[at + len(key):]
            if isinstance(exp, str):
                rep.check(value.startswith(exp) and value[len(exp):len(exp) + 1] in ("", ",", "}", " "),
                          f"{label} attribute {a.name}: {value[:80]!r} is not {exp!r}")
            elif exp[0] == "prefix":
                rep.check(value.startswith(exp[1]), f"{label} attribute {a.name}: {value[:60]!r} != {exp[1]!r}")
            else:
                rep.check(exp[1] in value.split(")", 1)[0], f"{label} attribute {a.name}: {value[:80]!r} lacks {exp[1]!r}")
            pos = at + len(key)


def main():
    rep = Report()
    for name in GOLDEN_MODELS:
        path = os.path.join(GOLDEN_DIR, name + ".txt")
        if not rep.check(os.path.exists(path), f"{name}: no golden {path}"):
            continue
        with open(path, encoding="ascii") as f:
            lines = f.read().splitlines()
        before = rep.failed
        check_model(rep, name, lines)
        print(f"{name}: {'ok' if rep.failed == before else 'FAILED'}")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
