"""`octet quantize --weights-only --report R.json` (quant_report_wo.c): one
row per weight-only quantized weight with its format, bits per weight,
bytes and the SQNR of the dequantized weight against the float one, and the
total sizes.

A model with a Gather table [50, 172], a MatMul weight [172, 24] (a short
last block; a zero column; an outlier row) and a Gemm weight with transB=1
[16, 300] is quantized to INT4 blocks of 32 asymmetric, INT8 per channel,
INT2 blocks of 16, NVFP4, MXFP4, Q4_K and Q6_K.  For each, independently of
Octet's code:
 - the dequantized weights are computed by onnx.reference on the
   DequantizeLinear chain extracted from the written model, and the SQNR
   10 log10(sum w^2 / sum (w - dq)^2) by numpy against the float weight:
   the report's figure must match within 1e-6 dB;
 - bytes are the stored sizes of the chain's initializers (4-bit and 2-bit
   elements packed, ceil(n * bits / 8)), bits per weight 8 * bytes / n,
   the format name the one asked for, and the model line the sum of every
   initializer of each model;
 - the table on stdout lists every weight and the model size line.
Then --weight-format=int4 --format=matmulnbits is reported on its
unpacked form (rows present, SQNR finite), and --svg with --weights-only
stays a usage error.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as T, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OCTET = os.environ["OCTET"]
F32 = np.float32
failures = []

BITS = {T.FLOAT4E2M1: 4, T.INT4: 4, T.UINT4: 4, T.INT2: 2, T.UINT2: 2, T.FLOAT: 32,
        T.FLOAT16: 16, T.INT8: 8, T.UINT8: 8, T.FLOAT8E4M3FN: 8, T.FLOAT8E8M0: 8}

CASES = [  # (options, expected format name)
    (["--weight-format", "int4", "--weight-scheme", "asym", "--block-size", "32"],
     "int4 b32 asym"),
    (["--weight-format", "int8", "--weight-scheme", "sym"], "int8 channel sym"),
    (["--weight-format", "int2", "--weight-scheme", "sym", "--block-size", "16"],
     "int2 b16 sym"),
    (["--weight-format", "nvfp4"], "nvfp4"),
    (["--weight-format", "mxfp4"], "mxfp4"),
    (["--weight-format", "q4_k"], "q4_k"),
    (["--weight-format", "q6_k"], "q6_k"),
]


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def octet(*args):
    return subprocess.run([OCTET, *map(str, args)], capture_output=True, text=True)


def model():
    rng = np.random.default_rng(5)
    w_mm = (rng.standard_normal((172, 24)) * 0.2).astype(F32)
    w_mm[:, 3] = 0
    w_mm[5, :] += 1.5
    w_gemm = (rng.standard_normal((16, 300)) * 0.3 + 0.05).astype(F32)
    table = (rng.standard_normal((50, 172)) * 0.5).astype(F32)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="embed", axis=0),
             helper.make_node("MatMul", ["e", "w_mm"], ["h"], name="mm"),
             helper.make_node("Gemm", ["x", "w_gemm"], ["g"], name="gemm", transB=1)]
    g = helper.make_graph(
        nodes, "report",
        [helper.make_tensor_value_info("ids", T.INT64, [5]),
         helper.make_tensor_value_info("x", T.FLOAT, [3, 300])],
        [helper.make_tensor_value_info("h", T.FLOAT, [5, 24]),
         helper.make_tensor_value_info("g", T.FLOAT, [3, 16])],
        [numpy_helper.from_array(a, n) for a, n in
         [(table, "table"), (w_mm, "w_mm"), (w_gemm, "w_gemm")]])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m, {"table": table, "w_mm": w_mm, "w_gemm": w_gemm}


def init_bytes(t):
    n = int(np.prod(t.dims)) if len(t.dims) else 1
    return math.ceil(n * BITS[t.data_type] / 8)


def chain_of(m, value):
    """The DequantizeLinear nodes and initializers computing `value`."""
    prod = {o: n for n in m.graph.node for o in n.output}
    inits = {t.name: t for t in m.graph.initializer}
    nodes, used, todo = [], {}, [value]
    while todo:
        v = todo.pop()
        if v in inits:
            used[v] = inits[v]
        elif v in prod:
            nodes.insert(0, prod[v])
            todo += [i for i in prod[v].input if i]
    return nodes, list(used.values())


def dequantize(m, value):
    nodes, inits = chain_of(m, value)
    g = helper.make_graph(nodes, "dq", [], [helper.make_tensor_value_info(value, T.FLOAT, None)],
                          inits)
    # opset 25: every DequantizeLinear form the formats use (the written
    # model may declare an older opset whose DequantizeLinear is the same)
    sub = helper.make_model(g, opset_imports=[helper.make_opsetid("", 25)])
    sub.ir_version = 11
    return ReferenceEvaluator(sub).run(None, {})[0].astype(F32), inits


def weight_input(m0, m, name):
    """The value read in m where m0's node reads float initializer `name`."""
    by_name = {n.name: n for n in m.graph.node}
    for n0 in m0.graph.node:
        for i, v in enumerate(n0.input):
            if v == name and n0.name in by_name:
                return by_name[n0.name].input[i]
    return None


