"""Fields newer than the ONNX 1.12 schema survive `octet opt`: the model is
built with the pip onnx package (NodeProto.metadata_props and overload,
GraphProto/ValueInfoProto/TensorProto.metadata_props, plus the 1.12-era
ModelProto.metadata_props), round-tripped, and every field is checked on the
output as onnx parses it."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OCTET = os.environ["OCTET"]


def kv(d):
    return [onnx.StringStringEntryProto(key=k, value=v) for k, v in d.items()]


def build():
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "W")
    w.metadata_props.extend(kv({"tensor_note": "weights"}))
    node = helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")
    node.metadata_props.extend(kv({"origin": "layer1", "pass": "none"}))
    node.overload = "fast"
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 2])
    x.metadata_props.extend(kv({"vi_note": "input"}))
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 3])
    g = helper.make_graph([node], "g", [x], [y], [w])
    g.metadata_props.extend(kv({"graph_note": "main"}))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.metadata_props.extend(kv({"author": "test", "license": "MIT"}))
    onnx.checker.check_model(m)
    return m


def props(msg):
    return {p.key: p.value for p in msg.metadata_props}


def main():
    m = build()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "in.onnx"), os.path.join(tmp, "out.onnx")
        onnx.save(m, src)
        r = subprocess.run([OCTET, "opt", src, "-o", out], capture_output=True)
        if r.returncode != 0:
            print("octet opt failed:", r.stderr.decode())
            return 1
        o = onnx.load(out)
        checks = [
            ("model metadata_props", props(o), {"author": "test", "license": "MIT"}),
            ("graph metadata_props", props(o.graph), {"graph_note": "main"}),
            ("node metadata_props", props(o.graph.node[0]), {"origin": "layer1", "pass": "none"}),
            ("node overload", o.graph.node[0].overload, "fast"),
            ("input metadata_props", props(o.graph.input[0]), {"vi_note": "input"}),
            ("initializer metadata_props", props(o.graph.initializer[0]), {"tensor_note": "weights"}),
        ]
        for what, got, want in checks:
            status = "ok" if got == want else "FAIL"
            print(f"{status}: {what}: {got!r}" + ("" if got == want else f" (want {want!r})"))
            if got != want:
                failures.append(what)
        if m.SerializeToString(deterministic=True) != o.SerializeToString(deterministic=True):
            print("FAIL: output does not re-serialize to the same bytes as the input")
            failures.append("bytes")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
