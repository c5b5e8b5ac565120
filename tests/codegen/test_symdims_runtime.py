"""Symbolic dimensions other than a batch (a sequence length, image H/W)
compiled WITHOUT --input-shape: the library reads them at run time
(NAME_run_dims, the signature's "dims", NAME_scratch_size_for), and
`octet run X.so` takes any value.  Models built here with onnx.helper:

- seq:   x [1, S, 64] and m [1, S, 1] (S on axis 1: not a batch) with element-wise float ops (Add with a
         constant bias, a broadcast Add of m, Mul, Sigmoid, HardSigmoid on
         the kernel library, Clip, Relu, HardSwish fused) and an 8-bit
         DequantizeLinear -> HardSwish -> QuantizeLinear run on a uint8
         input (a byte-table run, octk_lut8) with a uint8 output;
- batch: the same ops with x [N, S, 64] and m [N, S, 1]: the batch loops
         the body, S is read inside it;
- hw:    x [N, 3, H, W] with a per-channel bias [3, 1, 1] broadcast and a
         GlobalAveragePool (output [N, 3, 1, 1]);
- mlp:   x [1, S, 64] through two MatMuls with constant weights (the GEMM
         kernel on chunks of rows: S = 63, 64, 65 straddle a chunk),
         Softmax and LayerNormalization over the last axis, Reshape
         [0, 0, 8, 8] and Flatten.

Each runs at several sizes (S = 1, 5, 37, 100, 200; batch 1 and 4; H x W
= 48x192 and 48x320) and is compared with the reference interpreter on the
same input: float outputs within 1e-5 of their magnitude, 8-bit outputs
bit for bit.  Graphs whose lowerings take static sizes only (a Conv with
auto_pad SAME on symbolic H/W, whose pads depend on them; a reduction over
S) are refused with exit 3 naming the node and op and suggesting
--input-shape, and compile with it.  ppocr-cls and derived sizes:
test_symdims_spatial.py."""
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

F = TensorProto.FLOAT
rng = np.random.default_rng(7)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run_dims(so, ident, inputs):
    """Runs NAME_run_dims with every symbolic dim taken from the inputs'
    shapes; returns (signature, outputs)."""
    lib = ctypes.CDLL(so)
    sym = ctypes.c_char.in_dll(lib, ident + "_signature")
    sig = json.loads(ctypes.string_at(ctypes.addressof(sym)).decode())
    names = sig["dims"]
    dims = [None] * len(names)
    for arr, spec in zip(inputs, sig["inputs"]):
        for d, s in enumerate(spec["shape"]):
            if isinstance(s, str):
                dims[names.index(s)] = arr.shape[d]
    c_dims = (ctypes.c_int64 * len(dims))(*dims)
    outs = [np.empty([dims[names.index(s)] if isinstance(s, str) else s for s in o["shape"]],
                     dtype=cgutil.np_dtype(o["dtype"])) for o in sig["outputs"]]
    size_for = getattr(lib, ident + "_scratch_size_for")
    size_for.restype = ctypes.c_ulonglong
    size_for.argtypes = [ctypes.c_void_p]
    scratch = np.zeros(size_for(c_dims) + 64, dtype=np.uint8)
    addr = (scratch.ctypes.data + 63) // 64 * 64
    ins = [np.ascontiguousarray(a) for a in inputs]
    in_ptrs = (ctypes.c_void_p * len(ins))(*[a.ctypes.data for a in ins])
    out_ptrs = (ctypes.c_void_p * len(outs))(*[o.ctypes.data for o in outs])
    fn = getattr(lib, ident + "_run_dims")
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 4
    rc = fn(c_dims, in_ptrs, out_ptrs, ctypes.c_void_p(addr))
    assert rc == 0, rc
    run = getattr(lib, ident + "_run")
    run.restype = ctypes.c_int
    run.argtypes = [ctypes.c_void_p] * 3
    check(run(in_ptrs, out_ptrs, ctypes.c_void_p(addr)) == 1,
          f"{ident}_run refuses (1): the model needs its dims")
    return sig, outs


