"""Round trip: every model of the ONNX node tests and the shared models goes
through `octet opt model -o out.onnx`, and the output must be the same model:

 (i)   onnx.load of original and output give equal protos (MessageToDict,
       after dropping empty strings, which ONNX treats as absent) and, once
       `octet inspect` works, the same inspect text;
 (ii)  onnx.checker accepts the output wherever it accepts the original;
 (iii) ONNX Runtime gives bit-identical outputs for both on the folder's
       test_data_set_* inputs wherever it can run the original.  On the
       sanitized build (OCTET_SANITIZED) this step is left out: it runs
       ONNX Runtime only, on protos (i) has already found equal, so it
       checks no Octet code the release run does not.

A model octet rejects fails the test when the checker accepts it, unless
octet says it is unsupported (exit 3).  Prints the counts.
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from google.protobuf.json_format import MessageToDict
from onnx import numpy_helper

OCTET = os.environ["OCTET"]
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("onnx-node-tests/opset25", "onnx-node-tests/light", "models")
TESTDATA = os.environ["OCTET_TESTDATA"]


def model_paths():
    paths = sorted(glob.glob(os.path.join(TESTDATA, "*", "model.onnx")))
    paths += sorted(glob.glob(os.path.join(SHARED, "onnx-node-tests", "opset25", "*", "model.onnx")))
    paths += sorted(glob.glob(os.path.join(SHARED, "onnx-node-tests", "light", "*.onnx")))
    paths += sorted(glob.glob(os.path.join(SHARED, "models", "**", "*.onnx"), recursive=True))
    return paths


def strip_empty(x):
    """Drops "" values (absent and empty strings mean the same in ONNX)."""
    if isinstance(x, dict):
        return {k: strip_empty(v) for k, v in x.items() if v != ""}
    if isinstance(x, list):
        return [strip_empty(v) for v in x]
    return x


def first_diff(x, y, path=""):
    if type(x) is not type(y):
        return f"{path}: {repr(x)[:80]} != {repr(y)[:80]}"
    if isinstance(x, dict):
        for k in sorted(set(x) | set(y)):
            if k not in x or k not in y:
                return f"{path}/{k}: only in {'original' if k in x else 'output'}"
            d = first_diff(x[k], y[k], f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(x, list):
        if len(x) != len(y):
            return f"{path}: {len(x)} entries != {len(y)}"
        for i, (u, v) in enumerate(zip(x, y)):
            d = first_diff(u, v, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if x == y else f"{path}: {repr(x)[:80]} != {repr(y)[:80]}"


def checker_ok(path):
    try:
        onnx.checker.check_model(path)
        return True
    except Exception:
        return False


def inspect_text(path):
    r = subprocess.run([OCTET, "inspect", path], capture_output=True)
    return r.stdout if r.returncode == 0 else None


def load_inputs(model_dir, model):
    sets = sorted(glob.glob(os.path.join(model_dir, "test_data_set_*")))
    if not sets:
        return None
    init_names = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init_names]
    if any(i.type.WhichOneof("value") != "tensor_type" for i in inputs):
        return None  # sequence/optional/map inputs: not fed here
    names = [i.name for i in inputs]
    feeds = {}
    for i, name in enumerate(names):
        f = os.path.join(sets[0], f"input_{i}.pb")
        if not os.path.exists(f):
            return None
        t = onnx.TensorProto()
        with open(f, "rb") as fh:
            t.ParseFromString(fh.read())
        try:
            feeds[name] = numpy_helper.to_array(t)
        except Exception:
            return None
    return feeds


def ort_run(ort, path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 4
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def same_bits(a, b):
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
                and len(a) == len(b) and all(same_bits(x, y) for x, y in zip(a, b)))
    if a is None or b is None:
        return a is b
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return a.tolist() == b.tolist()
    return a.tobytes() == b.tobytes()


def main():
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if os.environ.get("OCTET_SANITIZED"):
        ort = None
    paths = model_paths()
    if len(paths) < 100:
        print(f"only {len(paths)} models found; check OCTET_TESTDATA/OCTET_SHARED")
        return 1
    use_inspect = inspect_text(paths[0]) is not None
    counts = dict(total=0, round_tripped=0, unsupported=0, rejected_invalid=0,
                  checker_ok=0, inspect_compared=0, ort_compared=0)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for idx, path in enumerate(paths):
            counts["total"] += 1
            out = os.path.join(tmp, f"{idx}.onnx")
            r = subprocess.run([OCTET, "opt", path, "-o", out], capture_output=True)
            orig_checker = checker_ok(path)
            if r.returncode != 0:
                msg = r.stderr.decode(errors="replace").strip().splitlines()
                msg = msg[0] if msg else ""
                if os.path.exists(out):
                    failures.append(f"{path}: failed but left {out}")
                if r.returncode == 3:
                    counts["unsupported"] += 1
                    print(f"unsupported: {path}: {msg}")
                elif orig_checker:
                    failures.append(f"{path}: octet opt exit {r.returncode}: {msg}")
                else:
                    counts["rejected_invalid"] += 1
                    print(f"rejected (checker rejects it too): {path}: {msg}")
                continue
            counts["round_tripped"] += 1
            a = onnx.load(path, load_external_data=False)
            b = onnx.load(out, load_external_data=False)
            d = first_diff(strip_empty(MessageToDict(a)), strip_empty(MessageToDict(b)))
            if d:
                failures.append(f"{path}: proto differs at {d}")
                continue
            if use_inspect:
                counts["inspect_compared"] += 1
                ta, tb = inspect_text(path), inspect_text(out)
                if ta is None or ta != tb:
                    failures.append(f"{path}: octet inspect text differs")
            if orig_checker:
                if checker_ok(out):
                    counts["checker_ok"] += 1
                else:
                    failures.append(f"{path}: checker rejects the output")
            if ort is None:
                continue
            feeds = load_inputs(os.path.dirname(path), a)
            if feeds is None:
                continue
            try:
                ref = ort_run(ort, path, feeds)
            except Exception:
                continue  # ORT cannot run the original
            try:
                got = ort_run(ort, out, feeds)
            except Exception as e:
                failures.append(f"{path}: ORT runs the original but not the output: {e}")
                continue
            counts["ort_compared"] += 1
            if len(ref) != len(got) or not all(same_bits(x, y) for x, y in zip(ref, got)):
                failures.append(f"{path}: ORT outputs differ")
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
