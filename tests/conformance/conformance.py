"""ONNX backend node tests through `octet run`.

Every test folder (model.onnx + test_data_set_0/{input,output}_N.pb) whose
ops are all in src/ir/ops.def is run as

    octet run model.onnx --input NAME=input_N.pb ... --output-dir TMP --format=pb

and each output is compared with output_N.pb.  Tolerances (documented in
docs/conformance.md):

  float32            |a - b| <= 1e-5 + 1e-4 * |b|
  float64            |a - b| <= 1e-9 + 1e-9 * |b|
  float16            |a - b| <= 1e-3 + 4e-3 * |b|
  bfloat16           |a - b| <= 1e-2 + 1.6e-2 * |b|
  integer, bool, float8, float4, int4/int2: exact
  NaN matches NaN; +-Inf must match exactly; shapes and dtypes must match.

Used by run_suite.py (the CTest tests) and scripts/gen_conformance.py.
"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOLERANCES = {  # dtype name -> (atol, rtol)
    "float32": (1e-5, 1e-4),
    "float64": (1e-9, 1e-9),
    "float16": (1e-3, 4e-3),
    "bfloat16": (1e-2, 1.6e-2),
}

QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
             "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear"}
# float8, float4, int4/uint4, int2/uint2 element types (TensorProto ids)
NARROW_TYPES = {17, 18, 19, 20, 21, 22, 23, 24, 25, 26}


def ops_def_ops(path=os.path.join(ROOT, "src", "ir", "ops.def")):
    """Set of (domain, op_type) listed in ops.def."""
    ops = set()
    with open(path) as f:
        for m in re.finditer(r'^OP\(\s*\w+\s*,\s*"(\w+)"\s*,\s*"([^"]*)"', f.read(), re.M):
            ops.add((m.group(2), m.group(1)))
    return ops


def _norm_domain(d):
    return "" if d in ("", "ai.onnx") else d


def find_tests(root):
    """Sorted test folders under root that have model.onnx and a data set."""
    if not root or not os.path.isdir(root):
        return []
    out = []
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if os.path.isfile(os.path.join(d, "model.onnx")) and \
                os.path.isdir(os.path.join(d, "test_data_set_0")):
            out.append(d)
    return out


def all_nodes(graph):
    """The nodes of graph and of every subgraph attribute (If, Loop, Scan
    bodies) below it."""
    for node in graph.node:
        yield node
        for a in node.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from all_nodes(g)


def classify(test_dir, supported):
    """(unsupported op list, is_critical, model) for a test folder."""
    model = onnx.load(os.path.join(test_dir, "model.onnx"), load_external_data=False)
    missing = set()
    critical = False
    elem = {vi.name: vi.type.tensor_type.elem_type
            for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info)
            if vi.type.HasField("tensor_type")}
    # outside Octet's scope though the ops are known: non-tensor values
    # (sequence, optional), STRING tensors, and Dropout in training mode
    # (random masks the test data cannot pin down)
    for vi in list(model.graph.input) + list(model.graph.output):
        if not vi.type.HasField("tensor_type"):
            missing.add("non-tensor value '%s' (%s)" % (vi.name, vi.type.WhichOneof("value")))
        elif vi.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            missing.add("STRING tensor '%s'" % vi.name)
    for node in all_nodes(model.graph):
        if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
            consts = {i.name for i in model.graph.initializer}
            if node.input[2] not in consts:
                missing.add("Dropout in training mode")
        if node.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.STRING
                                          for a in node.attribute):
            missing.add("Cast to STRING")
        key = (_norm_domain(node.domain), node.op_type)
        if key not in supported:
            missing.add(node.op_type if not key[0] else key[0] + "." + node.op_type)
        if node.op_type in QUANT_OPS or node.op_type.startswith("QLinear") or \
                node.op_type.endswith("Integer"):
            critical = True
        if node.op_type == "Cast":
            to = next((a.i for a in node.attribute if a.name == "to"), 0)
            src = elem.get(node.input[0], 0) if node.input else 0
            if to in NARROW_TYPES or src in NARROW_TYPES:
                critical = True
    return sorted(missing), critical, model


def qdq_family(model):
    """True if the model has a QuantizeLinear, DequantizeLinear, QLinear*,
    *Integer or DynamicQuantizeLinear node: the tests the compiled path must
    pass without exception (issue 13)."""
    return any(n.op_type in QUANT_OPS or n.op_type.startswith("QLinear") or
               n.op_type.endswith("Integer") for n in model.graph.node)


def failure_group(reason):
    """(group, key) naming why a test failed, for grouping failures in
    docs/conformance.md: the op without a lowering, the op and element type
    the backend does not take, the form of an op it does not take (message),
    wrong values, or the error line itself."""
    m = re.search(r"no lowering for (\w+)", reason)
    if m:
        return "no lowering", m.group(1)
    m = re.search(r"\((\w+)\)[^:]*: error: compile: (\w+) (\w+) is not supported yet "
                  r"\(float32 only\)", reason)
    if m:
        return "element type not compiled", "%s %s" % (m.group(2), m.group(3))
    m = re.search(r"\((\w+)\)[^:]*: error: (?:compile|jit): (.*)", reason)
    if m:
        return "form of the op not compiled", "%s: %s" % (m.group(1), m.group(2).strip())
    if re.search(r"symbolic|fixed dims", reason):
        return "symbolic shapes", re.sub(r"^.*error: ", "", reason)
    if reason.startswith("output "):
        return "wrong values", re.sub(r"\(first at.*", "", reason).strip()
    if reason.startswith("timeout"):
        return "timeout", reason
    return "other error", re.sub(r"^exit \d+: octet: \S*: ", "", reason)


def _as_float(a):
    """Array as float64 (for ml_dtypes float8/int4/bfloat16 and friends)."""
    return np.asarray(a).astype(np.float64)


def compare(got, want):
    """None if got matches want within the tolerance of want's dtype, else a reason."""
    if got.shape != want.shape:
        return "shape %s, expected %s" % (list(got.shape), list(want.shape))
    if str(got.dtype) != str(want.dtype):
        return "dtype %s, expected %s" % (got.dtype, want.dtype)
    if want.dtype == object or want.dtype.kind in "SU":
        return None if np.array_equal(got, want) else "strings differ"
    if want.dtype == np.bool_ or want.dtype.kind in "iu":
        bad = np.asarray(got != want)
        if not bad.any():
            return None
        i = np.argmax(bad.reshape(-1))
        return "%d of %d elements differ (first at %d: %s vs %s)" % (
            bad.sum(), bad.size, i, got.reshape(-1)[i], want.reshape(-1)[i])
    g, w = _as_float(got), _as_float(want)
    atol, rtol = TOLERANCES.get(str(want.dtype), (0.0, 0.0))  # narrow floats: exact
    both_nan = np.isnan(g) & np.isnan(w)
    same_inf = np.isinf(w) & (g == w)
    with np.errstate(invalid="ignore"):
        ok = both_nan | same_inf | (np.abs(g - w) <= atol + rtol * np.abs(w))
    if ok.all():
        return None
    bad = ~ok
    i = int(np.argmax(bad.reshape(-1)))
    return "%d of %d elements off (first at %d: %r vs %r; tol %g + %g*|b|)" % (
        bad.sum(), bad.size, i, g.reshape(-1)[i], w.reshape(-1)[i], atol, rtol)


