"""Every op the backend lowers, compiled on its own (a one-node model made
with the onnx package) and run on random inputs of awkward sizes, against
the reference interpreter (`octet run`).  Float outputs: |got - want| <=
1e-5 * max(1, max|want|) (FMA and reassociated sums); QuantizeLinear and
DequantizeLinear outputs (int8, uint8, float8 E4M3FN and E5M2) and integer
outputs: exactly equal."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

RTOL = 1e-5
# lines of the compile report (--report) a case must have, and how many
REPORTED = {"table_two_outputs_u8": ("octk_lut8", 2), "table_trailing_dq_s8": ("octk_lut8", 1),
            # DQ -> GlobalAveragePool -> Q is fused into QLinearGlobalAveragePool
            "dq_globalavgpool_u8": ("integer: 8-bit in and out", 1),
            "dq_avgpool_s8": ("reads the 8-bit input", 1),
            "dq_globalmaxpool_s8": ("reads the 8-bit input", 1),
            "dq_pool_shared": ("reads the 8-bit input", 0),
            "qdq_run_then_pool": ("reads the 8-bit input", 0)}
# FP8-weight cases (fp8_weight_models): name -> (report lines of the FP8
# widening path expected, output channel axis for the per-channel check)
FP8_WEIGHTS = {}
# FP8-weight cases whose DequantizeLinear (node 0) must emit no code and get
# no memory: name -> the scratch size allowed (the kernel's workspace
# alone: the widened 16 x 18 panels and octk_sgemm's 6-row copy of the
# [6, 18] input, rounded up to 64 bytes)
FP8_NO_DQ = {"fp8_e4m3fn_matmul_axis": (16 * 18 * 4 + 6 * 18 * 4 + 63) // 64 * 64}
rng = np.random.default_rng(7)
F = TensorProto.FLOAT


def rnd(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def case(name, op, inputs, out_shape, out_type=F, inits=(), opset=17, **attrs):
    """inputs: list of (name, array); inits: list of (name, array) constants."""
    node = helper.make_node(op, [n for n, _ in inputs] + [n for n, _ in inits], ["y"],
                            name="n0", **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in inputs]
    g = helper.make_graph([node], name, vi,
                          [helper.make_tensor_value_info("y", out_type, out_shape)],
                          [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return name, m, inputs


def concat_in_place():
    """Concats whose inputs the memory plan places inside the output (made
    by a node, read only by the Concat) next to ones it must copy: an input
    read twice, an input another node reads, Concat outputs holding slices
    feeding another Concat, and a leading dimension of 1."""
    a, b = rnd(1, 3, 5, 4), rnd(1, 2, 5, 4)
    nodes = [helper.make_node(op, ins, [out]) for op, ins, out in [
        ("Relu", ["a"], "r"), ("Sigmoid", ["b"], "s"), ("Neg", ["a"], "t"),
        ("Tanh", ["b"], "u"), ("Exp", ["b"], "e"), ("Abs", ["a"], "v"),
        ("Mul", ["v", "v"], "w")]]
    nodes += [helper.make_node("Concat", ins, [out], axis=1) for ins, out in [
        (["r", "s", "t"], "c1"), (["u", "c1"], "c2"), (["e", "e"], "c3"),
        (["v", "w"], "c4"), (["c2", "c3", "c4"], "y")]]
    vi = [helper.make_tensor_value_info(n, F, x.shape) for n, x in [("a", a), ("b", b)]]
    g = helper.make_graph(nodes, "concat_in_place", vi,
                          [helper.make_tensor_value_info("y", F, [1, 20, 5, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return "concat_in_place", m, [("a", a), ("b", b)]


def fused_runs():
    """Runs of element-wise nodes that the backend lowers as one loop
    (fuse_eltwise.c): a HardSwish written out between DequantizeLinear and
    QuantizeLinear, an int8 Q/DQ pair inside the run, scalar operands; and a
    float run at opset 10 (Clip bounds as attributes) reading a graph input
    twice."""
    sh = [1, 5, 7, 9]
    x = rng.integers(0, 256, sh).astype(np.uint8)
    sc = lambda v, dt=np.float32: np.array(v, dt)  # noqa: E731
    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("s", sc(0.05)), ("z", sc(128, np.uint8)), ("three", sc(3.0)), ("zero", sc(0.0)),
        ("six", sc(6.0)), ("s8", sc(0.03)), ("z8", sc(-3, np.int8)), ("s2", sc(0.045)),
        ("z2", sc(7, np.uint8))]]
    nodes_hs = [helper.make_node(op, ins, [out]) for op, ins, out in [
        ("DequantizeLinear", ["x", "s", "z"], "d"), ("Add", ["d", "three"], "a"),
        ("Clip", ["a", "zero", "six"], "c"), ("Div", ["c", "six"], "h"),
        ("Mul", ["d", "h"], "m"), ("QuantizeLinear", ["m", "s8", "z8"], "q8"),
        ("DequantizeLinear", ["q8", "s8", "z8"], "e"), ("Neg", ["e"], "ne"),
        ("Sub", ["ne", "d"], "u"), ("QuantizeLinear", ["u", "s2", "z2"], "y")]]
    g = helper.make_graph(nodes_hs, "fused_q", [helper.make_tensor_value_info("x", TensorProto.UINT8, sh)],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, sh)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    yield "fused_qdq_hardswish", m, [("x", x)]
    xf = rnd(2, 3, 11, 5)
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "x"], ["p"]),
             helper.make_node("Clip", ["p"], ["c"], min=-0.5, max=0.75),
             helper.make_node("LeakyRelu", ["c"], ["l"], alpha=0.3),
             helper.make_node("Abs", ["l"], ["y"])]
    g = helper.make_graph(nodes, "fused_f", [helper.make_tensor_value_info("x", F, xf.shape)],
                          [helper.make_tensor_value_info("y", F, xf.shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 10)])
    m.ir_version = 8
    yield "fused_float_opset10", m, [("x", xf)]
    # table runs (a function of one byte tensor, 2048 elements or more):
    # the HardSwish run above on every uint8 value, with its int8 Q output
    # stored too (two tables, two lookups, over several kernel tasks and a
    # tail of 31 bytes); an int8 input whose run ends in a DequantizeLinear
    # producing a float output, which planning leaves out of the table run
    sh = [1, 9, 61, 67]
    x = rng.integers(0, 256, sh).astype(np.uint8)
    x.flat[:256] = np.arange(256)
    g = helper.make_graph(nodes_hs, "table_u8", [helper.make_tensor_value_info("x", TensorProto.UINT8, sh)],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, sh),
                           helper.make_tensor_value_info("q8", TensorProto.INT8, sh)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    yield "table_two_outputs_u8", m, [("x", x)]
    x = rng.integers(-128, 128, [3, 1001]).astype(np.int8)
    x.flat[:256] = np.arange(-128, 128)
    nodes = [helper.make_node("DequantizeLinear", ["x", "s8", "z8"], ["d"]),
             helper.make_node("LeakyRelu", ["d"], ["l"], alpha=0.25),
             helper.make_node("QuantizeLinear", ["l", "s2", "z2"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s2", "z2"], ["y"])]
    g = helper.make_graph(nodes, "table_s8", [helper.make_tensor_value_info("x", TensorProto.INT8, x.shape)],
                          [helper.make_tensor_value_info("y", F, x.shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    yield "table_trailing_dq_s8", m, [("x", x)]
    # pooling right after a per-tensor 8-bit DQ reads the bytes (no float
    # tensor): GlobalAveragePool into a Q, a padded AveragePool counting the
    # pads, GlobalMaxPool; and a DQ that another node reads too (not taken)
    def dq_pool(name, xq, pool, out_shape, quantize, **attrs):
        nodes = [helper.make_node("DequantizeLinear", ["x", "ps", "pz"], ["d"]),
                 helper.make_node(pool, ["d"], ["p" if quantize else "y"], **attrs)]
        outs = [helper.make_tensor_value_info("y", TensorProto.UINT8 if quantize else F, out_shape)]
        if quantize:
            nodes.append(helper.make_node("QuantizeLinear", ["p", "s2", "z2"], ["y"]))
        if name == "dq_pool_shared":
            nodes.append(helper.make_node("Neg", ["d"], ["y2"]))
            outs.append(helper.make_tensor_value_info("y2", F, xq.shape))
        zt = np.uint8 if xq.dtype == np.uint8 else np.int8
        pinits = inits + [numpy_helper.from_array(sc(0.0371), "ps"),
                          numpy_helper.from_array(sc(-5 if zt == np.int8 else 131, zt), "pz")]
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(
            "x", helper.np_dtype_to_tensor_dtype(xq.dtype), xq.shape)], outs, pinits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return name, m, [("x", xq)]
    xu = rng.integers(0, 256, [2, 7, 9, 11]).astype(np.uint8)
    xs = rng.integers(-128, 128, [2, 3, 10, 13]).astype(np.int8)
    yield dq_pool("dq_globalavgpool_u8", xu, "GlobalAveragePool", [2, 7, 1, 1], True)
    yield dq_pool("dq_avgpool_s8", xs, "AveragePool", [2, 3, 5, 7], False, kernel_shape=[3, 3],
                  strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    yield dq_pool("dq_globalmaxpool_s8", xs, "GlobalMaxPool", [2, 3, 1, 1], False)
    yield dq_pool("dq_pool_shared", xu, "GlobalAveragePool", [2, 7, 1, 1], False)
    # a DQ that already ends an element-wise run (Q -> DQ, the bytes in
    # registers only) stays in it
    xf = rnd(1, 5, 6, 7) * 3
    nodes = [helper.make_node("QuantizeLinear", ["x", "s2", "z2"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s2", "z2"], ["d"]),
             helper.make_node("GlobalAveragePool", ["d"], ["y"])]
    g = helper.make_graph(nodes, "qdq_run_then_pool", [helper.make_tensor_value_info("x", F, xf.shape)],
                          [helper.make_tensor_value_info("y", F, [1, 5, 1, 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    yield "qdq_run_then_pool", m, [("x", xf)]


def fp8_weight_models():
    """Float Conv (plain, grouped, depthwise), Gemm (transB 0 and 1) and
    MatMul whose weight is DequantizeLinear of a FLOAT8E4M3FN or FLOAT8E5M2
    initializer, with one scale or one per output channel: the kernels take
    the bytes and widen them (`FP8 ... weights` in the report).  The weights
    hold every finite code (+-0, subnormals, the largest magnitudes), sorted
    by magnitude so that each output channel sees one magnitude band, and
    the outputs are compared per channel, so a wrong code in the smallest
    band would show.  E5M2 Gemm/MatMul/unpadded Conv get extra channels with
    +Inf, -Inf and a NaN weight.  Then forms that must keep today's path
    (DequantizeLinear at run time, loop lowering): the DequantizeLinear's
    output also read by another node, an E4M3FN NaN code, Gemm alpha != 1,
    a per-axis scale along the reduction axis."""
    import ml_dtypes
    E4, E5 = TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2
    specs = {E4: ("e4m3fn", ml_dtypes.float8_e4m3fn, 0.01),
             E5: ("e5m2", ml_dtypes.float8_e5m2, 1e-4)}

    def band_rows(ttype, rows, per, specials):
        """[rows, per] codes: every finite code of the type in order of
        magnitude (+v and -v together), cycling; with specials, three more
        rows led by +Inf, -Inf and NaN (E5M2)."""
        npt = specs[ttype][1]
        codes = np.arange(256, dtype=np.uint8)
        vals = codes.view(npt).astype(np.float32)
        codes = codes[np.isfinite(vals)]
        codes = codes[np.argsort(np.abs(codes.view(npt).astype(np.float32)), kind="stable")]
        assert rows * per >= codes.size
        w = np.resize(codes, rows * per).reshape(rows, per)
        if specials:
            extra = np.resize(codes[100:], (3, per))
            extra[:, 0] = [0x7c, 0xfc, 0x7e]
            w = np.concatenate([w, extra])
        return w

    def scales(ttype, w, per_axis):
        npt = specs[ttype][1]
        if not per_axis:
            return np.array(specs[ttype][2], np.float32)
        v = np.abs(w.view(npt).astype(np.float32))
        v[~np.isfinite(v)] = 0
        peak = np.max(v, axis=1)
        return (np.where(peak > 0, 1 / np.maximum(peak, 1e-30), 1.0) *
                rng.uniform(0.5, 1.0, w.shape[0])).astype(np.float32)

    def bias_for(ttype, w, s):
        """A bias of each channel's magnitude (it must not hide the weights)."""
        v = np.abs(w.view(specs[ttype][1]).astype(np.float32))
        v[~np.isfinite(v)] = 1
        mag = np.max(v, axis=1) * (s if s.ndim else s.item())
        return (rng.standard_normal(w.shape[0]) * mag).astype(np.float32)

    def model(name, op, x, wq, ttype, s, y_shape, axis, bias=None, dq_axis=0, extra_nodes=(),
              extra_outputs=(), **attrs):
        inits = [numpy_helper.from_array(x_, n_) for n_, x_ in [("s", s)]]
        wt = helper.make_tensor("wq", ttype, wq.shape, wq.tobytes(), raw=True)
        zp = helper.make_tensor("z", ttype, s.shape, bytes(max(1, s.size)), raw=True)
        inits += [wt, zp]
        ins = ["x", "w"]
        if bias is not None:
            inits.append(numpy_helper.from_array(bias, "b"))
            ins.append("b")
        dq_attrs = {"axis": dq_axis} if s.ndim else {}
        nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"], name="dq", **dq_attrs),
                 helper.make_node(op, ins, ["y"], name="n0", **attrs)] + list(extra_nodes)
        outs = [helper.make_tensor_value_info("y", F, y_shape)] + list(extra_outputs)
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", F, x.shape)],
                              outs, inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
        m.ir_version = 9
        return name, m, [("x", x)], axis

    for ttype in (E4, E5):
        tname = specs[ttype][0]
        for per_axis in (False, True):
            gran = "axis" if per_axis else "tensor"
            five = ttype == E5
            # Conv, no padding (+Inf/-Inf/NaN channels for E5M2), bias
            w = band_rows(ttype, 16, 16, five)
            s = scales(ttype, w, per_axis)
            yield model("fp8_%s_conv_%s" % (tname, gran), "Conv", rnd(1, 4, 7, 6),
                        w.reshape(-1, 4, 2, 2), ttype, s, [1, w.shape[0], 6, 5], 1,
                        bias_for(ttype, w, s))
            # grouped, batch 2, pads, stride 2
            w = band_rows(ttype, 18, 18, False)
            s = scales(ttype, w, per_axis)
            yield model("fp8_%s_conv_groups_%s" % (tname, gran), "Conv", rnd(2, 6, 9, 7),
                        w.reshape(18, 2, 3, 3), ttype, s, [2, 18, 5, 4], 1, group=3,
                        pads=[1, 1, 1, 1], strides=[2, 2])
            # depthwise, bias
            w = band_rows(ttype, 30, 9, False)
            s = scales(ttype, w, per_axis)
            yield model("fp8_%s_conv_dw_%s" % (tname, gran), "Conv", rnd(1, 30, 8, 7),
                        w.reshape(30, 1, 3, 3), ttype, s, [1, 30, 8, 7], 1,
                        bias_for(ttype, w, s), group=30, pads=[1, 1, 1, 1])
            # Gemm, B [K, N], channels along axis 1, bias [N]
            w = band_rows(ttype, 13, 20, five)
            s = scales(ttype, w, per_axis)
            yield model("fp8_%s_gemm_%s" % (tname, gran), "Gemm", rnd(5, 20),
                        np.ascontiguousarray(w.T), ttype, s, [5, w.shape[0]], 1,
                        bias_for(ttype, w, s), dq_axis=1)
            # Gemm transB=1, B [N, K], channels along axis 0, bias [N], beta
            w = band_rows(ttype, 17, 16, False)
            s = scales(ttype, w, per_axis)
            yield model("fp8_%s_gemm_tb_%s" % (tname, gran), "Gemm", rnd(3, 16), w, ttype, s,
                        [3, 17], 1, bias_for(ttype, w, s), dq_axis=0, transB=1, beta=0.5)
            # MatMul, B [K, N], channels along axis 1
            w = band_rows(ttype, 15, 18, five)
            s = scales(ttype, w, per_axis)
            yield model("fp8_%s_matmul_%s" % (tname, gran), "MatMul", rnd(6, 18),
                        np.ascontiguousarray(w.T), ttype, s, [6, w.shape[0]], 1, dq_axis=1)
    # declined: the weight also read by a Relu (a second output)
    w = band_rows(E4, 15, 18, False)
    s = scales(E4, w, True)
    yield model("fp8_declined_shared_dq", "MatMul", rnd(6, 18), np.ascontiguousarray(w.T), E4, s,
                [6, 15], 1, dq_axis=1, extra_nodes=[helper.make_node("Relu", ["w"], ["r"])],
                extra_outputs=[helper.make_tensor_value_info("r", F, [18, 15])])
    # declined: an E4M3FN NaN code (0x7f) among the weights
    w[3, 5] = 0x7f
    yield model("fp8_declined_nan_code", "MatMul", rnd(6, 18), np.ascontiguousarray(w.T), E4, s,
                [6, 15], 1, dq_axis=1)
    # declined: Gemm alpha != 1; a per-axis scale along K
    w = band_rows(E5, 13, 20, False)
    s = scales(E5, w, True)
    yield model("fp8_declined_gemm_alpha", "Gemm", rnd(5, 20), np.ascontiguousarray(w.T), E5, s,
                [5, 13], 1, dq_axis=1, alpha=0.5)
    sk = np.full(20, 3e-3, np.float32)
    yield model("fp8_declined_scale_along_k", "Gemm", rnd(5, 20), np.ascontiguousarray(w.T), E5,
                sk, [5, 13], 1, dq_axis=0)


