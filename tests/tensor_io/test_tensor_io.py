"""Tensor file I/O against numpy: every .npy numpy writes for a numeric dtype
reads back as numpy's own np.load sees it; .npz archives (savez and
savez_compressed) read member by member; TensorProto .pb files read like
onnx.numpy_helper.to_array; the .npy writer produces the exact bytes np.save
does; and malformed files (truncated, corrupted CRC, bad headers, Fortran
order, object/string/complex dtypes) are refused with a diagnostic naming the
problem.

usage: test_tensor_io.py NPY_TOOL
"""
import io
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np
import onnx
from onnx import numpy_helper

TOOL = sys.argv[1]
FAILS = []
CHECKS = 0

ONNX_NAME = {
    "float16": "FLOAT16", "float32": "FLOAT", "float64": "DOUBLE",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32",
    "uint64": "UINT64", "bool": "BOOL",
}


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)


def run(*args):
    return subprocess.run([TOOL, *args], capture_output=True, text=True)


def parse(out):
    """Tool output -> list of (name, dtype, shape tuple, bytes)."""
    lines = out.splitlines()
    res = []
    for i in range(0, len(lines), 4):
        name = lines[i][5:]
        dtype = lines[i + 1].split()[1]
        shape = tuple(int(x) for x in lines[i + 2].split()[1:])
        data = bytes.fromhex(lines[i + 3][5:])
        res.append((name, dtype, shape, data))
    return res


def expect_tensor(got, arr, name, what):
    """got (from the tool) must equal numpy's view of arr."""
    arr = np.asarray(arr)
    le = arr.astype(arr.dtype.newbyteorder("<"))
    check(got[0] == name, f"{what}: name {got[0]!r} != {name!r}")
    check(got[1] == ONNX_NAME[arr.dtype.name],
          f"{what}: dtype {got[1]} != {arr.dtype.name}")
    check(got[2] == arr.shape, f"{what}: shape {got[2]} != {arr.shape}")
    check(got[3] == np.ascontiguousarray(le).tobytes(),
          f"{what}: data differs")


def expect_fail(path, needles, what, cmd="read", status=None):
    r = run(cmd, path)
    check(r.returncode != 0, f"{what}: accepted a bad file")
    for n in needles:
        check(n in r.stderr, f"{what}: diagnostic lacks {n!r}: {r.stderr!r}")
    check(os.path.basename(path) in r.stderr,
          f"{what}: diagnostic does not name the file: {r.stderr!r}")
    if status is not None:
        check(r.returncode == status,
              f"{what}: exit {r.returncode}, expected {status}")


def zip64_archive(members):
    """A stored zip written by hand with every zip64 feature: 0xffffffff
    sizes and offsets in local and central headers with the real values in
    zip64 extra fields, and zip64 end of central directory record and
    locator with 0xffff/0xffffffff in the classic end record."""
    out = bytearray()
    central = bytearray()
    for name, data in members:
        n = name.encode()
        crc = zlib.crc32(data)
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 0, 0, 0, crc,
                           0xffffffff, 0xffffffff, len(n), 20)
        out += n + struct.pack("<HHQQ", 1, 16, len(data), len(data)) + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 0,
                               0, 0, crc, 0xffffffff, 0xffffffff, len(n), 28,
                               0, 0, 0, 0, 0xffffffff)
        central += n + struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
    cd_off = len(out)
    out += central
    rec = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0,
                       len(members), len(members), len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064b50, 0, rec, 1)
    out += struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xffff, 0xffff,
                       0xffffffff, 0xffffffff, 0)
    return bytes(out)


def rng_array(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = rng.standard_normal(shape).astype(dt) * 100
        if a.size >= 4:
            flat = a.reshape(-1)
            flat[:4] = [np.inf, -np.inf, np.nan, -0.0]
        return a
    if dt.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)


