"""Weight-only block formats: Octet's compiled GEMV for NVFP4, MXFP4,
Q4_K-like, Q8_0, INT8 blocks of 32 and INT2 blocks of 16 (octk_wofmt) against
its INT4 blocks of 32 (octk_wogemm), and ONNX Runtime's MatMulNBits INT4
(accuracy_level 0 and 4) where it has a kernel, one thread each, in one run.

Decode [1,4096] x [4096,4096]: one float model with random normal weights
(fixed seed) quantized by `octet quantize --weights-only` into each format,
compiled by `octet compile --emit=so` (the report must put the MatMul on the
expected kernel) and called through ctypes on one thread.  ONNX Runtime has
no kernel for FP4, E8M0 scales or super-blocks: its figure is the 4-bit
MatMulNBits model of bench/wo_bench.py (blocks of 32, no zero points) on
the same shape, with intra_op_num_threads=1.  Timing as bench/wo_bench.py:
rounds alternate the parties, about 50 ms of single timed calls per party
and round; each figure is the median of all calls of a party.

Bytes read = the packed weight the kernel streams (codes plus one float32
scale per block and column, plus a zero-point byte per block and column
where the format has them); the ratio column is each format's time over
Octet's INT4 blocks of 32.

usage: bench/wofmt_bench.py [--formats nvfp4,q4_k,...] [--rounds R] [--write-docs]
(--write-docs replaces this CPU's part of its docs/benchmarks.md section)
(OCTET: the octet binary, default build/octet)
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from wo_bench import (Lib, burst, calls, cpu_text, make_model, merge_cpu_part,  # noqa: E402
                      ort_session, run_facts, with_level)

OCTET = os.environ.get("OCTET", os.path.join(os.path.dirname(__file__), "..", "build", "octet"))
K = N = 4096

# name -> (label, quantize flags, kernel, code bits, block, zero points)
FORMATS = {
    "int4": ("INT4 blocks of 32, sym", ["--weight-format", "int4", "--block-size", "32"],
             "octk_wogemm", 4, 32, False),
    "nvfp4": ("NVFP4 (E2M1, E4M3 scale per 16)", ["--weight-format", "nvfp4"], "octk_wofmt",
              4, 16, False),
    "mxfp4": ("MXFP4 (E2M1, E8M0 scale per 32)", ["--weight-format", "mxfp4"], "octk_wofmt",
              4, 32, False),
    "q4_k": ("Q4_K-like (UINT4, zero points, super-blocks)", ["--weight-format", "q4_k"],
             "octk_wofmt", 4, 32, True),
    "q8_0": ("Q8_0-like (INT8, FP16 scale per 32)", ["--weight-format", "q8_0"], "octk_wofmt",
             8, 32, False),
    "int8": ("INT8 blocks of 32, sym", ["--weight-format", "int8", "--block-size", "32"],
             "octk_wofmt", 8, 32, False),
    "int2": ("INT2 blocks of 16, sym", ["--weight-format", "int2", "--block-size", "16"],
             "octk_wofmt", 2, 16, False),
}


def packed_bytes(bits, bs, zp):
    """Bytes of the packed weight (octk_wogemm / octk_wofmt layouts)."""
    per = 8 // bits
    return (N // 16) * (K // bs) * (64 + (16 if zp else 0) + -(-bs // per) * 16)


def float_model(path, rng):
    w = (rng.standard_normal((K, N)) * 0.02).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "wo",
                          [helper.make_tensor_value_info("x", T.FLOAT, [1, K])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [1, N])],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    onnx.save(m, path)


def octet_party(name, fmt, src, tmp, x):
    label, flags, kernel = FORMATS[fmt][:3]
    q = os.path.join(tmp, fmt + ".onnx")
    subprocess.run([OCTET, "quantize", src, "--weights-only", *flags, "-o", q], check=True,
                   capture_output=True)
    base = os.path.join(tmp, name)
    subprocess.run([OCTET, "compile", q, "-o", base, "--emit=so", "--report", base + ".txt"],
                   check=True, capture_output=True)
    path = [l.split("\t")[3].strip() for l in open(base + ".txt") if "\tMatMul\t" in l]
    if not path or kernel not in open(base + ".txt").read():
        raise SystemExit("%s: the MatMul is not on %s (%s)" % (fmt, kernel, path))
    return Lib(base + ".so", name, x, (1, N)), path[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--formats", default=",".join(FORMATS),
                    help="comma-separated subset of " + ",".join(FORMATS) + " (int4 always)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--write-docs", action="store_true")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    fmts = ["int4"] + [f for f in a.formats.split(",") if f and f != "int4"]
    for f in fmts:
        if f not in FORMATS:
            ap.error("unknown format %s" % f)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, K)).astype(np.float32)
    parties, paths = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "float.onnx")
        float_model(src, rng)
        for f in fmts:
            parties[f], paths[f] = octet_party("wf_" + re.sub(r"\W", "_", f), f, src, tmp, x)
            print("%s: %s" % (f, paths[f]), flush=True)
        mnb = os.path.join(tmp, "mnb.onnx")
        make_model(mnb, 1, [K, N], rng)
        for lv in (0, 4):
            s = ort_session(with_level(mnb, lv, tmp))
            parties["ort_l%d" % lv] = (lambda s=s: s.run(None, {"x": x})[0])
        for fn in parties.values():
            burst(fn, 3)
        per = {k: max(3, int(0.05 / max(burst(fn, 3), 1e-5))) for k, fn in parties.items()}
        times = {k: [] for k in parties}
        for _ in range(a.rounds):
            for k, fn in parties.items():
                times[k] += calls(fn, per[k])
    med = {k: statistics.median(v) for k, v in times.items()}
    head = ("CPU: %s; 1 thread each; ONNX Runtime %s; decode [1,4096] x [4096,4096]; "
            "rounds %d (median)." % (cpu_text(), ort.__version__, a.rounds))
    head += " " + run_facts(" ".join(["bench/wofmt_bench.py"] + sys.argv[1:]), load0)
    rows = ["| weights | kernel | bytes read | Octet ms | GB/s | time / Octet INT4 | ORT L0 / Octet "
            "| ORT L4 / Octet |", "|---|---|---|---|---|---|---|---|"]
    for f in fmts:
        label, _, kernel, bits, bs, zp = FORMATS[f]
        b = packed_bytes(bits, bs, zp)
        ort_cols = ("%.2fx | %.2fx" % (med["ort_l0"] / med[f], med["ort_l4"] / med[f])
                    if f == "int4" else "n/a | n/a")
        rows.append("| %s | %s | %.1f MiB | %.3f | %.1f | %.2fx | %s |" % (
            label, kernel, b / 2**20, med[f] * 1e3, b / med[f] / 1e9, med[f] / med["int4"],
            ort_cols))
    rows.append("| ORT MatMulNBits INT4 b32, accuracy_level 0 / 4 | ORT | %.1f MiB | %.3f / %.3f "
                "| | %.2fx / %.2fx | | |" % (packed_bytes(4, 32, False) / 2**20,
                                            med["ort_l0"] * 1e3, med["ort_l4"] * 1e3,
                                            med["ort_l0"] / med["int4"],
                                            med["ort_l4"] / med["int4"]))
    text = "\n".join(rows)
    print(head)
    print(text)
    if a.write_docs:
        write_docs(head, text, paths)
    return 0


ABOUT = """## Weight-only block formats: octk_wofmt against INT4 and ONNX Runtime

