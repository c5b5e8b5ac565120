"""Weight-only INT4 MatMul: Octet's compiled octk_wogemm against ONNX
Runtime's MatMulNBits (accuracy_level 0: float activations; 4: int8
activations), one thread each, in one run.

Each case is one graph of MatMulNBits nodes (bits 4, blocks of 32, no zero
points, random codes and scales, fixed seed), the same file for both:
  decode  [1,4096] x [4096,4096]            (8 MiB of codes + 2 MiB of scales)
  decode  [1,4096] x [4096,14336]
  decode  [1,4096] through a stack of 8 layers [4096,4096] (80 MiB: more
          than the 32 MiB L3 here, so the weights come from DRAM)
  prefill [128,4096] x [4096,4096]
Octet compiles the file (`octet compile --emit=so`, mnb_unpack puts each
node on octk_wogemm) and the library's NAME_run (no thread pool: one
thread) is called through ctypes; ONNX Runtime runs it with
intra_op_num_threads=1 (the accuracy_level attribute set to 0 or 4).
Octet also compiles the level-4 file with `--int8-rows` (the 4-bit blocks
converted to int8 per column, activations quantized per row: another
rounding than ONNX Runtime's), compared with ONNX Runtime's level 4, its
fastest MatMulNBits; its weight bytes are the int8 weights and the column
scales.
Timing: rounds alternate the parties, each round about 50 ms of calls of
one party, each call timed alone in CPU time of the calling thread (every
party computes on it: checked, the run stops if another thread of the
process used more than 5% of the CPU time); the figure is the median of all
calls of a party.  On a machine shared with many jobs, wall time would
count the scheduler slices other jobs take (nearly every call of 30 ms or
more loses some); CPU time does not, though the caches and memory stay
shared.

Weight-read bandwidth = bytes of 4-bit codes and float scales / time (the
same bytes for Octet and ONNX Runtime).  The reference bandwidth is
measured here too, on one thread, for a buffer of the same size: a C loop
(READER below, built with `cc -O2 -mavx2`) that XORs the buffer into four
AVX2 accumulators, 128 bytes per iteration, and nothing else, median of
rounds.  A weight
set that fits in L3 is read from L3 in steady state by every party, the
buffer included.

Before timing, each party's output is compared with a float64 numpy
product of the dequantized weights (printed as relative error).

usage: bench/wo_bench.py [--quick] [--only NAME] [--rounds R] [--write-docs]
(--write-docs replaces this CPU's part of its docs/benchmarks.md section)
(OCTET: the octet binary, default build/octet)
"""
import argparse
import ctypes
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper, numpy_helper

from cpuinfo import cpu_flags, cpu_name

OCTET = os.environ.get("OCTET", os.path.join(os.path.dirname(__file__), "..", "build", "octet"))
BS = 32


def mnb_layer(rng, K, N, name, x, y):
    nb = K // BS
    q = rng.integers(0, 16, (N, nb, BS), dtype=np.uint8)
    B = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)
    s = (rng.random((N, nb)) * 0.02 + 0.005).astype(np.float32)
    w = ((q.reshape(N, K).astype(np.float32) - 8) * np.repeat(s, BS, axis=1)).T  # [K, N]
    inits = [numpy_helper.from_array(B, name + "_B"), numpy_helper.from_array(s.ravel(), name + "_s")]
    node = helper.make_node("MatMulNBits", [x, name + "_B", name + "_s"], [y], name=name,
                            domain="com.microsoft", K=K, N=N, bits=4, block_size=BS,
                            accuracy_level=0)
    return node, inits, w, B.nbytes + s.nbytes


