"""octet quantize --weights-only --weight-format=nvfp4|mxfp4|mxfp8|q8_0|q6_k|q4_k
(src/passes/quant_wo_lowbit.c, the block rows of src/ir/qformats.def).

A model with a Gather table [50, 172], a MatMul weight [172, 24] (K = 172:
every block size leaves a short last block; a column of zeros; an outlier
row) and a Gemm weight with transB=1 [16, 300] (two super-blocks, the second
short, for q6_k and q4_k), plus a Conv the block formats leave float.  For
each format:
 - the codes, scales, second-level scales and zero points in the written
   model equal a numpy implementation of the format written here from its
   definition (OCP MX v1.0 for mxfp4/mxfp8; NVIDIA's NVFP4 recipe; the
   llama.cpp block layouts for q8_0/q6_K/q4_K, with the rounding rules
   docs/formats.md states), bit for bit, with ml_dtypes doing the float4,
   float8 and float16 roundings;
 - the graph is the documented DequantizeLinear chain (element and scale
   types, axis, block_size, output_dtype, opset), and onnx.checker accepts
   it;
 - the dequantized weights as computed by Octet's interpreter equal
   onnx.reference's and the numpy reference's dequantization, and ONNX
   Runtime's where ORT implements the types (printed when it does not);
 - the model's outputs: the interpreter against onnx.reference, and the
   compiled model (`octet run --jit`, and `octet compile --emit=so` run
   through its signature) against the interpreter, within 1e-5 relative;
 - bad options (another block size, a scheme, --clip-search,
   --format=matmulnbits, per-tensor, a format no row has) are usage
   errors (exit 1, the project's code for a bad option) and write nothing.
Then --weight-scheme=sym-full (int8, int4, int2; quant_weightonly.c): the
dequantized weights equal ONNX Runtime's RTN rule written in numpy, and, with
../shared, stories260k's equal the weights of ORT's MatMulNBitsQuantizer
anchor exactly (skipped with a message without ../shared).
"""
import os
import subprocess
import sys
import tempfile

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OCTET = os.environ["OCTET"]
failures = []
F32 = np.float32


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def octet(*args):
    return subprocess.run([OCTET, *map(str, args)], capture_output=True, text=True)


# Each format's definition (the facts, not Octet's table): element type,
# block, code range, scale kind, and for two levels the blocks per
# second-level scale (0: the tensor), its type and the largest scale code.
FMT = {
    "nvfp4": dict(elem="fp4", block=16, scale="e4m3", levels=2, sup=0, sup_t="f32", smax=448),
    "mxfp4": dict(elem="fp4", block=32, scale="e8m0", levels=1),
    "mxfp8": dict(elem="e4m3", block=32, scale="e8m0", levels=1),
    "q8_0": dict(elem="int", qmin=-128, qmax=127, sym=True, block=32, scale="f16", levels=1),
    "q6_k": dict(elem="int", qmin=-32, qmax=31, sym=True, block=16, scale="int", levels=2,
                 sup=16, sup_t="f16", smax=127),
    "q4_k": dict(elem="int", qmin=0, qmax=15, sym=False, block=32, scale="int", levels=2,
                 sup=8, sup_t="f16", smax=63),
}
ONNX_T = {"nvfp4": (T.FLOAT4E2M1, T.FLOAT8E4M3FN, T.FLOAT), "mxfp4": (T.FLOAT4E2M1, T.FLOAT8E8M0, None),
          "mxfp8": (T.FLOAT8E4M3FN, T.FLOAT8E8M0, None), "q8_0": (T.INT8, T.FLOAT16, None),
          "q6_k": (T.INT8, T.INT8, T.FLOAT16), "q4_k": (T.UINT4, T.UINT8, T.FLOAT16)}
OPSET = {"nvfp4": 23, "mxfp4": 24, "mxfp8": 24, "q8_0": 23, "q6_k": 23, "q4_k": 23}
FMAX = {"fp4": 6.0, "e4m3": 448.0}
MLD = {"fp4": ml_dtypes.float4_e2m1fn, "e4m3": ml_dtypes.float8_e4m3fn}


def to_float(x, kind):
    """Round float32 x to float4 E2M1 / float8 E4M3FN (nearest even,
    saturating: clip first, as both round to their largest value) and back."""
    m = FMAX[kind]
    return np.clip(x, -m, m).astype(MLD[kind]).astype(F32)


