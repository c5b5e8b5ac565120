"""ConvTranspose, DynamicQuantizeLinear, MatMulInteger, ConvInteger and
batched MatMul (on the kernel library's GEMM: the compile report says
so) compiled on their own (one-node models made with the onnx
package, random inputs of awkward sizes) and run against the reference
interpreter (`octet run`) and, where it runs the op, ONNX Runtime (an
independent oracle).  Float outputs: |got - want| <= 1e-5 * max(1,
max|want|); integer outputs (MatMulInteger, ConvInteger, the uint8 output
and zero point of DynamicQuantizeLinear) and its float32 scale: exactly
equal.  Every attribute variant the interpreter supports has a case:
ConvTranspose groups, strides, dilations, pads, output_padding,
output_shape and each auto_pad; per-tensor, per-row and per-column zero
points; batch broadcasting of MatMul and MatMulInteger."""
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)

RTOL = 1e-5
rng = np.random.default_rng(13)
F = TensorProto.FLOAT
I32 = TensorProto.INT32
U8 = TensorProto.UINT8

try:
    import onnxruntime as ort
except ImportError:  # the interpreter alone then
    ort = None


def rnd(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def q8(dtype, *shape):
    lo, hi = (0, 256) if dtype == np.uint8 else (-128, 128)
    return rng.integers(lo, hi, shape).astype(dtype)


def case(name, op, inputs, outs, inits=(), opset=17, ort_ok=True, node_inputs=None, **attrs):
    """inputs: (name, array) graph inputs; inits: (name, array) constants,
    listed after the inputs (None: an omitted input "");
    outs: (name, elem type, shape) graph outputs ("" leaves an output
    unnamed, omitted).  ort_ok: ONNX Runtime runs this form.  node_inputs:
    the node's input names in order, when not inputs then inits."""
    in_names = [n for n, _ in inputs] + [n if a is not None else "" for n, a in inits]
    in_names = node_inputs if node_inputs is not None else in_names
    node = helper.make_node(op, in_names, [o[0] for o in outs], name="n0", **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in inputs]
    g = helper.make_graph([node], name, vi,
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in outs if n],
                          [numpy_helper.from_array(a, n) for n, a in inits if a is not None])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    # the output shapes as ONNX's shape inference gives them (an oracle
    # independent of octet's); the shapes written above must agree
    inferred = onnx.shape_inference.infer_shapes(
        helper.make_model(helper.make_graph(
            [node], name, vi, [helper.make_tensor_value_info(n, t, None) for n, t, _ in outs if n],
            list(g.initializer)), opset_imports=m.opset_import), strict_mode=True)
    for o, io in zip(m.graph.output, inferred.graph.output):
        got = [dd.dim_value for dd in io.type.tensor_type.shape.dim]
        want = [dd.dim_value for dd in o.type.tensor_type.shape.dim]
        assert got == want, (name, o.name, got, want)
    return name, m, inputs, ort_ok


def convtranspose_cases():
    def ct(name, x, w, y_shape, bias=True, **attrs):
        inits = [("w", w)] + ([("b", rnd(y_shape[1]))] if bias else [])
        return case(name, "ConvTranspose", [("x", x)], [("y", F, y_shape)], inits, **attrs)

    yield ct("ct2d_basic", rnd(2, 3, 5, 6), rnd(3, 4, 3, 3), [2, 4, 7, 8])
    yield ct("ct2d_stride_pads", rnd(1, 3, 5, 7), rnd(3, 2, 3, 4), [1, 2, 10, 15],
             strides=[2, 2], pads=[1, 0, 0, 1])
    yield ct("ct2d_dilation_outpad", rnd(1, 2, 4, 5), rnd(2, 3, 3, 2), [1, 3, 16, 13],
             strides=[3, 2], dilations=[2, 3], output_padding=[2, 1], bias=False)
    yield ct("ct2d_group", rnd(2, 6, 4, 5), rnd(6, 2, 3, 3), [2, 6, 9, 11], group=3,
             strides=[2, 2])
    yield ct("ct2d_depthwise", rnd(1, 4, 6, 5), rnd(4, 1, 3, 3), [1, 4, 6, 5], group=4,
             pads=[1, 1, 1, 1])
    yield ct("ct2d_output_shape", rnd(1, 3, 4, 5), rnd(3, 2, 3, 3), [1, 2, 10, 12],
             strides=[2, 2], output_shape=[10, 12])
    yield ct("ct2d_output_shape_big", rnd(1, 2, 3, 3), rnd(2, 2, 2, 2), [1, 2, 9, 8],
             strides=[2, 2], output_shape=[9, 8], ort_ok=False)  # ORT refuses, bias-only tail
    yield ct("ct2d_same_upper", rnd(1, 2, 5, 4), rnd(2, 3, 4, 3), [1, 3, 10, 8],
             strides=[2, 2], auto_pad="SAME_UPPER")
    yield ct("ct2d_same_lower", rnd(1, 2, 5, 4), rnd(2, 3, 4, 3), [1, 3, 10, 8],
             strides=[2, 2], auto_pad="SAME_LOWER")
    yield ct("ct2d_valid", rnd(1, 2, 5, 4), rnd(2, 3, 3, 2), [1, 3, 11, 11],
             strides=[2, 3], auto_pad="VALID")
    yield ct("ct1d", rnd(3, 4, 9), rnd(4, 5, 4), [3, 5, 17], strides=[2], pads=[1, 2])
    yield ct("ct1d_kernel_shape", rnd(1, 2, 7), rnd(2, 3, 3), [1, 3, 9], kernel_shape=[3])
    yield ct("ct3d", rnd(1, 2, 3, 4, 5), rnd(2, 3, 2, 3, 2), [1, 3, 6, 8, 10],
             strides=[2, 2, 2], pads=[1, 1, 0, 0, 1, 0], output_padding=[1, 1, 0])