def make_model(path, M, dims, rng):
    nodes, inits, ws, nbytes = [], [], [], 0
    for i in range(len(dims) - 1):
        x = "x" if i == 0 else "h%d" % i
        y = "y" if i == len(dims) - 2 else "h%d" % (i + 1)
        n, it, w, b = mnb_layer(rng, dims[i], dims[i + 1], "l%d" % i, x, y)
        nodes.append(n)
        inits += it
        ws.append(w)
        nbytes += b
    g = helper.make_graph(nodes, "wo", [helper.make_tensor_value_info("x", T.FLOAT, [M, dims[0]])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [M, dims[-1]])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 10
    onnx.save(m, path)
    return ws, nbytes


def with_level(path, level, tmp):
    """The model with every node's accuracy_level set to level."""
    m = onnx.load(path)
    for n in m.graph.node:
        for a in n.attribute:
            if a.name == "accuracy_level":
                a.i = level
    p = os.path.join(tmp, "l%d.onnx" % level)
    onnx.save(m, p)
    return p


def ort_session(p):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])


class Lib:
    """A compiled model called through ctypes on one thread."""

    def __init__(self, so, name, x, y_shape):
        self.lib = ctypes.CDLL(so)
        sig = json.loads(ctypes.string_at(ctypes.addressof(
            ctypes.c_char.in_dll(self.lib, name + "_signature"))).decode())
        self.x = np.ascontiguousarray(x)
        self.y = np.empty(y_shape, np.float32)
        self.scratch = np.zeros(sig["scratch_size"] + 64, np.uint8)
        addr = (self.scratch.ctypes.data + 63) // 64 * 64
        self.args = ((ctypes.c_void_p * 1)(self.x.ctypes.data),
                     (ctypes.c_void_p * 1)(self.y.ctypes.data), ctypes.c_void_p(addr))
        self.fn = getattr(self.lib, name + "_run")
        self.fn.restype = ctypes.c_int
        self.fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]

    def __call__(self):
        rc = self.fn(*self.args)
        assert rc == 0
        return self.y


READER = r"""
#include <immintrin.h>
#include <stddef.h>
unsigned long long wo_read(const void *p, size_t n)
{
    const __m256i *v = (const __m256i *)p;
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 4 <= n / 32; i += 4) {
        a = _mm256_xor_si256(a, _mm256_loadu_si256(v + i));
        b = _mm256_xor_si256(b, _mm256_loadu_si256(v + i + 1));
        c = _mm256_xor_si256(c, _mm256_loadu_si256(v + i + 2));
        d = _mm256_xor_si256(d, _mm256_loadu_si256(v + i + 3));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (unsigned long long)_mm256_extract_epi64(a, 0);
}
"""


def reader(tmp):
    src, so = os.path.join(tmp, "reader.c"), os.path.join(tmp, "reader.so")
    open(src, "w").write(READER)
    subprocess.run(["cc", "-O2", "-mavx2", "-shared", "-fPIC", src, "-o", so], check=True)
    fn = ctypes.CDLL(so).wo_read
    fn.restype = ctypes.c_ulonglong
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return fn


def calls(fn, n):
    """n calls, each timed alone in CPU time of the calling thread: on a
    machine shared with many jobs a call loses scheduler slices (a 30 ms
    prefill call nearly always does, several times), which wall time counts
    and the thread's CPU time does not.  Every party computes on the calling
    thread (Octet's NAME_run without a pool, ONNX Runtime with one intra-op
    thread); other_threads() checks it."""
    out = []
    for _ in range(n):
        t = time.thread_time()
        fn()
        out.append(time.thread_time() - t)
    return out


def other_threads(fn, n):
    """The share of the process's CPU time spent outside the calling thread
    during n calls (about 0 when the party computes on this thread)."""
    p, t = time.process_time(), time.thread_time()
    for _ in range(n):
        fn()
    p, t = time.process_time() - p, time.thread_time() - t
    return max(0.0, (p - t) / p) if p > 0 else 0.0