def f16_scale(v):
    """float16, nearest even, at most 65504, never 0 (2^-24 instead)."""
    h = np.minimum(v, F32(65504)).astype(np.float16).astype(F32)
    return np.where(h > 0, h, F32(2.0 ** -24)).astype(F32)


def ref_format(w, axis, name):
    """The format applied to w blocked along axis: (codes as float32 values
    or ints, block scales s, stored scale values, second-level scales or
    None, zero points or None, dequantized w), arrays with the axis last."""
    d = FMT[name]
    wt = np.moveaxis(w, axis, -1)
    K, bs = wt.shape[-1], d["block"]
    nb = -(-K // bs)
    pad = np.zeros(wt.shape[:-1] + (nb * bs,), F32)
    pad[..., :K] = wt
    blk = pad.reshape(wt.shape[:-1] + (nb, bs))
    amax = np.abs(blk).max(-1)
    lo, hi = np.minimum(blk.min(-1), 0), np.maximum(blk.max(-1), 0)
    if d["elem"] != "int":
        t = (amax / F32(FMAX[d["elem"]])).astype(F32)
    elif d["sym"]:
        t = (amax / F32(d["qmax"])).astype(F32)
    else:
        t = ((hi - lo) / F32(d["qmax"] - d["qmin"])).astype(F32)
    sup = None
    if d["scale"] == "e8m0":  # OCP MX: largest power of two <= amax over the element's
        with np.errstate(divide="ignore"):
            e = np.floor(np.log2(amax.astype(np.float64))) - np.floor(np.log2(FMAX[d["elem"]]))
        e = np.where(amax > 0, np.clip(e, -127, 127), 0)
        s = np.exp2(e).astype(F32)
        stored = s
    elif d["scale"] == "f16":
        s = stored = f16_scale(t)
    else:
        if d["sup"] == 0:
            groups = t.reshape(-1)[None, :]
            gmax = groups.max(-1)
        else:
            ng = -(-nb // d["sup"])
            gp = np.zeros(t.shape[:-1] + (ng * d["sup"],), F32)
            gp[..., :nb] = t
            gmax = gp.reshape(t.shape[:-1] + (ng, d["sup"])).max(-1)
        dd = (gmax / F32(d["smax"])).astype(F32)
        if d["sup_t"] == "f16":
            dd = np.where(dd > 0, f16_scale(dd), F32(1))
        dd = np.where((dd > 0) & np.isfinite(dd), dd, F32(1)).astype(F32)
        sup = dd
        dfull = np.full(t.shape, dd.reshape(()), F32) if d["sup"] == 0 else \
            np.repeat(dd, d["sup"], axis=-1)[..., :nb]
        r = (t / dfull).astype(F32)
        if d["scale"] == "e4m3":
            c = to_float(r, "e4m3")
            c = np.where(c == 0, F32(2.0 ** -9), c)
        else:
            c = np.clip(np.rint(r), 1, d["smax"]).astype(F32)
        stored = c
        s = (c * dfull).astype(F32)
    sfull = np.repeat(s, bs, axis=-1)[..., :K]
    z = None
    if d["elem"] != "int":
        q = to_float((wt / sfull).astype(F32), d["elem"])
        deq = (q * sfull).astype(F32)
    else:
        zp = np.zeros_like(s)
        if not d["sym"]:
            zp = np.clip(np.rint((-lo / s).astype(F32)), d["qmin"], d["qmax"])
            z = zp.astype(np.int32)
        zfull = np.repeat(zp, bs, axis=-1)[..., :K]
        q = np.clip(np.rint((wt / sfull).astype(F32)) + zfull, d["qmin"], d["qmax"])
        deq = ((q - zfull).astype(F32) * sfull).astype(F32)
        q = q.astype(np.int32)
    return q, s, stored, sup, z, np.moveaxis(deq, -1, axis)


def as_values(t):
    """An initializer's elements as float32 values (float types) or int32."""
    a = numpy_helper.to_array(t)
    if t.data_type in (T.FLOAT4E2M1, T.FLOAT8E4M3FN, T.FLOAT8E8M0, T.FLOAT16, T.FLOAT):
        return a.astype(F32)
    return a.astype(np.int32)


def model():
    rng = np.random.default_rng(11)
    w_mm = (rng.standard_normal((172, 24)) * 0.2).astype(F32)
    w_mm[:, 3] = 0
    w_mm[5, :] += 1.5
    w_gemm = (rng.standard_normal((16, 300)) * 0.3 + 0.05).astype(F32)
    w_gemm[2, :] *= 1e-3  # small rows: second-level scales matter
    table = (rng.standard_normal((50, 172)) * 0.5).astype(F32)
    w_conv = (rng.standard_normal((4, 2, 3, 3)) * 0.4).astype(F32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], name="embed", axis=0),
        helper.make_node("MatMul", ["e", "w_mm"], ["h"], name="mm"),
        helper.make_node("Gemm", ["x", "w_gemm"], ["g"], name="gemm", transB=1),
        helper.make_node("Conv", ["img", "w_conv"], ["c"], name="conv", pads=[1, 1, 1, 1]),
    ]
    g = helper.make_graph(
        nodes, "lowbit",
        [helper.make_tensor_value_info("ids", T.INT64, [5]),
         helper.make_tensor_value_info("x", T.FLOAT, [3, 300]),
         helper.make_tensor_value_info("img", T.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("h", T.FLOAT, [5, 24]),
         helper.make_tensor_value_info("g", T.FLOAT, [3, 16]),
         helper.make_tensor_value_info("c", T.FLOAT, [1, 4, 6, 6])],
        [numpy_helper.from_array(a, n) for a, n in
         [(table, "table"), (w_mm, "w_mm"), (w_gemm, "w_gemm"), (w_conv, "w_conv")]])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    feeds = {"ids": np.array([0, 7, 49, 3, 7], np.int64),
             "x": rng.standard_normal((3, 300)).astype(F32),
             "img": rng.standard_normal((1, 2, 6, 6)).astype(F32)}
    return m, feeds, {"table": (table, 1), "w_mm": (w_mm, 0), "w_gemm": (w_gemm, 1)}


def octet_run(path, feeds, tmp, *extra):
    out = os.path.join(tmp, "out")
    args = ["run", path, "--output-dir", out]
    for k, v in feeds.items():
        np.save(os.path.join(tmp, k + ".npy"), v)
        args += ["--input", f"{k}={os.path.join(tmp, k + '.npy')}"]
    r = octet(*args, *extra)
    if r.returncode:
        print(r.stderr[-2000:])
        return None
    return lambda name: np.load(os.path.join(out, name + ".npy"))


def with_outputs(m, names):
    """A copy of m that also outputs the named values (float)."""
    c = onnx.ModelProto()
    c.CopyFrom(m)
    for n in names:
        c.graph.output.append(helper.make_tensor_value_info(n, T.FLOAT, None))
    return c


def close(a, b, rtol=1e-5):
    return a is not None and b is not None and a.shape == b.shape and \
        np.allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.abs(b).max())))