def close_channels(got, want, axis, rtol):
    """FP8-weight outputs: non-finite values equal (NaN where NaN, the same
    Inf), and per output channel |got - want| <= rtol * max|want| over the
    channel's finite values (each channel has weights of one magnitude)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        return False, "shape %s != %s" % (got.shape, want.shape)
    fin = np.isfinite(want)
    if (not np.array_equal(np.isnan(got), np.isnan(want)) or
            not np.array_equal(got[np.isinf(want)], want[np.isinf(want)]) or
            not np.all(np.isfinite(got[fin]))):
        return False, "non-finite values differ"
    g = np.moveaxis(np.where(fin, got, 0), axis, 0).reshape(got.shape[axis], -1)
    w = np.moveaxis(np.where(fin, want, 0), axis, 0).reshape(want.shape[axis], -1)
    scale = np.maximum(np.max(np.abs(w), axis=1), 1e-30)
    worst = float(np.max(np.max(np.abs(g - w), axis=1) / scale)) if w.size else 0.0
    return worst <= rtol, "max err per channel %.3g of its magnitude" % worst


def cases():
    yield case("add_bcast", "Add", [("a", rnd(2, 3, 5, 7)), ("b", rnd(3, 1, 7))], [2, 3, 5, 7])
    yield case("sub_scalar", "Sub", [("a", rnd(13, 7))], [13, 7], inits=[("b", rnd(1))])
    yield case("mul_bcast", "Mul", [("a", rnd(1, 7, 1)), ("b", rnd(3, 1, 5))], [3, 7, 5])
    yield case("div", "Div", [("a", rnd(3, 13))],
               [3, 13], inits=[("b", (np.abs(rnd(3, 13)) + 0.5).astype(np.float32))])
    for op in ["Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs"]:
        yield case(op.lower(), op, [("x", rnd(3, 7, 13))], [3, 7, 13])
    yield case("hardsigmoid", "HardSigmoid", [("x", rnd(5, 11) * 4)], [5, 11], alpha=0.3,
               beta=0.4)
    yield case("hardswish", "HardSwish", [("x", rnd(5, 11) * 4)], [5, 11])
    yield case("slice", "Slice", [("x", rnd(5, 11, 7))], [2, 11, 4],
               inits=[("st", np.array([1, -1], np.int64)), ("en", np.array([4, -9], np.int64)),
                      ("ax", np.array([0, 2], np.int64)), ("sp", np.array([2, -2], np.int64))])
    yield case("leakyrelu", "LeakyRelu", [("x", rnd(5, 11))], [5, 11], alpha=0.2)
    yield case("clip", "Clip", [("x", rnd(7, 13))], [7, 13],
               inits=[("lo", np.array(-0.5, np.float32)), ("hi", np.array(0.7, np.float32))])
    yield case("clip_v6", "Clip", [("x", rnd(7, 13))], [7, 13], opset=6, min=-0.3, max=0.4)
    # convolution: groups, pads, strides, dilations, odd sizes
    yield case("conv_basic", "Conv", [("x", rnd(1, 3, 11, 9))], [1, 7, 11, 9],
               inits=[("w", rnd(7, 3, 3, 3)), ("b", rnd(7))], pads=[1, 1, 1, 1])
    yield case("conv_stride_dil", "Conv", [("x", rnd(2, 3, 13, 12))], [2, 5, 5, 4],
               inits=[("w", rnd(5, 3, 3, 2))], strides=[2, 3], dilations=[2, 1],
               pads=[1, 0, 0, 1])
    yield case("conv_groups", "Conv", [("x", rnd(1, 6, 9, 7))], [1, 9, 9, 7],
               inits=[("w", rnd(9, 2, 3, 3)), ("b", rnd(9))], group=3, pads=[1, 1, 1, 1])
    yield case("conv_depthwise", "Conv", [("x", rnd(1, 13, 8, 7))], [1, 13, 4, 4],
               inits=[("w", rnd(13, 1, 3, 3))], group=13, strides=[2, 2],
               auto_pad="SAME_UPPER")
    yield case("conv1d", "Conv", [("x", rnd(2, 3, 17))], [2, 4, 15],
               inits=[("w", rnd(4, 3, 3)), ("b", rnd(4))])
    yield case("gemm", "Gemm", [("a", rnd(7, 13))], [7, 5],
               inits=[("b", rnd(13, 5)), ("c", rnd(5))])
    yield case("gemm_trans", "Gemm", [("a", rnd(13, 7))], [7, 5],
               inits=[("b", rnd(5, 13)), ("c", rnd(7, 1))], transA=1, transB=1, alpha=0.5,
               beta=2.0)
    yield case("matmul_2d", "MatMul", [("a", rnd(7, 13)), ("b", rnd(13, 3))], [7, 3])
    yield case("matmul_batched", "MatMul", [("a", rnd(2, 3, 5, 13)), ("b", rnd(3, 13, 7))],
               [2, 3, 5, 7])
    yield case("matmul_vec", "MatMul", [("a", rnd(13)), ("b", rnd(2, 13, 7))], [2, 7])
    yield case("maxpool", "MaxPool", [("x", rnd(1, 3, 11, 13))], [1, 3, 6, 7],
               kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    yield case("maxpool_ceil", "MaxPool", [("x", rnd(2, 7, 12, 9))], [2, 7, 6, 4],
               kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    # 8-bit MaxPool (the kernel library's): strides 1 to 4, dilations,
    # asymmetric pads, ceil_mode, 1-D; -128 and 0 inputs meet the padding
    u8 = lambda *sh: rng.integers(0, 256, sh).astype(np.uint8)  # noqa: E731
    s8 = lambda *sh: rng.integers(-128, 128, sh).astype(np.int8)  # noqa: E731
    U8, S8 = TensorProto.UINT8, TensorProto.INT8
    yield case("maxpool_u8", "MaxPool", [("x", u8(1, 3, 11, 13))], [1, 3, 6, 7], U8,
               kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    yield case("maxpool_s8_dil", "MaxPool", [("x", s8(2, 5, 13, 12))], [2, 5, 12, 4], S8,
               kernel_shape=[3, 2], strides=[1, 3], dilations=[2, 2], pads=[1, 0, 2, 1])
    yield case("maxpool_u8_ceil", "MaxPool", [("x", u8(2, 7, 12, 9))], [2, 7, 6, 4], U8,
               kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    yield case("maxpool_s8_1d", "MaxPool", [("x", s8(2, 3, 17))], [2, 3, 6], S8,
               kernel_shape=[4], strides=[3], pads=[2, 1])
    yield case("maxpool_u8_same", "MaxPool", [("x", u8(1, 4, 9, 30))], [1, 4, 9, 30], U8,
               kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    yield case("maxpool_s8_s4", "MaxPool", [("x", np.full((1, 2, 17, 19), -128, np.int8))],
               [1, 2, 5, 5], S8, kernel_shape=[5, 5], strides=[4, 4], pads=[2, 2, 2, 2])
    # the 3x3 stride-2 path (qp_rows_3s2): 32-byte vectors (rows >= 32,
    # >= 16 outputs) and 16-byte ones, left pad 0 and 1, ceil_mode windows
    # running past the row, int8 and uint8
    yield case("maxpool_u8_3s2_wide", "MaxPool", [("x", u8(1, 3, 23, 111))], [1, 3, 11, 55], U8,
               kernel_shape=[3, 3], strides=[2, 2])
    yield case("maxpool_s8_3s2_pad_ceil", "MaxPool", [("x", s8(2, 2, 20, 64))], [2, 2, 11, 33],
               S8, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    yield case("maxpool_u8_3s2_narrow", "MaxPool", [("x", u8(1, 4, 27, 27))], [1, 4, 13, 13], U8,
               kernel_shape=[3, 3], strides=[2, 2])
    yield case("maxpool_s8_3s2_narrow_pad", "MaxPool", [("x", s8(1, 3, 16, 17))], [1, 3, 8, 9],
               S8, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    yield case("maxpool_u8_3s2_ceil", "MaxPool", [("x", u8(1, 2, 9, 20))], [1, 2, 4, 10], U8,
               kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    yield case("avgpool_pad", "AveragePool", [("x", rnd(1, 5, 9, 11))], [1, 5, 5, 6],
               kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    yield case("avgpool_incl", "AveragePool", [("x", rnd(1, 5, 9, 11))], [1, 5, 5, 6],
               kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    yield case("globalavgpool", "GlobalAveragePool", [("x", rnd(2, 13, 7, 5))], [2, 13, 1, 1])
    yield case("concat", "Concat", [("a", rnd(2, 3, 5)), ("b", rnd(2, 7, 5))], [2, 13, 5],
               inits=[("c", rnd(2, 3, 5))], axis=1)
    yield concat_in_place()
    yield from fused_runs()
    yield case("reshape", "Reshape", [("x", rnd(3, 7, 5))], [21, 5],
               inits=[("s", np.array([-1, 5], np.int64))])
    yield case("flatten", "Flatten", [("x", rnd(3, 7, 5))], [3, 35])
    yield case("squeeze", "Squeeze", [("x", rnd(3, 1, 5))], [3, 5],
               inits=[("ax", np.array([1], np.int64))])
    yield case("unsqueeze", "Unsqueeze", [("x", rnd(3, 5))], [3, 1, 5],
               inits=[("ax", np.array([1], np.int64))])
    yield case("identity", "Identity", [("x", rnd(3, 5))], [3, 5])
    yield case("transpose", "Transpose", [("x", rnd(2, 3, 5, 7))], [5, 2, 7, 3],
               perm=[2, 0, 3, 1])
    yield case("softmax", "Softmax", [("x", rnd(3, 13))], [3, 13])
    yield case("softmax_axis1", "Softmax", [("x", rnd(2, 7, 5))], [2, 7, 5], axis=1)
    yield case("softmax_v11", "Softmax", [("x", rnd(2, 7, 5))], [2, 7, 5], opset=11, axis=1)
    yield case("batchnorm", "BatchNormalization", [("x", rnd(2, 7, 5, 3))], [2, 7, 5, 3],
               inits=[("s", rnd(7)), ("b", rnd(7)), ("m", rnd(7)),
                      ("v", (np.abs(rnd(7)) + 0.1).astype(np.float32))])
    # Q/DQ: per tensor and per axis, int8 and uint8; values that hit .5
    # ties and saturate
    xq = (rng.integers(-400, 400, (3, 7, 5)) / 2).astype(np.float32)
    yield case("quantize_u8", "QuantizeLinear", [("x", xq)], [3, 7, 5], TensorProto.UINT8,
               inits=[("s", np.array(0.5, np.float32)), ("z", np.array(128, np.uint8))])
    yield case("quantize_s8_axis", "QuantizeLinear", [("x", xq)], [3, 7, 5], TensorProto.INT8,
               inits=[("s", (rng.random(7) + 0.25).astype(np.float32)),
                      ("z", rng.integers(-5, 5, 7).astype(np.int8))], axis=1)
    yield case("dequantize_u8", "DequantizeLinear",
               [("x", rng.integers(0, 256, (3, 7, 5)).astype(np.uint8))], [3, 7, 5],
               inits=[("s", np.array(0.037, np.float32)), ("z", np.array(131, np.uint8))])
    yield case("dequantize_s8_axis", "DequantizeLinear",
               [("x", rng.integers(-128, 128, (3, 7, 5)).astype(np.int8))], [3, 7, 5],
               inits=[("s", (rng.random(5) + 0.01).astype(np.float32)),
                      ("z", rng.integers(-3, 3, 5).astype(np.int8))], axis=2)
    # float8: magnitudes from subnormal to beyond the largest finite value,
    # exact ties between neighbouring codes, -0, NaN and +-Inf
    import ml_dtypes
    for tname, ttype, npt in (("e4m3fn", TensorProto.FLOAT8E4M3FN, ml_dtypes.float8_e4m3fn),
                              ("e5m2", TensorProto.FLOAT8E5M2, ml_dtypes.float8_e5m2)):
        codes = np.arange(0, 0x7f, dtype=np.uint8).view(npt).astype(np.float32)
        codes = codes[np.isfinite(codes)]
        ties = (codes[:-1] + codes[1:]) / 2
        mags = np.exp2(rng.uniform(-20, 18, 200)).astype(np.float32)
        specials = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e30, -1e30],
                            np.float32)
        xf = np.concatenate([ties, -ties, mags, -mags, specials]).astype(np.float32)
        yield case("quantize_" + tname, "QuantizeLinear", [("x", xf)], [xf.size], ttype,
                   inits=[("s", np.array(1.0, np.float32)), ("z", np.zeros((), npt))],
                   opset=19)
        yield case("quantize_%s_axis" % tname, "QuantizeLinear", [("x", xf.reshape(-1, 2))],
                   [xf.size // 2, 2], ttype, opset=19, axis=1,
                   inits=[("s", np.array([0.75, 3.0], np.float32)), ("z", np.zeros(2, npt))])
    yield case("dequantize_i32", "DequantizeLinear",
               [("x", rng.integers(-2**30, 2**30, (13,)).astype(np.int32))], [13],
               inits=[("s", (rng.random(13) + 0.01).astype(np.float32))], axis=0)
    for name, m, inputs, axis in fp8_weight_models():
        FP8_WEIGHTS[name] = (0 if "declined" in name else 1, axis)
        yield name, m, inputs


def main():
    only = sys.argv[1:]
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for name, m, inputs in cases():
            if only and name not in only:
                continue
            path = os.path.join(d, name + ".onnx")
            onnx.save(m, path)
            report = os.path.join(d, name + ".report")
            so = cgutil.compile_so(path, d, name, ["--report", report])
            if name in REPORTED:  # the lowering the case is about must have been taken
                what, want_n = REPORTED[name]
                with open(report) as f:
                    got_n = f.read().count(what)
                if got_n != want_n:
                    print("%-22s FAIL  %d report lines with '%s', want %d" % (name, got_n, what,
                                                                             want_n))
                    failures += 1
            if name in FP8_WEIGHTS:  # the kernel widens the FP8 bytes, or must not
                with open(report) as f:
                    widened = sum(" weights (F16C widening)" in line or
                                  " weights (scalar widening)" in line for line in f)
                if widened != FP8_WEIGHTS[name][0]:
                    print("%-22s FAIL  %d FP8-weight kernels" % (name, widened))
                    failures += 1
            sig, got = cgutil.run_so(so, name, [a for _, a in inputs])
            if name in FP8_NO_DQ:
                base = os.path.join(d, name + "_O0")
                subprocess.run([cgutil.OCTET, "compile", path, "-o", base, "--emit=llvm", "-O0"],
                               check=True)
                with open(base + ".ll") as f:
                    ll = f.read()
                # node functions are NAME_nK, K the node's index; -O0 keeps them
                fns = ["@%s_O0_n%d(" % (name, k) in ll for k in range(2)]
                if fns != [False, True] or sig["scratch_size"] > FP8_NO_DQ[name]:
                    print("%-22s FAIL  DequantizeLinear code %s, scratch %d" %
                          (name, fns[0], sig["scratch_size"]))
                    failures += 1
            fp8 = m.graph.output[0].type.tensor_type.elem_type in (TensorProto.FLOAT8E4M3FN,
                                                                   TensorProto.FLOAT8E5M2)
            ref = cgutil.run_ref(path, inputs, extra=["--format=pb"] if fp8 else [])
            for j, out in enumerate(m.graph.output):
                want = ref[out.name]
                if fp8:  # compare the float8 bytes
                    want = np.ascontiguousarray(want).view(np.uint8)
                made_by = {o: nd.op_type for nd in m.graph.node for o in nd.output}[out.name]
                if name in FP8_WEIGHTS:
                    ok, how = close_channels(got[j], want, FP8_WEIGHTS[name][1] if j == 0 else 1,
                                             RTOL)
                elif (made_by in ("QuantizeLinear", "DequantizeLinear") or
                        np.issubdtype(want.dtype, np.integer)):
                    ok = got[j].dtype == want.dtype and np.array_equal(got[j], want)
                    how = "exact" if ok else "max diff %s" % np.max(
                        np.abs(got[j].astype(np.float64) - want.astype(np.float64)))
                else:
                    ok, how = cgutil.close(got[j], want, RTOL)
                print("%-22s %s  %s" % (name if j == 0 else "  " + out.name, "ok  " if ok else "FAIL", how))
                failures += not ok
    print("%d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
