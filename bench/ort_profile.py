#!/usr/bin/env python3
"""ONNX Runtime's time per node of a model, from its own profiler.

Runs MODEL on the CPU provider (default graph optimization, intra-op
threads T, sequential) RUNS times with `enable_profiling` and prints each
node's median kernel time in microseconds, in execution order, with its
operator (after ONNX Runtime's fusions: QLinearConv, NhwcMaxPool, ...).
For comparing a model layer by layer with Octet's kernels (docs/compile.md,
"Limitations"); the profiler adds a little time to every node.

    .venv/bin/python bench/ort_profile.py MODEL [--input NAME=FILE.npy ...]
        [--threads 1] [--runs 300]

An input without --input gets random data of its declared shape (symbolic
dimensions 1).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

import numpy as np
import onnxruntime as ort

ORT_TYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8,
             "tensor(int8)": np.int8, "tensor(int64)": np.int64,
             "tensor(int32)": np.int32, "tensor(float16)": np.float16}


def feeds_for(sess, given):
    feeds = {}
    rng = np.random.default_rng(0)
    for i in sess.get_inputs():
        if i.name in given:
            feeds[i.name] = np.load(given[i.name])
            continue
        if i.type not in ORT_TYPES:
            sys.exit(f"ort_profile: input {i.name}: type {i.type} needs --input")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        feeds[i.name] = rng.standard_normal(shape).astype(ORT_TYPES[i.type])
    return feeds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()
    given = {}
    for spec in args.input:
        name, sep, path = spec.partition("=")
        if not sep:
            sys.exit(f"ort_profile: --input {spec}: expected NAME=FILE.npy")
        given[name] = path

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort")
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
        feeds = feeds_for(sess, given)
        for _ in range(args.runs):
            sess.run(None, feeds)
        with open(sess.end_profiling()) as f:
            events = json.load(f)

    times, ops, order = {}, {}, []
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        node = e["name"][: -len("_kernel_time")]
        if node not in times:
            times[node] = []
            order.append(node)
        times[node].append(e["dur"])
        ops[node] = e.get("args", {}).get("op_name", "?")
    total = 0.0
    print(f"# {os.path.basename(args.model)}: ONNX Runtime {ort.__version__}, "
          f"{args.threads} thread(s), median of {args.runs} runs, microseconds")
    for node in order:
        med = statistics.median(times[node])
        total += med
        print(f"{med:9.1f}  {ops[node]:18s} {node}")
    print(f"{total:9.1f}  total")


if __name__ == "__main__":
    main()