def check_format(name, src, m0, feeds, weights, tmp):
    out = os.path.join(tmp, name + ".onnx")
    r = octet("quantize", src, "--weights-only", "--weight-format", name,
              "--op-types", "MatMul,Gemm,Gather,Conv", "-o", out)
    check(r.returncode == 0, f"{name}: quantize exits 0 ({r.stderr.strip()[:200]})")
    if r.returncode:
        return
    m = onnx.load(out)
    try:
        onnx.checker.check_model(m, full_check=True)
        ok = True
    except Exception as e:  # noqa: BLE001
        print(e)
        ok = False
    check(ok and m.opset_import[0].version == OPSET[name],
          f"{name}: onnx.checker accepts it, opset {m.opset_import[0].version} ({OPSET[name]})")
    inits = {i.name: i for i in m.graph.initializer}
    check("w_conv" in inits, f"{name}: the Conv weight stays float (no reduction-axis blocks)")
    byout = {n.output[0]: n for n in m.graph.node}
    d = FMT[name]
    qt, st, gt = ONNX_T[name]
    for wname, (w, axis) in weights.items():
        rq, rs, rstored, rsup, rz, rdeq = ref_format(w, axis, name)
        what = f"{name} {wname}"
        q = inits.get(wname + "_quantized")
        sc = inits.get(wname + "_scale")
        sup = inits.get(wname + "_super_scale")
        zp = inits.get(wname + "_zero_point")
        dq = byout.get(wname + "_dequantized")
        attrs = {a.name: a.i for a in dq.attribute} if dq else {}
        types_ok = q is not None and q.data_type == qt and sc is not None and sc.data_type == st \
            and (sup is None if gt is None else sup is not None and sup.data_type == gt) \
            and ((zp is not None and zp.data_type == qt) if not d.get("sym", True) else zp is None)
        check(types_ok, f"{what}: codes, scales, second-level scales and zero points have "
                        f"the format's types")
        if not types_ok:
            continue
        # the chain: DQ(codes, scale [, zp], axis, block_size); the scale a
        # DQ(scale codes, super scale) for two levels
        want = {"axis": axis, "block_size": d["block"]}
        if d["levels"] == 1 and d["scale"] != "f32":
            want["output_dtype"] = T.FLOAT
        chain_ok = dq.input[0] == q.name and attrs == want
        if d["levels"] == 2:
            sdq = byout.get(dq.input[1])
            sat = {a.name: a.i for a in sdq.attribute} if sdq else {}
            swant = {} if d["sup"] == 0 else {"axis": axis, "block_size": d["sup"]}
            if d["sup_t"] != "f32":
                swant["output_dtype"] = T.FLOAT
            chain_ok &= sdq is not None and sdq.op_type == "DequantizeLinear" and \
                list(sdq.input) == [sc.name, sup.name] and sat == swant
        else:
            chain_ok &= dq.input[1] == sc.name
        check(chain_ok, f"{what}: DequantizeLinear chain {want}")
        mv = lambda a: np.moveaxis(a, axis, -1)  # noqa: E731
        got_q = mv(as_values(q))
        eq = np.array_equal(got_q, rq) if d["elem"] == "int" else \
            np.array_equal(got_q.view(np.uint32), rq.view(np.uint32))
        eq &= np.array_equal(mv(as_values(sc)), rstored.astype(as_values(sc).dtype))
        if rsup is not None:
            gs = as_values(sup)
            eq &= np.array_equal(gs.reshape(-1), rsup.reshape(-1)) if d["sup"] == 0 else \
                np.array_equal(mv(gs), rsup)
        if rz is not None:
            eq &= np.array_equal(mv(as_values(zp)), rz)
        check(eq, f"{what}: codes, scales and zero points equal the numpy reference")
    # the dequantized weights: Octet's interpreter, onnx.reference, numpy, ORT
    names = [n + "_dequantized" for n in weights]
    mo = with_outputs(m, names)
    pth = os.path.join(tmp, name + "_w.onnx")
    onnx.save(mo, pth)
    got = octet_run(pth, feeds, tmp)
    ref = dict(zip([o.name for o in mo.graph.output], ReferenceEvaluator(mo).run(None, feeds)))
    for wname, (w, axis) in weights.items():
        n = wname + "_dequantized"
        g = got(n) if got else None
        check(g is not None and np.array_equal(g, ref[n]),
              f"{name} {wname}: interpreter DequantizeLinear equals onnx.reference bit for bit")
        check(g is not None and np.array_equal(g, ref_format(w, axis, name)[5]),
              f"{name} {wname}: interpreter dequantized weight equals the numpy reference")
    # ONNX Runtime 1.30 has no FLOAT4E2M1 or FLOAT8E8M0 DequantizeLinear,
    # and with a float16 scale it writes float16 whatever output_dtype says:
    # it gets the same numbers with the float16 tensors widened to float32
    # (exact) and no output_dtype
    ow = onnx.ModelProto()
    ow.CopyFrom(mo)
    for i, t in enumerate(ow.graph.initializer):
        if t.data_type == T.FLOAT16:
            ow.graph.initializer[i].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(t).astype(F32), t.name))
    for nd in ow.graph.node:
        keep = [a for a in nd.attribute if a.name != "output_dtype"]
        del nd.attribute[:]
        nd.attribute.extend(keep)
    opth = os.path.join(tmp, name + "_ort.onnx")
    onnx.save(ow, opth)
    try:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(opth, so, providers=["CPUExecutionProvider"])
        ortv = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        ran = True
    except Exception as e:  # noqa: BLE001
        ran = False
        print(f"note {name}: ONNX Runtime {ort.__version__} does not run it: {str(e)[:160]}")
    if ran:
        check(all(got and np.array_equal(got(n), ortv[n]) for n in names),
              f"{name}: interpreter DequantizeLinear equals ONNX Runtime's bit for bit "
              f"(float16 scales widened to float32)")
    if name in ("q8_0", "q6_k", "q4_k"):
        check(ran, f"{name}: ONNX Runtime runs the integer chain")
    # the model: interpreter vs onnx.reference, compiled vs interpreter
    interp = octet_run(out, feeds, tmp)
    want = dict(zip([o.name for o in m.graph.output], ReferenceEvaluator(m).run(None, feeds)))
    check(interp is not None and all(close(interp(k), v) for k, v in want.items()),
          f"{name}: octet run equals onnx.reference on the model's outputs")
    iv = {k: interp(k) for k in want} if interp else {}
    jit = octet_run(out, feeds, tmp, "--jit")
    check(jit is not None and iv and all(close(jit(k), v) for k, v in iv.items()),
          f"{name}: octet run --jit equals the interpreter within 1e-5")
    so_dir = os.path.join(tmp, "so_" + name)
    os.makedirs(so_dir, exist_ok=True)
    r = octet("compile", out, "--emit=so", "-o", os.path.join(so_dir, "m"))
    lib = octet_run(os.path.join(so_dir, "m.so"), feeds, tmp) if r.returncode == 0 else None
    if r.returncode:
        print(r.stderr[-1500:])
    check(lib is not None and iv and all(close(lib(k), v) for k, v in iv.items()),
          f"{name}: octet compile --emit=so runs equal to the interpreter within 1e-5")


