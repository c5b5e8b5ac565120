"""`octet passes` and the pass-manager flags of `octet opt` (LLVM opt's):
the pass list with requires/preserves, `cat m.onnx | octet opt --passes=...
- -o - | octet inspect -`, text IR in and out (--emit=text), an unknown pass
listing the valid ones, --print-after / --print-after-all / --time-passes on
standard error, and binary ONNX refused on a terminal unless -f."""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import os
import pty
import subprocess
import tempfile

import onnx
from onnx import TensorProto, helper, numpy_helper
import numpy as np

OCTET = os.environ["OCTET"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(args, stdin=None, **kw):
    return subprocess.run([OCTET, *args], input=stdin, capture_output=True, **kw)


def tiny_model(path):
    """x [2,3] -> Identity -> Add(c1 + c2 folded) -> y; the folding and the
    Identity give fold something to do."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    c1 = numpy_helper.from_array(np.array([1, 2, 3], np.float32), "c1")
    c2 = numpy_helper.from_array(np.array([4, 5, 6], np.float32), "c2")
    nodes = [helper.make_node("Add", ["c1", "c2"], ["c"], name="addc"),
             helper.make_node("Identity", ["x"], ["x2"], name="id"),
             helper.make_node("Add", ["x2", "c"], ["y"], name="add")]
    g = helper.make_graph(nodes, "g", [x], [y], [c1, c2])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


with tempfile.TemporaryDirectory() as tmp:
    model = os.path.join(tmp, "m.onnx")
    tiny_model(model)
    data = open(model, "rb").read()

    r = run(["passes"])
    lines = r.stdout.decode().splitlines()
    check(r.returncode == 0, "octet passes exits 0")
    for name, req, pres in [("shape_infer", "-", "shapes"), ("fold", "-", "shapes"),
                            ("fuse", "shapes", "shapes"), ("qdq_fuse", "shapes", "-"),
                            ("quant_plan", "shapes", "shapes,quant-plan"),
                            ("quant_calibrate", "shapes,quant-plan",
                             "shapes,quant-plan,quant-stats"),
                            ("quant_choose", "shapes,quant-plan,quant-stats",
                             "shapes,quant-plan,quant-stats,quant-formats"),
                            ("quant_rewrite", "quant-plan,quant-formats", "-")]:
        row = [l.split()[:3] for l in lines if l.split()[:1] == [name]]
        check(row == [[name, req, pres]], f"passes lists {name} requires {req} preserves {pres}")

    # the pipe of the issue
    p1 = subprocess.Popen([OCTET, "opt", "--passes=shape_infer,fold", "-", "-o", "-"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p2 = subprocess.Popen([OCTET, "inspect", "-"], stdin=p1.stdout, stdout=subprocess.PIPE)
    p1.stdout.close()
    p1.stdin.write(data)
    p1.stdin.close()
    text = p2.communicate()[0].decode()
    check(p1.wait() == 0 and p2.returncode == 0, "cat m.onnx | opt - -o - | inspect - exits 0")
    check(text.startswith("octet-ir 1\n") and "node Identity" not in text
          and "init c: f32[3]" in text and "= [5.0, 7.0, 9.0]" in text,
          "the piped model is folded (c = [5, 7, 9], Identity gone)")

    # text IR out, read back by opt and inspect (from a file and stdin)
    r = run(["opt", model, "--passes=fold", "--emit=text", "-o", "-"])
    check(r.returncode == 0 and r.stdout.startswith(b"octet-ir 1\n"), "--emit=text writes text IR")
    tpath = os.path.join(tmp, "m.txt")
    open(tpath, "wb").write(r.stdout)
    r2 = run(["opt", tpath, "--emit=text", "-o", "-"])
    check(r2.returncode == 0 and r2.stdout == r.stdout, "opt reads text IR back unchanged")
    r3 = run(["inspect", "--full", "-"], stdin=r.stdout)
    check(r3.returncode == 0 and r3.stdout == r.stdout, "inspect --full - reads text IR on stdin")
    onnx_out = os.path.join(tmp, "back.onnx")
    r4 = run(["opt", tpath, "-o", onnx_out])
    check(r4.returncode == 0, "opt turns text IR into ONNX")
    back = onnx.load(onnx_out)
    onnx.checker.check_model(back)
    c = [numpy_helper.to_array(t) for t in back.graph.initializer if t.name == "c"]
    check(len(c) == 1 and c[0].tolist() == [5.0, 7.0, 9.0], "ONNX from text IR holds c = [5, 7, 9]")

    r = run(["opt", model, "--passes=shape_infer,nosuch", "-o", os.path.join(tmp, "o.onnx")])
    err = r.stderr.decode()
    check(r.returncode == 1 and "unknown pass 'nosuch'" in err
          and "valid passes: shape_infer, fold, fuse, qdq_fuse" in err,
          "an unknown pass is a usage error listing the valid passes")
    check(not os.path.exists(os.path.join(tmp, "o.onnx")), "nothing written after an unknown pass")

    r = run(["opt", model, "--passes=shape_infer,fold,shape_infer", "--print-after=fold",
             "--print-after", "shape_infer", "--time-passes", "--verify-each",
             "-o", os.path.join(tmp, "o.onnx")])
    err = r.stderr.decode()
    check(r.returncode == 0, "opt with --print-after, --time-passes, --verify-each exits 0")
    check(err.count("# *** IR after ") == 3 and "# *** IR after fold (pass 2) ***\noctet-ir 1\n" in err,
          "--print-after (repeated) prints after fold and both shape_infer runs")
    timing = [l.split() for l in err.splitlines() if l.strip().endswith(("shape_infer", "fold", "total"))
              and "%" in l]
    check([t[-1] for t in timing] == ["shape_infer", "fold", "shape_infer", "total"],
          "--time-passes prints one line per pass run and a total")
    r = run(["opt", model, "--passes=fold,shape_infer", "--print-after-all", "-o", os.path.join(tmp, "o.onnx")])
    check(r.stderr.decode().count("octet-ir 1\n") == 2, "--print-after-all prints after every pass")
    r = run(["opt", model, "--print-after=fold", "-o", os.path.join(tmp, "o.onnx")])
    check(r.returncode == 1, "--print-after without --passes is a usage error")

    # the quant passes: their state prints with the IR; requirements enforced
    r = run(["opt", model, "--passes=shape_infer,fold,quant_plan", "--print-after=quant_plan",
             "--emit=text", "-o", os.path.join(tmp, "plan.txt")])
    err = r.stderr.decode()
    check(r.returncode == 0 and "# *** IR after quant_plan (pass 3) ***" in err
          and "\nquant plan\nquant %0 act x\nquant %1 const c\n" in err,
          "--print-after=quant_plan prints the plan as quant lines")
    check("\nquant plan\n" in open(os.path.join(tmp, "plan.txt")).read(),
          "--emit=text writes the plan")
    r = run(["opt", os.path.join(tmp, "plan.txt"), "--passes=fold,quant_choose",
             "-o", os.path.join(tmp, "o2.onnx")])
    check(r.returncode == 1 and "pass 'quant_choose' requires quant-plan; run quant_plan "
          "first" in r.stderr.decode() and not os.path.exists(os.path.join(tmp, "o2.onnx")),
          "a pass after one that made its analysis stale is refused before anything runs")

    # binary ONNX to a terminal
    for extra, want in [([], 1), (["-f"], 0), (["--emit=text"], 0)]:
        master, slave = pty.openpty()
        p = subprocess.run([OCTET, "opt", model, "-o", "-", *extra], stdout=slave,
                           stderr=subprocess.PIPE)
        os.close(slave)
        os.close(master)
        check(p.returncode == want, f"opt -o - {' '.join(extra)} on a terminal exits {want}")
        if want == 1:
            check(b"refusing to write binary ONNX to a terminal" in p.stderr,
                  "the refusal says why and names -f")

if failures:
    print(f"{len(failures)} failed")
    sys.exit(1)
