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
unknown CPU is a usage error (exit 1) naming it, without LLVM's warning.

The multi-target library (--mcpu=x86-64-v3,x86-64-v4,icelake-server,
sapphirerapids) of each model exports exactly the header's symbols plus
NAME_variant; run with OCTET_FORCE_VARIANT set to each variant (one
process each: the choice is made at load), a variant whose features this
CPU has (from /proc/cpuinfo, read independently of the dispatcher's
CPUID code) runs, says so through NAME_variant and gives the
interpreter's outputs; one it lacks (sapphirerapids here: no AMX, no
AVX512-FP16) is refused with a message naming the missing features and
the entry points return 2.  Unforced, the runnable variant with the most
features is chosen; a name that is no variant is refused.  In the
object, the code reachable from the x86-64-v3 variant's entry holds no
AVX-512 instruction, and on INT8 the icelake-server variant's uses
vpdpbusd where x86-64-v4's (no VNNI) does not.  A symbolic
batch's NAME_run_dims forwards to the forced variant too.  The runtime
(liboctet_runtime.a/.so, linked beside models) holds no AVX instruction:
it is built for baseline x86-64, not the build machine.

AMX (`--mcpu=sapphirerapids`, a 40 x 300 x 50 INT8 MatMul and the INT8
conv): the header names the amx-int8 kernels and the object holds tile
instructions; run against the interpreter bit for bit only on a CPU with
AMX-INT8, a note otherwise.  In the multi-target library only the
sapphirerapids variant holds tile products."""
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


def matmul_models(d, rows=8, k=256, n=96, tag="mm"):
    """(fp32 path, int8 QDQ path): [rows,k] x [k,n] MatMul + Add."""
    w = rng.normal(0, 0.1, (k, n)).astype(np.float32)
    b = rng.normal(0, 0.1, n).astype(np.float32)
    fp = os.path.join(d, tag + "_fp32.onnx")
    save(fp, [helper.make_node("MatMul", ["x", "w"], ["m"]),
              helper.make_node("Add", ["m", "b"], ["y"])],
         [init("w", w), init("b", b)], [rows, k], "y", TensorProto.FLOAT, [rows, n])
    sx, zx = np.float32(0.03), np.uint8(128)
    sw = (np.abs(w).max(0) / 127).astype(np.float32)
    wq = np.clip(np.round(w / sw[None, :]), -127, 127).astype(np.int8)
    q = os.path.join(d, tag + "_int8.onnx")
    save(q, [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"], axis=1),
             helper.make_node("MatMul", ["xd", "wd"], ["m"]),
             helper.make_node("QuantizeLinear", ["m", "sy", "zy"], ["y"])],
         [init("sx", sx), init("zx", zx), init("wq", wq), init("sw", sw),
          init("zw", np.zeros(n, np.int8)), init("sy", np.float32(0.08)),
          init("zy", np.uint8(128))],
         [rows, k], "y", TensorProto.UINT8, [rows, n])
    return fp, q, [rows, k]


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


def variant_code(obj):
    """{function symbol: [instruction lines]} of an object."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj], check=True,
                          capture_output=True, text=True).stdout
    funcs, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"[0-9a-f]+ <(.+)>:$", line)
        if m:
            cur = funcs.setdefault(m.group(1), [])
        elif cur is not None and re.match(r"\s+[0-9a-f]+:\t", line):
            cur.append(line)
    return funcs


def reachable(funcs, root):
    """The instructions of root and of every function it calls or jumps to."""
    seen, todo, code = set(), [root], []
    while todo:
        f = todo.pop()
        if f in seen or f not in funcs:
            continue
        seen.add(f)
        for line in funcs[f]:
            code.append(line)
            m = re.search(r"\b(call|jmp)\w*\s+[0-9a-f]+ <([^+>]+)>", line)
            if m:
                todo.append(m.group(2))
    return code


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


