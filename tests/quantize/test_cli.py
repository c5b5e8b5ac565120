"""octet quantize's options and failure modes on mnist-8:
 - statistics saved from two halves of the calibration set and merged equal
   the statistics of the whole set exactly, and quantizing from them gives
   the byte-identical model;
 - statistics of another model are refused;
 - NaN in calibration data is an error naming the file and sample, or a
   warning with --ignore-nonfinite; an empty data set is an error;
 - --config overrides by node name, op type and regex win over --precision;
 - budget:DB keeps tensors in FP32 until the output SQNR reaches DB;
 - every method, scheme and granularity produces a model ONNX Runtime runs
   with top-1 >= 98.5% on 1000 evaluation images;
 - the JSON report lists every quantized tensor."""
import json
import os
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(__file__))
from qtest import *  # noqa: E402,F403

model = os.path.join(MODELS, "mnist-8", "model.onnx")
calib = np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))
images, labels = mnist_eval()
images, labels = images[:1000], labels[:1000]


def top1(path):
    y = np.concatenate(ort_outputs(path, [{"Input3": images[i:i + 1]} for i in range(len(labels))]))
    return float(np.mean(y.reshape(len(labels), -1).argmax(1) == labels))


def tensors(stats_path):
    with open(stats_path) as f:
        return {t["name"]: t for t in json.load(f)["tensors"]}


