"""silero-vad (../shared/models/unsupported/silero-vad-lstm-if.onnx: a voice
activity detector whose LSTMs sit inside nested If branches, the first real
model here that needs both) through `octet run` chunk by chunk, carrying
its state as the model expects (stateN of one chunk is the state of the
next, and each input is the chunk after the last 64 samples of the one
before, as silero's own wrapper feeds it), against ONNX Runtime doing the same, on 24 chunks of 512 samples at
16 kHz of a speech-like signal: silence, a voiced stretch (a glottal pulse
train at a drifting pitch through three formant resonances, syllable
envelope) and noise.  Each chunk's speech probability and state are
compared with ONNX Runtime's within 1e-5 relative (to the largest |value|
of each output); the
detector must move (speech in the voiced stretch, not in the silence), or
the signal would not exercise its branches.  The same chunks go through
the model compiled (`octet compile --emit=so` with the chunk's shapes
bound, then `octet run model.so`, its state carried the same way), whose
Ifs the inline_if pass resolves at compile time (their conditions test
shapes), within the same 1e-5 relative of ONNX Runtime; and one chunk
through `octet run --jit`."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

from shared_data import need

OCTET = os.environ["OCTET"]
MODEL = os.path.join(need("models/unsupported/silero-vad-lstm-if.onnx"), "models",
                     "unsupported", "silero-vad-lstm-if.onnx")
SR, CHUNK, CONTEXT, CHUNKS = 16000, 512, 64, 24


def speech_like(n, rng):
    t = np.arange(n) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)               # drifting pitch
    phase = np.cumsum(f0 / SR)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    voiced = np.zeros(n)
    for f, bw in ((700, 130), (1220, 70), (2600, 160)):        # formant resonators
        r = np.exp(-np.pi * bw / SR)
        a1, a2 = 2 * r * np.cos(2 * np.pi * f / SR), -r * r
        y1 = y2 = 0.0
        out = np.empty(n)
        for i in range(n):
            y = pulses[i] + a1 * y1 + a2 * y2
            out[i], y2, y1 = y, y1, y
        voiced += out
    voiced *= 0.5 * (1 - np.cos(2 * np.pi * 4 * t))           # syllables
    voiced /= np.max(np.abs(voiced))
    x = 0.002 * rng.standard_normal(n)                          # silence
    third = n // 3
    x[third:2 * third] += 0.5 * voiced[third:2 * third]         # speech
    x[2 * third:] += 0.2 * rng.standard_normal(n - 2 * third)   # noise
    return x.astype(np.float32)


def main():
    rng = np.random.default_rng(11)
    sig = speech_like(CHUNK * CHUNKS, rng)
    sess = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
    failures = []
    state_o = np.zeros((2, 1, 128), np.float32)
    state_r = state_o.copy()
    sr = np.array(SR, np.int64)
    worst_p = worst_s = 0.0
    probs = []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "sr.npy"), sr)
        so = os.path.join(tmp, "silero")
        r = subprocess.run([OCTET, "compile", MODEL, "-o", so, "--emit=so", "--input-shape",
                            f"input=1,{CHUNK + CONTEXT}", "--input-shape", "state=2,1,128"],
                           capture_output=True, text=True, timeout=300)
        compiled = r.returncode == 0
        if not compiled:
            failures.append(f"octet compile exit {r.returncode}: {r.stderr[-300:]}")
        state_c = state_o.copy()
        worst_c = 0.0
        for c in range(CHUNKS):
            lo = c * CHUNK - CONTEXT
            x = np.concatenate([np.zeros(max(0, -lo), np.float32),
                                sig[max(lo, 0):(c + 1) * CHUNK]])[None, :]
            want_p, want_s = sess.run(None, {"input": x, "state": state_r, "sr": sr})
            np.save(os.path.join(tmp, "x.npy"), x)
            np.save(os.path.join(tmp, "state.npy"), state_o)
            out = os.path.join(tmp, "out")
            r = subprocess.run([OCTET, "run", MODEL, "--input", f"input={tmp}/x.npy",
                                "--input", f"state={tmp}/state.npy", "--input",
                                f"sr={tmp}/sr.npy", "--output-dir", out],
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                failures.append(f"chunk {c}: octet run exit {r.returncode}: {r.stderr[-300:]}")
                break
            got_p = np.load(os.path.join(out, "output.npy"))
            got_s = np.load(os.path.join(out, "stateN.npy"))
            ep = float(np.max(np.abs(got_p - want_p)) / np.max(np.abs(want_p)))
            es = float(np.max(np.abs(got_s - want_s)) / np.max(np.abs(want_s)))
            worst_p, worst_s = max(worst_p, ep), max(worst_s, es)
            probs.append(float(want_p.ravel()[0]))
            if not (ep <= 1e-5 and es <= 1e-5):
                failures.append(f"chunk {c}: probability off by {ep:.2e} relative, "
                                f"state by {es:.2e}")
            if compiled:   # the compiled model, its own state carried
                np.save(os.path.join(tmp, "state_c.npy"), state_c)
                want_cp, want_cs = sess.run(None, {"input": x, "state": state_c, "sr": sr})
                rc = subprocess.run([OCTET, "run", so + ".so", "--input",
                                     f"input={tmp}/x.npy", "--input",
                                     f"state={tmp}/state_c.npy", "--input", f"sr={tmp}/sr.npy",
                                     "--output-dir", out], capture_output=True, text=True,
                                    timeout=300)
                if rc.returncode != 0:
                    failures.append(f"chunk {c}: compiled run exit {rc.returncode}: "
                                    f"{rc.stderr[-300:]}")
                    break
                got_cp = np.load(os.path.join(out, "output.npy"))
                got_cs = np.load(os.path.join(out, "stateN.npy"))
                ecp = float(np.max(np.abs(got_cp - want_cp)) / np.max(np.abs(want_cp)))
                ecs = float(np.max(np.abs(got_cs - want_cs)) / np.max(np.abs(want_cs)))
                worst_c = max(worst_c, ecp, ecs)
                if not (ecp <= 1e-5 and ecs <= 1e-5):
                    failures.append(f"chunk {c} compiled: probability off by {ecp:.2e} "
                                    f"relative, state by {ecs:.2e}")
                state_c = got_cs
            state_o, state_r = got_s, want_s     # each engine carries its own state
        print(f"{CHUNKS} chunks: probability within {worst_p:.2e} relative, state within "
              f"{worst_s:.2e}; ONNX Runtime's probabilities from {min(probs):.4f} to "
              f"{max(probs):.4f}")
        third = CHUNKS // 3
        if not (max(probs[third + 1:2 * third]) > 0.5 > max(probs[2:third])):
            failures.append("the detector does not tell the voiced stretch from silence, so "
                            "the test would not see a wrong branch: %s" %
                            [round(p, 3) for p in probs])
        print(f"compiled .so, {CHUNKS} chunks (state carried): within {worst_c:.2e} "
              "relative")
        np.save(os.path.join(tmp, "state.npy"), state_r)
        want_p, want_s = sess.run(None, {"input": x, "state": state_r, "sr": sr})
        r = subprocess.run([OCTET, "run", MODEL, "--input", f"input={tmp}/x.npy", "--input",
                            f"state={tmp}/state.npy", "--input", f"sr={tmp}/sr.npy", "--jit",
                            "--output-dir", out], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            failures.append(f"--jit: exit {r.returncode}: {r.stderr[-300:]}")
        else:
            for name, want in (("output", want_p), ("stateN", want_s)):
                got = np.load(os.path.join(out, name + ".npy"))
                e = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
                if not e <= 1e-5:
                    failures.append(f"--jit {name}: off by {e:.2e} relative")
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
