"""MatMulNBits (com.microsoft) in Octet's interpreter and compiler.

Mode `synthetic` (no shared data): one-node MatMulNBits models built here
(bits 2, 4 and 8; K a multiple of the block or not; no zero points, packed
uint8 zero points, float zero points; a bias; 2-D and 3-D A) run in
`octet run` and `octet run --jit` with ONNX Runtime's outputs (a form ONNX
Runtime refuses is reported and skipped); malformed ones (K, N, bits or
block_size inconsistent, a short packed B, scales or zero points of the
wrong size, a g_idx entry out of range) exit 2 with a diagnostic naming the
node, interpreted and compiled.
Mode `ortquant`: models written by ONNX Runtime's own 4-bit quantizer at
test time compile onto the packed INT4 kernel and equal ONNX Runtime's
outputs within 1e-5 relative (see ortquant()).
Mode `int8`: accuracy_level 4 models (built here and written by ONNX
Runtime's quantizer) run with int8 activations, interpreter, --jit and
compiled bit for bit alike (see int8()).
Mode `rows`: `--int8-rows` (int8 weights per column, activations per
row) on accuracy_level 4 models: interpreter equal to the numpy definition,
--jit and compiled (AVX-512 VNNI, AVX2 and baseline kernels, each where
this CPU runs it) equal to the interpreter, bit for bit (see rows()).
Mode `anchors` (../shared): ONNX Runtime's own quantizer's stories260k
models (ort-default-w4-b32-sym: no zero points; ort-hqq-w4-b32: float zero
points) give ONNX Runtime's logits within 1e-5 relative, interpreted and
compiled, and `octet eval` perplexity on eval_tokens.npy within 1e-4
relative of ONNX Runtime's.
"""
import json
import logging
import math
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


def ort_run(path, feeds):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


def octet_run(path, feeds, tmp, jit, extra=()):
    args = ["run", path, "--output-dir", os.path.join(tmp, "out")]
    for k, v in feeds.items():
        np.save(os.path.join(tmp, k + ".npy"), v)
        args += ["--input", f"{k}={os.path.join(tmp, k + '.npy')}"]
    r = octet(*args, *(["--jit"] if jit else []), *extra)
    return r, (np.load(os.path.join(tmp, "out", "y.npy")) if r.returncode == 0 else None)