with tempfile.TemporaryDirectory() as tmp:
    p = lambda name: os.path.join(tmp, name)  # noqa: E731
    np.save(p("all.npy"), calib)
    np.save(p("a.npy"), calib[:400])
    np.save(p("b.npy"), calib[400:])

    # --- statistics: save, merge, load -----------------------------------
    octet("quantize", model, "--calib", p("all.npy"), "-o", p("full.onnx"),
          "--save-stats", p("all.json"), "--progress=none")
    octet("quantize", model, "--calib", p("a.npy"), "-o", p("qa.onnx"),
          "--save-stats", p("a.json"), "--progress=none")
    octet("quantize", model, "--calib", p("b.npy"), "-o", p("qb.onnx"),
          "--save-stats", p("b.json"), "--progress=none")
    octet("stats", "merge", p("a.json"), p("b.json"), "-o", p("merged.json"))
    merged, whole = tensors(p("merged.json")), tensors(p("all.json"))
    check(merged == whole, "merged statistics of two halves equal the whole set's exactly")
    check(json.load(open(p("merged.json")))["samples"] == 1000, "merged sample count is 1000")
    octet("quantize", model, "--calib", p("all.npy"), "-o", p("from_stats.onnx"),
          "--load-stats", p("merged.json"), "--progress=none")
    check(open(p("from_stats.onnx"), "rb").read() == open(p("full.onnx"), "rb").read(),
          "quantizing from merged statistics gives the byte-identical model")
    sq = os.path.join(MODELS, "squeezenet1.1", "model.onnx")
    photos = np.load(os.path.join(DATA, "imagenet-photos", "calib_f32.npy"))[:2]
    np.save(p("photos.npy"), photos)
    r = octet("quantize", sq, "--calib", p("photos.npy"), "-o", p("sq.onnx"),
              "--load-stats", p("all.json"), "--progress=none", expect=2)
    check("another graph" in r.stderr and "all.json" in r.stderr,
          "statistics of another model are refused, naming the file")
    check(not os.path.exists(p("sq.onnx")), "no output written when statistics are refused")

    # --- bad calibration data -------------------------------------------
    bad = calib[:10].copy()
    bad[3, 0, 5, 5] = np.nan
    np.save(p("nan.npy"), bad)
    r = octet("quantize", model, "--calib", p("nan.npy"), "-o", p("nan.onnx"),
              "--progress=none", expect=2)
    check("nan.npy" in r.stderr and "sample 3" in r.stderr and "NaN" in r.stderr,
          "NaN in calibration data: error naming the file and sample")
    check(not os.path.exists(p("nan.onnx")), "no output written for NaN data")
    r = octet("quantize", model, "--calib", p("nan.npy"), "-o", p("nan.onnx"),
              "--progress=none", "--ignore-nonfinite")
    check("warning" in r.stderr and "sample 3" in r.stderr and os.path.exists(p("nan.onnx")),
          "--ignore-nonfinite: a warning, the sample skipped, a model written")
    np.save(p("empty.npy"), calib[:0])
    r = octet("quantize", model, "--calib", p("empty.npy"), "-o", p("empty.onnx"),
              "--progress=none", expect=2)
    check("empty.npy" in r.stderr, "an empty calibration set is an error naming the file")
    r = octet("quantize", model, "--calib", p("missing.npy"), "-o", p("x.onnx"),
              "--progress=none", expect=2)
    check("missing.npy" in r.stderr, "a missing calibration file is an error naming it")
    r = octet("quantize", model, "--calib", p("all.npy"), "-o", model, "--progress=none",
              expect=None)
    check(r.returncode != 0, "the output may not overwrite the input model")

    # --- budget: FP32 for the most sensitive tensors until the target -----
    r = octet("quantize", model, "--calib", p("a.npy"), "-o", p("budget.onnx"),
              "--precision=budget:45", "--report", p("budget.json"), "--progress=lines")
    rep = json.load(open(p("budget.json")))
    kept = [t for t in rep["tensors"] if t["reason"].startswith("budget: kept FP32")]
    out_db = rep["outputs"][0]["sqnr_db"]
    check(len(kept) >= 1 and all(t["dtype"] == "f32" for t in kept),
          f"budget:45 keeps {len(kept)} tensor(s) in FP32, with the reason")
    check(out_db >= 45.0, f"budget:45 reaches {out_db:.2f} dB on the calibration data")
    octet("quantize", model, "--calib", p("a.npy"), "-o", p("int8.onnx"),
          "--report", p("int8.json"), "--progress=none")
    int8_db = json.load(open(p("int8.json")))["outputs"][0]["sqnr_db"]
    check(int8_db < 45.0, f"plain INT8 is below the budget ({int8_db:.2f} dB), so the budget did work")

    # --- per-node overrides ---------------------------------------------
    with open(p("cfg.json"), "w") as f:
        json.dump({"overrides": [{"node": "Convolution110", "precision": "fp32"},
                                 {"op_type": "Gemm", "precision": "fp8"},
                                 {"regex": "^Convolution2", "precision": "fp8"}]}, f)
    octet("quantize", model, "--calib", p("a.npy"), "-o", p("cfg.onnx"), "--config", p("cfg.json"),
          "--report", p("cfg_report.json"), "--progress=none")
    by_name = {t["tensor"]: t for t in json.load(open(p("cfg_report.json")))["tensors"]}
    check(by_name["Parameter87"]["dtype"] == "f32" and "Convolution110" in by_name["Parameter87"]["reason"],
          "config: node override keeps Convolution110's weight FP32, with the rule as reason")
    check(by_name["ReLU114_Output_0"]["dtype"] == "f32", "config: and its output activation FP32")
    check(by_name["Parameter193_reshape1"]["dtype"] == "f8e4m3fn", "config: op_type Gemm -> FP8 weight")
    check(by_name["Parameter5"]["dtype"] == "f8e4m3fn", "config: regex ^Convolution2 -> FP8 weight")
    check(by_name["Input3"]["dtype"] == "u8", "config: other tensors keep the default INT8")
    onnx.checker.check_model(onnx.load(p("cfg.onnx")), full_check=True)
    check(top1(p("cfg.onnx")) >= 0.985, "config: the overridden model keeps its accuracy")
    with open(p("bad_cfg.json"), "w") as f:
        json.dump({"overrides": [{"node": "x", "precison": "fp32"}]}, f)
    r = octet("quantize", model, "--calib", p("a.npy"), "-o", p("bad.onnx"), "--config",
              p("bad_cfg.json"), "--progress=none", expect=2)
    check("bad_cfg.json" in r.stderr and "precison" in r.stderr,
          "config: a misspelt key is an error naming the file and the key")

    # --- methods, schemes, granularities --------------------------------
    variants = [
        ["--method=percentile", "--percentile=99.99"],
        ["--method=entropy"],
        ["--method=mse"],
        ["--activations=s8"],
        ["--weights=per-tensor"],
        ["--block-size=32"],
        ["--precision=fp8", "--fp8=e5m2"],
        ["--exclude-op-types=MatMul,Gemm"],
        ["--exclude-nodes=^Convolution110$"],
    ]
    for v in variants:
        out = p("variant.onnx")
        octet("quantize", model, "--calib", p("a.npy"), "-o", out, "--progress=none",
              "--report", p("variant.json"), *v)
        q = onnx.load(out)
        onnx.checker.check_model(q, full_check=True)
        acc = top1(out)
        print(f"{' '.join(v)}: opset {q.opset_import[0].version}, top-1 {acc:.2%}")
        check(acc >= 0.985, f"{' '.join(v)}: top-1 {acc:.2%} >= 98.5%")
        rep = json.load(open(p("variant.json")))
        kinds = {t["kind"] for t in rep["tensors"]}
        check("activation" in kinds, f"{' '.join(v)}: report lists activations")
        if "--block-size=32" in v:
            check(q.opset_import[0].version >= 21 and
                  any(a.name == "block_size" for n in q.graph.node for a in n.attribute),
                  "blocked weights: opset 21 and a block_size attribute")
        if "--fp8=e5m2" in v:
            check(any(i.data_type == onnx.TensorProto.FLOAT8E5M2 for i in q.graph.initializer),
                  "E5M2 weights stored as float8 e5m2")
        if "--exclude-op-types=MatMul,Gemm" in v:
            check(not any(t["tensor"].startswith("Parameter193") for t in rep["tensors"]),
                  "excluded op types keep their weights in FP32")
        if "--exclude-nodes=^Convolution110$" in v:
            check(not any(t["tensor"] == "Parameter87" for t in rep["tensors"]),
                  "an excluded node keeps its weights in FP32")
finish()
