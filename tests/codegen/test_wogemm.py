"""Weight-only INT4 MatMul compiled onto octk_wogemm (lower_wogemm.c).

One-node graphs x -> MatMul(x, DequantizeLinear(w4, scale, zero, axis 0,
block_size)) are compiled for AVX2 (--mcpu=haswell) and for AVX-512
(--mcpu=icelake-server; skipped with a message where this CPU cannot run
it), and the outputs compared with the reference interpreter (`octet run`)
within 1e-5 relative to the output's magnitude, for M in {1, 3, 8, 17,
128} (GEMV and widen + float GEMM), K not a multiple of the block (odd,
too), N odd, INT4 without zero points, INT4 with zero points and UINT4
with zero points, 2-D and 3-D x.  The compile report must name
octk_wogemm and the path of the ISA (GEMV in registers up to 8 rows); the
library must hold the weights in about half a byte each, not four bytes.
A blocked UINT8 DequantizeLinear (not taken by the kernel) still compiles
through the general path and matches.

Mode `stories` (../shared; skipped without it): stories260k quantized by
`octet quantize --weights-only` to INT4 (symmetric) and UINT4 (zero
points) in blocks of 32, prefill (64 rows: the widening path) and decode
(1 row: the GEMV), compiled: every MatMul weight is on octk_wogemm and the
logits equal the interpreter's within 1e-5 relative.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as T, helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

failures = []
passes = []
rng = np.random.default_rng(7)


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    (passes if cond else failures).append(what)


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def model(path, x_shape, K, N, bs, kind, qtype=None):
    nb = (K + bs - 1) // bs
    if kind == "int4":
        qt, codes, zero = T.INT4, rng.integers(-8, 8, (K, N)), None
    elif kind == "int4zp":
        qt, codes, zero = T.INT4, rng.integers(-8, 8, (K, N)), rng.integers(-3, 4, (nb, N))
    elif kind == "uint4zp":
        qt, codes, zero = T.UINT4, rng.integers(0, 16, (K, N)), rng.integers(0, 16, (nb, N))
    else:  # uint8 blocked: the general path
        qt, codes, zero = T.UINT8, rng.integers(0, 256, (K, N)), rng.integers(100, 150, (nb, N))
    scale = rng.uniform(0.002, 0.03, (nb, N)).astype(np.float32)
    inits = [helper.make_tensor("wq", qt, [K, N], codes.ravel().tolist()),
             helper.make_tensor("ws", T.FLOAT, [nb, N], scale.ravel().tolist())]
    dq_in = ["wq", "ws"]
    if zero is not None:
        inits.append(helper.make_tensor("wz", qt, [nb, N], zero.ravel().tolist()))
        dq_in.append("wz")
    nodes = [helper.make_node("DequantizeLinear", dq_in, ["w"], axis=0, block_size=bs),
             helper.make_node("MatMul", ["x", "w"], ["y"])]
    y_shape = list(x_shape[:-1]) + [N]
    g = helper.make_graph(nodes, "wo", [helper.make_tensor_value_info("x", T.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", T.FLOAT, y_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    onnx.save(m, path)


def compile_run(path, d, name, mcpu, x):
    base = os.path.join(d, name)
    p = subprocess.run([cgutil.OCTET, "compile", path, "-o", base, "--emit=so", "--mcpu",
                        mcpu, "--report", base + ".report"], capture_output=True, text=True)
    if p.returncode:
        return p.stderr.strip()[-300:], None, None
    _, outs = cgutil.run_so(base + ".so", name, [x])
    return open(base + ".report").read(), outs[0], os.path.getsize(base + ".so")


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
    with tempfile.TemporaryDirectory() as d:
        for mname, fixed in feeds.items():
            src = os.path.join(shared, "models/stories260k/%s.onnx" % mname)
            m = onnx.load(src)
            named = list(fixed)
            for inp in m.graph.input[len(fixed):]:  # the past key/value caches
                shape = [x.dim_value for x in inp.type.tensor_type.shape.dim]
                named.append((inp.name, rng.normal(0, 1, shape).astype(np.float32)))
            for fmt, scheme in (("int4", "sym"), ("uint4", "asym")):
                tag = "stories260k %s %s %s b32" % (mname, fmt, scheme)
                q = os.path.join(d, "%s_%s.onnx" % (mname, fmt))
                p = subprocess.run([cgutil.OCTET, "quantize", src, "--weights-only",
                                    "--weight-format", fmt, "--weight-scheme", scheme,
                                    "--block-size", "32", "-o", q], capture_output=True, text=True)
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
                wo = [l for l in mm if "octk_wogemm" in l]
                check(len(wo) >= 35, "%s: %d of the %d MatMul nodes in the report are on "
                      "octk_wogemm (every weight: 5 layers x 7)" % (tag, len(wo), len(mm)))
                _, outs = cgutil.run_so(base + ".so", name, [a for _, a in named])
                got, ref = outs[0], want["logits"]
                err = float(np.max(np.abs(got - ref)))
                big = float(np.max(np.abs(ref)))
                check(err <= 1e-5 * big, "%s: compiled logits equal the interpreter's (max "
                      "error %.3g, scale %.3g)" % (tag, err, big))
    print("%d passed, %d failed" % (len(passes), len(failures)))
    sys.exit(1 if failures else 0)


def main():
    flags = cpu_flags()
    targets = [("haswell", "AVX2", {"avx2", "fma", "f16c"}),
               ("icelake-server", "AVX-512", {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"})]
    runnable = {}
    for mcpu, isa, need in targets:
        runnable[mcpu] = need <= flags
        if not runnable[mcpu]:
            print("SKIP %s (%s) cases: this CPU lacks %s" % (mcpu, isa, sorted(need - flags)))
    cases = [(1, 100, 37, 32, "int4"), (3, 100, 37, 32, "int4zp"), (8, 77, 37, 16, "uint4zp"),
             (17, 100, 37, 64, "int4"), (128, 200, 37, 128, "uint4zp"),
             (1, 77, 37, 16, "int4zp"), (3, 200, 5, 128, "int4"), (17, 77, 9, 16, "int4zp"),
             (128, 100, 37, 32, "int4")]
    with tempfile.TemporaryDirectory() as d:
        for i, (M, K, N, bs, kind) in enumerate(cases):
            for three_d in (False, True):
                x_shape = [1, M, K] if three_d else [M, K]
                path = os.path.join(d, "m%d_%d.onnx" % (i, three_d))
                model(path, x_shape, K, N, bs, kind)
                x = rng.normal(0, 1, x_shape).astype(np.float32)
                want = list(cgutil.run_ref(path, [("x", x)]).values())[0]
                for mcpu, isa, _ in targets:
                    if not runnable[mcpu]:
                        continue
                    tag = "M=%d K=%d N=%d bs=%d %s %s-D, %s" % (M, K, N, bs, kind,
                                                                3 if three_d else 2, isa)
                    rep, y, size = compile_run(path, d, "wo%d_%d_%s" % (i, three_d, isa[-3:]
                                                                         .replace("-", "")),
                                               mcpu, x)
                    if y is None:
                        check(False, "%s: compiles (%s)" % (tag, rep))
                        continue
                    err = float(np.max(np.abs(y - want)))
                    big = max(1.0, float(np.max(np.abs(want))))
                    check(err <= 1e-5 * big, "%s: matches the interpreter (max error %.3g, "
                          "scale %.3g)" % (tag, err, big))
                    path_word = ("GEMV unpacking nibbles in registers (%s)" % isa if M <= 8
                                 else "widened per 64 columns")
                    check("octk_wogemm" in rep and path_word in rep,
                          "%s: report names octk_wogemm and '%s' (%s)" % (tag, path_word,
                                                                         rep.strip().splitlines()[-1][-160:]))
                    if i == 0 and not three_d:
                        check(size < 100000 + K * N, "%s: the library holds the 4-bit weights "
                              "(%d bytes for %d weights)" % (tag, size, K * N))
        # a form the kernel does not take keeps the general path
        path = os.path.join(d, "u8.onnx")
        model(path, [3, 100], 100, 37, 32, "uint8")
        x = rng.normal(0, 1, (3, 100)).astype(np.float32)
        want = list(cgutil.run_ref(path, [("x", x)]).values())[0]
        rep, y, _ = compile_run(path, d, "u8", "haswell", x)
        ok = y is not None and float(np.max(np.abs(y - want))) <= 1e-5 * max(
            1.0, float(np.max(np.abs(want))))
        check(ok and "octk_wogemm" not in rep, "blocked UINT8 DequantizeLinear: general "
              "path, matches the interpreter")
    print("%d passed, %d failed" % (len(passes), len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    stories() if sys.argv[1:] == ["stories"] else main()