CPUS = ["x86-64-v3", "x86-64-v4", "icelake-server", "sapphirerapids"]
# LLVM feature name -> /proc/cpuinfo flag, where they differ
CPUINFO = {"avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16",
           "avx512fp16": "avx512_fp16", "amx-tile": "amx_tile", "amx-int8": "amx_int8",
           "amx-bf16": "amx_bf16", "sse4.2": "sse4_2", "lzcnt": "abm", "bmi": "bmi1",
           "avx512vbmi2": "avx512_vbmi2", "avx512bitalg": "avx512_bitalg",
           "avx512vpopcntdq": "avx512_vpopcntdq", "avxvnni": "avx_vnni", "sha": "sha_ni",
           "vpclmulqdq": "vpclmulqdq", "gfni": "gfni", "vaes": "vaes"}

# runs NAME_run of a library in a fresh process (the variant is chosen at
# load): prints the chosen variant, saves the output or prints the status
RUNNER = r"""
import ctypes, json, sys
import numpy as np
so, name, xin, out = sys.argv[1:5]
lib = ctypes.CDLL(so)
variant = getattr(lib, name + "_variant")
variant.restype = ctypes.c_char_p
v = variant()
print("variant=%s" % (v.decode() if v else "NULL"))
sig = json.loads(ctypes.string_at(ctypes.addressof(ctypes.c_char.in_dll(lib, name + "_signature"))))
x = np.load(xin)
o = sig["outputs"][0]
y = np.zeros(o["shape"], dtype=o["dtype"])
scratch = np.zeros(sig["scratch_size"] + 64, np.uint8)
addr = (scratch.ctypes.data + 63) // 64 * 64
ins = (ctypes.c_void_p * 1)(x.ctypes.data)
outs = (ctypes.c_void_p * 1)(y.ctypes.data)
run = getattr(lib, name + "_run")
run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
rc = run(ins, outs, ctypes.c_void_p(addr))
print("rc=%d" % rc)
if rc == 0:
    np.save(out, y)
"""


def run_variant(so, name, x, d, force):
    xin, out = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
    np.save(xin, x)
    if os.path.exists(out):
        os.unlink(out)
    env = dict(os.environ)
    env.pop("OCTET_FORCE_VARIANT", None)
    if force is not None:
        env["OCTET_FORCE_VARIANT"] = force
    p = subprocess.run([sys.executable, "-c", RUNNER, so, name, xin, out], env=env,
                       capture_output=True, text=True)
    variant = re.search(r"variant=(\S+)", p.stdout)
    rc = re.search(r"rc=(\d+)", p.stdout)
    return (variant.group(1) if variant else None, int(rc.group(1)) if rc else None,
            np.load(out) if os.path.exists(out) else None, p.stderr)


