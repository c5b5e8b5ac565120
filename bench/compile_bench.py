"""Compile benchmark: Octet-compiled models against ONNX Runtime, FP32 and INT8.

For every model (synthetic MatMul and MLP graphs built here with fixed-seed
weights, and the real models under ../shared/models) the script makes an
INT8 QDQ model with `octet quantize`, compiles the FP32 and the INT8 model
with `octet compile --emit=so -O3`, and times four things interleaved, for
each thread count, over several rounds: octet-int8 and octet-fp32 (`octet
run X.so --repeat R --time --threads T`, the median it prints) and ONNX
Runtime on the same FP32 and INT8 QDQ models (default graph optimization
level, which fuses QDQ into integer kernels; intra_op threads T, inter_op 1,
sequential), each as the median of a burst of R runs (R chosen so a burst
takes about 0.2-0.3 s).  The figure reported is the median over rounds.

It also checks each octet output against ONNX Runtime's on the same model:
FP32 by the largest difference relative to the largest |output| (limit
1e-3), INT8 by the largest difference in units of the output's quantization
scale (when the output comes out of a DequantizeLinear) or relative, and by
top-1 agreement for classifiers.  A mismatch is marked in the table.

Then it prints geometric means of the time ratios at 1 thread, GOP/s of the
MatMul cases, the squeezenet 2-over-1-thread speedup and the squeezenet INT8
-O3 compile time (median of 3), and the targets of the performance issue,
each met or not met.  --write-docs writes all of it to docs/benchmarks.md as
the section of this CPU (model name, CPU family and model, ISA flags), replacing that CPU's
previous section and keeping the other CPUs' sections and the other marked
(<!-- NAME:begin --> ... <!-- NAME:end -->) sections.

If `octet run` does not know --threads, octet runs on 1 thread and rows with
more threads are marked.

usage: bench/compile_bench.py [--quick] [--models a,b] [--threads 1,2]
                              [--rounds N] [--octet PATH] [--write-docs]
exit status: 0 all good, 1 a step failed for some model (listed), 3 an
octet output does not match ONNX Runtime's (listed).
"""
import argparse
import datetime
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from cpuinfo import cpu_flags, cpu_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("OCTET_SHARED", os.path.join(ROOT, "..", "shared"))
MODELS_DIR = os.path.join(SHARED, "models")
DATA_DIR = os.path.join(SHARED, "data")

VARIANTS = ("octet-int8", "octet-fp32", "ort-int8", "ort-fp32")
ALL_MODELS = ("matmul-64", "matmul-256", "matmul-1024", "mlp-b1", "mlp-b64",
              "mnist-8", "squeezenet1.1", "ultraface-rfb320", "ppocr-cls")
BGR_MEAN = np.array([104, 117, 123], np.float32).reshape(1, 3, 1, 1)

# Targets of the performance issue.
TARGET_GEMM_GOPS = 130.0      # INT8 GEMM GOP/s per core at 1024^3
TARGET_VS_ORT_INT8 = 0.8      # geomean octet-int8 / ort-int8, 1 thread
TARGET_VS_ORT_FP32 = 0.5      # geomean octet-int8 / ort-fp32, 1 thread
TARGET_FP32_VS_ORT_FP32 = 1.0 # geomean octet-fp32 / ort-fp32, 1 thread
TARGET_SQ_SPEEDUP = 1.7       # squeezenet octet-int8, 2 threads over 1
TARGET_SQ_COMPILE_S = 3.0     # squeezenet INT8 -O3 compile, seconds
FP32_REL_LIMIT = 1e-3
INT8_LSB_LIMIT = 8.0          # loose: requantization rounding may differ
INT8_REL_LIMIT = 0.1          # for float outputs after the last DQ


class StepError(Exception):
    """A step (quantize, compile, run, ...) failed for one model."""


class Model:
    """One benchmark model: FP32 ONNX file, timing input, calibration data."""

    def __init__(self, name, kind, path, feed, calib, classifier,
                 input_shape=None, gemm_m=None):
        self.name = name
        self.kind = kind              # "synthetic" or "real"
        self.path = path
        self.feed = feed              # {input name: ndarray}, the timing input
        self.calib = calib            # ndarray, batch-1 samples along axis 0
        self.classifier = classifier  # top-1 agreement is meaningful
        self.input_shape = input_shape  # "NAME=DIMS" for dynamic dims
        self.gemm_m = gemm_m          # M of an [M,1024]x[1024,1024] MatMul


# ---- models -------------------------------------------------------------------

