"""Models with a symbolic batch dimension compiled WITHOUT --input-shape:
the library takes the batch at run time (NAME_run_dims, its signature's
"dims"), and `octet run X.so` accepts any batch.  For models/fashion-cnn
(in the repository) and, with ../shared, cifar10-cnn and iris-mlp, FP32 and
INT8 (octet quantize): batch 1 through NAME_run and NAME_run_dims, batch 4
through NAME_run_dims and `octet run X.so`, each compared with the reference
interpreter on the same batch (FP32 within 1e-5 of the output's magnitude;
INT8 every quantized tensor byte for byte against the interpreter running
the qdq_fuse'd graph, as tests/codegen/test_qmodels.py does).  Graphs that
mix the items of the batch (a reduction, a Softmax, a Transpose, a Reshape
over axis 0) are refused with a diagnostic naming the node and suggesting
--input-shape, unless the lowerings take the batch as a run-time size
(Softmax over axis 0, a Reshape moving it: then compiled and checked);
ppocr-cls compiles with --input-shape to a static library (without it, H
and W are read at run time: test_symdims_spatial.py).  The public API's JIT runner takes batch 1, then 4, then 2
on one runner; `octet run X.so --each-sample` samples of any batch; a C
program built against the generated header runs fc_run_dims; batched and
static inputs and outputs sit side by side, and `octet run X.so` refuses
inputs that disagree on the batch."""
import csv
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402
from shared_data import SHARED, SKIP_EXIT  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(SHARED, "models")
PIPELINE = "shape_infer,fold,shape_infer,qdq_fuse"
rng = np.random.default_rng(11)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def load(so, ident):
    lib = ctypes.CDLL(so)
    sym = ctypes.c_char.in_dll(lib, ident + "_signature")
    return lib, json.loads(ctypes.string_at(ctypes.addressof(sym)).decode())


def run_dims(so, ident, inputs, via_run=False):
    """Runs the library on inputs (signature order) with dims[0] = their
    batch, through NAME_run_dims (or NAME_run when via_run: batch 1)."""
    lib, sig = load(so, ident)
    names = sig.get("dims", [])
    dims = [None] * len(names)
    for arr, spec in zip(inputs, sig["inputs"]):
        assert len(arr.shape) == len(spec["shape"]), (arr.shape, spec)
        for d, s in enumerate(spec["shape"]):
            if isinstance(s, str):
                dims[names.index(s)] = arr.shape[d]
            else:
                assert arr.shape[d] == s, (arr.shape, spec)
    c_dims = (ctypes.c_int64 * max(1, len(dims)))(*dims)
    outs = []
    for spec in sig["outputs"]:
        shape = [dims[names.index(s)] if isinstance(s, str) else s for s in spec["shape"]]
        outs.append(np.empty(shape, dtype=cgutil.np_dtype(spec["dtype"])))
    size_for = getattr(lib, ident + "_scratch_size_for")
    size_for.restype = ctypes.c_ulonglong
    size_for.argtypes = [ctypes.c_void_p]
    scratch = np.zeros(size_for(c_dims) + 64, dtype=np.uint8)
    addr = (scratch.ctypes.data + 63) // 64 * 64
    ins = [np.ascontiguousarray(a) for a in inputs]
    in_ptrs = (ctypes.c_void_p * max(1, len(ins)))(*[a.ctypes.data for a in ins])
    out_ptrs = (ctypes.c_void_p * max(1, len(outs)))(*[o.ctypes.data for o in outs])
    if via_run:
        fn = getattr(lib, ident + "_run")
        fn.argtypes = [ctypes.c_void_p] * 3
        rc = fn(in_ptrs, out_ptrs, ctypes.c_void_p(addr))
    else:
        fn = getattr(lib, ident + "_run_dims")
        fn.argtypes = [ctypes.c_void_p] * 4
        rc = fn(c_dims, in_ptrs, out_ptrs, ctypes.c_void_p(addr))
    assert rc == 0, rc
    return sig, outs


