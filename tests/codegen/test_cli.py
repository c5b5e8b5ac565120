"""`octet compile` command-line behaviour: every --emit kind is written
(functions carry target-cpu/target-features, the header declares the run
function and sizes), -O0 works, a cross target works, an op without a
lowering is exit code 3 naming the node, a symbolic dim other than a
leading batch is exit code 3 naming the tensor, a bad triple is a usage error, and the memory plan
reuses scratch (peak below the sum of the intermediates on squeezenet1.1);
`octet run NAME.so` runs the compiled library through its signature;
--weights=file moves the weights to NAME.weights, which `octet run` loads
(a missing one is exit 2)."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models/mnist-8", "data/mnist", "models/squeezenet1.1")
failures = 0


def check(cond, what):
    global failures
    print("%s  %s" % ("ok  " if cond else "FAIL", what))
    failures += not cond


def octet(*args):
    return subprocess.run([cgutil.OCTET, *args], capture_output=True, text=True)


def one_node(path, op, shape):
    g = helper.make_graph([helper.make_node(op, ["x"], ["y"], name="the_node")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def main():
    mnist = os.path.join(SHARED, "models", "mnist-8", "model.onnx")
    with tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "m")
        r = octet("compile", mnist, "-o", base, "--emit=obj,so,asm,llvm,header")
        check(r.returncode == 0, "compile with every --emit kind exits 0 (%s)" % r.stderr.strip())
        for ext in ["o", "so", "s", "ll", "h"]:
            check(os.path.getsize(base + "." + ext) > 0, "m.%s written" % ext)
        ll = open(base + ".ll").read()
        check('"target-cpu"' in ll and '"target-features"' in ll,
              "functions carry target-cpu and target-features")
        check(re.search(r"define .*i32 @m_run\(ptr", ll) is not None, "m_run is defined")
        h = open(base + ".h").read()
        check("int m_run(const void *const *inputs, void *const *outputs, void *scratch);" in h
              and "#define m_SCRATCH_SIZE" in h and "#define m_INPUT_0_NAME \"Input3\"" in h,
              "header declares m_run, the scratch size and the input name")
        check(not [f for f in os.listdir(d) if "XXXX" in f or f.count(".") > 1],
              "no temporary files left behind")
        x = os.path.join(SHARED, "models", "mnist-8", "test_data_set_0", "input_0.pb")
        r = octet("run", base + ".so", "--input", "Input3=" + x, "--output-dir",
                  os.path.join(d, "so_out"))
        r2 = octet("run", mnist, "--input", "Input3=" + x, "--output-dir", os.path.join(d, "ref"))
        got = np.load(os.path.join(d, "so_out", "Plus214_Output_0.npy")) if r.returncode == 0 else None
        want = np.load(os.path.join(d, "ref", "Plus214_Output_0.npy"))
        check(got is not None and cgutil.close(got, want, 1e-4)[0] and
              r.stdout.split(" min=")[0] == r2.stdout.split(" min=")[0],
              "octet run m.so prints the same summary and writes the same output (%s)"
              % r.stderr.strip())
        np.save(os.path.join(d, "bad.npy"), np.zeros((1, 1, 28, 27), np.float32))
        r = octet("run", base + ".so", "--input", "Input3=" + os.path.join(d, "bad.npy"))
        check(r.returncode == 2 and "Input3" in r.stderr,
              "octet run m.so refuses an input of the wrong shape (%s)" % r.stderr.strip())
        # --weights=file: the weights leave the library for m_w.weights
        wbase = os.path.join(d, "m_w")
        r = octet("compile", mnist, "-o", wbase, "--emit=so,header", "--weights=file")
        wsize = os.path.getsize(wbase + ".weights") if r.returncode == 0 else 0
        check(r.returncode == 0 and wsize > 20000 and
              os.path.getsize(wbase + ".so") + 20000 < os.path.getsize(base + ".so") and
              "extern const void *m_w_weights;" in open(wbase + ".h").read(),
              "--weights=file writes m_w.weights (%d bytes) and a smaller library" % wsize)
        r = octet("run", wbase + ".so", "--input", "Input3=" + x, "--output-dir",
                  os.path.join(d, "w_out"))
        got_w = (np.load(os.path.join(d, "w_out", "Plus214_Output_0.npy"))
                 if r.returncode == 0 else None)
        check(got_w is not None and got is not None and np.array_equal(got_w, got),
              "octet run loads m_w.weights and gives the embedded library's output (%s)"
              % r.stderr.strip())
        os.rename(wbase + ".weights", wbase + ".moved")
        r = octet("run", wbase + ".so", "--input", "Input3=" + x)
        check(r.returncode == 2 and "m_w.weights" in r.stderr,
              "a missing weights file is exit 2 naming it (%s)" % r.stderr.strip())
        r = octet("compile", mnist, "-o", os.path.join(d, "m0"), "-O0", "--emit=so")
        check(r.returncode == 0, "-O0 compiles")
        r = octet("compile", mnist, "-o", os.path.join(d, "arm"), "--mtriple",
                  "aarch64-linux-gnu", "--emit=obj,asm")
        asm = open(os.path.join(d, "arm.s")).read() if r.returncode == 0 else ""
        check(("fmla" in asm or "fmadd" in asm) and "vfmadd" not in asm,
              "--mtriple aarch64-linux-gnu emits AArch64 code")
        # a QDQ model for a target without the (x86-64) kernel library:
        # computed in float between exact Q/DQ instead of failing
        qdq = os.path.join(d, "mnist.qdq.onnx")
        calib = os.path.join(SHARED, "data", "mnist", "calib_1000_f32.npy")
        r = octet("quantize", mnist, "--calib", calib, "--calib-samples", "20", "-o", qdq,
                  "--progress=none")
        r = octet("compile", qdq, "-o", os.path.join(d, "armq"), "--mtriple",
                  "aarch64-linux-gnu", "--emit=obj,asm") if r.returncode == 0 else r
        asm = open(os.path.join(d, "armq.s")).read() if r.returncode == 0 else ""
        check(r.returncode == 0 and ("fmla" in asm or "fmadd" in asm),
              "a QDQ model compiles for aarch64 too (%s)" % r.stderr.strip())
        r = octet("compile", mnist, "-o", os.path.join(d, "bad"), "--mtriple", "nonsense-xyz")
        check(r.returncode == 1, "unknown triple is a usage error (exit %d)" % r.returncode)
        # a form the backend does not lower (the interpreter does): Cast from STRING
        cast = os.path.join(d, "cast.onnx")
        g = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], name="the_node",
                                                to=TensorProto.FLOAT)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.STRING, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.save(m, cast)
        r = octet("compile", cast, "-o", os.path.join(d, "cast"))
        check(r.returncode == 3 and "the_node" in r.stderr and "Cast" in r.stderr,
              "node without lowering: exit 3 naming the node (%s)" % r.stderr.strip())
        sym = os.path.join(d, "sym.onnx")
        # a symbolic leading (batch) dim compiles for run time
        # (test_symdims.py), one on another axis too when the lowerings
        # take run-time sizes (test_symdims_runtime.py); a node whose
        # lowering does not is refused naming it
        one_node(sym, "Relu", [5, "n"])
        r = octet("compile", sym, "-o", os.path.join(d, "sym"))
        check(r.returncode == 0, "symbolic dim on axis 1 of a Relu: compiled for run time "
              "(%s)" % r.stderr.strip())
        one_node(sym, "Hardmax", [5, "n"])
        r = octet("compile", sym, "-o", os.path.join(d, "sym"))
        check(r.returncode == 3 and "the_node" in r.stderr and "'n'" in r.stderr and
              "--input-shape" in r.stderr,
              "symbolic dim into a lowering on static sizes: exit 3 naming the node and dim "
              "(%s)" % r.stderr.strip())
        r = octet("compile", sym, "-o", os.path.join(d, "sym"), "--input-shape", "x=5x4")
        check(r.returncode == 0, "--input-shape binds the symbolic dim")
        sq = os.path.join(SHARED, "models", "squeezenet1.1", "model.onnx")
        so = cgutil.compile_so(sq, d, "sq")
        sig = cgutil.signature(so, "sq")
        m = onnx.shape_inference.infer_shapes(onnx.load(sq))
        io = {i.name for i in m.graph.input} | {o.name for o in m.graph.output}
        total = 0
        for vi in m.graph.value_info:
            if vi.name not in io:
                n = 1
                for dim in vi.type.tensor_type.shape.dim:
                    n *= dim.dim_value
                total += 4 * n
        planned = sig["scratch_size"] - sig["workspace_size"]
        check(0 < planned < total / 4,
              "squeezenet intermediates in %d bytes of scratch < a quarter of their %d bytes "
              "(plus %d bytes of kernel workspace)" % (planned, total, sig["workspace_size"]))
    print("%d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
