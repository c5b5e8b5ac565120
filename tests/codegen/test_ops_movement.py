"""The index-mapping ops the backend lowers (lower_movement.c,
lower_resize.c) compiled on their own: Split, Gather, GatherElements,
Expand, Tile, DepthToSpace, SpaceToDepth, Trilu, Pad and Resize, one case
per attribute, mode and opset form, on random inputs of awkward sizes.
Each compiled output is compared with the reference interpreter (`octet
run`) and with an independent oracle: ONNX Runtime, or where ORT rejects
the model or departs from the ONNX reference implementation (reflect pads
longer than the axis, wrap pads longer than the axis, Resize with
non-integer scales under align_corners and half_pixel, tf_crop_and_resize,
integer rounding), onnx.reference; cases neither runs are listed in
NO_ORACLE.  Floats within 1e-5 * max(1, max|want|), integers and booleans
exactly.  Gather with out-of-range indices, which the interpreter rejects,
must run and read the clamped rows (numpy is the oracle there)."""
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # the interpreter stays the oracle
    ort = None

RTOL = 1e-5
# cases that neither ONNX Runtime nor onnx.reference runs or agrees on:
# the interpreter is the only oracle (name -> why)
NO_ORACLE = {
    "resize_nearest_round_prefer_ceil_tf_half_pixel_for_nn":
        "deprecated mode: onnx.reference lacks it, ORT rounds differently",
    "resize_nearest_ceil_tf_half_pixel_for_nn":
        "deprecated mode: onnx.reference lacks it, ORT rounds differently",
}
rng = np.random.default_rng(13)


def rnd(*shape, dtype=np.float32):
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -100), min(info.max, 100), shape, endpoint=True).astype(dtype)


def i64(*v):
    return np.array(v, dtype=np.int64)


def f32(*v):
    return np.array(v, dtype=np.float32)


CASES = []


def case(name, op, inputs, inits=(), opset=17, n_out=1, order=None, **attrs):
    """inputs: (name, array) graph inputs; inits: (name, array) constants
    ("" as a name: an omitted optional input); order: the node's input
    names when inputs and constants interleave."""
    names = order or [n for n, _ in inputs] + [n for n, _ in inits]
    outs = ["y%d" % i for i in range(n_out)]
    node = helper.make_node(op, names, outs, name="n0", **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in inputs]
    elem = helper.np_dtype_to_tensor_dtype(inputs[0][1].dtype)
    g = helper.make_graph([node], name, vi,
                          [helper.make_tensor_value_info(o, elem, None) for o in outs],
                          [numpy_helper.from_array(a, n) for n, a in inits if n])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    CASES.append((name, m, inputs))


# ---- Split ----
x = rnd(3, 9, 5)
case("split_attr_axis1", "Split", [("x", x)], opset=11, n_out=3, axis=1, split=[2, 3, 4])
case("split_input_neg_axis", "Split", [("x", rnd(2, 3, 5))], [("s", i64(1, 4))], opset=13,
     n_out=2, axis=-1)
case("split_equal_axis0", "Split", [("x", rnd(6, 4))], opset=13, n_out=3)
case("split_num_outputs_uneven", "Split", [("x", rnd(2, 7))], opset=18, n_out=3, axis=1,
     num_outputs=3)
case("split_int8_axis2", "Split", [("x", rnd(2, 3, 8, dtype=np.int8))], [("s", i64(5, 0, 3))],
     opset=13, n_out=3, axis=2)
# ---- Gather ----
case("gather_rows_axis0", "Gather", [("x", rnd(50, 33)),
                                     ("i", np.array([[3, -1, 49], [0, 7, -50]], np.int64))])
case("gather_axis1_i32", "Gather", [("x", rnd(3, 7, 5)), ("i", np.array([6, -7, 2], np.int32))],
     axis=1)
case("gather_last_axis", "Gather", [("x", rnd(4, 5, 6)),
                                    ("i", np.array([[5, 0], [-2, 3], [1, 1]], np.int64))],
     axis=-1)
case("gather_scalar_index", "Gather", [("x", rnd(5, 3)), ("i", np.array(-2, np.int64))])
case("gather_int64_rows", "Gather", [("x", rnd(9, 4, dtype=np.int64)), ("i", i64(8, 2, 2, 0))])
case("gather_f16_axis0", "Gather", [("x", rnd(6, 17, dtype=np.float16)), ("i", i64(5, -6, 3))])
case("gather_const_indices", "Gather", [("x", rnd(7, 3, 2))], [("i", i64(1, -1))], axis=0)
# ---- GatherElements ----
case("gatherelements_axis0", "GatherElements",
     [("x", rnd(4, 5)), ("i", rng.integers(-4, 4, (3, 5)).astype(np.int64))])
