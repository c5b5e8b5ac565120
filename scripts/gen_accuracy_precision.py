#!/usr/bin/env python3
"""Writes the precision section of docs/accuracy.md: stories260k
(`prefill_s128.onnx`) perplexity on data/tinystories/eval_tokens.npy at
every precision `octet quantize` offers a language model (FP32, FP16, BF16,
W8A8 static, W8A8 dynamic per token, W8A8 + SmoothQuant static and
dynamic, with alpha 0.5 and searched (--smooth=auto), FP8 W8A8), each also
with an INT8 and an FP8 KV cache (--kv-cache, stored as 1-byte codes), and
ONNX Runtime's quantize_dynamic beside them.
Calibration (static ranges, SmoothQuant's maxima, the cache's scales) on
the first windows of calib_tokens.npy only.  Every model is scored by
`octet eval` (the interpreter) with the README's protocol.

FP16 and BF16 are emulated on the FP32 graph: every float initializer is
rounded to the half type and every float tensor a node writes goes through
Cast(half) -> Cast(float), so each tensor holds a half value while the
arithmetic inside one op is float32 (what a half kernel accumulating in
float32 computes, up to the order of the sums).

The section sits between the markers below (scripts/gen_accuracy.py keeps
it).  With the defaults (64 evaluation windows, 32 calibration windows) it
runs 26 quantize-and-evaluate steps, about 25 minutes on the shared 2-core
machine (most of it the interpreter calibrating the FP16/BF16-emulated
graphs, which have three nodes for every one of FP32's).

usage: .venv/bin/python scripts/gen_accuracy_precision.py [--octet build/octet]
       [-o docs/accuracy.md] [--windows 64] [--calib-windows 32]
"""
import argparse
import datetime
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as T, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("OCTET_SHARED", os.path.join(ROOT, "..", "shared"))
BEGIN = "<!-- precisions: scripts/gen_accuracy_precision.py -->"
END = "<!-- end of precisions -->"

# label, octet quantize flags (None: the model itself), whether they calibrate
ROWS = [
    ("FP32", None, False),
    ("FP16 (emulated)", None, False),
    ("BF16 (emulated)", None, False),
    ("W8A8 static (u8 per tensor, s8 per channel)", [], True),
    ("W8A8 dynamic per token", ["--activations=dynamic", "--dynamic-granularity=row"], False),
    ("W8A8 static + SmoothQuant 0.5", ["--smooth"], True),
    ("W8A8 dynamic per token + SmoothQuant 0.5",
     ["--activations=dynamic", "--dynamic-granularity=row", "--smooth"], True),
    ("W8A8 static + SmoothQuant auto", ["--smooth=auto"], True),
    ("W8A8 dynamic per token + SmoothQuant auto",
     ["--activations=dynamic", "--dynamic-granularity=row", "--smooth=auto"], True),
    ("FP8 W8A8 (E4M3, static)", ["--precision=fp8"], True),
]


def half_emulated(src, dst, dtype):
    """src with half initializers and a half round trip after every float
    node output (see the file comment)."""
    m = onnx.shape_inference.infer_shapes(onnx.load(src))
    g = m.graph
    floats = {v.name for v in list(g.value_info) + list(g.output) + list(g.input)
              if v.type.tensor_type.elem_type == T.FLOAT}
    for i, init in enumerate(g.initializer):
        if init.data_type == T.FLOAT:
            a = numpy_helper.to_array(init)
            if dtype == T.FLOAT16:  # the -1e9 of the attention mask becomes -inf
                with np.errstate(over="ignore"):
                    r = a.astype(np.float16).astype(np.float32)
            else:  # bfloat16, round to nearest even
                b = a.astype(np.float32).view(np.uint32).astype(np.uint64)
                b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
                r = b.astype(np.uint32).view(np.float32)
            g.initializer[i].CopyFrom(numpy_helper.from_array(r.reshape(a.shape), init.name))
    nodes = []
    for n in g.node:
        nodes.append(n)
        for k, out in enumerate(n.output):
            if out not in floats:
                continue
            wide = out + "_wide"
            n.output[k] = wide
            nodes.append(helper.make_node("Cast", [wide], [out + "_half"], to=dtype))
            nodes.append(helper.make_node("Cast", [out + "_half"], [out], to=T.FLOAT))
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    onnx.save(m, dst)


def octet(binary, *args):
    r = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"octet {' '.join(map(str, args))} failed:\n{r.stderr[-3000:]}")
    return r.stdout


KV_BYTES = {}   # KV column -> octet eval's "kv cache: B bytes per token" of the FP32 row