def save_model(graph, path):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def make_matmul(work, m_rows):
    rng = np.random.default_rng(1000 + m_rows)
    w = (rng.standard_normal((1024, 1024)) / 32).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], f"matmul{m_rows}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m_rows, 1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m_rows, 1024])],
        [numpy_helper.from_array(w, "W")])
    path = os.path.join(work, f"matmul{m_rows}.onnx")
    save_model(g, path)
    n_calib = max(8, min(32, 8192 // m_rows))
    calib = rng.standard_normal((n_calib, m_rows, 1024)).astype(np.float32)
    feed = {"x": rng.standard_normal((m_rows, 1024)).astype(np.float32)}
    return Model(f"matmul-{m_rows}", "synthetic", path, feed, calib, False,
                 gemm_m=m_rows)


def make_mlp(work, batch):
    rng = np.random.default_rng(2000)
    dims = [784, 512, 512, 10]
    inits, nodes = [], []
    cur = "x"
    for i in range(3):
        w = (rng.standard_normal((dims[i], dims[i + 1])) *
             math.sqrt(2.0 / dims[i])).astype(np.float32)
        b = (rng.standard_normal(dims[i + 1]) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        out = "y" if i == 2 else f"h{i}"
        gemm_out = out if i == 2 else f"g{i}"
        nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"B{i}"], [gemm_out]))
        if i < 2:
            nodes.append(helper.make_node("Relu", [gemm_out], [out]))
        cur = out
    g = helper.make_graph(
        nodes, f"mlp_b{batch}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])], inits)
    path = os.path.join(work, f"mlp_b{batch}.onnx")
    save_model(g, path)
    data = np.random.default_rng(2100 + batch)
    calib = data.random((32 if batch == 1 else 16, batch, 784), dtype=np.float32)
    feed = {"x": data.random((batch, 784), dtype=np.float32)}
    return Model(f"mlp-b{batch}", "synthetic", path, feed, calib, True)


def load_pb(path):
    return numpy_helper.to_array(onnx.load_tensor(path))


def photos_rgb():
    """The ImageNet calibration crops back as RGB pixels 0..255, [34,3,224,224]."""
    bgr = np.load(os.path.join(DATA_DIR, "imagenet-photos", "calib_f32.npy")) + BGR_MEAN
    return np.ascontiguousarray(bgr[:, ::-1])


def make_real(name):
    d = os.path.join(MODELS_DIR, name)
    path = os.path.join(d, "model.onnx")
    if name == "mnist-8":
        feed = {"Input3": load_pb(os.path.join(d, "test_data_set_0", "input_0.pb"))}
        calib = np.load(os.path.join(DATA_DIR, "mnist", "calib_1000_f32.npy"))[:32]
        return Model(name, "real", path, feed, calib, True)
    if name == "squeezenet1.1":
        feed = {"data_0": load_pb(os.path.join(d, "test_data_set_0", "input_0.pb"))}
        calib = np.load(os.path.join(DATA_DIR, "imagenet-photos", "calib_f32.npy"))[:8]
        return Model(name, "real", path, feed, calib, True)
    rgb = photos_rgb()
    if name == "ultraface-rfb320":
        # Nearest-neighbour resize of the photo crops to 240x320, (x-127)/128.
        rows = (np.arange(240) * 224) // 240
        cols = (np.arange(320) * 224) // 320
        img = (rgb[:, :, rows][:, :, :, cols] - 127.0) / 128.0
        img = img.astype(np.float32)
        return Model(name, "real", path, {"input": img[33:34].copy()}, img[:8].copy(), False)
    if name == "ppocr-cls":
        # A 48x192 strip of each photo crop, (x/255-0.5)/0.5.
        img = ((rgb[:, :, 88:136, 16:208] / 255.0 - 0.5) / 0.5).astype(np.float32)
        return Model(name, "real", path, {"x": img[33:34].copy()}, img[:8].copy(), True,
                     input_shape="x=1x3x48x192")
    raise ValueError(name)


def build_model(name, work):
    if name.startswith("matmul-"):
        return make_matmul(work, int(name.split("-")[1]))
    if name.startswith("mlp-b"):
        return make_mlp(work, int(name[5:]))
    return make_real(name)


# ---- octet --------------------------------------------------------------------

def run_cmd(args, what, timeout=900):
    """Runs a command; raises StepError with its diagnostic when it fails."""
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StepError(f"{what}: timed out after {timeout} s: {shlex.join(args)}")
    if r.returncode != 0:
        diag = (r.stderr.strip() or r.stdout.strip()).splitlines()[-6:]
        raise StepError(f"{what}: exit {r.returncode}: {shlex.join(args)}\n    " +
                        "\n    ".join(diag))
    return r


def octet_quantize(octet, m, out):
    calib = os.path.join(os.path.dirname(out), m.name + "_calib.npy")
    np.save(calib, m.calib)
    args = [octet, "quantize", m.path, "--calib", calib, "-o", out, "--progress=none"]
    if m.input_shape:
        args += ["--input-shape", m.input_shape]
    run_cmd(args, "quantize")


def octet_compile(octet, model_path, out_base, input_shape=None):
    """Compiles to OUT_BASE.so at -O3; returns the wall-clock time in s."""
    args = [octet, "compile", model_path, "-o", out_base, "--emit=so", "-O3"]
    if input_shape:
        args += ["--input-shape", input_shape]
    t0 = time.perf_counter()
    run_cmd(args, "compile")
    return time.perf_counter() - t0


TIME_RE = re.compile(r"time: median ([0-9.eE+-]+) ms over (\d+) runs")


class OctetRunner:
    """Times compiled libraries with `octet run`.  When `--threads T` fails
    (an octet without the option, or a library without NAME_run_threads), it
    runs without the option (1 thread) and says so."""

    def __init__(self, octet):
        self.octet = octet
        self.threads_ok = None   # does `octet run` know --threads at all
        self.no_threads = set()  # libraries that failed with --threads

    def probe_threads(self, so, input_args):
        if self.threads_ok is not None:
            return
        r = subprocess.run([self.octet, "run", so, *input_args, "--repeat", "1",
                            "--threads", "1"], capture_output=True, text=True, timeout=300)
        self.threads_ok = not ("unknown option" in r.stderr and "--threads" in r.stderr)
        if not self.threads_ok:
            print("note: `octet run` has no --threads; octet runs on 1 thread "
                  "(rows with more threads are marked *)", file=sys.stderr)

    def time_ms(self, so, input_args, repeat, threads):
        """Returns (median ms, ran on 1 thread instead of THREADS)."""
        base = [self.octet, "run", so, *input_args, "--repeat", str(repeat), "--time"]
        fell_back = not self.threads_ok or so in self.no_threads
        if fell_back:
            r = run_cmd(base, "run", timeout=600)
        else:
            try:
                r = run_cmd(base + ["--threads", str(threads)], "run", timeout=600)
            except StepError as e:
                if "threads" not in str(e):
                    raise
                print(f"note: {os.path.basename(so)}: --threads failed, running it on "
                      f"1 thread (marked *): {str(e).splitlines()[-1].strip()}", file=sys.stderr)
                self.no_threads.add(so)
                fell_back = True
                r = run_cmd(base, "run", timeout=600)
        mt = TIME_RE.search(r.stdout + r.stderr)
        if not mt:
            raise StepError(f"run: no 'time: median' line in the output of octet run {so}")
        return float(mt.group(1)), fell_back and threads > 1

    def outputs(self, so, input_args, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        run_cmd([self.octet, "run", so, *input_args, "--output-dir", out_dir], "run")
        return out_dir


def safe_name(name):
    s = "".join(c if (c.isalnum() and c.isascii()) or c in "_-." else "_" for c in name)
    return ("_" + s[1:]) if s.startswith(".") else (s or "output")


# ---- ONNX Runtime -------------------------------------------------------------

# ONNX Runtime's fused u8 x s8 kernels are exact only with a VNNI or AMX dot
# product; on AVX2 alone MLAS sums pairs in 16 bits (vpmaddubsw), which
# saturates with full-range int8 weights.  There the INT8 check compares with
# ONNX Runtime at graph optimization "basic", which computes Q/DQ as the spec
# writes them instead of fusing them into those kernels.
ORT_INT8_EXACT = bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def ort_session(path, threads, basic=False):
    so = ort.SessionOptions()
    if basic:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - any ORT failure is a failed step
        raise StepError(f"onnxruntime cannot load {os.path.basename(path)}: {e}")


def ort_burst_ms(sess, feed, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, feed)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def repeats_for(ms, burst_s):
    return int(min(5000, max(3, round(burst_s * 1e3 / max(ms, 1e-3)))))


# ---- output checks ------------------------------------------------------------

def output_scales(qdq_path):
    """{graph output: largest DequantizeLinear scale} for outputs made by a DQ."""
    m = onnx.load(qdq_path, load_external_data=False)
    consts = {i.name: i for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant" and n.attribute:
            consts[n.output[0]] = n.attribute[0].t
    prod = {o: n for n in m.graph.node for o in n.output}
    res = {}
    for o in m.graph.output:
        n = prod.get(o.name)
        if n is not None and n.op_type == "DequantizeLinear" and n.input[1] in consts:
            res[o.name] = float(np.max(np.abs(numpy_helper.to_array(consts[n.input[1]]))))
    return res


def top1_agree(a, b):
    a2 = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)
    b2 = b.reshape(b.shape[0], -1) if b.ndim > 1 else b.reshape(1, -1)
    agree = int(np.sum(np.argmax(a2, 1) == np.argmax(b2, 1)))
    return agree, a2.shape[0]


def compare(octet_dir, sess, feed, int8, scales, classifier):
    """Returns (text, ok) comparing the octet outputs in OCTET_DIR with ORT's."""
    names = [o.name for o in sess.get_outputs()]
    refs = sess.run(None, feed)
    parts, ok = [], True
    for name, ref in zip(names, refs):
        p = os.path.join(octet_dir, safe_name(name) + ".npy")
        if not os.path.exists(p):
            return f"no output file for {name}", False
        got = np.load(p).astype(np.float64)
        ref = np.asarray(ref, np.float64)
        if got.size != ref.size:
            return f"{name}: {got.shape} vs ORT {ref.shape}", False
        got = got.reshape(ref.shape)
        diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        tag = name if len(names) > 1 else ""
        if not np.all(np.isfinite(got)):
            parts.append(f"{tag} non-finite".strip())
            ok = False
            continue
        if int8 and name in scales and scales[name] > 0:
            lsb = diff / scales[name]
            parts.append(f"{tag} {lsb:.2g} LSB".strip())
            ok &= lsb <= INT8_LSB_LIMIT
        else:
            rel = diff / max(float(np.max(np.abs(ref))), 1e-30)
            parts.append(f"{tag} rel {rel:.1e}".strip())
            ok &= rel <= (INT8_REL_LIMIT if int8 else FP32_REL_LIMIT)
        if classifier:
            a, n = top1_agree(got, ref)
            parts.append(f"top1 {a}/{n}")
            ok &= a == n
    return ", ".join(parts), ok


# ---- the benchmark ------------------------------------------------------------

class Result:
    def __init__(self, model):
        self.model = model
        self.error = None
        self.times = {}     # threads -> {variant: ms}
        self.fallback = set()  # thread counts at which octet ran on 1 thread
        self.check = ""
        self.check_ok = True
        self.gemm_m = None


def prepare(name, work, octet, runner):
    """Builds, quantizes and compiles one model; returns a dict of artefacts."""
    m = build_model(name, work)
    base = name.replace("-", "_").replace(".", "_")
    qdq = os.path.join(work, base + "_int8.onnx")
    octet_quantize(octet, m, qdq)
    so_dir = os.path.join(work, "so")
    os.makedirs(so_dir, exist_ok=True)
    so_f = os.path.join(so_dir, base + "_fp32")
    so_q = os.path.join(so_dir, base + "_int8")
    octet_compile(octet, m.path, so_f, m.input_shape)
    octet_compile(octet, qdq, so_q, m.input_shape)
    input_args = []
    for k, v in m.feed.items():
        p = os.path.join(work, f"{base}_in_{safe_name(k)}.npy")
        np.save(p, v)
        input_args += ["--input", f"{k}={p}"]
    runner.probe_threads(so_q + ".so", input_args)
    return m, qdq, so_f + ".so", so_q + ".so", input_args


def bench_model(name, work, octet, runner, threads_list, rounds, burst_s):
    res = Result(name)
    try:
        m, qdq, so_f, so_q, input_args = prepare(name, work, octet, runner)
        res.model = m.name
        res.gemm_m = m.gemm_m
        # Correctness: octet at 1 thread against ORT at 1 thread.
        s_f, s_q = ort_session(m.path, 1), ort_session(qdq, 1)
        base = os.path.join(work, "out", name)
        cf, okf = compare(runner.outputs(so_f, input_args, base + "_fp32"), s_f,
                          m.feed, False, {}, m.classifier)
        s_ref = s_q if ORT_INT8_EXACT else ort_session(qdq, 1, basic=True)
        cq, okq = compare(runner.outputs(so_q, input_args, base + "_int8"), s_ref,
                          m.feed, True, output_scales(qdq), m.classifier)
        res.check = f"fp32 {cf}; int8 {cq}"
        res.check_ok = okf and okq
        for t in threads_list:
            sess = {"ort-int8": s_q if t == 1 else ort_session(qdq, t),
                    "ort-fp32": s_f if t == 1 else ort_session(m.path, t)}
            so = {"octet-int8": so_q, "octet-fp32": so_f}
            reps = {}
            for v in ("ort-int8", "ort-fp32"):
                for _ in range(3):
                    sess[v].run(None, m.feed)                     # warm-up
                reps[v] = repeats_for(ort_burst_ms(sess[v], m.feed, 3), burst_s)
            for v in ("octet-int8", "octet-fp32"):
                reps[v] = repeats_for(runner.time_ms(so[v], input_args, 3, t)[0], burst_s)
            samples = {v: [] for v in VARIANTS}
            for r in range(rounds):
                order = VARIANTS[r % 4:] + VARIANTS[:r % 4]     # rotate the start
                for v in order:
                    if v.startswith("octet"):
                        ms, fb = runner.time_ms(so[v], input_args, reps[v], t)
                        if fb:
                            res.fallback.add(t)
                    else:
                        ms = ort_burst_ms(sess[v], m.feed, reps[v])
                    samples[v].append(ms)
            res.times[t] = {v: statistics.median(s) for v, s in samples.items()}
            print(f"  {name} threads={t}: " + ", ".join(
                f"{v} {res.times[t][v]:.3f} ms" for v in VARIANTS), file=sys.stderr)
    except StepError as e:
        res.error = str(e)
        print(f"FAILED {name}: {e}", file=sys.stderr)
    except Exception as e:  # noqa: BLE001 - report, keep benchmarking the others
        res.error = f"{type(e).__name__}: {e}"
        print(f"FAILED {name}: {res.error}", file=sys.stderr)
    return res


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt_ms(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}" if x < 100 else f"{x:.1f}"


def summarize(results, threads_list, compile_s):
    """Builds the report as markdown lines and the figures for the targets."""
    lines = []
    hdr = ["model", "threads", "octet-int8 ms", "octet-fp32 ms", "ort-int8 ms", "ort-fp32 ms",
           "o-int8/ort-int8", "o-int8/ort-fp32", "o-fp32/ort-fp32", "check (octet vs ORT)"]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "|".join("---" for _ in hdr) + "|")
    ratios = {"i8/ri8": [], "i8/rf": [], "f/rf": []}
    starred = False
    for r in results:
        first = True
        for t in threads_list:
            if t not in r.times:
                continue
            tm = r.times[t]
            a, b, c, d = (tm[v] for v in VARIANTS)
            q = (a / c, a / d, b / d)
            if t == 1:
                ratios["i8/ri8"].append(q[0])
                ratios["i8/rf"].append(q[1])
                ratios["f/rf"].append(q[2])
            tt = f"{t}*" if t in r.fallback else str(t)
            starred |= t in r.fallback
            chk = (("" if r.check_ok else "**MISMATCH** ") + r.check) if first else ""
            first = False
            lines.append(f"| {r.model} | {tt} | {fmt_ms(a)} | {fmt_ms(b)} | {fmt_ms(c)} | "
                         f"{fmt_ms(d)} | {q[0]:.2f} | {q[1]:.2f} | {q[2]:.2f} | {chk} |")
        if r.error:
            el = r.error.splitlines()
            msg = f"{el[0].split(':')[0]} failed: {el[-1].strip()}" if len(el) > 1 else el[0]
            msg = msg.replace("|", "\\|")
            lines.append(f"| {r.model} | - | FAILED | | | | | | | {msg} |")
    if starred:
        lines.append("")
        lines.append("\\* octet ran on 1 thread: `octet run --threads` failed "
                     "(not available, or the library has no NAME_run_threads).")
    fig = {}
    lines.append("")
    n = len(ratios["i8/ri8"])
    if n:
        g = {k: geomean(v) for k, v in ratios.items()}
        fig["geo_i8_ri8"], fig["geo_i8_rf"] = g["i8/ri8"], g["i8/rf"]
        fig["geo_f_rf"] = g["f/rf"]
        if n < len(results):
            fig["geo_note"] = f" ({n} of {len(results)} models)"
        lines.append(f"Geometric means at 1 thread over {n} of {len(results)} models: "
                     f"octet-int8/ort-int8 **{g['i8/ri8']:.2f}**, "
                     f"octet-int8/ort-fp32 **{g['i8/rf']:.2f}**, "
                     f"octet-fp32/ort-fp32 **{g['f/rf']:.2f}**.")
        lines.append("")
    mm = [r for r in results if r.gemm_m and r.times]
    if mm:
        lines.append("| MatMul [M,1024]x[1024,1024] | threads | octet-int8 GOP/s | ort-int8 GOP/s "
                     "| octet-fp32 GOP/s | ort-fp32 GOP/s |")
        lines.append("|---|---|---|---|---|---|")
        for r in mm:
            ops = 2.0 * r.gemm_m * 1024 * 1024
            for t in sorted(r.times):
                tm = r.times[t]
                gs = [ops / (tm[v] * 1e-3) / 1e9 for v in ("octet-int8", "ort-int8",
                                                              "octet-fp32", "ort-fp32")]
                tt = f"{t}*" if t in r.fallback else str(t)
                lines.append(f"| M={r.gemm_m} | {tt} | " + " | ".join(f"{x:.1f}" for x in gs) + " |")
                if r.gemm_m == 1024 and t == 1:
                    fig["gemm_gops"] = gs[0]
        lines.append("")
    sq = [r for r in results if r.model == "squeezenet1.1" and 1 in r.times and 2 in r.times]
    if sq:
        s = sq[0].times[1]["octet-int8"] / sq[0].times[2]["octet-int8"]
        s_ort = sq[0].times[1]["ort-int8"] / sq[0].times[2]["ort-int8"]
        if 2 in sq[0].fallback:
            lines.append("squeezenet1.1 octet-int8, 2 threads over 1: not measured "
                         "(octet ran on 1 thread).")
        else:
            fig["sq_speedup"] = s
            lines.append(f"squeezenet1.1 octet-int8, 2 threads over 1: **{s:.2f}x** "
                         f"(ORT int8: {s_ort:.2f}x).")
    if compile_s is not None:
        fig["sq_compile"] = compile_s
        lines.append(f"squeezenet1.1 INT8 `octet compile --emit=so -O3`: **{compile_s:.2f} s** "
                     "wall clock (median of 3).")
    lines.append("")
    return lines, fig


def targets(fig, noisy=""):
    """The targets table; noisy (e.g. "load 15 on 2 CPUs") is appended to
    each status: under such load a met/not met says little."""
    def row(what, key, goal, fmt, better_low):
        v = fig.get(key)
        if v is None:
            return f"| {what} | {goal} | not measured | - |"
        met = v <= float(goal.split()[1]) if better_low else v >= float(goal.split()[1])
        note = fig.get("geo_note", "") if key.startswith("geo") else ""
        status = ("met" if met else "not met") + (f" (untrustworthy: {noisy})" if noisy else "")
        return f"| {what} | {goal} | {fmt.format(v)}{note} | {status} |"
    return ["| target | goal | measured | status |", "|---|---|---|---|",
            row("INT8 GEMM 1024^3, octet, GOP/s per core (1 thread)", "gemm_gops",
                f">= {TARGET_GEMM_GOPS:g}", "{:.1f}", False),
            row("geomean octet-int8 / ort-int8, 1 thread", "geo_i8_ri8",
                f"<= {TARGET_VS_ORT_INT8:g}", "{:.2f}", True),
            row("geomean octet-int8 / ort-fp32, 1 thread", "geo_i8_rf",
                f"<= {TARGET_VS_ORT_FP32:g}", "{:.2f}", True),
            row("geomean octet-fp32 / ort-fp32, 1 thread", "geo_f_rf",
                f"<= {TARGET_FP32_VS_ORT_FP32:g}", "{:.2f}", True),
            row("squeezenet1.1 octet-int8, 2 threads over 1", "sq_speedup",
                f">= {TARGET_SQ_SPEEDUP:g}", "{:.2f}x", False),
            row("squeezenet1.1 INT8 compile -O3, s", "sq_compile",
                f"< {TARGET_SQ_COMPILE_S:g}", "{:.2f}", True)]


ISA_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def machine():
    name, cores = platform.processor() or "?", os.cpu_count()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info = dict(l.split(":", 1) for l in out.splitlines() if ":" in l)
        info = {k.strip(): v.strip() for k, v in info.items()}
        name = cpu_name() if os.path.exists("/proc/cpuinfo") else info.get("Model name", name)
        cps = int(info.get("Core(s) per socket", "0")) * int(info.get("Socket(s)", "1"))
        cores = f"{cps} cores, {info.get('CPU(s)', '?')} CPUs" if cps else f"{cores} CPUs"
        flags = info.get("Flags", "").split()
        isa = [f for f in ISA_FLAGS if f in flags]
        return f"{name}, {cores}" + (f" ({', '.join(isa)})" if isa else "")
    except (OSError, ValueError):
        return f"{name}, {cores} CPUs"


def cpu_key(desc):
    """The key of a CPU's section in docs/benchmarks.md: its model name and
    ISA flags (machine()'s text without the core counts), as a slug."""
    name, _, rest = desc.partition(",")
    flags = re.search(r"\(([^)]*)\)\s*$", desc)
    text = name + ("-" + flags.group(1) if flags else "")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# docs/benchmarks.md: one section per CPU, between these markers; a rerun
# replaces the section of its own CPU and keeps the others.  Other
# <!-- NAME:begin --> ... <!-- NAME:end --> sections (other scripts' output,
# hand-written notes) are kept as they are.
CPU_BEGIN = "<!-- compile_bench_cpu:begin {} -->"
CPU_END = "<!-- compile_bench_cpu:end {} -->"
CPU_SECTION_RE = re.compile(r"<!-- compile_bench_cpu:begin (\S+) -->.*?"
                            r"<!-- compile_bench_cpu:end \1 -->", re.S)
OTHER_SECTION_RE = re.compile(r"<!-- (\w+):begin.*?<!-- \1:end -->", re.S)


def merge_docs(old, head, cpu_section, key):
    """The new benchmarks.md: head, this CPU's section, the other CPUs'
    sections of old (in their order), then old's other marked sections."""
    parts = [head, CPU_BEGIN.format(key) + "\n" + cpu_section + "\n" + CPU_END.format(key)]
    for m in CPU_SECTION_RE.finditer(old):
        if m.group(1) != key:
            parts.append(m.group(0))
    for m in OTHER_SECTION_RE.finditer(old):
        if m.group(1) != "compile_bench_cpu":
            parts.append(m.group(0))
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"


def octet_version(octet):
    try:
        h = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "-uno"],
                               capture_output=True, text=True).stdout.strip()
        return f"{h}{' with uncommitted changes' if dirty else ''}" if h else "?"
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, shorter bursts")
    ap.add_argument("--models", help="comma-separated subset of: " + ",".join(ALL_MODELS))
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, help="rounds per model and thread count "
                    "(default 7, 3 with --quick)")
    ap.add_argument("--octet", default=os.environ.get("OCTET", os.path.join(ROOT, "build", "octet")))
    ap.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files")
    a = ap.parse_args()
    models = a.models.split(",") if a.models else list(ALL_MODELS)
    bad = [m for m in models if m not in ALL_MODELS]
    if bad:
        ap.error(f"unknown model(s) {','.join(bad)}; known: {','.join(ALL_MODELS)}")
    try:
        threads_list = sorted({int(t) for t in a.threads.split(",")})
        assert threads_list and threads_list[0] >= 1
    except (ValueError, AssertionError):
        ap.error("--threads takes a list of counts >= 1, like 1,2")
    if not os.access(a.octet, os.X_OK):
        sys.exit(f"error: no octet executable at {a.octet} (build it, or pass --octet)")
    rounds = a.rounds or (3 if a.quick else 7)
    burst_s = 0.2 if a.quick else 0.3

    tmp = None
    if a.keep:
        work = os.path.abspath(a.keep)
        os.makedirs(work, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="octet-compile-bench-")
        work = tmp.name
    # Run a private copy of octet, so that a rebuild during the bench does not
    # swap the binary (or remove it for a moment) between two steps.
    snapshot = os.path.join(work, "octet")
    shutil.copy2(a.octet, snapshot)
    runner = OctetRunner(snapshot)
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    if load_start > (os.cpu_count() or 1) * 0.5:
        print(f"note: 1-minute load average {load_start:.2f} on {os.cpu_count()} CPUs: "
              "other processes compete, figures (above all 2-thread ones) will be noisy",
              file=sys.stderr)
    results = []
    for name in models:
        print(f"{name} ...", file=sys.stderr)
        results.append(bench_model(name, work, runner.octet, runner, threads_list, rounds, burst_s))
    compile_s = None
    if "squeezenet1.1" in models and os.path.exists(os.path.join(work, "squeezenet1_1_int8.onnx")):
        qdq = os.path.join(work, "squeezenet1_1_int8.onnx")
        try:
            ts = [octet_compile(runner.octet, qdq, os.path.join(work, "so", "sq_ctime"))
                  for _ in range(3)]
            compile_s = statistics.median(ts)
        except StepError as e:
            print(f"FAILED squeezenet1.1 compile timing: {e}", file=sys.stderr)
    lines, fig = summarize(results, threads_list, compile_s)
    elapsed = time.perf_counter() - t_start
    load_end = os.getloadavg()[0]
    load_max, ncpu = max(load_start, load_end), os.cpu_count() or 1
    tlines = targets(fig, f"load average up to {load_max:.1f} on {ncpu} CPUs"
                     if load_max > ncpu else "")
    print("\n".join(lines + tlines))
    print(f"\n(bench took {elapsed:.0f} s)")

    if a.write_docs:
        cmd = "bench/compile_bench.py " + shlex.join(sys.argv[1:])
        mach = machine()
        head = "\n".join([
            "# Benchmarks: Octet-compiled models against ONNX Runtime",
            "",
            "Generated by `bench/compile_bench.py --write-docs`; do not edit the figures by hand,",
            "rerun the script. Each model is quantized to INT8 QDQ by `octet quantize`, and the",
            "FP32 and INT8 models are compiled by `octet compile --emit=so -O3` and timed with",
            "`octet run X.so --repeat R --time --threads T`. ONNX Runtime runs the same FP32 and",
            "INT8 QDQ models (CPU provider, default graph optimization, which fuses QDQ into",
            "integer kernels; intra-op threads T, inter-op 1, sequential). The four are timed",
            "interleaved: each round times each once as the median of a burst of R runs",
            "(about 0.3 s; 0.2 s with --quick), and the figures are the medians over the rounds.",
            "Ratios below 1 mean Octet is faster. The check column compares the octet outputs",
            "with ONNX Runtime's on the same model (FP32: largest difference relative to the",
            "largest |output|; INT8: largest difference in output-scale units (LSB) or relative,",
            "and top-1 agreement for classifiers).",
            "",
            "- models: `matmul-M` is an [M,1024] input times a constant [1024,1024]; `mlp-bB`",
            "  is a 784-512-512-10 Gemm+Relu MLP at batch B (fixed-seed random weights);",
            "  the others are ../shared/models, calibrated on ../shared/data (mnist-8,",
            "  squeezenet1.1) or on crops of the ImageNet calibration photos (ultraface,",
            "  ppocr-cls).",
            "- One section per CPU: a rerun replaces the section of the CPU it runs on",
            "  (same model name, CPU family and model, and ISA flags) and keeps the others.",
        ])
        section = "\n".join([
            f"## CPU: {mach}",
            "",
            f"- machine: {mach}; 1-minute load average {load_start:.2f} at the start, "
            f"{load_end:.2f} at the end (above about 1 per core, other processes were "
            "competing and the figures are noisy)",
            f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- command: `{cmd}` ({elapsed:.0f} s; {rounds} rounds)",
            f"- octet: {octet_version(runner.octet)} (`{os.path.relpath(os.path.abspath(a.octet), ROOT)}`); onnxruntime {ort.__version__}, "
            f"onnx {onnx.__version__}, numpy {np.__version__}",
            *(["- ONNX Runtime (MLAS) chooses its kernels by CPUID: this CPU has AVX-512 VNNI,",
               "  which its INT8 GEMM kernels use."]
              if "avx512_vnni" in mach else []),
            *(["- ONNX Runtime (MLAS) chooses its kernels by CPUID: this CPU has no VNNI, so",
               "  its fused INT8 kernels sum u8 x s8 pairs in 16 bits (vpmaddubsw), which",
               "  saturates with full-range int8 weights. They are timed as they are; the",
               "  INT8 check compares Octet with ONNX Runtime at graph optimization `basic`",
               "  (Q/DQ computed as the spec writes them), since the fused results are inexact."]
              if not ORT_INT8_EXACT else []),
            "",
            "### Times",
            "",
            *lines,
            "### Targets",
            "",
            *tlines,
        ])
        path = os.path.join(ROOT, "docs", "benchmarks.md")
        old = open(path).read() if os.path.exists(path) else ""
        with open(path, "w") as f:
            f.write(merge_docs(old, head, section, cpu_key(mach)))
        print(f"wrote {path}")

    failed = [r for r in results if r.error]
    mismatched = [r for r in results if not r.error and not r.check_ok]
    if failed:
        print("error: failed: " + "; ".join(
            f"{r.model} ({r.error.splitlines()[0].split(':')[0]}: {r.error.splitlines()[-1].strip()})"
            for r in failed), file=sys.stderr)
    if mismatched:
        print("error: octet output does not match ONNX Runtime's: " +
              "; ".join(f"{r.model} ({r.check})" for r in mismatched), file=sys.stderr)
    if tmp:
        tmp.cleanup()
    return 1 if failed else 3 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
