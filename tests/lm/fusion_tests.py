"""The transformer pattern passes (fuse_rmsnorm, fuse_rotary, fuse_attention,
fuse_gelu; issue 14) against oracles that share no code with Octet:

  stories   stories260k's prefill and decode graphs through `octet opt` with
            the three passes: every RMSNorm, rotary and attention block of
            the model becomes one RMSNormalization / RotaryEmbedding /
            Attention node (counted; no Pow, Softmax, Neg left), and the
            fused graph's outputs equal the unfused graph's in ONNX Runtime
            (which runs both), in `octet run` and in `octet run --jit`
            (1e-5 relative to the largest |output|)
  greedy    `octet generate` on the fused decode graph (and fused prefill
            for a text prompt) gives the 200 greedy ids of llama2.c's numpy
            reference, interpreted and with --jit
  synthetic small graphs written the other ways exporters write these
            blocks (Mul(x,x) and Reciprocal in RMSNorm, a gamma-less one, a
            multi-head attention with Div scale and a 4-D mask, rotary from
            Gather + Unsqueeze of position ids) are fused and, interpreted
            and with --jit, equal ONNX Runtime's outputs of the unfused graph, and so are GeLUs in the
            erf form (PyTorch's association, inside a GeGLU) and the tanh
            form (Pow or x*x*x); near-misses (0.6 for 0.5, an inner
            value read elsewhere, a mean over a middle axis, a rotary table whose halves
            differ) are left alone
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_tests  # noqa: E402  (skips the test when ../shared is absent)
from lm_tests import MD, TOK, check, ids_of, octet, reference_greedy  # noqa: E402

PASSES = "--passes=shape_infer,fuse_rmsnorm,fuse_rotary,fuse_attention,fuse_gelu"
REL = 1e-5


def op_counts(path):
    counts = {}
    for n in onnx.load(path).graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def fuse(src, dst):
    res = octet("opt", PASSES, src, "-o", dst)
    check(res.returncode == 0, f"octet opt {PASSES} {os.path.basename(src)} exits 0 "
          f"({res.stderr.decode()[-300:]})")
    return res.returncode == 0


def ort_run(path, feed):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return {o.name: v for o, v in zip(s.get_outputs(), s.run(None, feed))}


def octet_run(path, feed, tmp, jit):
    args = []
    for k, v in feed.items():
        p = os.path.join(tmp, f"in_{len(args)}.npy")
        np.save(p, v)
        args += ["--input", f"{k}={p}"]
    out = os.path.join(tmp, "out_jit" if jit else "out")
    res = octet("run", path, *args, "--output-dir", out, *(["--jit"] if jit else []))
    if res.returncode != 0:
        return None, res.stderr.decode()[-400:]
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out)
            if f.endswith(".npy")}, ""


def rel(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b)) / max(float(np.max(np.abs(b))), 1e-30))


def compare(what, got, want):
    worst = max(rel(got[k.replace("/", "_")] if k.replace("/", "_") in got else got[k], v)
                for k, v in want.items())
    check(worst <= REL, f"{what}: within {REL:g} of ONNX Runtime on the unfused graph "
          f"(largest {worst:.2e})")


def feed_for(path, rng):
    m = onnx.load(path, load_external_data=False)
    feed = {}
    for i in m.graph.input:
        dims = [d.dim_value for d in i.type.tensor_type.shape.dim]
        if i.name == "input_ids":
            feed[i.name] = rng.integers(3, 512, dims).astype(np.int64)
        elif i.name == "position_ids":
            feed[i.name] = np.full(dims, 100, np.int64)
        elif i.name == "attention_mask":
            mask = np.zeros(dims, np.int64)
            mask[0, :100] = 1
            mask[0, -1] = 1
            feed[i.name] = mask
        else:
            feed[i.name] = rng.standard_normal(dims).astype(np.float32)
    return feed


def test_stories():
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        for g in ("prefill_s64", "decode_p256"):
            src, dst = os.path.join(MD, g + ".onnx"), os.path.join(tmp, g + "_fused.onnx")
            if not fuse(src, dst):
                continue
            c = op_counts(dst)
            check(c.get("RMSNormalization") == 11 and c.get("RotaryEmbedding") == 10 and
                  c.get("Attention") == 5 and not any(c.get(k) for k in ("Pow", "Softmax", "Neg",
                                                                          "Sqrt", "Slice")),
                  f"{g}: 11 RMSNormalization, 10 RotaryEmbedding, 5 Attention, no Pow/Sqrt/"
                  f"Slice/Neg/Softmax left ({c})")
            opset = [o.version for o in onnx.load(dst).opset_import if o.domain in ("", "ai.onnx")]
            check(opset == [23], f"{g}: the fused model imports opset 23 ({opset})")
            feed = feed_for(src, rng)
            want = ort_run(src, feed)
            compare(f"{g} fused, ONNX Runtime", ort_run(dst, feed), want)
            for jit in (False, True):
                got, err = octet_run(dst, feed, tmp, jit)
                check(got is not None, f"{g} fused: octet run{' --jit' if jit else ''} exits 0 {err}")
                if got is not None:
                    compare(f"{g} fused, octet run{' --jit' if jit else ''}", got, want)


def test_greedy(jit):
    flags = ["--jit"] if jit else []
    with tempfile.TemporaryDirectory() as tmp:
        dec = os.path.join(tmp, "decode_fused.onnx")
        pre = os.path.join(tmp, "prefill_fused.onnx")
        if not (fuse(os.path.join(MD, "decode_p256.onnx"), dec) and
                fuse(os.path.join(MD, "prefill_s64.onnx"), pre)):
            return
        want = reference_greedy(200)
        res = octet("generate", dec, "--prompt-ids", "1", "-n", 200, *flags)
        got = ids_of(res) if res.returncode == 0 else []
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
        check(got == want, f"fused decode graph{' (--jit)' if jit else ''}: 200 greedy ids "
              f"equal llama2.c's reference (first difference at {first}; "
              f"{res.stderr.decode()[-200:]})")
        res = octet("generate", dec, "--tokenizer", TOK, "--prompt", "Once upon a time",
                    "--prefill", pre, "-n", 30, *flags)
        ref = octet("generate", os.path.join(MD, "decode_p256.onnx"), "--tokenizer", TOK,
                    "--prompt", "Once upon a time", "--prefill", os.path.join(MD, "prefill_s64.onnx"),
                    "-n", 30)
        check(res.returncode == 0 and res.stdout == ref.stdout and len(res.stdout) > 100,
              "a text prompt through the fused prefill and decode graphs gives the unfused "
              "graphs' text")


# ---- synthetic graphs ---------------------------------------------------------

def model(nodes, inputs, outputs, inits, opset=21):
    g = helper.make_graph(nodes, "g", inputs, outputs,
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def rms_graph(kind, rng):
    """x [2,5,16] -> RMSNorm written as `kind`."""
    x = f32("x", [2, 5, 16])
    inits = {"two": np.array(2.0, np.float32),
             "eps": np.array(1e-6, np.float32),
             "axes": np.array([1 if kind == "middle-axis" else -1], np.int64),
             "g": rng.standard_normal(16).astype(np.float32)}
    sq = (helper.make_node("Mul", ["x", "x"], ["sq"]) if kind == "mulxx"
          else helper.make_node("Pow", ["x", "two"], ["sq"]))
    nodes = [sq, helper.make_node("ReduceMean", ["sq", "axes"], ["ms"], keepdims=1),
             helper.make_node("Add", ["eps", "ms"], ["a"]),
             helper.make_node("Sqrt", ["a"], ["s"])]
    if kind == "mulxx":
        nodes += [helper.make_node("Reciprocal", ["s"], ["r"]),
                  helper.make_node("Mul", ["r", "x"], ["n"])]
    else:
        nodes += [helper.make_node("Div", ["x", "s"], ["n"])]
    outs = [f32("y", None)]
    if kind == "nogamma":
        nodes[-1].output[0] = "y"
    else:
        nodes += [helper.make_node("Mul", ["g", "n"], ["y"])]
    if kind == "leak":
        outs.append(f32("ms", None))   # an inner value is a graph output
    return model(nodes, [x], outs, inits), {"x": rng.standard_normal((2, 5, 16)).astype(np.float32)}


def rope_tables(p, d, halves_equal=True):
    inv = 1.0 / (10000 ** (np.arange(0, d, 2) / d))
    ang = np.arange(p)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    cos = np.concatenate([cos, cos if halves_equal else cos * 0.5], 1).astype(np.float32)
    sin = np.concatenate([sin, sin], 1).astype(np.float32)
    return cos, sin


def rope_graph(kind, rng):
    """x [1,4,6,8] rotated with tables gathered by position ids [1,6] and
    unsqueezed at axis 1 (Hugging Face's form)."""
    cos, sin = rope_tables(32, 8, kind != "unequal")
    inits = {"cos_t": cos, "sin_t": sin, "ax1": np.array([1], np.int64),
             "z": np.array([0], np.int64), "h": np.array([4], np.int64),
             "e": np.array([8], np.int64), "m1": np.array([-1], np.int64)}
    nodes = [helper.make_node("Gather", ["cos_t", "pos"], ["c0"], axis=0),
             helper.make_node("Gather", ["sin_t", "pos"], ["s0"], axis=0),
             helper.make_node("Unsqueeze", ["c0", "ax1"], ["c"]),
             helper.make_node("Unsqueeze", ["s0", "ax1"], ["s"]),
             helper.make_node("Slice", ["x", "z", "h", "m1"], ["x1"]),
             helper.make_node("Slice", ["x", "h", "e", "m1"], ["x2"]),
             helper.make_node("Neg", ["x2"], ["nx2"]),
             helper.make_node("Concat", ["nx2", "x1"], ["rot"], axis=-1),
             helper.make_node("Mul", ["c", "x"], ["a"]),
             helper.make_node("Mul", ["rot", "s"], ["b"]),
             helper.make_node("Add", ["b", "a"], ["y"])]
    ins = [f32("x", [1, 4, 6, 8]), helper.make_tensor_value_info("pos", TensorProto.INT64, [1, 6])]
    feed = {"x": rng.standard_normal((1, 4, 6, 8)).astype(np.float32),
            "pos": np.array([[3, 4, 5, 9, 10, 31]], np.int64)}
    return model(nodes, ins, [f32("y", None)], inits), feed


def mha_graph(rng):
    """Multi-head attention, q [2,3,5,8], k/v [2,3,7,8], Div by sqrt(8) and a
    4-D additive mask [2,1,5,7]."""
    inits = {"sd": np.array(np.sqrt(8.0), np.float32)}
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["qk"]),
             helper.make_node("Div", ["qk", "sd"], ["sc"]),
             helper.make_node("Add", ["mask", "sc"], ["sm_in"]),
             helper.make_node("Softmax", ["sm_in"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"])]
    ins = [f32("q", [2, 3, 5, 8]), f32("k", [2, 3, 7, 8]), f32("v", [2, 3, 7, 8]),
           f32("mask", [2, 1, 5, 7])]
    mask = np.where(rng.random((2, 1, 5, 7)) < 0.3, -1e9, 0.0).astype(np.float32)
    mask[..., 0] = 0.0
    feed = {"q": rng.standard_normal((2, 3, 5, 8)).astype(np.float32),
            "k": rng.standard_normal((2, 3, 7, 8)).astype(np.float32),
            "v": rng.standard_normal((2, 3, 7, 8)).astype(np.float32), "mask": mask}
    return model(nodes, ins, [f32("y", None)], inits), feed


def gelu_graph(kind, rng):
    """x [3,40] -> GeLU written out as `kind`; 'geglu' multiplies it by a
    second input, 'bad-half' uses 0.6 for 0.5 (not a GeLU)."""
    inits = {"half": np.array(0.6 if kind == "bad-half" else 0.5, np.float32),
             "one": np.array(1.0, np.float32), "sqrt2": np.array(1.4142135, np.float32),
             "three": np.array(3.0, np.float32), "c3": np.array(0.044715, np.float32),
             "k": np.array(0.7978846, np.float32)}
    if kind.startswith("tanh"):
        if kind == "tanh-pow":
            cube = [helper.make_node("Pow", ["x", "three"], ["x3"])]
        else:
            cube = [helper.make_node("Mul", ["x", "x"], ["xx"]),
                    helper.make_node("Mul", ["xx", "x"], ["x3"])]
        nodes = cube + [helper.make_node("Mul", ["c3", "x3"], ["t3"]),
                        helper.make_node("Add", ["x", "t3"], ["inner"]),
                        helper.make_node("Mul", ["inner", "k"], ["u"]),
                        helper.make_node("Tanh", ["u"], ["th"]),
                        helper.make_node("Add", ["th", "one"], ["p1"]),
                        helper.make_node("Mul", ["half", "x"], ["hx"]),
                        helper.make_node("Mul", ["hx", "p1"], ["y"])]
    else:   # PyTorch's erf form: x * (1 + erf(x / sqrt 2)) * 0.5
        nodes = [helper.make_node("Div", ["x", "sqrt2"], ["d"]),
                 helper.make_node("Erf", ["d"], ["e"]),
                 helper.make_node("Add", ["one", "e"], ["p1"]),
                 helper.make_node("Mul", ["x", "p1"], ["xp"]),
                 helper.make_node("Mul", ["xp", "half"], ["y" if kind != "geglu" else "gl"])]
        if kind == "geglu":
            nodes.append(helper.make_node("Mul", ["gl", "up"], ["y"]))
    ins = [f32("x", [3, 40])] + ([f32("up", [3, 40])] if kind == "geglu" else [])
    feed = {"x": (rng.standard_normal((3, 40)) * 3).astype(np.float32)}
    if kind == "geglu":
        feed["up"] = rng.standard_normal((3, 40)).astype(np.float32)
    return model(nodes, ins, [f32("y", None)], inits), feed


def test_synthetic():
    rng = np.random.default_rng(5)
    cases = [("rms-mulxx-reciprocal", *rms_graph("mulxx", rng), "RMSNormalization", True),
             ("rms-without-gamma", *rms_graph("nogamma", rng), "RMSNormalization", True),
             ("rms-inner-value-is-output", *rms_graph("leak", rng), "RMSNormalization", False),
             ("rms-over-a-middle-axis", *rms_graph("middle-axis", rng), "RMSNormalization", False),
             ("rope-gather-unsqueeze", *rope_graph("hf", rng), "RotaryEmbedding", True),
             ("rope-unequal-halves", *rope_graph("unequal", rng), "RotaryEmbedding", False),
             ("mha-div-4d-mask", *mha_graph(rng), "Attention", True),
             ("gelu-erf-pytorch", *gelu_graph("erf", rng), "Gelu", True),
             ("gelu-erf-in-geglu", *gelu_graph("geglu", rng), "Gelu", True),
             ("gelu-tanh-pow", *gelu_graph("tanh-pow", rng), "Gelu", True),
             ("gelu-tanh-xxx", *gelu_graph("tanh-xxx", rng), "Gelu", True),
             ("gelu-wrong-half", *gelu_graph("bad-half", rng), "Gelu", False)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, m, feed, op, fused in cases:
            src, dst = os.path.join(tmp, name + ".onnx"), os.path.join(tmp, name + "_f.onnx")
            onnx.save(m, src)
            if not fuse(src, dst):
                continue
            n = op_counts(dst).get(op, 0)
            check(n == (1 if fused else 0), f"{name}: {'one' if fused else 'no'} {op} ({n})")
            want = ort_run(src, feed)
            for jit in (False, True) if fused else (False,):
                how = "octet run" + (" --jit" if jit else "")
                got, err = octet_run(dst, feed, tmp, jit)
                check(got is not None, f"{name}: {how} on the result exits 0 {err}")
                if got is not None:
                    compare(f"{name}: {how}", got, want)
            if fused:
                compare(f"{name}: ONNX Runtime on the fused graph", ort_run(dst, feed), want)


def main():
    what = sys.argv[1]
    if what == "stories":
        test_stories()
    elif what in ("greedy", "greedy-jit"):
        test_greedy(what.endswith("jit"))
    elif what == "synthetic":
        test_synthetic()
    else:
        sys.exit(f"unknown test {what}")
    print(f"{lm_tests.checks - len(lm_tests.failures)}/{lm_tests.checks} checks passed")
    sys.exit(1 if lm_tests.failures else 0)


if __name__ == "__main__":
    main()
