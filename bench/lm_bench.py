"""Language-model benchmark: a Llama-shaped decoder, Octet-compiled against
ONNX Runtime, FP32, prefill and decode.

stories260k is too small to time kernels on, so this script makes a model of
a realistic width with random weights (fixed seed): it writes a llama2.c
checkpoint of the requested shape and lets the exporter that ships beside
stories260k (`models/stories260k/tools/export_onnx.py` under the shared
folder, or --tools) turn it into the same graphs as stories260k's: a prefill
graph (`input_ids` [1,S]) and decode graphs with P cache slots (`input_ids`,
`position_ids`, `attention_mask` [1,P+1], `past_key_values.{l}.key/value`
[1,KVH,P,hd] -> `logits`, `present.*` = Concat(past, new)).  The weights'
values do not matter for speed; their shapes are those of a Llama layer.

Each graph is compiled by `octet compile --emit=so -O3` and timed with
`octet run X.so --repeat R --time --threads T` (the median it prints);
ONNX Runtime runs the same ONNX file (CPU provider, default optimization,
intra-op threads T, inter-op 1), each as the median of a burst of R runs.
The two are timed interleaved, round after round, and the figure is the
median over rounds.  Before timing, the octet logits are compared with
ONNX Runtime's on the same inputs (largest difference relative to the
largest |logit|, limit 1e-3).

Each decode graph is also passed through the transformer pattern passes
(`octet opt --passes=...,fuse_attention,...`) and compiled with
`--kv-cache=inplace`, as `octet generate NAME.so` runs such a library
(rows decode_pP_inplace): the present outputs are the
cache, `octet run` puts the past there once before its runs, and each timed
run is one generation step with P cached tokens that writes only the new
token's keys and values (no copy of the cache).  ONNX Runtime runs the
graph as written on the same inputs, timed again beside it.

Printed: prefill ms and tokens/s, decode ms per token at each cache length,
octet / ort ratios (below 1: Octet faster), and the decode time at the
longest cache over the shortest (the cost of a longer cache), for the graph
as written and for the in-place cache.  The decode_pP rows (the graph as
written, the cache fed as an input) include the graph's Concat(past, new)
copy.  --write-docs puts the tables in docs/benchmarks.md between the
lm_bench markers, leaving the rest.

usage: bench/lm_bench.py [--quick] [--dim 2048 --layers 4 --heads 8
                         --kv-heads 8 --ffn 5632 --vocab 32000]
                         [--prefill 128] [--cache 128,1024] [--threads 1,2]
                         [--rounds N] [--octet PATH] [--tools DIR]
                         [--keep DIR [--reuse]] [--write-docs]
exit status: 0 done, 1 a step failed, 3 octet's logits differ from ORT's.
"""
import argparse
import datetime
import os
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compile_bench import (ROOT, SHARED, OctetRunner, StepError, machine,  # noqa: E402
                           octet_compile, octet_version, ort_burst_ms,
                           ort_session, repeats_for, run_cmd)

BEGIN = "<!-- lm_bench:begin (bench/lm_bench.py --write-docs replaces this section) -->"
END = "<!-- lm_bench:end -->"
REL_LIMIT = 1e-3