def eltwise_model(path, lead):
    """x [*lead, 64], m [*lead, 1], xb [*lead, 64] uint8 -> y (float) and
    q = Q(HardSwish(DQ(xb))) (uint8)."""
    c = 64
    bias = helper.make_tensor("bias", F, [c], rng.normal(0, 0.5, c).astype(np.float32))
    sc = helper.make_tensor("sc", F, [], [0.05])
    zp = helper.make_tensor("zp", TensorProto.UINT8, [], [128])
    lo = helper.make_tensor("lo", F, [], [-2.0])
    hi = helper.make_tensor("hi", F, [], [3.0])
    nodes = [
        helper.make_node("Add", ["x", "bias"], ["a"], name="add_bias"),
        helper.make_node("Add", ["a", "m"], ["b"], name="add_m"),       # broadcast over 64
        helper.make_node("Sigmoid", ["b"], ["s"], name="sig"),
        helper.make_node("Mul", ["b", "s"], ["bs"], name="mul"),
        helper.make_node("HardSigmoid", ["bs"], ["hs"], name="hsig"),
        helper.make_node("Clip", ["bs", "lo", "hi"], ["cl"], name="clip"),
        helper.make_node("Relu", ["cl"], ["r"], name="relu"),
        helper.make_node("Sub", ["r", "hs"], ["y"], name="sub"),
        helper.make_node("DequantizeLinear", ["xb", "sc", "zp"], ["xd"], name="dq0"),
        helper.make_node("HardSwish", ["xd"], ["xh"], name="hswish"),
        helper.make_node("QuantizeLinear", ["xh", "sc", "zp"], ["q"], name="q1"),
    ]
    g = helper.make_graph(
        nodes, "seq",
        [helper.make_tensor_value_info("x", F, [*lead, c]),
         helper.make_tensor_value_info("m", F, [*lead, 1]),
         helper.make_tensor_value_info("xb", TensorProto.UINT8, [*lead, c])],
        [helper.make_tensor_value_info("y", F, [*lead, c]),
         helper.make_tensor_value_info("q", TensorProto.UINT8, [*lead, c])],
        initializer=[bias, sc, zp, lo, hi])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), path)


def compare(label, path, names, inputs, outs):
    want = cgutil.run_ref(path, list(zip(names, inputs)))
    y, q = outs
    ok1, msg = cgutil.close(y, want["y"], 1e-5)
    ok2 = q.dtype == np.uint8 and np.array_equal(q, want["q"])
    check(ok1 and ok2, f"{label}: y {msg}, q {'bit for bit' if ok2 else 'DIFFERS'}")


def inputs(lead):
    return (rng.normal(0, 2, (*lead, 64)).astype(np.float32),
            rng.normal(0, 1, (*lead, 1)).astype(np.float32),
            rng.integers(0, 256, (*lead, 64), dtype=np.uint8))


def seq_case(tmp):
    path = os.path.join(tmp, "seq.onnx")
    eltwise_model(path, [1, "S"])  # S not on axis 0: not a batch
    so = cgutil.compile_so(path, tmp, "seq", ["--report", os.path.join(tmp, "seq.report")])
    for s in (1, 5, 37, 100):
        x, m, xb = inputs((1, s))
        sig, outs = run_dims(so, "seq", [x, m, xb])
        check(sig["dims"] == ["S"] and sig["inputs"][0]["shape"] == [1, "S", 64] and
              sig["outputs"][1]["shape"] == [1, "S", 64], f"seq: signature names S ({sig['dims']})")
        compare(f"seq S={s} through seq_run_dims", path, ["x", "m", "xb"], [x, m, xb], outs)
    report = open(os.path.join(tmp, "seq.report")).read()
    check("octk_lut8" in report, "seq: the Q/DQ run is a byte-table run (octk_lut8)")
    header = open(os.path.join(tmp, "seq.h")).read()
    check("#define seq_NUM_DIMS 1" in header and '#define seq_DIM_0_NAME "S"' in header and
          "#define seq_INPUT_0_DIM_INDEX {-1, 0, -1}" in header and
          "#define seq_INPUT_0_SHAPE {1, 1, 64}" in header,
          "seq.h lists dim S and the axes taking it")
    # octet run X.so: S from the input files, two sizes
    for s in (3, 250):
        x, m, xb = inputs((1, s))
        got = run_cli(so, tmp, {"x": x, "m": m, "xb": xb})
        want = cgutil.run_ref(path, [("x", x), ("m", m), ("xb", xb)])
        ok = got is not None and cgutil.close(got["y"], want["y"], 1e-5)[0] and \
            np.array_equal(got["q"], want["q"])
        check(ok, f"`octet run seq.so` at S={s} matches the interpreter")


def bad_dims(so, ident, dims):
    """(NAME_run_dims's status, NAME_scratch_size_for) for dims no buffer
    holds; the buffers passed are never touched."""
    lib = ctypes.CDLL(so)
    c_dims = (ctypes.c_int64 * len(dims))(*dims)
    size_for = getattr(lib, ident + "_scratch_size_for")
    size_for.restype = ctypes.c_ulonglong
    size_for.argtypes = [ctypes.c_void_p]
    fn = getattr(lib, ident + "_run_dims")
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 4
    nulls = (ctypes.c_void_p * 4)()
    return fn(c_dims, nulls, nulls, None), size_for(c_dims)