`.venv/bin/python bench/wofmt_bench.py --write-docs` (about 3 minutes on a
loaded machine): one float MatMul [4096,4096] quantized by `octet quantize
--weights-only` into each format and compiled (`octet compile --emit=so`), the
weight kept in its code width in the library (NVFP4, MXFP4, Q4_K-like, Q8_0,
INT8 and INT2 blocks on `octk_wofmt`, INT4 blocks of 32 on `octk_wogemm`),
called on one thread, interleaved round after round with ONNX Runtime's 4-bit
MatMulNBits on one thread (the only one of these formats it has a kernel for:
the other rows give the ratio to Octet's INT4), median of single calls.
Bytes read: codes, a float32 scale per block and column (two-level scales are
resolved at compile time) and a zero-point byte where the format has them.
One part per CPU: a rerun replaces the part of the CPU it runs on.
"""


def write_docs(head, text, paths):
    doc = os.path.join(os.path.dirname(__file__), "..", "docs", "benchmarks.md")
    p = "; ".join("%s: %s" % (f, v) for f, v in paths.items())
    part = "%s\n\n%s\n\nOctet paths: %s." % (head, text, p)
    body = merge_cpu_part(open(doc).read(), "wofmt_bench", ABOUT, cpu_text(), part)
    open(doc, "w").write(body)  # read before truncating


if __name__ == "__main__":
    sys.exit(main())
