"""CNN recovery in octet quantize (issue 17): cross-layer equalization
(--equalize, the pass `equalize`), bias correction (--bias-correction), and
FP16 / BF16 input models.  One part per run (argument):

 equalize  a constructed CNN with Conv -> Relu -> {1x1 Conv, depthwise Conv},
           Conv -> Relu -> MaxPool -> grouped Conv and Conv -> Conv: after
           the pass its FP32 outputs (ONNX Runtime) equal the original's
           within 1e-5 of their range, and the weight ranges on both sides
           of every equalized channel are equal (numpy, from the written
           weights); a Conv -> Sigmoid -> Conv pair is left alone; mnist-8
           and squeezenet1.1 (../shared) also keep their FP32 outputs.
 biascorr  a constructed 1x1 Conv -> Flatten -> Gemm with per-tensor
           weights and inputs of non-zero mean: the written int32 biases
           equal b - (W' - W) E[x] (numpy, W' from the written codes, E[x]
           from the calibration data) to one bias step; without the option
           they are b.
 shared    mnist-8 and cifar10-cnn: output SQNR on held-out inputs with
           each method is never more than 0.2 dB below the plain
           quantization, and each method raises it on at least one model.
 half      mnist-8 converted to FLOAT16 (and BFLOAT16) inside the test
           (round to nearest even): quantized, its top-1 over 500 (BF16:
           200) evaluation images equals that of the FP32 original
           quantized the same way.
 compiled  quantized mnist-8 compiled (octet run --jit) against the
           interpreter: INT8 bit for bit; FP8 and the FP16/BF16 models'
           INT8 (half interface) within float tolerance.
"""
import os
import sys
import tempfile

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto as T, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from qtest import *  # noqa: E402,F403

rng = np.random.default_rng(17)


def conv_w(m, c, k, spread=True):
    w = rng.normal(0, 1, (m, c, k, k)).astype(np.float32)
    if spread:  # channel ranges over four decades: what equalization evens out
        w *= (10.0 ** rng.uniform(-2, 2, (m, 1, 1, 1))).astype(np.float32)
    return w


def save(nodes, inits, inputs, outputs, path, opset=13):
    g = helper.make_graph(nodes, "t", inputs, outputs,
                          [numpy_helper.from_array(a, n) for n, a in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, path)


def eq_model(path):
    inits = {"A": conv_w(8, 3, 3), "bA": rng.normal(0, 1, 8).astype(np.float32),
             "B1": conv_w(6, 8, 1), "b1": rng.normal(0, 1, 6).astype(np.float32),
             "B2": conv_w(8, 1, 3), "b2": rng.normal(0, 1, 8).astype(np.float32),
             "C": conv_w(4, 3, 3), "D": conv_w(4, 8, 1),
             "E": conv_w(5, 4, 1), "F": conv_w(3, 5, 1)}
    nodes = [helper.make_node("Conv", ["x", "A", "bA"], ["a"], pads=[1] * 4, name="A"),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "B1", "b1"], ["b1o"], name="B1"),
             helper.make_node("Conv", ["ar", "B2", "b2"], ["b2o"], pads=[1] * 4, group=8, name="B2"),
             helper.make_node("Relu", ["b1o"], ["b1r"]),
             helper.make_node("MaxPool", ["b1r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p", "C"], ["y1"], pads=[1] * 4, group=2, name="C"),
             helper.make_node("Conv", ["b2o", "D"], ["d"], name="D"),
             helper.make_node("Conv", ["d", "E"], ["e"], name="E"),
             helper.make_node("Sigmoid", ["e"], ["es"]),
             helper.make_node("Conv", ["es", "F"], ["y2"], name="F")]
    save(nodes, inits, [helper.make_tensor_value_info("x", T.FLOAT, [1, 3, 12, 12])],
         [helper.make_tensor_value_info("y1", T.FLOAT, None),
          helper.make_tensor_value_info("y2", T.FLOAT, None)], path)


def weights_by_node(path):
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    return {n.name or n.output[0]: [inits.get(i) for i in n.input[1:]]
            for n in m.graph.node if n.op_type == "Conv"}