def dql_cases():
    def dql(name, x, outs=("y", "s", "z"), ort_ok=True):
        o = [(outs[0], U8, list(x.shape)), (outs[1], F, []), (outs[2], U8, [])]
        return case(name, "DynamicQuantizeLinear", [("x", x)], o, opset=11, ort_ok=ort_ok)

    yield dql("dql_mixed", rnd(3, 7, 11))
    yield dql("dql_positive", np.abs(rnd(5, 13)) + 0.5)
    yield dql("dql_negative", -np.abs(rnd(37)) - 0.25)
    # all zero: the spec's reference gives scale 1/255, ONNX Runtime 0
    yield dql("dql_zero", np.zeros((4, 3), np.float32), ort_ok=False)
    # zero point rounding: lo/scale at exact ties; values on rounding ties
    tie = np.array([-1.0, 2.0, 0.5, -0.5, 1.5, 1e-9, -3.0, 2.9], np.float32)
    yield dql("dql_ties", np.concatenate([tie, rnd(25)]))
    # scale exactly 1 and 0 - lo/scale = 2.5: the zero point rounds to 2;
    # x/scale on ties (0.5, 1.5, -0.5) round half to even too
    half = np.array([-2.5, 252.5, 0.5, 1.5, -0.5, 2.5, 100.5, -1.5], np.float32)
    yield dql("dql_zero_point_tie", np.concatenate([half, rng.uniform(-2.5, 252.5, 29)
                                                    .astype(np.float32)]))
    yield dql("dql_no_scale_out", rnd(2, 9), outs=("y", "", "z"), ort_ok=False)