case("gatherelements_axis1_small", "GatherElements",
     [("x", rnd(3, 6, 4)), ("i", rng.integers(-6, 6, (2, 4, 3)).astype(np.int32))], axis=1)
case("gatherelements_last_u8", "GatherElements",
     [("x", rnd(2, 3, 7, dtype=np.uint8)), ("i", rng.integers(-7, 7, (2, 3, 9)).astype(np.int64))],
     axis=-1)
# ---- Expand ----
case("expand_col_to_3d", "Expand", [("x", rnd(3, 1))], [("s", i64(2, 3, 4))])
case("expand_vector", "Expand", [("x", rnd(1))], [("s", i64(5))])
case("expand_mid_i32", "Expand", [("x", rnd(2, 1, 6, dtype=np.int32))], [("s", i64(2, 5, 6))])
case("expand_shape_smaller", "Expand", [("x", rnd(2, 1, 3))], [("s", i64(4, 1))])
# ---- Tile ----
case("tile_2d", "Tile", [("x", rnd(2, 3))], [("r", i64(2, 3))])
case("tile_middle_block", "Tile", [("x", rnd(3, 1, 4))], [("r", i64(1, 5, 1))])
case("tile_bool", "Tile", [("x", rnd(2, 2, dtype=np.bool_))], [("r", i64(3, 1))])
case("tile_outer_only", "Tile", [("x", rnd(2, 3, 5))], [("r", i64(3, 1, 1))])
# ---- DepthToSpace / SpaceToDepth ----
case("depthtospace_dcr", "DepthToSpace", [("x", rnd(2, 8, 3, 5))], blocksize=2)
case("depthtospace_crd", "DepthToSpace", [("x", rnd(2, 8, 3, 5))], blocksize=2, mode="CRD")
case("depthtospace_dcr_b3_i8", "DepthToSpace", [("x", rnd(1, 18, 2, 3, dtype=np.int8))],
     blocksize=3, mode="DCR")
case("depthtospace_crd_b3", "DepthToSpace", [("x", rnd(1, 18, 2, 3))], blocksize=3, mode="CRD")
case("spacetodepth_b2", "SpaceToDepth", [("x", rnd(2, 3, 4, 6))], blocksize=2)
case("spacetodepth_b3_u8", "SpaceToDepth", [("x", rnd(1, 2, 6, 9, dtype=np.uint8))],
     blocksize=3)
# ---- Trilu ----
case("trilu_upper", "Trilu", [("x", rnd(5, 7))], opset=14)
case("trilu_lower", "Trilu", [("x", rnd(6, 4))], opset=14, upper=0)
case("trilu_upper_k2", "Trilu", [("x", rnd(2, 3, 5, 6))], [("k", np.array(2, np.int64))],
     opset=14)
case("trilu_lower_kneg", "Trilu", [("x", rnd(4, 6, dtype=np.int32))],
     [("k", np.array(-1, np.int64))], opset=14, upper=0)
case("trilu_upper_k_input", "Trilu", [("x", rnd(3, 5, 5)), ("k", np.array(-2, np.int64))],
     opset=14)
case("trilu_lower_k_big", "Trilu", [("x", rnd(3, 4))], [("k", np.array(9, np.int64))],
     opset=14, upper=0)
# ---- Pad ----
pads = i64(0, 1, 2, 0, 2, 3)
case("pad_constant_value", "Pad", [("x", rnd(2, 3, 4))],
     [("p", pads), ("v", f32(1.5))], opset=13, mode="constant")
case("pad_constant_default", "Pad", [("x", rnd(2, 3, 4))], [("p", pads)], opset=13)
case("pad_reflect", "Pad", [("x", rnd(2, 4, 5))], [("p", i64(0, 3, 2, 1, 3, 4))], opset=13,
     mode="reflect")
case("pad_edge", "Pad", [("x", rnd(3, 4, 5))], [("p", i64(1, 2, 0, 2, 1, 3))], opset=13,
     mode="edge")
case("pad_wrap", "Pad", [("x", rnd(2, 3, 4))], [("p", i64(0, 2, 5, 1, 4, 3))], opset=19,
     mode="wrap")
case("pad_crop_negative", "Pad", [("x", rnd(4, 6))], [("p", i64(-1, 2, 1, -3)),
                                                      ("v", f32(-2.0))], opset=13)
