"""Streaming calibration data sets (src/frontend/dataset.h), through the
dataset_tool driver.

    test_dataset.py DATASET_TOOL samples|malformed|memory

samples:   every kind of data set (.npy split along axis 0 or one sample per
           leading index, big-endian .npy, .npz stored and deflated, read in
           order and in reverse, folders of TensorProto files in both
           layouts, real model folders) gives exactly the samples numpy
           slices out: dtype, shape and the CRC-32 of the bytes (expected
           values from numpy / onnx.numpy_helper and Python's zlib).
malformed: bad data sets are refused with a diagnostic naming the file and
           the model input, never a crash.
oom:       open + read-all with the Nth allocation failing, for every N
           until a run succeeds: each run fails cleanly, none swallows the
           failure, and nothing but arena blocks stays allocated.
memory:    reading all 34 samples of the 20 MB squeezenet calibration array
           (.npy, stored .npz, deflated .npz) grows peak resident memory by a
           few MB at most, while the control (reading the whole array at
           once) grows it by the array's size: the bound is one sample.
"""
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TOOL = sys.argv[1]
MODE = sys.argv[2]
from shared_data import need  # noqa: E402  (tests/testlib, skips without ../shared)
SHARED = need("models/mnist-8", "models/squeezenet1.1", "data/imagenet-photos")
MNIST = os.path.join(SHARED, "models/mnist-8/model.onnx")
SQUEEZE_DIR = os.path.join(SHARED, "models/squeezenet1.1")
SQUEEZE = os.path.join(SQUEEZE_DIR, "model.onnx")
CALIB = os.path.join(SHARED, "data/imagenet-photos/calib_f32.npy")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(model, data, *opts):
    p = subprocess.run([TOOL, model, data, *opts], capture_output=True,
                       text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def parse(out):
    """-> (count, {(index, input): (dtype, shape, crc)})"""
    count, samples = None, {}
    for line in out.splitlines():
        w = line.split()
        if w and w[0] == "count":
            count = int(w[1])
        elif w and w[0] == "sample":
            s = w.index("shape")
            c = w.index("crc")
            samples[(int(w[1]), w[3])] = (w[5], [int(x) for x in w[s + 1:c]],
                                         int(w[c + 1], 16))
    return count, samples


NP_TO_ONNX = {np.dtype("float32"): "FLOAT", np.dtype("float64"): "DOUBLE",
              np.dtype("int64"): "INT64", np.dtype("uint8"): "UINT8",
              np.dtype("int32"): "INT32"}


def expect_sample(arr):
    """(ONNX dtype name, shape, CRC-32 of the little-endian bytes)."""
    le = arr.astype(arr.dtype.newbyteorder("<"))
    return (NP_TO_ONNX[np.dtype(le.dtype.str.replace(">", "<"))],
            list(arr.shape), zlib.crc32(np.ascontiguousarray(le).tobytes()))


def check_samples(name, model, data, expected, *opts):
    """expected: list over samples of {input: array}."""
    rc, out, err = run(model, data, *opts)
    check(rc == 0, f"{name}: exit {rc}: {err.strip()}")
    if rc != 0:
        return
    count, got = parse(out)
    check(count == len(expected), f"{name}: count {count} != {len(expected)}")
    for i, sample in enumerate(expected):
        for inp, arr in sample.items():
            want = expect_sample(arr)
            check(got.get((i, inp)) == want,
                  f"{name}: sample {i} input {inp}: got {got.get((i, inp))}, "
                  f"want {want}")
    check(len(got) == sum(len(s) for s in expected),
          f"{name}: {len(got)} tensors printed")


def two_input_model(path):
    """Inputs a: float [1,2,3], b: int64 [batch,5] (symbolic first dim)."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 2, 3])
    b = helper.make_tensor_value_info("b", TensorProto.INT64, ["batch", 5])
    ya = helper.make_tensor_value_info("ya", TensorProto.FLOAT, [1, 2, 3])
    yb = helper.make_tensor_value_info("yb", TensorProto.INT64, ["batch", 5])
    g = helper.make_graph([helper.make_node("Identity", ["a"], ["ya"]),
                           helper.make_node("Identity", ["b"], ["yb"])],
                          "two", [a, b], [ya, yb])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, path)


def write_pb(path, arr, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def samples_mode(tmp):
    rng = np.random.default_rng(7)
    # .npy, rank == model rank: split along axis 0 into batch-1 samples.
    x = rng.standard_normal((5, 1, 28, 28)).astype(np.float32)
    np.save(f"{tmp}/split.npy", x)
    check_samples("npy_rank_equal_splits_axis0", MNIST, f"{tmp}/split.npy",
                  [{"Input3": x[i:i + 1]} for i in range(5)])
    check_samples("npy_max_samples_keeps_first", MNIST, f"{tmp}/split.npy",
                  [{"Input3": x[i:i + 1]} for i in range(2)], "--max", "2")
    check_samples("npy_random_access_reverse", MNIST, f"{tmp}/split.npy",
                  [{"Input3": x[i:i + 1]} for i in range(5)], "--reverse")
    # rank == model rank + 1: each leading index is one whole input.
    y = rng.uniform(0, 255, (3, 1, 1, 28, 28)).astype(np.float32)
    np.save(f"{tmp}/whole.npy", y)
    check_samples("npy_rank_plus_one_one_input_per_index", MNIST,
                  f"{tmp}/whole.npy", [{"Input3": y[i]} for i in range(3)])
    # big-endian data is swapped to the canonical little-endian layout.
    np.save(f"{tmp}/be.npy", x.astype(">f4"))
    check_samples("npy_big_endian_swapped", MNIST, f"{tmp}/be.npy",
                  [{"Input3": x[i:i + 1]} for i in range(5)])
    # the real calibration array, first samples.
    calib = np.load(CALIB, mmap_mode="r")
    check_samples("npy_squeezenet_calibration_array", SQUEEZE, CALIB,
                  [{"data_0": np.array(calib[i:i + 1])} for i in range(3)],
                  "--max", "3")

    # .npz with one array per input name, stored and deflated.
    two = f"{tmp}/two.onnx"
    two_input_model(two)
    a = rng.standard_normal((4, 2, 3)).astype(np.float32)      # split
    b = rng.integers(-10**12, 10**12, (4, 7, 5), dtype=np.int64)  # rank + 1
    want = [{"a": a[i:i + 1], "b": b[i]} for i in range(4)]
    np.savez(f"{tmp}/stored.npz", a=a, b=b)
    np.savez_compressed(f"{tmp}/deflated.npz", b=b, a=a)
    check_samples("npz_stored_one_array_per_input", two, f"{tmp}/stored.npz",
                  want)
    check_samples("npz_deflated_streams_in_order", two, f"{tmp}/deflated.npz",
                  want)
    check_samples("npz_deflated_restarts_for_earlier_index", two,
                  f"{tmp}/deflated.npz", want, "--reverse")
    # a deflated member larger than the 64 KiB buffers, read in reverse.
    big = rng.standard_normal((6, 1, 1, 28, 28)).astype(np.float32)
    np.savez_compressed(f"{tmp}/big.npz", Input3=big)
    check_samples("npz_deflated_large_member_any_order", MNIST,
                  f"{tmp}/big.npz", [{"Input3": big[i]} for i in range(6)],
                  "--reverse")

    # folder of test_data_set_N, ordered by number; pb names map inputs.
    root = f"{tmp}/sets"
    order = [0, 1, 2, 10]
    for n in order:
        d = f"{root}/test_data_set_{n}"
        os.makedirs(d)
        if n == 1:  # files in the other order, mapped by TensorProto name
            write_pb(f"{d}/input_0.pb", b[n % 4], "b")
            write_pb(f"{d}/input_1.pb", a[n % 4:n % 4 + 1], "a")
        else:
            write_pb(f"{d}/input_0.pb", a[n % 4:n % 4 + 1], "")
            write_pb(f"{d}/input_1.pb", b[n % 4], "")
    os.makedirs(f"{root}/other_folder")
    check_samples("folder_test_data_sets_numeric_order_and_names", two, root,
                  [{"a": a[n % 4:n % 4 + 1], "b": b[n % 4]} for n in order])
    check_samples("folder_max_samples", two, root,
                  [{"a": a[n % 4:n % 4 + 1], "b": b[n % 4]}
                   for n in order[:2]], "--max", "2")
    # folder holding input_N.pb directly: one sample.
    os.makedirs(f"{tmp}/direct")
    write_pb(f"{tmp}/direct/input_0.pb", y[1], "Input3")
    check_samples("folder_direct_input_pb_is_one_sample", MNIST,
                  f"{tmp}/direct", [{"Input3": y[1]}])
    # real model folders (ONNX backend-test layout).
    for model_dir, name, n in [(SQUEEZE_DIR, "data_0", 10),
                               (os.path.dirname(MNIST), "Input3", 3)]:
        exp = []
        for i in range(n):
            t = onnx.load_tensor(f"{model_dir}/test_data_set_{i}/input_0.pb")
            exp.append({name: numpy_helper.to_array(t)})
        check_samples(f"folder_{os.path.basename(model_dir)}", 
                      f"{model_dir}/model.onnx", model_dir, exp)


def expect_error(name, model, data, needles, *opts):
    rc, out, err = run(model, data, *opts)
    check(rc not in (0,) and rc < 128,
          f"{name}: exit {rc} (want a diagnostic, not success or a crash)")
    for s in needles:
        check(s in err, f"{name}: diagnostic lacks {s!r}: {err.strip()!r}")


def malformed_mode(tmp):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    p = f"{tmp}/f64.npy"
    np.save(p, x.astype(np.float64))
    expect_error("wrong_dtype_float64_for_float32", MNIST, p,
                 [p, "Input3", "DOUBLE", "FLOAT"])
    p = f"{tmp}/shape.npy"
    np.save(p, x[:, :, :, :27])
    expect_error("wrong_static_dim", MNIST, p, [p, "Input3", "[1,1,28,27]"])
    p = f"{tmp}/rank.npy"
    np.save(p, x[0, 0])
    expect_error("wrong_rank", MNIST, p, [p, "Input3", "rank 4"])
    p = f"{tmp}/empty.npy"
    np.save(p, x[:0])
    expect_error("empty_array_has_no_samples", MNIST, p,
                 [p, "Input3", "no samples"])
    p = f"{tmp}/trunc.npy"
    np.save(p, x)
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 100)
    expect_error("truncated_npy", MNIST, p, [p, "truncated"])
    p = f"{tmp}/trunc_header.npy"
    np.save(p, x)
    with open(p, "r+b") as f:
        f.truncate(40)
    expect_error("truncated_npy_header", MNIST, p, [p, "header"])
    p = f"{tmp}/fortran.npy"
    np.save(p, np.asfortranarray(x))
    expect_error("fortran_order", MNIST, p, [p, "Fortran"])

    two = f"{tmp}/two.onnx"
    two_input_model(two)
    a = rng.standard_normal((3, 2, 3)).astype(np.float32)
    b = rng.integers(0, 9, (3, 4, 5), dtype=np.int64)
    p = f"{tmp}/one.npy"
    np.save(p, a)
    expect_error("npy_for_two_input_model", two, p, [p, "exactly one input"])
    p = f"{tmp}/missing.npz"
    np.savez(p, a=a)
    expect_error("npz_missing_member", two, p, [p, "'b'", "b.npy"])
    p = f"{tmp}/extra.npz"
    np.savez(p, a=a, b=b, c=a)
    expect_error("npz_extra_member", two, p, [p, "c.npy"])
    p = f"{tmp}/counts.npz"
    np.savez(p, a=a, b=b[:2])
    expect_error("npz_sample_counts_differ", two, p, [p, "same count"])
    p = f"{tmp}/dtype.npz"
    np.savez_compressed(p, a=a, b=b.astype(np.int32))
    expect_error("npz_member_wrong_dtype", two, p, [p, "'b'", "INT32", "INT64"])
    p = f"{tmp}/corrupt.npz"
    np.savez_compressed(p, a=rng.standard_normal((3, 2, 3)).astype(np.float32),
                        b=rng.integers(0, 10**9, (3, 400, 5), dtype=np.int64))
    data = bytearray(open(p, "rb").read())
    mid = data.index(b"b.npy") + 600  # inside b's deflate stream
    for k in range(40):
        data[mid + k] ^= 0x5A
    open(p, "wb").write(bytes(data))
    rc, _, err = run(two, p)
    check(rc not in (0,) and rc < 128 and p in err and
          ("deflate" in err or "CRC" in err or "npy" in err),
          f"npz_corrupt_deflate_stream: exit {rc}: {err.strip()!r}")
    p = f"{tmp}/crc.npz"
    np.savez_compressed(p, a=a, b=b)
    data = bytearray(open(p, "rb").read())
    cen = data.index(b"PK\x01\x02")          # first central entry
    while data[cen + 46:cen + 46 + 5] != b"b.npy":
        cen = data.index(b"PK\x01\x02", cen + 4)
    data[cen + 16] ^= 0xFF                    # its CRC-32
    open(p, "wb").write(bytes(data))
    expect_error("npz_deflated_crc_mismatch", two, p,
                 [p, "b.npy", "CRC-32 mismatch"])
    p = f"{tmp}/cut.npz"
    np.savez(p, a=a, b=b)
    data = open(p, "rb").read()
    open(p, "wb").write(data[:len(data) // 2])
    expect_error("npz_truncated_archive", two, p, [p, "zip"])

    d = f"{tmp}/sets"
    os.makedirs(f"{d}/test_data_set_0")
    write_pb(f"{d}/test_data_set_0/input_0.pb", a[:1], "a")
    expect_error("folder_missing_input_pb", two, d, ["input_1.pb", "missing"])
    write_pb(f"{d}/test_data_set_0/input_1.pb", b[0].astype(np.float32), "")
    expect_error("folder_pb_wrong_dtype", two, d,
                 ["input_1.pb", "'b'", "FLOAT", "INT64"])
    os.makedirs(f"{tmp}/emptydir")
    expect_error("folder_without_samples", two, f"{tmp}/emptydir",
                 ["neither"])
    p = f"{tmp}/text.npy"
    open(p, "w").write("hello, not numpy\n")
    expect_error("not_a_data_file", MNIST, p, [p, "not a data set"])
    expect_error("missing_path", MNIST, f"{tmp}/nothing.npy",
                 ["nothing.npy", "cannot open"])


def oom_mode(tmp):
    rng = np.random.default_rng(5)
    two = f"{tmp}/two.onnx"
    two_input_model(two)
    a = rng.standard_normal((3, 2, 3)).astype(np.float32)
    b = rng.integers(0, 9, (3, 4, 5), dtype=np.int64)
    np.save(f"{tmp}/x.npy", rng.standard_normal((3, 1, 28, 28)).astype(
        np.float32))
    np.savez(f"{tmp}/stored.npz", a=a, b=b)
    np.savez_compressed(f"{tmp}/deflated.npz", a=a, b=b)
    cases = [(MNIST, f"{tmp}/x.npy", ()),
             (two, f"{tmp}/stored.npz", ()),
             (two, f"{tmp}/deflated.npz", ("--reverse",)),
             (MNIST, os.path.dirname(MNIST), ())]
    for model, data, opts in cases:
        rc, out, err = run(model, data, "--oom", *opts)
        w = out.split()
        check(rc == 0 and w[:1] == ["oom_runs"],
              f"oom {data}: exit {rc}: {out.strip()} {err.strip()[-300:]}")
        if rc == 0 and w[:1] == ["oom_runs"]:
            print(data, out.strip())
            check(int(w[1]) > 5, f"oom {data}: only {w[1]} runs")
            # nothing but arena blocks (64 KiB each) may stay allocated
            check(int(w[3]) <= 2 * 65536 + 4096,
                  f"oom {data}: {w[3]} bytes still allocated")


def memory_mode(tmp):
    def growth(data, *opts):
        rc, out, err = run(SQUEEZE, data, "--mem", *opts)
        check(rc == 0, f"memory run {data} {opts}: exit {rc}: {err.strip()}")
        vals = dict(l.split()[:2] for l in out.splitlines() if l.strip())
        print(data, opts, {k: vals.get(k) for k in
                           ("count", "hwm_growth_kb", "hwm_reset",
                            "maxrss_growth_kb")})
        return vals

    calib = np.load(CALIB)
    sample_kb = calib[0].nbytes // 1024
    whole_kb = calib.nbytes // 1024
    control = growth(CALIB, "--whole")
    # The measurement must see a whole-array read, or it proves nothing.
    check(int(control.get("hwm_growth_kb", 0)) > whole_kb * 3 // 4,
          f"control: reading the whole array grew VmHWM by only "
          f"{control.get('hwm_growth_kb')} KiB (array {whole_kb} KiB)")
    np.savez(f"{tmp}/calib_stored.npz", data_0=calib)
    np.savez_compressed(f"{tmp}/calib_deflated.npz", data_0=calib)
    for data in (CALIB, f"{tmp}/calib_stored.npz",
                 f"{tmp}/calib_deflated.npz"):
        for opts in ((), ("--reverse",)):
            v = growth(data, *opts)
            check(v.get("count") == str(calib.shape[0]),
                  f"{data}: count {v.get('count')}")
            # one sample (588 KiB) plus allocator slack and zlib state.
            limit = 3 * sample_kb + 1024
            check(int(v.get("hwm_growth_kb", 1 << 30)) < limit,
                  f"{data} {opts}: peak RSS grew {v.get('hwm_growth_kb')} "
                  f"KiB, above {limit} KiB (the array is {whole_kb} KiB)")


with tempfile.TemporaryDirectory() as tmp:
    {"samples": samples_mode, "malformed": malformed_mode,
     "oom": oom_mode, "memory": memory_mode}[MODE](tmp)

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("ok")
