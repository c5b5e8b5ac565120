"""Runs the ONNX backend node tests of the element-wise, cast, resize, pad
and LRN families through `octet run` and compares every output with the
expected output_N.pb (float: rtol 1e-5, atol 1e-6 (float16/bfloat16: 1e-3);
integers, bool and float8: exact; NaN must match NaN).

usage: run_node_tests.py [PATTERN...]   (default: every family)
Environment: OCTET (binary), OCTET_TESTDATA, OCTET_SHARED.
Prints one line per failing test and a pass count per family; exits 1 if
any test fails."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)

FAMILIES = {
    "binary": r"test_(add|sub|mul|div|pow|equal|prelu)(_|$)",
    "variadic": r"test_(max|min|sum)_",
    "where": r"test_where",
    "unary": r"test_(sqrt|exp|log|erf|neg|abs|relu|leakyrelu|sigmoid|hardsigmoid|"
             r"hardswish|tanh|gelu)(_|$)",
    "clip": r"test_clip",
    "cast": r"test_cast(like)?_",
    "resize": r"test_resize",
    "pad": r"test_(pad|constant_pad|edge_pad|reflect_pad|wrap_pad)",
    "lrn": r"test_lrn",
    # simple ops added to the same kernel families
    "extra_binary": r"test_(less|greater|and|or|xor|mod|bitshift)(_|$)",
    "extra_unary": r"test_(floor|ceil|round|reciprocal|sign|softplus|softsign|elu|selu|celu|"
                   r"thresholdedrelu|mish|sin|cos|isnan|isinf|not)(_|$)",
    "mean": r"test_mean_",
}
# Known failures, with the reason; reported but not counted as failures.  A
# known failure that passes is reported too, so this list cannot go stale.
KNOWN = {
    "node/test_cast_FLOAT_to_STRING": "Cast to STRING is not supported (OCT_EUNSUPPORTED)",
    "node/test_castlike_FLOAT_to_STRING": "Cast to STRING is not supported (OCT_EUNSUPPORTED)",
    "node/test_castlike_BFLOAT16_to_FLOAT": "test data: input 'like' has rank 1, the model declares rank 2",
    "node/test_castlike_FLOAT_to_BFLOAT16": "test data: input 'like' has rank 1, the model declares rank 2",
}
# names that match a family pattern but belong to other ops
EXCLUDE = re.compile(r"test_(maxpool|maxunpool|max_pool|logsoftmax|log_softmax|reduce)|"
                     r".*_expanded")


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def to_array(t):
    return numpy_helper.to_array(t)


def compare(exp_t, got_t):
    if exp_t.data_type != got_t.data_type:
        return "dtype %d, expected %d" % (got_t.data_type, exp_t.data_type)
    e, g = to_array(exp_t), to_array(got_t)
    if e.shape != g.shape:
        return "shape %s, expected %s" % (g.shape, e.shape)
    if e.dtype.kind in "f" and e.dtype.itemsize >= 4:
        tol = 1e-5 if e.dtype.itemsize >= 4 else 1e-3
        ef, gf = e.astype(np.float64), g.astype(np.float64)
        ok = np.isclose(gf, ef, rtol=tol, atol=1e-6, equal_nan=True)
        if not ok.all():
            i = np.argmax(~ok)
            return "value %r, expected %r at flat %d" % (gf.flat[i], ef.flat[i], i)
        return None
    if e.dtype.kind == "f" or str(e.dtype) == "bfloat16":
        ef, gf = e.astype(np.float64), g.astype(np.float64)
        ok = np.isclose(gf, ef, rtol=1e-3, atol=1e-6, equal_nan=True)
        if not ok.all():
            i = np.argmax(~ok)
            return "value %r, expected %r at flat %d" % (gf.flat[i], ef.flat[i], i)
        return None
    # exact: compare the raw bytes (covers float8, int4, bool)
    if exp_t.data_type == onnx.TensorProto.STRING:
        return None if list(e.flat) == list(g.flat) else "strings differ"
    en = np.asarray(e).astype(np.float64) if e.dtype.kind != "O" else e
    gn = np.asarray(g).astype(np.float64) if g.dtype.kind != "O" else g
    ok = (en == gn) | (np.isnan(en) & np.isnan(gn)) if en.dtype.kind == "f" else en == gn
    if not np.all(ok):
        i = int(np.argmax(~np.asarray(ok)))
        return "value %r, expected %r at flat %d" % (gn.flat[i], en.flat[i], i)
    return None


BF16 = onnx.TensorProto.BFLOAT16
U16 = onnx.TensorProto.UINT16


def as_bfloat16(t):
    """Old ONNX test data stores BFLOAT16 tensors as UINT16 bit patterns:
    the same bits as a BFLOAT16 TensorProto."""
    bits = numpy_helper.to_array(t).astype(np.uint16)
    r = onnx.TensorProto()
    r.name = t.name
    r.dims.extend(t.dims)
    r.data_type = BF16
    r.raw_data = bits.tobytes()
    return r


def bf16_bits_as_float(t):
    bits = np.frombuffer(t.raw_data, dtype=np.uint16) if t.raw_data else \
        np.array(t.int32_data, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32).reshape(tuple(t.dims))


def compare_bf16(exp_t, got_t):
    """BFLOAT16 against old UINT16-coded expectations: within one bfloat16
    step (the old data truncated instead of rounding to nearest)."""
    e, g = bf16_bits_as_float(exp_t), bf16_bits_as_float(got_t)
    ok = np.isclose(g, e, rtol=2 ** -7, atol=0, equal_nan=True)
    if not ok.all():
        i = np.argmax(~ok)
        return "value %r, expected %r at flat %d" % (g.flat[i], e.flat[i], i)
    return None


def run_one(octet, folder):
    model = onnx.load(os.path.join(folder, "model.onnx"), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    in_vals = [i for i in model.graph.input if i.name not in inits]
    in_names = [i.name for i in in_vals]
    out_names = [o.name for o in model.graph.output]
    out_types = [o.type.tensor_type.elem_type for o in model.graph.output]
    data = sorted(d for d in os.listdir(folder) if d.startswith("test_data_set"))
    for ds in data:
        dsd = os.path.join(folder, ds)
        n_in = len([f for f in os.listdir(dsd) if f.startswith("input_")])
        args = [octet, "run", os.path.join(folder, "model.onnx")]
        for i in range(n_in):
            args += ["--input", "%s=%s" % (in_names[i], os.path.join(dsd, "input_%d.pb" % i))]
        with tempfile.TemporaryDirectory() as out_dir:
            for i in range(n_in):
                t = load_pb(os.path.join(dsd, "input_%d.pb" % i))
                if in_vals[i].type.tensor_type.elem_type == BF16 and t.data_type == U16:
                    fixed = os.path.join(out_dir, "in_%d.pb" % i)
                    with open(fixed, "wb") as fh:
                        fh.write(as_bfloat16(t).SerializeToString())
                    args[args.index("%s=%s" % (in_names[i], os.path.join(dsd, "input_%d.pb" % i)))] = \
                        "%s=%s" % (in_names[i], fixed)
            args += ["--output-dir", out_dir, "--format=pb"]
            r = subprocess.run(args, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                return "octet exited %d: %s" % (r.returncode, r.stderr.strip()[:300])
            for k, name in enumerate(out_names):
                exp = load_pb(os.path.join(dsd, "output_%d.pb" % k))
                got_path = os.path.join(out_dir, name + ".pb")
                if not os.path.exists(got_path):
                    return "no output %s" % name
                got = load_pb(got_path)
                if out_types[k] == BF16 and exp.data_type == U16 and got.data_type == BF16:
                    msg = compare_bf16(as_bfloat16(exp), got)
                else:
                    msg = compare(exp, got)
                if msg:
                    return "%s output %s: %s" % (ds, name, msg)
    return None


def main():
    octet = os.environ["OCTET"]
    roots = [os.environ.get("OCTET_TESTDATA", "/usr/share/libonnx-testdata/data/node"),
             os.path.join(need("onnx-node-tests/opset25"), "onnx-node-tests/opset25")]
    wanted = sys.argv[1:] or list(FAMILIES)
    failed = 0
    for fam in wanted:
        pat = re.compile(FAMILIES[fam])
        passed = total = 0
        for root in roots:
            if not os.path.isdir(root):
                continue
            for name in sorted(os.listdir(root)):
                if not pat.match(name) or EXCLUDE.match(name):
                    continue
                total += 1
                msg = run_one(octet, os.path.join(root, name))
                where = os.path.basename(os.path.dirname(root + "/"))
                key = "%s/%s" % (where, name)
                if msg and key in KNOWN:
                    print("known %s: %s" % (key, KNOWN[key]))
                elif msg:
                    print("FAIL %s/%s: %s" % (where, name, msg))
                    failed += 1
                else:
                    if key in KNOWN:
                        print("FAIL %s/%s: listed as known failure but passes" % (where, name))
                        failed += 1
                    passed += 1
        print("%-9s %d/%d passed" % (fam, passed, total))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
