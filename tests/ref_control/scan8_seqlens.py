"""Scan of opset 8 (batch axis 0, sequence axis 1, optional sequence_lens)
through the interpreter (`octet run model.onnx`) and compiled (`octet
compile --emit=so`, then `octet run model.so`), against ONNX Runtime:
  - sequence_lens [4, 2, 1] over a sequence of 4: each batch entry stops
    after its own length (its final state is the state then), a reversed
    scan input starts at its entry's last valid step (not at step 3), and
    the scan output rows past an entry's length are zeros;
  - the same model with every length full, and one without sequence_lens
    (its slot left empty);
  - an int32 state and a float one side by side, two scan outputs.
A wrong treatment of sequence_lens (running every step, reversing from the
end of the whole sequence, leaving the padding rows unwritten) changes the
final states or the rows these compare.  Then a sequence_lens entry
outside [1, 4] (0, 5 and -1, which ONNX Runtime refuses): the interpreter
exits 2 naming the input, and so does the compiled model (its run returns
2: a clamp would give outputs instead), ahead of time and on the JIT; the
compiled model still runs a valid length after a refused one, and a
Scan nested in a Loop body is refused as well."""
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as TP, helper as h

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "codegen"))
from cgutil import OCTET, run_octet, same  # noqa: E402

F = TP.FLOAT
failures = []


def vi(name, dt, shape):
    return h.make_tensor_value_info(name, dt, shape)


def scan8_model(with_lens):
    """state s [2] (float) and n [] (int32); scan inputs a [2] forward and
    b [2] reversed; outputs the final states, y = s_out * a and c = n_out."""
    body = h.make_graph(
        [h.make_node("Add", ["s_in", "a_t"], ["s1"]),
         h.make_node("Mul", ["s1", "b_t"], ["s_out"]),
         h.make_node("Mul", ["s_out", "a_t"], ["y"]),
         h.make_node("Add", ["n_in", "one"], ["n_out"]),
         h.make_node("Identity", ["n_out"], ["c"])],
        "body",
        [vi("s_in", F, [2]), vi("n_in", TP.INT32, []), vi("a_t", F, [2]), vi("b_t", F, [2])],
        [vi("s_out", F, [2]), vi("n_out", TP.INT32, []), vi("y", F, [2]), vi("c", TP.INT32, [])],
        initializer=[h.make_tensor("one", TP.INT32, [], [1])])
    node = h.make_node("Scan", ["lens" if with_lens else "", "s0", "n0", "a", "b"],
                       ["s_final", "n_final", "ys", "cs"], body=body, num_scan_inputs=2,
                       directions=[0, 1])
    ins = [vi("s0", F, [3, 2]), vi("n0", TP.INT32, [3]), vi("a", F, [3, 4, 2]),
           vi("b", F, [3, 4, 2])]
    if with_lens:
        ins.insert(0, vi("lens", TP.INT64, [3]))
    g = h.make_graph([node], "scan8", ins,
                     [vi("s_final", F, [3, 2]), vi("n_final", TP.INT32, [3]),
                      vi("ys", F, [3, 4, 2]), vi("cs", TP.INT32, [3, 4])])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 8)])
    m.ir_version = 4
    onnx.checker.check_model(m)
    return m


def compare(label, got, m, want):
    for o, w in zip(m.graph.output, want):
        ok, how = same(got[o.name], w, 1e-6)
        print("ok  " if ok else "FAIL", label, o.name, list(np.shape(w)), "" if ok else how)
        if not ok:
            failures.append("%s %s: %s" % (label, o.name, how))


