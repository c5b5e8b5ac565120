#!/usr/bin/env python3
"""Writes the language-model section of docs/accuracy.md: the perplexity of
stories260k (../shared/models/stories260k) on the TinyStories evaluation
tokens, by `octet eval` (interpreter and JIT) and by ONNX Runtime on the
same graph and windows, under the protocol of the model's README
(non-overlapping windows of 128 from an empty cache, 127 targets each).

A second table (weight-only quantization) gives the perplexity of the model
quantized by `octet quantize --weights-only` in several formats, and of ONNX
Runtime's own MatMulNBits quantizer's two anchors
(models/stories260k/anchors), by `octet eval` (interpreter) and by ONNX
Runtime (with session.qdq_matmulnbits_accuracy_level=0, so it keeps the
model's float arithmetic), with the bits per quantized weight (codes,
scales and zero points as stored) and the file size.

The section sits between the markers below; scripts/gen_accuracy.py keeps
it when it rewrites the rest of the file.

usage: .venv/bin/python scripts/gen_accuracy_lm.py [--octet build/octet] [-o docs/accuracy.md]
       [--weight-only-table --weight-only-windows 128]  (only the weight-only table)
       [--calibrated-only [--calibrated-formats nvfp4,q4_k]]  (only the GPTQ/AWQ table [those rows])
       [--half-gap --half-gap-windows 512 --calib-windows 16 --jobs 2]  (only the half-gap
       section: GPTQ/AWQ against round to nearest in the same scheme)
       [--int8-compute --int8-compute-windows 512]  (only the int8-compute section:
       MatMulNBits accuracy_level 0, 4 and 4 with --int8-rows)
"""
import argparse
import concurrent.futures
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("OCTET_SHARED", os.path.join(ROOT, "..", "shared"))
BEGIN = "<!-- language models: scripts/gen_accuracy_lm.py -->"
END = "<!-- end of language models -->"


