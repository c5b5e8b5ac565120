"""The compiled path on the forms of issue 13 (docs/compile.md, "The JIT
and geometry inputs"), on models built here with shapes other than the
ONNX node tests':

  - geometry inputs given at run time (Resize's sizes, scales and roi,
    Slice's starts/ends/axes/steps, Pad's pads and axes, Reshape's shape,
    and sizes computed from a graph input through other nodes): `octet run
    --jit` folds their values into the graph it compiles; `octet compile`
    refuses them (exit 3, naming the node and the input);
  - Pad's constant_value, Clip's integer bounds and BatchNormalization's
    parameters given at run time, BatchNormalization in training mode,
    3-D MaxPool/AveragePool, MaxPool's Indices (both storage orders),
    Dropout's mask and a Constant that is a graph output: compiled by both
    `octet run --jit` and `octet compile` (the .so run through its
    signature); MaxPool over windows with NaN (numpy's nanmax the oracle);
  - one JIT runner run three times through the C API (jit_rerun) with
    other geometry values each time compiles again for each.

Every compiled output is compared with ONNX Runtime (onnx.reference where
ORT does not run the model: BatchNormalization in training mode) and with
the reference interpreter (`octet run`): floats within
1e-5 * max(1, max|want|), integers and booleans exactly.

usage: test_ops_conform.py JIT_RERUN_EXE"""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402


RTOL = 1e-5
rng = np.random.default_rng(1313)
failures = 0


def check(cond, what):
    global failures
    print("%s  %s" % ("ok  " if cond else "FAIL", what), flush=True)
    failures += not cond


def rnd(*shape, dtype=np.float32):
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -100), min(info.max, 100), shape,
                        endpoint=True).astype(dtype)


def i64(*v):
    return np.array(v, dtype=np.int64)


def f32(*v):
    return np.array(v, dtype=np.float32)


def tt(a):
    return helper.np_dtype_to_tensor_dtype(a.dtype)