def check(name, m, feed_sets):
    """Interpreter and compiled code against ONNX Runtime on each feed set."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, name + ".onnx")
        onnx.save(m, path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        p = subprocess.run([OCTET, "compile", path, "-o", os.path.join(d, name), "--emit=so"],
                           capture_output=True, text=True)
        if p.returncode:
            failures.append("%s: octet compile exit %d: %s" % (name, p.returncode,
                                                               p.stderr.strip()))
            print("FAIL", name, p.stderr.strip())
        for k, feeds in enumerate(feed_sets):
            want = sess.run(None, feeds)
            for how, model in (("interpreted", path), ("compiled", os.path.join(d, name + ".so"))):
                if how == "compiled" and p.returncode:
                    continue
                r, got = run_octet(model, list(feeds.items()))
                label = "%s[%d] %s" % (name, k, how)
                if r.returncode:
                    failures.append("%s: octet run exit %d: %s" % (label, r.returncode,
                                                                   r.stderr.strip()))
                    print("FAIL", label, r.stderr.strip())
                    continue
                compare(label, got, m, want)


rng = np.random.default_rng(8)


def feeds(lens):
    f = {"s0": rng.standard_normal((3, 2)).astype(np.float32),
         "n0": np.array([10, 20, 30], np.int32),
         "a": rng.standard_normal((3, 4, 2)).astype(np.float32),
         "b": rng.standard_normal((3, 4, 2)).astype(np.float32)}
    if lens is not None:
        f["lens"] = np.array(lens, np.int64)
    return f


check("scan8_sequence_lens", scan8_model(True), [feeds([4, 2, 1]), feeds([1, 3, 4]),
                                                   feeds([4, 4, 4])])
check("scan8_no_sequence_lens", scan8_model(False), [feeds(None)])

# A sequence_lens entry outside [1, 4]: ONNX Runtime refuses it, so do the
# interpreter (exit 2, naming the input) and the compiled model (its run
# returns 2, which `octet run` reports as an input error: exit 2).
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "bad.onnx")
    onnx.save(scan8_model(True), path)
    so = os.path.join(d, "bad")
    p = subprocess.run([OCTET, "compile", path, "-o", so, "--emit=so"], capture_output=True,
                       text=True)
    if p.returncode:
        failures.append("bad: octet compile exit %d: %s" % (p.returncode, p.stderr.strip()))
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for bad in ([4, 0, 1], [5, 2, 1], [4, 2, -1]):
        f = feeds(bad)
        try:
            sess.run(None, f)
            failures.append("onnxruntime accepted sequence_lens %s" % bad)
        except Exception:  # noqa: BLE001 (ORT raises its own exception types)
            pass
        runs = [("interpreted", path, (), ("sequence_lens", "input 0")),
                ("jit", path, ("--jit",), ("sequence_lens",))]
        if not p.returncode:
            runs.append(("compiled", so + ".so", (), ("returned 2", "sequence_lens")))
        for how, model, extra, words in runs:
            r, _ = run_octet(model, list(f.items()), extra)
            ok = r.returncode == 2 and all(w in r.stderr for w in words)
            print("ok  " if ok else "FAIL", how, "refused sequence_lens", bad, "exit",
                  r.returncode, r.stderr.strip())
            if not ok:
                failures.append("%s sequence_lens %s: exit %d: %s" % (how, bad, r.returncode,
                                                                      r.stderr.strip()))
    # one scratch for every call, filled with 0xff first: a valid run must
    # not see a fault left in it (the run zeroes the slot on entry), a bad
    # one returns 2, and a valid one right after it returns 0 again
    if not p.returncode:
        lib = ctypes.CDLL(so + ".so")
        sym = ctypes.c_char.in_dll(lib, "bad_signature")
        sig = json.loads(ctypes.string_at(ctypes.addressof(sym)).decode())
        scratch = np.full(sig["scratch_size"] + 64, 0xff, np.uint8)
        at = ctypes.c_void_p((scratch.ctypes.data + 63) // 64 * 64)
        run = lib.bad_run
        run.restype = ctypes.c_int
        run.argtypes = [ctypes.c_void_p] * 3
        for k, lens in enumerate(([2, 4, 3], [4, 0, 1], [1, 3, 4])):
            f = feeds(lens)
            ins = [np.ascontiguousarray(f[i.name]) for i in scan8_model(True).graph.input]
            outs = [np.zeros(o["shape"], np.dtype(o["dtype"])) for o in sig["outputs"]]
            rc = run((ctypes.c_void_p * len(ins))(*[a.ctypes.data for a in ins]),
                     (ctypes.c_void_p * len(outs))(*[o.ctypes.data for o in outs]), at)
            want_rc = 2 if 0 in lens else 0
            print("ok  " if rc == want_rc else "FAIL", "bad_run call", k, lens, "returned", rc)
            if rc != want_rc:
                failures.append("bad_run call %d %s returned %d, not %d" % (k, lens, rc,
                                                                             want_rc))
            elif rc == 0:
                got = {o.name: v for o, v in zip(scan8_model(True).graph.output, outs)}
                compare("bad_run call %d" % k, got, scan8_model(True), sess.run(None, f))



def nested_model():
    """The Scan inside a Loop body (2 trips, accumulating its final state):
    the Loop's node function runs it, and the run still returns 2."""
    sbody = h.make_graph([h.make_node("Add", ["s_in", "a_t"], ["s_out"]),
                          h.make_node("Identity", ["s_out"], ["y"])], "sbody",
                         [vi("s_in", F, [2]), vi("a_t", F, [2])],
                         [vi("s_out", F, [2]), vi("y", F, [2])])
    scan = h.make_node("Scan", ["lens", "acc_in", "a"], ["acc_out", "ys"], body=sbody,
                       num_scan_inputs=1)
    lbody = h.make_graph([scan, h.make_node("Identity", ["cond_in"], ["cond_out"])], "lbody",
                         [vi("i", TP.INT64, []), vi("cond_in", TP.BOOL, []),
                          vi("acc_in", F, [3, 2])],
                         [vi("cond_out", TP.BOOL, []), vi("acc_out", F, [3, 2])])
    g = h.make_graph([h.make_node("Loop", ["M", "", "acc0"], ["acc"], body=lbody)], "nested",
                     [vi("lens", TP.INT64, [3]), vi("acc0", F, [3, 2]), vi("a", F, [3, 4, 2])],
                     [vi("acc", F, [3, 2])], [h.make_tensor("M", TP.INT64, [], [2])])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 8)])
    m.ir_version = 4
    onnx.checker.check_model(m)
    return m


