"""Shared helpers of the codegen tests: compile a model with `octet compile`,
run the shared library through its signature JSON with ctypes, and run the
same model through the reference interpreter (`octet run`)."""
import ctypes
import json
import os
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

OCTET = os.environ["OCTET"]


def compile_so(model, outdir, name, extra=()):
    base = os.path.join(outdir, name)
    subprocess.run([OCTET, "compile", model, "-o", base, "--emit=so,header", *extra],
                   check=True)
    return base + ".so"


def np_dtype(name):
    """numpy dtype of a signature dtype; float8 types (no numpy spelling,
    e.g. "f8e4m3fn") as their bytes."""
    return np.uint8 if name.startswith("f8") else np.dtype(name)


def run_so(so_path, name, inputs):
    """inputs: list of numpy arrays in signature order; returns outputs.
    A library with symbolic dims (the signature's "dims") runs through
    NAME_run_dims with each dim taken from the inputs' shapes."""
    lib = ctypes.CDLL(so_path)
    sym = ctypes.c_char.in_dll(lib, name + "_signature")
    sig = json.loads(ctypes.string_at(ctypes.addressof(sym)).decode())
    assert len(inputs) == len(sig["inputs"]), (len(inputs), sig)
    names = sig.get("dims", [])
    dims = [None] * len(names)
    ins = []
    for arr, spec in zip(inputs, sig["inputs"]):
        a = np.ascontiguousarray(arr, dtype=spec["dtype"]).reshape(np.shape(arr))  # keeps 0-d
        for d, s in enumerate(spec["shape"]):
            if isinstance(s, str):
                dims[names.index(s)] = a.shape[d]
        assert [a.shape[d] if isinstance(s, str) else s
                for d, s in enumerate(spec["shape"])] == list(a.shape), (a.shape, spec)
        ins.append(a)
    outs = [np.empty([dims[names.index(s)] if isinstance(s, str) else s for s in o["shape"]],
                     dtype=np_dtype(o["dtype"])) for o in sig["outputs"]]
    if names:
        return sig, _run_dims(lib, name, dims, ins, outs)
    scratch = np.zeros(sig["scratch_size"] + 64, dtype=np.uint8)
    addr = scratch.ctypes.data
    addr = (addr + 63) // 64 * 64
    in_ptrs = (ctypes.c_void_p * max(1, len(ins)))(*[a.ctypes.data for a in ins])
    out_ptrs = (ctypes.c_void_p * max(1, len(outs)))(*[o.ctypes.data for o in outs])
    run = getattr(lib, name + "_run")
    run.restype = ctypes.c_int
    run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    rc = run(in_ptrs, out_ptrs, ctypes.c_void_p(addr))
    assert rc == 0, rc
    # a data-dependent length: the output is the prefix NAME_actual_dims gives
    for k, o in enumerate(sig["outputs"]):
        if "length_axis" in o:
            dims = (ctypes.c_int64 * max(1, len(o["shape"])))()
            actual = getattr(lib, name + "_actual_dims")
            actual.restype = ctypes.c_int
            actual.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
            assert actual(ctypes.c_void_p(addr), k, dims) == len(o["shape"])
            shape = list(dims)[:len(o["shape"])]
            outs[k] = outs[k].reshape(-1)[:int(np.prod(shape))].reshape(shape)
    return sig, outs


def _run_dims(lib, name, dims, ins, outs):
    c_dims = (ctypes.c_int64 * len(dims))(*dims)
    size_for = getattr(lib, name + "_scratch_size_for")
    size_for.restype = ctypes.c_ulonglong
    size_for.argtypes = [ctypes.c_void_p]
    scratch = np.zeros(size_for(c_dims) + 64, dtype=np.uint8)
    addr = (scratch.ctypes.data + 63) // 64 * 64
    in_ptrs = (ctypes.c_void_p * max(1, len(ins)))(*[a.ctypes.data for a in ins])
    out_ptrs = (ctypes.c_void_p * max(1, len(outs)))(*[o.ctypes.data for o in outs])
    fn = getattr(lib, name + "_run_dims")
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 4
    rc = fn(c_dims, in_ptrs, out_ptrs, ctypes.c_void_p(addr))
    assert rc == 0, rc
    return outs


