"""Resource limits: every limit option lowers its limit so that a known
model or data set exceeds it, and the command must then exit with code 2, a
diagnostic naming the limit, and no output file; the same command without
the option (the default limits) must succeed.  Bad values are usage errors
(exit 1).  The thresholds (file size, node count, largest initializer,
initializer bytes, rank) are computed here from the files with the onnx
package, not taken from octet.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OCTET = os.environ["OCTET"]
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models/mnist-8")
MNIST = os.path.join(SHARED, "models", "mnist-8", "model.onnx")
MNIST_DIR = os.path.join(SHARED, "models", "mnist-8")
failures = []

m = onnx.load(MNIST)
file_size = os.path.getsize(MNIST)
n_nodes = len(m.graph.node)
max_elems = max(int(np.prod(i.dims)) for i in m.graph.initializer)
init_bytes = sum(numpy_helper.to_array(i).nbytes for i in m.graph.initializer)
max_rank = max(len(i.dims) for i in m.graph.initializer)


def check(label, args, want_rc, want_text=None):
    with tempfile.TemporaryDirectory() as d:
        full = [OCTET] + [a.replace("@", d) for a in args]
        r = subprocess.run(full, capture_output=True, text=True, timeout=600)
        left = os.listdir(d)
        ok = r.returncode == want_rc and (want_text is None or
                                          want_text in r.stderr)
        if want_rc != 0 and left:
            ok = False
        if not ok:
            print(f"FAIL {label}: rc {r.returncode} (want {want_rc}), files "
                  f"{left}\n  stderr: {r.stderr.strip()[-500:]}")
            failures.append(label)
        else:
            print(f"ok   {label}: rc {r.returncode}")


opt = ["opt", MNIST, "-o", "@/o.onnx"]
check("defaults: opt succeeds", opt, 0)
check("--max-file-size below the file", opt + [f"--max-file-size={file_size - 1}"],
      2, "max_file_bytes")
check("--max-file-size=1K", opt + ["--max-file-size=1K"], 2, "max_file_bytes")
check("--max-file-size equal to the file", opt + [f"--max-file-size={file_size}"], 0)
check("--max-nodes below the node count", opt + [f"--max-nodes={n_nodes - 1}"],
      2, "max_nodes")
check("--max-nodes equal to the node count", opt + [f"--max-nodes={n_nodes}"], 0)
check("--max-tensor-elems below the largest initializer",
      opt + [f"--max-tensor-elems={max_elems - 1}"], 2, "max_tensor_elems")
check("--max-init-bytes below the initializers",
      opt + [f"--max-init-bytes={init_bytes - 1}"], 2, "max_total_init_bytes")
check("--max-rank below the initializers' rank",
      opt + ["--max-rank", str(max_rank - 1)], 2, "max_rank")
check("--max-memory=64K", opt + ["--max-memory=64K"], 2, "memory limit exceeded")
check("--max-memory=1G is enough", opt + ["--max-memory=1G"], 0)
for cmd in (["inspect", MNIST], ["run", MNIST, "--input",
            f"Input3={MNIST_DIR}/test_data_set_0/input_0.pb"],
            ["report", MNIST, MNIST, "--data", MNIST_DIR]):
    check(f"{cmd[0]} --max-nodes=2", cmd + ["--max-nodes=2"], 2, "max_nodes")

# calibration sample size: a 1x1x28x28 sample has 784 elements; the model's
# largest initializer is smaller than that, so this limit hits the data
q = ["quantize", MNIST, "--calib", MNIST_DIR, "-o", "@/q.onnx",
     "--progress=none"]
check("quantize defaults", q, 0)
# calibration sample size: a model with no initializer and 1000-element
# samples, so only the data can exceed --max-tensor-elems=999
with tempfile.TemporaryDirectory() as d:
    path, data = os.path.join(d, "relu.onnx"), os.path.join(d, "x.npy")
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1000])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    np.save(data, np.random.default_rng(0).standard_normal((4, 1000)).astype(np.float32))
    rq = ["quantize", path, "--calib", data, "-o", "@/q.onnx", "--progress=none"]
    check("quantize 1000-element samples, defaults", rq, 0)
    check("quantize 1000-element samples, --max-tensor-elems=999",
          rq + ["--max-tensor-elems=999"], 2,
          "one sample has 1000 elements, above the limit of 999")
check("quantize --max-file-size below the model",
      q + [f"--max-file-size={file_size - 1}"], 2, "max_file_bytes")

# subgraph nesting: If inside If inside the main graph (depth 2)
def nested(depth):
    leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])],
                             "leaf", [], [helper.make_tensor_value_info(
                                 "y", TensorProto.FLOAT, [1])])
    body = leaf
    for d in range(depth):
        # only then_branch nests: nesting both would double the size per level
        node = helper.make_node("If", ["c"], ["o%d" % d], then_branch=body,
                                else_branch=leaf)
        body = helper.make_graph([node], "b%d" % d, [], [
            helper.make_tensor_value_info("o%d" % d, TensorProto.FLOAT, [1])])
    g = helper.make_graph(body.node, "main",
                          [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                           helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          list(body.output))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "nested.onnx")
    onnx.save(nested(3), path)
    check("nesting depth 3 with --max-depth=2",
          ["inspect", path, "--max-depth=2"], 2, "max_subgraph_depth")
    check("nesting depth 3 with --max-depth=3", ["inspect", path, "--max-depth=3"], 0)
    onnx.save(nested(20), path)
    check("nesting depth 20 with the default limit (16)", ["inspect", path], 2,
          "max_subgraph_depth")

# bad values are usage errors
for bad in ("--max-nodes=0", "--max-nodes=-3", "--max-nodes=12x",
            "--max-file-size=1Q", "--max-memory=99999999999T", "--max-rank=",
            "--max-depth=4294967296"):
    check(f"usage error {bad}", opt + [bad], 1, bad.split("=")[0])

if failures:
    print(f"{len(failures)} failures: {failures}")
    sys.exit(1)