def matmulinteger_cases():
    def mi(name, a, b, y_shape, za=None, zb=None, ort_ok=True, const_b=False):
        """const_b: b and its zero point constants, a's zero point a graph
        input (a run-time value, as DynamicQuantizeLinear makes it)."""
        if const_b:
            # a graph input of one element ([1]: the runner passes arrays)
            ins = [("a", a)] + ([("za", za.reshape(1))] if za is not None else [])
            inits = [("b", b)] + ([("zb", zb)] if zb is not None else [])
            order = ["a", "b"] + (["za" if za is not None else ""] if zb is not None or
                                  za is not None else []) + (["zb"] if zb is not None else [])
            return case(name, "MatMulInteger", ins, [("y", I32, y_shape)], inits, opset=10,
                        ort_ok=ort_ok, node_inputs=order)
        inits = []
        if za is not None or zb is not None:
            inits = [("za", za), ("zb", zb)]
            if zb is None:
                inits = inits[:1]
        return case(name, "MatMulInteger", [("a", a), ("b", b)], [("y", I32, y_shape)], inits,
                    opset=10, ort_ok=ort_ok)

    u8, s8 = np.uint8, np.int8
    yield mi("mi_u8u8", q8(u8, 7, 13), q8(u8, 13, 9), [7, 9],
             np.array(131, u8), np.array(17, u8))
    yield mi("mi_u8s8", q8(u8, 5, 33), q8(s8, 33, 18), [5, 18],
             np.array(3, u8), np.array(-5, s8))
    yield mi("mi_s8s8_no_zp", q8(s8, 6, 10), q8(s8, 10, 7), [6, 7])
    yield mi("mi_a_zp_only", q8(u8, 4, 9), q8(u8, 9, 5), [4, 5], np.array(200, u8))
    yield mi("mi_b_zp_per_column", q8(u8, 6, 11), q8(s8, 11, 9), [6, 9],
             np.array(12, u8), q8(s8, 9))
    yield mi("mi_a_zp_per_row", q8(u8, 6, 11), q8(u8, 11, 9), [6, 9], q8(u8, 6),
             np.array(7, u8), ort_ok=False)
    yield mi("mi_batched", q8(u8, 2, 3, 5, 7), q8(u8, 7, 6), [2, 3, 5, 6],
             np.array(99, u8), np.array(128, u8))
    yield mi("mi_batch_broadcast", q8(s8, 1, 3, 4, 8), q8(s8, 2, 1, 8, 5), [2, 3, 4, 5],
             np.array(-7, s8), np.array(3, s8))
    yield mi("mi_zp_nd", q8(u8, 2, 4, 6), q8(u8, 2, 6, 3), [2, 4, 3],
             q8(u8, 2, 4, 1), q8(u8, 2, 1, 3), ort_ok=False)
    yield mi("mi_vec_a", q8(u8, 12), q8(u8, 12, 5), [5], np.array(9, u8), np.array(250, u8))
    yield mi("mi_vec_b", q8(u8, 3, 12), q8(u8, 12), [3], np.array(9, u8), np.array(250, u8))
    # constant b: on the integer GEMM kernel (octk_qgemm, int32 output);
    # s8 weights with zero point 0 may take the u8 x s8 path
    yield mi("mi_kernel_u8u8", q8(u8, 2, 7, 70), q8(u8, 70, 37), [2, 7, 37],
             np.array(131, u8), q8(u8, 37), const_b=True)
    yield mi("mi_kernel_u8s8", q8(u8, 9, 45), (q8(s8, 45, 20) // 4).astype(s8), [9, 20],
             np.array(3, u8), np.array(0, s8), const_b=True)
    yield mi("mi_kernel_s8s8", q8(s8, 19, 33), q8(s8, 33, 17), [19, 17],
             np.array(-9, s8), np.array(5, s8), const_b=True)
    yield mi("mi_kernel_no_zp", q8(u8, 1, 3, 64), q8(s8, 64, 16), [1, 3, 16], const_b=True)
    yield mi("mi_kernel_vec_a", q8(u8, 23), q8(u8, 23, 5), [5], np.array(200, u8),
             np.array(9, u8), const_b=True)
    # sums beyond int16 and near the int32 range of one row
    big_a = np.full((2, 300), 255, u8)
    big_b = np.full((300, 3), 0, u8)
    yield mi("mi_extreme", big_a, big_b, [2, 3], np.array(0, u8), np.array(255, u8))


def convinteger_cases():
    def ci(name, x, w, y_shape, zx=None, zw=None, ort_ok=True, **attrs):
        inits = [("w", w)]
        if zx is not None or zw is not None:
            inits += [("zx", zx if zx is not None else None)] + ([("zw", zw)] if zw is not None else [])
        return case(name, "ConvInteger", [("x", x)], [("y", I32, y_shape)], inits, opset=10,
                    ort_ok=ort_ok, **attrs)

    u8, s8 = np.uint8, np.int8
    yield ci("ci2d_basic", q8(u8, 2, 3, 7, 8), q8(u8, 4, 3, 3, 3), [2, 4, 5, 6],
             np.array(128, u8), np.array(3, u8))
    yield ci("ci2d_pads_strides", q8(u8, 1, 2, 9, 11), q8(u8, 3, 2, 3, 2), [1, 3, 5, 6],
             np.array(17, u8), np.array(250, u8), pads=[1, 0, 1, 1], strides=[2, 2])
    yield ci("ci2d_dilations_group", q8(u8, 1, 4, 10, 9), q8(u8, 6, 2, 2, 3), [1, 6, 8, 5],
             np.array(5, u8), None, dilations=[2, 2], group=2)
    yield ci("ci2d_same_upper", q8(u8, 1, 3, 6, 7), q8(u8, 2, 3, 3, 3), [1, 2, 3, 4],
             np.array(100, u8), np.array(1, u8), strides=[2, 2], auto_pad="SAME_UPPER")
    yield ci("ci2d_s8", q8(s8, 1, 3, 6, 5), q8(s8, 4, 3, 2, 2), [1, 4, 5, 4],
             np.array(-3, s8), np.array(4, s8), ort_ok=False)
    yield ci("ci2d_w_zp_per_channel", q8(u8, 1, 3, 6, 5), q8(u8, 4, 3, 3, 3), [1, 4, 4, 3],
             np.array(3, u8), q8(u8, 4), ort_ok=False)
    yield ci("ci2d_no_zp", q8(u8, 2, 2, 5, 5), q8(u8, 3, 2, 2, 2), [2, 3, 4, 4])
    yield ci("ci1d", q8(u8, 2, 3, 17), q8(u8, 5, 3, 4), [2, 5, 8], np.array(60, u8),
             np.array(9, u8), strides=[2], pads=[1, 0])
    yield ci("ci3d", q8(u8, 1, 2, 4, 5, 6), q8(u8, 3, 2, 2, 3, 2), [1, 3, 4, 3, 5],
             np.array(77, u8), np.array(200, u8), pads=[1, 0, 0, 0, 0, 0])


def batched_matmul_cases():
    def mm(name, a, b, y_shape, const_b=False):
        inputs = [("a", a)] + ([] if const_b else [("b", b)])
        return case(name, "MatMul", inputs, [("y", F, y_shape)], [("b", b)] if const_b else [])

    yield mm("bmm_attention_qk", rnd(2, 3, 17, 8), rnd(2, 3, 8, 17), [2, 3, 17, 17])
    yield mm("bmm_attention_v", rnd(2, 3, 17, 17), rnd(2, 3, 17, 8), [2, 3, 17, 8])
    yield mm("bmm_3d_x_2d", rnd(3, 19, 21), rnd(21, 37), [3, 19, 37])
    yield mm("bmm_3d_x_2d_const", rnd(3, 19, 21), rnd(21, 37), [3, 19, 37], const_b=True)
    yield mm("bmm_broadcast_lead", rnd(1, 4, 9, 6), rnd(2, 4, 6, 5), [2, 4, 9, 5])
    yield mm("bmm_broadcast_b", rnd(2, 4, 9, 6), rnd(1, 4, 6, 5), [2, 4, 9, 5])
    yield mm("bmm_2d_x_3d", rnd(7, 6), rnd(3, 6, 20), [3, 7, 20])
    yield mm("bmm_rank_mix", rnd(5, 2, 7, 33), rnd(2, 33, 3), [5, 2, 7, 3])
    yield mm("bmm_vec_a", rnd(6), rnd(2, 6, 10), [2, 10])
    yield mm("bmm_vec_b", rnd(2, 5, 6), rnd(6), [2, 5])


def cases():
    yield from convtranspose_cases()
    yield from dql_cases()
    yield from matmulinteger_cases()
    yield from convinteger_cases()
    yield from batched_matmul_cases()


def compare(got, want):
    if np.issubdtype(want.dtype, np.integer) or want.ndim == 0:  # exact
        ok = got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
        return ok, "exact" if ok else "max diff %s" % np.max(
            np.abs(got.astype(np.float64) - want.astype(np.float64)))
    return cgutil.close(got, want, RTOL)


def main():
    only = sys.argv[1:]
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for name, m, inputs, ort_ok in cases():
            if only and name not in only:
                continue
            path = os.path.join(d, name + ".onnx")
            onnx.save(m, path)
            report = os.path.join(d, name + ".report")
            so = cgutil.compile_so(path, d, name, ["--report", report])
            kname = ("octk_sgemm" if name.startswith("bmm_") else
                     "octk_qgemm" if name.startswith("mi_kernel_") else None)
            if kname:  # on the GEMM kernel, not scalar loops
                with open(report) as f:
                    kernel = sum(kname in line for line in f)
                if kernel != 1:
                    print("%-24s FAIL  %d %s report lines, want 1" % (name, kernel, kname))
                    failures += 1
            _, got = cgutil.run_so(so, name, [a for _, a in inputs])
            ref = cgutil.run_ref(path, inputs)
            ort_out = None
            if ort is not None and ort_ok:
                sess = ort.InferenceSession(ort_int8.for_ort(m).SerializeToString(),
                                            providers=["CPUExecutionProvider"])
                ort_out = sess.run(None, {n: a for n, a in inputs})
            extra = {}
            if name.startswith("bmm_"):
                # the baseline x86-64 kernels (no AVX2: the scalar masked
                # loads), and the kernel calls of every batch split over
                # a thread pool
                base_so = cgutil.compile_so(path, d, name + "_base", ["--mcpu", "x86-64"])
                extra["x86-64"] = cgutil.run_so(base_so, name + "_base",
                                                [a for _, a in inputs])[1]
                threaded = cgutil.run_ref(so, inputs, extra=["--threads", "3"])
                extra["3 threads"] = [threaded[o.name] for o in m.graph.output]
            for j, out in enumerate(m.graph.output):
                want = ref[out.name]
                ok, how = compare(got[j], want)
                for what, outs in extra.items():
                    ok2, how2 = compare(outs[j], want)
                    ok, how = ok and ok2, how + "; %s %s" % (what, how2)
                if ort_out is not None:
                    ok2, how2 = compare(got[j], np.asarray(ort_out[j]))
                    ok, how = ok and ok2, how + "; ort " + how2
                print("%-24s %s  %s" % (name if j == 0 else "  " + out.name,
                                        "ok  " if ok else "FAIL", how))
                failures += not ok
    print("%d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