def multi_target(d, tag, model, shape, integer):
    name = tag + "_multi"
    p, base = compile_to(model, d, name, ["--mcpu=" + ",".join(CPUS)])
    check(p.returncode == 0, "%s --mcpu=%s compiles (%s)" % (tag, ",".join(CPUS),
                                                              p.stderr.strip()[-300:]))
    if p.returncode:
        return
    syms = subprocess.run(["nm", "-D", "--defined-only", base + ".so"], capture_output=True,
                          text=True).stdout.split()[2::3]
    want_syms = {name + s for s in ("_run", "_run_threads", "_scratch_size", "_signature",
                                    "_variant")}
    check(set(syms) == want_syms, "%s multi: exports %s" % (tag, sorted(syms)))
    # each variant's code (its entry function and every function it calls,
    # by the symbols of the object) is compiled for its CPU
    funcs = variant_code(base + ".o")
    for k, cpu in enumerate(CPUS):
        code = reachable(funcs, "%s__v%d_run_threads" % (name, k))
        avx512 = [l for l in code if AVX512.search(l)]
        if cpu == "x86-64-v3":
            check(len(code) > 100 and not avx512, "%s multi: the x86-64-v3 variant's %d "
                  "instructions hold no AVX-512 one (%s)" % (tag, len(code), avx512[:3]))
        if integer and cpu in ("x86-64-v4", "icelake-server"):
            vnni = sum("vpdpbusd" in l for l in code)
            check((vnni > 0) == (cpu == "icelake-server"),
                  "%s multi: the %s variant %s vpdpbusd (%d)" % (
                      tag, cpu, "uses" if cpu == "icelake-server" else "has no", vnni))
        if integer and cpu in ("icelake-server", "sapphirerapids"):
            tdp = sum(bool(re.search(r"\btdpb(us|su)d\b", l)) for l in code)
            check((tdp > 0) == (cpu == "sapphirerapids"),
                  "%s multi: the %s variant %s AMX tile products (%d)" % (
                      tag, cpu, "uses" if cpu == "sapphirerapids" else "has no", tdp))
    head = open(base + ".h").read().split("*/")[0]
    with open("/proc/cpuinfo") as f:
        flags = set(f.read().split())
    runnable, counts = {}, {}
    for cpu in CPUS:
        line = re.search(r"\*   %s: (\S+) \(kernels" % re.escape(cpu), head)
        check(line is not None, "%s multi: the header lists variant %s" % (tag, cpu))
        if not line:
            return
        need = [f[1:] for f in line.group(1).split(",") if f.startswith("+")]
        runnable[cpu] = all(CPUINFO.get(f, f) in flags for f in need)
        counts[cpu] = len(need)
    x = rng.normal(0, 1, shape).astype(np.float32)
    with tempfile.TemporaryDirectory() as t:
        fused = os.path.join(t, "fused.onnx")
        subprocess.run([cgutil.OCTET, "opt", model, "--passes=" + PIPELINE, "-o", fused],
                       check=True)
        want = list(cgutil.run_ref(fused, [("x", x)]).values())[0]

    def matches(y):
        if y is None:
            return False, "no output"
        if integer:
            return np.array_equal(y, want), "%d bytes differ" % int(np.sum(y != want))
        return cgutil.close(y, want, 1e-4)

    for cpu in CPUS:
        variant, rc, y, err = run_variant(base + ".so", name, x, d, cpu)
        if runnable[cpu]:
            ok, how = matches(y)
            check(variant == cpu and rc == 0 and ok,
                  "%s multi, OCTET_FORCE_VARIANT=%s: runs that variant, matches the "
                  "interpreter%s (%s, rc %s: %s) %s" % (tag, cpu, " bit for bit" if integer
                                                       else "", variant, rc, how, err.strip()))
        else:
            check(variant == "NULL" and rc == 2 and "lacks" in err and cpu in err,
                  "%s multi, OCTET_FORCE_VARIANT=%s (this CPU lacks features): refused with "
                  "a message, run returns 2 (%s, rc %s: %s)" % (tag, cpu, variant, rc,
                                                               err.strip()))
    best = max((c for c in CPUS if runnable[c]), key=lambda c: counts[c], default="NULL")
    variant, rc, y, err = run_variant(base + ".so", name, x, d, None)
    ok, how = matches(y) if best != "NULL" else (y is None, "")
    check(variant == best and ok and not err,
          "%s multi, unforced: chooses %s, the runnable variant with the most features "
          "(got %s, %s)" % (tag, best, variant, how))
    variant, rc, y, err = run_variant(base + ".so", name, x, d, "bogus")
    check(variant == "NULL" and rc == 2 and "not a variant" in err,
          "%s multi, OCTET_FORCE_VARIANT=bogus: refused (%s)" % (tag, err.strip()))