def main():
    tmp = tempfile.mkdtemp(prefix="octet_tensor_io_")
    shapes = [(), (0,), (3, 0, 2), (7,), (2, 3), (2, 3, 4, 5), (1000, 37)]
    n = 0
    # Every numeric dtype, both byte orders, several shapes.
    for dname in ONNX_NAME:
        orders = ["<", ">"] if np.dtype(dname).itemsize > 1 else ["|"]
        for order in orders:
            for shape in shapes:
                if shape == (1000, 37) and dname not in ("float32", "int64"):
                    continue
                n += 1
                arr = rng_array(dname, shape, n)
                if order == ">":
                    arr = arr.astype(arr.dtype.newbyteorder(">"))
                path = os.path.join(tmp, f"t{n}.npy")
                np.save(path, arr)
                r = run("read", path)
                what = f"{dname}{order}{shape}"
                check(r.returncode == 0, f"{what}: refused: {r.stderr}")
                if r.returncode == 0:
                    expect_tensor(parse(r.stdout)[0], np.load(path), f"t{n}",
                                  what)
                # The writer: same bytes as np.save of the little-endian array.
                out = os.path.join(tmp, f"w{n}.npy")
                r = run("copy", path, out)
                check(r.returncode == 0, f"{what}: copy failed: {r.stderr}")
                if r.returncode == 0:
                    buf = io.BytesIO()
                    np.save(buf, np.load(path).astype(
                        arr.dtype.newbyteorder("<")))
                    with open(out, "rb") as f:
                        mine = f.read()
                    check(mine == buf.getvalue(),
                          f"{what}: written .npy differs from np.save's")
                    hlen = struct.unpack("<H", mine[8:10])[0]
                    check((10 + hlen) % 64 == 0,
                          f"{what}: data not 64-byte aligned")

    # Format versions 2.0 and 3.0 (numpy picks them only when forced).
    for ver in [(2, 0), (3, 0)]:
        arr = np.arange(12, dtype=np.int32).reshape(3, 4)
        path = os.path.join(tmp, f"v{ver[0]}.npy")
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=ver)
        r = run("read", path)
        check(r.returncode == 0, f"version {ver}: refused: {r.stderr}")
        if r.returncode == 0:
            expect_tensor(parse(r.stdout)[0], arr, f"v{ver[0]}",
                          f"version {ver}")

    # .npz: stored and deflated, several members.
    members = {"weights": rng_array("float32", (4, 5), 1),
               "bias": rng_array("float32", (5,), 2),
               "ids": rng_array("int64", (3, 2), 3),
               "mask": rng_array("bool", (6,), 4),
               "scalar": np.float64(2.5),
               "empty": np.zeros((0, 4), np.float16),
               "big": rng_array("int8", (300, 300), 5)}
    for kind, fn in [("savez", np.savez), ("savez_compressed",
                                           np.savez_compressed)]:
        path = os.path.join(tmp, f"{kind}.npz")
        fn(path, **members)
        r = run("npz", path)
        check(r.returncode == 0, f"{kind}: refused: {r.stderr}")
        if r.returncode == 0:
            got = {t[0]: t for t in parse(r.stdout)}
            ref = np.load(path)
            check(sorted(got) == sorted(ref.files),
                  f"{kind}: members {sorted(got)} != {sorted(ref.files)}")
            for name in ref.files:
                if name in got:
                    expect_tensor(got[name], ref[name], name, f"{kind}:{name}")
    # Positional arrays get numpy's arr_0, arr_1 names.
    path = os.path.join(tmp, "positional.npz")
    np.savez(path, np.arange(3, dtype=np.uint16), np.ones((2, 2), np.uint8))
    r = run("npz", path)
    check(r.returncode == 0 and [t[0] for t in parse(r.stdout)] ==
          ["arr_0", "arr_1"], f"positional npz: {r.stdout} {r.stderr}")

    # Hand-made zip64 archive (zip64 extras in central entries, zip64 end
    # records); numpy reads it too.
    arrs = {"p": np.arange(5, dtype=np.int16), "q": np.eye(3)}
    mem = []
    for name, a in arrs.items():
        b = io.BytesIO()
        np.save(b, a)
        mem.append((name + ".npy", b.getvalue()))
    path = os.path.join(tmp, "zip64.npz")
    with open(path, "wb") as f:
        f.write(zip64_archive(mem))
    ref = np.load(path)
    r = run("npz", path)
    check(r.returncode == 0, f"zip64 npz: refused: {r.stderr}")
    if r.returncode == 0:
        got = parse(r.stdout)
        check([g[0] for g in got] == ["p", "q"], "zip64 npz: member names")
        for g in got:
            expect_tensor(g, ref[g[0]], g[0], f"zip64:{g[0]}")

    # TensorProto .pb, read like onnx.numpy_helper.to_array.
    for i, arr in enumerate([np.arange(6, dtype=np.float32).reshape(2, 3),
                             np.array([-3, 7], np.int8)]):
        path = os.path.join(tmp, f"pb{i}.pb")
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(arr, "x").SerializeToString())
        r = run("read", path)
        check(r.returncode == 0, f"pb{i}: refused: {r.stderr}")
        if r.returncode == 0:
            expect_tensor(parse(r.stdout)[0], numpy_helper.to_array(
                onnx.load_tensor(path)), "x", f"pb{i}")
    # A float8 tensor cannot be written as .npy: OCT_EUNSUPPORTED (3).
    t = onnx.helper.make_tensor("f8", onnx.TensorProto.FLOAT8E4M3FN, [2],
                                [1.0, 2.0])
    path = os.path.join(tmp, "f8.pb")
    with open(path, "wb") as f:
        f.write(t.SerializeToString())
    r = run("copy", path, os.path.join(tmp, "f8.npy"))
    check(r.returncode == 3 and "FLOAT8E4M3FN" in r.stderr,
          f"float8 to npy: exit {r.returncode}: {r.stderr}")
    check(not os.path.exists(os.path.join(tmp, "f8.npy")),
          "float8 to npy left a file behind")

    # ---- malformed .npy files ------------------------------------------
    def npy_bytes(header, data=b"", magic=b"\x93NUMPY", ver=b"\x01\x00"):
        h = header.encode()
        return magic + ver + struct.pack("<H", len(h)) + h + data

    def pad(d):
        return d + " " * (63 - (10 + len(d)) % 64) + "\n"

    good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
    bad_files = [
        ("bad_magic", npy_bytes(pad(good), b"\0" * 8, magic=b"\x93NUMPZ"),
         ["magic"], "read"),
        ("version_9", npy_bytes(pad(good), b"\0" * 8, ver=b"\x09\x00"),
         ["version 9.0"], "read"),
        ("header_past_end", b"\x93NUMPY\x01\x00\xff\xff{'descr'", ["past the end"],
         "read"),
        ("no_newline", npy_bytes(good, b"\0" * 8), ["newline"], "read"),
        ("missing_shape", npy_bytes(pad(
            "{'descr': '<f4', 'fortran_order': False, }"), b""),
         ["lacks 'shape'"], "read"),
        ("extra_key", npy_bytes(pad(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
            "'x': 1, }"), b"\0" * 8), ["unexpected or repeated key 'x'"],
         "read"),
        ("negative_dim", npy_bytes(pad(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }")),
         ["negative"], "read"),
        ("overflow_shape", npy_bytes(pad(
            "{'descr': '<f4', 'fortran_order': False, 'shape': "
            "(4294967296, 4294967296, 16), }")), ["overflows"], "read"),
        ("huge_dim", npy_bytes(pad(
            "{'descr': '<f4', 'fortran_order': False, 'shape': "
            "(99999999999999999999,), }")), ["64 bits"], "read"),
        ("too_many_elems", npy_bytes(pad(
            "{'descr': '<f4', 'fortran_order': False, 'shape': "
            "(65536, 65537), }")), ["above the limit"], "read"),
        ("rank_17", npy_bytes(pad(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
            "1, " * 17 + "), }"), b"\0" * 4), ["rank limit"], "read"),
        ("bad_descr", npy_bytes(pad(
            "{'descr': '<f3', 'fortran_order': False, 'shape': (2,), }"),
            b"\0" * 6), ["'<f3'"], "read"),
        ("not_a_dict", npy_bytes(pad("['descr', '<f4']")), ["not a Python dict"],
         "read"),
        ("trailing_bytes", npy_bytes(pad(good), b"\0" * 9),
         ["9 bytes", "need 8", "trailing"], "read"),
        ("bad_fortran", npy_bytes(pad(
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }"),
            b"\0" * 8), ["fortran_order"], "read"),
    ]
    for name, content, needles, cmd in bad_files:
        path = os.path.join(tmp, name + ".npy")
        with open(path, "wb") as f:
            f.write(content)
        expect_fail(path, needles, name, cmd, status=None)

    # Files numpy itself writes that octet refuses, and truncations.
    arr = np.arange(24, dtype=np.float64).reshape(4, 6)
    cases = [
        ("fortran", np.asfortranarray(arr), ["Fortran"], 3),
        ("object", np.array([1, "a", None], dtype=object), ["'|O'"], 3),
        ("unicode", np.array(["ab", "c"]), ["'<U2'"], 3),
        ("bytes", np.array([b"ab", b"c"]), ["'|S2'"], 3),
        ("complex", np.arange(3, dtype=np.complex64), ["'<c8'"], 3),
        ("structured", np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]),
         ["structured"], 3),
        ("datetime", np.array(["2020-01-01"], dtype="datetime64[D]"),
         ["'<M8[D]'"], 3),
    ]
    for name, a, needles, status in cases:
        path = os.path.join(tmp, name + ".npy")
        np.save(path, a, allow_pickle=True)
        expect_fail(path, needles, name, status=status)
    path = os.path.join(tmp, "full.npy")
    np.save(path, arr)
    with open(path, "rb") as f:
        full = f.read()
    for cut in [5, 9, 40, len(full) - 1, len(full) - 100]:
        tpath = os.path.join(tmp, f"trunc{cut}.npy")
        with open(tpath, "wb") as f:
            f.write(full[:cut])
        r = run("read", tpath)
        check(r.returncode == 2, f"truncated at {cut}: exit {r.returncode}")
        if cut > 128:
            check(f"npy data is {cut - 128} bytes" in r.stderr and
                  "need 192" in r.stderr,
                  f"truncated at {cut}: no expected vs actual: {r.stderr}")

    # ---- malformed .npz files ------------------------------------------
    path = os.path.join(tmp, "savez.npz")
    with open(path, "rb") as f:
        z = bytearray(f.read())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("weights.npy")
    # Data offset: local header + name + extra.
    nlen, xlen = struct.unpack("<HH", z[info.header_offset + 26:
                                        info.header_offset + 30])
    data_off = info.header_offset + 30 + nlen + xlen

    def write(name, content):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(content)
        return p

    bad = bytearray(z)
    bad[data_off + 200] ^= 0x55
    expect_fail(write("crc.npz", bad), ["CRC-32 mismatch", "weights.npy"],
                "corrupted CRC", "npz", 2)
    expect_fail(write("cut.npz", z[:len(z) // 2]),
                ["end of central directory"], "truncated npz", "npz", 2)
    bad = bytearray(z)
    eocd = bad.rfind(b"PK\x05\x06")
    bad[eocd + 16:eocd + 20] = struct.pack("<I", len(z) + 1000)
    expect_fail(write("cdoff.npz", bad), ["outside"],
                "central directory offset out of range", "npz", 2)
    bad = bytearray(z)
    cen = bad.find(b"PK\x01\x02")
    bad[cen + 10:cen + 12] = struct.pack("<H", 12)  # bzip2
    expect_fail(write("method.npz", bad), ["method 12"], "bzip2 member",
                "npz", 3)
    bad = bytearray(z)
    bad[cen + 8:cen + 10] = struct.pack("<H", 1)  # encrypted flag
    expect_fail(write("enc.npz", bad), ["encrypted"], "encrypted member",
                "npz", 3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    expect_fail(write("txt.npz", buf.getvalue()), ["not an .npy"],
                "non-npy member", "npz", 2)
    buf = io.BytesIO()
    one = io.BytesIO()
    np.save(one, np.arange(3))
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.npy", one.getvalue())
        zf.writestr("a.npy", one.getvalue())
    expect_fail(write("dup.npz", buf.getvalue()), ["twice"],
                "duplicate member", "npz", 2)
    # A deflated member whose declared size is a lie.
    cpath = os.path.join(tmp, "savez_compressed.npz")
    with open(cpath, "rb") as f:
        cz = bytearray(f.read())
    cen = cz.find(b"PK\x01\x02")
    usize = struct.unpack("<I", cz[cen + 24:cen + 28])[0]
    cz[cen + 24:cen + 28] = struct.pack("<I", usize - 1)
    expect_fail(write("usize.npz", cz), ["inflates to more"],
                "understated deflate size", "npz", 2)

    print(f"{CHECKS} checks, {len(FAILS)} failures")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
