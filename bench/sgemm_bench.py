"""FP32 GEMM shapes: an Octet-compiled MatMul against ONNX Runtime's, 1 thread.

Each case is one MatMul y = x W with x [M, K] an input and W [K, N] a
constant (fixed-seed random), compiled by `octet compile --emit=so -O3`
and timed by `octet run --time --threads T` (its median), against ONNX
Runtime's MatMul on the same model (intra_op threads T, the median of a
burst).  The engines take turns over several rounds and the figure is the
median over rounds, so both see the same machine load; the result is a
ratio octet/ort (below 1: octet faster).  With --base OCTET2, a second
octet binary (e.g. a build of main) is timed in the same rounds, which
gives a before/after ratio from one run.

Default cases: the prefill GEMMs of bench/lm_bench.py's Llama shape
(128 tokens, dim 2048, FFN 5632) and 1024^3.  The octet output is checked
against ONNX Runtime's (largest difference relative to the largest |y|,
limit 1e-4) before timing.

usage: bench/sgemm_bench.py [--cases MxKxN,...] [--threads 1] [--rounds 5]
                            [--base PATH] [--octet PATH] [--keep DIR]
exit status: 0 good, 1 a step failed, 3 an output differs from ORT's.
"""
import argparse
import os
import statistics
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compile_bench as cb  # noqa: E402 - the timing helpers are shared

DEFAULT_CASES = "128x2048x2048,128x2048x5632,128x5632x2048,1024x1024x1024"


def make_matmul(path, M, K, N):
    rng = np.random.default_rng(M * 7 + K * 3 + N)
    w = (rng.standard_normal((K, N)) / np.sqrt(K)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "sgemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, N])],
        [numpy_helper.from_array(w, "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return {"x": rng.standard_normal((M, K)).astype(np.float32)}


def check(runner, so, input_args, out_dir, sess, feed):
    runner.outputs(so, input_args, out_dir)
    got = np.load(os.path.join(out_dir, "y.npy"))
    want = sess.run(None, feed)[0]
    return float(np.max(np.abs(got - want)) / max(1e-30, float(np.max(np.abs(want)))))


def bench_case(case, work, octets, threads, rounds, burst_s):
    M, K, N = (int(v) for v in case.split("x"))
    name = f"mm_{M}x{K}x{N}"
    path = os.path.join(work, name + ".onnx")
    feed = make_matmul(path, M, K, N)
    xin = os.path.join(work, name + "_x.npy")
    np.save(xin, feed["x"])
    input_args = ["--input", f"x={xin}"]
    sess = cb.ort_session(path, threads)
    runners, sos, errs = {}, {}, []
    for label, octet in octets.items():
        runners[label] = cb.OctetRunner(octet)
        so_base = os.path.join(work, f"{name}_{label}")
        cb.octet_compile(octet, path, so_base)
        sos[label] = so_base + ".so"
        runners[label].probe_threads(sos[label], input_args)
        err = check(runners[label], sos[label], input_args,
                    os.path.join(work, f"out_{name}_{label}"), sess, feed)
        if err > 1e-4:
            errs.append(f"{name} {label}: max |octet - ort| / max |ort| = {err:.2e}")
    for _ in range(3):
        sess.run(None, feed)
    reps = {"ort": cb.repeats_for(cb.ort_burst_ms(sess, feed, 3), burst_s)}
    for label in octets:
        reps[label] = cb.repeats_for(runners[label].time_ms(sos[label], input_args, 3,
                                                            threads)[0], burst_s)
    engines = list(octets) + ["ort"]
    samples = {e: [] for e in engines}
    for r in range(rounds):
        for e in engines[r % len(engines):] + engines[:r % len(engines)]:
            if e == "ort":
                samples[e].append(cb.ort_burst_ms(sess, feed, reps[e]))
            else:
                samples[e].append(runners[e].time_ms(sos[e], input_args, reps[e], threads)[0])
    return (M, K, N), {e: statistics.median(s) for e, s in samples.items()}, errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated MxKxN")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--burst", type=float, default=0.3, help="seconds per timed burst")
    ap.add_argument("--octet", default=os.path.join(cb.ROOT, "build", "octet"))
    ap.add_argument("--base", help="a second octet binary timed in the same rounds")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files")
    args = ap.parse_args()
    octets = {"octet": args.octet}
    if args.base:
        octets["base"] = args.base
    work = args.keep or tempfile.mkdtemp(prefix="sgemm_bench_")
    os.makedirs(work, exist_ok=True)
    print(f"machine: {cb.machine()}; threads {args.threads}; rounds {args.rounds}")
    head = "| M x K x N | octet ms | ort ms | octet/ort | octet GFLOP/s |"
    sep = "|---|---:|---:|---:|---:|"
    if args.base:
        head += " base ms | base/ort | octet/base |"
        sep += "---:|---:|---:|"
    print(head)
    print(sep)
    ratios, base_ratios, bad, failed = [], [], [], False
    for case in args.cases.split(","):
        try:
            (M, K, N), t, errs = bench_case(case, work, octets, args.threads, args.rounds,
                                            args.burst)
        except cb.StepError as e:
            print(f"FAILED {case}: {e}", file=sys.stderr)
            failed = True
            continue
        bad += errs
        ratios.append(t["octet"] / t["ort"])
        row = (f"| {M} x {K} x {N} | {t['octet']:.3f} | {t['ort']:.3f} | "
               f"{t['octet'] / t['ort']:.2f} | {2.0 * M * K * N / t['octet'] * 1e-6:.1f} |")
        if args.base:
            base_ratios.append(t["base"] / t["ort"])
            row += (f" {t['base']:.3f} | {t['base'] / t['ort']:.2f} | "
                    f"{t['octet'] / t['base']:.2f} |")
        print(row, flush=True)
    if ratios:
        print(f"geomean octet/ort: {cb.geomean(ratios):.2f}" +
              (f"; base/ort: {cb.geomean(base_ratios):.2f}" if base_ratios else ""))
    for b in bad:
        print("MISMATCH " + b, file=sys.stderr)
    if not args.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 3 if bad else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