def fp32_equal(orig, eq, feeds_list, what):
    a, b = ort_outputs_all(orig, feeds_list), ort_outputs_all(eq, feeds_list)
    worst = max(float(np.abs(x - y).max() / max(np.abs(x).max(), 1e-30))
                for xs, ys in zip(a, b) for x, y in zip(xs, ys))
    check(worst < 1e-5, f"{what}: FP32 outputs after equalization within {worst:.1e} "
          "of their range of the original's (< 1e-5)")


def ort_outputs_all(path, feeds_list):
    s = ort_session(path)
    return [s.run(None, f) for f in feeds_list]


def in_range(w, c, groups):
    """max |w[:, c]| over the output channels of c's group."""
    cpg, opg = w.shape[1], w.shape[0] // groups
    g = c // cpg
    return np.abs(w[g * opg:(g + 1) * opg, c % cpg]).max()


def test_equalize(tmp):
    src, out = os.path.join(tmp, "eq.onnx"), os.path.join(tmp, "eq.out.onnx")
    eq_model(src)
    octet("opt", src, "-o", out, "--passes=fold,shape_infer,fuse,equalize")
    feeds = [{"x": rng.normal(0, 1, (1, 3, 12, 12)).astype(np.float32)} for _ in range(4)]
    fp32_equal(src, out, feeds, "constructed CNN")
    before, after = weights_by_node(src), weights_by_node(out)
    # the groups: A -> {B1, B2 (depthwise)}, B1 -> C (grouped, via MaxPool), B2 -> D, D -> E
    groups = {"A": [("B1", 1), ("B2", 8)], "B1": [("C", 2)], "B2": [("D", 1)], "D": [("E", 1)]}
    worst = 0.0
    for a, bs in groups.items():
        wa = after[a][0]
        for c in range(wa.shape[0]):
            r1 = np.abs(wa[c]).max()
            r2 = max(in_range(after[b][0], c, g) for b, g in bs)
            worst = max(worst, abs(np.log(r1 / r2)))
    check(worst < 0.01, f"every equalized channel has equal weight ranges on both sides "
          f"(largest |log r1/r2| {worst:.2e})")
    spread = max(abs(np.log(np.abs(before["A"][0][c]).max() / in_range(before["B1"][0], c, 1)))
                 for c in range(8))
    check(spread > 1, f"... which they did not before ({spread:.1f})")
    check(np.array_equal(before["F"][0], after["F"][0]),
          "Conv -> Sigmoid -> Conv: F's weight is unchanged (Sigmoid does not commute with scales)")
    # quantized with per-tensor weights, equalization must pay off on a
    # plain Conv -> Relu -> Conv with spread channels
    pair = os.path.join(tmp, "pair.onnx")
    save([helper.make_node("Conv", ["x", "A"], ["a"], pads=[1] * 4, name="A"),
          helper.make_node("Relu", ["a"], ["ar"]),
          helper.make_node("Conv", ["ar", "B"], ["y"], name="B")],
         {"A": conv_w(8, 3, 3), "B": conv_w(4, 8, 1, spread=False)},
         [helper.make_tensor_value_info("x", T.FLOAT, [1, 3, 12, 12])],
         [helper.make_tensor_value_info("y", T.FLOAT, None)], pair)
    calib = os.path.join(tmp, "eq_calib.npy")
    np.save(calib, rng.normal(0, 1, (16, 1, 3, 12, 12)).astype(np.float32))
    r = octet("quantize", pair, "--calib", calib, "-o", os.path.join(tmp, "pair.q.onnx"),
              "--weights=per-tensor", "--equalize", "--progress=none")
    check("equalize: output SQNR" in r.stderr and "kept" in r.stderr,
          f"per-tensor weights: --equalize is kept ({r.stderr.strip().splitlines()[-1]})")
    for name in ("mnist-8", "squeezenet1.1"):
        model = os.path.join(MODELS, name, "model.onnx")
        out = os.path.join(tmp, name + ".eq.onnx")
        r = octet("opt", model, "-o", out, "--passes=fold,shape_infer,fuse,equalize")
        g = onnx.load(model).graph
        inp = next(i for i in g.input if i.name not in {t.name for t in g.initializer})
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        feeds = [{inp.name: rng.uniform(0, 255 if name == "mnist-8" else 100, shape).astype(np.float32)}
                 for _ in range(3)]
        fp32_equal(model, out, feeds, name)
        changed = sum(not np.array_equal(w[0], weights_by_node(model).get(k, [None])[0])
                      for k, w in weights_by_node(out).items())
        check(changed >= 2, f"{name}: {changed} Conv weights rescaled")


