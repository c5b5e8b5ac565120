"""The text form as an equality check: for every golden model, `octet opt`
(load, verify, save) followed by `octet inspect` prints exactly what
inspecting the original prints (nothing the IR keeps is lost); and the text
changes when the model changes in any of the ways a lossy save could change
it (one initializer element, a doc string, metadata, an attribute value, a
dimension name), each edit made with the onnx package."""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

from inspect_common import GOLDEN_MODELS, OCTET, Report, inspect, model_path


def edits():
    def init_element(m):
        t = m.graph.initializer[0]
        a = numpy_helper.to_array(t).copy()
        a.reshape(-1)[0] = np.nextafter(a.reshape(-1)[0], np.float32(np.inf))
        t.CopyFrom(numpy_helper.from_array(a, t.name))

    def node_doc(m):
        m.graph.node[0].doc_string = "x"

    def metadata(m):
        helper.set_model_props(m, {"k": "v"})

    def attribute(m):
        for n in m.graph.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.INTS and a.ints:
                    a.ints[0] += 1
                    return

    def dim_param(m):
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "renamed"

    return [init_element, node_doc, metadata, attribute, dim_param]


def main():
    rep = Report()
    with tempfile.TemporaryDirectory() as tmp:
        for name in GOLDEN_MODELS:
            saved = os.path.join(tmp, name + ".onnx")
            r = subprocess.run([OCTET, "opt", model_path(name), "-o", saved],
                               capture_output=True, timeout=120)
            if not rep.check(r.returncode == 0, f"{name}: opt exit {r.returncode} {r.stderr[:300]!r}"):
                continue
            a, b = inspect(model_path(name)), inspect(saved)
            rep.check(a.returncode == 0 and a.stdout == b.stdout,
                      f"{name}: text differs after load-save-load")
        original = inspect(model_path("cifar10-cnn")).stdout
        for edit in edits():
            m = onnx.load(model_path("cifar10-cnn"))
            edit(m)
            path = os.path.join(tmp, f"edited_{edit.__name__}.onnx")
            onnx.save(m, path)
            r = inspect(path)
            rep.check(r.returncode == 0 and r.stdout != original,
                      f"edit {edit.__name__}: text unchanged (exit {r.returncode})")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
