"""The malformed-model corpus: each case is generated here (no files are
committed), fed to `octet opt case.onnx -o out.onnx`, and must exit with
status 2 with the expected text in the diagnostic, leaving no output file and
no temporary file behind.  Wire-level damage is written byte by byte; the
rest is built with the onnx package and then broken.  Also: a missing input
file, and an output path naming the input (by another spelling and by a hard
link) is refused without touching the input."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OCTET = os.environ["OCTET"]


# ---- wire-format helpers ------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(num, payload):
    """A length-delimited field."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vi(num, value):
    return varint(num << 3) + varint(value)


# ---- model builders -------------------------------------------------------------

def relu_model(**kw):
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    node = helper.make_node("Relu", ["X"], ["Y"], name="relu")
    g = helper.make_graph([node], "g", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], **kw)


def model_with_init(t, use_as="W"):
    """Add(X, W) with W the given initializer tensor."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    node = helper.make_node("Add", ["X", use_as], ["Y"], name="add")
    g = helper.make_graph([node], "g", [x], [y], [t])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def raw_tensor(name, dtype, dims, raw):
    t = TensorProto(name=name, data_type=dtype, raw_data=raw)
    t.dims.extend(dims)
    return t


def external_tensor(location, offset=None, length=None):
    t = TensorProto(name="W", data_type=TensorProto.FLOAT)
    t.dims.extend([2])
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location}
    if offset is not None:
        entries["offset"] = str(offset)
    if length is not None:
        entries["length"] = str(length)
    for k, v in entries.items():
        t.external_data.add(key=k, value=v)
    return model_with_init(t)


def nested_if(levels):
    """If nodes nested `levels` deep through then_branch, as raw bytes (too
    deep for the Python protobuf library)."""
    graph = b""
    for _ in range(levels):
        attr = ld(1, b"then_branch") + vi(20, 5) + ld(6, graph)
        node = ld(4, b"If") + ld(5, attr)
        graph = ld(1, node)
    return vi(1, 8) + ld(8, vi(2, 17)) + ld(7, graph)


def ser(m):
    return m.SerializeToString()


def cycle_model():
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    n1 = helper.make_node("Add", ["X", "B"], ["A"], name="n1")
    n2 = helper.make_node("Relu", ["A"], ["B"], name="n2")
    n3 = helper.make_node("Relu", ["A"], ["Y"], name="n3")
    g = helper.make_graph([n1, n2, n3], "g", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def dangling_model():
    m = relu_model()
    m.graph.node[0].input[0] = "nowhere"
    return m


def dup_output_model():
    m = relu_model()
    m.graph.node.append(helper.make_node("Relu", ["X"], ["Y"], name="relu2"))
    return m


def missing_opset_model():
    m = relu_model()
    m.graph.node[0].domain = "com.example"
    return m


def bad_attr_type_model():
    m = relu_model()
    m.graph.node[0].attribute.append(helper.make_attribute("alpha", 1.0))
    data = ser(m)
    type_float = varint(20 << 3) + varint(onnx.AttributeProto.FLOAT)
    assert data.count(type_float) == 1
    return data.replace(type_float, varint(20 << 3) + varint(99))


def graph_attr_without_value():
    m = relu_model()
    a = m.graph.node[0].attribute.add()
    a.name = "body"
    a.type = onnx.AttributeProto.GRAPH
    return m


def bad_elem_type_model():
    m = relu_model()
    m.graph.input[0].type.tensor_type.elem_type = 77
    return m


def dup_init_model():
    m = model_with_init(numpy_helper.from_array(np.ones(2, np.float32), "W"))
    m.graph.initializer.append(numpy_helper.from_array(np.zeros(2, np.float32), "W"))
    return m


def typed_count_model():
    t = TensorProto(name="W", data_type=TensorProto.FLOAT)
    t.dims.extend([4])
    t.float_data.extend([1.0, 2.0, 3.0])
    return model_with_init(t)


def wrong_field_model():
    t = TensorProto(name="W", data_type=TensorProto.FLOAT)
    t.dims.extend([2])
    t.int64_data.extend([1, 2])
    return model_with_init(t)


def string_raw_model():
    return model_with_init(raw_tensor("W", TensorProto.STRING, [1], b"abcd"))


def unnamed_init_model():
    return model_with_init(numpy_helper.from_array(np.ones(2, np.float32), ""), use_as="W")


def valid_bytes():
    return ser(model_with_init(numpy_helper.from_array(np.ones(64, np.float32), "W")))


# (name, bytes or callable(folder) -> bytes, expected substring, extra args)
CASES = [
    ("truncated_file", lambda d: valid_bytes()[: len(valid_bytes()) // 2], "remain (truncated file?)", []),
    ("bad_varint", vi(1, 8) + varint(5 << 3) + b"\xff" * 11, "bad varint", []),
    ("wrong_wire_type", vi(1, 8) + vi(7, 1), "field 'graph' (7) has wire type varint", []),
    ("invalid_wire_type_7", vi(1, 8) + b"\x0f", "bad wire type 7", []),
    ("field_number_zero", b"\x00\x01", "invalid field number 0", []),
    ("zero_length_file", b"", "empty file", []),
    ("text_file", b"hello, this is not an ONNX model\n", "not a valid ONNX protobuf", []),
    ("huge_declared_length", vi(1, 8) + varint(7 << 3 | 2) + varint(1 << 40) + b"\x00" * 16,
     "declares length 1099511627776", []),
    ("no_graph", vi(1, 8) + ld(8, vi(2, 17)), "has no graph", []),
    ("cycle", ser(cycle_model()), "cycle", []),
    ("dangling_input", ser(dangling_model()), "is not defined", []),
    ("duplicate_output_name", ser(dup_output_model()), "duplicate definition of 'Y'", []),
    ("dims_product_overflow", ser(model_with_init(raw_tensor("W", TensorProto.FLOAT, [1 << 40, 1 << 40], b""))),
     "overflows", []),
    ("negative_dim", ser(model_with_init(raw_tensor("W", TensorProto.FLOAT, [-2], b""))),
     "negative dimension -2", []),
    ("raw_data_length_mismatch", ser(model_with_init(raw_tensor("W", TensorProto.FLOAT, [2], b"\0" * 7))),
     "raw_data holds 7 bytes but FLOAT x 2 elements need 8", []),
    ("unknown_dtype", ser(model_with_init(raw_tensor("W", 99, [2], b"\0" * 8))), "unknown data type 99", []),
    ("unknown_value_elem_type", ser(bad_elem_type_model()), "unknown element type 77", []),
    ("missing_opset_import", ser(missing_opset_model()), "domain 'com.example' has no opset import", []),
    ("unknown_attribute_type", bad_attr_type_model(), "unknown attribute type 99", []),
    ("graph_attribute_without_value", ser(graph_attr_without_value()), "has no value", []),
    ("typed_field_count_mismatch", ser(typed_count_model()), "float_data holds 3 values", []),
    ("typed_field_wrong_kind", ser(wrong_field_model()), "does not match data type FLOAT", []),
    ("string_tensor_raw_data", ser(string_raw_model()), "STRING tensors cannot use raw_data", []),
    ("duplicate_initializer", ser(dup_init_model()), "duplicate initializer name", []),
    ("initializer_without_name", ser(unnamed_init_model()), "initializer without a name", []),
    ("rank_over_limit", ser(model_with_init(raw_tensor("W", TensorProto.FLOAT, [1] * 17, b"\0" * 4))),
     "rank 17 exceeds", []),
    ("tensor_elems_over_limit", ser(model_with_init(raw_tensor("W", TensorProto.UINT8, [1 << 33], b""))),
     "max_tensor_elems", []),
    ("deeply_nested_if", nested_if(1000), "subgraphs nested deeper than", []),
    ("node_count_over_limit",
     vi(1, 8) + ld(8, vi(2, 17)) + ld(7, b"\x0a\x00" * 1000001), "more than 1000000 nodes", []),
    ("external_data_not_allowed", lambda d: ext_setup(d, "w.bin"), "--allow-external-data", []),
    ("external_data_dotdot", lambda d: ext_setup(d, "../w.bin"), "contains '..'", ["--allow-external-data"]),
    ("external_data_absolute", lambda d: ext_setup(d, os.path.join(d, "w.bin")), "is an absolute path",
     ["--allow-external-data"]),
    ("external_data_symlink_file", lambda d: ext_setup(d, "link.bin"), "symbolic link",
     ["--allow-external-data"]),
    ("external_data_symlink_dir", lambda d: ext_setup(d, "linkdir/w.bin"), "symbolic link",
     ["--allow-external-data"]),
    ("external_data_offset_past_end", lambda d: ext_setup(d, "w.bin", offset=100), "runs past the end",
     ["--allow-external-data"]),
    ("external_data_length_mismatch", lambda d: ext_setup(d, "w.bin", offset=0, length=4),
     "does not match the tensor's 8 bytes", ["--allow-external-data"]),
]


def ext_setup(folder, location, offset=None, length=None):
    """Writes w.bin (8 bytes), w.bin outside the folder, a symlink to each,
    and returns the model bytes."""
    with open(os.path.join(folder, "w.bin"), "wb") as f:
        f.write(np.ones(2, np.float32).tobytes())
    parent = os.path.dirname(folder)
    with open(os.path.join(parent, "w.bin"), "wb") as f:
        f.write(np.ones(2, np.float32).tobytes())
    os.symlink(os.path.join(folder, "w.bin"), os.path.join(folder, "link.bin"))
    os.mkdir(os.path.join(parent, "real"))
    with open(os.path.join(parent, "real", "w.bin"), "wb") as f:
        f.write(np.ones(2, np.float32).tobytes())
    os.symlink(os.path.join(parent, "real"), os.path.join(folder, "linkdir"))
    return ser(external_tensor(location, offset, length))


def run(args):
    return subprocess.run([OCTET, *args], capture_output=True)


def check_case(tmp, name, data, expect, extra):
    case_dir = os.path.join(tmp, name, "model")
    os.makedirs(case_dir)
    if callable(data):
        data = data(case_dir)
    model = os.path.join(case_dir, "model.onnx")
    with open(model, "wb") as f:
        f.write(data)
    out = os.path.join(case_dir, "out.onnx")
    r = run(["opt", model, "-o", out, *extra])
    err = r.stderr.decode(errors="replace")
    problems = []
    if r.returncode != 2:
        problems.append(f"exit {r.returncode}, want 2")
    if expect not in err:
        problems.append(f"diagnostic lacks {expect!r}")
    if "model.onnx" not in err:
        problems.append("diagnostic does not name the file")
    left = [f for f in os.listdir(case_dir) if f.startswith("out.onnx")]
    if left:
        problems.append(f"left {left} behind")
    return problems, err.strip()


def check_missing_file(tmp):
    missing = os.path.join(tmp, "no_such_model.onnx")
    r = run(["opt", missing, "-o", os.path.join(tmp, "o.onnx")])
    err = r.stderr.decode()
    ok = r.returncode == 2 and "no_such_model.onnx" in err and not os.path.exists(os.path.join(tmp, "o.onnx"))
    return ok, err.strip()


def check_output_is_input(tmp):
    folder = os.path.join(tmp, "same")
    os.makedirs(os.path.join(folder, "sub"))
    model = os.path.join(folder, "model.onnx")
    data = ser(relu_model())
    with open(model, "wb") as f:
        f.write(data)
    link = os.path.join(folder, "hardlink.onnx")
    os.link(model, link)
    results = []
    for out in [model, os.path.join(folder, "sub", "..", "model.onnx"), link]:
        before = os.stat(model)
        r = run(["opt", model, "-o", out])
        with open(model, "rb") as f:
            unchanged = f.read() == data
        after = os.stat(model)
        ok = (r.returncode != 0 and b"refusing to write" in r.stderr and unchanged
              and before.st_mtime_ns == after.st_mtime_ns and before.st_ino == after.st_ino
              and sorted(os.listdir(folder)) == ["hardlink.onnx", "model.onnx", "sub"])
        results.append((out, ok, r.stderr.decode().strip()))
    return results


def check_external_allowed(tmp):
    """With --allow-external-data a file beneath the model folder is read and
    the output holds the data inline."""
    folder = os.path.join(tmp, "ext_ok")
    os.makedirs(os.path.join(folder, "data"))
    want = np.array([1.5, -2.25], np.float32)
    with open(os.path.join(folder, "data", "w.bin"), "wb") as f:
        f.write(b"\0" * 4 + want.tobytes())
    model = os.path.join(folder, "model.onnx")
    with open(model, "wb") as f:
        f.write(ser(external_tensor("data/w.bin", offset=4, length=8)))
    out = os.path.join(folder, "out.onnx")
    r = run(["opt", model, "-o", out, "--allow-external-data"])
    if r.returncode != 0:
        return False, r.stderr.decode().strip()
    t = onnx.load(out, load_external_data=False).graph.initializer[0]
    got = numpy_helper.to_array(t)
    ok = t.data_location != TensorProto.EXTERNAL and np.array_equal(got, want)
    return ok, f"inline values {got.tolist()}"


def check_stdin_stdout():
    """'-' reads standard input and writes standard output."""
    data = ser(relu_model())
    r = subprocess.run([OCTET, "opt", "-", "-o", "-"], input=data, capture_output=True)
    ok = r.returncode == 0 and onnx.load_from_string(r.stdout) == onnx.load_from_string(data)
    return ok, r.stderr.decode().strip()


def main():
    failures = 0
    if len(CASES) < 25:
        print("corpus too small")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for name, data, expect, extra in CASES:
            problems, err = check_case(tmp, name, data, expect, extra)
            print(f"{'ok  ' if not problems else 'FAIL'} {name}: {err.splitlines()[0] if err else ''}")
            for p in problems:
                print(f"     {p}\n     stderr: {err}")
            failures += bool(problems)
        ok, err = check_missing_file(tmp)
        print(f"{'ok  ' if ok else 'FAIL'} missing_file: {err}")
        failures += not ok
        for name, check in [("external_data_allowed", lambda: check_external_allowed(tmp)),
                            ("stdin_to_stdout", check_stdin_stdout)]:
            ok, err = check()
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {err}")
            failures += not ok
        for out, ok, err in check_output_is_input(tmp):
            print(f"{'ok  ' if ok else 'FAIL'} output_is_input ({os.path.relpath(out, tmp)}): {err}")
            failures += not ok
    print(f"{len(CASES)} malformed models, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