def model(name, nodes, inputs, outputs, inits=(), opset=18):
    """inputs: (name, array) graph inputs; outputs: (name, elem type or
    None for the first input's); inits: (name, array) initializers."""
    vi = [helper.make_tensor_value_info(n, tt(a), a.shape) for n, a in inputs]
    elem = tt(inputs[0][1]) if inputs else TensorProto.FLOAT
    outs = [helper.make_tensor_value_info(o, elem if t is None else t, None) for o, t in outputs]
    g = helper.make_graph(nodes, name, vi, outs, [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def compare_all(label, names, got, want):
    for k, name in enumerate(names):
        ok, how = cgutil.same(got[k], want[k], RTOL)
        check(ok, "%s output %s: %s" % (label, name, how))


def run_case(d, name, m, inputs, geometry=None):
    """geometry: the (input index, input name) a static compile must refuse
    (a geometry input given at run time), or None: AOT compiles it too."""
    path = os.path.join(d, name + ".onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    names = [o.name for o in m.graph.output]
    who, want = cgutil.oracle(path, inputs)
    p, ref = cgutil.run_octet(path, inputs)
    check(ref is not None, "%s: the interpreter runs it %s" % (name, p.stderr.strip()))
    p, jit = cgutil.run_octet(path, inputs, ["--jit"])
    check(jit is not None, "%s: run --jit runs it %s" % (name, p.stderr.strip()))
    if ref is None or jit is None:
        return
    jit_list = [jit[cgutil.safe_name(n)] for n in names]
    compare_all("%s: --jit vs %s," % (name, who), names, jit_list, want)
    compare_all("%s: --jit vs the interpreter," % name, names, jit_list,
                [ref[cgutil.safe_name(n)] for n in names])
    base = os.path.join(d, name)
    p = subprocess.run([cgutil.OCTET, "compile", path, "-o", base, "--emit=so,header"],
                       capture_output=True, text=True)
    if geometry:
        idx, inp = geometry
        want_text = "node 'n0'"
        check(p.returncode == 3 and want_text in p.stderr and
              ("input %d '%s'" % (idx, inp)) in p.stderr,
              "%s: octet compile refuses the run-time %s (exit %d: %s)"
              % (name, inp, p.returncode, p.stderr.strip()))
        return
    check(p.returncode == 0, "%s: octet compile compiles it %s" % (name, p.stderr.strip()))
    if p.returncode:
        return
    sig = cgutil.signature(base + ".so", name)
    by_name = dict(inputs)
    _, outs = cgutil.run_so(base + ".so", name, [by_name[s["name"]] for s in sig["inputs"]])
    compare_all("%s: compiled .so vs %s," % (name, who), names, outs, want)


def cases():
    # ---- geometry inputs given at run time (JIT only) ----
    ins = [("x", rnd(1, 2, 5, 7)), ("sizes", i64(1, 2, 8, 4))]
    yield ("resize_sizes_input_linear", model(
        "resize_sizes_input_linear",
        [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="n0", mode="linear")],
        ins, [("y", None)]), ins, (3, "sizes"))
    x = rnd(2, 3, 4, 6)
    yield ("resize_scales_input_nearest", model(
        "resize_scales_input_nearest",
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="n0", mode="nearest",
                          nearest_mode="floor")],
        [("x", x), ("scales", f32(1, 1, 1.5, 0.5))], [("y", None)]),
        [("x", x), ("scales", f32(1, 1, 1.5, 0.5))], (2, "scales"))
    x = rnd(1, 1, 6, 5)
    ins = [("x", x), ("roi", f32(0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2))]
    yield ("resize_roi_input_crop", model(
        "resize_roi_input_crop",
        [helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y"], name="n0", mode="linear",
                          coordinate_transformation_mode="tf_crop_and_resize",
                          extrapolation_value=-2.5)],
        ins, [("y", None)], inits=[("sizes", i64(1, 1, 4, 7))]), ins, (1, "roi"))
    # sizes computed from a graph input: Concat([1, 3], k * 2)
    x = rnd(1, 3, 4, 5)
    ins = [("x", x), ("k", i64(3, 4))]
    yield ("resize_sizes_computed_cubic", model(
        "resize_sizes_computed_cubic",
        [helper.make_node("Mul", ["k", "two"], ["k2"]),
         helper.make_node("Concat", ["lead", "k2"], ["sizes"], axis=0),
         helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="n0", mode="cubic")],
        ins, [("y", None)], inits=[("two", i64(2)), ("lead", i64(1, 3))]), ins, (3, "sizes"))
    x = rnd(4, 7, 5, dtype=np.int32)
    ins = [("x", x), ("starts", i64(3, -1, 0)), ("ends", i64(0, -8, 9)),
           ("axes", i64(0, 1, -1)), ("steps", i64(-1, -2, 2))]
    yield ("slice_all_inputs_neg_steps", model(
        "slice_all_inputs_neg_steps",
        [helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"], name="n0")],
        ins, [("y", None)]), ins, (1, "starts"))
    x = rnd(3, 9, dtype=np.int8)
    ins = [("x", x), ("starts", i64(1, 2)), ("ends", i64(100, 7))]
    yield ("slice_default_axes_i8", model(
        "slice_default_axes_i8",
        [helper.make_node("Slice", ["x", "starts", "ends"], ["y"], name="n0")],
        ins, [("y", None)]), ins, (1, "starts"))
    x = rnd(2, 5, 6)
    ins = [("x", x), ("pads", i64(0, 3, 1, 0, 4, 2))]
    yield ("pad_reflect_pads_input", model(
        "pad_reflect_pads_input",
        [helper.make_node("Pad", ["x", "pads"], ["y"], name="n0", mode="reflect")],
        ins, [("y", None)]), ins, (1, "pads"))
    x = rnd(3, 4, 5, dtype=np.int64)
    ins = [("x", x), ("pads", i64(2, 0, 1, 3)), ("value", np.array(-7, np.int64)),
           ("axes", i64(-1, 0))]
    yield ("pad_axes_and_value_inputs", model(
        "pad_axes_and_value_inputs",
        [helper.make_node("Pad", ["x", "pads", "value", "axes"], ["y"], name="n0")],
        ins, [("y", None)]), ins, (1, "pads"))
    x = rnd(4, 6)
    ins = [("x", x), ("shape", i64(3, -1, 2))]
    yield ("reshape_shape_input", model(
        "reshape_shape_input",
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="n0")],
        ins, [("y", None)]), ins, (1, "shape"))
    # the geometry input first: the data inputs after it must reach the
    # compiled function in its own order (the folded one skipped)
    x = rnd(4, 6)
    b = rnd(3, 4, 2)
    ins = [("shape", i64(3, -1, 2)), ("x", x), ("b", b)]
    yield ("reshape_shape_input_first", model(
        "reshape_shape_input_first",
        [helper.make_node("Reshape", ["x", "shape"], ["r"], name="n0"),
         helper.make_node("Sub", ["r", "b"], ["y"], name="n1")],
        ins, [("y", TensorProto.FLOAT)]), ins, (1, "shape"))
    # ---- run-time values that do not change shapes (JIT and AOT) ----
    x = rnd(2, 3, 5)
    ins = [("x", x), ("value", f32(0.625))]
    yield ("pad_constant_value_input", model(
        "pad_constant_value_input",
        [helper.make_node("Pad", ["x", "pads", "value"], ["y"], name="n0")],
        ins, [("y", None)], inits=[("pads", i64(1, 0, 2, 0, 2, 1))]), ins, None)
    x = rnd(3, 17, dtype=np.int32)
    ins = [("x", x), ("lo", np.array(-40, np.int32)), ("hi", np.array(55, np.int32))]
    yield ("clip_int32_runtime_bounds", model(
        "clip_int32_runtime_bounds",
        [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="n0")],
        ins, [("y", None)]), ins, None)
    x = rng.integers(0, 255, (4, 9), endpoint=True).astype(np.uint8)
    ins = [("x", x), ("hi", np.array(200, np.uint8))]
    yield ("clip_uint8_runtime_max", model(
        "clip_uint8_runtime_max",
        [helper.make_node("Clip", ["x", "", "hi"], ["y"], name="n0")],
        ins, [("y", None)]), ins, None)
    x = rnd(5, 6, dtype=np.int64)
    ins = [("x", x), ("lo", np.array(30, np.int64)), ("hi", np.array(-10, np.int64))]
    yield ("clip_int64_min_above_max", model(
        "clip_int64_min_above_max",
        [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="n0")],
        ins, [("y", None)]), ins, None)
    x = rnd(3, 5, 4, 2)
    ins = [("x", x), ("scale", rnd(5)), ("bias", rnd(5)), ("mean", rnd(5)),
           ("var", np.abs(rnd(5)) + 0.1)]
    yield ("batchnorm_runtime_params", model(
        "batchnorm_runtime_params",
        [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"],
                          name="n0", epsilon=1e-3)],
        ins, [("y", None)], opset=15), ins, None)
    x = rnd(4, 3, 6)
    ins = [("x", x), ("scale", rnd(3)), ("bias", rnd(3))]
    yield ("batchnorm_training_mode", model(
        "batchnorm_training_mode",
        [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"],
                          ["y", "rmean", "rvar"], name="n0", training_mode=1, momentum=0.8,
                          epsilon=1e-2)],
        ins, [("y", None), ("rmean", None), ("rvar", None)],
        inits=[("mean", rnd(3)), ("var", np.abs(rnd(3)) + 0.5)], opset=15), ins, None)
    x = rnd(2, 3, 7, 6, 8)
    yield ("maxpool_3d_pads_dilations", model(
        "maxpool_3d_pads_dilations",
        [helper.make_node("MaxPool", ["x"], ["y"], name="n0", kernel_shape=[3, 2, 3],
                          strides=[2, 1, 2], pads=[1, 0, 1, 1, 1, 0], dilations=[1, 2, 1])],
        [("x", x)], [("y", None)]), [("x", x)], None)
    x = rnd(1, 2, 6, 5, 7)
    yield ("avgpool_3d_include_pad_ceil", model(
        "avgpool_3d_include_pad_ceil",
        [helper.make_node("AveragePool", ["x"], ["y"], name="n0", kernel_shape=[2, 3, 3],
                          strides=[2, 2, 3], pads=[1, 1, 0, 0, 1, 1], ceil_mode=1,
                          count_include_pad=1)],
        [("x", x)], [("y", None)]), [("x", x)], None)
    x = rnd(1, 3, 5, 4, 6)
    yield ("avgpool_3d_exclude_pad", model(
        "avgpool_3d_exclude_pad",
        [helper.make_node("AveragePool", ["x"], ["y"], name="n0", kernel_shape=[3, 3, 2],
                          pads=[1, 1, 1, 1, 1, 1], auto_pad="NOTSET")],
        [("x", x)], [("y", None)]), [("x", x)], None)
    for order in (0, 1):
        x = rnd(2, 3, 9, 7)
        yield ("maxpool_indices_order%d" % order, model(
            "maxpool_indices_order%d" % order,
            [helper.make_node("MaxPool", ["x"], ["y", "i"], name="n0", kernel_shape=[3, 2],
                              strides=[2, 2], pads=[1, 0, 1, 1], storage_order=order)],
            [("x", x)], [("y", None), ("i", TensorProto.INT64)]), [("x", x)], None)
    x = rnd(2, 2, 4, 5, 6)
    yield ("maxpool_3d_indices", model(
        "maxpool_3d_indices",
        [helper.make_node("MaxPool", ["x"], ["y", "i"], name="n0", kernel_shape=[2, 3, 2],
                          strides=[1, 2, 2], pads=[0, 1, 1, 1, 0, 0])],
        [("x", x)], [("y", None), ("i", TensorProto.INT64)]), [("x", x)], None)
    x = rnd(3, 4, 5)
    ins = [("x", x), ("ratio", np.array(0.3, np.float32))]
    yield ("dropout_mask_ratio_input", model(
        "dropout_mask_ratio_input",
        [helper.make_node("Dropout", ["x", "ratio"], ["y", "mask"], name="n0")],
        ins, [("y", None), ("mask", TensorProto.BOOL)], opset=13), ins, None)
    x = rnd(2, 3)
    c = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    yield ("constant_graph_output", model(
        "constant_graph_output",
        [helper.make_node("Constant", [], ["c"], name="n0", value=numpy_helper.from_array(c)),
         helper.make_node("Relu", ["x"], ["y"], name="n1")],
        [("x", x)], [("c", TensorProto.INT32), ("y", None)]), [("x", x)], None)