def ort_runnable(path, tmp):
    """path, or a copy ONNX Runtime 1.30 runs with the same numbers: its
    DequantizeLinear with a float16 scale writes float16 whatever
    output_dtype says, so float16 initializers are widened to float32
    (exact) and output_dtype dropped.  None if a DequantizeLinear reads a
    type ORT does not implement (FLOAT4E2M1, FLOAT8E8M0)."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    if any(t.data_type in (23, 24) for t in m.graph.initializer):
        return None
    if not any(t.data_type == 10 for t in m.graph.initializer):
        return path
    for i, t in enumerate(m.graph.initializer):
        if t.data_type == 10:
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(t).astype(np.float32), t.name))
    for n in m.graph.node:
        keep = [a for a in n.attribute if a.name != "output_dtype"]
        del n.attribute[:]
        n.attribute.extend(keep)
    out = os.path.join(tmp, "ort.onnx")
    onnx.save(m, out)
    return out


def ort_perplexity(path, tokens, window, max_windows=0):
    """ONNX Runtime's perplexity and target count, the README's protocol
    (the first max_windows windows; 0: all)."""
    so = ort.SessionOptions()
    so.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    total, count = 0.0, 0
    n_windows = len(tokens) // window
    for w in range(min(n_windows, max_windows) if max_windows else n_windows):
        win = tokens[w * window:(w + 1) * window].astype(np.int64)
        lg = sess.run(["logits"], {"input_ids": win[None, :]})[0][0].astype(np.float64)
        top = lg.max(-1, keepdims=True)
        lse = np.log(np.exp(lg - top).sum(-1)) + top[:, 0]
        total += float((lse[:-1] - lg[np.arange(window - 1), win[1:]]).sum())
        count += window - 1
    return math.exp(total / count), count


def octet_perplexity(octet, path, tokens_path, flags):
    with tempfile.TemporaryDirectory() as d:
        report = os.path.join(d, "r.json")
        subprocess.run([octet, "eval", path, "--perplexity", tokens_path,
                        "--report", report, *flags], check=True, capture_output=True)
        with open(report) as f:
            return json.load(f)


# (label, octet quantize flags); None: the model as it is
WEIGHT_ONLY = [
    ("FP32", None),
    ("INT8 per channel, sym", ["--weight-format", "int8"]),
    ("INT4 blocks of 32, sym", ["--weight-format", "int4", "--block-size", "32"]),
    ("INT4 blocks of 32, sym, clip search", ["--weight-format", "int4", "--block-size", "32", "--clip-search"]),
    ("UINT4 blocks of 32, asym", ["--weight-format", "uint4", "--block-size", "32"]),
    ("UINT4 blocks of 32, asym, clip search", ["--weight-format", "uint4", "--block-size", "32", "--clip-search"]),
    ("UINT4 blocks of 32, asym, clip search, lm_head FP32",
     ["--weight-format", "uint4", "--block-size", "32", "--clip-search", "--exclude-nodes", "lm_head"]),
    # sym-full: ONNX Runtime's MatMulNBits quantizer's rule (the block's
    # largest magnitude exact at -8 * s); with lm_head FP32 it is the
    # anchor's model, weight for weight
    ("INT4 blocks of 32, sym-full, lm_head FP32",
     ["--weight-format", "int4", "--block-size", "32", "--weight-scheme", "sym-full",
      "--exclude-nodes", "lm_head"]),
    ("INT4 blocks of 32, sym-full", ["--weight-format", "int4", "--block-size", "32",
                                     "--weight-scheme", "sym-full"]),
    ("INT4 blocks of 32, sym-full, clip search, lm_head FP32",
     ["--weight-format", "int4", "--block-size", "32", "--weight-scheme", "sym-full",
      "--clip-search", "--exclude-nodes", "lm_head"]),
    ("INT4 blocks of 128, sym", ["--weight-format", "int4", "--block-size", "128"]),
    ("INT4 blocks of 128, sym, clip search", ["--weight-format", "int4", "--block-size", "128", "--clip-search"]),
    ("UINT4 blocks of 128, asym", ["--weight-format", "uint4", "--block-size", "128"]),
    ("UINT4 blocks of 128, asym, clip search", ["--weight-format", "uint4", "--block-size", "128", "--clip-search"]),
    ("UINT4 blocks of 32, asym, clip search, MatMulNBits",
     ["--weight-format", "uint4", "--block-size", "32", "--clip-search", "--format", "matmulnbits"]),
    ("INT2 blocks of 16, sym", ["--weight-format", "int2", "--block-size", "16"]),
    ("UINT2 blocks of 16, asym, clip search", ["--weight-format", "uint2", "--block-size", "16", "--clip-search"]),
    # the block formats (docs/formats.md, block formats)
    ("NVFP4 (FP4 E2M1, E4M3 scale per 16, FP32 tensor scale)", ["--weight-format", "nvfp4"]),
    ("MXFP4 (FP4 E2M1, E8M0 scale per 32)", ["--weight-format", "mxfp4"]),
    ("MXFP8 (FP8 E4M3, E8M0 scale per 32)", ["--weight-format", "mxfp8"]),
    ("Q4_K-like (UINT4, 6-bit scales and UINT4 zero points per 32, FP16 per 256)",
     ["--weight-format", "q4_k"]),
    ("Q6_K-like (6-bit codes in INT8, INT8 scales per 16, FP16 per 256)", ["--weight-format", "q6_k"]),
    ("Q8_0-like (INT8, FP16 scale per 32)", ["--weight-format", "q8_0"]),
]
ANCHORS = [("ORT MatMulNBitsQuantizer default (4 bits, blocks of 32, sym; lm_head FP32)",
            "ort-default-w4-b32-sym.onnx"),
           ("ORT HQQ (4 bits, blocks of 32, float zero points; lm_head FP32)", "ort-hqq-w4-b32.onnx")]


KQUANT_LABEL = "ORT MatMulNBitsQuantizer k-quant (4 bits, blocks of 32, sym; lm_head FP32)"


def ort_kquant(model, tmp):
    """The model quantized by the installed ONNX Runtime's k-quant search
    (KQuantWeightOnlyQuantConfig; the anchors' settings: 4 bits, blocks of
    32, symmetric, LM head float), or None when this version has none."""
    import onnx
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            KQuantWeightOnlyQuantConfig, MatMulNBitsQuantizer)
    except ImportError:
        return None
    m = onnx.load(model)
    q = MatMulNBitsQuantizer(m, bits=4, block_size=32, is_symmetric=True,
                             nodes_to_exclude=[n.name for n in m.graph.node if "lm_head" in n.name],
                             algo_config=KQuantWeightOnlyQuantConfig())
    q.process()
    # this quantizer writes com.microsoft nodes without importing the
    # domain (ONNX Runtime does not mind; the ONNX spec and Octet do)
    model_proto = q.model.model
    if not any(o.domain == "com.microsoft" for o in model_proto.opset_import):
        model_proto.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    out = os.path.join(tmp, "ort-kquant-w4-b32.onnx")
    onnx.save(model_proto, out)
    return out


def bits_per_weight(path):
    """Stored bits of the quantized weights (codes, scales, zero points) per
    weight: DequantizeLinear of an initializer, and MatMulNBits."""
    import onnx
    m = onnx.load(path)
    inits = {t.name: t for t in m.graph.initializer}
    size = {1: 32, 2: 8, 3: 8, 10: 16, 17: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2}
    producer = {o: n for n in m.graph.node for o in n.output}
    scales = {n.input[1] for n in m.graph.node if n.op_type == "DequantizeLinear"}

    def stored(name):
        """Bits of an initializer, or of the initializers of the
        DequantizeLinear computing it (two-level scales)."""
        t = inits.get(name)
        if t is not None:
            return int(np.prod(t.dims)) * size.get(t.data_type, 32)
        p = producer.get(name)
        return sum(stored(i) for i in p.input) if p and p.op_type == "DequantizeLinear" else 0

    bits = weights = 0
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and n.output[0] not in scales:
            weights += int(np.prod(inits[n.input[0]].dims))
            bits += sum(stored(i) for i in n.input if i)
        elif n.op_type == "MatMulNBits":
            a = {x.name: x.i for x in n.attribute}
            weights += a["K"] * a["N"]
            bits += sum(stored(i) for i in n.input[1:4] if i)
    return bits / weights if weights else 32.0


def weight_only_section(octet, model, tokens, tokens_path, tmp, windows):
    rows = []
    cases = [(label, flags, None) for label, flags in WEIGHT_ONLY[:3]]
    cases += [(label, None, os.path.join(os.path.dirname(model), "anchors", f)) for label, f in ANCHORS]
    kquant = ort_kquant(model, tmp)
    if kquant:
        cases.append((KQUANT_LABEL, None, kquant))
    cases += [(label, flags, None) for label, flags in WEIGHT_ONLY[3:]]
    for label, flags, path in cases:
        if path is None:
            path = model
            if flags:
                path = os.path.join(tmp, "q.onnx")
                subprocess.run([octet, "quantize", model, "--weights-only", *flags, "-o", path],
                               check=True, capture_output=True)
        r = octet_perplexity(octet, path, tokens_path,
                             ["--max-windows", str(windows)] if windows else [])
        runnable = ort_runnable(path, tmp)
        ref, count = ort_perplexity(runnable, tokens, 128, windows) if runnable else (None, count)
        rows.append((label, bits_per_weight(path) if path != model else 32.0,
                     os.path.getsize(path), r["perplexity"], ref))
        print(label, rows[-1][1:], flush=True)
    fp32 = rows[0][3]
    lines = ["", "### Weight-only quantization", "",
             "`octet quantize --weights-only` (`docs/formats.md`, weight-only formats):",
             "every MatMul weight (the 35 transformer layers and the LM head) quantized, the",
             "embedding table (Gather) and activations FP32; bits per weight count the stored",
             "codes, scales and zero points of the quantized weights.  ONNX Runtime's anchors",
             "(its MatMulNBitsQuantizer) keep the LM head in FP32.  Windows of 128 as above,"
             + (f" the first {windows} ({count} targets)." if windows else " all of them."),
             "",
             "| weights | bits/weight | file bytes | perplexity (octet eval) | ONNX Runtime | vs FP32 |",
             "|---|---|---|---|---|---|"]
    for label, bpw, size, ppl, ref in rows:
        lines.append(f"| {label} | {bpw:.2f} | {size} | {ppl:.4f} | "
                     f"{'n/a' if ref is None else f'{ref:.4f}'} | {100 * (ppl / fp32 - 1):+.2f}% |")
    lines += ["",
              "The block formats' bits per weight count what the file stores: Q6_K-like keeps its",
              "6-bit codes in INT8 (6.56 bits per weight as llama.cpp packs them) and Q4_K-like its",
              "6-bit scale codes in UINT8.  ONNX Runtime runs the integer block formats with their",
              "float16 scales widened to float32 (the same numbers: ORT "
              f"{ort.__version__} writes float16 from a float16-scale",
              "DequantizeLinear whatever output_dtype says); n/a: it has no FLOAT4E2M1 or",
              "FLOAT8E8M0 DequantizeLinear.",
              "",
              "`sym-full` is ONNX Runtime's own RTN rule (the block's largest magnitude exact at",
              "-8 * s: 16 levels at max|w| / 8, where `sym` has 15 at max|w| / 7); with lm_head FP32",
              "its weights equal the ORT default anchor's one for one, hence the same perplexity."]
    if not kquant:
        lines += ["", f"ONNX Runtime {ort.__version__} has no k-quant search "
                  "(KQuantWeightOnlyQuantConfig): no row for it."]
    else:
        lines += ["", "The k-quant row is written by this script with the installed ONNX Runtime "
                  f"{ort.__version__} (`KQuantWeightOnlyQuantConfig`, the anchors' settings; its "
                  "file lacks the com.microsoft opset import, which the script adds)."]
    return lines


# GPTQ and AWQ (--algo, src/passes/quant_gptq.c, quant_awq.c): each format
# by round to nearest and the calibrated algorithms (the block formats
# nvfp4 and q4_k too: their scales by their own rules, quant_wo_lowbit.c).
CALIBRATED_FORMATS = [("UINT4 blocks of 32, asym, clip search",
                       ["--weight-format", "uint4", "--block-size", "32", "--clip-search"]),
                      ("UINT4 blocks of 128, asym, clip search",
                       ["--weight-format", "uint4", "--block-size", "128", "--clip-search"]),
                      ("UINT2 blocks of 16, asym, clip search",
                       ["--weight-format", "uint2", "--block-size", "16", "--clip-search"]),
                      ("NVFP4", ["--weight-format", "nvfp4"]),
                      ("Q4_K-like", ["--weight-format", "q4_k"])]
CALIBRATED_ALGOS = [("RTN", []), ("GPTQ", ["--algo=gptq"]), ("GPTQ, act-order", ["--algo=gptq", "--act-order"]),
                    ("AWQ", ["--algo=awq"]), ("AWQ+GPTQ, act-order", ["--algo=awq+gptq", "--act-order"])]
# the same bits and blocks as ONNX Runtime's anchors, LM head FP32 as theirs
CALIBRATED_LM_HEAD_FP32 = [("UINT4 blocks of 32, asym, clip search, lm_head FP32",
                            ["--weight-format", "uint4", "--block-size", "32", "--clip-search",
                             "--exclude-nodes", "lm_head"])]
CAL_BEGIN = "<!-- gptq/awq: scripts/gen_accuracy_lm.py --calibrated-only -->"
CAL_END = "<!-- end of gptq/awq -->"


def weight_format(fflags):
    return fflags[fflags.index("--weight-format") + 1]


def old_calibrated(path):
    """The rows of the GPTQ/AWQ table in path by (weights, algorithm), and
    its command lines."""
    body = open(path).read().split(CAL_BEGIN, 1)[1].split(CAL_END, 1)[0]
    rows = {tuple(c.strip() for c in ln.split("|")[1:3]): ln for ln in body.splitlines()
            if ln.startswith("| ") and not ln.startswith("| weights")}
    cmds = [ln for ln in body.splitlines() if ln.startswith(("Command", "Rows of"))]
    return rows, cmds


def calibrated_section(octet, model, tokens, tokens_path, tmp, calib_windows, windows, jobs=1,
                       only=None, old=None):
    """only: the --weight-format values whose rows are measured; the
    others are taken from old (old_calibrated of the current file)."""
    calib = np.load(os.path.join(SHARED, "data", "tinystories", "calib_tokens.npy")).astype(np.int64)
    cpath = os.path.join(tmp, "calib.npy")
    np.save(cpath, calib[:calib_windows * 128].reshape(calib_windows, 1, 128))
    fp32, count = ort_perplexity(model, tokens, 128, windows)
    eval_flags = ["--jit"] + (["--max-windows", str(windows)] if windows else [])
    lines = [CAL_BEGIN, "", "### GPTQ and AWQ", "",
             "`octet quantize --weights-only --algo=gptq|awq|awq+gptq --calib C` (`docs/formats.md`):",
             "every MatMul weight quantized (LM head included unless the row says otherwise),",
             f"calibrated on the first {calib_windows} windows of 128 of `data/tinystories/calib_tokens.npy`;",
             "perplexity on " + (f"the first {windows} evaluation windows ({count} targets)"
                                 if windows else f"every evaluation window ({count} targets)"),
             "by `octet eval --jit` and by ONNX Runtime.  INT3 is not a format of the table",
             "(`src/ir/qformats.def`): UINT2 blocks of 16 stands in.  awq+gptq folds AWQ's scales",
             "first, then runs GPTQ on the scaled weights, its groups fitted by the clip search.",
             "NVFP4 and Q4_K-like: GPTQ rounds with their scales fitted by their own rules on the",
             "float weights; AWQ scores each alpha with those rules (second-level scales included)",
             "and has no clip search there.",
             "The time is that of `octet quantize` on a shared, loaded machine (2 cores; the",
             "command lines below say how many rows were measured at once).  Gap closed: the",
             "share of the format's RTN row's perplexity gap to FP32 that the row removes.",
             "",
             "| weights | algorithm | perplexity (octet eval) | ONNX Runtime | vs FP32 | gap closed | quantize s |",
             "|---|---|---|---|---|---|---|"]

    def measure(n, fflags, aflags):
        """(octet eval perplexity, ONNX Runtime's or None, quantize seconds),
        or None when octet quantize refuses the combination."""
        path = os.path.join(tmp, f"c{n}.onnx")
        t0 = datetime.datetime.now()
        r = subprocess.run([octet, "quantize", model, "--weights-only", *fflags, *aflags,
                            *(["--calib", cpath] if aflags else []), "-o", path,
                            "--progress=none"], capture_output=True, text=True)
        if r.returncode:
            print(" ".join(fflags + aflags), "refused:", r.stderr.strip()[-200:], flush=True)
            return None
        secs = (datetime.datetime.now() - t0).total_seconds()
        ppl = octet_perplexity(octet, path, tokens_path, eval_flags)["perplexity"]
        os.makedirs(os.path.join(tmp, f"r{n}"), exist_ok=True)
        runnable = ort_runnable(path, os.path.join(tmp, f"r{n}"))
        ref = ort_perplexity(runnable, tokens, 128, windows)[0] if runnable else None
        os.remove(path)
        print(" ".join(fflags + aflags), ppl, ref, secs, flush=True)
        return ppl, ref, secs

    # the symmetric INT4 of the earlier table: its RTN row, for reference
    cases = [("INT4 blocks of 32, sym", "RTN", ["--weight-format", "int4", "--block-size", "32"], [])]
    lm_head = [f for f, _ in CALIBRATED_LM_HEAD_FP32]
    for flabel, fflags in CALIBRATED_FORMATS + CALIBRATED_LM_HEAD_FP32:
        for alabel, aflags in CALIBRATED_ALGOS:
            if flabel not in lm_head or alabel in ("RTN", CALIBRATED_ALGOS[-1][0]):
                cases.append((flabel, alabel, fflags, aflags))
    todo = [c for c in cases if only is None or weight_format(c[2]) in only]
    # rows are independent: `jobs` at once (the quantize times then share the cores)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        done = list(pool.map(lambda ic: measure(ic[0], ic[1][2], ic[1][3]), enumerate(todo)))
    results = dict(zip((c[:2] for c in todo), done))
    rtn = {}
    for flabel, alabel, fflags, _ in cases:
        if only is not None and weight_format(fflags) not in only:
            if (flabel, alabel) in old[0]:  # a row of the earlier run, as it was
                lines.append(old[0][(flabel, alabel)])
            continue
        res = results[(flabel, alabel)]
        if res is None:
            continue
        ppl, ref, secs = res
        rtn.setdefault(flabel, ppl)  # each format's first row is its RTN
        base = rtn[flabel]
        closed = f"{100 * (base - ppl) / (base - fp32):.0f}%" if base > fp32 else "-"
        lines.append(f"| {flabel} | {alabel} | {ppl:.4f} | {'n/a' if ref is None else f'{ref:.4f}'} | "
                     f"{100 * (ppl / fp32 - 1):+.2f}% | {closed} | {secs:.0f} |")
    for label, f in ANCHORS:
        ref, _ = ort_perplexity(os.path.join(os.path.dirname(model), "anchors", f), tokens, 128, windows)
        lines.append(f"| {label} | ONNX Runtime | - | {ref:.4f} | {100 * (ref / fp32 - 1):+.2f}% | - | - |")
    lines += ["", f"FP32: {fp32:.4f} (ONNX Runtime {ort.__version__}).  ONNX Runtime's GPTQ",
              "(`GPTQWeightOnlyQuantConfig`) and HQQ import torch, which is not installed here: the",
              "HQQ row is the stored anchor (`models/stories260k/anchors`), and ONNX Runtime's GPTQ",
              "has no row.", ""]
    cmd = ("`.venv/bin/python scripts/gen_accuracy_lm.py --calibrated-only"
           + (f" --calib-windows {calib_windows}" if calib_windows != 32 else "")
           + (f" --calibrated-windows {windows}" if windows else "")
           + (f" --jobs {jobs}" if jobs > 1 else ""))
    if only is None:
        lines += [f"Command: {cmd}`.", "", CAL_END]
    else:
        fmts = ",".join(sorted(only))
        lines += [c for c in old[1] if c.startswith("Command")] + [
            "", f"Rows of {fmts} (RTN rows included) measured again, the others kept as they were:",
            f"{cmd} --calibrated-formats {fmts}` (rows measured {jobs} at once).", "", CAL_END]
    return lines


# --half-gap: the best calibrated 4-bit blocks of 32 against round to
# nearest in the same scheme (UINT4, asymmetric, clip search)
HALF_BEGIN = "<!-- half gap: scripts/gen_accuracy_lm.py --half-gap -->"
HALF_END = "<!-- end of half gap -->"
HALF_SCHEME = ["--weight-format", "uint4", "--block-size", "32", "--clip-search"]
HALF_ALGOS = [("RTN", []),
              ("GPTQ", ["--algo=gptq"]),
              ("GPTQ, group search, refit", ["--algo=gptq", "--gptq-group-search", "--gptq-refit"]),
              ("AWQ", ["--algo=awq"]),
              ("AWQ+GPTQ", ["--algo=awq+gptq"]),
              ("AWQ+GPTQ, refit", ["--algo=awq+gptq", "--gptq-refit"]),
              ("AWQ+GPTQ, float target, refit", ["--algo=awq+gptq", "--gptq-float-target", "--gptq-refit"]),
              ("AWQ+GPTQ, group search, refit", ["--algo=awq+gptq", "--gptq-group-search", "--gptq-refit"])]
HALF_LM_HEAD = [("RTN", []), ("AWQ+GPTQ, group search, refit", HALF_ALGOS[-1][1])]


def half_gap_section(octet, model, tokens, tokens_path, tmp, calib_windows, windows, jobs=1):
    calib = np.load(os.path.join(SHARED, "data", "tinystories", "calib_tokens.npy")).astype(np.int64)
    cpath = os.path.join(tmp, "calib.npy")
    np.save(cpath, calib[:calib_windows * 128].reshape(calib_windows, 1, 128))
    fp32 = octet_perplexity(octet, model, tokens_path, ["--jit", "--max-windows", str(windows)])
    fp32 = fp32["perplexity"]
    cases = [(a, f, False) for a, f in HALF_ALGOS] + [(a, f, True) for a, f in HALF_LM_HEAD]
    cases.append(("RTN, sym (INT4)", None, False))

    def measure(n, case):
        label, aflags, lm_fp32 = case
        path = os.path.join(tmp, f"h{n}.onnx")
        fflags = HALF_SCHEME if aflags is not None else ["--weight-format", "int4", "--block-size", "32"]
        fflags = fflags + (["--exclude-nodes", "lm_head"] if lm_fp32 else [])
        aflags = aflags or []
        subprocess.run([octet, "quantize", model, "--weights-only", *fflags, *aflags,
                        *(["--calib", cpath] if aflags else []), "-o", path, "--progress=none"],
                       check=True, capture_output=True)
        ppl = octet_perplexity(octet, path, tokens_path,
                               ["--jit", "--max-windows", str(windows)])["perplexity"]
        os.remove(path)
        print(label, lm_fp32, ppl, flush=True)
        return ppl

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        ppls = list(pool.map(lambda ic: measure(*ic), enumerate(cases)))
    anchors = []
    for label, f in ANCHORS:
        anchors.append((label, ort_perplexity(os.path.join(os.path.dirname(model), "anchors", f),
                                              tokens, 128, windows)[0]))
    kquant = ort_kquant(model, tmp)
    if kquant:
        anchors.append((KQUANT_LABEL, ort_perplexity(kquant, tokens, 128, windows)[0]))
    rtn = {lm: p for (label, _, lm), p in zip(cases, ppls) if label == "RTN"}

    def row(weights, label, ppl, base):
        closed = f"{100 * (base - ppl) / (base - fp32):.1f}%" if base is not None else "-"
        return f"| {weights} | {label} | {ppl:.4f} | {100 * (ppl / fp32 - 1):+.2f}% | {closed} |"

    n_targets = windows * 127
    lines = [HALF_BEGIN, "", "### Half of round to nearest's gap, same scheme", "",
             "`octet quantize --weights-only`, UINT4 blocks of 32, asymmetric, `--clip-search`",
             "(every Octet row but the one marked INT4 sym); perplexity by `octet eval --jit` on",
             f"the first {windows} windows of 128 of `data/tinystories/eval_tokens.npy` ({n_targets} targets),"
             f"calibration on the first {calib_windows} windows of `data/tinystories/calib_tokens.npy`.",
             "Gap closed: the share of the same scheme's round to nearest gap to FP32 that the row",
             "removes (LM head quantized rows against the RTN row with the LM head quantized,",
             "LM head FP32 rows against RTN with the LM head FP32).  ONNX Runtime's quantizers keep",
             "the LM head FP32 (the anchors of `models/stories260k/anchors`, run by ONNX Runtime",
             "on the same windows), so they compare with the LM head FP32 rows; their gap closed is",
             "against that RTN row too.  The options are those of `octet quantize`",
             "(`docs/formats.md`, GPTQ and AWQ).",
             "",
             "| weights | algorithm | perplexity | vs FP32 | gap closed |", "|---|---|---|---|---|",
             f"| FP32 | - | {fp32:.4f} | - | - |"]
    for (label, aflags, lm), p in zip(cases, ppls):
        if aflags is None:
            lines.append(row("INT4 blocks of 32, sym (no clip search), LM head quantized", "RTN", p, None))
            continue
        lines.append(row("LM head FP32" if lm else "LM head quantized", label, p, rtn[lm]))
    for label, p in anchors:
        lines.append(row(label, "ONNX Runtime", p, rtn[True]))
    lines += ["", f"Command: `.venv/bin/python scripts/gen_accuracy_lm.py --half-gap "
              f"--half-gap-windows {windows} --calib-windows {calib_windows}"
              + (f" --jobs {jobs}`" if jobs > 1 else "`") + f" (ONNX Runtime {ort.__version__}).",
              "", HALF_END]
    return lines


def kept_marked(path, begin, end):
    """The section between begin and end in path as lines (a full run
    keeps it), or []."""
    text = open(path).read() if os.path.exists(path) else ""
    if begin not in text or end not in text:
        return []
    body = text.split(begin, 1)[1].split(end, 1)[0]
    return ["", begin + body + end]


INT8C_BEGIN = "<!-- int8 compute: scripts/gen_accuracy_lm.py --int8-compute -->"
INT8C_END = "<!-- end of int8 compute -->"
# (label, anchor file or octet quantize flags): level 4 needs no zero
# points or uint8 ones (ONNX Runtime's HQQ anchor has float zero points)
INT8C_MODELS = [("ORT MatMulNBitsQuantizer default (4 bits, blocks of 32, sym; lm_head FP32)",
                 "ort-default-w4-b32-sym.onnx"),
                ("octet UINT4 blocks of 32, asym, clip search, MatMulNBits (lm_head too)",
                 ["--weight-format", "uint4", "--block-size", "32", "--clip-search",
                  "--format", "matmulnbits"])]


def int8_compute_section(octet, model, tokens, tokens_path, tmp, windows):
    """ONNX Runtime's two 4-bit anchors with accuracy_level 0 (float
    activations), 4 (int8 activations per row and block, ONNX Runtime's
    arithmetic) and 4 compiled with `--int8-rows` (int8 weights per column,
    activations per row): octet eval and ONNX Runtime on the same windows."""
    import onnx
    lines = ["", INT8C_BEGIN, "", "### MatMulNBits compute: float, int8 per block, int8 per row", "",
             "ONNX Runtime's default 4-bit stories260k anchor and Octet's own MatMulNBits",
             "output with their MatMulNBits accuracy_level set to 0 (float activations), 4",
             "(int8 activations per row and block of 32, ONNX Runtime's int8 compute) and 4",
             "under `--int8-rows` (`docs/compile.md`: the 4-bit blocks converted to int8 per",
             "column, activations int8 per row; no ONNX Runtime figure: it has no such",
             "arithmetic).  `octet eval` (interpreter) and ONNX Runtime, windows of 128, "
             + (f"the first {windows}." if windows else "all of them."), "",
             "| model | compute | perplexity (octet eval) | ONNX Runtime | vs level 0 |",
             "|---|---|---|---|---|"]
    for label, what in INT8C_MODELS:
        if isinstance(what, str):
            src = os.path.join(os.path.dirname(model), "anchors", what)
        else:
            src = os.path.join(tmp, "q.onnx")
            subprocess.run([octet, "quantize", model, "--weights-only", *what, "-o", src],
                           check=True, capture_output=True)
        base = None
        for compute, level, flags in (("accuracy_level 0 (float)", 0, []),
                                      ("accuracy_level 4 (int8 per block)", 4, []),
                                      ("accuracy_level 4, `--int8-rows`", 4, ["--int8-rows"])):
            m = onnx.load(src)
            for n in m.graph.node:
                if n.op_type == "MatMulNBits":
                    keep = [at for at in n.attribute if at.name != "accuracy_level"]
                    del n.attribute[:]
                    n.attribute.extend(keep)
                    n.attribute.append(onnx.helper.make_attribute("accuracy_level", level))
            path = os.path.join(tmp, f"l{level}.onnx")
            onnx.save(m, path)
            r = octet_perplexity(octet, path, tokens_path,
                                 (["--max-windows", str(windows)] if windows else []) + flags)
            ref = None if flags else ort_perplexity(path, tokens, 128, windows)[0]
            base = base or r["perplexity"]
            lines.append(f"| {label} | {compute} | {r['perplexity']:.4f} | "
                         f"{'n/a' if ref is None else f'{ref:.4f}'} | "
                         f"{100 * (r['perplexity'] / base - 1):+.2f}% |")
            print(lines[-1], flush=True)
    lines += ["", f"Command: `.venv/bin/python scripts/gen_accuracy_lm.py --int8-compute "
              f"--int8-compute-windows {windows}` (ONNX Runtime {ort.__version__}).", "",
              INT8C_END]
    return lines


def splice_marked(path, begin, end, lines):
    """Replaces the text between begin and end in path, or puts it after
    the GPTQ/AWQ table (inside the language-model section, which
    scripts/gen_accuracy.py keeps)."""
    text = open(path).read()
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
    else:
        head, tail = text.split(CAL_END, 1)
        head, tail = head + CAL_END + "\n\n", tail
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(head + "\n".join(lines) + tail)
    os.replace(tmp, path)


def splice_calibrated(path, lines):
    """Replaces only the GPTQ/AWQ table in path (it must be there, inside
    the language-model section)."""
    text = open(path).read()
    head, rest = text.split(CAL_BEGIN, 1)
    tail = rest.split(CAL_END, 1)[1]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(head + "\n".join(lines) + tail)
    os.replace(tmp, path)


def section(rows, n_tokens, extra=()):
    lines = [BEGIN, "", "## Language models: perplexity", "",
             f"Generated by `scripts/gen_accuracy_lm.py` on {datetime.date.today()}; do not edit by hand.",
             "",
             f"stories260k (`prefill_s128.onnx`) on `data/tinystories/eval_tokens.npy` ({n_tokens} tokens):",
             "non-overlapping windows of 128 from an empty cache, the negative log-likelihood",
             "of tokens 1..127 of each window given the ones before it; perplexity =",
             "exp(mean NLL).  `octet eval` against ONNX Runtime on the same graph and windows.",
             "",
             "| model | runner | targets | perplexity | bits/token | ONNX Runtime | relative difference |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['runner']} | {r['targets']} | {r['ppl']:.6f} | "
                     f"{r['bits']:.6f} | {r['ort']:.6f} | {abs(r['ppl'] / r['ort'] - 1):.1e} |")
    lines += ["", f"Command: `.venv/bin/python scripts/gen_accuracy_lm.py` (ONNX Runtime "
              f"{ort.__version__}, {platform.machine()}).", *extra, "", END]
    return lines


def splice(path, lines):
    """Replaces the section in path (or appends it)."""
    text = open(path).read() if os.path.exists(path) else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
    else:
        head, tail = text.rstrip("\n") + "\n\n", "\n"
    out = head + "\n".join(lines) + tail
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(out)
    os.replace(tmp, path)


def splice_weight_only(path, lines):
    """Replaces only the weight-only table (from its heading to the GPTQ/AWQ
    marker) in path."""
    with open(path) as f:
        text = f.read()
    head = "### Weight-only quantization"
    a, b = text.index(head), text.index(CAL_BEGIN)
    body = "\n".join(lines[1:]).strip("\n")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text[:a] + body + "\n\n" + text[b:])
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--octet", default=os.path.join(ROOT, "build", "octet"))
    ap.add_argument("-o", default=os.path.join(ROOT, "docs", "accuracy.md"))
    ap.add_argument("--weight-only-windows", type=int, default=0,
                    help="score the weight-only table on the first N windows (0: all)")
    ap.add_argument("--calib-windows", type=int, default=32,
                    help="GPTQ/AWQ calibration windows of 128 tokens")
    ap.add_argument("--calibrated-windows", type=int, default=0,
                    help="score the GPTQ/AWQ table on the first N windows (0: all)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="GPTQ/AWQ table rows measured at once")
    ap.add_argument("--calibrated-formats", default=None,
                    help="with --calibrated-only: measure only the rows of these "
                         "--weight-format values (comma-separated), keep the table's others")
    ap.add_argument("--calibrated-only", action="store_true",
                    help="regenerate only the GPTQ/AWQ table")
    ap.add_argument("--half-gap", action="store_true",
                    help="regenerate only the half-gap section (same-scheme RTN against GPTQ/AWQ)")
    ap.add_argument("--half-gap-windows", type=int, default=512,
                    help="evaluation windows of the half-gap section")
    ap.add_argument("--int8-compute", action="store_true",
                    help="regenerate only the int8-compute section (MatMulNBits levels 0, 4, "
                         "4 with --int8-rows)")
    ap.add_argument("--int8-compute-windows", type=int, default=512,
                    help="evaluation windows of the int8-compute section (0: all)")
    ap.add_argument("--weight-only-table", action="store_true",
                    help="regenerate only the weight-only table")
    a = ap.parse_args()
    model = os.path.join(SHARED, "models", "stories260k", "prefill_s128.onnx")
    tokens_path = os.path.join(SHARED, "data", "tinystories", "eval_tokens.npy")
    if not os.path.exists(model) or not os.path.exists(tokens_path):
        print(f"{model} or {tokens_path} not found")
        return 1
    tokens = np.load(tokens_path)
    if a.half_gap:
        with tempfile.TemporaryDirectory() as tmp:
            splice_marked(a.o, HALF_BEGIN, HALF_END,
                          half_gap_section(a.octet, model, tokens, tokens_path, tmp,
                                           a.calib_windows, a.half_gap_windows, a.jobs))
        print("wrote", a.o)
        return 0
    if a.int8_compute:
        with tempfile.TemporaryDirectory() as tmp:
            lines = int8_compute_section(a.octet, model, tokens, tokens_path, tmp,
                                         a.int8_compute_windows)
            splice_marked(a.o, INT8C_BEGIN, INT8C_END, lines[1:])
        print("wrote", a.o)
        return 0
    if a.weight_only_table:
        with tempfile.TemporaryDirectory() as tmp:
            splice_weight_only(a.o, weight_only_section(a.octet, model, tokens, tokens_path, tmp,
                                                        a.weight_only_windows))
        print("wrote", a.o)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        only = set(a.calibrated_formats.split(",")) if a.calibrated_formats else None
        if only is not None and not a.calibrated_only:
            print("--calibrated-formats needs --calibrated-only")
            return 1
        cal = calibrated_section(a.octet, model, tokens, tokens_path, tmp, a.calib_windows,
                                 a.calibrated_windows, a.jobs, only,
                                 old_calibrated(a.o) if only is not None else None)
        if a.calibrated_only:
            splice_calibrated(a.o, cal)
            return 0
        extra = weight_only_section(a.octet, model, tokens, tokens_path, tmp,
                                    a.weight_only_windows) + [""] + cal + \
            kept_marked(a.o, HALF_BEGIN, HALF_END) + kept_marked(a.o, INT8C_BEGIN, INT8C_END)
    ref, count = ort_perplexity(model, tokens, 128)
    rows = []
    for runner, flags in (("interpreter", []), ("JIT", ["--jit"])):
        r = octet_perplexity(a.octet, model, tokens_path, flags)
        rows.append({"model": "stories260k FP32", "runner": runner, "targets": count,
                     "ppl": r["perplexity"], "bits": r["bits_per_token"], "ort": ref})
    splice(a.o, section(rows, len(tokens), extra))
    print("wrote", a.o)
    return 0


if __name__ == "__main__":
    sys.exit(main())