def expose_quantized(src, dst):
    """src with every QuantizeLinear output also a graph output."""
    m = onnx.load(src)
    have = {o.name for o in m.graph.output}
    inits = {t.name: t for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "QuantizeLinear" and n.output[0] not in have:
            zp = inits.get(n.input[2]) if len(n.input) > 2 else None
            elem = zp.data_type if zp is not None else TensorProto.UINT8
            m.graph.output.append(helper.make_tensor_value_info(n.output[0], elem, None))
    onnx.save(m, dst)


def compare(label, sig, outs, want, integer):
    """Each output against the interpreter's; returns a failure text or ''."""
    bad = []
    n_exact = 0
    for spec, got in zip(sig["outputs"], outs):
        ref = want[cgutil.safe_name(spec["name"])]
        if got.dtype in (np.uint8, np.int8):
            n_exact += 1
            if ref.shape != got.shape or not np.array_equal(got, ref):
                bad.append("%s: %d of %d bytes differ" % (
                    spec["name"], int(np.sum(got != ref)) if ref.shape == got.shape else -1,
                    got.size))
        else:
            ok, msg = cgutil.close(got, ref, 1e-5 if not integer else 1e-4)
            if not ok:
                bad.append("%s: %s" % (spec["name"], msg))
    if integer and n_exact == 0:
        bad.append("no quantized tensor compared")
    return "; ".join(bad[:4])


def run_so_cli(so, inp, x, tmp, tag):
    """`octet run X.so` on x; its outputs by file name."""
    xf = os.path.join(tmp, tag + ".x.npy")
    np.save(xf, x)
    d = os.path.join(tmp, tag + ".out")
    subprocess.run([cgutil.OCTET, "run", so, "--input", inp + "=" + xf, "--output-dir", d],
                   check=True, stdout=subprocess.DEVNULL)
    return {f[:-4]: np.load(os.path.join(d, f)) for f in os.listdir(d)}


def model_case(name, path, inp, calib, batch4, tmp):
    """FP32 and INT8 of one model, compiled without --input-shape."""
    fp32 = ("fp32", path, [], False)
    calib_file = os.path.join(tmp, name + ".calib.npy")
    np.save(calib_file, calib)
    qdq = os.path.join(tmp, name + ".qdq.onnx")
    subprocess.run([cgutil.OCTET, "quantize", path, "--calib", calib_file, "-o", qdq,
                    "--progress=none"], check=True, stdout=subprocess.DEVNULL)
    probe = os.path.join(tmp, name + ".probe.onnx")
    expose_quantized(qdq, probe)
    int8 = ("int8", probe, ["--passes=" + PIPELINE], True)
    for kind, model, ref_args, integer in (fp32, int8):
        ident = "m_" + "".join(c if c.isalnum() else "_" for c in name) + "_" + kind
        so = cgutil.compile_so(model, tmp, ident)
        _, sig = load(so, ident)
        sym = sig.get("dims", [])
        check(len(sym) == 1 and isinstance(sig["inputs"][0]["shape"][0], str) and
              all(isinstance(o["shape"][0], str) for o in sig["outputs"]),
              f"{name} {kind}: signature lists symbolic dims {sym} on the inputs and outputs")
        for batch, x in ((1, batch4[:1]), (4, batch4)):
            want = cgutil.run_ref(model, [(inp, x)], extra=ref_args)
            runs = [("run_dims", run_dims(so, ident, [x]))]
            if batch == 1:
                runs.append(("run", run_dims(so, ident, [x], via_run=True)))
            for how, (sig_, outs) in runs:
                why = compare(name, sig_, outs, want, integer)
                check(not why, f"{name} {kind} batch {batch} via {how} matches the "
                      f"interpreter" + (": " + why if why else ""))
        got = run_so_cli(so, inp, batch4, tmp, ident)
        ok = all(np.array_equal(got[k], v) for k, v in
                 zip([cgutil.safe_name(o["name"]) for o in sig["outputs"]],
                     run_dims(so, ident, [batch4])[1]))
        check(ok and len(got) == len(sig["outputs"]),
              f"{name} {kind}: `octet run X.so` at batch 4 gives NAME_run_dims's outputs")


def refused(tmp):
    """Graphs that mix the batch items: the compile fails with a diagnostic,
    or, when every lowering the batch reaches takes run-time sizes, the
    batch is compiled as a dimension read at run time instead of looped."""
    def model(node, out_shape, inits=(), x_shape=("N", 4), extra_out=()):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)
        g = helper.make_graph([node], "g", [x], [y, *extra_out], initializer=list(inits))
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [4, -1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
    cases = {
        "reduce_over_batch": model(helper.make_node("ReduceSum", ["x", "axes"], ["y"],
                                                    name="sum0", keepdims=1),
                                   [1, 4], [axes]),
        "softmax_over_batch": model(helper.make_node("Softmax", ["x"], ["y"], name="sm0",
                                                     axis=0), ["N", 4]),
        "transpose_batch": model(helper.make_node("Transpose", ["x"], ["y"], name="tr",
                                                  perm=[1, 0]), [4, "N"]),
        "reshape_mixes_batch": model(helper.make_node("Reshape", ["x", "shape"], ["y"],
                                                      name="rs"), [4, None], [shape]),
        # Indices count over the flattened N*C*H*W tensor
        "maxpool_indices": model(
            helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2]),
            ["N", 1, 3], x_shape=("N", 1, 4),
            extra_out=[helper.make_tensor_value_info("idx", TensorProto.INT64, ["N", 1, 3])]),
    }
    shapes = {"maxpool_indices": None}  # the backend has no Indices output yet
    # the proof fails, N is then read at run time like any symbol, and these
    # lowerings take run-time sizes (test_symdims_runtime.py)
    x4 = rng.normal(0, 1, (5, 4)).astype(np.float32)
    e = np.exp(x4 - x4.max(axis=0))
    compiled = {"softmax_over_batch": e / e.sum(axis=0),
                "reshape_mixes_batch": x4.reshape(4, -1)}
    for name, m in cases.items():
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(m, path)
        node = m.graph.node[0].name
        if name in compiled:
            so = cgutil.compile_so(path, tmp, name)
            sig, outs = run_dims(so, name, [x4])
            ok, msg = cgutil.close(outs[0], compiled[name], 1e-5)
            check(sig.get("dims") == ["N"] and ok, f"{name}: the batch proof fails, N is read "
                  f"at run time instead and N=5 matches numpy ({msg})")
            continue
        p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(tmp, name),
                            "--emit=so"], capture_output=True, text=True)
        last = (p.stderr.strip().splitlines() or [""])[-1][:200]
        check(p.returncode != 0 and p.returncode < 128 and f"'{node}'" in p.stderr and
              "'N'" in p.stderr and "--input-shape" in p.stderr,
              f"{name}: refused (exit {p.returncode}) naming node '{node}' and dim 'N': {last}")
        if name in shapes:
            continue
        p = subprocess.run([cgutil.OCTET, "compile", path, "-o", os.path.join(tmp, name),
                            "--emit=so", "--input-shape", shapes.get(name, "x=2x4")],
                           capture_output=True)
        check(p.returncode == 0, f"{name}: compiles with --input-shape "
              + shapes.get(name, "x=2x4"))
    # x.view(x.size(0), -1) (Shape, Gather, Concat, Reshape): separable
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["sh"], axis=0),
             helper.make_node("Reshape", ["x", "sh"], ["f"]),
             helper.make_node("Relu", ["f"], ["y"])]
    xs = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    g = helper.make_graph(nodes, "view", [xs],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])],
                          initializer=[helper.make_tensor("zero", TensorProto.INT64, [], [0]),
                                       axes, helper.make_tensor("minus1", TensorProto.INT64,
                                                                [1], [-1])])
    path = os.path.join(tmp, "view.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    so = cgutil.compile_so(path, tmp, "view")
    v = rng.normal(0, 1, (4, 2, 3)).astype(np.float32)
    sig, outs = run_dims(so, "view", [v])
    check(sig.get("dims") == ["N"] and np.array_equal(outs[0], np.maximum(v, 0).reshape(4, 6)),
          "x.view(x.size(0), -1): compiled without --input-shape, batch 4 = relu(x) reshaped")


def mixed_inputs(tmp):
    """Inputs x [N,4] and z [N,4] batched, s [4] static (the same for every
    item); outputs y = x*s + z [N,4] and the unbatched t = s+s [4]."""
    f = TensorProto.FLOAT
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["xs"]), helper.make_node("Add", ["xs", "z"], ["y"]),
         helper.make_node("Add", ["s", "s"], ["t"])], "mixed",
        [helper.make_tensor_value_info("x", f, ["N", 4]), helper.make_tensor_value_info("s", f, [4]),
         helper.make_tensor_value_info("z", f, ["N", 4])],
        [helper.make_tensor_value_info("y", f, ["N", 4]), helper.make_tensor_value_info("t", f, [4])])
    path = os.path.join(tmp, "mixed.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    so = cgutil.compile_so(path, tmp, "mixed")
    x, z = rng.normal(0, 1, (2, 5, 4)).astype(np.float32)
    sv = rng.normal(0, 1, 4).astype(np.float32)
    sig, (y, t) = run_dims(so, "mixed", [x, sv, z])
    shapes = [i["shape"] for i in sig["inputs"]] + [o["shape"] for o in sig["outputs"]]
    check(shapes == [["N", 4], [4], ["N", 4], ["N", 4], [4]] and
          np.array_equal(y, x * sv + z) and np.array_equal(t, sv + sv),
          f"batched and static inputs and outputs side by side at batch 5 ({shapes})")
    xf, sf, zf = (os.path.join(tmp, n + ".npy") for n in "xsz")
    np.save(xf, x[:3])
    np.save(sf, sv)
    np.save(zf, z[:2])
    p = subprocess.run([cgutil.OCTET, "run", so, "--input", "x=" + xf, "--input", "s=" + sf,
                        "--input", "z=" + zf], capture_output=True, text=True)
    check(p.returncode == 2 and "'N'" in p.stderr,
          f"`octet run X.so` refuses inputs of batch 3 and 2 (exit {p.returncode}: "
          f"{p.stderr.strip()[-120:]})")


def each_sample(tmp):
    """`octet run X.so --each-sample`: samples of batch 3, outputs stacked."""
    fashion = os.path.join(ROOT, "models", "fashion-cnn", "fashion-cnn.onnx")
    so = cgutil.compile_so(fashion, tmp, "fashion_each")
    x = rng.uniform(0, 1, (2, 3, 1, 28, 28)).astype(np.float32)
    xf = os.path.join(tmp, "each.npy")
    np.save(xf, x)
    d = os.path.join(tmp, "each.out")
    subprocess.run([cgutil.OCTET, "run", so, "--input", "input=" + xf, "--each-sample",
                    "--output-dir", d], check=True, stdout=subprocess.DEVNULL)
    got = np.load(os.path.join(d, "logits.npy"))
    want = np.stack([run_dims(so, "fashion_each", [x[i]])[1][0] for i in range(2)])
    check(got.shape == (2, 3, 10) and np.array_equal(got, want),
          f"--each-sample on a symbolic batch: 2 samples of batch 3 -> {got.shape}")


C_DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "fc.h"

/* fc_run_dims through the header: batch, input file, output file. */
int main(int argc, char **argv)
{
    if (argc != 4 || fc_NUM_DIMS != 1)
        return 2;
    int64_t dims[fc_NUM_DIMS] = {atoll(argv[1])};
    const long long in_shape[] = fc_INPUT_0_SHAPE, out_shape[] = fc_OUTPUT_0_SHAPE;
    const int in_index[] = fc_INPUT_0_DIM_INDEX, out_index[] = fc_OUTPUT_0_DIM_INDEX;
    size_t in_bytes = fc_INPUT_0_BYTES, out_bytes = fc_OUTPUT_0_BYTES;
    if (in_index[0] != 0 || out_index[0] != 0 || in_shape[0] != 1 || out_shape[0] != 1)
        return 3;
    in_bytes *= (size_t)dims[0];
    out_bytes *= (size_t)dims[0];
    float *x = malloc(in_bytes), *y = malloc(out_bytes);
    void *scratch = aligned_alloc(fc_ALIGNMENT, (fc_scratch_size_for(dims) + 63) / 64 * 64 + 64);
    FILE *f = fopen(argv[2], "rb");
    if (!x || !y || !scratch || !f || fread(x, 1, in_bytes, f) != in_bytes)
        return 4;
    fclose(f);
    const void *in[] = {x};
    void *out[] = {y};
    int64_t bad[1] = {-1};
    if (fc_run_dims(bad, in, out, scratch) != 1 || fc_run_dims(dims, in, out, scratch) != 0)
        return 5;
    f = fopen(argv[3], "wb");
    if (!f || fwrite(y, 1, out_bytes, f) != out_bytes)
        return 6;
    fclose(f);
    printf("%s\n", fc_DIM_0_NAME);
    return 0;
}
"""


def c_driver(tmp):
    """A C program against fc.h and fc.o runs batch 5 (and a negative batch
    is refused): the header's symbolic-dimension interface is usable."""
    fashion = os.path.join(ROOT, "models", "fashion-cnn", "fashion-cnn.onnx")
    base = os.path.join(tmp, "fc")
    subprocess.run([cgutil.OCTET, "compile", fashion, "-o", base, "--emit=obj,header"],
                   check=True, stderr=subprocess.DEVNULL)
    src = os.path.join(tmp, "driver.c")
    with open(src, "w") as f:
        f.write(C_DRIVER)
    exe = os.path.join(tmp, "driver")
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-const-variable",
                    "-I", tmp, "-I", os.path.join(ROOT, "runtime"), src, base + ".o",
                    os.path.join(os.environ["OCTET_BUILD"], "liboctet_runtime.a"), "-lm",
                    "-lpthread", "-o", exe], check=True)
    x = rng.uniform(0, 1, (5, 1, 28, 28)).astype(np.float32)
    xf, yf = os.path.join(tmp, "drv.x"), os.path.join(tmp, "drv.y")
    x.tofile(xf)
    p = subprocess.run([exe, "5", xf, yf], capture_output=True, text=True)
    got = np.fromfile(yf, dtype=np.float32).reshape(5, 10) if p.returncode == 0 else None
    want = cgutil.run_ref(fashion, [("input", x)])["logits"]
    ok, msg = (False, "exit %d" % p.returncode) if got is None else cgutil.close(got, want, 1e-5)
    check(ok and p.stdout.strip() == "N",
          f"C program through fc.h: fc_run_dims at batch 5 matches the interpreter ({msg})")