def quantized_params(path):
    """node name -> (W' dequantized, int32 bias codes, bias scale)."""
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    dq = {n.output[0]: n for n in m.graph.node if n.op_type == "DequantizeLinear"}

    def deq(name):
        n = dq[name]
        q, s = inits[n.input[0]].astype(np.float64), inits[n.input[1]].astype(np.float64)
        z = inits[n.input[2]].astype(np.float64) if len(n.input) > 2 and n.input[2] else 0.0
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        if np.ndim(s) == 1 and s.size > 1:
            shape = [1] * q.ndim
            shape[axis] = s.size
            s = s.reshape(shape)
            z = np.reshape(z, shape) if np.ndim(z) else z
        return q, (q - z) * s, s
    out = {}
    for n in m.graph.node:
        if n.op_type in ("Conv", "Gemm") and len(n.input) > 2:
            _, w, _ = deq(n.input[1])
            bq, _, bs = deq(n.input[2])
            out[n.name] = (w, bq, bs)
    return out


def test_biascorr(tmp):
    src = os.path.join(tmp, "bc.onnx")
    W = conv_w(6, 4, 1, spread=False) * 0.3
    W[0] *= 20  # one wide channel: per-tensor steps are coarse for the rest
    b = rng.normal(0, 1, 6).astype(np.float32)
    G = rng.normal(0, 0.1, (5, 6 * 8 * 8)).astype(np.float32)
    G[:, :64] *= 30
    c = rng.normal(0, 1, 5).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["y"], name="conv"),
             helper.make_node("Flatten", ["y"], ["f"]),
             helper.make_node("Gemm", ["f", "G", "c"], ["z"], transB=1, name="gemm")]
    save(nodes, {"W": W, "b": b, "G": G, "c": c},
         [helper.make_tensor_value_info("x", T.FLOAT, [1, 4, 8, 8])],
         [helper.make_tensor_value_info("z", T.FLOAT, None)], src)
    x = (3 + rng.normal(0, 1, (32, 1, 4, 8, 8))).astype(np.float32)
    calib = os.path.join(tmp, "bc_calib.npy")
    np.save(calib, x)
    outs = {}
    for tag, extra in (("plain", []), ("corrected", ["--bias-correction"])):
        outs[tag] = os.path.join(tmp, f"bc.{tag}.onnx")
        r = octet("quantize", src, "--calib", calib, "-o", outs[tag], "--weights=per-tensor",
                  "--progress=none", *extra)
        if extra:
            check("bias-correction: output SQNR" in r.stderr and "kept" in r.stderr,
                  f"--bias-correction is kept here ({r.stderr.strip().splitlines()[-2:]})")
    # numpy: E[x] per input channel, E[flatten(conv(x))] per feature, in FP32
    ex = x.astype(np.float64).mean(axis=(0, 1, 3, 4))
    y = np.einsum("oc,nbchw->nbohw", W[:, :, 0, 0].astype(np.float64), x) + b[None, None, :, None, None]
    ef = y.reshape(len(x), -1).mean(axis=0)
    for tag in outs:
        q = quantized_params(outs[tag])
        for node, want in (("conv", b - (q["conv"][0][:, :, 0, 0] - W[:, :, 0, 0]) @ ex),
                           ("gemm", c - (q["gemm"][0] - G) @ ef)):
            if tag == "plain":
                want = {"conv": b, "gemm": c}[node]
            _, bq, bs = q[node]
            err = np.abs(bq * bs - want) / bs
            if tag != "plain":
                moved = np.abs(want - {"conv": b, "gemm": c}[node]) / bs
                check(moved.max() > 3, f"{node}: the correction moves the bias by "
                      f"{moved.max():.1f} steps (> 3, so the two rules differ)")
            rule = "b" if tag == "plain" else "b - (W' - W) E[x]"
            check(err.max() <= 1.01, f"{tag}: {node} bias is {rule} to one bias step "
                  f"(largest {err.max():.2f} steps)")
    ev = (3 + rng.normal(0, 1, (16, 1, 4, 8, 8))).astype(np.float32)
    feeds = [{"x": e} for e in ev]
    ref = np.stack([o[0] for o in ort_outputs_all(src, feeds)])
    db = {t: sqnr_db(ref, np.stack([o[0] for o in ort_outputs_all(p, feeds)])) for t, p in outs.items()}
    check(db["corrected"] > db["plain"] + 1, f"held-out SQNR {db['plain']:.2f} -> {db['corrected']:.2f} dB")


