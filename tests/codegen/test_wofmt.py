"""Weight-only block formats compiled onto octk_wofmt (lower_wofmt.c): the
weight stays in its code width in the library.

Mode `synthetic`: a float model x -> MatMul(x, W [K=100, N=37]) (K not a
multiple of any block: a short last block; N odd: a partial panel) is
quantized by `octet quantize --weights-only` to NVFP4, MXFP4, Q4_K, Q6_K,
Q8_0, INT8 blocks of 32 (symmetric and asymmetric: UINT8 with zero points)
and INT2 blocks of 16 (symmetric and asymmetric); blocked DequantizeLinear
graphs written here add UINT2 with zero points, INT4 in blocks of 48 (a
size the INT4 kernel does not take) and INT4 under a two-level
(DequantizeLinear) scale.  Each is compiled for AVX2 (--mcpu=haswell) and
AVX-512 (--mcpu=icelake-server; skipped with a message where this CPU
cannot run it) and for baseline x86-64 (--mcpu=x86-64) with x of 1 row,
and for the widest of these with 3 (3-D), 8 and 11 rows (a second row
group), and the outputs compared with
the reference interpreter (`octet run`) within 1e-5 relative to the
output's magnitude.  The compile report must name octk_wofmt on the
MatMul, and the library must be smaller than the float weight (the 4-bit
and 2-bit formats: less than 1.2 bytes per weight beyond a fixed 100 KB).

Mode `bad`: malformed weights (MatMulNBits with bits 3, block_size 20 or 8,
K or N inconsistent, a short packed B or zero points; a blocked
DequantizeLinear with a scale row short, a two-level scale of the wrong
count or with a block scale of 0, block_size 0 with blocked scales, a zero
point of another type):
`octet compile` exits 2 with a diagnostic naming the node and writes
nothing.

Mode `stories` (../shared; skipped without it): stories260k decode
(1 row) and prefill (64 rows) quantized to NVFP4 and Q4_K (and MXFP4,
Q8_0, INT2 b16 decode), compiled: every MatMul weight is on octk_wofmt and
the logits equal the interpreter's within 1e-5 relative.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as T, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

failures = []
passes = []
rng = np.random.default_rng(11)
compiled = 0

# name -> quantize options
FORMATS = {
    "nvfp4": ["--weight-format", "nvfp4"],
    "mxfp4": ["--weight-format", "mxfp4"],
    "q4_k": ["--weight-format", "q4_k"],
    "q6_k": ["--weight-format", "q6_k"],
    "q8_0": ["--weight-format", "q8_0"],
    "int8_b32_sym": ["--weight-format", "int8", "--weight-scheme", "sym", "--block-size", "32"],
    "int8_b32_asym": ["--weight-format", "int8", "--weight-scheme", "asym", "--block-size",
                      "32"],
    "int2_b16_sym": ["--weight-format", "int2", "--weight-scheme", "sym", "--block-size", "16"],
    "int2_b16_asym": ["--weight-format", "int2", "--weight-scheme", "asym", "--block-size",
                      "16"],
}
NARROW = {"nvfp4", "mxfp4", "q4_k", "int2_b16_sym", "int2_b16_asym"}


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    (passes if cond else failures).append(what)


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def save(path, nodes, inits, K, N, opset, x_shape=("M", None)):
    g = helper.make_graph(nodes, "wo",
                          [helper.make_tensor_value_info("x", T.FLOAT, [None, K])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [None, N])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    onnx.save(m, path)


def float_model(path, K, N):
    w = rng.normal(0, 0.05, (K, N)).astype(np.float32)
    w[7] *= 8  # an outlier row
    w[:, 3] = 0  # a column of zeros
    save(path, [helper.make_node("MatMul", ["x", "w"], ["y"])],
         [numpy_helper.from_array(w, "w")], K, N, 21)


def dq_model(path, kind, K, N):
    """Blocked DequantizeLinear graphs written directly."""
    nodes, inits = [], []
    if kind == "uint2zp_b16":
        bs, qt, lo, hi = 16, T.UINT2, 0, 4
    else:
        bs, qt, lo, hi = 48 if kind == "int4_b48" else 32, T.INT4, -8, 8
    nb = (K + bs - 1) // bs
    inits.append(helper.make_tensor("wq", qt, [K, N], rng.integers(lo, hi, (K, N)).ravel()
                                    .tolist()))
    dq_in = ["wq", "ws"]
    if kind == "int4_2level":  # scale = DQ(uint8 codes, float16 super-scale per 4 blocks)
        inits.append(helper.make_tensor("sc", T.UINT8, [nb, N],
                                        rng.integers(1, 64, (nb, N)).ravel().tolist()))
        sup = rng.uniform(0.0005, 0.002, ((nb + 3) // 4, N)).astype(np.float16)
        inits.append(numpy_helper.from_array(sup, "sup"))
        nodes.append(helper.make_node("DequantizeLinear", ["sc", "sup"], ["ws"], axis=0,
                                      block_size=4, output_dtype=T.FLOAT))
    else:
        inits.append(numpy_helper.from_array(
            rng.uniform(0.002, 0.03, (nb, N)).astype(np.float32), "ws"))
    if kind == "uint2zp_b16":
        inits.append(helper.make_tensor("wz", qt, [nb, N], rng.integers(0, 4, (nb, N)).ravel()
                                        .tolist()))
        dq_in.append("wz")
    nodes += [helper.make_node("DequantizeLinear", dq_in, ["w"], axis=0, block_size=bs),
              helper.make_node("MatMul", ["x", "w"], ["y"])]
    save(path, nodes, inits, K, N, 25 if kind == "uint2zp_b16" else 23)


def compile_so(path, d, name, mcpu):
    base = os.path.join(d, name)
    p = subprocess.run([cgutil.OCTET, "compile", path, "-o", base, "--emit=so", "--mcpu",
                        mcpu, "--report", base + ".report"], capture_output=True, text=True)
    if p.returncode:
        return None, p.stderr.strip()[-300:], 0
    return base + ".so", open(base + ".report").read(), os.path.getsize(base + ".so")


def with_rows(path, out, M, three_d):
    """The model with x fixed to M rows (2-D [M, K] or 3-D [1, M, K])."""
    m = onnx.load(path)
    K = m.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    N = m.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    xs, ys = ([1, M, K], [1, M, N]) if three_d else ([M, K], [M, N])
    m.graph.input[0].CopyFrom(helper.make_tensor_value_info("x", T.FLOAT, xs))
    m.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", T.FLOAT, ys))
    onnx.save(m, out)
    return xs


def check_model(tag, path, d, targets, K, N, narrow):
    global compiled
    for M, three_d in ((1, False), (3, True), (8, False), (11, False)):
        fixed = os.path.join(d, "fixed.onnx")
        xs = with_rows(path, fixed, M, three_d)
        x = rng.normal(0, 1, xs).astype(np.float32)
        want = list(cgutil.run_ref(fixed, [("x", x)]).values())[0]
        # every target for one row; the other row counts on the widest
        for mcpu, isa in targets if M == 1 else targets[:1]:
            t = "%s M=%d %s-D %s" % (tag, M, 3 if three_d else 2, isa)
            # a new library name each time: ctypes keeps a loaded path
            compiled += 1
            name = "wf%d_%s" % (compiled, isa.replace("-", ""))
            so, rep, size = compile_so(fixed, d, name, mcpu)
            if so is None:
                check(False, "%s: compiles (%s)" % (t, rep))
                continue
            _, outs = cgutil.run_so(so, name, [x])
            err = float(np.max(np.abs(outs[0] - want)))
            big = max(1.0, float(np.max(np.abs(want))))
            check(err <= 1e-5 * big, "%s: matches the interpreter (max error %.3g, scale %.3g)"
                  % (t, err, big))
            mm = [l for l in rep.splitlines() if "\tMatMul\t" in l]
            check(len(mm) == 1 and "octk_wofmt" in mm[0],
                  "%s: the MatMul is on octk_wofmt (%s)" % (t, mm[0][-120:] if mm else rep[-200:]))
            if M == 1 and not three_d:
                limit = 100000 + (1.2 if narrow else 2.5) * K * N
                check(size < limit, "%s: the library holds the packed weights (%d bytes for "
                      "%d weights, limit %d)" % (t, size, K * N, limit))


def targets_of():
    flags = cpu_flags()
    out = []
    for mcpu, isa, need in (("icelake-server", "AVX-512",
                             {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}),
                            ("haswell", "AVX2", {"avx2", "fma", "f16c"}),
                            ("x86-64", "generic", set())):
        if need <= flags:
            out.append((mcpu, isa))
        else:
            print("SKIP %s (%s) cases: this CPU lacks %s" % (mcpu, isa, sorted(need - flags)))
    return out


def synthetic():
    targets = targets_of()
    K, N = 300, 37
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "float.onnx")
        float_model(src, K, N)
        for name, opts in FORMATS.items():
            q = os.path.join(d, name + ".onnx")
            p = subprocess.run([cgutil.OCTET, "quantize", src, "--weights-only", *opts,
                                "-o", q], capture_output=True, text=True)
            check(p.returncode == 0, "%s: quantizes (%s)" % (name, p.stderr.strip()[-200:]))
            if p.returncode == 0:
                check_model(name, q, d, targets, K, N, name in NARROW)
        for kind in ("uint2zp_b16", "int4_b48", "int4_2level"):
            path = os.path.join(d, kind + ".onnx")
            dq_model(path, kind, K, N)
            check_model(kind, path, d, targets, K, N, True)
    print("%d passed, %d failed" % (len(passes), len(failures)))
    sys.exit(1 if failures else 0)


def stories():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testlib"))
    from shared_data import need
    shared = need("models/stories260k/prefill_s64.onnx", "models/stories260k/decode_p128.onnx")
    feeds = {
        "prefill_s64": [("input_ids", (np.arange(64, dtype=np.int64) * 37 % 512).reshape(1, 64))],
        "decode_p128": [("input_ids", np.array([[17]], np.int64)),
                        ("position_ids", np.array([[128]], np.int64)),
                        ("attention_mask", np.ones((1, 129), np.int64))],
    }
    formats = {"decode_p128": ["nvfp4", "q4_k", "mxfp4", "q8_0", "int2_b16_sym"],
               "prefill_s64": ["nvfp4", "q4_k"]}
    with tempfile.TemporaryDirectory() as d:
        for mname, fixed in feeds.items():
            src = os.path.join(shared, "models/stories260k/%s.onnx" % mname)
            m = onnx.load(src)
            named = list(fixed)
            for inp in m.graph.input[len(fixed):]:  # the past key/value caches
                shape = [x.dim_value for x in inp.type.tensor_type.shape.dim]
                named.append((inp.name, rng.normal(0, 1, shape).astype(np.float32)))
            for fmt in formats[mname]:
                tag = "stories260k %s %s" % (mname, fmt)
                q = os.path.join(d, "%s_%s.onnx" % (mname, fmt))
                p = subprocess.run([cgutil.OCTET, "quantize", src, "--weights-only",
                                    *FORMATS[fmt], "-o", q], capture_output=True, text=True)
                check(p.returncode == 0, "%s: quantizes (%s)" % (tag, p.stderr.strip()[-200:]))
                if p.returncode:
                    continue
                want = cgutil.run_ref(q, named)
                name = "st_%s_%s" % (mname, fmt)
                base = os.path.join(d, name)
                p = subprocess.run([cgutil.OCTET, "compile", q, "-o", base, "--emit=so",
                                    "--report", base + ".txt"], capture_output=True, text=True)
                check(p.returncode == 0, "%s: compiles (%s)" % (tag, p.stderr.strip()[-200:]))
                if p.returncode:
                    continue
                rep = open(base + ".txt").read().splitlines()
                mm = [l for l in rep if "\tMatMul\t" in l]
                wo = [l for l in mm if "octk_wofmt" in l]
                check(len(wo) >= 35, "%s: %d of the %d MatMul nodes in the report are on "
                      "octk_wofmt (every weight: 5 layers x 7)" % (tag, len(wo), len(mm)))
                _, outs = cgutil.run_so(base + ".so", name, [a for _, a in named])
                got, ref = outs[0], want["logits"]
                err = float(np.max(np.abs(got - ref)))
                big = float(np.max(np.abs(ref)))
                check(err <= 1e-5 * big, "%s: compiled logits equal the interpreter's (max "
                      "error %.3g, scale %.3g)" % (tag, err, big))
    print("%d passed, %d failed" % (len(passes), len(failures)))
    sys.exit(1 if failures else 0)


def mnb_model(path, K=40, N=6, bits=4, bs=16, attrs=None, short=None):
    """A MatMulNBits model (packed zero points); attrs override the
    attributes, short names a tensor written one element short."""
    nb = (K + bs - 1) // bs
    t = {"B": rng.integers(0, 256, (N, nb, bs * bits // 8), dtype=np.uint8),
         "s": rng.random(N * nb).astype(np.float32),
         "z": rng.integers(0, 256, N * ((nb * bits + 7) // 8), dtype=np.uint8)}
    if short:
        t[short] = t[short].reshape(-1)[:-1]
    a = dict(K=K, N=N, bits=bits, block_size=bs)
    a.update(attrs or {})
    node = helper.make_node("MatMulNBits", ["a", "B", "s", "z"], ["y"], name="mnb",
                            domain="com.microsoft", **a)
    g = helper.make_graph([node], "mnb", [helper.make_tensor_value_info("a", T.FLOAT, [3, K])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [3, N])],
                          [numpy_helper.from_array(v, k) for k, v in t.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 10
    onnx.save(m, path)


def bad_dq_model(path, kind):
    """A blocked DequantizeLinear the kernel would take, made inconsistent:
    scales of the wrong row count, a two-level scale of the wrong count, a
    block size of 0 with blocked scales, a zero point of another type."""
    K, N, bs = 100, 8, 16
    nb = (K + bs - 1) // bs
    inits = [helper.make_tensor("wq", T.FLOAT4E2M1 if kind == "fp4_scale_rows" else T.INT2,
                                [K, N], rng.integers(0, 2, (K, N)).ravel().tolist())]
    nodes, dq_in, attrs = [], ["wq", "ws"], dict(axis=0, block_size=bs)
    if kind == "fp4_scale_rows":
        inits.append(numpy_helper.from_array(np.full((nb - 1, N), 0.1, np.float32), "ws"))
    elif kind in ("two_level_count", "two_level_zero"):
        codes = [3] * (nb * N)
        if kind == "two_level_zero":  # a block scale of 0: DequantizeLinear refuses it
            codes[5] = 0
        inits.append(helper.make_tensor("sc", T.UINT8, [nb, N], codes))
        sup_rows = 1 if kind == "two_level_count" else (nb + 3) // 4
        inits.append(numpy_helper.from_array(np.full((sup_rows, N), 0.01, np.float32), "sup"))
        nodes.append(helper.make_node("DequantizeLinear", ["sc", "sup"], ["ws"], axis=0,
                                      block_size=4, output_dtype=T.FLOAT))
    else:
        inits.append(numpy_helper.from_array(np.full((nb, N), 0.1, np.float32), "ws"))
        if kind == "block_size_0":
            attrs = dict(axis=0, block_size=0)
        else:
            inits.append(helper.make_tensor("wz", T.UINT8, [nb, N], [1] * (nb * N)))
            dq_in.append("wz")
    nodes += [helper.make_node("DequantizeLinear", dq_in, ["w"], name="dq", **attrs),
              helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    save(path, nodes, inits, K, N, 25)


def bad():
    """Malformed weights: `octet compile` exits 2 with a diagnostic naming
    the node and writes nothing."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bad.onnx")
        cases = [("MatMulNBits bits 3", lambda: mnb_model(path, attrs=dict(bits=3)), "mnb"),
                 ("MatMulNBits block_size 20", lambda: mnb_model(path, attrs=dict(block_size=20)),
                  "mnb"),
                 ("MatMulNBits block_size 8", lambda: mnb_model(path, attrs=dict(block_size=8)),
                  "mnb"),
                 ("MatMulNBits K=48 (not A's 40)", lambda: mnb_model(path, attrs=dict(K=48)),
                  "mnb"),
                 ("MatMulNBits N=7 (not B's 6)", lambda: mnb_model(path, attrs=dict(N=7)), "mnb"),
                 ("MatMulNBits short packed B", lambda: mnb_model(path, short="B"), "mnb"),
                 ("MatMulNBits 2 bits, short B", lambda: mnb_model(path, bits=2, short="B"),
                  "mnb"),
                 ("MatMulNBits 8 bits, short zero points",
                  lambda: mnb_model(path, bits=8, short="z"), "mnb"),
                 ("FP4 DequantizeLinear, a scale row short",
                  lambda: bad_dq_model(path, "fp4_scale_rows"), "dq"),
                 ("two-level scale of the wrong count",
                  lambda: bad_dq_model(path, "two_level_count"), "DequantizeLinear"),
                 ("two-level scale with a block scale of 0",
                  lambda: bad_dq_model(path, "two_level_zero"), "dq"),
                 ("INT2 DequantizeLinear block_size 0 with blocked scales",
                  lambda: bad_dq_model(path, "block_size_0"), "dq"),
                 ("INT2 DequantizeLinear, a UINT8 zero point",
                  lambda: bad_dq_model(path, "zp_type"), "dq")]
        for why, make, word in cases:
            make()
            base = os.path.join(d, "out")
            r = subprocess.run([cgutil.OCTET, "compile", path, "-o", base, "--emit=so"],
                               capture_output=True, text=True)
            written = [f for f in os.listdir(d) if f.startswith("out")]
            check(r.returncode == 2 and word in r.stderr and not written,
                  "%s: exit %d (2), names '%s', writes nothing %s (%s)"
                  % (why, r.returncode, word, written, r.stderr.strip()[:160]))
    print("%d passed, %d failed" % (len(passes), len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    {"stories": stories, "bad": bad}.get(sys.argv[1] if sys.argv[1:] else "", synthetic)()