def run_cli(so, tmp, feeds):
    args = [cgutil.OCTET, "run", so, "--output-dir", os.path.join(tmp, "cli")]
    for k, v in feeds.items():
        f = os.path.join(tmp, k + ".npy")
        np.save(f, v)
        args += ["--input", f"{k}={f}"]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode:
        print(p.stderr)
        return None
    return {n: np.load(os.path.join(tmp, "cli", n + ".npy")) for n in ("y", "q")}


def batch_case(tmp):
    path = os.path.join(tmp, "bseq.onnx")
    eltwise_model(path, ["N", "S"])
    so = cgutil.compile_so(path, tmp, "bseq")
    for n, s in ((1, 7), (4, 7), (4, 130), (2, 1)):
        x, m, xb = inputs((n, s))
        sig, outs = run_dims(so, "bseq", [x, m, xb])
        check(sig["dims"] == ["N", "S"] and sig["inputs"][1]["shape"] == ["N", "S", 1],
              f"bseq: dims N (the looped batch) then S ({sig['dims']})")
        compare(f"bseq N={n} S={s}", path, ["x", "m", "xb"], [x, m, xb], outs)


def unnamed_batch_case(tmp):
    """A lone input whose leading dim is symbolic without a name (dim_param
    empty, as some exporters write it) is still a run-time batch, as before
    other symbolic dims were compiled: it compiles without --input-shape
    and runs at batch 1 and 4."""
    path = os.path.join(tmp, "unb.onnx")
    bias = helper.make_tensor("bias", F, [16], rng.normal(0, 1, 16).astype(np.float32))
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "bias"], ["y"])],
        "unb", [helper.make_tensor_value_info("x", F, [None, 16])],
        [helper.make_tensor_value_info("y", F, [None, 16])], initializer=[bias])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), path)
    so = cgutil.compile_so(path, tmp, "unb")
    for n in (1, 4):
        x = rng.normal(0, 1, (n, 16)).astype(np.float32)
        f, out = os.path.join(tmp, "unb_x.npy"), os.path.join(tmp, "unb_out")
        np.save(f, x)
        p = subprocess.run([cgutil.OCTET, "run", so, "--input", f"x={f}", "--output-dir", out],
                           capture_output=True, text=True)
        check(p.returncode == 0, f"unnamed batch N={n}: octet run X.so ({p.stderr.strip()})")
        if p.returncode == 0:
            want = np.maximum(x, 0) + numpy_helper.to_array(bias)
            ok, msg = cgutil.close(np.load(os.path.join(out, "y.npy")), want, 1e-6)
            check(ok, f"unnamed batch N={n}: y {msg}")


