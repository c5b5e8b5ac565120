"""mnist-8 quantized by `octet quantize` (QDQ, calibrated on the 1000-image
split), compiled by `octet compile` (float compute with exact Q/DQ) and run
on the 9000-image evaluation split; compared with the reference
interpreter on the same QDQ model.  Float reassociation inside a layer can
move a value across a rounding boundary of the next QuantizeLinear, so the
outputs may differ by a quantization step: the test requires identical
top-1 predictions on all 9000 images, and outputs within 2 output
quantization steps when the graph output is a DequantizeLinear, else within
1e-4 * max(1, max|want|) (the float tolerance) on every image."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

SHARED = os.environ["OCTET_SHARED"]


def main():
    model = os.path.join(SHARED, "models", "mnist-8", "model.onnx")
    data = os.path.join(SHARED, "data", "mnist")
    with tempfile.TemporaryDirectory() as d:
        qdq = os.path.join(d, "mnist.qdq.onnx")
        subprocess.run([cgutil.OCTET, "quantize", model, "--calib",
                        os.path.join(data, "calib_1000_f32.npy"), "-o", qdq,
                        "--progress=none"],
                       check=True, stdout=subprocess.DEVNULL)
        m = onnx.load(qdq)
        ops = [n.op_type for n in m.graph.node]
        assert "QuantizeLinear" in ops and "DequantizeLinear" in ops, ops
        so = cgutil.compile_so(qdq, d, "mnistq")
        images = np.load(os.path.join(data, "images_u8.npy"))[1000:10000].astype(np.float32)
        np.save(os.path.join(d, "eval.npy"), images[:, None])  # one sample per index
        out_dir = os.path.join(d, "ref")
        subprocess.run([cgutil.OCTET, "run", qdq, "--input", "Input3=" + os.path.join(d, "eval.npy"),
                        "--each-sample", "--output-dir", out_dir], check=True,
                       stdout=subprocess.DEVNULL)
        want = np.load(os.path.join(out_dir, os.listdir(out_dir)[0])).reshape(len(images), -1)
        got = np.stack([cgutil.run_so(so, "mnistq", [img[None]])[1][0].reshape(-1)
                        for img in images])
        # the output's quantization step: scale of the last DequantizeLinear
        inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        out_name = m.graph.output[0].name
        last = [n for n in m.graph.node if out_name in n.output][0]
        step = float(inits[last.input[1]]) if last.op_type == "DequantizeLinear" else 0.0
        diff = np.abs(got.astype(np.float64) - want)
        same_top1 = int(np.sum(got.argmax(1) == want.argmax(1)))
        exact = int(np.sum(np.all(got == want, axis=1)))
        print("output op %s, step %g; images bit-identical %d/9000; top-1 equal %d/9000; "
              "max diff %g (%.2f steps)" % (last.op_type, step, exact, same_top1,
                                            diff.max(), diff.max() / step if step else -1))
        if step > 0:
            close_enough = diff.max() <= 2 * step * (1 + 1e-6)
        else:  # a float op ends the graph: the float tolerance of the models test
            close_enough = cgutil.close(got, want, 1e-4)[0]
        ok = same_top1 == len(images) and close_enough
        print("ok" if ok else "FAIL")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