def test_shared(tmp):
    images, labels = mnist_eval()
    cases = {
        "mnist-8": ("Input3", np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))[:500]
                    .reshape(-1, 1, 1, 28, 28), images[:300].reshape(-1, 1, 1, 28, 28)),
        "cifar10-cnn": ("modelInput", rng.normal(0, 1, (64, 1, 3, 32, 32)).astype(np.float32),
                        rng.normal(0, 1, (32, 1, 3, 32, 32)).astype(np.float32)),
    }
    gain = {"--equalize": [], "--bias-correction": []}
    for name, (inp, cal, ev) in cases.items():
        model = os.path.join(MODELS, name, "model.onnx")
        calib = os.path.join(tmp, name + ".npy")
        np.save(calib, cal)
        feeds = [{inp: e} for e in ev]
        ref = np.stack(ort_outputs(model, feeds))
        db = {}
        for flag in ("plain", *gain):
            out = os.path.join(tmp, f"{name}{flag}.onnx")
            octet("quantize", model, "--calib", calib, "-o", out, "--progress=none",
                  *([] if flag == "plain" else [flag]))
            db[flag] = sqnr_db(ref, np.stack(ort_outputs(out, feeds)))
        for flag in gain:
            d = db[flag] - db["plain"]
            gain[flag].append(d)
            check(d >= -0.2, f"{name} {flag}: {db['plain']:.2f} -> {db[flag]:.2f} dB held out "
                  "(never more than 0.2 dB worse)")
    for flag, ds in gain.items():
        check(max(ds) > 0.05, f"{flag} improves at least one shared model ({', '.join(f'{d:+.2f}' for d in ds)} dB)")


def to_half(src, dst, dtype):
    """The model with every FLOAT initializer, input and output in dtype
    (round to nearest even), value_info dropped."""
    m = onnx.load(src)
    for i, t in enumerate(m.graph.initializer):
        if t.data_type == T.FLOAT:
            a = numpy_helper.to_array(t)
            if dtype == T.FLOAT16:
                nt = numpy_helper.from_array(a.astype(np.float16), t.name)
            else:
                bits = a.astype(ml_dtypes.bfloat16).view(np.uint16)
                nt = helper.make_tensor(t.name, T.BFLOAT16, a.shape, bits.tobytes(), raw=True)
            m.graph.initializer[i].CopyFrom(nt)
    for v in list(m.graph.input) + list(m.graph.output):
        if v.type.tensor_type.elem_type == T.FLOAT:
            v.type.tensor_type.elem_type = dtype
    del m.graph.value_info[:]
    onnx.save(m, dst)


