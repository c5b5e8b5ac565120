"""Declared bounds on data-dependent output lengths (`octet compile --bound
NAME=N`, docs/compile.md): NonZero, NonMaxSuppression and Unique compiled
to a .so with a bound below what the input needs must return 2 from
NAME_run without writing past the output buffers (guard bytes after each
buffer keep their pattern), and the same library with an input within the
bound gives numpy's / ONNX Runtime's answer at its actual length
(NAME_actual_dims); `octet run X.so` reports the overflow with a non-zero
exit; a malformed --bound or one naming no such node is a usage error.

usage: test_dynlen_bound.py"""
import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

failures = 0
GUARD = 4096  # bytes of pattern after each output buffer


def check(ok, what):
    global failures
    print(("ok    " if ok else "FAIL  ") + what)
    failures += not ok


def model(node, ins, outs, opset=13, inits=()):
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info(n, t, s) for n, t, s in ins],
                          [helper.make_tensor_value_info(n, t, None) for n, t in outs],
                          [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def run_guarded(so, name, inputs):
    """(rc, outputs at their actual length or None, guards intact)."""
    lib = ctypes.CDLL(so)
    sig = cgutil.signature(so, name)
    bufs, outs = [], []
    for o in sig["outputs"]:
        dt = cgutil.np_dtype(o["dtype"])
        nbytes = int(np.prod(o["shape"])) * np.dtype(dt).itemsize
        raw = np.full(nbytes + GUARD, 0xA5, dtype=np.uint8)
        bufs.append(raw)
        outs.append((raw, nbytes, dt, o))
    scratch = np.zeros(sig["scratch_size"] + 64, dtype=np.uint8)
    addr = (scratch.ctypes.data + 63) // 64 * 64
    ins = [np.ascontiguousarray(a) for a in inputs]
    in_ptrs = (ctypes.c_void_p * len(ins))(*[a.ctypes.data for a in ins])
    out_ptrs = (ctypes.c_void_p * len(bufs))(*[b.ctypes.data for b in bufs])
    run = getattr(lib, name + "_run")
    run.restype = ctypes.c_int
    run.argtypes = [ctypes.c_void_p] * 3
    rc = run(in_ptrs, out_ptrs, ctypes.c_void_p(addr))
    guards = all((raw[nbytes:] == 0xA5).all() for raw, nbytes, _, _ in outs)
    if rc:
        return rc, None, guards
    actual = getattr(lib, name + "_actual_dims")
    actual.restype = ctypes.c_int
    actual.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    res = []
    for k, (raw, nbytes, dt, o) in enumerate(outs):
        dims = (ctypes.c_int64 * 16)()
        rank = actual(ctypes.c_void_p(addr), k, dims)
        shape = list(dims)[:rank]
        n = int(np.prod(shape)) * np.dtype(dt).itemsize
        res.append(raw[:n].view(dt).reshape(shape))
    return rc, res, guards


def compile_so(d, name, m, bounds):
    path = os.path.join(d, name + ".onnx")
    onnx.save(m, path)
    args = [cgutil.OCTET, "compile", path, "-o", os.path.join(d, name), "--emit=so"]
    for b in bounds:
        args += ["--bound", b]
    p = subprocess.run(args, capture_output=True, text=True)
    return p, os.path.join(d, name + ".so"), path


def case(d, name, m, bounds, within, beyond, oracle):
    p, so, path = compile_so(d, name, m, bounds)
    check(p.returncode == 0, "%s: compiles with --bound %s %s" % (name, bounds, p.stderr.strip()))
    if p.returncode:
        return
    sig = cgutil.signature(so, name)
    check(all("length_axis" in o for o in sig["outputs"][:1]),
          "%s: the signature marks the bounded output %s" % (name, sig["outputs"][0]))
    rc, outs, guards = run_guarded(so, name, within)
    want = oracle(path, within)
    check(rc == 0 and guards and all(np.array_equal(g, w) for g, w in zip(outs, want)),
          "%s: within the bound: rc %d, equals the oracle" % (name, rc))
    rc, outs, guards = run_guarded(so, name, beyond)
    check(rc == 2 and guards, "%s: past the bound: rc %d (want 2), guard bytes intact %s" %
          (name, rc, guards))
    # octet run on the library: a non-zero exit naming the overflow
    with tempfile.TemporaryDirectory() as t:
        args = [cgutil.OCTET, "run", so]
        sig_in = sig["inputs"]
        for spec, a in zip(sig_in, beyond):
            f = os.path.join(t, "in%s.npy" % len(args))
            np.save(f, a)
            args += ["--input", "%s=%s" % (spec["name"], f)]
        r = subprocess.run(args, capture_output=True, text=True)
        check(r.returncode not in (0, -6, -11) and "past its bound" in r.stderr,
              "%s: octet run X.so reports it (exit %d: %s)" % (name, r.returncode,
                                                              r.stderr.strip()[-120:]))


def ort(path, inputs):
    import onnxruntime as rt
    s = rt.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {i.name: a for i, a in zip(s.get_inputs(), inputs)})