def burst(fn, n):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def case(tag, M, dims, rounds, tmp, rng):
    path = os.path.join(tmp, "m.onnx")
    ws, nbytes = make_model(path, M, dims, rng)
    x = rng.standard_normal((M, dims[0])).astype(np.float32)
    want = x.astype(np.float64)
    for w in ws:
        want = want @ w.astype(np.float64)
    parties, paths, compile_s = {}, {}, 0.0
    # level 0, level 4, and level 4 compiled with --int8-rows (key "rows")
    for lv, key, extra in ((0, "l0", []), (4, "l4", []), (4, "rows", ["--int8-rows"])):
        p = with_level(path, lv, tmp)
        name = "wo_%s_%s" % (re.sub(r"\W", "_", tag), key)
        base = os.path.join(tmp, name)
        t0 = time.perf_counter()
        subprocess.run([OCTET, "compile", p, "-o", base, "--emit=so", "--report",
                        base + ".txt", *extra], check=True, capture_output=True)
        compile_s += time.perf_counter() - t0
        paths[key] = sorted({l.split("\t")[3].strip() for l in open(base + ".txt")
                             if "octk_wogemm" in l})
        parties["octet_" + key] = Lib(base + ".so", name, x, (M, dims[-1]))
        if key != "rows":
            s = ort_session(p)
            parties["ort_" + key] = (lambda s=s: s.run(None, {"x": x})[0])
    errs = {k: float(np.max(np.abs(f() - want)) / np.max(np.abs(want))) for k, f in parties.items()}
    buf = np.frombuffer(rng.bytes(nbytes // 128 * 128), np.uint8)
    read = reader(tmp)
    parties["read"] = lambda: read(buf.ctypes.data, buf.nbytes)
    # warm (page faults, first-call setup), then a burst of about 50 ms per party
    for f in parties.values():
        burst(f, 3)
    per = {k: max(3, int(0.05 / max(burst(f, 3), 1e-5))) for k, f in parties.items()}
    others = {k: other_threads(f, per[k]) for k, f in parties.items()}
    bad = {k: v for k, v in others.items() if v > 0.05}
    if bad:
        sys.exit("%s: CPU time outside the calling thread %s: thread CPU time would "
                 "undercount it" % (tag, bad))
    times = {k: [] for k in parties}
    for _ in range(rounds):
        for k, f in parties.items():
            times[k] += calls(f, per[k])
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(tag=tag, M=M, dims=dims, nbytes=nbytes, med=med, errs=errs, paths=paths,
                compile_s=compile_s, others=max(others.values()))


def table(results):
    """Level 0 (float activations) and level 4 (int8 activations) side by
    side: each Octet figure against ONNX Runtime at the same level, and
    against ONNX Runtime's level 0 (its float MatMulNBits)."""
    rows = ["| case | weight bytes | level | Octet ms | ORT ms | ORT / Octet | ORT L0 / Octet "
            "| Octet GB/s | ORT GB/s | read GB/s (same size) | Octet / read | Octet GOP/s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m, b = r["med"], r["nbytes"]
        ops = 2 * r["M"] * sum(r["dims"][i] * r["dims"][i + 1] for i in range(len(r["dims"]) - 1))
        rd = b / m["read"] / 1e9
        for key, level in (("l0", "0 (float)"), ("l4", "4 (int8)"),
                           ("rows", "4, `--int8-rows`")):
            # --int8-rows reads int8 weights: its bytes are K * N plus N column scales
            o, t = m["octet_" + key], m["ort_l4" if key == "rows" else "ort_" + key]
            ob = sum((r["dims"][i] + 4) * r["dims"][i + 1] for i in range(len(r["dims"]) - 1)) \
                if key == "rows" else b
            rows.append("| %s | %.1f MiB | %s | %.3f | %.3f | %.2fx | %.2fx | %.1f | %.1f | %.1f "
                        "| %.0f%% | %.0f |" % (
                            r["tag"], ob / 2**20, level, o * 1e3,
                            t * 1e3, t / o, m["ort_l0"] / o, ob / o / 1e9, b / t / 1e9, rd,
                            100 * ob / o / 1e9 / rd, ops / o / 1e9))
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the first case only, 3 rounds")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--only", help="run the cases whose name contains this")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    rng = np.random.default_rng(1)
    cases = [("decode 1x4096x4096", 1, [4096, 4096]),
             ("decode 1x4096x14336", 1, [4096, 14336]),
             ("decode 1x4096, 8 layers 4096x4096", 1, [4096] * 9),
             ("prefill 128x4096x4096", 128, [4096, 4096])]
    if a.quick:
        cases, a.rounds = cases[:1], 3
    if a.only:
        cases = [c for c in cases if a.only in c[0]]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for tag, M, dims in cases:
            r = case(tag, M, dims, a.rounds, tmp, rng)
            results.append(r)
            print("%s: errors vs float64 %s; octet path %s; compile %.1f s; CPU outside the "
                  "calling thread <= %.1f%%" % (
                      tag, {k: "%.1e" % v for k, v in r["errs"].items()}, r["paths"],
                      r["compile_s"], 100 * r["others"]), flush=True)
    text = table(results)
    head = ("CPU: %s; 1 thread each; ONNX Runtime %s; rounds %d (median)."
            % (cpu_text(), ort.__version__, a.rounds))
    facts = run_facts(" ".join(["bench/wo_bench.py"] + sys.argv[1:]), load0)
    print(head, facts)
    print(text)
    if a.write_docs:
        write_docs(head, text, results, facts)


ISA = ("avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vbmi",
       "amx_int8")


def cpu_text():
    """This machine's model name, family and model, and ISA flags, as the tables' CPU line."""
    flags = cpu_flags()
    return "%s (%s)" % (cpu_name(), ", ".join(f for f in ISA if f in flags))


def cpu_key(text):
    """The key of a CPU's part of a section: model name, family, model and ISA flags as a slug."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def run_facts(command, load0):
    """Load averages, date, command and commit of this run (one line)."""
    root = os.path.join(os.path.dirname(__file__), "..")
    rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "-uno"],
                           capture_output=True, text=True).stdout.strip()
    return ("1-minute load average %.2f at the start, %.2f at the end (%d CPUs; above about 1 "
            "per CPU other jobs were running); %s; `%s`; octet %s%s." % (
                load0, os.getloadavg()[0], os.cpu_count() or 0,
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), command, rev,
                " with uncommitted changes" if dirty else ""))


def merge_cpu_part(body, name, about, cpu, part):
    """body with section NAME (<!-- NAME:begin ... --> ... <!-- NAME:end -->)
    holding `about` and one part per CPU between <!-- NAME_cpu:begin KEY -->
    and <!-- NAME_cpu:end KEY -->: this CPU's part replaced where it was (or
    added after the others), the other CPUs' parts kept.  A section written
    before there were parts (its figures from its "CPU: " line on) becomes
    the part of the CPU that line names."""
    begin = "<!-- %s:begin (bench/%s.py --write-docs replaces this CPU's part) -->" % (name, name)
    end = "<!-- %s:end -->" % name
    key = cpu_key(cpu)
    parts = []
    m = re.search(r"<!-- %s:begin[^>]*-->" % name, body)
    if m and end in body[m.end():]:
        e = body.index(end, m.end())
        old = body[m.end():e]
        parts = [(f.group(1), f.group(2)) for f in re.finditer(
            r"<!-- %s_cpu:begin (\S+) -->\n(.*?)\n<!-- %s_cpu:end \1 -->" % (name, name), old, re.S)]
        i = old.find("\nCPU: ")
        if not parts and i >= 0:
            legacy = old[i + 1:].strip("\n")
            named = re.match(r"CPU: ([^;]*\))", legacy)
            lcpu = named.group(1) if named else "an earlier CPU"
            parts = [(cpu_key(lcpu), "### %s\n\n%s" % (lcpu, legacy))]
        pre, post = body[:m.start()], body[e + len(end):]
    else:
        pre, post = body.rstrip("\n") + "\n\n", "\n"
    part = "### %s\n\n%s" % (cpu, part.strip("\n"))
    if any(k == key for k, _ in parts):
        parts = [(k, part if k == key else t) for k, t in parts]
    else:
        parts.append((key, part))
    cpus = "\n\n".join("<!-- %s_cpu:begin %s -->\n%s\n<!-- %s_cpu:end %s -->" % (
        name, k, t.strip("\n"), name, k) for k, t in parts)
    return "%s%s\n%s\n%s\n%s%s" % (pre, begin, about.strip("\n") + "\n", cpus, end, post)


ABOUT = """## Weight-only INT4 MatMul: octk_wogemm against ONNX Runtime's MatMulNBits

`.venv/bin/python bench/wo_bench.py --write-docs` (about 6 minutes on a loaded
machine): each case is one MatMulNBits graph (4 bits, blocks of 32, no zero
points), saved twice, with accuracy_level 0 and 4.  Octet compiles each
(`octet compile --emit=so`; mnb_unpack puts every node on `octk_wogemm`:
level 0 on the float path, GEMV unpacking nibbles in registers or chunks
widened for the float GEMM; level 4 on the int8-activation path, int8
activations per row and block and integer products (vpdpbusd with AVX-512
VNNI; vpmaddubsw summed in int16 per 32 k on AVX2), bit for bit the
interpreter's src/ref/wo_int8.c: the decode path that runs at the read
bandwidth; the float path keeps float activations, as accuracy_level 0
asks, and is bound by its arithmetic, one FMA per weight) and calls it on
one thread; ONNX Runtime runs the same files on one thread.  The parties
are interleaved round after round; the figure is the median of single
calls, each timed in CPU time of the calling thread, on which every party
computes (checked in the run: the share of the process's CPU time outside
it stays under 5%), so that scheduler slices taken by other jobs on this
shared machine do not count; caches and memory bandwidth stay shared with
them.  "ORT / Octet" compares the same level (the same arithmetic: level 4
is int8 activations in both, within 4e-7 of each other in
tests/quantize/test_matmulnbits.py int8); "ORT L0 / Octet" compares with
ONNX Runtime's float MatMulNBits.  The row "4, `--int8-rows`" is the same
level-4 file compiled with that option (the 4-bit blocks converted to int8
per column when compiling, activations quantized per row: an integer GEMM
with one float step per output, where level 4 takes one per output and
block of 32; its weight bytes are the int8 weights and column scales, and
its rounding is not ONNX Runtime's) against ONNX Runtime's level 4; parts
written before the option existed lack that row.  Relative error against a
float64 product: about 5e-7 at level 0, 5e-3 at level 4 (both parties),
printed by the run for every party.  Weight
bytes are the 4-bit codes plus the float scales, the same for both. "read"
is one thread XORing a buffer of the same size with AVX2 (nothing else),
measured in the same run: for the weights that fit in the 32 MiB L3 it is
an L3 figure, for the 80 MiB stack a DRAM one.  GOP/s counts 2 * M * K * N.
The machines are shared (2 cores, several jobs): absolute times move from
run to run, the ratios of one run are the figures.  One part per CPU: a
rerun replaces the part of the CPU it runs on and keeps the others.
"""


def write_docs(head, text, results, facts):
    doc = os.path.join(os.path.dirname(__file__), "..", "docs", "benchmarks.md")
    paths = "; ".join("%s: level 0 %s, level 4 %s, --int8-rows %s" % (
        r["tag"], ", ".join(r["paths"]["l0"]), ", ".join(r["paths"]["l4"]),
        ", ".join(r["paths"]["rows"])) for r in results)
    part = "%s %s\n\n%s\n\nOctet paths: %s." % (head, facts, text, paths)
    body = merge_cpu_part(open(doc).read(), "wo_bench", ABOUT, cpu_text(), part)
    open(doc, "w").write(body)


if __name__ == "__main__":
    sys.exit(main())
