"""Golden-file test of `octet inspect` (text format) on real models.

For each model in inspect_common.GOLDEN_MODELS, the output of
`octet inspect MODEL` must equal tests/inspect/golden/NAME.txt byte for byte
and the command must exit 0 (the verifier accepts every real model).

Regenerating: OCTET_UPDATE_GOLDEN=1 ctest -R inspect_golden (or run this
script with OCTET set) rewrites the files; then READ the diff and cross-check
it (inspect_onnx_oracle checks node lines, inputs, outputs and initializers
against onnx.load) before committing."""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import difflib
import os
import sys

from inspect_common import GOLDEN_DIR, GOLDEN_MODELS, Report, inspect, model_path


def main():
    update = os.environ.get("OCTET_UPDATE_GOLDEN") == "1"
    rep = Report()
    for name in GOLDEN_MODELS:
        proc = inspect(model_path(name))
        rep.check(proc.returncode == 0,
                  f"{name}: exit {proc.returncode}: {proc.stderr.decode(errors='replace')[:2000]}")
        golden = os.path.join(GOLDEN_DIR, name + ".txt")
        if update:
            with open(golden, "wb") as f:
                f.write(proc.stdout)
            print(f"updated {golden}")
        if not os.path.exists(golden):
            rep.check(False, f"{name}: no golden file {golden}")
            continue
        with open(golden, "rb") as f:
            want = f.read()
        ok = rep.check(proc.stdout == want, f"{name}: output differs from {golden}")
        if not ok:
            diff = difflib.unified_diff(
                want.decode(errors="replace").splitlines(),
                proc.stdout.decode(errors="replace").splitlines(),
                "golden", "octet", lineterm="")
            for i, line in enumerate(diff):
                if i >= 40:
                    print("...")
                    break
                print(line)
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