def ppocr(tmp):
    path = os.path.join(MODELS, "ppocr-cls", "model.onnx")
    # without --input-shape H and W are read at run time
    # (test_symdims_spatial.py); --input-shape still specializes
    so = cgutil.compile_so(path, tmp, "ppocr", ["--input-shape", "x=1x3x48x192"])
    x = rng.uniform(-1, 1, (1, 3, 48, 192)).astype(np.float32)
    sig, outs = cgutil.run_so(so, "ppocr", [x])
    want = cgutil.run_ref(path, [("x", x)])
    ok, msg = cgutil.close(outs[0], want[cgutil.safe_name(sig["outputs"][0]["name"])], 1e-5)
    check("dims" not in sig and ok, f"ppocr-cls with --input-shape: static and matches ({msg})")


class Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("dims", ctypes.POINTER(ctypes.c_int64)), ("data", ctypes.c_void_p),
                ("nbytes", ctypes.c_uint64)]


def asan_runtime(lib_path):
    """The AddressSanitizer runtime liboctet.so links (a sanitized build),
    or None: Python must then load it first (LD_PRELOAD)."""
    out = subprocess.run(["ldd", lib_path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "libasan" in line and "=>" in line:
            return line.split("=>")[1].split()[0]
    return None


def jit_runner(model, batches):
    """The public API's JIT runner (oct_runner_run, liboctet.so) on float32
    inputs of one model input, one run per array, all on one runner; the
    first output of each run.  In a sanitized build the runs happen in a
    child Python with the sanitizer runtime preloaded."""
    path = os.path.join(os.environ["OCTET_BUILD"], "liboctet.so")
    asan = asan_runtime(path)
    if asan and "LD_PRELOAD" not in os.environ:
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "in.npz"), os.path.join(d, "out.npz")
            np.savez(src, *batches)
            env = dict(os.environ, LD_PRELOAD=asan, ASAN_OPTIONS="detect_leaks=0")
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--runner", model,
                                src, dst], env=env)
            if p.returncode:
                return [None] * len(batches)
            got = np.load(dst, allow_pickle=False)
            return [got["arr_%d" % i] if got["ok"][i] else None
                    for i in range(len(batches))]
    lib = ctypes.CDLL(path)
    lib.oct_ctx_new.restype = ctypes.c_void_p
    lib.oct_ctx_free.argtypes = [ctypes.c_void_p]
    lib.oct_model_load_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint,
                                        ctypes.POINTER(ctypes.c_void_p)]
    lib.oct_runner_new.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p,
                                   ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.oct_runner_run.argtypes = [ctypes.c_void_p, ctypes.POINTER(Tensor), ctypes.c_size_t,
                                   ctypes.POINTER(ctypes.POINTER(Tensor)),
                                   ctypes.POINTER(ctypes.c_size_t)]
    lib.oct_runner_free.argtypes = [ctypes.c_void_p]
    ctx = lib.oct_ctx_new()
    m, r = ctypes.c_void_p(), ctypes.c_void_p()
    outs = []
    try:
        assert lib.oct_model_load_file(ctx, model.encode(), 0, ctypes.byref(m)) == 0
        assert lib.oct_runner_new(ctx, m, b"jit", None, ctypes.byref(r)) == 0
        for x in batches:
            x = np.ascontiguousarray(x, dtype=np.float32)
            dims = (ctypes.c_int64 * x.ndim)(*x.shape)
            t = Tensor(None, 1, x.ndim, dims, x.ctypes.data, x.nbytes)
            res, n = ctypes.POINTER(Tensor)(), ctypes.c_size_t()
            st = lib.oct_runner_run(r, ctypes.byref(t), 1, ctypes.byref(res), ctypes.byref(n))
            if st != 0:
                outs.append(None)
                continue
            o = res[0]
            shape = [o.dims[d] for d in range(o.rank)]
            outs.append(np.ctypeslib.as_array(ctypes.cast(o.data, ctypes.POINTER(ctypes.c_float)),
                                              shape=shape).copy())
    finally:
        if r:
            lib.oct_runner_free(r)
        lib.oct_ctx_free(ctx)
    return outs