def write_checkpoint(path, dim, ffn, layers, heads, kv_heads, vocab, ctx, seed):
    """A llama2.c checkpoint (7 int32 header + float32 tensors in run.c's
    order, classifier shared with the embedding) with random weights."""
    hs = dim // heads
    kv = kv_heads * hs
    rng = np.random.default_rng(seed)
    shapes = [(vocab, dim), (layers, dim), (layers, dim, dim), (layers, kv, dim),
              (layers, kv, dim), (layers, dim, dim), (layers, dim), (layers, ffn, dim),
              (layers, dim, ffn), (layers, ffn, dim), (dim,), (ctx, hs // 2), (ctx, hs // 2)]
    with open(path, "wb") as f:
        f.write(struct.pack("7i", dim, ffn, layers, heads, kv_heads, vocab, ctx))
        for i, s in enumerate(shapes):
            if i in (1, 6, 10):                      # RMSNorm gains
                a = np.ones(s, np.float32)
            else:
                a = (rng.standard_normal(s, dtype=np.float32) * (1.0 / np.sqrt(s[-1])))
            f.write(a.astype("<f4").tobytes())


def export_names(out, prefill, caches):
    names = {f"prefill_s{prefill}": f"stories260K_prefill_s{prefill}_op21.onnx"}
    for p in caches:
        names[f"decode_p{p}"] = f"stories260K_decode_p{p}_op21.onnx"
    return {k: os.path.join(out, v) for k, v in names.items()}


def export(tools, ckpt, out, prefill, caches):
    args = [sys.executable, os.path.join(tools, "export_onnx.py"), "--ckpt", ckpt,
            "--out", out, "--opset", "21", "--prefill", str(prefill),
            "--decode", *[str(p) for p in caches]]
    run_cmd(args, "export", timeout=3600)
    return export_names(out, prefill, caches)


def feeds_for(path, seed):
    """Inputs for one graph: token ids below the vocabulary, the decode
    step at the last slot with every cache slot valid, a random cache."""
    m = onnx.load(path, load_external_data=False)
    rng = np.random.default_rng(seed)
    vocab = next(o.type.tensor_type.shape.dim[2].dim_value for o in m.graph.output
                 if o.name == "logits")
    feed = {}
    for i in m.graph.input:
        dims = [d.dim_value for d in i.type.tensor_type.shape.dim]
        if i.name == "input_ids":
            feed[i.name] = rng.integers(3, vocab, size=dims, dtype=np.int64)
        elif i.name == "position_ids":
            feed[i.name] = np.zeros(dims, np.int64)
        elif i.name == "attention_mask":
            feed[i.name] = np.ones(dims, np.int64)
        else:
            feed[i.name] = rng.standard_normal(dims, dtype=np.float32)
    if "position_ids" in feed:                  # the new token follows the P cached ones
        feed["position_ids"][...] = feed["attention_mask"].shape[1] - 1
    return feed


FUSE = "--passes=shape_infer,fuse_rmsnorm,fuse_rotary,fuse_attention,fuse_gelu"


def compile_inplace(octet, model_path, out_base):
    """The graph through the transformer pattern passes (`octet opt`: one
    Attention op per layer, which reads the keys in place), then compiled
    with the in-place key/value cache; wall-clock s of both."""
    t0 = time.perf_counter()
    fused = out_base + "_fused.onnx"
    try:
        run_cmd([octet, "opt", FUSE, model_path, "-o", fused], "opt", timeout=1800)
        run_cmd([octet, "compile", fused, "-o", out_base, "--emit=so", "-O3",
                 "--kv-cache=inplace"], "compile")
    finally:
        if os.path.exists(fused):
            os.remove(fused)
    return time.perf_counter() - t0


def check_logits(runner, so, args, sess, feed, out_dir):
    runner.outputs(so, args, out_dir)
    got = np.load(os.path.join(out_dir, "logits.npy"))
    want = sess.run(["logits"], feed)[0]
    rel = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))
    return rel


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a small model (dim 256, 2 layers, FFN 688, vocab 4096), 3 rounds")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--prefill", type=int, default=128)
    ap.add_argument("--cache", default="128,1024", help="decode cache lengths")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--octet", default=os.environ.get("OCTET", os.path.join(ROOT, "build", "octet")))
    ap.add_argument("--tools", default=os.path.join(SHARED, "models", "stories260k", "tools"),
                    help="folder of export_onnx.py and llama2c_ref.py")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: reuse the ONNX files and libraries a previous run "
                         "left there (same shape options) instead of making them again")
    ap.add_argument("--write-docs", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.dim, a.layers, a.ffn, a.vocab = 256, 2, 688, 4096
    rounds = a.rounds or (3 if a.quick else 5)
    caches = [int(x) for x in a.cache.split(",")]
    threads_list = [int(x) for x in a.threads.split(",")]
    if not os.path.isfile(os.path.join(a.tools, "export_onnx.py")):
        print(f"error: {a.tools}: no export_onnx.py (give --tools)", file=sys.stderr)
        return 1
    if a.dim % a.heads or a.heads % a.kv_heads:
        print("error: --dim must divide by --heads, --heads by --kv-heads", file=sys.stderr)
        return 1
    tmp = None if a.keep else tempfile.TemporaryDirectory(prefix="octet-lm-bench-")
    work = a.keep or tmp.name
    os.makedirs(work, exist_ok=True)
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    shape = (f"dim {a.dim}, {a.layers} layers, {a.heads} heads ({a.kv_heads} KV), "
             f"FFN {a.ffn}, vocabulary {a.vocab}")
    print(f"model: {shape}; machine: {machine()}", flush=True)

    ckpt = os.path.join(work, "random.bin")
    ctx = max([a.prefill] + caches) + 1
    try:
        graphs = export_names(os.path.join(work, "onnx"), a.prefill, caches)
        if not (a.reuse and all(os.path.exists(p) for p in graphs.values())):
            write_checkpoint(ckpt, a.dim, a.ffn, a.layers, a.heads, a.kv_heads, a.vocab, ctx, 1234)
            graphs = export(a.tools, ckpt, os.path.join(work, "onnx"), a.prefill, caches)
    except StepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    runner = OctetRunner(a.octet)
    rows, mismatched, compile_s = [], [], {}
    prepared = {}
    # each decode graph twice: as written, and with the in-place cache
    builds = [(k, k, p, octet_compile) for k, p in graphs.items()]
    builds += [(k + "_inplace", k, p, compile_inplace) for k, p in graphs.items()
               if k.startswith("decode")]
    for key, graph, path, compile_fn in builds:
        try:
            so = os.path.join(work, key)
            if a.reuse and os.path.exists(so + ".so") and \
                    os.path.getmtime(so + ".so") > os.path.getmtime(path):
                compile_s[key] = float("nan")
            else:
                compile_s[key] = compile_fn(a.octet, path, so)
            feed = feeds_for(path, 7)
            args = []
            for k, v in feed.items():
                p = os.path.join(work, f"{graph}_in_{k}.npy")
                np.save(p, v)
                args += ["--input", f"{k}={p}"]
            runner.probe_threads(so + ".so", args)
            rel = check_logits(runner, so + ".so", args, ort_session(path, 1), feed,
                               os.path.join(work, key + "_out"))
            if not rel <= REL_LIMIT:
                mismatched.append(f"{key} ({rel:.2e})")
            prepared[key] = (path, so + ".so", args, feed, rel)
            how = "reused" if compile_s[key] != compile_s[key] else f"compiled in {compile_s[key]:.1f} s"
            print(f"{key}: {how}; logits vs ORT {rel:.1e}", flush=True)
        except StepError as e:
            print(f"FAILED {key}: {e}", file=sys.stderr)
            rows.append((key, None, None, None, str(e).splitlines()[0]))

    times = {}
    for t in threads_list:
        sessions = {}                           # one per ONNX file
        for path, *_ in prepared.values():
            if path not in sessions:
                sessions[path] = ort_session(path, t)
        for key, (path, so, args, feed, rel) in prepared.items():
            om, _ = runner.time_ms(so, args, 3, t)
            rm = ort_burst_ms(sessions[path], feed, 3)
            ro, rr = repeats_for(om, 0.3), repeats_for(rm, 0.3)
            o_ms, r_ms = [], []
            for _ in range(rounds):                     # interleaved
                o_ms.append(runner.time_ms(so, args, ro, t)[0])
                r_ms.append(ort_burst_ms(sessions[path], feed, rr))
            times[(key, t)] = (statistics.median(o_ms), statistics.median(r_ms))
            print(f"{key} threads {t}: octet {times[(key, t)][0]:.3f} ms, "
                  f"ort {times[(key, t)][1]:.3f} ms", flush=True)

    lines = ["| graph | threads | octet ms | ort ms | octet/ort | octet tokens/s | ort tokens/s |",
             "|---|---|---|---|---|---|---|"]
    for (key, t), (o, r) in times.items():
        ntok = a.prefill if key.startswith("prefill") else 1
        lines.append(f"| {key} | {t} | {o:.3f} | {r:.3f} | {o / r:.2f} | "
                     f"{ntok * 1e3 / o:.1f} | {ntok * 1e3 / r:.1f} |")
    growth = []
    for t in threads_list:
        for how, suffix in (("graph as written", ""), ("in-place cache", "_inplace")):
            lo, hi = f"decode_p{min(caches)}{suffix}", f"decode_p{max(caches)}{suffix}"
            if (lo, t) in times and (hi, t) in times and lo != hi:
                growth.append(f"- decode at cache {max(caches)} over cache {min(caches)}, "
                              f"{t} thread(s), octet {how}: "
                              f"octet {times[(hi, t)][0] / times[(lo, t)][0]:.2f}x, "
                              f"ORT {times[(hi, t)][1] / times[(lo, t)][1]:.2f}x")
    checks = [f"- logits of {k} vs ORT: largest difference / largest |logit| = {v[4]:.1e}"
              for k, v in prepared.items()]
    elapsed = time.perf_counter() - t_start
    print("\n".join(lines + [""] + growth + checks))
    print(f"\n(bench took {elapsed:.0f} s)")

    if a.write_docs and times:
        cmd = "bench/lm_bench.py " + shlex.join(sys.argv[1:])
        section = [
            BEGIN,
            "## Llama-shaped language model (FP32): prefill and decode",
            "",
            "Generated by `bench/lm_bench.py --write-docs`. A decoder of stories260k's layout",
            f"with random weights at {shape}, exported by stories260k's `tools/export_onnx.py`;",
            "each graph compiled by `octet compile --emit=so -O3` and timed by `octet run --time`",
            "interleaved with ONNX Runtime on the same ONNX file (CPU provider, intra-op threads",
            f"T, inter-op 1), medians of {rounds} rounds. Ratios below 1: Octet faster.",
            "",
            "- decode_pP: the decode graph with P cached tokens compiled as written; `octet run`",
            "  feeds the cache as an input, so the time includes the graph's Concat(past, new),",
            "  a copy of the whole cache per step.",
            "- decode_pP_inplace: the same graph through `octet opt --passes=shape_infer,fuse_rmsnorm,",
            "  fuse_rotary,fuse_attention,fuse_gelu`, compiled with `--kv-cache=inplace`, as",
            "  `octet generate NAME.so` runs it: one generation step with P cached tokens that reads the",
            "  cache where it lives and writes only the new token's keys and values (`octet run`",
            "  puts the past there once, outside the timing). The ORT column of these rows is",
            "  ONNX Runtime's decode of the same graph and inputs, timed again beside it.",
            "",
            f"- machine: {machine()}; 1-minute load average {load_start:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end",
            f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- command: `{cmd}` ({elapsed:.0f} s)",
            f"- octet: {octet_version(a.octet)}; onnxruntime {ort.__version__}",
            "",
            *lines, "", *growth, *checks, "", END]
        path = os.path.join(ROOT, "docs", "benchmarks.md")
        text = open(path).read() if os.path.exists(path) else ""
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            text = head + "\n".join(section) + rest.split(END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + "\n".join(section) + "\n"
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {path}")

    if tmp:
        tmp.cleanup()
    if mismatched:
        print("error: octet logits differ from ORT's: " + "; ".join(mismatched), file=sys.stderr)
        return 3
    return 1 if any(r[1] is None for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
