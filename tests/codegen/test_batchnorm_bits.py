"""Inference BatchNormalization gives ONNX Runtime's bits, interpreted and
compiled.

Float ops between quantized ones (ONNX Runtime's QOperator models keep
BatchNormalization in float) must round as ONNX Runtime does, or a flipped
last bit flips a requantized value.  ONNX Runtime's CPU kernel folds the
parameters in float32 (inv = 1 / sqrt(var + eps), a = inv * scale,
b = B - mean * a) and computes x * a + b with the multiply and the add each
rounded.  One node, 512 channels with variances over eight decades, run by
ONNX Runtime (the oracle; graph optimizations off), by `octet run`, and by
a .so from `octet compile`, with the parameters as initializers (folded at
compile time) and as graph inputs (folded in the generated code): every
output element must equal ONNX Runtime's bit for bit.  The test also counts
how many elements a fold in double (a = scale / sqrt(var + eps) rounded
once) or a fused multiply-add would change, to show the inputs tell the
forms apart."""
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

C = 512
EPS = 1e-3
rng = np.random.default_rng(1919)
PARAMS = ["scale", "bias", "mean", "var"]


def params():
    f = np.float32
    return {"scale": rng.normal(0, 2, C).astype(f), "bias": rng.normal(0, 1, C).astype(f),
            "mean": rng.normal(0, 3, C).astype(f),
            "var": (10.0 ** rng.uniform(-4, 4, C)).astype(f)}


def build(path, p, runtime):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, C, 3, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, C, 3, 5])
    node = helper.make_node("BatchNormalization", ["x"] + PARAMS, ["y"], name="bn",
                            epsilon=EPS)
    ins, inits = [x], []
    for k in PARAMS:
        if runtime:
            ins.append(helper.make_tensor_value_info(k, TensorProto.FLOAT, [C]))
        else:
            inits.append(numpy_helper.from_array(p[k], k))
    g = helper.make_graph([node], "bn", ins, [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
    m.ir_version = 8
    onnx.save(m, path)


def other_forms(x, p):
    """Elements that differ from the float fold in the double fold and with
    a fused multiply-add (numpy: the product exact in double, one rounding)."""
    f = np.float32
    inv = f(1) / np.sqrt(p["var"] + f(EPS))
    a = inv * p["scale"]
    b = p["bias"] - p["mean"] * a
    sh = (1, C, 1, 1)
    want = x * a.reshape(sh) + b.reshape(sh)
    a64 = p["scale"].astype(np.float64) / np.sqrt(p["var"].astype(np.float64) + float(f(EPS)))
    b64 = p["bias"] - p["mean"] * a64
    dbl = x * a64.astype(f).reshape(sh) + b64.astype(f).reshape(sh)
    fma = (x.astype(np.float64) * a.reshape(sh) + b.reshape(sh)).astype(f)
    return want, int(np.sum(dbl != want)), int(np.sum(fma != want))


def main():
    failures = 0
    x = (rng.normal(0, 4, (2, C, 3, 5))).astype(np.float32)
    p = params()
    with tempfile.TemporaryDirectory() as d:
        for runtime in (False, True):
            tag = "runtime_params" if runtime else "constant_params"
            path = os.path.join(d, tag + ".onnx")
            build(path, p, runtime)
            feeds = {"x": x, **(p if runtime else {})}
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            want = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(
                None, feeds)[0]
            numpy_fold, n_dbl, n_fma = other_forms(x, p)
            print("note %s: ONNX Runtime vs numpy's float fold: %d of %d differ; a double "
                  "fold would change %d, a fused multiply-add %d" % (
                      tag, int(np.sum(numpy_fold != want)), want.size, n_dbl, n_fma))
            named = [("x", x)] + ([(k, p[k]) for k in PARAMS] if runtime else [])
            proc, outs = cgutil.run_octet(path, named)
            got = {"octet run": None if outs is None else outs["y"]}
            lib = cgutil.compile_so(path, d, tag)
            got["compiled"] = cgutil.run_so(lib, tag, [a for _, a in named])[1][0]
            for how, g in got.items():
                ok = g is not None and g.shape == want.shape and \
                    np.array_equal(g.view(np.uint32), want.view(np.uint32))
                bad = -1 if g is None or g.shape != want.shape else \
                    int(np.sum(g.view(np.uint32) != want.view(np.uint32)))
                print("%s  %s %s: %d of %d elements differ from ONNX Runtime's bits" % (
                    "ok  " if ok else "FAIL", tag, how, bad, want.size), flush=True)
                failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
