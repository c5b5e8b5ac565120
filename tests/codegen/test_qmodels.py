"""Every shared model quantized by `octet quantize` (and mnist-8 quantized by
ONNX Runtime's quantize_static, another tool's QDQ model), compiled by
`octet compile` onto the integer kernels, run through its signature, and
compared with the reference interpreter running the same integer graph
(`octet opt --passes=shape_infer,fold,shape_infer,qdq_fuse`, the compile
pipeline).  Every quantized tensor of the model (each QuantizeLinear's
output, made a graph output for the test) must be identical byte for byte;
the float outputs within 1e-4 * max(1, max|want|).  The compile report must
name a kernel path for every integer Conv/MatMul/Gemm, and squeezenet1.1
must give byte-identical outputs on 1 and 2 threads."""
import csv
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, version_converter
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                      QuantType, quantize_static)

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models", "data/mnist", "data/imagenet-photos")
MODELS = os.path.join(SHARED, "models")
DATA = os.path.join(SHARED, "data")
PIPELINE = "shape_infer,fold,shape_infer,qdq_fuse"
rng = np.random.default_rng(7)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def iris_rows():
    with open(os.path.join(MODELS, "iris-mlp", "Iris.csv")) as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in rows[0] if k not in ("Id", "Species")]
    return np.array([[float(r[k]) for k in keys] for r in rows], np.float32)


def cases():
    """model -> (input name, calibration [N, batch-1 shape...], two test inputs, compile args)"""
    photos = np.load(os.path.join(DATA, "imagenet-photos", "calib_f32.npy"))
    mnist = np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))
    iris = iris_rows()
    ultra = rng.uniform(-1, 1, (6, 1, 3, 240, 320)).astype(np.float32)
    ocr = rng.uniform(-1, 1, (6, 1, 3, 48, 192)).astype(np.float32)
    cifar = rng.normal(0, 1, (10, 1, 3, 32, 32)).astype(np.float32)
    flat = (mnist.reshape(-1, 1, 784) / 255.0).astype(np.float32)
    return {
        "mnist-8": ("Input3", mnist[:100].reshape(-1, 1, 1, 28, 28),
                    mnist[900:902].reshape(-1, 1, 1, 28, 28), []),
        "squeezenet1.1": ("data_0", photos[:8].reshape(-1, 1, 3, 224, 224),
                          photos[20:22].reshape(-1, 1, 3, 224, 224), []),
        "ultraface-rfb320": ("input", ultra[:4], ultra[4:], []),
        "ppocr-cls": ("x", ocr[:4], ocr[4:], []),
        "cifar10-cnn": ("modelInput", cifar[:8], cifar[8:],
                        ["--input-shape", "modelInput=1x3x32x32"]),
        "iris-mlp": ("input", iris[::2].reshape(-1, 1, 4), iris[1:4:2].reshape(-1, 1, 4),
                     ["--input-shape", "input=1x4"]),
        "mnist-mlp-bn": ("network_input", flat[:100], flat[900:902], []),
    }


def expose_quantized(src, dst):
    """Copies model src to dst with every QuantizeLinear output also a graph
    output; returns their names."""
    m = onnx.load(src)
    have = {o.name for o in m.graph.output}
    inits = {t.name: t for t in m.graph.initializer}
    names = []
    for n in m.graph.node:
        if n.op_type != "QuantizeLinear" or n.output[0] in have:
            continue
        zp = inits.get(n.input[2]) if len(n.input) > 2 else None
        elem = zp.data_type if zp is not None else TensorProto.UINT8
        m.graph.output.append(helper.make_tensor_value_info(n.output[0], elem, None))
        names.append(n.output[0])
    onnx.save(m, dst)
    return names


