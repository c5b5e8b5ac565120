"""A model compiled by `octet compile` exports exactly what its generated
header declares: the dynamic symbols of NAME.so (`nm -D --defined-only`)
and the global symbols of NAME.o (`nm -g --defined-only`) must equal the
functions and variables NAME.h declares, nothing else (no kernel-library
helper such as qd8_rows).  Checked on an FP32 and a quantized (QDQ, integer
kernels from the embedded bitcode) model, with embedded weights and with
--weights=file (which adds NAME_weights)."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_model  # noqa: E402

OCTET = os.environ["OCTET"]


def header_symbols(path):
    """Names of the functions and variables a generated header declares
    (static tables and struct forward declarations are not symbols)."""
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    text = text.replace('extern "C" {', "")
    names = set()
    for decl in text.split(";"):
        decl = " ".join(decl.replace("}", " ").split())
        if not decl or decl.startswith("static ") or re.fullmatch(r"struct \w+", decl):
            continue
        m = re.match(r"[^(]*?(\w+)\s*\(", decl)  # function: the name before '('
        if not m:
            m = re.search(r"(\w+)\s*(\[[^\]]*\])?$", decl)  # variable
        assert m, "cannot parse declaration %r in %s" % (decl, path)
        names.add(m.group(1))
    return names


def defined_symbols(args, path):
    out = subprocess.run(["nm", *args, "--defined-only", path], check=True,
                         capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def check(outdir, name, model, extra):
    base = os.path.join(outdir, name)
    subprocess.run([OCTET, "compile", model, "-o", base, "--emit=obj,so,header", *extra],
                   check=True)
    declared = header_symbols(base + ".h")
    want = {name + s for s in ("_run", "_run_threads", "_scratch_size", "_signature")}
    if "--weights=file" in extra:
        want.add(name + "_weights")
    ok = True
    if declared != want:  # the parser itself must see what the header documents
        print("FAIL %s: header declares %s, expected %s" % (name, sorted(declared), sorted(want)))
        ok = False
    for what, args, path in (("so", ["-D"], base + ".so"), ("obj", ["-g"], base + ".o")):
        got = defined_symbols(args, path)
        if got != declared:
            print("FAIL %s.%s: exports %s beyond the header, lacks %s" %
                  (name, what, sorted(got - declared), sorted(declared - got)))
            ok = False
        else:
            print("ok %s.%s exports %s" % (name, what, " ".join(sorted(got))))
    return ok


def main():
    with tempfile.TemporaryDirectory() as d:
        fp32 = os.path.join(d, "tiny.onnx")
        qdq = os.path.join(d, "tiny.qdq.onnx")
        calib = os.path.join(d, "calib.npy")
        tiny_model.build(fp32)
        tiny_model.calibration(calib)
        subprocess.run([OCTET, "quantize", fp32, "--calib", calib, "-o", qdq, "--progress=none"],
                       check=True, stdout=subprocess.DEVNULL)
        ok = check(d, "tinyf", fp32, [])
        ok &= check(d, "tinyq", qdq, ["--report", os.path.join(d, "tinyq.kernels.txt")])
        ok &= check(d, "tinyw", qdq, ["--weights=file"])
        # the quantized model must have gone through the kernel library, or
        # this test would not cover the bitcode's symbols
        report = open(os.path.join(d, "tinyq.kernels.txt")).read()
        if "\toctk_q" not in report:
            print("FAIL: the quantized model used no kernel of the library:\n" + report)
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
