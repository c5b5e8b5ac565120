"""Image height and width symbolic (x [N, C, H, W]) compiled WITHOUT
--input-shape: sizes derived from them, floor((a*s + b) / c) of one symbol
(a strided Conv's output, a MaxPool's), are computed at run time by
NAME_run_dims (src/codegen/symdims.c), and Conv (octk_sconv and
octk_sdwconv with H/W/OH/OW set at run time, workspace sized by
NAME_run_dims), BatchNormalization, MaxPool and the element-wise ops take
them.

- spatial: a model built here (stride-2 3x3 Conv with pads, Conv 1x1,
  depthwise 3x3 stride 2, BatchNormalization, Relu, MaxPool 3x3 stride 2
  pad 1, GlobalAveragePool) at H x W = 48x192, 48x320, 37x53 (odd: the
  forms' rounding) and 9x13, batch 1 and 4, against the interpreter
  (floats within 1e-5 of the output's magnitude);
- refused: a graph whose output keeps a derived dim (the interface names
  symbols only) and one that flattens H*W (not a form of one symbol) stop
  with exit 3 naming the node/value and suggesting --input-shape;
- ppocr-cls (../shared; skipped with a message without it), FP32 and
  INT8 quantized by `octet quantize` on calibration images: compiled
  without --input-shape; FP32 run at batch 1 and 4 and at 48x192 and
  48x320 against the interpreter (within 1e-5); the INT8 model, which
  octet quantize writes with the samples' fixed shape (ppocr-cls has a
  Shape node), at that shape, every quantized tensor bit for bit against
  the interpreter on the qdq_fuse'd graph, as test_symdims.py does."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402
from shared_data import SHARED  # noqa: E402
from test_symdims import compare as compare_outs  # noqa: E402
from test_symdims import expose_quantized, PIPELINE  # noqa: E402

F = TensorProto.FLOAT
rng = np.random.default_rng(13)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def tensor(name, shape, scale=0.5):
    return helper.make_tensor(name, F, shape, rng.normal(0, scale, int(np.prod(shape)))
                              .astype(np.float32))


def spatial_model(path):
    bn = [tensor("bn_s", [8]), tensor("bn_b", [8]), tensor("bn_m", [8], 0.1),
          helper.make_tensor("bn_v", F, [8], rng.uniform(0.5, 2, 8).astype(np.float32))]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="conv_s2", strides=[2, 2],
                         pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c0", "bn_s", "bn_b", "bn_m", "bn_v"], ["n0"],
                         name="bn"),
        helper.make_node("Relu", ["n0"], ["r0"], name="relu"),
        helper.make_node("Conv", ["r0", "wd"], ["d0"], name="dw_s2", group=8, strides=[2, 2],
                         pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Conv", ["d0", "w1"], ["p0"], name="pw", kernel_shape=[1, 1]),
        helper.make_node("MaxPool", ["p0"], ["m0"], name="pool", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["m0", "m0"], ["a0"], name="add"),
        helper.make_node("GlobalAveragePool", ["a0"], ["y"], name="gap"),
    ]
    g = helper.make_graph(
        nodes, "spatial", [helper.make_tensor_value_info("x", F, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", F, ["N", 16, 1, 1])],
        initializer=[tensor("w0", [8, 3, 3, 3]), tensor("b0", [8]), tensor("wd", [8, 1, 3, 3]),
                     tensor("w1", [16, 8, 1, 1]), *bn])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def spatial_case(tmp):
    path = os.path.join(tmp, "spatial.onnx")
    spatial_model(path)
    so = cgutil.compile_so(path, tmp, "spatial")
    for n, h, w in ((1, 48, 192), (4, 48, 320), (1, 37, 53), (2, 9, 13)):
        x = rng.normal(0, 1, (n, 3, h, w)).astype(np.float32)
        _, outs = cgutil.run_so(so, "spatial", [x])
        want = cgutil.run_ref(path, [("x", x)])["y"]
        ok, msg = cgutil.close(outs[0], want, 1e-5)
        check(ok, f"spatial model at batch {n}, {h}x{w}: matches the interpreter ({msg})")


def refused(tmp):
    w = tensor("w", [4, 3, 3, 3])
    cases = {
        # the output [1, 4, H', W'] keeps a derived dim
        "derived_out": (helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], name="conv0", strides=[2, 2])],
            "d", [helper.make_tensor_value_info("x", F, [1, 3, "H", "W"])],
            [helper.make_tensor_value_info("y", F, None)], initializer=[w]), "'y'"),
        # H*W in one dim: a product of two symbols
        "flatten_hw": (helper.make_graph(
            [helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=2),
             helper.make_node("ReduceMax", ["f"], ["y"], name="max", keepdims=0)],
            "f", [helper.make_tensor_value_info("x", F, [1, 3, "H", "W"])],
            [helper.make_tensor_value_info("y", F, None)]), "'flat'"),
    }
    for name, (g, named) in cases.items():
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
        p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(tmp, name),
                            "--emit=so"], capture_output=True, text=True)
        last = (p.stderr.strip().splitlines() or [""])[-1][:220]
        check(p.returncode == 3 and named in p.stderr and "--input-shape" in p.stderr,
              f"{name}: refused (exit {p.returncode}) naming {named}: {last}")
        p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(tmp, name),
                            "--emit=so", "--input-shape", "x=1x3x16x16"], capture_output=True)
        check(p.returncode == 0, f"{name}: compiles with --input-shape x=1x3x16x16")


def ppocr_case(tmp):
    path = os.path.join(SHARED, "models", "ppocr-cls", "model.onnx")
    if not os.path.exists(path):
        print("SKIP: ../shared/models/ppocr-cls not found")
        return
    calib = rng.uniform(-1, 1, (8, 1, 3, 48, 192)).astype(np.float32)
    calib_file = os.path.join(tmp, "ppocr.calib.npy")
    np.save(calib_file, calib)
    qdq = os.path.join(tmp, "ppocr.qdq.onnx")
    subprocess.run([cgutil.OCTET, "quantize", path, "--calib", calib_file, "-o", qdq,
                    "--progress=none"], check=True, stdout=subprocess.DEVNULL)
    probe = os.path.join(tmp, "ppocr.probe.onnx")
    expose_quantized(qdq, probe)
    for kind, model, ref_args, integer in (("fp32", path, [], False),
                                           ("int8", probe, ["--passes=" + PIPELINE], True)):
        ident = "ppocr_" + kind
        p = subprocess.run([cgutil.OCTET, "compile", model, "-o", os.path.join(tmp, ident),
                            "--emit=so"], capture_output=True, text=True)
        last = (p.stderr.strip().splitlines() or [""])[-1][:220]
        check(p.returncode == 0, f"ppocr-cls {kind}: compiles without --input-shape "
              f"(exit {p.returncode}{': ' + last if last else ''})")
        if p.returncode:
            continue
        so = os.path.join(tmp, ident + ".so")
        sig = cgutil.signature(so, ident)
        sizes = ((1, 192), (4, 192), (1, 320), (4, 320))
        if "dims" not in sig:
            # octet quantize fixes the shapes of a model with a Shape node
            # to the calibration samples' (docs/compile.md)
            shape = sig["inputs"][0]["shape"]
            print(f"note: ppocr-cls {kind} is static {shape} (octet quantize folded "
                  f"its Shape node at the samples' size)")
            sizes = ((shape[0], shape[3]),)
        for n, w in sizes:
            x = rng.uniform(-1, 1, (n, 3, 48, w)).astype(np.float32)
            sig, outs = cgutil.run_so(so, ident, [x])
            want = cgutil.run_ref(model, [("x", x)], extra=ref_args)
            why = compare_outs("ppocr-cls", sig, outs, want, integer)
            check(not why, f"ppocr-cls {kind} batch {n} at 48x{w}: matches the interpreter"
                  + (": " + why if why else ""))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        spatial_case(tmp)
        refused(tmp)
        ppocr_case(tmp)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
