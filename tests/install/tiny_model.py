"""A small FP32 CNN built with onnx.helper (no shared data needed) for the
tests in this folder: Conv 3x3 (3->8) + Relu, depthwise Conv 3x3 (8->8) +
Relu, Flatten, Gemm (-> 10).  Weights and inputs come from a fixed seed;
`input_value(k, n)` is the same formula consumer/run_model.c fills its
inputs with."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_SHAPE = (1, 3, 8, 8)


def build(path):
    rng = np.random.default_rng(12)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((8, 1, 3, 3)) * 0.3).astype(np.float32)
    b2 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    w3 = (rng.standard_normal((8 * 8 * 8, 10)) * 0.05).astype(np.float32)
    b3 = (rng.standard_normal(10) * 0.1).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"), (w3, "w3"), (b3, "b3")]]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dwconv", pads=[1, 1, 1, 1],
                         group=8),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(INPUT_SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def calibration(path, samples=8):
    """Writes `samples` inputs (one array, split along axis 0) to path (.npy)."""
    rng = np.random.default_rng(5)
    np.save(path, rng.uniform(-1, 1, (samples,) + INPUT_SHAPE[1:]).astype(np.float32))


def input_value(k, n):
    """Element i of input k, as consumer/run_model.c computes it."""
    i = np.arange(n)
    return ((((i * 7 + k * 3) % 17) - 8) / 8.0).astype(np.float32)