def ort_qdq_mnist(tmp):
    m13 = os.path.join(tmp, "mnist13.onnx")
    onnx.save(version_converter.convert_version(
        onnx.load(os.path.join(MODELS, "mnist-8", "model.onnx")), 13), m13)
    x = np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= 50:
                return None
            self.i += 1
            return {"Input3": x[self.i - 1:self.i]}

    out = os.path.join(tmp, "mnist.ortq.onnx")
    quantize_static(m13, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out, x[900:902].reshape(-1, 1, 1, 28, 28)


def compare(name, qdq, inp, tests, extra, tmp, integer=True):
    probe = os.path.join(tmp, name + ".probe.onnx")
    qnames = expose_quantized(qdq, probe)
    fused = os.path.join(tmp, name + ".fused.onnx")
    subprocess.run([cgutil.OCTET, "opt", probe, "--passes=" + PIPELINE, "-o", fused], check=True)
    report = os.path.join(tmp, name + ".report.txt")
    ident = "m_" + "".join(c if c.isalnum() else "_" for c in name)
    so = cgutil.compile_so(probe, tmp, ident, ["--report", report, *extra])
    lines = [l.split("\t") for l in open(report).read().splitlines() if not l.startswith("#")]
    fused_ops = [n.op_type for n in onnx.load(fused).graph.node]
    n_int = sum(op in ("QLinearConv", "QLinearMatMul", "QGemm") for op in fused_ops)
    n_rep = sum(l[1] in ("QLinearConv", "QLinearMatMul", "QGemm") and
                ("exact" in l[3] or "checked" in l[3]) for l in lines)
    if integer:
        check(n_int > 0 and n_rep == n_int,
              f"{name}: {n_int} integer linear ops, {n_rep} with an exact path in the report")
    for t, x in enumerate(tests):
        sig, outs = cgutil.run_so(so, ident, [x])
        want = cgutil.run_ref(fused, [(inp, x)], extra=[] if integer else ["--format=pb"])
        n_exact = n_float = 0
        bad = []
        for spec, got in zip(sig["outputs"], outs):
            ref = want[cgutil.safe_name(spec["name"])]
            if spec["dtype"].startswith("f8"):  # compare the float8 bytes
                ref = np.ascontiguousarray(ref).view(np.uint8)
            ref = ref.reshape(got.shape)
            if got.dtype in (np.uint8, np.int8):
                n_exact += 1
                if not np.array_equal(got, ref):
                    bad.append("%s: %d of %d bytes differ" % (spec["name"], int(np.sum(got != ref)),
                                                             got.size))
            else:
                n_float += 1
                ok, msg = cgutil.close(got, ref, 1e-4)
                if not ok:
                    bad.append("%s: %s" % (spec["name"], msg))
        check(not bad and n_exact == len(qnames),
              f"{name} input {t}: {n_exact} quantized tensors identical, {n_float} float "
              f"outputs within 1e-4" + ("" if not bad else ": " + "; ".join(bad[:4])))
    return so, ident


def main():
    only = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (inp, calib, tests, extra) in cases().items():
            if only and name not in only:
                continue
            calib_file = os.path.join(tmp, name + ".calib.npy")
            np.save(calib_file, calib)
            qdq = os.path.join(tmp, name + ".qdq.onnx")
            subprocess.run([cgutil.OCTET, "quantize", os.path.join(MODELS, name, "model.onnx"),
                            "--calib", calib_file, "-o", qdq, "--progress=none"], check=True,
                           stdout=subprocess.DEVNULL)
            so, ident = compare(name, qdq, inp, tests, extra, tmp)
            if name == "squeezenet1.1":
                outs = {}
                for threads in ("1", "2"):
                    d = os.path.join(tmp, "t" + threads)
                    x = os.path.join(tmp, "x.npy")
                    np.save(x, tests[0])
                    subprocess.run([cgutil.OCTET, "run", so, "--input", inp + "=" + x,
                                    "--threads", threads, "--output-dir", d], check=True,
                                   stdout=subprocess.DEVNULL)
                    outs[threads] = {f: open(os.path.join(d, f), "rb").read()
                                     for f in sorted(os.listdir(d))}
                check(outs["1"] == outs["2"] and len(outs["1"]) > 1,
                      f"squeezenet1.1: {len(outs['1'])} outputs byte-identical on 1 and 2 threads")
        if not only or "mnist-8-fp8" in only:
            # FP8 (E4M3FN) QDQ: Q/DQ through the reference's own conversion
            # tables, the float ops between them in float
            inp, calib, tests, extra = cases()["mnist-8"]
            calib_file = os.path.join(tmp, "fp8.calib.npy")
            np.save(calib_file, calib)
            qdq = os.path.join(tmp, "mnist-8-fp8.qdq.onnx")
            subprocess.run([cgutil.OCTET, "quantize", os.path.join(MODELS, "mnist-8", "model.onnx"),
                            "--calib", calib_file, "-o", qdq, "--precision=fp8",
                            "--progress=none"], check=True, stdout=subprocess.DEVNULL)
            compare("mnist-8-fp8", qdq, inp, tests, extra, tmp, integer=False)
        if not only or "ort-mnist-8" in only:
            qdq, tests = ort_qdq_mnist(tmp)
            compare("ort-mnist-8", qdq, "Input3", tests, [], tmp)
    print("%d failure(s)" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