with tempfile.TemporaryDirectory() as d:
    m = nested_model()
    path = os.path.join(d, "nested.onnx")
    onnx.save(m, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    p = subprocess.run([OCTET, "compile", path, "-o", os.path.join(d, "nested"), "--emit=so"],
                       capture_output=True, text=True)
    if p.returncode:
        failures.append("nested: octet compile exit %d: %s" % (p.returncode, p.stderr.strip()))
    for lens in ([4, 2, 1], [4, 0, 1]):
        f = {"lens": np.array(lens, np.int64),
             "acc0": rng.standard_normal((3, 2)).astype(np.float32),
             "a": rng.standard_normal((3, 4, 2)).astype(np.float32)}
        r, got = (None, None) if p.returncode else run_octet(os.path.join(d, "nested.so"),
                                                             list(f.items()))
        if r is None:
            continue
        if 0 in lens:
            ok = r.returncode == 2 and "returned 2" in r.stderr
            print("ok  " if ok else "FAIL", "nested compiled refused", lens, "exit", r.returncode)
            if not ok:
                failures.append("nested %s: exit %d: %s" % (lens, r.returncode,
                                                            r.stderr.strip()))
        elif r.returncode:
            failures.append("nested %s: exit %d: %s" % (lens, r.returncode, r.stderr.strip()))
        else:
            compare("nested %s compiled" % lens, got, m, sess.run(None, f))

if failures:
    print("\n%d failure(s):\n  %s" % (len(failures), "\n  ".join(failures)))
    sys.exit(1)
print("opset 8 Scan with sequence_lens matches onnxruntime, interpreted and compiled")