def pack(codes, bits):
    """Codes (ints < 2^bits) packed low bits first into bytes."""
    per = 8 // bits
    codes = np.asarray(codes, np.uint32).ravel()
    codes = np.concatenate([codes, np.zeros((-len(codes)) % per, np.uint32)])
    out = np.zeros(len(codes) // per, np.uint32)
    for j in range(per):
        out |= codes[j::per] << (j * bits)
    return out.astype(np.uint8)


def mnb_model(K, N, bits, bs, zp_kind, bias, a_shape, rng, override=None):
    """A MatMulNBits model and the float weight it means (numpy)."""
    nb = -(-K // bs)
    blob = bs * bits // 8
    q = rng.integers(0, 1 << bits, size=(N, nb * bs))
    B = np.stack([pack(q[n], bits) for n in range(N)]).reshape(N, nb, blob)
    scales = (rng.random((N, nb)) * 0.1 + 0.01).astype(np.float32)
    inits = [numpy_helper.from_array(B, "B"), numpy_helper.from_array(scales.ravel(), "s")]
    inputs = ["a", "B", "s"]
    if zp_kind == "packed":
        zq = rng.integers(0, 1 << bits, size=(N, nb))
        inits.append(numpy_helper.from_array(np.stack([pack(zq[n], bits) for n in range(N)]).ravel(), "z"))
        zf = zq.astype(np.float32)
        inputs.append("z")
    elif zp_kind == "float":
        zf = (rng.random((N, nb)) * (1 << bits)).astype(np.float32)
        inits.append(numpy_helper.from_array(zf.ravel(), "z"))
        inputs.append("z")
    else:
        zf = np.full((N, nb), 1 << (bits - 1), np.float32)
    if bias:
        bv = rng.standard_normal(N).astype(np.float32)
        inits.append(numpy_helper.from_array(bv, "bias"))
        inputs += [""] * (5 - len(inputs)) + ["bias"]
    attrs = dict(K=K, N=N, bits=bits, block_size=bs)
    if override:
        attrs.update(override.get("attrs", {}))
    node = helper.make_node("MatMulNBits", inputs, ["y"], name="mnb", domain="com.microsoft", **attrs)
    y_shape = list(a_shape[:-1]) + [N]
    g = helper.make_graph([node], "mnb", [helper.make_tensor_value_info("a", T.FLOAT, list(a_shape))],
                         [helper.make_tensor_value_info("y", T.FLOAT, y_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 10
    return m


def synthetic():
    rng = np.random.default_rng(3)
    cases = []
    for bits in (4, 8, 2):
        for zp in ("none", "packed", "float"):
            cases.append((40, 6, bits, 16, zp, zp == "packed", (3, 40)))
    cases += [(64, 5, 4, 32, "packed", True, (2, 3, 64)), (172, 8, 4, 32, "none", False, (1, 172)),
              (172, 8, 4, 128, "float", True, (4, 172))]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.onnx")
        for K, N, bits, bs, zp, bias, a_shape in cases:
            what = f"K={K} N={N} bits={bits} block={bs} zp={zp}{' bias' if bias else ''} A{list(a_shape)}"
            onnx.save(mnb_model(K, N, bits, bs, zp, bias, a_shape, rng), path)
            a = rng.standard_normal(a_shape).astype(np.float32)
            try:
                want = ort_run(path, {"a": a})
            except Exception as e:  # noqa: BLE001
                print(f"SKIP {what}: ONNX Runtime refuses it ({str(e)[:120]})")
                continue
            for jit in (False, True):
                r, got = octet_run(path, {"a": a}, tmp, jit)
                err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30) if got is not None else 1
                check(err < 1e-5, f"{what}{' --jit' if jit else ''}: equals ONNX Runtime "
                      f"(relative {err:.2g}) {r.stderr.strip()[:200]}")
        bad = [
            ("K not A's last dim", dict(attrs=dict(K=48)), "K"),
            ("N not B's rows", dict(attrs=dict(N=7)), "N"),
            ("bits 3", dict(attrs=dict(bits=3)), "bits"),
            ("block_size 20", dict(attrs=dict(block_size=20)), "block_size"),
            ("block_size 8", dict(attrs=dict(block_size=8)), "block_size"),
        ]
        for why, override, word in bad:
            onnx.save(mnb_model(40, 6, 4, 16, "packed", False, (3, 40), rng, override), path)
            for jit in (False, True):
                r, _ = octet_run(path, {"a": np.zeros((3, 40), np.float32)}, tmp, jit)
                check(r.returncode == 2 and "MatMulNBits" in r.stderr and "'mnb'" in r.stderr,
                      f"{why}{' --jit' if jit else ''}: exit {r.returncode} (2), "
                      f"names the node ({r.stderr.strip()[:160]})")
        # tensors of the wrong size: B short by one byte, scales and zero
        # points one short, a g_idx entry out of range
        base = mnb_model(40, 6, 4, 16, "packed", False, (3, 40), rng)
        for why, name, edit in [
            ("short packed B", "B", lambda x: x.reshape(-1)[:-1]),
            ("scales one short", "s", lambda x: x[:-1]),
            ("zero points one short", "z", lambda x: x[:-1]),
        ]:
            m = onnx.ModelProto()
            m.CopyFrom(base)
            for i, t in enumerate(m.graph.initializer):
                if t.name == name:
                    m.graph.initializer[i].CopyFrom(numpy_helper.from_array(edit(numpy_helper.to_array(t)), name))
            onnx.save(m, path)
            for jit in (False, True):
                r, _ = octet_run(path, {"a": np.zeros((3, 40), np.float32)}, tmp, jit)
                check(r.returncode == 2 and "MatMulNBits" in r.stderr,
                      f"{why}{' --jit' if jit else ''}: exit {r.returncode} (2) "
                      f"({r.stderr.strip()[:160]})")
        m = onnx.ModelProto()
        m.CopyFrom(base)
        m.graph.node[0].input.extend(["g"])
        m.graph.initializer.append(numpy_helper.from_array(np.array([0] * 39 + [3], np.int32), "g"))
        onnx.save(m, path)
        for jit in (False, True):
            r, _ = octet_run(path, {"a": np.zeros((3, 40), np.float32)}, tmp, jit)
            check(r.returncode == 2 and "g_idx" in r.stderr,
                  f"g_idx out of range{' --jit' if jit else ''}: exit {r.returncode} (2) "
                  f"({r.stderr.strip()[:160]})")


def ort_perplexity(path, tokens, window, windows):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    s = sess.get_inputs()[0].shape[1]
    total, count = 0.0, 0
    for w in range(windows):
        win = tokens[w * window:(w + 1) * window].astype(np.int64)
        ids = np.zeros((1, s), np.int64)
        ids[0, :window] = win
        lg = sess.run(["logits"], {"input_ids": ids})[0][0, :window].astype(np.float64)
        top = lg.max(-1, keepdims=True)
        lse = np.log(np.exp(lg - top).sum(-1)) + top[:, 0]
        total += float((lse[:-1] - lg[np.arange(window - 1), win[1:]]).sum())
        count += window - 1
    return math.exp(total / count), count


def anchors():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testlib"))
    from shared_data import need
    shared = need("models/stories260k/anchors/ort-default-w4-b32-sym.onnx",
                  "models/stories260k/anchors/ort-hqq-w4-b32.onnx",
                  "data/tinystories/eval_tokens.npy")
    tokens_path = os.path.join(shared, "data/tinystories/eval_tokens.npy")
    tokens = np.load(tokens_path)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("ort-default-w4-b32-sym", "ort-hqq-w4-b32"):
            path = os.path.join(shared, "models/stories260k/anchors", name + ".onnx")
            ids = tokens[:128].astype(np.int64).reshape(1, 128)
            want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
                ["logits"], {"input_ids": ids})[0]
            np.save(os.path.join(tmp, "ids.npy"), ids)
            for jit in (False, True):
                r = octet("run", path, "--input", f"input_ids={os.path.join(tmp, 'ids.npy')}",
                          "--output-dir", os.path.join(tmp, "o"), *(["--jit"] if jit else []))
                got = np.load(os.path.join(tmp, "o", "logits.npy")) if r.returncode == 0 else None
                err = np.abs(got - want).max() / np.abs(want).max() if got is not None else 1
                check(err < 1e-5, f"{name}{' --jit' if jit else ''}: logits equal ONNX Runtime's "
                      f"(relative {err:.2g}) {r.stderr.strip()[:200]}")
            windows = 8
            report = os.path.join(tmp, "r.json")
            r = octet("eval", path, "--perplexity", tokens_path, "--window", 128,
                      "--max-windows", windows, "--report", report)
            ppl = json.load(open(report))["perplexity"] if r.returncode == 0 else float("nan")
            want_ppl, _ = ort_perplexity(path, tokens, 128, windows)
            rel = abs(ppl - want_ppl) / want_ppl
            check(rel < 1e-4, f"{name}: eval perplexity {ppl:.6f} vs ONNX Runtime {want_ppl:.6f} "
                  f"(relative {rel:.1e}) on {windows} windows of 128")


def ortquant():
    """Models written by ONNX Runtime's own 4-bit quantizer
    (onnxruntime.quantization.matmul_nbits_quantizer, run here on a float
    two-layer MatMul model with K = 200, not a multiple of the block, and N
    odd), symmetric and with zero points, blocks of 32 and 128: `octet
    compile` puts each MatMulNBits on the packed INT4 kernel (the report
    names octk_wogemm) and the library's output equals ONNX Runtime's within
    1e-5 relative, for 1, 5 and 17 rows."""
    try:
        from onnxruntime.quantization import matmul_nbits_quantizer as mnq
    except ImportError as e:
        print(f"SKIP ortquant: ONNX Runtime's quantizer does not import ({e}); "
              "scripts/requirements.txt lists what it needs")
        return
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "codegen"))
    import cgutil
    rng = np.random.default_rng(11)
    K, H, N = 200, 96, 67
    w1 = (rng.standard_normal((K, H)) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((H, N)) * 0.1).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for sym in (True, False):
            for bs in (32, 128):
                for M in (1, 5, 17):
                    what = f"ORT quantizer, {'symmetric' if sym else 'zero points'}, blocks of {bs}, M={M}"
                    g = helper.make_graph(
                        [helper.make_node("MatMul", ["a", "w1"], ["h"], name="mm1"),
                         helper.make_node("MatMul", ["h", "w2"], ["y"], name="mm2")], "f",
                        [helper.make_tensor_value_info("a", T.FLOAT, [M, K])],
                        [helper.make_tensor_value_info("y", T.FLOAT, [M, N])],
                        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
                    fm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
                    fm.ir_version = 8
                    q = mnq.MatMulNBitsQuantizer(fm, bits=4, block_size=bs, is_symmetric=sym)
                    logging.disable(logging.INFO)
                    q.process()
                    path = os.path.join(tmp, "q.onnx")
                    onnx.save(q.model.model, path)
                    ops = [n.op_type for n in onnx.load(path).graph.node]
                    check(ops.count("MatMulNBits") == 2, f"{what}: the quantizer wrote {ops}")
                    a = rng.standard_normal((M, K)).astype(np.float32)
                    want = ort_run(path, {"a": a})
                    name = f"q{int(sym)}_{bs}_{M}"  # ctypes keeps a loaded path
                    base = os.path.join(tmp, name)
                    r = octet("compile", path, "-o", base, "--emit=so", "--report", base + ".txt")
                    if r.returncode:
                        check(False, f"{what}: compiles ({r.stderr.strip()[-200:]})")
                        continue
                    rep = open(base + ".txt").read()
                    check(rep.count("octk_wogemm") == 2, f"{what}: both nodes on octk_wogemm")
                    _, outs = cgutil.run_so(base + ".so", name, [a])
                    err = np.abs(outs[0] - want).max() / max(np.abs(want).max(), 1e-30)
                    check(err < 1e-5, f"{what}: compiled equals ONNX Runtime (relative {err:.2g})")


def unpack4(m_onnx):
    """Codes q [N, K], zero points z [N, nb] (int64), scales s [N, nb]
    (float32) and the attributes of a one-node 4-bit MatMulNBits model."""
    n = m_onnx.graph.node[0]
    at = {x.name: helper.get_attribute_value(x) for x in n.attribute}
    K, N, bs = at["K"], at["N"], at["block_size"]
    inits = {t.name: numpy_helper.to_array(t) for t in m_onnx.graph.initializer}
    nb = -(-K // bs)
    B = inits[n.input[1]].reshape(N, nb * bs // 2)
    q = np.stack([B & 15, B >> 4], -1).reshape(N, nb * bs)[:, :K].astype(np.int64)
    s = inits[n.input[2]].reshape(N, nb).astype(np.float32)
    if len(n.input) > 3 and n.input[3]:
        zb = inits[n.input[3]].reshape(N, -1)
        z = np.stack([zb & 15, zb >> 4], -1).reshape(N, -1)[:, :nb].astype(np.int64)
    else:
        z = np.full((N, nb), 8, np.int64)
    bias = inits[n.input[5]] if len(n.input) > 5 and n.input[5] else None
    return q, z, s, K, N, bs, bias


def int8_numpy(a, m_onnx):
    """The int8-activation product (src/ref/wo_int8.c's definition) of a
    one-node accuracy_level 4 model, written here from that definition with
    numpy float32 operations: per row and block sa = amax / 127, inv = 1 /
    sa, qa = rint(a * inv), d = sum qa * (q - z) exactly, y = y + d * (sa
    * s) in block order, then + bias."""
    q, z, s, K, N, bs, bias = unpack4(m_onnx)
    nb = -(-K // bs)
    rows = a.reshape(-1, K)
    y = np.zeros((rows.shape[0], N), np.float32)
    for j in range(nb):
        blk = rows[:, j * bs:(j + 1) * bs]
        amax = np.abs(blk).max(1)
        sa = (amax / np.float32(127)).astype(np.float32)
        inv = np.where(sa == 0, np.float32(0), np.float32(1) / np.where(sa == 0, 1, sa)).astype(np.float32)
        qa = np.rint(blk * inv[:, None]).astype(np.int64)
        d = qa @ (q[:, j * bs:(j + 1) * bs] - z[:, j:j + 1]).T
        y = (y + d.astype(np.float32) * (sa[:, None] * s[None, :, j])).astype(np.float32)
    if bias is not None:
        y = (y + bias).astype(np.float32)
    return y.reshape(list(a.shape[:-1]) + [N])


def int8():
    """accuracy_level 4 (int8 activations, ONNX Runtime's meaning): the
    interpreter runs the arithmetic of src/ref/wo_int8.c, equal bit for bit
    to the numpy implementation above; `octet run --jit` and the compiled
    library (report: the int8 path of octk_wogemm) equal the interpreter
    bit for bit; and both stay within 1e-5 relative (measured 1e-7..4e-7) of
    ONNX Runtime's own level-4 output, which quantizes the same way (its
    float accumulation order differs).  Synthetic models (blocks 16, 32,
    128, K not a multiple, zero points, bias, 3-D A), `octet quantize
    --format=matmulnbits --wo-compute=int8` output (and its usage errors)
    and, when ONNX Runtime's quantizer imports, its accuracy_level=4
    output."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "codegen"))
    import cgutil
    rng = np.random.default_rng(5)
    cases = [(40, 6, 16, "none", False, (3, 40)), (200, 37, 32, "packed", True, (2, 5, 200)),
             (172, 19, 128, "none", True, (9, 172)), (256, 70, 32, "packed", False, (1, 256)),
             (96, 33, 32, "none", False, (20, 96))]
    models = []
    for K, N, bs, zp, bias, a_shape in cases:
        m = mnb_model(K, N, 4, bs, zp, bias, a_shape, rng, dict(attrs=dict(accuracy_level=4)))
        models.append((f"K={K} N={N} block={bs} zp={zp}{' bias' if bias else ''} A{list(a_shape)}",
                       m, a_shape))
    try:
        from onnxruntime.quantization import matmul_nbits_quantizer as mnq
        K, N = 200, 67
        w = (rng.standard_normal((K, N)) * 0.1).astype(np.float32)
        for sym in (True, False):
            g = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["y"], name="mm")], "f",
                                  [helper.make_tensor_value_info("a", T.FLOAT, [5, K])],
                                  [helper.make_tensor_value_info("y", T.FLOAT, [5, N])],
                                  [numpy_helper.from_array(w, "w")])
            fm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
            fm.ir_version = 8
            q = mnq.MatMulNBitsQuantizer(fm, bits=4, block_size=32, is_symmetric=sym,
                                         accuracy_level=4)
            logging.disable(logging.INFO)
            q.process()
            models.append((f"ORT quantizer accuracy_level=4 {'symmetric' if sym else 'zero points'}",
                           q.model.model, (5, K)))
    except ImportError as e:
        print(f"SKIP ORT quantizer models: it does not import ({e})")
    with tempfile.TemporaryDirectory() as tmp:
        # Octet's own writer: --wo-compute=int8 records accuracy_level 4
        K, N = 200, 45
        g = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["y"], name="mm")], "f",
                              [helper.make_tensor_value_info("a", T.FLOAT, [4, K])],
                              [helper.make_tensor_value_info("y", T.FLOAT, [4, N])],
                              [numpy_helper.from_array(
                                  (rng.standard_normal((K, N)) * 0.1).astype(np.float32), "w")])
        fm = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
        fm.ir_version = 10
        fpath, qpath = os.path.join(tmp, "f.onnx"), os.path.join(tmp, "q.onnx")
        onnx.save(fm, fpath)
        for fmt, scheme in (("matmulnbits", "sym"), ("matmulnbits", "asym")):
            r = octet("quantize", fpath, "--weights-only", "--weight-format=uint4" if scheme ==
                      "asym" else "--weight-format=int4", f"--weight-scheme={scheme}",
                      "--block-size=32", f"--format={fmt}", "--wo-compute=int8", "-o", qpath)
            check(r.returncode == 0, f"octet quantize --wo-compute=int8 ({scheme}) "
                  f"{r.stderr.strip()[-200:]}")
            if r.returncode == 0:
                models.append((f"octet quantize --format=matmulnbits --wo-compute=int8 {scheme}",
                               onnx.load(qpath), (4, K)))
        for bad in (["--format=qdq"], ["--format=matmulnbits", "--weight-format=int8"]):
            out = os.path.join(tmp, "bad.onnx")
            r = octet("quantize", fpath, "--weights-only", "--block-size=32", *bad,
                      "--wo-compute=int8", "-o", out)
            check(r.returncode == 1 and "wo-compute" in r.stderr and not os.path.exists(out),
                  f"--wo-compute=int8 with {bad}: usage error, exit {r.returncode} (1), nothing "
                  f"written {r.stderr.strip()[-160:]}")
        path = os.path.join(tmp, "m.onnx")
        for i, (what, m, a_shape) in enumerate(models):
            onnx.save(m, path)
            levels = [x.i for x in m.graph.node[0].attribute if x.name == "accuracy_level"]
            check(levels == [4], f"{what}: the model says accuracy_level 4 ({levels})")
            a = (rng.standard_normal(a_shape) * 2).astype(np.float32)
            a.reshape(-1)[0] = 0.0
            want = ort_run(path, {"a": a})
            r, interp = octet_run(path, {"a": a}, tmp, False)
            if interp is None:
                check(False, f"{what}: octet run ({r.stderr.strip()[-200:]})")
                continue
            ref = int8_numpy(a, m) if m.graph.node[0].op_type == "MatMulNBits" else None
            check(np.array_equal(interp, ref), f"{what}: interpreter equals the numpy int8 "
                  f"definition bit for bit (max diff {np.abs(interp - ref).max():.2g})")
            err = np.abs(interp - want).max() / np.abs(want).max()
            check(err < 1e-5, f"{what}: interpreter within 1e-5 of ONNX Runtime level 4 "
                  f"(relative {err:.2g})")
            r, jit = octet_run(path, {"a": a}, tmp, True)
            check(jit is not None and np.array_equal(jit, interp),
                  f"{what}: --jit equals the interpreter bit for bit {r.stderr.strip()[-200:]}")
            name = f"i8_{i}"
            base = os.path.join(tmp, name)
            r = octet("compile", path, "-o", base, "--emit=so", "--report", base + ".txt")
            if r.returncode:
                check(False, f"{what}: compiles ({r.stderr.strip()[-200:]})")
                continue
            rep = open(base + ".txt").read()
            check("int8 activations" in rep, f"{what}: the report names the int8 path")
            _, outs = cgutil.run_so(base + ".so", name, [a])
            check(np.array_equal(outs[0], interp), f"{what}: compiled equals the interpreter bit "
                  f"for bit (max diff {np.abs(outs[0] - interp).max():.2g})")


def quant_rows(x):
    """Each row of x [R, n] (float32) to int8 with one scale, as
    src/ref/wo_int8.c defines it: amax / 127, rint(x * (1 / scale)), NaN or
    infinity in the row: scale NaN and codes 0."""
    bad = ~np.isfinite(x).all(1)
    amax = np.where(bad, 0, np.abs(np.where(np.isfinite(x), x, 0)).max(1)).astype(np.float32)
    sc = np.where(bad, np.float32(np.nan), amax / np.float32(127)).astype(np.float32)
    ok = ~bad & (sc != 0)
    inv = np.where(ok, np.float32(1) / np.where(ok, sc, 1), 0).astype(np.float32)
    xq = np.where(bad[:, None], 0, np.rint(np.where(bad[:, None], 0, x) * inv[:, None]))
    return sc, xq.astype(np.int64)


def rows_numpy(a, m_onnx):
    """`--int8-rows` (src/ref/wo_int8.c, second comment) from its
    definition with numpy float32 operations: the dequantized weight
    (q - z) * s, int8 per column; the activations int8 per row; the exact
    integer product; y = d * (sa * c), then + bias."""
    q, z, s, K, N, bs, bias = unpack4(m_onnx)
    blk = np.arange(K) // bs
    v = ((q - z[:, blk]).astype(np.float32) * s[:, blk]).astype(np.float32)  # [N, K]
    c, w8 = quant_rows(v)
    sa, qa = quant_rows(a.reshape(-1, K).astype(np.float32))
    d = qa @ w8.T
    with np.errstate(invalid="ignore"):
        y = (d.astype(np.float32) * (sa[:, None] * c[None, :]).astype(np.float32)).astype(np.float32)
        if bias is not None:
            y = (y + bias).astype(np.float32)
    return y.reshape(list(a.shape[:-1]) + [N])


def run_y(path, a, tmp, *extra):
    """`octet run` of a one-input model (input a) with extra options: the
    process and output y (None if it failed)."""
    return octet_run(path, {"a": a}, tmp, False, extra)


def rows():
    """--int8-rows: MatMulNBits accuracy_level 4 computed with int8 weights
    per column and int8 activations per row.  The interpreter equals the
    numpy definition above bit for bit (NaN where a row holds a NaN);
    `--jit` and libraries compiled for each kernel copy this CPU runs
    (AVX-512 VNNI, AVX2, baseline) equal the interpreter bit for bit, and
    their reports name the path.  Cases: blocks 16 to 128, K not a multiple
    of the block or of 4, N below, at and above one 64-column task, zero
    points, bias, 3-D A, 1 to 20 rows.  The option on a library is a usage
    error; on a model without level-4 nodes, or a node with K above the
    limit, it leaves the per-block arithmetic (a note says so); the
    interpreter refuses mnb_unpack's int8 MatMul rather than compute it in
    float."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "codegen"))
    import cgutil
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    targets = [("x86-64", "(scalar)", set()), ("haswell", "(AVX2)", {"avx2", "fma", "f16c"}),
               ("icelake-server", "(AVX-512 VNNI)",
                {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"})]
    for mcpu, _, need in targets:
        if not need <= flags:
            print(f"SKIP {mcpu} libraries: this CPU lacks {sorted(need - flags)}")
    rng = np.random.default_rng(11)
    cases = [(40, 6, 16, "none", False, (3, 40)), (200, 37, 32, "packed", True, (2, 5, 200)),
             (172, 19, 128, "none", True, (9, 172)), (256, 70, 32, "packed", False, (1, 256)),
             (98, 33, 32, "none", False, (20, 98)), (130, 64, 64, "packed", False, (13, 130))]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.onnx")
        for i, (K, N, bs, zp, bias, a_shape) in enumerate(cases):
            m = mnb_model(K, N, 4, bs, zp, bias, a_shape, rng, dict(attrs=dict(accuracy_level=4)))
            onnx.save(m, path)
            what = f"K={K} N={N} block={bs} zp={zp}{' bias' if bias else ''} A{list(a_shape)}"
            a = (rng.standard_normal(a_shape) * 2).astype(np.float32)
            a.reshape(-1, K)[0, 0] = 0.0
            if i == 1:
                a.reshape(-1, K)[3, 7] = np.nan  # that row's outputs are NaN
            want = rows_numpy(a, m)
            r, interp = run_y(path, a, tmp, "--int8-rows")
            if interp is None:
                check(False, f"{what}: octet run --int8-rows ({r.stderr.strip()[-200:]})")
                continue
            check(np.array_equal(interp, want, equal_nan=True),
                  f"{what}: interpreter equals the numpy definition bit for bit (max diff "
                  f"{np.nanmax(np.abs(interp - want)):.2g}; NaN rows "
                  f"{int(np.isnan(interp).any(-1).sum())})")
            _, blocks = run_y(path, a, tmp)
            q, z, s, _, _, _, bv = unpack4(m)
            blk = np.arange(K) // bs
            w = ((q - z[:, blk]) * s[:, blk].astype(np.float64)).T
            exact = np.nan_to_num(a).reshape(-1, K).astype(np.float64) @ w + (0 if bv is None else bv)
            fin = np.isfinite(interp.reshape(-1, N)).all(1)
            scale = np.abs(exact[fin]).max()
            e_rows = np.abs(interp.reshape(-1, N)[fin] - exact[fin]).max() / scale
            e_blocks = np.abs(blocks.reshape(-1, N)[fin] - exact[fin]).max() / scale
            check(e_rows < 0.03 and not np.array_equal(interp, blocks, equal_nan=True),
                  f"{what}: within 3% of the float64 product (largest error / largest |y|: "
                  f"rows {e_rows:.2g}, per-block level 4 {e_blocks:.2g}), and not the "
                  f"per-block output")
            r, jit = run_y(path, a, tmp, "--jit", "--int8-rows")
            check(jit is not None and np.array_equal(jit, interp, equal_nan=True),
                  f"{what}: --jit --int8-rows equals the interpreter bit for bit "
                  f"{r.stderr.strip()[-200:]}")
            for mcpu, word, need in targets:
                if not need <= flags:
                    continue
                name = f"rows{i}_{mcpu.replace('-', '_')}"
                base = os.path.join(tmp, name)
                r = octet("compile", path, "-o", base, "--emit=so", "--int8-rows", "--mcpu", mcpu,
                          "--report", base + ".txt")
                if r.returncode:
                    check(False, f"{what} {mcpu}: compiles ({r.stderr.strip()[-200:]})")
                    continue
                rep = open(base + ".txt").read()
                check("converted to int8 per column x int8 activations per row" in rep and
                      word in rep, f"{what} {mcpu}: the report names the int8-rows path {word}")
                _, outs = cgutil.run_so(base + ".so", name, [a])
                check(np.array_equal(outs[0], interp, equal_nan=True),
                      f"{what} {mcpu}: compiled equals the interpreter bit for bit (max diff "
                      f"{np.nanmax(np.abs(outs[0] - interp)):.2g})")
        # mnb_unpack's MatMul (the compiler's form) is refused by the interpreter,
        # which would otherwise compute it in float
        r, got = run_y(path, a, tmp, "--int8-rows", "--passes=mnb_unpack")
        check(r.returncode == 3 and got is None and "int8=rows" in r.stderr and
              "'mnb'" in r.stderr,
              f"the interpreter refuses mnb_unpack's int8 MatMul naming the node, exit "
              f"{r.returncode} (3) {r.stderr.strip()[-200:]}")
        # the option on a library, on a model without level-4 nodes, above the K limit
        r = octet("run", base + ".so", "--input", f"a={os.path.join(tmp, 'a.npy')}", "--int8-rows")
        check(r.returncode == 1 and "int8-rows" in r.stderr,
              f"--int8-rows on a library: usage error, exit {r.returncode} (1) "
              f"{r.stderr.strip()[-160:]}")
        for what, K, level in (("accuracy_level 0", 64, 0), ("K = 131104", 131104, 4)):
            m = mnb_model(K, 3, 4, 32, "none", False, (2, K), rng, dict(attrs=dict(accuracy_level=level)))
            onnx.save(m, path)
            a = rng.standard_normal((2, K)).astype(np.float32)
            _, plain = run_y(path, a, tmp)
            r, got = run_y(path, a, tmp, "--int8-rows")
            check(got is not None and plain is not None and np.array_equal(got, plain) and
                  "int8-rows" in r.stderr,
                  f"{what}: --int8-rows leaves the node as it was, with a note "
                  f"({r.stderr.strip()[-200:]})")


{"synthetic": synthetic, "anchors": anchors, "ortquant": ortquant, "int8": int8,
 "rows": rows}[sys.argv[1]]()
print(f"{len(failures)} failed" if failures else "all checks passed")
sys.exit(1 if failures else 0)
