"""End-to-end check of QuantizeLinear, QLinearConv and DequantizeLinear on
a real network: SqueezeNet 1.1 (../shared/models) converted to opset 13 and
quantized by ONNX Runtime's quantize_static in QOperator format (u8
activations, per-channel s8 weights, int32 bias; calibrated on three of its
photos).  Every QuantizeLinear, QLinearConv and DequantizeLinear output is
made a graph output, and Octet's reference interpreter must reproduce ONNX
Runtime's values (graph optimizations off) bit for bit on another photo.
This is what pins the requantization arithmetic (a float32 product
acc * M): a double product differs on a few elements per million.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper, version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def safe_name(name):
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-.") else "_" for c in name)


def main():
    octet = os.environ["OCTET"]
    shared = need("models/squeezenet1.1")
    folder = os.path.join(shared, "models", "squeezenet1.1")
    model_file = [f for f in os.listdir(folder) if f.endswith(".onnx")][0]
    photos = [read_pb(os.path.join(folder, d, "input_0.pb"))
              for d in sorted(os.listdir(folder)) if d.startswith("test_data_set_")]
    g0 = onnx.load(os.path.join(folder, model_file)).graph
    inits = {i.name for i in g0.initializer}
    input_name = [i.name for i in g0.input if i.name not in inits][0]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(photos[:3])

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {input_name: x}

    with tempfile.TemporaryDirectory() as tmp:
        m13 = version_converter.convert_version(onnx.load(os.path.join(folder, model_file)), 13)
        onnx.save(m13, os.path.join(tmp, "m13.onnx"))
        qop = os.path.join(tmp, "qop.onnx")
        quantize_static(os.path.join(tmp, "m13.onnx"), qop, Reader(), quant_format=QuantFormat.QOperator,
                        op_types_to_quantize=["Conv"], activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True)
        m = onnx.load(qop)
        names = [n.output[0] for n in m.graph.node
                 if n.op_type in ("QuantizeLinear", "QLinearConv", "DequantizeLinear")]
        if sum(n.op_type == "QLinearConv" for n in m.graph.node) < 20:
            print("quantize_static did not produce the expected QLinearConv nodes")
            return 1
        del m.graph.output[:]
        for name in names:
            m.graph.output.append(helper.make_empty_tensor_value_info(name))
        full = os.path.join(tmp, "all.onnx")
        onnx.save(m, full)

        x = photos[5]
        np.save(os.path.join(tmp, "x.npy"), x)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        want = ort_int8.session(ort, full, so).run(None, {input_name: x})
        out = os.path.join(tmp, "out")
        r = subprocess.run([octet, "run", full, "--input", f"{input_name}={os.path.join(tmp, 'x.npy')}",
                            "--output-dir", out], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            print(f"octet run exited {r.returncode}: {r.stderr[:1000]}")
            return 1
        bad = 0
        for name, w in zip(names, want):
            g = np.load(os.path.join(out, safe_name(name) + ".npy"))
            diff = int((g != w).sum()) if g.shape == w.shape else -1
            if diff:
                bad += 1
                print(f"FAIL {name} ({w.dtype}): {diff} of {w.size} elements differ")
        print(f"{len(names) - bad} of {len(names)} quantized SqueezeNet tensors match ONNX Runtime")
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