def test_half(tmp):
    model = os.path.join(MODELS, "mnist-8", "model.onnx")
    images, labels = mnist_eval()
    images, labels = images[:500], labels[:500]
    feeds = [{"Input3": im.reshape(1, 1, 28, 28)} for im in images]
    fp32_top1 = np.mean(np.concatenate(ort_outputs(model, feeds)).argmax(1) == labels)
    cal = np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))[:300].reshape(-1, 1, 1, 28, 28)
    # FLOAT16: calibration data and inputs in float16 (pixels 0..255 are exact)
    f16, q16 = os.path.join(tmp, "mnist16.onnx"), os.path.join(tmp, "mnist16.q.onnx")
    to_half(model, f16, T.FLOAT16)
    np.save(os.path.join(tmp, "c16.npy"), cal.astype(np.float16))
    r = octet("quantize", f16, "--calib", os.path.join(tmp, "c16.npy"), "-o", q16, "--progress=none")
    check("SQNR 0.00" not in r.stdout + r.stderr, "FLOAT16 mnist-8: a measured SQNR")
    q = onnx.load(q16)
    check(q.graph.input[0].type.tensor_type.elem_type == T.FLOAT16 and
          sum(n.op_type == "QuantizeLinear" for n in q.graph.node) >= 4,
          "FLOAT16 mnist-8: FLOAT16 interface, Q/DQ written")
    y = np.concatenate(ort_outputs(q16, [{"Input3": f["Input3"].astype(np.float16)} for f in feeds]))
    top1 = np.mean(y.astype(np.float32).argmax(1) == labels)
    # the FP32 original quantized the same way: the precision's own loss
    np.save(os.path.join(tmp, "c32.npy"), cal)
    q32 = os.path.join(tmp, "mnist32.q.onnx")
    octet("quantize", model, "--calib", os.path.join(tmp, "c32.npy"), "-o", q32, "--progress=none")
    top1_32 = np.mean(np.concatenate(ort_outputs(q32, feeds)).argmax(1) == labels)
    check(top1 == top1_32, f"FLOAT16 mnist-8 quantized: top-1 {top1:.2%}, the FP32 original "
          f"quantized {top1_32:.2%} (FP32 unquantized {fp32_top1:.2%}, 500 images)")
    # BFLOAT16: octet runs the quantized model (ONNX Runtime's CPU has no BF16 Conv)
    b16, qb = os.path.join(tmp, "mnistbf.onnx"), os.path.join(tmp, "mnistbf.q.onnx")
    to_half(model, b16, T.BFLOAT16)
    cdir = os.path.join(tmp, "cbf")  # BF16 calibration data: TensorProto folders
    for i, c in enumerate(cal[:100]):
        os.makedirs(os.path.join(cdir, f"test_data_set_{i}"))
        bits = c.astype(ml_dtypes.bfloat16).view(np.uint16)
        with open(os.path.join(cdir, f"test_data_set_{i}", "input_0.pb"), "wb") as f:
            f.write(helper.make_tensor("Input3", T.BFLOAT16, bits.shape, bits.tobytes(),
                                       raw=True).SerializeToString())
    r = octet("quantize", b16, "--calib", cdir, "-o", qb, "--progress=none", expect=None)
    if r.returncode != 0:
        check(r.returncode in (2, 3) and "BFLOAT16" in r.stderr.upper(),
              f"BFLOAT16 mnist-8: refused with a diagnostic ({r.stderr.strip()[-200:]})")
        return
    n = 200
    stack = images[:n].reshape(n, 1, 1, 28, 28).astype(ml_dtypes.bfloat16).view(np.uint16)
    pb = os.path.join(tmp, "xb.pb")
    with open(pb, "wb") as f:
        f.write(helper.make_tensor("Input3", T.BFLOAT16, stack.shape, stack.tobytes(),
                                   raw=True).SerializeToString())
    outdir = tempfile.mkdtemp(dir=tmp)
    octet("run", qb, "--input", f"Input3={pb}", "--each-sample", "--output-dir", outdir, "--format=pb")
    out_name = q.graph.output[0].name
    y = numpy_helper.to_array(onnx.load_tensor(os.path.join(outdir, safe_name(out_name) + ".pb")))
    y = (y.astype(np.uint32) << 16).view(np.float32) if y.dtype == np.uint16 else y.astype(np.float32)
    top1 = np.mean(y.reshape(n, -1).argmax(1) == labels[:n])
    ref = np.mean(np.concatenate(ort_outputs(q32, feeds[:n])).argmax(1) == labels[:n])
    check(top1 == ref, f"BFLOAT16 mnist-8 quantized (octet run): top-1 {top1:.2%} over {n}, "
          f"the FP32 original quantized {ref:.2%}")