def _read_outputs(folder):
    """The files `octet run --output-dir` wrote, by file stem."""
    out = {}
    for f in os.listdir(folder):
        path = os.path.join(folder, f)
        if f.endswith(".pb"):  # --format=pb (float8 has no .npy spelling)
            t = onnx.TensorProto()
            with open(path, "rb") as fh:
                t.ParseFromString(fh.read())
            out[f[:-3]] = numpy_helper.to_array(t)
        else:
            out[f[:-4]] = np.load(path)
    return out


def run_octet(model, named_inputs, extra=()):
    """`octet run` (outputs as .pb): (the process, its outputs by file stem),
    or (the failed process, None)."""
    with tempfile.TemporaryDirectory() as d:
        args = [OCTET, "run", model, "--output-dir", os.path.join(d, "out"), "--format=pb",
                *extra]
        for i, (name, arr) in enumerate(named_inputs):
            p = os.path.join(d, "in%d.npy" % i)
            np.save(p, arr)
            args += ["--input", "%s=%s" % (name, p)]
        p = subprocess.run(args, capture_output=True, text=True)
        return p, None if p.returncode else _read_outputs(os.path.join(d, "out"))


def run_ref(model, named_inputs, extra=()):
    """Runs `octet run` and returns the outputs (in graph order) as arrays."""
    with tempfile.TemporaryDirectory() as d:
        args = [OCTET, "run", model, "--output-dir", os.path.join(d, "out"), *extra]
        for i, (name, arr) in enumerate(named_inputs):
            p = os.path.join(d, "in%d.npy" % i)
            np.save(p, arr)
            args += ["--input", "%s=%s" % (name, p)]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        return _read_outputs(os.path.join(d, "out"))


def oracle(path, named_inputs):
    """(who, outputs): ONNX Runtime's, or onnx.reference's where ORT refuses
    the model."""
    from onnx.reference import ReferenceEvaluator
    feeds = dict(named_inputs)
    try:
        import onnxruntime as ort
        import ort_int8  # tests/testlib: exact on u8 x s8 on any CPU
        s = ort_int8.session(ort, path)
        return "onnxruntime", s.run(None, feeds)
    except ImportError:
        pass
    except Exception as e:  # noqa: BLE001  (ORT lacks the form)
        print("note: onnxruntime does not run %s: %s" % (os.path.basename(path),
                                                         str(e).splitlines()[0][:120]))
    return "onnx.reference", ReferenceEvaluator(path).run(None, feeds)


def same(got, want, rtol):
    """(ok, how): integers and booleans exactly, floats as close() does."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False, "shape %s, expected %s" % (got.shape, want.shape)
    if want.dtype.kind in "biu":
        bad = int(np.sum(got.astype(np.int64) != want.astype(np.int64)))
        return bad == 0, "%d of %d elements differ" % (bad, want.size)
    return close(got, want, rtol)


def safe_name(name):
    s = "".join(c if (c.isalnum() or c in "._-") else "_" for c in (name or "output"))
    return "_" + s[1:] if s.startswith(".") else s


def close(got, want, rtol):
    """Float comparison: |got - want| <= rtol * max(1, max|want|) elementwise
    (relative to the output's magnitude, as reassociated sums err)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False, "shape %s != %s" % (got.shape, want.shape)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    return err <= rtol * scale, "max abs err %.3g (scale %.3g)" % (err, scale)


def signature(so_path, name):
    lib = ctypes.CDLL(so_path)
    sym = ctypes.c_char.in_dll(lib, name + "_signature")
    return json.loads(ctypes.string_at(ctypes.addressof(sym)).decode())
