"""The layout plan (src/codegen/layout.c): chains of integer convolutions,
8-bit max pools and concatenations compiled with NHWC activations must give
the bytes of the reference interpreter, of ONNX Runtime, and of the same
model compiled all NCHW (`--layout=nchw`), and the compile report must show
where the plan put each node.

Two graphs of QLinearConv (ONNX), MaxPool and Concat on 8-bit tensors, for
uint8 and int8 activations at batch 1 and 2:
  A: a stem of 3 input channels (stays NCHW), a max pool, a 1x1 convolution
     that turns the layout to NHWC, a Concat of three convolutions (3x3 at
     stride 2 with uneven padding, 3x3 dilated, and one reading the NCHW
     pool, which turns the layout) written in place and of a max pool
     (copied), a 1x1 convolution reading its pixels as rows, a 1x1
     with end padding (gathered rows), and a 3x3 that writes the NCHW graph
     output;
  B: A plus a grouped convolution reading the Concat: the Concat, its
     inputs, the max pool and the squeeze then stay NCHW, and the 1x1 after
     the Concat turns the layout.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

rng = np.random.default_rng(11)
with open("/proc/cpuinfo") as f:
    HOST_VNNI = "avx512_vnni" in f.read().split()
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


class Builder:
    def __init__(self, act, zp):
        self.nodes, self.inits = [], []
        self.act, self.zp = act, zp
        self.scale = {}

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def qparams(self, name, scale):
        self.scale[name] = scale
        self.const(name + "_s", np.float32(scale))
        self.const(name + "_z", np.array(self.zp, dtype=self.act))

    def conv(self, name, x, c_in, c_out, k, group=1, **attrs):
        """QLinearConv x -> name; the output scale keeps it near +-40 steps
        (inputs about 35 steps from their zero point, weights too)."""
        kk = k * k * (c_in // group)
        w = rng.integers(-60, 61, (c_out, c_in // group, k, k)).astype(np.int8)
        ws = rng.uniform(0.005, 0.02, c_out).astype(np.float32)
        self.const(name + "_w", w)
        self.const(name + "_ws", ws)
        self.const(name + "_wz", np.zeros(c_out, np.int8))
        self.const(name + "_b", rng.integers(-800, 801, c_out).astype(np.int32))
        self.qparams(name, float(self.scale[x] * ws.mean() * 35 * 35 * np.sqrt(kk) / 40))
        self.nodes.append(helper.make_node(
            "QLinearConv", [x, x + "_s", x + "_z", name + "_w", name + "_ws", name + "_wz",
                            name + "_s", name + "_z", name + "_b"], [name], name=name,
            kernel_shape=[k, k], group=group, **attrs))
        return name

    def pool(self, name, x, **attrs):
        self.qparams(name, self.scale[x])
        self.nodes.append(helper.make_node("MaxPool", [x], [name], name=name, **attrs))
        return name

    def concat(self, name, xs):
        self.qparams(name, self.scale[xs[0]])  # one scale: the builder keeps it
        self.nodes.append(helper.make_node("Concat", xs, [name], name=name, axis=1))
        return name


def build(path, act, batch, grouped):
    zp = 100 if act == np.uint8 else -5
    b = Builder(act, zp)
    b.qparams("xq", 0.02)
    b.nodes.append(helper.make_node("QuantizeLinear", ["x", "xq_s", "xq_z"], ["xq"], name="q"))
    a1 = b.conv("stem", "xq", 3, 24, 3, pads=[1, 1, 1, 1])                    # 17 x 19
    a2 = b.pool("pool1", a1, kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)  # 9 x 10
    a3 = b.conv("squeeze", a2, 24, 20, 1)                                     # NCHW -> NHWC
    a4 = b.conv("e3s2", a3, 20, 32, 3, strides=[2, 2], pads=[1, 1, 0, 0])     # 4 x 5
    a5 = b.conv("e3d2", a3, 20, 16, 3, strides=[2, 2], dilations=[2, 2], pads=[2, 2, 1, 1])
    p2 = b.pool("pool2", a3, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0])
    side = b.conv("side", a2, 24, 8, 3, strides=[2, 2], pads=[1, 1, 0, 0])   # NCHW in
    cat = b.concat("cat", [a4, a5, p2, side])                                 # 76 channels
    a6 = b.conv("mix1x1", cat, 76, 24, 1)
    a7 = b.conv("pad1x1", a6, 24, 24, 1, pads=[0, 0, 1, 1])                   # 5 x 6
    b.conv("head", a7, 24, 40, 3, pads=[1, 1, 1, 1])
    et = TensorProto.UINT8 if act == np.uint8 else TensorProto.INT8
    outs = [helper.make_tensor_value_info("head", et, [batch, 40, 5, 6])]
    if grouped:
        b.conv("grouped", cat, 76, 8, 1, group=2)
        outs.append(helper.make_tensor_value_info("grouped", et, [batch, 8, 4, 5]))
    g = helper.make_graph(b.nodes, "layout", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [batch, 3, 17, 19])], outs, b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def report(model, tmp, name, extra=()):
    """Compiles model; returns the .so and {node: "kernel | path"} of the report."""
    rep = os.path.join(tmp, name + ".tsv")
    so = cgutil.compile_so(model, tmp, name, ["--report", rep, *extra])
    lines = {}
    with open(rep) as f:
        for line in f:
            if not line.startswith("#"):
                node, _, kernel, path = line.rstrip("\n").split("\t")
                lines[node] = kernel + " | " + path
    return so, lines


def case(tmp, act, batch, grouped):
    tag = "%s b%d %s" % (np.dtype(act).name, batch, "B (grouped reader)" if grouped else "A")
    path = os.path.join(tmp, "m.onnx")
    build(path, act, batch, grouped)
    x = rng.uniform(-1, 1, (batch, 3, 17, 19)).astype(np.float32)
    ref = cgutil.run_ref(path, [("x", x)])
    who, ora = cgutil.oracle(path, [("x", x)])
    # one library name per case: the process keeps each library it loaded
    auto, nchw = ["%s_%s_b%d_%d" % (k, np.dtype(act).name, batch, grouped)
                  for k in ("auto", "nchw")]
    # the plan needs a VNNI target: without one here, the plan is checked
    # in the report of a compile for one, and what runs is NCHW
    so, rep = report(path, tmp, auto, [] if HOST_VNNI else ["--mcpu=icelake-server"])
    so_n, rep_n = report(path, tmp, nchw, ["--layout=nchw"])
    _, got = cgutil.run_so(so if HOST_VNNI else so_n, auto if HOST_VNNI else nchw, [x])
    _, got_n = cgutil.run_so(so_n, nchw, [x])
    names = ["head"] + (["grouped"] if grouped else [])
    for i, name in enumerate(names):
        want = ref[name]
        check(len(np.unique(want)) > 20, "%s: %s spans %d byte values (not saturated)"
              % (tag, name, len(np.unique(want))))
        ok, how = cgutil.same(got[i], want, 0)
        check(ok, "%s: %s compiled with the layout plan = interpreter (%s)%s"
              % (tag, name, how, "" if HOST_VNNI else " (NCHW: not a VNNI CPU)"))
        ok, how = cgutil.same(got_n[i], want, 0)
        check(ok, "%s: %s compiled all NCHW = interpreter (%s)" % (tag, name, how))
        ok, how = cgutil.same(want, ora[i], 0)
        check(ok, "%s: interpreter = %s on %s (%s)" % (tag, who, name, how))
    if batch == 1 and not grouped:
        # the kernel variants without VNNI, where NHWC measured no faster
        # (docs/compile.md), keep every value NCHW
        for cpu in ("x86-64-v3", "x86-64"):
            lib = "%s_%s" % (auto, cpu.replace("-", "_"))
            so_c, rep_c = report(path, tmp, lib, ["--mcpu=" + cpu])
            _, got_c = cgutil.run_so(so_c, lib, [x])
            ok, how = cgutil.same(got_c[0], ref["head"], 0)
            check(ok and not any("NHWC" in p for p in rep_c.values()),
                  "%s: --mcpu=%s keeps NCHW (%s) = interpreter (%s)"
                  % (tag, cpu, rep_c["e3s2"], how))
    nhwc = {k for k, p in rep.items() if "NHWC" in p}
    check(not any("NHWC" in p for p in rep_n.values()),
          "%s: --layout=nchw reports no NHWC node" % tag)
    check("stem" not in nhwc and "pool1" not in nhwc,
          "%s: the 3-channel stem and its pool stay NCHW" % tag)
    check("transposed to NCHW" in rep["head"],
          "%s: the head writes the NCHW graph output: %s" % (tag, rep["head"]))
    check("NHWC im2col" in rep["pad1x1"],
          "%s: a 1x1 with end padding gathers its rows: %s" % (tag, rep["pad1x1"]))
    chain = {"squeeze", "e3s2", "e3d2", "pool2", "side"}
    if grouped:
        check(not (chain & nhwc) and "grouped" not in nhwc,
              "%s: the Concat's inputs, its pool and the squeeze stay NCHW beside a "
              "grouped reader: %s" % (tag, sorted(chain & nhwc)))
        check("transposed to NHWC" in rep["mix1x1"],
              "%s: then the 1x1 after the Concat turns the layout to NHWC: %s"
              % (tag, rep["mix1x1"]))
    else:
        check(chain <= nhwc, "%s: the Concat's convolutions and pool run NHWC: %s"
              % (tag, sorted(nhwc)))
        check("transposed to NHWC" in rep["squeeze"] and
              "transposed to NHWC" in rep["side"],
              "%s: the squeeze and the convolution of the pool into the Concat turn the "
              "layout to NHWC: %s / %s" % (tag, rep["squeeze"], rep["side"]))
        check("NHWC pixels as rows" in rep["mix1x1"],
              "%s: a 1x1 reads its pixels as rows: %s" % (tag, rep["mix1x1"]))


def main():
    if not HOST_VNNI:
        print("note: this CPU has no AVX-512 VNNI: the NHWC code is compiled for "
              "icelake-server and checked in its report, not run")
    with tempfile.TemporaryDirectory() as tmp:
        if os.environ.get("OCTET_SANITIZED"):
            # the compiler's code is what the sanitizers watch (the generated
            # code is not instrumented): each path once, in a third of the time
            print("note: sanitized build: uint8 batch 1 and int8 batch 2 only")
            case(tmp, np.uint8, 1, False)
            case(tmp, np.int8, 2, True)
        else:
            for act in (np.uint8, np.int8):
                for batch in (1, 2):
                    case(tmp, act, batch, False)
            case(tmp, np.uint8, 1, True)
            case(tmp, np.int8, 2, True)
        # a bad value is a usage error naming the option
        p = subprocess.run([cgutil.OCTET, "compile", os.path.join(tmp, "m.onnx"), "-o",
                            os.path.join(tmp, "bad"), "--layout=nhwc"],
                           capture_output=True, text=True)
        check(p.returncode == 1 and "layout" in p.stderr,
              "--layout=nhwc is refused: exit %d, %s" % (p.returncode, p.stderr.strip()[:100]))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