def _sanitize(name):
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name or "output")
    return "_" + s[1:] if s.startswith(".") else s


def _fix_bfloat16(path, declared_type, tmp_path):
    """onnx 1.12's test data stores bfloat16 inputs as UINT16 bit patterns:
    relabel such a tensor BFLOAT16 (same bits) when the model declares
    BFLOAT16.  Returns the path to feed."""
    if declared_type != onnx.TensorProto.BFLOAT16:
        return path
    t = onnx.load_tensor(path)
    if t.data_type != onnx.TensorProto.UINT16:
        return path
    bits = numpy_helper.to_array(t).astype(np.uint16)
    fixed = onnx.helper.make_tensor(t.name, onnx.TensorProto.BFLOAT16, list(t.dims),
                                    bits.tobytes(), raw=True)
    onnx.save_tensor(fixed, tmp_path)
    return tmp_path


def run_one(octet, test_dir, model, timeout=120, jit=False):
    """(ok, reason) for one supported test; with jit, through the compiled
    path (`octet run --jit`: the same graph compiled in-process by LLVM)."""
    data = os.path.join(test_dir, "test_data_set_0")
    inits = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    outputs = [o.name for o in model.graph.output]
    args = [octet, "run", os.path.join(test_dir, "model.onnx")]
    declared = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    tmp = tempfile.mkdtemp(prefix="octet_conf_")
    try:
        for k, name in enumerate(inputs):
            f = os.path.join(data, "input_%d.pb" % k)
            if not os.path.exists(f):
                return False, "missing input_%d.pb" % k
            f = _fix_bfloat16(f, declared.get(name), os.path.join(tmp, "input_%d.pb" % k))
            args += ["--input", "%s=%s" % (name, f)]
        args += ["--output-dir", tmp, "--format=pb"] + (["--jit"] if jit else [])
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return False, "timeout after %ds" % timeout
        if p.returncode != 0:
            # the last error line (notes may follow it), else the last line
            lines = p.stderr.strip().splitlines() or ["(no message)"]
            msg = ([ln for ln in lines if " error: " in ln] or lines)[-1]
            return False, "exit %d: %s" % (p.returncode, msg[:300])
        for k, name in enumerate(outputs):
            want_file = os.path.join(data, "output_%d.pb" % k)
            if not os.path.exists(want_file):
                continue
            got_file = os.path.join(tmp, _sanitize(name) + ".pb")
            if not os.path.exists(got_file):
                return False, "output '%s' not written" % name
            want_pb, got_pb = onnx.load_tensor(want_file), onnx.load_tensor(got_file)
            if (want_pb.data_type == onnx.TensorProto.UINT16 and
                    got_pb.data_type == onnx.TensorProto.BFLOAT16):
                # onnx 1.12 stored bfloat16 expectations as uint16 bit patterns
                want = numpy_helper.to_array(want_pb)
                got = numpy_helper.to_array(got_pb).view(np.uint16)
            else:
                want = numpy_helper.to_array(want_pb)
                got = numpy_helper.to_array(got_pb)
            reason = compare(got, want)
            if reason:
                return False, "output '%s': %s" % (name, reason)
        return True, ""
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_suite(octet, roots, jobs=2, jit=False):
    """List of dicts {suite, name, status: pass|fail|unsupported, reason, critical,
    qdq (see qdq_family)};
    with jit, each supported test runs through the compiled path."""
    supported = ops_def_ops()
    work, results = [], []
    for suite, root in roots:
        for d in find_tests(root):
            name = os.path.basename(d)
            try:
                missing, critical, model = classify(d, supported)
            except Exception as e:  # a model the onnx package cannot read
                results.append(dict(suite=suite, name=name, status="unsupported",
                                    reason="onnx cannot load it: %s" % e, critical=False,
                                    qdq=False))
                continue
            if missing:
                results.append(dict(suite=suite, name=name, status="unsupported",
                                    reason=", ".join(missing), critical=False, qdq=False))
            else:
                work.append((suite, name, d, model, critical))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futs = [(w, pool.submit(run_one, octet, w[2], w[3], jit=jit)) for w in work]
        for (suite, name, _, model, critical), fut in futs:
            ok, reason = fut.result()
            results.append(dict(suite=suite, name=name, status="pass" if ok else "fail",
                                reason=reason, critical=critical, qdq=qdq_family(model)))
    results.sort(key=lambda r: (r["suite"], r["name"]))
    return results


def verdict(results, min_rate=0.97):
    """(ok, message): the pass-rate and critical-failure criteria."""
    sup = [r for r in results if r["status"] != "unsupported"]
    passed = sum(r["status"] == "pass" for r in sup)
    crit = [r for r in sup if r["critical"] and r["status"] == "fail"]
    rate = passed / len(sup) if sup else 0.0
    msg = "%d of %d supported tests pass (%.1f%%), %d unsupported; %d quantization/narrow-cast failures" % (
        passed, len(sup), 100 * rate, len(results) - len(sup), len(crit))
    return (bool(sup) and rate >= min_rate and not crit), msg, crit
