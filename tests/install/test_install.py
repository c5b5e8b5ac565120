"""`cmake --install` of the current build into a temporary prefix, then
programs outside the tree built only against what was installed:

1. the installed files are all there, and liboctet.so exports only oct_*
   symbols (liboctet_runtime.so only octrt_*);
2. consumer/consumer.c built three ways, run and checked line by line
   against the header's documentation and the installed CLI: with
   `cc $(pkg-config --cflags --libs octet)`, statically against liboctet.a
   (`pkg-config --static`), and with CMake's find_package(octet) +
   octet::octet (consumer/CMakeLists.txt);
3. a model compiled by the installed `octet compile` (tiny_model.py), linked
   with consumer/run_model.c against the installed runtime only, through
   pkg-config octet-runtime and through octet::runtime; its outputs must
   match ONNX Runtime's within 1e-4 * max(1, max|want|), threaded or not;
4. examples/quantize_compile.c, the public API from load to run, built with
   pkg-config and with find_package: on the bundled fashion-cnn (and on
   mnist-8 when ../shared is there) it quantizes through the sample
   callback, compiles and runs; its QDQ model must equal the installed
   `octet quantize`'s byte for byte on the same samples, and its outputs
   those of the installed `octet compile --emit=so` + `octet run`.

Usage: test_install.py CMAKE BUILD_DIR CC"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tiny_model  # noqa: E402
import ort_int8  # noqa: E402  (tests/testlib: ONNX Runtime exact on u8 x s8 on any CPU)

CMAKE, BUILD, CC = sys.argv[1:4]
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror"]
failures = []


def check(cond, what):
    print(("ok " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
    return cond


def run(args, env=None, **kw):
    print("+ " + " ".join(shlex.quote(a) for a in args))
    return subprocess.run(args, check=True, env=env, text=True, **kw)


def output(args, env=None):
    return run(args, env=env, capture_output=True).stdout


def exported(lib):
    out = output(["nm", "-D", "--defined-only", lib])
    return sorted(line.split()[-1] for line in out.splitlines() if line.strip())


def check_files(prefix):
    want = ["bin/octet", "lib/liboctet.so", "lib/liboctet.so.0", "lib/liboctet.a",
            "lib/liboctet_runtime.so", "lib/liboctet_runtime.so.0", "lib/liboctet_runtime.a",
            "include/octet/octet.h", "include/octet/octet_runtime.h",
            "share/man/man1/octet.1", "lib/pkgconfig/octet.pc", "lib/pkgconfig/octet-runtime.pc",
            "lib/cmake/octet/octetConfig.cmake", "lib/cmake/octet/octetConfigVersion.cmake",
            "lib/cmake/octet/octetTargets.cmake"]
    for f in want:
        check(os.path.exists(os.path.join(prefix, f)), "installed " + f)
    soname = output(["readelf", "-d", os.path.join(prefix, "lib/liboctet.so")])
    check("[liboctet.so.0]" in soname, "liboctet.so's soname is liboctet.so.0")


def check_exports(prefix):
    lib = exported(os.path.join(prefix, "lib/liboctet.so"))
    bad = [s for s in lib if not s.startswith("oct_")]
    check(lib and not bad, "liboctet.so exports only oct_* symbols (%d; others: %s)" %
          (len(lib), bad[:20]))
    header = open(os.path.join(prefix, "include/octet/octet.h")).read()
    undocumented = [s for s in lib if not re.search(r"\b%s\s*\(" % s, header)]
    check(not undocumented, "every export of liboctet.so is declared in octet.h (not: %s)"
          % " ".join(undocumented))
    rt = exported(os.path.join(prefix, "lib/liboctet_runtime.so"))
    check(rt and all(s.startswith("octrt_") for s in rt),
          "liboctet_runtime.so exports only octrt_* symbols (%s)" % " ".join(rt))


def expected_consumer_lines(prefix):
    """What consumer.c must print, from octet.h's documentation and the
    installed CLI (its --version and the defaults `octet help` lists).
    When consumer.c gains its model steps (load mnist-8, quantize through
    the sample callback, compile, run), give it the model in check_consumer
    and add here the "output NAME INDEX VALUE" lines of the installed CLI
    (`octet quantize`, `octet compile --emit=so`, `octet run OUT/NAME.so`)."""
    version = output([os.path.join(prefix, "bin/octet"), "--version"]).split()[-1]
    help_text = output([os.path.join(prefix, "bin/octet"), "help"])
    defaults = dict(re.findall(r"--(max-[a-z-]+)=(\S+)", help_text))
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

    def size(text):
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)

    limits = {"max_file_bytes": "max-file-size", "max_tensor_elems": "max-tensor-elems",
              "max_total_init_bytes": "max-init-bytes", "max_nodes": "max-nodes",
              "max_subgraph_depth": "max-depth", "max_rank": "max-rank",
              "max_alloc_bytes": "max-memory"}
    diag = "model.onnx: node 'conv1' (Conv) input 1 'W': error: message"
    lines = ["version: " + version]
    lines += ["limit %s: %d" % (k, size(defaults[flag])) for k, flag in limits.items()]
    lines += ["context limits are the defaults: yes", "context max_nodes after setting: 7",
              "diagnostics: 0 errors: 0", "formatted: " + diag,
              "formatted length: %d truncated length: 7 same need: yes" % len(diag),
              "done: ok"]
    return lines


def check_consumer(exe, prefix, how, env=None):
    got = output([exe], env=env).splitlines()
    want = expected_consumer_lines(prefix)
    ok = check(got == want, "consumer (%s) prints what octet.h and the CLI say" % how)
    if not ok:
        print("  got:  %s\n  want: %s" % (got, want))


def pkg_config(env, *args):
    return shlex.split(output(["pkg-config", *args], env=env))


def build_with_pkg_config(prefix, work, env, run_env):
    src = os.path.join(HERE, "consumer", "consumer.c")
    exe = os.path.join(work, "consumer_pc")
    run([CC, *CFLAGS, src, "-o", exe, *pkg_config(env, "--cflags", "--libs", "octet")])
    needed = output(["readelf", "-d", exe])
    check("liboctet.so.0" in needed, "consumer_pc links liboctet.so.0")
    check_consumer(exe, prefix, "pkg-config", run_env)
    # the static library must hold everything consumer needs
    libdir = os.path.join(prefix, "lib")
    private = [a for a in pkg_config(env, "--static", "--libs", "octet")
               if a not in ("-loctet", "-loctet_runtime")]
    exe_static = os.path.join(work, "consumer_static")
    run([CC, *CFLAGS, src, "-o", exe_static, *pkg_config(env, "--cflags", "octet"),
         os.path.join(libdir, "liboctet.a"), os.path.join(libdir, "liboctet_runtime.a"), *private])
    check("liboctet" not in output(["readelf", "-d", exe_static]),
          "consumer_static needs no liboctet*.so")
    check_consumer(exe_static, prefix, "pkg-config --static, liboctet.a")


def build_with_cmake(prefix, work, model_dir, run_env):
    bdir = os.path.join(work, "cmake-build")
    run([CMAKE, "-S", os.path.join(HERE, "consumer"), "-B", bdir, "-DCMAKE_C_COMPILER=" + CC,
         "-DCMAKE_PREFIX_PATH=" + prefix, "-DOCTET_MODEL_DIR=" + model_dir,
         "-DOCTET_EXAMPLE=" + EXAMPLE,
         "-DCMAKE_C_FLAGS=" + " ".join(CFLAGS)], stdout=subprocess.DEVNULL)
    cache = open(os.path.join(bdir, "CMakeCache.txt")).read()
    found = re.search(r"^octet_DIR:PATH=(.*)$", cache, re.M)
    check(found and os.path.realpath(found.group(1)) ==
          os.path.realpath(os.path.join(prefix, "lib/cmake/octet")),
          "find_package(octet) found the installed package (%s)" % (found and found.group(1)))
    run([CMAKE, "--build", bdir], stdout=subprocess.DEVNULL)
    check_consumer(os.path.join(bdir, "consumer"), prefix, "find_package", run_env)
    check_api_example(os.path.join(bdir, "quantize_compile"), prefix, work, "find_package",
                      run_env)
    return os.path.join(bdir, "run_model")


def compile_model(prefix, work):
    """The tiny model compiled by the installed CLI into work/model/."""
    onnx_path = os.path.join(work, "tiny.onnx")
    tiny_model.build(onnx_path)
    model_dir = os.path.join(work, "model")
    os.makedirs(model_dir)
    run([os.path.join(prefix, "bin/octet"), "compile", onnx_path, "-o",
         os.path.join(model_dir, "model"), "--emit=obj,header"])
    return onnx_path, model_dir


def check_model_run(exe, onnx_path, how, run_env):
    import onnxruntime as ort
    sess = ort_int8.session(ort, onnx_path)
    feeds = {}
    for k, inp in enumerate(sess.get_inputs()):
        n = int(np.prod(inp.shape))
        feeds[inp.name] = tiny_model.input_value(k, n).reshape(inp.shape)
    want = sess.run(None, feeds)
    lines = output([exe], env=run_env).splitlines()
    check(lines[:1] == ["same: yes"], "run_model (%s): one thread and two agree" % how)
    got = [[] for _ in want]
    for line in lines[1:]:
        _, k, _, v = line.split()
        got[int(k)].append(float(v))
    for k, w in enumerate(want):
        g = np.array(got[k], dtype=np.float32)
        w = w.ravel()
        tol = 1e-4 * max(1.0, float(np.abs(w).max()))
        err = float(np.abs(g - w).max()) if g.shape == w.shape else float("inf")
        check(err <= tol, "run_model (%s) output %d matches ONNX Runtime (max err %g, tol %g)"
              % (how, k, err, tol))


REPO = os.path.dirname(os.path.dirname(HERE))
EXAMPLE = os.path.join(REPO, "examples", "quantize_compile.c")


def api_models():
    """(name, model, input name, calibration array) for the API check."""
    rng = np.random.default_rng(3)
    out = [("fashion-cnn", os.path.join(REPO, "models", "fashion-cnn", "fashion-cnn.onnx"),
            "input", rng.random((12, 1, 28, 28), dtype=np.float32))]
    shared = os.environ.get("OCTET_SHARED", os.path.join(REPO, "..", "shared"))
    mnist = os.path.join(shared, "models", "mnist-8", "model.onnx")
    calib = os.path.join(shared, "data", "mnist", "calib_1000_f32.npy")
    if os.path.exists(mnist) and os.path.exists(calib):
        out.append(("mnist-8", mnist, "Input3", np.load(calib)[:12].astype(np.float32)))
    else:
        print("note: ../shared/models/mnist-8 not found: the API check runs on fashion-cnn only")
    return out


def check_api_example(exe, prefix, work, how, run_env):
    octet = os.path.join(prefix, "bin/octet")
    for name, model, input_name, calib in api_models():
        d = os.path.join(work, "api-%s-%s" % (how, name))
        os.makedirs(d)
        calib.tofile(os.path.join(d, "calib.f32"))
        np.save(os.path.join(d, "calib.npy"), calib)
        np.save(os.path.join(d, "sample0.npy"), calib[:1])
        got = output([exe, model, os.path.join(d, "calib.f32"), str(len(calib)),
                      os.path.join(d, "api")], env=run_env).split()
        got = np.array([float(x) for x in got], dtype=np.float32)
        run([octet, "quantize", model, "--calib", os.path.join(d, "calib.npy"), "-o",
             os.path.join(d, "cli.qdq.onnx"), "--progress=none"], env=run_env,
            stdout=subprocess.DEVNULL)
        same = open(os.path.join(d, "api.qdq.onnx"), "rb").read() == \
            open(os.path.join(d, "cli.qdq.onnx"), "rb").read()
        check(same, "API example (%s) on %s: QDQ model equals octet quantize's" % (how, name))
        run([octet, "compile", os.path.join(d, "cli.qdq.onnx"), "-o", os.path.join(d, "cli"),
             "--emit=so"], env=run_env, stderr=subprocess.DEVNULL)
        os.makedirs(os.path.join(d, "outs"))
        run([octet, "run", os.path.join(d, "cli.so"), "--input",
             "%s=%s" % (input_name, os.path.join(d, "sample0.npy")), "--output-dir",
             os.path.join(d, "outs")], env=run_env, stdout=subprocess.DEVNULL)
        outs = sorted(f for f in os.listdir(os.path.join(d, "outs")) if f.endswith(".npy"))
        want = np.load(os.path.join(d, "outs", outs[0])).ravel()
        check(got.shape == want.shape and np.array_equal(got, want),
              "API example (%s) on %s: outputs equal the CLI-compiled library's" % (how, name))


def main():
    with tempfile.TemporaryDirectory() as work:
        prefix = os.path.join(work, "prefix")
        run([CMAKE, "--install", BUILD, "--prefix", prefix], stdout=subprocess.DEVNULL)
        check_files(prefix)
        check_exports(prefix)
        libdir = os.path.join(prefix, "lib")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        build_with_pkg_config(prefix, work, env, run_env)
        api_exe = os.path.join(work, "quantize_compile_pc")
        run([CC, *CFLAGS, EXAMPLE, "-o", api_exe, *pkg_config(env, "--cflags", "--libs", "octet")])
        check_api_example(api_exe, prefix, work, "pkg-config", run_env)
        onnx_path, model_dir = compile_model(prefix, work)
        exe = os.path.join(work, "run_model_pc")
        run([CC, *CFLAGS, os.path.join(HERE, "consumer", "run_model.c"),
             os.path.join(model_dir, "model.o"), "-I", model_dir, "-o", exe,
             *pkg_config(env, "--cflags", "--libs", "octet-runtime"), "-lm"])
        deps = output(["readelf", "-d", exe])
        check("liboctet_runtime.so.0" in deps and "liboctet.so" not in deps,
              "run_model links the runtime only")
        check_model_run(exe, onnx_path, "pkg-config", run_env)
        cmake_run_model = build_with_cmake(prefix, work, model_dir, run_env)
        check_model_run(cmake_run_model, onnx_path, "find_package", run_env)
    if failures:
        print("%d check(s) failed" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
