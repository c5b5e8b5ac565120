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
    """inputs: list of numpy arrays in signature order; returns outputs."""
    lib = ctypes.CDLL(so_path)
    sym = ctypes.c_char.in_dll(lib, name + "_signature")
    sig = json.loads(ctypes.string_at(ctypes.addressof(sym)).decode())
    assert len(inputs) == len(sig["inputs"]), (len(inputs), sig)
    ins = []
    for arr, spec in zip(inputs, sig["inputs"]):
        a = np.ascontiguousarray(arr, dtype=spec["dtype"]).reshape(np.shape(arr))  # keeps 0-d
        assert list(a.shape) == spec["shape"], (a.shape, spec)
        ins.append(a)
    outs = [np.empty(o["shape"], dtype=np_dtype(o["dtype"])) for o in sig["outputs"]]
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
    return sig, outs


def run_ref(model, named_inputs, extra=()):
    """Runs `octet run` and returns the outputs (in graph order) as arrays."""
    with tempfile.TemporaryDirectory() as d:
        args = [OCTET, "run", model, "--output-dir", os.path.join(d, "out"), *extra]
        for i, (name, arr) in enumerate(named_inputs):
            p = os.path.join(d, "in%d.npy" % i)
            np.save(p, arr)
            args += ["--input", "%s=%s" % (name, p)]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        out = {}
        for f in os.listdir(os.path.join(d, "out")):
            path = os.path.join(d, "out", f)
            if f.endswith(".pb"):  # --format=pb (float8 has no .npy spelling)
                t = onnx.TensorProto()
                with open(path, "rb") as fh:
                    t.ParseFromString(fh.read())
                out[f[:-3]] = numpy_helper.to_array(t)
            else:
                out[f[:-4]] = np.load(path)
        return out


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
