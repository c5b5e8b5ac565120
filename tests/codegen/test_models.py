"""Every shared FP32 model compiled to a shared library by `octet compile`,
run through its signature on one input (the model's test_data_set_0 when it
has one, else seeded random data of the input shape) and compared with the
reference interpreter (`octet run`): |got - want| <= 1e-4 * max(1,
max|want|) per output.  ppocr-cls compiles without --input-shape (H and W
read at run time) and runs at 1x3x48x192."""
import os
import sys
import tempfile

import numpy as np
from onnx import load_tensor, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

RTOL = 1e-4
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models")
MODELS = {
    "mnist-8": [],
    "squeezenet1.1": [],
    "cifar10-cnn": ["--input-shape", "modelInput=1x3x32x32"],
    "iris-mlp": ["--input-shape", "input=3x4"],
    "mnist-mlp-bn": [],
    "ultraface-rfb320": [],
    "ppocr-cls": [],
}
# the input shape run where the library takes symbolic dims
RUN_SHAPES = {"ppocr-cls": [1, 3, 48, 192]}


def main():
    only = sys.argv[1:]
    failures = 0
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as d:
        for model, extra in MODELS.items():
            if only and model not in only:
                continue
            path = os.path.join(SHARED, "models", model, "model.onnx")
            name = model.replace("-", "_").replace(".", "_")
            so = cgutil.compile_so(path, d, name, extra)
            sig = cgutil.signature(so, name)
            inputs = []
            for k, spec in enumerate(sig["inputs"]):
                pb = os.path.join(SHARED, "models", model, "test_data_set_0", "input_%d.pb" % k)
                if os.path.exists(pb):
                    arr = numpy_helper.to_array(load_tensor(pb))
                else:
                    arr = rng.random(RUN_SHAPES.get(model, spec["shape"])).astype(spec["dtype"])
                inputs.append((spec["name"], arr))
            _, got = cgutil.run_so(so, name, [a for _, a in inputs])
            want = cgutil.run_ref(path, inputs, extra)
            for spec, g in zip(sig["outputs"], got):
                ok, how = cgutil.close(g, want[cgutil.safe_name(spec["name"])], RTOL)
                print("%-18s %-24s %s  %s" % (model, spec["name"], "ok  " if ok else "FAIL", how))
                failures += not ok
    print("%d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