def maxpool_nan(d):
    """MaxPool over windows holding NaN: NaN only where every tap is NaN,
    else the largest number (the interpreter's rule; numpy's nanmax is the
    oracle, ORT's NaN handling being unspecified), with and without
    Indices (which must point at a tap holding the result)."""
    x = rnd(1, 2, 6, 8)
    x[0, 0, 0:2, 0:2] = np.nan           # an all-NaN window
    x[0, 0, 2, 2] = np.nan               # NaN first, then numbers
    x[0, 1, 3, 5] = np.nan               # a number first, then NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nanmax of an all-NaN window
        want = np.nanmax(x.reshape(1, 2, 3, 2, 4, 2), axis=(3, 5))
    for with_idx in (False, True):
        name = "maxpool_nan_windows%s" % ("_indices" if with_idx else "")
        outs = [("y", None)] + ([("i", TensorProto.INT64)] if with_idx else [])
        m = model(name, [helper.make_node("MaxPool", ["x"], [o for o, _ in outs], name="n0",
                                          kernel_shape=[2, 2], strides=[2, 2])],
                  [("x", x)], outs)
        path = os.path.join(d, name + ".onnx")
        with open(path, "wb") as fh:
            fh.write(m.SerializeToString())
        base = os.path.join(d, name)
        subprocess.run([cgutil.OCTET, "compile", path, "-o", base, "--emit=so,header"],
                       check=True, capture_output=True)
        _, so = cgutil.run_so(base + ".so", name, [x])
        for how, extra in (("interpreter", ()), ("--jit", ("--jit",))):
            p, got = cgutil.run_octet(path, [("x", x)], extra)
            check(got is not None, "%s: %s runs it %s" % (name, how, p.stderr.strip()))
            if got is None:
                continue
            ok = np.array_equal(got["y"], want, equal_nan=True)
            check(ok, "%s: %s matches numpy's nanmax" % (name, how))
            if with_idx:
                flat = x.reshape(-1)[got["i"].reshape(-1)]
                ok = np.array_equal(flat, want.reshape(-1), equal_nan=True)
                check(ok, "%s: %s Indices point at the taps taken" % (name, how))
        check(np.array_equal(so[0], want, equal_nan=True),
              "%s: compiled .so matches numpy's nanmax" % name)
        if with_idx:
            check(np.array_equal(x.reshape(-1)[so[1].reshape(-1)], want.reshape(-1),
                                 equal_nan=True),
                  "%s: compiled .so Indices point at the taps taken" % name)


