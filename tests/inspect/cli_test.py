"""`octet inspect` command line: exit codes (0 ok, 1 usage, 2 bad input),
verifier diagnostics on standard error with the model still printed,
-o FILE written atomically with the same bytes as standard output, -o
refusing to overwrite the model, '-' reading standard input, and the
verifier's topological sort of an unsorted model (ONNX allows one)."""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import os
import subprocess
import sys
import tempfile

import onnx
from onnx import TensorProto, helper

from inspect_common import OCTET, Report, inspect, model_path, parse_node_line


def tiny_model(nodes, path, extra_inputs=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    g = helper.make_graph(nodes, "g", [x, *extra_inputs], [y])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def node_names(stdout):
    return [parse_node_line(l)["name"] for l in stdout.decode().splitlines()
            if l.startswith("node ")]


def main():
    rep = Report()
    mnist = model_path("mnist-8")
    with tempfile.TemporaryDirectory() as tmp:
        # usage errors exit 1
        for args in (["--bogus"], ["--format=xml"], ["--format"], []):
            r = subprocess.run([OCTET, "inspect", *([mnist] if args != [] else []), *args],
                               capture_output=True)
            rep.check(r.returncode == 1, f"usage {args}: exit {r.returncode}")
        r = subprocess.run([OCTET, "inspect", mnist, mnist], capture_output=True)
        rep.check(r.returncode == 1, f"two models: exit {r.returncode}")

        # -o FILE holds exactly what standard output gets, for each format
        for fmt in ("text", "json", "dot"):
            out = os.path.join(tmp, f"out.{fmt}")
            a = inspect(mnist, f"--format={fmt}")
            b = inspect(mnist, f"--format={fmt}", "-o", out)
            rep.check(a.returncode == 0 and b.returncode == 0 and b.stdout == b"",
                      f"-o {fmt}: exits {a.returncode} {b.returncode}")
            with open(out, "rb") as f:
                rep.check(f.read() == a.stdout and a.stdout, f"-o {fmt}: file differs from stdout")
        rep.check(sorted(os.listdir(tmp)) == ["out.dot", "out.json", "out.text"],
                  f"temporary files left behind: {os.listdir(tmp)}")

        # -o may not overwrite the model it reads
        copy = os.path.join(tmp, "copy.onnx")
        with open(mnist, "rb") as f:
            original = f.read()
        with open(copy, "wb") as f:
            f.write(original)
        r = inspect(copy, "-o", copy)
        with open(copy, "rb") as f:
            rep.check(r.returncode != 0 and f.read() == original,
                      f"-o MODEL: exit {r.returncode}, model changed or accepted")

        # standard input
        r = subprocess.run([OCTET, "inspect", "-"], input=original, capture_output=True)
        rep.check(r.returncode == 0 and r.stdout == inspect(mnist).stdout,
                  f"stdin: exit {r.returncode}")

        # verifier error: exit 2, diagnostic names node and input, text still printed
        bad = tiny_model([helper.make_node("Relu", ["x"], ["t"], name="r"),
                          helper.make_node("Add", ["t", "ghost"], ["y"], name="a")],
                         os.path.join(tmp, "dangling.onnx"))
        r = inspect(bad)
        err = r.stderr.decode()
        rep.check(r.returncode == 2, f"dangling: exit {r.returncode}")
        rep.check("node 'a' (Add) input 1 'ghost': error:" in err, f"dangling: stderr {err!r}")
        rep.check(node_names(r.stdout) == ["r", "a"], "dangling: model not printed")

        # unknown attribute: a warning, exit 0
        warn = tiny_model([helper.make_node("Relu", ["x"], ["y"], name="r", flavour=3)],
                          os.path.join(tmp, "warn.onnx"))
        r = inspect(warn)
        err = r.stderr.decode()
        rep.check(r.returncode == 0 and "warning: unknown attribute 'flavour'" in err,
                  f"unknown attribute: exit {r.returncode}, stderr {err!r}")

        # wrong attribute type: exit 2
        wrong = tiny_model([helper.make_node("Softmax", ["x"], ["y"], name="s", axis=1.5)],
                           os.path.join(tmp, "wrong.onnx"))
        r = inspect(wrong)
        rep.check(r.returncode == 2 and "attribute 'axis' has type FLOAT, expected INT"
                  in r.stderr.decode(), f"wrong attribute type: exit {r.returncode}")

        # unsorted graph: printed in topological order, file order among ready nodes
        unsorted = tiny_model([helper.make_node("Add", ["p", "q"], ["y"], name="join"),
                               helper.make_node("Sigmoid", ["x"], ["q"], name="q"),
                               helper.make_node("Relu", ["x"], ["p"], name="p")],
                              os.path.join(tmp, "unsorted.onnx"))
        r = inspect(unsorted)
        rep.check(r.returncode == 0 and node_names(r.stdout) == ["q", "p", "join"],
                  f"unsorted: exit {r.returncode}, order {node_names(r.stdout)}")

        # a cycle: exit 2, reported on a node of the cycle
        cyc = tiny_model([helper.make_node("Add", ["x", "c"], ["b"], name="a"),
                          helper.make_node("Relu", ["b"], ["c"], name="b"),
                          helper.make_node("Relu", ["c"], ["y"], name="tail")],
                         os.path.join(tmp, "cycle.onnx"))
        r = inspect(cyc)
        err = r.stderr.decode()
        rep.check(r.returncode == 2 and "cycle" in err and "'tail'" not in err,
                  f"cycle: exit {r.returncode}, stderr {err!r}")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