case("pad_axes_input", "Pad", [("x", rnd(2, 3, 4, 5))],
     [("p", i64(1, 2, 3, 0)), ("", None), ("a", i64(-1, 1))],
     order=["x", "p", "", "a"], opset=18, mode="constant")
case("pad_axes_reflect", "Pad", [("x", rnd(2, 3, 4, 5))],
     [("p", i64(2, 3, 1, 2)), ("a", i64(2, 1))], order=["x", "p", "", "a"], opset=18,
     mode="reflect")
case("pad_opset2_attr", "Pad", [("x", rnd(3, 5))], opset=2, pads=[1, 0, 2, 3], value=0.25)
case("pad_int8_value_input", "Pad", [("x", rnd(2, 5, dtype=np.int8)),
                                     ("v", np.array(-7, np.int8))],
     [("p", i64(1, 2, 2, 1))], order=["x", "p", "v"], opset=13)
case("pad_nchw_hw_block", "Pad", [("x", rnd(2, 3, 4, 5))], [("p", i64(0, 0, 1, 0, 0, 0, 2, 0))],
     opset=13, mode="edge")
case("pad_reflect_long", "Pad", [("x", rnd(2, 3))], [("p", i64(0, 5, 0, 7))], opset=13,
     mode="reflect")


# ---- Resize ----
def resize(name, x, opset=19, scales=None, sizes=None, roi=None, **attrs):
    inits, order = [], ["x"]
    if opset < 11:
        inits.append(("s", f32(*scales)))
        order.append("s")
    else:
        for nm, v in (("r", roi), ("s", scales), ("z", sizes)):
            if v is None:
                order.append("")
                continue
            inits.append((nm, f32(*v) if nm != "z" else i64(*v)))
            order.append(nm)
        while order[-1] == "":
            order.pop()
    case(name, "Resize", [("x", x)], inits, opset=opset, order=order, **attrs)


img = rnd(2, 3, 5, 7)
for nm in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
    for ct in ("half_pixel", "asymmetric", "align_corners", "tf_half_pixel_for_nn",
               "pytorch_half_pixel"):
        resize("resize_nearest_%s_%s" % (nm, ct), img, scales=[1, 1, 1.7, 2.3], mode="nearest",
               nearest_mode=nm, coordinate_transformation_mode=ct)
resize("resize_nearest_down_sizes", img, sizes=[2, 3, 3, 4], mode="nearest")
resize("resize_nearest_u8", rnd(1, 2, 4, 5, dtype=np.uint8), scales=[1, 1, 2, 3], mode="nearest")
resize("resize_nearest_channels", img, scales=[1, 2, 1, 1], mode="nearest")
resize("resize_opset10_nearest", img, opset=10, scales=[1, 1, 2, 1.5])
resize("resize_opset10_linear", img, opset=10, scales=[1, 1, 0.6, 1.5], mode="linear")
for ct in ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
           "asymmetric"):
    resize("resize_linear_%s" % ct, img, scales=[1, 1, 1.6, 2.5], mode="linear",
           coordinate_transformation_mode=ct)
    resize("resize_cubic_%s" % ct, img, scales=[1, 1, 0.6, 1.5], mode="cubic",
           coordinate_transformation_mode=ct)
resize("resize_linear_down", img, sizes=[2, 3, 3, 4], mode="linear")
resize("resize_linear_to_one", img, sizes=[2, 3, 1, 1], mode="linear",
       coordinate_transformation_mode="pytorch_half_pixel")
resize("resize_cubic_a_half", img, scales=[1, 1, 2, 2], mode="cubic", cubic_coeff_a=-0.5)
resize("resize_cubic_exclude_outside", img, scales=[1, 1, 2.2, 1.3], mode="cubic",
       exclude_outside=1)
resize("resize_linear_tf_crop", img, scales=[1, 1, 1.6, 1.3],
       roi=[0, 0, -0.2, 0.3, 1, 1, 0.9, 1.4], mode="linear",
       coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-3.0)
resize("resize_nearest_tf_crop", img, sizes=[2, 3, 6, 4],
       roi=[0, 0, 0.1, -0.4, 1, 1, 1.3, 0.8], mode="nearest",
       coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=7.0)
resize("resize_cubic_tf_crop", img, sizes=[2, 3, 4, 9],
       roi=[0, 0, 0.2, -0.1, 1, 1, 0.7, 1.2], mode="cubic",
       coordinate_transformation_mode="tf_crop_and_resize")