def rerun(d, exe):
    """One runner, three runs with other geometry values each."""
    nodes = [helper.make_node("Resize", ["x", "", "", "sizes"], ["r"], name="n0",
                              mode="nearest"),
             helper.make_node("Slice", ["r", "starts", "ends"], ["y"], name="n1")]
    x = rnd(1, 2, 5, 6)
    runs = [[x, i64(1, 2, 7, 9), i64(0, 0, 1, 2), i64(1, 2, 6, 9)],
            [x, i64(1, 2, 3, 4), i64(0, 1, 0, 0), i64(1, 2, 3, 3)],
            [x, i64(1, 2, 7, 9), i64(0, 0, 1, 2), i64(1, 2, 6, 9)]]
    names = ["x", "sizes", "starts", "ends"]
    m = model("rerun", nodes, list(zip(names, runs[0])), [("y", None)])
    path = os.path.join(d, "rerun.onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    specs = []
    for k, arrs in enumerate(runs):
        files = []
        for n, a in zip(names, arrs):
            f = os.path.join(d, "rerun%d_%s.npy" % (k, n))
            np.save(f, a)
            files.append(f)
        specs.append(",".join(files))
    out = os.path.join(d, "rerun_out")
    os.makedirs(out)
    p = subprocess.run([exe, path, out, *specs], capture_output=True, text=True)
    check(p.returncode == 0, "rerun: three runs of one JIT runner succeed %s" % p.stderr.strip())
    if p.returncode:
        return
    for k, arrs in enumerate(runs):
        _, want = cgutil.oracle(path, list(zip(names, arrs)))
        got = np.load(os.path.join(out, "run%d_out0.npy" % k))
        ok, how = cgutil.same(got, want[0], RTOL)
        check(ok, "rerun: run %d (sizes %s) vs the oracle: %s" % (k, arrs[1].tolist(), how))


def main():
    with tempfile.TemporaryDirectory() as d:
        for name, m, inputs, geometry in cases():
            run_case(d, name, m, inputs, geometry)
        maxpool_nan(d)
        rerun(d, sys.argv[1])
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