def main():
    m0, weights = model()
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "float.onnx")
        onnx.save(m0, src)
        fp32_bytes = sum(init_bytes(t) for t in m0.graph.initializer)
        for opts, fmt in CASES:
            out, rep = os.path.join(d, "q.onnx"), os.path.join(d, "r.json")
            for f in (out, rep):
                if os.path.exists(f):
                    os.remove(f)
            r = octet("quantize", src, "--weights-only", *opts, "-o", out, "--report", rep)
            check(r.returncode == 0, "%s: quantizes with --report (%s)" % (fmt, r.stderr[-300:]))
            if r.returncode:
                continue
            j = json.load(open(rep))
            m = onnx.load(out)
            rows = {w["tensor"]: w for w in j["weights"]}
            quantized = [n for n in weights if weight_input(m0, m, n) not in (None, n)]
            check(sorted(rows) == sorted(quantized) and quantized,
                  "%s: one row per quantized weight (%s; quantized %s)" % (fmt, sorted(rows),
                                                                         quantized))
            total_b = total_n = 0
            for name in quantized:
                if name not in rows:
                    continue
                row = rows[name]
                dq, inits = dequantize(m, weight_input(m0, m, name))
                w = weights[name]
                sq = 10 * math.log10(float(np.sum(w.astype(np.float64) ** 2)) /
                                     float(np.sum((w.astype(np.float64) - dq) ** 2)))
                nbytes = sum(init_bytes(t) for t in inits)
                total_b += nbytes
                total_n += w.size
                check(abs(row["sqnr_db"] - sq) <= 1e-6,
                      "%s %s: SQNR %.6f dB equals numpy on onnx.reference's dequantization "
                      "%.6f" % (fmt, name, row["sqnr_db"], sq))
                check(row["bytes"] == nbytes and row["elements"] == w.size and
                      abs(row["bits_per_weight"] - 8.0 * nbytes / w.size) < 1e-9,
                      "%s %s: %d bytes, %.3f bits per weight (numpy: %d bytes, %d weights)"
                      % (fmt, name, row["bytes"], row["bits_per_weight"], nbytes, w.size))
                check(row["format"] == fmt, "%s %s: format named '%s'" % (fmt, name,
                                                                       row["format"]))
            model_bytes = sum(init_bytes(t) for t in m.graph.initializer)
            check(j["weight_bytes"] == total_b and j["weight_elements"] == total_n and
                  j["model_bytes"] == model_bytes and j["fp32_model_bytes"] == fp32_bytes,
                  "%s: totals %d/%d bytes, model %d (FP32 %d) equal numpy's %d/%d, %d (%d)"
                  % (fmt, j["weight_bytes"], j["weight_elements"], j["model_bytes"],
                     j["fp32_model_bytes"], total_b, total_n, model_bytes, fp32_bytes))
            check("model size:" in r.stdout and all(n in r.stdout for n in quantized),
                  "%s: the table lists every weight and the model size" % fmt)
        out, rep = os.path.join(d, "mnb.onnx"), os.path.join(d, "mnb.json")
        r = octet("quantize", src, "--weights-only", "--weight-format", "int4", "--block-size",
                  "32", "--format=matmulnbits", "-o", out, "--report", rep)
        ok = r.returncode == 0 and os.path.exists(rep)
        rows = json.load(open(rep))["weights"] if ok else []
        check(ok and rows and all(math.isfinite(w["sqnr_db"]) and w["sqnr_db"] > 10
                                  for w in rows),
              "matmulnbits: reported on its unpacked form (%s)" %
              ([(w["tensor"], w["sqnr_db"]) for w in rows] or r.stderr[-300:]))
        svg = os.path.join(d, "p.svg")
        r = octet("quantize", src, "--weights-only", "-o", os.path.join(d, "s.onnx"),
                  "--svg", svg)
        check(r.returncode == 1 and not os.path.exists(svg),
              "--weights-only --svg: usage error, nothing written (exit %d)" % r.returncode)
    print("%d failed" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
