"""Typed TensorProto fields round-trip for every data type octet knows:
onnx.helper.make_tensor(raw=False) writes each type into the field and
packing the ONNX spec prescribes (float_data, int32_data with bit patterns
and 4-/2-bit packing, int64_data, uint64_data, double_data, string_data);
after `octet opt` the initializer must be the same TensorProto field for
field and decode (numpy_helper.to_array) to the same values.  The same
tensors written as raw_data must come back as raw_data."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OCTET = os.environ["OCTET"]

VALUES = {
    TensorProto.FLOAT: [1.5, -2.0, 0.0, 3.25, 1e-8],
    TensorProto.UINT8: [0, 1, 128, 255, 7],
    TensorProto.INT8: [-128, -1, 0, 1, 127],
    TensorProto.UINT16: [0, 1, 40000, 65535, 9],
    TensorProto.INT16: [-32768, -1, 0, 1, 32767],
    TensorProto.INT32: [-2**31, -1, 0, 1, 2**31 - 1],
    TensorProto.INT64: [-2**63, -1, 0, 1, 2**63 - 1],
    TensorProto.STRING: [b"a", b"", b"hello", b"\xc3\xa9\x00", b"z"],
    TensorProto.BOOL: [True, False, True, True, False],
    TensorProto.FLOAT16: [1.0, -2.5, 65504.0, 0.0, 0.5],
    TensorProto.DOUBLE: [1.5, -2.0, 1e300, 0.0, -1e-300],
    TensorProto.UINT32: [0, 1, 2**31, 2**32 - 1, 5],
    TensorProto.UINT64: [0, 1, 2**63, 2**64 - 1, 5],
    TensorProto.COMPLEX64: [1 + 2j, -1j, 0, 3, 2 - 2j],
    TensorProto.COMPLEX128: [1 + 2j, -1j, 0, 3, 2 - 2j],
    TensorProto.BFLOAT16: [1.0, -2.0, 3.0, 0.0, 0.5],
    TensorProto.FLOAT8E4M3FN: [1.0, -2.0, 448.0, 0.0, 0.5],
    TensorProto.FLOAT8E4M3FNUZ: [1.0, -2.0, 240.0, 0.0, 0.5],
    TensorProto.FLOAT8E5M2: [1.0, -2.0, 57344.0, 0.0, 0.5],
    TensorProto.FLOAT8E5M2FNUZ: [1.0, -2.0, 57344.0, 0.0, 0.5],
    TensorProto.UINT4: [0, 1, 15, 7, 3],
    TensorProto.INT4: [-8, -1, 0, 7, 3],
    TensorProto.FLOAT4E2M1: [1.0, -2.0, 6.0, 0.0, 0.5],
    TensorProto.FLOAT8E8M0: [1.0, 2.0, 4.0, 0.5, 1024.0],
    TensorProto.UINT2: [0, 1, 2, 3, 1],
    TensorProto.INT2: [-2, -1, 0, 1, 1],
}


def build(raw):
    inits, outs, nodes = [], [], []
    for dt, vals in VALUES.items():
        name = TensorProto.DataType.Name(dt)
        if raw and dt != TensorProto.STRING:
            typed = helper.make_tensor(name, dt, [5], vals)
            arr = numpy_helper.to_array(typed)
            t = numpy_helper.from_array(arr, name)
        else:
            t = helper.make_tensor(name, dt, [5], vals)
        inits.append(t)
        outs.append(helper.make_tensor_value_info(name + "_out", dt, [5]))
        nodes.append(helper.make_node("Identity", [name], [name + "_out"]))
    g = helper.make_graph(nodes, "typed", [], outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 25)])


def main():
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for raw in (False, True):
            m = build(raw)
            src, out = os.path.join(tmp, f"in{raw}.onnx"), os.path.join(tmp, f"out{raw}.onnx")
            onnx.save(m, src)
            r = subprocess.run([OCTET, "opt", src, "-o", out], capture_output=True)
            if r.returncode != 0:
                print("FAIL octet opt:", r.stderr.decode())
                return 1
            o = onnx.load(out)
            for a, b in zip(m.graph.initializer, o.graph.initializer):
                same_proto = a == b
                va, vb = numpy_helper.to_array(a), numpy_helper.to_array(b)
                same_vals = va.dtype == vb.dtype and va.tobytes() == vb.tobytes() \
                    if va.dtype != object else va.tolist() == vb.tolist()
                field = "raw_data" if b.HasField("raw_data") else \
                    [f.name for f, _ in b.ListFields() if f.name.endswith("_data")]
                ok = same_proto and same_vals
                print(f"{'ok  ' if ok else 'FAIL'} {'raw' if raw else 'typed'} {a.name}: {field}")
                failures += not ok
            if len(m.graph.initializer) != len(o.graph.initializer):
                print("FAIL initializer count")
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