def main():
    T = TensorProto
    with tempfile.TemporaryDirectory() as d:
        x3 = np.array([[1, 0, 2, 0], [0, 0, 3, 0], [0, 0, 0, 0]], np.float32)
        x5 = x3.copy()
        x5[2, 1] = x5[2, 3] = -1
        m = model(helper.make_node("NonZero", ["x"], ["y"], name="nz"),
                  [("x", T.FLOAT, [3, 4])], [("y", T.INT64)])
        case(d, "nonzero_bound3", m, ["nz=3"], [x3], [x5],
             lambda p, i: [np.array(np.nonzero(i[0]), dtype=np.int64)])

        rng = np.random.default_rng(7)
        boxes = rng.random((1, 10, 4)).astype(np.float32)
        boxes[..., 2:] += boxes[..., :2] + 0.05
        boxes *= np.arange(1, 11, dtype=np.float32)[None, :, None]  # spread: few overlaps
        sc = rng.random((1, 2, 10)).astype(np.float32)
        node = helper.make_node("NonMaxSuppression", ["b", "s", "k", "iou", "thr"], ["sel"],
                                name="nms")
        m = model(node, [("b", T.FLOAT, [1, 10, 4]), ("s", T.FLOAT, [1, 2, 10])],
                  [("sel", T.INT64)], opset=11,
                  inits=[("k", np.array([4], np.int64)), ("iou", np.array([0.5], np.float32)),
                         ("thr", np.array([0.5], np.float32))])
        low = sc * 0.55  # at most a few above 0.5
        low[0, :, 2:] = 0.1
        case(d, "nms_bound3", m, ["sel=3"], [boxes, low], [boxes, sc + 0.5], ort)

        node = helper.make_node("Unique", ["x"], ["y", "idx", "inv", "cnt"], name="uq")
        m = model(node, [("x", T.INT64, [12])],
                  [("y", T.INT64), ("idx", T.INT64), ("inv", T.INT64), ("cnt", T.INT64)],
                  opset=11)
        few = np.array([3, 1, 3, 3, 1, 2, 2, 1, 3, 1, 2, 2], np.int64)
        case(d, "unique_bound3", m, ["uq=3"], [few], [np.arange(12, dtype=np.int64)], ort)

        # usage errors: malformed, or naming no data-dependent node
        for bad in ["nz", "nz=-1", "nz=x", "other=3"]:
            p, _, _ = compile_so(d, "nonzero_bad", model(
                helper.make_node("NonZero", ["x"], ["y"], name="nz"),
                [("x", T.FLOAT, [3, 4])], [("y", T.INT64)]), [bad])
            check(p.returncode not in (0, 3, -6, -11) and "--bound" in p.stderr,
                  "--bound %s: usage error (exit %d: %s)" % (bad, p.returncode,
                                                             p.stderr.strip()[-100:]))
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
