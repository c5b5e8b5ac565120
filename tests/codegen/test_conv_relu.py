"""A float Conv whose output only the Relu right after it reads is
compiled as one kernel call whose clamp is the Relu (cg_plan_fusion,
cg_lower_conv_relu): the report marks the Relu "fused", and the library's
outputs match the reference interpreter (`octet run`) within 1e-5 of the
output's magnitude, NaN where it has NaN (the input has a NaN), and
exactly 0 where the interpreter's Relu gives 0.  The forms that must stay unfused: the Conv's
output also read by another node, or a graph output itself.  The fused
Conv's output feeding a Concat (squeezenet's expand layers) is checked
too, since the Relu's output then lives inside the Concat's."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cgutil import OCTET, close, compile_so, run_ref, run_so  # noqa: E402

rng = np.random.default_rng(29)
FAILS = []


def conv_model(tail, outputs, extra_inits=()):
    """x [1, 8, 13, 17] -> Conv 3x3 pad 1 (16 channels, bias mostly
    negative so about half the outputs are clipped) -> c, then `tail`."""
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.3
    b = (rng.standard_normal(16) - 0.5).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])] + tail
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT,
                                                                     [1, 8, 13, 17])],
                          [helper.make_tensor_value_info(n, TP.FLOAT, s) for n, s in outputs],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
                           *extra_inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def check(tag, m, fused):
    x = rng.standard_normal((1, 8, 13, 17)).astype(np.float32)
    # spreads to the 3x3 neighbourhood of every channel; the Relu keeps it,
    # fused or not
    x[0, 3, 6, 9] = np.nan
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, tag + ".onnx")
        onnx.save(m, path)
        report = os.path.join(d, "report.txt")
        so = compile_so(path, d, "m", ["-O2", "--report", report])
        with open(report) as fh:
            lines = [ln.split("\t") for ln in fh if not ln.startswith("#")]
        relu_fused = any(len(f) > 2 and f[1] == "Relu" and f[2] == "fused" for f in lines)
        if relu_fused != fused:
            FAILS.append("%s: Relu %s, expected %s" % (tag, "fused" if relu_fused else
                                                       "not fused", fused))
        _, got = run_so(so, "m", [x])
        ref = run_ref(path, [("x", x)])
        want = [ref[o.name] for o in m.graph.output]
        for k, (g, w) in enumerate(zip(got, want)):
            g, w = np.asarray(g), np.asarray(w)
            if not np.array_equal(np.isnan(g), np.isnan(w)):
                FAILS.append("%s: output %d: NaN positions differ" % (tag, k))
                continue
            fin = ~np.isnan(w)
            ok, how = close(g[fin], w[fin], 1e-5)
            if not ok:
                FAILS.append("%s: output %d: %s" % (tag, k, how))
            if not np.array_equal(g[fin] == 0, w[fin] == 0) and k == 0 and fused:
                FAILS.append("%s: output %d: zeros differ from the Relu's" % (tag, k))
    print("%s: Relu %s" % (tag, "fused" if relu_fused else "not fused"))


def main():
    shape = [1, 16, 13, 17]
    check("conv_relu", conv_model([helper.make_node("Relu", ["c"], ["y"])], [("y", shape)]),
          True)
    check("conv_relu_concat",
          conv_model([helper.make_node("Relu", ["c"], ["r"]),
                      helper.make_node("Concat", ["r", "x"], ["y"], axis=1)],
                     [("y", [1, 24, 13, 17])]), True)
    check("conv_read_twice",
          conv_model([helper.make_node("Relu", ["c"], ["r"]),
                      helper.make_node("Add", ["c", "r"], ["y"])], [("y", shape)]), False)
    check("conv_graph_output",
          conv_model([helper.make_node("Relu", ["c"], ["y"])], [("y", shape), ("c", shape)]),
          False)
    for f in FAILS:
        print("FAIL", f)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
