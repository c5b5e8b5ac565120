"""CTest entry codegen_transformer_block_matches_onnxruntime: a small
decoder block built with onnx.helper at opset 23 -- RMSNormalization, Q/K/V
projections, RotaryEmbedding on Q and K (3-D form, position_ids, partial
and interleaved rotation), grouped-query Attention (4 query heads on 2 kv
heads, causal, with past_key / past_value and present outputs), an output
projection -- run by ONNX Runtime (the oracle, which implements these ops),
by Octet's interpreter (`octet run`), JIT-compiled (`octet run --jit`) and
compiled ahead of time to a shared library run through ctypes.  Every
output must match ONNX Runtime's within 1e-5 relative to its magnitude.
One-node models cover a broadcast RMSNorm scale, float16 RMSNorm, 4-D
rotary without position ids, a 4-D boolean mask, qk_matmul_output
mode 0 with softcap, and two float32 Attention nodes large enough to
span several GEMM tasks and K blocks (causal GQA with 80 rows, 72 / 40
head sizes; 3-D with 300 past keys and an additive mask; causal 3-D in
blocks of query rows with a past and a boolean mask), which the compile
report must show on octk_sgemm.  The causal block
also compiles with a symbolic batch (NAME_run_dims).
A second variant swaps the causal flag for an additive attention mask and
softcap to cover those paths.  Last, `octet quantize` on the causal block
must succeed, put Q/DQ around the MatMuls and leave the three ops in float,
and the QDQ model must run in Octet (interpreted and JIT) as in ONNX
Runtime.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cgutil  # noqa: E402
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)

B, S, E, HQ, HKV, D, PAST, MAXPOS, ROT = 2, 5, 32, 4, 2, 8, 3, 16, 4
RTOL = 1e-5


def build(path, variant, sym=False):
    """Writes the block (variant causal or mask; with sym, axis 0 of every
    input and output is the symbolic batch N) and returns its feeds."""
    n = "N" if sym else B
    rng = np.random.default_rng(23)
    inv = 1.0 / (10000 ** (np.arange(0, ROT, 2) / ROT))
    ang = np.arange(MAXPOS)[:, None] * inv[None, :]
    inits = [
        numpy_helper.from_array(rng.uniform(0.5, 1.5, E).astype(np.float32), "gamma"),
        numpy_helper.from_array((rng.standard_normal((E, HQ * D)) / 4).astype(np.float32), "wq"),
        numpy_helper.from_array((rng.standard_normal((E, HKV * D)) / 4).astype(np.float32), "wk"),
        numpy_helper.from_array((rng.standard_normal((E, HKV * D)) / 4).astype(np.float32), "wv"),
        numpy_helper.from_array((rng.standard_normal((HQ * D, E)) / 4).astype(np.float32), "wo"),
        numpy_helper.from_array(np.cos(ang).astype(np.float32), "cos"),
        numpy_helper.from_array(np.sin(ang).astype(np.float32), "sin"),
    ]
    attn_inputs = ["qr", "kr", "v", "mask" if variant == "mask" else "", "past_key", "past_value"]
    attn_attrs = dict(q_num_heads=HQ, kv_num_heads=HKV)
    if variant == "causal":
        attn_attrs["is_causal"] = 1
    else:
        attn_attrs["softcap"] = 2.0
        attn_attrs["scale"] = 0.25
    nodes = [
        helper.make_node("RMSNormalization", ["x", "gamma"], ["xn"], epsilon=1e-5),
        helper.make_node("MatMul", ["xn", "wq"], ["q"]),
        helper.make_node("MatMul", ["xn", "wk"], ["k"]),
        helper.make_node("MatMul", ["xn", "wv"], ["v"]),
        helper.make_node("RotaryEmbedding", ["q", "cos", "sin", "pos"], ["qr"], num_heads=HQ,
                         rotary_embedding_dim=ROT, interleaved=1),
        helper.make_node("RotaryEmbedding", ["k", "cos", "sin", "pos"], ["kr"], num_heads=HKV,
                         rotary_embedding_dim=ROT, interleaved=1),
        helper.make_node("Attention", attn_inputs, ["y", "present_key", "present_value"],
                         **attn_attrs),
        helper.make_node("MatMul", ["y", "wo"], ["out"]),
    ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, S, E]),
        helper.make_tensor_value_info("pos", TensorProto.INT64, [n, S]),
        helper.make_tensor_value_info("past_key", TensorProto.FLOAT, [n, HKV, PAST, D]),
        helper.make_tensor_value_info("past_value", TensorProto.FLOAT, [n, HKV, PAST, D]),
    ]
    if variant == "mask":
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [S, PAST + S]))
    outputs = [
        helper.make_tensor_value_info("out", TensorProto.FLOAT, [n, S, E]),
        helper.make_tensor_value_info("present_key", TensorProto.FLOAT, [n, HKV, PAST + S, D]),
        helper.make_tensor_value_info("present_value", TensorProto.FLOAT, [n, HKV, PAST + S, D]),
    ]
    graph = helper.make_graph(nodes, "block_" + variant, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)],
                              ir_version=10)  # what ONNX Runtime 1.30 reads
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    feeds = [
        ("x", rng.standard_normal((B, S, E)).astype(np.float32)),
        ("pos", np.tile(np.arange(PAST, PAST + S, dtype=np.int64), (B, 1))),
        ("past_key", rng.standard_normal((B, HKV, PAST, D)).astype(np.float32)),
        ("past_value", rng.standard_normal((B, HKV, PAST, D)).astype(np.float32)),
    ]
    if variant == "mask":
        m = rng.standard_normal((S, PAST + S)).astype(np.float32)
        m[:, -2:][np.triu_indices(S, 1, 2)] = -np.inf  # some keys masked out
        feeds.append(("mask", m))
    return feeds


def main():
    import onnxruntime as ort
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for variant in ("causal", "mask"):
            path = os.path.join(d, "block_%s.onnx" % variant)
            feeds = build(path, variant)
            sess = ort_int8.session(ort, path)
            want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, dict(feeds))))
            runs = {}
            for how, extra in (("interpreter", ()), ("jit", ("--jit",))):
                p, outs = cgutil.run_octet(path, feeds, extra)
                if outs is None:
                    print("FAIL %s %s: exit %d: %s" % (variant, how, p.returncode,
                                                        p.stderr.strip()[-300:]))
                    failures += 1
                    continue
                runs[how] = outs
            so = cgutil.compile_so(path, d, "block_" + variant)
            sig, outs = cgutil.run_so(so, "block_" + variant, [a for _, a in feeds])
            runs["compiled .so"] = {o["name"]: a for o, a in zip(sig["outputs"], outs)}
            for how, outs in runs.items():
                for name, w in want.items():
                    got = outs.get(cgutil.safe_name(name), outs.get(name))
                    ok, msg = (False, "missing") if got is None else cgutil.close(got, w, RTOL)
                    print("%s %s %s %s: %s" % ("ok  " if ok else "FAIL", variant, how, name, msg))
                    failures += not ok
        failures += check_quantized(ort, d)
        failures += check_symbolic_batch(ort, d)
        failures += check_one_node(d)
    return 1 if failures else 0


def one_node(path, op, ins, attrs, n_out=1):
    """A one-node opset-23 model of op on inputs [(name, array)]; returns
    the feeds."""
    tp = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
          np.dtype(np.int64): TensorProto.INT64, np.dtype(np.bool_): TensorProto.BOOL}
    node = helper.make_node(op, [n for n, _ in ins], ["y%d" % k for k in range(n_out)], **attrs)
    g = helper.make_graph([node], op, [helper.make_tensor_value_info(n, tp[a.dtype], a.shape)
                                       for n, a in ins],
                          [helper.make_tensor_value_info("y%d" % k, tp[ins[0][1].dtype], None)
                           for k in range(n_out)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)], ir_version=10),
              path)
    return ins


def check_one_node(d):
    """Failures of the one-node stage: forms the block and the node tests
    leave out, against ONNX Runtime (onnx.reference where ORT refuses the
    form), interpreted and JIT-compiled."""
    rng = np.random.default_rng(5)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    cases = [
        ("rms_bcast_scale", "RMSNormalization",
         [("x", f32(2, 3, 4)), ("s", f32(1, 4))], dict(axis=1), 1, RTOL),
        ("rms_fp16", "RMSNormalization",
         [("x", f32(2, 3, 8).astype(np.float16)), ("s", f32(8).astype(np.float16))], {}, 1,
         2e-3),
        ("rope_4d_no_pos_partial", "RotaryEmbedding",
         [("x", f32(2, 3, 4, 8)), ("c", f32(2, 4, 2)), ("s", f32(2, 4, 2))],
         dict(rotary_embedding_dim=4), 1, RTOL),
        ("attn_bool_mask_4d_gqa", "Attention",
         [("q", f32(2, 4, 3, 8)), ("k", f32(2, 2, 5, 8)), ("v", f32(2, 2, 5, 6)),
          ("m", rng.random((2, 1, 3, 5)) > 0.3)], dict(scale=0.5), 1, RTOL),
        # the spec's mode 0: scores before the softcap (onnx.reference caps them)
        ("attn_qk_mode0_softcap", "Attention",
         [("q", f32(1, 2, 3, 4)), ("k", f32(1, 2, 5, 4)), ("v", f32(1, 2, 5, 4))],
         dict(softcap=1.0, qk_matmul_output_mode=0), 4, RTOL),
        # float32 Attention on the GEMM kernel (check_f32_path): more query
        # rows than a 72-row task, more keys than a 64-column task, head
        # sizes off the 16-column panels, causal GQA
        ("attn_f32_gemm_blocks_causal_gqa", "Attention",
         [("q", f32(1, 4, 80, 72)), ("k", f32(1, 2, 80, 72)), ("v", f32(1, 2, 80, 40))],
         dict(is_causal=1), 1, RTOL),
        # 3-D, 3 query heads on 1, 300 past keys (P V's sum split in two
        # 256-key blocks), an additive 2-D mask, present outputs
        ("attn_f32_3d_long_past_mask", "Attention",
         [("q", f32(2, 3, 3 * 16)), ("k", f32(2, 3, 16)), ("v", f32(2, 3, 24)),
          ("m", f32(3, 303)), ("pk", f32(2, 1, 300, 16)), ("pv", f32(2, 1, 300, 24))],
         dict(q_num_heads=3, kv_num_heads=1, scale=0.2), 3, RTOL),
        # causal in blocks of 32 query rows (the last one short), each on
        # the keys up to its frontier: 3-D, GQA, 20 past keys, a bool mask
        ("attn_f32_causal_blocks_3d_past", "Attention",
         [("q", f32(1, 70, 4 * 16)), ("k", f32(1, 70, 2 * 16)), ("v", f32(1, 70, 2 * 8)),
          ("m", rng.random((70, 90)) > 0.2), ("pk", f32(1, 2, 20, 16)),
          ("pv", f32(1, 2, 20, 8))],
         dict(q_num_heads=4, kv_num_heads=2, is_causal=1), 1, RTOL),
        # not causal: one GEMM for both query heads of a kv head (80 rows,
        # two 72-row tasks; 90 keys), softcap
        ("attn_f32_group_many_rows_softcap", "Attention",
         [("q", f32(1, 4, 40, 24)), ("k", f32(1, 2, 90, 24)), ("v", f32(1, 2, 90, 20))],
         dict(softcap=3.0), 1, RTOL),
        # not causal, but 2048 x 2100 scores: more than the group path's
        # workspace bound, so blocks of 128 rows on every key
        ("attn_f32_blocks_long_scores", "Attention",
         [("q", f32(1, 1, 2048, 8)), ("k", f32(1, 1, 2100, 8)), ("v", f32(1, 1, 2100, 8))],
         dict(scale=0.3), 1, RTOL),
    ]
    failures = 0
    for name, op, ins, attrs, n_out, tol in cases:
        path = os.path.join(d, name + ".onnx")
        feeds = one_node(path, op, ins, attrs, n_out)
        if name.startswith("attn_f32_"):
            failures += check_f32_path(path, d, name)
        who, want = cgutil.oracle(path, feeds)
        for how, extra in (("interpreter", ()), ("jit", ("--jit",))):
            p, outs = cgutil.run_octet(path, feeds, extra)
            for k, w in enumerate(want):
                got = outs.get("y%d" % k) if outs else None
                ok, msg = (False, "exit %d: %s" % (p.returncode, p.stderr.strip()[-200:])) \
                    if got is None else cgutil.close(got, w, tol)
                print("%s one-node %s %s vs %s: %s" % ("ok  " if ok else "FAIL", name, how, who,
                                                        msg))
                failures += not ok
    return failures


def check_f32_path(path, d, name):
    """1 unless the compile report puts the model's Attention on octk_sgemm
    (the float32 path), in blocks of query rows if the case's name says
    blocks, else per group of query heads, so that the one-node case tests
    that path."""
    p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(d, name),
                        "--report", "-"], capture_output=True, text=True)
    line = [ln for ln in p.stdout.splitlines() if "\tAttention\t" in ln]
    path_word = "blocks" if "blocks" in name else "group"
    ok = p.returncode == 0 and len(line) == 1 and "octk_sgemm" in line[0] and \
        path_word in line[0]
    print("%s one-node %s takes the float32 GEMM path: %s" % ("ok  " if ok else "FAIL", name,
                                                            line or p.stderr.strip()[-200:]))
    return not ok


def check_symbolic_batch(ort, d):
    """Failures of the symbolic-batch stage: the causal block with batch N
    compiled without --input-shape (batch.c must prove the three ops keep
    the items apart) and run through NAME_run_dims at batch 2."""
    import test_symdims
    path = os.path.join(d, "block_sym.onnx")
    feeds = build(path, "causal", sym=True)
    sess = ort_int8.session(ort, path)
    want = sess.run(None, dict(feeds))
    so = cgutil.compile_so(path, d, "block_sym")
    sig, outs = test_symdims.run_dims(so, "block_sym", [a for _, a in feeds])
    failures = 0
    for spec, got, w in zip(sig["outputs"], outs, want):
        ok, msg = cgutil.close(got, w, RTOL)
        print("%s symbolic batch run_dims %s: %s" % ("ok  " if ok else "FAIL", spec["name"], msg))
        failures += not ok
    return failures


def check_quantized(ort, d):
    """Failures of the quantize stage (see the module docstring)."""
    path = os.path.join(d, "block_causal.onnx")
    feeds = build(path, "causal")
    cal = os.path.join(d, "cal.npz")
    # two samples: the feeds and half of them (an extra leading axis each)
    np.savez(cal, **{n: np.stack([a, a if a.dtype == np.int64 else a * np.float32(0.5)])
                     for n, a in feeds})
    qpath = os.path.join(d, "block_causal.qdq.onnx")
    p = subprocess.run([cgutil.OCTET, "quantize", path, "--calib", cal, "-o", qpath],
                       capture_output=True, text=True)
    if p.returncode:
        print("FAIL quantize: exit %d: %s" % (p.returncode, p.stderr.strip()[-300:]))
        return 1
    q = onnx.load(qpath)
    ops = [n.op_type for n in q.graph.node]
    producer = {o: n.op_type for n in q.graph.node for o in n.output}
    failures = 0
    for n in q.graph.node:
        if n.op_type == "MatMul" and not any(producer.get(i) == "DequantizeLinear"
                                             for i in n.input):
            print("FAIL quantize: MatMul %s reads no DequantizeLinear" % n.name)
            failures += 1
    for op in ("RMSNormalization", "RotaryEmbedding", "Attention"):
        if op not in ops:
            print("FAIL quantize: %s is gone from the QDQ model: %s" % (op, ops))
            failures += 1
    sess = ort_int8.session(ort, qpath)
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, dict(feeds))))
    for how, extra in (("interpreter", ()), ("jit", ("--jit",))):
        p, outs = cgutil.run_octet(qpath, feeds, extra)
        for name, w in want.items():
            got = outs.get(cgutil.safe_name(name)) if outs else None
            ok, msg = (False, "exit %d" % p.returncode) if got is None else \
                cgutil.close(got, w, RTOL)
            print("%s quantized %s %s: %s" % ("ok  " if ok else "FAIL", how, name, msg))
            failures += not ok
    return failures


if __name__ == "__main__":
    sys.exit(main())