def runner_any_batch(tmp):
    """One JIT runner, batch 1 then 4 then 2: each as the interpreter."""
    fashion = os.path.join(ROOT, "models", "fashion-cnn", "fashion-cnn.onnx")
    xs = [rng.uniform(0, 1, (b, 1, 28, 28)).astype(np.float32) for b in (1, 4, 2)]
    got = jit_runner(fashion, xs)
    for x, y in zip(xs, got):
        want = cgutil.run_ref(fashion, [("input", x)])["logits"]
        ok, msg = (False, "run failed") if y is None else cgutil.close(y, want, 1e-5)
        check(ok, f"JIT runner (oct_runner_run) on fashion-cnn at batch {len(x)} after "
              f"batch {len(xs[0])}: matches the interpreter ({msg})")


def iris_rows():
    with open(os.path.join(MODELS, "iris-mlp", "Iris.csv")) as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in rows[0] if k not in ("Id", "Species")]
    return np.array([[float(r[k]) for k in keys] for r in rows], np.float32)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        fashion = os.path.join(ROOT, "models", "fashion-cnn", "fashion-cnn.onnx")
        imgs = rng.uniform(0, 1, (20, 1, 1, 28, 28)).astype(np.float32)
        model_case("fashion-cnn", fashion, "input", imgs[:16], imgs[16:].reshape(4, 1, 28, 28),
                   tmp)
        refused(tmp)
        runner_any_batch(tmp)
        each_sample(tmp)
        c_driver(tmp)
        mixed_inputs(tmp)
        have_shared = all(os.path.exists(os.path.join(MODELS, m, "model.onnx"))
                          for m in ("cifar10-cnn", "iris-mlp", "ppocr-cls"))
        if have_shared:
            cifar = rng.normal(0, 1, (12, 1, 3, 32, 32)).astype(np.float32)
            model_case("cifar10-cnn", os.path.join(MODELS, "cifar10-cnn", "model.onnx"),
                       "modelInput", cifar[:8], cifar[8:].reshape(4, 3, 32, 32), tmp)
            iris = iris_rows()
            model_case("iris-mlp", os.path.join(MODELS, "iris-mlp", "model.onnx"), "input",
                       iris[::2].reshape(-1, 1, 4), iris[1:8:2], tmp)
            ppocr(tmp)
    print("%d failure(s)" % len(failures))
    if failures:
        sys.exit(1)
    if not have_shared:
        print("SKIP: the ../shared models (cifar10-cnn, iris-mlp, ppocr-cls) not found")
        sys.exit(SKIP_EXIT)


def runner_child(model, src, dst):
    """--runner MODEL IN.npz OUT.npz: jit_runner in this process (the child
    a sanitized build starts); OUT holds the outputs and which runs failed."""
    got = np.load(src)
    outs = jit_runner(model, [got["arr_%d" % i] for i in range(len(got.files))])
    np.savez(dst, ok=np.array([o is not None for o in outs]),
             **{"arr_%d" % i: (o if o is not None else np.zeros(0, np.float32))
                for i, o in enumerate(outs)})


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--runner":
        runner_child(*sys.argv[2:])
    else:
        main()
