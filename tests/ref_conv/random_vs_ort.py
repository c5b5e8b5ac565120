"""Random single-node Conv, ConvTranspose, MaxPool, AveragePool, Gemm and
MatMul models (awkward sizes, groups, dilations, strides, pads, auto_pad,
ceil_mode, count_include_pad, output_padding/output_shape, transposes,
broadcasting) run through `octet run` and ONNX Runtime; every output must
match within |got - want| <= 1e-5 + 1e-5 * |want|, and exactly for Indices.
Cases ORT itself rejects are skipped.

Usage: random_vs_ort.py [N_CASES] [SEED]   (env OCTET)
"""
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

OCTET = os.environ.get("OCTET", "build/octet")


def same_stride_fix(attrs, k):
    """SAME_* with a stride larger than the dilated kernel asks for negative
    padding, which engines disagree on (ONNX shape inference clamps it to 0,
    ONNX Runtime shifts or rejects, the onnx reference crops): keep strides
    within the kernel there."""
    d = attrs.get("dilations", [1] * len(k))
    attrs["strides"] = [min(s, (ki - 1) * di + 1) for s, ki, di in zip(attrs["strides"], k, d)]


def conv_case(r):
    ns = r.choice([1, 2, 2, 3])
    group = r.choice([1, 1, 2, 3])
    cg, mg = r.randint(1, 4), r.randint(1, 4)
    if r.random() < 0.2:
        cg, mg = 1, r.randint(1, 2)
        group = r.randint(2, 6)
    c, m = cg * group, mg * group
    k = [r.randint(1, 3) for _ in range(ns)]
    size = [r.randint(4, {1: 30, 2: 12, 3: 6}[ns]) for _ in range(ns)]
    attrs = dict(group=group, strides=[r.randint(1, 3) for _ in range(ns)],
                 dilations=[r.randint(1, 2) for _ in range(ns)])
    ap = r.choice(["NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"])
    if ap == "NOTSET":
        attrs["pads"] = [r.randint(0, 2) for _ in range(2 * ns)]
    else:
        attrs["auto_pad"] = ap
        same_stride_fix(attrs, k)
    bias = r.random() < 0.5
    ins = [("X", [2, c] + size), ("W", [m, cg] + k)] + ([("B", [m])] if bias else [])
    return "Conv", ins, 1, attrs


def convtranspose_case(r):
    ns = r.choice([1, 2, 2, 3])
    group = r.choice([1, 1, 2])
    cg, mg = r.randint(1, 3), r.randint(1, 3)
    c, m = cg * group, mg * group
    k = [r.randint(1, 3) for _ in range(ns)]
    size = [r.randint(2, {1: 10, 2: 6, 3: 4}[ns]) for _ in range(ns)]
    s = [r.randint(1, 3) for _ in range(ns)]
    d = [r.randint(1, 2) for _ in range(ns)]
    attrs = dict(group=group, strides=s, dilations=d)
    attrs["output_padding"] = [r.randint(0, max(si, di) - 1) for si, di in zip(s, d)]
    mode = r.choice(["pads", "pads", "output_shape", "SAME_UPPER", "SAME_LOWER"])
    if mode == "pads":
        attrs["pads"] = [r.randint(0, 1) for _ in range(2 * ns)]
    elif mode == "output_shape":
        full = [si * (n - 1) + op + (ki - 1) * di + 1 for si, n, op, ki, di in
                zip(s, size, attrs["output_padding"], k, d)]
        attrs["output_shape"] = [max(1, f - r.randint(0, 2)) for f in full]
    else:
        # SAME asks for out = in * stride; when the full scatter is smaller
        # than that, ONNX Runtime shrinks the output instead (and the onnx
        # reference crops), so compare only where the spec is unambiguous.
        full = [si * (n - 1) + op + (ki - 1) * di + 1 for si, n, op, ki, di in
                zip(s, size, attrs["output_padding"], k, d)]
        if all(f >= n * si for f, n, si in zip(full, size, s)):
            attrs["auto_pad"] = mode
        else:
            attrs["pads"] = [0] * (2 * ns)
    bias = r.random() < 0.5
    ins = [("X", [1, c] + size), ("W", [c, mg] + k)] + ([("B", [m])] if bias else [])
    return "ConvTranspose", ins, 1, attrs