def hw_case(tmp):
    """Image H and W symbolic: a per-channel bias broadcast, HardSwish."""
    b = helper.make_tensor("b", F, [3, 1, 1], [0.5, -0.25, 1.0])
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["a"], name="bias"),
         helper.make_node("HardSwish", ["a"], ["y"], name="hs"),
        helper.make_node("GlobalAveragePool", ["y"], ["p"], name="gap")], "hw",
        [helper.make_tensor_value_info("x", F, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", F, ["N", 3, "H", "W"]),
         helper.make_tensor_value_info("p", F, ["N", 3, 1, 1])], initializer=[b])
    path = os.path.join(tmp, "hw.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), path)
    so = cgutil.compile_so(path, tmp, "hw")
    for n, h, w in ((1, 48, 192), (4, 48, 320), (4, 48, 192)):
        x = rng.normal(0, 3, (n, 3, h, w)).astype(np.float32)
        sig, (y, p) = run_dims(so, "hw", [x])
        want = cgutil.run_ref(path, [("x", x)])
        ok, msg = cgutil.close(y, want["y"], 1e-5)
        ok2, msg2 = cgutil.close(p, want["p"], 1e-5)
        check(sig["dims"] == ["N", "H", "W"] and sig["outputs"][1]["shape"] == ["N", 3, 1, 1]
              and ok and ok2, f"hw N={n} {h}x{w}: {msg}; GlobalAveragePool {msg2}")
    for dims in ([1, -1, 5], [1, 5, 2**31 + 1], [1, 2**31, 2**31]):
        got = bad_dims(so, "hw", dims)
        check(got == (1, 0), f"hw dims {dims}: hw_run_dims returns 1, scratch_size_for 0 ({got})")


def mlp_case(tmp):
    """Rows known at run time: MatMul on the GEMM kernel (chunks of rows),
    Softmax over the last axis, Reshape [0, 0, 8, 8], Flatten and
    LayerNormalization over the last axis."""
    w1 = helper.make_tensor("w1", F, [64, 32], rng.normal(0, 0.2, 64 * 32).astype(np.float32))
    w2 = helper.make_tensor("w2", F, [32, 16], rng.normal(0, 0.2, 32 * 16).astype(np.float32))
    b2 = helper.make_tensor("b2", F, [16], rng.normal(0, 0.2, 16).astype(np.float32))
    sh = helper.make_tensor("sh", TensorProto.INT64, [4], [0, 0, 8, 8])
    ls = helper.make_tensor("ls", F, [64], rng.normal(1, 0.1, 64).astype(np.float32))
    lb = helper.make_tensor("lb", F, [64], rng.normal(0, 0.1, 64).astype(np.float32))
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm"),
         helper.make_node("Relu", ["h"], ["hr"], name="relu"),
         helper.make_node("MatMul", ["hr", "w2"], ["h1"], name="mm2"),
         helper.make_node("Add", ["h1", "b2"], ["h2"], name="bias"),
         helper.make_node("Softmax", ["h2"], ["y"], name="sm", axis=-1),
         helper.make_node("Reshape", ["x", "sh"], ["r"], name="rs"),
         helper.make_node("Relu", ["r"], ["rr"], name="relu2"),
         helper.make_node("Flatten", ["rr"], ["z"], name="fl", axis=2),
         helper.make_node("LayerNormalization", ["x", "ls", "lb"], ["ln"], name="ln",
                          axis=-1)], "mlp",
        [helper.make_tensor_value_info("x", F, [1, "S", 64])],
        [helper.make_tensor_value_info("y", F, [1, "S", 16]),
         helper.make_tensor_value_info("z", F, [None, 64]),
         helper.make_tensor_value_info("ln", F, [1, "S", 64])],
        initializer=[w1, w2, b2, sh, ls, lb])
    path = os.path.join(tmp, "mlp.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    so = cgutil.compile_so(path, tmp, "mlp")
    for s in (1, 63, 64, 65, 200):
        x = rng.normal(0, 1, (1, s, 64)).astype(np.float32)
        sig, (y, z, ln) = run_dims(so, "mlp", [x])
        want = cgutil.run_ref(path, [("x", x)])
        ok1, m1 = cgutil.close(y, want["y"], 1e-5)
        ok2, m2 = cgutil.close(z, want["z"], 1e-5)
        ok3, m3 = cgutil.close(ln, want["ln"], 1e-5)
        check(sig["dims"] == ["S"] and ok1 and ok2 and ok3,
              f"mlp S={s}: softmax {m1}, reshape {m2}, layernorm {m3}")


def refused(tmp):
    w = helper.make_tensor("w", F, [4, 3, 3, 3], rng.normal(0, 1, 108).astype(np.float32))
    cases = {
        "conv_hw": (helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], name="conv0", auto_pad="SAME_UPPER")],
            "c", [helper.make_tensor_value_info("x", F, [1, 3, "H", "W"])],
            [helper.make_tensor_value_info("y", F, [1, 4, "H", "W"])], initializer=[w]),
            "conv0", "Conv", "x=1x3x8x8"),
        "reduce_seq": (helper.make_graph(
            [helper.make_node("ReduceSum", ["x", "ax"], ["y"], name="sum0", keepdims=0)],
            "r", [helper.make_tensor_value_info("x", F, ["S", 4])],
            [helper.make_tensor_value_info("y", F, [4])],
            initializer=[helper.make_tensor("ax", TensorProto.INT64, [1], [0])]),
            "sum0", "ReduceSum", "x=5x4"),
    }
    for name, (g, node, op, shape) in cases.items():
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
        p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(tmp, name),
                            "--emit=so"], capture_output=True, text=True)
        last = (p.stderr.strip().splitlines() or [""])[-1][:220]
        check(p.returncode == 3 and f"'{node}'" in p.stderr and op in p.stderr and
              "--input-shape" in p.stderr,
              f"{name}: refused (exit {p.returncode}) naming node '{node}' ({op}): {last}")
        p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(tmp, name),
                            "--emit=so", "--input-shape", shape], capture_output=True)
        check(p.returncode == 0, f"{name}: compiles with --input-shape {shape}")


def passthrough(tmp):
    """A graph output that is the input itself (no node): its copy would
    need the run-time size, which the output copy does not take yet."""
    x = helper.make_tensor_value_info("x", F, [1, "S"])
    g = helper.make_graph([], "p", [x], [x])
    path = os.path.join(tmp, "pass.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(tmp, "pass"),
                        "--emit=so"], capture_output=True, text=True)
    check(p.returncode == 3 and "'x'" in p.stderr and "--input-shape" in p.stderr,
          f"graph output = symbolic input: refused (exit {p.returncode})")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        seq_case(tmp)
        batch_case(tmp)
        unnamed_batch_case(tmp)
        hw_case(tmp)
        mlp_case(tmp)
        refused(tmp)
        passthrough(tmp)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