def perplexity(binary, path, tokens, windows, kv="-"):
    out = octet(binary, "eval", path, "--perplexity", tokens, "--window", 128,
                "--max-windows", windows, "--progress", "none")
    lines = out.splitlines()
    kv_line = [x for x in lines if x.startswith("kv cache:")]
    if kv_line and kv not in KV_BYTES:
        KV_BYTES[kv] = int(kv_line[0].split()[2])
    return float([x for x in lines if x.startswith("perplexity:")][0].split()[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--octet", default=os.path.join(ROOT, "build", "octet"))
    ap.add_argument("-o", default=os.path.join(ROOT, "docs", "accuracy.md"))
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--calib-windows", type=int, default=32)
    a = ap.parse_args()
    model = os.path.join(SHARED, "models", "stories260k", "prefill_s128.onnx")
    tokens = os.path.join(SHARED, "data", "tinystories", "eval_tokens.npy")
    calib = np.load(os.path.join(SHARED, "data", "tinystories", "calib_tokens.npy"))
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        cpath = os.path.join(tmp, "calib.npy")
        np.save(cpath, calib[:a.calib_windows * 128].astype(np.int64)
                .reshape(a.calib_windows, 1, 128))
        for i, (label, flags, calibrates) in enumerate(ROWS):
            base = model
            if label.startswith("FP16") or label.startswith("BF16"):
                base = os.path.join(tmp, f"half{i}.onnx")
                half_emulated(model, base, T.FLOAT16 if label[0] == "F" else T.BFLOAT16)
            cells = []
            for kv in (None, "int8", "fp8"):
                path = base
                if flags is not None or kv:
                    path = os.path.join(tmp, f"m{i}_{kv}.onnx")
                    extra = [f"--kv-cache={kv}"] if kv else []
                    if flags is None:
                        extra = ["--precision=fp32"] + extra
                    cal = calibrates or kv or flags is None
                    octet(a.octet, "quantize", base, *(flags or []), *extra,
                          *(["--calib", cpath] if cal else []), "-o", path,
                          "--progress", "none")
                cells.append(perplexity(a.octet, path, tokens, a.windows, kv))
                print(label, kv, cells[-1], flush=True)
            table.append((label, cells))
        for pc in (False, True):
            path = os.path.join(tmp, f"ort{int(pc)}.onnx")
            quantize_dynamic(model, path, per_channel=pc, weight_type=QuantType.QInt8)
            table.append((f"ONNX Runtime quantize_dynamic per_channel={pc}",
                          [perplexity(a.octet, path, tokens, a.windows), None, None]))
    fp32 = table[0][1][0]

    def cell(p):
        return "-" if p is None else f"{p:.4f} ({100 * (p / fp32 - 1):+.2f}%)"

    lines = [BEGIN, "", "## Precisions and a quantized KV cache (stories260k)", "",
             f"Generated by `scripts/gen_accuracy_precision.py` on {datetime.date.today()}; "
             "do not edit by hand.", "",
             f"stories260k (`prefill_s128.onnx`), perplexity of tokens 1..127 of {a.windows} "
             f"windows of 128 tokens ({a.windows * 127} targets) of",
             "`data/tinystories/eval_tokens.npy`, scored by `octet eval` (the interpreter);",
             "in brackets the change against FP32. Everything that calibrates (static",
             "activation ranges, SmoothQuant's channel maxima, the cache's scales) saw",
             f"only the first {a.calib_windows} windows of `calib_tokens.npy`. KV columns:",
             "`--kv-cache=int8|fp8` stores every `present.*` tensor as INT8 or E4M3 codes",
             "(one static scale per head, the head's largest |value| on the calibration",
             "windows over 127 or 448; a QuantizeLinear writes the output, the attention",
             "reads a DequantizeLinear of it), so the attention sees the cached keys and",
             "values as the quantized cache holds them. FP16/BF16 are emulated",
             "(every weight and every op's output rounded to the half type, arithmetic",
             "inside an op in float32); their KV columns quantize the emulated graph.",
             "SmoothQuant: `--smooth` (alpha 0.5) or `--smooth=auto` (alpha searched per",
             "layer group on the calibration rows), folded into the RMSNorm gains and the",
             "up projections (no op added). ONNX Runtime's `quantize_dynamic` models",
             "(QInt8 weights) are scored by the same `octet eval`.", "",
             "SmoothQuant reaches q/k/v and gate/up (through the RMSNorm gains), down",
             "(through up's columns) and the LM head (the final norm's gain); o_proj's input",
             "comes out of a Reshape, has no fold, and is left alone. The cache is stored",
             "as it is measured: the `present.*` outputs (and a decode graph's",
             "`past_key_values.*` inputs) are 1-byte tensors in the interpreter, the",
             "compiled code, `octet generate`'s cache and ONNX Runtime. Bytes of K+V",
             "cache per token, as `octet eval` reports them (`kv cache:` line): "
             + ", ".join(f"{k} {KV_BYTES.get(v, '?')}" for k, v in
                         (("float32", None), ("INT8", "int8"), ("FP8", "fp8"))) + ".", "",
             "| precision | float KV cache | INT8 KV cache | FP8 (E4M3) KV cache |",
             "|---|---|---|---|"]
    for label, cells in table:
        lines.append(f"| {label} | " + " | ".join(cell(p) for p in cells) + " |")
    lines += ["", END]
    section = "\n".join(lines)
    old = open(a.o).read() if os.path.exists(a.o) else ""
    if BEGIN in old and END in old:
        new = old.split(BEGIN, 1)[0] + section + old.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    with open(a.o, "w") as f:
        f.write(new)
    print(section)


if __name__ == "__main__":
    sys.exit(main())