def pool_case(r):
    op = r.choice(["MaxPool", "AveragePool"])
    ns = r.choice([1, 2, 2, 3])
    k = [r.randint(1, 3) for _ in range(ns)]
    size = [r.randint(3, {1: 25, 2: 11, 3: 6}[ns]) for _ in range(ns)]
    attrs = dict(kernel_shape=k, strides=[r.randint(1, 3) for _ in range(ns)],
                 ceil_mode=r.randint(0, 1))
    if r.random() < 0.5:
        attrs["dilations"] = [r.randint(1, 2) for _ in range(ns)]
    ap = r.choice(["NOTSET", "NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"])
    if ap == "NOTSET":
        attrs["pads"] = [r.randint(0, ki - 1) for ki in k] + [r.randint(0, ki - 1) for ki in k]
    else:
        attrs["auto_pad"] = ap
        # ONNX Runtime sizes SAME pooling windows without the dilation
        # (the spec includes it): no dilation with SAME here
        attrs.pop("dilations", None)
        same_stride_fix(attrs, k)
    n_out = 1
    if op == "AveragePool":
        attrs["count_include_pad"] = r.randint(0, 1)
    elif r.random() < 0.5:
        n_out = 2
        if ns == 2:
            attrs["storage_order"] = r.randint(0, 1)
    return op, [("X", [2, 3] + size)], n_out, attrs


def gemm_case(r):
    m, n, k = r.randint(1, 40), r.randint(1, 40), r.randint(1, 300)
    ta, tb = r.randint(0, 1), r.randint(0, 1)
    ins = [("A", [k, m] if ta else [m, k]), ("B", [n, k] if tb else [k, n])]
    cshape = r.choice([None, [n], [1, n], [m, 1], [m, n], [1]])
    if cshape is not None:
        ins.append(("C", cshape))
    attrs = dict(transA=ta, transB=tb, alpha=r.choice([1.0, 0.5]), beta=r.choice([1.0, -2.0]))
    return "Gemm", ins, 1, attrs


def matmul_case(r):
    m, n, k = r.randint(1, 30), r.randint(1, 30), r.randint(1, 200)
    shapes = r.choice([([m, k], [k, n]), ([k], [k, n]), ([m, k], [k]),
                       ([3, m, k], [k, n]), ([2, 1, m, k], [3, k, n]), ([k], [2, k, n])])
    return "MatMul", [("A", shapes[0]), ("B", shapes[1])], 1, {}


def build(op, ins, n_out, attrs):
    outs = ["Y", "I"][:n_out]
    node = helper.make_node(op, [n for n, _ in ins], outs, **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in ins],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT if o == "Y" else TensorProto.INT64, None)
         for o in outs])
    return helper.make_model(graph, ir_version=9, opset_imports=[helper.make_opsetid("", 19)])


def main():
    n_cases = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    r = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
    rng = np.random.default_rng(7)
    gens = [conv_case, convtranspose_case, pool_case, gemm_case, matmul_case]
    tmp = tempfile.mkdtemp(prefix="octet_rand_")
    ran = skipped = failed = 0
    for i in range(n_cases):
        op, ins, n_out, attrs = gens[i % len(gens)](r)
        model = build(op, ins, n_out, attrs)
        feeds = {n: rng.uniform(-1, 1, size=s).astype(np.float32) for n, s in ins}
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 4
            sess = ort.InferenceSession(model.SerializeToString(), opts,
                                        providers=["CPUExecutionProvider"])
            want = sess.run(None, feeds)
        except Exception:
            skipped += 1  # ONNX Runtime rejects the configuration
            continue
        path = os.path.join(tmp, "m.onnx")
        onnx.save(model, path)
        args = [OCTET, "run", path, "--output-dir", tmp, "--format=npy"]
        for n, v in feeds.items():
            np.save(os.path.join(tmp, n + "_in.npy"), v)
            args += ["--input", "%s=%s" % (n, os.path.join(tmp, n + "_in.npy"))]
        p = subprocess.run(args, capture_output=True, text=True)
        ran += 1
        why = None
        if p.returncode != 0:
            why = "exit %d: %s" % (p.returncode, p.stderr.strip()[-200:])
        else:
            for o, w in zip(["Y", "I"][:n_out], want):
                g = np.load(os.path.join(tmp, o + ".npy"))
                if g.shape != w.shape:
                    why = "%s shape %s vs %s" % (o, g.shape, w.shape)
                elif o == "I" and not np.array_equal(g, w):
                    why = "indices differ"
                elif o == "Y" and not np.allclose(g, w, rtol=1e-5, atol=1e-5, equal_nan=True):
                    why = "max diff %g" % np.max(np.abs(g - w))
        if why:
            failed += 1
            print("FAIL case %d %s %s %s: %s" % (i, op, ins, attrs, why))
    print("%d run, %d failed, %d rejected by onnxruntime" % (ran, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
