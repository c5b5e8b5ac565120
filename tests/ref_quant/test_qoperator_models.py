"""ONNX Runtime's QOperator models of the shared CNNs, end to end.

For each CNN in ../shared/models (mnist-8, squeezenet1.1, ultraface-rfb320,
ppocr-cls, cifar10-cnn) this writes, in a temporary folder, the model that
onnxruntime.quantization.quantize_static(..., quant_format=QOperator)
makes of it (u8 activations, per-channel s8 weights; calibrated on four
inputs: the MNIST calibration split, the ImageNet calibration crops, or
those crops resized and normalized as the model's README says), then on
two other inputs compares with ONNX Runtime (graph optimizations off, so
it runs the ops as written):
  - `octet run` (the interpreter) and the compiled .so (`octet compile
    --emit=so`, `octet run model.so`);
  - the round trip: `octet opt --passes=qop_to_qdq` (every QOperator node
    into DQ -> float op -> Q) run by the interpreter, and that model after
    `--passes=shape_infer,qdq_fuse` (back to the integer ops), each against
    the QOperator model in the interpreter.
The output of the model's first integer op (whose input, the quantized
model input, is the same in every form) is made a graph output too: it
must be bit for bit ONNX Runtime's in the interpreter and compiled, and
after the round trip; within one integer step in the float QDQ form.
Graph outputs are float (a final DequantizeLinear, sometimes float ops
after it); a difference is counted in steps of the scale of the nearest
DequantizeLinear upstream of the output.  The bound is one step, also
where the model keeps float ops between quantized ones (ppocr-cls: ONNX
Runtime leaves 35 BatchNormalization and 9 HardSigmoid in float; the
interpreter and the compiled code fold BatchNormalization as ONNX Runtime
does, in float, without fused multiply-adds, so those give its bits and
no requantization flips); except in the float QDQ form, where every layer
may flip a value by one step and the flips propagate: QDQ_STEPS.  The round trip
back through qdq_fuse must give back as many QLinearConv.  Prints per
model the largest difference of each comparison.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper, version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)

MODELS = ["mnist-8", "squeezenet1.1", "ultraface-rfb320", "ppocr-cls", "cifar10-cnn"]
# the float QDQ form against the integer ops, at the outputs: each op is
# within one step of its integer twin on equal inputs, but a flipped value
# propagates through the layers (squeezenet1.1: 26 convolutions)
QDQ_STEPS = {"": 4, "ppocr-cls": 24}
OCTET = os.environ.get("OCTET", "")


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def resize(x, h, w):
    """Nearest-neighbour resize of a CHW image."""
    hh, ww = x.shape[1:]
    return x[:, np.arange(h) * hh // h][:, :, np.arange(w) * ww // w]


class Inputs:
    """Calibration and evaluation inputs of each model, from ../shared."""

    def __init__(self, shared):
        self.shared = shared
        self.photos = np.load(os.path.join(shared, "data", "imagenet-photos", "calib_f32.npy"),
                              mmap_mode="r")

    def rgb(self, i):
        """Photo i as RGB pixels 0..255 (the crops are BGR minus the mean)."""
        x = np.array(self.photos[i]) + np.array([104, 117, 123], np.float32)[:, None, None]
        return x[::-1]

    def get(self, name, idx):
        s = self.shared
        if name == "mnist-8":
            if idx < 4:  # the calibration split
                x = np.load(os.path.join(s, "data", "mnist", "calib_1000_f32.npy"), mmap_mode="r")[idx]
            else:  # the evaluation split starts at image 1000
                x = np.load(os.path.join(s, "data", "mnist", "images_u8.npy"), mmap_mode="r")[1000 + idx]
            x = np.asarray(x, np.float32)
        elif name == "squeezenet1.1":
            x = (np.array(self.photos[idx]) if idx < 4 else
                 read_pb(os.path.join(s, "models", name, f"test_data_set_{idx}", "input_0.pb"))[0])
        elif name == "ultraface-rfb320":
            x = (resize(self.rgb(idx), 240, 320) - 127) / 128
        elif name == "ppocr-cls":
            x = (resize(self.rgb(idx), 48, 192) / 255 - 0.5) / 0.5
        else:  # cifar10-cnn
            x = resize(self.rgb(idx), 32, 32) / 255
        return np.ascontiguousarray(x[None], dtype=np.float32)


def constants_to_initializers(m):
    """ONNX Runtime's quantizer reads Conv biases from initializers only
    (ppocr-cls has them as Constant nodes)."""
    keep = []
    for n in m.graph.node:
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            t = onnx.TensorProto()
            t.CopyFrom(n.attribute[0].t)
            t.name = n.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)


def make_qoperator(shared, name, inputs, tmp):
    m = onnx.load(os.path.join(shared, "models", name, "model.onnx"))
    if max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) < 13:
        m = version_converter.convert_version(m, 13)
    constants_to_initializers(m)
    raw, pre, qop = (os.path.join(tmp, f"{name}.{k}.onnx") for k in ("f", "pre", "qop"))
    onnx.save(m, raw)
    quant_pre_process(raw, pre, skip_symbolic_shape=True)
    inits = {i.name for i in m.graph.initializer}
    input_name = [i.name for i in m.graph.input if i.name not in inits][0]
    samples = [inputs.get(name, i) for i in range(4)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {input_name: x}

    quantize_static(pre, qop, Reader(), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    # the first integer op's output (its input is the quantized model
    # input, the same in every form) becomes a graph output too
    q = onnx.load(qop)
    first = next(n.output[0] for n in q.graph.node if n.op_type.startswith("QLinear"))
    q.graph.output.append(onnx.helper.make_empty_tensor_value_info(first))
    onnx.save(q, qop)
    return qop, input_name


def octet(*args):
    r = subprocess.run([OCTET, *args], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"octet {args[0]} exited {r.returncode}: {r.stderr[-1500:]}")


def safe_name(name):
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-.") else "_" for c in name)


def output_steps(model_path):
    """Per graph output, the scale of the nearest DequantizeLinear upstream
    (first inputs followed through float ops)."""
    m = onnx.load(model_path)
    prod = {o: n for n in m.graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    steps = {}
    for out in m.graph.output:
        v, step = out.name, None
        for _ in range(64):
            n = prod.get(v)
            if n is None:
                break
            if n.op_type == "DequantizeLinear" and n.input[1] in inits and inits[n.input[1]].size == 1:
                step = float(inits[n.input[1]].reshape(()))
                break
            v = n.input[0]
        steps[out.name] = step
    return steps


def run_octet(model, input_name, xfile, out_dir, extra=()):
    octet("run", model, "--input", f"{input_name}={xfile}", "--output-dir", out_dir, *extra)
    return out_dir


def load_outputs(out_dir, names):
    return [np.load(os.path.join(out_dir, safe_name(n) + ".npy")) for n in names]


def worst(got, want, names, steps):
    """Largest difference (over the float outputs, in output steps; over
    the integer one, in integer steps): (float, integer)."""
    w = [0.0, 0.0]
    for name, g, e in zip(names, got, want):
        if g.shape != e.shape or g.dtype != e.dtype:
            return [float("inf")] * 2
        d = float(np.abs(g.astype(np.float64) - e.astype(np.float64)).max())
        if g.dtype.kind in "iu":
            w[1] = max(w[1], d)
        else:
            w[0] = max(w[0], d / steps[name] if steps[name] else (0.0 if d == 0 else float("inf")))
    return w


def check_model(shared, inputs, name, tmp):
    qop, input_name = make_qoperator(shared, name, inputs, tmp)
    names = [o.name for o in onnx.load(qop).graph.output]
    steps = output_steps(qop)
    qdq, back = os.path.join(tmp, f"{name}.qdq.onnx"), os.path.join(tmp, f"{name}.back.onnx")
    octet("opt", "--passes=qop_to_qdq", qop, "-o", qdq)
    octet("opt", "--passes=shape_infer,qdq_fuse", qdq, "-o", back)
    n_conv = [sum(n.op_type == "QLinearConv" for n in onnx.load(p).graph.node) for p in (qop, back)]
    left = [n.op_type for n in onnx.load(qdq).graph.node if n.op_type.startswith("QLinear")
            or n.op_type in ("QGemm", "MatMulIntegerToFloat")]
    if left:
        print(f"FAIL {name}: qop_to_qdq left {left}")
        return False
    x0 = inputs.get(name, 4)
    shape = ",".join(map(str, x0.shape))
    base = os.path.join(tmp, "c_" + name.replace("-", "_").replace(".", "_"))
    octet("compile", qop, "-o", base, "--emit=so", "--input-shape", f"{input_name}={shape}")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort_int8.session(ort, qop, so)
    res = {k: [0.0, 0.0] for k in ("interp", "compiled", "qdq", "qdq_fused")}
    for k in (4, 5):
        x = inputs.get(name, k)
        xf = os.path.join(tmp, f"{name}.x{k}.npy")
        np.save(xf, x)
        want = sess.run(None, {input_name: x})
        o = lambda tag: os.path.join(tmp, f"{name}.{tag}{k}")  # noqa: E731
        interp = load_outputs(run_octet(qop, input_name, xf, o("i")), names)
        comp = load_outputs(run_octet(base + ".so", input_name, xf, o("c")), names)
        via_qdq = load_outputs(run_octet(qdq, input_name, xf, o("q")), names)
        fused = load_outputs(run_octet(back, input_name, xf, o("b")), names)
        res["interp"] = np.maximum(res["interp"], worst(interp, want, names, steps))
        res["compiled"] = np.maximum(res["compiled"], worst(comp, want, names, steps))
        res["qdq"] = np.maximum(res["qdq"], worst(via_qdq, interp, names, steps))
        res["qdq_fused"] = np.maximum(res["qdq_fused"], worst(fused, interp, names, steps))
    # first op: bit for bit against ONNX Runtime and after the round trip,
    # one step in the float QDQ form; final outputs: one step, the float
    # QDQ form QDQ_STEPS (flips propagate)
    ok = (res["interp"][1] == 0 and res["compiled"][1] == 0 and res["qdq"][1] <= 1 and
          res["qdq_fused"][1] == 0 and res["compiled"][0] <= 1 and res["interp"][0] <= 1
          and res["qdq"][0] <= QDQ_STEPS.get(name, QDQ_STEPS[""]) and res["qdq_fused"][0] <= 1)
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max difference, outputs in output steps / first "
          f"integer op in integer steps: interpreter vs ORT {res['interp'][0]:g} / "
          f"{res['interp'][1]:g}, compiled vs ORT {res['compiled'][0]:g} / {res['compiled'][1]:g}, "
          f"qop_to_qdq vs QOperator {res['qdq'][0]:g} / {res['qdq'][1]:g}, qop_to_qdq+qdq_fuse "
          f"vs QOperator {res['qdq_fused'][0]:g} / {res['qdq_fused'][1]:g} (QLinearConv "
          f"{n_conv[0]}, after the round trip {n_conv[1]}); output steps "
          + ", ".join(f"{k}={v:.4g}" for k, v in steps.items() if v), flush=True)
    return ok and n_conv[0] == n_conv[1]


def main():
    """The models named on the command line (ctest runs one per test), or
    all of them."""
    names = sys.argv[1:] or MODELS
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model {unknown[0]}: one of {', '.join(MODELS)}")
        return 2
    shared = need("data/imagenet-photos/calib_f32.npy", "data/mnist/calib_1000_f32.npy",
                  *[f"models/{m}/model.onnx" for m in names])
    inputs = Inputs(shared)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                bad += not check_model(shared, inputs, name, tmp)
            except RuntimeError as e:
                bad += 1
                print(f"FAIL {name}: {e}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