def bad_options(src, tmp):
    out = os.path.join(tmp, "bad.onnx")
    for extra, why in [(["--weight-format", "nvfp4", "--block-size", "32"], "nvfp4 block 32"),
                       (["--weight-format", "mxfp4", "--block-size", "16"], "mxfp4 block 16"),
                       (["--weight-format", "q4_k", "--block-size", "64"], "q4_k block 64"),
                       (["--weight-format", "q6_k", "--block-size", "32"], "q6_k block 32"),
                       (["--weight-format", "q8_0", "--weights", "per-tensor"], "q8_0 per-tensor"),
                       (["--weight-format", "nvfp4", "--weight-scheme", "asym"], "nvfp4 asym"),
                       (["--weight-format", "q4_k", "--weight-scheme", "sym"], "q4_k sym"),
                       (["--weight-format", "mxfp8", "--clip-search"], "mxfp8 clip search"),
                       (["--weight-format", "q8_0", "--block-size", "32", "--format",
                         "matmulnbits"], "q8_0 as MatMulNBits"),
                       (["--weight-format", "mxfp6"], "mxfp6 (no such row)"),
                       (["--weight-format", "q5_k"], "q5_k (no such row)"),
                       (["--weight-format", "q3_k"], "q3_k (no such row)")]:
        r = octet("quantize", src, "--weights-only", *extra, "-o", out)
        check(r.returncode == 1 and r.stderr.strip() and not os.path.exists(out),
              f"{why}: exit {r.returncode} (1, usage), writes nothing ({r.stderr.strip()[:110]})")


