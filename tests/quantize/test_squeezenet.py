"""squeezenet1.1 quantized by octet, calibrated on the 34 photo crops of
../shared/data/imagenet-photos (none of them the 10 test photos): top-1
equals FP32's on at least 9 of the 10 photos and the softmax output's SQNR
against FP32, pooled over the 10 photos, is at least 20 dB, both in octet's
interpreter and in ONNX Runtime.  FP32 references: the output_0.pb files
(ONNX Runtime 1.30 FP32)."""
import os
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(__file__))
from qtest import *  # noqa: E402,F403

precision = sys.argv[1] if len(sys.argv) > 1 else "int8"
folder = os.path.join(MODELS, "squeezenet1.1")
model = os.path.join(folder, "model.onnx")
calib = os.path.join(DATA, "imagenet-photos", "calib_f32.npy")
sets = sorted(d for d in os.listdir(folder) if d.startswith("test_data_set_"))
x = np.stack([load_pb(os.path.join(folder, d, "input_0.pb")) for d in sets])
ref = np.stack([load_pb(os.path.join(folder, d, "output_0.pb")) for d in sets])

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "squeezenet.qdq.onnx")
    octet("quantize", model, "--calib", calib, "-o", out, f"--precision={precision}",
          "--progress=none")
    onnx.checker.check_model(onnx.load(out), full_check=True)
    y = octet_each_sample(out, "data_0", x, tmp).reshape(len(sets), -1)
    y_ort = np.concatenate(ort_outputs(out, [{"data_0": s} for s in x])).reshape(len(sets), -1)
    r = ref.reshape(len(sets), -1)
    for name, got in (("octet", y), ("ONNX Runtime", y_ort)):
        same = int(np.sum(got.argmax(1) == r.argmax(1)))
        db = sqnr_db(r, got)
        print(f"squeezenet1.1 {precision} in {name}: top-1 equal to FP32 on {same}/10, "
              f"softmax SQNR {db:.2f} dB")
        check(same >= 9, f"{precision} {name}: top-1 equal to FP32 on {same} >= 9 of 10 photos")
        check(db >= 20.0, f"{precision} {name}: softmax SQNR {db:.2f} dB >= 20 dB")
finish()
