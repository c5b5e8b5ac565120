"""examples/run_npy.c built with the two command lines its opening comment
gives (taken from the comment, run as written, and once more with -Wall -Wextra -Werror, in a folder laid out like the
repository: runtime/, examples/, build/, with `build/octet` this build's
binary, `model.onnx` mnist-8 and NAME = mnist), then run on the model's
test input; its .npy output must match the reference interpreter (`octet
run`) within 1e-4 * max(1, max|want|).  A line in the comment that does
not compile or link fails the test."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from onnx import load_tensor, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models/mnist-8")
BUILD = os.environ["OCTET_BUILD"]
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(SRC, "examples", "run_npy.c")


def documented_commands():
    """The build commands of run_npy.c's comment: the lines after 'Build'
    up to 'Run:' that start with a command, continuations joined."""
    text = open(EXAMPLE, encoding="utf-8").read()
    comment = text[text.index("/*") + 2:text.index("*/")]
    block = comment[comment.index("Build"):comment.index("Run:")]
    lines = [re.sub(r"^\s*\*\s?", "", ln) for ln in block.splitlines()]
    cmds, cur = [], ""
    for ln in lines:
        s = ln.strip()
        if not cur and not (s.startswith("build/octet") or s.startswith("cc ")):
            continue
        cur += (" " if cur else "") + s.rstrip("\\").strip()
        if not s.endswith("\\"):
            cmds.append(cur)
            cur = ""
    return cmds


def main():
    model = os.path.join(SHARED, "models", "mnist-8", "model.onnx")
    if not os.path.exists(model):
        print("SKIP: needs ../shared/models/mnist-8")
        return 77
    x = numpy_helper.to_array(load_tensor(os.path.join(SHARED, "models", "mnist-8",
                                                       "test_data_set_0", "input_0.pb")))
    cmds = documented_commands()
    print("documented:", *cmds, sep="\n  ")
    if len(cmds) != 2 or not cmds[0].startswith("build/octet compile") or \
            not cmds[1].startswith("cc "):
        print("FAIL: run_npy.c's comment should give an `octet compile` and a `cc` line")
        return 1
    with tempfile.TemporaryDirectory() as d:
        # the repository's layout, with this build's products in build/
        os.symlink(os.path.join(SRC, "runtime"), os.path.join(d, "runtime"))
        os.symlink(os.path.join(SRC, "examples"), os.path.join(d, "examples"))
        os.mkdir(os.path.join(d, "build"))
        os.symlink(cgutil.OCTET, os.path.join(d, "build", "octet"))
        os.symlink(os.path.join(BUILD, "liboctet_runtime.a"),
                   os.path.join(d, "build", "liboctet_runtime.a"))
        os.symlink(model, os.path.join(d, "model.onnx"))
        os.mkdir(os.path.join(d, "out"))
        for cmd in cmds:
            cmd = cmd.replace("NAME", "mnist")
            r = subprocess.run(cmd, shell=True, cwd=d, capture_output=True, text=True)
            if r.returncode:
                print(f"FAIL: `{cmd}` exit {r.returncode}:\n{r.stdout}{r.stderr}")
                return 1
        # the example itself stays warning-free
        strict = cmds[1].replace("NAME", "mnist").replace("-o run_npy", "-o run_npy_strict")
        r = subprocess.run(strict + " -Wall -Wextra -Werror", shell=True, cwd=d,
                           capture_output=True, text=True)
        if r.returncode:
            print(f"FAIL: run_npy.c has warnings:\n{r.stderr}")
            return 1
        exe = os.path.join(d, "run_npy")
        np.save(os.path.join(d, "x.npy"), x)
        out = subprocess.run([exe, os.path.join(d, "x.npy"), "-o", os.path.join(d, "y.npy")],
                             check=True, capture_output=True, text=True).stdout
        print(out, end="")
        got = np.load(os.path.join(d, "y.npy"))
        want = cgutil.run_ref(model, [("Input3", x)])["Plus214_Output_0"]
        ok, how = cgutil.close(got, want, 1e-4)
        print("run_npy vs octet run:", "ok" if ok else "FAIL", how)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