def ort_rtn(w, axis, bits, bs):
    """ONNX Runtime's MatMulNBits quantizer's symmetric rule (MLAS): per
    block, the element of largest magnitude m (the first one), scale
    m / -2^(bits-1) (negative when m > 0), codes clamp(rne(w * (1 / scale)),
    -2^(bits-1), 2^(bits-1) - 1), a zero scale giving codes 0; returns the
    dequantized weight."""
    wt = np.moveaxis(w, axis, -1)
    K = wt.shape[-1]
    nb = -(-K // bs) if bs else 1
    bs = bs or K
    pad = np.zeros(wt.shape[:-1] + (nb * bs,), F32)
    pad[..., :K] = wt
    blk = pad.reshape(wt.shape[:-1] + (nb, bs))
    m = np.take_along_axis(blk, np.abs(blk).argmax(-1)[..., None], -1)
    scale = (m / F32(-(1 << (bits - 1)))).astype(F32)
    with np.errstate(divide="ignore"):
        rs = np.where(scale != 0, F32(1) / scale, F32(0)).astype(F32)
    q = np.clip(np.rint((blk * rs).astype(F32)), -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    deq = (q.astype(F32) * scale).astype(F32).reshape(pad.shape)[..., :K]
    return np.moveaxis(deq, -1, axis)


def dequantized(path, name):
    """w's DequantizeLinear, evaluated by onnx.reference."""
    m = onnx.load(path)
    mo = with_outputs(m, [name + "_dequantized"])
    node = [n for n in mo.graph.node if n.output[0] == name + "_dequantized"]
    sub = helper.make_graph(node, "w", [], [mo.graph.output[-1]],
                            [t for t in mo.graph.initializer if t.name in node[0].input])
    # onnx.reference has no DequantizeLinear before opset 19 (the same op
    # for these inputs)
    sm = helper.make_model(sub, opset_imports=[helper.make_opsetid(
        "", max(19, m.opset_import[0].version))])
    sm.ir_version = m.ir_version
    return ReferenceEvaluator(sm).run(None, {})[0]


def sym_full(src, weights, tmp):
    """--weight-scheme=sym-full writes ONNX Runtime's RTN numbers with a
    positive scale and a zero point of 0 or -1."""
    out = os.path.join(tmp, "sf.onnx")
    for bits, fmt, bs in [(4, "int4", 32), (8, "int8", 0), (2, "int2", 16)]:
        r = octet("quantize", src, "--weights-only", "--weight-format", fmt,
                  "--weight-scheme", "sym-full", "--op-types", "MatMul,Gemm,Gather",
                  *(["--block-size", bs] if bs else []), "-o", out)
        check(r.returncode == 0, f"sym-full {fmt}: quantize exits 0 ({r.stderr.strip()[:150]})")
        if r.returncode:
            continue
        for wname, (w, axis) in weights.items():
            # per channel is one block over the whole reduction axis
            want = ort_rtn(w, axis, bits, bs)
            got = dequantized(out, wname)
            check(np.array_equal(got, want),
                  f"sym-full {fmt} {'block ' + str(bs) if bs else 'channel'} {wname}: "
                  f"dequantized weight equals ONNX Runtime's RTN rule (numpy)")
    r = octet("quantize", src, "--weights-only", "--weight-format", "uint4",
              "--weight-scheme", "sym-full", "-o", os.path.join(tmp, "bad.onnx"))
    check(r.returncode == 1 and not os.path.exists(os.path.join(tmp, "bad.onnx")),
          "sym-full with an unsigned format is a usage error")
    shared = os.environ.get("OCTET_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "..", "..", "..", "shared"))
    base = os.path.join(shared, "models", "stories260k", "prefill_s128.onnx")
    anchor = os.path.join(shared, "models", "stories260k", "anchors", "ort-default-w4-b32-sym.onnx")
    if not (os.path.exists(base) and os.path.exists(anchor)):
        print("skip: ../shared/models/stories260k (the ORT anchor) not found")
        return
    r = octet("quantize", base, "--weights-only", "--weight-format", "int4", "--block-size", 32,
              "--weight-scheme", "sym-full", "--exclude-nodes", "lm_head", "-o", out)
    check(r.returncode == 0, "stories260k sym-full: quantize exits 0")
    am = onnx.load(anchor)
    ai = {t.name: t for t in am.graph.initializer}
    same = n = 0
    for nd in am.graph.node:
        if nd.op_type != "MatMulNBits":
            continue
        a = {x.name: x.i for x in nd.attribute}
        K, N, bs = a["K"], a["N"], a["block_size"]
        B = numpy_helper.to_array(ai[nd.input[1]]).reshape(N, -1)
        S = numpy_helper.to_array(ai[nd.input[2]]).reshape(N, -1)
        codes = np.stack([B & 15, B >> 4], -1).reshape(N, -1).astype(F32) - 8
        ort_w = (codes * np.repeat(S, bs, -1))[:, :K].T.astype(F32)
        n += 1
        same += np.array_equal(dequantized(out, nd.input[1][:-3]), ort_w)
    check(n == 35 and same == n, f"stories260k int4 b32 sym-full: {same} of {n} weights equal "
                                 f"ONNX Runtime's MatMulNBitsQuantizer anchor exactly")


def main():
    m, feeds, weights = model()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src.onnx")
        onnx.save(m, src)
        for name in (sys.argv[1:] or FMT):
            check_format(name, src, m, feeds, weights, tmp)
        bad_options(src, tmp)
        sym_full(src, weights, tmp)
    if failures:
        print(f"{len(failures)} failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
