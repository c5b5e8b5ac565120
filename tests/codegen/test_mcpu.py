"""Honest targets (issue 18): `octet compile --mcpu=NAME` compiles for that
CPU's features only, never the host's.

For a conv model and a matmul model, FP32 and INT8 (QDQ, fused into the
integer kernels): objects compiled with --mcpu=haswell and
--mcpu=x86-64-v3 hold no AVX-512 instruction (no zmm or xmm16-31/ymm16-31
register, no mask register, no {evex}, no vpdpbusd) and no AMX one; their
header and report name the CPU and the AVX2 kernel variant; their shared
libraries run here and match the interpreter (INT8 bit for bit on the
fused graph, FP32 within 1e-4 of the output's scale).  As a control that
the scan can fail, on a host with AVX-512 VNNI the default (native) INT8
objects do hold zmm/vpdpbusd code.  --mattr adds: x86-64-v4 alone gets
the AVX2 kernels (it has no VNNI), with +avx512vnni the VNNI ones.  An
unknown CPU is a usage error (exit 2) naming it, without LLVM's warning;
a list of CPUs is refused (exit 3) as not implemented."""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import cgutil  # noqa: E402

PIPELINE = "shape_infer,fold,shape_infer,qdq_fuse"
failures = 0


def check(cond, what):
    global failures
    print("%s  %s" % ("ok  " if cond else "FAIL", what), flush=True)
    failures += not cond


def octet(*args):
    return subprocess.run([cgutil.OCTET, *args], capture_output=True, text=True)


def host_has(*flags):
    with open("/proc/cpuinfo") as f:
        words = set(f.read().split())
    return all(fl in words for fl in flags)


rng = np.random.default_rng(18)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def save(path, nodes, inits, x_shape, y_name, y_type, y_shape):
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(y_name, y_type, y_shape)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def conv_models(d):
    """(fp32 path, int8 QDQ path): 3x3 Conv 8 -> 32 channels + bias + Relu."""
    w = rng.normal(0, 0.2, (32, 8, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 32).astype(np.float32)
    fp = os.path.join(d, "conv_fp32.onnx")
    save(fp, [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c"], ["y"])],
         [init("w", w), init("b", b)], [1, 8, 20, 20], "y", TensorProto.FLOAT, [1, 32, 20, 20])
    sx, zx = np.float32(0.03), np.uint8(128)
    sw = (np.abs(w).reshape(32, -1).max(1) / 127).astype(np.float32)
    wq = np.clip(np.round(w / sw[:, None, None, None]), -127, 127).astype(np.int8)
    bq = np.round(b / (sx * sw)).astype(np.int32)
    q = os.path.join(d, "conv_int8.onnx")
    save(q, [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"], axis=0),
             helper.make_node("DequantizeLinear", ["bq", "sb", "zb"], ["bd"], axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "sy", "zy"], ["y"])],
         [init("sx", sx), init("zx", zx), init("wq", wq), init("sw", sw),
          init("zw", np.zeros(32, np.int8)), init("bq", bq), init("sb", sx * sw),
          init("zb", np.zeros(32, np.int32)), init("sy", np.float32(0.05)),
          init("zy", np.uint8(0))],
         [1, 8, 20, 20], "y", TensorProto.UINT8, [1, 32, 20, 20])
    return fp, q, [1, 8, 20, 20]


def matmul_models(d):
    """(fp32 path, int8 QDQ path): [8,256] x [256,96] MatMul + Add."""
    w = rng.normal(0, 0.1, (256, 96)).astype(np.float32)
    b = rng.normal(0, 0.1, 96).astype(np.float32)
    fp = os.path.join(d, "mm_fp32.onnx")
    save(fp, [helper.make_node("MatMul", ["x", "w"], ["m"]),
              helper.make_node("Add", ["m", "b"], ["y"])],
         [init("w", w), init("b", b)], [8, 256], "y", TensorProto.FLOAT, [8, 96])
    sx, zx = np.float32(0.03), np.uint8(128)
    sw = (np.abs(w).max(0) / 127).astype(np.float32)
    wq = np.clip(np.round(w / sw[None, :]), -127, 127).astype(np.int8)
    q = os.path.join(d, "mm_int8.onnx")
    save(q, [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"], axis=1),
             helper.make_node("MatMul", ["xd", "wd"], ["m"]),
             helper.make_node("QuantizeLinear", ["m", "sy", "zy"], ["y"])],
         [init("sx", sx), init("zx", zx), init("wq", wq), init("sw", sw),
          init("zw", np.zeros(96, np.int8)), init("sy", np.float32(0.08)),
          init("zy", np.uint8(128))],
         [8, 256], "y", TensorProto.UINT8, [8, 96])
    return fp, q, [8, 256]


# AVX-512 needs EVEX: zmm registers, xmm/ymm 16-31, mask registers, or
# objdump's {evex} mark; VNNI's vpdpbusd exists in VEX form only with
# AVX-VNNI, which neither haswell nor x86-64-v3 has.  AMX: tile ops.
AVX512 = re.compile(r"%zmm\d|%[xy]mm(1[6-9]|2\d|3[01])\b|%k[1-7]\b|\{evex\}|vpdpbusd")
AMX = re.compile(r"\b(ldtilecfg|sttilecfg|tileloadd\w*|tilestored|tilezero|tilerelease|tdp\w+)\b")


def disasm_hits(obj):
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj], check=True,
                          capture_output=True, text=True).stdout
    insns = [l for l in text.splitlines() if re.match(r"\s+[0-9a-f]+:\t", l)]
    avx512 = [l.strip() for l in insns if AVX512.search(l)]
    amx = [l.strip() for l in insns if AMX.search(l)]
    return len(insns), avx512, amx


