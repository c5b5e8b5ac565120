"""octet quantize --weights-only (src/passes/quant_weightonly.c).

Mode `synthetic` (no shared data): a model with a MatMul weight of K=172
(blocks of 16 and 32 leave a short last block), a Gemm with transB=1, a Conv
and a Gather table, quantized in every weight format (int8, uint8, int4,
uint4, int2, uint2), symmetric and asymmetric, per channel and per block,
with and without --clip-search.  For each:
 - the integer codes, scales and zero points in the written model equal an
   independent numpy implementation of the rules in the file comment of
   quant_weightonly.c, bit for bit;
 - ONNX Runtime runs the model and `octet run` (interpreter) and
   `octet run --jit` give its outputs within float tolerance;
 - bad combinations (block size 48, 8 or 256, a float format, a format name
   no table row has, per-tensor) exit 1 (usage error) and write nothing.
Mode `stories` (../shared): stories260k prefill in int4 blocks of 32: the
down_proj weights (K=172, short last block) equal the numpy reference and the
logits of octet run / --jit equal ONNX Runtime's.

ONNX Runtime fuses DequantizeLinear + MatMul into MatMulNBits and by default
runs it with int8 activations (accuracy level 4), which is not the model's
arithmetic: the sessions here set session.qdq_matmulnbits_accuracy_level=0.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper, numpy_helper

OCTET = os.environ["OCTET"]
failures = []


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def octet(*args):
    return subprocess.run([OCTET, *map(str, args)], capture_output=True, text=True)


FORMATS = {  # name: (bits, signed, qmin, qmax), from the ONNX spec's types
    "int8": (8, True, -128, 127), "uint8": (8, False, 0, 255),
    "int4": (4, True, -8, 7), "uint4": (4, False, 0, 15),
    "int2": (2, True, -2, 1), "uint2": (2, False, 0, 3),
}
DEFAULT_SYM = {"int8": True, "uint8": False, "int4": True, "uint4": False,
               "int2": True, "uint2": False}


def ref_slice(x, fmt, sym, clip):
    """Codes, scale and zero point of one slice (1-D float32, element
    order), written from the rules, not from Octet's code."""
    bits, signed, qmin, qmax = FORMATS[fmt]
    if sym:
        qlo, qhi = (-qmax, qmax) if signed else (1, qmax)
    else:
        qlo, qhi = qmin, qmax
    wmin, wmax = float(x.min()), float(x.max())
    best = None
    for j in range(51 if clip else 1):
        fac = (100 - j) / 100.0
        if sym:
            amax = max(abs(wmin), abs(wmax))
            top = qmax if signed else (qmax + 1) / 2 - 1
            s = np.float32(amax * fac / top)
            zp = 0 if signed else (qmax + 1) // 2
        else:
            lo, hi = min(wmin, 0.0) * fac, max(wmax, 0.0) * fac
            s = np.float32((hi - lo) / (qmax - qmin))
            if not (s > 0 and np.isfinite(s)):
                s = np.float32(1)
            zp = int(np.clip(np.rint(qmin - lo / float(s)), qmin, qmax))
        if not (s > 0 and np.isfinite(s)):
            s = np.float32(1)
        q = np.clip(np.rint(x / s) + np.float32(zp), qlo, qhi).astype(np.float32)
        y = (q - np.float32(zp)).astype(np.float32) * s
        d = y.astype(np.float64) - x.astype(np.float64)
        err = np.cumsum(d * d)[-1]
        if best is None or err < best[0]:
            best = (err, s, zp, q.astype(np.int32))
    return best[1:]