def multi_target_batch(d):
    """A symbolic batch: NAME_run_dims forwards too (`octet run X.so` calls it)."""
    w = rng.normal(0, 0.1, (64, 32)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["m"]),
                           helper.make_node("Relu", ["m"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 32])],
                          [init("w", w)])
    model = os.path.join(d, "batch.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), model)
    p, base = compile_to(model, d, "batch_multi", ["--mcpu=x86-64-v3,icelake-server"])
    check(p.returncode == 0, "symbolic batch, two CPUs: compiles (%s)" % p.stderr.strip()[-300:])
    if p.returncode:
        return
    x = rng.normal(0, 1, (3, 64)).astype(np.float32)
    want = list(cgutil.run_ref(model, [("x", x)]).values())[0]
    for cpu in ("x86-64-v3", "icelake-server"):
        if cpu == "icelake-server" and not host_has("avx512_vnni", "avx512_vbmi2", "gfni"):
            continue
        os.environ["OCTET_FORCE_VARIANT"] = cpu
        try:
            p, got = cgutil.run_octet(base + ".so", [("x", x)])
        finally:
            del os.environ["OCTET_FORCE_VARIANT"]
        ok, how = cgutil.close(got["y"], want, 1e-4) if got else (False, p.stderr)
        check(ok, "symbolic batch 3, OCTET_FORCE_VARIANT=%s: NAME_run_dims matches the "
              "interpreter (%s)" % (cpu, how))


def amx_target(d, conv_q, conv_shape):
    """--mcpu=sapphirerapids: the AMX-INT8 kernels (tiles for blocks of 16
    rows: a MatMul of 40 rows = a pair of blocks and 8 rows, K = 300 = 4
    tiles of 64 k and a tail; the INT8 conv, 32 output channels, K = 72),
    run where the CPU has AMX-INT8."""
    _, mm_q, mm_shape = matmul_models(d, rows=40, k=300, n=50, tag="amx")
    for tag, model, shape, product in (("amx_mm", mm_q, mm_shape, "tdpbusd"),
                                       ("amx_conv", conv_q, conv_shape, "tdpbsud")):
        p, base = compile_to(model, d, tag, ["--mcpu=sapphirerapids"])
        check(p.returncode == 0, "%s --mcpu=sapphirerapids compiles (%s)"
              % (tag, p.stderr.strip()[-300:]))
        if p.returncode:
            continue
        head = open(base + ".h").read().split("*/")[0]
        _, _, tiles = disasm_hits(base + ".o")
        ops = {m.group(1) for m in (AMX.search(l) for l in tiles) if m}
        check("kernels: amx-int8" in head and {"ldtilecfg", product, "tilerelease"} <= ops,
              "%s --mcpu=sapphirerapids: AMX kernels named in the header, tile "
              "instructions in the object (%s)" % (tag, sorted(ops)))
        if host_has("amx_tile", "amx_int8"):
            ok, how = compare(model, base, tag, shape, True)
            check(ok, "%s on this AMX CPU matches the interpreter bit for bit: %s" % (tag, how))
        else:
            print("note: this CPU has no AMX-INT8; %s was compiled and its tile code found "
                  "in the object, not run (tests/kernels runs it on emulated tiles)" % tag)


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
        check(p.returncode == 1 and "unknown CPU 'nonsense'" in p.stderr
              and "not a recognized processor" not in p.stderr
              and not os.path.exists(os.path.join(d, "bad.o")),
              "--mcpu=nonsense: exit 1 naming it, nothing written (%d: %s)"
              % (p.returncode, p.stderr.strip()))
        for tag, model, shape, integer in models:
            multi_target(d, tag, model, shape, integer)
        multi_target_batch(d)
        amx_target(d, conv_q, conv_shape)

    # the runtime users link beside a compiled model is baseline x86-64,
    # whatever the build machine (no VEX/EVEX: no v-prefixed mnemonic)
    for lib in ("liboctet_runtime.a", "liboctet_runtime.so"):
        path = os.path.join(os.environ["OCTET_BUILD"], lib)
        text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], check=True,
                              capture_output=True, text=True).stdout
        insns = [l.split("\t")[1].split()[0] for l in text.splitlines()
                 if re.match(r"\s+[0-9a-f]+:\t", l) and len(l.split("\t")) > 1
                 and l.split("\t")[1].split()]
        avx = sorted({i for i in insns if i.startswith("v")})
        check(len(insns) > 100 and not avx, "%s: %d instructions, none AVX (%s)"
              % (lib, len(insns), avx[:5]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
