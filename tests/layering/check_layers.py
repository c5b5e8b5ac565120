#!/usr/bin/env python3
"""check_layers.py: checks the include graph against the layering in
docs/design.md.

The ```layers block of docs/design.md names, one line per folder under src/,
the folders that folder's files may include:

    passes:   ir ops

Every `#include "..."` in src/ and runtime/ is checked:
  * a file in a listed folder may include "own/..." and "dep/..." for the
    dependencies its line names, and "octet/..." (the public include/octet);
    "-" means nothing but the C library and include/octet;
  * includes are folder-qualified from src/ ("ir/ir.h", never "ir.h"): one
    include root, one spelling;
  * src/codegen/kernels and runtime/ include nothing of Octet: only their
    own sibling files, by bare name (they are built apart, for bitcode and
    for users' programs);
  * the generated protobuf header (onnx.pb-c.h) only in src/frontend.
Folders under src/ that the block does not list are reported as unchecked
(not failures).

Usage: check_layers.py [ROOT]      (default: the repository of this file)
       check_layers.py --self-test (a scratch tree with known violations:
                                    each must be reported)
Exit status 0 when the include graph follows the block, 1 otherwise; each
violation is printed as FILE:LINE: #include "X": reason.
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
GENERATED = {"onnx.pb-c.h": "frontend"}   # generated header -> the one folder
ISOLATED = ("src/codegen/kernels", "runtime")
SOURCE_EXT = (".c", ".h", ".def", ".inc")


def parse_layers(design_path):
    """The ```layers block as {folder: set(allowed deps)}."""
    with open(design_path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^```layers\s*\n(.*?)^```", text, re.M | re.S)
    if not m:
        raise SystemExit("%s: no ```layers block" % design_path)
    layers = {}
    for n, line in enumerate(m.group(1).splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        name, sep, deps = line.partition(":")
        if not sep or not re.fullmatch(r"[a-z_]+", name.strip()):
            raise SystemExit("%s: layers line %d malformed: %r" % (design_path, n, line))
        deps = deps.split()
        if deps == ["-"]:
            deps = []
        layers[name.strip()] = set(deps)
    for name, deps in layers.items():
        for d in deps:
            if d not in layers:
                raise SystemExit("%s: layer %s depends on unknown layer %s" %
                                 (design_path, name, d))
    return layers


def source_files(root, top):
    base = os.path.join(root, top)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.endswith(SOURCE_EXT):
                yield os.path.join(dirpath, fn)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield n, m.group(1)


def check(root):
    """Returns (violations, unchecked folders)."""
    layers = parse_layers(os.path.join(root, "docs", "design.md"))
    violations = []
    unchecked = set()
    files = list(source_files(root, "src")) + list(source_files(root, "runtime"))
    for path in files:
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        folder = os.path.dirname(rel)
        isolated = next((iso for iso in ISOLATED
                         if folder == iso or folder.startswith(iso + "/")), None)
        if isolated:
            for n, inc in includes(path):
                if "/" in inc or not os.path.exists(os.path.join(os.path.dirname(path), inc)):
                    violations.append("%s:%d: #include \"%s\": %s includes nothing "
                                      "of Octet (only its own files)" % (rel, n, inc, isolated))
            continue
        parts = rel.split("/")
        layer = parts[1] if len(parts) > 2 else None
        if layer not in layers:
            unchecked.add("src/%s" % layer if layer else rel)
            continue
        allowed = layers[layer] | {layer}
        for n, inc in includes(path):
            if inc in GENERATED:
                if GENERATED[inc] != layer:
                    violations.append("%s:%d: #include \"%s\": the generated header "
                                      "belongs to src/%s only" % (rel, n, inc, GENERATED[inc]))
                continue
            if "/" not in inc:
                violations.append("%s:%d: #include \"%s\": not folder-qualified "
                                  "(write \"%s/%s\" or the folder it lives in)"
                                  % (rel, n, inc, layer, inc))
                continue
            target = inc.split("/")[0]
            if target == "octet":
                continue
            if target not in layers and not os.path.isdir(os.path.join(root, "src", target)):
                violations.append("%s:%d: #include \"%s\": no folder src/%s"
                                  % (rel, n, inc, target))
            elif target not in allowed:
                violations.append("%s:%d: #include \"%s\": src/%s may include only %s"
                                  % (rel, n, inc, layer,
                                     ", ".join(sorted(allowed)) + " and octet/"))
    return violations, sorted(unchecked)


def self_test():
    """Builds a scratch tree with the real layers block and known violations;
    every one of them must be reported, and the clean files must not be."""
    here = os.path.dirname(os.path.abspath(__file__))
    real_design = os.path.join(here, "..", "..", "docs", "design.md")
    with tempfile.TemporaryDirectory() as tmp:
        def put(rel, text):
            p = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        with open(real_design) as f:
            put("docs/design.md", f.read())
        put("src/ir/ir.h", '#include "octet/octet.h"\n')
        put("src/ops/ops.h", '#include "ir/ir.h"\n')
        put("src/ref/ref.h", '#include "ops/ops.h"\n')
        put("src/passes/good.c", '#include "ops/ops.h"\n#include "passes/x.h"\n')
        put("src/passes/bad.c", '#include "ir/ir.h"\n#include "ref/ref.h"\n')
        put("src/codegen/bad.c", '#include "ops.h"\n')
        put("src/ir/bad.c", '#include "ops/ops.h"\n')
        put("src/codegen/kernels/octk.h", '#include "qcommon.h"\n')
        put("src/codegen/kernels/qcommon.h", '#include <stdint.h>\n')
        put("src/codegen/kernels/bad.c", '#include "ir/ir.h"\n')
        put("src/passes/proto.c", '#include "onnx.pb-c.h"\n')
        put("runtime/rt.c", '#include "octet_runtime.h"\n#include "ir/ir.h"\n')
        put("runtime/octet_runtime.h", "\n")
        violations, unchecked = check(tmp)
        expected = ["src/passes/bad.c:2:", "src/codegen/bad.c:1:", "src/ir/bad.c:1:",
                    "src/codegen/kernels/bad.c:1:", "src/passes/proto.c:1:",
                    "runtime/rt.c:2:"]
        ok = True
        for e in expected:
            if not any(v.startswith(e) for v in violations):
                print("self-test: expected a violation at %s, got none" % e)
                ok = False
        if len(violations) != len(expected):
            print("self-test: %d violations, expected %d:\n  %s"
                  % (len(violations), len(expected), "\n  ".join(violations)))
            ok = False
        print("self-test: %s (%d violations found as expected)"
              % ("ok" if ok else "FAILED", len(violations)))
        return 0 if ok else 1


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        return self_test()
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    violations, unchecked = check(os.path.abspath(root))
    for v in violations:
        print(v)
    for u in unchecked:
        print("note: %s is not in docs/design.md's layers block: not checked" % u)
    if violations:
        print("%d include(s) cross the layering of docs/design.md" % len(violations))
        return 1
    print("include graph follows docs/design.md's layers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
