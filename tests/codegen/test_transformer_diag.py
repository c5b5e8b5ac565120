"""CTest entry transformer_ops_reject_bad_shapes: one-node RMSNormalization,
RotaryEmbedding and Attention models with shapes or attributes the ONNX spec
rules out, run through `octet run` and `octet run --jit`.  Each must exit 2
(bad input) with a diagnostic naming the node, the op and, where one is to
blame, the input tensor, and write no output -- never crash.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

OCTET = os.environ["OCTET"]
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def vi(name, dt, shape):
    return helper.make_tensor_value_info(name, dt, shape)


def model(op, inputs, attrs, opset=23, outs=1):
    """One node `op` reading the given (name, dtype, shape) inputs ('' for
    an omitted one)."""
    names = [i[0] if i else "" for i in inputs]
    node = helper.make_node(op, names, ["y%d" % k for k in range(outs)], name="bad_" + op,
                            **attrs)
    g = helper.make_graph([node], "g", [vi(*i) for i in inputs if i],
                          [helper.make_tensor_value_info("y%d" % k, F, None)
                           for k in range(outs)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), \
        [i for i in inputs if i]


X3 = ("X", F, [2, 3, 4])
Q4, K4, V4 = ("Q", F, [1, 4, 3, 8]), ("K", F, [1, 2, 5, 8]), ("V", F, [1, 2, 5, 8])
CASES = [
    # (name, model, expected fragments, jit too)
    ("rms_axis", model("RMSNormalization", [X3, ("scale", F, [4])], dict(axis=3)),
     ["(RMSNormalization)", "axis out of range for rank 3"], True),
    ("rms_scale", model("RMSNormalization", [X3, ("scale", F, [5])], {}),
     ["input 1 'scale'", "does not broadcast"], True),
    ("rms_stash", model("RMSNormalization", [X3, ("scale", F, [4])], dict(stash_type=7)),
     ["stash_type 7 is not a float type"], True),
    ("rope_3d_no_heads", model("RotaryEmbedding", [("X", F, [1, 3, 8]), ("cos", F, [2, 3, 4]),
                                                   ("sin", F, [2, 3, 4])], {}),
     ["(RotaryEmbedding)", "needs the num_heads attribute"], True),
    ("rope_cache_dim", model("RotaryEmbedding", [("X", F, [1, 2, 3, 8]), ("cos", F, [6, 3]),
                                                 ("sin", F, [6, 4]), ("pos", I64, [1, 3])], {}),
     ["input 1 'cos'", "must be [max_position, 4]"], True),
    ("rope_odd_dim", model("RotaryEmbedding", [("X", F, [1, 2, 3, 8]), ("cos", F, [6, 1]),
                                               ("sin", F, [6, 1]), ("pos", I64, [1, 3])],
                           dict(rotary_embedding_dim=3)),
     ["rotary_embedding_dim 3 must be even"], True),
    ("rope_position", model("RotaryEmbedding", [("X", F, [1, 2, 3, 8]), ("cos", F, [6, 4]),
                                                ("sin", F, [6, 4]), ("pos", I64, [1, 3])], {}),
     ["input 3 'pos'", "position id 100 is outside the caches' 6 rows"], False),
    ("attn_3d_no_heads", model("Attention", [("Q", F, [1, 3, 8]), ("K", F, [1, 5, 8]),
                                             ("V", F, [1, 5, 8])], {}),
     ["(Attention)", "3-D inputs need the q_num_heads and kv_num_heads"], True),
    ("attn_heads", model("Attention", [("Q", F, [1, 3, 3, 8]), K4, V4], {}),
     ["3 query heads are not a multiple of 2 kv heads"], True),
    ("attn_empty_head", model("Attention", [("Q", F, [1, 2, 3, 0]), ("K", F, [1, 2, 5, 0]),
                                            ("V", F, [1, 2, 5, 4])], {}),
     ["input 0 'Q'", "head size must be positive, not 0"], True),
    ("attn_head_size", model("Attention", [Q4, ("K", F, [1, 2, 5, 6]), V4], {}),
     ["input 1 'K'", "head size 6 differs from Q's 8"], True),
    ("attn_mask", model("Attention", [Q4, K4, V4, ("mask", F, [2, 5])], {}),
     ["input 3 'mask'", "does not broadcast to [1, 4, 3, 5]"], True),
    ("attn_past_alone", model("Attention", [Q4, K4, V4, None, ("pk", F, [1, 2, 2, 8])], {},
                              outs=1),
     ["past_key and past_value must be given together"], True),
    ("attn_nonpad_past", model("Attention", [Q4, K4, V4, None, ("pk", F, [1, 2, 2, 8]),
                                             ("pv", F, [1, 2, 2, 8]), ("np", I64, [1])], {},
                               opset=24),
     ["input 6 'np'", "cannot be combined with past_key / past_value"], True),
    ("attn_mode", model("Attention", [Q4, K4, V4], dict(qk_matmul_output_mode=5)),
     ["qk_matmul_output_mode 5 is not 0..3"], True),
    ("attn_unknown_attr", model("Attention", [Q4, K4, V4], dict(sliding=2)),
     ["unknown attribute 'sliding' for Attention"], False),  # --jit only warns (all ops)
]


def feed(name, dt, shape, case):
    if dt == I64:
        return np.full(shape, 100 if case == "rope_position" else 0, dtype=np.int64)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def main():
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for case, (m, ins), want, jit in CASES:
            path = os.path.join(d, case + ".onnx")
            onnx.save(m, path)
            args = []
            for name, dt, shape in ins:
                p = os.path.join(d, "%s_%s.npy" % (case, name))
                np.save(p, feed(name, dt, shape, case))
                args += ["--input", "%s=%s" % (name, p)]
            for extra in ([], ["--jit"]) if jit else ([],):
                out = os.path.join(d, "out_" + case + "".join(extra))
                p = subprocess.run([OCTET, "run", path, *args, "--output-dir", out, *extra],
                                   capture_output=True, text=True)
                how = "%s %s" % (case, " ".join(extra) or "interp")
                bad = []
                if p.returncode != 2:
                    bad.append("exit %d, expected 2" % p.returncode)
                if "node 'bad_" not in p.stderr:
                    bad.append("the node is not named")
                bad += ["no %r" % w for w in want if w not in p.stderr]
                if os.path.exists(out) and os.listdir(out):
                    bad.append("outputs were written")
                print("%s %s%s" % ("FAIL" if bad else "ok  ", how,
                                   ": " + "; ".join(bad) + "\n  " + p.stderr.strip()[-400:]
                                   if bad else ""))
                failures += bool(bad)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
