"""silero-vad (../shared/models/unsupported/silero-vad-lstm-if.onnx: LSTMs
inside nested If branches) per chunk: the model compiled by `octet compile
--emit=so` (its Ifs resolved at compile time, docs/compile.md) and called
through ctypes on one thread, against ONNX Runtime (CPU provider, one
intra-op and one inter-op thread), on the same 576-sample chunk (512 new
samples after 64 of context) and state.  The two are timed interleaved in
bursts of N runs, five rounds; the figure is each one's best round.  Before
timing, both outputs are compared (largest difference relative to the
largest |value|, limit 1e-5).

usage: bench/silero_vad_bench.py [N]      (OCTET: the octet binary)
"""
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OCTET = os.environ.get("OCTET", os.path.join(ROOT, "build", "octet"))
MODEL = os.path.join(ROOT, "..", "shared", "models", "unsupported", "silero-vad-lstm-if.onnx")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    if not os.path.exists(MODEL):
        print("skipped: %s not found" % MODEL)
        return 0
    with tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "sil")
        subprocess.run([OCTET, "compile", MODEL, "-o", base, "--emit=so", "--input-shape",
                        "input=1,576", "--input-shape", "state=2,1,128"], check=True)
        lib = ctypes.CDLL(base + ".so")
        sig = json.loads(ctypes.string_at(ctypes.addressof(
            ctypes.c_char.in_dll(lib, "sil_signature"))).decode())
        rng = np.random.default_rng(1)
        x = (0.3 * rng.standard_normal((1, 576))).astype(np.float32)
        st = (0.1 * rng.standard_normal((2, 1, 128))).astype(np.float32)
        sr = np.array(16000, np.int64)
        outs = [np.empty(o["shape"], np.float32) for o in sig["outputs"]]
        scratch = np.zeros(sig["scratch_size"] + 64, np.uint8)
        at = ctypes.c_void_p((scratch.ctypes.data + 63) // 64 * 64)
        ins = (ctypes.c_void_p * 3)(x.ctypes.data, st.ctypes.data, sr.ctypes.data)
        ops = (ctypes.c_void_p * 2)(*[o.ctypes.data for o in outs])
        run = lib.sil_run
        run.argtypes = [ctypes.c_void_p] * 3
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        sess = ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])
        feeds = {"input": x, "state": st, "sr": sr}
        run(ins, ops, at)
        want = sess.run(None, feeds)
        err = max(float(np.max(np.abs(g - w)) / np.max(np.abs(w))) for g, w in zip(outs, want))
        print("outputs within %.2e relative of ONNX Runtime" % err)
        if err > 1e-5:
            return 1
        best = {"octet": 1e9, "ort": 1e9}
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                run(ins, ops, at)
            best["octet"] = min(best["octet"], (time.perf_counter() - t) / n)
            t = time.perf_counter()
            for _ in range(n):
                sess.run(None, feeds)
            best["ort"] = min(best["ort"], (time.perf_counter() - t) / n)
        print("octet .so %.1f us/chunk, ONNX Runtime %.1f us/chunk, octet / ort = %.2f" %
              (best["octet"] * 1e6, best["ort"] * 1e6, best["octet"] / best["ort"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