def run_pb(model, name, x, dtype, tmp, jit):
    """octet run (interpreter, or --jit) of model on one input x (float32
    values, written as dtype); the first output as float32."""
    if dtype == T.BFLOAT16:
        t = helper.make_tensor(name, T.BFLOAT16, x.shape,
                               x.astype(ml_dtypes.bfloat16).view(np.uint16).tobytes(), raw=True)
    else:
        t = numpy_helper.from_array(x.astype(np.float16 if dtype == T.FLOAT16 else np.float32), name)
    d = tempfile.mkdtemp(dir=tmp)
    with open(os.path.join(d, "x.pb"), "wb") as f:
        f.write(t.SerializeToString())
    octet("run", model, "--input", f"{name}={os.path.join(d, 'x.pb')}", "--output-dir", d,
          "--format=pb", *(["--jit"] if jit else []))
    out = onnx.load(model).graph.output[0].name
    y = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, safe_name(out) + ".pb")))
    return (y.astype(np.uint32) << 16).view(np.float32) if y.dtype == np.uint16 else y.astype(np.float32)


def test_compiled(tmp):
    """Quantized mnist-8 compiled (octet run --jit) against the interpreter:
    INT8 from the FP32 model bit for bit; FP8 E4M3, and INT8 of the FLOAT16
    and BFLOAT16 conversions (half interface) within float tolerance."""
    model = os.path.join(MODELS, "mnist-8", "model.onnx")
    images, _ = mnist_eval()
    cal = np.load(os.path.join(DATA, "mnist", "calib_1000_f32.npy"))[:200].reshape(-1, 1, 1, 28, 28)
    np.save(os.path.join(tmp, "c32.npy"), cal)
    np.save(os.path.join(tmp, "c16.npy"), cal.astype(np.float16))
    cases = [("int8", model, T.FLOAT, "c32.npy", []),
             ("fp8", model, T.FLOAT, "c32.npy", ["--precision=fp8"])]
    f16, b16 = os.path.join(tmp, "m16.onnx"), os.path.join(tmp, "mb16.onnx")
    to_half(model, f16, T.FLOAT16)
    to_half(model, b16, T.BFLOAT16)
    for i, c in enumerate(cal[:50]):
        os.makedirs(os.path.join(tmp, "cbf", f"test_data_set_{i}"))
        bits = c.astype(ml_dtypes.bfloat16).view(np.uint16)
        with open(os.path.join(tmp, "cbf", f"test_data_set_{i}", "input_0.pb"), "wb") as f:
            f.write(helper.make_tensor("Input3", T.BFLOAT16, bits.shape, bits.tobytes(),
                                       raw=True).SerializeToString())
    cases += [("FLOAT16 int8", f16, T.FLOAT16, "c16.npy", []),
              ("BFLOAT16 int8", b16, T.BFLOAT16, "cbf", [])]
    for tag, src, dtype, calib, extra in cases:
        q = os.path.join(tmp, tag.replace(" ", "_") + ".q.onnx")
        octet("quantize", src, "--calib", os.path.join(tmp, calib), "-o", q, "--progress=none", *extra)
        for k in range(2):
            x = images[k].reshape(1, 1, 28, 28)
            a, b = run_pb(q, "Input3", x, dtype, tmp, False), run_pb(q, "Input3", x, dtype, tmp, True)
            if tag == "int8":
                check(np.array_equal(a.view(np.uint32), b.view(np.uint32)),
                      f"{tag} image {k}: compiled equals the interpreter bit for bit")
            else:
                tol = (1e-2 if dtype != T.FLOAT else 1e-5) * np.abs(a).max()
                err = np.abs(a - b).max()
                check(err <= tol, f"{tag} image {k}: compiled within {err:.3g} of the "
                      f"interpreter (tolerance {tol:.3g})")


if __name__ == "__main__":
    part = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        {"equalize": test_equalize, "biascorr": test_biascorr, "shared": test_shared,
         "half": test_half, "compiled": test_compiled}[part](tmp)
    finish()