def compile_to(model, d, name, extra):
    base = os.path.join(d, name)
    p = octet("compile", model, "-o", base, "--emit=obj,so,header", "--report",
              base + ".report", *extra)
    return p, base


def compare(model, base, name, x_shape, integer):
    x = rng.normal(0, 1, x_shape).astype(np.float32)
    _, got = cgutil.run_so(base + ".so", name, [x])
    with tempfile.TemporaryDirectory() as t:
        fused = os.path.join(t, "fused.onnx")
        subprocess.run([cgutil.OCTET, "opt", model, "--passes=" + PIPELINE, "-o", fused],
                       check=True)
        want = list(cgutil.run_ref(fused, [("x", x)]).values())
    ok, how = cgutil.same(got[0], want[0], 1e-4) if not integer else (
        np.array_equal(got[0], want[0]),
        "%d of %d bytes differ" % (int(np.sum(got[0] != want[0])), want[0].size))
    return ok, how


def main():
    with tempfile.TemporaryDirectory() as d:
        conv_fp, conv_q, conv_shape = conv_models(d)
        mm_fp, mm_q, mm_shape = matmul_models(d)
        models = [("conv_fp32", conv_fp, conv_shape, False), ("conv_int8", conv_q, conv_shape, True),
                  ("mm_fp32", mm_fp, mm_shape, False), ("mm_int8", mm_q, mm_shape, True)]

        for cpu in ("haswell", "x86-64-v3"):
            for tag, model, shape, integer in models:
                name = "%s_%s" % (tag, cpu.replace("-", "_"))
                p, base = compile_to(model, d, name, ["--mcpu=" + cpu])
                check(p.returncode == 0, "%s --mcpu=%s compiles (%s)" % (tag, cpu, p.stderr.strip()[-300:]))
                if p.returncode:
                    continue
                n, avx512, amx = disasm_hits(base + ".o")
                check(n > 100 and not avx512, "%s --mcpu=%s: no AVX-512 instruction in %d (%s)"
                      % (tag, cpu, n, avx512[:3]))
                check(not amx, "%s --mcpu=%s: no AMX instruction (%s)" % (tag, cpu, amx[:3]))
                head = open(base + ".h").read().split("*/")[0]
                check("cpu %s)" % cpu in head and "+avx2" in head and "-avx512f" in head
                      and "kernels: avx2" in head and "native" not in head,
                      "%s --mcpu=%s: the header names the CPU, its features and the AVX2 "
                      "kernels: %s" % (tag, cpu, head.splitlines()[:2]))
                rep = open(base + ".report").read()
                check(("cpu %s)" % cpu) in rep and "kernels: avx2" in rep and "vpdpbusd" not in rep,
                      "%s --mcpu=%s: the report names the CPU and no VNNI path" % (tag, cpu))
                ok, how = compare(model, base, name, shape, integer)
                check(ok, "%s --mcpu=%s runs and matches the interpreter%s: %s"
                      % (tag, cpu, " bit for bit" if integer else "", how))

        # control: the scan finds AVX-512 in what the host's features produce
        if host_has("avx512f", "avx512bw", "avx512vl", "avx512_vnni"):
            for tag, model, shape, integer in models[1::2]:
                p, base = compile_to(model, d, tag + "_native", [])
                n, avx512, _ = disasm_hits(base + ".o")
                head = open(base + ".h").read().split("*/")[0]
                check(p.returncode == 0 and avx512 and "native: the host's" in head
                      and "kernels: avx512-vnni" in head,
                      "%s native (host has AVX-512 VNNI): the header says native and the "
                      "scan finds %d AVX-512 instructions" % (tag, len(avx512)))
                ok, how = compare(model, base, tag + "_native", shape, integer)
                check(ok, "%s native matches the interpreter bit for bit: %s" % (tag, how))
        else:
            print("note: this host has no AVX-512 VNNI; the native control is skipped")

        # --mattr adds to the named CPU's features
        p, base = compile_to(conv_q, d, "v4", ["--mcpu=x86-64-v4"])
        rep = open(base + ".report").read() if p.returncode == 0 else ""
        check("kernels: avx2" in rep and "+avx512f" in rep and "-avx512vnni" in rep,
              "x86-64-v4 has AVX-512 F but no VNNI: AVX2 kernels (%s)" % rep.splitlines()[:2])
        p, base = compile_to(conv_q, d, "v4vnni", ["--mcpu=x86-64-v4", "--mattr=+avx512vnni"])
        rep = open(base + ".report").read() if p.returncode == 0 else ""
        n, avx512, _ = disasm_hits(base + ".o") if p.returncode == 0 else (0, [], [])
        check("kernels: avx512-vnni" in rep and any("vpdpbusd" in l for l in avx512),
              "x86-64-v4 --mattr=+avx512vnni: VNNI kernels, vpdpbusd in the object")
        if host_has("avx512_vnni"):
            ok, how = compare(conv_q, base, "v4vnni", conv_shape, True)
            check(ok, "x86-64-v4+avx512vnni matches the interpreter bit for bit: %s" % how)

        # bad names are diagnosed, not passed to LLVM
        p = octet("compile", conv_fp, "-o", os.path.join(d, "bad"), "--mcpu=nonsense")
        check(p.returncode == 2 and "unknown CPU 'nonsense'" in p.stderr
              and "not a recognized processor" not in p.stderr
              and not os.path.exists(os.path.join(d, "bad.o")),
              "--mcpu=nonsense: exit 2 naming it, nothing written (%d: %s)"
              % (p.returncode, p.stderr.strip()))
        p = octet("compile", conv_fp, "-o", os.path.join(d, "list"),
                  "--mcpu=x86-64-v3,x86-64-v4")
        check(p.returncode == 3 and "not implemented" in p.stderr,
              "--mcpu with a list: refused as not implemented (%d: %s)"
              % (p.returncode, p.stderr.strip()))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
