"""Reductions and normalizations compiled (lower_reduce.c, lower_stats.c):
every Reduce* op, ArgMax/ArgMin, LayerNormalization, InstanceNormalization
and LRN, each a one-node model made here with the onnx package, run on
random inputs of awkward sizes (odd lengths, length-1 axes, all axes, no
axes, empty reductions), against the reference interpreter (`octet run`)
and, where it runs the model, ONNX Runtime (an independent oracle).

Against the interpreter: float outputs |got - want| <= 1e-5 * max(1,
max|want|), NaN where it has NaN; integer outputs exactly.  Against ONNX
Runtime, which accumulates float sums in float32: 1e-4 (integers exact);
float16 outputs: 1e-3 (one float16 ulp; 4e-3 against ONNX Runtime);
a model ONNX Runtime refuses (a type or form it lacks) is only compared
with the interpreter.  Last-axis reductions and LayerNormalization must
also come out as vector code (the LLVM IR has vector types)."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

RTOL = 1e-5
ORT_RTOL = 1e-4
F16_RTOL = 1e-3  # one float16 ulp (ONNX Runtime's float16 kernels: 4e-3)
rng = np.random.default_rng(13)
REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]
# cases ONNX Runtime computes differently from the ONNX spec and the
# interpreter (compared with the interpreter only): noop_with_empty_axes
# still applies |x|, x^2 or log; empty reductions; NaN not propagated by
# Max / Min; integer accumulators that wrap around
NO_ORT = re.compile(r"(L1|L2|LogSum|SumSquare)_noop|_empty|_nan|_wraps")
# cases whose node function must hold vector instructions
VECTOR = {"ReduceSum_last_f32", "ReduceMax_last_f32", "ReduceMean_column_big_f32",
          "layernorm_last"}


def model(name, op, inputs, outputs, inits=(), opset=18, **attrs):
    """inputs: [(name, array)]; outputs: [(name, elem type, shape)];
    inits: [(name, array)] constant inputs appended after the inputs, in
    order (a None name leaves that input slot empty)."""
    ins = [n for n, _ in inputs] + [n or "" for n, _ in inits]
    node = helper.make_node(op, ins, [n for n, _, _ in outputs], name="n0", **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in inputs]
    outs = [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs]
    g = helper.make_graph([node], name, vi, outs,
                          [numpy_helper.from_array(a, n) for n, a in inits if n])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return name, m, inputs


def axes_from_input(op, opset):
    return opset >= 13 if op == "ReduceSum" else opset >= 18


def reduce_case(name, op, x, axes, keepdims=1, noop=0, opset=18):
    """axes None: none given (all axes, or the identity with noop)."""
    attrs, inits = {}, []
    if axes is not None:
        if axes_from_input(op, opset):
            inits = [("axes", np.array(axes, np.int64))]
        else:
            attrs["axes"] = axes
    if keepdims != 1:
        attrs["keepdims"] = keepdims
    if noop:
        attrs["noop_with_empty_axes"] = noop
    if noop and axes is None:
        shape = list(x.shape)
    else:
        red = set(range(x.ndim)) if not axes else {a % x.ndim for a in axes}
        shape = [1 if d in red else s for d, s in enumerate(x.shape) if keepdims or d not in red]
    out_t = helper.np_dtype_to_tensor_dtype(x.dtype)
    return model(name, op, [("x", x)], [("y", out_t, shape)], inits, opset, **attrs)


def rnd(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def positive(*shape):
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)


def reduce_cases():
    for op in REDUCE_OPS:
        # Prod and LogSum want inputs near 1 / positive, so values stay tame
        pos = op in ("ReduceProd", "ReduceLogSum")
        f = positive if pos else rnd
        old = 11 if op == "ReduceSum" else 13  # axes as an attribute
        yield reduce_case(op + "_last_f32", op, f(4, 5, 37), [-1], opset=old)
        yield reduce_case(op + "_last_big_f32", op, f(3, 1031), [1], keepdims=0)
        yield reduce_case(op + "_column_f32", op, f(3, 6, 9), [1], keepdims=0)
        yield reduce_case(op + "_column_big_f32", op, f(2, 5, 67), [1])
        yield reduce_case(op + "_first_f32", op, f(7, 3, 5), [0], opset=old)
        yield reduce_case(op + "_ends_f32", op, f(3, 4, 5), [0, -1])
        yield reduce_case(op + "_middle2_f32", op, f(2, 3, 4, 5), [1, 2], keepdims=0,
                          opset=old)
        yield reduce_case(op + "_all_f32", op, f(2, 3, 5), None, keepdims=0)
        yield reduce_case(op + "_all_listed_f32", op, f(3, 1, 5), [2, 0, 1])
        yield reduce_case(op + "_noop_f32", op, f(3, 4), None, noop=1)
        yield reduce_case(op + "_len1_axis_f32", op, f(4, 1, 6), [1], opset=old)
        yield reduce_case(op + "_rank1_f32", op, f(7), None, opset=old)
        yield reduce_case(op + "_double", op, f(3, 8).astype(np.float64), [0])
        if op in ("ReduceL2", "ReduceLogSum", "ReduceLogSumExp"):
            yield reduce_case(op + "_int32", op, rng.integers(1, 9, (3, 5)).astype(np.int32), [1])
            continue
        big = 6 if op == "ReduceProd" else 1000
        for dt, lo, hi in [(np.int32, -6, 7), (np.int64, -big, big), (np.uint8, 0, 4),
                           (np.int8, -3, 4)]:
            x = rng.integers(lo, hi, (3, 4, 5)).astype(dt)
            yield reduce_case("%s_%s_last" % (op, np.dtype(dt).name), op, x, [-1])
            yield reduce_case("%s_%s_column" % (op, np.dtype(dt).name), op, x, [0, 1],
                              keepdims=0)
        yield reduce_case(op + "_int32_all", op, rng.integers(-3, 4, (5, 7)).astype(np.int32),
                          None)
    # empty reductions: the identity of each reduction (NaN for Mean)
    for op in ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceMean",
               "ReduceLogSumExp"]:
        yield reduce_case(op + "_empty_f32", op, rnd(3, 0, 4), [1])
    for op in ["ReduceMax", "ReduceMin", "ReduceSum"]:
        yield reduce_case(op + "_empty_int8", op, np.zeros((2, 0), np.int8), [1])
    # NaN propagates through Max / Min (and sums)
    x = rnd(3, 9)
    x[1, 4] = np.nan
    for op in ["ReduceMax", "ReduceMin", "ReduceSum"]:
        yield reduce_case(op + "_nan_f32", op, x, [-1])
        yield reduce_case(op + "_nan_column_f32", op, x, [0])
    # axes as a graph input, read at run time: the static shapes leave one
    # choice (keepdims) or several (the axes' values pick one)
    for name, op, shape, axes, keep, out in [
            ("rt_keep", "ReduceSum", (3, 4, 5), [-1, 0], 1, [1, 4, 1]),
            ("rt_ambiguous_1", "ReduceMean", (3, 2, 2), [1], 0, [3, 2]),
            ("rt_ambiguous_2", "ReduceMean", (3, 2, 2), [-1], 0, [3, 2]),
            ("rt_three_ways", "ReduceMax", (4, 4, 4), [2, 0], 0, [4]),
            ("rt_len1_dims", "ReduceL2", (4, 1, 4), [0, 1], 0, [4])]:
        x = rnd(*shape)
        yield model(name, op, [("x", x), ("axes", np.array(axes, np.int64))],
                    [("y", TensorProto.FLOAT, out)], keepdims=keep)
    # float16: accumulated in double, rounded once (through float)
    for op in ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceLogSumExp", "ReduceL2"]:
        yield reduce_case(op + "_last_f16", op, rnd(3, 5, 33, dtype=np.float16), [-1])
        yield reduce_case(op + "_column_f16", op, rnd(3, 6, 9, dtype=np.float16), [1],
                          keepdims=0)
    # integer sums that wrap around
    yield reduce_case("ReduceSum_int32_wraps", "ReduceSum",
                      np.full((2, 5), 2**30 + 7, np.int32), [1])
    yield reduce_case("ReduceProd_int64_wraps", "ReduceProd",
                      np.full((2, 3), 3**30, np.int64), [1])


def argmax_cases():
    for op in ["ArgMax", "ArgMin"]:
        for axis in [0, 1, -1]:
            for keep in [0, 1]:
                for last in [0, 1]:
                    # few distinct values: ties everywhere
                    x = rng.integers(0, 3, (4, 5, 7)).astype(np.float32)
                    shape = [1 if d == axis % 3 else s for d, s in enumerate(x.shape)
                             if keep or d != axis % 3]
                    yield model("%s_a%s_k%d_l%d" % (op, str(axis).replace("-", "m"), keep, last), op, [("x", x)],
                                [("y", TensorProto.INT64, shape)], opset=13, axis=axis,
                                keepdims=keep, select_last_index=last)
        x = rnd(3, 1031)
        yield model(op + "_long_row", op, [("x", x)], [("y", TensorProto.INT64, [3, 1])],
                    opset=13, axis=1)
        for dt in [np.int32, np.int64, np.uint8, np.int8, np.float64]:
            x = rng.integers(-4 if dt != np.uint8 else 0, 5, (5, 6)).astype(dt)
            yield model("%s_%s" % (op, np.dtype(dt).name), op, [("x", x)],
                        [("y", TensorProto.INT64, [6])], opset=13, axis=0, keepdims=0,
                        select_last_index=1)
        yield model(op + "_f16", op, [("x", rnd(4, 7, dtype=np.float16))],
                    [("y", TensorProto.INT64, [4, 1])], opset=13, axis=-1)
        yield model(op + "_len1_axis", op, [("x", rnd(4, 1, 3))],
                    [("y", TensorProto.INT64, [4, 1, 3])], opset=13, axis=1)
        yield model(op + "_default_axis", op, [("x", rnd(5, 3))],
                    [("y", TensorProto.INT64, [1, 3])], opset=11)


def layernorm(name, x, axis=-1, scale_shape=None, bias=True, stats=False, opset=17, **attrs):
    a = axis % x.ndim
    nshape = list(x.shape[a:])
    sshape = scale_shape or nshape
    dt = x.dtype
    inits = [("scale", rng.uniform(0.5, 1.5, sshape).astype(dt))]
    if bias:
        inits.append(("bias", rnd(*sshape).astype(dt)))
    t = helper.np_dtype_to_tensor_dtype(dt)
    outs = [("y", t, list(x.shape))]
    if stats:
        st = attrs.get("stash_type", 1)
        sh = [s if d < a else 1 for d, s in enumerate(x.shape)]
        outs += [("mean", st, sh), ("invstd", st, sh)]
    return model(name, "LayerNormalization", [("x", x)], outs, inits, opset, axis=axis, **attrs)


def norm_cases():
    yield layernorm("layernorm_last", rnd(2, 3, 37) * 3 + 1)
    yield layernorm("layernorm_stats", rnd(3, 5, 7), axis=1, stats=True, epsilon=1e-3)
    yield layernorm("layernorm_axis0_nobias", rnd(4, 9), axis=0, bias=False)
    yield layernorm("layernorm_bcast_scale", rnd(2, 3, 11), axis=1, scale_shape=[1, 11])
    yield layernorm("layernorm_scalar_scale", rnd(5, 6), scale_shape=[1], bias=False)
    yield layernorm("layernorm_len1", rnd(4, 1), stats=True)
    yield layernorm("layernorm_stash_double", rnd(3, 10), stats=True, stash_type=11)
    yield layernorm("layernorm_double", rnd(2, 13).astype(np.float64), stats=True,
                    stash_type=11)
    yield layernorm("layernorm_f16", rnd(3, 5, 19).astype(np.float16), axis=-2, stats=True)
    for name, shape in [("instnorm_4d", (2, 3, 5, 7)), ("instnorm_3d", (1, 4, 9)),
                        ("instnorm_len1", (3, 2, 1)), ("instnorm_f16", (2, 3, 11))]:
        dt = np.float16 if name.endswith("f16") else np.float32
        x = (rnd(*shape) * 2 + 0.5).astype(dt)
        c = shape[1]
        yield model(name, "InstanceNormalization", [("x", x)],
                    [("y", helper.np_dtype_to_tensor_dtype(x.dtype), list(shape))],
                    [("s", rng.uniform(0.5, 1.5, c).astype(dt)), ("b", rnd(c).astype(dt))],
                    opset=6, epsilon=1e-4 if name == "instnorm_3d" else 1e-5)
    for name, shape, attrs in [("lrn_size3", (2, 7, 5, 3), dict(size=3)),
                               ("lrn_size4", (1, 6, 4, 5), dict(size=4, alpha=2e-3, beta=0.5,
                                                                bias=2.0)),
                               ("lrn_size1", (1, 3, 3, 3), dict(size=1)),
                               ("lrn_wide", (1, 3, 2, 9), dict(size=7, alpha=0.01)),
                               ("lrn_rank3", (2, 5, 6), dict(size=2)),
                               ("lrn_f16", (1, 5, 3, 4), dict(size=3))]:
        x = (rnd(*shape) * 3).astype(np.float16 if name.endswith("f16") else np.float32)
        yield model(name, "LRN", [("x", x)],
                    [("y", helper.np_dtype_to_tensor_dtype(x.dtype), list(shape))],
                    opset=13, **attrs)


def cases():
    yield from reduce_cases()
    yield from argmax_cases()
    yield from norm_cases()


def compare(got, want, rtol):
    got, want = np.asarray(got), np.asarray(want)
    if want.dtype == np.float16:  # a float16 result may round one ulp apart
        rtol = max(rtol, F16_RTOL)
    if got.shape != want.shape:
        return False, "shape %s != %s" % (got.shape, want.shape)
    if np.issubdtype(want.dtype, np.integer) or want.dtype == np.bool_:
        ok = got.dtype == want.dtype and np.array_equal(got, want)
        return ok, "exact" if ok else "differs at %s" % (np.argwhere(got != want)[:3].tolist(),)
    g, w = got.astype(np.float64), want.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(w)):
        return False, "NaN at different places"
    same_inf = np.isinf(w) & (g == w)
    fin = ~np.isnan(w) & ~same_inf
    if np.any(np.isinf(w[fin])):
        return False, "Inf differs"
    if not fin.any():
        return True, "non-finite equal"
    return cgutil.close(g[fin], w[fin], rtol)


def run_ort(path, inputs):
    try:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.log_severity_level = 4
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        return sess.run(None, dict(inputs))
    except Exception:  # a type or form ONNX Runtime does not implement
        return None


def compile_quiet(path, base, emit):
    r = subprocess.run([cgutil.OCTET, "compile", path, "-o", base, "--emit=" + emit],
                       capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stderr)
        raise SystemExit("octet compile %s failed (exit %d)" % (path, r.returncode))


def main():
    only = sys.argv[1:]
    failures = n_ort = n_cases = 0
    with tempfile.TemporaryDirectory() as d:
        for name, m, inputs in cases():
            if only and name not in only:
                continue
            n_cases += 1
            path = os.path.join(d, name + ".onnx")
            onnx.save(m, path)
            so = os.path.join(d, name + ".so")
            compile_quiet(path, so[:-3], "so")
            _, got = cgutil.run_so(so, name, [a for _, a in inputs])
            ref = cgutil.run_ref(path, inputs)
            ort_out = None if NO_ORT.search(name) else run_ort(path, inputs)
            n_ort += ort_out is not None
            for j, out in enumerate(m.graph.output):
                ok, how = compare(got[j], ref[out.name], RTOL)
                if ok and ort_out is not None:
                    ort_rtol = 4e-3 if got[j].dtype == np.float16 else ORT_RTOL
                    ok, how_o = compare(got[j], ort_out[j], ort_rtol)
                    how += "; ort " + how_o
                print("%-32s %s  %s" % (name if j == 0 else "  " + out.name,
                                        "ok  " if ok else "FAIL", how))
                failures += not ok
            if name in VECTOR:
                base = os.path.join(d, name + "_ll")
                compile_quiet(path, base, "llvm")
                with open(base + ".ll") as f:
                    ll = f.read()
                vec = re.search(r"<\d+ x (float|double)>", ll) is not None
                print("%-32s %s  vector code" % ("  (vectorized)", "ok  " if vec else "FAIL"))
                failures += not vec
    print("%d case(s), %d also run by ONNX Runtime, %d failure(s)" % (n_cases, n_ort, failures))
    if not only and n_ort < n_cases // 2:
        print("FAIL: ONNX Runtime ran too few cases")
        failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