def ref_weight(w, axis, bs, fmt, sym, clip):
    """Reference codes (w's shape), scales and zero points (the
    DequantizeLinear scale shape) for a weight."""
    codes = np.zeros(w.shape, np.int32)
    if not bs:
        n = w.shape[axis]
        scales, zps = np.zeros(n, np.float32), np.zeros(n, np.int32)
        for c in range(n):
            x = np.take(w, c, axis=axis)
            s, z, q = ref_slice(x.ravel(), fmt, sym, clip)
            scales[c], zps[c] = s, z
            idx = [slice(None)] * w.ndim
            idx[axis] = c
            codes[tuple(idx)] = q.reshape(x.shape)
        return codes, scales, zps
    assert w.ndim == 2
    nblk = -(-w.shape[axis] // bs)
    sshape = list(w.shape)
    sshape[axis] = nblk
    scales, zps = np.zeros(sshape, np.float32), np.zeros(sshape, np.int32)
    other = w.shape[1 - axis]
    for b in range(nblk):
        for o in range(other):
            blk = slice(b * bs, min((b + 1) * bs, w.shape[axis]))
            sel = (blk, o) if axis == 0 else (o, blk)
            s, z, q = ref_slice(w[sel], fmt, sym, clip)
            at = (b, o) if axis == 0 else (o, b)
            scales[at], zps[at] = s, z
            codes[sel] = q
    return codes, scales, zps


def ort_run(path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


def octet_run(path, feeds, tmp, jit=False):
    args = ["run", path, "--output-dir", os.path.join(tmp, "out")]
    for k, v in feeds.items():
        np.save(os.path.join(tmp, k + ".npy"), v)
        args += ["--input", f"{k}={os.path.join(tmp, k + '.npy')}"]
    r = octet(*args, *(["--jit"] if jit else []))
    if r.returncode:
        print(r.stderr[-3000:])
        return None
    return lambda name: np.load(os.path.join(tmp, "out", name + ".npy"))


def inits(path):
    m = onnx.load(path)
    return m, {i.name: i for i in m.graph.initializer}


def check_weight(path, name, w, axis, bs, fmt, sym, clip, what):
    m, d = inits(path)
    q = numpy_helper.to_array(d[name + "_quantized"]).astype(np.int32)
    s = numpy_helper.to_array(d[name + "_scale"])
    z = numpy_helper.to_array(d[name + "_zero_point"]).astype(np.int32)
    rq, rs, rz = ref_weight(w, axis, bs, fmt, sym, clip)
    dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == name + "_quantized"]
    attrs = {a.name: a.i for a in dq[0].attribute} if dq else {}
    want_t = {"int8": T.INT8, "uint8": T.UINT8, "int4": T.INT4, "uint4": T.UINT4,
              "int2": T.INT2, "uint2": T.UINT2}[fmt]
    check(d[name + "_quantized"].data_type == want_t and attrs.get("axis") == axis
          and attrs.get("block_size", 0) == bs,
          f"{what}: {name} stored as {fmt}, DequantizeLinear axis {axis} block_size {bs}")
    check(q.shape == rq.shape and np.array_equal(q, rq) and np.array_equal(z, rz)
          and s.shape == rs.shape and np.array_equal(s.view(np.uint32), rs.view(np.uint32)),
          f"{what}: {name} codes, scales and zero points equal the numpy reference")


def synthetic():
    rng = np.random.default_rng(7)
    w_mm = (rng.standard_normal((172, 24)) * 0.2).astype(np.float32)
    w_mm[:, 3] = 0  # a slice of zeros: scale 1
    w_mm[5, :] += 1.5  # an outlier row: clipping matters
    w_gemm = (rng.standard_normal((16, 24)) * 0.3 + 0.05).astype(np.float32)
    w_conv = (rng.standard_normal((4, 2, 3, 3)) * 0.4).astype(np.float32)
    table = (rng.standard_normal((50, 172)) * 0.5).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], name="embed", axis=0),
        helper.make_node("MatMul", ["e", "w_mm"], ["h"], name="mm"),
        helper.make_node("Gemm", ["h", "w_gemm"], ["g"], name="gemm", transB=1),
        helper.make_node("Conv", ["img", "w_conv"], ["c"], name="conv", pads=[1, 1, 1, 1]),
    ]
    g = helper.make_graph(
        nodes, "wo",
        [helper.make_tensor_value_info("ids", T.INT64, [5]),
         helper.make_tensor_value_info("img", T.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("g", T.FLOAT, [5, 16]),
         helper.make_tensor_value_info("c", T.FLOAT, [1, 4, 6, 6])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(w_mm, "w_mm"),
         numpy_helper.from_array(w_gemm, "w_gemm"), numpy_helper.from_array(w_conv, "w_conv")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    feeds = {"ids": np.array([0, 7, 49, 3, 7], np.int64),
             "img": rng.standard_normal((1, 2, 6, 6)).astype(np.float32)}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "wo.onnx")
        onnx.save(model, src)
        cases = []
        for fmt in FORMATS:
            for sym in (True, False):
                cases.append((fmt, sym, 32, False))
            cases.append((fmt, DEFAULT_SYM[fmt], 0, False))
            cases.append((fmt, not DEFAULT_SYM[fmt], 16, True))
        cases += [("int4", True, 128, True), ("int4", False, 64, False),
                  ("int4", True, 0, True), ("uint2", False, 32, True)]
        for fmt, sym, bs, clip in cases:
            what = f"{fmt} {'sym' if sym else 'asym'} {'block ' + str(bs) if bs else 'channel'}" \
                   f"{' clip-search' if clip else ''}"
            out = os.path.join(tmp, "q.onnx")
            args = ["quantize", src, "--weights-only", "--weight-format", fmt,
                    "--weight-scheme", "sym" if sym else "asym",
                    "--op-types", "MatMul,Gemm,Conv,Gather", "-o", out]
            if bs:
                args += ["--block-size", bs]
            if clip:
                args += ["--clip-search"]
            r = octet(*args)
            check(r.returncode == 0, f"{what}: quantize exits 0 ({r.stderr.strip()[:200]})")
            if r.returncode:
                continue
            check_weight(out, "w_mm", w_mm, 0 if bs else 1, bs, fmt, sym, clip, what)
            check_weight(out, "w_gemm", w_gemm, 1 if bs else 0, bs, fmt, sym, clip, what)
            check_weight(out, "w_conv", w_conv, 0, 0, fmt, sym, clip, what)
            check_weight(out, "table", table, 1 if bs else 0, bs, fmt, sym, clip, what)
            m = onnx.load(out)
            need_opset = 25 if fmt.endswith("2") else 21 if bs or fmt.endswith("4") else 17
            check(m.opset_import[0].version == need_opset,
                  f"{what}: opset {m.opset_import[0].version} (needs {need_opset})")
            want = ort_run(out, feeds)
            for jit in (False, True):
                got = octet_run(out, feeds, tmp, jit)
                ok = got is not None and all(
                    np.allclose(got(k), v, rtol=1e-5, atol=1e-5) for k, v in want.items())
                check(ok, f"{what}: octet run{' --jit' if jit else ''} equals ONNX Runtime")
        # --format=matmulnbits: the MatMul's blocked weight as ORT's
        # MatMulNBits (codes shifted to unsigned, B [N, k_blocks, blob]),
        # the other weights as DequantizeLinear
        for fmt, sym, bs, clip in [("int4", True, 32, False), ("uint4", False, 16, True),
                                   ("int8", False, 32, False), ("uint2", False, 16, False),
                                   ("int2", True, 64, True), ("int4", False, 128, False)]:
            what = f"matmulnbits {fmt} {'sym' if sym else 'asym'} block {bs}{' clip' if clip else ''}"
            out, qdq = os.path.join(tmp, "n.onnx"), os.path.join(tmp, "q.onnx")
            common = [src, "--weights-only", "--weight-format", fmt, "--weight-scheme",
                      "sym" if sym else "asym", "--op-types", "MatMul,Gemm,Conv,Gather",
                      "--block-size", bs, *(["--clip-search"] if clip else [])]
            r = octet("quantize", *common, "--format", "matmulnbits", "-o", out)
            r2 = octet("quantize", *common, "-o", qdq)
            check(r.returncode == 0 and r2.returncode == 0, f"{what}: quantize exits 0 {r.stderr[:200]}")
            if r.returncode or r2.returncode:
                continue
            m, d = inits(out)
            mnb = [n for n in m.graph.node if n.op_type == "MatMulNBits"]
            attrs = {a.name: a.i for a in mnb[0].attribute} if len(mnb) == 1 else {}
            bits = FORMATS[fmt][0]
            check(len(mnb) == 1 and mnb[0].domain == "com.microsoft" and attrs == dict(
                K=172, N=24, bits=bits, block_size=bs) and mnb[0].name == "mm",
                f"{what}: the MatMul is a MatMulNBits K=172 N=24 bits={bits} block_size={bs}")
            rq, rs, rz = ref_weight(w_mm, 0, bs, fmt, sym, clip)
            off = 1 << (bits - 1) if FORMATS[fmt][1] else 0
            nb = -(-172 // bs)
            codes = np.zeros((24, nb * bs), np.int64)
            codes[:, :172] = (rq + off).T
            per = 8 // bits
            want_b = np.zeros((24, nb * bs // per), np.int64)
            for j in range(per):
                want_b |= codes[:, j::per] << (j * bits)
            got_b = numpy_helper.to_array(d[mnb[0].input[1]]) if mnb else None
            check(got_b is not None and got_b.shape == (24, nb, bs * bits // 8) and
                  np.array_equal(got_b.reshape(24, -1), want_b),
                  f"{what}: B bytes are the numpy reference codes, shifted and packed")
            got_s = numpy_helper.to_array(d[mnb[0].input[2]]) if mnb else None
            check(got_s is not None and np.array_equal(got_s.view(np.uint32),
                                                       np.ascontiguousarray(rs.T).ravel().view(np.uint32)),
                  f"{what}: scales are the reference's, [N, k_blocks] order")
            zps = rz.T + off
            if np.all(zps == 1 << (bits - 1)):
                check(len(mnb[0].input) == 3, f"{what}: zero points all default: left out")
            else:
                zrow = -(-nb * bits // 8)
                zc = np.zeros((24, zrow * per), np.int64)
                zc[:, :nb] = zps
                want_z = np.zeros((24, zrow), np.int64)
                for j in range(per):
                    want_z |= zc[:, j::per] << (j * bits)
                got_z = numpy_helper.to_array(d[mnb[0].input[3]]) if len(mnb[0].input) > 3 else None
                check(got_z is not None and np.array_equal(got_z.reshape(24, -1), want_z),
                      f"{what}: zero points packed as uint8 rows")
            try:
                want = ort_run(out, feeds)
            except Exception as e:  # noqa: BLE001
                check(False, f"{what}: ONNX Runtime runs it ({str(e)[:150]})")
                continue
            via_qdq = ort_run(qdq, feeds)
            check(all(np.allclose(want[k], via_qdq[k], rtol=1e-5, atol=1e-5) for k in want),
                  f"{what}: ONNX Runtime gives the QDQ model's outputs")
            for jit in (False, True):
                got = octet_run(out, feeds, tmp, jit)
                ok = got is not None and all(
                    np.allclose(got(k), v, rtol=1e-5, atol=1e-5) for k, v in want.items())
                check(ok, f"{what}: octet run{' --jit' if jit else ''} equals ONNX Runtime")
        r = octet("quantize", src, "--weights-only", "--format", "matmulnbits", "-o",
                  os.path.join(tmp, "bad.onnx"))
        check(r.returncode == 1 and not os.path.exists(os.path.join(tmp, "bad.onnx")),
              "--format=matmulnbits per channel is a usage error, writes nothing")
        # bad combinations: usage error, nothing written
        for extra, why in [(["--block-size", "48"], "block size 48"),
                           (["--block-size", "8"], "block size 8"),
                           (["--block-size", "256"], "block size 256"),
                           (["--weight-format", "fp8e4m3"], "a float format"),
                           (["--weight-format", "int3"], "int3"),
                           (["--weight-format", "int16"], "int16"),
                           (["--weights", "per-tensor"], "per-tensor scales"),
                           (["--weight-scheme", "both"], "scheme 'both'")]:
            out = os.path.join(tmp, "bad.onnx")
            r = octet("quantize", src, "--weights-only", *extra, "-o", out)
            check(r.returncode == 1 and r.stderr.strip() and not os.path.exists(out),
                  f"{why}: exit {r.returncode} (1), writes nothing ({r.stderr.strip()[:120]})")
        r = octet("quantize", src, "--clip-search", "--load-stats", os.path.join(tmp, "none.json"),
                  "-o", os.path.join(tmp, "bad.onnx"))
        check(r.returncode == 1 and "need weights-only" in r.stderr
              and not os.path.exists(os.path.join(tmp, "bad.onnx")),
              "--clip-search without --weights-only is a usage error")


def stories():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testlib"))
    from shared_data import need
    shared = need("models/stories260k/prefill_s64.onnx")
    src = os.path.join(shared, "models/stories260k/prefill_s64.onnx")
    _, d = inits(src)
    ids = {"input_ids": (np.arange(64, dtype=np.int64) * 37 % 512).reshape(1, 64)}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, sym, clip in [("int4", True, False), ("uint4", False, True)]:
            what = f"stories260k {fmt} b32 {'sym' if sym else 'asym'}{' clip' if clip else ''}"
            out = os.path.join(tmp, "q.onnx")
            r = octet("quantize", src, "--weights-only", "--weight-format", fmt, "--weight-scheme",
                      "sym" if sym else "asym", "--block-size", 32, *(["--clip-search"] if clip else []),
                      "-o", out)
            check(r.returncode == 0, f"{what}: quantize exits 0 {r.stderr[:200]}")
            for layer in (0, 4):
                name = f"model.layers.{layer}.mlp.down_proj.weight"
                w = numpy_helper.to_array(d[name])
                check(w.shape == (172, 64), f"{name} is [172, 64]")
                check_weight(out, name, w, 0, 32, fmt, sym, clip, what)
            _, qd = inits(out)
            check(numpy_helper.to_array(qd["model.layers.0.mlp.down_proj.weight_scale"]).shape == (6, 64),
                  f"{what}: K=172 in blocks of 32 has 6 scale rows, the last block 12 long")
            want = ort_run(out, ids)["logits"]
            ref = ort_run(src, ids)["logits"]
            rel = np.linalg.norm(want - ref) / np.linalg.norm(ref)
            check(0 < rel < 0.2, f"{what}: quantized logits differ from FP32 but stay close "
                  f"(relative L2 {rel:.3g})")
            # the JIT compiles for a minute on a loaded machine: once
            for jit in (False, True) if not clip else (False,):
                got = octet_run(out, ids, tmp, jit)
                err = np.abs(got("logits") - want).max() if got else float("inf")
                check(err <= 1e-4 * np.abs(want).max(),
                      f"{what}: octet run{' --jit' if jit else ''} logits equal ONNX Runtime's "
                      f"(max diff {err:.3g})")


{"synthetic": synthetic, "stories": stories}[sys.argv[1]]()
print(f"{len(failures)} failed" if failures else "all checks passed")
sys.exit(1 if failures else 0)