resize("resize_linear_antialias", rnd(1, 2, 12, 15), scales=[1, 1, 0.4, 0.3], mode="linear",
       antialias=1)
resize("resize_cubic_antialias", rnd(1, 2, 12, 15), sizes=[1, 2, 5, 4], mode="cubic",
       antialias=1)
resize("resize_axes_sizes", img, sizes=[8, 3], mode="linear", axes=[3, 2])
resize("resize_keep_not_larger", img, sizes=[7, 9], mode="linear", axes=[2, 3],
       keep_aspect_ratio_policy="not_larger")
resize("resize_keep_not_smaller", img, sizes=[7, 9], mode="nearest", axes=[2, 3],
       keep_aspect_ratio_policy="not_smaller")
resize("resize_axes_negative", img, sizes=[4, 9], mode="linear", axes=[-2, -1])
resize("resize_linear_u8", rnd(1, 2, 4, 5, dtype=np.uint8), scales=[1, 1, 2, 2], mode="linear")
resize("resize_linear_3d", rnd(2, 5, 6), scales=[1, 1.5, 2.5], mode="linear")
resize("resize_linear_all_axes", rnd(2, 3, 4), scales=[2, 1.5, 0.75], mode="linear")


def ort_run(path, inputs):
    if ort is None:
        return None, "ort absent"
    try:
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return sess.run(None, {n: a for n, a in inputs}), None
    except Exception as e:  # noqa: BLE001 -- an op form ORT does not run
        return None, "ort n/a (%s)" % str(e).splitlines()[0][:60]


def onnx_reference(m, inputs):
    try:
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(m).run(None, {n: a for n, a in inputs}), None
    except Exception as e:  # noqa: BLE001 -- an op form it does not run
        return None, "onnx.reference n/a (%s)" % str(e).splitlines()[0][:50]


def compare(got, want):
    if np.issubdtype(want.dtype, np.floating):
        return cgutil.close(got, want, RTOL)
    ok = got.dtype == want.dtype and np.array_equal(got, want)
    return ok, "exact" if ok else "differs"


def gather_out_of_range(d):
    """Indices the interpreter rejects: the compiled code must not read
    outside the data and reads the clamped rows."""
    x = rnd(6, 5)
    idx = np.array([2, 99, -40, 5], np.int64)
    case("gather_oob_clamped", "Gather", [("x", x), ("i", idx)])
    name, m, inputs = CASES.pop()
    path = os.path.join(d, name + ".onnx")
    onnx.save(m, path)
    so = cgutil.compile_so(path, d, name)
    _, got = cgutil.run_so(so, name, [a for _, a in inputs])
    want = x[np.clip(np.where(idx < 0, idx + 6, idx), 0, 5)]
    ok = np.array_equal(got[0], want)
    print("%-40s %s  clamped rows" % (name, "ok  " if ok else "FAIL"))
    return not ok


def main():
    only = sys.argv[1:]
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        failures += gather_out_of_range(d)
        for name, m, inputs in CASES:
            if only and name not in only:
                continue
            path = os.path.join(d, name + ".onnx")
            onnx.save(m, path)
            so = cgutil.compile_so(path, d, name)
            _, got = cgutil.run_so(so, name, [a for _, a in inputs])
            ref = cgutil.run_ref(path, inputs)
            theirs, note = ort_run(path, inputs)
            onnx_ref = None
            for j, out in enumerate(m.graph.output):
                ok, how = compare(got[j], ref[out.name])
                ok2, how2 = False, note
                if theirs is not None:
                    ok2, how2 = compare(got[j], np.asarray(theirs[j]))
                    how2 = "ort " + how2
                if not ok2:  # ORT rejects the model or departs from the spec
                    if onnx_ref is None:
                        onnx_ref = onnx_reference(m, inputs)
                    if onnx_ref[0] is not None:
                        ok3, how3 = compare(got[j], np.asarray(onnx_ref[0][j]))
                        ok2, how2 = ok3, "%s; onnx.reference %s" % (how2, how3)
                    else:
                        how2 += "; " + onnx_ref[1]
                if not ok2 and name in NO_ORACLE:
                    ok2, how2 = True, "interpreter only: " + NO_ORACLE[name]
                ok, how = ok and ok2, "%s; %s" % (how, how2)
                label = name if j == 0 else "  " + out.name
                print("%-40s %s  %s" % (label, "ok  " if ok else "FAIL", how))
                failures += not ok
    print("%d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
