"""mnist-8 quantized by `octet quantize` (QDQ, calibrated on the 1000-image
split), compiled by `octet compile` and run on the 9000-image evaluation
split, in both of the compiler's modes:
- default: the QDQ islands become integer kernels (qdq_fuse).  The
  reference is the interpreter on the same integer graph (`octet opt
  --passes=shape_infer,fold,shape_infer,qdq_fuse`): the last quantized
  tensor (exposed as an extra output) must be identical byte for byte on
  every image, the float output within 1e-4 * max(1, max|want|), and top-1
  identical on all 9000.
- --keep-qdq: float compute between exact Q/DQ, against the interpreter
  on the unfused QDQ model.  Float reassociation can move a value across a
  rounding boundary of the next QuantizeLinear, so outputs may differ by a
  quantization step: top-1 identical on all 9000 and outputs within the
  float tolerance are required."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models/mnist-8", "data/mnist")
PIPELINE = "shape_infer,fold,shape_infer,qdq_fuse"


def ref_outputs(model, images, d, tag):
    out_dir = os.path.join(d, tag)
    subprocess.run([cgutil.OCTET, "run", model, "--input", "Input3=" + os.path.join(d, "eval.npy"),
                    "--each-sample", "--output-dir", out_dir], check=True,
                   stdout=subprocess.DEVNULL)
    return {f[:-4]: np.load(os.path.join(out_dir, f)).reshape(len(images), -1)
            for f in os.listdir(out_dir)}


def main():
    model = os.path.join(SHARED, "models", "mnist-8", "model.onnx")
    data = os.path.join(SHARED, "data", "mnist")
    ok = True
    with tempfile.TemporaryDirectory() as d:
        qdq = os.path.join(d, "mnist.qdq.onnx")
        subprocess.run([cgutil.OCTET, "quantize", model, "--calib",
                        os.path.join(data, "calib_1000_f32.npy"), "-o", qdq,
                        "--progress=none"],
                       check=True, stdout=subprocess.DEVNULL)
        m = onnx.load(qdq)
        last_q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"][-1].output[0]
        m.graph.output.append(helper.make_tensor_value_info(last_q, TensorProto.UINT8, None))
        probe = os.path.join(d, "probe.onnx")
        onnx.save(m, probe)
        fused = os.path.join(d, "fused.onnx")
        subprocess.run([cgutil.OCTET, "opt", probe, "--passes=" + PIPELINE, "-o", fused], check=True)
        images = np.load(os.path.join(data, "images_u8.npy"))[1000:10000].astype(np.float32)
        np.save(os.path.join(d, "eval.npy"), images[:, None])  # one sample per index
        out_name = m.graph.output[0].name
        for mode, ref_model, extra in (("integer kernels", fused, []),
                                       ("--keep-qdq", probe, ["--keep-qdq"])):
            ident = "mnistq" if not extra else "mnistk"
            so = cgutil.compile_so(probe, d, ident, extra)
            want = ref_outputs(ref_model, images, d, ident)
            got = [cgutil.run_so(so, ident, [img[None]])[1] for img in images]
            y = np.stack([g[0].reshape(-1) for g in got])
            q = np.stack([g[1].reshape(-1) for g in got])
            y_ref = want[cgutil.safe_name(out_name)]
            q_ref = want[cgutil.safe_name(last_q)]
            same_top1 = int(np.sum(y.argmax(1) == y_ref.argmax(1)))
            q_exact = int(np.sum(np.all(q == q_ref, axis=1)))
            close, msg = cgutil.close(y, y_ref, 1e-4)
            print("%s: last quantized tensor identical on %d/9000 images; top-1 equal %d/9000; "
                  "float output %s" % (mode, q_exact, same_top1, msg))
            good = same_top1 == len(images) and close
            if not extra:  # the integer path is bit-exact
                good = good and q_exact == len(images)
            print("ok" if good else "FAIL")
            ok = ok and good
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
